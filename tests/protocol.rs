//! The socket protocol spoken directly, as another language's client would.

use crate::support::TestDaemon;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

fn ask(conn: &mut UnixStream, reader: &mut BufReader<UnixStream>, line: &str) -> serde_json::Value {
    conn.write_all(line.as_bytes()).expect("write");
    conn.write_all(b"\n").expect("write");
    let mut reply = String::new();
    reader.read_line(&mut reply).expect("read");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {reply:?}"))
}

#[test]
fn bad_lines_get_error_replies_and_the_connection_survives() {
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000"; start-secs 0 }"#);
    let mut conn = UnixStream::connect(d.socket()).expect("connect");
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));

    let r = ask(&mut conn, &mut reader, "this is not json");
    assert_eq!(r["type"], "error");
    assert_eq!(r["code"], "bad_request");

    let r = ask(&mut conn, &mut reader, r#"{"protocol":1,"type":"self_destruct"}"#);
    assert_eq!(r["field"], "type");

    let r = ask(&mut conn, &mut reader, r#"{"protocol":1,"type":"status","tragets":[]}"#);
    assert_eq!(r["field"], "tragets");

    let r = ask(&mut conn, &mut reader, r#"{"protocol":999,"type":"status"}"#);
    assert_eq!(r["code"], "protocol_mismatch");

    let r = ask(&mut conn, &mut reader, r#"{"protocol":1,"type":"status"}"#);
    assert_eq!(r["type"], "status");
    assert_eq!(r["programs"][0]["name"], "p");
}

#[test]
fn over_long_line_is_refused() {
    // Not started, so `status p` exits 3 however long the test takes.
    let d = TestDaemon::start(r#"program "p" { command "sleep 1000"; autostart #false }"#);
    let mut conn = UnixStream::connect(d.socket()).expect("connect");
    let reader = BufReader::new(conn.try_clone().expect("clone"));
    let big = vec![b'x'; 1024 * 1024];
    // The daemon may close before reading it all; a write error is fine.
    let _ = conn.write_all(&big);
    let mut reply = String::new();
    let mut reader = reader;
    reader.read_line(&mut reply).expect("read");
    let v: serde_json::Value = serde_json::from_str(&reply).expect("json");
    assert_eq!(v["code"], "too_long");
    // And the daemon still serves others.
    assert_eq!(d.svc(&["status", "p"]).code, 3);
}

/// `logs` naming several programs answers over one connection: each one's tail tagged with its
/// name, one untagged empty `log` that ends the tails, then their new output as it comes,
/// tagged; a name that cannot be served fails the request with the field.
#[test]
fn logs_of_many_programs_over_one_connection_are_tagged_by_name() {
    let s = crate::support::Sandbox::new();
    // Each shell holds its fifo open read-write, so the test's writes never race a re-open.
    s.write_config(
        r#"
        program "a" { command "sh" "-c" "echo a-old; exec 3<>./fa; while read x <&3; do echo a-$$x; done"; directory "."; start-secs 0 }
        program "b" { command "sh" "-c" "echo b-old >&2; exec 3<>./fb; while read x <&3; do echo b-$$x >&2; done"; directory "."; start-secs 0 }
        "#,
    );
    for f in ["fa", "fb"] {
        nix::unistd::mkfifo(&s.path().join(f), nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    }
    let d = TestDaemon::start_in(s);
    crate::support::wait_until("both tails", || {
        d.svc(&["logs", "a"]).stdout == "a-old\n" && d.svc(&["logs", "b"]).stdout.contains("b-old")
    });
    let mut conn = UnixStream::connect(d.socket()).expect("connect");
    conn.set_read_timeout(Some(crate::support::PATIENCE)).expect("timeout");
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut next = || {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read");
        serde_json::from_str::<serde_json::Value>(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    conn.write_all(
        b"{\"protocol\":1,\"type\":\"logs\",\"names\":[\"a\",\"b\",\"a\"],\"stream\":\"both\",\"follow\":true}\n",
    )
    .expect("write");
    let r = next();
    assert_eq!((&r["name"], &r["data"]), (&serde_json::json!("a"), &serde_json::json!("a-old\n")), "{r}");
    let r = next();
    assert_eq!(
        (&r["name"], &r["data"], &r["stream"]),
        (&serde_json::json!("b"), &serde_json::json!("b-old\n"), &serde_json::json!("stderr")),
        "{r}"
    );
    let r = next();
    assert_eq!(r["data"], "", "the end of the tails: {r}");
    assert!(r.get("name").is_none(), "{r}");
    std::fs::write(d.path().join("fb"), "one\n").expect("write fifo");
    let r = next();
    assert_eq!((&r["name"], &r["data"]), (&serde_json::json!("b"), &serde_json::json!("b-one\n")), "{r}");
    std::fs::write(d.path().join("fa"), "two\n").expect("write fifo");
    let r = next();
    assert_eq!((&r["name"], &r["data"]), (&serde_json::json!("a"), &serde_json::json!("a-two\n")), "{r}");
    drop(conn);

    // One name the daemon does not know fails the whole request, naming it.
    let mut conn = UnixStream::connect(d.socket()).expect("connect");
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let r = ask(&mut conn, &mut reader, r#"{"protocol":1,"type":"logs","names":["a","ghost"]}"#);
    assert_eq!(r["type"], "error", "{r}");
    assert!(r["message"].as_str().is_some_and(|m| m.contains("ghost")), "{r}");

    // Without follow, the reply ends with the untagged empty `log`; the connection stays usable.
    conn.write_all(b"{\"protocol\":1,\"type\":\"logs\",\"names\":[\"a\",\"b\"],\"stream\":\"both\"}\n").expect("write");
    let mut tags = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read");
        let r: serde_json::Value = serde_json::from_str(&line).expect("json");
        if r["data"] == "" && r.get("name").is_none() {
            break;
        }
        tags.push(r["name"].as_str().expect("tagged").to_owned());
    }
    assert_eq!(tags, ["a", "b"]);
    let r = ask(&mut conn, &mut reader, r#"{"protocol":1,"type":"status"}"#);
    assert_eq!(r["type"], "status");
}
