//! The control socket: accept loop, one task per connection, peer check, JSON lines.
//!
//! A connection may send many requests, one per line; each gets its reply before the next is
//! read. Bad lines get an error reply and the connection stays open, except for an over-long
//! line, after which the stream cannot be resynchronised cheaply, so it is answered and
//! closed. A connection that sends nothing for [`IDLE_TIMEOUT`] is closed, so stuck or
//! malicious clients cannot pile up.

use super::logs::LogFile;
use super::supervisor::Msg;
use crate::config::Access;
use crate::protocol::{self, ErrorCode, ErrorReply, LogStream, MAX_REQUEST_LINE, Request, Response};
use interprocess::local_socket::tokio::{Listener, Stream, prelude::*};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// How long a connection may stay silent while the daemon waits for a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts connections until aborted.
///
/// Each connection holds a clone of `inflight` while a request is being answered, so the
/// daemon can wait, at shutdown, until the last replies (the shutdown reply among them) have
/// been written before the process exits.
///
/// On `rebind` (SIGUSR1), a socket file that has disappeared (a /tmp cleaner, the runtime dir
/// removed at logout) is bound anew with `bind`, so clients can find the daemon again.
pub async fn run(
    mut listener: Listener,
    tx: mpsc::Sender<Msg>,
    inflight: mpsc::Sender<()>,
    access: watch::Receiver<Option<Access>>,
    rebind: Arc<tokio::sync::Notify>,
    bind: impl Fn() -> Option<Listener>,
) {
    let me = nix::unistd::Uid::current().as_raw();
    loop {
        let accepted = tokio::select! {
            c = listener.accept() => c,
            () = rebind.notified() => {
                if let Some(fresh) = bind() {
                    // The old listener would unlink the path on drop: the path is the new
                    // socket's now.
                    listener.do_not_reclaim_name_on_drop();
                    listener = fresh;
                }
                continue;
            }
        };
        let conn = match accepted {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: keep serving the connections we have.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let tx = tx.clone();
        // Weak: only a connection in the middle of a request should delay the exit.
        let inflight = inflight.downgrade();
        let access = access.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(conn, tx, me, inflight, access).await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}

fn peer(conn: &Stream) -> std::io::Result<svc_platform::PeerCred> {
    let Stream::UdSocket(s) = conn;
    svc_platform::peer_credentials(s.inner().as_fd())
}

/// What a connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The daemon's own user: everything.
    Owner,
    /// A member of the access group.
    Member {
        /// Only `status`, `logs`, `info`.
        read_only: bool,
    },
}

/// The role of a peer, or `None` if it may not talk to this daemon at all.
fn role(peer: svc_platform::PeerCred, me: u32, access: Option<&Access>) -> Option<Role> {
    if peer.uid == me {
        return Some(Role::Owner);
    }
    let access = access?;
    let member = peer.gid == access.gid
        || (|| {
            let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(peer.uid)).ok()??;
            let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(access.gid)).ok()??;
            Some(user.gid.as_raw() == access.gid || group.mem.contains(&user.name))
        })()
        .unwrap_or(false);
    member.then_some(Role::Member { read_only: access.read_only })
}

fn allowed(role: Role, req: &Request) -> bool {
    match role {
        Role::Owner | Role::Member { read_only: false } => true,
        Role::Member { read_only: true } => {
            matches!(req, Request::Status { .. } | Request::Logs { .. } | Request::Info {})
        }
    }
}

async fn serve(
    conn: Stream,
    tx: mpsc::Sender<Msg>,
    me: u32,
    inflight: mpsc::WeakSender<()>,
    mut access_rx: watch::Receiver<Option<Access>>,
) -> std::io::Result<()> {
    // The directory's mode is the first fence; this is the one that holds even if someone
    // loosens it.
    let cred = peer(&conn)?;
    let uid = cred.uid;
    let access = access_rx.borrow_and_update().clone();
    let granted = role(cred, me, access.as_ref());
    if granted.is_some_and(|r| r != Role::Owner) {
        // A reload may take a member's access away or narrow it: a connection that no longer
        // has the role it was accepted with is closed at once (a `logs -f` included).
        let revoked = async move {
            while access_rx.changed().await.is_ok() {
                let now = access_rx.borrow_and_update().clone();
                if role(cred, me, now.as_ref()) != granted {
                    return;
                }
            }
            // The daemon is going away; the connection ends with it.
            std::future::pending::<()>().await;
        };
        return tokio::select! {
            r = requests(conn, tx, me, uid, inflight, granted, access.as_ref()) => r,
            () = revoked => {
                tracing::info!("closed a connection of uid {uid}: its access changed");
                Ok(())
            }
        };
    }
    requests(conn, tx, me, uid, inflight, granted, access.as_ref()).await
}

