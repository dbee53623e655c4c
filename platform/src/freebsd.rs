//! FreeBSD: `getpeereid` + `LOCAL_PEERCRED`, procctl reaper and parent-death signal, start times
//! from `kern.proc.pid`.

use crate::unix_common::esrch_to_not_found;
use crate::{Error, PeerCred};
use std::io;
use std::mem::{MaybeUninit, offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::ptr;

pub const OS_NAME: &str = "FreeBSD";
pub const SUN_PATH_LEN: usize = 104;
pub const HAS_PARENT_DEATH_SIGNAL: bool = true;

pub fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let (uid, gid) = nix::unistd::getpeereid(fd).map_err(io::Error::from)?;
    Ok(PeerCred { uid: uid.as_raw(), gid: gid.as_raw(), pid: peer_pid(fd) })
}

/// The peer's pid from `struct xucred`. FreeBSD 13 put `cr_pid` in what used to be an always-NULL
/// pointer, so older kernels report 0, which means "unknown" here. nix keeps `xucred` private,
/// hence the raw getsockopt. Best effort: the uid check does not depend on it.
fn peer_pid(fd: BorrowedFd<'_>) -> Option<i32> {
    let mut cred = MaybeUninit::<libc::xucred>::zeroed();
    let mut len = size_of::<libc::xucred>() as libc::socklen_t;
    // SAFETY: cred is valid for len bytes; the kernel writes at most len bytes and updates len.
    // Level 0 is SOL_LOCAL, which libc does not export for FreeBSD.
    let rc = unsafe { libc::getsockopt(fd.as_raw_fd(), 0, libc::LOCAL_PEERCRED, cred.as_mut_ptr().cast(), &mut len) };
    if rc != 0 || len as usize != size_of::<libc::xucred>() {
        return None;
    }
    // SAFETY: the kernel filled the whole struct (checked above), and it was zeroed before.
    let cred = unsafe { cred.assume_init() };
    if cred.cr_version != libc::XUCRED_VERSION {
        return None;
    }
    // SAFETY: both union members are plain data; a pre-13 kernel leaves the bytes zero.
    let pid = unsafe { cred.cr_pid__c_anonymous_union.cr_pid };
    (pid > 0).then_some(pid)
}

