//! `svc install` / `svc uninstall`: the generated artifacts checked by the tools that will read
//! them (`systemd-analyze verify`, python's plistlib, `sh`), and the whole CLI flow run against
//! a temporary HOME.
//!
//! Nothing here touches the real user's crontab or systemd: `crontab`, `systemctl` and
//! `loginctl` are replaced by small fakes put first in `PATH`, which record their arguments and
//! keep the "crontab" in a file of the sandbox.

use crate::support::{Run, Sandbox, svc_bin};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use svc_platform::service::{self, Method, Target, cron, launchd, profile, systemd};

const EXISTING_CRONTAB: &str = "# m h dom mon dow command\nMAILTO=\"\"\n*/10 * * * * $HOME/bin/backup 2>&1 | logger -t backup\n\n@daily rm -f /tmp/x # mine\n";
const EXISTING_PROFILE: &str =
    "# ~/.profile\nexport PATH=\"$HOME/bin:$PATH\"\nif [ -n \"$BASH_VERSION\" ]; then\n    . \"$HOME/.bashrc\"\nfi\n";

/// Fake `crontab` (table in `$FAKE_CRONTAB`), `systemctl` (state in `$FAKE_STATE`, calls
/// logged to `$FAKE_LOG`) and `loginctl`.
const FAKE_CRONTAB: &str = r#"#!/bin/sh
case "$1" in
  -l) [ -f "$FAKE_CRONTAB" ] || { echo "no crontab for $(id -un)" >&2; exit 1; }; cat "$FAKE_CRONTAB" ;;
  -|"") cat > "$FAKE_CRONTAB" ;;
  *) echo "crontab: usage" >&2; exit 1 ;;
esac
"#;
const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
echo "systemctl $*" >> "$FAKE_LOG"
[ "$1" = --user ] || { echo "not --user" >&2; exit 1; }
case "$2" in
  show-environment) echo "HOME=$HOME" ;;
  is-enabled) s=$(sed -n 1p "$FAKE_STATE" 2>/dev/null); echo "${s:-not-found}"; [ "$s" = enabled ] ;;
  is-active) s=$(sed -n 2p "$FAKE_STATE" 2>/dev/null); echo "${s:-inactive}"; [ "$s" = active ] ;;
  daemon-reload) ;;
  enable) printf 'enabled\nactive\n' > "$FAKE_STATE" ;;
  disable) printf 'disabled\ninactive\n' > "$FAKE_STATE" ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"#;
const FAKE_LOGINCTL: &str = "#!/bin/sh\necho Linger=no\n";

/// A sandbox with fake system commands.
struct Fakes {
    sb: Sandbox,
    bin: PathBuf,
}

impl Fakes {
    fn new() -> Fakes {
        let sb = Sandbox::new();
        let bin = sb.path().join("fakebin");
        fs::create_dir_all(&bin).expect("test setup");
        for (name, script) in [("crontab", FAKE_CRONTAB), ("systemctl", FAKE_SYSTEMCTL), ("loginctl", FAKE_LOGINCTL)] {
            let p = bin.join(name);
            fs::write(&p, script).expect("test setup");
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("test setup");
        }
        fs::create_dir_all(sb.path().join("home")).expect("test setup");
        Fakes { sb, bin }
    }

    fn home(&self) -> PathBuf {
        self.sb.path().join("home")
    }

    fn crontab(&self) -> PathBuf {
        self.sb.path().join("crontab")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.sb.path().join("fake.log")).unwrap_or_default()
    }

    /// `svc ARGS` with the fakes first in PATH and `SHELL`.
    fn svc(&self, shell: &str, args: &[&str]) -> Run {
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default());
        self.sb
            .command(args)
            .env("PATH", path)
            .env("SHELL", shell)
            .env("FAKE_CRONTAB", self.crontab())
            .env("FAKE_STATE", self.sb.path().join("fake.state"))
            .env("FAKE_LOG", self.sb.path().join("fake.log"))
            .output()
            .expect("run svc")
            .into()
    }
}

