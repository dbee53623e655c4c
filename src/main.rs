//! `svc`: the one binary. Argument definitions and dispatch only; every command lives in
//! `svc::cli`.

use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use svc::cli::{self, Global};

/// A rootless, per-user process supervisor.
///
/// svc runs your programs, restarts them when they crash, and keeps their output in rotating
/// log files. One daemon per user, controlled from any of your shells; no root needed.
#[derive(Parser)]
#[command(name = "svc", version, after_help = EXAMPLES)]
struct Cli {
    /// Config file (default: $XDG_CONFIG_HOME/svc/svc.kdl; see 'svc paths').
    #[arg(long, global = true, env = "SVC_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Control socket of the daemon (default: see 'svc paths').
    #[arg(long, global = true, env = "SVC_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Run the command on another machine's daemon, through ssh: user@host, host:port,
    /// ssh://user@host:port, or @GROUP from ~/.config/svc/hosts.kdl; repeat for several.
    #[arg(
        short = 'H',
        long = "host",
        global = true,
        env = "SVC_HOST",
        value_name = "HOST",
        value_delimiter = ',',
        action = clap::ArgAction::Append
    )]
    hosts: Vec<String>,
    /// The svc program on the remote machines (default: svc, on the remote PATH).
    #[arg(long, global = true, env = "SVC_REMOTE_SVC", value_name = "PATH")]
    remote_svc: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

