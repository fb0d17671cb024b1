#!/usr/bin/env bash
# Attribution, end to end, with the BPF object attached to a world's cgroup.
#
# For TCP, unconnected UDP and connected UDP, from a host process, a
# host-network process (host netns, a Docker-like cgroup) and a bridged
# container process, N back-to-back connections each come from a fresh
# process; every one must be attributed to that process's pid and exe,
# with no miss.  The lookup is made where and when the daemon will make it:
#   TCP  in the host netns, behind a REDIRECT (like the proxy), after
#        accept() and before reading the client's first byte;
#   UDP  by an NFQUEUE consumer in the host netns (mangle OUTPUT for host
#        processes, mangle PREROUTING on docker0 for containers) while the
#        kernel still holds the first packet.  For the host's connected UDP
#        that packet is queued before cgroup_skb/egress has run: the test
#        asserts that those lookups went through sock_diag.
# Then the GitHub step/action of a process under a (fake) Runner.Worker,
# and the JSON lines of `egressctl attrib`.
. "$(dirname "$0")/lib.sh"
require_root
. "$(dirname "$0")/bpf_lib.sh"

N=${BPF_TEST_CONNECTIONS:-200}
W=$(world_name a)
HOSTNET=docker/$(printf 'b%.0s' $(seq 64)) # a host-network "container"
TCP_DST=198.51.100.200:8000                # redirected to the probe
UDP_DST=203.0.113.10:9999                  # the world's UDP echo, queued

check "up with a container" world_up "$W" --containers 1
check "attach to the world's cgroup" bpf_attach "$W"

# The daemon's interception, reduced to what the lookups need; inside the
# world's host netns only.
rules() {
	local ipt=(in_world "$W" host iptables -w)
	"${ipt[@]}" -t nat -A OUTPUT -p tcp -d "${TCP_DST%:*}" --dport 8000 \
		-j REDIRECT --to-ports 18000 &&
		"${ipt[@]}" -t nat -A PREROUTING -i docker0 -p tcp -d "${TCP_DST%:*}" \
			--dport 8000 -j REDIRECT --to-ports 18000 &&
		"${ipt[@]}" -t mangle -A OUTPUT -p udp -d "${UDP_DST%:*}" --dport 9999 \
			-j NFQUEUE --queue-num 7 &&
		"${ipt[@]}" -t mangle -A PREROUTING -i docker0 -p udp -d "${UDP_DST%:*}" \
			--dport 9999 -j NFQUEUE --queue-num 7
}
check "REDIRECT and NFQUEUE rules inside the world's host netns" rules

# run_case DESC SERVER-ARGS -- CLIENT-PLACE... -- CLIENT-ARGS...
# Prints the server's summary line.
run_case() {
	local server=() place=() client=()
	while [ "$1" != -- ]; do server+=("$1"); shift; done
	shift
	while [ "$1" != -- ]; do place+=("$1"); shift; done
	shift
	client=("$@")
	: >"$TMPD/srv"
	"$SIM" exec "$W" host -- "$PROBE" "${server[@]}" --count "$N" \
		--pin-dir "$PINS" >"$TMPD/srv" 2>"$TMPD/srv.err" &
	local spid=$!
	if ! wait_ready "$TMPD/srv"; then
		kill "$spid" 2>/dev/null
		echo "server did not start: $(cat "$TMPD/srv.err")"
		return
	fi
	"$SIM" exec "$W" "${place[@]}" -- "$PROBE" "${client[@]}" --count "$N" \
		>"$TMPD/cli" 2>&1
	wait "$spid"
	tail -n1 "$TMPD/srv"
	head -c 400 "$TMPD/srv.err" >&2
}

