//! Property tests: bad input never panics the socket request decoder or the config parser.
//!
//! The same two entry points are fuzzed with cargo-fuzz (`fuzz/`, see `docs/fuzzing.md`);
//! these tests run a bounded number of generated cases in the normal suite, so a regression
//! shows up in `cargo test` without a nightly toolchain. Every case runs in-process (no daemon).
//! A failing case is shrunk by proptest and printed in the failure message (no
//! `proptest-regressions/` files are written); add it to the unit tests next to the code.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use serde_json::{Map, Value};
use svc::config::{self, ConfigError};
use svc::protocol::{self, ErrorCode, LogSelect, PROTOCOL_VERSION, Request, Response};

/// Cases per property: enough to find shallow bugs, small enough that the whole module runs
/// in a few seconds in a debug build. The seed is fixed so that CI is reproducible (a red run
/// always means the code changed); `PROPTEST_RNG_SEED=random` explores new inputs by hand,
/// and the fuzz targets (fuzz/) search far wider.
fn cases(n: u32) -> ProptestConfig {
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED").as_deref() {
        Ok("random") => proptest::test_runner::RngSeed::Random,
        Ok(s) => s.parse().map_or(proptest::test_runner::RngSeed::Fixed(0x5eed), proptest::test_runner::RngSeed::Fixed),
        Err(_) => proptest::test_runner::RngSeed::Fixed(0x5eed),
    };
    ProptestConfig {
        cases: n,
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Default::default()
    }
}

// ----- protocol ------------------------------------------------------------------------------

/// Field names of every request variant, plus the envelope's.
const REQUEST_KEYS: &[&str] =
    &["protocol", "type", "targets", "name", "stream", "lines", "follow", "dry_run", "signal"];

const REQUEST_TYPES: &[&str] =
    &["status", "start", "stop", "restart", "logs", "reload", "signal", "clear_logs", "shutdown", "info"];

/// Strings that mean something to the decoder, and some that almost do.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(
            REQUEST_KEYS.iter().chain(REQUEST_TYPES).chain(&["stdout", "stderr", "all", "g:*", "", "Status", "SHUTDOWN"])
                .copied()
                .collect::<Vec<_>>()
        )
        .prop_map(str::to_owned),
        1 => any::<String>(),
        1 => "[a-z_`]{0,12}",
    ]
}

/// Numbers around the edges of what the decoder checks (protocol version, `usize` lines).
fn interesting_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::from(PROTOCOL_VERSION)),
        Just(Value::from(0)),
        Just(Value::from(-1)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(1.0)),
        Just(Value::from(1.5)),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // serde_json cannot hold NaN or infinities in a Value; from_f64 gives Null for them.
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

/// Any JSON value, nested a few levels, biased towards request-like keys and strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        interesting_number(),
        interesting_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((interesting_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON object that usually looks like a request envelope: `protocol` mostly right,
/// `type` mostly a real variant, then random other members.
fn request_like_object() -> impl Strategy<Value = Value> {
    let protocol = prop_oneof![
        4 => Just(Some(Value::from(PROTOCOL_VERSION))),
        1 => Just(None),
        1 => json_value().prop_map(Some),
    ];
    let kind = prop_oneof![
        4 => prop::sample::select(REQUEST_TYPES).prop_map(|t| Some(Value::from(t))),
        1 => Just(None),
        1 => json_value().prop_map(Some),
    ];
    let members = prop::collection::vec((interesting_string(), json_value()), 0..5);
    (protocol, kind, members).prop_map(|(protocol, kind, members)| {
        let mut map = Map::new();
        if let Some(p) = protocol {
            map.insert("protocol".into(), p);
        }
        if let Some(t) = kind {
            map.insert("type".into(), t);
        }
        map.extend(members);
        Value::Object(map)
    })
}

fn targets() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop_oneof![any::<String>(), "[a-z][a-z0-9_-]{0,8}(:\\*)?"], 0..4)
}

