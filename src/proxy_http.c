/*
 * proxy_http.c - HTTP/1.x on a plain or decrypted client stream: every
 * request (keep-alive, pipelining) is judged with its method and absolute
 * URL before a byte of it is forwarded (reference 2.4); a blocked request
 * gets 403 and never reaches the upstream, which is opened only once the
 * first request is allowed.  Upgrade and CONNECT are relayed raw once the
 * upstream agrees (101, or 2xx for CONNECT); otherwise judging goes on.
 *
 * The client's input is fed to llhttp chunk by chunk.  The parser pauses
 * at the end of each request head and at the end of each message, so every
 * execute call covers bytes of one phase only: head bytes are held (at most
 * PROXY_HEAD_MAX) until the verdict, body bytes go straight upstream with
 * back-pressure.  Responses are relayed untouched.
 *
 * Also the pure helpers (classification, URL building) the unit tests use.
 * Runs on the connection's worker thread.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <llhttp.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dnscache.h"
#include "proxy_int.h"
#include "util.h"

/* ---- pure helpers ----------------------------------------------------- */

static bool is_alpha(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

enum proxy_cls proxy_classify(const uint8_t *buf, size_t len, bool final)
{
	const uint8_t *nl;

	if (len == 0)
		return final ? PROXY_CLS_OTHER : PROXY_CLS_NEED_MORE;
	if (buf[0] == 0x16)
		return PROXY_CLS_TLS;
	for (size_t i = 0; i < len && i < 3; i++)
		if (!is_alpha(buf[i]))
			return PROXY_CLS_OTHER;
	if (len < 3)
		return final ? PROXY_CLS_OTHER : PROXY_CLS_NEED_MORE;
	if (memcmp(buf, "SSH", 3) == 0)
		return PROXY_CLS_OTHER;
	nl = memchr(buf, '\n', len < PROXY_LINE_MAX ? len : PROXY_LINE_MAX);
	if (!nl)
		return final || len >= PROXY_LINE_MAX ? PROXY_CLS_OTHER :
							PROXY_CLS_NEED_MORE;
	return memchr(buf, ' ', (size_t)(nl - buf)) ? PROXY_CLS_HTTP :
						      PROXY_CLS_OTHER;
}

const char *proxy_cls_str(enum proxy_cls c)
{
	static const char *const names[PROXY_CLS_MAX] = {
		[PROXY_CLS_NEED_MORE] = "need-more",
		[PROXY_CLS_TLS] = "tls",
		[PROXY_CLS_HTTP] = "http",
		[PROXY_CLS_OTHER] = "other",
	};

	return (unsigned)c < PROXY_CLS_MAX ? names[c] : "?";
}

struct hostport {
	const char *host; /* as written, brackets included */
	size_t hlen;
	long port; /* -1: none */
};

/* Splits and checks "name", "name:port", "[v6]" or "[v6]:port". */
static int split_hostport(const char *h, size_t n, struct hostport *hp)
{
	const char *colon = NULL;

	hp->host = h;
	hp->port = -1;
	if (n == 0 || n > PROXY_HOST_MAX)
		return -1;
	if (h[0] == '[') {
		const char *end = memchr(h, ']', n);

		if (!end || end == h + 1)
			return -1;
		for (const char *c = h + 1; c < end; c++)
			if (!strchr("0123456789abcdefABCDEF:.", *c))
				return -1;
		hp->hlen = (size_t)(end - h) + 1;
		if (hp->hlen < n) {
			if (h[hp->hlen] != ':')
				return -1;
			colon = h + hp->hlen;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			char c = h[i];

			if (c == ':') {
				colon = h + i;
				break;
			}
			if (!is_alpha((uint8_t)c) && !is_digit(c) && c != '-' &&
			    c != '.' && c != '_')
				return -1;
		}
		hp->hlen = colon ? (size_t)(colon - h) : n;
		if (hp->hlen == 0)
			return -1;
	}
	if (colon) {
		const char *p = colon + 1, *end = h + n;
		long v = 0;

		if (end - p > 5)
			return -1;
		for (const char *c = p; c < end; c++) {
			if (!is_digit(*c))
				return -1;
			v = v * 10 + (*c - '0');
		}
		if (v > 65535)
			return -1;
		hp->port = p < end ? v : -1; /* "name:" has no port */
	}
	return 0;
}

bool proxy_host_valid(const char *h, size_t n)
{
	struct hostport hp;

	return split_hostport(h, n, &hp) == 0;
}

int proxy_build_url(char *url, size_t ucap, char *host, size_t hcap, bool https,
		    const char *host_hdr, const char *dst_ip, uint16_t dst_port,
		    const char *target, bool connect)
{
	const char *scheme = https ? "https" : "http";
	long defport = https ? 443 : 80;
	const char *auth = NULL, *path = "";
	size_t alen = 0;
	struct hostport hp;
	char portstr[8] = "";
	const char *bare;
	size_t blen;
	int n;

	if (connect) {
		auth = target;
		alen = strlen(target);
	} else if (target[0] == '/') {
		path = target;
		if (host_hdr) {
			auth = host_hdr;
			alen = strlen(host_hdr);
		}
	} else if (!strncasecmp(target, "http://", 7) ||
		   !strncasecmp(target, "https://", 8)) {
		/* Absolute form: its authority wins over Host (RFC 9112
		 * 3.2.2); the scheme stays the connection's. */
		auth = strstr(target, "://") + 3;
		alen = strcspn(auth, "/?#");
		path = auth + alen;
		if (*path == '#')
			path = "";
	} else if (!strcmp(target, "*")) {
		if (host_hdr) {
			auth = host_hdr;
			alen = strlen(host_hdr);
		}
	} else {
		return -1;
	}
	if (auth && alen) {
		if (split_hostport(auth, alen, &hp) < 0)
			return -1;
		if (hp.port >= 0 && hp.port != defport)
			snprintf(portstr, sizeof(portstr), ":%u",
				 (unsigned)(uint16_t)hp.port);
	} else {
		hp.host = dst_ip;
		hp.hlen = strlen(dst_ip);
		if (dst_port != defport)
			snprintf(portstr, sizeof(portstr), ":%u", dst_port);
	}
	n = snprintf(url, ucap, "%s://%.*s%s%s%s", scheme, (int)hp.hlen,
		     hp.host, portstr, *path && *path != '/' ? "/" : "", path);
	if (n < 0 || (size_t)n >= ucap)
		return -1;
	bare = hp.host;
	blen = hp.hlen;
	if (blen >= 2 && bare[0] == '[') {
		bare++;
		blen -= 2;
	}
	if (blen >= hcap)
		return -1;
	memcpy(host, bare, blen);
	host[blen] = '\0';
	return 0;
}

int proxy_status_is(const uint8_t *buf, size_t len, int lo, int hi)
{
	static const char pfx[] = "HTTP/1.";
	int code;

	for (size_t i = 0; i < len && i < 7; i++)
		if (buf[i] != (uint8_t)pfx[i])
			return 0;
	if (len < 12)
		return -1;
	if (buf[8] != ' ' || !is_digit((char)buf[9]) ||
	    !is_digit((char)buf[10]) || !is_digit((char)buf[11]))
		return 0;
	code = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	return code >= lo && code <= hi;
}

/* ---- per-connection HTTP state ---------------------------------------- */

enum ph_pause { PH_NONE, PH_HEAD_DONE, PH_MSG_DONE };

struct pc_http {
	llhttp_t ph_parser;
	struct pconn *ph_pc;
	struct evbuffer *ph_held; /* the current head, not yet judged */
	bool ph_body; /* judged and allowed: bytes go upstream */
	enum ph_pause ph_pause;
	unsigned ph_nreq; /* requests judged on this connection */
	bool ph_connect; /* the upgrade awaited is a CONNECT */

	/* Responses, followed only to know when the requests forwarded so
	 * far are all answered: a block on a pipelined connection answers
	 * 403 after them, never in the middle of one. */
	llhttp_t ph_resp;
	uint64_t ph_head_bits; /* ring of in-flight requests: HEAD or not */
	unsigned ph_ring_first, ph_inflight;
	bool ph_resp_lost; /* unparsable answers: no longer followed */

	char *ph_target; /* grown on demand up to PROXY_URL_MAX */
	size_t ph_target_len, ph_target_cap;
	char ph_host[PROXY_HOST_MAX + 1];
	size_t ph_host_len;
	unsigned ph_nhost;
	char ph_field[8];
	size_t ph_field_len;
	bool ph_in_host;
	bool ph_too_long; /* target, Host or a header name overflowed */
};

static int on_message_begin(llhttp_t *p)
{
	struct pc_http *h = p->data;

	h->ph_target_len = h->ph_host_len = h->ph_field_len = 0;
	h->ph_nhost = 0;
	h->ph_in_host = h->ph_too_long = false;
	return 0;
}

static bool append(char *buf, size_t cap, size_t *len, const char *at, size_t n)
{
	if (*len + n >= cap)
		return false;
	memcpy(buf + *len, at, n);
	*len += n;
	buf[*len] = '\0';
	return true;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
	struct pc_http *h = p->data;

	if (h->ph_target_len + n >= h->ph_target_cap &&
	    h->ph_target_len + n < PROXY_URL_MAX) {
		size_t cap = h->ph_target_cap ? h->ph_target_cap : 256;

		while (cap <= h->ph_target_len + n)
			cap *= 2;
		if (cap > PROXY_URL_MAX)
			cap = PROXY_URL_MAX;
		h->ph_target = util_xrealloc(h->ph_target, cap);
		h->ph_target_cap = cap;
	}
	if (!h->ph_target ||
	    !append(h->ph_target, h->ph_target_cap, &h->ph_target_len, at, n))
		h->ph_too_long = true;
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct pc_http *h = p->data;

	/* Only "host" matters; longer names just stop matching. */
	if (h->ph_field_len + n < sizeof(h->ph_field)) {
		memcpy(h->ph_field + h->ph_field_len, at, n);
		h->ph_field_len += n;
	} else {
		h->ph_field_len = sizeof(h->ph_field);
	}
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct pc_http *h = p->data;

	h->ph_in_host = h->ph_field_len == 4 &&
			!strncasecmp(h->ph_field, "host", 4);
	h->ph_field_len = 0;
	if (h->ph_in_host && ++h->ph_nhost > 1)
		h->ph_in_host = false; /* refused at the head's end */
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct pc_http *h = p->data;

	if (h->ph_in_host &&
	    !append(h->ph_host, sizeof(h->ph_host), &h->ph_host_len, at, n))
		h->ph_too_long = true;
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	((struct pc_http *)p->data)->ph_in_host = false;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	((struct pc_http *)p->data)->ph_pause = PH_HEAD_DONE;
	return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *p)
{
	((struct pc_http *)p->data)->ph_pause = PH_MSG_DONE;
	return HPE_PAUSED;
}

/* The answer to the oldest request in flight: HEAD's has no body. */
static int on_resp_headers_complete(llhttp_t *p)
{
	struct pc_http *h = p->data;
	bool head = h->ph_inflight && (h->ph_head_bits >> h->ph_ring_first) & 1;

	return p->status_code >= 200 && head ? 1 : 0;
}

static int on_resp_message_complete(llhttp_t *p)
{
	struct pc_http *h = p->data;

	if (p->status_code >= 100 && p->status_code < 200 &&
	    p->status_code != 101)
		return 0; /* interim (100 Continue): the final one follows */
	if (h->ph_inflight) {
		h->ph_ring_first = (h->ph_ring_first + 1) % 64;
		h->ph_inflight--;
	}
	return 0;
}

static llhttp_settings_t ph_resp_settings;

static llhttp_settings_t ph_settings;
static pthread_once_t ph_settings_once = PTHREAD_ONCE_INIT;

static void ph_settings_init(void)
{
	llhttp_settings_init(&ph_settings);
	ph_settings.on_message_begin = on_message_begin;
	ph_settings.on_url = on_url;
	ph_settings.on_header_field = on_header_field;
	ph_settings.on_header_field_complete = on_header_field_complete;
	ph_settings.on_header_value = on_header_value;
	ph_settings.on_header_value_complete = on_header_value_complete;
	ph_settings.on_headers_complete = on_headers_complete;
	ph_settings.on_message_complete = on_message_complete;
	llhttp_settings_init(&ph_resp_settings);
	ph_resp_settings.on_headers_complete = on_resp_headers_complete;
	ph_resp_settings.on_message_complete = on_resp_message_complete;
}

static void ph_parser_init(struct pc_http *h)
{
	pthread_once(&ph_settings_once, ph_settings_init);
	llhttp_init(&h->ph_parser, HTTP_REQUEST, &ph_settings);
	h->ph_parser.data = h;
	llhttp_init(&h->ph_resp, HTTP_RESPONSE, &ph_resp_settings);
	h->ph_resp.data = h;
	h->ph_inflight = h->ph_ring_first = 0;
	h->ph_head_bits = 0;
	h->ph_resp_lost = false;
	h->ph_body = false;
	h->ph_pause = PH_NONE;
}

int pc_http_start(struct pconn *pc)
{
	struct pc_http *h = util_xcalloc(1, sizeof(*h));

	h->ph_pc = pc;
	h->ph_held = evbuffer_new();
	if (!h->ph_held) {
		free(h);
		return -1;
	}
	ph_parser_init(h);
	pc->cn_http = h;
	pc_set_state(pc, PC_HTTP);
	return 0;
}

void pc_http_free(struct pc_http *h)
{
	if (!h)
		return;
	evbuffer_free(h->ph_held);
	free(h->ph_target);
	free(h);
}

/* ---- judging ---------------------------------------------------------- */

bool pc_strict_host_ok(struct pconn *pc, const char *host)
{
	struct policy_event ev = { .type = POLICY_EV_TCP };
	struct policy_decision d;
	char *name;
	size_t n = strlen(host);
	bool ok;

	if (n && host[n - 1] == '.')
		n--;
	if (n == strlen(pc->cn_dst_ip) && !strncmp(host, pc->cn_dst_ip, n))
		return true;
	name = pc->cn_sh->cache ?
		       dnscache_lookup(pc->cn_sh->cache, pc->cn_dst_ip,
				       util_mono_now()) :
		       NULL;
	ok = name && strlen(name) == n && !strncasecmp(name, host, n);
	free(name);
	if (ok)
		return true;
	/* The address itself allowed?  IP and CIDR rules only. */
	{
		struct polhold *ph = polref_get(pc->cn_sh->policy);

		pc_decide_fill(pc, &ev);
		policy_decide(polhold_policy(ph), NULL, false, false, 0, &ev,
			      &d);
		polref_put(ph);
	}
	return d.rule >= 0;
}

/* A head that cannot be judged: 400, or for the very first request of a
 * plain connection, a fallback to raw tcp judging (a protocol that merely
 * looked like HTTP, e.g. SMTP's "HELO x"). */
static void ph_bad(struct pconn *pc, const char *why)
{
	struct pc_http *h = pc->cn_http;
	struct evbuffer *in = bufferevent_get_input(pc->cn_cl.bev);

	pc_dbg(pc, "bad request: %s", why);
	if (h->ph_nreq == 0 && !h->ph_body) {
		evbuffer_prepend_buffer(in, h->ph_held);
		pc_http_free(h);
		pc->cn_http = NULL;
		pc_judge_tcp(pc);
		return;
	}
	pc_reply_close(pc, 400, "Bad Request", "Bad request\n");
}

/* The head is complete: judge it, then forward it or answer 403. */
static void ph_judge(struct pconn *pc)
{
	struct pc_http *h = pc->cn_http;
	llhttp_t *p = &h->ph_parser;
	struct policy_event ev = { .type = POLICY_EV_HTTP };
	struct pc_req rq = { 0 };
	char url[PROXY_URL_MAX + PROXY_HOST_MAX + 16], host[PROXY_HOST_MAX + 1];
	bool connect = llhttp_get_method(p) == HTTP_CONNECT;
	const char *method =
		llhttp_method_name((llhttp_method_t)llhttp_get_method(p));

	if (h->ph_too_long || h->ph_nhost > 1 || h->ph_target_len == 0) {
		pc_reply_close(pc, 400, "Bad Request", "Bad request\n");
		return;
	}
	if (proxy_build_url(url, sizeof(url), host, sizeof(host), pc->cn_mitm,
			    h->ph_nhost ? h->ph_host : NULL, pc->cn_dst_ip,
			    pc->cn_dst_port, h->ph_target, connect) < 0) {
		pc_reply_close(pc, 400, "Bad Request", "Bad request\n");
		return;
	}
	ev.url = url;
	ev.method = method;
	pc_decide(pc, &ev, pc->cn_mitm, &rq.d);
	if (rq.d.rule >= 0 && pc->cn_sh->strict_host &&
	    !pc_strict_host_ok(pc, host)) {
		pc_dbg(pc, "strict host: %s is not %s", host, pc->cn_dst_ip);
		rq.d.rule = -1;
		rq.d.allow = pc->cn_sh->audit;
	}
	rq.insecure = pc->cn_insecure_mark;
	pc->cn_insecure_mark = false; /* the first request consumes it */
	rq.url = url;
	rq.method = (char *)(uintptr_t)method;
	h->ph_nreq++;
	pc_count(pc, pc->cn_mitm ? POLICY_EV_HTTPS : POLICY_EV_HTTP,
		 rq.d.allow);
	pc_dbg(pc, "%s %s: %s", method, url, rq.d.allow ? "allow" : "block");
	if (!rq.d.allow) {
		pc_log_request(pc, &rq, NULL);
		if (h->ph_inflight && !h->ph_resp_lost && pc->cn_upst.bev) {
			/* Answers to earlier requests are still coming. */
			pc_dbg(pc, "403 after %u answers in flight",
			       h->ph_inflight);
			evbuffer_drain(h->ph_held,
				       evbuffer_get_length(h->ph_held));
			bufferevent_disable(pc->cn_cl.bev, EV_READ);
			pc_set_state(pc, PC_BLOCK_WAIT);
			return;
		}
		pc_reply_close(pc, 403, "Forbidden",
			       "Blocked by egress policy");
		return;
	}
	if (h->ph_inflight >= 64) {
		h->ph_resp_lost = true; /* too deep a pipeline to follow */
	} else if (!h->ph_resp_lost) {
		unsigned slot = (h->ph_ring_first + h->ph_inflight) % 64;
		uint64_t bit = UINT64_C(1) << slot;

		h->ph_head_bits &= ~bit;
		if (llhttp_get_method(p) == HTTP_HEAD)
			h->ph_head_bits |= bit;
		h->ph_inflight++;
	}
	if (pc->cn_up == PC_UP_NONE) {
		/* The first allowed request opens the upstream; its line
		 * waits for the outcome (a verify failure goes on it). */
		if (pc_upstream_open(pc) < 0) {
			pc_log_request(pc, &rq, "upstream_connect_failed");
			pc_reply_close(pc, 502, "Bad Gateway",
				       "egressd: cannot open the upstream\n");
			return;
		}
		pc->cn_req = rq;
		pc->cn_req.pending = true;
		pc->cn_req.url = util_xstrdup(url);
		pc->cn_req.method = util_xstrdup(method);
	} else {
		pc_log_request(pc, &rq, NULL);
	}
	pc_out_move(&pc->cn_upst, h->ph_held, SIZE_MAX);
	h->ph_body = true;
	h->ph_connect = connect;
	pc->cn_deadline = 0;
}

/* Moves n consumed bytes to where their phase sends them. */
static int ph_account(struct pconn *pc, struct evbuffer *in, size_t n)
{
	struct pc_http *h = pc->cn_http;

	if (!n)
		return 0;
	if (h->ph_body) {
		pc_out_move(&pc->cn_upst, in, n);
		return 0;
	}
	evbuffer_remove_buffer(in, h->ph_held, n);
	if (evbuffer_get_length(h->ph_held) > PROXY_HEAD_MAX) {
		pc_reply_close(pc, 431, "Request Header Fields Too Large",
			       "Request header too large\n");
		return -1;
	}
	return 0;
}

/* Waits for the upstream's answer to an Upgrade or CONNECT. */
static void ph_upgrade(struct pconn *pc)
{
	pc_set_state(pc, PC_UPGRADE_WAIT);
	bufferevent_disable(pc->cn_cl.bev, EV_READ);
	if (pc->cn_upst.bev &&
	    evbuffer_get_length(bufferevent_get_input(pc->cn_upst.bev)))
		pc_http_upgrade_answer(pc);
}

/* Is the upstream's output over the high watermark?  Then wait. */
static bool ph_throttle(struct pconn *pc)
{
	struct pc_half *cl = &pc->cn_cl;
	struct evbuffer *out;

	if (!pc->cn_upst.bev)
		return false;
	out = bufferevent_get_output(pc->cn_upst.bev);
	if (evbuffer_get_length(out) < PROXY_RELAY_HIGH)
		return false;
	if (!cl->throttled) {
		cl->throttled = true;
		bufferevent_disable(cl->bev, EV_READ);
		bufferevent_setwatermark(pc->cn_upst.bev, EV_WRITE,
					 PROXY_RELAY_LOW, 0);
	}
	return true;
}

static void ph_eof(struct pconn *pc)
{
	struct pc_half *up = &pc->cn_upst;

	if (!up->bev) {
		pc_close(pc, "client done");
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(up->bev)) == 0) {
		if (pc->cn_cl.tls || up->tls) {
			pc_close(pc, "client done");
			return;
		}
		/* Plain: half-close towards the upstream, answers still
		 * flow back. */
		shutdown(bufferevent_getfd(up->bev), SHUT_WR);
		up->wr_shut = true;
		if (up->rd_eof)
			pc_close(pc, "both directions closed");
		return;
	}
	bufferevent_setwatermark(up->bev, EV_WRITE, 0, 0);
}

