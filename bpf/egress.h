/*
 * egress.h - definitions shared by the BPF programs and userspace.
 *
 * Includes nothing (it is read by both the BPF and the host compiler, and
 * each side brings its own __u32/__be32), fixes every size and byte order,
 * and checks the struct sizes on both sides with _Static_assert, so that a
 * padding change on either compiler breaks the build instead of the map.
 */
#ifndef EGRESS_BPF_EGRESS_H
#define EGRESS_BPF_EGRESS_H

/* Values the BPF side needs but vmlinux.h does not carry (macros). */
#define EGRESS_AF_INET 2
#define EGRESS_AF_INET6 10
#define EGRESS_AF_PACKET 17
#define EGRESS_SOCK_RAW 3
#define EGRESS_IPPROTO_TCP 6
#define EGRESS_IPPROTO_UDP 17
/* sk_state of a connected UDP socket (TCP_ESTABLISHED in the kernel). */
#define EGRESS_UDP_CONNECTED 1

/* Return values of cgroup sock/sock_addr/skb programs. */
#define EGRESS_VERDICT_DENY 0 /* the syscall fails with EPERM */
#define EGRESS_VERDICT_ALLOW 1

/* Default number of entries of each LRU map (the loader may change it). */
#define EGRESS_MAP_ENTRIES_DEFAULT 65536

/*
 * Key of the connection map: one IPv4 5-tuple as the client's socket sees
 * it.  Every field is in network byte order, exactly as it sits in the IP
 * and TCP/UDP headers, so the queue consumer can copy a packet's fields
 * without conversion.  saddr may be 0.0.0.0 for an unconnected UDP socket
 * that has not been bound (cgroup/sendmsg4 runs before the route lookup):
 * userspace looks the exact tuple up first, then the tuple with saddr 0.
 * pad must be zero: the key is hashed as raw bytes.
 */
struct egress_tuple4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto; /* EGRESS_IPPROTO_TCP or EGRESS_IPPROTO_UDP */
	__u8 pad[3];
};
#define EGRESS_TUPLE4_SIZE 16

/* Which hook wrote an egress_owner (for debugging and tests). */
enum egress_src {
	EGRESS_SRC_CONNECT4 = 1, /* cookie map, at connect() */
	EGRESS_SRC_SOCKOPS = 2, /* TCP, at TCP_CONNECT_CB */
	EGRESS_SRC_SENDMSG4 = 3, /* unconnected UDP, at sendmsg() */
	EGRESS_SRC_SKB = 4, /* connected UDP, at cgroup_skb/egress */
};

/*
 * Value of both maps: who owned the socket.  Host byte order throughout
 * (it never leaves the machine).  ts_ns and start_ns are on CLOCK_BOOTTIME
 * (bpf_ktime_get_boot_ns), the clock of /proc/PID/stat's starttime, so
 * userspace can tell a reused PID from the original process.
 */
struct egress_owner {
	__u32 tgid; /* process (thread group) id, in the initial pid ns */
	__u32 src; /* enum egress_src */
	__u64 cgroup_id; /* cgroup v2 id (kernfs id, the directory's handle) */
	__u64 ts_ns; /* when the pid was read (connect/sendmsg) */
	__u64 cookie; /* the socket's cookie (bpf_get_socket_cookie) */
	__u64 start_ns; /* the thread group leader's start time, 0: unknown */
};
#define EGRESS_OWNER_SIZE 40

_Static_assert(sizeof(struct egress_tuple4) == EGRESS_TUPLE4_SIZE,
	       "egress_tuple4 layout changed");
_Static_assert(sizeof(struct egress_owner) == EGRESS_OWNER_SIZE,
	       "egress_owner layout changed");

#endif /* EGRESS_BPF_EGRESS_H */
