#!/usr/bin/env bash
# The BPF object's life cycle on a world's cgroup: attach pins links and
# maps in a private bpffs instance; the blocks outlive the loader (fail
# closed); a second attach (a daemon restarting after a crash) switches
# the pinned links to the new programs in place, with no moment without a
# block, and keeps the attribution map; a PID reused after its process
# exited is not attributed to the newcomer; detach leaves no program on
# any cgroup and nothing pinned or mounted, also after the world's cgroup
# has gone.
. "$(dirname "$0")/lib.sh"
require_root
. "$(dirname "$0")/bpf_lib.sh"

W=$(world_name l)
check "up with a container" world_up "$W" --containers 1
CG=$(world_cgroup "$W")
root_before=$(cgroup_progs "$CG2")
probe() { in_world "$W" "$1" "$PROBE" "${@:2}" 2>&1; }
link_ids() { "$EGRESSCTL" bpf status --pin-dir "$PINS" | grep -o '"link_id":[0-9]*' | xargs; }
prog_ids() { "$EGRESSCTL" bpf status --pin-dir "$PINS" | grep -o '"prog_id":[0-9]*' | xargs; }

check "attach" bpf_attach "$W"
check_eq "seven programs on the world's cgroup" \
	"cgroup_inet4_connect egress_connect4
cgroup_inet6_connect egress_connect6
cgroup_inet_egress egress_skb
cgroup_inet_sock_create egress_sock_create
cgroup_sock_ops egress_sockops
cgroup_udp4_sendmsg egress_sendmsg4
cgroup_udp6_sendmsg egress_sendmsg6" "$(cgroup_progs "$CG")"
check_eq "nothing attached to the machine's root cgroup" "$root_before" "$(cgroup_progs "$CG2")"
check_eq "the pin directory is a private bpffs instance" bpf \
	"$(awk -v d="$PINS" '$5 == d {print $(NF-2)}' /proc/self/mountinfo)"
check_eq "pinned: seven links and two maps" \
	"link_connect4 link_connect6 link_sendmsg4 link_sendmsg6 link_skb_egress link_sock_create link_sockops map_conn4 map_cookie" \
	"$(cd "$PINS" && printf "%s\n" link_* map_* | xargs)"
check_eq "the loader has exited; the pins keep the blocks (fail closed)" EPERM \
	"$(probe container:0 connect6 2001:db8::1 80)"

# an entry made before the restart
in_world "$W" container:0 bash -c 'echo hi | socat -t1 - TCP:203.0.113.10:7,sourceport=40123' >/dev/null
entry='"src":"172.17.0.2:40123","dst":"203.0.113.10:7"'
check_match "an entry is recorded" "$entry" "$("$EGRESSCTL" attrib --pin-dir "$PINS")"

# restart under fire: IPv6 probes from the container run back to back
# while the object is attached again three times
links=$(link_ids)
progs=$(prog_ids)
in_world "$W" container:0 bash -c \
	"while [ ! -e $TMPD/stop ]; do $PROBE connect6 2001:db8::1 80; done" >"$TMPD/probes" 2>&1 &
ppid=$!
sleep 0.3
for i in 1 2 3; do
	check "re-attach $i (pinned links switched to new programs)" bpf_attach "$W"
done
sleep 0.3
touch "$TMPD/stop"
wait "$ppid"
check "probes ran throughout the re-attach" test "$(wc -l <"$TMPD/probes")" -gt 10
check_eq "every probe was refused: no gap without the block" \
	"EPERM" "$(sort -u "$TMPD/probes" | xargs)"
check_eq "the same links..." "$links" "$(link_ids)"
check "... now run new programs" test "$progs" != "$(prog_ids)"
check_eq "... still one program per hook" 7 "$(cgroup_progs "$CG" | wc -l)"
check_match "the attribution map was kept" "$entry" "$("$EGRESSCTL" attrib --pin-dir "$PINS")"
check "re-attach with another map size" bpf_attach "$W" --map-entries 4096
check_match "... replaces the map" '"pin":"map_conn4".*"max_entries":4096' \
	"$("$EGRESSCTL" bpf status --pin-dir "$PINS")"

mkdir -p "$CG/other"
out=$("$EGRESSCTL" bpf attach --cgroup "$CG/other" --pin-dir "$PINS" 2>&1)
check_eq "pins of one cgroup are not moved to another" 1 $?
check_match "... saying why" "attached to another cgroup" "$out"
check_eq "... and nothing was attached there" "" "$(cgroup_progs "$CG/other")"
rmdir "$CG/other"

out=$(in_world "$W" host "$PROBE" reuse --pin-dir "$PINS")
check_match "a pid was handed to a new process in the same cgroup" '"reused":true' "$out"
check_match "... before that: the exited process is not attributed" \
	'"before":"process exited"' "$out"
check_match "... after that: the newcomer is not attributed" '"after":"pid reused"' "$out"

check_eq "detach removes the nine pins" "removed 9 pins" \
	"$("$EGRESSCTL" bpf detach --pin-dir "$PINS")"
check_eq "no program left on the world's cgroup or below" "" \
	"$(find "$CG" -type d | while read -r d; do cgroup_progs "$d"; done)"
check_eq "the pin directory is gone" no "$(test -e "$PINS" && echo yes || echo no)"
check_eq "its bpffs is unmounted" 0 "$(grep -c " $PINS " /proc/self/mountinfo)"
check_eq "IPv6 behaves as without BPF again" ENETUNREACH \
	"$(probe container:0 connect6 2001:db8::1 80)"
check_eq "detach again is a no-op" "removed 0 pins" \
	"$("$EGRESSCTL" bpf detach --pin-dir "$PINS")"

# the world (and its cgroup) goes away while attached: cleanup still works
check "attach again" bpf_attach "$W"
check "down the world while attached" "$SIM" down "$W"
check_eq "detach after the cgroup is gone" "removed 9 pins" \
	"$("$EGRESSCTL" bpf detach --pin-dir "$PINS")"
check_eq "nothing pinned or mounted" "no 0" \
	"$(test -e "$PINS" && echo yes || echo no) $(grep -c " $PINS " /proc/self/mountinfo)"
check_eq "the machine's root cgroup was never touched" "$root_before" "$(cgroup_progs "$CG2")"
finish
