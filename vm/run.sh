#!/usr/bin/env bash
# vm/run.sh - the kernel matrix: boots each kernel in a VM and runs the
# kernel-sensitive subset (vm/tests.list) there with this checkout's
# binaries, then prints a kernel x test table.
#
# usage: vm/run.sh [--shell] KERNEL...    (make vm-check / make vm-matrix)
#
# KERNEL is a series (5.10, 6.1, 6.12: the newest Debian offers) or an exact
# Debian version (6.1.0-57); see vm/kernel.sh.  --shell boots the first
# kernel with a shell on the terminal instead of the tests (debugging).
#
# The VM has no network device.  It sees this machine's root filesystem
# read-only over 9p (so every tool the tests need is there) and
# BUILD/vm/VERSION read-write (plan, logs, console.log).  Exit status 0
# only if every test passed in every VM and every VM reported back in time.
#
# Environment (all optional):
#   BUILD            build directory with the programs          [build]
#   VM_CACHE         kernels, apt state, initramfs images [/var/cache/egressd-vm]
#   VM_ACCEL         auto, kvm or tcg; auto tries KVM with a short boot
#                    and falls back to TCG                      [auto]
#   VM_TIMEOUT       seconds for one VM, boot to power-off      [1200]
#   VM_TEST_TIMEOUT  seconds for one test inside the VM         [400]
#   VM_MEM, VM_SMP   memory (MiB) and CPUs of the VM            [2048, 1]
#                    (two vCPUs under TCG on a loaded 2-core machine
#                    once locked up a 5.10 guest: soft lockups, no report)
#   VM_TESTS         only these test names (space-separated)    [all]
#   VM_APPEND        extra kernel command line
#   VM_LIST          the test list                              [vm/tests.list]
#   VM_CPU           qemu's -cpu under TCG                  [Nehalem]
#   VM_TIME_SCALE    TEST_TIME_SCALE in the VM: time bounds of checks
#                    are multiplied by it                 [10 TCG, 2 KVM]
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
REPO=$PWD
HERE=$REPO/vm

