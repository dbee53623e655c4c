//! The CLI's side of the protocol: JSON lines over a byte stream to the daemon.
//!
//! A [`Client`] talks to any readable and writable byte stream (pueue's `GenericStream`
//! shape). Two connectors make one:
//!
//! - [`Client::connect`]: the daemon's socket on this machine, found in this order: an explicit
//!   `--socket`/`SVC_SOCKET`; the one recorded in `daemon.json` by the running daemon (which
//!   may have started in another environment, such as cron or launchd, and picked a different
//!   runtime dir); the default for this environment. The peer's uid is checked before a byte
//!   is sent. `svc dial-stdio` uses the same connector ([`connect_local`]), so these checks
//!   happen on the machine where the daemon is, whoever asks.
//! - [`Client::spawn`]: the stdin and stdout of a child process that relays to a daemon
//!   elsewhere (`ssh HOST svc dial-stdio`). When that stream ends early, the child's exit status
//!   and stderr say why, through the `explain` function the caller gives.

use crate::daemon::read_daemon_file;
use crate::paths::Paths;
use crate::protocol::{self, ErrorCode, ErrorReply, Request, Response};
use interprocess::local_socket::tokio::{Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// The reading half of a connection.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a connection.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Why talking to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing is listening.
    #[error("svc daemon is not running (no answer on {socket}); start it with 'svc up'")]
    NoDaemon {
        /// Where we looked.
        socket: PathBuf,
    },
    /// Something else answers on the socket: another user's process.
    #[error("the socket {socket} belongs to uid {uid}, not to you; refusing to talk to it")]
    NotOurs {
        /// The socket.
        socket: PathBuf,
        /// The uid at the other end.
        uid: u32,
    },
    /// The daemon replied with an error.
    #[error("{}", .0.message)]
    Daemon(ErrorReply),
    /// The reply made no sense.
    #[error("unexpected reply from the daemon: {0}")]
    Protocol(String),
    /// I/O failure mid-conversation.
    #[error("lost the connection to the daemon: {0}")]
    Io(#[from] std::io::Error),
    /// The way to a daemon on another machine failed (ssh, the remote svc, its daemon).
    #[error("{host}: {detail}")]
    Remote {
        /// The host, as the user named it.
        host: String,
        /// What kind of failure, for the exit code and `--json`.
        failure: RemoteFailure,
        /// What happened and what to do, for people.
        detail: String,
    },
}

/// The ways reaching a daemon on another machine fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteFailure {
    /// The ssh program could not be run.
    SshMissing,
    /// ssh could not connect (name, route, refused, timeout).
    Unreachable,
    /// ssh connected but could not log in (keys, host key).
    AuthFailed,
    /// Logged in, but there is no svc to run there.
    NoSvc,
    /// The remote svc is too old to relay (no `dial-stdio`).
    TooOld,
    /// The remote svc found no daemon running.
    NoDaemon,
    /// The connection broke, or ssh failed in another way.
    Lost,
}

impl RemoteFailure {
    /// The stable name used in `--json` errors.
    pub fn code(self) -> &'static str {
        match self {
            RemoteFailure::SshMissing => "ssh_missing",
            RemoteFailure::Unreachable => "unreachable",
            RemoteFailure::AuthFailed => "auth_failed",
            RemoteFailure::NoSvc => "no_svc",
            RemoteFailure::TooOld => "too_old",
            RemoteFailure::NoDaemon => "no_daemon",
            RemoteFailure::Lost => "lost",
        }
    }
}

/// Turns how a relay process ended (its exit status, `None` if it could not be waited for,
/// and the tail of its stderr) into the error to report; `None` when it ended normally (the
/// daemon closed the connection).
pub type Explain = Box<dyn Fn(Option<ExitStatus>, &str) -> Option<ClientError> + Send>;

/// A connection to the daemon.
pub struct Client {
    reader: BufReader<Reader>,
    writer: Option<Writer>,
    line: String,
    relay: Option<Relay>,
}

impl Client {
    /// A client over an established byte stream.
    pub fn from_stream(reader: Reader, writer: Writer) -> Client {
        Client { reader: BufReader::new(reader), writer: Some(writer), line: String::new(), relay: None }
    }