/// Every variant of [`Request`] with arbitrary contents.
fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (targets(), any::<bool>()).prop_map(|(targets, resources)| Request::Status { targets, resources }),
        (targets(), any::<bool>()).prop_map(|(targets, no_wait)| Request::Start { targets, no_wait }),
        targets().prop_map(|targets| Request::Stop { targets }),
        (targets(), any::<bool>()).prop_map(|(targets, no_wait)| Request::Restart { targets, no_wait }),
        (
            any::<String>(),
            targets(),
            prop::sample::select(vec![LogSelect::Stdout, LogSelect::Stderr, LogSelect::Both]),
            any::<usize>(),
            any::<bool>(),
            prop::option::of(any::<String>()),
        )
            .prop_map(|(name, names, stream, lines, follow, since)| Request::Logs {
                name,
                names,
                stream,
                lines,
                follow,
                since
            }),
        (any::<usize>(), any::<bool>(), prop::option::of(any::<String>()))
            .prop_map(|(lines, follow, since)| Request::DaemonLog { lines, follow, since }),
        any::<bool>().prop_map(|dry_run| Request::Reload { dry_run }),
        (any::<String>(), targets()).prop_map(|(signal, targets)| Request::Signal { signal, targets }),
        targets().prop_map(|targets| Request::ClearLogs { targets }),
        Just(Request::Shutdown {}),
        Just(Request::Info {}),
    ]
}

