//! `svc import compose`: process-compose.yaml to svc KDL.
//!
//! process-compose runs each `command` through `bash -c` (or the file's `shell`), in its own
//! working directory, with `depends_on` conditions, readiness and liveness probes and an
//! `availability` restart policy. Each of these has an svc counterpart (`depends-on`,
//! `ready`, `health`, `autorestart`, `backoff`); what has none (`shutdown.command`,
//! `is_daemon`, `exit_on_failure`, ...) is a `// process-compose: ...` comment and a
//! [`Warning`]. Keys process-compose does not know are reported too, never ignored.
//!
//! The YAML is read with yaml-rust2's event parser into a small tree that keeps line numbers
//! (for warnings), resolves anchors and aliases, and applies `<<` merge keys as Go's yaml.v2
//! (which process-compose uses) does.

use super::{
    Conversion, ImportError, ImportOptions, Piece, Warning, absolute, comment_text, kdl_string, lit, read,
    sanitize_name, svc_text, valid_name,
};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Converts the process-compose file at `path`.
pub fn compose_file(path: &Path, opts: &ImportOptions) -> Result<Conversion, ImportError> {
    let text = read(path)?;
    compose_to_kdl(&text, path, opts)
}

/// Converts process-compose YAML text. `origin` is the file it came from: processes without
/// `working_dir` run in its directory (where `process-compose` is usually started).
pub fn compose_to_kdl(text: &str, origin: &Path, opts: &ImportOptions) -> Result<Conversion, ImportError> {
    let origin = absolute(origin);
    let root =
        parse_yaml(text).map_err(|(line, message)| ImportError::Syntax { file: origin.clone(), line, message })?;
    let Some(root) = root.filter(|r| !r.is_null()) else {
        return Err(ImportError::Syntax { file: origin, line: 1, message: "the file is empty".into() });
    };
    let Val::Map(top) = &root.val else {
        return Err(ImportError::Syntax {
            file: origin,
            line: root.line,
            message: "expected a mapping with `processes:` at the top level".into(),
        });
    };
    let mut c = Converter::new(opts, origin.clone());
    c.run(top);
    let unset_vars = std::mem::take(&mut c.unset_vars);
    Ok(Conversion { kdl: c.out, warnings: c.warnings, files: vec![origin], programs: c.programs, unset_vars })
}

// ---------------------------------------------------------------------------------------
// YAML: a tree with line numbers.

/// A YAML node and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    line: usize,
    val: Val,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    /// A plain (unquoted) scalar: may be null, a number or a boolean.
    Plain(String),
    /// A quoted or block scalar: always a string.
    Quoted(String),
    Seq(Vec<Node>),
    /// Entries in file order: key, the key's line, value.
    Map(Vec<(String, usize, Node)>),
}

