//! A linear pre-pass over a KDL file before the `kdl` crate parses it.
//!
//! The `kdl` parser is recursive: one stack frame chain per nested `{`, per `/-` that directly
//! follows another `/-`, per `*` or `/` inside a `/* */` comment, and per stray `}` or `)` it
//! recovers from. A few thousand of any of these overflow the stack, and a stack overflow
//! aborts the process: `svc check` dies with SIGABRT, and a `reload` kills the daemon and
//! orphans its programs. So before the parser sees a file, this pass
//!
//! - rejects a `{` nested deeper than [`MAX_NESTING`], a chain of more than
//!   [`MAX_SLASHDASH_CHAIN`] `/-`, and any `}` or `)` that closes nothing (those are KDL
//!   errors anyway), each with its position;
//! - blanks the inside of every `/* */` comment (spaces, newlines kept, so every byte offset
//!   and line stays where it was), which leaves the parser one frame per comment.
//!
//! Strings (quoted, raw `#"..."#`, multi-line `"""`) and `//` comments are skipped the way
//! KDL v2 reads them, so braces in values never count. On a valid file this pass and the
//! parser agree exactly; on an invalid one the parser's error recovery may read some text
//! differently, which can at worst let that file's own error reach the parser as before.

/// Deepest `{` nesting accepted. svc's own configs nest three deep (`program` >
/// `stdout-log` > `path`); 64 leaves room for anything a person writes, and costs the
/// parser about 2 MiB of stack in a debug build (it runs on a thread with far more).
pub(crate) const MAX_NESTING: usize = 64;

/// Longest run of `/-` applying to one another (`/- /- node`); nobody writes more than one.
pub(crate) const MAX_SLASHDASH_CHAIN: usize = 64;

/// Something the parser must not see, at a byte range of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) offset: usize,
    pub(crate) len: usize,
    pub(crate) message: String,
    pub(crate) label: &'static str,
    pub(crate) help: String,
}

/// What the parser gets.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The file's text with comment bodies blanked.
    pub(crate) text: String,
    /// Every `{` is closed: a parser error about unclosed blocks is a consequence of another
    /// error, not a missing `}`.
    pub(crate) balanced: bool,
}

/// The text to give the parser, or the first reason not to parse.
pub(crate) fn prepare(text: &str) -> Result<Prepared, Problem> {
    let b = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut depth = 0usize;
    let mut paren_open = false;
    // `/-` seen since the last token that was not whitespace or a comment.
    let mut chain = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            i = line_end(b, i + 2);
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let (end, closed) = comment_end(b, i + 2);
            let body = i + 2..if closed { end - 2 } else { end };
            let o = out.get_or_insert_with(|| b.to_vec());
            for byte in &mut o[body] {
                if *byte != b'\n' && *byte != b'\r' {
                    *byte = b' ';
                }
            }
            i = end;
            continue;
        }
        if c.is_ascii_whitespace() || c == b'\\' {
            i += 1;
            continue;
        }
        if let Some(n) = newline_at(b, i) {
            i += n;
            continue;
        }
        if let Some(space) = text.get(i..).and_then(|t| t.chars().next()).filter(|&c| c != ' ' && kdl_space(c)) {
            i += space.len_utf8();
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'-') {
            chain += 1;
            if chain > MAX_SLASHDASH_CHAIN {
                return Err(Problem {
                    offset: i,
                    len: 2,
                    message: format!("more than {MAX_SLASHDASH_CHAIN} `/-` in a row"),
                    label: "one too many",
                    help: "one `/-` comments out the node, value or block after it; remove the others".into(),
                });
            }
            i += 2;
            continue;
        }
        chain = 0;
        match c {
            b'"' => i = quoted_end(text, i),
            b'#' => {
                let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
                i = if b.get(i + hashes) == Some(&b'"') {
                    raw_end(b, i + hashes, hashes)
                } else {
                    // `#true`, `#null`, ...: a keyword, nothing to skip.
                    i + hashes
                };
            }
            b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Problem {
                        offset: i,
                        len: 1,
                        message: format!("blocks are nested more than {MAX_NESTING} deep"),
                        label: "too deep",
                        help: "svc's settings nest at most three blocks deep; is a `}` missing above?".into(),
                    });
                }
                i += 1;
            }
            b'}' => {
                if depth == 0 {
                    return Err(Problem {
                        offset: i,
                        len: 1,
                        message: "unmatched `}`".into(),
                        label: "closes nothing",
                        help: "every `}` closes a `{` before it: remove this one, or add the missing `{`".into(),
                    });
                }
                depth -= 1;
                i += 1;
            }
            b'(' => {
                paren_open = true;
                i += 1;
            }
            b')' => {
                if !paren_open {
                    return Err(Problem {
                        offset: i,
                        len: 1,
                        message: "unmatched `)`".into(),
                        label: "closes nothing",
                        help: "parentheses only enclose a type annotation such as (u8)1; quote text that contains `)`"
                            .into(),
                    });
                }
                paren_open = false;
                i += 1;
            }
            _ => i += 1,
        }
    }
    let text = match out {
        // Only whole comment bodies were replaced, byte for byte, by ASCII: still UTF-8.
        Some(o) => String::from_utf8(o).unwrap_or_else(|_| text.to_owned()),
        None => text.to_owned(),
    };
    Ok(Prepared { text, balanced: depth == 0 })
}

