//! Crash safety: what a killed daemon left running is found and stopped at the next start.
//!
//! The supervisor records every live program as `{name, pid, start_time}` in
//! `<state>/programs.json`. After a `kill -9` of the daemon its programs may live on (the
//! parent-death signal is only a request, and does not exist on every OS). The next daemon,
//! once it holds the lock, reads the record and stops each process group whose leader still
//! has the recorded start time — a reused pid never matches, so an unrelated process is never
//! hit — before it starts anything, so no program ever runs twice.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long leftovers of programs no longer configured get to exit after SIGTERM.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// One recorded live program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Process name.
    pub name: String,
    /// Leader pid (= process group id).
    pub pid: u32,
    /// `svc_platform::process_start_time` of the leader at spawn.
    pub start_time: u64,
}

/// Writes the record atomically (temp file + rename), so a crash mid-write leaves the old one.
pub fn write(path: &Path, records: &[Record]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().create_new(true).write(true).mode(0o600).open(&tmp)?;
    f.write_all(serde_json::to_string(records).unwrap_or_else(|_| "[]".into()).as_bytes())?;
    std::fs::rename(&tmp, path)
}

fn alive(r: &Record) -> bool {
    svc_platform::process_start_time(r.pid as i32).is_ok_and(|t| t == r.start_time)
}

/// Stops whatever a previous daemon left running, per the record at `path`, then removes the
/// record. Each leftover gets its program's `stop-wait-secs` (from `config`) before SIGKILL.
/// Returns the names of the programs that were found still running.
pub fn stop_leftovers(path: &Path, config: &crate::config::Config) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let records: Vec<Record> = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("ignoring unreadable {}: {e}", path.display());
            let _ = std::fs::remove_file(path);
            return Vec::new();
        }
    };
    let mut left: Vec<Record> = records.into_iter().filter(alive).collect();
    let found: Vec<String> = left.iter().map(|r| r.name.clone()).collect();
    for r in &left {
        tracing::warn!("{}: pid {} survived the previous daemon; stopping it before starting anew", r.name, r.pid);
        let _ = killpg(Pid::from_raw(r.pid as i32), Signal::SIGTERM);
        let _ = killpg(Pid::from_raw(r.pid as i32), Signal::SIGCONT);
    }
    let grace = left
        .iter()
        .map(|r| config.programs.iter().find(|p| p.name == r.name).map_or(DEFAULT_GRACE, |p| p.stop_wait))
        .max()
        .unwrap_or(DEFAULT_GRACE);
    let deadline = Instant::now() + grace;
    // These are not our children (they were re-parented when the old daemon died), so
    // there is no exit notification to wait for; start-up is the one place svc polls.
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left.retain(alive);
    }
    for r in &left {
        tracing::warn!("{}: pid {} ignored SIGTERM; sending SIGKILL", r.name, r.pid);
        let _ = killpg(Pid::from_raw(r.pid as i32), Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(path);
    found
}
