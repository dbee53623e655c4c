#!/usr/bin/env bash
# Remakes docs/web.png (the README's picture of `svc web`) from the browser test's real page:
# a real daemon, real programs, headless Chromium. Needs chromium (apt-get install chromium).
# The dark and phone-width shots land in target/web-screenshots/ to look at.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(pwd)/target/web-screenshots
mkdir -p "$out"
SVC_WEB_SCREENSHOTS="$out" cargo test --test main -- --exact web::web_page_in_chromium_follows_states_and_restarts
cp "$out/web.png" docs/web.png
echo "docs/web.png updated; see also $out/web-dark.png and $out/web-phone.png"
