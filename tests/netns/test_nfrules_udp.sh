#!/usr/bin/env bash
# The UDP and other-protocol rules of src/nfrules.c (mangle table, nat DNS
# REDIRECT), driven by `egressctl nf` in a world's host netns with the real
# iptables tools and no queue consumer: install and remove leave mangle,
# nat and filter exactly as found, Docker-like mangle rules of others
# included; installing again keeps one jump per built-in chain; `nf status`
# tells installed, absent and a hand-damaged state (unknown) apart; with
# nothing reading the queue, UDP and ICMP from the host and from bridged
# containers never reach the internet (fail closed), while what the rules
# exempt (the daemon's mark, the consumer's verdict bits and the connmark
# fast path, loopback, the exempt uid, ICMP with --allow-icmp) goes out;
# after remove, UDP flows again.
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
require_python3 "ICMP and fast-path clients"

W=$(world_name u)
check "up with a docker0 and a br-sim1 container" \
	world_up "$W" --containers 1 --user-containers 1
LOG=/run/egress-sim/$W/services.jsonl
ECHO_IP=203.0.113.10
ECHO_PORT=9999
WAIT=1500 # ms a dropped datagram is waited for

nf() { in_world "$W" host "$EGRESSCTL" nf "$@"; }
ipt() { in_world "$W" host "$@"; }
# udp PLACE [nf-probe options] MESSAGE: one datagram to the echo service
udp() {
	local place=$1
	shift
	in_world "$W" "$place" "$PROBE" --udp --wait "$WAIT" "$@" 2>&1 | tail -n1
}
udp_echo() { udp "$1" "${@:3}" "$ECHO_IP" "$ECHO_PORT" "$2"; }
# ICMP echo from PLACE through a ping socket: "reply" or "timeout"
PING_PY='
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
s.settimeout(float(sys.argv[2]) / 1000)
s.sendto(b"\x08\x00\x00\x00\x00\x00\x00\x01egress", (sys.argv[1], 0))
try:
    d = s.recv(2048)
    print("reply" if d[0] == 0 else "icmp type %d" % d[0])
except socket.timeout:
    print("timeout")
'
# dig_from PLACE: the answer, or dig's exit status (9: no reply)
dig_from() {
	local out
	out=$(in_world "$W" "$1" dig +short +tries=1 +time=2 @198.51.100.53 example.test 2>&1) ||
		out="exit $?"
	echo "$out" | tail -n1
}
ping_from() { in_world "$W" "$1" python3 -c "$PING_PY" "$ECHO_IP" "$WAIT" 2>&1 | tail -n1; }
# A flow whose first datagram carries MARK (as the consumer's verdict
# would), then one more from the same socket with no mark at all: both
# echoes print when the first packet's verdict bit went to the connmark.
FAST_PY='
import socket, sys
SO_MARK = 36
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[4]) / 1000)
s.setsockopt(socket.SOL_SOCKET, SO_MARK, int(sys.argv[3], 0))
s.connect((sys.argv[1], int(sys.argv[2])))
out = []
for i, mark in enumerate((int(sys.argv[3], 0), 0)):
    s.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
    s.send(b"fast%d" % i)
    try:
        out.append(s.recv(2048).decode())
    except socket.timeout:
        out.append("timeout")
