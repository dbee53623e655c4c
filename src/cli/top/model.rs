//! The dashboard's picture of the daemon: every program as the event stream and the resource
//! polls describe it, plus the sort order, the filter and the selection.
//!
//! No I/O and no clock of its own (times are passed in), so it is tested with plain values.
//! The event stream is the authority on states and pids (it is ordered and complete); the
//! resource poll, a separate connection whose replies may be older than the last event, only
//! brings what events do not carry: CPU, memory, restart counts and the detail texts.

use crate::protocol::{Event, EventKind, ProgramStatus, State};
use std::cmp::Ordering;
use std::collections::HashMap;

/// What the table is sorted by; `o` cycles through them in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Name as shown (`GROUP:NAME`), A to Z.
    Name,
    /// Trouble first: FATAL, BACKOFF, EXITED, STOPPING, STARTING, RUNNING, STOPPED.
    State,
    /// Lowest pid first.
    Pid,
    /// Most recently started first.
    Uptime,
    /// Most restarted first.
    Restarts,
    /// Busiest first.
    Cpu,
    /// Largest first.
    Memory,
}

impl SortKey {
    /// The next key in the cycle.
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Name => SortKey::State,
            SortKey::State => SortKey::Pid,
            SortKey::Pid => SortKey::Uptime,
            SortKey::Uptime => SortKey::Restarts,
            SortKey::Restarts => SortKey::Cpu,
            SortKey::Cpu => SortKey::Memory,
            SortKey::Memory => SortKey::Name,
        }
    }

    /// The column's name in the header.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "NAME",
            SortKey::State => "STATE",
            SortKey::Pid => "PID",
            SortKey::Uptime => "UPTIME",
            SortKey::Restarts => "RESTARTS",
            SortKey::Cpu => "CPU",
            SortKey::Memory => "MEM",
        }
    }
}

/// One program as the table shows it.
#[derive(Debug, Clone)]
pub struct Row {
    /// What the daemon said, kept up to date by events and polls.
    pub status: ProgramStatus,
    /// `NAME`, or `GROUP:NAME` for members of a group: the name svc commands take.
    pub label: String,
    /// Percent of one core over the last poll interval; `None` until two readings of the same
    /// run exist, or when the OS cannot tell.
    pub cpu: Option<f64>,
}

impl Row {
    fn new(status: ProgramStatus) -> Row {
        let label =
            if status.group == status.name { status.name.clone() } else { format!("{}:{}", status.group, status.name) };
        Row { status, label, cpu: None }
    }

    /// Whether a process of it is alive (and so has a pid and an uptime).
    pub fn is_up(&self) -> bool {
        matches!(self.status.state, State::Starting | State::Running | State::Stopping)
    }
}

/// One resource poll: pid and CPU seconds by name.
type Reading = HashMap<String, (Option<u32>, f64)>;

/// The programs, sorted and filtered for display, and which one is selected.
#[derive(Debug)]
pub struct Model {
    rows: Vec<Row>,
    index: HashMap<String, usize>,
    /// Indices into `rows`, filtered and sorted; rebuilt lazily.
    view: Vec<usize>,
    stale: bool,
    sort: SortKey,
    reverse: bool,
    filter: String,
    /// By name, so that the selection follows its program when the order changes.
    selected: Option<String>,
    /// The previous resource reading (pid and CPU seconds by name) and when it was taken, in
    /// seconds on the caller's clock.
    last_usage: Option<(f64, Reading)>,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            rows: Vec::new(),
            index: HashMap::new(),
            view: Vec::new(),
            stale: false,
            sort: SortKey::Name,
            reverse: false,
            filter: String::new(),
            selected: None,
            last_usage: None,
        }
    }
}

