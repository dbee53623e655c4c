//! Programs that wait for each other (issue 12): dependency order, conditions, and what a
//! failed dependency does, through the real daemon with real programs.

use crate::support::{Sandbox, TestDaemon, wait_until};

/// Seconds since the epoch that a program wrote into `file` (its last line). A program is
/// RUNNING (start-secs 0) as soon as it is spawned, before its shell got to write the stamp:
/// wait for a whole line.
fn stamp(dir: &std::path::Path, file: &str) -> f64 {
    let read = || std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    wait_until(&format!("{file} to be written"), || read().ends_with('\n'));
    let text = read();
    text.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("{file}: {text:?}"))
}

fn lines(dir: &std::path::Path, file: &str) -> usize {
    std::fs::read_to_string(dir.join(file)).map_or(0, |t| t.lines().count())
}

/// A shell program that stamps `NAME.start` when it starts and `NAME.stop` when asked to stop.
fn service(dir: &std::path::Path, name: &str) -> String {
    let d = dir.display();
    format!("date +%s.%N >> {d}/{name}.start; trap 'date +%s.%N >> {d}/{name}.stop; exit 0' TERM; sleep 100000 & wait")
}

#[test]
fn a_chain_starts_in_dependency_order_and_stops_in_reverse() {
    let s = Sandbox::new();
    let t = s.path().join("t");
    std::fs::create_dir(&t).expect("dir");
    let d = t.display();
    s.write_config(&format!(
        r#"program "db" {{ command "sh" "-c" "{db}"; start-secs 2 }}
program "migrate" {{
    command "sh" "-c" "date +%s.%N >> {d}/migrate.start; sleep 0.5; date +%s.%N >> {d}/migrate.end"
    oneshot #true
    depends-on "db"
}}
program "web" {{
    command "sh" "-c" "{web}"
    start-secs 0
    depends-on "migrate" condition="completed-successfully"
}}
"#,
        db = service(&t, "db"),
        web = service(&t, "web"),
    ));
    let d = TestDaemon::start_in(s);
    d.wait_state("web", "RUNNING");
    let (db, migrate, migrated, web) =
        (stamp(&t, "db.start"), stamp(&t, "migrate.start"), stamp(&t, "migrate.end"), stamp(&t, "web.start"));
    // db counts as ready once RUNNING (2 s after its spawn; its stamp comes a little after the
    // spawn, more on a loaded machine); migrate waited for that, web for migrate's end.
    assert!(migrate >= db + 1.5, "migrate started {:.2}s after db", migrate - db);
    assert!(web >= migrated, "web started {:.2}s before migrate ended", migrated - web);
    assert_eq!(d.state_of("migrate"), "EXITED");

    // Stopping db stops web first.
    let run = d.svc(&["stop", "db"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.state_of("web"), "STOPPED", "its dependent was stopped too");
    assert!(stamp(&t, "web.stop") <= stamp(&t, "db.stop"), "web stopped before db");

    // Starting web brings db back first; the completed migration is not run again.
    let run = d.svc(&["start", "web"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(d.state_of("db"), "RUNNING");
    assert_eq!(d.state_of("web"), "RUNNING", "start returns once web is ready");
    assert_eq!(lines(&t, "migrate.start"), 1, "migrate ran once");
    assert!(stamp(&t, "web.start") >= stamp(&t, "db.start") + 1.5);

    // Restarting db restarts web after it.
    let before = lines(&t, "web.start");
    assert_eq!(d.svc(&["restart", "db"]).code, 0);
    wait_until("web started again", || lines(&t, "web.start") == before + 1);
    assert!(stamp(&t, "web.start") >= stamp(&t, "db.start") + 1.5, "after db was ready again");

    // Shutdown: reverse order.
    assert_eq!(d.svc(&["shutdown"]).code, 0);
    assert!(stamp(&t, "web.stop") <= stamp(&t, "db.stop"));
}

#[test]
fn a_fatal_dependency_keeps_its_dependents_waiting_with_a_reason() {
    let s = Sandbox::new();
    let t = s.path().join("t");
    std::fs::create_dir(&t).expect("dir");
    s.write_config(&format!(
        r#"program "db" {{
    command "sh" "-c" "test -f {d}/ok && exec sleep 100000; exit 1"
    start-secs 1
    start-retries 0
}}
program "web" {{ command "sh" "-c" "{web}"; start-secs 0; depends-on "db" }}
"#,
        d = t.display(),
        web = service(&t, "web"),
    ));
    let d = TestDaemon::start_in(s);
    d.wait_state("db", "FATAL");
    let web = d.program("web");
    assert_eq!(web["state"], "STOPPED", "{web}");
    assert_eq!(web["waiting"], "waiting for db (FATAL)", "{web}");
    let table = d.svc(&["status", "web"]).stdout;
    assert!(table.contains("waiting for db (FATAL)"), "{table}");
    // Asking for web tries db again (a fresh start), which fails again: the answer says why.
    let run = d.svc(&["start", "web"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("waiting for db (FATAL)") || run.stdout.contains("waiting for db (FATAL)"), "{run:?}");
    assert_eq!(lines(&t, "web.start"), 0, "web never started");
    // db fixed and started by hand: web, still waiting, starts by itself.
    std::fs::write(t.join("ok"), "").expect("ok");
    assert_eq!(d.svc(&["start", "db"]).code, 0);
    wait_until("web to start once db is ready", || d.state_of("web") == "RUNNING");
    assert!(d.program("web")["waiting"].is_null());
}

#[test]
fn conditions_started_and_completed() {
    let s = Sandbox::new();
    let t = s.path().join("t");
    std::fs::create_dir(&t).expect("dir");
    let dd = t.display();
    s.write_config(&format!(
        r#"program "slow" {{ command "sh" "-c" "date +%s.%N >> {dd}/slow.start; exec sleep 100000"; start-secs 30 }}
program "eager" {{
    command "sh" "-c" "date +%s.%N >> {dd}/eager.start; exec sleep 100000"
    start-secs 0
    depends-on "slow" condition="started"
}}
program "job" {{ command "sh" "-c" "exit 3"; oneshot #true; start-retries 0 }}
program "after" {{
    command "sh" "-c" "date +%s.%N >> {dd}/after.start; exec sleep 100000"
    start-secs 0
    depends-on "job" condition="completed"
}}
"#
    ));
    let d = TestDaemon::start_in(s);
    d.wait_state("eager", "RUNNING");
    // "started" does not wait for slow's start-secs (30 s).
    assert!(stamp(&t, "eager.start") < stamp(&t, "slow.start") + 20.0);
    assert_eq!(d.state_of("slow"), "STARTING", "eager did not wait for RUNNING");
    // "completed" holds even though the job failed (FATAL).
    d.wait_state("after", "RUNNING");
    assert_eq!(d.state_of("job"), "FATAL");
}

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[test]
fn readiness_by_tcp_http_log_and_exec_gates_dependents() {
    let s = Sandbox::new();
    let t = s.path().join("t");
    std::fs::create_dir(&t).expect("dir");
    let (db_port, web_port) = (free_port(), free_port());
    let dd = t.display();
    s.write_config(&format!(
        r#"program "db" {{
    command "sh" "-c" "date +%s.%N >> {dd}/db.start; sleep 2; exec python3 -m http.server {db_port} --bind 127.0.0.1"
    ready tcp={db_port} interval="100ms"
    start-secs 0
}}
program "migrate" {{
    command "sh" "-c" "date +%s.%N >> {dd}/migrate.start; sleep 0.3"
    oneshot #true
    depends-on "db"
}}
program "web" {{
    command "python3" "-m" "http.server" "{web_port}" "--bind" "127.0.0.1"
    depends-on "migrate" condition="completed-successfully"
    ready http="http://127.0.0.1:{web_port}/" interval="100ms"
    health {{ http "http://127.0.0.1:{web_port}/"; interval "200ms"; timeout "5s"; retries 10 }}
    start-secs 0
}}
program "worker" {{
    command "sh" "-c" "date +%s.%N >> {dd}/worker.start; sleep 1; date +%s.%N >> {dd}/worker.said; echo worker up; exec sleep 100000"
    depends-on "web" condition="healthy"
    ready log="worker up"
    start-secs 0
}}
program "last" {{
    command "sh" "-c" "date +%s.%N >> {dd}/last.start; exec sleep 100000"
    depends-on "worker"
    start-secs 0
}}
program "ex" {{
    command "sh" "-c" "sleep 1; touch {dd}/ex.ok; exec sleep 100000"
    ready exec="test -f {dd}/ex.ok" interval="100ms"
    start-secs 0
}}
"#
    ));
    let d = TestDaemon::start_in(s);
    wait_until("last to start", || d.state_of("last") == "RUNNING");
    // db listened only after 2 s: migrate waited for the port, not for RUNNING.
    assert!(stamp(&t, "migrate.start") >= stamp(&t, "db.start") + 1.9);
    // last waited for worker's log line, not for worker's RUNNING.
    assert!(stamp(&t, "last.start") >= stamp(&t, "worker.said"));
    // worker waited for web to be healthy; a loaded machine may since have seen a slow answer,
    // so only readiness is asserted here (health has its own test below).
    let web = d.program("web");
    assert_eq!(web["ready"].as_bool(), Some(true), "{web}");
    wait_until("ex ready by its exec check", || d.program("ex")["ready"] == true);
    assert!(t.join("ex.ok").exists());
    let table = d.svc(&["status"]).stdout;
    assert!(table.lines().next().is_some_and(|h| h.contains("READY")), "{table}");
}

#[test]
fn an_unhealthy_program_is_restarted_and_a_program_not_ready_in_time_fails_its_start() {
    let s = Sandbox::new();
    let t = s.path().join("t");
    std::fs::create_dir(&t).expect("dir");
    let dd = t.display();
    s.write_config(&format!(
        r#"program "flaky" {{
    command "sh" "-c" "touch {dd}/alive; exec sleep 100000"
    start-secs 0
    health {{ exec "test -f {dd}/alive"; interval "200ms"; timeout "1s"; retries 2 }}
}}
program "never" {{
    command "sleep" "100000"
    ready exec="false" interval="100ms"
    start-timeout "1s"
    start-retries 0
    start-secs 0
}}
"#
    ));
    let d = TestDaemon::start_in(s);
    wait_until("flaky healthy", || d.program("flaky")["health"] == "healthy");
    let pid = d.pid_of("flaky");
    std::fs::remove_file(t.join("alive")).expect("make it unhealthy");
    wait_until("flaky restarted", || d.program("flaky")["restarts"] == 1 && d.pid_of("flaky") != pid);
    assert!(d.daemon_stderr().contains("flaky: unhealthy after 2 failed checks"), "{}", d.daemon_stderr());
    wait_until("healthy again (the new run recreated the file)", || d.program("flaky")["health"] == "healthy");
    // `never` never becomes ready: after 1 s it is stopped, a failed start, and with no
    // retries left, FATAL, with the reason.
    d.wait_state("never", "FATAL");
    let never = d.program("never");
    assert!(never["reason"].as_str().is_some_and(|r| r.contains("not ready within 1s (start-timeout)")), "{never}");
}

