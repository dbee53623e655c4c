//! Faults that used to break the daemon (issue 10): a full disk, crash recovery with setsid
//! workers, running out of descriptors. Each provokes the fault for real.

use crate::support::{Sandbox, TestDaemon, wait_until, wait_until_for};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Seconds of CPU (user + system) a process has used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').collect()).unwrap_or_default();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    ticks as f64 / 100.0
}

fn alive(d: &mut TestDaemon) -> bool {
    d.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
}

#[test]
fn the_daemon_survives_when_its_own_log_and_a_program_log_cannot_be_written() {
    let sandbox = Sandbox::new();
    sandbox.write_config(
        r#"program "calm" { command "sleep" "100000"; start-secs 0 }
        program "flood" {
            command "sh" "-c" "while :; do echo 0123456789abcdef; done"
            stdout-log { path "/dev/full"; }
            start-secs 0
        }"#,
    );
    // The daemon's own log is /dev/full too: every line it writes fails with ENOSPC.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let mut d = TestDaemon::start_with_stderr(sandbox, &[], full.into());
    d.wait_state("calm", "RUNNING");
    let calm = d.pid_of("calm");
    wait_until("bytes dropped", || d.program("flood")["log_dropped_bytes"].as_u64().unwrap_or(0) > 100_000);
    let before = d.program("flood")["log_dropped_bytes"].as_u64().unwrap_or(0);
    // Start and stop a program meanwhile: each transition is a log line that cannot be written.
    for _ in 0..3 {
        assert_eq!(d.svc(&["restart", "calm"]).code, 0);
    }
    assert!(alive(&mut d), "the daemon died of a failed write");
    let flood = d.program("flood");
    assert_eq!(flood["state"], "RUNNING");
    assert!(flood["reason"].as_str().is_some_and(|r| r.contains("No space left")), "{flood}");
    assert!(flood["log_dropped_bytes"].as_u64().unwrap_or(0) > before, "dropping goes on and is counted");
    assert_ne!(d.pid_of("calm"), calm, "restarted");
    let human = d.svc(&["status", "flood"]).stdout;
    assert!(human.contains("bytes dropped"), "{human}");
    // An orderly shutdown still works, exit code 0 (the drop guard checks nothing is left).
    assert_eq!(d.svc(&["shutdown"]).code, 0);
    assert_eq!(d.wait_exit(), Some(0));
}

/// A tmpfs of `size` mounted at `dir`, unmounted on drop (root only).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: std::path::PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount");
        assert!(ok.success(), "mount tmpfs");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_survived_and_logging_resumes_when_space_comes_back() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let sandbox = Sandbox::new();
    let fs = Tmpfs::mount(sandbox.path().join("small"), "2m");
    // The daemon's log on the same small disk, as `svc up` puts it in the state dir.
    let state = fs.0.join("state");
    std::fs::create_dir_all(&state).expect("state");
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    let stderr = std::fs::File::create(fs.0.join("daemon.log")).expect("daemon log");
    // 3 MB of lines (more than the disk holds), then one short line every 100 ms.
    sandbox.write_config(&format!(
        r#"program "calm" {{ command "sleep" "100000"; start-secs 0 }}
        program "flood" {{
            command "sh" "-c" "head -c 3000000 /dev/zero | tr '\\0' x | fold -w 99; while :; do echo tick; sleep 0.1; done"
            stdout-log {{ path "{}/flood.log"; max-bytes "10MB"; backups 2 }}
            start-secs 0
        }}"#,
        fs.0.display()
    ));
    let state_dir = state.display().to_string();
    let mut d = TestDaemon::start_with_stderr(sandbox, &[("SVC_STATE_DIR", &state_dir)], stderr.into());
    d.wait_state("calm", "RUNNING");
    let calm = d.pid_of("calm");
    wait_until("the disk to be full", || {
        d.program("flood")["reason"].as_str().is_some_and(|r| r.contains("No space left"))
    });
    // Some seconds of a full disk: measure the daemon's CPU and the growth of its log.
    let cpu0 = cpu_seconds(d.daemon_pid());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let cpu = (cpu_seconds(d.daemon_pid()) - cpu0) / t0.elapsed().as_secs_f64();
    eprintln!("daemon CPU while the disk is full: {:.1} %", cpu * 100.0);
    assert!(alive(&mut d), "the daemon died on a full disk");
    assert_eq!(d.pid_of("calm"), calm, "the other program was not disturbed");
    assert_eq!(d.state_of("flood"), "RUNNING");
    assert!(d.program("flood")["log_dropped_bytes"].as_u64().unwrap_or(0) > 0);
    // Space comes back: the flood's log is removed (the daemon holds it open only while
    // writing works, so the space is really freed).
    std::fs::remove_file(fs.0.join("flood.log")).expect("free space");
    wait_until("the flood's log to be written again", || {
        std::fs::read_to_string(fs.0.join("flood.log")).is_ok_and(|t| t.contains("tick\n"))
    });
    wait_until("status to clear the error", || d.program("flood")["reason"].is_null());
    let dropped = d.program("flood")["log_dropped_bytes"].as_u64().unwrap_or(0);
    assert!(dropped > 500_000, "the overflow was counted: {dropped}");
    // The daemon's own log (also on that disk) resumes too, and says what happened once.
    wait_until_for("the daemon log to resume", Duration::from_secs(30), || {
        std::fs::read_to_string(fs.0.join("daemon.log")).is_ok_and(|t| t.contains("writable again"))
    });
    let log = std::fs::read_to_string(fs.0.join("daemon.log")).expect("daemon log");
    let failures = log.lines().filter(|l| l.contains("WARN cannot write") && l.contains("flood.log")).count();
    eprintln!("daemon log: {} lines, {} bytes; {failures} about the flood", log.lines().count(), log.len());
    assert!(failures <= 1, "one message when writing starts failing:\n{log}");
    assert!(log.lines().count() < 50, "no log storm:\n{log}");
    assert_eq!(d.svc(&["shutdown"]).code, 0);
    assert_eq!(d.wait_exit(), Some(0));
    drop(d);
    drop(fs);
}

