//! Everything in svc that differs by operating system, behind one small API.
//!
//! The rest of svc never writes `#[cfg(target_os = ...)]`: it calls the functions here. Each supported OS
//! (Linux, FreeBSD, macOS, illumos) has its own module implementing the same private `os` API; a
//! capability an OS lacks is reported as [`Error::Unsupported`], never silently skipped.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(target_os = "freebsd", path = "freebsd.rs")]
#[cfg_attr(target_os = "macos", path = "macos.rs")]
#[cfg_attr(any(target_os = "illumos", target_os = "solaris"), path = "illumos.rs")]
mod os;

mod dgram;
mod heap;
mod notify;
mod output;
mod rlimit;
pub mod service;
mod signals;
mod unix;
mod unix_common;
mod usage;

pub use dgram::{DATAGRAM_SENDER_PID, ReceivedDatagram, enable_datagram_credentials, recv_datagram_with_pid};
pub use notify::{NOTIFY_SOCKET_ENV, notify_ready, notify_reloading, notify_state, notify_stopping, notify_to};
pub use rlimit::{RLIM_UNLIMITED, Rlimit, child_set_rlimit, rlimit_supported};
pub use signals::{signal_from_name, signal_name};
pub use unix::{PrivateDirError, ensure_group_dir, ensure_private_dir, ensure_traverse_dir};
pub use usage::GroupUsage;

/// The name of the OS svc was built for, as users know it.
pub const OS_NAME: &str = os::OS_NAME;

/// Longest usable socket path in bytes (sun_path size minus the trailing NUL).
pub const SOCKET_PATH_MAX: usize = os::SUN_PATH_LEN - 1;

/// Errors from the platform layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS has no such facility; callers decide whether that matters.
    #[error("{what} is not supported on {os}", os = OS_NAME)]
    Unsupported {
        /// The capability that is missing.
        what: &'static str,
    },
    /// The facility exists but the call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being attempted.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// Credentials of the process at the other end of a Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Effective uid of the peer.
    pub uid: u32,
    /// Effective gid of the peer.
    pub gid: u32,
    /// Pid of the peer, where the OS reports it.
    pub pid: Option<i32>,
}

/// Credentials of the peer of a connected Unix stream socket.
pub fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    os::peer_credentials(fd)
}

/// Makes this process the reaper of its orphaned descendants, so that a program's
/// double-forked children are re-parented to svc instead of init.
///
/// Linux: `PR_SET_CHILD_SUBREAPER`. FreeBSD: `PROC_REAP_ACQUIRE` (already being a reaper counts
/// as success). macOS and illumos: [`Error::Unsupported`].
pub fn become_subreaper() -> Result<(), Error> {
    os::become_subreaper()
}

/// True when [`child_set_parent_death_signal`] does something on this OS.
pub const HAS_PARENT_DEATH_SIGNAL: bool = os::HAS_PARENT_DEATH_SIGNAL;

/// Asks the kernel to send `signal` to the calling process when its parent dies.
///
/// Meant for `pre_exec`: it only makes async-signal-safe system calls. On Linux the signal fires
/// when the *thread* that forked exits, so spawn from a long-lived thread; FreeBSD's
/// `PROC_PDEATHSIG_CTL` fires when the parent process exits. Returns
/// `ErrorKind::Unsupported` where the OS has no such facility (check [`HAS_PARENT_DEATH_SIGNAL`]).
pub fn child_set_parent_death_signal(signal: i32) -> io::Result<()> {
    os::child_set_parent_death_signal(signal)
}

/// Resets every signal's disposition to the default, so that programs never inherit the
/// daemon's ignored or handled signals. Async-signal-safe: meant for `pre_exec`.
pub fn child_reset_signal_dispositions() {
    os::child_reset_signal_dispositions()
}

/// Resets every signal the daemon inherited as *ignored* (say from `nohup`) to its default
/// action, SIGPIPE excepted (the daemon must survive writing to a client that hung up).
/// Programs are spawned with `posix_spawn`, which resets only the mask and SIGPIPE, so this
/// is what keeps an inherited "ignore" from reaching them. Returns how many were reset.
pub fn reset_ignored_signals() -> usize {
    os::reset_ignored_signals()
}

