//! Stamps the build with a hash of its sources, so that `svc daemon` only hands over to a
//! `svc-daemon` binary built from the same sources (a stale one left by an earlier build of
//! only `svc` would run old code). A hash of the inputs rather than a random number or a
//! time keeps builds reproducible.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

fn main() {
    let mut h = DefaultHasher::new();
    for input in ["src", "platform/src", "Cargo.toml", "Cargo.lock", "platform/Cargo.toml", "build.rs"] {
        println!("cargo:rerun-if-changed={input}");
        feed(Path::new(input), &mut h);
    }
    println!("cargo:rustc-env=SVC_BUILD_ID={:016x}", h.finish());
}

/// Hashes every file under `path` (names and contents) in a fixed order.
fn feed(path: &Path, h: &mut DefaultHasher) {
    if path.is_dir() {
        let mut entries: Vec<_> =
            std::fs::read_dir(path).map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect()).unwrap_or_default();
        entries.sort();
        for e in entries {
            feed(&e, h);
        }
    } else if let Ok(bytes) = std::fs::read(path) {
        path.hash(h);
        bytes.hash(h);
    }
}