print(" ".join(out))
'
fast_path() { ipt python3 -c "$FAST_PY" "$ECHO_IP" "$ECHO_PORT" "$1" "$WAIT" 2>&1 | tail -n1; }
jumps() { ipt iptables-save -t "$2" | grep -c "^-A $1 -j EGRESS_$1\$"; }
all_jumps() {
	echo "$(jumps OUTPUT nat) $(jumps PREROUTING nat)" \
		"$(jumps OUTPUT mangle) $(jumps PREROUTING mangle)"
}
snapshot() {
	local t
	for t in raw mangle nat filter; do
		ipt iptables-save -t "$t"
	done | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//'
}
# our chains' rules, installed and as `nf script ARGS` writes them
installed_rules() {
	local c
	for c in EGRESS_OUTPUT EGRESS_PREROUTING EGRESS_BRIDGE; do
		ipt iptables-save -t mangle | grep "^-A $c "
	done
}
script_rules() {
	local c
	for c in EGRESS_OUTPUT EGRESS_PREROUTING EGRESS_BRIDGE; do
		nf script "$@" | sed -n '/^\*mangle$/,/^COMMIT$/p' | grep "^-A $c "
	done
}
# A UDP responder: replies REPLY to every datagram on ADDR:PORT.
RESP_PY='
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    _, peer = s.recvfrom(2048)
    s.sendto(sys.argv[3].encode(), peer)
'
RESPONDERS=()
# responder ADDR PORT REPLY: started in the host netns, waited for
responder() {
	"$SIM" exec "$W" host -- python3 -c "$RESP_PY" "$@" 2>/dev/null &
	RESPONDERS+=($!)
	for _ in $(seq 50); do
		[ -n "$(ipt ss -Hlun "src $1:$2")" ] && return 0
		sleep 0.1
	done
	return 1
}
stop_responders() {
	local p
	for p in "${RESPONDERS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	RESPONDERS=()
}
trap 'stop_responders; cleanup_worlds' EXIT
mark_log() { LOG_MARK=$(wc -l <"$LOG"); }
new_udp() { tail -n +$((LOG_MARK + 1)) "$LOG" | grep -c '"svc":"udp_echo"'; }

# Ping sockets: the worlds' namespaces only (the default range allows none).
for place in host container:0 container:1; do
	check "ping sockets allowed in $place's netns" \
		in_world "$W" "$place" sysctl -qw net.ipv4.ping_group_range="0 0"
done

# ---- before: everything reaches the internet ---------------------------------

mark_log
check_eq "before install: host UDP gets its echo" u0 "$(udp_echo host u0)"
check_eq "before install: docker0 container UDP too" u1 "$(udp_echo container:0 u1)"
check_eq "before install: br-sim1 container UDP too" u2 "$(udp_echo container:1 u2)"
check_eq "... and the echo service logged the three" 3 "$(new_udp)"
check_eq "before install: a DNS query from a container is answered" 198.51.100.10 \
	"$(dig_from container:0)"
check_eq "before install: host ICMP echo is answered" reply "$(ping_from host)"
check_eq "before install: container ICMP echo too" reply "$(ping_from container:0)"

# ---- install and remove, others' rules untouched -----------------------------

check "add Docker-like rules in mangle, nat and filter" ipt bash -ec '
	iptables -t mangle -N DOCKER-MANGLE
	iptables -t mangle -A DOCKER-MANGLE -p udp --dport 9 -j MARK --set-xmark 0x8/0x8
	iptables -t mangle -A PREROUTING -j MARK --set-xmark 0x100/0x100
	iptables -t mangle -A PREROUTING -i docker0 -j DOCKER-MANGLE
	iptables -t mangle -A OUTPUT -j DOCKER-MANGLE
	iptables -t nat -N DOCKER
	iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
	iptables -N DOCKER-USER
	iptables -A FORWARD -j DOCKER-USER'
foreign=$(snapshot)
check_eq "status before install" absent "$(nf status)"
check "install" nf install
check_eq "status after install" installed "$(nf status)"
check_eq "our jumps first in mangle PREROUTING, others' after them" \
	"-A PREROUTING -j EGRESS_PREROUTING
-A PREROUTING -j MARK --set-xmark 0x100/0x100
-A PREROUTING -i docker0 -j DOCKER-MANGLE" \
	"$(ipt iptables-save -t mangle | grep '^-A PREROUTING ')"
check_eq "... and in mangle OUTPUT" \
	"-A OUTPUT -j EGRESS_OUTPUT
