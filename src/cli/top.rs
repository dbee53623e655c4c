//! `svc top` (also `svc dashboard`): a full-screen live view of the programs, with their
//! CPU, memory and log output, and keys to act on them.
//!
//! What feeds it, each on its own connection so that none waits for another:
//! - the daemon's event stream (`events`): a snapshot, then every change as it happens, so a
//!   crash shows at once and nothing is polled for states;
//! - a `status` request with resources every [`POLL`]: CPU time is cumulative, so the
//!   percentage is the difference of two readings; the daemon never ticks for it, and the
//!   polling lasts only as long as the dashboard;
//! - the selected program's log (`logs` with follow), replaced when the selection changes;
//! - one short connection per action (start, stop, ...): the daemon decides, and its answer,
//!   a refusal included, is shown in the footer.
//!
//! Everything arrives as a [`Msg`] on one bounded channel. A watcher that falls behind is
//! told so by the daemon (`lagged`, then a fresh snapshot) rather than growing its memory;
//! messages that arrive together are applied together, and the screen is redrawn at most
//! once per [`FRAME`], so 1,000 programs restarting cost a few frames, not 1,000.
//!
//! The terminal is put back (raw mode off, main screen, cursor shown) on every way out: `q`,
//! Ctrl-C, SIGINT/SIGTERM, a terminal that hangs up, the daemon going away (with a message on
//! the restored screen), and a panic (a hook restores it before the message is printed).

mod model;
mod view;

use super::{FAILURE, Global, SUCCESS, USAGE, block_on, connect, report};
use crate::client::{Client, ClientError};
use crate::protocol::{EventKind, LogSelect, LogStream, Request, Response, TargetResult};
use model::Model;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How often CPU and memory are read: often enough to follow a busy program, seldom enough
/// that reading 1,000 programs' figures costs the daemon little.
pub const POLL: Duration = Duration::from_secs(2);

/// Shortest time between two frames (at most 20 a second).
pub const FRAME: Duration = Duration::from_millis(50);

/// How many lines of the selected program's log are asked for first, and kept.
const LOG_LINES: usize = 200;

/// The signals the `K` key offers, in its menu's order.
pub const SIGNALS: [&str; 7] = ["HUP", "INT", "TERM", "QUIT", "KILL", "USR1", "USR2"];

/// Runs the dashboard for `targets` (all programs when empty) until the user quits, the
/// terminal goes away, or the daemon does.
pub fn top(g: &Global, targets: Vec<String>) -> u8 {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!("svc: top needs a terminal; for scripts, see 'svc events' and 'svc status --json'");
        return USAGE;
    }
    block_on(run(g, targets))
}

/// Something for the main loop.
enum Msg {
    /// A key, a resize.
    Input(TermEvent),
    /// The terminal is gone (hung up, unreadable) or a signal asks us to end.
    End(Ending),
    /// A line of the event stream.
    Stream(Box<Response>),
    /// CPU and memory, read at this many seconds after start.
    Usage(Vec<crate::protocol::ProgramStatus>, f64),
    /// Output of the followed log; `round` tells which following it belongs to.
    Log { round: u64, data: String, stream: Option<LogStream>, notices: Vec<String> },
    /// Following log `round` ended, with why when it is worth saying.
    LogEnded { round: u64, why: Option<String> },
    /// An action's outcome, for the footer.
    Done { ok: bool, text: String },
}

/// Why the dashboard ends.
enum Ending {
    /// The user asked (q, Ctrl-C, SIGINT, SIGTERM).
    Quit,
    /// The terminal hung up or cannot be read: nobody is left to show anything to.
    TerminalGone,
    /// The daemon shut down as asked.
    DaemonShutDown,
    /// The event stream broke: the daemon died or refused.
    DaemonGone(String),
}

/// What the footer says, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Under way.
    Info,
    /// Done as asked.
    Good,
    /// Failed or refused.
    Bad,
}

/// Something the daemon is asked to do to a program (or to itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `start`.
    Start(String),
    /// `stop`.
    Stop(String),
    /// `restart`.
    Restart(String),
    /// `signal`: which, to whom.
    Signal(&'static str, String),
    /// `reload`.
    Reload,
}

impl Action {
    /// The question asked before a destructive action, and the footer while it runs.
    pub fn describe(&self) -> String {
        match self {
            Action::Start(t) => format!("Start {t}"),
            Action::Stop(t) => format!("Stop {t}"),
            Action::Restart(t) => format!("Restart {t}"),
            Action::Signal(sig, t) => format!("Send SIG{sig} to {t}"),
            Action::Reload => "Reload the config (start added, stop removed, restart changed programs)".into(),
        }
    }

