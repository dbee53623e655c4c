//! `svc logs`: the tail of a program's output, optionally followed.

use super::{Global, SUCCESS, block_on, connect, report};
use crate::client::ClientError;
use crate::protocol::{LogStream, Request, Response};
use std::io::Write;

/// Prints the last `lines` lines of `name`'s stdout (or stderr); with `follow`, keeps
/// printing until the daemon goes away or the user interrupts.
pub fn logs(g: &Global, name: String, stderr: bool, lines: usize, follow: bool) -> u8 {
    let stream = if stderr { LogStream::Stderr } else { LogStream::Stdout };
    block_on(async {
        let mut c = match connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        if let Err(e) = c.send(&Request::Logs { name, stream, lines, follow }).await {
            return report(&e);
        }
        let mut out = std::io::stdout().lock();
        loop {
            match c.recv().await {
                Ok(Some(Response::Log { data })) => {
                    if data.is_empty() && !follow {
                        return SUCCESS;
                    }
                    // A closed pipe (`svc logs -f x | head`) is a normal way to stop.
                    if out.write_all(data.as_bytes()).and_then(|()| out.flush()).is_err() {
                        return SUCCESS;
                    }
                }
                Ok(Some(other)) => return report(&ClientError::Protocol(format!("{other:?}"))),
                Ok(None) => return SUCCESS,
                Err(e) => return report(&e),
            }
        }
    })
}

/// `svc clear TARGET...` / `svc logs --clear NAME`: empty the logs of programs.
pub fn clear(g: &Global, targets: Vec<String>, json: bool) -> u8 {
    super::control::run_and_print(g, Request::ClearLogs { targets }, json)
}
