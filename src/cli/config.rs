//! `svc check` and `svc paths`: commands that need no daemon.

use super::{FAILURE, Global, SUCCESS};
use crate::config::{Config, LogPath};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Validates a config file and prints every problem at once.
pub fn check(g: &Global, file: Option<PathBuf>, json: bool) -> u8 {
    let path = file.unwrap_or_else(|| g.paths().config);
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

/// Prints every location svc uses.
pub fn paths(g: &Global, json: bool) -> u8 {
    let p = g.paths();
    let rows = [
        ("config", p.config.clone()),
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
    let path = g.paths().config;
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
    if let Err(e) = std::fs::write(&tmp, &original) {
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
                eprintln!("svc: nothing was changed; your edit is kept in {}", tmp.display());
                return FAILURE;
            }
        }
    }
    if let Err(e) = std::fs::rename(&tmp, &path) {
        eprintln!("svc: error: cannot replace {}: {e} (your edit is in {})", path.display(), tmp.display());
        return FAILURE;
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

fn ask(question: &str) -> bool {
    eprint!("{question}");
    let _ = std::io::Write::flush(&mut std::io::stderr());
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).unwrap_or(0) == 0 {
        return false;
    }
    !matches!(answer.trim().to_ascii_lowercase().as_str(), "n" | "no")
}