    fn request(&self) -> Request {
        match self {
            Action::Start(t) => Request::Start { targets: vec![t.clone()], no_wait: false },
            Action::Stop(t) => Request::Stop { targets: vec![t.clone()] },
            Action::Restart(t) => Request::Restart { targets: vec![t.clone()], no_wait: false },
            Action::Signal(sig, t) => Request::Signal { signal: (*sig).into(), targets: vec![t.clone()] },
            Action::Reload => Request::Reload { dry_run: false },
        }
    }
}

/// What the keys currently do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Moving, sorting, acting.
    Normal,
    /// Typing the filter.
    Filter,
    /// The help overlay.
    Help,
    /// Waiting for y before a destructive action.
    Confirm(Action),
    /// Choosing a signal for `target`.
    PickSignal {
        /// The program.
        target: String,
        /// Index into [`SIGNALS`].
        choice: usize,
    },
}

/// The selected program's log, as far as the screen needs it.
#[derive(Debug, Default)]
pub struct LogTail {
    /// The program followed.
    pub name: Option<String>,
    round: u64,
    lines: VecDeque<(bool, String)>,
    /// Text after the last newline, per stream (stdout, stderr).
    partial: [String; 2],
    /// Why the log shows little (from the daemon), or that following it ended.
    pub note: Option<String>,
    task: Option<JoinHandle<()>>,
}

impl LogTail {
    fn push(&mut self, stream: Option<LogStream>, data: &str) {
        let err = stream == Some(LogStream::Stderr);
        let buf = &mut self.partial[usize::from(err)];
        buf.push_str(data);
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            self.lines.push_back((err, clean(&line)));
        }
        // A program that never ends its line must not grow this without bound.
        if buf.len() > 4096 {
            let line = std::mem::take(buf);
            self.lines.push_back((err, clean(&line)));
        }
        while self.lines.len() > LOG_LINES {
            self.lines.pop_front();
        }
    }

    /// The last `n` lines (a line still being written counts), oldest first: (is stderr, text).
    pub fn tail(&self, n: usize) -> impl Iterator<Item = (bool, &str)> {
        let partial = self.partial.iter().enumerate().filter(|(_, p)| !p.is_empty()).map(|(i, p)| (i == 1, p.as_str()));
        let all: Vec<(bool, &str)> = self.lines.iter().map(|(e, l)| (*e, l.as_str())).chain(partial).collect();
        let skip = all.len().saturating_sub(n);
        all.into_iter().skip(skip)
    }
}

/// Text from a program made safe for the screen: escape sequences (colours, cursor moves)
/// dropped, tabs as spaces, other control characters left out.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI (`ESC [ ... final`): skip to the final byte; otherwise the one next char.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The dashboard's state besides the programs.
#[derive(Debug)]
pub struct Ui {
    /// What keys do now.
    pub mode: Mode,
    /// The footer's message (the last action's outcome), until Esc or the next action.
    pub message: Option<(String, Tone)>,
    /// The selected program's log.
    pub logs: LogTail,
    /// Whether to use colours (not when NO_COLOR is set).
    pub color: bool,
    /// The daemon said it is shutting down.
    pub shutting_down: bool,
    /// First table row on screen.
    pub offset: usize,
    /// How many table rows fit, for PgUp/PgDn.
    pub page: usize,
}

/// Puts the terminal in full-screen raw mode and back; the panic hook does the same, so a
/// bug never leaves a shell without echo.
struct Screen {
    terminal: Terminal<CrosstermBackend<std::io::Stdout>>,
}

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
        }));
        terminal::enable_raw_mode()?;
        execute!(std::io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)?;
        let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout())).inspect_err(|_| restore())?;
        Ok(Screen { terminal })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and the alternate screen, shows the cursor. Errors are ignored: after a
