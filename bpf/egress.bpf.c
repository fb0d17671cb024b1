// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * egress.bpf.c - cgroup programs that close the bypasses the proxy cannot
 * see: IPv6 egress and raw/packet sockets.  Attached to a cgroup v2
 * directory (never the machine's root cgroup in tests).
 *
 * A cgroup/connect6 or cgroup/sendmsg6 program returning 0 makes the
 * syscall fail with EPERM; loopback ::1 stays usable.  IPv4-mapped
 * addresses (::ffff:a.b.c.d) are IPv6 destinations here and are refused,
 * so a dual-stack socket cannot reach IPv4 around the IPv4 interception.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress.h"

/* Configuration, set by the loader between open and load. */
const volatile __u32 cfg_block_ipv6 = 1;
const volatile __u32 cfg_block_raw = 1;

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
