//! Hooks: a program's `on-exit`, `on-fatal` and `on-unhealthy` commands.
//!
//! A hook runs as `sh -c COMMAND` in a process group of its own, with the event in `SVC_*`
//! variables, its stdin on /dev/null and its output logged line by line into the daemon's log.
//! It is a task beside the supervisor, which only starts it: a hook that hangs holds up
//! nothing. After its time limit the whole group is SIGKILLed, and when its leader exits, what
//! it left behind in its group is killed too, so a hook never leaves processes around. Its exit
//! comes from the reaper's waiter registry, since the reaper owns `waitpid(-1)`.
//!
//! A crash loop must not become a fork bomb: at most [`MAX_RUNNING`] hooks of one program run
//! at once, further ones are skipped and counted, and the next hook that runs is told how many
//! (`SVC_SKIPPED`) and the count is logged.

use super::process::{Exit, describe_exit};
use super::reaper;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// Hooks of one program that may run at the same time.
pub const MAX_RUNNING: usize = 3;

/// Lines of a hook's output written to the daemon's log per run; the rest are counted.
const MAX_LINES: usize = 100;

/// Bytes of one output line kept for the log.
const MAX_LINE: usize = 1000;

/// How long a SIGKILLed hook may take to be reaped before the daemon stops waiting for it.
const KILLED_GRACE: Duration = Duration::from_secs(5);

/// The hooks of one program in flight, shared with their tasks. Kept across reloads with the
/// program's slot; a program that a reload replaces starts afresh.
#[derive(Debug, Default)]
pub struct Slots {
    running: AtomicUsize,
    skipped: AtomicU64,
}

/// One hook run: which, for whom, and the event it reports.
#[derive(Debug)]
pub struct Run {
    /// The setting, for the log (`on-exit`).
    pub hook: &'static str,
    /// The process name, for the log.
    pub program: String,
    /// `sh -c` this.
    pub command: String,
    /// `SVC_*` variables describing the event.
    pub env: Vec<(String, String)>,
    /// Time limit.
    pub timeout: Duration,
}

/// Starts `run` unless [`MAX_RUNNING`] hooks of its program are running already (then it is
/// counted as skipped). Must be called on the daemon's runtime.
pub fn start(slots: &Arc<Slots>, mut run: Run) {
    if slots.running.load(Ordering::Relaxed) >= MAX_RUNNING {
        let n = slots.skipped.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 {
            tracing::warn!(
                "{}: {} not run: {MAX_RUNNING} hooks of it are running already (further ones are counted)",
                run.program,
                run.hook
            );
        }
        return;
    }
    let skipped = slots.skipped.swap(0, Ordering::Relaxed);
    if skipped > 0 {
        tracing::warn!("{}: {skipped} hook runs were skipped while {MAX_RUNNING} were running", run.program);
    }
    run.env.push(("SVC_SKIPPED".into(), skipped.to_string()));
    slots.running.fetch_add(1, Ordering::Relaxed);
    let slots = slots.clone();
    tokio::spawn(async move {
        supervise(&run).await;
        slots.running.fetch_sub(1, Ordering::Relaxed);
    });
}

/// A hook's process group: SIGKILLed when the run is dropped (the daemon exiting) before the
/// leader's exit came.
struct Group {
    pgid: u32,
    exit: tokio::sync::oneshot::Receiver<Exit>,
    reaped: bool,
}

impl Group {
    fn kill(&self) {
        // Before the leader is reaped its pid, and so the group id, cannot have been reused;
        // right after, the group is what the leader left behind (kill-as-group's reasoning).
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.pgid as i32), nix::sys::signal::SIGKILL);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
        }
    }
}

