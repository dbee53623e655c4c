//! The job engine: which programs to start and stop next, and when a request is done.
//!
//! Pure, like [`super::process`]: it reads program facts through [`Programs`], keeps its own
//! plan, and answers with [`Command`]s; the supervisor carries them out and asks again after
//! every event. Programs are addressed by stable [`Id`]s that are never reused, so a plan
//! made before a reload can never act on another program that took a slot.
//!
//! - **Start** takes the targets and, transitively, what they depend on. A program is started
//!   once every dependency meets its condition (`ready` by default); until then it waits, with
//!   a reason anyone can read ("waiting for db (FATAL)"). Among programs free to start, lower
//!   `priority` goes first. A start request is done for a target when it is ready (a oneshot:
//!   when it completed), or when it failed.
//! - **Stop** takes the targets and, transitively, what depends on them, and stops them in
//!   waves: a wave is fully stopped before the next is signalled. Dependents come before their
//!   dependencies; otherwise higher `priority` numbers first, as in supervisord. Dependencies
//!   win over priority where both order the same two programs.
//! - **Restart** is a stop, then a start of the same programs (dependents included: like
//!   systemd's `Requires=`, restarting a dependency restarts what depends on it).
//!
//! **Incremental.** The engine looks only at what changed: the caller says which programs'
//! facts may have changed ([`Engine::touch`]) and when dependency lists or the set of programs
//! changed ([`Engine::reindex`]). A touched program's dependents (found in a reverse index) are
//! re-examined, each from where its last examination stopped, and only the touched and
//! re-examined programs are checked for an outcome. Everything else keeps its last answer,
//! which is the answer a full recomputation would give (a property test checks this): a start
//! of 10 levels of 100 programs, each depending on the 100 before, looked at every dependency
//! of every waiting program after each `READY=1` (90,000 looks, 1,000 times) before this.

use crate::config::Condition;
use crate::protocol::{State, TargetResult};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// A program's stable id.
pub type Id = u64;

/// What conditions are decided on: small and `Copy`, because the engine reads it for every
/// dependency it examines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// supervisord's state.
    pub state: State,
    /// Ready (see `Readiness`): a second fact beside RUNNING.
    pub ready: bool,
    /// The health check's verdict, if it has one and it has spoken.
    pub healthy: Option<bool>,
    /// Whether the last exit was expected (an `exit-codes` code), if it exited.
    pub exit_ok: Option<bool>,
    /// Runs once to completion.
    pub oneshot: bool,
    /// Lower starts first and stops last.
    pub priority: i32,
}

impl Facts {
    /// A process exists (or is about to be retried): it is not down.
    pub fn up(&self) -> bool {
        matches!(self.state, State::Starting | State::Running | State::Backoff | State::Stopping)
    }

    /// Already where a start would bring it.
    fn goal_reached(&self) -> bool {
        (self.state == State::Running && self.ready)
            || (self.oneshot && self.state == State::Exited && self.exit_ok == Some(true))
    }
}

/// Read access to every program; the supervisor's table, or a map in tests.
pub trait Programs {
    /// The program's facts, or `None` if it is gone (removed by a reload).
    fn facts(&self, id: Id) -> Option<Facts>;
    /// What it depends on (empty when gone).
    fn deps(&self, id: Id) -> &[(Id, Condition)];
    /// Its process name.
    fn name(&self, id: Id) -> String;
    /// Why it is not running, if it failed.
    fn reason(&self, id: Id) -> Option<String>;
    /// Every program, in a stable order.
    fn ids(&self) -> Vec<Id>;
}

/// Whether a dependency's condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// It holds.
    Yes,
    /// Not yet; it may.
    Wait,
    /// It cannot hold as things are (the dependency is FATAL, or completed unsuccessfully).
    Never(String),
}

/// Whether `cond` holds for a program with facts `v`.
pub fn holds(cond: Condition, v: &Facts) -> Holds {
    let failed = || Holds::Never(v.state.as_str().to_owned());
    match cond {
        Condition::Started => match v.state {
            State::Starting | State::Running | State::Exited => Holds::Yes,
            State::Fatal => failed(),
            _ => Holds::Wait,
        },
        // A oneshot that completed successfully is as ready as it will ever be.
        Condition::Ready if v.oneshot && v.state == State::Exited && v.exit_ok == Some(true) => Holds::Yes,
        Condition::Ready if v.ready => Holds::Yes,
        Condition::Healthy if v.ready && v.healthy == Some(true) => Holds::Yes,
        Condition::Ready | Condition::Healthy => match v.state {
            State::Fatal => failed(),
            State::Exited if !v.oneshot => Holds::Never("EXITED".into()),
            State::Exited => Holds::Never(exit_words(v)),
            _ => Holds::Wait,
        },
        Condition::Completed => match v.state {
            State::Exited | State::Fatal => Holds::Yes,
            _ => Holds::Wait,
        },
        Condition::CompletedSuccessfully => match (v.state, v.exit_ok) {
            (State::Exited, Some(true)) => Holds::Yes,
            (State::Exited, _) => Holds::Never(exit_words(v)),
            (State::Fatal, _) => failed(),
            _ => Holds::Wait,
        },
    }
}

fn exit_words(v: &Facts) -> String {
    match v.exit_ok {
        Some(false) => "exited unsuccessfully".into(),
        _ => "EXITED".into(),
    }
}

/// Why a program cannot start yet: the first dependency that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Blocked {
    /// It may still hold.
    Wait(Id, Condition),
    /// It cannot, as things are; with the dependency's state.
    Never(Id, String),
}

impl Blocked {
    fn describe(&self, p: &dyn Programs) -> String {
        match self {
            Blocked::Wait(dep, cond) => format!("waiting for {} to be {}", p.name(*dep), cond.as_str()),
            Blocked::Never(dep, why) => format!("waiting for {} ({why})", p.name(*dep)),
        }
    }
}

/// A program waiting to start, and where the examination of its dependencies stands.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Waiter {
    priority: i32,
    /// Every dependency before this position in its list holds, and none of them is a
    /// completed oneshot whose own dependencies are looked through: an examination can
    /// resume here unless one of those changed.
    cursor: usize,
    /// The first dependency that does not hold; `None`: free to start.
    blocked: Option<Blocked>,
}

/// What the supervisor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Feed the program a start.
    Start(Id),
    /// Feed the program a stop.
    Stop(Id),
}

