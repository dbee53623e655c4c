//! `svc logs`: the tail of programs' output, optionally followed, for one program or many
//! (then each line is prefixed with its program's name, like `docker compose logs`).

use super::{FAILURE, Global, SUCCESS, block_on, connect, report};
use crate::client::{Client, ClientError};
use crate::protocol::{ErrorCode, ErrorReply, LogSelect, LogStream, Request, Response};
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::time::SystemTime;
use tokio::sync::mpsc;

/// How many lines to ask for when `--since` selects by time rather than count.
const SINCE_LINES: usize = 1_000_000;

/// The name the daemon's own log goes by (`svc logs svc`), unless a program has it.
pub const DAEMON_NAME: &str = "svc";

/// What `svc logs` was asked for.
#[derive(Debug, Clone, Default)]
pub struct LogsArgs {
    /// Program names, `GROUP:*` or `all`; none means every program.
    pub targets: Vec<String>,
    /// Only stdout (with `stderr` too: both, the default).
    pub stdout: bool,
    /// Only stderr (with `stdout` too: both, the default).
    pub stderr: bool,
    /// The daemon's own log.
    pub daemon: bool,
    /// Lines from the end (`None`: 10, or everything in the `since` window).
    pub lines: Option<usize>,
    /// Keep following.
    pub follow: bool,
    /// Only lines stamped at or after this time (needs `log-timestamps`).
    pub since: Option<String>,
}

/// One log to print: a program's, or the daemon's own.
#[derive(Debug, Clone)]
enum Source {
    Program(String),
    Daemon,
}

impl Source {
    fn label(&self) -> &str {
        match self {
            Source::Program(name) => name,
            Source::Daemon => DAEMON_NAME,
        }
    }
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
    let select = match (args.stdout, args.stderr) {
        (true, false) => LogSelect::Stdout,
        (false, true) => LogSelect::Stderr,
        _ => LogSelect::Both,
    };
    let lines = args.lines.unwrap_or(if since.is_some() { SINCE_LINES } else { 10 });
    let since_text = since.map(|t| humantime::format_rfc3339_millis(t).to_string());
    block_on(async {
        let mut c = match connect(g).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let sources = match resolve(&mut c, &args).await {
            Ok(s) => s,
            Err(e) => return report(&e),
        };
        let single = sources.len() == 1
            && (args.daemon || (args.targets.len() == 1 && !args.targets[0].contains(':') && args.targets[0] != "all"));
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let width = sources.iter().map(|s| s.label().len()).max().unwrap_or(0);
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        // The daemon's log on a connection of its own; every program's over one more: a
        // request naming several gets their tails and their new output tagged by name.
        let mut requests = Vec::new();
        let mut programs = Vec::new();
        for (k, source) in sources.iter().enumerate() {
            match source {
                Source::Daemon => requests.push((
                    Request::DaemonLog { lines, follow: args.follow, since: since_text.clone() },
                    vec![(String::new(), k)],
                )),
                Source::Program(name) => programs.push((name.clone(), k)),
            }
        }
        if !programs.is_empty() {
            let (name, names) = match &programs[..] {
                [(one, _)] => (one.clone(), Vec::new()),
                many => (String::new(), many.iter().map(|(n, _)| n.clone()).collect()),
            };
            let req =
                Request::Logs { name, names, stream: select, lines, follow: args.follow, since: since_text.clone() };
            requests.push((req, programs));
        }
        for (req, whose) in requests {
            let tx = tx.clone();
            let g = g.clone();
            tokio::spawn(async move {
                match relay(&g, &req, &whose, &tx).await {
                    // One of them cannot be served as asked (`--stderr` of a program whose
                    // stderr goes to its stdout, ...), which fails the request before it sends
                    // anything: ask for each alone, so that the others are still shown.
                    Err(ClientError::Daemon(_)) if whose.len() > 1 => {
                        for (name, k) in whose {
                            let (g, tx) = (g.clone(), tx.clone());
                            let req = alone(&req, name.clone());
                            tokio::spawn(async move {
                                let result = relay(&g, &req, &[(name, k)], &tx).await;
                                let _ = tx.send(Event::Done(k, result.err()));
                            });
                        }
                    }
                    result => {
                        let mut err = result.err();
                        for (_, k) in &whose {
                            let _ = tx.send(Event::Done(*k, err.take()));
                        }
                    }
                }
            });
        }
        drop(tx);
        // A follower waits for output that may never come: when whoever reads ours has gone
        // (`svc logs -f web | head -1`), it must notice now, not at its next write.
        let (closed_tx, mut closed) = tokio::sync::oneshot::channel::<()>();
        if args.follow {
            std::thread::spawn(move || {
                if svc_platform::wait_output_closed(std::io::stdout().as_fd()).is_ok() {
                    let _ = closed_tx.send(());
                }
            });
        }
        let mut printer = Printer { out: std::io::stdout().lock(), width, color, single };
        let mut code = SUCCESS;
        let mut remaining = sources.len();
        // Without -f, programs are printed one after another, not interleaved.
        let mut pending: Vec<Vec<(Option<LogStream>, String)>> = vec![Vec::new(); sources.len()];
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => ev,
                    None => break,
                },
                Ok(()) = &mut closed => return SUCCESS,
            };
            match ev {
                Event::Line(k, stream, line) if args.follow => {
                    if !printer.line(sources[k].label(), stream, &line) {
                        return SUCCESS;
                    }
                }
                Event::Line(k, stream, line) => pending[k].push((stream, line)),
                Event::Notice(k, notice) => eprintln!("svc: {}: {notice}", sources[k].label()),
                Event::Done(k, err) => {
                    if let Some(e) = err {
                        eprintln!("svc: {}: {e}", sources[k].label());
                        let usage = matches!(&e, ClientError::Daemon(r) if r.field.as_deref() == Some("since"));
                        code = code.max(if usage { super::USAGE } else { FAILURE });
                    }
                    remaining -= 1;
                    if remaining == 0 {
                        break;
                    }
                }
            }
        }
        for (k, lines) in pending.into_iter().enumerate() {
            for (stream, line) in lines {
                if !printer.line(sources[k].label(), stream, &line) {
                    return SUCCESS;
                }
            }
        }
        code
    })
}

