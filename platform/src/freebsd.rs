//! Linux: prctl subreaper and parent-death signal, SO_PEERCRED.

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
