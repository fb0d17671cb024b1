/*
 * check_nfqueue.c - validation of one NFQUEUE packet message
 * (nfqueue_parse): a table of hand-built messages (complete ones, with the
 * kernel's unpadded length, and broken ones: missing or mis-sized packet
 * header, absent or short payload, payloads that are not IPv4, attributes
 * of the wrong size, truncated, overlong or trailing bytes, wrong message
 * type or length), every truncation of a good message, and a mutation loop
 * that must never crash under ASan/UBSan.  The socket side runs in
 * tests/netns/test_nfqueue.sh.
 *
 * Every message is copied to a heap buffer of exactly the length handed to
 * the parser, so that ASan sees any read past it.
 */
#include <arpa/inet.h>
#include <check.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdefs.h"
#include "nfqueue.h"
#include "suites.h"

#define PKT_TYPE ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)

/* A message under construction. */
union msgbuf {
	char buf[1024];
	struct nlmsghdr align;
};

static struct nlmsghdr *msg_begin(union msgbuf *m, uint16_t type)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	memset(m->buf, 0, sizeof(m->buf));
	nlh = mnl_nlmsg_put_header(m->buf);
	nlh->nlmsg_type = type;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(7);
	return nlh;
}

static void put_hdr(struct nlmsghdr *nlh, uint32_t id, uint8_t hook,
		    size_t size)
{
	uint8_t raw[16] = { 0 };
	struct nfqnl_msg_packet_hdr ph = { .packet_id = htonl(id),
					   .hw_protocol = htons(ETH_P_IP),
					   .hook = hook };

	memcpy(raw, &ph, sizeof(ph));
	mnl_attr_put(nlh, NFQA_PACKET_HDR, size, raw);
}

/* A 28-byte IPv4/UDP packet 10.0.0.2:40000 -> 203.0.113.10:9999, with
 * extra zero bytes of UDP payload. */
static void put_udp(struct nlmsghdr *nlh, size_t extra)
{
	uint8_t pkt[256] = { 0x45, 0,  0,   0,	0,    0,    0x40, 0,
			     64,   17, 0,   0,	10,   0,    0,	  2,
			     203,  0,  113, 10, 0x9c, 0x40, 0x27, 0x0f };

	ck_assert_uint_le(28 + extra, sizeof(pkt));
	pkt[3] = (uint8_t)(28 + extra);
	mnl_attr_put(nlh, NFQA_PAYLOAD, 28 + extra, pkt);
}

/* Drops the padding after the last attribute from nlmsg_len, as the
 * kernel does. */
static void unpad(struct nlmsghdr *nlh, size_t last_payload)
{
	nlh->nlmsg_len -= (uint32_t)(MNL_ALIGN(last_payload) - last_payload);
}

static enum nfqueue_parse_rc parse_copy(const void *msg, size_t len,
					struct nfqueue_pkt *p, uint8_t **keep)
{
	uint8_t *b = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(b);
	memcpy(b, msg, len);
	*keep = b;
	return nfqueue_parse((const struct nlmsghdr *)b, len, p);
}

/* ---- the table ------------------------------------------------------------ */

struct pcase {
	const char *name;
	/* builds the message; returns the length handed to the parser */
	size_t (*build)(union msgbuf *m);
	enum nfqueue_parse_rc want;
	uint32_t id; /* for OK and DROP */
};

static size_t b_full(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 42, NF_INET_LOCAL_OUT,
		sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put_u32(nlh, NFQA_MARK, htonl(0x40000000));
	mnl_attr_put_u32(nlh, NFQA_IFINDEX_OUTDEV, htonl(5));
	mnl_attr_put_u32(nlh, NFQA_UID, htonl(1000));
	mnl_attr_put_u32(nlh, NFQA_GID, htonl(1000));
	put_udp(nlh, 0);
	return nlh->nlmsg_len;
}

static size_t b_kernel_unpadded(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 43, NF_INET_PRE_ROUTING,
		sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put_u32(nlh, NFQA_IFINDEX_INDEV, htonl(3));
	put_udp(nlh, 1); /* 29 bytes: 3 of padding */
	unpad(nlh, 29);
	return MNL_ALIGN(nlh->nlmsg_len);
}

