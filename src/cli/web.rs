//! `svc web`: checks where to listen, binds, prints the one-time link and serves the dashboard
//! (`crate::web`) until interrupted.

use super::{FAILURE, Global, SUCCESS, USAGE, block_on};
use crate::web::{Gate, serve};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The arguments of `svc web`.
#[derive(Debug, Clone, Default)]
pub struct WebArgs {
    /// `--listen ADDR:PORT` (default 127.0.0.1 on a free port).
    pub listen: Option<String>,
    /// `--allow-remote`: accept a `--listen` address other machines can reach.
    pub allow_remote: bool,
    /// `--open`: open the link in a browser.
    pub open: bool,
}

/// Runs the dashboard server until interrupted.
pub fn web(g: &Global, args: WebArgs) -> u8 {
    let listen = match listen_addr(args.listen.as_deref(), args.allow_remote) {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("svc: {message}");
            return USAGE;
        }
    };
    let std_listener = match std::net::TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("svc: cannot listen on {listen}: {e}");
            return FAILURE;
        }
    };
    let local = match std_listener.local_addr().and_then(|a| std_listener.set_nonblocking(true).map(|()| a)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("svc: cannot listen on {listen}: {e}");
            return FAILURE;
        }
    };
    let gate = match Gate::new(local) {
        Ok(g) => Arc::new(g),
        Err(e) => {
            eprintln!("svc: cannot read random bytes for the token: {e}");
            return FAILURE;
        }
    };
    if !local.ip().is_loopback() {
        eprintln!(
            "svc: warning: listening on {local}, which other machines can reach; the token is all that guards it, \
             and it crosses the network in clear text (no TLS). Prefer the default (127.0.0.1) and \
             'ssh -L {port}:127.0.0.1:{port} HOST' from your own machine.",
            port = local.port()
        );
    }
    let token = gate.token().unwrap_or_default();
    let url = format!("http://{local}/?token={token}");
    println!("svc web: serving the dashboard on http://{local}/");
    println!("Open this link in a browser (it works once, for one browser session):\n\n    {url}\n");
    if local.ip().is_loopback() {
        println!(
            "From another machine: ssh -L {port}:127.0.0.1:{port} THIS-HOST, then open the same link there.",
            port = local.port()
        );
    }
    println!("Stop with Ctrl-C.");
    let _ = std::io::stdout().flush();
    let opened = if args.open { open_browser(g, &url, &gate) } else { None };
    let code = block_on(async {
        let listener = match tokio::net::TcpListener::from_std(std_listener) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("svc: cannot listen on {local}: {e}");
                return FAILURE;
            }
        };
        tokio::select! {
            r = serve(listener, g.clone(), gate) => match r {
                Ok(()) => SUCCESS,
                Err(e) => {
                    eprintln!("svc: the web server failed: {e}");
                    FAILURE
                }
            },
            () = interrupted() => SUCCESS,
        }
    });
    if let Some(dir) = opened {
        let _ = std::fs::remove_dir_all(dir);
    }
    code
}

/// Resolves when the user stops `svc web` (Ctrl-C, SIGTERM, SIGHUP), so it can tidy up.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

/// The address to listen on: loopback unless `allow_remote`; never a wildcard, because the
/// Host check needs the one address browsers will use.
fn listen_addr(listen: Option<&str>, allow_remote: bool) -> Result<SocketAddr, String> {
    let Some(text) = listen else { return Ok(SocketAddr::from(([127, 0, 0, 1], 0))) };
    let addr: SocketAddr =
        text.parse().map_err(|_| format!("--listen {text}: expected ADDRESS:PORT, as 127.0.0.1:8080 or [::1]:8080"))?;
    if addr.ip().is_unspecified() {
        return Err(format!(
            "--listen {text}: name one address (as 192.0.2.7:{}), not every address: the server answers only to \
             the address in its link",
            addr.port()
        ));
    }
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "--listen {text}: refusing an address other machines can reach without --allow-remote. \
             Safer: keep the default and use 'ssh -L PORT:127.0.0.1:PORT HOST' (see docs/web.md)"
        ));
    }
    Ok(addr)
}

/// Opens the link in a browser through a private redirect file rather than on a command line:
/// a command line is readable by every user of the machine (`ps`), and the token would be
/// theirs to use first (Jupyter does the same). Returns the file's directory, to remove.
fn open_browser(g: &Global, url: &str, gate: &Gate) -> Option<PathBuf> {
    let Some(opener) = opener() else {
        eprintln!("svc: --open: no xdg-open or open found; open the link above yourself");
        return None;
    };
    let dir = match private_dir(&g.paths().state_dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("svc: --open: cannot write the page that opens the link: {e}; open the link above yourself");
            return None;
        }
    };
    let file = dir.join("open.html");
    let page = format!(
        "<!doctype html><meta charset=utf-8><meta name=referrer content=no-referrer>\
         <meta http-equiv=refresh content=\"0;url={url}\"><title>svc</title><a href=\"{url}\">Open the svc dashboard</a>\n"
    );
    if let Err(e) = write_private(&file, &page) {
        eprintln!("svc: --open: cannot write {}: {e}; open the link above yourself", file.display());
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    }
    // Once used, the token is worthless: the page need not wait for svc web to end.
    let remove = dir.clone();
    gate.on_exchange(Box::new(move || {
        let _ = std::fs::remove_dir_all(remove);
    }));
    let child = std::process::Command::new(&opener)
        .arg(format!("file://{}", encode_path(&file)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match child {
        // Reaped on a thread: some openers wait for the browser they start.
        Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
        Err(e) => eprintln!("svc: --open: {}: {e}; open the link above yourself", opener.display()),
    }
    Some(dir)
}

/// `xdg-open`, else `open` (macOS) unless it is Linux's `openvt` under another name.
fn opener() -> Option<PathBuf> {
    let find = |name: &str| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.is_file())
    };
    if let Some(p) = find("xdg-open") {
        return Some(p);
    }
    find("open").filter(|p| std::fs::canonicalize(p).is_ok_and(|r| !r.ends_with("openvt")))
}

/// A fresh directory only this user can enter, under `base` (the state directory).
fn private_dir(base: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(base)?;
    let dir = base.join(format!("web-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}

/// A path as the path part of a `file://` URL.
fn encode_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_defaults_to_loopback_and_refuses_the_rest_unless_asked() {
        assert_eq!(listen_addr(None, false), Ok("127.0.0.1:0".parse().expect("addr")));
        assert_eq!(listen_addr(Some("[::1]:8080"), false), Ok("[::1]:8080".parse().expect("addr")));
        assert!(listen_addr(Some("192.0.2.7:8080"), false).is_err_and(|e| e.contains("--allow-remote")));
        assert_eq!(listen_addr(Some("192.0.2.7:8080"), true), Ok("192.0.2.7:8080".parse().expect("addr")));
        assert!(listen_addr(Some("0.0.0.0:8080"), true).is_err_and(|e| e.contains("name one address")));
        assert!(listen_addr(Some("localhost"), false).is_err_and(|e| e.contains("ADDRESS:PORT")));
    }

    #[test]
    fn file_urls_escape_what_needs_it() {
        assert_eq!(encode_path(Path::new("/tmp/a b/open.html")), "/tmp/a%20b/open.html");
    }
}
