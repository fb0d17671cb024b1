#!/usr/bin/env bash
# bench/bench_udp.sh [BUILD_DIR] - egressd's UDP side (NFQUEUE consumer, DNS
# proxy, connmark fast path) against no rules at all, in ONE run, inside a
# simulator world (never the machine's own network namespace; all traffic
# stays inside the world).
#
#   clients  container:0 of the world (a bridged container, docker0), and the
#            world's host netns for one row of each kind; dnsperf (Debian)
#            and bench_udpload (bench/bench_udpload.c)
#   servers  the world's resolver (egress-sim's DNS service, 198.51.100.53,
#            one libevent process that also logs every query), and, in the
#            world's internet netns, bench_udpload's fast servers: a DNS
#            responder on 198.51.100.14:53 (UDP and TCP; every A query gets
#            198.51.100.10) and UDP echo on 198.51.100.13:20000-20064.  The
#            fast servers stand for hosts far away on the internet: they
#            run in the internet netns but outside the world's cgroup, so
#            the BPF programs egressd attaches to that cgroup do not run
#            for their replies (egress-sim's own services are inside it).
#   rows     direct: no egressd, no rules (conntrack is not even loaded in
#            the world's host netns); conntrack only: one conntrack rule
#            there, no egressd (the kernel's share); egressd: the daemon in
#            the world's host netns with a policy allowing both resolvers,
#            the names asked and the echo ports; egressd --no-bpf: the same
#            without attribution and without its BPF programs (the share of
#            attribution); direct again at the end (drift of the shared
#            machine).
#   metrics  DNS: queries/s with dnsperf (-c clients, -q in flight; UDP and
#            DNS over TCP), p50/p99 under that load (dnsperf -v, per query),
#            and the unloaded round trip (one query at a time,
#            bench_udpload dnsq): its p50 difference is the latency egressd
#            adds; refused names (egressd answers REFUSED itself).
#            UDP: new flows per second (each datagram from a new source
#            port to a new 4-tuple, so each is queued, judged, logged and
#            repeated) and their round trip; one established flow (the
#            connmark fast path): datagrams/s with a window in flight and
#            the ping-pong round trip.  CPU of egressd and of the server
#            during each run (% of one core); egressd's peak RSS under all
#            of that load; its queue and DNS counters, to show the packets
#            really took the path the row names.
#   knobs    BENCH_UDP_SECS (each rate, 3), BENCH_DNS_CLIENTS (dnsperf -c, 8),
#            BENCH_DNS_INFLIGHT (dnsperf -q, 64), BENCH_FLOW_CONC (new flows
#            in flight, 32), BENCH_UDP_WINDOW (datagrams in flight on one
#            flow, 32), DNSPERF (the program, dnsperf).
#            BENCH_AB=/path/to/other/egressd: only the container -> fast
#            resolver DNS rows (dnsperf and unloaded), for direct, egressd of
#            BUILD_DIR (a) and that egressd (b), BENCH_ROUNDS rounds (5) in
#            one world, the order of a and b alternating, each ratio taken
#            to the direct run of its own round; medians and ranges, and
#            egressd's CPU per query.  BENCH_AB=- runs a alone;
#            BENCH_AB_C=/path/to/a/third/egressd adds a third (c).
#            BENCH_EGRESSD_ARGS: extra options for every egressd started.
#            BENCH_PROBE='CMD': run by bash -c ($PID the daemon, $VARIANT,
#            $ROUND) during each egressd dnsperf load of the A/B mode,
#            e.g. 'perf record -g -p $PID -o /tmp/dns.$VARIANT.perf'.
#
# Needs root, the built programs (egress-sim, egressd, egressctl,
# bench_udpload), dnsperf, python3 and iptables (scripts/install-deps.sh).
# A row that cannot run says so.  Everything created (world, processes,
# files, rules) is removed on exit, also on failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=$(cd "${1:-build}" && pwd) || exit 1
SIM=$BUILD/egress-sim
EGRESSD=$BUILD/egressd
EGRESSCTL=$BUILD/egressctl
LOAD=$BUILD/bench_udpload
SECS=${BENCH_UDP_SECS:-3}         # each rate measurement
DNS_CLIENTS=${BENCH_DNS_CLIENTS:-8} # dnsperf -c
DNS_INFLIGHT=${BENCH_DNS_INFLIGHT:-64} # dnsperf -q
FLOW_CONC=${BENCH_FLOW_CONC:-32}  # new flows in flight
WINDOW=${BENCH_UDP_WINDOW:-32}    # datagrams in flight on one flow

if [ "$(id -u)" -ne 0 ]; then
	echo "bench_udp: needs root (network namespaces, netfilter, cgroups)" >&2
	exit 1
fi
for f in "$SIM" "$EGRESSD" "$EGRESSCTL" "$LOAD"; do
	[ -x "$f" ] || { echo "bench_udp: $f is not built" >&2; exit 1; }
