/*
 * ctlookup.c - conntrack lookups by reply tuple over ctnetlink.
 *
 * The kernel's IPCTNL_MSG_CT_GET takes either tuple, and prefers
 * CTA_TUPLE_ORIG when both are present.  libnetfilter_conntrack 1.0.9's
 * nfct_nlmsg_build and nfct_query always emit an ORIGINAL tuple (an empty
 * one when only the reply side is set), which turns a reply-tuple lookup
 * into a lookup of 0.0.0.0:0 -> 0.0.0.0:0; so the request is built here
 * with libmnl, and only the answer goes through the library's parser.
 *
 * The kernel looks the tuple up in its hash of both directions, so a REPLY
 * tuple that is some entry's ORIGINAL tuple finds that entry: the answer is
 * checked, and such a match is reported as ENOENT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ctlookup.h"
#include "util.h"

#define CT_GET_TYPE ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET)
#define CT_NEW_TYPE ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW)
/* An entry with every extension is well under this. */
#define CT_BUFSIZE 16384

struct ctlookup {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	char *buf;
};

/* ---- pure halves ---------------------------------------------------------- */

size_t ctlookup_build_request(void *buf, size_t size, uint32_t seq,
			      const struct ctlookup_tuple *t)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	struct nlattr *tuple, *nest;
	/* nlmsghdr, nfgenmsg, then three nests holding 2 addresses, a
	 * protocol and 2 ports: 92 bytes. */
	const size_t need = 128;

	if (size < need)
		return 0;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = CT_GET_TYPE;
	/* No NLM_F_ACK: the answer is the entry or an error, one message. */
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_REPLY);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, t->src.s_addr);
	mnl_attr_put_u32(nlh, CTA_IP_V4_DST, t->dst.s_addr);
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, t->proto);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t->sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t->dport));
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, tuple);
	return nlh->nlmsg_len;
}

static bool ct_has(const struct nf_conntrack *ct,
		   const enum nf_conntrack_attr *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (nfct_attr_is_set(ct, a[i]) <= 0)
			return false;
	return true;
}

static void ct_sin(struct sockaddr_in *sa, uint32_t addr, uint16_t port_be)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = addr;
	sa->sin_port = port_be;
}

/* Whether one direction of ct (its four attributes) is tuple t. */
static bool ct_tuple_is(const struct nf_conntrack *ct,
			enum nf_conntrack_attr src, enum nf_conntrack_attr dst,
			enum nf_conntrack_attr sport,
			enum nf_conntrack_attr dport,
			const struct ctlookup_tuple *t)
{
	return nfct_get_attr_u32(ct, src) == t->src.s_addr &&
	       nfct_get_attr_u32(ct, dst) == t->dst.s_addr &&
	       nfct_get_attr_u16(ct, sport) == htons(t->sport) &&
	       nfct_get_attr_u16(ct, dport) == htons(t->dport);
}

/* Reads the entry into *r, checking that it is the one asked for. */
static int ct_entry(const struct nf_conntrack *ct,
		    const struct ctlookup_tuple *t, struct ctlookup_result *r)
{
	static const enum nf_conntrack_attr need[] = {
		ATTR_ORIG_L4PROTO,  ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST,
		ATTR_ORIG_PORT_SRC, ATTR_ORIG_PORT_DST, ATTR_REPL_IPV4_SRC,
		ATTR_REPL_IPV4_DST, ATTR_REPL_PORT_SRC, ATTR_REPL_PORT_DST,
	};

	if (!ct_has(ct, need, ARRAY_SIZE(need)) ||
	    nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != t->proto)
		return -EBADMSG;
	/* The kernel finds an entry by either of its tuples whichever
	 * attribute carried ours: a match on the ORIGINAL side means no flow
	 * has this REPLY tuple. */
	if (!ct_tuple_is(ct, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV4_DST,
			 ATTR_REPL_PORT_SRC, ATTR_REPL_PORT_DST, t))
		return ct_tuple_is(ct, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST,
				   ATTR_ORIG_PORT_SRC, ATTR_ORIG_PORT_DST, t) ?
			       -ENOENT :
			       -EBADMSG;
	ct_sin(&r->orig_src, nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_SRC),
	       nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
	ct_sin(&r->orig_dst, nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST),
	       nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	/* The client aimed at orig_dst and reached reply_src: whether they
	 * differ is exactly whether the destination was rewritten. */
	r->natted = r->orig_dst.sin_addr.s_addr != t->src.s_addr ||
		    r->orig_dst.sin_port != htons(t->sport);
	return 0;
}

int ctlookup_parse_answer(const struct nlmsghdr *nlh, size_t len, uint32_t seq,
			  const struct ctlookup_tuple *t,
			  struct ctlookup_result *r)
{
	const struct nlmsgerr *e;
	struct nf_conntrack *ct;
	int rc;

