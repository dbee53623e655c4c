//! `svc status`: a table like supervisorctl's, or JSON for scripts.

use super::{FAILURE, Global, NOT_RUNNING, SUCCESS, block_on, connect, report};
use crate::client::ClientError;
use crate::protocol::{ProgramStatus, Request, Response, State};
use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How far apart the two readings behind the table's CPU percentage are: long enough that a
/// few clock ticks of CPU time (10 ms each on Linux) are a small error, short enough not to
/// make a person wait.
const CPU_WINDOW: Duration = Duration::from_millis(400);

/// Prints the status of `targets` (all when empty). `resources`: whether to show CPU and memory;
/// `None` means "when stdout is a terminal and the output is a table", since the table's CPU
/// percentage costs [`CPU_WINDOW`] of waiting, which scripts should not pay unasked.
pub fn status(g: &Global, targets: Vec<String>, json: bool, resources: Option<bool>) -> u8 {
    let resources = resources.unwrap_or(!json && std::io::stdout().is_terminal());
    block_on(async {
        let mut c = match connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let mut ask = async |targets: Vec<String>| {
            let sent = Instant::now();
            let reply = c.request(&Request::Status { targets, resources }).await;
            // The daemon reads the process table somewhere between sending and receiving.
            let at = sent + sent.elapsed() / 2;
            match reply {
                Ok(Response::Status { programs }) => Ok((programs, at)),
                Ok(other) => Err(report(&ClientError::Protocol(format!("{other:?}")))),
                Err(e) => Err(report(&e)),
            }
        };
        let (mut programs, first_at) = match ask(targets.clone()).await {
            Ok(r) => r,
            Err(code) => return code,
        };
        if json {
            match serde_json::to_string_pretty(&programs) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("svc: {e}");
                    return FAILURE;
                }
            }
        } else {
            let mut cpu = None;
            if resources {
                // CPU time is cumulative: a rate needs a second reading, taken only if there is
                // something to measure.
                if programs.iter().any(|p| p.cpu_seconds.is_some()) {
                    tokio::time::sleep(CPU_WINDOW).await;
                    let (later, later_at) = match ask(targets).await {
                        Ok(r) => r,
                        Err(code) => return code,
                    };
                    let secs = later_at.duration_since(first_at).as_secs_f64();
                    cpu = Some(later.iter().map(|p| cpu_percent(&programs, p, secs)).collect());
                    programs = later;
                } else {
                    cpu = Some(vec![None; programs.len()]);
                }
            }
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            print!("{}", table(&programs, now(), color, cpu.as_deref()));
        }
        if programs.iter().all(|p| p.state == State::Running) { SUCCESS } else { NOT_RUNNING }
    })
}

/// Percent of one core that `p` used over the `secs` since its reading in `before`; `None`
/// unless both readings are of the same run (same pid) and the time went forward: a member of
/// its group exiting without being waited for takes its time along, and a rate across that
/// would be wrong, not small.
fn cpu_percent(before: &[ProgramStatus], p: &ProgramStatus, secs: f64) -> Option<f64> {
    let old = before.iter().find(|b| b.name == p.name && b.group == p.group)?;
    if old.pid.is_none() || old.pid != p.pid || secs <= 0.0 {
        return None;
    }
    let used = p.cpu_seconds? - old.cpu_seconds?;
    (used >= 0.0).then(|| used / secs * 100.0)
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// The ANSI colour of a state: green when all is well, yellow on the way, red when failing.
fn state_color(state: State) -> &'static str {
    match state {
        State::Running => "\x1b[32m",
        State::Starting | State::Stopping => "\x1b[33m",
        State::Backoff | State::Fatal => "\x1b[1;31m",
        State::Exited => "\x1b[31m",
        State::Stopped => "\x1b[2m",
    }
}

