#!/usr/bin/env bash
# The netfilter rules (src/nfrules.c), driven by `egressctl nf` in a world's
# host netns with the real iptables tools: install and remove leave every
# table exactly as they found it, Docker-like rules of others included;
# installing again (a restart) replaces the chains and keeps one jump each;
# bridged containers (docker0 and br-+) and host processes land on the
# proxy port, the daemon's marked sockets do not; loopback is left alone
# except TCP port 53; with nothing on the proxy port, connections are
# refused (fail closed), never passed.  The UDP and other-protocol rules
# (mangle) have their own file, test_nfrules_udp.sh; while the rules are
# installed here nothing reads the queue, so UDP (DNS included) is dropped
# and clients name example.test with curl --resolve.
. "$(dirname "$0")/lib.sh"
require_root

BUILD_DIR=$(dirname "$SIM")
EGRESSCTL=$BUILD_DIR/egressctl
PROBE=$BUILD_DIR/nf-probe
for f in "$EGRESSCTL" "$PROBE"; do
	if [ ! -x "$f" ]; then
		echo "not ok - $f is not built (make check-netns builds it)"
		exit 1
	fi
done
TMPD=$(mktemp -d /tmp/egress-nf-XXXXXX)
trap 'cleanup_worlds; rm -rf "$TMPD"' EXIT

W=$(world_name n)
check "up with a docker0 and a br-sim1 container" \
	world_up "$W" --containers 1 --user-containers 1
LOG=/run/egress-sim/$W/services.jsonl
MARK=0x10000000 # egressctl nf's default
HTTP_GET='GET / HTTP/1.0\r\nHost: example.test\r\n\r\n'
HELLO="hello from example.test GET /"
RESOLVE=(--resolve example.test:80:198.51.100.10)

nf() { in_world "$W" host "$EGRESSCTL" nf "$@"; }
ipt() { in_world "$W" host "$@"; }
probe() { in_world "$W" host "$PROBE" "$@" 2>&1 | tail -n1; }
jumps() { ipt iptables-save -t "${2:-nat}" | grep -c "^-A $1 -j EGRESS_$1\$"; }
# Our chains' rules as installed and as `nf script ARGS` writes them, table
# by table (iptables-save lists a table's chains sorted, so each chain is
# taken on its own).
installed_rules() {
	local t c
	for t in nat mangle; do
		for c in EGRESS_OUTPUT EGRESS_PREROUTING EGRESS_BRIDGE; do
			ipt iptables-save -t "$t" | grep "^-A $c " | sed "s/^/$t /"
		done
	done
}
script_rules() {
	local t c
	for t in nat mangle; do
		for c in EGRESS_OUTPUT EGRESS_PREROUTING EGRESS_BRIDGE; do
			nf script "$@" | sed -n "/^\*$t\$/,/^COMMIT\$/p" |
				grep "^-A $c " | sed "s/^/$t /"
		done
	done
}
# Every table as iptables-save prints it, without comments and counters.
# `-t TABLE` prints a table's built-in chains even before anything created
# them, so the nat table that iptables creates (with its empty built-in
# chains) on the first install compares equal to the table not being there.
snapshot() {
	local t
	for t in raw mangle nat filter; do
		ipt iptables-save -t "$t"
	done | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//'
}
# The services' log lines written since mark_log.
mark_log() { LOG_MARK=$(wc -l <"$LOG"); }
new_log() { tail -n +$((LOG_MARK + 1)) "$LOG"; }
listening() { [ -n "$(ipt ss -Hltn "sport = :$1")" ]; }
wait_listen() {
	for _ in $(seq 50); do
		listening "$1" && return 0
		sleep 0.1
	done
	return 1
}

# ---- install and remove on a pristine world -----------------------------

pristine=$(snapshot)
check_eq "status before install" absent "$(nf status)"
check "install" nf install
check_eq "status after install" installed "$(nf status)"
check_eq "one jump from nat OUTPUT, first in the chain" \
	"-A OUTPUT -j EGRESS_OUTPUT" "$(ipt iptables-save -t nat | grep -m1 '^-A OUTPUT ')"
