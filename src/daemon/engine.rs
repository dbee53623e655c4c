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

use crate::config::Condition;
use crate::protocol::{State, TargetResult};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// A program's stable id.
pub type Id = u64;

/// What the engine needs to know about a program now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Its process name, for results and reasons.
    pub name: String,
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
    /// What it waits for before it starts.
    pub deps: Vec<(Id, Condition)>,
    /// Why it is not running, if it failed (shown in results).
    pub reason: Option<String>,
}

impl View {
    /// A process exists (or is about to be retried): it is not down.
    pub fn up(&self) -> bool {
        self.facts().up()
    }

    /// The facts conditions are decided on.
    pub fn facts(&self) -> Facts {
        Facts {
            state: self.state,
            ready: self.ready,
            healthy: self.healthy,
            exit_ok: self.exit_ok,
            oneshot: self.oneshot,
            priority: self.priority,
        }
    }
}

/// The part of a [`View`] that conditions are decided on: small and `Copy`, because the
/// engine looks at every dependency of every waiting program after each event (10 levels of
/// 100 programs each depending on the 100 before: 90,000 looks per pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// supervisord's state.
    pub state: State,
    /// Ready.
    pub ready: bool,
    /// The health check's verdict, if any.
    pub healthy: Option<bool>,
    /// Whether the last exit was expected, if it exited.
    pub exit_ok: Option<bool>,
    /// Runs once to completion.
    pub oneshot: bool,
    /// Lower starts first.
    pub priority: i32,
}

impl Facts {
    /// A process exists (or is about to be retried): it is not down.
    pub fn up(&self) -> bool {
        matches!(self.state, State::Starting | State::Running | State::Backoff | State::Stopping)
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

    /// Everything at once, for the places that are not hot.
    fn view(&self, id: Id) -> Option<View> {
        let f = self.facts(id)?;
        Some(View {
            name: self.name(id),
            state: f.state,
            ready: f.ready,
            healthy: f.healthy,
            exit_ok: f.exit_ok,
            oneshot: f.oneshot,
            priority: f.priority,
            deps: self.deps(id).to_vec(),
            reason: self.reason(id),
        })
    }
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
    /// The wave or start set being worked on, and its verb.
    active: Vec<Id>,
    verb: Option<Verb>,
    /// Targets whose outcome is reported, and whether they were already at the goal when
    /// their step began ("already running", "not running").
    report: HashMap<Id, Option<bool>>,
    results: Vec<TargetResult>,
}

/// The plan: pending starts and the jobs that wait for outcomes.
#[derive(Debug, Default)]
pub struct Engine {
    next_job: JobId,
    jobs: Vec<Job>,
    /// Programs to start once their dependencies allow, by (priority, id).
    waiting: BTreeSet<(i32, Id)>,
    /// The same ids, for lookups (a start of 1000 asks about each of them after every event).
    waiting_ids: HashSet<Id>,
    /// Why a waiting program has not started yet.
    reasons: HashMap<Id, Blocked>,
}

impl Engine {
    /// An engine with nothing to do.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Starts `targets` and what they depend on; `report` says whether outcomes are
    /// reported (not for the autostart).
    pub fn start(&mut self, p: &dyn Programs, targets: &[Id], report: bool) -> JobId {
        let set = self.with_dependencies(p, targets);
        self.add_job(vec![Step::Start(set)], targets, report)
    }

    /// Stops `targets` and what depends on them, dependents first.
    pub fn stop(&mut self, p: &dyn Programs, targets: &[Id], report: bool) -> JobId {
        let set = with_dependents(p, targets);
        for id in &set {
            self.unwait(*id);
        }
        let waves = stop_waves(p, &set);
        self.add_job(vec![Step::Stop(waves)], targets, report)
    }

