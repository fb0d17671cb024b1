#!/usr/bin/env bash
# check-docker: tests with a real dockerd confined to a simulated host netns
# (egress-sim up --docker).  Same runner and guards as the netns tier.
exec "$(dirname "$0")/../netns/run.sh" "${1:-build}" docker