check_eq "one jump from nat PREROUTING, first in the chain" \
	"-A PREROUTING -j EGRESS_PREROUTING" \
	"$(ipt iptables-save -t nat | grep -m1 '^-A PREROUTING ')"
check_eq "the chains hold exactly the script's rules, in order" \
	"$(script_rules)" "$(installed_rules)"
check_eq "nothing else changed" "$pristine" "$(snapshot | grep -v EGRESS_)"
check "remove" nf remove
check_eq "status after remove" absent "$(nf status)"
check_eq "exact teardown: every table as before" "$pristine" "$(snapshot)"
check "remove with nothing installed succeeds" nf remove
check_fails "an invalid bridge pattern is refused" nf install --bridge 'br 0'
check_fails "port 0 is refused" nf install --port 0
check_eq "a refused install changes nothing" "$pristine" "$(snapshot)"

# ---- install twice: the chains are replaced, the jumps stay single --------

check "install" nf install
check "install again, other port and bridges (a restart)" \
	nf install --port 8181 --bridge docker0
check_eq "still one jump per built-in chain" "1 1" "$(jumps OUTPUT) $(jumps PREROUTING)"
check_eq "the chains now hold the second install's rules" \
	"$(script_rules --port 8181 --bridge docker0)" "$(installed_rules)"
check "remove" nf remove
check_eq "exact teardown after two installs" "$pristine" "$(snapshot)"

# ---- rules of others (Docker-like) survive untouched ----------------------

check "add Docker-like rules in nat, filter and mangle" ipt bash -ec '
	iptables -t nat -N DOCKER
	iptables -t nat -A DOCKER -i docker0 -j RETURN
	iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
	iptables -t nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
	iptables -t nat -A POSTROUTING -s 172.31.0.0/16 ! -o docker0 -j MASQUERADE
	iptables -N DOCKER-USER
	iptables -A FORWARD -j DOCKER-USER
	iptables -A FORWARD -o docker0 -j ACCEPT
	iptables -t mangle -A OUTPUT -p udp --dport 9 -j MARK --set-mark 0x1'
foreign=$(snapshot)
check "install" nf install
check_eq "install touches only its own chains and jumps" "$foreign" \
	"$(snapshot | grep -v EGRESS_)"
check_eq "our jump first in nat OUTPUT, Docker's after it" \
	"-A OUTPUT -j EGRESS_OUTPUT
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER" \
	"$(ipt iptables-save -t nat | grep '^-A OUTPUT ')"
check "install again" nf install
check_eq "the second install too" "$foreign" "$(snapshot | grep -v EGRESS_)"
check_eq "one jump each" "1 1 1 1" \
	"$(jumps OUTPUT) $(jumps PREROUTING) $(jumps OUTPUT mangle) $(jumps PREROUTING mangle)"
check "remove" nf remove
check_eq "exact teardown: Docker's rules as they were" "$foreign" "$(snapshot)"

# ---- traffic ----------------------------------------------------------------

# A stand-in for the proxy on port 8080 (all addresses): it answers every
# connection "intercepted" and records the first line it was sent.
cat >"$TMPD/reply.sh" <<EOF
#!/bin/sh
read -r line
echo "\$line" >>"$TMPD/requests"
printf 'HTTP/1.0 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nintercepted\n'
EOF
chmod +x "$TMPD/reply.sh"
: >"$TMPD/requests"
# (egress-sim exec becomes socat: $! is the listener itself)
"$SIM" exec "$W" host -- socat TCP-LISTEN:8080,fork,reuseaddr EXEC:"$TMPD/reply.sh" 2>/dev/null &
proxy_pid=$!
ipt socat TCP-LISTEN:7000,bind=127.0.0.1,fork,reuseaddr SYSTEM:'echo direct' 2>/dev/null &
ipt socat TCP-LISTEN:53,bind=127.0.0.1,fork,reuseaddr SYSTEM:'echo direct53' 2>/dev/null &
check "proxy stand-in listening on 8080" wait_listen 8080
check "loopback listeners on 127.0.0.1:7000 and :53" wait_listen 7000 && wait_listen 53

