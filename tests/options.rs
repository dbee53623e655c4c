//! Program options observed on real processes: numprocs, groups, priority, env-file,
//! expansion, umask, limits, signal, pid, avail, clear, rotation.

use crate::support::{Sandbox, TestDaemon, wait_until};
use std::fs;

fn env_of(pid: u32) -> String {
    String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/environ")).unwrap_or_default()).replace('\0', "\n")
}

#[test]
fn numprocs_instances_are_individually_controllable() {
    let d = TestDaemon::start(
        r#"program "worker" {
            command "sleep 1000"
            numprocs 3
            numprocs-start 1
            process-name "{program}_{num:02}"
            start-secs 0
        }"#,
    );
    for n in ["worker_01", "worker_02", "worker_03"] {
        d.wait_state(n, "RUNNING");
    }
    let run = d.svc(&["stop", "worker_02"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.state_of("worker_01"), "RUNNING");
    assert_eq!(d.state_of("worker_02"), "STOPPED");
    let run = d.svc(&["stop", "worker:*"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(d.status().iter().all(|p| p["state"] == "STOPPED"));
    let run = d.svc(&["start", "worker:*"]);
    assert_eq!(run.stdout.lines().count(), 3, "{run:?}");
    let pid = d.pid_of("worker_03").expect("pid");
    assert!(env_of(pid).contains("SVC_PROCESS_NAME=worker_03"));
}

#[test]
fn group_targets_and_priority_order() {
    let d = TestDaemon::start(
        r#"
        group "web" { programs "front" "api"; }
        program "front" { command "sleep 1000"; priority 20; start-secs 0; autostart #false }
        program "api"   { command "sleep 1000"; priority 10; start-secs 0; autostart #false }
        program "other" { command "sleep 1000"; start-secs 0; autostart #false }
        "#,
    );
    let run = d.svc(&["start", "web:*"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.state_of("other"), "STOPPED");
    assert_eq!(d.program("api")["group"], "web");
    // The daemon's own log says in which order it spawned them (the programs themselves
    // could not: two processes spawned a moment apart race to write anything).
    let log = d.daemon_stderr();
    let at = |name: &str| {
        log.find(&format!("{name}: STOPPED -> ")).unwrap_or_else(|| panic!("{name} never left STOPPED: {log}"))
    };
    assert!(at("api") < at("front"), "lower priority first: {log}");
    let run = d.svc(&["status", "web:*"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 3, "header + 2: {run:?}");
    // A group named without `:*` means its members too.
    let run = d.svc(&["status", "web"]);
    assert_eq!(run.stdout.lines().count(), 3, "header + 2: {run:?}");
}

#[test]
fn many_programs_spawned_together_keep_their_own_pids_logs_and_priority_order() {
    // 12 + 12 programs: enough for the supervisor to spawn each priority level on several
    // threads at once (spawn::spawn_many).
    let mut kdl = String::new();
    for (prefix, priority) in [("a", 10), ("b", 20)] {
        for n in 0..12 {
            kdl.push_str(&format!(
                "program \"{prefix}{n:02}\" {{ command \"sh\" \"-c\" \"echo $$SVC_PROCESS_NAME; exec sleep 1000\"; priority {priority}; start-secs 0 }}\n"
            ));
        }
    }
    let d = TestDaemon::start(&kdl);
    wait_until("all running", || d.status().iter().all(|p| p["state"] == "RUNNING"));
    let mut pids = std::collections::HashMap::new();
    for p in d.status() {
        let name = p["name"].as_str().expect("name").to_string();
        let pid = p["pid"].as_u64().expect("pid") as u32;
        // The pid svc reports is the process it spawned for that program...
        assert!(env_of(pid).contains(&format!("SVC_PROCESS_NAME={name}\n")), "{name}: pid {pid} is another program's");
        // ...and the log it captured is that program's own output.
        let log = d.log_dir().join(format!("{name}.out.log"));
        wait_until("output", || fs::read_to_string(&log).unwrap_or_default() == format!("{name}\n"));
        pids.insert(name, pid);
    }
    // Every program of priority 10 was spawned before any of priority 20: pids grow, unless
    // the kernel wrapped around its pid range in between (then nothing can be concluded).
    let first: Vec<u32> = pids.iter().filter(|(n, _)| n.starts_with('a')).map(|(_, &p)| p).collect();
    let second: Vec<u32> = pids.iter().filter(|(n, _)| n.starts_with('b')).map(|(_, &p)| p).collect();
    let (lo, hi) = (pids.values().min().copied().unwrap_or(0), pids.values().max().copied().unwrap_or(0));
    let pid_max: u32 =
        fs::read_to_string("/proc/sys/kernel/pid_max").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(32768);
    if hi - lo < pid_max / 2 {
        assert!(first.iter().max() < second.iter().min(), "priority 10 first: {pids:?}");
    }
}

#[test]
fn env_file_environment_and_expansion() {
    let s = Sandbox::new();
    fs::write(s.path().join("app.env"), "# settings\nFROM_FILE=file\nexport OVERRIDDEN=from-file\nQUOTED=\"a b\"\n")
        .expect("env file");
    s.write_config(
        r#"program "p" {
            command "sleep 1000"
            env-file "app.env"
            environment { OVERRIDDEN "from-config"; HOME_COPY "$HOME"; NAME "{program}"; HERE "{here}" }
            start-secs 0
        }"#,
    );
    let d = TestDaemon::start_in(s);
    d.wait_state("p", "RUNNING");
    let env = env_of(d.pid_of("p").expect("pid"));
    assert!(env.contains("FROM_FILE=file\n"), "{env}");
    assert!(env.contains("OVERRIDDEN=from-config\n"), "{env}");
    assert!(env.contains("QUOTED=a b\n"), "{env}");
    assert!(env.contains(&format!("HOME_COPY={}\n", d.path().join("home").display())), "{env}");
    assert!(env.contains("NAME=p\n"), "{env}");
    assert!(env.contains(&format!("HERE={}\n", d.path().display())), "{env}");
    assert!(!env.contains("NOTIFY_SOCKET"), "{env}");
}

#[test]
fn umask_limits_and_default_directory() {
    let d = TestDaemon::start(
        r#"program "p" {
            command "sh" "-c" "umask; ulimit -n; pwd; exec sleep 1000"
            umask "027"
            limits { nofile 321; }
            start-secs 0
        }"#,
    );
    wait_until("output", || d.svc(&["logs", "p"]).stdout.lines().count() == 3);
    let out = d.svc(&["logs", "p"]).stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0027");
    assert_eq!(lines[1], "321");
    assert_eq!(lines[2], d.path().join("home").display().to_string(), "default directory is $HOME");
}

#[test]
fn signal_pid_avail_and_clear() {
    let d = TestDaemon::start(
        r#"
        program "p" { command "sh" "-c" "trap 'echo got USR1' USR1; echo ready; while true; do sleep 0.05; done"; start-secs 0 }
        program "idle" { command "sleep 1000"; autostart #false }
        "#,
    );
    wait_until("ready", || d.svc(&["logs", "p"]).stdout.contains("ready"));
    let run = d.svc(&["signal", "USR1", "p"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("sent SIGUSR1"), "{run:?}");
    wait_until("USR1 handled", || d.svc(&["logs", "p"]).stdout.contains("got USR1"));
    let run = d.svc(&["signal", "USR1", "idle"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(d.svc(&["signal", "NOPE", "p"]).stderr.contains("unknown signal"));

    assert_eq!(d.svc(&["pid"]).stdout.trim(), d.daemon_pid().to_string());
    assert_eq!(d.svc(&["pid", "p"]).stdout.trim(), d.pid_of("p").expect("pid").to_string());
    assert_eq!(d.svc(&["pid", "idle"]).stdout.trim(), "0");

    let run = d.svc(&["avail"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.lines().any(|l| l.starts_with("idle") && l.contains("in use") && l.contains("manual")),
        "{run:?}"
    );

    let run = d.svc(&["clear", "p"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!d.svc(&["logs", "p"]).stdout.contains("ready"));
    assert_eq!(d.svc(&["logs", "--clear", "p"]).code, 0);
}

#[test]
fn rotation_through_the_daemon_loses_no_line() {
    let d = TestDaemon::start(
        r#"program "flood" {
            command "seq" "1" "100000"
            stdout-log { max-bytes "64KB"; backups 100; }
            start-secs 0
            autorestart #false
        }"#,
    );
    wait_until("flood exited", || d.state_of("flood") == "EXITED");
    let base = d.log_dir().join("flood.out.log");
    let expected_len: usize = (1..=100000).map(|i: u32| i.to_string().len() + 1).sum();
    let read_all = || {
        let mut text = String::new();
        for n in (1..=100).rev() {
            text.push_str(&fs::read_to_string(format!("{}.{n}", base.display())).unwrap_or_default());
        }
        text + &fs::read_to_string(&base).unwrap_or_default()
    };
    wait_until("every byte written", || read_all().len() == expected_len);
    let mut seen = vec![0u8; 100001];
    for line in read_all().lines() {
        let n: usize = line.parse().expect("whole numbered line");
        seen[n] += 1;
    }
    assert!(seen[1..].iter().all(|&c| c == 1), "every number exactly once");
    assert!(fs::metadata(format!("{}.5", base.display())).is_ok(), "it did rotate");
}
