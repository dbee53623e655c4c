//! The user's crontab (any OS): one line, marked with [`MARKER`], that runs `svc up --quiet`.
//!
//! The table is read with `crontab -l` and replaced whole through `crontab` reading standard
//! input; spool files are never written directly (they belong to cron). Every other line is kept
//! byte for byte. Schedules differ: Vixie cron (Linux, FreeBSD, macOS) and cronie know
//! `@reboot`; illumos cron knows neither `@reboot` nor `*/5`, so there the line runs every five
//! minutes with an explicit minute list, and `svc up` returns at once when the daemon answers.

use super::{Method, Plan, Status, Step, Target, argv, command_error, quote, run};
use std::io::Write;
use std::process::{Command, Stdio};

/// Ends svc's line, so that uninstall finds exactly it. To the shell that cron hands the
/// command to, it is a comment.
pub const MARKER: &str = "# svc-managed";

const TEMPLATE: &str = include_str!("../../templates/cron");

/// When cron runs the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// `@reboot`: once, when cron starts.
    AtReboot,
    /// Every five minutes, written as a minute list for crons without `*/n`.
    EveryFiveMinutes,
}

impl Schedule {
    /// The line's time fields.
    pub fn fields(self) -> &'static str {
        match self {
            Schedule::AtReboot => "@reboot",
            Schedule::EveryFiveMinutes => "0,5,10,15,20,25,30,35,40,45,50,55 * * * *",
        }
    }
}

/// This OS's schedule: illumos has no `@reboot`.
pub fn schedule() -> Schedule {
    if cfg!(any(target_os = "illumos", target_os = "solaris")) {
        Schedule::EveryFiveMinutes
    } else {
        Schedule::AtReboot
    }
}

/// The command that installs a crontab from standard input. illumos' `crontab` reads standard
/// input when given no file and would try to open a file named `-`; the others want `-`.
fn write_argv() -> Vec<String> {
    if cfg!(any(target_os = "illumos", target_os = "solaris")) { argv(&["crontab"]) } else { argv(&["crontab", "-"]) }
}

/// svc's crontab line (without the newline).
pub fn line(t: &Target, schedule: Schedule) -> String {
    let command = quote::cron_escape(&quote::sh_command(&t.up_argv()));
    quote::render(TEMPLATE, &[("schedule", schedule.fields()), ("command", &command), ("marker", MARKER)])
        .trim_end()
        .to_owned()
}

/// True for a line svc added.
pub fn is_svc_line(line: &str) -> bool {
    line.trim_end().ends_with(MARKER)
}

/// `text` with svc's line set to `line`: an existing svc line is replaced in place (and any
/// duplicate dropped), otherwise `line` is appended. `None` when `text` already has exactly
/// that. Every other byte is kept; a last line without a newline gets one, as cron needs.
pub fn add_line(text: &str, line: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + line.len() + 2);
    let mut placed = false;
    for l in text.split_inclusive('\n') {
        if is_svc_line(l) {
            if !placed {
                out.push_str(line);
                out.push('\n');
                placed = true;
            }
        } else {
            out.push_str(l);
        }
    }
    if !placed {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    (out != text).then_some(out)
}

/// `text` without svc's line(s); `None` when there is none. Every other byte is kept.
pub fn remove_line(text: &str) -> Option<String> {
    let kept: String = text.split_inclusive('\n').filter(|l| !is_svc_line(l)).collect();
    (kept.len() != text.len()).then_some(kept)
}

/// The user's crontab as `crontab -l` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The table; empty when the user has none yet.
    Table(String),
    /// There is no `crontab` command (that this user may run).
    NoCommand,
    /// `crontab -l` failed for another reason (not allowed to use cron, ...).
    Error(String),
}

/// Runs `crontab -l`.
pub fn probe() -> Probe {
    match run(&argv(&["crontab", "-l"])) {
        Ok(out) if out.ok => Probe::Table(out.stdout),
        Ok(out) if is_no_crontab(&out.stderr) => Probe::Table(String::new()),
        Ok(out) => Probe::Error(out.detail()),
        Err(e) if super::is_missing_command(&e) => Probe::NoCommand,
        Err(e) => Probe::Error(e.to_string()),
    }
}

/// `crontab -l`'s complaint when the user has no crontab yet. Anything else is an error: when
/// in doubt, a table must not be replaced, or the user's lines would be lost.
fn is_no_crontab(stderr: &str) -> bool {
    // Vixie cron, cronie, FreeBSD, macOS: "no crontab for USER";
    // illumos: "crontab: can't open your crontab file."
    stderr.contains("no crontab for") || stderr.contains("can't open your crontab file")
}

