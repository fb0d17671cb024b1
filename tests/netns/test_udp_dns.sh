#!/usr/bin/env bash
# The daemon's UDP side against the UDP rows of the support matrix: DNS and
# non-DNS UDP from a host process, a host-network container (a host-netns
# process in a Docker-like cgroup) and a bridged container - queued,
# attributed, judged; blocked names get REFUSED and never reach the
# internet's DNS server (its log proves it); allowed UDP reaches the echo
# service and later packets of the flow skip the queue (the queue's packet
# counter); blocked UDP is dropped every time.  DNS over TCP judged the
# same way; raw TCP to an address learned from an allowed answer matches
# the host rule until the cache entry expires; a query sent to the DNS
# port directly is refused; ICMP dropped and logged unless --allow-icmp; a
# stub resolver on loopback is judged and its own upstream queries
# exempted by uid; two clients with the same port and id are told apart; a
# forged reply or one with a wrong id is ignored; malformed queries leave
# the daemon up; killed, the daemon fails closed for UDP, and --cleanup
# removes its chains.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/egressd_lib.sh"
require_root
require_python3 "UDP/DNS clients"
TOOL=$(readlink -f "$(dirname "$0")/udp_tool.py")

W=$(world_name u)
check "up" world_up "$W" --containers 2
D=$(ed_dir "$W")
mkdir -p "$D"
SVC=/run/egress-sim/$W/services.jsonl
POL=$D/policy.txt
cat >"$POL" <<'EOF'
198.51.100.53:53/udp
dns:web.sim.test
127.0.0.53:53/udp
203.0.113.10:53/udp
198.51.100.14:53/udp
203.0.113.10:9999/udp
example.test
other.test
echo.sim.test:7
EOF

BG=()
egressd_world "$W"
on_cleanup() {
	for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
}

HOSTNET_CG=docker/$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
run_in() {
	local place=$1
	shift
	case $place in
	host) "$SIM" exec "$W" host -- "$@" ;;
	hostnet) "$SIM" exec "$W" host --cgroup "$HOSTNET_CG" -- "$@" ;;
	container) "$SIM" exec "$W" container:0 -- "$@" ;;
	container1) "$SIM" exec "$W" container:1 -- "$@" ;;
	esac
}
# with_pid PLACE TAG CMD...: CMD as the process whose pid lands in $D/pid.TAG
with_pid() {
	local place=$1 tag=$2
	shift 2
	run_in "$place" bash -c 'echo $$ >"$0"; exec "$@"' "$D/pid.$tag" "$@"
}
tool() {
	local place=$1
	shift
	run_in "$place" python3 "$TOOL" "$@"
}
# JSON field of a log line: jf LINE KEY
jf() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print(json.dumps(v) if isinstance(v,(list,dict)) or v is None else v)' "$1" "$2"; }
# the last log line of TYPE mentioning TEXT
last_line() {
	sleep 0.3
	ed_log "$W" | grep -F "\"type\":\"$1\"" | grep -F -- "$2" | tail -n 1
}
count_lines() { ed_log "$W" | grep -F "\"type\":\"$1\"" | grep -cF -- "$2"; }
svc_queries() { grep -F '"svc":"dns"' "$SVC" | grep -cF "\"name\":\"$1\""; }
status_field() {
	ed_ctl "$W" status | python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d=d[k]
print(d)' "$1"
}

check "egressd starts" egressd_start "$W" "$POL" --first-bytes-ms 300 \
	--dns-ttl-min 1 --dns-ttl-max 2 --exempt-uid 4242
sleep 0.2

