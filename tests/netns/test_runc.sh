#!/usr/bin/env bash
# egress-runc in front of the real runc (Debian's, from docker.io): a
# busybox container whose image has a Debian bundle and a RHEL-style
# symlinked bundle sees the merged bundles and the CA, read-only, and the CA
# variables; the image's files are unchanged and hold no CA afterwards; with
# injection switched off the container sees its own bundle.  The container
# runs in its own (empty) network namespace; its cgroup is the container's
# own, which runc removes on exit.  No simulated world is needed.
. "$(dirname "$0")/lib.sh"
require_root

BUILD_DIR=${BUILD_DIR:-build}
WRAPPER=$BUILD_DIR/egress-runc
RUNC=$(command -v runc || true)
BUSYBOX=/bin/busybox
if [ -z "$RUNC" ] || [ ! -x "$WRAPPER" ] || ! ldd "$BUSYBOX" 2>&1 | grep -q "not a dynamic"; then
	echo "not ok - needs runc (docker.io), a static $BUSYBOX (busybox-static) and $WRAPPER (make)"
	exit 1
fi

T=$(mktemp -d /tmp/egress-runc-e2e.XXXXXX)
STATE=$T/state
IDS=()
cleanup_runc() {
	local id
	for id in "${IDS[@]}"; do
		"$RUNC" --root "$STATE" delete -f "$id" >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap 'cleanup_runc; cleanup_worlds' EXIT

pem() { printf -- '-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n' "$1"; }

# The image: busybox, a Debian bundle, RHEL's bundle behind symlinks.
B=$T/bundle
R=$B/rootfs
mkdir -p "$R/bin" "$R/etc/ssl/certs" "$R/etc/pki/ca-trust/extracted/pem" \
	"$R/etc/pki/tls/certs" "$R/proc" "$R/dev" "$R/sys"
cp "$BUSYBOX" "$R/bin/busybox"
for t in sh cat env echo grep; do ln -s busybox "$R/bin/$t"; done
pem E2E-DEBIAN-ROOT >"$R/etc/ssl/certs/ca-certificates.crt"
pem E2E-RHEL-ROOT >"$R/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"
ln -s /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem "$R/etc/pki/tls/certs/ca-bundle.crt"
pem E2E-EGRESS-CA >"$T/ca.pem"
(cd "$B" && "$RUNC" spec) || { echo "not ok - runc spec failed"; exit 1; }
sed -i 's/"terminal": true/"terminal": false/' "$B/config.json"
cp "$B/config.json" "$T/config.pristine"
FILES=$(cd "$R" && find . -type f | sort)
image_sum() { (cd "$R" && sha256sum $FILES); }
before=$(image_sum)
# Files runc added to the rootfs: only empty mount points are acceptable.
new_files() { (cd "$R" && find . -type f | sort | comm -13 <(echo "$FILES") - |
	while read -r f; do echo "$f $(stat -c %s "$f")"; done); }

SCRIPT='
echo "debian:"; cat /etc/ssl/certs/ca-certificates.crt
echo "rhel:"; cat /etc/pki/tls/certs/ca-bundle.crt
echo "ca:"; cat /tmp/egress-ca.pem
echo "env:"; env | grep -E "^(SSL_CERT_FILE|NODE_EXTRA_CA_CERTS|REQUESTS_CA_BUNDLE|AWS_CA_BUNDLE|HEX_CACERTS_PATH)=" | sort
echo "end"
'
WRITE='if echo x >>/etc/ssl/certs/ca-certificates.crt; then echo "bundle: writable"; else echo "bundle: read-only"; fi'

# run_container ID SCRIPT [VAR=VALUE...]: runs the script in a container
# through the wrapper; output in $T/ID.out, its stderr in $T/ID.err
run_container() {
	local id=$1 script=$2
	shift 2
	IDS+=("$id")
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin EGRESS_RUNC_CONFIG=$T/runc.conf \
		EGRESS_RUNC_CA="$T/ca.pem" EGRESS_RUNC_LOG="$T/runc.log" "$@" \
		"$WRAPPER" --root "$STATE" run --bundle "$B" "$id" \
		<<<"$script" >"$T/$id.out" 2>"$T/$id.err"
}
: >"$T/runc.conf"

id1=egress-runc-e2e-$$-a
check "a container runs through egress-runc and runc" run_container "$id1" "$SCRIPT$WRITE"
out=$(cat "$T/$id1.out")
check_match "the Debian bundle is the image's plus the CA" \
	"debian:.-----BEGIN CERTIFICATE-----.E2E-DEBIAN-ROOT.-----END CERTIFICATE-----.-----BEGIN CERTIFICATE-----.E2E-EGRESS-CA." \
	"$(tr '\n' '.' <<<"$out")"
check_match "the RHEL bundle (a symlink in the image) is merged too" \
	"rhel:.-----BEGIN CERTIFICATE-----.E2E-RHEL-ROOT.-----END CERTIFICATE-----.-----BEGIN CERTIFICATE-----.E2E-EGRESS-CA." \
	"$(tr '\n' '.' <<<"$out")"
check_match "the CA is at /tmp/egress-ca.pem" "ca:.-----BEGIN CERTIFICATE-----.E2E-EGRESS-CA" \
	"$(tr '\n' '.' <<<"$out")"
check_match "the variables point at the system bundle and the CA" \
	"AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt.HEX_CACERTS_PATH=/etc/ssl/certs/ca-certificates.crt.NODE_EXTRA_CA_CERTS=/tmp/egress-ca.pem.REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt.SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
	"$(tr '\n' '.' <<<"$out")"
check_match "the merged bundle is read-only in the container" "bundle: read-only" "$out"
check_eq "the wrapper said nothing on stderr" "" "$(grep egress-runc "$T/$id1.err")"
check_match "the log records the injection" "injected the egress CA .*2 merged bundles" \
	"$(cat "$T/runc.log")"
check_eq "the image's files are unchanged" "$before" "$(image_sum)"
check_eq "runc added only the empty mount point of the CA" "./tmp/egress-ca.pem 0" "$(new_files)"
check_fails "no file of the rootfs holds the CA" grep -rq E2E-EGRESS-CA "$R"
check_eq "runc removed the container" "" "$("$RUNC" --root "$STATE" list -q)"

# Switched off: the container sees its own bundle, no variables.
id2=egress-runc-e2e-$$-b
cp "$T/config.pristine" "$B/config.json"
check "a container runs with EGRESS_RUNC_INJECT=0" run_container "$id2" "$SCRIPT" EGRESS_RUNC_INJECT=0
out=$(cat "$T/$id2.out")
check_match "it sees the image's bundle alone" \
	"debian:.-----BEGIN CERTIFICATE-----.E2E-DEBIAN-ROOT.-----END CERTIFICATE-----.rhel:" \
	"$(tr '\n' '.' <<<"$out")"
check_match "and no CA variables" "env:.end" "$(tr '\n' '.' <<<"$out")"
check_eq "the image's files are still unchanged" "$before" "$(image_sum)"

finish
