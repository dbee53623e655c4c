//! Expansion of the string values of a configuration: `~`, `$VAR` / `${VAR}` /
//! `${VAR:-default}` / `$$`, and the templates `{program}`, `{name}`, `{num}` / `{num:02}`,
//! `{here}` with `{{` / `}}` for literal braces.
//!
//! Expansion works on parsed KDL string values, never on the raw file text, so KDL's own
//! escapes are already resolved. Errors carry the offending token so the caller can point
//! at it inside the value's source text.

use std::path::{Path, PathBuf};

/// What the templates and variables of one value expand to.
///
/// A template whose value is `None` is not available where the value is written (for
/// example `{name}` inside `process-name`, or `{program}` in an `include` path).
pub(crate) struct Context<'a> {
    /// Looks up an environment variable of the daemon.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// `{program}`: the program block's name.
    pub program: Option<&'a str>,
    /// `{name}`: the process name.
    pub name: Option<&'a str>,
    /// `{num}`: the instance number.
    pub num: Option<u32>,
    /// `{here}`: the directory of the file that defines the value. Relative paths are
    /// resolved against it.
    pub here: &'a Path,
}

/// Why a value could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpandError {
    /// One-line explanation.
    pub message: String,
    /// The text in the value that caused it (for example `${HOME}`), to point at.
    pub token: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl ExpandError {
    fn new(message: impl Into<String>, token: impl Into<String>, help: Option<&str>) -> Self {
        ExpandError { message: message.into(), token: token.into(), help: help.map(str::to_owned) }
    }
}

/// The template names, for help texts.
const TEMPLATES: &str = "{program}, {name}, {num}, {num:02}, {here}";

/// Expands variables and templates in `s`. `~` is left alone (see [`expand_word`]).
pub(crate) fn expand(s: &str, cx: &Context<'_>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        match c {
            '$' => rest = dollar(rest, cx, &mut out)?,
            '{' if rest.starts_with("{{") => {
                out.push('{');
                rest = &rest[2..];
            }
            '}' if rest.starts_with("}}") => {
                out.push('}');
                rest = &rest[2..];
            }
            '{' => rest = brace(rest, cx, &mut out)?,
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    Ok(out)
}

/// Like [`expand`], and a leading `~` or `~/` becomes `$HOME`. Used for command words.
pub(crate) fn expand_word(s: &str, cx: &Context<'_>) -> Result<String, ExpandError> {
    // `~` is replaced before variables so that a variable's value is never re-expanded.
    if s == "~" || s.starts_with("~/") {
        let home = home(cx)?;
        return Ok(format!("{home}{}", expand(&s[1..], cx)?));
    }
    if s.starts_with('~') {
        let user: String = s.chars().take_while(|&c| c != '/').collect();
        return Err(ExpandError::new(
            format!("`{user}` is not supported: only `~` (your own home) is expanded"),
            user,
            Some("write the full path, or use $HOME"),
        ));
    }
    expand(s, cx)
}

/// Expands `s` as a path: [`expand_word`], then a relative result is taken relative to `{here}`.
pub(crate) fn expand_path(s: &str, cx: &Context<'_>) -> Result<PathBuf, ExpandError> {
    let expanded = expand_word(s, cx)?;
    if expanded.is_empty() {
        return Err(ExpandError::new("the path is empty", s, None));
    }
    let path = PathBuf::from(expanded);
    Ok(if path.is_absolute() { path } else { cx.here.join(path) })
}