check "install" nf install
mark_log
check_eq "docker0 container -> internet lands on the proxy port" intercepted \
	"$(in_world "$W" container:0 curl -sS -m 5 "${RESOLVE[@]}" http://example.test/)"
check_eq "br-sim1 container (pattern br-+) too" intercepted \
	"$(in_world "$W" container:1 curl -sS -m 5 "${RESOLVE[@]}" http://example.test/)"
check_eq "a host process too" intercepted \
	"$(in_world "$W" host curl -sS -m 5 "${RESOLVE[@]}" http://example.test/)"
check_eq "the proxy got the three requests" 3 "$(grep -c '^GET / HTTP/1.1' "$TMPD/requests")"
check_eq "the internet saw none of them (no TCP in its log)" "" \
	"$(new_log | grep '"proto":"tcp"')"

mark_log
check_eq "a socket with the daemon's mark (SO_MARK) goes straight out" "$HELLO" \
	"$(probe --mark "$MARK" 198.51.100.10 80 "$HTTP_GET")"
check_match "... and reaches the internet" '"event":"request".*"host":"example.test"' \
	"$(new_log)"
check_eq "a mark with other bits besides ours also goes out" "$HELLO" \
	"$(probe --mark 0x10000005 198.51.100.10 80 "$HTTP_GET")"
check_eq "a mark without our bit is intercepted" intercepted \
	"$(probe --mark 0x1 198.51.100.10 80 "$HTTP_GET")"

check_eq "loopback TCP is not redirected" direct "$(probe 127.0.0.1 7000)"
check_eq "loopback TCP to port 53 is" intercepted "$(probe 127.0.0.1 53 'x\n')"
check_eq "... on any loopback address (a stub resolver's 127.0.0.53)" intercepted \
	"$(probe 127.0.0.53 53 'x\n')"
check "install --intercept-loopback" nf install --intercept-loopback
check_eq "--intercept-loopback: loopback TCP is redirected" intercepted \
	"$(probe 127.0.0.1 7000 'x\n')"
check "install --bridge docker0" nf install --bridge docker0
check_eq "docker0 only: the br-sim1 container goes straight out" "$HELLO" \
	"$(in_world "$W" container:1 curl -sS -m 5 "${RESOLVE[@]}" http://example.test/)"
check_eq "docker0 only: the docker0 container is still intercepted" intercepted \
	"$(in_world "$W" container:0 curl -sS -m 5 "${RESOLVE[@]}" http://example.test/)"

# ---- fail closed ----------------------------------------------------------

check "install (defaults)" nf install
kill "$proxy_pid"
wait "$proxy_pid" 2>/dev/null
check_fails "the proxy port is closed" listening 8080
mark_log
in_world "$W" container:0 curl -sS -m 5 -o /dev/null "${RESOLVE[@]}" http://example.test/ 2>/dev/null
check_eq "proxy gone: the container's connection is refused (curl exit 7)" 7 $?
in_world "$W" container:1 curl -sS -m 5 -o /dev/null "${RESOLVE[@]}" http://example.test/ 2>/dev/null
check_eq "proxy gone: the br-sim1 container's too" 7 $?
check_eq "proxy gone: the host's too" ECONNREFUSED "$(probe 198.51.100.10 80)"
check_eq "nothing reached the internet" "" "$(new_log | grep '"proto":"tcp"')"

check "remove" nf remove
check_eq "after remove, the container reaches the internet again" "$HELLO" \
	"$(in_world "$W" container:0 curl -sS -m 5 http://example.test/)"
check_eq "exact teardown after the traffic tests" "$foreign" "$(snapshot)"
finish
