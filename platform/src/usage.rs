//! CPU time and resident memory per process group, from one pass over the process table.

use std::collections::HashMap;
use std::io;

/// What one process contributes to its group's figures; `None` where the OS would not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcUsage {
    /// Process group id.
    pub pgid: i32,
    /// User + system time of the process and of the children it has waited for, in nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Resident memory in bytes.
    pub rss_bytes: Option<u64>,
}

/// CPU time and memory of one process group, summed over its live (and not yet reaped) members.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GroupUsage {
    /// User + system CPU seconds of the group's processes, including the children they have
    /// waited for. `None` when no member was found or one member's time could not be read.
    pub cpu_seconds: Option<f64>,
    /// Resident memory in bytes, summed over the members (a page shared by two members counts
    /// twice, as in `ps`). `None` when no member was found or one member's figure is unknown.
    pub memory_bytes: Option<u64>,
}

/// Sums `rows` per group, in the order of `pgids`.
///
/// A partial sum would be a wrong number, so one unknown member makes the group's figure
/// unknown. Reaped children's time is part of each waiting parent's figure because otherwise a
/// shell running one short command after another would show its CPU time going *down* when a
/// command exits and a new one starts, and a rate computed from two readings would be wrong.
pub(crate) fn sum_by_group(pgids: &[i32], rows: impl IntoIterator<Item = ProcUsage>) -> Vec<GroupUsage> {
    // (members seen, cpu so far, rss so far); None once a member's figure is unknown.
    let mut acc: HashMap<i32, (bool, Option<u64>, Option<u64>)> =
        pgids.iter().map(|&g| (g, (false, Some(0), Some(0)))).collect();
    for row in rows {
        let Some((seen, cpu, rss)) = acc.get_mut(&row.pgid) else { continue };
        *seen = true;
        *cpu = cpu.zip(row.cpu_ns).map(|(a, b)| a.saturating_add(b));
        *rss = rss.zip(row.rss_bytes).map(|(a, b)| a.saturating_add(b));
    }
    pgids
        .iter()
        .map(|g| match acc.get(g) {
            Some(&(true, cpu, rss)) => GroupUsage { cpu_seconds: cpu.map(|ns| ns as f64 / 1e9), memory_bytes: rss },
            _ => GroupUsage::default(),
        })
        .collect()
}

/// Non-positive ids name no group (0 and negatives mean other things to `kill`), so they are
/// never looked up.
pub(crate) fn wanted(pgids: &[i32]) -> std::collections::HashSet<i32> {
    pgids.iter().copied().filter(|&g| g > 0).collect()
}

/// The figures of every group in `pgids`, in one pass over the process table.
pub(crate) fn group_usage(pgids: &[i32]) -> io::Result<Vec<GroupUsage>> {
    let want = wanted(pgids);
    if want.is_empty() {
        return Ok(vec![GroupUsage::default(); pgids.len()]);
    }
    let rows = crate::os::usage_rows(&want)?;
    Ok(sum_by_group(pgids, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pgid: i32, cpu_ns: Option<u64>, rss_bytes: Option<u64>) -> ProcUsage {
        ProcUsage { pgid, cpu_ns, rss_bytes }
    }

    #[test]
    fn sums_members_and_keeps_unknown_unknown() {
        let rows = [
            row(10, Some(1_500_000_000), Some(1000)),
            row(10, Some(500_000_000), Some(24)),
            row(20, None, Some(7)),
            row(20, Some(1), Some(1)),
            row(30, Some(3), None),
            row(99, Some(1), Some(1)),
        ];
        let got = sum_by_group(&[10, 20, 30, 40], rows);
        assert_eq!(got[0], GroupUsage { cpu_seconds: Some(2.0), memory_bytes: Some(1024) });
        assert_eq!(got[1], GroupUsage { cpu_seconds: None, memory_bytes: Some(8) });
        assert_eq!(got[2], GroupUsage { cpu_seconds: Some(3e-9), memory_bytes: None });
        // No member found: nothing is known, not "zero".
        assert_eq!(got[3], GroupUsage::default());
    }

    #[test]
    fn non_positive_ids_are_never_looked_up() {
        assert!(wanted(&[0, -1]).is_empty());
        assert_eq!(group_usage(&[0, -5]).expect("no scan needed"), vec![GroupUsage::default(); 2]);
    }
}