async fn supervise(run: &Run) {
    let who = format!("{}: {}", run.program, run.hook);
    let (reader, writer) = match io::pipe() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{who}: cannot make a pipe: {e}");
            return;
        }
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&run.command).envs(run.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
    match writer.try_clone() {
        Ok(w) => cmd.stdout(w).stderr(writer),
        Err(e) => {
            tracing::error!("{who}: cannot make a pipe: {e}");
            return;
        }
    };
    // A group of its own, so that the time limit and the clean-up reach what it started. No
    // pre_exec hook: std then uses posix_spawn.
    cmd.process_group(0);
    let (child, exit) = match reaper::spawn_expecting_exit(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{who}: cannot run sh: {e}");
            return;
        }
    };
    // Our copies of the write ends: EOF must come when the hook's processes close theirs.
    drop(cmd);
    let mut group = Group { pgid: child.id(), exit, reaped: false };
    tracing::info!("{who}: running (pid {})", group.pgid);
    // Dropping a std Child neither waits nor kills; the reaper collects the exit.
    drop(child);
    let mut output = Output::new(reader);
    let deadline = tokio::time::sleep(run.timeout);
    tokio::pin!(deadline);
    let outcome = loop {
        tokio::select! {
            biased;
            exit = &mut group.exit => {
                group.reaped = true;
                break exit.ok().map(describe_exit);
            }
            line = output.next(), if output.open() => output.log(&who, line),
            () = &mut deadline => {
                group.kill();
                let reaped = tokio::time::timeout(KILLED_GRACE, &mut group.exit).await.is_ok();
                group.reaped = reaped;
                tracing::warn!(
                    "{who}: killed after its time limit of {} (hook-timeout)",
                    humantime::format_duration(run.timeout)
                );
                output.drain(&who);
                return;
            }
        }
    };
    // What it left running in its group would outlive it unsupervised.
    group.kill();
    output.drain(&who);
    match outcome.as_deref() {
        Some("exit status 0") => tracing::info!("{who}: done"),
        Some(what) => tracing::warn!("{who}: failed: {what}"),
        None => tracing::warn!("{who}: its exit was lost"),
    }
}

/// A hook's output, as lines for the log.
struct Output {
    lines: Option<tokio::io::Lines<tokio::io::BufReader<tokio::net::unix::pipe::Receiver>>>,
    logged: usize,
    dropped: usize,
}

impl Output {
    fn new(reader: io::PipeReader) -> Output {
        let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader)).ok();
        Output { lines: pipe.map(|p| tokio::io::BufReader::new(p).lines()), logged: 0, dropped: 0 }
    }

    fn open(&self) -> bool {
        self.lines.is_some()
    }

    async fn next(&mut self) -> Option<String> {
        // Not UTF-8 or a read error: what is left is not worth a log line.
        self.lines.as_mut()?.next_line().await.ok().flatten()
    }

    fn log(&mut self, who: &str, line: Option<String>) {
        let Some(mut line) = line else {
            self.lines = None;
            return;
        };
        if self.logged >= MAX_LINES {
            self.dropped += 1;
            return;
        }
        self.logged += 1;
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str("...");
        }
        tracing::info!("{who}: {line}");
    }

    /// Logs what is still in the pipe without waiting: a process the group kill could not
    /// reach (it left the group) may hold the pipe open for ever.
    fn drain(&mut self, who: &str) {
        if let Some(lines) = self.lines.take() {
            let reader = lines.into_inner();
            let mut rest = reader.buffer().to_vec();
            let pipe = reader.into_inner();
            let mut buf = [0; 4096];
            while rest.len() < MAX_LINES * MAX_LINE {
                match pipe.try_read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => rest.extend_from_slice(&buf[..n]),
                }
            }
            for line in String::from_utf8_lossy(&rest).lines() {
                self.log(who, Some(line.to_owned()));
            }
        }
        if self.dropped > 0 {
            tracing::info!("{who}: {} more lines of output not logged", self.dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command: &str, timeout: Duration) -> Run {
        Run {
            hook: "on-exit",
            program: "p".into(),
            command: command.into(),
            env: vec![("SVC_PROGRAM".into(), "p".into())],
            timeout,
        }
    }

    // Running hooks needs the reaper, whose test instance reaps every child of the test
    // binary (other tests wait for their own): tests/events.rs runs them in a real daemon.

    #[test]
    fn a_crash_loop_is_skipped_past_the_limit_and_counted() {
        let slots = Arc::new(Slots::default());
        slots.running.store(MAX_RUNNING, Ordering::Relaxed);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            for _ in 0..5 {
                start(&slots, run("true", Duration::from_secs(1)));
            }
        });
        assert_eq!(slots.skipped.load(Ordering::Relaxed), 5);
        assert_eq!(slots.running.load(Ordering::Relaxed), MAX_RUNNING, "nothing was started");
    }
}