    /// Connects to this user's daemon on this machine.
    pub async fn connect(paths: &Paths) -> Result<Client, ClientError> {
        let (reader, writer) = connect_local(paths).await?;
        Ok(Client::from_stream(reader, writer))
    }

    /// Starts `cmd` with its stdin and stdout as the stream (its stderr is kept, for
    /// `explain`). Fails only if the program cannot be started; a relay that cannot reach its
    /// daemon shows when the first reply is read.
    pub fn spawn(mut cmd: Command, explain: Explain) -> std::io::Result<Client> {
        // Sockets rather than pipes, so that writing to a relay that has died fails with EPIPE
        // (send with MSG_NOSIGNAL) instead of killing the CLI with SIGPIPE, which it keeps at
        // the default so that `svc status | head` ends quietly.
        let (to_child, child_in) = std::os::unix::net::UnixStream::pair()?;
        let (from_child, child_out) = std::os::unix::net::UnixStream::pair()?;
        cmd.stdin(Stdio::from(OwnedFd::from(child_in)))
            .stdout(Stdio::from(OwnedFd::from(child_out)))
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stderr = Arc::new(Mutex::new(Tail::default()));
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        if let Some(mut pipe) = child.stderr.take() {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(&buf[..n]);
                }
                let _ = done_tx.send(());
            });
        }
        to_child.set_nonblocking(true)?;
        from_child.set_nonblocking(true)?;
        let writer = NoSigPipe(tokio::net::UnixStream::from_std(to_child)?);
        let reader = tokio::net::UnixStream::from_std(from_child)?;
        let mut client = Client::from_stream(Box::new(reader), Box::new(writer));
        client.relay = Some(Relay { child: Some(child), stderr, stderr_done: Some(done_rx), explain });
        Ok(client)
    }

    /// Sends one request.
    pub async fn send(&mut self, req: &Request) -> Result<(), ClientError> {
        let line = protocol::encode_request(req);
        let written = match self.writer.as_mut() {
            Some(w) => w.write_all(line.as_bytes()).await,
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        match written {
            Ok(()) => Ok(()),
            Err(e) => Err(self.ended().await.unwrap_or(ClientError::Io(e))),
        }
    }

    /// Reads the next reply; `None` when the daemon closed the connection. Error replies
    /// come back as [`ClientError::Daemon`].
    pub async fn recv(&mut self) -> Result<Option<Response>, ClientError> {
        self.line.clear();
        match self.reader.read_line(&mut self.line).await {
            Ok(0) => return self.ended().await.map_or(Ok(None), Err),
            Ok(_) => {}
            Err(e) => return Err(self.ended().await.unwrap_or(ClientError::Io(e))),
        }
        match serde_json::from_str::<Response>(&self.line) {
            Ok(Response::Error(e)) => Err(ClientError::Daemon(older_daemon(e))),
            Ok(resp) => Ok(Some(resp)),
            Err(e) => Err(ClientError::Protocol(format!("{e}: {}", self.line.trim_end()))),
        }
    }

    /// Sends a request and reads its single reply.
    pub async fn request(&mut self, req: &Request) -> Result<Response, ClientError> {
        self.send(req).await?;
        self.recv().await?.ok_or_else(|| ClientError::Protocol("the daemon closed the connection".into()))
    }

    /// The stream ended: why, if a relay can say (`None`: it ended normally, or there is no
    /// relay to ask).
    async fn ended(&mut self) -> Option<ClientError> {
        let relay = self.relay.as_mut()?;
        let mut child = relay.child.take()?;
        let stderr_done = relay.stderr_done.take();
        // Our end closed first, so a relay still reading its stdin sees the end too.
        self.writer = None;
        let status = tokio::task::spawn_blocking(move || {
            let status = child.wait().ok();
            // The relay has exited, so what it wrote is in the pipe; the bound only matters if
            // it left a process behind holding the pipe open (ssh -f, a wrapper script).
            if let Some(done) = stderr_done {
                let _ = done.recv_timeout(Duration::from_secs(2));
            }
            status
        })
        .await
        .ok()
        .flatten();
        let stderr = relay.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner).text();
        (relay.explain)(status, &stderr)
    }
}

