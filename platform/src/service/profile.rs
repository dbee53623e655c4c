//! The login shell's profile (any OS): a block between [`BEGIN`] and [`END`] that runs
//! `svc up --quiet` when a login shell starts.
//!
//! The file is the one the login shell reads: `~/.zprofile` for zsh, fish's
//! `conf.d/svc.fish`, for bash the first of `~/.bash_profile` and `~/.bash_login` that exists
//! (bash reads only that one, not `~/.profile`), and `~/.profile` otherwise. Editing keeps
//! every byte outside the block; uninstall removes the block from every one of these files, in
//! case the login shell changed since.

use super::{Method, Plan, Status, Step, Target, existing_mode, quote, read_existing};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The block's first line.
pub const BEGIN: &str = "# >>> svc >>>";
/// The block's last line.
pub const END: &str = "# <<< svc <<<";

const SH_TEMPLATE: &str = include_str!("../../templates/profile.sh");
const FISH_TEMPLATE: &str = include_str!("../../templates/profile.fish");

/// The language of a profile file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// sh, bash, ksh, zsh: POSIX enough for `if [ -x ... ]; then ...; fi`.
    Sh,
    /// fish.
    Fish,
}

/// Every file a block may be in: `(path, flavor)`.
pub fn candidates(t: &Target) -> Vec<(PathBuf, Flavor)> {
    vec![
        (t.home.join(".profile"), Flavor::Sh),
        (t.home.join(".bash_profile"), Flavor::Sh),
        (t.home.join(".bash_login"), Flavor::Sh),
        (t.home.join(".zprofile"), Flavor::Sh),
        (t.config_home.join("fish/conf.d/svc.fish"), Flavor::Fish),
    ]
}

/// The file the login shell `t.shell` reads; `exists` tells which files exist.
pub fn choose_file(t: &Target, exists: &dyn Fn(&Path) -> bool) -> (PathBuf, Flavor) {
    let shell = t.shell.as_deref().map(|s| s.rsplit('/').next().unwrap_or(s)).unwrap_or("sh");
    match shell {
        "zsh" => (t.home.join(".zprofile"), Flavor::Sh),
        "fish" => (t.config_home.join("fish/conf.d/svc.fish"), Flavor::Fish),
        "bash" => {
            // bash's login shell reads the first of these that exists, and only that one.
            let first = [".bash_profile", ".bash_login"].iter().map(|f| t.home.join(f)).find(|p| exists(p));
            (first.unwrap_or_else(|| t.home.join(".profile")), Flavor::Sh)
        }
        _ => (t.home.join(".profile"), Flavor::Sh),
    }
}

/// svc's block for a file of `flavor`, with its final newline.
pub fn block(t: &Target, flavor: Flavor) -> String {
    let exe = super::text(&t.exe);
    match flavor {
        Flavor::Sh => {
            quote::render(SH_TEMPLATE, &[("svc", &quote::sh_word(&exe)), ("command", &quote::sh_command(&t.up_argv()))])
        }
        Flavor::Fish => quote::render(
            FISH_TEMPLATE,
            &[("svc", &quote::fish_word(&exe)), ("command", &quote::fish_command(&t.up_argv()))],
        ),
    }
}

/// Byte ranges of svc's blocks, each from the start of its [`BEGIN`] line to the end of its
/// [`END`] line. A [`BEGIN`] without an [`END`] is an error: guessing where the block ends
/// could delete the user's lines.
fn find_blocks(text: &str) -> Result<Vec<Range<usize>>, String> {
    let mut blocks = Vec::new();
    let mut start = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == BEGIN && start.is_none() {
            start = Some(pos);
        } else if bare == END
            && let Some(s) = start.take()
        {
            blocks.push(s..pos + line.len());
        }
        pos += line.len();
    }
    match start {
        Some(_) => Err(format!("'{BEGIN}' without a following '{END}': fix the file by hand")),
        None => Ok(blocks),
    }
}

/// `text` with svc's block set to `block`: an existing block is replaced in place (duplicates
/// dropped), otherwise `block` is appended. `Ok(None)` when `text` already has exactly that.
pub fn add_block(text: &str, block: &str) -> Result<Option<String>, String> {
    let blocks = find_blocks(text)?;
    let mut out = String::with_capacity(text.len() + block.len() + 1);
    match blocks.first() {
        Some(first) => {
            let mut last = 0;
            for (i, r) in blocks.iter().enumerate() {
                out.push_str(&text[last..r.start]);
                if i == 0 {
                    out.push_str(block);
                    // A block that ended the file without a newline: keep what followed it intact.
                    if !text[first.clone()].ends_with('\n') && !block.ends_with('\n') {
                        out.push('\n');
                    }
                }
                last = r.end;
            }
            out.push_str(&text[last..]);
        }
        None => {
            out.push_str(text);
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(block);
        }
    }
    Ok((out != text).then_some(out))
}

