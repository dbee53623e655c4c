//! The socket protocol between the CLI and the daemon: JSON lines, versioned.
//!
//! Each request is one JSON object on one line, carrying `"protocol": PROTOCOL_VERSION` and a
//! `"type"`. Each reply is one JSON object on one line; a stream (`logs` with `follow: true`,
//! `events`) answers with many lines until the client disconnects. A bad line gets an
//! `error` reply naming the offending field, and the connection stays open. `docs/protocol.md`
//! describes the same thing for people writing clients in other languages.
//!
//! These are wire types only: the daemon's runtime state lives elsewhere and is converted to
//! [`ProgramStatus`] snapshots when asked.

use serde::{Deserialize, Serialize};

/// Version of this protocol. Bumped on any incompatible change; both sides refuse a mismatch
/// with an error that says which one to upgrade.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the daemon accepts, in bytes. Longer lines are refused without being
/// buffered whole.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Snapshot of programs (all when `targets` is empty).
    Status {
        /// Program names, `GROUP:*` or `all`.
        #[serde(default)]
        targets: Vec<String>,
        /// Also report each program's CPU time and memory. Opt-in because it takes a scan of
        /// the whole process table, which costs more than the rest of the reply at 1000
        /// programs.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resources: bool,
    },
    /// Start targets (and what they depend on); reply once each is ready or has failed.
    Start {
        /// Program names, `GROUP:*` or `all`.
        targets: Vec<String>,
        /// Reply as soon as the start is under way (unknown targets are still errors).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        no_wait: bool,
    },
    /// Stop targets; reply once each is stopped.
    Stop {
        /// Program names, `GROUP:*` or `all`.
        targets: Vec<String>,
    },
    /// Stop then start targets; reply once each is ready again or has failed.
    Restart {
        /// Program names, `GROUP:*` or `all`.
        targets: Vec<String>,
        /// Reply as soon as the restart is under way.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        no_wait: bool,
    },
    /// The last lines of a program's log (or of several: `names`), optionally followed.
    Logs {
        /// Process name (may be empty when `names` is given).
        #[serde(default)]
        name: String,
        /// More process names, answered over this one connection: each `log` reply then says
        /// whose it is (`name`), and one `log` without a name and without data ends the tails.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
        /// Which stream, or both.
        #[serde(default)]
        stream: LogSelect,
        /// How many lines from the end to send first (of each stream).
        #[serde(default = "default_log_lines")]
        lines: usize,
        /// Keep the connection open and stream new output.
        #[serde(default)]
        follow: bool,
        /// Only lines stamped at or after this RFC 3339 time; needs `log-timestamps`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    /// The last lines of the daemon's own log (its stderr), optionally followed.
    DaemonLog {
        /// How many lines from the end to send first.
        #[serde(default = "default_log_lines")]
        lines: usize,
        /// Keep the connection open and stream new lines.
        #[serde(default)]
        follow: bool,
        /// Only lines stamped at or after this RFC 3339 time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    /// Re-read the config and apply the difference (or only report it with `dry_run`).
    Reload {
        /// Report the plan without changing anything.
        #[serde(default)]
        dry_run: bool,
    },
    /// Send a signal to running targets.
    Signal {
        /// Signal name (`HUP`, `SIGUSR1`) or number.
        signal: String,
        /// Program names, `GROUP:*` or `all`.
        targets: Vec<String>,
    },
    /// Empty the log files (and remove the rotated backups) of targets.
    ClearLogs {
        /// Program names, `GROUP:*` or `all`.
        targets: Vec<String>,
    },
    /// Stop every program in reverse priority order, then exit the daemon.
    ///
    /// (Variants without fields are written `{}` so that unknown fields are refused for them
    /// too: serde ignores `deny_unknown_fields` on unit variants of a tagged enum.)
    Shutdown {},
    /// Daemon facts: pid, version, config path.
    Info {},
    /// Check the config file the daemon loaded (what a reload would read), or `text` as if it
    /// were that file; changes nothing.
    Check {
        /// A config to check in place of the file (includes and relative paths resolve from
        /// the file's directory); absent: the file itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Draw the diagnostics with ANSI colours (for a terminal).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        color: bool,
    },
    /// The text of the config file the daemon loaded (`svc edit` from another machine).
    ConfigFile {},
    /// Replace the config file with `text` if it checks (the file is left alone otherwise);
    /// the reply is the check. A `reload` applies it.
    PutConfig {
        /// The new config.
        text: String,
    },
    /// Where the daemon keeps its files (`svc paths`).
    Paths {},
    /// A snapshot of programs, then one line per change until the client disconnects.
    Events {
        /// Program names, `GROUP:*` or `all` (empty: all), resolved when the request is made;
        /// events about the daemon itself (reload, shutdown) always come.
        #[serde(default)]
        targets: Vec<String>,
    },
}

fn default_log_lines() -> usize {
    10
}

/// One of a program's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output (also stderr when `redirect-stderr` is set).
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
}