/// Identifies a job (a client's request, a reload, the autostart, a shutdown).
pub type JobId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Start,
    Stop,
}

/// One step of a job: a set of programs to bring down in waves, or up.
#[derive(Debug)]
enum Step {
    /// Each inner list is stopped completely before the next is signalled.
    Stop(VecDeque<Vec<Id>>),
    Start(Vec<Id>),
}

#[derive(Debug)]
struct Job {
    id: JobId,
    steps: VecDeque<Step>,
    /// The wave or start set being worked on, and its verb: the programs without an outcome yet.
    active: HashSet<Id>,
    verb: Option<Verb>,
    /// Targets whose outcome is reported, and whether they were already at the goal when
    /// their step began ("already running", "not running").
    report: HashMap<Id, Option<bool>>,
    results: Vec<TargetResult>,
}

/// Who depends on each program: the dependent, the position in its list, and whether it is
/// a oneshot (whose dependents may look through it).
type Dependents = HashMap<Id, Vec<(Id, usize, bool)>>;

/// The plan: pending starts and the jobs that wait for outcomes.
#[derive(Debug, Default)]
pub struct Engine {
    next_job: JobId,
    jobs: Vec<Job>,
    /// Programs to start once their dependencies allow.
    waiting: HashMap<Id, Waiter>,
    /// The waiting programs nothing blocks, in start order: (priority, id).
    free: BTreeSet<(i32, Id)>,
    /// Programs whose facts may have changed since they were last looked at.
    touched: HashSet<Id>,
    /// Dependency lists or the set of programs changed: look at everything again.
    stale: bool,
    /// The reverse dependency index, built on first need after each [`Engine::reindex`].
    dependents: Option<Dependents>,
}

impl Engine {
    /// An engine with nothing to do.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Program `id`'s facts (state, readiness, health, exit) may have changed: the next call
    /// re-examines it and what depends on it. Cheap; call it for every change.
    pub fn touch(&mut self, id: Id) {
        self.touched.insert(id);
    }

    /// Dependency lists, specs or the set of programs changed (a reload, a removed program
    /// dropped): the next call rebuilds the reverse index and looks at everything again.
    pub fn reindex(&mut self) {
        self.stale = true;
        self.dependents = None;
    }

    /// Starts `targets` and what they depend on; `report` says whether outcomes are
    /// reported (not for the autostart).
    pub fn start(&mut self, p: &dyn Programs, targets: &[Id], report: bool) -> JobId {
        let set = self.with_dependencies(p, targets);
        self.add_job(vec![Step::Start(set)], targets, report)
    }

    /// Stops `targets` and what depends on them, dependents first.
    pub fn stop(&mut self, p: &dyn Programs, targets: &[Id], report: bool) -> JobId {
        let set = self.with_dependents(p, targets);
        for id in &set {
            self.unwait(*id);
        }
        let waves = stop_waves(p, &set);
        self.add_job(vec![Step::Stop(waves)], targets, report)
    }

    /// Stops `targets` and their dependents, then starts the same programs again (those of
    /// the dependents that were up, and every target).
    pub fn restart(&mut self, p: &dyn Programs, targets: &[Id]) -> JobId {
        let set = self.with_dependents(p, targets);
        for id in &set {
            self.unwait(*id);
        }
        let again: Vec<Id> =
            set.iter().copied().filter(|id| targets.contains(id) || p.facts(*id).is_some_and(|v| v.up())).collect();
        let waves = stop_waves(p, &set);
        let start = self.with_dependencies(p, &again);
        self.add_job(vec![Step::Stop(waves), Step::Start(start)], targets, true)
    }

    /// A job of explicit steps, for reloads: stop `stop` (with their dependents), then start
    /// `start` (with their dependencies). Outcomes of `start` are reported.
    pub fn stop_then_start(&mut self, p: &dyn Programs, stop: &[Id], start: &[Id]) -> JobId {
        let down = self.with_dependents(p, stop);
        for id in &down {
            self.unwait(*id);
        }
        let waves = stop_waves(p, &down);
        let up = self.with_dependencies(p, start);
        self.add_job(vec![Step::Stop(waves), Step::Start(up)], start, true)
    }

    /// Shutdown: nothing waits to start any more (requesters are told), and everything
    /// stops in order.
    pub fn shutdown(&mut self, p: &dyn Programs) -> JobId {
        self.refresh(p);
        let waiting: HashMap<Id, Waiter> = std::mem::take(&mut self.waiting);
        self.free.clear();
        for job in &mut self.jobs {
            let mut cancelled: Vec<Id> = Vec::new();
            job.steps.retain(|s| match s {
                Step::Start(set) => {
                    cancelled.extend(set);
                    false
                }
                Step::Stop(_) => true,
            });
            if job.verb == Some(Verb::Start) {
                // Those already spawned get their outcome as usual; the rest never will.
                cancelled.extend(job.active.iter().filter(|id| waiting.contains_key(id)));
                job.active.retain(|id| !waiting.contains_key(id));
            }
            cancelled.sort_unstable();
            for id in cancelled {
                if job.report.remove(&id).is_some() {
                    job.results.push(TargetResult {
                        name: p.name(id),
                        ok: false,
                        state: p.facts(id).map(|v| v.state),
                        message: "not started: the daemon is shutting down".into(),
                    });
                }
            }
        }
        let all = p.ids();
        let waves = stop_waves(p, &all);
        self.add_job(vec![Step::Stop(waves)], &[], false)
    }

    /// Why `id` waits instead of starting, if it does: "waiting for db to be ready". As of
    /// the last [`Engine::next`] or [`Engine::finished`].
    pub fn waiting_reason(&self, p: &dyn Programs, id: Id) -> Option<String> {
        self.waiting.get(&id).and_then(|w| w.blocked.as_ref()).map(|b| b.describe(p))
    }

    /// Whether any program waits for its turn or its dependencies.
    #[cfg(test)]
    fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Forgets a program that is gone (a reload removed it and it has stopped).
    pub fn forget(&mut self, id: Id) {
        self.unwait(id);
    }

