//! Login/boot integration: making the svc daemon start with the user's session, without root.
//!
//! Four methods, each in its own module:
//!
//! | method | OS | what is installed | starts the daemon |
//! |---|---|---|---|
//! | [`Method::Systemd`] | Linux with a user manager | `~/.config/systemd/user/svc.service` | at login, or at boot with linger |
//! | [`Method::Launchd`] | macOS | `~/Library/LaunchAgents/dev.svc.daemon.plist` | at GUI login |
//! | [`Method::Cron`] | every OS | one marked crontab line | at boot (`@reboot`); illumos: every 5 minutes |
//! | [`Method::Profile`] | every OS | a marked block in the login shell's profile | at login |
//!
//! The work is split so that almost everything can be tested without touching the user's
//! system: each module has pure functions that render its artifact from a [`Target`] and
//! compute a [`Plan`] from a *probe* of the current state (file contents, `crontab -l`,
//! `systemctl --user is-enabled`, ...). Probing only reads; [`execute`] carries a plan out.
//! A plan is also what `--dry-run` prints, so a dry run shows exactly what a real run does.
//!
//! External commands (`systemctl`, `launchctl`, `crontab`) are run by name from the calling
//! process (the CLI), never from the daemon.

pub mod cron;
pub mod launchd;
pub mod profile;
pub mod quote;
pub mod systemd;

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

/// A way of starting the daemon with the user's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// A systemd user unit (Linux).
    Systemd,
    /// A launchd LaunchAgent (macOS).
    Launchd,
    /// A line in the user's crontab.
    Cron,
    /// A block in the login shell's profile.
    Profile,
}

impl Method {
    /// Every method, in order of preference.
    pub const ALL: [Method; 4] = [Method::Systemd, Method::Launchd, Method::Cron, Method::Profile];

    /// The name used on the command line (`--method NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Systemd => "systemd",
            Method::Launchd => "launchd",
            Method::Cron => "cron",
            Method::Profile => "profile",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Method, String> {
        Method::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            format!("unknown method '{s}' (methods on {}: {})", crate::OS_NAME, method_names(available_methods()))
        })
    }
}

/// `a, b, c`: for messages.
pub fn method_names(methods: &[Method]) -> String {
    methods.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
}

/// The methods this OS offers. systemd and launchd only exist on their OS; rc.d and SMF are
/// not offered because they need an administrator (see platform.md §6c).
pub fn available_methods() -> &'static [Method] {
    if cfg!(target_os = "linux") {
        &[Method::Systemd, Method::Cron, Method::Profile]
    } else if cfg!(target_os = "macos") {
        &[Method::Launchd, Method::Cron, Method::Profile]
    } else {
        &[Method::Cron, Method::Profile]
    }
}

/// The method `svc install` uses when none is given, and why, in a few words.
///
/// Linux: systemd when `systemctl --user` works (a user manager and its bus exist), else cron:
/// the user bus is missing under `su`, in cron, and on many shared hosts. macOS: launchd.
/// FreeBSD and illumos: cron. Where cron is wanted but there is no usable `crontab` (a
/// minimal container, a host that forbids it), the login-profile hook, which needs nothing.
pub fn default_method() -> (Method, String) {
    if cfg!(target_os = "macos") {
        return (Method::Launchd, "the macOS service manager".to_owned());
    }
    let why_cron = if cfg!(target_os = "linux") {
        match systemd::user_manager() {
            Ok(()) => return (Method::Systemd, "systemctl --user works here".to_owned()),
            Err(e) => format!("systemctl --user does not work here: {e}"),
        }
    } else {
        format!("user crontabs need no root on {}", crate::OS_NAME)
    };
    match cron::probe() {
        cron::Probe::Table(_) => (Method::Cron, why_cron),
        cron::Probe::NoCommand => {
            (Method::Profile, format!("{why_cron}; and there is no crontab command, so the login profile"))
        }
        cron::Probe::Error(e) => {
            (Method::Profile, format!("{why_cron}; and crontab cannot be used ({e}), so the login profile"))
        }
    }
}

