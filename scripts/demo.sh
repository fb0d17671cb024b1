#!/usr/bin/env bash
# The main job on its embedded default, on a fresh Debian 12 machine (as
# root): installs what the project needs, builds, and runs the demo.
#
# What exists today: the network-namespace simulator and the policy engine
# with its offline tools.  So the demo (1) brings up a simulated world (a CI
# runner with docker0 and a container, and an "internet" with HTTP, HTTPS,
# DNS and UDP services), sends live traffic from the container and shows
# what the internet saw, then (2) validates the demo policy
# (fixtures/demo/policy.txt) and judges a scripted stream of connection
# events (fixtures/demo/events.jsonl) through the decision code the daemon
# will use.  NOT BUILT YET: the daemon (egressd), which will intercept the
# world's traffic and judge it live, and the runc wrapper.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh >/dev/null
make -s -j"$(nproc)" all >/dev/null

ctl=build/egressctl
sim=build/egress-sim
policy=fixtures/demo/policy.txt
events=fixtures/demo/events.jsonl
world=demo-$$

echo "== a simulated world: egress-sim up $world --containers 1"
trap '"$sim" down "$world" >/dev/null 2>&1 || true' EXIT
"$sim" up "$world" --containers 1
ca=$("$sim" ca "$world")
run() { echo "  \$ $*"; "$sim" exec "$world" container:0 -- "$@" 2>&1 | sed 's/^/    /'; }
echo "== live traffic from container 0 (172.17.0.2), unfiltered for now"
run curl -sS -m 5 http://example.test/hello
run curl -sS -m 5 --cacert "$ca" https://api.sim.test/v1/items
run dig +short @198.51.100.53 registry.sim.test
run sh -c 'echo ping | socat -t2 - UDP:203.0.113.10:9999'
echo "== what the simulated internet saw (/run/egress-sim/$world/services.jsonl)"
grep '"peer":"172.17.0.2' "/run/egress-sim/$world/services.jsonl" |
	grep -E '"event":"(request|query|datagram|tls)"' | sed 's/^/    /'
"$sim" down "$world" >/dev/null
echo

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
echo "(not built yet: egressd and egress-runc; see README.md)"
