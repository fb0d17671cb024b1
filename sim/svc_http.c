/*
 * svc_http.c - the HTTP/1.1 server of the http and https services (the
 * TLS layer below is the bufferevent's business).
 *
 * llhttp parses straight from the input buffer; only the request-target
 * and the Host and Expect values are copied, and those copies are capped
 * together with the rest of the header bytes.  Every complete request is
 * answered from on_message_complete, so pipelined requests are answered in
 * order.
 */
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "svc_int.h"
#include "util.h"

/* Request line plus header fields and values of one request. */
#define HTTP_HDR_MAX (32 * 1024)

enum hdr { HDR_OTHER, HDR_HOST, HDR_EXPECT };

struct http {
	llhttp_t p;
	struct svc_conn *c;
	struct strbuf url, host, field, value;
	enum hdr cur; /* the header whose value is being read */
	bool has_host;
	size_t hdr_bytes;
	bool too_big;
};

static const char resp_400[] = "HTTP/1.1 400 Bad Request\r\n"
			       "Content-Type: text/plain\r\n"
			       "Content-Length: 12\r\n"
			       "Connection: close\r\n\r\n"
			       "bad request\n";
static const char resp_431[] =
	"HTTP/1.1 431 Request Header Fields Too Large\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: 18\r\n"
	"Connection: close\r\n\r\n"
	"headers too large\n";
static const char resp_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* Counts header bytes against the cap; -1 (an llhttp error) beyond it. */
static int add_capped(struct http *h, struct strbuf *sb, const char *at,
		      size_t len)
{
	h->hdr_bytes += len;
	if (h->hdr_bytes > HTTP_HDR_MAX) {
		h->too_big = true;
		return -1;
	}
	if (sb)
		strbuf_add(sb, at, len);
	return 0;
}

