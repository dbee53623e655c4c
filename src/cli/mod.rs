//! The commands: one module per family. Each turns arguments into a request or a local
//! action and formats the answer (a table for people, `--json` for scripts).
//!
//! Exit codes, the same for every command:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the operation failed (a program failed to start, a config has errors, ...) |
//! | 2 | usage error (bad arguments) |
//! | 3 | `status`: some listed program is not RUNNING |
//! | 4 | no daemon is running (or it cannot be reached) |

pub mod completions;
pub mod config;
pub mod control;
pub mod daemon;
pub mod events;
pub mod fleet;
pub mod import;
pub mod install;
pub mod logs;
pub mod remote;
pub mod status;
pub mod top;
pub mod web;

use crate::client::{Client, ClientError};
use crate::paths::{Overrides, Paths};
use crate::remote::Host;
use std::future::Future;
use std::path::PathBuf;

/// Success.
pub const SUCCESS: u8 = 0;
/// The operation failed.
pub const FAILURE: u8 = 1;
/// Bad arguments.
pub const USAGE: u8 = 2;
/// `status`: some program is not RUNNING.
pub const NOT_RUNNING: u8 = 3;
/// No daemon to talk to.
pub const NO_DAEMON: u8 = 4;

/// Options every command accepts.
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--socket`.
    pub socket: Option<PathBuf>,
    /// `-H`: the machines to run the command on (none: this one).
    pub hosts: Vec<Host>,
    /// Fleet output (a HOST column, one JSON object per host): more than one host, or a group.
    pub fleet: bool,
}

impl Global {
    /// The paths these options select.
    pub fn paths(&self) -> Paths {
        Paths::from_env(&Overrides { config: self.config.clone(), socket: self.socket.clone() })
    }

    /// The one remote host the command runs on, if it runs on one.
    pub fn host(&self) -> Option<&Host> {
        match self.hosts.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The same options for `host` alone (one member of a fleet).
    pub fn on(&self, host: &Host) -> Global {
        Global { hosts: vec![host.clone()], fleet: false, ..self.clone() }
    }
}

/// `svc` with no command: a short overview rather than an error.
pub fn overview() -> u8 {
    println!(
        "svc {}: a per-user process supervisor\n\n\
         Common commands:\n  \
         svc up                 start the daemon in the background\n  \
         svc status             show programs and their state\n  \
         svc top                watch them live (CPU, memory, logs; keys to act)\n  \
         svc start|stop|restart NAME...\n  \
         svc logs [-f] NAME     show a program's output\n  \
         svc check              validate the config\n  \
         svc shutdown           stop everything\n\n\
         Config: {}\nRun 'svc --help' for every command.",
        env!("CARGO_PKG_VERSION"),
        Global::default().paths().config.display()
    );
    SUCCESS
}

/// Runs a future on a small single-threaded runtime: CLI commands do one conversation.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime needs no resources that can be missing")
        .block_on(f)
}

/// Whether errors are printed as JSON on stdout (the command was given `--json`).
static JSON_ERRORS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes [`report`] and [`fail`] print JSON on stdout instead of text on stderr.
pub fn json_errors(on: bool) {
    JSON_ERRORS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this command was given `--json`.
pub fn json_enabled() -> bool {
    JSON_ERRORS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints an error of this command, `{"ok": false, "error": {"code", "message", "field"}}`
/// on stdout under `--json`, else `svc: MESSAGE` on stderr; returns `code` (the exit code).
pub fn fail(kind: &str, message: &str, field: Option<&str>, code: u8) -> u8 {
    if json_enabled() {
        let error = serde_json::json!({ "code": kind, "message": message, "field": field });
        println!("{:#}", serde_json::json!({ "ok": false, "error": error }));
    } else {
        eprintln!("svc: {message}");
    }
    code
}

/// Prints a client error (see [`fail`]) and returns the matching exit code.
pub fn report(e: &ClientError) -> u8 {
    let message = e.to_string();
    match e {
        ClientError::NoDaemon { .. } => fail("no_daemon", &message, None, NO_DAEMON),
        ClientError::NotOurs { .. } => fail("not_ours", &message, None, NO_DAEMON),
        ClientError::Daemon(reply) => {
            let kind = serde_json::to_value(reply.code).ok().and_then(|v| v.as_str().map(str::to_owned));
            fail(kind.as_deref().unwrap_or("internal"), &message, reply.field.as_deref(), FAILURE)
        }
        ClientError::Protocol(_) => fail("protocol", &message, None, FAILURE),
        ClientError::Io(_) => fail("io", &message, None, FAILURE),
        ClientError::Remote { failure, .. } => fail(failure.code(), &message, None, NO_DAEMON),
    }
}

/// Connects to the daemon the options select: this machine's, or the one host's of `-H`
/// (through ssh). Every command's conversation starts here.
pub async fn try_connect(g: &Global) -> Result<Client, ClientError> {
    match g.hosts.as_slice() {
        [] => Client::connect(&g.paths()).await,
        [host] => crate::remote::connect(host),
        _ => Err(ClientError::Protocol("this command runs on one host at a time".into())),
    }
}

/// Connects (see [`try_connect`]), or prints why not.
pub async fn connect(g: &Global) -> Result<Client, u8> {
    try_connect(g).await.map_err(|e| report(&e))
}

/// Restores the default SIGPIPE action (Rust ignores it), so writing to a closed pipe ends
/// the command instead of making every print fail.
pub fn default_sigpipe() {
    // SAFETY: resetting a signal to its default action installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
