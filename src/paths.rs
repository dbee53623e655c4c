//! Where svc keeps its files for this user: config, state (lock, daemon.json), logs, socket.
//!
//! [`Paths::resolve`] is pure: it takes the environment as an argument, so tests and the CLI
//! see the same rules. Only [`Paths::from_env`] reads the real process environment. Nothing here
//! creates a directory; the daemon does that (and checks ownership) at start-up.

use std::path::{Path, PathBuf};

/// Every location svc uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The main config file.
    pub config: PathBuf,
    /// State directory: lock file, daemon.json.
    pub state_dir: PathBuf,
    /// Program logs (and the daemon's own log when started by `svc up`).
    pub log_dir: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
    /// True when the socket path was chosen by the user (`--socket` / `SVC_SOCKET`) and
    /// should be used as is.
    pub socket_explicit: bool,
}

/// Overrides from the command line, each beating its environment variable.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--socket`.
    pub socket: Option<PathBuf>,
}

impl Paths {
    /// Resolves paths from the real environment.
    pub fn from_env(overrides: &Overrides) -> Paths {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()))
            .unwrap_or_else(|| PathBuf::from("/"));
        Paths::resolve(&|k| std::env::var(k).ok(), &home, overrides)
    }

    /// Resolves paths from `env` (a variable lookup) and `home`.
    ///
    /// Precedence for each: command-line override, `SVC_*` variable, XDG variable (absolute
    /// paths only, as the XDG spec demands), the OS default.
    pub fn resolve(env: &dyn Fn(&str) -> Option<String>, home: &Path, overrides: &Overrides) -> Paths {
        let abs_var = |name: &str| env(name).filter(|v| Path::new(v).is_absolute()).map(PathBuf::from);
        let config = overrides
            .config
            .clone()
            .or_else(|| abs_var("SVC_CONFIG"))
            .unwrap_or_else(|| default_config_dir(home, abs_var("XDG_CONFIG_HOME")).join("svc.kdl"));
        let state_dir = abs_var("SVC_STATE_DIR").unwrap_or_else(|| {
            let xdg = abs_var("XDG_STATE_HOME").map(|p| p.join("svc"));
            svc_platform::default_state_dir(home, xdg.as_deref())
        });
        let log_dir = abs_var("SVC_LOG_DIR").unwrap_or_else(|| svc_platform::default_log_dir(home, &state_dir));
        let explicit = overrides.socket.clone().or_else(|| env("SVC_SOCKET").map(PathBuf::from));
        let socket_explicit = explicit.is_some();
        let socket = explicit.unwrap_or_else(|| runtime_dir(env).join("svc.sock"));
        Paths { config, state_dir, log_dir, socket, socket_explicit }
    }

    /// The single-instance lock file.
    pub fn lock_file(&self) -> PathBuf {
        self.state_dir.join("svc.lock")
    }

    /// Where the daemon records `{pid, socket, started}` for clients started elsewhere.
    pub fn daemon_file(&self) -> PathBuf {
        self.state_dir.join("daemon.json")
    }

    /// The daemon's own log when it runs detached (`svc up`).
    pub fn daemon_log(&self) -> PathBuf {
        self.log_dir.join("svc.log")
    }
}

/// svc's directory in the user's private runtime directory: `$XDG_RUNTIME_DIR/svc` when that
/// dir is ours and private, else the private temp dir. The daemon's socket defaults to it;
/// the client keeps ssh's control sockets there.
pub fn runtime_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let runtime = env("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|d| d.is_absolute() && runtime_dir_usable(d));
    runtime.map_or_else(svc_platform::private_temp_dir, |d| d.join("svc"))
}

/// svc's config directory (where `svc.kdl` is by default, and the client's `hosts.kdl`),
/// whatever `SVC_CONFIG` says.
pub fn config_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let home = env("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("/"));
    let xdg = env("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    default_config_dir(&home, xdg)
}

/// `$XDG_CONFIG_HOME/svc` (Linux, BSD, illumos) or the OS's own config dir (macOS).
fn default_config_dir(home: &Path, xdg_config: Option<PathBuf>) -> PathBuf {
    // `directories` knows the macOS location (under `Library`); on XDG systems we apply the
    // rule ourselves so that this function only sees the environment it is given.
    let native = directories::ProjectDirs::from_path("svc".into()).map(|d| d.config_dir().to_path_buf());
    match native {
        Some(dir) if dir.components().any(|c| c.as_os_str() == "Library") => dir,
        _ => xdg_config.unwrap_or_else(|| home.join(".config")).join("svc"),
    }
}

/// `$XDG_RUNTIME_DIR` is only used when it is ours and private: `directories` does not check.
fn runtime_dir_usable(dir: &Path) -> bool {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::symlink_metadata(dir).is_ok_and(|m| {
        m.is_dir() && m.uid() == nix::unistd::Uid::current().as_raw() && m.permissions().mode() & 0o077 == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn explicit_overrides_win() {
        let p = Paths::resolve(
            &env_of(&[("SVC_SOCKET", "/s/sock"), ("SVC_STATE_DIR", "/st"), ("SVC_LOG_DIR", "/lg")]),
            Path::new("/home/a"),
            &Overrides { config: Some("/c.kdl".into()), socket: None },
        );
        assert_eq!(p.config, PathBuf::from("/c.kdl"));
        assert_eq!(p.socket, PathBuf::from("/s/sock"));
        assert!(p.socket_explicit);
        assert_eq!(p.state_dir, PathBuf::from("/st"));
        assert_eq!(p.log_dir, PathBuf::from("/lg"));
        assert_eq!(p.lock_file(), PathBuf::from("/st/svc.lock"));
    }

    #[test]
    fn relative_xdg_values_are_ignored() {
        let p = Paths::resolve(&env_of(&[("XDG_STATE_HOME", "rel")]), Path::new("/home/a"), &Overrides::default());
        assert!(p.state_dir.is_absolute(), "{:?}", p.state_dir);
        assert!(!p.socket_explicit);
    }

    #[test]
    fn runtime_dir_not_ours_falls_back_to_private_tmp() {
        // "/" is owned by root and mode 755: never a usable runtime dir for anyone.
        let p = Paths::resolve(&env_of(&[("XDG_RUNTIME_DIR", "/")]), Path::new("/home/a"), &Overrides::default());
        assert_eq!(p.socket, svc_platform::private_temp_dir().join("svc.sock"));
    }
}
