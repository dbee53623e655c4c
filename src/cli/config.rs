//! `svc check` and `svc paths`: commands that need no daemon.

use super::{FAILURE, Global, SUCCESS};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Validates a config file and prints every problem at once.
pub fn check(g: &Global, file: Option<PathBuf>, json: bool) -> u8 {
    let path = file.unwrap_or_else(|| g.paths().config);
    match crate::config::load(&path) {
        Ok(config) => {
            if json {
                let out = serde_json::json!({
                    "ok": true,
                    "file": path,
                    "programs": config.programs.iter().map(|p| &p.name).collect::<Vec<_>>(),
                    "errors": [],
                });
                println!("{out:#}");
            } else {
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
                let out = serde_json::json!({ "ok": false, "file": path, "errors": e.items() });
                println!("{out:#}");
            } else {
                let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                eprint!("{}", e.render(color));
            }
            FAILURE
        }
    }
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
                    println!("{:#}", serde_json::json!({ "ok": false, "error": e.message }));
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
        println!("unchanged: {} program{}", plan.unchanged.len(), if plan.unchanged.len() == 1 { "" } else { "s" });
        for r in results.iter().filter(|r| !r.ok) {
            eprintln!("{}: ERROR {}", r.name, r.message);
        }
        if ok { SUCCESS } else { FAILURE }
    })
}