/// hang-up there is no terminal left to restore.
fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(std::io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

async fn run(g: &Global, targets: Vec<String>) -> u8 {
    let mut events = match connect(g).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = events.send(&Request::Events { targets: targets.clone() }).await {
        return report(&e);
    }
    // The first answer comes before the screen is taken: an unknown target or a refusal is
    // then an ordinary error message.
    let mut model = Model::default();
    match events.recv().await {
        Ok(Some(Response::Snapshot { programs, .. })) => model.snapshot(programs),
        Ok(Some(other)) => return report(&ClientError::Protocol(format!("{other:?}"))),
        Ok(None) => return report(&ClientError::Protocol("the daemon closed the connection".into())),
        Err(e) => return report(&e),
    }

    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
    let started = Instant::now();
    tokio::spawn(stream(events, g.clone(), targets.clone(), tx.clone()));
    tokio::spawn(poll_usage(g.clone(), targets, started, tx.clone()));

    let mut screen = match Screen::enter() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("svc: cannot set up the terminal: {e}");
            return FAILURE;
        }
    };
    // Keys are read once the terminal is raw, so that none arrives as a cooked line.
    watch_terminal(&tx);
    let mut ui = Ui {
        mode: Mode::Normal,
        message: None,
        logs: LogTail::default(),
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        shutting_down: false,
        offset: 0,
        page: 10,
    };
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    // Uptimes change every second even when nothing else does.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let ending = 'main: loop {
        follow_selection(&mut model, &mut ui, g, &tx);
        let draw_at = last_draw.map_or_else(Instant::now, |t| t + FRAME);
        let first = tokio::select! {
            m = rx.recv() => m,
            () = tokio::time::sleep_until(draw_at.into()), if dirty => {
                let drawn = screen.terminal.draw(|f| view::draw(f, &mut model, &mut ui, unix_now()));
                if drawn.is_err() {
                    break Ending::TerminalGone;
                }
                last_draw = Some(Instant::now());
                dirty = false;
                continue;
            }
            _ = tick.tick() => {
                dirty = true;
                continue;
            }
        };
        let Some(first) = first else { break Ending::TerminalGone };
        // Everything already waiting is applied before the next frame (bounded, so keys are
        // never stuck behind a flood of events).
        let mut next = Some(first);
        let mut budget = 4096;
        while let Some(msg) = next {
            if let Some(ending) = handle(msg, &mut model, &mut ui, g, &tx) {
                break 'main ending;
            }
            budget -= 1;
            next = if budget > 0 { rx.try_recv().ok() } else { None };
        }
        dirty = true;
    };
    if let Some(task) = ui.logs.task.take() {
        task.abort();
    }
    drop(screen);
    match ending {
        Ending::Quit | Ending::TerminalGone => SUCCESS,
        Ending::DaemonShutDown => {
            eprintln!("svc: the daemon has shut down");
            SUCCESS
        }
        Ending::DaemonGone(why) => {
            eprintln!("svc: {why}");
            FAILURE
        }
    }
}

/// Applies one message; `Some` when the dashboard must end.
fn handle(msg: Msg, m: &mut Model, ui: &mut Ui, g: &Global, tx: &mpsc::Sender<Msg>) -> Option<Ending> {
    match msg {
        Msg::Input(TermEvent::Key(key)) if key.kind != KeyEventKind::Release => match key_press(key, m, ui) {
            None => return Some(Ending::Quit),
            Some(Some(action)) => {
                ui.message = Some((format!("{}...", action.describe()), Tone::Info));
                tokio::spawn(act(g.clone(), action, tx.clone()));
            }
            Some(None) => {}
        },
        Msg::Input(_) => {}
        Msg::End(ending) => return Some(ending),
        Msg::Stream(resp) => match *resp {
            Response::Snapshot { programs, .. } => m.snapshot(programs),
            Response::Event(e) => {
                if e.kind == EventKind::Shutdown {
                    ui.shutting_down = true;
                }
                m.apply(&e);
            }
            _ => {}
        },
        Msg::Usage(programs, at) => m.usage(&programs, at),
        Msg::Log { round, data, stream, notices } if round == ui.logs.round => {
            ui.logs.push(stream, &data);
            if !notices.is_empty() {
                ui.logs.note = Some(notices.join("; "));
            }
        }
        Msg::LogEnded { round, why } if round == ui.logs.round => {
            ui.logs.note = Some(why.unwrap_or_else(|| "(the log is no longer followed)".into()));
        }
        Msg::Log { .. } | Msg::LogEnded { .. } => {}
        Msg::Done { ok, text } => ui.message = Some((text, if ok { Tone::Good } else { Tone::Bad })),
    }
    None
}