done
for c in python3 nsenter iptables; do
	command -v "$c" >/dev/null || {
		echo "bench_udp: $c is missing (scripts/install-deps.sh)" >&2
		exit 1
	}
done
DNSPERF=${DNSPERF:-dnsperf} # a path that does not exist shows the rows without it
HAVE_DNSPERF=0
command -v "$DNSPERF" >/dev/null && HAVE_DNSPERF=1

W=benchudp-$$
ST=/run/egress-sim/$W
B=$ST/bench # every file of ours
D=$ST/egressd
CG2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
SIM_RES=198.51.100.53
FAST_RES=198.51.100.14
ECHO_IP=198.51.100.13
ECHO_PORT=20000
ECHO_NPORTS=64                       # flows use 20000..20063
STREAM_PORT=$((ECHO_PORT + ECHO_NPORTS)) # one flow: 20064, never a flows port
ED_PID=
SRV_PIDS=()
WORLD_UP=0
FLOW_NEXT=0 # first flow number of the next flows run: no 4-tuple twice
# DNS clients in the world's host netns bind source ports below the
# ephemeral range (set to 32768-60999 there), a new block for each run.
# egressd's own upstream sockets take ephemeral ports in that netns, and
# their conntrack entries (not NATed, 30 s) outlive them: a host client
# whose query reuses such a 4-tuple matches that entry, the DNS mark's
# REDIRECT (which only acts on new connections) never applies, and the
# query reaches the resolver unjudged.  That is a bug of egressd, not of
# this benchmark; the "egressd judged" column shows it if it happens.
HOST_SPORT=10000

H() { "$SIM" exec "$W" host --keep-mounts -- "$@"; }
C() { "$SIM" exec "$W" container:0 -- "$@"; }
at() { # PLACE CMD...
	local p=$1
	shift
	case $p in
	host) H "$@" ;;
	container) C "$@" ;;
	esac
}
log() { printf '# %s\n' "$*" >&2; }
NOTE=()

ed_ctl() { "$EGRESSCTL" "$1" --control-socket "$D/control.sock" --pin-dir "$D/pins"; }

egressd_stop() {
	[ -n "$ED_PID" ] || return 0
	ed_ctl stop >/dev/null 2>&1
	for _ in $(seq 100); do
		kill -0 "$ED_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill "$ED_PID" 2>/dev/null
	for _ in $(seq 60); do
		kill -0 "$ED_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$ED_PID" 2>/dev/null
	wait "$ED_PID" 2>/dev/null
	H "$EGRESSD" --cleanup --pin-dir "$D/pins" >/dev/null 2>&1
	ED_PID=
}

cleanup() {
	trap - EXIT INT TERM
	egressd_stop
	for p in "${SRV_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ "$WORLD_UP" = 1 ]; then
		mountpoint -q "$D/pins" 2>/dev/null && umount "$D/pins"
		"$SIM" down "$W" >/dev/null 2>&1 || echo "bench_udp: warning: down $W failed" >&2
	fi
	rm -rf "$B"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- process figures ------------------------------------------------------
HZ=$(getconf CLK_TCK)
# ticks PID: user + system CPU ticks of the process (all its threads)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# pct T0 T1 SECONDS: CPU % of one core
pct() { awk -v a="$1" -v b="$2" -v s="$3" -v hz="$HZ" 'BEGIN {
	if (s <= 0) { print "?"; exit } printf "%.0f", (b - a) * 100 / hz / s }'; }
mono() { awk '{print $1}' /proc/uptime; }
# busy: CPU ticks the whole machine spent busy (all cores, every process:
# other work on a shared machine shows here)
busy() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }

# status_get KEY.KEY...: a number from egressctl status (0 if absent)
status_get() {
	ed_ctl status 2>/dev/null | python3 -c 'import json,sys
try:
    d = json.load(sys.stdin)
    for k in sys.argv[1].split("."): d = d[k]
    print(d)
except Exception:
    print(0)' "$1"
}

