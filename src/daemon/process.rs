//! The per-process state machine, as a pure function: supervisord's states and rules.
//!
//! [`step`] takes the program's spec, its runtime record, one [`Event`] and the current time,
//! updates the record and returns the [`Action`]s the supervisor must carry out. It does no
//! I/O and never reads the clock, so every rule is unit-tested below without a process.
//!
//! Spawning is an action whose outcome comes back as the next event: the supervisor runs
//! [`Action::Spawn`] synchronously and immediately feeds [`Event::Spawned`] or
//! [`Event::SpawnFailed`], so no other event can slip in between.
//!
//! Rules (supervisord's, with svc's additions marked):
//! - STARTING becomes RUNNING once the process has stayed up `start_secs`.
//! - A process that exits (or cannot be spawned) before that is a failed start: BACKOFF with
//!   a growing delay, or FATAL once `start_retries` retries have failed.
//! - A RUNNING process that exits is restarted per `autorestart` and `exit_codes`. svc: if it
//!   crashes again within `backoff.reset_after` of starting, it waits in BACKOFF with the same
//!   growing delay instead of being restarted instantly forever.
//! - Stop sends `stop_signal`, then SIGKILL after `stop_wait`.

use crate::config::{AutoRestart, ProgramSpec, Readiness, Retries};
use crate::protocol::State;
use std::time::{Duration, Instant};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called exit with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

/// Where a process is in its life, with the data that only makes sense in that state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramState {
    /// Not running: never started, or stopped on request.
    Stopped,
    /// Spawned at `since`; RUNNING once `start_secs` have passed.
    Starting {
        /// The process (and process group) id.
        pid: u32,
    },
    /// Up and past `start_secs`.
    Running {
        /// The process (and process group) id.
        pid: u32,
        /// When it was spawned (for crash-loop detection).
        spawned: Instant,
    },
    /// Waiting until `until` before the next start attempt.
    Backoff {
        /// When to try again.
        until: Instant,
    },
    /// Stop signal sent; waiting for the exit.
    Stopping {
        /// The process (and process group) id.
        pid: u32,
        /// When to send SIGKILL; `None` once it has been sent.
        kill_at: Option<Instant>,
        /// Start it again once it is gone (`restart`, or `start` while stopping).
        restart: bool,
    },
    /// Exited from RUNNING and not restarted.
    Exited,
    /// Gave up starting it.
    Fatal,
}

/// A process's runtime record: its state plus the counters that survive state changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// Current state.
    pub state: ProgramState,
    /// When `state` was entered.
    pub since: Instant,
    /// Failed starts in a row (reset once RUNNING).
    pub failures: u32,
    /// Quick crashes after RUNNING in a row (reset after `backoff.reset_after` of uptime).
    pub crashes: u32,
    /// Automatic restarts since the daemon started.
    pub restarts: u32,
    /// How the last run ended.
    pub last_exit: Option<Exit>,
    /// Why the last start failed or why it is FATAL.
    pub reason: Option<String>,
    /// Ready: its readiness check passed (or, without one, it is RUNNING). A second fact
    /// beside the state; false whenever no process runs.
    pub ready: bool,
    /// The current stop was caused by `start-timeout`: its exit is a failed start.
    timed_out: bool,
    /// With `watchdog-secs`: the next `WATCHDOG=1` is due by then (armed once ready).
    watchdog_at: Option<Instant>,
    /// `EXTEND_TIMEOUT_USEC`: the program asked for more time to become ready.
    extended_until: Option<Instant>,
}

/// Something that happened to a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A user (or autostart) asked for it to run.
    Start,
    /// A user asked for it to stop.
    Stop,
    /// The supervisor spawned it as asked.
    Spawned {
        /// The new process id.
        pid: u32,
    },
    /// The spawn failed (no such file, bad directory, ...).
    SpawnFailed {
        /// The OS error, for `svc status`.
        error: String,
    },
    /// The process exited and was reaped.
    Exited(Exit),
    /// The state's deadline ([`Runtime::deadline`]) has passed.
    Deadline,
    /// Its readiness check passed (`READY=1`, a line on the notify fd, a probe).
    Ready,
    /// Restart it now for `reason` (a failed health check, a missed watchdog), counted as
    /// an automatic restart.
    Restart {
        /// Shown in status.
        reason: String,
    },
    /// `WATCHDOG=1`: it is alive; the next one is due within `watchdog-secs`.
    Watchdog,
    /// `EXTEND_TIMEOUT_USEC`: it needs this much more time to become ready.
    ExtendTimeout(Duration),
}

