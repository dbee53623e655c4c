//! `svc import procfile`: a Procfile (foreman, honcho, overmind) to svc KDL.
//!
//! A Procfile has one `name: command` per line; blank lines and `#` comments are ignored.
//! The tools run each command through `/bin/sh -c` in the Procfile's directory, with `PORT`
//! set to 5000 for the first process type, 5100 for the second, and so on (foreman's
//! convention, which honcho follows). The conversion does the same explicitly:
//! `command "sh" "-c" "..."`, `directory`, and `environment { PORT "5000" }`.

use super::{Conversion, ImportError, ImportOptions, Warning, absolute, comment_text, kdl_string, lit, svc_text};
use std::path::Path;

/// foreman's base port and the step between process types.
const BASE_PORT: u32 = 5000;
const PORT_STEP: u32 = 100;

/// Converts the Procfile at `path`.
pub fn procfile_file(path: &Path, opts: &ImportOptions) -> Result<Conversion, ImportError> {
    let text = super::read(path)?;
    procfile_to_kdl(&text, path, opts)
}

/// Converts Procfile text. `origin` is the file it came from: commands run in its directory,
/// and a `.env` file next to it (which foreman and honcho load) becomes `env-file`.
pub fn procfile_to_kdl(text: &str, origin: &Path, opts: &ImportOptions) -> Result<Conversion, ImportError> {
    let origin = absolute(origin);
    let dir = origin.parent().map(Path::to_owned).unwrap_or_default();
    let out_dir = super::output_dir(opts, &origin);
    let mut warnings = Vec::new();
    let mut out = String::new();
    out.push_str(&format!(
        "// Converted from {} by `svc import procfile`.\n",
        comment_text(&origin.display().to_string())
    ));
    out.push_str("// Like foreman: each command runs through `sh -c` in the Procfile's directory, and PORT is\n");
    out.push_str(&format!("// {BASE_PORT} for the first process type, +{PORT_STEP} for each next one.\n"));
    // `{here}` is the output file's directory; only use it when that is the Procfile's.
    let directory = if out_dir == dir { "{here}".to_owned() } else { svc_text(&lit(&dir.to_string_lossy())) };
    let env_file = dir.join(".env");
    let env_file = env_file
        .is_file()
        .then(|| if out_dir == dir { "{here}/.env".to_owned() } else { svc_text(&lit(&env_file.to_string_lossy())) });
    let mut names: Vec<String> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let lineno = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // foreman: /^([A-Za-z0-9_-]+):\s*(.+)$/
        let parsed = line.split_once(':').filter(|(name, cmd)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && !name.starts_with('-')
                && !cmd.trim().is_empty()
        });
        let Some((name, cmd)) = parsed else {
            warnings.push(Warning {
                file: origin.clone(),
                line: lineno,
                message: format!("`{}` is not `name: command`; ignored (foreman ignores it too)", comment_text(line)),
            });
            out.push_str(&format!("\n// procfile: {} (not `name: command`; ignored)\n", comment_text(line)));
            continue;
        };
        if names.iter().any(|n| n == name) {
            warnings.push(Warning {
                file: origin.clone(),
                line: lineno,
                message: format!("process type `{name}` is defined again; only the first one is converted"),
            });
            out.push_str(&format!("\n// procfile: {} (a second `{name}`; not converted)\n", comment_text(line)));
            continue;
        }
        let port = BASE_PORT + PORT_STEP * u32::try_from(names.len()).unwrap_or(0);
        names.push(name.to_owned());
        // The shell expands `$PORT` and friends at run time, so svc must not: every `$` is
        // escaped, and braces too.
        let script = svc_text(&lit(cmd.trim()));
        out.push('\n');
        out.push_str(&format!("program {} {{\n", kdl_string(name)));
        out.push_str(&format!("    command \"sh\" \"-c\" {}\n", kdl_string(&script)));
        out.push_str(&format!("    directory {}\n", kdl_string(&directory)));
        if let Some(f) = &env_file {
            out.push_str(&format!("    env-file {}   // foreman and honcho load .env\n", kdl_string(f)));
        }
        out.push_str(&format!(
            "    environment {{ PORT \"{port}\"; }}   // foreman's PORT for process type {}\n",
            names.len()
        ));
        out.push_str("}\n");
    }
    if names.is_empty() {
        warnings.push(Warning { file: origin.clone(), line: 0, message: "no `name: command` line found".into() });
    }
    Ok(Conversion { kdl: out, warnings, files: vec![origin], programs: names.len(), unset_vars: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn convert(text: &str) -> Conversion {
        let opts = ImportOptions { output_dir: Some(PathBuf::from("/elsewhere")), ..Default::default() };
        procfile_to_kdl(text, Path::new("/app/Procfile"), &opts).expect("converts")
    }

    fn check(kdl: &str) -> crate::config::Config {
        crate::config::parse_str(kdl, Path::new("/elsewhere/svc.kdl"), &|_| None)
            .unwrap_or_else(|e| panic!("{}\n{kdl}", e.render(false)))
    }

    #[test]
    fn lines_become_programs_with_ports() {
        let c = convert(
            "# comment\n\nweb: bundle exec puma -p $PORT -e ${RACK_ENV:-development}\nworker_2: echo '{\"a\": 1}' | jq .a\r\n",
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.programs, 2);
        let cfg = check(&c.kdl);
        let web = &cfg.programs[0];
        assert_eq!(web.name, "web");
        assert_eq!(web.command, ["sh", "-c", "bundle exec puma -p $PORT -e ${RACK_ENV:-development}"]);
        assert_eq!(web.directory.as_deref(), Some(Path::new("/app")));
        assert_eq!(web.environment, [("PORT".to_owned(), "5000".to_owned())]);
        let worker = &cfg.programs[1];
        assert_eq!(worker.command[2], "echo '{\"a\": 1}' | jq .a");
        assert_eq!(worker.environment, [("PORT".to_owned(), "5100".to_owned())]);
    }

    #[test]
    fn bad_and_duplicate_lines_are_reported() {
        let c = convert("web: a\nnot a process line\nweb: b\nbad name: x\nempty:\n");
        assert_eq!(c.programs, 1);
        assert_eq!(c.warnings.len(), 4, "{:?}", c.warnings);
        assert_eq!(c.warnings[0].line, 2);
        assert!(c.kdl.contains("// procfile: web: b"));
        check(&c.kdl);
        let none = convert("# nothing\n");
        assert_eq!(none.programs, 0);
        assert!(none.warnings[0].message.contains("no `name: command`"));
        // Nothing to run is not a config: loading it would stop every program.
        let e = crate::config::parse_str(&none.kdl, Path::new("/elsewhere/svc.kdl"), &|_| None).expect_err("empty");
        assert!(e.to_string().contains("has nothing but comments"), "{e}");
    }

    #[test]
    fn here_when_written_next_to_the_procfile() {
        let opts = ImportOptions::default();
        let c = procfile_to_kdl("web: x\n", Path::new("/app/Procfile"), &opts).expect("converts");
        assert!(c.kdl.contains("directory \"{here}\""), "{}", c.kdl);
    }
}
