#!/usr/bin/env bash
# The live part of the demo: egressd in a simulated world.  Run by
# scripts/demo.sh after the build; usable alone (as root) once built.
set -euo pipefail
cd "$(dirname "$0")/.."
sim=$PWD/build/egress-sim
egressd=$PWD/build/egressd
ctl=$PWD/build/egressctl
world=demo-$$
d=/run/egress-sim/$world/egressd
cg2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)

cleanup() {
	"$ctl" stop --control-socket "$d/control.sock" >/dev/null 2>&1 || true
	sleep 0.3
	"$sim" down "$world" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== a simulated CI runner: egress-sim up $world --containers 1"
"$sim" up "$world" --containers 1 >/dev/null
mkdir -p "$d"
echo "== egressd in the runner's network namespace, policy fixtures/demo/live-policy.txt"
"$sim" exec "$world" host --keep-mounts --cgroup egressd -- "$egressd" --foreground \
	--policy fixtures/demo/live-policy.txt --run-dir "$d" --ca-dir "$d/ca" \
	--log "$d/connections.jsonl" --pin-dir "$d/pins" \
	--cgroup "$cg2/egress-sim/$world" --upstream-ca "$("$sim" ca "$world")" \
	--workers 2 --first-bytes-ms 500 2>"$d/egressd.err" &
for _ in $(seq 100); do
	"$ctl" status --control-socket "$d/control.sock" >/dev/null 2>&1 && break
	sleep 0.05
done
ca=$d/ca.pem

run() {
	local place=$1
	shift
	printf '  [%s] $ %s\n' "$place" "$*"
	{ "$sim" exec "$world" "$place" -- "$@" 2>&1 || true; echo; } |
		sed '/^$/d; s/^/      /'
}
echo "== traffic (clients trust only egressd's CA for HTTPS)"
run host curl -sS -m 5 http://example.test/allowed
run host curl -sS -m 5 http://web.sim.test/not-in-policy
run container:0 curl -sS -m 5 --cacert "$ca" https://registry.sim.test/packages/left-pad-1.3.0.tgz
run container:0 curl -sS -m 5 --cacert "$ca" -X PUT https://registry.sim.test/packages/left-pad
run container:0 curl -sS -m 5 --cacert "$ca" https://api.sim.test/
run container:0 sh -c 'echo hello-echo | socat -t2 - TCP:203.0.113.10:7'
run host sh -c 'echo x | socat -t2 - TCP:203.0.113.10:22'
run container:0 socat -T2 - 'TCP6:[2001:db8::1]:80'
run host dig +short +tries=1 +time=2 example.test
run container:0 dig +tries=1 +time=2 +noall +comments telemetry.sim.test
run host dig +short +tcp +tries=1 +time=2 @198.51.100.53 registry.sim.test
run container:0 sh -c 'echo hello-udp | socat -t1 - UDP:203.0.113.10:9999'
run host sh -c 'echo exfil | socat -t1 - UDP:203.0.113.10:9998'
sleep 0.3
echo "== the connection log ($d/connections.jsonl)"
sed 's/^/    /' "$d/connections.jsonl"
echo "== egressctl status (excerpt)"
"$ctl" status --control-socket "$d/control.sock" | grep -E '"(allow|deny|accepted|rules)"' | head -12
