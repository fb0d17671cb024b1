#!/usr/bin/env bash
# The daemon against the TCP rows of the support matrix and its options:
# a host process, a host-network container (a host-netns process in a
# Docker-like cgroup) and a bridged container, each proxied, attributed to
# the real client and judged (the services' log proves what never reached
# a server); --audit (denied requests pass and are logged as deny, a denied
# SNI is MITM'd, not aborted); loopback TCP not intercepted by default but
# judged with --intercept-loopback; log rotation through the daemon (no
# line torn or lost); --preset github-hosted (runner scoping, while
# cgroup=@docker rules still admit containers); start-up time.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/egressd_lib.sh"
require_root
require_python3 "log checks"

W=$(world_name m)
check "up" world_up "$W" --containers 1
D=$(ed_dir "$W")
mkdir -p "$D"
SVC=/run/egress-sim/$W/services.jsonl
POL=$D/policy.txt
printf 'example.test:80|443\n203.0.113.10:7\n%s' "$DNS_RULES" >"$POL"

LOOPSRV=
egressd_world "$W"
on_cleanup() {
	[ -z "$LOOPSRV" ] || kill "$LOOPSRV" 2>/dev/null
}

# A Docker-like cgroup for host-network "containers".
HOSTNET_CG=docker/$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

# run_in PLACE CMD...: CMD in a row of the matrix; PLACE is host, hostnet
# or container
run_in() {
	local place=$1
	shift
	case $place in
	host) "$SIM" exec "$W" host -- "$@" ;;
	hostnet) "$SIM" exec "$W" host --cgroup "$HOSTNET_CG" -- "$@" ;;
	container) "$SIM" exec "$W" container:0 -- "$@" ;;
	esac
}

# with_pid PLACE TAG CMD...: runs CMD in PLACE as the same process as the
# shell that records its pid in $D/pid.TAG
with_pid() {
	local place=$1 tag=$2
	shift 2
	run_in "$place" bash -c 'echo $$ >"$0"; exec "$@"' "$D/pid.$tag" "$@"
}

# line_for PATH: the log line of the request for PATH (the one with a URL:
# the client's DNS query names the path in its command line too), once it
# is written
line_for() {
	local l=
	for _ in $(seq 100); do
		l=$(ed_log "$W" | grep -F "$1\"" | grep -F '"url":' | tail -n 1)
		[ -n "$l" ] && break
		sleep 0.05
	done
	printf '%s\n' "$l"
}
# nth_line N REGEX: the Nth log line matching REGEX, once it is written
nth_line() {
	local l=
	for _ in $(seq 100); do
		l=$(ed_log "$W" | grep -E "$2" | sed -n "$1p")
		[ -n "$l" ] && break
		sleep 0.05
	done
	printf '%s\n' "$l"
}
reached() { grep -q "\"path\":\"$1\"" "$SVC"; }

t0=$(date +%s%N)
check "egressd starts" egressd_start "$W" "$POL" --first-bytes-ms "$(scaled_ms 300)"
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
echo "# egressd: start to control socket answering in $ms ms"
max=$(scaled_ms 1000)
check "egressd starts in well under a second (start to control socket: $ms ms < $max)" \
	test "$ms" -lt "$max"
ECA=$D/ca.pem
CURL=$(readlink -f "$(command -v curl)")