BUILD=${BUILD:-build}
case $BUILD in
/*) ;;
*) BUILD=$REPO/$BUILD ;;
esac
export VM_CACHE=${VM_CACHE:-/var/cache/egressd-vm}
VM_ACCEL=${VM_ACCEL:-auto}
VM_TIMEOUT=${VM_TIMEOUT:-1200}
VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-400}
VM_MEM=${VM_MEM:-2048}
VM_SMP=${VM_SMP:-1}
VM_TESTS=${VM_TESTS:-}
VM_APPEND=${VM_APPEND:-}
VM_LIST=${VM_LIST:-$HERE/tests.list}
VM_CPU=${VM_CPU:-Nehalem}
QEMU=${QEMU:-qemu-system-x86_64}

die() {
	echo "vm: $*" >&2
	exit 2
}
say() { echo "vm: $*" >&2; }

SHELL_MODE=
if [ "${1:-}" = --shell ]; then
	SHELL_MODE=1
	shift
fi
[ $# -ge 1 ] || die "usage: vm/run.sh [--shell] KERNEL..."
case $VM_ACCEL in
auto | kvm | tcg) ;;
*) die "VM_ACCEL must be auto, kvm or tcg" ;;
esac

for t in "$QEMU" cpio depmod modprobe apt-get dpkg-deb flock; do
	command -v "$t" >/dev/null || die "'$t' is missing: run scripts/install-deps.sh"
done
for p in egressd egressctl egress-sim bpf-probe nf-probe; do
	[ -x "$BUILD/$p" ] || die "$BUILD/$p is not built (make vm-check builds it)"
done
# The paths go on the kernel command line, which splits on spaces.
case "$REPO$BUILD$VM_CACHE" in
*[[:space:]]*) die "the repository, BUILD and VM_CACHE paths must not contain spaces" ;;
esac

# ---- the plan: vm/tests.list -> NAME<TAB>COMMAND --------------------------

PLAN_NAMES=()
PLAN_CMDS=()
NA_NAMES=()
while read -r first rest; do
	if [ -z "$first" ] || [ "${first:0:1}" = "#" ]; then continue; fi
	optional=
	if [ "$first" = optional ]; then
		optional=1
		read -r first rest <<<"$rest"
	fi
	[ -n "$rest" ] || die "vm/tests.list: '$first' has no command"
	if [ -n "$VM_TESTS" ] && [[ " $VM_TESTS " != *" $first "* ]]; then
		continue
	fi
	if [ -n "$optional" ]; then
		file=$(grep -oE '[^ ]+\.sh' <<<"$rest" | tail -n1)
		if [ ! -e "$file" ]; then
			NA_NAMES+=("$first")
			continue
		fi
	fi
	PLAN_NAMES+=("$first")
	PLAN_CMDS+=("$rest")
done <"$VM_LIST"
[ ${#PLAN_NAMES[@]} -gt 0 ] || [ -n "$SHELL_MODE" ] || die "no test selected (VM_TESTS='$VM_TESTS')"

# ---- kernels ---------------------------------------------------------------

# qemu's options for one boot (accelerator first), kernel and initramfs.
qemu_args() {
	local accel=$1 kdir=$2 initrd=$3
	case $accel in
	kvm) printf '%s\n' -accel kvm -cpu host ;;
	tcg) printf '%s\n' -accel tcg,thread=multi -cpu "$VM_CPU" ;;
	esac
	printf '%s\n' -m "$VM_MEM" -smp "$VM_SMP" -nodefaults -no-user-config \
		-display none -no-reboot -nic none -device virtio-rng-pci \
		-kernel "$kdir/vmlinuz" -initrd "$initrd"
}
# loglevel=5: warnings and stack traces (a soft lockup's) reach the console,
# the bridges' and veths' chatter does not.
CMDLINE_BASE="console=ttyS0,115200 panic=-1 loglevel=5 random.trust_cpu=on mitigations=off"

# KVM where it really runs a Debian kernel (a /dev/kvm may exist and still
# fail, as a nested or paravirtual one does); TCG otherwise.
detect_accel() {
	local kdir=$1 initrd=$2 log
	if [ "$VM_ACCEL" != auto ]; then
		echo "$VM_ACCEL"
		return
	fi
	if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		say "accelerator: tcg (no usable /dev/kvm)"
		echo tcg
		return
	fi
	log=$(mktemp)
	mapfile -t args < <(qemu_args kvm "$kdir" "$initrd")
	timeout -k 5 20 "$QEMU" "${args[@]}" -serial "file:$log" \
		-append "$CMDLINE_BASE egressvm.probe" >/dev/null 2>&1
	if grep -q 'egressvm: probe ok' "$log"; then
		say "accelerator: kvm"
		echo kvm
	else
		say "accelerator: tcg (a KVM test boot did not come up)"
		echo tcg
	fi
	rm -f "$log"
}

declare -A VERSION KDIR INITRD
for k in "$@"; do
	kdir=$("$HERE/kernel.sh" fetch "$k") || die "kernel $k: not available"
	v=$(basename "$kdir")
	initrd=$("$HERE/initramfs.sh" "$kdir") || die "kernel $k: no initramfs"
	VERSION[$k]=$v
	KDIR[$k]=$kdir
	INITRD[$k]=$initrd
done
first=$1
ACCEL=$(detect_accel "${KDIR[$first]}" "${INITRD[$first]}")

case $ACCEL in
tcg) TIME_SCALE=${VM_TIME_SCALE:-10} ;;
*) TIME_SCALE=${VM_TIME_SCALE:-2} ;;
esac

# prepare_out KERNEL: a fresh work directory with the plan and its env;
# prints its path
prepare_out() {
	local out=$BUILD/vm/${VERSION[$1]} i
	rm -rf "$out"
	mkdir -p "$out"
	: >"$out/plan"
	for i in "${!PLAN_NAMES[@]}"; do
		printf '%s\t%s\n' "${PLAN_NAMES[$i]}" "${PLAN_CMDS[$i]}" >>"$out/plan"
	done
	printf 'BUILD=%q\nVM_TEST_TIMEOUT=%q\nTEST_TIME_SCALE=%q\n' "$BUILD" \
		"$VM_TEST_TIMEOUT" "$TIME_SCALE" >"$out/env"
	echo "$out"
}

if [ -n "$SHELL_MODE" ]; then
	v=${VERSION[$first]}
	out=$(prepare_out "$first")
	mapfile -t args < <(qemu_args "$ACCEL" "${KDIR[$first]}" "${INITRD[$first]}")
	say "$v: shell on this terminal; the host root is under /mnt/host (Ctrl-A X quits)"
	exec "$QEMU" "${args[@]}" -serial mon:stdio \
		-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$out,mount_tag=work,security_model=none,multidevs=remap" \
		-append "$CMDLINE_BASE egressvm.shell egressvm.repo=$REPO egressvm.out=$out egressvm.kdir=${KDIR[$first]} $VM_APPEND"
fi

# ---- boot and test ---------------------------------------------------------

# run_vm KERNEL: boots it, runs the plan; the console in OUT/console.log
run_vm() {
	local k=$1 v=${VERSION[$1]} out qpid t0 t1 rc
	out=$(prepare_out "$k")
	: >"$out/console.log"
	mapfile -t args < <(qemu_args "$ACCEL" "${KDIR[$k]}" "${INITRD[$k]}")
	say "$v: booting ($ACCEL, ${#PLAN_NAMES[@]} tests, timeout ${VM_TIMEOUT}s)"
	t0=$(date +%s.%N)
	timeout -k 10 "$VM_TIMEOUT" "$QEMU" "${args[@]}" \
		-serial "file:$out/console.log" \
		-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$out,mount_tag=work,security_model=none,multidevs=remap" \
		-append "$CMDLINE_BASE egressvm.repo=$REPO egressvm.out=$out egressvm.kdir=${KDIR[$k]} $VM_APPEND" \
		>"$out/qemu.log" 2>&1 &
	qpid=$!
	# Progress as it comes (the console is a file; tail stops with qemu).
	tail -F -n +1 --pid="$qpid" "$out/console.log" 2>/dev/null |
		sed -u 's/\r$//' | grep --line-buffered '^egressvm: ' | sed -u "s/^egressvm:/  $v:/" >&2
	wait "$qpid"
	rc=$?
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' >"$out/wall"
	echo "$rc" >"$out/qemu.rc"
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		say "$v: no report within ${VM_TIMEOUT}s: killed (see $out/console.log)"
		# CI keeps only this output: the kernel's last words (a soft
		# lockup's trace, a hung task) say more than the missing result.
		say "$v: the console's last kernel lines:"
		tr -d '\r' <"$out/console.log" | grep -v '^egressvm: ' | tail -n 40 |
			sed "s/^/  $v| /" >&2
		local running
		running=$(tr -d '\r' <"$out/console.log" | sed -n 's/^egressvm: start //p' | tail -n1)
		if [ -n "$running" ] && [ -f "$out/logs/$running.log" ]; then
			say "$v: the last lines of $running's log:"
			tail -n 20 "$out/logs/$running.log" | sed "s/^/  $v| /" >&2
		fi
	fi
}

for k in "$@"; do
	run_vm "$k"
done

# ---- the table -------------------------------------------------------------

# field KERNEL_OUT REGEX: the first capture of a console line
field() {
	tr -d '\r' <"$1/console.log" | sed -nE "s/^egressvm: $2.*/\\1/p" | head -n1
}