void pc_http_feed(struct pconn *pc)
{
	static char none[1];
	struct evbuffer *in;
	/* After a pause, llhttp may owe a callback that needs no byte (the
	 * end of a bodiless message): run it with an empty chunk. */
	bool kick = false;

	while (!pc->cn_closed && pc->cn_state == PC_HTTP) {
		struct pc_http *h = pc->cn_http;
		struct evbuffer_iovec v = { .iov_base = none, .iov_len = 0 };
		llhttp_errno_t err;
		size_t n;

		in = bufferevent_get_input(pc->cn_cl.bev);
		if (evbuffer_get_length(in) == 0 && !kick)
			break;
		kick = false;
		if (evbuffer_get_length(in)) {
			if (h->ph_body && ph_throttle(pc))
				return;
			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				break;
			if (!h->ph_body && evbuffer_get_length(h->ph_held) == 0)
				pc_set_deadline(pc, true);
		}
		h->ph_pause = PH_NONE;
		err = llhttp_execute(&h->ph_parser, v.iov_base, v.iov_len);
		if (err == HPE_OK) {
			n = v.iov_len;
		} else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
			n = (size_t)(llhttp_get_error_pos(&h->ph_parser) -
				     (const char *)v.iov_base);
		} else {
			ph_bad(pc, llhttp_errno_name(err));
			return;
		}
		if (ph_account(pc, in, n) < 0)
			return;
		if (err == HPE_PAUSED_UPGRADE) {
			ph_upgrade(pc);
			return;
		}
		if (err != HPE_PAUSED)
			continue;
		if (h->ph_pause == PH_HEAD_DONE) {
			ph_judge(pc);
			if (pc->cn_closed || pc->cn_state != PC_HTTP)
				return;
		} else if (h->ph_pause == PH_MSG_DONE) {
			h->ph_body = false;
			if (llhttp_get_upgrade(&h->ph_parser)) {
				ph_upgrade(pc);
				return;
			}
		}
		llhttp_resume(&h->ph_parser);
		kick = true;
	}
	if (!pc->cn_closed && pc->cn_state == PC_HTTP && pc->cn_cl.rd_eof &&
	    evbuffer_get_length(bufferevent_get_input(pc->cn_cl.bev)) == 0)
		ph_eof(pc);
}