/// What an installed service runs, with every path absolute.
///
/// Paths must be valid UTF-8 without control characters (checked by [`Target::validate`]): the
/// artifacts are text, and a path that cannot be written into them exactly must not be written
/// approximately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The svc binary (`std::env::current_exe()`).
    pub exe: PathBuf,
    /// The config file the daemon loads.
    pub config: PathBuf,
    /// A socket path to pass on, when the user chose one explicitly.
    pub socket: Option<PathBuf>,
    /// svc's log directory (launchd writes the daemon's stdout/stderr there).
    pub log_dir: PathBuf,
    /// The user's home directory.
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, or `~/.config` (systemd user units, fish's conf.d).
    pub config_home: PathBuf,
    /// The login shell (`$SHELL`), which decides the profile file.
    pub shell: Option<String>,
    /// Seconds the daemon may take to stop every program, margin included.
    pub stop_timeout_secs: u64,
}

impl Target {
    /// Checks that every path is absolute, UTF-8 and free of control characters.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let mut paths = vec![
            ("svc binary", &self.exe),
            ("config", &self.config),
            ("log directory", &self.log_dir),
            ("home directory", &self.home),
            ("config home", &self.config_home),
        ];
        if let Some(s) = &self.socket {
            paths.push(("socket", s));
        }
        for (what, p) in paths {
            let Some(s) = p.to_str() else {
                return Err(ServiceError::Invalid(format!("the {what} path {} is not valid UTF-8", p.display())));
            };
            if !p.is_absolute() {
                return Err(ServiceError::Invalid(format!("the {what} path {s} is not absolute")));
            }
            if s.chars().any(char::is_control) {
                return Err(ServiceError::Invalid(format!("the {what} path {s:?} contains a control character")));
            }
        }
        Ok(())
    }

    /// `--socket S --config C`, the options every generated command passes.
    fn common_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(s) = &self.socket {
            args.extend(["--socket".to_owned(), text(s)]);
        }
        args.extend(["--config".to_owned(), text(&self.config)]);
        args
    }

    /// What systemd and launchd run: `svc daemon --config C`, in the foreground.
    pub fn daemon_argv(&self) -> Vec<String> {
        let mut argv = vec![text(&self.exe), "daemon".to_owned()];
        argv.extend(self.common_args());
        argv
    }

    /// What cron and the profile run: `svc up --quiet --config C`, which returns at once when
    /// the daemon already answers.
    pub fn up_argv(&self) -> Vec<String> {
        let mut argv = vec![text(&self.exe), "up".to_owned(), "--quiet".to_owned()];
        argv.extend(self.common_args());
        argv
    }

    /// What `systemctl --user reload svc` runs.
    pub fn reload_argv(&self) -> Vec<String> {
        let mut argv = vec![text(&self.exe), "reload".to_owned()];
        argv.extend(self.common_args());
        argv
    }
}

/// A validated path as text ([`Target::validate`] guarantees the conversion is exact).
fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Errors of installing, uninstalling or probing.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request cannot be carried out as asked (a bad path, a method this OS lacks, ...).
    #[error("{0}")]
    Invalid(String),
    /// A file operation failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// The operation ("write", "remove", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An external command failed.
    #[error("'{command}' failed: {detail}")]
    Command {
        /// The command line, shell-quoted.
        command: String,
        /// Its error output, or its exit status.
        detail: String,
    },
}

/// One change to the user's system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write `content` to `path` (through a symlink, atomically, with `mode`), creating the
    /// parent directories.
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Its whole new content.
        content: String,
        /// Permission bits.
        mode: u32,
    },
    /// Remove a file (or symlink).
    RemoveFile {
        /// The file.
        path: PathBuf,
    },
    /// Create a directory and its parents.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Permission bits of the directories created.
        mode: u32,
    },
    /// Replace the user's crontab with `content` (the whole table) through `argv`, then read
    /// it back to check that svc's line is there (or gone): illumos' crontab reports errors in
    /// the input but still exits 0.
    SetCrontab {
        /// `crontab -`, or `crontab` on illumos, which reads standard input without `-`.
        argv: Vec<String>,
        /// The whole new crontab.
        content: String,
    },
    /// Run a command.
    Run {
        /// The program and its arguments.
        argv: Vec<String>,
        /// A failure is expected in some states and is not an error (`launchctl bootout` of
        /// a service that is not loaded).
        may_fail: bool,
    },
}

