//! The control socket: accept loop, one task per connection, peer check, JSON lines.
//!
//! A connection may send many requests, one per line; each gets its reply before the next is
//! read. Bad lines get an error reply and the connection stays open, except for an over-long
//! line, after which the stream cannot be resynchronised cheaply, so it is answered and
//! closed. A connection that sends nothing for [`IDLE_TIMEOUT`] is closed, so stuck or
//! malicious clients cannot pile up.
//!
//! Some requests are answered by many lines until the client goes away (`logs` with
//! `follow`, `events`): see [`until_hangup`]. Such a connection carries nothing else after.
//!
//! A refused connection (another user's) is logged the first time per uid; later ones are
//! counted and summed up at most once per [`REFUSAL_WINDOW`] per uid, so a client connecting in
//! a loop cannot fill the disk with the daemon's log.

use super::logs::{Chunk, Follower, ProgramLogs};
use super::supervisor::{Msg, Watch};
use crate::config::Access;
use crate::protocol::{self, ErrorCode, ErrorReply, LogSelect, LogStream, MAX_REQUEST_LINE, Request, Response};
use interprocess::local_socket::tokio::{Listener, Stream, prelude::*};
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// How long a connection may stay silent while the daemon waits for a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// At most one line per uid per window about refused connections (after the first, at once).
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// Overrides [`REFUSAL_WINDOW`], in milliseconds, so tests can see a summary without waiting a
/// minute.
const REFUSAL_WINDOW_ENV: &str = "SVC_REFUSAL_WINDOW_MS";

/// Uids counted one by one; refusals from further uids share one count, so the table stays
/// small whoever connects.
const MAX_REFUSED_UIDS: usize = 64;

/// Accepts connections until aborted.
///
/// Each connection holds a clone of `inflight` while a request is being answered, so the
/// daemon can wait, at shutdown, until the last replies (the shutdown reply among them) have
/// been written before the process exits.
///
/// On `rebind` (SIGUSR1), a socket file that has disappeared (a /tmp cleaner, the runtime dir
/// removed at logout) is bound anew with `bind`, so clients can find the daemon again.
///
/// `files` are the daemon's paths, for the requests about its files (`check`, `config_file`,
/// `put_config`, `paths`), which the connection serves without the supervisor: a client on
/// another machine (through `svc dial-stdio`) cannot read them itself.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    mut listener: Listener,
    files: Arc<protocol::DaemonPaths>,
    tx: mpsc::Sender<Msg>,
    inflight: mpsc::Sender<()>,
    access: watch::Receiver<Option<Access>>,
    rebind: Arc<tokio::sync::Notify>,
    bind: impl Fn() -> Option<Listener>,
) {
    let me = nix::unistd::Uid::current().as_raw();
    let mut accept_failures: u64 = 0;
    let window = std::env::var(REFUSAL_WINDOW_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(REFUSAL_WINDOW, Duration::from_millis);
    let refusals = Arc::new(Mutex::new(Refusals::new(window)));
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
            Ok(c) => {
                if accept_failures > 0 {
                    tracing::info!("accepting connections again after {accept_failures} failed attempts");
                    accept_failures = 0;
                }
                c
            }
            Err(e) => {
                // EMFILE and friends: keep serving the connections we have, and say so once,
                // not ten times a second for as long as it lasts.
                if accept_failures == 0 {
                    tracing::warn!("cannot accept connections: {e}; retrying every 100 ms");
                }
                accept_failures += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let tx = tx.clone();
        // Weak: only a connection in the middle of a request should delay the exit.
        let inflight = inflight.downgrade();
        let access = access.clone();
        let refusals = refusals.clone();
        let files = files.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(conn, tx, me, inflight, access, refusals, files).await {
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
            // Not the daemon's own log: like the file `svc up` writes it to, it is the owner's.
            matches!(req, Request::Status { .. } | Request::Logs { .. } | Request::Info {} | Request::Events { .. })
        }
    }
}

async fn serve(
    conn: Stream,
    tx: mpsc::Sender<Msg>,
    me: u32,
    inflight: mpsc::WeakSender<()>,
    mut access_rx: watch::Receiver<Option<Access>>,
    refusals: Arc<Mutex<Refusals>>,
    files: Arc<protocol::DaemonPaths>,
) -> std::io::Result<()> {
    // The directory's mode is the first fence; this is the one that holds even if someone
    // loosens it.
    let cred = peer(&conn)?;
    let uid = cred.uid;
    let access = access_rx.borrow_and_update().clone();
    let granted = role(cred, me, access.as_ref());
    if granted.is_none() {
        note_refusal(&refusals, uid);
    }
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
            r = requests(conn, tx, me, uid, inflight, granted, access.as_ref(), &files) => r,
            () = revoked => {
                tracing::info!("closed a connection of uid {uid}: its access changed");
                Ok(())
            }
        };
    }
    requests(conn, tx, me, uid, inflight, granted, access.as_ref(), &files).await
}

