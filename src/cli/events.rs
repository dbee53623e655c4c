//! `svc events`: the daemon's event stream, as lines for people or JSON lines for scripts.

use super::{FAILURE, Global, SUCCESS, block_on, connect, report};
use crate::client::{Client, ClientError};
use crate::protocol::{self, Event, EventKind, ProgramStatus, Request, Response};
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Prints the events of `targets` (all programs when empty) until interrupted, until whoever
/// reads the output goes away, or until the daemon does.
pub fn events(g: &Global, targets: Vec<String>, json: bool) -> u8 {
    block_on(async {
        let mut c = match connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        if let Err(e) = c.send(&Request::Events { targets }).await {
            return report(&e);
        }
        // Events may be rare: when the reader of our output has gone (`svc events | head -1`),
        // notice now, not at the next write.
        let (closed_tx, closed) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            if svc_platform::wait_output_closed(std::io::stdout().as_fd()).is_ok() {
                let _ = closed_tx.send(());
            }
        });
        tokio::select! {
            code = relay(&mut c, json) => code,
            Ok(()) = closed => SUCCESS,
        }
    })
}

async fn relay(c: &mut Client, json: bool) -> u8 {
    let mut out = std::io::stdout().lock();
    let mut shutting_down = false;
    loop {
        let resp = match c.recv().await {
            Ok(Some(r)) => r,
            Ok(None) if shutting_down => {
                eprintln!("svc: the daemon has shut down");
                return SUCCESS;
            }
            Ok(None) => {
                eprintln!("svc: the daemon went away (connection closed)");
                return FAILURE;
            }
            Err(ClientError::Io(e)) => {
                eprintln!("svc: lost the connection to the daemon: {e}");
                return FAILURE;
            }
            Err(e) => return report(&e),
        };
        shutting_down |= matches!(&resp, Response::Event(e) if e.kind == EventKind::Shutdown);
        let text = if json { protocol::encode_response(&resp) } else { human(&resp) };
        if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
            return SUCCESS;
        }
    }
}

/// One reply as lines for people: `2026-12-02T06:30:01Z web RUNNING -> STOPPING (pid 1234)`.
pub fn human(resp: &Response) -> String {
    match resp {
        Response::Snapshot { time, programs, .. } => programs.iter().map(|p| snapshot_line(*time, p)).collect(),
        Response::Event(e) => format!("{}\n", event_line(e)),
        Response::Lagged { missed } => {
            format!("{} svc: this watcher fell behind and missed {missed} events; the state now:\n", stamp(unix_now()))
        }
        other => format!("{other:?}\n"),
    }
}

fn snapshot_line(time: f64, p: &ProgramStatus) -> String {
    let mut line = format!("{} {} {}", stamp(time), p.name, p.state.as_str());
    if let Some(pid) = p.pid {
        line.push_str(&format!(" (pid {pid})"));
    }
    line.push('\n');
    line
}

fn event_line(e: &Event) -> String {
    let name = e.program.as_deref().unwrap_or("svc");
    let mut line = format!("{} {name} ", stamp(e.time));
    match e.kind {
        EventKind::State => {
            let state = |s: Option<crate::protocol::State>| s.map_or("?", |s| s.as_str());
            line.push_str(&format!("{} -> {}", state(e.from), state(e.to)));
            let mut details = Vec::new();
            if let Some(pid) = e.pid {
                details.push(format!("pid {pid}"));
            }
            if let Some(code) = e.exit_status {
                details.push(format!("exit status {code}"));
            }
            if let Some(signal) = &e.exit_signal {
                details.push(format!("killed by SIG{signal}"));
            }
            if !details.is_empty() {
                line.push_str(&format!(" ({})", details.join(", ")));
            }
        }
        EventKind::Ready => {
            line.push_str("ready");
            if let Some(pid) = e.pid {
                line.push_str(&format!(" (pid {pid})"));
            }
        }
        EventKind::Health => line.push_str(e.health.as_deref().unwrap_or("health unknown")),
        EventKind::Reload => {
            let p = e.plan.clone().unwrap_or_default();
            line.push_str(&format!(
                "reload: {} added, {} removed, {} changed, {} updated in place",
                p.added.len(),
                p.removed.len(),
                p.changed.len(),
                p.updated.len()
            ));
        }
        EventKind::Shutdown => line.push_str("shutting down: stopping every program"),
    }
    if let Some(reason) = &e.reason {
        line.push_str(&format!(": {reason}"));
    }
    line
}

fn stamp(unix: f64) -> String {
    let t = UNIX_EPOCH + Duration::try_from_secs_f64(unix.max(0.0)).unwrap_or_default();
    humantime::format_rfc3339_seconds(t).to_string()
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::State;

    #[test]
    fn events_read_as_one_line_each() {
        let mut e = Event::new(3, 1_796_193_001.25, EventKind::State);
        e.program = Some("web".into());
        e.from = Some(State::Running);
        e.to = Some(State::Stopping);
        e.pid = Some(1234);
        assert_eq!(human(&Response::Event(e.clone())), "2026-12-02T06:30:01Z web RUNNING -> STOPPING (pid 1234)\n");
        e.from = Some(State::Starting);
        e.to = Some(State::Backoff);
        e.exit_status = Some(1);
        e.reason = Some("exited too quickly".into());
        assert_eq!(
            event_line(&e),
            "2026-12-02T06:30:01Z web STARTING -> BACKOFF (pid 1234, exit status 1): exited too quickly"
        );
        let shutdown = Event::new(4, 1_796_193_001.0, EventKind::Shutdown);
        assert_eq!(event_line(&shutdown), "2026-12-02T06:30:01Z svc shutting down: stopping every program");
    }
}
