//! Faults provoked for real: a killed daemon, escaping grandchildren, unwritable logs, hostile
//! clients, other users, and load. docs/reliability.md summarises what these establish.

use crate::support::{Sandbox, TestDaemon, wait_until, wait_until_for};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ")
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn daemon_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn kill_9_of_the_daemon_leaves_no_duplicates() {
    // The programs ignore SIGTERM, so the parent-death signal does not stop them: only the
    // next daemon's recovery can.
    let config = r#"
        program "a" { command "sh" "-c" "trap '' TERM; exec sleep 1001"; start-secs 0; stop-wait-secs 1 }
        program "b" { command "sh" "-c" "trap '' TERM; exec sleep 1002"; start-secs 0; stop-wait-secs 1 }
        program "c" { command "sh" "-c" "trap '' TERM; exec sleep 1003"; start-secs 0; stop-wait-secs 1 }
        program "d" { command "sh" "-c" "(trap '' TERM; exec sleep 1004) & exec sleep 1005"; start-secs 0; stop-wait-secs 1 }
    "#;
    let mut first = TestDaemon::start(config);
    for n in ["a", "b", "c", "d"] {
        first.wait_state(n, "RUNNING");
    }
    let mut old: Vec<u32> = ["a", "b", "c"].iter().map(|n| first.pid_of(n).expect("pid")).collect();
    // d's worker ignores SIGTERM but its leader does not: recovery must not stop at the leader.
    let daemon = first.daemon_pid();
    let worker = || first.marked_pids().into_iter().find(|&p| p != daemon && cmdline(p).trim() == "sleep 1004");
    wait_until("d's worker", || worker().is_some());
    old.push(worker().expect("worker"));
    let mut child = first.child.take().expect("daemon");
    child.kill().expect("SIGKILL the daemon");
    child.wait().expect("reap daemon");
    std::thread::sleep(Duration::from_millis(200));
    assert!(old.iter().all(|p| std::path::Path::new(&format!("/proc/{p}")).exists()), "programs outlived the daemon");

    // Same sandbox, new daemon: the stale socket and lock are recovered automatically.
    let sandbox = Sandbox {
        dir: std::mem::replace(&mut first.sandbox.dir, tempfile::tempdir().expect("dummy")),
        marker: std::mem::replace(&mut first.sandbox.marker, "SVC_TEST_MARKER=moved".into()),
    };
    drop(first);
    let second = TestDaemon::start_in(sandbox);
    for n in ["a", "b", "c", "d"] {
        second.wait_state(n, "RUNNING");
    }
    let daemon = second.daemon_pid();
    for (n, arg) in [("a", "sleep 1001"), ("b", "sleep 1002"), ("c", "sleep 1003"), ("d", "sleep 1004")] {
        let instances = || -> Vec<u32> {
            second.marked_pids().into_iter().filter(|&p| p != daemon && cmdline(p).trim() == arg).collect()
        };
        // RUNNING (start-secs 0) may come before the shell has exec'd its sleep.
        wait_until(&format!("{n}: an instance"), || !instances().is_empty());
        let instances = instances();
        assert_eq!(instances.len(), 1, "{n}: exactly one instance, got {instances:?}");
        assert!(!old.contains(&instances[0]), "{n}: the old instance was stopped");
    }
    assert!(second.daemon_stderr().contains("survived the previous daemon"), "{}", second.daemon_stderr());
}

