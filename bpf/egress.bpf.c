// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * egress.bpf.c - cgroup programs for process attribution and for closing
 * the bypasses the proxy cannot see.  Attached to a cgroup v2 directory
 * (never the machine's root cgroup in tests); every program works without
 * kprobes or fentry, which the project's kernels may lack.
 *
 * Attribution (IPv4): egress_conn4 maps a connection's 5-tuple to the
 * process that opened it, so the proxy and the UDP queue consumer can name
 * the process behind a connection they hold.
 *   - connect4 runs in the connecting task: it stores cookie -> owner in
 *     egress_cookie.  The source port is still 0 here, so no tuple yet.
 *   - sockops TCP_CONNECT_CB runs once the source port is assigned but has
 *     no usable current task: it joins the two through the socket cookie
 *     and writes the TCP tuple before the SYN leaves.
 *   - sendmsg4 (unconnected UDP) has both the task and the source port.
 *   - cgroup_skb/egress covers connected UDP, which sends without calling
 *     sendmsg4.  For a bridged container it runs in the container's netns,
 *     before the host sees the packet.  For a process in the host's own
 *     netns it runs after the mangle OUTPUT queue, so userspace resolves
 *     that first packet through sock_diag (socket cookie) instead.
 *
 * Blocks: connect6/sendmsg6 refuse every IPv6 destination but ::1, and
 * IPv4-mapped ::ffff:a.b.c.d too (connect6 sees those; a mapped sendto
 * only reaches sendmsg4, which refuses it); sock_create refuses raw
 * sockets.
 * A cgroup sock/sock_addr program returning 0 makes the syscall fail with
 * EPERM.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "egress.h"

/* Configuration, set by the loader between open and load. */
const volatile __u32 cfg_block_ipv6 = 1;
const volatile __u32 cfg_block_raw = 1;
const volatile __u32 cfg_attrib = 1;
const volatile __u32 cfg_task_start = 1;
/* The daemon's own sockets carry its mark (SO_MARK): their packets are
 * never intercepted, so nobody ever looks their owner up, and recording
 * them would only cost (every upstream DNS query is a new socket).  A
 * mask of 0 records every socket. */
const volatile __u32 cfg_own_mark = 0;
const volatile __u32 cfg_own_mask = 0;

static __always_inline bool own_mark(__u32 mark)
{
	return cfg_own_mask && (mark & cfg_own_mask) == cfg_own_mark;
}

/* max_entries is set by the loader before load (bpf_map__set_max_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EGRESS_MAP_ENTRIES_DEFAULT);
	__type(key, struct egress_tuple4);
	__type(value, struct egress_owner);
} egress_conn4 SEC(".maps");

/*
 * Socket cookie -> owner at connect().  Cookies are never reused within a
 * boot, so an entry can go stale only by eviction, never by aliasing.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EGRESS_MAP_ENTRIES_DEFAULT);
	__type(key, __u64);
	__type(value, struct egress_owner);
} egress_cookie SEC(".maps");

/*
 * Fills o from the current task.  start_ns is the thread group leader's
 * start time on CLOCK_BOOTTIME, the value /proc/PID/stat reports (in
 * ticks) as starttime: userspace compares the two to detect a reused PID.
 * Reading it needs bpf_get_current_task_btf, which kernels offer to cgroup
 * programs only through bpf_base_func_proto to CAP_PERFMON loaders (and
 * older kernels not at all): the loader retries with cfg_task_start = 0,
 * leaving userspace with the coarser "started after ts_ns" test.
 */
static __always_inline void owner_fill(struct egress_owner *o, __u32 src,
				       __u64 cookie)
{
	struct task_struct *task;

	o->tgid = bpf_get_current_pid_tgid() >> 32;
	o->src = src;
	o->cgroup_id = bpf_get_current_cgroup_id();
	o->ts_ns = bpf_ktime_get_boot_ns();
	o->cookie = cookie;
	if (!cfg_task_start)
		return; /* the verifier prunes the helper call below */
	task = bpf_get_current_task_btf();
	o->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
}

SEC("cgroup/connect4")
int egress_connect4(struct bpf_sock_addr *ctx)
{
	struct egress_owner o = {};
	struct bpf_sock *sk = ctx->sk;
	__u64 cookie;

	if (!cfg_attrib)
		return EGRESS_VERDICT_ALLOW;
	if (ctx->protocol != EGRESS_IPPROTO_TCP &&
	    ctx->protocol != EGRESS_IPPROTO_UDP)
		return EGRESS_VERDICT_ALLOW;
	if (sk && own_mark(sk->mark))
		return EGRESS_VERDICT_ALLOW;
	cookie = bpf_get_socket_cookie(ctx);
	owner_fill(&o, EGRESS_SRC_CONNECT4, cookie);
	bpf_map_update_elem(&egress_cookie, &cookie, &o, BPF_ANY);
	return EGRESS_VERDICT_ALLOW;
}

/*
 * Does the entry for key already name this socket and process?  Connected
 * and unconnected UDP send many packets per socket: a lookup per packet is
 * cheaper than filling and writing an LRU entry each time.
 */
static __always_inline bool conn_known(const struct egress_tuple4 *key,
				       __u64 cookie, __u32 tgid)
{
	struct egress_owner *old = bpf_map_lookup_elem(&egress_conn4, key);

	return old && old->cookie == cookie && old->tgid == tgid;
}

SEC("sockops")
int egress_sockops(struct bpf_sock_ops *skops)
{
	struct egress_tuple4 key = {};
	struct egress_owner o, *c;
	__u64 cookie;

	if (!cfg_attrib || skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB ||
	    skops->family != EGRESS_AF_INET)
		return 1;
	cookie = bpf_get_socket_cookie(skops);
	c = bpf_map_lookup_elem(&egress_cookie, &cookie);
	if (!c)
		return 1; /* connected before we were attached */
	o = *c;
	o.src = EGRESS_SRC_SOCKOPS;
	key.saddr = skops->local_ip4;
	key.daddr = skops->remote_ip4;
	/* local_port is in host order; remote_port holds the network-order
	 * port shifted into the upper half on little-endian: bpf_ntohl
	 * turns it into host order on either endianness. */
	key.sport = bpf_htons((__u16)skops->local_port);
	key.dport = bpf_htons((__u16)bpf_ntohl(skops->remote_port));
	key.proto = EGRESS_IPPROTO_TCP;
	bpf_map_update_elem(&egress_conn4, &key, &o, BPF_ANY);
	return 1;
}

/*
 * Unconnected UDP.  Also the IPv4-mapped half of the IPv6 block: an
 * AF_INET6 UDP socket sending to ::ffff:a.b.c.d (or to an AF_INET address)
 * never reaches sendmsg6 - udpv6_sendmsg() hands it to udp_sendmsg(),
 * which runs this hook with the converted IPv4 address - so the socket's
 * own family is what tells it apart.
 */
SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct egress_tuple4 key = {};
	struct egress_owner o = {};
	struct bpf_sock *sk = ctx->sk;
	__u32 saddr, sport;
	__u64 cookie;

	if (cfg_block_ipv6 && ctx->family == EGRESS_AF_INET6)
		return EGRESS_VERDICT_DENY;
	if (!cfg_attrib || !sk || ctx->protocol != EGRESS_IPPROTO_UDP ||
	    own_mark(sk->mark))
		return EGRESS_VERDICT_ALLOW;
	/* An unbound socket has no source address before the route lookup
	 * that follows this hook; msg_src_ip4 is the IP_PKTINFO source, if
	 * any.  0.0.0.0 is stored as such (userspace falls back to it). */
	saddr = sk->src_ip4;
	sport = sk->src_port;
	key.saddr = saddr ? saddr : ctx->msg_src_ip4;
	key.daddr = ctx->user_ip4;
	key.sport = bpf_htons((__u16)sport);
	key.dport = (__be16)ctx->user_port;
	key.proto = EGRESS_IPPROTO_UDP;
	cookie = bpf_get_socket_cookie(ctx);
	if (conn_known(&key, cookie, bpf_get_current_pid_tgid() >> 32))
		return EGRESS_VERDICT_ALLOW;
	owner_fill(&o, EGRESS_SRC_SENDMSG4, cookie);
	bpf_map_update_elem(&egress_conn4, &key, &o, BPF_ANY);
	return EGRESS_VERDICT_ALLOW;
}