impl Model {
    /// Replaces everything with a snapshot (the stream's first line, or the one after a lag).
    /// CPU figures of programs whose run goes on are kept.
    pub fn snapshot(&mut self, programs: Vec<ProgramStatus>) {
        let old: HashMap<String, Row> = self.rows.drain(..).map(|r| (r.status.name.clone(), r)).collect();
        self.rows = programs
            .into_iter()
            .map(|p| {
                let mut row = Row::new(p);
                if let Some(before) = old.get(&row.status.name)
                    && before.status.pid == row.status.pid
                {
                    row.cpu = before.cpu;
                    row.status.cpu_seconds = before.status.cpu_seconds;
                    row.status.memory_bytes = before.status.memory_bytes;
                }
                row
            })
            .collect();
        self.reindex();
    }

    fn reindex(&mut self) {
        self.index = self.rows.iter().enumerate().map(|(i, r)| (r.status.name.clone(), i)).collect();
        self.stale = true;
    }

    /// Applies one event; returns whether anything shown changed.
    pub fn apply(&mut self, e: &Event) -> bool {
        if e.kind == EventKind::Reload {
            let Some(plan) = &e.plan else { return false };
            let before = self.rows.len();
            self.rows.retain(|r| !plan.removed.contains(&r.status.name));
            if self.rows.len() == before {
                return false;
            }
            self.reindex();
            return true;
        }
        let Some(&i) = e.program.as_ref().and_then(|name| self.index.get(name)) else { return false };
        let p = &mut self.rows[i].status;
        match e.kind {
            EventKind::State => {
                let Some(to) = e.to else { return false };
                let up = matches!(to, State::Starting | State::Running | State::Stopping);
                if matches!(to, State::Starting) || !up {
                    // A new run, or none: the old run's figures say nothing about it.
                    p.cpu_seconds = None;
                    p.memory_bytes = None;
                    self.rows[i].cpu = None;
                }
                let p = &mut self.rows[i].status;
                p.state = to;
                p.since = e.time;
                p.pid = if up { e.pid.or(p.pid) } else { None };
                if e.exit_status.is_some() || e.exit_signal.is_some() {
                    p.exit_status = e.exit_status;
                    p.exit_signal = e.exit_signal.clone();
                }
                p.reason = e.reason.clone();
                if !up || to == State::Starting {
                    p.ready = false;
                    p.health = None;
                }
                if !p.ready_check && to == State::Running {
                    p.ready = true;
                }
                if to != State::Backoff {
                    p.next_attempt = None;
                }
            }
            EventKind::Ready => p.ready = true,
            EventKind::Health => p.health = e.health.clone(),
            EventKind::Reload | EventKind::Shutdown => return false,
        }
        self.stale = true;
        true
    }

    /// Takes a resource poll (`status` with resources) read at `at` seconds: CPU and memory,
    /// and the fields events do not carry. CPU percent comes from the difference with the
    /// previous poll, for programs whose pid did not change between the two.
    pub fn usage(&mut self, programs: &[ProgramStatus], at: f64) {
        let mut reading: Reading = HashMap::with_capacity(programs.len());
        for p in programs {
            if let Some(cpu) = p.cpu_seconds {
                reading.insert(p.name.clone(), (p.pid, cpu));
            }
            let Some(&i) = self.index.get(&p.name) else { continue };
            let row = &mut self.rows[i];
            let s = &mut row.status;
            s.restarts = p.restarts;
            s.waiting = p.waiting.clone();
            s.status_text = p.status_text.clone();
            s.log_dropped_bytes = p.log_dropped_bytes;
            if s.state == p.state {
                s.next_attempt = p.next_attempt;
            }
            // Figures of another run than the one the stream says is current are left out.
            if s.pid == p.pid {
                s.cpu_seconds = p.cpu_seconds;
                s.memory_bytes = p.memory_bytes;
                row.cpu = match (&self.last_usage, p.pid, p.cpu_seconds) {
                    (Some((then, before)), Some(_), Some(now_cpu)) if at > *then => match before.get(&p.name) {
                        Some(&(pid, cpu)) if pid == p.pid && now_cpu >= cpu => {
                            Some((now_cpu - cpu) / (at - then) * 100.0)
                        }
                        _ => None,
                    },
                    _ => None,
                };
            }
        }
        self.last_usage = Some((at, reading));
        if matches!(self.sort, SortKey::Cpu | SortKey::Memory | SortKey::Restarts) {
            self.stale = true;
        }
    }

