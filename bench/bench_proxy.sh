#!/usr/bin/env bash
# bench/bench_proxy.sh [BUILD_DIR] - egressd side by side with kernel NAT and
# its peers, in ONE run, inside a simulator world (never the machine's own
# network namespace; all traffic stays inside the world).
#
#   client  container:0 of the world (a bridged container, docker0), the same
#           for every row; load tools from Debian (wrk) and bench_tlsload
#   server  nginx (Debian) in the world's internet netns on 198.51.100.10:
#           :18443 HTTPS with the world's test certificate, /1b (1 byte) and
#           /64M (64 MiB of random bytes); :18080 the same over HTTP
#   rows    direct (no proxy: the limit); kernel NAT (DNAT :28443 -> :18443 in
#           the world's host netns: the netfilter path alone); egressd (MITM,
#           policy allowing example.test:18443, passthrough for
#           mirror.sim.test:18443); mitmproxy `--mode transparent` with bodies
#           streamed; sslsplit (transparent, -k/-c with a CA the client trusts).
#           Each proxy runs in the world's host netns, alone: egressd installs
#           its own chains, the peers get a REDIRECT of docker0 -> :18443 in a
#           chain of ours, removed before the next proxy starts.
#   metrics new TLS handshake per request (bench_tlsload new: req/s, p50, p99);
#           keep-alive (wrk: req/s, p99); bulk 64 MiB over TLS (curl, median of
#           5) through MITM, and through egressd passthrough vs kernel NAT;
#           peak RSS of the proxy after that load (VmHWM, summed over its
#           processes); memory per idle MITM pair (a fresh proxy, N idle TLS
#           connections with one request each: VmRSS delta / N).
#
# Needs root, the built programs (egress-sim, egressd, egressctl,
# bench_tlsload) and the Debian packages of scripts/install-deps.sh.  A peer
# that cannot run says so in its row.  Everything created (world, processes,
# files, rules) is removed on exit, also on failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=$(cd "${1:-build}" && pwd) || exit 1
SIM=$BUILD/egress-sim
EGRESSD=$BUILD/egressd
EGRESSCTL=$BUILD/egressctl
LOAD=$BUILD/bench_tlsload
SECS=${BENCH_SECS:-5}   # each rate measurement
CONC=${BENCH_CONC:-8}   # new-handshake client threads
KA_CONN=${BENCH_KA_CONN:-16}
NIDLE=${BENCH_IDLE:-256}

if [ "$(id -u)" -ne 0 ]; then
	echo "bench_proxy: needs root (network namespaces, netfilter, cgroups)" >&2
	exit 1
fi
for f in "$SIM" "$EGRESSD" "$EGRESSCTL" "$LOAD"; do
	[ -x "$f" ] || { echo "bench_proxy: $f is not built" >&2; exit 1; }
done
for c in nginx wrk curl openssl iptables; do
	command -v "$c" >/dev/null || {
		echo "bench_proxy: $c is missing (scripts/install-deps.sh)" >&2
		exit 1
	}
done

W=bench-$$
ST=/run/egress-sim/$W
B=$ST/bench # every file of ours
D=$ST/egressd
CG2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
SRV=198.51.100.10
PORT=18443
NATPORT=28443
PPORT=18081 # the peers' listening port
MITM_HOST=example.test
PASS_HOST=mirror.sim.test
PROXY_KIND=
PROXY_KIND_ROW=
PROXY_LOG=
PROXY_PID= # the running proxy (egress-sim exec became it)
NGINX_PID=
WORLD_UP=0

ulimit -n 65536 2>/dev/null || ulimit -n 16384 2>/dev/null || true

H() { "$SIM" exec "$W" host --keep-mounts -- "$@"; }
C() { "$SIM" exec "$W" container:0 -- "$@"; }
log() { printf '# %s\n' "$*" >&2; }
# note TEXT: a line under the table (works from command substitutions too)
note() { printf '%s\n' "$*" >>"$B/notes"; }
# proxy_log: the last lines of the running proxy's own log, on one line
proxy_log() { [ -n "${PROXY_LOG:-}" ] && tail -n 4 "$PROXY_LOG" 2>/dev/null | tr '\n' ' ' | head -c 400; }

peer_rules_off() {
	H iptables -t nat -D PREROUTING -i docker0 -j EBENCH 2>/dev/null
	H iptables -t nat -F EBENCH 2>/dev/null
	H iptables -t nat -X EBENCH 2>/dev/null
	return 0
}
# peer_rules RULE...: our chain in the host netns's nat PREROUTING
peer_rules() {
	peer_rules_off
	H iptables -t nat -N EBENCH &&
		H iptables -t nat -A EBENCH "$@" &&
		H iptables -t nat -I PREROUTING -i docker0 -j EBENCH
}

proxy_stop() {
	[ -n "$PROXY_PID" ] || return 0
	if [ "$PROXY_KIND" = egressd ]; then
		"$EGRESSCTL" stop --control-socket "$D/control.sock" >/dev/null 2>&1
		for _ in $(seq 100); do
			kill -0 "$PROXY_PID" 2>/dev/null || break
			sleep 0.05
		done
	fi
	kill "$PROXY_PID" 2>/dev/null
	for _ in $(seq 60); do
		kill -0 "$PROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$PROXY_PID" 2>/dev/null
	wait "$PROXY_PID" 2>/dev/null
	if [ "$PROXY_KIND" = egressd ]; then
		H "$EGRESSD" --cleanup --pin-dir "$D/pins" >/dev/null 2>&1
	fi
	PROXY_PID=
	peer_rules_off
}