impl Node {
    fn is_null(&self) -> bool {
        matches!(&self.val, Val::Plain(s) if matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    fn as_str(&self) -> Option<&str> {
        match &self.val {
            Val::Plain(s) | Val::Quoted(s) if !self.is_null() => Some(s),
            _ => None,
        }
    }

    /// An integer as yaml.v2 reads one into an `int` field.
    fn as_int(&self) -> Option<i64> {
        match &self.val {
            Val::Plain(s) => s.replace('_', "").parse().ok(),
            _ => None,
        }
    }

    /// A boolean as yaml.v2 (YAML 1.1) reads one: `yes`, `on`, `y` count too.
    fn as_bool(&self) -> Option<bool> {
        match &self.val {
            Val::Plain(s) => match s.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => Some(true),
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    fn entries(&self) -> &[(String, usize, Node)] {
        match &self.val {
            Val::Map(m) => m,
            _ => &[],
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        self.entries().iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v)
    }

    /// The value in flow style, for comments and messages.
    fn show(&self) -> String {
        match &self.val {
            Val::Plain(s) => s.clone(),
            Val::Quoted(s) => format!("{s:?}"),
            Val::Seq(v) => format!("[{}]", v.iter().map(Node::show).collect::<Vec<_>>().join(", ")),
            Val::Map(m) => {
                format!("{{{}}}", m.iter().map(|(k, _, v)| format!("{k}: {}", v.show())).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

/// Parses the first document of `text` into a tree; `Err((line, message))` when it is not YAML.
fn parse_yaml(text: &str) -> Result<Option<Node>, (usize, String)> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut b, false).map_err(|e| (e.marker().line(), e.info().to_owned()))?;
    match b.error {
        Some(e) => Err(e),
        None => Ok(b.doc),
    }
}

enum Frame {
    Seq(Vec<Node>),
    /// Entries so far and a key waiting for its value.
    Map(Vec<(String, usize, Node)>, Option<(String, usize)>),
}

/// Builds the tree from parser events.
#[derive(Default)]
struct Builder {
    /// Open collections with their line and anchor id.
    stack: Vec<(Frame, usize, usize)>,
    anchors: HashMap<usize, Node>,
    doc: Option<Node>,
    error: Option<(usize, String)>,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(v, style, anchor, _) => {
                let val = if style == TScalarStyle::Plain { Val::Plain(v) } else { Val::Quoted(v) };
                self.push(Node { line, val }, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(n) => self.push(Node { line, ..n }, 0),
                None => self.fail(line, "an alias of an unknown anchor".into()),
            },
            Event::SequenceStart(anchor, _) => self.stack.push((Frame::Seq(Vec::new()), line, anchor)),
            Event::MappingStart(anchor, _) => self.stack.push((Frame::Map(Vec::new(), None), line, anchor)),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((frame, line, anchor)) = self.stack.pop() {
                    let val = match frame {
                        Frame::Seq(v) => Val::Seq(v),
                        Frame::Map(m, _) => Val::Map(merge_keys(m)),
                    };
                    self.push(Node { line, val }, anchor);
                }
            }
            _ => {}
        }
    }
}

impl Builder {
    fn fail(&mut self, line: usize, message: String) {
        self.error.get_or_insert((line, message));
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let mut error = None;
        match self.stack.last_mut() {
            None => {
                self.doc.get_or_insert(node);
            }
            Some((Frame::Seq(v), _, _)) => v.push(node),
            Some((Frame::Map(m, pending), _, _)) => match pending.take() {
                Some((k, line)) => m.push((k, line, node)),
                None => match node.val {
                    Val::Plain(k) | Val::Quoted(k) => {
                        // yaml.v2 refuses a key given twice; so does the import.
                        if k != "<<" && m.iter().any(|(e, _, _)| *e == k) {
                            error = Some((node.line, format!("`{k}` is given twice in one mapping")));
                        }
                        *pending = Some((k, node.line));
                    }
                    _ => {
                        error = Some((node.line, "a mapping key must be a plain value".into()));
                        *pending = Some((String::new(), node.line));
                    }
                },
            },
        }
        if let Some((line, message)) = error {
            self.fail(line, message);
        }
    }
}

/// Applies `<<: *anchor` (or a list of them): the merged mappings' keys that the mapping
/// does not set itself, the first merged mapping winning, as in yaml.v2.
fn merge_keys(entries: Vec<(String, usize, Node)>) -> Vec<(String, usize, Node)> {
    let (merges, mut out): (Vec<_>, Vec<_>) =
        entries.into_iter().partition(|(k, _, v)| k == "<<" && matches!(v.val, Val::Map(_) | Val::Seq(_)));
    for (_, _, m) in merges {
        let maps: Vec<Node> = match m.val {
            Val::Seq(v) => v,
            other => vec![Node { line: m.line, val: other }],
        };
        for map in maps {
            if let Val::Map(entries) = map.val {
                for e in entries {
                    if !out.iter().any(|(k, _, _)| *k == e.0) {
                        out.push(e);
                    }
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The conversion.

/// Top-level keys that only concern process-compose itself (its TUI, its own log, its
/// strictness): comments without a warning, since nothing a program does depends on them.
const QUIET_TOP: &[&str] = &["version", "log_level", "log_length", "log_format", "is_strict", "is_tui_disabled"];

/// What the rest of the file needs to know about one process before converting it.
#[derive(Debug, Clone, Default)]
struct Info {
    /// The svc program name (the YAML key, sanitized).
    name: String,
    readiness: bool,
    liveness: bool,
    ready_log: bool,
    /// `availability.restart` as written (`no` when absent).
    restart: String,
    /// Another process waits for it to complete: it becomes `oneshot`.
    completes: bool,
}

struct Converter<'a> {
    opts: &'a ImportOptions,
    origin: PathBuf,
    /// The YAML file's directory: process-compose's working directory when it is started
    /// where its file is (the usual way, and what auto-discovery requires).
    dir: PathBuf,
    out_dir: PathBuf,
    out: String,
    warnings: Vec<Warning>,
    programs: usize,
    unset_vars: Vec<String>,
    /// process-compose expands `$VAR` in the whole file when it loads it, unless
    /// `disable_env_expansion: true`.
    expand_env: bool,
    shell: Vec<String>,
    vars: Vec<(String, String)>,
    info: HashMap<String, Info>,
}

impl<'a> Converter<'a> {
    fn new(opts: &'a ImportOptions, origin: PathBuf) -> Self {
        let dir = origin.parent().map(Path::to_owned).unwrap_or_default();
        Converter {
            opts,
            out_dir: super::output_dir(opts, &origin),
            origin,
            dir,
            out: String::new(),
            warnings: Vec::new(),
            programs: 0,
            unset_vars: Vec::new(),
            expand_env: true,
            shell: vec!["bash".into(), "-c".into()],
            vars: Vec::new(),
            info: HashMap::new(),
        }
    }

    fn warn(&mut self, line: usize, message: String) {
        self.warnings.push(Warning { file: self.origin.clone(), line, message });
    }

    /// Reports an option of process `proc` (or of the file, when `None`) that is not carried
    /// over: a warning, and a comment in `body`.
    fn lost(&mut self, body: &mut Vec<String>, proc: Option<&str>, key: &str, node: &Node, why: &str) {
        let whose = proc.map(|p| format!("process `{p}`: ")).unwrap_or_default();
        self.warn(node.line, format!("{whose}`{key}` is not converted: {why}"));
        body.push(format!("// process-compose: {}: {} ({})", key, comment_text(&node.show()), comment_text(why)));
    }

    /// A comment for an option that means nothing to svc, without a warning.
    fn note(body: &mut Vec<String>, key: &str, node: &Node, why: &str) {
        body.push(format!("// process-compose: {}: {} ({})", key, comment_text(&node.show()), comment_text(why)));
    }

    fn run(&mut self, top: &[(String, usize, Node)]) {
        let get = |k: &str| top.iter().find(|(key, _, _)| key == k).map(|(_, _, v)| v);
        if get("disable_env_expansion").and_then(Node::as_bool) == Some(true) {
            self.expand_env = false;
        }
        if let Some(vars) = get("vars") {
            self.vars = self.vars_of(vars, None);
        }
        let mut head = Vec::new();
        let mut defaults = Vec::new();
        if self.out_dir == self.dir {
            defaults.push("directory \"{here}\"   // process-compose runs processes where it is started".to_owned());
        } else {
            let d = svc_text(&lit(&self.dir.to_string_lossy()));
            defaults
                .push(format!("directory {}   // process-compose runs processes where it is started", kdl_string(&d)));
        }
        defaults.push("autorestart #false   // process-compose's default restart policy is \"no\"".into());
        defaults.push("start-secs 0   // no start phase: every exit is handled by `availability`".into());
        // process-compose loads `.env` from its working directory into its own environment,
        // which its processes inherit.
        if self.dir.join(".env").is_file() {
            let f = if self.out_dir == self.dir {
                "{here}/.env".to_owned()
            } else {
                svc_text(&lit(&self.dir.join(".env").to_string_lossy()))
            };
            defaults.push(format!("env-file {}   // process-compose loads .env", kdl_string(&f)));
        }
        let mut processes = None;
        let mut log: Vec<String> = Vec::new();
        for (key, line, node) in top {
            match key.as_str() {
                "processes" => processes = Some((node, *line)),
                "vars" | "disable_env_expansion" => {}
                "environment" => {
                    let env = self.environment(node, None, &mut head);
                    if !env.is_empty() {
                        defaults.push(format!("environment {{ {} }}", env.join(" ")));
                    }
                }
                "shell" => self.shell_config(node, &mut head),
                "log_location" => match node.as_str() {
                    Some(path) => {
                        let path = self.path_value(path, node.line);
                        // One file for every process, both streams, as process-compose writes it.
                        log.insert(0, format!("path {};", kdl_string(&path)));
                        defaults.push("redirect-stderr #true   // log_location: both streams in one file".into());
                    }
                    None => Self::note(&mut head, key, node, "empty: no log file"),
                },
                "log_configuration" => {
                    let (entries, settings) = self.log_configuration(node, None, &mut head);
                    log.extend(entries);
                    defaults.extend(settings);
                }
                "env_cmds" => self.lost(
                    &mut head,
                    None,
                    key,
                    node,
                    "svc does not run commands to compute variables; put the values in `environment`",
                ),
                "extends" => self.lost(&mut head, None, key, node, "the extended file is not converted; import it too"),
                k if QUIET_TOP.contains(&k) => Self::note(&mut head, key, node, "process-compose's own setting"),
                k if k.starts_with("x-") => Self::note(&mut head, key, node, "extension field"),
                _ => self.lost(&mut head, None, key, node, "unknown to process-compose and to svc"),
            }
        }
        if !log.is_empty() {
            defaults.push(format!("stdout-log {{ {} }}", log.join(" ")));
        }
        let _ = write!(
            self.out,
            "// Converted from {} by `svc import compose`.\n\
             // Lines starting with `// process-compose:` are settings svc does not take over.\n",
            comment_text(&self.origin.display().to_string())
        );
        for h in &head {
            let _ = writeln!(self.out, "{h}");
        }
        self.out.push_str("\ndefaults {\n");
        for d in &defaults {
            let _ = writeln!(self.out, "    {d}");
        }
        self.out.push_str("}\n");
        let Some((procs, line)) = processes else {
            self.warn(0, "no `processes:` found".into());
            return;
        };
        let Val::Map(procs) = &procs.val else {
            self.warn(line, "`processes` is not a mapping of process names".into());
            return;
        };
        self.survey(procs);
        let mut namespaces: Vec<(String, usize, Vec<String>)> = Vec::new();
        for (key, line, node) in procs {
            if let Some((ns, ns_line)) = self.process(key, *line, node) {
                let name = self.info[key].name.clone();
                match namespaces.iter_mut().find(|(n, _, _)| *n == ns) {
                    Some(entry) => entry.2.push(name),
                    None => namespaces.push((ns, ns_line, vec![name])),
                }
            }
        }
        for (ns, line, members) in namespaces {
            let mut group = sanitize_name(&ns);
            if self.info.values().any(|i| i.name == group) {
                let renamed = format!("{group}-ns");
                self.warn(line, format!("namespace `{ns}` is also a process name; its group is `{renamed}`"));
                group = renamed;
            } else if group != ns {
                self.warn(line, format!("namespace `{ns}` becomes group `{group}` (characters svc does not allow)"));
            }
            let list: Vec<String> = members.iter().map(|m| kdl_string(m)).collect();
            let _ = write!(
                self.out,
                "\n// process-compose namespace `{}`\ngroup {} {{\n    programs {}\n}}\n",
                comment_text(&ns),
                kdl_string(&group),
                list.join(" ")
            );
        }
    }

    /// First pass over the processes: names, probes, and which ones others wait to complete.
    fn survey(&mut self, procs: &[(String, usize, Node)]) {
        for (key, line, node) in procs {
            let mut name = sanitize_name(key);
            if !valid_name(key) {
                self.warn(*line, format!("process `{key}` is named `{name}` (characters svc does not allow)"));
            }
            while self.info.values().any(|i| i.name == name) {
                name.push('_');
            }
            let restart = node
                .get("availability")
                .and_then(|a| a.get("restart"))
                .and_then(Node::as_str)
                .unwrap_or("no")
                .to_owned();
            let probe = |k: &str| node.get(k).is_some_and(|p| !p.is_null());
            let info = Info {
                name,
                readiness: probe("readiness_probe"),
                liveness: probe("liveness_probe"),
                ready_log: node.get("ready_log_line").and_then(Node::as_str).is_some_and(|s| !s.is_empty()),
                restart,
                completes: false,
            };
            self.info.insert(key.clone(), info);
        }
        for (_, _, node) in procs {
            for (target, _, cond) in node.get("depends_on").map(Node::entries).unwrap_or_default() {
                let cond = cond.as_str().or_else(|| cond.get("condition").and_then(Node::as_str));
                if matches!(cond, Some("process_completed" | "process_completed_successfully"))
                    && let Some(i) = self.info.get_mut(target)
                {
                    i.completes = true;
                }
            }
        }
    }

    /// Converts one process into a `program` block; returns its namespace, if it sets one.
    fn process(&mut self, key: &str, line: usize, node: &Node) -> Option<(String, usize)> {
        let info = self.info[key].clone();
        let name = info.name.clone();
        let mut body: Vec<String> = Vec::new();
        // `stdout-log` entries, written as one block after the loop.
        let mut log: Vec<String> = Vec::new();
        let mut namespace = None;
        if !matches!(node.val, Val::Map(_)) && !node.is_null() {
            self.warn(line, format!("process `{key}` is not a mapping; not converted"));
            let _ = writeln!(self.out, "\n// process-compose: {key}: {} (not a mapping)", comment_text(&node.show()));
            return None;
        }
        let local_vars = node.get("vars").map(|v| self.vars_of(v, Some(key))).unwrap_or_default();
        let saved = self.vars.clone();
        for (k, v) in local_vars {
            match self.vars.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v,
                None => self.vars.push((k, v)),
            }
        }
        let replicas = node.get("replicas").and_then(Node::as_int).unwrap_or(1);
        let restarts = matches!(info.restart.as_str(), "always" | "on_failure" | "on-failure");

        // command / entrypoint
        let command = node.get("command").and_then(Node::as_str).filter(|c| !c.trim().is_empty());
        let entrypoint = node.get("entrypoint").map(|e| match &e.val {
            Val::Seq(v) => v.iter().map(|w| w.as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>(),
            _ => Vec::new(),
        });
        match (command, entrypoint.as_ref().filter(|e| !e.is_empty())) {
            (Some(cmd), extra) => {
                if let (Some(_), Some(n)) = (extra, node.get("entrypoint")) {
                    self.lost(&mut body, Some(key), "entrypoint", n, "`command` is set too, and wins");
                }
                let cmd_line = node.get("command").map_or(line, |n| n.line);
                let cmd = self.render(cmd, cmd_line, key);
                if self.expand_env && has_special_dollar(&cmd) {
                    self.warn(
                        line,
                        format!(
                            "process `{key}`: `command` has `$` before a digit or a special character, which \
                             process-compose replaced by an empty string when loading the file; the shell now sees it"
                        ),
                    );
                }
                let mut words: Vec<String> = self.shell.iter().map(|w| kdl_string(&svc_text(&lit(w)))).collect();
                // The shell expands variables at run time, so svc must not: `$` is escaped.
                words.push(kdl_string(&svc_text(&lit(&cmd))));
                body.push(format!("command {}", words.join(" ")));
            }
            (None, Some(argv)) => {
                let words: Vec<String> = argv.iter().map(|w| kdl_string(&self.value(w, line))).collect();
                body.push(format!("command {}", words.join(" ")));
            }
            (None, None) => {
                self.warn(line, format!("process `{key}` has no `command`; it runs `true` in svc"));
                body.push("command \"true\"   // process-compose: no command".into());
            }
        }

        for (k, kline, v) in node.entries() {
            let kline = *kline;
            match k.as_str() {
                "command" | "entrypoint" | "vars" | "depends_on" => {}
                "description" => {
                    if let Some(d) = v.as_str() {
                        body.insert(0, format!("// {}", comment_text(d)));
                    }
                }
                "disabled" => {
                    if v.as_bool() == Some(true) {
                        body.push("autostart #false   // disabled: start it with `svc start`".into());
                    }
                }
                "working_dir" => {
                    if let Some(d) = v.as_str() {
                        let d = self.path_value(d, kline);
                        body.push(format!("directory {}", kdl_string(&d)));
                    }
                }
                "environment" => {
                    let env = self.environment(v, Some(key), &mut body);
                    let mut all = env;
                    all.push("PC_PROC_NAME \"{program}\";".into());
                    all.push("PC_REPLICA_NUM \"{num}\";".into());
                    body.push(format!("environment {{ {} }}", all.join(" ")));
                }
                "availability" => self.availability(key, v, &mut body),
                "readiness_probe" | "liveness_probe" | "ready_log_line" => {}
                "shutdown" => self.shutdown(key, v, &mut body),
                "log_location" => match v.as_str() {
                    Some(path) => {
                        let mut pieces = self.value_pieces(path, kline);
                        // process-compose's replica placeholder; without it, each replica's
                        // number is appended to the file name.
                        let placeholder = lit("{PC_REPLICA_NUM}");
                        let mut replaced = Vec::new();
                        let mut i = 0;
                        let mut found = false;
                        while i < pieces.len() {
                            if pieces[i..].starts_with(&placeholder) {
                                replaced.push(Piece::Raw("{num}".into()));
                                i += placeholder.len();
                                found = true;
                            } else {
                                replaced.push(pieces[i].clone());
                                i += 1;
                            }
                        }
                        pieces = self.rebase(replaced);
                        if replicas > 1 && !found {
                            pieces.push(Piece::Raw(".{num}".into()));
                        }
                        log.insert(0, format!("path {};", kdl_string(&svc_text(&pieces))));
                        body.push("redirect-stderr #true   // log_location: both streams in one file".into());
                    }
                    None => Self::note(&mut body, k, v, "empty: no log file"),
                },
                "log_configuration" => {
                    let (entries, settings) = self.log_configuration(v, Some(key), &mut body);
                    log.extend(entries);
                    body.extend(settings);
                }
                "disable_ansi_colors" => {
                    if v.as_bool() == Some(true) {
                        self.lost(&mut body, Some(key), k, v, "svc logs output as the program writes it");
                    }
                }
                "namespace" => match v.as_str() {
                    Some(ns) if ns != "default" => namespace = Some((ns.to_owned(), kline)),
                    _ => {}
                },
                "replicas" => match v.as_int() {
                    Some(1) => {}
                    Some(n) if (2..=10_000).contains(&n) => {
                        // process-compose names replicas NAME-0, NAME-1 ..., zero-padded to
                        // the width of the count.
                        let width = n.to_string().len();
                        let num = if width == 1 { "{num}".to_owned() } else { format!("{{num:0{width}}}") };
                        body.push(format!("numprocs {n}"));
                        body.push(format!("process-name \"{{program}}-{num}\"   // process-compose's replica names"));
                    }
                    _ => self.lost(&mut body, Some(key), k, v, "not a number of replicas from 1 to 10000"),
                },
                "is_daemon" => {
                    if v.as_bool() == Some(true) {
                        self.lost(
                            &mut body,
                            Some(key),
                            k,
                            v,
                            "svc supervises programs that stay in the foreground; run it without forking \
                             (for example `docker run` without `-d`)",
                        );
                    }
                }
                "launch_timeout_seconds" => {
                    Self::note(&mut body, k, v, "only used with is_daemon");
                }
                "is_foreground" | "is_tty" | "is_elevated" | "schedule" | "watch" => {
                    let why = match k.as_str() {
                        "is_foreground" => "svc has no foreground processes; use `svc start` in a terminal instead",
                        "is_tty" => "svc gives programs no terminal",
                        "is_elevated" => "svc never runs programs as another user",
                        "schedule" => "svc does not run programs on a schedule; use cron or a timer",
                        _ => "svc does not restart programs when files change",
                    };
                    if v.as_bool() != Some(false) {
                        self.lost(&mut body, Some(key), k, v, why);
                    }
                }
                k2 if k2.starts_with("x-") => Self::note(&mut body, k, v, "extension field"),
                _ => self.lost(&mut body, Some(key), k, v, "unknown to process-compose and to svc"),
            }
        }
        if !log.is_empty() {
            body.push(format!("stdout-log {{ {} }}", log.join(" ")));
        }
        if node.get("environment").is_none() {
            body.push("environment { PC_PROC_NAME \"{program}\"; PC_REPLICA_NUM \"{num}\"; }".into());
        }
        if info.completes {
            body.push("oneshot #true   // another process waits for it to complete".into());
            if info.restart == "always" {
                self.warn(
                    line,
                    format!(
                        "process `{key}`: restart `always` and others wait for it to complete: svc takes it as a \
                         one-shot that is never restarted once it has completed"
                    ),
                );
            }
        }
        self.probes(key, node, restarts, &mut body);
        self.depends_on(key, node, &mut body);
        self.vars = saved;

        let _ = writeln!(self.out, "\nprogram {} {{", kdl_string(&name));
        for b in &body {
            let _ = writeln!(self.out, "    {b}");
        }
        self.out.push_str("}\n");
        self.programs += 1;
        namespace
    }

    /// `vars:` for `{{.NAME}}` templates: scalars only.
    fn vars_of(&mut self, node: &Node, proc: Option<&str>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (k, line, v) in node.entries() {
            match v.as_str() {
                Some(s) => out.push((k.clone(), s.to_owned())),
                None => {
                    let whose = proc.map(|p| format!("process `{p}`: ")).unwrap_or_default();
                    self.warn(
                        *line,
                        format!("{whose}variable `{k}` is not a plain value; its templates are kept as written"),
                    );
                }
            }
        }
        out
    }

    /// Renders process-compose's `{{.NAME}}` templates from `vars`; other template syntax
    /// (functions, conditions) is kept as written, with a warning.
    fn render(&mut self, s: &str, line: usize, proc: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                return out;
            };
            let inner = after[..end].trim();
            let var = inner.strip_prefix('.').filter(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_'));
            match var.and_then(|n| self.vars.iter().find(|(k, _)| k == n)) {
                Some((_, v)) => out.push_str(v),
                None => {
                    self.warn(
                        line,
                        format!(
                            "{}template `{{{{{inner}}}}}` is not rendered (only `{{{{.NAME}}}}` of `vars` is)",
                            if proc.is_empty() { String::new() } else { format!("process `{proc}`: ") }
                        ),
                    );
                    out.push_str(&rest[start..start + 2 + end + 2]);
                }
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// A value svc expands (directory, environment, log path): process-compose's load-time
    /// `$VAR` becomes svc's `${VAR}` (from the daemon's environment, as process-compose took it
    /// from its own), everything else literal.
    fn value_pieces(&mut self, s: &str, line: usize) -> Vec<Piece> {
        let s = self.render(s, line, "");
        if !self.expand_env {
            return lit(&s);
        }
        let mut out = Vec::new();
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        let is_start = |c: char| c.is_ascii_alphabetic() || c == '_';
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        while i < chars.len() {
            let c = chars[i];
            let var = if c != '$' {
                None
            } else if chars.get(i + 1) == Some(&'{') {
                let close = chars[i + 2..].iter().position(|&c| c == '}').map(|p| i + 2 + p);
                close.and_then(|end| {
                    let name: String = chars[i + 2..end].iter().collect();
                    (name.chars().next().is_some_and(is_start) && name.chars().all(is_name)).then_some((name, end + 1))
                })
            } else if chars.get(i + 1).is_some_and(|&c| is_start(c)) {
                let end = chars[i + 1..].iter().position(|&c| !is_name(c)).map_or(chars.len(), |p| i + 1 + p);
                Some((chars[i + 1..end].iter().collect(), end))
            } else {
                None
            };
            match var {
                Some((name, next)) => {
                    if self.opts.var(&name).is_none() && !self.unset_vars.contains(&name) {
                        self.warn(
                            line,
                            format!("`${name}` is not set here; `svc check` refuses the config until it is"),
                        );
                        self.unset_vars.push(name.clone());
                    }
                    out.push(Piece::Raw(format!("${{{name}}}")));
                    i = next;
                }
                None => {
                    out.push(Piece::Lit(c));
                    i += 1;
                }
            }
        }
        out
    }

    fn value(&mut self, s: &str, line: usize) -> String {
        let p = self.value_pieces(s, line);
        svc_text(&p)
    }

    /// A path: relative ones are relative to process-compose's working directory (the YAML
    /// file's), svc's to the KDL file's; spelled out when the two differ.
    fn path_value(&mut self, s: &str, line: usize) -> String {
        let p = self.value_pieces(s, line);
        svc_text(&self.rebase(p))
    }

    /// A relative path made relative to the KDL file's directory instead of the YAML file's
    /// (the same directory unless the output goes elsewhere).
    fn rebase(&self, mut p: Vec<Piece>) -> Vec<Piece> {
        let absolute = matches!(p.first(), None | Some(Piece::Lit('/' | '~') | Piece::Raw(_)));
        if absolute {
            return p;
        }
        if p.starts_with(&lit("./")) {
            p.drain(..2);
        }
        if self.out_dir == self.dir {
            return p;
        }
        let mut out = lit(&self.dir.to_string_lossy());
        out.push(Piece::Lit('/'));
        out.extend(p);
        out
    }

    /// `environment: ["K=V", ...]` as KDL `K "V";` entries.
    fn environment(&mut self, node: &Node, proc: Option<&str>, body: &mut Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        let items: Vec<&Node> = match &node.val {
            Val::Seq(v) => v.iter().collect(),
            _ if node.is_null() => Vec::new(),
            _ => {
                self.lost(body, proc, "environment", node, "expected a list of KEY=VALUE");
                return out;
            }
        };
        for item in items {
            match item.as_str().and_then(|s| s.split_once('=')) {
                Some((k, v)) if !k.is_empty() => {
                    let v = self.value(v, item.line);
                    out.push(format!("{} {};", super::kdl_name(k), kdl_string(&v)));
                }
                _ => self.lost(body, proc, "environment", item, "not KEY=VALUE"),
            }
        }
        out
    }

    fn shell_config(&mut self, node: &Node, head: &mut Vec<String>) {
        let cmd = node.get("shell_command").and_then(Node::as_str);
        let arg = node.get("shell_argument").and_then(Node::as_str);
        if let Some(cmd) = cmd {
            self.shell = vec![cmd.to_owned()];
            if let Some(arg) = arg {
                self.shell.push(arg.to_owned());
            }
        }
        for (k, _, v) in node.entries() {
            match k.as_str() {
                "shell_command" | "shell_argument" => {}
                "elevated_shell_cmd" | "elevated_shell_arg" => {
                    Self::note(head, &format!("shell.{k}"), v, "only used with is_elevated")
                }
                _ => self.lost(head, None, &format!("shell.{k}"), v, "unknown to process-compose and to svc"),
            }
        }
    }

    /// `log_configuration`: rotation and timestamps map; the rest is about process-compose's
    /// JSON/console line format, which svc does not have (it writes lines as they come).
    /// Returns entries of `stdout-log` and program settings.
    fn log_configuration(
        &mut self,
        node: &Node,
        proc: Option<&str>,
        body: &mut Vec<String>,
    ) -> (Vec<String>, Vec<String>) {
        let mut out = Vec::new();
        let mut log = Vec::new();
        for (k, _, v) in node.entries() {
            match k.as_str() {
                "rotation" => {
                    for (rk, _, rv) in v.entries() {
                        match (rk.as_str(), rv.as_int()) {
                            ("max_size_mb", Some(n)) if n > 0 => log.push(format!("max-bytes \"{n}MB\";")),
                            ("max_backups", Some(n)) if n >= 0 => log.push(format!("backups {n};")),
                            ("compress", _) if rv.as_bool() != Some(true) => {}
                            _ => self.lost(
                                body,
                                proc,
                                &format!("log_configuration.rotation.{rk}"),
                                rv,
                                "svc rotates by size and count only, uncompressed",
                            ),
                        }
                    }
                }
                "add_timestamp" => {
                    if v.as_bool() == Some(true) {
                        out.push("log-timestamps #true".to_owned());
                    }
                }
                "fields_order" | "disable_json" | "timestamp_format" | "no_metadata" | "no_color"
                | "flush_each_line" => {
                    Self::note(
                        body,
                        &format!("log_configuration.{k}"),
                        v,
                        "svc writes each line as the program wrote it",
                    );
                }
                _ => {
                    self.lost(body, proc, &format!("log_configuration.{k}"), v, "unknown to process-compose and to svc")
                }
            }
        }
        (log, out)
    }

    fn availability(&mut self, proc: &str, node: &Node, body: &mut Vec<String>) {
        let restart = node.get("restart").and_then(Node::as_str).unwrap_or("no");
        let restarts = match restart {
            "always" => {
                body.push("autorestart #true".into());
                true
            }
            "on_failure" | "on-failure" => {
                body.push("autorestart \"unexpected\"   // restart on a non-zero exit".into());
                true
            }
            _ => false,
        };
        for (k, _, v) in node.entries() {
            match k.as_str() {
                "restart" => match restart {
                    "always" | "on_failure" | "on-failure" | "no" => {}
                    "exit_on_failure" => self.lost(
                        body,
                        Some(proc),
                        "availability.restart",
                        v,
                        "svc does not stop every program when one fails; it is not restarted",
                    ),
                    _ => self.lost(body, Some(proc), "availability.restart", v, "unknown policy; not restarted"),
                },
                "backoff_seconds" => {
                    match v.as_int() {
                        Some(n) if n >= 0 && restarts => {
                            body.push(format!("backoff {{ initial {n}; max {n}; }}   // process-compose waits {n}s before each restart"));
                        }
                        Some(_) if !restarts => Self::note(body, "availability.backoff_seconds", v, "never restarted"),
                        _ => self.lost(body, Some(proc), "availability.backoff_seconds", v, "not a number of seconds"),
                    }
                }
                "max_restarts" => match v.as_int() {
                    Some(0) => {}
                    _ if !restarts => Self::note(body, "availability.max_restarts", v, "never restarted"),
                    _ => self.lost(
                        body,
                        Some(proc),
                        "availability.max_restarts",
                        v,
                        "svc restarts a program that ran without a limit (backing off in a crash loop)",
                    ),
                },
                "exit_on_end" | "exit_on_skipped" => {
                    if v.as_bool() == Some(true) {
                        self.lost(
                            body,
                            Some(proc),
                            &format!("availability.{k}"),
                            v,
                            "svc does not stop every program when one ends",
                        );
                    }
                }
                _ => self.lost(
                    body,
                    Some(proc),
                    &format!("availability.{k}"),
                    v,
                    "unknown to process-compose and to svc",
                ),
            }
        }
        if restarts && node.get("backoff_seconds").is_none() {
            body.push("backoff { initial 1; max 1; }   // process-compose waits 1s before each restart".into());
        }
    }

    fn shutdown(&mut self, proc: &str, node: &Node, body: &mut Vec<String>) {
        for (k, _, v) in node.entries() {
            match k.as_str() {
                "command" => {
                    if v.as_str().is_some_and(|c| !c.trim().is_empty()) {
                        self.lost(
                            body,
                            Some(proc),
                            "shutdown.command",
                            v,
                            "svc stops programs with a signal; handle it in the program (a `trap` in a script)",
                        );
                    }
                }
                "signal" => match v.as_int() {
                    Some(n) if (1..=64).contains(&n) => body.push(format!("stop-signal {n}")),
                    _ => self.lost(body, Some(proc), "shutdown.signal", v, "not a signal number"),
                },
                "timeout_seconds" => match v.as_int() {
                    Some(n) if n >= 0 => body.push(format!("stop-wait-secs {n}")),
                    _ => self.lost(body, Some(proc), "shutdown.timeout_seconds", v, "not a number of seconds"),
                },
                "parent_only" => {
                    if v.as_bool() == Some(true) {
                        // Only the signal: process-compose still kills the whole group on timeout.
                        body.push("stop-as-group #false   // shutdown.parent_only".into());
                    }
                }
                _ => self.lost(body, Some(proc), &format!("shutdown.{k}"), v, "unknown to process-compose and to svc"),
            }
        }
    }

    /// `readiness_probe` → `ready` (and `health`, since process-compose keeps probing
    /// readiness and stops a process that stops being ready); `liveness_probe` → `health`;
    /// `ready_log_line` → `ready log=`.
    fn probes(&mut self, proc: &str, node: &Node, restarts: bool, body: &mut Vec<String>) {
        let readiness = node.get("readiness_probe").filter(|p| !p.is_null());
        let liveness = node.get("liveness_probe").filter(|p| !p.is_null());
        let log_line = node.get("ready_log_line");
        let on_unhealthy = if restarts { "restart" } else { "ignore" };
        let mut ready_written = false;
        if let Some(r) = readiness
            && let Some(p) = self.probe(proc, "readiness_probe", r, body)
        {
            body.push(format!(
                "ready {} interval={} timeout={} start-period={}",
                p.check, p.period, p.timeout, p.initial
            ));
            body.push(format!(
                "start-timeout {}   // readiness_probe: initial_delay_seconds + failure_threshold x period_seconds",
                p.initial + p.failures * p.period
            ));
            ready_written = true;
            if liveness.is_none() {
                body.push(format!(
                    "health {{ {}; interval {}; timeout {}; retries {}; on-unhealthy \"{on_unhealthy}\"; }}   // process-compose keeps probing readiness",
                    p.check.replacen('=', " ", 1),
                    p.period,
                    p.timeout,
                    p.failures
                ));
                if !restarts {
                    self.warn(
                        r.line,
                        format!(
                            "process `{proc}`: process-compose stops it when its readiness probe keeps failing; svc only \
                             marks it unhealthy (its availability does not restart it)"
                        ),
                    );
                }
            } else {
                self.warn(
                    r.line,
                    format!(
                        "process `{proc}`: once ready, its readiness probe is not checked again (svc has one health \
                         check, and liveness_probe takes it)"
                    ),
                );
                body.push("// process-compose: readiness_probe is not checked after ready: liveness_probe is the health check".into());
            }
        }
        if let Some(l) = liveness
            && let Some(p) = self.probe(proc, "liveness_probe", l, body)
        {
            body.push(format!(
                "health {{ {}; interval {}; timeout {}; start-period {}; retries {}; on-unhealthy \"{on_unhealthy}\"; }}",
                p.check.replacen('=', " ", 1),
                p.period,
                p.timeout,
                p.initial,
                p.failures
            ));
            if !restarts {
                self.warn(
                    l.line,
                    format!(
                        "process `{proc}`: process-compose stops it when its liveness probe fails; svc only marks it \
                         unhealthy (its availability does not restart it)"
                    ),
                );
            }
        }
        if let Some(l) = log_line
            && let Some(text) = l.as_str().filter(|s| !s.is_empty())
        {
            if ready_written {
                self.lost(
                    body,
                    Some(proc),
                    "ready_log_line",
                    l,
                    "svc takes one readiness check, and readiness_probe is it",
                );
            } else {
                let text = self.render(text, l.line, proc);
                body.push(format!("ready log={}", kdl_string(&text)));
            }
        }
    }

    fn probe(&mut self, proc: &str, which: &str, node: &Node, body: &mut Vec<String>) -> Option<ProbeSpec> {
        let mut p = ProbeSpec { check: String::new(), initial: 0, period: 10, timeout: 1, failures: 3 };
        let mut check = None;
        for (k, _, v) in node.entries() {
            let key = format!("{which}.{k}");
            match k.as_str() {
                "exec" => {
                    if check.is_some() {
                        self.lost(body, Some(proc), &key, v, "a probe takes one check");
                        continue;
                    }
                    let cmd = v.get("command").and_then(Node::as_str).map(|c| self.render(c, v.line, proc));
                    let Some(mut cmd) = cmd.filter(|c| !c.trim().is_empty()) else {
                        self.lost(body, Some(proc), &key, v, "no command");
                        continue;
                    };
                    for (ek, _, ev) in v.entries() {
                        match ek.as_str() {
                            "command" => {}
                            "working_dir" => {
                                if let Some(d) = ev.as_str() {
                                    cmd = format!("cd {} && {cmd}", sh_quote(d));
                                }
                            }
                            _ => self.lost(body, Some(proc), &format!("{key}.{ek}"), ev, "unknown to process-compose"),
                        }
                    }
                    check = Some(format!("exec={}", kdl_string(&cmd)));
                }
                "http_get" => {
                    if check.is_some() {
                        self.lost(body, Some(proc), &key, v, "a probe takes one check");
                        continue;
                    }
                    let s = |k: &str| v.get(k).and_then(Node::as_str).filter(|s| !s.trim().is_empty());
                    let host = s("host").unwrap_or("127.0.0.1").to_owned();
                    let scheme = s("scheme").unwrap_or("http").to_ascii_lowercase();
                    let mut path = s("path").unwrap_or("/").to_owned();
                    if !path.starts_with('/') {
                        path.insert(0, '/');
                    }
                    let port = s("port").map(|p| format!(":{p}")).unwrap_or_default();
                    let url = format!("{scheme}://{host}{port}{path}");
                    for (hk, _, hv) in v.entries() {
                        match hk.as_str() {
                            "host" | "scheme" | "path" | "port" => {}
                            "status_code" if hv.as_int().is_none_or(|c| c == 200) => {}
                            "status_code" => self.lost(
                                body,
                                Some(proc),
                                &format!("{key}.{hk}"),
                                hv,
                                "svc's http check accepts any 2xx",
                            ),
                            "headers" => self.lost(
                                body,
                                Some(proc),
                                &format!("{key}.{hk}"),
                                hv,
                                "svc's http check sends no headers; use an exec check with curl -H",
                            ),
                            _ => self.lost(body, Some(proc), &format!("{key}.{hk}"), hv, "unknown to process-compose"),
                        }
                    }
                    if scheme == "http" {
                        check = Some(format!("http={}", kdl_string(&url)));
                    } else {
                        self.warn(
                            v.line,
                            format!("process `{proc}`: {which} over {scheme} becomes an exec check with curl"),
                        );
                        check =
                            Some(format!("exec={}", kdl_string(&format!("curl -fsS -o /dev/null {}", sh_quote(&url)))));
                    }
                }
                "initial_delay_seconds" | "period_seconds" | "timeout_seconds" | "failure_threshold" => {
                    // process-compose replaces values below its minimums with its defaults.
                    match (k.as_str(), v.as_int()) {
                        ("initial_delay_seconds", Some(n)) => p.initial = n.max(0),
                        ("period_seconds", Some(n)) if n >= 1 => p.period = n,
                        ("timeout_seconds", Some(n)) if n >= 1 => p.timeout = n,
                        ("failure_threshold", Some(n)) if n >= 1 => p.failures = n.min(1000),
                        (_, Some(_)) => {}
                        (_, None) => self.lost(body, Some(proc), &key, v, "not a number"),
                    }
                }
                "success_threshold" => Self::note(body, &key, v, "process-compose does not use it either"),
                _ => self.lost(body, Some(proc), &key, v, "unknown to process-compose and to svc"),
            }
        }
        match check {
            Some(c) => {
                p.check = c;
                Some(p)
            }
            None => {
                self.lost(body, Some(proc), which, node, "it has neither exec nor http_get");
                None
            }
        }
    }

    fn depends_on(&mut self, proc: &str, node: &Node, body: &mut Vec<String>) {
        let Some(deps) = node.get("depends_on").filter(|d| !d.is_null()) else { return };
        if !matches!(deps.val, Val::Map(_)) {
            self.lost(body, Some(proc), "depends_on", deps, "expected a mapping of process names");
            return;
        }
        for (target, line, spec) in deps.entries() {
            let line = *line;
            let cond = match (spec.as_str(), spec.get("condition")) {
                (Some(c), _) => c.to_owned(),
                (None, Some(c)) => c.as_str().unwrap_or_default().to_owned(),
                (None, None) => "process_started".to_owned(),
            };
            for (k, _, v) in spec.entries() {
                if k != "condition" {
                    self.lost(body, Some(proc), &format!("depends_on.{target}.{k}"), v, "unknown to process-compose");
                }
            }
            let Some(t) = self.info.get(target).cloned() else {
                self.lost(body, Some(proc), &format!("depends_on.{target}"), spec, "there is no such process");
                continue;
            };
            let condition = match cond.as_str() {
                "process_started" | "" => "started",
                "process_completed" => "completed",
                "process_completed_successfully" => "completed-successfully",
                "process_healthy" => {
                    if t.readiness {
                        "ready"
                    } else if t.liveness {
                        "healthy"
                    } else {
                        self.warn(
                            line,
                            format!(
                                "process `{proc}` waits for `{target}` to be healthy, but `{target}` has no probe; \
                                 it waits for it to be ready (running) instead"
                            ),
                        );
                        "ready"
                    }
                }
                "process_log_ready" => {
                    if !t.ready_log {
                        self.warn(
                            line,
                            format!(
                                "process `{proc}` waits for `{target}`'s ready_log_line, which it does not set; it \
                                 waits for it to be ready (running) instead"
                            ),
                        );
                    } else if t.readiness {
                        self.warn(
                            line,
                            format!(
                                "process `{proc}` waits for `{target}`'s ready_log_line; svc's one readiness check \
                                 of `{target}` is its readiness_probe, so it waits for that"
                            ),
                        );
                    }
                    "ready"
                }
                other => {
                    self.warn(
                        line,
                        format!(
                            "process `{proc}`: unknown depends_on condition `{other}`; converted as process_started"
                        ),
                    );
                    "started"
                }
            };
            body.push(format!("depends-on {} condition=\"{condition}\"", kdl_string(&t.name)));
        }
    }
}

/// A probe's timing in seconds and its svc check (`exec="..."` or `http="..."`).
struct ProbeSpec {
    check: String,
    initial: i64,
    period: i64,
    timeout: i64,
    failures: i64,
}

/// `s` quoted for `sh`.
fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:@%+=,".contains(c)) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Whether `s` has a `$` that Go's `os.ExpandEnv` reads as a special variable (`$1`, `$$`,
/// `$?`, ...) and so replaced by an empty string.
fn has_special_dollar(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2).any(|w| w[0] == b'$' && (w[1].is_ascii_digit() || b"*#$@!?-".contains(&w[1])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AutoRestart, Check, Condition, Config, ProgramSpec, Readiness};
    use std::time::Duration;

    fn env(k: &str) -> Option<String> {
        (k == "HOME").then(|| "/home/u".to_owned())
    }

    fn convert(text: &str) -> Conversion {
        let opts = ImportOptions { env: Some(env), ..Default::default() };
        compose_to_kdl(text, Path::new("/app/process-compose.yaml"), &opts).expect("converts")
    }

    fn check(c: &Conversion) -> Config {
        crate::config::parse_str(&c.kdl, Path::new("/app/svc.kdl"), &env)
            .unwrap_or_else(|e| panic!("{}\n{}", e.render(false), c.kdl))
    }

    fn program<'a>(cfg: &'a Config, name: &str) -> &'a ProgramSpec {
        cfg.programs.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no {name}"))
    }

    fn messages(c: &Conversion) -> Vec<String> {
        c.warnings.iter().map(|w| format!("{}: {}", w.line, w.message)).collect()
    }

    #[test]
    fn commands_run_through_the_shell_in_the_file_directory() {
        let c = convert(
            "environment: [\"G=1\"]\nprocesses:\n  web:\n    command: \"echo $HOME {a} && awk '{ print $NF }'\"\n    working_dir: sub\n    environment:\n      - \"A=${HOME}/x\"\n      - \"B=two words\"\n    disabled: true\n",
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let cfg = check(&c);
        let web = program(&cfg, "web");
        assert_eq!(web.command, ["bash", "-c", "echo $HOME {a} && awk '{ print $NF }'"]);
        assert_eq!(web.directory.as_deref(), Some(Path::new("/app/sub")));
        let env: Vec<(&str, &str)> = web.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            env,
            [("G", "1"), ("A", "/home/u/x"), ("B", "two words"), ("PC_PROC_NAME", "web"), ("PC_REPLICA_NUM", "0")]
        );
        assert!(!web.autostart);
        assert_eq!(web.autorestart, AutoRestart::Never);
        assert_eq!(web.start_secs, Duration::ZERO);
    }

    #[test]
    fn shell_config_entrypoint_and_vars() {
        let c = convert(
            "shell:\n  shell_command: zsh\n  shell_argument: -c\nvars:\n  PORT: 8080\nprocesses:\n  a:\n    command: \"serve {{.PORT}} {{ .NAME }}\"\n    vars:\n      NAME: x\n  b:\n    entrypoint: [\"/bin/echo\", \"$HOME\"]\n  c:\n    command: \"x {{ if .A }}y{{ end }}\"\n",
        );
        let cfg = check(&c);
        assert_eq!(program(&cfg, "a").command, ["zsh", "-c", "serve 8080 x"]);
        // process-compose expanded $HOME when loading the file; svc does when loading its own.
        assert_eq!(program(&cfg, "b").command, ["/bin/echo", "/home/u"]);
        assert_eq!(
            messages(&c),
            [
                "14: process `c`: template `{{if .A}}` is not rendered (only `{{.NAME}}` of `vars` is)",
                "14: process `c`: template `{{end}}` is not rendered (only `{{.NAME}}` of `vars` is)"
            ]
        );
    }

    #[test]
    fn availability_and_shutdown() {
        let c = convert(
            "processes:\n  a:\n    command: x\n    availability:\n      restart: always\n      backoff_seconds: 3\n    shutdown:\n      signal: 2\n      timeout_seconds: 20\n      parent_only: yes\n  b:\n    command: x\n    availability:\n      restart: on_failure\n      max_restarts: 5\n  c:\n    command: x\n    availability:\n      restart: exit_on_failure\n      exit_on_end: true\n    shutdown:\n      command: stop-it\n",
        );
        let cfg = check(&c);
        let a = program(&cfg, "a");
        assert_eq!(a.autorestart, AutoRestart::Always);
        assert_eq!((a.backoff.initial, a.backoff.max), (Duration::from_secs(3), Duration::from_secs(3)));
        assert_eq!((a.stop_signal, a.stop_wait), (2, Duration::from_secs(20)));
        assert!(!a.stop_as_group && a.kill_as_group);
        let b = program(&cfg, "b");
        assert_eq!(b.autorestart, AutoRestart::Unexpected);
        assert_eq!(b.backoff.initial, Duration::from_secs(1));
        assert_eq!(program(&cfg, "c").autorestart, AutoRestart::Never);
        let m = messages(&c);
        assert_eq!(m.len(), 4, "{m:?}");
        assert!(m[0].starts_with("15: process `b`: `availability.max_restarts`"), "{m:?}");
        assert!(m[1].starts_with("19: process `c`: `availability.restart`"), "{m:?}");
        assert!(m[2].starts_with("20: process `c`: `availability.exit_on_end`"), "{m:?}");
        assert!(m[3].starts_with("22: process `c`: `shutdown.command`"), "{m:?}");
        assert!(c.kdl.contains("// process-compose: shutdown.command: stop-it"), "{}", c.kdl);
    }

    #[test]
    fn probes_become_ready_and_health() {
        let c = convert(
            r#"processes:
  db:
    command: x
    availability: {restart: always}
    readiness_probe:
      exec: {command: "pg_isready -q", working_dir: /tmp}
      initial_delay_seconds: 2
      period_seconds: 5
      timeout_seconds: 3
      failure_threshold: 4
      success_threshold: 1
  web:
    command: x
    liveness_probe:
      http_get: {host: 127.0.0.1, port: 8000, path: health}
  log:
    command: x
    ready_log_line: "listening on"
  tls:
    command: x
    readiness_probe:
      http_get: {scheme: https, port: "8443", headers: {X: [y]}}
"#,
        );
        let cfg = check(&c);
        let db = program(&cfg, "db");
        let Readiness::Probe(p) = &db.ready else { panic!("{:?}", db.ready) };
        assert_eq!(p.check, Check::Exec("cd /tmp && pg_isready -q".into()));
        assert_eq!(
            (p.interval, p.timeout, p.start_period),
            (Duration::from_secs(5), Duration::from_secs(3), Duration::from_secs(2))
        );
        assert_eq!(db.start_timeout, Some(Duration::from_secs(22)));
        let h = db.health.as_ref().expect("readiness keeps being checked");
        assert_eq!((h.retries, h.restart), (4, true));
        let web = program(&cfg, "web");
        assert_eq!(web.ready, Readiness::Running);
        let h = web.health.as_ref().expect("liveness");
        assert_eq!(h.probe.check, Check::Http("http://127.0.0.1:8000/health".into()));
        assert_eq!(
            (h.probe.interval, h.probe.timeout, h.retries, h.restart),
            (Duration::from_secs(10), Duration::from_secs(1), 3, false)
        );
        assert!(
            matches!(&program(&cfg, "log").ready, Readiness::Probe(p) if p.check == Check::Log("listening on".into()))
        );
        let Readiness::Probe(p) = &program(&cfg, "tls").ready else { panic!() };
        assert_eq!(p.check, Check::Exec("curl -fsS -o /dev/null https://127.0.0.1:8443/".into()));
        let m = messages(&c);
        assert!(m.iter().any(|w| w.contains("`web`: process-compose stops it when its liveness probe fails")), "{m:?}");
        assert!(m.iter().any(|w| w.contains("`readiness_probe.http_get.headers`")), "{m:?}");
        assert!(m.iter().any(|w| w.contains("over https becomes an exec check")), "{m:?}");
        assert!(c.kdl.contains("// process-compose: readiness_probe.success_threshold: 1"), "{}", c.kdl);
    }

    #[test]
    fn dependency_conditions() {
        let c = convert(
            r#"processes:
  db:
    command: x
    readiness_probe: {exec: {command: "true"}}
  cache:
    command: x
    liveness_probe: {exec: {command: "true"}}
  plain:
    command: x
  logger:
    command: x
    ready_log_line: up
  migrate:
    command: x
    depends_on:
      db: {condition: process_healthy}
  web:
    command: x
    depends_on:
      migrate: {condition: process_completed_successfully}
      cache: process_healthy
      plain: {condition: process_healthy}
      logger: {condition: process_log_ready}
      db: {}
  report:
    command: x
    depends_on:
      web: {condition: process_completed}
      nope: {condition: process_started}
      db: {condition: process_finished}
"#,
        );
        let cfg = check(&c);
        let deps = |n: &str| -> Vec<(String, Condition)> {
            program(&cfg, n).depends_on.iter().map(|d| (d.name.clone(), d.condition)).collect()
        };
        assert_eq!(deps("migrate"), [("db".to_owned(), Condition::Ready)]);
        assert_eq!(
            deps("web"),
            [
                ("migrate".to_owned(), Condition::CompletedSuccessfully),
                ("cache".to_owned(), Condition::Healthy),
                ("plain".to_owned(), Condition::Ready),
                ("logger".to_owned(), Condition::Ready),
                ("db".to_owned(), Condition::Started),
            ]
        );
        assert_eq!(deps("report"), [("web".to_owned(), Condition::Completed), ("db".to_owned(), Condition::Started)]);
        assert!(program(&cfg, "migrate").oneshot && program(&cfg, "web").oneshot && !program(&cfg, "db").oneshot);
        let m = messages(&c);
        assert_eq!(m.len(), 5, "{m:?}");
        // Without a restart policy a failing probe stops the process in process-compose only.
        assert!(m[0].starts_with("4: process `db`: process-compose stops it"), "{m:?}");
        assert!(m[1].starts_with("7: process `cache`: process-compose stops it"), "{m:?}");
        assert!(m[2].contains("`web` waits for `plain` to be healthy, but `plain` has no probe"), "{m:?}");
        assert!(m[3].contains("`depends_on.nope` is not converted: there is no such process"), "{m:?}");
        assert!(m[4].contains("unknown depends_on condition `process_finished`"), "{m:?}");
    }

    #[test]
    fn replicas_namespaces_and_logs() {
        let c = convert(
            r#"log_location: all.log
log_configuration:
  rotation: {max_size_mb: 5, max_backups: 2, max_age_days: 3}
  add_timestamp: true
  disable_json: true
processes:
  web:
    command: x
    replicas: 12
    namespace: front
    log_location: ./logs/web.log
  api:
    command: x
    replicas: 2
    namespace: front
    log_location: ./api-{PC_REPLICA_NUM}.log
  front:
    command: x
    namespace: default
"#,
        );
        let cfg = check(&c);
        let names: Vec<&str> = cfg.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), 15);
        assert_eq!(&names[..3], ["web-00", "web-01", "web-02"]);
        assert_eq!(&names[12..], ["api-0", "api-1", "front"]);
        let web = program(&cfg, "web-11");
        assert_eq!(web.group, "front-ns");
        assert!(web.redirect_stderr && web.log_timestamps);
        assert_eq!(web.environment.last().map(|(_, v)| v.as_str()), Some("11"));
        let log = format!("{:?}", web.stdout_log);
        assert!(log.contains("/app/logs/web.log.11"), "{log}");
        assert!(format!("{:?}", program(&cfg, "api-1").stdout_log).contains("/app/api-1.log"));
        assert!(format!("{:?}", program(&cfg, "front").stdout_log).contains("/app/all.log"));
        let m = messages(&c);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with("3: `log_configuration.rotation.max_age_days`"), "{m:?}");
        assert!(m[1].contains("namespace `front` is also a process name; its group is `front-ns`"), "{m:?}");
    }

    #[test]
    fn unknown_keys_are_reported_with_their_lines() {
        let c = convert(
            "verison: 1\nx-common: &c\n  command: x\nprocesses:\n  a:\n    <<: *c\n    comand: y\n    is_daemon: true\n    availability: {restart: always, retries: 2}\n    shutdown: {signl: 9}\n    readiness_probe: {exec: {command: z}, periodSeconds: 3}\n    x-note: kept\n",
        );
        let m = messages(&c);
        assert_eq!(
            m,
            [
                "1: `verison` is not converted: unknown to process-compose and to svc",
                "7: process `a`: `comand` is not converted: unknown to process-compose and to svc",
                "8: process `a`: `is_daemon` is not converted: svc supervises programs that stay in the foreground; run it without forking (for example `docker run` without `-d`)",
                "9: process `a`: `availability.retries` is not converted: unknown to process-compose and to svc",
                "10: process `a`: `shutdown.signl` is not converted: unknown to process-compose and to svc",
                "11: process `a`: `readiness_probe.periodSeconds` is not converted: unknown to process-compose and to svc",
            ]
        );
        for comment in
            ["// process-compose: verison: 1", "// process-compose: comand: y", "// process-compose: x-note: kept"]
        {
            assert!(c.kdl.contains(comment), "no {comment}:\n{}", c.kdl);
        }
        // The merge key brought `command` in from the anchor.
        assert_eq!(program(&check(&c), "a").command, ["bash", "-c", "x"]);
    }

    #[test]
    fn names_variables_and_bad_files() {
        let c = convert("processes:\n  my app:\n    command: x\n    working_dir: $NOPE/x\n");
        let cfg = crate::config::parse_str(&c.kdl, Path::new("/app/svc.kdl"), &|_| Some("/v".into())).expect("parses");
        assert_eq!(cfg.programs[0].name, "my_app");
        assert_eq!(c.unset_vars, ["NOPE"]);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        let opts = ImportOptions::default();
        let err = |t: &str| compose_to_kdl(t, Path::new("/a/p.yaml"), &opts).expect_err(t).to_string();
        assert_eq!(err(""), "/a/p.yaml:1: the file is empty");
        assert_eq!(err("- a\n"), "/a/p.yaml:1: expected a mapping with `processes:` at the top level");
        assert!(err("a: [\n").starts_with("/a/p.yaml:2:"), "{}", err("a: [\n"));
        assert_eq!(err("a: 1\na: 2\n"), "/a/p.yaml:2: `a` is given twice in one mapping");
        let none = convert("version: 1\n");
        assert_eq!(messages(&none), ["0: no `processes:` found"]);
    }

    #[test]
    fn special_dollars_and_disabled_expansion() {
        let c = convert("processes:\n  a:\n    command: \"awk '{ print $1 }'\"\n    environment: [\"P=$HOME\"]\n");
        assert!(messages(&c)[0].contains("process-compose replaced by an empty string"), "{:?}", c.warnings);
        let c = convert(
            "disable_env_expansion: true\nprocesses:\n  a:\n    command: \"awk '{ print $1 }'\"\n    environment: [\"P=$HOME\"]\n",
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let cfg = check(&c);
        assert_eq!(program(&cfg, "a").environment[0], ("P".to_owned(), "$HOME".to_owned()));
    }
}
