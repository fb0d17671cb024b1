/*
 * dnsmsg.c - bounded reading and building of DNS messages (RFC 1035 4.1).
 *
 * All reads go through struct rd, whose helpers check the remaining length
 * first and fail with -1 instead of reading past the end.  Names are read by
 * one loop; see rd_name for why compression pointers cannot loop.
 */
#include "dnsmsg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Header flag bits (RFC 1035 4.1.1). */
#define F_QR 0x8000
#define F_OPCODE_SHIFT 11
#define F_AA 0x0400
#define F_TC 0x0200
#define F_RD 0x0100
#define F_RA 0x0080
#define F_Z_SHIFT 4
#define F_RCODE 0x000f

/* The smallest question (root name, type, class) and RR on the wire. */
#define MIN_QUESTION 5
#define MIN_RR 11
/* Owner pointer, type, class, TTL, RDLENGTH and an IPv4 address. */
#define A_RR_LEN 16

enum section { SEC_ANSWER, SEC_AUTHORITY, SEC_ADDITIONAL, SEC_MAX };

struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static int rd_u16(struct rd *r, uint16_t *v)
{
	if (r->len - r->off < 2)
		return -1;
	*v = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
	r->off += 2;
	return 0;
}

static int rd_u32(struct rd *r, uint32_t *v)
{
	uint16_t hi, lo;

	if (rd_u16(r, &hi) < 0 || rd_u16(r, &lo) < 0)
		return -1;
	*v = (uint32_t)hi << 16 | lo;
	return 0;
}

/* Appends one label octet in master-file form; see dnsmsg_question.name. */
static size_t put_octet(char *t, size_t n, uint8_t c)
{
	if (c == '.' || c == '\\') {
		t[n++] = '\\';
		t[n++] = (char)c;
	} else if (c < 0x21 || c > 0x7e) {
		n += (size_t)snprintf(t + n, 5, "\\%03u", c);
	} else {
		t[n++] = (char)c;
	}
	return n;
}

/*
 * Reads the name at r->off and leaves r->off just past its bytes in place
 * (the root label or the first pointer).  With text (DNSMSG_NAME_STRMAX
 * bytes) the name is also written out in text form.
 *
 * A pointer must point before the start of the segment being read, i.e.
 * before the first label that led to it.  The segment start therefore
 * decreases strictly with every pointer taken, so the walk ends even on
 * hostile input, and the only references rejected are those RFC 1035 4.1.4
 * does not allow anyway ("a prior occurrence").  Pointers into the header
 * are rejected too: no name lives there.
 */
static int rd_name(struct rd *r, char *text)
{
	size_t pos = r->off, seg = r->off, end = 0, wire = 0, tn = 0;
	unsigned hops = 0;

	for (;;) {
		uint8_t c;

		if (pos >= r->len)
			return -1;
		c = r->p[pos];
		if ((c & 0xc0) == 0xc0) {
			size_t target;

			if (pos + 1 >= r->len)
				return -1;
			target = (size_t)(c & 0x3f) << 8 | r->p[pos + 1];
			if (!end)
				end = pos + 2;
			if (target < DNSMSG_HDRLEN || target >= seg ||
			    ++hops > DNSMSG_PTR_MAX)
				return -1;
			pos = seg = target;
			continue;
		}
		/* 0x40 and 0x80 are extended label types, retired (RFC 6891). */
		if (c & 0xc0)
			return -1;
		if (c == 0)
			break;
		/* Count the root octet still to come against the limit. */
		wire += 1 + (size_t)c;
		if (wire + 1 > DNSMSG_NAME_WIRE_MAX || r->len - pos - 1 < c)
			return -1;
		if (text) {
			if (tn)
				text[tn++] = '.';
			for (size_t i = 1; i <= c; i++)
				tn = put_octet(text, tn, r->p[pos + i]);
		}
		pos += 1 + (size_t)c;
	}
	if (text)
		text[tn] = '\0';
	r->off = end ? end : pos + 1;
	return 0;
}

static int rd_header(struct rd *r, struct dnsmsg_header *h)
{
	uint16_t f;

	if (rd_u16(r, &h->id) < 0 || rd_u16(r, &f) < 0 ||
	    rd_u16(r, &h->qdcount) < 0 || rd_u16(r, &h->ancount) < 0 ||
	    rd_u16(r, &h->nscount) < 0 || rd_u16(r, &h->arcount) < 0)
		return -1;
	h->qr = f & F_QR;
	h->opcode = (f >> F_OPCODE_SHIFT) & 0xf;
	h->aa = f & F_AA;
	h->tc = f & F_TC;
	h->rd = f & F_RD;
	h->ra = f & F_RA;
	h->z = (f >> F_Z_SHIFT) & 0x7;
	h->rcode = f & F_RCODE;
	return 0;
}

/*
 * Checks that RDATA holding a single name (CNAME, NS, PTR) is exactly one
 * well-formed name, so that consumers of these records never see garbage.
 */
