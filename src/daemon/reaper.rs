//! The one place that calls `waitpid`: SIGCHLD -> `waitpid(-1, WNOHANG)` until nothing is left.
//!
//! svc is a subreaper where the OS allows it, so orphaned grandchildren become its children
//! and must be reaped too; only a `waitpid(-1)` loop does that. SIGCHLDs coalesce, hence the
//! loop until `StillAlive`/`ECHILD` on every wake-up. Exits are sent to the supervisor, which
//! ignores pids it does not know (reaped orphans).
//!
//! Helpers that run short-lived children of their own (exec probes) cannot wait for them, since
//! that would race this loop; they register the pid with [`expect_exit`] instead, and the exit
//! goes to them rather than to the supervisor, which never learns of those processes.

use super::process::Exit;
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use tokio::signal::unix::Signal;
use tokio::sync::{mpsc, oneshot};

/// Children whose exit goes to a waiter rather than to the supervisor, by pid.
static WAITERS: Mutex<BTreeMap<u32, oneshot::Sender<Exit>>> = Mutex::new(BTreeMap::new());

fn waiters() -> MutexGuard<'static, BTreeMap<u32, oneshot::Sender<Exit>>> {
    // The map stays consistent across a panic (one insert or remove), so poison is harmless.
    WAITERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends the exit of `pid` to the returned receiver instead of the supervisor.
///
/// Call it right after the spawn returned, with no `.await` in between. That is enough in the
/// daemon: it runs on one thread, so the reaper task cannot reap the child before the
/// registration (a child that already exited stays a zombie until reaped). From another thread
/// (tests), use [`spawn_expecting_exit`], which closes that window with the registry's lock.
///
/// If the receiver is dropped, the exit is discarded; it still never reaches the supervisor.
/// (The daemon's exec checks use [`spawn_expecting_exit`]; this is the primitive under it.)
#[cfg(test)]
pub fn expect_exit(pid: u32) -> oneshot::Receiver<Exit> {
    let (tx, rx) = oneshot::channel();
    waiters().insert(pid, tx);
    rx
}

/// Spawns `cmd` and registers its pid as [`expect_exit`] does, holding the registry's lock
/// across both so that a reaper on another thread, having reaped the child, finds the
/// registration however soon the child exits.
pub fn spawn_expecting_exit(
    cmd: &mut std::process::Command,
) -> std::io::Result<(std::process::Child, oneshot::Receiver<Exit>)> {
    let mut waiters = waiters();
    let child = cmd.spawn()?;
    let (tx, rx) = oneshot::channel();
    waiters.insert(child.id(), tx);
    Ok((child, rx))
}

/// Hands `reaped` to its waiter, if it has one; false when it is for the supervisor.
fn claim(reaped: Reaped) -> bool {
    let Some(tx) = waiters().remove(&reaped.pid) else {
        return false;
    };
    let _ = tx.send(reaped.exit);
    true
}

/// A reaped process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// Its pid.
    pub pid: u32,
    /// How it ended.
    pub exit: Exit,
}

/// A reaper for tests of code whose children it must collect (exec probes), on a thread of
/// its own, once per test binary. Unlike the daemon's it waits for registered pids only: a
/// `waitpid(-1)` would steal the children other tests in the same binary wait for. It also
/// looks every 20 ms, since a child may exit before its registration, with no later SIGCHLD.
#[cfg(test)]
pub fn run_for_tests() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let (started, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let mut sigchld =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).expect("SIGCHLD");
                let _ = started.send(());
                loop {
                    let pids: Vec<u32> = waiters().keys().copied().collect();
                    for pid in pids {
                        let exit = match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::Exited(_, code)) => Exit::Code(code),
                            Ok(WaitStatus::Signaled(_, sig, _)) => Exit::Signal(sig as i32),
                            _ => continue,
                        };
                        claim(Reaped { pid, exit });
                    }
                    tokio::select! {
                        _ = sigchld.recv() => {}
                        () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                    }
                }
            });
        });
        wait.recv().expect("the reaper started");
    });
}

/// Reaps every exited child now, returning them in the order the kernel gave them.
pub fn reap_all() -> Vec<Reaped> {
    let mut out = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out.push(Reaped { pid: pid.as_raw() as u32, exit: Exit::Code(code) }),
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                out.push(Reaped { pid: pid.as_raw() as u32, exit: Exit::Signal(sig as i32) })
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return out,
            Err(Errno::EINTR) => continue,
            // Stopped/continued are not reported without WUNTRACED/WCONTINUED.
            Ok(_) => continue,
            Err(e) => {
                tracing::error!("waitpid failed: {e}");
                return out;
            }
        }
    }
}

/// Runs until the supervisor goes away: on each SIGCHLD, reaps and forwards exits.
///
/// `sigchld` must have been registered before the first spawn, or an early exit's signal
/// could be missed (the loop below also runs once at start for the same reason).
pub async fn run(mut sigchld: Signal, tx: mpsc::UnboundedSender<Reaped>) {
    loop {
        for reaped in reap_all() {
            if claim(reaped) {
                continue;
            }
            if tx.send(reaped).is_err() {
                return;
            }
        }
        if sigchld.recv().await.is_none() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_exits_go_to_their_waiter_and_others_to_the_supervisor() {
        // Pids beyond any pid_max: no real process is involved.
        let exit = Exit::Code(7);
        assert!(!claim(Reaped { pid: u32::MAX - 1, exit }));
        let mut rx = expect_exit(u32::MAX - 1);
        assert!(claim(Reaped { pid: u32::MAX - 1, exit }));
        assert_eq!(rx.try_recv(), Ok(exit));
        assert!(!claim(Reaped { pid: u32::MAX - 1, exit }), "a waiter gets one exit");
        drop(expect_exit(u32::MAX - 2));
        assert!(claim(Reaped { pid: u32::MAX - 2, exit }), "still not the supervisor's when nobody listens");
    }

    #[tokio::test]
    async fn a_spawned_childs_exit_reaches_its_waiter() {
        run_for_tests();
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "exit 7"]);
        let (_child, rx) = spawn_expecting_exit(&mut cmd).expect("spawn");
        assert_eq!(rx.await, Ok(Exit::Code(7)));
    }
}
