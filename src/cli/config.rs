//! `svc check`, `paths`, `reload`, `init`, `edit`: the config file and its commands.
//!
//! One rule for which file they mean: when a daemon runs, the config is the one it loaded;
//! `--config` names another (for `check` and `paths`), and is refused by `edit` and `reload`
//! when it differs from the daemon's, since their change would never reach it.

use super::{FAILURE, Global, SUCCESS, USAGE};
use crate::config::{Config, LogPath};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The config file the running daemon loaded, if a daemon answers.
fn daemon_config(g: &Global) -> Option<PathBuf> {
    super::block_on(async {
        let mut c = crate::client::Client::connect(&g.paths()).await.ok()?;
        match c.request(&crate::protocol::Request::Info {}).await.ok()? {
            crate::protocol::Response::Info(info) => Some(PathBuf::from(info.config)),
            _ => None,
        }
    })
}

/// Whether two paths name the same file (or the same path, when neither exists).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The config a command acts on: `--config` if given, else the running daemon's, else the
/// default path. With `must_match`, a `--config` other than the running daemon's is refused
/// (`Err` carries the exit code, the reason already printed).
fn config_for(g: &Global, verb: &str, must_match: bool) -> Result<PathBuf, u8> {
    let daemon = daemon_config(g);
    match (&g.config, daemon) {
        (Some(given), Some(running)) if must_match && !same_file(given, &running) => {
            eprintln!(
                "svc: the running daemon uses {}, not {}: `svc {verb}` would not change what runs.\n\
                 {verb} {} instead, or restart the daemon on the other file: svc shutdown && svc up --config {}",
                running.display(),
                given.display(),
                running.display(),
                given.display()
            );
            Err(USAGE)
        }
        (Some(given), _) => Ok(given.clone()),
        (None, Some(running)) => Ok(running),
        (None, None) => Ok(g.paths().config),
    }
}

/// Validates a config file and prints every problem at once: FILE, else `--config`, else the
/// running daemon's, else the default.
pub fn check(g: &Global, file: Option<PathBuf>, json: bool) -> u8 {
    let path = match file {
        Some(f) => f,
        None => match config_for(g, "check", false) {
            Ok(p) => p,
            Err(code) => return code,
        },
    };
    match crate::config::load(&path) {
        Ok(config) => {
            let warnings = log_path_warnings(&config);
            if json {
                let out = serde_json::json!({
                    "ok": true,
                    "file": path,
                    "programs": config.programs.iter().map(|p| &p.name).collect::<Vec<_>>(),
                    "errors": [],
                    "warnings": warnings,
                });
                println!("{out:#}");
            } else {
                for w in &warnings {
                    eprintln!("svc: warning: {w}");
                }
                println!(
                    "{}: ok ({} program{}, {} file{})",
                    path.display(),
                    config.programs.len(),
                    if config.programs.len() == 1 { "" } else { "s" },
                    config.files.len(),
                    if config.files.len() == 1 { "" } else { "s" },
                );
            }
            SUCCESS
        }
        Err(e) => {
            if json {
                let out = serde_json::json!({ "ok": false, "file": path, "errors": e.items(), "warnings": [] });
                println!("{out:#}");
            } else {
                let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                eprint!("{}", e.render(color));
            }
            FAILURE
        }
    }
}

/// A log file the daemon will not be able to write, found before anything runs: the program
/// would start and its output would be lost.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogPathWarning {
    /// The process that writes the file.
    pub program: String,
    /// The log file.
    pub path: PathBuf,
    /// Why it can't be written.
    pub message: String,
}

