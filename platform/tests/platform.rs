//! Tests of the platform facade against the real OS: sockets, directories, processes.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::process::Command;
use svc_platform::*;

#[test]
fn peer_credentials_of_a_socket_pair() {
    let (a, b) = UnixStream::pair().unwrap();
    for end in [&a, &b] {
        let cred = peer_credentials(end.as_fd()).unwrap();
        assert_eq!(cred.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(cred.gid, nix::unistd::getegid().as_raw());
        // Linux always reports the pid; elsewhere it may be unknown, but never wrong.
        if cfg!(target_os = "linux") {
            assert_eq!(cred.pid, Some(std::process::id() as i32));
        } else if let Some(pid) = cred.pid {
            assert_eq!(pid, std::process::id() as i32);
        }
    }
}

#[test]
fn peer_credentials_of_a_connected_path_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let client = UnixStream::connect(&path).unwrap();
    let (server, _) = listener.accept().unwrap();
    let me = std::process::id() as i32;
    for end in [&client, &server] {
        let cred = peer_credentials(end.as_fd()).unwrap();
        assert_eq!(cred.uid, nix::unistd::geteuid().as_raw());
        if cfg!(target_os = "linux") {
            assert_eq!(cred.pid, Some(me));
        }
    }
}

#[test]
fn private_dir_is_created_with_mode_0700() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh");
    ensure_private_dir(&path).unwrap();
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
    // A second call accepts the directory it made.
    ensure_private_dir(&path).unwrap();
}

#[test]
fn private_dir_refuses_group_or_other_access() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open");
    fs::create_dir(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    match ensure_private_dir(&path) {
        Err(PrivateDirError::UnsafeMode { mode, .. }) => assert_eq!(mode, 0o755),
        other => panic!("expected UnsafeMode, got {other:?}"),
    }
}

#[test]
fn private_dir_refuses_a_symlink_even_to_a_private_dir() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    ensure_private_dir(&target).unwrap();
    let link = dir.path().join("link");
    symlink(&target, &link).unwrap();
    assert!(matches!(ensure_private_dir(&link), Err(PrivateDirError::NotADirectory { .. })));
}

#[test]
fn private_dir_refuses_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(ensure_private_dir(&file), Err(PrivateDirError::NotADirectory { .. })));
}

#[test]
fn private_dir_reports_a_missing_parent_as_io() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/parent");
    assert!(matches!(ensure_private_dir(&path), Err(PrivateDirError::Io { .. })));
}

/// Only root can give a directory away, so this runs only as root.
#[test]
fn private_dir_refuses_another_owner() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: chown to another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("theirs");
    fs::create_dir(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    match ensure_private_dir(&path) {
        Err(PrivateDirError::WrongOwner { owner, me, .. }) => {
            assert_eq!(owner, 65534);
            assert_eq!(me, 0);
        }
        other => panic!("expected WrongOwner, got {other:?}"),
    }
}

#[test]
fn socket_path_max_matches_sun_path() {
    let expected = if cfg!(any(target_os = "freebsd", target_os = "macos")) { 103 } else { 107 };
    assert_eq!(SOCKET_PATH_MAX, expected);
}

#[test]
fn signal_names() {
    assert_eq!(signal_from_name("HUP"), Some(libc::SIGHUP));
    assert_eq!(signal_from_name("sigusr1"), Some(libc::SIGUSR1));
    assert_eq!(signal_from_name("9"), Some(libc::SIGKILL));
    assert_eq!(signal_from_name(""), None);
    assert_eq!(signal_from_name("SIG"), None);
    assert_eq!(signal_name(libc::SIGTERM), Some("TERM"));
    assert_eq!(signal_name(libc::SIGUSR2), Some("USR2"));
    assert_eq!(signal_name(9999), None);
}

#[test]
fn start_time_of_self_is_stable() {
    let me = std::process::id() as i32;
    let first = process_start_time(me).unwrap();
    let second = process_start_time(me).unwrap();
    assert_eq!(first, second);
}

#[test]
fn start_time_of_a_child_then_not_found_once_reaped() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    let t1 = process_start_time(pid).unwrap();
    assert_eq!(process_start_time(pid).unwrap(), t1);
    child.kill().unwrap();
    child.wait().unwrap();
    let e = process_start_time(pid).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
}

#[test]
fn process_table_has_self_and_a_child() {
    let me = std::process::id() as i32;
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let child_pid = child.id() as i32;
    let table = process_table();
    let child_start = process_start_time(child_pid);
    let own_start = process_start_time(me);
    child.kill().unwrap();
    child.wait().unwrap();
    let table = table.unwrap();

    let mut pids: Vec<i32> = table.iter().map(|e| e.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), table.len(), "a pid appears twice");
    assert!(table.iter().all(|e| e.pid > 0));

    let own = table.iter().find(|e| e.pid == me).expect("the test process is in the table");
    assert_eq!(own.ppid, std::os::unix::process::parent_id() as i32);
    assert_eq!(own.pgid, nix::unistd::getpgrp().as_raw());
    assert_eq!(own.start_time, own_start.unwrap());
    assert!(!own.zombie);

    let kid = table.iter().find(|e| e.pid == child_pid).expect("the child is in the table");
    assert_eq!(kid.ppid, me);
    assert_eq!(kid.start_time, child_start.unwrap());
    assert!(!kid.zombie);
    assert!(descendants(&table, me).iter().any(|e| e.pid == child_pid));
}