fn target(exe: &Path, config: &Path, home: &Path) -> Target {
    Target {
        exe: exe.to_path_buf(),
        config: config.to_path_buf(),
        socket: None,
        log_dir: home.join("Library/Logs/svc"),
        home: home.to_path_buf(),
        config_home: home.join(".config"),
        shell: Some("/bin/sh".into()),
        stop_timeout_secs: 95,
    }
}

fn is_linux() -> bool {
    service::available_methods().contains(&Method::Systemd)
}

/// `systemd-analyze verify --user` on `unit`: rc 0 AND nothing printed, since it exits 0 on
/// unknown keys and bad values (platform.md §6a).
fn assert_verifies(unit: &str) {
    let (ok, stderr) = verify(unit);
    assert!(ok && stderr.is_empty(), "systemd-analyze verify failed:\n{stderr}\n--- unit:\n{unit}");
}

/// Runs `systemd-analyze verify --user --man=no`: (exit status 0, what it printed on stderr).
fn verify(unit: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("test setup");
    let runtime = dir.path().join("runtime");
    fs::create_dir(&runtime).expect("test setup");
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).expect("test setup");
    let file = dir.path().join("svc.service");
    fs::write(&file, unit).expect("test setup");
    let out = match Command::new("systemd-analyze")
        .args(["verify", "--user", "--man=no"])
        .arg(&file)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("systemd-analyze cannot run ({e}): install systemd (apt-get install systemd)"),
    };
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn generated_units_pass_systemd_analyze_verify() {
    if !is_linux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // The executable must exist: verify checks it. Symlinks give it awkward names.
    let odd_dir = dir.path().join("my bin 100% $HOME");
    fs::create_dir_all(&odd_dir).unwrap();
    let odd_exe = odd_dir.join("svc");
    symlink(svc_bin(), &odd_exe).unwrap();
    let exe = PathBuf::from(svc_bin());
    let cases = [
        target(&exe, &home.join(".config/svc/svc.kdl"), &home),
        target(&exe, &home.join("Library/Application Support/svc/svc.kdl"), &home),
        target(&odd_exe, &dir.path().join("cfg 50% \"q\" 'a' $X \\n.kdl"), &home),
        Target { socket: Some(dir.path().join("run dir/svc.sock")), ..target(&odd_exe, &home.join("c.kdl"), &home) },
    ];
    // The checker itself: a typo exits 0 but is reported; a missing executable fails.
    let good = systemd::unit(&cases[0]);
    let (ok, stderr) = verify(&good.replace("Type=notify", "Type=notfy"));
    assert!(ok && stderr.contains("Failed to parse service type"), "{stderr}");
    let (ok, _) = verify(&good.replace(&svc_bin(), "/nonexistent/svc"));
    assert!(!ok);
    for t in &cases {
        let unit = systemd::unit(t);
        assert!(
            unit.contains("Type=notify\n") && unit.contains("KillMode=mixed\n") && unit.contains("TimeoutStopSec=95\n")
        );
        assert_verifies(&unit);
    }
}

