//! Crash safety: what a killed daemon left running is found and stopped at the next start.
//!
//! The supervisor records every live program as `{name, pid, start_time}` in
//! `<state>/programs.json`. After a `kill -9` of the daemon its programs may live on (the
//! parent-death signal is only a request, and does not exist on every OS). The next daemon,
//! once it holds the lock, reads the record and stops each process group whose leader still
//! has the recorded start time — a reused pid never matches, so an unrelated process is never
//! hit — before it starts anything, so no program ever runs twice.

use nix::sys::signal::{Signal, kill, killpg};
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
    /// `svc_platform::boot_id` when it was recorded: after a reboot nothing of it can be alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
}

/// Writes the record atomically (temp file + rename), so a crash mid-write leaves the old one.
pub fn write(path: &Path, records: &[Record]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new().create_new(true).write(true).mode(0o600).open(&tmp).and_then(|mut f| {
        f.write_all(serde_json::to_string(records).unwrap_or_else(|_| "[]".into()).as_bytes())?;
        std::fs::rename(&tmp, path)
    });
    if written.is_err() {
        // A half-written temp file only takes space from the disk that just ran out of it.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Whether `pid` is still the process that started at `start_time` and has not exited. A
/// zombie has exited: with its parent (the old daemon) gone, it waits for init to reap it,
/// which may take a while, and must not make recovery wait for it.
fn running(table: Option<&[svc_platform::ProcEntry]>, pid: i32, start_time: u64) -> bool {
    match table {
        Some(t) => t.iter().any(|e| e.pid == pid && e.start_time == start_time && !e.zombie),
        None => svc_platform::process_start_time(pid).is_ok_and(|t| t == start_time),
    }
}

/// What is left of one recorded program: its leader, if still the same process, and the
/// other members of its process group and its descendants that left the group.
struct Leftover {
    record: Record,
    leader: bool,
    members: Vec<svc_platform::ProcEntry>,
}

impl Leftover {
    fn find(record: Record, table: Option<&[svc_platform::ProcEntry]>) -> Leftover {
        let pgid = record.pid as i32;
        let leader = running(table, pgid, record.start_time);
        let table = table.unwrap_or_default();
        // Without its leader, a process group keeps its id only while a member lives: the
        // kernel never hands out a pid that is in use as a group id. So members of group
        // `pgid` with no process `pgid` are the old program's, whose leader exited first.
        let group_is_ours = leader || !table.iter().any(|e| e.pid == pgid);
        let mut members: Vec<svc_platform::ProcEntry> =
            table.iter().filter(|e| group_is_ours && e.pgid == pgid && e.pid != pgid).copied().collect();
        if leader {
            for e in svc_platform::descendants(table, pgid) {
                if !members.iter().any(|m| m.pid == e.pid) {
                    members.push(e);
                }
            }
        }
        // Started before the program was? Then it is not the program's.
        members.retain(|e| !e.zombie && e.start_time >= record.start_time);
        Leftover { record, leader, members }
    }

    fn is_empty(&self) -> bool {
        !self.leader && self.members.is_empty()
    }

    /// Forgets what has exited since.
    fn refresh(&mut self, table: Option<&[svc_platform::ProcEntry]>) {
        self.leader = self.leader && running(table, self.record.pid as i32, self.record.start_time);
        self.members.retain(|e| running(table, e.pid, e.start_time));
    }

    fn signal(&self, signal: Signal) {
        let pgid = self.record.pid as i32;
        // The group id is only signalled while a process proves it is still this group's.
        if self.leader || self.members.iter().any(|e| e.pgid == pgid) {
            let _ = killpg(Pid::from_raw(pgid), signal);
        }
        for e in self.members.iter().filter(|e| e.pgid != pgid) {
            if e.pgid == e.pid {
                let _ = killpg(Pid::from_raw(e.pid), signal);
            } else {
                let _ = kill(Pid::from_raw(e.pid), signal);
            }
        }
    }
}

/// Stops whatever a previous daemon left running, per the record at `path`, then removes the
/// record. Each leftover gets its program's `stop-wait-secs` (from `config`) before SIGKILL,
/// which then goes to whatever is left of it: the leader, the rest of its process group (even
/// if the leader exited first) and descendants that left the group.
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
    let boot = svc_platform::boot_id();
    let records = records.into_iter().filter(|r| match (&r.boot, &boot) {
        (Some(then), Some(now)) if then != now => {
            tracing::debug!("{}: recorded before a reboot; nothing to stop", r.name);
            false
        }
        _ => true,
    });
    let table = svc_platform::process_table().ok();
    let mut left: Vec<Leftover> =
        records.into_iter().map(|r| Leftover::find(r, table.as_deref())).filter(|l| !l.is_empty()).collect();
    let found: Vec<String> = left.iter().map(|l| l.record.name.clone()).collect();
    for l in &left {
        tracing::warn!(
            "{}: pid {} survived the previous daemon{}; stopping it before starting anew",
            l.record.name,
            l.record.pid,
            if l.leader { "" } else { " (its group, without the leader)" }
        );
        l.signal(Signal::SIGTERM);
        l.signal(Signal::SIGCONT);
    }
    let grace = left
        .iter()
        .map(|l| config.programs.iter().find(|p| p.name == l.record.name).map_or(DEFAULT_GRACE, |p| p.stop_wait))
        .max()
        .unwrap_or(DEFAULT_GRACE);
    let deadline = Instant::now() + grace;
    // These are not our children (they were re-parented when the old daemon died), so
    // there is no exit notification to wait for; start-up is the one place svc polls.
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let table = svc_platform::process_table().ok();
        for l in &mut left {
            l.refresh(table.as_deref());
        }
        left.retain(|l| !l.is_empty());
    }
    for l in &left {
        tracing::warn!("{}: pid {} (or its group) ignored SIGTERM; sending SIGKILL", l.record.name, l.record.pid);
        l.signal(Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(path);
    found
}
