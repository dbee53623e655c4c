//! What a new user trips over (issue 11): which config a command means, JSON errors,
//! familiar verbs, and the small things.

use crate::support::TestDaemon;

#[test]
fn every_config_command_means_the_running_daemons_file() {
    // The daemon runs on the sandbox's svc.kdl; the commands below are run without SVC_CONFIG,
    // so their default would be another file (~/.config/svc/svc.kdl).
    let d = TestDaemon::start(r#"program "a" { command "sleep" "1000"; start-secs 0 }"#);
    d.wait_state("a", "RUNNING");
    let daemons = d.config_path().display().to_string();
    let plain = |args: &[&str]| -> crate::support::Run {
        let mut cmd = d.command(args);
        cmd.env_remove("SVC_CONFIG");
        cmd.output().expect("svc").into()
    };
    let check = plain(&["check"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stdout.contains(&daemons), "check checks the daemon's file: {check:?}");
    let paths = plain(&["paths", "--json"]);
    let paths: serde_json::Value = serde_json::from_str(&paths.stdout).expect("json");
    assert_eq!(paths["config"], daemons.as_str());

    let editor = d.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nprintf '\\nprogram \"b\" { command \"sleep\" \"1000\"; start-secs 0; }\\n' >> \"$1\"\n",
    )
    .expect("editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let mut edit = d.command(&["edit"]);
    edit.env_remove("SVC_CONFIG").env("EDITOR", &editor);
    let edit: crate::support::Run = edit.output().expect("edit").into();
    assert_eq!(edit.code, 0, "{edit:?}");
    assert!(edit.stdout.contains("added: b"), "the daemon saw the edit: {edit:?}");
    assert!(std::fs::read_to_string(d.config_path()).expect("config").contains("program \"b\""));
    assert_eq!(d.state_of("b"), "RUNNING");

    // Another file named with --config: edit and reload are refused, saying which file runs.
    let other = d.path().join("other.kdl");
    std::fs::write(&other, "program \"x\" { command \"sleep\" \"1\"; }\n").expect("other");
    let other = other.display().to_string();
    for verb in ["edit", "reload"] {
        let mut cmd = d.command(&["--config", &other, verb]);
        cmd.env("EDITOR", &editor);
        let run: crate::support::Run = cmd.output().expect("svc").into();
        assert_eq!(run.code, 2, "{verb}: {run:?}");
        assert!(run.stderr.contains(&daemons) && run.stderr.contains("would not change"), "{verb}: {run:?}");
    }
    assert!(!std::fs::read_to_string(&other).expect("other").contains("program \"b\""), "not edited");
    // ...but checking another file is what --config is for.
    assert_eq!(d.svc(&["--config", &other, "check"]).code, 0);
}

#[test]
fn every_json_command_answers_errors_in_json_on_stdout() {
    let d = TestDaemon::start(r#"program "a" { command "sleep" "1000"; start-secs 0 }"#);
    d.wait_state("a", "RUNNING");
    let json_error = |args: &[&str], code: i32, kind: &str| {
        let run = d.svc(args);
        assert_eq!(run.code, code, "{args:?}: {run:?}");
        let v: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {run:?}"));
        assert_eq!(v["ok"], false, "{args:?}: {v}");
        assert_eq!(v["error"]["code"], kind, "{args:?}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert!(run.stderr.is_empty(), "{args:?}: nothing on stderr: {run:?}");
        v
    };
    let v = json_error(&["status", "nope", "--json"], 1, "unknown_target");
    assert_eq!(v["error"]["field"], "targets");
    json_error(&["signal", "HUP", "nope", "--json"], 1, "unknown_target");
    json_error(&["signal", "NOSUCHSIG", "a", "--json"], 1, "bad_request");
    json_error(&["pid", "nope", "--json"], 1, "unknown_target");
    let mut gone = d.command(&["status", "--json"]);
    gone.env("SVC_SOCKET", d.path().join("nobody.sock"));
    let run: crate::support::Run = gone.output().expect("svc").into();
    assert_eq!(run.code, 4);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON when no daemon runs");
    assert_eq!(v["error"]["code"], "no_daemon");
}

#[test]
fn familiar_verbs_work() {
    let d = TestDaemon::start(r#"program "a" { command "sleep" "1000"; start-secs 0 }"#);
    d.wait_state("a", "RUNNING");
    let status = d.svc(&["status"]);
    for alias in ["list", "ls", "ps"] {
        let run = d.svc(&[alias]);
        assert_eq!(run.code, 0, "{alias}: {run:?}");
        assert_eq!(run.stdout.lines().next(), status.stdout.lines().next(), "{alias} is status");
        assert!(run.stdout.contains("RUNNING"), "{alias}: {run:?}");
    }
    let v: serde_json::Value = serde_json::from_str(&d.svc(&["version", "--json"]).stdout).expect("json");
    assert_eq!(v["client"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["daemon"]["pid"], d.daemon_pid());
    assert!(d.svc(&["version"]).stdout.contains(&format!("daemon {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn install_without_systemd_or_cron_chooses_the_login_profile() {
    let s = crate::support::Sandbox::new();
    let empty = s.path().join("empty-bin");
    std::fs::create_dir(&empty).expect("dir");
    let run: crate::support::Run =
        s.command(&["install", "--dry-run"]).env("PATH", &empty).env("SHELL", "/bin/sh").output().expect("svc").into();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("profile"), "{run:?}");
    assert!(run.stdout.contains("no crontab command") || run.stderr.contains("no crontab command"), "{run:?}");
}

#[test]
fn status_names_group_members_as_commands_take_them() {
    let d = TestDaemon::start(
        r#"group "backend" { programs "api"; }
        program "api" { command "sleep" "1000"; start-secs 0 }
        program "solo" { command "sleep" "1000"; start-secs 0 }"#,
    );
    d.wait_state("api", "RUNNING");
    d.wait_state("solo", "RUNNING");
    let table = d.svc(&["status"]).stdout;
    assert!(table.lines().any(|l| l.starts_with("backend:api ")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("solo ")), "{table}");
    // What the table shows is a target.
    assert_eq!(d.svc(&["restart", "backend:api"]).code, 0);
    let names = d.svc(&["__names"]).stdout;
    assert!(names.lines().any(|l| l == "backend:*"), "{names}");
    assert!(names.lines().any(|l| l == "api") && !names.lines().any(|l| l == "solo:*"), "{names}");
}

#[test]
fn tail_is_logs() {
    let d = TestDaemon::start(r#"program "a" { command "sh" "-c" "echo hello; exec sleep 1000"; start-secs 0 }"#);
    crate::support::wait_until("output", || d.svc(&["logs", "a"]).stdout.contains("hello"));
    assert_eq!(d.svc(&["tail", "a"]).stdout, d.svc(&["logs", "a"]).stdout);
}
