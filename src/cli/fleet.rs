//! Commands on several hosts at once (`-H web1 -H web2`, `-H @group`).
//!
//! Each host's part is this same binary run for that one host (`svc -H HOST --remote-svc PATH
//! ARGS`), so a fleet command does on every host exactly what the single-host command does;
//! this module only runs them in parallel (at most [`FANOUT`] at a time, or all at once for the
//! streams of `logs -f` and `events`) and merges what they print: a HOST column, `HOST | `
//! prefixes, one JSON object per host, and an exit code and summary that name the failed hosts.

use super::{Global, NO_DAEMON, NOT_RUNNING, SUCCESS};
use crate::protocol::ProgramStatus;
use crate::remote::Host;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most hosts a fleet command talks to at once (each is an ssh connection being set up).
pub const FANOUT: usize = 16;

/// How a fleet command's output is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// `status`: one table with a HOST column (the hosts are asked for JSON).
    Table,
    /// Each host's lines prefixed with the host, host after host.
    Lines,
    /// Lines as they come from every host, each prefixed with `HOST | ` (`logs -f`, `events`).
    Stream,
}

/// Runs `svc ARGS` on every host of `g` and merges the output as `merge` says; with `json`, one
/// JSON object per host instead (or, for a stream, each JSON line with a `host` field).
pub fn run(g: &Global, args: &[String], merge: Merge, json: bool) -> u8 {
    if merge == Merge::Stream {
        return stream(g, args, json);
    }
    let mut args = args.to_vec();
    if merge == Merge::Table && !json {
        args.extend(["--json".into(), "--no-resources".into()]);
    }
    let runs = run_each(&g.hosts, &args);
    let width = g.hosts.iter().map(|h| h.name.len()).max().unwrap_or(0).max(4);
    let is_status = merge == Merge::Table;
    if json {
        let out: Vec<serde_json::Value> = runs.iter().map(|r| json_entry(r, is_status)).collect();
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if is_status {
        let mut rows: Vec<(&str, ProgramStatus)> = Vec::new();
        for r in &runs {
            match serde_json::from_str::<Vec<ProgramStatus>>(&r.stdout) {
                Ok(programs) => rows.extend(programs.into_iter().map(|p| (r.host.name.as_str(), p))),
                Err(_) => say_error(r),
            }
        }
        let programs: Vec<ProgramStatus> = rows.iter().map(|(_, p)| p.clone()).collect();
        let color = std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let table = super::status::table(&programs, now(), color, None);
        let hosts = std::iter::once("HOST").chain(rows.iter().map(|(h, _)| *h));
        let mut out = std::io::stdout().lock();
        if !rows.is_empty() {
            for (host, line) in hosts.zip(table.lines()) {
                let _ = writeln!(out, "{host:<width$}  {line}");
            }
        }
    } else {
        let mut out = std::io::stdout().lock();
        for r in &runs {
            for line in r.stdout.lines() {
                let _ = writeln!(out, "{:<width$}  {line}", r.host.name);
            }
            let _ = out.flush();
            for line in r.stderr.lines() {
                eprintln!("{}", with_host(&r.host, line));
            }
        }
    }
    finish(&g.hosts, &runs.iter().map(|r| r.code).collect::<Vec<_>>(), is_status)
}

/// One host's part of the command, as it ended.
struct HostRun {
    host: Host,
    code: u8,
    stdout: String,
    stderr: String,
}

/// The command that runs `svc ARGS` for `host` alone: this binary, told the host and its svc
/// explicitly (a group's per-host settings included).
fn command_for(host: &Host, args: &[String]) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "svc".into());
    let mut cmd = Command::new(exe);
    cmd.arg("-H").arg(&host.name);
    if let Some(r) = &host.remote_svc {
        cmd.arg("--remote-svc").arg(r);
    }
    cmd.args(args);
    // Every host's part, not the fleet, is what this environment variable would name.
    cmd.env_remove("SVC_HOST");
    cmd
}