/// What a key does: `None` to end the dashboard, `Some(Some(action))` to send one.
fn key_press(key: KeyEvent, m: &mut Model, ui: &mut Ui) -> Option<Option<Action>> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return None;
    }
    let selected = m.selected().map(|r| r.label.clone());
    match std::mem::replace(&mut ui.mode, Mode::Normal) {
        Mode::Help => {}
        Mode::Filter => match key.code {
            KeyCode::Enter => {}
            KeyCode::Esc => m.set_filter(""),
            KeyCode::Backspace => {
                let mut text = m.filter().to_owned();
                text.pop();
                m.set_filter(&text);
                ui.mode = Mode::Filter;
            }
            KeyCode::Char(c) => {
                m.set_filter(&format!("{}{c}", m.filter()));
                ui.mode = Mode::Filter;
            }
            _ => ui.mode = Mode::Filter,
        },
        Mode::Confirm(action) => {
            if matches!(key.code, KeyCode::Char('y' | 'Y')) {
                return Some(Some(action));
            }
            ui.message = Some(("cancelled".into(), Tone::Info));
        }
        Mode::PickSignal { target, choice } => {
            let pick = |i: usize| Mode::Confirm(Action::Signal(SIGNALS[i], target.clone()));
            ui.mode = match key.code {
                KeyCode::Up | KeyCode::Char('k') => Mode::PickSignal { target, choice: choice.saturating_sub(1) },
                KeyCode::Down | KeyCode::Char('j') => {
                    Mode::PickSignal { target, choice: (choice + 1).min(SIGNALS.len() - 1) }
                }
                KeyCode::Enter => pick(choice),
                KeyCode::Char(c @ '1'..='7') => pick(usize::from(c as u8 - b'1')),
                _ => {
                    ui.message = Some(("cancelled".into(), Tone::Info));
                    Mode::Normal
                }
            };
        }
        Mode::Normal => {
            let page = ui.page as isize;
            match key.code {
                KeyCode::Char('q') => return None,
                // Esc clears the message first, the filter when there is none.
                KeyCode::Esc if ui.message.take().is_none() => m.set_filter(""),
                KeyCode::Char('?') | KeyCode::F(1) => ui.mode = Mode::Help,
                KeyCode::Up | KeyCode::Char('k') => m.move_selection(-1),
                KeyCode::Down | KeyCode::Char('j') => m.move_selection(1),
                KeyCode::PageUp => m.move_selection(-page),
                KeyCode::PageDown => m.move_selection(page),
                KeyCode::Home | KeyCode::Char('g') => m.select_end(false),
                KeyCode::End | KeyCode::Char('G') => m.select_end(true),
                KeyCode::Char('/') => ui.mode = Mode::Filter,
                KeyCode::Char('o') => m.cycle_sort(),
                KeyCode::Char('O') => m.toggle_reverse(),
                KeyCode::Char('R') => ui.mode = Mode::Confirm(Action::Reload),
                KeyCode::Char(c @ ('s' | 'x' | 'r' | 'K')) => {
                    let Some(target) = selected else {
                        ui.message = Some(("no program selected".into(), Tone::Bad));
                        return Some(None);
                    };
                    match c {
                        's' => return Some(Some(Action::Start(target))),
                        'x' => ui.mode = Mode::Confirm(Action::Stop(target)),
                        'r' => ui.mode = Mode::Confirm(Action::Restart(target)),
                        _ => ui.mode = Mode::PickSignal { target, choice: 0 },
                    }
                }
                _ => {}
            }
        }
    }
    Some(None)
}

/// Starts following the selected program's log when the selection moved to another one.
fn follow_selection(m: &mut Model, ui: &mut Ui, g: &Global, tx: &mpsc::Sender<Msg>) {
    let name = m.selected().map(|r| r.status.name.clone());
    if name == ui.logs.name {
        return;
    }
    if let Some(task) = ui.logs.task.take() {
        task.abort();
    }
    let round = ui.logs.round + 1;
    ui.logs = LogTail { name: name.clone(), round, ..LogTail::default() };
    if let Some(name) = name {
        ui.logs.task = Some(tokio::spawn(follow_log(g.clone(), name, round, tx.clone())));
    }
}

/// Another connection to the daemon `g` points at, for the dashboard's second and later
/// conversations (the first goes through [`connect`], which reports failures on the normal
/// screen). Failures come back as values: the screen is taken by then.
async fn dial(g: &Global) -> Result<Client, ClientError> {
    super::try_connect(g).await
}

