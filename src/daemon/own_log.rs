//! The daemon's own log (its stderr), written so that a failing write can never stop it.
//!
//! Rust's `eprintln!` panics when stderr cannot be written, and tracing-subscriber reports its
//! own write errors with `eprintln!`: on a full disk the daemon died of its first log line and
//! orphaned its programs. Here a failed write is counted instead, further lines are dropped
//! without a system call until a retry time (250 ms, doubling to 5 s, so a full disk costs no
//! CPU), and the first line that gets through again is preceded by one that says how much
//! was lost and why.

use super::logs::{Chunk, Follower, chunk, tail_file};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::broadcast;

/// First wait before writing again after a failure; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(5);

struct Failure {
    error: String,
    since: SystemTime,
    lines: u64,
    bytes: u64,
    retry_at: Instant,
    delay: Duration,
}

static FAILURE: Mutex<Option<Failure>> = Mutex::new(None);

/// Followers of the daemon's log (`svc logs -f svc`); created on first use.
static FOLLOWERS: Mutex<Option<broadcast::Sender<Chunk>>> = Mutex::new(None);

/// Where `svc up` and `svc install` send the daemon's stderr, in the log directory.
static EXPECTED: OnceLock<Vec<PathBuf>> = OnceLock::new();

/// Lines queued per follower of the daemon's log before it is told it lagged.
const FOLLOW_QUEUE: usize = 256;

/// A writer for tracing: stderr, never failing. One `write` is one formatted event.
pub struct OwnLog;

impl Write for OwnLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut failure = FAILURE.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(f) = failure.as_mut()
            && now < f.retry_at
        {
            f.lines += 1;
            f.bytes += buf.len() as u64;
            return Ok(buf.len());
        }
        let mut out = Vec::new();
        if let Some(f) = failure.as_ref() {
            let since = humantime::format_rfc3339_seconds(f.since);
            out.extend_from_slice(
                format!(
                    "svc: the daemon log could not be written from {since} ({}): {} lines ({} bytes) were lost\n",
                    f.error, f.lines, f.bytes
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(buf);
        let written = io::stderr().lock().write_all(&out);
        // Under the failure lock, as in `tail`, so a new follower misses and repeats nothing.
        let mut followers = FOLLOWERS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = followers.as_ref() {
            if tx.receiver_count() == 0 {
                *followers = None;
            } else {
                let _ = tx.send(chunk(&out));
            }
        }
        match written {
            Ok(()) => *failure = None,
            Err(e) => {
                let f = failure.get_or_insert_with(|| Failure {
                    error: e.to_string(),
                    since: SystemTime::now(),
                    lines: 0,
                    bytes: 0,
                    retry_at: now,
                    delay: FIRST_RETRY / 2,
                });
                f.lines += 1;
                f.bytes += buf.len() as u64;
                f.delay = (f.delay * 2).min(MAX_RETRY);
                f.retry_at = now + f.delay;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends the daemon's diagnostics to stderr at `SVC_LOG`'s level (default info).
pub fn init_tracing() {
    // A plain level (error, warn, info, debug, trace): per-module filter expressions would pull
    // a regex engine into a daemon that runs all day, for no use svc has.
    let level = std::env::var("SVC_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(|| OwnLog)
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Writes a line to stderr if it can; for the last words of a daemon that could not start.
pub fn say(line: &str) {
    let _ = OwnLog.write(format!("{line}\n").as_bytes());
}

/// Tells the daemon where its own log is expected to be when it is a file: the files `svc up`
/// (`svc.log`) and launchd (`daemon.err.log`) send its stderr to, in `log_dir`.
pub fn expect_in(log_dir: &Path) {
    let _ = EXPECTED.set(vec![log_dir.join("svc.log"), log_dir.join("daemon.err.log")]);
}

/// The last `lines` of the daemon's log, and a subscription to what it writes next when
/// `follow` is set; or, when its stderr is not a file it can read back (the journal, a
/// terminal, /dev/null), a message that says where the log is.
pub fn tail(lines: usize, follow: bool) -> Result<(Vec<u8>, Option<Follower>), String> {
    let path = log_path()?;
    // The failure lock is what a write holds: nothing is written between the tail and the
    // subscription.
    let _writing = FAILURE.lock().unwrap_or_else(|p| p.into_inner());
    let text = tail_file(&path, lines).map_err(|e| format!("cannot read the daemon's log {}: {e}", path.display()))?;
    let rx = follow.then(|| {
        let mut followers = FOLLOWERS.lock().unwrap_or_else(|p| p.into_inner());
        followers.get_or_insert_with(|| broadcast::channel(FOLLOW_QUEUE).0).subscribe()
    });
    Ok((text, rx))
}

/// The file the daemon's stderr is, by a name that opens the same file, or where it goes.
fn log_path() -> Result<PathBuf, String> {
    let stderr = io::stderr();
    let meta = nix::sys::stat::fstat(stderr.as_fd())
        .map_err(|e| format!("the daemon has no stderr ({e}): its log goes nowhere"))?;
    let (dev, ino) = (meta.st_dev as u64, meta.st_ino as u64);
    let kind = meta.st_mode & libc::S_IFMT;
    let same = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.dev() == dev && m.ino() == ino);
    let expected = EXPECTED.get().map_or(&[][..], Vec::as_slice);
    let svc_log =
        expected.first().map_or_else(|| "svc.log in the log directory".to_owned(), |p| p.display().to_string());
    if kind == libc::S_IFREG {
        if let Some(p) = expected.iter().find(|p| same(p)) {
            return Ok(p.clone());
        }
        return match svc_platform::fd_path(stderr.as_fd()) {
            Ok(p) if same(&p) => Ok(p),
            Ok(p) => Err(format!(
                "the daemon's log file {} was deleted or replaced since the daemon opened it; its new lines are lost until the daemon is restarted",
                p.display()
            )),
            Err(_) => Err(format!(
                "the daemon logs to a file other than {svc_log}, which svc cannot name on {}: see where its stderr was sent when it was started",
                svc_platform::OS_NAME
            )),
        };
    }
    if kind == libc::S_IFSOCK {
        // systemd sets JOURNAL_STREAM to "DEV:INO" of the stream it connected stderr to.
        let journal = std::env::var("JOURNAL_STREAM").is_ok_and(|v| v == format!("{dev}:{ino}"));
        return Err(if journal {
            "the daemon logs to the journal: journalctl --user -u svc".to_owned()
        } else {
            "the daemon's stderr is a socket: its log is wherever that socket leads, not in a file svc can read back"
                .to_owned()
        });
    }
    if kind == libc::S_IFIFO {
        return Err("the daemon's stderr is a pipe: its log goes to whatever reads that pipe (what started the daemon), not to a file svc can read back".to_owned());
    }
    let null =
        std::fs::metadata("/dev/null").is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == meta.st_rdev as u64);
    if null {
        return Err(format!(
            "the daemon's log is discarded: its stderr is /dev/null (started with `svc up`, it logs to {svc_log})"
        ));
    }
    if std::io::IsTerminal::is_terminal(&stderr) {
        return Err("the daemon logs to the terminal it runs in (it was started with `svc daemon` in the foreground)"
            .to_owned());
    }
    Err(format!("the daemon's stderr is not a file (mode {:o}): svc cannot read its log back", meta.st_mode))
}