/// What the supervisor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn the process, then report [`Event::Spawned`] or [`Event::SpawnFailed`].
    Spawn,
    /// Send `signal` to `pid`, or to its whole process group when `group`.
    Signal {
        /// Target process (its pid is also its process group id).
        pid: u32,
        /// Signal number.
        signal: i32,
        /// Signal the group, not only the leader.
        group: bool,
    },
    /// The group leader is gone: SIGKILL whatever is left of its process group.
    KillGroup {
        /// The process group id.
        pgid: u32,
    },
}

impl Runtime {
    /// A fresh record, STOPPED since `now`.
    pub fn new(now: Instant) -> Runtime {
        Runtime {
            state: ProgramState::Stopped,
            since: now,
            failures: 0,
            crashes: 0,
            restarts: 0,
            last_exit: None,
            reason: None,
            ready: false,
            timed_out: false,
            watchdog_at: None,
            extended_until: None,
        }
    }

    /// The wire name of the current state.
    pub fn public_state(&self) -> State {
        match self.state {
            ProgramState::Stopped => State::Stopped,
            ProgramState::Starting { .. } => State::Starting,
            ProgramState::Running { .. } => State::Running,
            ProgramState::Backoff { .. } => State::Backoff,
            ProgramState::Stopping { .. } => State::Stopping,
            ProgramState::Exited => State::Exited,
            ProgramState::Fatal => State::Fatal,
        }
    }

    /// The live process id, if there is one.
    pub fn pid(&self) -> Option<u32> {
        match self.state {
            ProgramState::Starting { pid } | ProgramState::Running { pid, .. } | ProgramState::Stopping { pid, .. } => {
                Some(pid)
            }
            _ => None,
        }
    }

