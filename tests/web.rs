//! `svc web`: its security checks at the HTTP level (raw requests, as an attacker's page or
//! another local user would send them), and the page itself in a real headless Chromium driven
//! over the DevTools protocol.

use crate::support::{PATIENCE, Sandbox, TestDaemon, wait_until};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `svc web`, stopped (and checked gone) on drop.
pub(crate) struct Web {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// The printed one-time link.
    url: String,
    token: String,
}

impl Web {
    pub(crate) fn start(cmd: Command) -> Web {
        Web::start_with(cmd, &[])
    }

    /// `svc web ARGS`.
    fn start_with(mut cmd: Command, args: &[&str]) -> Web {
        cmd.arg("web").args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().expect("spawn svc web");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut url = String::new();
        let mut line = String::new();
        while url.is_empty() {
            line.clear();
            if out.read_line(&mut line).expect("read svc web output") == 0 {
                let mut err = String::new();
                let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("svc web ended before printing its link: {err}");
            }
            if let Some(u) = line.split_whitespace().find(|w| w.contains("?token=")) {
                url = u.to_owned();
            }
        }
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let (base, token) = url.split_once("/?token=").expect("link shape");
        let addr = base.strip_prefix("http://").expect("http link").to_owned();
        Web { child, addr, token: token.to_owned(), url }
    }

    /// Sends one raw HTTP/1.1 request; returns the status, the headers (lowercased names) and
    /// the body.
    pub(crate) fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        http(&self.addr, method, path, &[&[("Host", self.addr.as_str())], headers].concat(), body)
    }

    /// Exchanges the token for the session cookie (`name=value`).
    pub(crate) fn login(&self) -> String {
        let r = self.request("GET", &format!("/?token={}", self.token), &[], "");
        assert_eq!(r.status, 200, "{r:?}");
        let set = r.header("set-cookie").unwrap_or_else(|| panic!("no cookie: {r:?}"));
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        set.split(';').next().expect("cookie pair").to_owned()
    }

    /// Ends it (SIGTERM) and returns what it wrote on stderr.
    pub(crate) fn stop_and_stderr(&mut self) -> String {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::SIGTERM);
        let _ = self.child.wait();
        self.stderr()
    }

    fn stderr(&mut self) -> String {
        let mut err = String::new();
        let _ = self.child.stderr.take().map(|mut e| e.read_to_string(&mut err));
        err
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to svc web");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read reply");
    parse_reply(&raw)
}

fn parse_reply(raw: &str) -> Reply {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply { status, headers, body: body.to_owned() }
}

