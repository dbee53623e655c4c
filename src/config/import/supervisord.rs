//! `svc import supervisord`: supervisord.conf (INI) to svc KDL.
//!
//! The file is read the way supervisord 4 reads it: Python's `configparser` (`[section]`,
//! `key = value` or `key: value`, case-insensitive keys, `;`/`#` comments, inline comments
//! after whitespace, indented continuation lines, `[DEFAULT]`), the main file's `[include]`
//! merged in, `%(name)s` expansions, `shlex` for `command` and supervisord's own
//! `KEY="val",...` syntax for `environment`. Included files are inlined into the one output,
//! each program preceded by a comment naming its file.
//!
//! Every option is either converted or written as a `// supervisord: key=value (why)`
//! comment with a [`Warning`]; values are re-escaped so that svc's own `$VAR` and `{template}`
//! expansion reads back exactly what supervisord would have used.

use super::{
    Conversion, ImportError, ImportOptions, Piece, Warning, absolute, comment_text, kdl_name, kdl_string, lit, read,
    sanitize_name, svc_text, valid_name,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Converts the supervisord configuration in the file `path` (and the files its `[include]`
/// names).
pub fn supervisord_file(path: &Path, opts: &ImportOptions) -> Result<Conversion, ImportError> {
    let text = read(path)?;
    supervisord_to_kdl(&text, path, opts)
}

/// Converts supervisord configuration text. `origin` is the file it came from: the base of
/// relative `[include]` globs and the value of `%(here)s`.
pub fn supervisord_to_kdl(text: &str, origin: &Path, opts: &ImportOptions) -> Result<Conversion, ImportError> {
    let origin = absolute(origin);
    let mut ini = Ini::default();
    let mut warnings = Vec::new();
    parse_ini(text, &origin, &mut ini, &mut warnings)?;
    let mut files = vec![origin.clone()];
    let mut include_note = None;
    if let Some(inc) = ini.section("include") {
        let main_dir = origin.parent().map(Path::to_owned).unwrap_or_default();
        let included = include_files(inc, &main_dir, opts, &mut warnings);
        include_note = Some(inc.clone());
        for file in included {
            let text = read(&file)?;
            parse_ini(&text, &file, &mut ini, &mut warnings)?;
            files.push(file);
        }
    }
    let unset = RefCell::new(Vec::new());
    let mut conv = Converter {
        opts,
        out_dir: super::output_dir(opts, &origin),
        main: origin.clone(),
        text: String::new(),
        warnings,
        programs: 0,
        groups_of: HashMap::new(),
        names: HashMap::new(),
        group_priority: HashMap::new(),
        svc_priority: HashMap::new(),
        unset: &unset,
        unset_vars: Vec::new(),
    };
    conv.run(&ini, include_note.as_ref());
    let mut warnings = conv.warnings;
    // Warnings gathered at the end (unset variables) go back to their place in file order.
    warnings.sort_by_key(|w| (files.iter().position(|f| *f == w.file).unwrap_or(usize::MAX), w.line));
    Ok(Conversion { kdl: conv.text, warnings, files, programs: conv.programs, unset_vars: conv.unset_vars })
}

// ---------------------------------------------------------------------------------------
// INI, as Python's configparser reads it (supervisord's settings: inline comments `;` and
// `#` after whitespace, non-strict so repeated sections and options merge, later wins).

/// One `key = value`, with where it was written (for `%(here)s` and messages).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Opt {
    key: String,
    value: String,
    file: PathBuf,
    line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    name: String,
    file: PathBuf,
    line: usize,
    opts: Vec<Opt>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&Opt> {
        self.opts.iter().find(|o| o.key == key)
    }
}

/// Sections in order of first appearance; `[DEFAULT]` separately, as configparser does.
#[derive(Debug, Default)]
struct Ini {
    sections: Vec<Section>,
    defaults: Vec<Opt>,
}

impl Ini {
    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

fn set_opt(opts: &mut Vec<Opt>, opt: Opt) {
    // A repeated option keeps its first position and takes the later value (a dict update).
    match opts.iter_mut().find(|o| o.key == opt.key) {
        Some(o) => *o = opt,
        None => opts.push(opt),
    }
}

/// Where the text of `line` stops: the first `;`/`#` that starts the line or follows
/// whitespace; `None` if there is no comment.
fn comment_start(line: &str) -> Option<usize> {
    let trimmed = line.trim();
    if trimmed.starts_with(['#', ';']) {
        return Some(0);
    }
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if (c == ';' || c == '#') && prev_space {
            return Some(i);
        }
        prev_space = c.is_whitespace();
    }
    None
}

fn parse_ini(text: &str, file: &Path, ini: &mut Ini, warnings: &mut Vec<Warning>) -> Result<(), ImportError> {
    // (index into ini.sections, or None for DEFAULT), option key being continued.
    let mut cur: Option<Option<usize>> = None;
    let mut optname: Option<String> = None;
    let mut indent_level = usize::MAX;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let cstart = comment_start(raw);
        let value = raw[..cstart.unwrap_or(raw.len())].trim();
        if value.is_empty() {
            // A blank line inside a value is kept; a comment line is not.
            if cstart.is_none()
                && let (Some(sect), Some(name)) = (cur, &optname)
                && let Some(o) = opts_of(ini, sect).iter_mut().find(|o| &o.key == name)
            {
                o.value.push('\n');
            }
            continue;
        }
        let cur_indent = raw.find(|c: char| !c.is_whitespace()).unwrap_or(0);
        if let (Some(sect), Some(name)) = (cur, &optname)
            && cur_indent > indent_level
        {
            if let Some(o) = opts_of(ini, sect).iter_mut().find(|o| &o.key == name) {
                o.value.push('\n');
                o.value.push_str(value);
            }
            continue;
        }
        indent_level = cur_indent;
        if let Some(header) =
            value.strip_prefix('[').and_then(|v| v.rfind(']').map(|e| &v[..e])).filter(|h| !h.is_empty())
        {
            optname = None;
            if header == "DEFAULT" {
                cur = Some(None);
            } else if let Some(idx) = ini.sections.iter().position(|s| s.name == header) {
                cur = Some(Some(idx));
            } else {
                ini.sections.push(Section {
                    name: header.to_owned(),
                    file: file.to_owned(),
                    line: lineno,
                    opts: Vec::new(),
                });
                cur = Some(Some(ini.sections.len() - 1));
            }
            continue;
        }
        let Some(sect) = cur else {
            return Err(ImportError::Syntax {
                file: file.to_owned(),
                line: lineno,
                message: format!("`{}` comes before any [section] header", comment_text(value)),
            });
        };
        match value.find(['=', ':']) {
            Some(at) if !value[..at].trim().is_empty() => {
                let key = value[..at].trim().to_lowercase();
                let v = value[at + 1..].trim().to_owned();
                set_opt(opts_of(ini, sect), Opt { key: key.clone(), value: v, file: file.to_owned(), line: lineno });
                optname = Some(key);
            }
            _ => {
                warnings.push(Warning {
                    file: file.to_owned(),
                    line: lineno,
                    message: format!(
                        "`{}` is neither `key = value` nor a [section]; ignored (supervisord refuses such a file)",
                        comment_text(value)
                    ),
                });
                optname = None;
            }
        }
    }
    // Trailing blank lines of multi-line values are not part of them.
    for s in &mut ini.sections {
        for o in &mut s.opts {
            o.value.truncate(o.value.trim_end().len());
        }
    }
    for o in &mut ini.defaults {
        o.value.truncate(o.value.trim_end().len());
    }
    Ok(())
}

fn opts_of(ini: &mut Ini, sect: Option<usize>) -> &mut Vec<Opt> {
    match sect {
        Some(i) => &mut ini.sections[i].opts,
        None => &mut ini.defaults,
    }
}

/// The files the main file's `[include] files=` names: whitespace-separated globs relative
/// to the main file's directory, each pattern's matches sorted, as supervisord reads them.
fn include_files(inc: &Section, main_dir: &Path, opts: &ImportOptions, warnings: &mut Vec<Warning>) -> Vec<PathBuf> {
    let Some(files) = inc.get("files") else {
        warnings.push(Warning {
            file: inc.file.clone(),
            line: inc.line,
            message: "[include] has no `files=`; nothing included (supervisord refuses this)".into(),
        });
        return Vec::new();
    };
    // Expanded now, with this environment: svc has no equivalent of a computed include.
    let expanded = static_expand(&files.value, main_dir, opts);
    let mut out = Vec::new();
    for pattern in expanded.split_whitespace() {
        let full = main_dir.join(pattern);
        let options = glob::MatchOptions { require_literal_leading_dot: true, ..Default::default() };
        let mut matched: Vec<PathBuf> = match glob::glob_with(&full.to_string_lossy(), options) {
            Ok(paths) => paths.filter_map(Result::ok).filter(|p| p.is_file()).collect(),
            Err(e) => {
                warnings.push(Warning {
                    file: files.file.clone(),
                    line: files.line,
                    message: format!("[include] pattern `{pattern}` is not a valid glob: {e}"),
                });
                continue;
            }
        };
        matched.sort();
        if matched.is_empty() {
            warnings.push(Warning {
                file: files.file.clone(),
                line: files.line,
                message: format!("[include] pattern `{pattern}` matches no file"),
            });
        }
        for m in matched {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    out
}

/// `%(here)s`, `%(ENV_X)s`, `%(host_node_name)s` and `%%` resolved to text now (for
/// `[include] files=`, which svc can't compute at load time from supervisord's names).
fn static_expand(s: &str, here: &Path, opts: &ImportOptions) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('%') {
            out.push('%');
            rest = r;
            continue;
        }
        match parse_format(after) {
            Some(f) => {
                let v = match f.key {
                    "here" => here.to_string_lossy().into_owned(),
                    "host_node_name" => opts.host_node_name.clone().unwrap_or_default(),
                    k => k.strip_prefix("ENV_").and_then(|v| opts.var(v)).unwrap_or_default(),
                };
                out.push_str(&v);
                rest = &after[f.len..];
            }
            None => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------
// `%(name)s` expansions.

/// One Python `%(key)flags width .precision type` conversion, after the `%`.
struct Format<'a> {
    key: &'a str,
    flags: &'a str,
    width: Option<usize>,
    precision: Option<usize>,
    conv: char,
    /// Bytes after the `%`.
    len: usize,
}

fn parse_format(s: &str) -> Option<Format<'_>> {
    let inner = s.strip_prefix('(')?;
    let close = inner.find(')')?;
    let key = &inner[..close];
    let mut i = close + 2;
    let b = s.as_bytes();
    let fstart = i;
    while i < b.len() && b"#0- +".contains(&b[i]) {
        i += 1;
    }
    let flags = &s[fstart..i];
    let wstart = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let width = s[wstart..i].parse().ok();
    let mut precision = None;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let pstart = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        precision = Some(s[pstart..i].parse().unwrap_or(0));
    }
    while i < b.len() && b"hlL".contains(&b[i]) {
        i += 1;
    }
    let conv = s[i..].chars().next().filter(|c| "diouxXeEfFgGcrsa".contains(*c))?;
    Some(Format { key, flags, width, precision, conv, len: i + 1 })
}

