#!/usr/bin/env bash
# Install every Debian package that the build, the tests, the demo and the
# benchmarks need.  Idempotent: packages already present are left alone and
# apt-get is not run at all when nothing is missing.
#
# Installing a package must never start its service in the machine's own
# network namespace (docker, nginx, dnsmasq ...).  While we install, a
# temporary /usr/sbin/policy-rc.d that denies every start is put in place
# (the Debian mechanism invoke-rc.d honours); a pre-existing one is kept.
set -euo pipefail

PKGS=(
	# toolchain and build
	build-essential pkg-config clang llvm make git clang-format
	# BPF
	libbpf-dev bpftool libelf-dev zlib1g-dev
	# libraries
	libjansson-dev libyaml-dev libevent-dev libssl-dev
	libnl-3-dev libnl-route-3-dev
	libnetfilter-queue-dev libmnl-dev libnetfilter-conntrack-dev
	libcap-dev
	node-llhttp
	# tests
	check iproute2 iptables procps util-linux curl openssl socat
	dnsutils python3
	# the Docker tier: dockerd confined to a simulated netns, busybox images
	docker.io busybox-static
	# the kernel matrix in VMs (make vm-check / vm-matrix, vm/): qemu,
	# initramfs tools, depmod/modprobe for Debian kernels' module trees
	qemu-system-x86 cpio kmod xz-utils zstd
	# benchmarks: load generators, a fast static server, the peer proxies
	# (bench/bench_proxy.sh)
	hyperfine wrk nginx-light mitmproxy sslsplit
	# DNS load generator (bench/bench_udp.sh)
	dnsperf
)

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: must run as root (apt-get)" >&2
	exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
	[[ $p == \#* ]] && continue
	if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} packages present"
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	made_policy=1
fi
cleanup() { [ "$made_policy" = 1 ] && rm -f "$policy"; return 0; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

# On a systemd machine the packages also enabled their units for the next
# boot; the project only ever runs dockerd (and the benchmark's nginx)
# inside a simulated namespace, so the units of packages installed here are
# disabled (and stopped).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	for p in "${missing[@]}"; do
		case $p in
		docker.io) units="docker.service docker.socket containerd.service" ;;
		nginx-light | nginx | nginx-core) units="nginx.service" ;;
		*) continue ;;
		esac
		systemctl disable --now $units >/dev/null 2>&1 || true
	done
fi