cleanup() {
	trap - EXIT INT TERM
	[ -n "${IDLE_PID:-}" ] && kill "$IDLE_PID" 2>/dev/null && wait "$IDLE_PID" 2>/dev/null
	proxy_stop
	if [ -n "$NGINX_PID" ]; then
		kill -QUIT "$NGINX_PID" 2>/dev/null
		for _ in $(seq 60); do
			kill -0 "$NGINX_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$NGINX_PID" 2>/dev/null
		wait "$NGINX_PID" 2>/dev/null
	fi
	if [ "$WORLD_UP" = 1 ]; then
		mountpoint -q "$D/pins" 2>/dev/null && umount "$D/pins"
		"$SIM" down "$W" >/dev/null 2>&1 || echo "bench_proxy: warning: down $W failed" >&2
	fi
	rm -rf "$B"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- measurements -------------------------------------------------------
# wrk latency like 812.00us / 1.20ms / 1.01s -> ms
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) printf "%.2f", v / 1000;
		else if (v ~ /ms$/) printf "%.2f", v + 0;
		else if (v ~ /m$/) printf "%.2f", v * 60000;
		else if (v ~ /s$/) printf "%.2f", v * 1000;
		else printf "?" }'
}

# m_newhs PORT CAFILE -> "rps p50 p99" or "ERR msg"
m_newhs() {
	local out
	out=$(C "$LOAD" new "$SRV" "$1" "$MITM_HOST" /1b -c "$CONC" -d "$SECS" -k "$2" 2>&1)
	if ! grep -q '^reqs=' <<<"$out"; then
		echo "ERR $(tr '\n' ' ' <<<"$out" | head -c 200) [proxy log: $(proxy_log)]"
		return
	fi
	log "new-handshake: $out"
	sed -n 's/.*errors=\([0-9]*\) .*rps=\([0-9.]*\) p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\).*/\2 \3 \4 \1/p' <<<"$out"
}

# CPU time (user and system, ms) of a process tree: "user sys"
cpu_ms() {
	local p u=0 s=0 f
	for p in $(tree_pids "$1"); do
		# fields after the ")" that ends comm: utime is the 12th, stime the 13th
		f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
		set -- $f
		u=$((u + ${12:-0}))
		s=$((s + ${13:-0}))
	done
	echo "$((u * 1000 / HZ)) $((s * 1000 / HZ))"
}
HZ=$(getconf CLK_TCK)
# the whole machine (every core, every process: other users too): "busy total"
# in clock ticks from /proc/stat
machine_ticks() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i;
		print t - $5 - $6, t; exit }' /proc/stat
}

# m_ka PORT -> "rps p99" (wrk does not verify the certificate; the path was
# verified by m_newhs and m_bulk with the client's CA).  Also writes where the
# CPU went during the load to $B/ka.cpu: "wall_ms wrk_user wrk_sys nginx_user
# nginx_sys proxy_user proxy_sys machine_busy_pct" (ms; bash's `times` gives
# wrk's, /proc the others').
m_ka() {
	local out rps p99 m0 m1 n0 n1 p0="0 0" p1="0 0" t0 t1 wu ws
	m0=$(machine_ticks)
	n0=$(cpu_ms "$NGINX_PID")
	[ -n "$PROXY_PID" ] && p0=$(cpu_ms "$PROXY_PID")
	t0=$(date +%s%N)
	out=$(C bash -c 'wrk "$@"; times' wrk -t2 -c"$KA_CONN" -d"${SECS}s" --latency \
		"https://$MITM_HOST:$1/1b" 2>&1)
	t1=$(date +%s%N)
	m1=$(machine_ticks)
	n1=$(cpu_ms "$NGINX_PID")
	[ -n "$PROXY_PID" ] && p1=$(cpu_ms "$PROXY_PID")
	# the last line of `times`: the children's user and system time
	read -r wu ws <<<"$(tail -n 1 <<<"$out" | awk '{
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); printf "%d ", (a[1] * 60 + a[2]) * 1000 } }')"
	awk -v w="$(((t1 - t0) / 1000000))" -v wu="$wu" -v ws="$ws" \
		-v n0="$n0" -v n1="$n1" -v p0="$p0" -v p1="$p1" -v m0="$m0" -v m1="$m1" 'BEGIN {
		split(n0, a); split(n1, b); split(p0, c); split(p1, d); split(m0, e); split(m1, f)
		printf "%d %d %d %d %d %d %d %.0f\n", w, wu, ws, b[1] - a[1], b[2] - a[2],
			d[1] - c[1], d[2] - c[2], 100 * (f[1] - e[1]) / (f[2] - e[2]) }' >"$B/ka.cpu"
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	local errs
	errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ')
	[ -n "$errs" ] && log "keep-alive errors: $errs"
	[ -n "$errs" ] && echo "$errs" >"$B/ka.errs"
	if [ -z "$rps" ] || [ -z "$p99" ]; then
		echo "ERR $(tr '\n' ' ' <<<"$out" | head -c 200)"
		return
	fi
	log "keep-alive: $rps req/s p99 $p99${errs:+ ($errs)}"
	echo "$rps $(to_ms "$p99")"
}

