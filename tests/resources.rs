//! CPU and memory per program (`svc status -r`), through the real binary. Every wait polls for
//! a condition: no assertion depends on how fast the machine is.

use crate::support::{TestDaemon, wait_until};
use serde_json::Value;

// "hold" keeps 50 MB in a shell variable; the loop keeps the shell (and the variable) alive,
// where a final `sleep` would be exec'd in its place.
const PROGRAMS: &str = r#"
program "burn" {
    command "sh" "-c" "while :; do :; done"
    start-secs 0
}
program "hold" {
    command "sh" "-c" "x=$(head -c 50000000 /dev/zero | tr '\\0' a); while :; do sleep 1000; done"
    start-secs 0
}
program "idle" {
    command "sleep" "1000"
    autostart #false
}
"#;

fn status_with_resources(d: &TestDaemon) -> Vec<Value> {
    let run = d.svc(&["status", "--json", "--resources"]);
    assert!(run.code == 0 || run.code == 3, "status failed: {run:?}");
    serde_json::from_str(&run.stdout).expect("status --json is JSON")
}

fn program<'a>(programs: &'a [Value], name: &str) -> &'a Value {
    programs.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no {name} in {programs:?}"))
}

#[test]
fn json_reports_cumulative_cpu_seconds_and_bytes_when_asked() {
    let d = TestDaemon::start(PROGRAMS);
    d.wait_state("burn", "RUNNING");
    d.wait_state("hold", "RUNNING");

    // Not asked for: no scan, null figures.
    let plain = d.status();
    for name in ["burn", "hold", "idle"] {
        let p = program(&plain, name);
        assert_eq!(p["cpu_seconds"], Value::Null, "{p}");
        assert_eq!(p["memory_bytes"], Value::Null, "{p}");
    }

    let first = status_with_resources(&d);
    let cpu0 = program(&first, "burn")["cpu_seconds"].as_f64().expect("burn's CPU seconds");
    assert!(program(&first, "burn")["memory_bytes"].as_u64().is_some_and(|m| m > 0));
    wait_until("burn's CPU time to grow", || {
        program(&status_with_resources(&d), "burn")["cpu_seconds"].as_f64().is_some_and(|c| c > cpu0)
    });
    wait_until("hold to hold 50 MB", || {
        program(&status_with_resources(&d), "hold")["memory_bytes"].as_u64().is_some_and(|m| m >= 50_000_000)
    });

    // A stopped program has no processes to measure: unknown, not zero.
    let idle = status_with_resources(&d);
    let idle = program(&idle, "idle");
    assert_eq!(idle["cpu_seconds"], Value::Null, "{idle}");
    assert_eq!(idle["memory_bytes"], Value::Null, "{idle}");
}

/// The cells of `name`'s row under the columns of the header (the last column, DETAIL, may hold
/// spaces, but it is empty here).
fn cells(table: &str, name: &str) -> Vec<(String, String)> {
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let row = lines.find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{table}"));
    // MEM cells hold a space ("50.1 MB"), so glue a unit to its number.
    let mut words: Vec<String> = Vec::new();
    for w in row.split_whitespace() {
        match words.last_mut() {
            Some(last) if ["B", "KB", "MB", "GB"].contains(&w) => *last = format!("{last} {w}"),
            _ => words.push(w.to_owned()),
        }
    }
    header.iter().map(|h| h.to_string()).zip(words).collect()
}

fn cell(cells: &[(String, String)], column: &str) -> String {
    cells.iter().find(|(h, _)| h == column).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no {column}: {cells:?}"))
}

#[test]
fn table_shows_cpu_percent_and_memory_when_asked() {
    let d = TestDaemon::start(PROGRAMS);
    d.wait_state("burn", "RUNNING");
    d.wait_state("hold", "RUNNING");

    // Not a terminal: no columns (and no wait) unless asked.
    let run = d.svc(&["status"]);
    assert!(!run.stdout.lines().next().unwrap_or_default().contains("CPU"), "{}", run.stdout);

    wait_until("a non-zero CPU percentage for burn", || {
        let run = d.svc(&["status", "-r"]);
        let burn = cells(&run.stdout, "burn");
        let cpu = cell(&burn, "CPU");
        cpu.strip_suffix('%').and_then(|c| c.parse::<f64>().ok()).is_some_and(|c| c > 0.0)
    });
    wait_until("hold's MEM to read 50 MB or more", || {
        let run = d.svc(&["status", "-r", "hold"]);
        let mem = cell(&cells(&run.stdout, "hold"), "MEM");
        mem.strip_suffix(" MB").or_else(|| mem.strip_suffix(" GB")).is_some_and(|_| {
            let n: f64 = mem.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0.0);
            mem.ends_with(" GB") || n >= 50.0
        })
    });
    let run = d.svc(&["status", "-r", "idle"]);
    let idle = cells(&run.stdout, "idle");
    assert_eq!(cell(&idle, "CPU"), "-", "{}", run.stdout);
    assert_eq!(cell(&idle, "MEM"), "-", "{}", run.stdout);
    // --no-resources wins over an earlier -r.
    let run = d.svc(&["status", "-r", "--no-resources"]);
    assert!(!run.stdout.lines().next().unwrap_or_default().contains("CPU"), "{}", run.stdout);
}