/// Opens a server-sent stream and reads until `done` holds for what arrived so far.
pub(crate) fn sse_until(addr: &str, path: &str, cookie: &str, done: impl Fn(&str) -> bool) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to svc web");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n");
    s.write_all(req.as_bytes()).expect("send request");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + PATIENCE;
    while !done(&seen) {
        assert!(Instant::now() < deadline, "timed out; the stream so far:\n{seen}");
        let n = s.read(&mut buf).expect("read the stream in time");
        assert!(n > 0, "the stream ended:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

const CONFIG: &str = r#"
program "api" {
    command "sh" "-c" "i=0; while true; do i=$$((i+1)); echo \"GET /health 200 ($$i)\"; sleep 0.5; done"
    start-secs 0
}
program "worker" { command "sleep" "100000"; start-secs 0; }
program "nightly" { command "sleep" "100000"; autostart #false; }
program "mailer" {
    command "sh" "-c" "echo 'smtp: connection refused' >&2; exit 1"
    start-retries 1
    backoff { initial "10ms"; max "20ms"; }
}
group "jobs" { programs "worker" "nightly"; }
"#;

#[test]
fn web_wants_its_token_once_its_own_host_and_same_origin_changes() {
    let d = TestDaemon::start(CONFIG);
    d.wait_state("worker", "RUNNING");
    let mut web = Web::start(d.command(&[]));
    let all_replies = std::cell::RefCell::new(Vec::new());
    let req = |method: &str, path: &str, headers: &[(&str, &str)], body: &str| {
        let r = web.request(method, path, headers, body);
        all_replies.borrow_mut().push(r.headers.clone());
        r
    };

    // No token, a wrong one: nothing but 401.
    assert_eq!(req("GET", "/", &[], "").status, 401);
    assert_eq!(req("GET", "/api/events", &[], "").status, 401);
    assert_eq!(req("GET", "/?token=0123", &[], "").status, 401);
    // The right token under another name (DNS rebinding: evil.example resolving to 127.0.0.1)
    // is refused before it is looked at, so it is still good afterwards.
    let port = web.addr.rsplit_once(':').expect("port").1.to_owned();
    let rebound = format!("evil.example:{port}");
    let r = http(&web.addr, "GET", &format!("/?token={}", web.token), &[("Host", &rebound)], "");
    assert_eq!(r.status, 403, "{r:?}");
    let cookie = web.login();
    // Single use: the same link again gets nothing.
    assert_eq!(req("GET", &format!("/?token={}", web.token), &[], "").status, 401);
    // The session works under every loopback name, and not under another.
    for host in [format!("localhost:{port}"), format!("[::1]:{port}"), web.addr.clone()] {
        let r = http(&web.addr, "GET", "/", &[("Host", &host), ("Cookie", &cookie)], "");
        assert_eq!(r.status, 200, "{host}: {r:?}");
        assert!(r.body.contains("<title>svc</title>"), "{}", r.body);
    }
    let r = http(&web.addr, "GET", "/", &[("Host", &rebound), ("Cookie", &cookie)], "");
    assert_eq!(r.status, 403, "a valid session under a rebound name: {r:?}");
    assert_eq!(req("GET", "/app.js", &[("Cookie", &cookie)], "").status, 200);

    // The stream: who we are, then the daemon's snapshot.
    let stream = sse_until(&web.addr, "/api/events", &cookie, |s| s.contains("event: snapshot"));
    assert!(stream.contains(r#""role":"owner""#), "{stream}");
    assert!(stream.contains(r#""name":"worker""#), "{stream}");

    // Changes: only from this origin, as JSON.
    let pid = d.pid_of("worker").expect("worker pid");
    let restart = r#"{"verb":"restart","targets":["worker"]}"#;
    let origin = format!("http://{}", web.addr);
    let json_type = ("Content-Type", "application/json");
    for (why, headers) in [
        ("no Origin", vec![("Cookie", cookie.as_str()), json_type]),
        ("another Origin", vec![("Cookie", cookie.as_str()), json_type, ("Origin", "http://evil.example")]),
        (
            "a cross-site fetch",
            vec![("Cookie", cookie.as_str()), json_type, ("Origin", origin.as_str()), ("Sec-Fetch-Site", "cross-site")],
        ),
        ("not JSON (a form)", vec![("Cookie", cookie.as_str()), ("Origin", origin.as_str())]),
        ("no session", vec![json_type, ("Origin", origin.as_str())]),
    ] {
        let r = req("POST", "/api/control", &headers, restart);
        assert!(matches!(r.status, 401 | 403 | 415), "{why}: {r:?}");
    }
    assert_eq!(d.pid_of("worker"), Some(pid), "a refused request restarted it");
    let r = req("POST", "/api/control", &[("Cookie", &cookie), json_type, ("Origin", &origin)], restart);
    assert_eq!(r.status, 200, "{r:?}");
    wait_until("worker restarted", || d.pid_of("worker").is_some_and(|p| p != pid));
    // The dry run of a reload answers with the plan and changes nothing.
    let r = req("POST", "/api/reload", &[("Cookie", &cookie), json_type, ("Origin", &origin)], r#"{"dry_run":true}"#);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains(r#""plan":{"added":[],"removed":[],"changed":[],"updated":[],"#), "{}", r.body);

    // No answer lets another site read it (no CORS), every one forbids framing.
    for headers in all_replies.borrow().iter() {
        assert!(!headers.iter().any(|(n, _)| n.starts_with("access-control-")), "{headers:?}");
        assert!(headers.iter().any(|(n, v)| n == "x-frame-options" && v == "DENY"), "{headers:?}");
    }
    // The token is on svc web's stdout only: not in its stderr, not in the daemon's log.
    drop(all_replies);
    let token = web.token.clone();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(web.child.id() as i32), nix::sys::signal::SIGTERM);
    let _ = web.child.wait();
    let err = web.stderr();
    assert!(!err.contains(&token), "{err}");
    assert!(!d.daemon_stderr().contains(&token));
}

#[test]
fn web_refuses_addresses_other_machines_reach_unless_allowed() {
    let s = Sandbox::new();
    let run = s.svc(&["web", "--listen", "192.0.2.1:8080"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--allow-remote") && run.stderr.contains("ssh -L"), "{}", run.stderr);
    let run = s.svc(&["web", "--listen", "0.0.0.0:8080", "--allow-remote"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("name one address"), "{}", run.stderr);
}

#[test]
fn web_open_hands_the_link_over_in_a_private_file_not_on_a_command_line() {
    let d = TestDaemon::start(CONFIG);
    // A stand-in browser opener that notes what it was given and keeps a copy of the page.
    let bin = d.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let opener = bin.join("xdg-open");
    let seen = d.path().join("opened");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\ncat \"${{1#file://}}\" > {0}.page\nprintf '%s' \"$1\" > {0}\n", seen.display()),
    )
    .expect("write opener");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut cmd = d.command(&[]);
    cmd.env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()));
    let web = Web::start_with(cmd, &["--open"]);
    wait_until("the opener to run", || std::fs::read_to_string(&seen).is_ok_and(|s| !s.is_empty()));
    let arg = std::fs::read_to_string(&seen).expect("opener's argument");
    assert!(arg.starts_with("file:///") && !arg.contains(&web.token), "{arg}");
    let page = std::fs::read_to_string(format!("{}.page", seen.display())).expect("the page it opened");
    assert!(page.contains(&web.url), "{page}");
    let file = std::path::PathBuf::from(arg.strip_prefix("file://").expect("file URL"));
    let meta = std::fs::metadata(&file).expect("the page is there until the link is used");
    assert_eq!(meta.mode() & 0o777, 0o600);
    let dir = std::fs::metadata(file.parent().expect("dir")).expect("its dir");
    assert_eq!(dir.mode() & 0o777, 0o700);
    web.login();
    wait_until("the page removed once the link was used", || !file.exists());
}

#[test]
fn web_read_only_members_session_cannot_act() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to create a group and act as its member (CI runs it as root)");
        return;
    }
    let status = Command::new("groupadd").args(["-f", "svcshare"]).status().expect("groupadd");
    assert!(status.success());
    let gid = nix::unistd::Group::from_name("svcshare").expect("lookup").expect("group").gid.as_raw();
    let s = Sandbox::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    s.write_config(&format!("access {{ group \"svcshare\" read-only=#true; }}\n{CONFIG}"));
    let d = TestDaemon::start_in(s);
    d.wait_state("worker", "RUNNING");
    let pid = d.pid_of("worker");
    // svc web as another user in the group (nobody), pointed at the shared socket.
    let mut cmd = d.command(&["--socket", &d.socket().display().to_string()]);
    cmd.uid(65534).gid(gid).env("HOME", "/tmp");
    let web = Web::start(cmd);
    let cookie = web.login();
    let stream = sse_until(&web.addr, "/api/events", &cookie, |s| s.contains("event: snapshot"));
    assert!(stream.contains(r#""role":"read_only""#), "the page is told to offer no actions: {stream}");
    let origin = format!("http://{}", web.addr);
    for body in
        [r#"{"verb":"restart","targets":["worker"]}"#, r#"{"verb":"signal","targets":["worker"],"signal":"KILL"}"#]
    {
        let r = web.request(
            "POST",
            "/api/control",
            &[("Cookie", &cookie), ("Content-Type", "application/json"), ("Origin", &origin)],
            body,
        );
        assert_eq!(r.status, 403, "{r:?}");
        assert!(r.body.contains("permission_denied") && r.body.contains("read-only"), "{}", r.body);
    }
    let r = web.request(
        "POST",
        "/api/reload",
        &[("Cookie", &cookie), ("Content-Type", "application/json"), ("Origin", &origin)],
        r#"{"dry_run":false}"#,
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(d.pid_of("worker"), pid);
    assert_eq!(d.state_of("worker"), "RUNNING");
}

/// Chromium in its own process group, driven over `--remote-debugging-pipe` (fd 3: commands
/// in, fd 4: replies and events out, each message ending in NUL); the whole group is killed
/// on drop.
struct Browser {
    child: Child,
    to: std::fs::File,
    replies: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
}

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"].into_iter().find_map(|name| {
        let path = std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())?;
        Some(path.display().to_string())
    })
}

/// A pipe whose ends sit at fd 100 or above, close-on-exec, so that they can be moved onto
/// fds 3 and 4 in the child without clobbering each other.
fn high_pipe() -> (OwnedFd, OwnedFd) {
    // std's pipe is close-on-exec on every OS (macOS has no pipe2).
    let (r, w) = std::io::pipe().expect("pipe");
    let high = |fd: OwnedFd| {
        // SAFETY: F_DUPFD_CLOEXEC returns a new fd that we then own; `fd` is closed on drop.
        unsafe {
            let h = libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100);
            assert!(h >= 100, "dup");
            OwnedFd::from_raw_fd(h)
        }
    };
    (high(OwnedFd::from(r)), high(OwnedFd::from(w)))
}

impl Browser {
    fn launch(sandbox: &Sandbox) -> Browser {
        let bin = chromium().expect("chromium is installed");
        let (cmd_r, cmd_w) = high_pipe();
        let (out_r, out_w) = high_pipe();
        let profile = sandbox.path().join("chromium");
        let mut cmd = Command::new(bin);
        cmd.args([
            "--headless",
            // Our own page in a throwaway profile; the sandbox needs privileges CI may lack (as
            // root Chromium refuses to run with it at all).
            "--no-sandbox",
            "--no-zygote",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-pings",
            // Anything but loopback goes to a proxy that is not there: the test never reaches out.
            "--proxy-server=http://127.0.0.1:9",
            "--hide-scrollbars",
            "--window-size=1200,760",
            "about:blank",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .env("HOME", sandbox.path().join("home"))
        .env(sandbox.marker.split_once('=').expect("marker").0, sandbox.marker.split_once('=').expect("marker").1)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(sandbox.path().join("chromium.log")).expect("log"))
        .process_group(0);
        let (r, w) = (std::os::fd::AsRawFd::as_raw_fd(&cmd_r), std::os::fd::AsRawFd::as_raw_fd(&out_w));
        // SAFETY: dup2 is async-signal-safe; the sources are open fds of ours (>= 100).
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn chromium");
        drop((cmd_r, out_w));
        let (tx, replies) = mpsc::channel();
        let mut from = BufReader::new(std::fs::File::from(out_r));
        std::thread::spawn(move || {
            let mut msg = Vec::new();
            while from.read_until(0, &mut msg).is_ok_and(|n| n > 0) {
                msg.pop();
                if let Ok(v) = serde_json::from_slice::<Value>(&msg)
                    && tx.send(v).is_err()
                {
                    return;
                }
                msg.clear();
            }
        });
        let mut b = Browser { child, to: std::fs::File::from(cmd_w), replies, next_id: 0, session: String::new() };
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = b.call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true }));
        b.session = attached["sessionId"].as_str().expect("session id").to_owned();
        b.call("Page.enable", json!({}));
        b
    }

    /// Sends a command (to the page once attached) and waits for its reply.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.replies.recv_timeout(left).unwrap_or_else(|_| panic!("no reply to {method} from chromium"));
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page; its value as JSON.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({ "expression": expr, "returnByValue": true }));
        r["result"]["value"].clone()
    }

    fn wait_eval(&mut self, what: &str, expr: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = self.eval(expr);
            if want(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A real mouse click at the middle of the element `selector` selects.
    fn click(&mut self, selector: &str) {
        let rect = self.eval(&format!(
            "(() => {{ const r = document.querySelector({selector:?}).getBoundingClientRect(); \
             return {{ x: r.x + r.width / 2, y: r.y + r.height / 2 }}; }})()"
        ));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": rect["x"], "y": rect["y"], "button": "left", "clickCount": 1 }),
            );
        }
    }

    fn screenshot(&mut self, path: &std::path::Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64(shot["data"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).map(value).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c.iter().enumerate().fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
            let bytes = n.to_be_bytes();
            bytes[1..c.len()].to_vec()
        })
        .collect()
}