/// Relays the event stream. A reload that adds programs is followed by a new stream, whose
/// snapshot includes them.
async fn stream(mut c: Client, g: Global, targets: Vec<String>, tx: mpsc::Sender<Msg>) {
    let mut shutting_down = false;
    let ending = loop {
        match c.recv().await {
            Ok(Some(resp)) => {
                let again = match &resp {
                    Response::Event(e) if e.kind == EventKind::Shutdown => {
                        shutting_down = true;
                        false
                    }
                    Response::Event(e) if e.kind == EventKind::Reload => {
                        e.plan.as_ref().is_some_and(|p| !p.added.is_empty())
                    }
                    _ => false,
                };
                if tx.send(Msg::Stream(Box::new(resp))).await.is_err() {
                    return;
                }
                if again {
                    match dial(&g).await {
                        Ok(mut fresh) => match fresh.send(&Request::Events { targets: targets.clone() }).await {
                            Ok(()) => c = fresh,
                            Err(e) => break Ending::DaemonGone(e.to_string()),
                        },
                        Err(e) => break Ending::DaemonGone(e.to_string()),
                    }
                }
            }
            Ok(None) if shutting_down => break Ending::DaemonShutDown,
            Ok(None) => break Ending::DaemonGone("the daemon went away (connection closed)".into()),
            Err(e) => break Ending::DaemonGone(e.to_string()),
        }
    };
    let _ = tx.send(Msg::End(ending)).await;
}