-A OUTPUT -j DOCKER-MANGLE" "$(ipt iptables-save -t mangle | grep '^-A OUTPUT ')"
check_eq "one jump per built-in chain, nat and mangle" "1 1 1 1" "$(all_jumps)"
check_eq "mangle holds exactly the script's rules, in order" \
	"$(script_rules)" "$(installed_rules)"
check_eq "no --queue-bypass installed (fail closed)" 0 \
	"$(ipt iptables-save -t mangle | grep -c -- --queue-bypass)"
check_eq "nothing else changed" "$foreign" "$(snapshot | grep -v EGRESS_)"

check "install again, other options (a restart)" \
	nf install --queue 3 --allow-icmp --exempt-uid 65534 --bridge docker0
check_eq "still one jump per built-in chain" "1 1 1 1" "$(all_jumps)"
check_eq "the chains now hold the second install's rules" \
	"$(script_rules --queue 3 --allow-icmp --exempt-uid 65534 --bridge docker0)" \
	"$(installed_rules)"
check_eq "others' rules still untouched" "$foreign" "$(snapshot | grep -v EGRESS_)"

check "delete the mangle OUTPUT jump by hand" \
	ipt iptables -t mangle -D OUTPUT -j EGRESS_OUTPUT
check_eq "status: a missing mangle jump is unknown" unknown "$(nf status 2>/dev/null)"
check_fails "... and nf status fails" nf status
check "install repairs it" nf install
check_eq "status installed again, one jump each" "installed 1 1 1 1" \
	"$(nf status) $(all_jumps)"
check "delete the bridge chain's jump from mangle PREROUTING by hand" \
	ipt iptables -t mangle -D PREROUTING -j EGRESS_PREROUTING
check_eq "status: unknown again" unknown "$(nf status 2>/dev/null)"

check "remove" nf remove
check_eq "status after remove" absent "$(nf status)"
check_eq "exact teardown: mangle, nat and filter as found" "$foreign" "$(snapshot)"
check "remove with nothing installed succeeds" nf remove
check_fails "overlapping marks are refused" nf install --mark-dns 0x10000000
check_fails "a zero UDP mark is refused" nf install --mark-udp 0
check_eq "a refused install changes nothing" "$foreign" "$(snapshot)"

# ---- no consumer: fail closed ----------------------------------------------

check "install (defaults: no ICMP allowed)" nf install
mark_log
check_eq "host UDP gets no answer" timeout "$(udp_echo host n0)"
check_eq "docker0 container UDP gets no answer" timeout "$(udp_echo container:0 n1)"
check_eq "br-sim1 container (pattern br-+) UDP neither" timeout "$(udp_echo container:1 n2)"
check_eq "a DNS query from the host gets no answer (dig: no reply)" "exit 9" \
	"$(dig_from host)"
check_eq "a DNS query from a container neither" "exit 9" "$(dig_from container:0)"
check_eq "host ICMP echo gets no answer" timeout "$(ping_from host)"
check_eq "container ICMP echo gets no answer" timeout "$(ping_from container:0)"
check_eq "the echo service saw none of the datagrams" 0 "$(new_udp)"
check_eq "the DNS server saw nothing either" 0 \
	"$(tail -n +$((LOG_MARK + 1)) "$LOG" | grep -c '"svc":"dns"')"

mark_log
check_eq "a socket with the daemon's mark goes straight out" own \
	"$(udp_echo host own --mark 0x10000000)"
check_eq "a mark with other bits besides ours too" own2 \
	"$(udp_echo host own2 --mark 0x10000005)"
check_eq "a mark without our bit does not" timeout "$(udp_echo host other --mark 0x5)"
check_eq "the echo service saw the two marked datagrams only" 2 "$(new_udp)"
check_eq "a flow whose first packet carries the UDP verdict bit takes the fast path" \
	"fast0 fast1" "$(fast_path 0x40000000)"