fn no_command_problem() -> String {
    "there is no 'crontab' command here (in PATH): install cron, or use '--method profile'.".to_owned()
}

/// The plan for installing: add svc's line to the table.
pub fn install(t: &Target, p: &Probe) -> Plan {
    let mut plan = Plan::new(Method::Cron, None);
    match p {
        Probe::Table(table) => {
            if let Some(content) = add_line(table, &line(t, schedule())) {
                plan.steps.push(Step::SetCrontab { argv: write_argv(), content });
            }
        }
        Probe::NoCommand => plan.problems.push(no_command_problem()),
        Probe::Error(e) => plan.problems.push(format!("cannot read your crontab ('crontab -l': {e})")),
    }
    if !plan.problems.is_empty() {
        // The new table cannot be shown without the old one; show at least svc's line.
        plan.notes.push(format!("the line svc adds to your crontab: {}", line(t, schedule())));
    }
    plan.notes.push(match schedule() {
        Schedule::AtReboot => "cron starts the daemon at boot (@reboot); should it stop, it stays down until the next \
                               boot or 'svc up'. Start it now with 'svc up'."
            .to_owned(),
        Schedule::EveryFiveMinutes => {
            "cron runs 'svc up' every 5 minutes, so the daemon is back within 5 minutes of a \
                                       boot or a crash. Start it now with 'svc up'."
                .to_owned()
        }
    });
    plan.notes.push(
        "cron gives the daemon, and so your programs, a minimal environment (PATH=/usr/bin:/bin): set what \
         they need in their 'environment' blocks."
            .to_owned(),
    );
    plan
}

/// The plan for uninstalling: remove svc's line from the table.
pub fn uninstall(p: &Probe) -> Plan {
    let mut plan = Plan::new(Method::Cron, None);
    match p {
        Probe::Table(table) => {
            if let Some(content) = remove_line(table) {
                plan.steps.push(Step::SetCrontab { argv: write_argv(), content });
            }
        }
        // No crontab command: nothing can have been installed with it.
        Probe::NoCommand => {}
        Probe::Error(e) => plan.problems.push(format!("cannot read your crontab ('crontab -l': {e})")),
    }
    plan
}

/// Whether svc's line is in the table.
pub fn status(p: &Probe) -> Status {
    let mut facts = Vec::new();
    let installed = match p {
        Probe::Table(table) => match table.lines().find(|l| is_svc_line(l)) {
            Some(l) => {
                facts.push(("line", l.to_owned()));
                true
            }
            None => false,
        },
        Probe::NoCommand => {
            facts.push(("crontab", "not found".to_owned()));
            false
        }
        Probe::Error(e) => {
            facts.push(("crontab", format!("cannot be read: {e}")));
            false
        }
    };
    Status { method: Method::Cron, installed, location: None, facts }
}

