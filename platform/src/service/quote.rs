//! Quoting for the languages the install artifacts are written in, and the tiny template
//! engine that fills them in.
//!
//! Each artifact has its own rules, and getting one wrong turns a path with a space (the macOS
//! config dir is `~/Library/Application Support/svc`) into two arguments:
//! - systemd `ExecStart=`: double quotes with C escapes, `%%` for `%` (specifiers), `$$` for `$`
//!   (environment substitution) — systemd.service(5), "Command lines";
//! - launchd plists: XML text, so `&`, `<`, `>` and quotes are escaped;
//! - `/bin/sh` (cron and profile): single quotes, with `'` written as `'\''`;
//! - cron additionally turns an unescaped `%` into a newline (crontab(5)), so `%` becomes `\%`;
//! - fish: single quotes in which `\` and `'` are escaped with a backslash.

/// Characters that never need quoting in any of the languages above, so that ordinary paths
/// stay readable in the generated files.
fn is_plain(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:,=@".contains(&b))
}

/// One argument of a systemd command line (`ExecStart=`, `ExecReload=`).
pub fn systemd_arg(s: &str) -> String {
    if is_plain(s) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            // Specifiers and variables are expanded inside quotes too.
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The executable (first word) of a systemd command line. systemd expands specifiers in it but
/// not variables, so only `%` is doubled; it refuses an executable containing a quote or a
/// backslash ("Executable name contains special characters"), which [`systemd_exe_is_safe`]
/// checks first.
pub fn systemd_exe(s: &str) -> String {
    let escaped = s.replace('%', "%%");
    if is_plain(s) { escaped } else { format!("\"{escaped}\"") }
}

/// False for an executable path systemd refuses to run (its `string_is_safe()`: control
/// characters, quotes, backslashes), measured with `systemd-analyze verify` (systemd 252).
pub fn systemd_exe_is_safe(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() || matches!(c, '"' | '\'' | '\\'))
}

/// A systemd command line from its arguments: the executable, then the arguments.
pub fn systemd_command(argv: &[String]) -> String {
    let mut words = argv.iter();
    let exe = words.next().map(|e| systemd_exe(e)).into_iter();
    exe.chain(words.map(|a| systemd_arg(a))).collect::<Vec<_>>().join(" ")
}

/// Text for an XML element or attribute value.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// One word for `/bin/sh`, single-quoted unless it is plain.
pub fn sh_word(s: &str) -> String {
    if is_plain(s) { s.to_owned() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// A `/bin/sh` command line from its arguments.
pub fn sh_command(argv: &[String]) -> String {
    argv.iter().map(|a| sh_word(a)).collect::<Vec<_>>().join(" ")
}

/// One word for fish, whose single quotes treat `\` as an escape character.
pub fn fish_word(s: &str) -> String {
    if is_plain(s) { s.to_owned() } else { format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'")) }
}

/// A fish command line from its arguments.
pub fn fish_command(argv: &[String]) -> String {
    argv.iter().map(|a| fish_word(a)).collect::<Vec<_>>().join(" ")
}

/// Protects a shell command line from cron's own `%` processing: cron turns an unescaped `%`
/// into a newline before the shell sees the line, and removes the backslash of `\%`.
pub fn cron_escape(command: &str) -> String {
    command.replace('%', r"\%")
}

/// Fills `{{name}}` placeholders in one pass, so a value that itself contains `{{x}}` is left
/// alone. Panics on a placeholder without a value: templates are compiled in, so that is a bug
/// that every test of the template finds.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("template placeholder is closed");
        let name = &after[..end];
        let value = values.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        out.push_str(value.unwrap_or_else(|| panic!("template placeholder {{{{{name}}}}} has no value")));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_bare() {
        assert_eq!(sh_word("/home/a/.cargo/bin/svc"), "/home/a/.cargo/bin/svc");
        assert_eq!(systemd_arg("--config"), "--config");
        assert_eq!(fish_word("up"), "up");
    }

    #[test]
    fn sh_quotes_spaces_and_single_quotes() {
        assert_eq!(
            sh_word("/Users/a/Library/Application Support/svc/svc.kdl"),
            "'/Users/a/Library/Application Support/svc/svc.kdl'"
        );
        assert_eq!(sh_word("it's"), r"'it'\''s'");
        assert_eq!(sh_word(""), "''");
        assert_eq!(sh_word("$HOME"), "'$HOME'");
    }

    #[test]
    fn sh_quoting_round_trips_through_a_real_shell() {
        let nasty = "a b'c\"d$e`f\\g%h*i\u{e9}";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", sh_word(nasty)))
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), nasty);
    }

    #[test]
    fn systemd_escapes_specifiers_variables_quotes_and_backslashes() {
        assert_eq!(systemd_arg("/a b/svc"), "\"/a b/svc\"");
        assert_eq!(systemd_arg("50%"), "\"50%%\"");
        assert_eq!(systemd_arg("$HOME"), "\"$$HOME\"");
        assert_eq!(systemd_arg(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn systemd_executable_doubles_only_percent() {
        assert_eq!(systemd_exe("/a b/100%/$x/svc"), "\"/a b/100%%/$x/svc\"");
        assert_eq!(systemd_command(&["/a/$x".into(), "$x".into()]), "\"/a/$x\" \"$$x\"");
        assert!(systemd_exe_is_safe("/a b/%/$/svc"));
        for bad in ["/a'b/svc", "/a\"b/svc", "/a\\b/svc"] {
            assert!(!systemd_exe_is_safe(bad), "{bad}");
        }
    }

    #[test]
    fn xml_escapes_the_five() {
        assert_eq!(xml_escape(r#"<a & 'b' "c">"#), "&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;");
    }

    #[test]
    fn fish_escapes_backslash_and_quote() {
        assert_eq!(fish_word(r"a b\c'd"), r"'a b\\c\'d'");
    }

    #[test]
    fn cron_percent_is_escaped() {
        assert_eq!(cron_escape("'/a%b/svc' up"), r"'/a\%b/svc' up");
    }

    #[test]
    fn render_is_single_pass() {
        let out = render("x={{a}} y={{b}}", &[("a", "{{b}}"), ("b", "2")]);
        assert_eq!(out, "x={{b}} y=2");
    }

    #[test]
    #[should_panic(expected = "has no value")]
    fn render_panics_on_a_missing_value() {
        render("{{nope}}", &[]);
    }
}
