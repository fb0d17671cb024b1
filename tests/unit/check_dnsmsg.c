/*
 * check_dnsmsg.c - the DNS message parser and builders: valid queries and
 * responses, compression, every kind of malformed input the DNS proxy may
 * meet (loops, forward pointers, truncation at each offset, oversize labels
 * and names, absurd counts) and a mutation loop that must never crash
 * under ASan/UBSan.
 *
 * Inputs are always copied to a heap buffer of their exact length first, so
 * that ASan sees any read past the end (string literals would hide it).
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsmsg.h"
#include "suites.h"

#define M(s) s, sizeof(s) - 1
#define MSG(s) .msg = s, .len = sizeof(s) - 1

/* www.Example.TEST A IN, RD set. */
static const char q_a[] = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
			  "\x03"
			  "www"
			  "\x07"
			  "Example"
			  "\x04"
			  "TEST"
			  "\x00"
			  "\x00\x01\x00\x01";

/* github.com AAAA IN with an EDNS OPT record and the AD bit. */
static const char q_aaaa_opt[] =
	"\xbe\xef\x01\x20\x00\x01\x00\x00\x00\x00\x00\x01"
	"\x06"
	"github"
	"\x03"
	"com"
	"\x00"
	"\x00\x1c\x00\x01"
	"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00";

/*
 * www.github.com A: CNAME to github.com (a pointer into the question, which
 * sits at 0x10), an A and an AAAA whose TTL has the top bit set.
 */
static const char r_cname[] =
	"\xab\xcd\x81\x80\x00\x01\x00\x03\x00\x00\x00\x00"
	"\x03"
	"www"
	"\x06"
	"github"
	"\x03"
	"com"
	"\x00"
	"\x00\x01\x00\x01"
	"\xc0\x0c\x00\x05\x00\x01\x00\x00\x0e\x10\x00\x02\xc0\x10"
	"\xc0\x10\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x8c\x52\x79\x04"
	"\xc0\x10\x00\x1c\x00\x01\x80\x00\x00\x01\x00\x10"
	"\x26\x06\x50\xc0\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x53";

/*
 * a.test: an answer owned by b.test (label + pointer), one reached through
 * a pointer to that pointer but of class CH, and an A in the authority
 * section.  Only the first answer is an address to report.
 */
static const char r_chain[] =
	"\x00\x01\x84\x00\x00\x01\x00\x02\x00\x01\x00\x00"
	"\x01"
	"a"
	"\x04"
	"test"
	"\x00"
	"\x00\x01\x00\x01"
	"\x01"
	"b"
	"\xc0\x0e\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04\x0a\x00\x00\x01"
	"\xc0\x18\x00\x01\x00\x03\x00\x00\x00\x05\x00\x04\x01\x02\x03\x04"
	"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x07\x00\x04\x09\x09\x09\x09";

static const char q_noquestion[] =
	"\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

static const char q_root[] = "\x00\x08\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
			     "\x00\x00\x02\x00\x01";

/* Labels "a.b", "c\x7f" and "\": the text form escapes them. */
static const char q_escapes[] =
	"\x00\x09\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
	"\x03"
	"a.b"
	"\x02"
	"c\x7f"
	"\x01"
	"\\"
	"\x00"
	"\x00\x10\x00\x01";

static const char r_trailing[] =
	"\x00\x0a\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00"
	"\x01"
	"a"
	"\x00"
	"\x00\x01\x00\x01"
	"\xff\xff\xff";

struct pcase {
	const char *name;
	const char *msg;
	size_t len;
	int rc;
	bool all_prefixes_fail; /* no trailing bytes: any cut is malformed */
	/* when rc == 0 */
	uint16_t id;
	bool qr, aa, rd, has_question;
	unsigned opcode, rcode, z;
	const char *qname;
	uint16_t qtype, qclass;
	uint16_t an;
	/* the A/AAAA answers */
	size_t naddr;
	const char *addrs[3];
	uint32_t ttls[3];
	const char *owner;
};

