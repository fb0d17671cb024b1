#!/usr/bin/env bash
# Bad input gets a clear error and leaves nothing half-built.
. "$(dirname "$0")/lib.sh"
require_root

W=$(world_name e)
out=$("$SIM" exec "$W" host -- true 2>&1)
check_eq "exec in an unknown world fails" 1 $?
check_match "... saying there is no such world" "no world named '$W'" "$out"
check_fails "status of an unknown world fails" "$SIM" status "$W"
check_fails "ca of an unknown world fails" "$SIM" ca "$W"
check_match "a bad world name is refused" "not a world name" "$("$SIM" up 'Bad_Name' 2>&1)"
check_match "usage errors print the usage" "usage: egress-sim" "$("$SIM" frobnicate 2>&1)"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$SIM" up "$W" 2>&1)
check_eq "up without privileges fails" 1 $?
check_match "... saying root is needed" "must run as root" "$out"
check_fails "... and leaves no world behind" test -e "/run/egress-sim/$W"

check "up" world_up "$W"
out=$(in_world "$W" host no-such-tool-egress 2>&1)
check_eq "a missing tool exits 127" 127 $?
check_match "... naming the tool and how to install it" \
	"no-such-tool-egress: command not found.*install-deps" "$out"
check_match "an unknown place is refused" "unknown place" \
	"$("$SIM" exec "$W" moon -- true 2>&1)"
check_match "a container that does not exist is refused" "has no container:5" \
	"$("$SIM" exec "$W" container:5 -- true 2>&1)"
check_match "--cgroup must stay inside the world" "inside the world" \
	"$("$SIM" exec "$W" host --cgroup ../../x -- true 2>&1)"
check_match "a count that is not a number is refused" "not a count" \
	"$("$SIM" up "$W-x" --containers many 2>&1)"
check_match "too many containers are refused" "at most" \
	"$("$SIM" up "$W-x" --containers 150 --user-containers 100 2>&1)"
check_fails "... and leave no world behind" test -e "/run/egress-sim/$W-x"
finish