	if (len < sizeof(*nlh) || nlh->nlmsg_len < NLMSG_HDRLEN ||
	    MNL_ALIGN((size_t)nlh->nlmsg_len) > len)
		return -EBADMSG;
	if (nlh->nlmsg_seq != seq)
		return CTLOOKUP_NOT_OURS;
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		e = mnl_nlmsg_get_payload(nlh);
		if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
			return -EBADMSG;
		/* an acknowledgement we did not ask for says nothing */
		if (e->error == 0)
			return CTLOOKUP_NOT_OURS;
		return e->error < 0 && e->error > -4096 ? e->error : -EBADMSG;
	}
	if (nlh->nlmsg_type != CT_NEW_TYPE ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nfgenmsg))
		return nlh->nlmsg_type == CT_NEW_TYPE ? -EBADMSG :
							CTLOOKUP_NOT_OURS;
	ct = nfct_new();
	if (!ct)
		return -ENOMEM;
	rc = nfct_nlmsg_parse(nlh, ct) < 0 ? -EBADMSG : ct_entry(ct, t, r);
	nfct_destroy(ct);
	return rc;
}

/* ---- the socket ----------------------------------------------------------- */

ctlookup_t *ctlookup_open(char **err)
{
	ctlookup_t *c = util_xcalloc(1, sizeof(*c));
	char msg[256];

	*err = NULL;
	c->nl = mnl_socket_open2(NETLINK_NETFILTER,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!c->nl || mnl_socket_bind(c->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(msg, sizeof(msg), "conntrack netlink socket: %s",
			 strerror(errno));
		*err = util_xstrdup(msg);
		ctlookup_close(c);
		return NULL;
	}
	c->portid = mnl_socket_get_portid(c->nl);
	c->seq = (uint32_t)time(NULL);
	c->buf = util_xcalloc(1, CT_BUFSIZE + NLMSG_ALIGNTO);
	return c;
}

void ctlookup_close(ctlookup_t *c)
{
	if (!c)
		return;
	if (c->nl)
		mnl_socket_close(c->nl);
	free(c->buf);
	free(c);
}

/* One datagram from the kernel, waiting until deadline.  Returns its length
 * or a -errno.  The kernel answers a GET while it handles the request, so
 * the answer is usually queued already: poll only when it is not. */
static ssize_t ct_recv(ctlookup_t *c, double deadline)
{
	int fd = mnl_socket_get_fd(c->nl);
	bool wait = false;

	for (;;) {
		struct sockaddr_nl from;
		struct iovec iov = { .iov_base = c->buf,
				     .iov_len = CT_BUFSIZE };
		struct msghdr msg = { .msg_name = &from,
				      .msg_namelen = sizeof(from),
				      .msg_iov = &iov,
				      .msg_iovlen = 1 };
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		double left = deadline - util_mono_now();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		/* rounded up: poll must not wake just before the deadline */
		if (wait && poll(&pfd, 1, (int)(left * 1000) + 1) < 0 &&
		    errno != EINTR)
			return -errno;
		n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				wait = errno == EAGAIN;
				continue;
			}
			return -errno;
		}
		if (msg.msg_flags & MSG_TRUNC)
			return -EMSGSIZE;
		/* only the kernel's answers count */
		if (msg.msg_namelen == sizeof(from) && from.nl_pid == 0)
			return n;
	}
}

static int ct_lookup(ctlookup_t *c, const struct ctlookup_tuple *t,
		     struct ctlookup_result *r)
{
	union {
		char buf[256];
		struct nlmsghdr align;
	} req;
	double deadline = util_mono_now() + CTLOOKUP_TIMEOUT_MS / 1000.0;
	uint32_t seq = ++c->seq;
	size_t len = ctlookup_build_request(req.buf, sizeof(req), seq, t);

	if (mnl_socket_sendto(c->nl, req.buf, len) < 0)
		return -errno;
	/* Answers to earlier requests that timed out may still be queued:
	 * they carry other sequence numbers and are skipped. */
	for (;;) {
		ssize_t n = ct_recv(c, deadline);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)c->buf;
		int rem = (int)n;
		size_t pad;

		if (n < 0)
			return (int)n;
		/* room for the last message's padding, zeroed (see
		 * ctlookup_parse_answer) */
		pad = MNL_ALIGN((size_t)n) - (size_t)n;
		memset(c->buf + n, 0, pad);
		for (; mnl_nlmsg_ok(nlh, rem);
		     nlh = mnl_nlmsg_next(nlh, &rem)) {
			int rc = ctlookup_parse_answer(nlh, (size_t)rem + pad,
						       seq, t, r);

			if (rc != CTLOOKUP_NOT_OURS)
				return rc;
		}
	}
}

int ctlookup_orig(ctlookup_t *c, uint8_t proto, struct in_addr reply_src,
		  uint16_t reply_sport, struct in_addr reply_dst,
		  uint16_t reply_dport, struct sockaddr_in *orig_src,
		  struct sockaddr_in *orig_dst, bool *natted)
{
	const struct ctlookup_tuple t = { .proto = proto,
					  .src = reply_src,
					  .dst = reply_dst,
					  .sport = reply_sport,
					  .dport = reply_dport };
	struct ctlookup_result r;
	int rc;

	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return -EINVAL;
	rc = ct_lookup(c, &t, &r);
	if (rc == 0) {
		*orig_src = r.orig_src;
		*orig_dst = r.orig_dst;
		*natted = r.natted;
	}
	return rc;
}
