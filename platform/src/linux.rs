//! Linux: `SO_PEERCRED`, prctl subreaper and parent-death signal, start times from `/proc`.

use crate::{Error, PeerCred};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

pub const OS_NAME: &str = "Linux";
pub const SUN_PATH_LEN: usize = 108;
pub const HAS_PARENT_DEATH_SIGNAL: bool = true;

pub fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let c = getsockopt(&fd, PeerCredentials).map_err(io::Error::from)?;
    Ok(PeerCred { uid: c.uid(), gid: c.gid(), pid: Some(c.pid()) })
}

pub fn become_subreaper() -> Result<(), Error> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::Io { what: "prctl(PR_SET_CHILD_SUBREAPER)", source: e.into() })
}

pub fn child_set_parent_death_signal(signal: i32) -> io::Result<()> {
    // Raw prctl: nix's wrapper takes a Signal enum, and this runs between fork and exec.
    // SAFETY: prctl with integer arguments has no memory effects.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

pub fn raise_nofile_limit() -> Result<(u64, u64), Error> {
    crate::unix_common::raise_nofile_to(None)
}

pub fn private_temp_dir() -> PathBuf {
    crate::unix_common::tmp_svc_uid()
}

pub fn default_state_dir(home: &Path, xdg_state: Option<&Path>) -> PathBuf {
    crate::unix_common::xdg_state_dir(home, xdg_state)
}

pub fn default_log_dir(_home: &Path, state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

/// Field 22 of `/proc/PID/stat`: clock ticks from boot to the process's creation. It never
/// changes for the life of the process, so a different value means the pid was reused.
pub fn process_start_time(pid: i32) -> io::Result<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).map_err(crate::unix_common::esrch_to_not_found)?;
    parse_stat_start_time(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unexpected format of /proc/{pid}/stat")))
}

/// The command name (field 2) is in parentheses and may itself hold spaces and `)`, so fields are
/// counted from the *last* `)`.
fn parse_stat_start_time(stat: &[u8]) -> Option<u64> {
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    // After ")" come field 3 (state) onwards, so field 22 is the 20th.
    let field = after.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty()).nth(19)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Every process in `/proc`, from `/proc/PID/stat` (pid, ppid, pgrp, start time).
pub fn process_table() -> io::Result<Vec<crate::ProcEntry>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        // A process may exit between readdir and read: skip it.
        let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else { continue };
        if let Some(e) = parse_stat_entry(pid, &stat) {
            out.push(e);
        }
    }
    Ok(out)
}

fn parse_stat_entry(pid: i32, stat: &[u8]) -> Option<crate::ProcEntry> {
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let fields: Vec<&[u8]> = after.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty()).collect();
    let num = |i: usize| -> Option<i64> { std::str::from_utf8(fields.get(i)?).ok()?.parse().ok() };
    Some(crate::ProcEntry {
        pid,
        ppid: num(1)? as i32,
        pgid: num(2)? as i32,
        start_time: num(19)? as u64,
        zombie: fields.first() == Some(&&b"Z"[..]),
    })
}

/// One pass over `/proc`: for each process whose group is in `want`, its CPU time and RSS from
/// `/proc/PID/stat` (one small read per process; see `group_usage` in the facade).
///
/// RSS, not PSS: PSS needs `smaps_rollup`, which walks the process's page tables and costs
/// far more than `stat` for every process, at every status request.
pub fn usage_rows(want: &std::collections::HashSet<i32>) -> io::Result<Vec<crate::usage::ProcUsage>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        if let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) {
            pids.push(pid);
        }
    }
    // Reading a stat file costs ~10 us of kernel time, most of a status with CPU and memory at
    // 1000 programs: a few threads read their share each (the caller is a blocking thread
    // already, never the daemon's loop).
    const PER_THREAD: usize = 256;
    let threads =
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(4).min(pids.len().div_ceil(PER_THREAD));
    if threads <= 1 {
        return Ok(read_usage(&pids, want));
    }
    let chunk = pids.len().div_ceil(threads);
    Ok(std::thread::scope(|s| {
        let parts: Vec<_> = pids.chunks(chunk).map(|part| s.spawn(move || read_usage(part, want))).collect();
        parts.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    }))
}

/// The rows of `pids` whose group is in `want`; a process that exits meanwhile is skipped.
fn read_usage(pids: &[i32], want: &std::collections::HashSet<i32>) -> Vec<crate::usage::ProcUsage> {
    use std::io::Read;
    // SAFETY: sysconf has no memory effects.
    let (hz, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0);
    let page = u64::try_from(page).ok().filter(|&p| p > 0);
    let mut out = Vec::new();
    // A stat line is a few hundred bytes; one buffer for all avoids an allocation per process.
    let mut buf = vec![0u8; 4096];
    let mut path = String::new();
    for &pid in pids {
        path.clear();
        use std::fmt::Write;
        let _ = write!(path, "/proc/{pid}/stat");
        // A process may exit between readdir and read: skip it.
        let Ok(mut f) = std::fs::File::open(&path) else { continue };
        let Ok(n) = f.read(&mut buf) else { continue };
        let Some(f) = parse_stat_usage(&buf[..n]) else { continue };
        if !want.contains(&f.pgid) {
            continue;
        }
        out.push(crate::usage::ProcUsage {
            pgid: f.pgid,
            cpu_ns: hz.map(|hz| ticks_to_ns(f.ticks, hz)),
            rss_bytes: page.map(|p| f.rss_pages.saturating_mul(p)),
        });
    }
    out
}

/// The fields of `/proc/PID/stat` that `usage_rows` needs.
#[derive(Debug, PartialEq, Eq)]
struct StatUsage {
    pgid: i32,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
    rss_pages: u64,
}