/// Which of a program's streams a `logs` request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogSelect {
    /// Standard output only (the default, for clients written before `both`).
    #[default]
    Stdout,
    /// Standard error only.
    Stderr,
    /// Both, each `log` reply saying which it is from.
    Both,
}

/// A reply from the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Answer to `status`.
    Status {
        /// One entry per process, in status order (group, then name).
        programs: Vec<ProgramStatus>,
    },
    /// Answer to `start`/`stop`/`restart`: one entry per resolved target.
    Results {
        /// Per-target outcomes.
        results: Vec<TargetResult>,
    },
    /// A chunk of log text (`logs`); a follow stream sends many.
    Log {
        /// The text, lossily decoded as UTF-8.
        data: String,
        /// The stream it comes from, when both were asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<LogStream>,
        /// Whose log it is, when the request named several (`names`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Why there is little or nothing to show, for people (a log that cannot be written,
        /// output that goes elsewhere); sent on the `log` after the tail.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notices: Vec<String>,
    },
    /// Answer to `reload`: what changed, and the outcome of the programs it started.
    Reload {
        /// The difference between the running and the new config.
        plan: ReloadPlan,
        /// Outcomes of starting added and changed programs (empty for a dry run).
        results: Vec<TargetResult>,
    },
    /// Answer to `info`.
    Info(DaemonInfo),
    /// First line of `events` (and the line after `lagged`): every selected program as
    /// `status` shows it, as of event `seq`.
    Snapshot {
        /// The last event applied before the snapshot: the events that follow have higher ones.
        seq: u64,
        /// Unix time (seconds, fractional) of the snapshot.
        time: f64,
        /// One entry per selected process, in status order.
        programs: Vec<ProgramStatus>,
    },
    /// A change, in the order the daemon applied them (`events`).
    Event(Event),
    /// The watcher fell behind and missed events; a fresh `snapshot` follows.
    Lagged {
        /// How many events it missed (of every program, not only the selected ones).
        missed: u64,
    },
    /// Answer to `check` and `put_config`.
    Check(CheckReport),
    /// Answer to `config_file`.
    ConfigFile {
        /// The config file the daemon loaded.
        path: String,
        /// Its text; null when the file does not exist (any more).
        text: Option<String>,
    },
    /// Answer to `paths`.
    Paths(DaemonPaths),
    /// The request was carried out and has nothing to report (`shutdown`).
    Ok,
    /// The request failed or was malformed.
    Error(ErrorReply),
}

/// An error reply: a stable code for scripts, a message for people, and the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Error codes of [`ErrorReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not a valid request (bad JSON, unknown type or field, wrong value type).
    BadRequest,
    /// The request's `protocol` differs from the daemon's.
    ProtocolMismatch,
    /// The request line exceeds [`MAX_REQUEST_LINE`].
    TooLong,
    /// A named program or group does not exist.
    UnknownTarget,
    /// The peer is not allowed to talk to this daemon.
    PermissionDenied,
    /// The daemon is shutting down.
    ShuttingDown,
    /// The daemon cannot serve what was asked (its own log goes where it cannot read it back);
    /// the message says where to look instead.
    Unavailable,
    /// The config file has errors; the message holds the diagnostics. Nothing was changed.
    ConfigInvalid,
    /// Anything else that went wrong on the daemon's side.
    Internal,
}

/// What the daemon says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// The daemon's pid.
    pub pid: u32,
    /// svc version of the daemon.
    pub version: String,
    /// The config file it loaded.
    pub config: String,
    /// Unix seconds when it started.
    pub started: u64,
    /// What the asking connection may do, filled in per connection (absent from daemons that
    /// predate it): clients such as `svc web` offer only the actions the daemon would accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// What a connection may ask of the daemon (see `access` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The daemon's own user: every request.
    Owner,
    /// A member of an `access` group with `read-only=#false`: every request too.
    Control,
    /// A member of a read-only `access` group: `status`, `logs`, `events` and `info` only.
    ReadOnly,
}