#[test]
fn web_page_in_chromium_follows_states_and_restarts() {
    if chromium().is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI installs chromium (.ci/run); it is missing");
        eprintln!("skipped: no chromium (apt-get install chromium)");
        return;
    }
    let d = TestDaemon::start(CONFIG);
    d.wait_state("worker", "RUNNING");
    d.wait_state("api", "RUNNING");
    let web = Web::start(d.command(&[]));
    let mut b = Browser::launch(&d);
    let shot = d.path().join("web.png");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.call("Page.navigate", json!({ "url": web.url }));
        // The token leaves the address bar; the table fills from the event stream.
        b.wait_eval("the clean URL", "location.href", |v| v.as_str().is_some_and(|u| !u.contains("token")));
        let pid = d.pid_of("worker").expect("worker pid");
        let cell = |name: &str, class: &str| {
            format!("document.querySelector('tr[data-name=\"{name}\"] td.{class}')?.textContent")
        };
        b.wait_eval("worker's pid on the page", &cell("worker", "pid"), |v| v == &json!(pid.to_string()));
        b.wait_eval("nightly shown STOPPED", &cell("nightly", "st"), |v| v == &json!("STOPPED"));
        // A mark that a reload of the page would wipe out.
        b.eval("window.stillTheSamePage = true");

        // A change made elsewhere (the CLI) shows up without a reload.
        assert_eq!(d.svc(&["stop", "worker"]).code, 0);
        b.wait_eval("worker shown STOPPED", &cell("worker", "st"), |v| v == &json!("STOPPED"));
        assert_eq!(d.svc(&["start", "worker"]).code, 0);
        let pid = d.pid_of("worker").expect("worker pid");
        b.wait_eval("worker's new pid", &cell("worker", "pid"), |v| v == &json!(pid.to_string()));

        // Pressing Restart restarts it.
        b.click("tr[data-name=\"worker\"] button[data-verb=\"restart\"]");
        wait_until("worker restarted by the button", || d.pid_of("worker").is_some_and(|p| p != pid));
        let new_pid = d.pid_of("worker").expect("worker pid");
        d.wait_state("worker", "RUNNING");
        b.wait_eval("the restarted worker's pid", &cell("worker", "pid"), |v| v == &json!(new_pid.to_string()));
        assert_eq!(b.eval("window.stillTheSamePage === true"), json!(true), "the page was reloaded");

        // The log view follows a program's output as it comes.
        b.click("tr[data-name=\"api\"] td.name button");
        let first = b.wait_eval("api's log on the page", "document.getElementById('logtext').textContent", |v| {
            v.as_str().is_some_and(|t| t.contains("GET /health 200"))
        });
        let lines = |v: &Value| v.as_str().map_or(0, |t| t.lines().count());
        let before = lines(&first);
        b.wait_eval("more of api's log", "document.getElementById('logtext').textContent", |v| lines(v) > before);
        b.wait_eval("mailer shown FATAL", &cell("mailer", "st"), |v| {
            v.as_str().is_some_and(|t| t.starts_with("FATAL"))
        });
        b.wait_eval("memory filled in", &cell("api", "mem"), |v| v.as_str().is_some_and(|t| t.ends_with('B')));
        // CPU is a rate: it takes a second sample (5 s later) while the page is open.
        b.wait_eval("CPU filled in", &cell("api", "cpu"), |v| v.as_str().is_some_and(|t| t.ends_with('%')));
        b.screenshot(&shot);
        // The same page in the dark and at a phone's width, to look at.
        let dark = json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] });
        b.call("Emulation.setEmulatedMedia", dark);
        b.screenshot(&d.path().join("web-dark.png"));
        let phone = json!({ "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true });
        b.call("Emulation.setDeviceMetricsOverride", phone);
        let wide = "document.documentElement.scrollWidth <= window.innerWidth";
        b.wait_eval("no sideways scrolling at phone width", wide, |v| v == &json!(true));
        b.screenshot(&d.path().join("web-phone.png"));
        // scripts/web-screenshot.sh keeps them (docs/web.png is the first).
        if let Some(dir) = std::env::var_os("SVC_WEB_SCREENSHOTS") {
            for name in ["web.png", "web-dark.png", "web-phone.png"] {
                std::fs::copy(d.path().join(name), std::path::Path::new(&dir).join(name)).expect("copy a screenshot");
            }
        }
    }));
    if let Err(e) = result {
        // Whatever the page showed when it failed, to look at.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.screenshot(&shot)));
        let keep = std::env::temp_dir().join(format!("svc-web-failure-{}.png", std::process::id()));
        let _ = std::fs::copy(&shot, &keep);
        eprintln!("screenshot of the page: {}", keep.display());
        std::panic::resume_unwind(e);
    }
}

