#!/usr/bin/env bash
# check-netns (and, through tests/docker/run.sh, check-docker): end-to-end
# tests inside simulated network namespaces.
#
# usage: run.sh [BUILD] [TIER]   (TIER: netns or docker; default netns)
#
# Runs every tests/TIER/test_*.sh and fails if any check fails, or if the
# machine's own network namespace changed during the tier (links, routes,
# netfilter rules, forwarding sysctls).  Ends with "TIER: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
TIER=${2:-netns}
case $BUILD in
/*) ;;
*) BUILD=$PWD/$BUILD ;;
esac
export SIM=$BUILD/egress-sim
export BUILD_DIR=$BUILD

if [ "$(id -u)" -ne 0 ]; then
	echo "check-$TIER: needs root (it creates network namespaces and cgroups)" >&2
	exit 1
fi
tools="curl dig socat setpriv iptables-save"
[ "$TIER" = docker ] && tools="$tools dockerd docker busybox"
for tool in $tools; do
	if ! command -v "$tool" >/dev/null; then
		echo "check-$TIER: '$tool' is missing: run scripts/install-deps.sh" >&2
		exit 1
	fi
done

# The machine's own network, as seen before the tier.
root_netns_snapshot() {
	ip -o link show | sed 's/ state [A-Z]*//; s/qlen [0-9]*//' | awk -F': ' '{print $2}' | sort
	ip route show table all
	iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	cat /proc/sys/net/ipv4/ip_forward
	for f in /proc/sys/net/ipv4/conf/*/forwarding /proc/sys/net/ipv6/conf/*/forwarding; do
		[ -e "$f" ] && echo "$f $(cat "$f")"
	done
}
before=$(mktemp)
after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT
root_netns_snapshot >"$before"

pass=0
fail=0
for t in tests/"$TIER"/test_*.sh; do
	echo "# $t"
	out=$(bash "$t" 2>&1)
	rc=$?
	echo "$out"
	p=$(grep -c '^ok - ' <<<"$out")
	f=$(grep -c '^not ok - ' <<<"$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $t exited $rc"
	fi
	pass=$((pass + p))
	fail=$((fail + f))
done

root_netns_snapshot >"$after"
if diff -u "$before" "$after" >/dev/null; then
	pass=$((pass + 1))
	echo "ok - the machine's own network namespace is unchanged"
else
	fail=$((fail + 1))
	echo "not ok - the machine's own network namespace changed:"
	diff -u "$before" "$after" | sed 's/^/#   /'
fi
echo "$TIER: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