const EXAMPLES: &str = "\
Examples:
  svc up                  start the daemon in the background
  svc status              what is running
  svc restart web         restart one program
  svc logs -f web         follow its output
  svc shutdown            stop everything and the daemon
  svc -H deploy@web1 status          the same on another machine, through ssh
  svc -H @web restart api            on every host of a group (~/.config/svc/hosts.kdl)";

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (what systemd and launchd run).
    #[command(after_help = "Example:\n  svc daemon --config ./svc.kdl")]
    Daemon,
    /// Start the daemon in the background unless it is running; return once it answers.
    #[command(after_help = "Example:\n  svc up --quiet   # from a login script or cron @reboot")]
    Up {
        /// Print nothing on success.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Stop every program (highest priority number first), then the daemon.
    #[command(after_help = "Example:\n  svc shutdown")]
    Shutdown,
    /// Print this svc's version and the running daemon's (they should match).
    #[command(after_help = "Example:\n  svc version --json")]
    Version {
        /// Print JSON: {"client": ..., "daemon": ... or null}.
        #[arg(long)]
        json: bool,
    },
    /// Show the state of programs (all by default).
    #[command(
        visible_aliases = ["list", "ls", "ps"],
        after_help = "Examples:\n  svc status\n  svc status web 'workers:*'\n  svc status --json | jq '.[].state'\n  svc status --json -r | jq '.[] | {name, cpu_seconds, memory_bytes}'\n\nExit status: 0 if every listed program is RUNNING, 3 if any is not."
    )]
    Status {
        /// Program names, GROUP:*, or all.
        targets: Vec<String>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Show CPU and memory use (the default on a terminal): the table's CPU is a percentage
        /// of one core over 0.4 s, so it takes that long; --json gives cumulative CPU seconds and
        /// bytes at once.
        #[arg(short = 'r', long, overrides_with = "no_resources")]
        resources: bool,
        /// Leave out CPU and memory use, even on a terminal: answers at once.
        #[arg(long, overrides_with = "resources")]
        no_resources: bool,
    },
    /// Start programs (and what they depend on); wait until they are ready (or failed).
    #[command(
        after_help = "Examples:\n  svc start web\n  svc start 'workers:*'\n  svc start all\n  svc start --no-wait web"
    )]
    Start {
        /// Program names, GROUP:*, or all.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
        /// Return once the start is under way instead of waiting for readiness.
        #[arg(long)]
        no_wait: bool,
    },
    /// Stop programs and wait until they are stopped.
    #[command(after_help = "Examples:\n  svc stop web\n  svc stop all")]
    Stop {
        /// Program names, GROUP:*, or all.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop then start programs (dependents too), waiting until they are ready again.
    #[command(after_help = "Examples:\n  svc restart web\n  svc restart all\n  svc restart --no-wait db")]
    Restart {
        /// Program names, GROUP:*, or all.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
        /// Return once the restart is under way instead of waiting for readiness.
        #[arg(long)]
        no_wait: bool,
    },
    /// Re-read the config: start added programs, stop removed ones, restart changed ones.
    ///
    /// Programs whose definition did not change keep running untouched; a changed `access`
    /// block is applied too; a config with errors changes nothing. SIGHUP to the daemon does
    /// the same.
    #[command(after_help = "Examples:\n  svc reload --dry-run\n  svc reload")]
    Reload {
        /// Print what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan and results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a signal to running programs.
    #[command(after_help = "Examples:\n  svc signal HUP web\n  svc signal USR1 'workers:*'")]
    Signal {
        /// Signal name (HUP, SIGUSR1) or number.
        signal: String,
        /// Program names, GROUP:*, or all.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the daemon's pid, or the pids of programs (0 when not running).
    #[command(after_help = "Examples:\n  svc pid\n  svc pid web")]
    Pid {
        /// Program names, GROUP:*, or all.
        targets: Vec<String>,
        /// Print JSON: the daemon's pid, or {name: pid-or-null}.
        #[arg(long)]
        json: bool,
    },
    /// List the programs of the config file, including those not started or not loaded yet.
    #[command(after_help = "Example:\n  svc avail")]
    Avail {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Empty the log files of programs (and remove their rotated backups).
    #[command(after_help = "Examples:\n  svc clear web\n  svc clear all")]
    Clear {
        /// Program names, GROUP:*, or all.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the last lines of programs' output (stdout and stderr); -f to follow.
    ///
    /// Both streams by default, stderr lines marked `err|`: in time order for programs with
    /// log-timestamps, otherwise stdout's last lines then stderr's. No target means every program;
    /// with several, each line is prefixed with its program's name. `svc logs svc` (or --daemon)
    /// shows the daemon's own log, unless a program is called svc.
    #[command(
        visible_alias = "tail",
        after_help = "Examples:\n  svc logs web\n  svc logs -n 100 --stderr web\n  svc logs -f             # every program\n  svc logs --daemon       # the daemon's own log (also: svc logs svc)\n  svc logs --since 10m web   # needs log-timestamps #true\n  svc logs --clear web"
    )]
    Logs {
        /// Program names, GROUP:*, or all (the default).
        targets: Vec<String>,
        /// Empty the programs' logs instead of showing them.
        #[arg(long, conflicts_with_all = ["follow", "stdout", "stderr", "since", "daemon"])]
        clear: bool,
        /// Show stdout only.
        #[arg(long)]
        stdout: bool,
        /// Show stderr only.
        #[arg(long)]
        stderr: bool,
        /// Show the daemon's own log (as `svc logs svc` does when no program is called svc).
        #[arg(long)]
        daemon: bool,
        /// How many lines to show first, of each stream (default 10, or all within --since).
        #[arg(short = 'n', long, value_name = "LINES")]
        lines: Option<usize>,
        /// Keep printing new output until interrupted (or until the reader of the output goes).
        #[arg(short, long)]
        follow: bool,
        /// Only lines from this long ago (10m, 2h) or since this time (RFC 3339); needs the
        /// programs' log-timestamps option (refused without it).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
    /// Print what happens to programs as it happens, until interrupted.
    ///
    /// First the state of every selected program, then one line per change (state, exit,
    /// readiness, health, reload, shutdown), in the order the daemon applied them. Ends when the
    /// reader of the output goes away, or with a message when the daemon does.
    #[command(
        after_help = "Examples:\n  svc events\n  svc events web 'workers:*'\n  svc events --json | jq -c 'select(.to == \"FATAL\")'"
    )]
    Events {
        /// Program names, GROUP:*, or all (the default).
        targets: Vec<String>,
        /// Print the daemon's JSON lines (snapshot, event, lagged) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Serve a dashboard of the programs in your browser, on 127.0.0.1 behind a one-time link.
    ///
    /// Prints a link with a fresh token; opening it gives that browser a session (the link then
    /// stops working). The page shows the programs live, follows their logs, and offers start,
    /// stop, restart, signal and reload: what the daemon lets you do, nothing more. Runs until
    /// interrupted; the daemon does not change when no one uses it. See docs/web.md.
    #[command(after_help = "Examples:
  svc web
  svc web --open
  svc web --listen 127.0.0.1:8080   # a fixed port, for ssh -L 8080:127.0.0.1:8080 HOST")]
    Web {
        /// Address and port to listen on (default 127.0.0.1 and a free port).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
        /// Allow a --listen address other machines can reach (prefer ssh -L).
        #[arg(long)]
        allow_remote: bool,
        /// Open the link in a browser (xdg-open, or open on macOS).
        #[arg(long)]
        open: bool,
    },
    /// A full-screen live view: programs with CPU and memory, the selected one's log, keys to act.
    ///
    /// Follows the daemon's event stream, so changes show as they happen; press ? for the keys.
    /// Ends with q or Ctrl-C, or with a message when the daemon goes away.
    #[command(visible_alias = "dashboard", after_help = "Examples:\n  svc top\n  svc top 'workers:*'")]
    Top {
        /// Program names, GROUP:*, or all (the default).
        targets: Vec<String>,
    },
    /// Convert a supervisord.conf, a Procfile or a process-compose.yaml into svc's KDL.
    #[command(
        subcommand,
        after_help = "Examples:\n  svc import supervisord /etc/supervisord.conf -o ~/.config/svc/svc.kdl\n  svc import procfile Procfile > svc.kdl\n  svc import compose process-compose.yaml -o svc.kdl"
    )]
    Import(ImportCommand),
    /// Write a commented starter config at the config path (never over an existing file).
    #[command(after_help = "Example:\n  svc init && svc up && svc status")]
    Init,
    /// Edit the config in $VISUAL/$EDITOR; check it; save and reload only if it is valid.
    #[command(after_help = "Examples:\n  svc edit\n  EDITOR=nano svc edit")]
    Edit,
    /// Print a shell completion script (program names complete too, in bash and fish).
    #[command(
        after_help = "Examples:\n  svc completions bash > ~/.local/share/bash-completion/completions/svc\n  svc completions zsh > ~/.zfunc/_svc\n  svc completions fish > ~/.config/fish/completions/svc.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the svc(1) man page (roff).
    #[command(after_help = "Example:\n  svc man | man -l -")]
    Man,
    /// Program names, one per line (used by shell completion).
    #[command(name = "__names", hide = true)]
    Names,
    /// Plumbing for `svc -H`: relay stdin and stdout to this user's daemon (what `ssh HOST svc
    /// dial-stdio` runs; see docs/remote.md).
    #[command(name = "dial-stdio", hide = true)]
    DialStdio,
    /// Check a config file (default: the running daemon's, else the one svc up would load).
    #[command(after_help = "Examples:\n  svc check\n  svc check ./new.kdl")]
    Check {
        /// The file to check.
        file: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print where svc keeps its config, state, logs and socket.
    #[command(after_help = "Example:\n  svc paths --json")]
    Paths {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make the daemon start with your session: systemd, launchd, cron or login profile.
    #[command(
        after_help = "Examples:\n  svc install --dry-run          # show what would be written and run\n  svc install\n  svc install --method profile\n  svc install --status\n\nMethods: systemd (Linux with a user manager), launchd (macOS), cron (@reboot; illumos: every 5 minutes),\nprofile (your login shell's profile). The default is the best one this system offers."
    )]
    Install {
        /// systemd, launchd, cron or profile (default: the best one here; see --status).
        #[arg(long, value_name = "METHOD")]
        method: Option<String>,
        /// Print every file that would be written and every command that would run; change nothing.
        #[arg(long, conflicts_with = "status")]
        dry_run: bool,
        /// Report what is installed, with which method, instead of installing.
        #[arg(long)]
        status: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove what 'svc install' added, and stop the unit or agent it started.
    #[command(
        after_help = "Examples:\n  svc uninstall --dry-run\n  svc uninstall                  # every method\n  svc uninstall --method cron"
    )]
    Uninstall {
        /// Only this method (default: whatever any method installed).
        #[arg(long, value_name = "METHOD")]
        method: Option<String>,
        /// Print what would be removed and run; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Convert a supervisord configuration (and the files its [include] names).
    #[command(
        after_help = "Example:\n  svc import supervisord /etc/supervisor/supervisord.conf -o ~/.config/svc/svc.kdl"
    )]
    Supervisord(ImportArgs),
    /// Convert a Procfile (foreman, honcho, overmind): each `name: command` line.
    #[command(after_help = "Example:\n  svc import procfile Procfile -o svc.kdl && svc check svc.kdl")]
    Procfile(ImportArgs),
    /// Convert a process-compose.yaml: processes, depends_on, probes, availability.
    #[command(after_help = "Example:\n  svc import compose process-compose.yaml -o svc.kdl && svc check svc.kdl")]
    Compose(ImportArgs),
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The file to convert.
    file: PathBuf,
    /// Write the KDL to this file instead of stdout.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    // The daemon's helper that runs exec checks (see probe::runner), not a user command.
    if std::env::args_os().nth(1).is_some_and(|a| a == svc::daemon::PROBE_RUNNER_ARG) {
        return svc::daemon::probe_runner_main();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { cli::USAGE } else { cli::SUCCESS });
        }
    };
    if !matches!(cli.command, Some(Command::Daemon)) {
        // Like other Unix tools, `svc status | head` should end quietly when the reader goes
        // away. The daemon keeps Rust's default (SIGPIPE ignored): a client hanging up must
        // not kill it.
        cli::default_sigpipe();
    }
    // Absolute, so that the daemon reports (and every later command compares) the same path
    // whatever directory they run in.
    let config = cli.config.map(|c| std::path::absolute(&c).unwrap_or(c));
    let mut global = Global { config, socket: cli.socket, hosts: Vec::new(), fleet: false };
    if !cli.hosts.is_empty() && !matches!(cli.command, Some(Command::DialStdio)) {
        let resolved = svc::remote::HostsFile::load(&svc::remote::hosts_file())
            .and_then(|f| f.resolve(&cli.hosts, cli.remote_svc.as_deref()));
        match resolved {
            Ok((hosts, grouped)) => {
                global.fleet = grouped || hosts.len() > 1;
                global.hosts = hosts;
                // They name this machine's files; the remote daemon has its own.
                global.config = None;
                global.socket = None;
            }
            Err(e) => {
                eprintln!("svc: {e}");
                return ExitCode::from(cli::USAGE);
            }
        }
    }
    // Every command with --json answers in JSON on stdout, errors included (scripts parse
    // stdout; text on stderr with an empty stdout broke `jq`).
    cli::json_errors(std::env::args().take_while(|a| a != "--").any(|a| a == "--json"));
    if !global.hosts.is_empty()
        && let Some(code) = elsewhere(&global, cli.command.as_ref())
    {
        return ExitCode::from(code);
    }
    let code = match cli.command {
        None => cli::overview(),
        Some(Command::Daemon) => cli::daemon::daemon(&global),
        Some(Command::Up { quiet }) => cli::daemon::up(&global, quiet),
        Some(Command::Shutdown) => cli::daemon::shutdown(&global),
        Some(Command::Version { json }) => cli::daemon::version(&global, json),
        Some(Command::Status { targets, json, resources, no_resources }) => {
            let resources = if resources {
                Some(true)
            } else if no_resources {
                Some(false)
            } else {
                None
            };
            cli::status::status(&global, targets, json, resources)
        }
        Some(Command::Start { targets, json, no_wait }) => {
            cli::control::control(&global, cli::control::Verb::Start, targets, json, no_wait)
        }
        Some(Command::Stop { targets, json }) => {
            cli::control::control(&global, cli::control::Verb::Stop, targets, json, false)
        }
        Some(Command::Restart { targets, json, no_wait }) => {
            cli::control::control(&global, cli::control::Verb::Restart, targets, json, no_wait)
        }
        Some(Command::Reload { dry_run, json }) => cli::config::reload(&global, dry_run, json),
        Some(Command::Signal { signal, targets, json }) => cli::control::signal(&global, signal, targets, json),
        Some(Command::Pid { targets, json }) => cli::status::pid(&global, targets, json),
        Some(Command::Avail { json }) => cli::status::avail(&global, json),
        Some(Command::Clear { targets, json }) => cli::logs::clear(&global, targets, json),
        Some(Command::Logs { targets, clear: true, .. }) if targets.is_empty() => {
            eprintln!("svc: logs --clear needs the programs to clear (or all)");
            cli::USAGE
        }
        Some(Command::Logs { targets, clear: true, .. }) => cli::logs::clear(&global, targets, false),
        Some(Command::Logs { targets, stdout, stderr, daemon, lines, follow, since, .. }) => {
            cli::logs::logs(&global, cli::logs::LogsArgs { targets, stdout, stderr, daemon, lines, follow, since })
        }
        Some(Command::Events { targets, json }) => cli::events::events(&global, targets, json),
        Some(Command::Web { listen, allow_remote, open }) => {
            cli::web::web(&global, cli::web::WebArgs { listen, allow_remote, open })
        }
        Some(Command::Top { targets }) => cli::top::top(&global, targets),
        Some(Command::Import(sub)) => {
            let (format, a) = match sub {
                ImportCommand::Supervisord(a) => (cli::import::Format::Supervisord, a),
                ImportCommand::Procfile(a) => (cli::import::Format::Procfile, a),
                ImportCommand::Compose(a) => (cli::import::Format::Compose, a),
            };
            cli::import::import(format, &a.file, a.output.as_deref(), a.force)
        }
        Some(Command::Init) => cli::config::init(&global),
        Some(Command::Edit) => cli::config::edit(&global),
        Some(Command::Completions { shell }) => cli::completions::completions(Cli::command(), shell),
        Some(Command::Man) => cli::completions::man(Cli::command()),
        Some(Command::Names) => cli::completions::names(&global),
        Some(Command::Check { file, json }) => cli::config::check(&global, file, json),
        Some(Command::Install { method, dry_run, status, json }) => {
            cli::install::install(&global, cli::install::InstallArgs { method, dry_run, json, status })
        }
        Some(Command::Uninstall { method, dry_run, json }) => {
            cli::install::uninstall(&global, cli::install::UninstallArgs { method, dry_run, json })
        }
        Some(Command::Paths { json }) => cli::config::paths(&global, json),
        Some(Command::DialStdio) => cli::remote::dial_stdio(&global),
    };
    ExitCode::from(code)
}

