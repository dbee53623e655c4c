//! illumos: `getpeerucred`, start times from `/proc/PID/psinfo`. There is no subreaper (process
//! contracts are the native tool and are out of scope) and no parent-death signal.

use crate::unix_common::esrch_to_not_found;
use crate::{Error, PeerCred};
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::ptr;

pub const OS_NAME: &str = "illumos";
pub const SUN_PATH_LEN: usize = 108;
pub const HAS_PARENT_DEATH_SIGNAL: bool = false;

/// Frees a `ucred_t` that `getpeerucred` allocated, on every path out.
struct Ucred(*mut libc::ucred_t);

impl Drop for Ucred {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful getpeerucred and is freed exactly once.
        unsafe { libc::ucred_free(self.0) }
    }
}

pub fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let mut raw: *mut libc::ucred_t = ptr::null_mut();
    // SAFETY: with *raw == NULL, getpeerucred allocates a ucred_t and stores it in raw.
    if unsafe { libc::getpeerucred(fd.as_raw_fd(), &mut raw) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let cred = Ucred(raw);
    // SAFETY: cred.0 is a valid ucred_t until cred is dropped at the end of this function.
    let (uid, gid, pid) =
        unsafe { (libc::ucred_geteuid(cred.0), libc::ucred_getegid(cred.0), libc::ucred_getpid(cred.0)) };
    // The getters return -1 for "not available"; a uid we cannot know must not pass a uid check.
    if uid == libc::uid_t::MAX || gid == libc::gid_t::MAX {
        return Err(io::Error::other("getpeerucred: peer uid/gid not available"));
    }
    Ok(PeerCred { uid, gid, pid: (pid > 0).then_some(pid) })
}

pub fn become_subreaper() -> Result<(), Error> {
    Err(Error::Unsupported { what: "becoming the reaper of orphaned descendants" })
}

pub fn child_set_parent_death_signal(_signal: i32) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
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

/// The start of `psinfo_t` from `<sys/procfs.h>`, up to `pr_ctime`. libc does not define
/// `psinfo_t`; the prefix has been stable since Solaris 2.6, and `repr(C)` with the C types
/// reproduces the header's layout for both data models.
#[repr(C)]
struct PsinfoPrefix {
    pr_flag: libc::c_int,
    pr_nlwp: libc::c_int,
    pr_pid: libc::pid_t,
    pr_ppid: libc::pid_t,
    pr_pgid: libc::pid_t,
    pr_sid: libc::pid_t,
    pr_uid: libc::uid_t,
    pr_euid: libc::uid_t,
    pr_gid: libc::gid_t,
    pr_egid: libc::gid_t,
    pr_addr: libc::uintptr_t,
    pr_size: libc::size_t,
    pr_rssize: libc::size_t,
    pr_pad1: libc::size_t,
    pr_ttydev: libc::dev_t,
    pr_pctcpu: libc::c_ushort,
    pr_pctmem: libc::c_ushort,
    /// `timestruc_t`: seconds and nanoseconds since the epoch.
    pr_start: [libc::c_long; 2],
    /// User + system CPU time of this process (`timestruc_t`).
    pr_time: [libc::c_long; 2],
    /// User + system CPU time of the children it has waited for (`timestruc_t`).
    pr_ctime: [libc::c_long; 2],
}

// Hand-computed for LP64 from `psinfo_t` in illumos-gate usr/src/uts/common/sys/procfs.h
// (10 ints, 5 word-sized fields, 2 shorts, padding), for every field read here.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(offset_of!(PsinfoPrefix, pr_nlwp) == 4);
    assert!(offset_of!(PsinfoPrefix, pr_pid) == 8);
    assert!(offset_of!(PsinfoPrefix, pr_ppid) == 12);
    assert!(offset_of!(PsinfoPrefix, pr_pgid) == 16);
    assert!(offset_of!(PsinfoPrefix, pr_ttydev) == 72);
    assert!(offset_of!(PsinfoPrefix, pr_rssize) == 56);
    assert!(offset_of!(PsinfoPrefix, pr_start) == 88);
    assert!(offset_of!(PsinfoPrefix, pr_time) == 104);
    assert!(offset_of!(PsinfoPrefix, pr_ctime) == 120);
    assert!(size_of::<PsinfoPrefix>() == 136);
};

/// Nanoseconds since the epoch at which the process started (`pr_start`, recorded at fork).
pub fn process_start_time(pid: i32) -> io::Result<u64> {
    read_psinfo(pid).map(|info| start_of(&info))
}

/// The one computation behind both [`process_start_time`] and the `start_time` of
/// [`process_table`] rows.
fn start_of(info: &PsinfoPrefix) -> u64 {
    let [sec, nsec] = info.pr_start.map(|v| u64::try_from(v).unwrap_or(0));
    sec.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// The start of `/proc/PID/psinfo`, checked to be about `pid`.
fn read_psinfo(pid: i32) -> io::Result<PsinfoPrefix> {
    // Missing file: ENOENT, which std already reports as NotFound.
    let bytes = std::fs::read(format!("/proc/{pid}/psinfo")).map_err(esrch_to_not_found)?;
    if bytes.len() < size_of::<PsinfoPrefix>() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "short /proc/PID/psinfo"));
    }
    // SAFETY: the length was checked; the fields are plain integers, so any bytes are valid;
    // read_unaligned because a Vec<u8> has no alignment guarantee.
    let info = unsafe { ptr::read_unaligned(bytes.as_ptr().cast::<PsinfoPrefix>()) };
    if info.pr_pid != pid {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "/proc/PID/psinfo is for another pid"));
    }
    Ok(info)
}

