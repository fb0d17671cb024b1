# shellcheck shell=bash
# tests/docker/images.sh - test images for the Docker tier, made from the
# machine's own files and `docker import`ed into a world's dockerd (no
# registry is reachable).  Sourced after tests/netns/lib.sh.
#
#   images_build W [FLAVOUR...]   imports the images named below into world
#                                 W's dockerd (all of them by default)
#
# Images (every one has busybox at /bin with the usual applets, /tmp,
# /etc/passwd and /etc/nsswitch.conf; the tools images add curl, openssl
# and socat from the host with the libraries ldd lists):
#   sim-busybox:1      busybox alone: no CA bundle, no TLS client
#   sim-tools-deb:1    Debian layout: the host's bundle at
#                      /etc/ssl/certs/ca-certificates.crt, and
#                      /usr/lib/ssl/{cert.pem,certs} pointing at it
#   sim-tools-rhel:1   RHEL layout: the bundle at
#                      /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem,
#                      reached through /etc/pki/tls/certs/ca-bundle.crt,
#                      /etc/pki/tls/cert.pem and /etc/ssl/cert.pem
#                      (symlinks), /etc/ssl/certs -> /etc/pki/tls/certs
#   sim-tools-none:1   no CA bundle at all (a distroless-like image)
#   sim-tools-env:1    the Debian layout plus a bundle of its own,
#                      /etc/ssl/own-bundle.pem, named by
#                      `ENV SSL_CERT_FILE` in the image's config
#
# The root file systems are assembled once per world under its state
# directory (hard links between flavours), so `egress-sim down` removes
# them together with dockerd's image store.

IMAGES_TOOLS="curl openssl socat"
IMAGES_APPLETS="sh ash cat env ls echo grep sleep test [ touch rm mkdir wc head
tail tr sed id ps nslookup wget stat sha256sum printf true false ip nc cut"

# the libraries and dynamic loader a binary needs, one path a line
images_libs() {
	ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
}

# images_copy ROOT PATH: PATH (followed, if a symlink) at the same place
images_copy() {
	mkdir -p "$1$(dirname "$2")"
	cp -L "$2" "$1$2"
}

# images_base DIR: busybox and the common files
images_base() {
	local r=$1 a
	mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/proc" "$r/sys" "$r/dev"
	chmod 1777 "$r/tmp"
	cp /bin/busybox "$r/bin/busybox"
	for a in $IMAGES_APPLETS; do ln -sf busybox "$r/bin/$a"; done
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\n' >"$r/etc/group"
	printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
}

# images_import W DIR NAME [--change ...]: tar DIR into world W's dockerd
images_import() {
	local w=$1 dir=$2 name=$3
	shift 3
	tar -C "$dir" -c . | in_world "$w" host docker import "$@" - "$name" >/dev/null
}

images_build() {
	local w=$1 dir tools t f lib
	shift
	local flavours=${*:-busybox deb rhel none env}
	if ! ldd /bin/busybox 2>&1 | grep -q "not a dynamic"; then
		echo "# images: /bin/busybox is not static (install busybox-static)" >&2
		return 1
	fi
	for t in $IMAGES_TOOLS; do
		if ! command -v "$t" >/dev/null; then
			echo "# images: $t is missing (scripts/install-deps.sh)" >&2
			return 1
		fi
	done
	dir=/run/egress-sim/$w/images
	rm -rf "$dir"
	mkdir -p "$dir"
	images_base "$dir/busybox"
	# the tools: binaries and their libraries at their host paths
	tools=$dir/tools
	cp -a "$dir/busybox" "$tools"
	for t in $IMAGES_TOOLS; do
		f=$(readlink -f "$(command -v "$t")")
		images_copy "$tools" "$f"
		for lib in $(images_libs "$f"); do
			[ -e "$tools$lib" ] || images_copy "$tools" "$lib"
		done
	done
	for f in $flavours; do
		case $f in
		busybox)
			images_import "$w" "$dir/busybox" sim-busybox:1 || return 1
			;;
		deb | env)
			cp -al "$tools" "$dir/$f"
			mkdir -p "$dir/$f/etc/ssl/certs" "$dir/$f/usr/lib/ssl"
			cp /etc/ssl/certs/ca-certificates.crt "$dir/$f/etc/ssl/certs/"
			ln -s /etc/ssl/certs/ca-certificates.crt "$dir/$f/usr/lib/ssl/cert.pem"
			ln -s /etc/ssl/certs "$dir/$f/usr/lib/ssl/certs"
			if [ "$f" = deb ]; then
				images_import "$w" "$dir/$f" sim-tools-deb:1 || return 1
			else
				cp /etc/ssl/certs/ca-certificates.crt "$dir/$f/etc/ssl/own-bundle.pem"
				images_import "$w" "$dir/$f" sim-tools-env:1 \
					--change 'ENV SSL_CERT_FILE=/etc/ssl/own-bundle.pem' || return 1
			fi
			;;
		rhel)
			cp -al "$tools" "$dir/$f"
			t=$dir/$f
			mkdir -p "$t/etc/pki/ca-trust/extracted/pem" "$t/etc/pki/tls/certs" "$t/etc/ssl"
			cp /etc/ssl/certs/ca-certificates.crt \
				"$t/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"
			ln -s /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem \
				"$t/etc/pki/tls/certs/ca-bundle.crt"
			ln -s /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem "$t/etc/pki/tls/cert.pem"
			ln -s /etc/pki/tls/cert.pem "$t/etc/ssl/cert.pem"
			ln -s /etc/pki/tls/certs "$t/etc/ssl/certs"
			images_import "$w" "$t" sim-tools-rhel:1 || return 1
			;;
		none)
			images_import "$w" "$tools" sim-tools-none:1 || return 1
			;;
		*)
			echo "# images: unknown flavour $f" >&2
			return 1
			;;
		esac
	done
}
