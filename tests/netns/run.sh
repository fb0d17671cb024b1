#!/usr/bin/env bash
# check-netns: end-to-end tests inside simulated network namespaces.
#
# The simulator (egress-sim) and the daemon they exercise are not built
# yet, so this tier holds no tests.  It says so instead of pretending.
set -euo pipefail
tests=$(find "$(dirname "$0")" -name '*.test' -o -name 'test_*.sh' | wc -l)
if [ "$tests" -eq 0 ]; then
	echo "check-netns: no tests yet (the netns simulator egress-sim is not built yet)"
	exit 0
fi
echo "check-netns: found $tests test files but no runner for them" >&2
exit 1
