//! `svc check`'s verdict on a config, as the daemon sends it: the programs, every error, and
//! the problems that are not errors (log files the daemon will not be able to write, found
//! before anything runs: the program would start and its output would be lost).

use super::{Config, ConfigError, LogPath};
use crate::protocol::{CheckReport, ProgramSummary};
use std::path::{Path, PathBuf};

/// A log file the daemon will not be able to write, found before anything runs: the program
/// would start and its output would be lost.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogPathWarning {
    /// The process that writes the file.
    pub program: String,
    /// The log file.
    pub path: PathBuf,
    /// Why it can't be written.
    pub message: String,
}

impl std::fmt::Display for LogPathWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` logs to {}: {}", self.program, self.path.display(), self.message)
    }
}

/// The report on `file` (or a text standing in for it) that loaded as `result`.
pub fn report(file: &Path, result: &Result<Config, ConfigError>, color: bool) -> CheckReport {
    match result {
        Ok(config) => CheckReport {
            ok: true,
            file: file.display().to_string(),
            programs: config
                .programs
                .iter()
                .map(|p| ProgramSummary {
                    name: p.name.clone(),
                    group: p.group.clone(),
                    autostart: p.autostart,
                    priority: p.priority,
                })
                .collect(),
            files: config.files.len(),
            errors: Vec::new(),
            rendered: String::new(),
            warnings: log_path_warnings(config),
        },
        Err(e) => CheckReport {
            ok: false,
            file: file.display().to_string(),
            programs: Vec::new(),
            files: 0,
            errors: e.items(),
            rendered: e.render(color),
            warnings: Vec::new(),
        },
    }
}

/// Log files of `config` that exist but can't be written, or whose directory is missing and
/// can't be created by this user (the daemon creates a missing directory where it can). One
/// warning per file, for its first writer.
pub fn log_path_warnings(config: &Config) -> Vec<LogPathWarning> {
    let mut out: Vec<LogPathWarning> = Vec::new();
    for p in &config.programs {
        let streams = if p.redirect_stderr { vec![&p.stdout_log] } else { vec![&p.stdout_log, &p.stderr_log] };
        for log in streams {
            let LogPath::File(path) = &log.path else { continue };
            // The daemon's own stdout/stderr and devices are not files it creates.
            if path.starts_with("/dev") || path.starts_with("/proc") || out.iter().any(|w| w.path == *path) {
                continue;
            }
            if let Some(message) = log_path_problem(path) {
                out.push(LogPathWarning { program: p.name.clone(), path: path.clone(), message });
            }
        }
    }
    out
}

fn access(path: &Path, mode: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: a valid NUL-terminated string; access() only reads it.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

/// Why this user could not write `path`, if it can't.
fn log_path_problem(path: &Path) -> Option<String> {
    if let Ok(m) = std::fs::metadata(path) {
        return if m.is_dir() {
            Some("it is a directory".into())
        } else if !access(path, libc::W_OK) {
            Some("the file is not writable".into())
        } else {
            None
        };
    }
    let dir = path.parent()?;
    let mut existing = dir;
    while std::fs::metadata(existing).is_err() {
        existing = existing.parent()?;
    }
    if !existing.is_dir() {
        return Some(format!("{} is not a directory", existing.display()));
    }
    if access(existing, libc::W_OK | libc::X_OK) {
        return None;
    }
    Some(if existing == dir {
        format!("directory {} is not writable", dir.display())
    } else {
        format!(
            "directory {} does not exist and can't be created: {} is not writable",
            dir.display(),
            existing.display()
        )
    })
}
