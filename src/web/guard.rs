//! The checks every request to `svc web` passes before any handler runs: the Host header (DNS
//! rebinding), the session cookie (or the one-time token that buys it), and for requests that
//! change something the Origin, Fetch metadata and content type (cross-site request forgery).
//! docs/web.md explains each against the attack it stops.
//!
//! The server is reachable by every user of the machine (localhost is everyone's), so nothing
//! here trusts the network: only a secret the user was shown on their own terminal counts.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};

/// Bytes of randomness in the token and the session id: 256 bits, past guessing.
const SECRET_BYTES: usize = 32;

/// The secrets of one `svc web` run and what requests may carry.
pub struct Gate {
    /// The token of the printed URL, until it has been exchanged once.
    token: Mutex<Option<String>>,
    /// The session the token was exchanged for (one link, one browser session).
    session: Mutex<Option<String>>,
    /// Accepted values of the Host header: this server's own addresses.
    hosts: Vec<String>,
    /// Name of the session cookie: per port, since browsers do not separate cookies by port
    /// and two `svc web` would otherwise overwrite each other's.
    cookie: String,
    /// Called once the token has been exchanged (removes the `--open` redirect file).
    on_exchange: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Gate {
    /// A gate for a server listening on `listen`, with a fresh token.
    pub fn new(listen: std::net::SocketAddr) -> std::io::Result<Gate> {
        Ok(Gate {
            token: Mutex::new(Some(secret()?)),
            session: Mutex::new(None),
            hosts: allowed_hosts(listen),
            cookie: format!("svc-web-{}", listen.port()),
            on_exchange: Mutex::new(None),
        })
    }

    /// The token to print (`None` once exchanged).
    pub fn token(&self) -> Option<String> {
        lock(&self.token).clone()
    }

    /// Runs `f` once the token has been exchanged for a session.
    pub fn on_exchange(&self, f: Box<dyn FnOnce() + Send>) {
        *lock(&self.on_exchange) = Some(f);
    }

    /// Whether `host` (a Host header) names this server.
    fn host_ok(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn session_ok(&self, headers: &HeaderMap) -> bool {
        let Some(sid) = cookie(headers, &self.cookie) else { return false };
        lock(&self.session).as_deref().is_some_and(|s| same(s.as_bytes(), sid.as_bytes()))
    }

    /// Exchanges `offered` for a new session id if it is the token and not used yet.
    fn exchange(&self, offered: &str) -> Option<String> {
        let mut token = lock(&self.token);
        if !token.as_deref().is_some_and(|t| same(t.as_bytes(), offered.as_bytes())) {
            return None;
        }
        let sid = secret().ok()?;
        *token = None;
        *lock(&self.session) = Some(sid.clone());
        drop(token);
        if let Some(f) = lock(&self.on_exchange).take() {
            f();
        }
        Some(sid)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Held for a comparison or an assignment only: a poisoned value is still whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh random secret as hex, from the kernel's random source (every OS svc runs on has
/// `/dev/urandom`; no crate needed).
pub fn secret() -> std::io::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The Host values that mean this server. A page of another site whose name was re-pointed at
/// 127.0.0.1 (DNS rebinding) sends its own name, and is refused.
fn allowed_hosts(listen: std::net::SocketAddr) -> Vec<String> {
    let port = listen.port();
    let mut names = vec![listen.to_string()];
    if listen.ip().is_loopback() {
        names.extend([format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")]);
    }
    if port == 80 {
        // Browsers leave the default port out of Host.
        let bare: Vec<String> = names.iter().filter_map(|n| n.strip_suffix(":80").map(str::to_owned)).collect();
        names.extend(bare);
    }
    names.dedup();
    names
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|kv| kv.strip_prefix("token="))
}

/// The middleware: refuses what fails a check, adds the security headers to every answer.
pub async fn check(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    let mut resp = admit(&gate, req, next).await;
    let h = resp.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // The exchange URL holds the token: it must not travel on as a Referer.
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

async fn admit(gate: &Gate, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !gate.host_ok(host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "svc web: refused: this server answers only to its own address in the Host header",
        );
    }
    // Fetch metadata: a browser says when another site made the request.
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site") {
        return refuse(StatusCode::FORBIDDEN, "svc web: refused: a request from another site");
    }
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD);
    if writes {
        let expected = format!("http://{host}");
        let origin_ok = headers.get(header::ORIGIN).is_some_and(|o| o.as_bytes() == expected.as_bytes());
        let site_ok = headers.get("sec-fetch-site").is_none_or(|v| v.as_bytes() == b"same-origin");
        // An HTML form cannot send JSON: another layer against forged posts.
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
        if !origin_ok || !site_ok {
            return refuse(StatusCode::FORBIDDEN, "svc web: refused: a change must come from this page (Origin)");
        }
        if !json {
            return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "svc web: refused: send application/json");
        }
    }
    if gate.session_ok(headers) {
        return next.run(req).await;
    }
    if !writes
        && req.uri().path() == "/"
        && let Some(offered) = query_token(req.uri().query())
    {
        return match gate.exchange(offered) {
            Some(sid) => enter(&gate.cookie, &sid),
            None => refuse(
                StatusCode::UNAUTHORIZED,
                "svc web: this link has been used already, or is not the one svc web printed. \
                 A link works once: run svc web again for a new one.",
            ),
        };
    }
    refuse(
        StatusCode::UNAUTHORIZED,
        "svc web: open the link that svc web printed on its terminal (it carries a one-time token).",
    )
}

/// The answer to a good token: the session cookie, and a page that moves on to `/` so the
/// token leaves the address bar. A page rather than a 303: after a navigation another site
/// started (a `file://` page from `--open`), a browser does not send a SameSite=Strict cookie
/// along the redirect, but it does on a navigation our own page starts.
fn enter(name: &str, sid: &str) -> Response {
    let cookie = format!("{name}={sid}; Path=/; HttpOnly; SameSite=Strict");
    let page = "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url=/\">\
                <title>svc</title><a href=\"/\">Continue to the dashboard</a>\n";
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn refuse(status: StatusCode, message: &'static str) -> Response {
    let mut resp = Response::new(Body::from(format!("{message}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_this_servers_addresses_only() {
        let hosts = allowed_hosts("127.0.0.1:8123".parse().expect("addr"));
        assert_eq!(hosts, ["127.0.0.1:8123", "localhost:8123", "[::1]:8123"]);
        let remote = allowed_hosts("192.0.2.7:80".parse().expect("addr"));
        assert_eq!(remote, ["192.0.2.7:80", "192.0.2.7"]);
    }

    #[test]
    fn cookie_and_token_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; svc-web-80=abc; svc-web-8=x"));
        assert_eq!(cookie(&h, "svc-web-80"), Some("abc"));
        assert_eq!(cookie(&h, "svc-web-8"), Some("x"));
        assert_eq!(cookie(&h, "svc-web"), None);
        assert_eq!(query_token(Some("x=1&token=t0k")), Some("t0k"));
        assert_eq!(query_token(Some("tokens=1")), None);
    }

    #[test]
    fn secrets_are_long_and_differ() {
        let (a, b) = (secret().expect("urandom"), secret().expect("urandom"));
        assert_eq!(a.len(), 2 * SECRET_BYTES);
        assert_ne!(a, b);
        assert!(same(a.as_bytes(), a.as_bytes()) && !same(a.as_bytes(), b.as_bytes()));
    }

    #[test]
    fn a_token_buys_one_session_once() {
        let gate = Gate::new("127.0.0.1:1".parse().expect("addr")).expect("gate");
        let token = gate.token().expect("fresh token");
        assert!(gate.exchange("wrong").is_none());
        let sid = gate.exchange(&token).expect("first exchange");
        assert!(gate.exchange(&token).is_none(), "the token is single-use");
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("svc-web-1={sid}")).expect("header"));
        assert!(gate.session_ok(&h));
    }
}