/// Closes every inherited descriptor above stderr, so that neither the daemon (which may run
/// for months) nor its programs keep what a shell, a terminal emulator or cargo left open. Call
/// first thing in the daemon, before it opens anything of its own. Returns how many it closed.
pub fn close_inherited_fds() -> usize {
    os::close_inherited_fds()
}

/// Returns freed heap memory to the OS (glibc keeps it otherwise: a config parse of 1000
/// programs leaves megabytes of free but resident heap behind). Returns whether the C library
/// offers this; elsewhere it is `false` and nothing happens.
pub fn release_free_memory() -> bool {
    heap::release_free_memory()
}

/// Tunes the C library's allocator for a long-running daemon: every thread allocates from one
/// heap (glibc gives each new thread an arena of its own, which stays resident after the
/// thread is idle: ~120 KB for the daemon's spawner threads), and large temporary blocks are
/// mapped and unmapped on their own instead of growing the heap for good. Returns whether the
/// C library has such settings; elsewhere it is `false` and nothing happens.
pub fn tune_for_daemon() -> bool {
    heap::tune_for_daemon()
}

/// How many descriptors this process has open. Linux reads `/proc/self/fd`; elsewhere every
/// number below the soft limit is probed (cheap exactly when it matters: the daemon asks only
/// when the limit is tight).
pub fn open_fd_count() -> usize {
    os::open_fd_count()
}

/// The soft RLIMIT_NOFILE: how many descriptors this process may have open.
pub fn nofile_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| unix_common::rlim_to_u64(soft))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, returning `(old_soft, new_soft)`.
///
/// A daemon supervising 1000 programs holds two pipes each; the default soft limit (often 1024)
/// is far too low. macOS caps the soft limit at `kern.maxfilesperproc` even when the hard limit is
/// "unlimited", which its module handles.
pub fn raise_nofile_limit() -> Result<(u64, u64), Error> {
    os::raise_nofile_limit()
}

/// The per-user private temporary directory used for the socket when no runtime dir is usable:
/// `/tmp/svc-UID` on Linux, FreeBSD and illumos; the per-user `confstr` temp dir on macOS.
pub fn private_temp_dir() -> PathBuf {
    os::private_temp_dir()
}

/// Where svc keeps its state (lock, daemon.json) when the user set nothing.
///
/// `xdg_state` is what the `directories` crate found (None on macOS, which has no state dir).
pub fn default_state_dir(home: &Path, xdg_state: Option<&Path>) -> PathBuf {
    os::default_state_dir(home, xdg_state)
}

/// Where svc writes program logs when the user set nothing.
pub fn default_log_dir(home: &Path, state_dir: &Path) -> PathBuf {
    os::default_log_dir(home, state_dir)
}

/// One row of the process table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcEntry {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// The same fingerprint as [`process_start_time`].
    pub start_time: u64,
    /// Exited but not yet reaped.
    pub zombie: bool,
}

/// Every process this user can see, for finding a program's descendants (including those
/// that left its process group with `setsid`) and leftovers of a killed daemon.
pub fn process_table() -> io::Result<Vec<ProcEntry>> {
    os::process_table()
}

/// The descendants of `root` in `table` (children, grandchildren, ...), not `root` itself.
pub fn descendants(table: &[ProcEntry], root: i32) -> Vec<ProcEntry> {
    let mut out: Vec<ProcEntry> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for e in table.iter().filter(|e| e.ppid == parent && e.pid != root) {
            if !out.iter().any(|o| o.pid == e.pid) {
                out.push(*e);
                frontier.push(e.pid);
            }
        }
    }
    out
}

/// CPU time and resident memory of each process group in `pgids` (a program's leader pid is its
/// group id), in the same order, from ONE pass over the process table however many groups are
/// asked for. Each figure sums every member of the group, zombies included; a figure the OS
/// will not give, or a group with no member left, is `None`, never a guess. Ids that are not
/// positive get `None` without a scan.
///
/// Linux: `/proc/PID/stat` (utime, stime, cutime, cstime; rss). FreeBSD: `kern.proc.proc`
/// (`ki_rusage`, `ki_childtime`, `ki_rssize`). macOS: `proc_listallpids`, then
/// `PROC_PIDT_SHORTBSDINFO` for the group and `proc_pid_rusage` for the members. illumos:
/// `/proc/PID/psinfo` (`pr_time`, `pr_ctime`, `pr_rssize`).
pub fn group_usage(pgids: &[i32]) -> io::Result<Vec<GroupUsage>> {
    usage::group_usage(pgids)
}

