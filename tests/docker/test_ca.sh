#!/usr/bin/env bash
# HTTPS interception inside real containers, through the CA that
# egress-runc (the world's dockerd runtime) injects: curl verifies egressd's
# forged certificates without -k or --cacert in a Debian-like image (the
# merged bundle at its default path), a RHEL-like one (the merged RHEL
# bundle, which Debian's curl finds through the injected SSL_CERT_FILE)
# and one with no bundle (SSL_CERT_FILE names the CA alone); neither a
# container's diff nor an image built by the legacy builder (a RUN step
# doing HTTPS) holds certificate content; an image whose config presets
# SSL_CERT_FILE keeps it, and the wrapper's warning names the image;
# passthrough rules scoped with cgroup=@docker and with image= hand the
# container the real server certificate (verified with the world's CA).
. "$(dirname "$0")/../netns/lib.sh"
. "$(dirname "$0")/../netns/egressd_lib.sh"
. "$(dirname "$0")/images.sh"
require_root
require_python3 "log checks"

W=$(world_name c)
check "up --docker" world_up "$W" --docker
D=$(ed_dir "$W")
mkdir -p "$D"
SVC=/run/egress-sim/$W/services.jsonl
RLOG=/run/egress-sim/$W/egress-runc.log
WCA=$("$SIM" ca "$W")
POL=$D/policy.txt
cat >"$POL" <<EOF
example.test:80|443
www.example.test:443
sim.test:443
www.example.test:443 passthrough cgroup=@docker
sim.test:443 passthrough image=sim-tools-rhel:1
$DNS_RULES
EOF

egressd_world "$W"

docker() { in_world "$W" host docker "$@"; }
jf() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print(v)' "$1" "$2"; }
# the last log line of TYPE holding TEXT, waiting up to 3 s for the writer
log_wait() {
	local l=
	for _ in $(seq 30); do
		l=$(ed_log "$W" | grep -F "\"type\":\"$1\"" | grep -F -- "$2" | tail -n 1)
		[ -n "$l" ] && break
		sleep 0.1
	done
	printf '%s' "$l"
}

check "the test images are imported" images_build "$W"
check "egressd starts with the world's docker socket" egressd_start "$W" "$POL" \
	--docker-socket "/run/egress-sim/$W/docker.sock"
ECA=$D/ca.pem
# egressd's CA as fixed strings (its base64 lines, the short last one
# aside): any of them in a file means certificate content leaked there
CALINES=$D/ca.lines
sed '1d;$d' "$ECA" | awk 'length($0) >= 40' >"$CALINES"
check "egressd's CA has lines to look for" test -s "$CALINES"
# what every merged bundle must be: the host's bundle (the images' own) and
# the CA
MERGED=$(cat /etc/ssl/certs/ca-certificates.crt "$ECA" | sha256sum | cut -d' ' -f1)
VERIFY='openssl s_client -connect example.test:443 -servername example.test -verify_return_error </dev/null 2>&1 | grep "^Verify return code"'

# ---- each image flavour: curl and openssl verify egressd's certificates ----
for f in deb rhel none; do
	out=$(docker run --rm "sim-tools-$f:1" sh -c "exec 2>&1; curl -sS -m 5 https://example.test/ca-$f; $VERIFY" 2>&1)
	check_eq "$f: curl verifies the MITM certificate, no -k or --cacert" \
		"hello from example.test GET /ca-$f" "$(head -n 1 <<<"$out")"
	check_eq "$f: openssl s_client verifies it too" "Verify return code: 0 (ok)" \
		"$(sed -n 2p <<<"$out")"
	check_eq "$f: ... and it was MITM'd (logged with its URL and image)" "allow sim-tools-$f:1" \
		"$(line=$(log_wait https "\"url\":\"https://example.test/ca-$f\"") && echo "$(jf "$line" policy) $(jf "$line" image)")"
done