# m_bulk HOST PORT CAFILE -> MiB/s, median of 5, or "ERR msg"
m_bulk() {
	local host=$1 port=$2 ca=$3 out speeds=()
	for _ in 1 2 3 4 5; do
		out=$(C curl -sS -m 60 --cacert "$ca" --resolve "$host:$port:$SRV" \
			-o /dev/null -w '%{http_code} %{size_download} %{speed_download}' \
			"https://$host:$port/64M" 2>&1)
		if [[ $out != "200 67108864 "* ]]; then
			echo "ERR $(tr '\n' ' ' <<<"$out" | head -c 200) [proxy log: $(proxy_log)]"
			return
		fi
		speeds+=("${out##* }")
	done
	log "bulk $host:$port: ${speeds[*]} B/s"
	printf '%s\n' "${speeds[@]}" | sort -n | sed -n 3p | awk '{printf "%.0f", $1 / 1048576}'
}

# tree_pids PID: PID and its descendants
tree_pids() {
	local p c
	for p in "$@"; do
		echo "$p"
		for c in $(pgrep -P "$p"); do tree_pids "$c"; done
	done
}
# mem_kb FIELD PID: FIELD (VmHWM, VmRSS) summed over the process tree, kB
mem_kb() {
	local f=$1 p s=0 v
	for p in $(tree_pids "$2"); do
		v=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

# m_idle PORT CAFILE -> KiB per idle pair, or "ERR msg"
m_idle() {
	local port=$1 ca=$2 before after n est
	# warm: one request (leaf certificate, lazy initialisation)
	C curl -sS -m 10 --cacert "$ca" -o /dev/null "https://$MITM_HOST:$port/1b" 2>/dev/null
	sleep 0.5
	before=$(mem_kb VmRSS "$PROXY_PID")
	C "$LOAD" idle "$SRV" "$port" "$MITM_HOST" /1b -n "$NIDLE" -t 120 -k "$ca" \
		>"$B/idle.out" 2>"$B/idle.err" &
	IDLE_PID=$!
	for _ in $(seq 1200); do
		grep -q '^ready' "$B/idle.out" 2>/dev/null && break
		kill -0 "$IDLE_PID" 2>/dev/null || break
		sleep 0.1
	done
	sleep 1
	n=$(awk '/^ready/ {print $2}' "$B/idle.out")
	after=$(mem_kb VmRSS "$PROXY_PID")
	# the pairs must still be open: a proxy that closed them after the
	# response (sslsplit's https mode sends "Connection: close" upstream)
	# holds nothing, and its delta means nothing
	est=$(C ss -Htn state established dst "$SRV" and dport = ":$port" | grep -c .)
	kill "$IDLE_PID" 2>/dev/null
	wait "$IDLE_PID" 2>/dev/null
	IDLE_PID=
	if [ -z "$n" ] || [ "$n" -eq 0 ]; then
		echo "ERR idle connections failed: $(head -c 200 "$B/idle.err") [proxy log: $(proxy_log)]"
		return
	fi
	[ "$n" -eq "$NIDLE" ] || note "$PROXY_KIND_ROW idle: only $n of $NIDLE connections could be opened ($(grep -c failed "$B/idle.err") failed; proxy log: $(proxy_log))"
	log "idle: $n pairs opened, $est still established, RSS $before -> $after kB"
	if [ "$est" -lt $((n * 9 / 10)) ]; then
		echo "ERR only $est of $n idle connections were still open (the proxy closed them)"
		return
	fi
	awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n}'
}

# ---- results ------------------------------------------------------------
declare -A R # R[row,metric]
NOTE=()

# measure ROW PORT CAFILE: the common metrics of a row
measure() {
	local row=$1 port=$2 ca=$3 v hserr p
	PROXY_KIND_ROW=$row
	# Peak RSS is measured under the load only: start-up peaks (e.g. a
	# daemon parsing the kernel's BTF to load its BPF programs, a Python
	# interpreter importing its modules) are reset away, for every proxy
	# alike ("5" resets VmHWM, proc(5) clear_refs).
	if [ -n "$PROXY_PID" ]; then
		for p in $(tree_pids "$PROXY_PID"); do
			echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true
		done
	fi
	v=$(m_newhs "$port" "$ca")
	if [[ $v == ERR* ]]; then
		R[$row.err]="new-handshake failed: ${v#ERR }"
		log "$row: ${R[$row.err]}"
		return 1
	fi
	read -r "R[$row.hs]" "R[$row.hs50]" "R[$row.hs99]" hserr <<<"$v"
	[ "${hserr:-0}" = 0 ] || NOTE+=("$row new-handshake: $hserr failed exchanges (not counted in req/s)")
	v=$(m_ka "$port")
	if [[ $v == ERR* ]]; then R[$row.ka]=ERR; NOTE+=("$row keep-alive: ${v#ERR }"); else
		read -r "R[$row.ka]" "R[$row.ka99]" <<<"$v"; fi
	if [ -s "$B/ka.errs" ]; then NOTE+=("$row keep-alive (wrk): $(cat "$B/ka.errs")"); rm -f "$B/ka.errs"; fi
	v=$(m_bulk "$MITM_HOST" "$port" "$ca")
	if [[ $v == ERR* ]]; then R[$row.bulk]=ERR; NOTE+=("$row bulk: ${v#ERR }"); else
		R[$row.bulk]=$v; fi
	return 0
}