# verdict SUMMARY: "ok=N wrong_pid=0 wrong_exe=0 misses=0"
verdict() {
	local s=$1 miss
	miss=$(($(jfield no_entry "$s") + $(jfield exited "$s") + $(jfield reused "$s") +
		$(jfield cgroup_mismatch "$s") + $(jfield other_error "$s")))
	echo "ok=$(jfield ok "$s") wrong_pid=$(jfield wrong_pid "$s")" \
		"wrong_exe=$(jfield wrong_exe "$s") misses=$miss"
}
want="ok=$N wrong_pid=0 wrong_exe=0 misses=0"

declare -A PLACES=(
	[host]="host"
	[host-network]="host --cgroup $HOSTNET"
	[container]="container:0"
)
for who in host host-network container; do
	read -ra place <<<"${PLACES[$who]}"
	s=$(run_case tcp-server --port 18000 -- "${place[@]}" -- \
		tcp-client --connect "$TCP_DST")
	check_eq "TCP from a $who process: $N connections, looked up before the first read" \
		"$want" "$(verdict "$s")"
	echo "# tcp $who: $s"

	s=$(run_case udp-queue --queue 7 -- "${place[@]}" -- \
		udp-client --connect "$UDP_DST")
	check_eq "unconnected UDP from a $who process: $N first packets, looked up while queued" \
		"$want" "$(verdict "$s")"
	echo "# udp $who: $s"

	s=$(run_case udp-queue --queue 7 -- "${place[@]}" -- \
		udp-client --connect "$UDP_DST" --connected)
	check_eq "connected UDP from a $who process: $N first packets, looked up while queued" \
		"$want" "$(verdict "$s")"
	echo "# udp-connected $who: $s"
	if [ "$who" = container ]; then
		check_eq "... a container's connected UDP is in the map before the host queues it" \
			"$N" "$(jfield exact "$s")"
	else
		check_eq "... the host's first connected-UDP packet is queued before cgroup_skb ran: found through sock_diag" \
			"$N" "$(jfield diag "$s")"
	fi
done

# GitHub context: Runner.Worker (a copy of bash at a path of ours) ->
# bash with the step's environment (trusted) -> a client that sets its own
# GITHUB_ACTION (ignored).  "; true" keeps each bash from exec'ing away.
WORKER=$TMPD/actions-runner/cached/bin/Runner.Worker
mkdir -p "$(dirname "$WORKER")" && cp /bin/bash "$WORKER"
# Nothing here is timed: the client and the server stay until the checks
# are done (an emulated CPU in the VM matrix takes seconds for them).
HELD=$TMPD/held
in_world "$W" host socat TCP-LISTEN:18001,bind=127.0.0.1,reuseaddr SYSTEM:'sleep 120' &
srv=$!
for _ in $(seq 100); do
	[ -n "$(in_world "$W" host ss -Hltn 'sport = :18001')" ] && break
	sleep 0.1
done
# the client holds its connection open while stdin lasts: until $HELD
"$SIM" exec "$W" host --cgroup runner -- "$WORKER" -c \
	"env GITHUB_ACTION=__run_7 GITHUB_ACTION_REPOSITORY=actions/checkout \
	 bash -c 'until [ -e $HELD ]; do sleep 0.1; done | GITHUB_ACTION=evil socat -u - TCP:127.0.0.1:18001; true'; true" &
RUNNER_CG=$(world_cgroup "$W" | sed "s|^$CG2||")/runner
for _ in $(seq 200); do
	line=$("$EGRESSCTL" attrib --pin-dir "$PINS" --worker-exe "$WORKER" \
		--runner-cgroup "$RUNNER_CG" | grep '"dst":"127.0.0.1:18001"' |
		grep '"proto":"tcp"')
	[ -n "$line" ] && break
	sleep 0.05
done
check_eq "step from the process below Runner.Worker (not the client's own GITHUB_ACTION)" \
	"__run_7" "$(jfield step "$line")"
check_eq "action from the same trusted process" "actions/checkout" "$(jfield action "$line")"
check_match "the record names the client's exe, command line and cgroup" \
	"\"exe\":\"/usr/bin/socat\",\"cmdline\":\\[\"socat\",\"-u\",\"-\",\"TCP:127.0.0.1:18001\"\\],\"cgroup\":\"$RUNNER_CG\"" \
	"$line"
