//! Output capture: files, `svc logs` (both streams, `--stdout`, `--stderr`, every program, the
//! daemon's own log), `-n`, `-f`, and no byte lost.

use crate::support::{Sandbox, TestDaemon, timed_lines, wait_until};
use std::process::Stdio;

#[test]
fn stdout_and_stderr_go_to_their_files() {
    let d = TestDaemon::start(
        r#"program "p" { command "sh" "-c" "echo to-out; echo to-err >&2; exec sleep 1000"; start-secs 0 }"#,
    );
    wait_until("output", || {
        d.svc(&["logs", "--stdout", "p"]).stdout == "to-out\n" && d.svc(&["logs", "--stderr", "p"]).stdout == "to-err\n"
    });
    assert_eq!(std::fs::read_to_string(d.log_dir().join("p.out.log")).expect("out log"), "to-out\n");
    assert_eq!(std::fs::read_to_string(d.log_dir().join("p.err.log")).expect("err log"), "to-err\n");
}

#[test]
fn redirect_stderr_merges_streams() {
    let d = TestDaemon::start(
        r#"program "p" { command "sh" "-c" "echo a; echo b >&2; exec sleep 1000"; start-secs 0; redirect-stderr #true }"#,
    );
    wait_until("both lines", || d.svc(&["logs", "p"]).stdout.lines().count() == 2);
    // One stream: nothing to mark.
    assert!(!d.svc(&["logs", "p"]).stdout.contains("err|"));
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
        // The shell holds the fifo open read-write, so the test's open/write/close
        // never races with the shell re-opening it (which could read an EOF).
        r#"program "p" { command "sh" "-c" "echo old; exec 3<>./fifo; while read x <&3; do echo got $$x; done"; directory "."; start-secs 0 }"#,
    );
    nix::unistd::mkfifo(&s.path().join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let d = TestDaemon::start_in(s);
    wait_until("old line", || d.svc(&["logs", "p"]).stdout == "old\n");
    let mut follower = d.command(&["logs", "-f", "p"]).stdout(Stdio::piped()).spawn().expect("follow");
    let mut lines = timed_lines(follower.stdout.take().expect("stdout"));
    assert_eq!(lines.next().expect("line"), "old");
    std::fs::write(d.path().join("fifo"), "one\n").expect("write fifo");
    assert_eq!(lines.next().expect("line"), "got one");
    std::fs::write(d.path().join("fifo"), "two\n").expect("write fifo");
    assert_eq!(lines.next().expect("line"), "got two");
    let _ = follower.kill();
    let _ = follower.wait();
}