/// `text` without svc's block(s); `Ok(None)` when there is none. Every other byte is kept.
pub fn remove_block(text: &str) -> Result<Option<String>, String> {
    let blocks = find_blocks(text)?;
    if blocks.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for r in &blocks {
        out.push_str(&text[last..r.start]);
        last = r.end;
    }
    out.push_str(&text[last..]);
    Ok(Some(out))
}

/// One candidate file as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its path.
    pub path: PathBuf,
    /// Its language.
    pub flavor: Flavor,
    /// Its content, if it exists.
    pub content: Option<String>,
    /// Its permission bits, if it exists.
    pub mode: Option<u32>,
}

/// The candidate files and the one the login shell reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Every candidate file.
    pub files: Vec<File>,
    /// The login shell's file (one of `files`).
    pub chosen: PathBuf,
}

/// Reads the candidate files.
pub fn probe(t: &Target) -> Probe {
    let files: Vec<File> = candidates(t)
        .into_iter()
        .map(|(path, flavor)| File { content: read_existing(&path), mode: existing_mode(&path), path, flavor })
        .collect();
    let (chosen, _) = choose_file(t, &|p| p.exists());
    Probe { files, chosen }
}

/// The plan for installing: add (or update) the block in the login shell's file.
pub fn install(t: &Target, p: &Probe) -> Plan {
    let mut plan = Plan::new(Method::Profile, Some(p.chosen.clone()));
    for f in &p.files {
        let text = f.content.as_deref().unwrap_or("");
        if f.path == p.chosen {
            match add_block(text, &block(t, f.flavor)) {
                Ok(Some(content)) => {
                    plan.steps.push(Step::WriteFile { path: f.path.clone(), content, mode: f.mode.unwrap_or(0o644) })
                }
                Ok(None) => {}
                Err(e) => plan.problems.push(format!("{}: {e}", f.path.display())),
            }
        } else if find_blocks(text).is_ok_and(|b| !b.is_empty()) {
            plan.notes.push(format!(
                "{} also has an svc block (from an earlier install); 'svc uninstall --method profile' removes every one.",
                f.path.display()
            ));
        }
    }
    plan.notes.push("the daemon starts with your next login shell; start it now with 'svc up'.".to_owned());
    plan
}

/// The plan for uninstalling: remove the block from every candidate file; a file left empty
/// is removed (install created it).
pub fn uninstall(_t: &Target, p: &Probe) -> Plan {
    let mut plan = Plan::new(Method::Profile, Some(p.chosen.clone()));
    for f in &p.files {
        let Some(text) = &f.content else { continue };
        match remove_block(text) {
            Ok(Some(rest)) if rest.is_empty() => plan.steps.push(Step::RemoveFile { path: f.path.clone() }),
            Ok(Some(rest)) => {
                plan.steps.push(Step::WriteFile { path: f.path.clone(), content: rest, mode: f.mode.unwrap_or(0o644) })
            }
            Ok(None) => {}
            Err(e) => plan.problems.push(format!("{}: {e}", f.path.display())),
        }
    }
    plan
}