    /// When [`Event::Deadline`] is due in the current state, if ever. The supervisor sleeps
    /// until the earliest of these; a state without one costs no wake-up at all.
    pub fn deadline(&self, spec: &ProgramSpec) -> Option<Instant> {
        match self.state {
            ProgramState::Starting { .. } => {
                let running = self.since + spec.start_secs;
                Some(self.ready_deadline(spec, self.since).map_or(running, |r| r.min(running)))
            }
            ProgramState::Running { spawned, .. } => match (self.ready_deadline(spec, spawned), self.watchdog_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            ProgramState::Backoff { until } => Some(until),
            ProgramState::Stopping { kill_at, .. } => kill_at,
            _ => None,
        }
    }

    /// When a process spawned at `spawned` runs out of time to become ready, if it can.
    fn ready_deadline(&self, spec: &ProgramSpec, spawned: Instant) -> Option<Instant> {
        let due = spec.start_timeout.filter(|_| !self.ready).map(|t| spawned + t)?;
        Some(self.extended_until.map_or(due, |e| e.max(due)))
    }

    fn enter(&mut self, state: ProgramState, now: Instant) {
        if !matches!(state, ProgramState::Starting { .. } | ProgramState::Running { .. }) {
            self.ready = false;
            self.watchdog_at = None;
            self.extended_until = None;
        }
        self.state = state;
        self.since = now;
    }

    /// RUNNING from now; ready too when RUNNING is all its readiness asks for.
    fn enter_running(&mut self, spec: &ProgramSpec, pid: u32, spawned: Instant, now: Instant) {
        self.failures = 0;
        self.enter(ProgramState::Running { pid, spawned }, now);
        if spec.ready == Readiness::Running {
            self.ready = true;
        }
    }
}

/// Delay before retry number `n` (1-based): `initial * 2^(n-1)`, capped at `max`.
pub fn backoff_delay(spec: &ProgramSpec, n: u32) -> Duration {
    let b = spec.backoff;
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    b.initial.checked_mul(factor).map_or(b.max, |d| d.min(b.max))
}

/// Applies `event` to the process and returns what the supervisor must do.
pub fn step(spec: &ProgramSpec, rt: &mut Runtime, event: Event, now: Instant) -> Vec<Action> {
    use ProgramState as S;
    match (rt.state.clone(), event) {
        // --- start requests ---
        (S::Stopped | S::Exited | S::Fatal | S::Backoff { .. }, Event::Start) => {
            // An explicit start is a fresh chance: forget earlier failures, as supervisord does.
            rt.failures = 0;
            rt.crashes = 0;
            rt.reason = None;
            vec![Action::Spawn]
        }
        (S::Starting { .. } | S::Running { .. }, Event::Start) => vec![],
        (S::Stopping { pid, kill_at, .. }, Event::Start) => {
            rt.state = S::Stopping { pid, kill_at, restart: true };
            vec![]
        }

        // --- stop requests ---
        (S::Starting { pid } | S::Running { pid, .. }, Event::Stop) => {
            rt.enter(S::Stopping { pid, kill_at: Some(now + spec.stop_wait), restart: false }, now);
            vec![Action::Signal { pid, signal: spec.stop_signal, group: spec.stop_as_group }]
        }
        (S::Stopping { pid, kill_at, .. }, Event::Stop) => {
            // A stop cancels a pending restart but does not restart the stop-wait clock.
            rt.state = S::Stopping { pid, kill_at, restart: false };
            vec![]
        }
        (S::Backoff { .. }, Event::Stop) => {
            rt.enter(S::Stopped, now);
            vec![]
        }
        (S::Stopped | S::Exited | S::Fatal, Event::Stop) => vec![],

        // --- spawn outcome ---
        (_, Event::Spawned { pid }) => {
            rt.ready = false;
            rt.timed_out = false;
            if spec.start_secs.is_zero() {
                rt.enter_running(spec, pid, now, now);
            } else {
                rt.enter(S::Starting { pid }, now);
            }
            vec![]
        }
        (_, Event::SpawnFailed { error }) => {
            rt.reason = Some(error);
            failed_start(spec, rt, now)
        }

        // --- exits ---
        // A oneshot's exit ends its run: success with an expected code, whenever it comes;
        // anything else is a failed attempt, retried like a failed start.
        (S::Starting { pid } | S::Running { pid, .. }, Event::Exited(exit)) if spec.oneshot => {
            rt.last_exit = Some(exit);
            let mut actions = cleanup(spec, pid);
            if matches!(exit, Exit::Code(c) if spec.exit_codes.contains(&c)) {
                rt.failures = 0;
                rt.reason = None;
                rt.enter(S::Exited, now);
            } else {
                rt.reason = Some(format!("failed ({})", describe_exit(exit)));
                actions.extend(failed_start(spec, rt, now));
            }
            actions
        }
        (S::Starting { pid }, Event::Exited(exit)) => {
            rt.last_exit = Some(exit);
            rt.reason = Some(format!("exited too quickly ({})", describe_exit(exit)));
            let mut actions = cleanup(spec, pid);
            actions.extend(failed_start(spec, rt, now));
            actions
        }
        (S::Running { pid, spawned }, Event::Exited(exit)) => {
            rt.last_exit = Some(exit);
            let expected = matches!(exit, Exit::Code(c) if spec.exit_codes.contains(&c));
            let restart = match spec.autorestart {
                AutoRestart::Always => true,
                AutoRestart::Never => false,
                AutoRestart::Unexpected => !expected,
            };
            let mut actions = cleanup(spec, pid);
            if !restart {
                rt.enter(S::Exited, now);
                return actions;
            }
            rt.restarts += 1;
            if now.saturating_duration_since(spawned) >= spec.backoff.reset_after {
                rt.crashes = 0;
            }
            rt.crashes += 1;
            // The first crash after a good run restarts at once (supervisord's behaviour);
            // only repeated quick crashes wait.
            if rt.crashes <= 1 {
                rt.enter(S::Exited, now);
                actions.push(Action::Spawn);
            } else {
                let until = now + backoff_delay(spec, rt.crashes - 1);
                // Say why it waits: supervisord restarts at once, forever, and its users expect it.
                rt.reason = Some(format!(
                    "crash loop: {} crashes in a row, each within {} of starting ({}); restarts wait longer each \
                     time (`backoff` setting)",
                    rt.crashes,
                    humantime::format_duration(spec.backoff.reset_after),
                    describe_exit(exit)
                ));
                rt.enter(S::Backoff { until }, now);
            }
            actions
        }
        (S::Stopping { pid, restart, .. }, Event::Exited(exit)) => {
            rt.last_exit = Some(exit);
            rt.enter(S::Stopped, now);
            let mut actions = cleanup(spec, pid);
            if std::mem::take(&mut rt.timed_out) {
                // Stopped for not being ready in time: a failed start, with its reason.
                actions.extend(failed_start(spec, rt, now));
                return actions;
            }
            if restart {
                rt.failures = 0;
                rt.crashes = 0;
                actions.push(Action::Spawn);
            }
            actions
        }
        // No live process in these states, so the supervisor never routes an exit here.
        (S::Stopped | S::Exited | S::Fatal | S::Backoff { .. }, Event::Exited(_)) => vec![],

        // --- deadlines ---
        (S::Running { .. }, Event::Deadline) if rt.watchdog_at.is_some_and(|at| now >= at) => {
            let t = spec.watchdog.unwrap_or_default();
            step(
                spec,
                rt,
                Event::Restart { reason: format!("watchdog: no WATCHDOG=1 within {}", humantime::format_duration(t)) },
                now,
            )
        }
        (S::Starting { pid } | S::Running { pid, .. }, Event::Deadline)
            if rt.ready_deadline(spec, spawned_at(rt)).is_some_and(|due| now >= due) =>
        {
            let t = spec.start_timeout.unwrap_or_default();
            rt.reason = Some(format!("not ready within {} (start-timeout)", humantime::format_duration(t)));
            rt.timed_out = true;
            rt.enter(S::Stopping { pid, kill_at: Some(now + spec.stop_wait), restart: false }, now);
            vec![Action::Signal { pid, signal: spec.stop_signal, group: spec.stop_as_group }]
        }
        (S::Starting { pid }, Event::Deadline) if now >= rt.since + spec.start_secs => {
            rt.reason = None;
            let spawned = rt.since;
            rt.enter_running(spec, pid, spawned, now);
            vec![]
        }
        (S::Starting { .. }, Event::Deadline) => vec![],

        // --- readiness and restarts ---
        (S::Starting { pid }, Event::Ready) => {
            // It says it is up: waiting out start-secs as well would only delay its dependents.
            rt.reason = None;
            let spawned = rt.since;
            rt.enter_running(spec, pid, spawned, now);
            rt.ready = true;
            rt.watchdog_at = rt.watchdog_at.or(spec.watchdog.map(|w| now + w));
            vec![]
        }
        (S::Running { .. }, Event::Ready) => {
            rt.ready = true;
            rt.watchdog_at = rt.watchdog_at.or(spec.watchdog.map(|w| now + w));
            vec![]
        }
        (S::Starting { .. } | S::Running { .. }, Event::Watchdog) => {
            rt.watchdog_at = spec.watchdog.map(|w| now + w);
            vec![]
        }
        (S::Starting { .. } | S::Running { .. }, Event::ExtendTimeout(more)) => {
            rt.extended_until = Some(now + more);
            vec![]
        }
        (_, Event::Watchdog | Event::ExtendTimeout(_)) => vec![],
        (_, Event::Ready) => vec![],
        (S::Starting { pid } | S::Running { pid, .. }, Event::Restart { reason }) => {
            rt.reason = Some(reason);
            rt.restarts += 1;
            rt.enter(S::Stopping { pid, kill_at: Some(now + spec.stop_wait), restart: true }, now);
            vec![Action::Signal { pid, signal: spec.stop_signal, group: spec.stop_as_group }]
        }
        (_, Event::Restart { .. }) => vec![],
        (S::Backoff { .. }, Event::Deadline) => vec![Action::Spawn],
        (S::Stopping { pid, restart, .. }, Event::Deadline) => {
            rt.state = S::Stopping { pid, kill_at: None, restart };
            vec![Action::Signal { pid, signal: libc::SIGKILL, group: spec.kill_as_group }]
        }
        (S::Stopped | S::Running { .. } | S::Exited | S::Fatal, Event::Deadline) => vec![],
    }
}

/// When the live process was spawned (STARTING's `since`, RUNNING's `spawned`).
fn spawned_at(rt: &Runtime) -> Instant {
    match rt.state {
        ProgramState::Running { spawned, .. } => spawned,
        _ => rt.since,
    }
}

/// A start attempt failed: back off, or give up after `start_retries` retries.
fn failed_start(spec: &ProgramSpec, rt: &mut Runtime, now: Instant) -> Vec<Action> {
    rt.failures += 1;
    let give_up = match spec.start_retries {
        Retries::Count(n) => rt.failures > n,
        Retries::Infinite => false,
    };
    if give_up {
        let why = rt.reason.take().unwrap_or_else(|| "could not start".into());
        rt.reason = Some(format!("{why}; gave up after {} attempts", rt.failures));
        rt.enter(ProgramState::Fatal, now);
    } else {
        let until = now + backoff_delay(spec, rt.failures);
        rt.enter(ProgramState::Backoff { until }, now);
    }
    vec![]
}

/// Once the leader is gone, whatever it left in its process group is killed, so a restart
/// never runs beside the previous run's children.
fn cleanup(spec: &ProgramSpec, pid: u32) -> Vec<Action> {
    if spec.kill_as_group { vec![Action::KillGroup { pgid: pid }] } else { vec![] }
}

/// "exit status 3" / "killed by SIGKILL", for reasons and status lines.
pub fn describe_exit(exit: Exit) -> String {
    match exit {
        Exit::Code(c) => format!("exit status {c}"),
        Exit::Signal(s) => match svc_platform::signal_name(s) {
            Some(name) => format!("killed by SIG{name}"),
            None => format!("killed by signal {s}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ProgramSpec {
        ProgramSpec::new("p", vec!["true".into()])
    }

    #[test]
    fn without_a_check_ready_means_running() {
        let s = spec();
        let now = t0();
        let mut rt = started(&s, now);
        assert!(!rt.ready, "STARTING is not ready");
        step(&s, &mut rt, Event::Deadline, now + s.start_secs);
        assert!(rt.ready);
        step(&s, &mut rt, Event::Exited(Exit::Code(0)), now + Duration::from_secs(5));
        assert!(!rt.ready, "no process, not ready");
    }

    #[test]
    fn a_check_makes_ready_its_own_fact_and_ready_ends_starting_early() {
        let mut s = spec();
        s.ready = Readiness::Notify;
        s.start_secs = Duration::from_secs(10);
        let now = t0();
        let mut rt = started(&s, now);
        step(&s, &mut rt, Event::Ready, now + Duration::from_millis(300));
        assert_eq!((rt.public_state(), rt.ready), (State::Running, true), "READY=1 before start-secs");
        let mut rt = started(&s, now);
        step(&s, &mut rt, Event::Deadline, now + s.start_secs);
        assert_eq!((rt.public_state(), rt.ready), (State::Running, false), "RUNNING by time, not ready yet");
        step(&s, &mut rt, Event::Ready, now + Duration::from_secs(11));
        assert!(rt.ready);
    }

    #[test]
    fn not_ready_within_start_timeout_is_a_failed_start() {
        let mut s = spec();
        s.ready = Readiness::Notify;
        s.start_secs = Duration::from_secs(1);
        s.start_timeout = Some(Duration::from_secs(5));
        let now = t0();
        let mut rt = started(&s, now);
        step(&s, &mut rt, Event::Deadline, now + Duration::from_secs(1));
        assert_eq!(rt.deadline(&s), Some(now + Duration::from_secs(5)), "RUNNING, waiting to be ready");
        let at = now + Duration::from_secs(5);
        let actions = step(&s, &mut rt, Event::Deadline, at);
        assert_eq!(actions, vec![Action::Signal { pid: 42, signal: s.stop_signal, group: true }]);
        assert_eq!(rt.public_state(), State::Stopping);
        step(&s, &mut rt, Event::Exited(Exit::Signal(libc::SIGTERM)), at);
        assert_eq!(rt.public_state(), State::Backoff);
        assert_eq!(rt.reason.as_deref(), Some("not ready within 5s (start-timeout)"));
        assert_eq!(rt.failures, 1);
    }

    #[test]
    fn a_oneshot_succeeds_with_an_expected_exit_whenever_it_comes() {
        let mut s = spec();
        s.oneshot = true;
        let now = t0();
        let mut rt = started(&s, now);
        let actions = step(&s, &mut rt, Event::Exited(Exit::Code(0)), now + Duration::from_millis(10));
        assert!(!actions.contains(&Action::Spawn));
        assert_eq!(rt.public_state(), State::Exited, "not 'exited too quickly'");
        assert_eq!(rt.reason, None);
        let mut rt = started(&s, now);
        step(&s, &mut rt, Event::Exited(Exit::Code(3)), now);
        assert_eq!(rt.public_state(), State::Backoff, "a failed run is retried like a failed start");
        assert_eq!(rt.reason.as_deref(), Some("failed (exit status 3)"));
    }

    #[test]
    fn a_missed_watchdog_restarts_and_extend_timeout_buys_time() {
        let mut s = spec();
        s.ready = Readiness::Notify;
        s.watchdog = Some(Duration::from_secs(10));
        s.start_timeout = Some(Duration::from_secs(5));
        let now = t0();
        let mut rt = started(&s, now);
        step(&s, &mut rt, Event::ExtendTimeout(Duration::from_secs(20)), now + Duration::from_secs(1));
        step(&s, &mut rt, Event::Deadline, now + Duration::from_secs(1));
        assert_eq!(rt.deadline(&s), Some(now + Duration::from_secs(21)), "start-timeout extended");
        step(&s, &mut rt, Event::Ready, now + Duration::from_secs(6));
        assert_eq!(rt.deadline(&s), Some(now + Duration::from_secs(16)), "the watchdog is armed when ready");
        step(&s, &mut rt, Event::Watchdog, now + Duration::from_secs(15));
        assert_eq!(rt.deadline(&s), Some(now + Duration::from_secs(25)), "each ping moves it");
        let actions = step(&s, &mut rt, Event::Deadline, now + Duration::from_secs(25));
        assert_eq!(actions, vec![Action::Signal { pid: 42, signal: s.stop_signal, group: true }]);
        assert_eq!(rt.reason.as_deref(), Some("watchdog: no WATCHDOG=1 within 10s"));
        assert_eq!(rt.deadline(&s), Some(now + Duration::from_secs(25) + s.stop_wait), "only the kill timer now");
    }

    #[test]
    fn a_restart_event_stops_then_starts_and_says_why() {
        let s = spec();
        let now = t0();
        let mut rt = running(&s, now);
        let actions = step(&s, &mut rt, Event::Restart { reason: "unhealthy: HTTP 503".into() }, now);
        assert_eq!(actions, vec![Action::Signal { pid: 42, signal: s.stop_signal, group: true }]);
        assert_eq!(rt.restarts, 1);
        let actions = step(&s, &mut rt, Event::Exited(Exit::Signal(libc::SIGTERM)), now);
        assert!(actions.contains(&Action::Spawn));
        assert_eq!(rt.reason.as_deref(), Some("unhealthy: HTTP 503"));
    }

    fn t0() -> Instant {
        Instant::now()
    }

    /// Drives a spec from STOPPED through a successful spawn.
    fn started(spec: &ProgramSpec, now: Instant) -> Runtime {
        let mut rt = Runtime::new(now);
        assert_eq!(step(spec, &mut rt, Event::Start, now), vec![Action::Spawn]);
        step(spec, &mut rt, Event::Spawned { pid: 42 }, now);
        rt
    }

    fn running(spec: &ProgramSpec, now: Instant) -> Runtime {
        let mut rt = started(spec, now);
        step(spec, &mut rt, Event::Deadline, now + spec.start_secs);
        assert_eq!(rt.public_state(), State::Running);
        rt
    }

    #[test]
    fn start_spawns_and_is_starting_until_start_secs() {
        let s = spec();
        let now = t0();
        let rt = started(&s, now);
        assert_eq!(rt.state, ProgramState::Starting { pid: 42 });
        assert_eq!(rt.deadline(&s), Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn starting_deadline_goes_to_running() {
        let s = spec();
        let rt = running(&s, t0());
        assert_eq!(rt.pid(), Some(42));
        assert_eq!(rt.deadline(&s), None, "a RUNNING process needs no timer");
    }

    #[test]
    fn start_secs_zero_is_running_at_once() {
        let mut s = spec();
        s.start_secs = Duration::ZERO;
        let rt = started(&s, t0());
        assert_eq!(rt.public_state(), State::Running);
    }

    #[test]
    fn starting_exit_before_startsecs_goes_to_backoff() {
        let s = spec();
        let now = t0();
        let mut rt = started(&s, now);
        let actions = step(&s, &mut rt, Event::Exited(Exit::Code(0)), now);
        assert_eq!(actions, vec![Action::KillGroup { pgid: 42 }]);
        assert_eq!(rt.state, ProgramState::Backoff { until: now + Duration::from_secs(1) });
        assert_eq!(rt.failures, 1);
        assert!(rt.reason.as_deref().unwrap_or("").contains("exited too quickly"));
    }

    #[test]
    fn backoff_delay_grows_and_is_capped() {
        let s = spec();
        let d: Vec<u64> = (1..=8).map(|n| backoff_delay(&s, n).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff_delay(&s, 500), Duration::from_secs(60));
    }

    #[test]
    fn backoff_deadline_respawns() {
        let s = spec();
        let now = t0();
        let mut rt = started(&s, now);
        step(&s, &mut rt, Event::Exited(Exit::Code(1)), now);
        assert_eq!(step(&s, &mut rt, Event::Deadline, now + Duration::from_secs(1)), vec![Action::Spawn]);
    }

    #[test]
    fn retries_exhausted_goes_fatal() {
        let s = spec(); // start_retries 3: one attempt plus three retries
        let now = t0();
        let mut rt = started(&s, now);
        for attempt in 1..=4 {
            step(&s, &mut rt, Event::Exited(Exit::Code(1)), now);
            if attempt < 4 {
                assert_eq!(rt.public_state(), State::Backoff, "attempt {attempt}");
                assert_eq!(step(&s, &mut rt, Event::Deadline, now), vec![Action::Spawn]);
                step(&s, &mut rt, Event::Spawned { pid: 42 }, now);
            }
        }
        assert_eq!(rt.state, ProgramState::Fatal);
        assert!(rt.reason.as_deref().unwrap_or("").contains("gave up after 4 attempts"), "{:?}", rt.reason);
        assert_eq!(rt.deadline(&s), None);
    }

    #[test]
    fn infinite_retries_never_fatal() {
        let mut s = spec();
        s.start_retries = Retries::Infinite;
        let now = t0();
        let mut rt = started(&s, now);
        for _ in 0..100 {
            step(&s, &mut rt, Event::Exited(Exit::Code(1)), now);
            assert_eq!(rt.public_state(), State::Backoff);
            step(&s, &mut rt, Event::Deadline, now);
            step(&s, &mut rt, Event::Spawned { pid: 42 }, now);
        }
    }

    #[test]
    fn spawn_failure_counts_as_failed_start() {
        let mut s = spec();
        s.start_retries = Retries::Count(0);
        let mut rt = Runtime::new(t0());
        step(&s, &mut rt, Event::Start, t0());
        step(&s, &mut rt, Event::SpawnFailed { error: "No such file or directory".into() }, t0());
        assert_eq!(rt.state, ProgramState::Fatal);
        assert!(rt.reason.as_deref().unwrap_or("").starts_with("No such file"), "{:?}", rt.reason);
    }

    #[test]
    fn running_expected_exit_with_unexpected_mode_stays_exited() {
        let s = spec();
        let now = t0();
        let mut rt = running(&s, now);
        let actions = step(&s, &mut rt, Event::Exited(Exit::Code(0)), now + Duration::from_secs(5));
        assert_eq!(actions, vec![Action::KillGroup { pgid: 42 }]);
        assert_eq!(rt.state, ProgramState::Exited);
        assert_eq!(rt.restarts, 0);
    }

    #[test]
    fn running_unexpected_exit_with_unexpected_mode_restarts() {
        let s = spec();
        let now = t0();
        let mut rt = running(&s, now);
        let actions = step(&s, &mut rt, Event::Exited(Exit::Code(3)), now + Duration::from_secs(5));
        assert_eq!(actions, vec![Action::KillGroup { pgid: 42 }, Action::Spawn]);
        assert_eq!(rt.restarts, 1);
        assert_eq!(rt.last_exit, Some(Exit::Code(3)));
    }

    #[test]
    fn killed_by_signal_is_unexpected() {
        let s = spec();
        let mut rt = running(&s, t0());
        let actions = step(&s, &mut rt, Event::Exited(Exit::Signal(libc::SIGKILL)), t0());
        assert!(actions.contains(&Action::Spawn));
    }

    #[test]
    fn custom_exit_codes_are_expected() {
        let mut s = spec();
        s.exit_codes = vec![0, 2];
        let mut rt = running(&s, t0());
        assert!(!step(&s, &mut rt, Event::Exited(Exit::Code(2)), t0()).contains(&Action::Spawn));
    }

    #[test]
    fn autorestart_always_restarts_clean_exit() {
        let mut s = spec();
        s.autorestart = AutoRestart::Always;
        let mut rt = running(&s, t0());
        assert!(step(&s, &mut rt, Event::Exited(Exit::Code(0)), t0()).contains(&Action::Spawn));
    }

    #[test]
    fn autorestart_never_does_not_restart_crash() {
        let mut s = spec();
        s.autorestart = AutoRestart::Never;
        let mut rt = running(&s, t0());
        assert!(!step(&s, &mut rt, Event::Exited(Exit::Code(9)), t0()).contains(&Action::Spawn));
        assert_eq!(rt.state, ProgramState::Exited);
    }

    #[test]
    fn running_crash_loop_backs_off() {
        let mut s = spec();
        s.autorestart = AutoRestart::Always;
        let now = t0();
        let mut rt = running(&s, now);
        // First crash: restart at once.
        assert!(step(&s, &mut rt, Event::Exited(Exit::Code(1)), now).contains(&Action::Spawn));
        step(&s, &mut rt, Event::Spawned { pid: 43 }, now);
        step(&s, &mut rt, Event::Deadline, now + Duration::from_secs(1));
        // Second quick crash: wait.
        let later = now + Duration::from_secs(2);
        assert!(!step(&s, &mut rt, Event::Exited(Exit::Code(1)), later).contains(&Action::Spawn));
        assert_eq!(rt.state, ProgramState::Backoff { until: later + Duration::from_secs(1) });
        let why = rt.reason.clone().unwrap_or_default();
        assert!(why.starts_with("crash loop: 2 crashes in a row, each within 1m of starting"), "{why}");
        assert!(why.contains("exit status 1") && why.contains("`backoff`"), "{why}");
    }

    #[test]
    fn reset_after_zero_restarts_every_crash_at_once_as_supervisord_does() {
        let mut s = spec();
        s.autorestart = AutoRestart::Always;
        s.backoff.reset_after = Duration::ZERO;
        let now = t0();
        let mut rt = running(&s, now);
        for k in 0..5u64 {
            let at = now + Duration::from_secs(k * 2);
            assert!(step(&s, &mut rt, Event::Exited(Exit::Code(1)), at).contains(&Action::Spawn), "crash {k}");
            step(&s, &mut rt, Event::Spawned { pid: 50 + k as u32 }, at);
            step(&s, &mut rt, Event::Deadline, at + Duration::from_secs(1));
        }
    }

    #[test]
    fn long_run_resets_crash_count() {
        let mut s = spec();
        s.autorestart = AutoRestart::Always;
        let now = t0();
        let mut rt = running(&s, now);
        step(&s, &mut rt, Event::Exited(Exit::Code(1)), now);
        step(&s, &mut rt, Event::Spawned { pid: 43 }, now);
        step(&s, &mut rt, Event::Deadline, now + Duration::from_secs(1));
        let much_later = now + Duration::from_secs(3600);
        assert!(step(&s, &mut rt, Event::Exited(Exit::Code(1)), much_later).contains(&Action::Spawn));
    }

    #[test]
    fn stop_sends_stop_signal_then_kill_after_stop_wait() {
        let mut s = spec();
        s.stop_signal = libc::SIGINT;
        s.stop_as_group = false;
        let now = t0();
        let mut rt = running(&s, now);
        let actions = step(&s, &mut rt, Event::Stop, now);
        assert_eq!(actions, vec![Action::Signal { pid: 42, signal: libc::SIGINT, group: false }]);
        assert_eq!(rt.deadline(&s), Some(now + Duration::from_secs(10)));
        let actions = step(&s, &mut rt, Event::Deadline, now + Duration::from_secs(10));
        assert_eq!(actions, vec![Action::Signal { pid: 42, signal: libc::SIGKILL, group: true }]);
        assert_eq!(rt.deadline(&s), None, "SIGKILL is sent once");
        step(&s, &mut rt, Event::Exited(Exit::Signal(libc::SIGKILL)), now + Duration::from_secs(10));
        assert_eq!(rt.state, ProgramState::Stopped);
    }

    #[test]
    fn stopped_exit_is_not_restarted_even_if_unexpected() {
        let s = spec();
        let mut rt = running(&s, t0());
        step(&s, &mut rt, Event::Stop, t0());
        let actions = step(&s, &mut rt, Event::Exited(Exit::Signal(libc::SIGTERM)), t0());
        assert!(!actions.contains(&Action::Spawn));
        assert_eq!(rt.public_state(), State::Stopped);
    }

    #[test]
    fn start_while_stopping_restarts_after_exit() {
        let s = spec();
        let mut rt = running(&s, t0());
        step(&s, &mut rt, Event::Stop, t0());
        assert_eq!(step(&s, &mut rt, Event::Start, t0()), vec![]);
        let actions = step(&s, &mut rt, Event::Exited(Exit::Code(0)), t0());
        assert!(actions.contains(&Action::Spawn));
    }

    #[test]
    fn stop_in_backoff_cancels_retry() {
        let s = spec();
        let mut rt = started(&s, t0());
        step(&s, &mut rt, Event::Exited(Exit::Code(1)), t0());
        step(&s, &mut rt, Event::Stop, t0());
        assert_eq!(rt.state, ProgramState::Stopped);
        assert_eq!(rt.deadline(&s), None);
    }

    #[test]
    fn start_is_idempotent_when_running() {
        let s = spec();
        let mut rt = running(&s, t0());
        assert_eq!(step(&s, &mut rt, Event::Start, t0()), vec![]);
        assert_eq!(rt.public_state(), State::Running);
    }

    #[test]
    fn start_after_fatal_resets_failures() {
        let mut s = spec();
        s.start_retries = Retries::Count(0);
        let mut rt = started(&s, t0());
        step(&s, &mut rt, Event::Exited(Exit::Code(1)), t0());
        assert_eq!(rt.state, ProgramState::Fatal);
        assert_eq!(step(&s, &mut rt, Event::Start, t0()), vec![Action::Spawn]);
        assert_eq!(rt.failures, 0);
    }

    #[test]
    fn kill_as_group_off_leaves_group_alone() {
        let mut s = spec();
        s.kill_as_group = false;
        let mut rt = running(&s, t0());
        assert_eq!(step(&s, &mut rt, Event::Exited(Exit::Code(0)), t0()), vec![]);
    }
}
