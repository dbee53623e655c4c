//! Test support: an isolated real daemon per test, driven through the real `svc` binary.
//!
//! [`TestDaemon`] makes a private temporary directory, points every path svc uses inside it
//! (config, state, logs, socket), starts `svc daemon` in its own process group and waits until
//! it answers. Every process it starts carries a unique marker in its environment, so that on
//! drop the guard can shut the daemon down, kill anything left, and fail the test if any
//! program process outlived the daemon.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Generous limit for conditions: these machines are shared and noisy.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The `svc` binary under test: `SVC_TEST_BIN` when the suite runs from a copy (as another
/// user in CI), else the one cargo built.
pub fn svc_bin() -> String {
    std::env::var("SVC_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_svc").to_owned())
}

/// Polls `cond` until it holds or `PATIENCE` runs out; panics with `what` on timeout.
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait_until_for(what, PATIENCE, cond);
}

/// [`wait_until`] with its own limit, for conditions that need many cycles of real work.
pub fn wait_until_for(what: &str, patience: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("timed out after {patience:?} waiting for: {what}");
}

/// The result of one `svc` invocation.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// An isolated environment: a temp dir with every svc path inside it, no daemon yet.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    /// Unique string placed in the environment of everything started from here.
    pub marker: String,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        // Short prefix under /tmp: socket paths are limited to ~104 bytes on some OSes.
        let dir = tempfile::Builder::new().prefix("svct").tempdir_in("/tmp").expect("tempdir");
        let marker = format!("SVC_TEST_MARKER={}", dir.path().display());
        fs::create_dir(dir.path().join("home")).expect("home dir");
        Sandbox { dir, marker }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("svc.kdl")
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join("run/svc.sock")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.path().join("logs")
    }

    pub fn write_config(&self, kdl: &str) {
        fs::write(self.config_path(), kdl).expect("write config");
    }

    /// A `Command` for `svc` with this sandbox's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(svc_bin());
        cmd.args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("SVC_") || k.starts_with("XDG_") || k == "NOTIFY_SOCKET" {
                cmd.env_remove(k);
            }
        }
        let p = self.path();
        let (mk, mv) = self.marker.split_once('=').expect("marker has =");
        cmd.env("HOME", p.join("home"))
            .env("XDG_CONFIG_HOME", p.join("config"))
            .env("XDG_STATE_HOME", p.join("state"))
            .env("XDG_RUNTIME_DIR", p.join("runtime"))
            .env("SVC_CONFIG", self.config_path())
            .env("SVC_SOCKET", self.socket())
            .env("SVC_STATE_DIR", p.join("state/svc"))
            .env("SVC_LOG_DIR", self.log_dir())
            .env("SVC_LOG", "debug")
            .env(mk, mv)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `svc ARGS` to completion.
    pub fn svc(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run svc").into()
    }

    /// Pids of live processes carrying this sandbox's marker (Linux /proc; empty elsewhere).
    pub fn marked_pids(&self) -> Vec<u32> {
        let me = std::process::id();
        let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                let is_zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
                    .unwrap_or(true);
                !is_zombie && environ.split(|&b| b == 0).any(|kv| kv == self.marker.as_bytes())
            })
            .collect()
    }
}

/// A running daemon in a [`Sandbox`], shut down and checked on drop.
pub struct TestDaemon {
    pub sandbox: Sandbox,
    pub child: Option<Child>,
}

impl std::ops::Deref for TestDaemon {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

impl TestDaemon {
    /// Writes `kdl` as the config and starts a daemon on it.
    pub fn start(kdl: &str) -> TestDaemon {
        let sandbox = Sandbox::new();
        sandbox.write_config(kdl);
        TestDaemon::start_in(sandbox)
    }

    /// Starts a daemon in an existing sandbox.
    pub fn start_in(sandbox: Sandbox) -> TestDaemon {
        TestDaemon::start_with_env(sandbox, &[])
    }

    /// Starts a daemon in an existing sandbox with extra environment variables.
    pub fn start_with_env(sandbox: Sandbox, env: &[(&str, &str)]) -> TestDaemon {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.path().join("daemon.stderr"))
            .expect("stderr file");
        TestDaemon::start_with_stderr(sandbox, env, stderr.into())
    }