#[test]
fn a_full_disk_at_start_up_does_not_stop_the_daemon() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let sandbox = Sandbox::new();
    let fs = Tmpfs::mount(sandbox.path().join("small"), "64k");
    let state = fs.0.join("state");
    std::fs::create_dir_all(&state).expect("state");
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    // Fill the disk completely before the daemon starts.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("head -c 1000000 /dev/zero > {}/filler", fs.0.display()))
        .stderr(Stdio::null())
        .status();
    sandbox.write_config(r#"program "calm" { command "sleep" "100000"; start-secs 0 }"#);
    let state_dir = state.display().to_string();
    let d = TestDaemon::start_with_env(sandbox, &[("SVC_STATE_DIR", &state_dir)]);
    d.wait_state("calm", "RUNNING");
    assert!(d.daemon_stderr().contains("daemon.json"), "says it could not write its record:\n{}", d.daemon_stderr());
    drop(d);
    drop(fs);
}

#[test]
fn the_daemon_keeps_no_inherited_descriptor() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    // A pipe whose write end the daemon inherits as fd 10 (no close-on-exec), as from a
    // careless parent: the read end sees EOF only once every copy of the write end is closed.
    // Close-on-exec in this process, so that other tests' children never get it.
    let (r, w) = std::io::pipe().expect("pipe");
    let sandbox = Sandbox::new();
    sandbox.write_config(r#"program "p" { command "sleep" "100000"; start-secs 0 }"#);
    let mut cmd = sandbox.command(&["daemon"]);
    let wfd = w.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; the copy it makes does not have close-on-exec.
    unsafe {
        cmd.pre_exec(move || if libc::dup2(wfd, 10) < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
    }
    cmd.process_group(0).stdout(Stdio::null()).stderr(Stdio::null());
    let d = TestDaemon { child: Some(cmd.spawn().expect("daemon")), sandbox };
    wait_until("the daemon to answer", || d.svc(&["status"]).code != 4);
    d.wait_state("p", "RUNNING");
    drop(w);
    let mut reader = r;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1];
        let _ = tx.send(reader.read(&mut buf).map_err(|e| e.to_string()));
    });
    let got = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(got, Ok(Ok(0)), "the daemon (or its program) still holds the inherited pipe");
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .trim_end_matches('\0')
        .replace('\0', " ")
}

/// `kill -9` of the daemon, then a new daemon in the same sandbox (as `svc up` would start).
fn crash_and_restart(mut d: TestDaemon) -> TestDaemon {
    let mut child = d.child.take().expect("daemon");
    child.kill().expect("SIGKILL the daemon");
    child.wait().expect("reap the daemon");
    let sandbox = d.into_sandbox();
    TestDaemon::start_in(sandbox)
}

