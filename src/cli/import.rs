//! `svc import supervisord|procfile|compose FILE [-o OUT] [--force]`: convert another supervisor's
//! configuration into svc's KDL (see `config::import`).
//!
//! The KDL goes to stdout or to `-o OUT`; warnings (what could not be converted) go to
//! stderr, one `file:line: message` each. The result is checked with svc's own parser before
//! it is written, so a conversion that `svc check` would reject is reported at once.

use super::{FAILURE, SUCCESS, USAGE};
use crate::config::import::{self, Conversion, ImportError, ImportOptions};
use std::io::{IsTerminal, Write};
use std::path::Path;

/// The formats `svc import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// supervisord.conf (INI).
    Supervisord,
    /// A Procfile (foreman, honcho, overmind).
    Procfile,
    /// A process-compose.yaml.
    Compose,
}

/// Converts `file` and writes the KDL to `output` (refusing to replace an existing file
/// unless `force`) or to stdout. Returns the exit code.
pub fn import(format: Format, file: &Path, output: Option<&Path>, force: bool) -> u8 {
    if let Some(out) = output
        && !force
        && out.exists()
    {
        eprintln!("svc: {} exists; add --force to replace it", out.display());
        return USAGE;
    }
    let opts = ImportOptions {
        output_dir: output
            .map(|o| std::path::absolute(o).unwrap_or_else(|_| o.to_owned()))
            .and_then(|o| o.parent().map(Path::to_owned)),
        host_node_name: host_name(),
        env: None,
    };
    let result: Result<Conversion, ImportError> = match format {
        Format::Supervisord => import::supervisord_file(file, &opts),
        Format::Procfile => import::procfile_file(file, &opts),
        Format::Compose => import::compose_file(file, &opts),
    };
    let conv = match result {
        Ok(c) => c,
        Err(e) => {
            eprintln!("svc: {e}");
            return FAILURE;
        }
    };
    for w in &conv.warnings {
        eprintln!("svc: warning: {w}");
    }
    // Checked as it will be loaded: `{here}` and relative paths against the output's place,
    // variables from this environment, as `svc check` run here would. Unset variables were
    // each reported once above, so the errors they cause are not repeated per use.
    let origin = match output {
        Some(o) => std::path::absolute(o).unwrap_or_else(|_| o.to_owned()),
        None => std::path::absolute(file).unwrap_or_else(|_| file.to_owned()).with_file_name("svc.kdl"),
    };
    let mut code = SUCCESS;
    let mut warnings = conv.warnings.len();
    match crate::config::parse_str(&conv.kdl, &origin, &|k| std::env::var(k).ok()) {
        Ok(config) => {
            for w in super::config::log_path_warnings(&config) {
                eprintln!("svc: warning: {w}");
                warnings += 1;
            }
        }
        Err(e) => {
            let placeholder = |k: &str| Some(std::env::var(k).unwrap_or_else(|_| "x".into()));
            match crate::config::parse_str(&conv.kdl, &origin, &placeholder) {
                Ok(_) if !conv.unset_vars.is_empty() => eprintln!(
                    "svc: `svc check` refuses the converted configuration until {} {} set",
                    conv.unset_vars.join(", "),
                    if conv.unset_vars.len() == 1 { "is" } else { "are" }
                ),
                Ok(_) => report_check(&e),
                Err(e) => report_check(&e),
            }
            code = FAILURE;
        }
    }
    match output {
        None => {
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(conv.kdl.as_bytes()).and_then(|()| stdout.flush()).is_err() {
                return FAILURE;
            }
        }
        Some(out) => {
            if let Err(e) = write_output(out, &conv.kdl, force) {
                eprintln!("svc: cannot write {}: {e}", out.display());
                return FAILURE;
            }
            let n = conv.programs;
            eprintln!(
                "svc: wrote {} ({n} program{}, {warnings} warning{}); check it with: svc check {}",
                out.display(),
                if n == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" },
                out.display()
            );
        }
    }
    code
}

fn report_check(e: &crate::config::ConfigError) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    eprintln!("svc: the converted configuration does not pass `svc check`; fix these by hand:");
    eprint!("{}", e.render(color));
}

/// Writes the file; without `force`, `create_new` makes "refuse to overwrite" race-free.
fn write_output(out: &Path, text: &str, force: bool) -> std::io::Result<()> {
    let mut f = if force {
        std::fs::File::create(out)?
    } else {
        std::fs::OpenOptions::new().write(true).create_new(true).open(out)?
    };
    f.write_all(text.as_bytes())
}

/// This machine's name, for supervisord's `%(host_node_name)s`.
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, and gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec()).ok().filter(|s| !s.is_empty())
}
