#!/usr/bin/env bash
# The support matrix with real containers: egressd runs in a world whose
# dockerd (egress-runc as its runtime) starts containers from
# `--network bridge`, `--network host` and a user-defined network (`docker
# network create`: a br-* bridge, covered by egressd's default br-+
# pattern).  For each network and each of HTTP, HTTPS, raw TCP, DNS and
# other UDP, one allowed and one blocked request made by the container's
# main process: proxied or queued, attributed (the log's pid is that
# process as the host sees it - `docker inspect` - its cgroup the
# container's, its image the image's name) and judged; services.jsonl
# proves that blocked traffic never reached the simulated internet.
# DNS from a user-defined network goes through Docker's embedded resolver
# (127.0.0.11), which dockerd forwards with its own socket: egressd judges
# the query all the same but attributes it to dockerd, with no image.
# IPv6 from a container fails with EPERM; ::1 inside it still works.
. "$(dirname "$0")/../netns/lib.sh"
. "$(dirname "$0")/../netns/egressd_lib.sh"
. "$(dirname "$0")/images.sh"
require_root
require_python3 "log checks"

W=$(world_name x)
check "up --docker" world_up "$W" --docker
D=$(ed_dir "$W")
SYNC=$D/sync
mkdir -p "$D" "$SYNC"
SVC=/run/egress-sim/$W/services.jsonl
POL=$D/policy.txt
cat >"$POL" <<EOF
example.test:80|443
203.0.113.10:7
203.0.113.10:9999/udp
dns:image-dns.other.test image=sim-tools-deb:1
dns:docker-dns.other.test cgroup=@docker
$DNS_RULES
EOF
IMG=sim-tools-deb:1

egressd_world "$W"

docker() { in_world "$W" host docker "$@"; }

# JSON field of a log line: jf LINE KEY (null and absent print None)
jf() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print(v)' "$1" "$2"; }

# crun TAG IMAGE [docker run options] -- CMD...: CMD as the main process of
# a new container, started only once its pid on the host is known (docker
# inspect; in $D/TAG.pid, the container id in $D/TAG.id).  $IN, if set, is
# CMD's standard input.  Output (stdout and stderr) in $D/TAG.out; returns
# CMD's exit status.
crun() {
	local tag=$1 image=$2 opts=() rc
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	printf '%s' "${IN:-}" >"$SYNC/$tag.in"
	docker run -d --name "$tag" -v "$SYNC:/sync:ro" "${opts[@]}" "$image" \
		sh -c 'while [ ! -e "/sync/$0.go" ]; do sleep 0.05; done
exec "$@" <"/sync/$0.in"' "$tag" "$@" >"$D/$tag.id" || return 125
	docker inspect -f '{{.State.Pid}}' "$tag" >"$D/$tag.pid"
	touch "$SYNC/$tag.go"
	rc=$(docker wait "$tag")
	docker logs "$tag" >"$D/$tag.out" 2>&1
	docker rm "$tag" >/dev/null
	return "$rc"
}

# log_wait TYPE ERE: the last log line of TYPE matching ERE, waiting up to
# 3 s for the daemon's writer
log_wait() {
	local l=
	for _ in $(seq 30); do
		l=$(ed_log "$W" | grep -F "\"type\":\"$1\"" | grep -E -- "$2" | tail -n 1)
		[ -n "$l" ] && break
		sleep 0.1
	done
	printf '%s' "$l"
}

# attributed DESC TYPE TAG POLICY ERE: the TYPE line of container TAG's
# main process matching ERE says POLICY, that pid, the container's cgroup
# and the image
attributed() {
	local desc=$1 type=$2 tag=$3 policy=$4 ere=$5 pid line
	pid=$(cat "$D/$tag.pid")
	line=$(log_wait "$type" "$ere.*\"pid\":$pid[,}]")
	check_eq "$desc: logged as $type $policy with the container process's pid, cgroup and image" \
		"$policy $pid /egress-sim/$W/docker/$(cat "$D/$tag.id") $IMG" \
		"$(jf "$line" policy) $(jf "$line" pid) $(jf "$line" cgroup) $(jf "$line" image)"
}

svc_count() { grep -cE -- "$1" "$SVC"; }

check "the tools image is imported" images_build "$W" deb
check "egressd starts with the world's docker socket" egressd_start "$W" "$POL" \
	--docker-socket "/run/egress-sim/$W/docker.sock"
