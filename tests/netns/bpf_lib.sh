# shellcheck shell=bash
# tests/netns/bpf_lib.sh - helpers shared by test_bpf_*.sh; sourced after
# lib.sh.  Each test pins into its own private bpffs instance (mounted by
# `egressctl bpf attach` on a fresh directory, never on /sys/fs/bpf) and
# attaches only to its world's cgroup.  On exit, also after a failure, it
# detaches and unpins, unmounts, then brings its worlds down.

BUILD_DIR=$(dirname "$SIM")
PROBE=$BUILD_DIR/bpf-probe
EGRESSCTL=$BUILD_DIR/egressctl
CG2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
PINS=/tmp/egress-bpf-$(basename "$0" .sh)-$$

for f in "$PROBE" "$EGRESSCTL"; do
	if [ ! -x "$f" ]; then
		echo "not ok - $f is not built (make check-netns builds it)"
		exit 1
	fi
done
if ! command -v bpftool >/dev/null; then
	echo "not ok - bpftool is missing: run scripts/install-deps.sh"
	exit 1
fi

TMPD=
bpf_cleanup() {
	if [ -e "$PINS" ]; then
		"$EGRESSCTL" bpf detach --pin-dir "$PINS" >/dev/null 2>&1 ||
			echo "# warning: detach $PINS failed" >&2
		if mountpoint -q "$PINS"; then umount "$PINS"; fi
		rmdir "$PINS" 2>/dev/null
	fi
	if [ -n "$TMPD" ]; then rm -rf "$TMPD"; fi
}
trap 'bpf_cleanup; cleanup_worlds' EXIT
TMPD=$(mktemp -d /tmp/egress-bpf-test.XXXXXX)

# world_cgroup NAME: the world's cgroup, absolute (status gives it relative
# to the v2 mount)
world_cgroup() {
	printf '%s%s' "$CG2" \
		"$("$SIM" status "$1" | sed -n 's/^ *"path": "\(.*\)",$/\1/p' | head -n1)"
}

# bpf_attach NAME [egressctl bpf attach options]
bpf_attach() {
	local w=$1
	shift
	"$EGRESSCTL" bpf attach --cgroup "$(world_cgroup "$w")" --pin-dir "$PINS" "$@"
}

# jfield KEY JSON: a numeric or string field of a one-line JSON object
jfield() {
	printf '%s' "$2" | grep -o "\"$1\":\\(\"[^\"]*\"\\|[0-9-]*\\)" | head -n1 |
		cut -d: -f2- | tr -d '"'
}

# wait_ready FILE: until a server started in the background says "ready"
wait_ready() {
	for _ in $(seq 200); do
		grep -q '^ready' "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# The programs attached to a cgroup, one "TYPE NAME" per line (not
# bpftool: its `cgroup show` fails on kernels before 6.0).
cgroup_progs() {
	"$PROBE" cgroup-progs "$1" | sort
}