/// The logs the targets name: programs (resolved as every command resolves them) and, for
/// `--daemon` or a target `svc` that no program is called, the daemon's own.
async fn resolve(c: &mut Client, args: &LogsArgs) -> Result<Vec<Source>, ClientError> {
    let mut daemon = args.daemon;
    let mut targets = args.targets.clone();
    if targets.iter().any(|t| t == DAEMON_NAME) {
        let named_svc = match c.request(&Request::Status { targets: vec![DAEMON_NAME.into()], resources: false }).await
        {
            Ok(Response::Status { .. }) => true,
            Err(ClientError::Daemon(ErrorReply { code: ErrorCode::UnknownTarget, .. })) => false,
            Ok(other) => return Err(ClientError::Protocol(format!("{other:?}"))),
            Err(e) => return Err(e),
        };
        if !named_svc {
            targets.retain(|t| t != DAEMON_NAME);
            daemon = true;
        }
    }
    let mut sources = Vec::new();
    if daemon {
        sources.push(Source::Daemon);
        if targets.is_empty() {
            return Ok(sources);
        }
    }
    match c.request(&Request::Status { targets, resources: false }).await? {
        Response::Status { programs } => sources.extend(programs.into_iter().map(|p| Source::Program(p.name))),
        other => return Err(ClientError::Protocol(format!("{other:?}"))),
    }
    Ok(sources)
}

enum Event {
    /// A whole line (or the unfinished last one) of source `k`, and its stream when both are shown.
    Line(usize, Option<LogStream>, String),
    Notice(usize, String),
    Done(usize, Option<ClientError>),
}

/// `req` (a `logs` request for many) for program `name` alone.
fn alone(req: &Request, name: String) -> Request {
    match req {
        Request::Logs { stream, lines, follow, since, .. } => Request::Logs {
            name,
            names: Vec::new(),
            stream: *stream,
            lines: *lines,
            follow: *follow,
            since: since.clone(),
        },
        other => other.clone(),
    }
}