/// What the expansions of one value refer to.
#[derive(Clone, Copy)]
struct Cx<'a> {
    /// `program_name`, `group_name`, `process_num`, `numprocs` exist (a program section).
    program: Option<&'a str>,
    group: Option<&'a str>,
    numprocs: u32,
    /// The directory of the file the value is in, and whether it is also the output's.
    here: &'a Path,
    here_is_output: bool,
    /// The program's own `environment`, which supervisord offers as `%(ENV_X)s` to the
    /// settings after it.
    program_env: Option<&'a [(String, Vec<Piece>)]>,
    /// Where the value was written, and where `%(ENV_X)s` of unset variables are collected:
    /// they are reported once per variable at the end, as `svc check` reports them.
    at: (&'a Path, usize),
    unset: &'a RefCell<Vec<(String, PathBuf, usize)>>,
}

/// Translates supervisord's expansions in `value` into svc pieces. Problems become
/// `notes` (comment text) for the caller to report.
fn translate(value: &str, cx: &Cx<'_>, opts: &ImportOptions, notes: &mut Vec<String>) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        out.extend(lit(&rest[..at]));
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('%') {
            out.push(Piece::Lit('%'));
            rest = r;
            continue;
        }
        let Some(f) = parse_format(after) else {
            notes.push("a `%` that is neither `%%` nor `%(name)s` is kept as text (supervisord rejects it)".into());
            out.push(Piece::Lit('%'));
            rest = after;
            continue;
        };
        let token = &rest[at..at + 1 + f.len];
        rest = &after[f.len..];
        let string_conv = matches!(f.conv, 's' | 'r' | 'a');
        let numeric_conv = matches!(f.conv, 'd' | 'i' | 'u');
        if (f.width.is_some() || !f.flags.is_empty() || f.precision.is_some()) && f.key != "process_num" {
            notes.push(format!("the format of `{token}` (width, padding) is ignored"));
        }
        match f.key {
            "here" if string_conv => {
                if cx.here_is_output {
                    out.push(Piece::Raw("{here}".into()));
                } else {
                    out.extend(lit(&cx.here.to_string_lossy()));
                }
            }
            "host_node_name" if string_conv => match &opts.host_node_name {
                Some(h) => {
                    out.extend(lit(h));
                    notes.push(format!("`{token}` is written as this machine's name, `{h}`"));
                }
                None => {
                    out.extend(lit("localhost"));
                    notes.push(format!("`{token}` has no svc equivalent; `localhost` written instead"));
                }
            },
            "program_name" if string_conv && cx.program.is_some() => out.push(Piece::Raw("{program}".into())),
            "group_name" if string_conv && cx.program.is_some() => match cx.group {
                Some(g) => out.extend(lit(g)),
                None => out.push(Piece::Raw("{program}".into())),
            },
            "numprocs" if (string_conv || numeric_conv) && cx.program.is_some() => {
                out.extend(lit(&cx.numprocs.to_string()));
            }
            "process_num" if (string_conv || numeric_conv) && cx.program.is_some() => {
                let zero = f.flags.contains('0') && !f.flags.contains('-');
                let pad = match (f.precision, f.width) {
                    (Some(p), _) if numeric_conv && p > 1 => Some(p),
                    (_, Some(w)) if zero && numeric_conv && w > 1 => Some(w),
                    _ => None,
                };
                if pad.is_none() && f.width.is_some_and(|w| w > 1) {
                    notes.push(format!(
                        "`{token}` pads with spaces; svc pads with zeros only, so it is written as {{num}}"
                    ));
                }
                out.push(Piece::Raw(match pad {
                    Some(w) => format!("{{num:{w:02}}}"),
                    None => "{num}".into(),
                }));
            }
            key if string_conv && key.starts_with("ENV_") => {
                let var = &key[4..];
                if let Some(v) = cx.program_env.and_then(|e| e.iter().rev().find(|(k, _)| k == var)) {
                    // The program's own environment wins in supervisord; inline its value.
                    out.extend(v.1.iter().cloned());
                } else if var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    if opts.var(var).is_none() {
                        cx.unset.borrow_mut().push((var.to_owned(), cx.at.0.to_owned(), cx.at.1));
                    }
                    out.push(Piece::Raw(format!("${{{var}}}")));
                } else {
                    notes.push(format!("`{token}` names a variable svc can't reference; kept as text"));
                    out.extend(lit(token));
                }
            }
            _ => {
                notes.push(format!("`{token}` is not a supervisord expansion here; kept as text"));
                out.extend(lit(token));
            }
        }
    }
    out.extend(lit(rest));
    out
}

// ---------------------------------------------------------------------------------------
// shlex, as supervisord uses it.

fn is_ws(p: &Piece) -> bool {
    matches!(p, Piece::Lit(' ' | '\t' | '\r' | '\n'))
}

/// `shlex.split(command)` (POSIX mode): quotes, backslashes, whitespace. An expansion is
/// one opaque word character (supervisord expands before splitting; svc after).
fn shlex_split(pieces: &[Piece]) -> Result<Vec<Vec<Piece>>, String> {
    #[derive(PartialEq, Clone, Copy)]
    enum St {
        Space,
        Word,
        Quote(char),
        Escape(Option<char>),
    }
    let mut words = Vec::new();
    let mut token: Vec<Piece> = Vec::new();
    let mut quoted = false;
    let mut st = St::Space;
    for p in pieces {
        let c = match p {
            Piece::Lit(c) => Some(*c),
            Piece::Raw(_) => None,
        };
        match st {
            St::Space | St::Word => {
                if is_ws(p) {
                    if st == St::Word {
                        words.push(std::mem::take(&mut token));
                        quoted = false;
                    }
                    st = St::Space;
                } else if c == Some('\\') {
                    st = St::Escape(None);
                } else if let Some(q @ ('\'' | '"')) = c {
                    st = St::Quote(q);
                    quoted = true;
                } else {
                    token.push(p.clone());
                    st = St::Word;
                }
            }
            St::Quote(q) => {
                if c == Some(q) {
                    st = St::Word;
                } else if q == '"' && c == Some('\\') {
                    st = St::Escape(Some(q));
                } else {
                    token.push(p.clone());
                }
            }
            St::Escape(inq) => {
                // Inside double quotes a backslash escapes only `"` and `\`.
                if inq.is_some() && c != Some('\\') && c != inq {
                    token.push(Piece::Lit('\\'));
                }
                token.push(p.clone());
                st = match inq {
                    Some(q) => St::Quote(q),
                    None => St::Word,
                };
            }
        }
    }
    match st {
        St::Quote(_) => Err("no closing quotation".into()),
        St::Escape(_) => Err("no escaped character after the final backslash".into()),
        St::Word => {
            words.push(token);
            Ok(words)
        }
        St::Space => {
            if quoted {
                words.push(token);
            }
            Ok(words)
        }
    }
}

/// The KDL values of `command`: one string when svc's shell-word split of it gives exactly
/// supervisord's argv (the user's own quoting first, then a re-quoted form), else one
/// string per argument.
fn command_values(pieces: &[Piece]) -> Result<Vec<String>, String> {
    let words = shlex_split(pieces)?;
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    let argv: Vec<String> = words.iter().map(|w| svc_text(w)).collect();
    let as_written = svc_text(pieces);
    if shell_words::split(&as_written).ok().as_ref() == Some(&argv) {
        return Ok(vec![as_written]);
    }
    let joined = shell_words::join(&argv);
    if shell_words::split(&joined).ok().as_ref() == Some(&argv) {
        return Ok(vec![joined]);
    }
    Ok(argv)
}

// ---------------------------------------------------------------------------------------
// `environment=KEY="val",KEY2=val2`: Python's non-POSIX shlex with extra word characters.

fn env_wordchar(p: &Piece) -> bool {
    match p {
        Piece::Raw(_) => true,
        Piece::Lit(c) => c.is_ascii_alphanumeric() || "_/.+-():".contains(*c),
    }
}

/// Tokens as `shlex.shlex(s)` with `wordchars += '/.+-():'` yields them.
fn env_tokens(pieces: &[Piece]) -> Result<Vec<Vec<Piece>>, String> {
    let mut tokens = Vec::new();
    let mut token: Vec<Piece> = Vec::new();
    // None: between tokens; Some(None): in a word; Some(Some(q)): in quotes.
    let mut st: Option<Option<char>> = None;
    let mut i = 0;
    while i < pieces.len() {
        let p = &pieces[i];
        let c = match p {
            Piece::Lit(c) => Some(*c),
            Piece::Raw(_) => None,
        };
        match st {
            None => {
                if is_ws(p) {
                } else if c == Some('#') {
                    while i < pieces.len() && pieces[i] != Piece::Lit('\n') {
                        i += 1;
                    }
                } else if env_wordchar(p) {
                    token.push(p.clone());
                    st = Some(None);
                } else if let Some(q @ ('\'' | '"')) = c {
                    token.push(p.clone());
                    st = Some(Some(q));
                } else {
                    tokens.push(vec![p.clone()]);
                }
            }
            Some(None) => {
                if is_ws(p) {
                    tokens.push(std::mem::take(&mut token));
                    st = None;
                } else if c == Some('#') {
                    // Non-POSIX shlex drops the rest of the line and goes on with the word.
                    while i + 1 < pieces.len() && pieces[i + 1] != Piece::Lit('\n') {
                        i += 1;
                    }
                    i += 1;
                } else if env_wordchar(p) || matches!(c, Some('\'' | '"')) {
                    token.push(p.clone());
                } else {
                    tokens.push(std::mem::take(&mut token));
                    st = None;
                    continue;
                }
            }
            Some(Some(q)) => {
                token.push(p.clone());
                if c == Some(q) {
                    tokens.push(std::mem::take(&mut token));
                    st = None;
                }
            }
        }
        i += 1;
    }
    match st {
        Some(Some(_)) => Err("no closing quotation".into()),
        Some(None) => {
            tokens.push(token);
            Ok(tokens)
        }
        None => Ok(tokens),
    }
}

