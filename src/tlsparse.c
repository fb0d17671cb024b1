/*
 * tlsparse.c - the ClientHello of a connection, read without OpenSSL.
 *
 * Two stages.  The record stage walks the TLS records at the start of the
 * buffer (RFC 8446 5.1, RFC 5246 6.2.1) and follows the handshake stream
 * they carry until the whole ClientHello is there; it decides NOT_TLS from
 * the first bytes (so a plaintext protocol is told apart after one byte)
 * and never waits for more than TLSP_MAX_HELLO bytes of hello.  The hello
 * stage parses the reassembled message (RFC 8446 4.1.2) with a bounded
 * reader: every vector length is checked against the bytes that remain
 * before anything is read, so no input can make it read out of bounds.
 *
 * Pure: no I/O, no global state; safe from any thread.
 */
#include "tlsparse.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define TLS_CT_HANDSHAKE 22
#define TLS_HS_CLIENT_HELLO 1
#define TLS_REC_HDR 5
#define TLS_HS_HDR 4
#define TLS_REC_MAX (1u << 14) /* RFC 8446 5.1: plaintext fragment limit */
#define TLS_RANDOM_LEN 32
#define TLS_SESSION_ID_MAX 32
#define TLS_EXT_SERVER_NAME 0
#define TLS_EXT_ALPN 16
#define TLS_SNI_HOST_NAME 0
#define TLS_SNI_MAX 255 /* RFC 6066 3: HostName<1..2^16-1>, DNS caps it */

/* ---- bounded reader ---------------------------------------------------- */

/* A window on the hello: p[0..n).  Every read shrinks it from the front. */
struct rd {
	const uint8_t *p;
	size_t n;
};

static bool rd_u8(struct rd *r, uint8_t *v)
{
	if (r->n < 1)
		return false;
	*v = r->p[0];
	r->p++;
	r->n--;
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (r->n < 2)
		return false;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	r->n -= 2;
	return true;
}

static bool rd_skip(struct rd *r, size_t k)
{
	if (r->n < k)
		return false;
	r->p += k;
	r->n -= k;
	return true;
}

/* A vector with a 1-byte length prefix: *v covers its contents. */
static bool rd_vec8(struct rd *r, struct rd *v)
{
	uint8_t k;

	if (!rd_u8(r, &k) || r->n < k)
		return false;
	v->p = r->p;
	v->n = k;
	return rd_skip(r, k);
}

/* A vector with a 2-byte length prefix: *v covers its contents. */
static bool rd_vec16(struct rd *r, struct rd *v)
{
	uint16_t k;

	if (!rd_u16(r, &k) || r->n < k)
		return false;
	v->p = r->p;
	v->n = k;
	return rd_skip(r, k);
}

/* ---- record stage ------------------------------------------------------ */

/* Where the ClientHello is, once the record stage has found all of it. */
struct hs_span {
	size_t hello_len; /* handshake message length, header included */
	size_t nrec; /* records carrying it */
	size_t consumed; /* bytes of those records, headers included */
};

/*
 * Checks the record header at b[0..avail), as much of it as is there.  The
 * first record decides whether the connection speaks TLS at all, so a
 * mismatch there is NOT_TLS (an SSLv2 hello starts with a length byte with
 * the top bit set and fails on byte 0, as "GET " does); in a later record
 * the peer has already started a TLS handshake and it is MALFORMED.
 * Returns TLSP_OK with *rlen set when the five header bytes are present.
 */
static enum tlsp_result rec_header(const uint8_t *b, size_t avail, bool first,
				   size_t *rlen)
{
	enum tlsp_result bad = first ? TLSP_NOT_TLS : TLSP_MALFORMED;

	if (avail >= 1 && b[0] != TLS_CT_HANDSHAKE)
		return bad;
	/* record versions 0x0300 (SSL 3.0) to 0x0304; real clients send
	 * 0x0301 or 0x0303 (RFC 8446 5.1) */
	if (avail >= 2 && b[1] != 3)
		return bad;
	if (avail >= 3 && b[2] > 4)
		return bad;
	if (avail < TLS_REC_HDR)
		return TLSP_NEED_MORE;
	*rlen = (size_t)b[3] << 8 | b[4];
	/* RFC 8446 5.1: no empty handshake fragments, none over 2^14 */
	if (*rlen == 0 || *rlen > TLS_REC_MAX)
		return TLSP_MALFORMED;
	return TLSP_OK;
}

