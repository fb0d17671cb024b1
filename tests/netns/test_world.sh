#!/usr/bin/env bash
# The simulated world itself, without any filter: containers and the host
# reach the internet's HTTP, HTTPS, DNS and UDP/TCP services; containers and
# host reach each other; the second bridge works; the services log every
# connection; processes land in Docker-like cgroups.
. "$(dirname "$0")/lib.sh"
require_root

W=$(world_name w)
check "up with 2 docker0 containers and 1 br-sim1 container" \
	world_up "$W" --containers 2 --user-containers 1
CA=$("$SIM" ca "$W")
LOG=/run/egress-sim/$W/services.jsonl

check_eq "container -> HTTP by name" "hello from example.test GET /x?y=1" \
	"$(in_world "$W" container:0 curl -sS -m 5 'http://example.test/x?y=1')"
check_eq "container -> HTTPS verified with the world CA" \
	"hello from api.sim.test GET /v1" \
	"$(in_world "$W" container:0 curl -sS -m 5 --cacert "$CA" https://api.sim.test/v1)"
check_eq "host -> HTTPS on the second address" "hello from other.test GET /" \
	"$(in_world "$W" host curl -sS -m 5 --cacert "$CA" https://other.test/)"
check_eq "HTTPS by IP with an IP SAN" "hello from 198.51.100.14 GET /" \
	"$(in_world "$W" container:1 curl -sS -m 5 --cacert "$CA" https://198.51.100.14/)"
for bad in self-signed expired wrong-host; do
	in_world "$W" container:0 curl -sS -m 5 --cacert "$CA" -o /dev/null "https://$bad.sim.test/" 2>/dev/null
	check_eq "$bad certificate fails verification (curl exit 60)" 60 $?
	check_eq "$bad endpoint answers without verification" \
		"hello from $bad.sim.test GET /" \
		"$(in_world "$W" container:0 curl -sSk -m 5 "https://$bad.sim.test/")"
done
check_eq "two requests on one connection (keep-alive)" \
	"hello from example.test GET /a
hello from example.test GET /b" \
	"$(in_world "$W" container:0 curl -sS -m 5 http://example.test/a http://example.test/b)"

check_eq "DNS over UDP" "198.51.100.10" \
	"$(in_world "$W" container:0 dig +short +time=2 @198.51.100.53 example.test A)"
check_eq "DNS over TCP, second resolver" "203.0.113.10" \
	"$(in_world "$W" container:0 dig +short +tcp +time=2 @203.0.113.53 other.test A)"
check_match "DNS: unknown name is NXDOMAIN" "status: NXDOMAIN" \
	"$(in_world "$W" container:0 dig +time=2 @198.51.100.53 nope.sim.test A)"
check_eq "DNS: several addresses" "198.51.100.10 203.0.113.10" \
	"$(in_world "$W" host dig +short +time=2 multi.sim.test A | sort | xargs)"
check_eq "the world's resolver is in /etc/resolv.conf" "nameserver 198.51.100.53" \
	"$(in_world "$W" container:0 grep ^nameserver /etc/resolv.conf)"

check_eq "UDP echo" "ping-udp" \
	"$(in_world "$W" container:0 bash -c 'echo ping-udp | socat -t2 - UDP:203.0.113.10:9999')"
check_eq "TCP echo" "ping-tcp" \
	"$(in_world "$W" container:0 bash -c 'echo ping-tcp | socat -t2 - TCP:203.0.113.10:7')"
check_match "server-first banner" "^220 sim.test ESMTP" \
	"$(in_world "$W" container:0 socat -T2 -u TCP:203.0.113.10:25 - 2>/dev/null | head -n1)"

# container <-> host, and across the two bridges
in_world "$W" host socat -T5 TCP-LISTEN:5000,bind=172.17.0.1,reuseaddr SYSTEM:'echo from-host' &
in_world "$W" container:0 socat -T5 TCP-LISTEN:5001,bind=172.17.0.2,reuseaddr SYSTEM:'echo from-c0' &
sleep 0.5
check_eq "container -> host" "from-host" \
	"$(in_world "$W" container:1 socat -T2 - TCP:172.17.0.1:5000 </dev/null)"
check_eq "br-sim1 container -> docker0 container" "from-c0" \
	"$(in_world "$W" container:2 socat -T2 - TCP:172.17.0.2:5001 </dev/null)"
wait
check_eq "br-sim1 container -> internet" "hello from web.sim.test GET /" \
	"$(in_world "$W" container:2 curl -sS -m 5 http://web.sim.test/)"

log=$(cat "$LOG")
check_match "services log an accept with the container's address" \
	'"peer":"172\.17\.0\.2:[0-9]+"' "$(grep '"event":"accept"' "$LOG")"
check_match "services log the request" '"event":"request".*"host":"example.test"' "$log"
check_match "services log DNS queries" '"event":"query".*"name":"nope.sim.test"' "$log"
check_match "services log the TLS SNI" '"sni":"api.sim.test"' "$log"

cg=$(in_world "$W" container:0 cat /proc/self/cgroup | grep '^0::')
check_match "container processes are in a Docker-like cgroup" \
	"^0::/egress-sim/$W/docker/[0-9a-f]{64}\$" "$cg"
check_match "host processes are in the world's host cgroup" \
	"^0::/egress-sim/$W/host\$" "$("$SIM" exec "$W" host -- cat /proc/self/cgroup | grep '^0::')"
check_match "--cgroup puts the process in a sub-cgroup of the world" \
	"^0::/egress-sim/$W/runner/step1\$" \
	"$("$SIM" exec "$W" host --cgroup runner/step1 -- cat /proc/self/cgroup | grep '^0::')"
check "the cgroup hierarchy is visible inside (unlike ip netns exec)" \
	in_world "$W" container:0 test -d "$(awk '$9 == "cgroup2" {print $5}' /proc/self/mountinfo | head -n1)/egress-sim/$W"

st=$("$SIM" status "$W")
check_match "status says up" '"state": "up"' "$st"
check_match "status lists the containers" '"ip": "172.18.0.2"' "$st"
check_eq "add-container gives the next index" "3" "$("$SIM" add-container "$W" --bridge br-sim1)"
check_eq "the added container works" "hello from example.test GET /" \
	"$(in_world "$W" container:3 curl -sS -m 5 http://example.test/)"
finish
