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
