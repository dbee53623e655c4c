//! `svc logs`: the tail of programs' output, optionally followed, for one program or many
//! (then each line is prefixed with its program's name, like `docker compose logs`).

use super::{FAILURE, Global, SUCCESS, block_on, connect, report};
use crate::client::{Client, ClientError};
use crate::protocol::{LogStream, Request, Response};
use std::io::{IsTerminal, Write};
use std::time::SystemTime;
use tokio::sync::mpsc;

/// How many lines to ask for when `--since` selects by time rather than count.
const SINCE_LINES: usize = 1_000_000;

/// What `svc logs` was asked for.
#[derive(Debug, Clone)]
pub struct LogsArgs {
    /// Program names, `GROUP:*` or `all`.
    pub targets: Vec<String>,
    /// stderr instead of stdout.
    pub stderr: bool,
    /// Lines from the end (`None`: 10, or everything in the `since` window).
    pub lines: Option<usize>,
    /// Keep following.
    pub follow: bool,
    /// Only lines stamped at or after this time (needs `log-timestamps`).
    pub since: Option<String>,
}

/// Prints the logs of `args.targets`.
pub fn logs(g: &Global, args: LogsArgs) -> u8 {
    let since = match args.since.as_deref().map(parse_since) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("svc: --since: {e}");
            return super::USAGE;
        }
    };
    let stream = if args.stderr { LogStream::Stderr } else { LogStream::Stdout };
    let lines = args.lines.unwrap_or(if since.is_some() { SINCE_LINES } else { 10 });
    block_on(async {
        let mut c = match connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        // Resolve names, groups and `all` the way every other command does.
        let names: Vec<String> = match c.request(&Request::Status { targets: args.targets.clone() }).await {
            Ok(Response::Status { programs }) => programs.into_iter().map(|p| p.name).collect(),
            Ok(other) => return report(&ClientError::Protocol(format!("{other:?}"))),
            Err(e) => return report(&e),
        };
        let single =
            names.len() == 1 && args.targets.len() == 1 && !args.targets[0].contains(':') && args.targets[0] != "all";
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let width = names.iter().map(String::len).max().unwrap_or(0);
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        for name in &names {
            let tx = tx.clone();
            let g = g.clone();
            let name = name.clone();
            let req = Request::Logs { name: name.clone(), stream, lines, follow: args.follow };
            tokio::spawn(async move {
                let result = relay(&g, &req, &name, &tx).await;
                let _ = tx.send(Event::Done(name, result.err()));
            });
        }
        drop(tx);
        let mut printer = Printer { out: std::io::stdout().lock(), width, color, since, single, warned: Vec::new() };
        let mut failed = false;
        let mut remaining = names.len();
        // Without -f, programs are printed one after another, not interleaved.
        let mut pending: Vec<(String, Vec<String>)> = names.iter().map(|n| (n.clone(), Vec::new())).collect();
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Line(name, line) if args.follow => {
                    if !printer.line(&name, &line) {
                        return SUCCESS;
                    }
                }
                Event::Line(name, line) => {
                    if let Some((_, buf)) = pending.iter_mut().find(|(n, _)| *n == name) {
                        buf.push(line);
                    }
                }
                Event::Done(name, err) => {
                    if let Some(e) = err {
                        eprintln!("svc: {name}: {e}");
                        failed = true;
                    }
                    remaining -= 1;
                    if remaining == 0 {
                        break;
                    }
                }
            }
        }
        for (name, mut lines) in pending {
            // Lines written before log-timestamps was turned on carry no stamp; when the
            // program's newer lines do, those old ones are outside any --since window.
            if printer.since.is_some() && lines.iter().any(|l| stamp_of(l).is_some()) {
                lines.retain(|l| stamp_of(l).is_some());
            }
            for line in lines {
                if !printer.line(&name, &line) {
                    return SUCCESS;
                }
            }
        }
        if failed { FAILURE } else { SUCCESS }
    })
}

enum Event {
    Line(String, String),
    Done(String, Option<ClientError>),
}