out=$(docker run --rm sim-tools-deb:1 sh -c 'exec 2>&1; echo "$SSL_CERT_FILE"
sha256sum /etc/ssl/certs/ca-certificates.crt | cut -d" " -f1
env -u SSL_CERT_FILE -u REQUESTS_CA_BUNDLE -u AWS_CA_BUNDLE -u HEX_CACERTS_PATH \
	curl -sS -m 5 https://example.test/ca-deb-default' 2>&1)
check_eq "deb: SSL_CERT_FILE names the merged bundle; it is the image's plus the CA; curl needs no variable" \
	"/etc/ssl/certs/ca-certificates.crt
$MERGED
hello from example.test GET /ca-deb-default" "$out"

RHEL_PATHS="/etc/pki/tls/certs/ca-bundle.crt /etc/pki/tls/cert.pem /etc/ssl/cert.pem
/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"
out=$(docker run --rm sim-tools-rhel:1 sh -c 'exec 2>&1; echo "$SSL_CERT_FILE"
for p in '"$(echo $RHEL_PATHS)"'; do sha256sum "$p" | cut -d" " -f1; done
env -u SSL_CERT_FILE curl -sS -m 5 https://example.test/ca-rhel-default' 2>&1)
check_eq "rhel: SSL_CERT_FILE names the RHEL bundle; every path to it (symlinks) shows the image's bundle plus the CA" \
	"/etc/pki/tls/certs/ca-bundle.crt
$MERGED
$MERGED
$MERGED
$MERGED" "$(head -n 5 <<<"$out")"
# Debian's curl looks for Debian's path, which a RHEL layout lacks: the
# injected variable is what makes it work (a RHEL curl defaults to the
# merged RHEL path)
check_match "rhel: ... without the variable, Debian's curl finds no bundle at its compiled-in path" \
	"curl: \(77\) error setting certificate file: /etc/ssl/certs/ca-certificates.crt" "$out"
out=$(docker run --rm sim-tools-none:1 sh -c 'exec 2>&1; echo "$SSL_CERT_FILE"; ls /etc/ssl
cmp /tmp/egress-ca.pem "$SSL_CERT_FILE" && echo same' 2>&1)
check_eq "none: no bundle appears; SSL_CERT_FILE names the CA alone" \
	"/tmp/egress-ca.pem
ls: /etc/ssl: No such file or directory
same" "$out"
check_eq "the CA in a container is egressd's" "$(cat "$ECA")" \
	"$(docker run --rm sim-busybox:1 cat /tmp/egress-ca.pem)"

# ---- no certificate content in a container's diff ------------------------------
docker run --name "diff$$" sim-tools-deb:1 sh -c \
	'curl -sS -m 5 https://example.test/diff >/tmp/out.txt' >/dev/null 2>&1
check_eq "a container did HTTPS and wrote a file" "hello from example.test GET /diff" \
	"$(docker cp "diff$$:/tmp/out.txt" - | tar -xO)"
docker export "diff$$" >"$D/diff.tar"
docker diff "diff$$" >"$D/diff.txt"
check_match "docker diff shows the container's own file" "^A /tmp/out.txt$" "$(cat "$D/diff.txt")"
# every regular file the diff adds or changes, with its size in the export
sizes=$(tar -tvf "$D/diff.tar" | awk '$1 ~ /^-/ {print "/" $6, $3}' | LC_ALL=C sort)
changed=$(awk '$1 != "D" {print $2}' "$D/diff.txt" | LC_ALL=C sort |
	LC_ALL=C join - <(echo "$sizes") | grep -v '^/tmp/out.txt ')
check_match "... and the CA's mount point, which runc made, empty" "^/tmp/egress-ca.pem 0$" "$changed"
check_eq "... any other file it adds or changes is empty too" "" "$(awk '$2 != 0' <<<"$changed")"
echo "# diff: $(tr '\n' ' ' <"$D/diff.txt")"
check_fails "the container's file system holds none of the CA's content" \
	grep -aqF -f "$CALINES" "$D/diff.tar"
docker rm "diff$$" >/dev/null

# ---- the legacy builder ----------------------------------------------------------
n=$(grep -c "injected the egress CA" "$RLOG")
out=$(printf 'FROM sim-tools-deb:1\nRUN curl -sS -m 5 https://example.test/legacy-build >/built.txt && cat /built.txt\n' |
	in_world "$W" host env DOCKER_BUILDKIT=0 docker build --no-cache -t sim-built:1 - 2>&1)
check_match "a legacy build's RUN step does HTTPS through the MITM, verifying" \
	"hello from example.test GET /legacy-build" "$out"
check "... the step ran through egress-runc" test "$(grep -c "injected the egress CA" "$RLOG")" -gt "$n"
check_eq "... egressd judged it" allow \
	"$(jf "$(log_wait https '"url":"https://example.test/legacy-build"')" policy)"
check_eq "the built image holds what the step wrote" "hello from example.test GET /legacy-build" \
	"$(docker run --rm sim-built:1 cat /built.txt)"
mkdir -p "$D/saved"
docker save sim-built:1 | tar -x -C "$D/saved"
top=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Layers"][-1])' "$D/saved/manifest.json")
check_eq "the build's layer adds /built.txt; any other file it holds is empty" "built.txt" \
	"$(tar -tvf "$D/saved/$top" | awk '$1 ~ /^-/ && $3 != 0 {print $6}')"
check_fails "no layer of the built image holds any of the CA's content" \
	grep -raqF -f "$CALINES" "$D/saved"

# ---- an image that presets SSL_CERT_FILE ---------------------------------------
out=$(docker run --rm sim-tools-env:1 sh -c 'exec 2>&1; echo "$SSL_CERT_FILE $REQUESTS_CA_BUNDLE"
curl -sS -m 5 https://example.test/env-preset' 2>&1)
check_eq "an image's own SSL_CERT_FILE is kept; the variables it lacks are added" \
	"/etc/ssl/own-bundle.pem /etc/ssl/certs/ca-certificates.crt" "$(grep '^/' <<<"$out")"
warn="warning: image=sim-tools-env:1 keeps SSL_CERT_FILE=/etc/ssl/own-bundle.pem \(already set in the container\); programs using it may not trust the egress CA"
check_match "... the wrapper's warning on docker run's stderr names the image" "^egress-runc: $warn" "$out"
check_match "... and so does its log" "egress-runc\[[0-9]+\]: $warn" "$(cat "$RLOG")"
check_match "... and as it warns, curl then fails TLS verification" "curl: \(60\) SSL certificate problem" "$out"
out=$(docker run --rm -e SSL_CERT_FILE=/etc/ssl/mine.pem sim-tools-deb:1 true 2>&1)
check_match "a variable set with docker run -e is kept with a warning naming the image" \
	"^egress-runc: warning: image=sim-tools-deb:1 keeps SSL_CERT_FILE=/etc/ssl/mine.pem" "$out"

# ---- passthrough scoped to containers and to an image -------------------------
ISSUER='issuer: |hello from|curl: \('
# pt IMAGE CMD...: CMD's output in order (curl -v writes to stderr)
pt() {
	local image=$1
	shift
	docker run --rm -v "$WCA:/world-ca.pem:ro" "$image" sh -c 'exec "$@" 2>&1' sh "$@" |
		grep -E "$ISSUER"
}
out=$(pt sim-tools-deb:1 curl -sSv -m 5 --cacert /world-ca.pem https://www.example.test/pt-docker)
check_match "cgroup=@docker passthrough: a container sees the real server certificate" \
	"issuer: O=egress-sim; CN=egress-sim test CA \($W\).*hello from www.example.test GET /pt-docker" \
	"$(tr '\n' ' ' <<<"$out")"
line=$(log_wait https '"host":"www.example.test"')
check_eq "... logged as https passthrough from the container's image" "allow True sim-tools-deb:1" \
	"$(jf "$line" policy) $(jf "$line" passthrough) $(jf "$line" image)"
check_eq "... and the server saw its request" 1 "$(grep -cF '"path":"/pt-docker"' "$SVC")"
out=$(in_world "$W" host curl -sSv -m 5 --cacert "$ECA" https://www.example.test/pt-host 2>&1 | grep -E "$ISSUER")
check_match "... while a host process (not @docker) is MITM'd" \
	"issuer: O=egressd .*CN=egressd interception CA.*hello from www.example.test GET /pt-host" \
	"$(tr '\n' ' ' <<<"$out")"

out=$(pt sim-tools-rhel:1 curl -sSv -m 5 --cacert /world-ca.pem https://sim.test/pt-image)
check_match "image= passthrough: the named image sees the real server certificate" \
	"issuer: O=egress-sim; CN=egress-sim test CA \($W\).*hello from sim.test GET /pt-image" \
	"$(tr '\n' ' ' <<<"$out")"
check_eq "... logged as https passthrough with that image" "allow True sim-tools-rhel:1" \
	"$(line=$(log_wait https '"host":"sim.test"') && echo "$(jf "$line" policy) $(jf "$line" passthrough) $(jf "$line" image)")"
out=$(pt sim-tools-deb:1 curl -sSv -m 5 --cacert /world-ca.pem https://sim.test/pt-other)
check_match "... another image is not passed through: the world's CA does not verify what it gets" \
	"curl: \(60\) SSL certificate problem" "$out"
out=$(pt sim-tools-deb:1 curl -sSv -m 5 https://sim.test/pt-other2)
check_match "... it gets egressd's certificate, which the injected CA verifies" \
	"issuer: O=egressd .*CN=egressd interception CA.*hello from sim.test GET /pt-other2" \
	"$(tr '\n' ' ' <<<"$out")"
check_eq "... logged as a MITM'd request from that image" "allow sim-tools-deb:1" \
	"$(line=$(log_wait https '"url":"https://sim.test/pt-other2"') && echo "$(jf "$line" policy) $(jf "$line" image)")"
finish
