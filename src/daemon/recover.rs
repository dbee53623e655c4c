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

/// A process found by the instance marker in its environment: a descendant of an earlier
/// generation's program, whatever became of its parent and its process group.
struct Stray {
    name: String,
    entry: svc_platform::ProcEntry,
}

impl Stray {
    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.entry.pid);
        let _ = if self.entry.pgid == self.entry.pid { killpg(pid, signal) } else { kill(pid, signal) };
    }
}

/// Processes that carry this daemon instance's marker (see [`super::spawn::INSTANCE_VAR`]):
/// started by an earlier daemon of this instance, since this one has started nothing yet. Its
/// own ancestors are spared (a shell started from a program may have run `svc up`). Empty
/// where the OS does not show other processes' environments.
fn marked(table: &[svc_platform::ProcEntry], instance: &str) -> Vec<Stray> {
    let me = std::process::id() as i32;
    let mut spared = vec![me];
    let mut at = me;
    while let Some(parent) = table.iter().find(|e| e.pid == at).map(|e| e.ppid).filter(|&p| p > 1) {
        if spared.contains(&parent) {
            break;
        }
        spared.push(parent);
        at = parent;
    }
    let mut found = Vec::new();
    for e in table.iter().filter(|e| !e.zombie && e.pid > 1 && !spared.contains(&e.pid)) {
        match svc_platform::process_env_var(e.pid, super::spawn::INSTANCE_VAR) {
            Ok(Some(value)) if value == instance => {
                let name = svc_platform::process_env_var(e.pid, "SVC_PROCESS_NAME").ok().flatten();
                found.push(Stray { name: name.unwrap_or_else(|| "?".into()), entry: *e });
            }
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                tracing::debug!("{e}: leftovers are found by the crash record only");
                return Vec::new();
            }
            // Another's, gone meanwhile, or not ours to read.
            _ => {}
        }
    }
    found
}

/// Stops whatever a previous daemon of this `instance` left running, then removes the record
/// at `path`. Two ways find leftovers: the record (each program's leader by pid **and** start
/// time, then its process group and descendants), and the instance marker in the environment
/// of every process an earlier daemon started, which also finds workers that left their group
/// (`setsid`) and were re-parented to init, and works when the record could not be written.
/// Each leftover gets its program's `stop-wait-secs` (from `config`) before SIGKILL.
/// Returns the names of the programs that were found still running.
pub fn stop_leftovers(path: &Path, config: &crate::config::Config, instance: &str) -> Vec<String> {
    let records: Vec<Record> = match std::fs::read_to_string(path) {
        Err(_) => Vec::new(),
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!("ignoring unreadable {}: {e}", path.display());
            Vec::new()
        }),
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
    let mut strays: Vec<Stray> = marked(table.as_deref().unwrap_or_default(), instance);
    strays.retain(|s| {
        !left.iter().any(|l| (l.leader && l.record.pid as i32 == s.entry.pid) || l.members.contains(&s.entry))
    });
    let mut found: Vec<String> = left.iter().map(|l| l.record.name.clone()).collect();
    for s in &strays {
        if !found.contains(&s.name) {
            found.push(s.name.clone());
        }
    }
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
    for s in &strays {
        tracing::warn!(
            "{}: process {} (started by it under the previous daemon) survived; stopping it",
            s.name,
            s.entry.pid
        );
        s.signal(Signal::SIGTERM);
        s.signal(Signal::SIGCONT);
    }
    let grace = found
        .iter()
        .map(|name| config.programs.iter().find(|p| p.name == *name).map_or(DEFAULT_GRACE, |p| p.stop_wait))
        .max()
        .unwrap_or(DEFAULT_GRACE);
    let deadline = Instant::now() + grace;
    // These are not our children (they were re-parented when the old daemon died), so
    // there is no exit notification to wait for; start-up is the one place svc polls.
    while !(left.is_empty() && strays.is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let table = svc_platform::process_table().ok();
        for l in &mut left {
            l.refresh(table.as_deref());
        }
        left.retain(|l| !l.is_empty());
        strays.retain(|s| running(table.as_deref(), s.entry.pid, s.entry.start_time));
    }
    for l in &left {
        tracing::warn!("{}: pid {} (or its group) ignored SIGTERM; sending SIGKILL", l.record.name, l.record.pid);
        l.signal(Signal::SIGKILL);
    }
    for s in &strays {
        tracing::warn!("{}: process {} ignored SIGTERM; sending SIGKILL", s.name, s.entry.pid);
        s.signal(Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(path);
    found
}
