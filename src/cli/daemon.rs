//! `svc daemon`, `svc up`, `svc shutdown`: running and stopping the daemon itself.

use super::{FAILURE, Global, SUCCESS, block_on, connect, report};
use crate::client::ClientError;
use crate::protocol::{Request, Response};
use std::fs::OpenOptions;
use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `svc up` waits for a new daemon to answer.
const UP_TIMEOUT: Duration = Duration::from_secs(15);

/// The daemon-only binary next to `svc` (see `src/bin/svc-daemon.rs`).
pub const DAEMON_BIN: &str = "svc-daemon";

/// Set when `svc daemon` must run the daemon itself rather than hand over to [`DAEMON_BIN`].
const IN_PROCESS: &str = "SVC_DAEMON_IN_PROCESS";

/// This build's identity: both binaries must come from the same sources to hand over.
pub const BUILD_ID: &str = env!("SVC_BUILD_ID");

/// `svc daemon`: the daemon in the foreground, logging to stderr. Hands over to
/// [`DAEMON_BIN`] when one from this same build sits next to `svc`; runs here otherwise.
pub fn daemon(g: &Global) -> u8 {
    if std::env::var_os(IN_PROCESS).is_none() {
        hand_over(g);
    } else {
        // SAFETY: no other thread exists yet. Programs must not inherit the marker: a
        // program that runs `svc daemon` (a nested instance) should hand over as usual.
        unsafe { std::env::remove_var(IN_PROCESS) };
    }
    run_here(g)
}

/// Execs [`DAEMON_BIN`] if it is there; returns only if it could not.
fn hand_over(g: &Global) {
    let Ok(exe) = std::env::current_exe() else { return };
    let bin = exe.with_file_name(DAEMON_BIN);
    if !bin.is_file() {
        return;
    }
    let mut cmd = Command::new(&bin);
    cmd.arg(BUILD_ID).arg(&exe);
    global_args(&mut cmd, g);
    let _ = cmd.exec();
}

fn global_args(cmd: &mut Command, g: &Global) {
    if let Some(c) = &g.config {
        cmd.arg("--config").arg(c);
    }
    if let Some(s) = &g.socket {
        cmd.arg("--socket").arg(s);
    }
}

/// The entry point of [`DAEMON_BIN`]: `BUILD_ID SVC_PATH [--config FILE] [--socket PATH]`.
/// From another build (an old `svc-daemon` left next to a new `svc`), it goes back to
/// `svc daemon` in-process rather than run code that does not match the CLI's.
pub fn standalone(args: Vec<std::ffi::OsString>) -> u8 {
    let usage = || {
        eprintln!("{DAEMON_BIN}: started by 'svc daemon' (or 'svc up'); run that instead");
        2
    };
    let [build, svc, rest @ ..] = args.as_slice() else { return usage() };
    let mut g = Global::default();
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else { return usage() };
        match flag.to_str() {
            Some("--config") => g.config = Some(value.into()),
            Some("--socket") => g.socket = Some(value.into()),
            _ => return usage(),
        }
    }
    if build.to_str() != Some(BUILD_ID) {
        let mut cmd = Command::new(svc);
        cmd.arg("daemon").env(IN_PROCESS, "1");
        global_args(&mut cmd, &g);
        let e = cmd.exec();
        eprintln!("{DAEMON_BIN}: built from other sources than {} and cannot run it ({e})", svc.display());
        return FAILURE;
    }
    run_here(&g)
}

/// Runs the daemon in this process.
fn run_here(g: &Global) -> u8 {
    crate::daemon::close_inherited_fds();
    crate::daemon::own_log::init_tracing();
    let paths = g.paths();
    crate::daemon::own_log::expect_in(&paths.log_dir);
    match crate::daemon::run(&paths) {
        Ok(()) => SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr cannot be written (a full disk).
            crate::daemon::own_log::say(&format!("svc: error: {e}"));
            FAILURE
        }
    }
}

