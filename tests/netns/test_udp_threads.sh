#!/usr/bin/env bash
# The UDP side on two threads (--udp-threads 2): the rules balance over two
# queues by CPU (--queue-balance 1:2 --queue-cpu-fanout) and both are bound;
# bursts of DNS queries from clients pinned to CPU 0 and to CPU 1 land on
# both threads and every query is queued once, answered once and logged;
# the status's per-thread counters add up to its totals; the BPF programs
# record none of the daemon's own (marked) sockets; two containers
# with the same source port and DNS id on different CPUs (so on different
# threads) each get their own answer; non-DNS UDP is judged on either
# thread; `egressctl stop` ends every thread, unbinds both queues and
# removes the chains.  Needs two CPUs (a client on each).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/egressd_lib.sh"
require_root
require_python3 "UDP/DNS clients"
if [ "$(nproc)" -lt 2 ]; then
	echo "not ok - this test needs two CPUs (it has $(nproc)): clients on CPU 0 and CPU 1 reach two queues"
	exit 1
fi
TOOL=$(readlink -f "$(dirname "$0")/udp_tool.py")

W=$(world_name t)
check "up" world_up "$W" --containers 2
D=$(ed_dir "$W")
mkdir -p "$D"
POL=$D/policy.txt
cat >"$POL" <<'EOF'
198.51.100.53:53/udp
203.0.113.10:9999/udp
example.test
other.test
dns:*.sim.test
EOF
egressd_world "$W"

status_field() {
	ed_ctl "$W" status | python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d=d[k] if not k.isdigit() else d[int(k)]
print(d)' "$1"
}
# thread_sum FIELD: the field added up over status udp.threads
thread_sum() {
	ed_ctl "$W" status | python3 -c 'import json,sys
print(sum(t[sys.argv[1]] for t in json.load(sys.stdin)["udp"]["threads"]))' "$1"
}
queues_bound() { in_host "$W" awk '{print $1}' /proc/net/netfilter/nfnetlink_queue | sort -n | tr '\n' ' '; }

# burst PLACE CPU N TAG: N queries at once for names TAG-I.sim.test from
# N sockets of one process pinned to CPU; prints how many got the
# resolver's own answer (NXDOMAIN: allowed by the policy, unknown to the
# world's zone; egressd itself would say REFUSED or SERVFAIL) with their
# own id
burst() {
	"$SIM" exec "$W" "$1" -- taskset -c "$2" python3 - "$3" "$4" <<'EOF'
import select, socket, struct, sys, time
n, tag = int(sys.argv[1]), sys.argv[2]
socks, want = [], {}
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    qid = (i * 7919 + 1) & 0xffff
    name = b"".join(bytes([len(p)]) + p for p in ("%s-%d.sim.test" % (tag, i)).encode().split(b".")) + b"\0"
    s.sendto(struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + b"\0\x01\0\x01", ("198.51.100.53", 53))
    socks.append(s)
    want[s] = qid
ok, end = 0, time.time() + 10
while want and time.time() < end:
    r, _, _ = select.select(list(want), [], [], 0.5)
    for s in r:
        m = s.recv(65535)
        # the world's resolver knows no such name: NXDOMAIN is its answer
        if struct.unpack(">H", m[:2])[0] == want[s] and m[3] & 0xf == 3:
            ok += 1
        del want[s]
print(ok)
EOF
}

check "egressd starts with two UDP threads" egressd_start "$W" "$POL" --udp-threads 2
rules=$(nf_snapshot "$W")
check_eq "every NFQUEUE rule balances over queues 1 and 2 by CPU" 0 \
	"$(grep -F -- '-j NFQUEUE' <<<"$rules" | grep -vcF -- '--queue-balance 1:2 --queue-cpu-fanout')"
check "there are NFQUEUE rules" grep -qF -- '--queue-balance 1:2' <<<"$rules"
check_eq "both queues are bound" "1 2 " "$(queues_bound)"
check_eq "status lists two threads" 2 \
	"$(ed_ctl "$W" status | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["udp"]["threads"]))')"
check_eq "status: thread 1 has queue 2" 2 "$(status_field udp.threads.1.queue)"

