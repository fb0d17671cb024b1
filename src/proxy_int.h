/*
 * proxy_int.h - internals of the transparent proxy, shared by proxy.c
 * (listener, workers, connections, relay, close path), proxy_tls.c (the
 * ClientHello stage, passthrough, MITM) and proxy_http.c (request judging),
 * and by the unit tests of the pure helpers.  Not part of the contract.
 *
 * Threads: everything below the helpers runs on the worker thread that owns
 * the connection; nothing is shared between workers except proxy_shared.
 */
#ifndef EGRESS_PROXY_INT_H
#define EGRESS_PROXY_INT_H

#include <llhttp.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cdefs.h"
#include "policy.h"
#include "proxy.h"
#include "tlsparse.h"

struct bufferevent;
struct evbuffer;
struct event;
struct event_base;

/* ---- limits ---------------------------------------------------------- */

/* Client bytes buffered before a decision: a whole ClientHello (tlsparse
 * caps it) plus its record headers. */
#define PROXY_CLASSIFY_MAX (TLSP_MAX_HELLO + 1024)
/* Longest first line looked at to tell HTTP from other bytes. */
#define PROXY_LINE_MAX 8192
/* Request head (request line + headers) held while it is judged. */
#define PROXY_HEAD_MAX (64 * 1024)
/* Captured request-target and Host header. */
#define PROXY_URL_MAX 8192
#define PROXY_HOST_MAX 300
/* Relay back-pressure: a half stops reading while its peer has more than
 * HIGH bytes queued for writing, and resumes below LOW. */
#define PROXY_RELAY_HIGH (256 * 1024)
#define PROXY_RELAY_LOW (64 * 1024)
/* Capacity asked for each splice(2) relay pipe (one per direction). */
#define PROXY_PIPE_SIZE (256 * 1024)
/* Bytes read from one socket per callback (bounds each input buffer). */
#define PROXY_READ_MAX (128 * 1024)
/* A request head, a ClientHello or a client handshake must complete
 * within this many seconds of its first byte (slowloris bound). */
#define PROXY_HEAD_TIMEOUT_S 30
/* TCP to this original port is DNS (SPEC §9.3). */
#define PROXY_DNS_PORT 53

/* ---- pure helpers (proxy_http.c), unit-tested ----------------------- */

enum proxy_cls {
	PROXY_CLS_NEED_MORE, /* too few bytes to tell yet */
	PROXY_CLS_TLS, /* a TLS handshake record starts */
	PROXY_CLS_HTTP, /* an HTTP/1.x request line */
	PROXY_CLS_OTHER, /* anything else: raw TCP */
	PROXY_CLS_MAX
};

/*
 * Classifies the first client bytes (reference 2.2): TLS if the first byte
 * is a handshake record; HTTP if at least 3 bytes, the first 3 letters, not
 * "SSH", and the first space comes before the first line break; otherwise
 * other.  Without a line break yet, NEED_MORE unless final (no more bytes
 * will be waited for) or PROXY_LINE_MAX bytes are there.
 */
enum proxy_cls proxy_classify(const uint8_t *buf, size_t len, bool final)
	NONNULL(1);
const char *proxy_cls_str(enum proxy_cls c);

/*
 * Is h[0..n) acceptable as an HTTP Host value (reg-name, IPv4 or [IPv6],
 * optional :port)?  Refuses empty values and anything that could move the
 * URL's host elsewhere ('/', '?', '#', '@', spaces, controls, '%').
 */
bool proxy_host_valid(const char *h, size_t n) NONNULL(1);

/*
 * The absolute URL that a request is judged with (reference 2.4): scheme
 * from the connection (https when MITM'd); host from an absolute-form
 * target, else the Host header (case kept), else dst_ip; the port as given
 * there, omitted when it is the scheme's default (dst_port is used only
 * with dst_ip); then the target's path and query.  An authority-form
 * target (CONNECT) gives scheme://host[:port].
 * Writes the URL to url (ucap bytes) and the bare hostname (no port, no
 * brackets) to host (hcap bytes).  Returns 0, or -1 for an invalid Host,
 * an invalid target, or a result that does not fit.
 */
int proxy_build_url(char *url, size_t ucap, char *host, size_t hcap, bool https,
		    const char *host_hdr, const char *dst_ip, uint16_t dst_port,
		    const char *target, bool connect) NONNULL(1, 3, 7, 9);

/* Does an HTTP response head start with status code code ("HTTP/1.x NNN")?
 * 1 yes, 0 no, -1 too few bytes to tell. */
int proxy_status_is(const uint8_t *buf, size_t len, int lo, int hi) NONNULL(1);

/* ---- connections ----------------------------------------------------- */

