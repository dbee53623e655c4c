//! Signal names <-> numbers. Names are accepted as `TERM`, `SIGTERM`, `term` or a number.

use nix::sys::signal::Signal;
use std::str::FromStr;

/// Parses a signal as users write it (`TERM`, `SIGTERM`, `sigterm`, `15`) into its number on this OS.
pub fn signal_from_name(name: &str) -> Option<i32> {
    let name = name.trim();
    if let Ok(n) = name.parse::<i32>() {
        return Signal::try_from(n).ok().map(|s| s as i32);
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&full).ok().map(|s| s as i32)
}

/// The short name (`TERM`) of a signal number, or `None` if this OS has no such signal.
pub fn signal_name(signal: i32) -> Option<&'static str> {
    Signal::try_from(signal).ok().map(|s| &s.as_str()[3..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in ["TERM", "SIGTERM", "term", "15"] {
            assert_eq!(signal_from_name(n), Some(libc::SIGTERM), "{n}");
        }
        assert_eq!(signal_name(libc::SIGKILL), Some("KILL"));
        assert_eq!(signal_from_name("NOPE"), None);
        assert_eq!(signal_from_name("0"), None);
    }
}
