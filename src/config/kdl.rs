//! The walk from KDL documents to the model: reading files and includes, checking every
//! node, merging `defaults`, expanding values and `numprocs` instances, and cross-checks
//! (unique names, groups, log files).
//!
//! Nothing here stops at the first problem: every check pushes a [`Diag`] and carries on, so
//! one run reports everything wrong in every file. Values are held with their spans
//! ([`Str`]) until expansion, so even a bad `$VAR` found late points at its text.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use miette::{NamedSource, SourceCode, SourceSpan};

use super::dotenv;
use super::expand::{self, Context, ExpandError};
use super::model::*;
use super::scan;
use super::{ConfigError, Diag};

/// Includes deeper than this are surely a mistake (cycles are caught separately).
const MAX_INCLUDE_DEPTH: usize = 32;
/// Guards memory against a typo like `numprocs 1000000000`.
const MAX_NUMPROCS: u32 = 10_000;

pub(crate) const TOP_LEVEL: &[&str] = &["program", "group", "include", "defaults", "access"];

pub(crate) const PROGRAM_SETTINGS: &[&str] = &[
    "command",
    "directory",
    "environment",
    "env-file",
    "autostart",
    "autorestart",
    "exit-codes",
    "start-secs",
    "start-retries",
    "backoff",
    "stop-signal",
    "stop-wait-secs",
    "stop-as-group",
    "kill-as-group",
    "priority",
    "redirect-stderr",
    "log-timestamps",
    "umask",
    "numprocs",
    "numprocs-start",
    "process-name",
    "stdout-log",
    "stderr-log",
    "limits",
    "oneshot",
    "ready",
    "start-timeout",
    "watchdog-secs",
    "health",
    "depends-on",
    "on-exit",
    "on-fatal",
    "on-unhealthy",
    "hook-timeout",
];

pub(crate) const HEALTH_SETTINGS: &[&str] =
    &["exec", "tcp", "http", "interval", "timeout", "retries", "start-period", "on-unhealthy"];
/// Properties of `ready`: one check, and its timing.
pub(crate) const READY_PROPERTIES: &[&str] = &["tcp", "http", "exec", "log", "interval", "timeout", "start-period"];
/// Longest `depends-on` chain worth following; deeper is surely a generated mistake.
const MAX_DEPENDENCY_DEPTH: usize = 1000;

pub(crate) const GROUP_SETTINGS: &[&str] = &["programs", "priority"];
pub(crate) const BACKOFF_SETTINGS: &[&str] = &["initial", "max", "reset-after"];
pub(crate) const LOG_SETTINGS: &[&str] = &["path", "max-bytes", "backups"];
pub(crate) const LIMIT_SETTINGS: &[&str] = &["nofile", "nproc", "core", "as", "data", "stack", "fsize", "cpu"];

/// Reads the main file at `path` and everything it includes.
pub(crate) fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let path = absolute(path);
    match read_regular(&path) {
        Ok(text) => run(text, path, env),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut d = Diag::whole_file(&path, format!("config file {} does not exist", path.display()));
            d.help = Some("create one with `svc init` (a commented starter), or name yours with --config FILE".into());
            Err(ConfigError::new(vec![d]))
        }
        Err(e) => Err(ConfigError::new(vec![Diag::whole_file(&path, format!("cannot read {}: {e}", path.display()))])),
    }
}

/// Parses `source` as if it were the file `origin`.
pub(crate) fn parse_str(
    source: &str,
    origin: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    run(source.to_owned(), absolute(origin), env)
}

/// Relative config paths would change meaning with the daemon's working directory.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

fn run(text: String, path: PathBuf, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let mut loader = Loader {
        env,
        files: Vec::new(),
        other_files: Vec::new(),
        diags: Vec::new(),
        loaded: HashSet::new(),
        stack: Vec::new(),
        incomplete: false,
        programs: Vec::new(),
        groups: Vec::new(),
        defaults: None,
        access: None,
        env_files: HashMap::new(),
    };
    loader.file(path, text);
    loader.finish()
}

/// A string value with where it was written.
#[derive(Debug, Clone)]
struct Str {
    value: String,
    span: SourceSpan,
    file: usize,
}

#[derive(Debug, Clone)]
enum Command {
    /// One string, split with shell-word rules.
    Shell(Str),
    /// Several strings, taken as argv.
    Argv(Vec<Str>),
}

/// A log block's settings as written (each one optional so `defaults` can fill gaps).
#[derive(Debug, Clone, Default)]
struct LogOpts {
    path: Option<Str>,
    max_bytes: Option<u64>,
    backups: Option<u32>,
}

impl LogOpts {
    fn or(self, d: &LogOpts) -> LogOpts {
        LogOpts {
            path: self.path.or_else(|| d.path.clone()),
            max_bytes: self.max_bytes.or(d.max_bytes),
            backups: self.backups.or(d.backups),
        }
    }
}

/// A program's (or `defaults`') settings as written; `None` = not set.
#[derive(Debug, Clone, Default)]
struct Opts {
    command: Option<(Command, SourceSpan)>,
    /// `command` was written, even if invalid (so "has no `command`" is not piled on top).
    command_written: bool,
    directory: Option<Str>,
    environment: Vec<(String, Str)>,
    env_file: Option<Str>,
    autostart: Option<bool>,
    autorestart: Option<AutoRestart>,
    exit_codes: Option<Vec<i32>>,
    start_secs: Option<Duration>,
    start_retries: Option<Retries>,
    backoff_initial: Option<Duration>,
    backoff_max: Option<Duration>,
    backoff_reset: Option<Duration>,
    stop_signal: Option<i32>,
    stop_wait: Option<Duration>,
    stop_as_group: Option<bool>,
    kill_as_group: Option<bool>,
    priority: Option<i32>,
    redirect_stderr: Option<bool>,
    log_timestamps: Option<bool>,
    umask: Option<u32>,
    numprocs: Option<u32>,
    numprocs_start: Option<u32>,
    process_name: Option<Str>,
    stdout_log: LogOpts,
    stderr_log: LogOpts,
    limits: Vec<(Limit, u64)>,
    oneshot: Option<bool>,
    ready: Option<(Readiness, SourceSpan)>,
    start_timeout: Option<Duration>,
    watchdog: Option<(Duration, SourceSpan)>,
    health: Option<Health>,
    /// `depends-on` targets as written, with their conditions.
    depends_on: Vec<(Str, Condition)>,
    on_exit: Option<Str>,
    on_fatal: Option<Str>,
    on_unhealthy: Option<Str>,
    hook_timeout: Option<Duration>,
}

impl Opts {
    /// Fills what `self` leaves unset from `d`. Blocks merge setting by setting; `limits`
    /// merge by key. `environment` is left alone: its layering is done in `build`.
    fn or(self, d: &Opts) -> Opts {
        let mut limits = d.limits.clone();
        for (k, v) in self.limits {
            match limits.iter_mut().find(|(l, _)| *l == k) {
                Some(slot) => slot.1 = v,
                None => limits.push((k, v)),
            }
        }
        Opts {
            command: self.command.or_else(|| d.command.clone()),
            command_written: self.command_written || d.command_written,
            directory: self.directory.or_else(|| d.directory.clone()),
            environment: self.environment,
            env_file: self.env_file.or_else(|| d.env_file.clone()),
            autostart: self.autostart.or(d.autostart),
            autorestart: self.autorestart.or(d.autorestart),
            exit_codes: self.exit_codes.or_else(|| d.exit_codes.clone()),
            start_secs: self.start_secs.or(d.start_secs),
            start_retries: self.start_retries.or(d.start_retries),
            backoff_initial: self.backoff_initial.or(d.backoff_initial),
            backoff_max: self.backoff_max.or(d.backoff_max),
            backoff_reset: self.backoff_reset.or(d.backoff_reset),
            stop_signal: self.stop_signal.or(d.stop_signal),
            stop_wait: self.stop_wait.or(d.stop_wait),
            stop_as_group: self.stop_as_group.or(d.stop_as_group),
            kill_as_group: self.kill_as_group.or(d.kill_as_group),
            priority: self.priority.or(d.priority),
            redirect_stderr: self.redirect_stderr.or(d.redirect_stderr),
            log_timestamps: self.log_timestamps.or(d.log_timestamps),
            umask: self.umask.or(d.umask),
            numprocs: self.numprocs.or(d.numprocs),
            numprocs_start: self.numprocs_start.or(d.numprocs_start),
            process_name: self.process_name.or_else(|| d.process_name.clone()),
            stdout_log: self.stdout_log.or(&d.stdout_log),
            stderr_log: self.stderr_log.or(&d.stderr_log),
            limits,
            oneshot: self.oneshot.or(d.oneshot),
            ready: self.ready.or_else(|| d.ready.clone()),
            start_timeout: self.start_timeout.or(d.start_timeout),
            watchdog: self.watchdog.or(d.watchdog),
            health: self.health.or_else(|| d.health.clone()),
            // Dependencies are a program's own: `defaults` cannot name what every program needs.
            depends_on: self.depends_on,
            on_exit: self.on_exit.or_else(|| d.on_exit.clone()),
            on_fatal: self.on_fatal.or_else(|| d.on_fatal.clone()),
            on_unhealthy: self.on_unhealthy.or_else(|| d.on_unhealthy.clone()),
            hook_timeout: self.hook_timeout.or(d.hook_timeout),
        }
    }
}

#[derive(Debug)]
struct ProgramDef {
    name: Str,
    opts: Opts,
}

#[derive(Debug)]
struct GroupDef {
    name: Str,
    programs: Vec<Str>,
    priority: Option<i32>,
}

struct SourceFile {
    path: PathBuf,
    dir: PathBuf,
    source: NamedSource<Arc<String>>,
}

struct Loader<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    /// KDL files in the order they were read; index 0 is the main file.
    files: Vec<SourceFile>,
    /// Env files read, for `Config::files`.
    other_files: Vec<PathBuf>,
    diags: Vec<Diag>,
    /// Canonical paths of every KDL file read, so overlapping includes read a file once.
    loaded: HashSet<PathBuf>,
    /// Canonical paths of the include chain being read, to detect cycles.
    stack: Vec<PathBuf>,
    /// A file could not be read or parsed: cross-file checks would report false errors.
    incomplete: bool,
    programs: Vec<ProgramDef>,
    groups: Vec<GroupDef>,
    defaults: Option<(Opts, SourceSpan)>,
    access: Option<(Access, SourceSpan)>,
    /// Parsed env files by path (`None`: unreadable or invalid, already reported).
    env_files: HashMap<PathBuf, Option<Vec<(String, String)>>>,
}

