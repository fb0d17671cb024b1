#!/usr/bin/env bash
# vm/guest.sh - runs inside the VM, chrooted into the host's root (read-only
# over 9p), started by vm/init.
#
# usage: guest.sh REPO OUT KDIR
#
# Loads the test modules of vm/modules.list from the cached kernel tree
# KDIR, reports facts about the kernel, then runs every test of OUT/plan
# (written by vm/run.sh: "NAME<TAB>COMMAND" per line; OUT/env sets BUILD,
# VM_TEST_TIMEOUT and TEST_TIME_SCALE) from REPO, each under a timeout,
# its whole output in OUT/logs/NAME.log.  What the host reads
# comes on the console as "egressvm: ..." lines:
#   egressvm: fact KEY=VALUE
#   egressvm: start NAME
#   egressvm: result NAME pass|fail|timeout ok=N notok=N secs=S
set -uo pipefail
REPO=$1
OUT=$2
KDIR=$3
say() { echo "egressvm: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

cd "$REPO" || {
	say "error: no $REPO in the VM"
	exit 1
}
# shellcheck source=/dev/null
. "$OUT/env"
mkdir -p "$OUT/logs"

t0=$(now)
failed_mods=
absent_mods=
while read -r name when; do
	[ -z "$name" ] || [ "${name:0:1}" = "#" ] || [ "$when" = boot ] && continue
	# A module this kernel has neither built in nor as a file (nft_counter
	# is part of nf_tables since 6.x) is not an error.
	if ! modprobe -d "$KDIR/modules" --show-depends "$name" >/dev/null 2>&1; then
		absent_mods="$absent_mods $name"
	elif ! modprobe -d "$KDIR/modules" "$name" 2>>"$OUT/logs/modprobe.log"; then
		failed_mods="$failed_mods $name"
	fi
done <vm/modules.list
[ -z "$absent_mods" ] || say "fact modules_absent=${absent_mods# }"
[ -z "$failed_mods" ] || say "warning: modules not loaded:$failed_mods (see logs/modprobe.log)"
say "fact modules_secs=$(since "$t0")"
say "fact kernel=$(uname -r)"

# Which kprobe/fentry program types this kernel offers: the project's
# attribution uses the cgroup hooks only, but the table says whether a
# kprobe variant could run here.
feat=$(bpftool feature probe kernel 2>/dev/null)
kp=no
fe=no
grep -q 'program_type kprobe is available' <<<"$feat" && kp=yes
grep -q 'program_type tracing is available' <<<"$feat" && fe=yes
say "fact kprobe=$kp fentry=$fe"

# The attribution path: the hooks `egressctl bpf attach` really attached
# on this kernel, read back from the cgroup.
CG=/sys/fs/cgroup/egressvm-probe
PINS=/tmp/egressvm-pins
mkdir -p "$CG"
if "$BUILD/egressctl" bpf attach --cgroup "$CG" --pin-dir "$PINS" \
	>"$OUT/logs/attach.log" 2>&1; then
	hooks=$("$BUILD/bpf-probe" cgroup-progs "$CG" 2>>"$OUT/logs/attach.log" |
		awk '{print $1}' | sed -E 's/^cgroup_//; s/^inet([46])_connect/connect\1/;
			s/^udp([46])_sendmsg/sendmsg\1/; s/^inet_egress/skb_egress/;
			s/^inet_sock_create/sock_create/; s/^sock_ops/sockops/' |
		sort -u | tr '\n' ',' | sed 's/,$//')
	say "fact attrib=cgroup:${hooks:-none}"
	# The loader retries without the task's start time when the kernel
	# refuses bpf_get_current_task_btf to cgroup programs (older kernels).
	if grep -q 'failed to load' "$OUT/logs/attach.log"; then
		say "fact task_start=no"
	else
		say "fact task_start=yes"
	fi
	"$BUILD/egressctl" bpf detach --pin-dir "$PINS" >>"$OUT/logs/attach.log" 2>&1
else
	say "fact attrib=attach-failed"
fi
mountpoint -q "$PINS" && umount "$PINS"
rmdir "$PINS" "$CG" 2>/dev/null

export SIM=$BUILD/egress-sim BUILD_DIR=$BUILD TEST_TIME_SCALE
while IFS=$'\t' read -r name cmd; do
	[ -n "$name" ] || continue
	say "start $name"
	t=$(now)
	timeout -k 5 "$VM_TEST_TIMEOUT" bash -c "$cmd" >"$OUT/logs/$name.log" 2>&1 </dev/null
	rc=$?
	secs=$(since "$t")
	ok=$(grep -c '^ok - ' "$OUT/logs/$name.log")
	nok=$(grep -c '^not ok - ' "$OUT/logs/$name.log")
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		res=timeout
	elif [ "$rc" -ne 0 ] || [ "$nok" -ne 0 ] || [ "$ok" -eq 0 ]; then
		res=fail
	else
		res=pass
	fi
	# The failures themselves, so that the console alone says what broke.
	[ "$res" = pass ] || grep -m 10 '^not ok - ' "$OUT/logs/$name.log" |
		cut -c1-300 | sed 's/^/egressvm:   /'
	say "result $name $res ok=$ok notok=$nok secs=$secs"
done <"$OUT/plan"

dmesg >"$OUT/logs/dmesg.log" 2>&1
say "fact tests_secs=$(since "$t0")"
