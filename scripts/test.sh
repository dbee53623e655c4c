#!/usr/bin/env bash
# The whole test suite: unit + integration tests of every crate, then the integration
# tests again as an ordinary (non-root) user when run as root, since svc's users have no
# root and some guarantees (private dirs, peer uid checks) only show as one.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked

if [ "$(id -u)" = 0 ]; then
  user=svctest
  id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
  # Build the test binaries as root, then run them as the user from a copy it can read.
  bins=$(cargo test --workspace --locked --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')
  dest=$(mktemp -d /tmp/svc-ci-XXXXXX)
  chmod 755 "$dest"
  cp target/debug/svc target/debug/svc-daemon "$dest/"
  for b in $bins; do cp "$b" "$dest/"; done
  chmod -R a+rX "$dest"
  echo "== tests as unprivileged user $user"
  for b in $bins; do
    name=$(basename "$b")
    # Integration tests find the binary through CARGO_BIN_EXE_svc, baked in at compile time;
    # point it at the copy with SVC_TEST_BIN.
    su "$user" -s /bin/sh -c "cd /tmp && SVC_TEST_BIN=$dest/svc $dest/$name"
  done
  rm -rf "$dest"
fi
