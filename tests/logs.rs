//! Output capture: files, `svc logs`, `-n`, `--stderr`, `-f`, and no byte lost.

use crate::support::{Sandbox, TestDaemon, wait_until};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn stdout_and_stderr_go_to_their_files() {
    let d = TestDaemon::start(
        r#"program "p" { command "sh" "-c" "echo to-out; echo to-err >&2; exec sleep 1000"; start-secs 0 }"#,
    );
    wait_until("output", || d.svc(&["logs", "p"]).stdout == "to-out\n");
    assert_eq!(d.svc(&["logs", "--stderr", "p"]).stdout, "to-err\n");
    assert_eq!(std::fs::read_to_string(d.log_dir().join("p.out.log")).expect("out log"), "to-out\n");
    assert_eq!(std::fs::read_to_string(d.log_dir().join("p.err.log")).expect("err log"), "to-err\n");
}

#[test]
fn redirect_stderr_merges_streams() {
    let d = TestDaemon::start(
        r#"program "p" { command "sh" "-c" "echo a; echo b >&2; exec sleep 1000"; start-secs 0; redirect-stderr #true }"#,
    );
    wait_until("both lines", || d.svc(&["logs", "p"]).stdout.lines().count() == 2);
    let run = d.svc(&["logs", "--stderr", "p"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("redirect-stderr"), "{run:?}");
}

#[test]
fn tail_lines() {
    let d = TestDaemon::start(
        r#"program "p" { command "sh" "-c" "i=1; while [ $$i -le 50 ]; do echo line $$i; i=$$((i+1)); done; exec sleep 1000"; start-secs 0 }"#,
    );
    wait_until("50 lines", || d.svc(&["logs", "-n", "100", "p"]).stdout.lines().count() == 50);
    assert_eq!(d.svc(&["logs", "p"]).stdout.lines().count(), 10, "default is 10 lines");
    assert_eq!(d.svc(&["logs", "-n", "3", "p"]).stdout, "line 48\nline 49\nline 50\n");
}

#[test]
fn no_byte_lost_from_a_fast_writer() {
    // 200k numbered lines as fast as the shell can print them, then exit.
    let d = TestDaemon::start(
        r#"program "flood" {
            command "sh" "-c" "seq 1 200000"
            start-secs 0
            autorestart #false
        }"#,
    );
    wait_until("flood exited", || d.state_of("flood") == "EXITED");
    let path = d.log_dir().join("flood.out.log");
    let expected: String = (1..=200000).map(|i| format!("{i}\n")).collect();
    wait_until("log complete", || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) >= expected.len() as u64);
    assert!(std::fs::read_to_string(&path).expect("log") == expected, "log content differs");
}

#[test]
fn follow_streams_new_output() {
    let s = Sandbox::new();
    s.write_config(
        r#"program "p" { command "sh" "-c" "echo old; while true; do read x < ./fifo; echo got $$x; done"; directory "."; start-secs 0 }"#,
    );
    nix::unistd::mkfifo(&s.path().join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let d = TestDaemon::start_in(s);
    wait_until("old line", || d.svc(&["logs", "p"]).stdout == "old\n");
    let mut follower = d.command(&["logs", "-f", "p"]).stdout(Stdio::piped()).spawn().expect("follow");
    let mut lines = BufReader::new(follower.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().expect("line").expect("utf8"), "old");
    std::fs::write(d.path().join("fifo"), "one\n").expect("write fifo");
    assert_eq!(lines.next().expect("line").expect("utf8"), "got one");
    std::fs::write(d.path().join("fifo"), "two\n").expect("write fifo");
    assert_eq!(lines.next().expect("line").expect("utf8"), "got two");
    let _ = follower.kill();
    let _ = follower.wait();
}

#[test]
fn logs_of_unknown_program_fails() {
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000" }"#);
    let run = d.svc(&["logs", "ghost"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no such program: ghost"), "{run:?}");
}