    /// All programs, in daemon order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The program called `name`.
    #[cfg(test)]
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.index.get(name).map(|&i| &self.rows[i])
    }

    /// The current sort key and whether it is reversed.
    pub fn sort(&self) -> (SortKey, bool) {
        (self.sort, self.reverse)
    }

    /// Sorts by the next key (in its natural direction).
    pub fn cycle_sort(&mut self) {
        self.sort = self.sort.next();
        self.reverse = false;
        self.stale = true;
    }

    /// Reverses the order.
    pub fn toggle_reverse(&mut self) {
        self.reverse = !self.reverse;
        self.stale = true;
    }

    /// The filter text (empty: none).
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Shows only programs whose name contains `text` (ignoring case).
    pub fn set_filter(&mut self, text: &str) {
        if self.filter != text {
            self.filter = text.to_owned();
            self.stale = true;
        }
    }

    /// The shown programs (indices into [`Model::rows`]), filtered and sorted.
    pub fn view(&mut self) -> &[usize] {
        if self.stale {
            self.rebuild();
        }
        &self.view
    }

    fn rebuild(&mut self) {
        let needle = self.filter.to_lowercase();
        let mut view: Vec<usize> = (0..self.rows.len())
            .filter(|&i| needle.is_empty() || self.rows[i].label.to_lowercase().contains(&needle))
            .collect();
        let rows = &self.rows;
        let (key, reverse) = (self.sort, self.reverse);
        view.sort_by(|&a, &b| {
            let (a, b) = (&rows[a], &rows[b]);
            let primary = compare(key, a, b);
            let primary = if reverse { primary.reverse() } else { primary };
            primary.then_with(|| natural(&a.label, &b.label))
        });
        self.view = view;
        self.stale = false;
        if self.selected_pos().is_none() {
            self.selected = self.view.first().map(|&i| self.rows[i].status.name.clone());
        }
    }

    /// Position of the selected program in the view.
    pub fn selected_pos(&self) -> Option<usize> {
        let name = self.selected.as_ref()?;
        let &i = self.index.get(name)?;
        self.view.iter().position(|&v| v == i)
    }

    /// The selected program, if any is shown.
    pub fn selected(&mut self) -> Option<&Row> {
        self.view();
        let i = self.index.get(self.selected.as_ref()?)?;
        Some(&self.rows[*i])
    }

    /// Moves the selection by `delta` rows, stopping at either end.
    pub fn move_selection(&mut self, delta: isize) {
        self.view();
        if self.view.is_empty() {
            return;
        }
        let pos = self.selected_pos().unwrap_or(0);
        let last = self.view.len() - 1;
        let to = pos.saturating_add_signed(delta).min(last);
        self.selected = Some(self.rows[self.view[to]].status.name.clone());
    }

    /// Selects the first (`false`) or the last (`true`) shown program.
    pub fn select_end(&mut self, last: bool) {
        self.view();
        let pick = if last { self.view.last() } else { self.view.first() };
        self.selected = pick.map(|&i| self.rows[i].status.name.clone());
    }

    /// How many programs are in trouble (BACKOFF, FATAL, EXITED) and how many run.
    pub fn counts(&self) -> (usize, usize) {
        let failing = self
            .rows
            .iter()
            .filter(|r| matches!(r.status.state, State::Backoff | State::Fatal | State::Exited))
            .count();
        let running = self.rows.iter().filter(|r| r.status.state == State::Running).count();
        (running, failing)
    }
}

