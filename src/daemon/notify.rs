//! Readiness from programs: systemd's `sd_notify` protocol on a socket of the program's own,
//! and s6's notification descriptor.
//!
//! Each program with `ready "notify"` gets a datagram socket in the daemon's private runtime
//! directory, named to it in `NOTIFY_SOCKET`. A socket per program (rather than one shared, as
//! systemd has) means a datagram's meaning never depends on looking up who sent it; the sender's
//! pid, where the kernel reports it, is only used to refuse processes outside the program.

use std::io::{self, PipeReader};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::UnixDatagram;
use tokio::net::unix::pipe;

/// The largest datagram accepted; longer ones are dropped whole, as systemd does (its limit is
/// the same, `PIPE_BUF`).
pub const MAX_DATAGRAM: usize = 4096;

/// One line of an `sd_notify` datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyMessage {
    /// `READY=1`: start-up is finished.
    Ready,
    /// `RELOADING=1`: reloading its configuration; `READY=1` follows when done.
    Reloading,
    /// `STOPPING=1`: shutting down.
    Stopping,
    /// `STATUS=...`: a line of free text for `svc status`.
    Status(String),
    /// `MAINPID=n`: the program's main process is now `n` (after a double fork, say).
    MainPid(u32),
    /// `WATCHDOG=1`: still alive.
    Watchdog,
    /// `WATCHDOG=trigger`: the program asks to be treated as if its watchdog had expired.
    WatchdogTrigger,
    /// `EXTEND_TIMEOUT_USEC=n`: the current start or stop may take `n` more from now.
    ExtendTimeout(Duration),
    /// `ERRNO=n`: the program failed with this errno.
    Errno(i32),
    /// Any other well-formed `KEY=VALUE` line (`FDSTORE=1`, `BARRIER=1`, `MONOTONIC_USEC=...`,
    /// `WATCHDOG_USEC=...`), whole, for the log.
    Other(String),
}

/// Parses one datagram: newline-separated `KEY=VALUE` lines. Malformed lines (no `=`, not UTF-8,
/// a NUL byte, a value a known key cannot have) are skipped; the rest still count.
pub fn parse(datagram: &[u8]) -> Vec<NotifyMessage> {
    datagram.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

fn parse_line(line: &[u8]) -> Option<NotifyMessage> {
    if line.contains(&0) {
        return None;
    }
    let line = std::str::from_utf8(line).ok()?;
    let (key, value) = line.split_once('=')?;
    if key.is_empty() {
        return None;
    }
    // Numbers as libsystemd writes them: plain decimal digits (no sign, no spaces).
    let number = |v: &str| v.bytes().all(|b| b.is_ascii_digit()).then(|| v.parse::<u64>().ok()).flatten();
    Some(match (key, value) {
        ("READY", "1") => NotifyMessage::Ready,
        ("RELOADING", "1") => NotifyMessage::Reloading,
        ("STOPPING", "1") => NotifyMessage::Stopping,
        ("STATUS", text) => NotifyMessage::Status(text.to_owned()),
        ("MAINPID", v) => NotifyMessage::MainPid(number(v).and_then(|n| u32::try_from(n).ok()).filter(|&n| n > 0)?),
        ("WATCHDOG", "1") => NotifyMessage::Watchdog,
        ("WATCHDOG", "trigger") => NotifyMessage::WatchdogTrigger,
        ("EXTEND_TIMEOUT_USEC", v) => NotifyMessage::ExtendTimeout(Duration::from_micros(number(v)?)),
        ("ERRNO", v) => NotifyMessage::Errno(number(v).and_then(|n| i32::try_from(n).ok())?),
        ("READY" | "RELOADING" | "STOPPING" | "WATCHDOG", _) => return None,
        _ => NotifyMessage::Other(line.to_owned()),
    })
}

/// One datagram received on a [`NotifySocket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The sending process, where the OS reports it (`svc_platform::DATAGRAM_SENDER_PID`).
    pub pid: Option<i32>,
    /// Its lines, parsed.
    pub messages: Vec<NotifyMessage>,
}

/// A program's notification socket: bound at a path in the daemon's private runtime directory,
/// removed again when dropped.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    /// (device, inode) of the file bound, so that drop never removes a successor's socket.
    file: (u64, u64),
}

