/*
 * check_ctlookup.c - the two halves of a conntrack lookup without the
 * kernel: the request carries the REPLY tuple only (no ORIGINAL tuple for
 * the kernel to prefer), in network byte order; answers built by
 * libnetfilter_conntrack's own builder give the original addresses and
 * whether the destination was rewritten; kernel errors, foreign sequence
 * numbers, entries that are not the one asked for, and every truncation
 * of an answer are handled.  Real lookups run in tests/netns/test_nfqueue.sh.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdefs.h"
#include "ctlookup.h"
#include "suites.h"

union msgbuf {
	char buf[4096];
	struct nlmsghdr align;
};

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	ck_assert_int_eq(inet_pton(AF_INET, s, &a), 1);
	return a;
}

/* A REDIRECTed DNS query from a container: 172.17.0.2:40003 aimed at
 * 203.0.113.53:53, delivered to 172.17.0.1:8053. */
static const struct ctlookup_tuple redirected = {
	.proto = IPPROTO_UDP,
	.src = { 0x010011ac }, /* 172.17.0.1 */
	.dst = { 0x020011ac }, /* 172.17.0.2 */
	.sport = 8053,
	.dport = 40003,
};

/* ---- the request ---------------------------------------------------------- */

static int top_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type <= CTA_MAX)
		tb[type] = a;
	return MNL_CB_OK;
}

static int nest_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type < 8)
		tb[type] = a;
	return MNL_CB_OK;
}

START_TEST(test_request)
{
	union msgbuf m;
	const struct nlattr *top[CTA_MAX + 1] = { 0 }, *tup[8] = { 0 },
					   *ipa[8] = { 0 }, *pr[8] = { 0 };
	const struct nlmsghdr *nlh = &m.align;
	const struct nfgenmsg *nfg;
	size_t len = ctlookup_build_request(m.buf, sizeof(m), 77, &redirected);

	ck_assert_uint_gt(len, 0);
	ck_assert_uint_eq(len, nlh->nlmsg_len);
	ck_assert_uint_eq(nlh->nlmsg_type,
			  (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET);
	ck_assert_uint_eq(nlh->nlmsg_flags, NLM_F_REQUEST);
	ck_assert_uint_eq(nlh->nlmsg_seq, 77);
	nfg = mnl_nlmsg_get_payload(nlh);
	ck_assert_uint_eq(nfg->nfgen_family, AF_INET);
	ck_assert_int_eq(mnl_attr_parse(nlh, sizeof(*nfg), top_cb, top),
			 MNL_CB_OK);
	ck_assert_ptr_null(top[CTA_TUPLE_ORIG]);
	ck_assert_ptr_nonnull(top[CTA_TUPLE_REPLY]);
	ck_assert_int_eq(mnl_attr_parse_nested(top[CTA_TUPLE_REPLY], nest_cb,
					       tup),
			 MNL_CB_OK);
	ck_assert_ptr_nonnull(tup[CTA_TUPLE_IP]);
	ck_assert_ptr_nonnull(tup[CTA_TUPLE_PROTO]);
	mnl_attr_parse_nested(tup[CTA_TUPLE_IP], nest_cb, ipa);
	mnl_attr_parse_nested(tup[CTA_TUPLE_PROTO], nest_cb, pr);
	ck_assert_uint_eq(mnl_attr_get_u32(ipa[CTA_IP_V4_SRC]),
			  ip("172.17.0.1").s_addr);
	ck_assert_uint_eq(mnl_attr_get_u32(ipa[CTA_IP_V4_DST]),
			  ip("172.17.0.2").s_addr);
	ck_assert_uint_eq(mnl_attr_get_u8(pr[CTA_PROTO_NUM]), IPPROTO_UDP);
	ck_assert_uint_eq(mnl_attr_get_u16(pr[CTA_PROTO_SRC_PORT]),
			  htons(8053));
	ck_assert_uint_eq(mnl_attr_get_u16(pr[CTA_PROTO_DST_PORT]),
			  htons(40003));
	ck_assert_uint_eq(ctlookup_build_request(m.buf, 64, 1, &redirected), 0);
}
END_TEST

/* ---- answers -------------------------------------------------------------- */

/* An IPCTNL_MSG_CT_NEW for orig (os:osp -> od:odp) and reply
 * (rs:rsp -> rd:rdp), built by the library the way the kernel lays it out
 * (both tuples, then the status). */
static size_t ct_msg(union msgbuf *m, uint32_t seq, const char *os,
		     uint16_t osp, const char *od, uint16_t odp, const char *rs,
		     uint16_t rsp, const char *rd, uint16_t rdp)
{
	struct nf_conntrack *ct = nfct_new();
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	memset(m, 0, sizeof(*m));
	nlh = mnl_nlmsg_put_header(m->buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	ck_assert_ptr_nonnull(ct);
	nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_UDP);
	nfct_set_attr_u32(ct, ATTR_IPV4_SRC, ip(os).s_addr);
	nfct_set_attr_u32(ct, ATTR_IPV4_DST, ip(od).s_addr);
	nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(osp));
	nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(odp));
	nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, AF_INET);
	nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_UDP);
	nfct_set_attr_u32(ct, ATTR_REPL_IPV4_SRC, ip(rs).s_addr);
	nfct_set_attr_u32(ct, ATTR_REPL_IPV4_DST, ip(rd).s_addr);
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(rsp));
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(rdp));
	nfct_set_attr_u32(ct, ATTR_STATUS, IPS_CONFIRMED | IPS_DST_NAT);
	ck_assert_int_eq(nfct_nlmsg_build(nlh, ct), 0);
	nfct_destroy(ct);
	return nlh->nlmsg_len;
}

