//! start / stop / restart / status through the real CLI.

use crate::support::{TestDaemon, wait_until};

const TWO: &str = r#"
program "web" {
    command "sh -c 'echo web up; exec sleep 1000'"
    start-secs 0
}
program "worker" {
    command "sleep" "1000"
    start-secs 1
    autostart #false
}
"#;

#[test]
fn autostart_and_status_json_shape() {
    let d = TestDaemon::start(TWO);
    d.wait_state("web", "RUNNING");
    let web = d.program("web");
    for key in ["name", "group", "state", "pid", "since", "exit_status", "restarts"] {
        assert!(web.get(key).is_some(), "missing {key} in {web}");
    }
    assert_eq!(web["group"], "web");
    assert!(web["pid"].as_u64().is_some());
    assert!(web["since"].as_f64().is_some_and(|s| s > 1.6e9));
    assert_eq!(web["exit_status"], serde_json::Value::Null);
    let worker = d.program("worker");
    assert_eq!(worker["state"], "STOPPED");
    assert_eq!(worker["pid"], serde_json::Value::Null);
}

#[test]
fn status_table_and_exit_code() {
    let d = TestDaemon::start(TWO);
    d.wait_state("web", "RUNNING");
    let run = d.svc(&["status"]);
    assert_eq!(run.code, 3, "worker is stopped, so not all RUNNING: {run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{}", run.stdout);
    assert!(lines.iter().any(|l| l.starts_with("web") && l.contains("RUNNING")), "{}", run.stdout);
    assert!(lines.iter().any(|l| l.starts_with("worker") && l.contains("STOPPED")), "{}", run.stdout);
    let run = d.svc(&["status", "web"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 2);
}

#[test]
fn start_waits_for_running_and_stop_for_stopped() {
    let d = TestDaemon::start(TWO);
    let run = d.svc(&["start", "worker"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim(), "worker: started");
    // start waited for start-secs: the program is RUNNING the moment the command returns.
    assert_eq!(d.state_of("worker"), "RUNNING");
    let pid = d.pid_of("worker").expect("pid");

    let run = d.svc(&["start", "worker"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("already running"), "{run:?}");

    let run = d.svc(&["stop", "worker"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim(), "worker: stopped");
    assert_eq!(d.state_of("worker"), "STOPPED");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || !alive(pid), "pid {pid} survived stop");
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purposes; svc reaps, so it should not even be that.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn restart_gives_a_new_pid() {
    let d = TestDaemon::start(TWO);
    d.wait_state("web", "RUNNING");
    let old = d.pid_of("web").expect("pid");
    let run = d.svc(&["restart", "web"]);
    assert_eq!(run.code, 0, "{run:?}");
    let new = d.pid_of("web").expect("pid");
    assert_ne!(old, new);
    assert!(!alive(old), "old process {old} still alive");
}

#[test]
fn unknown_targets_fail_but_known_ones_run() {
    let d = TestDaemon::start(TWO);
    let run = d.svc(&["start", "nope", "worker"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("nope: ERROR no such program"), "{run:?}");
    assert!(run.stdout.contains("worker: started"), "{run:?}");
    let run = d.svc(&["status", "nope"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("nope"), "{run:?}");
}

#[test]
fn all_and_group_targets() {
    let d = TestDaemon::start(
        r#"
        program "a" { command "sleep 1000"; start-secs 0; autostart #false }
        program "b" { command "sleep 1000"; start-secs 0; autostart #false }
        "#,
    );
    let run = d.svc(&["start", "all"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 2, "{run:?}");
    assert_eq!(d.state_of("a"), "RUNNING");
    assert_eq!(d.state_of("b"), "RUNNING");
    let run = d.svc(&["stop", "a:*"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.state_of("a"), "STOPPED");
    assert_eq!(d.state_of("b"), "RUNNING");
    let run = d.svc(&["stop", "all"]);
    assert_eq!(run.code, 0, "{run:?}");
    wait_until("all stopped", || d.status().iter().all(|p| p["state"] == "STOPPED"));
}
