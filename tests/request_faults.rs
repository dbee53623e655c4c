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