/*
 * Follows the handshake stream through the records at buf[0..len) until
 * the ClientHello is complete.  The handshake header is checked as soon as
 * its four bytes have arrived, even inside an incomplete record, so a
 * non-hello or an oversized one is refused without waiting for the rest.
 * The hello must end with the record that completes it: the client sends
 * nothing else in the handshake before the server answers.
 */
static enum tlsp_result scan_records(const uint8_t *buf, size_t len,
				     struct hs_span *sp)
{
	uint8_t hdr[TLS_HS_HDR];
	size_t pos = 0, have = 0, need = SIZE_MAX;

	sp->nrec = 0;
	for (;;) {
		const uint8_t *frag = buf + pos + TLS_REC_HDR;
		size_t rlen = 0, avail;
		enum tlsp_result r;

		r = rec_header(buf + pos, len - pos, pos == 0, &rlen);
		if (r != TLSP_OK)
			return r;
		avail = len - pos - TLS_REC_HDR;
		if (avail > rlen)
			avail = rlen;
		for (size_t i = 0; i < avail && have + i < TLS_HS_HDR; i++)
			hdr[have + i] = frag[i];
		if (have < TLS_HS_HDR && have + avail >= TLS_HS_HDR) {
			size_t body = (size_t)hdr[1] << 16 |
				      (size_t)hdr[2] << 8 | hdr[3];

			if (hdr[0] != TLS_HS_CLIENT_HELLO ||
			    body > TLSP_MAX_HELLO - TLS_HS_HDR)
				return TLSP_MALFORMED;
			need = TLS_HS_HDR + body;
		}
		if (avail < rlen)
			return TLSP_NEED_MORE;
		have += rlen;
		pos += TLS_REC_HDR + rlen;
		sp->nrec++;
		if (have >= need) {
			if (have > need)
				return TLSP_MALFORMED;
			sp->hello_len = need;
			sp->consumed = pos;
			return TLSP_OK;
		}
		if (pos == len)
			return TLSP_NEED_MORE;
	}
}

/* Copies the handshake stream of the records scan_records accepted. */
static void gather(const uint8_t *buf, const struct hs_span *sp, uint8_t *dst)
{
	size_t pos = 0, off = 0;

	for (size_t i = 0; i < sp->nrec; i++) {
		size_t rlen = (size_t)buf[pos + 3] << 8 | buf[pos + 4];

		memcpy(dst + off, buf + pos + TLS_REC_HDR, rlen);
		off += rlen;
		pos += TLS_REC_HDR + rlen;
	}
}

/* ---- hello stage ------------------------------------------------------- */

/*
 * server_name (RFC 6066 3): a non-empty list of (type, name).  The first
 * host_name is the one reported; the framing of every entry is checked.
 * A name that is empty, too long or holds a NUL is refused: it could only
 * be an attempt to make a name check and a certificate disagree.
 */
static bool parse_sni(struct rd d, struct tls_hello *out)
{
	struct rd list;

	if (!rd_vec16(&d, &list) || d.n != 0 || list.n == 0)
		return false;
	while (list.n) {
		struct rd name;
		uint8_t type;

		if (!rd_u8(&list, &type) || !rd_vec16(&list, &name))
			return false;
		if (type != TLS_SNI_HOST_NAME || out->has_sni)
			continue;
		if (name.n == 0 || name.n > TLS_SNI_MAX ||
		    memchr(name.p, '\0', name.n))
			return false;
		memcpy(out->sni, name.p, name.n);
		out->sni[name.n] = '\0';
		out->has_sni = true;
	}
	return true;
}

