#!/usr/bin/env bash
# The daemon's life: start-up, the instance lock, its netfilter chains and
# their exact removal, reload (a bad policy is refused and the old one
# kept), fail closed after SIGKILL (TCP refused, not passed; IPv6 still
# blocked; `egressctl status` says so), `egressd --cleanup`, clean stop.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/egressd_lib.sh"
require_root

W=$(world_name d)
check "up" world_up "$W" --containers 1
D=$(ed_dir "$W")
mkdir -p "$D"
POL=$D/policy.txt
printf 'example.test:80|443\nother.test\n%s' "$DNS_RULES" >"$POL"
nat_before=$(nf_snapshot "$W")

check "egressd starts and answers on its control socket" egressd_start "$W" "$POL"
st=$(ed_ctl "$W" status)
check_match "status: running, 4 rules" '"rules": 4' "$st"
check_match "status: fail-closed state" '"tcp": true' "$st"
check_match "the control socket is root-only (0600)" "^srw-------" \
	"$(ls -l "$D/control.sock")"
check_match "the CA's public copy is published" "BEGIN CERTIFICATE" "$(cat "$D/ca.pem")"
check_match "ca.key is private (0600)" "^-rw-------" "$(ls -l "$D/ca/ca.key")"
out=$("$SIM" exec "$W" host --keep-mounts -- "$EGRESSD" --foreground --policy "$POL" \
	--run-dir "$D" --no-bpf --log - 2>&1)
check_match "a second daemon for the same instance refuses to start" \
	"another egressd runs" "$out"
# a client that connects and says nothing must not hold the daemon up
# (-u: it only reads, so it never sends a byte; one process, so killing
# it ends the connection at once: a "sleep | socat" pipeline kept the test
# waiting for the sleep)
socat -u "UNIX-CONNECT:$D/control.sock" - >/dev/null 2>&1 &
silent=$!
sleep 0.2
t0=$(date +%s%N)
check_match "status answers while a silent client is connected" '"ok": true' "$(ed_ctl "$W" status)"
check "... within a second" test $(( ($(date +%s%N) - t0) / 1000000 )) -lt "$(scaled_ms 1000)"
check_match "a plain-word request without a newline is answered" '"ok":true' \
	"$(printf status | socat - "UNIX-CONNECT:$D/control.sock")"
kill "$silent" 2>/dev/null
wait "$silent" 2>/dev/null
rules=$(in_host "$W" iptables-save -t nat)
check_match "its chains are installed" ":EGRESS_OUTPUT" "$rules"
check_eq "with exactly one jump from nat OUTPUT" 1 \
	"$(grep -c -- '-A OUTPUT -j EGRESS_OUTPUT' <<<"$rules")"

printf 'bad host name\n' >"$D/bad.txt"
cp "$POL" "$D/good.txt"
cp "$D/bad.txt" "$POL"
out=$(ed_ctl "$W" reload 2>&1)
check_match "reload of a bad policy is refused with the reason" "bad.txt|policy.txt:1" "$out"
check_match "... and the old policy stays" '"rules": 4' "$(ed_ctl "$W" status)"
printf 'example.test:80|443\nother.test\n*.sim.test\n' >"$POL"
check_match "reload of a good policy" '"rules": 3' "$(ed_ctl "$W" reload)"

kill -9 "$EGRESSD_PID"
wait "$EGRESSD_PID" 2>/dev/null
out=$(ed_ctl "$W" status 2>&1)
check_eq "status of a killed daemon exits 3" 3 "$(ed_ctl "$W" status >/dev/null 2>&1; echo $?)"
check_match "... and says so loudly, with what fails closed" \
	"NOT RUNNING.*failing closed" "$(tr '\n' ' ' <<<"$out")"
in_world "$W" container:0 curl -sS -m 5 -o /dev/null --resolve example.test:80:198.51.100.10 \
	http://example.test/killed 2>/dev/null
rc=$?
check_eq "TCP from a container fails closed (connection refused: curl 7)" 7 "$rc"
check_fails "... and never reached the server" \
	grep -q '"path":"/killed"' "/run/egress-sim/$W/services.jsonl"
out=$(in_world "$W" container:0 socat -T2 - 'TCP6:[2001:db8::1]:80' </dev/null 2>&1)
check_match "IPv6 stays blocked by the pinned BPF links" \
	"Operation not permitted" "$out"

check "egressd --cleanup removes what the dead daemon left" \
	in_host "$W" "$EGRESSD" --cleanup --pin-dir "$D/pins"
check_eq "netfilter exactly as before the daemon" "$nat_before" \
	"$(nf_snapshot "$W")"

check "egressd starts again" egressd_start "$W" "$POL"
check_match "stop through the control socket" '"stopping"' "$(ed_ctl "$W" stop)"
wait "$EGRESSD_PID" 2>/dev/null
check_eq "a clean stop leaves netfilter exactly as before" "$nat_before" \
	"$(nf_snapshot "$W")"
check_fails "... and removes the control socket" test -e "$D/control.sock"
in_host "$W" "$EGRESSD" --cleanup --pin-dir "$D/pins" >/dev/null 2>&1
finish
