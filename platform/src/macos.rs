//! macOS: `getpeereid` + `LOCAL_PEERPID`, the `kern.maxfilesperproc` cap on file descriptors, the
//! per-user `confstr` temp dir, `~/Library` paths, start times from `proc_pidinfo`. There is no
//! subreaper and no parent-death signal.

use crate::unix_common::esrch_to_not_found;
use crate::{Error, PeerCred};
use nix::sys::socket::{getsockopt, sockopt::LocalPeerPid};
use std::ffi::OsString;
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::ptr;

pub const OS_NAME: &str = "macOS";
pub const SUN_PATH_LEN: usize = 104;
pub const HAS_PARENT_DEATH_SIGNAL: bool = false;

/// `OPEN_MAX` from `<sys/syslimits.h>` (libc does not export it for Apple): the documented ceiling
/// for `RLIMIT_NOFILE` when `kern.maxfilesperproc` cannot be read.
const OPEN_MAX: u64 = 10240;

pub fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let (uid, gid) = nix::unistd::getpeereid(fd).map_err(io::Error::from)?;
    // Best effort: the uid check does not depend on the pid.
    let pid = getsockopt(&fd, LocalPeerPid).ok().filter(|&p| p > 0);
    Ok(PeerCred { uid: uid.as_raw(), gid: gid.as_raw(), pid })
}

pub fn become_subreaper() -> Result<(), Error> {
    Err(Error::Unsupported { what: "becoming the reaper of orphaned descendants" })
}

pub fn child_set_parent_death_signal(_signal: i32) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// setrlimit refuses a soft NOFILE above `kern.maxfilesperproc` with EINVAL, even though the hard
/// limit usually reads as RLIM_INFINITY, so the target must be capped first.
pub fn raise_nofile_limit() -> Result<(u64, u64), Error> {
    crate::unix_common::raise_nofile_to(Some(max_files_per_proc().unwrap_or(OPEN_MAX)))
}

fn max_files_per_proc() -> Option<u64> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>();
    // SAFETY: the name is NUL-terminated; value is valid for len bytes; no new value is set.
    let rc = unsafe {
        libc::sysctlbyname(c"kern.maxfilesperproc".as_ptr(), (&raw mut value).cast(), &mut len, ptr::null_mut(), 0)
    };
    if rc != 0 {
        return None;
    }
    u64::try_from(value).ok().filter(|&v| v > 0)
}

/// `$(getconf DARWIN_USER_TEMP_DIR)/svc`: the per-user `/var/folders/…/T/`, which unlike `$TMPDIR`
/// is there for launchd jobs too. Falls back to `/tmp/svc-UID`, still checked by
/// `ensure_private_dir`.
pub fn private_temp_dir() -> PathBuf {
    darwin_user_temp_dir().map_or_else(crate::unix_common::tmp_svc_uid, |d| d.join("svc"))
}

fn darwin_user_temp_dir() -> Option<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: buf is valid for buf.len() bytes; confstr writes at most that many, NUL included,
    // and returns the size it needed (NUL included), or 0 on error.
    let needed = unsafe { libc::confstr(libc::_CS_DARWIN_USER_TEMP_DIR, buf.as_mut_ptr().cast(), buf.len()) };
    if needed == 0 || needed > buf.len() {
        return None;
    }
    buf.truncate(needed - 1);
    if buf.first() != Some(&b'/') {
        return None;
    }
    Some(PathBuf::from(OsString::from_vec(buf)))
}

/// macOS has no state dir; Application Support is where per-user daemon state belongs.
pub fn default_state_dir(home: &Path, _xdg_state: Option<&Path>) -> PathBuf {
    home.join("Library/Application Support/svc")
}

/// `~/Library/Logs` is where Console.app looks for per-user logs.
pub fn default_log_dir(home: &Path, _state_dir: &Path) -> PathBuf {
    home.join("Library/Logs/svc")
}

/// Microseconds since the epoch at which the process started, as recorded by the kernel at fork.
pub fn process_start_time(pid: i32) -> io::Result<u64> {
    bsd_info(pid, false).map(|info| start_of(&info))
}

