#!/usr/bin/env bash
# The main job on its embedded default, on a fresh Debian 12 machine (as
# root): installs what the project needs, builds, and runs the demo.
#
# It brings up a simulated world (a CI runner with docker0 and a container,
# and an "internet" with HTTP, HTTPS, DNS and UDP services), starts egressd
# in the runner's network namespace with fixtures/demo/live-policy.txt,
# sends a scripted mix of allowed and blocked HTTP, HTTPS, raw TCP, DNS (UDP
# and TCP) and other UDP from a host process and from a container, prints
# the connection log, and tears everything down (scripts/demo-live.sh).
# Then it shows the offline tools on fixtures/demo/policy.txt and
# events.jsonl.  Real Docker containers (dockerd, egress-runc) are not part
# of the demo: `make check-docker` runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh >/dev/null
make -s -j"$(nproc)" all >/dev/null

ctl=build/egressctl
policy=fixtures/demo/policy.txt
events=fixtures/demo/events.jsonl
bash scripts/demo-live.sh
echo
echo "== offline: the policy tools on $policy"
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
echo "(real Docker containers with egress-runc: make check-docker; other kernels: make vm-matrix; see README.md)"