/// Answers the requests of one connection, whose peer has `role`.
async fn requests(
    conn: Stream,
    tx: mpsc::Sender<Msg>,
    me: u32,
    uid: u32,
    inflight: mpsc::WeakSender<()>,
    role: Option<Role>,
    access: Option<&Access>,
) -> std::io::Result<()> {
    let (recv, mut send) = conn.split();
    let Some(role) = role else {
        tracing::warn!("refused a connection from uid {uid}");
        let reply = Response::Error(ErrorReply {
            code: ErrorCode::PermissionDenied,
            message: format!("this svc daemon belongs to uid {me}; uid {uid} may not use it"),
            field: None,
        });
        send.write_all(protocol::encode_response(&reply).as_bytes()).await?;
        return Ok(());
    };
    let mut reader = BufReader::new(recv);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_REQUEST_LINE as u64 + 1);
        let n = match tokio::time::timeout(IDLE_TIMEOUT, limited.read_until(b'\n', &mut line)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && line.len() > MAX_REQUEST_LINE {
            let reply = Response::Error(ErrorReply {
                code: ErrorCode::TooLong,
                message: format!("request line longer than {MAX_REQUEST_LINE} bytes"),
                field: None,
            });
            send.write_all(protocol::encode_response(&reply).as_bytes()).await?;
            return Ok(());
        }
        let req = match protocol::decode_request(line.trim_ascii()) {
            Ok(req) => req,
            Err(e) => {
                send.write_all(protocol::encode_response(&Response::Error(e)).as_bytes()).await?;
                continue;
            }
        };
        if !allowed(role, &req) {
            let group = access.map_or("", |a| a.group.as_str());
            let reply = Response::Error(ErrorReply {
                code: ErrorCode::PermissionDenied,
                message: format!("members of group {group} have read-only access: status and logs only"),
                field: Some("type".into()),
            });
            send.write_all(protocol::encode_response(&reply).as_bytes()).await?;
            continue;
        }
        match req {
            Request::Logs { name, stream, lines, follow } => {
                let log = match log_file(&tx, name, stream).await {
                    Ok(log) => log,
                    Err(e) => {
                        send.write_all(protocol::encode_response(&Response::Error(e)).as_bytes()).await?;
                        continue;
                    }
                };
                stream_log(&log, lines, follow, &mut send, &mut reader).await?;
                if follow {
                    return Ok(());
                }
            }
            req => {
                let _busy = inflight.upgrade();
                let (reply_tx, reply_rx) = oneshot::channel();
                let resp = if tx.send(Msg::Request { req, reply: reply_tx }).await.is_err() {
                    shutting_down()
                } else {
                    reply_rx.await.unwrap_or_else(|_| shutting_down())
                };
                send.write_all(protocol::encode_response(&resp).as_bytes()).await?;
            }
        }
    }
}

fn shutting_down() -> Response {
    Response::Error(ErrorReply {
        code: ErrorCode::ShuttingDown,
        message: "the daemon is shutting down".into(),
        field: None,
    })
}

async fn log_file(tx: &mpsc::Sender<Msg>, name: String, stream: LogStream) -> Result<Arc<LogFile>, ErrorReply> {
    let (reply, rx) = oneshot::channel();
    if tx.send(Msg::LogFile { name, stream, reply }).await.is_err() {
        return Err(ErrorReply {
            code: ErrorCode::ShuttingDown,
            message: "the daemon is shutting down".into(),
            field: None,
        });
    }
    rx.await.unwrap_or_else(|_| {
        Err(ErrorReply { code: ErrorCode::ShuttingDown, message: "the daemon is shutting down".into(), field: None })
    })
}

/// Sends the tail, then (when following) every new chunk until the client goes away. A
/// non-follow reply ends with an empty `log` line so the client knows the tail is complete.
async fn stream_log<W, R>(
    log: &LogFile,
    lines: usize,
    follow: bool,
    send: &mut W,
    reader: &mut R,
) -> std::io::Result<()>
where
    W: AsyncWriteExt + Unpin,
    R: AsyncReadExt + Unpin,
{
    let (tail, rx) = log.tail(lines, follow);
    let chunk =
        |data: &[u8]| protocol::encode_response(&Response::Log { data: String::from_utf8_lossy(data).into_owned() });
    // A character split between two pipe reads must not become two replacement characters:
    // an incomplete UTF-8 sequence at the end of a chunk waits for the next one.
    let mut carry: Vec<u8> = Vec::new();
    let mut whole = move |data: &[u8]| -> Vec<u8> {
        carry.extend_from_slice(data);
        let keep = match std::str::from_utf8(&carry) {
            Err(e) if e.error_len().is_none() => carry.len() - e.valid_up_to(),
            _ => 0,
        };
        let rest = carry.split_off(carry.len() - keep);
        std::mem::replace(&mut carry, rest)
    };
    // When following, the tail's last bytes may be the start of a character that is still
    // being written.
    let tail = if rx.is_some() { whole(&tail) } else { tail };
    if !tail.is_empty() {
        send.write_all(chunk(&tail).as_bytes()).await?;
    }
    let Some(mut rx) = rx else {
        return send.write_all(chunk(b"").as_bytes()).await;
    };
    let mut scratch = [0u8; 64];
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok(data) => {
                    let data = whole(&data);
                    if !data.is_empty() {
                        send.write_all(chunk(&data).as_bytes()).await?;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let note = format!("\n[svc: this follower fell behind; {n} chunks skipped]\n");
                    send.write_all(chunk(note.as_bytes()).as_bytes()).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            // The client hanging up is the normal end of a follow.
            r = reader.read(&mut scratch) => if r.map_or(true, |n| n == 0) { return Ok(()) },
        }
    }
}