# port_free PORT: nothing listens on PORT in the host netns (a proxy that
# outlived its stop would otherwise answer for the next one)
port_free() {
	if H ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; then
		log "port $1 is still in use in the host netns: $(H ss -Hltnp "sport = :$1" | head -n 1)"
		return 1
	fi
}

# wait_port PORT: something listens on PORT in the host netns
wait_port() {
	for _ in $(seq 300); do
		H ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
		kill -0 "$PROXY_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# ---- the world and the server -------------------------------------------
log "world $W: egress-sim up --containers 1"
WORLD_UP=1
"$SIM" up "$W" --containers 1 >/dev/null || { echo "bench_proxy: egress-sim up failed" >&2; exit 1; }
WCA=$("$SIM" ca "$W")
mkdir -p "$B/www" "$B/nginx" "$D"
printf x >"$B/www/1b"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$B/www/64M"
# many short connections: a wide port range and TIME_WAIT reuse, inside the
# world's namespaces only
for place in container:0 host internet; do
	"$SIM" exec "$W" "$place" -- sysctl -qw net.ipv4.ip_local_port_range="1024 65000" \
		net.ipv4.tcp_tw_reuse=1 >/dev/null 2>&1
done
cat >"$B/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
user root;
worker_processes 1;
worker_rlimit_nofile 16384;
pid $B/nginx/nginx.pid;
error_log $B/nginx/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	client_body_temp_path $B/nginx/body;
	proxy_temp_path $B/nginx/proxy;
	fastcgi_temp_path $B/nginx/fastcgi;
	uwsgi_temp_path $B/nginx/uwsgi;
	scgi_temp_path $B/nginx/scgi;
	sendfile on;
	tcp_nopush on;
	keepalive_timeout 300s;
	keepalive_requests 1000000;
	default_type application/octet-stream;
	ssl_certificate $ST/main.pem;
	ssl_certificate_key $ST/main.key;
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_session_cache shared:BENCH:10m;
	server {
		listen $SRV:18080 reuseport;
		listen $SRV:$PORT ssl reuseport;
		root $B/www;
	}
}
EOF
"$SIM" exec "$W" internet -- nginx -c "$B/nginx/nginx.conf" -e "$B/nginx/error.log" \
	>"$B/nginx/stderr" 2>&1 &
NGINX_PID=$!
for _ in $(seq 100); do
	C curl -sS -m 2 --cacert "$WCA" --resolve "$MITM_HOST:$PORT:$SRV" -o /dev/null \
		"https://$MITM_HOST:$PORT/1b" 2>/dev/null && break
	kill -0 "$NGINX_PID" 2>/dev/null || break
	sleep 0.1
done
if ! C curl -sS -m 2 --cacert "$WCA" -o /dev/null "https://$MITM_HOST:$PORT/1b"; then
	echo "bench_proxy: nginx does not answer in the world: $(cat "$B/nginx/stderr" "$B/nginx/error.log" 2>/dev/null | tail -n 5)" >&2
	exit 1
fi
log "nginx (pid $NGINX_PID) serves $SRV:$PORT (HTTPS) and :18080 in the internet netns"
log "client: container:0; $SECS s per rate, $CONC new-handshake threads, wrk -t2 -c$KA_CONN, $NIDLE idle pairs"