impl Loader<'_> {
    // ----- diagnostics -------------------------------------------------------------------

    fn err(&mut self, file: usize, span: SourceSpan, message: impl Into<String>, label: &str, help: Option<String>) {
        let f = &self.files[file];
        self.diags.push(Diag {
            message: message.into(),
            file: f.path.clone(),
            source: Some(f.source.clone()),
            span: Some(span),
            label: Some(label.to_owned()),
            help,
        });
    }

    /// `path:line:col` of a span, for "first defined at" notes.
    fn locate(&self, file: usize, span: SourceSpan) -> String {
        let f = &self.files[file];
        match f.source.inner().read_span(&span, 0, 0) {
            Ok(c) => format!("{}:{}:{}", f.path.display(), c.line() + 1, c.column() + 1),
            Err(_) => f.path.display().to_string(),
        }
    }

    fn expand_err(&mut self, s: &Str, e: ExpandError) {
        let span = self.narrow(s, &e.token);
        self.err(s.file, span, e.message, "here", e.help);
    }

    /// Points at `token` inside the source text of `s` when it is there verbatim (it is,
    /// unless KDL escapes were involved), else at the whole value.
    fn narrow(&self, s: &Str, token: &str) -> SourceSpan {
        let text = self.files[s.file].source.inner();
        let raw = text.get(s.span.offset()..s.span.offset() + s.span.len()).unwrap_or("");
        match raw.find(token) {
            Some(i) if !token.is_empty() => (s.span.offset() + i, token.len()).into(),
            _ => s.span,
        }
    }

    // ----- files -------------------------------------------------------------------------

    fn file(&mut self, path: PathBuf, text: String) {
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        self.loaded.insert(canonical.clone());
        self.stack.push(canonical);
        let text = Arc::new(text);
        let idx = self.files.len();
        self.files.push(SourceFile {
            dir: path.parent().map(Path::to_owned).unwrap_or_default(),
            source: NamedSource::new(path.display().to_string(), Arc::clone(&text)),
            path,
        });
        match parse_kdl(&text) {
            Ok(doc) if idx == 0 && doc.nodes().is_empty() => self.empty_main_file(&text),
            Ok(doc) => self.top(idx, &doc),
            Err(Unparsed::Shape(p)) => {
                self.incomplete = true;
                self.err(idx, (p.offset, p.len).into(), p.message, p.label, Some(p.help));
            }
            Err(Unparsed::Kdl(e, balanced)) => {
                self.incomplete = true;
                self.kdl_errors(idx, &text, balanced, e.diagnostics);
            }
        }
        self.stack.pop();
    }

    /// The parser's diagnostics, with the mistakes people actually make explained: a
    /// supervisord INI file, an unquoted path, a KDL v1 `true`. The parser's words for those
    /// ("Expected identifier string", "Did you want a space here?") do not say what to do.
    fn kdl_errors(&mut self, fi: usize, text: &str, balanced: bool, diags: Vec<::kdl::KdlDiagnostic>) {
        let mut ini: Vec<(usize, usize)> = diags.iter().filter_map(|d| ini_header(text, d.span.offset())).collect();
        if !ini.is_empty() {
            // The rest of an INI file is INI too: its KDL errors would only be noise.
            ini.dedup();
            let file = self.files[fi].path.display().to_string();
            for (offset, len) in ini {
                self.err(
                    fi,
                    (offset, len).into(),
                    "this looks like supervisord's INI format, not KDL",
                    "an INI section",
                    Some(format!(
                        "convert it: run `svc import supervisord {file}` (it prints the KDL; -o FILE writes it)"
                    )),
                );
            }
            return;
        }
        let taught: Vec<Option<Teaching>> = diags.iter().map(|d| teach(text, d.span.offset())).collect();
        let words: Vec<(usize, usize)> = taught.iter().flatten().map(|t| t.word).collect();
        let mut done: Vec<(usize, usize)> = Vec::new();
        for (d, t) in diags.into_iter().zip(taught) {
            if let Some(t) = t {
                if !done.contains(&t.word) {
                    done.push(t.word);
                    self.err(fi, t.word.into(), t.message, t.label, Some(t.help));
                }
                continue;
            }
            let at = d.span.offset();
            if words.iter().any(|&(o, l)| (o..o + l).contains(&at)) {
                continue;
            }
            let message = d.message.unwrap_or_else(|| "invalid KDL".to_owned());
            // With every `{` closed, "no closing `}`" and "expected end of document" after an
            // explained mistake are the parser losing its place because of it.
            if !words.is_empty() && balanced && CASCADE.contains(&message.as_str()) {
                continue;
            }
            let label = d.label.unwrap_or_else(|| "here".to_owned());
            self.err(fi, d.span, message, &label, d.help);
        }
    }

    /// An empty main file is refused: it is what a reload reads while an editor or a script
    /// (`> svc.kdl`) is rewriting the file, and applying it would stop every program.
    fn empty_main_file(&mut self, text: &str) {
        self.incomplete = true;
        let what = if text.trim().is_empty() { "is empty" } else { "has nothing but comments" };
        let path = self.files[0].path.clone();
        let message = format!("config file {} {what}: refusing to stop every program", path.display());
        let help = "an empty config is what a reader sees while the file is being rewritten; write configs \
                    atomically: write a temp file and rename it over the config (mv svc.kdl.tmp svc.kdl). \
                    To stop everything, use `svc stop all` or `svc shutdown`"
            .to_owned();
        if text.is_empty() {
            let mut d = Diag::whole_file(&path, message);
            d.help = Some(help);
            self.diags.push(d);
        } else {
            self.err(0, (0, 0).into(), message, "this file", Some(help));
        }
    }

    fn top(&mut self, fi: usize, doc: &KdlDocument) {
        for node in doc.nodes() {
            match node.name().value() {
                "program" => self.program(fi, node),
                "group" => self.group(fi, node),
                "include" => self.include(fi, node),
                "defaults" => self.defaults(fi, node),
                "access" => self.access(fi, node),
                other => {
                    let help = if PROGRAM_SETTINGS.contains(&other) {
                        format!(
                            "`{other}` is a program setting: put it inside program \"NAME\" {{ ... }} or defaults {{ ... }}"
                        )
                    } else {
                        known_help(other, TOP_LEVEL, "known top-level nodes")
                    };
                    self.err(fi, node.name().span(), format!("unknown node `{other}`"), "unknown node", Some(help));
                }
            }
        }
    }

    fn include(&mut self, fi: usize, node: &KdlNode) {
        self.no_children(fi, node);
        let args = self.args(fi, node);
        if args.is_empty() {
            self.missing(fi, node, "include \"conf.d/*.kdl\"");
        }
        let dir = self.files[fi].dir.clone();
        for entry in args {
            let Some(raw) = self.string_value(fi, node, entry) else { continue };
            let cx = Context { env: self.env, program: None, name: None, num: None, here: &dir };
            let pattern = match expand::expand_path(&raw.value, &cx) {
                Ok(p) => p,
                Err(e) => {
                    self.expand_err(&raw, e);
                    continue;
                }
            };
            let mut paths = Vec::new();
            if raw.value.contains(['*', '?', '[']) {
                match glob::glob(&pattern.to_string_lossy()) {
                    Ok(found) => {
                        for item in found {
                            match item {
                                Ok(p) if p.is_file() => paths.push(p),
                                Ok(_) => {}
                                Err(e) => {
                                    self.incomplete = true;
                                    self.err(fi, raw.span, format!("cannot read {e}"), "this include", None);
                                }
                            }
                        }
                    }
                    Err(e) => self.err(
                        fi,
                        raw.span,
                        format!("invalid glob pattern: {}", e.msg),
                        "this pattern",
                        Some("`*`, `?` and `[abc]` are special; write `[*]` for a literal `*`".into()),
                    ),
                }
                paths.sort();
            } else {
                paths.push(pattern);
            }
            for path in paths {
                self.include_file(fi, &raw, path);
            }
        }
    }

    fn include_file(&mut self, fi: usize, raw: &Str, path: PathBuf) {
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if self.stack.contains(&canonical) {
            let mut chain: Vec<String> = self.stack.iter().map(|p| p.display().to_string()).collect();
            chain.push(canonical.display().to_string());
            self.err(
                fi,
                raw.span,
                format!("include cycle: {}", chain.join(" -> ")),
                "includes a file that includes this one",
                Some("remove one of the includes".into()),
            );
            return;
        }
        if self.loaded.contains(&canonical) {
            return;
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.err(fi, raw.span, format!("includes are nested more than {MAX_INCLUDE_DEPTH} deep"), "here", None);
            return;
        }
        match read_regular(&path) {
            Ok(text) => self.file(path, text),
            Err(e) => {
                self.incomplete = true;
                let message = if e.kind() == std::io::ErrorKind::NotFound {
                    format!("included file {} does not exist", path.display())
                } else {
                    format!("cannot read included file {}: {e}", path.display())
                };
                self.err(
                    fi,
                    raw.span,
                    message,
                    "this include",
                    Some(
                        "paths are relative to the including file; a glob such as \"conf.d/*.kdl\" may match nothing"
                            .into(),
                    ),
                );
            }
        }
    }

    fn defaults(&mut self, fi: usize, node: &KdlNode) {
        if fi != 0 {
            self.err(
                fi,
                node.name().span(),
                "`defaults` is only allowed in the main file",
                "in an included file",
                Some("move it to the main configuration file".into()),
            );
            return;
        }
        if let Some((_, first)) = &self.defaults {
            let at = self.locate(fi, *first);
            self.err(
                fi,
                node.name().span(),
                "`defaults` is given twice",
                "second one",
                Some(format!("the first is at {at}; merge them")),
            );
            return;
        }
        let Some(block) = self.block(fi, node) else { return };
        let opts = self.opts(fi, block, "defaults");
        self.defaults = Some((opts, node.name().span()));
    }

    fn program(&mut self, fi: usize, node: &KdlNode) {
        let Some(name) = self.block_name(fi, node, "program") else { return };
        let opts = match node.children() {
            Some(block) => self.opts(fi, block, &format!("program `{}`", name.value)),
            None => Opts::default(),
        };
        self.programs.push(ProgramDef { name, opts });
    }

    /// `access { group "NAME" read-only=#true }`, main file only, at most once.
    fn access(&mut self, fi: usize, node: &KdlNode) {
        if fi != 0 {
            self.err(fi, node.name().span(), "`access` belongs in the main config file", "here", None);
            return;
        }
        if let Some((_, first)) = &self.access {
            let at = self.locate(fi, *first);
            self.err(
                fi,
                node.name().span(),
                "`access` is set twice",
                "set again here",
                Some(format!("first set at {at}")),
            );
            return;
        }
        self.args(fi, node);
        let example = "access { group \"devs\" read-only=#true }";
        let Some(block) = node.children() else {
            self.err(fi, node.name().span(), "`access` needs a group", "here", Some(format!("write: {example}")));
            return;
        };
        let nodes: Vec<&KdlNode> = block.nodes().iter().collect();
        let Some(g) = nodes.iter().find(|n| n.name().value() == "group") else {
            self.err(fi, node.name().span(), "`access` needs a group", "here", Some(format!("write: {example}")));
            return;
        };
        for n in nodes.iter().filter(|n| n.name().value() != "group") {
            self.err(
                fi,
                n.name().span(),
                format!("unknown setting `{}` in access", n.name().value()),
                "unknown setting",
                Some(format!("write: {example}")),
            );
        }
        let mut read_only = true;
        let mut name = None;
        for e in g.entries() {
            match (e.name().map(|n| n.value()), e.value()) {
                (None, KdlValue::String(s)) if name.is_none() => name = Some((s.clone(), e.span())),
                (Some("read-only"), KdlValue::Bool(b)) => read_only = *b,
                _ => self.err(
                    fi,
                    e.span(),
                    "unexpected value in `group`",
                    "unexpected",
                    Some(format!("write: {example}")),
                ),
            }
        }
        let Some((group, span)) = name else {
            self.err(fi, g.name().span(), "`group` needs a group name", "here", Some(format!("write: {example}")));
            return;
        };
        match nix::unistd::Group::from_name(&group) {
            Ok(Some(gr)) => {
                self.access = Some((Access { group, gid: gr.gid.as_raw(), read_only }, node.name().span()));
            }
            _ => self.err(
                fi,
                span,
                format!("no such group `{group}` on this system"),
                "unknown group",
                Some("create it, or ask your administrator to (svc cannot share a socket with a group that does not exist)".into()),
            ),
        }
    }

    fn group(&mut self, fi: usize, node: &KdlNode) {
        let Some(name) = self.block_name(fi, node, "group") else { return };
        let mut def = GroupDef { name, programs: Vec::new(), priority: None };
        let owner = format!("group `{}`", def.name.value);
        let children = match node.children() {
            Some(block) => self.settings(fi, block, &owner, GROUP_SETTINGS),
            None => Vec::new(),
        };
        let mut has_programs = false;
        for n in children {
            match n.name().value() {
                "programs" => {
                    has_programs = true;
                    self.no_children(fi, n);
                    let args = self.args(fi, n);
                    if args.is_empty() {
                        self.missing(fi, n, "programs \"web\" \"worker\"");
                    }
                    for e in args {
                        if let Some(s) = self.string_value(fi, n, e) {
                            def.programs.push(s);
                        }
                    }
                }
                "priority" => def.priority = self.int(fi, n, i32::MIN as i64, i32::MAX as i64).map(|v| v as i32),
                _ => {}
            }
        }
        if !has_programs {
            self.err(
                fi,
                def.name.span,
                format!("group `{}` has no `programs`", def.name.value),
                "this group",
                Some(format!("write: group \"{}\" {{ programs \"a\" \"b\" }}", def.name.value)),
            );
        }
        self.groups.push(def);
    }

    /// The `"NAME"` of `program "NAME" { }` / `group "NAME" { }`, checked.
    fn block_name(&mut self, fi: usize, node: &KdlNode, kind: &str) -> Option<Str> {
        let args = self.args(fi, node);
        let Some(first) = args.first() else {
            self.err(
                fi,
                node.name().span(),
                format!("`{kind}` needs a name"),
                "no name",
                Some(format!("write: {kind} \"NAME\" {{ ... }}")),
            );
            return None;
        };
        if let Some(extra) = args.get(1) {
            self.err(fi, extra.span(), format!("`{kind}` takes one name"), "unexpected", None);
        }
        let name = self.string_value(fi, node, first)?;
        if let Err(why) = check_name(&name.value) {
            self.err(
                fi,
                name.span,
                format!("invalid {kind} name `{}`: {why}", name.value),
                "invalid name",
                Some(NAME_RULE.into()),
            );
            // Still check a program's settings, but nothing that would refer to the bad name.
            self.incomplete = true;
            if let (Some(block), "program") = (node.children(), kind) {
                self.opts(fi, block, &format!("program `{}`", name.value));
            }
            return None;
        }
        Some(name)
    }

    // ----- node shapes -------------------------------------------------------------------

    /// The arguments of `n`; every property is reported as an error.
    fn args<'n>(&mut self, fi: usize, n: &'n KdlNode) -> Vec<&'n KdlEntry> {
        let key = n.name().value();
        let mut out = Vec::new();
        for e in n.entries() {
            match e.name() {
                None => out.push(e),
                Some(prop) => self.err(
                    fi,
                    e.span(),
                    format!("`{key}` takes no properties (key=value), got `{}=`", prop.value()),
                    "unexpected property",
                    example(key).map(|x| format!("write: {x}")),
                ),
            }
        }
        out
    }

    /// The `{` that opens a children block (the block's own span starts inside it).
    fn brace(&self, fi: usize, block: &KdlDocument) -> SourceSpan {
        let at = block.span().offset();
        match self.files[fi].source.inner().get(..at).and_then(|t| t.rfind('{')) {
            Some(open) => (open, 1).into(),
            None => block.span(),
        }
    }

    fn no_children(&mut self, fi: usize, n: &KdlNode) {
        if let Some(c) = n.children() {
            let key = n.name().value();
            let span = self.brace(fi, c);
            self.err(
                fi,
                span,
                format!("`{key}` takes no block"),
                "unexpected block",
                example(key).map(|x| format!("write: {x}")),
            );
        }
    }

    fn missing(&mut self, fi: usize, n: &KdlNode, example: &str) {
        let key = n.name().value();
        self.err(fi, n.name().span(), format!("`{key}` needs a value"), "no value", Some(format!("write: {example}")));
    }

    /// The single argument of a one-value setting; shape errors are reported.
    fn one<'n>(&mut self, fi: usize, n: &'n KdlNode) -> Option<&'n KdlEntry> {
        self.no_children(fi, n);
        let args = self.args(fi, n);
        let key = n.name().value();
        match args.as_slice() {
            [] => {
                // `key prop=value` was already reported as a property.
                if n.entries().is_empty() {
                    self.missing(fi, n, example(key).unwrap_or(key));
                }
                None
            }
            [one] => Some(one),
            [first, extra, ..] => {
                self.err(
                    fi,
                    extra.span(),
                    format!("`{key}` takes one value"),
                    "unexpected",
                    example(key).map(|x| format!("write: {x}")),
                );
                Some(first)
            }
        }
    }

    /// The children of a block setting; arguments, properties and a missing block are errors.
    fn block<'n>(&mut self, fi: usize, n: &'n KdlNode) -> Option<&'n KdlDocument> {
        let key = n.name().value();
        let hint = example(key).map(|x| format!("write: {x}"));
        for e in self.args(fi, n) {
            self.err(
                fi,
                e.span(),
                format!("`{key}` takes a block {{ ... }}, not a value"),
                "unexpected value",
                hint.clone(),
            );
        }
        if n.children().is_none() && n.entries().is_empty() {
            self.err(fi, n.name().span(), format!("`{key}` needs a block {{ ... }}"), "no block", hint);
        }
        n.children()
    }

    /// The nodes of `block` whose names are in `known`; duplicates and unknown names are errors.
    fn settings<'n>(&mut self, fi: usize, block: &'n KdlDocument, owner: &str, known: &[&str]) -> Vec<&'n KdlNode> {
        let mut seen: HashMap<&str, SourceSpan> = HashMap::new();
        let mut out = Vec::new();
        for n in block.nodes() {
            let key = n.name().value();
            if !known.contains(&key) {
                let help = unknown_help(key, known);
                self.err(
                    fi,
                    n.name().span(),
                    format!("unknown setting `{key}` in {owner}"),
                    "unknown setting",
                    Some(help),
                );
                continue;
            }
            if let Some(first) = seen.get(key) {
                let at = self.locate(fi, *first);
                self.err(
                    fi,
                    n.name().span(),
                    format!("`{key}` is set twice in {owner}"),
                    "set again here",
                    Some(format!("first set at {at}; keep one")),
                );
                continue;
            }
            seen.insert(key, n.name().span());
            out.push(n);
        }
        out
    }

    // ----- typed values ------------------------------------------------------------------

    fn string_value(&mut self, fi: usize, n: &KdlNode, e: &KdlEntry) -> Option<Str> {
        match e.value() {
            KdlValue::String(s) => Some(Str { value: s.clone(), span: e.span(), file: fi }),
            _ => {
                let key = n.name().value();
                self.err(
                    fi,
                    e.span(),
                    format!("`{key}` expects a string, got {}", repr(e)),
                    "not a string",
                    Some(format!("quote it: \"{}\"", repr(e))),
                );
                None
            }
        }
    }

    fn string(&mut self, fi: usize, n: &KdlNode) -> Option<Str> {
        let e = self.one(fi, n)?;
        self.string_value(fi, n, e)
    }

    fn boolean(&mut self, fi: usize, n: &KdlNode) -> Option<bool> {
        let e = self.one(fi, n)?;
        if let KdlValue::Bool(b) = e.value() {
            return Some(*b);
        }
        let key = n.name().value();
        self.err(
            fi,
            e.span(),
            format!("`{key}` expects #true or #false, got {}", repr(e)),
            "not a boolean",
            Some("KDL booleans are written #true and #false".into()),
        );
        None
    }

    fn int_value(&mut self, fi: usize, n: &KdlNode, e: &KdlEntry, min: i64, max: i64) -> Option<i64> {
        let key = n.name().value();
        match e.value() {
            KdlValue::Integer(i) if (min as i128..=max as i128).contains(i) => Some(*i as i64),
            KdlValue::Integer(_) => {
                self.err(
                    fi,
                    e.span(),
                    format!("`{key}` must be between {min} and {max}, got {}", repr(e)),
                    "out of range",
                    None,
                );
                None
            }
            _ => {
                self.err(fi, e.span(), format!("`{key}` expects an integer, got {}", repr(e)), "not an integer", None);
                None
            }
        }
    }

    fn int(&mut self, fi: usize, n: &KdlNode, min: i64, max: i64) -> Option<i64> {
        let e = self.one(fi, n)?;
        self.int_value(fi, n, e, min, max)
    }

    fn u32(&mut self, fi: usize, n: &KdlNode, min: u32, max: u32) -> Option<u32> {
        self.int(fi, n, min.into(), max.into()).map(|v| v as u32)
    }

    fn duration(&mut self, fi: usize, n: &KdlNode) -> Option<Duration> {
        let e = self.one(fi, n)?;
        let d = match e.value() {
            KdlValue::Integer(i) => u64::try_from(*i).ok().map(Duration::from_secs),
            KdlValue::Float(f) if *f >= 0.0 => Duration::try_from_secs_f64(*f).ok(),
            KdlValue::String(s) => parse_duration(s),
            _ => None,
        };
        if d.is_none() {
            let key = n.name().value();
            self.err(
                fi,
                e.span(),
                format!("`{key}` expects seconds or a duration, got {}", repr(e)),
                "not a duration",
                Some(
                    "write a number of seconds (5, 1.5) or a duration string (\"500ms\", \"1.5s\", \"2m\", \"1h 30m\")"
                        .into(),
                ),
            );
        }
        d
    }

    fn size(&mut self, fi: usize, n: &KdlNode) -> Option<u64> {
        let e = self.one(fi, n)?;
        let s = match e.value() {
            KdlValue::Integer(i) => u64::try_from(*i).ok(),
            KdlValue::String(s) => parse_size(s),
            _ => None,
        };
        if s.is_none() {
            let key = n.name().value();
            self.err(
                fi,
                e.span(),
                format!("`{key}` expects a size, got {}", repr(e)),
                "not a size",
                Some(
                    "write bytes (1048576) or a size string (\"500KB\", \"50MB\", \"1GiB\"; units are 1024-based)"
                        .into(),
                ),
            );
        }
        s
    }

    // ----- program settings --------------------------------------------------------------

    fn opts(&mut self, fi: usize, block: &KdlDocument, owner: &str) -> Opts {
        let mut o = Opts::default();
        let mut seen: HashMap<&str, SourceSpan> = HashMap::new();
        for n in block.nodes() {
            let key = n.name().value();
            if key == "user" {
                self.err(
                    fi,
                    n.name().span(),
                    "svc never runs programs as another user",
                    "not supported",
                    Some("run a separate svc as that user (for example with its own `svc install`)".into()),
                );
                continue;
            }
            if !PROGRAM_SETTINGS.contains(&key) {
                let help = unknown_help(key, PROGRAM_SETTINGS);
                self.err(
                    fi,
                    n.name().span(),
                    format!("unknown setting `{key}` in {owner}"),
                    "unknown setting",
                    Some(help),
                );
                continue;
            }
            if let Some(first) = seen.get(key)
                && key != "depends-on"
            {
                let at = self.locate(fi, *first);
                self.err(
                    fi,
                    n.name().span(),
                    format!("`{key}` is set twice in {owner}"),
                    "set again here",
                    Some(format!("first set at {at}; keep one")),
                );
                continue;
            }
            seen.insert(key, n.name().span());
            match key {
                "oneshot" => o.oneshot = self.boolean(fi, n),
                "ready" => o.ready = self.ready(fi, n).map(|r| (r, n.span())),
                "start-timeout" => o.start_timeout = self.duration(fi, n),
                "watchdog-secs" => o.watchdog = self.duration(fi, n).map(|d| (d, n.span())),
                "health" => o.health = self.health(fi, n, owner),
                "depends-on" => {
                    if owner == "defaults" {
                        self.err(
                            fi,
                            n.name().span(),
                            "`depends-on` belongs in a program, not in `defaults`",
                            "here",
                            Some("write it in each program that needs the other".into()),
                        );
                    } else {
                        let deps = self.depends_on(fi, n);
                        o.depends_on.extend(deps);
                    }
                }
                "command" => {
                    o.command_written = true;
                    o.command = self.command(fi, n);
                }
                "directory" => o.directory = self.string(fi, n),
                "environment" => o.environment = self.environment(fi, n, owner),
                "env-file" => o.env_file = self.string(fi, n),
                "autostart" => o.autostart = self.boolean(fi, n),
                "autorestart" => o.autorestart = self.autorestart(fi, n),
                "exit-codes" => o.exit_codes = self.exit_codes(fi, n),
                "start-secs" => o.start_secs = self.duration(fi, n),
                "start-retries" => o.start_retries = self.retries(fi, n),
                "backoff" => self.backoff(fi, n, owner, &mut o),
                "stop-signal" => o.stop_signal = self.signal(fi, n),
                "stop-wait-secs" => o.stop_wait = self.duration(fi, n),
                "stop-as-group" => o.stop_as_group = self.boolean(fi, n),
                "kill-as-group" => o.kill_as_group = self.boolean(fi, n),
                "priority" => o.priority = self.int(fi, n, i32::MIN.into(), i32::MAX.into()).map(|v| v as i32),
                "redirect-stderr" => o.redirect_stderr = self.boolean(fi, n),
                "log-timestamps" => o.log_timestamps = self.boolean(fi, n),
                "umask" => o.umask = self.umask(fi, n),
                "numprocs" => o.numprocs = self.u32(fi, n, 1, MAX_NUMPROCS),
                "numprocs-start" => o.numprocs_start = self.u32(fi, n, 0, u32::MAX),
                "process-name" => o.process_name = self.string(fi, n),
                "stdout-log" => o.stdout_log = self.log(fi, n, owner),
                "stderr-log" => o.stderr_log = self.log(fi, n, owner),
                "limits" => o.limits = self.limits(fi, n, owner),
                "on-exit" => o.on_exit = self.hook(fi, n),
                "on-fatal" => o.on_fatal = self.hook(fi, n),
                "on-unhealthy" => o.on_unhealthy = self.hook(fi, n),
                "hook-timeout" => o.hook_timeout = self.duration(fi, n),
                _ => {}
            }
        }
        o
    }

    /// A hook's command. `on-unhealthy "restart"` at program level is surely meant for the
    /// `health` block, where it picks what happens: as a shell command it would fail anyway.
    fn hook(&mut self, fi: usize, n: &KdlNode) -> Option<Str> {
        let s = self.string(fi, n)?;
        if n.name().value() == "on-unhealthy" && matches!(s.value.as_str(), "restart" | "ignore") {
            self.err(
                fi,
                n.span(),
                format!("`on-unhealthy \"{}\"` at program level is a hook: a command to run", s.value),
                "not a command",
                Some(format!("to choose what an unhealthy program does, write it in its health block: health {{ ...; on-unhealthy \"{}\" }}", s.value)),
            );
            return None;
        }
        if s.value.contains('\0') {
            self.err(fi, n.span(), format!("`{}` contains a NUL character", n.name().value()), "here", None);
            return None;
        }
        Some(s)
    }

    /// A duration written as seconds or a duration string, in `e` of setting `n`.
    fn duration_of(&mut self, fi: usize, what: &str, e: &KdlEntry) -> Option<Duration> {
        let d = match e.value() {
            KdlValue::Integer(i) => u64::try_from(*i).ok().map(Duration::from_secs),
            KdlValue::Float(f) if *f >= 0.0 => Duration::try_from_secs_f64(*f).ok(),
            KdlValue::String(s) => parse_duration(s),
            _ => None,
        };
        if d.is_none() {
            self.err(
                fi,
                e.span(),
                format!("`{what}` expects seconds or a duration, got {}", repr(e)),
                "not a duration",
                Some("write a number of seconds (5, 1.5) or a duration string (\"500ms\", \"2m\")".into()),
            );
        }
        d
    }

    /// `host:port` from `tcp=8000` or `tcp="db.local:5432"`.
    fn tcp_target(&mut self, fi: usize, what: &str, e: &KdlEntry) -> Option<String> {
        match e.value() {
            KdlValue::Integer(p) if (1..=65535).contains(p) => Some(format!("127.0.0.1:{p}")),
            KdlValue::String(s)
                if s.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)) =>
            {
                Some(s.clone())
            }
            _ => {
                self.err(
                    fi,
                    e.span(),
                    format!("`{what}` expects a port (8000) or \"host:port\", got {}", repr(e)),
                    "not a port",
                    None,
                );
                None
            }
        }
    }

    /// The check of a probe, from its kind and value (`tcp`, `http`, `exec`, `log`).
    fn check_of(&mut self, fi: usize, kind: &str, e: &KdlEntry) -> Option<Check> {
        if kind == "tcp" {
            return self.tcp_target(fi, kind, e).map(Check::Tcp);
        }
        let KdlValue::String(v) = e.value() else {
            self.err(fi, e.span(), format!("`{kind}` expects a string, got {}", repr(e)), "not a string", None);
            return None;
        };
        match kind {
            "http" if v.starts_with("https://") => {
                self.err(
                    fi,
                    e.span(),
                    "`http` checks speak plain HTTP; https is not supported",
                    "https",
                    Some("check the plain-HTTP port on loopback, or use exec=\"curl -fsS https://...\"".into()),
                );
                None
            }
            "http" if !v.starts_with("http://") || v.len() <= "http://".len() => {
                self.err(fi, e.span(), "`http` expects a URL like \"http://127.0.0.1:8000/health\"", "not a URL", None);
                None
            }
            "http" => Some(Check::Http(v.clone())),
            _ if v.trim().is_empty() => {
                self.err(fi, e.span(), format!("`{kind}` is empty"), "empty", None);
                None
            }
            "exec" => Some(Check::Exec(v.clone())),
            _ => Some(Check::Log(v.clone())),
        }
    }

    /// `ready "notify"`, `ready "fd" 3`, or `ready tcp=8000 interval="1s" ...`.
    fn ready(&mut self, fi: usize, n: &KdlNode) -> Option<Readiness> {
        self.no_children(fi, n);
        let hint = "write: ready \"notify\", ready \"fd\" 3, ready tcp=8000, ready http=\"http://127.0.0.1:8000/health\", \
                    ready exec=\"pg_isready -q\" or ready log=\"listening on\"";
        let positional: Vec<&KdlEntry> = n.entries().iter().filter(|e| e.name().is_none()).collect();
        let mut probe = Probe {
            check: Check::Log(String::new()),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            start_period: Duration::ZERO,
        };
        let mut check: Option<Check> = None;
        let mut ok = true;
        for e in n.entries().iter().filter(|e| e.name().is_some()) {
            let key = e.name().map(|k| k.value()).unwrap_or_default();
            match key {
                "interval" => probe.interval = self.duration_of(fi, key, e).unwrap_or(probe.interval),
                "timeout" => probe.timeout = self.duration_of(fi, key, e).unwrap_or(probe.timeout),
                "start-period" => probe.start_period = self.duration_of(fi, key, e).unwrap_or(probe.start_period),
                "tcp" | "http" | "exec" | "log" if check.is_some() => {
                    self.err(fi, e.span(), "`ready` takes one check", "second check", Some(hint.into()));
                    ok = false;
                }
                "tcp" | "http" | "exec" | "log" => match self.check_of(fi, key, e) {
                    Some(c) => check = Some(c),
                    None => ok = false,
                },
                other => {
                    self.err(
                        fi,
                        e.span(),
                        format!("unknown property `{other}` of `ready`"),
                        "unknown",
                        Some(known_help(other, READY_PROPERTIES, "properties")),
                    );
                    ok = false;
                }
            }
        }
        let word = |e: &KdlEntry| match e.value() {
            KdlValue::String(s) => Some(s.clone()),
            _ => None,
        };
        match (positional.as_slice(), check) {
            ([], Some(c)) => ok.then_some(Readiness::Probe(Box::new(Probe { check: c, ..probe }))),
            ([], None) => {
                if ok {
                    self.err(fi, n.name().span(), "`ready` needs a check", "no check", Some(hint.into()));
                }
                None
            }
            ([kind], None) if word(kind).as_deref() == Some("notify") => Some(Readiness::Notify),
            ([kind, fd], None) if word(kind).as_deref() == Some("fd") => {
                self.int_value(fi, n, fd, 3, 1023).map(|v| Readiness::Fd(v as u32))
            }
            ([kind], None) if word(kind).as_deref() == Some("fd") => {
                self.err(
                    fi,
                    kind.span(),
                    "`ready \"fd\"` needs the descriptor number",
                    "which fd?",
                    Some("write: ready \"fd\" 3".into()),
                );
                None
            }
            ([first, ..], _) => {
                self.err(
                    fi,
                    first.span(),
                    format!("`ready` does not know {}", repr(first)),
                    "unknown",
                    Some(hint.into()),
                );
                None
            }
        }
    }

    /// `health { exec "..."; interval "10s"; timeout "2s"; retries 3; on-unhealthy "restart" }`.
    fn health(&mut self, fi: usize, n: &KdlNode, owner: &str) -> Option<Health> {
        let block = self.block(fi, n)?;
        let mut health = Health {
            probe: Probe {
                check: Check::Log(String::new()),
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(2),
                start_period: Duration::ZERO,
            },
            retries: 3,
            restart: true,
        };
        let mut check = None;
        let mut ok = true;
        for s in self.settings(fi, block, &format!("`health` of {owner}"), HEALTH_SETTINGS) {
            let key = s.name().value();
            match key {
                "interval" => health.probe.interval = self.duration(fi, s).unwrap_or(health.probe.interval),
                "timeout" => health.probe.timeout = self.duration(fi, s).unwrap_or(health.probe.timeout),
                "start-period" => health.probe.start_period = self.duration(fi, s).unwrap_or(health.probe.start_period),
                "retries" => health.retries = self.u32(fi, s, 1, 1000).unwrap_or(health.retries),
                "on-unhealthy" => match self.string(fi, s).as_ref().map(|v| v.value.as_str()) {
                    Some("restart") => health.restart = true,
                    Some("ignore") => health.restart = false,
                    Some(other) => {
                        let at = s.entries().first().map_or(s.span(), |e| e.span());
                        self.err(
                            fi,
                            at,
                            format!("`on-unhealthy` is \"restart\" or \"ignore\", not \"{other}\""),
                            "unknown",
                            None,
                        );
                    }
                    None => {}
                },
                _ => {
                    let Some(e) = self.one(fi, s) else {
                        ok = false;
                        continue;
                    };
                    if check.is_some() {
                        self.err(
                            fi,
                            s.name().span(),
                            "`health` takes one check (exec, tcp or http)",
                            "second check",
                            None,
                        );
                        ok = false;
                    } else {
                        match self.check_of(fi, key, e) {
                            Some(c) => check = Some(c),
                            None => ok = false,
                        }
                    }
                }
            }
        }
        match check {
            Some(c) => ok.then_some(Health { probe: Probe { check: c, ..health.probe }, ..health }),
            None => {
                if ok {
                    self.err(
                        fi,
                        n.name().span(),
                        "`health` needs a check",
                        "no check",
                        Some("write: health { exec \"curl -fsS localhost:8000/health\" } (or tcp 8000, or http \"http://...\")".into()),
                    );
                }
                None
            }
        }
    }

    /// `depends-on "db" "cache"` or `depends-on "migrate" condition="completed-successfully"`.
    fn depends_on(&mut self, fi: usize, n: &KdlNode) -> Vec<(Str, Condition)> {
        self.no_children(fi, n);
        let mut condition = Condition::Ready;
        let mut targets = Vec::new();
        for e in n.entries() {
            match e.name().map(|k| k.value()) {
                Some("condition") => {
                    let word = match e.value() {
                        KdlValue::String(s) => Some(s.as_str()),
                        _ => None,
                    };
                    match Condition::ALL.iter().find(|c| Some(c.as_str()) == word) {
                        Some(c) => condition = *c,
                        None => {
                            let names: Vec<&str> = Condition::ALL.iter().map(|c| c.as_str()).collect();
                            self.err(
                                fi,
                                e.span(),
                                format!("unknown condition {}", repr(e)),
                                "unknown",
                                Some(known_help(word.unwrap_or_default(), &names, "conditions")),
                            );
                        }
                    }
                }
                Some(other) => self.err(
                    fi,
                    e.span(),
                    format!("unknown property `{other}` of `depends-on`"),
                    "unknown",
                    Some("write: depends-on \"db\" condition=\"ready\"".into()),
                ),
                None => {
                    if let Some(s) = self.string_value(fi, n, e) {
                        targets.push(s);
                    }
                }
            }
        }
        if targets.is_empty() && n.entries().iter().all(|e| e.name().is_some()) {
            self.missing(fi, n, "depends-on \"db\"");
        }
        targets.into_iter().map(|t| (t, condition)).collect()
    }

    fn command(&mut self, fi: usize, n: &KdlNode) -> Option<(Command, SourceSpan)> {
        self.no_children(fi, n);
        let args = self.args(fi, n);
        let mut words = Vec::new();
        for e in &args {
            words.extend(self.string_value(fi, n, e));
        }
        if args.is_empty() {
            self.missing(fi, n, "command \"python3 -m http.server 8000\"");
            return None;
        }
        if words.len() != args.len() {
            return None;
        }
        let span = match (args.first(), args.last()) {
            (Some(a), Some(b)) => (a.span().offset(), b.span().offset() + b.span().len() - a.span().offset()).into(),
            _ => n.span(),
        };
        let cmd = if words.len() == 1 { Command::Shell(words.remove(0)) } else { Command::Argv(words) };
        Some((cmd, span))
    }

    fn environment(&mut self, fi: usize, n: &KdlNode, owner: &str) -> Vec<(String, Str)> {
        let Some(block) = self.block(fi, n) else { return Vec::new() };
        let mut out: Vec<(String, Str)> = Vec::new();
        let mut seen: HashMap<&str, SourceSpan> = HashMap::new();
        for var in block.nodes() {
            let key = var.name().value();
            if key.is_empty() || key.contains(['=', '\0']) {
                self.err(
                    fi,
                    var.name().span(),
                    format!("`{key}` is not a valid environment variable name"),
                    "invalid name",
                    Some("names can't be empty or contain `=`".into()),
                );
                continue;
            }
            if let Some(first) = seen.get(key) {
                let at = self.locate(fi, *first);
                self.err(
                    fi,
                    var.name().span(),
                    format!("`{key}` is set twice in the environment of {owner}"),
                    "set again here",
                    Some(format!("first set at {at}")),
                );
                continue;
            }
            seen.insert(key, var.name().span());
            if let Some(c) = var.children() {
                self.err(
                    fi,
                    c.span(),
                    format!("environment variable `{key}` takes a value, not a block"),
                    "unexpected block",
                    None,
                );
            }
            let args = self.args(fi, var);
            let Some(e) = args.first() else {
                self.err(
                    fi,
                    var.name().span(),
                    format!("environment variable `{key}` needs a value"),
                    "no value",
                    Some(format!("write: {key} \"value\"")),
                );
                continue;
            };
            if let Some(extra) = args.get(1) {
                self.err(
                    fi,
                    extra.span(),
                    format!("environment variable `{key}` takes one value"),
                    "unexpected",
                    Some("quote the whole value: KEY \"a b\"".into()),
                );
            }
            let value = match e.value() {
                KdlValue::String(s) => s.clone(),
                KdlValue::Integer(i) => i.to_string(),
                KdlValue::Float(f) => f.to_string(),
                KdlValue::Bool(b) => b.to_string(),
                KdlValue::Null => {
                    self.err(
                        fi,
                        e.span(),
                        format!("environment variable `{key}` can't be #null"),
                        "null",
                        Some("give a string value; to pass an empty variable write \"\"".into()),
                    );
                    continue;
                }
            };
            out.push((key.to_owned(), Str { value, span: e.span(), file: fi }));
        }
        out
    }

    fn autorestart(&mut self, fi: usize, n: &KdlNode) -> Option<AutoRestart> {
        let e = self.one(fi, n)?;
        match e.value() {
            KdlValue::Bool(true) => Some(AutoRestart::Always),
            KdlValue::Bool(false) => Some(AutoRestart::Never),
            KdlValue::String(s) if s == "unexpected" => Some(AutoRestart::Unexpected),
            _ => {
                self.err(
                    fi,
                    e.span(),
                    format!("`autorestart` expects #true, #false or \"unexpected\", got {}", repr(e)),
                    "invalid value",
                    Some(
                        "#true: always restart; #false: never; \"unexpected\": when the exit code is not in exit-codes"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    fn exit_codes(&mut self, fi: usize, n: &KdlNode) -> Option<Vec<i32>> {
        self.no_children(fi, n);
        let args = self.args(fi, n);
        if args.is_empty() {
            self.missing(fi, n, "exit-codes 0 2");
            return None;
        }
        let mut codes = Vec::new();
        for e in args {
            codes.push(self.int_value(fi, n, e, 0, 255)? as i32);
        }
        Some(codes)
    }

    fn retries(&mut self, fi: usize, n: &KdlNode) -> Option<Retries> {
        let e = self.one(fi, n)?;
        match e.value() {
            KdlValue::String(s) if s == "infinite" => Some(Retries::Infinite),
            KdlValue::Integer(_) => self.int_value(fi, n, e, 0, u32::MAX.into()).map(|v| Retries::Count(v as u32)),
            _ => {
                self.err(
                    fi,
                    e.span(),
                    format!("`start-retries` expects a count or \"infinite\", got {}", repr(e)),
                    "invalid value",
                    None,
                );
                None
            }
        }
    }

    fn backoff(&mut self, fi: usize, n: &KdlNode, owner: &str, o: &mut Opts) {
        let Some(block) = self.block(fi, n) else { return };
        for s in self.settings(fi, block, &format!("`backoff` of {owner}"), BACKOFF_SETTINGS) {
            let d = self.duration(fi, s);
            match s.name().value() {
                "initial" => o.backoff_initial = d,
                "max" => o.backoff_max = d,
                _ => o.backoff_reset = d,
            }
        }
    }

    fn signal(&mut self, fi: usize, n: &KdlNode) -> Option<i32> {
        let e = self.one(fi, n)?;
        let found = match e.value() {
            KdlValue::String(s) => svc_platform::signal_from_name(s),
            KdlValue::Integer(i) => svc_platform::signal_from_name(&i.to_string()),
            _ => None,
        };
        if found.is_none() {
            self.err(
                fi,
                e.span(),
                format!("unknown signal {}", repr(e)),
                "not a signal",
                Some("use a name such as \"TERM\", \"INT\", \"QUIT\", \"HUP\", \"KILL\", \"USR1\", \"USR2\" (with or without SIG), or a number".into()),
            );
        }
        found
    }

    fn umask(&mut self, fi: usize, n: &KdlNode) -> Option<u32> {
        let e = self.one(fi, n)?;
        let help = Some("write it in octal: umask \"022\" or umask 0o022".to_owned());
        let value = match e.value() {
            KdlValue::String(s) => {
                let digits = s.strip_prefix("0o").unwrap_or(s);
                u32::from_str_radix(digits, 8).ok().filter(|_| !digits.is_empty())
            }
            KdlValue::Integer(i) => {
                // KDL reads `022` as decimal 22; only an explicit 0o literal is surely octal.
                let written = e.format().map(|f| f.value_repr.as_str()).unwrap_or("");
                if !written.is_empty() && !written.starts_with("0o") && *i != 0 {
                    self.err(fi, e.span(), format!("`umask` {written} is read as a decimal number"), "ambiguous", help);
                    return None;
                }
                u32::try_from(*i).ok()
            }
            _ => None,
        };
        match value {
            Some(v) if v <= 0o777 => Some(v),
            _ => {
                self.err(
                    fi,
                    e.span(),
                    format!("`umask` expects an octal mask up to 777, got {}", repr(e)),
                    "invalid umask",
                    help,
                );
                None
            }
        }
    }

    fn log(&mut self, fi: usize, n: &KdlNode, owner: &str) -> LogOpts {
        let mut l = LogOpts::default();
        let Some(block) = self.block(fi, n) else { return l };
        let key = n.name().value();
        for s in self.settings(fi, block, &format!("`{key}` of {owner}"), LOG_SETTINGS) {
            match s.name().value() {
                "path" => l.path = self.string(fi, s),
                "max-bytes" => l.max_bytes = self.size(fi, s),
                _ => l.backups = self.u32(fi, s, 0, u32::MAX),
            }
        }
        l
    }

    fn limits(&mut self, fi: usize, n: &KdlNode, owner: &str) -> Vec<(Limit, u64)> {
        let mut out = Vec::new();
        let Some(block) = self.block(fi, n) else { return out };
        for s in self.settings(fi, block, &format!("`limits` of {owner}"), LIMIT_SETTINGS) {
            let key = s.name().value();
            let limit = match key {
                "nofile" => Limit::Nofile,
                "nproc" => Limit::Nproc,
                "core" => Limit::Core,
                "as" => Limit::As,
                "data" => Limit::Data,
                "stack" => Limit::Stack,
                "fsize" => Limit::Fsize,
                _ => Limit::Cpu,
            };
            let Some(e) = self.one(fi, s) else { continue };
            let value = match e.value() {
                KdlValue::String(v) if v == "unlimited" || v == "infinity" => Some(u64::MAX),
                KdlValue::Integer(i) => u64::try_from(*i).ok(),
                KdlValue::String(v) => match limit {
                    Limit::Nofile | Limit::Nproc => None,
                    Limit::Cpu => parse_duration(v).map(|d| d.as_secs()),
                    _ => parse_size(v),
                },
                _ => None,
            };
            match value {
                Some(v) => out.push((limit, v)),
                None => {
                    let what = match limit {
                        Limit::Nofile | Limit::Nproc => "a count",
                        Limit::Cpu => "seconds or a duration (\"10m\")",
                        _ => "bytes or a size (\"1GB\")",
                    };
                    self.err(
                        fi,
                        e.span(),
                        format!("limit `{key}` expects {what} or \"unlimited\", got {}", repr(e)),
                        "invalid limit",
                        None,
                    );
                }
            }
        }
        out
    }

    // ----- the final model ---------------------------------------------------------------

    fn finish(mut self) -> Result<Config, ConfigError> {
        let programs = std::mem::take(&mut self.programs);
        let groups = std::mem::take(&mut self.groups);
        let defaults = self.defaults.take().map(|(o, _)| o).unwrap_or_default();

        let mut by_name: HashMap<String, &Str> = HashMap::new();
        let mut unique = Vec::new();
        for p in &programs {
            if let Some(first) = by_name.get(&p.name.value) {
                let at = self.locate(first.file, first.span);
                self.err(
                    p.name.file,
                    p.name.span,
                    format!("program `{}` is defined twice", p.name.value),
                    "defined again here",
                    Some(format!("first defined at {at}")),
                );
                continue;
            }
            by_name.insert(p.name.value.clone(), &p.name);
            unique.push(p);
        }

        let mut group_of: HashMap<String, (&GroupDef, &Str)> = HashMap::new();
        let mut group_names: HashMap<&str, &Str> = HashMap::new();
        for g in &groups {
            if let Some(first) = group_names.get(g.name.value.as_str()) {
                let at = self.locate(first.file, first.span);
                self.err(
                    g.name.file,
                    g.name.span,
                    format!("group `{}` is defined twice", g.name.value),
                    "defined again here",
                    Some(format!("first defined at {at}")),
                );
                continue;
            }
            group_names.insert(&g.name.value, &g.name);
            for member in &g.programs {
                if !by_name.contains_key(&member.value) {
                    if !self.incomplete {
                        // Program names in the order they are defined, as the user reads them.
                        let names: Vec<&str> = unique.iter().map(|p| p.name.value.as_str()).collect();
                        let guess = crate::suggest::closest(&member.value, names.iter().copied())
                            .map(|n| format!(" (did you mean `{n}`?)"))
                            .unwrap_or_default();
                        self.err(
                            member.file,
                            member.span,
                            format!("group `{}` lists no program `{}`{guess}", g.name.value, member.value),
                            "no such program",
                            Some(program_list(&names)),
                        );
                    }
                } else if let Some((other, at)) = group_of.get(&member.value) {
                    let at = self.locate(at.file, at.span);
                    self.err(
                        member.file,
                        member.span,
                        format!("program `{}` is already in group `{}`", member.value, other.name.value),
                        "second group",
                        Some(format!("listed at {at}; a program belongs to one group")),
                    );
                } else {
                    group_of.insert(member.value.clone(), (g, member));
                }
            }
        }
        for g in &groups {
            if by_name.contains_key(&g.name.value) && !group_of.contains_key(&g.name.value) {
                self.err(
                    g.name.file,
                    g.name.span,
                    format!("group `{}` has the name of program `{}`, which is not in it", g.name.value, g.name.value),
                    "name clash",
                    Some("a program outside any group forms a group of its own name: rename one of them, or list the program in this group".into()),
                );
            }
        }

        let mut specs = Vec::new();
        for p in unique {
            let group = group_of.get(&p.name.value).map(|(g, _)| *g);
            self.build(p, &defaults, group, &mut specs);
        }
        self.check_unique(&specs);
        if !self.incomplete {
            self.resolve_dependencies(&mut specs, &groups);
        }

        if !self.diags.is_empty() {
            let mut seen = HashSet::new();
            let diags = self.diags.into_iter().filter(|d| seen.insert(d.key())).collect();
            return Err(ConfigError::new(diags));
        }
        let mut files: Vec<PathBuf> = self.files.into_iter().map(|f| f.path).collect();
        files.extend(self.other_files);
        Ok(Config {
            programs: specs.into_iter().map(|(spec, _)| spec).collect(),
            groups: groups
                .iter()
                .map(|g| GroupSpec {
                    name: g.name.value.clone(),
                    programs: g.programs.iter().map(|s| s.value.clone()).collect(),
                    priority: g.priority.unwrap_or(999),
                })
                .collect(),
            files,
            access: self.access.take().map(|(a, _)| a),
        })
    }

    /// Expands one program block into its instances (pushed with the spans that name them).
    fn build(
        &mut self,
        p: &ProgramDef,
        defaults: &Opts,
        group: Option<&GroupDef>,
        out: &mut Vec<(ProgramSpec, Origins)>,
    ) {
        let own_priority = p.opts.priority;
        let o = p.opts.clone().or(defaults);
        let here = self.files[p.name.file].dir.clone();
        let name = &p.name.value;
        let Some((command, command_span)) = &o.command else {
            if o.command_written {
                return;
            }
            self.err(
                p.name.file,
                p.name.span,
                format!("program `{name}` has no `command`"),
                "this program",
                Some(format!("write: program \"{name}\" {{ command \"...\" }}")),
            );
            return;
        };
        let command_file = match command {
            Command::Shell(s) => s.file,
            Command::Argv(w) => w.first().map_or(p.name.file, |s| s.file),
        };
        let numprocs = o.numprocs.unwrap_or(1);
        let start = o.numprocs_start.unwrap_or(0);
        if start.checked_add(numprocs - 1).is_none() {
            self.err(
                p.name.file,
                p.name.span,
                format!("`numprocs-start` + `numprocs` of `{name}` overflow"),
                "here",
                None,
            );
            return;
        }
        let numbered = o.numprocs.is_some() || o.numprocs_start.is_some();
        let default_template = Str {
            value: if numprocs > 1 { "{program}_{num:02}" } else { "{program}" }.to_owned(),
            span: p.name.span,
            file: p.name.file,
        };
        let template = o.process_name.clone().unwrap_or(default_template);
        if numprocs > 1 && !template.value.contains("{num") {
            self.err(
                template.file,
                template.span,
                format!("`process-name` must contain {{num}} when `numprocs` is {numprocs}"),
                "same name for every instance",
                Some("for example: process-name \"{program}_{num:02}\"".into()),
            );
            return;
        }
        let priority = own_priority.or(group.and_then(|g| g.priority)).or(defaults.priority).unwrap_or(999);
        let env = self.env;

        for k in 0..numprocs {
            let num = start + k;
            let cx = Context { env, program: Some(name), name: None, num: Some(num), here: &here };
            let pname = match expand::expand(&template.value, &cx) {
                Ok(v) => v,
                Err(e) => {
                    self.expand_err(&template, e);
                    return;
                }
            };
            if let Err(why) = check_name(&pname) {
                self.err(
                    template.file,
                    template.span,
                    format!("process name `{pname}` is invalid: {why}"),
                    "from this name",
                    Some(NAME_RULE.into()),
                );
                return;
            }
            let cx = Context { name: Some(&pname), ..cx };
            let mut spec = ProgramSpec::new(&pname, Vec::new());
            spec.program = name.clone();
            spec.group = group.map_or_else(|| name.clone(), |g| g.name.value.clone());
            spec.num = numbered.then_some(num);

            let mut ok = true;
            spec.command = match command {
                Command::Shell(s) => {
                    match shell_words::split(&s.value) {
                        Ok(words) => words.iter().filter_map(|w| self.word(s, w, &cx, &mut ok)).collect(),
                        Err(e) => {
                            self.err(
                            s.file,
                            s.span,
                            format!("cannot split `command` into words: {e}"),
                            "here",
                            Some("close the quote, or give the words as separate strings: command \"prog\" \"arg one\"".into()),
                        );
                            ok = false;
                            Vec::new()
                        }
                    }
                }
                Command::Argv(words) => words.iter().filter_map(|s| self.word(s, &s.value, &cx, &mut ok)).collect(),
            };
            if ok && spec.command.first().is_none_or(|w| w.is_empty()) {
                self.err(command_file, *command_span, format!("the `command` of `{name}` is empty"), "empty", None);
            }
            if spec.command.iter().any(|w| w.contains('\0')) {
                self.err(command_file, *command_span, "`command` contains a NUL character", "here", None);
            }

            spec.directory = o.directory.as_ref().and_then(|s| self.path(s, &cx));
            spec.environment = self.environment_of(p, defaults, &o, &cx);
            if let Some(v) = o.umask {
                spec.umask = Some(v);
            }
            spec.autostart = o.autostart.unwrap_or(spec.autostart);
            spec.autorestart = o.autorestart.unwrap_or(spec.autorestart);
            spec.exit_codes = o.exit_codes.clone().unwrap_or(spec.exit_codes);
            spec.start_secs = o.start_secs.unwrap_or(spec.start_secs);
            spec.start_retries = o.start_retries.unwrap_or(spec.start_retries);
            spec.backoff = Backoff {
                initial: o.backoff_initial.unwrap_or(spec.backoff.initial),
                max: o.backoff_max.unwrap_or(spec.backoff.max),
                reset_after: o.backoff_reset.unwrap_or(spec.backoff.reset_after),
            };
            spec.stop_signal = o.stop_signal.unwrap_or(spec.stop_signal);
            spec.stop_wait = o.stop_wait.unwrap_or(spec.stop_wait);
            spec.stop_as_group = o.stop_as_group.unwrap_or(spec.stop_as_group);
            spec.kill_as_group = o.kill_as_group.unwrap_or(spec.kill_as_group);
            spec.priority = priority;
            spec.redirect_stderr = o.redirect_stderr.unwrap_or(spec.redirect_stderr);
            spec.log_timestamps = o.log_timestamps.unwrap_or(spec.log_timestamps);
            spec.stdout_log = self.log_spec(&o.stdout_log, &cx);
            spec.stderr_log = self.log_spec(&o.stderr_log, &cx);
            spec.limits = o.limits.clone();
            spec.oneshot = o.oneshot.unwrap_or(false);
            spec.ready = o.ready.as_ref().map(|(r, _)| r.clone()).unwrap_or_default();
            spec.start_timeout = o.start_timeout;
            spec.watchdog = o.watchdog.map(|(d, _)| d);
            spec.health = o.health.clone().map(Box::new);
            spec.hooks = crate::config::Hooks {
                on_exit: o.on_exit.as_ref().map(|s| s.value.clone()),
                on_fatal: o.on_fatal.as_ref().map(|s| s.value.clone()),
                on_unhealthy: o.on_unhealthy.as_ref().map(|s| s.value.clone()),
                timeout: o.hook_timeout.unwrap_or(spec.hooks.timeout),
            };
            if let Some((_, at)) = o.watchdog
                && spec.ready != Readiness::Notify
            {
                self.err(
                    p.name.file,
                    at,
                    format!("`watchdog-secs` of `{name}` needs `ready \"notify\"`"),
                    "no notify socket",
                    Some("the watchdog is fed with WATCHDOG=1 on the notify socket".into()),
                );
            }
            if let Some((Readiness::Probe(probe), at)) = &o.ready
                && matches!(probe.check, Check::Log(_))
                && spec.redirect_stderr
                && matches!(spec.stdout_log.path, LogPath::Discard)
            {
                self.err(
                    p.name.file,
                    *at,
                    format!("`ready log=` of `{name}` can never match: its output is discarded"),
                    "here",
                    None,
                );
            }

            if spec.backoff.initial > spec.backoff.max {
                self.err(
                    p.name.file,
                    p.name.span,
                    format!("the backoff `initial` of `{name}` is longer than its `max`"),
                    "this program",
                    Some("make `initial` at most `max`".into()),
                );
            }
            let origins = Origins {
                name: template.clone(),
                stdout: o.stdout_log.path.clone(),
                stderr: o.stderr_log.path.clone(),
                depends_on: o.depends_on.clone(),
            };
            out.push((spec, origins));
        }
    }

    fn word(&mut self, s: &Str, word: &str, cx: &Context<'_>, ok: &mut bool) -> Option<String> {
        match expand::expand_word(word, cx) {
            Ok(w) => Some(w),
            Err(e) => {
                self.expand_err(s, e);
                *ok = false;
                None
            }
        }
    }

    fn path(&mut self, s: &Str, cx: &Context<'_>) -> Option<PathBuf> {
        match expand::expand_path(&s.value, cx) {
            Ok(p) => Some(p),
            Err(e) => {
                self.expand_err(s, e);
                None
            }
        }
    }

    fn log_spec(&mut self, l: &LogOpts, cx: &Context<'_>) -> LogSpec {
        let mut spec = LogSpec::default();
        spec.path = match &l.path {
            None => LogPath::Default,
            Some(s) if s.value == "none" => LogPath::Discard,
            Some(s) => self.path(s, cx).map_or(LogPath::Default, LogPath::File),
        };
        spec.max_bytes = l.max_bytes.unwrap_or(spec.max_bytes);
        spec.backups = l.backups.unwrap_or(spec.backups);
        spec
    }

    /// Layers, lowest first: `defaults` environment, `env-file`, the program's environment.
    fn environment_of(&mut self, p: &ProgramDef, defaults: &Opts, o: &Opts, cx: &Context<'_>) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        self.env_layer(&mut env, &defaults.environment, cx);
        if let Some(file) = &o.env_file
            && let Some(path) = self.path(file, cx)
        {
            for (k, v) in self.env_file(file, &path) {
                set_var(&mut env, &k, v);
            }
        }
        self.env_layer(&mut env, &p.opts.environment, cx);
        env
    }

    fn env_layer(&mut self, env: &mut Vec<(String, String)>, vars: &[(String, Str)], cx: &Context<'_>) {
        for (k, s) in vars {
            match expand::expand(&s.value, cx) {
                Ok(v) if v.contains('\0') => {
                    self.err(s.file, s.span, format!("`{k}` contains a NUL character"), "here", None)
                }
                Ok(v) => set_var(env, k, v),
                Err(e) => self.expand_err(s, e),
            }
        }
    }

    fn env_file(&mut self, at: &Str, path: &Path) -> Vec<(String, String)> {
        if let Some(cached) = self.env_files.get(path) {
            return cached.clone().unwrap_or_default();
        }
        let parsed = match read_regular(path) {
            Err(e) => {
                self.err(
                    at.file,
                    at.span,
                    format!("cannot read env file {}: {e}", path.display()),
                    "this env-file",
                    Some("relative paths are relative to the file that sets `env-file`".into()),
                );
                None
            }
            Ok(text) => {
                self.other_files.push(path.to_owned());
                match dotenv::parse(&text) {
                    Ok(vars) => Some(vars),
                    Err(errors) => {
                        let source = NamedSource::new(path.display().to_string(), Arc::new(text));
                        for e in errors {
                            self.diags.push(Diag {
                                message: e.message,
                                file: path.to_owned(),
                                source: Some(source.clone()),
                                span: Some((e.offset, e.len).into()),
                                label: Some("here".into()),
                                help: e.help,
                            });
                        }
                        None
                    }
                }
            }
        };
        self.env_files.insert(path.to_owned(), parsed.clone());
        parsed.unwrap_or_default()
    }

    /// Process names must each belong to one process. A log file may be shared (supervisord
    /// allows several programs, or numprocs instances, to append to one file; the daemon gives
    /// them one writer), but its sharers must agree on how it is rotated and stamped.
    fn check_unique(&mut self, specs: &[(ProgramSpec, Origins)]) {
        let mut names: HashMap<&str, &ProgramSpec> = HashMap::new();
        let mut logs: HashMap<&Path, (&str, u64, u32, bool)> = HashMap::new();
        for (spec, origins) in specs {
            if let Some(first) = names.get(spec.name.as_str()) {
                self.err(
                    origins.name.file,
                    origins.name.span,
                    format!("process name `{}` is used twice", spec.name),
                    "same name",
                    Some(format!("it is also a process of program `{}`; set a distinct process-name", first.program)),
                );
            } else {
                names.insert(&spec.name, spec);
            }
            let streams = [(&spec.stdout_log, &origins.stdout), (&spec.stderr_log, &origins.stderr)];
            let used = if spec.redirect_stderr { &streams[..1] } else { &streams[..] };
            for (log, at) in used {
                let (LogPath::File(path), Some(at)) = (&log.path, at) else { continue };
                let mine = (spec.name.as_str(), log.max_bytes, log.backups, spec.log_timestamps);
                match logs.get(path.as_path()) {
                    Some(&(first, max, backups, stamps)) if (max, backups, stamps) != (mine.1, mine.2, mine.3) => {
                        self.err(
                            at.file,
                            at.span,
                            format!(
                                "log file {} is shared with `{first}`, which rotates or stamps it differently",
                                path.display()
                            ),
                            "shared log file",
                            Some(format!(
                                "processes writing one file must agree on max-bytes, backups and log-timestamps \
                                 (`{first}`: {max} bytes, {backups} backups, timestamps {stamps}); or use {{name}} \
                                 in the path for a file each"
                            )),
                        );
                    }
                    Some(_) => {}
                    None => {
                        logs.insert(path, mine);
                    }
                }
            }
        }
    }
}

impl Loader<'_> {
    /// Resolves `depends-on` targets (process, program or group names) to process names, and
    /// refuses what can never work: unknown names, cycles (printed `a -> b -> a`), and
    /// conditions the target cannot meet.
    fn resolve_dependencies(&mut self, specs: &mut [(ProgramSpec, Origins)], groups: &[GroupDef]) {
        let index: HashMap<String, usize> = specs.iter().enumerate().map(|(i, (s, _))| (s.name.clone(), i)).collect();
        // Program and group names to process names, in config order, looked up once: 900
        // programs each depending on a group of 100 compared every name of every program
        // with every member of the group (90 million comparisons, a third of a second).
        let mut by_program: HashMap<&str, Vec<&str>> = HashMap::new();
        for (s, _) in specs.iter() {
            by_program.entry(s.program.as_str()).or_default().push(s.name.as_str());
        }
        // The first group of a name counts (a second one is an error reported already).
        let mut group_at: HashMap<&str, usize> = HashMap::new();
        let mut groups_of: HashMap<&str, Vec<usize>> = HashMap::new();
        for (k, g) in groups.iter().enumerate() {
            if *group_at.entry(g.name.value.as_str()).or_insert(k) == k {
                for m in &g.programs {
                    // A group that lists a program twice has its processes once.
                    let of = groups_of.entry(m.value.as_str()).or_default();
                    if of.last() != Some(&k) {
                        of.push(k);
                    }
                }
            }
        }
        let mut by_group: Vec<Vec<&str>> = vec![Vec::new(); groups.len()];
        for (s, _) in specs.iter() {
            for &k in groups_of.get(s.program.as_str()).into_iter().flatten() {
                by_group[k].push(s.name.as_str());
            }
        }
        let mut resolved: Vec<Vec<Dependency>> = Vec::with_capacity(specs.len());
        for (spec, origins) in specs.iter() {
            let mut deps: Vec<Dependency> = Vec::new();
            let mut position: HashMap<String, usize> = HashMap::new();
            for (target, condition) in &origins.depends_on {
                let t = target.value.as_str();
                let names: Vec<&str> = if index.contains_key(t) {
                    vec![t]
                } else if let Some(names) = by_program.get(t) {
                    names.clone()
                } else if let Some(&k) = group_at.get(t) {
                    by_group[k].clone()
                } else {
                    let known =
                        specs.iter().map(|(s, _)| s.name.as_str()).chain(groups.iter().map(|g| g.name.value.as_str()));
                    let guess = crate::suggest::closest(t, known)
                        .map(|n| format!(" (did you mean `{n}`?)"))
                        .unwrap_or_default();
                    self.err(
                        target.file,
                        target.span,
                        format!("`{}` depends on `{t}`, which is no program or group{guess}", spec.name),
                        "unknown",
                        None,
                    );
                    continue;
                };
                for name in names {
                    let other = &specs[index[name]].0;
                    let never = match condition {
                        Condition::Completed | Condition::CompletedSuccessfully
                            if !other.oneshot && other.autorestart == AutoRestart::Always =>
                        {
                            Some(format!(
                                "`{name}` restarts whenever it exits (autorestart #true), so it never completes"
                            ))
                        }
                        Condition::Healthy if other.health.is_none() => {
                            Some(format!("`{name}` has no `health` check, so it is never healthy"))
                        }
                        _ => None,
                    };
                    if let Some(why) = never {
                        self.err(
                            target.file,
                            target.span,
                            format!(
                                "`{}` waits for `{name}` to be {}, which cannot happen",
                                spec.name,
                                condition.as_str()
                            ),
                            "never holds",
                            Some(format!("{why}; use condition=\"ready\", or make it `oneshot #true`")),
                        );
                        continue;
                    }
                    match position.get(name) {
                        // Named twice (a program and its group): the stricter wins.
                        Some(&k) => deps[k].condition = strictest(deps[k].condition, *condition),
                        None => {
                            position.insert(name.to_owned(), deps.len());
                            deps.push(Dependency { name: name.to_owned(), condition: *condition });
                        }
                    }
                }
            }
            resolved.push(deps);
        }
        for ((spec, _), deps) in specs.iter_mut().zip(resolved) {
            spec.depends_on = deps;
        }
        // Cycles: a depth-first walk, reporting each cycle once at the first `depends-on` of it.
        let mut mark = vec![0u8; specs.len()]; // 0 new, 1 on the path, 2 done
        let mut reported: HashSet<Vec<usize>> = HashSet::new();
        for start in 0..specs.len() {
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            if mark[start] != 0 {
                continue;
            }
            mark[start] = 1;
            while let Some(&(node, next)) = path.last() {
                let deps = &specs[node].0.depends_on;
                if next >= deps.len() || path.len() > MAX_DEPENDENCY_DEPTH {
                    mark[node] = 2;
                    path.pop();
                    continue;
                }
                let dep = index[&deps[next].name];
                if let Some(top) = path.last_mut() {
                    top.1 += 1;
                }
                match mark[dep] {
                    0 => {
                        mark[dep] = 1;
                        path.push((dep, 0));
                    }
                    1 => {
                        let from = path.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        let mut cycle: Vec<usize> = path[from..].iter().map(|&(n, _)| n).collect();
                        let mut key = cycle.clone();
                        key.sort_unstable();
                        if reported.insert(key) {
                            cycle.push(dep);
                            let names: Vec<&str> = cycle.iter().map(|&i| specs[i].0.name.as_str()).collect();
                            let first = &specs[cycle[0]].1;
                            let at = first.depends_on.first().map_or(first.name.clone(), |(s, _)| s.clone());
                            self.err(
                                at.file,
                                at.span,
                                format!("dependency cycle: {}", names.join(" -> ")),
                                "cycle",
                                Some("no program of a cycle could ever start: remove one of these depends-on".into()),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The stricter of two conditions on the same process.
fn strictest(a: Condition, b: Condition) -> Condition {
    let rank = |c: Condition| Condition::ALL.iter().position(|x| *x == c).unwrap_or(0);
    if rank(a) >= rank(b) { a } else { b }
}

/// Sets `k` in place if present (keeping the first position), else appends it.
fn set_var(env: &mut Vec<(String, String)>, k: &str, v: String) {
    match env.iter_mut().find(|(key, _)| key == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k.to_owned(), v)),
    }
}

/// Where an instance's unique-per-process values were written.
struct Origins {
    name: Str,
    stdout: Option<Str>,
    stderr: Option<Str>,
    /// `depends-on` targets as written (program, group or process names).
    depends_on: Vec<(Str, Condition)>,
}

const NAME_RULE: &str = "names may contain letters, digits, `_`, `-` and `.`, and must not start with `-`";

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.starts_with('-') {
        return Err("it starts with `-`".into());
    }
    match name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        Some(c) => Err(format!("`{c}` is not allowed")),
        None => Ok(()),
    }
}

/// The value as written in the file (for "got ..." in messages).
fn repr(e: &KdlEntry) -> String {
    match e.format() {
        Some(f) if !f.value_repr.is_empty() => f.value_repr.clone(),
        _ => e.value().to_string(),
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).ok()
}

/// `"50MB"`, `"10 KiB"`, `"1048576"`: 1024-based units.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// One example line per setting, for help texts.
fn example(key: &str) -> Option<&'static str> {
    Some(match key {
        "command" => "command \"python3 -m http.server 8000\"",
        "directory" => "directory \"~/site\"",
        "environment" => "environment { PORT \"8080\" }",
        "env-file" => "env-file \".env\"",
        "autostart" => "autostart #false",
        "autorestart" => "autorestart \"unexpected\"",
        "exit-codes" => "exit-codes 0 2",
        "start-secs" => "start-secs 5",
        "start-retries" => "start-retries 3",
        "backoff" => "backoff { initial \"1s\"; max \"60s\"; reset-after \"60s\" }",
        "stop-signal" => "stop-signal \"INT\"",
        "stop-wait-secs" => "stop-wait-secs 10",
        "stop-as-group" => "stop-as-group #true",
        "kill-as-group" => "kill-as-group #true",
        "priority" => "priority 100",
        "redirect-stderr" => "redirect-stderr #true",
        "log-timestamps" => "log-timestamps #true",
        "umask" => "umask \"022\"",
        "numprocs" => "numprocs 4",
        "numprocs-start" => "numprocs-start 1",
        "process-name" => "process-name \"{program}_{num:02}\"",
        "stdout-log" => "stdout-log { path \"logs/{name}.out.log\"; max-bytes \"50MB\"; backups 10 }",
        "stderr-log" => "stderr-log { path \"logs/{name}.err.log\"; max-bytes \"50MB\"; backups 10 }",
        "limits" => "limits { nofile 4096 }",
        "defaults" => "defaults { autorestart #true }",
        "include" => "include \"conf.d/*.kdl\"",
        "initial" | "max" | "reset-after" => "initial \"1s\"",
        "path" => "path \"logs/{name}.log\"",
        "max-bytes" => "max-bytes \"50MB\"",
        "backups" => "backups 10",
        "programs" => "programs \"web\" \"worker\"",
        "nofile" => "nofile 4096",
        "oneshot" => "oneshot #true",
        "ready" => "ready \"notify\"",
        "start-timeout" => "start-timeout \"30s\"",
        "watchdog-secs" => "watchdog-secs 10",
        "health" => "health { exec \"curl -fsS localhost:8000/health\"; interval \"10s\" }",
        "depends-on" => "depends-on \"db\" condition=\"ready\"",
        "retries" => "retries 3",
        "interval" | "timeout" | "start-period" => "interval \"10s\"",
        "on-unhealthy" => "on-unhealthy \"restart\"",
        "on-exit" | "on-fatal" => "on-fatal \"notify-send \\\"$SVC_PROGRAM is $SVC_STATE\\\"\"",
        "hook-timeout" => "hook-timeout \"30s\"",
        _ => return None,
    })
}

/// supervisord option names that are not close enough to their svc spelling for `did you mean`.
fn supervisord_hint(key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase().replace('-', "_");
    Some(match k.as_str() {
        "stdout_logfile" => "svc writes stdout-log { path \"...\" }",
        "stdout_logfile_maxbytes" => "svc writes stdout-log { max-bytes \"50MB\" }",
        "stdout_logfile_backups" => "svc writes stdout-log { backups 10 }",
        "stderr_logfile" => "svc writes stderr-log { path \"...\" }",
        "stderr_logfile_maxbytes" => "svc writes stderr-log { max-bytes \"50MB\" }",
        "stderr_logfile_backups" => "svc writes stderr-log { backups 10 }",
        "process_name" => "svc writes process-name",
        "minfds" | "rlimit_nofile" => "svc writes limits { nofile 4096 }",
        _ => return None,
    })
}

fn unknown_help(key: &str, known: &[&str]) -> String {
    let list = format!("known settings: {}", known.join(", "));
    if let Some(hint) = supervisord_hint(key) {
        return format!("{hint}\n{list}");
    }
    match did_you_mean(key, known) {
        Some(best) => format!("did you mean `{best}`?\n{list}"),
        None => list,
    }
}

fn known_help(key: &str, known: &[&str], what: &str) -> String {
    let list = format!("{what}: {}", known.join(", "));
    match did_you_mean(key, known) {
        Some(best) => format!("did you mean `{best}`?\n{list}"),
        None => list,
    }
}

/// "programs: a, b, c" for a help text, shortened when there are many.
fn program_list(names: &[&str]) -> String {
    const SHOWN: usize = 12;
    match names.len() {
        0 => "no program is defined; a group lists the names of `program` blocks".to_owned(),
        n if n <= SHOWN => format!("programs: {}", names.join(", ")),
        n => format!("programs: {}, ... ({} more)", names[..SHOWN].join(", "), n - SHOWN),
    }
}

/// The parser's messages that follow from an earlier error when the braces balance.
const CASCADE: &[&str] =
    &["No closing '}' for child block", "Closing '}' was not found after nodes", "Expected end of document"];

/// A parser error explained: the word it is about, and what to write instead.
struct Teaching {
    word: (usize, usize),
    message: String,
    label: &'static str,
    help: String,
}

/// The explanation for a parser error at `at`, when the word there is a known mistake.
fn teach(text: &str, at: usize) -> Option<Teaching> {
    let (start, end) = word_around(text, at)?;
    let word = &text[start..end];
    let keyword = match word {
        "true" | "false" => Some("booleans are #true/#false"),
        "null" => Some("null is #null"),
        _ => None,
    };
    if let Some(rule) = keyword {
        return Some(Teaching {
            word: (start, end - start),
            message: format!("bare `{word}` is not a KDL value: {rule}"),
            label: "needs a #",
            help: format!("write #{word} (KDL v2 booleans are #true and #false, and null is #null)"),
        });
    }
    let comment = ["//", "/*", "/-"].iter().any(|c| word.starts_with(c));
    let pathlike = word.starts_with(['~', '/', '.', '$']) || word.contains('/');
    if pathlike && !comment {
        return Some(Teaching {
            word: (start, end - start),
            message: format!("unquoted path `{word}`"),
            label: "needs quotes",
            help: format!("quote the path: \"{word}\" (KDL strings with `/`, `~` or `$` in them must be quoted)"),
        });
    }
    None
}

/// The whitespace-delimited word of `text` that contains `at` (also cut at KDL's `=;{}()"`).
fn word_around(text: &str, at: usize) -> Option<(usize, usize)> {
    let stop = |c: char| c.is_whitespace() || matches!(c, '=' | ';' | '{' | '}' | '(' | ')' | '"');
    let before = text.get(..at)?;
    let start = before.char_indices().rev().find(|&(_, c)| stop(c)).map_or(0, |(i, c)| i + c.len_utf8());
    let after = text.get(at..)?;
    let end = at + after.char_indices().find(|&(_, c)| stop(c)).map_or(after.len(), |(i, _)| i);
    (end > start).then_some((start, end))
}

/// The `[section]` line at `at`, if that line is one: supervisord's INI format.
fn ini_header(text: &str, at: usize) -> Option<(usize, usize)> {
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let indent = line.len() - line.trim_start().len();
    let trimmed = line.trim();
    let close = trimmed.find(']')?;
    let rest = trimmed[close + 1..].trim_start();
    let header = trimmed.starts_with('[') && close > 1 && (rest.is_empty() || rest.starts_with([';', '#']));
    header.then_some((start + indent, close + 1))
}

/// Why a file's text never became a KDL document.
enum Unparsed {
    /// The pre-pass refused it before the parser could recurse too deep.
    Shape(scan::Problem),
    /// The parser's own diagnostics, and whether every `{` in the file is closed.
    Kdl(::kdl::KdlError, bool),
}

/// Stack for the parser's thread: far more than the bounded input needs (about 2 MiB in a
/// debug build at the limits), and independent of the caller's thread, which may be a 2 MiB
/// test thread. Only the pages touched are ever committed.
const PARSE_STACK: usize = 64 << 20;

/// Parses `text` as KDL after [`scan::prepare`] has bounded every way the parser recurses.
fn parse_kdl(text: &str) -> Result<KdlDocument, Unparsed> {
    let scan::Prepared { text: prepared, balanced } = scan::prepare(text).map_err(Unparsed::Shape)?;
    let on_thread = std::thread::scope(|s| {
        let parser = std::thread::Builder::new().stack_size(PARSE_STACK);
        parser.spawn_scoped(s, || KdlDocument::parse(&prepared)).map(|h| h.join())
    });
    match on_thread {
        Ok(Ok(result)) => result.map_err(|e| Unparsed::Kdl(e, balanced)),
        // The parser panicked: carry on unwinding here, as if it had run on this thread.
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        // No thread to be had (a process limit): the bounds above still fit a normal stack.
        Err(_) => KdlDocument::parse(&prepared).map_err(|e| Unparsed::Kdl(e, balanced)),
    }
}

/// Reads a config or env file, refusing anything but a regular file: `include "/dev/zero"`
/// or `env-file "/dev/stdin"` would otherwise hang `svc check` or a reload.
fn read_regular(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    // 16 MiB is far more than any config; a bigger file is a mistake, not a config.
    if meta.len() > 16 << 20 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "larger than 16 MiB"));
    }
    std::fs::read_to_string(path)
}

/// The closest known name within edit distance 2, comparing `_` as `-` (supervisord spelling).
fn did_you_mean<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    // supervisord spells options with underscores; svc with dashes.
    crate::suggest::closest(&key.to_ascii_lowercase().replace('_', "-"), known.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "HOME" => Some("/home/u".into()),
            "PORT" => Some("8080".into()),
            _ => None,
        }
    }

    fn parse(src: &str) -> Result<Config, ConfigError> {
        parse_str(src, Path::new("/etc/svc/svc.kdl"), &env)
    }

    fn ok(src: &str) -> Config {
        parse(src).unwrap_or_else(|e| panic!("{}", e.render(false)))
    }

    fn one(src: &str) -> ProgramSpec {
        let mut c = ok(src);
        assert_eq!(c.programs.len(), 1);
        c.programs.remove(0)
    }

    /// Every diagnostic as `line:col message`.
    fn errs(src: &str) -> Vec<String> {
        let e = parse(src).expect_err("expected errors");
        e.items().iter().map(|i| format!("{}:{} {}", i.line, i.column, i.message)).collect()
    }

    fn err1(src: &str) -> String {
        let e = errs(src);
        assert_eq!(e.len(), 1, "{e:#?}");
        e[0].clone()
    }

    fn help(src: &str) -> String {
        parse(src).expect_err("expected errors").items()[0].help.clone().unwrap_or_default()
    }

    #[test]
    fn hooks_come_from_defaults_unless_a_program_sets_its_own() {
        let c = ok(r#"defaults { on-fatal "mail -s fatal me"; hook-timeout "5s" }
program "a" { command "x"; on-exit "echo $SVC_EXIT_CODE >> exits" }
program "b" { command "x"; on-fatal "true"; on-unhealthy "page me" }"#);
        let a = &c.programs[0].hooks;
        assert_eq!(a.on_exit.as_deref(), Some("echo $SVC_EXIT_CODE >> exits"));
        assert_eq!(a.on_fatal.as_deref(), Some("mail -s fatal me"));
        assert_eq!(a.timeout, Duration::from_secs(5));
        let b = &c.programs[1].hooks;
        assert_eq!((b.on_exit.as_deref(), b.on_fatal.as_deref()), (None, Some("true")));
        assert_eq!(b.on_unhealthy.as_deref(), Some("page me"));
        assert_eq!(one(r#"program "a" { command "x" }"#).hooks.timeout, Duration::from_secs(30));
    }

    #[test]
    fn on_unhealthy_restart_at_program_level_points_at_the_health_block() {
        let e = err1(r#"program "a" { command "x"; on-unhealthy "restart" }"#);
        assert!(e.contains("is a hook"), "{e}");
        assert!(help(r#"program "a" { command "x"; on-unhealthy "ignore" }"#).contains("health {"));
    }

    #[test]
    fn readiness_health_and_oneshot() {
        let c = ok(r#"program "db" { command "x"; ready "notify"; watchdog-secs 10; start-timeout "30s" }
program "s6" { command "x"; ready "fd" 3 }
program "t" { command "x"; ready tcp=8000 interval="250ms" timeout=2 start-period="1s" }
program "h" { command "x"; ready http="http://127.0.0.1:8000/health" }
program "e" { command "x"; ready exec="pg_isready -q" }
program "l" { command "x"; ready log="listening on" }
program "m" { command "x"; oneshot #true }
program "w" {
    command "x"
    health { http "http://127.0.0.1:8000/"; interval "5s"; timeout 1; retries 2; start-period "10s"; on-unhealthy "ignore" }
}
"#);
        let p = |n: &str| c.programs.iter().find(|p| p.name == n).expect(n).clone();
        assert_eq!(p("db").ready, Readiness::Notify);
        assert_eq!(p("db").watchdog, Some(Duration::from_secs(10)));
        assert_eq!(p("db").start_timeout, Some(Duration::from_secs(30)));
        assert_eq!(p("s6").ready, Readiness::Fd(3));
        let Readiness::Probe(t) = p("t").ready else { panic!("probe") };
        assert_eq!(t.check, Check::Tcp("127.0.0.1:8000".into()));
        assert_eq!(
            (t.interval, t.timeout, t.start_period),
            (Duration::from_millis(250), Duration::from_secs(2), Duration::from_secs(1))
        );
        assert!(matches!(&p("h").ready, Readiness::Probe(b) if matches!(b.check, Check::Http(_))));
        assert!(matches!(&p("e").ready, Readiness::Probe(b) if matches!(b.check, Check::Exec(_))));
        assert!(matches!(&p("l").ready, Readiness::Probe(b) if matches!(b.check, Check::Log(_))));
        assert!(p("m").oneshot && !p("db").oneshot);
        let h = p("w").health.expect("health");
        assert_eq!((h.retries, h.restart, h.probe.interval), (2, false, Duration::from_secs(5)));
        assert_eq!(p("db").ready.clone(), Readiness::Notify);
        assert_eq!(p("m").ready, Readiness::Running, "default");
    }

    #[test]
    fn readiness_errors_say_what_to_write() {
        assert_eq!(err1(r#"program "a" { command "x"; ready "soon" }"#), "1:34 `ready` does not know \"soon\"");
        assert_eq!(
            err1(r#"program "a" { command "x"; ready "fd" 1 }"#),
            "1:39 `ready` must be between 3 and 1023, got 1"
        );
        assert_eq!(
            err1(r#"program "a" { command "x"; ready tcp=8000 http="http://x/" }"#),
            "1:43 `ready` takes one check"
        );
        assert_eq!(
            err1(r#"program "a" { command "x"; ready http="https://x/" }"#),
            "1:34 `http` checks speak plain HTTP; https is not supported"
        );
        assert_eq!(
            err1(r#"program "a" { command "x"; ready intervl="1s" tcp=1 }"#),
            "1:34 unknown property `intervl` of `ready`"
        );
        assert_eq!(
            err1(r#"program "a" { command "x"; watchdog-secs 5 }"#),
            "1:28 `watchdog-secs` of `a` needs `ready \"notify\"`"
        );
        assert_eq!(err1(r#"program "a" { command "x"; health { retries 2 } }"#), "1:28 `health` needs a check");
        assert_eq!(
            err1(r#"program "a" { command "x"; health { tcp 1; exec "y" } }"#),
            "1:44 `health` takes one check (exec, tcp or http)"
        );
    }

    #[test]
    fn dependencies_resolve_programs_groups_and_instances() {
        let c = ok(r#"program "db" { command "x" }
program "w" { command "x"; numprocs 2 }
group "back" { programs "db" "w"; }
program "migrate" { command "x"; oneshot #true; depends-on "db" }
program "web" {
    command "x"
    depends-on "migrate" condition="completed-successfully"
    depends-on "back"
    depends-on "w_01" condition="started"
}
"#);
        let web = c.programs.iter().find(|p| p.name == "web").expect("web");
        let deps: Vec<(&str, Condition)> = web.depends_on.iter().map(|d| (d.name.as_str(), d.condition)).collect();
        assert_eq!(
            deps,
            [
                ("migrate", Condition::CompletedSuccessfully),
                ("db", Condition::Ready),
                ("w_00", Condition::Ready),
                ("w_01", Condition::Ready),
            ],
            "w_01 named twice: the stricter condition (ready) wins"
        );
    }

    #[test]
    fn dependency_errors_are_precise() {
        assert_eq!(
            err1(
                r#"program "a" { command "x"; depends-on "dbb" }
program "db" { command "x" }"#
            ),
            "1:39 `a` depends on `dbb`, which is no program or group (did you mean `db`?)"
        );
        assert_eq!(
            errs(
                r#"program "a" { command "x"; depends-on "b" }
program "b" { command "x"; depends-on "c" }
program "c" { command "x"; depends-on "a" }
program "d" { command "x"; depends-on "d" }"#
            ),
            ["1:39 dependency cycle: a -> b -> c -> a", "4:39 dependency cycle: d -> d"]
        );
        assert_eq!(
            err1(
                r#"program "a" { command "x"; depends-on "b" condition="completed" }
program "b" { command "x"; autorestart #true }"#
            ),
            "1:39 `a` waits for `b` to be completed, which cannot happen"
        );
        assert_eq!(
            err1(
                r#"program "a" { command "x"; depends-on "b" condition="healthy" }
program "b" { command "x" }"#
            ),
            "1:39 `a` waits for `b` to be healthy, which cannot happen"
        );
        assert_eq!(
            err1(
                r#"program "a" { command "x"; depends-on "b" condition="up" }
program "b" { command "x" }"#
            ),
            "1:43 unknown condition \"up\""
        );
        assert_eq!(err1(r#"defaults { depends-on "b" }"#), "1:12 `depends-on` belongs in a program, not in `defaults`");
    }

    #[test]
    fn defaults_of_a_minimal_program() {
        let p = one(r#"program "web" { command "python3 -m http.server 8000"; }"#);
        let mut want =
            ProgramSpec::new("web", vec!["python3".into(), "-m".into(), "http.server".into(), "8000".into()]);
        want.priority = 999;
        assert_eq!(p, want);
        assert_eq!(p.group, "web");
        assert_eq!(p.num, None);
        assert!(p.stop_as_group && p.kill_as_group);
        assert_eq!(p.stop_signal, libc::SIGTERM);
    }

    #[test]
    fn every_option() {
        let p = one(r#"
program "web" {
    command "server" "--port" "$PORT" "{program}/{name}"
    directory "site"
    environment { A "1"; N 5; B #true; F 1.5; H "{here}" }
    autostart #false
    autorestart #true
    exit-codes 0 2
    start-secs "500ms"
    start-retries "infinite"
    backoff { initial "2s"; max 30; reset-after "1m"; }
    stop-signal "SIGINT"
    stop-wait-secs 2.5
    stop-as-group #false
    kill-as-group #false
    priority -5
    redirect-stderr #true
    umask "027"
    stdout-log { path "~/logs/{name}.log"; max-bytes "10MB"; backups 3; }
    stderr-log { path "none"; }
    limits { nofile 4096; nproc 100; core 0; as "1GB"; data "unlimited"; stack "8MiB"; fsize 1024; cpu "1m"; }
}
"#);
        assert_eq!(p.command, ["server", "--port", "8080", "web/web"]);
        assert_eq!(p.directory, Some(PathBuf::from("/etc/svc/site")));
        assert_eq!(
            p.environment,
            [("A", "1"), ("N", "5"), ("B", "true"), ("F", "1.5"), ("H", "/etc/svc")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(!p.autostart);
        assert_eq!(p.autorestart, AutoRestart::Always);
        assert_eq!(p.exit_codes, [0, 2]);
        assert_eq!(p.start_secs, Duration::from_millis(500));
        assert_eq!(p.start_retries, Retries::Infinite);
        assert_eq!(
            p.backoff,
            Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(30),
                reset_after: Duration::from_secs(60)
            }
        );
        assert_eq!(p.stop_signal, libc::SIGINT);
        assert_eq!(p.stop_wait, Duration::from_millis(2500));
        assert!(!p.stop_as_group && !p.kill_as_group);
        assert_eq!(p.priority, -5);
        assert!(p.redirect_stderr);
        assert_eq!(p.umask, Some(0o027));
        assert_eq!(
            p.stdout_log,
            LogSpec { path: LogPath::File("/home/u/logs/web.log".into()), max_bytes: 10 << 20, backups: 3 }
        );
        assert_eq!(p.stderr_log, LogSpec { path: LogPath::Discard, ..LogSpec::default() });
        assert_eq!(
            p.limits,
            [
                (Limit::Nofile, 4096),
                (Limit::Nproc, 100),
                (Limit::Core, 0),
                (Limit::As, 1 << 30),
                (Limit::Data, u64::MAX),
                (Limit::Stack, 8 << 20),
                (Limit::Fsize, 1024),
                (Limit::Cpu, 60),
            ]
        );
    }

    #[test]
    fn value_forms() {
        assert_eq!(
            one(r#"program "a" { command "x"; autorestart "unexpected"; }"#).autorestart,
            AutoRestart::Unexpected
        );
        assert_eq!(one(r#"program "a" { command "x"; autorestart #false; }"#).autorestart, AutoRestart::Never);
        assert_eq!(one(r#"program "a" { command "x"; start-retries 0; }"#).start_retries, Retries::Count(0));
        assert_eq!(one(r#"program "a" { command "x"; start-secs 0; }"#).start_secs, Duration::ZERO);
        assert_eq!(one(r#"program "a" { command "x"; start-secs "2m"; }"#).start_secs, Duration::from_secs(120));
        assert_eq!(one(r#"program "a" { command "x"; stop-signal "hup"; }"#).stop_signal, libc::SIGHUP);
        assert_eq!(one(r#"program "a" { command "x"; stop-signal 9; }"#).stop_signal, libc::SIGKILL);
        assert_eq!(one(r#"program "a" { command "x"; umask 0o022; }"#).umask, Some(0o022));
        assert_eq!(one(r#"program "a" { command "x"; umask 0; }"#).umask, Some(0));
        let p = one(r#"program "a" { command "x"; stdout-log { max-bytes 1024; }; }"#);
        assert_eq!(p.stdout_log, LogSpec { max_bytes: 1024, ..LogSpec::default() });
        let p = one(r#"program "a" { command "x"; stdout-log { max-bytes "5 KiB"; }; }"#);
        assert_eq!(p.stdout_log.max_bytes, 5 * 1024);
        // Argument forms of command: shell words, or argv verbatim.
        let p = one(r#"program "a" { command "sh -c 'echo \"hi there\"; exit 3'"; }"#);
        assert_eq!(p.command, ["sh", "-c", "echo \"hi there\"; exit 3"]);
        let p = one(r#"program "a" { command "sh" "-c" "echo $$HOME {{x}} $1"; }"#);
        assert_eq!(p.command, ["sh", "-c", "echo $HOME {x} $1"]);
        let p = one(r#"program "a" { command "~/bin/app"; directory "/srv"; }"#);
        assert_eq!(p.command, ["/home/u/bin/app"]);
        assert_eq!(p.directory, Some(PathBuf::from("/srv")));
    }

    #[test]
    fn defaults_block_fills_gaps() {
        let c = ok(r#"
defaults {
    autorestart #true
    priority 5
    environment { A "d"; B "d" }
    stdout-log { max-bytes "1MB"; }
    limits { nofile 10; core 0 }
}
program "a" { command "x"; environment { B "a" }; stdout-log { backups 2; }; limits { nofile 20 } }
program "b" { command "x"; autorestart #false; priority 1 }
"#);
        let (a, b) = (&c.programs[0], &c.programs[1]);
        assert_eq!(a.autorestart, AutoRestart::Always);
        assert_eq!(b.autorestart, AutoRestart::Never);
        assert_eq!((a.priority, b.priority), (5, 1));
        assert_eq!(a.environment, [("A".into(), "d".into()), ("B".into(), "a".into())]);
        assert_eq!((a.stdout_log.max_bytes, a.stdout_log.backups), (1 << 20, 2));
        assert_eq!((b.stdout_log.max_bytes, b.stdout_log.backups), (1 << 20, 10));
        assert_eq!(a.limits, [(Limit::Nofile, 20), (Limit::Core, 0)]);
    }

    #[test]
    fn groups() {
        let c = ok(r#"
program "web" { command "x" }
program "worker" { command "x"; priority 3 }
program "solo" { command "x" }
program "cron" { command "x" }
group "app" { programs "web" "worker"; priority 10 }
group "other" { programs "cron" }
"#);
        let get = |n: &str| c.programs.iter().find(|p| p.name == n).expect(n);
        assert_eq!((get("web").group.as_str(), get("web").priority), ("app", 10));
        assert_eq!((get("worker").group.as_str(), get("worker").priority), ("app", 3));
        assert_eq!((get("solo").group.as_str(), get("solo").priority), ("solo", 999));
        assert_eq!(get("cron").priority, 999);
        assert_eq!(
            c.groups,
            [
                GroupSpec { name: "app".into(), programs: vec!["web".into(), "worker".into()], priority: 10 },
                GroupSpec { name: "other".into(), programs: vec!["cron".into()], priority: 999 },
            ]
        );
        assert_eq!(c.files, [PathBuf::from("/etc/svc/svc.kdl")]);
    }

    #[test]
    fn group_errors() {
        let e = errs(
            r#"program "a" { command "x"; }
program "b" { command "x"; }
group "g" { programs "a" "nope"; }
group "h" { programs "a"; }
group "g" { programs "b"; }
group "b" { programs "a"; }
group "e" { priority 1; }
"#,
        );
        assert_eq!(
            e,
            [
                "7:7 group `e` has no `programs`",
                "3:26 group `g` lists no program `nope`",
                "4:22 program `a` is already in group `g`",
                "5:7 group `g` is defined twice",
                "6:22 program `a` is already in group `g`",
                "6:7 group `b` has the name of program `b`, which is not in it",
            ]
        );
    }

    #[test]
    fn numprocs_instances() {
        let c = ok(r#"
program "w" {
    command "worker --id {num} --name {name}"
    numprocs 3
    numprocs-start 1
    stdout-log { path "/var/log/{name}.log"; }
}
program "x" { command "x"; numprocs 2; process-name "x-{num}"; }
program "y" { command "y {num}"; }
"#);
        let names: Vec<_> = c.programs.iter().map(|p| (p.name.as_str(), p.program.as_str(), p.num)).collect();
        assert_eq!(
            names,
            [
                ("w_01", "w", Some(1)),
                ("w_02", "w", Some(2)),
                ("w_03", "w", Some(3)),
                ("x-0", "x", Some(0)),
                ("x-1", "x", Some(1)),
                ("y", "y", None),
            ]
        );
        assert_eq!(c.programs[1].command, ["worker", "--id", "2", "--name", "w_02"]);
        assert_eq!(c.programs[1].stdout_log.path, LogPath::File("/var/log/w_02.log".into()));
        assert_eq!(c.programs[1].group, "w");
        assert_eq!(c.programs[5].command, ["y", "0"]);
    }

    #[test]
    fn numprocs_errors() {
        assert_eq!(
            err1(r#"program "x" { command "x"; numprocs 2; process-name "same"; }"#),
            "1:53 `process-name` must contain {num} when `numprocs` is 2"
        );
        assert_eq!(
            err1("program \"x\" { command \"x\"; numprocs 0; }"),
            "1:37 `numprocs` must be between 1 and 10000, got 0"
        );
        assert_eq!(
            err1("program \"x\" { command \"x\"; numprocs 2; process-name \"x:{num}\"; }"),
            "1:53 process name `x:0` is invalid: `:` is not allowed"
        );
        assert_eq!(
            err1("program \"x_00\" { command \"x\"; }\nprogram \"x\" { command \"x\"; numprocs 2; }"),
            "2:9 process name `x_00` is used twice"
        );
        assert_eq!(
            err1("program \"x\" { command \"x\"; numprocs 2; process-name \"{name}{num}\"; }"),
            "1:54 `{name}` can't be used here: the process name is not known yet"
        );
    }

    #[test]
    fn shared_log_files() {
        let ok = parse(
            r#"program "a" { command "x"; stdout-log { path "/l/x.log"; }; }
program "b" { command "x"; stderr-log { path "/l/x.log"; }; }
program "c" { command "x"; numprocs 2; stdout-log { path "/l/c.log"; }; }
program "d" { command "x"; redirect-stderr #true; stdout-log { path "/l/d.log"; }; stderr-log { path "/l/d.log"; }; }
"#,
        );
        assert_eq!(ok.expect("sharers that agree are fine").programs.len(), 5);
        let e = errs(
            r#"program "a" { command "x"; stdout-log { path "/l/x.log"; max-bytes "1MB"; }; }
program "b" { command "x"; stderr-log { path "/l/x.log"; }; }
program "c" { command "x"; log-timestamps #true; stdout-log { path "/l/x.log"; max-bytes "1MB"; }; }
"#,
        );
        assert_eq!(
            e,
            [
                "2:46 log file /l/x.log is shared with `a`, which rotates or stamps it differently",
                "3:68 log file /l/x.log is shared with `a`, which rotates or stamps it differently"
            ]
        );
    }

    #[test]
    fn expansion_errors_point_at_the_variable() {
        assert_eq!(
            err1("program \"a\" {\n    command \"run --x $NOPE\"\n}"),
            "2:22 environment variable `NOPE` is not set"
        );
        assert_eq!(
            err1("program \"a\" { command \"x\"; directory \"/x/${NOPE}/y\"; }"),
            "1:42 environment variable `NOPE` is not set"
        );
        assert_eq!(
            err1("program \"a\" { command \"x\"; environment { A \"{nmu}\" }; }"),
            "1:45 unknown template `{nmu}`"
        );
        let c = ok("program \"a\" { command \"x\"; directory \"${NOPE:-/tmp}\"; }");
        assert_eq!(c.programs[0].directory, Some(PathBuf::from("/tmp")));
    }

    #[test]
    fn type_errors() {
        assert_eq!(
            err1("program \"a\" {\n    command \"x\"\n    autostart \"yes\"\n}"),
            "3:15 `autostart` expects #true or #false, got \"yes\""
        );
        assert_eq!(err1("program \"a\" { command 42; }"), "1:23 `command` expects a string, got 42");
        assert_eq!(
            err1("program \"a\" { command \"x\"; autorestart \"always\"; }"),
            "1:40 `autorestart` expects #true, #false or \"unexpected\", got \"always\""
        );
        assert_eq!(
            err1("program \"a\" { command \"x\"; exit-codes 0 256; }"),
            "1:41 `exit-codes` must be between 0 and 255, got 256"
        );
        assert_eq!(
            err1("program \"a\" { command \"x\"; start-secs \"soon\"; }"),
            "1:39 `start-secs` expects seconds or a duration, got \"soon\""
        );
        assert_eq!(
            err1("program \"a\" { command \"x\"; start-retries \"many\"; }"),
            "1:42 `start-retries` expects a count or \"infinite\", got \"many\""
        );
        assert_eq!(err1("program \"a\" { command \"x\"; stop-signal \"NOPE\"; }"), "1:40 unknown signal \"NOPE\"");
        assert_eq!(err1("program \"a\" { command \"x\"; umask 022; }"), "1:34 `umask` 022 is read as a decimal number");
        assert_eq!(
            err1("program \"a\" { command \"x\"; umask \"999\"; }"),
            "1:34 `umask` expects an octal mask up to 777, got \"999\""
        );
        assert_eq!(
            err1("program \"a\" { command \"x\"; priority 1.5; }"),
            "1:37 `priority` expects an integer, got 1.5"
        );
        assert_eq!(
            err1("program \"a\" { command \"x\"; stdout-log { max-bytes \"5 parsecs\"; }; }"),
            "1:51 `max-bytes` expects a size, got \"5 parsecs\""
        );
        assert_eq!(
            err1("program \"a\" { command \"x\"; limits { nofile \"lots\"; }; }"),
            "1:44 limit `nofile` expects a count or \"unlimited\", got \"lots\""
        );
        assert_eq!(
            err1("program \"a\" { command \"x\"; environment { A #null; }; }"),
            "1:44 environment variable `A` can't be #null"
        );
    }

    #[test]
    fn shape_errors() {
        assert_eq!(err1("program \"a\" { command \"x\"; directory; }"), "1:28 `directory` needs a value");
        assert_eq!(err1("program \"a\" { command \"x\"; directory \"a\" \"b\"; }"), "1:42 `directory` takes one value");
        assert_eq!(
            err1("program \"a\" { command \"x\"; autostart x=#true; }"),
            "1:38 `autostart` takes no properties (key=value), got `x=`"
        );
        assert_eq!(err1("program \"a\" { command \"x\"; autostart #true { } }"), "1:44 `autostart` takes no block");
        assert_eq!(
            err1("program \"a\" { command \"x\"; environment \"A=1\"; }"),
            "1:40 `environment` takes a block { ... }, not a value"
        );
        assert_eq!(err1("program \"a\" { command \"x\"; backoff; }"), "1:28 `backoff` needs a block { ... }");
        assert_eq!(
            err1("program \"a\" { command \"x\"; command \"y\"; }"),
            "1:28 `command` is set twice in program `a`"
        );
        assert!(help("program \"a\" { command \"x\"; command \"y\"; }").contains("svc.kdl:1:15"));
        assert_eq!(err1("program \"a\" { }"), "1:9 program `a` has no `command`");
        assert_eq!(err1("program \"a\""), "1:9 program `a` has no `command`");
        assert_eq!(err1("program \"a\" { command \"\"; }"), "1:23 the `command` of `a` is empty");
        assert_eq!(
            err1("program \"a\" { command \"a 'b\"; }"),
            "1:23 cannot split `command` into words: missing closing quote"
        );
        assert_eq!(err1("program { command \"x\"; }"), "1:1 `program` needs a name");
        assert_eq!(err1("program \"a:b\" { command \"x\"; }"), "1:9 invalid program name `a:b`: `:` is not allowed");
        assert_eq!(err1("program \"a\" \"b\" { command \"x\"; }"), "1:13 `program` takes one name");
        assert_eq!(
            err1("program \"a\" { command \"x\"; backoff { initial 1; initial 2; }; }"),
            "1:49 `initial` is set twice in `backoff` of program `a`"
        );
        assert_eq!(
            err1("program \"a\" { command \"x\"; backoff { initial 10; max 5; }; }"),
            "1:9 the backoff `initial` of `a` is longer than its `max`"
        );
    }

    #[test]
    fn unknown_settings_and_nodes() {
        let src = "program \"web\" {\n    command \"x\"\n    comand \"typo\"\n}";
        assert_eq!(err1(src), "3:5 unknown setting `comand` in program `web`");
        let h = help(src);
        assert!(h.starts_with("did you mean `command`?"), "{h}");
        assert!(h.contains("known settings: command, directory"), "{h}");
        assert!(help("program \"a\" { command \"x\"; startsecs 1; }").contains("did you mean `start-secs`?"));
        assert!(help("program \"a\" { command \"x\"; stop_wait_secs 1; }").contains("did you mean `stop-wait-secs`?"));
        assert!(help("program \"a\" { command \"x\"; stdout_logfile \"x\"; }").contains("stdout-log { path"));
        assert!(!help("program \"a\" { command \"x\"; zzzzzz 1; }").contains("did you mean"));
        assert_eq!(
            err1("program \"a\" { command \"x\"; user \"root\"; }"),
            "1:28 svc never runs programs as another user"
        );
        assert!(help("program \"a\" { command \"x\"; user \"root\"; }").contains("run a separate svc as that user"));
        assert_eq!(err1("programm \"a\" { }"), "1:1 unknown node `programm`");
        assert!(help("programm \"a\" { }").contains("did you mean `program`?"));
        assert!(help("command \"x\"").contains("is a program setting"));
        assert_eq!(
            err1("program \"a\" { command \"x\"; limits { files 1; }; }"),
            "1:37 unknown setting `files` in `limits` of program `a`"
        );
        assert_eq!(
            err1("group \"g\" { programs \"a\"; prio 1; }\nprogram \"a\" { command \"x\" }"),
            "1:27 unknown setting `prio` in group `g`"
        );
    }

    #[test]
    fn duplicate_programs_and_defaults() {
        let src = "program \"a\" { command \"x\"; }\n\nprogram \"a\" { command \"y\"; }";
        assert_eq!(err1(src), "3:9 program `a` is defined twice");
        assert!(help(src).contains("first defined at /etc/svc/svc.kdl:1:9"), "{}", help(src));
        assert_eq!(err1("defaults { }\ndefaults { }"), "2:1 `defaults` is given twice");
        assert_eq!(err1("defaults { priority \"x\"; }"), "1:21 `priority` expects an integer, got \"x\"");
    }

    #[test]
    fn kdl_syntax_errors_keep_the_parsers_words() {
        let e = parse("program \"a\" {\n    command \"x\n}\n").expect_err("syntax");
        let text = e.render(false);
        assert!(text.contains("/etc/svc/svc.kdl:2:13"), "{text}");
        assert!(text.contains("Unexpected newline in single-line quoted string"), "{text}");
        assert!(text.contains("help:"), "{text}");
        // A bare path is not a KDL v2 string.
        assert!(parse("program \"a\" { command \"x\"; directory ~/site; }").is_err());
    }

    #[test]
    fn all_errors_at_once_and_rendering() {
        let src = "program \"web\" {\n    comand \"x\"\n    autostart \"yes\"\n}\nprogram \"db\" { command \"x\"; priority \"high\"; }\nbogus 1\n";
        let e = parse(src).expect_err("bad");
        let lines: Vec<_> = e.items().iter().map(|i| (i.line, i.column)).collect();
        // Per-node errors come in file order, cross-checks (missing `command`) after them.
        assert_eq!(lines, [(2, 5), (3, 15), (5, 38), (6, 1), (1, 9)]);
        let text = e.render(false);
        for needle in [
            "svc.kdl:2:5",
            "unknown setting `comand` in program `web`",
            "svc.kdl:3:15",
            "`autostart` expects #true or #false, got \"yes\"",
            "svc.kdl:6:1",
            "5 errors",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        // The caret line under `comand`.
        assert!(text.contains("    comand \"x\"\n"), "{text}");
        assert!(text.contains("───┬──"), "{text}");
        assert!(
            e.to_string().starts_with("/etc/svc/svc.kdl:2:5: unknown setting `comand` in program `web` (and 4 more)")
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for src in [
            "",
            "program",
            "program #null",
            "program \"\" {}",
            "program \"-x\" { command \"x\" }",
            "program \"a\" { command; environment; backoff 1; limits { cpu -1 }; exit-codes; }",
            "program \"a\" { command \"x\"; numprocs 10000; numprocs-start 4294967295; }",
            "program \"a\" { command \"x\"; environment { \"\" \"x\"; \"A=B\" \"y\"; C; D \"1\" \"2\" { } } }",
            "program \"a\" { command \"$\" \"${\" \"{\" \"}\" \"{num:}\" \"~\"; }",
            "group; group \"g\"; include; defaults 1;",
            "(t)program (u)\"a\" { (v)command (w)\"x\" }",
            "program \"é\" { command \"é $É\" }",
            "\u{feff}program \"a\" { command \"x\" }",
        ] {
            let _ = parse(src);
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // 1000 levels overflowed the parser's stack (SIGABRT) before the pre-pass.
        let deep = "a {\n".repeat(1000) + &"}\n".repeat(1000);
        assert_eq!(err1(&deep), "65:3 blocks are nested more than 64 deep");
        let e = parse(&deep).expect_err("deep");
        assert!(e.render(false).contains("/etc/svc/svc.kdl:65:3"), "{}", e.render(false));
        // Every other way the parser recursed per character: a comment full of `*`, stray
        // closers, `/-` chains, `/-` blocks; each is an error or harmless now.
        let stars = format!("program \"a\" {{ command \"x\" }} /* {} */", "*".repeat(200_000));
        assert_eq!(ok(&stars).programs.len(), 1);
        assert_eq!(err1(&"}".repeat(100_000)), "1:1 unmatched `}`");
        assert_eq!(err1(&format!("program \"a\" {{ command \"x\" }}\n{}", ")".repeat(100_000))), "2:1 unmatched `)`");
        assert_eq!(err1(&("/- ".repeat(10_000) + "a")), "1:193 more than 64 `/-` in a row");
        assert_eq!(err1(&("a /- {".repeat(1000) + &"}".repeat(1000))), "1:390 blocks are nested more than 64 deep");
        // At the limit the walker still runs, on a 2 MiB test thread: the parser has its own.
        let limit =
            "program \"a\" { command \"x\"; environment { ".to_owned() + &"A {".repeat(62) + &"}".repeat(62) + "} }";
        assert!(errs(&limit).iter().all(|e| !e.contains("nested")), "{:?}", errs(&limit));
    }

    #[test]
    fn comments_blanked_for_the_parser_change_nothing_else() {
        let src = "/* a { } \"quote\" /* nested */ still */ program \"a\" /* x */ {\n    command \"sh -c 'echo /* not a comment */'\" // }\n    stop-signal /* (u8) */ \"INT\"\n}\n";
        let p = one(src);
        assert_eq!(p.command, ["sh", "-c", "echo /* not a comment */"]);
        assert_eq!(p.stop_signal, libc::SIGINT);
        // Positions after a comment are those of the original text.
        let bad = "/* one\ntwo */ program \"a\" { command \"x\"; priority \"high\"; }";
        assert_eq!(err1(bad), "2:44 `priority` expects an integer, got \"high\"");
    }

    #[test]
    fn an_empty_main_file_is_refused() {
        for src in ["", "   \n\t\n", "// only a comment\n/* and another */\n", "/- program \"a\" { command \"x\" }"] {
            let e = parse(src).expect_err("empty");
            let text = e.to_string();
            assert!(text.contains("refusing to stop every program"), "{src:?}: {text}");
            let help = e.items()[0].help.clone().unwrap_or_default();
            assert!(help.contains("write configs atomically"), "{help}");
            if !src.is_empty() {
                assert_eq!(err_pos(&e), (1, 1), "{src:?}");
            }
        }
        assert!(
            parse("").expect_err("empty").to_string().ends_with("svc.kdl is empty: refusing to stop every program")
        );
        // `defaults` alone is not empty: the user wrote something on purpose.
        assert!(parse("defaults { autostart #false; }").is_ok());
    }

    #[test]
    fn errors_that_teach() {
        let path = "program \"web\" {\n    command \"x\"\n    directory ~/site\n}\n";
        assert_eq!(err1(path), "3:15 unquoted path `~/site`");
        assert!(help(path).starts_with("quote the path: \"~/site\""), "{}", help(path));
        // A path starting with `/` confuses the parser about the braces too: one error remains.
        let root =
            "program \"web\" {\n    command \"x\"\n    directory /srv/site\n}\nprogram \"b\" { command \"y\" }\n";
        assert_eq!(err1(root), "3:15 unquoted path `/srv/site`");

        let boolean = "program \"web\" {\n    command \"x\"\n    autostart true\n}\n";
        assert_eq!(err1(boolean), "3:15 bare `true` is not a KDL value: booleans are #true/#false");
        assert!(help(boolean).starts_with("write #true"), "{}", help(boolean));
        let anywhere =
            "access { group \"g\" read-only=false }\nprogram \"a\" { command \"x\"; environment { A null; } }";
        assert_eq!(
            errs(anywhere),
            [
                "1:30 bare `false` is not a KDL value: booleans are #true/#false",
                "2:44 bare `null` is not a KDL value: null is #null",
            ]
        );

        let ini = "[program:web]\ncommand=sleep 100\nautostart=true\n\n[group:g] ; comment\nprograms=web\n";
        assert_eq!(
            errs(ini),
            [
                "1:1 this looks like supervisord's INI format, not KDL",
                "5:1 this looks like supervisord's INI format, not KDL"
            ]
        );
        assert!(help(ini).contains("svc import supervisord /etc/svc/svc.kdl"), "{}", help(ini));

        let group = "program \"web\" { command \"x\"; }\nprogram \"worker\" { command \"x\"; }\ngroup \"g\" { programs \"wbe\" \"nope\"; }";
        assert_eq!(
            errs(group),
            ["3:22 group `g` lists no program `wbe` (did you mean `web`?)", "3:28 group `g` lists no program `nope`"]
        );
        assert_eq!(help(group), "programs: web, worker");
        let many: String = (0..20).map(|i| format!("program \"p{i}\" {{ command \"x\" }}\n")).collect();
        let many = many + "group \"g\" { programs \"zzz\"; }";
        assert_eq!(help(&many), "programs: p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, ... (8 more)");
        // Other syntax errors keep the parser's words.
        assert!(
            err1("program \"a\" { command \"x\" \"y\"z }").contains("Expected"),
            "{:?}",
            errs("program \"a\" { command \"x\" \"y\"z }")
        );
    }

    #[test]
    fn includes_from_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir(root.join("conf.d")).expect("mkdir");
        std::fs::write(
            root.join("conf.d/b.kdl"),
            "program \"b\" { command \"b\"; directory \"{here}\"; stdout-log { path \"b.log\"; } }",
        )
        .expect("write");
        std::fs::write(
            root.join("conf.d/a.kdl"),
            "program \"a\" { command \"a\" }\ngroup \"g\" { programs \"a\" \"top\" }\n",
        )
        .expect("write");
        std::fs::write(root.join("conf.d/notes.txt"), "not kdl").expect("write");
        let main = root.join("svc.kdl");
        std::fs::write(
            &main,
            "include \"conf.d/*.kdl\" \"nothing/*.kdl\" \"conf.d/a.kdl\"\nprogram \"top\" { command \"t\" }\n",
        )
        .expect("write");
        let c = super::load(&main, &env).unwrap_or_else(|e| panic!("{}", e.render(false)));
        let names: Vec<_> = c.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "top"]);
        let b = &c.programs[1];
        let conf_d = root.join("conf.d");
        assert_eq!(b.directory.as_deref(), Some(conf_d.as_path()));
        assert_eq!(b.stdout_log.path, LogPath::File(conf_d.join("b.log")));
        assert_eq!(c.programs[0].group, "g");
        assert_eq!(c.files, [main.clone(), conf_d.join("a.kdl"), conf_d.join("b.kdl")]);

        // defaults only in the main file; a missing literal include is an error.
        std::fs::write(root.join("conf.d/c.kdl"), "defaults { }\ninclude \"missing.kdl\"\n").expect("write");
        let e = super::load(&main, &env).expect_err("errors");
        let items = e.items();
        assert_eq!(items.len(), 2, "{}", e.render(false));
        assert_eq!((items[0].file.clone(), items[0].line, items[0].column), (conf_d.join("c.kdl"), 1, 1));
        assert_eq!(items[0].message, "`defaults` is only allowed in the main file");
        assert_eq!((items[1].line, items[1].column), (2, 9));
        assert!(items[1].message.contains("missing.kdl does not exist"), "{}", items[1].message);
    }

    #[test]
    fn include_cycle_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("svc.kdl"), "include \"a.kdl\"\n").expect("write");
        std::fs::write(root.join("a.kdl"), "include \"b.kdl\"\n").expect("write");
        std::fs::write(root.join("b.kdl"), "program \"b\" { command \"b\" }\ninclude \"a.kdl\"\n").expect("write");
        let e = super::load(&root.join("svc.kdl"), &env).expect_err("cycle");
        let items = e.items();
        assert_eq!(items.len(), 1, "{}", e.render(false));
        assert!(items[0].file.ends_with("b.kdl"));
        assert_eq!((items[0].line, items[0].column), (2, 9));
        assert!(items[0].message.starts_with("include cycle: "), "{}", items[0].message);
        assert!(items[0].message.ends_with("a.kdl"), "{}", items[0].message);
        // Including yourself is a cycle too.
        std::fs::write(root.join("svc.kdl"), "include \"svc.kdl\"\n").expect("write");
        assert!(super::load(&root.join("svc.kdl"), &env).expect_err("cycle").to_string().contains("include cycle"));
    }

    #[test]
    fn missing_main_file() {
        let e = super::load(Path::new("/nonexistent/svc.kdl"), &env).expect_err("missing");
        assert_eq!(e.to_string(), "/nonexistent/svc.kdl: config file /nonexistent/svc.kdl does not exist");
        let help = e.items()[0].help.clone().unwrap_or_default();
        assert!(help.starts_with("create one with `svc init`"), "{help}");
        assert!(e.render(false).contains("help: create one with `svc init`"), "{}", e.render(false));
    }

    #[test]
    fn env_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("app.env"), "# settings\nA=from-file\nB='b'\nexport C=\"c\"\n").expect("write");
        std::fs::write(root.join("bad.env"), "OK=1\nnot valid\n").expect("write");
        let main = root.join("svc.kdl");
        let src = "defaults { environment { Z \"d\"; A \"d\" } }\nprogram \"a\" { command \"x\"; env-file \"app.env\"; environment { B \"prog\" } }\n";
        let c = parse_str(src, &main, &env).unwrap_or_else(|e| panic!("{}", e.render(false)));
        let kv =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        assert_eq!(c.programs[0].environment, kv(&[("Z", "d"), ("A", "from-file"), ("B", "prog"), ("C", "c")]));
        assert_eq!(c.files, [main.clone(), root.join("app.env")]);

        let e = parse_str("program \"a\" { command \"x\"; env-file \"bad.env\" }", &main, &env).expect_err("bad env");
        let i = &e.items()[0];
        assert_eq!((i.file.clone(), i.line, i.column), (root.join("bad.env"), 2, 5));
        assert!(e.render(false).contains("bad.env:2:5"), "{}", e.render(false));

        let e = parse_str("program \"a\" { command \"x\"; env-file \"none.env\" }", &main, &env).expect_err("missing");
        assert_eq!(err_pos(&e), (1, 37));
        assert!(e.items()[0].message.starts_with("cannot read env file"));
    }

    fn err_pos(e: &ConfigError) -> (usize, usize) {
        let i = &e.items()[0];
        (i.line, i.column)
    }

    #[test]
    fn config_examples_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config-examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("config-examples/") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "kdl") {
                let c = super::load(&path, &env).unwrap_or_else(|e| panic!("{}", e.render(false)));
                assert!(!c.programs.is_empty(), "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 2, "expected quickstart.kdl and full.kdl");
        let quick = super::load(&dir.join("quickstart.kdl"), &env).expect("quickstart");
        let names: Vec<_> = quick.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["ticker", "grumbler", "crasher"]);
        assert_eq!(quick.programs[0].command[..2], ["sh", "-c"]);
        assert!(quick.programs[0].command[2].contains("$(date"));
        let full = super::load(&dir.join("full.kdl"), &env).expect("full");
        let names: Vec<_> = full.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["web", "worker_01", "worker_02", "worker_03", "cleanup"]);
        let web = &full.programs[0];
        assert_eq!(web.command, ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.1"]);
        assert_eq!((web.priority, full.programs[1].priority, full.programs[4].priority), (100, 50, 999));
        assert_eq!(web.environment[0], ("TZ".to_owned(), "UTC".to_owned()));
        assert_eq!(web.stdout_log.max_bytes, 50 << 20);
        assert_eq!(full.programs[1].stdout_log.max_bytes, 20 << 20);
    }

    #[test]
    fn helpers() {
        assert_eq!(parse_size("50MB"), Some(50 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("7"), Some(7));
        assert_eq!(parse_size("99999999999999TB"), None);
        assert_eq!(parse_size("MB"), None);
        assert_eq!(crate::suggest::levenshtein("comand", "command"), 1);
        assert_eq!(did_you_mean("autostrat", PROGRAM_SETTINGS), Some("autostart"));
        assert_eq!(did_you_mean("zz", LIMIT_SETTINGS), None);
        assert!(check_name("web-1.x_y").is_ok());
        assert!(check_name("a b").is_err());
    }
}
