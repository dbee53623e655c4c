//! Fuzzes the config parser (`svc::config::parse_str`) with arbitrary text.
//!
//! Beyond "never panics": every error of a non-empty input has at least one diagnostic with a
//! 1-based line and column, positions in the input lie inside it, and rendering the report
//! (what `svc check` prints) does not panic either.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// A directory that does not exist: relative includes and env-files find nothing there.
const ORIGIN: &str = "/nonexistent-svc-fuzz/svc.kdl";

/// A few variables for `$VAR`, and a `HOME` that does not exist, so `~` leads nowhere.
fn env(key: &str) -> Option<String> {
    match key {
        "HOME" => Some("/nonexistent-svc-fuzz/home".into()),
        "PORT" => Some("8080".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// True when the config has an `include` or `env-file` (at any depth) with an absolute path
/// or a variable (`${X:-/dev/zero}`). The parser would really read it: `/dev/zero` or
/// `/dev/stdin` hang, `/**/*` walks the whole file system. That is the user's own choice in a
/// real config, not a bug, but the fuzzer must not do it. Text the KDL parser rejects never
/// reaches includes, so it needs no check.
fn reaches_outside(source: &str) -> bool {
    fn walk(doc: &kdl::KdlDocument) -> bool {
        doc.nodes().iter().any(|node| {
            let risky = matches!(node.name().value(), "include" | "env-file")
                && node
                    .entries()
                    .iter()
                    .any(|e| e.value().as_string().is_some_and(|s| s.starts_with('/') || s.contains('$')));
            risky || node.children().is_some_and(walk)
        })
    }
    kdl::KdlDocument::parse(source).is_ok_and(|doc| walk(&doc))
}

fuzz_target!(|data: &[u8]| {
    // Lossy, so that every input exercises the parser (a config file is read as UTF-8 first).
    let source = String::from_utf8_lossy(data);
    if reaches_outside(&source) {
        return;
    }
    let origin = Path::new(ORIGIN);
    let Err(e) = svc::config::parse_str(&source, origin, &env) else { return };
    let items = e.items();
    assert!(!items.is_empty(), "an error without diagnostics");
    if !source.is_empty() {
        assert!(items.iter().any(|i| i.line >= 1 && i.column >= 1), "no diagnostic has a position: {items:?}");
    }
    let lines = line_count(&source);
    for item in items.iter().filter(|i| i.file == origin && i.line > 0) {
        assert!(item.line <= lines, "line {} of a {lines}-line input: {item:?}", item.line);
    }
    let _ = e.to_string();
    let _ = e.render(false);
});

/// Lines as miette (and so `svc check`) counts them: `\n`, `\r\n` and a lone `\r` each end one,
/// as in KDL.
fn line_count(source: &str) -> usize {
    1 + source.match_indices(['\r', '\n']).filter(|&(i, m)| !(m == "\n" && source[..i].ends_with('\r'))).count()
}