#[test]
fn process_table_marks_an_unreaped_child_as_zombie() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    child.kill().unwrap();
    // Not reaped yet: the child turns into a zombie once the kill lands.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let entry = loop {
        let entry = process_table().unwrap().into_iter().find(|e| e.pid == pid);
        if entry.is_some_and(|e| e.zombie) || std::time::Instant::now() > deadline {
            break entry;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    child.wait().unwrap();
    let entry = entry.expect("the unreaped child is in the table");
    assert!(entry.zombie, "{entry:?}");
    assert_eq!(entry.ppid, std::process::id() as i32);
}

#[test]
fn start_time_rejects_non_positive_pids() {
    for pid in [0, -1] {
        assert_eq!(process_start_time(pid).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}

#[test]
fn notify_to_a_path_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let receiver = UnixDatagram::bind(&path).unwrap();
    notify_to(path.as_os_str(), "READY=1").unwrap();
    let mut buf = [0u8; 64];
    let n = receiver.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
}

#[test]
fn notify_to_a_missing_socket_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody-listens");
    assert!(notify_to(path.as_os_str(), "READY=1").is_err());
}

#[cfg(target_os = "linux")]
#[test]
fn notify_to_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("svc-platform-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let receiver = UnixDatagram::bind_addr(&addr).unwrap();
    notify_to(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
    let mut buf = [0u8; 64];
    let n = receiver.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
}

#[cfg(not(target_os = "linux"))]
#[test]
fn abstract_notify_sockets_are_linux_only() {
    let e = notify_to(OsStr::new("@whatever"), "READY=1").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Unsupported);
}

#[test]
fn raise_nofile_limit_never_lowers() {
    let (old, new) = raise_nofile_limit().unwrap();
    assert!(new >= old);
    // Idempotent: a second call finds nothing to raise.
    let (again_old, again_new) = raise_nofile_limit().unwrap();
    assert_eq!(again_old, new);
    assert_eq!(again_new, new);
}

#[test]
fn default_paths() {
    let home = std::path::Path::new("/home/u");
    let state = default_state_dir(home, None);
    if cfg!(target_os = "macos") {
        assert_eq!(state, home.join("Library/Application Support/svc"));
        assert_eq!(default_log_dir(home, &state), home.join("Library/Logs/svc"));
    } else {
        assert_eq!(state, home.join(".local/state/svc"));
        let xdg = std::path::Path::new("/x/state/svc");
        assert_eq!(default_state_dir(home, Some(xdg)), xdg);
        assert_eq!(default_log_dir(home, xdg), xdg.join("logs"));
        let uid = nix::unistd::getuid();
        assert_eq!(private_temp_dir(), std::path::PathBuf::from(format!("/tmp/svc-{uid}")));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn linux_capabilities() {
    const { assert!(HAS_PARENT_DEATH_SIGNAL) };
    assert_eq!(OS_NAME, "Linux");
    become_subreaper().unwrap();
}

#[cfg(any(target_os = "macos", target_os = "illumos"))]
#[test]
fn missing_capabilities_are_reported() {
    const { assert!(!HAS_PARENT_DEATH_SIGNAL) };
    assert!(matches!(become_subreaper(), Err(Error::Unsupported { .. })));
    assert_eq!(child_set_parent_death_signal(libc::SIGTERM).unwrap_err().kind(), io::ErrorKind::Unsupported);
}

/// The parent-death signal is set in a child between fork and exec, the way the daemon uses it.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
#[test]
fn parent_death_signal_in_pre_exec() {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("true");
    // SAFETY: the closure only makes the async-signal-safe call under test.
    unsafe {
        cmd.pre_exec(|| child_set_parent_death_signal(libc::SIGTERM));
    }
    assert!(cmd.status().unwrap().success());
}

/// Kills a test's process group however the test ends.
struct GroupGuard(std::process::Child);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

#[test]
fn group_usage_sums_the_members_of_a_group() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    // The leader holds 50 MB in a shell variable and waits; the CPU comes from a busy child in
    // the same group, so CPU time that grows while the leader waits proves members are summed.
    // On SIGTERM the leader kills and reaps the busy child itself, so that the group is empty
    // once the test has reaped the leader (an orphan would wait for whoever adopts it).
    let script = r#"sh -c 'while :; do :; done' &
trap 'kill $!; wait; exit 0' TERM
x=$(head -c 50000000 /dev/zero | tr '\0' a)
echo ready
wait"#;
    let mut child = Command::new("sh")
        .args(["-c", script])
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    let stdout = child.stdout.take().expect("piped");
    let guard = GroupGuard(child);
    let pgid = guard.0.id() as i32;
    let mut line = String::new();
    io::BufReader::new(stdout).read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "ready");

    let first = group_usage(&[pgid, -1]).expect("group_usage");
    assert_eq!(first.len(), 2);
    assert_eq!(first[1], GroupUsage::default());
    let mem = first[0].memory_bytes.expect("resident memory is known on every supported OS");
    assert!(mem >= 50_000_000, "{mem} bytes");
    let cpu0 = first[0].cpu_seconds.expect("CPU time is known on every supported OS");
    // Polled, not timed: a loaded machine may give the busy child little CPU for a while.
    let mut cpu = cpu0;
    for _ in 0..400 {
        if cpu >= cpu0 + 0.2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        cpu = group_usage(&[pgid]).expect("group_usage")[0].cpu_seconds.expect("cpu");
    }
    assert!(cpu >= cpu0 + 0.2, "CPU time did not grow: {cpu0} then {cpu}");

    let mut guard = guard;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGTERM).expect("kill");
    guard.0.wait().expect("wait");
    // The group is gone: nothing is known about it, which is not "zero".
    let gone = group_usage(&[pgid]).expect("group_usage")[0];
    assert_eq!(gone, GroupUsage::default());
}