# ---- DNS from each row ------------------------------------------------------
n=0
for place in host hostnet container; do
	n=$((n + 1))
	dq0=$(status_field udp.attrib_diag_queries)
	ds0=$(status_field udp.attrib_diag_skipped)
	out=$(with_pid "$place" "dns$n" python3 "$TOOL" query 198.51.100.53 example.test)
	check_eq "$place: allowed name through an allowed resolver answers" \
		"rcode 0 answers 198.51.100.10" "$out"
	# sock_diag looks in the daemon's netns: asked for a host process's
	# query (the connected-UDP ordering trap), skipped for a container's
	dq=$(($(status_field udp.attrib_diag_queries) - dq0))
	ds=$(($(status_field udp.attrib_diag_skipped) - ds0))
	case $place in
	container) check_eq "$place: attributed without sock_diag" "0 1" "$dq $ds" ;;
	*) check_eq "$place: attributed with sock_diag" "1 0" "$dq $ds" ;;
	esac
	line=$(last_line dns '"name":"example.test"')
	check_eq "$place: dns line allow" allow "$(jf "$line" policy)"
	check_eq "$place: dns line names the resolver asked" "198.51.100.53" "$(jf "$line" dst_ip)"
	check_eq "$place: dns line attributed to the client" "$(cat "$D/pid.dns$n")" "$(jf "$line" pid)"
	resp=$(last_line dns_response '"name":"example.test"')
	check_eq "$place: dns_response carries the answers" '["198.51.100.10"]' "$(jf "$resp" answers)"
	case $place in
	host) check_match "$place: cgroup is the host's" '/host$' "$(jf "$line" cgroup)" ;;
	*) check_match "$place: cgroup is a container's" '/docker/[0-9a-f]{64}$' "$(jf "$line" cgroup)" ;;
	esac

	before=$(svc_queries "blocked$n.sim.test")
	out=$(tool "$place" query 198.51.100.53 "blocked$n.sim.test")
	check_eq "$place: a name no rule allows gets REFUSED" "rcode 5 answers " "$out"
	check_eq "$place: the refused name never reached the DNS server" "$before" "$(svc_queries "blocked$n.sim.test")"
	line=$(last_line dns "\"name\":\"blocked$n.sim.test\"")
	check_eq "$place: refused query logged as deny" deny "$(jf "$line" policy)"

	out=$(tool "$place" query 203.0.113.53 example.test)
	check_eq "$place: a resolver no udp rule allows gets REFUSED" "rcode 5 answers " "$out"
	line=$(last_line dns '"dst_ip":"203.0.113.53"')
	check_eq "$place: logged with the resolver asked" deny "$(jf "$line" policy)"
done
check_eq "the second resolver never saw a query" 0 \
	"$(grep -F '"svc":"dns"' "$SVC" | grep -cF '"local":"203.0.113.53')"

# ---- non-DNS UDP: allowed, fast path, blocked -------------------------------
for place in host hostnet container; do
	q0=$(status_field udp.queue.packets)
	echo_before=$(grep -cF '"svc":"udp_echo"' "$SVC")
	out=$(with_pid "$place" "udp$place" python3 "$TOOL" send 203.0.113.10 9999 5)
	check_eq "$place: allowed UDP flow gets its 5 echoes" "echoes 5" "$out"
	q1=$(status_field udp.queue.packets)
	check_eq "$place: only the flow's first packet was queued (fast path)" 1 $((q1 - q0))
	line=$(last_line udp '"dst_port":9999')
	check_eq "$place: udp line allow" allow "$(jf "$line" policy)"
	check_eq "$place: udp line attributed" "$(cat "$D/pid.udp$place")" "$(jf "$line" pid)"

	c0=$(count_lines udp '"dst_port":9998')
	out=$(tool "$place" send 203.0.113.10 9998 3 --wait 0.3)
	check_eq "$place: blocked UDP gets nothing" "echoes 0" "$out"
	sleep 0.3
	check_eq "$place: every blocked packet is queued, dropped and logged" 3 $(($(count_lines udp '"dst_port":9998') - c0))
done

# ---- DNS over TCP ----------------------------------------------------------
out=$(tool container query 198.51.100.53 other.test --tcp)
check_eq "DNS over TCP: allowed name answers" "rcode 0 answers 203.0.113.10" "$out"
line=$(last_line dns '"name":"other.test"')
check_eq "DNS over TCP: dns line allow with the resolver" "allow 198.51.100.53" "$(jf "$line" policy) $(jf "$line" dst_ip)"
before=$(svc_queries tcpblocked.sim.test)
out=$(tool host query 198.51.100.53 tcpblocked.sim.test --tcp)
check_eq "DNS over TCP: blocked name REFUSED" "rcode 5 answers " "$out"
check_eq "DNS over TCP: blocked name never reached the server" "$before" "$(svc_queries tcpblocked.sim.test)"
out=$(tool host query 203.0.113.53 example.test --tcp)
check_eq "DNS over TCP: the resolver check uses the udp rules" "rcode 5 answers " "$out"
out=$(tool host raw 198.51.100.53 53 "$(printf 'GET / HTTP/1.0\r\n\r\n' | od -An -tx1 | tr -d ' \n')" --tcp)
check_eq "DNS over TCP: bytes that are not DNS close the connection" closed "$out"

