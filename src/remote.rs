//! Daemons on other machines, reached through the system's OpenSSH client.
//!
//! `svc -H HOST CMD` runs `ssh [opts] HOST -- svc dial-stdio` and speaks the usual protocol over
//! that process's stdin and stdout ([`connect`]); on the remote machine `svc dial-stdio` connects
//! to the daemon's socket with the same peer checks as any local client. svc opens no port and
//! keeps no credentials: ssh's own authentication (keys, agent, known_hosts, ~/.ssh/config) is
//! the only gate, which is why the system `ssh` binary is used rather than an SSH library.
//!
//! A ControlMaster with a control socket in the user's private runtime directory makes the
//! second command to a host reuse the first one's connection (no new handshake).
//!
//! Hosts are named as ssh takes them (`web1`, `deploy@web2`, `web2:2222`,
//! `ssh://deploy@web2:2222`), or as `@GROUP` from the hosts file ([`hosts_file`]).

use crate::client::{Client, ClientError, Explain, RemoteFailure};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How long an idle ssh master connection stays up after the last command (seconds).
pub const CONTROL_PERSIST_SECS: u32 = 300;

/// The longest Unix socket path every supported OS accepts (macOS and FreeBSD: 104 with the NUL).
const MAX_SOCKET_PATH: usize = 103;

/// One machine to run commands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// As the user wrote it: how messages and the HOST column name it.
    pub name: String,
    /// `user@host` or `host`, as ssh's destination.
    pub destination: String,
    /// `-p`, when given.
    pub port: Option<u16>,
    /// The svc program on that machine (default: `svc`, found on the remote PATH).
    pub remote_svc: Option<String>,
}

impl Host {
    /// Parses `user@host`, `host:port`, `user@[v6addr]:port` or `ssh://user@host:port`.
    pub fn parse(spec: &str) -> Result<Host, String> {
        let bad = |why: &str| format!("bad host `{spec}`: {why} (write user@host, host:port or ssh://user@host:port)");
        let rest = spec.strip_prefix("ssh://").unwrap_or(spec);
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(bad("it is empty"));
        }
        if rest.contains('/') || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it has a space or a slash"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u), h),
            Some(_) => return Err(bad("the user name is empty")),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or_else(|| bad("an unclosed ["))?;
            match after.strip_prefix(':') {
                Some(p) => (addr, Some(p)),
                None if after.is_empty() => (addr, None),
                None => return Err(bad("text after ]")),
            }
        } else {
            match hostport.split_once(':') {
                // A bare IPv6 address has several colons and no port.
                Some((h, p)) if !p.contains(':') => (h, Some(p)),
                _ => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host name is empty"));
        }
        // ssh would read a leading dash as an option.
        if host.starts_with('-') || user.is_some_and(|u| u.starts_with('-')) {
            return Err(bad("it starts with -"));
        }
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| bad("the port is not 1-65535"))?),
            None => None,
        };
        let destination = match user {
            Some(u) => format!("{u}@{host}"),
            None => host.to_owned(),
        };
        Ok(Host { name: spec.to_owned(), destination, port, remote_svc: None })
    }

    /// The remote svc program, `svc` unless one was given.
    pub fn remote_svc(&self) -> &str {
        self.remote_svc.as_deref().unwrap_or("svc")
    }

    /// The ssh command that runs `svc ARGS` on this host: `SVC_SSH_COMMAND` (or `ssh`), then the
    /// connection sharing options, the port, the destination and the remote command line.
    /// Options in `SVC_SSH_COMMAND` come first, and ssh takes the first value it is given, so
    /// they win (`-o ControlMaster=no` turns sharing off).
    pub fn ssh_command(&self, args: &[&str]) -> Result<Command, ClientError> {
        let base = ssh_base().map_err(|detail| self.failure(RemoteFailure::SshMissing, detail))?;
        let mut cmd = Command::new(&base[0]);
        cmd.args(&base[1..]);
        if let Some(dir) = control_dir() {
            cmd.arg("-o").arg("ControlMaster=auto");
            cmd.arg("-o").arg(format!("ControlPath={}/%C", dir.display()));
            cmd.arg("-o").arg(format!("ControlPersist={CONTROL_PERSIST_SECS}"));
        }
        if let Some(port) = self.port {
            cmd.arg("-p").arg(port.to_string());
        }
        cmd.arg("--").arg(&self.destination).arg(remote_command(self.remote_svc(), args));
        Ok(cmd)
    }

    fn failure(&self, failure: RemoteFailure, detail: String) -> ClientError {
        ClientError::Remote { host: self.name.clone(), failure, detail }
    }
}

