//! `svc import`: converting other supervisors' configurations into svc's KDL.
//!
//! Three formats are understood: supervisord's INI files ([`supervisord`]), Procfiles
//! ([`procfile`]) and process-compose.yaml ([`compose`]). Each conversion produces KDL text that [`crate::config::parse_str`] accepts,
//! plus a list of [`Warning`]s for everything that could not be carried over. Nothing is
//! dropped silently: every unsupported option or section also appears in the output as a
//! `// supervisord: ...` comment, so the converted file documents what it left behind.
//!
//! This module holds what both converters share: the error and result types, and the
//! helpers that write values so that svc reads back exactly the text meant (KDL string
//! escaping, and svc's own `$`/`{}` expansion escaping).

pub mod compose;
pub mod procfile;
pub mod supervisord;

pub use compose::{compose_file, compose_to_kdl};
pub use procfile::{procfile_file, procfile_to_kdl};
pub use supervisord::{supervisord_file, supervisord_to_kdl};

use std::fmt;
use std::path::{Path, PathBuf};

/// Settings of a conversion that do not come from the converted file.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The directory the KDL file will be written to. svc's `{here}` means that directory,
    /// so supervisord's `%(here)s` (the directory of the supervisord file) becomes `{here}`
    /// only when the two are the same, and the literal directory otherwise. `None` means
    /// "next to the converted file" (the usual `svc import ... > svc.kdl` case).
    pub output_dir: Option<PathBuf>,
    /// The value of supervisord's `%(host_node_name)s` (this machine's name). `None` leaves
    /// the expansion in the output as a comment and a placeholder `localhost`.
    pub host_node_name: Option<String>,
    /// Looks up a variable of the environment the conversion runs in: used to warn about
    /// `%(ENV_X)s` of an unset variable and to expand `[include] files=`. `None` uses the
    /// process environment.
    pub env: Option<fn(&str) -> Option<String>>,
}

impl ImportOptions {
    fn var(&self, key: &str) -> Option<String> {
        match self.env {
            Some(f) => f(key),
            None => std::env::var(key).ok(),
        }
    }
}

/// The result of a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// The KDL text, ending with a newline.
    pub kdl: String,
    /// Everything that was not converted faithfully, in file order.
    pub warnings: Vec<Warning>,
    /// Every file that was read, the converted file first (supervisord `[include]`s follow).
    pub files: Vec<PathBuf>,
    /// How many `program` blocks the KDL has.
    pub programs: usize,
    /// Variables the output references (`%(ENV_X)s`) that are not set in the environment the
    /// conversion ran in: `svc check` and the daemon refuse the config until they are set.
    pub unset_vars: Vec<String>,
}

/// Something in the source that svc cannot express exactly; also written into the output
/// as a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line, or 0 when it concerns the file as a whole.
    pub line: usize,
    /// What was not converted, and why.
    pub message: String,
}

/// `file:line: message`, the way compilers print warnings.
impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// Why a file could not be converted at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file (or an included one) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not in the expected format, so nothing sensible can be produced.
    #[error("{}:{line}: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads a file for conversion, with the error naming it.
fn read(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|source| ImportError::Read { path: path.to_owned(), source })
}

/// Makes `path` absolute against the current directory (without touching the file system
/// beyond that), so `{here}` comparisons and messages are stable.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The directory that `{here}` will mean in the output.
fn output_dir(opts: &ImportOptions, main_file: &Path) -> PathBuf {
    match &opts.output_dir {
        Some(d) => absolute(d),
        None => absolute(main_file).parent().map(Path::to_owned).unwrap_or_default(),
    }
}

/// A part of a value as svc should read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Text that svc must take literally: `$` and braces are escaped when written.
    Lit(char),
    /// svc syntax written as is: `${HOME}`, `{program}`, `{num:02}`.
    Raw(String),
}

/// Pieces of literal text.
pub(crate) fn lit(s: &str) -> Vec<Piece> {
    s.chars().map(Piece::Lit).collect()
}

/// Writes pieces as svc value text, escaping literal text only where svc would otherwise
/// expand it: `$` always becomes `$$`; `{` becomes `{{` only where it would start a
/// template or a `{{` (before a lowercase letter, `_` or `{`), and `}` becomes `}}` only
/// before another `}`. Minimal escaping keeps commands such as `awk '{ print $1 }'`
/// readable. Built right to left because each decision depends on the next character.
pub(crate) fn svc_text(pieces: &[Piece]) -> String {
    let mut rev: Vec<char> = Vec::new();
    for p in pieces.iter().rev() {
        match p {
            Piece::Raw(s) => rev.extend(s.chars().rev()),
            Piece::Lit(c) => {
                let next = rev.last().copied();
                let double = match c {
                    '$' => true,
                    '{' => next.is_some_and(|n| n == '{' || n == '_' || n.is_ascii_lowercase()),
                    '}' => next == Some('}'),
                    _ => false,
                };
                rev.push(*c);
                if double {
                    rev.push(*c);
                }
            }
        }
    }
    rev.iter().rev().collect()
}

