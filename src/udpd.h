/*
 * udpd.h - the daemon's UDP side: the NFQUEUE consumer and the DNS proxy,
 * on `threads` threads, each with its own event_base, queue (queue_num +
 * i), DNS socket (SO_REUSEPORT on the same port), conntrack socket and
 * attribution handle.  With several, the rules pick the queue by the CPU
 * a packet is handled on (--queue-cpu-fanout: queue_num + cpu % n), a
 * classic BPF program picks the DNS socket the same way, and thread i is
 * pinned to a CPU c with c % n == i (if the process may run there): the
 * verdict re-injects a query on the thread's own CPU, so the same thread
 * receives it.  Nothing depends on that for correctness: a query may be
 * queued by one thread and proxied by another, the queue's records are one
 * table for all of them.
 *
 * Queue consumer (SPEC §3, reference 2.6, 4.3): every queued packet gets
 * exactly one verdict.
 *  - UDP to port 53 or 5353 whose payload is a DNS query: recorded (see
 *    below), given the DNS mark bit and repeated, so that nat REDIRECTs it
 *    to the DNS proxy.  DNS is never fast-pathed.  Anything else on those
 *    ports is dropped and logged (`udp`, error "not_dns"): letting it through
 *    would open a flow on which later DNS would never be redirected.
 *  - Other UDP: attributed, judged (`udp` event: IP/CIDR udp rules only),
 *    logged; allowed -> the udp mark bit and repeat (the rules save it as
 *    connmark: later packets skip the queue), blocked -> dropped.
 *  - Every other protocol (ICMP, SCTP, UDP-Lite...): dropped and logged as
 *    type `ip` with its protocol number (accepted in audit mode).
 * Other software's mark bits are kept; ours are OR-ed in.
 *
 * DNS proxy (reference 2.7 with SPEC §9.2-4, 9.7): a UDP socket on the DNS
 * port receives the redirected queries.  The resolver the client asked is
 * found exactly by a conntrack lookup of the reply tuple; only if that
 * fails, by the queue consumer's record keyed by (source address, source
 * port, DNS id) - bounded, expiring after a few seconds, and a key seen
 * with two different resolvers at once means unknown, never a guess.  A
 * query that was not redirected (sent to the DNS port directly) is refused.
 * Each query is judged before anything is sent; allowed ones go to the
 * original resolver from a fresh connected socket carrying the daemon's
 * mark, with a fresh random id; only a reply from that resolver, with that
 * id and the same question, is taken; the id is restored and the reply
 * returned unchanged from the address the client sent to.  Blocked ->
 * REFUSED built from the query.  No reply in time or an upstream error ->
 * SERVFAIL.
 */
#ifndef EGRESS_UDPD_H
#define EGRESS_UDPD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "attrib.h"
#include "cdefs.h"
#include "dnsjudge.h"

#define UDPD_DEFAULT_TIMEOUT_MS 5000
#define UDPD_DEFAULT_MAX_PENDING 4096

struct udpd_stats {
	atomic_ulong queued; /* packets seen by the queue consumer */
	atomic_ulong udp_allow, udp_deny;
	atomic_ulong not_dns; /* non-DNS payloads to port 53/5353, dropped */
	atomic_ulong ip_dropped; /* other protocols */
	atomic_ulong malformed; /* packets that are not IPv4 as claimed */
	atomic_ulong dns_marked; /* DNS queries sent on to the DNS proxy */
	atomic_ulong dns_queries; /* queries received by the DNS proxy */
	atomic_ulong dns_allow, dns_deny;
	atomic_ulong dns_direct; /* sent to the DNS port directly: refused */
	atomic_ulong dns_dropped; /* not a DNS query: no answer */
	atomic_ulong dns_answers; /* replies returned to clients */
	atomic_ulong dns_servfail; /* timeouts and upstream errors */
	atomic_ulong dns_ignored_replies; /* wrong id, question or source */
	atomic_ulong dns_unknown_dst; /* no conntrack entry and no record */
	atomic_ulong dns_via_record; /* resolver from the queue's record */
	atomic_ulong dns_pending;
	atomic_ulong attrib_misses;
	/* the attrib_t's own counters, every thread's added up */
	atomic_ulong attrib_cache_hits, attrib_diag_queries,
		attrib_diag_skipped, attrib_pid_watch_hits;
};

struct udpd_shared {
	struct dnsj_env dns; /* policy, cache, audit, log */
	struct attrib_opts attrib; /* as the proxy's */
	uint16_t dns_port;
	uint16_t queue_num; /* the first thread's; thread i has queue_num + i */
	unsigned threads; /* UDP threads (0 means 1) */
	uint32_t own_mark; /* SO_MARK of our upstream and reply sockets */
	uint32_t mark_dns, mark_udp; /* bits the consumer sets */
	unsigned timeout_ms; /* upstream DNS reply wait */
	unsigned max_pending; /* queries waiting for a resolver */
	struct udpd_stats stats;
};

struct udpd;

/*
 * Opens the queue and the DNS socket (errors on stderr, -1) and starts the
 * thread.  sh must outlive the udpd.
 */
int udpd_start(struct udpd_shared *sh, struct udpd **out) NONNULL(1, 2) WUNRES;
/* Stops the threads; queries still waiting get SERVFAIL; frees u. */
void udpd_stop(struct udpd *u);
/* How many threads run. */
unsigned udpd_threads(const struct udpd *u) NONNULL(1);

/* One thread's share (the totals are in udpd_shared.stats). */
struct udpd_thread_stats {
	uint16_t queue;
	int cpu; /* pinned to, -1: not pinned */
	unsigned long queued; /* packets its queue delivered */
	unsigned long queries; /* queries its DNS socket received */
};

/* Thread i's share, i < udpd_threads(u); any thread may ask. */
void udpd_thread_stats(const struct udpd *u, unsigned i,
		       struct udpd_thread_stats *st) NONNULL(1, 3);

#endif /* EGRESS_UDPD_H */
