//! `svc start|stop|restart`: send the verb, wait for the daemon's per-target outcome.

use super::{FAILURE, Global, SUCCESS, block_on, connect, report};
use crate::client::ClientError;
use crate::protocol::{Event, EventKind, Request, Response, State};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

/// The control verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Start and wait for RUNNING.
    Start,
    /// Stop and wait for stopped.
    Stop,
    /// Stop, start, wait for RUNNING.
    Restart,
}

/// Runs `verb` on `targets`; prints one line per target; fails if any target failed.
/// With `no_wait`, returns once the daemon took the request, not once it is done.
pub fn control(g: &Global, verb: Verb, targets: Vec<String>, json: bool, no_wait: bool) -> u8 {
    let (req, goal) = match verb {
        Verb::Start => (Request::Start { targets: targets.clone(), no_wait }, State::Running),
        Verb::Stop => (Request::Stop { targets: targets.clone() }, State::Stopped),
        Verb::Restart => (Request::Restart { targets: targets.clone(), no_wait }, State::Running),
    };
    let show = !json && !no_wait && std::io::stderr().is_terminal();
    block_on(async {
        let mut c = match connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let answer = c.request(&req);
        let results = if show {
            tokio::pin!(answer);
            tokio::select! {
                r = &mut answer => r,
                () = progress(g, &targets, goal) => answer.await,
            }
        } else {
            answer.await
        };
        if show {
            // Clear the progress line.
            eprint!("\r\x1b[K");
        }
        let results = match results {
            Ok(Response::Results { results }) => results,
            Ok(other) => return report(&ClientError::Protocol(format!("{other:?}"))),
            Err(e) => return report(&e),
        };
        print_results(&results, json)
    })
}

/// While a long operation runs on a terminal, shows how many targets reached the goal,
/// after a second (quick operations show nothing), updated from the daemon's event stream as
/// states change rather than by polling. Never returns on its own.
pub async fn progress(g: &Global, targets: &[String], goal: State) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let Ok(mut c) = super::try_connect(g).await else { return std::future::pending().await };
    if c.send(&Request::Events { targets: targets.to_vec() }).await.is_err() {
        return std::future::pending().await;
    }
    let verb = if goal == State::Running { "running" } else { "stopped" };
    let reached = |s: State| match goal {
        State::Running => s == State::Running,
        _ => matches!(s, State::Stopped | State::Exited | State::Fatal),
    };
    let mut states: HashMap<String, State> = HashMap::new();
    while let Ok(Some(resp)) = c.recv().await {
        match resp {
            // The first line, and again after falling behind: the whole picture.
            Response::Snapshot { programs, .. } => states = programs.into_iter().map(|p| (p.name, p.state)).collect(),
            Response::Event(Event { kind: EventKind::State, program: Some(name), to: Some(to), .. }) => {
                if let Some(state) = states.get_mut(&name) {
                    *state = to;
                }
            }
            _ => continue,
        }
        let done = states.values().filter(|&&s| reached(s)).count();
        eprint!("\r\x1b[K{done}/{} {verb}...", states.len());
    }
    std::future::pending().await
}

/// `svc signal SIG TARGET...`: deliver a signal to running programs.
pub fn signal(g: &Global, signal: String, targets: Vec<String>, json: bool) -> u8 {
    run_and_print(g, Request::Signal { signal, targets }, json)
}

/// Sends a request answered with per-target results and prints them like `control`.
pub fn run_and_print(g: &Global, req: Request, json: bool) -> u8 {
    block_on(async {
        let mut c = match connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let results = match c.request(&req).await {
            Ok(Response::Results { results }) => results,
            Ok(other) => return report(&ClientError::Protocol(format!("{other:?}"))),
            Err(e) => return report(&e),
        };
        print_results(&results, json)
    })
}

fn print_results(results: &[crate::protocol::TargetResult], json: bool) -> u8 {
    if json {
        println!("{}", serde_json::to_string_pretty(results).unwrap_or_default());
    } else {
        for r in results {
            if r.ok {
                println!("{}: {}", r.name, r.message);
            } else {
                let state = r.state.map(|s| format!(" [{}]", s.as_str())).unwrap_or_default();
                eprintln!("{}: ERROR {}{state}", r.name, r.message);
            }
        }
    }
    if results.iter().all(|r| r.ok) { SUCCESS } else { FAILURE }
}