/// The one computation behind both [`process_start_time`] and the `start_time` of
/// [`process_table`] rows.
fn start_of(info: &libc::proc_bsdinfo) -> u64 {
    info.pbi_start_tvsec.saturating_mul(1_000_000).saturating_add(info.pbi_start_tvusec)
}

/// `proc_pidinfo(PROC_PIDTBSDINFO)`. With `zombies`, the kernel also answers for processes that
/// exited but were not reaped (a non-zero `arg` makes it look them up too).
fn bsd_info(pid: i32, zombies: bool) -> io::Result<libc::proc_bsdinfo> {
    let mut info = MaybeUninit::<libc::proc_bsdinfo>::zeroed();
    let size = size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: info is valid for size bytes; proc_pidinfo writes at most that many and returns
    // how many it wrote (0 or less on error, with errno set).
    let n =
        unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDTBSDINFO, u64::from(zombies), info.as_mut_ptr().cast(), size) };
    if n <= 0 {
        return Err(esrch_to_not_found(io::Error::last_os_error()));
    }
    if n != size {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "proc_pidinfo: short proc_bsdinfo"));
    }
    // SAFETY: the kernel filled all of it (checked above), and it is plain integers.
    Ok(unsafe { info.assume_init() })
}

/// Every pid from `proc_listallpids`, then `PROC_PIDTBSDINFO` for each. Processes of other users
/// answer EPERM and processes that exited in between answer ESRCH: both are left out.
pub fn process_table() -> io::Result<Vec<crate::ProcEntry>> {
    let mut out = Vec::new();
    // Pid 0 is the kernel, which process_start_time refuses; leave it out for the same reason.
    for pid in all_pids()?.into_iter().filter(|&p| p > 0) {
        let Ok(info) = bsd_info(pid, true) else { continue };
        let (Ok(ppid), Ok(pgid)) = (i32::try_from(info.pbi_ppid), i32::try_from(info.pbi_pgid)) else { continue };
        if i32::try_from(info.pbi_pid) != Ok(pid) {
            continue;
        }
        out.push(crate::ProcEntry {
            pid,
            ppid,
            pgid,
            start_time: start_of(&info),
            zombie: info.pbi_status == libc::SZOMB,
        });
    }
    Ok(out)
}

/// `proc_listallpids`, retried with a larger buffer while the answer fills the buffer.
fn all_pids() -> io::Result<Vec<libc::pid_t>> {
    for _ in 0..5 {
        // SAFETY: a null buffer asks only for an estimate of the number of pids.
        let estimate = unsafe { libc::proc_listallpids(ptr::null_mut(), 0) };
        let estimate = usize::try_from(estimate).map_err(|_| io::Error::last_os_error())?;
        // Slack for processes forked between the two calls.
        let cap = estimate + estimate / 4 + 64;
        let mut pids: Vec<libc::pid_t> = vec![0; cap];
        let bytes = libc::c_int::try_from(cap * size_of::<libc::pid_t>())
            .map_err(|_| io::Error::other("proc_listallpids: too many processes"))?;
        // SAFETY: pids is valid for bytes bytes; the call writes at most that many and returns
        // the number of pids written (negative on error, with errno set).
        let got = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast(), bytes) };
        let got = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
        // A full buffer may mean pids were cut off: ask again.
        if got < cap {
            pids.truncate(got);
            return Ok(pids);
        }
    }
    Err(io::Error::other("proc_listallpids: the process count kept growing"))
}

/// `mach_timebase_info_data_t` from `<mach/mach_time.h>`. Declared here because libc's copy is
/// deprecated in favour of another crate, for one call.
#[repr(C)]
struct Timebase {
    numer: u32,
    denom: u32,
}

unsafe extern "C" {
    fn mach_timebase_info(info: *mut Timebase) -> libc::c_int;
}