# ---- the cache: raw TCP to an address learned from an allowed answer -------
tcp7() { run_in host bash -c 'exec 3<>/dev/tcp/203.0.113.10/7 && echo hi >&3 && timeout 2 head -n1 <&3' 2>/dev/null; }
sleep 2.5 # entries from earlier answers expire (--dns-ttl-max 2)
check_eq "raw TCP to an unnamed address is denied" "" "$(tcp7)"
out=$(tool host query 198.51.100.53 echo.sim.test)
check_eq "echo.sim.test resolves" "rcode 0 answers 203.0.113.10" "$out"
check_eq "raw TCP to the learned address matches echo.sim.test:7" hi "$(tcp7)"
line=$(last_line tcp '"dst_port":7')
check_eq "the tcp line says allow" allow "$(jf "$line" policy)"
sleep 2.5
check_eq "after the entry expires the same TCP is denied again" "" "$(tcp7)"

# ---- direct to the DNS port, loopback stub, same port and id ---------------
out=$(tool host query 127.0.0.1 example.test --port 8053)
check_eq "a query sent to the DNS port directly is REFUSED" "rcode 5 answers " "$out"
line=$(last_line dns '"error":"direct_to_proxy"')
check_match "and logged as direct_to_proxy" '"policy":"deny"' "$line"

# A stub resolver on 127.0.0.53 running as the exempt uid forwards upstream
# (port 53 without privileges: a sysctl of the world's netns only).
in_world "$W" host sysctl -qw net.ipv4.ip_unprivileged_port_start=53
run_in host setpriv --reuid 4242 --regid 4242 --clear-groups \
	socat UDP4-RECVFROM:53,bind=127.0.0.53,fork UDP4:198.51.100.53:53 &
BG+=($!)
sleep 0.5
out=$(tool host query 127.0.0.53 example.test)
check_eq "a query to the loopback stub answers" "rcode 0 answers 198.51.100.10" "$out"
line=$(last_line dns '"dst_ip":"127.0.0.53"')
check_eq "the query to the stub was judged" allow "$(jf "$line" policy)"
check_eq "the stub's own upstream query (exempt uid) was not intercepted" 0 \
	"$(ed_log "$W" | grep -F '"type":"dns"' | grep -F '"dst_ip":"198.51.100.53"' | grep -cF '"exe":"/usr/bin/socat"')"
out=$(tool host query 127.0.0.53 stubblocked.sim.test)
check_eq "a blocked name through the stub is REFUSED" "rcode 5 answers " "$out"

# Two containers, same source port and id, different names, at once.
tool container query 198.51.100.53 example.test --sport 40053 --id 4660 >"$D/same0" &
p0=$!
tool container1 query 198.51.100.53 other.test --sport 40053 --id 4660 >"$D/same1" &
p1=$!
wait "$p0" "$p1"
check_eq "same port and id: the first client gets its own answer" "rcode 0 answers 198.51.100.10" "$(cat "$D/same0")"
check_eq "same port and id: the second client gets its own answer" "rcode 0 answers 203.0.113.10" "$(cat "$D/same1")"

# The daemon's own upstream query leaves a conntrack entry (its source port
# to the resolver, not redirected) for a while after its socket closed.  A
# host process that binds that port and asks the same resolver rides that
# entry past nat: the consumer still marks it DNS, and filter drops a DNS
# packet whose flow was not redirected, so it never reaches the resolver.
tool container query 198.51.100.53 web.sim.test >/dev/null
sleep 0.2
uport=$(grep -F '"svc":"dns"' "$SVC" | grep -F '"name":"web.sim.test"' | tail -n 1 |
	python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["peer"].rsplit(":",1)[1])')
before=$(svc_queries bypass.sim.test)
out=$(tool host query 198.51.100.53 bypass.sim.test --sport "$uport")
check_eq "a host query from the daemon's last upstream port ($uport) gets no answer" timeout "$out"
check_eq "... and never reaches the resolver" "$before" "$(svc_queries bypass.sim.test)"

# ---- a lying resolver ---------------------------------------------------------
in_world "$W" internet python3 -u "$TOOL" liar 203.0.113.10 198.51.100.10 >"$D/liar.out" 2>&1 &
BG+=($!)
for _ in $(seq 50); do grep -q ready "$D/liar.out" 2>/dev/null && break; sleep 0.1; done
ign0=$(status_field udp.dns.ignored_replies)
out=$(tool host query 203.0.113.10 example.test)
check_eq "a forged reply from another address and a wrong id are ignored" "rcode 0 answers 198.51.100.68" "$out"
ign1=$(status_field udp.dns.ignored_replies)
check "the wrong-id reply was counted as ignored" test $((ign1 - ign0)) -ge 1

