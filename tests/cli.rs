//! The CLI without and around a daemon: hints, config errors, up/shutdown, check, paths.

use crate::support::{Sandbox, TestDaemon, wait_until};

#[test]
fn every_command_without_daemon_says_so_with_hint() {
    let s = Sandbox::new();
    s.write_config(r#"program "p" { command "sleep 1" }"#);
    for args in [
        &["status"][..],
        &["start", "p"],
        &["stop", "p"],
        &["restart", "p"],
        &["logs", "p"],
        &["shutdown"],
        &["reload"],
        &["signal", "HUP", "p"],
        &["pid"],
        &["avail"],
        &["clear", "p"],
    ] {
        let run = s.svc(args);
        assert_eq!(run.code, 4, "{args:?}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: one line: {run:?}");
        assert!(run.stderr.contains("not running") && run.stderr.contains("svc up"), "{args:?}: {run:?}");
    }
}

#[test]
fn check_reports_file_line_column_for_every_error() {
    let s = Sandbox::new();
    s.write_config(
        "program \"web\" {\n    command \"x\"\n    comand \"typo\"\n}\nprogram \"other\" {\n    autostart \"yes\"\n}\n",
    );
    let run = s.command(&["check"]).env("NO_COLOR", "1").output().expect("run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("svc.kdl:3:5"), "{stderr}");
    assert!(stderr.contains("comand"), "{stderr}");
    assert!(stderr.contains("svc.kdl:6:"), "second error reported too: {stderr}");
    assert!(stderr.contains("command"), "missing command reported: {stderr}");
}

#[test]
fn check_accepts_good_config_and_json() {
    let s = Sandbox::new();
    s.write_config(r#"program "p" { command "sleep 1" }"#);
    let run = s.svc(&["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("ok"), "{run:?}");
    let run = s.svc(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(v["ok"], true);
}

#[test]
fn daemon_refuses_bad_config_with_location() {
    let s = Sandbox::new();
    s.write_config("program \"p\" {\n  command \"sleep 1\"\n  priority \"high\"\n}\n");
    let run = s.svc(&["daemon"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("svc.kdl:3:"), "{run:?}");
}

#[test]
fn up_is_idempotent_and_shutdown_stops_it() {
    let s = Sandbox::new();
    s.write_config(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    let run = s.svc(&["up"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("started"), "{run:?}");
    let run = s.svc(&["up"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("already running"), "{run:?}");
    assert_eq!(s.svc(&["up", "--quiet"]).stdout, "");
    wait_until("p running", || s.svc(&["status", "p"]).code == 0);
    let run = s.svc(&["shutdown"]);
    assert_eq!(run.code, 0, "{run:?}");
    wait_until("nothing left", || s.marked_pids().is_empty());
    assert_eq!(s.svc(&["status"]).code, 4);
    let log = std::fs::read_to_string(s.log_dir().join("svc.log")).expect("daemon log");
    assert!(log.contains("listening on"), "{log}");
}

#[test]
fn up_reports_startup_failure() {
    let s = Sandbox::new();
    s.write_config("program \"p\" {\n}\n");
    let run = s.svc(&["up"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("exited at start-up"), "{run:?}");
    assert!(run.stderr.contains("svc.kdl:1:"), "{run:?}");
}

#[test]
fn second_daemon_is_refused() {
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    let run = d.svc(&["daemon"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(&format!("already running (pid {})", d.daemon_pid())), "{run:?}");
    assert_eq!(d.svc(&["status", "p"]).code, 0, "first daemon unharmed");
}

#[test]
fn no_arguments_prints_overview() {
    let s = Sandbox::new();
    let run = s.svc(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("svc up"), "{run:?}");
}

#[test]
fn paths_are_printed() {
    let s = Sandbox::new();
    let run = s.svc(&["paths", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(v["socket"], s.socket().display().to_string());
}

#[test]
fn init_writes_a_starter_that_checks_and_refuses_to_overwrite() {
    let s = Sandbox::new();
    std::fs::remove_file(s.config_path()).ok();
    let run = s.svc(&["init"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("svc up"), "says the next command: {run:?}");
    assert_eq!(s.svc(&["check"]).code, 0);
    let run = s.svc(&["init"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("already exists"), "{run:?}");
}

#[test]
fn edit_checks_before_saving_and_reloads() {
    let d = TestDaemon::start(r#"program "a" { command "sleep 1000"; start-secs 0 }"#);
    d.wait_state("a", "RUNNING");
    let editor = d.path().join("editor.sh");
    // A scripted "editor": writes whatever NEXT_CONFIG holds into the file it is given.
    std::fs::write(&editor, "#!/bin/sh\nprintf '%s\\n' \"$NEXT_CONFIG\" > \"$1\"\n").expect("editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");

    let bad = "program \"a\" {\n    command \"sleep 1000\"\n    start-secs \"never\"\n}";
    let run = d.command(&["edit"]).env("EDITOR", &editor).env("NEXT_CONFIG", bad).output().expect("edit");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(":3:") && stderr.contains("nothing was changed"), "{stderr}");
    assert!(std::fs::read_to_string(d.config_path()).expect("config").contains("command \"sleep 1000\"; start-secs 0"));

    let good = "program \"a\" { command \"sleep 1000\"; start-secs 0; }\nprogram \"b\" { command \"sleep 1000\"; start-secs 0; }";
    let run = d.command(&["edit"]).env("VISUAL", &editor).env("NEXT_CONFIG", good).output().expect("edit");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{stdout} {}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("added: b"), "{stdout}");
    assert_eq!(d.state_of("b"), "RUNNING");
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".edit-"))
        .collect();
    assert!(leftovers.is_empty(), "the refused edit's copy was continued from, and removed once saved: {leftovers:?}");
}

#[test]
fn unknown_names_get_a_suggestion() {
    let d = TestDaemon::start(r#"program "worker" { command "sleep 1000"; autostart #false }"#);
    let run = d.svc(&["start", "wroker"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("did you mean `worker`?"), "{run:?}");
    let run = d.svc(&["status", "workr"]);
    assert!(run.stderr.contains("did you mean `worker`?"), "{run:?}");
}

#[test]
fn completions_and_man_page() {
    let s = Sandbox::new();
    let run = s.svc(&["completions", "bash"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("svc __names"), "dynamic program names");
    let check = std::process::Command::new("bash")
        .args(["-n", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(run.stdout.as_bytes())?;
            c.wait()
        })
        .expect("bash -n");
    assert!(check.success(), "bash script parses");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert_eq!(s.svc(&["completions", shell]).code, 0, "{shell}");
    }
    let man = s.svc(&["man"]);
    assert!(man.stdout.contains(".TH svc 1"), "{}", &man.stdout[..200.min(man.stdout.len())]);
}

#[test]
fn names_for_completion() {
    let d = TestDaemon::start(
        r#"program "alpha" { command "sleep 1000" }
program "beta" { command "sleep 1000" }"#,
    );
    assert_eq!(d.svc(&["__names"]).stdout, "alpha\nbeta\n");
}

/// Runs `shell` with `args`, the daemon's environment and this svc first in PATH; `None`
/// (and a note) when the shell is not installed.
fn in_shell(d: &TestDaemon, shell: &str, args: &[&str]) -> Option<String> {
    let svc = std::path::PathBuf::from(crate::support::svc_bin());
    let dir = svc.parent().expect("svc's directory").to_path_buf();
    let mut cmd = std::process::Command::new(shell);
    for (k, v) in d.command(&[]).get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", dir.display())).env("HOME", d.path()).args(args);
    match cmd.output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped {shell}: not installed (.ci/run installs it)");
            None
        }
        Err(e) => panic!("{shell}: {e}"),
        Ok(out) => {
            assert!(out.status.success(), "{shell} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    }
}

#[test]
fn completions_work_in_real_shells() {
    let d = TestDaemon::start(
        r#"program "alpha" { command "sleep 1000"; autostart #false }
program "beta" { command "sleep 1000"; autostart #false }"#,
    );
    let script = |shell: &str| {
        let path = d.path().join(format!("svc.{shell}"));
        std::fs::write(&path, d.svc(&["completions", shell]).stdout).expect("write script");
        path.display().to_string()
    };
    let words = |out: &str| -> Vec<String> {
        let mut w: Vec<String> = out.lines().filter_map(|l| l.split('\t').next()).map(str::to_owned).collect();
        w.sort();
        w.dedup();
        w
    };

    // bash: what the completion function puts in COMPREPLY for a given command line.
    let bash = script("bash");
    let complete = |line: &[&str]| {
        let quoted: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
        let code = format!(
            "source {bash}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
             _svc_with_programs svc '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            quoted.join(" "),
            line.len() - 1,
            line.join(" "),
            line[line.len() - 1],
            line[line.len() - 2],
        );
        in_shell(&d, "bash", &["-c", &code]).map(|out| words(&out))
    };
    if let Some(w) = complete(&["svc", "start", ""]) {
        for name in ["all", "alpha", "beta"] {
            assert!(w.contains(&name.to_string()), "bash `svc start <TAB>`: {w:?}");
        }
    }
    if let Some(w) = complete(&["svc", "sta"]) {
        assert_eq!(w, ["start", "status"], "bash `svc sta<TAB>`");
    }

    // fish: its own `complete -C` answers exactly what a user's TAB would.
    let fish = script("fish");
    if let Some(out) = in_shell(&d, "fish", &["--no-config", "-c", &format!("source {fish}; complete -C 'svc stop '")])
    {
        let w = words(&out);
        for name in ["all", "alpha", "beta"] {
            assert!(w.contains(&name.to_string()), "fish `svc stop <TAB>`: {w:?}");
        }
    }
    if let Some(out) = in_shell(&d, "fish", &["--no-config", "-c", &format!("source {fish}; complete -C 'svc sta'")]) {
        assert_eq!(words(&out), ["start", "status"], "fish `svc sta<TAB>`");
    }

    // zsh: the script loads into the completion system without an error.
    let zsh = script("zsh");
    if let Some(out) = in_shell(
        &d,
        "zsh",
        &["-f", "-c", &format!("autoload -U compinit && compinit -u && source {zsh} && echo loaded")],
    ) {
        assert_eq!(out.trim(), "loaded");
    }
}

#[test]
fn socket_path_too_long_is_a_clear_error() {
    let s = Sandbox::new();
    s.write_config(r#"program "p" { command "sleep 1" }"#);
    let long = s.path().join(format!("{}/svc.sock", "d".repeat(120)));
    let run = s.command(&["daemon"]).env("SVC_SOCKET", &long).output().expect("daemon");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("longer than this OS allows") && stderr.contains("SVC_SOCKET"), "{stderr}");
}

#[test]
fn every_command_help_has_an_example() {
    let s = Sandbox::new();
    // Plain, unwrapped help whatever the terminal settings of whoever runs the tests.
    let help = |args: &[&str]| {
        let out = s
            .command(args)
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("COLUMNS")
            .output()
            .expect("svc help");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&["--help"]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() > 15, "{top}");
    let mut missing = Vec::new();
    for c in &commands {
        if !help(&["help", c]).contains("Example") {
            missing.push(c.clone());
        }
    }
    for sub in ["supervisord", "procfile"] {
        if !s.svc(&["import", sub, "--help"]).stdout.contains("Example") {
            missing.push(format!("import {sub}"));
        }
    }
    assert!(missing.is_empty(), "no example in --help of: {missing:?}");
}

#[test]
fn up_brings_back_a_deleted_socket() {
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    let pid = d.pid_of("p");
    std::fs::remove_file(d.socket()).expect("remove socket");
    assert_eq!(d.svc(&["status"]).code, 4, "no socket, no answer");
    let run = d.svc(&["up"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("socket was re-created"), "{run:?}");
    assert_eq!(d.pid_of("p"), pid, "the same daemon and program, not a second daemon");
}

/// The name the process `pid` runs under (`ps`, so it reads the same on every OS).
fn process_name(pid: u32) -> String {
    let out = std::process::Command::new("ps").args(["-o", "comm=", "-p", &pid.to_string()]).output().expect("ps");
    let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    name.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Starts a daemon through `cmd` (built from a sandbox's environment) and waits for it.
fn daemon_from(sandbox: Sandbox, mut cmd: std::process::Command) -> TestDaemon {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let d = TestDaemon { child: Some(cmd.spawn().expect("daemon")), sandbox };
    wait_until("the daemon to answer", || d.svc(&["status"]).code != 4);
    d.wait_state("p", "RUNNING");
    d
}

/// `svc daemon` hands over (exec, same pid) to the daemon-only binary from the same build,
/// whose resident code is ~1 MB smaller; it runs the daemon itself when that binary is not
/// next to it, and a `svc-daemon` from other sources goes back to `svc daemon`.
#[test]
fn daemon_runs_as_the_daemon_only_binary_of_its_own_build() {
    const CONFIG: &str = r#"program "p" { command "sleep" "100000"; start-secs 0 }"#;
    let d = TestDaemon::start(CONFIG);
    assert_eq!(process_name(d.daemon_pid()), "svc-daemon");
    drop(d);

    // A copy of `svc` alone in a directory: no svc-daemon beside it.
    let s = Sandbox::new();
    s.write_config(CONFIG);
    let lone = s.path().join("bin");
    std::fs::create_dir(&lone).expect("mkdir");
    let copy = lone.join("svc");
    std::fs::hard_link(crate::support::svc_bin(), &copy)
        .or_else(|_| std::fs::copy(crate::support::svc_bin(), &copy).map(drop))
        .expect("copy svc");
    let mut cmd = std::process::Command::new(&copy);
    let env = s.command(&[]);
    for (k, v) in env.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.arg("daemon").stdin(std::process::Stdio::null());
    let d = daemon_from(s, cmd);
    assert_eq!(process_name(d.daemon_pid()), "svc");
    drop(d);

    // svc-daemon told that svc is another build: it runs `svc daemon` in-process instead.
    let s = Sandbox::new();
    s.write_config(CONFIG);
    let daemon_bin = std::path::Path::new(&crate::support::svc_bin()).with_file_name("svc-daemon");
    let mut cmd = std::process::Command::new(&daemon_bin);
    for (k, v) in s.command(&[]).get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.args(["0123456789abcdef", &crate::support::svc_bin()]).stdin(std::process::Stdio::null());
    let d = daemon_from(s, cmd);
    assert_eq!(process_name(d.daemon_pid()), "svc");
    assert_eq!(d.program("p")["state"], "RUNNING");
}

/// Run by hand, `svc-daemon` says what to run instead.
#[test]
fn the_daemon_only_binary_alone_points_to_svc_daemon() {
    let bin = std::path::Path::new(&crate::support::svc_bin()).with_file_name("svc-daemon");
    let out = std::process::Command::new(bin).output().expect("run svc-daemon");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("svc daemon"), "{out:?}");
}