/// Nanoseconds per Mach absolute time unit as a fraction: `proc_pid_rusage` counts CPU time
/// in those units, which are nanoseconds on Intel but 125/3 ns on Apple silicon.
fn timebase() -> Option<(u64, u64)> {
    let mut tb = Timebase { numer: 0, denom: 0 };
    // SAFETY: writes the two fields of tb.
    let rc = unsafe { mach_timebase_info(&raw mut tb) };
    (rc == 0 && tb.numer > 0 && tb.denom > 0).then_some((u64::from(tb.numer), u64::from(tb.denom)))
}

/// The group of `pid` from `PROC_PIDT_SHORTBSDINFO` (the small record; a non-zero `arg`
/// finds zombies too), or None for a process that is gone or not ours to see.
fn pgid_of(pid: i32) -> Option<i32> {
    let mut info = MaybeUninit::<libc::proc_bsdshortinfo>::zeroed();
    let size = size_of::<libc::proc_bsdshortinfo>() as libc::c_int;
    // SAFETY: info is valid for size bytes; proc_pidinfo writes at most that many.
    let n = unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDT_SHORTBSDINFO, 1, info.as_mut_ptr().cast(), size) };
    if n != size {
        return None;
    }
    // SAFETY: the kernel filled all of it (checked above), and it is plain integers.
    let info = unsafe { info.assume_init() };
    if i32::try_from(info.pbsi_pid) != Ok(pid) {
        return None;
    }
    i32::try_from(info.pbsi_pgid).ok()
}

/// Every pid, the group of each, then `proc_pid_rusage` (V2: own and waited-for children's
/// user and system time, resident size) for the members of groups in `want` only.
pub fn usage_rows(want: &std::collections::HashSet<i32>) -> io::Result<Vec<crate::usage::ProcUsage>> {
    let tb = timebase();
    let mut out = Vec::new();
    for pid in all_pids()?.into_iter().filter(|&p| p > 0) {
        let Some(pgid) = pgid_of(pid).filter(|g| want.contains(g)) else { continue };
        let mut ri = MaybeUninit::<libc::rusage_info_v2>::zeroed();
        // SAFETY: ri is valid for a rusage_info_v2, which is what flavor RUSAGE_INFO_V2 writes.
        let rc = unsafe { libc::proc_pid_rusage(pid, libc::RUSAGE_INFO_V2, ri.as_mut_ptr().cast()) };
        if rc != 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
                continue;
            }
            out.push(crate::usage::ProcUsage { pgid, cpu_ns: None, rss_bytes: None });
            continue;
        }
        // SAFETY: the call succeeded, so the kernel filled it; it is plain integers.
        let ri = unsafe { ri.assume_init() };
        let abs = [ri.ri_user_time, ri.ri_system_time, ri.ri_child_user_time, ri.ri_child_system_time]
            .into_iter()
            .fold(0u128, |sum, t| sum + u128::from(t));
        let cpu_ns = tb.and_then(|(numer, denom)| u64::try_from(abs * u128::from(numer) / u128::from(denom)).ok());
        out.push(crate::usage::ProcUsage { pgid, cpu_ns, rss_bytes: Some(ri.ri_resident_size) });
    }
    Ok(out)
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
    // proc_pidinfo's start times are wall-clock seconds and microseconds: unique across boots.
    None
}

pub fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: F_GETPATH writes at most PATH_MAX bytes, NUL included, into the buffer.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPATH, buf.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&buf[..len])))
}

/// XNU attaches no credentials to datagrams (no `LOCAL_CREDS`; `SCM_CREDS` is refused from
/// senders) and `LOCAL_PEERCRED`/`LOCAL_PEERPID` need a connected socket, which a socket
/// that many programs send to is not. What limits senders instead is the file system: the
/// socket file is 0600 in a 0700 directory, so only the same user can send.
pub const DATAGRAM_SENDER_PID: bool = false;
pub const DGRAM_RECV_FLAGS: libc::c_int = 0;

pub fn enable_datagram_credentials(_fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(false)
}

/// Room for a few passed descriptors, which are closed.
pub fn dgram_control_len() -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE(64) as usize }
}

pub fn cmsg_sender_pid(_level: libc::c_int, _kind: libc::c_int, _data: *const u8, _len: usize) -> Option<i32> {
    None
}