impl Step {
    /// A short machine name: `write`, `remove`, `mkdir`, `crontab`, `run`.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::WriteFile { .. } => "write",
            Step::RemoveFile { .. } => "remove",
            Step::CreateDir { .. } => "mkdir",
            Step::SetCrontab { .. } => "crontab",
            Step::Run { .. } => "run",
        }
    }

    /// The file or directory the step changes, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Step::WriteFile { path, .. } | Step::RemoveFile { path } | Step::CreateDir { path, .. } => Some(path),
            Step::SetCrontab { .. } | Step::Run { .. } => None,
        }
    }

    /// The text written (a file's or the crontab's whole new content), if any.
    pub fn content(&self) -> Option<&str> {
        match self {
            Step::WriteFile { content, .. } | Step::SetCrontab { content, .. } => Some(content),
            _ => None,
        }
    }

    /// The command run, if any.
    pub fn argv(&self) -> Option<&[String]> {
        match self {
            Step::SetCrontab { argv, .. } | Step::Run { argv, .. } => Some(argv),
            _ => None,
        }
    }

    /// The permission bits of a file or directory written.
    pub fn mode(&self) -> Option<u32> {
        match self {
            Step::WriteFile { mode, .. } | Step::CreateDir { mode, .. } => Some(*mode),
            _ => None,
        }
    }

    /// One line for people: `write /x (mode 0644)`, `run systemctl --user daemon-reload`.
    pub fn describe(&self) -> String {
        match self {
            Step::WriteFile { path, mode, .. } => format!("write {} (mode {mode:04o})", path.display()),
            Step::RemoveFile { path } => format!("remove {}", path.display()),
            Step::CreateDir { path, mode } => format!("create directory {} (mode {mode:04o})", path.display()),
            Step::SetCrontab { argv, .. } => format!("run {} with the new crontab as input", quote::sh_command(argv)),
            Step::Run { argv, may_fail } => {
                format!("run {}{}", quote::sh_command(argv), if *may_fail { " (a failure is ignored)" } else { "" })
            }
        }
    }

    /// Carries the step out.
    pub fn apply(&self) -> Result<(), ServiceError> {
        match self {
            Step::WriteFile { path, content, mode } => write_file(path, content, *mode),
            Step::RemoveFile { path } => match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(ServiceError::Io { what: "remove", path: path.clone(), source: e })
                }
                _ => Ok(()),
            },
            Step::CreateDir { path, mode } => fs::DirBuilder::new()
                .recursive(true)
                .mode(*mode)
                .create(path)
                .map_err(|e| ServiceError::Io { what: "create", path: path.clone(), source: e }),
            Step::SetCrontab { argv, content } => cron::set_crontab(argv, content),
            Step::Run { argv, may_fail } => {
                let out = run(argv).map_err(|e| command_error(argv, e.to_string()))?;
                if out.ok || *may_fail { Ok(()) } else { Err(command_error(argv, out.detail())) }
            }
        }
    }
}

/// What `install` or `uninstall` would do with one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The method.
    pub method: Method,
    /// Where the method's artifact lives (unit file, plist, profile file); `None` for cron.
    pub location: Option<PathBuf>,
    /// The changes, in order. Empty: already installed (or, for uninstall, not installed).
    pub steps: Vec<Step>,
    /// Things the user should know (linger, how to start now, ...).
    pub notes: Vec<String>,
    /// Reasons the plan cannot be carried out here; a dry run shows them as warnings.
    pub problems: Vec<String>,
    /// True when carrying the plan out starts the daemon now (systemd `enable --now`,
    /// launchd `bootstrap`): a daemon already running outside the service manager would make
    /// the new one fail with "already running".
    pub starts_daemon: bool,
}

