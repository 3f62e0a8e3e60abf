#!/usr/bin/env bash
# Render a summary page as a person sees it: headless Chromium (Debian's `chromium` package) draws it to
# a PNG, offline (the page fetches nothing; its Content-Security-Policy would refuse it anyway).
# Usage: tests/tools/render_summary.sh SUMMARY.html [OUT.png] [HEIGHT]
# With no page given, it runs `iam-audit demo` three times into a temporary directory (the demo's
# organization changes between runs) and renders the third run's page: changes, findings first seen two
# runs ago, a finding resolved and reopened, and the ages and times to resolve.
set -euo pipefail
cd "$(dirname "$0")/../.."
page="${1:-}"
out="${2:-summary.png}"
height="${3:-3000}"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
  echo "error: no chromium on PATH; install Debian's chromium package (apt-get install chromium)" >&2
  exit 2
fi
if [ -z "$page" ]; then
  dir="$(mktemp -d)"
  # Exit 3 is the demo's own: its organization has accounts that deny the audit role.
  for _ in 1 2 3; do
    code=0
    cargo run --quiet -- demo --output-dir "$dir" --quiet || code=$?
    [ "$code" = 0 ] || [ "$code" = 3 ] || exit "$code"
    sleep 1
  done
  page="$(ls "$dir"/summary_*.html | tail -n 1)"
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --disable-quic --user-data-dir="$profile" \
  --window-size=1200,"$height" --screenshot="$out" "file://$(realpath "$page")" 2>/dev/null
echo "$page -> $out"