static size_t err_msg(union msgbuf *m, uint32_t seq, int error)
{
	struct nlmsghdr *nlh;
	struct nlmsgerr *e;

	memset(m, 0, sizeof(*m));
	nlh = mnl_nlmsg_put_header(m->buf);
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = seq;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = error;
	e->msg.nlmsg_seq = seq;
	return nlh->nlmsg_len;
}

/* The parser on an exact-length heap copy, so ASan sees overreads. */
static int answer(const union msgbuf *m, size_t len, uint32_t seq,
		  const struct ctlookup_tuple *t, struct ctlookup_result *r)
{
	void *b = malloc(len ? len : 1);
	int rc;

	ck_assert_ptr_nonnull(b);
	memcpy(b, m->buf, len);
	rc = ctlookup_parse_answer(b, len, seq, t, r);
	free(b);
	return rc;
}

static void ck_sin(const struct sockaddr_in *sa, const char *addr,
		   uint16_t port)
{
	ck_assert_uint_eq(sa->sin_family, AF_INET);
	ck_assert_uint_eq(sa->sin_addr.s_addr, ip(addr).s_addr);
	ck_assert_uint_eq(ntohs(sa->sin_port), port);
}

START_TEST(test_answer_redirected)
{
	union msgbuf m;
	struct ctlookup_result r;
	size_t len = ct_msg(&m, 9, "172.17.0.2", 40003, "203.0.113.53", 53,
			    "172.17.0.1", 8053, "172.17.0.2", 40003);

	ck_assert_int_eq(answer(&m, len, 9, &redirected, &r), 0);
	ck_sin(&r.orig_src, "172.17.0.2", 40003);
	ck_sin(&r.orig_dst, "203.0.113.53", 53);
	ck_assert(r.natted);
}
END_TEST

START_TEST(test_answer_direct)
{
	const struct ctlookup_tuple t = { .proto = IPPROTO_UDP,
					  .src = ip("127.0.0.1"),
					  .dst = ip("127.0.0.1"),
					  .sport = 8053,
					  .dport = 40002 };
	union msgbuf m;
	struct ctlookup_result r;
	size_t len = ct_msg(&m, 3, "127.0.0.1", 40002, "127.0.0.1", 8053,
			    "127.0.0.1", 8053, "127.0.0.1", 40002);

	ck_assert_int_eq(answer(&m, len, 3, &t, &r), 0);
	ck_sin(&r.orig_dst, "127.0.0.1", 8053);
	ck_assert(!r.natted);
}
END_TEST

/* Same address, other port: still rewritten. */
START_TEST(test_answer_port_only)
{
	const struct ctlookup_tuple t = { .proto = IPPROTO_UDP,
					  .src = ip("127.0.0.1"),
					  .dst = ip("127.0.0.1"),
					  .sport = 8053,
					  .dport = 40002 };
	union msgbuf m;
	struct ctlookup_result r;
	size_t len = ct_msg(&m, 3, "127.0.0.1", 40002, "127.0.0.1", 53,
			    "127.0.0.1", 8053, "127.0.0.1", 40002);

	ck_assert_int_eq(answer(&m, len, 3, &t, &r), 0);
	ck_assert(r.natted);
}
END_TEST