/// Reads CPU and memory every [`POLL`] on a connection of its own, for as long as the
/// dashboard runs. Ends quietly when the daemon goes: the event stream says why.
async fn poll_usage(g: Global, targets: Vec<String>, started: Instant, tx: mpsc::Sender<Msg>) {
    let Ok(mut c) = dial(&g).await else { return };
    loop {
        let sent = Instant::now();
        let Ok(Response::Status { programs }) =
            c.request(&Request::Status { targets: targets.clone(), resources: true }).await
        else {
            return;
        };
        // The daemon reads the process table somewhere between sending and receiving.
        let at = (sent + sent.elapsed() / 2).duration_since(started).as_secs_f64();
        if tx.send(Msg::Usage(programs, at)).await.is_err() {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Follows `name`'s log (both streams) until aborted or the log ends.
async fn follow_log(g: Global, name: String, round: u64, tx: mpsc::Sender<Msg>) {
    let why = async {
        let mut c = dial(&g).await?;
        c.send(&Request::Logs {
            name,
            names: Vec::new(),
            stream: LogSelect::Both,
            lines: LOG_LINES,
            follow: true,
            since: None,
        })
        .await?;
        while let Some(resp) = c.recv().await? {
            if let Response::Log { data, stream, notices, .. } = resp
                && tx.send(Msg::Log { round, data, stream, notices }).await.is_err()
            {
                return Ok(());
            }
        }
        Ok::<(), ClientError>(())
    }
    .await
    .err()
    .map(|e| e.to_string());
    let _ = tx.send(Msg::LogEnded { round, why }).await;
}

/// Asks the daemon to carry out `action` and reports its answer.
async fn act(g: Global, action: Action, tx: mpsc::Sender<Msg>) {
    let answer = async {
        let mut c = dial(&g).await?;
        c.request(&action.request()).await
    }
    .await;
    let (ok, text) = match answer {
        Ok(Response::Results { results }) => summary(&results),
        Ok(Response::Reload { plan, results }) => {
            let (ok, outcome) = summary(&results);
            let text = format!(
                "reloaded: {} added, {} removed, {} changed, {} updated in place{}",
                plan.added.len(),
                plan.removed.len(),
                plan.changed.len(),
                plan.updated.len(),
                if results.is_empty() { String::new() } else { format!("; {outcome}") }
            );
            (ok, text)
        }
        Ok(other) => (false, format!("unexpected reply from the daemon: {other:?}")),
        // The daemon's own words: "members of group ... have read-only access", ...
        Err(e) => (false, format!("{}: {e}", action.describe())),
    };
    let _ = tx.send(Msg::Done { ok, text }).await;
}

/// `web: restarted`, several joined with `; `, errors marked.
fn summary(results: &[TargetResult]) -> (bool, String) {
    let text: Vec<String> = results
        .iter()
        .map(|r| if r.ok { format!("{}: {}", r.name, r.message) } else { format!("{}: ERROR {}", r.name, r.message) })
        .collect();
    (results.iter().all(|r| r.ok), text.join("; "))
}

/// Feeds keys and resizes into the loop from a thread of their own (crossterm reads block),
/// and watches for the terminal going away: a hang-up or SIGINT/SIGTERM/SIGHUP ends the
/// dashboard. (crossterm keeps retrying a terminal that reads nothing, so the hang-up is
/// noticed here, not by its reader.)
fn watch_terminal(tx: &mpsc::Sender<Msg>) {
    let keys = tx.clone();
    std::thread::spawn(move || {
        loop {
            let msg = match ratatui::crossterm::event::read() {
                Ok(ev) => Msg::Input(ev),
                Err(_) => Msg::End(Ending::TerminalGone),
            };
            let end = matches!(msg, Msg::End(_));
            if keys.blocking_send(msg).is_err() || end {
                return;
            }
        }
    });
    let hangup = tx.clone();
    std::thread::spawn(move || {
        if svc_platform::wait_output_closed(std::io::stdout().as_fd()).is_ok() {
            let _ = hangup.blocking_send(Msg::End(Ending::TerminalGone));
        }
    });
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, ending) in
        [(SignalKind::hangup(), false), (SignalKind::interrupt(), true), (SignalKind::terminate(), true)]
    {
        let Ok(mut sig) = signal(kind) else { continue };
        let tx = tx.clone();
        tokio::spawn(async move {
            sig.recv().await;
            let _ = tx.send(Msg::End(if ending { Ending::Quit } else { Ending::TerminalGone })).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_output_cannot_drive_the_terminal() {
        assert_eq!(clean("\x1b[31mred\x1b[0m\tok\x07\r"), "red    ok");
        assert_eq!(
            clean("a\x1b]0;title\x07b"),
            "a0;titleb",
            "only CSI is skipped whole; what is left of others is harmless text"
        );
    }

    #[test]
    fn log_lines_are_split_per_stream_and_bounded() {
        let mut t = LogTail::default();
        t.push(Some(LogStream::Stdout), "one\ntw");
        t.push(Some(LogStream::Stderr), "oops\n");
        t.push(Some(LogStream::Stdout), "o\n");
        let lines: Vec<(bool, &str)> = t.tail(10).collect();
        assert_eq!(lines, [(false, "one"), (true, "oops"), (false, "two")]);
        for i in 0..LOG_LINES + 10 {
            t.push(None, &format!("{i}\n"));
        }
        t.push(None, "half");
        let last: Vec<(bool, &str)> = t.tail(2).collect();
        assert_eq!(last, [(false, &*format!("{}", LOG_LINES + 9)), (false, "half")]);
        assert_eq!(t.lines.len(), LOG_LINES);
    }

    #[test]
    fn keys_confirm_destructive_actions_only() {
        let mut m = Model::default();
        let mut p: crate::protocol::ProgramStatus = serde_json::from_value(serde_json::json!({
            "name": "web", "group": "web", "state": "RUNNING", "pid": 5, "since": 1.0, "exit_status": null,
            "exit_signal": null, "restarts": 0, "next_attempt": null, "reason": null
        }))
        .expect("status");
        p.ready = true;
        m.snapshot(vec![p]);
        let mut ui = Ui {
            mode: Mode::Normal,
            message: None,
            logs: LogTail::default(),
            color: false,
            shutting_down: false,
            offset: 0,
            page: 10,
        };
        let key = |c: char| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(key_press(key('s'), &mut m, &mut ui), Some(Some(Action::Start("web".into()))));
        assert_eq!(key_press(key('r'), &mut m, &mut ui), Some(None));
        assert_eq!(ui.mode, Mode::Confirm(Action::Restart("web".into())));
        assert_eq!(key_press(key('n'), &mut m, &mut ui), Some(None), "anything but y cancels");
        assert_eq!(ui.mode, Mode::Normal);
        key_press(key('K'), &mut m, &mut ui);
        key_press(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE), &mut m, &mut ui);
        key_press(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), &mut m, &mut ui);
        assert_eq!(ui.mode, Mode::Confirm(Action::Signal("INT", "web".into())));
        assert_eq!(key_press(key('y'), &mut m, &mut ui), Some(Some(Action::Signal("INT", "web".into()))));
        key_press(key('/'), &mut m, &mut ui);
        key_press(key('z'), &mut m, &mut ui);
        assert_eq!((m.filter(), &ui.mode), ("z", &Mode::Filter));
        assert_eq!(key_press(key('q'), &mut m, &mut ui), Some(None), "q is text while filtering");
        key_press(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE), &mut m, &mut ui);
        assert_eq!(m.filter(), "");
        assert_eq!(key_press(key('q'), &mut m, &mut ui), None);
        assert_eq!(key_press(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), &mut m, &mut ui), None);
    }
}