/// The aligned table: NAME STATE PID UPTIME RESTARTS DETAIL, states coloured when `color`;
/// with a READY column after STATE when a program has a readiness or health check, and CPU and
/// MEM after UPTIME when `cpu` (each program's CPU percentage, in order) is given.
pub fn table(programs: &[ProgramStatus], now: f64, color: bool, cpu: Option<&[Option<f64>]>) -> String {
    let with_ready = programs.iter().any(|p| p.ready_check);
    let rows: Vec<Vec<String>> = programs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let pid = p.pid.map_or_else(|| "-".into(), |p| p.to_string());
            let uptime = match p.state {
                State::Running | State::Starting | State::Stopping => human_duration(now - p.since),
                _ => "-".into(),
            };
            // supervisorctl's GROUP:NAME for members of a group (or of a numprocs block), so
            // the name shown is one `svc` commands take.
            let name = if p.group == p.name { p.name.clone() } else { format!("{}:{}", p.group, p.name) };
            let mut row = vec![name, p.state.as_str().into()];
            if with_ready {
                let up = matches!(p.state, State::Starting | State::Running | State::Stopping);
                row.push(match (up, p.ready) {
                    (false, _) => "-".into(),
                    (true, true) => "yes".into(),
                    (true, false) => "no".into(),
                });
            }
            row.extend([pid, uptime]);
            if let Some(cpu) = cpu {
                let pct = cpu.get(i).copied().flatten();
                row.push(pct.map_or_else(|| "-".into(), |c| format!("{c:.1}%")));
                row.push(p.memory_bytes.map_or_else(|| "-".into(), human_bytes));
            }
            row.extend([p.restarts.to_string(), detail(p, now)]);
            row
        })
        .collect();
    let mut header: Vec<String> = vec!["NAME".into(), "STATE".into()];
    if with_ready {
        header.push("READY".into());
    }
    header.extend(["PID", "UPTIME"].map(String::from));
    if cpu.is_some() {
        header.extend(["CPU", "MEM"].map(String::from));
    }
    header.extend(["RESTARTS", "DETAIL"].map(String::from));
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let states = std::iter::once(None).chain(programs.iter().map(|p| Some(p.state)));
    for (row, state) in std::iter::once(&header).chain(&rows).zip(states) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths.iter().copied()).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else if let (1, Some(state), true) = (i, state, color) {
                // Pad outside the escape codes so the columns stay aligned.
                line.push_str(&format!("{}{cell}\x1b[0m{:pad$}  ", state_color(state), "", pad = w - cell.len()));
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The DETAIL column: why it failed, what it waits for, what it says about itself.
pub fn detail(p: &ProgramStatus, now: f64) -> String {
    let base = state_detail(p, now);
    // Facts beside the state: what it waits for, and what its health check says.
    let extra = [
        p.waiting.clone(),
        p.health.as_ref().filter(|h| *h == "unhealthy").cloned(),
        p.status_text.as_ref().map(|t| format!("\"{t}\"")),
    ];
    let mut parts: Vec<String> = extra.into_iter().flatten().collect();
    if !base.is_empty() {
        parts.insert(if p.waiting.is_some() { 1 } else { 0 }, base);
    }
    parts.join("; ")
}

fn state_detail(p: &ProgramStatus, now: f64) -> String {
    let exit = match (p.exit_status, &p.exit_signal) {
        (Some(code), _) => Some(format!("exit status {code}")),
        (None, Some(sig)) => Some(format!("killed by SIG{sig}")),
        _ => None,
    };
    match p.state {
        State::Backoff => {
            let next = p.next_attempt.map(|t| format!("; next attempt in {}", human_duration(t - now)));
            format!("{}{}", p.reason.clone().unwrap_or_default(), next.unwrap_or_default())
        }
        State::Fatal => p.reason.clone().unwrap_or_default(),
        State::Exited | State::Stopped => exit.map(|e| format!("last run: {e}")).unwrap_or_default(),
        _ => match (&p.reason, p.log_dropped_bytes) {
            (Some(reason), _) => reason.clone(),
            // Writing works again, but the gap in the log should not go unnoticed.
            (None, 1..) => {
                format!("{} of output dropped while its log could not be written", human_bytes(p.log_dropped_bytes))
            }
            (None, 0) => String::new(),
        },
    }
}

/// `512 B`, `12.3 KB`, `4.0 MB`, `1.2 GB` (decimal units, as `max-bytes` takes them).
pub fn human_bytes(n: u64) -> String {
    match n {
        0..1000 => format!("{n} B"),
        1000..1_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.1} GB", n as f64 / 1e9),
    }
}

