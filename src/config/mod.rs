//! Configuration: KDL files -> the validated model in [`model`].
//!
//! This module owns the public entry points ([`load`], [`parse_str`]) and the error type
//! ([`ConfigError`]) that carries every diagnostic found, each with file, line, column and a
//! source excerpt. The walk over the KDL nodes lives in `kdl.rs`, the pre-pass that keeps the
//! recursive KDL parser within bounds in `scan.rs`, value expansion in `expand.rs`, and the
//! `env-file` format in `dotenv.rs`.

pub mod check;
mod dotenv;
mod expand;
pub mod import;
mod kdl;
pub mod model;
mod scan;

pub use model::*;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode, SourceSpan};

/// Reads `path` and every file it includes, returns the validated config or ALL errors found.
///
/// Variables are expanded from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    kdl::load(path, &|key| std::env::var(key).ok())
}

/// Same as [`load`], from a string (tests, `svc check -`).
///
/// `origin` names the file for diagnostics and is the base for relative includes and paths.
/// Variables are expanded from `env`.
pub fn parse_str(source: &str, origin: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    kdl::parse_str(source, origin, env)
}

/// Every node name the parser knows, by where it may appear: `("top level", [...])`,
/// `("program", [...])`, and so on. `tests/docs.rs` checks each is in `docs/configuration.md`.
pub fn known_nodes() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("top level", kdl::TOP_LEVEL),
        ("program", kdl::PROGRAM_SETTINGS),
        ("group", kdl::GROUP_SETTINGS),
        ("backoff", kdl::BACKOFF_SETTINGS),
        ("stdout-log/stderr-log", kdl::LOG_SETTINGS),
        ("limits", kdl::LIMIT_SETTINGS),
    ]
}

/// At most this many reports are drawn by [`ConfigError::render`].
const MAX_DRAWN: usize = 20;

/// Reports at a column past this are printed in the one-line form, without the excerpt.
const MAX_DRAWN_COLUMN: usize = 10_000;

/// One or more problems found in a configuration.
///
/// Implements [`miette::Diagnostic`] with every problem as a related diagnostic, so a miette
/// handler prints them all; [`ConfigError::render`] does the same into a string.
#[derive(Debug, Clone)]
pub struct ConfigError {
    diagnostics: Vec<Diag>,
}

/// One diagnostic as plain data, for `--json` output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigErrorItem {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, or 0 when the problem has no position (an unreadable file).
    pub line: usize,
    /// 1-based column in bytes, or 0 when the problem has no position.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something to say.
    pub help: Option<String>,
}

impl ConfigError {
    pub(crate) fn new(diagnostics: Vec<Diag>) -> ConfigError {
        ConfigError { diagnostics }
    }

    /// Full human rendering: a report per diagnostic with `file:line:col` and the offending
    /// text underlined. `color = false` gives plain text without ANSI escapes (for the socket
    /// and tests).
    pub fn render(&self, color: bool) -> String {
        let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
        // No wrapping: miette's wrapper splits words at hyphens (`exit-` / `codes`), which
        // mangles setting names; a terminal wraps long help lines well enough.
        let handler = GraphicalReportHandler::new_themed(theme).with_wrap_lines(false).with_links(false);
        let mut out = String::new();
        // Drawing a report costs a scan of its file: thousands of them (a file of `;`) took
        // seconds. The first ones say what is wrong; --json lists every one.
        for (i, d) in self.diagnostics.iter().enumerate().take(MAX_DRAWN) {
            if i > 0 {
                out.push('\n');
            }
            // miette pads up to the column with a format width, which panics past 65535; a
            // line that long cannot be drawn usefully anyway.
            let too_wide = d.position().is_some_and(|(_, column)| column > MAX_DRAWN_COLUMN);
            if too_wide || handler.render_report(&mut out, d).is_err() {
                // A span outside its source can't be drawn; the one-line form still says it all.
                out.push_str(&d.one_line());
                out.push('\n');
                if let Some(help) = &d.help {
                    out.push_str(&format!("  help: {help}\n"));
                }
            }
        }
        if self.diagnostics.len() > MAX_DRAWN {
            out.push_str(&format!(
                "\n... and {} more (`svc check --json` lists them all)\n",
                self.diagnostics.len() - MAX_DRAWN
            ));
        }
        if self.diagnostics.len() > 1 {
            out.push_str(&format!("{} errors\n", self.diagnostics.len()));
        }
        out
    }

    /// Each diagnostic as plain data (for `--json` output).
    pub fn items(&self) -> Vec<ConfigErrorItem> {
        self.diagnostics
            .iter()
            .map(|d| {
                let (line, column) = d.position().unwrap_or((0, 0));
                ConfigErrorItem { file: d.file.clone(), line, column, message: d.message.clone(), help: d.help.clone() }
            })
            .collect()
    }

