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

# Check prints "NN%: Checks: C, Failures: F, Errors: E"; the shell tiers
# print "<tier>: N passed, M failed".  The last line adds them up.
pass=0
fail=0
summary=$(grep -Eo 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1 || true)
if [ -n "$summary" ]; then
	read -r c f e <<<"$(echo "$summary" | grep -Eo '[0-9]+' | tr '\n' ' ')"
	pass=$((c - f - e))
	fail=$((f + e))
else
	echo "check: no Check summary found (the unit runner did not run)" >&2
	rc=1
fi
while read -r p f; do
	pass=$((pass + p))
	fail=$((fail + f))
done < <(sed -nE 's/^(netns|docker): ([0-9]+) passed, ([0-9]+) failed$/\2 \3/p' "$log")
echo "total: $pass passed, $fail failed"
exit "$rc"