/* application_layer_protocol_negotiation (RFC 7301 3.1). */
static bool parse_alpn(struct rd d, struct tls_hello *out)
{
	struct rd list;

	if (!rd_vec16(&d, &list) || d.n != 0 || list.n == 0)
		return false;
	while (list.n) {
		struct rd proto;

		if (!rd_vec8(&list, &proto) || proto.n == 0)
			return false;
		if (proto.n == 8 && !memcmp(proto.p, "http/1.1", 8))
			out->alpn_http11 = true;
		else if (proto.n == 2 && !memcmp(proto.p, "h2", 2))
			out->alpn_h2 = true;
		else
			out->alpn_other = true;
	}
	return true;
}

/*
 * The extensions block.  Unknown types (GREASE included, RFC 8701) are
 * skipped; a repeated server_name or ALPN is refused (RFC 8446 4.2: no
 * type twice), so there is never a second value to disagree with.
 */
static bool parse_extensions(struct rd exts, struct tls_hello *out)
{
	bool seen_sni = false, seen_alpn = false;

	while (exts.n) {
		struct rd data;
		uint16_t type;

		if (!rd_u16(&exts, &type) || !rd_vec16(&exts, &data))
			return false;
		if (type == TLS_EXT_SERVER_NAME) {
			if (seen_sni || !parse_sni(data, out))
				return false;
			seen_sni = true;
		} else if (type == TLS_EXT_ALPN) {
			if (seen_alpn || !parse_alpn(data, out))
				return false;
			seen_alpn = true;
		}
	}
	return true;
}

/* The ClientHello body (after the 4-byte handshake header). */
static enum tlsp_result parse_hello(const uint8_t *p, size_t n,
				    struct tls_hello *out)
{
	struct rd r = { p, n }, v;
	uint16_t version;

	if (!rd_u16(&r, &version) || version >> 8 != 3)
		return TLSP_MALFORMED;
	out->legacy_version = version;
	if (!rd_skip(&r, TLS_RANDOM_LEN))
		return TLSP_MALFORMED;
	if (!rd_vec8(&r, &v) || v.n > TLS_SESSION_ID_MAX)
		return TLSP_MALFORMED;
	if (!rd_vec16(&r, &v) || v.n == 0 || v.n % 2)
		return TLSP_MALFORMED;
	if (!rd_vec8(&r, &v) || v.n == 0)
		return TLSP_MALFORMED;
	/* TLS 1.2 and earlier allow a hello without extensions */
	if (r.n == 0)
		return TLSP_OK;
	if (!rd_vec16(&r, &v) || r.n != 0 || !parse_extensions(v, out))
		return TLSP_MALFORMED;
	return TLSP_OK;
}

enum tlsp_result tlsparse_client_hello(const uint8_t *buf, size_t len,
				       struct tls_hello *out)
{
	struct hs_span sp;
	enum tlsp_result r;
	uint8_t *copy;

	memset(out, 0, sizeof(*out));
	r = scan_records(buf, len, &sp);
	if (r != TLSP_OK)
		return r;
	out->consumed = sp.consumed;
	/* the usual case, one record, is parsed in place */
	if (sp.nrec == 1) {
		r = parse_hello(buf + TLS_REC_HDR + TLS_HS_HDR,
				sp.hello_len - TLS_HS_HDR, out);
	} else {
		copy = util_xmalloc(sp.hello_len);
		gather(buf, &sp, copy);
		r = parse_hello(copy + TLS_HS_HDR, sp.hello_len - TLS_HS_HDR,
				out);
		free(copy);
	}
	/* half-parsed fields are never handed out */
	if (r != TLSP_OK)
		memset(out, 0, sizeof(*out));
	return r;
}

const char *tlsparse_result_str(enum tlsp_result r)
{
	static const char *const names[] = {
		[TLSP_NEED_MORE] = "need-more",
		[TLSP_OK] = "ok",
		[TLSP_NOT_TLS] = "not-tls",
		[TLSP_MALFORMED] = "malformed",
	};

	if ((unsigned)r >= ARRAY_SIZE(names) || !names[r])
		return "unknown";
	return names[r];
}