START_TEST(test_answer_refusals)
{
	union msgbuf m;
	struct ctlookup_result r;
	struct ctlookup_tuple other = redirected;
	size_t len = ct_msg(&m, 9, "172.17.0.2", 40003, "203.0.113.53", 53,
			    "172.17.0.1", 8053, "172.17.0.2", 40003);

	ck_assert_int_eq(answer(&m, len, 10, &redirected, &r),
			 CTLOOKUP_NOT_OURS);
	other.dport = 40004;
	ck_assert_int_eq(answer(&m, len, 9, &other, &r), -EBADMSG);
	/* the kernel also matches the ORIGINAL direction: not a reply */
	other = (struct ctlookup_tuple){ .proto = IPPROTO_UDP,
					 .src = ip("172.17.0.2"),
					 .dst = ip("203.0.113.53"),
					 .sport = 40003,
					 .dport = 53 };
	ck_assert_int_eq(answer(&m, len, 9, &other, &r), -ENOENT);
	other = redirected;
	other.proto = IPPROTO_TCP;
	ck_assert_int_eq(answer(&m, len, 9, &other, &r), -EBADMSG);
	ck_assert_int_eq(answer(&m, len - 4, 9, &redirected, &r), -EBADMSG);

	/* an entry with the reply tuple only: the request's own layout */
	len = ctlookup_build_request(m.buf, sizeof(m), 9, &redirected);
	m.align.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	ck_assert_int_eq(answer(&m, len, 9, &redirected, &r), -EBADMSG);
	/* a wrong message type with our sequence number is not an answer */
	m.align.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	ck_assert_int_eq(answer(&m, len, 9, &redirected, &r),
			 CTLOOKUP_NOT_OURS);

	len = err_msg(&m, 5, -ENOENT);
	ck_assert_int_eq(answer(&m, len, 5, &redirected, &r), -ENOENT);
	ck_assert_int_eq(answer(&m, len, 6, &redirected, &r),
			 CTLOOKUP_NOT_OURS);
	ck_assert_int_eq(answer(&m, len - 4, 5, &redirected, &r), -EBADMSG);
	len = err_msg(&m, 5, -EPERM);
	ck_assert_int_eq(answer(&m, len, 5, &redirected, &r), -EPERM);
	len = err_msg(&m, 5, 0);
	ck_assert_int_eq(answer(&m, len, 5, &redirected, &r),
			 CTLOOKUP_NOT_OURS);
	len = err_msg(&m, 5, 12345); /* not a -errno */
	ck_assert_int_eq(answer(&m, len, 5, &redirected, &r), -EBADMSG);
	ck_assert_int_eq(answer(&m, 8, 5, &redirected, &r), -EBADMSG);
}
END_TEST

/* Every shorter length of an answer: never a crash, and an accepted entry
 * is the right one. */
START_TEST(test_answer_truncations)
{
	union msgbuf m;
	size_t full = ct_msg(&m, 9, "172.17.0.2", 40003, "203.0.113.53", 53,
			     "172.17.0.1", 8053, "172.17.0.2", 40003);

	for (size_t cut = 0; cut < full; cut++) {
		union msgbuf t = m;
		struct ctlookup_result r;
		int rc;

		t.align.nlmsg_len = (uint32_t)cut;
		rc = answer(&t, MNL_ALIGN(cut) <= full ? MNL_ALIGN(cut) : full,
			    9, &redirected, &r);
		ck_assert(rc == 0 || rc == -EBADMSG);
		if (rc == 0)
			ck_sin(&r.orig_dst, "203.0.113.53", 53);
	}
}
END_TEST

Suite *ctlookup_suite(void)
{
	Suite *s = suite_create("ctlookup");
	TCase *tc = tcase_create("messages");

	tcase_add_test(tc, test_request);
	tcase_add_test(tc, test_answer_redirected);
	tcase_add_test(tc, test_answer_direct);
	tcase_add_test(tc, test_answer_port_only);
	tcase_add_test(tc, test_answer_refusals);
	tcase_add_test(tc, test_answer_truncations);
	suite_add_tcase(s, tc);
	return s;
}