pub fn become_subreaper() -> Result<(), Error> {
    // SAFETY: PROC_REAP_ACQUIRE takes no data argument.
    let rc =
        unsafe { libc::procctl(libc::P_PID, libc::getpid() as libc::id_t, libc::PROC_REAP_ACQUIRE, ptr::null_mut()) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    // EBUSY: we already are a reaper (for example after a re-exec), which is what we wanted.
    if e.raw_os_error() == Some(libc::EBUSY) {
        return Ok(());
    }
    Err(Error::Io { what: "procctl(PROC_REAP_ACQUIRE)", source: e })
}

pub fn child_set_parent_death_signal(signal: i32) -> io::Result<()> {
    let mut sig: libc::c_int = signal;
    // SAFETY: PROC_PDEATHSIG_CTL reads one c_int through the pointer, which lives on our stack.
    // Id 0 means the calling process. Unlike Linux, it fires when the parent *process* exits.
    let rc = unsafe { libc::procctl(libc::P_PID, 0, libc::PROC_PDEATHSIG_CTL, (&raw mut sig).cast()) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

pub fn raise_nofile_limit() -> Result<(u64, u64), Error> {
    // The kernel clamps the soft limit to kern.maxfilesperproc by itself.
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

/// Microseconds from boot to the process's creation.
///
/// The kernel stores the start as uptime and reports `ki_start` as that plus the *current*
/// `kern.boottime`, which moves whenever the clock is stepped (ntpdate, settimeofday). Subtracting
/// boottime again gives back the stored value, so the fingerprint survives clock steps.
pub fn process_start_time(pid: i32) -> io::Result<u64> {
    let start = kinfo_start(pid)?;
    let boot = boot_time()?;
    Ok(since_boot(start, boot))
}

/// `ki_start` minus `kern.boottime` in microseconds: the one computation behind both
/// [`process_start_time`] and the `start_time` of [`process_table`] rows.
fn since_boot(start: libc::timeval, boot: libc::timeval) -> u64 {
    let usec = |tv: libc::timeval| i128::from(tv.tv_sec) * 1_000_000 + i128::from(tv.tv_usec);
    u64::try_from(usec(start) - usec(boot)).unwrap_or(0)
}

/// Types for which every bit pattern is a valid value, so they can be copied out of kernel bytes.
///
/// # Safety
/// Implement only for plain integers and structs made of them, without padding-sensitive invariants.
unsafe trait Plain: Copy {}
// SAFETY: integers, and timeval is two integers.
unsafe impl Plain for libc::c_int {}
// SAFETY: as above.
unsafe impl Plain for libc::c_char {}
// SAFETY: as above.
unsafe impl Plain for libc::timeval {}
// SAFETY: as above (segsz_t, the type of ki_rssize).
unsafe impl Plain for isize {}

/// The `T` at byte `off` of `buf`, or None when it does not fit.
fn read_plain<T: Plain>(buf: &[u8], off: usize) -> Option<T> {
    let bytes = buf.get(off..off.checked_add(size_of::<T>())?)?;
    // SAFETY: bytes holds size_of::<T>() bytes and any bit pattern is a valid T (Plain);
    // read_unaligned because a byte buffer has no alignment guarantee.
    Some(unsafe { ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// `ki_start` of `kern.proc.pid.PID`.
fn kinfo_start(pid: i32) -> io::Result<libc::timeval> {
    // Read into a byte buffer larger than libc's kinfo_proc and pick ki_start by offset, so that a
    // kernel whose struct differs in size from libc's still answers (the prefix is ABI-stable).
    let mut buf = vec![0u8; size_of::<libc::kinfo_proc>() * 2];
    let mut len = buf.len();
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, pid];
    // SAFETY: mib holds 4 ints; buf is valid for len bytes and the kernel writes at most that.
    let rc = unsafe { libc::sysctl(mib.as_ptr(), 4, buf.as_mut_ptr().cast(), &mut len, ptr::null(), 0) };
    if rc != 0 {
        return Err(esrch_to_not_found(io::Error::last_os_error()));
    }
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such process"));
    }
    buf.truncate(len);
    read_plain(&buf, offset_of!(libc::kinfo_proc, ki_start))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "kern.proc.pid: short kinfo_proc"))
}

/// `kern.boottime`.
fn boot_time() -> io::Result<libc::timeval> {
    let mut tv = MaybeUninit::<libc::timeval>::zeroed();
    let mut len = size_of::<libc::timeval>();
    let mib = [libc::CTL_KERN, libc::KERN_BOOTTIME];
    // SAFETY: mib holds 2 ints; tv is valid for len bytes.
    let rc = unsafe { libc::sysctl(mib.as_ptr(), 2, tv.as_mut_ptr().cast(), &mut len, ptr::null(), 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised, and timeval is plain integers, so any bytes are valid.
    Ok(unsafe { tv.assume_init() })
}

/// Every process from `kern.proc.proc` (one `kinfo_proc` per process, zombies included).
///
/// `kern.boottime` is read on both sides of the snapshot and the snapshot retaken if it moved, so
/// every `ki_start` is converted with the boottime the kernel added to it.
pub fn process_table() -> io::Result<Vec<crate::ProcEntry>> {
    let key = |tv: libc::timeval| (tv.tv_sec, tv.tv_usec);
    for _ in 0..3 {
        let before = boot_time()?;
        let buf = all_kinfo_procs()?;
        if key(boot_time()?) == key(before) {
            return parse_kinfo_procs(&buf, before);
        }
    }
    Err(io::Error::other("kern.boottime kept changing while reading kern.proc.proc"))
}

/// The raw bytes of `kern.proc.proc`.
fn all_kinfo_procs() -> io::Result<Vec<u8>> {
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PROC];
    let mut attempts = 0;
    loop {
        let mut needed = 0usize;
        // SAFETY: mib holds 3 ints; with a null old pointer the kernel only stores the size in needed.
        let rc = unsafe { libc::sysctl(mib.as_ptr(), 3, ptr::null_mut(), &mut needed, ptr::null(), 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // Slack for processes forked between the two calls.
        let mut buf = vec![0u8; needed + needed / 4 + 16 * size_of::<libc::kinfo_proc>()];
        let mut len = buf.len();
        // SAFETY: mib holds 3 ints; buf is valid for len bytes and the kernel writes at most that.
        let rc = unsafe { libc::sysctl(mib.as_ptr(), 3, buf.as_mut_ptr().cast(), &mut len, ptr::null(), 0) };
        if rc == 0 {
            buf.truncate(len);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        // ENOMEM: still too small (a fork storm); measure again.
        attempts += 1;
        if e.raw_os_error() != Some(libc::ENOMEM) || attempts == 5 {
            return Err(e);
        }
    }
}

/// Splits `kern.proc.proc` output into rows, stepping by each entry's `ki_structsize` so that a
/// kernel whose `kinfo_proc` is larger than libc's is read correctly.
fn parse_kinfo_procs(buf: &[u8], boot: libc::timeval) -> io::Result<Vec<crate::ProcEntry>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "kern.proc.proc: malformed kinfo_proc");
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let size: libc::c_int = read_plain(rest, offset_of!(libc::kinfo_proc, ki_structsize)).ok_or_else(bad)?;
        let size = usize::try_from(size).ok().filter(|&s| s > 0).ok_or_else(bad)?;
        let entry = rest.get(..size).ok_or_else(bad)?;
        rest = &rest[size..];
        let pid: libc::pid_t = read_plain(entry, offset_of!(libc::kinfo_proc, ki_pid)).ok_or_else(bad)?;
        let ppid: libc::pid_t = read_plain(entry, offset_of!(libc::kinfo_proc, ki_ppid)).ok_or_else(bad)?;
        let pgid: libc::pid_t = read_plain(entry, offset_of!(libc::kinfo_proc, ki_pgid)).ok_or_else(bad)?;
        let start: libc::timeval = read_plain(entry, offset_of!(libc::kinfo_proc, ki_start)).ok_or_else(bad)?;
        let stat: libc::c_char = read_plain(entry, offset_of!(libc::kinfo_proc, ki_stat)).ok_or_else(bad)?;
        // Pid 0 is the kernel, which process_start_time refuses; leave it out for the same reason.
        if pid <= 0 {
            continue;
        }
        out.push(crate::ProcEntry {
            pid,
            ppid,
            pgid,
            start_time: since_boot(start, boot),
            zombie: stat == libc::SZOMB,
        });
    }
    Ok(out)
}

/// One `kern.proc.proc` snapshot: for each process whose group is in `want`, its CPU time
/// (`ki_rusage` user + system, the kernel's `calcru`, plus `ki_childtime` for the children it
/// waited for) and resident pages (`ki_rssize`; 0 for a zombie, whose memory is gone).
pub fn usage_rows(want: &std::collections::HashSet<i32>) -> io::Result<Vec<crate::usage::ProcUsage>> {
    // SAFETY: sysconf has no memory effects.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok().filter(|&p| p > 0);
    let buf = all_kinfo_procs()?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "kern.proc.proc: malformed kinfo_proc");
    let usage = offset_of!(libc::kinfo_proc, ki_rusage);
    let mut out = Vec::new();
    let mut rest = &buf[..];
    while !rest.is_empty() {
        let size: libc::c_int = read_plain(rest, offset_of!(libc::kinfo_proc, ki_structsize)).ok_or_else(bad)?;
        let size = usize::try_from(size).ok().filter(|&s| s > 0).ok_or_else(bad)?;
        let entry = rest.get(..size).ok_or_else(bad)?;
        rest = &rest[size..];
        let pgid: libc::pid_t = read_plain(entry, offset_of!(libc::kinfo_proc, ki_pgid)).ok_or_else(bad)?;
        if !want.contains(&pgid) {
            continue;
        }
        let tv = |off: usize| read_plain::<libc::timeval>(entry, off).and_then(timeval_ns);
        let cpu_ns = [
            tv(usage + offset_of!(libc::rusage, ru_utime)),
            tv(usage + offset_of!(libc::rusage, ru_stime)),
            tv(offset_of!(libc::kinfo_proc, ki_childtime)),
        ]
        .into_iter()
        .try_fold(0u64, |sum, t| Some(sum.saturating_add(t?)));
        let pages: libc::segsz_t = read_plain(entry, offset_of!(libc::kinfo_proc, ki_rssize)).ok_or_else(bad)?;
        let rss_bytes = page.zip(u64::try_from(pages).ok()).map(|(p, n)| n.saturating_mul(p));
        out.push(crate::usage::ProcUsage { pgid, cpu_ns, rss_bytes });
    }
    Ok(out)
}

/// A duration as a `timeval`, in nanoseconds; `None` if it is negative or malformed.
fn timeval_ns(tv: libc::timeval) -> Option<u64> {
    let sec = u64::try_from(tv.tv_sec).ok()?;
    let usec = u64::try_from(tv.tv_usec).ok().filter(|&u| u < 1_000_000)?;
    Some(sec.saturating_mul(1_000_000_000).saturating_add(usec * 1000))
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

/// `kern.proc.env`: the NUL-separated environment block of one of our processes.
pub fn process_environ(pid: i32) -> io::Result<Vec<u8>> {
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_ENV, pid];
    let mut needed = 0usize;
    // SAFETY: mib holds 4 ints; with a null old pointer the kernel only stores the size in needed.
    if unsafe { libc::sysctl(mib.as_ptr(), 4, ptr::null_mut(), &mut needed, ptr::null(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; needed + 1024];
    let mut len = buf.len();
    // SAFETY: buf is valid for len bytes and the kernel writes at most that.
    if unsafe { libc::sysctl(mib.as_ptr(), 4, buf.as_mut_ptr().cast(), &mut len, ptr::null(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(len);
    Ok(buf)
}

pub fn boot_id() -> Option<String> {
    boot_time().ok().map(|tv| format!("{}.{:06}", tv.tv_sec, tv.tv_usec))
}

pub fn fd_path(_fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    // kinfo_file has the path, but only for vnodes the name cache still knows; svc asks only
    // to find its own log, which it looks for by its expected names first.
    Err(io::ErrorKind::Unsupported.into())
}

pub const DATAGRAM_SENDER_PID: bool = true;
/// Received descriptors are closed at once anyway; close-on-exec covers the moment before.
pub const DGRAM_RECV_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;

/// `LOCAL_CREDS_PERSISTENT` (FreeBSD 13+): every datagram then carries a `struct sockcred2`
/// (`SCM_CREDS2`), which has the sender's pid. Plain `LOCAL_CREDS` would also label every
/// datagram, but with a `struct sockcred` that has no pid, so on older kernels svc goes without.
pub fn enable_datagram_credentials(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let on: libc::c_int = 1;
    // SAFETY: the option value is an int, valid for the length given. Level 0 is SOL_LOCAL,
    // which libc does not export for FreeBSD.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            0,
            libc::LOCAL_CREDS_PERSISTENT,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    match io::Error::last_os_error() {
        e if matches!(e.raw_os_error(), Some(libc::ENOPROTOOPT | libc::EINVAL)) => Ok(false),
        e => Err(e),
    }
}

/// Room for a `sockcred2` with the most groups the kernel puts in one (`CMGROUP_MAX`, 16), plus
/// a few passed descriptors (which are closed).
pub fn dgram_control_len() -> usize {
    // SAFETY: these only compute sizes.
    unsafe { libc::CMSG_SPACE(libc::SOCKCRED2SIZE(16) as u32) as usize + libc::CMSG_SPACE(64) as usize }
}

pub fn cmsg_sender_pid(level: libc::c_int, kind: libc::c_int, data: *const u8, len: usize) -> Option<i32> {
    if level != libc::SOL_SOCKET || kind != libc::SCM_CREDS2 || len < size_of::<libc::sockcred2>() {
        return None;
    }
    // SAFETY: len bytes at data belong to this control message, checked to hold a sockcred2
    // (its group array has room for one; only the fixed fields are read).
    let cred = unsafe { data.cast::<libc::sockcred2>().read_unaligned() };
    (cred.sc_version == 0).then_some(cred.sc_pid)
}
