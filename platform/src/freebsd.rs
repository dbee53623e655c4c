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
    let usec = |tv: libc::timeval| i128::from(tv.tv_sec) * 1_000_000 + i128::from(tv.tv_usec);
    Ok(u64::try_from(usec(start) - usec(boot)).unwrap_or(0))
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
    let off = offset_of!(libc::kinfo_proc, ki_start);
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such process"));
    }
    if len < off + size_of::<libc::timeval>() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "kern.proc.pid: short kinfo_proc"));
    }
    // SAFETY: the range was checked to lie inside buf; read_unaligned because a Vec<u8> has no
    // alignment guarantee for timeval.
    Ok(unsafe { ptr::read_unaligned(buf.as_ptr().add(off).cast::<libc::timeval>()) })
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