    /// The next commands, at most `budget` starts of them (stops are cheap and go at once).
    /// Call again after carrying them out: a start that completes at once may free others.
    pub fn next(&mut self, p: &dyn Programs, budget: usize) -> Vec<Command> {
        self.refresh(p);
        self.verify(p);
        let mut out = Vec::new();
        // Advance jobs whose current step is done; entering a step yields commands.
        for j in 0..self.jobs.len() {
            while self.jobs[j].verb.is_none() || self.jobs[j].active.is_empty() {
                let Some(step) = self.jobs[j].steps.pop_front() else {
                    self.jobs[j].verb = None;
                    self.jobs[j].active.clear();
                    break;
                };
                self.enter(j, step, p, &mut out);
            }
        }
        // Starts: in (priority, id) order, those nothing blocks.
        for _ in 0..budget {
            let Some((_, id)) = self.free.pop_first() else { break };
            self.waiting.remove(&id);
            // Its facts change once the start is carried out.
            self.touched.insert(id);
            out.push(Command::Start(id));
        }
        out
    }

    /// Jobs that are complete, with their results (sorted by name), removed from the engine.
    /// Call it after [`Engine::next`] returned nothing more to do: only `next` moves a job on
    /// to its next step.
    pub fn finished(&mut self, p: &dyn Programs) -> Vec<(JobId, Vec<TargetResult>)> {
        self.refresh(p);
        self.verify(p);
        let mut done = Vec::new();
        let mut k = 0;
        while k < self.jobs.len() {
            let job = &self.jobs[k];
            if job.verb.is_none() && job.steps.is_empty() {
                let mut job = self.jobs.remove(k);
                job.results.sort_by(|a, b| a.name.cmp(&b.name));
                done.push((job.id, job.results));
            } else {
                k += 1;
            }
        }
        if self.waiting.is_empty() && !done.is_empty() {
            // Nothing waits: the index (90,000 entries for 10 levels of 100) and the maps a
            // start of 1000 grew are given back, and rebuilt when next needed.
            self.dependents = None;
            self.waiting.shrink_to_fit();
            self.touched.shrink_to_fit();
        }
        done
    }

    fn add_job(&mut self, steps: Vec<Step>, targets: &[Id], report: bool) -> JobId {
        self.next_job += 1;
        let report = if report { targets.iter().map(|&t| (t, None)).collect() } else { HashMap::new() };
        self.jobs.push(Job {
            id: self.next_job,
            steps: steps.into(),
            active: HashSet::new(),
            verb: None,
            report,
            results: Vec::new(),
        });
        self.next_job
    }

    fn unwait(&mut self, id: Id) {
        if let Some(w) = self.waiting.remove(&id) {
            self.free.remove(&(w.priority, id));
            // A job starting it now sees it as not waiting: an outcome.
            self.touched.insert(id);
        }
    }

    /// The reverse dependency index, built if a reindex dropped it.
    fn index(&mut self, p: &dyn Programs) -> &Dependents {
        self.dependents.get_or_insert_with(|| build_index(p))
    }

    /// Brings the waiting programs and the jobs' outcomes up to date with the touched
    /// programs (or with everything, after a reindex).
    fn refresh(&mut self, p: &dyn Programs) {
        if !self.stale && self.touched.is_empty() {
            return;
        }
        let everything = std::mem::take(&mut self.stale);
        let touched = std::mem::take(&mut self.touched);
        // Where each waiting program's examination must resume (`usize::MAX`: at its cursor).
        let mut from: HashMap<Id, usize> = HashMap::new();
        if everything {
            from.extend(self.waiting.keys().map(|&id| (id, 0)));
        } else {
            self.index(p);
            let (index, waiting) = (self.dependents.as_ref().expect("built just above"), &self.waiting);
            for &x in &touched {
                if waiting.contains_key(&x) {
                    from.entry(x).or_insert(usize::MAX);
                }
                // A completed oneshot is looked through (see `examine`): a change to what it
                // depends on concerns its dependents too, at any depth.
                let mut through: HashSet<Id> = HashSet::new();
                let mut stack: Vec<(Id, bool)> = vec![(x, true)];
                while let Some((y, direct)) = stack.pop() {
                    for &(w, k, oneshot) in index.get(&y).into_iter().flatten() {
                        if waiting.contains_key(&w) {
                            let at = if direct { k } else { usize::MAX };
                            let slot = from.entry(w).or_insert(at);
                            *slot = (*slot).min(at);
                        }
                        if oneshot && through.insert(w) {
                            stack.push((w, false));
                        }
                    }
                }
            }
        }
        let mut changed: Vec<Id> = touched.into_iter().collect();
        for (id, at) in from {
            changed.push(id);
            let Some(&Waiter { priority, cursor, .. }) = self.waiting.get(&id) else { continue };
            match p.facts(id) {
                // Gone, or brought up by something else: no longer waiting.
                Some(v) if !v.up() => {
                    let (cursor, blocked) = examine(p, id, at.min(cursor));
                    if blocked.is_none() {
                        self.free.insert((priority, id));
                    } else {
                        self.free.remove(&(priority, id));
                    }
                    self.waiting.insert(id, Waiter { priority, cursor, blocked });
                }
                _ => {
                    self.waiting.remove(&id);
                    self.free.remove(&(priority, id));
                }
            }
        }
        changed.sort_unstable();
        changed.dedup();
        for j in 0..self.jobs.len() {
            let active = &self.jobs[j].active;
            let ids: Vec<Id> = if everything {
                active.iter().copied().collect()
            } else if changed.len() < active.len() {
                changed.iter().copied().filter(|id| active.contains(id)).collect()
            } else {
                active.iter().copied().filter(|id| changed.binary_search(id).is_ok()).collect()
            };
            self.collect(j, p, &ids);
        }
    }

    /// `targets` plus, transitively, every program they depend on that does not meet its
    /// condition yet. A dependency that does (a migration that completed) is not run again,
    /// but what it depends on is still brought up: web needs the database its migration
    /// needed, even when the migration is done.
    fn with_dependencies(&self, p: &dyn Programs, targets: &[Id]) -> Vec<Id> {
        let mut seen: HashSet<Id> = targets.iter().copied().collect();
        let mut out: Vec<Id> = targets.to_vec();
        let mut queue: VecDeque<Id> = targets.iter().copied().collect();
        while let Some(id) = queue.pop_front() {
            for &(dep, cond) in p.deps(id) {
                let Some(dv) = p.facts(dep) else { continue };
                if !seen.insert(dep) {
                    continue;
                }
                queue.push_back(dep);
                if holds(cond, &dv) != Holds::Yes && !dv.up() {
                    out.push(dep);
                }
            }
        }
        out
    }