/// Answers the requests of one connection, whose peer has `role`.
#[allow(clippy::too_many_arguments)]
async fn requests(
    conn: Stream,
    tx: mpsc::Sender<Msg>,
    me: u32,
    uid: u32,
    inflight: mpsc::WeakSender<()>,
    role: Option<Role>,
    access: Option<&Access>,
    files: &protocol::DaemonPaths,
) -> std::io::Result<()> {
    let (recv, mut send) = conn.split();
    let Some(role) = role else {
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
                message: format!(
                    "members of group {group} have read-only access: status, events, program logs and info only"
                ),
                field: Some("type".into()),
            });
            send.write_all(protocol::encode_response(&reply).as_bytes()).await?;
            continue;
        }
        match req {
            Request::Logs { name, names, stream, lines, follow, since } => {
                let feeds = match program_feeds(&tx, name, names, stream, lines, follow, since).await {
                    Ok(feeds) => feeds,
                    Err(e) => {
                        send.write_all(protocol::encode_response(&Response::Error(e)).as_bytes()).await?;
                        continue;
                    }
                };
                stream_log(feeds, follow, &mut send, &mut reader).await?;
                if follow {
                    return Ok(());
                }
            }
            Request::DaemonLog { lines, follow, since } => {
                let feed = match parse_since(since.as_deref()).and_then(|since| {
                    super::own_log::tail(lines, follow).map(|tail| (tail, since)).map_err(|message| ErrorReply {
                        code: ErrorCode::Unavailable,
                        message,
                        field: None,
                    })
                }) {
                    Ok(((text, rx), since)) => Feed {
                        history: vec![(None, cut_since(text, since))],
                        followers: rx.map(|rx| (None, rx)).into_iter().collect(),
                        notices: Vec::new(),
                    },
                    Err(e) => {
                        send.write_all(protocol::encode_response(&Response::Error(e)).as_bytes()).await?;
                        continue;
                    }
                };
                stream_log(vec![(None, feed)], follow, &mut send, &mut reader).await?;
                if follow {
                    return Ok(());
                }
            }
            Request::Events { targets } => {
                let watch = match watch(&tx, targets.clone()).await {
                    Ok(w) => w,
                    Err(e) => {
                        send.write_all(protocol::encode_response(&Response::Error(e)).as_bytes()).await?;
                        continue;
                    }
                };
                return until_hangup(&mut reader, stream_events(&tx, targets, watch, &mut send)).await;
            }
            req @ (Request::Check { .. } | Request::ConfigFile {} | Request::PutConfig { .. } | Request::Paths {}) => {
                let resp = config_file_request(req, files).await;
                send.write_all(protocol::encode_response(&resp).as_bytes()).await?;
            }
            req => {
                let _busy = inflight.upgrade();
                let resources = matches!(req, Request::Status { resources: true, .. });
                let (reply_tx, reply_rx) = oneshot::channel();
                let mut resp = if tx.send(Msg::Request { req, reply: reply_tx }).await.is_err() {
                    shutting_down()
                } else {
                    reply_rx.await.unwrap_or_else(|_| shutting_down())
                };
                if resources && let Response::Status { programs } = &mut resp {
                    fill_resources(programs).await;
                }
                if let Response::Info(info) = &mut resp {
                    info.role = Some(match role {
                        Role::Owner => protocol::Role::Owner,
                        Role::Member { read_only: false } => protocol::Role::Control,
                        Role::Member { read_only: true } => protocol::Role::ReadOnly,
                    });
                }
                send.write_all(protocol::encode_response(&resp).as_bytes()).await?;
            }
        }
    }
}

