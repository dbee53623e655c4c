//! Readiness and health checks: one attempt of a check ([`attempt`]) and the two schedules the
//! supervisor runs them on ([`run_until_pass`] for readiness, [`health_loop`] for liveness).
//!
//! An attempt is bounded by the probe's timeout and leaves nothing running: its socket closes
//! when it returns, and an exec check's process group is SIGKILLed when it times out or when
//! the attempt is dropped (its program stopped meanwhile). Exec checks are not waited for here:
//! the reaper owns `waitpid(-1)` and hands their exits over ([`reaper::spawn_expecting_exit`]),
//! so the supervisor never sees them.
//!
//! Log checks are not attempts: nothing can be polled for a line that went by, so they are
//! watched as the output is written ([`super::logs::LogFile::watch_line`]).
//!
//! Timers exist only while a schedule runs, that is while its program is up; a program without
//! probes costs nothing.

use super::process::{Exit, describe_exit};
use super::reaper;
use crate::config::{Check, Probe, ProgramSpec};
use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::unix::pipe;
use tokio::sync::oneshot;

/// Bytes of an exec check's stderr kept for the reason: the start of its first line.
const STDERR_KEPT: usize = 200;

/// Longest HTTP status or header line read before the answer counts as garbage.
const MAX_HTTP_LINE: u64 = 8 * 1024;

/// Header lines read looking for a redirect's `Location` before giving up on it.
const MAX_HTTP_HEADERS: usize = 100;

/// How long a SIGKILLed exec check may take to be reaped before its exit is given up on; only
/// a process stuck in the kernel (a dead NFS mount) takes longer.
const KILLED_GRACE: Duration = Duration::from_secs(5);

/// Runs `check` once for `spec`'s program: `Ok` when it passed, else a short reason for people
/// ("connection refused", "HTTP 503", "exit status 1: <stderr>", "timed out after 2s").
///
/// [`Check::Log`] is not run here (see [`super::logs::LogFile::watch_line`]) and always fails.
pub async fn attempt(check: &Check, spec: &ProgramSpec, timeout: Duration) -> Result<(), String> {
    let timed_out = || format!("timed out after {}", humantime::format_duration(timeout));
    match check {
        Check::Tcp(target) => tokio::time::timeout(timeout, tcp(target)).await.map_err(|_| timed_out())?,
        Check::Http(url) => tokio::time::timeout(timeout, http(url)).await.map_err(|_| timed_out())?,
        Check::Exec(command) => exec(command, spec, timeout).await,
        Check::Log(_) => Err("log checks are watched, not run".into()),
    }
}

/// Waits out the probe's `start_period`, then attempts every `interval` (counted from the end
/// of the previous attempt, so attempts never overlap) until one passes.
///
/// A [`Check::Log`] never passes here: watch the program's logs instead.
pub async fn run_until_pass(probe: &Probe, spec: &ProgramSpec) {
    run_until_pass_reporting(probe, spec, |_| {}).await
}

/// [`run_until_pass`], telling `failed` why each failed attempt failed (for a status line, or
/// the reason a `start-timeout` gives).
pub async fn run_until_pass_reporting(probe: &Probe, spec: &ProgramSpec, mut failed: impl FnMut(&str)) {
    if matches!(probe.check, Check::Log(_)) {
        return std::future::pending().await;
    }
    tokio::time::sleep(probe.start_period).await;
    loop {
        match attempt(&probe.check, spec, probe.timeout).await {
            Ok(()) => return,
            Err(reason) => {
                tracing::debug!("{}: not ready yet: {reason}", spec.name);
                failed(&reason);
            }
        }
        tokio::time::sleep(probe.interval).await;
    }
}

/// A change in a program's health, from [`health_loop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEvent {
    /// The first attempt that passed, or the first pass after the program was unhealthy.
    Healthy,
    /// `failures` attempts in a row failed (the configured retries); `reason` is the last one's.
    Unhealthy {
        /// Why the last attempt failed.
        reason: String,
        /// Failures in a row (equal to the retries).
        failures: u32,
    },
}

/// Checks a running program's health until dropped (it never returns): after `start_period`,
/// one attempt every `interval` (from the end of the previous one). `report` is called
/// synchronously on changes only: [`HealthEvent::Healthy`] at the first pass and at the first
/// pass after being unhealthy, [`HealthEvent::Unhealthy`] once when `retries` attempts in a row
/// have failed (0 counts as 1). Failures before that, and passes while healthy, are not
/// reported.
///
/// A [`Check::Log`] (readiness only) never reports anything.
pub async fn health_loop(probe: &Probe, spec: &ProgramSpec, retries: u32, mut report: impl FnMut(HealthEvent)) {
    if matches!(probe.check, Check::Log(_)) {
        return std::future::pending().await;
    }
    let retries = retries.max(1);
    // None until the first verdict: the first pass is reported even with no failure before.
    let mut healthy = None;
    let mut failures = 0;
    tokio::time::sleep(probe.start_period).await;
    loop {
        match attempt(&probe.check, spec, probe.timeout).await {
            Ok(()) => {
                failures = 0;
                if healthy != Some(true) {
                    healthy = Some(true);
                    report(HealthEvent::Healthy);
                }
            }
            Err(reason) => {
                tracing::debug!("{}: health check failed: {reason}", spec.name);
                failures += 1;
                if failures >= retries && healthy != Some(false) {
                    healthy = Some(false);
                    report(HealthEvent::Unhealthy { reason, failures });
                }
            }
        }
        tokio::time::sleep(probe.interval).await;
    }
}