enum pc_state {
	PC_CLASSIFY, /* first client bytes (plain) */
	PC_TLS_HS, /* MITM: client handshake with the forged leaf */
	PC_TLS_CLASSIFY, /* MITM: first decrypted bytes */
	PC_HTTP, /* HTTP/1.x requests judged one by one */
	PC_UPGRADE_WAIT, /* Upgrade/CONNECT forwarded; waiting for the answer */
	PC_BLOCK_WAIT, /* a 403 waits for earlier requests' answers */
	PC_RELAY, /* raw bytes both ways (tcp, passthrough, upgraded) */
	PC_FINAL, /* a last reply (403/502/400) drains to the client */
	PC_DNS, /* DNS over TCP: each query judged (proxy_dns.c) */
	PC_STATE_MAX
};
const char *pc_state_str(enum pc_state s);

enum pc_up {
	PC_UP_NONE, /* no upstream socket (yet) */
	PC_UP_CONNECTING, /* TCP connect and, for TLS, the handshake */
	PC_UP_OPEN,
	PC_UP_MAX
};

/* One direction's end: the socket (plain or TLS) facing one peer. */
struct pc_half {
	struct bufferevent *bev; /* NULL: not open (yet) */
	struct pc_half *peer;
	struct pconn *pc;
	const char *name; /* "client" / "upstream", for messages */
	bool tls; /* bev is a bufferevent_openssl */
	bool rd_eof; /* EOF (or close_notify) read from this side */
	bool wr_shut; /* shutdown(SHUT_WR) done towards this side */
	bool throttled; /* reading stopped: the peer's output is full */
};

/* A request whose log line waits for its upstream's outcome (the first
 * allowed request opens the upstream; a verify failure goes on its line). */
struct pc_req {
	bool pending;
	char *url;
	char *method;
	struct policy_decision d;
	bool insecure;
};

struct pc_http; /* proxy_http.c */
struct pc_dns; /* proxy_dns.c */
struct pc_splice; /* proxy.c */
struct worker; /* proxy.c */

struct pconn {
	unsigned long cn_id;
	struct worker *cn_w;
	struct proxy_shared *cn_sh;
	struct pconn *cn_prev, *cn_next; /* the worker's list */
	enum pc_state cn_state;
	enum pc_up cn_up;
	struct pc_half cn_cl, cn_upst;

	struct sockaddr_in cn_src, cn_dst;
	char cn_dst_ip[INET_ADDRSTRLEN];
	uint16_t cn_dst_port, cn_src_port;
	struct attrib_proc *cn_proc; /* NULL: unattributed */

	/* TLS stage */
	bool cn_mitm; /* client side is our TLS (URLs are https) */
	bool cn_has_sni;
	char cn_sni[256];
	bool cn_alpn_http; /* the client offered http/1.1 or h2 */
	bool cn_insecure; /* upstream without verification */
	bool cn_insecure_mark; /* not yet consumed by a request */
	bool cn_tls_failed; /* client handshake failed: log it */
	bool cn_up_verify_failed; /* upstream certificate refused */

	/* timers (monotonic seconds) */
	struct event *cn_t_first; /* first_bytes_ms */
	struct event *cn_t_idle; /* idle timeout and head deadline */
	time_t cn_t_idle_at; /* when cn_t_idle fires; 0: not pending */
	time_t cn_last; /* last activity */
	time_t cn_deadline; /* 0, or when the head must be complete */

	struct pc_http *cn_http;
	struct pc_dns *cn_dns; /* DNS over TCP state, NULL otherwise */
	struct pc_req cn_req;
	/* Zero-copy relay (plain halves only): NULL while buffered. */
	struct pc_splice *cn_splice;

	bool cn_closed; /* pc_close ran; freed on the next turn */
	struct pconn *cn_dead_next; /* the worker's graveyard */
};

/* proxy.c */
void pc_set_state(struct pconn *pc, enum pc_state s) NONNULL(1);
/* The one close path: logs what is pending, frees everything; the caller
 * returns immediately. */
void pc_close(struct pconn *pc, const char *reason) NONNULL(1, 2);
/* Sends a final plain-text reply to the client, then closes. */
void pc_reply_close(struct pconn *pc, int status, const char *reason,
		    const char *body) NONNULL(1, 3, 4);
/* Opens the upstream (SO_MARK; TLS when the client side is MITM'd).
 * 0 or -1 (pc is NOT closed). */
int pc_upstream_open(struct pconn *pc) NONNULL(1) WUNRES;
/* Raw relay from now on; moves what the client already sent. */
void pc_start_relay(struct pconn *pc) NONNULL(1);
/*
 * Moves n bytes (at most all) of src to dst's output.  A TLS bufferevent of
 * libevent 2.1 writes only once epoll reports its socket writable (an
 * epoll_ctl to add the write event, a loop turn, the write, an epoll_ctl to
 * remove it: per request on a keep-alive connection), so while dst's output
 * is empty (no SSL_write waits for a retry) and its handshake is done, the
 * bytes go out at once with SSL_write.  What does not is queued as usual;
 * libevent's retry then starts with the same bytes, which OpenSSL accepts
 * (libevent sets SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
 */
