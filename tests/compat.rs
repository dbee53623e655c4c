//! What supervisord's users rely on at run time (issue 11): logs to the daemon's own stdout,
//! supervisord's environment variables, several programs appending to one log file.

use crate::support::{Sandbox, TestDaemon, wait_until};

#[test]
fn dev_stdout_and_dev_stderr_logs_go_to_the_daemons_own_output() {
    let sandbox = Sandbox::new();
    sandbox.write_config(
        r#"program "out" {
            command "sh" "-c" "echo to-stdout; exec sleep 100000"
            stdout-log { path "/dev/stdout"; max-bytes "1KB"; backups 3 }
            start-secs 0
        }
        program "err" {
            command "sh" "-c" "echo to-stderr >&2; echo via-fd; exec sleep 100000"
            stderr-log { path "/dev/stderr"; }
            stdout-log { path "/proc/1/fd/1"; }
            start-secs 0
        }"#,
    );
    let out = std::fs::File::create(sandbox.path().join("daemon.stdout")).expect("stdout file");
    let err = std::fs::File::create(sandbox.path().join("daemon.stderr")).expect("stderr file");
    let d = TestDaemon::start_with_output(sandbox, &[], out.into(), err.into());
    let stdout = || std::fs::read_to_string(d.path().join("daemon.stdout")).unwrap_or_default();
    wait_until("program output on the daemon's stdout", || {
        stdout().contains("to-stdout\n") && stdout().contains("via-fd\n")
    });
    wait_until("program output on the daemon's stderr", || d.daemon_stderr().contains("to-stderr\n"));
    assert_eq!(d.state_of("out"), "RUNNING");
    assert!(d.program("out")["reason"].is_null(), "{}", d.program("out"));
    // /dev/stdout itself was never renamed or replaced by a "rotation".
    assert!(std::fs::symlink_metadata("/dev/stdout").is_ok_and(|m| m.file_type().is_symlink()));
    // `svc logs` says where the output went instead of printing nothing.
    let run = d.svc(&["logs", "out", "--stdout"]);
    assert_eq!(run.code, 0);
    assert!(run.stderr.contains("goes to the daemon's stdout"), "{run:?}");
}

#[test]
fn programs_see_supervisords_environment_variables() {
    let d = TestDaemon::start(
        r#"group "g" {
            programs "w"
        }
        program "w" {
            command "sh" "-c" "printenv SUPERVISOR_ENABLED SUPERVISOR_PROCESS_NAME SUPERVISOR_GROUP_NAME; exec sleep 100000"
            start-secs 0
        }"#,
    );
    wait_until("output", || std::fs::read_to_string(d.log_dir().join("w.out.log")).is_ok_and(|t| t == "1\nw\ng\n"));
}

#[test]
fn several_programs_append_to_one_log_file_and_lose_no_line() {
    let d = TestDaemon::start_in({
        let s = crate::support::Sandbox::new();
        let shared = s.path().join("shared.log");
        s.write_config(&format!(
            r#"program "a" {{
                command "sh" "-c" "i=0; while [ $$i -lt 2000 ]; do echo a-$$i-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; i=$$((i+1)); done; exec sleep 100000"
                stdout-log {{ path "{p}"; max-bytes "64KB"; backups 20 }}
                start-secs 0
            }}
            program "w" {{
                numprocs 2
                command "sh" "-c" "i=0; while [ $$i -lt 2000 ]; do echo $$SVC_PROCESS_NAME-$$i-wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww; i=$$((i+1)); done; exec sleep 100000"
                stdout-log {{ path "{p}"; max-bytes "64KB"; backups 20 }}
                start-secs 0
            }}"#,
            p = shared.display()
        ));
        s
    });
    let shared = d.path().join("shared.log");
    let read_all = || {
        let mut text = String::new();
        for n in (1..=20).rev() {
            text.push_str(&std::fs::read_to_string(format!("{}.{n}", shared.display())).unwrap_or_default());
        }
        text + &std::fs::read_to_string(&shared).unwrap_or_default()
    };
    wait_until("6,000 lines", || read_all().lines().count() >= 6000);
    let text = read_all();
    let names: Vec<String> = d.status().iter().filter_map(|p| p["name"].as_str().map(str::to_owned)).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for name in &names {
        let mine: Vec<&str> = text.lines().filter(|l| l.starts_with(&format!("{name}-"))).collect();
        assert_eq!(mine.len(), 2000, "{name}: every line once");
        for (i, line) in mine.iter().enumerate() {
            assert!(
                line.starts_with(&format!("{name}-{i}-")) && line.len() > 40,
                "{name}: torn or out of order: {line:?}"
            );
        }
    }
    assert_eq!(text.lines().count(), 6000, "nothing else, nothing torn");
    for n in 1..=20 {
        if let Ok(m) = std::fs::metadata(format!("{}.{n}", shared.display())) {
            assert!(m.len() <= 64 * 1024, "backup {n} passed max-bytes: {}", m.len());
        }
    }
}