#[test]
fn web_page_says_when_the_daemon_goes_and_comes_back() {
    if chromium().is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI installs chromium (.ci/run); it is missing");
        eprintln!("skipped: no chromium (apt-get install chromium)");
        return;
    }
    let d = TestDaemon::start(CONFIG);
    d.wait_state("worker", "RUNNING");
    // These outlive the first daemon, whose guard would take them for its leftovers: they go
    // without the sandbox's marker, and their own guards end them.
    let marker = d.marker.split_once('=').expect("marker").0.to_owned();
    let mut cmd = d.command(&[]);
    cmd.env_remove(&marker);
    let web = Web::start(cmd);
    let mut b = Browser::launch(&d);
    b.call("Page.navigate", json!({ "url": web.url }));
    let banner = "document.getElementById('banner').hidden ? '' : document.getElementById('banner').textContent";
    let worker = "document.querySelector('tr[data-name=\"worker\"] td.st')?.textContent";
    b.wait_eval("the table", worker, |v| v == &json!("RUNNING"));
    assert_eq!(d.svc(&["shutdown"]).code, 0);
    let mut d = d;
    assert_eq!(d.wait_exit(), Some(0));
    b.wait_eval("the daemon-gone banner", banner, |v| v.as_str().is_some_and(|t| t.contains("daemon is gone")));
    assert_eq!(b.eval("document.body.classList.contains('stale')"), json!(true));
    let d = TestDaemon::start_in(d.into_sandbox());
    d.wait_state("worker", "RUNNING");
    b.wait_eval("the daemon-back banner", banner, |v| v.as_str().is_some_and(|t| t.contains("is back")));
    let pid = d.pid_of("worker").expect("pid");
    let cell = "document.querySelector('tr[data-name=\"worker\"] td.pid')?.textContent";
    b.wait_eval("the new daemon's worker", cell, |v| v == &json!(pid.to_string()));
    drop(b);
    drop(web);
}