/// Streams one program's log as whole lines into `tx`.
async fn relay(g: &Global, req: &Request, name: &str, tx: &mpsc::UnboundedSender<Event>) -> Result<(), ClientError> {
    let mut c = Client::connect(&g.paths()).await?;
    c.send(req).await?;
    let follow = matches!(req, Request::Logs { follow: true, .. });
    let mut partial = String::new();
    loop {
        match c.recv().await? {
            Some(Response::Log { data }) => {
                if data.is_empty() && !follow {
                    break;
                }
                partial.push_str(&data);
                // Split the whole chunk once and keep only the unfinished line: draining line
                // by line from the front shifts the rest each time, quadratic in the chunk.
                let Some(end) = partial.rfind('\n') else { continue };
                let rest = partial.split_off(end + 1);
                for line in partial.split_inclusive('\n') {
                    if tx.send(Event::Line(name.to_owned(), line.to_owned())).is_err() {
                        return Ok(());
                    }
                }
                partial = rest;
            }
            Some(other) => return Err(ClientError::Protocol(format!("{other:?}"))),
            None => break,
        }
    }
    if !partial.is_empty() {
        let _ = tx.send(Event::Line(name.to_owned(), partial));
    }
    Ok(())
}

struct Printer<W: Write> {
    out: W,
    width: usize,
    color: bool,
    since: Option<SystemTime>,
    single: bool,
    warned: Vec<String>,
}

impl<W: Write> Printer<W> {
    /// Prints one line; false when stdout is gone (`svc logs -f x | head`), a normal way to stop.
    fn line(&mut self, name: &str, line: &str) -> bool {
        if let Some(since) = self.since {
            match stamp_of(line) {
                Some(t) if t < since => return true,
                Some(_) => {}
                None if !self.warned.iter().any(|w| w == name) => {
                    eprintln!("svc: {name} does not set log-timestamps; --since cannot filter its lines");
                    self.warned.push(name.to_owned());
                }
                None => {}
            }
        }
        let written = if self.single {
            self.out.write_all(line.as_bytes())
        } else if self.color {
            write!(self.out, "{}{name:<w$}\x1b[0m | {line}", name_color(name), w = self.width)
        } else {
            write!(self.out, "{name:<w$} | {line}", w = self.width)
        };
        let newline = if line.ends_with('\n') { Ok(()) } else { self.out.write_all(b"\n") };
        written.and(newline).and_then(|()| self.out.flush()).is_ok()
    }
}

/// A colour per program name that stays the same from run to run.
fn name_color(name: &str) -> &'static str {
    const COLORS: [&str; 6] = ["\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[31m"];
    let hash = name.bytes().fold(5381u32, |h, b| h.wrapping_mul(33) ^ u32::from(b));
    COLORS[hash as usize % COLORS.len()]
}

/// The RFC 3339 time a `log-timestamps` line starts with.
fn stamp_of(line: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(line.split(' ').next()?).ok()
}

/// `10m`, `2h 30m` (ago), or an RFC 3339 time.
fn parse_since(s: &str) -> Result<SystemTime, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(SystemTime::now().checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH));
    }
    humantime::parse_rfc3339_weak(s)
        .map_err(|_| format!("`{s}` is neither a duration (10m, 2h) nor a time (2026-11-24T10:00:00Z)"))
}

/// `svc clear TARGET...` / `svc logs --clear NAME`: empty the logs of programs.
pub fn clear(g: &Global, targets: Vec<String>, json: bool) -> u8 {
    super::control::run_and_print(g, Request::ClearLogs { targets }, json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn since_accepts_durations_and_times() {
        let ten_min_ago = parse_since("10m").expect("duration");
        let age = SystemTime::now().duration_since(ten_min_ago).expect("past");
        assert!(age >= Duration::from_secs(600) && age < Duration::from_secs(610));
        assert!(parse_since("2026-11-24T10:00:00Z").is_ok());
        assert!(parse_since("yesterday-ish").is_err());
    }

    #[test]
    fn prefixed_lines_are_aligned_and_filtered_by_time() {
        let mut out = Vec::new();
        let cutoff = humantime::parse_rfc3339("2026-01-01T00:00:00Z").expect("time");
        let mut p =
            Printer { out: &mut out, width: 6, color: false, since: Some(cutoff), single: false, warned: vec![] };
        assert!(p.line("web", "2025-12-31T23:59:59.000Z old\n"));
        assert!(p.line("web", "2026-01-01T00:00:01.000Z new\n"));
        assert!(p.line("worker", "2026-01-02T00:00:00.000Z newer"));
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "web    | 2026-01-01T00:00:01.000Z new\nworker | 2026-01-02T00:00:00.000Z newer\n"
        );
    }

    #[test]
    fn name_colors_are_stable() {
        assert_eq!(name_color("web"), name_color("web"));
    }
}