check "a user-defined network" docker network create "unet$$"
UBR=br-$(docker network inspect -f '{{.Id}}' "unet$$" | cut -c1-12)
check "... is a br-* bridge in the world's host netns" in_world "$W" host ip link show "$UBR"
DOCKERD_PID=$("$SIM" status "$W" | python3 -c 'import json,sys; print(json.load(sys.stdin)["docker"]["pid"])')

for net in bridge host user; do
	case $net in
	user) nopt=(--network "unet$$") ;;
	*) nopt=(--network "$net") ;;
	esac

	# ---- HTTP ----
	t=$net-http
	crun "$t" "$IMG" "${nopt[@]}" -- curl -sS -m 5 "http://example.test/$t"
	check_eq "$net: allowed HTTP is answered" "hello from example.test GET /$t" "$(cat "$D/$t.out")"
	attributed "$net: allowed HTTP" http "$t" allow "\"url\":\"http://example.test/$t\""
	check "$net: ... and reached the server" grep -qF "\"path\":\"/$t\"" "$SVC"
	t=$net-httpb
	crun "$t" "$IMG" "${nopt[@]}" -- curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://web.sim.test/$t"
	check_eq "$net: blocked HTTP gets 403" 403 "$(cat "$D/$t.out")"
	attributed "$net: blocked HTTP" http "$t" deny "\"url\":\"http://web.sim.test/$t\""
	check_eq "$net: ... and never reached the server" 0 "$(svc_count "\"path\":\"/$t\"")"

	# ---- HTTPS (MITM; curl verifies through the injected CA) ----
	t=$net-https
	crun "$t" "$IMG" "${nopt[@]}" -- curl -sS -m 5 "https://example.test/$t"
	check_eq "$net: allowed HTTPS is answered, the certificate verified" \
		"hello from example.test GET /$t" "$(cat "$D/$t.out")"
	attributed "$net: allowed HTTPS" https "$t" allow "\"url\":\"https://example.test/$t\""
	t=$net-httpsb
	n=$(svc_count '"sni":"api.sim.test"')
	crun "$t" "$IMG" "${nopt[@]}" -- curl -sS -m 5 "https://api.sim.test/$t"
	check_match "$net: blocked HTTPS: the handshake is aborted" "curl: \(35\)" "$(cat "$D/$t.out")"
	attributed "$net: blocked HTTPS" https "$t" deny '"host":"api.sim.test"'
	check_eq "$net: ... and no handshake reached the server" "$n" "$(svc_count '"sni":"api.sim.test"')"

	# ---- raw TCP ----
	t=$net-tcp
	IN="echo-$net" crun "$t" "$IMG" "${nopt[@]}" -- socat -t3 - TCP:203.0.113.10:7
	check_eq "$net: allowed raw TCP is relayed" "echo-$net" "$(cat "$D/$t.out")"
	attributed "$net: allowed raw TCP" tcp "$t" allow '"dst_ip":"203.0.113.10","dst_port":7,'
	t=$net-tcpb
	n=$(svc_count '"local":"203.0.113.10:22".*"event":"accept"')
	IN=x crun "$t" "$IMG" "${nopt[@]}" -- socat -t3 - TCP:203.0.113.10:22
	attributed "$net: blocked raw TCP" tcp "$t" deny '"dst_ip":"203.0.113.10","dst_port":22,'
	check_eq "$net: ... and never reached the server" "$n" \
		"$(svc_count '"local":"203.0.113.10:22".*"event":"accept"')"

	# ---- DNS ----
	t=$net-dns
	crun "$t" "$IMG" "${nopt[@]}" -- nslookup example.test
	check_match "$net: an allowed name resolves" "Name:.example.test.Address: 198.51.100.10" \
		"$(tr '\n\t' '..' <"$D/$t.out")"
	t=$net-dnsb
	crun "$t" "$IMG" "${nopt[@]}" -- nslookup "denied-$net.other.test"
	check_match "$net: a name no rule allows is REFUSED" \
		"can't find denied-$net.other.test: REFUSED" "$(cat "$D/$t.out")"
	check_eq "$net: ... and never reached the DNS server" 0 \
		"$(svc_count "\"name\":\"denied-$net.other.test\"")"
	if [ "$net" != user ]; then
		attributed "$net: allowed DNS" dns "$net-dns" allow '"name":"example.test"'
		attributed "$net: blocked DNS" dns "$t" deny "\"name\":\"denied-$net.other.test\""
	else
		# the embedded resolver: dockerd forwards from the container's
		# netns, with its own socket, in its own cgroup
		for q in "example.test allow" "denied-$net.other.test deny"; do
			set -- $q
			line=$(log_wait dns "\"name\":\"$1\".*\"pid\":$DOCKERD_PID[,}]")
			check_eq "$net: DNS for $1 through Docker's embedded resolver: judged ($2), attributed to dockerd, no image" \
				"$2 $DOCKERD_PID /usr/sbin/dockerd /egress-sim/$W/dockerd None" \
				"$(jf "$line" policy) $(jf "$line" pid) $(jf "$line" exe) $(jf "$line" cgroup) $(jf "$line" image)"
		done
		# so a DNS rule scoped to an image never matches such queries,
		# while cgroup=@docker does (dockerd's own cgroup says docker)
		out=$(docker run --rm "${nopt[@]}" "$IMG" nslookup image-dns.other.test 2>&1)
		check_match "$net: a dns: rule with image= does not admit queries through the embedded resolver" \
			"image-dns.other.test: REFUSED" "$out"
		out=$(docker run --rm "${nopt[@]}" "$IMG" nslookup docker-dns.other.test 2>&1)
		check_match "$net: ... one with cgroup=@docker does (dockerd's cgroup)" \
			"docker-dns.other.test: NXDOMAIN" "$out"
	fi
	if [ "$net" = bridge ]; then
		out=$(docker run --rm "${nopt[@]}" "$IMG" nslookup image-dns.other.test 2>&1)
		check_match "$net: a dns: rule with image= admits the image's own queries" \
			"image-dns.other.test: NXDOMAIN" "$out"
	fi

	# ---- UDP (not DNS) ----
	t=$net-udp
	n=$(svc_count '"local":"203.0.113.10:9999".*"datagram"')
	IN="udp-$net" crun "$t" "$IMG" "${nopt[@]}" -- socat -t1 - UDP:203.0.113.10:9999
	check_eq "$net: allowed UDP gets its echo" "udp-$net" "$(cat "$D/$t.out")"
	attributed "$net: allowed UDP" udp "$t" allow '"dst_ip":"203.0.113.10","dst_port":9999,'
	check_eq "$net: ... one datagram reached the echo service" $((n + 1)) \
		"$(svc_count '"local":"203.0.113.10:9999".*"datagram"')"
	t=$net-udpb
	IN="udpb-$net" crun "$t" "$IMG" "${nopt[@]}" -- socat -t1 - UDP:203.0.113.10:9998
	check_eq "$net: blocked UDP gets nothing" "" "$(cat "$D/$t.out")"
	attributed "$net: blocked UDP" udp "$t" deny '"dst_ip":"203.0.113.10","dst_port":9998,'
	check_eq "$net: ... and never reached the echo service" 0 \
		"$(svc_count '"local":"203.0.113.10:9998"')"

	# ---- IPv6 ----
	# (EPERM is the BPF block's: without egressd the same calls fail with
	# EADDRNOTAVAIL in a bridged container and ENETUNREACH in the host
	# netns)
	out=$(docker run --rm "${nopt[@]}" "$IMG" sh -c '
socat -T2 - TCP6:[2001:db8::10]:80 </dev/null
echo x | socat - UDP6-SENDTO:[2001:db8::10]:9999' 2>&1)
	check_match "$net: IPv6 TCP from a container fails with EPERM" \
		"connect\(.*2001:0db8.*\): Operation not permitted" "$out"
	check_match "$net: IPv6 UDP from a container fails with EPERM" \
		"sendto\(.*2001:0db8.*\): Operation not permitted" "$out"
done

# Docker switches IPv6 off in the netns of containers on networks without
# IPv6, so ::1 exists only for a host-network container.
out=$(docker run --rm --network host "$IMG" sh -c '
socat TCP6-LISTEN:7070,bind=[::1],reuseaddr SYSTEM:"echo v6-loopback" &
sleep 0.5; socat -T2 - TCP6:[::1]:7070 </dev/null' 2>&1)
check_eq "host: ::1 keeps working for a container while IPv6 egress is blocked" "v6-loopback" "$out"

check_eq "nothing was ever sent to 9998 (the blocked UDP port)" 0 "$(svc_count ':9998')"
finish