/// The result of checking a config (`check`, `put_config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// No errors (for `put_config`: the file was written).
    pub ok: bool,
    /// The config file (the one the text stands in for, when a text was checked).
    pub file: String,
    /// Its programs (empty when it has errors).
    pub programs: Vec<ProgramSummary>,
    /// How many files it reads (itself and its includes).
    pub files: usize,
    /// Every problem, as data.
    pub errors: Vec<crate::config::ConfigErrorItem>,
    /// The problems drawn for people (`file:line:col` and the text underlined).
    pub rendered: String,
    /// Log files the daemon will not be able to write.
    pub warnings: Vec<crate::config::check::LogPathWarning>,
}

/// A program of a checked config, as `svc avail` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramSummary {
    /// Process name.
    pub name: String,
    /// Its group (its own name unless in a `group` block).
    pub group: String,
    /// Started with the daemon.
    pub autostart: bool,
    /// Start order (lower first).
    pub priority: i32,
}

/// Where the daemon keeps its files, as it resolved them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonPaths {
    /// The config file it loaded.
    pub config: String,
    /// State directory.
    pub state: String,
    /// Program logs.
    pub logs: String,
    /// The socket it listens on.
    pub socket: String,
    /// The single-instance lock.
    pub lock: String,
    /// Its own log when started by `svc up`.
    pub daemon_log: String,
}

/// What a reload changes, by process name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadPlan {
    /// New programs: started if `autostart`.
    pub added: Vec<String>,
    /// Programs no longer in the config: stopped and forgotten.
    pub removed: Vec<String>,
    /// Programs whose process definition changed (command, environment, ...): restarted.
    pub changed: Vec<String>,
    /// Programs whose supervision settings changed (priority, stop-wait, ...): updated in
    /// place, the process keeps running.
    pub updated: Vec<String>,
    /// Programs left alone.
    pub unchanged: Vec<String>,
    /// The change to `access`, as `{"from": ..., "to": ...}` (`null` = owner only); absent
    /// when `access` is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessChange>,
}

/// `access` before and after a reload, each as "group NAME (read-only|control)" or `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessChange {
    /// Who had access besides the owner, or `None` for nobody.
    pub from: Option<String>,
    /// Who has it after the reload.
    pub to: Option<String>,
}

impl ReloadPlan {
    /// True when the reload changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.updated.is_empty()
            && self.access.is_none()
    }
}

/// The outcome of a control verb for one program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetResult {
    /// Process name (or the target as typed, if it matched nothing).
    pub name: String,
    /// Whether the program reached the goal.
    pub ok: bool,
    /// State when the reply was made (`None` for unknown targets).
    pub state: Option<State>,
    /// What happened, for people ("started", "already running", "exited too quickly").
    pub message: String,
}

/// supervisord's process states, with its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Not running, by request or never started.
    Stopped,
    /// Spawned, waiting for `start-secs` to pass.
    Starting,
    /// Up for at least `start-secs`.
    Running,
    /// Exited too quickly; waiting before the next attempt.
    Backoff,
    /// Stop signal sent; waiting for the exit.
    Stopping,
    /// Exited from RUNNING and not restarted.
    Exited,
    /// Could not be started after every retry.
    Fatal,
}

impl State {
    /// The uppercase name as shown by `svc status`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "STOPPED",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Backoff => "BACKOFF",
            State::Stopping => "STOPPING",
            State::Exited => "EXITED",
            State::Fatal => "FATAL",
        }
    }
}

/// A snapshot of one process for `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramStatus {
    /// Process name.
    pub name: String,
    /// Group name (the program's own name unless it is in a `group` block).
    pub group: String,
    /// Current state.
    pub state: State,
    /// Pid of the running process, if any.
    pub pid: Option<u32>,
    /// Unix time (seconds, fractional) of the last state change.
    pub since: f64,
    /// Exit code of the last exit, if it exited normally.
    pub exit_status: Option<i32>,
    /// Name of the signal that killed the last run, if one did.
    pub exit_signal: Option<String>,
    /// How many times svc restarted it automatically since the daemon started.
    pub restarts: u32,
    /// Unix time of the next start attempt while in BACKOFF.
    pub next_attempt: Option<f64>,
    /// Why it is FATAL or why the last spawn failed, or why its output cannot be written.
    pub reason: Option<String>,
    /// Bytes of its output dropped because they could not be written (a full disk), since
    /// the daemon started.
    #[serde(default)]
    pub log_dropped_bytes: u64,
    /// Ready: its readiness check passed, or (without one) it is RUNNING.
    #[serde(default)]
    pub ready: bool,
    /// Whether it has a readiness check of its own (`ready ...`), which makes `ready` worth
    /// showing beside the state.
    #[serde(default)]
    pub ready_check: bool,
    /// `"healthy"` or `"unhealthy"` once its health check has spoken; null without one.
    #[serde(default)]
    pub health: Option<String>,
    /// Why it has not started yet: the dependency it waits for ("waiting for db (FATAL)").
    #[serde(default)]
    pub waiting: Option<String>,
    /// What the program says about itself (sd_notify `STATUS=`), if it does.
    #[serde(default)]
    pub status_text: Option<String>,
    /// CPU seconds (user + system) used so far by the processes of its group and the children
    /// they waited for; null unless asked for (`resources`), or when the OS cannot tell.
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// Resident memory in bytes of the processes of its group; null unless asked for
    /// (`resources`), or when the OS cannot tell.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
}

