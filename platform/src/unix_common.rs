//! Helpers several OS modules share (they differ only in parameters).

use crate::Error;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::io;
use std::path::{Path, PathBuf};

/// Raises the soft NOFILE limit to the hard limit, or to `cap` if that is lower.
///
/// The new soft limit is read back rather than assumed: FreeBSD silently clamps it to
/// `kern.maxfilesperproc`, and the caller logs what it really got.
pub fn raise_nofile_to(cap: Option<u64>) -> Result<(u64, u64), Error> {
    let get = || {
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| Error::Io { what: "getrlimit(RLIMIT_NOFILE)", source: e.into() })
    };
    let (soft, hard) = get()?;
    let (soft_u, hard_u) = (rlim_to_u64(soft), rlim_to_u64(hard));
    let target = cap.map_or(hard_u, |c| c.min(hard_u));
    if target <= soft_u {
        return Ok((soft_u, soft_u));
    }
    setrlimit(Resource::RLIMIT_NOFILE, u64_to_rlim(target), hard)
        .map_err(|e| Error::Io { what: "setrlimit(RLIMIT_NOFILE)", source: e.into() })?;
    let (new_soft, _) = get()?;
    Ok((soft_u, rlim_to_u64(new_soft)))
}

// rlim_t is u64 on Linux and macOS but i64 on FreeBSD (and c_ulong on illumos), so the same
// conversion is a no-op on some targets and a real one on others.
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
pub(crate) fn rlim_to_u64(r: libc::rlim_t) -> u64 {
    u64::try_from(r).unwrap_or(0)
}

#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
fn u64_to_rlim(v: u64) -> libc::rlim_t {
    libc::rlim_t::try_from(v).unwrap_or(libc::RLIM_INFINITY)
}

/// `/tmp/svc-UID`.
pub fn tmp_svc_uid() -> PathBuf {
    PathBuf::from(format!("/tmp/svc-{}", nix::unistd::Uid::current()))
}

/// `$XDG_STATE_HOME/svc`, else `~/.local/state/svc`.
#[cfg_attr(target_os = "macos", allow(dead_code))]
pub fn xdg_state_dir(home: &Path, xdg_state: Option<&Path>) -> PathBuf {
    xdg_state.map_or_else(|| home.join(".local/state/svc"), Path::to_path_buf)
}

/// Turns "no such process" (ESRCH, which std reports as an uncategorized error) into
/// `ErrorKind::NotFound`, the one kind callers of `process_start_time` test for.
pub fn esrch_to_not_found(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ESRCH) { io::Error::new(io::ErrorKind::NotFound, "no such process") } else { e }
}

/// `signal(sig, SIG_DFL)` for every signal number; errors for numbers the OS lacks (and for
/// KILL/STOP) are expected and ignored. Async-signal-safe.
#[allow(dead_code)] // Linux uses the raw system call instead.
pub fn reset_signals_with_libc() {
    for sig in 1..=64 {
        // SAFETY: signal() with SIG_DFL installs no handler code.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// [`crate::open_fd_count`] by probing every number below the soft limit.
pub fn open_fd_count() -> usize {
    let limit = crate::nofile_limit().min(1 << 16) as i32;
    // SAFETY: fcntl(F_GETFD) on an arbitrary number only reads flags, or fails with EBADF.
    (0..limit).filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0).count()
}

/// Closes every descriptor above stderr, returning how many were open (such as a build
/// tool's jobserver pipes, or whatever the parent leaked). Linux has a one-call way and falls
/// back to this.
pub fn close_inherited_fds() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let limit = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft).min(1 << 16) as i32;
    let mut closed = 0;
    for fd in 3..limit {
        // SAFETY: called before the daemon owns any descriptor above stderr, so nothing that
        // Rust code holds is closed; fcntl on an unused number only fails with EBADF.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) >= 0 {
                libc::close(fd);
                closed += 1;
            }
        }
    }
    closed
}

/// [`crate::reset_ignored_signals`] through libc's `sigaction`.
#[allow(dead_code)] // Linux uses the raw system call instead.
pub fn reset_ignored_signals_with_libc() -> usize {
    let mut reset = 0;
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGPIPE {
            continue;
        }
        // SAFETY: sigaction with a null new action only reads the current one into `old`;
        // the second call installs SIG_DFL, which runs no code.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN {
                libc::signal(sig, libc::SIG_DFL);
                reset += 1;
            }
        }
    }
    reset
}