/// Code points KDL v2 forbids literally in a document; written as `\u{..}` escapes.
fn kdl_disallowed(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        || matches!(c, '\u{0085}' | '\u{2028}' | '\u{2029}')
}

/// `s` as a KDL v2 string: a raw string `#"..."#` when it holds quotes or backslashes (so it
/// reads as written), otherwise an ordinary quoted string with escapes.
pub(crate) fn kdl_string(s: &str) -> String {
    let needs_escape = s.contains(['"', '\\']);
    // A leading `"` would make `#"""` read as a multi-line string opener.
    if needs_escape && !s.starts_with('"') && !s.chars().any(|c| kdl_disallowed(c) || c == '\t') {
        // Enough `#`s that no `"#..#` inside the text ends the string early.
        let mut hashes = 1;
        while s.contains(&format!("\"{}", "#".repeat(hashes))) {
            hashes += 1;
        }
        let h = "#".repeat(hashes);
        return format!("{h}\"{s}\"{h}");
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if kdl_disallowed(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A KDL node name: bare when it is a plain identifier, quoted otherwise.
pub(crate) fn kdl_name(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !matches!(s, "true" | "false" | "null" | "inf" | "nan");
    if plain { s.to_owned() } else { kdl_string(s) }
}

/// Text made safe for a `//` comment: one line, no code points KDL forbids.
pub(crate) fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '\t' => " ".to_owned(),
            c if kdl_disallowed(c) => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// Whether `name` is a valid svc program or process name.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `name` with every character svc does not allow in names replaced by `_`.
pub(crate) fn sanitize_name(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' }).collect();
    match s.strip_prefix('-') {
        Some(rest) => format!("_{rest}"),
        None if s.is_empty() => "_".to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::expand::{Context, expand};

    fn env(k: &str) -> Option<String> {
        (k == "HOME").then(|| "/home/u".to_owned())
    }

    /// What svc makes of `text` with program `web`, instance 3 and `{here}` = /h.
    fn svc_reads(text: &str) -> String {
        let cx = Context { env: &env, program: Some("web"), name: Some("web"), num: Some(3), here: Path::new("/h") };
        expand(text, &cx).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    #[test]
    fn literal_text_round_trips_through_svc_expansion() {
        for s in [
            "plain",
            "$HOME and $$ and ${X} and $1",
            "awk '{ print $1 }'",
            "{program}",
            "{{program}}",
            "{}}}{{{",
            "{a:b}",
            "}}",
            "{_x}",
            "x{",
            "{PROGRAM}",
            "json {\"k\": {\"v\": 1}}",
        ] {
            let written = svc_text(&lit(s));
            assert_eq!(svc_reads(&written), s, "written as {written}");
        }
        assert_eq!(svc_text(&lit("awk '{ print $1 }'")), "awk '{ print $$1 }'");
        assert_eq!(svc_text(&lit("{program}")), "{{program}");
    }

    #[test]
    fn literal_next_to_templates() {
        let mut p = lit("{");
        p.push(Piece::Raw("{program}".into()));
        p.extend(lit("}$"));
        p.push(Piece::Raw("${HOME}".into()));
        let written = svc_text(&p);
        assert_eq!(svc_reads(&written), "{web}$/home/u");
    }

    #[test]
    fn kdl_strings() {
        assert_eq!(kdl_string("a b"), "\"a b\"");
        assert_eq!(kdl_string("say \"hi\""), "#\"say \"hi\"\"#");
        assert_eq!(kdl_string("a\"#b"), "##\"a\"#b\"##");
        assert_eq!(kdl_string("c:\\x"), "#\"c:\\x\"#");
        assert_eq!(kdl_string("l1\nl2 \"q\""), "\"l1\\nl2 \\\"q\\\"\"");
        assert_eq!(kdl_string("\u{1}"), "\"\\u{1}\"");
        for s in ["x", "\"", "\"\"x", "a\"", "\\", "\"#", "a\tb", "\u{feff}", "é ü", "a\r\nb", ""] {
            let doc = format!("n {}", kdl_string(s));
            let parsed: ::kdl::KdlDocument = doc.parse().unwrap_or_else(|e| panic!("{doc}: {e:?}"));
            let v = parsed.nodes()[0].entries()[0].value().as_string().map(str::to_owned);
            assert_eq!(v.as_deref(), Some(s), "{doc}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(kdl_name("PATH"), "PATH");
        assert_eq!(kdl_name("a.b"), "\"a.b\"");
        assert_eq!(kdl_name("1X"), "\"1X\"");
        assert_eq!(kdl_name("true"), "\"true\"");
        assert!(valid_name("web_01.x-y"));
        assert!(!valid_name("-x") && !valid_name("") && !valid_name("a b"));
        assert_eq!(sanitize_name("my app/1"), "my_app_1");
        assert_eq!(sanitize_name("-x"), "_x");
        assert_eq!(comment_text("a\nb\u{0}"), "a\\nb\\u{0}");
    }
}