# ---- the TCP rows of the support matrix ------------------------------------
for place in host hostnet container; do
	case $place in
	host) cg="/egress-sim/$W/host" ;;
	hostnet) cg="/egress-sim/$W/$HOSTNET_CG" ;;
	container) cg="/egress-sim/$W/docker/[0-9a-f]{64}" ;;
	esac
	out=$(with_pid "$place" "$place" curl -sS -m 5 "http://example.test/m-$place")
	check_eq "$place: allowed HTTP request is proxied and answered" \
		"hello from example.test GET /m-$place" "$out"
	line=$(line_for "/m-$place")
	check_match "... logged as http allow, attributed (pid, exe, cgroup)" \
		"\"url\":\"http://example.test/m-$place\",\"method\":\"GET\",\"policy\":\"allow\",.*\"exe\":\"$CURL\".*\"cgroup\":\"$cg\".*\"pid\":$(cat "$D/pid.$place")}" \
		"$line"

	out=$(with_pid "$place" "$place-s" curl -sS -m 5 --cacert "$ECA" "https://example.test/ms-$place")
	check_eq "$place: allowed HTTPS request through MITM" \
		"hello from example.test GET /ms-$place" "$out"
	check_match "... logged as https allow with its pid" \
		"\"url\":\"https://example.test/ms-$place\",\"method\":\"GET\",\"policy\":\"allow\",.*\"pid\":$(cat "$D/pid.$place-s")}" \
		"$(line_for "/ms-$place")"

	code=$(with_pid "$place" "$place-b" curl -sS -m 5 -o /dev/null -w '%{http_code}' \
		"http://web.sim.test/mb-$place")
	check_eq "$place: blocked HTTP request gets 403" 403 "$code"
	check_fails "... and never reached the server" reached "/mb-$place"
	check_match "... logged as http deny with its pid" \
		"\"url\":\"http://web.sim.test/mb-$place\",\"method\":\"GET\",\"policy\":\"deny\",.*\"cgroup\":\"$cg\".*\"pid\":$(cat "$D/pid.$place-b")}" \
		"$(line_for "/mb-$place")"

	out=$(run_in "$place" bash -c 'echo "echo-'$place'" | socat -t2 - TCP:203.0.113.10:7' 2>&1)
	check_eq "$place: allowed raw TCP relayed" "echo-$place" "$out"
	n=$(grep -c '"local":"203.0.113.10:22".*"event":"accept"' "$SVC")
	n22=$(ed_log "$W" | grep -c '"dst_port":22,')
	run_in "$place" bash -c 'echo x | socat -t2 - TCP:203.0.113.10:22' >/dev/null 2>&1
	check_eq "$place: blocked raw TCP never reached the server" "$n" \
		"$(grep -c '"local":"203.0.113.10:22".*"event":"accept"' "$SVC")"
	check_match "... logged as tcp deny in its cgroup" \
		"\"dst_ip\":\"203.0.113.10\",\"dst_port\":22,\"policy\":\"deny\",.*\"cgroup\":\"$cg\"" \
		"$(nth_line $((n22 + 1)) '"dst_port":22,')"
done

# ---- loopback: not intercepted by default -----------------------------------
in_host "$W" socat TCP-LISTEN:9099,bind=127.0.0.1,reuseaddr,fork \
	SYSTEM:'echo loop-ok' >/dev/null 2>&1 &
LOOPSRV=$!
for _ in $(seq 100); do
	[ -n "$(in_host "$W" ss -Hltn 'sport = :9099')" ] && break
	sleep 0.1
done
n=$(ed_log "$W" | wc -l)
check_eq "loopback TCP reaches a 127.0.0.1 listener directly" "loop-ok" \
	"$(run_in host socat -T2 -u TCP:127.0.0.1:9099 - </dev/null 2>&1)"
sleep 0.2
check_eq "... and is not intercepted (no log line)" "$n" "$(ed_log "$W" | wc -l)"

# ---- audit mode ---------------------------------------------------------
egressd_stop "$W"
check "egressd restarts with --audit --intercept-loopback" egressd_start "$W" "$POL" \
	--audit --intercept-loopback --first-bytes-ms "$(scaled_ms 300)"
check_eq "audit: a denied HTTP request passes" "hello from web.sim.test GET /audit-denied" \
	"$(run_in host curl -sS -m 5 http://web.sim.test/audit-denied)"
check "... and reaches the server" reached /audit-denied
check_match "... logged as policy deny" \
	'"url":"http://web.sim.test/audit-denied","method":"GET","policy":"deny"' \
	"$(line_for /audit-denied)"
