//! The daemon: start-up (directories, config, lock, socket, signals), then the supervisor.
//!
//! Start-up order matters:
//! 1. directories are created and checked (socket dir private and ours);
//! 2. the config is loaded: a broken config is a start-up error, before anything runs;
//! 3. the single-instance lock is taken *before* the socket is bound, because binding with
//!    overwrite would silently displace a live daemon's socket;
//! 4. SIGCHLD is registered before the first spawn, so no exit is missed;
//! 5. only then do programs start.

mod engine;
mod hooks;
mod logs;
mod notify;
pub mod own_log;
mod probe;
/// `svc __probe-runner`: the daemon's helper process that runs exec checks (see `probe.rs`).
pub use probe::runner::{ARG as PROBE_RUNNER_ARG, main as probe_runner_main};
pub mod process;
mod reaper;
mod recover;
mod reload;
mod server;
mod spawn;
mod supervisor;

use crate::config;
use crate::paths::Paths;
use crate::protocol::DaemonInfo;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName, tokio::Listener};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use supervisor::{Msg, Supervisor};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The config has errors (already rendered for people).
    #[error("{0}")]
    Config(String),
    /// Another daemon holds the lock.
    #[error("svc daemon already running (pid {pid}); see 'svc status'")]
    AlreadyRunning {
        /// Its pid, from daemon.json (0 if unknown).
        pid: u32,
    },
    /// A directory is unusable.
    #[error("{0}")]
    Directory(#[from] svc_platform::PrivateDirError),
    /// The socket path does not fit in sun_path.
    #[error(
        "socket path {path} is {len} bytes, longer than this OS allows ({max}); set SVC_SOCKET or --socket to a shorter path"
    )]
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An I/O step failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StartupError {
    let path = path.to_owned();
    move |source| StartupError::Io { what, path, source }
}

/// What `daemon.json` records, so a CLI started from another environment (cron, ssh,
/// launchd) finds the socket this daemon actually bound.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DaemonFile {
    /// The daemon's pid.
    pub pid: u32,
    /// The socket it listens on.
    pub socket: PathBuf,
    /// Unix seconds when it started.
    pub started: u64,
}

/// Reads `daemon.json`, if present and well-formed.
pub fn read_daemon_file(paths: &Paths) -> Option<DaemonFile> {
    let text = std::fs::read_to_string(paths.daemon_file()).ok()?;
    serde_json::from_str(&text).ok()
}

/// How many inherited descriptors [`close_inherited_fds`] closed (for the log, which does not
/// exist yet when they are closed).
static INHERITED_FDS_CLOSED: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Closes the descriptors the daemon inherited above stderr. The very first thing `svc
/// daemon` does, before anything of its own is open.
pub fn close_inherited_fds() {
    let _ = INHERITED_FDS_CLOSED.set(svc_platform::close_inherited_fds());
}

