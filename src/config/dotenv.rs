//! The `env-file` format: dotenv lines of `KEY=VALUE`.
//!
//! Accepted: blank lines, `#` comments (whole line, or after whitespace following a value),
//! an optional `export ` prefix, spaces around `=`, unquoted values (trimmed), `'single'`
//! quoted values (verbatim, may span lines) and `"double"` quoted values (with `\n`, `\t`,
//! `\r`, `\"`, `\\`, `\$` escapes, may span lines). Values are never interpolated: a `$` in
//! an env file is a `$`. Errors carry byte offsets into the file so they can be shown with
//! the file's own source.

/// A syntax error at a byte range of the env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DotenvError {
    /// Byte offset of the offending text.
    pub offset: usize,
    /// Its length in bytes (at least 1 unless the file is empty there).
    pub len: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// Parses an env file. Returns every entry in order, or every syntax error found.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, String)>, Vec<DotenvError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        match line(text, pos) {
            Ok((entry, next)) => {
                entries.extend(entry);
                pos = next;
            }
            Err(e) => {
                errors.push(e);
                // Resynchronise at the next line so later errors are found too.
                pos = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
            }
        }
    }
    if errors.is_empty() { Ok(entries) } else { Err(errors) }
}

fn end_of_line(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i)
}

fn skip_blanks(text: &str, mut pos: usize) -> usize {
    while text[pos..].starts_with([' ', '\t']) {
        pos += 1;
    }
    pos
}

/// Parses one logical line starting at `pos`; returns its entry (if any) and where the
/// next line starts.
fn line(text: &str, pos: usize) -> Result<(Option<(String, String)>, usize), DotenvError> {
    let eol = end_of_line(text, pos);
    let mut p = skip_blanks(text, pos);
    let rest = &text[p..eol];
    if rest.trim_end_matches('\r').is_empty() || rest.starts_with('#') {
        return Ok((None, eol + 1));
    }
    if let Some(r) = rest.strip_prefix("export")
        && r.starts_with([' ', '\t'])
    {
        p = skip_blanks(text, p + "export".len());
    }
    let key_len = text[p..eol].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(eol - p);
    let key = &text[p..p + key_len];
    let bad_key = |offset: usize, len: usize, message: String| DotenvError {
        offset,
        len: len.max(1),
        message,
        help: Some("each line must be KEY=VALUE (KEY: letters, digits and `_`, not starting with a digit)".into()),
    };
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
        let word = text[p..eol].split([' ', '\t', '=']).next().unwrap_or("").trim_end_matches('\r');
        let message = if word.is_empty() {
            "missing variable name before `=`".to_owned()
        } else {
            format!("`{word}` is not a valid variable name")
        };
        return Err(bad_key(p, word.len(), message));
    }
    p = skip_blanks(text, p + key_len);
    if !text[p..].starts_with('=') {
        return Err(bad_key(p, 1, format!("expected `=` after `{key}`")));
    }
    p = skip_blanks(text, p + 1);
    let (value, after) = match text[p..].chars().next() {
        Some(q @ ('\'' | '"')) => quoted(text, p, q)?,
        _ => {
            let raw = &text[p..eol];
            // `#` starts a comment only after whitespace, so `a#b` and URLs with fragments survive.
            let cut = raw.char_indices().find(|&(i, c)| c == '#' && i > 0 && raw[..i].ends_with([' ', '\t']));
            let value = cut.map_or(raw, |(i, _)| &raw[..i]).trim_end();
            return Ok((Some((key.to_owned(), value.to_owned())), eol + 1));
        }
    };
    // After a closing quote only whitespace and a comment may follow.
    let tail_start = skip_blanks(text, after);
    let tail_end = end_of_line(text, after);
    let tail = text[tail_start..tail_end].trim_end_matches('\r');
    if !tail.is_empty() && !tail.starts_with('#') {
        return Err(DotenvError {
            offset: tail_start,
            len: tail.len(),
            message: "unexpected text after the closing quote".into(),
            help: Some("quote the whole value, or put a `#` before a comment".into()),
        });
    }
    Ok((Some((key.to_owned(), value)), tail_end + 1))
}

/// Reads a quoted value starting at the quote `q` at `start`; returns it and the offset after
/// the closing quote.
fn quoted(text: &str, start: usize, q: char) -> Result<(String, usize), DotenvError> {
    let mut value = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        if c == q {
            return Ok((value, start + 1 + i + 1));
        }
        if c == '\\' && q == '"' {
            match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, e @ ('"' | '\\' | '$'))) => value.push(e),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => break,
            }
        } else {
            value.push(c);
        }
    }
    Err(DotenvError {
        offset: start,
        len: 1,
        message: format!("this {q} quote is never closed"),
        help: Some(format!("add a closing {q}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn accepted_syntax() {
        let text = "# comment\n\nA=1\nexport B = two words  \nC='single $x # kept'\nD=\"line\\nnext \\\"q\\\" \\$\" # c\n  E=a#b # comment\nF=\nG=\"multi\nline\"\nH.I=x\r\nexport=5\n";
        assert_eq!(
            parse(text),
            Ok(kv(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "single $x # kept"),
                ("D", "line\nnext \"q\" $"),
                ("E", "a#b"),
                ("F", ""),
                ("G", "multi\nline"),
                ("H.I", "x"),
                ("export", "5"),
            ]))
        );
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(parse("A=1"), Ok(kv(&[("A", "1")])));
    }

    #[test]
    fn errors_have_offsets() {
        let text = "A=1\nnot a line\n1X=2\nB='open\nC=\"x\" y\n";
        let errs = parse(text).expect_err("bad");
        let at: Vec<(usize, &str)> = errs.iter().map(|e| (e.offset, e.message.as_str())).collect();
        assert_eq!(at[0], (8, "expected `=` after `not`"));
        assert_eq!(at[1], (15, "`1X` is not a valid variable name"));
        assert_eq!(at[2], (22, "this ' quote is never closed"));
        // Parsing resumes on the line after an unclosed quote.
        assert_eq!(at[3], (34, "unexpected text after the closing quote"));
        assert_eq!(errs.len(), 4, "{errs:?}");
        let errs = parse("C=\"x\" y\n=3\n").expect_err("bad");
        assert_eq!(errs[0].offset, 6);
        assert!(errs[0].message.contains("after the closing quote"));
        assert_eq!(errs[1].offset, 8);
    }
}
