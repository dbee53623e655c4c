//! `svc web`: a dashboard in the browser, served by a small HTTP server that is one more client
//! of the daemon. Every change goes through the daemon's socket as the CLI sends it, so the
//! daemon checks it as it checks the CLI's (an `access` group member's session can do what that
//! member can do, nothing more); the web server holds no state of its own but its one session.
//!
//! This code runs only in the `svc web` process: the daemon neither links a path to it nor
//! pays for it while it is not used.
//!
//! - `/`, `/app.js`, `/app.css`, `/favicon.svg`: the page, embedded in the binary.
//! - `/api/events`: server-sent events: `hello` (the daemon and what this user may do), the
//!   daemon's own `snapshot`, `event` and `lagged` lines, `resources` (CPU and memory, sampled
//!   while a page listens) and `daemon` (the daemon went away; reconnecting).
//! - `/api/logs?name=P`: server-sent `log` chunks of one program, followed.
//! - `POST /api/control`, `POST /api/reload`: the control verbs and the reload (with dry run).

mod guard;

pub use guard::Gate;

use crate::cli::{Global, try_connect};
use crate::client::{Client, ClientError};
use crate::protocol::{self, ErrorCode, EventKind, LogSelect, ProgramStatus, Request, Response};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often CPU and memory are sampled while a page is connected (never otherwise).
const RESOURCES_EVERY: Duration = Duration::from_secs(5);
/// Longest wait between attempts to reach a daemon that went away, while a page waits for it.
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Lines of a program's log a page gets before following it.
const LOG_LINES: usize = 200;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const FAVICON: &str = include_str!("assets/favicon.svg");

/// What the handlers share.
struct Web {
    /// How to reach the daemon (a local socket, or a remote one through `-H`).
    g: Global,
}

/// Serves the dashboard on `listener` until the process is stopped.
pub async fn serve(listener: tokio::net::TcpListener, g: Global, gate: Arc<Gate>) -> std::io::Result<()> {
    let web = Arc::new(Web { g });
    let app = axum::Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/favicon.svg", get(|| async { asset("image/svg+xml", FAVICON) }))
        .route("/api/events", get(events))
        .route("/api/logs", get(logs))
        .route("/api/control", post(control))
        .route("/api/reload", post(reload))
        .with_state(web)
        .layer(axum::middleware::from_fn_with_state(gate, guard::check));
    axum::serve(listener, app).await
}

fn asset(kind: &'static str, body: &'static str) -> HttpResponse {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// A server-sent stream fed by a task that ends when the page goes away (the receiver drops).
fn sse(rx: mpsc::Receiver<Event>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|e| (Ok(e), rx)) });
    // A comment now and then: a page that vanished without closing its connection is noticed.
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default().event(name).data(serde_json::to_string(data).unwrap_or_else(|_| "null".into()))
}

async fn events(State(web): State<Arc<Web>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        tokio::select! {
            () = feed_events(&web.g, &tx) => {}
            () = tx.closed() => {}
        }
    });
    sse(rx)
}

/// Relays the daemon's event stream to one page; when the daemon goes away, says so and tries
/// again (with a growing pause) for as long as the page listens.
async fn feed_events(g: &Global, tx: &mpsc::Sender<Event>) {
    let mut pause = Duration::from_secs(1);
    loop {
        let (reached, why) = watch(g, tx).await;
        if reached {
            pause = Duration::from_secs(1);
        }
        let gone = serde_json::json!({ "up": false, "message": why });
        if tx.send(json_event("daemon", &gone)).await.is_err() {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RECONNECT_MAX);
    }
}

