//! `svc check`, `paths`, `reload`, `init`, `edit`: the config file and its commands.
//!
//! One rule for which file they mean: when a daemon runs, the config is the one it loaded;
//! `--config` names another (for `check` and `paths`), and is refused by `edit` and `reload`
//! when it differs from the daemon's, since their change would never reach it.

use super::{FAILURE, Global, SUCCESS, USAGE};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The config file the running daemon loaded, if a daemon answers.
fn daemon_config(g: &Global) -> Option<PathBuf> {
    super::block_on(async {
        let mut c = super::try_connect(g).await.ok()?;
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
/// running daemon's (checked by the daemon, as its next reload would read it), else the default.
/// With `-H`, the remote daemon checks its own config, or the local FILE as if it were it.
pub fn check(g: &Global, file: Option<PathBuf>, json: bool) -> u8 {
    let color = !json && std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let report = match (file, g.host()) {
        (Some(f), Some(_)) => {
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => return super::fail("io", &format!("cannot read {}: {e}", f.display()), None, FAILURE),
            };
            match ask_daemon(g, &crate::protocol::Request::Check { text: Some(text), color }) {
                Ok(crate::protocol::Response::Check(r)) => r,
                Ok(other) => return super::report(&crate::client::ClientError::Protocol(format!("{other:?}"))),
                Err(e) => return super::report(&e),
            }
        }
        (Some(f), None) => crate::config::check::report(&f, &crate::config::load(&f), color),
        (None, _) if g.config.is_some() => {
            let path = match config_for(g, "check", false) {
                Ok(p) => p,
                Err(code) => return code,
            };
            crate::config::check::report(&path, &crate::config::load(&path), color)
        }
        (None, host) => match ask_daemon(g, &crate::protocol::Request::Check { text: None, color }) {
            Ok(crate::protocol::Response::Check(r)) => r,
            Ok(other) => return super::report(&crate::client::ClientError::Protocol(format!("{other:?}"))),
            // No daemon here: the file `svc up` would load.
            Err(crate::client::ClientError::NoDaemon { .. }) if host.is_none() => {
                let path = g.paths().config;
                crate::config::check::report(&path, &crate::config::load(&path), color)
            }
            Err(e) => return super::report(&e),
        },
    };
    print_check(&report, json)
}

/// Sends one request to the daemon `g` selects and returns its reply.
fn ask_daemon(
    g: &Global,
    req: &crate::protocol::Request,
) -> Result<crate::protocol::Response, crate::client::ClientError> {
    super::block_on(async { super::try_connect(g).await?.request(req).await })
}

/// Prints a check's verdict: `{ok, file, programs, errors, warnings}` with `json`, else the
/// warnings and drawn errors on stderr and a summary line; the exit code.
fn print_check(r: &crate::protocol::CheckReport, json: bool) -> u8 {
    if json {
        let out = serde_json::json!({
            "ok": r.ok,
            "file": r.file,
            "programs": r.programs.iter().map(|p| &p.name).collect::<Vec<_>>(),
            "errors": r.errors,
            "warnings": r.warnings,
        });
        println!("{out:#}");
    } else if r.ok {
        for w in &r.warnings {
            eprintln!("svc: warning: {w}");
        }
        let n = r.programs.len();
        println!(
            "{}: ok ({n} program{}, {} file{})",
            r.file,
            if n == 1 { "" } else { "s" },
            r.files,
            if r.files == 1 { "" } else { "s" },
        );
    } else {
        eprint!("{}", r.rendered);
    }
    if r.ok { SUCCESS } else { FAILURE }
}

pub use crate::config::check::{LogPathWarning, log_path_warnings};

/// Prints every location svc uses: the running daemon's own (it says where its files are),
/// else the ones a daemon started here would use.
pub fn paths(g: &Global, json: bool) -> u8 {
    let rows: Vec<(&str, String)> = match ask_daemon(g, &crate::protocol::Request::Paths {}) {
        Ok(crate::protocol::Response::Paths(d)) => vec![
            ("config", d.config),
            ("state", d.state),
            ("logs", d.logs),
            ("socket", d.socket),
            ("lock", d.lock),
            ("daemon_log", d.daemon_log),
        ],
        Ok(other) => return super::report(&crate::client::ClientError::Protocol(format!("{other:?}"))),
        Err(e) if g.host().is_some() => return super::report(&e),
        Err(_) => {
            let p = g.paths();
            let config = config_for(g, "paths", false).unwrap_or_else(|_| p.config.clone());
            [
                ("config", config),
                ("state", p.state_dir.clone()),
                ("logs", p.log_dir.clone()),
                ("socket", p.socket.clone()),
                ("lock", p.lock_file()),
                ("daemon_log", p.daemon_log()),
            ]
            .into_iter()
            .map(|(k, v)| (k, v.display().to_string()))
            .collect()
        }
    };
    if json {
        let map: serde_json::Map<String, serde_json::Value> =
            rows.iter().map(|(k, v)| ((*k).to_owned(), v.clone().into())).collect();
        println!("{:#}", serde_json::Value::Object(map));
    } else {
        for (k, v) in rows {
            println!("{k:<11} {v}");
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
                    // The reload's error carries the diagnostics as text; a check gives them as
                    // data, read by the daemon as the reload did.
                    let errors = match c.request(&Request::Check { text: None, color: false }).await {
                        Ok(Response::Check(report)) => report.errors,
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
    if let Some(host) = g.host() {
        return edit_remote(g, &host.name);
    }
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
    let interactive = std::io::stdin().is_terminal();
    loop {
        if let Err(code) = run_editor(&tmp) {
            let _ = std::fs::remove_file(&tmp);
            return code;
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
    let running = super::block_on(async { super::try_connect(g).await.is_ok() });
    if running {
        reload(g, false, false)
    } else {
        println!("the daemon is not running; start it with 'svc up'");
        SUCCESS
    }
}

/// `svc -H HOST edit`: fetch the daemon's config, edit a local copy, have the daemon check it
/// (with its includes and environment), and only then write it there and reload.
fn edit_remote(g: &Global, host: &str) -> u8 {
    use crate::protocol::{Request, Response};
    let fetch = || match ask_daemon(g, &Request::ConfigFile {}) {
        Ok(Response::ConfigFile { path, text }) => Ok((path, text)),
        Ok(other) => Err(super::report(&crate::client::ClientError::Protocol(format!("{other:?}")))),
        Err(e) => Err(super::report(&e)),
    };
    let (path, text) = match fetch() {
        Ok(x) => x,
        Err(code) => return code,
    };
    let original = text.clone().unwrap_or_else(|| STARTER.to_owned());
    // The copy is private (it may hold secrets) and ends in .kdl for the editor's highlighting.
    let dir = crate::paths::runtime_dir(&|k| std::env::var(k).ok());
    if let Err(e) = svc_platform::ensure_private_dir(&dir) {
        eprintln!("svc: error: {e}");
        return FAILURE;
    }
    let safe: String = host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
    let tmp = dir.join(format!("edit-{safe}-{}.kdl", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, &original) {
        eprintln!("svc: error: cannot write {}: {e}", tmp.display());
        return FAILURE;
    }
    let interactive = std::io::stdin().is_terminal();
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let edited = loop {
        if let Err(code) = run_editor(&tmp) {
            let _ = std::fs::remove_file(&tmp);
            return code;
        }
        let edited = std::fs::read_to_string(&tmp).unwrap_or_default();
        if edited == original && text.is_some() {
            println!("no changes");
            let _ = std::fs::remove_file(&tmp);
            return SUCCESS;
        }
        match ask_daemon(g, &Request::Check { text: Some(edited.clone()), color }) {
            Ok(Response::Check(r)) if r.ok => break edited,
            Ok(Response::Check(r)) => {
                eprint!("{}", r.rendered);
                if interactive && ask("The config has errors. Edit again? [Y/n] ") {
                    continue;
                }
                eprintln!("svc: nothing was changed on {host}; your edit is kept in {}", tmp.display());
                return FAILURE;
            }
            Ok(other) => return super::report(&crate::client::ClientError::Protocol(format!("{other:?}"))),
            Err(e) => {
                eprintln!("svc: your edit is kept in {}", tmp.display());
                return super::report(&e);
            }
        }
    };
    // Someone else may have changed it meanwhile: never overwrite what we did not see.
    match fetch() {
        Ok((_, now)) if now == text => {}
        Ok(_) => {
            eprintln!(
                "svc: {path} on {host} changed while you edited it; nothing was saved, your edit is in {}",
                tmp.display()
            );
            return FAILURE;
        }
        Err(code) => return code,
    }
    match ask_daemon(g, &Request::PutConfig { text: edited }) {
        Ok(Response::Check(r)) if r.ok => {}
        Ok(Response::Check(r)) => {
            eprint!("{}", r.rendered);
            eprintln!("svc: nothing was changed on {host}; your edit is kept in {}", tmp.display());
            return FAILURE;
        }
        Ok(other) => return super::report(&crate::client::ClientError::Protocol(format!("{other:?}"))),
        Err(e) => {
            eprintln!("svc: your edit is kept in {}", tmp.display());
            return super::report(&e);
        }
    }
    let _ = std::fs::remove_file(&tmp);
    println!("saved {path} on {host}");
    reload(g, false, false)
}

/// Runs `$VISUAL`/`$EDITOR` (else vi) on `path` through the shell, as git and crontab do, so
/// `EDITOR="code --wait"` works; `Err` carries the exit code, the reason printed.
fn run_editor(path: &Path) -> Result<(), u8> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    // Through the shell, as git and crontab do, so EDITOR="code --wait" works.
    match std::process::Command::new("sh").arg("-c").arg(format!("{editor} \"$1\"")).arg("sh").arg(path).status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => {
            eprintln!("svc: the editor ({editor}) failed ({s}); nothing was changed");
            Err(FAILURE)
        }
        Err(e) => {
            eprintln!("svc: cannot run the editor ({editor}): {e}; set VISUAL or EDITOR");
            Err(FAILURE)
        }
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