/// Runs every host's part, at most [`FANOUT`] at a time; results in host order.
fn run_each(hosts: &[Host], args: &[String]) -> Vec<HostRun> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<HostRun>>> = Mutex::new((0..hosts.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..FANOUT.min(hosts.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(host) = hosts.get(i) else { return };
                    let run = match command_for(host, args).stdin(Stdio::null()).output() {
                        Ok(o) => HostRun {
                            host: host.clone(),
                            code: o.status.code().map_or(super::FAILURE, |c| u8::try_from(c).unwrap_or(super::FAILURE)),
                            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                        },
                        Err(e) => HostRun {
                            host: host.clone(),
                            code: super::FAILURE,
                            stdout: String::new(),
                            stderr: format!("svc: cannot run svc for this host: {e}"),
                        },
                    };
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(run);
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).into_iter().flatten().collect()
}

/// `{"host", "ok", "exit", "result"}`, or `{"host", "ok": false, "exit", "error"}` when the host
/// answered with an error object (or nothing readable).
fn json_entry(r: &HostRun, is_status: bool) -> serde_json::Value {
    let ok = r.code == SUCCESS || (is_status && r.code == NOT_RUNNING);
    match serde_json::from_str::<serde_json::Value>(&r.stdout) {
        Ok(v) if v.get("ok") == Some(&serde_json::Value::Bool(false)) && v.get("error").is_some() => {
            serde_json::json!({ "host": r.host.name, "ok": false, "exit": r.code, "error": v["error"] })
        }
        Ok(v) => serde_json::json!({ "host": r.host.name, "ok": ok, "exit": r.code, "result": v }),
        Err(_) => {
            let message = r.stderr.lines().last().unwrap_or("no answer").trim_start_matches("svc: ").to_owned();
            serde_json::json!({ "host": r.host.name, "ok": false, "exit": r.code, "error": { "code": "failed", "message": message } })
        }
    }
}

/// Prints a host's error lines (its part was asked for JSON, so they may be on stdout).
fn say_error(r: &HostRun) {
    let from_json = serde_json::from_str::<serde_json::Value>(&r.stdout)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned));
    match from_json {
        Some(m) => eprintln!("{}", with_host(&r.host, &m)),
        None => r.stderr.lines().for_each(|l| eprintln!("{}", with_host(&r.host, l))),
    }
}

/// `svc: HOST: LINE`, unless the line names the host already (errors about reaching it do).
fn with_host(host: &Host, line: &str) -> String {
    let bare = line.strip_prefix("svc: ").unwrap_or(line);
    if bare.starts_with(&format!("{}: ", host.name)) {
        format!("svc: {bare}")
    } else {
        format!("svc: {}: {bare}", host.name)
    }
}

/// The exit code (the highest of the hosts'), after a summary naming the hosts that failed
/// (for `status`, a host whose programs are not all RUNNING has not failed).
fn finish(hosts: &[Host], codes: &[u8], is_status: bool) -> u8 {
    let failed: Vec<&str> = hosts
        .iter()
        .zip(codes)
        .filter(|(_, c)| **c != SUCCESS && !(is_status && **c == NOT_RUNNING))
        .map(|(h, _)| h.name.as_str())
        .collect();
    if !failed.is_empty() {
        eprintln!("svc: failed on {} of {} hosts: {}", failed.len(), hosts.len(), failed.join(", "));
    }
    codes.iter().copied().max().unwrap_or(SUCCESS)
}

/// `logs -f` and `events` on every host: lines as they arrive, `HOST | LINE` (with `json`, the
/// host added to each JSON line), until interrupted, until every host's stream ends, or until
/// whoever reads the output goes away.
fn stream(g: &Global, args: &[String], json: bool) -> u8 {
    let width = g.hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, bool, Option<String>)>();
    let mut children = Vec::new();
    for (i, host) in g.hosts.iter().enumerate() {
        let spawned =
            command_for(host, args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send((i, true, Some(format!("cannot run svc for this host: {e}"))));
                let _ = tx.send((i, false, None));
                children.push(None);
                continue;
            }
        };
        for (is_err, pipe) in [
            (false, child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>)),
            (true, child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>)),
        ] {
            let Some(pipe) = pipe else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send((i, is_err, Some(line))).is_err() {
                        return;
                    }
                }
                if !is_err {
                    let _ = tx.send((i, false, None));
                }
            });
        }
        children.push(Some(child));
    }
    drop(tx);
    // Hosts may stay quiet for a long time: when the reader of our output goes, end now (the
    // hosts' parts notice their own output closing, and end too).
    std::thread::spawn(|| {
        if svc_platform::wait_output_closed(std::os::fd::AsFd::as_fd(&std::io::stdout())).is_ok() {
            std::process::exit(i32::from(SUCCESS));
        }
    });
    let mut open = g.hosts.len();
    let mut out = std::io::stdout().lock();
    while open > 0 {
        let Ok((i, is_err, line)) = rx.recv() else { break };
        let host = &g.hosts[i];
        let Some(line) = line else {
            open -= 1;
            continue;
        };
        if is_err {
            eprintln!("{}", with_host(host, &line));
            continue;
        }
        let text = if json {
            match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(serde_json::Value::Object(mut map)) => {
                    map.insert("host".into(), host.name.clone().into());
                    serde_json::Value::Object(map).to_string()
                }
                _ => line,
            }
        } else {
            format!("{:<width$} | {line}", host.name)
        };
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            return SUCCESS;
        }
    }
    let codes: Vec<u8> = children
        .into_iter()
        .map(|c| match c.and_then(|mut c| c.wait().ok()) {
            Some(s) => s.code().map_or(super::FAILURE, |c| u8::try_from(c).unwrap_or(super::FAILURE)),
            None => NO_DAEMON,
        })
        .collect();
    finish(&g.hosts, &codes, false)
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}