/// `svc up`: start the daemon in the background unless one answers, and wait until it does.
pub fn up(g: &Global, quiet: bool) -> u8 {
    let paths = g.paths();
    if let Some(info) = block_on(info(g)) {
        if !quiet {
            println!("svc daemon already running (pid {})", info.pid);
        }
        if let Some(wanted) = &g.config
            && std::fs::canonicalize(wanted).ok() != std::fs::canonicalize(&info.config).ok()
        {
            eprintln!(
                "svc: note: it runs {}, not {}; to switch: svc shutdown && svc up --config {}",
                info.config,
                wanted.display(),
                wanted.display()
            );
        }
        return SUCCESS;
    }
    if let Some(pid) = live_daemon_without_socket(&paths) {
        // The daemon runs but its socket is gone (a /tmp cleaner, the runtime dir removed at
        // logout): ask it to bind again rather than start a second one.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGUSR1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(info) = block_on(info(g)) {
                if !quiet {
                    println!("svc daemon already running (pid {}); its socket was re-created", info.pid);
                }
                return SUCCESS;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let log_path = paths.daemon_log();
    if let Some(dir) = log_path.parent() {
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
    }
    let log = match OpenOptions::new().create(true).append(true).mode(0o600).open(&log_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("svc: error: cannot open {}: {e}", log_path.display());
            return FAILURE;
        }
    };
    let log_start = log.metadata().map_or(0, |m| m.len());
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("svc: error: cannot find my own executable: {e}");
            return FAILURE;
        }
    };
    let mut cmd = Command::new(exe);
    cmd.arg("daemon");
    global_args(&mut cmd, g);
    let Ok(err) = log.try_clone() else {
        eprintln!("svc: error: cannot duplicate the log descriptor");
        return FAILURE;
    };
    cmd.stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: setsid is async-signal-safe. A session of its own detaches the daemon from
    // this terminal, so closing the terminal or pressing ^C here never reaches it.
    unsafe {
        cmd.pre_exec(|| if libc::setsid() < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("svc: error: cannot start the daemon: {e}");
            return FAILURE;
        }
    };
    let deadline = Instant::now() + UP_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(info) = block_on(info(g)) {
            if !quiet {
                println!("svc daemon started (pid {}); logs in {}", info.pid, log_path.display());
            }
            return SUCCESS;
        }
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("svc: error: the daemon exited at start-up ({status}):");
            eprint!("{}", read_from(&log_path, log_start));
            return FAILURE;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "svc: error: the daemon (pid {}) did not answer within {}s; see {}",
        child.id(),
        UP_TIMEOUT.as_secs(),
        log_path.display()
    );
    FAILURE
}

async fn info(g: &Global) -> Option<crate::protocol::DaemonInfo> {
    let mut c = super::try_connect(g).await.ok()?;
    match c.request(&Request::Info {}).await.ok()? {
        Response::Info(info) => Some(info),
        _ => None,
    }
}

fn read_from(path: &std::path::Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset));
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// `svc version`: this binary's version, and the running daemon's, which a mismatch after an
/// upgrade makes worth a look (restart the daemon to run the new one).
pub fn version(g: &Global, json: bool) -> u8 {
    let mine = env!("CARGO_PKG_VERSION");
    let daemon = block_on(info(g));
    if json {
        let daemon = daemon.as_ref().map(|i| serde_json::json!({ "version": i.version, "pid": i.pid }));
        println!("{:#}", serde_json::json!({ "client": mine, "daemon": daemon }));
        return SUCCESS;
    }
    println!("svc {mine}");
    match daemon {
        Some(i) if i.version == mine => println!("daemon {} (pid {})", i.version, i.pid),
        Some(i) => println!(
            "daemon {} (pid {}): older or newer than this svc; restart it to run {mine}: svc shutdown && svc up",
            i.version, i.pid
        ),
        None => println!("daemon not running"),
    }
    SUCCESS
}

/// `svc shutdown`: stop every program, then the daemon; return once it is gone.
pub fn shutdown(g: &Global) -> u8 {
    block_on(async {
        let mut c = match connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let answer = c.request(&Request::Shutdown {});
        let answer = if std::io::stderr().is_terminal() {
            tokio::pin!(answer);
            let r = tokio::select! {
                r = &mut answer => r,
                () = super::control::progress(g, &[], crate::protocol::State::Stopped) => answer.await,
            };
            eprint!("\r\x1b[K");
            r
        } else {
            answer.await
        };
        match answer {
            Ok(Response::Ok) => {}
            Ok(other) => return report(&ClientError::Protocol(format!("{other:?}"))),
            Err(e) => return report(&e),
        }
        // The daemon closes the socket as it exits; wait for that so that a script can
        // start a new one right after.
        let _ = tokio::time::timeout(Duration::from_secs(10), c.recv()).await;
        println!("svc daemon stopped");
        SUCCESS
    })
}

/// The pid of a daemon that holds the lock but does not answer on its socket.
fn live_daemon_without_socket(paths: &crate::paths::Paths) -> Option<u32> {
    let record = crate::daemon::read_daemon_file(paths)?;
    let file = std::fs::OpenOptions::new().write(true).open(paths.lock_file()).ok()?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        // We got the lock: nobody holds it, so no daemon runs (and dropping it releases it).
        Ok(_) => None,
        Err(_) => Some(record.pid),
    }
}
