#!/usr/bin/env bash
# The bypass blocks of the BPF object, attached to a world's cgroup, from a
# host process and from a bridged container: IPv6 connect/sendto refused
# (EPERM) except to ::1, IPv4-mapped destinations refused, raw sockets of
# either family refused, IPv4 untouched.  AF_PACKET: the cgroup hook never
# sees it on this kernel (only inet_create/inet6_create run it), so root
# with CAP_NET_RAW still gets one; what stops it is the lack of
# CAP_NET_RAW, asserted here for a capability-less root and for an
# unprivileged user.  A control run before attaching shows each refusal
# comes from the programs.
. "$(dirname "$0")/lib.sh"
require_root
. "$(dirname "$0")/bpf_lib.sh"

W=$(world_name b)
check "up with a container" world_up "$W" --containers 1
probe() { in_world "$W" "$1" "$PROBE" "${@:2}" 2>&1; }
NOCAP=(setpriv --inh-caps=-net_raw --bounding-set=-net_raw)
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)

# control: what the same calls do without the programs
check_eq "without BPF: a raw socket can be created" ok "$(probe host sock AF_INET SOCK_RAW IPPROTO_ICMP)"
check_eq "without BPF: IPv6 fails only for lack of a route" ENETUNREACH \
	"$(probe container:0 connect6 2001:db8::1 80)"
check_eq "without BPF: an IPv4-mapped connect reaches IPv4 (the bypass)" ok \
	"$(probe container:0 connect6 ::ffff:203.0.113.10 7)"
check_eq "without BPF: an IPv4-mapped sendto reaches IPv4" ok \
	"$(probe host sendto6 ::ffff:203.0.113.10 9999)"

check "attach to the world's cgroup" bpf_attach "$W"

for where in host container:0; do
	check_eq "$where: IPv6 connect -> EPERM" EPERM "$(probe "$where" connect6 2001:db8::1 80)"
	check_eq "$where: IPv6 sendto -> EPERM" EPERM "$(probe "$where" sendto6 2001:db8::1 53)"
	check_eq "$where: IPv4-mapped connect -> EPERM" EPERM \
		"$(probe "$where" connect6 ::ffff:203.0.113.10 7)"
	check_eq "$where: IPv4-mapped sendto -> EPERM" EPERM \
		"$(probe "$where" sendto6 ::ffff:203.0.113.10 9999)"
	check_eq "$where: IPv4-mapped loopback is refused too" EPERM \
		"$(probe "$where" connect6 ::ffff:127.0.0.1 9)"
	in_world "$W" "$where" socat -T3 TCP6-LISTEN:9000,'bind=[::1]',reuseaddr OPEN:/dev/null &
	lpid=$!
	# (a slow machine, such as an emulated VM, takes a while to listen)
	for _ in $(seq 100); do
		[ -n "$(in_world "$W" "$where" ss -Hltn 'sport = :9000')" ] && break
		sleep 0.1
	done
	check_eq "$where: ::1 connect works" ok "$(probe "$where" connect6 ::1 9000)"
	kill "$lpid" 2>/dev/null
	wait "$lpid" 2>/dev/null
	check_eq "$where: ::1 sendto works" ok "$(probe "$where" sendto6 ::1 9)"
	check_eq "$where: IPv6 sockets can still be created" ok \
		"$(probe "$where" sock AF_INET6 SOCK_DGRAM)"
	check_eq "$where: raw IPv4 socket -> EPERM" EPERM \
		"$(probe "$where" sock AF_INET SOCK_RAW IPPROTO_ICMP)"
	check_eq "$where: raw IPv4 IPPROTO_RAW socket -> EPERM" EPERM \
		"$(probe "$where" sock AF_INET SOCK_RAW IPPROTO_RAW)"
	check_eq "$where: raw IPv6 socket -> EPERM" EPERM \
		"$(probe "$where" sock AF_INET6 SOCK_RAW 58)"
	out=$(probe "$where" sock AF_INET SOCK_DGRAM IPPROTO_ICMP)
	check "$where: ICMP datagram (ping) sockets are not refused by BPF ($out)" \
		test "$out" != EPERM
	# AF_PACKET, asserted as it is: not seen by the hook...
	check_eq "$where: AF_PACKET with CAP_NET_RAW is created (the hook never sees AF_PACKET)" \
		ok "$(probe "$where" sock AF_PACKET SOCK_RAW ETH_P_ALL)"
	check_eq "$where: AF_INET SOCK_PACKET becomes AF_PACKET: same" \
		ok "$(probe "$where" sock AF_INET SOCK_PACKET ETH_P_ALL)"
	# ... and stopped by the capability check in packet_create()
	check_eq "$where: AF_PACKET without CAP_NET_RAW -> EPERM" EPERM \
		"$(in_world "$W" "$where" "${NOCAP[@]}" "$PROBE" sock AF_PACKET SOCK_RAW ETH_P_ALL)"
	check_eq "$where: AF_PACKET as an unprivileged user -> EPERM" EPERM \
		"$(in_world "$W" "$where" "${NOBODY[@]}" "$PROBE" sock AF_PACKET SOCK_RAW ETH_P_ALL)"
	check_eq "$where: raw sockets stay refused without CAP_NET_RAW too" EPERM \
		"$(in_world "$W" "$where" "${NOCAP[@]}" "$PROBE" sock AF_INET SOCK_RAW IPPROTO_ICMP)"
done

check_eq "IPv4 is untouched: container -> HTTP" "hello from example.test GET /" \
	"$(in_world "$W" container:0 curl -sS -m 5 http://example.test/)"
check_eq "IPv4 is untouched: DNS over UDP" "198.51.100.10" \
	"$(in_world "$W" host dig +short +time=2 @198.51.100.53 example.test A)"
check_eq "processes outside the world's cgroup are not affected" ok \
	"$(nsenter --net="/run/netns/esim-$W-host" "$PROBE" sock AF_INET SOCK_RAW IPPROTO_ICMP)"
finish
