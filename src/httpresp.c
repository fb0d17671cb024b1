/*
 * httpresp.c - the incremental HTTP/1.1 response reader (see httpresp.h).
 */
#include "httpresp.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* A chunk-size line (hex size and extensions) longer than this is refused. */
#define HTTPRESP_CHUNK_LINE_MAX 1024

enum http_state {
	H_HEAD,
	H_SIZE, /* a chunk-size line */
	H_DATA, /* chunk data */
	H_DATA_END, /* the CRLF after chunk data */
	H_TRAILER,
	H_LENGTH, /* Content-Length framing */
	H_UNTIL_EOF,
	H_DONE,
	H_ERROR,
};

struct httpresp {
	enum http_state st;
	int status;
	struct strbuf line; /* the head, then one chunk-size/trailer line */
	uint64_t left; /* of this chunk, or of the Content-Length body */
	size_t trailer_bytes;
	unsigned crlf; /* bytes of a chunk's closing CRLF seen */
	const char *err;
	int (*body)(void *arg, const char *p, size_t n);
	void *arg;
};

struct httpresp *httpresp_new(int (*body)(void *, const char *, size_t),
			      void *arg)
{
	struct httpresp *h = util_xcalloc(1, sizeof(*h));

	h->body = body;
	h->arg = arg;
	return h;
}

void httpresp_free(struct httpresp *h)
{
	if (!h)
		return;
	strbuf_fini(&h->line);
	free(h);
}

static int http_rc(const struct httpresp *h)
{
	if (h->st == H_ERROR)
		return HTTPRESP_ERROR;
	return h->st == H_DONE ? HTTPRESP_DONE : HTTPRESP_MORE;
}

static void http_fail(struct httpresp *h, const char *why)
{
	h->st = H_ERROR;
	h->err = why;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool name_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && strncasecmp(p, name, n) == 0;
}

/* One header line [p, p+n) without its CRLF; only the framing matters. */
static void http_header(struct httpresp *h, const char *p, size_t n,
			bool *chunked, bool *has_len, uint64_t *len)
{
	const char *colon = memchr(p, ':', n), *v, *end = p + n;
	uint64_t cl = 0;

	if (!colon || colon == p) {
		http_fail(h, "malformed header line");
		return;
	}
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (name_is(p, (size_t)(colon - p), "transfer-encoding")) {
		/* chunked alone: any other coding (gzip, ...) would have to be
		 * undone first, and dockerd never sends one */
		if (end - v == 7 && strncasecmp(v, "chunked", 7) == 0)
			*chunked = true;
		else
			http_fail(h, "unsupported transfer coding");
	} else if (name_is(p, (size_t)(colon - p), "content-length")) {
		if (v == end || end - v > 18) {
			http_fail(h, "bad Content-Length");
			return;
		}
		for (const char *q = v; q < end; q++) {
			if (!is_digit(*q)) {
				http_fail(h, "bad Content-Length");
				return;
			}
			cl = cl * 10 + (uint64_t)(*q - '0');
		}
		if (*has_len && *len != cl)
			http_fail(h, "conflicting Content-Length");
		*has_len = true;
		*len = cl;
	}
}

/* The head is in h->line, ending with CRLF CRLF, and holds no NUL. */
static void http_parse_head(struct httpresp *h)
{
	const char *s = h->line.buf, *eol = strstr(s, "\r\n");
	bool chunked = false, has_len = false;
	uint64_t len = 0;
	int status;

	/* "HTTP/1.x NNN[ reason]" */
	if (eol - s < 12 || strncmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) ||
	    s[8] != ' ' || !is_digit(s[9]) || !is_digit(s[10]) ||
	    !is_digit(s[11]) || (eol - s > 12 && s[12] != ' ')) {
		http_fail(h, "not an HTTP/1 status line");
		return;
	}
	status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	for (s = eol + 2; h->st != H_ERROR; s = eol + 2) {
		eol = strstr(s, "\r\n");
		if (eol == s)
			break; /* the empty line */
		http_header(h, s, (size_t)(eol - s), &chunked, &has_len, &len);
	}
	if (h->st == H_ERROR)
		return;
	strbuf_reset(&h->line);
	if (status < 200) {
		http_fail(h, "informational response");
		return;
	}
	h->status = status;
	if (status == 204 || status == 304) {
		h->st = H_DONE;
	} else if (chunked) {
		/* Transfer-Encoding overrides Content-Length (RFC 9112 §6.3) */
		h->st = H_SIZE;
	} else if (has_len) {
		h->left = len;
		h->st = len ? H_LENGTH : H_DONE;
	} else {
		h->st = H_UNTIL_EOF;
	}
}

