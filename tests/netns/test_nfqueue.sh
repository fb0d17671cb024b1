#!/usr/bin/env bash
# The NFQUEUE consumer (src/nfqueue.c) and conntrack lookups
# (src/ctlookup.c), driven by nfq-probe in a world's host netns with rules
# this test adds in its own chains (removed on exit): UDP to the echo
# service is queued from the host (mangle OUTPUT) and from a bridged
# container (mangle PREROUTING -i docker0); drop keeps it from the service,
# repeat with a mark lets it through the second time round, accept lets it
# out; the socket owner's uid is reported for host sockets only; a missing
# verdict becomes a drop and a second one is refused; a second consumer of
# the queue is refused; a consumer killed with a packet pending loses that
# packet and everything after it (no bypass).  DNS queries REDIRECTed to a
# local socket are traced back to the resolver the client aimed at, from
# the host and from a container; direct queries are not NATed; unknown
# tuples are ENOENT.
. "$(dirname "$0")/lib.sh"
require_root

BUILD_DIR=$(dirname "$SIM")
PROBE=$BUILD_DIR/nfq-probe
if [ ! -x "$PROBE" ]; then
	echo "not ok - $PROBE is not built (make check-netns builds it)"
	exit 1
fi
TMPD=$(mktemp -d /tmp/egress-nfq-XXXXXX)
PIDS=()
W=$(world_name q)
Q=7
MARK=0x40000000
ECHO=203.0.113.10
DNS=203.0.113.53

ipt() { in_world "$W" host "$@"; }

# The test's own chains, each entered by one jump at the top of a built-in
# chain; rules_off removes exactly those.
rules_on() {
	ipt bash -ec "
	iptables -t mangle -N NFQT_OUT
	iptables -t mangle -A NFQT_OUT -m mark --mark $MARK/$MARK -j RETURN
	iptables -t mangle -A NFQT_OUT -p udp -d $ECHO --dport 9999 -j NFQUEUE --queue-num $Q
	iptables -t mangle -I OUTPUT 1 -j NFQT_OUT
	iptables -t mangle -N NFQT_PRE
	iptables -t mangle -A NFQT_PRE -m mark --mark $MARK/$MARK -j RETURN
	iptables -t mangle -A NFQT_PRE -i docker0 -p udp -d $ECHO --dport 9999 -j NFQUEUE --queue-num $Q
	iptables -t mangle -I PREROUTING 1 -j NFQT_PRE
	iptables -t nat -N NFQT_NOUT
	iptables -t nat -A NFQT_NOUT -p udp -d $DNS --dport 53 -j REDIRECT --to-ports 8053
	iptables -t nat -I OUTPUT 1 -j NFQT_NOUT
	iptables -t nat -N NFQT_NPRE
	iptables -t nat -A NFQT_NPRE -i docker0 -p udp -d $DNS --dport 53 -j REDIRECT --to-ports 8053
	iptables -t nat -I PREROUTING 1 -j NFQT_NPRE"
}
rules_off() {
	ipt bash -c '
	iptables -t mangle -D OUTPUT -j NFQT_OUT
	iptables -t mangle -D PREROUTING -j NFQT_PRE
	iptables -t nat -D OUTPUT -j NFQT_NOUT
	iptables -t nat -D PREROUTING -j NFQT_NPRE
	for c in mangle:NFQT_OUT mangle:NFQT_PRE nat:NFQT_NOUT nat:NFQT_NPRE; do
		iptables -t ${c%%:*} -F ${c#*:} && iptables -t ${c%%:*} -X ${c#*:}
	done' >/dev/null 2>&1
}
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	[ -e "/run/egress-sim/$W" ] && rules_off
	cleanup_worlds
	rm -rf "$TMPD"
}
trap cleanup EXIT

# start_probe NAME ARGS...: nfq-probe in the host netns (egress-sim exec
# becomes the probe: $! is the probe itself), output in $TMPD/NAME; waits
# until it says ready.
start_probe() {
	local out=$TMPD/$1
	shift
	"$SIM" exec "$W" host -- "$PROBE" "$@" >"$out" 2>&1 &
	PROBE_PID=$!
	PIDS+=("$PROBE_PID")
	for _ in $(seq 50); do
		grep -q '^ready' "$out" && return 0
		sleep 0.1
	done
	return 1
}
# wait_probe: its exit status
wait_probe() {
	wait "$PROBE_PID"
}
# udp PLACE SPORT MSG [DST]: one datagram to the echo service from source
# port SPORT; prints whatever comes back within 2 s.
udp() {
	in_world "$W" "$1" socat -T 2 - "UDP:${4:-$ECHO:9999},sourceport=$2" <<<"$3" 2>/dev/null
}
udp_as() { # udp as uid 65534
	in_world "$W" host setpriv --reuid 65534 --regid 65534 --clear-groups \
		socat -T 2 - "UDP:$ECHO:9999,sourceport=$1" <<<"$2" 2>/dev/null
}
LOG=/run/egress-sim/$W/services.jsonl
# Whether the echo service saw a datagram from source port $1.
echo_saw() { grep '"svc":"udp_echo"' "$LOG" | grep -q ":$1\""; }
pkt() { grep "^pkt n=$2 " "$TMPD/$1"; }
ifindex() { ipt ip -o link show dev "$1" | cut -d: -f1; }
queue_line() { ipt awk -v q=$Q '$1 == q' /proc/net/netfilter/nfnetlink_queue; }

