/*
 * proxy.h - the transparent TCP proxy: TLS interception and HTTP judging.
 *
 * Connections REDIRECTed by the daemon's netfilter rules arrive on one
 * listening socket; accepts are spread over worker threads, each with its
 * own libevent event_base (and its own attrib_t).  Per connection: recover
 * the original destination (SO_ORIGINAL_DST), refuse one aimed at the proxy
 * itself, attribute it, read the first bytes (a ClientHello, an HTTP request
 * line, other bytes, or nothing within first_bytes_ms for server-first
 * protocols), decide with the policy engine BEFORE any upstream connection,
 * then: abort the handshake / 403 / close on block; splice for passthrough;
 * MITM with a forged leaf (certforge) and a verified upstream (up_verify, or
 * up_insecure for insecure rules) otherwise; HTTP/1.x requests judged one by
 * one (llhttp); non-HTTP streams judged once as tcp.  Every connection ends
 * through one close path that logs once.  The log is JSONL via jlog.
 */
#ifndef EGRESS_PROXY_H
#define EGRESS_PROXY_H

#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "attrib.h"
#include "cdefs.h"
#include "certforge.h"
#include "dnscache.h"
#include "jlog.h"
#include "polref.h"

/* Counters, updated with relaxed atomics from every worker. */
struct proxy_stats {
	atomic_ulong accepted;
	atomic_ulong active;
	atomic_ulong refused_self; /* aimed at the proxy's own port */
	atomic_ulong allow[5]; /* by enum policy_ev_type */
	atomic_ulong deny[5];
	atomic_ulong tls_client_errors;
	atomic_ulong upstream_errors;
	atomic_ulong attrib_misses;
};

/* What the daemon shares with every worker (read-only after start,
 * except the policy, swapped through polref, and the counters). */
struct proxy_shared {
	polref_t *policy;
	struct dnscache *cache;
	bool audit;
	bool strict_host;
	certforge_t *cf;
	SSL_CTX *up_verify; /* client ctx verifying the upstream */
	SSL_CTX *up_insecure; /* client ctx without verification */
	jlog_t *log;
	uint32_t mark; /* SO_MARK on upstream sockets */
	uint16_t listen_port; /* the proxy's own port */
	struct attrib_opts attrib; /* NULL pin_dir and fds < 0: no attribution */
	unsigned first_bytes_ms; /* wait for client bytes before judging tcp */
	unsigned idle_timeout_s;
	struct proxy_stats stats;
};

struct proxy;

/*
 * Starts nworkers threads serving listen_fd (a bound, listening, non-blocking
 * TCP socket; ownership passes to the proxy).  sh must outlive the proxy.
 * Returns 0, or -1 with a message on stderr.
 */
int proxy_start(struct proxy_shared *sh, int listen_fd, unsigned nworkers,
		struct proxy **out) NONNULL(1, 4) WUNRES;
/* Stops accepting, closes every connection (logging each once), joins the
 * workers, frees the proxy. */
void proxy_stop(struct proxy *p);

#endif /* EGRESS_PROXY_H */
