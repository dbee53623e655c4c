//! `svc reload` and SIGHUP: only what changed is touched; a bad config changes nothing.

use crate::support::{TestDaemon, wait_until};

const BASE: &str = r#"
program "keep"  { command "sleep 1000"; start-secs 0 }
program "edit"  { command "sleep 1000"; start-secs 0 }
program "tune"  { command "sleep 1000"; start-secs 0; stop-wait-secs 5 }
program "gone"  { command "sleep 1000"; start-secs 0 }
"#;

const NEXT: &str = r#"
program "keep"  { command "sleep 1000"; start-secs 0 }
program "edit"  { command "sleep 2000"; start-secs 0 }
program "tune"  { command "sleep 1000"; start-secs 0; stop-wait-secs 7 }
program "fresh" { command "sleep 1000"; start-secs 0 }
"#;

fn running(d: &TestDaemon, names: &[&str]) {
    for n in names {
        d.wait_state(n, "RUNNING");
    }
}

#[test]
fn reload_applies_adds_removes_changes_and_leaves_the_rest() {
    let d = TestDaemon::start(BASE);
    running(&d, &["keep", "edit", "tune", "gone"]);
    let pids: Vec<u32> = ["keep", "edit", "tune"].iter().map(|n| d.pid_of(n).expect("pid")).collect();
    d.write_config(NEXT);

    let run = d.svc(&["reload", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("would start: fresh"), "{run:?}");
    assert!(run.stdout.contains("would stop and remove: gone"), "{run:?}");
    assert!(run.stdout.contains("would restart: edit"), "{run:?}");
    assert!(run.stdout.contains("would update in place: tune"), "{run:?}");
    assert_eq!(d.pid_of("edit"), Some(pids[1]), "dry run changed nothing");
    assert_eq!(d.status().len(), 4);

    let run = d.svc(&["reload", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(v["plan"]["added"], serde_json::json!(["fresh"]));
    assert_eq!(v["plan"]["unchanged"], serde_json::json!(["keep"]));

    // The reply came after the work: the new program is already RUNNING.
    assert_eq!(d.state_of("fresh"), "RUNNING");
    assert_eq!(d.pid_of("keep"), Some(pids[0]), "unchanged program keeps its pid");
    assert_eq!(d.pid_of("tune"), Some(pids[2]), "updated-in-place program keeps its pid");
    assert_ne!(d.pid_of("edit"), Some(pids[1]), "changed program restarted");
    let names: Vec<String> = d.status().iter().map(|p| p["name"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(names, vec!["edit", "fresh", "keep", "tune"]);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", d.pid_of("edit").expect("pid"))).unwrap_or_default();
    assert!(String::from_utf8_lossy(&cmdline).contains("2000"), "edit runs the new command");
}

#[test]
fn broken_config_on_reload_changes_nothing_and_says_where() {
    let d = TestDaemon::start(BASE);
    running(&d, &["keep", "edit", "tune", "gone"]);
    let before: Vec<Option<u32>> = ["keep", "edit", "tune", "gone"].iter().map(|n| d.pid_of(n)).collect();
    d.write_config("program \"keep\" {\n    command \"sleep 1000\"\n    stop-wait-secs \"soon\"\n}\n");
    let run = d.svc(&["reload"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("svc.kdl:3:"), "{run:?}");
    assert!(run.stderr.contains("nothing was changed"), "{run:?}");
    let after: Vec<Option<u32>> = ["keep", "edit", "tune", "gone"].iter().map(|n| d.pid_of(n)).collect();
    assert_eq!(before, after);
}

#[test]
fn sighup_reloads() {
    let d = TestDaemon::start(BASE);
    running(&d, &["keep"]);
    d.write_config(NEXT);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.daemon_pid() as i32), nix::sys::signal::Signal::SIGHUP)
        .expect("hup");
    wait_until("fresh RUNNING after SIGHUP", || {
        d.status().iter().any(|p| p["name"] == "fresh" && p["state"] == "RUNNING")
    });
    wait_until("gone removed", || d.status().iter().all(|p| p["name"] != "gone"));
}

#[test]
fn reload_with_nothing_to_do() {
    let d = TestDaemon::start(BASE);
    let run = d.svc(&["reload"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("nothing to do"), "{run:?}");
}

#[test]
fn reload_json_gives_structured_errors() {
    let d = TestDaemon::start(BASE);
    d.write_config("program \"keep\" {\n    command \"sleep 1000\"\n    stop-wait-secs \"soon\"\n}\n");
    let run = d.svc(&["reload", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"][0]["line"], 3, "{v}");
    assert!(v["errors"][0]["file"].as_str().is_some_and(|f| f.ends_with("svc.kdl")), "{v}");
}

#[test]
fn a_program_put_back_while_still_stopping_never_runs_twice() {
    let slow = r#"program "slow" { command "sh" "-c" "trap 'sleep 2; exit 0' TERM; echo ready; while true; do sleep 0.1; done"; start-secs 0; stop-wait-secs 10 }"#;
    let other = r#"program "other" { command "sleep 1000"; start-secs 0 }"#;
    let d = TestDaemon::start(&format!("{slow}\n{other}"));
    wait_until("slow ready", || d.svc(&["logs", "slow"]).stdout.contains("ready"));
    let daemon = d.daemon_pid();
    // Only the daemon's children: a child the shell has forked for `sleep 0.1` carries the
    // shell's command line until it execs, and on a loaded machine that window is seen.
    let parent = |p: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
    };
    let instances = || {
        d.marked_pids()
            .into_iter()
            .filter(|&p| p != daemon && parent(p) == Some(daemon))
            .filter(|p| {
                String::from_utf8_lossy(&std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default())
                    .contains("trap")
            })
            .count()
    };
    // Remove it: the reload waits while it takes 2 s to stop.
    d.write_config(other);
    let first = d.command(&["reload"]).stdout(std::process::Stdio::null()).spawn().expect("reload");
    wait_until("slow stopping", || d.daemon_stderr().contains("slow: RUNNING -> STOPPING"));
    // Put it back meanwhile.
    d.write_config(&format!("{slow}\n{other}"));
    let run = d.svc(&["reload"]);
    assert_eq!(run.code, 0, "{run:?}");
    // Until the first reload is done (the old instance has stopped), never two at once.
    let mut first = first;
    let mut most = 0;
    while first.try_wait().expect("wait").is_none() {
        most = most.max(instances());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(most <= 1, "{most} instances of slow at once");
    wait_until("slow runs again", || d.state_of("slow") == "RUNNING" && instances() == 1);
}
