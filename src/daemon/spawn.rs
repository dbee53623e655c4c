//! Spawning one program: its own process group, working directory,
//! environment, umask, clean signal state, and stdout/stderr pipes for the log tasks.
//!
//! Deliberately not `tokio::process`: the reaper owns `waitpid(-1)`, which would steal tokio's
//! exit statuses. The `std::process::Child` is dropped without waiting (dropping never waits);
//! the exit arrives through the reaper.
//!
//! Most programs are started with `posix_spawn` (through std, which picks it when there is no
//! `pre_exec` hook): it does not copy the daemon's memory map, which made forking 1000 programs
//! 3-4x slower than the floor when other processes read `/proc` meanwhile. Programs with
//! `umask`, `limits` or `ready "fd" N` need a hook between fork and exec; for those everything
//! is built before the fork and the hook only makes async-signal-safe system calls.
//!
//! Large start batches call [`spawn_many`], which spawns on a few long-lived helper threads.
//!
//! There is no parent-death signal: after a `kill -9` of the daemon its programs keep running
//! (as under supervisord) and the next daemon stops them before starting anew (`recover.rs`).

use crate::config::{Limit, ProgramSpec, Readiness};
use std::collections::VecDeque;
use std::io::{self, PipeReader};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

/// The variable every program (and so every process it starts) inherits, naming the daemon
/// instance that started it: after a `kill -9` of the daemon, the next one finds what the old
/// one started by it, even workers that left their process group and were re-parented to init.
pub const INSTANCE_VAR: &str = "SVC_INSTANCE";

static INSTANCE: OnceLock<String> = OnceLock::new();

/// Sets the value of [`INSTANCE_VAR`] for this daemon: its state directory, which the lock
/// makes one daemon's at a time.
pub fn set_instance(value: String) {
    let _ = INSTANCE.set(value);
}

/// Where one output stream of the child goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A pipe the daemon reads.
    Pipe,
    /// /dev/null (`path "none"`).
    Discard,
}

/// A freshly spawned process.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid, which is also its process group and session id.
    pub pid: u32,
    /// Read end of its stdout pipe (which also carries stderr when redirected).
    pub stdout: Option<PipeReader>,
    /// Read end of its stderr pipe.
    pub stderr: Option<PipeReader>,
    /// Read end of its readiness pipe, with `ready "fd" N`: the program writes a newline to
    /// its descriptor N when ready (see `notify::wait_for_newline`).
    pub ready_pipe: Option<PipeReader>,
}

