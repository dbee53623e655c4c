//! The validated configuration: plain data, which is all the rest of svc sees of the KDL files.
//!
//! Every value here is final: defaults applied, `defaults { }` merged, variables expanded,
//! `numprocs` instances expanded into one [`ProgramSpec`] each. Two specs compare equal exactly
//! when running them would be the same, which is what `reload` relies on to leave programs alone.

use std::path::PathBuf;
use std::time::Duration;

/// A whole configuration: the main file plus everything it includes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Every supervised process, one per `numprocs` instance, in file order.
    pub programs: Vec<ProgramSpec>,
    /// Explicit `group` blocks. Programs not in one form a group of their own name.
    pub groups: Vec<GroupSpec>,
    /// Every file that was read, main file first (for `svc check` and error messages).
    pub files: Vec<PathBuf>,
    /// Who besides the owner may use the daemon (`access { group "devs" }`), if anyone.
    pub access: Option<Access>,
}

/// `access { group "NAME" read-only=#true }`: members of a group may use the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The group's name.
    pub group: String,
    /// Its gid, resolved when the config was loaded.
    pub gid: u32,
    /// Members may only read (`status`, `logs`, `pid`); with `false` they may also control
    /// every program, which is the power to stop them all.
    pub read_only: bool,
}

/// A `group "NAME" { programs "a" "b"; priority N }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// The group's name, used as `NAME:*` on the command line.
    pub name: String,
    /// Names of the `program` blocks in the group.
    pub programs: Vec<String>,
    /// The group's priority; its members start in this order relative to others.
    pub priority: i32,
}

/// One supervised process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramSpec {
    /// The process name: the program's name, or the `process-name` template's result for
    /// `numprocs` instances. Unique across the config.
    pub name: String,
    /// The `program "NAME"` block this came from (equal to `name` unless `numprocs` > 1 or
    /// `process-name` is set).
    pub program: String,
    /// The group it belongs to: its `group` block, or else its program name.
    pub group: String,
    /// The instance number for `numprocs` (starting at `numprocs-start`), or `None`.
    pub num: Option<u32>,
    /// argv: the program and its arguments, never empty.
    pub command: Vec<String>,
    /// Working directory; `None` means the daemon's own.
    pub directory: Option<PathBuf>,
    /// Variables added to (or overriding) the daemon's environment, in order.
    pub environment: Vec<(String, String)>,
    /// File mode creation mask for the process, or `None` to inherit the daemon's.
    pub umask: Option<u32>,
    /// Start when the daemon starts.
    pub autostart: bool,
    /// What to do when a RUNNING process exits.
    pub autorestart: AutoRestart,
    /// Exit codes that count as expected for `autorestart "unexpected"`.
    pub exit_codes: Vec<i32>,
    /// How long a process must stay up after spawning to count as RUNNING.
    pub start_secs: Duration,
    /// How many failed starts in a row are retried before the process is FATAL.
    pub start_retries: Retries,
    /// Delays between retries.
    pub backoff: Backoff,
    /// The signal that asks the process to stop (a signal number of this OS).
    pub stop_signal: i32,
    /// How long to wait after `stop_signal` before SIGKILL.
    pub stop_wait: Duration,
    /// Send `stop_signal` to the whole process group rather than the leader only.
    pub stop_as_group: bool,
    /// Send SIGKILL (and the final clean-up of leftovers) to the whole process group.
    pub kill_as_group: bool,
    /// Lower starts first and stops last.
    pub priority: i32,
    /// Send stderr into the stdout log.
    pub redirect_stderr: bool,
    /// Prefix every captured line with an RFC 3339 UTC time.
    pub log_timestamps: bool,
    /// Where stdout goes.
    pub stdout_log: LogSpec,
    /// Where stderr goes (ignored when `redirect_stderr`).
    pub stderr_log: LogSpec,
    /// Resource limits set in the child before exec.
    pub limits: Vec<(Limit, u64)>,
    /// Runs once to completion (a migration): an expected exit is success, never restarted,
    /// and no exit counts as "too quick".
    pub oneshot: bool,
    /// How the program says it is ready; `Running` (the default) means ready once RUNNING.
    pub ready: Readiness,
    /// Not ready this long after spawning counts as a failed start.
    pub start_timeout: Option<Duration>,
    /// With `ready "notify"`: `WATCHDOG=1` must come at least this often, or the program is
    /// restarted.
    pub watchdog: Option<Duration>,
    /// A liveness check run while the program is up (boxed, as `Readiness::Probe`).
    pub health: Option<Box<Health>>,
    /// Processes that must reach a condition before this one starts (resolved to process
    /// names: groups and numprocs blocks are expanded).
    pub depends_on: Vec<Dependency>,
    /// Commands run (by `sh -c`, with the event in `SVC_*` variables) when something happens
    /// to the program.
    pub hooks: Hooks,
}

/// A program's hooks: `on-exit`, `on-fatal`, `on-unhealthy`, and how long each run may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// Each time a run of the program ends, stops included.
    pub on_exit: Option<String>,
    /// When the program becomes FATAL (it could not be started).
    pub on_fatal: Option<String>,
    /// When its health check finds it unhealthy.
    pub on_unhealthy: Option<String>,
    /// After this long a hook's process group is SIGKILLed.
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks { on_exit: None, on_fatal: None, on_unhealthy: None, timeout: Duration::from_secs(30) }
    }
}

