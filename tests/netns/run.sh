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
[ "$TIER" = docker ] && tools="$tools dockerd docker runc busybox openssl python3"
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
# What the tier's worlds could leave behind: state directories (dockerd's
# image store among them), netns files, cgroups in every hierarchy, mounts
# and processes (dockerd, containerd and its shims name the state
# directory on their command lines).  Only names of this tier's worlds
# count (lib.sh's world_name: "t" + the file's name + "-"), so worlds of
# other runs side by side are not mistaken for leftovers.
world_prefixes() {
	local t
	for t in tests/"$TIER"/test_*.sh; do
		echo "t$(basename "$t" .sh | tr -cd 'a-z0-9' | tail -c 12)-"
	done
}
leftovers() {
	local p
	for p in $(world_prefixes); do
		ls -d /run/egress-sim/"$p"* /run/netns/esim-"$p"* 2>/dev/null
		find /sys/fs/cgroup -maxdepth 3 -path "*/egress-sim/$p*" 2>/dev/null
		awk -v p="/$p" 'index($5, p) {print "mount " $5}' /proc/self/mountinfo
		pgrep -af "/run/egress-sim/$p"
	done | LC_ALL=C sort
}
before=$(mktemp)
after=$(mktemp)
left0=$(mktemp)
trap 'rm -f "$before" "$after" "$left0"' EXIT
root_netns_snapshot >"$before"
[ "$TIER" = docker ] && leftovers >"$left0"

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
if [ "$TIER" = docker ]; then
	left=$(leftovers | LC_ALL=C comm -13 "$left0" -)
	if [ -z "$left" ]; then
		pass=$((pass + 1))
		echo "ok - no world of the tier is left (dockerd, netns, cgroups, mounts, image stores)"
	else
		fail=$((fail + 1))
		echo "not ok - worlds of the tier left behind:"
		sed 's/^/#   /' <<<"$left"
	fi
fi
echo "$TIER: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