# ---- egressd's policy and start ----------------------------------------
# DNS is judged too: the world's resolver (wrk looks the name up)
cat >"$B/policy.txt" <<EOF
198.51.100.53:53/udp
$MITM_HOST:$PORT
$PASS_HOST:$PORT passthrough
EOF
# egressd_start [BINARY]: egressd (default: the build directory's) in the host netns
egressd_start() {
	PROXY_KIND=egressd
	mkdir -p "$D/pins"
	mountpoint -q "$D/pins" || mount -t bpf bpf "$D/pins"
	rm -f "$D/control.sock"
	# BENCH_WRAP: a command prefix for egressd (heaptrack, valgrind ...)
	# shellcheck disable=SC2086
	"$SIM" exec "$W" host --keep-mounts --cgroup egressd -- ${BENCH_WRAP:-} "${1:-$EGRESSD}" \
		--foreground --policy "$B/policy.txt" --run-dir "$D" --ca-dir "$D/ca" \
		--log "$D/connections.jsonl" --pin-dir "$D/pins" \
		--cgroup "$CG2$("$SIM" status "$W" | sed -n 's/^ *"path": "\(.*\)",$/\1/p' | head -n1)" \
		--upstream-ca "$WCA" --workers 2 >>"$D/egressd.err" 2>&1 &
	PROXY_PID=$!
	PROXY_LOG=$D/egressd.err
	for _ in $(seq 200); do
		"$EGRESSCTL" status --control-socket "$D/control.sock" >/dev/null 2>&1 && return 0
		kill -0 "$PROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}

# ---- A/B mode: direct and two egressd builds, interleaved ----------------
# BENCH_AB=/path/to/other/egressd: only the direct row and egressd from the
# build directory (a) and from that path (b), BENCH_ROUNDS rounds (default
# 5), the order of a and b swapped every round, each ratio taken to the
# direct run of its own round (the machine is shared: compare within a
# round, report medians).  BENCH_AB=- runs a alone.  Per round: new-TLS and
# keep-alive req/s, bulk MITM MiB/s (BENCH_AB_BULK=0: none), peak RSS over
# those loads (VmHWM, reset first; also shown after each load), and where
# the CPU went during keep-alive.
ab_row() { # LABEL BINARY ROUND
	local v pv=
	if [ "$1" != direct ]; then
		egressd_start "$2" || { log "$1: egressd did not start: $(tail -n 3 "$D/egressd.err")"; return 1; }
		for p in $(tree_pids "$PROXY_PID"); do echo 5 >"/proc/$p/clear_refs"; done
	fi
	local hspid=
	if [ -n "${BENCH_PROBE:-}" ] && [ "${BENCH_PROBE_LOAD:-ka}" = hs ] && [ "$1" != direct ]; then
		PID=$PROXY_PID VARIANT=$1 ROUND=$3 timeout -s INT "$SECS" bash -c "$BENCH_PROBE" >/dev/null 2>&1 &
		hspid=$!
	fi
	v=$(m_newhs "$PORT" "$([ "$1" = direct ] && echo "$WCA" || echo "$D/ca.pem")")
	AB[$1.$3.hs]=${v%% *}
	[ -n "$hspid" ] && wait "$hspid"
	[ "$1" != direct ] && AB[$1.$3.hwm_hs]=$(mem_kb VmHWM "$PROXY_PID")
	# BENCH_PROBE='CMD': run (by bash -c, $PID the daemon's pid) during
	# each keep-alive load of egressd (BENCH_PROBE_LOAD=hs: each new-TLS
	# load instead), stopped after BENCH_SECS, e.g.
	# 'perf record -g -p $PID -o /tmp/ka.perf.$VARIANT' or
	# 'strace -c -f -p $PID -o /tmp/ka.strace'; $VARIANT is a or b,
	# $ROUND the round
	local perfpid=
	if [ -n "${BENCH_PROBE:-}" ] && [ "${BENCH_PROBE_LOAD:-ka}" = ka ] && [ "$1" != direct ]; then
		PID=$PROXY_PID VARIANT=$1 ROUND=$3 timeout -s INT "$SECS" bash -c "$BENCH_PROBE" >/dev/null 2>&1 &
		perfpid=$!
	fi
	v=$(m_ka "$PORT")
	AB[$1.$3.ka]=${v%% *}
	[ -n "$perfpid" ] && wait "$perfpid"
	AB[$1.$3.cpu]=$(cat "$B/ka.cpu" 2>/dev/null)
	if [ "$1" != direct ]; then
		AB[$1.$3.hwm_ka]=$(mem_kb VmHWM "$PROXY_PID")
		if [ "${BENCH_AB_BULK:-1}" != 0 ]; then
			v=$(m_bulk "$MITM_HOST" "$PORT" "$D/ca.pem")
			AB[$1.$3.bulk]=$v
		fi
		AB[$1.$3.hwm]=$(mem_kb VmHWM "$PROXY_PID")
		AB[$1.$3.rss]=$(mem_kb VmRSS "$PROXY_PID")
		proxy_stop
	fi
	log "round $3 $1: hs ${AB[$1.$3.hs]} ka ${AB[$1.$3.ka]} bulk ${AB[$1.$3.bulk]:--} hwm ${AB[$1.$3.hwm_hs]:--}/${AB[$1.$3.hwm_ka]:--}/${AB[$1.$3.hwm]:--} kB (after new-TLS/keep-alive/bulk) rss ${AB[$1.$3.rss]:--} cpu ${AB[$1.$3.cpu]}"
}
med() { # values... -> "median (min-max)"
	printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) { print "?"; exit }
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3g (%.3g-%.3g, n=%d)", m, v[1], v[NR], NR }'
}
ab_main() {
	local rounds=${BENCH_ROUNDS:-5} r order x
	declare -gA AB
	local vars=(a)
	[ "$BENCH_AB" != - ] && vars=(a b)
	for r in $(seq "$rounds"); do
		ab_row direct "" "$r"
		order=("${vars[@]}")
		[ $((r % 2)) = 0 ] && [ ${#vars[@]} = 2 ] && order=(b a)
		for x in "${order[@]}"; do
			ab_row "$x" "$([ "$x" = a ] && echo "$EGRESSD" || echo "$BENCH_AB")" "$r"
		done
	done
	echo "## A/B: $rounds rounds; a = $EGRESSD${BENCH_AB:+, b = $BENCH_AB}"
	echo "round | direct hs | direct ka | variant | hs (÷direct) | ka (÷direct) | peak RSS kB after new-TLS/keep-alive/bulk | ka CPU ms: wall wrk(u/s) nginx(u/s) proxy(u/s) machine-busy%"
	for r in $(seq "$rounds"); do
		for x in "${vars[@]}"; do
			echo "$r | ${AB[direct.$r.hs]} | ${AB[direct.$r.ka]} | $x | ${AB[$x.$r.hs]} ($(rt "${AB[$x.$r.hs]}" "${AB[direct.$r.hs]}")) | ${AB[$x.$r.ka]} ($(rt "${AB[$x.$r.ka]}" "${AB[direct.$r.ka]}")) | ${AB[$x.$r.hwm_hs]}/${AB[$x.$r.hwm_ka]}/${AB[$x.$r.hwm]} | ${AB[$x.$r.cpu]} | direct cpu ${AB[direct.$r.cpu]}${AB[$x.$r.bulk]:+ | bulk ${AB[$x.$r.bulk]} MiB/s}"
		done
	done
	for x in "${vars[@]}"; do
		local hs=() ka=() hwm=()
		for r in $(seq "$rounds"); do
			hs+=("$(rt "${AB[$x.$r.hs]}" "${AB[direct.$r.hs]}")")
			ka+=("$(rt "${AB[$x.$r.ka]}" "${AB[direct.$r.ka]}")")
			hwm+=("$(awk -v k="${AB[$x.$r.hwm]:-x}" 'BEGIN { if (k ~ /^[0-9]+$/) printf "%.2f", k / 1024 }')")
		done
		echo "$x: new-TLS ÷ direct $(med "${hs[@]}"); keep-alive ÷ direct $(med "${ka[@]}"); peak RSS MiB $(med "${hwm[@]}"); bulk MiB/s $(med $(for r in $(seq "$rounds"); do echo "${AB[$x.$r.bulk]:-}"; done))"
	done
}
rt() { [[ $1 =~ ^[0-9.]+$ ]] && [[ $2 =~ ^[0-9.]+$ ]] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}' || echo "?"; }
if [ -n "${BENCH_AB:-}" ]; then
	[ "$BENCH_AB" = - ] || [ -x "$BENCH_AB" ] || { echo "bench_proxy: BENCH_AB: $BENCH_AB is not executable" >&2; exit 1; }
	ab_main
	exit 0
fi

# ---- 1. direct ----------------------------------------------------------
log "== direct"
measure direct "$PORT" "$WCA"

# ---- 2. kernel NAT ------------------------------------------------------
log "== kernel NAT (DNAT :$NATPORT -> :$PORT in the host netns)"
if peer_rules -p tcp -d "$SRV" --dport "$NATPORT" -j DNAT --to-destination "$SRV:$PORT"; then
	measure nat "$NATPORT" "$WCA"
	v=$(m_bulk "$PASS_HOST" "$NATPORT" "$WCA")
	[[ $v == ERR* ]] || R[nat.pbulk]=$v
else
	R[nat.err]="could not install the DNAT rule"
fi
peer_rules_off

# ---- 3. egressd ---------------------------------------------------------
log "== egressd (MITM $MITM_HOST:$PORT, passthrough $PASS_HOST:$PORT)"
if egressd_start; then
	if measure egressd "$PORT" "$D/ca.pem"; then
		v=$(m_bulk "$PASS_HOST" "$PORT" "$WCA")
		if [[ $v == ERR* ]]; then NOTE+=("egressd passthrough bulk: ${v#ERR }"); else
			R[egressd.pbulk]=$v; fi
		R[egressd.hwm]=$(mem_kb VmHWM "$PROXY_PID")
		proxy_stop
		egressd_start && R[egressd.idle]=$(m_idle "$PORT" "$D/ca.pem")
	fi
	grep -c . "$D/connections.jsonl" 2>/dev/null | sed 's/^/# egressd log lines: /' >&2
else
	R[egressd.err]="did not start: $(tail -n 3 "$D/egressd.err" | tr '\n' ' ')"
fi
proxy_stop

# ---- 4. mitmproxy -------------------------------------------------------
mitm_start() {
	PROXY_KIND=peer
	port_free "$PPORT" || return 1
	"$SIM" exec "$W" host --keep-mounts -- mitmdump --mode transparent --listen-host 0.0.0.0 --listen-port "$PPORT" \
		--set stream_large_bodies=1 --set confdir="$B/mitm" \
		--set ssl_verify_upstream_trusted_ca="$WCA" -q >>"$B/mitm.log" 2>&1 &
	PROXY_PID=$!
	PROXY_LOG=$B/mitm.log
	wait_port "$PPORT" && [ -s "$B/mitm/mitmproxy-ca-cert.pem" ] &&
		peer_rules -p tcp -d "$SRV" --dport "$PORT" -j REDIRECT --to-ports "$PPORT"
}
MITM_VER=$(mitmdump --version 2>/dev/null | awk '/^Mitmproxy:/ {print $2}')
log "== mitmproxy ${MITM_VER:-?} (--mode transparent, stream_large_bodies=1)"
if ! command -v mitmdump >/dev/null; then
	R[mitmproxy.err]="not installed (scripts/install-deps.sh)"
elif mitm_start; then
	if measure mitmproxy "$PORT" "$B/mitm/mitmproxy-ca-cert.pem"; then
		R[mitmproxy.hwm]=$(mem_kb VmHWM "$PROXY_PID")
		proxy_stop
		mitm_start && R[mitmproxy.idle]=$(m_idle "$PORT" "$B/mitm/mitmproxy-ca-cert.pem")
	fi
else
	R[mitmproxy.err]="did not start: $(tail -n 3 "$B/mitm.log" | tr '\n' ' ')"
fi
proxy_stop

# ---- 5. sslsplit --------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sslsplit bench CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	-keyout "$B/sslsplit-ca.key" -out "$B/sslsplit-ca.pem" >/dev/null 2>&1
SSLSPLIT_OPTS=()
SSLSPLIT_ENV=(SSLSPLIT_BENCH=1)
SSLSPLIT_SPEC=https
sslsplit_start() {
	PROXY_KIND=peer
	port_free "$PPORT" || return 1
	"$SIM" exec "$W" host --keep-mounts -- env "${SSLSPLIT_ENV[@]}" sslsplit \
		"${SSLSPLIT_OPTS[@]}" -k "$B/sslsplit-ca.key" -c "$B/sslsplit-ca.pem" \
		"$SSLSPLIT_SPEC" 0.0.0.0 "$PPORT" >>"$B/sslsplit.log" 2>&1 &
	PROXY_PID=$!
	PROXY_LOG=$B/sslsplit.log
	wait_port "$PPORT" &&
		peer_rules -p tcp -d "$SRV" --dport "$PORT" -j REDIRECT --to-ports "$PPORT"
}
SSLSPLIT_VER=$(sslsplit -V 2>&1 | awk '/^SSLsplit/ {print $2; exit}')
# upstream verification against the world's CA (OpenSSL's default store,
# redirected), if this sslsplit knows the option; -u root: the unprivileged
# user it would switch to cannot read the world's CA under the world's 0700
# state directory
SSLSPLIT_OPTS=(-u root -o VerifyPeer=yes)
SSLSPLIT_ENV=(SSL_CERT_FILE="$WCA")
# two rows: `https` (HTTP-aware, as egressd is) and `ssl` (a TLS stream
# relay, no HTTP parsing)
for SSLSPLIT_SPEC in https ssl; do
	row=sslsplit
	[ "$SSLSPLIT_SPEC" = https ] || row=sslsplit_$SSLSPLIT_SPEC
	log "== sslsplit ${SSLSPLIT_VER:-?} ($SSLSPLIT_SPEC, netfilter NAT engine)"
	if ! command -v sslsplit >/dev/null; then
		R[$row.err]="not installed (scripts/install-deps.sh)"
		continue
	fi
	if ! sslsplit_start && [ ${#SSLSPLIT_OPTS[@]} -gt 0 ]; then
		proxy_stop
		log "sslsplit: VerifyPeer not accepted ($(tail -n 1 "$B/sslsplit.log")); upstream not verified"
		NOTE+=("sslsplit ${SSLSPLIT_VER}: upstream certificates not verified (no VerifyPeer)")
		SSLSPLIT_OPTS=()
		SSLSPLIT_ENV=(SSLSPLIT_BENCH=1)
		sslsplit_start
	fi
	if kill -0 "$PROXY_PID" 2>/dev/null; then
		if measure "$row" "$PORT" "$B/sslsplit-ca.pem"; then
			R[$row.hwm]=$(mem_kb VmHWM "$PROXY_PID")
			proxy_stop
			sslsplit_start && R[$row.idle]=$(m_idle "$PORT" "$B/sslsplit-ca.pem")
		fi
	else
		R[$row.err]="did not start: $(tail -n 3 "$B/sslsplit.log" | tr '\n' ' ')"
	fi
	proxy_stop
done

# ---- 6. direct again: how much the machine drifted during the run --------
log "== direct again (drift check)"
measure direct2 "$PORT" "$WCA"
R[direct2.pbulk]=$(m_bulk "$PASS_HOST" "$PORT" "$WCA")
# the baseline of the ratios: the mean of both direct runs
mean2() {
	if [[ $1 =~ ^[0-9.]+$ ]] && [[ $2 =~ ^[0-9.]+$ ]]; then
		awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (a + b) / 2}'
	else printf '%s' "$1"; fi
}
for m in hs ka bulk; do R[base.$m]=$(mean2 "${R[direct.$m]:-}" "${R[direct2.$m]:-}"); done

# ---- the table ----------------------------------------------------------
ratio() { # VALUE BASE
	if [[ $1 =~ ^[0-9.]+$ ]] && [[ $2 =~ ^[0-9.]+$ ]] && [ "${2%.*}" != 0 ]; then
		awk -v a="$1" -v b="$2" 'BEGIN {printf " (%.2f×)", a / b}'
	fi
}
cell() { local v=${R[$1.$2]:-}; printf '%s' "${v:-–}"; }
mib() { # kB -> MiB
	local v=${R[$1.$2]:-}
	if [[ $v =~ ^[0-9]+$ ]]; then awk -v k="$v" 'BEGIN {printf "%.1f", k / 1024}'; else printf '%s' "${v:-–}"; fi
}
kib_idle() {
	local v=${R[$1.idle]:-}
	if [[ $v == ERR* ]]; then printf 'failed'; else printf '%s' "${v:-–}"; fi
}
for row in egressd mitmproxy sslsplit sslsplit_ssl; do
	[[ ${R[$row.idle]:-} == ERR* ]] && NOTE+=("$row idle: ${R[$row.idle]#ERR }")
done

label() {
	case $1 in
	direct) echo "direct (no proxy), first" ;;
	direct2) echo "direct again, last (drift)" ;;
	nat) echo "kernel NAT (DNAT)" ;;
	egressd) echo "egressd (MITM)" ;;
	mitmproxy) echo "mitmproxy ${MITM_VER:-} transparent" ;;
	sslsplit) echo "sslsplit ${SSLSPLIT_VER:-} https (HTTP-aware)" ;;
	sslsplit_ssl) echo "sslsplit ${SSLSPLIT_VER:-} ssl (TLS relay only)" ;;
	esac
}