/// The ssh program and its own arguments: `SVC_SSH_COMMAND` split as a shell would, or `ssh`.
fn ssh_base() -> Result<Vec<String>, String> {
    match std::env::var("SVC_SSH_COMMAND") {
        Ok(line) if !line.trim().is_empty() => {
            let words = shell_words::split(&line).map_err(|e| format!("SVC_SSH_COMMAND: {e}"))?;
            if words.is_empty() { Err("SVC_SSH_COMMAND is empty".into()) } else { Ok(words) }
        }
        _ => Ok(vec!["ssh".into()]),
    }
}

/// The command line the remote shell runs: each word quoted, except a leading `~/` in the
/// program's path, which the remote shell must expand to the remote home.
pub fn remote_command(program: &str, args: &[&str]) -> String {
    let program = match program.strip_prefix("~/") {
        Some(rest) => format!("~/{}", shell_words::quote(rest)),
        None => shell_words::quote(program).into_owned(),
    };
    std::iter::once(program)
        .chain(args.iter().map(|a| shell_words::quote(a).into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where ssh's control sockets live: `ssh/` in the user's private runtime directory (the one
/// the daemon's socket defaults to), created 0700; `None` (no connection sharing) if it cannot
/// be made private or its paths would be too long for a socket.
pub fn control_dir() -> Option<PathBuf> {
    let runtime = crate::paths::runtime_dir(&|k| std::env::var(k).ok());
    let dir = runtime.join("ssh");
    // %C is 40 hex digits; ssh adds a dot and 16 characters while it sets the socket up.
    if dir.as_os_str().len() + 1 + 40 + 17 > MAX_SOCKET_PATH {
        return None;
    }
    svc_platform::ensure_private_dir(&runtime).ok()?;
    svc_platform::ensure_private_dir(&dir).ok()?;
    Some(dir)
}

/// Starts the relay to `host`'s daemon: a client whose stream is `ssh HOST svc dial-stdio`.
pub fn connect(host: &Host) -> Result<Client, ClientError> {
    let cmd = host.ssh_command(&["dial-stdio"])?;
    let program = cmd.get_program().to_string_lossy().into_owned();
    Client::spawn(cmd, explain(host)).map_err(|e| spawn_error(host, &program, &e))
}

/// Why ssh could not be started.
pub fn spawn_error(host: &Host, program: &str, e: &std::io::Error) -> ClientError {
    let hint = if std::env::var_os("SVC_SSH_COMMAND").is_some() {
        "check SVC_SSH_COMMAND"
    } else {
        "install OpenSSH's client (Debian: openssh-client), or set SVC_SSH_COMMAND"
    };
    host.failure(RemoteFailure::SshMissing, format!("cannot run {program}: {e}; {hint}"))
}

/// How the relay's end is reported: the exit status and stderr of `ssh` (255 for its own
/// failures) or of the remote `svc dial-stdio` (passed through by ssh).
pub fn explain(host: &Host) -> Explain {
    let host = host.clone();
    Box::new(move |status, stderr| classify(&host, status.map(|s| (s.code(), signal_of(s))), stderr))
}

fn signal_of(s: std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&s)
}

/// The error for a relay that ended with `status` (`(code, signal)`; `None`: unknown) and
/// `stderr`; `None` for a normal end.
pub fn classify(host: &Host, status: Option<(Option<i32>, Option<i32>)>, stderr: &str) -> Option<ClientError> {
    let said = last_words(stderr);
    let with = |s: &str| if said.is_empty() { String::new() } else { format!(" ({s})") };
    let (failure, detail) = match status {
        Some((Some(0), _)) => return None,
        Some((Some(255), _)) => {
            let has = |needle: &str| stderr.contains(needle);
            if has("Permission denied") || has("Too many authentication failures") || has("no mutual signature") {
                (
                    RemoteFailure::AuthFailed,
                    format!(
                        "ssh could not log in{}; check the user name, your keys (ssh-add -l) and ~/.ssh/config",
                        with(&said)
                    ),
                )
            } else if has("Host key verification failed") || has("HOST IDENTIFICATION HAS CHANGED") {
                (
                    RemoteFailure::AuthFailed,
                    format!("ssh refused the host's key{}; connect once with ssh to check and accept it", with(&said)),
                )
            } else if has("Could not resolve")
                || has("Connection refused")
                || has("timed out")
                || has("No route to host")
                || has("Network is unreachable")
                || has("kex_exchange_identification")
                || has("Connection closed by")
                || has("Connection reset")
            {
                (RemoteFailure::Unreachable, format!("ssh could not connect{}", with(&said)))
            } else {
                (RemoteFailure::Lost, format!("ssh failed{}", with(&said)))
            }
        }
        Some((Some(127), _)) => (
            RemoteFailure::NoSvc,
            format!(
                "no svc there: `{}` was not found{}; install svc on that machine, or give its path with --remote-svc PATH \
                 (or remote-svc=\"PATH\" for this host in {}); a non-interactive ssh session may not have ~/.local/bin or \
                 ~/.cargo/bin on its PATH",
                host.remote_svc(),
                with(&said),
                hosts_file().display()
            ),
        ),
        Some((Some(126), _)) => {
            (RemoteFailure::NoSvc, format!("`{}` there cannot be run{}", host.remote_svc(), with(&said)))
        }
        Some((Some(2), _)) if stderr.contains("dial-stdio") => (
            RemoteFailure::TooOld,
            format!(
                "the svc there is too old to be used remotely (it has no dial-stdio); upgrade it to {} or later",
                env!("CARGO_PKG_VERSION")
            ),
        ),
        Some((Some(4), _)) if stderr.contains("not running") => (
            RemoteFailure::NoDaemon,
            format!("no svc daemon is running there; start it with 'svc -H {} up'", host.name),
        ),
        Some((Some(4), _)) => (RemoteFailure::NoDaemon, format!("cannot reach the daemon there{}", with(&said))),
        Some((Some(code), _)) => {
            (RemoteFailure::Lost, format!("the connection ended (exit status {code}){}", with(&said)))
        }
        Some((None, Some(sig))) => (RemoteFailure::Lost, format!("ssh was killed by signal {sig}{}", with(&said))),
        _ => (RemoteFailure::Lost, format!("the connection ended{}", with(&said))),
    };
    Some(host.failure(failure, detail))
}

/// The last meaningful line of a relay's stderr, without ssh's chatter and svc's own prefix.
fn last_words(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .map(|l| l.strip_prefix("svc: ").unwrap_or(l).to_owned())
        .unwrap_or_default()
}

/// The hosts file: `hosts.kdl` in svc's config directory (`~/.config/svc/hosts.kdl`).
pub fn hosts_file() -> PathBuf {
    crate::paths::config_dir(&|k| std::env::var(k).ok()).join("hosts.kdl")
}

/// What the hosts file says: groups of hosts, and settings of single hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsFile {
    /// `hosts "NAME" { host "SPEC" ... }`, in file order.
    pub groups: Vec<(String, Vec<Host>)>,
    /// `host "SPEC" remote-svc="PATH"` at the top level: settings for that host wherever it is
    /// named.
    pub hosts: Vec<Host>,
}

impl HostsFile {
    /// Reads `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<HostsFile, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => HostsFile::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HostsFile::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Parses the text of a hosts file (`origin` names it in errors).
    pub fn parse(text: &str, origin: &Path) -> Result<HostsFile, String> {
        let at = |offset: usize| {
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{}:{line}:{column}", origin.display())
        };
        let doc = ::kdl::KdlDocument::parse(text).map_err(|e| {
            let first = e.diagnostics.first();
            let offset = first.map_or(0, |d| d.span.offset());
            let what = first.and_then(|d| d.message.clone()).unwrap_or_else(|| e.to_string());
            format!("{}: {what}", at(offset))
        })?;
        let mut out = HostsFile::default();
        for node in doc.nodes() {
            let here = at(node.name().span().offset());
            match node.name().value() {
                "hosts" => {
                    let name = only_string(node).ok_or_else(|| {
                        format!("{here}: `hosts` takes a group name: hosts \"web\" {{ host \"web1\" }}")
                    })?;
                    if out.groups.iter().any(|(n, _)| *n == name) {
                        return Err(format!("{here}: group `{name}` is defined twice"));
                    }
                    let mut members = Vec::new();
                    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
                        let here = at(child.name().span().offset());
                        if child.name().value() != "host" {
                            return Err(format!(
                                "{here}: unknown node `{}` in a hosts group (only `host`)",
                                child.name().value()
                            ));
                        }
                        members.push(host_node(child).map_err(|e| format!("{here}: {e}"))?);
                    }
                    if members.is_empty() {
                        return Err(format!("{here}: group `{name}` has no hosts"));
                    }
                    out.groups.push((name, members));
                }
                "host" => out.hosts.push(host_node(node).map_err(|e| format!("{here}: {e}"))?),
                other => {
                    return Err(format!(
                        "{here}: unknown node `{other}` (hosts.kdl has `hosts \"GROUP\" {{ ... }}` and `host \"SPEC\"`)"
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The hosts `specs` name, in order and without repeats: `@GROUP` is the group's hosts,
    /// anything else one host; a host's settings from the file apply, and `remote_svc` (the
    /// command line's) beats them all. The flag is true when a group was named.
    pub fn resolve(&self, specs: &[String], remote_svc: Option<&str>) -> Result<(Vec<Host>, bool), String> {
        let mut out: Vec<Host> = Vec::new();
        let mut grouped = false;
        for spec in specs {
            let found = if let Some(group) = spec.strip_prefix('@') {
                grouped = true;
                let Some((_, members)) = self.groups.iter().find(|(n, _)| n == group) else {
                    let known: Vec<&str> = self.groups.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(if known.is_empty() {
                        format!(
                            "no host group `{group}`: define it in {} (hosts \"{group}\" {{ host \"web1\"; host \"deploy@web2:2222\" }})",
                            hosts_file().display()
                        )
                    } else {
                        format!("no host group `{group}` in {} (it has: {})", hosts_file().display(), known.join(", "))
                    });
                };
                members.clone()
            } else {
                vec![Host::parse(spec)?]
            };
            for mut h in found {
                if h.remote_svc.is_none() {
                    h.remote_svc = self.hosts.iter().find(|k| k.name == h.name).and_then(|k| k.remote_svc.clone());
                }
                if let Some(r) = remote_svc {
                    h.remote_svc = Some(r.to_owned());
                }
                if !out.iter().any(|o| o.name == h.name) {
                    out.push(h);
                }
            }
        }
        Ok((out, grouped))
    }
}

fn only_string(node: &::kdl::KdlNode) -> Option<String> {
    let mut args = node.entries().iter().filter(|e| e.name().is_none());
    let first = args.next()?.value().as_string()?.to_owned();
    args.next().is_none().then_some(first)
}

/// `host "SPEC" [remote-svc="PATH"]`.
fn host_node(node: &::kdl::KdlNode) -> Result<Host, String> {
    let spec = only_string(node).ok_or("`host` takes one host, as a string: host \"deploy@web2:2222\"")?;
    let mut host = Host::parse(&spec)?;
    for e in node.entries().iter() {
        let Some(key) = e.name() else { continue };
        match key.value() {
            "remote-svc" => {
                host.remote_svc = Some(e.value().as_string().ok_or("remote-svc takes a path, as a string")?.to_owned());
            }
            other => return Err(format!("unknown setting `{other}` of a host (only remote-svc)")),
        }
    }
    if node.children().is_some() {
        return Err(
            "a host takes no block; write its settings on its line: host \"web1\" remote-svc=\"/opt/svc\"".into()
        );
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_specs_parse_like_ssh_destinations() {
        let h = Host::parse("deploy@web2:2222").expect("valid");
        assert_eq!((h.destination.as_str(), h.port), ("deploy@web2", Some(2222)));
        let h = Host::parse("ssh://me@example.com:22/").expect("valid");
        assert_eq!((h.destination.as_str(), h.port), ("me@example.com", Some(22)));
        let h = Host::parse("user@[::1]:2200").expect("valid");
        assert_eq!((h.destination.as_str(), h.port), ("user@::1", Some(2200)));
        let h = Host::parse("fe80::1").expect("valid");
        assert_eq!((h.destination.as_str(), h.port), ("fe80::1", None));
        assert_eq!(Host::parse("web1").expect("valid").name, "web1");
        for bad in ["", "-oProxyCommand=x", "a b", "@host", "host:0", "host:99999", "ssh://h/path", "u@-x"] {
            assert!(Host::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn remote_commands_are_quoted_for_the_remote_shell() {
        assert_eq!(remote_command("svc", &["dial-stdio"]), "svc dial-stdio");
        assert_eq!(remote_command("/opt/my svc/svc", &["up", "--quiet"]), "'/opt/my svc/svc' up --quiet");
        assert_eq!(remote_command("~/.cargo/bin/svc", &["x;y"]), "~/.cargo/bin/svc 'x;y'");
    }

    #[test]
    fn hosts_file_groups_and_settings() {
        let f = HostsFile::parse(
            "hosts \"web\" {\n  host \"web1\"\n  host \"deploy@web2:2222\" remote-svc=\"/opt/svc\"\n}\nhost \"web1\" remote-svc=\"~/bin/svc\"\n",
            Path::new("hosts.kdl"),
        )
        .expect("valid");
        let (hosts, grouped) = f.resolve(&["@web".into(), "web1".into(), "db".into()], None).expect("resolves");
        assert!(grouped);
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["web1", "deploy@web2:2222", "db"]);
        assert_eq!(hosts[0].remote_svc.as_deref(), Some("~/bin/svc"));
        assert_eq!(hosts[1].remote_svc.as_deref(), Some("/opt/svc"));
        let (hosts, _) = f.resolve(&["@web".into()], Some("/x/svc")).expect("resolves");
        assert!(hosts.iter().all(|h| h.remote_svc.as_deref() == Some("/x/svc")));
        assert!(f.resolve(&["@nope".into()], None).unwrap_err().contains("it has: web"));
        let err = HostsFile::parse("hosts \"a\" {\n  hots \"x\"\n}\n", Path::new("h.kdl")).unwrap_err();
        assert!(err.starts_with("h.kdl:2:3: unknown node `hots`"), "{err}");
    }

    #[test]
    fn failures_say_what_happened() {
        let h = Host::parse("web1").expect("valid");
        let kind = |code, stderr: &str| match classify(&h, Some((Some(code), None)), stderr) {
            Some(ClientError::Remote { failure, .. }) => Some(failure),
            _ => None,
        };
        assert_eq!(kind(0, ""), None);
        assert_eq!(kind(255, "me@web1: Permission denied (publickey).\n"), Some(RemoteFailure::AuthFailed));
        assert_eq!(
            kind(255, "ssh: connect to host web1 port 22: Connection refused\n"),
            Some(RemoteFailure::Unreachable)
        );
        assert_eq!(kind(127, "sh: 1: svc: not found\n"), Some(RemoteFailure::NoSvc));
        assert_eq!(
            kind(4, "svc: svc daemon is not running (no answer on /x); start it with 'svc up'\n"),
            Some(RemoteFailure::NoDaemon)
        );
        assert_eq!(kind(2, "error: unrecognized subcommand 'dial-stdio'\n"), Some(RemoteFailure::TooOld));
    }
}