fn home(cx: &Context<'_>) -> Result<String, ExpandError> {
    match (cx.env)("HOME") {
        Some(h) if !h.is_empty() => Ok(h),
        _ => Err(ExpandError::new(
            "`~` can't be expanded: HOME is not set",
            "~",
            Some("set HOME in the daemon's environment, or write the full path"),
        )),
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Handles a `$` at the start of `rest`; returns what follows the construct.
fn dollar<'s>(rest: &'s str, cx: &Context<'_>, out: &mut String) -> Result<&'s str, ExpandError> {
    let after = &rest[1..];
    if let Some(r) = after.strip_prefix('$') {
        out.push('$');
        return Ok(r);
    }
    if let Some(inner) = after.strip_prefix('{') {
        let Some(end) = inner.find('}') else {
            return Err(ExpandError::new(
                "`${` is not closed by `}`",
                "${",
                Some("write ${NAME}, or $$ for a literal `$`"),
            ));
        };
        let body = &inner[..end];
        let token = format!("${{{body}}}");
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if !name.starts_with(is_name_start) || !name.chars().all(is_name_char) {
            return Err(ExpandError::new(
                format!("`{token}` is not a valid variable reference"),
                token,
                Some("write ${NAME} or ${NAME:-default}, with NAME made of letters, digits and `_`"),
            ));
        }
        match ((cx.env)(name), default) {
            (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(unset(name, token)),
        }
        return Ok(&inner[end + 1..]);
    }
    if after.starts_with(is_name_start) {
        let len = after.find(|c| !is_name_char(c)).unwrap_or(after.len());
        let name = &after[..len];
        match (cx.env)(name) {
            Some(v) => out.push_str(&v),
            None => return Err(unset(name, format!("${name}"))),
        }
        return Ok(&after[len..]);
    }
    // `$1`, `$?`, `$(`... belong to a shell the command may run: keep them as written.
    out.push('$');
    Ok(after)
}

fn unset(name: &str, token: String) -> ExpandError {
    ExpandError {
        message: format!("environment variable `{name}` is not set"),
        token,
        help: Some(format!(
            "set it in the daemon's environment, give a default with ${{{name}:-default}}, or write $$ for a literal `$`"
        )),
    }
}

/// Handles a single `{` at the start of `rest`; returns what follows the construct.
fn brace<'s>(rest: &'s str, cx: &Context<'_>, out: &mut String) -> Result<&'s str, ExpandError> {
    let inner = &rest[1..];
    let ident_len = inner.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(inner.len());
    let ident = &inner[..ident_len];
    let after_ident = &inner[ident_len..];
    // Only `{word}` and `{word:spec}` are templates; other braces (shell `{ a; }`, JSON,
    // awk `{print $1}`) are ordinary text.
    let (spec, end) = if after_ident.starts_with('}') {
        (None, ident_len + 1)
    } else if let Some(s) = after_ident.strip_prefix(':') {
        match s.find('}') {
            Some(e) if s[..e].chars().all(|c| c.is_ascii_alphanumeric()) => (Some(&s[..e]), ident_len + 2 + e),
            _ => {
                out.push('{');
                return Ok(inner);
            }
        }
    } else {
        out.push('{');
        return Ok(inner);
    };
    if ident.is_empty() {
        out.push('{');
        return Ok(inner);
    }
    let token = &rest[..end + 1];
    let unavailable = |what: &str| {
        ExpandError::new(
            format!("`{token}` can't be used here: {what}"),
            token,
            Some("templates are available in program settings; `{name}` is not available in `process-name` itself"),
        )
    };
    if spec.is_some() && ident != "num" {
        return Err(ExpandError::new(format!("`{token}`: only `{{num}}` takes a format (`{{num:02}}`)"), token, None));
    }
    match ident {
        "program" => out.push_str(cx.program.ok_or_else(|| unavailable("there is no program"))?),
        "name" => out.push_str(cx.name.ok_or_else(|| unavailable("the process name is not known yet"))?),
        "here" => out.push_str(&cx.here.to_string_lossy()),
        "num" => {
            let n = cx.num.ok_or_else(|| unavailable("there is no instance number"))?;
            let width = match spec {
                None => 0,
                Some(s) => match s.strip_prefix('0').unwrap_or(s).parse::<usize>() {
                    Ok(w) if w <= 20 => w,
                    _ => {
                        return Err(ExpandError::new(
                            format!("`{token}`: the format must be a zero-padded width such as `02`"),
                            token,
                            Some("write {num} or {num:03}"),
                        ));
                    }
                },
            };
            out.push_str(&format!("{n:0width$}"));
        }
        _ => {
            return Err(ExpandError::new(
                format!("unknown template `{token}`"),
                token,
                Some(&format!("known templates: {TEMPLATES}; write {{{{ and }}}} for literal braces")),
            ));
        }
    }
    Ok(&inner[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "HOME" => Some("/home/u".into()),
            "PORT" => Some("8080".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn cx() -> Context<'static> {
        Context { env: &env, program: Some("web"), name: Some("web_03"), num: Some(3), here: Path::new("/etc/svc") }
    }

    fn ok(s: &str) -> String {
        expand_word(s, &cx()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn err(s: &str) -> ExpandError {
        expand_word(s, &cx()).expect_err(s)
    }

    #[test]
    fn variables() {
        assert_eq!(ok("$PORT"), "8080");
        assert_eq!(ok("x${PORT}y"), "x8080y");
        assert_eq!(ok("$PORT-$PORT"), "8080-8080");
        assert_eq!(ok("${NOPE:-dflt}"), "dflt");
        assert_eq!(ok("${EMPTY:-dflt}"), "dflt");
        assert_eq!(ok("${PORT:-dflt}"), "8080");
        assert_eq!(ok("${NOPE:-}"), "");
        assert_eq!(ok("$$PORT"), "$PORT");
        assert_eq!(ok("cost: 5$"), "cost: 5$");
        assert_eq!(ok("echo $1 $? $(date)"), "echo $1 $? $(date)");
    }

    #[test]
    fn variable_errors() {
        let e = err("a $NOPE b");
        assert_eq!(e.token, "$NOPE");
        assert!(e.message.contains("`NOPE` is not set"), "{}", e.message);
        assert_eq!(err("${NOPE}").token, "${NOPE}");
        assert!(err("${oops").message.contains("not closed"));
        assert!(err("${a b}").message.contains("not a valid variable"));
        assert!(err("${}").message.contains("not a valid variable"));
    }

    #[test]
    fn templates() {
        assert_eq!(ok("{program}/{name}/{num}/{num:02}/{num:04}"), "web/web_03/3/03/0003");
        assert_eq!(ok("{here}/x"), "/etc/svc/x");
        assert_eq!(ok("{{program}}"), "{program}");
        assert_eq!(ok("a}b{ c }{\"k\":1}"), "a}b{ c }{\"k\":1}");
        assert_eq!(ok("awk '{print $1}'"), "awk '{print $1}'");
        assert_eq!(ok("{}"), "{}");
        assert_eq!(ok("{"), "{");
    }

    #[test]
    fn template_errors() {
        let e = err("x{nmu}y");
        assert_eq!(e.token, "{nmu}");
        assert!(e.message.contains("unknown template"));
        assert!(err("{name:02}").message.contains("only `{num}` takes a format"));
        assert!(err("{num:xx}").message.contains("zero-padded width"));
        let none = Context { env: &env, program: None, name: None, num: None, here: Path::new("/") };
        assert!(expand("{name}", &none).is_err());
        assert!(expand("{program}", &none).is_err());
        assert!(expand("{num}", &none).is_err());
        assert_eq!(expand("{here}", &none).as_deref(), Ok("/"));
    }

    #[test]
    fn tilde() {
        assert_eq!(ok("~"), "/home/u");
        assert_eq!(ok("~/x/$PORT"), "/home/u/x/8080");
        assert_eq!(ok("a~b"), "a~b");
        assert!(err("~bob/x").message.contains("`~bob`"));
        let nohome = |_: &str| None;
        let c = Context { env: &nohome, program: None, name: None, num: None, here: Path::new("/") };
        assert!(expand_word("~/x", &c).expect_err("no home").message.contains("HOME"));
        // A variable's value is not re-expanded.
        let tildevar = |k: &str| (k == "T").then(|| "~/x".to_owned());
        let c = Context { env: &tildevar, program: None, name: None, num: None, here: Path::new("/") };
        assert_eq!(expand_word("$T", &c).as_deref(), Ok("~/x"));
    }

    #[test]
    fn paths() {
        assert_eq!(expand_path("logs/{name}.log", &cx()), Ok(PathBuf::from("/etc/svc/logs/web_03.log")));
        assert_eq!(expand_path("/var/x", &cx()), Ok(PathBuf::from("/var/x")));
        assert_eq!(expand_path("~/x", &cx()), Ok(PathBuf::from("/home/u/x")));
        assert!(expand_path("", &cx()).is_err());
    }
}
