#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the report's browser tests (tests/conformance/report/test_browser.py).
#
# Debian's own packages (chromium, chromium-driver): no browser download at test time. Idempotent. Where they
# cannot be installed (no root, no package mirror), it says what to do, records the reason in
# .cache/browser-unavailable (the browser tests skip with it) and exits 0: the rest of the suite still runs.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
marker=.cache/browser-unavailable

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  rm -f "$marker"
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo -n"
if $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
   || { $sudo apt-get update -q >/dev/null 2>&1 \
        && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }; then
  rm -f "$marker"
  echo "setup-browser: installed $(chromium --version 2>/dev/null | head -1)"
  exit 0
fi
reason="headless Chromium is not installed and apt-get could not install it: run 'sudo apt-get install chromium chromium-driver' (Debian/Ubuntu) or put chromium and chromedriver on PATH"
echo "$reason" > "$marker"
echo "setup-browser: $reason; the browser tests will be skipped"