check "up with one container" world_up "$W" --containers 1
check "test chains added (mangle and nat, OUTPUT and PREROUTING)" rules_on
DOCKER0=$(ifindex docker0)

# ---- host sockets: drop, repeat with a mark, accept ------------------------

check "consumer of queue $Q ready" \
	start_probe host "$Q" "drop,repeat:$MARK,accept"
check_eq "queue bound: copy whole packets (mode 2, range 65531)" "2 65531" \
	"$(queue_line | awk '{print $4, $5}')"
out=$(ipt "$PROBE" "$Q" accept --timeout 2 2>&1)
check_eq "a second consumer of the queue fails (exit 3)" 3 $?
check_match "... saying the queue is taken" \
	"queue $Q is already bound by another process" "$out"

check_eq "drop: the client gets no echo" "" "$(udp host 41001 one)"
check_fails "drop: nothing reached the echo service" echo_saw 41001
check_eq "repeat with the mark: the echo comes back" two "$(udp host 41002 two)"
check "... from the service" echo_saw 41002
check_eq "accept: the echo comes back" three "$(udp host 41003 three)"
check "... from the service" echo_saw 41003
check "the consumer saw its 3 packets and exited" wait_probe
p1=$(pkt host 1)
check_match "packet 1: LOCAL_OUT hook, no mark yet, outgoing device, root" \
	"^pkt n=1 id=[0-9]+ hook=3 mark=0x0 indev=0 outdev=[1-9][0-9]* uid=0 " "$p1"
check_match "packet 1: the UDP tuple and verdict" \
	"proto=17 src=[0-9.]+:41001 dst=$ECHO:9999 .* verdict=drop rc=0$" "$p1"
check_match "packet 2: repeat with the mark given" \
	"src=[0-9.]+:41002 .* verdict=repeat:$MARK rc=0$" "$(pkt host 2)"
check_match "packet 3: accept" "src=[0-9.]+:41003 .* verdict=accept rc=0$" \
	"$(pkt host 3)"
check_eq "the repeated packet came back marked and was not queued again" "" \
	"$(pkt host 4)"
check_match "stats: 3 packets, 3 verdicts, nothing malformed or missed" \
	"^stats packets=3 verdicts=3 enobufs=0 errors=0 malformed=0 missed=0$" \
	"$(grep '^stats' "$TMPD/host")"
check_eq "closing the consumer unbinds the queue" "" "$(queue_line)"

# ---- a bridged container: PREROUTING on docker0 -------------------------------

check "consumer ready" start_probe cont "$Q" "drop,repeat:$MARK,accept"
check_eq "container, drop: no echo" "" "$(udp container:0 42001 one)"
check_fails "container, drop: nothing reached the echo service" echo_saw 42001
check_eq "container, repeat with the mark: echo" two "$(udp container:0 42002 two)"
check_eq "container, accept: echo" three "$(udp container:0 42003 three)"
check "the consumer saw 3 packets" wait_probe
check_match "container packet: PRE_ROUTING hook, in on docker0, no uid" \
	"^pkt n=1 id=[0-9]+ hook=0 mark=0x0 indev=$DOCKER0 outdev=0 uid=- proto=17 src=172\.17\.0\.2:42001 dst=$ECHO:9999 .* verdict=drop rc=0$" \
	"$(pkt cont 1)"
check_match "container packets 2 and 3 from the container too" \
	"src=172\.17\.0\.2:42002 .*repeat.*src=172\.17\.0\.2:42003 .*accept" \
	"$(pkt cont 2) $(pkt cont 3)"

# ---- socket owner; missing and second verdicts ------------------------------

check "consumer ready" start_probe uid "$Q" "accept,accept,none,twice"
check_eq "a uid 65534 client's datagram goes out" a "$(udp_as 43001 a)"
check_eq "a root client's datagram goes out" b "$(udp host 43002 b)"
check_eq "no verdict from the callback: dropped" "" "$(udp host 43003 c)"
check_fails "... and it never reached the service" echo_saw 43003
check_eq "accept, then a second verdict: the first one holds" d \
	"$(udp host 43004 d)"
check "the consumer saw 4 packets" wait_probe
check_match "uid 65534 is reported for the setpriv client" \
	"src=[0-9.]+:43001 " "$(pkt uid 1 | grep ' uid=65534 ')"
