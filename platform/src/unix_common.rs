//! Helpers several OS modules share (they differ only in parameters).

use crate::Error;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::path::{Path, PathBuf};

/// Raises the soft NOFILE limit to the hard limit, or to `cap` if that is lower.
pub fn raise_nofile_to(cap: Option<u64>) -> Result<(u64, u64), Error> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| Error::Io { what: "getrlimit(RLIMIT_NOFILE)", source: e.into() })?;
    let target = cap.map_or(hard, |c| c.min(hard));
    if target <= soft {
        return Ok((soft, soft));
    }
    setrlimit(Resource::RLIMIT_NOFILE, target, hard)
        .map_err(|e| Error::Io { what: "setrlimit(RLIMIT_NOFILE)", source: e.into() })?;
    Ok((soft, target))
}

/// `/tmp/svc-UID`.
pub fn tmp_svc_uid() -> PathBuf {
    PathBuf::from(format!("/tmp/svc-{}", nix::unistd::Uid::current()))
}

/// `$XDG_STATE_HOME/svc`, else `~/.local/state/svc`.
pub fn xdg_state_dir(home: &Path, xdg_state: Option<&Path>) -> PathBuf {
    xdg_state.map_or_else(|| home.join(".local/state/svc"), Path::to_path_buf)
}