/*
 * Connected UDP.  Runs for every egress packet of the cgroup, so it leaves
 * as early as it can; it never drops (always 1), it only observes.
 */
SEC("cgroup_skb/egress")
int egress_skb(struct __sk_buff *skb)
{
	struct egress_tuple4 key = {};
	struct egress_owner o, *c;
	struct bpf_sock *sk;
	__u64 cookie;

	if (!cfg_attrib || skb->family != EGRESS_AF_INET || own_mark(skb->mark))
		return 1;
	sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != EGRESS_IPPROTO_UDP ||
	    sk->state != EGRESS_UDP_CONNECTED)
		return 1;
	cookie = bpf_get_socket_cookie(skb);
	c = bpf_map_lookup_elem(&egress_cookie, &cookie);
	if (!c)
		return 1;
	key.saddr = sk->src_ip4;
	key.daddr = sk->dst_ip4;
	key.sport = bpf_htons((__u16)sk->src_port);
	key.dport = sk->dst_port;
	key.proto = EGRESS_IPPROTO_UDP;
	if (conn_known(&key, cookie, c->tgid))
		return 1;
	o = *c;
	o.src = EGRESS_SRC_SKB;
	bpf_map_update_elem(&egress_conn4, &key, &o, BPF_ANY);
	return 1;
}

static __always_inline int is_ipv6_loopback(const struct bpf_sock_addr *ctx)
{
	return ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 &&
	       ctx->user_ip6[2] == 0 && ctx->user_ip6[3] == bpf_htonl(1);
}

SEC("cgroup/connect6")
int egress_connect6(struct bpf_sock_addr *ctx)
{
	if (!cfg_block_ipv6 || is_ipv6_loopback(ctx))
		return EGRESS_VERDICT_ALLOW;
	return EGRESS_VERDICT_DENY;
}

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx)
{
	if (!cfg_block_ipv6 || is_ipv6_loopback(ctx))
		return EGRESS_VERDICT_ALLOW;
	return EGRESS_VERDICT_DENY;
}

/*
 * The kernel runs this hook only from inet_create() and inet6_create()
 * (BPF_CGROUP_RUN_PROG_INET_SOCK), so it sees AF_INET/AF_INET6 raw
 * sockets but never an AF_PACKET socket: the family test below is kept
 * for kernels that might call it elsewhere, and AF_PACKET is stopped by
 * the lack of CAP_NET_RAW (packet_create() checks it), which the tests
 * assert.  SOCK_PACKET on AF_INET is rewritten to AF_PACKET before any
 * family's create() runs, so it takes the same path.
 */
SEC("cgroup/sock_create")
int egress_sock_create(struct bpf_sock *sk)
{
	if (!cfg_block_raw)
		return EGRESS_VERDICT_ALLOW;
	if (sk->type == EGRESS_SOCK_RAW || sk->family == EGRESS_AF_PACKET)
		return EGRESS_VERDICT_DENY;
	return EGRESS_VERDICT_ALLOW;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