/// One connection's worth of [`feed_events`]: whether the daemon was reached, and why the
/// stream ended.
async fn watch(g: &Global, tx: &mpsc::Sender<Event>) -> (bool, String) {
    let Ok(mut side) = try_connect(g).await else {
        return (false, "the svc daemon is not running, or cannot be reached".into());
    };
    let info = match side.request(&Request::Info {}).await {
        Ok(Response::Info(info)) => info,
        Ok(other) => return (false, format!("unexpected reply from the daemon: {other:?}")),
        Err(e) => return (false, e.to_string()),
    };
    if tx.send(json_event("hello", &serde_json::json!({ "daemon": info }))).await.is_err() {
        return (true, String::new());
    }
    let mut stream = match subscribe(g).await {
        Ok(c) => c,
        Err(why) => return (true, why),
    };
    let mut tick = tokio::time::interval(RESOURCES_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cpu = CpuRates::default();
    loop {
        tokio::select! {
            r = stream.recv() => {
                let resp = match r {
                    Ok(Some(resp)) => resp,
                    Ok(None) => return (true, "the svc daemon went away".into()),
                    Err(e) => return (true, e.to_string()),
                };
                let name = match &resp {
                    Response::Snapshot { .. } => "snapshot",
                    Response::Event(_) => "event",
                    Response::Lagged { .. } => "lagged",
                    _ => continue,
                };
                let reload = matches!(&resp, Response::Event(e) if e.kind == EventKind::Reload);
                let line = protocol::encode_response(&resp);
                if tx.send(Event::default().event(name).data(line.trim_end())).await.is_err() {
                    return (true, String::new());
                }
                if reload {
                    // A reload adds and removes programs: a new subscription starts with a
                    // snapshot of the new set, consistent with the events that follow it.
                    stream = match subscribe(g).await {
                        Ok(c) => c,
                        Err(why) => return (true, why),
                    };
                }
            }
            _ = tick.tick() => {
                let programs = match side.request(&Request::Status { targets: vec![], resources: true }).await {
                    Ok(Response::Status { programs }) => programs,
                    Ok(_) => continue,
                    Err(e) => return (true, e.to_string()),
                };
                let sample = cpu.sample(&programs);
                if tx.send(json_event("resources", &sample)).await.is_err() {
                    return (true, String::new());
                }
            }
        }
    }
}

async fn subscribe(g: &Global) -> Result<Client, String> {
    let mut c = try_connect(g).await.map_err(|_| "the svc daemon is not running, or cannot be reached".to_string())?;
    c.send(&Request::Events { targets: vec![] }).await.map_err(|e| e.to_string())?;
    Ok(c)
}

/// CPU use as a percentage of one core between two samples, per process (name and pid).
#[derive(Default)]
struct CpuRates {
    last: HashMap<(String, u32), (f64, Instant)>,
}

/// One program's figures in a `resources` message: only what the event stream does not carry.
#[derive(serde::Serialize)]
struct Usage {
    name: String,
    restarts: u32,
    cpu_seconds: Option<f64>,
    cpu_percent: Option<f64>,
    memory_bytes: Option<u64>,
    status_text: Option<String>,
    waiting: Option<String>,
}

impl CpuRates {
    fn sample(&mut self, programs: &[ProgramStatus]) -> Vec<Usage> {
        let now = Instant::now();
        let mut next = HashMap::new();
        let usage = programs
            .iter()
            .map(|p| {
                let mut cpu_percent = None;
                if let (Some(pid), Some(cpu)) = (p.pid, p.cpu_seconds) {
                    let key = (p.name.clone(), pid);
                    if let Some((before, at)) = self.last.get(&key) {
                        let dt = now.duration_since(*at).as_secs_f64();
                        if dt > 0.0 {
                            cpu_percent = Some(((cpu - before) / dt * 100.0).max(0.0));
                        }
                    }
                    next.insert(key, (cpu, now));
                }
                Usage {
                    name: p.name.clone(),
                    restarts: p.restarts,
                    cpu_seconds: p.cpu_seconds,
                    cpu_percent,
                    memory_bytes: p.memory_bytes,
                    status_text: p.status_text.clone(),
                    waiting: p.waiting.clone(),
                }
            })
            .collect();
        self.last = next;
        usage
    }
}

#[derive(Deserialize)]
struct LogsQuery {
    name: String,
}

async fn logs(
    State(web): State<Arc<Web>>,
    Query(q): Query<LogsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        tokio::select! {
            () = feed_log(&web.g, q.name, &tx) => {}
            () = tx.closed() => {}
        }
    });
    sse(rx)
}

/// Relays one program's log, tail then follow; `failed` when the daemon refuses, `end` when
/// the stream stops (the page then stops too, rather than reconnecting and repeating the tail).
async fn feed_log(g: &Global, name: String, tx: &mpsc::Sender<Event>) {
    let end = |message: String| json_event("end", &serde_json::json!({ "message": message }));
    let Ok(mut c) = try_connect(g).await else {
        let _ = tx.send(end("the svc daemon is not running, or cannot be reached".into())).await;
        return;
    };
    let req =
        Request::Logs { name, names: vec![], stream: LogSelect::Both, lines: LOG_LINES, follow: true, since: None };
    if let Err(e) = c.send(&req).await {
        let _ = tx.send(end(e.to_string())).await;
        return;
    }
    loop {
        let (ev, last) = match c.recv().await {
            Ok(Some(Response::Log { data, stream, notices, .. })) => {
                (json_event("log", &serde_json::json!({ "data": data, "stream": stream, "notices": notices })), false)
            }
            Ok(Some(_)) => continue,
            Ok(None) => (end("the log stream ended (the daemon went away, or the program was removed)".into()), true),
            Err(e) => (end(e.to_string()), true),
        };
        if tx.send(ev).await.is_err() || last {
            return;
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlBody {
    verb: String,
    targets: Vec<String>,
    #[serde(default)]
    signal: Option<String>,
}

async fn control(State(web): State<Arc<Web>>, Json(body): Json<ControlBody>) -> HttpResponse {
    let req = match (body.verb.as_str(), body.signal) {
        ("start", None) => Request::Start { targets: body.targets, no_wait: true },
        ("stop", None) => Request::Stop { targets: body.targets },
        // The page follows the restart on the event stream; the request need not wait for it.
        ("restart", None) => Request::Restart { targets: body.targets, no_wait: true },
        ("signal", Some(signal)) => Request::Signal { signal, targets: body.targets },
        _ => {
            return error(StatusCode::BAD_REQUEST, "bad_request", "verb: start, stop, restart or signal (with signal)");
        }
    };
    ask(&web.g, req).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadBody {
    dry_run: bool,
}

async fn reload(State(web): State<Arc<Web>>, Json(body): Json<ReloadBody>) -> HttpResponse {
    ask(&web.g, Request::Reload { dry_run: body.dry_run }).await
}

/// Sends one request to the daemon and answers with its reply as JSON, or with its error and
/// a status that says whose fault it is.
async fn ask(g: &Global, req: Request) -> HttpResponse {
    let Ok(mut c) = try_connect(g).await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_daemon",
            "the svc daemon is not running, or cannot be reached",
        );
    };
    match c.request(&req).await {
        Ok(resp @ (Response::Results { .. } | Response::Reload { .. })) => Json(resp).into_response(),
        Ok(other) => {
            error(StatusCode::BAD_GATEWAY, "protocol", &format!("unexpected reply from the daemon: {other:?}"))
        }
        Err(ClientError::Daemon(e)) => {
            let status = match e.code {
                ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
                ErrorCode::UnknownTarget => StatusCode::NOT_FOUND,
                ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
                ErrorCode::ConfigInvalid => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::CONFLICT,
            };
            (status, Json(serde_json::json!({ "error": e }))).into_response()
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, "daemon", &e.to_string()),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    (status, Json(serde_json::json!({ "error": { "code": code, "message": message } }))).into_response()
}