/// An I/O error as a short lower-case reason, without the "(os error N)" suffix.
fn reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".into(),
    }
}

/// `host:port`, `[v6]:port`, or (for TCP targets) `v6:port`; with `default_port`, the port may
/// be left out (URLs), and an unbracketed IPv6 address is refused since it would be ambiguous.
fn host_port(s: &str, default_port: Option<u16>) -> Option<(&str, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => default_port?,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return (!host.is_empty()).then_some((host, port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || default_port.is_none() => (h, p.parse().ok()?),
        Some(_) => return None,
        None => (s, default_port?),
    };
    (!host.is_empty()).then_some((host, port))
}

/// Connects to the first address of `host` that accepts, like a client would.
async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    // An IP address is parsed in place; only a name is looked up (on the blocking pool).
    let addrs =
        tokio::net::lookup_host((host, port)).await.map_err(|e| format!("cannot resolve {host}: {}", reason(&e)))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| format!("{host} has no address"), |e| reason(&e)))
}

async fn tcp(target: &str) -> Result<(), String> {
    let (host, port) = host_port(target, None).ok_or_else(|| format!("{target:?} is not host:port"))?;
    connect(host, port).await.map(drop)
}

/// The authority (`host[:port]`) and the request target (`/path?query`) of a plain-HTTP URL.
fn parse_url(url: &str) -> Result<(&str, String), String> {
    let rest = url
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])
        .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    // The fragment is the client's business; it is never sent.
    let target = target.split('#').next().unwrap_or("");
    if authority.contains('@') {
        return Err("user names and passwords in the URL are not supported".into());
    }
    // The target goes into the request line verbatim: a space or line break would corrupt it.
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("the URL contains spaces or control characters (percent-encode them)".into());
    }
    let target = match target {
        "" => "/".to_owned(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_owned(),
    };
    Ok((authority, target))
}

async fn http(url: &str) -> Result<(), String> {
    let (authority, target) = parse_url(url)?;
    let (host, port) = host_port(authority, Some(80)).ok_or_else(|| format!("{authority:?} is not host[:port]"))?;
    let mut stream = connect(host, port).await?;
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: svc\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| reason(&e))?;
    let mut reader = BufReader::with_capacity(1024, stream);
    loop {
        let line = http_line(&mut reader).await?.ok_or("the connection closed without an answer")?;
        let code = status_code(&line).ok_or("not an HTTP response")?;
        match code {
            // Interim answers (103 Early Hints) come before the real one.
            100..=199 => while !http_line(&mut reader).await?.unwrap_or_default().is_empty() {},
            200..=299 => return Ok(()),
            300..=399 => {
                return Err(match location(&mut reader).await {
                    Some(to) => format!("HTTP {code} redirect to {to} (redirects are not followed)"),
                    None => format!("HTTP {code} redirect (redirects are not followed)"),
                });
            }
            _ => return Err(format!("HTTP {code}")),
        }
    }
}