# run_load ROW SERVER_PID COUNTER CMD...: runs a load command, its output
# into $B/load.out, and records the CPU of egressd and of the server over
# the run and how much COUNTER (an egressctl status key) grew
run_load() {
	local row=$1 spid=$2 counter=$3 e0=0 e1=0 s0 s1 c0=0 c1=0 t0 t1 m0 m1
	shift 3
	if [ -n "$ED_PID" ]; then
		c0=$(status_get "$counter")
		e0=$(ticks "$ED_PID")
	fi
	s0=$(ticks "$spid")
	m0=$(busy)
	t0=$(mono)
	"$@" >"$B/load.out" 2>&1
	t1=$(mono)
	m1=$(busy)
	s1=$(ticks "$spid")
	R[$row.scpu]=$(pct "$s0" "$s1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
	R[$row.mcpu]=$(pct "$m0" "$m1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
	if [ -n "$ED_PID" ]; then
		e1=$(ticks "$ED_PID")
		R[$row.ecpu]=$(pct "$e0" "$e1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
		c1=$(status_get "$counter")
		R[$row.seen]=$((c1 - c0))
	fi
}

kv() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" <<<"$2" | head -n 1; }

# ---- measurements ----------------------------------------------------------
declare -A R # R[row.metric]

# m_dnsperf ROW PLACE SERVER SPID QUERYFILE udp|tcp COUNTER
m_dnsperf() {
	local row=$1 place=$2 srv=$3 spid=$4 file=$5 mode=$6 counter=$7 f=$B/load.out lat
	if [ "$HAVE_DNSPERF" = 0 ]; then
		R[$row.qps]="dnsperf missing"
		return
	fi
	local xport=()
	if [ "$place" = host ]; then
		xport=(-x "$HOST_SPORT")
		HOST_SPORT=$((HOST_SPORT + DNS_CLIENTS))
	fi
	run_load "$row" "$spid" "$counter" at "$place" "$DNSPERF" -m "$mode" -s "$srv" \
		-d "$file" -l "$SECS" -c "$DNS_CLIENTS" -q "$DNS_INFLIGHT" -t 2 -v "${xport[@]}"
	# the summary, without the per-query lines of -v
	grep -v '^>' "$f" >"$B/dnsperf.sum"
	R[$row.qps]=$(awk '/Queries per second:/ {printf "%.0f", $4}' "$B/dnsperf.sum")
	if [ -z "${R[$row.qps]}" ]; then
		R[$row.qps]="failed"
		NOTE+=("$row dnsperf: $(tail -n 3 "$B/dnsperf.sum" | tr '\n' ' ' | head -c 300)")
		return
	fi
	R[$row.codes]=$(sed -n 's/^ *Response codes: *//p' "$B/dnsperf.sum" | sed 's/ ([0-9.]*%)//g; s/,//g')
	R[$row.lost]=$(awk '/Queries lost:/ {print $3}' "$B/dnsperf.sum")
	R[$row.answered]=$(awk '/Queries completed:/ {print $3}' "$B/dnsperf.sum")
	if [ -n "${R[$row.seen]:-}" ] && [ "${R[$row.seen]}" -lt "${R[$row.answered]:-0}" ]; then
		NOTE+=("$row: only ${R[$row.seen]} of ${R[$row.answered]} answered queries were judged by egressd: the others reached the resolver directly")
	fi
	# dnsperf -v: "> RCODE NAME TYPE SECONDS" per answered query
	lat=$(awk '$1 == ">" && $NF ~ /^[0-9.]+$/ {printf "%.0f\n", $NF * 1e6}' "$f" | sort -n |
		awk '{v[NR] = $1} END {
			if (!NR) { print "? ?"; exit }
			printf "%.0f %.0f", v[int(0.50 * (NR - 1)) + 1], v[int(0.99 * (NR - 1)) + 1] }')
	read -r "R[$row.p50]" "R[$row.p99]" <<<"$lat"
	log "$row: ${R[$row.qps]} q/s, p50 ${R[$row.p50]} p99 ${R[$row.p99]} us, codes ${R[$row.codes]}, lost ${R[$row.lost]}, egressd ${R[$row.ecpu]:--}% server ${R[$row.scpu]}%"
}

# m_dnsq ROW PLACE SERVER NAMEFILE: one query at a time (UDP)
m_dnsq() {
	local row=$1 place=$2 srv=$3 file=$4 out xport=() c0 c1
	if [ "$place" = host ]; then
		xport=(-p "$HOST_SPORT")
		HOST_SPORT=$((HOST_SPORT + 1))
	fi
	[ -n "$ED_PID" ] && c0=$(status_get udp.dns.queries)
	out=$(at "$place" "$LOAD" dnsq "$srv" 53 "$file" -c 1 -d "$(awk -v s="$SECS" 'BEGIN {print s / 2}')" "${xport[@]}" 2>&1)
	if ! grep -q '^sent=' <<<"$out"; then
		NOTE+=("$row unloaded: $(head -c 200 <<<"$out")")
		return
	fi
	if [ -n "$ED_PID" ]; then
		c1=$(status_get udp.dns.queries)
		[ $((c1 - c0)) -lt "$(kv ok "$out")" ] &&
			NOTE+=("$row unloaded: only $((c1 - c0)) of $(kv ok "$out") answered queries were judged by egressd")
	fi
	R[$row.u50]=$(kv p50_us "$out")
	R[$row.u99]=$(kv p99_us "$out")
	log "$row unloaded: $out"
}

# m_dns ROW PLACE SERVER SPID [tcp]: the DNS metrics of a row
m_dns() {
	local row=$1 place=$2 srv=$3 spid=$4 mode=${5:-udp} qf=$B/allowed.dnsperf nf=$B/allowed.names counter=udp.dns.queries
	case $row in refused*) qf=$B/refused.dnsperf nf=$B/refused.names ;; esac
	[ "$mode" = tcp ] && counter=counters.dns.allow
	m_dnsperf "$row" "$place" "$srv" "$spid" "$qf" "$mode" "$counter"
	[ "$mode" = udp ] && m_dnsq "$row" "$place" "$srv" "$nf"
}

# m_flows ROW PLACE: new flows
m_flows() {
	local row=$1 place=$2 out
	run_load "$row" "$ECHO_PID" udp.queue.packets at "$place" "$LOAD" flows "$ECHO_IP" "$ECHO_PORT" \
		-n "$ECHO_NPORTS" -c "$FLOW_CONC" -d "$SECS" -f "$FLOW_NEXT" -w 1000
	out=$(cat "$B/load.out")
	if ! grep -q '^sent=' <<<"$out"; then
		R[$row.rate]=failed
		NOTE+=("$row: $(head -c 300 <<<"$out")")
		return
	fi
	FLOW_NEXT=$(kv next "$out")
	R[$row.rate]=$(kv rate "$out")
	R[$row.p50]=$(kv p50_us "$out")
	R[$row.p99]=$(kv p99_us "$out")
	R[$row.lost]=$(kv lost "$out")
	R[$row.sent]=$(kv sent "$out")
	log "$row: $out; egressd ${R[$row.ecpu]:--}% echo ${R[$row.scpu]}% queued ${R[$row.seen]:--}"
}

# m_stream ROW PLACE WINDOW: one flow
m_stream() {
	local row=$1 place=$2 win=$3 out secs=$SECS
	[ "$win" = 1 ] && secs=$(awk -v s="$SECS" 'BEGIN {print s / 2}')
	run_load "$row" "$ECHO_PID" udp.queue.packets at "$place" "$LOAD" stream "$ECHO_IP" "$STREAM_PORT" \
		-c "$win" -d "$secs"
	out=$(cat "$B/load.out")
	if ! grep -q '^sent=' <<<"$out"; then
		R[$row.rate]=failed
		NOTE+=("$row: $(head -c 300 <<<"$out")")
		return
	fi
	R[$row.rate]=$(kv rate "$out")
	R[$row.p50]=$(kv p50_us "$out")
	R[$row.p99]=$(kv p99_us "$out")
	R[$row.lost]=$(kv lost "$out")
	log "$row: $out; egressd ${R[$row.ecpu]:--}% echo ${R[$row.scpu]}% queued ${R[$row.seen]:--}"
}

# ---- the world and the servers ----------------------------------------------
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "world $W: egress-sim up --containers 1 (load average $LOAD0)"
WORLD_UP=1
"$SIM" up "$W" --containers 1 >/dev/null || { echo "bench_udp: egress-sim up failed" >&2; exit 1; }
mkdir -p "$B" "$D"
STATUS=$("$SIM" status "$W")
field() { python3 -c 'import json,sys
d = json.loads(sys.argv[1])
for k in sys.argv[2].split("."): d = d[k]
print(d)' "$STATUS" "$1"; }
INET_NS=/run/netns/$(field netns.internet)
SIM_SVC_PID=$(field services.pid)
WCG=$CG2$(field cgroup.path)

# the names asked: allowed by the policy below and in egress-sim's zone
for n in example.test www.example.test api.sim.test web.sim.test registry.sim.test \
	mirror.sim.test other.test echo.sim.test; do
	echo "$n" >>"$B/allowed.names"
	echo "$n A" >>"$B/allowed.dnsperf"
done
for i in 1 2 3 4 5 6 7 8; do
	echo "blocked$i.bench.test" >>"$B/refused.names"
	echo "blocked$i.bench.test A" >>"$B/refused.dnsperf"
done
cat >"$B/policy.txt" <<EOF
$SIM_RES:53/udp
$FAST_RES:53/udp
$ECHO_IP:*/udp
example.test
www.example.test
*.sim.test
other.test
EOF

srv_start() { # NAME CMD...: a fast server in the internet netns, outside the world's cgroup
	local name=$1
	shift
	nsenter --net="$INET_NS" "$@" >"$B/$name.out" 2>&1 &
	SRV_PIDS+=($!)
	for _ in $(seq 100); do
		grep -q '^ready' "$B/$name.out" 2>/dev/null && return 0
		kill -0 "${SRV_PIDS[-1]}" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench_udp: $name did not start: $(head -c 300 "$B/$name.out")" >&2
	exit 1
}
srv_start dnsd "$LOAD" dnsd "$FAST_RES" 53
DNSD_PID=${SRV_PIDS[-1]}
srv_start echo "$LOAD" echo "$ECHO_IP" "$ECHO_PORT" -n $((ECHO_NPORTS + 1))
ECHO_PID=${SRV_PIDS[-1]}
out=$(C "$LOAD" dnsq "$FAST_RES" 53 "$B/allowed.names" -d 0.2 2>&1)
[ "$(kv ok "$out")" -gt 0 ] 2>/dev/null || { echo "bench_udp: the fast resolver does not answer: $out" >&2; exit 1; }
out=$(C "$LOAD" dnsq "$SIM_RES" 53 "$B/allowed.names" -d 0.2 2>&1)
[ "$(kv noerror "$out")" -gt 0 ] 2>/dev/null || { echo "bench_udp: the world's resolver does not answer: $out" >&2; exit 1; }
log "servers: world resolver $SIM_RES (pid $SIM_SVC_PID), fast resolver $FAST_RES (pid $DNSD_PID), echo $ECHO_IP:$ECHO_PORT+ (pid $ECHO_PID)"
log "$SECS s per rate; dnsperf -c $DNS_CLIENTS -q $DNS_INFLIGHT; $FLOW_CONC new flows in flight; window $WINDOW on one flow"
[ "$HAVE_DNSPERF" = 1 ] || NOTE+=("dnsperf is not installed (scripts/install-deps.sh): no DNS queries/s")

measure_all() { # RUN: every row
	local s=$1
	m_dns "simres.$s" container "$SIM_RES" "$SIM_SVC_PID"
	m_dns "fast.$s" container "$FAST_RES" "$DNSD_PID"
	m_dns "hostfast.$s" host "$FAST_RES" "$DNSD_PID"
	m_dns "tcp.$s" container "$FAST_RES" "$DNSD_PID" tcp
	[ "$s" = egressd ] && m_dns "refused.$s" container "$FAST_RES" "$DNSD_PID"
	m_flows "flows.$s" container
	m_flows "hostflows.$s" host
	m_stream "stream.$s" container "$WINDOW"
	m_stream "ping.$s" container 1
}
measure_udp() { # RUN: the UDP rows of the container
	m_flows "flows.$1" container
	m_stream "stream.$1" container "$WINDOW"
	m_stream "ping.$1" container 1
}

egressd_start() { # [egressd options]
	mkdir -p "$D/pins"
	mountpoint -q "$D/pins" || mount -t bpf bpf "$D/pins"
	rm -f "$D/control.sock"
	# shellcheck disable=SC2086 # BENCH_EGRESSD_ARGS: words on purpose
	"$SIM" exec "$W" host --keep-mounts --cgroup egressd -- "${ED_BIN:-$EGRESSD}" \
		--foreground --policy "$B/policy.txt" --run-dir "$D" --ca-dir "$D/ca" \
		--log "$D/connections.jsonl" --pin-dir "$D/pins" --cgroup "$WCG" \
		--upstream-ca "$("$SIM" ca "$W")" --workers 2 --docker-socket none \
		${BENCH_EGRESSD_ARGS:-} "$@" \
		>>"$D/egressd.err" 2>&1 &
	ED_PID=$!
	for _ in $(seq 200); do
		ed_ctl status >/dev/null 2>&1 && return 0
		kill -0 "$ED_PID" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}

# the world's host netns: the ephemeral range the DNS clients stay below
H sysctl -qw net.ipv4.ip_local_port_range="32768 60999" ||
	{ echo "bench_udp: cannot set the host netns's port range" >&2; exit 1; }

# ---- A/B mode: the fast resolver's DNS rows only, two builds interleaved ----
ab_mode() {
	local rounds=${BENCH_ROUNDS:-5} r x vars=(a) order bin row probe
	[ "$BENCH_AB" != - ] && vars=(a b)
	[ "$BENCH_AB" != - ] && [ -n "${BENCH_AB_C:-}" ] && vars=(a b c)
	for r in $(seq "$rounds"); do
		order=("${vars[@]}")
		# rotate, so each build runs first in turn
		for _ in $(seq $(((r - 1) % ${#vars[@]}))); do order=("${order[@]:1}" "${order[0]}"); done
		log "== round $r: direct ${order[*]}"
		m_dns "fast.direct.$r" container "$FAST_RES" "$DNSD_PID"
		for x in "${order[@]}"; do
			bin=$EGRESSD
			[ "$x" = b ] && bin=$BENCH_AB
			[ "$x" = c ] && bin=$BENCH_AB_C
			row=fast.$x.$r
			if ! ED_BIN=$bin egressd_start; then
				NOTE+=("$row: egressd $bin did not start: $(tail -n 3 "$D/egressd.err" | tr '\n' ' ')")
				egressd_stop
				continue
			fi
			probe=
			if [ -n "${BENCH_PROBE:-}" ]; then
				PID=$ED_PID VARIANT=$x ROUND=$r timeout -s INT "$SECS" bash -c "$BENCH_PROBE" >/dev/null 2>&1 &
				probe=$!
			fi
			m_dns "$row" container "$FAST_RES" "$DNSD_PID"
			[ -n "$probe" ] && wait "$probe" 2>/dev/null
			egressd_stop
		done
	done
	# per variant: the values of every round, then median, min, max
	stats() { sort -g | awk '{v[NR] = $1} END {
		if (!NR) { print "– (none)"; exit }
		printf "%s (%s – %s)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
	echo
	echo "## A/B: $rounds rounds, container → fast resolver, UDP; a = $EGRESSD${BENCH_AB:+, b = $BENCH_AB}${BENCH_AB_C:+, c = $BENCH_AB_C}"
	echo
	echo "| build | q/s | q/s ÷ direct | added unloaded p50 µs | egressd CPU % | egressd CPU µs per query | servfail+lost |"
	echo "|---|---|---|---|---|---|---|"
	for x in direct "${vars[@]}"; do
		local aq=() rr=() ad=() cp=() us=() lo=()
		for r in $(seq "$rounds"); do
			row=fast.$x.$r
			num "${R[$row.qps]:-}" || continue
			aq+=("${R[$row.qps]}")
			lo+=("${R[$row.lost]:-0}")
			[ "$x" = direct ] && continue
			num "${R[fast.direct.$r.qps]:-}" &&
				rr+=("$(awk -v a="${R[$row.qps]}" -v b="${R[fast.direct.$r.qps]}" 'BEGIN {printf "%.2f", a / b}')")
			num "${R[$row.u50]:-}" && num "${R[fast.direct.$r.u50]:-}" &&
				ad+=("$(awk -v a="${R[$row.u50]}" -v b="${R[fast.direct.$r.u50]}" 'BEGIN {printf "%.0f", a - b}')")
			if num "${R[$row.ecpu]:-}"; then
				cp+=("${R[$row.ecpu]}")
				us+=("$(awk -v c="${R[$row.ecpu]}" -v q="${R[$row.qps]}" 'BEGIN {printf "%.0f", c * 1e4 / q}')")
			fi
		done
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$x" \
			"$(printf '%s\n' "${aq[@]}" | stats)" \
			"$(printf '%s\n' "${rr[@]}" | stats)" "$(printf '%s\n' "${ad[@]}" | stats)" \
			"$(printf '%s\n' "${cp[@]}" | stats)" "$(printf '%s\n' "${us[@]}" | stats)" \
			"$(printf '%s ' "${lo[@]}")"
	done
	echo
	echo "Per round (q/s, unloaded p50 µs, egressd CPU %, machine busy % of one core):"
	for r in $(seq "$rounds"); do
		printf '  round %s:' "$r"
		for x in direct "${vars[@]}"; do
			printf ' %s %s/%s/%s/%s' "$x" "${R[fast.$x.$r.qps]:-–}" "${R[fast.$x.$r.u50]:-–}" "${R[fast.$x.$r.ecpu]:-–}" "${R[fast.$x.$r.mcpu]:-–}"
		done
		echo
	done
	for n in "${NOTE[@]}"; do echo "- note: $n"; done
	exit 0
}
num() { [[ ${1:-} =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
if [ -n "${BENCH_AB:-}" ]; then
	[ "$BENCH_AB" = - ] || [ -x "$BENCH_AB" ] || { echo "bench_udp: BENCH_AB: $BENCH_AB is not executable" >&2; exit 1; }
	[ -z "${BENCH_AB_C:-}" ] || [ -x "$BENCH_AB_C" ] || { echo "bench_udp: BENCH_AB_C: $BENCH_AB_C is not executable" >&2; exit 1; }
	ab_mode
fi

# ---- 1. direct -----------------------------------------------------------------
log "== direct (no egressd, no rules)"
measure_all direct

# ---- 2. conntrack alone: the kernel's share of the fast path ----------------------
# One rule that needs conntrack in the world's host netns (and matches
# nothing: no packet is INVALID here), in a chain of ours, removed after.
log "== conntrack only (no egressd; one conntrack rule in the host netns)"
if H iptables -t mangle -N EBENCH && H iptables -t mangle -A EBENCH -m conntrack --ctstate INVALID -j DROP &&
	H iptables -t mangle -I PREROUTING -j EBENCH; then
	measure_udp ct
else
	NOTE+=("conntrack-only rows: the rule could not be installed")
fi
H iptables -t mangle -D PREROUTING -j EBENCH 2>/dev/null
H iptables -t mangle -F EBENCH 2>/dev/null
H iptables -t mangle -X EBENCH 2>/dev/null

# ---- 3. egressd ----------------------------------------------------------------
log "== egressd"
if egressd_start; then
	# peak RSS under this load only, not the start (BPF loading)
	echo 5 >"/proc/$ED_PID/clear_refs" 2>/dev/null
	measure_all egressd
	R[egressd.hwm]=$(awk '$1 == "VmHWM:" {printf "%.1f", $2 / 1024}' "/proc/$ED_PID/status")
	ed_ctl status >"$B/status.json" 2>/dev/null
	R[egressd.lines]=$(status_get log.lines)
	# the daemon's count against the file's, unless the log rotated
	# (--log-max-bytes: 100 MiB by default)
	v=$(wc -l <"$D/connections.jsonl" 2>/dev/null)
	log "egressd log: ${R[egressd.lines]} lines written, $v in the file"
	[ -e "$D/connections.jsonl.1" ] || [ "$v" = "${R[egressd.lines]}" ] ||
		NOTE+=("egressd says it wrote ${R[egressd.lines]} log lines; the file has $v")
	for k in udp.dns.servfail udp.dns.unknown_resolver udp.dns.resolver_from_queue_record \
		udp.attrib_misses udp.queue.malformed; do
		v=$(python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d = d[k]
print(d)' "$B/status.json" "$k" 2>/dev/null)
		[ -n "$v" ] && [ "$v" != 0 ] && NOTE+=("egressd status $k = $v")
	done
else
	ED_ERR="did not start: $(tail -n 3 "$D/egressd.err" | tr '\n' ' ')"
	log "egressd $ED_ERR"
fi
egressd_stop

# ---- 4. egressd --no-bpf: what attribution costs --------------------------------------
log "== egressd --no-bpf (no attribution, no BPF programs)"
if egressd_start --no-bpf; then
	m_dns fast.nobpf container "$FAST_RES" "$DNSD_PID"
	m_dns refused.nobpf container "$FAST_RES" "$DNSD_PID"
	measure_udp nobpf
else
	NOBPF_ERR="did not start: $(tail -n 3 "$D/egressd.err" | tr '\n' ' ')"
	log "egressd --no-bpf $NOBPF_ERR"
fi
egressd_stop

# ---- 5. direct again: how much the machine drifted ----------------------------
log "== direct again (drift check)"
m_dns fast.direct2 container "$FAST_RES" "$DNSD_PID"
measure_udp direct2

# ---- the tables -------------------------------------------------------------------
num() { [[ ${1:-} =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
# base KIND METRIC: the direct value, the mean of both runs where there are two
base() {
	local a=${R[$1.direct.$2]:-} b=${R[$1.direct2.$2]:-}
	if num "$a" && num "$b"; then
		awk -v a="$a" -v b="$b" 'BEGIN {printf "%.1f", (a + b) / 2}'
	else printf '%s' "$a"; fi
}
ratio() { # VALUE BASE
	if num "$1" && num "$2" && [ "$(awk -v b="$2" 'BEGIN {print (b > 0)}')" = 1 ]; then
		awk -v a="$1" -v b="$2" 'BEGIN {printf " (%.2f×)", a / b}'
	fi
}
cell() { local v=${R[$1]:-}; printf '%s' "${v:-–}"; }
ms() { local v=${R[$1]:-}; if num "$v"; then awk -v v="$v" 'BEGIN {printf "%.2f", v / 1000}'; else printf '%s' "${v:-–}"; fi; }

label() {
	case $1 in
	simres) echo "container → world resolver (egress-sim), UDP" ;;
	fast) echo "container → fast resolver, UDP" ;;
	hostfast) echo "host netns → fast resolver, UDP" ;;
	tcp) echo "container → fast resolver, TCP" ;;
	refused) echo "container, refused names (no upstream)" ;;
	flows) echo "new flows, container" ;;
	hostflows) echo "new flows, host netns" ;;
	stream) echo "one flow, container, $WINDOW in flight" ;;
	ping) echo "one flow, container, ping-pong" ;;
	esac
}
how() {
	case $1 in
	direct) echo "direct" ;;
	direct2) echo "direct again (drift)" ;;
	ct) echo "conntrack only" ;;
	egressd) if [ -n "${ED_ERR:-}" ]; then echo "egressd: **could not run: ${ED_ERR//|//}**"; else echo "egressd"; fi ;;
	nobpf) if [ -n "${NOBPF_ERR:-}" ]; then echo "egressd --no-bpf: **could not run: ${NOBPF_ERR//|//}**"; else echo "egressd --no-bpf"; fi ;;
	esac
}
# failed RUN: the run could not start (its rows say so)
failed() { { [ "$1" = egressd ] && [ -n "${ED_ERR:-}" ]; } || { [ "$1" = nobpf ] && [ -n "${NOBPF_ERR:-}" ]; }; }

echo
echo "## UDP and DNS benchmark ($(nproc) cores, $(date -u +%Y-%m-%d))"
echo
echo "DNS (dnsperf -c $DNS_CLIENTS -q $DNS_INFLIGHT for $SECS s; unloaded: one query at a time, bench_udpload dnsq):"
echo
echo "| client → resolver | run | q/s | p50 ms | p99 ms | unloaded p50 µs | unloaded p99 µs | added p50 µs | egressd CPU % | resolver CPU % | machine busy % | answers | egressd judged |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for k in simres fast hostfast tcp refused; do
	for s in direct egressd nobpf direct2; do
		row=$k.$s
		[ -n "${R[$row.qps]:-}${R[$row.u50]:-}" ] || { failed "$s" && [ "$k" = fast ]; } || continue
		bq=$(base "$k" qps)
		[ "$k" = refused ] && bq=$(base fast qps)
		added=–
		bu=$(base "$k" u50)
		[ "$k" = refused ] && bu=$(base fast u50)
		if [[ $s != direct* ]] && num "${R[$row.u50]:-}" && num "$bu"; then
			added=$(awk -v a="${R[$row.u50]}" -v b="$bu" 'BEGIN {printf "%+.0f", a - b}')
		fi
		printf '| %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
			"$(label "$k")" "$(how "$s")" \
			"$(cell "$row.qps")" "$([[ $s != direct* ]] && ratio "${R[$row.qps]:-}" "$bq")" \
			"$(ms "$row.p50")" "$(ms "$row.p99")" "$(cell "$row.u50")" "$(cell "$row.u99")" \
			"$added" "$(cell "$row.ecpu")" "$(cell "$row.scpu")" "$(cell "$row.mcpu")" \
			"$(cell "$row.codes")" "$(cell "$row.seen")"
	done
done
echo
echo "UDP to the fast echo server (bench_udpload; new flows: $FLOW_CONC in flight, each one datagram"
echo "from a new source port to a 4-tuple never used before in the run; one flow: a connected socket):"
echo
echo "| load | run | per s | p50 µs | p99 µs | lost | egressd CPU % | echo CPU % | machine busy % | queued by egressd |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for k in flows hostflows stream ping; do
	for s in direct ct egressd nobpf direct2; do
		row=$k.$s
		[ -n "${R[$row.rate]:-}" ] || { failed "$s" && [ "$k" = flows ]; } || continue
		printf '| %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s |\n' \
			"$(label "$k")" "$(how "$s")" \
			"$(cell "$row.rate")" "$([[ $s != direct* ]] && ratio "${R[$row.rate]:-}" "$(base "$k" rate)")" \
			"$(cell "$row.p50")" "$(cell "$row.p99")" "$(cell "$row.lost")" \
			"$(cell "$row.ecpu")" "$(cell "$row.scpu")" "$(cell "$row.mcpu")" "$(cell "$row.seen")"
	done
done
echo
echo "Ratios are to direct (the mean of the first and the last direct run where there are two;"
echo "their gap shows how much the shared machine drifted); refused names to the fast resolver's."
echo "\"added p50\" is the unloaded p50 minus direct's.  \"conntrack only\": no egressd, one"
echo "conntrack rule in the host netns (the kernel's part of any stateful filter); \"egressd"
echo "--no-bpf\": the daemon without attribution and without its cgroup BPF programs.  CPU: % of"
echo "one core over the run (the machine has $(nproc)); the client, the server and egressd share"
echo "those cores, so a row near 100 % for one of them is bound by it; \"machine busy\" counts every"
echo "process (other work on a shared machine shows as busy beyond client + server + egressd).  Load"
echo "average at the start: $LOAD0; at the end: $(cut -d' ' -f1-3 /proc/loadavg).  \"egressd judged\" and"
echo "\"queued\": growth of the daemon's counters over the run (udp.dns.queries, for DNS over TCP"
echo "counters.dns.allow; udp.queue.packets).  egressd's peak RSS under all of this load:"
echo "${R[egressd.hwm]:-?} MiB (VmHWM, reset after start-up); log lines written: ${R[egressd.lines]:-?}."
echo

met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {
	if (v !~ /^[-+]?[0-9.]+$/) { print "?"; exit }
	ok = (op == ">=") ? (v + 0 >= t) : (v + 0 <= t); print ok ? "yes" : "**no**" }'; }
rt() { if num "${1:-}" && num "${2:-}"; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; else echo "?"; fi; }
if [ -z "${ED_ERR:-}" ]; then
	q=$(rt "${R[fast.egressd.qps]:-}" "$(base fast qps)")
	qs=$(rt "${R[simres.egressd.qps]:-}" "$(base simres qps)")
	add=–
	num "${R[fast.egressd.u50]:-}" && num "$(base fast u50)" &&
		add=$(awk -v a="${R[fast.egressd.u50]}" -v b="$(base fast u50)" 'BEGIN {printf "%.0f", a - b}')
	st=$(rt "${R[stream.egressd.rate]:-}" "$(base stream rate)")
	pp=–
	num "${R[ping.egressd.p50]:-}" && num "$(base ping p50)" &&
		pp=$(awk -v a="${R[ping.egressd.p50]}" -v b="$(base ping p50)" 'BEGIN {printf "%.1f", (a / b - 1) * 100}')
	fl=$(rt "${R[flows.egressd.rate]:-}" "$(base flows rate)")
	echo "| egressd vs issue #6 targets | measured | target | met |"
	echo "|---|---|---|---|"
	echo "| DNS q/s ÷ direct (container, fast resolver) | ${q}× | ≥ 0.50× | $(met "$q" 0.50 ">=") |"
	echo "| DNS q/s ÷ direct (container, world resolver) | ${qs}× | ≥ 0.50× | $(met "$qs" 0.50 ">=") |"
	echo "| DNS added latency, unloaded p50 | ${add} µs | ≤ 100 µs | $(met "$add" 100 "<=") |"
	echo "| fast path datagrams/s ÷ direct ($WINDOW in flight) | ${st}× | ≥ 0.95× | $(met "$st" 0.95 ">=") |"
	echo "| fast path ping-pong p50, added | ${pp} % | ≤ 5 % | $(met "$pp" 5 "<=") |"
	echo "| new flows/s ÷ direct (every one queued; no target) | ${fl}× | – | – |"
	echo
fi
for n in "${NOTE[@]}"; do echo "- note: $n"; done
exit 0