#[test]
fn repeated_kill_9_never_duplicates_setsid_workers() {
    let n = 50;
    let config: String = (0..n)
        .map(|i| {
            format!(
                r#"program "w{i}" {{ command "sh" "-c" "(setsid sleep 300000 &) ; exec sleep 300001"; start-secs 0; stop-wait-secs 2 }}
"#
            )
        })
        .collect();
    let mut d = TestDaemon::start(&config);
    let count = |d: &TestDaemon, arg: &str| {
        let daemon = d.daemon_pid();
        d.marked_pids().into_iter().filter(|&p| p != daemon && cmdline(p) == arg).count()
    };
    for round in 0..5 {
        wait_until(&format!("round {round}: {n} workers and {n} leaders"), || {
            count(&d, "sleep 300000") >= n && count(&d, "sleep 300001") >= n
        });
        // Settled: recovery finished before the first start, so nothing old can still be exiting.
        std::thread::sleep(Duration::from_millis(300));
        let (workers, leaders) = (count(&d, "sleep 300000"), count(&d, "sleep 300001"));
        eprintln!("round {round}: {workers} workers, {leaders} leaders for {n} programs");
        assert_eq!((workers, leaders), (n, n), "round {round}: survivors of an earlier daemon");
        if round > 0 {
            assert!(d.daemon_stderr().contains("under the previous daemon) survived"), "{}", d.daemon_stderr());
        }
        d = crash_and_restart(d);
    }
}

#[test]
fn recovery_works_without_the_crash_record() {
    // The record could not be written (no descriptors, a full disk): the marker alone finds
    // the old programs and their escaped workers.
    let mut d = TestDaemon::start(
        r#"program "p" { command "sh" "-c" "(setsid sleep 300010 &) ; exec sleep 300011"; start-secs 0 }"#,
    );
    let count = |d: &TestDaemon, arg: &str| {
        let daemon = d.daemon_pid();
        d.marked_pids().into_iter().filter(|&p| p != daemon && cmdline(p) == arg).count()
    };
    wait_until("worker", || count(&d, "sleep 300010") == 1 && count(&d, "sleep 300011") == 1);
    let mut child = d.child.take().expect("daemon");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let _ = std::fs::remove_file(d.path().join("state/svc/programs.json"));
    d.child = None;
    let sandbox = d.into_sandbox();
    let d = TestDaemon::start_in(sandbox);
    wait_until("new instances", || count(&d, "sleep 300010") >= 1 && count(&d, "sleep 300011") >= 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((count(&d, "sleep 300010"), count(&d, "sleep 300011")), (1, 1));
}

/// Starts a daemon in `sandbox` with the open-file limit (soft and hard) set to `limit`.
fn start_with_nofile(sandbox: Sandbox, limit: libc::rlim_t) -> TestDaemon {
    use std::os::unix::process::CommandExt;
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(sandbox.path().join("daemon.stderr"))
        .expect("stderr file");
    let mut cmd = sandbox.command(&["daemon"]);
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, limit, limit)
                .map_err(std::io::Error::from)
        });
    }
    cmd.process_group(0).stdout(Stdio::null()).stderr(stderr);
    let d = TestDaemon { child: Some(cmd.spawn().expect("daemon")), sandbox };
    wait_until("the daemon to answer", || d.svc(&["status"]).code != 4);
    d
}