/// Runs the daemon in the foreground until it is shut down. Must be called on the thread
/// that will spawn programs for the daemon's whole life (parent-death signals are per thread).
pub fn run(paths: &Paths) -> Result<(), StartupError> {
    if let Some(n) = INHERITED_FDS_CLOSED.get().filter(|&&n| n > 0) {
        tracing::debug!("closed {n} inherited descriptors");
    }
    let config = config::load(&paths.config).map_err(|e| StartupError::Config(e.render(false)))?;
    // The state dir is always private; logs and the socket are shared with the access
    // group, if the config names one.
    let gid = config.access.as_ref().map(|a| a.gid);
    let share = gid.map_or(Share::Private, Share::Group);
    // The group passes through the state dir only when the logs it may read are inside it.
    let state_share = match gid {
        Some(gid) if paths.log_dir.starts_with(&paths.state_dir) => Share::Traverse(gid),
        _ => Share::Private,
    };
    create_dir(&paths.state_dir, state_share)?;
    create_dir(&paths.log_dir, share)?;
    if let Some(dir) = paths.socket.parent() {
        create_dir(dir, share)?;
    }

    let lock = take_lock(paths)?;
    let len = paths.socket.as_os_str().len();
    if len > svc_platform::SOCKET_PATH_MAX {
        return Err(StartupError::SocketPathTooLong {
            path: paths.socket.clone(),
            len,
            max: svc_platform::SOCKET_PATH_MAX,
        });
    }

    // Only now, holding the lock, can we be sure these are a dead daemon's programs.
    let instance = std::fs::canonicalize(&paths.state_dir).unwrap_or_else(|_| paths.state_dir.clone());
    let instance = instance.display().to_string();
    let leftovers = recover::stop_leftovers(&paths.state_dir.join("programs.json"), &config, &instance);
    spawn::set_instance(instance);
    if !leftovers.is_empty() {
        tracing::warn!("stopped {} program(s) left running by a previous daemon", leftovers.len());
    }

    match svc_platform::become_subreaper() {
        Ok(()) => tracing::debug!("subreaper: orphaned descendants will be re-parented to svc"),
        Err(e) => tracing::debug!("{e}: orphans of programs go to init"),
    }
    // Before any thread exists: the spawner threads then share the one heap.
    let _ = svc_platform::tune_for_daemon();
    let ignored = svc_platform::reset_ignored_signals();
    if ignored > 0 {
        tracing::debug!("{ignored} inherited ignored signals reset so programs do not inherit them");
    }
    match svc_platform::raise_nofile_limit() {
        Ok((old, new)) if new > old => tracing::debug!("RLIMIT_NOFILE raised from {old} to {new}"),
        Ok((old, _)) if old < 4096 => {
            tracing::warn!("open-file limit is {old} and cannot be raised; each program needs up to 3 descriptors")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("{e}"),
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("start the runtime for", &paths.socket))?;
    let result = runtime.block_on(serve(paths, config));
    let _ = std::fs::remove_file(paths.daemon_file());
    drop(lock);
    result
}

async fn serve(paths: &Paths, config: config::Config) -> Result<(), StartupError> {
    let sig = |kind| signal(kind).map_err(io_err("install signal handler for", &paths.socket));
    let sigchld = sig(SignalKind::child())?;
    let mut sigterm = sig(SignalKind::terminate())?;
    let mut sigint = sig(SignalKind::interrupt())?;
    let mut sighup = sig(SignalKind::hangup())?;
    let mut sigusr1 = sig(SignalKind::user_defined1())?;

    let access = config.access.clone();
    let listener = bind(&paths.socket, access.as_ref().map(|a| a.gid))?;
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    if let Err(e) = write_daemon_file(paths, started) {
        // Only CLIs started from another environment need it (the socket path is the default
        // otherwise); a full disk must not keep the programs from running.
        tracing::warn!("{e}; clients that do not use the default socket path will not find this daemon");
    }
    tracing::info!(
        "svc {} daemon (pid {}) listening on {} with {} programs from {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        paths.socket.display(),
        config.programs.len(),
        paths.config.display()
    );

    let info = DaemonInfo {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        config: paths.config.display().to_string(),
        started,
        role: None,
    };
    let (tx, rx) = mpsc::channel(1024);
    let (reaped_tx, reaped_rx) = mpsc::unbounded_channel();
    let supervisor = Supervisor::new(config, paths.config.clone(), &paths.state_dir, paths.log_dir.clone(), info)
        .access(access, paths.socket.clone());
    // `access` may change on reload: the server and the socket's re-creation follow it.
    let access = supervisor.access_watch();
    tokio::spawn(reaper::run(sigchld, reaped_tx));
    let (inflight, mut inflight_done) = mpsc::channel::<()>(1);
    let rebind = std::sync::Arc::new(tokio::sync::Notify::new());
    let socket = paths.socket.clone();
    let current = access.clone();
    let rebind_socket = move || {
        let gid = current.borrow().as_ref().map(|a| a.gid);
        if socket.exists() {
            tracing::info!("SIGUSR1: the socket {} is still there", socket.display());
            return None;
        }
        if let Some(dir) = socket.parent()
            && let Err(e) = create_dir(dir, gid.map_or(Share::Private, Share::Group))
        {
            tracing::error!("cannot re-create the socket directory: {e}");
            return None;
        }
        match bind(&socket, gid) {
            Ok(l) => {
                tracing::info!("SIGUSR1: socket {} was gone; listening there again", socket.display());
                Some(l)
            }
            Err(e) => {
                tracing::error!("cannot re-create the socket: {e}");
                None
            }
        }
    };
    let files = std::sync::Arc::new(crate::protocol::DaemonPaths {
        config: paths.config.display().to_string(),
        state: paths.state_dir.display().to_string(),
        logs: paths.log_dir.display().to_string(),
        socket: paths.socket.display().to_string(),
        lock: paths.lock_file().display().to_string(),
        daemon_log: paths.daemon_log().display().to_string(),
    });
    let server =
        tokio::spawn(server::run(listener, files, tx.clone(), inflight, access, rebind.clone(), rebind_socket));
    let signals = tx.clone();
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = sigterm.recv() => { tracing::info!("SIGTERM received"); Msg::Shutdown }
                _ = sigint.recv() => { tracing::info!("SIGINT received"); Msg::Shutdown }
                _ = sighup.recv() => { tracing::info!("SIGHUP received: reloading"); Msg::Reload }
                _ = sigusr1.recv() => { rebind.notify_one(); continue; }
            };
            if signals.send(msg).await.is_err() {
                return;
            }
        }
    });
    drop(tx);
    match svc_platform::notify_ready() {
        Ok(true) => tracing::debug!("told the service manager we are ready"),
        Ok(false) => {}
        Err(e) => tracing::warn!("readiness notification failed: {e}"),
    }
    supervisor.run(rx, reaped_rx).await;
    // Stop accepting, then let connections finish writing their replies (the shutdown
    // reply among them) before the runtime, and every task with it, is dropped.
    server.abort();
    let _ = server.await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), inflight_done.recv()).await;
    Ok(())
}

