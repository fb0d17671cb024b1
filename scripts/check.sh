#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine (as root):
# installs the Debian packages the project needs, builds, checks formatting,
# then `make check` (unit, netns and docker tiers).  The last line is a
# plain "N passed, N failed" summary of the Check runner.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
make -j"$(nproc)" all
make format-check

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
make check 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

# Check prints "NN%: Checks: C, Failures: F, Errors: E".
summary=$(grep -Eo 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1 || true)
if [ -n "$summary" ]; then
	read -r c f e <<<"$(echo "$summary" | grep -Eo '[0-9]+' | tr '\n' ' ')"
	echo "unit: $((c - f - e)) passed, $((f + e)) failed"
else
	echo "unit: no Check summary found (the unit runner did not run)" >&2
	rc=1
fi
exit "$rc"
