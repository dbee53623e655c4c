//! Commands on several hosts at once (`-H web1 -H web2`, `-H @group`).

use super::{Global, USAGE};

/// Placeholder until the fleet commands land.
fn todo(_g: &Global) -> u8 {
    super::fail("usage", "fleets are not done yet", None, USAGE)
}
/// `svc -H a -H b status`.
pub fn status(g: &Global, _t: Vec<String>, _j: bool) -> u8 {
    todo(g)
}
/// start/stop/restart.
pub fn control(g: &Global, _v: super::control::Verb, _t: Vec<String>, _j: bool, _n: bool) -> u8 {
    todo(g)
}
/// signal.
pub fn run_and_print(g: &Global, _r: crate::protocol::Request, _j: bool) -> u8 {
    todo(g)
}
/// logs.
pub fn logs(g: &Global, _a: super::logs::LogsArgs) -> u8 {
    todo(g)
}
/// events.
pub fn events(g: &Global, _t: Vec<String>, _j: bool) -> u8 {
    todo(g)
}
/// version.
pub fn version(g: &Global, _j: bool) -> u8 {
    todo(g)
}
