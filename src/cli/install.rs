//! `svc install`, `svc install --status`, `svc uninstall`: make the daemon start with the
//! user's session (systemd user unit, launchd agent, crontab line or login-profile block).
//!
//! Everything that differs by OS (which methods exist, the default, the artifacts, the
//! commands) is in `svc_platform::service`; this module gathers what it needs from svc itself
//! (paths, the config's stop times, whether a daemon already runs), and prints plans and
//! results for people or, with `--json`, for scripts. A plan is computed before anything is
//! changed, so `--dry-run` shows exactly what a real run does.

use super::{FAILURE, Global, SUCCESS, USAGE, block_on};
use crate::config::Config;
use crate::protocol::{Request, Response};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use svc_platform::service::{self, Method, Plan, ServiceError, Status, Step, Target};

/// What `stop_timeout` falls back to when the config cannot be read.
const DEFAULT_STOP_TIMEOUT_SECS: u64 = 90;
/// Added to the config's own stop times: the daemon's own exit, and slow machines.
const STOP_MARGIN_SECS: u64 = 30;

/// Options of `svc install`.
#[derive(Debug, Clone, Default)]
pub struct InstallArgs {
    /// `--method`: systemd, launchd, cron or profile; `None` for this OS's default.
    pub method: Option<String>,
    /// `--dry-run`: print what would be written and run, change nothing.
    pub dry_run: bool,
    /// `--json`.
    pub json: bool,
    /// `--status`: report what is installed instead of installing.
    pub status: bool,
}