/// An opaque fingerprint of when process `pid` started, stable for the life of the process.
///
/// Record it next to a pid; if a later call gives a different value (or `NotFound`), the pid now
/// belongs to another process and must not be signalled. Only compare values taken on the same
/// machine during the same boot. Errors: `ErrorKind::NotFound` when no such process exists,
/// `InvalidInput` for a pid that is not positive.
///
/// Linux: ticks since boot from `/proc/PID/stat`. FreeBSD: `kern.proc.pid` `ki_start` minus
/// `kern.boottime`. macOS: `proc_pidinfo(PROC_PIDTBSDINFO)`. illumos: `pr_start` of `/proc/PID/psinfo`.
pub fn process_start_time(pid: i32) -> io::Result<u64> {
    if pid <= 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not a process id: {pid}")));
    }
    os::process_start_time(pid)
}

/// The path `fd` was opened by, where the OS can tell (Linux and illumos: `/proc`; macOS:
/// `F_GETPATH`; FreeBSD: `Unsupported`). The name may since have been removed or reused:
/// compare the file it opens with `fd` before trusting it.
pub fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    os::fd_path(fd)
}

/// Blocks until nobody is left to read what is written to `fd`: the reader of a pipe or the
/// peer of a socket has gone (`svc logs -f | head -1` after `head` exits), or a terminal hung
/// up. Never returns for outputs that cannot go away (a regular file). For a thread of its
/// own: a follower waiting for new output learns at once that its output is gone.
pub fn wait_output_closed(fd: BorrowedFd<'_>) -> io::Result<()> {
    output::wait_closed(fd)
}

/// Identifies the current boot where process start times are counted from boot (Linux:
/// `/proc/sys/kernel/random/boot_id`; FreeBSD: `kern.boottime`), so that a start time
/// recorded before a reboot is never taken for one after it. `None` where start times are
/// wall-clock times already (macOS, illumos) or the OS does not say.
pub fn boot_id() -> Option<String> {
    os::boot_id()
}

/// The value of the environment variable `name` that process `pid` (one of ours) was started
/// with, or `None` if it has no such variable. Used to tell which program an orphan adopted by
/// svc came from. Linux: `/proc/PID/environ`; FreeBSD: `kern.proc.env`; macOS and illumos:
/// `ErrorKind::Unsupported` (neither lets svc adopt orphans, which is what this is for).
pub fn process_env_var(pid: i32, name: &str) -> io::Result<Option<String>> {
    if pid <= 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not a process id: {pid}")));
    }
    let env = os::process_environ(pid)?;
    Ok(env_var_in(&env, name))
}

/// `name`'s value in a NUL-separated `KEY=value` block.
fn env_var_in(env: &[u8], name: &str) -> Option<String> {
    env.split(|&b| b == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

#[cfg(test)]
mod env_tests {
    use super::*;

    #[test]
    fn env_var_in_finds_exact_names_only() {
        let env = b"PATH=/bin\0SVC_PROCESS_NAME_X=no\0SVC_PROCESS_NAME=web\0EMPTY=\0";
        assert_eq!(env_var_in(env, "SVC_PROCESS_NAME").as_deref(), Some("web"));
        assert_eq!(env_var_in(env, "EMPTY").as_deref(), Some(""));
        assert_eq!(env_var_in(env, "PAT"), None);
        assert_eq!(env_var_in(env, "MISSING"), None);
    }

    #[test]
    fn env_of_a_child_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("SVC_PLATFORM_TEST", "marked value")
            .spawn()
            .expect("sleep");
        let pid = child.id() as i32;
        // The spawner returns once the child's exec is past its point of no return, which is
        // before the kernel has set up the new environment: until then it reads as empty.
        let mut found = process_env_var(pid, "SVC_PLATFORM_TEST");
        for _ in 0..250 {
            if !matches!(found, Ok(None)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            found = process_env_var(pid, "SVC_PLATFORM_TEST");
        }
        let _ = child.kill();
        let _ = child.wait();
        match found {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
            other => assert_eq!(other.expect("environ").as_deref(), Some("marked value")),
        }
        assert!(process_env_var(0, "X").is_err());
    }
}