void pc_out_move(struct pc_half *dst, struct evbuffer *src, size_t n)
	NONNULL(1, 2);
/* Moves h's input to its peer's output with back-pressure. */
void pc_relay_move(struct pc_half *h) NONNULL(1);
/* Judges the connection as raw tcp, logs, relays or closes. */
void pc_judge_tcp(struct pconn *pc) NONNULL(1);
/* Fills ev's destination and process fields from pc. */
void pc_decide_fill(struct pconn *pc, struct policy_event *ev) NONNULL(1, 2);
/* Starts (on) or clears the deadline of a head or handshake. */
void pc_set_deadline(struct pconn *pc, bool on) NONNULL(1);
void pc_decide(struct pconn *pc, struct policy_event *ev, bool mitm,
	       struct policy_decision *d) NONNULL(1, 2, 4);
/* Log lines, each written once. */
void pc_log_tcp(struct pconn *pc, const struct policy_decision *d)
	NONNULL(1, 2);
void pc_log_tls(struct pconn *pc, const struct policy_decision *d,
		bool passthrough, const char *error) NONNULL(1, 2);
void pc_log_request(struct pconn *pc, const struct pc_req *rq,
		    const char *error) NONNULL(1, 2);
void pc_count(struct pconn *pc, enum policy_ev_type t, bool allow) NONNULL(1);
time_t pc_now(void);
void pc_dbg(const struct pconn *pc, const char *fmt, ...) PRINTF(2, 3);
void pc_classify(struct pconn *pc, bool final) NONNULL(1);
void pc_half_setcb(struct pc_half *h) NONNULL(1);
struct event_base *pc_base(const struct pconn *pc) NONNULL(1);
/* The client's TLS handshake is done: wait for its first bytes. */
void pc_tls_classify_start(struct pconn *pc) NONNULL(1);

/* proxy_tls.c */
/* The ClientHello stage; called with the client's buffered bytes. */
void pc_tls_stage(struct pconn *pc, const struct tls_hello *hello)
	NONNULL(1, 2);
/* The upstream SSL for pc (SNI, verification); NULL on failure. */
SSL *pc_tls_upstream_ssl(struct pconn *pc) NONNULL(1) WUNRES;
/* Per-worker cache of upstream TLS sessions (resumption), keyed by
 * verification mode, SNI and destination; used by one thread only. */
struct pc_sesscache;
struct pc_sesscache *pc_sess_new(void) WUNRES;
void pc_sess_free(struct pc_sesscache *c);
struct pc_sesscache *pc_sesscache_of(const struct pconn *pc) NONNULL(1);
/* Hooks the upstream contexts' new-session callback (before workers). */
void pc_tls_prepare(struct proxy_shared *sh) NONNULL(1);
/* The client finished its handshake. */
void pc_tls_client_ready(struct pconn *pc) NONNULL(1);
/* Is the upstream failure a certificate verification failure?  Fills why. */
bool pc_tls_verify_failed(struct pconn *pc, char *why, size_t n) NONNULL(1, 2);

/* proxy_http.c */
int pc_http_start(struct pconn *pc) NONNULL(1) WUNRES;
void pc_http_free(struct pc_http *h);
/* Feeds the client's input through the parser, judging each request. */
void pc_http_feed(struct pconn *pc) NONNULL(1);
/* Upstream bytes in PC_HTTP or PC_BLOCK_WAIT: followed, relayed. */
void pc_http_upstream(struct pconn *pc) NONNULL(1);
/* Upstream bytes while an Upgrade/CONNECT answer is awaited. */
void pc_http_upgrade_answer(struct pconn *pc) NONNULL(1);
/* --strict-host (SPEC §9.15): may a request or SNI naming host go to the
 * original destination?  Yes if the DNS cache maps the destination IP to
 * host, or the IP itself is allowed (IP/CIDR rules). */
bool pc_strict_host_ok(struct pconn *pc, const char *host) NONNULL(1, 2);

/* proxy_dns.c */
/* The original destination port is 53: DNS over TCP from now on. */
void pc_dns_start(struct pconn *pc) NONNULL(1);
void pc_dns_free(struct pc_dns *d);
/* Client bytes: each complete query judged, answered or forwarded. */
void pc_dns_feed(struct pconn *pc) NONNULL(1);
/* Resolver bytes: answers matched to pending queries. */
void pc_dns_upstream(struct pconn *pc) NONNULL(1);
/* The resolver closed or failed: SERVFAIL for what is pending. */
void pc_dns_upstream_gone(struct pconn *pc) NONNULL(1);
/* The client's output drained below the low watermark. */
void pc_dns_client_drained(struct pconn *pc) NONNULL(1);

#endif /* EGRESS_PROXY_INT_H */