/// How a program says it is ready.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Readiness {
    /// Ready once RUNNING (`start-secs` passed): supervisord's meaning of "started".
    #[default]
    Running,
    /// sd_notify: `READY=1` on the program's own `NOTIFY_SOCKET`.
    Notify,
    /// s6: a line written to this descriptor.
    Fd(u32),
    /// A probe that succeeds once (boxed: most programs have none, and every program's spec
    /// is resident all day).
    Probe(Box<Probe>),
}

/// A check the daemon runs: for readiness until it succeeds, for health all along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// What to check.
    pub check: Check,
    /// Time between attempts.
    pub interval: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Failures in this time after spawning do not count.
    pub start_period: Duration,
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A TCP connection to `host:port` succeeds.
    Tcp(String),
    /// An HTTP GET of the URL answers 2xx.
    Http(String),
    /// The command (run by `sh -c`, in the program's directory and environment) exits 0.
    Exec(String),
    /// A line of the program's stdout or stderr contains the text (readiness only).
    Log(String),
}

/// A liveness check and what to do when it keeps failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The probe.
    pub probe: Probe,
    /// Failures in a row that make the program unhealthy.
    pub retries: u32,
    /// Restart an unhealthy program (else only mark it).
    pub restart: bool,
}

/// One `depends-on` target with its condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The process name.
    pub name: String,
    /// What it must reach.
    pub condition: Condition,
}

/// docker compose's and process-compose's conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Spawned (STARTING or RUNNING).
    Started,
    /// Ready (see [`Readiness`]).
    Ready,
    /// Ready, and its health check has passed.
    Healthy,
    /// Ran and exited, whatever the exit code (or gave up: FATAL).
    Completed,
    /// Ran and exited with an expected code.
    CompletedSuccessfully,
}

impl Condition {
    /// The config word.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Ready => "ready",
            Condition::Healthy => "healthy",
            Condition::Completed => "completed",
            Condition::CompletedSuccessfully => "completed-successfully",
        }
    }

    /// Every condition, for parsing and docs.
    pub const ALL: [Condition; 5] = [
        Condition::Started,
        Condition::Ready,
        Condition::Healthy,
        Condition::Completed,
        Condition::CompletedSuccessfully,
    ];
}

/// supervisord's `autorestart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoRestart {
    /// Always restart a RUNNING process that exits (`#true`).
    Always,
    /// Never restart it (`#false`).
    Never,
    /// Restart only when its exit code is not in `exit_codes` (`"unexpected"`, the default).
    Unexpected,
}

/// How many failed starts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    /// This many retries after the first attempt.
    Count(u32),
    /// Retry forever (`start-retries "infinite"`).
    Infinite,
}

/// Exponential backoff between restarts: `initial`, doubled after each failure, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// A process that stayed RUNNING this long has its failure count reset.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60), reset_after: Duration::from_secs(60) }
    }
}

/// A log destination with its rotation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    /// Where to write.
    pub path: LogPath,
    /// Rotate when the file would grow past this many bytes; 0 = never rotate.
    pub max_bytes: u64,
    /// How many rotated files (`.1` .. `.N`) to keep.
    pub backups: u32,
}

impl Default for LogSpec {
    fn default() -> Self {
        LogSpec { path: LogPath::Default, max_bytes: 50 * 1024 * 1024, backups: 10 }
    }
}

/// `path` of a log block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPath {
    /// `<log dir>/<name>.out.log` or `.err.log`.
    Default,
    /// `path "none"`: discard the output.
    Discard,
    /// An explicit file.
    File(PathBuf),
}

/// Resource limits settable per program (`limits { nofile 4096 }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// RLIMIT_NOFILE: open files.
    Nofile,
    /// RLIMIT_NPROC: processes.
    Nproc,
    /// RLIMIT_CORE: core file size in bytes.
    Core,
    /// RLIMIT_AS: address space in bytes.
    As,
    /// RLIMIT_DATA: data segment in bytes.
    Data,
    /// RLIMIT_STACK: stack size in bytes.
    Stack,
    /// RLIMIT_FSIZE: largest file in bytes.
    Fsize,
    /// RLIMIT_CPU: CPU seconds.
    Cpu,
}

impl ProgramSpec {
    /// A spec with every option at its default, for `name` running `command`.
    pub fn new(name: &str, command: Vec<String>) -> ProgramSpec {
        ProgramSpec {
            name: name.to_owned(),
            program: name.to_owned(),
            group: name.to_owned(),
            num: None,
            command,
            directory: None,
            environment: Vec::new(),
            umask: None,
            autostart: true,
            autorestart: AutoRestart::Unexpected,
            exit_codes: vec![0],
            start_secs: Duration::from_secs(1),
            start_retries: Retries::Count(3),
            backoff: Backoff::default(),
            stop_signal: libc::SIGTERM,
            stop_wait: Duration::from_secs(10),
            stop_as_group: true,
            kill_as_group: true,
            priority: 999,
            redirect_stderr: false,
            log_timestamps: false,
            stdout_log: LogSpec::default(),
            stderr_log: LogSpec::default(),
            limits: Vec::new(),
            oneshot: false,
            ready: Readiness::Running,
            start_timeout: None,
            watchdog: None,
            health: None,
            depends_on: Vec::new(),
            hooks: Hooks::default(),
        }
    }
}