/// `45s`, `3m 07s`, `2h 03m`, `4d 02h`.
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `svc pid`: the daemon's pid; `svc pid TARGET...`: each program's pid, 0 when not running
/// (as supervisorctl prints).
pub fn pid(g: &Global, targets: Vec<String>, json: bool) -> u8 {
    block_on(async {
        let mut c = match connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        if targets.is_empty() {
            return match c.request(&Request::Info {}).await {
                Ok(Response::Info(info)) => {
                    if json {
                        println!("{:#}", serde_json::json!({ "pid": info.pid }));
                    } else {
                        println!("{}", info.pid);
                    }
                    SUCCESS
                }
                Ok(other) => report(&ClientError::Protocol(format!("{other:?}"))),
                Err(e) => report(&e),
            };
        }
        match c.request(&Request::Status { targets, resources: false }).await {
            Ok(Response::Status { programs }) => {
                if json {
                    let map: serde_json::Map<String, serde_json::Value> =
                        programs.iter().map(|p| (p.name.clone(), p.pid.into())).collect();
                    println!("{:#}", serde_json::Value::Object(map));
                } else if programs.len() == 1 {
                    println!("{}", programs[0].pid.unwrap_or(0));
                } else {
                    // Several programs: say which pid is whose.
                    let width = programs.iter().map(|p| p.name.len()).max().unwrap_or(0);
                    for p in &programs {
                        println!("{:<width$}  {}", p.name, p.pid.unwrap_or(0));
                    }
                }
                if programs.iter().all(|p| p.pid.is_some()) { SUCCESS } else { NOT_RUNNING }
            }
            Ok(other) => report(&ClientError::Protocol(format!("{other:?}"))),
            Err(e) => report(&e),
        }
    })
}

/// `svc avail`: every program in the config file on disk, whether the daemon runs it
/// already ("in use") or only knows it after a reload ("avail"), its autostart and priority.
pub fn avail(g: &Global, json: bool) -> u8 {
    block_on(async {
        let mut c = match connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let running = match c.request(&Request::Status { targets: vec![], resources: false }).await {
            Ok(Response::Status { programs }) => programs,
            Ok(other) => return report(&ClientError::Protocol(format!("{other:?}"))),
            Err(e) => return report(&e),
        };
        // The daemon reads its config file: it may be on another machine.
        let config = match c.request(&Request::Check { text: None, color: false }).await {
            Ok(Response::Check(r)) if r.ok => r,
            Ok(Response::Check(r)) => {
                if super::json_enabled() {
                    let mut first = r.errors.first().map_or_else(String::new, |e| {
                        format!("{}:{}:{}: {}", e.file.display(), e.line, e.column, e.message)
                    });
                    if r.errors.len() > 1 {
                        first.push_str(&format!(" (and {} more)", r.errors.len() - 1));
                    }
                    return super::fail("config_invalid", &first, None, FAILURE);
                }
                eprint!("{}", r.rendered);
                return FAILURE;
            }
            Ok(other) => return report(&ClientError::Protocol(format!("{other:?}"))),
            Err(e) => return report(&e),
        };
        let rows: Vec<serde_json::Value> = config
            .programs
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "group": p.group,
                    "in_use": running.iter().any(|r| r.name == p.name),
                    "autostart": p.autostart,
                    "priority": p.priority,
                })
            })
            .collect();
        if json {
            println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
        } else {
            let width = config.programs.iter().map(|p| p.name.len()).max().unwrap_or(4).max(4);
            for r in &rows {
                println!(
                    "{:<width$}  {:<6}  {:<6}  {}",
                    r["name"].as_str().unwrap_or_default(),
                    if r["in_use"] == true { "in use" } else { "avail" },
                    if r["autostart"] == true { "auto" } else { "manual" },
                    r["priority"],
                );
            }
        }
        SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_human() {
        assert_eq!(human_duration(0.2), "0s");
        assert_eq!(human_duration(59.0), "59s");
        assert_eq!(human_duration(187.0), "3m 07s");
        assert_eq!(human_duration(7380.0), "2h 03m");
        assert_eq!(human_duration(180000.0), "2d 02h");
        assert_eq!(human_duration(-5.0), "0s");
    }

    #[test]
    fn table_aligns_columns() {
        let p = |name: &str, state, pid| ProgramStatus {
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
            ready: false,
            ready_check: false,
            health: None,
            waiting: None,
            status_text: None,
            cpu_seconds: None,
            memory_bytes: None,
        };
        let t =
            table(&[p("web", State::Running, Some(12)), p("longer-name", State::Stopped, None)], 165.0, false, None);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME         STATE    PID  UPTIME  RESTARTS  DETAIL");
        assert_eq!(lines[1], "web          RUNNING  12   1m 05s  0");
        assert_eq!(lines[2], "longer-name  STOPPED  -    -       0");
        let colored = table(&[p("web", State::Running, Some(12))], 165.0, true, None);
        assert!(colored.contains("\x1b[32mRUNNING\x1b[0m"), "{colored:?}");
    }
}