    /// How many diagnostics there are (at least one).
    pub fn len(&self) -> usize {
        self.diagnostics.len()
    }

    /// Always `false`: a `ConfigError` holds at least one diagnostic.
    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// `file:line:col: message` of the first problem, plus `(and N more)`.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.diagnostics.first() {
            Some(d) => f.write_str(&d.one_line())?,
            None => f.write_str("invalid configuration")?,
        }
        if self.diagnostics.len() > 1 {
            write!(f, " (and {} more)", self.diagnostics.len() - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.diagnostics.iter().map(|d| d as &dyn Diagnostic)))
    }
}

/// One problem, pointing into the file it is about (when it has a position).
#[derive(Debug, Clone)]
pub(crate) struct Diag {
    pub(crate) message: String,
    pub(crate) file: PathBuf,
    /// The file's text, named for the report header; `None` for an unreadable file.
    pub(crate) source: Option<NamedSource<Arc<String>>>,
    pub(crate) span: Option<SourceSpan>,
    pub(crate) label: Option<String>,
    pub(crate) help: Option<String>,
}

impl Diag {
    /// A problem with the file as a whole (no position).
    pub(crate) fn whole_file(file: &Path, message: impl Into<String>) -> Diag {
        Diag { message: message.into(), file: file.to_owned(), source: None, span: None, label: None, help: None }
    }

    /// 1-based line and byte column, computed the way miette's report header does.
    fn position(&self) -> Option<(usize, usize)> {
        let (source, span) = (self.source.as_ref()?, self.span?);
        let contents = source.inner().read_span(&span, 0, 0).ok()?;
        Some((contents.line() + 1, contents.column() + 1))
    }

    fn one_line(&self) -> String {
        match self.position() {
            Some((line, col)) => format!("{}:{line}:{col}: {}", self.file.display(), self.message),
            None => format!("{}: {}", self.file.display(), self.message),
        }
    }

    /// Identity for de-duplication (the same bad value shared by many instances).
    pub(crate) fn key(&self) -> (PathBuf, Option<(usize, usize)>, String) {
        (self.file.clone(), self.span.map(|s| (s.offset(), s.len())), self.message.clone())
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diag {}

impl Diagnostic for Diag {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new_primary_with_span(self.label.clone(), span))))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(text: &str, offset: usize, len: usize, message: &str) -> Diag {
        Diag {
            message: message.into(),
            file: PathBuf::from("/x/svc.kdl"),
            source: Some(NamedSource::new("/x/svc.kdl", Arc::new(text.to_owned()))),
            span: Some((offset, len).into()),
            label: Some("here".into()),
            help: Some("fix it".into()),
        }
    }

    #[test]
    fn render_draws_the_first_reports_and_counts_the_rest() {
        let text = "a 1\n".repeat(100);
        let e = ConfigError::new((0..100).map(|i| diag(&text, i * 4, 1, &format!("problem {i}"))).collect());
        let plain = e.render(false);
        assert!(plain.contains("problem 19") && !plain.contains("problem 20"), "{plain}");
        assert!(plain.contains("... and 80 more (`svc check --json` lists them all)"), "{plain}");
        assert!(plain.ends_with("100 errors\n"), "{plain}");
        assert_eq!(e.items().len(), 100, "--json has every one");
    }

    #[test]
    fn display_items_and_render() {
        let text = "a 1\nbb 2\n";
        let e = ConfigError::new(vec![diag(text, 5, 1, "first"), diag(text, 0, 1, "second")]);
        assert_eq!(e.to_string(), "/x/svc.kdl:2:2: first (and 1 more)");
        let items = e.items();
        assert_eq!((items[0].line, items[0].column), (2, 2));
        assert_eq!((items[1].line, items[1].column), (1, 1));
        assert_eq!(items[0].help.as_deref(), Some("fix it"));
        let plain = e.render(false);
        assert!(plain.contains("/x/svc.kdl:2:2"), "{plain}");
        assert!(plain.contains("× first"), "{plain}");
        assert!(plain.contains("help: fix it"), "{plain}");
        assert!(plain.contains("2 errors"), "{plain}");
        assert!(!plain.contains('\u{1b}'), "{plain}");
        assert!(e.render(true).contains('\u{1b}'));
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn without_position() {
        let e = ConfigError::new(vec![Diag::whole_file(Path::new("/x/svc.kdl"), "cannot read it")]);
        assert_eq!(e.to_string(), "/x/svc.kdl: cannot read it");
        assert_eq!(e.items()[0].line, 0);
        assert!(e.render(false).contains("cannot read it"));
    }
}