/// Answers a request about the daemon's files, reading and writing them on a blocking thread:
/// a large config takes a while to parse, and the supervisor must not wait for a disk.
async fn config_file_request(req: Request, files: &protocol::DaemonPaths) -> Response {
    let config = std::path::PathBuf::from(&files.config);
    let paths = files.clone();
    let work = tokio::task::spawn_blocking(move || match req {
        Request::Check { text, color } => {
            let result = match &text {
                Some(text) => crate::config::parse_str(text, &config, &|k| std::env::var(k).ok()),
                None => crate::config::load(&config),
            };
            Response::Check(crate::config::check::report(&config, &result, color))
        }
        Request::ConfigFile {} => match std::fs::read_to_string(&config) {
            Ok(text) => Response::ConfigFile { path: paths.config, text: Some(text) },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Response::ConfigFile { path: paths.config, text: None }
            }
            Err(e) => internal(format!("cannot read {}: {e}", config.display())),
        },
        Request::PutConfig { text } => {
            let result = crate::config::parse_str(&text, &config, &|k| std::env::var(k).ok());
            let report = crate::config::check::report(&config, &result, false);
            if !report.ok {
                return Response::Check(report);
            }
            match replace_file(&config, &text) {
                Ok(()) => {
                    tracing::info!("config {} replaced by a client (put_config)", config.display());
                    Response::Check(report)
                }
                Err(e) => internal(format!("cannot write {}: {e}", config.display())),
            }
        }
        _ => Response::Paths(paths),
    });
    work.await.unwrap_or_else(|e| internal(format!("the request failed: {e}")))
}

fn internal(message: String) -> Response {
    Response::Error(ErrorReply { code: ErrorCode::Internal, message, field: None })
}

/// Writes `text` beside `path` and renames it over `path`, so a reader (a reload, a crash
/// half-way) sees the old file or the new one, never half of one; the old file's mode is kept.
fn replace_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().unwrap_or(std::path::Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map_or_else(|| "svc.kdl".into(), |n| n.to_string_lossy().into_owned());
    // No `.kdl` extension, so an `include "*.kdl"` beside it never reads the half-written copy.
    let tmp = dir.join(format!(".{name}.put-{}", std::process::id()));
    let mode = std::fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Fills CPU time and memory into a `status` reply, here rather than in the supervisor: the scan
/// of the process table takes tens of milliseconds at 1000 programs, and on a blocking thread it
/// holds up neither the supervisor's loop nor other connections. A figure the scan cannot give
/// stays null.
async fn fill_resources(programs: &mut [protocol::ProgramStatus]) {
    // A program's pid is its process group's id: each runs in a group of its own.
    let pgids: Vec<i32> = programs.iter().map(|p| p.pid.and_then(|pid| i32::try_from(pid).ok()).unwrap_or(0)).collect();
    if pgids.iter().all(|&g| g <= 0) {
        return;
    }
    let usage = match tokio::task::spawn_blocking(move || svc_platform::group_usage(&pgids)).await {
        Ok(Ok(usage)) => usage,
        Ok(Err(e)) => {
            tracing::debug!("cannot read CPU and memory of programs: {e}");
            return;
        }
        Err(e) => {
            tracing::warn!("reading CPU and memory of programs failed: {e}");
            return;
        }
    };
    for (p, u) in programs.iter_mut().zip(usage) {
        p.cpu_seconds = u.cpu_seconds;
        p.memory_bytes = u.memory_bytes;
    }
}

/// Logs a refused connection of `uid`, or counts it for the summary of its window; arms the
/// one-shot timer that writes summaries when a count has started and none is armed. Without
/// refusals there is no timer: an idle daemon makes no wake-ups.
fn note_refusal(refusals: &Arc<Mutex<Refusals>>, uid: u32) {
    // Never held across an await; a panic while it was held leaves only counts behind.
    fn lock(r: &Mutex<Refusals>) -> std::sync::MutexGuard<'_, Refusals> {
        r.lock().unwrap_or_else(PoisonError::into_inner)
    }
    let (line, arm) = lock(refusals).refused(uid, Instant::now());
    if let Some(line) = line {
        tracing::warn!("{line}");
    }
    let Some(mut deadline) = arm else { return };
    let refusals = refusals.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep_until(deadline.into()).await;
            let (lines, next) = lock(&refusals).flush(Instant::now());
            for line in lines {
                tracing::warn!("{line}");
            }
            match next {
                Some(d) => deadline = d,
                None => return,
            }
        }
    });
}

/// Refusals per uid: when each one's window began and how many it has not logged yet.
#[derive(Debug)]
struct Refusals {
    window: Duration,
    /// `None`: every uid past the first [`MAX_REFUSED_UIDS`].
    tallies: HashMap<Option<u32>, Tally>,
    /// A flush is scheduled; it schedules the next one itself while counts remain.
    timer_armed: bool,
}

#[derive(Debug)]
struct Tally {
    since: Instant,
    unlogged: u64,
}

impl Refusals {
    fn new(window: Duration) -> Refusals {
        Refusals { window, tallies: HashMap::new(), timer_armed: false }
    }

