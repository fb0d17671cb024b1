#!/usr/bin/env bash
# `egress-sim up --docker`: Debian's dockerd runs inside the world's host
# netns with its own roots and socket; its containers sit on the world's
# docker0, resolve through the world's resolver, reach the simulated
# internet, and live in cgroups under the world's; egress-runc is its
# default runtime, configured by a file of the world's (EGRESS_RUNC_*
# variables of the caller do not leak in), and fails open while no egressd
# CA exists; `down` stops it all and leaves no mount, cgroup, process or
# image store behind.
. "$(dirname "$0")/../netns/lib.sh"
require_root

BUILD_DIR=${BUILD_DIR:-$(dirname "$SIM")}
WRAPPER=$(readlink -f "$BUILD_DIR/egress-runc")
W=$(world_name d)
# what a world leaves behind: mounts (overlays, netns files), cgroups in
# every hierarchy, processes (dockerd, containerd, shims: their command
# lines name the world's state directory), the state directory itself
# (dockerd's image store lives in it)
trace() {
	grep -c -- "$W" /proc/self/mountinfo
	find /sys/fs/cgroup -maxdepth 3 -path "*egress-sim/$W*" 2>/dev/null | sort
	pgrep -f "egress-sim/$W/" | wc -l
	ls -d "/run/egress-sim/$W" 2>/dev/null
	ls /run/netns | grep -c -- "-$W-"
}
before=$(trace)
# an override in the caller's environment must not reach dockerd's runtime
check "up --docker" env EGRESS_RUNC_INJECT=0 "$SIM" up "$W" --docker
WORLDS+=("$W")
st=$("$SIM" status "$W")
check_match "status shows dockerd's socket" "\"socket\": \"/run/egress-sim/$W/docker.sock\"" "$st"
check_match "status shows egress-runc as the runtime" "\"runtime\": \"egress\"" "$st"
check_match "... the wrapper next to egress-sim" "\"runtime_path\": \"$WRAPPER\"" "$st"
check_match "... and the CA it injects (where the world's egressd publishes it)" \
	"\"egress_ca\": \"/run/egress-sim/$W/egressd/ca.pem\"" "$st"
check_eq "dockerd's default runtime is egress-runc" "egress" \
	"$(in_world "$W" host docker info --format '{{.DefaultRuntime}}' 2>/dev/null)"
check_eq "the wrapper's settings: the real runc, the CA, the world's dockerd, a log" \
	"runc = $(readlink -f "$(command -v runc)")
ca = /run/egress-sim/$W/egressd/ca.pem
docker_socket = /run/egress-sim/$W/docker.sock
log = /run/egress-sim/$W/egress-runc.log" \
	"$(grep -v '^#' "/run/egress-sim/$W/egress-runc.conf")"
DPID=$(sed -n 's/^ *"pid": \([0-9]*\),$/\1/p' <<<"$st" | tail -n 1)
denv=$(tr '\0' '\n' <"/proc/$DPID/environ" | grep '^EGRESS_RUNC_' | sort)
check_eq "dockerd's environment names the settings file and nothing else of the wrapper's" \
	"EGRESS_RUNC_CONFIG=/run/egress-sim/$W/egress-runc.conf" "$denv"
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

# No egressd has published a CA yet: the wrapper fails open.
RLOG=/run/egress-sim/$W/egress-runc.log
ERR=$(mktemp)
out=$(in_world "$W" host docker run --rm sim-busybox:1 sh -c \
	'echo started; env | grep -c SSL_CERT_FILE; ls /tmp/egress-ca.pem 2>&1' 2>"$ERR")
check_match "with no egressd CA yet a container still starts" "^started" "$out"
check_eq "... without the CA or its variables" \
	"started.0.ls: /tmp/egress-ca.pem: No such file or directory." "$(tr '\n' . <<<"$out")"
# (without a TTY, runc's stderr during create is the container's stderr)
check_eq "... and the wrapper says so in one line on its stderr" \
	"egress-runc: CA /run/egress-sim/$W/egressd/ca.pem: No such file or directory; starting the container without the egress CA" \
	"$(cat "$ERR")"
rm -f "$ERR"
check_match "... and in its log" "starting the container without the egress CA" "$(cat "$RLOG")"
# Once the CA exists (any PEM will do here), containers get it.
mkdir -p "/run/egress-sim/$W/egressd"
cp "$("$SIM" ca "$W")" "/run/egress-sim/$W/egressd/ca.pem"
out=$(in_world "$W" host docker run --rm sim-busybox:1 sh -c \
	'cat /tmp/egress-ca.pem; echo "SSL_CERT_FILE=$SSL_CERT_FILE"' 2>&1)
check_eq "when the CA appears, the next container sees it at /tmp/egress-ca.pem" \
	"$(cat "$("$SIM" ca "$W")")
SSL_CERT_FILE=/tmp/egress-ca.pem" "$out"
check_match "... and the wrapper's log records the injection" \
	"injected the egress CA into bundle .*/moby/[0-9a-f]{64} \(0 merged bundles, system bundle none\)" \
	"$(cat "$RLOG")"

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
check_eq "no dockerd, container, mount, cgroup, netns or image store left" "$before" "$(trace)"

# plain runc, on request
check "up --docker --no-runc-wrapper" world_up "$W" --docker --no-runc-wrapper
check_eq "... dockerd's default runtime is runc" "runc" \
	"$(in_world "$W" host docker info --format '{{.DefaultRuntime}}' 2>/dev/null)"
check_match "... status says so" "\"runtime\": \"runc\"" "$("$SIM" status "$W")"
check_fails "... and no settings file is written" test -e "/run/egress-sim/$W/egress-runc.conf"
check "down" "$SIM" down "$W"
check_eq "... leaves no trace" "$before" "$(trace)"
out=$("$SIM" up "$W" --docker --runc-wrapper /nonexistent/egress-runc 2>&1)
check_eq "a missing --runc-wrapper fails up" 1 $?
check_match "... saying what is missing" "/nonexistent/egress-runc: No such file or directory" "$out"
check_eq "... and leaves no trace" "$before" "$(trace)"
check_fails "--runc-wrapper without --docker is refused" "$SIM" up "$W" --runc-wrapper "$WRAPPER"

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