/// Spawns `spec`, with `NOTIFY_SOCKET` set to `notify` (the program's own socket, for
/// `ready "notify"`). Errors are the OS's (exec failure included: std reports it synchronously).
pub fn spawn(spec: &ProgramSpec, stdout: Output, stderr: Output, notify: Option<&Path>) -> io::Result<Spawned> {
    let (program, args) = spec.command.split_first().ok_or_else(|| io::Error::other("empty command"))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    // Like systemd user services, a program without `directory` starts in the home directory,
    // not wherever the daemon happened to be started from.
    match &spec.directory {
        // Checked here because a failed chdir in the child is reported like a missing program.
        Some(dir) if !dir.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("working directory {} does not exist", dir.display()),
            ));
        }
        Some(dir) => cmd.current_dir(dir),
        None => {
            let home = std::env::var_os("HOME").map(std::path::PathBuf::from).filter(|h| h.is_dir());
            cmd.current_dir(home.unwrap_or_else(|| "/".into()))
        }
    };
    // supervisord's variables, which some software checks to know it is supervised (not to
    // daemonize, say); the program's own `environment` may still override them.
    cmd.env("SUPERVISOR_ENABLED", "1")
        .env("SUPERVISOR_PROCESS_NAME", &spec.name)
        .env("SUPERVISOR_GROUP_NAME", &spec.group);
    cmd.envs(spec.environment.iter().map(|(k, v)| (k, v)));
    cmd.env("SVC_PROCESS_NAME", &spec.name).env("SVC_GROUP_NAME", &spec.group);
    if let Some(instance) = INSTANCE.get() {
        cmd.env(INSTANCE_VAR, instance);
    }
    // systemd's readiness socket and watchdog, if svc runs under systemd, are svc's own: a
    // program gets its own socket from svc, or none.
    match notify {
        Some(socket) => cmd.env(svc_platform::NOTIFY_SOCKET_ENV, socket),
        None => cmd.env_remove(svc_platform::NOTIFY_SOCKET_ENV),
    };
    match spec.watchdog {
        Some(period) => cmd.env("WATCHDOG_USEC", period.as_micros().to_string()),
        None => cmd.env_remove("WATCHDOG_USEC"),
    };
    // Never set: the pid is unknown before posix_spawn, and libsystemd takes an absent
    // WATCHDOG_PID to mean the watchdog is enabled for whoever reads WATCHDOG_USEC.
    cmd.env_remove("WATCHDOG_PID");
    cmd.stdin(Stdio::null());

    let (out_reader, out_stdio, err_for_redirect) = match stdout {
        Output::Pipe => {
            let (r, w) = io::pipe()?;
            let dup = if spec.redirect_stderr { Some(w.try_clone()?) } else { None };
            (Some(r), Stdio::from(w), dup)
        }
        Output::Discard => (None, Stdio::null(), None),
    };
    cmd.stdout(out_stdio);
    let mut err_reader = None;
    if spec.redirect_stderr {
        cmd.stderr(err_for_redirect.map_or_else(Stdio::null, Stdio::from));
    } else {
        match stderr {
            Output::Pipe => {
                let (r, w) = io::pipe()?;
                err_reader = Some(r);
                cmd.stderr(w);
            }
            Output::Discard => {
                cmd.stderr(Stdio::null());
            }
        }
    }

    let umask = spec.umask;
    let mut limits = Vec::with_capacity(spec.limits.len());
    for &(limit, value) in &spec.limits {
        let kind = rlimit_kind(limit);
        if !svc_platform::rlimit_supported(kind) {
            return Err(io::Error::other(format!("limit {limit:?} is not supported on {}", svc_platform::OS_NAME)));
        }
        limits.push((kind, value));
    }
    // The write end of the readiness pipe and the descriptor the program expects it on. It is
    // close-on-exec here (io::pipe), so no program spawned meanwhile by another thread inherits it.
    let (ready_reader, ready_writer) = match spec.ready {
        Readiness::Fd(n) => {
            let target = i32::try_from(n).ok().filter(|&n| n > 2).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("readiness descriptor {n} is not usable"))
            })?;
            let (r, w) = io::pipe()?;
            (Some(r), Some((w, target)))
        }
        _ => (None, None),
    };
    if umask.is_none() && limits.is_empty() && ready_writer.is_none() {
        // The fast path: std uses posix_spawn (vfork-like, no copy of the daemon's memory
        // map) when there is no pre_exec hook. It resets the signal mask and SIGPIPE; the
        // daemon reset every other inherited "ignore" at start-up, and handlers do not
        // survive exec. The program gets a process group of its own (a new session would
        // need the hook, and a fork).
        cmd.process_group(0);
    } else {
        // SAFETY: the closure runs in the child between fork and exec; it only calls
        // async-signal-safe functions (setsid, sigprocmask, sigaction, umask, setrlimit,
        // dup2, fcntl) and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                svc_platform::child_reset_signal_dispositions();
                for &(kind, value) in &limits {
                    svc_platform::child_set_rlimit(kind, value)?;
                }
                if let Some(mask) = umask {
                    libc::umask(mask as libc::mode_t);
                }
                // std has put stdin, stdout and stderr in place before the hook runs, so the
                // target (3 or more) cannot clobber them.
                if let Some((writer, target)) = &ready_writer {
                    let fd = writer.as_raw_fd();
                    // dup2 onto itself would leave close-on-exec set: clear it instead.
                    let rc = if fd == *target { libc::fcntl(fd, libc::F_SETFD, 0) } else { libc::dup2(fd, *target) };
                    if rc < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    let child = cmd.spawn()?;
    // `cmd` holds the write ends of the pipes (the readiness one inside the hook); drop it so
    // that EOF arrives when the child (and its children) close theirs.
    drop(cmd);
    Ok(Spawned { pid: child.id(), stdout: out_reader, stderr: err_reader, ready_pipe: ready_reader })
}

/// How many spawns run at once in [`spawn_many`] (the daemon's thread and the helpers).
/// Measured at N=1000 on 2 cores with a process-table scanner beside it: see bench/RESULTS.md.
const SPAWNERS: usize = 4;

/// One spawn for a helper thread: owned, since helpers outlive any one batch.
struct Job {
    k: usize,
    spec: ProgramSpec,
    out: Output,
    err: Output,
    notify: Option<PathBuf>,
    done: std::sync::mpsc::Sender<(usize, io::Result<Spawned>)>,
}

/// The helper threads and their queue. The threads are created at the first big batch and
/// never exit: on Linux a parent-death signal (`prctl(PR_SET_PDEATHSIG)`, set by programs
/// such as `bwrap --die-with-parent` or `setpriv --pdeathsig`) fires when the *thread* that
/// spawned the process exits, so a short-lived spawner thread would kill its children.
/// Parked on a condition variable, they cost no wake-up while the daemon idles.
struct Pool {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

impl Pool {
    fn get() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| {
            let pool = Pool { queue: Mutex::new(VecDeque::new()), ready: Condvar::new() };
            for _ in 1..SPAWNERS {
                // A thread that cannot be created (a tight RLIMIT_NPROC on a shared host)
                // only means fewer helpers: the daemon's thread takes every job left.
                let _ = std::thread::Builder::new().name("spawn".into()).stack_size(256 << 10).spawn(|| {
                    let pool = Pool::get();
                    loop {
                        let job = {
                            let mut queue = pool.queue.lock().unwrap_or_else(PoisonError::into_inner);
                            loop {
                                match queue.pop_front() {
                                    Some(job) => break job,
                                    None => queue = pool.ready.wait(queue).unwrap_or_else(PoisonError::into_inner),
                                }
                            }
                        };
                        job.run();
                    }
                });
            }
            pool
        })
    }

    fn take(&self) -> Option<Job> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
    }
}

