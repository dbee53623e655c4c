//! `svc top` in a real terminal: tmux runs it, send-keys presses keys, capture-pane reads what
//! a person would see.

use crate::support::{Sandbox, TestDaemon, svc_bin, wait_until};
use crate::terminal::Tmux;
use std::process::Command;

/// The screen as text, without colours.
fn text(t: &Tmux) -> String {
    let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &t.name]).output().expect("capture-pane");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tmux format variable of the pane (`alternate_on`, `cursor_flag`, `window_width`).
fn pane(t: &Tmux, var: &str) -> String {
    let out = Command::new("tmux")
        .args(["display-message", "-p", "-t", &t.name, &format!("#{{{var}}}")])
        .output()
        .expect("display-message");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The line of the table that shows `name`.
fn row(screen: &str, name: &str) -> Option<String> {
    screen.lines().find(|l| l.split_whitespace().next() == Some(name)).map(str::to_owned)
}

/// Whether the escape sequences in `screen` set a foreground or background colour (39 and 49,
/// the defaults, are not colours).
fn has_colour(screen: &str) -> bool {
    screen.split("\x1b[").skip(1).any(|seq| {
        let params = seq.split('m').next().unwrap_or_default();
        params.split(';').any(|p| matches!(p.parse::<u8>(), Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)))
    })
}

/// `svc top`, then what the shell sees once it ends: its exit code and the terminal's modes.
fn top_then_report(extra: &str) -> String {
    format!("{extra}{} top; echo exit=$?; stty -a", svc_bin())
}

#[test]
fn top_shows_a_crash_live_follows_a_resize_and_q_restores_the_terminal() {
    let d = TestDaemon::start(
        r#"
        program "app" { command "sh" "-c" "echo hello from app; exec sleep 1000"; start-secs 0 }
        program "victim" { command "sleep" "1000"; start-secs 0; autorestart #false }
        "#,
    );
    d.wait_state("app", "RUNNING");
    d.wait_state("victim", "RUNNING");
    let t = Tmux::start_sized(&d, &top_then_report(""), 80, 24);
    wait_until("the table", || row(&text(&t), "app").is_some_and(|r| r.contains("RUNNING")));
    let screen = text(&t);
    for column in ["NAME", "STATE", "READY", "PID", "UPTIME", "RESTARTS", "CPU", "MEM"] {
        assert!(screen.contains(column), "{column} header at 80 columns:\n{screen}");
    }
    assert!(!screen.contains("DETAIL"), "no room for DETAIL at 80 columns:\n{screen}");
    let coloured = t.screen();
    assert!(
        coloured.contains("\x1b[32mRUNNING") || coloured.contains("\x1b[38;5;2mRUNNING"),
        "RUNNING in green: {coloured:?}"
    );
    let victim = d.pid_of("victim").expect("victim runs");
    assert!(row(&screen, "victim").is_some_and(|r| r.contains(&victim.to_string())), "{screen}");
    // The first row is selected, and its log is followed.
    wait_until("the selected program's log", || text(&t).contains("hello from app"));

    // A crash shows without a key being pressed: the stream brings it.
    let _ = Command::new("kill").args(["-KILL", &victim.to_string()]).status();
    wait_until("victim EXITED on screen", || row(&text(&t), "victim").is_some_and(|r| r.contains("EXITED")));
    // At 80 columns the detail of the selected program goes above its log.
    t.keys(&["j"]);
    wait_until("victim's detail", || text(&t).contains("victim: last run: killed by SIGKILL"));

    assert!(
        Command::new("tmux")
            .args(["resize-window", "-t", &t.name, "-x", "200", "-y", "50"])
            .status()
            .expect("resize")
            .success()
    );
    wait_until("the wide layout", || text(&t).contains("DETAIL"));
    let screen = text(&t);
    assert_eq!(screen.lines().count(), 50, "{screen}");
    assert!(
        row(&screen, "victim").is_some_and(|r| r.contains("killed by SIGKILL")),
        "the detail column at 200 columns:\n{screen}"
    );
    assert!(screen.lines().last().is_some_and(|l| l.contains("q quit")), "the footer moved to the bottom:\n{screen}");

    t.keys(&["q"]);
    wait_until("svc top to end", || text(&t).contains("exit=0"));
    assert_eq!(pane(&t, "alternate_on"), "0", "back on the main screen");
    assert_eq!(pane(&t, "cursor_flag"), "1", "cursor shown");
    let after = text(&t);
    // Raw mode is off again: the line discipline echoes and edits lines.
    let modes: Vec<&str> = after.split_whitespace().collect();
    assert!(modes.contains(&"icanon") && modes.contains(&"echo"), "terminal modes after exit:\n{after}");
}

#[test]
fn a_key_press_restarts_the_selected_program_after_a_confirmation() {
    let d = TestDaemon::start(
        r#"
        program "alpha" { command "sleep" "1000"; start-secs 0 }
        program "beta" { command "sleep" "1000"; start-secs 0 }
        "#,
    );
    d.wait_state("alpha", "RUNNING");
    d.wait_state("beta", "RUNNING");
    let (alpha, beta) = (d.pid_of("alpha").expect("alpha"), d.pid_of("beta").expect("beta"));
    let t = Tmux::start_sized(&d, &top_then_report("env NO_COLOR=1 "), 80, 24);
    wait_until("the table", || row(&text(&t), "beta").is_some_and(|r| r.contains(&beta.to_string())));
    let plain = t.screen();
    assert!(!has_colour(&plain), "no colours with NO_COLOR: {plain:?}");
    assert!(plain.contains("\x1b[7m") || plain.contains(";7m"), "the selection in reverse video: {plain:?}");
    // Filter down to beta, then restart it.
    t.keys(&["/"]);
    t.keys(&["-l", "bet"]);
    wait_until("the filter", || row(&text(&t), "alpha").is_none());
    t.keys(&["Enter"]);
    t.keys(&["r"]);
    wait_until("the confirmation", || text(&t).contains("Restart beta?"));
    assert_eq!(d.pid_of("beta"), Some(beta), "nothing happens before y");
    t.keys(&["y"]);
    wait_until("beta restarted", || d.pid_of("beta").is_some_and(|p| p != beta));
    let new = d.pid_of("beta").expect("beta runs again");
    wait_until("the new pid on screen", || row(&text(&t), "beta").is_some_and(|r| r.contains(&new.to_string())));
    wait_until("the daemon's answer in the footer", || text(&t).contains("beta: started"));
    assert_eq!(d.pid_of("alpha"), Some(alpha), "only the selected program");

    // A stop asks first too, and anything but y cancels it.
    t.keys(&["x"]);
    wait_until("the confirmation", || text(&t).contains("Stop beta?"));
    t.keys(&["n"]);
    wait_until("cancelled", || text(&t).contains("cancelled"));
    assert_eq!(d.state_of("beta"), "RUNNING");

    t.keys(&["?"]);
    wait_until("the help", || text(&t).contains("reload the config"));
    t.keys(&["C-c"]);
    wait_until("Ctrl-C ends it", || text(&t).contains("exit=0"));
}

#[test]
fn top_ends_with_a_message_when_the_daemon_goes_away() {
    let mut d = TestDaemon::start(r#"program "p" { command "sleep" "1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    let t = Tmux::start_sized(&d, &top_then_report(""), 80, 24);
    wait_until("the table", || row(&text(&t), "p").is_some_and(|r| r.contains("RUNNING")));
    assert_eq!(d.svc(&["shutdown"]).code, 0);
    d.wait_exit();
    wait_until("the message on the restored screen", || text(&t).contains("svc: the daemon has shut down"));
    let screen = text(&t);
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(!screen.contains("panicked"), "{screen}");
    assert_eq!(pane(&t, "alternate_on"), "0");
}

#[test]
fn a_read_only_member_sees_everything_and_is_told_why_it_cannot_act() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to create a group and act as its member (CI runs it as root)");
        return;
    }
    assert!(Command::new("groupadd").args(["-f", "svcshare"]).status().expect("groupadd").success());
    let gid = nix::unistd::Group::from_name("svcshare").expect("lookup").expect("group").gid.as_raw();
    let s = Sandbox::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    s.write_config(
        r#"access { group "svcshare" read-only=#true; }
        program "p" { command "sh" "-c" "echo visible to members; exec sleep 1000"; start-secs 0 }"#,
    );
    let d = TestDaemon::start_in(s);
    d.wait_state("p", "RUNNING");
    let pid = d.pid_of("p").expect("p runs");
    let member = format!("setpriv --reuid=65534 --regid={gid} --clear-groups ");
    let t = Tmux::start_sized(&d, &top_then_report(&member), 100, 30);
    wait_until("the table, for a member", || row(&text(&t), "p").is_some_and(|r| r.contains(&pid.to_string())));
    wait_until("its log, for a member", || text(&t).contains("visible to members"));
    t.keys(&["x"]);
    wait_until("the confirmation", || text(&t).contains("Stop p?"));
    t.keys(&["y"]);
    wait_until("the daemon's refusal", || text(&t).contains("read-only access"));
    assert_eq!(d.state_of("p"), "RUNNING");
    t.keys(&["q"]);
    wait_until("svc top to end", || text(&t).contains("exit=0"));
}