    /// `targets` plus, transitively, every program that depends on one of them.
    fn with_dependents(&mut self, p: &dyn Programs, targets: &[Id]) -> Vec<Id> {
        let index = self.index(p);
        let mut seen: HashSet<Id> = targets.iter().copied().collect();
        let mut out: Vec<Id> = targets.to_vec();
        let mut queue: VecDeque<Id> = targets.iter().copied().collect();
        while let Some(id) = queue.pop_front() {
            for &(d, _, _) in index.get(&id).into_iter().flatten() {
                if seen.insert(d) {
                    out.push(d);
                    queue.push_back(d);
                }
            }
        }
        out
    }

    fn enter(&mut self, j: usize, step: Step, p: &dyn Programs, out: &mut Vec<Command>) {
        let (verb, set) = match step {
            Step::Stop(mut waves) => {
                let wave = waves.pop_front().unwrap_or_default();
                if !waves.is_empty() {
                    self.jobs[j].steps.push_front(Step::Stop(waves));
                }
                for &id in &wave {
                    let Some(v) = p.facts(id) else { continue };
                    if let Some(slot) = self.jobs[j].report.get_mut(&id) {
                        slot.get_or_insert(!v.up());
                    }
                    if v.up() {
                        out.push(Command::Stop(id));
                        self.touched.insert(id);
                    }
                }
                (Verb::Stop, wave)
            }
            Step::Start(set) => {
                for &id in &set {
                    let Some(v) = p.facts(id) else { continue };
                    if let Some(slot) = self.jobs[j].report.get_mut(&id) {
                        *slot = Some(v.goal_reached());
                    }
                    // Dependencies that already meet their condition were left out of `set`.
                    if !v.up() && !self.waiting.contains_key(&id) {
                        let (cursor, blocked) = examine(p, id, 0);
                        if blocked.is_none() {
                            self.free.insert((v.priority, id));
                        }
                        self.waiting.insert(id, Waiter { priority: v.priority, cursor, blocked });
                        // Another job starting it sees it waiting now.
                        self.touched.insert(id);
                    }
                }
                (Verb::Start, set)
            }
        };
        let job = &mut self.jobs[j];
        job.verb = Some(verb);
        job.active = set.iter().copied().collect();
        self.collect(j, p, &set);
    }

    /// Records the outcomes of those of `ids` that are active in job `j` and settled.
    fn collect(&mut self, j: usize, p: &dyn Programs, ids: &[Id]) {
        let verb = self.jobs[j].verb;
        let mut settled = Vec::new();
        for &id in ids {
            if !self.jobs[j].active.contains(&id) {
                continue;
            }
            let facts = p.facts(id);
            let outcome = match (verb, &facts) {
                (_, None) => Some((false, None, "removed by a reload".to_owned())),
                (Some(Verb::Stop), Some(v)) if !v.up() => Some((true, Some(v.state), String::new())),
                (Some(Verb::Stop), _) => None,
                (Some(Verb::Start), Some(v)) => self.start_outcome(p, id, v).map(|(ok, m)| (ok, Some(v.state), m)),
                (None, _) => None,
            };
            if let Some(o) = outcome {
                settled.push((id, facts.map(|_| p.name(id)), o));
            }
        }
        let job = &mut self.jobs[j];
        for (id, name, (ok, state, message)) in settled {
            job.active.remove(&id);
            // A restart (or a reload's change) reports how the start went, not that the
            // stop before it worked: "web: stopped" after `svc restart web` was wrong.
            let starts_later = job.steps.iter().any(|s| matches!(s, Step::Start(set) if set.contains(&id)));
            if verb == Some(Verb::Stop) && ok && starts_later {
                continue;
            }
            if let Some(was) = job.report.remove(&id) {
                let message = match (verb, message.is_empty(), was) {
                    (Some(Verb::Stop), true, Some(true)) => "not running".to_owned(),
                    (Some(Verb::Stop), true, _) => "stopped".to_owned(),
                    (Some(Verb::Start), _, Some(true)) if ok && message == "started" => "already running".to_owned(),
                    (_, _, _) => message,
                };
                job.results.push(TargetResult { name: name.unwrap_or_default(), ok, state, message });
            }
        }
    }

    /// `Some((ok, message))` once a program of a start step has an outcome.
    fn start_outcome(&self, p: &dyn Programs, id: Id, v: &Facts) -> Option<(bool, String)> {
        let reason = || p.reason(id).unwrap_or_default();
        if let Some(w) = self.waiting.get(&id) {
            // Not started yet. Waiting for a dependency that cannot hold fails the request;
            // the program keeps waiting (it starts if the dependency recovers).
            return match &w.blocked {
                Some(b @ Blocked::Never(..)) => Some((false, format!("not started: {}", b.describe(p)))),
                _ => None,
            };
        }
        match v.state {
            State::Running if v.oneshot => None,
            State::Running if v.ready => Some((true, "started".into())),
            State::Exited if v.oneshot && v.exit_ok == Some(true) => Some((true, "completed".into())),
            State::Exited if v.oneshot => {
                Some((false, format!("failed: {}", p.reason(id).unwrap_or_else(|| "exited unsuccessfully".into()))))
            }
            State::Starting | State::Running | State::Stopping => None,
            State::Backoff => Some((false, format!("failed to start: {}", reason()))),
            State::Fatal => Some((false, reason())),
            State::Stopped | State::Exited => Some((false, "stopped before it was running".into())),
        }
    }

    /// Checks that every cached answer is the one a full recomputation gives: a change the
    /// caller did not [`Engine::touch`] would leave a program waiting for ever. Debug builds
    /// only, and only while it is cheap.
    fn verify(&self, p: &dyn Programs) {
        if !cfg!(debug_assertions) || self.waiting.len() > 200 {
            return;
        }
        for (&id, w) in &self.waiting {
            let v = p.facts(id);
            assert!(v.is_some_and(|v| !v.up()), "engine: waiting program {id} is up or gone (untouched change?)");
            let (_, blocked) = examine(p, id, 0);
            assert_eq!(blocked, w.blocked, "engine: stale examination of program {id} (untouched change?)");
            assert_eq!(self.free.contains(&(w.priority, id)), blocked.is_none(), "engine: free set of {id}");
        }
        for job in &self.jobs {
            for &id in job.active.iter().take(200) {
                let settled = match (job.verb, p.facts(id)) {
                    (_, None) => true,
                    (Some(Verb::Stop), Some(v)) => !v.up(),
                    (Some(Verb::Start), Some(v)) => self.start_outcome(p, id, &v).is_some(),
                    (None, _) => false,
                };
                assert!(!settled, "engine: program {id} has an outcome nobody collected (untouched change?)");
            }
        }
    }
}

