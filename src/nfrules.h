/*
 * nfrules.h - the daemon's netfilter rules, in chains it owns.
 *
 * Everything lives in chains named EGRESS_* (in the nat and mangle tables),
 * installed atomically with one `iptables-restore --noflush` and reached by
 * exactly one jump from each built-in chain used (or only from our own
 * chains).  Installing
 * again (a restart after a crash) replaces the chains' contents in the same
 * atomic step and keeps one jump, so no unfiltered gap opens.  Removal
 * deletes exactly those jumps and chains and nothing else.  Runs the
 * iptables tools (iptables-nft by default) in the caller's network
 * namespace, synchronously: the caller must not reap children it did not
 * start (waitpid(-1), SIGCHLD ignored) while these run.
 *
 * TCP (SPEC §3): nat OUTPUT (host processes, host-network containers) and
 * nat PREROUTING -i <bridge> for every configured bridge pattern REDIRECT
 * to the proxy port; the first rule of each chain RETURNs packets carrying
 * the daemon's mark (its own upstream sockets use SO_MARK); loopback
 * destinations are left alone unless intercept_loopback, except TCP port
 * 53, which is always intercepted.
 *
 * UDP and other IPv4 protocols: mangle OUTPUT and mangle PREROUTING -i
 * <bridge> send the first packet of every UDP flow, and every packet of
 * any protocol other than TCP and UDP, to NFQUEUE queue_num (or balanced
 * over queues queue_num.., see queues), without --queue-bypass: with no consumer bound, those packets are dropped (fail
 * closed).  The consumer answers NF_REPEAT after setting mark_dns (a DNS
 * query: nat REDIRECTs it to dns_port) or mark_udp (an allowed flow: saved
 * to the connmark, so the flow's later packets skip the queue).  Replies
 * of flows started elsewhere, ICMP errors about flows already judged, ICMP
 * itself when allow_icmp, loopback (except UDP port 53, unless
 * intercept_loopback) and UDP of exempt_uid (a stub resolver's upstream
 * queries) are not queued; nor is IGMP (link-local).  filter OUTPUT and
 * FORWARD drop a packet carrying mark_dns whose flow nat did not redirect
 * (it would ride an older conntrack entry straight to the resolver).  Mark
 * bits are tested and set as masks, so bits other software keeps in the
 * same mark survive.
 */
#ifndef EGRESS_NFRULES_H
#define EGRESS_NFRULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"

/*
 * Default marks: one high bit each, clear of Docker's swarm marks (from
 * 256) and kube-proxy's 0x4000/0x8000.  MARK is the daemon's own sockets',
 * MARK_DNS and MARK_UDP the queue consumer's verdict bits; the three must
 * not share bits.
 */
#define NFRULES_DEFAULT_MARK 0x10000000u
#define NFRULES_DEFAULT_MARK_DNS 0x20000000u
#define NFRULES_DEFAULT_MARK_UDP 0x40000000u
/* The UDP REDIRECT target of DNS queries (the daemon's DNS proxy). */
#define NFRULES_DEFAULT_DNS_PORT 8053
#define NFRULES_DEFAULT_QUEUE 1

struct nfrules_cfg {
	uint16_t proxy_port; /* TCP REDIRECT target */
	uint32_t mark; /* the daemon's own sockets' mark */
	uint32_t mark_mask; /* which bits of the mark are ours */
	const char *const *bridges; /* interface patterns, e.g. "br-+" */
	size_t nbridges;
	uint16_t dns_port; /* UDP REDIRECT target of DNS-marked packets */
	uint16_t queue_num; /* NFQUEUE number (the first one) */
	/* How many queues from queue_num on (0 means 1): more than one is
	 * --queue-balance queue_num:queue_num+queues-1 --queue-cpu-fanout,
	 * the packet going to queue_num + (the CPU handling it) % queues,
	 * one consumer thread each. */
	uint16_t queues;
	uint32_t mark_dns; /* set by the consumer on DNS queries */
	uint32_t mark_udp; /* set by the consumer on allowed UDP flows */
	bool intercept_loopback;
	bool allow_icmp; /* ICMP leaves unqueued */
	int exempt_uid; /* -1: none; else its UDP and TCP port 53 leave */
	const char *iptables_restore; /* NULL: "iptables-restore" */
	const char *iptables_save; /* NULL: "iptables-save" */
};

/* The ruleset as iptables-restore input (caller frees); for tests/debug.
 * NULL if c is invalid (nfrules_install says why). */
char *nfrules_script(const struct nfrules_cfg *c) NONNULL(1) WUNRES;
/* Installs or replaces atomically.  0, or -1 with *err (caller frees). */
int nfrules_install(const struct nfrules_cfg *c, char **err)
	NONNULL(1, 2) WUNRES;
/* Removes exactly the jumps and chains; 0 if none were there. */
int nfrules_remove(const struct nfrules_cfg *c, char **err) NONNULL(1, 2);
/* Are our chains present (1), absent (0), or unknown (-1)?  Unknown also
 * covers a partial state: some chain or jump of some table missing. */
int nfrules_present(const struct nfrules_cfg *c) NONNULL(1);

#endif /* EGRESS_NFRULES_H */
