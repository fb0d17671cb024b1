#!/usr/bin/env bash
# vm/initramfs.sh - the initramfs of one cached kernel: busybox-static,
# vm/init and the boot modules of vm/modules.list (with their
# dependencies, in load order, decompressed).
#
# usage: initramfs.sh KERNEL_DIR    (a directory made by vm/kernel.sh fetch)
# Prints the path of the image.  It is cached under VM_CACHE/initramfs,
# named after a hash of everything that goes into it, so a change to
# vm/init, the module list or busybox makes a new one.
set -euo pipefail

VM_CACHE=${VM_CACHE:-/var/cache/egressd-vm}
BUSYBOX=${BUSYBOX:-/bin/busybox}
HERE=$(cd "$(dirname "$0")" && pwd)

die() {
	echo "vm/initramfs: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: initramfs.sh KERNEL_DIR"
KDIR=$1
[ -e "$KDIR/.complete" ] || die "$KDIR is not an unpacked kernel (vm/kernel.sh fetch)"
VER=$(basename "$KDIR")
REL=$VER-amd64
# busybox-static's binary must not need a loader: the initramfs has none.
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing: install busybox-static (scripts/install-deps.sh)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	die "$BUSYBOX is not static: install busybox-static (scripts/install-deps.sh)"
fi

boot_mods=$(awk '!/^#/ && $2 == "boot" {print $1}' "$HERE/modules.list")
hash=$({
	cat "$HERE/init" "$HERE/modules.list" "$0"
	sha256sum "$BUSYBOX"
	echo "$VER"
} | sha256sum | cut -c1-16)
out=$VM_CACHE/initramfs/$VER-$hash.cpio.gz
if [ -e "$out" ]; then
	echo "$out"
	exit 0
fi

mkdir -p "$VM_CACHE/initramfs"
tmp=$(mktemp -d "$VM_CACHE/initramfs/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
st=$tmp/root
mkdir -p "$st/bin" "$st/sbin" "$st/dev" "$st/proc" "$st/sys" "$st/modules" \
	"$st/mnt/host"
cp "$BUSYBOX" "$st/bin/busybox"
cp "$HERE/init" "$st/init"
chmod 0755 "$st/init"
# The kernel opens /dev/console before /init runs (devtmpfs comes later).
mknod -m 0600 "$st/dev/console" c 5 1

# modprobe --show-depends prints the insmod lines in load order, from the
# cached modules.dep, without loading anything on this machine.
# shellcheck disable=SC2086
modprobe -d "$KDIR/modules" -S "$REL" --show-depends -a $boot_mods \
	>"$tmp/deps" || die "modprobe --show-depends failed for: $boot_mods"
: >"$st/modules/order"
while read -r kind path _; do
	[ "$kind" = insmod ] || continue
	name=$(basename "$path")
	name=${name%.xz}
	name=${name%.zst}
	name=${name%.gz}
	grep -qx "$name" "$st/modules/order" && continue
	case $path in
	*.xz) xz -dc "$path" >"$st/modules/$name" ;;
	*.zst) zstd -qdc "$path" >"$st/modules/$name" ;;
	*.gz) gzip -dc "$path" >"$st/modules/$name" ;;
	*) cp "$path" "$st/modules/$name" ;;
	esac
	echo "$name" >>"$st/modules/order"
done <"$tmp/deps"

(cd "$st" && find . -print0 | sort -z |
	cpio --null --create --format=newc --owner=0:0 --quiet) |
	gzip -1 >"$tmp/image"
mv "$tmp/image" "$out"
echo "$out"