    /// Starts a daemon whose stderr (its own log) goes to `stderr`.
    pub fn start_with_stderr(sandbox: Sandbox, env: &[(&str, &str)], stderr: Stdio) -> TestDaemon {
        TestDaemon::start_with_output(sandbox, env, Stdio::null(), stderr)
    }

    /// Starts a daemon with its stdout and stderr where given.
    pub fn start_with_output(sandbox: Sandbox, env: &[(&str, &str)], stdout: Stdio, stderr: Stdio) -> TestDaemon {
        let mut cmd = sandbox.command(&["daemon"]);
        cmd.envs(env.iter().copied());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.stdout(stdout).stderr(stderr).spawn().expect("spawn daemon");
        let mut d = TestDaemon { sandbox, child: Some(child) };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if d.svc(&["status", "--json"]).code != 4 {
                break;
            }
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("daemon exited at start-up ({status}):\n{}", d.daemon_stderr());
            }
            assert!(Instant::now() < deadline, "daemon did not answer:\n{}", d.daemon_stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// The sandbox, for a next daemon in the same place; this one must be gone already (killed
    /// or shut down), and its drop checks for leftovers as usual.
    pub fn into_sandbox(mut self) -> Sandbox {
        let sandbox = Sandbox {
            dir: std::mem::replace(&mut self.sandbox.dir, tempfile::tempdir().expect("placeholder dir")),
            marker: std::mem::replace(&mut self.sandbox.marker, "SVC_TEST_MARKER=moved".into()),
        };
        drop(self);
        sandbox
    }

    pub fn daemon_stderr(&self) -> String {
        fs::read_to_string(self.path().join("daemon.stderr")).unwrap_or_default()
    }

    pub fn daemon_pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `svc status --json`, parsed.
    pub fn status(&self) -> Vec<serde_json::Value> {
        let run = self.svc(&["status", "--json"]);
        assert!(run.code == 0 || run.code == 3, "status failed: {run:?}");
        serde_json::from_str(&run.stdout).expect("status --json is JSON")
    }

    /// The status object of one program.
    pub fn program(&self, name: &str) -> serde_json::Value {
        self.status().into_iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no program {name} in status"))
    }

    pub fn state_of(&self, name: &str) -> String {
        self.program(name)["state"].as_str().unwrap_or_default().to_owned()
    }

    pub fn pid_of(&self, name: &str) -> Option<u32> {
        self.program(name)["pid"].as_u64().map(|p| p as u32)
    }

    pub fn wait_state(&self, name: &str, state: &str) {
        wait_until(&format!("{name} to be {state}"), || self.state_of(name) == state);
    }

    /// Waits for the daemon process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Bounded: a daemon that cannot answer must not hang the whole suite.
            if let Ok(mut shutdown) =
                self.sandbox.command(&["shutdown"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn()
            {
                let deadline = Instant::now() + PATIENCE;
                while Instant::now() < deadline && shutdown.try_wait().ok().flatten().is_none() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = shutdown.kill();
                let _ = shutdown.wait();
            }
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY-free fallback: kill the daemon's whole process group if it hung.
            if child.try_wait().ok().flatten().is_none() {
                let _ = Command::new("kill").args(["-KILL", &format!("-{}", child.id())]).status();
                let _ = child.wait();
            }
        }
        // Programs live in their own sessions; anything still carrying our marker leaked.
        let deadline = Instant::now() + Duration::from_secs(5);
        let leaked = loop {
            let leaked = self.sandbox.marked_pids();
            if leaked.is_empty() || Instant::now() > deadline {
                break leaked;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for pid in &leaked {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        if std::thread::panicking() {
            eprintln!("--- daemon stderr ---\n{}", self.daemon_stderr());
        } else {
            assert!(leaked.is_empty(), "processes outlived the daemon: {leaked:?}\n{}", self.daemon_stderr());
        }
    }
}

/// The lines a follower prints, each awaited at most [`PATIENCE`]: a follower that stops
/// printing fails the test instead of hanging it.
pub fn timed_lines(out: std::process::ChildStdout) -> impl Iterator<Item = String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(out)) {
            if tx.send(line.expect("utf8")).is_err() {
                return;
            }
        }
    });
    std::iter::from_fn(move || match rx.recv_timeout(PATIENCE) {
        Ok(line) => Some(line),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
        Err(e) => panic!("no line from the follower within {PATIENCE:?}: {e}"),
    })
}
