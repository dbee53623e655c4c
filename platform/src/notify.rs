//! systemd's readiness protocol (`sd_notify`), written out: one datagram of `KEY=VALUE` lines to
//! the socket named by `$NOTIFY_SOCKET`.
//!
//! Hand-written because the protocol is a single `sendto`, and because the `sd-notify` crate's
//! way of hiding the variable from children mutates the process environment (`unsafe` in a
//! threaded daemon); svc instead removes it from each program's environment when spawning.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// The environment variable systemd (or anything speaking its protocol) sets to ask for readiness
/// notifications. Remove it from every spawned program's environment: it is meant for svc alone.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// Tells the service manager that start-up is finished (`READY=1`).
///
/// Returns `Ok(false)` without doing anything when `$NOTIFY_SOCKET` is unset or empty (not started
/// by systemd with `Type=notify`), `Ok(true)` when the message was sent.
pub fn notify_ready() -> io::Result<bool> {
    notify_state("READY=1")
}

/// Tells the service manager that a configuration reload has begun (`RELOADING=1`, with the
/// `MONOTONIC_USEC` that `Type=notify-reload` requires). Send [`notify_ready`] when it is done.
pub fn notify_reloading() -> io::Result<bool> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_err(io::Error::from)?;
    let usec = now.tv_sec() as i128 * 1_000_000 + now.tv_nsec() as i128 / 1_000;
    notify_state(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"))
}

/// Tells the service manager that svc is shutting down (`STOPPING=1`).
pub fn notify_stopping() -> io::Result<bool> {
    notify_state("STOPPING=1")
}

/// Sends an arbitrary state (newline-separated `KEY=VALUE` lines, such as `STATUS=…`) to
/// `$NOTIFY_SOCKET`. Same return values as [`notify_ready`].
pub fn notify_state(state: &str) -> io::Result<bool> {
    notify_with(std::env::var_os(NOTIFY_SOCKET_ENV).as_deref(), state)
}

fn notify_with(socket: Option<&OsStr>, state: &str) -> io::Result<bool> {
    match socket {
        Some(s) if !s.is_empty() => notify_to(s, state).map(|()| true),
        _ => Ok(false),
    }
}

/// Sends `state` as one datagram to the notification socket `socket`, written the way
/// `$NOTIFY_SOCKET` writes it: an absolute path, or on Linux `@name` for an abstract socket.
///
/// Other forms (relative paths; `vsock:` addresses, which systemd also accepts) give
/// `ErrorKind::InvalidInput`, as `sd_notify` refuses them too.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let bytes = socket.as_bytes();
    let sock = UnixDatagram::unbound()?;
    let sent = match bytes.first() {
        Some(b'/') => sock.send_to(state.as_bytes(), socket)?,
        Some(b'@') => send_abstract(&sock, &bytes[1..], state)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{NOTIFY_SOCKET_ENV}={} is neither an absolute path nor @abstract", socket.display()),
            ));
        }
    };
    // Datagrams are all-or-nothing, but say so plainly if a platform ever did otherwise.
    if sent == state.len() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::WriteZero, "notification datagram was truncated"))
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(sock: &UnixDatagram, name: &[u8], state: &str) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(state.as_bytes(), &addr)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_sock: &UnixDatagram, _name: &[u8], _state: &str) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("abstract socket names (@…) in {NOTIFY_SOCKET_ENV} exist only on Linux"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_empty_socket_is_a_no_op() {
        assert!(!notify_with(None, "READY=1").unwrap());
        assert!(!notify_with(Some(OsStr::new("")), "READY=1").unwrap());
    }

    #[test]
    fn relative_socket_is_refused() {
        let e = notify_to(OsStr::new("run/notify"), "READY=1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