/// One line of the answer's head without its line break; `None` at the end of the stream.
async fn http_line(reader: &mut (impl AsyncBufRead + Unpin)) -> Result<Option<String>, String> {
    let mut line = Vec::new();
    let n = reader.take(MAX_HTTP_LINE).read_until(b'\n', &mut line).await.map_err(|e| reason(&e))?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") && n as u64 == MAX_HTTP_LINE {
        return Err("not an HTTP response".into());
    }
    let line = String::from_utf8_lossy(&line);
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// The code of a status line (`HTTP/1.1 200 OK`).
fn status_code(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/") || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

/// A redirect's `Location`, if it comes among the first header lines.
async fn location(reader: &mut (impl AsyncBufRead + Unpin)) -> Option<String> {
    for _ in 0..MAX_HTTP_HEADERS {
        let line = http_line(reader).await.ok()??;
        if line.is_empty() {
            return None;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("location")
        {
            return Some(value.trim().to_owned());
        }
    }
    None
}

/// The start of the first line of an exec check's stderr.
#[derive(Default)]
struct FirstLine {
    text: Vec<u8>,
    complete: bool,
}

impl FirstLine {
    fn feed(&mut self, data: &[u8]) {
        if self.complete {
            return;
        }
        let end = data.iter().position(|&b| b == b'\n');
        let line = &data[..end.unwrap_or(data.len())];
        let room = STDERR_KEPT - self.text.len();
        self.text.extend_from_slice(&line[..line.len().min(room)]);
        self.complete = end.is_some() || self.text.len() == STDERR_KEPT;
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text).trim().to_owned()
    }
}

/// Moves what the pipe holds into `first`; false at the end of the stream. Bounded, so that
/// a check flooding its stderr cannot keep the daemon from everything else.
fn drain(stderr: &pipe::Receiver, first: &mut FirstLine) -> bool {
    let mut buf = [0; 1024];
    for _ in 0..16 {
        match stderr.try_read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => first.feed(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// A running exec check's process group, SIGKILLed if the attempt ends (timeout, or dropped
/// with its program) before the check's exit was delivered.
struct Group {
    pgid: u32,
    exit: oneshot::Receiver<Exit>,
}

impl Group {
    fn kill(&mut self) {
        // Only while the leader is unreaped: its pid, and so the group id, cannot have been
        // reused. In the daemon nothing can reap it between this check and the kill (one
        // thread); the reaper delivers an exit before a new process could get its pid.
        if matches!(self.exit.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.pgid as i32), nix::sys::signal::SIGKILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What an exec check runs, all decided in the daemon: the runner only carries it out.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExecJob {
    command: String,
    dir: PathBuf,
    env: Vec<(String, String)>,
    timeout: Duration,
}

async fn exec(command: &str, spec: &ProgramSpec, timeout: Duration) -> Result<(), String> {
    // The same directory as the program, so relative paths in the check mean what they mean
    // to the program (spawn.rs's rules).
    let dir = match &spec.directory {
        Some(dir) if !dir.is_dir() => return Err(format!("working directory {} does not exist", dir.display())),
        Some(dir) => dir.clone(),
        None => std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_dir()).unwrap_or_else(|| "/".into()),
    };
    let mut env = spec.environment.clone();
    env.push(("SVC_PROCESS_NAME".into(), spec.name.clone()));
    env.push(("SVC_GROUP_NAME".into(), spec.group.clone()));
    let job = ExecJob { command: command.to_owned(), dir, env, timeout };
    match runner::run(&job).await {
        Some(result) => result,
        None => run_exec(&job).await,
    }
}

/// Shell keywords and builtins that have no program of their name (or act differently as
/// one): a command starting with one of these runs under `sh -c`.
const SHELL_ONLY: &[&str] = &[
    "!", "{", "}", "case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in", "then", "until", "while",
    ":", ".", "alias", "bg", "break", "cd", "command", "continue", "eval", "exec", "exit", "export", "fc", "fg",
    "getopts", "hash", "jobs", "local", "read", "readonly", "return", "set", "shift", "source", "times", "trap",
    "type", "ulimit", "umask", "unalias", "unset", "wait",
];

/// The words of `command` when it means the same without a shell: no variables, globs,
/// redirections, pipes, operators, comments, escapes, tilde or assignments, only words
/// (quoted or not), and a first word that names a program. `sh -c` costs a shell's start-up
/// per check (with 1,000 programs checked every 10 s, a tenth of a core).
fn simple_words(command: &str) -> Option<Vec<String>> {
    let plain = |c: char| c.is_ascii_alphanumeric() || " \t-_./:,@%+='\"".contains(c);
    if !command.chars().all(plain) {
        return None;
    }
    let words = shell_words::split(command).ok()?;
    let first = words.first()?;
    (!first.is_empty() && !first.contains('=') && !SHELL_ONLY.contains(&first.as_str())).then_some(words)
}

/// Runs an exec check here, in this process, and waits for its verdict.
async fn run_exec(job: &ExecJob) -> Result<(), String> {
    let timeout = job.timeout;
    let (mut cmd, name) = match simple_words(&job.command) {
        Some(words) => {
            let mut cmd = Command::new(&words[0]);
            cmd.args(&words[1..]);
            (cmd, words[0].clone())
        }
        None => {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(&job.command);
            (cmd, "sh".to_owned())
        }
    };
    cmd.current_dir(&job.dir);
    cmd.envs(job.env.iter().map(|(k, v)| (k, v)));
    cmd.env_remove("NOTIFY_SOCKET");
    let (stderr_reader, stderr_writer) = io::pipe().map_err(|e| format!("cannot make a pipe: {}", reason(&e)))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr_writer);
    // A group of its own, so that a timeout kills what the check started too. No pre_exec
    // hook: std then uses posix_spawn, which does not copy the daemon's memory map.
    cmd.process_group(0);
    let (child, exit) =
        reaper::spawn_expecting_exit(&mut cmd).map_err(|e| format!("cannot run {name}: {}", reason(&e)))?;
    // Our copy of the write end: EOF must come when the check's processes close theirs.
    drop(cmd);
    let mut group = Group { pgid: child.id(), exit };
    // Dropping a std Child neither waits nor kills; the reaper collects the exit.
    drop(child);
    let stderr = pipe::Receiver::from_owned_fd(OwnedFd::from(stderr_reader)).ok();
    let mut first = FirstLine::default();
    let mut open = stderr.is_some();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let exit = loop {
        tokio::select! {
            biased;
            exit = &mut group.exit => break exit.ok(),
            ready = async { stderr.as_ref().expect("open").readable().await }, if open => {
                open = ready.is_ok() && drain(stderr.as_ref().expect("open"), &mut first);
            }
            () = &mut deadline => {
                group.kill();
                // The kill makes the exit come soon; waiting for it keeps a probe from ever
                // running beside the next one.
                let _ = tokio::time::timeout(KILLED_GRACE, &mut group.exit).await;
                return Err(format!("timed out after {}", humantime::format_duration(timeout)));
            }
        }
    };
    // What it wrote before exiting is still in the pipe, even if a background process of its
    // own keeps the pipe open. Through `readable()`, not a bare `try_read`: tokio answers
    // WouldBlock without asking the kernel until it has seen the pipe become readable again.
    if let Some(stderr) = &stderr {
        let until = tokio::time::Instant::now() + Duration::from_millis(100);
        while open && !first.complete {
            match tokio::time::timeout_at(until, stderr.readable()).await {
                Ok(Ok(())) => open = drain(stderr, &mut first),
                _ => break,
            }
        }
    }
    match exit {
        Some(Exit::Code(0)) => Ok(()),
        Some(exit) => {
            let text = first.text();
            let what = describe_exit(exit);
            Err(if text.is_empty() { what } else { format!("{what}: {text}") })
        }
        None => Err("its exit was lost".into()),
    }
}

/// The probe runner: a small process of the daemon's that spawns exec checks for it.
///
/// A daemon supervising 1,000 programs holds thousands of descriptors, and every process it
/// creates copies that table in the kernel (`posix_spawn` shares the memory, not the table) and
/// is then reaped by a `waitpid` that looks through 1,000 children. With 1,000 exec checks
/// every 10 s that came to 2 % of a core. The runner holds three descriptors and only its
/// checks as children; the daemon sends it one line per check and reads one line back.
///
/// Started on the first exec check (a config without one never has a runner), as `svc
/// __probe-runner` from the daemon's own executable, in a process group of its own. It exits
/// when the daemon closes its end (the daemon exited, even by SIGKILL), killing the process
/// groups of the checks under way. If it cannot be started, or dies, checks run in the daemon
/// as before, and a new runner is tried a minute later.
pub mod runner {
    use super::{ExecJob, KILLED_GRACE, reaper, run_exec};
    use serde::{Deserialize, Serialize};
    use std::collections::HashMap;
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::unix::pipe;
    use tokio::sync::{mpsc, oneshot};

    /// The argument that makes `svc` a probe runner (not a user command: not in `--help`).
    pub const ARG: &str = "__probe-runner";

    /// How long after a runner failed checks run in the daemon before another is tried: one
    /// second after the first failure, twice as long after each next one, at most a minute.
    /// A runner that lasted a minute starts the count anew.
    const RETRY: Duration = Duration::from_secs(1);
    const RETRY_MAX: Duration = Duration::from_secs(60);

    /// Beyond a check's own timeout and kill grace, how long the daemon waits for the runner's
    /// answer before it gives the check up.
    const ANSWER_GRACE: Duration = Duration::from_secs(5);

    /// A request, as the daemon writes it (borrowing the job).
    #[derive(Serialize)]
    enum Send<'a> {
        Run { id: u64, job: &'a ExecJob },
        Cancel { id: u64 },
    }

    /// A request, as the runner reads it.
    #[derive(Deserialize)]
    enum Request {
        Run { id: u64, job: ExecJob },
        Cancel { id: u64 },
    }

    /// The runner's answer: the verdict of check `id` (`error: None` = passed).
    #[derive(Serialize, Deserialize)]
    struct Answer {
        id: u64,
        error: Option<String>,
    }

    type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<(), String>>>>>;

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        // Each critical section is one map or state update: consistent across a panic.
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    struct Link {
        generation: u64,
        pid: u32,
        lines: mpsc::UnboundedSender<String>,
        waiters: Waiters,
        started: Instant,
        /// Runners that failed in a row before this one.
        failures: u32,
    }

    enum State {
        None,
        Up(Link),
        /// The `failures`th runner in a row failed at `at`: checks run in the daemon for a while.
        Down {
            at: Instant,
            failures: u32,
        },
    }

    impl State {
        fn down(failures: u32) -> State {
            State::Down { at: Instant::now(), failures }
        }
    }

    static STATE: Mutex<State> = Mutex::new(State::None);
    static NEXT: AtomicU64 = AtomicU64::new(1);

    /// The runner's pid, if one runs: the daemon stops it last, without calling it a leftover.
    pub fn pid() -> Option<u32> {
        match &*lock(&STATE) {
            State::Up(link) => Some(link.pid),
            _ => None,
        }
    }

    /// Runs `job` in the runner and returns its verdict; `None` when there is no runner to
    /// run it (the caller runs it itself).
    pub(super) async fn run(job: &ExecJob) -> Option<Result<(), String>> {
        // A unit-test binary cannot be a runner: its checks run in place.
        if cfg!(test) {
            return None;
        }
        let (lines, waiters) = link()?;
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&waiters).insert(id, tx);
        let line = serde_json::to_string(&Send::Run { id, job }).ok()?;
        if lines.send(line).is_err() {
            lock(&waiters).remove(&id);
            return None;
        }
        // Dropped before the answer (the program stopped, or a timeout below): the runner kills
        // the check's process group.
        let mut cancel = Cancel { id, lines, waiters, armed: true };
        match tokio::time::timeout(job.timeout + KILLED_GRACE + ANSWER_GRACE, rx).await {
            Ok(Ok(verdict)) => {
                cancel.armed = false;
                Some(verdict)
            }
            // The runner went away during the check: run it here.
            Ok(Err(_)) => {
                cancel.armed = false;
                None
            }
            Err(_) => Some(Err(format!(
                "timed out after {} (the probe runner did not answer)",
                humantime::format_duration(job.timeout)
            ))),
        }
    }

    struct Cancel {
        id: u64,
        lines: mpsc::UnboundedSender<String>,
        waiters: Waiters,
        armed: bool,
    }

    impl Drop for Cancel {
        fn drop(&mut self) {
            if self.armed {
                lock(&self.waiters).remove(&self.id);
                if let Ok(line) = serde_json::to_string(&Send::Cancel { id: self.id }) {
                    let _ = self.lines.send(line);
                }
            }
        }
    }

    /// The running runner's request channel, starting one if there is none.
    fn link() -> Option<(mpsc::UnboundedSender<String>, Waiters)> {
        let mut state = lock(&STATE);
        let failures = match &*state {
            State::Up(link) if !link.lines.is_closed() => return Some((link.lines.clone(), link.waiters.clone())),
            State::Up(link) => link.failures + 1,
            State::Down { at, failures } => {
                if at.elapsed() < (RETRY * 2u32.pow(failures.saturating_sub(1).min(6))).min(RETRY_MAX) {
                    return None;
                }
                *failures
            }
            State::None => 0,
        };
        match start(failures) {
            Ok(link) => {
                let out = (link.lines.clone(), link.waiters.clone());
                *state = State::Up(link);
                Some(out)
            }
            Err(e) => {
                tracing::warn!("cannot start the probe runner ({e}); exec checks run in the daemon meanwhile");
                *state = State::down(failures + 1);
                None
            }
        }
    }

    fn start(failures: u32) -> io::Result<Link> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg(ARG).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        cmd.env_remove("NOTIFY_SOCKET");
        // Not in the daemon's group: a Ctrl-C at a foreground daemon is the daemon's to handle.
        cmd.process_group(0);
        let (mut child, exit) = reaper::spawn_expecting_exit(&mut cmd)?;
        let pid = child.id();
        // Should either end be missing, dropping the other makes the runner exit at once.
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("no pipes to the runner"));
        };
        let writer = pipe::Sender::from_owned_fd(OwnedFd::from(stdin))?;
        let reader = pipe::Receiver::from_owned_fd(OwnedFd::from(stdout))?;
        let generation = NEXT.fetch_add(1, Ordering::Relaxed);
        let waiters = Waiters::default();
        let (lines, mut requests) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            let mut writer = writer;
            while let Some(mut line) = requests.recv().await {
                line.push('\n');
                if writer.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        let answered = waiters.clone();
        tokio::spawn(async move {
            let mut answers = BufReader::new(reader).lines();
            while let Ok(Some(line)) = answers.next_line().await {
                if let Ok(a) = serde_json::from_str::<Answer>(&line)
                    && let Some(tx) = lock(&answered).remove(&a.id)
                {
                    let _ = tx.send(a.error.map_or(Ok(()), Err));
                }
            }
            // Gone: the checks under way run in the daemon (their senders drop), and so do
            // later ones until a new runner is tried.
            let mut state = lock(&STATE);
            if let State::Up(link) = &*state
                && link.generation == generation
            {
                let failures = if link.started.elapsed() >= RETRY_MAX { 1 } else { link.failures + 1 };
                *state = State::down(failures);
            }
            drop(state);
            lock(&answered).clear();
        });
        tokio::spawn(async move {
            if let Ok(exit) = exit.await {
                tracing::info!("probe runner (pid {pid}) ended: {}", super::describe_exit(exit));
            }
        });
        tracing::debug!("probe runner started (pid {pid})");
        Ok(Link { generation, pid, lines, waiters, started: Instant::now(), failures })
    }

    /// `svc __probe-runner`: reads requests on stdin, runs each check as the daemon would, and
    /// answers on stdout, until stdin ends.
    pub fn main() -> std::process::ExitCode {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("svc {ARG}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        match runtime.block_on(serve()) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("svc {ARG}: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    }

    async fn serve() -> io::Result<()> {
        let sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
        let (orphans, mut unclaimed) = mpsc::unbounded_channel();
        tokio::spawn(reaper::run(sigchld, orphans));
        // Every child is a check, whose exit is claimed; anything else is only reaped.
        tokio::spawn(async move { while unclaimed.recv().await.is_some() {} });
        let stdin = pipe::Receiver::from_owned_fd(io::stdin().as_fd().try_clone_to_owned()?)?;
        let mut stdout = pipe::Sender::from_owned_fd(io::stdout().as_fd().try_clone_to_owned()?)?;
        let (answers, mut to_send) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(mut line) = to_send.recv().await {
                line.push('\n');
                if stdout.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        let mut running: HashMap<u64, tokio::task::AbortHandle> = HashMap::new();
        let mut requests = BufReader::new(stdin).lines();
        while let Some(line) = requests.next_line().await? {
            running.retain(|_, task| !task.is_finished());
            match serde_json::from_str::<Request>(&line) {
                Ok(Request::Run { id, job }) => {
                    let answers = answers.clone();
                    let task = tokio::spawn(async move {
                        let error = run_exec(&job).await.err();
                        if let Ok(line) = serde_json::to_string(&Answer { id, error }) {
                            let _ = answers.send(line);
                        }
                    });
                    running.insert(id, task.abort_handle());
                }
                // Dropping the attempt kills its process group.
                Ok(Request::Cancel { id }) => {
                    if let Some(task) = running.remove(&id) {
                        task.abort();
                    }
                }
                Err(e) => eprintln!("svc {ARG}: bad request: {e}"),
            }
        }
        // The daemon is gone. Returning drops every attempt under way, killing their groups.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

    fn probe(check: Check) -> Probe {
        Probe {
            check,
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(10),
            start_period: Duration::ZERO,
        }
    }

    fn spec() -> ProgramSpec {
        ProgramSpec::new("web", vec!["true".into()])
    }

    /// A port nothing listens on (bound, then closed).
    fn closed_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
    }

    /// Serves every connection to `listener` on a thread for the rest of the test binary:
    /// reads the request head, sends it to `requests`, then writes what `answer` returns, or,
    /// for `None`, answers nothing until the client hangs up.
    fn serve_on(
        listener: TcpListener,
        answer: impl Fn() -> Option<Vec<u8>> + Send + 'static,
    ) -> std::sync::mpsc::Receiver<String> {
        let (requests, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut byte = [0];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let _ = requests.send(String::from_utf8_lossy(&head).into_owned());
                match answer() {
                    Some(reply) => {
                        let _ = stream.write_all(&reply);
                    }
                    None => {
                        let _ = stream.read_to_end(&mut Vec::new());
                    }
                }
            }
        });
        rx
    }

    fn serve(answer: impl Fn() -> Option<Vec<u8>> + Send + 'static) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        (addr, serve_on(listener, answer))
    }

    fn reply(text: &'static str) -> impl Fn() -> Option<Vec<u8>> + Send + 'static {
        move || Some(text.as_bytes().to_vec())
    }

    async fn check(check: Check) -> Result<(), String> {
        attempt(&check, &spec(), Duration::from_secs(10)).await
    }

    #[tokio::test]
    async fn tcp_passes_on_a_listening_port_and_fails_on_a_closed_one() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        assert_eq!(check(Check::Tcp(addr.to_string())).await, Ok(()));
        assert_eq!(check(Check::Tcp(format!("127.0.0.1:{}", closed_port()))).await, Err("connection refused".into()));
        assert_eq!(check(Check::Tcp(format!("localhost:{}", addr.port()))).await, Ok(()), "a name is looked up");
    }

    #[tokio::test]
    async fn tcp_reaches_ipv6_literals() {
        // Hosts without IPv6 on loopback (some containers) have nothing to test.
        let Ok(listener) = TcpListener::bind("[::1]:0") else { return };
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(check(Check::Tcp(format!("[::1]:{port}"))).await, Ok(()));
        assert_eq!(check(Check::Tcp(format!("::1:{port}"))).await, Ok(()), "the config allows it unbracketed");
    }

    #[tokio::test]
    async fn http_passes_on_2xx_and_sends_a_proper_request() {
        let (addr, requests) = serve(reply("HTTP/1.1 204 No Content\r\n\r\n"));
        assert_eq!(check(Check::Http(format!("http://{addr}/health?deep=1#frag"))).await, Ok(()));
        let request = requests.recv().expect("request");
        assert!(request.starts_with("GET /health?deep=1 HTTP/1.1\r\n"), "{request}");
        assert!(request.contains(&format!("\r\nHost: {addr}\r\n")), "{request}");
        assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
        assert_eq!(check(Check::Http(format!("http://localhost:{}", addr.port()))).await, Ok(()));
        assert!(requests.recv().expect("request").starts_with("GET / HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn http_reaches_ipv6_literals() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else { return };
        let port = listener.local_addr().expect("addr").port();
        let requests = serve_on(listener, reply("HTTP/1.0 200 OK\r\n\r\nfine"));
        assert_eq!(check(Check::Http(format!("http://[::1]:{port}/"))).await, Ok(()));
        assert!(requests.recv().expect("request").contains(&format!("\r\nHost: [::1]:{port}\r\n")));
    }

    #[tokio::test]
    async fn http_fails_on_errors_redirects_and_garbage() {
        let (addr, _r) = serve(reply("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"));
        assert_eq!(check(Check::Http(format!("http://{addr}/"))).await, Err("HTTP 503".into()));

        let (addr, _r) = serve(reply("HTTP/1.1 302 Found\r\nServer: x\r\nlocation: /login\r\n\r\n"));
        assert_eq!(
            check(Check::Http(format!("http://{addr}/"))).await,
            Err("HTTP 302 redirect to /login (redirects are not followed)".into())
        );

        let (addr, _r) = serve(reply("SSH-2.0-OpenSSH_9.6\r\n"));
        assert_eq!(check(Check::Http(format!("http://{addr}/"))).await, Err("not an HTTP response".into()));

        let (addr, _r) = serve(move || Some(vec![b'x'; 20_000]));
        assert_eq!(check(Check::Http(format!("http://{addr}/"))).await, Err("not an HTTP response".into()));

        let (addr, _r) = serve(reply(""));
        assert_eq!(
            check(Check::Http(format!("http://{addr}/"))).await,
            Err("the connection closed without an answer".into())
        );

        let url = format!("http://127.0.0.1:{}/", closed_port());
        assert_eq!(check(Check::Http(url)).await, Err("connection refused".into()));
    }

    #[tokio::test]
    async fn http_skips_interim_answers() {
        let (addr, _r) = serve(reply("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"));
        assert_eq!(check(Check::Http(format!("http://{addr}/"))).await, Ok(()));
    }

    #[tokio::test]
    async fn a_slow_server_times_out() {
        let (addr, _r) = serve(|| None);
        let result = attempt(&Check::Http(format!("http://{addr}/")), &spec(), Duration::from_millis(300)).await;
        assert_eq!(result, Err("timed out after 300ms".into()));
    }

    #[test]
    fn urls_and_targets_are_parsed() {
        assert_eq!(parse_url("http://h:1/a/b?c"), Ok(("h:1", "/a/b?c".to_owned())));
        assert_eq!(parse_url("HTTP://h?q"), Ok(("h", "/?q".to_owned())));
        assert!(parse_url("http://u:p@h/").is_err());
        assert!(parse_url("http://h/a b").is_err());
        assert!(parse_url("https://h/").is_err());
        assert_eq!(host_port("h", Some(80)), Some(("h", 80)));
        assert_eq!(host_port("[::1]", Some(80)), Some(("::1", 80)));
        assert_eq!(host_port("::1", Some(80)), None);
        assert_eq!(host_port("::1:5", None), Some(("::1", 5)));
        assert_eq!(host_port("h", None), None);
        assert_eq!(host_port(":5", None), None);
    }

    #[test]
    fn only_commands_without_shell_syntax_skip_the_shell() {
        let words = |c: &str| simple_words(c);
        assert_eq!(words("true"), Some(vec!["true".to_owned()]));
        assert_eq!(
            words("pg_isready -q -h 127.0.0.1 -p 5432"),
            Some(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"].map(String::from).to_vec())
        );
        assert_eq!(words("test -f '/tmp/a b'"), Some(["test", "-f", "/tmp/a b"].map(String::from).to_vec()));
        assert_eq!(
            words("curl -fsS http://localhost:8000/health"),
            Some(["curl", "-fsS", "http://localhost:8000/health"].map(String::from).to_vec())
        );
        for shell in [
            "exit 1",
            "cd /tmp",
            ": x",
            "! true",
            "if true; then true; fi",
            "a | b",
            "a && b",
            "a; b",
            "a > f",
            "echo $HOME",
            "echo \"$(id)\"",
            "ls *",
            "ls ~",
            "echo a\\ b",
            "FOO=1 cmd",
            "x # c",
            "",
            "'unterminated",
            "echo `id`",
        ] {
            assert_eq!(words(shell), None, "{shell:?} needs the shell");
        }
    }

    #[tokio::test]
    async fn a_simple_command_that_is_not_there_fails_with_a_reason() {
        let t = Duration::from_secs(10);
        let err = exec_check("no-such-program-here --x", &spec(), t).await.expect_err("fails");
        assert!(err.starts_with("cannot run no-such-program-here: "), "{err}");
        assert_eq!(exec_check("sh -c 'exit 4'", &spec(), t).await, Err("exit status 4".into()));
    }

    async fn exec_check(command: &str, spec: &ProgramSpec, timeout: Duration) -> Result<(), String> {
        reaper::run_for_tests();
        attempt(&Check::Exec(command.into()), spec, timeout).await
    }

    #[tokio::test]
    async fn exec_passes_in_the_programs_directory_and_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().canonicalize().expect("canonical");
        let mut spec = spec();
        spec.directory = Some(dir.path().to_owned());
        spec.environment.push(("PROBE_VAR".into(), "x y".into()));
        let command = format!("test \"$(pwd -P)\" = '{}' && test \"$PROBE_VAR\" = 'x y'", real.display());
        assert_eq!(exec_check(&command, &spec, Duration::from_secs(10)).await, Ok(()));
    }

    #[tokio::test]
    async fn exec_fails_with_its_status_and_first_stderr_line() {
        let spec = spec();
        let t = Duration::from_secs(10);
        assert_eq!(
            exec_check("echo 'no database' >&2; echo more >&2; exit 3", &spec, t).await,
            Err("exit status 3: no database".into())
        );
        assert_eq!(exec_check("exit 1", &spec, t).await, Err("exit status 1".into()));
        assert_eq!(exec_check("kill -TERM $$", &spec, t).await, Err("killed by SIGTERM".into()));
        let long = exec_check("printf '%0500d\\n' 0 >&2; exit 1", &spec, t).await.expect_err("fails");
        assert_eq!(long, format!("exit status 1: {}", "0".repeat(STDERR_KEPT)));
        let mut spec = spec;
        spec.directory = Some("/nonexistent/dir".into());
        assert!(exec_check("true", &spec, t).await.expect_err("fails").contains("does not exist"));
    }

    #[tokio::test]
    async fn exec_output_and_background_processes_do_not_hold_it_up() {
        // A flood on stderr is drained, and a background process holding the pipe open does
        // not delay the verdict past the check's own exit.
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("bg.pid");
        let command = format!("head -c 1000000 /dev/zero >&2; (sleep 30 & echo $! > {}); exit 0", pidfile.display());
        assert_eq!(exec_check(&command, &spec(), Duration::from_secs(20)).await, Ok(()));
        // The test's own leftover: the background sleep it made on purpose.
        if let Some(pid) = std::fs::read_to_string(&pidfile).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// A FIFO opened for reading, without blocking: EOF comes once every process that opened
    /// it for writing has died. (Before any writer opened it, reads also return EOF.)
    fn fifo(dir: &std::path::Path) -> (std::path::PathBuf, std::fs::File) {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join("alive");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
        let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).expect("open");
        (path, file)
    }

    /// Reads `alive` into `seen` until EOF; fails if that takes implausibly long, which means
    /// a writer is still alive.
    async fn read_to_eof(alive: &mut std::fs::File, seen: &mut Vec<u8>) {
        let give_up = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut buf = [0; 64];
            match alive.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < give_up, "a process of the check survived");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// A check that starts a background process and says so on the FIFO once it has: seeing
    /// "up" proves two processes of its group hold the FIFO open.
    fn lingering_check(fifo: &std::path::Path) -> String {
        format!("exec 3>'{}'; sleep 3600 & echo up >&3; wait", fifo.display())
    }

    #[tokio::test]
    async fn exec_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, mut alive) = fifo(dir.path());
        let result = exec_check(&lingering_check(&path), &spec(), Duration::from_secs(2)).await;
        assert_eq!(result, Err("timed out after 2s".into()));
        let mut seen = Vec::new();
        read_to_eof(&mut alive, &mut seen).await;
        assert_eq!(seen, b"up\n", "the check ran far enough to start its background process");
    }

    #[tokio::test]
    async fn a_dropped_exec_attempt_kills_its_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, mut alive) = fifo(dir.path());
        let spec = spec();
        reaper::run_for_tests();
        let check = Check::Exec(lingering_check(&path));
        let mut attempt = Box::pin(attempt(&check, &spec, Duration::from_secs(3600)));
        // Run the attempt until the check is up, then drop it, as the supervisor drops the
        // probe of a program it stops.
        let mut seen = Vec::new();
        while seen.is_empty() {
            tokio::select! {
                r = &mut attempt => panic!("the check ended: {r:?}"),
                () = tokio::time::sleep(Duration::from_millis(20)) => {
                    let mut buf = [0; 64];
                    if let Ok(n) = alive.read(&mut buf) {
                        seen.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
        drop(attempt);
        read_to_eof(&mut alive, &mut seen).await;
        assert_eq!(seen, b"up\n");
    }

    #[tokio::test]
    async fn run_until_pass_waits_for_a_server_that_comes_up_later() {
        let port = closed_port();
        let (accepted_tx, accepted) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the port again");
            let _ = accepted_tx.send(listener.accept().is_ok());
        });
        let probe = probe(Check::Tcp(format!("127.0.0.1:{port}")));
        let mut failures = Vec::new();
        let spec = spec();
        let run = run_until_pass_reporting(&probe, &spec, |r| failures.push(r.to_owned()));
        tokio::time::timeout(Duration::from_secs(60), run).await.expect("passed once the server was up");
        assert_eq!(accepted.recv(), Ok(true), "the passing attempt was a real connection");
        assert!(failures.iter().all(|f| f == "connection refused"), "{failures:?}");
        assert!(!failures.is_empty(), "attempts started before the server");
    }

    #[tokio::test]
    async fn health_loop_reports_after_retries_in_a_row_and_on_recovery() {
        let status = Arc::new(AtomicU16::new(503));
        let requests = Arc::new(AtomicUsize::new(0));
        let (addr, _r) = {
            let (status, requests) = (status.clone(), requests.clone());
            serve(move || {
                requests.fetch_add(1, Ordering::SeqCst);
                Some(format!("HTTP/1.1 {} X\r\n\r\n", status.load(Ordering::SeqCst)).into_bytes())
            })
        };
        let probe = probe(Check::Http(format!("http://{addr}/")));
        let spec = spec();
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let health = health_loop(&probe, &spec, 3, |e| {
            let _ = tx.send(e);
        });
        let script = async {
            // The loop reports synchronously after an attempt and sleeps before the next one,
            // which cannot start before this task yields: the counts below are exact.
            let first = events.recv().await;
            assert_eq!(first, Some(HealthEvent::Unhealthy { reason: "HTTP 503".into(), failures: 3 }));
            assert_eq!(requests.load(Ordering::SeqCst), 3, "reported at the third failure in a row");
            status.store(200, Ordering::SeqCst);
            assert_eq!(events.recv().await, Some(HealthEvent::Healthy));
            let at_recovery = requests.load(Ordering::SeqCst);
            status.store(500, Ordering::SeqCst);
            assert_eq!(events.recv().await, Some(HealthEvent::Unhealthy { reason: "HTTP 500".into(), failures: 3 }));
            assert_eq!(requests.load(Ordering::SeqCst), at_recovery + 3, "a pass resets the count");
        };
        tokio::select! {
            () = health => unreachable!("the health loop never returns"),
            () = script => {}
        }
    }

    #[tokio::test]
    async fn health_loop_reports_the_first_pass_only() {
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let (addr, _r) = serve(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Some(b"HTTP/1.1 200 OK\r\n\r\n".to_vec())
        });
        let probe = probe(Check::Http(format!("http://{addr}/")));
        let spec = spec();
        let mut events = Vec::new();
        let health = health_loop(&probe, &spec, 3, |e| events.push(e));
        let passes = async {
            while requests.load(Ordering::SeqCst) < 4 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            () = health => unreachable!("the health loop never returns"),
            () = passes => {}
        }
        assert_eq!(events, [HealthEvent::Healthy]);
    }

    #[tokio::test]
    async fn log_checks_are_not_attempted() {
        assert_eq!(check(Check::Log("ready".into())).await, Err("log checks are watched, not run".into()));
    }
}
