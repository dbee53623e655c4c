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
