//! `svc dial-stdio` (the remote end of `svc -H`), and the commands `-H` runs as a whole on the
//! other machine (`up`, `init`, `install`, `uninstall`: they act on that machine, not through
//! its daemon).

use super::{FAILURE, Global, SUCCESS, block_on, report};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// `svc dial-stdio`: connects to this user's daemon exactly as any local command does (the
/// socket from `daemon.json`, the peer's uid checked), then copies stdin to it and its replies
/// to stdout until the daemon closes the connection. `ssh HOST svc dial-stdio` is how
/// `svc -H HOST` reaches a daemon; it runs as the user ssh logged in as.
///
/// Exits 4 (with the reason on stderr) when there is no daemon to reach, 0 when the daemon
/// closed the connection, 1 on an I/O error.
pub fn dial_stdio(g: &Global) -> u8 {
    let code = block_on(async {
        let (mut from_daemon, mut to_daemon) = match crate::client::connect_local(&g.paths()).await {
            Ok(halves) => halves,
            Err(e) => {
                // Always text on stderr: stdout belongs to the protocol.
                super::json_errors(false);
                return report(&e);
            }
        };
        let mut stdout = tokio::io::stdout();
        let down = async {
            tokio::io::copy(&mut from_daemon, &mut stdout).await?;
            stdout.flush().await
        };
        let up = async {
            tokio::io::copy(&mut tokio::io::stdin(), &mut to_daemon).await?;
            // The client is done asking: the daemon answers what it has, then closes.
            to_daemon.shutdown().await?;
            std::future::pending::<std::io::Result<()>>().await
        };
        let ended = tokio::select! {
            r = down => r,
            r = up => r,
        };
        match ended {
            Ok(()) => SUCCESS,
            // The client went away first (ssh closed our stdout): nothing is lost.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => SUCCESS,
            Err(e) => {
                eprintln!("svc: dial-stdio: {e}");
                FAILURE
            }
        }
    });
    // Not a return: a thread may still be blocked reading stdin, and the runtime would wait
    // for it at shutdown.
    std::process::exit(i32::from(code))
}

/// Runs `svc ARGS` on the one host of `g` through ssh with this terminal's stdin, stdout and
/// stderr, and returns its exit code; an ssh failure is explained as for any remote command.
pub fn run_there(g: &Global, args: &[&str]) -> u8 {
    let Some(host) = g.host() else {
        return super::fail(
            "usage",
            &format!("svc {} runs on one host at a time (got {})", args.first().unwrap_or(&""), g.hosts.len()),
            None,
            super::USAGE,
        );
    };
    let mut cmd = match host.ssh_command(args) {
        Ok(c) => c,
        Err(e) => return report(&e),
    };
    let program = cmd.get_program().to_string_lossy().into_owned();
    // ssh's own complaints are kept to explain a failure; the remote command's stderr comes
    // through the same pipe and is passed on as it arrives.
    cmd.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return report(&crate::remote::spawn_error(host, &program, &e)),
    };
    let mut said = Vec::new();
    if let Some(mut err) = child.stderr.take() {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut err, &mut buf) {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), &buf[..n]);
            said.extend_from_slice(&buf[..n]);
        }
    }
    let status = child.wait().ok();
    let code = status.and_then(|s| s.code());
    match code {
        Some(c @ 0..=5) => c as u8,
        _ => {
            let stderr = String::from_utf8_lossy(&said);
            let status = status.map(|s| (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)));
            crate::remote::classify(host, status, &stderr).map_or(SUCCESS, |e| report(&e))
        }
    }
}