impl std::fmt::Display for LogPathWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` logs to {}: {}", self.program, self.path.display(), self.message)
    }
}

/// Log files of `config` that exist but can't be written, or whose directory is missing and
/// can't be created by this user (the daemon creates a missing directory where it can). One
/// warning per file, for its first writer.
pub fn log_path_warnings(config: &Config) -> Vec<LogPathWarning> {
    let mut out: Vec<LogPathWarning> = Vec::new();
    for p in &config.programs {
        let streams = if p.redirect_stderr { vec![&p.stdout_log] } else { vec![&p.stdout_log, &p.stderr_log] };
        for log in streams {
            let LogPath::File(path) = &log.path else { continue };
            // The daemon's own stdout/stderr and devices are not files it creates.
            if path.starts_with("/dev") || path.starts_with("/proc") || out.iter().any(|w| w.path == *path) {
                continue;
            }
            if let Some(message) = log_path_problem(path) {
                out.push(LogPathWarning { program: p.name.clone(), path: path.clone(), message });
            }
        }
    }
    out
}

fn access(path: &Path, mode: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: a valid NUL-terminated string; access() only reads it.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

/// Why this user could not write `path`, if it can't.
fn log_path_problem(path: &Path) -> Option<String> {
    if let Ok(m) = std::fs::metadata(path) {
        return if m.is_dir() {
            Some("it is a directory".into())
        } else if !access(path, libc::W_OK) {
            Some("the file is not writable".into())
        } else {
            None
        };
    }
    let dir = path.parent()?;
    let mut existing = dir;
    while std::fs::metadata(existing).is_err() {
        existing = existing.parent()?;
    }
    if !existing.is_dir() {
        return Some(format!("{} is not a directory", existing.display()));
    }
    if access(existing, libc::W_OK | libc::X_OK) {
        return None;
    }
    Some(if existing == dir {
        format!("directory {} is not writable", dir.display())
    } else {
        format!(
            "directory {} does not exist and can't be created: {} is not writable",
            dir.display(),
            existing.display()
        )
    })
}

/// Prints every location svc uses; the config is the running daemon's, if one runs.
pub fn paths(g: &Global, json: bool) -> u8 {
    let p = g.paths();
    let config = config_for(g, "paths", false).unwrap_or_else(|_| p.config.clone());
    let rows = [
        ("config", config),
        ("state", p.state_dir.clone()),
        ("logs", p.log_dir.clone()),
        ("socket", p.socket.clone()),
        ("lock", p.lock_file()),
        ("daemon_log", p.daemon_log()),
    ];
    if json {
        let map: serde_json::Map<String, serde_json::Value> =
            rows.iter().map(|(k, v)| ((*k).to_owned(), v.display().to_string().into())).collect();
        println!("{:#}", serde_json::Value::Object(map));
    } else {
        for (k, v) in rows {
            println!("{k:<11} {}", v.display());
        }
    }
    SUCCESS
}

/// `svc reload`: apply the config file's changes (or print them with `dry_run`).
pub fn reload(g: &Global, dry_run: bool, json: bool) -> u8 {
    use crate::protocol::{ErrorCode, Request, Response};
    if g.config.is_some()
        && let Err(code) = config_for(g, "reload", true)
    {
        return code;
    }
    super::block_on(async {
        let mut c = match super::connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let (plan, results) = match c.request(&Request::Reload { dry_run }).await {
            Ok(Response::Reload { plan, results }) => (plan, results),
            Ok(other) => return super::report(&crate::client::ClientError::Protocol(format!("{other:?}"))),
            Err(crate::client::ClientError::Daemon(e)) if e.code == ErrorCode::ConfigInvalid => {
                if json {
                    // The daemon sends its diagnostics as text; the same file read here gives
                    // them as data too (the daemon's text stays authoritative: its environment
                    // may expand variables differently).
                    let errors = match c.request(&Request::Info {}).await {
                        Ok(Response::Info(info)) => crate::config::load(std::path::Path::new(&info.config))
                            .err()
                            .map(|e| e.items())
                            .unwrap_or_default(),
                        _ => Vec::new(),
                    };
                    println!("{:#}", serde_json::json!({ "ok": false, "error": e.message, "errors": errors }));
                } else {
                    eprint!("{}", e.message);
                    eprintln!("svc: the config has errors; nothing was changed");
                }
                return FAILURE;
            }
            Err(e) => return super::report(&e),
        };
        let ok = results.iter().all(|r| r.ok);
        if json {
            println!("{:#}", serde_json::json!({ "ok": ok, "dry_run": dry_run, "plan": plan, "results": results }));
            return if ok { SUCCESS } else { FAILURE };
        }
        if plan.is_empty() {
            println!("nothing to do: the running programs match the config");
            return SUCCESS;
        }
        let (verb_add, verb_rm, verb_ch, verb_up) = if dry_run {
            ("would start", "would stop and remove", "would restart", "would update in place")
        } else {
            ("added", "removed", "restarted", "updated in place")
        };
        for (label, names) in
            [(verb_add, &plan.added), (verb_rm, &plan.removed), (verb_ch, &plan.changed), (verb_up, &plan.updated)]
        {
            if !names.is_empty() {
                println!("{label}: {}", names.join(", "));
            }
        }
        if let Some(change) = &plan.access {
            let who = |w: &Option<String>| w.clone().unwrap_or_else(|| "owner only".into());
            let verb = if dry_run { "would change access" } else { "access" };
            println!("{verb}: {} -> {}", who(&change.from), who(&change.to));
        }
        println!("unchanged: {} program{}", plan.unchanged.len(), if plan.unchanged.len() == 1 { "" } else { "s" });
        for r in results.iter().filter(|r| !r.ok) {
            eprintln!("{}: ERROR {}", r.name, r.message);
        }
        if ok { SUCCESS } else { FAILURE }
    })
}

/// The commented starter config `svc init` writes.
pub const STARTER: &str = include_str!("../../config-examples/starter.kdl");

/// `svc init`: write a starter config at the config path, never over an existing file.
pub fn init(g: &Global) -> u8 {
    let path = g.paths().config;
    if path.exists() {
        eprintln!("svc: {} already exists; change it with 'svc edit'", path.display());
        return FAILURE;
    }
    if let Some(dir) = path.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("svc: error: cannot create {}: {e}", dir.display());
        return FAILURE;
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, STARTER.as_bytes()));
    if let Err(e) = written {
        eprintln!("svc: error: cannot write {}: {e}", path.display());
        return FAILURE;
    }
    println!("wrote {}", path.display());
    println!("next: 'svc edit' to change it, 'svc up' to start the daemon, 'svc status' to see the programs");
    SUCCESS
}

/// `svc edit`: edit a copy of the config in `$VISUAL`/`$EDITOR`, check it, and only then put
/// it in place and reload the daemon (the `crontab -e`/`visudo` way: a broken config never
/// reaches the daemon).
pub fn edit(g: &Global) -> u8 {
    let path = match config_for(g, "edit", true) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let original = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => STARTER.to_owned(),
        Err(e) => {
            eprintln!("svc: error: cannot read {}: {e}", path.display());
            return FAILURE;
        }
    };
    let dir = path.parent().map_or_else(|| PathBuf::from("."), PathBuf::from);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("svc: error: cannot create {}: {e}", dir.display());
        return FAILURE;
    }
    // The copy sits beside the config so relative includes and `{here}` mean the same.
    let name = path.file_name().map_or_else(|| "svc.kdl".into(), |n| n.to_string_lossy().into_owned());
    // No `.kdl` extension, so an `include "*.kdl"` in the same directory never reads it.
    let tmp = dir.join(format!(".{name}.edit-{}", std::process::id()));
    // An edit an earlier `svc edit` could not save (it had errors) is where this one starts.
    let leftovers = leftover_edits(&dir, &name);
    let start = match leftovers.last().and_then(|p| std::fs::read_to_string(p).ok().map(|t| (p, t))) {
        Some((from, text)) => {
            eprintln!("svc: continuing the unsaved edit in {}", from.display());
            text
        }
        None => original.clone(),
    };
    if let Err(e) = std::fs::write(&tmp, &start) {
        eprintln!("svc: error: cannot write {}: {e}", tmp.display());
        return FAILURE;
    }
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    let interactive = std::io::stdin().is_terminal();
    loop {
        // Through the shell, as git and crontab do, so EDITOR="code --wait" works.
        let status =
            std::process::Command::new("sh").arg("-c").arg(format!("{editor} \"$1\"")).arg("sh").arg(&tmp).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("svc: the editor ({editor}) failed ({s}); nothing was changed");
                let _ = std::fs::remove_file(&tmp);
                return FAILURE;
            }
            Err(e) => {
                eprintln!("svc: cannot run the editor ({editor}): {e}; set VISUAL or EDITOR");
                let _ = std::fs::remove_file(&tmp);
                return FAILURE;
            }
        }
        let edited = std::fs::read_to_string(&tmp).unwrap_or_default();
        if edited == original && path.exists() {
            println!("no changes");
            let _ = std::fs::remove_file(&tmp);
            for old in &leftovers {
                let _ = std::fs::remove_file(old);
            }
            return SUCCESS;
        }
        match crate::config::load(&tmp) {
            Ok(_) => break,
            Err(e) => {
                let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                eprint!("{}", e.render(color));
                if interactive && ask("The config has errors. Edit again? [Y/n] ") {
                    continue;
                }
                eprintln!(
                    "svc: nothing was changed; your edit is kept in {} (`svc edit` continues from it)",
                    tmp.display()
                );
                for old in &leftovers {
                    let _ = std::fs::remove_file(old);
                }
                return FAILURE;
            }
        }
    }
    if let Err(e) = std::fs::rename(&tmp, &path) {
        eprintln!("svc: error: cannot replace {}: {e} (your edit is in {})", path.display(), tmp.display());
        return FAILURE;
    }
    for old in &leftovers {
        let _ = std::fs::remove_file(old);
    }
    println!("saved {}", path.display());
    let running = super::block_on(async { crate::client::Client::connect(&g.paths()).await.is_ok() });
    if running {
        reload(g, false, false)
    } else {
        println!("the daemon is not running; start it with 'svc up'");
        SUCCESS
    }
}

/// Copies `.NAME.edit-PID` left in `dir` by edits that could not be saved, oldest first.
fn leftover_edits(dir: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!(".{name}.edit-");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

fn ask(question: &str) -> bool {
    eprint!("{question}");
    let _ = std::io::Write::flush(&mut std::io::stderr());
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).unwrap_or(0) == 0 {
        return false;
    }
    !matches!(answer.trim().to_ascii_lowercase().as_str(), "n" | "no")
}
