#!/usr/bin/env bash
# `down` removes everything `up` made, is idempotent, and cleans up after
# an `up` that crashed half-way; worlds side by side do not collide.
. "$(dirname "$0")/lib.sh"
require_root

CG=$(awk '$9 == "cgroup2" {print $5}' /proc/self/mountinfo | head -n1)
trace() {
	ip netns list | grep -- "-$$-" | sort
	ip -o link show | awk -F': ' '{print $2}' | sort
	find "$CG" -maxdepth 3 -path "*egress-sim/*-$$-*" -type d 2>/dev/null | sort
	grep -c -- "-$$-" /proc/self/mountinfo
	ls /run/egress-sim 2>/dev/null | grep -- "-$$-"
}

W=$(world_name a)
before=$(trace)
check "up" world_up "$W" --containers 1
check_fails "a second up of the same world is refused" "$SIM" up "$W"
check_match "the first world is untouched" '"state": "up"' "$("$SIM" status "$W")"
check "down" "$SIM" down "$W"
check_eq "down leaves no trace (netns, links, cgroups, mounts, state)" "$before" "$(trace)"
check_match "down again is a no-op" "nothing to remove" "$("$SIM" down "$W")"

for step in state cgroups netns links services container; do
	EGRESS_SIM_CRASH_AT=$step "$SIM" up "$W" --containers 1 >/dev/null 2>&1
	check_eq "up crashing at '$step' exits as a crash would" 3 $?
	check "down after a crash at '$step'" "$SIM" down "$W"
	check_eq "no trace after a crash at '$step'" "$before" "$(trace)"
done

A=$(world_name p1)
B=$(world_name p2)
world_up "$A" --containers 1 &
world_up "$B" --containers 1 &
wait
WORLDS+=("$A" "$B")
check_eq "two worlds side by side: first" "hello from example.test GET /" \
	"$(in_world "$A" container:0 curl -sS -m 5 http://example.test/)"
check_eq "two worlds side by side: second" "hello from example.test GET /" \
	"$(in_world "$B" container:0 curl -sS -m 5 http://example.test/)"
a_log=$(grep -c '"event":"request"' "/run/egress-sim/$A/services.jsonl")
b_log=$(grep -c '"event":"request"' "/run/egress-sim/$B/services.jsonl")
check_eq "each world's service log holds its own request" "1 1" "$a_log $b_log"
check "down first" "$SIM" down "$A"
check_eq "the second world still works" "hello from example.test GET /" \
	"$(in_world "$B" container:0 curl -sS -m 5 http://example.test/)"
check "down second" "$SIM" down "$B"
check_eq "no trace after both" "$before" "$(trace)"
finish