    /// Stops `targets` and their dependents, then starts the same programs again (those of
    /// the dependents that were up, and every target).
    pub fn restart(&mut self, p: &dyn Programs, targets: &[Id]) -> JobId {
        let set = with_dependents(p, targets);
        for id in &set {
            self.unwait(*id);
        }
        let again: Vec<Id> =
            set.iter().copied().filter(|id| targets.contains(id) || p.view(*id).is_some_and(|v| v.up())).collect();
        let waves = stop_waves(p, &set);
        let start = self.with_dependencies(p, &again);
        self.add_job(vec![Step::Stop(waves), Step::Start(start)], targets, true)
    }

    /// A job of explicit steps, for reloads: stop `stop` (with their dependents), then start
    /// `start` (with their dependencies). Outcomes of `start` are reported.
    pub fn stop_then_start(&mut self, p: &dyn Programs, stop: &[Id], start: &[Id]) -> JobId {
        let down = with_dependents(p, stop);
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
        let waiting: HashSet<Id> = std::mem::take(&mut self.waiting_ids);
        self.waiting.clear();
        self.reasons.clear();
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
                cancelled.extend(job.active.iter().filter(|id| waiting.contains(id)));
                job.active.retain(|id| !waiting.contains(id));
            }
            for id in cancelled {
                if job.report.remove(&id).is_some() {
                    let v = p.view(id);
                    job.results.push(TargetResult {
                        name: v.as_ref().map(|v| v.name.clone()).unwrap_or_default(),
                        ok: false,
                        state: v.map(|v| v.state),
                        message: "not started: the daemon is shutting down".into(),
                    });
                }
            }
        }
        let all = p.ids();
        let waves = stop_waves(p, &all);
        self.add_job(vec![Step::Stop(waves)], &[], false)
    }

    /// Why `id` waits instead of starting, if it does: "waiting for db to be ready".
    pub fn waiting_reason(&self, p: &dyn Programs, id: Id) -> Option<String> {
        self.reasons.get(&id).map(|b| b.describe(p))
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
        let mut out = Vec::new();
        // Advance jobs whose current step is done; entering a step yields commands.
        for j in 0..self.jobs.len() {
            loop {
                let done = self.step_done(j, p);
                if !done {
                    break;
                }
                let Some(step) = self.jobs[j].steps.pop_front() else {
                    self.jobs[j].verb = None;
                    self.jobs[j].active.clear();
                    break;
                };
                self.enter(j, step, p, &mut out);
            }
        }
        // Starts: in (priority, id) order, those whose dependencies hold.
        let mut started = 0;
        let mut still = BTreeSet::new();
        self.reasons.clear();
        for (prio, id) in std::mem::take(&mut self.waiting) {
            let Some(v) = p.facts(id) else { continue };
            if v.up() {
                continue;
            }
            if started >= budget {
                still.insert((prio, id));
                continue;
            }
            match self.blocked_by(p, id) {
                None => {
                    out.push(Command::Start(id));
                    started += 1;
                }
                Some(why) => {
                    self.reasons.insert(id, why);
                    still.insert((prio, id));
                }
            }
        }
        self.waiting_ids = still.iter().map(|&(_, id)| id).collect();
        self.waiting = still;
        out
    }

    /// Jobs that are complete, with their results (sorted by name), removed from the engine.
    /// Call it after [`Engine::next`] returned nothing more to do: only `next` moves a job on
    /// to its next step.
    pub fn finished(&mut self, p: &dyn Programs) -> Vec<(JobId, Vec<TargetResult>)> {
        for j in 0..self.jobs.len() {
            self.collect(j, p);
        }
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
        done
    }

    fn add_job(&mut self, steps: Vec<Step>, targets: &[Id], report: bool) -> JobId {
        self.next_job += 1;
        let report = if report { targets.iter().map(|&t| (t, None)).collect() } else { HashMap::new() };
        self.jobs.push(Job {
            id: self.next_job,
            steps: steps.into(),
            active: Vec::new(),
            verb: None,
            report,
            results: Vec::new(),
        });
        self.next_job
    }

    fn unwait(&mut self, id: Id) {
        if self.waiting_ids.remove(&id) {
            self.waiting.retain(|&(_, w)| w != id);
        }
        self.reasons.remove(&id);
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

    /// The first dependency of `v` that does not hold, as a reason, or `None`. A oneshot
    /// that completed stands in for what it needed: web after a finished migration still waits
    /// for the database that migration waited for (it may be restarting).
    fn blocked_by(&self, p: &dyn Programs, id: Id) -> Option<Blocked> {
        // The common case, with no completed oneshot to look through, allocates nothing: this
        // runs for every waiting program after every event.
        let mut more: Vec<(Id, Condition)> = Vec::new();
        let mut seen: HashSet<(Id, &'static str)> = HashSet::new();
        let mut check = |dep: Id, cond: Condition, more: &mut Vec<(Id, Condition)>| -> Option<Blocked> {
            let dv = p.facts(dep)?;
            match holds(cond, &dv) {
                Holds::Yes if dv.oneshot && dv.state == State::Exited => {
                    if seen.insert((dep, cond.as_str())) {
                        more.extend(p.deps(dep).iter().rev().copied());
                    }
                    None
                }
                Holds::Yes => None,
                Holds::Wait => Some(Blocked::Wait(dep, cond)),
                Holds::Never(why) => Some(Blocked::Never(dep, why)),
            }
        };
        for &(dep, cond) in p.deps(id) {
            if let Some(why) = check(dep, cond, &mut more) {
                return Some(why);
            }
        }
        while let Some((dep, cond)) = more.pop() {
            if let Some(why) = check(dep, cond, &mut more) {
                return Some(why);
            }
        }
        None
    }

    fn enter(&mut self, j: usize, step: Step, p: &dyn Programs, out: &mut Vec<Command>) {
        match step {
            Step::Stop(mut waves) => {
                let wave = waves.pop_front().unwrap_or_default();
                if !waves.is_empty() {
                    self.jobs[j].steps.push_front(Step::Stop(waves));
                }
                for &id in &wave {
                    let Some(v) = p.view(id) else { continue };
                    if let Some(slot) = self.jobs[j].report.get_mut(&id) {
                        slot.get_or_insert(!v.up());
                    }
                    if v.up() {
                        out.push(Command::Stop(id));
                    }
                }
                self.jobs[j].verb = Some(Verb::Stop);
                self.jobs[j].active = wave;
            }
            Step::Start(set) => {
                for &id in &set {
                    let Some(v) = p.view(id) else { continue };
                    if let Some(slot) = self.jobs[j].report.get_mut(&id) {
                        *slot = Some(goal_reached(&v));
                    }
                    // Dependencies that already meet their condition were left out of `set`.
                    if !v.up() {
                        self.waiting.insert((v.priority, id));
                        self.waiting_ids.insert(id);
                    }
                }
                self.jobs[j].verb = Some(Verb::Start);
                self.jobs[j].active = set;
            }
        }
    }

    /// Whether job `j`'s current step is done (or it has none yet).
    fn step_done(&mut self, j: usize, p: &dyn Programs) -> bool {
        self.collect(j, p);
        let job = &self.jobs[j];
        match job.verb {
            None => true,
            Some(Verb::Stop) => job.active.iter().all(|&id| p.facts(id).is_none_or(|v| !v.up())),
            Some(Verb::Start) => job.active.is_empty(),
        }
    }

    /// Records the outcomes of job `j`'s active programs that are settled.
    fn collect(&mut self, j: usize, p: &dyn Programs) {
        let verb = self.jobs[j].verb;
        let mut settled = Vec::new();
        for &id in &self.jobs[j].active {
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
            job.active.retain(|&a| a != id);
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
        if self.waiting_ids.contains(&id) {
            // Not started yet. Waiting for a dependency that cannot hold fails the request;
            // the program keeps waiting (it starts if the dependency recovers).
            return match self.blocked_by(p, id) {
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
}

/// Whether a program is already where a start would bring it.
fn goal_reached(v: &View) -> bool {
    (v.state == State::Running && v.ready) || (v.oneshot && v.state == State::Exited && v.exit_ok == Some(true))
}

/// `targets` plus, transitively, every program that depends on one of them.
fn with_dependents(p: &dyn Programs, targets: &[Id]) -> Vec<Id> {
    let ids = p.ids();
    let mut dependents: HashMap<Id, Vec<Id>> = HashMap::new();
    for &id in &ids {
        if let Some(v) = p.view(id) {
            for &(dep, _) in &v.deps {
                dependents.entry(dep).or_default().push(id);
            }
        }
    }
    let mut seen: HashSet<Id> = targets.iter().copied().collect();
    let mut out: Vec<Id> = targets.to_vec();
    let mut queue: VecDeque<Id> = targets.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        for &d in dependents.get(&id).into_iter().flatten() {
            if seen.insert(d) {
                out.push(d);
                queue.push_back(d);
            }
        }
    }
    out
}

/// The waves in which `set` stops: dependents before their dependencies, and otherwise
/// higher priority numbers first; each wave holds one priority level at most.
fn stop_waves(p: &dyn Programs, set: &[Id]) -> VecDeque<Vec<Id>> {
    let members: BTreeMap<Id, View> = set.iter().filter_map(|&id| Some((id, p.view(id)?))).collect();
    // Priority levels, highest number first, as wave numbers.
    let mut levels: Vec<i32> = members.values().map(|v| v.priority).collect();
    levels.sort_unstable_by(|a, b| b.cmp(a));
    levels.dedup();
    let level_of = |prio: i32| levels.iter().position(|&l| l == prio).unwrap_or(0);
    // wave(P) = max(level of P, wave(D) + 1 for every dependent D of P in the set), computed
    // to a fixed point (the config has no cycles; the bound guards a broken graph).
    let mut wave: BTreeMap<Id, usize> = members.iter().map(|(&id, v)| (id, level_of(v.priority))).collect();
    for _ in 0..=members.len() {
        let mut changed = false;
        for (&id, v) in &members {
            for &(dep, _) in &v.deps {
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

    /// Programs as plain data; tests change states by hand between calls, as the supervisor
    /// does after carrying out commands.
    #[derive(Default)]
    struct World(BTreeMap<Id, View>);

    impl Programs for World {
        fn facts(&self, id: Id) -> Option<Facts> {
            self.0.get(&id).map(View::facts)
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
                View {
                    name: name.into(),
                    state: State::Stopped,
                    ready: false,
                    healthy: None,
                    exit_ok: None,
                    oneshot: false,
                    priority: 999,
                    deps: deps.to_vec(),
                    reason: None,
                },
            );
        }
        fn set(&mut self, id: Id, f: impl FnOnce(&mut View)) {
            f(self.0.get_mut(&id).expect("program"));
        }
        /// Carries out commands the simple way: a start makes it RUNNING (not ready), a stop
        /// makes it STOPPED.
        fn apply(&mut self, cmds: &[Command]) {
            for c in cmds {
                match *c {
                    Command::Start(id) => self.set(id, |v| v.state = State::Running),
                    Command::Stop(id) => self.set(id, |v| {
                        v.state = State::Stopped;
                        v.ready = false;
                    }),
                }
            }
        }
        fn ready(&mut self, id: Id) {
            self.set(id, |v| {
                v.state = State::Running;
                v.ready = true;
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
        w.set(MIGRATE, |v| v.oneshot = true);
        w.add(WEB, "web", &[(MIGRATE, Condition::CompletedSuccessfully)]);
        w
    }

    #[test]
    fn start_pulls_dependencies_and_waits_for_each_condition() {
        let mut w = chain();
        let mut e = Engine::new();
        let job = e.start(&w, &[WEB], true);
        let cmds = e.next(&w, 64);
        assert_eq!(cmds, [Command::Start(DB)], "only db can start");
        w.apply(&cmds);
        assert_eq!(e.next(&w, 64), [], "db RUNNING but not ready: migrate waits");
        assert_eq!(e.waiting_reason(&w, MIGRATE).as_deref(), Some("waiting for db to be ready"));
        w.ready(DB);
        let cmds = e.next(&w, 64);
        assert_eq!(cmds, [Command::Start(MIGRATE)]);
        w.apply(&cmds);
        assert_eq!(e.next(&w, 64), [], "migrate runs: web waits for it to complete");
        w.set(MIGRATE, |v| {
            v.state = State::Exited;
            v.exit_ok = Some(true);
        });
        let cmds = e.next(&w, 64);
        assert_eq!(cmds, [Command::Start(WEB)]);
        w.apply(&cmds);
        assert!(e.finished(&w).is_empty(), "web RUNNING but not ready yet");
        w.ready(WEB);
        assert_eq!(e.next(&w, 64), []);
        let done = e.finished(&w);
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
        w.apply(&e.next(&w, 64));
        w.set(DB, |v| {
            v.state = State::Fatal;
            v.reason = Some("exited too quickly".into());
        });
        assert_eq!(e.next(&w, 64), []);
        assert_eq!(e.waiting_reason(&w, MIGRATE).as_deref(), Some("waiting for db (FATAL)"));
        // web waits for migrate, which waits for db: web's reason names its own dependency.
        assert_eq!(e.waiting_reason(&w, WEB).as_deref(), Some("waiting for migrate to be completed-successfully"));
        // The db comes back (a manual start): the chain continues by itself.
        let cmds = {
            w.ready(DB);
            e.next(&w, 64)
        };
        assert_eq!(cmds, [Command::Start(MIGRATE)]);
    }

    #[test]
    fn the_request_for_a_program_whose_dependency_is_fatal_says_why() {
        let mut w = World::default();
        w.add(DB, "db", &[]);
        w.add(WEB, "web", &[(DB, Condition::Ready)]);
        w.set(DB, |v| v.state = State::Fatal);
        let mut e = Engine::new();
        e.start(&w, &[WEB], true);
        // db is FATAL: a start of web pulls db in again (a fresh start clears FATAL).
        let cmds = e.next(&w, 64);
        assert_eq!(cmds, [Command::Start(DB)]);
        w.set(DB, |v| v.state = State::Fatal);
        e.next(&w, 64);
        let done = e.finished(&w);
        assert_eq!(done.len(), 1, "the request is answered");
        assert!(!done[0].1[0].ok);
        assert_eq!(done[0].1[0].message, "not started: waiting for db (FATAL)");
        assert!(e.has_waiting(), "web still waits");
    }

    #[test]
    fn a_completed_oneshot_is_not_run_again_but_what_it_needed_is_brought_up() {
        let mut w = chain();
        w.set(MIGRATE, |v| {
            v.state = State::Exited;
            v.exit_ok = Some(true);
        });
        let mut e = Engine::new();
        e.start(&w, &[WEB], true);
        assert_eq!(e.next(&w, 64), [Command::Start(DB)], "web waits for what migrate needed");
        assert_eq!(e.waiting_reason(&w, WEB).as_deref(), Some("waiting for db to be ready"));
        w.ready(DB);
        assert_eq!(e.next(&w, 64), [Command::Start(WEB)]);
    }

    #[test]
    fn completed_oneshots_are_not_run_again_for_a_dependent() {
        let mut w = chain();
        w.ready(DB);
        w.set(MIGRATE, |v| {
            v.state = State::Exited;
            v.exit_ok = Some(true);
        });
        let mut e = Engine::new();
        e.start(&w, &[WEB], true);
        assert_eq!(e.next(&w, 64), [Command::Start(WEB)]);
    }

    #[test]
    fn stop_takes_dependents_first_then_dependencies() {
        let mut w = chain();
        for id in [DB, WEB] {
            w.ready(id);
        }
        w.set(MIGRATE, |v| {
            v.state = State::Exited;
            v.exit_ok = Some(true);
        });
        let mut e = Engine::new();
        let job = e.stop(&w, &[DB], true);
        let cmds = e.next(&w, 64);
        assert_eq!(cmds, [Command::Stop(WEB)], "web first (migrate is not running)");
        assert_eq!(e.next(&w, 64), [], "db waits for web to be down");
        w.apply(&cmds);
        let cmds = e.next(&w, 64);
        assert_eq!(cmds, [Command::Stop(DB)]);
        w.apply(&cmds);
        e.next(&w, 64);
        let done = e.finished(&w);
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
        w.set(1, |v| v.priority = 900);
        w.set(2, |v| v.priority = 100);
        w.set(3, |v| v.priority = 500);
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
        let cmds = e.next(&w, 64);
        assert_eq!(cmds, [Command::Stop(WEB)]);
        w.apply(&cmds);
        let cmds = e.next(&w, 64);
        assert_eq!(cmds, [Command::Stop(DB)]);
        w.apply(&cmds);
        let cmds = e.next(&w, 64);
        assert_eq!(cmds, [Command::Start(DB)], "db again, web waits for it");
        w.ready(DB);
        assert_eq!(e.next(&w, 64), [Command::Start(WEB)]);
        w.ready(WEB);
        e.next(&w, 64);
        let done = e.finished(&w);
        assert_eq!(done[0].1.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["db"], "the target is reported");
        assert_eq!(done[0].1[0].message, "started", "the outcome of the start, not of the stop before it");
    }

    #[test]
    fn starts_respect_priority_and_the_budget() {
        let mut w = World::default();
        for (id, prio) in [(1, 300), (2, 100), (3, 200)] {
            w.add(id, &format!("p{id}"), &[]);
            w.set(id, |v| v.priority = prio);
        }
        let mut e = Engine::new();
        e.start(&w, &[1, 2, 3], false);
        assert_eq!(e.next(&w, 2), [Command::Start(2), Command::Start(3)]);
        w.apply(&[Command::Start(2), Command::Start(3)]);
        assert_eq!(e.next(&w, 2), [Command::Start(1)]);
    }

    #[test]
    fn shutdown_cancels_waiting_starts_and_stops_everything_in_order() {
        let mut w = chain();
        let mut e = Engine::new();
        e.start(&w, &[WEB], false);
        w.apply(&e.next(&w, 64));
        assert!(e.has_waiting());
        e.shutdown(&w);
        assert!(!e.has_waiting());
        let cmds = e.next(&w, 64);
        assert_eq!(cmds, [Command::Stop(DB)], "only db is up");
        w.apply(&cmds);
        e.next(&w, 64);
        let done = e.finished(&w);
        assert_eq!(done.len(), 2, "the start job and the shutdown are both done");
    }

    #[test]
    fn conditions() {
        let mut v = View {
            name: "x".into(),
            state: State::Running,
            ready: false,
            healthy: None,
            exit_ok: None,
            oneshot: false,
            priority: 0,
            deps: vec![],
            reason: None,
        };
        assert_eq!(holds(Condition::Started, &v.facts()), Holds::Yes);
        assert_eq!(holds(Condition::Ready, &v.facts()), Holds::Wait);
        v.ready = true;
        assert_eq!(holds(Condition::Ready, &v.facts()), Holds::Yes);
        assert_eq!(holds(Condition::Healthy, &v.facts()), Holds::Wait);
        v.healthy = Some(true);
        assert_eq!(holds(Condition::Healthy, &v.facts()), Holds::Yes);
        assert_eq!(holds(Condition::Completed, &v.facts()), Holds::Wait);
        v.state = State::Exited;
        v.ready = false;
        v.exit_ok = Some(false);
        assert_eq!(holds(Condition::Completed, &v.facts()), Holds::Yes);
        assert_eq!(holds(Condition::CompletedSuccessfully, &v.facts()), Holds::Never("exited unsuccessfully".into()));
        assert_eq!(holds(Condition::Ready, &v.facts()), Holds::Never("EXITED".into()));
        v.state = State::Fatal;
        assert_eq!(holds(Condition::Ready, &v.facts()), Holds::Never("FATAL".into()));
        assert_eq!(holds(Condition::Completed, &v.facts()), Holds::Yes);
        v.state = State::Backoff;
        assert_eq!(holds(Condition::Ready, &v.facts()), Holds::Wait, "still retrying");
    }
}