/// `dict_of_key_value_pairs`: KEY = VALUE triples separated by one token (the comma); the
/// value loses its surrounding quotes. A key given twice keeps the later value.
fn env_pairs(pieces: &[Piece]) -> Result<Vec<(String, Vec<Piece>)>, String> {
    let tokens = env_tokens(pieces)?;
    let mut out: Vec<(String, Vec<Piece>)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (Some(k), Some(eq), Some(v)) = (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2)) else {
            return Err("unexpected end of KEY=value pairs".into());
        };
        if eq.as_slice() != [Piece::Lit('=')] {
            return Err("expected `=` after a variable name".into());
        }
        let key: String = k.iter().filter_map(|p| if let Piece::Lit(c) = p { Some(*c) } else { None }).collect();
        if key.len() != k.len() {
            return Err("a variable name can't contain an expansion".into());
        }
        let is_q = |p: &Piece| matches!(p, Piece::Lit('\'' | '"'));
        let start = v.iter().position(|p| !is_q(p)).unwrap_or(v.len());
        let end = v.iter().rposition(|p| !is_q(p)).map_or(start, |e| e + 1);
        let value = v[start..end.max(start)].to_vec();
        out.retain(|(k2, _)| *k2 != key);
        out.push((key, value));
        i += 4;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Scalar values.

fn py_bool(v: &str) -> Option<bool> {
    match v.trim().to_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn py_int(v: &str) -> Option<i64> {
    let t = v.trim().replace('_', "");
    t.strip_prefix('+').unwrap_or(&t).parse().ok()
}

/// `byte_size`: an integer with an optional KB/MB/GB suffix (1024-based, like svc's).
fn byte_size(v: &str) -> Option<String> {
    let t = v.trim().to_uppercase();
    for unit in ["KB", "MB", "GB"] {
        if let Some(n) = t.strip_suffix(unit) {
            let n = py_int(n)?;
            return (n >= 0).then(|| kdl_string(&format!("{n}{unit}")));
        }
    }
    py_int(&t).filter(|n| *n >= 0).map(|n| n.to_string())
}

// ---------------------------------------------------------------------------------------
// Writing.

/// A line of a program block: a setting or a comment, at one indent.
enum Item {
    Line(String),
    Log(Stream),
}

#[derive(Clone, Copy, PartialEq)]
enum Stream {
    Out,
    Err,
}

struct Converter<'a> {
    opts: &'a ImportOptions,
    out_dir: PathBuf,
    main: PathBuf,
    text: String,
    warnings: Vec<Warning>,
    programs: usize,
    /// Program section name -> the first `[group:x]` that lists it.
    groups_of: HashMap<String, String>,
    /// supervisord program name -> svc program name (differs when sanitized).
    names: HashMap<String, String>,
    /// `[group:x]` name -> its priority (supervisord's default 999).
    group_priority: HashMap<String, i64>,
    /// supervisord program name -> the svc `priority` that keeps supervisord's order.
    svc_priority: HashMap<String, i64>,
    /// `%(ENV_X)s` of variables unset here, each use, filled by [`translate`].
    unset: &'a RefCell<Vec<(String, PathBuf, usize)>>,
    /// The distinct unset variables, in order of first use.
    unset_vars: Vec<String>,
}

const PROGRAM_SECTIONS: &str = "program:";

/// Why an imported priority differs from the supervisord file's.
const REORDERED: &str = "renumbered to keep supervisord's order, which sorts by the group's priority first";

impl<'a> Converter<'a> {
    fn line(&mut self, indent: usize, s: &str) {
        for _ in 0..indent {
            self.text.push_str("    ");
        }
        self.text.push_str(s);
        self.text.push('\n');
    }

    fn warn(&mut self, opt_file: &Path, line: usize, message: String) {
        self.warnings.push(Warning { file: opt_file.to_owned(), line, message });
    }

    fn rel(&self, file: &Path) -> String {
        let dir = self.main.parent().unwrap_or(Path::new("/"));
        file.strip_prefix(dir).unwrap_or(file).display().to_string()
    }