#[test]
fn the_unit_svc_install_prints_passes_verify() {
    if !is_linux() {
        return;
    }
    let f = Fakes::new();
    let config_dir = f.sb.path().join("my config");
    fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("svc.kdl");
    fs::write(
        &config,
        "program \"a\" { command \"sleep 60\"; stop-wait-secs 20; priority 1; }\n\
         program \"b\" { command \"sleep 60\"; stop-wait-secs 5; priority 2; }\n",
    )
    .unwrap();
    let run = f.svc(
        "/bin/sh",
        &["install", "--method", "systemd", "--dry-run", "--json", "--config", config.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let step = &out["methods"][0]["steps"][0];
    assert_eq!(step["kind"], "write");
    let unit_path = f.sb.path().join("config/systemd/user/svc.service");
    assert_eq!(step["path"], unit_path.display().to_string());
    let unit = step["content"].as_str().unwrap();
    // Two priority levels stop one after the other: 20 + 5, plus the 30 s margin.
    assert!(unit.contains("\nTimeoutStopSec=55\n"), "{unit}");
    assert!(
        unit.contains(&format!("daemon --socket {} --config \"{}\"", f.sb.socket().display(), config.display())),
        "{unit}"
    );
    assert_verifies(unit);
    assert!(!unit_path.exists(), "a dry run writes nothing");
    assert_eq!(
        f.log().lines().filter(|l| !l.contains(" is-") && !l.contains("show-environment")).count(),
        0,
        "{}",
        f.log()
    );
}

#[test]
fn plists_parse_with_plistlib_and_have_the_required_keys() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("Users/al & <bob>");
    let exe = home.join(".cargo/bin/svc");
    let t = target(&exe, &home.join("Library/Application Support/svc/svc \"x\" 'y'.kdl"), &home);
    let file = dir.path().join("dev.svc.daemon.plist");
    fs::write(&file, launchd::plist(&t)).unwrap();
    let expected = serde_json::json!({
        "args": t.daemon_argv(),
        "out": home.join("Library/Logs/svc/daemon.out.log"),
        "err": home.join("Library/Logs/svc/daemon.err.log"),
        "path": launchd::path_env(&t),
    });
    let check = r#"
import json, plistlib, sys
with open(sys.argv[1], "rb") as f:
    p = plistlib.load(f)
want = json.loads(sys.argv[2])
types = {"Label": str, "ProgramArguments": list, "RunAtLoad": bool, "KeepAlive": dict, "ProcessType": str,
         "ExitTimeOut": int, "StandardOutPath": str, "StandardErrorPath": str, "EnvironmentVariables": dict}
problems = [f"missing {k}" for k in types if k not in p]
problems += [f"unknown key {k}" for k in p if k not in types]
problems += [f"{k}: {type(p[k]).__name__}" for k in types if k in p and type(p[k]) is not types[k]]
checks = [
    (p.get("Label"), "dev.svc.daemon"), (p.get("ProgramArguments"), want["args"]), (p.get("RunAtLoad"), True),
    (p.get("KeepAlive"), {"SuccessfulExit": False}), (p.get("ExitTimeOut"), 95),
    (p.get("StandardOutPath"), want["out"]), (p.get("StandardErrorPath"), want["err"]),
    (p.get("EnvironmentVariables"), {"PATH": want["path"]}),
]
problems += [f"{got!r} != {exp!r}" for got, exp in checks if got != exp]
for d in ["/.cargo/bin", "/.local/bin", "/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin"]:
    if not any(e.endswith(d) for e in p["EnvironmentVariables"]["PATH"].split(":")):
        problems.append(f"PATH lacks {d}")
print("\n".join(problems))
sys.exit(1 if problems else 0)
"#;
    let out = Command::new("python3").arg("-c").arg(check).arg(&file).arg(expected.to_string()).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        launchd::plist(&t)
    );
}

#[test]
fn crontab_edits_keep_every_other_byte() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(Path::new("/opt/my tools/svc"), Path::new("/home/a/my config/svc.kdl"), dir.path());
    for schedule in [cron::Schedule::AtReboot, cron::Schedule::EveryFiveMinutes] {
        let line = cron::line(&t, schedule);
        for existing in [EXISTING_CRONTAB, "", "@hourly x\r\n# no final newline"] {
            let installed = cron::add_line(existing, &line).expect("install changes the table");
            assert!(installed.starts_with(existing) && installed.ends_with(&format!("{line}\n")));
            assert_eq!(cron::add_line(&installed, &line), None, "reinstall changes nothing");
            let removed = cron::remove_line(&installed).expect("uninstall changes the table");
            let expected = if existing.is_empty() || existing.ends_with('\n') {
                existing.to_owned()
            } else {
                format!("{existing}\n")
            };
            assert_eq!(removed, expected);
            assert_eq!(cron::remove_line(&removed), None);
        }
    }
}

