#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine (as root):
# installs the Debian packages the project needs, builds, checks formatting,
# then `make check` (unit, netns and docker tiers) and, when
# CHECK_VM_KERNELS names kernels, the kernel matrix in VMs after it
# (`make vm-matrix`).  The last line is a plain "N passed, N failed"
# summary of every tier.
#
# CHECK_VM_KERNELS   kernels for make vm-matrix (empty: no VMs)       []
# CHECK_VM_BUDGET    seconds the whole run may take (0: no limit); if
#                    what is left after make check does not cover every
#                    kernel at CHECK_VM_PER_KERNEL seconds each, only the
#                    first kernel runs (or none, said loudly)          [0]
# CHECK_VM_PER_KERNEL  seconds one kernel may take (VM_TIMEOUT)      [1200]
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

bash scripts/install-deps.sh
make -j"$(nproc)" all
make format-check

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
make check 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

kernels=${CHECK_VM_KERNELS:-}
budget=${CHECK_VM_BUDGET:-0}
per=${CHECK_VM_PER_KERNEL:-1200}
if [ -n "$kernels" ]; then
	n=$(wc -w <<<"$kernels")
	left=$((budget - (SECONDS - start)))
	if [ "$budget" -gt 0 ] && [ "$left" -lt $((n * per)) ]; then
		if [ "$left" -ge "$per" ]; then
			echo "check: ${left}s left of ${budget}s: the kernel matrix runs on ${kernels%% *} only (not: ${kernels#* })"
			kernels=${kernels%% *}
		else
			echo "check: ${left}s left of ${budget}s: no time for the kernel matrix ($kernels)"
			kernels=
		fi
	fi
fi
if [ -n "$kernels" ]; then
	t=$SECONDS
	make vm-matrix VM_KERNELS="$kernels" VM_TIMEOUT="$per" 2>&1 | tee -a "$log"
	vrc=${PIPESTATUS[0]}
	echo "check: kernel matrix ($kernels) took $((SECONDS - t))s"
	[ "$vrc" -eq 0 ] || rc=$vrc
fi
set -e

# Check prints "NN%: Checks: C, Failures: F, Errors: E"; the shell tiers
# print "<tier>: N passed, M failed".  The last line adds them up.
pass=0
fail=0
summary=$(grep -Eo 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1 || true)
if [ -n "$summary" ]; then
	read -r c f e <<<"$(echo "$summary" | grep -Eo '[0-9]+' | tr '\n' ' ')"
	pass=$((c - f - e))
	fail=$((f + e))
else
	echo "check: no Check summary found (the unit runner did not run)" >&2
	rc=1
fi
while read -r p f; do
	pass=$((pass + p))
	fail=$((fail + f))
done < <(sed -nE 's/^(netns|docker|vm): ([0-9]+) passed, ([0-9]+) failed$/\2 \3/p' "$log")
echo "total: $pass passed, $fail failed"
exit "$rc"