impl Job {
    fn run(self) {
        let result = spawn(&self.spec, self.out, self.err, self.notify.as_deref());
        // The batch may be gone only if the daemon's thread panicked; nothing to tell then.
        let _ = self.done.send((self.k, result));
    }
}

/// Spawns every program in `work` (spec, stdout, stderr, notify socket: see [`spawn`]), several
/// at a time, and returns the
/// results in the same order. A child of any thread is the daemon's child, so the reaper sees
/// it like any other. Small batches (a restart, a `start` of one program) spawn inline:
/// handing them over would only add latency.
pub fn spawn_many(work: &[(&ProgramSpec, Output, Output, Option<&Path>)]) -> Vec<io::Result<Spawned>> {
    if work.len() < 2 * SPAWNERS {
        return work.iter().map(|&(spec, out, err, notify)| spawn(spec, out, err, notify)).collect();
    }
    let pool = Pool::get();
    let (done, results) = std::sync::mpsc::channel();
    {
        let mut queue = pool.queue.lock().unwrap_or_else(PoisonError::into_inner);
        for (k, &(spec, out, err, notify)) in work.iter().enumerate() {
            let notify = notify.map(Path::to_owned);
            queue.push_back(Job { k, spec: spec.clone(), out, err, notify, done: done.clone() });
        }
    }
    drop(done);
    pool.ready.notify_all();
    // The daemon's thread is one of the spawners.
    while let Some(job) = pool.take() {
        job.run();
    }
    let mut out: Vec<Option<io::Result<Spawned>>> = work.iter().map(|_| None).collect();
    for (k, result) in results {
        out[k] = Some(result);
    }
    out.into_iter().map(|r| r.unwrap_or_else(|| Err(io::Error::other("not spawned")))).collect()
}