/// Who depends on what, from the programs' dependency lists.
fn build_index(p: &dyn Programs) -> Dependents {
    let mut index: Dependents = HashMap::new();
    for id in p.ids() {
        let oneshot = p.facts(id).is_some_and(|f| f.oneshot);
        for (k, &(dep, _)) in p.deps(id).iter().enumerate() {
            index.entry(dep).or_default().push((id, k, oneshot));
        }
    }
    index
}

/// Examines program `id`'s dependencies from position `from` of its list (those before it
/// hold and are not looked through): the cursor to resume from next time, and the first
/// dependency that does not hold, if any. A oneshot that completed stands in for what it
/// needed: web after a finished migration still waits for the database that migration
/// waited for (it may be restarting).
fn examine(p: &dyn Programs, id: Id, from: usize) -> (usize, Option<Blocked>) {
    let deps = p.deps(id);
    let mut cursor = from.min(deps.len());
    // The common case, with no completed oneshot to look through, allocates nothing.
    let mut clean = true;
    let mut more: Vec<(Id, Condition)> = Vec::new();
    let mut seen: HashSet<(Id, &'static str)> = HashSet::new();
    let mut check = |dep: Id, cond: Condition, more: &mut Vec<(Id, Condition)>| -> Result<bool, Blocked> {
        let Some(dv) = p.facts(dep) else { return Ok(false) };
        match holds(cond, &dv) {
            Holds::Yes if dv.oneshot && dv.state == State::Exited => {
                if seen.insert((dep, cond.as_str())) {
                    more.extend(p.deps(dep).iter().rev().copied());
                }
                Ok(true)
            }
            Holds::Yes => Ok(false),
            Holds::Wait => Err(Blocked::Wait(dep, cond)),
            Holds::Never(why) => Err(Blocked::Never(dep, why)),
        }
    };
    for &(dep, cond) in &deps[cursor..] {
        match check(dep, cond, &mut more) {
            Err(why) => return (cursor, Some(why)),
            Ok(looked_through) => {
                clean &= !looked_through;
                if clean {
                    cursor += 1;
                }
            }
        }
    }
    while let Some((dep, cond)) = more.pop() {
        if let Err(why) = check(dep, cond, &mut more) {
            return (cursor, Some(why));
        }
    }
    (cursor, None)
}

/// The waves in which `set` stops: dependents before their dependencies, and otherwise
/// higher priority numbers first; each wave holds one priority level at most.
fn stop_waves(p: &dyn Programs, set: &[Id]) -> VecDeque<Vec<Id>> {
    type Member<'a> = (i32, &'a [(Id, Condition)]);
    let members: BTreeMap<Id, Member<'_>> =
        set.iter().filter_map(|&id| Some((id, (p.facts(id)?.priority, p.deps(id))))).collect();
    // Priority levels, highest number first, as wave numbers.
    let mut levels: Vec<i32> = members.values().map(|v| v.0).collect();
    levels.sort_unstable_by(|a, b| b.cmp(a));
    levels.dedup();
    let level_of = |prio: i32| levels.iter().position(|&l| l == prio).unwrap_or(0);
    // wave(P) = max(level of P, wave(D) + 1 for every dependent D of P in the set), computed
    // to a fixed point (the config has no cycles; the bound guards a broken graph).
    let mut wave: BTreeMap<Id, usize> = members.iter().map(|(&id, v)| (id, level_of(v.0))).collect();
    for _ in 0..=members.len() {
        let mut changed = false;
        for (&id, &(_, deps)) in &members {
            for &(dep, _) in deps {
                let need = wave[&id] + 1;
                if let Some(w) = wave.get_mut(&dep)
                    && *w < need
                {
                    *w = need;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut out: BTreeMap<usize, Vec<Id>> = BTreeMap::new();
    for (id, w) in wave {
        out.entry(w).or_default().push(id);
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program as plain data.
    #[derive(Debug, Clone)]
    struct View {
        name: String,
        facts: Facts,
        deps: Vec<(Id, Condition)>,
        reason: Option<String>,
    }

    /// Programs as plain data; tests change states by hand between calls, as the supervisor
    /// does after carrying out commands, and the changed ids are touched before the next call.
    #[derive(Debug, Clone, Default)]
    struct World(BTreeMap<Id, View>, Vec<Id>);

    fn facts(state: State) -> Facts {
        Facts { state, ready: false, healthy: None, exit_ok: None, oneshot: false, priority: 999 }
    }

    /// [`Engine::next`] after telling the engine what the test changed.
    fn next(e: &mut Engine, w: &mut World, budget: usize) -> Vec<Command> {
        for id in w.1.drain(..) {
            e.touch(id);
        }
        e.next(w, budget)
    }

    /// [`Engine::finished`] after telling the engine what the test changed.
    fn finished(e: &mut Engine, w: &mut World) -> Vec<(JobId, Vec<TargetResult>)> {
        for id in w.1.drain(..) {
            e.touch(id);
        }
        e.finished(w)
    }

    impl Programs for World {
        fn facts(&self, id: Id) -> Option<Facts> {
            self.0.get(&id).map(|v| v.facts)
        }
        fn deps(&self, id: Id) -> &[(Id, Condition)] {
            self.0.get(&id).map_or(&[], |v| &v.deps)
        }
        fn name(&self, id: Id) -> String {
            self.0.get(&id).map(|v| v.name.clone()).unwrap_or_default()
        }
        fn reason(&self, id: Id) -> Option<String> {
            self.0.get(&id).and_then(|v| v.reason.clone())
        }
        fn ids(&self) -> Vec<Id> {
            self.0.keys().copied().collect()
        }
    }

    impl World {
        fn add(&mut self, id: Id, name: &str, deps: &[(Id, Condition)]) {
            self.0.insert(
                id,
                View { name: name.into(), facts: facts(State::Stopped), deps: deps.to_vec(), reason: None },
            );
        }
        fn set(&mut self, id: Id, f: impl FnOnce(&mut View)) {
            f(self.0.get_mut(&id).expect("program"));
            self.1.push(id);
        }
        /// Carries out commands the simple way: a start makes it RUNNING (not ready), a stop
        /// makes it STOPPED.
        fn apply(&mut self, cmds: &[Command]) {
            for c in cmds {
                match *c {
                    Command::Start(id) => self.set(id, |v| v.facts.state = State::Running),
                    Command::Stop(id) => self.set(id, |v| {
                        v.facts.state = State::Stopped;
                        v.facts.ready = false;
                    }),
                }
            }
        }
        fn ready(&mut self, id: Id) {
            self.set(id, |v| {
                v.facts.state = State::Running;
                v.facts.ready = true;
            });
        }
    }

    const DB: Id = 1;
    const MIGRATE: Id = 2;
    const WEB: Id = 3;

    fn chain() -> World {
        let mut w = World::default();
        w.add(DB, "db", &[]);
        w.add(MIGRATE, "migrate", &[(DB, Condition::Ready)]);
        w.set(MIGRATE, |v| v.facts.oneshot = true);
        w.add(WEB, "web", &[(MIGRATE, Condition::CompletedSuccessfully)]);
        w
    }

    #[test]
    fn start_pulls_dependencies_and_waits_for_each_condition() {
        let mut w = chain();
        let mut e = Engine::new();
        let job = e.start(&w, &[WEB], true);
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Start(DB)], "only db can start");
        w.apply(&cmds);
        assert_eq!(next(&mut e, &mut w, 64), [], "db RUNNING but not ready: migrate waits");
        assert_eq!(e.waiting_reason(&w, MIGRATE).as_deref(), Some("waiting for db to be ready"));
        w.ready(DB);
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Start(MIGRATE)]);
        w.apply(&cmds);
        assert_eq!(next(&mut e, &mut w, 64), [], "migrate runs: web waits for it to complete");
        w.set(MIGRATE, |v| {
            v.facts.state = State::Exited;
            v.facts.exit_ok = Some(true);
        });
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Start(WEB)]);
        w.apply(&cmds);
        assert!(finished(&mut e, &mut w).is_empty(), "web RUNNING but not ready yet");
        w.ready(WEB);
        assert_eq!(next(&mut e, &mut w, 64), []);
        let done = finished(&mut e, &mut w);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0, job);
        assert_eq!(done[0].1.len(), 1, "only the target is reported");
        assert!(done[0].1[0].ok && done[0].1[0].message == "started", "{:?}", done[0].1);
    }

    #[test]
    fn a_failed_dependency_fails_the_request_and_the_dependent_keeps_waiting() {
        let mut w = chain();
        let mut e = Engine::new();
        e.start(&w, &[WEB], true);
        let cmds = next(&mut e, &mut w, 64);
        w.apply(&cmds);
        w.set(DB, |v| {
            v.facts.state = State::Fatal;
            v.reason = Some("exited too quickly".into());
        });
        assert_eq!(next(&mut e, &mut w, 64), []);
        assert_eq!(e.waiting_reason(&w, MIGRATE).as_deref(), Some("waiting for db (FATAL)"));
        // web waits for migrate, which waits for db: web's reason names its own dependency.
        assert_eq!(e.waiting_reason(&w, WEB).as_deref(), Some("waiting for migrate to be completed-successfully"));
        // The db comes back (a manual start): the chain continues by itself.
        let cmds = {
            w.ready(DB);
            next(&mut e, &mut w, 64)
        };
        assert_eq!(cmds, [Command::Start(MIGRATE)]);
    }

    #[test]
    fn the_request_for_a_program_whose_dependency_is_fatal_says_why() {
        let mut w = World::default();
        w.add(DB, "db", &[]);
        w.add(WEB, "web", &[(DB, Condition::Ready)]);
        w.set(DB, |v| v.facts.state = State::Fatal);
        let mut e = Engine::new();
        e.start(&w, &[WEB], true);
        // db is FATAL: a start of web pulls db in again (a fresh start clears FATAL).
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Start(DB)]);
        w.set(DB, |v| v.facts.state = State::Fatal);
        next(&mut e, &mut w, 64);
        let done = finished(&mut e, &mut w);
        assert_eq!(done.len(), 1, "the request is answered");
        assert!(!done[0].1[0].ok);
        assert_eq!(done[0].1[0].message, "not started: waiting for db (FATAL)");
        assert!(e.has_waiting(), "web still waits");
    }

    #[test]
    fn a_completed_oneshot_is_not_run_again_but_what_it_needed_is_brought_up() {
        let mut w = chain();
        w.set(MIGRATE, |v| {
            v.facts.state = State::Exited;
            v.facts.exit_ok = Some(true);
        });
        let mut e = Engine::new();
        e.start(&w, &[WEB], true);
        assert_eq!(next(&mut e, &mut w, 64), [Command::Start(DB)], "web waits for what migrate needed");
        assert_eq!(e.waiting_reason(&w, WEB).as_deref(), Some("waiting for db to be ready"));
        w.ready(DB);
        assert_eq!(next(&mut e, &mut w, 64), [Command::Start(WEB)]);
    }

    #[test]
    fn completed_oneshots_are_not_run_again_for_a_dependent() {
        let mut w = chain();
        w.ready(DB);
        w.set(MIGRATE, |v| {
            v.facts.state = State::Exited;
            v.facts.exit_ok = Some(true);
        });
        let mut e = Engine::new();
        e.start(&w, &[WEB], true);
        assert_eq!(next(&mut e, &mut w, 64), [Command::Start(WEB)]);
    }

    #[test]
    fn stop_takes_dependents_first_then_dependencies() {
        let mut w = chain();
        for id in [DB, WEB] {
            w.ready(id);
        }
        w.set(MIGRATE, |v| {
            v.facts.state = State::Exited;
            v.facts.exit_ok = Some(true);
        });
        let mut e = Engine::new();
        let job = e.stop(&w, &[DB], true);
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Stop(WEB)], "web first (migrate is not running)");
        assert_eq!(next(&mut e, &mut w, 64), [], "db waits for web to be down");
        w.apply(&cmds);
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Stop(DB)]);
        w.apply(&cmds);
        next(&mut e, &mut w, 64);
        let done = finished(&mut e, &mut w);
        assert_eq!(done[0].0, job);
        assert_eq!(done[0].1.len(), 1);
        assert_eq!(done[0].1[0].message, "stopped");
    }

    #[test]
    fn priority_orders_stops_between_unrelated_programs_and_dependencies_win() {
        let mut w = World::default();
        // b depends on a, but has the lower priority number: dependencies win, b stops first.
        w.add(1, "a", &[]);
        w.add(2, "b", &[(1, Condition::Ready)]);
        w.add(3, "c", &[]);
        w.set(1, |v| v.facts.priority = 900);
        w.set(2, |v| v.facts.priority = 100);
        w.set(3, |v| v.facts.priority = 500);
        for id in [1, 2, 3] {
            w.ready(id);
        }
        let waves: Vec<Vec<Id>> = stop_waves(&w, &[1, 2, 3]).into_iter().collect();
        // Levels: a 900, c 500, b 100; b must stop before a, so a moves after b.
        assert_eq!(waves, [vec![3], vec![2], vec![1]]);
    }

    #[test]
    fn restart_of_a_dependency_restarts_its_running_dependents_after_it() {
        let mut w = World::default();
        w.add(DB, "db", &[]);
        w.add(WEB, "web", &[(DB, Condition::Ready)]);
        w.ready(DB);
        w.ready(WEB);
        let mut e = Engine::new();
        e.restart(&w, &[DB]);
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Stop(WEB)]);
        w.apply(&cmds);
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Stop(DB)]);
        w.apply(&cmds);
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Start(DB)], "db again, web waits for it");
        w.ready(DB);
        assert_eq!(next(&mut e, &mut w, 64), [Command::Start(WEB)]);
        w.ready(WEB);
        next(&mut e, &mut w, 64);
        let done = finished(&mut e, &mut w);
        assert_eq!(done[0].1.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["db"], "the target is reported");
        assert_eq!(done[0].1[0].message, "started", "the outcome of the start, not of the stop before it");
    }

    #[test]
    fn starts_respect_priority_and_the_budget() {
        let mut w = World::default();
        for (id, prio) in [(1, 300), (2, 100), (3, 200)] {
            w.add(id, &format!("p{id}"), &[]);
            w.set(id, |v| v.facts.priority = prio);
        }
        let mut e = Engine::new();
        e.start(&w, &[1, 2, 3], false);
        assert_eq!(next(&mut e, &mut w, 2), [Command::Start(2), Command::Start(3)]);
        w.apply(&[Command::Start(2), Command::Start(3)]);
        assert_eq!(next(&mut e, &mut w, 2), [Command::Start(1)]);
    }

    #[test]
    fn shutdown_cancels_waiting_starts_and_stops_everything_in_order() {
        let mut w = chain();
        let mut e = Engine::new();
        e.start(&w, &[WEB], false);
        let cmds = next(&mut e, &mut w, 64);
        w.apply(&cmds);
        assert!(e.has_waiting());
        e.shutdown(&w);
        assert!(!e.has_waiting());
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Stop(DB)], "only db is up");
        w.apply(&cmds);
        next(&mut e, &mut w, 64);
        let done = finished(&mut e, &mut w);
        assert_eq!(done.len(), 2, "the start job and the shutdown are both done");
    }

    #[test]
    fn conditions() {
        let mut v = View { name: "x".into(), facts: facts(State::Running), deps: vec![], reason: None };
        assert_eq!(holds(Condition::Started, &v.facts), Holds::Yes);
        assert_eq!(holds(Condition::Ready, &v.facts), Holds::Wait);
        v.facts.ready = true;
        assert_eq!(holds(Condition::Ready, &v.facts), Holds::Yes);
        assert_eq!(holds(Condition::Healthy, &v.facts), Holds::Wait);
        v.facts.healthy = Some(true);
        assert_eq!(holds(Condition::Healthy, &v.facts), Holds::Yes);
        assert_eq!(holds(Condition::Completed, &v.facts), Holds::Wait);
        v.facts.state = State::Exited;
        v.facts.ready = false;
        v.facts.exit_ok = Some(false);
        assert_eq!(holds(Condition::Completed, &v.facts), Holds::Yes);
        assert_eq!(holds(Condition::CompletedSuccessfully, &v.facts), Holds::Never("exited unsuccessfully".into()));
        assert_eq!(holds(Condition::Ready, &v.facts), Holds::Never("EXITED".into()));
        v.facts.state = State::Fatal;
        assert_eq!(holds(Condition::Ready, &v.facts), Holds::Never("FATAL".into()));
        assert_eq!(holds(Condition::Completed, &v.facts), Holds::Yes);
        v.facts.state = State::Backoff;
        assert_eq!(holds(Condition::Ready, &v.facts), Holds::Wait, "still retrying");
    }

    #[test]
    fn a_ready_dependency_frees_only_its_dependents_and_resumes_where_it_stopped() {
        // Two levels of 3, each of level 1 depending on all of level 0.
        let mut w = World::default();
        for id in 1..=3 {
            w.add(id, &format!("a{id}"), &[]);
        }
        let level0: Vec<(Id, Condition)> = (1..=3).map(|d| (d, Condition::Ready)).collect();
        for id in 4..=6 {
            w.add(id, &format!("b{id}"), &level0);
        }
        let mut e = Engine::new();
        e.start(&w, &[4, 5, 6], false);
        let cmds = next(&mut e, &mut w, 64);
        assert_eq!(cmds, [Command::Start(1), Command::Start(2), Command::Start(3)]);
        w.apply(&cmds);
        assert_eq!(next(&mut e, &mut w, 64), []);
        w.ready(1);
        w.ready(2);
        assert_eq!(next(&mut e, &mut w, 64), []);
        assert_eq!(e.waiting.get(&5).map(|x| x.cursor), Some(2), "resumes at a3, past the two that hold");
        assert_eq!(e.waiting_reason(&w, 5).as_deref(), Some("waiting for a3 to be ready"));
        // a1 goes down again: its dependents look from its place in their list.
        w.set(1, |v| {
            v.facts.state = State::Fatal;
            v.facts.ready = false;
        });
        assert_eq!(next(&mut e, &mut w, 64), []);
        assert_eq!(e.waiting_reason(&w, 5).as_deref(), Some("waiting for a1 (FATAL)"));
        assert_eq!(e.waiting.get(&5).map(|x| x.cursor), Some(0));
        w.ready(1);
        w.ready(3);
        assert_eq!(next(&mut e, &mut w, 64), [Command::Start(4), Command::Start(5), Command::Start(6)]);
    }

    #[test]
    fn a_change_behind_a_completed_oneshot_reaches_its_dependents() {
        // web needs migrate completed; migrate (done) needed db ready: db's fall concerns web.
        let mut w = chain();
        w.ready(DB);
        w.set(MIGRATE, |v| {
            v.facts.state = State::Exited;
            v.facts.exit_ok = Some(true);
        });
        let mut e = Engine::new();
        e.start(&w, &[WEB], false);
        w.set(DB, |v| {
            v.facts.state = State::Stopped;
            v.facts.ready = false;
        });
        // db is not in the start (it held when the job began): web waits for it all the same.
        assert_eq!(next(&mut e, &mut w, 64), []);
        assert_eq!(e.waiting_reason(&w, WEB).as_deref(), Some("waiting for db to be ready"));
        assert_eq!(next(&mut e, &mut w, 64), [], "nothing changed");
        w.ready(DB);
        assert_eq!(next(&mut e, &mut w, 64), [Command::Start(WEB)], "db alone was touched");
    }

    /// Something the tests do to the world or ask of the engine.
    #[derive(Debug, Clone)]
    enum Op {
        Start(Vec<Id>),
        Stop(Vec<Id>),
        Restart(Vec<Id>),
        Reload(Vec<Id>, Vec<Id>),
        /// A program's facts change (a process event): state, ready, healthy, exit_ok.
        Set(Id, usize, bool, Option<bool>, Option<bool>),
        /// `next` with this budget, its commands carried out the simple way.
        Next(usize),
        Finished,
        Shutdown,
    }

    const STATES: [State; 7] =
        [State::Stopped, State::Starting, State::Running, State::Backoff, State::Stopping, State::Exited, State::Fatal];

    fn any_condition() -> impl Strategy<Value = Condition> {
        prop_oneof![
            Just(Condition::Started),
            Just(Condition::Ready),
            Just(Condition::Healthy),
            Just(Condition::Completed),
            Just(Condition::CompletedSuccessfully),
        ]
    }

    /// Programs 1..=n, each depending on some of those before it (a config has no cycles),
    /// some of them oneshots, with a few priorities.
    fn worlds() -> impl Strategy<Value = World> {
        (2..9usize).prop_flat_map(|n| {
            let program = (
                prop::collection::vec((0..n as Id, any_condition()), 0..4),
                any::<bool>(),
                prop_oneof![Just(100), Just(500), Just(999)],
            );
            prop::collection::vec(program, n).prop_map(|programs| {
                let mut w = World::default();
                for (k, (deps, oneshot, priority)) in programs.into_iter().enumerate() {
                    let id = k as Id + 1;
                    let deps: Vec<(Id, Condition)> = deps.into_iter().filter(|&(d, _)| d >= 1 && d < id).collect();
                    w.add(id, &format!("p{id}"), &deps);
                    w.set(id, |v| {
                        v.facts.oneshot = oneshot;
                        v.facts.priority = priority;
                    });
                }
                w.1.clear();
                w
            })
        })
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let ids = || prop::collection::vec(1..9 as Id, 1..3);
        let op = prop_oneof![
            2 => ids().prop_map(Op::Start),
            1 => ids().prop_map(Op::Stop),
            1 => ids().prop_map(Op::Restart),
            1 => (ids(), ids()).prop_map(|(a, b)| Op::Reload(a, b)),
            4 => (1..9 as Id, 0..STATES.len(), any::<bool>(), any::<Option<bool>>(), any::<Option<bool>>())
                .prop_map(|(id, s, r, h, x)| Op::Set(id, s, r, h, x)),
            // The changes that matter most, more often: ready and healthy, completed.
            3 => (1..9 as Id).prop_map(|id| Op::Set(id, 2, true, Some(true), None)),
            2 => (1..9 as Id, any::<bool>()).prop_map(|(id, ok)| Op::Set(id, 5, false, None, Some(ok))),
            6 => (1..4usize).prop_map(Op::Next),
            2 => Just(Op::Finished),
            1 => Just(Op::Shutdown),
        ];
        prop::collection::vec(op, 1..80)
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// The incremental engine, told only what changed, answers exactly as one that looks
        /// at everything again before every answer.
        #[test]
        fn incremental_answers_equal_a_full_recomputation(mut w in worlds(), ops in ops()) {
            let mut inc = Engine::new();
            let mut full = Engine::new();
            let known = |ids: &[Id], w: &World| -> Vec<Id> { ids.iter().copied().filter(|i| w.0.contains_key(i)).collect() };
            for op in ops {
                match op {
                    Op::Start(t) => { let t = known(&t, &w); prop_assert_eq!(inc.start(&w, &t, true), full.start(&w, &t, true)); }
                    Op::Stop(t) => { let t = known(&t, &w); prop_assert_eq!(inc.stop(&w, &t, true), full.stop(&w, &t, true)); }
                    Op::Restart(t) => { let t = known(&t, &w); prop_assert_eq!(inc.restart(&w, &t), full.restart(&w, &t)); }
                    Op::Reload(a, b) => {
                        let (a, b) = (known(&a, &w), known(&b, &w));
                        prop_assert_eq!(inc.stop_then_start(&w, &a, &b), full.stop_then_start(&w, &a, &b));
                    }
                    Op::Set(id, s, ready, healthy, exit_ok) => {
                        if w.0.contains_key(&id) {
                            w.set(id, |v| {
                                v.facts.state = STATES[s];
                                v.facts.ready = ready && STATES[s] == State::Running;
                                v.facts.healthy = healthy;
                                v.facts.exit_ok = exit_ok;
                            });
                        }
                    }
                    Op::Next(budget) => {
                        full.reindex();
                        let want = full.next(&w, budget);
                        let got = next(&mut inc, &mut w, budget);
                        prop_assert_eq!(&got, &want);
                        w.apply(&got);
                    }
                    Op::Finished => {
                        full.reindex();
                        let want = full.finished(&w);
                        prop_assert_eq!(finished(&mut inc, &mut w), want);
                    }
                    Op::Shutdown => {
                        full.reindex();
                        for id in w.1.drain(..) {
                            inc.touch(id);
                        }
                        prop_assert_eq!(inc.shutdown(&w), full.shutdown(&w));
                    }
                }
                for &id in w.0.keys() {
                    prop_assert_eq!(inc.waiting_reason(&w, id), full.waiting_reason(&w, id), "reason of {}", id);
                }
            }
        }
    }
}