    fn run(&mut self, ini: &Ini, include: Option<&Section>) {
        let main = self.main.display().to_string();
        self.line(0, &format!("// Converted from {} by `svc import supervisord`.", comment_text(&main)));
        self.line(0, "// Lines starting with `// supervisord:` are settings svc does not take over.");
        if self.out_dir.as_path() != self.main.parent().unwrap_or(Path::new("/")) {
            self.line(0, "// %(here)s is written as the supervisord file's directory, not {here}.");
        }
        let header_end = self.text.len();
        // Names first: groups refer to programs declared anywhere, and programs need to know
        // their group for %(group_name)s.
        for s in &ini.sections {
            if let Some(name) = s.name.strip_prefix(PROGRAM_SECTIONS) {
                let name = name.trim();
                let svc = if valid_name(name) { name.to_owned() } else { sanitize_name(name) };
                self.names.insert(name.to_owned(), svc);
            }
        }
        for s in &ini.sections {
            if let Some(g) = s.name.strip_prefix("group:")
                && let Some(p) = s.get("programs")
            {
                for prog in p.value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    self.groups_of.entry(prog.to_owned()).or_insert_with(|| g.trim().to_owned());
                }
            }
        }
        self.order_priorities(ini);
        // One `defaults` block, first: svc allows one, and the backoff setting is always in it.
        let (defaults, sup_comments) = self.supervisord(ini.section("supervisord"));
        self.line(0, "");
        self.line(0, "defaults {");
        for l in defaults {
            self.line(1, &l);
        }
        self.line(0, "}");
        let mut sup_comments = Some(sup_comments);
        if !ini.defaults.is_empty() {
            self.line(0, "");
            self.line(0, "// supervisord: [DEFAULT] (its options are applied to every program below)");
        }
        for s in &ini.sections {
            self.line(0, "");
            if s.file != self.main {
                let rel = self.rel(&s.file);
                self.line(0, &format!("// from {}", comment_text(&rel)));
            }
            let name = s.name.as_str();
            if let Some(p) = name.strip_prefix(PROGRAM_SECTIONS) {
                self.program(s, p.trim(), &ini.defaults);
            } else if let Some(g) = name.strip_prefix("group:") {
                self.group(s, g.trim());
            } else if name == "include" {
                if Some(s) == include && s.file == self.main {
                    let files = s.get("files").map(|o| o.value.as_str()).unwrap_or("");
                    self.line(
                        0,
                        &format!(
                            "// supervisord: [include] files={} (their contents are converted into this file)",
                            comment_text(files)
                        ),
                    );
                } else {
                    self.dropped_section(s, "supervisord reads [include] only in its main file", true);
                }
            } else if name == "supervisord" {
                for c in sup_comments.take().unwrap_or_default() {
                    self.line(0, &c);
                }
            } else {
                let (why, warn) = match name.split_once(':').map_or(name, |(k, _)| k) {
                    "unix_http_server" | "inet_http_server" => {
                        ("not needed: svc's control socket is private to your user, see `svc paths`", false)
                    }
                    "rpcinterface" => ("not needed: svc has no XML-RPC interface; scripts use `--json`", false),
                    "supervisorctl" => ("not needed: the svc CLI finds its daemon by itself", false),
                    "eventlistener" => (
                        "not converted: a listener speaks supervisord's event protocol on its stdin; in svc, run a \
                         command on events with `on-exit`/`on-fatal`/`on-unhealthy`, or read `svc events --json`",
                        true,
                    ),
                    "fcgi-program" => ("not supported: svc does not create FastCGI sockets", true),
                    "ctlplugin" => ("not supported: svc has no CLI plugins", true),
                    _ => ("not a supervisord section svc knows", true),
                };
                self.dropped_section(s, why, warn);
            }
        }
        self.report_unset(header_end);
    }

    /// supervisord orders by (group priority, own priority): a group's priority (999 unless
    /// set) places its members, their own priorities order them inside it. svc orders by each
    /// program's priority alone, so each gets one that keeps supervisord's order: its own
    /// where that already does, else the next free number above the program before it.
    fn order_priorities(&mut self, ini: &Ini) {
        let default_priority = ini.defaults.iter().find(|o| o.key == "priority");
        let priority_of = |s: &Section| s.get("priority").or(default_priority).and_then(|o| py_int(&o.value));
        for s in &ini.sections {
            if let Some(g) = s.name.strip_prefix("group:") {
                self.group_priority.insert(g.trim().to_owned(), priority_of(s).unwrap_or(999));
            }
        }
        // (supervisord's sort key, preferred svc priority, name)
        let mut keys: Vec<((i64, i64), i64, String)> = Vec::new();
        for s in &ini.sections {
            let Some(name) = s.name.strip_prefix(PROGRAM_SECTIONS).map(str::trim) else { continue };
            let own = priority_of(s);
            let entry = match self.groups_of.get(name).and_then(|g| self.group_priority.get(g)) {
                Some(&g) => ((g, own.unwrap_or(999)), own.unwrap_or(g)),
                None => {
                    let p = own.unwrap_or(999);
                    ((p, p), p)
                }
            };
            keys.push((entry.0, entry.1, name.to_owned()));
        }
        keys.sort_by_key(|k| k.0);
        let mut prev: Option<((i64, i64), i64)> = None;
        for (key, preferred, name) in keys {
            let p = match prev {
                Some((k, p)) if k == key => p,
                Some((_, p)) => preferred.max(p + 1),
                None => preferred,
            };
            self.svc_priority.insert(name, p);
            prev = Some((key, p));
        }
    }

    /// One warning per unset `%(ENV_X)s` variable, at its first use (svc check reports each
    /// variable too), and a note at the top of the output naming them all.
    fn report_unset(&mut self, header_end: usize) {
        let uses = std::mem::take(&mut *self.unset.borrow_mut());
        for (var, file, line) in &uses {
            if self.unset_vars.contains(var) {
                continue;
            }
            self.unset_vars.push(var.clone());
            let more = uses.iter().filter(|(v, ..)| v == var).count() - 1;
            let also = match more {
                0 => String::new(),
                1 => " (used once more below)".to_owned(),
                n => format!(" (used {n} more times below)"),
            };
            self.warn(
                file,
                *line,
                format!(
                    "`%(ENV_{var})s`: `{var}` is not set here; `svc check` and the daemon refuse the config until \
                     the daemon's environment sets it{also}"
                ),
            );
        }
        if !self.unset_vars.is_empty() {
            let note = format!(
                "// The daemon's environment must set {} (not set where this was converted).\n",
                self.unset_vars.join(", ")
            );
            self.text.insert_str(header_end, &note);
        }
    }

    /// Writes a whole section as comments.
    fn dropped_section(&mut self, s: &Section, why: &str, warn: bool) {
        self.line(0, &format!("// supervisord: [{}] ({why})", comment_text(&s.name)));
        for o in &s.opts {
            self.line(0, &format!("//   {}={}", o.key, comment_text(&o.value)));
        }
        if warn {
            let n = s.opts.len();
            self.warn(&s.file, s.line, format!("[{}] not converted ({why}); {n} option(s) kept as comments", s.name));
        }
    }

    /// The `defaults` block's lines (the backoff setting, and `[supervisord]` options that
    /// apply to every program), and the `[supervisord]` section as comments.
    fn supervisord(&mut self, s: Option<&Section>) -> (Vec<String>, Vec<String>) {
        let mut defaults = vec![
            "// supervisord restarts a program that exits after reaching RUNNING at once, however often;".to_owned(),
            "// svc would wait 1 s, 2 s, 4 s ... 60 s when it exits again within a minute of starting.".to_owned(),
            "backoff { reset-after 0; }".to_owned(),
        ];
        let mut comments = Vec::new();
        let Some(s) = s else { return (defaults, comments) };
        // supervisord applies `directory` and `umask` when it daemonizes, not with nodaemon=true.
        let nodaemon = s.get("nodaemon").and_then(|o| py_bool(&o.value)).unwrap_or(false);
        for o in &s.opts {
            let why = match o.key.as_str() {
                "directory" | "umask" if nodaemon => {
                    if o.key == "directory" {
                        self.warn(
                            &o.file,
                            o.line,
                            "[supervisord] directory: not used by supervisord with nodaemon=true (programs without a \
                             `directory` ran where supervisord was started); svc runs them in your home directory"
                                .into(),
                        );
                        "supervisord uses it only when it daemonizes; programs without `directory` run in your \
                         home directory in svc"
                    } else {
                        "supervisord sets it only when it daemonizes; with nodaemon=true programs inherit the \
                         umask it was started with, as they inherit svc's"
                    }
                }
                "environment" | "umask" | "directory" => {
                    let here = o.file.parent().unwrap_or(Path::new("/"));
                    let cx = Cx {
                        program: None,
                        group: None,
                        numprocs: 1,
                        here,
                        here_is_output: here == self.out_dir,
                        program_env: None,
                        at: (&o.file, o.line),
                        unset: self.unset,
                    };
                    let mut notes = Vec::new();
                    let converted = match o.key.as_str() {
                        "umask" => octal(&o.value).map(|u| vec![format!("umask {u}")]),
                        "directory" => {
                            let pieces = translate(&o.value, &cx, self.opts, &mut notes);
                            Some(vec![format!("directory {}", kdl_string(&svc_text(&pieces)))])
                        }
                        _ => {
                            let pieces = translate(&o.value, &cx, self.opts, &mut notes);
                            env_pairs(&pieces).map(env_block).ok()
                        }
                    };
                    for n in notes {
                        self.warn(&o.file, o.line, format!("[supervisord] {}: {n}", o.key));
                    }
                    match converted {
                        Some(lines) => {
                            let why = if o.key == "directory" {
                                "supervisord's working directory, which programs without their own inherit: \
                                 see `defaults`"
                            } else {
                                "applies to every program: see `defaults`"
                            };
                            comments.push(format!("// supervisord: {}={} ({why})", o.key, comment_text(&o.value)));
                            defaults.extend(lines);
                            continue;
                        }
                        None => "not understood; supervisord would refuse it",
                    }
                }
                "logfile" | "logfile_maxbytes" | "logfile_backups" | "loglevel" | "silent" => {
                    "svc's own log: see `svc paths`; SVC_LOG=debug for more"
                }
                "pidfile" | "identifier" | "nocleanup" => "not needed: svc keeps its state in its state directory",
                "childlogdir" => "set SVC_LOG_DIR (see `svc paths`)",
                "nodaemon" => "run `svc daemon` in the foreground or `svc up` in the background",
                "minfds" | "minprocs" => "use `limits { nofile N; nproc N }` in `defaults` or a program",
                "user" => "not supported: svc never runs programs as another user",
                "strip_ansi" => "not supported: svc logs output as is",
                _ => "no svc equivalent",
            };
            comments.push(format!("// supervisord: {}={} ({why})", o.key, comment_text(&o.value)));
        }
        (defaults, comments)
    }

    fn group(&mut self, s: &Section, name: &str) {
        let svc_name = if valid_name(name) { name.to_owned() } else { sanitize_name(name) };
        let mut members = Vec::new();
        let mut comments = Vec::new();
        if svc_name != name {
            comments.push(format!("// supervisord: [group:{name}] renamed: svc names are letters, digits, _ - ."));
            self.warn(&s.file, s.line, format!("group `{name}` renamed `{svc_name}`"));
        }
        let mut priority = None;
        // supervisord names, with their own priorities.
        let mut own: Vec<(String, i64)> = Vec::new();
        for o in &s.opts {
            match o.key.as_str() {
                "programs" => {
                    for p in o.value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let why = match self.names.get(p) {
                            Some(_) if self.groups_of.get(p).map(String::as_str) != Some(name) => {
                                Some("already in another group: svc puts a program in one group only")
                            }
                            Some(svc) => {
                                if !members.contains(svc) {
                                    members.push(svc.clone());
                                    own.push((p.to_owned(), self.svc_priority.get(p).copied().unwrap_or(999)));
                                }
                                None
                            }
                            None => Some("no [program:] of that name (an [fcgi-program:] is not converted)"),
                        };
                        if let Some(why) = why {
                            comments.push(format!("// supervisord: member {} ({why})", comment_text(p)));
                            self.warn(&o.file, o.line, format!("[group:{name}] member `{p}` left out: {why}"));
                        }
                    }
                }
                "priority" => match py_int(&o.value).filter(|p| i32::try_from(*p).is_ok()) {
                    Some(_) => priority = self.group_priority.get(name).copied(),
                    None => {
                        comments.push(format!("// supervisord: priority={} (not an integer)", comment_text(&o.value)));
                        self.warn(&o.file, o.line, format!("[group:{name}] priority is not an integer"));
                    }
                },
                _ => {
                    comments.push(format!("// supervisord: {}={} (not a group option)", o.key, comment_text(&o.value)));
                    self.warn(&o.file, o.line, format!("[group:{name}] {}: not a group option; ignored", o.key));
                }
            }
        }
        if members.is_empty() {
            self.line(0, &format!("// supervisord: [group:{}] has no program to convert", comment_text(name)));
            for c in comments {
                self.line(0, &c);
            }
            self.warn(&s.file, s.line, format!("[group:{name}] has no program left; not converted"));
            return;
        }
        let levels: std::collections::BTreeSet<i64> = own.iter().map(|(_, p)| *p).collect();
        if levels.len() > 1 {
            comments.push(
                "// note: svc stops these members one priority at a time; supervisord's own shutdown stopped a \
                 group's members together (`supervisorctl stop` went one by one, as svc does)"
                    .into(),
            );
        }
        self.line(0, &format!("group {} {{", kdl_string(&svc_name)));
        for c in comments {
            self.line(1, &c);
        }
        let list: Vec<String> = members.iter().map(|m| kdl_string(m)).collect();
        self.line(1, &format!("programs {}", list.join(" ")));
        // [DEFAULT] priority= sets the group's too.
        if let Some(p) = priority.or_else(|| self.group_priority.get(name).copied().filter(|p| *p != 999)) {
            self.line(1, &format!("priority {p}"));
        }
        self.line(0, "}");
    }

    fn program(&mut self, s: &Section, name: &str, defaults: &[Opt]) {
        let svc_name = self.names.get(name).cloned().unwrap_or_else(|| sanitize_name(name));
        let mut opts = s.opts.clone();
        for d in defaults {
            if !opts.iter().any(|o| o.key == d.key) {
                opts.push(d.clone());
            }
        }
        if !opts.iter().any(|o| o.key == "command") {
            self.dropped_section(s, "it has no `command`, which supervisord requires", true);
            return;
        }
        let numprocs = opts.iter().find(|o| o.key == "numprocs").and_then(|o| py_int(&o.value)).unwrap_or(1);
        let numprocs = u32::try_from(numprocs).unwrap_or(1);
        let group = self.groups_of.get(name).cloned();
        let mut p = Prog { items: Vec::new(), out_log: Vec::new(), err_log: Vec::new(), env: Vec::new() };
        let mut warns: Vec<(PathBuf, usize, String)> = Vec::new();
        if svc_name != name {
            p.items.push(Item::Line(format!(
                "// supervisord: [program:{}] renamed: svc names are letters, digits, _ - .",
                comment_text(name)
            )));
            warns.push((s.file.clone(), s.line, format!("program `{name}` renamed `{svc_name}`")));
        }
        // The environment comes first: supervisord offers it to the later settings as ENV_X.
        let env_opt = opts.iter().find(|o| o.key == "environment").cloned();
        let base = |o: &Opt| o.file.parent().map(Path::to_owned).unwrap_or_default();
        if let Some(o) = &env_opt {
            let here = base(o);
            let cx = Cx {
                program: Some(name),
                group: group.as_deref(),
                numprocs,
                here: &here,
                here_is_output: here == self.out_dir,
                program_env: None,
                at: (&o.file, o.line),
                unset: self.unset,
            };
            let mut notes = Vec::new();
            let pieces = translate(&o.value, &cx, self.opts, &mut notes);
            match env_pairs(&pieces) {
                Ok(pairs) => p.env = pairs,
                Err(e) => notes.push(format!("cannot be read as KEY=\"value\",...: {e}")),
            }
            for n in notes {
                warns.push((o.file.clone(), o.line, format!("[program:{name}] environment: {n}")));
            }
        }
        let stop_as_group = opts.iter().find(|o| o.key == "stopasgroup").and_then(|o| py_bool(&o.value));
        let has_kill = opts.iter().any(|o| o.key == "killasgroup");
        if numprocs > 1 {
            let named = opts.iter().find(|o| o.key == "process_name");
            if !named.is_some_and(|o| o.value.contains("%(process_num)")) {
                let (file, line) = named.map_or((&s.file, s.line), |o| (&o.file, o.line));
                let n = match named {
                    None => "svc names the instances with its default `{program}_{num:02}`".to_owned(),
                    Some(_) => "so does svc: add %(process_num)02d to process_name".to_owned(),
                };
                let why = format!(
                    "numprocs={numprocs} without %(process_num) in process_name: supervisord refuses this config; {n}"
                );
                p.items.push(Item::Line(format!("// note: {}", comment_text(&why))));
                warns.push((file.clone(), line, format!("[program:{name}] {why}")));
            }
        }
        // stdout and stderr to one file is svc's redirect-stderr (svc gives each file one writer).
        let logfile = |key: &str| opts.iter().find(|o| o.key == key).map(|o| o.value.trim());
        let merged = match (logfile("stdout_logfile"), logfile("stderr_logfile")) {
            (Some(out), Some(err)) => {
                out == err
                    && !matches!(out.to_lowercase().as_str(), "none" | "off" | "auto" | "syslog" | "/dev/null")
                    && !logfile("redirect_stderr").and_then(py_bool).unwrap_or(false)
            }
            _ => false,
        };
        for o in &opts {
            let here = base(o);
            let env = std::mem::take(&mut p.env);
            let cx = Cx {
                program: Some(name),
                group: group.as_deref(),
                numprocs,
                here: &here,
                here_is_output: here == self.out_dir,
                program_env: Some(&env),
                at: (&o.file, o.line),
                unset: self.unset,
            };
            let mut notes = Vec::new();
            let r = match o.key.as_str() {
                "stderr_logfile" if merged => {
                    p.items.push(Item::Line(
                        "redirect-stderr #true // supervisord wrote stdout and stderr to this same file".into(),
                    ));
                    same("the same file as stdout_logfile: stderr goes into the stdout log")
                }
                "stderr_logfile_maxbytes" | "stderr_logfile_backups" | "redirect_stderr" if merged => {
                    same("stderr goes into the stdout log, whose settings apply")
                }
                "priority" if !o.value.contains('%') && py_int(&o.value).is_some_and(|n| i32::try_from(n).is_ok()) => {
                    let own = py_int(&o.value).unwrap_or(999);
                    let svc = self.svc_priority.get(name).copied().unwrap_or(own);
                    let why = if svc == own {
                        String::new()
                    } else {
                        format!(" // supervisord: priority={own}; {REORDERED}")
                    };
                    p.items.push(Item::Line(format!("priority {svc}{why}")));
                    Ok(())
                }
                _ => convert_option(o, &cx, self.opts, &mut p, &mut notes),
            };
            p.env = env;
            if o.key == "stopasgroup"
                && !has_kill
                && let Some(b) = stop_as_group
            {
                p.items
                    .push(Item::Line(format!("kill-as-group #{b} // supervisord's killasgroup follows stopasgroup")));
            }
            let origin = if s.opts.iter().any(|x| x.key == o.key) { "" } else { " [DEFAULT]" };
            match r {
                Ok(()) => {}
                Err(Kept { why, warn }) => {
                    p.items.push(Item::Line(format!(
                        "// supervisord{origin}: {}={} ({why})",
                        o.key,
                        comment_text(&o.value)
                    )));
                    if warn {
                        warns.push((o.file.clone(), o.line, format!("[program:{name}] {}: {why}", o.key)));
                    }
                }
            }
            for n in notes {
                p.items.push(Item::Line(format!("// note: {}: {}", o.key, comment_text(&n))));
                warns.push((o.file.clone(), o.line, format!("[program:{name}] {}: {n}", o.key)));
            }
        }
        if !opts.iter().any(|o| o.key == "priority") {
            let inherited = group.as_ref().and_then(|g| self.group_priority.get(g)).copied().unwrap_or(999);
            if let Some(&svc) = self.svc_priority.get(name)
                && svc != inherited
            {
                p.items.push(Item::Line(format!("priority {svc} // {REORDERED}")));
            }
        }
        for (f, l, m) in warns {
            self.warn(&f, l, m);
        }
        self.programs += 1;
        self.line(0, &format!("program {} {{", kdl_string(&svc_name)));
        let items = std::mem::take(&mut p.items);
        for item in items {
            match item {
                Item::Line(l) => self.line(1, &l),
                Item::Log(stream) => {
                    let lines = if stream == Stream::Out { &p.out_log } else { &p.err_log };
                    if lines.is_empty() {
                        continue;
                    }
                    let node = if stream == Stream::Out { "stdout-log" } else { "stderr-log" };
                    self.line(1, &format!("{node} {{"));
                    for l in lines.clone() {
                        self.line(2, &l);
                    }
                    self.line(1, "}");
                }
            }
        }
        self.line(0, "}");
    }
}