/// Streams the logs one request asks for as whole lines into `tx`; each stream of each log
/// keeps its own unfinished line. `whose`: the sources the reply covers, by the name its
/// `log` replies carry (a reply for one log carries none: it is the first).
async fn relay(
    g: &Global,
    req: &Request,
    whose: &[(String, usize)],
    tx: &mpsc::UnboundedSender<Event>,
) -> Result<(), ClientError> {
    let mut c = super::try_connect(g).await?;
    c.send(req).await?;
    let follow = matches!(req, Request::Logs { follow: true, .. } | Request::DaemonLog { follow: true, .. });
    let tagged = matches!(req, Request::Logs { names, .. } if !names.is_empty());
    let index: std::collections::HashMap<&str, usize> = whose.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    let first = whose.first().map_or(0, |(_, k)| *k);
    let mut partial: std::collections::HashMap<(usize, usize), String> = std::collections::HashMap::new();
    let slot = |s: Option<LogStream>| usize::from(s == Some(LogStream::Stderr));
    let stream_of = [None, Some(LogStream::Stderr)];
    loop {
        match c.recv().await? {
            Some(Response::Log { data, stream, notices, name }) => {
                let k = match name.as_deref() {
                    Some(n) => match index.get(n) {
                        Some(&k) => k,
                        None => return Err(ClientError::Protocol(format!("a log of {n}, which was not asked for"))),
                    },
                    None => first,
                };
                for notice in notices {
                    let _ = tx.send(Event::Notice(k, notice));
                }
                if data.is_empty() {
                    // The end of the tails: with names, the one `log` without a name.
                    if follow || (tagged && name.is_some()) {
                        continue;
                    }
                    break;
                }
                let i = slot(stream);
                let partial = partial.entry((k, i)).or_default();
                partial.push_str(&data);
                // Split the whole chunk once and keep only the unfinished line: draining line
                // by line from the front shifts the rest each time, quadratic in the chunk.
                let Some(end) = partial.rfind('\n') else { continue };
                let rest = partial.split_off(end + 1);
                for line in partial.split_inclusive('\n') {
                    if tx.send(Event::Line(k, stream_of[i], line.to_owned())).is_err() {
                        return Ok(());
                    }
                }
                *partial = rest;
            }
            Some(other) => return Err(ClientError::Protocol(format!("{other:?}"))),
            None => break,
        }
    }
    let mut rest: Vec<_> = partial.into_iter().filter(|(_, p)| !p.is_empty()).collect();
    rest.sort_by_key(|(key, _)| *key);
    for ((k, i), p) in rest {
        let _ = tx.send(Event::Line(k, stream_of[i], p));
    }
    Ok(())
}

struct Printer<W: Write> {
    out: W,
    width: usize,
    color: bool,
    single: bool,
}

/// What marks a stderr line among stdout lines.
const ERR_MARK: &str = "err| ";

impl<W: Write> Printer<W> {
    /// Prints one line (marked when it is from stderr among stdout); false when stdout is
    /// gone (`svc logs x | head`), a normal way to stop.
    fn line(&mut self, name: &str, stream: Option<LogStream>, line: &str) -> bool {
        let mark = match (stream, self.color) {
            (Some(LogStream::Stderr), true) => "\x1b[2merr|\x1b[0m ",
            (Some(LogStream::Stderr), false) => ERR_MARK,
            _ => "",
        };
        let written = if self.single {
            write!(self.out, "{mark}{line}")
        } else if self.color {
            write!(self.out, "{}{name:<w$}\x1b[0m | {mark}{line}", name_color(name), w = self.width)
        } else {
            write!(self.out, "{name:<w$} | {mark}{line}", w = self.width)
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
    fn prefixed_lines_are_aligned_and_stderr_is_marked() {
        let mut out = Vec::new();
        let mut p = Printer { out: &mut out, width: 6, color: false, single: false };
        assert!(p.line("web", Some(LogStream::Stdout), "up\n"));
        assert!(p.line("worker", Some(LogStream::Stderr), "boom"));
        assert!(p.line("web", None, "plain\n"));
        assert_eq!(String::from_utf8(out).expect("utf8"), "web    | up\nworker | err| boom\nweb    | plain\n");
    }

    #[test]
    fn name_colors_are_stable() {
        assert_eq!(name_color("web"), name_color("web"));
    }
}
