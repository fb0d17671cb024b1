#!/usr/bin/env bash
# check-docker: tests with a real dockerd confined to a simulated host netns
# (egress-sim up --docker).  Same runner and guards as the netns tier, which
# for this tier also checks that no world (dockerd, containerd, netns,
# cgroup, mount, image store) is left behind.  Installs what it needs first
# (scripts/install-deps.sh is idempotent and quick when nothing is missing).
set -u
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -eq 0 ] && ! scripts/install-deps.sh >/dev/null; then
	echo "check-docker: scripts/install-deps.sh failed" >&2
	exit 1
fi
exec tests/netns/run.sh "${1:-build}" docker