/// What must hold for any decoder answer: no panic (implied by getting here), an error reply
/// that says something and goes out on the wire as one JSON line, and an accepted request
/// that survives being sent again.
fn check_decoded(result: Result<Request, protocol::ErrorReply>) -> Result<(), TestCaseError> {
    match result {
        Ok(req) => {
            let again = protocol::decode_request(protocol::encode_request(&req).as_bytes());
            prop_assert_eq!(again, Ok(req));
        }
        Err(e) => {
            prop_assert!(!e.message.is_empty(), "empty message in {:?}", e);
            if e.code == ErrorCode::ProtocolMismatch {
                prop_assert_eq!(e.field.as_deref(), Some("protocol"));
            }
            let line = protocol::encode_response(&Response::Error(e));
            prop_assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'), "{:?}", line);
            let back: Value = serde_json::from_str(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back["type"], "error");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn decode_request_arbitrary_bytes(line in prop::collection::vec(any::<u8>(), 0..256)) {
        check_decoded(protocol::decode_request(&line))?;
    }

    #[test]
    fn decode_request_json_shaped_bytes(line in "[{}\\[\\]\":,0-9a-z_ \\\\-]{0,80}") {
        check_decoded(protocol::decode_request(line.as_bytes()))?;
    }
}

proptest! {
    #![proptest_config(cases(500))]

    #[test]
    fn decode_request_arbitrary_json(value in prop_oneof![json_value(), request_like_object()]) {
        check_decoded(protocol::decode_request(value.to_string().as_bytes()))?;
    }

    #[test]
    fn decode_request_one_field_mutated(
        req in request(),
        which in any::<Index>(),
        mutation in 0..3u8,
        replacement in json_value(),
        extra in "[a-z_]{1,10}",
    ) {
        let mut value = serde_json::to_value(&req).expect("a request serializes");
        let map = value.as_object_mut().expect("a request is an object");
        map.insert("protocol".into(), PROTOCOL_VERSION.into());
        let keys: Vec<String> = map.keys().cloned().collect();
        let key = which.get(&keys).clone();
        match mutation {
            0 => {
                map.remove(&key);
            }
            1 => {
                map.insert(key.clone(), replacement);
            }
            _ => {
                let key = format!("x_{extra}");
                map.insert(key.clone(), replacement);
            }
        }
        let result = protocol::decode_request(value.to_string().as_bytes());
        match (mutation, &result) {
            // A missing envelope member is named as the culprit.
            (0, Err(e)) if key == "protocol" || key == "type" => prop_assert_eq!(e.field.as_deref(), Some(key.as_str())),
            (0, _) if key == "protocol" || key == "type" => prop_assert!(false, "accepted without `{}`: {:?}", key, result),
            _ => {}
        }
        check_decoded(result)?;
    }

    #[test]
    fn request_round_trip(req in request()) {
        let line = protocol::encode_request(&req);
        prop_assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'), "{:?}", line);
        prop_assert_eq!(protocol::decode_request(line.as_bytes()), Ok(req.clone()));
        prop_assert_eq!(protocol::decode_request(line.trim_end().as_bytes()), Ok(req));
    }
}

// ----- config --------------------------------------------------------------------------------

/// Where generated configs pretend to live: a directory that does not exist, so relative
/// includes and env-files match nothing and read nothing.
const ORIGIN: &str = "/nonexistent-svc-proptest/svc.kdl";

/// The environment the configs are expanded against: a few variables, and a `HOME` that does
/// not exist (so `~` leads nowhere either).
fn env(key: &str) -> Option<String> {
    match key {
        "HOME" => Some("/nonexistent-svc-proptest/home".into()),
        "PORT" => Some("8080".into()),
        "EMPTY" => Some(String::new()),
        "USER" => Some("someone".into()),
        _ => None,
    }
}

/// True when `source` could make the parser read a file outside [`ORIGIN`]'s missing
/// directory: an `include` or `env-file` (at any depth) with an absolute path or a variable
/// (`${X:-/dev/zero}`). Such a config would read, say, `/dev/zero` or glob `/**` until it runs
/// out of memory or time: not a panic, and the user's own choice in a real config, but
/// nothing a test may do. Inputs the KDL parser rejects never reach includes.
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

/// Parses `source`; every error must point into the text, and rendering must not panic.
fn check_config(source: &str) -> Result<(), TestCaseError> {
    if reaches_outside(source) {
        return Ok(());
    }
    let origin = Path::new(ORIGIN);
    let Err(e) = config::parse_str(source, origin, &env) else { return Ok(()) };
    check_config_error(source, origin, &e)
}

fn check_config_error(source: &str, origin: &Path, e: &ConfigError) -> Result<(), TestCaseError> {
    let items = e.items();
    prop_assert!(!items.is_empty(), "an error without diagnostics");
    if !source.is_empty() {
        prop_assert!(items.iter().any(|i| i.line >= 1 && i.column >= 1), "no diagnostic has a position: {:?}", items);
    }
    // Positions in this file must be inside it (a 1-based line at most one past the last).
    let lines = line_count(source);
    for item in items.iter().filter(|i| i.file == origin && i.line > 0) {
        prop_assert!(item.line <= lines, "line {} of a {}-line input: {:?}", item.line, lines, item);
    }
    let _ = e.to_string();
    let _ = e.render(false);
    Ok(())
}

const EXAMPLES: &[&str] = &[
    include_str!("../config-examples/full.kdl"),
    include_str!("../config-examples/quickstart.kdl"),
    include_str!("../config-examples/dependencies.kdl"),
];

/// Lines that are valid inside a `program` block.
const SETTINGS: &[&str] = &[
    "directory \"~\"",
    "start-secs 2",
    "start-retries \"infinite\"",
    "autostart #false",
    "autorestart \"unexpected\"",
    "exit-codes 0 2",
    "priority 5",
    "stop-signal \"INT\"",
    "stop-wait-secs 1.5",
    "numprocs 2\n    process-name \"{program}_{num:02}\"",
    "environment { A \"1\"; B 2; C #true }",
    "env-file \"app.env\"",
    "stdout-log { path \"logs/{name}.log\"; max-bytes \"1MB\"; backups 2 }",
    "stderr-log { path \"none\" }",
    "redirect-stderr #true",
    "umask \"022\"",
    "limits { nofile 1024; cpu \"1h\" }",
    "backoff { initial \"1s\"; max \"1m\" }",
];

/// A small valid config: a few programs with a few settings, maybe a group and defaults.
fn small_config() -> impl Strategy<Value = String> {
    let program = ("[a-z]{1,6}", prop::sample::subsequence(SETTINGS, 0..5));
    (prop::collection::vec(program, 1..4), any::<bool>(), any::<bool>()).prop_map(|(programs, defaults, group)| {
        let mut out = String::new();
        if defaults {
            out.push_str("defaults {\n    stop-wait-secs 3\n}\n");
        }
        let mut names = Vec::new();
        for (i, (name, settings)) in programs.iter().enumerate() {
            let name = format!("{name}{i}");
            out.push_str(&format!("program \"{name}\" {{\n    command \"sleep 1\"\n"));
            for s in settings.iter() {
                out.push_str(&format!("    {s}\n"));
            }
            out.push_str("}\n");
            names.push(format!("\"{name}\""));
        }
        if group {
            out.push_str(&format!("group \"grp\" {{\n    programs {}\n}}\n", names.join(" ")));
        }
        out
    })
}

/// Characters KDL and svc's expansion treat specially, to mutate with.
fn mutation_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '"', '{', '}', '(', ')', '#', '\\', ';', '/', '*', '=', '\n', '\r', ' ', '\t', '-', '.', '0', '9', 'e',
            '$', '~', ':', '[', ']', 'r', '\u{feff}', '\u{85}', '\u{2028}', '\u{0}', '\u{7f}', 'é', '€', '𝄞',
        ]),
        1 => any::<char>(),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(Index, char),
    Delete(Index),
    Replace(Index, char),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), mutation_char()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), mutation_char()).prop_map(|(i, c)| Mutation::Replace(i, c)),
    ]
}

