# shellcheck shell=bash
# tests/netns/egressd_lib.sh - running egressd inside a world; sourced after
# lib.sh.  The daemon runs in the world's host netns, in the cgroup
# <world>/egressd, with BPF attached to the world's cgroup and every file
# (run dir, CA, log, pins) under the world's state directory, so two worlds
# never collide and `egress-sim down` removes it all.  It stays in the
# caller's mount namespace (--keep-mounts) so its pinned BPF links outlive it
# as they would on a real host.

BUILD_DIR=${BUILD_DIR:-$(dirname "$SIM")}
EGRESSD=$BUILD_DIR/egressd
EGRESSCTL=$BUILD_DIR/egressctl
CG2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
for f in "$EGRESSD" "$EGRESSCTL"; do
	if [ ! -x "$f" ]; then
		echo "not ok - $f is not built"
		exit 1
	fi
done

world_cgroup() {
	printf '%s%s' "$CG2" \
		"$("$SIM" status "$1" | sed -n 's/^ *"path": "\(.*\)",$/\1/p' | head -n1)"
}

# Rules most tests add: the world's resolver (DNS over UDP and TCP is
# judged: the resolver by an IP udp rule, the name by a rule naming it) and
# every name of the simulated zone for DNS only, so that a test about HTTP
# or TLS blocking gets past name resolution.
DNS_RULES=$'198.51.100.53:53/udp\ndns:*.sim.test\n'

ed_dir() { echo "/run/egress-sim/$1/egressd"; }

# in_host W CMD...: a command in the world's host netns, same mount ns
in_host() {
	local w=$1
	shift
	"$SIM" exec "$w" host --keep-mounts -- "$@"
}

# egressd_start W POLICY [egressd options]: starts the daemon, waits until
# its control socket answers; EGRESSD_PID is the egress-sim exec process
# (which became egressd)
egressd_start() {
	local w=$1 pol=$2 d
	shift 2
	d=$(ed_dir "$w")
	mkdir -p "$d"
	"$SIM" exec "$w" host --keep-mounts --cgroup egressd -- "$EGRESSD" \
		--foreground --policy "$pol" --run-dir "$d" --ca-dir "$d/ca" \
		--log "$d/connections.jsonl" --pin-dir "$d/pins" \
		--cgroup "$(world_cgroup "$w")" --upstream-ca "$("$SIM" ca "$w")" \
		--workers 2 --docker-socket none "$@" >>"$d/egressd.err" 2>&1 &
	EGRESSD_PID=$!
	for _ in $(seq 200); do
		if [ -S "$d/control.sock" ] &&
			"$EGRESSCTL" status --control-socket "$d/control.sock" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$EGRESSD_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "# egressd did not start: $(tail -n 5 "$d/egressd.err")" >&2
	return 1
}

# ed_ctl W CMD [args]: egressctl CMD for the world's daemon, run in the
# world's host netns (status reports that namespace's netfilter state)
ed_ctl() {
	local w=$1 cmd=$2
	shift 2
	in_host "$w" "$EGRESSCTL" "$cmd" --control-socket "$(ed_dir "$w")/control.sock" \
		--pin-dir "$(ed_dir "$w")/pins" "$@"
}

# nf_snapshot W: the world's netfilter tables, without counters
nf_snapshot() {
	local t
	for t in raw mangle nat filter; do
		in_host "$1" iptables-save -t "$t" | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	done
}

# egressd_stop W: a clean stop through the control socket
egressd_stop() {
	ed_ctl "$1" stop >/dev/null 2>&1
	wait "$EGRESSD_PID" 2>/dev/null
}

ed_log() { cat "$(ed_dir "$1")/connections.jsonl" 2>/dev/null; }

# egressd_world W: for a test that runs egressd in world W: its pins on a
# bpffs of their own (so the pinned links outlive the daemon, as on a real
# host, and go with the test), and an EXIT trap that shows the daemon's
# last errors when a check failed, runs the test's own on_cleanup if it
# defines one (background helpers), stops egressd, removes what it left
# (--cleanup), unmounts the pins and takes the test's worlds down.
egressd_world() {
	ED_WORLD=$1
	local d
	d=$(ed_dir "$1")
	mkdir -p "$d/pins"
	mountpoint -q "$d/pins" || mount -t bpf bpf "$d/pins"
	trap egressd_world_exit EXIT
}

egressd_world_exit() {
	local d
	d=$(ed_dir "$ED_WORLD")
	[ "$FAIL" -eq 0 ] ||
		sed "s/^/# egressd: /" "$d/egressd.err" | grep -v "^# egressd: proxy: #" | tail -n 30
	if declare -F on_cleanup >/dev/null; then on_cleanup; fi
	egressd_stop "$ED_WORLD"
	in_host "$ED_WORLD" "$EGRESSD" --cleanup --pin-dir "$d/pins" >/dev/null 2>&1
	if mountpoint -q "$d/pins"; then umount "$d/pins"; fi
	cleanup_worlds
}