static size_t http_head_feed(struct httpresp *h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (h->line.len >= HTTPRESP_HEAD_MAX) {
			http_fail(h, "response head too large");
			return n;
		}
		if (p[i] == '\0') {
			http_fail(h, "NUL in the response head");
			return n;
		}
		strbuf_addc(&h->line, p[i]);
		if (h->line.len >= 4 &&
		    memcmp(h->line.buf + h->line.len - 4, "\r\n\r\n", 4) == 0) {
			http_parse_head(h);
			return i + 1;
		}
	}
	return n;
}

/* "HEX[ ][;ext]" (the CRLF already removed). */
static void http_chunk_size(struct httpresp *h, const char *s, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;

	for (; i < n && util_hex_val(s[i]) >= 0; i++) {
		if (i == 15) {
			http_fail(h, "chunk size too large");
			return;
		}
		v = v << 4 | (uint64_t)util_hex_val(s[i]);
	}
	if (i == 0) {
		http_fail(h, "bad chunk size");
		return;
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < n && s[i] != ';') {
		http_fail(h, "bad chunk size");
		return;
	}
	if (v == 0) {
		h->st = H_TRAILER;
		h->trailer_bytes = 0;
	} else {
		h->left = v;
		h->st = H_DATA;
	}
}

/* Chunk-size and trailer lines, which may arrive in pieces. */
static size_t http_line_feed(struct httpresp *h, const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	size_t take = nl ? (size_t)(nl - p) + 1 : n;
	size_t limit = h->st == H_SIZE ? HTTPRESP_CHUNK_LINE_MAX :
					 HTTPRESP_HEAD_MAX - h->trailer_bytes;
	const char *s;
	size_t len;

	if (h->line.len + take > limit) {
		http_fail(h, h->st == H_SIZE ? "chunk-size line too long" :
					       "trailer too large");
		return n;
	}
	strbuf_add(&h->line, p, take);
	if (!nl)
		return take;
	s = h->line.buf;
	len = h->line.len;
	if (len < 2 || s[len - 2] != '\r') {
		http_fail(h, "line not ended by CRLF");
		return n;
	}
	len -= 2;
	if (h->st == H_SIZE)
		http_chunk_size(h, s, len);
	else if (len == 0)
		h->st = H_DONE;
	else
		h->trailer_bytes += len + 2;
	strbuf_reset(&h->line);
	return take;
}

static size_t http_data_feed(struct httpresp *h, const char *p, size_t n)
{
	size_t take = n;

	if (h->st != H_UNTIL_EOF && h->left < take)
		take = (size_t)h->left;
	if (h->body(h->arg, p, take) < 0) {
		http_fail(h, "body refused");
		return n;
	}
	if (h->st == H_UNTIL_EOF)
		return take;
	h->left -= take;
	if (h->left == 0) {
		h->st = h->st == H_DATA ? H_DATA_END : H_DONE;
		h->crlf = 0;
	}
	return take;
}

int httpresp_feed(struct httpresp *h, const char *p, size_t n)
{
	while (n > 0 && h->st != H_DONE && h->st != H_ERROR) {
		size_t used;

		switch (h->st) {
		case H_HEAD:
			used = http_head_feed(h, p, n);
			break;
		case H_SIZE:
		case H_TRAILER:
			used = http_line_feed(h, p, n);
			break;
		case H_DATA_END:
			if (*p != "\r\n"[h->crlf]) {
				http_fail(h, "chunk data not followed by CRLF");
				return HTTPRESP_ERROR;
			}
			if (++h->crlf == 2)
				h->st = H_SIZE;
			used = 1;
			break;
		default:
			used = http_data_feed(h, p, n);
			break;
		}
		p += used;
		n -= used;
	}
	return http_rc(h);
}

int httpresp_eof(struct httpresp *h)
{
	if (h->st == H_UNTIL_EOF)
		h->st = H_DONE;
	else if (h->st != H_DONE && h->st != H_ERROR)
		http_fail(h, h->st == H_HEAD && h->line.len == 0 ?
				     "closed before a response" :
				     "closed in the middle of a response");
	return http_rc(h);
}

int httpresp_status(const struct httpresp *h)
{
	return h->status;
}

const char *httpresp_error(const struct httpresp *h)
{
	return h->st == H_ERROR ? h->err : NULL;
}
