//! Requests sent to hurt: work a single request can cause, and connections refused in a loop.
//! docs/reliability.md lists what these establish; the timings are in bench/ (not asserted).

use crate::support::{Sandbox, TestDaemon, wait_until};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

/// `n` programs that are never started, so the test needs no processes.
fn idle_programs(n: usize) -> String {
    (0..n).map(|i| format!("program \"p{i:04}\" {{ command \"sleep\" \"100000\"; autostart #false }}\n")).collect()
}

/// A raw `status` request naming one unknown target of `len` characters.
fn status_of_unknown(len: usize) -> String {
    format!("{{\"protocol\":1,\"type\":\"status\",\"targets\":[\"{}\"]}}\n", "q".repeat(len))
}

#[test]
fn a_huge_unknown_target_is_refused_and_others_are_served_meanwhile() {
    // One name is a single edit away from the hostile target: if long words were compared,
    // it would be suggested.
    let near = format!("{}x", "q".repeat(64_999));
    let d = TestDaemon::start(&format!(
        "{}program \"{near}\" {{ command \"sleep\" \"100000\"; autostart #false }}\n",
        idle_programs(299)
    ));
    let request = status_of_unknown(65_000);
    let hostile: Vec<_> = (0..3)
        .map(|_| {
            let mut conn = UnixStream::connect(d.socket()).expect("connect");
            let request = request.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut replies = Vec::new();
                for _ in 0..20 {
                    conn.write_all(request.as_bytes()).expect("write");
                    let mut reply = String::new();
                    reader.read_line(&mut reply).expect("read");
                    replies.push(serde_json::from_str::<serde_json::Value>(&reply).expect("reply is JSON"));
                }
                replies
            })
        })
        .collect();
    // While they ask, an ordinary client gets ordinary answers.
    for _ in 0..5 {
        let run = d.svc(&["status", "--json"]);
        assert_eq!(run.code, 3, "nothing is running, so status exits 3: {run:?}");
        let all: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("json");
        assert_eq!(all.len(), 300);
        assert_eq!(all[299]["name"], near.as_str());
        let one = d.svc(&["status", "p0298"]);
        assert!(one.stdout.contains("p0298") && one.stdout.contains("STOPPED"), "{one:?}");
    }
    for h in hostile {
        for reply in h.join().expect("hostile client") {
            assert_eq!(reply["code"], "unknown_target", "{}", &reply.to_string()[..200]);
            assert_eq!(reply["field"], "targets");
            let message = reply["message"].as_str().expect("message");
            assert!(!message.contains("did you mean"), "no suggestion for a 65,000-character name");
        }
    }
    // Suggestions still come for ordinary typos.
    let typo = d.svc(&["status", "p0298x"]);
    assert!(typo.stderr.contains("did you mean `p0298`"), "{typo:?}");
}

/// Refusal lines about `uid` in the daemon log, and how many refused connections they account
/// for (the first is one; a summary says how many more).
fn refusals_logged(log: &str, uid: u32) -> (usize, u64) {
    let who = format!("from uid {uid}");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("refused") && l.contains(&who)).collect();
    let counted = lines
        .iter()
        .map(|l| {
            let rest = &l[l.find("refused ").expect("refused") + "refused ".len()..];
            let n = rest.split(' ').next().unwrap_or_default();
            if n == "a" { 1 } else { n.replace(',', "").parse::<u64>().unwrap_or_else(|_| panic!("count in {l:?}")) }
        })
        .sum();
    (lines.len(), counted)
}

#[test]
fn refused_connections_in_a_loop_are_summed_up_in_the_log() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to act as a second user (CI runs it as root)");
        return;
    }
    const CONNECTIONS: u64 = 2000;
    let window = std::time::Duration::from_millis(1000);
    let s = Sandbox::new();
    s.write_config(&idle_programs(1));
    let d = TestDaemon::start_with_env(s, &[("SVC_REFUSAL_WINDOW_MS", &window.as_millis().to_string())]);
    // Someone loosened every mode on the way to the socket.
    use std::os::unix::fs::PermissionsExt;
    for p in [d.path().to_path_buf(), d.path().join("run"), d.socket()] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let before = d.daemon_stderr();
    let script = format!(
        "import socket\n\
         refused = 0\n\
         for _ in range({CONNECTIONS}):\n\
         \x20   s = socket.socket(socket.AF_UNIX); s.connect({:?})\n\
         \x20   reply = b''\n\
         \x20   while chunk := s.recv(4096): reply += chunk\n\
         \x20   refused += b'permission_denied' in reply\n\
         \x20   s.close()\n\
         print(refused)",
        d.socket().display().to_string()
    );
    let started = std::time::Instant::now();
    let out = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("python3").args(["-c", &script]).uid(65534).gid(65534).output().expect("python3")
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), CONNECTIONS.to_string(), "{out:?}");
    let new_log = || d.daemon_stderr()[before.len()..].to_owned();
    // The last window's count is written when that window ends, by a timer armed for it.
    wait_until("every refusal accounted for in the log", || refusals_logged(&new_log(), 65534).1 >= CONNECTIONS);
    let elapsed = started.elapsed();
    let log = new_log();
    let (lines, counted) = refusals_logged(&log, 65534);
    assert_eq!(counted, CONNECTIONS, "{log}");
    // The first refusal, then at most one summary per window that ended meanwhile.
    let windows = (elapsed.as_millis() / window.as_millis()) as usize + 1;
    assert!(lines <= 1 + windows, "{lines} refusal lines in {elapsed:?}:\n{log}");
    assert!(lines < 20, "{lines} refusal lines:\n{log}");
    assert!(log.lines().count() <= lines + 2, "other lines per connection:\n{log}");
    eprintln!(
        "{CONNECTIONS} refused connections in {elapsed:?}: daemon log grew by {} bytes, {} lines",
        log.len(),
        log.lines().count()
    );
    assert_eq!(d.svc(&["status", "p0000"]).code, 3, "still serving its owner");
}