# ---- bursts from both CPUs ---------------------------------------------------
N=100
q0=$(status_field udp.queue.packets)
d0=$(status_field udp.dns.queries)
a0=$(status_field udp.dns.answers)
burst container:0 0 "$N" cpua >"$D/burst0" &
p0=$!
burst container:1 1 "$N" cpub >"$D/burst1" &
p1=$!
wait "$p0" "$p1"
check_eq "every query of the burst from CPU 0 is answered" "$N" "$(cat "$D/burst0")"
check_eq "every query of the burst from CPU 1 is answered" "$N" "$(cat "$D/burst1")"
check_eq "each query was queued once (one verdict each)" $((2 * N)) $(($(status_field udp.queue.packets) - q0))
check_eq "each query reached the DNS proxy once" $((2 * N)) $(($(status_field udp.dns.queries) - d0))
check_eq "each query got one answer" $((2 * N)) $(($(status_field udp.dns.answers) - a0))
check "thread 0 handled packets" test "$(status_field udp.threads.0.packets)" -gt 0
check "thread 1 handled packets" test "$(status_field udp.threads.1.packets)" -gt 0
check "thread 0 proxied queries" test "$(status_field udp.threads.0.queries)" -gt 0
check "thread 1 proxied queries" test "$(status_field udp.threads.1.queries)" -gt 0
check_eq "the threads' packets add up to the total" "$(status_field udp.queue.packets)" "$(thread_sum packets)"
check_eq "the threads' queries add up to the total" "$(status_field udp.dns.queries)" "$(thread_sum queries)"
sleep 0.3
check_eq "every query of both bursts is logged once, allowed" $((2 * N)) \
	"$(ed_log "$W" | grep -F '"type":"dns"' | grep -E '"name":"cpu[ab]-[0-9]+\.sim\.test"' | grep -cF '"policy":"allow"')"
check_eq "and attributed to the bursts' clients (a container cgroup on every line)" $((2 * N)) \
	"$(ed_log "$W" | grep -F '"type":"dns"' | grep -E '"name":"cpu[ab]-[0-9]+\.sim\.test"' |
		grep -E '"cgroup":"[^"]*/docker/[0-9a-f]{64}"' | grep -cE '"pid":[1-9]')"

# ---- the daemon's own sockets are not recorded by the BPF programs -------------
# owners MAP: the owner pid of every entry of a pinned map, one a line
owners() {
	bpftool map dump pinned "$D/pins/$1" -j | python3 -c 'import json,sys
for e in json.load(sys.stdin):
    v = e.get("formatted", {}).get("value")
    if v is not None:
        print(v["tgid"])
    else:
        b = bytes(int(x, 16) for x in e["value"])
        print(int.from_bytes(b[:4], "little"))'
}
check "the BPF maps can be read" bpftool map dump pinned "$D/pins/map_conn4" -j
check_eq "no cookie entry names the daemon (its upstream sockets carry its mark)" 0 \
	"$(owners map_cookie | grep -cx "$EGRESSD_PID")"
check_eq "no tuple entry names the daemon" 0 "$(owners map_conn4 | grep -cx "$EGRESSD_PID")"
check "the clients' sockets are recorded" test "$(owners map_conn4 | grep -vcx "$EGRESSD_PID")" -gt 0

# ---- same source port and id on two threads at once ---------------------------
for i in 1 2 3; do
	"$SIM" exec "$W" container:0 -- taskset -c 0 python3 "$TOOL" query 198.51.100.53 example.test \
		--sport $((40060 + i)) --id 4660 >"$D/same0" &
	p0=$!
	"$SIM" exec "$W" container:1 -- taskset -c 1 python3 "$TOOL" query 198.51.100.53 other.test \
		--sport $((40060 + i)) --id 4660 >"$D/same1" &
	p1=$!
	wait "$p0" "$p1"
	check_eq "same port and id ($i): the client on CPU 0 gets its own answer" \
		"rcode 0 answers 198.51.100.10" "$(cat "$D/same0")"
	check_eq "same port and id ($i): the client on CPU 1 gets its own answer" \
		"rcode 0 answers 203.0.113.10" "$(cat "$D/same1")"
done

# ---- non-DNS UDP on either thread -------------------------------------------------
for cpu in 0 1; do
	out=$("$SIM" exec "$W" container:0 -- taskset -c "$cpu" python3 "$TOOL" send 203.0.113.10 9999 3)
	check_eq "an allowed UDP flow from CPU $cpu gets its echoes" "echoes 3" "$out"
	out=$("$SIM" exec "$W" container:0 -- taskset -c "$cpu" python3 "$TOOL" send 203.0.113.10 9998 2 --wait 0.3)
	check_eq "a blocked UDP flow from CPU $cpu gets nothing" "echoes 0" "$out"
done

# ---- clean stop ---------------------------------------------------------------------
ed_ctl "$W" stop >/dev/null 2>&1
stopped=no
for _ in $(seq 100); do
	kill -0 "$EGRESSD_PID" 2>/dev/null || {
		stopped=yes
		break
	}
	sleep 0.05
done
check_eq "egressctl stop ends the daemon and all its threads" yes "$stopped"
wait "$EGRESSD_PID" 2>/dev/null
check_eq "no queue is bound after the stop" "" "$(queues_bound)"
check_eq "no EGRESS chain is left" 0 "$(nf_snapshot "$W" | grep -c EGRESS)"
finish
