//! Per-program resource limits, set in the child between fork and exec.

use std::io;

/// The limits svc lets a program set (`limits { nofile 4096 }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rlimit {
    /// Open files.
    Nofile,
    /// Processes of this user.
    Nproc,
    /// Core file size, bytes.
    Core,
    /// Address space, bytes.
    As,
    /// Data segment, bytes.
    Data,
    /// Stack, bytes.
    Stack,
    /// Largest file, bytes.
    Fsize,
    /// CPU time, seconds.
    Cpu,
}

/// Value meaning "no limit".
pub const RLIM_UNLIMITED: u64 = u64::MAX;

// The constants are u32 on linux-gnu and c_int elsewhere, so the casts are needed on some
// targets and redundant on others.
#[allow(clippy::unnecessary_cast)]
fn resource(kind: Rlimit) -> Option<i32> {
    let r = match kind {
        Rlimit::Nofile => libc::RLIMIT_NOFILE as i32,
        Rlimit::Core => libc::RLIMIT_CORE as i32,
        Rlimit::Data => libc::RLIMIT_DATA as i32,
        Rlimit::Stack => libc::RLIMIT_STACK as i32,
        Rlimit::Fsize => libc::RLIMIT_FSIZE as i32,
        Rlimit::Cpu => libc::RLIMIT_CPU as i32,
        Rlimit::As => libc::RLIMIT_AS as i32,
        // Solaris-family systems limit processes through project resource controls, not
        // an rlimit.
        #[cfg(any(target_os = "illumos", target_os = "solaris"))]
        Rlimit::Nproc => return None,
        #[cfg(not(any(target_os = "illumos", target_os = "solaris")))]
        Rlimit::Nproc => libc::RLIMIT_NPROC as i32,
    };
    Some(r)
}

/// Whether this OS has the limit at all (checked at config time, so a program is not left
/// failing to spawn).
pub fn rlimit_supported(kind: Rlimit) -> bool {
    resource(kind).is_some()
}

/// Sets the soft limit to `value` (the hard limit too when `value` is above it, which only
/// works for root). Async-signal-safe: meant for `pre_exec`.
pub fn child_set_rlimit(kind: Rlimit, value: u64) -> io::Result<()> {
    let Some(res) = resource(kind) else {
        return Err(io::Error::from(io::ErrorKind::Unsupported));
    };
    let want = if value == RLIM_UNLIMITED { libc::RLIM_INFINITY } else { value as libc::rlim_t };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut cur: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(res as _, &mut cur) != 0 {
            return Err(io::Error::last_os_error());
        }
        let hard = if cur.rlim_max == libc::RLIM_INFINITY || (want != libc::RLIM_INFINITY && want <= cur.rlim_max) {
            cur.rlim_max
        } else {
            want
        };
        let new = libc::rlimit { rlim_cur: want, rlim_max: hard };
        if libc::setrlimit(res as _, &new) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn limit_applies_in_child() {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "ulimit -n"]);
        // SAFETY: child_set_rlimit is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| child_set_rlimit(Rlimit::Nofile, 123));
        }
        let out = cmd.output().expect("run sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "123");
    }
}
