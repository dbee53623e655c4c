//! The event stream (`events` request, `svc events`) and hooks (`on-exit`, `on-fatal`).

use crate::support::{PATIENCE, Sandbox, TestDaemon, wait_until};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;

/// A raw connection that asked for events, as another language's client would.
fn watch(d: &TestDaemon, targets: &[&str]) -> BufReader<UnixStream> {
    let mut conn = UnixStream::connect(d.socket()).expect("connect");
    conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let req = serde_json::json!({"protocol": 1, "type": "events", "targets": targets});
    conn.write_all(format!("{req}\n").as_bytes()).expect("write");
    BufReader::new(conn)
}

fn next(r: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).expect("read an event line in time");
    assert!(!line.is_empty(), "the stream ended");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

/// Reads events until `done` holds for one; returns them all, that one included.
fn read_until(r: &mut BufReader<UnixStream>, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let v = next(r);
        let stop = done(&v);
        seen.push(v);
        if stop {
            return seen;
        }
    }
}

fn is_transition(v: &Value, program: &str, to: &str) -> bool {
    v["type"] == "event" && v["kind"] == "state" && v["program"] == program && v["to"] == to
}

#[test]
fn a_watcher_gets_a_snapshot_then_every_change_in_order() {
    let d = TestDaemon::start(
        r#"program "p" { command "sleep 1000"; start-secs 0 }
program "c" { command "sh" "-c" "exit 3"; start-secs 0; autostart #false; autorestart #false }
program "other" { command "sleep 1000"; start-secs 0 }"#,
    );
    d.wait_state("p", "RUNNING");
    let mut r = watch(&d, &["p", "c"]);
    let snap = next(&mut r);
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let names: Vec<&str> =
        snap["programs"].as_array().expect("programs").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["c", "p"], "only the targets, in status order");
    let old_pid = snap["programs"][1]["pid"].as_u64().expect("p runs");

    assert_eq!(d.svc(&["restart", "p", "other"]).code, 0);
    assert_eq!(d.svc(&["start", "c"]).code, 0);
    let events = read_until(&mut r, |v| is_transition(v, "c", "EXITED"));

    let mut seq = snap["seq"].as_u64().expect("snapshot seq");
    for e in &events {
        assert_eq!(e["type"], "event", "{e}");
        assert_ne!(e["program"], "other", "not a target: {e}");
        let n = e["seq"].as_u64().expect("seq");
        assert!(n > seq, "sequence numbers increase: {events:#?}");
        seq = n;
        assert!(e["time"].as_f64().is_some(), "{e}");
    }
    let p: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["program"] == "p")
        .map(|e| (e["from"].as_str().unwrap_or("").to_owned(), e["to"].as_str().unwrap_or("").to_owned()))
        .collect();
    // start-secs 0: RUNNING at once.
    let want = [("RUNNING", "STOPPING"), ("STOPPING", "STOPPED"), ("STOPPED", "RUNNING")];
    assert_eq!(p, want.map(|(a, b)| (a.to_owned(), b.to_owned())), "{events:#?}");
    let stopping = events.iter().find(|e| is_transition(e, "p", "STOPPING")).expect("stopping");
    assert_eq!(stopping["pid"].as_u64(), Some(old_pid));
    let exited = events.last().expect("c exited");
    assert_eq!(exited["exit_status"], 3, "{exited}");
    assert_eq!(exited["from"], "RUNNING");
}

