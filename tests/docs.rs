//! The docs keep up with the code. Each test takes what exists from the code itself (the real
//! binary's help for commands and options, the parser's node lists, serde for the protocol)
//! and fails listing exactly what docs/ does not mention yet.

use crate::support::svc_bin;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use svc::protocol::{
    DaemonInfo, ErrorCode, ErrorReply, Event, EventKind, LogSelect, LogStream, ProgramStatus, ReloadPlan, Request,
    Response, Role, State, TargetResult,
};

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn fail_if_missing(file: &str, missing: &[String]) {
    assert!(
        missing.is_empty(),
        "docs/{file} is missing {} item(s) that exist in the code:\n  - {}",
        missing.len(),
        missing.join("\n  - ")
    );
}

/// True when `token` occurs in `text` not as part of a longer word (`--json` is not found in
/// `--json-lines`, `-n` is not found in `--no`).
fn has_token(text: &str, token: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(token).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + token.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// True when `text` has a code span starting with `name`: `` `name` ``, `` `name "..."` ``,
/// `` `name=...` ``.
fn has_code_span(text: &str, name: &str) -> bool {
    let open = format!("`{name}");
    text.match_indices(&open).any(|(i, _)| matches!(text[i + open.len()..].chars().next(), Some('`' | ' ' | '=')))
}

/// Markdown sections: `(level, heading text without #s and backticks, body up to the next
/// heading of the same or a higher level)`.
fn sections(text: &str) -> Vec<(usize, String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut in_fence = false;
    let mut heads = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("```") {
            in_fence = !in_fence;
        }
        let level = line.chars().take_while(|&c| c == '#').count();
        if !in_fence && level > 0 && line[level..].starts_with(' ') {
            heads.push((i, level, line[level..].replace('`', "").trim().to_owned()));
        }
    }
    heads
        .iter()
        .enumerate()
        .map(|(k, (i, level, title))| {
            let end = heads[k + 1..].iter().find(|(_, l, _)| l <= level).map_or(lines.len(), |(j, _, _)| *j);
            (*level, title.clone(), lines[i + 1..end].join("\n"))
        })
        .collect()
}

fn section<'a>(all: &'a [(usize, String, String)], title: &str) -> Option<&'a str> {
    all.iter().find(|(_, t, _)| t == title).map(|(_, _, body)| body.as_str())
}

