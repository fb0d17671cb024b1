#!/usr/bin/env bash
# The main job on its embedded default, on a fresh Debian 12 machine (as
# root): installs what the project needs, builds, and runs the demo.
#
# What exists today is the policy engine and its offline tools, so the demo
# validates the demo policy (fixtures/demo/policy.txt) and judges a scripted
# stream of connection events (fixtures/demo/events.jsonl) through the same
# decision code the daemon will use.  NOT BUILT YET: the daemon (egressd),
# the network-namespace simulator (egress-sim) and the runc wrapper; when
# they land this script will run the simulated world with live traffic.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh >/dev/null
make -s -j"$(nproc)" all

ctl=build/egressctl
policy=fixtures/demo/policy.txt
events=fixtures/demo/events.jsonl

echo "== the demo policy ($policy)"
sed 's/^/    /' "$policy"
echo
echo "== egressctl validate"
"$ctl" validate "$policy"
echo
echo "== egressctl check: each event and its verdict"
"$ctl" check --policy "$policy" <"$events" >/tmp/egress-demo.$$ || true
# dns_response lines feed the DNS cache and print no verdict
grep -v '"dns_response"' "$events" | paste -d '\n' - /tmp/egress-demo.$$ |
	sed 's/^{"verdict"/    -> {"verdict"/'
rm -f /tmp/egress-demo.$$
echo
echo "== egressctl analyze (the same events as a connection log)"
"$ctl" analyze --policy "$policy" --log "$events" -v || true
echo
echo "(not built yet: egressd, egress-sim and egress-runc; see README.md)"
