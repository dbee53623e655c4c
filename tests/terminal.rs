//! The interactive parts in a real terminal: tmux runs svc, send-keys types, capture-pane
//! reads the screen (with colours).

use crate::support::{TestDaemon, wait_until};
use std::process::Command;

/// A tmux session running one shell command; killed on drop.
pub(crate) struct Tmux {
    pub(crate) name: String,
}

impl Tmux {
    fn start(d: &TestDaemon, command: &str) -> Tmux {
        Tmux::start_sized(d, command, 160, 40)
    }

    /// A session of `width` x `height` running `command` with the sandbox's environment.
    pub(crate) fn start_sized(d: &TestDaemon, command: &str, width: u16, height: u16) -> Tmux {
        let name = format!("svct{}", std::process::id() ^ (d.daemon_pid() << 8));
        // The pane's shell gets the sandbox's environment, as the svc commands in tests do.
        let cmd = d.command(&[]);
        let env: Vec<String> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, shell_quote(v?.to_str()?))))
            .collect();
        // The tmux server's environment (inherited from whoever started it) must not decide
        // about colour: NO_COLOR there would hide what the tests look for.
        let line = format!("env -u NO_COLOR {} {command}; sleep 60", env.join(" "));
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", &width.to_string(), "-y", &height.to_string(), &line])
            .env_remove("TMUX")
            .status()
            .expect("tmux");
        assert!(ok.success(), "tmux new-session");
        Tmux { name }
    }

    pub(crate) fn screen(&self) -> String {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-e", "-t", &self.name]).output().expect("capture");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().expect("send-keys").success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.name]).status();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn status_is_coloured_on_a_terminal_and_plain_in_a_pipe() {
    let d = TestDaemon::start(
        r#"
        program "up" { command "sleep 1000"; start-secs 0 }
        program "down" { command "sleep 1000"; autostart #false }
        "#,
    );
    d.wait_state("up", "RUNNING");
    let t = Tmux::start(&d, &format!("{} status", crate::support::svc_bin()));
    wait_until("status on screen", || t.screen().contains("NAME"));
    let screen = t.screen();
    assert!(screen.contains("\x1b[32mRUNNING"), "green RUNNING: {screen:?}");
    // Columns stay aligned with the escapes in place.
    let plain = d.svc(&["status"]).stdout;
    assert!(!plain.contains('\x1b'), "no colour in a pipe");
    let row = plain.lines().find(|l| l.starts_with("up")).expect("row");
    let col = row.find("RUNNING").expect("state column");
    let header_col = plain.lines().next().expect("header").find("STATE").expect("STATE");
    assert_eq!(col, header_col);
}

#[test]
fn edit_asks_again_after_an_error() {
    let d = TestDaemon::start(r#"program "a" { command "sleep 1000"; start-secs 0 }"#);
    let editor = d.path().join("editor.sh");
    // First run writes a broken config, the second a good one.
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\nif [ -e {dir}/edited-once ]; then\n  printf 'program \"a\" {{ command \"sleep 1000\"; start-secs 0; }}\\nprogram \"c\" {{ command \"sleep 1000\"; start-secs 0; }}\\n' > \"$1\"\nelse\n  touch {dir}/edited-once\n  printf 'program \"a\" {{ comand \"x\" }}\\n' > \"$1\"\nfi\n",
            dir = d.path().display()
        ),
    )
    .expect("editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let t = Tmux::start(&d, &format!("EDITOR={} {} edit", editor.display(), crate::support::svc_bin()));
    wait_until("the question", || t.screen().contains("Edit again? [Y/n]"));
    assert!(t.screen().contains("comand"), "diagnostic shown: {}", t.screen());
    t.keys(&["y", "Enter"]);
    wait_until("saved and reloaded", || t.screen().contains("added: c"));
    assert_eq!(d.state_of("c"), "RUNNING");
}

#[test]
fn long_stop_shows_progress_on_a_terminal() {
    let d = TestDaemon::start(
        r#"
        program "slow" { command "sh" "-c" "trap 'sleep 4; exit 0' TERM; echo ready; while true; do sleep 0.1; done"; start-secs 0 }
        program "quick" { command "sleep 1000"; start-secs 0 }
        "#,
    );
    // "ready" means the trap is set: the stop really takes 4 s, and the progress line (shown
    // after 1 s) stays on screen long enough to be seen.
    wait_until("slow ready", || d.svc(&["logs", "slow"]).stdout.contains("ready"));
    d.wait_state("quick", "RUNNING");
    let t = Tmux::start(&d, &format!("{} stop all", crate::support::svc_bin()));
    wait_until("progress line", || t.screen().contains("1/2 stopped..."));
    wait_until("final lines", || t.screen().contains("slow: stopped"));
    assert!(!t.screen().contains("stopped...\n"), "progress line is cleared: {}", t.screen());
}