fn rlimit_kind(limit: Limit) -> svc_platform::Rlimit {
    use svc_platform::Rlimit as R;
    match limit {
        Limit::Nofile => R::Nofile,
        Limit::Nproc => R::Nproc,
        Limit::Core => R::Core,
        Limit::As => R::As,
        Limit::Data => R::Data,
        Limit::Stack => R::Stack,
        Limit::Fsize => R::Fsize,
        Limit::Cpu => R::Cpu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Duration;

    fn sh(name: &str, script: &str) -> ProgramSpec {
        ProgramSpec::new(name, vec!["sh".into(), "-c".into(), script.into()])
    }

    /// Kills the program's whole group and reaps its leader (no reaper runs in unit tests).
    fn kill_and_reap(pid: u32) {
        // SAFETY: signalling and waiting for our own child's group.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(pid as i32, &mut status, 0);
        }
    }

    fn output_of(spawned: Spawned) -> String {
        let mut out = String::new();
        spawned.stdout.expect("stdout pipe").read_to_string(&mut out).expect("read");
        kill_and_reap(spawned.pid);
        out
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
    }

    #[test]
    fn ready_fd_gets_the_pipe_on_the_asked_descriptor() {
        for fd in [3, 9] {
            let mut spec = sh("s6", &format!("echo >&{fd}; sleep 5"));
            spec.ready = Readiness::Fd(fd);
            let spawned = spawn(&spec, Output::Discard, Output::Discard, None).expect("spawn");
            let pipe = spawned.ready_pipe.expect("ready pipe");
            let ready = runtime().block_on(async {
                tokio::time::timeout(Duration::from_secs(10), super::super::notify::wait_for_newline(pipe)).await
            });
            kill_and_reap(spawned.pid);
            assert_eq!(ready, Ok(true), "fd {fd}");
        }
    }

    #[test]
    fn ready_fd_closed_without_a_newline_is_not_ready() {
        let mut spec = sh("s6", "printf 'no newline' >&3");
        spec.ready = Readiness::Fd(3);
        let spawned = spawn(&spec, Output::Discard, Output::Discard, None).expect("spawn");
        let pipe = spawned.ready_pipe.expect("ready pipe");
        let ready = runtime().block_on(async {
            tokio::time::timeout(Duration::from_secs(10), super::super::notify::wait_for_newline(pipe)).await
        });
        kill_and_reap(spawned.pid);
        assert_eq!(ready, Ok(false));
    }

    #[test]
    fn programs_without_ready_fd_get_no_pipe() {
        let spawned = spawn(&sh("plain", "exit 0"), Output::Discard, Output::Discard, None).expect("spawn");
        assert!(spawned.ready_pipe.is_none());
        kill_and_reap(spawned.pid);
    }

    const SHOW_ENV: &str =
        r#"printf '%s|%s|%s' "${NOTIFY_SOCKET-unset}" "${WATCHDOG_USEC-unset}" "${WATCHDOG_PID-unset}""#;

    #[test]
    fn notify_socket_and_watchdog_are_set_for_the_program() {
        let mut spec = sh("web", SHOW_ENV);
        spec.watchdog = Some(Duration::from_millis(2500));
        let socket = Path::new("/run/user/1000/svc/notify/web");
        let spawned = spawn(&spec, Output::Pipe, Output::Discard, Some(socket)).expect("spawn");
        assert_eq!(output_of(spawned), "/run/user/1000/svc/notify/web|2500000|unset");

        let spawned = spawn(&sh("web", SHOW_ENV), Output::Pipe, Output::Discard, None).expect("spawn");
        assert_eq!(output_of(spawned), "unset|unset|unset");
    }

    /// A batch large enough for the helper threads: each program gets its own socket.
    #[test]
    fn spawn_many_passes_each_program_its_socket() {
        let specs: Vec<ProgramSpec> = (0..2 * SPAWNERS + 1).map(|k| sh(&format!("p{k}"), SHOW_ENV)).collect();
        let sockets: Vec<PathBuf> = (0..specs.len()).map(|k| PathBuf::from(format!("/tmp/svc-test/p{k}"))).collect();
        let work: Vec<_> = specs
            .iter()
            .zip(&sockets)
            .enumerate()
            .map(|(k, (spec, socket))| (spec, Output::Pipe, Output::Discard, (k % 2 == 0).then_some(socket.as_path())))
            .collect();
        for (k, result) in spawn_many(&work).into_iter().enumerate() {
            let want = if k % 2 == 0 { format!("/tmp/svc-test/p{k}|unset|unset") } else { "unset|unset|unset".into() };
            assert_eq!(output_of(result.expect("spawn")), want);
        }
    }
}
