//! `svc import supervisord|procfile` through the real binary: conversions pass `svc check`,
//! and converted configurations run under a real daemon.

use crate::support::{Sandbox, TestDaemon, wait_until};
use std::fs;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(name)
}

/// Converts `file` into the sandbox's config file; returns the KDL and the run.
fn import_into(sb: &Sandbox, format: &str, file: &Path) -> (String, crate::support::Run) {
    let out = sb.config_path();
    let run = sb.svc(&["import", format, &file.display().to_string(), "-o", &out.display().to_string()]);
    let kdl = fs::read_to_string(&out).unwrap_or_default();
    (kdl, run)
}

/// A stand-in for `java`: records its arguments and working directory, then waits; on
/// SIGINT it records the signal and exits 0.
const FAKE_JAVA: &str = r#"#!/bin/sh
port=$6
printf '%s\n' "$@" > "args-$port"
pwd > "cwd-$port"
trap 'echo INT > "signal-$port"; exit 0' INT
trap 'echo TERM > "signal-$port"; exit 0' TERM
sleep 1000 &
wait
"#;

#[test]
fn issue_example_converts_checks_and_runs() {
    let sb = Sandbox::new();
    let (kdl, run) = import_into(&sb, "supervisord", &fixture("issue-example.conf"));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("warning:"), "{run:?}");
    assert!(kdl.contains("group \"mesprogrammes\""), "{kdl}");
    let check = sb.svc(&["check", &sb.config_path().display().to_string()]);
    assert_eq!(check.code, 0, "{check:?}\n{kdl}");

    // Swap java and /opt/monprogram for stand-ins; every converted argument stays as is.
    let app = sb.path().join("monprogram");
    fs::create_dir(&app).expect("mkdir");
    let java = sb.path().join("java");
    fs::write(&java, FAKE_JAVA).expect("write java");
    fs::set_permissions(&java, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let runnable = kdl
        .replace("/usr/bin/java", &java.display().to_string())
        .replace("/opt/monprogram", &app.display().to_string());
    sb.write_config(&runnable);

    let d = TestDaemon::start_in(sb);
    d.wait_state("monprog1", "RUNNING");
    d.wait_state("monprog2", "RUNNING");
    assert_eq!(d.program("monprog1")["group"], "mesprogrammes");
    // The stand-in writes these as it starts, which may be a moment after RUNNING.
    wait_until("args written", || fs::read_to_string(app.join("args-1234")).is_ok_and(|s| s.ends_with("1234\n")));
    wait_until("cwd written", || fs::read_to_string(app.join("cwd-1235")).is_ok_and(|s| s.ends_with('\n')));
    let args = fs::read_to_string(app.join("args-1234")).expect("args");
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        ["-DrunDir=/opt/monprog", "-cp", "lib/*", "fr.yax.monprog.Main", "--port", "1234"]
    );
    assert_eq!(fs::read_to_string(app.join("cwd-1235")).expect("cwd").trim(), app.display().to_string());

    let run = d.svc(&["stop", "mesprogrammes:*"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.state_of("monprog1"), "STOPPED");
    assert_eq!(d.state_of("monprog2"), "STOPPED");
    for port in ["1234", "1235"] {
        wait_until("the stop signal to be recorded", || app.join(format!("signal-{port}")).exists());
        assert_eq!(fs::read_to_string(app.join(format!("signal-{port}"))).expect("signal").trim(), "INT");
    }
    let run = d.svc(&["start", "mesprogrammes:*"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.state_of("monprog1"), "RUNNING");
    assert_eq!(d.state_of("monprog2"), "RUNNING");
}

#[test]
fn full_supervisord_conf_converts_with_warnings_and_checks() {
    let sb = Sandbox::new();
    let (kdl, run) = import_into(&sb, "supervisord", &fixture("full.conf"));
    assert_eq!(run.code, 0, "{run:?}");
    // What is lost is both a warning on stderr and a comment in the output.
    for lost in ["user", "stdout_capture_maxbytes", "[eventlistener:memmon]"] {
        assert!(run.stderr.contains(lost), "no warning for {lost}: {}", run.stderr);
    }
    for comment in ["// supervisord: user=www-data", "// supervisord: [unix_http_server]", "// from conf.d/web.conf"] {
        assert!(kdl.contains(comment), "no {comment}:\n{kdl}");
    }
    let check = sb.svc(&["check", "--json", &sb.config_path().display().to_string()]);
    assert_eq!(check.code, 0, "{check:?}\n{kdl}");
    let v: serde_json::Value = serde_json::from_str(&check.stdout).expect("json");
    let names: Vec<&str> = v["programs"].as_array().expect("programs").iter().filter_map(|p| p.as_str()).collect();
    assert_eq!(names, ["worker_01", "worker_02", "worker_03", "cron", "web"]);
}

#[test]
fn procfile_round_trip_runs() {
    let sb = Sandbox::new();
    let procfile = sb.path().join("Procfile");
    fs::copy(fixture("Procfile"), &procfile).expect("copy");
    let (kdl, run) = import_into(&sb, "procfile", &procfile);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(kdl.contains("directory \"{here}\""), "{kdl}");
    let d = TestDaemon::start_in(sb);
    d.wait_state("web", "RUNNING");
    d.wait_state("worker", "RUNNING");
    let port = d.path().join("port.txt");
    wait_until("web to write port.txt", || fs::read_to_string(&port).is_ok_and(|s| s.ends_with('\n')));
    assert_eq!(fs::read_to_string(&port).expect("port").trim(), "port=5000");
}

#[test]
fn output_rules() {
    let sb = Sandbox::new();
    let file = fixture("issue-example.conf").display().to_string();
    // stdout by default.
    let run = sb.svc(&["import", "supervisord", &file]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("program \"monprog1\""), "{run:?}");
    // -o refuses to replace a file unless --force.
    let out = sb.path().join("out.kdl");
    fs::write(&out, "keep me").expect("write");
    let o = out.display().to_string();
    let run = sb.svc(&["import", "supervisord", &file, "-o", &o]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--force"), "{run:?}");
    assert_eq!(fs::read_to_string(&out).expect("read"), "keep me");
    let run = sb.svc(&["import", "supervisord", &file, "-o", &o, "--force"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(fs::read_to_string(&out).expect("read").contains("monprog2"));
    // A missing file and a file that is not INI fail with a message.
    let run = sb.svc(&["import", "supervisord", "/nonexistent/supervisord.conf"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("cannot read"), "{run:?}");
    let junk = sb.path().join("junk.conf");
    fs::write(&junk, "command=x\n").expect("write");
    let run = sb.svc(&["import", "supervisord", &junk.display().to_string()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("junk.conf:1"), "{run:?}");
}

#[test]
fn unconvertible_result_is_reported() {
    let sb = Sandbox::new();
    let conf = sb.path().join("s.conf");
    // An unclosed quote: supervisord can't split the command either, so it stays a comment
    // and the program has no command.
    fs::write(&conf, "[program:w]\ncommand=sleep '1\nnumprocs=2\n").expect("write");
    let run = sb.svc(&["import", "supervisord", &conf.display().to_string()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("does not pass `svc check`"), "{run:?}");
    assert!(run.stdout.contains("numprocs 2"), "the output is still printed: {run:?}");
}

/// Copies a fixture into the sandbox, so that `%(here)s` is the sandbox (and `{here}`).
fn fixture_in(sb: &Sandbox, name: &str) -> PathBuf {
    let to = sb.path().join(name);
    fs::copy(fixture(name), &to).expect("copy fixture");
    to
}

#[test]
fn issue11_patterns_keep_supervisord_behaviour() {
    let sb = Sandbox::new();
    let conf = fixture_in(&sb, "issue11.conf");
    let (kdl, run) = import_into(&sb, "supervisord", &conf);
    assert_eq!(run.code, 0, "{run:?}\n{kdl}");
    assert!(!run.stderr.contains("warning:"), "{run:?}");
    assert!(kdl.contains("backoff { reset-after 0; }"), "{kdl}");
    assert!(kdl.contains("directory \"{here}/work\""), "{kdl}");
    let check = sb.svc(&["check", &sb.config_path().display().to_string()]);
    assert_eq!(check.code, 0, "{check:?}\n{kdl}");
    let run_dir = sb.path().join("work");
    fs::create_dir(&run_dir).expect("mkdir work");

    let d = TestDaemon::start_in(sb);
    d.wait_state("quiet", "RUNNING");
    // [supervisord] directory= is where programs without their own run.
    let cwd = run_dir.join("cwd");
    wait_until("crasher to write cwd", || fs::read_to_string(&cwd).is_ok_and(|s| s.ends_with('\n')));
    assert_eq!(fs::read_to_string(&cwd).expect("cwd").trim(), run_dir.display().to_string());
    // A crash after RUNNING restarts at once every time: never BACKOFF (svc's default backoff
    // would hold the second crash 1 s in BACKOFF, the third 2 s).
    let runs = run_dir.join("runs");
    let mut states = Vec::new();
    crate::support::wait_until_for("crasher to run 4 times", std::time::Duration::from_secs(20), || {
        states.push(d.state_of("crasher"));
        fs::read_to_string(&runs).is_ok_and(|s| s.lines().count() >= 4)
    });
    assert!(!states.iter().any(|s| s == "BACKOFF"), "{states:?}");
    // stdout and stderr to one file: both in it (redirect-stderr).
    let log = d.path().join("quiet.log");
    wait_until("quiet's output", || fs::read_to_string(&log).is_ok_and(|s| s.contains("out\n") && s.contains("err\n")));
    // /dev/null is `path "none"`: nothing is written for crasher.
    assert!(!d.path().join("logs/crasher.out.log").exists());
}

#[test]
fn unset_variables_fail_the_import_as_check_does() {
    let sb = Sandbox::new();
    let conf = sb.path().join("s.conf");
    fs::write(&conf, "[program:a]\ncommand=sleep %(ENV_SVC_IMPORT_T)s\ndirectory=%(ENV_SVC_IMPORT_T)s\n").expect("w");
    let run = sb.svc(&["import", "supervisord", &conf.display().to_string(), "-o", "/dev/null", "--force"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr.matches("is not set here").count(), 1, "{run:?}");
    assert!(run.stderr.contains("refuses the converted configuration until SVC_IMPORT_T is set"), "{run:?}");
    let (kdl, _) = import_into(&sb, "supervisord", &conf);
    let check = sb.svc(&["check", &sb.config_path().display().to_string()]);
    assert_eq!(check.code, 1, "{check:?}\n{kdl}");
    // Set, the import and check both pass.
    let out = sb.path().join("set.kdl");
    let mut cmd = sb.command(&["import", "supervisord", &conf.display().to_string(), "-o", &out.display().to_string()]);
    let run: crate::support::Run = cmd.env("SVC_IMPORT_T", "1").output().expect("run").into();
    assert_eq!(run.code, 0, "{run:?}");
    let mut cmd = sb.command(&["check", &out.display().to_string()]);
    let check: crate::support::Run = cmd.env("SVC_IMPORT_T", "1").output().expect("run").into();
    assert_eq!(check.code, 0, "{check:?}");
}

#[test]
fn unwritable_log_paths_are_warned_by_check_and_import() {
    let sb = Sandbox::new();
    let file = sb.path().join("plain");
    fs::write(&file, "").expect("w");
    let bad = file.join("logs/a.log");
    let fine = sb.path().join("new/dir/b.log");
    sb.write_config(&format!(
        "program \"a\" {{ command \"x\"; stdout-log {{ path \"{}\"; }} }}\n\
         program \"b\" {{ command \"x\"; stdout-log {{ path \"{}\"; }} }}\n",
        bad.display(),
        fine.display()
    ));
    let check = sb.svc(&["check"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stderr.contains(&format!("warning: `a` logs to {}", bad.display())), "{check:?}");
    // A directory the daemon can create is no problem.
    assert!(!check.stderr.contains("b.log"), "{check:?}");
    let check = sb.svc(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&check.stdout).expect("json");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["warnings"][0]["program"], "a");
    assert_eq!(v["warnings"][0]["path"], bad.display().to_string());
    assert!(v["warnings"][0]["message"].as_str().is_some_and(|m| m.contains("is not a directory")), "{v}");

    let conf = sb.path().join("s.conf");
    fs::write(&conf, format!("[program:a]\ncommand=x\nstdout_logfile={}\n", bad.display())).expect("w");
    let run = sb.svc(&["import", "supervisord", &conf.display().to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains(&format!("warning: `a` logs to {}", bad.display())), "{run:?}");

    // A directory without write permission (root writes anywhere, so only as another user).
    if !nix::unistd::geteuid().is_root() {
        let ro = sb.path().join("ro");
        fs::create_dir(&ro).expect("mkdir");
        fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).expect("chmod");
        sb.write_config(&format!(
            "program \"a\" {{ command \"x\"; stdout-log {{ path \"{}/x/a.log\"; }} }}\n",
            ro.display()
        ));
        let check = sb.svc(&["check"]);
        assert!(check.stderr.contains("is not writable"), "{check:?}");
    }
}

/// One file shared by several processes, as supervisord configs have it, imports as written
/// and runs (the daemon has one writer per file).
#[test]
fn shared_log_files_import_as_written_and_run() {
    let sb = Sandbox::new();
    let conf = fixture_in(&sb, "shared-log.conf");
    let (kdl, run) = import_into(&sb, "supervisord", &conf);
    assert_eq!(run.code, 0, "{run:?}\n{kdl}");
    assert_eq!(kdl.matches("path \"{here}/all.log\"").count(), 2, "{kdl}");
    let check = sb.svc(&["check", &sb.config_path().display().to_string()]);
    assert_eq!(check.code, 0, "{check:?}");
    let d = TestDaemon::start_in(sb);
    let log = d.path().join("all.log");
    wait_until("every writer in the shared file", || {
        fs::read_to_string(&log).is_ok_and(|s| ["from-a", "from-b-0", "from-b-1"].iter().all(|w| s.contains(w)))
    });
}

#[test]
fn process_compose_file_converts_with_warnings_and_checks() {
    let sb = Sandbox::new();
    let yaml = sb.path().join("process-compose.yaml");
    fs::copy(fixture("process-compose.yaml"), &yaml).expect("copy");
    let (kdl, run) = import_into(&sb, "compose", &yaml);
    assert_eq!(run.code, 0, "{run:?}");
    // What is lost is both a warning naming the process and option, and a comment.
    for lost in [
        "process `migration`: `availability.max_restarts`",
        "process `worker`: `shutdown.command`",
        "process `notifier`: `is_tty`",
        "process `notifier`: `colour`",
    ] {
        assert!(run.stderr.contains(lost), "no warning for {lost}: {}", run.stderr);
    }
    for comment in ["// process-compose: shutdown.command:", "// process-compose: colour: blue", "group \"backend\""] {
        assert!(kdl.contains(comment), "no {comment}:\n{kdl}");
    }
    let check = sb.svc(&["check", "--json", &sb.config_path().display().to_string()]);
    assert_eq!(check.code, 0, "{check:?}\n{kdl}");
    let v: serde_json::Value = serde_json::from_str(&check.stdout).expect("json");
    let names: Vec<&str> = v["programs"].as_array().expect("programs").iter().filter_map(|p| p.as_str()).collect();
    assert_eq!(names, ["db", "migration", "web-0", "web-1", "worker", "notifier"]);
    assert!(kdl.contains("depends-on \"db\" condition=\"ready\""), "{kdl}");
    assert!(kdl.contains("depends-on \"migration\" condition=\"completed-successfully\""), "{kdl}");
    assert!(kdl.contains("ready exec=\"pg_isready -h 127.0.0.1 -p 5432\""), "{kdl}");
}

/// A process-compose file converted and run as it is: the database becomes ready by its
/// readiness probe, the migration runs once after it, and both web replicas start only after
/// the migration succeeded (each writes its file only if the migration's is there).
#[test]
fn process_compose_file_runs_in_dependency_order_under_the_daemon() {
    let sb = Sandbox::new();
    let yaml = sb.path().join("process-compose.yaml");
    fs::write(
        &yaml,
        r#"version: "0.5"
processes:
  db:
    command: "sleep 1; touch db.ready; exec sleep 100000"
    readiness_probe:
      exec:
        command: "test -f db.ready"
      period_seconds: 1
      failure_threshold: 60
  migrate:
    command: "test -f db.ready && echo migrated > migrated"
    depends_on:
      db:
        condition: process_healthy
    availability:
      restart: "no"
  web:
    command: "test -f migrated && echo web $PC_REPLICA_NUM > web.$PC_REPLICA_NUM; exec sleep 100000"
    replicas: 2
    depends_on:
      migrate:
        condition: process_completed_successfully
"#,
    )
    .expect("write yaml");
    let (kdl, run) = import_into(&sb, "compose", &yaml);
    assert_eq!(run.code, 0, "{run:?}\n{kdl}");
    let here = sb.config_path().parent().expect("config dir").to_path_buf();
    let d = TestDaemon::start_in(sb);
    for web in ["web-0", "web-1"] {
        d.wait_state(web, "RUNNING");
    }
    assert_eq!(d.state_of("migrate"), "EXITED");
    assert_eq!(d.program("db")["ready"], true);
    for n in [0, 1] {
        let path = here.join(format!("web.{n}"));
        wait_until("each replica's file", || fs::read_to_string(&path).is_ok_and(|s| s == format!("web {n}\n")));
    }
}