#[test]
fn a_closed_terminal_ends_it() {
    let d = TestDaemon::start(r#"program "p" { command "sleep" "1000"; start-secs 0 }"#);
    d.wait_state("p", "RUNNING");
    let t = Tmux::start_sized(&d, &format!("{} top", svc_bin()), 80, 24);
    wait_until("the table", || row(&text(&t), "p").is_some_and(|r| r.contains("RUNNING")));
    let tops = || -> Vec<u32> {
        d.marked_pids()
            .into_iter()
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                cmdline.split(|&b| b == 0).any(|arg| arg == b"top")
            })
            .collect()
    };
    assert_eq!(tops().len(), 1, "svc top runs");
    // The terminal goes away under it (as when its window is closed).
    drop(t);
    wait_until("svc top to end with its terminal", || tops().is_empty());
}

#[test]
fn a_reload_from_the_dashboard_shows_added_programs_and_drops_removed_ones() {
    let d = TestDaemon::start(r#"program "old" { command "sleep" "1000"; start-secs 0 }"#);
    d.wait_state("old", "RUNNING");
    let t = Tmux::start_sized(&d, &top_then_report(""), 80, 24);
    wait_until("the table", || row(&text(&t), "old").is_some_and(|r| r.contains("RUNNING")));
    d.write_config(r#"program "new" { command "sleep" "1000"; start-secs 0 }"#);
    t.keys(&["R"]);
    wait_until("the confirmation", || text(&t).contains("Reload the config"));
    t.keys(&["y"]);
    wait_until("the added program, running", || row(&text(&t), "new").is_some_and(|r| r.contains("RUNNING")));
    wait_until("the removed one gone", || row(&text(&t), "old").is_none());
    wait_until("the daemon's answer", || text(&t).contains("reloaded: 1 added, 1 removed"));
    t.keys(&["q"]);
    wait_until("svc top to end", || text(&t).contains("exit=0"));
}
