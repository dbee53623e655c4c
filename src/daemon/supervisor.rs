//! The supervisor: the one owner of every program's runtime state.
//!
//! It runs as a single task. Connections, the reaper and signal handlers talk to it through
//! channels; it applies each message through the pure state machine in [`super::process`],
//! carries out the resulting actions (spawn, signal), and answers. Nothing else touches
//! program state, so the order of events is the order it receives them.
//!
//! Control verbs (`start`, `stop`, `restart`, `shutdown`) become [`Job`]s: a list of phases,
//! each applying one verb to a set of programs and complete once every program in it has
//! reached its goal. The reply is sent only when the last phase is complete, never before the
//! action happened. `stop all` and shutdown stop programs one priority level at a time,
//! highest number first; starts go in ascending priority order.
//!
//! There is no periodic tick: the loop sleeps until the earliest state deadline (start-secs,
//! backoff, stop-wait), and when no program has one it only wakes for messages.

use super::engine::{self, Command, Engine, Id, JobId};
use super::hooks;
use super::logs::{self, LogFile, ProgramLogs, Sharing};
use super::probe::{self, HealthEvent};
use super::process::{self, Action, Event, Exit, ProgramState, Runtime};
use super::reaper::Reaped;
use super::recover;
use super::reload;
use super::spawn::{self, Output};
use crate::config::{Access, Config, LogPath, LogSpec, ProgramSpec};
use crate::protocol::{
    AccessChange, DaemonInfo, ErrorCode, ErrorReply, EventKind, LogStream, ProgramStatus, ReloadPlan, Request,
    Response, State, TargetResult,
};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use svc_platform::ProcEntry;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::sleep_until;

/// A message to the supervisor.
#[derive(Debug)]
pub enum Msg {
    /// A control or status request from a connection, answered on `reply`.
    Request {
        /// The request (never `Logs`; see [`Msg::LogFile`]).
        req: Request,
        /// Where the answer goes.
        reply: oneshot::Sender<Response>,
    },
    /// A connection wants to read a program's logs; it gets the shared [`LogFile`]s and does
    /// the reading itself, so a slow reader never holds up the supervisor.
    LogFiles {
        /// Process name.
        name: String,
        /// The logs, or why not.
        reply: oneshot::Sender<Result<ProgramLogs, ErrorReply>>,
    },
    /// A connection wants the event stream: it gets a snapshot and a subscription taken in the
    /// same turn, so nothing is missed or repeated between them.
    Watch {
        /// Program names, `GROUP:*` or `all` (empty: all).
        targets: Vec<String>,
        /// The snapshot and subscription, or why not (unknown targets).
        reply: oneshot::Sender<Result<Watch, ErrorReply>>,
    },
    /// SIGTERM/SIGINT: stop everything and exit.
    Shutdown,
    /// SIGHUP: reload the config, as `svc reload` does (errors go to the daemon log).
    Reload,
}

/// An `events` subscription: the snapshot to send first, then what `rx` receives.
#[derive(Debug)]
pub struct Watch {
    /// A [`Response::Snapshot`].
    pub snapshot: Response,
    /// The process names selected, `None` for all (programs a reload adds included).
    pub names: Option<HashSet<String>>,
    /// Every event applied after the snapshot.
    pub rx: broadcast::Receiver<crate::protocol::Event>,
}

/// Events a watcher may fall behind by before it is told it missed some. The buffer exists
/// only while someone watches.
const EVENT_BUFFER: usize = 1024;

/// Overrides [`EVENT_BUFFER`] so tests can make a watcher fall behind cheaply.
const EVENT_BUFFER_ENV: &str = "SVC_EVENT_BUFFER";

/// What a program's readiness and health checks report, tagged with the run (pid) they watch
/// so that a late report about an earlier run changes nothing.
#[derive(Debug)]
enum CheckMsg {
    /// Its readiness check passed.
    Ready { id: Id, pid: u32 },
    /// Its health check changed its verdict.
    Health { id: Id, pid: u32, event: HealthEvent },
    /// A datagram on its notify socket, with the sender's process group where the OS tells
    /// (looked up at once: `systemd-notify` exits as soon as its datagram is read).
    Notify { id: Id, sender: Option<(i32, Option<i32>)>, messages: Vec<super::notify::NotifyMessage> },
}

/// A `reload` (or SIGHUP) waiting for the config to be read.
struct ReloadAsk {
    dry_run: bool,
    /// `None` for SIGHUP: errors go to the daemon log only.
    reply: Option<oneshot::Sender<Response>>,
}

/// A config read on a thread of its own, and the reloads it answers.
struct Loaded {
    /// The config, or its errors rendered for people (drawn on the reading thread too).
    result: Result<Config, String>,
    asks: Vec<ReloadAsk>,
}

/// One supervised process: its spec, its runtime record, and its log files.
struct Proc {
    /// Stable: the engine's plans refer to it; a program a reload replaces gets a new one.
    id: Id,
    spec: ProgramSpec,
    rt: Runtime,
    stdout_log: Option<Arc<LogFile>>,
    stderr_log: Option<Arc<LogFile>>,
    /// Removed (or replaced) by a reload: being stopped, invisible to clients, and dropped
    /// once no job refers to it.
    retired: bool,
    /// Start-time fingerprint of the live leader, for the crash record.
    start_time: Option<u64>,
    /// Descendants seen outside the process group (a worker that called `setsid`), found
    /// when the stop began, so they can be stopped with it even after the leader is gone.
    strays: Vec<ProcEntry>,
    /// The health check's verdict for the current run, once it has one.
    healthy: Option<bool>,
    /// `spec.depends_on` as program ids (see [`Supervisor::resolve_dependencies`]).
    dep_ids: Vec<(Id, crate::config::Condition)>,
    /// The readiness and health checks of the current run: aborted when it exits, so a
    /// program that is down costs no timer at all.
    checks: Vec<tokio::task::AbortHandle>,
    /// With `ready "notify"`: its socket (kept across runs) and the task that reads it.
    notify: Option<(std::path::PathBuf, tokio::task::AbortHandle)>,
    /// The last `STATUS=` it sent (sd_notify), shown in status.
    status_text: Option<String>,
    /// Its hooks running now, and those skipped meanwhile.
    hook_slots: Arc<hooks::Slots>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        for check in self.checks.drain(..) {
            check.abort();
        }
        // The reader owns the socket; aborting it removes the file.
        if let Some((_, task)) = self.notify.take() {
            task.abort();
        }
    }
}

impl Proc {
    fn new(id: Id, spec: ProgramSpec, now: Instant) -> Proc {
        Proc {
            id,
            spec,
            rt: Runtime::new(now),
            stdout_log: None,
            stderr_log: None,
            retired: false,
            start_time: None,
            strays: Vec::new(),
            healthy: None,
            dep_ids: Vec::new(),
            checks: Vec::new(),
            notify: None,
            status_text: None,
            hook_slots: Arc::default(),
        }
    }
}

enum Reply {
    Client(oneshot::Sender<Response>),
    /// The daemon's own shutdown; a client that asked for it is answered when it is done.
    Shutdown(Option<oneshot::Sender<Response>>),
    /// A reload: the plan plus the outcomes of the programs it started.
    Reload(oneshot::Sender<Response>, ReloadPlan),
    /// Autostart at boot, or a SIGHUP reload: nobody waits.
    Nobody,
}

/// How many programs are started in one turn of the loop before it looks at its other
/// messages, so that a start of 1000 programs does not keep everyone else waiting.
const BATCH: usize = 64;

/// Descriptors kept free for the daemon's own work when the open-file limit is tight: the
/// crash record, clients, reading the process table, reopening logs.
const FD_HEADROOM: usize = 32;

/// Descriptors a program can hold at most: a pipe and a log file per output stream.
const FDS_PER_PROGRAM: usize = 4;

/// The engine's view of the supervisor's programs.
struct Table<'a> {
    procs: &'a [Proc],
    by_id: &'a HashMap<Id, usize>,
}

impl engine::Programs for Table<'_> {
    fn facts(&self, id: Id) -> Option<engine::Facts> {
        let p = &self.procs[*self.by_id.get(&id)?];
        // A program a reload removed is gone for planning once it is down: nothing starts it.
        if p.retired && p.rt.pid().is_none() {
            return None;
        }
        Some(engine::Facts {
            state: p.rt.public_state(),
            ready: p.rt.ready,
            healthy: p.healthy,
            exit_ok: p.rt.last_exit.map(|e| matches!(e, Exit::Code(c) if p.spec.exit_codes.contains(&c))),
            oneshot: p.spec.oneshot,
            priority: p.spec.priority,
        })
    }

    fn deps(&self, id: Id) -> &[(Id, crate::config::Condition)] {
        self.by_id.get(&id).map_or(&[], |&i| &self.procs[i].dep_ids)
    }

    fn name(&self, id: Id) -> String {
        self.by_id.get(&id).map(|&i| self.procs[i].spec.name.clone()).unwrap_or_default()
    }

    fn reason(&self, id: Id) -> Option<String> {
        self.by_id.get(&id).and_then(|&i| self.procs[i].rt.reason.clone())
    }

    fn ids(&self) -> Vec<Id> {
        self.procs.iter().map(|p| p.id).collect()
    }
}