#[test]
fn profile_edits_keep_every_other_byte() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(Path::new("/opt/my tools/svc"), Path::new("/home/a/my config/svc.kdl"), dir.path());
    for flavor in [profile::Flavor::Sh, profile::Flavor::Fish] {
        let block = profile::block(&t, flavor);
        for existing in [EXISTING_PROFILE, "", "echo no final newline"] {
            let installed = profile::add_block(existing, &block).unwrap().expect("install changes the file");
            assert!(installed.starts_with(existing) && installed.ends_with(&block));
            assert_eq!(profile::add_block(&installed, &block), Ok(None), "reinstall changes nothing");
            let removed = profile::remove_block(&installed).unwrap().expect("uninstall changes the file");
            let expected = if existing.is_empty() || existing.ends_with('\n') {
                existing.to_owned()
            } else {
                format!("{existing}\n")
            };
            assert_eq!(removed, expected);
        }
    }
}

#[test]
fn cron_install_reinstall_uninstall_through_the_cli() {
    let f = Fakes::new();
    fs::write(f.crontab(), EXISTING_CRONTAB).unwrap();
    let run = f.svc("/bin/sh", &["install", "--method", "cron", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(EXISTING_CRONTAB) && run.stdout.contains("# svc-managed"), "{}", run.stdout);
    assert_eq!(fs::read_to_string(f.crontab()).unwrap(), EXISTING_CRONTAB, "a dry run changes nothing");

    let run = f.svc("/bin/sh", &["install", "--method", "cron"]);
    assert_eq!(run.code, 0, "{run:?}");
    let table = fs::read_to_string(f.crontab()).unwrap();
    let added = table.strip_prefix(EXISTING_CRONTAB).expect("existing lines kept");
    let bin = svc_bin();
    assert!(added.contains(&format!(" {bin} up --quiet --socket ")) && added.ends_with(" # svc-managed\n"), "{added}");
    assert_eq!(added.lines().count(), 1);
    assert!(added.starts_with("@reboot ") || added.starts_with("0,5,10,"), "{added}");

    let run = f.svc("/bin/sh", &["install", "--method", "cron"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("already installed"), "{}", run.stdout);
    assert_eq!(fs::read_to_string(f.crontab()).unwrap(), table);

    let run = f.svc("/bin/sh", &["install", "--status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let cron_status = status["methods"].as_array().unwrap().iter().find(|m| m["method"] == "cron").unwrap();
    assert_eq!(cron_status["installed"], true, "{status:#}");

    let run = f.svc("/bin/sh", &["uninstall", "--method", "cron"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(fs::read_to_string(f.crontab()).unwrap(), EXISTING_CRONTAB, "byte for byte");
    let run = f.svc("/bin/sh", &["uninstall", "--method", "cron"]);
    assert!(run.code == 0 && run.stdout.contains("not installed"), "{run:?}");
}

#[test]
fn profile_install_reinstall_uninstall_through_the_cli() {
    let f = Fakes::new();
    let file = f.home().join(".profile");
    fs::write(&file, EXISTING_PROFILE).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();

    let run = f.svc("/bin/dash", &["install", "--method", "profile", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(&format!("== write {} (mode 0600)", file.display())), "{}", run.stdout);
    assert!(run.stdout.contains(EXISTING_PROFILE) && run.stdout.contains("# >>> svc >>>"), "{}", run.stdout);
    assert_eq!(fs::read_to_string(&file).unwrap(), EXISTING_PROFILE, "a dry run changes nothing");

    let run = f.svc("/bin/dash", &["install", "--method", "profile"]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = fs::read_to_string(&file).unwrap();
    let block = text.strip_prefix(EXISTING_PROFILE).expect("existing lines kept");
    assert!(block.starts_with("# >>> svc >>>\n") && block.ends_with("# <<< svc <<<\n"), "{block}");
    assert!(block.contains(&format!("then {} up --quiet --socket", svc_bin())), "{block}");
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "mode kept");
    // The block is valid sh.
    let sh = Command::new("sh").arg("-n").arg(&file).output().unwrap();
    assert!(sh.status.success(), "{sh:?}");

    let run = f.svc("/bin/dash", &["install", "--method", "profile"]);
    assert!(run.code == 0 && run.stdout.contains("already installed"), "{run:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), text);

    let run = f.svc("/bin/dash", &["uninstall", "--method", "profile"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), EXISTING_PROFILE, "byte for byte");
}

#[test]
fn profile_follows_the_login_shell_and_uninstall_finds_every_block() {
    let f = Fakes::new();
    let bash_profile = f.home().join(".bash_profile");
    fs::write(&bash_profile, "source ~/.profile\n").unwrap();
    assert_eq!(f.svc("/bin/bash", &["install", "--method", "profile"]).code, 0);
    assert!(fs::read_to_string(&bash_profile).unwrap().contains("# >>> svc >>>"));
    assert!(!f.home().join(".profile").exists(), "bash reads .bash_profile only");
    // The user switches to zsh and installs again: a new file, and a note about the old block.
    let run = f.svc("/usr/bin/zsh", &["install", "--method", "profile"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(".bash_profile also has an svc block"), "{}", run.stdout);
    let zprofile = f.home().join(".zprofile");
    assert!(fs::read_to_string(&zprofile).unwrap().starts_with("# >>> svc >>>"));
    // Uninstall without --method removes both: the file svc created, and its block in the other.
    let run = f.svc("/usr/bin/zsh", &["uninstall"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!zprofile.exists(), "a file left empty is removed");
    assert_eq!(fs::read_to_string(&bash_profile).unwrap(), "source ~/.profile\n");
}

#[test]
fn systemd_install_reinstall_uninstall_through_the_cli() {
    if !is_linux() {
        return;
    }
    let f = Fakes::new();
    let unit_path = f.sb.path().join("config/systemd/user/svc.service");
    let run = f.svc("/bin/sh", &["install", "--method", "systemd"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(&format!("wrote {}", unit_path.display())), "{}", run.stdout);
    assert!(run.stdout.contains("linger is off") && run.stdout.contains("loginctl enable-linger"), "{}", run.stdout);
    let unit = fs::read_to_string(&unit_path).unwrap();
    assert!(unit.contains(&format!("ExecStart={} daemon --socket", svc_bin())), "{unit}");
    let changes: Vec<String> =
        f.log().lines().filter(|l| !l.contains(" is-") && !l.contains("show-env")).map(String::from).collect();
    assert_eq!(changes, ["systemctl --user daemon-reload", "systemctl --user enable --now svc.service"]);

    let before = f.log();
    let run = f.svc("/bin/sh", &["install", "--method", "systemd"]);
    assert!(run.code == 0 && run.stdout.contains("already installed"), "{run:?}");
    let new_calls = f.log()[before.len()..].to_owned();
    assert!(new_calls.lines().all(|l| l.contains(" is-") || l.contains("show-env")), "{new_calls}");

    let before = f.log();
    let run = f.svc("/bin/sh", &["uninstall", "--method", "systemd"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!unit_path.exists());
    let log = f.log();
    let new_calls: Vec<&str> =
        log[before.len()..].lines().filter(|l| !l.contains(" is-") && !l.contains("show-env")).collect();
    assert_eq!(new_calls, ["systemctl --user disable --now svc.service", "systemctl --user daemon-reload"]);
}

#[test]
fn a_method_this_os_lacks_or_an_unknown_one_is_a_usage_error() {
    let f = Fakes::new();
    let run = f.svc("/bin/sh", &["install", "--method", "upstart", "--dry-run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("unknown method 'upstart'"), "{}", run.stderr);
    if let Some(m) = Method::ALL.into_iter().find(|m| !service::available_methods().contains(m)) {
        let run = f.svc("/bin/sh", &["install", "--method", m.name(), "--dry-run"]);
        assert!(run.code == 2 && run.stderr.contains("not available"), "{run:?}");
    }
}

#[test]
fn uninstall_with_nothing_installed_changes_nothing() {
    let f = Fakes::new();
    let run = f.svc("/bin/sh", &["uninstall", "--dry-run"]);
    assert!(run.code == 0 && run.stdout.contains("not installed with any method"), "{run:?}");
    let run = f.svc("/bin/sh", &["uninstall"]);
    assert!(run.code == 0 && run.stdout.contains("not installed with any method"), "{run:?}");
    assert!(!f.crontab().exists());
}
