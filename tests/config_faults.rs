//! Config files that used to hurt: one deep enough to overflow the parser's stack, an empty
//! one read mid-rewrite, and mistakes whose errors said nothing useful.

use std::time::{Duration, Instant};

use crate::support::{Sandbox, TestDaemon, wait_until};

const ONE: &str = r#"program "keep" { command "sleep 1000"; start-secs 0 }"#;

/// `a {` on 1000 lines: the 65th `{` (line 65, column 3) is one past the limit.
fn thousand_deep() -> String {
    "a {\n".repeat(1000) + &"}\n".repeat(1000)
}

fn signal_daemon(d: &TestDaemon, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.daemon_pid() as i32), sig).expect("signal the daemon");
}

#[test]
fn check_on_a_thousand_deep_file_is_a_config_error_not_an_abort() {
    let s = Sandbox::new();
    s.write_config(&thousand_deep());
    let started = Instant::now();
    let run = s.svc(&["check"]);
    let took = started.elapsed();
    // It was 134 (SIGABRT from a stack overflow); 1 is every other config error's code.
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("svc.kdl:65:3"), "{run:?}");
    assert!(run.stderr.contains("blocks are nested more than 64 deep"), "{run:?}");
    eprintln!("svc check on a 1000-deep file: exit {} in {took:?}", run.code);
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // The same bound applies to an included file.
    std::fs::write(s.path().join("deep.kdl"), thousand_deep()).expect("write include");
    s.write_config(&format!("{ONE}\ninclude \"deep.kdl\"\n"));
    let run = s.svc(&["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("deep.kdl:65:3"), "{run:?}");
}

#[test]
fn reload_of_a_thousand_deep_file_leaves_the_daemon_and_its_program_alone() {
    let mut d = TestDaemon::start(ONE);
    d.wait_state("keep", "RUNNING");
    let pid = d.pid_of("keep");
    d.write_config(&thousand_deep());
    let run = d.svc(&["reload"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("svc.kdl:65:3"), "{run:?}");
    assert!(run.stderr.contains("nothing was changed"), "{run:?}");
    signal_daemon(&d, nix::sys::signal::Signal::SIGHUP);
    wait_until("the SIGHUP reload to be refused", || {
        d.daemon_stderr().matches("nested more than 64 deep").count() >= 2
    });
    let alive = d.child.as_mut().and_then(|c| c.try_wait().ok()).flatten().is_none();
    assert!(alive, "the daemon died:\n{}", d.daemon_stderr());
    assert_eq!(d.state_of("keep"), "RUNNING");
    assert_eq!(d.pid_of("keep"), pid, "the program was not touched");
}

#[test]
fn an_empty_config_on_reload_or_sighup_stops_nothing() {
    let d = TestDaemon::start(ONE);
    d.wait_state("keep", "RUNNING");
    let pid = d.pid_of("keep");

    // What a reader sees between `>` truncating the file and the new text arriving.
    d.write_config("");
    let run = d.svc(&["reload"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("is empty: refusing to stop every program"), "{run:?}");
    assert!(run.stderr.contains("write configs atomically"), "{run:?}");
    assert_eq!(d.pid_of("keep"), pid);

    d.write_config("// being rewritten\n");
    signal_daemon(&d, nix::sys::signal::Signal::SIGHUP);
    wait_until("the SIGHUP reload to be refused", || d.daemon_stderr().contains("has nothing but comments"));
    assert_eq!(d.state_of("keep"), "RUNNING");
    assert_eq!(d.pid_of("keep"), pid, "the program was not touched");

    // Written atomically, the next reload applies normally.
    let tmp = d.path().join("svc.kdl.tmp");
    std::fs::write(&tmp, format!("{ONE}\nprogram \"more\" {{ command \"sleep 1000\"; start-secs 0 }}\n")).expect("tmp");
    std::fs::rename(&tmp, d.config_path()).expect("rename");
    let run = d.svc(&["reload"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.state_of("more"), "RUNNING");
    assert_eq!(d.pid_of("keep"), pid);
}

#[test]
fn check_and_start_refuse_an_empty_config_but_not_an_empty_include() {
    let s = Sandbox::new();
    s.write_config("\n\n");
    let run = s.svc(&["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("svc.kdl is empty"), "{run:?}");
    let run = s.svc(&["up"]);
    if run.code == 0 {
        s.svc(&["shutdown"]);
    }
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("refusing to stop every program"), "{run:?}");

    std::fs::create_dir(s.path().join("conf.d")).expect("conf.d");
    std::fs::write(s.path().join("conf.d/empty.kdl"), "// nothing here yet\n").expect("fragment");
    s.write_config(&format!("{ONE}\ninclude \"conf.d/*.kdl\"\n"));
    let run = s.svc(&["check"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn check_explains_common_mistakes_with_their_position() {
    let s = Sandbox::new();
    let cases = [
        (
            "program \"web\" {\n    command \"x\"\n    directory ~/site\n}\n",
            "svc.kdl:3:15",
            "quote the path: \"~/site\"",
        ),
        ("program \"web\" {\n    command \"x\"\n    autostart true\n}\n", "svc.kdl:3:15", "booleans are #true/#false"),
        ("program \"web\" { command \"x\"; environment { A null; }; }\n", "svc.kdl:1:46", "null is #null"),
        ("[program:web]\ncommand=sleep 100\n", "svc.kdl:1:1", "run `svc import supervisord"),
        (
            "program \"web\" { command \"x\"; }\ngroup \"g\" { programs \"wbe\"; }\n",
            "svc.kdl:2:22",
            "no program `wbe` (did you mean `web`?)",
        ),
    ];
    for (kdl, at, says) in cases {
        s.write_config(kdl);
        let run = s.command(&["check"]).env("NO_COLOR", "1").output().expect("run");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{kdl}: {stderr}");
        assert!(stderr.contains(at), "{kdl}: expected {at} in {stderr}");
        assert!(stderr.contains(says), "{kdl}: expected {says:?} in {stderr}");
        assert!(!stderr.contains("Did you want a space here?"), "{stderr}");
    }
    // The group error lists programs, not settings.
    let run = s.svc(&["check"]);
    assert!(run.stderr.contains("programs: web"), "{run:?}");
    assert!(!run.stderr.contains("known settings"), "{run:?}");
}

#[test]
fn up_without_a_config_file_suggests_init() {
    let s = Sandbox::new();
    assert!(!s.config_path().exists());
    let run = s.svc(&["up"]);
    if run.code == 0 {
        s.svc(&["shutdown"]);
    }
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("does not exist"), "{run:?}");
    assert!(run.stderr.contains("create one with `svc init`"), "{run:?}");
    let run = s.svc(&["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("create one with `svc init`"), "{run:?}");
}