/// The supervisor's state and the channels it listens on.
pub struct Supervisor {
    procs: Vec<Proc>,
    by_name: HashMap<String, usize>,
    by_pid: HashMap<u32, usize>,
    by_id: HashMap<Id, usize>,
    next_id: Id,
    /// Plans starts and stops; the supervisor carries out its commands.
    engine: Engine,
    /// Who waits for each job, with results known before it began (unknown targets).
    replies: HashMap<JobId, (Reply, Vec<TargetResult>)>,
    /// The last turn started as many programs as one turn may: more may be ready to go.
    budget_hit: bool,
    checks_tx: mpsc::UnboundedSender<CheckMsg>,
    /// The notify sockets' directory has been made and checked.
    notify_dir_checked: bool,
    checks_rx: Option<mpsc::UnboundedReceiver<CheckMsg>>,
    log_dir: PathBuf,
    config_path: PathBuf,
    /// `<state>/programs.json`: live programs, for recovery after a crash of the daemon.
    record_path: PathBuf,
    record_dirty: bool,
    /// The last write of the record failed (reported once until it works again).
    record_failing: bool,
    /// A descriptor held in reserve, given up to write the record when every other one is
    /// in use: the record is what keeps a crash from duplicating every program.
    fd_reserve: Option<std::fs::File>,
    /// The soft open-file limit, which decides how many programs can run.
    fd_limit: usize,
    /// The process table, read at most once per loop iteration and only when a stop needs it.
    table: Option<Vec<ProcEntry>>,
    /// Permissions of log files: 0600, or 0640 for the access group.
    sharing: Sharing,
    /// The config's `access`, watched by the server (which closes connections whose access
    /// a reload took away).
    access: watch::Sender<Option<Access>>,
    /// The socket, whose permissions follow `access`.
    socket: PathBuf,
    info: DaemonInfo,
    shutting_down: bool,
    done: bool,
    /// Programs whose process group was killed in this loop iteration: their descendants
    /// that escaped the group and were adopted by svc are looked for once, at its end.
    orphan_owners: HashSet<String>,
    /// Reloads waiting for the next read of the config.
    reload_asks: Vec<ReloadAsk>,
    /// A config is being read (off this thread: a slow disk or a hostile file must not
    /// stop supervision).
    loading: bool,
    loaded_tx: mpsc::UnboundedSender<Loaded>,
    loaded_rx: Option<mpsc::UnboundedReceiver<Loaded>>,
    /// While a start batch is applied, the programs whose spawn was asked for: they are
    /// spawned together afterwards (see [`Supervisor::spawn_deferred`]). `None` outside a batch.
    deferred: Option<Vec<usize>>,
    /// The event stream, created when the first watcher comes and dropped when the last one
    /// has gone: with nobody watching, an event costs a counter increment.
    events: Option<broadcast::Sender<crate::protocol::Event>>,
    /// The number of the last event applied.
    seq: u64,
}

impl Supervisor {
    /// A supervisor for `config`, with every program STOPPED.
    pub fn new(
        config: Config,
        config_path: PathBuf,
        state_dir: &Path,
        log_dir: PathBuf,
        info: DaemonInfo,
    ) -> Supervisor {
        let now = Instant::now();
        let (loaded_tx, loaded_rx) = mpsc::unbounded_channel();
        let (checks_tx, checks_rx) = mpsc::unbounded_channel();
        let procs: Vec<Proc> =
            config.programs.into_iter().enumerate().map(|(i, spec)| Proc::new(i as Id + 1, spec, now)).collect();
        let by_name = procs.iter().enumerate().map(|(i, p)| (p.spec.name.clone(), i)).collect();
        let by_id = procs.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        Supervisor {
            next_id: procs.len() as Id + 1,
            procs,
            by_name,
            by_pid: HashMap::new(),
            by_id,
            engine: Engine::new(),
            replies: HashMap::new(),
            budget_hit: false,
            checks_tx,
            notify_dir_checked: false,
            checks_rx: Some(checks_rx),
            log_dir,
            config_path,
            record_path: state_dir.join("programs.json"),
            record_dirty: false,
            record_failing: false,
            fd_reserve: std::fs::File::open("/dev/null").ok(),
            fd_limit: svc_platform::nofile_limit().try_into().unwrap_or(usize::MAX),
            table: None,
            deferred: None,
            reload_asks: Vec::new(),
            loading: false,
            loaded_tx,
            loaded_rx: Some(loaded_rx),
            orphan_owners: HashSet::new(),
            sharing: Sharing::PRIVATE,
            access: watch::Sender::new(None),
            socket: PathBuf::new(),
            info,
            shutting_down: false,
            done: false,
            events: None,
            seq: 0,
        }
    }

    /// Sets the mode of log files this supervisor creates.
    /// Sets the `access` the daemon started with (its files already have the permissions to
    /// match) and the socket path, whose permissions a reload changes with `access`.
    pub fn access(mut self, access: Option<Access>, socket: PathBuf) -> Supervisor {
        self.sharing = Sharing::with_group(access.as_ref().map(|a| a.gid));
        self.access = watch::Sender::new(access);
        self.socket = socket;
        self
    }

    /// The current `access`, updated by reloads.
    pub fn access_watch(&self) -> watch::Receiver<Option<Access>> {
        self.access.subscribe()
    }

    /// Looks up, once, the ids of what each program depends on: the engine asks for them after
    /// every event, and names would cost a hash lookup each time. Names resolve to the live
    /// (not retired) program of that name; called again whenever names change hands.
    fn resolve_dependencies(&mut self) {
        for k in 0..self.procs.len() {
            let ids = self.procs[k]
                .spec
                .depends_on
                .iter()
                .filter_map(|d| Some((self.procs[*self.by_name.get(&d.name)?].id, d.condition)))
                .collect();
            self.procs[k].dep_ids = ids;
        }
        self.engine.reindex();
    }

