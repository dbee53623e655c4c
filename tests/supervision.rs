//! supervisord's rules, observed on real processes and signals.

use crate::support::{TestDaemon, wait_until};
use std::fs;
use std::time::{Duration, Instant};

#[test]
fn sigkilled_program_is_restarted_with_a_new_pid() {
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    let old = d.pid_of("p").expect("pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), nix::sys::signal::Signal::SIGKILL).expect("kill");
    wait_until("a new pid", || d.pid_of("p").is_some_and(|p| p != old) && d.state_of("p") == "RUNNING");
    let p = d.program("p");
    assert_eq!(p["restarts"], 1);
    assert_eq!(p["exit_signal"], "KILL");
}

#[test]
fn program_ignoring_sigterm_is_killed_after_stop_wait() {
    let d = TestDaemon::start(
        r#"program "stubborn" {
            command "sh" "-c" "trap '' TERM; echo ready; while true; do sleep 0.1; done"
            start-secs 0
            stop-wait-secs 1
        }"#,
    );
    d.wait_state("stubborn", "RUNNING");
    wait_until("trap installed", || d.svc(&["logs", "stubborn"]).stdout.contains("ready"));
    let started = Instant::now();
    let run = d.svc(&["stop", "stubborn"]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(took >= Duration::from_millis(900), "SIGKILL came before stop-wait: {took:?}");
    let p = d.program("stubborn");
    assert_eq!(p["state"], "STOPPED");
    assert_eq!(p["exit_signal"], "KILL", "{p}");
}

#[test]
fn crashing_program_ends_fatal() {
    let d = TestDaemon::start(
        r#"program "crash" {
            command "sh -c 'echo attempt >> attempts; exit 3'"
            directory "."
            start-secs 10
            start-retries 2
            backoff { initial "100ms"; max "200ms"; }
        }"#,
    );
    wait_until("FATAL", || d.state_of("crash") == "FATAL");
    let p = d.program("crash");
    assert_eq!(p["exit_status"], 3);
    assert!(p["reason"].as_str().unwrap_or("").contains("exited too quickly"), "{p}");
    // One attempt plus two retries.
    let attempts = fs::read_to_string(d.path().join("attempts")).expect("attempts file");
    assert_eq!(attempts.lines().count(), 3);
    let run = d.svc(&["start", "crash"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("crash: ERROR"), "{run:?}");
}

#[test]
fn backoff_shows_next_attempt() {
    let d = TestDaemon::start(
        r#"program "flaky" {
            command "false"
            start-retries "infinite"
            backoff { initial "30s"; max "60s"; }
        }"#,
    );
    wait_until("BACKOFF", || d.state_of("flaky") == "BACKOFF");
    let p = d.program("flaky");
    let next = p["next_attempt"].as_f64().expect("next_attempt");
    assert!(next > p["since"].as_f64().expect("since") + 20.0, "{p}");
    let run = d.svc(&["status", "flaky"]);
    assert!(run.stdout.contains("next attempt in"), "{run:?}");
}

#[test]
fn expected_exit_is_not_restarted_and_unexpected_is() {
    let d = TestDaemon::start(
        r#"
        program "clean" { command "sh -c 'sleep 0.3; exit 0'"; start-secs 0 }
        program "odd"   { command "sh -c 'sleep 0.3; exit 7'"; start-secs 0; exit-codes 0 7 }
        program "bad"   { command "sh -c 'sleep 0.3; exit 1'"; start-secs 0; autorestart "unexpected" }
        "#,
    );
    wait_until("clean EXITED", || d.state_of("clean") == "EXITED");
    wait_until("odd EXITED", || d.state_of("odd") == "EXITED");
    wait_until("bad restarted", || d.program("bad")["restarts"].as_u64() >= Some(1));
    assert_eq!(d.program("clean")["restarts"], 0);
    assert_eq!(d.program("odd")["exit_status"], 7);
}

#[test]
fn stop_signal_is_used() {
    let d = TestDaemon::start(
        r#"program "p" {
            command "sh" "-c" "trap 'echo got INT; exit 0' INT; echo ready; while true; do sleep 0.1; done"
            start-secs 0
            stop-signal "INT"
            stop-as-group #false
        }"#,
    );
    wait_until("ready", || d.svc(&["logs", "p"]).stdout.contains("ready"));
    assert_eq!(d.svc(&["stop", "p"]).code, 0);
    wait_until("INT handled", || d.svc(&["logs", "p"]).stdout.contains("got INT"));
    assert_eq!(d.program("p")["exit_status"], 0);
}

#[test]
fn every_program_runs_in_its_own_process_group() {
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    let pid = d.pid_of("p").expect("pid");
    let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32))).expect("pgid");
    assert_eq!(pgid.as_raw() as u32, pid);
    assert_ne!(pgid.as_raw() as u32, d.daemon_pid());
}

