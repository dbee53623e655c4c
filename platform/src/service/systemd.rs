//! systemd user unit (Linux): `~/.config/systemd/user/svc.service`, enabled with
//! `systemctl --user enable --now`.
//!
//! `systemctl --user` needs the user manager's bus (`$XDG_RUNTIME_DIR/bus`), which is missing
//! under `su`, in cron and in some SSH setups: [`user_manager`] checks, and the plan lists it as
//! a problem with what to do. Whether the manager runs without a login session is the user's
//! *linger* setting, which the plan reports (`loginctl enable-linger` needs no admin on
//! standard systems: polkit's `set-self-linger` is `allow_any`).

use super::{Method, Plan, Status, Step, Target, argv, quote, read_existing, run};
use std::path::PathBuf;

/// The unit's name.
pub const UNIT_NAME: &str = "svc.service";

const TEMPLATE: &str = include_str!("../../templates/svc.service");

/// `$XDG_CONFIG_HOME/systemd/user/svc.service`.
pub fn unit_path(t: &Target) -> PathBuf {
    t.config_home.join("systemd/user").join(UNIT_NAME)
}

/// The symlink `systemctl enable` makes for `WantedBy=default.target`.
fn wants_link(t: &Target) -> PathBuf {
    t.config_home.join("systemd/user/default.target.wants").join(UNIT_NAME)
}

/// The unit file's text.
pub fn unit(t: &Target) -> String {
    quote::render(
        TEMPLATE,
        &[
            ("exec_start", &quote::systemd_command(&t.daemon_argv())),
            ("exec_reload", &quote::systemd_command(&t.reload_argv())),
            ("timeout_stop_sec", &t.stop_timeout_secs.to_string()),
        ],
    )
}

fn systemctl(args: &[&str]) -> Vec<String> {
    let mut v = argv(&["systemctl", "--user"]);
    v.extend(argv(args));
    v
}

/// `Ok` when `systemctl --user` can talk to the user manager; otherwise why not.
pub fn user_manager() -> Result<(), String> {
    match run(&systemctl(&["show-environment"])) {
        Ok(out) if out.ok => Ok(()),
        Ok(out) => Err(out.detail()),
        Err(e) => Err(format!("cannot run systemctl: {e}")),
    }
}

/// The current state, as far as it matters to a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The unit file's content, if it exists.
    pub existing: Option<String>,
    /// The `default.target.wants` symlink exists.
    pub wants_link: bool,
    /// `Ok` when `systemctl --user` works, else why not.
    pub manager: Result<(), String>,
    /// `systemctl --user is-enabled svc.service` (`enabled`, `disabled`, ...).
    pub enabled: Option<String>,
    /// `systemctl --user is-active svc.service` (`active`, `inactive`, `failed`, ...).
    pub active: Option<String>,
    /// The user's linger setting, when `loginctl` could tell.
    pub linger: Option<bool>,
}

/// Reads the current state (files, `systemctl --user is-enabled/is-active`, linger).
pub fn probe(t: &Target) -> Probe {
    let manager = user_manager();
    let query = |verb: &str| {
        // is-enabled/is-active exit non-zero for "disabled"/"inactive" but still print the state.
        run(&systemctl(&[verb, UNIT_NAME])).ok().map(|o| o.stdout.trim().to_owned()).filter(|s| !s.is_empty())
    };
    let (enabled, active) = if manager.is_ok() { (query("is-enabled"), query("is-active")) } else { (None, None) };
    Probe {
        existing: read_existing(&unit_path(t)),
        wants_link: wants_link(t).symlink_metadata().is_ok(),
        manager,
        enabled,
        active,
        linger: linger(),
    }
}

/// `loginctl show-user UID -p Linger`: `Linger=yes`/`Linger=no`.
fn linger() -> Option<bool> {
    let uid = nix::unistd::getuid().as_raw().to_string();
    let out = run(&argv(&["loginctl", "show-user", &uid, "-p", "Linger"])).ok().filter(|o| o.ok)?;
    parse_linger(&out.stdout)
}