#[test]
fn records_from_before_a_reboot_are_ignored() {
    // A process that happens to have a recorded pid and start tick, but in another boot: it
    // must not be taken for a leftover (start ticks count from boot, so this can happen).
    let mut bystander = std::process::Command::new("sleep").arg("1031").spawn().expect("sleep");
    let pid = bystander.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let start_time: u64 =
        stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(19)?.parse().ok()).expect("start time");
    let s = Sandbox::new();
    s.write_config(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    let state = s.path().join("state/svc");
    std::fs::create_dir_all(&state).expect("state dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let record = format!(r#"[{{"name":"p","pid":{pid},"start_time":{start_time},"boot":"an-earlier-boot"}}]"#);
    std::fs::write(state.join("programs.json"), record).expect("record");
    let d = TestDaemon::start_in(s);
    d.wait_state("p", "RUNNING");
    let survived = bystander.try_wait().expect("try_wait").is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert!(survived, "a process of this boot was stopped for a record of an earlier one");
    assert!(d.daemon_stderr().contains("recorded before a reboot"), "{}", d.daemon_stderr());
}

#[test]
fn double_forked_and_setsid_descendants_are_stopped() {
    let d = TestDaemon::start(
        r#"
        program "forker" { command "sh" "-c" "(sleep 1011 &); exec sleep 1012"; start-secs 0 }
        program "setsid" { command "sh" "-c" "setsid sleep 1013 & exec sleep 1014"; start-secs 0 }
        "#,
    );
    d.wait_state("forker", "RUNNING");
    d.wait_state("setsid", "RUNNING");
    let daemon = d.daemon_pid();
    let ours = || d.marked_pids().into_iter().filter(|&p| p != daemon).map(cmdline).collect::<Vec<_>>();
    wait_until("all four sleeps", || ours().iter().filter(|c| c.starts_with("sleep 101")).count() == 4);
    // The setsid worker really left the program's process group.
    let run = d.svc(&["stop", "all"]);
    assert_eq!(run.code, 0, "{run:?}");
    wait_until("no process of theirs remains", || ours().is_empty());
}

#[test]
fn setsid_worker_dies_with_a_program_that_crashes() {
    // The worker leaves the program's process group and session, its parent dies, and svc
    // adopts it: only its inherited SVC_PROCESS_NAME says where it came from.
    let d = TestDaemon::start(
        r#"
        program "crasher" { command "sh" "-c" "setsid sleep 1021 & sleep 0.5; exit 1"; start-secs 0; autorestart #false }
        program "bystander" { command "sh" "-c" "setsid sleep 1022 & exec sleep 1023"; start-secs 0 }
        "#,
    );
    let daemon = d.daemon_pid();
    let running = |arg: &str| d.marked_pids().into_iter().any(|p| p != daemon && cmdline(p).trim() == arg);
    wait_until("crasher exited", || d.state_of("crasher") == "EXITED");
    wait_until("the crasher's worker is gone", || !running("sleep 1021"));
    // Another program's escaped worker is not touched.
    assert!(running("sleep 1022") && running("sleep 1023"), "the bystander's processes survive");
}

/// `n` programs `q0000`.. running `sleep 2000`, not started by the daemon itself.
fn many_manual(n: usize) -> String {
    (0..n)
        .map(|i| format!("program \"q{i:04}\" {{ command \"sleep\" \"2000\"; start-secs 0; autostart #false }}\n"))
        .collect()
}

#[test]
fn shutdown_during_a_big_start_stops_everything_in_order() {
    let mut d = TestDaemon::start(&many_manual(600));
    let starter = d.command(&["start", "all"]).stdout(std::process::Stdio::null()).spawn().expect("start all");
    // Whether the shutdown lands early or late in the start, every program started must get
    // its stop signal in the stop phases, not a SIGKILL as a leftover at the very end.
    wait_until("the start is under way", || d.status().iter().any(|p| p["state"] == "RUNNING"));
    let run = d.svc(&["shutdown"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.wait_exit(), Some(0));
    let mut starter = starter;
    let _ = starter.wait();
    let log = d.daemon_stderr();
    assert!(!log.contains("killing leftover process"), "programs started after the shutdown began: {log}");
    assert!(d.marked_pids().is_empty(), "left behind: {:?}", d.marked_pids());
}

#[test]
fn reload_during_a_big_start_never_runs_removed_programs() {
    let d = TestDaemon::start(&many_manual(600));
    let starter = d.command(&["start", "all"]).stdout(std::process::Stdio::null()).spawn().expect("start all");
    wait_until("the start is under way", || d.status().iter().any(|p| p["state"] == "RUNNING"));
    d.write_config(&many_manual(500));
    let run = d.svc(&["reload"]);
    assert!(run.code == 0 || run.code == 1, "{run:?}");
    let mut starter = starter;
    let _ = starter.wait();
    let daemon = d.daemon_pid();
    let sleeps = || d.marked_pids().into_iter().filter(|&p| p != daemon && cmdline(p).trim() == "sleep 2000").count();
    let running = || d.status().iter().filter(|p| p["state"] == "RUNNING").count();
    assert_eq!(d.status().len(), 500);
    // Every sleep that runs is one `svc status` shows: none of a removed program's.
    wait_until("processes match the status", || sleeps() == running());
    assert_eq!(d.svc(&["stop", "all"]).code, 0);
    wait_until("nothing runs after stop all", || sleeps() == 0);
}

#[test]
fn children_start_clean() {
    let s = Sandbox::new();
    s.write_config(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    // A real systemd-style readiness socket: the daemon must report READY=1 to it and must
    // not pass NOTIFY_SOCKET on to programs.
    let notify_path = s.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("bind notify");
    notify.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let d = TestDaemon::start_with_env(s, &[("NOTIFY_SOCKET", notify_path.to_str().expect("utf8"))]);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("readiness datagram");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    d.wait_state("p", "RUNNING");
    let pid = d.pid_of("p").expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let mask = |field: &str| {
        let line = status.lines().find(|l| l.starts_with(field)).expect("field");
        u64::from_str_radix(line[field.len()..].trim(), 16).expect("hex mask")
    };
    assert_eq!(mask("SigBlk:"), 0, "empty signal mask");
    // glibc's posix_spawn sets its two reserved signals (32 and 33, below SIGRTMIN, which no
    // glibc program can use) to "ignore" in every child of a process that has handlers for
    // them; every other signal must be at its default.
    let glibc_reserved = (1u64 << 31) | (1u64 << 32);
    assert_eq!(mask("SigIgn:") & !glibc_reserved, 0, "no signal ignored");
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .map(|e| e.expect("fd").file_name().to_string_lossy().into_owned())
        .collect();
    let mut fds = fds;
    fds.sort();
    assert_eq!(fds, vec!["0", "1", "2"], "no daemon descriptor leaks into programs");
    let env = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).expect("environ")).into_owned();
    assert!(!env.contains("NOTIFY_SOCKET"), "{env}");
}

#[test]
fn unwritable_log_is_reported_and_the_program_keeps_running() {
    let d = TestDaemon::start(
        r#"program "p" {
            command "sh" "-c" "while true; do echo line; sleep 0.05; done"
            stdout-log { path "/dev/full"; }
            start-secs 0
        }"#,
    );
    wait_until("write error in status", || {
        d.program("p")["reason"].as_str().is_some_and(|r| r.contains("/dev/full") && r.contains("space"))
    });
    assert_eq!(d.state_of("p"), "RUNNING");
    assert!(d.svc(&["status", "p"]).stdout.contains("/dev/full"));
    assert!(d.daemon_stderr().contains("cannot write /dev/full"), "{}", d.daemon_stderr());
}

#[test]
fn hostile_clients_do_not_hurt_the_daemon() {
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    // A client that connects and says nothing must not block anyone.
    let _silent = UnixStream::connect(d.socket()).expect("connect");
    // One that disconnects in the middle of a request.
    let mut partial = UnixStream::connect(d.socket()).expect("connect");
    partial.write_all(br#"{"protocol":1,"type":"sta"#).expect("write");
    drop(partial);
    // A 10 MB line without a newline.
    let mut big = UnixStream::connect(d.socket()).expect("connect");
    let writer = {
        let mut big = big.try_clone().expect("clone");
        std::thread::spawn(move || {
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..10 {
                if big.write_all(&chunk).is_err() {
                    break;
                }
            }
        })
    };
    let mut reply = String::new();
    BufReader::new(&mut big).read_line(&mut reply).expect("reply to the long line");
    assert!(reply.contains("too_long"), "{reply}");
    let _ = writer.join();

    let rss_before = daemon_rss_kib(d.daemon_pid());
    for i in 0..1000 {
        let mut c = UnixStream::connect(d.socket()).expect("connect");
        c.write_all(format!("garbage {i}\n").as_bytes()).expect("write");
        let mut line = String::new();
        BufReader::new(&mut c).read_line(&mut line).expect("read");
        assert!(line.contains("bad_request"), "{line}");
    }
    let rss_after = daemon_rss_kib(d.daemon_pid());
    assert!(rss_after < rss_before + 16 * 1024, "memory grew from {rss_before} KiB to {rss_after} KiB");
    assert_eq!(d.svc(&["status", "p"]).code, 0, "still serving");
}

/// Runs `f` as the unprivileged user `nobody` (only possible as root).
fn as_nobody(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    cmd.uid(65534).gid(65534)
}

#[test]
fn another_user_is_refused_even_with_loose_permissions() {
    if !is_root() {
        eprintln!("skipped: needs root to act as a second user (CI runs it as root)");
        return;
    }
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    // Someone loosened every mode on the way to the socket.
    use std::os::unix::fs::PermissionsExt;
    for p in [d.path().to_path_buf(), d.path().join("run"), d.socket()] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let script = format!(
        "import socket; s=socket.socket(socket.AF_UNIX); s.connect({:?})\n\
         try: s.sendall(b'{{\"protocol\":1,\"type\":\"stop\",\"targets\":[\"all\"]}}\\n')\n\
         except OSError: pass\n\
         print(s.recv(4096).decode())",
        d.socket().display().to_string()
    );
    let out = as_nobody(std::process::Command::new("python3").args(["-c", &script])).output().expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("permission_denied") && text.contains("may not use it"), "{text} {:?}", out);
    assert_eq!(d.state_of("p"), "RUNNING", "the other user stopped nothing");
    assert!(d.daemon_stderr().contains("refused a connection from uid 65534"));
}

#[test]
fn client_refuses_a_daemon_of_another_user() {
    if !is_root() {
        eprintln!("skipped: needs root to act as a second user (CI runs it as root)");
        return;
    }
    let s = Sandbox::new();
    use std::os::unix::fs::PermissionsExt;
    let dir = s.path().join("fake");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let sock = dir.join("svc.sock");
    let script = format!(
        "import socket,time; s=socket.socket(socket.AF_UNIX); s.bind({:?}); s.listen(1); \
         print('up', flush=True); c,_=s.accept(); time.sleep(5)",
        sock.display().to_string()
    );
    let mut fake = as_nobody(std::process::Command::new("python3").args(["-c", &script]))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("fake daemon");
    let mut up = [0u8; 2];
    fake.stdout.as_mut().expect("stdout").read_exact(&mut up).expect("fake up");
    // The fake is found the way a real daemon is found from another environment: through
    // daemon.json (no explicit --socket, so no other user's daemon may answer).
    let state = s.path().join("state/svc");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(
        state.join("daemon.json"),
        format!(r#"{{"pid":1,"socket":{:?},"started":0}}"#, sock.display().to_string()),
    )
    .expect("daemon.json");
    let run = s.command(&["status"]).env_remove("SVC_SOCKET").output().expect("svc");
    let _ = fake.kill();
    let _ = fake.wait();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_ne!(run.status.code(), Some(0));
    assert!(stderr.contains("belongs to uid 65534"), "{stderr}");
}

#[test]
fn a_thousand_programs_and_a_hundred_concurrent_clients() {
    // The daemon holds two pipe ends per program and raises its soft limit to the hard one.
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 && limit.rlim_max < 4096 {
        eprintln!("skipped: the hard open-file limit ({}) is below the 4096 this test needs", limit.rlim_max);
        return;
    }
    let mut config = String::new();
    for i in 0..1000 {
        config.push_str(&format!("program \"p{i}\" {{ command \"sleep\" \"100000\"; start-secs 0 }}\n"));
    }
    let d = TestDaemon::start(&config);
    wait_until("all 1000 RUNNING", || d.svc(&["status"]).code == 0);
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let mut cmd = d.command(&["status", "--json"]);
            std::thread::spawn(move || cmd.output().expect("status"))
        })
        .collect();
    for h in handles {
        let out = h.join().expect("client thread");
        assert_eq!(out.status.code(), Some(0));
        let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v.len(), 1000);
    }
    let run = d.svc(&["stop", "all"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1000);
}