#[test]
fn stop_kills_the_whole_group() {
    let d = TestDaemon::start(
        r#"program "tree" {
            command "sh" "-c" "sleep 1000 & sleep 1000 & wait"
            start-secs 0
        }"#,
    );
    d.wait_state("tree", "RUNNING");
    let daemon = d.daemon_pid();
    wait_until("children spawned", || d.marked_pids().into_iter().filter(|&p| p != daemon).count() >= 3);
    assert_eq!(d.svc(&["stop", "tree"]).code, 0);
    wait_until("no process of the tree left", || d.marked_pids().into_iter().all(|p| p == daemon));
}

#[test]
fn programs_with_a_parent_death_signal_survive_a_big_start() {
    // A parent-death signal fires when the *thread* that spawned the process exits: the
    // threads that spawn big batches must live as long as the daemon.
    let mut kdl = String::new();
    for n in 0..12 {
        kdl.push_str(&format!(
            "program \"pd{n:02}\" {{ command \"setpriv\" \"--pdeathsig\" \"KILL\" \"--\" \"sleep\" \"1000\"; start-retries 0 }}\n"
        ));
    }
    let d = TestDaemon::start(&kdl);
    wait_until("all twelve RUNNING (or one failed)", || {
        let st = d.status();
        st.iter().all(|p| p["state"] == "RUNNING") || st.iter().any(|p| p["state"] == "FATAL")
    });
    let failed: Vec<_> = d.status().into_iter().filter(|p| p["state"] != "RUNNING").collect();
    assert!(failed.is_empty(), "killed with their spawning thread: {failed:?}");
}

#[test]
fn shutdown_stops_in_reverse_priority_and_leaves_nothing() {
    let mut d = TestDaemon::start(
        r#"
        program "first"  { command "sh" "-c" "trap 'echo first >> ../order; exit 0' TERM; echo ready; while true; do sleep 0.05; done"; directory "logs"; priority 1; start-secs 0 }
        program "middle" { command "sh" "-c" "trap 'echo middle >> ../order; exit 0' TERM; echo ready; while true; do sleep 0.05; done"; directory "logs"; priority 50; start-secs 0 }
        program "last"   { command "sh" "-c" "trap 'echo last >> ../order; exit 0' TERM; echo ready; while true; do sleep 0.05; done"; directory "logs"; priority 900; start-secs 0 }
        "#,
    );
    // RUNNING (start-secs 0) comes before the shell has set its trap; "ready" after.
    for name in ["first", "middle", "last"] {
        wait_until(&format!("{name} ready"), || d.svc(&["logs", name]).stdout.contains("ready"));
    }
    let run = d.svc(&["shutdown"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.wait_exit(), Some(0), "daemon exit code");
    let order = fs::read_to_string(d.path().join("order")).expect("order file");
    assert_eq!(order, "last\nmiddle\nfirst\n");
    assert!(d.marked_pids().is_empty(), "left behind: {:?}", d.marked_pids());
    let run = d.svc(&["status"]);
    assert_eq!(run.code, 4, "{run:?}");
}

#[test]
fn sigterm_to_daemon_is_an_orderly_shutdown() {
    let mut d = TestDaemon::start(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    let pid = d.pid_of("p").expect("pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.daemon_pid() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("kill");
    assert_eq!(d.wait_exit(), Some(0));
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "program {pid} survived");
}

#[test]
fn autostart_needs_no_client() {
    // Under systemd or launchd nobody talks to the daemon after it starts: programs must
    // start anyway. Only the file system is watched here, no svc command is run.
    let s = crate::support::Sandbox::new();
    s.write_config(
        r#"program "p" { command "sh" "-c" "touch started; exec sleep 1000"; directory "."; start-secs 0 }"#,
    );
    let stderr = fs::File::create(s.path().join("daemon.stderr")).expect("stderr");
    let mut daemon = s.command(&["daemon"]).stderr(stderr).spawn().expect("daemon");
    let started = s.path().join("started");
    let deadline = Instant::now() + crate::support::PATIENCE;
    while !started.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = started.exists();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = daemon.wait();
    assert!(ok, "the autostart program ran without any client connecting");
}

#[test]
fn nothing_is_restarted_during_shutdown() {
    // "slow" (stopped first) takes 2 s to stop; meanwhile "crashy" (stopped last) exits
    // every 0.2 s and would be restarted each time.
    let mut d = TestDaemon::start(
        r#"
        program "slow" { command "sh" "-c" "trap 'sleep 2; exit 0' TERM; echo ready; while true; do sleep 0.1; done"; start-secs 0; priority 900 }
        program "crashy" { command "sh" "-c" "sleep 0.2; exit 1"; start-secs 0; autorestart #true; backoff { initial "10ms"; reset-after "10ms"; }; priority 1 }
        "#,
    );
    wait_until("slow ready", || d.svc(&["logs", "slow"]).stdout.contains("ready"));
    let run = d.svc(&["shutdown"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.wait_exit(), Some(0));
    let log = d.daemon_stderr();
    let after = &log[log.find("shutting down").expect("shutdown logged")..];
    assert!(
        !after.contains("crashy: STARTING -> RUNNING") && !after.contains("-> STARTING"),
        "restarted during shutdown: {after}"
    );
    assert!(!after.contains("crashy: BACKOFF -> RUNNING") && !after.contains("crashy: EXITED -> RUNNING"), "{after}");
}
