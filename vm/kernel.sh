#!/usr/bin/env bash
# vm/kernel.sh - find, download and unpack a Debian kernel for the VM
# harness, without touching /boot, /lib/modules or /etc/apt.
#
# usage: kernel.sh resolve KERNEL   prints the exact version (5.10.0-46)
#        kernel.sh fetch KERNEL     resolves, downloads and unpacks; prints
#                                   the kernel's cache directory
#
# KERNEL is a series ("5.10", "6.1", "6.12": the newest of that series
# the mirror offers, or else the newest one already cached) or an exact
# Debian version ("6.1.0-57", "6.12.117+deb12"): the package is
# linux-image-KERNEL-amd64-unsigned and `uname -r` is KERNEL-amd64.
#
# Packages come through a private apt configuration under the cache
# (sources, lists, archives and an empty dpkg status of its own), so that
# bullseye's 5.10 is reachable on a bookworm machine and the machine's own
# apt state is never changed.  The mirror is the one the machine's apt
# already uses (read with `apt-get indextargets`), unless VM_MIRROR /
# VM_SECURITY_MIRROR say otherwise.
#
# Cache layout (VM_CACHE, default /var/cache/egressd-vm):
#   apt/                     private apt state (sources.list, lists, debs)
#   kernels/VER/vmlinuz      the kernel image
#   kernels/VER/config       its configuration
#   kernels/VER/modules/     lib/modules/VER-amd64, with modules.dep made by
#                            depmod -b (cached with the tree)
#   kernels/VER/.complete    written last: a half-unpacked kernel is redone
set -euo pipefail

VM_CACHE=${VM_CACHE:-/var/cache/egressd-vm}
VM_SUITES=${VM_SUITES:-bullseye bullseye-security bookworm bookworm-security}
VM_KEYRING=${VM_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
# The private lists are refreshed when older than this (hours); a refresh
# that fails (offline) falls back to the lists and kernels already cached.
VM_APT_MAX_AGE=${VM_APT_MAX_AGE:-12}

die() {
	echo "vm/kernel: $*" >&2
	exit 1
}
say() { echo "vm/kernel: $*" >&2; }

APT=$VM_CACHE/apt
APT_OPTS=(
	-o "Dir::Etc::SourceList=$APT/sources.list"
	-o "Dir::Etc::SourceParts=$APT/sources.list.d"
	-o "Dir::State=$APT/state"
	-o "Dir::State::Lists=$APT/lists"
	-o "Dir::State::Status=$APT/status"
	-o "Dir::Cache=$APT/cache"
	-o "Debug::NoLocking=1"
	-o "APT::Sandbox::User=root"
	-o "APT::Get::List-Cleanup=1"
)

# The Debian mirror (and security mirror) of the machine's own apt sources.
host_mirror() {
	local want=$1 uri rel
	while read -r uri rel; do
		case $want:$rel in
		security:*-security | main:[a-z]*[a-z])
			if [ "$want" = security ] || [ "${rel#*-}" = "$rel" ]; then
				echo "${uri%/}"
				return 0
			fi
			;;
		esac
	done < <(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' \
		'Created-By: Packages' 2>/dev/null | sort -u)
	return 1
}

apt_setup() {
	local main sec s
	mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" \
		"$APT/sources.list.d" "$APT/state" "$APT/debs"
	[ -e "$APT/status" ] || : >"$APT/status"
	main=${VM_MIRROR:-$(host_mirror main || true)}
	sec=${VM_SECURITY_MIRROR:-$(host_mirror security || true)}
	[ -n "$main" ] || die "no Debian mirror in the machine's apt sources: set VM_MIRROR"
	[ -n "$sec" ] || sec=${main%/debian}/debian-security
	{
		for s in $VM_SUITES; do
			case $s in
			*-security) echo "deb [signed-by=$VM_KEYRING] $sec $s main" ;;
			*) echo "deb [signed-by=$VM_KEYRING] $main $s main" ;;
			esac
		done
	} >"$APT/sources.list.new"
	if ! cmp -s "$APT/sources.list.new" "$APT/sources.list"; then
		mv "$APT/sources.list.new" "$APT/sources.list"
		rm -f "$APT/updated"
	else
		rm -f "$APT/sources.list.new"
	fi
}