#[test]
fn a_tight_descriptor_limit_refuses_programs_clearly_and_recovery_still_works() {
    let n = 300;
    let config: String = (0..n)
        .map(|i| format!("program \"p{i:03}\" {{ command \"sleep\" \"300020\"; start-secs 0; start-retries 0 }}\n"))
        .collect();
    let sandbox = Sandbox::new();
    sandbox.write_config(&config);
    let d = start_with_nofile(sandbox, 256);
    let settled = |d: &TestDaemon| {
        let s = d.status();
        s.len() == n && s.iter().all(|p| p["state"] == "RUNNING" || p["state"] == "FATAL")
    };
    wait_until("every program RUNNING or FATAL", || settled(&d));
    let status = d.status();
    let running = status.iter().filter(|p| p["state"] == "RUNNING").count();
    let refused: Vec<&serde_json::Value> = status.iter().filter(|p| p["state"] == "FATAL").collect();
    eprintln!("limit 256: {running} running, {} refused", refused.len());
    assert!(running >= 50, "as many as the limit allows run: {running}");
    assert!(!refused.is_empty());
    for p in &refused {
        assert!(p["reason"].as_str().is_some_and(|r| r.contains("too few file descriptors")), "{p}");
    }
    // The crash record was written despite the limit.
    let record = std::fs::read_to_string(d.path().join("state/svc/programs.json")).expect("crash record");
    let recorded: Vec<serde_json::Value> = serde_json::from_str(&record).expect("record is JSON");
    assert_eq!(recorded.len(), running, "every running program is in the record");
    // The daemon still answers clients and controls programs.
    assert_eq!(d.svc(&["restart", "p000"]).code, 0);

    // kill -9, then a new daemon under the same limit: no duplicates.
    let mut d = d;
    let mut child = d.child.take().expect("daemon");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let sandbox = d.into_sandbox();
    let d = start_with_nofile(sandbox, 256);
    wait_until("settled again", || settled(&d));
    std::thread::sleep(Duration::from_millis(300));
    let running = d.status().iter().filter(|p| p["state"] == "RUNNING").count();
    let daemon = d.daemon_pid();
    let sleeps = d.marked_pids().into_iter().filter(|&p| p != daemon && cmdline(p) == "sleep 300020").count();
    eprintln!("after kill -9 and a new daemon: {sleeps} processes for {running} running programs");
    assert_eq!(sleeps, running, "exactly one process per running program");
}

#[test]
fn a_request_naming_thousands_of_unknown_targets_gets_a_bounded_answer() {
    let d = TestDaemon::start(r#"program "web" { command "sleep" "100000"; autostart #false }"#);
    let names: Vec<String> = (0..5000).map(|i| format!("n{i:04}")).collect();
    let mut args = vec!["status"];
    args.extend(names.iter().map(String::as_str));
    let run = d.svc(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("and 4992 more"), "{}", run.stderr);
    assert!(run.stderr.len() < 1000, "the error lists a few, not all: {} bytes", run.stderr.len());
    // A long unknown name is quoted back shortened, with its length.
    let long = "w".repeat(30_000);
    let run = d.svc(&["status", &long]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("... (30000 characters)") && run.stderr.len() < 400, "{}", run.stderr);
}

#[test]
fn access_group_members_can_read_log_files_in_the_default_layout() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    if !is_root() {
        eprintln!("skipped: needs root to create a group and act as its member (CI runs it as root)");
        return;
    }
    assert!(Command::new("groupadd").args(["-f", "svcshare"]).status().expect("groupadd").success());
    let gid = nix::unistd::Group::from_name("svcshare").expect("lookup").expect("group").gid.as_raw();
    let s = Sandbox::new();
    std::fs::set_permissions(s.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    s.write_config(
        r#"access { group "svcshare" read-only=#true; }
        program "p" { command "sh" "-c" "echo hello; exec sleep 1000"; start-secs 0 }"#,
    );
    // The log directory inside the state directory, as by default.
    let state = s.path().join("state/svc");
    let logs = state.join("logs").display().to_string();
    let d = TestDaemon::start_with_env(s, &[("SVC_LOG_DIR", &logs)]);
    d.wait_state("p", "RUNNING");
    let log = state.join("logs/p.out.log");
    wait_until("log written", || std::fs::read_to_string(&log).is_ok_and(|t| t == "hello\n"));
    let meta = std::fs::metadata(&state).expect("state dir");
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o710, gid), "the group may pass through, not list");
    let as_member = |cmd: &str| {
        let out = Command::new("sh").args(["-c", cmd]).uid(65534).gid(gid).output().expect("sh");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert_eq!(as_member(&format!("cat {}", log.display())), (true, "hello\n".into()), "a member reads the log");
    assert!(!as_member(&format!("ls {}", state.display())).0, "but cannot list the state dir");
    assert!(!as_member(&format!("cat {}/programs.json", state.display())).0, "nor read the crash record");
    // Without `access`, the next daemon takes the sharing back instead of refusing to start.
    let d = {
        let mut d = d;
        assert_eq!(d.svc(&["shutdown"]).code, 0);
        d.wait_exit();
        let sandbox = d.into_sandbox();
        sandbox.write_config(r#"program "p" { command "sleep" "1000"; start-secs 0 }"#);
        TestDaemon::start_with_env(sandbox, &[("SVC_LOG_DIR", &logs)])
    };
    d.wait_state("p", "RUNNING");
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").mode() & 0o777;
    assert_eq!((mode(&state), mode(&state.join("logs"))), (0o700, 0o700));
}