fn mutate(source: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = source.chars().collect();
    for m in mutations {
        match *m {
            Mutation::Insert(i, c) => {
                let at = i.index(chars.len() + 1);
                chars.insert(at, c);
            }
            Mutation::Delete(i) if !chars.is_empty() => {
                chars.remove(i.index(chars.len()));
            }
            Mutation::Replace(i, c) if !chars.is_empty() => {
                let at = i.index(chars.len());
                chars[at] = c;
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Node names: svc's own, near misses, and arbitrary identifiers.
fn node_name() -> impl Strategy<Value = String> {
    let known = [
        "program",
        "group",
        "include",
        "defaults",
        "programs",
        "command",
        "directory",
        "environment",
        "env-file",
        "autostart",
        "autorestart",
        "exit-codes",
        "start-secs",
        "start-retries",
        "backoff",
        "initial",
        "max",
        "reset-after",
        "stop-signal",
        "stop-wait-secs",
        "stop-as-group",
        "kill-as-group",
        "priority",
        "numprocs",
        "numprocs-start",
        "process-name",
        "redirect-stderr",
        "umask",
        "stdout-log",
        "stderr-log",
        "path",
        "max-bytes",
        "backups",
        "limits",
        "nofile",
        "core",
        "as",
        "cpu",
        "nproc",
    ];
    prop_oneof![
        4 => prop::sample::select(known.to_vec()).prop_map(str::to_owned),
        1 => "[a-z][a-z0-9-]{0,10}",
        1 => any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

/// A KDL string literal for `s`, escaped so that it always is one.
fn kdl_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{85}') => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A KDL value: strings svc would expand, numbers at the edges of its ranges, keywords.
fn kdl_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop_oneof![
            Just("sleep 1".to_owned()),
            Just("unexpected".to_owned()),
            Just("infinite".to_owned()),
            Just("unlimited".to_owned()),
            Just("none".to_owned()),
            Just("INT".to_owned()),
            Just("SIGKILL".to_owned()),
            Just("1s".to_owned()),
            Just("20MB".to_owned()),
            Just("022".to_owned()),
            Just("{program}_{num:02}".to_owned()),
            Just("${PORT:-1} $$ ~ {here} {{x}}".to_owned()),
            Just("${NOPE} {num:} {".to_owned()),
            "[a-z{}$~:*0-9 ._/-]{0,16}",
            any::<String>(),
        ]
        .prop_map(|s| kdl_string(&s)),
        2 => prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (-3i64..20_000).prop_map(|n| n.to_string()),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
            Just("0x7fffffffffffffffffff".to_owned()),
            Just("0o777".to_owned()),
            Just("1_000".to_owned()),
            Just("1e400".to_owned()),
        ],
        1 => prop::sample::select(vec!["#true", "#false", "#null", "#inf", "#-inf", "#nan"]).prop_map(str::to_owned),
    ]
}

/// An entry: an argument, a property, or either with a type annotation.
fn kdl_entry() -> impl Strategy<Value = String> {
    (kdl_value(), prop::option::of("[a-z][a-z-]{0,6}"), prop::option::of("[a-z0-9]{1,4}")).prop_map(
        |(value, key, ty)| {
            let ty = ty.map(|t| format!("({t})")).unwrap_or_default();
            match key {
                Some(k) => format!("{k}={ty}{value}"),
                None => format!("{ty}{value}"),
            }
        },
    )
}

#[derive(Debug, Clone)]
struct Node {
    name: String,
    entries: Vec<String>,
    children: Option<Vec<Node>>,
}

fn kdl_node() -> impl Strategy<Value = Node> {
    let leaf = (node_name(), prop::collection::vec(kdl_entry(), 0..4)).prop_map(|(name, entries)| Node {
        name,
        entries,
        children: None,
    });
    leaf.prop_recursive(3, 40, 6, |inner| {
        (node_name(), prop::collection::vec(kdl_entry(), 0..3), prop::collection::vec(inner, 0..6))
            .prop_map(|(name, entries, children)| Node { name, entries, children: Some(children) })
    })
}

fn render_nodes(nodes: &[Node], depth: usize, out: &mut String) {
    for n in nodes {
        out.push_str(&"    ".repeat(depth));
        out.push_str(&kdl_string(&n.name));
        for e in &n.entries {
            out.push(' ');
            out.push_str(e);
        }
        if let Some(children) = &n.children {
            out.push_str(" {\n");
            render_nodes(children, depth + 1, out);
            out.push_str(&"    ".repeat(depth));
            out.push('}');
        }
        out.push('\n');
    }
}

fn kdl_document() -> impl Strategy<Value = String> {
    prop::collection::vec(kdl_node(), 0..6).prop_map(|nodes| {
        let mut out = String::new();
        render_nodes(&nodes, 0, &mut out);
        out
    })
}

// The KDL parser is slow in debug builds (tens of ms for `full.kdl`, and the sandbox check
// parses each input twice), so the config properties run fewer cases; the fuzzer covers depth.
proptest! {
    #![proptest_config(cases(500))]

    #[test]
    fn config_arbitrary_strings(source in prop_oneof![
        any::<String>(),
        "[a-z\"{}()#;=/*\\\\ \n\t0-9.$~-]{0,120}",
    ]) {
        check_config(&source)?;
    }

    #[test]
    fn config_generated_kdl(source in kdl_document()) {
        check_config(&source)?;
    }
}

proptest! {
    #![proptest_config(cases(96))]

    #[test]
    fn config_examples_mutated(
        example in prop::sample::select(EXAMPLES),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        check_config(&mutate(example, &mutations))?;
    }

    #[test]
    fn config_small_generated_mutated(
        source in small_config(),
        mutations in prop::collection::vec(mutation(), 0..6),
    ) {
        if mutations.is_empty() {
            // Unmutated, the generated config is valid.
            let parsed = config::parse_str(&source, Path::new(ORIGIN), &env);
            if let Err(e) = &parsed {
                // Only the env-file (which does not exist) may be wrong.
                prop_assert!(source.contains("env-file"), "{}\n{}", source, e);
            }
        }
        check_config(&mutate(&source, &mutations))?;
    }
}

/// The sandbox filter itself: dangerous includes are recognized, harmless ones are not.
#[test]
fn reaches_outside_recognizes_absolute_includes() {
    assert!(reaches_outside("include \"/dev/zero\""));
    assert!(reaches_outside("program \"a\" { env-file \"${X:-/dev/zero}\" }"));
    assert!(reaches_outside("defaults { \"env-file\" \"/etc/passwd\" }"));
    assert!(!reaches_outside("include \"conf.d/*.kdl\""));
    assert!(!reaches_outside("include \"/dev/zero"));
    assert!(!reaches_outside(EXAMPLES[0]));
}

/// Lines as miette (and so `svc check`) counts them: `\n`, `\r\n` and a lone `\r` each end one,
/// as in KDL.
fn line_count(source: &str) -> usize {
    1 + source.match_indices(['\r', '\n']).filter(|&(i, m)| !(m == "\n" && source[..i].ends_with('\r'))).count()
}

#[test]
fn line_count_counts_like_miette() {
    assert_eq!(line_count(""), 1);
    assert_eq!(line_count("a\nb"), 2);
    assert_eq!(line_count("a\r\nb\n"), 3);
    assert_eq!(line_count("a\rb\r\r\n"), 4);
}
