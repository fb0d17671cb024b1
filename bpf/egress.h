/*
 * egress.h - definitions shared by the BPF programs and userspace.
 *
 * Includes nothing (it is read by both the BPF and the host compiler);
 * sizes are fixed and checked on both sides.
 */
#ifndef EGRESS_BPF_EGRESS_H
#define EGRESS_BPF_EGRESS_H

/* Values the BPF side needs but vmlinux.h does not carry (macros). */
#define EGRESS_AF_INET 2
#define EGRESS_AF_INET6 10
#define EGRESS_AF_PACKET 17
#define EGRESS_SOCK_RAW 3

/* Return values of cgroup sock/sock_addr programs. */
#define EGRESS_VERDICT_DENY 0 /* the syscall fails with EPERM */
#define EGRESS_VERDICT_ALLOW 1

#endif /* EGRESS_BPF_EGRESS_H */