impl NotifySocket {
    /// Binds a datagram socket at `path` (replacing a stale file there), mode 0600, with sender
    /// credentials enabled where the OS has them. Must be called within a tokio runtime.
    pub fn bind(path: &Path) -> io::Result<NotifySocket> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let socket = UnixDatagram::bind(path)?;
        // bind() applies the umask; the directory is private already, but a program's
        // socket is for that program's user alone wherever it is.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        svc_platform::enable_datagram_credentials(socket.as_fd())?;
        let meta = std::fs::symlink_metadata(path)?;
        Ok(NotifySocket { socket, path: path.to_owned(), file: (meta.dev(), meta.ino()) })
    }

    /// Where the socket is bound: the value of the program's `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next datagram. Datagrams longer than [`MAX_DATAGRAM`] are dropped (and
    /// logged); errors are the socket's.
    pub async fn recv(&self) -> io::Result<Datagram> {
        let mut buf = [0u8; MAX_DATAGRAM];
        loop {
            let got = self
                .socket
                .async_io(Interest::READABLE, || svc_platform::recv_datagram_with_pid(self.socket.as_fd(), &mut buf))
                .await?;
            if got.truncated {
                tracing::warn!(
                    "{}: notification of more than {MAX_DATAGRAM} bytes from pid {} ignored",
                    self.path.display(),
                    got.pid.map_or_else(|| "?".into(), |p| p.to_string())
                );
                continue;
            }
            return Ok(Datagram { pid: got.pid, messages: parse(&buf[..got.len]) });
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Waits on the read end of an s6 notification descriptor (`ready "fd" N`): `true` once a
/// newline arrives, `false` if every writer closed it without one (the program exited, or
/// closed the descriptor without being ready). Must be called within a tokio runtime.
pub async fn wait_for_newline(pipe: PipeReader) -> bool {
    let Ok(mut rx) = pipe::Receiver::from_owned_fd(OwnedFd::from(pipe)) else { return false };
    let mut buf = [0u8; 512];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) => return false,
            Ok(n) if buf[..n].contains(&b'\n') => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram as StdDatagram;

    #[test]
    fn parses_every_key() {
        let got = parse(
            b"READY=1\nRELOADING=1\nSTOPPING=1\nSTATUS=warming up: 3/4 = ok\nMAINPID=4242\nWATCHDOG=1\n\
              WATCHDOG=trigger\nEXTEND_TIMEOUT_USEC=1500000\nERRNO=2\nFDSTORE=1\nSTATUS=\n",
        );
        assert_eq!(
            got,
            vec![
                NotifyMessage::Ready,
                NotifyMessage::Reloading,
                NotifyMessage::Stopping,
                NotifyMessage::Status("warming up: 3/4 = ok".into()),
                NotifyMessage::MainPid(4242),
                NotifyMessage::Watchdog,
                NotifyMessage::WatchdogTrigger,
                NotifyMessage::ExtendTimeout(Duration::from_millis(1500)),
                NotifyMessage::Errno(2),
                NotifyMessage::Other("FDSTORE=1".into()),
                NotifyMessage::Status(String::new()),
            ]
        );
    }

    #[test]
    fn malformed_lines_are_skipped_and_the_rest_kept() {
        let got = parse(
            b"READY=0\nREADY\n=1\nMAINPID=0\nMAINPID=-3\nMAINPID=+3\nMAINPID=99999999999\nMAINPID= 3\n\
              EXTEND_TIMEOUT_USEC=1e6\nEXTEND_TIMEOUT_USEC=\nERRNO=-1\nWATCHDOG=2\nSTATUS=a\0b\n\
              STATUS=\xff\xfe\n\n\nREADY=1",
        );
        assert_eq!(got, vec![NotifyMessage::Ready]);
        assert!(parse(b"").is_empty());
        assert_eq!(parse(b"STATUS=x\r\n"), vec![NotifyMessage::Status("x\r".into())]);
    }

    /// Random bytes, and random lines built from real keys with random values: never a panic,
    /// and every message found is one the line could mean.
    #[test]
    fn random_datagrams_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            // xorshift64*: enough randomness for a smoke test without a dependency.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let keys: [&[u8]; 10] = [
            b"READY=",
            b"STATUS=",
            b"MAINPID=",
            b"WATCHDOG=",
            b"EXTEND_TIMEOUT_USEC=",
            b"ERRNO=",
            b"STOPPING=",
            b"RELOADING=",
            b"X=",
            b"=",
        ];
        for round in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut datagram = Vec::with_capacity(len + 32);
            while datagram.len() < len {
                if round % 2 == 0 {
                    datagram.push(next() as u8);
                } else {
                    datagram.extend_from_slice(keys[(next() % keys.len() as u64) as usize]);
                    let value_len = next() % 12;
                    for _ in 0..value_len {
                        // Mostly digits and letters, sometimes anything.
                        let r = next();
                        datagram.push(match r % 4 {
                            0 | 1 => b'0' + (r >> 8) as u8 % 10,
                            2 => b"1trigger-+ "[(r >> 8) as usize % 11],
                            _ => (r >> 8) as u8,
                        });
                    }
                    datagram.push(b'\n');
                }
            }
            for m in parse(&datagram) {
                match m {
                    NotifyMessage::MainPid(p) => assert!(p > 0),
                    NotifyMessage::Errno(e) => assert!(e >= 0),
                    NotifyMessage::Status(s) | NotifyMessage::Other(s) => assert!(!s.contains(['\n', '\0'])),
                    _ => {}
                }
            }
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
    }

    async fn recv(socket: &NotifySocket) -> Datagram {
        tokio::time::timeout(Duration::from_secs(10), socket.recv()).await.expect("no datagram in 10 s").expect("recv")
    }

    #[test]
    fn binds_over_a_stale_file_mode_0600_and_removes_it_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.notify");
        std::fs::write(&path, b"stale").expect("stale file");
        runtime().block_on(async {
            let socket = NotifySocket::bind(&path).expect("bind");
            assert_eq!(socket.path(), path);
            let meta = std::fs::symlink_metadata(&path).expect("socket file");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            drop(socket);
            assert!(!path.exists());

            // A socket bound at the same path later is not removed by its predecessor's drop.
            let old = NotifySocket::bind(&path).expect("bind");
            let new = NotifySocket::bind(&path).expect("bind again");
            drop(old);
            assert!(path.exists());
            drop(new);
            assert!(!path.exists());
        });
    }

    #[test]
    fn receives_from_this_process_and_skips_oversized() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n");
        runtime().block_on(async {
            let socket = NotifySocket::bind(&path).expect("bind");
            let client = StdDatagram::unbound().expect("client");
            // Beyond MAX_DATAGRAM, but within what every OS lets one send (FreeBSD's and
            // macOS's default maximum datagram is smaller than Linux's); skipped where refused.
            let big = [b'x'; MAX_DATAGRAM + 1];
            let _ = client.send_to(&big, &path);
            client.send_to(b"READY=1\nSTATUS=warming up", &path).expect("send");
            let got = recv(&socket).await;
            assert_eq!(got.messages, vec![NotifyMessage::Ready, NotifyMessage::Status("warming up".into())]);
            if svc_platform::DATAGRAM_SENDER_PID {
                assert_eq!(got.pid, Some(std::process::id() as i32));
            }
            // The platform's own sender speaks the protocol the sd-notify crate does.
            svc_platform::notify_to(path.as_os_str(), "WATCHDOG=1").expect("notify_to");
            assert_eq!(recv(&socket).await.messages, vec![NotifyMessage::Watchdog]);
        });
    }

    /// A forked child sends; the pid the kernel reports must be the child's.
    #[test]
    fn reports_a_child_process_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n");
        runtime().block_on(async {
            let socket = NotifySocket::bind(&path).expect("bind");
            let client = StdDatagram::unbound().expect("client");
            client.connect(&path).expect("connect");
            let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
            let msg = b"READY=1";
            // SAFETY: the child makes only async-signal-safe calls (send, _exit) on memory
            // that exists before the fork.
            let child = unsafe { libc::fork() };
            assert!(child >= 0, "fork: {}", io::Error::last_os_error());
            if child == 0 {
                unsafe {
                    let ok = libc::send(fd, msg.as_ptr().cast(), msg.len(), 0) == msg.len() as isize;
                    libc::_exit(if ok { 0 } else { 1 });
                }
            }
            let got = recv(&socket).await;
            let status = reap(child);
            assert_eq!(status, 0, "child failed to send");
            assert_eq!(got.messages, vec![NotifyMessage::Ready]);
            if svc_platform::DATAGRAM_SENDER_PID {
                assert_eq!(got.pid, Some(child));
            } else {
                assert_eq!(got.pid, None);
            }
        });
    }

    fn reap(pid: i32) -> i32 {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 }
    }

    /// Runs `command` (a shell command line) with `NOTIFY_SOCKET` set, and returns what the
    /// socket received before the command exited, with the pid of the shell, or None when the
    /// command could not run (its tool is missing).
    fn run_client(shell: &str) -> Option<(Vec<Datagram>, u32)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n");
        runtime().block_on(async {
            let socket = NotifySocket::bind(&path).expect("bind");
            let mut child = std::process::Command::new("sh")
                .args(["-c", shell])
                .env("NOTIFY_SOCKET", &path)
                .stdin(std::process::Stdio::null())
                .spawn()
                .expect("sh");
            let pid = child.id();
            let mut got = Vec::new();
            // The clients here block until their last datagram was received (systemd-notify
            // waits on a barrier), so the child is polled between datagrams.
            let status = loop {
                tokio::select! {
                    d = socket.recv() => got.push(d.expect("recv")),
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {
                        if let Some(status) = child.try_wait().expect("wait") { break status; }
                    }
                }
            };
            while let Ok(Ok(d)) = tokio::time::timeout(Duration::from_millis(50), socket.recv()).await {
                got.push(d);
            }
            match status.code() {
                Some(0) => Some((got, pid)),
                Some(77) => None,
                other => panic!("client `{shell}` failed: {other:?}"),
            }
        })
    }

    #[test]
    fn python_client() {
        let cmd = "command -v python3 >/dev/null || exit 77; exec python3 -c 'import socket,os; \
                   s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b\"READY=1\", os.environ[\"NOTIFY_SOCKET\"])'";
        let Some((got, pid)) = run_client(cmd) else {
            eprintln!("python3 not found: skipped");
            return;
        };
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].messages, vec![NotifyMessage::Ready]);
        if svc_platform::DATAGRAM_SENDER_PID {
            // `exec`: python runs as the shell's process.
            assert_eq!(got[0].pid, Some(pid as i32));
        }
    }

    /// libsystemd's own client, outside systemd. Version 252 sends `READY=1` claiming its
    /// parent's pid (the kernel allows that only to root; others fall back to their own pid),
    /// then `BARRIER=1` with a descriptor, and waits until that descriptor is closed, so it
    /// hangs if the receiver keeps descriptors.
    #[test]
    fn systemd_notify_client() {
        let cmd = "command -v systemd-notify >/dev/null || exit 77; systemd-notify --ready --status='up at last'";
        let Some((got, _)) = run_client(cmd) else {
            eprintln!("systemd-notify not found: skipped");
            return;
        };
        let all: Vec<NotifyMessage> = got.iter().flat_map(|d| d.messages.clone()).collect();
        assert!(all.contains(&NotifyMessage::Ready), "{got:?}");
        assert!(all.contains(&NotifyMessage::Status("up at last".into())), "{got:?}");
        if svc_platform::DATAGRAM_SENDER_PID {
            let ready = got.iter().find(|d| d.messages.contains(&NotifyMessage::Ready)).expect("ready");
            let sender = ready.pid.expect("pid");
            // The shell (its parent, claimed with CAP_SYS_ADMIN) or systemd-notify itself.
            assert_ne!(sender, std::process::id() as i32);
        }
    }

    #[test]
    fn newline_on_the_pipe_means_ready_and_eof_without_one_does_not() {
        runtime().block_on(async {
            let (r, mut w) = io::pipe().expect("pipe");
            let writer = std::thread::spawn(move || {
                use std::io::Write;
                w.write_all(b"almost").expect("write");
                std::thread::sleep(Duration::from_millis(50));
                w.write_all(b" there\n").expect("write");
            });
            assert!(wait_for_newline(r).await);
            writer.join().expect("writer");

            let (r, mut w) = io::pipe().expect("pipe");
            std::io::Write::write_all(&mut w, b"no newline").expect("write");
            drop(w);
            assert!(!wait_for_newline(r).await);
        });
    }
}