#[test]
fn svc_events_json_follows_until_the_daemon_shuts_down() {
    let mut d = TestDaemon::start(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    let mut child =
        d.command(&["events", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("snapshot");
    let snap: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["programs"][0]["state"], "RUNNING");

    assert_eq!(d.svc(&["shutdown"]).code, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read to the end");
    let status = child.wait().expect("svc events ends with the daemon");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("the daemon has shut down"), "{stderr}");
    let events: Vec<Value> = rest.lines().map(|l| serde_json::from_str(l).expect("JSON lines")).collect();
    assert_eq!(events[0]["kind"], "shutdown", "{rest}");
    assert!(events.iter().any(|e| e["program"] == "p" && e["to"] == "STOPPING"), "{rest}");
    d.wait_exit();
}

#[test]
fn svc_events_prints_lines_for_people() {
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    let mut child = d.command(&["events", "p"]).stdout(Stdio::piped()).spawn().expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("snapshot line");
    assert!(line.ends_with(&format!(" p RUNNING (pid {})\n", d.pid_of("p").expect("pid"))), "{line:?}");
    assert_eq!(d.svc(&["stop", "p"]).code, 0);
    line.clear();
    out.read_line(&mut line).expect("event line");
    assert!(line.contains(" p RUNNING -> STOPPING (pid "), "{line:?}");
    assert!(line.starts_with("20") && line.contains('T'), "stamped: {line:?}");
    // The reader going away ends it quietly: exit 0 when it notices first, or SIGPIPE when an
    // event came to write before that (as `tail -f | head` ends).
    drop(out);
    let status = child.wait().expect("svc events ends when its reader goes");
    use std::os::unix::process::ExitStatusExt;
    assert!(status.success() || status.signal() == Some(libc::SIGPIPE), "{status}");
}

#[test]
fn a_watcher_that_does_not_read_stalls_nothing_and_is_told_what_it_missed() {
    // Long names make long lines: the socket's buffer fills after fewer restarts.
    let name = format!("loop_{}", "x".repeat(4000));
    let s = Sandbox::new();
    s.write_config(&format!(
        r#"program "{name}" {{ command "true"; start-secs 0; autostart #false; autorestart #true; stdout-log {{ path "none" }}; stderr-log {{ path "none" }}; backoff {{ initial "1ms"; max "2ms"; reset-after "1ms" }} }}"#
    ));
    let d = TestDaemon::start_with_env(s, &[("SVC_EVENT_BUFFER", "16")]);
    let mut r = watch(&d, &[]);
    assert_eq!(next(&mut r)["type"], "snapshot");
    assert_eq!(d.svc(&["start", "--no-wait", &name]).code, 0);
    // Some 200 events of 8 kB while the watcher reads none, several times what the socket and
    // the daemon's buffer hold: the daemon keeps answering all along.
    wait_until("many restarts", || d.program(&name)["restarts"].as_u64().unwrap_or(0) >= 100);
    assert_eq!(d.svc(&["stop", &name]).code, 0);
    let seen = read_until(&mut r, |v| v["type"] == "lagged");
    assert!(seen[..seen.len() - 1].iter().all(|v| v["type"] == "event"), "events until the notice");
    let lagged = seen.last().expect("lagged");
    assert!(lagged["missed"].as_u64().is_some_and(|n| n > 0), "{lagged}");
    let snap = next(&mut r);
    assert_eq!(snap["type"], "snapshot", "a fresh snapshot follows: {snap}");
    // After it, the stream goes on from where the snapshot is.
    assert_eq!(d.svc(&["start", "--no-wait", &name]).code, 0);
    let after = next(&mut r);
    assert_eq!(after["type"], "event");
    assert!(after["seq"].as_u64() > snap["seq"].as_u64(), "{after} after {snap}");
    assert_eq!(d.svc(&["stop", &name]).code, 0);
}

#[test]
fn on_exit_gets_the_event_in_its_environment() {
    let s = Sandbox::new();
    let file = s.path().join("exit.env");
    s.write_config(&format!(
        r#"program "h" {{ command "sh" "-c" "exit 7"; start-secs 0; autorestart #false; on-exit "env | grep ^SVC_ | sort > {}.tmp && mv {0}.tmp {0}" }}"#,
        file.display()
    ));
    let d = TestDaemon::start_in(s);
    wait_until("the on-exit hook to write its file", || file.exists());
    let env = std::fs::read_to_string(&file).expect("read");
    for want in [
        "SVC_PROGRAM=h",
        "SVC_GROUP=h",
        "SVC_HOOK=on-exit",
        "SVC_STATE=EXITED",
        "SVC_FROM_STATE=RUNNING",
        "SVC_EXIT_CODE=7",
        "SVC_SKIPPED=0",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing from:\n{env}");
    }
    assert!(env.lines().any(|l| l.starts_with("SVC_PID=")), "{env}");
    assert!(!env.contains("SVC_EXIT_SIGNAL"), "absent when it does not apply:\n{env}");
    wait_until("the hook's end to be logged", || d.daemon_stderr().contains("h: on-exit: done"));
}

#[test]
fn on_fatal_fires_once_when_a_program_gives_up() {
    let s = Sandbox::new();
    let file = s.path().join("fatal");
    s.write_config(&format!(
        r#"program "f" {{ command "sh" "-c" "exit 1"; start-secs 5; start-retries 2; backoff {{ initial "10ms" }}; on-fatal "echo $SVC_STATE $SVC_FROM_STATE >> {}" }}"#,
        file.display()
    ));
    let d = TestDaemon::start_in(s);
    d.wait_state("f", "FATAL");
    wait_until("the on-fatal hook to finish", || d.daemon_stderr().contains("f: on-fatal: done"));
    assert_eq!(std::fs::read_to_string(&file).expect("written"), "FATAL STARTING\n");
}

#[test]
fn a_hook_that_hangs_is_killed_with_what_it_started() {
    let s = Sandbox::new();
    s.write_config(
        r#"program "g" { command "sh" "-c" "exit 0"; start-secs 0; autorestart #false; on-exit "echo hanging; sleep 1000 & sleep 1001"; hook-timeout "500ms" }"#,
    );
    let d = TestDaemon::start_in(s);
    wait_until("the hook to be killed", || d.daemon_stderr().contains("g: on-exit: killed after its time limit"));
    assert!(d.daemon_stderr().contains("g: on-exit: hanging"), "its output is in the daemon's log");
    let daemon = d.daemon_pid();
    wait_until("nothing of the hook left", || d.marked_pids().iter().all(|&p| p == daemon));
}
