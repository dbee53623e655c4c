//! Reload as a plan: the difference between the running programs and a new config.
//!
//! Pure, so every case is tested here. The supervisor applies the plan: removed and changed
//! programs are stopped (in reverse priority), then added and changed ones are started.
//! Only fields that shape the *process* (command, environment, directory, logs, limits, ...)
//! force a restart; supervision settings (priority, stop-wait, autorestart, ...) are updated
//! in place, so tuning a timeout never bounces a running service.

use crate::config::ProgramSpec;
use crate::protocol::ReloadPlan;

/// Compares `old` (running) with `new` (just loaded), by process name.
pub fn plan<'a>(old: impl IntoIterator<Item = &'a ProgramSpec>, new: &[ProgramSpec]) -> ReloadPlan {
    let old: Vec<&ProgramSpec> = old.into_iter().collect();
    let mut p = ReloadPlan::default();
    for spec in new {
        match old.iter().find(|o| o.name == spec.name) {
            None => p.added.push(spec.name.clone()),
            Some(o) if *o == spec => p.unchanged.push(spec.name.clone()),
            Some(o) if needs_restart(o, spec) => p.changed.push(spec.name.clone()),
            Some(_) => p.updated.push(spec.name.clone()),
        }
    }
    for o in &old {
        if !new.iter().any(|n| n.name == o.name) {
            p.removed.push(o.name.clone());
        }
    }
    p
}

/// True when running `b` differs from running `a`: the process must be restarted.
pub fn needs_restart(a: &ProgramSpec, b: &ProgramSpec) -> bool {
    a.command != b.command
        || a.directory != b.directory
        || a.environment != b.environment
        || a.umask != b.umask
        || a.redirect_stderr != b.redirect_stderr
        || a.stdout_log != b.stdout_log
        || a.stderr_log != b.stderr_log
        || a.log_timestamps != b.log_timestamps
        || a.limits != b.limits
        || a.group != b.group
        || a.program != b.program
        || a.num != b.num
        // What the process is given to signal readiness: NOTIFY_SOCKET, WATCHDOG_USEC, fd N.
        || handed_over(a) != handed_over(b)
        || a.watchdog != b.watchdog
}

/// The part of a program's readiness that shapes its process (its environment or its
/// descriptors); probes, dependencies and health are the daemon's business, updated in place.
fn handed_over(s: &ProgramSpec) -> Option<crate::config::Readiness> {
    use crate::config::Readiness;
    match &s.ready {
        r @ (Readiness::Notify | Readiness::Fd(_)) => Some(r.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(name: &str, cmd: &str) -> ProgramSpec {
        ProgramSpec::new(name, vec![cmd.into()])
    }

    #[test]
    fn readiness_handed_to_the_process_restarts_it_the_rest_updates_in_place() {
        use crate::config::{Condition, Dependency, Readiness};
        let old = spec("a", "x");
        let mut notify = old.clone();
        notify.ready = Readiness::Notify;
        assert!(needs_restart(&old, &notify), "NOTIFY_SOCKET must be given to the process");
        let mut fd = old.clone();
        fd.ready = Readiness::Fd(3);
        assert!(needs_restart(&notify, &fd));
        let mut deps = old.clone();
        deps.depends_on = vec![Dependency { name: "db".into(), condition: Condition::Ready }];
        deps.oneshot = true;
        deps.start_timeout = Some(Duration::from_secs(3));
        let p = plan(std::slice::from_ref(&old), &[deps]);
        assert_eq!(p.updated, vec!["a"], "dependencies and timeouts are supervision settings");
    }

    #[test]
    fn identical_configs_change_nothing() {
        let old = vec![spec("a", "x"), spec("b", "y")];
        let p = plan(&old, &old.clone());
        assert!(p.is_empty());
        assert_eq!(p.unchanged, vec!["a", "b"]);
    }

    #[test]
    fn added_removed_changed() {
        let old = vec![spec("keep", "x"), spec("gone", "y"), spec("edit", "z")];
        let new = vec![spec("keep", "x"), spec("edit", "z2"), spec("fresh", "w")];
        let p = plan(&old, &new);
        assert_eq!(p.added, vec!["fresh"]);
        assert_eq!(p.removed, vec!["gone"]);
        assert_eq!(p.changed, vec!["edit"]);
        assert_eq!(p.unchanged, vec!["keep"]);
        assert!(p.updated.is_empty());
    }

    #[test]
    fn supervision_settings_update_in_place() {
        let old = vec![spec("a", "x")];
        let mut b = spec("a", "x");
        b.stop_wait = Duration::from_secs(99);
        b.priority = 5;
        b.autostart = false;
        let p = plan(&old, &[b]);
        assert_eq!(p.updated, vec!["a"]);
        assert!(p.changed.is_empty());
    }

    #[test]
    fn environment_change_restarts() {
        let old = vec![spec("a", "x")];
        let mut b = spec("a", "x");
        b.environment.push(("K".into(), "v".into()));
        assert_eq!(plan(&old, &[b]).changed, vec!["a"]);
    }
}