failed=0
declare -A CELL HOOKS
rows=()
for k in "$@"; do
	v=${VERSION[$k]}
	out=$BUILD/vm/$v
	done_line=$(field "$out" 'done rc=([0-9]+)')
	CELL[$v, kernel]=$(field "$out" 'fact kernel=([^ ]+)')
	CELL[$v, accel]=$ACCEL
	CELL[$v, boot]=$(field "$out" 'mounted up=([0-9.]+)' | sed 's/$/s/')
	HOOKS[$v]=$(field "$out" 'fact attrib=([^ ]+)')
	case ${HOOKS[$v]} in
	cgroup:*,*) CELL[$v, attrib]="cgroup hooks ($(tr ',' '\n' <<<"${HOOKS[$v]}" | wc -l))" ;;
	*) CELL[$v, attrib]=${HOOKS[$v]:-?} ;;
	esac
	CELL[$v, taskstart]=$(field "$out" 'fact task_start=([a-z]+)')
	kp=$(field "$out" 'fact (kprobe=[a-z]+ fentry=[a-z]+)')
	CELL[$v, kprobe]=${kp:-?}
	CELL[$v, tests]=$(field "$out" 'fact tests_secs=([0-9.]+)' | sed 's/$/s/')
	CELL[$v, wall]="$(cat "$out/wall")s"
	for name in "${PLAN_NAMES[@]}"; do
		line=$(tr -d '\r' <"$out/console.log" | grep -m1 "^egressvm: result $name ")
		if [ -z "$line" ]; then
			CELL[$v, $name]="NO REPORT"
			failed=1
			continue
		fi
		read -r _ _ _ res ok nok secs <<<"$line"
		ok=${ok#ok=}
		nok=${nok#notok=}
		secs=${secs#secs=}
		case $res in
		pass) CELL[$v, $name]="pass $ok/$((ok + nok)) ${secs}s" ;;
		*)
			CELL[$v, $name]="${res^^} $ok/$((ok + nok)) ${secs}s"
			failed=1
			;;
		esac
	done
	for name in "${NA_NAMES[@]}"; do
		CELL[$v, $name]="n/a (no test file)"
	done
	if [ -z "$done_line" ]; then
		failed=1
		CELL[$v, status]="NO REPORT (see build/vm/$v/console.log)"
	else
		CELL[$v, status]="done"
	fi
done

rows=(kernel accel boot attrib taskstart kprobe "${PLAN_NAMES[@]}" "${NA_NAMES[@]}"
	tests wall status)
declare -A LABEL=([kernel]="uname -r" [accel]=accelerator [boot]="boot (guest)"
	[attrib]="attribution path" [taskstart]="pid start time in BPF"
	[kprobe]="kprobe/fentry progs"
	[tests]="modules + tests" [wall]="wall (qemu)" [status]="VM")
{
	w=22
	printf '\n%-*s' "$w" "test \\ kernel"
	for k in "$@"; do printf ' | %-28s' "${VERSION[$k]}"; done
	printf '\n%s' "$(printf '%*s' "$w" '' | tr ' ' -)"
	for k in "$@"; do printf '%s' "-|-$(printf '%28s' '' | tr ' ' -)"; done
	echo
	for r in "${rows[@]}"; do
		printf '%-*s' "$w" "${LABEL[$r]:-$r}"
		for k in "$@"; do printf ' | %-28s' "${CELL[${VERSION[$k]}, $r]:-}"; done
		echo
	done
	echo
	for k in "$@"; do
		echo "attribution hooks on ${VERSION[$k]}: ${HOOKS[${VERSION[$k]}]#cgroup:}"
	done
} | tee "$BUILD/vm/results.txt"

npass=0
nfail=0
for k in "$@"; do
	for name in "${PLAN_NAMES[@]}"; do
		case ${CELL[${VERSION[$k]}, $name]} in
		pass*) npass=$((npass + 1)) ;;
		*) nfail=$((nfail + 1)) ;;
		esac
	done
done
echo "vm: $npass passed, $nfail failed"
[ "$failed" -eq 0 ]