# Refreshes the private lists when they are missing or stale; 1 when no
# lists can be had.
apt_update() {
	apt_setup
	if [ -e "$APT/updated" ] &&
		[ -z "$(find "$APT/updated" -mmin +$((VM_APT_MAX_AGE * 60)))" ]; then
		return 0
	fi
	say "refreshing the kernel package lists ($VM_SUITES)"
	# (without --error-on=any an unreachable mirror is only a warning)
	if apt-get "${APT_OPTS[@]}" -qq --error-on=any update >"$APT/update.log" 2>&1; then
		touch "$APT/updated"
		return 0
	fi
	say "apt-get update failed (see $APT/update.log): offline, using what is cached"
	OFFLINE=1
	[ -n "$(find "$APT/lists" -maxdepth 1 -name '*Packages*' -print -quit)" ]
}

# Every exact version of a series the lists offer, oldest first.
offered() {
	local re="^linux-image-(${1//./\\.}\\.[0-9]+(-[0-9]+|\\+deb[0-9]+))-amd64-unsigned\$"
	apt-cache "${APT_OPTS[@]}" pkgnames linux-image- 2>/dev/null |
		sed -nE "s/$re/\\1/p" | sort -V
}

cached() {
	local d
	for d in "$VM_CACHE/kernels/$1".*; do
		if [ -e "$d/.complete" ]; then basename "$d"; fi
	done | sort -V
}

resolve() {
	local k=$1 v
	case $k in
	[0-9]*.[0-9]*.*) echo "$k" ;;
	[0-9]*.[0-9]*)
		v=
		OFFLINE=
		if apt_update; then v=$(offered "$k" | tail -n1); fi
		# offline, a kernel in the cache beats one that cannot be fetched
		if [ -z "$v" ] || { [ -n "$OFFLINE" ] && [ -n "$(cached "$k")" ]; }; then
			v=$(cached "$k" | tail -n1)
		fi
		[ -n "$v" ] || die "no $k kernel offered by the mirror nor cached"
		echo "$v"
		;;
	*) die "KERNEL must be a series (6.1) or a Debian version (6.1.0-57): '$k'" ;;
	esac
}

fetch() {
	local v=$1 dir=$VM_CACHE/kernels/$1 pkg tmp deb
	if [ -e "$dir/.complete" ]; then
		echo "$dir"
		return 0
	fi
	pkg=linux-image-$v-amd64-unsigned
	deb=$(ls "$APT/debs/${pkg}_"*.deb 2>/dev/null | tail -n1 || true)
	if [ -z "$deb" ]; then
		apt_update || die "no package lists: cannot download $pkg"
		say "downloading $pkg"
		(cd "$APT/debs" && apt-get "${APT_OPTS[@]}" -qq download "$pkg") ||
			die "apt-get download $pkg failed (not on the mirror any more? try a series: KERNEL=${v%%.*}.$(echo "$v" | cut -d. -f2))"
		deb=$(ls "$APT/debs/${pkg}_"*.deb | tail -n1)
	fi
	say "unpacking $(basename "$deb")"
	rm -rf "$dir"
	tmp=$(mktemp -d "$VM_CACHE/kernels/.unpack.XXXXXX")
	dpkg-deb -x "$deb" "$tmp/root"
	mkdir -p "$dir"
	mv "$tmp/root/boot/vmlinuz-$v-amd64" "$dir/vmlinuz"
	mv "$tmp/root/boot/config-$v-amd64" "$dir/config"
	mkdir -p "$dir/modules/lib/modules"
	mv "$tmp/root/lib/modules/$v-amd64" "$dir/modules/lib/modules/"
	rm -rf "$tmp"
	depmod -b "$dir/modules" "$v-amd64"
	touch "$dir/.complete"
	# The .deb is kept until the tree is complete: a broken unpack is
	# redone from it without a download; now it is no longer needed.
	rm -f "$deb"
	echo "$dir"
}

command -v depmod >/dev/null || die "depmod is missing: run scripts/install-deps.sh (kmod)"
[ $# -eq 2 ] || die "usage: kernel.sh resolve|fetch KERNEL"
mkdir -p "$VM_CACHE/kernels"
# One download or unpack at a time per cache.
exec 9>"$VM_CACHE/lock"
flock 9
case $1 in
resolve) resolve "$2" ;;
fetch) fetch "$(resolve "$2")" ;;
*) die "usage: kernel.sh resolve|fetch KERNEL" ;;
esac