/// A daemon from before a request type existed calls it an unknown variant: say what to do.
fn older_daemon(mut e: ErrorReply) -> ErrorReply {
    if e.code == ErrorCode::BadRequest && e.field.as_deref() == Some("type") && e.message.contains("unknown variant") {
        e.message = format!(
            "the daemon runs an older svc that does not know this request ({}); upgrade svc there to {} and restart its daemon (svc shutdown && svc up)",
            e.message,
            env!("CARGO_PKG_VERSION")
        );
    }
    e
}

/// The relay process of a [`Client::spawn`] connection.
struct Relay {
    child: Option<Child>,
    stderr: Arc<Mutex<Tail>>,
    stderr_done: Option<std::sync::mpsc::Receiver<()>>,
    explain: Explain,
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Every reply the command wanted has been read: a relay still running (ssh waiting
        // for its remote end) has nothing left to carry, and the command must not wait for it.
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = child.wait();
        }
    }
}

/// The last bytes a relay wrote to its stderr: enough to say why it failed, bounded whatever
/// it writes over a long `logs -f`.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    const MAX: usize = 16 * 1024;

    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > Self::MAX {
            let cut = self.0.len() - Self::MAX;
            self.0.drain(..cut);
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

/// A socket written with `MSG_NOSIGNAL`: a peer that has gone gives EPIPE, not SIGPIPE.
struct NoSigPipe(tokio::net::UnixStream);

impl AsyncWrite for NoSigPipe {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let stream = &self.get_mut().0;
        loop {
            ready!(stream.poll_write_ready(cx))?;
            let sent = stream.try_io(tokio::io::Interest::WRITABLE, || {
                // SAFETY: buf is valid for buf.len() bytes; the fd is open while `stream` lives.
                let n = unsafe { libc::send(stream.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
                if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(n as usize) }
            });
            match sent {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// The socket's writing half whose shutdown really shuts the socket for writing, so the daemon
/// sees the end of the requests (interprocess makes it a no-op), as `svc dial-stdio` needs when
/// its client is done.
struct HalfClosing(interprocess::local_socket::tokio::SendHalf);

impl AsyncWrite for HalfClosing {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let interprocess::local_socket::tokio::SendHalf::UdSocket(half) = &self.0;
        // SAFETY: shutdown on a descriptor that stays open while `half` lives.
        let shut = unsafe { libc::shutdown(half.as_fd().as_raw_fd(), libc::SHUT_WR) };
        Poll::Ready(if shut < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) })
    }
}

/// Connects to this user's daemon on this machine and checks who answers: the halves of the
/// stream, or why there is none.
pub async fn connect_local(paths: &Paths) -> Result<(Reader, Writer), ClientError> {
    let mut candidates = Vec::new();
    if !paths.socket_explicit
        && let Some(d) = read_daemon_file(paths)
    {
        candidates.push(d.socket);
    }
    candidates.push(paths.socket.clone());
    candidates.dedup();
    for socket in &candidates {
        let Ok(name) = socket.as_path().to_fs_name::<GenericFilePath>() else { continue };
        let Ok(stream) = Stream::connect(name).await else { continue };
        // A socket in a directory someone else controls could be a fake daemon.
        let Stream::UdSocket(s) = &stream;
        let uid = svc_platform::peer_credentials(s.inner().as_fd())?.uid;
        if uid != nix::unistd::Uid::current().as_raw() && !shared_with_us(paths, socket, uid) {
            return Err(ClientError::NotOurs { socket: socket.clone(), uid });
        }
        let (recv, send) = stream.split();
        return Ok((Box::new(recv), Box::new(HalfClosing(send))));
    }
    Err(ClientError::NoDaemon { socket: paths.socket.clone() })
}

/// Another user's daemon is acceptable only when we were pointed at its socket on purpose
/// (`--socket`, for a daemon that shares access with a group) and the socket file belongs to
/// the uid answering on it; a default location never leads to someone else's daemon.
fn shared_with_us(paths: &Paths, socket: &std::path::Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    paths.socket_explicit && std::fs::symlink_metadata(socket).is_ok_and(|m| m.uid() == uid)
}
