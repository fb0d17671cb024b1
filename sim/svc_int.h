/*
 * svc_int.h - what the files of the simulated services share: listeners,
 * connections and their close path (svc_net.c), the JSONL log
 * (svc_log.c), TLS certificate selection (svc_tls.c) and the per-protocol
 * handlers (svc_http.c, svc_dns.c, svc_echo.c).  Single-threaded: all of it
 * runs on the one event loop of svc_main().
 */
#ifndef EGRESS_SVC_INT_H
#define EGRESS_SVC_INT_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "cdefs.h"

/* "[v6addr]:port" */
#define SVC_ADDRSTRLEN (INET6_ADDRSTRLEN + 8)
#define SVC_IDLE_DEFAULT 30
/* Output queued for a peer that does not read before we stop reading. */
#define SVC_OUT_MAX (1024 * 1024)
/* How long a closing connection waits for the peer's EOF. */
#define SVC_LINGER_SECS 2
/* Largest UDP payload. */
#define SVC_DGRAM_MAX 65536

enum svc_kind {
	SVC_HTTP,
	SVC_HTTPS,
	SVC_DNS,
	SVC_UDP_ECHO,
	SVC_TCP_ECHO,
	SVC_TCP_BANNER,
	SVC_KIND_MAX
};

/* The config key and the log's "svc" value. */
const char *svc_kind_str(enum svc_kind k);

enum svc_conn_state {
	SVC_CONN_OPEN,
	SVC_CONN_DRAINING, /* send what is queued, then linger */
	SVC_CONN_LINGER, /* sent and shut down; discard input until EOF */
	SVC_CONN_DEAD, /* close as soon as the current callback returns */
	SVC_CONN_STATE_MAX
};

struct svc;
struct svc_conn;
struct svc_listener;
struct svc_tls;
struct svc_zone;

/*
 * Per-protocol behaviour of a TCP connection.  Handlers never free the
 * connection: they queue output and, to end it, call svc_conn_finish or
 * svc_conn_abort; svc_net.c closes it once the handler has returned.
 */
struct svc_conn_ops {
	void (*start)(struct svc_conn *c); /* after accept; may send */
	/* Input is waiting; also called when reading resumes after a pause. */
	void (*read)(struct svc_conn *c);
	void (*connected)(struct svc_conn *c); /* TLS handshake done */
	void (*fini)(struct svc_conn *c); /* frees c->proto; may be NULL */
};

/* One datagram for a UDP service; peer is its source. */
typedef void (*svc_dgram_fn)(struct svc_listener *l, const uint8_t *buf,
			     size_t n, const struct sockaddr *peer,
			     socklen_t peerlen, const char *peerstr);

struct svc_listener {
	struct svc *sv;
	enum svc_kind kind;
	bool udp;
	char local[SVC_ADDRSTRLEN];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int fd; /* UDP only; a TCP socket belongs to lev */
	struct evconnlistener *lev;
	struct event *ev; /* UDP readable */
	struct event *backoff; /* re-enables lev after EMFILE */
	const struct svc_conn_ops *ops;
	svc_dgram_fn dgram;
	/* settings: tls and banner owned here, zone by struct svc */
	struct svc_tls *tls;
	struct svc_zone *zone;
	uint32_t ttl;
	char *banner;
};

struct svc_conn {
	struct svc_listener *l;
	struct bufferevent *bev; /* owns the socket (BEV_OPT_CLOSE_ON_FREE) */
	enum svc_conn_state state;
	bool paused; /* reading stopped until the output drains */
	const char *reason; /* why it is closing: static string */
	char *reason_buf; /* or this, when the reason is built */
	char local[SVC_ADDRSTRLEN];
	char peer[SVC_ADDRSTRLEN];
	size_t in_seen; /* input bytes already counted in bytes_in */
	size_t bytes_in, bytes_out;
	void *proto; /* the protocol's state */
	TAILQ_ENTRY(svc_conn) entry;
};

TAILQ_HEAD(svc_conn_list, svc_conn);