static size_t b_minimal(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 44, NF_INET_LOCAL_OUT,
		sizeof(struct nfqnl_msg_packet_hdr));
	put_udp(nlh, 0);
	return nlh->nlmsg_len;
}

static size_t b_unknown_attr(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 45, NF_INET_LOCAL_OUT,
		sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put_u32(nlh, NFQA_MAX + 20, 7); /* a newer kernel's */
	put_udp(nlh, 0);
	return nlh->nlmsg_len;
}

static size_t b_no_hdr(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	mnl_attr_put_u32(nlh, NFQA_MARK, htonl(1));
	put_udp(nlh, 0);
	return nlh->nlmsg_len;
}

static size_t b_hdr_short(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 46, 3, sizeof(struct nfqnl_msg_packet_hdr) - 1);
	put_udp(nlh, 0);
	return nlh->nlmsg_len;
}

static size_t b_hdr_long(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 47, 3, sizeof(struct nfqnl_msg_packet_hdr) + 1);
	put_udp(nlh, 0);
	return nlh->nlmsg_len;
}

static size_t b_no_payload(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 48, 3, sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put_u32(nlh, NFQA_MARK, htonl(1));
	return nlh->nlmsg_len;
}

static size_t b_payload_19(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);
	uint8_t pkt[19] = { 0x45 };

	put_hdr(nlh, 49, 3, sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(pkt), pkt);
	return nlh->nlmsg_len;
}

static size_t b_payload_empty(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 50, 3, sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put(nlh, NFQA_PAYLOAD, 0, NULL);
	return nlh->nlmsg_len;
}

static size_t b_payload_ipv6(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);
	uint8_t pkt[48] = { 0x60 };

	put_hdr(nlh, 51, 3, sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(pkt), pkt);
	return nlh->nlmsg_len;
}

static size_t b_ihl_small(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);
	uint8_t pkt[28] = { 0x44 };

	put_hdr(nlh, 52, 3, sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(pkt), pkt);
	return nlh->nlmsg_len;
}

static size_t b_ihl_big(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);
	uint8_t pkt[40] = { 0x4f }; /* 60-byte header in 40 bytes */

	put_hdr(nlh, 53, 3, sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(pkt), pkt);
	return nlh->nlmsg_len;
}

static size_t b_mark_short(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 54, 3, sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put_u16(nlh, NFQA_MARK, 1);
	put_udp(nlh, 0);
	return nlh->nlmsg_len;
}

static size_t b_uid_long(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 55, 3, sizeof(struct nfqnl_msg_packet_hdr));
	mnl_attr_put_u64(nlh, NFQA_UID, 1000);
	put_udp(nlh, 0);
	return nlh->nlmsg_len;
}

static size_t b_payload_cut(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 56, 3, sizeof(struct nfqnl_msg_packet_hdr));
	put_udp(nlh, 12);
	nlh->nlmsg_len -= 8; /* the payload attribute says 8 more */
	return nlh->nlmsg_len;
}

/* The payload attribute claims the padding that nlmsg_len leaves out. */
static size_t b_payload_into_pad(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);
	struct nlattr *pl;

	put_hdr(nlh, 57, 3, sizeof(struct nfqnl_msg_packet_hdr));
	pl = mnl_nlmsg_get_payload_tail(nlh);
	put_udp(nlh, 1);
	unpad(nlh, 29);
	pl->nla_len += 2;
	return MNL_ALIGN(nlh->nlmsg_len);
}

static size_t b_trailing(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);

	put_hdr(nlh, 58, 3, sizeof(struct nfqnl_msg_packet_hdr));
	put_udp(nlh, 0);
	nlh->nlmsg_len += 3; /* three stray bytes, too few for an attribute */
	return MNL_ALIGN(nlh->nlmsg_len);
}

static size_t b_zero_attr(union msgbuf *m)
{
	struct nlmsghdr *nlh = msg_begin(m, PKT_TYPE);
	struct nlattr *z;

	put_hdr(nlh, 59, 3, sizeof(struct nfqnl_msg_packet_hdr));
	z = mnl_nlmsg_get_payload_tail(nlh);
	mnl_attr_put_u32(nlh, NFQA_MARK, 0);
	z->nla_len = 0; /* stops the walk: the payload after it is lost */
	put_udp(nlh, 0);
	return nlh->nlmsg_len;
}