static int on_message_begin(llhttp_t *p)
{
	struct http *h = p->data;

	strbuf_reset(&h->url);
	strbuf_reset(&h->host);
	strbuf_reset(&h->field);
	strbuf_reset(&h->value);
	h->cur = HDR_OTHER;
	h->has_host = false;
	h->hdr_bytes = 0;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http *h = p->data;

	return add_capped(h, &h->url, at, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http *h = p->data;

	return add_capped(h, &h->field, at, len);
}

static int on_header_field_complete(llhttp_t *p)
{
	struct http *h = p->data;
	const char *f = strbuf_str(&h->field);

	if (strcasecmp(f, "host") == 0)
		h->cur = HDR_HOST;
	else if (strcasecmp(f, "expect") == 0)
		h->cur = HDR_EXPECT;
	else
		h->cur = HDR_OTHER;
	strbuf_reset(&h->field);
	strbuf_reset(&h->value);
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http *h = p->data;

	return add_capped(h, h->cur == HDR_OTHER ? NULL : &h->value, at, len);
}

static int on_header_value_complete(llhttp_t *p)
{
	struct http *h = p->data;

	/* The first Host header counts, as llhttp does not merge them. */
	if (h->cur == HDR_HOST && !h->has_host) {
		h->has_host = true;
		strbuf_add(&h->host, h->value.buf ? h->value.buf : "",
			   h->value.len);
	}
	return 0;
}

/* A client that sent "Expect: 100-continue" waits for this first. */
static int on_headers_complete(llhttp_t *p)
{
	struct http *h = p->data;

	if (h->cur == HDR_EXPECT &&
	    strcasecmp(strbuf_str(&h->value), "100-continue") == 0)
		svc_conn_send(h->c, resp_100, sizeof(resp_100) - 1);
	return 0;
}

static void log_request(struct http *h, const char *method, int status)
{
	json_t *line = svc_log_conn(h->c, "request");

	json_object_set_new(line, "method", json_string(method));
	json_object_set_new(line, "host",
			    h->has_host ? svc_json_bytes(strbuf_str(&h->host),
							 h->host.len) :
					  json_null());
	json_object_set_new(line, "path",
			    svc_json_bytes(strbuf_str(&h->url), h->url.len));
	json_object_set_new(line, "status", json_integer(status));
	svc_log_write(h->c->l->sv, line);
}

static int on_message_complete(llhttp_t *p)
{
	struct http *h = p->data;
	const char *method = llhttp_method_name(llhttp_get_method(p));
	bool keep = llhttp_should_keep_alive(p);
	struct strbuf body = { 0 }, head = { 0 };

	strbuf_addf(&body, "hello from %s %s %s\n", strbuf_str(&h->host),
		    method, strbuf_str(&h->url));
	strbuf_addf(&head,
		    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		    "Content-Length: %zu\r\n%s\r\n",
		    body.len, keep ? "" : "Connection: close\r\n");
	svc_conn_send(h->c, head.buf, head.len);
	if (llhttp_get_method(p) != HTTP_HEAD)
		svc_conn_send(h->c, body.buf, body.len);
	strbuf_fini(&head);
	strbuf_fini(&body);
	log_request(h, method, 200);
	if (!keep) {
		svc_conn_finish(h->c, "connection: close");
		/* Whatever follows is not parsed. */
		return HPE_PAUSED;
	}
	return 0;
}

static const llhttp_settings_t settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

static void http_start(struct svc_conn *c)
{
	struct http *h = util_xcalloc(1, sizeof(*h));

	llhttp_init(&h->p, HTTP_REQUEST, &settings);
	h->p.data = h;
	h->c = c;
	c->proto = h;
}

static void http_reject(struct svc_conn *c, struct http *h)
{
	if (h->too_big) {
		svc_conn_send(c, resp_431, sizeof(resp_431) - 1);
		svc_conn_finish(c, "headers too large");
		return;
	}
	svc_conn_send(c, resp_400, sizeof(resp_400) - 1);
	/* Only an open connection is parsed, so no reason is set yet. */
	if (!c->reason_buf && asprintf(&c->reason_buf, "bad request: %s",
				       llhttp_get_error_reason(&h->p)) < 0)
		c->reason_buf = NULL;
	svc_conn_finish(c, c->reason_buf ? c->reason_buf : "bad request");
}

/* Feeds the input to llhttp, one contiguous chunk at a time. */
static void http_read(struct svc_conn *c)
{
	struct http *h = c->proto;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while (c->state == SVC_CONN_OPEN && evbuffer_get_length(in) > 0 &&
	       evbuffer_get_length(out) <= SVC_OUT_MAX) {
		struct evbuffer_iovec v;
		llhttp_errno_t e;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		e = llhttp_execute(&h->p, v.iov_base, v.iov_len);
		if (e == HPE_OK) {
			evbuffer_drain(in, v.iov_len);
		} else if (e == HPE_PAUSED_UPGRADE) {
			/* CONNECT or Upgrade: answered, but not switching. */
			svc_conn_finish(c, "upgrade");
		} else if (e != HPE_PAUSED) {
			http_reject(c, h);
		}
	}
}

static void http_connected(struct svc_conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	json_t *line = svc_log_conn(c, "tls");
	const char *sni;

	if (!ssl) {
		json_decref(line);
		return;
	}
	sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	json_object_set_new(line, "sni",
			    sni ? svc_json_bytes(sni, strlen(sni)) :
				  json_null());
	json_object_set_new(line, "cert",
			    json_integer(svc_tls_cert_index(c->l->tls, ssl)));
	svc_log_write(c->l->sv, line);
}

static void http_fini(struct svc_conn *c)
{
	struct http *h = c->proto;

	if (!h)
		return;
	strbuf_fini(&h->url);
	strbuf_fini(&h->host);
	strbuf_fini(&h->field);
	strbuf_fini(&h->value);
	free(h);
	c->proto = NULL;
}

const struct svc_conn_ops svc_http_ops = {
	.start = http_start,
	.read = http_read,
	.connected = http_connected,
	.fini = http_fini,
};