line=$("$EGRESSCTL" attrib --pin-dir "$PINS" --worker-exe "$WORKER" \
	--runner-cgroup /elsewhere | grep '"dst":"127.0.0.1:18001"' | grep '"proto":"tcp"')
check_match "with another runner cgroup the record is still resolved..." '"status":"ok"' "$line"
check_eq "... but has no GitHub context" "" "$(jfield step "$line")"
touch "$HELD"
kill "$srv" 2>/dev/null
wait

# egressctl attrib: one JSON line per entry, with its hook and status
out=$("$EGRESSCTL" attrib --pin-dir "$PINS")
check_match "attrib lists TCP entries written by sockops" '"proto":"tcp".*"hook":"sockops"' "$out"
check_match "... unconnected UDP written by sendmsg4 with source 0.0.0.0" \
	'"proto":"udp","src":"0\.0\.0\.0:[0-9]+","dst":"203\.0\.113\.10:9999".*"hook":"sendmsg4"' "$out"
check_match "... connected UDP written by cgroup_skb/egress" \
	'"src":"172\.17\.0\.2:[0-9]+","dst":"203\.0\.113\.10:9999".*"hook":"skb"' "$out"
check_match "... and says when the process is gone" '"status":"process exited"' "$out"
n=$(printf '%s\n' "$out" | grep -c '"proto"')
check "every line is a JSON object with proto, src, dst, status" \
	test "$n" -eq "$(printf '%s\n' "$out" | grep -c '"proto":"[a-z]*","src":"[0-9.:]*","dst":"[0-9.:]*","status":')"

# --follow prints entries as they appear
"$EGRESSCTL" attrib --pin-dir "$PINS" --follow --interval 50 >"$TMPD/follow" &
fpid=$!
# running once it has printed the entries already there
for _ in $(seq 100); do
	[ -s "$TMPD/follow" ] && break
	sleep 0.1
done
in_world "$W" container:0 bash -c 'echo x | socat -t1 - UDP:203.0.113.10:9998' >/dev/null 2>&1
for _ in $(seq 100); do
	grep -q '"dst":"203\.0\.113\.10:9998"' "$TMPD/follow" && break
	sleep 0.1
done
kill "$fpid"
wait "$fpid" 2>/dev/null
check_match "--follow shows a new entry while it runs" '"dst":"203\.0\.113\.10:9998"' "$(cat "$TMPD/follow")"

# sock_diag in a designated netns: a host process's UDP socket, connected
# but silent (no packet, so no cgroup_skb entry), looked up from outside
# the world by egressctl with --netns
rm -f "$HELD"
in_world "$W" host bash -c "until [ -e $HELD ]; do sleep 0.1; done | socat -u - UDP:203.0.113.10:9997" &
for _ in $(seq 100); do
	src=$(in_world "$W" host ss -Hun dst 203.0.113.10:9997 | awk '{print $(NF - 1)}')
	[ -n "$src" ] && break
	sleep 0.05
done
out=$("$EGRESSCTL" attrib --pin-dir "$PINS" --lookup udp "$src" 203.0.113.10:9997)
check_match "a silent connected UDP socket has no entry in the map" '"status":"no entry"' "$out"
out=$("$EGRESSCTL" attrib --pin-dir "$PINS" --netns "/run/netns/esim-$W-host" \
	--lookup udp "$src" 203.0.113.10:9997)
check_match "... and is found with sock_diag in the netns named by --netns" \
	'"status":"ok".*"hook":"connect4".*"via":"diag","exe":"/usr/bin/socat"' "$out"
touch "$HELD"
wait

out=$("$EGRESSCTL" attrib --pin-dir "$PINS" --lookup udp 172.17.0.2:1 203.0.113.10:1)
check_eq "--lookup of an unknown tuple fails" 1 $?
check_match "... saying so" '"status":"no entry"' "$out"
finish