static size_t b_wrong_type(union msgbuf *m)
{
	struct nlmsghdr *nlh =
		msg_begin(m, (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT);

	put_hdr(nlh, 60, 3, sizeof(struct nfqnl_msg_packet_hdr));
	put_udp(nlh, 0);
	return nlh->nlmsg_len;
}

static size_t b_len_past_buffer(union msgbuf *m)
{
	size_t n = b_minimal(m);

	((struct nlmsghdr *)m->buf)->nlmsg_len += 4;
	return n;
}

static size_t b_len_below_header(union msgbuf *m)
{
	size_t n = b_minimal(m);

	((struct nlmsghdr *)m->buf)->nlmsg_len = NLMSG_HDRLEN + 2;
	return n;
}

static size_t b_tiny(union msgbuf *m)
{
	b_minimal(m);
	return 8;
}

/* Unpadded, but the caller's buffer ends at nlmsg_len: the padding the
 * walk may reach is not there, so the message is refused. */
static size_t b_unpadded_no_room(union msgbuf *m)
{
	b_kernel_unpadded(m);
	return ((struct nlmsghdr *)m->buf)->nlmsg_len;
}

static const struct pcase pcases[] = {
	{ "complete", b_full, NFQUEUE_PARSE_OK, 42 },
	{ "kernel's unpadded length", b_kernel_unpadded, NFQUEUE_PARSE_OK, 43 },
	{ "header and payload only", b_minimal, NFQUEUE_PARSE_OK, 44 },
	{ "unknown attribute skipped", b_unknown_attr, NFQUEUE_PARSE_OK, 45 },
	{ "no packet header", b_no_hdr, NFQUEUE_PARSE_BAD, 0 },
	{ "packet header 6 bytes", b_hdr_short, NFQUEUE_PARSE_BAD, 0 },
	{ "packet header 8 bytes", b_hdr_long, NFQUEUE_PARSE_BAD, 0 },
	{ "no payload", b_no_payload, NFQUEUE_PARSE_DROP, 48 },
	{ "payload of 19 bytes", b_payload_19, NFQUEUE_PARSE_DROP, 49 },
	{ "empty payload", b_payload_empty, NFQUEUE_PARSE_DROP, 50 },
	{ "IPv6 payload", b_payload_ipv6, NFQUEUE_PARSE_DROP, 51 },
	{ "IHL below 5", b_ihl_small, NFQUEUE_PARSE_DROP, 52 },
	{ "IHL past the payload", b_ihl_big, NFQUEUE_PARSE_DROP, 53 },
	{ "mark of 2 bytes", b_mark_short, NFQUEUE_PARSE_DROP, 54 },
	{ "uid of 8 bytes", b_uid_long, NFQUEUE_PARSE_DROP, 55 },
	{ "payload attribute cut", b_payload_cut, NFQUEUE_PARSE_DROP, 56 },
	{ "payload into the padding", b_payload_into_pad, NFQUEUE_PARSE_DROP,
	  57 },
	{ "trailing bytes", b_trailing, NFQUEUE_PARSE_DROP, 58 },
	{ "zero-length attribute", b_zero_attr, NFQUEUE_PARSE_DROP, 59 },
	{ "verdict message", b_wrong_type, NFQUEUE_PARSE_BAD, 0 },
	{ "nlmsg_len past the buffer", b_len_past_buffer, NFQUEUE_PARSE_BAD,
	  0 },
	{ "nlmsg_len below the headers", b_len_below_header, NFQUEUE_PARSE_BAD,
	  0 },
	{ "8 bytes", b_tiny, NFQUEUE_PARSE_BAD, 0 },
	{ "unpadded, no room for padding", b_unpadded_no_room,
	  NFQUEUE_PARSE_BAD, 0 },
};

START_TEST(test_parse_table)
{
	const struct pcase *c = &pcases[_i];
	union msgbuf m;
	struct nfqueue_pkt p;
	size_t len = c->build(&m);
	uint8_t *b;
	enum nfqueue_parse_rc rc = parse_copy(m.buf, len, &p, &b);

	ck_assert_msg(rc == c->want, "%s: got %d, want %d", c->name, rc,
		      c->want);
	if (rc != NFQUEUE_PARSE_BAD)
		ck_assert_uint_eq(p.id, c->id);
	if (rc == NFQUEUE_PARSE_OK) {
		ck_assert_ptr_nonnull(p.data);
		ck_assert_uint_ge(p.len, 20);
		ck_assert(p.data >= b && p.data + p.len <= b + len);
		ck_assert_uint_eq(p.data[0], 0x45);
	}
	free(b);
}
END_TEST

START_TEST(test_parse_fields)
{
	union msgbuf m;
	struct nfqueue_pkt p;
	uint8_t *b;

	ck_assert_int_eq(parse_copy(m.buf, b_full(&m), &p, &b),
			 NFQUEUE_PARSE_OK);
	ck_assert_uint_eq(p.id, 42);
	ck_assert_uint_eq(p.hook, NF_INET_LOCAL_OUT);
	ck_assert_uint_eq(p.mark, 0x40000000);
	ck_assert_uint_eq(p.indev, 0);
	ck_assert_uint_eq(p.outdev, 5);
	ck_assert(p.has_uid);
	ck_assert_uint_eq(p.uid, 1000);
	ck_assert_uint_eq(p.len, 28);
	ck_assert_uint_eq(p.data[9], 17);
	free(b);

	ck_assert_int_eq(parse_copy(m.buf, b_kernel_unpadded(&m), &p, &b),
			 NFQUEUE_PARSE_OK);
	ck_assert_uint_eq(p.hook, NF_INET_PRE_ROUTING);
	ck_assert_uint_eq(p.indev, 3);
	ck_assert_uint_eq(p.outdev, 0);
	ck_assert_uint_eq(p.mark, 0);
	ck_assert(!p.has_uid);
	ck_assert_uint_eq(p.len, 29);
	free(b);
}
END_TEST

/* Every shorter nlmsg_len of a good message (payload last) is refused; the
 * buffer stays the whole message so only the length lies. */
START_TEST(test_parse_truncations)
{
	union msgbuf m;
	struct nfqueue_pkt p;
	size_t full = b_full(&m);

	for (size_t cut = 0; cut < full; cut++) {
		union msgbuf t = m;
		uint8_t *b;
		enum nfqueue_parse_rc rc;

		((struct nlmsghdr *)t.buf)->nlmsg_len = (uint32_t)cut;
		rc = parse_copy(t.buf, full, &p, &b);
		ck_assert_msg(rc != NFQUEUE_PARSE_OK, "cut at %zu accepted",
			      cut);
		if (rc == NFQUEUE_PARSE_DROP)
			ck_assert_uint_eq(p.id, 42);
		free(b);
		/* and with the buffer ending there too */
		rc = parse_copy(t.buf, cut, &p, &b);
		ck_assert(rc != NFQUEUE_PARSE_OK);
		free(b);
	}
}
END_TEST

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Random byte changes to good messages: never a crash, and an accepted
 * packet always lies inside the buffer. */
START_TEST(test_parse_mutations)
{
	size_t (*const seeds[])(union msgbuf *) = { b_full, b_kernel_unpadded,
						    b_minimal };
	uint64_t rng = 0x6e6671u;

	for (int i = 0; i < 30000; i++) {
		union msgbuf m;
		struct nfqueue_pkt p;
		size_t len = seeds[i % ARRAY_SIZE(seeds)](&m);
		int flips = 1 + (int)(rng_next(&rng) % 4);
		uint8_t *b;

		for (int f = 0; f < flips; f++) {
			uint64_t r = rng_next(&rng);

			m.buf[r % len] = (char)(r >> 32);
		}
		if (rng_next(&rng) % 4 == 0)
			len = (size_t)(rng_next(&rng) % (len + 1));
		if (parse_copy(m.buf, len, &p, &b) == NFQUEUE_PARSE_OK) {
			ck_assert(p.data >= b && p.data + p.len <= b + len);
			ck_assert_uint_ge(p.len, 20);
		}
		free(b);
	}
}
END_TEST

Suite *nfqueue_suite(void)
{
	Suite *s = suite_create("nfqueue");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_parse_table, 0, ARRAY_SIZE(pcases));
	tcase_add_test(tc, test_parse_fields);
	tcase_add_test(tc, test_parse_truncations);
	tcase_add_test(tc, test_parse_mutations);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