    /// Starts the autostart programs, then serves messages until shutdown is complete.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>, mut reaped: mpsc::UnboundedReceiver<Reaped>) {
        self.resolve_dependencies();
        let autostart: Vec<Id> = self.procs.iter().filter(|p| p.spec.autostart).map(|p| p.id).collect();
        let table = Table { procs: &self.procs, by_id: &self.by_id };
        let job = self.engine.start(&table, &autostart, false);
        self.replies.insert(job, (Reply::Nobody, Vec::new()));
        self.progress_jobs();
        let Some(mut loaded) = self.loaded_rx.take() else { return };
        let Some(mut checks) = self.checks_rx.take() else { return };
        while !self.done {
            let deadline = self.next_deadline();
            tokio::select! {
                // Exits first: a request that arrives together with an exit sees its effect.
                biased;
                Some(r) = reaped.recv() => {
                    self.on_reaped(r);
                    // Exits come in bursts (stop all); handle the whole burst before the
                    // per-iteration work below.
                    while let Ok(r) = reaped.try_recv() {
                        self.on_reaped(r);
                    }
                }
                Some(l) = loaded.recv() => self.on_loaded(l),
                Some(c) = checks.recv() => self.on_check(c),
                msg = rx.recv() => match msg {
                    Some(msg) => self.on_msg(msg),
                    // Every sender is gone: the server stopped; behave as on SIGTERM.
                    None => self.begin_shutdown(None),
                },
                () = sleep_until(deadline.unwrap_or_else(far_future).into()), if deadline.is_some() => {
                    self.on_deadlines();
                }
                // Let connections and log pumps run between batches of a big job.
                () = tokio::task::yield_now(), if self.budget_hit => {}
            }
            self.progress_jobs();
            self.compact();
            self.table = None;
            if self.record_dirty && !self.budget_hit {
                // Handle exits already reaped first: every pid left in the record is then an
                // unreaped child, which the kernel cannot give to another process, so its
                // fingerprint is really its own.
                while let Ok(r) = reaped.try_recv() {
                    self.on_reaped(r);
                }
                self.write_record();
            }
            // Last, so that exits handled just above are covered too.
            if !self.orphan_owners.is_empty() {
                self.kill_adopted_orphans();
                self.table = None;
            }
        }
        self.stop_orphans();
        let _ = std::fs::remove_file(&self.record_path);
        tracing::info!("all programs stopped");
    }

    fn write_record(&mut self) {
        self.record_dirty = false;
        for p in self.procs.iter_mut() {
            if let (Some(pid), None) = (p.rt.pid(), p.start_time) {
                p.start_time = svc_platform::process_start_time(pid as i32).ok();
            }
        }
        let boot = svc_platform::boot_id();
        let records: Vec<recover::Record> = self
            .procs
            .iter()
            .filter_map(|p| {
                Some(recover::Record {
                    name: p.spec.name.clone(),
                    pid: p.rt.pid()?,
                    start_time: p.start_time?,
                    boot: boot.clone(),
                })
            })
            .collect();
        let mut written = recover::write(&self.record_path, &records);
        if written.as_ref().is_err_and(|e| matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))) {
            self.fd_reserve = None;
            written = recover::write(&self.record_path, &records);
            self.fd_reserve = std::fs::File::open("/dev/null").ok();
        }
        match written {
            // Once per failure, not per start: a full disk must not fill the daemon's log too.
            Err(e) if !self.record_failing => {
                self.record_failing = true;
                tracing::warn!("cannot record live programs in {}: {e}", self.record_path.display());
            }
            Err(_) => {}
            Ok(()) if self.record_failing => {
                self.record_failing = false;
                tracing::info!("live programs recorded in {} again", self.record_path.display());
            }
            Ok(()) => {}
        }
    }

    /// At shutdown: processes re-parented to svc (descendants of programs that escaped their
    /// process group and outlived it) are killed, so nothing started by svc survives it.
    fn stop_orphans(&mut self) {
        let me = std::process::id() as i32;
        let Ok(table) = svc_platform::process_table() else { return };
        let runner = super::probe::runner::pid();
        for e in svc_platform::descendants(&table, me).iter().filter(|e| !e.zombie) {
            if runner == Some(e.pid as u32) {
                tracing::debug!("stopping the probe runner (pid {})", e.pid);
            } else {
                tracing::info!("killing leftover process {} (orphan of a program)", e.pid);
            }
            let _ = kill(Pid::from_raw(e.pid), Signal::SIGKILL);
        }
    }

    /// Kills the descendants of programs in `orphan_owners` that escaped their process group
    /// (`setsid`) and were adopted by svc (the subreaper) when their parent died: after a
    /// crash, nothing else links them to their program any more. They are recognised by the
    /// `SVC_PROCESS_NAME` they inherited, where the OS shows a process's environment.
    fn kill_adopted_orphans(&mut self) {
        let owners = std::mem::take(&mut self.orphan_owners);
        // Where environments cannot be read (macOS, illumos: no subreaper either), the process
        // table would be read for nothing on every exit.
        static READABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let readable = READABLE.get_or_init(|| {
            !matches!(svc_platform::process_env_var(std::process::id() as i32, "PATH"),
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported)
        });
        if !readable {
            return;
        }
        let me = std::process::id() as i32;
        let adopted: Vec<ProcEntry> =
            self.table().map(|t| t.iter().filter(|e| e.ppid == me && !e.zombie).cloned().collect()).unwrap_or_default();
        for e in adopted.into_iter().filter(|e| !self.by_pid.contains_key(&(e.pid as u32))) {
            match svc_platform::process_env_var(e.pid, "SVC_PROCESS_NAME") {
                Ok(Some(name)) if owners.contains(&name) => {
                    tracing::info!("{name}: killing process {}, which left its process group and outlived it", e.pid);
                    signal_stray(&e, libc::SIGKILL);
                }
                // Gone meanwhile, another program's, or an OS that does not tell.
                _ => {}
            }
        }
    }

    /// The process table for this loop iteration.
    fn table(&mut self) -> Option<&[ProcEntry]> {
        if self.table.is_none() {
            self.table = svc_platform::process_table().ok();
        }
        self.table.as_deref()
    }

    /// Sends a stop (or kill) signal to a program: to its group, and to descendants that
    /// left the group, found now while the leader still links them to it.
    fn signal_program(&mut self, i: usize, pid: u32, signal: i32, group: bool) {
        if group {
            let found: Vec<ProcEntry> = self
                .table()
                .map(|t| {
                    svc_platform::descendants(t, pid as i32)
                        .into_iter()
                        .filter(|e| e.pgid != pid as i32 && !e.zombie)
                        .collect()
                })
                .unwrap_or_default();
            let strays = &mut self.procs[i].strays;
            for e in found {
                if !strays.iter().any(|s| s.pid == e.pid) {
                    strays.push(e);
                }
            }
            for s in self.procs[i].strays.clone() {
                signal_stray(&s, signal);
            }
        }
        send_signal(pid, signal, group);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.procs.iter().filter_map(|p| p.rt.deadline(&p.spec)).min()
    }

    fn on_deadlines(&mut self) {
        let now = Instant::now();
        for i in 0..self.procs.len() {
            let p = &self.procs[i];
            if p.rt.deadline(&p.spec).is_some_and(|d| d <= now) {
                self.apply(i, Event::Deadline);
            }
        }
    }

    fn on_reaped(&mut self, r: Reaped) {
        match self.by_pid.remove(&r.pid) {
            // The crash record is not rewritten for an exit: a dead entry is harmless (its
            // start time no longer matches), and rewriting it per exit made `stop all` of
            // 1000 programs write 1000 times.
            Some(i) => {
                for check in self.procs[i].checks.drain(..) {
                    check.abort();
                }
                self.apply(i, Event::Exited(r.exit));
            }
            // An orphaned grandchild re-parented to us (we are a subreaper): reaping it was
            // the whole job.
            None => tracing::debug!("reaped orphan {} ({})", r.pid, process::describe_exit(r.exit)),
        }
    }

    /// A readiness or health check reported about the run `pid` of a program.
    fn on_check(&mut self, msg: CheckMsg) {
        let (id, pid) = match &msg {
            CheckMsg::Ready { id, pid } | CheckMsg::Health { id, pid, .. } => (*id, *pid),
            CheckMsg::Notify { id, sender, messages } => {
                self.on_notify(*id, *sender, messages);
                return;
            }
        };
        let Some(&i) = self.by_id.get(&id) else { return };
        if self.procs[i].rt.pid() != Some(pid) {
            return;
        }
        match msg {
            CheckMsg::Ready { .. } => {
                if !self.procs[i].rt.ready {
                    tracing::info!("{}: ready", self.procs[i].spec.name);
                }
                self.apply(i, Event::Ready);
            }
            CheckMsg::Notify { .. } => {}
            CheckMsg::Health { event: HealthEvent::Healthy, .. } => {
                tracing::info!("{}: healthy", self.procs[i].spec.name);
                self.procs[i].healthy = Some(true);
                self.engine.touch(id);
                self.publish_about(i, EventKind::Health, |e| e.health = Some("healthy".into()));
            }
            CheckMsg::Health { event: HealthEvent::Unhealthy { reason, failures }, .. } => {
                let why = reason.clone();
                self.publish_about(i, EventKind::Health, |e| {
                    e.health = Some("unhealthy".into());
                    e.reason = Some(why.clone());
                });
                let state = self.procs[i].rt.public_state();
                self.run_hook(i, "on-unhealthy", state, state, Some(pid), None, Some(&why));
                let p = &mut self.procs[i];
                p.healthy = Some(false);
                self.engine.touch(id);
                let restart = p.spec.health.as_ref().is_some_and(|h| h.restart);
                tracing::warn!(
                    "{}: unhealthy after {failures} failed checks ({reason}){}",
                    p.spec.name,
                    if restart { "; restarting it" } else { "" }
                );
                if restart {
                    self.apply(i, Event::Restart { reason: format!("unhealthy: {reason}") });
                }
            }
        }
    }

    /// sd_notify messages from a program. Only its own processes count: the sender must be in
    /// the program's process group, where the OS tells the sender (not macOS, where the
    /// socket's 0600 mode in a private directory limits senders to this user).
    fn on_notify(&mut self, id: Id, sender: Option<(i32, Option<i32>)>, messages: &[super::notify::NotifyMessage]) {
        use super::notify::NotifyMessage as M;
        let Some(&i) = self.by_id.get(&id) else { return };
        let Some(leader) = self.procs[i].rt.pid() else { return };
        if let Some((pid, pgid)) = sender
            && pgid != Some(leader as i32)
            && pid != leader as i32
        {
            tracing::warn!(
                "{}: ignoring a notify message from pid {pid}, which is not one of its processes",
                self.procs[i].spec.name
            );
            return;
        }
        for m in messages {
            match m {
                M::Ready => {
                    if !self.procs[i].rt.ready {
                        tracing::info!("{}: ready (READY=1)", self.procs[i].spec.name);
                    }
                    self.apply(i, Event::Ready);
                }
                M::Status(text) => self.procs[i].status_text = Some(text.chars().take(200).collect()),
                M::Watchdog => self.apply(i, Event::Watchdog),
                M::WatchdogTrigger => {
                    self.apply(i, Event::Restart { reason: "watchdog: the program asked to be restarted".into() })
                }
                M::ExtendTimeout(more) => self.apply(i, Event::ExtendTimeout(*more)),
                M::Stopping => tracing::info!("{}: stopping (STOPPING=1)", self.procs[i].spec.name),
                M::Errno(e) => {
                    self.procs[i].status_text = Some(format!("errno {e}: {}", nix::errno::Errno::from_raw(*e).desc()))
                }
                M::MainPid(p) => {
                    tracing::debug!("{}: MAINPID={p} (svc keeps supervising the leader)", self.procs[i].spec.name)
                }
                M::Reloading | M::Other(_) => {}
            }
        }
    }

    /// The notify socket of program `i`, bound (and read) on first use; `None` without
    /// `ready "notify"` or when it cannot be bound (said in the log: the program then never
    /// becomes ready, which its start-timeout, if any, reports).
    fn notify_socket(&mut self, i: usize) -> Option<std::path::PathBuf> {
        if self.procs[i].spec.ready != crate::config::Readiness::Notify {
            return None;
        }
        if let Some((path, _)) = &self.procs[i].notify {
            return Some(path.clone());
        }
        let dir = self.socket.parent()?.join("n");
        // Checked once, not per program: a start of 1000 notify programs binds 1000 sockets.
        if !self.notify_dir_checked {
            if let Err(e) = svc_platform::ensure_private_dir(&dir) {
                tracing::error!("cannot make the notify socket directory: {e}");
                return None;
            }
            self.notify_dir_checked = true;
        }
        // Short names: a socket path must fit in about 100 bytes.
        let path = dir.join(self.procs[i].id.to_string());
        let socket = match super::notify::NotifySocket::bind(&path) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{}: cannot bind its notify socket {}: {e}", self.procs[i].spec.name, path.display());
                return None;
            }
        };
        let (tx, id) = (self.checks_tx.clone(), self.procs[i].id);
        let task = tokio::spawn(async move {
            loop {
                match socket.recv().await {
                    Ok(d) => {
                        let sender = d.pid.map(|pid| {
                            (pid, nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).ok().map(|g| g.as_raw()))
                        });
                        if tx.send(CheckMsg::Notify { id, sender, messages: d.messages }).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("notify socket {}: {e}", socket.path().display());
                        return;
                    }
                }
            }
        });
        self.procs[i].notify = Some((path.clone(), task.abort_handle()));
        Some(path)
    }

    /// Starts the readiness and health checks of a run that was just spawned. Log checks are
    /// registered here, before the pipes are read, so no early line can slip past them.
    fn start_checks(&mut self, i: usize, pid: u32, ready_pipe: Option<std::io::PipeReader>) {
        let p = &mut self.procs[i];
        p.healthy = None;
        let id = p.id;
        self.engine.touch(id);
        if let Some(pipe) = ready_pipe {
            let tx = self.checks_tx.clone();
            let task = tokio::spawn(async move {
                if super::notify::wait_for_newline(pipe).await {
                    let _ = tx.send(CheckMsg::Ready { id, pid });
                }
            });
            p.checks.push(task.abort_handle());
        }
        if let crate::config::Readiness::Probe(ready) = &p.spec.ready {
            let tx = self.checks_tx.clone();
            let task = match &ready.check {
                crate::config::Check::Log(text) => {
                    let mut seen: Vec<tokio::sync::oneshot::Receiver<()>> =
                        [&p.stdout_log, &p.stderr_log].into_iter().flatten().map(|l| l.watch_line(text)).collect();
                    tokio::spawn(async move {
                        // Whichever stream says it first.
                        while !seen.is_empty() {
                            let (got, k, _) = futures_select(&mut seen).await;
                            if got {
                                let _ = tx.send(CheckMsg::Ready { id, pid });
                                return;
                            }
                            seen.swap_remove(k);
                        }
                    })
                }
                _ => {
                    let (probe, spec) = (ready.clone(), p.spec.clone());
                    tokio::spawn(async move {
                        probe::run_until_pass(&probe, &spec).await;
                        let _ = tx.send(CheckMsg::Ready { id, pid });
                    })
                }
            };
            p.checks.push(task.abort_handle());
        }
        if let Some(health) = p.spec.health.clone() {
            let tx = self.checks_tx.clone();
            let spec = p.spec.clone();
            let task = tokio::spawn(async move {
                probe::health_loop(&health.probe, &spec, health.retries, |event| {
                    let _ = tx.send(CheckMsg::Health { id, pid, event });
                })
                .await;
            });
            p.checks.push(task.abort_handle());
        }
    }

    fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Request { req, reply } => self.on_request(req, reply),
            Msg::LogFiles { name, reply } => {
                let _ = reply.send(self.program_logs(&name));
            }
            Msg::Watch { targets, reply } => {
                let _ = reply.send(self.watch(&targets));
            }
            Msg::Shutdown => self.begin_shutdown(None),
            Msg::Reload => {
                if !self.shutting_down {
                    self.reload(false, None);
                }
            }
        }
    }

    fn on_request(&mut self, req: Request, reply: oneshot::Sender<Response>) {
        let refuse_if_stopping = |this: &Self, reply: oneshot::Sender<Response>| {
            if this.shutting_down {
                let _ = reply.send(error(ErrorCode::ShuttingDown, "the daemon is shutting down", None));
                None
            } else {
                Some(reply)
            }
        };
        match req {
            Request::Status { targets, .. } => {
                let resp = match self.resolve(&targets) {
                    Ok(idx) => Response::Status { programs: idx.into_iter().map(|i| self.status_of(i)).collect() },
                    Err(unknown) => self.unknown_targets(&unknown),
                };
                let _ = reply.send(resp);
            }
            Request::Start { targets, no_wait } => {
                let Some(reply) = refuse_if_stopping(self, reply) else { return };
                self.control(&targets, reply, no_wait, |e, t, ids| e.start(t, ids, true));
            }
            Request::Stop { targets } => {
                self.control(&targets, reply, false, |e, t, ids| e.stop(t, ids, true));
            }
            Request::Restart { targets, no_wait } => {
                let Some(reply) = refuse_if_stopping(self, reply) else { return };
                self.control(&targets, reply, no_wait, |e, t, ids| e.restart(t, ids));
            }
            Request::Reload { dry_run } => {
                let Some(reply) = refuse_if_stopping(self, reply) else { return };
                self.reload(dry_run, Some(reply));
            }
            Request::Signal { signal, targets } => {
                let _ = reply.send(self.signal(&signal, &targets));
            }
            Request::ClearLogs { targets } => {
                let _ = reply.send(self.clear_logs(&targets));
            }
            Request::Shutdown {} => self.begin_shutdown(Some(reply)),
            Request::Info {} => {
                let _ = reply.send(Response::Info(self.info.clone()));
            }
            Request::Logs { .. }
            | Request::DaemonLog { .. }
            | Request::Events { .. }
            | Request::Check { .. }
            | Request::ConfigFile {}
            | Request::PutConfig { .. }
            | Request::Paths {} => {
                let _ = reply.send(error(ErrorCode::Internal, "served by the connection", None));
            }
        }
    }

    /// Resolves targets, reports unknown ones at once, and runs the phases for the rest.
    fn control(
        &mut self,
        targets: &[String],
        reply: oneshot::Sender<Response>,
        no_wait: bool,
        job: impl FnOnce(&mut Engine, &Table<'_>, &[Id]) -> JobId,
    ) {
        let mut found = Vec::new();
        let mut results = Vec::new();
        let mut hints = MAX_HINTS;
        for t in targets {
            match self.resolve(std::slice::from_ref(t)) {
                Ok(idx) => {
                    for i in idx {
                        if !found.contains(&i) {
                            found.push(i);
                        }
                    }
                }
                Err(_) => {
                    // A request is bounded by its line length, not by what it makes the
                    // daemon compute: only the first few unknown names get suggestions.
                    let hint = if hints > 0 { self.hint(t) } else { String::new() };
                    hints = hints.saturating_sub(1);
                    results.push(TargetResult {
                        name: t.clone(),
                        ok: false,
                        state: None,
                        message: format!("no such program or group{hint}"),
                    })
                }
            }
        }
        let ids: Vec<Id> = found.iter().map(|&i| self.procs[i].id).collect();
        let table = Table { procs: &self.procs, by_id: &self.by_id };
        let id = job(&mut self.engine, &table, &ids);
        if no_wait {
            // Answered now: what was found is under way, what was not is an error.
            results.extend(found.iter().map(|&i| TargetResult {
                name: self.procs[i].spec.name.clone(),
                ok: true,
                state: Some(self.procs[i].rt.public_state()),
                message: "under way".into(),
            }));
            results.sort_by(|a, b| a.name.cmp(&b.name));
            let _ = reply.send(Response::Results { results });
            self.replies.insert(id, (Reply::Nobody, Vec::new()));
        } else {
            self.replies.insert(id, (Reply::Client(reply), results));
        }
    }

    fn begin_shutdown(&mut self, reply: Option<oneshot::Sender<Response>>) {
        let table = Table { procs: &self.procs, by_id: &self.by_id };
        if self.shutting_down {
            // Already on the way out; answer this requester when it is done, too.
            if let Some(reply) = reply {
                let all = engine::Programs::ids(&table);
                let job = self.engine.stop(&table, &all, false);
                self.replies.insert(job, (Reply::Client(reply), Vec::new()));
            }
            return;
        }
        tracing::info!("shutting down: stopping every program");
        self.shutting_down = true;
        // Starts still waiting their turn are cancelled (and their requesters told): started
        // now, they would only be stopped again.
        let job = self.engine.shutdown(&table);
        self.publish(EventKind::Shutdown, |_| {});
        self.replies.insert(job, (Reply::Shutdown(reply), Vec::new()));
    }

    /// Carries out the engine's commands until it has nothing more to do this turn (at most
    /// [`BATCH`] starts), then answers the jobs that are complete.
    fn progress_jobs(&mut self) {
        let mut budget = BATCH;
        self.budget_hit = false;
        loop {
            let table = Table { procs: &self.procs, by_id: &self.by_id };
            let commands = self.engine.next(&table, budget);
            if commands.is_empty() {
                break;
            }
            // Starts of one turn are spawned together (see `spawn_deferred`).
            self.deferred = Some(Vec::new());
            for c in commands {
                match c {
                    Command::Start(id) => {
                        budget = budget.saturating_sub(1);
                        if let Some(&i) = self.by_id.get(&id) {
                            self.apply(i, Event::Start);
                        }
                    }
                    Command::Stop(id) => {
                        if let Some(&i) = self.by_id.get(&id) {
                            self.apply(i, Event::Stop);
                        }
                    }
                }
            }
            self.spawn_deferred();
            if budget == 0 {
                // The rest waits for the next turn of the loop, so clients are answered.
                self.budget_hit = true;
                break;
            }
        }
        let table = Table { procs: &self.procs, by_id: &self.by_id };
        for (job, results) in self.engine.finished(&table) {
            self.finish(job, results);
        }
    }

    fn finish(&mut self, job: JobId, results: Vec<TargetResult>) {
        let Some((reply, mut early)) = self.replies.remove(&job) else { return };
        // A job over many programs (the autostart above all, after parsing the config) leaves
        // free heap behind; the daemon may run for months, so give it back now.
        if results.len() >= BATCH || matches!(reply, Reply::Nobody) {
            svc_platform::release_free_memory();
        }
        early.extend(results);
        early.sort_by(|a, b| a.name.cmp(&b.name));
        match reply {
            Reply::Client(tx) => {
                let _ = tx.send(Response::Results { results: early });
            }
            Reply::Shutdown(tx) => {
                if let Some(tx) = tx {
                    let _ = tx.send(Response::Ok);
                }
                self.done = true;
            }
            Reply::Reload(tx, plan) => {
                let _ = tx.send(Response::Reload { plan, results: early });
            }
            Reply::Nobody => {}
        }
    }

    /// Gives the socket, the log directory and the logs to the new access group (or takes
    /// them back), and tells the server. Granting is done files first, revoking connections
    /// first, so that nobody has more access than either config gives at any moment. A grant
    /// that fails (say, a group we are not a member of) restores the old access; a
    /// revocation always takes effect, as far as the files allow.
    fn change_access(&mut self, access: Option<Access>) -> Result<(), String> {
        let old = self.access.borrow().clone();
        let gid = access.as_ref().map(|a| a.gid);
        if gid.is_none() {
            self.access.send_replace(None);
        }
        let state_dir = self.record_path.parent().filter(|d| self.log_dir.starts_with(d)).map(Path::to_path_buf);
        if let Err(e) = share_files(&self.socket, &self.log_dir, state_dir.as_deref(), gid) {
            if gid.is_none() {
                // Taking access away fails closed: the server already refuses the group, and
                // whatever could be made private stays private.
                tracing::warn!("access revoked, but not every file could be made private: {e}");
            } else {
                let _ = share_files(&self.socket, &self.log_dir, state_dir.as_deref(), old.as_ref().map(|a| a.gid));
                self.access.send_replace(old);
                let who = describe(access.as_ref()).unwrap_or_else(|| "the owner only".into());
                return Err(format!("cannot give access to {who}: {e}"));
            }
        }
        self.sharing = Sharing::with_group(gid);
        for p in &self.procs {
            for log in [&p.stdout_log, &p.stderr_log].into_iter().flatten() {
                log.set_sharing(self.sharing);
            }
        }
        let who = |a: Option<&Access>| describe(a).unwrap_or_else(|| "owner only".into());
        tracing::info!("access: {} -> {}", who(old.as_ref()), who(access.as_ref()));
        self.access.send_replace(access);
        Ok(())
    }

    /// Asks for the config to be read again; [`Supervisor::on_loaded`] applies it. Reloads
    /// that arrive while a read is under way wait for a fresh one (the file may have changed
    /// since that read began).
    fn reload(&mut self, dry_run: bool, reply: Option<oneshot::Sender<Response>>) {
        self.reload_asks.push(ReloadAsk { dry_run, reply });
        if !self.loading {
            self.start_load();
        }
    }

    /// Reads the config on a thread of its own: reading from a slow disk, or parsing and
    /// drawing the errors of a big or hostile file, must not hold up supervision.
    fn start_load(&mut self) {
        let asks = std::mem::take(&mut self.reload_asks);
        let path = self.config_path.clone();
        let tx = self.loaded_tx.clone();
        self.loading = true;
        let reader = std::thread::Builder::new().name("svc-config".into()).stack_size(8 << 20).spawn(move || {
            let result = crate::config::load(&path).map_err(|e| e.render(false));
            let _ = tx.send(Loaded { result, asks });
        });
        if let Err(e) = reader {
            // No thread to be had (a process limit): read it here rather than not at all.
            tracing::warn!("cannot start a thread to read the config ({e}); reading it on the main thread");
            let asks = std::mem::take(&mut self.reload_asks);
            let result = crate::config::load(&self.config_path).map_err(|e| e.render(false));
            self.on_loaded(Loaded { result, asks });
        }
    }

    fn on_loaded(&mut self, loaded: Loaded) {
        self.loading = false;
        for ask in loaded.asks {
            if self.shutting_down {
                if let Some(tx) = ask.reply {
                    let _ = tx.send(error(ErrorCode::ShuttingDown, "the daemon is shutting down", None));
                }
                continue;
            }
            match &loaded.result {
                Ok(config) => self.apply_config(config.clone(), ask.dry_run, ask.reply),
                Err(e) => {
                    tracing::error!("reload refused, nothing changed:\n{e}");
                    if let Some(tx) = ask.reply {
                        let _ = tx.send(error(ErrorCode::ConfigInvalid, e, None));
                    }
                }
            }
        }
        if !self.reload_asks.is_empty() {
            self.start_load();
        }
    }

    /// Applies the difference between the running programs and `config`. Only called with a
    /// config that loaded without errors.
    fn apply_config(&mut self, config: Config, dry_run: bool, reply: Option<oneshot::Sender<Response>>) {
        let mut plan = reload::plan(self.procs.iter().filter(|p| !p.retired).map(|p| &p.spec), &config.programs);
        let old_access = self.access.borrow().clone();
        if config.access != old_access {
            plan.access =
                Some(AccessChange { from: describe(old_access.as_ref()), to: describe(config.access.as_ref()) });
        }
        if dry_run {
            if let Some(tx) = reply {
                let _ = tx.send(Response::Reload { plan, results: Vec::new() });
            }
            return;
        }
        if config.access != old_access
            && let Err(e) = self.change_access(config.access.clone())
        {
            let message = format!("reload refused, nothing changed: {e}");
            tracing::error!("{message}");
            if let Some(tx) = reply {
                let _ = tx.send(error(ErrorCode::ConfigInvalid, &message, None));
            }
            return;
        }
        let _ = svc_platform::notify_reloading();
        tracing::info!(
            "reload: {} added, {} removed, {} changed, {} updated in place, {} unchanged",
            plan.added.len(),
            plan.removed.len(),
            plan.changed.len(),
            plan.updated.len(),
            plan.unchanged.len()
        );
        let applied = plan.clone();
        self.publish(EventKind::Reload, |e| e.plan = Some(applied));
        let now = Instant::now();
        let mut stop = Vec::new();
        let mut start = Vec::new();
        for spec in config.programs {
            let old = self.by_name.get(&spec.name).copied();
            match old {
                Some(i) if plan.updated.contains(&spec.name) => self.procs[i].spec = spec,
                Some(i) if plan.changed.contains(&spec.name) => {
                    let was_up =
                        matches!(self.procs[i].rt.public_state(), State::Starting | State::Running | State::Backoff);
                    let mut fresh = Proc::new(self.next_id, spec, now);
                    self.next_id += 1;
                    // Keep writing to the same log objects when the log settings did not
                    // change, so followers and rotation carry on across the restart.
                    let same_stamps = fresh.spec.log_timestamps == self.procs[i].spec.log_timestamps;
                    if same_stamps && fresh.spec.stdout_log == self.procs[i].spec.stdout_log {
                        fresh.stdout_log = self.procs[i].stdout_log.clone();
                    }
                    if same_stamps && fresh.spec.stderr_log == self.procs[i].spec.stderr_log {
                        fresh.stderr_log = self.procs[i].stderr_log.clone();
                    }
                    let autostart = fresh.spec.autostart;
                    self.procs[i].retired = true;
                    stop.push(i);
                    self.by_name.insert(fresh.spec.name.clone(), self.procs.len());
                    self.by_id.insert(fresh.id, self.procs.len());
                    if autostart || was_up {
                        start.push(self.procs.len());
                    }
                    self.procs.push(fresh);
                }
                Some(_) => {}
                None => {
                    if spec.autostart {
                        start.push(self.procs.len());
                    }
                    self.by_name.insert(spec.name.clone(), self.procs.len());
                    self.by_id.insert(self.next_id, self.procs.len());
                    self.procs.push(Proc::new(self.next_id, spec, now));
                    self.next_id += 1;
                }
            }
        }
        for name in &plan.removed {
            if let Some(i) = self.by_name.remove(name) {
                self.procs[i].retired = true;
                stop.push(i);
            }
        }
        // A program removed or replaced by an earlier reload may still be on its way out
        // (STOPPING within its stop-wait): whatever this reload starts under the same name
        // waits for it, or two instances would run at once.
        for &s in &start {
            let name = &self.procs[s].spec.name;
            let lingering: Vec<usize> = (0..self.procs.len())
                .filter(|&j| j != s && self.procs[j].retired && self.procs[j].rt.pid().is_some())
                .filter(|&j| self.procs[j].spec.name == *name && !stop.contains(&j))
                .collect();
            stop.extend(lingering);
        }
        self.resolve_dependencies();
        let stop: Vec<Id> = stop.iter().map(|&i| self.procs[i].id).collect();
        let start: Vec<Id> = start.iter().map(|&i| self.procs[i].id).collect();
        let table = Table { procs: &self.procs, by_id: &self.by_id };
        let job = self.engine.stop_then_start(&table, &stop, &start);
        let reply = match reply {
            Some(tx) => Reply::Reload(tx, plan),
            None => Reply::Nobody,
        };
        self.replies.insert(job, (reply, Vec::new()));
        let _ = svc_platform::notify_ready();
    }

    /// Drops retired programs once they are stopped (the engine sees them as gone already).
    fn compact(&mut self) {
        if !self.procs.iter().any(|p| p.retired && p.rt.pid().is_none()) {
            return;
        }
        for p in self.procs.iter().filter(|p| p.retired && p.rt.pid().is_none()) {
            self.engine.forget(p.id);
        }
        let keep: Vec<bool> = self.procs.iter().map(|p| !p.retired || p.rt.pid().is_some()).collect();
        let mut k = keep.iter();
        self.procs.retain(|_| *k.next().unwrap_or(&true));
        self.by_name =
            self.procs.iter().enumerate().filter(|(_, p)| !p.retired).map(|(i, p)| (p.spec.name.clone(), i)).collect();
        self.by_pid = self.procs.iter().enumerate().filter_map(|(i, p)| p.rt.pid().map(|pid| (pid, i))).collect();
        self.by_id = self.procs.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        self.resolve_dependencies();
    }

    /// Sends `signal` to every running target.
    fn signal(&mut self, signal: &str, targets: &[String]) -> Response {
        let Some(number) = svc_platform::signal_from_name(signal) else {
            return error(ErrorCode::BadRequest, &format!("unknown signal `{signal}`"), Some("signal"));
        };
        let idx = match self.resolve(targets) {
            Ok(idx) => idx,
            Err(unknown) => return self.unknown_targets(&unknown),
        };
        let name = svc_platform::signal_name(number).unwrap_or("?");
        let results = idx
            .into_iter()
            .map(|i| {
                let p = &self.procs[i];
                let (ok, message) = match p.rt.pid() {
                    Some(pid) => {
                        send_signal(pid, number, p.spec.stop_as_group);
                        (true, format!("sent SIG{name}"))
                    }
                    None => (false, "not running".to_owned()),
                };
                TargetResult { name: p.spec.name.clone(), ok, state: Some(p.rt.public_state()), message }
            })
            .collect();
        Response::Results { results }
    }

    /// Empties the logs of targets.
    fn clear_logs(&mut self, targets: &[String]) -> Response {
        let idx = match self.resolve(targets) {
            Ok(idx) => idx,
            Err(unknown) => return self.unknown_targets(&unknown),
        };
        let mut results = Vec::new();
        for i in idx {
            let mut failures = Vec::new();
            for stream in [LogStream::Stdout, LogStream::Stderr] {
                if let Ok(log) = self.log_file_of(i, stream)
                    && let Err(e) = log.clear()
                {
                    failures.push(e.to_string());
                }
            }
            let p = &self.procs[i];
            results.push(TargetResult {
                name: p.spec.name.clone(),
                ok: failures.is_empty(),
                state: Some(p.rt.public_state()),
                message: if failures.is_empty() { "logs cleared".into() } else { failures.join("; ") },
            });
        }
        Response::Results { results }
    }

    /// Feeds `event` to program `i` and carries out the resulting actions, including the
    /// spawn outcome events they produce.
    fn apply(&mut self, i: usize, event: Event) {
        // Every change of state, readiness or exit goes through here: the engine looks at
        // what it was told changed, and only at that.
        self.engine.touch(self.procs[i].id);
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let before = self.procs[i].rt.public_state();
            let pid_before = self.procs[i].rt.pid();
            let ready_before = self.procs[i].rt.ready;
            let exit = match &event {
                Event::Exited(exit) => Some(*exit),
                _ => None,
            };
            let p = &mut self.procs[i];
            let reason_before = p.rt.reason.clone();
            let actions = process::step(&p.spec, &mut p.rt, event, Instant::now());
            let after = p.rt.public_state();
            let mut why = None;
            if before != after {
                // A failure, or a stop the daemon decided (watchdog, health, start-timeout),
                // says why.
                let fresh = p.rt.reason != reason_before;
                match &p.rt.reason {
                    Some(reason)
                        if matches!(after, State::Backoff | State::Fatal) || (fresh && after == State::Stopping) =>
                    {
                        tracing::info!("{}: {} -> {} ({reason})", p.spec.name, before.as_str(), after.as_str());
                        why = Some(reason.clone());
                    }
                    _ => tracing::info!("{}: {} -> {}", p.spec.name, before.as_str(), after.as_str()),
                }
            }
            let pid = if exit.is_some() { pid_before } else { self.procs[i].rt.pid().or(pid_before) };
            if before != after {
                let why = why.clone();
                self.publish_about(i, EventKind::State, |e| {
                    e.from = Some(before);
                    e.to = Some(after);
                    e.pid = pid;
                    (e.exit_status, e.exit_signal) = exit_fields(exit);
                    e.reason = why;
                });
            }
            let checked = self.procs[i].spec.ready != crate::config::Readiness::Running;
            if checked && !ready_before && self.procs[i].rt.ready {
                self.publish_about(i, EventKind::Ready, |e| e.pid = pid);
            }
            if exit.is_some() {
                self.run_hook(i, "on-exit", before, after, pid, exit, why.as_deref());
            }
            if after == State::Fatal && before != State::Fatal {
                self.run_hook(i, "on-fatal", before, after, pid, exit, why.as_deref());
            }
            for action in actions {
                match action {
                    // A program that exits while the daemon shuts down is not restarted (as in
                    // supervisord): its stop phase would only stop it again.
                    Action::Spawn if self.shutting_down => queue
                        .push_back(Event::SpawnFailed { error: "not restarted: the daemon is shutting down".into() }),
                    Action::Spawn if self.fd_shortage(i).is_some() => {
                        let error = self.fd_shortage(i).unwrap_or_default();
                        queue.push_back(Event::SpawnFailed { error });
                    }
                    // In a batch, the spawn (and what follows from it) waits for the others.
                    Action::Spawn => match &mut self.deferred {
                        Some(deferred) => deferred.push(i),
                        None => {
                            let outputs = self.prepare_spawn(i);
                            let notify = self.notify_socket(i);
                            let result = spawn::spawn(&self.procs[i].spec, outputs.0, outputs.1, notify.as_deref());
                            queue.push_back(self.finish_spawn(i, result));
                        }
                    },
                    Action::Signal { pid, signal, group } => self.signal_program(i, pid, signal, group),
                    Action::KillGroup { pgid } => {
                        // ESRCH (nothing left) is the usual, happy case.
                        let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
                        for s in std::mem::take(&mut self.procs[i].strays) {
                            signal_stray(&s, libc::SIGKILL);
                        }
                        // (At shutdown every orphan is killed anyway: stop_orphans.)
                        if !self.shutting_down {
                            self.orphan_owners.insert(self.procs[i].spec.name.clone());
                        }
                    }
                }
            }
        }
    }

    /// A snapshot of `targets` and a subscription to what happens next.
    fn watch(&mut self, targets: &[String]) -> Result<Watch, ErrorReply> {
        let idx = self.resolve(targets).map_err(|unknown| match self.unknown_targets(&unknown) {
            Response::Error(e) => e,
            _ => ErrorReply { code: ErrorCode::UnknownTarget, message: "no such program".into(), field: None },
        })?;
        let all = targets.is_empty() || targets.iter().any(|t| t == "all");
        let names = (!all).then(|| idx.iter().map(|&i| self.procs[i].spec.name.clone()).collect());
        let programs = idx.into_iter().map(|i| self.status_of(i)).collect();
        let buffer = std::env::var(EVENT_BUFFER_ENV).ok().and_then(|n| n.parse().ok()).unwrap_or(EVENT_BUFFER).max(1);
        let rx = self.events.get_or_insert_with(|| broadcast::channel(buffer).0).subscribe();
        Ok(Watch { snapshot: Response::Snapshot { seq: self.seq, time: unix_now(), programs }, names, rx })
    }

    /// Numbers an event and sends it to the watchers, if any; `fill` sets what it reports.
    fn publish(&mut self, kind: EventKind, fill: impl FnOnce(&mut crate::protocol::Event)) {
        self.seq += 1;
        let Some(tx) = &self.events else { return };
        if tx.receiver_count() == 0 {
            // The last watcher has gone: give the buffer back.
            self.events = None;
            return;
        }
        let mut event = crate::protocol::Event::new(self.seq, unix_now(), kind);
        fill(&mut event);
        let _ = tx.send(event);
    }

    /// [`Supervisor::publish`] for an event about program `i`.
    fn publish_about(&mut self, i: usize, kind: EventKind, fill: impl FnOnce(&mut crate::protocol::Event)) {
        let (program, group) = (self.procs[i].spec.name.clone(), self.procs[i].spec.group.clone());
        self.publish(kind, |e| {
            e.program = Some(program);
            e.group = Some(group);
            fill(e);
        });
    }

    /// Runs program `i`'s `hook`, if it has one, with the event in its environment. Not while
    /// the daemon shuts down: its stops are not news, and leftovers are killed on the way out.
    #[allow(clippy::too_many_arguments)]
    fn run_hook(
        &self,
        i: usize,
        hook: &'static str,
        from: State,
        to: State,
        pid: Option<u32>,
        exit: Option<Exit>,
        reason: Option<&str>,
    ) {
        let p = &self.procs[i];
        let command = match hook {
            "on-exit" => &p.spec.hooks.on_exit,
            "on-fatal" => &p.spec.hooks.on_fatal,
            _ => &p.spec.hooks.on_unhealthy,
        };
        let Some(command) = command else { return };
        if self.shutting_down {
            tracing::debug!("{}: {hook} not run: the daemon is shutting down", p.spec.name);
            return;
        }
        let mut env = vec![
            ("SVC_HOOK".to_owned(), hook.to_owned()),
            ("SVC_PROGRAM".to_owned(), p.spec.name.clone()),
            ("SVC_GROUP".to_owned(), p.spec.group.clone()),
            ("SVC_FROM_STATE".to_owned(), from.as_str().to_owned()),
            ("SVC_STATE".to_owned(), to.as_str().to_owned()),
        ];
        let (code, signal) = exit_fields(exit);
        let optional = [
            ("SVC_PID", pid.map(|p| p.to_string())),
            ("SVC_EXIT_CODE", code.map(|c| c.to_string())),
            ("SVC_EXIT_SIGNAL", signal),
            ("SVC_REASON", reason.map(str::to_owned)),
        ];
        env.extend(optional.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))));
        let run = hooks::Run {
            hook,
            program: p.spec.name.clone(),
            command: command.clone(),
            env,
            timeout: p.spec.hooks.timeout,
        };
        hooks::start(&p.hook_slots, run);
    }

    /// Descriptors program `i` may need: both ends of each pipe while it is spawned, and a
    /// log file per stream not yet open.
    fn fd_need(&self, i: usize) -> usize {
        let p = &self.procs[i];
        let stdout = !matches!(p.spec.stdout_log.path, LogPath::Discard);
        let stderr = !p.spec.redirect_stderr && !matches!(p.spec.stderr_log.path, LogPath::Discard);
        let unopened = |log: &Option<Arc<LogFile>>| usize::from(!log.as_ref().is_some_and(|l| l.is_open()));
        usize::from(stdout) * (2 + unopened(&p.stdout_log)) + usize::from(stderr) * (2 + unopened(&p.stderr_log))
    }

    /// Why program `i` cannot be spawned now for want of descriptors, if so. Counted only
    /// when the open-file limit could run short for this config: otherwise it costs nothing.
    fn fd_shortage(&self, i: usize) -> Option<String> {
        if self.fd_limit >= self.procs.len() * FDS_PER_PROGRAM + 2 * FD_HEADROOM {
            return None;
        }
        let pending: usize = self.deferred.iter().flatten().map(|&j| self.fd_need(j)).sum();
        let in_use = svc_platform::open_fd_count() + pending;
        let need = self.fd_need(i);
        if in_use + need + FD_HEADROOM <= self.fd_limit {
            return None;
        }
        Some(format!(
            "not started: too few file descriptors (limit {}, {in_use} in use, it needs {need}, svc keeps {FD_HEADROOM} \
             for itself); raise the limit (`ulimit -n` before `svc up`, LimitNOFILE= under systemd) or run fewer programs",
            self.fd_limit
        ))
    }

    /// Spawns the programs deferred during a batch, several at a time, then lets each one's
    /// state machine see the outcome. Concurrency pays because a spawn mostly waits: the
    /// daemon is suspended (vfork) until the child has loaded its program, and on a busy
    /// machine that child waits for a CPU. One after the other, 1000 programs took 2.5x the
    /// time a shell needs to fork them; the shell never waits for its children's exec.
    fn spawn_deferred(&mut self) {
        let Some(deferred) = self.deferred.take() else { return };
        // Only programs of equal priority are spawned together: a lower priority is still
        // spawned entirely before a higher one.
        let keyed: Vec<(i32, usize)> = deferred.iter().map(|&i| (self.procs[i].spec.priority, i)).collect();
        for run in keyed.chunk_by(|a, b| a.0 == b.0) {
            let run: Vec<usize> = run.iter().map(|&(_, i)| i).collect();
            let outputs: Vec<_> = run.iter().map(|&i| self.prepare_spawn(i)).collect();
            let sockets: Vec<_> = run.iter().map(|&i| self.notify_socket(i)).collect();
            let work: Vec<_> = run
                .iter()
                .zip(&outputs)
                .zip(&sockets)
                .map(|((&i, &(out, err)), sock)| (&self.procs[i].spec, out, err, sock.as_deref()))
                .collect();
            let results = spawn::spawn_many(&work);
            for (&i, result) in run.iter().zip(results) {
                let event = self.finish_spawn(i, result);
                self.apply(i, event);
            }
        }
    }

    /// Opens the program's log files if needed and says where its output goes.
    fn prepare_spawn(&mut self, i: usize) -> (Output, Output) {
        let log_dir = self.log_dir.clone();
        let p = &mut self.procs[i];
        if p.stdout_log.is_none() {
            p.stdout_log =
                open_log(&p.spec.stdout_log, &log_dir, &p.spec.name, "out", self.sharing, p.spec.log_timestamps);
        }
        if p.stderr_log.is_none() && !p.spec.redirect_stderr {
            p.stderr_log =
                open_log(&p.spec.stderr_log, &log_dir, &p.spec.name, "err", self.sharing, p.spec.log_timestamps);
        }
        let out = if p.stdout_log.is_some() { Output::Pipe } else { Output::Discard };
        let err = if p.stderr_log.is_some() { Output::Pipe } else { Output::Discard };
        (out, err)
    }

    /// Takes over a spawned process (pid, log pump) and returns the event for its state machine.
    fn finish_spawn(&mut self, i: usize, result: std::io::Result<spawn::Spawned>) -> Event {
        let p = &mut self.procs[i];
        match result {
            Ok(s) => {
                let out = s.stdout.zip(p.stdout_log.clone());
                let err = s.stderr.zip(p.stderr_log.clone());
                if out.is_some() || err.is_some() {
                    tokio::spawn(logs::pump(out, err));
                }
                self.by_pid.insert(s.pid, i);
                // The fingerprint is read later, in one go with the crash record: reading
                // /proc/PID/stat here made starting 1000 programs a quarter slower.
                p.start_time = None;
                p.strays.clear();
                self.record_dirty = true;
                p.status_text = None;
                let checked = p.spec.ready != crate::config::Readiness::Running || p.spec.health.is_some();
                if checked {
                    self.start_checks(i, s.pid, s.ready_pipe);
                }
                Event::Spawned { pid: s.pid }
            }
            Err(e) => {
                let error = if e.kind() == std::io::ErrorKind::NotFound && e.raw_os_error().is_none() {
                    e.to_string()
                } else {
                    format!("cannot run `{}`: {e}", p.spec.command.first().map_or("", String::as_str))
                };
                Event::SpawnFailed { error }
            }
        }
    }

    fn program_logs(&mut self, name: &str) -> Result<ProgramLogs, ErrorReply> {
        let Some(&i) = self.by_name.get(name) else {
            return Err(ErrorReply {
                code: ErrorCode::UnknownTarget,
                message: format!("no such program: {name}{}", self.hint(name)),
                field: Some("name".into()),
            });
        };
        let stdout = self.log_file_of(i, LogStream::Stdout).ok();
        let stderr = self.log_file_of(i, LogStream::Stderr).ok();
        let spec = &self.procs[i].spec;
        let custom = [&spec.stdout_log.path, &spec.stderr_log.path].map(|p| matches!(p, LogPath::File(_)));
        Ok(ProgramLogs { stdout, stderr, redirected: spec.redirect_stderr, custom })
    }

    fn log_file_of(&mut self, i: usize, stream: LogStream) -> Result<Arc<LogFile>, ErrorReply> {
        let name = self.procs[i].spec.name.clone();
        let log_dir = self.log_dir.clone();
        let mode = self.sharing;
        let p = &mut self.procs[i];
        let (slot, spec, suffix) = match stream {
            LogStream::Stdout => (&mut p.stdout_log, &p.spec.stdout_log, "out"),
            LogStream::Stderr if p.spec.redirect_stderr => {
                return Err(ErrorReply {
                    code: ErrorCode::BadRequest,
                    message: format!("{name} has redirect-stderr set: its stderr is in its stdout log"),
                    field: Some("stream".into()),
                });
            }
            LogStream::Stderr => (&mut p.stderr_log, &p.spec.stderr_log, "err"),
        };
        if slot.is_none() {
            *slot = open_log(spec, &log_dir, &p.spec.name, suffix, mode, p.spec.log_timestamps);
        }
        slot.clone().ok_or_else(|| ErrorReply {
            code: ErrorCode::BadRequest,
            message: format!("{name} discards that output (path \"none\")"),
            field: Some("stream".into()),
        })
    }

    /// Program indices for targets: names, `GROUP:*`, `PROGRAM:*`, `GROUP:NAME`, or `all`
    /// (an empty list means all). Sorted by group then name. Unknown targets are the error.
    fn resolve(&self, targets: &[String]) -> Result<Vec<usize>, Vec<String>> {
        let mut out = Vec::new();
        let mut unknown = Vec::new();
        let all = targets.is_empty() || targets.iter().any(|t| t == "all");
        // Program-block and group names to programs, built once for the request if a target
        // needs it: a request naming thousands of targets then costs one pass, not one each.
        let mut blocks: Option<HashMap<&str, Vec<usize>>> = None;
        for t in targets.iter().filter(|_| !all) {
            let hits: Vec<usize> = if let Some(&i) = self.by_name.get(t.as_str()) {
                vec![i]
            } else {
                let blocks = blocks.get_or_insert_with(|| {
                    let mut map: HashMap<&str, Vec<usize>> = HashMap::new();
                    for i in self.live() {
                        let s = &self.procs[i].spec;
                        map.entry(s.program.as_str()).or_default().push(i);
                        if s.group != s.program {
                            map.entry(s.group.as_str()).or_default().push(i);
                        }
                    }
                    map
                });
                match t.split_once(':') {
                    Some((group, rest)) => blocks
                        .get(group)
                        .into_iter()
                        .flatten()
                        .copied()
                        .filter(|&i| rest == "*" || self.procs[i].spec.name == rest)
                        .collect(),
                    // A program block with numprocs, or a group, named without `:*`.
                    None => blocks.get(t.as_str()).cloned().unwrap_or_default(),
                }
            };
            if hits.is_empty() {
                unknown.push(t.clone());
            }
            out.extend(hits);
        }
        if all {
            out = self.live().collect();
        }
        if !unknown.is_empty() {
            return Err(unknown);
        }
        out.sort_by(|&a, &b| {
            let (sa, sb) = (&self.procs[a].spec, &self.procs[b].spec);
            (&sa.group, &sa.name).cmp(&(&sb.group, &sb.name))
        });
        out.dedup();
        Ok(out)
    }

    /// " (did you mean `web`?)" for a mistyped program or group name, or "".
    fn hint(&self, typed: &str) -> String {
        let names = self.live().flat_map(|i| [self.procs[i].spec.name.as_str(), self.procs[i].spec.group.as_str()]);
        let (head, tail) = typed.split_once(':').map_or((typed, ""), |(g, rest)| (g, rest));
        match crate::suggest::closest(head, names) {
            Some(best) if tail.is_empty() => format!(" (did you mean `{best}`?)"),
            Some(best) => format!(" (did you mean `{best}:{tail}`?)"),
            None => String::new(),
        }
    }

    fn unknown_targets(&self, unknown: &[String]) -> Response {
        let mut listed: Vec<String> =
            unknown.iter().take(MAX_HINTS).map(|u| format!("{}{}", shorten(u), self.hint(u))).collect();
        if unknown.len() > MAX_HINTS {
            listed.push(format!("and {} more", unknown.len() - MAX_HINTS));
        }
        error(ErrorCode::UnknownTarget, &format!("no such program or group: {}", listed.join(", ")), Some("targets"))
    }

    /// Indices of programs clients can see (not retired by a reload).
    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.procs.len()).filter(|&i| !self.procs[i].retired)
    }

    fn status_of(&self, i: usize) -> ProgramStatus {
        let p = &self.procs[i];
        let now = Instant::now();
        let (exit_status, exit_signal) = match p.rt.last_exit {
            Some(Exit::Code(c)) => (Some(c), None),
            Some(Exit::Signal(s)) => {
                (None, Some(svc_platform::signal_name(s).map_or_else(|| s.to_string(), str::to_owned)))
            }
            None => (None, None),
        };
        let next_attempt = match p.rt.state {
            ProgramState::Backoff { until } => Some(unix_time_of(until, now)),
            _ => None,
        };
        let reason = match p.rt.public_state() {
            State::Backoff | State::Fatal => p.rt.reason.clone(),
            _ => {
                p.stdout_log.as_ref().and_then(|l| l.error()).or_else(|| p.stderr_log.as_ref().and_then(|l| l.error()))
            }
        };
        ProgramStatus {
            name: p.spec.name.clone(),
            group: p.spec.group.clone(),
            state: p.rt.public_state(),
            pid: p.rt.pid(),
            since: unix_time_of(p.rt.since, now),
            exit_status,
            exit_signal,
            restarts: p.rt.restarts,
            next_attempt,
            reason,
            log_dropped_bytes: [&p.stdout_log, &p.stderr_log].into_iter().flatten().map(|l| l.dropped()).sum(),
            ready: p.rt.ready,
            ready_check: p.spec.ready != crate::config::Readiness::Running || p.spec.health.is_some(),
            health: p.healthy.map(|h| if h { "healthy" } else { "unhealthy" }.to_owned()),
            waiting: self.engine.waiting_reason(&Table { procs: &self.procs, by_id: &self.by_id }, p.id),
            status_text: p.status_text.clone(),
            // Filled outside the loop by the connection that asked (server.rs).
            cpu_seconds: None,
            memory_bytes: None,
        }
    }
}