static const struct pcase pcases[] = {
	{ .name = "query A",
	  MSG(q_a),
	  .all_prefixes_fail = true,
	  .id = 0x1234,
	  .rd = true,
	  .has_question = true,
	  .qname = "www.Example.TEST",
	  .qtype = 1,
	  .qclass = 1 },
	{ .name = "query AAAA + OPT",
	  MSG(q_aaaa_opt),
	  .all_prefixes_fail = true,
	  .id = 0xbeef,
	  .rd = true,
	  .has_question = true,
	  .z = 2,
	  .qname = "github.com",
	  .qtype = 28,
	  .qclass = 1 },
	{ .name = "response CNAME A AAAA",
	  MSG(r_cname),
	  .all_prefixes_fail = true,
	  .id = 0xabcd,
	  .qr = true,
	  .rd = true,
	  .has_question = true,
	  .qname = "www.github.com",
	  .qtype = 1,
	  .qclass = 1,
	  .an = 3,
	  .naddr = 2,
	  .addrs = { "140.82.121.4", "2606:50c0:8000::153" },
	  .ttls = { 60, 0 },
	  .owner = "github.com" },
	{ .name = "response pointer chain",
	  MSG(r_chain),
	  .all_prefixes_fail = true,
	  .id = 1,
	  .qr = true,
	  .aa = true,
	  .has_question = true,
	  .qname = "a.test",
	  .qtype = 1,
	  .qclass = 1,
	  .an = 2,
	  .naddr = 1,
	  .addrs = { "10.0.0.1" },
	  .ttls = { 5 },
	  .owner = "b.test" },
	{ .name = "qdcount 0",
	  MSG(q_noquestion),
	  .all_prefixes_fail = true,
	  .id = 7,
	  .qname = "" },
	{ .name = "root name",
	  MSG(q_root),
	  .all_prefixes_fail = true,
	  .id = 8,
	  .rd = true,
	  .has_question = true,
	  .qname = "",
	  .qtype = 2,
	  .qclass = 1 },
	{ .name = "escaped octets",
	  MSG(q_escapes),
	  .all_prefixes_fail = true,
	  .id = 9,
	  .has_question = true,
	  .qname = "a\\.b.c\\127.\\\\",
	  .qtype = 16,
	  .qclass = 1 },
	{ .name = "trailing bytes ignored",
	  MSG(r_trailing),
	  .id = 10,
	  .qr = true,
	  .rd = true,
	  .has_question = true,
	  .qname = "a",
	  .qtype = 1,
	  .qclass = 1 },
	{ .name = "pointer cut in half, not counted",
	  MSG("\x00\x01\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01"
	      "a"
	      "\x00\x00\x01\x00\x01\xc0"),
	  .id = 1,
	  .qr = true,
	  .has_question = true,
	  .qname = "a",
	  .qtype = 1,
	  .qclass = 1 },
	/* malformed */
	{ .name = "empty", MSG(""), .rc = -1 },
	{ .name = "short header",
	  MSG("\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
	  .rc = -1 },
	{ .name = "qdcount 1, nothing",
	  MSG("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"),
	  .rc = -1 },
	{ .name = "question without type",
	  MSG("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00"
	      "\x00\x00\x01"
	      "a"
	      "\x00\x00\x01"),
	  .rc = -1 },
	{ .name = "label runs past end",
	  MSG("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00"
	      "\x00\x00\x05"
	      "ab\x00\x00\x01\x00"),
	  .rc = -1 },
	{ .name = "label type 0x40 (length 64)",
	  MSG("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
	      "\x40"
	      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	      "\x00\x00\x01\x00\x01"),
	  .rc = -1 },
	{ .name = "label type 0x80",
	  MSG("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00"
	      "\x00\x81"
	      "a\x00\x00\x01\x00\x01"),
	  .rc = -1 },
	{ .name = "first name is a self pointer",
	  MSG("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01"
	      "\x00\x01"),
	  .rc = -1 },
	{ .name = "pointer back into its own name (loop)",
	  MSG("\x00\x01\x80\x00\x00\x01\x00\x01\x00\x00\x00\x00"
	      "\x01"
	      "a"
	      "\x00\x00\x01\x00\x01"
	      "\x01"
	      "b"
	      "\xc0\x13\x00\x01\x00\x01\x00\x00\x00\x01\x00\x04\x01\x02\x03\x04"),
	  .rc = -1 },
	{ .name = "two-pointer loop",
	  MSG("\x00\x01\x80\x00\x00\x01\x00\x01\x00\x00\x00\x00"
	      "\x01"
	      "a"
	      "\x00\x00\x01\x00\x01"
	      "\xc0\x15\xc0\x13\x00\x01\x00\x00\x00\x01\x00\x00"),
	  .rc = -1 },
	{ .name = "forward pointer",
	  MSG("\x00\x01\x80\x00\x00\x01\x00\x01\x00\x00\x00"
	      "\x00\x01"
	      "a"
	      "\x00\x00\x01\x00\x01"
	      "\xc0\x1f\x00\x10\x00\x01\x00\x00\x00\x00\x00"
	      "\x04\x02"
	      "xy"
	      "\x00"),
	  .rc = -1 },
	{ .name = "pointer into the header",
	  MSG("\x00\x01\x80\x00\x00\x01\x00\x01\x00\x00\x00\x00"
	      "\x01"
	      "a"
	      "\x00\x00\x01\x00\x01"
	      "\xc0\x02\x00\x01\x00\x01\x00\x00\x00\x01\x00\x04\x01\x02\x03\x04"),
	  .rc = -1 },
	{ .name = "pointer cut in half, counted",
	  MSG("\x00\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00"
	      "\x01"
	      "a"
	      "\x00\x00\x01\x00\x01"
	      "\x01"
	      "b"
	      "\xc0"),
	  .rc = -1 },
	{ .name = "qdcount 65535",
	  MSG("\x00\x01\x00\x00\xff\xff\x00\x00\x00\x00\x00\x00"
	      "\x00\x00\x01\x00\x01"),
	  .rc = -1 },
	{ .name = "all counts 65535",
	  MSG("\x00\x01\x00\x00\xff\xff\xff\xff\xff\xff\xff"
	      "\xff\x00\x00\x01\x00\x01"),
	  .rc = -1 },
	{ .name = "A with rdlength 5",
	  MSG("\x00\x01\x80\x00\x00\x00\x00\x01\x00\x00\x00"
	      "\x00\x00\x00\x01\x00\x01\x00\x00\x00\x01\x00"
	      "\x05\x01\x02\x03\x04\x05"),
	  .rc = -1 },
	{ .name = "AAAA with rdlength 4",
	  MSG("\x00\x01\x80\x00\x00\x00\x00\x01\x00\x00"
	      "\x00\x00\x00\x00\x1c\x00\x01\x00\x00\x00"
	      "\x01\x00\x04\x01\x02\x03\x04"),
	  .rc = -1 },
	{ .name = "rdlength past the end",
	  MSG("\x00\x01\x80\x00\x00\x00\x00\x01\x00\x00"
	      "\x00\x00\x00\x00\x10\x00\x01\x00\x00\x00"
	      "\x01\x00\x09\x01\x02\x03\x04"),
	  .rc = -1 },
	{ .name = "CNAME name overruns its rdata",
	  MSG("\x00\x01\x80\x00\x00\x00\x00\x01\x00\x00\x00\x00"
	      "\x00\x00\x05\x00\x01\x00\x00\x00\x01\x00\x02\x01"
	      "a"
	      "\x00"),
	  .rc = -1 },
	{ .name = "CNAME rdata longer than its name",
	  MSG("\x00\x01\x80\x00\x00\x00\x00\x01\x00\x00\x00\x00"
	      "\x00\x00\x05\x00\x01\x00\x00\x00\x01\x00\x04\x01"
	      "a"
	      "\x00\x00"),
	  .rc = -1 },
};

/* A heap copy of exactly len bytes (never NULL, even for len 0). */
static uint8_t *dup_exact(const void *p, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(b);
	if (len)
		memcpy(b, p, len);
	return b;
}

struct seen {
	size_t n;
	struct dnsmsg_addr a[8];
};

static int collect(const struct dnsmsg_addr *a, void *arg)
{
	struct seen *s = arg;

	if (s->n < ARRAY_SIZE(s->a))
		s->a[s->n] = *a;
	s->n++;
	return 0;
}

static void ck_header(const struct pcase *c, const struct dnsmsg *m)
{
	ck_assert_uint_eq(m->hdr.id, c->id);
	ck_assert_int_eq(m->hdr.qr, c->qr);
	ck_assert_int_eq(m->hdr.aa, c->aa);
	ck_assert_int_eq(m->hdr.rd, c->rd);
	ck_assert_int_eq(m->hdr.tc, 0);
	ck_assert_uint_eq(m->hdr.opcode, c->opcode);
	ck_assert_uint_eq(m->hdr.rcode, c->rcode);
	ck_assert_uint_eq(m->hdr.z, c->z);
	ck_assert_uint_eq(m->hdr.ancount, c->an);
	ck_assert_int_eq(m->has_question, c->has_question);
}

START_TEST(test_parse_table)
{
	const struct pcase *c = &pcases[_i];
	uint8_t *b = dup_exact(c->msg, c->len);
	struct dnsmsg m;
	struct seen s = { 0 };
	int rc = dnsmsg_parse(&m, b, c->len);

	ck_assert_msg(rc == c->rc, "%s: parse returned %d", c->name, rc);
	ck_assert_int_eq(dnsmsg_walk_addrs(b, c->len, collect, &s), c->rc);
	if (rc == 0) {
		ck_header(c, &m);
		ck_assert_str_eq(m.q.name, c->qname);
		ck_assert_uint_eq(m.q.qtype, c->qtype);
		ck_assert_uint_eq(m.q.qclass, c->qclass);
		ck_assert_uint_eq(s.n, c->naddr);
		for (size_t i = 0; i < c->naddr; i++) {
			ck_assert_str_eq(s.a[i].addr, c->addrs[i]);
			ck_assert_uint_eq(s.a[i].ttl, c->ttls[i]);
			ck_assert_str_eq(s.a[i].owner, c->owner);
			ck_assert_int_eq(s.a[i].family,
					 strchr(c->addrs[i], ':') ? AF_INET6 :
								    AF_INET);
		}
	} else {
		ck_assert_uint_eq(s.n, 0);
	}
	free(b);
}
END_TEST

/* Every proper prefix of a message with no trailing bytes is malformed. */
START_TEST(test_truncated_everywhere)
{
	const struct pcase *c = &pcases[_i];

	if (c->rc != 0 || !c->all_prefixes_fail)
		return;
	for (size_t n = 0; n < c->len; n++) {
		uint8_t *b = dup_exact(c->msg, n);
		struct dnsmsg m;
		struct seen s = { 0 };
		uint8_t out[DNSMSG_UDP_MAX];
		size_t olen;

		ck_assert_msg(dnsmsg_parse(&m, b, n) == -1, "%s cut at %zu",
			      c->name, n);
		ck_assert_int_eq(dnsmsg_walk_addrs(b, n, collect, &s), -1);
		ck_assert_uint_eq(s.n, 0);
		ck_assert_int_eq(dnsmsg_build_reply(b, n, 5, out, sizeof(out),
						    &olen),
				 -1);
		free(b);
	}
}
END_TEST

static int stop_first(const struct dnsmsg_addr *a, void *arg)
{
	(void)a;
	++*(int *)arg;
	return 1;
}

START_TEST(test_walk_stops)
{
	uint8_t *b = dup_exact(M(r_cname));
	int calls = 0;

	ck_assert_int_eq(dnsmsg_walk_addrs(b, sizeof(r_cname) - 1, stop_first,
					   &calls),
			 0);
	ck_assert_int_eq(calls, 1);
	free(b);
}
END_TEST

/* A counted answer that is missing although the coarse size check passes. */
START_TEST(test_count_exceeds_data)
{
	uint8_t *b = dup_exact(M(r_cname));
	struct dnsmsg m;

	b[7] = 4; /* ancount 3 -> 4 */
	ck_assert_int_eq(dnsmsg_parse(&m, b, sizeof(r_cname) - 1), -1);
	b[7] = 2; /* fewer counted than present: the rest is trailing */
	ck_assert_int_eq(dnsmsg_parse(&m, b, sizeof(r_cname) - 1), 0);
	free(b);
}
END_TEST

/* Message builder for the generated cases. */
struct mb {
	uint8_t b[2048];
	size_t n;
};

static void mb_u16(struct mb *m, unsigned v)
{
	m->b[m->n++] = (uint8_t)(v >> 8);
	m->b[m->n++] = (uint8_t)v;
}

static void mb_hdr(struct mb *m, unsigned flags, unsigned qd, unsigned an)
{
	m->n = 0;
	mb_u16(m, 0x4242);
	mb_u16(m, flags);
	mb_u16(m, qd);
	mb_u16(m, an);
	mb_u16(m, 0);
	mb_u16(m, 0);
}

static void mb_label(struct mb *m, size_t len, char fill)
{
	m->b[m->n++] = (uint8_t)len;
	memset(m->b + m->n, fill, len);
	m->n += len;
}

/* TYPE, CLASS IN, TTL, RDLENGTH. */
static void mb_rrtail(struct mb *m, unsigned type, unsigned rdlen)
{
	mb_u16(m, type);
	mb_u16(m, DNSMSG_CLASS_IN);
	mb_u16(m, 0);
	mb_u16(m, 1);
	mb_u16(m, rdlen);
}

static int parse_mb(const struct mb *mb, struct dnsmsg *m)
{
	uint8_t *b = dup_exact(mb->b, mb->n);
	int rc = dnsmsg_parse(m, b, mb->n);

	free(b);
	return rc;
}

/* A question name of 255 octets on the wire; last label len + 1 past it. */
static void mb_long_query(struct mb *m, size_t last)
{
	mb_hdr(m, 0x0100, 1, 0);
	mb_label(m, 63, 'a');
	mb_label(m, 63, 'b');
	mb_label(m, 63, 'c');
	mb_label(m, last, 'd');
	m->b[m->n++] = 0;
	mb_u16(m, DNSMSG_TYPE_A);
	mb_u16(m, DNSMSG_CLASS_IN);
}

START_TEST(test_name_length_limit)
{
	struct mb mb;
	struct dnsmsg m;

	mb_long_query(&mb, 61);
	ck_assert_int_eq(parse_mb(&mb, &m), 0);
	ck_assert_uint_eq(strlen(m.q.name), 253);
	mb_long_query(&mb, 62);
	ck_assert_int_eq(parse_mb(&mb, &m), -1);
	/* 63 is the longest label */
	mb_hdr(&mb, 0, 1, 0);
	mb_label(&mb, 63, 'x');
	mb.b[mb.n++] = 0;
	mb_u16(&mb, 1);
	mb_u16(&mb, 1);
	ck_assert_int_eq(parse_mb(&mb, &m), 0);
}
END_TEST

/* A short owner whose pointer expands it past 255 octets. */
START_TEST(test_name_too_long_through_pointer)
{
	struct mb mb;
	struct dnsmsg m;

	mb_long_query(&mb, 61);
	mb.b[7] = 1; /* ancount */
	mb_label(&mb, 1, 'x');
	mb_u16(&mb, 0xc000 | DNSMSG_HDRLEN);
	mb_rrtail(&mb, DNSMSG_TYPE_A, 4);
	mb_u16(&mb, 0x0102);
	mb_u16(&mb, 0x0304);
	ck_assert_int_eq(parse_mb(&mb, &m), -1);
}
END_TEST

/*
 * A chain of backward pointers, each to the previous one, hidden in TXT
 * rdata; an A record's owner enters at the end of the chain.  npointers + 1
 * pointers are followed to read that owner.
 */
static void mb_pointer_chain(struct mb *m, unsigned npointers)
{
	size_t rdata;

	mb_hdr(m, 0x8000, 1, 2);
	mb_label(m, 1, 'a');
	m->b[m->n++] = 0;
	mb_u16(m, DNSMSG_TYPE_A);
	mb_u16(m, DNSMSG_CLASS_IN);
	mb_u16(m, 0xc000 | DNSMSG_HDRLEN);
	mb_rrtail(m, DNSMSG_TYPE_TXT, 2 * npointers);
	rdata = m->n;
	for (unsigned i = 0; i < npointers; i++)
		mb_u16(m, 0xc000 | (i ? rdata + 2 * (i - 1) : DNSMSG_HDRLEN));
	mb_u16(m, 0xc000 | (rdata + 2 * (npointers - 1)));
	mb_rrtail(m, DNSMSG_TYPE_A, 4);
	mb_u16(m, 0x0a00);
	mb_u16(m, 0x0001);
}

START_TEST(test_pointer_hop_limit)
{
	struct mb mb;
	struct dnsmsg m;
	struct seen s = { 0 };
	uint8_t *b;

	mb_pointer_chain(&mb, DNSMSG_PTR_MAX - 1);
	b = dup_exact(mb.b, mb.n);
	ck_assert_int_eq(dnsmsg_walk_addrs(b, mb.n, collect, &s), 0);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_str_eq(s.a[0].owner, "a");
	free(b);
	mb_pointer_chain(&mb, DNSMSG_PTR_MAX);
	ck_assert_int_eq(parse_mb(&mb, &m), -1);
}
END_TEST

/* Builders ------------------------------------------------------------- */

struct bcase {
	const char *name;
	const char *query;
	size_t qlen;
	unsigned rcode;
	int rc;
	const char *want;
	size_t wantlen;
};

static const struct bcase bcases[] = {
	{ "refused", M(q_a), 5, 0,
	  M("\x12\x34\x81\x05\x00\x01\x00\x00\x00\x00\x00\x00"
	    "\x03"
	    "www"
	    "\x07"
	    "Example"
	    "\x04"
	    "TEST"
	    "\x00"
	    "\x00\x01\x00\x01") },
	/* OPT dropped, AD cleared */
	{ "refused, EDNS query", M(q_aaaa_opt), 5, 0,
	  M("\xbe\xef\x81\x05\x00\x01\x00\x00\x00\x00\x00\x00"
	    "\x06"
	    "github"
	    "\x03"
	    "com"
	    "\x00"
	    "\x00\x1c\x00\x01") },
	/* opcode 2 kept; AA TC RA Z cleared; RD clear stays clear */
	{ "servfail, odd flags",
	  M("\x00\x05\x16\xf0\x00\x01\x00\x00\x00\x00"
	    "\x00\x00\x01"
	    "a"
	    "\x00\x00\x01\x00\x01"),
	  2, 0,
	  M("\x00\x05\x90\x02\x00\x01\x00\x00\x00\x00\x00\x00\x01"
	    "a"
	    "\x00\x00\x01\x00\x01") },
	{ "no question", M(q_noquestion), 1, 0,
	  M("\x00\x07\x80\x01\x00\x00\x00\x00\x00\x00\x00\x00") },
	{ "two questions: first echoed",
	  M("\x00\x06\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x01"
	    "a"
	    "\x00\x00\x01\x00\x01\x01"
	    "b"
	    "\x00\x00\x01\x00\x01"),
	  3, 0,
	  M("\x00\x06\x81\x03\x00\x01\x00\x00\x00\x00\x00\x00\x01"
	    "a"
	    "\x00\x00\x01\x00\x01") },
	{ "rcode too big", M(q_a), 16, -1, NULL, 0 },
	{ "malformed query", M("\x00\x05\x01\x00\x00\x01"), 5, -1, NULL, 0 },
};

START_TEST(test_build_reply)
{
	const struct bcase *c = &bcases[_i];
	uint8_t *q = dup_exact(c->query, c->qlen);
	uint8_t out[DNSMSG_UDP_MAX];
	size_t olen = 0;
	int rc = dnsmsg_build_reply(q, c->qlen, c->rcode, out, sizeof(out),
				    &olen);

	ck_assert_msg(rc == c->rc, "%s: %d", c->name, rc);
	if (rc == 0) {
		ck_assert_uint_eq(olen, c->wantlen);
		ck_assert_msg(memcmp(out, c->want, olen) == 0, "%s: bytes",
			      c->name);
		/* and the output is itself a well-formed message */
		ck_assert_int_eq(dnsmsg_walk_addrs(out, olen, collect,
						   &(struct seen){ 0 }),
				 0);
	}
	free(q);
}
END_TEST

START_TEST(test_build_reply_small_buffer)
{
	uint8_t *q = dup_exact(M(q_a));
	uint8_t out[DNSMSG_UDP_MAX];
	size_t olen;

	ck_assert_int_eq(dnsmsg_build_reply(q, sizeof(q_a) - 1, 5, out,
					    sizeof(q_a) - 2, &olen),
			 -1);
	ck_assert_int_eq(dnsmsg_build_reply(q, sizeof(q_a) - 1, 5, out,
					    sizeof(q_a) - 1, &olen),
			 0);
	ck_assert_int_eq(
		dnsmsg_build_reply(q, sizeof(q_a) - 1, 5, out, 11, &olen), -1);
	free(q);
}
END_TEST

START_TEST(test_build_answer)
{
	uint8_t *q = dup_exact(M(q_a));
	struct in_addr a[2];
	uint8_t out[DNSMSG_UDP_MAX];
	size_t olen, qlen = sizeof(q_a) - 1;
	struct dnsmsg m;
	struct seen s = { 0 };

	inet_pton(AF_INET, "198.51.100.10", &a[0]);
	inet_pton(AF_INET, "203.0.113.7", &a[1]);
	ck_assert_int_eq(dnsmsg_build_answer(q, qlen, 0, a, 2, 300, out,
					     sizeof(out), &olen),
			 0);
	ck_assert_uint_eq(olen, qlen + 32);
	ck_assert_int_eq(dnsmsg_parse(&m, out, olen), 0);
	ck_assert(m.hdr.qr && m.hdr.aa && m.hdr.rd && !m.hdr.ra && !m.hdr.tc);
	ck_assert_uint_eq(m.hdr.id, 0x1234);
	ck_assert_uint_eq(m.hdr.ancount, 2);
	ck_assert_str_eq(m.q.name, "www.Example.TEST");
	ck_assert_int_eq(memcmp(out + qlen,
				"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c"
				"\x00\x04\xc6\x33\x64\x0a",
				16),
			 0);
	ck_assert_int_eq(dnsmsg_walk_addrs(out, olen, collect, &s), 0);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_str_eq(s.a[0].addr, "198.51.100.10");
	ck_assert_str_eq(s.a[1].addr, "203.0.113.7");
	ck_assert_str_eq(s.a[1].owner, "www.Example.TEST");
	ck_assert_uint_eq(s.a[1].ttl, 300);
	free(q);
}
END_TEST

START_TEST(test_build_answer_nxdomain_and_tc)
{
	uint8_t *q = dup_exact(M(q_a)), *nq = dup_exact(M(q_noquestion));
	struct in_addr a[5] = { { 0 } };
	uint8_t out[DNSMSG_UDP_MAX];
	size_t olen, qlen = sizeof(q_a) - 1;
	struct dnsmsg m;

	ck_assert_int_eq(dnsmsg_build_answer(q, qlen, 3, NULL, 0, 300, out,
					     sizeof(out), &olen),
			 0);
	ck_assert_int_eq(dnsmsg_parse(&m, out, olen), 0);
	ck_assert(m.hdr.aa && m.hdr.rcode == 3 && m.hdr.ancount == 0);
	/* room for two of five records: TC */
	ck_assert_int_eq(dnsmsg_build_answer(q, qlen, 0, a, 5, 1, out,
					     qlen + 2 * 16 + 15, &olen),
			 0);
	ck_assert_uint_eq(olen, qlen + 32);
	ck_assert_int_eq(dnsmsg_parse(&m, out, olen), 0);
	ck_assert(m.hdr.tc && m.hdr.ancount == 2);
	/* records need a question to point to */
	ck_assert_int_eq(dnsmsg_build_answer(nq, 12, 0, a, 1, 1, out,
					     sizeof(out), &olen),
			 -1);
	ck_assert_int_eq(dnsmsg_build_answer(nq, 12, 0, a, 0, 1, out,
					     sizeof(out), &olen),
			 0);
	ck_assert_int_eq(dnsmsg_build_answer(q, qlen, 16, a, 0, 1, out,
					     sizeof(out), &olen),
			 -1);
	free(q);
	free(nq);
}
END_TEST

START_TEST(test_tcp_framing)
{
	uint8_t p[2];
	size_t n = 0;

	ck_assert_int_eq(dnsmsg_tcp_len("\x01\x02\x03", 3, &n), 0);
	ck_assert_uint_eq(n, 258);
	ck_assert_int_eq(dnsmsg_tcp_len("\x01", 1, &n), -1);
	ck_assert_int_eq(dnsmsg_tcp_prefix(p, 65535), 0);
	ck_assert(p[0] == 0xff && p[1] == 0xff);
	ck_assert_int_eq(dnsmsg_tcp_prefix(p, 512), 0);
	ck_assert(p[0] == 2 && p[1] == 0);
	ck_assert_int_eq(dnsmsg_tcp_prefix(p, 65536), -1);
}
END_TEST

START_TEST(test_mnemonics)
{
	ck_assert_str_eq(dnsmsg_type_str(28), "AAAA");
	ck_assert_ptr_null(dnsmsg_type_str(999));
	ck_assert_str_eq(dnsmsg_rcode_str(3), "NXDOMAIN");
	ck_assert_str_eq(dnsmsg_rcode_str(5), "REFUSED");
	ck_assert_ptr_null(dnsmsg_rcode_str(15));
}
END_TEST

/* Mutation ------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: reproducible without touching the libc generator */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Whatever parses must also reply, and the reply must parse back. */
static void exercise(const uint8_t *b, size_t n)
{
	static uint8_t out[DNSMSG_TCP_MAX];
	struct in_addr a[3] = { { 0x0100007f }, { 0 }, { 0xffffffff } };
	struct dnsmsg m, r;
	struct seen s = { 0 };
	size_t olen;
	int rc = dnsmsg_parse(&m, b, n);

	ck_assert_int_eq(dnsmsg_walk_addrs(b, n, collect, &s), rc);
	if (rc < 0) {
		ck_assert_int_eq(dnsmsg_build_reply(b, n, 5, out, sizeof(out),
						    &olen),
				 -1);
		return;
	}
	ck_assert_uint_lt(strlen(m.q.name), DNSMSG_NAME_STRMAX);
	ck_assert_uint_le(m.q_end, n);
	ck_assert_int_eq(dnsmsg_build_reply(b, n, 5, out, sizeof(out), &olen),
			 0);
	ck_assert_int_eq(dnsmsg_parse(&r, out, olen), 0);
	ck_assert_uint_eq(r.hdr.id, m.hdr.id);
	ck_assert_str_eq(r.q.name, m.q.name);
	if (m.has_question) {
		ck_assert_int_eq(dnsmsg_build_answer(b, n, 0, a, 3, 60, out,
						     DNSMSG_UDP_MAX, &olen),
				 0);
		ck_assert_int_eq(dnsmsg_walk_addrs(out, olen, collect, &s), 0);
	}
}

START_TEST(test_mutations)
{
	const struct pcase *c = &pcases[_i];
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)_i;

	if (c->rc != 0)
		return;
	for (int it = 0; it < 4000; it++) {
		uint64_t r = rng_next(&seed);
		size_t n = c->len;
		uint8_t *b;

		/* now and then cut or extend the message too */
		if (r % 8 == 0)
			n = r / 8 % (c->len + 8);
		b = malloc(n ? n : 1);
		ck_assert_ptr_nonnull(b);
		for (size_t i = 0; i < n; i++)
			b[i] = i < c->len ? (uint8_t)c->msg[i] :
					    (uint8_t)rng_next(&seed);
		for (unsigned f = 0; n && f < 1 + r % 4; f++) {
			uint64_t x = rng_next(&seed);
			if (x & 1)
				b[x / 2 % n] ^= (uint8_t)(1u << (x >> 40) % 8);
			else
				b[x / 2 % n] = (uint8_t)(x >> 32);
		}
		exercise(b, n);
		free(b);
	}
}
END_TEST