/// A command on several hosts: each host's part is `svc -H HOST` with the arguments built here
/// (the same command for one host); the commands without a fleet form are refused.
fn fleet(global: &Global, command: &Command) -> u8 {
    use cli::fleet::Merge;
    let mut args: Vec<String> = Vec::new();
    let mut push = |a: &str| args.push(a.to_owned());
    let (merge, json) = match command {
        Command::Status { targets, json, .. } => {
            push("status");
            targets.iter().for_each(|t| push(t));
            if *json {
                push("--json");
            }
            (Merge::Table, *json)
        }
        Command::Start { targets, json, no_wait } | Command::Restart { targets, json, no_wait } => {
            push(if matches!(command, Command::Start { .. }) { "start" } else { "restart" });
            if *no_wait {
                push("--no-wait");
            }
            if *json {
                push("--json");
            }
            push("--");
            targets.iter().for_each(|t| push(t));
            (Merge::Lines, *json)
        }
        Command::Stop { targets, json } => {
            push("stop");
            if *json {
                push("--json");
            }
            push("--");
            targets.iter().for_each(|t| push(t));
            (Merge::Lines, *json)
        }
        Command::Signal { signal, targets, json } => {
            push("signal");
            if *json {
                push("--json");
            }
            push("--");
            push(signal);
            targets.iter().for_each(|t| push(t));
            (Merge::Lines, *json)
        }
        Command::Version { json } => {
            push("version");
            if *json {
                push("--json");
            }
            (Merge::Lines, *json)
        }
        Command::Logs { targets, clear: false, stdout, stderr, daemon, lines, follow, since } => {
            push("logs");
            for (on, flag) in
                [(*stdout, "--stdout"), (*stderr, "--stderr"), (*daemon, "--daemon"), (*follow, "--follow")]
            {
                if on {
                    push(flag);
                }
            }
            if let Some(n) = lines {
                push(&format!("--lines={n}"));
            }
            if let Some(since) = since {
                push(&format!("--since={since}"));
            }
            push("--");
            targets.iter().for_each(|t| push(t));
            (if *follow { Merge::Stream } else { Merge::Lines }, false)
        }
        Command::Events { targets, json } => {
            push("events");
            if *json {
                push("--json");
            }
            push("--");
            targets.iter().for_each(|t| push(t));
            (Merge::Stream, *json)
        }
        _ => {
            return cli::fail(
                "usage",
                "this command runs on one host at a time; the ones that take several hosts (-H a -H b, -H @group) \
                 are status, start, stop, restart, signal, logs, events and version",
                None,
                cli::USAGE,
            );
        }
    };
    cli::fleet::run(global, &args, merge, json)
}

