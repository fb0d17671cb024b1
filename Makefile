# egressd - GNU Makefile.
#
# Overridable variables (make VAR=value):
#   BUILD       build directory (git-ignored)                  [build]
#   CC, CLANG   C compiler; clang for the BPF object           [cc, clang]
#   BPFTOOL     bpftool, for vmlinux.h and skeletons           [bpftool]
#   CFLAGS      optimisation/debug flags                       [-O2 -g]
#   PREFIX      install prefix                                 [/usr/local]
#   DESTDIR     staging root for `make install`                []
#   VMLINUX_BTF kernel BTF used to generate vmlinux.h          [/sys/kernel/btf/vmlinux]
#   LLHTTP_SRC  llhttp's generated C sources (Debian node-llhttp) [/usr/share/llhttp]
#   LLHTTP_INC  llhttp's header directory                      [/usr/share/include/llhttp]
#   V=1         show full commands
#   KERNEL      vm-check/vm-shell: a Debian kernel series (6.1) or version
#               (6.1.0-57)
#   VM_KERNELS  vm-matrix: the kernels                          [5.10 6.1 6.12]
#   VM_CACHE    kernels, private apt state, initramfs images [/var/cache/egressd-vm]
#   (vm/run.sh lists the other VM_* knobs: VM_ACCEL, VM_TIMEOUT, VM_TESTS ...)
#
# Targets: all (default), check (check-unit, check-netns, check-docker),
# vm-check, vm-matrix, vm-shell (kernel matrix in VMs, never part of
# check), bench, install, uninstall, format, format-check, clean.

BUILD ?= build
CLANG ?= clang
BPFTOOL ?= bpftool
CFLAGS ?= -O2 -g
PREFIX ?= /usr/local
DESTDIR ?=
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
LLHTTP_SRC ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
PKG_CONFIG ?= pkg-config

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:

# relayd's warning set, plus -Werror (STYLE.md I.35).
WARN := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
	-Wmissing-declarations -Wshadow -Wpointer-arith -Wsign-compare \
	-Wcast-qual -Wformat=2 -Wno-format-nonliteral
PKGS := jansson yaml-0.1 libbpf libnl-3.0 libnl-route-3.0 libevent \
	libevent_openssl openssl libnetfilter_queue libmnl \
	libnetfilter_conntrack
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)

ALL_CPPFLAGS := -D_GNU_SOURCE -Isrc -Isim -Ibpf -I$(BUILD) -I$(LLHTTP_INC) \
	-DEGRESS_SRCDIR='"$(CURDIR)"' $(CPPFLAGS)
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) $(PKG_CFLAGS) -pthread
LIBS := $(PKG_LIBS) -pthread

# Everything but the programs' main() files: linked into the programs and,
# built again with sanitizers, into the unit-test runner.
CORE_SRCS := src/util.c src/hmap.c src/policy_parse.c src/policy_match.c \
	src/policy_index.c src/policy_decide.c src/dnscache.c \
	src/event_json.c src/workflow.c src/ctl_common.c src/ctl_validate.c \
	src/ctl_check.c src/ctl_analyze.c src/ctl_suggest.c src/dnsmsg.c src/jlog.c
# BPF loader, attribution and their egressctl commands (need libbpf); the
# Docker image cache that attribution reads.
CORE_SRCS += src/cgroup.c src/bpfload.c src/attrib.c src/ctl_bpf.c \
	src/dockerimg.c src/httpresp.c
# TLS interception: ClientHello parser, forged certificates.
CORE_SRCS += src/tlsparse.c src/certforge.c
# Netfilter rules (iptables-restore) and their egressctl command.
CORE_SRCS += src/nfrules.c src/ctl_nf.c
# The daemon's shared pieces and egressctl's daemon client.
CORE_SRCS += src/polref.c src/ctl_daemon.c
# DNS judging, shared by the UDP DNS proxy and DNS over TCP.
CORE_SRCS += src/dnsjudge.c
# NFQUEUE consumer and conntrack lookups (the UDP path and the DNS proxy).
CORE_SRCS += src/nfqueue.c src/ctlookup.c
# The transparent proxy (needs llhttp): linked into egressd and the unit
# tests only.
PROXY_SRCS := src/proxy.c src/proxy_tls.c src/proxy_http.c src/proxy_dns.c \
	src/udpd.c