/// Every numeric entry of `/proc`, from its `psinfo`. A zombie has `pr_nlwp == 0` (proc(5)).
pub fn process_table() -> io::Result<Vec<crate::ProcEntry>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        // Pid 0 is sched, which process_start_time refuses; leave it out for the same reason.
        if pid <= 0 {
            continue;
        }
        // A process may exit between readdir and read: skip it.
        let Ok(info) = read_psinfo(pid) else { continue };
        out.push(crate::ProcEntry {
            pid,
            ppid: info.pr_ppid,
            pgid: info.pr_pgid,
            start_time: start_of(&info),
            zombie: info.pr_nlwp == 0,
        });
    }
    Ok(out)
}

/// Every numeric entry of `/proc`, from its `psinfo`: for the members of groups in `want`,
/// `pr_time` + `pr_ctime` (microstate-accounted, so exact) and `pr_rssize` (KB).
pub fn usage_rows(want: &std::collections::HashSet<i32>) -> io::Result<Vec<crate::usage::ProcUsage>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if pid <= 0 {
            continue;
        }
        // A process may exit between readdir and read: skip it.
        let Ok(info) = read_psinfo(pid) else { continue };
        if !want.contains(&info.pr_pgid) {
            continue;
        }
        let cpu_ns = timestruc_ns(info.pr_time).zip(timestruc_ns(info.pr_ctime)).map(|(a, b)| a.saturating_add(b));
        let rss_bytes = u64::try_from(info.pr_rssize).ok().map(|kb| kb.saturating_mul(1024));
        out.push(crate::usage::ProcUsage { pgid: info.pr_pgid, cpu_ns, rss_bytes });
    }
    Ok(out)
}

/// A `timestruc_t` duration in nanoseconds; `None` if negative or malformed.
fn timestruc_ns([sec, nsec]: [libc::c_long; 2]) -> Option<u64> {
    let sec = u64::try_from(sec).ok()?;
    let nsec = u64::try_from(nsec).ok().filter(|&n| n < 1_000_000_000)?;
    Some(sec.saturating_mul(1_000_000_000).saturating_add(nsec))
}

/// Resets every signal to its default action. Async-signal-safe.
pub fn child_reset_signal_dispositions() {
    crate::unix_common::reset_signals_with_libc();
}

/// Resets every ignored signal but SIGPIPE to its default action.
pub fn reset_ignored_signals() -> usize {
    crate::unix_common::reset_ignored_signals_with_libc()
}

/// Marks descriptors above stderr close-on-exec, probing each number up to the limit.
pub fn open_fd_count() -> usize {
    crate::unix_common::open_fd_count()
}

pub fn close_inherited_fds() -> usize {
    crate::unix_common::close_inherited_fds()
}

pub fn process_environ(_pid: i32) -> io::Result<Vec<u8>> {
    Err(io::ErrorKind::Unsupported.into())
}

pub fn boot_id() -> Option<String> {
    // psinfo's pr_start is a wall-clock time: unique across boots.
    None
}

pub fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/path/{}", fd.as_raw_fd()))
}

pub const DATAGRAM_SENDER_PID: bool = true;
/// libc has no MSG_CMSG_CLOEXEC for illumos; received descriptors are closed right away.
pub const DGRAM_RECV_FLAGS: libc::c_int = 0;

/// `SO_RECVUCRED` (sys/socket.h; not in the libc crate): every datagram then carries the
/// sender's `ucred_t` as `SCM_UCRED`.
const SO_RECVUCRED: libc::c_int = 0x0400;

pub fn enable_datagram_credentials(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let on: libc::c_int = 1;
    // SAFETY: the option value is an int, valid for the length given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_RECVUCRED,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(true) } else { Err(io::Error::last_os_error()) }
}

/// A `ucred_t` has a size known only at run time (it holds the groups and privilege sets), plus
/// room for a few passed descriptors (which are closed).
pub fn dgram_control_len() -> usize {
    // SAFETY: ucred_size has no preconditions; CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE(libc::ucred_size() as u32) as usize + libc::CMSG_SPACE(64) as usize }
}

pub fn cmsg_sender_pid(level: libc::c_int, kind: libc::c_int, data: *const u8, len: usize) -> Option<i32> {
    // The ucred_t starts with its own size (uint32_t uc_size); the getters read within it.
    if level != libc::SOL_SOCKET || kind != libc::SCM_UCRED || len < size_of::<u32>() {
        return None;
    }
    // SAFETY: at least 4 bytes at data belong to this control message.
    let size = unsafe { data.cast::<u32>().read_unaligned() } as usize;
    if size > len {
        return None;
    }
    // SAFETY: a whole ucred_t written by the kernel, at CMSG_DATA's alignment.
    let pid = unsafe { libc::ucred_getpid(data.cast()) };
    (pid > 0).then_some(pid)
}