struct svc {
	struct event_base *base;
	int log_fd;
	bool log_owned;
	struct timeval idle;
	struct svc_listener **ls;
	size_t nls;
	struct svc_zone **zones;
	size_t nzones;
	struct svc_conn_list conns;
	struct event *sigs[2];
	uint8_t dgram[SVC_DGRAM_MAX];
};

/* svc_net.c */

/* Binds l (TCP or UDP) and registers it with sv's loop; -1 after a message. */
int svc_listen(struct svc_listener *l) NONNULL(1) WUNRES;
/* Frees l and everything it owns; NULL is fine. */
void svc_listener_free(struct svc_listener *l);
/* Queues n bytes to the peer. */
void svc_conn_send(struct svc_conn *c, const void *p, size_t n) NONNULL(1);
/*
 * Sends what is queued, then closes.  The first reason given is kept.  The
 * close lingers: after the output, our side is shut down and input is
 * discarded until the peer's EOF (or SVC_LINGER_SECS), because closing a
 * socket with unread input sends a RST that can destroy the response.
 */
void svc_conn_finish(struct svc_conn *c, const char *reason) NONNULL(1, 2);
/* Closes without sending more. */
void svc_conn_abort(struct svc_conn *c, const char *reason) NONNULL(1, 2);
/* Closes every connection, logging reason (at shutdown). */
void svc_conn_close_all(struct svc *sv, const char *reason) NONNULL(1, 2);
/* "ip:port" or "[ip]:port"; "?" for an unknown family. */
void svc_addr_str(const struct sockaddr *sa, char *buf, size_t len)
	NONNULL(1, 2);

/* svc_log.c */

/*
 * Opens the log ("-" is stdout).  -1 after a message.  The log is written
 * synchronously, one write() per line: this is a test tool, and readers
 * must see each line complete as soon as the event happened.
 */
int svc_log_open(struct svc *sv, const char *path) NONNULL(1, 2) WUNRES;
void svc_log_close(struct svc *sv) NONNULL(1);
/* A new line with the common fields; NULL fields are left out. */
json_t *svc_log_new(const char *svc, const char *proto, const char *local,
		    const char *peer, const char *event) NONNULL(1, 5);
/* The common fields of a connection's line. */
json_t *svc_log_conn(const struct svc_conn *c, const char *event) NONNULL(1, 2);
/* Writes and releases line. */
void svc_log_write(struct svc *sv, json_t *line) NONNULL(1, 2);
/*
 * A JSON string for peer-supplied bytes: as is when they are valid UTF-8
 * without NUL, else with every byte outside printable ASCII as "\xNN".
 */
json_t *svc_json_bytes(const char *s, size_t n) NONNULL(1);

/* svc_tls.c */

/*
 * Loads the certificates of an https entry (array of {"cert","key"}; paths
 * relative to basedir).  NULL after a message naming what.
 */
struct svc_tls *svc_tls_new(json_t *certs, const char *basedir,
			    const char *what) NONNULL(2, 3) WUNRES;
void svc_tls_free(struct svc_tls *t);
/* A server SSL for a new connection; its SNI callback picks the cert. */
SSL *svc_tls_ssl_new(struct svc_tls *t) NONNULL(1) WUNRES;
/* Index of the certificate ssl ended up with. */
int svc_tls_cert_index(const struct svc_tls *t, const SSL *ssl) NONNULL(1, 2);

/* svc_dns.c */

/* Parses a zone object; NULL after a message naming what. */
struct svc_zone *svc_zone_new(json_t *zone, const char *what) NONNULL(2) WUNRES;
void svc_zone_free(struct svc_zone *z);
extern const struct svc_conn_ops svc_dns_tcp_ops;
void svc_dns_dgram(struct svc_listener *l, const uint8_t *buf, size_t n,
		   const struct sockaddr *peer, socklen_t peerlen,
		   const char *peerstr);

/* svc_http.c */
extern const struct svc_conn_ops svc_http_ops;

/* svc_echo.c */
extern const struct svc_conn_ops svc_echo_ops;
extern const struct svc_conn_ops svc_banner_ops;
void svc_udp_echo_dgram(struct svc_listener *l, const uint8_t *buf, size_t n,
			const struct sockaddr *peer, socklen_t peerlen,
			const char *peerstr);

#endif /* EGRESS_SVC_INT_H */
