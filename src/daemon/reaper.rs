//! The one place that calls `waitpid`: SIGCHLD -> `waitpid(-1, WNOHANG)` until nothing is left.
//!
//! svc is a subreaper where the OS allows it, so orphaned grandchildren become its children
//! and must be reaped too; only a `waitpid(-1)` loop does that. SIGCHLDs coalesce, hence the
//! loop until `StillAlive`/`ECHILD` on every wake-up. Exits are sent to the supervisor, which
//! ignores pids it does not know (reaped orphans).

use super::process::Exit;
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::signal::unix::Signal;
use tokio::sync::mpsc;

/// A reaped process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// Its pid.
    pub pid: u32,
    /// How it ended.
    pub exit: Exit,
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
            if tx.send(reaped).is_err() {
                return;
            }
        }
        if sigchld.recv().await.is_none() {
            return;
        }
    }
}