/// A converted program's pieces, filled option by option.
struct Prog {
    items: Vec<Item>,
    out_log: Vec<String>,
    err_log: Vec<String>,
    env: Vec<(String, Vec<Piece>)>,
}

impl Prog {
    fn log(&mut self, stream: Stream, line: String) {
        let exists = self.items.iter().any(|i| matches!(i, Item::Log(s) if *s == stream));
        if !exists {
            self.items.push(Item::Log(stream));
        }
        match stream {
            Stream::Out => self.out_log.push(line),
            Stream::Err => self.err_log.push(line),
        }
    }
}

/// Why an option is written as a comment, and whether that loses something (a warning) or
/// is only informative (a supervisord default svc also has).
struct Kept {
    why: String,
    warn: bool,
}

fn lost<T>(why: impl Into<String>) -> Result<T, Kept> {
    Err(Kept { why: why.into(), warn: true })
}

fn same<T>(why: impl Into<String>) -> Result<T, Kept> {
    Err(Kept { why: why.into(), warn: false })
}

fn octal(v: &str) -> Option<String> {
    let t = v.trim();
    let digits = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")).unwrap_or(t);
    let n = u32::from_str_radix(digits, 8).ok().filter(|n| *n <= 0o777)?;
    Some(kdl_string(&format!("{n:03o}")))
}

fn env_block(pairs: Vec<(String, Vec<Piece>)>) -> Vec<String> {
    let mut lines = vec!["environment {".to_owned()];
    for (k, v) in pairs {
        lines.push(format!("    {} {}", kdl_name(&k), kdl_string(&svc_text(&v))));
    }
    lines.push("}".to_owned());
    lines
}