#[test]
fn status_answers_while_a_program_floods_its_log() {
    let d = TestDaemon::start(
        r#"program "flood" {
            command "sh" "-c" "yes 0123456789abcdefghijklmnopqrstuvwxyz"
            stdout-log { max-bytes "20MB"; backups 2; }
            start-secs 0
        }"#,
    );
    d.wait_state("flood", "RUNNING");
    for _ in 0..20 {
        assert_eq!(d.svc(&["status", "flood"]).code, 0);
    }
    let log = d.log_dir().join("flood.out.log");
    assert!(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) > 0);
    assert_eq!(d.svc(&["stop", "flood"]).code, 0);
}

#[test]
fn crash_loop_is_bounded_in_memory_and_disk() {
    let d = TestDaemon::start(
        r#"program "crashy" {
            command "sh" "-c" "echo 'starting and about to fail with a long line of text'; exit 1"
            start-secs 0
            autorestart #true
            backoff { initial "10ms"; max "40ms"; }
            stdout-log { max-bytes "4KB"; backups 2; }
        }"#,
    );
    let restarts = || d.program("crashy")["restarts"].as_u64().unwrap_or(0);
    wait_until("many restarts", || restarts() >= 30);
    let rss1 = daemon_rss_kib(d.daemon_pid());
    // 120 crash cycles: a few seconds here, far more on a slow, busy machine.
    wait_until_for("many more restarts", std::time::Duration::from_secs(180), || restarts() >= 150);
    let rss2 = daemon_rss_kib(d.daemon_pid());
    assert!(rss2 < rss1 + 4 * 1024, "daemon memory grew from {rss1} to {rss2} KiB");
    let files: Vec<_> = std::fs::read_dir(d.log_dir())
        .expect("logs")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("crashy.out.log"))
        .collect();
    assert!(files.len() <= 3, "{} log files", files.len());
    for f in files {
        assert!(f.metadata().expect("meta").len() <= 4096 + 100);
    }
    // The restart delay really is in effect: it waits in BACKOFF between crashes.
    wait_until("seen in BACKOFF", || d.state_of("crashy") == "BACKOFF");
}