/// The bodies of the ```json blocks of `text`.
fn json_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```json") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

// ---------------------------------------------------------------------------------------------
// CLI: docs/cli.md

/// `svc PATH... -h`, the compact help: one line per option.
fn help(path: &[String]) -> String {
    let out = Command::new(svc_bin())
        .args(path)
        .arg("-h")
        .env_remove("SVC_CONFIG")
        .env_remove("SVC_SOCKET")
        .env("NO_COLOR", "1")
        .output()
        .expect("run svc");
    assert!(out.status.success(), "svc {} -h failed: {}", path.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The indented lines under `title` ("Commands:", "Options:") in clap's help.
fn help_block<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

fn subcommands(help: &str) -> Vec<String> {
    help_block(help, "Commands:")
        .iter()
        .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// `-n`, `--lines`, ... from the option lines (indented by at most 6; descriptions that wrap
/// are indented further).
fn options(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in help_block(help, "Options:") {
        let indent = line.len() - line.trim_start().len();
        let spec = line.trim_start();
        if indent > 6 || !spec.starts_with('-') {
            continue;
        }
        let spec = spec.split("  ").next().unwrap_or_default();
        for part in spec.split(", ") {
            if let Some(flag) = part.split_whitespace().next().filter(|f| f.starts_with('-')) {
                out.push(flag.to_owned());
            }
        }
    }
    out
}

/// Environment variables named in help (`[env: SVC_CONFIG=]`), wherever clap wrapped the line.
fn env_vars(help: &str) -> Vec<String> {
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.match_indices("[env: ").filter_map(|(i, m)| flat[i + m.len()..].split('=').next().map(str::to_owned)).collect()
}

#[test]
fn every_command_and_option_is_in_cli_md() {
    let text = doc("cli.md");
    let all = sections(&text);
    let mut missing = Vec::new();

    let top = help(&[]);
    let global = options(&top);
    let mut envs = env_vars(&top);
    match section(&all, "Global options") {
        None => missing.push("a `## Global options` section".to_owned()),
        Some(body) => {
            for opt in &global {
                if !has_token(body, opt) {
                    missing.push(format!("global option `{opt}` (in the Global options section)"));
                }
            }
        }
    }

    let mut queue: Vec<Vec<String>> = subcommands(&top).into_iter().map(|c| vec![c]).collect();
    let mut commands = 0;
    while let Some(path) = queue.pop() {
        commands += 1;
        let h = help(&path);
        envs.extend(env_vars(&h));
        queue.extend(subcommands(&h).into_iter().map(|c| {
            let mut sub = path.clone();
            sub.push(c);
            sub
        }));
        let title = format!("svc {}", path.join(" "));
        let Some(body) = section(&all, &title) else {
            missing.push(format!("command `{title}` (a heading `## {title}`)"));
            continue;
        };
        let opts = options(&h);
        for opt in opts.iter().filter(|o| !global.contains(o)) {
            if !has_token(body, opt) {
                missing.push(format!("option `{opt}` of `{title}`"));
            }
        }
        if opts.iter().any(|o| o == "--json") && !body.contains("```json") {
            missing.push(format!("the --json output of `{title}` (a ```json block in its section)"));
        }
    }
    assert!(commands >= 10, "found only {commands} commands in `svc -h`: is the help parser out of date?");

    envs.sort();
    envs.dedup();
    for var in envs {
        if !has_token(&text, &var) {
            missing.push(format!("environment variable `{var}`"));
        }
    }
    for code in [svc::cli::SUCCESS, svc::cli::FAILURE, svc::cli::USAGE, svc::cli::NOT_RUNNING, svc::cli::NO_DAEMON] {
        if !text.contains(&format!("| {code} |")) {
            missing.push(format!("exit code {code} (a `| {code} |` table row)"));
        }
    }
    fail_if_missing("cli.md", &missing);
}