START_TEST(test_random_garbage)
{
	uint64_t seed = 0x2545f4914f6cdd1dull;

	for (int it = 0; it < 20000; it++) {
		size_t n = rng_next(&seed) % 96;
		uint8_t *b = malloc(n ? n : 1);

		ck_assert_ptr_nonnull(b);
		for (size_t i = 0; i < n; i++)
			b[i] = (uint8_t)rng_next(&seed);
		/* small counts make deeper parses likely */
		if (n >= 12) {
			b[4] = b[6] = b[8] = b[10] = 0;
			b[5] &= 3;
			b[7] &= 3;
			b[9] &= 1;
			b[11] &= 1;
		}
		exercise(b, n);
		free(b);
	}
}
END_TEST

Suite *dnsmsg_suite(void)
{
	Suite *s = suite_create("dnsmsg");
	TCase *parse = tcase_create("parse");
	TCase *build = tcase_create("build");
	TCase *fuzz = tcase_create("fuzz");

	tcase_add_loop_test(parse, test_parse_table, 0, ARRAY_SIZE(pcases));
	tcase_add_loop_test(parse, test_truncated_everywhere, 0,
			    ARRAY_SIZE(pcases));
	tcase_add_test(parse, test_walk_stops);
	tcase_add_test(parse, test_count_exceeds_data);
	tcase_add_test(parse, test_name_length_limit);
	tcase_add_test(parse, test_name_too_long_through_pointer);
	tcase_add_test(parse, test_pointer_hop_limit);
	suite_add_tcase(s, parse);

	tcase_add_loop_test(build, test_build_reply, 0, ARRAY_SIZE(bcases));
	tcase_add_test(build, test_build_reply_small_buffer);
	tcase_add_test(build, test_build_answer);
	tcase_add_test(build, test_build_answer_nxdomain_and_tc);
	tcase_add_test(build, test_tcp_framing);
	tcase_add_test(build, test_mnemonics);
	suite_add_tcase(s, build);

	tcase_add_loop_test(fuzz, test_mutations, 0, ARRAY_SIZE(pcases));
	tcase_add_test(fuzz, test_random_garbage);
	tcase_set_timeout(fuzz, 60);
	suite_add_tcase(s, fuzz);
	return s;
}