#[test]
fn sd_notify_and_the_s6_fd_make_programs_ready_and_the_watchdog_restarts_a_silent_one() {
    let s = Sandbox::new();
    let t = s.path().join("t");
    std::fs::create_dir(&t).expect("dir");
    let dd = t.display();
    let notify_py = "import os, socket, time\n\
        time.sleep(1.5)\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
        s.sendto(b'STATUS=warmed up\\nREADY=1', os.environ['NOTIFY_SOCKET'])\n\
        time.sleep(100000)\n";
    std::fs::write(t.join("notify.py"), notify_py).expect("script");
    let systemd_notify = std::path::Path::new("/usr/bin/systemd-notify").exists()
        || std::path::Path::new("/bin/systemd-notify").exists();
    s.write_config(&format!(
        r#"program "py" {{ command "python3" "{dd}/notify.py"; ready "notify"; start-secs 0 }}
program "after-py" {{ command "sh" "-c" "date +%s.%N >> {dd}/after.start; exec sleep 100000"; depends-on "py"; start-secs 0 }}
program "s6" {{ command "sh" "-c" "sleep 1; echo >&3; exec sleep 100000"; ready "fd" 3; start-secs 0 }}
program "dog" {{
    command "sh" "-c" "python3 -c 'import os,socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b\"READY=1\", os.environ[\"NOTIFY_SOCKET\"])'; exec sleep 100000"
    ready "notify"
    watchdog-secs 1
    start-secs 0
}}
{sn}
"#,
        sn = if systemd_notify {
            r#"program "sn" { command "sh" "-c" "systemd-notify --ready --status=from-systemd-notify; exec sleep 100000"; ready "notify"; start-secs 0 }"#
        } else {
            ""
        }
    ));
    let d = TestDaemon::start_in(s);
    wait_until("py ready", || d.program("py")["ready"] == true);
    let py = d.program("py");
    assert_eq!(py["status_text"], "warmed up", "{py}");
    wait_until("after-py started", || d.state_of("after-py") == "RUNNING");
    let spawned = d.program("py")["since"].as_f64().unwrap_or(0.0);
    assert!(stamp(&t, "after.start") >= spawned + 1.4, "after-py waited for READY=1, not for RUNNING");
    wait_until("s6 ready through fd 3", || d.program("s6")["ready"] == true);
    assert_eq!(d.state_of("s6"), "RUNNING");
    if systemd_notify {
        wait_until("systemd-notify's READY=1 counts", || d.program("sn")["ready"] == true);
    } else {
        eprintln!("note: no systemd-notify here; python3's datagram stands in for it");
    }
    // dog said READY=1 and never WATCHDOG=1: it is restarted every second or so.
    wait_until("dog restarted by its watchdog", || d.program("dog")["restarts"].as_u64().unwrap_or(0) >= 1);
    assert!(d.daemon_stderr().contains("watchdog"), "{}", d.daemon_stderr());
    assert!(d.svc(&["status", "py"]).stdout.contains("\"warmed up\""));
}