/// Which files have svc's block.
pub fn status(_t: &Target, p: &Probe) -> Status {
    let with_block: Vec<&File> = p
        .files
        .iter()
        .filter(|f| f.content.as_deref().is_some_and(|c| find_blocks(c).is_ok_and(|b| !b.is_empty())))
        .collect();
    let facts = with_block.iter().map(|f| ("file", f.path.display().to_string())).collect();
    Status { method: Method::Profile, installed: !with_block.is_empty(), location: Some(p.chosen.clone()), facts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::test_support::target;

    const EXISTING: &str = "# ~/.profile\nexport PATH=\"$HOME/bin:$PATH\"\nif [ -n \"$BASH_VERSION\" ]; then\n    . \"$HOME/.bashrc\"\nfi\n";

    #[test]
    fn sh_block_is_marked_and_quoted() {
        let b = block(&target(), Flavor::Sh);
        assert!(b.starts_with("# >>> svc >>>\n") && b.ends_with("# <<< svc <<<\n"), "{b}");
        assert!(b.contains(
            "if [ -x '/home/al ice/.cargo/bin/svc' ]; then '/home/al ice/.cargo/bin/svc' up --quiet --config '/home/al ice/Library/Application Support/svc/svc.kdl'; fi\n"
        ), "{b}");
    }

    #[test]
    fn sh_block_runs_in_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("my svc's bin");
        std::fs::write(&exe, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args\"\n").unwrap();
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let t = Target { exe, ..target() };
        let out = std::process::Command::new("sh").arg("-c").arg(block(&t, Flavor::Sh)).output().unwrap();
        assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(args, "up\n--quiet\n--config\n/home/al ice/Library/Application Support/svc/svc.kdl\n");
        // A missing binary is silently skipped.
        let gone = Target { exe: dir.path().join("gone"), ..target() };
        let out = std::process::Command::new("sh").arg("-c").arg(block(&gone, Flavor::Sh)).output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    }

    #[test]
    fn fish_block_uses_fish_syntax() {
        let b = block(&target(), Flavor::Fish);
        assert!(b.contains("if status is-login; and test -x '/home/al ice/.cargo/bin/svc'\n"), "{b}");
        assert!(b.contains("\n    '/home/al ice/.cargo/bin/svc' up --quiet --config"), "{b}");
    }

    #[test]
    fn the_file_follows_the_login_shell() {
        let mut t = target();
        let none = |_: &Path| false;
        let home = |f: &str| t.home.join(f);
        for (shell, file) in [("/bin/sh", ".profile"), ("/usr/bin/ksh", ".profile"), ("/bin/zsh", ".zprofile")] {
            t.shell = Some(shell.into());
            assert_eq!(choose_file(&t, &none), (home(file), Flavor::Sh), "{shell}");
        }
        t.shell = None;
        assert_eq!(choose_file(&t, &none).0, home(".profile"));
        t.shell = Some("/bin/bash".into());
        assert_eq!(choose_file(&t, &none).0, home(".profile"));
        let login = home(".bash_login");
        assert_eq!(choose_file(&t, &|p| p == login).0, login);
        assert_eq!(choose_file(&t, &|_| true).0, home(".bash_profile"));
        t.shell = Some("/usr/local/bin/fish".into());
        assert_eq!(choose_file(&t, &none), (t.config_home.join("fish/conf.d/svc.fish"), Flavor::Fish));
    }

    #[test]
    fn install_reinstall_uninstall_keep_other_bytes() {
        let b = block(&target(), Flavor::Sh);
        let installed = add_block(EXISTING, &b).unwrap().unwrap();
        assert_eq!(installed, format!("{EXISTING}{b}"));
        assert_eq!(add_block(&installed, &b), Ok(None), "reinstall changes nothing");
        assert_eq!(remove_block(&installed), Ok(Some(EXISTING.to_owned())));
        assert_eq!(remove_block(EXISTING), Ok(None));
        // Into an empty (new) file, and back.
        let fresh = add_block("", &b).unwrap().unwrap();
        assert_eq!(fresh, b);
        assert_eq!(remove_block(&fresh), Ok(Some(String::new())));
    }

    #[test]
    fn a_block_in_the_middle_is_updated_in_place() {
        let old = format!("{BEGIN}\nold svc line\n{END}\n");
        let text = format!("A\n{old}B\n{old}C");
        let b = block(&target(), Flavor::Sh);
        assert_eq!(add_block(&text, &b).unwrap().unwrap(), format!("A\n{b}B\nC"));
        assert_eq!(remove_block(&text).unwrap().unwrap(), "A\nB\nC");
    }

    #[test]
    fn an_unterminated_block_is_refused() {
        let text = format!("A\n{BEGIN}\nB\n");
        assert!(add_block(&text, "x").unwrap_err().contains("without a following"));
        assert!(remove_block(&text).is_err());
    }

    #[test]
    fn plans() {
        let t = target();
        let file = |path: PathBuf, content: Option<&str>| File {
            flavor: if path.ends_with("svc.fish") { Flavor::Fish } else { Flavor::Sh },
            content: content.map(String::from),
            mode: content.map(|_| 0o600),
            path,
        };
        let b = block(&t, Flavor::Sh);
        let with_block = format!("{EXISTING}{b}");
        let probe = |profile: Option<&str>, zprofile: Option<&str>| Probe {
            files: candidates(&t)
                .into_iter()
                .map(|(p, _)| {
                    let c = if p.ends_with(".profile") {
                        profile
                    } else if p.ends_with(".zprofile") {
                        zprofile
                    } else {
                        None
                    };
                    file(p, c)
                })
                .collect(),
            chosen: t.home.join(".profile"),
        };
        let plan = install(&t, &probe(Some(EXISTING), None));
        assert_eq!(
            plan.steps,
            [Step::WriteFile { path: t.home.join(".profile"), content: with_block.clone(), mode: 0o600 }]
        );
        assert!(install(&t, &probe(Some(&with_block), None)).is_empty());
        // A block left in another file by an earlier install is mentioned, and uninstall takes both.
        let both = probe(Some(&with_block), Some(&b));
        assert!(install(&t, &both).notes[0].contains(".zprofile also has an svc block"));
        assert_eq!(
            uninstall(&t, &both).steps,
            [
                Step::WriteFile { path: t.home.join(".profile"), content: EXISTING.into(), mode: 0o600 },
                Step::RemoveFile { path: t.home.join(".zprofile") },
            ]
        );
        assert!(status(&t, &both).installed);
        assert!(!status(&t, &probe(Some(EXISTING), None)).installed);
    }
}