check_eq "... also with other bits in the mark" "fast0 fast1" "$(fast_path 0x40000003)"
check_eq "without the verdict bit, neither packet passes" "timeout timeout" \
	"$(fast_path 0x1)"
# A DNS verdict leaves mangle and is REDIRECTed by nat to the DNS port
# (127.0.0.1 from the host).  The answer must come from the address the
# query was redirected to, or conntrack does not take it for the reply (it
# would be queued, and dropped, as a new flow): hence a socket bound to
# 127.0.0.1, where a proxy bound to 0.0.0.0 would answer with IP_PKTINFO.
check "a stand-in for the DNS proxy on 127.0.0.1:8053" responder 127.0.0.1 8053 dnsproxy
mark_log
check_eq "a packet with the DNS verdict bit lands on the DNS port" dnsproxy \
	"$(udp_echo host dns --mark 0x20000000)"
check_eq "... also with other bits in the mark" dnsproxy \
	"$(udp_echo host dns --mark 0x20000100)"
check_eq "... and none at the echo service" 0 "$(new_udp)"

# ---- loopback, exempt uid, ICMP ----------------------------------------------

check "a loopback UDP service on 127.0.0.1:7001" responder 127.0.0.1 7001 lo
check "a stub resolver stand-in on 127.0.0.53:53" responder 127.0.0.53 53 stub
check_eq "loopback UDP is not queued" lo "$(udp host 127.0.0.1 7001 x)"
check_eq "loopback UDP to port 53 (a stub resolver) is" timeout \
	"$(udp host 127.0.0.53 53 x)"
check "install --intercept-loopback" nf install --intercept-loopback
check_eq "--intercept-loopback: loopback UDP is queued too" timeout \
	"$(udp host 127.0.0.1 7001 x)"

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
check "install --exempt-uid nobody" nf install --exempt-uid nobody
mark_log
check_eq "the exempt uid's UDP goes out" ex \
	"$(in_world "$W" host "${NOBODY[@]}" "$PROBE" --udp --wait "$WAIT" \
		"$ECHO_IP" "$ECHO_PORT" ex 2>&1 | tail -n1)"
check_eq "... and reaches the internet" 1 "$(new_udp)"
check_eq "another uid's does not (root)" timeout "$(udp_echo host root)"
check_eq "the exempt uid is exempt before the loopback DNS rule (its stub queries)" stub \
	"$(in_world "$W" host "${NOBODY[@]}" "$PROBE" --udp --wait "$WAIT" \
		127.0.0.53 53 x 2>&1 | tail -n1)"
check_eq "root's query to the stub resolver is queued" timeout \
	"$(udp host 127.0.0.53 53 x)"
check_eq "an exempt uid is not exempt in a container" timeout \
	"$(in_world "$W" container:0 "${NOBODY[@]}" "$PROBE" --udp --wait "$WAIT" \
		"$ECHO_IP" "$ECHO_PORT" ex 2>&1 | tail -n1)"
stop_responders

check "install --allow-icmp" nf install --allow-icmp
check_eq "--allow-icmp: host ICMP echo is answered" reply "$(ping_from host)"
check_eq "--allow-icmp: container ICMP echo too" reply "$(ping_from container:1)"
check_eq "--allow-icmp: UDP is still dropped" timeout "$(udp_echo container:1 n3)"

# ---- after remove: UDP flows again -------------------------------------------

check "remove" nf remove
mark_log
check_eq "after remove: host UDP gets its echo" a0 "$(udp_echo host a0)"
check_eq "after remove: docker0 container UDP too" a1 "$(udp_echo container:0 a1)"
check_eq "after remove: br-sim1 container UDP too" a2 "$(udp_echo container:1 a2)"
check_eq "after remove: container ICMP echo is answered" reply "$(ping_from container:0)"
check_eq "the echo service logged the three" 3 "$(new_udp)"
check_eq "exact teardown after the traffic tests" "$foreign" "$(snapshot)"
finish