/// Replaces the user's crontab with `content` through `argv`, then reads it back to check that
/// svc's line is present exactly when `content` has it.
pub(super) fn set_crontab(argv: &[String], content: &str) -> Result<(), super::ServiceError> {
    let (prog, args) = argv.split_first().ok_or_else(|| command_error(argv, "empty command".into()))?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| command_error(argv, e.to_string()))?;
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(content.as_bytes()));
    let out = child.wait_with_output().map_err(|e| command_error(argv, e.to_string()))?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if !out.status.success() {
        return Err(command_error(argv, if stderr.is_empty() { out.status.to_string() } else { stderr }));
    }
    if let Some(Err(e)) = written {
        return Err(command_error(argv, format!("writing its input: {e}")));
    }
    let want = content.lines().any(is_svc_line);
    match probe() {
        Probe::Table(now) if now.lines().any(is_svc_line) == want => Ok(()),
        Probe::Table(_) => Err(command_error(
            argv,
            format!(
                "the crontab read back {} svc's line; crontab said: {stderr}",
                if want { "lacks" } else { "still has" }
            ),
        )),
        Probe::NoCommand => Err(command_error(&super::argv(&["crontab", "-l"]), "not found".into())),
        Probe::Error(e) => Err(command_error(&super::argv(&["crontab", "-l"]), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::test_support::target;

    const EXISTING: &str = "# m h dom mon dow command\nMAILTO=\"\"\n*/10 * * * * $HOME/bin/backup --quiet 2>&1 | logger\n\n@daily  find /tmp -user me -delete\t# keep\n";

    fn svc_line() -> String {
        line(&target(), Schedule::AtReboot)
    }

    #[test]
    fn reboot_line_quotes_paths_and_carries_the_marker() {
        assert_eq!(
            svc_line(),
            "@reboot '/home/al ice/.cargo/bin/svc' up --quiet --config '/home/al ice/Library/Application Support/svc/svc.kdl' >/dev/null 2>&1 # svc-managed"
        );
    }

    #[test]
    fn illumos_line_lists_minutes() {
        let l = line(&target(), Schedule::EveryFiveMinutes);
        assert!(
            l.starts_with("0,5,10,15,20,25,30,35,40,45,50,55 * * * * '/home/al ice/.cargo/bin/svc' up --quiet"),
            "{l}"
        );
        assert!(!l.contains("*/") && !l.contains('@'));
    }

    #[test]
    fn percent_in_a_path_is_escaped_for_cron() {
        let mut t = target();
        t.config = "/home/a/100%/svc.kdl".into();
        assert!(line(&t, Schedule::AtReboot).contains(r"'/home/a/100\%/svc.kdl'"));
    }

    #[test]
    fn the_line_runs_in_a_real_shell() {
        // What cron does with the command part: undo `\%`, hand the rest to sh -c.
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("it's 100% svc");
        std::fs::write(&exe, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args\"\n").unwrap();
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let t = Target { exe: exe.clone(), ..target() };
        let l = line(&t, Schedule::AtReboot);
        let command = l.strip_prefix("@reboot ").unwrap().replace(r"\%", "%");
        let status = std::process::Command::new("sh").arg("-c").arg(&command).status().unwrap();
        assert!(status.success());
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(args, "up\n--quiet\n--config\n/home/al ice/Library/Application Support/svc/svc.kdl\n");
    }

    #[test]
    fn install_reinstall_uninstall_keep_other_lines_byte_for_byte() {
        let installed = add_line(EXISTING, &svc_line()).unwrap();
        assert_eq!(installed, format!("{EXISTING}{}\n", svc_line()));
        assert_eq!(add_line(&installed, &svc_line()), None, "reinstall changes nothing");
        assert_eq!(remove_line(&installed).as_deref(), Some(EXISTING));
        assert_eq!(remove_line(EXISTING), None);
    }

    #[test]
    fn empty_table_and_missing_final_newline() {
        assert_eq!(add_line("", &svc_line()).unwrap(), format!("{}\n", svc_line()));
        assert_eq!(remove_line(&format!("{}\n", svc_line())).as_deref(), Some(""));
        assert_eq!(add_line("@daily x", &svc_line()).unwrap(), format!("@daily x\n{}\n", svc_line()));
    }

    #[test]
    fn a_changed_line_is_replaced_in_place_and_duplicates_dropped() {
        let old = "@reboot /old/svc up --quiet >/dev/null 2>&1 # svc-managed\n";
        let text = format!("A\n{old}B\r\n{old}C\n");
        let new = add_line(&text, &svc_line()).unwrap();
        assert_eq!(new, format!("A\n{}\nB\r\nC\n", svc_line()));
        assert_eq!(remove_line(&new).unwrap(), "A\nB\r\nC\n");
    }

    #[test]
    fn no_crontab_messages_mean_empty_anything_else_is_an_error() {
        assert!(is_no_crontab("no crontab for alice\n"));
        assert!(is_no_crontab("crontab: no crontab for alice\n"));
        assert!(is_no_crontab("crontab: can't open your crontab file.\n"));
        assert!(!is_no_crontab("You (alice) are not allowed to use this program (crontab)\n"));
    }

    #[test]
    fn plans() {
        let t = target();
        let plan = install(&t, &Probe::Table(EXISTING.into()));
        let content = add_line(EXISTING, &line(&t, schedule())).unwrap();
        assert_eq!(plan.steps, [Step::SetCrontab { argv: write_argv(), content: content.clone() }]);
        assert!(install(&t, &Probe::Table(content.clone())).is_empty());
        assert_eq!(
            uninstall(&Probe::Table(content)).steps,
            [Step::SetCrontab { argv: write_argv(), content: EXISTING.into() }]
        );
        assert!(uninstall(&Probe::Table(EXISTING.into())).is_empty());
        assert!(install(&t, &Probe::NoCommand).problems[0].contains("--method profile"));
        assert!(install(&t, &Probe::Error("not allowed".into())).is_empty());
        assert!(uninstall(&Probe::NoCommand).is_empty());
    }
}
