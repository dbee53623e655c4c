//! The CLI's side of the socket: find the daemon, check it is ours, exchange JSON lines.
//!
//! The socket is found in this order: an explicit `--socket`/`SVC_SOCKET`; the one recorded in
//! `daemon.json` by the running daemon (which may have started in another environment, such
//! as cron or launchd, and picked a different runtime dir); the default for this environment.

use crate::daemon::read_daemon_file;
use crate::paths::Paths;
use crate::protocol::{self, ErrorReply, Request, Response};
use interprocess::local_socket::tokio::{RecvHalf, SendHalf, Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use std::os::fd::AsFd;
use std::path::PathBuf;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

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
}

/// A connection to the daemon.
pub struct Client {
    reader: BufReader<RecvHalf>,
    writer: SendHalf,
    line: String,
}

impl Client {
    /// Connects to this user's daemon.
    pub async fn connect(paths: &Paths) -> Result<Client, ClientError> {
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
            return Ok(Client { reader: BufReader::new(recv), writer: send, line: String::new() });
        }
        Err(ClientError::NoDaemon { socket: paths.socket.clone() })
    }

    /// Sends one request.
    pub async fn send(&mut self, req: &Request) -> Result<(), ClientError> {
        self.writer.write_all(protocol::encode_request(req).as_bytes()).await?;
        Ok(())
    }

    /// Reads the next reply; `None` when the daemon closed the connection. Error replies
    /// come back as [`ClientError::Daemon`].
    pub async fn recv(&mut self) -> Result<Option<Response>, ClientError> {
        self.line.clear();
        if self.reader.read_line(&mut self.line).await? == 0 {
            return Ok(None);
        }
        match serde_json::from_str::<Response>(&self.line) {
            Ok(Response::Error(e)) => Err(ClientError::Daemon(e)),
            Ok(resp) => Ok(Some(resp)),
            Err(e) => Err(ClientError::Protocol(format!("{e}: {}", self.line.trim_end()))),
        }
    }

    /// Sends a request and reads its single reply.
    pub async fn request(&mut self, req: &Request) -> Result<Response, ClientError> {
        self.send(req).await?;
        self.recv().await?.ok_or_else(|| ClientError::Protocol("the daemon closed the connection".into()))
    }
}

/// Another user's daemon is acceptable only when we were pointed at its socket on purpose
/// (`--socket`, for a daemon that shares access with a group) and the socket file belongs to
/// the uid answering on it; a default location never leads to someone else's daemon.
fn shared_with_us(paths: &Paths, socket: &std::path::Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    paths.socket_explicit && std::fs::symlink_metadata(socket).is_ok_and(|m| m.uid() == uid)
}