echo
echo "## Proxy benchmark ($(nproc) cores, client container:0 → nginx in the internet netns, $(date -u +%Y-%m-%d))"
echo
echo "| | new-TLS req/s | p50 ms | p99 ms | keep-alive req/s | p99 ms | bulk MITM MiB/s | bulk passthrough MiB/s | peak RSS MiB | KiB / idle pair |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for row in direct nat egressd mitmproxy sslsplit sslsplit_ssl direct2; do
	if [ -n "${R[$row.err]:-}" ]; then
		echo "| $(label "$row") | **could not run: ${R[$row.err]//|//}** | | | | | | | | |"
		continue
	fi
	printf '| %s | %s%s | %s | %s | %s%s | %s | %s%s | %s%s | %s | %s |\n' "$(label "$row")" \
		"$(cell "$row" hs)" "$(ratio "${R[$row.hs]:-}" "${R[base.hs]:-}")" \
		"$(cell "$row" hs50)" "$(cell "$row" hs99)" \
		"$(cell "$row" ka)" "$(ratio "${R[$row.ka]:-}" "${R[base.ka]:-}")" "$(cell "$row" ka99)" \
		"$(cell "$row" bulk)" "$(ratio "${R[$row.bulk]:-}" "${R[base.bulk]:-}")" \
		"$(cell "$row" pbulk)" "$(if [ "$row" = egressd ]; then ratio "${R[$row.pbulk]:-}" "${R[nat.pbulk]:-}" | sed 's/×)/× NAT)/'; fi)" \
		"$(mib "$row" hwm)" "$(kib_idle "$row")"