# An allowed resolver with nothing listening: SERVFAIL, at once.
out=$(tool host query 198.51.100.14 example.test)
check_eq "a resolver that refuses the datagram gives SERVFAIL" "rcode 2 answers " "$out"

# ---- hostile input -------------------------------------------------------------
# truncated header; a question whose name points at itself; qdcount 65535
for hex in 1234 \
	123401000001000000000000c00c00010001 \
	12340100ffff000000000000037777770000010001; do
	tool host raw 198.51.100.53 53 "$hex" >/dev/null
	tool host raw 127.0.0.1 8053 "$hex" >/dev/null
	tool host raw 198.51.100.53 53 "$hex" --tcp >/dev/null
done
check_eq "after malformed queries the daemon still answers" "rcode 0 answers 198.51.100.10" \
	"$(tool host query 198.51.100.53 example.test)"
check "malformed packets to port 53 are logged as not_dns" \
	grep -qF '"error":"not_dns"' "$D/connections.jsonl"

# ---- ICMP and other protocols ---------------------------------------------------
# ICMP datagram sockets (no raw socket needed), in the world's netns only.
for place in host container:0; do
	in_world "$W" "$place" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
done
c0=$(count_lines ip '"protocol":1')
check_eq "ICMP echo from the world is dropped" timeout "$(tool host ping 203.0.113.10)"
check_eq "ICMP echo from a container is dropped" timeout "$(tool container ping 203.0.113.10)"
sleep 0.3
check "both were logged as type ip, protocol 1, deny" test $(($(count_lines ip '"protocol":1') - c0)) -ge 2

# ---- audit-free restart with --allow-icmp ------------------------------------------
egressd_stop "$W"
check "egressd restarts with --allow-icmp" egressd_start "$W" "$POL" --allow-icmp --exempt-uid none
check_eq "with --allow-icmp the echo comes back" reply "$(tool host ping 203.0.113.10)"

egressd_stop "$W"
check "egressd restarts with --audit" egressd_start "$W" "$POL" --audit
out=$(tool container query 198.51.100.53 telemetry.sim.test)
check_eq "audit: a name no rule allows is resolved" "rcode 0 answers 198.51.100.10" "$out"
line=$(last_line dns '"name":"telemetry.sim.test"')
check_eq "audit: ... and logged as deny" deny "$(jf "$line" policy)"
# A blocked flow goes through in audit mode: the echo service's port is not
# in this policy (the fast path is then taken like any allowed flow).
printf '198.51.100.53:53/udp\n' >"$D/audit.txt"
egressd_stop "$W"
check "egressd restarts with --audit and a resolver-only policy" egressd_start "$W" "$D/audit.txt" --audit
check_eq "audit: UDP no rule allows passes" "echoes 2" "$(tool container send 203.0.113.10 9999 2)"
line=$(last_line udp '"dst_port":9999')
check_eq "audit: ... logged once as deny" deny "$(jf "$line" policy)"

# ---- fail closed ----------------------------------------------------------------------
kill -9 "$EGRESSD_PID"
wait "$EGRESSD_PID" 2>/dev/null
e0=$(grep -cF '"svc":"udp_echo"' "$SVC")
check_eq "daemon killed: UDP from a container is dropped" "echoes 0" "$(tool container send 203.0.113.10 9999 2 --wait 0.3)"
check_eq "daemon killed: UDP from the host is dropped" "echoes 0" "$(tool host send 203.0.113.10 9999 2 --wait 0.3)"
check_eq "daemon killed: DNS gets no answer" timeout "$(tool host query 198.51.100.53 example.test)"
check_eq "nothing reached the echo service" "$e0" "$(grep -cF '"svc":"udp_echo"' "$SVC")"
st=$(ed_ctl "$W" status 2>&1)
check_match "egressctl status reports UDP failing closed" 'NOT RUNNING.*UDP.*failing closed' "$(tr '\n' ' ' <<<"$st")"
check "egressd --cleanup removes the chains" in_host "$W" "$EGRESSD" --cleanup --pin-dir "$D/pins"
check_eq "after cleanup no EGRESS chain is left" 0 "$(nf_snapshot "$W" | grep -c EGRESS)"
check_eq "after cleanup UDP flows directly" "echoes 1" "$(tool container send 203.0.113.10 9999 1)"
finish