/// Converts one program option into `p`, or says why it stays a comment.
fn convert_option(
    o: &Opt,
    cx: &Cx<'_>,
    opts: &ImportOptions,
    p: &mut Prog,
    notes: &mut Vec<String>,
) -> Result<(), Kept> {
    let v = o.value.as_str();
    let key = o.key.as_str();
    // Settings that are numbers or words in svc can't hold an expansion.
    let plain = || -> Result<&str, Kept> {
        if v.contains('%') { lost("svc can't compute this setting from a variable; set it by hand") } else { Ok(v) }
    };
    let setting = |p: &mut Prog, s: String| p.items.push(Item::Line(s));
    let int_in = |lo: i64, hi: i64| -> Result<i64, Kept> {
        let t = plain()?;
        match py_int(t) {
            Some(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => lost(format!("must be an integer from {lo} to {hi}; supervisord would refuse it")),
        }
    };
    let boolean = || -> Result<bool, Kept> {
        let t = plain()?;
        match py_bool(t) {
            Some(b) => Ok(b),
            None => lost("not a boolean; supervisord would refuse it"),
        }
    };
    let (stream, rest) = match key.split_once('_') {
        Some(("stdout", r)) => (Some(Stream::Out), r),
        Some(("stderr", r)) => (Some(Stream::Err), r),
        _ => (None, key),
    };
    if let Some(stream) = stream {
        return match rest {
            "logfile" => match v.trim().to_lowercase().as_str() {
                // supervisord writes /dev/null like a file; svc discards without one.
                "none" | "off" | "/dev/null" => {
                    p.log(stream, "path \"none\"".into());
                    Ok(())
                }
                "auto" => same("svc's default log file"),
                "syslog" => lost("not supported: svc does not log to syslog; the default log file is used"),
                _ => {
                    let pieces = translate(v, cx, opts, notes);
                    p.log(stream, format!("path {}", kdl_string(&svc_text(&pieces))));
                    Ok(())
                }
            },
            "logfile_maxbytes" => match byte_size(plain()?) {
                Some(s) => {
                    p.log(stream, format!("max-bytes {s}"));
                    Ok(())
                }
                None => lost("not a size such as 50MB; supervisord would refuse it"),
            },
            "logfile_backups" => {
                let n = int_in(0, u32::MAX.into())?;
                p.log(stream, format!("backups {n}"));
                Ok(())
            }
            "capture_maxbytes" => match byte_size(v).as_deref() {
                Some("0") => same("svc has no capture mode; 0 is supervisord's default"),
                _ => lost("not supported: svc has no capture mode (process communication events)"),
            },
            "events_enabled" => match py_bool(v) {
                Some(false) => same("svc has no events; false is supervisord's default"),
                _ => lost("not supported: svc has no event listeners"),
            },
            "syslog" => match py_bool(v) {
                Some(false) => same("svc does not log to syslog; false is supervisord's default"),
                _ => lost("not supported: svc does not log to syslog"),
            },
            _ => lost("not a supervisord program option"),
        };
    }
    match key {
        "command" => {
            let pieces = translate(v, cx, opts, notes);
            if pieces.iter().any(|p| matches!(p, Piece::Raw(r) if r.starts_with('$'))) {
                notes.push(
                    "supervisord split the command after expanding %(ENV_..)s; svc expands each word after splitting, \
                     so a value with spaces stays one argument"
                        .into(),
                );
            }
            match command_values(&pieces) {
                Ok(vals) => {
                    let vals: Vec<String> = vals.iter().map(|s| kdl_string(s)).collect();
                    setting(p, format!("command {}", vals.join(" ")));
                    Ok(())
                }
                Err(e) => lost(format!("cannot be split into words like supervisord does: {e}")),
            }
        }
        "process_name" => {
            let pieces = translate(v, cx, opts, notes);
            setting(p, format!("process-name {}", kdl_string(&svc_text(&pieces))));
            Ok(())
        }
        "numprocs" => {
            let n = int_in(1, 10000)?;
            setting(p, format!("numprocs {n}"));
            Ok(())
        }
        "numprocs_start" => {
            let n = int_in(0, u32::MAX.into())?;
            setting(p, format!("numprocs-start {n}"));
            Ok(())
        }
        "priority" => {
            let n = int_in(i32::MIN.into(), i32::MAX.into())?;
            setting(p, format!("priority {n}"));
            Ok(())
        }
        "autostart" | "redirect_stderr" | "stopasgroup" | "killasgroup" => {
            let b = boolean()?;
            let node = match key {
                "autostart" => "autostart",
                "redirect_stderr" => "redirect-stderr",
                "stopasgroup" => "stop-as-group",
                _ => "kill-as-group",
            };
            setting(p, format!("{node} #{b}"));
            Ok(())
        }
        "startsecs" | "startretries" | "stopwaitsecs" => {
            let n = int_in(0, u32::MAX.into())?;
            let node = match key {
                "startsecs" => "start-secs",
                "startretries" => "start-retries",
                _ => "stop-wait-secs",
            };
            setting(p, format!("{node} {n}"));
            Ok(())
        }
        "autorestart" => {
            let t = plain()?.trim().to_lowercase();
            let value = match t.as_str() {
                "unexpected" => "\"unexpected\"".to_owned(),
                t => match py_bool(t) {
                    Some(b) => format!("#{b}"),
                    None => return lost("must be true, false or unexpected; supervisord would refuse it"),
                },
            };
            setting(p, format!("autorestart {value}"));
            Ok(())
        }
        "exitcodes" => {
            let t = plain()?;
            let codes: Option<Vec<i64>> = t.split(',').map(|c| py_int(c).filter(|n| (0..=255).contains(n))).collect();
            match codes {
                Some(c) if !c.is_empty() => {
                    let c: Vec<String> = c.iter().map(i64::to_string).collect();
                    setting(p, format!("exit-codes {}", c.join(" ")));
                    Ok(())
                }
                _ => lost("must be exit codes 0-255 separated by commas; supervisord would refuse it"),
            }
        }
        "stopsignal" => {
            let t = plain()?.trim().to_uppercase();
            let name = t.strip_prefix("SIG").unwrap_or(&t);
            if let Some(n) = py_int(name) {
                setting(p, format!("stop-signal {n}"));
            } else if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) {
                setting(p, format!("stop-signal {}", kdl_string(name)));
            } else {
                return lost("not a signal name; supervisord would refuse it");
            }
            Ok(())
        }
        "user" => lost("not supported: svc never runs programs as another user; run svc as that user instead"),
        "environment" => {
            // Parsed before the other options (it feeds their ENV_X); written here.
            let env = cx.program_env.unwrap_or(&[]);
            if env.is_empty() && !v.trim().is_empty() {
                return lost("cannot be read as KEY=\"value\",... (see the warning)");
            }
            for l in env_block(env.to_vec()) {
                setting(p, l);
            }
            Ok(())
        }
        "directory" => {
            let pieces = translate(v, cx, opts, notes);
            setting(p, format!("directory {}", kdl_string(&svc_text(&pieces))));
            Ok(())
        }
        "umask" => match octal(plain()?) {
            Some(u) => {
                setting(p, format!("umask {u}"));
                Ok(())
            }
            None => lost("not an octal umask such as 022; supervisord would refuse it"),
        },
        "serverurl" => {
            if v.trim().eq_ignore_ascii_case("auto") {
                same("svc has no XML-RPC server; AUTO is supervisord's default")
            } else {
                lost("not supported: svc has no XML-RPC server")
            }
        }
        _ => lost("not a supervisord program option"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AutoRestart, Config, LogPath, Retries};
    use std::time::Duration;

    const ORIGIN: &str = "/etc/sup/supervisord.conf";

    fn env(k: &str) -> Option<String> {
        match k {
            "HOME" => Some("/home/u".into()),
            "LOGS" => Some("/var/log/app".into()),
            _ => None,
        }
    }

    fn opts() -> ImportOptions {
        ImportOptions { output_dir: None, host_node_name: Some("box".into()), env: Some(env) }
    }

    fn convert(text: &str) -> Conversion {
        supervisord_to_kdl(text, Path::new(ORIGIN), &opts()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Converts and parses the result with svc's own parser.
    fn config(text: &str) -> (Conversion, Config) {
        let c = convert(text);
        let cfg = crate::config::parse_str(&c.kdl, Path::new("/etc/sup/svc.kdl"), &env)
            .unwrap_or_else(|e| panic!("{}\n{}", e.render(false), c.kdl));
        (c, cfg)
    }

    fn one(opts: &str) -> (Conversion, crate::config::ProgramSpec) {
        let (c, cfg) = config(&format!("[program:web]\ncommand=/bin/web\n{opts}\n"));
        let p = cfg.programs.into_iter().next().expect("one program");
        (c, p)
    }

    #[test]
    fn issue_example() {
        let (c, cfg) = config(include_str!("../../../tests/fixtures/import/issue-example.conf"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(cfg.programs.len(), 2);
        let p = &cfg.programs[0];
        assert_eq!(
            p.command,
            ["/usr/bin/java", "-DrunDir=/opt/monprog", "-cp", "lib/*", "fr.yax.monprog.Main", "--port", "1234"]
        );
        assert_eq!(p.group, "mesprogrammes");
        assert_eq!(p.stop_signal, libc::SIGINT);
        assert_eq!(p.priority, 500);
        assert_eq!(cfg.programs[1].priority, 501);
        assert!(
            c.kdl.contains(
                r#"command "/usr/bin/java -DrunDir=/opt/monprog -cp \"lib/*\" fr.yax.monprog.Main --port 1234""#
            ) || c.kdl.contains(r##"command #"/usr/bin/java"##),
            "{}",
            c.kdl
        );
    }

    #[test]
    fn every_program_option() {
        let (c, p) = one("process_name=%(program_name)s_%(process_num)02d\nnumprocs=2\nnumprocs_start=1\npriority=5\n\
             autostart=false\nstartsecs=3\nstartretries=7\nautorestart=true\nexitcodes=0, 2\nstopsignal=SIGQUIT\n\
             stopwaitsecs=20\nstopasgroup=false\nkillasgroup=false\nredirect_stderr=true\n\
             stdout_logfile=/tmp/%(program_name)s-%(process_num)d.log\nstdout_logfile_maxbytes=1MB\n\
             stdout_logfile_backups=3\nstderr_logfile=NONE\nstderr_logfile_maxbytes=0\nstderr_logfile_backups=0\n\
             environment=A=\"1\",B='two, three'\ndirectory=/srv\numask=002");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(p.name, "web_01");
        assert_eq!(p.num, Some(1));
        assert_eq!(p.priority, 5);
        assert!(!p.autostart);
        assert_eq!(p.start_secs, Duration::from_secs(3));
        assert_eq!(p.start_retries, Retries::Count(7));
        assert_eq!(p.autorestart, AutoRestart::Always);
        assert_eq!(p.exit_codes, [0, 2]);
        assert_eq!(p.stop_signal, libc::SIGQUIT);
        assert_eq!(p.stop_wait, Duration::from_secs(20));
        assert!(!p.stop_as_group && !p.kill_as_group);
        assert!(p.redirect_stderr);
        assert_eq!(p.stdout_log.path, LogPath::File("/tmp/web-1.log".into()));
        assert_eq!((p.stdout_log.max_bytes, p.stdout_log.backups), (1 << 20, 3));
        assert_eq!(p.stderr_log.path, LogPath::Discard);
        assert_eq!((p.stderr_log.max_bytes, p.stderr_log.backups), (0, 0));
        assert_eq!(p.environment, [("A".into(), "1".into()), ("B".into(), "two, three".into())]);
        assert_eq!(p.directory.as_deref(), Some(Path::new("/srv")));
        assert_eq!(p.umask, Some(0o002));
    }

    #[test]
    fn autorestart_and_booleans() {
        assert_eq!(one("autorestart=unexpected").1.autorestart, AutoRestart::Unexpected);
        assert_eq!(one("autorestart=Off").1.autorestart, AutoRestart::Never);
        assert!(one("autostart=yes").1.autostart);
        let (c, _) = one("autorestart=sometimes");
        assert!(c.kdl.contains("// supervisord: autorestart=sometimes (must be"), "{}", c.kdl);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn stopasgroup_implies_killasgroup() {
        let (c, p) = one("stopasgroup=true");
        assert!(p.stop_as_group && p.kill_as_group);
        assert!(c.kdl.contains("kill-as-group #true"), "{}", c.kdl);
        assert!(one("killasgroup=true").1.kill_as_group);
        assert_eq!(one("stopsignal=9").1.stop_signal, libc::SIGKILL);
        assert_eq!(one("stopsignal=hup").1.stop_signal, libc::SIGHUP);
    }

    #[test]
    fn unsupported_options_are_comments_and_warnings() {
        let (c, _) = one("user=www\nserverurl=http://x\nstdout_capture_maxbytes=1MB\nstdout_events_enabled=true\n\
             stderr_syslog=true\nstdout_logfile=syslog\nbogus=1");
        for needle in [
            "// supervisord: user=www (not supported: svc never runs programs as another user",
            "// supervisord: serverurl=http://x (not supported",
            "// supervisord: stdout_capture_maxbytes=1MB (not supported",
            "// supervisord: stdout_events_enabled=true (not supported",
            "// supervisord: stderr_syslog=true (not supported",
            "// supervisord: stdout_logfile=syslog (not supported",
            "// supervisord: bogus=1 (not a supervisord program option)",
        ] {
            assert!(c.kdl.contains(needle), "missing {needle}:\n{}", c.kdl);
        }
        assert_eq!(c.warnings.len(), 7, "{:?}", c.warnings);
        assert!(c.warnings.iter().all(|w| w.message.starts_with("[program:web]")));
        assert_eq!(c.warnings[0].line, 3);
        // Values equal to supervisord's defaults lose nothing: comment, no warning.
        let (c, _) =
            one("serverurl=AUTO\nstdout_capture_maxbytes=0\nstderr_events_enabled=false\nstdout_syslog=false\n\
             stdout_logfile=AUTO");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.kdl.matches("// supervisord:").count(), 6, "{}", c.kdl);
    }

    #[test]
    fn bad_values_are_comments() {
        let (c, p) = one("priority=high\nnumprocs=0\nexitcodes=0,300\numask=999\nstdout_logfile_maxbytes=5XB");
        assert_eq!(p.priority, 999);
        assert_eq!(c.warnings.len(), 5, "{:?}", c.warnings);
        let (c, _) = one("priority=%(ENV_PRIO)s");
        assert!(c.warnings[0].message.contains("can't compute"), "{:?}", c.warnings);
    }

    #[test]
    fn expansions() {
        let (c, p) = one("environment=HOME_BIN=\"%(ENV_HOME)s/bin\",WHO=%(program_name)s\n\
             directory=%(here)s/%(group_name)s\n\
             stdout_logfile=%(ENV_LOGS)s/%(host_node_name)s-%(numprocs)d-%%.log");
        assert_eq!(p.environment, [("HOME_BIN".into(), "/home/u/bin".into()), ("WHO".into(), "web".into())]);
        assert_eq!(p.directory.as_deref(), Some(Path::new("/etc/sup/web")));
        assert_eq!(p.stdout_log.path, LogPath::File("/var/log/app/box-1-%.log".into()));
        assert!(c.kdl.contains(r#"directory "{here}/{program}""#), "{}", c.kdl);
        assert!(c.kdl.contains("${LOGS}/box-1-%.log"), "{}", c.kdl);
        // The program's own environment is what %(ENV_X)s means in its later settings.
        let (_, p) = one("environment=APP=\"/opt/app\"\ndirectory=%(ENV_APP)s/run");
        assert_eq!(p.directory.as_deref(), Some(Path::new("/opt/app/run")));
        // In a group, %(group_name)s is the group.
        let (_, cfg) = config("[group:g]\nprograms=a\n[program:a]\ncommand=echo %(group_name)s\n");
        assert_eq!(cfg.programs[0].command, ["echo", "g"]);
        // An unset variable and an unknown name are reported.
        let c = convert("[program:a]\ncommand=x\ndirectory=%(ENV_NOPE_X)s%(what)s\n");
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        // Numbers: zero padding, precision, plain.
        let (_, cfg) = config(
            "[program:w]\ncommand=echo %(process_num)d %(process_num)03d %(process_num).2d %(process_num)s\n\
             process_name=w%(process_num)d\nnumprocs=2\nnumprocs_start=7\n",
        );
        assert_eq!(cfg.programs[1].command, ["echo", "8", "008", "08", "8"]);
        assert_eq!(cfg.programs[1].name, "w8");
    }

    #[test]
    fn here_is_literal_when_the_output_is_elsewhere() {
        let o = ImportOptions { output_dir: Some("/other".into()), ..opts() };
        let c = supervisord_to_kdl("[program:a]\ncommand=x\ndirectory=%(here)s\n", Path::new(ORIGIN), &o)
            .expect("converts");
        assert!(c.kdl.contains("directory \"/etc/sup\""), "{}", c.kdl);
    }

    #[test]
    fn dollars_and_braces_stay_literal() {
        let (c, p) =
            one("command=sh -c 'echo $HOME ${X} {program} }} $$; awk \"{ print $1 }\"'\nenvironment=P=\"a$b\"");
        assert_eq!(p.command, ["sh", "-c", "echo $HOME ${X} {program} }} $$; awk \"{ print $1 }\""]);
        assert_eq!(p.environment, [("P".into(), "a$b".into())]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn commands_keep_supervisord_argv() {
        for (cmd, argv) in [
            ("/bin/a  b\t'c d'", vec!["/bin/a", "b", "c d"]),
            (r#"a "x\"y" 'q\n' "p\q""#, vec!["a", "x\"y", "q\\n", "p\\q"]),
            ("a ''", vec!["a", ""]),
            (r"a b\ c", vec!["a", "b c"]),
            ("prog # not a comment for shlex", vec!["prog"]),
        ] {
            let (_, cfg) = config(&format!("[program:x]\ncommand={cmd}\n"));
            assert_eq!(cfg.programs[0].command, argv, "{cmd}");
        }
        let c = convert("[program:x]\ncommand=unclosed 'quote\n");
        assert!(c.warnings.iter().any(|w| w.message.contains("no closing quotation")), "{:?}", c.warnings);
    }

    #[test]
    fn environment_syntax() {
        let pairs =
            |s: &str| env_pairs(&lit(s)).map(|v| v.into_iter().map(|(k, v)| (k, svc_text(&v))).collect::<Vec<_>>());
        assert_eq!(
            pairs(r#"A=1,B="x,y",C='z'"#),
            Ok(vec![("A".into(), "1".into()), ("B".into(), "x,y".into()), ("C".into(), "z".into())])
        );
        assert_eq!(
            pairs("A = /usr/bin:/bin , B=(x)"),
            Ok(vec![("A".into(), "/usr/bin:/bin".into()), ("B".into(), "(x)".into())])
        );
        assert_eq!(pairs("A=1,A=2"), Ok(vec![("A".into(), "2".into())]));
        assert_eq!(pairs(""), Ok(vec![]));
        assert!(pairs("A=").is_err());
        assert!(pairs("A=\"x").is_err());
        assert!(pairs("A 1").is_err());
        let (c, _) = one("environment=A=\"x");
        assert!(c.kdl.contains("// supervisord: environment=A=\"x"), "{}", c.kdl);
        assert!(!c.warnings.is_empty());
    }

    #[test]
    fn ini_syntax() {
        let (c, cfg) = config(
            "; comment\n# comment\n[program:a]\nCOMMAND : /bin/a --x=1 ; inline comment\n\
             autostart=false;not a comment\n  ; indented comment\nenvironment=A=\"1\",\n  B=\"2\"\n\n\
             [program:a]\npriority = 3 # inline\n",
        );
        let p = &cfg.programs[0];
        assert_eq!(p.command, ["/bin/a", "--x=1"]);
        assert_eq!(p.priority, 3);
        assert_eq!(p.environment, [("A".into(), "1".into()), ("B".into(), "2".into())]);
        // `false;not` is not a boolean: the `;` needs whitespace before it to start a comment.
        assert!(c.kdl.contains("autostart=false;not a comment (not a boolean"), "{}", c.kdl);
        assert!(matches!(
            supervisord_to_kdl("command=x\n", Path::new(ORIGIN), &opts()),
            Err(ImportError::Syntax { line: 1, .. })
        ));
        let (c, _) = config("[program:a]\ncommand=x\njunk line\n");
        assert_eq!(c.warnings[0].line, 3);
        let (c, cfg) =
            config("[DEFAULT]\nautostart=false\n[program:a]\ncommand=x\n[program:b]\ncommand=y\nautostart=true\n");
        assert!(!cfg.programs[0].autostart && cfg.programs[1].autostart);
        assert!(c.kdl.contains("[DEFAULT]"));
    }

    #[test]
    fn other_sections_become_comments() {
        let (c, cfg) = config(
            "[unix_http_server]\nfile=/tmp/s.sock\nchmod=0700\n[inet_http_server]\nport=9001\n\
             [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = x:y\n[supervisorctl]\nserverurl=unix:///x\n\
             [supervisord]\nlogfile=/tmp/s.log\nuser=root\nenvironment=LANG=\"C\"\numask=027\n\
             [eventlistener:mem]\ncommand=memmon\nevents=TICK_60\n[fcgi-program:f]\ncommand=f\nsocket=tcp://x:1\n\
             [whatever]\nx=1\n[program:a]\ncommand=x\n",
        );
        for needle in [
            "// supervisord: [unix_http_server] (not needed",
            "//   file=/tmp/s.sock",
            "// supervisord: [inet_http_server]",
            "// supervisord: [rpcinterface:supervisor]",
            "// supervisord: [supervisorctl]",
            "// supervisord: logfile=/tmp/s.log (svc's own log",
            "// supervisord: user=root (not supported",
            "// supervisord: [eventlistener:mem] (not converted: a listener speaks supervisord's event protocol",
            "//   events=TICK_60",
            "// supervisord: [fcgi-program:f] (not supported",
            "// supervisord: [whatever]",
        ] {
            assert!(c.kdl.contains(needle), "missing {needle}:\n{}", c.kdl);
        }
        // Sections svc has no use for are not warnings; lost behaviour is.
        let warned: Vec<&str> = c.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(warned.len(), 3, "{warned:?}");
        assert_eq!(cfg.programs[0].environment, [("LANG".into(), "C".into())]);
        assert_eq!(cfg.programs[0].umask, Some(0o027));
    }

    #[test]
    fn groups() {
        let (c, cfg) = config(
            "[group:g]\nprograms=a, b,missing\npriority=10\nfoo=1\n[group:h]\nprograms=a\n\
             [program:a]\ncommand=x\n[program:b]\ncommand=y\n",
        );
        assert_eq!(cfg.groups.len(), 1, "{}", c.kdl);
        assert_eq!(cfg.groups[0].programs, ["a", "b"]);
        assert_eq!(cfg.groups[0].priority, 10);
        assert_eq!(c.warnings.len(), 4, "{:?}", c.warnings);
        assert!(c.kdl.contains("member missing"), "{}", c.kdl);
    }

    #[test]
    fn names_are_sanitized() {
        let (c, cfg) = config("[group:my g]\nprograms=my app\n[program:my app]\ncommand=x\n");
        assert_eq!(cfg.programs[0].name, "my_app");
        assert_eq!(cfg.groups[0].programs, ["my_app"]);
        assert_eq!(c.warnings.len(), 2);
        let (c, cfg) = config("[program:nocommand]\nautostart=true\n[program:ok]\ncommand=x\n");
        assert_eq!(cfg.programs.len(), 1);
        assert!(c.kdl.contains("[program:nocommand] (it has no `command`"), "{}", c.kdl);
    }

    #[test]
    fn includes_are_inlined() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
        std::fs::write(dir.path().join("conf.d/b.conf"), "[program:b]\ncommand=b\ndirectory=%(here)s\n").expect("w");
        std::fs::write(dir.path().join("conf.d/a.conf"), "[program:a]\ncommand=a\n[include]\nfiles=x\n").expect("w");
        std::fs::write(dir.path().join("conf.d/.hidden.conf"), "[program:h]\ncommand=h\n").expect("w");
        let main = dir.path().join("supervisord.conf");
        std::fs::write(&main, "[include]\nfiles = conf.d/*.conf nothing/*.conf\n[program:m]\ncommand=m\n").expect("w");
        let c = supervisord_file(&main, &ImportOptions::default()).expect("converts");
        assert_eq!(c.files.len(), 3);
        assert_eq!(c.programs, 3);
        assert!(c.kdl.contains("// from conf.d/a.conf"), "{}", c.kdl);
        assert!(c.warnings.iter().any(|w| w.message.contains("nothing/*.conf")), "{:?}", c.warnings);
        assert!(c.warnings.iter().any(|w| w.message.contains("only in its main file")), "{:?}", c.warnings);
        let cfg = crate::config::parse_str(&c.kdl, &dir.path().join("svc.kdl"), &env).expect("valid");
        let b = cfg.programs.iter().find(|p| p.name == "b").expect("b");
        assert_eq!(b.directory.as_deref(), Some(dir.path().join("conf.d").as_path()));
    }

    #[test]
    fn dev_null_is_discarded_and_stdio_paths_are_kept() {
        let (c, p) = one("stdout_logfile=/dev/null\nstderr_logfile=/dev/stderr\nstderr_logfile_maxbytes=0");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(p.stdout_log.path, LogPath::Discard);
        assert_eq!(p.stderr_log.path, LogPath::File("/dev/stderr".into()));
        let (c, p) = one("stdout_logfile=/dev/stdout\nredirect_stderr=true");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(p.stdout_log.path, LogPath::File("/dev/stdout".into()));
    }

    #[test]
    fn stdout_and_stderr_to_one_file_is_redirect_stderr() {
        let (c, p) = one("stdout_logfile=/l/web.log\nstderr_logfile=/l/web.log\nstderr_logfile_maxbytes=1MB\n\
             redirect_stderr=false");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(p.redirect_stderr, "{}", c.kdl);
        assert_eq!(p.stdout_log.path, LogPath::File("/l/web.log".into()));
        assert!(c.kdl.contains("// supervisord: stderr_logfile=/l/web.log (the same file"), "{}", c.kdl);
        // Both discarded is not a shared file.
        let (_, p) = one("stdout_logfile=NONE\nstderr_logfile=none");
        assert!(!p.redirect_stderr);
    }

    #[test]
    fn shared_appends_are_imported_as_written() {
        let c = convert(
            "[program:a]\ncommand=a\nstdout_logfile=/l/all.log\n\
             [program:b]\ncommand=b\nnumprocs=2\nprocess_name=b%(process_num)d\nstderr_logfile=/l/all.log\n",
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.kdl.matches("path \"/l/all.log\"").count(), 2, "{}", c.kdl);
    }

    #[test]
    fn crashes_after_running_restart_at_once() {
        let (c, p) = one("");
        assert!(c.kdl.contains("backoff { reset-after 0; }"), "{}", c.kdl);
        assert_eq!(p.backoff.reset_after, Duration::ZERO);
        // One defaults block, also holding what [supervisord] gives every program.
        let (c, cfg) = config("[supervisord]\numask=027\n[program:a]\ncommand=a\n");
        assert_eq!(c.kdl.matches("defaults {").count(), 1, "{}", c.kdl);
        assert_eq!(cfg.programs[0].backoff.reset_after, Duration::ZERO);
        assert_eq!(cfg.programs[0].umask, Some(0o027));
    }

    /// svc's start order (ascending priority, stable) must be supervisord's: groups by their
    /// priority, members by their own.
    #[test]
    fn group_priority_orders_members_as_supervisord() {
        let (c, cfg) = config(
            "[group:g]\nprograms=a,b,c\npriority=100\n\
             [program:a]\ncommand=a\npriority=5\n[program:b]\ncommand=b\n[program:c]\ncommand=c\npriority=7\n\
             [program:x]\ncommand=x\npriority=50\n[program:y]\ncommand=y\npriority=101\n\
             [group:h]\nprograms=m,n\n[program:m]\ncommand=m\npriority=500\n[program:n]\ncommand=n\npriority=501\n",
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let mut order: Vec<(i32, &str)> = cfg.programs.iter().map(|p| (p.priority, p.name.as_str())).collect();
        order.sort_by_key(|o| o.0);
        let names: Vec<&str> = order.iter().map(|o| o.1).collect();
        assert_eq!(names, ["x", "a", "c", "b", "y", "m", "n"], "{order:?}\n{}", c.kdl);
        let prio = |n: &str| cfg.programs.iter().find(|p| p.name == n).map(|p| p.priority);
        // Priorities already in supervisord's order are kept.
        assert_eq!((prio("x"), prio("m"), prio("n")), (Some(50), Some(500), Some(501)));
        assert!(c.kdl.contains("supervisord: priority=5; renumbered"), "{}", c.kdl);
        assert!(c.kdl.contains("stops these members one priority at a time"), "{}", c.kdl);
    }

    #[test]
    fn supervisord_directory_is_the_programs_default() {
        let (c, cfg) = config(
            "[supervisord]\ndirectory=%(here)s/run\n[program:a]\ncommand=a\n[program:b]\ncommand=b\ndirectory=/b\n",
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(cfg.programs[0].directory.as_deref(), Some(Path::new("/etc/sup/run")));
        assert_eq!(cfg.programs[1].directory.as_deref(), Some(Path::new("/b")));
        // Not daemonizing, supervisord never changes to it.
        let (c, cfg) = config("[supervisord]\nnodaemon=true\ndirectory=/srv\numask=077\n[program:a]\ncommand=a\n");
        assert_eq!(cfg.programs[0].directory, None);
        assert_eq!(cfg.programs[0].umask, None);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].message.contains("nodaemon=true"), "{:?}", c.warnings);
    }

    #[test]
    fn numprocs_without_process_num_is_a_warning() {
        let (c, cfg) = config("[program:w]\ncommand=w\nnumprocs=2\n");
        assert_eq!(cfg.programs.len(), 2);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].message.contains("supervisord refuses"), "{:?}", c.warnings);
        assert!(c.kdl.contains("// note: numprocs=2 without %(process_num)"), "{}", c.kdl);
        let c = convert("[program:w]\ncommand=w\nnumprocs=2\nprocess_name=w\n");
        assert!(c.warnings[0].message.contains("so does svc"), "{:?}", c.warnings);
        assert!(convert("[program:w]\ncommand=w\nnumprocs=1\n").warnings.is_empty());
    }

    #[test]
    fn unset_variables_are_reported_once_each() {
        let c = convert(
            "[program:a]\ncommand=a %(ENV_NOPE_A)s\ndirectory=%(ENV_NOPE_A)s\n\
             [program:b]\ncommand=b\nenvironment=X=\"%(ENV_NOPE_B)s\"\nstdout_logfile=%(ENV_NOPE_A)s/b.log\n",
        );
        assert_eq!(c.unset_vars, ["NOPE_A", "NOPE_B"]);
        let unset: Vec<&Warning> = c.warnings.iter().filter(|w| w.message.contains("is not set here")).collect();
        assert_eq!(unset.len(), 2, "{:?}", c.warnings);
        assert_eq!((unset[0].line, unset[1].line), (2, 6));
        assert!(unset[0].message.contains("used 2 more times"), "{:?}", unset[0]);
        assert!(c.kdl.contains("must set NOPE_A, NOPE_B"), "{}", c.kdl);
        // Warnings stay in file order.
        let lines: Vec<usize> = c.warnings.iter().map(|w| w.line).collect();
        assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    }

    #[test]
    fn no_panic_on_odd_input() {
        for text in [
            "[",
            "[]",
            "[program:]\ncommand=x",
            "[program:a]\n=x",
            "[program:a]\ncommand=%",
            "[program:a]\ncommand=%(",
            "[program:a]\ncommand=%(x",
            "[program:a]\ncommand=%(process_num)99999999999999999999d",
            "[program:a]\ncommand=\\",
            "[program:a]\ncommand=\"",
            "\u{feff}[program:é]\ncommand=é\u{0}",
            "[group:g]\n",
            "[program:a]\ncommand=x\nnumprocs=99999999999999999999",
        ] {
            if let Ok(c) = supervisord_to_kdl(text, Path::new(ORIGIN), &opts()) {
                let _: ::kdl::KdlDocument = c.kdl.parse().unwrap_or_else(|e| panic!("{text:?}: {e:?}\n{}", c.kdl));
            }
        }
    }
}
