//! Code shared by every Unix svc supports: private directory checks.

use nix::sys::stat::Mode;
use nix::unistd::{Uid, mkdir};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a directory cannot be used as a private (owner-only) directory.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    /// Creating or inspecting the directory failed.
    #[error("cannot create or inspect {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Something that is not a plain directory (a symlink, a file) sits where the directory should be.
    #[error("{path} is not a directory (a symlink or file is in the way); refusing to use it")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The directory belongs to another user.
    #[error("{path} is owned by uid {owner}, not by you (uid {me}); refusing to use it")]
    WrongOwner {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        me: u32,
    },
    /// Group or others can access the directory.
    #[error("{path} has unsafe permissions {mode:o} (group or others can access it); run: chmod 700 {path}")]
    UnsafeMode {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Creates `path` (mode 0700) if missing, then checks, without following a symlink, that it is a
/// directory owned by the current user with no group/other permission bits (the tmux rule).
pub fn ensure_private_dir(path: &Path) -> Result<(), PrivateDirError> {
    let meta = owned_dir(path)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PrivateDirError::UnsafeMode { path: path.to_owned(), mode });
    }
    Ok(())
}

/// Like [`ensure_private_dir`], but shared read-only with one group: owned by us, group `gid`,
/// mode 0750, nothing for others. Used when the config grants a group access to the daemon.
pub fn ensure_group_dir(path: &Path, gid: u32) -> Result<(), PrivateDirError> {
    group_dir(path, gid, 0o750)
}

/// Like [`ensure_group_dir`], but the group may only pass through (mode 0710): the state
/// directory when the log directory inside it is shared. Members reach `logs/` by its name and
/// cannot list or read anything else there.
pub fn ensure_traverse_dir(path: &Path, gid: u32) -> Result<(), PrivateDirError> {
    group_dir(path, gid, 0o710)
}

fn group_dir(path: &Path, gid: u32, mode: u32) -> Result<(), PrivateDirError> {
    owned_dir(path)?;
    let io = |source| PrivateDirError::Io { path: path.to_owned(), source };
    // Only the owner reaches this point, and chown to a group we belong to needs no privilege.
    nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid))).map_err(|e| io(e.into()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    Ok(())
}

/// Creates `path` (0700) if missing and checks it is a real directory (not a symlink) that we own.
fn owned_dir(path: &Path) -> Result<std::fs::Metadata, PrivateDirError> {
    let io = |source| PrivateDirError::Io { path: path.to_owned(), source };
    match mkdir(path, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(io(e.into())),
    }
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if !meta.file_type().is_dir() {
        return Err(PrivateDirError::NotADirectory { path: path.to_owned() });
    }
    let me = Uid::current().as_raw();
    if meta.uid() != me {
        return Err(PrivateDirError::WrongOwner { path: path.to_owned(), owner: meta.uid(), me });
    }
    Ok(meta)
}