#[test]
fn json_examples_in_cli_md_are_json() {
    let bad: Vec<String> = json_blocks(&doc("cli.md"))
        .into_iter()
        .filter_map(|b| serde_json::from_str::<Value>(&b).err().map(|e| format!("{e} in:\n{b}")))
        .collect();
    assert!(bad.is_empty(), "docs/cli.md has ```json blocks that are not JSON:\n{}", bad.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Config: docs/configuration.md

/// True when a line of a ```kdl block of `text` is the node `name` (`    name 4096 // ...`).
fn in_kdl_example(text: &str, name: &str) -> bool {
    let mut in_kdl = false;
    text.lines().any(|line| {
        if line.starts_with("```") {
            in_kdl = line.trim_end() == "```kdl";
            return false;
        }
        in_kdl && line.split_whitespace().next() == Some(name)
    })
}

#[test]
fn every_config_node_is_in_configuration_md() {
    let text = doc("configuration.md");
    let mut missing = Vec::new();
    for (place, names) in svc::config::known_nodes() {
        for name in names {
            if !has_code_span(&text, name) && !in_kdl_example(&text, name) {
                missing.push(format!("{place} node `{name}` (a code span `{name} ...` or a line of a ```kdl block)"));
            }
        }
    }
    fail_if_missing("configuration.md", &missing);
}

// ---------------------------------------------------------------------------------------------
// Protocol: docs/protocol.md

/// The names serde lists in "unknown variant `x`, expected one of `a`, `b`" (or "unknown
/// field ..."): every variant or field the type accepts.
fn expected_names(err: &str) -> Vec<String> {
    let Some((_, list)) = err.split_once("expected") else { return Vec::new() };
    list.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn variants<T: serde::de::DeserializeOwned + std::fmt::Debug>(probe: Value) -> Vec<String> {
    let err = serde_json::from_value::<T>(probe).expect_err("the probe is not a valid value").to_string();
    let names = expected_names(&err);
    assert!(!names.is_empty(), "serde's error no longer lists the variants: {err}");
    names
}

/// A value of every response type, with every optional field set, to list their fields.
fn sample_responses() -> Vec<Response> {
    let status = ProgramStatus {
        name: "web".into(),
        group: "web".into(),
        state: State::Backoff,
        pid: Some(1),
        since: 1.0,
        exit_status: Some(1),
        exit_signal: Some("TERM".into()),
        restarts: 1,
        next_attempt: Some(2.0),
        reason: Some("exited too quickly".into()),
        log_dropped_bytes: 5,
        ready: true,
        ready_check: true,
        health: Some("healthy".into()),
        waiting: Some("waiting for db (FATAL)".into()),
        status_text: Some("warming up".into()),
        cpu_seconds: Some(1.5),
        memory_bytes: Some(4096),
    };
    let result = TargetResult { name: "web".into(), ok: true, state: Some(State::Running), message: "started".into() };
    vec![
        Response::Status { programs: vec![status] },
        Response::Results { results: vec![result.clone()] },
        Response::Log {
            data: "text\n".into(),
            stream: Some(LogStream::Stderr),
            name: Some("web".into()),
            notices: vec!["web's stdout goes to the daemon's stdout".into()],
        },
        Response::Reload { plan: ReloadPlan::default(), results: vec![result] },
        Response::Info(DaemonInfo {
            pid: 1,
            version: "0".into(),
            config: "/c".into(),
            started: 0,
            role: Some(Role::Owner),
        }),
        Response::Snapshot { seq: 1, time: 1.0, programs: Vec::new() },
        Response::Event(Event {
            program: Some("web".into()),
            group: Some("web".into()),
            from: Some(State::Running),
            to: Some(State::Exited),
            pid: Some(1),
            exit_status: Some(1),
            exit_signal: Some("TERM".into()),
            reason: Some("exited too quickly".into()),
            health: Some("unhealthy".into()),
            plan: Some(ReloadPlan::default()),
            ..Event::new(2, 1.0, EventKind::State)
        }),
        Response::Lagged { missed: 3 },
        Response::Check(svc::protocol::CheckReport {
            ok: false,
            file: "/c".into(),
            programs: vec![svc::protocol::ProgramSummary {
                name: "web".into(),
                group: "web".into(),
                autostart: true,
                priority: 1,
            }],
            files: 1,
            errors: vec![svc::config::ConfigErrorItem {
                file: "/c".into(),
                line: 1,
                column: 1,
                message: "m".into(),
                help: Some("h".into()),
            }],
            rendered: "r".into(),
            warnings: vec![svc::config::check::LogPathWarning {
                program: "web".into(),
                path: "/l".into(),
                message: "m".into(),
            }],
        }),
        Response::ConfigFile { path: "/c".into(), text: Some("t".into()) },
        Response::Paths(svc::protocol::DaemonPaths {
            config: "/c".into(),
            state: "/s".into(),
            logs: "/l".into(),
            socket: "/s.sock".into(),
            lock: "/l.lock".into(),
            daemon_log: "/d.log".into(),
        }),
        Response::Ok,
        Response::Error(ErrorReply { code: ErrorCode::Internal, message: "m".into(), field: Some("f".into()) }),
    ]
}

fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn every_request_response_and_error_code_is_in_protocol_md() {
    let text = doc("protocol.md");
    let all = sections(&text);
    let mut missing = Vec::new();
    let part = |title: &str, missing: &mut Vec<String>| {
        section(&all, title).map(str::to_owned).unwrap_or_else(|| {
            missing.push(format!("a `## {title}` section"));
            String::new()
        })
    };

    // Requests: each a `### `type`` subsection of "Requests" naming every field.
    let requests = part("Requests", &mut missing);
    let req_sections = sections(&requests);
    for ty in variants::<Request>(json!({ "type": "\u{1}" })) {
        // deny_unknown_fields makes serde list the variant's fields.
        let fields = serde_json::from_value::<Request>(json!({ "type": ty, "\u{1}": 0 }))
            .err()
            .map(|e| expected_names(&e.to_string()))
            .unwrap_or_default();
        let Some(body) = section(&req_sections, &ty) else {
            missing.push(format!("request type `{ty}` (a heading `### `{ty}`` under Requests)"));
            continue;
        };
        for f in fields {
            if !has_code_span(body, &f) {
                missing.push(format!("field `{f}` of request `{ty}`"));
            }
        }
    }
    if !has_code_span(&text, "protocol") {
        missing.push("the `protocol` field every request carries".to_owned());
    }

    // Responses: each a `### `type`` subsection of "Responses"; every field named somewhere there.
    let responses = part("Responses", &mut missing);
    let resp_sections = sections(&responses);
    let samples: Vec<Value> =
        sample_responses().iter().map(|r| serde_json::to_value(r).expect("responses serialize")).collect();
    for ty in variants::<Response>(json!({ "type": "\u{1}" })) {
        let Some(sample) = samples.iter().find(|s| s["type"] == ty.as_str()) else {
            panic!("tests/docs.rs has no sample of response type `{ty}`: add one to sample_responses()");
        };
        if section(&resp_sections, &ty).is_none() {
            missing.push(format!("response type `{ty}` (a heading `### `{ty}`` under Responses)"));
        }
        let mut fields = Vec::new();
        keys(sample, &mut fields);
        for f in fields.iter().filter(|f| *f != "type") {
            if !has_code_span(&responses, f) {
                missing.push(format!("field `{f}` of response `{ty}`"));
            }
        }
    }

    let errors = part("Error codes", &mut missing);
    for code in variants::<ErrorCode>(json!("\u{1}")) {
        if !has_code_span(&errors, &code) {
            missing.push(format!("error code `{code}` (under Error codes)"));
        }
    }
    for state in variants::<State>(json!("\u{1}")) {
        if !has_code_span(&text, &state) {
            missing.push(format!("state `{state}`"));
        }
    }
    let selects = variants::<LogSelect>(json!("\u{1}"));
    for stream in variants::<LogStream>(json!("\u{1}")).into_iter().chain(selects) {
        if !text.contains(&format!("\"{stream}\"")) {
            missing.push(format!("log stream `\"{stream}\"`"));
        }
    }
    let limit = svc::protocol::MAX_REQUEST_LINE.to_string();
    if !text.contains(&limit) {
        missing.push(format!("the request line limit ({limit} bytes)"));
    }
    fail_if_missing("protocol.md", &missing);
}

/// Every line of a ```json block in protocol.md is a request the daemon accepts (it has
/// `protocol`) or a response the client can read.
#[test]
fn json_examples_in_protocol_md_decode() {
    let mut bad = Vec::new();
    for line in json_blocks(&doc("protocol.md")).iter().flat_map(|b| b.lines().map(str::to_owned).collect::<Vec<_>>()) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let ok = match serde_json::from_str::<Value>(line) {
            Ok(v) if v.get("protocol").is_some() => {
                svc::protocol::decode_request(line.as_bytes()).map(drop).map_err(|e| e.message)
            }
            Ok(_) => serde_json::from_str::<Response>(line).map(drop).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = ok {
            bad.push(format!("{line}\n    {e}"));
        }
    }
    assert!(bad.is_empty(), "docs/protocol.md has example lines that do not decode:\n{}", bad.join("\n"));
}