void pc_http_upstream(struct pconn *pc)
{
	struct pc_http *h = pc->cn_http;
	struct evbuffer *in = bufferevent_get_input(pc->cn_upst.bev);

	if (!h->ph_resp_lost) {
		struct evbuffer_iovec v[8];
		int nv = evbuffer_peek(in, -1, NULL, v, 8), i;

		if (nv > 8) {
			/* More chunks than one peek shows: stop following
			 * rather than copy. */
			h->ph_resp_lost = true;
			nv = 0;
		}
		for (i = 0; i < nv; i++) {
			llhttp_errno_t e = llhttp_execute(
				&h->ph_resp, v[i].iov_base, v[i].iov_len);

			if (e != HPE_OK) {
				/* An upgrade (raw from here) or bytes that
				 * are not HTTP: no longer followed. */
				pc_dbg(pc, "answers no longer followed: %s",
				       llhttp_errno_name(e));
				h->ph_resp_lost = true;
				break;
			}
		}
	}
	pc_relay_move(&pc->cn_upst);
	if (pc->cn_state == PC_BLOCK_WAIT &&
	    (h->ph_inflight == 0 || h->ph_resp_lost))
		pc_reply_close(pc, 403, "Forbidden",
			       "Blocked by egress policy");
}

void pc_http_upgrade_answer(struct pconn *pc)
{
	struct pc_http *h = pc->cn_http;
	struct evbuffer *in = bufferevent_get_input(pc->cn_upst.bev);
	size_t len = evbuffer_get_length(in);
	const uint8_t *data =
		evbuffer_pullup(in, len < 12 ? (ev_ssize_t)len : 12);
	int r;

	if (!data)
		return;
	r = h->ph_connect ? proxy_status_is(data, len, 200, 299) :
			    proxy_status_is(data, len, 101, 101);
	if (r < 0)
		return; /* not enough of the status line yet */
	if (r > 0) {
		pc_dbg(pc, "upgraded: raw relay from here");
		pc_start_relay(pc);
		return;
	}
	/* Refused: the connection stays HTTP, and so does the judging. */
	ph_parser_init(h);
	pc_set_state(pc, PC_HTTP);
	pc_relay_move(&pc->cn_upst);
	if (!pc->cn_cl.rd_eof)
		bufferevent_enable(pc->cn_cl.bev, EV_READ);
	pc_http_feed(pc);
}