/// Waits for the first of `rxs` to resolve: `(fired, index, _)`; a receiver whose sender was
/// dropped (its log went away) resolves as not fired.
async fn futures_select(rxs: &mut [tokio::sync::oneshot::Receiver<()>]) -> (bool, usize, ()) {
    std::future::poll_fn(|cx| {
        for (k, rx) in rxs.iter_mut().enumerate() {
            if let std::task::Poll::Ready(r) = std::pin::Pin::new(rx).poll(cx) {
                return std::task::Poll::Ready((r.is_ok(), k, ()));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// How many unknown target names of one request get a did-you-mean search and a mention in
/// the error: the rest are counted.
const MAX_HINTS: usize = 8;

/// A name as it is quoted back in an error: at most 100 characters of it.
fn shorten(name: &str) -> String {
    match name.char_indices().nth(100) {
        Some((cut, _)) => format!("{}... ({} characters)", &name[..cut], name.chars().count()),
        None => name.to_owned(),
    }
}

/// `access` for people: "group NAME (read-only)", "group NAME (control)", or `None`.
fn describe(access: Option<&Access>) -> Option<String> {
    access.map(|a| format!("group {} ({})", a.group, if a.read_only { "read-only" } else { "control" }))
}

/// Sets the permissions that go with access group `gid` (or with none): the socket's
/// directory and the log directory 0750 (0700), the socket 0660 (0600), log files 0640
/// (0600), and `state_dir` (given when the log directory is inside it) 0710 (0700), all
/// group-owned by `gid`. Never follows a symlink, and touches only what we own.
fn share_files(socket: &Path, log_dir: &Path, state_dir: Option<&Path>, gid: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = nix::unistd::Uid::current().as_raw();
    let set = |path: &Path, mode: u32| -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        if meta.file_type().is_symlink() || meta.uid() != me {
            return Err(std::io::Error::other(format!("{} is not ours (or is a symlink)", path.display())));
        }
        if let Some(gid) = gid {
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
                .map_err(|e| std::io::Error::other(format!("chgrp {}: {e}", path.display())))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    };
    let (dir_mode, socket_mode) = if gid.is_some() { (0o750, 0o660) } else { (0o700, 0o600) };
    // The state dir first when granting (members need it to reach the logs), last when revoking.
    if let (Some(dir), Some(_)) = (state_dir, gid) {
        set(dir, 0o710)?;
    }
    for dir in socket.parent().into_iter().chain([log_dir]) {
        set(dir, dir_mode)?;
    }
    if let (Some(dir), None) = (state_dir, gid) {
        set(dir, 0o700)?;
    }
    match set(socket, socket_mode) {
        // Removed by a /tmp cleaner: SIGUSR1 re-creates it with the access then in force.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => other?,
    }
    let file_mode = Sharing::with_group(gid).mode;
    for entry in std::fs::read_dir(log_dir)?.flatten() {
        let path = entry.path();
        // Program logs and their backups only: the daemon's own log (svc.log) stays private,
        // and a log directory shared with other files does not open those.
        let name = entry.file_name();
        let ours = name.to_str().is_some_and(|n| n.contains(".out.log") || n.contains(".err.log"));
        if ours
            && entry.file_type().is_ok_and(|t| t.is_file())
            && let Err(e) = set(&path, file_mode)
        {
            // One odd file (someone else's, left in our directory) must not block the rest.
            tracing::warn!("cannot set the permissions of {}: {e}", path.display());
        }
    }
    Ok(())
}

fn open_log(
    spec: &LogSpec,
    log_dir: &Path,
    name: &str,
    suffix: &str,
    sharing: Sharing,
    timestamps: bool,
) -> Option<Arc<LogFile>> {
    Some(match &spec.path {
        LogPath::Discard => return None,
        LogPath::Default => LogFile::open_own(
            log_dir.join(format!("{name}.{suffix}.log")),
            spec.max_bytes,
            spec.backups,
            sharing,
            timestamps,
        ),
        LogPath::File(p) => LogFile::open(p.clone(), spec.max_bytes, spec.backups, sharing, timestamps),
    })
}

/// Signals a descendant that left its program's group, if it is still the same process
/// (start time unchanged); a worker that made its own group gets the signal group-wide.
fn signal_stray(s: &ProcEntry, signal: i32) {
    if svc_platform::process_start_time(s.pid).ok() != Some(s.start_time) {
        return;
    }
    send_signal(s.pid as u32, signal, s.pgid == s.pid);
}

fn send_signal(pid: u32, signal: i32, group: bool) {
    let Ok(sig) = Signal::try_from(signal) else {
        tracing::error!("signal {signal} does not exist on this OS");
        return;
    };
    let target = Pid::from_raw(pid as i32);
    let sent = if group { killpg(target, sig) } else { kill(target, sig) };
    if let Err(e) = sent {
        tracing::debug!("signal {sig} to {pid} (group: {group}): {e}");
    }
    if sig != Signal::SIGKILL && sig != Signal::SIGCONT {
        // A stopped (SIGSTOP/^Z) process cannot act on the stop signal until continued;
        // systemd sends SIGCONT for the same reason.
        let _ = if group { killpg(target, Signal::SIGCONT) } else { kill(target, Signal::SIGCONT) };
    }
}

fn error(code: ErrorCode, message: &str, field: Option<&str>) -> Response {
    Response::Error(ErrorReply { code, message: message.into(), field: field.map(str::to_owned) })
}

/// `exit_status` and `exit_signal` (without `SIG`) of an exit, as status shows them.
fn exit_fields(exit: Option<Exit>) -> (Option<i32>, Option<String>) {
    match exit {
        Some(Exit::Code(c)) => (Some(c), None),
        Some(Exit::Signal(s)) => {
            (None, Some(svc_platform::signal_name(s).map_or_else(|| s.to_string(), str::to_owned)))
        }
        None => (None, None),
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// Unix seconds of a monotonic instant, by its distance from now.
fn unix_time_of(at: Instant, now: Instant) -> f64 {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    if at <= now { wall - (now - at).as_secs_f64() } else { wall + (at - now).as_secs_f64() }
}

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86400 * 365)
}