out=$(run_in host curl -sS -m 5 -v --cacert "$ECA" https://api.sim.test/audit-sni 2>&1)
check_match "audit: a denied SNI is MITM'd (egressd's leaf), not aborted" \
	"issuer:.*egressd.*hello from api.sim.test GET /audit-sni" "$(tr '\n' ' ' <<<"$out")"
check_match "... the request logged as https deny" \
	'"type":"https",.*"url":"https://api.sim.test/audit-sni","method":"GET","policy":"deny"' \
	"$(line_for /audit-sni)"
check "... and it reached the server" reached /audit-sni

# ---- loopback with --intercept-loopback: judged ------------------------------
# (a server-first protocol: the proxy connects after --first-bytes-ms, so
# the client's idle timeout scales with it)
n=$(ed_log "$W" | grep -c '"dst_port":9099,')
check_eq "--intercept-loopback: loopback TCP is proxied (audit lets it through)" \
	"loop-ok" "$(run_in host socat -T$((3 * TIME_SCALE)) -u TCP:127.0.0.1:9099 - </dev/null 2>&1)"
check_match "... and judged: logged as tcp deny" \
	'"type":"tcp","dst_ip":"127.0.0.1","dst_port":9099,"policy":"deny"' \
	"$(nth_line $((n + 1)) '"dst_port":9099,')"
kill "$LOOPSRV" 2>/dev/null
wait "$LOOPSRV" 2>/dev/null
LOOPSRV=

# ---- log rotation through the daemon -------------------------------------
# The limit holds four lines of the size the requests below log, so ten of
# them fill .2 and .1 and leave two in the current file (addresses given:
# no DNS lines in between).
run_in host curl --resolve example.test:80:198.51.100.10 -sS -m 5 -o /dev/null "http://example.test/rot-00"
L=$(($(line_for /rot-00 | wc -c)))
MAX=$((4 * L + L / 2))
egressd_stop "$W"
ROT=$D/rot.jsonl
rm -f "$ROT" "$ROT".*
check "egressd restarts with --log-max-bytes $MAX (4 lines) --log-keep 2" egressd_start "$W" \
	"$POL" --log "$ROT" --log-max-bytes "$MAX" --log-keep 2
N=10
for i in $(seq -w $N); do
	run_in host curl --resolve example.test:80:198.51.100.10 -sS -m 5 -o /dev/null "http://example.test/rot-$i"
done
egressd_stop "$W" # flushes the log
check "rotated files .1 and .2 appear" test -s "$ROT.1" -a -s "$ROT.2"
check_fails "... no .3 (--log-keep 2)" test -e "$ROT.3"
res=$(cat "$ROT.2" "$ROT.1" "$ROT" 2>/dev/null | python3 -c '
import json, sys
urls = [json.loads(l)["url"] for l in sys.stdin]
print(len(urls), urls == sorted(urls), len(set(urls)))')
check_eq "... $N requests: $N whole JSON lines across the files, in order, none lost" \
	"$N True $N" "$res"
check_eq "... lines per file (.2 .1 current)" "4 4 2" \
	"$(wc -l <"$ROT.2") $(wc -l <"$ROT.1") $(wc -l <"$ROT")"

# ---- --preset github-hosted ---------------------------------------------
printf 'example.test:80 cgroup=@docker\nexample.test:443\n%s' "$DNS_RULES" >"$POL"
# Under the preset every rule without cgroup= is scoped to the runner, the
# resolver rule too: the checks below name their addresses themselves.
RES=(--resolve example.test:80:198.51.100.10 --resolve example.test:443:198.51.100.10)
check "egressd restarts with --preset github-hosted" egressd_start "$W" "$POL" \
	--preset github-hosted
check_eq "preset: a host process outside the runner cgroup is denied" 403 \
	"$(run_in host curl "${RES[@]}" -sS -m 5 -o /dev/null -w '%{http_code}' http://example.test/preset-host)"
check_fails "... never reaching the server" reached /preset-host
code=$(run_in host curl "${RES[@]}" -sS -m 5 -o /dev/null -w '%{http_code}' --cacert "$ECA" \
	https://example.test/preset-host-s 2>/dev/null)
check_eq "... also for a rule without cgroup= (scoped to the runner): aborted" 000 "$code"
check_eq "preset: cgroup=@docker still admits a bridged container" \
	"hello from example.test GET /preset-c" \
	"$(run_in container curl "${RES[@]}" -sS -m 5 http://example.test/preset-c)"
check_eq "preset: ... and a host-network container" \
	"hello from example.test GET /preset-hn" \
	"$(run_in hostnet curl "${RES[@]}" -sS -m 5 http://example.test/preset-hn)"
check_match "... logged as allowed in its docker cgroup" \
	"\"url\":\"http://example.test/preset-hn\",\"method\":\"GET\",\"policy\":\"allow\",.*\"cgroup\":\"/egress-sim/$W/$HOSTNET_CG\"" \
	"$(line_for /preset-hn)"

finish