/// One change the daemon applied, as an `events` stream reports it. Fields that do not apply
/// to its `kind` are absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increases by one with every event the daemon applies, whoever watches.
    pub seq: u64,
    /// Unix time (seconds, fractional) when it was applied.
    pub time: f64,
    /// What happened.
    pub kind: EventKind,
    /// The process it is about (absent for events about the daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// That process's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `state`: the state before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<State>,
    /// `state`: the state after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<State>,
    /// The process concerned: the one running, or the one that just exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `state` caused by an exit: its exit code, if it exited normally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    /// `state` caused by an exit: the signal that killed it (`"KILL"`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<String>,
    /// Why, for people: a failure, a stop the daemon decided, a failing health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `health`: `"healthy"` or `"unhealthy"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// `reload`: what it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<ReloadPlan>,
}

impl Event {
    /// An event of `kind` with only its number and time set.
    pub fn new(seq: u64, time: f64, kind: EventKind) -> Event {
        Event {
            seq,
            time,
            kind,
            program: None,
            group: None,
            from: None,
            to: None,
            pid: None,
            exit_status: None,
            exit_signal: None,
            reason: None,
            health: None,
            plan: None,
        }
    }
}

/// What an [`Event`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A program changed state (`from`, `to`, and the exit that caused it, if one did).
    State,
    /// A program with a readiness check became ready.
    Ready,
    /// A program's health check changed its verdict.
    Health,
    /// A reload was applied (`plan`).
    Reload,
    /// The daemon began shutting down: every program is being stopped, then the stream ends.
    Shutdown,
}

/// Wraps a request with the protocol version for the wire.
pub fn encode_request(req: &Request) -> String {
    let mut value = serde_json::to_value(req).expect("Request serializes to an object");
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("protocol".into(), PROTOCOL_VERSION.into());
    }
    let mut line = value.to_string();
    line.push('\n');
    line
}

/// Encodes a reply as one line.
pub fn encode_response(resp: &Response) -> String {
    let mut line = serde_json::to_string(resp).expect("Response always serializes");
    line.push('\n');
    line
}

/// Decodes one request line, checking the protocol version first so that a client from
/// another version gets a clear answer rather than a confusing field error.
pub fn decode_request(line: &[u8]) -> Result<Request, ErrorReply> {
    let bad = |message: String, field: Option<&str>| ErrorReply {
        code: ErrorCode::BadRequest,
        message,
        field: field.map(str::to_owned),
    };
    let mut value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| bad(format!("not valid JSON: {e}"), None))?;
    // A Value keeps the last of repeated keys; a request saying two things is refused.
    if let Some(key) = duplicate_key(line) {
        return Err(bad(format!("duplicate field `{key}`"), Some(&key)));
    }
    let map = value.as_object_mut().ok_or_else(|| bad("a request must be a JSON object".into(), None))?;
    match map.remove("protocol") {
        None => return Err(bad("missing field `protocol`".into(), Some("protocol"))),
        Some(v) => match v.as_u64() {
            Some(n) if n == u64::from(PROTOCOL_VERSION) => {}
            Some(n) => {
                let upgrade = if n < u64::from(PROTOCOL_VERSION) { "client" } else { "daemon" };
                return Err(ErrorReply {
                    code: ErrorCode::ProtocolMismatch,
                    message: format!(
                        "protocol version {n} is not supported: this daemon speaks {PROTOCOL_VERSION}; upgrade the {upgrade} (or restart the daemon after upgrading svc)"
                    ),
                    field: Some("protocol".into()),
                });
            }
            None => return Err(bad("`protocol` must be an unsigned integer".into(), Some("protocol"))),
        },
    }
    if !map.contains_key("type") {
        return Err(bad("missing field `type`".into(), Some("type")));
    }
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let field = offending_field(&message);
        bad(message, field.as_deref())
    })
}