/// With `-H`: the commands that run differently on other machines. Several hosts: the fleet
/// versions, or a refusal for what works on one host at a time. One host: the commands that act
/// on that machine itself (starting its daemon, its login integration) run there whole through
/// ssh. `None`: the command runs as usual, talking to the daemon of `global.host()`.
fn elsewhere(global: &Global, command: Option<&Command>) -> Option<u8> {
    let command = command?;
    if global.fleet {
        return Some(fleet(global, command));
    }
    let flag = |on: bool, name: &'static str| on.then_some(name);
    let there = |args: Vec<&str>| Some(cli::remote::run_there(global, &args));
    match command {
        Command::Up { quiet } => there([Some("up"), flag(*quiet, "--quiet")].into_iter().flatten().collect()),
        Command::Init => there(vec!["init"]),
        Command::Install { method, dry_run, status, json } => {
            let mut args = vec!["install"];
            if let Some(m) = method {
                args.extend(["--method", m.as_str()]);
            }
            args.extend(
                [flag(*dry_run, "--dry-run"), flag(*status, "--status"), flag(*json, "--json")].into_iter().flatten(),
            );
            there(args)
        }
        Command::Uninstall { method, dry_run, json } => {
            let mut args = vec!["uninstall"];
            if let Some(m) = method {
                args.extend(["--method", m.as_str()]);
            }
            args.extend([flag(*dry_run, "--dry-run"), flag(*json, "--json")].into_iter().flatten());
            there(args)
        }
        Command::Daemon => Some(cli::fail(
            "usage",
            "svc daemon runs the daemon of this machine; on another one: svc -H HOST up",
            None,
            cli::USAGE,
        )),
        _ => None,
    }
}