fn parse_linger(stdout: &str) -> Option<bool> {
    match stdout.lines().find_map(|l| l.trim().strip_prefix("Linger="))? {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn linger_note(linger: Option<bool>) -> String {
    match linger {
        Some(true) => "linger is on: svc.service starts at boot and keeps running after you log out.".to_owned(),
        Some(false) => "linger is off: svc.service starts when you log in and stops when your last session ends. \
                        To start it at boot and keep it after logout, run 'loginctl enable-linger' (no admin \
                        needed on standard systems), then check 'loginctl show-user $USER -p Linger'."
            .to_owned(),
        None => "could not read your linger setting ('loginctl show-user $USER -p Linger'); with linger off, \
                 svc.service runs only while you are logged in ('loginctl enable-linger' turns it on)."
            .to_owned(),
    }
}

fn manager_problem(e: &str) -> String {
    format!(
        "systemctl --user does not work here ({e}). The user manager's bus is missing, as under 'su', \
         in cron and some SSH setups: log in directly (or 'loginctl enable-linger' and a new login) and \
         run 'svc install' again, or use '--method cron'."
    )
}

/// The plan for installing: write the unit if it differs, reload, enable and start it.
pub fn install(t: &Target, p: &Probe) -> Plan {
    let path = unit_path(t);
    let mut plan = Plan::new(Method::Systemd, Some(path.clone()));
    if let Err(e) = &p.manager {
        plan.problems.push(manager_problem(e));
    }
    let exe = super::text(&t.exe);
    if !quote::systemd_exe_is_safe(&exe) {
        plan.problems.push(format!(
            "systemd refuses to run an executable whose path has a quote or a backslash ({exe}): \
             move svc to another directory, or use '--method cron' or '--method profile'."
        ));
    }
    let text = unit(t);
    let changed = p.existing.as_deref() != Some(text.as_str());
    // "activating"/"reloading" are the service manager's own daemon too: do not start another.
    let running = matches!(p.active.as_deref(), Some("active" | "activating" | "reloading"));
    let active = p.active.as_deref() == Some("active");
    if changed {
        plan.steps.push(Step::WriteFile { path, content: text, mode: 0o644 });
        plan.steps.push(Step::Run { argv: systemctl(&["daemon-reload"]), may_fail: false });
    }
    if changed || p.enabled.as_deref() != Some("enabled") || !active {
        plan.steps.push(Step::Run { argv: systemctl(&["enable", "--now", UNIT_NAME]), may_fail: false });
        plan.starts_daemon = !running;
    }
    if changed && running && p.existing.is_some() {
        plan.notes.push(
            "svc.service keeps running with its previous unit until 'systemctl --user restart svc.service' \
             (which restarts your programs)."
                .to_owned(),
        );
    }
    plan.notes.push(linger_note(p.linger));
    plan
}

/// The plan for uninstalling: stop and disable the unit, remove it, reload.
pub fn uninstall(t: &Target, p: &Probe) -> Plan {
    let path = unit_path(t);
    let mut plan = Plan::new(Method::Systemd, Some(path.clone()));
    if p.existing.is_none() && !p.wants_link {
        return plan;
    }
    match &p.manager {
        Ok(()) => {
            if p.existing.is_some() {
                plan.steps.push(Step::Run { argv: systemctl(&["disable", "--now", UNIT_NAME]), may_fail: false });
            } else {
                plan.steps.push(Step::RemoveFile { path: wants_link(t) });
            }
            if p.existing.is_some() {
                plan.steps.push(Step::RemoveFile { path });
            }
            plan.steps.push(Step::Run { argv: systemctl(&["daemon-reload"]), may_fail: false });
        }
        Err(e) => {
            // Without the manager, do by hand what `disable` does: remove the wants link.
            if p.wants_link {
                plan.steps.push(Step::RemoveFile { path: wants_link(t) });
            }
            if p.existing.is_some() {
                plan.steps.push(Step::RemoveFile { path });
            }
            plan.notes.push(format!(
                "systemctl --user does not work here ({e}), so a running svc.service was not stopped; \
                 'svc shutdown' stops the daemon."
            ));
        }
    }
    plan
}

/// Whether the unit is installed, enabled and active.
pub fn status(t: &Target, p: &Probe) -> Status {
    let mut facts = Vec::new();
    if let Some(existing) = &p.existing {
        facts.push(("current", if *existing == unit(t) { "yes" } else { "no: run 'svc install' to update" }.into()));
    }
    match &p.manager {
        Ok(()) => {
            facts.push(("enabled", p.enabled.clone().unwrap_or_else(|| "unknown".into())));
            facts.push(("active", p.active.clone().unwrap_or_else(|| "unknown".into())));
        }
        Err(e) => facts.push(("systemctl", format!("does not work here: {e}"))),
    }
    facts.push(("linger", p.linger.map_or("unknown", |l| if l { "yes" } else { "no" }).into()));
    Status { method: Method::Systemd, installed: p.existing.is_some(), location: Some(unit_path(t)), facts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::test_support::target;

    fn probe_with(existing: Option<String>, enabled: &str, active: &str) -> Probe {
        Probe {
            existing,
            wants_link: enabled == "enabled",
            manager: Ok(()),
            enabled: Some(enabled.into()),
            active: Some(active.into()),
            linger: Some(false),
        }
    }

    #[test]
    fn unit_has_the_required_settings() {
        let u = unit(&target());
        for line in [
            "Type=notify",
            "NotifyAccess=main",
            r#"ExecStart="/home/al ice/.cargo/bin/svc" daemon --config "/home/al ice/Library/Application Support/svc/svc.kdl""#,
            r#"ExecReload="/home/al ice/.cargo/bin/svc" reload --config "/home/al ice/Library/Application Support/svc/svc.kdl""#,
            "KillMode=mixed",
            "TimeoutStopSec=42",
            "Restart=on-failure",
            "WantedBy=default.target",
        ] {
            assert!(u.lines().any(|l| l == line), "missing {line:?} in\n{u}");
        }
        assert!(!u.contains("{{"), "{u}");
    }

    #[test]
    fn fresh_install_writes_reloads_enables() {
        let t = target();
        let plan = install(&t, &probe_with(None, "not-found", "inactive"));
        let kinds: Vec<_> = plan.steps.iter().map(Step::describe).collect();
        assert_eq!(
            kinds,
            [
                format!("write {} (mode 0644)", unit_path(&t).display()),
                "run systemctl --user daemon-reload".to_owned(),
                "run systemctl --user enable --now svc.service".to_owned(),
            ]
        );
        assert!(plan.starts_daemon);
        assert!(plan.problems.is_empty());
        assert!(plan.notes.iter().any(|n| n.contains("loginctl enable-linger")), "{:?}", plan.notes);
    }

    #[test]
    fn reinstall_changes_nothing() {
        let t = target();
        let plan = install(&t, &probe_with(Some(unit(&t)), "enabled", "active"));
        assert!(plan.is_empty(), "{:?}", plan.steps);
        assert!(!plan.starts_daemon);
    }

    #[test]
    fn same_unit_but_stopped_is_started() {
        let t = target();
        let plan = install(&t, &probe_with(Some(unit(&t)), "enabled", "failed"));
        assert_eq!(plan.steps, [Step::Run { argv: systemctl(&["enable", "--now", UNIT_NAME]), may_fail: false }]);
    }

    #[test]
    fn changed_unit_while_running_is_rewritten_and_noted() {
        let t = target();
        let plan = install(&t, &probe_with(Some("old".into()), "enabled", "active"));
        assert_eq!(plan.steps.len(), 3);
        assert!(!plan.starts_daemon);
        assert!(plan.notes.iter().any(|n| n.contains("restart svc.service")));
    }

    #[test]
    fn no_user_manager_is_a_problem() {
        let p = Probe { manager: Err("Failed to connect to bus".into()), ..probe_with(None, "", "") };
        let plan = install(&target(), &p);
        assert!(plan.problems[0].contains("Failed to connect to bus") && plan.problems[0].contains("--method cron"));
    }

    #[test]
    fn an_executable_systemd_refuses_is_a_problem() {
        let t = Target { exe: "/home/o'brien/bin/svc".into(), ..target() };
        let plan = install(&t, &probe_with(None, "not-found", "inactive"));
        assert!(plan.problems.iter().any(|p| p.contains("quote or a backslash")), "{:?}", plan.problems);
    }

    #[test]
    fn uninstall_disables_removes_reloads() {
        let t = target();
        let plan = uninstall(&t, &probe_with(Some(unit(&t)), "enabled", "active"));
        assert_eq!(
            plan.steps,
            [
                Step::Run { argv: systemctl(&["disable", "--now", UNIT_NAME]), may_fail: false },
                Step::RemoveFile { path: unit_path(&t) },
                Step::Run { argv: systemctl(&["daemon-reload"]), may_fail: false },
            ]
        );
        assert!(uninstall(&t, &probe_with(None, "not-found", "inactive")).is_empty());
    }

    #[test]
    fn uninstall_without_a_manager_removes_the_files() {
        let t = target();
        let p = Probe { wants_link: true, manager: Err("no bus".into()), ..probe_with(Some(unit(&t)), "", "") };
        let plan = uninstall(&t, &p);
        assert_eq!(plan.steps, [Step::RemoveFile { path: wants_link(&t) }, Step::RemoveFile { path: unit_path(&t) }]);
        assert!(plan.notes[0].contains("svc shutdown"));
    }

    #[test]
    fn linger_output_is_parsed() {
        assert_eq!(parse_linger("Linger=yes\n"), Some(true));
        assert_eq!(parse_linger("Linger=no\n"), Some(false));
        assert_eq!(parse_linger(""), None);
    }
}