static int rd_rdata_name(const struct rd *r, size_t start, size_t rdlen)
{
	struct rd sub = { .p = r->p, .len = start + rdlen, .off = start };

	if (rd_name(&sub, NULL) < 0 || sub.off != start + rdlen)
		return -1;
	return 0;
}

struct rr {
	uint16_t type, class;
	uint32_t ttl;
	size_t rdata;
	uint16_t rdlen;
};

static int rd_rr(struct rd *r, struct rr *rr, char *owner)
{
	if (rd_name(r, owner) < 0 || rd_u16(r, &rr->type) < 0 ||
	    rd_u16(r, &rr->class) < 0 || rd_u32(r, &rr->ttl) < 0 ||
	    rd_u16(r, &rr->rdlen) < 0 || r->len - r->off < rr->rdlen)
		return -1;
	rr->rdata = r->off;
	r->off += rr->rdlen;
	switch (rr->type) {
	case DNSMSG_TYPE_A:
		return rr->class == DNSMSG_CLASS_IN && rr->rdlen != 4 ? -1 : 0;
	case DNSMSG_TYPE_AAAA:
		return rr->class == DNSMSG_CLASS_IN && rr->rdlen != 16 ? -1 : 0;
	case DNSMSG_TYPE_CNAME:
	case DNSMSG_TYPE_NS:
	case DNSMSG_TYPE_PTR:
		return rd_rdata_name(r, rr->rdata, rr->rdlen);
	default:
		return 0;
	}
}

static int emit_addr(const struct rd *r, const struct rr *rr,
		     struct dnsmsg_addr *a, dnsmsg_addr_cb cb, void *arg)
{
	if (rr->class != DNSMSG_CLASS_IN)
		return 0;
	if (rr->type == DNSMSG_TYPE_A)
		a->family = AF_INET;
	else if (rr->type == DNSMSG_TYPE_AAAA)
		a->family = AF_INET6;
	else
		return 0;
	inet_ntop(a->family, r->p + rr->rdata, a->addr, sizeof(a->addr));
	a->ttl = rr->ttl & 0x80000000u ? 0 : rr->ttl;
	return cb(a, arg);
}

/*
 * Reads the whole message.  With m, the header and first question go there;
 * with cb, each A/AAAA answer is passed to it (the caller has validated the
 * message already, so that cb sees nothing of a malformed one).
 */
static int walk(const void *buf, size_t len, struct dnsmsg *m,
		dnsmsg_addr_cb cb, void *arg)
{
	struct rd r = { .p = buf, .len = len };
	struct dnsmsg_header h;
	struct dnsmsg_addr a;
	uint16_t counts[SEC_MAX];
	size_t nrr;

	if (rd_header(&r, &h) < 0)
		return -1;
	counts[SEC_ANSWER] = h.ancount;
	counts[SEC_AUTHORITY] = h.nscount;
	counts[SEC_ADDITIONAL] = h.arcount;
	nrr = (size_t)h.ancount + h.nscount + h.arcount;
	/* Refuse absurd counts before looping over them. */
	if ((size_t)h.qdcount * MIN_QUESTION + nrr * MIN_RR > len - r.off)
		return -1;
	if (m) {
		memset(m, 0, sizeof(*m));
		m->hdr = h;
		m->has_question = h.qdcount > 0;
	}
	for (unsigned i = 0; i < h.qdcount; i++) {
		struct dnsmsg_question *q = m && i == 0 ? &m->q : NULL;
		uint16_t type, class;

		if (rd_name(&r, q ? q->name : NULL) < 0 ||
		    rd_u16(&r, &type) < 0 || rd_u16(&r, &class) < 0)
			return -1;
		if (q) {
			q->qtype = type;
			q->qclass = class;
		}
		if (m && i == 0)
			m->q_end = r.off;
	}
	if (m && !m->has_question)
		m->q_end = r.off;
	for (int s = 0; s < SEC_MAX; s++) {
		for (unsigned i = 0; i < counts[s]; i++) {
			bool want = cb && s == SEC_ANSWER;
			struct rr rr;

			if (rd_rr(&r, &rr, want ? a.owner : NULL) < 0)
				return -1;
			if (want && emit_addr(&r, &rr, &a, cb, arg))
				return 0;
		}
	}
	return 0;
}

int dnsmsg_parse(struct dnsmsg *m, const void *buf, size_t len)
{
	return walk(buf, len, m, NULL, NULL);
}

int dnsmsg_walk_addrs(const void *buf, size_t len, dnsmsg_addr_cb cb, void *arg)
{
	if (walk(buf, len, NULL, NULL, NULL) < 0)
		return -1;
	return walk(buf, len, NULL, cb, arg);
}

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	put_u16(p, (uint16_t)(v >> 16));
	put_u16(p + 2, (uint16_t)v);
}