done
echo
echo "Ratios are to direct (the mean of the first and the last direct run; their gap shows how"
echo "much the shared machine drifted), except egressd's passthrough bulk: to kernel NAT's, both"
echo "through the passthrough name ($PASS_HOST; direct last: ${R[direct2.pbulk]:-?} MiB/s)."
echo "new-TLS: $CONC client threads, one full TLS handshake + GET /1b (Connection: close) per"
echo "request, latency connect→EOF; keep-alive: wrk -t2 -c$KA_CONN GET /1b; bulk: curl, 64 MiB over"
echo "TLS, median of 5; peak RSS: VmHWM after that load, reset when the load starts (all processes of the proxy); idle: $NIDLE"
echo "TLS connections, one request each then idle, on a fresh proxy: VmRSS delta / N."
echo
# egressd against the issue's targets
met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {
	if (v !~ /^[0-9.]+$/) { print "?"; exit }
	ok = (op == ">=") ? (v + 0 >= t) : (v + 0 <= t); print ok ? "yes" : "**no**" }'; }
if [ -z "${R[egressd.err]:-}" ]; then
	hs=$(rt "${R[egressd.hs]:-}" "${R[base.hs]:-}")
	ka=$(rt "${R[egressd.ka]:-}" "${R[base.ka]:-}")
	bk=$(rt "${R[egressd.bulk]:-}" "${R[base.bulk]:-}")
	pb=$(rt "${R[egressd.pbulk]:-}" "${R[nat.pbulk]:-}")
	hwm=$(mib egressd hwm)
	idle=${R[egressd.idle]:-?}
	echo "| egressd vs issue #5 targets | measured | target | met |"
	echo "|---|---|---|---|"
	echo "| new-handshake req/s ÷ direct | ${hs}× | ≥ 0.50× | $(met "$hs" 0.50 ">=") |"
	echo "| keep-alive req/s ÷ direct | ${ka}× | ≥ 0.65× | $(met "$ka" 0.65 ">=") |"
	echo "| bulk through MITM ÷ direct | ${bk}× | ≥ 0.50× | $(met "$bk" 0.50 ">=") |"
	echo "| passthrough bulk ÷ kernel NAT | ${pb}× | ≥ 0.90× | $(met "$pb" 0.90 ">=") |"
	echo "| peak RSS under that load | ${hwm} MiB | ≤ 16 MiB | $(met "$hwm" 16 "<=") |"
	echo "| memory per idle MITM pair | ${idle} KiB | ≤ 64 KiB | $(met "$idle" 64 "<=") |"
	echo
fi
[ -s "$B/notes" ] && mapfile -t -O "${#NOTE[@]}" NOTE <"$B/notes"
for n in "${NOTE[@]}"; do echo "- note: $n"; done
exit 0