/// Options of `svc uninstall`.
#[derive(Debug, Clone, Default)]
pub struct UninstallArgs {
    /// `--method`; `None` removes whatever any method installed.
    pub method: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--json`.
    pub json: bool,
}

/// `svc install`: install (or with `status`, report) the login/boot integration.
pub fn install(g: &Global, args: InstallArgs) -> u8 {
    if args.status {
        return status(g, args.method.as_deref(), args.json);
    }
    let (method, reason) = match &args.method {
        Some(name) => match parse_method(name) {
            Ok(m) => (m, "chosen with --method".to_owned()),
            Err(code) => return code,
        },
        None => service::default_method(),
    };
    let (target, mut notes) = match target(g) {
        Ok(t) => t,
        Err(e) => return fail(&e.to_string()),
    };
    let mut plan = match service::plan_install(method, &target) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    if plan.starts_daemon
        && let Some(pid) = running_daemon(g)
    {
        plan.problems.push(format!(
            "an svc daemon started outside {method} is running (pid {pid}); the one {method} starts would \
             fail with \"already running\". Stop it with 'svc shutdown', then run 'svc install' again."
        ));
    }
    notes.append(&mut plan.notes);
    plan.notes = notes;
    carry_out("install", &[(plan, reason)], args.dry_run, args.json, false)
}

/// `svc uninstall`: remove what `svc install` added, with one method or every one.
pub fn uninstall(g: &Global, args: UninstallArgs) -> u8 {
    let methods: Vec<Method> = match &args.method {
        Some(name) => match parse_method(name) {
            Ok(m) => vec![m],
            Err(code) => return code,
        },
        None => service::available_methods().to_vec(),
    };
    let (target, _) = match target(g) {
        Ok(t) => t,
        Err(e) => return fail(&e.to_string()),
    };
    let mut plans = Vec::new();
    for m in methods {
        match service::plan_uninstall(m, &target) {
            Ok(mut plan) => {
                if matches!(m, Method::Cron | Method::Profile) && !plan.is_empty() {
                    plan.notes.push("a daemon already running keeps running; 'svc shutdown' stops it.".to_owned());
                }
                let reason = match (args.method.is_some(), plan.is_empty()) {
                    (true, _) => "chosen with --method",
                    (false, false) => "found installed",
                    (false, true) => "nothing installed",
                };
                plans.push((plan, reason.to_owned()));
            }
            Err(e) => return fail(&e.to_string()),
        }
    }
    carry_out("uninstall", &plans, args.dry_run, args.json, args.method.is_none())
}

/// `svc install --status`.
fn status(g: &Global, method: Option<&str>, json: bool) -> u8 {
    let methods: Vec<Method> = match method {
        Some(name) => match parse_method(name) {
            Ok(m) => vec![m],
            Err(code) => return code,
        },
        None => service::available_methods().to_vec(),
    };
    let (target, _) = match target(g) {
        Ok(t) => t,
        Err(e) => return fail(&e.to_string()),
    };
    let mut statuses = Vec::new();
    for m in methods {
        match service::status(m, &target) {
            Ok(s) => statuses.push(s),
            Err(e) => return fail(&e.to_string()),
        }
    }
    let (default, why) = service::default_method();
    if json {
        let out = json!({
            "installed": statuses.iter().any(|s| s.installed),
            "default_method": default.name(),
            "default_reason": why,
            "methods": statuses.iter().map(status_json).collect::<Vec<_>>(),
        });
        println!("{out:#}");
        return SUCCESS;
    }
    for s in &statuses {
        let state = if s.installed { "installed" } else { "not installed" };
        println!("{:<8} {state}", s.method.name());
        if let Some(loc) = &s.location {
            println!("         {}", loc.display());
        }
        for (k, v) in &s.facts {
            println!("         {k}: {v}");
        }
    }
    println!("default method here: {default} ({why})");
    SUCCESS
}

fn status_json(s: &Status) -> Value {
    let facts: serde_json::Map<String, Value> =
        s.facts.iter().map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str()))).collect();
    json!({
        "method": s.method.name(),
        "installed": s.installed,
        "location": s.location.as_ref().map(|p| p.display().to_string()),
        "facts": facts,
    })
}

/// Checks a `--method` name against this OS's methods.
fn parse_method(name: &str) -> Result<Method, u8> {
    let available = service::available_methods();
    match name.parse::<Method>() {
        Ok(m) if available.contains(&m) => Ok(m),
        Ok(m) => Err(super::fail(
            "bad_request",
            &format!(
                "{m} is not available on {} (methods here: {})",
                svc_platform::OS_NAME,
                service::method_names(available)
            ),
            Some("method"),
            USAGE,
        )),
        Err(e) => Err(super::fail("bad_request", &e.to_string(), Some("method"), USAGE)),
    }
}

fn fail(message: &str) -> u8 {
    super::fail("failed", message, None, FAILURE)
}

/// What the installed service will run, from this process: its own binary, the config and
/// socket it was given, the user's directories. Also returns notes about the config.
pub fn target(g: &Global) -> Result<(Target, Vec<String>), ServiceError> {
    let paths = g.paths();
    let exe = std::env::current_exe()
        .map_err(|e| ServiceError::Invalid(format!("cannot find the svc binary's own path: {e}")))?;
    let absolute = |p: &Path| {
        std::path::absolute(p).map_err(|e| ServiceError::Invalid(format!("cannot make {} absolute: {e}", p.display())))
    };
    let config = absolute(&paths.config)?;
    let socket = g.socket.as_deref().map(absolute).transpose()?;
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()))
        .ok_or_else(|| ServiceError::Invalid("cannot find your home directory (HOME is not set)".into()))?;
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| home.join(".config"));
    let mut notes = Vec::new();
    let stop_timeout_secs = match crate::config::load(&config) {
        Ok(c) => stop_timeout(&c),
        Err(_) if !config.exists() => {
            notes.push(format!(
                "{} does not exist yet: the daemon cannot start until you write it ('svc check' validates it).",
                config.display()
            ));
            DEFAULT_STOP_TIMEOUT_SECS
        }
        Err(_) => {
            notes.push(format!(
                "{} has errors ('svc check' shows them): the daemon cannot start until they are fixed.",
                config.display()
            ));
            DEFAULT_STOP_TIMEOUT_SECS
        }
    };
    if is_build_dir(&exe) {
        notes.push(format!(
            "{} is in a cargo build directory, which 'cargo clean' or a rebuild changes: install svc \
             ('cargo install --path .' puts it in ~/.cargo/bin) and run 'svc install' from there.",
            exe.display()
        ));
    }
    let shell = std::env::var("SHELL").ok().filter(|s| !s.is_empty());
    let log_dir = absolute(&paths.log_dir)?;
    Ok((Target { exe, config, socket, log_dir, home, config_home, shell, stop_timeout_secs }, notes))
}

/// How long the daemon may take to stop everything: `svc shutdown` stops one priority level
/// after another, each taking up to its longest `stop-wait-secs`, so the levels add up; plus
/// a margin for the daemon itself.
pub fn stop_timeout(config: &Config) -> u64 {
    let mut levels: Vec<(i32, Duration)> = Vec::new();
    for p in &config.programs {
        match levels.iter_mut().find(|(prio, _)| *prio == p.priority) {
            Some((_, wait)) => *wait = (*wait).max(p.stop_wait),
            None => levels.push((p.priority, p.stop_wait)),
        }
    }
    let total: Duration = levels.iter().map(|(_, w)| *w).sum();
    total.as_secs() + u64::from(total.subsec_nanos() > 0) + STOP_MARGIN_SECS
}

/// `.../target/[TRIPLE/]debug/svc` or `.../release/svc`.
fn is_build_dir(exe: &Path) -> bool {
    let parts: Vec<_> = exe.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    parts
        .iter()
        .position(|p| p == "target")
        .is_some_and(|i| parts[i + 1..].iter().any(|p| p == "debug" || p == "release"))
}

/// The pid of a daemon that answers on this user's socket, if any.
fn running_daemon(g: &Global) -> Option<u32> {
    block_on(async {
        let mut c = super::try_connect(g).await.ok()?;
        match c.request(&Request::Info {}).await.ok()? {
            Response::Info(info) => Some(info.pid),
            _ => None,
        }
    })
}

/// Prints and (unless `dry_run`) executes `plans`. Nothing is executed when any plan has a
/// problem. With `lenient`, a plan that has problems but nothing to change is only a warning
/// (uninstall of every method: a method that cannot even be checked, such as a crontab the
/// user may not read, has nothing svc could remove).
fn carry_out(verb: &str, plans: &[(Plan, String)], dry_run: bool, json: bool, lenient: bool) -> u8 {
    let blocking = |p: &Plan| !(p.problems.is_empty() || (lenient && p.is_empty()));
    let blocked = plans.iter().any(|(p, _)| blocking(p));
    let mut ok = !blocked;
    let mut reports = Vec::new();
    for (plan, reason) in plans {
        let method = plan.method;
        let at = plan.location.as_ref().map_or(String::new(), |p| format!(" ({})", p.display()));
        let mut error = None;
        if !json {
            for p in &plan.problems {
                let level = if blocking(plan) { "error" } else { "warning" };
                eprintln!("svc: {level}: {method}: {p}");
            }
        }
        if plan.is_empty() {
            if json || !plan.problems.is_empty() {
                // Nothing to say beyond the problems printed above.
            } else if verb == "install" {
                println!("svc is already installed with {method}{at}; nothing changed.");
            } else if !lenient {
                println!("svc is not installed with {method}; nothing to remove.");
            }
        } else if dry_run {
            if !json {
                println!("svc {verb} with {method} ({reason}) would, in this order (--dry-run: nothing is changed):");
                for step in &plan.steps {
                    println!("== {}", step.describe());
                    if let Some(content) = step.content() {
                        print!("{content}");
                        if !content.is_empty() && !content.ends_with('\n') {
                            println!();
                        }
                        println!("== end of {}", step.path().map_or("input".into(), |p| p.display().to_string()));
                    }
                }
            }
        } else if !blocked {
            let mut record = |s: &Step| {
                if !json {
                    println!("{}", past_tense(s));
                }
            };
            match service::execute(plan, &mut record) {
                Ok(()) if !json => println!("svc is {verb}ed with {method}{at}."),
                Ok(()) => {}
                Err(e) => {
                    if !json {
                        eprintln!("svc: error: {e}");
                        eprintln!("svc: the steps printed above were done, the rest were not");
                    }
                    error = Some(e.to_string());
                    ok = false;
                }
            }
        }
        let relevant = verb == "install" || !plan.is_empty();
        if !json && relevant && error.is_none() && (dry_run || !blocked) {
            for n in &plan.notes {
                println!("note: {n}");
            }
        }
        reports.push(plan_json(plan, reason, dry_run, error.as_deref()));
        if error.is_some() {
            break;
        }
    }
    if json {
        println!("{:#}", json!({ "action": verb, "dry_run": dry_run, "ok": ok, "methods": reports }));
    } else if lenient && plans.iter().all(|(p, _)| p.is_empty()) {
        println!("svc is not installed with any method; nothing to remove.");
    }
    if ok { SUCCESS } else { FAILURE }
}

fn past_tense(s: &Step) -> String {
    let path = || s.path().map_or(String::new(), |p| p.display().to_string());
    match s {
        Step::WriteFile { .. } => format!("wrote {}", path()),
        Step::RemoveFile { .. } => format!("removed {}", path()),
        Step::CreateDir { .. } => format!("created {}", path()),
        Step::SetCrontab { .. } => "updated your crontab".to_owned(),
        Step::Run { argv, .. } => format!("ran {}", service::quote::sh_command(argv)),
    }
}

fn plan_json(plan: &Plan, reason: &str, dry_run: bool, error: Option<&str>) -> Value {
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|s| {
            json!({
                "kind": s.kind(),
                "description": s.describe(),
                "path": s.path().map(|p| p.display().to_string()),
                "mode": s.mode().map(|m| format!("{m:04o}")),
                "content": s.content(),
                "argv": s.argv(),
            })
        })
        .collect();
    json!({
        "method": plan.method.name(),
        "reason": reason,
        "location": plan.location.as_ref().map(|p| p.display().to_string()),
        "changes": !plan.is_empty(),
        "dry_run": dry_run,
        "steps": steps,
        "notes": plan.notes,
        "problems": plan.problems,
        "error": error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(programs: &[(&str, i32, u64)]) -> Config {
        let kdl: String = programs
            .iter()
            .map(|(name, prio, wait)| {
                format!("program \"{name}\" {{ command \"true\"; priority {prio}; stop-wait-secs {wait}; }}\n")
            })
            .collect();
        crate::config::parse_str(&kdl, Path::new("/tmp/svc.kdl"), &|_| None).expect("test config parses")
    }

    #[test]
    fn stop_timeout_adds_the_longest_wait_of_each_priority_level() {
        assert_eq!(stop_timeout(&Config::default()), STOP_MARGIN_SECS);
        assert_eq!(stop_timeout(&config(&[("a", 1, 5), ("b", 1, 20), ("c", 2, 7)])), 20 + 7 + STOP_MARGIN_SECS);
    }

    #[test]
    fn build_dirs_are_recognised() {
        assert!(is_build_dir(Path::new("/src/svc/target/debug/svc")));
        assert!(is_build_dir(Path::new("/src/svc/target/x86_64-unknown-linux-gnu/release/svc")));
        assert!(!is_build_dir(Path::new("/home/a/.cargo/bin/svc")));
    }
}
