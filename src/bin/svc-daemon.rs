//! `svc-daemon`: the daemon alone, which `svc daemon` hands over to (by exec, keeping its pid).
//!
//! Why a second binary: a supervisor's memory all day is mostly the pages of its own code,
//! and the kernel maps code around each page it touches (64 KB at a time), so the CLI's
//! code (clap, import, install, completions, the dashboards) next to the daemon's was
//! resident too. This binary links only what the daemon runs: at 1000 programs its PSS is
//! ~1 MB smaller (bench/RESULTS.md). Without it next to `svc`, `svc daemon` runs the daemon
//! itself. The daemon's probe runner (`__probe-runner`) is this binary too, since the daemon
//! starts it from its own executable.

fn main() -> std::process::ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == svc::daemon::PROBE_RUNNER_ARG) {
        return svc::daemon::probe_runner_main();
    }
    std::process::ExitCode::from(svc::cli::daemon::standalone(std::env::args_os().skip(1).collect()))
}