impl Plan {
    fn new(method: Method, location: Option<PathBuf>) -> Plan {
        Plan { method, location, steps: Vec::new(), notes: Vec::new(), problems: Vec::new(), starts_daemon: false }
    }

    /// True when there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Whether, where and how the daemon is installed with one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The method.
    pub method: Method,
    /// True when this method's artifact is present.
    pub installed: bool,
    /// Where the artifact lives (or would live).
    pub location: Option<PathBuf>,
    /// What else is known, as `(name, value)`: `enabled`, `active`, `linger`, `line`, ...
    pub facts: Vec<(&'static str, String)>,
}

fn check_method(method: Method) -> Result<(), ServiceError> {
    if available_methods().contains(&method) {
        Ok(())
    } else {
        Err(ServiceError::Invalid(format!(
            "{method} is not available on {} (methods here: {})",
            crate::OS_NAME,
            method_names(available_methods())
        )))
    }
}

/// The plan for installing with `method`, from a probe of the current state (read only).
pub fn plan_install(method: Method, t: &Target) -> Result<Plan, ServiceError> {
    check_method(method)?;
    t.validate()?;
    Ok(match method {
        Method::Systemd => systemd::install(t, &systemd::probe(t)),
        Method::Launchd => launchd::install(t, &launchd::probe(t)),
        Method::Cron => cron::install(t, &cron::probe()),
        Method::Profile => profile::install(t, &profile::probe(t)),
    })
}

/// The plan for removing what installing with `method` added (read only).
pub fn plan_uninstall(method: Method, t: &Target) -> Result<Plan, ServiceError> {
    check_method(method)?;
    t.validate()?;
    Ok(match method {
        Method::Systemd => systemd::uninstall(t, &systemd::probe(t)),
        Method::Launchd => launchd::uninstall(t, &launchd::probe(t)),
        Method::Cron => cron::uninstall(&cron::probe()),
        Method::Profile => profile::uninstall(t, &profile::probe(t)),
    })
}

/// Whether svc is installed with `method` (read only).
pub fn status(method: Method, t: &Target) -> Result<Status, ServiceError> {
    check_method(method)?;
    t.validate()?;
    Ok(match method {
        Method::Systemd => systemd::status(t, &systemd::probe(t)),
        Method::Launchd => launchd::status(t, &launchd::probe(t)),
        Method::Cron => cron::status(&cron::probe()),
        Method::Profile => profile::status(t, &profile::probe(t)),
    })
}

/// Carries out every step of `plan` in order, calling `done` after each; stops at the first
/// error.
pub fn execute(plan: &Plan, done: &mut dyn FnMut(&Step)) -> Result<(), ServiceError> {
    for step in &plan.steps {
        step.apply()?;
        done(step);
    }
    Ok(())
}

/// The result of a command run to completion.
struct Output {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Output {
    /// The error output, or the exit status when there is none.
    fn detail(&self) -> String {
        let e = self.stderr.trim();
        if !e.is_empty() {
            e.to_owned()
        } else {
            self.code.map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit status {c}"))
        }
    }
}

/// True for a spawn error that means "no usable such command": `NotFound`, or
/// `PermissionDenied`, which is what a `PATH` search reports when it met a directory it may not
/// enter (root's PATH under `su`) and found the command nowhere else.
fn is_missing_command(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied)
}

/// Runs `argv` (looked up in `PATH`) with no input and captures its output. An error is
/// returned only when it could not be started (see [`is_missing_command`]).
fn run(argv: &[String]) -> io::Result<Output> {
    let (prog, args) =
        argv.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let out = Command::new(prog).args(args).stdin(Stdio::null()).output()?;
    Ok(Output {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn command_error(argv: &[String], detail: String) -> ServiceError {
    ServiceError::Command { command: quote::sh_command(argv), detail }
}

/// `argv` from string literals.
fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// A file's content, `None` when it does not exist (or cannot be read as text, which for
/// the files svc manages means it is not ours either).
fn read_existing(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// Writes a file atomically (temporary file + rename in the same directory). An existing
/// symlink is followed, so a profile kept in a dotfiles repository stays a symlink.
fn write_file(path: &Path, content: &str, mode: u32) -> Result<(), ServiceError> {
    fn io_err<'a>(what: &'static str, p: &'a Path) -> impl FnOnce(io::Error) -> ServiceError + 'a {
        move |e| ServiceError::Io { what, path: p.to_path_buf(), source: e }
    }
    let target = match fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(io_err("resolve", path)(e)),
    };
    let dir = target.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let name = target.file_name().map_or_else(|| "svc".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.svc-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err("write", &target))
}

/// Permission bits of an existing file, for rewriting it without changing them.
fn existing_mode(path: &Path) -> Option<u32> {
    fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Target;
    use std::path::PathBuf;

    /// A target with paths that need quoting everywhere.
    pub fn target() -> Target {
        Target {
            exe: PathBuf::from("/home/al ice/.cargo/bin/svc"),
            config: PathBuf::from("/home/al ice/Library/Application Support/svc/svc.kdl"),
            socket: None,
            log_dir: PathBuf::from("/home/al ice/Library/Logs/svc"),
            home: PathBuf::from("/home/al ice"),
            config_home: PathBuf::from("/home/al ice/.config"),
            shell: Some("/bin/bash".to_owned()),
            stop_timeout_secs: 42,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_by_name() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        let e = "upstart".parse::<Method>().unwrap_err();
        assert!(e.contains("unknown method 'upstart'") && e.contains("profile"), "{e}");
    }

    #[test]
    fn every_os_offers_cron_and_profile() {
        assert!(available_methods().contains(&Method::Cron));
        assert!(available_methods().contains(&Method::Profile));
        assert!(available_methods().contains(&default_method().0));
    }

    #[test]
    fn target_validation() {
        use std::os::unix::ffi::OsStrExt;
        let t = test_support::target();
        t.validate().unwrap();
        let rel = Target { config: "svc.kdl".into(), ..t.clone() };
        assert!(rel.validate().unwrap_err().to_string().contains("not absolute"));
        let ctl = Target { exe: "/a\nb/svc".into(), ..t.clone() };
        assert!(ctl.validate().unwrap_err().to_string().contains("control character"));
        let bad = Target { home: std::ffi::OsStr::from_bytes(b"/h\xff").into(), ..t };
        assert!(bad.validate().unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn commands_carry_config_and_explicit_socket() {
        let mut t = test_support::target();
        assert_eq!(
            t.up_argv()[1..],
            ["up", "--quiet", "--config", "/home/al ice/Library/Application Support/svc/svc.kdl"]
        );
        t.socket = Some("/tmp/s.sock".into());
        assert_eq!(t.daemon_argv()[1..4], ["daemon", "--socket", "/tmp/s.sock"]);
        assert_eq!(t.reload_argv()[1], "reload");
    }

    #[test]
    fn write_file_follows_symlinks_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles/profile");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, "old\n").unwrap();
        let link = dir.path().join(".profile");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_file(&link, "new\n", 0o640).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new\n");
        assert_eq!(existing_mode(&real), Some(0o640));
        // A new file in a new directory.
        let fresh = dir.path().join("a/b/c.txt");
        write_file(&fresh, "x", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&fresh).unwrap(), "x");
        assert_eq!(fs::read_dir(fresh.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn run_reports_missing_commands_and_failures() {
        let missing = run(&argv(&["svc-no-such-command-xyz"])).err().expect("no such command");
        assert!(is_missing_command(&missing), "{missing:?}");
        let out = run(&argv(&["sh", "-c", "echo oops >&2; exit 3"])).unwrap();
        assert!(!out.ok);
        assert_eq!(out.detail(), "oops");
        let step = Step::Run { argv: argv(&["sh", "-c", "exit 3"]), may_fail: false };
        assert_eq!(step.apply().unwrap_err().to_string(), "'sh -c 'exit 3'' failed: exit status 3");
        Step::Run { argv: argv(&["false"]), may_fail: true }.apply().unwrap();
    }
}
