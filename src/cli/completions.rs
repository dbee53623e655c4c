//! `svc completions SHELL` and `svc man`: generated from the same clap definitions as `--help`.

use super::{FAILURE, Global, SUCCESS, block_on};
use crate::protocol::{Request, Response};
use clap_complete::Shell;

/// Extra bash code: complete program names (and `all`) where a command takes targets, by
/// asking the running daemon.
const BASH_DYNAMIC: &str = r#"
_svc_with_programs() {
    _svc "$@"
    local cur="${COMP_WORDS[COMP_CWORD]}" sub="" w
    for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case "$w" in -*) ;; *) sub="$w"; break ;; esac
    done
    case "$sub" in
        start|stop|restart|status|logs|signal|pid|clear)
            if [[ "$cur" != -* ]]; then
                COMPREPLY+=( $(compgen -W "all $(svc __names 2>/dev/null)" -- "$cur") )
            fi ;;
    esac
}
complete -F _svc_with_programs -o bashdefault -o default svc
"#;

/// Extra fish code, same purpose.
const FISH_DYNAMIC: &str = r#"
complete -c svc -n '__fish_seen_subcommand_from start stop restart status logs signal pid clear' -f -a 'all (svc __names 2>/dev/null)'
"#;

/// Prints the completion script for `shell`.
pub fn completions(mut cmd: clap::Command, shell: Shell) -> u8 {
    let mut out = std::io::stdout();
    clap_complete::generate(shell, &mut cmd, "svc", &mut out);
    match shell {
        Shell::Bash => print!("{BASH_DYNAMIC}"),
        Shell::Fish => print!("{FISH_DYNAMIC}"),
        _ => {}
    }
    SUCCESS
}

/// Prints the man page (roff) for svc(1).
pub fn man(cmd: clap::Command) -> u8 {
    let mut out = std::io::stdout();
    match clap_mangen::Man::new(cmd).render(&mut out) {
        Ok(()) => SUCCESS,
        Err(e) => {
            eprintln!("svc: {e}");
            FAILURE
        }
    }
}

/// `svc __names`: program names, one per line, for shell completion. Silent on any error,
/// so a completion never prints noise into the user's command line.
pub fn names(g: &Global) -> u8 {
    block_on(async {
        let Ok(mut c) = super::try_connect(g).await else { return FAILURE };
        match c.request(&Request::Status { targets: vec![], resources: false }).await {
            Ok(Response::Status { programs }) => {
                for p in &programs {
                    println!("{}", p.name);
                }
                // Groups (and numprocs blocks) as GROUP:*, once each, as supervisorctl takes them.
                let mut groups: Vec<&str> =
                    programs.iter().filter(|p| p.group != p.name).map(|p| p.group.as_str()).collect();
                groups.sort_unstable();
                groups.dedup();
                for g in groups {
                    println!("{g}:*");
                }
                SUCCESS
            }
            _ => FAILURE,
        }
    })
}