/// The first top-level key that appears twice in a JSON object, if any.
fn duplicate_key(line: &[u8]) -> Option<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if !seen.insert(key.clone()) {
                    return Ok(Some(key));
                }
            }
            Ok(None)
        }
    }
    serde_json::Deserializer::from_slice(line).deserialize_map(Keys).ok().flatten()
}

/// serde_json names the field in its message (`unknown field `x``, `missing field `x``,
/// `unknown variant `x``); pull it out so scripts get it as data.
fn offending_field(message: &str) -> Option<String> {
    if message.starts_with("unknown variant") {
        return Some("type".into());
    }
    for prefix in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            // The name itself may contain a backtick: cut at serde's own continuation.
            let name = rest
                .split_once("`, expected")
                .map_or_else(|| rest.rsplit_once('`').map_or(rest, |(n, _)| n), |(n, _)| n);
            return Some(name.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_with_version() {
        let req = Request::Start { targets: vec!["web".into(), "g:*".into()], no_wait: false };
        let line = encode_request(&req);
        assert!(line.contains("\"protocol\":1"), "{line}");
        assert_eq!(decode_request(line.trim_end().as_bytes()), Ok(req));
    }

    #[test]
    fn unit_variant_and_defaults() {
        assert_eq!(decode_request(br#"{"protocol":1,"type":"shutdown"}"#), Ok(Request::Shutdown {}));
        assert_eq!(
            decode_request(br#"{"protocol":1,"type":"status"}"#),
            Ok(Request::Status { targets: vec![], resources: false })
        );
        assert_eq!(
            decode_request(br#"{"protocol":1,"type":"logs","name":"x"}"#),
            Ok(Request::Logs {
                name: "x".into(),
                names: vec![],
                stream: LogSelect::Stdout,
                lines: 10,
                follow: false,
                since: None
            })
        );
    }

    #[test]
    fn stream_lines_round_trip_and_leave_out_what_does_not_apply() {
        let mut ev = Event::new(7, 1.5, EventKind::State);
        ev.program = Some("web".into());
        ev.from = Some(State::Running);
        ev.to = Some(State::Exited);
        ev.exit_status = Some(3);
        let line = encode_response(&Response::Event(ev.clone()));
        assert_eq!(
            line,
            "{\"type\":\"event\",\"seq\":7,\"time\":1.5,\"kind\":\"state\",\"program\":\"web\",\"from\":\"RUNNING\",\"to\":\"EXITED\",\"exit_status\":3}\n"
        );
        assert_eq!(serde_json::from_str::<Response>(&line).ok(), Some(Response::Event(ev)));
        let lagged = encode_response(&Response::Lagged { missed: 4 });
        assert_eq!(serde_json::from_str::<Response>(&lagged).ok(), Some(Response::Lagged { missed: 4 }));
        assert_eq!(decode_request(br#"{"protocol":1,"type":"events"}"#), Ok(Request::Events { targets: vec![] }));
    }

    #[test]
    fn unknown_field_is_named() {
        let err = decode_request(br#"{"protocol":1,"type":"status","tragets":[]}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert_eq!(err.field.as_deref(), Some("tragets"));
    }

    #[test]
    fn unknown_type_names_type() {
        let err = decode_request(br#"{"protocol":1,"type":"explode"}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("type"));
        assert!(err.message.contains("explode"), "{}", err.message);
    }

    #[test]
    fn wrong_version_says_which_side() {
        let err = decode_request(br#"{"protocol":99,"type":"status"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::ProtocolMismatch);
        assert!(err.message.contains("upgrade the daemon"), "{}", err.message);
        let err = decode_request(br#"{"type":"status"}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("protocol"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for line in [&b"nope"[..], b"[]", b"{}", b"\xff\xfe", b"{\"protocol\":1}", b"{\"protocol\":\"1\"}"] {
            assert!(decode_request(line).is_err());
        }
    }

    #[test]
    fn unit_requests_refuse_unknown_fields_too() {
        let err = decode_request(br#"{"protocol":1,"type":"shutdown","bogus":1}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("bogus"));
        assert_eq!(encode_request(&Request::Info {}), "{\"protocol\":1,\"type\":\"info\"}\n");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = decode_request(br#"{"protocol":1,"type":"status","type":"info"}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("type"));
    }

    #[test]
    fn field_names_with_backticks_survive() {
        let err = decode_request(br#"{"protocol":1,"type":"status","a`b":1}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("a`b"));
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = decode_request(br#"{"protocol":1,"type":"start"}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("targets"));
    }
}
