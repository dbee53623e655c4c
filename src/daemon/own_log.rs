//! The daemon's own log (its stderr), written so that a failing write can never stop it.
//!
//! Rust's `eprintln!` panics when stderr cannot be written, and tracing-subscriber reports its
//! own write errors with `eprintln!`: on a full disk the daemon died of its first log line and
//! orphaned its programs. Here a failed write is counted instead, further lines are dropped
//! without a system call until a retry time (250 ms, doubling to 5 s, so a full disk costs no
//! CPU), and the first line that gets through again is preceded by one that says how much
//! was lost and why.

use std::io::{self, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

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
        match io::stderr().lock().write_all(&out) {
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