/// Fields 5 (pgrp), 14-17 (utime, stime, cutime, cstime) and 24 (rss), counted from the last
/// `)` like `parse_stat_start_time`, without collecting the fields.
fn parse_stat_usage(stat: &[u8]) -> Option<StatUsage> {
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let mut fields = after.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty());
    let num = |f: &[u8]| -> Option<i64> { std::str::from_utf8(f).ok()?.parse().ok() };
    // After ")" come field 3 (state) onwards, so field N is index N - 3.
    let pgid = i32::try_from(num(fields.nth(2)?)?).ok()?;
    let mut ticks: u64 = 0;
    for f in fields.by_ref().skip(8).take(4) {
        // cutime and cstime are signed in the kernel's format; a negative value is nonsense.
        ticks = ticks.saturating_add(u64::try_from(num(f)?).ok()?);
    }
    let rss_pages = u64::try_from(num(fields.nth(6)?)?).unwrap_or(0);
    Some(StatUsage { pgid, ticks, rss_pages })
}

fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(hz)).unwrap_or(u64::MAX)
}

/// Resets every signal to its default action, through the raw system call: glibc's
/// `sigaction` refuses signals 32 and 33 (its own), yet an inherited "ignore" on them would
/// leak into programs. Async-signal-safe.
pub fn child_reset_signal_dispositions() {
    // The kernel's struct sigaction with SIG_DFL, no flags and an empty mask is all zeroes,
    // whatever the architecture's field layout; 32 bytes cover every layout.
    let act = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads `act` (valid, zeroed) and writes nothing (null old action).
        unsafe {
            libc::syscall(libc::SYS_rt_sigaction, sig, act.as_ptr(), std::ptr::null::<u8>(), 8usize);
        }
    }
}

/// Resets every *ignored* signal but SIGPIPE to its default action, through the raw system
/// call (glibc hides 32 and 33). Handlers are left alone: exec resets them in children anyway.
pub fn reset_ignored_signals() -> usize {
    let mut reset = 0;
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGPIPE {
            continue;
        }
        // The kernel's sigaction starts with the handler, whatever the architecture.
        let mut old = [0u64; 4];
        // SAFETY: rt_sigaction writes at most the kernel sigaction (32 bytes) into `old`.
        let rc =
            unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, std::ptr::null::<u8>(), old.as_mut_ptr(), 8usize) };
        if rc == 0 && old[0] == libc::SIG_IGN as u64 {
            // SAFETY: as in child_reset_signal_dispositions.
            unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), std::ptr::null::<u8>(), 8usize) };
            reset += 1;
        }
    }
    reset
}

/// Marks every descriptor above stderr close-on-exec in one `close_range` call (Linux 5.11+),
/// falling back to the descriptors listed in `/proc/self/fd`.
pub fn open_fd_count() -> usize {
    // Minus the directory's own descriptor.
    std::fs::read_dir("/proc/self/fd")
        .map_or_else(|_| crate::unix_common::open_fd_count(), |d| d.count().saturating_sub(1))
}

pub fn close_inherited_fds() -> usize {
    let count = || std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(4));
    let before = count();
    // SAFETY: called before the daemon owns any descriptor above stderr (see the facade).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, libc::c_uint::MAX, 0 as libc::c_uint) };
    if rc == 0 {
        return before;
    }
    crate::unix_common::close_inherited_fds()
}

pub fn process_environ(pid: i32) -> io::Result<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/environ"))
}

pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_owned())
}

pub fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

pub const DATAGRAM_SENDER_PID: bool = true;
/// Received descriptors are closed at once anyway; close-on-exec covers the moment before.
pub const DGRAM_RECV_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;

/// `SO_PASSCRED`: the kernel attaches the sender's `struct ucred` to every datagram, whether or
/// not the sender sent credentials itself (a sender may claim another pid only with
/// CAP_SYS_ADMIN).
pub fn enable_datagram_credentials(fd: BorrowedFd<'_>) -> io::Result<bool> {
    nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::PassCred, &true).map_err(io::Error::from)?;
    Ok(true)
}

/// Room for the credentials plus a few passed descriptors (which are closed); descriptors that
/// do not fit are closed by the kernel.
pub fn dgram_control_len() -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE(size_of::<libc::ucred>() as u32) as usize + libc::CMSG_SPACE(64) as usize }
}

pub fn cmsg_sender_pid(level: libc::c_int, kind: libc::c_int, data: *const u8, len: usize) -> Option<i32> {
    if level != libc::SOL_SOCKET || kind != libc::SCM_CREDENTIALS || len < size_of::<libc::ucred>() {
        return None;
    }
    // SAFETY: len bytes at data belong to this control message, checked to hold a ucred.
    let cred = unsafe { data.cast::<libc::ucred>().read_unaligned() };
    Some(cred.pid)
}

#[cfg(test)]
mod tests {
    use super::{StatUsage, parse_stat_start_time, parse_stat_usage};

    #[test]
    fn stat_with_awkward_command_name() {
        let line = b"42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0";
        assert_eq!(parse_stat_start_time(line), Some(987654));
        assert_eq!(parse_stat_start_time(b"42 (x) S 1"), None);
    }

    #[test]
    fn stat_usage_fields() {
        // pgrp 42; utime 1, stime 2, cutime 3, cstime 4; rss 250 pages.
        let line = b"42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 3 4 20 0 1 0 987654 1000 250 0";
        assert_eq!(parse_stat_usage(line), Some(StatUsage { pgid: 42, ticks: 10, rss_pages: 250 }));
        assert_eq!(parse_stat_usage(b"42 (x) S 1 42"), None);
    }
}
