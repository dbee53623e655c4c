//! launchd LaunchAgent (macOS): `~/Library/LaunchAgents/dev.svc.daemon.plist`, loaded with
//! `launchctl bootstrap gui/UID`.
//!
//! launchd runs no shell: every path in the plist is absolute and XML-escaped, and PATH is set
//! explicitly because launchd's default (`/usr/bin:/bin:/usr/sbin:/sbin`) lacks the user's
//! usual bins. An agent in the `gui/UID` domain starts at GUI login and stops at logout; the
//! headless `user/UID` domain is not handled here (platform.md §6b).

use super::{Method, Plan, Status, Step, Target, argv, quote, read_existing, run, text};
use std::path::PathBuf;

/// The job's label, also the plist's file name.
pub const LABEL: &str = "dev.svc.daemon";

const TEMPLATE: &str = include_str!("../../templates/svc.plist");

/// `~/Library/LaunchAgents/dev.svc.daemon.plist`.
pub fn plist_path(t: &Target) -> PathBuf {
    t.home.join("Library/LaunchAgents").join(format!("{LABEL}.plist"))
}

/// The PATH the daemon (and so every program) gets: the user's own bins first.
pub fn path_env(t: &Target) -> String {
    let home = |p: &str| text(&t.home.join(p));
    [home(".cargo/bin"), home(".local/bin")]
        .into_iter()
        .chain(["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(String::from))
        .collect::<Vec<_>>()
        .join(":")
}

/// The plist's text.
pub fn plist(t: &Target) -> String {
    let args: String =
        t.daemon_argv().iter().map(|a| format!("\t\t<string>{}</string>\n", quote::xml_escape(a))).collect();
    let log = |name: &str| quote::xml_escape(&text(&t.log_dir.join(name)));
    quote::render(
        TEMPLATE,
        &[
            ("label", LABEL),
            ("program_arguments", &args),
            ("exit_timeout", &t.stop_timeout_secs.to_string()),
            ("stdout_path", &log("daemon.out.log")),
            ("stderr_path", &log("daemon.err.log")),
            ("path", &quote::xml_escape(&path_env(t))),
        ],
    )
}

/// The current state, as far as it matters to a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The plist's content, if it exists.
    pub existing: Option<String>,
    /// `launchctl print gui/UID/dev.svc.daemon` succeeded: the job is loaded.
    pub loaded: bool,
    /// The log directory exists (launchd does not create it).
    pub log_dir_exists: bool,
    /// The user's uid, for the `gui/UID` domain.
    pub uid: u32,
}

/// Reads the current state.
pub fn probe(t: &Target) -> Probe {
    let uid = nix::unistd::getuid().as_raw();
    let loaded = run(&argv(&["launchctl", "print", &service_target(uid)])).is_ok_and(|o| o.ok);
    Probe { existing: read_existing(&plist_path(t)), loaded, log_dir_exists: t.log_dir.is_dir(), uid }
}

fn service_target(uid: u32) -> String {
    format!("gui/{uid}/{LABEL}")
}

fn bootout(uid: u32, may_fail: bool) -> Step {
    Step::Run { argv: argv(&["launchctl", "bootout", &service_target(uid)]), may_fail }
}

/// The plan for installing: write the plist if it differs, then (re)load it.
pub fn install(t: &Target, p: &Probe) -> Plan {
    let path = plist_path(t);
    let mut plan = Plan::new(Method::Launchd, Some(path.clone()));
    let content = plist(t);
    let changed = p.existing.as_deref() != Some(content.as_str());
    if !p.log_dir_exists {
        plan.steps.push(Step::CreateDir { path: t.log_dir.clone(), mode: 0o700 });
    }
    if changed {
        plan.steps.push(Step::WriteFile { path: path.clone(), content, mode: 0o644 });
    }
    if changed || !p.loaded {
        // launchd refuses to bootstrap a loaded job; bootout first (it fails harmlessly when
        // the job is not loaded). A changed plist restarts the daemon and its programs.
        plan.steps.push(bootout(p.uid, true));
        plan.steps.push(Step::Run {
            argv: argv(&["launchctl", "bootstrap", &format!("gui/{}", p.uid), &text(&path)]),
            may_fail: false,
        });
        plan.starts_daemon = !p.loaded;
        if p.loaded {
            plan.notes.push("the agent is reloaded: svc restarts with your programs.".to_owned());
        }
    }
    plan.notes.push(format!(
        "the agent starts at GUI login and stops at logout; its own output goes to {}.",
        t.log_dir.join("daemon.err.log").display()
    ));
    plan
}

/// The plan for uninstalling: unload the job (stopping svc), remove the plist.
pub fn uninstall(t: &Target, p: &Probe) -> Plan {
    let path = plist_path(t);
    let mut plan = Plan::new(Method::Launchd, Some(path.clone()));
    if p.loaded {
        plan.steps.push(bootout(p.uid, false));
    }
    if p.existing.is_some() {
        plan.steps.push(Step::RemoveFile { path });
    }
    plan
}

/// Whether the plist is installed and loaded.
pub fn status(t: &Target, p: &Probe) -> Status {
    let mut facts = Vec::new();
    if let Some(existing) = &p.existing {
        facts.push(("current", if *existing == plist(t) { "yes" } else { "no: run 'svc install' to update" }.into()));
    }
    facts.push(("loaded", if p.loaded { "yes" } else { "no" }.into()));
    Status { method: Method::Launchd, installed: p.existing.is_some(), location: Some(plist_path(t)), facts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::test_support::target;

    fn probe_with(existing: Option<String>, loaded: bool) -> Probe {
        Probe { existing, loaded, log_dir_exists: true, uid: 501 }
    }

    #[test]
    fn plist_has_escaped_absolute_paths() {
        let mut t = target();
        t.config = "/Users/a & b/<svc>.kdl".into();
        let p = plist(&t);
        assert!(p.contains("<string>/Users/a &amp; b/&lt;svc&gt;.kdl</string>"), "{p}");
        assert!(p.contains("<string>/home/al ice/.cargo/bin/svc</string>\n\t\t<string>daemon</string>"), "{p}");
        assert!(p.contains("<string>/home/al ice/Library/Logs/svc/daemon.err.log</string>"), "{p}");
        assert!(p.contains("<integer>42</integer>"));
        assert!(!p.contains("{{"));
    }

    #[test]
    fn path_has_the_usual_bins() {
        assert_eq!(
            path_env(&target()),
            "/home/al ice/.cargo/bin:/home/al ice/.local/bin:/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        );
    }

    #[test]
    fn fresh_install_writes_and_bootstraps() {
        let t = target();
        let plan = install(&t, &Probe { log_dir_exists: false, ..probe_with(None, false) });
        let steps: Vec<_> = plan.steps.iter().map(Step::describe).collect();
        assert_eq!(
            steps,
            [
                "create directory /home/al ice/Library/Logs/svc (mode 0700)".to_owned(),
                "write /home/al ice/Library/LaunchAgents/dev.svc.daemon.plist (mode 0644)".to_owned(),
                "run launchctl bootout gui/501/dev.svc.daemon (a failure is ignored)".to_owned(),
                "run launchctl bootstrap gui/501 '/home/al ice/Library/LaunchAgents/dev.svc.daemon.plist'".to_owned(),
            ]
        );
        assert!(plan.starts_daemon);
    }

    #[test]
    fn reinstall_changes_nothing_and_unload_is_uninstalled() {
        let t = target();
        assert!(install(&t, &probe_with(Some(plist(&t)), true)).is_empty());
        let plan = uninstall(&t, &probe_with(Some(plist(&t)), true));
        assert_eq!(plan.steps, [bootout(501, false), Step::RemoveFile { path: plist_path(&t) }]);
        assert!(uninstall(&t, &probe_with(None, false)).is_empty());
    }
}
