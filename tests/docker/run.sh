#!/usr/bin/env bash
# check-docker: tests with a real dockerd confined to a simulated host netns.
#
# They need the simulator, the daemon and egress-runc, which are not built
# yet, so this tier holds no tests.  It says so instead of pretending.
set -euo pipefail
tests=$(find "$(dirname "$0")" -name '*.test' -o -name 'test_*.sh' | wc -l)
if [ "$tests" -eq 0 ]; then
	echo "check-docker: no tests yet (dockerd in the simulator arrives with egress-runc)"
	exit 0
fi
echo "check-docker: found $tests test files but no runner for them" >&2
exit 1