/// The group `svcshare` (created if needed) and a sandbox its members can traverse; `None`
/// (with a note) when not root, since creating a group and acting as its member needs root.
fn shared_sandbox() -> Option<(u32, Sandbox)> {
    if !is_root() {
        eprintln!("skipped: needs root to create a group and act as its member (CI runs it as root)");
        return None;
    }
    let status = std::process::Command::new("groupadd").args(["-f", "svcshare"]).status().expect("groupadd");
    assert!(status.success());
    let gid = nix::unistd::Group::from_name("svcshare").expect("lookup").expect("group").gid.as_raw();
    let s = Sandbox::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    Some((gid, s))
}

#[test]
fn access_group_members_may_read_but_not_control() {
    let Some((gid, s)) = shared_sandbox() else { return };
    use std::os::unix::fs::MetadataExt;
    s.write_config(
        r#"access { group "svcshare" read-only=#true; }
        program "p" { command "sh" "-c" "echo hello; exec sleep 1000"; start-secs 0 }"#,
    );
    let d = TestDaemon::start_in(s);
    d.wait_state("p", "RUNNING");
    let dir = std::fs::metadata(d.path().join("run")).expect("socket dir");
    assert_eq!((dir.mode() & 0o777, dir.gid()), (0o750, gid));
    // Log files are created at the first write.
    wait_until("log written", || {
        std::fs::read_to_string(d.log_dir().join("p.out.log")).unwrap_or_default() == "hello\n"
    });
    let log = std::fs::metadata(d.log_dir().join("p.out.log")).expect("log");
    // Group-owned by the access group, or its members could not read it after all.
    assert_eq!((log.mode() & 0o777, log.gid()), (0o640, gid));

    let ask = |gid: u32, line: &str| -> String {
        use std::os::unix::process::CommandExt;
        let script = format!(
            "import socket; s=socket.socket(socket.AF_UNIX); s.connect({:?}); s.sendall({:?}.encode() + b'\\n'); print(s.recv(65536).decode())",
            d.socket().display().to_string(),
            line
        );
        let out =
            std::process::Command::new("python3").args(["-c", &script]).uid(65534).gid(gid).output().expect("python3");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let member_status = ask(gid, r#"{"protocol":1,"type":"status"}"#);
    assert!(member_status.contains(r#""type":"status""#), "{member_status}");
    let member_stop = ask(gid, r#"{"protocol":1,"type":"stop","targets":["p"]}"#);
    assert!(member_stop.contains("permission_denied") && member_stop.contains("read-only"), "{member_stop}");
    assert_eq!(d.state_of("p"), "RUNNING");
    // Not a member: cannot even reach the socket (directory mode), and would be refused anyway.
    let outsider = ask(65534, r#"{"protocol":1,"type":"status"}"#);
    assert!(!outsider.contains(r#""type":"status""#), "{outsider}");
}

#[test]
fn reload_grants_and_revokes_access() {
    let Some((gid, s)) = shared_sandbox() else { return };
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    let program = r#"program "p" { command "sh" "-c" "echo hello; exec sleep 1000"; start-secs 0 }"#;
    s.write_config(program);
    let d = TestDaemon::start_in(s);
    d.wait_state("p", "RUNNING");
    let log = d.log_dir().join("p.out.log");
    wait_until("log written", || std::fs::read_to_string(&log).unwrap_or_default() == "hello\n");
    let modes = || {
        let m = |p: &std::path::Path| std::fs::metadata(p).map(|m| (m.mode() & 0o777, m.gid())).expect("metadata");
        (m(&d.path().join("run")), m(&d.socket()), m(&d.log_dir()), m(&log))
    };
    assert_eq!((modes().0.0, modes().1.0, modes().2.0, modes().3.0), (0o700, 0o600, 0o700, 0o600));

    // A member keeps one connection open: a request line on stdin, its reply (or "closed") on stdout.
    let member = || {
        let script = format!(
            "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect({:?})\nexcept OSError as e:\n    print('refused', e, flush=True); sys.exit()\nfor line in sys.stdin:\n    try:\n        s.sendall(line.encode())\n        r = s.recv(65536)\n    except OSError:\n        r = b''\n    print(r.decode().strip() or 'closed', flush=True)\n",
            d.socket().display().to_string()
        );
        std::process::Command::new("python3")
            .args(["-c", &script])
            .uid(65534)
            .gid(gid)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3")
    };
    let ask = |child: &mut std::process::Child, line: &str| -> String {
        let stdin = child.stdin.as_mut().expect("stdin");
        let _ = writeln!(stdin, "{line}");
        let _ = stdin.flush();
        let mut reply = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut reply).expect("reply");
        reply
    };
    const STATUS: &str = r#"{"protocol":1,"type":"status"}"#;
    let mut outsider = member();
    let reply = ask(&mut outsider, STATUS);
    assert!(!reply.contains(r#""type":"status""#), "no access yet: {reply}");
    let _ = outsider.kill();
    let _ = outsider.wait();

    // Grant.
    d.write_config(&format!("access {{ group \"svcshare\" read-only=#true; }}\n{program}"));
    let run = d.svc(&["reload", "--dry-run"]);
    assert!(run.stdout.contains("would change access: owner only -> group svcshare (read-only)"), "{run:?}");
    assert_eq!(modes().0.0, 0o700, "a dry run changes nothing");
    let run = d.svc(&["reload"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("access: owner only -> group svcshare (read-only)"), "{run:?}");
    assert_eq!(modes(), ((0o750, gid), (0o660, gid), (0o750, gid), (0o640, gid)));
    assert_eq!(d.pid_of("p").map(|_| d.state_of("p")), Some("RUNNING".to_string()), "programs untouched");
    let mut reader = member();
    let reply = ask(&mut reader, STATUS);
    assert!(reply.contains(r#""type":"status""#), "{reply}");
    let reply = ask(&mut reader, r#"{"protocol":1,"type":"stop","targets":["p"]}"#);
    assert!(reply.contains("permission_denied"), "{reply}");

    // Revoke: the open connection is closed, the files are private again.
    d.write_config(program);
    let run = d.svc(&["reload", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(json["plan"]["access"], serde_json::json!({"from": "group svcshare (read-only)", "to": null}));
    assert_eq!(modes().0.0, 0o700);
    assert_eq!((modes().1.0, modes().2.0, modes().3.0), (0o600, 0o700, 0o600));
    let reply = ask(&mut reader, STATUS);
    assert_eq!(reply.trim(), "closed");
    let _ = reader.kill();
    let _ = reader.wait();
    assert_eq!(d.state_of("p"), "RUNNING");
}

#[test]
fn signals_ignored_by_the_daemons_parent_do_not_reach_programs() {
    // `nohup svc daemon` or a careless init ignores SIGHUP/SIGTERM; programs must not inherit
    // that (supervisord passes inherited ignores on).
    let s = Sandbox::new();
    s.write_config(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    let mut cmd = s.command(&["daemon"]);
    // SAFETY: signal() with SIG_IGN in the child before exec runs no code.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGUSR2, libc::SIG_IGN);
            libc::signal(libc::SIGQUIT, libc::SIG_IGN);
            Ok(())
        });
    }
    let stderr = std::fs::File::create(s.path().join("daemon.stderr")).expect("stderr");
    let daemon = cmd.stderr(stderr).spawn().expect("daemon");
    let d = TestDaemon { sandbox: s, child: Some(daemon) };
    wait_until("p running", || d.svc(&["status", "p"]).code == 0);
    let pid = d.pid_of("p").expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find(|l| l.starts_with("SigIgn:")).expect("SigIgn");
    let ignored = u64::from_str_radix(line["SigIgn:".len()..].trim(), 16).expect("hex");
    let bit = |sig: i32| 1u64 << (sig - 1);
    assert_eq!(ignored & (bit(libc::SIGUSR2) | bit(libc::SIGQUIT)), 0, "{line}");
}