check_match "uid 0 for the root client" " uid=0 .*:43002 " "$(pkt uid 2)"
check_match "the second verdict was refused (EALREADY)" \
	"verdict=twice rc=0 second=-1:EALREADY$" "$(pkt uid 4)"
check_match "stats: one missed verdict, 4 verdicts sent (one automatic)" \
	"^stats packets=4 verdicts=4 .* malformed=0 missed=1$" \
	"$(grep '^stats' "$TMPD/uid")"

# ---- the consumer dies with a packet held: fail closed ----------------------

check "consumer ready" start_probe stall "$Q" stall --timeout 30
udp host 44001 held >"$TMPD/held" &
for _ in $(seq 50); do
	pkt stall 1 >/dev/null && break
	sleep 0.1
done
check_match "the consumer holds packet 1" "src=[0-9.]+:44001 .*verdict=stall" \
	"$(pkt stall 1)"
kill -9 "$PROBE_PID"
wait "$PROBE_PID" 2>/dev/null
wait
check_eq "killed consumer: the held packet got no echo" "" "$(cat "$TMPD/held")"
check_fails "... and never reached the service" echo_saw 44001
check_eq "the queue is unbound" "" "$(queue_line)"
check_eq "later host packets are dropped (no bypass)" "" "$(udp host 44002 x)"
check_eq "later container packets are dropped" "" "$(udp container:0 44003 x)"
check_fails "... none reached the service" bash -c \
	"grep '\"svc\":\"udp_echo\"' '$LOG' | grep -Eq ':4400[23]\"'"
ipt iptables -t mangle -D OUTPUT -j NFQT_OUT
check_eq "control: without the queue rule the same datagram goes out" y \
	"$(udp host 44004 y)"
ipt iptables -t mangle -I OUTPUT 1 -j NFQT_OUT

# ---- conntrack: the original destination of REDIRECTed queries -------------

check "listener on 8053 ready" start_probe ct ct-listen 8053 --count 4
check_eq "host query to $DNS:53 (REDIRECTed) is answered by the listener" \
	ok "$(udp host 45001 q "$DNS:53")"
check_eq "direct host query to 127.0.0.1:8053 too" ok \
	"$(udp host 45002 q 127.0.0.1:8053)"
check_eq "container query to $DNS:53 (REDIRECTed on docker0)" ok \
	"$(udp container:0 45003 q "$DNS:53")"
check_eq "direct container query to 172.17.0.1:8053" ok \
	"$(udp container:0 45004 q 172.17.0.1:8053)"
check "the listener saw 4 datagrams" wait_probe
ct=$(cat "$TMPD/ct")
check_match "host, REDIRECTed: arrived on 127.0.0.1, aimed at $DNS:53, NATed" \
	"dgram local=127\.0\.0\.1:8053 peer=([0-9.]+):45001 found orig_src=\1:45001 orig_dst=$DNS:53 natted=true" \
	"$ct"
check_match "host, direct: not NATed" \
	"dgram local=127\.0\.0\.1:8053 peer=127\.0\.0\.1:45002 found orig_src=127\.0\.0\.1:45002 orig_dst=127\.0\.0\.1:8053 natted=false" \
	"$ct"
check_match "container, REDIRECTed: arrived on 172.17.0.1, aimed at $DNS:53" \
	"dgram local=172\.17\.0\.1:8053 peer=172\.17\.0\.2:45003 found orig_src=172\.17\.0\.2:45003 orig_dst=$DNS:53 natted=true" \
	"$ct"
check_match "container, direct: not NATed" \
	"dgram local=172\.17\.0\.1:8053 peer=172\.17\.0\.2:45004 found orig_src=172\.17\.0\.2:45004 orig_dst=172\.17\.0\.1:8053 natted=false" \
	"$ct"
check_eq "the resolver never saw the REDIRECTed queries" "" \
	"$(grep '"svc":"dns"' "$LOG" | grep -E ':4500[13]"')"
peer=$(sed -En 's/.*peer=([0-9.]+):45001 .*/\1/p' <<<"$ct")
check_match "a later lookup of the same flow finds it (ct mode)" \
	"^ct found orig_src=$peer:45001 orig_dst=$DNS:53 natted=true$" \
	"$(ipt "$PROBE" ct udp 127.0.0.1 8053 "$peer" 45001)"
out=$(ipt "$PROBE" ct udp 127.0.0.1 8053 "$peer" 45999)
check_eq "an unknown tuple is ENOENT (exit 1)" "1 ct error ENOENT" "$? $out"
check_match "the original tuple is not a reply tuple: ENOENT" "error ENOENT" \
	"$(ipt "$PROBE" ct udp "$peer" 45001 "$DNS" 53)"
check_match "a TCP lookup of the UDP flow: ENOENT" "error ENOENT" \
	"$(ipt "$PROBE" ct tcp 127.0.0.1 8053 "$peer" 45001)"

# ---- teardown ----------------------------------------------------------------

rules_off
check_eq "the test's chains are gone" "" \
	"$(ipt iptables-save | grep NFQT_)"
finish