/// Who may enter one of the daemon's directories.
#[derive(Debug, Clone, Copy)]
enum Share {
    /// The owner only (0700).
    Private,
    /// The access group may list and read it (0750).
    Group(u32),
    /// The access group may only pass through it (0710).
    Traverse(u32),
}

fn create_dir(dir: &Path, share: Share) -> Result<(), StartupError> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
    }
    match share {
        Share::Private => match svc_platform::ensure_private_dir(dir) {
            // Shared by an earlier run whose config had `access`: those are the modes svc
            // itself sets, never writable by others, so taking the sharing back is safe.
            Err(svc_platform::PrivateDirError::UnsafeMode { mode: 0o750 | 0o710, .. }) => {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io_err("make private", dir))?;
                tracing::info!("{}: no longer shared (the config has no `access` now)", dir.display());
                svc_platform::ensure_private_dir(dir)?
            }
            other => other?,
        },
        Share::Group(gid) => svc_platform::ensure_group_dir(dir, gid)?,
        Share::Traverse(gid) => svc_platform::ensure_traverse_dir(dir, gid)?,
    }
    Ok(())
}

fn take_lock(paths: &Paths) -> Result<Flock<File>, StartupError> {
    let path = paths.lock_file();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            StartupError::AlreadyRunning { pid: read_daemon_file(paths).map_or(0, |d| d.pid) }
        } else {
            StartupError::Io { what: "lock", path: path.clone(), source: errno.into() }
        }
    })
}

fn bind(socket: &Path, group: Option<u32>) -> Result<Listener, StartupError> {
    let name = socket.to_fs_name::<GenericFilePath>().map_err(io_err("use socket path", socket))?;
    let mode: u32 = if group.is_some() { 0o660 } else { 0o600 };
    // We hold the lock, so a socket file still there is a dead daemon's: replace it.
    let opts = || ListenerOptions::new().name(name.borrow()).try_overwrite(true);
    // mode_t is u16 on some OSes; the value always fits.
    let listener = match opts().mode(mode as _).create_tokio() {
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
            // fchmod on a socket is refused on some OSes; chmod after bind instead (the
            // window is harmless inside our 0700 directory).
            let l = opts().create_tokio().map_err(io_err("bind socket", socket))?;
            std::fs::set_permissions(socket, std::fs::Permissions::from_mode(mode))
                .map_err(io_err("chmod socket", socket))?;
            l
        }
        other => other.map_err(io_err("bind socket", socket))?,
    };
    // bind() applies the umask on some systems whatever fchmod said before it; set the mode
    // we mean explicitly.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(mode)).map_err(io_err("chmod socket", socket))?;
    if let Some(gid) = group {
        nix::unistd::chown(socket, None, Some(nix::unistd::Gid::from_raw(gid))).map_err(|e| StartupError::Io {
            what: "give the access group",
            path: socket.to_owned(),
            source: e.into(),
        })?;
    }
    Ok(listener)
}

fn write_daemon_file(paths: &Paths, started: u64) -> Result<(), StartupError> {
    let path = paths.daemon_file();
    let tmp = path.with_extension("json.tmp");
    let record = DaemonFile { pid: std::process::id(), socket: paths.socket.clone(), started };
    let text = serde_json::to_string(&record).unwrap_or_default();
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut f = OpenOptions::new().create_new(true).write(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(io_err("write", &path))
}