    /// Records a refusal of `uid` at `now`: the line to log at once, if any, and the time
    /// a flush timer must be armed for, if one is needed and none is armed yet.
    fn refused(&mut self, uid: u32, now: Instant) -> (Option<String>, Option<Instant>) {
        let key = self.key_for(uid, now);
        let window = self.window;
        let Some(t) = self.tallies.get_mut(&key) else {
            self.tallies.insert(key, Tally { since: now, unlogged: 0 });
            return (Some(self.first_line(key, uid)), None);
        };
        if now.duration_since(t.since) < window {
            t.unlogged += 1;
            if self.timer_armed {
                return (None, None);
            }
            let due = t.since + window;
            self.timer_armed = true;
            return (None, Some(due));
        }
        if t.unlogged == 0 {
            // A whole window without refusals: this one is news again.
            t.since = now;
            return (Some(self.first_line(key, uid)), None);
        }
        // The window is over and its flush is due but has not run yet: this line is the summary.
        let line = summary(key, t.unlogged + 1, now.duration_since(t.since));
        *t = Tally { since: now, unlogged: 0 };
        (Some(line), None)
    }

    /// Summaries of the windows that ended by `now`, and when the next one ends (`None`: no
    /// counts are pending, and the timer is disarmed).
    fn flush(&mut self, now: Instant) -> (Vec<String>, Option<Instant>) {
        let window = self.window;
        let mut lines = Vec::new();
        for (&key, t) in &mut self.tallies {
            if t.unlogged > 0 && now.duration_since(t.since) >= window {
                lines.push(summary(key, t.unlogged, now.duration_since(t.since)));
                // Kept, with a fresh window: a steady stream of refusals gets one line per window.
                *t = Tally { since: now, unlogged: 0 };
            }
        }
        self.tallies.retain(|_, t| t.unlogged > 0 || now.duration_since(t.since) < window);
        let next = self.tallies.values().filter(|t| t.unlogged > 0).map(|t| t.since + window).min();
        self.timer_armed = next.is_some();
        (lines, next)
    }

    /// `uid`'s own tally, or the shared one when [`MAX_REFUSED_UIDS`] others are tracked.
    fn key_for(&mut self, uid: u32, now: Instant) -> Option<u32> {
        if self.tallies.contains_key(&Some(uid)) {
            return Some(uid);
        }
        let window = self.window;
        let tracked = |t: &HashMap<Option<u32>, Tally>| t.keys().filter(|k| k.is_some()).count();
        if tracked(&self.tallies) >= MAX_REFUSED_UIDS {
            // Uids quiet for a whole window need no tally.
            self.tallies.retain(|k, t| k.is_none() || t.unlogged > 0 || now.duration_since(t.since) < window);
        }
        (tracked(&self.tallies) < MAX_REFUSED_UIDS).then_some(uid)
    }

    fn first_line(&self, key: Option<u32>, uid: u32) -> String {
        let every = seconds(self.window);
        match key {
            Some(_) => format!(
                "refused a connection from uid {uid}; more from it are counted and logged at most once every {every}"
            ),
            None => format!(
                "refused a connection from uid {uid}; more from uids past the first {MAX_REFUSED_UIDS} are counted \
                 together and logged at most once every {every}"
            ),
        }
    }
}

fn summary(key: Option<u32>, n: u64, over: Duration) -> String {
    let who = key.map_or_else(|| "other uids".to_owned(), |uid| format!("uid {uid}"));
    let s = if n == 1 { "" } else { "s" };
    format!("refused {} more connection{s} from {who} in the last {}", thousands(n), seconds(over))
}

fn seconds(d: Duration) -> String {
    if d >= Duration::from_secs(10) { format!("{} s", d.as_secs()) } else { format!("{:.1} s", d.as_secs_f64()) }
}

/// 1234567 as "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn shutting_down() -> Response {
    Response::Error(ErrorReply {
        code: ErrorCode::ShuttingDown,
        message: "the daemon is shutting down".into(),
        field: None,
    })
}