/// KDL's newlines beyond `\n` and `\r`: NEL, VT, FF, LS, PS.
fn newline_at(b: &[u8], i: usize) -> Option<usize> {
    match b[i] {
        b'\n' | b'\r' | 0x0B | 0x0C => Some(1),
        0xC2 if b.get(i + 1) == Some(&0x85) => Some(2),
        0xE2 if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xA8 | 0xA9)) => Some(3),
        _ => None,
    }
}

/// Offset just past the newline that ends a `//` comment (or the end of the text).
fn line_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        if let Some(n) = newline_at(b, i) {
            return i + n;
        }
        i += 1;
    }
    i
}

/// Offset just past the `*/` closing a block comment whose body starts at `i`, counting
/// nested `/* */` as KDL does, and whether it was closed (else the offset is the end).
fn comment_end(b: &[u8], mut i: usize) -> (usize, bool) {
    let mut depth = 1usize;
    while i < b.len() {
        if b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return (i, true);
            }
        } else if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    (i, false)
}

/// Offset just past a quoted string starting at the `"` at `i`. A single-line string that
/// meets a newline ends there, as the parser stops there too (with an error).
fn quoted_end(text: &str, i: usize) -> usize {
    let b = text.as_bytes();
    let multi = b[i..].starts_with(b"\"\"\"");
    let mut j = i + if multi { 3 } else { 1 };
    while j < b.len() {
        if !multi && newline_at(b, j).is_some() {
            return j;
        }
        match b[j] {
            b'\\' => j = after_escape(text, j + 1),
            b'"' if !multi => return j + 1,
            b'"' if b[j..].starts_with(b"\"\"\"") => return j + 3,
            _ => j += 1,
        }
    }
    b.len()
}

/// Offset after the escape whose `\\` is just before `j`: a whitespace escape (`\\` then any
/// run of spaces and newlines, which KDL drops) or one escaped character.
fn after_escape(text: &str, j: usize) -> usize {
    let rest = text.get(j..).unwrap_or("");
    let ws: usize = rest.chars().take_while(|&c| kdl_space(c)).map(char::len_utf8).sum();
    if ws > 0 { j + ws } else { j + 1 }
}

/// KDL's whitespace and newline characters.
fn kdl_space(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{20}' | '\u{A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    ) || matches!(c, '\n' | '\r' | '\u{85}' | '\u{B}' | '\u{C}' | '\u{2028}' | '\u{2029}')
}