#[test]
fn logs_of_unknown_program_fails() {
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000" }"#);
    let run = d.svc(&["logs", "ghost"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no such program or group: ghost"), "{run:?}");
}

#[test]
fn several_programs_are_prefixed_and_since_filters_by_timestamp() {
    let d = TestDaemon::start(
        r#"
        program "alpha" { command "sh" "-c" "echo a1; echo a2; exec sleep 1000"; start-secs 0; log-timestamps #true }
        program "b" { command "sh" "-c" "echo b1; exec sleep 1000"; start-secs 0 }
        "#,
    );
    wait_until("output", || {
        d.svc(&["logs", "alpha"]).stdout.lines().count() == 2 && d.svc(&["logs", "b"]).stdout == "b1\n"
    });
    let run = d.svc(&["logs", "all"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:?}");
    assert!(lines[0].starts_with("alpha | ") && lines[0].ends_with(" a1"), "{run:?}");
    assert!(lines[1].starts_with("alpha | ") && lines[1].ends_with(" a2"), "{run:?}");
    assert_eq!(lines[2], "b     | b1");
    // Stamped lines are RFC 3339.
    let stamp = lines[0].trim_start_matches("alpha | ").split(' ').next().unwrap_or("");
    assert!(humantime::parse_rfc3339(stamp).is_ok(), "{stamp}");

    let run = d.svc(&["logs", "--since", "1h", "alpha"]);
    assert_eq!(run.stdout.lines().count(), 2, "{run:?}");
    let future =
        humantime::format_rfc3339(std::time::SystemTime::now() + std::time::Duration::from_secs(3600)).to_string();
    let run = d.svc(&["logs", "--since", &future, "alpha"]);
    assert_eq!(run.stdout, "", "{run:?}");
    // Without stamps there is nothing to select by: refused, not printed unfiltered.
    let run = d.svc(&["logs", "--since", "1h", "b"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert!(
        run.stderr.contains("does not set log-timestamps") && run.stderr.contains("log-timestamps #true"),
        "{run:?}"
    );
}

#[test]
fn follow_all_interleaves_prefixed_lines() {
    let d = TestDaemon::start(
        r#"
        program "one" { command "sh" "-c" "while true; do echo tick-one; sleep 0.1; done"; start-secs 0 }
        program "two" { command "sh" "-c" "while true; do echo tick-two; sleep 0.1; done"; start-secs 0 }
        "#,
    );
    let mut follower = d.command(&["logs", "-f", "all"]).stdout(Stdio::piped()).spawn().expect("follow");
    let lines = timed_lines(follower.stdout.take().expect("stdout"));
    let mut seen = (false, false);
    for line in lines.take(200) {
        seen.0 |= line == "one | tick-one";
        seen.1 |= line == "two | tick-two";
        if seen == (true, true) {
            break;
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(seen, (true, true));
}

#[test]
fn follow_continues_across_rotation() {
    let d = TestDaemon::start(
        r#"program "p" {
            command "sh" "-c" "i=0; while true; do i=$$((i+1)); echo line-$$i; sleep 0.01; done"
            stdout-log { max-bytes "2KB"; backups 2; }
            start-secs 0
        }"#,
    );
    let mut follower = d.command(&["logs", "-f", "-n", "0", "p"]).stdout(Stdio::piped()).spawn().expect("follow");
    let mut lines = timed_lines(follower.stdout.take().expect("stdout"));
    let first: u64 = lines.next().expect("line").trim_start_matches("line-").parse().expect("number");
    // 400 lines of ~9 bytes cross the 2 KB limit at least once; the follower sees each once.
    for expected in first + 1..first + 400 {
        let line = lines.next().expect("line");
        assert_eq!(line, format!("line-{expected}"));
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(std::fs::metadata(d.log_dir().join("p.out.log.1")).is_ok(), "it rotated");
}

#[test]
fn follow_keeps_a_character_split_between_two_reads_whole() {
    let s = Sandbox::new();
    // "é" is C3 A9: the two bytes are written half a second apart, so the daemon reads them
    // separately; the follower must still get one character, not two replacement characters.
    s.write_config(
        r#"program "p" { command "sh" "-c" "exec 3<>./fifo; echo ready; read x <&3; printf '\\303'; sleep 0.5; printf '\\251\\n'; exec sleep 1000"; directory "."; start-secs 0 }"#,
    );
    nix::unistd::mkfifo(&s.path().join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let d = TestDaemon::start_in(s);
    wait_until("ready", || d.svc(&["logs", "p"]).stdout == "ready\n");
    let mut follower = d.command(&["logs", "-f", "p"]).stdout(Stdio::piped()).spawn().expect("follow");
    let mut lines = timed_lines(follower.stdout.take().expect("stdout"));
    // The tail and the subscription are taken together: once "ready" arrives, nothing is missed.
    assert_eq!(lines.next().expect("line"), "ready");
    std::fs::write(d.path().join("fifo"), "go\n").expect("write fifo");
    assert_eq!(lines.next().expect("line"), "é");
    let _ = follower.kill();
    let _ = follower.wait();
}

#[test]
fn both_streams_are_shown_by_default_in_time_order_when_stamped() {
    let d = TestDaemon::start(
        r#"program "p" {
            command "sh" "-c" "echo o1; sleep 0.1; echo e1 >&2; sleep 0.1; echo o2; exec sleep 1000"
            start-secs 0
            log-timestamps #true
        }"#,
    );
    let body = |l: &str| l.replace("err| ", "err|").split(' ').skip(1).collect::<Vec<_>>().join(" ");
    wait_until("three lines", || d.svc(&["logs", "p"]).stdout.lines().count() == 3);
    let run = d.svc(&["logs", "p"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.iter().map(|l| body(l)).collect::<Vec<_>>(), ["o1", "e1", "o2"], "{run:?}");
    assert!(lines[1].starts_with("err| ") && !lines[0].contains("err|"), "{run:?}");
    // -n counts lines of the merged history.
    let run = d.svc(&["logs", "-n", "2", "p"]);
    assert_eq!(run.stdout.lines().map(body).collect::<Vec<_>>(), ["e1", "o2"], "{run:?}");
    assert!(!d.svc(&["logs", "--stdout", "p"]).stdout.contains("e1"));
}

#[test]
fn unstamped_streams_show_stdout_then_stderr_each_marked() {
    let d = TestDaemon::start(
        r#"program "p" { command "sh" "-c" "echo e1 >&2; echo o1; echo e2 >&2; exec sleep 1000"; start-secs 0 }"#,
    );
    wait_until("both streams", || d.svc(&["logs", "p"]).stdout == "o1\nerr| e1\nerr| e2\n");
    // With `all`: the name, then the marker.
    let run = d.svc(&["logs", "all"]);
    assert_eq!(run.stdout, "p | o1\np | err| e1\np | err| e2\n", "{run:?}");
}

#[test]
fn no_target_means_every_program() {
    let d = TestDaemon::start(
        r#"
        program "a" { command "sh" "-c" "echo from-a; exec sleep 1000"; start-secs 0 }
        program "bb" { command "sh" "-c" "echo from-bb >&2; exec sleep 1000"; start-secs 0 }
        "#,
    );
    wait_until("both programs", || d.svc(&["logs"]).stdout == "a  | from-a\nbb | err| from-bb\n");
    assert_eq!(d.svc(&["logs"]).code, 0);
}

#[test]
fn the_daemon_log_is_served_by_the_daemon() {
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000" }"#);
    let run = d.svc(&["logs", "svc"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("daemon (pid"), "the start-up line: {run:?}");
    let run = d.svc(&["logs", "--daemon", "-n", "1"]);
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    // Stamped by the daemon's logger, so --since works on it.
    let run = d.svc(&["logs", "--daemon", "--since", "1h"]);
    assert!(run.code == 0 && run.stdout.contains("daemon (pid"), "{run:?}");
    // Followed: state changes are logged as they happen. The follower's subscription cannot be
    // observed from here, so programs are restarted until it shows one.
    let mut follower = d.command(&["logs", "-f", "-n", "0", "svc"]).stdout(Stdio::piped()).spawn().expect("follow");
    let lines = timed_lines(follower.stdout.take().expect("stdout"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let restarter = {
        let (stop, cmd) = (stop.clone(), d.command(&["restart", "p"]));
        let (program, envs): (_, Vec<_>) = (
            cmd.get_program().to_owned(),
            cmd.get_envs().map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned))).collect(),
        );
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut c = std::process::Command::new(&program);
                c.args(["restart", "p"]).stdout(Stdio::null()).stderr(Stdio::null());
                for (k, v) in &envs {
                    match v {
                        Some(v) => c.env(k, v),
                        None => c.env_remove(k),
                    };
                }
                let _ = c.status();
            }
        })
    };
    let seen = lines.take(1000).any(|l| l.contains("p: ") && l.contains(" -> "));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = restarter.join();
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(seen, "the follower saw no state change");
}

#[test]
fn a_program_called_svc_keeps_its_name() {
    let d = TestDaemon::start(
        r#"program "svc" { command "sh" "-c" "echo i-am-a-program; exec sleep 1000"; start-secs 0 }"#,
    );
    wait_until("its output", || d.svc(&["logs", "svc"]).stdout == "i-am-a-program\n");
    let run = d.svc(&["logs", "--daemon"]);
    assert!(run.stdout.contains("daemon (pid"), "{run:?}");
}

#[test]
fn a_daemon_log_that_goes_nowhere_says_where() {
    let s = Sandbox::new();
    s.write_config(r#"program "p" { command "sleep 1000" }"#);
    let d = TestDaemon::start_with_stderr(s, &[], Stdio::null());
    let run = d.svc(&["logs", "svc"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("discarded") && run.stderr.contains("/dev/null"), "{run:?}");
}

#[test]
fn follow_ends_as_soon_as_its_reader_goes() {
    // One line, then silence: the follower has nothing more to write, so only watching its
    // output tells it that `head` has gone.
    let d = TestDaemon::start(r#"program "p" { command "sh" "-c" "echo only; exec sleep 1000"; start-secs 0 }"#);
    wait_until("the line", || d.svc(&["logs", "p"]).stdout == "only\n");
    let base = d.command(&[]);
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c").arg(format!("'{}' logs -f p | head -1", crate::support::svc_bin())).stdout(Stdio::piped());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let mut pipeline = sh.spawn().expect("sh");
    let mut lines = timed_lines(pipeline.stdout.take().expect("stdout"));
    assert_eq!(lines.next().expect("line"), "only");
    // Before the fix, `svc logs -f` noticed only at its next write, which never came.
    wait_until("the pipeline ends", || pipeline.try_wait().expect("wait").is_some());
}

#[test]
fn follow_marks_stderr_lines_as_they_arrive() {
    let s = Sandbox::new();
    s.write_config(
        r#"program "p" { command "sh" "-c" "exec 3<>./fifo; echo ready; while read x <&3; do echo out-$$x; read y <&3; echo err-$$y >&2; done"; directory "."; start-secs 0 }"#,
    );
    nix::unistd::mkfifo(&s.path().join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let d = TestDaemon::start_in(s);
    wait_until("ready", || d.svc(&["logs", "p"]).stdout == "ready\n");
    let mut follower = d.command(&["logs", "-f", "p"]).stdout(Stdio::piped()).spawn().expect("follow");
    let mut lines = timed_lines(follower.stdout.take().expect("stdout"));
    assert_eq!(lines.next().expect("line"), "ready");
    std::fs::write(d.path().join("fifo"), "one\n").expect("write fifo");
    assert_eq!(lines.next().expect("line"), "out-one");
    std::fs::write(d.path().join("fifo"), "two\n").expect("write fifo");
    assert_eq!(lines.next().expect("line"), "err| err-two");
    let _ = follower.kill();
    let _ = follower.wait();
}

#[test]
fn an_unwritable_log_path_is_explained() {
    let s = Sandbox::new();
    // A file where the log's directory should be: nothing can be written there.
    std::fs::write(s.path().join("blocker"), "").expect("blocker");
    let path = s.path().join("blocker/p.log");
    s.write_config(&format!(
        r#"program "p" {{ command "sh" "-c" "echo lost; exec sleep 1000"; start-secs 0; stdout-log {{ path "{}"; }} }}"#,
        path.display()
    ));
    let d = TestDaemon::start_in(s);
    let run = d.svc(&["logs", "--stdout", "p"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert!(run.stderr.contains(&format!("cannot write {}", path.display())), "{run:?}");
    assert!(run.stderr.contains("p's stdout is dropped"), "{run:?}");
}

#[test]
fn an_empty_custom_log_says_where_it_is() {
    let s = Sandbox::new();
    let path = s.path().join("elsewhere/p.log");
    s.write_config(&format!(
        r#"program "p" {{ command "sleep" "1000"; start-secs 0; stdout-log {{ path "{}"; }} }}"#,
        path.display()
    ));
    let d = TestDaemon::start_in(s);
    let run = d.svc(&["logs", "--stdout", "p"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains(&format!("goes to {}", path.display())), "{run:?}");
}
