#!/usr/bin/env bash
# `egress-sim up --docker`: Debian's dockerd runs inside the world's host
# netns with its own roots and socket; its containers sit on the world's
# docker0, resolve through the world's resolver, reach the simulated
# internet, and live in cgroups under the world's; `down` stops it all and
# leaves no mount, cgroup or process behind.
. "$(dirname "$0")/../netns/lib.sh"
require_root

W=$(world_name d)
trace() {
	grep -c -- "$W" /proc/self/mountinfo
	find /sys/fs/cgroup -maxdepth 3 -path "*egress-sim/$W*" 2>/dev/null | sort
	pgrep -f "egress-sim/$W/" | wc -l
}
before=$(trace)
check "up --docker" world_up "$W" --docker
st=$("$SIM" status "$W")
check_match "status shows dockerd's socket" "\"socket\": \"/run/egress-sim/$W/docker.sock\"" "$st"
check_match "the docker CLI in the world talks to the world's dockerd" \
	"Docker Root Dir: /run/egress-sim/$W/docker/data" \
	"$(in_world "$W" host docker info 2>/dev/null)"
check_eq "dockerd adopted the world's docker0" '[{"Subnet":"172.17.0.0/16","Gateway":"172.17.0.1"}]' \
	"$(in_world "$W" host docker network inspect bridge --format '{{json .IPAM.Config}}')"

# a one-binary image: busybox from busybox-static, imported (no registry)
rootfs=$(mktemp -d)
mkdir -p "$rootfs/bin" "$rootfs/etc"
cp /bin/busybox "$rootfs/bin/busybox"
for a in sh wget cat nslookup; do ln -s busybox "$rootfs/bin/$a"; done
tar -C "$rootfs" -c . | in_world "$W" host docker import - sim-busybox:1 >/dev/null
rm -rf "$rootfs"
check_match "an image is imported" "sim-busybox" "$(in_world "$W" host docker images --format '{{.Repository}}')"

out=$(in_world "$W" host docker run --rm sim-busybox:1 wget -qO- http://example.test/from-docker 2>&1)
check_eq "a bridged container reaches the simulated internet by name" \
	"hello from example.test GET /from-docker" "$out"
check_match "containers get the world's resolver" "nameserver 198.51.100.53" \
	"$(in_world "$W" host docker run --rm sim-busybox:1 cat /etc/resolv.conf)"
check_match "containers live under the world's cgroup (docker in the path)" \
	"0::/egress-sim/$W/docker/[0-9a-f]{64}" \
	"$(in_world "$W" host docker run --rm sim-busybox:1 cat /proc/self/cgroup)"
check_match "a host-network container shares the host netns" "inet 203.0.113.253" \
	"$(in_world "$W" host docker run --rm --network host sim-busybox:1 sh -c 'ip addr 2>/dev/null || busybox ip addr')"
in_world "$W" host docker run -d --name sleeper sim-busybox:1 sh -c 'sleep 600' >/dev/null
check_match "a running container" "sleeper" "$(in_world "$W" host docker ps --format '{{.Names}}')"

check "down with a container still running" "$SIM" down "$W"
check_eq "no dockerd, container, mount or cgroup left" "$before" "$(trace)"

EGRESS_SIM_CRASH_AT=docker "$SIM" up "$W" --docker >/dev/null 2>&1
check_eq "up crashing right after starting dockerd" 3 $?
check "down after that crash" "$SIM" down "$W"
check_eq "... stops the orphaned dockerd and leaves no trace" "$before" "$(trace)"
# runc made egress-sim/ in every v1 hierarchy for dockerd's cgroup parent:
# with no other world left, down removes those parents too
if [ -z "$(ls /run/egress-sim 2>/dev/null)" ]; then
	check_eq "no egress-sim cgroup left in any hierarchy" "" \
		"$(ls -d /sys/fs/cgroup/*/egress-sim 2>/dev/null)"
fi
finish