# egress-runc, the runc wrapper: runs on every runc call, so it links only
# these, util.c, httpresp.c (the HTTP reader it shares with dockerimg.c)
# and jansson.
RUNC_SRCS := src/runc_args.c src/runc_conf.c src/runc_config.c \
	src/runc_inject.c src/runc_docker.c src/runc_exec.c
PROG_SRCS := src/egressctl.c src/egressd.c sim/egress-sim.c src/egress_runc.c
PROGS := $(BUILD)/egressctl $(BUILD)/egressd $(BUILD)/egress-sim \
	$(BUILD)/egress-runc
# The simulator (world builder, test PKI, simulated internet services):
# linked into egress-sim and the unit-test runner, never into egressd.
SIM_SRCS := $(filter-out sim/egress-sim.c,$(wildcard sim/*.c))
SIM_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(SIM_SRCS))

UNIT_SRCS := $(wildcard tests/unit/*.c)
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
LLHTTP_OBJS := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o \
	$(BUILD)/llhttp/http.o

CORE_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(CORE_SRCS))
PROXY_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(PROXY_SRCS))
RUNC_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(RUNC_SRCS))
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
ASAN_OBJS := $(patsubst %.c,$(BUILD)/asan/%.o,$(CORE_SRCS) $(PROXY_SRCS) \
	$(SIM_SRCS) $(RUNC_SRCS) \
	$(UNIT_SRCS))

all: $(PROGS) $(BPF_SKELS) $(BUILD)/libllhttp.a

$(BUILD)/egressctl: $(BUILD)/src/egressctl.o $(CORE_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

$(BUILD)/egressd: $(BUILD)/src/egressd.o $(CORE_OBJS) $(PROXY_OBJS) \
		$(BUILD)/libllhttp.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

$(BUILD)/egress-sim: $(BUILD)/sim/egress-sim.o $(SIM_OBJS) $(CORE_OBJS) \
		$(BUILD)/libllhttp.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

JANSSON_LIBS := $(shell $(PKG_CONFIG) --libs jansson 2>/dev/null)
$(BUILD)/egress-runc: $(BUILD)/src/egress_runc.o $(RUNC_OBJS) \
		$(BUILD)/src/httpresp.o \
		$(BUILD)/src/util.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(JANSSON_LIBS)

$(BUILD)/%.o: %.c | $(BPF_SKELS)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/asan/%.o: %.c | $(BPF_SKELS)
	$(call msg,CC-SAN,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -O1 $(SAN) -MMD -MP -c -o $@ $<

# ---- BPF: vmlinux.h -> *.bpf.o -> *.skel.h --------------------------------

$(BUILD)/vmlinux.h:
	$(call msg,BTF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)test -r $(VMLINUX_BTF) || { echo "$(VMLINUX_BTF) missing: the kernel has no BTF" >&2; exit 1; }
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

BPF_ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
$(BUILD)/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h $(wildcard bpf/*.h)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) \
		-I$(BUILD) -Ibpf -Wall -Werror -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# ---- llhttp, from Debian's node-llhttp, with its own (relaxed) flags ------

$(BUILD)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -O2 -g -fPIC -I$(LLHTTP_INC) -c -o $@ $<

$(BUILD)/libllhttp.a: $(LLHTTP_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

# ---- tests ----------------------------------------------------------------

$(BUILD)/check_unit: $(ASAN_OBJS) $(BUILD)/libllhttp.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $^ $(LDFLAGS) $(LIBS) $(CHECK_LIBS)

.PHONY: all check check-unit check-netns check-docker bench install \
	uninstall format format-check clean vm-check vm-matrix vm-shell

check: check-unit check-netns check-docker

check-unit: $(BUILD)/check_unit $(PROGS)
	$(call msg,TEST,unit)
	$(Q)EGRESSCTL=$(CURDIR)/$(BUILD)/egressctl \
		EGRESS_RUNC=$(CURDIR)/$(BUILD)/egress-runc \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/check_unit

# Helpers of the netns tier (built with it, never installed).
TEST_PROGS := $(BUILD)/bpf-probe

$(BUILD)/bpf-probe: $(BUILD)/tests/netns/bpf_probe.o $(CORE_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

TEST_PROGS += $(BUILD)/nf-probe
$(BUILD)/nf-probe: $(BUILD)/tests/netns/nf_probe.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS)

TEST_PROGS += $(BUILD)/nfq-probe
$(BUILD)/nfq-probe: $(BUILD)/tests/netns/nfq_probe.o $(CORE_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

check-netns: all $(TEST_PROGS)
	$(Q)tests/netns/run.sh $(BUILD)

check-docker: all
	$(Q)tests/docker/run.sh $(BUILD)

# ---- kernel matrix: the kernel-sensitive tests in VMs (vm/) ----------------
# Debian kernels booted with qemu (KVM if it works, TCG otherwise) on this
# checkout's binaries; see vm/run.sh.  Not part of `make check`.

VM_KERNELS ?= 5.10 6.1 6.12
VM_CACHE ?= /var/cache/egressd-vm
export VM_CACHE

vm-check: all $(TEST_PROGS)
	$(Q)test -n "$(KERNEL)" || { echo "usage: make vm-check KERNEL=6.1 (a series or a Debian version such as 6.1.0-57)" >&2; exit 2; }
	$(Q)BUILD=$(BUILD) vm/run.sh $(KERNEL)

vm-matrix: all $(TEST_PROGS)
	$(Q)BUILD=$(BUILD) vm/run.sh $(VM_KERNELS)

vm-shell: all $(TEST_PROGS)
	$(Q)BUILD=$(BUILD) vm/run.sh --shell $(or $(KERNEL),6.1)

$(BUILD)/bench_policy: bench/bench_policy.c $(CORE_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

$(BUILD)/bench_attrib: bench/bench_attrib.c $(CORE_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

$(BUILD)/bench_jlog: bench/bench_jlog.c $(CORE_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

$(BUILD)/bench_certforge: bench/bench_certforge.c $(CORE_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

# The HTTPS load client of bench/bench_proxy.sh (new handshake per request,
# idle connections); plain OpenSSL, nothing of the project.
$(BUILD)/bench_tlsload: bench/bench_tlsload.c
	$(call msg,LINK,$@)
	$(Q)$(CC) -D_GNU_SOURCE $(ALL_CFLAGS) -o $@ $< $(LIBS)

# The UDP/DNS load tool and fast echo/DNS servers of bench/bench_udp.sh;
# libc only.
$(BUILD)/bench_udpload: bench/bench_udpload.c
	$(call msg,LINK,$@)
	$(Q)$(CC) -D_GNU_SOURCE $(ALL_CFLAGS) -o $@ $<

# The micro-benchmarks, then the proxy side by side with its peers in a
# simulator world, then UDP and DNS through egressd against no rules in
# another (need root and the Debian packages of scripts/install-deps.sh).
bench: $(BUILD)/bench_policy $(BUILD)/bench_attrib $(BUILD)/bench_jlog \
		$(BUILD)/bench_certforge $(BUILD)/bench_tlsload \
		$(BUILD)/bench_udpload $(PROGS)
	$(Q)$(BUILD)/bench_policy
	$(Q)$(BUILD)/bench_attrib
	$(Q)$(BUILD)/bench_jlog
	$(Q)$(BUILD)/bench_certforge
	$(Q)bench/bench_proxy.sh $(BUILD)
	$(Q)bench/bench_udp.sh $(BUILD)

# ---- install --------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BUILD)/egressd $(DESTDIR)$(PREFIX)/sbin/egressd
	install -m 0755 $(BUILD)/egressctl $(DESTDIR)$(PREFIX)/bin/egressctl
	install -m 0755 $(BUILD)/egress-sim $(DESTDIR)$(PREFIX)/bin/egress-sim
	install -m 0755 $(BUILD)/egress-runc $(DESTDIR)$(PREFIX)/sbin/egress-runc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/egressctl $(DESTDIR)$(PREFIX)/bin/egress-sim \
		$(DESTDIR)$(PREFIX)/sbin/egressd \
		$(DESTDIR)$(PREFIX)/sbin/egress-runc

# ---- formatting -----------------------------------------------------------

FMT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	clang-format -i $(FMT_SRCS)

format-check:
	$(call msg,FORMAT,$(words $(FMT_SRCS)) files)
	$(Q)clang-format --dry-run --Werror $(FMT_SRCS)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