async fn program_logs(tx: &mpsc::Sender<Msg>, name: String) -> Result<ProgramLogs, ErrorReply> {
    let (reply, rx) = oneshot::channel();
    if tx.send(Msg::LogFiles { name, reply }).await.is_err() {
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

/// What one `logs` answer sends: the history as runs of one stream each (the stream named
/// only when both were asked for), the subscriptions for what comes next, and the notices.
struct Feed {
    history: Vec<(Option<LogStream>, Vec<u8>)>,
    followers: Vec<(Option<LogStream>, Follower)>,
    notices: Vec<String>,
}

fn stream_name(s: LogStream) -> &'static str {
    match s {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    }
}

fn cut_since(text: Vec<u8>, since: Option<SystemTime>) -> Vec<u8> {
    match since {
        Some(t) => super::logs::since(&text, t).to_vec(),
        None => text,
    }
}

/// The `since` field as a time.
fn parse_since(since: Option<&str>) -> Result<Option<SystemTime>, ErrorReply> {
    since
        .map(|s| {
            humantime::parse_rfc3339_weak(s).map_err(|e| ErrorReply {
                code: ErrorCode::BadRequest,
                message: format!("`since` must be an RFC 3339 time (2026-11-24T10:00:00Z): {e}"),
                field: Some("since".into()),
            })
        })
        .transpose()
}

/// The most programs one `logs` request may name: each costs a tail read and a subscription.
const MAX_LOG_NAMES: usize = 10_000;

/// The feeds of a `logs` request: of `name` alone (untagged, as before `names` existed), or of
/// `name` and every one of `names`, each tagged with its name. One program that cannot be
/// served fails the request, as it does alone.
async fn program_feeds(
    tx: &mpsc::Sender<Msg>,
    name: String,
    names: Vec<String>,
    stream: LogSelect,
    lines: usize,
    follow: bool,
    since: Option<String>,
) -> Result<Vec<(Option<String>, Feed)>, ErrorReply> {
    if names.is_empty() {
        return Ok(vec![(None, program_feed(tx, name, stream, lines, follow, since).await?)]);
    }
    if names.len() > MAX_LOG_NAMES {
        return Err(ErrorReply {
            code: ErrorCode::BadRequest,
            message: format!("at most {MAX_LOG_NAMES} names in one request"),
            field: Some("names".into()),
        });
    }
    let mut all = Vec::with_capacity(names.len() + 1);
    for n in std::iter::once(name).filter(|n| !n.is_empty()).chain(names) {
        if !all.contains(&n) {
            all.push(n);
        }
    }
    let mut feeds = Vec::with_capacity(all.len());
    for n in all {
        let feed = program_feed(tx, n.clone(), stream, lines, follow, since.clone()).await?;
        feeds.push((Some(n), feed));
    }
    Ok(feeds)
}

/// The logs of program `name` that a request selects, with their tails taken, or why not.
async fn program_feed(
    tx: &mpsc::Sender<Msg>,
    name: String,
    select: LogSelect,
    lines: usize,
    follow: bool,
    since: Option<String>,
) -> Result<Feed, ErrorReply> {
    let since = parse_since(since.as_deref())?;
    let logs = program_logs(tx, name.clone()).await?;
    let bad =
        |message: String, field: &str| ErrorReply { code: ErrorCode::BadRequest, message, field: Some(field.into()) };
    let discarded = |s: &str| bad(format!("{name} discards its {s} (path \"none\")"), "stream");
    let mut sources = Vec::new();
    if select != LogSelect::Stderr {
        match &logs.stdout {
            Some(log) => sources.push((LogStream::Stdout, log.clone(), logs.custom[0])),
            None if select == LogSelect::Stdout => return Err(discarded("stdout")),
            None => {}
        }
    }
    if select != LogSelect::Stdout {
        match &logs.stderr {
            Some(log) => sources.push((LogStream::Stderr, log.clone(), logs.custom[1])),
            None if logs.redirected && select == LogSelect::Stderr => {
                return Err(bad(format!("{name} has redirect-stderr set: its stderr is in its stdout log"), "stream"));
            }
            None if select == LogSelect::Stderr => return Err(discarded("stderr")),
            None => {}
        }
    }
    if sources.is_empty() {
        return Err(discarded("stdout and its stderr"));
    }
    let stamped = sources.iter().all(|(_, log, _)| log.timestamps());
    if since.is_some() && !stamped {
        return Err(bad(
            format!(
                "{name} does not set log-timestamps, so its lines carry no time to select by: add `log-timestamps #true` to \
                 its program block (lines written before that carry no time either)"
            ),
            "since",
        ));
    }
    let tag = |s: LogStream| (select == LogSelect::Both).then_some(s);
    let mut notices = Vec::new();
    let mut tails = Vec::new();
    let mut followers = Vec::new();
    for (s, log, custom) in &sources {
        let (text, rx) = log.tail(lines, follow);
        let text = cut_since(text, since);
        let path = log.path();
        let what = format!("{name}'s {}", stream_name(*s));
        if let Some(fd) = log.daemon_stream() {
            notices.push(format!(
                "{what} goes to the daemon's {fd} ({}): svc keeps no copy of it to show",
                path.display()
            ));
        } else if let Some(problem) = log.problem() {
            notices.push(format!("{what} is dropped: {problem}"));
        } else if *custom && text.is_empty() && since.is_none() {
            notices.push(format!(
                "{what} goes to {} (set in the config), where nothing has been written yet",
                path.display()
            ));
        }
        tails.push((*s, text));
        if let Some(rx) = rx {
            followers.push((tag(*s), rx));
        }
    }
    let history = match &tails[..] {
        [(s, text)] => vec![(tag(*s), text.clone())],
        [(a, ta), (b, tb)] => {
            // Several files' tails as one history: without stamps each keeps its own `lines`.
            let limit = if since.is_some() { usize::MAX } else { lines };
            super::logs::merge((tag(*a), ta), (tag(*b), tb), stamped, limit)
        }
        _ => Vec::new(),
    };
    Ok(Feed { history, followers, notices })
}

/// Sends the tails, then (when following) every new chunk, in the order the daemon wrote
/// them, until the client goes away. Untagged (one program, or the daemon's log): after the
/// tail comes one `log` with `"data":""` carrying the notices (without `follow`, the one that
/// marks the end of the tail). Tagged (`names`): each program's tail, then its notices in a
/// `log` of its own, then one `log` with neither name nor data that ends the tails.
async fn stream_log<W, R>(
    feeds: Vec<(Option<String>, Feed)>,
    follow: bool,
    send: &mut W,
    reader: &mut R,
) -> std::io::Result<()>
where
    W: AsyncWriteExt + Unpin,
    R: AsyncReadExt + Unpin,
{
    let tagged = feeds.iter().any(|(name, _)| name.is_some());
    let mut names = Vec::with_capacity(feeds.len());
    let mut followers = Vec::new();
    let mut whole = Whole::new(feeds.len());
    let mut untagged_notices = Vec::new();
    for (k, (name, feed)) in feeds.into_iter().enumerate() {
        let Feed { history, followers: f, notices } = feed;
        for (s, text) in history {
            // When following, a tail's last bytes may be the start of a character still being written.
            let text = if follow { whole.take(k, s, &text) } else { text };
            if !text.is_empty() {
                send.write_all(log_reply(&text, s, name.as_deref()).as_bytes()).await?;
            }
        }
        if tagged {
            if !notices.is_empty() {
                let note = Response::Log { data: String::new(), stream: None, name: name.clone(), notices };
                send.write_all(protocol::encode_response(&note).as_bytes()).await?;
            }
        } else {
            untagged_notices = notices;
        }
        followers.extend(f.into_iter().map(|(s, rx)| (k, s, rx)));
        names.push(name);
    }
    if tagged || !follow || !untagged_notices.is_empty() {
        let end = Response::Log { data: String::new(), stream: None, name: None, notices: untagged_notices };
        send.write_all(protocol::encode_response(&end).as_bytes()).await?;
    }
    if !follow || followers.is_empty() {
        return Ok(());
    }
    until_hangup(reader, follow_log(followers, &names, whole, send)).await
}

/// One `log` reply.
fn log_reply(data: &[u8], stream: Option<LogStream>, name: Option<&str>) -> String {
    protocol::encode_response(&Response::Log {
        data: String::from_utf8_lossy(data).into_owned(),
        stream,
        name: name.map(str::to_owned),
        notices: Vec::new(),
    })
}

/// Keeps characters split between chunks together: an incomplete UTF-8 sequence at the end of
/// a chunk waits for the next chunk of its stream (two per log), so that one character split
/// between two pipe reads does not become two replacement characters.
struct Whole {
    carries: Vec<Vec<u8>>,
}

impl Whole {
    fn new(logs: usize) -> Whole {
        Whole { carries: vec![Vec::new(); 2 * logs] }
    }

    /// `data` of stream `s` of log `k`, with what an earlier chunk left in front and an
    /// unfinished character at the end held back.
    fn take(&mut self, k: usize, s: Option<LogStream>, data: &[u8]) -> Vec<u8> {
        let carry = &mut self.carries[2 * k + usize::from(s == Some(LogStream::Stderr))];
        carry.extend_from_slice(data);
        let keep = match std::str::from_utf8(carry) {
            Err(e) if e.error_len().is_none() => carry.len() - e.valid_up_to(),
            _ => 0,
        };
        let rest = carry.split_off(carry.len() - keep);
        std::mem::replace(carry, rest)
    }
}

/// Sends every new chunk of `followers` (log index, stream, subscription) in the order the
/// daemon wrote them, until their logs are gone.
async fn follow_log<W: AsyncWriteExt + Unpin>(
    mut followers: Vec<(usize, Option<LogStream>, Follower)>,
    names: &[Option<String>],
    mut whole: Whole,
    send: &mut W,
) -> std::io::Result<()> {
    loop {
        let first = next_chunk(&mut followers).await;
        // Everything written so far is queued already (the daemon has one thread): take it all
        // and replay it in the order it was written.
        let mut batch = vec![first];
        for (i, (_, _, rx)) in followers.iter_mut().enumerate() {
            loop {
                match rx.try_recv() {
                    Ok(c) => batch.push((i, Ok(c))),
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    Err(broadcast::error::TryRecvError::Lagged(n)) => batch.push((i, Err(Some(n)))),
                    Err(broadcast::error::TryRecvError::Closed) => {
                        batch.push((i, Err(None)));
                        break;
                    }
                }
            }
        }
        batch.sort_by_key(|(_, c)| c.as_ref().map_or(u64::MAX, |c| c.0));
        let mut closed = Vec::new();
        for (i, c) in batch {
            let (k, s, _) = &followers[i];
            let name = names.get(*k).and_then(Option::as_deref);
            match c {
                Ok((_, data)) => {
                    let data = whole.take(*k, *s, &data);
                    if !data.is_empty() {
                        send.write_all(log_reply(&data, *s, name).as_bytes()).await?;
                    }
                }
                Err(Some(n)) => {
                    let note = format!("\n[svc: this follower fell behind; {n} chunks skipped]\n");
                    send.write_all(log_reply(note.as_bytes(), *s, name).as_bytes()).await?;
                }
                Err(None) => closed.push(i),
            }
        }
        // A log that is gone (its program removed by a reload) ends its part of the follow.
        closed.sort_unstable();
        closed.dedup();
        for i in closed.into_iter().rev() {
            followers.remove(i);
        }
        if followers.is_empty() {
            return Ok(());
        }
    }
}

/// Serves a reply of many lines (`logs` with `follow`, `events`): `lines` writes them until
/// its source ends, unless the client hangs up first, the normal end of such a reply. What the
/// client sends meanwhile is read and ignored, so that its hanging up is noticed even while
/// nothing is being written.
async fn until_hangup<R, F>(reader: &mut R, lines: F) -> std::io::Result<()>
where
    R: AsyncReadExt + Unpin,
    F: std::future::Future<Output = std::io::Result<()>>,
{
    let hangup = async {
        let mut scratch = [0u8; 64];
        while reader.read(&mut scratch).await.is_ok_and(|n| n > 0) {}
    };
    tokio::select! {
        r = lines => r,
        () = hangup => Ok(()),
    }
}

/// Asks the supervisor for a snapshot of `targets` and a subscription to their events.
async fn watch(tx: &mpsc::Sender<Msg>, targets: Vec<String>) -> Result<Watch, ErrorReply> {
    let (reply, rx) = oneshot::channel();
    if tx.send(Msg::Watch { targets, reply }).await.is_err() {
        return Err(gone());
    }
    rx.await.unwrap_or_else(|_| Err(gone()))
}

fn gone() -> ErrorReply {
    ErrorReply { code: ErrorCode::ShuttingDown, message: "the daemon is shutting down".into(), field: None }
}

/// Sends the snapshot, then every event about the selected programs (and the daemon) until the
/// daemon goes away. A watcher that falls behind the supervisor's buffer is told how many
/// events it missed and gets a fresh snapshot: the supervisor never waits for a watcher, and
/// what one has not read yet is bounded by that buffer and the socket's.
async fn stream_events<W: AsyncWriteExt + Unpin>(
    tx: &mpsc::Sender<Msg>,
    targets: Vec<String>,
    mut watch: Watch,
    send: &mut W,
) -> std::io::Result<()> {
    loop {
        send.write_all(protocol::encode_response(&watch.snapshot).as_bytes()).await?;
        let missed = loop {
            match watch.rx.recv().await {
                Ok(event) => {
                    let selected = match (&watch.names, &event.program) {
                        (Some(names), Some(program)) => names.contains(program),
                        _ => true,
                    };
                    if selected {
                        send.write_all(protocol::encode_response(&Response::Event(event)).as_bytes()).await?;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => break n,
                // The daemon has gone: so does the stream.
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        };
        // The old subscription is dropped first, so that it stops holding the buffer up.
        drop(watch);
        send.write_all(protocol::encode_response(&Response::Lagged { missed }).as_bytes()).await?;
        watch = match self::watch(tx, targets.clone()).await {
            Ok(w) => w,
            // Targets a reload removed since: the stream ends with the error.
            Err(e) => {
                send.write_all(protocol::encode_response(&Response::Error(e)).as_bytes()).await?;
                return Ok(());
            }
        };
    }
}

/// The next chunk (or lag, or end) of any of `followers`, with the follower's index.
async fn next_chunk(followers: &mut [(usize, Option<LogStream>, Follower)]) -> (usize, Result<Chunk, Option<u64>>) {
    let conv = |r: Result<Chunk, broadcast::error::RecvError>| {
        r.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => Some(n),
            broadcast::error::RecvError::Closed => None,
        })
    };
    match followers {
        [(_, _, a)] => (0, conv(a.recv().await)),
        [(_, _, a), (_, _, b)] => tokio::select! {
            r = a.recv() => (0, conv(r)),
            r = b.recv() => (1, conv(r)),
        },
        [] => std::future::pending().await,
        many => {
            // Many programs' logs over one connection (`svc logs -f` of a group): one wait
            // per log, built anew per wake-up; everything queued by then is taken in one batch.
            let mut waits: Vec<_> = many
                .iter_mut()
                .enumerate()
                .map(|(i, (_, _, rx))| Box::pin(async move { (i, rx.recv().await) }))
                .collect();
            let (i, r) = std::future::poll_fn(|cx| {
                for w in &mut waits {
                    if let std::task::Poll::Ready(v) = w.as_mut().poll(cx) {
                        return std::task::Poll::Ready(v);
                    }
                }
                std::task::Poll::Pending
            })
            .await;
            (i, conv(r))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(60);

    #[test]
    fn first_refusal_is_logged_then_one_summary_per_window() {
        let t0 = Instant::now();
        let mut r = Refusals::new(W);
        let (line, arm) = r.refused(1003, t0);
        assert!(line.is_some_and(|l| l.starts_with("refused a connection from uid 1003")));
        assert_eq!(arm, None, "nothing to summarise yet, so no timer");
        let (line, arm) = r.refused(1003, t0 + Duration::from_millis(1));
        assert_eq!((line, arm), (None, Some(t0 + W)), "counted; the timer is armed for the window's end");
        for i in 2..1235 {
            assert_eq!(r.refused(1003, t0 + Duration::from_millis(i)), (None, None), "armed once");
        }
        assert_eq!(r.flush(t0 + W / 2), (vec![], Some(t0 + W)), "a timer that fires early logs nothing");
        let (lines, next) = r.flush(t0 + W);
        assert_eq!(lines, ["refused 1,234 more connections from uid 1003 in the last 60 s"]);
        assert_eq!(next, None, "nothing pending: the timer is disarmed");
        // Refusals continue: counted into the new window, which is summed up at its end.
        let (line, arm) = r.refused(1003, t0 + W + Duration::from_secs(1));
        assert_eq!((line, arm), (None, Some(t0 + 2 * W)));
        let (lines, _) = r.flush(t0 + 2 * W);
        assert_eq!(lines, ["refused 1 more connection from uid 1003 in the last 60 s"]);
        // A quiet window later, a refusal is news again and is logged at once.
        assert_eq!(r.flush(t0 + 3 * W), (vec![], None));
        let (line, arm) = r.refused(1003, t0 + 4 * W);
        assert!(line.is_some_and(|l| l.starts_with("refused a connection from uid 1003")));
        assert_eq!(arm, None);
    }

    #[test]
    fn a_late_timer_does_not_lose_counts() {
        let t0 = Instant::now();
        let mut r = Refusals::new(W);
        r.refused(7, t0);
        r.refused(7, t0 + Duration::from_secs(1));
        // The window is over but the flush has not run: this refusal carries the summary.
        let (line, arm) = r.refused(7, t0 + W + Duration::from_secs(1));
        assert_eq!(line.as_deref(), Some("refused 2 more connections from uid 7 in the last 61 s"));
        assert_eq!(arm, None);
        assert_eq!(r.flush(t0 + W + Duration::from_secs(2)), (vec![], None), "nothing twice");
    }

    #[test]
    fn uids_are_tracked_separately_up_to_a_bound() {
        let t0 = Instant::now();
        let mut r = Refusals::new(W);
        for uid in 0..200 {
            let (line, _) = r.refused(uid, t0);
            // Each of the first 64 uids is news; past them, only the first of the others is.
            assert_eq!(line.is_some(), uid <= MAX_REFUSED_UIDS as u32, "uid {uid}");
            r.refused(uid, t0);
        }
        assert_eq!(r.tallies.len(), MAX_REFUSED_UIDS + 1, "64 uids and the shared tally");
        let (lines, next) = r.flush(t0 + W);
        assert_eq!(lines.len(), MAX_REFUSED_UIDS + 1);
        assert!(lines.contains(&"refused 271 more connections from other uids in the last 60 s".to_owned()));
        assert_eq!(next, None);
        // Once the tracked uids have been quiet for a window, new uids get their own tally.
        r.flush(t0 + 2 * W);
        let (line, _) = r.refused(500, t0 + 2 * W);
        assert!(line.is_some_and(|l| l.contains("uid 500; more from it")));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