/// Offset just past a raw string `#..#"...."#..#` whose quote is at `i`, with `hashes` `#`.
fn raw_end(b: &[u8], i: usize, hashes: usize) -> usize {
    let multi = b[i..].starts_with(b"\"\"\"");
    let close: Vec<u8> = if multi { b"\"\"\"".to_vec() } else { b"\"".to_vec() }
        .into_iter()
        .chain(std::iter::repeat_n(b'#', hashes))
        .collect();
    let mut j = i + if multi { 3 } else { 1 };
    while j < b.len() {
        if !multi && newline_at(b, j).is_some() {
            return j;
        }
        if b[j..].starts_with(&close) {
            return j + close.len();
        }
        j += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> Problem {
        prepare(text).expect_err("a problem")
    }

    #[test]
    fn nesting_is_bounded_at_the_first_brace_too_deep() {
        let ok = "a {".repeat(MAX_NESTING) + &"}".repeat(MAX_NESTING);
        assert!(prepare(&ok).is_ok());
        let deep = "a {".repeat(1000) + &"}".repeat(1000);
        let p = problem(&deep);
        assert_eq!((p.offset, p.len), (MAX_NESTING * 3 + 2, 1));
        assert_eq!(p.message, "blocks are nested more than 64 deep");
    }

    #[test]
    fn braces_in_strings_and_comments_do_not_count() {
        let many = "{".repeat(500);
        for text in [
            format!("a \"{many}\""),
            format!("a \"\\\"{many}\""),
            format!("a #\"{many}\"#"),
            format!("a ##\"\"#{many}\"##"),
            format!("a \"\"\"\n{many} \" \"\" \\\"\"\"\n\"\"\""),
            format!("a #\"\"\"\n\"\"\" {many}\n\"\"\"#"),
            format!("// {many}\na 1"),
            format!("/* {many} /* */ }}}}}} */ a 1"),
            "a \"}\" b \"{\" (t)c \")\" d #\")\"#".to_owned(),
        ] {
            assert!(prepare(&text).is_ok(), "{text}");
        }
    }

    #[test]
    fn stray_closers_are_reported_where_they_are() {
        assert_eq!(problem("a {\n}\n}\n").offset, 6);
        assert_eq!(problem("a {\n}\n}\n").message, "unmatched `}`");
        assert_eq!(problem("(t)a 1)").offset, 6);
        assert_eq!(problem("(t)a 1)").message, "unmatched `)`");
        // A string cut by a newline ends there, as it does for the parser.
        assert_eq!(problem("a \"x\n}").offset, 5);
    }

    #[test]
    fn slashdash_chains_are_bounded() {
        assert!(prepare("/- /- /- a\nb /- 1 /- 2 /- { c }").is_ok());
        let long = "/- ".repeat(1000) + "a";
        assert_eq!(problem(&long).offset, MAX_SLASHDASH_CHAIN * 3);
        let spaced = "/-\n/* x */ ".repeat(100) + "a";
        assert!(prepare(&spaced).is_err());
        // Separate slashdashes are not a chain.
        assert!(prepare(&"/- a\n".repeat(1000)).is_ok());
    }

    #[test]
    fn comment_bodies_are_blanked_in_place() {
        let text = "a /* x * / ** é /* in */\n */ 1 // keep ** \n/* never closed ***";
        let out = prepare(text).expect("ok").text;
        assert_eq!(out.len(), text.len());
        let blank = |n: usize| " ".repeat(n);
        let first = " x * / ** é /* in */".len();
        let last = " never closed ***".len();
        assert_eq!(out, format!("a /*{}\n */ 1 // keep ** \n/*{}", blank(first), blank(last)));
        assert_eq!(prepare("no comments").expect("ok").text, "no comments");
        assert!(prepare("a { b }").expect("ok").balanced);
        assert!(!prepare("a { b").expect("ok").balanced);
    }
}