#[test]
fn start_no_wait_returns_before_the_program_is_ready() {
    let d = TestDaemon::start(
        r#"program "slow" { command "sleep" "100000"; autostart #false; start-secs 3 }
program "after" { command "sleep" "100000"; autostart #false; start-secs 0; depends-on "slow" }"#,
    );
    let run = d.svc(&["start", "--no-wait", "after", "nope"]);
    assert_eq!(run.code, 1, "an unknown target is still an error: {run:?}");
    assert!(run.stdout.contains("after") && run.stdout.contains("under way"), "{run:?}");
    // Answered at once: slow is STARTING (start-secs 3), after waits for it.
    assert_eq!(d.state_of("slow"), "STARTING");
    assert_eq!(d.program("after")["waiting"], "waiting for slow to be ready");
    wait_until("after to start once slow is ready", || d.state_of("after") == "RUNNING");
}

/// The command line of `pid`, arguments joined by spaces.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| b.split(|&c| c == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

/// Marked processes of `d` whose command line is `line`.
fn running(d: &TestDaemon, line: &str) -> Vec<u32> {
    d.marked_pids().into_iter().filter(|&p| cmdline(p).trim() == line).collect()
}

#[test]
fn exec_checks_run_in_the_probe_runner_which_stops_them_with_their_program_and_can_die() {
    let s = Sandbox::new();
    let t = s.path().join("t");
    std::fs::create_dir(&t).expect("dir");
    std::fs::write(t.join("ok"), "").expect("file");
    let dd = t.display();
    s.write_config(&format!(
        r#"program "slow" {{ command "sleep" "100000"; start-secs 0; health {{ exec "sleep 7771"; interval "1h"; timeout "1h" }} }}
program "quick" {{
    command "sleep" "100001"
    start-secs 0
    health {{ exec "test -f '{dd}/ok'"; interval "100ms"; retries 1; on-unhealthy "ignore" }}
}}
"#
    ));
    let mut d = TestDaemon::start_in(s);
    wait_until("quick healthy", || d.program("quick")["health"] == "healthy");
    // One runner, the daemon's child; the checks are its children, not the daemon's.
    // The daemon runs as svc-daemon (see cli::daemon_runs_as_the_daemon_only_binary...), and
    // starts the runner from its own executable.
    let daemon_bin = std::path::Path::new(&crate::support::svc_bin()).with_file_name("svc-daemon");
    let runner_line = format!("{} __probe-runner", daemon_bin.display());
    let runners = |d: &TestDaemon| running(d, &runner_line);
    let runner = runners(&d);
    assert_eq!(runner.len(), 1, "one runner: {runner:?}");
    assert_eq!(parent(runner[0]), Some(d.daemon_pid()));
    wait_until("slow's check running", || !running(&d, "sleep 7771").is_empty());
    let check = running(&d, "sleep 7771");
    assert_eq!(parent(check[0]), Some(runner[0]), "a simple command runs without sh, from the runner");

    // A check under way when its program stops is killed with it.
    assert_eq!(d.svc(&["stop", "slow"]).code, 0);
    wait_until("slow's check gone", || running(&d, "sleep 7771").is_empty());

    // Without the runner, checks go on (in the daemon): quick turns unhealthy, then healthy.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(runner[0] as i32), nix::sys::signal::SIGKILL).expect("kill");
    wait_until("the runner's end logged", || d.daemon_stderr().contains("probe runner"));
    std::fs::remove_file(t.join("ok")).expect("rm");
    wait_until("quick unhealthy", || d.program("quick")["health"] == "unhealthy");
    std::fs::write(t.join("ok"), "").expect("file");
    wait_until("quick healthy again", || d.program("quick")["health"] == "healthy");

    // A new runner comes a second later; a daemon killed outright takes it with it, and it
    // takes the checks under way.
    wait_until("a new runner", || runners(&d).len() == 1);
    assert_eq!(d.svc(&["start", "slow"]).code, 0);
    wait_until("slow's check running again", || running(&d, "sleep 7771").len() == 1);
    assert_eq!(parent(running(&d, "sleep 7771")[0]), Some(runners(&d)[0]));
    let programs: Vec<u32> = ["slow", "quick"].iter().filter_map(|n| d.pid_of(n)).collect();
    let mut daemon = d.child.take().expect("daemon");
    daemon.kill().expect("SIGKILL the daemon");
    daemon.wait().expect("reap the daemon");
    wait_until("runner and check gone", || runners(&d).is_empty() && running(&d, "sleep 7771").is_empty());
    // The programs outlive a killed daemon on purpose (the next one stops them): not here.
    for pid in programs {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL);
    }
}