/*
 * Writes the reply header and the echoed first question; returns the
 * offset after them, or 0 if they do not fit.  The question's bytes are
 * copied as sent: rd_name allows no pointer in the first name of a message
 * (there is nothing before it to point to), so they stand alone.
 */
static size_t put_head(const struct dnsmsg *m, const uint8_t *query,
		       unsigned rcode, bool aa, uint8_t *out, size_t cap)
{
	size_t qlen = m->q_end - DNSMSG_HDRLEN;
	uint16_t f = F_QR | (uint16_t)(m->hdr.opcode << F_OPCODE_SHIFT) |
		     (uint16_t)rcode;

	if (cap < DNSMSG_HDRLEN || cap - DNSMSG_HDRLEN < qlen)
		return 0;
	if (aa)
		f |= F_AA;
	if (m->hdr.rd)
		f |= F_RD;
	memset(out, 0, DNSMSG_HDRLEN);
	put_u16(out, m->hdr.id);
	put_u16(out + 2, f);
	put_u16(out + 4, m->has_question ? 1 : 0);
	memcpy(out + DNSMSG_HDRLEN, query + DNSMSG_HDRLEN, qlen);
	return DNSMSG_HDRLEN + qlen;
}

int dnsmsg_build_reply(const void *query, size_t qlen, unsigned rcode,
		       void *out, size_t cap, size_t *outlen)
{
	struct dnsmsg m;
	size_t n;

	if (rcode > DNSMSG_RCODE_MAX || dnsmsg_parse(&m, query, qlen) < 0)
		return -1;
	n = put_head(&m, query, rcode, false, out, cap);
	if (!n)
		return -1;
	*outlen = n;
	return 0;
}

int dnsmsg_build_answer(const void *query, size_t qlen, unsigned rcode,
			const struct in_addr *addrs, size_t naddrs,
			uint32_t ttl, void *out, size_t cap, size_t *outlen)
{
	uint8_t *o = out;
	struct dnsmsg m;
	size_t n, i;

	if (rcode > DNSMSG_RCODE_MAX || dnsmsg_parse(&m, query, qlen) < 0 ||
	    (naddrs && !m.has_question))
		return -1;
	n = put_head(&m, query, rcode, true, o, cap);
	if (!n)
		return -1;
	for (i = 0; i < naddrs && i < UINT16_MAX; i++) {
		if (cap - n < A_RR_LEN) {
			o[2] |= F_TC >> 8;
			break;
		}
		put_u16(o + n, 0xc000 | DNSMSG_HDRLEN);
		put_u16(o + n + 2, DNSMSG_TYPE_A);
		put_u16(o + n + 4, DNSMSG_CLASS_IN);
		put_u32(o + n + 6, ttl);
		put_u16(o + n + 10, 4);
		memcpy(o + n + 12, &addrs[i].s_addr, 4);
		n += A_RR_LEN;
	}
	put_u16(o + 6, (uint16_t)i);
	*outlen = n;
	return 0;
}

int dnsmsg_tcp_len(const void *buf, size_t avail, size_t *msglen)
{
	const uint8_t *p = buf;

	if (avail < 2)
		return -1;
	*msglen = (size_t)p[0] << 8 | p[1];
	return 0;
}

int dnsmsg_tcp_prefix(void *out, size_t len)
{
	if (len > DNSMSG_TCP_MAX)
		return -1;
	put_u16(out, (uint16_t)len);
	return 0;
}

const char *dnsmsg_type_str(unsigned type)
{
	switch (type) {
	case DNSMSG_TYPE_A:
		return "A";
	case DNSMSG_TYPE_NS:
		return "NS";
	case DNSMSG_TYPE_CNAME:
		return "CNAME";
	case DNSMSG_TYPE_SOA:
		return "SOA";
	case DNSMSG_TYPE_PTR:
		return "PTR";
	case DNSMSG_TYPE_MX:
		return "MX";
	case DNSMSG_TYPE_TXT:
		return "TXT";
	case DNSMSG_TYPE_AAAA:
		return "AAAA";
	case DNSMSG_TYPE_SRV:
		return "SRV";
	case DNSMSG_TYPE_OPT:
		return "OPT";
	case DNSMSG_TYPE_HTTPS:
		return "HTTPS";
	case DNSMSG_TYPE_ANY:
		return "ANY";
	default:
		return NULL;
	}
}

const char *dnsmsg_rcode_str(unsigned rcode)
{
	static const char *const names[] = {
		[DNSMSG_RCODE_NOERROR] = "NOERROR",
		[DNSMSG_RCODE_FORMERR] = "FORMERR",
		[DNSMSG_RCODE_SERVFAIL] = "SERVFAIL",
		[DNSMSG_RCODE_NXDOMAIN] = "NXDOMAIN",
		[DNSMSG_RCODE_NOTIMP] = "NOTIMP",
		[DNSMSG_RCODE_REFUSED] = "REFUSED",
	};

	return rcode < ARRAY_SIZE(names) ? names[rcode] : NULL;
}