/// Names with numbers in their numeric order: `worker_9` before `worker_10` (numprocs names
/// are padded to two digits only).
fn natural(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (digits(a), digits(b));
                let (da, db) = (&a[..na], &b[..nb]);
                fn trim(d: &[u8]) -> &[u8] {
                    let zeros = d.iter().take_while(|&&c| c == b'0').count();
                    &d[zeros..]
                }
                let (ta, tb) = (trim(da), trim(db));
                let by_value = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb)).then_with(|| na.cmp(&nb));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                (a, b) = (&a[na..], &b[nb..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

/// Trouble first: the order a person scanning for problems wants.
fn state_rank(s: State) -> u8 {
    match s {
        State::Fatal => 0,
        State::Backoff => 1,
        State::Exited => 2,
        State::Stopping => 3,
        State::Starting => 4,
        State::Running => 5,
        State::Stopped => 6,
    }
}

/// `a` against `b` by `key` in its natural direction; programs without a value (no pid, no
/// reading) go after those with one.
fn compare(key: SortKey, a: &Row, b: &Row) -> Ordering {
    fn some_first<T>(a: Option<T>, b: Option<T>, cmp: impl Fn(T, T) -> Ordering) -> Ordering {
        match (a, b) {
            (Some(a), Some(b)) => cmp(a, b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    match key {
        SortKey::Name => natural(&a.label, &b.label),
        SortKey::State => state_rank(a.status.state).cmp(&state_rank(b.status.state)),
        SortKey::Pid => some_first(a.status.pid, b.status.pid, |x, y| x.cmp(&y)),
        SortKey::Uptime => {
            let since = |r: &Row| r.is_up().then_some(r.status.since);
            some_first(since(a), since(b), |x, y| y.total_cmp(&x))
        }
        SortKey::Restarts => b.status.restarts.cmp(&a.status.restarts),
        SortKey::Cpu => some_first(a.cpu, b.cpu, |x, y| y.total_cmp(&x)),
        SortKey::Memory => some_first(a.status.memory_bytes, b.status.memory_bytes, |x, y| y.cmp(&x)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(name: &str, state: State, pid: Option<u32>) -> ProgramStatus {
        ProgramStatus {
            name: name.into(),
            group: name.into(),
            state,
            pid,
            since: 100.0,
            exit_status: None,
            exit_signal: None,
            restarts: 0,
            next_attempt: None,
            reason: None,
            log_dropped_bytes: 0,
            ready: state == State::Running,
            ready_check: false,
            health: None,
            waiting: None,
            status_text: None,
            cpu_seconds: None,
            memory_bytes: None,
        }
    }

    fn shown(m: &mut Model) -> Vec<String> {
        let view = m.view().to_vec();
        view.iter().map(|&i| m.rows()[i].label.clone()).collect()
    }

    fn state_event(name: &str, to: State, pid: Option<u32>) -> Event {
        let mut e = Event::new(1, 200.0, EventKind::State);
        e.program = Some(name.into());
        e.to = Some(to);
        e.pid = pid;
        e
    }

    #[test]
    fn events_change_state_and_pid_and_keep_the_selection_on_its_program() {
        let mut m = Model::default();
        m.snapshot(vec![prog("a", State::Running, Some(10)), prog("b", State::Running, Some(11))]);
        m.move_selection(1);
        assert_eq!(m.selected().map(|r| r.label.clone()).as_deref(), Some("b"));
        let mut exit = state_event("a", State::Exited, Some(10));
        exit.exit_status = Some(3);
        assert!(m.apply(&exit));
        let a = m.row("a").expect("a");
        assert_eq!(
            (a.status.state, a.status.pid, a.status.exit_status, a.status.since),
            (State::Exited, None, Some(3), 200.0)
        );
        assert!(!a.status.ready);
        m.cycle_sort(); // by state: the exited one first
        assert_eq!(shown(&mut m), ["a", "b"]);
        assert_eq!(m.selected_pos(), Some(1), "still b");
        assert!(m.apply(&state_event("a", State::Running, Some(12))));
        assert_eq!(m.row("a").and_then(|r| r.status.pid), Some(12));
        assert!(!m.apply(&state_event("nobody", State::Running, Some(1))), "unknown programs are ignored");
    }

    #[test]
    fn filter_and_sort_and_moving_stop_at_the_ends() {
        let mut m = Model::default();
        let mut g = prog("w1", State::Running, Some(5));
        g.group = "web".into();
        m.snapshot(vec![prog("db", State::Fatal, None), g, prog("cache", State::Running, Some(4))]);
        assert_eq!(shown(&mut m), ["cache", "db", "web:w1"]);
        m.set_filter("WEB");
        assert_eq!(shown(&mut m), ["web:w1"], "case-insensitive, on the shown name");
        m.set_filter("");
        m.cycle_sort();
        m.cycle_sort(); // by pid: the one without a pid last
        assert_eq!(shown(&mut m), ["cache", "web:w1", "db"]);
        m.toggle_reverse();
        assert_eq!(shown(&mut m), ["db", "web:w1", "cache"]);
        m.select_end(false);
        m.move_selection(-5);
        assert_eq!(m.selected_pos(), Some(0));
        m.move_selection(99);
        assert_eq!(m.selected_pos(), Some(2));
        assert_eq!(m.counts(), (2, 1));
    }

    #[test]
    fn cpu_is_the_difference_of_two_readings_of_the_same_run() {
        let mut m = Model::default();
        m.snapshot(vec![prog("a", State::Running, Some(10)), prog("b", State::Running, Some(11))]);
        let reading = |a_cpu: f64, b_pid: u32| {
            let mut a = prog("a", State::Running, Some(10));
            a.cpu_seconds = Some(a_cpu);
            a.memory_bytes = Some(1000);
            let mut b = prog("b", State::Running, Some(b_pid));
            b.cpu_seconds = Some(1.0);
            vec![a, b]
        };
        m.usage(&reading(1.0, 11), 10.0);
        assert_eq!(m.row("a").and_then(|r| r.cpu), None, "one reading is not a rate");
        m.usage(&reading(1.5, 11), 12.0);
        assert_eq!(m.row("a").and_then(|r| r.cpu), Some(25.0));
        assert_eq!(m.row("a").and_then(|r| r.status.memory_bytes), Some(1000));
        assert_eq!(m.row("b").and_then(|r| r.cpu), Some(0.0));
        // b restarted (as the stream says) between the two readings: no rate across runs.
        assert!(m.apply(&state_event("b", State::Running, Some(99))));
        m.usage(&reading(1.5, 99), 14.0);
        assert_eq!(m.row("b").and_then(|r| r.cpu), None);
        // A poll older than the stream (still the old pid) does not overwrite the new run.
        assert!(m.apply(&state_event("a", State::Starting, Some(20))));
        m.usage(&reading(2.0, 99), 16.0);
        let a = m.row("a").expect("a");
        assert_eq!((a.status.pid, a.cpu, a.status.memory_bytes), (Some(20), None, None));
    }

    #[test]
    fn numbers_in_names_sort_by_value() {
        let mut names = ["w_10", "w_9", "w_100", "w_09x", "a", "w_", "w_9b"];
        names.sort_by(|a, b| natural(a, b));
        assert_eq!(names, ["a", "w_", "w_9", "w_9b", "w_09x", "w_10", "w_100"]);
    }

    #[test]
    fn a_reload_removes_what_it_removed() {
        let mut m = Model::default();
        m.snapshot(vec![prog("a", State::Running, Some(10)), prog("b", State::Running, Some(11))]);
        let mut e = Event::new(2, 1.0, EventKind::Reload);
        e.plan = Some(crate::protocol::ReloadPlan { removed: vec!["a".into()], ..Default::default() });
        assert!(m.apply(&e));
        assert_eq!(shown(&mut m), ["b"]);
        assert_eq!(m.row("b").map(|r| r.status.state), Some(State::Running), "the index follows");
    }
}
