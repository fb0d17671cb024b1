/*
 * nfqueue.c - the NFQUEUE consumer: one netlink socket per queue, read from
 * a libevent loop, one verdict per packet.
 *
 * Messages are built with libnetfilter_queue's nfq_nlmsg_* helpers and
 * read with plain recvmsg(2) on a non-blocking socket, so the sender can
 * be checked (only the kernel, netlink port 0, is believed) and nothing
 * ever blocks the loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "nfqueue.h"
#include "util.h"

#define NQ_PACKET_TYPE ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)
/* How long nfqueue_open waits for the kernel to acknowledge the bind. */
#define NQ_ACK_TIMEOUT_MS 2000
/* Distinct problems reported on stderr; later ones are only counted. */
#define NQ_LOGGED_MAX 32

/* What went wrong, for the once-per-kind messages. */
enum nq_problem {
	NQ_P_RECV, /* recvmsg failed */
	NQ_P_SEND, /* a verdict could not be sent */
	NQ_P_NLERR, /* the kernel answered a message with an error */
	NQ_P_FOREIGN, /* a datagram not sent by the kernel */
	NQ_P_TRUNC, /* a message longer than the buffer */
	NQ_P_MALFORMED, /* a packet message that failed validation */
	NQ_P_MAX,
};

static const char *const nq_problem_str[NQ_P_MAX] = {
	[NQ_P_RECV] = "read",
	[NQ_P_SEND] = "verdict",
	[NQ_P_NLERR] = "kernel error",
	[NQ_P_FOREIGN] = "message not from the kernel",
	[NQ_P_TRUNC] = "truncated message",
	[NQ_P_MALFORMED] = "malformed packet message",
};

struct nfqueue {
	struct mnl_socket *nl;
	struct event *ev;
	uint16_t queue_num;
	uint32_t seq;
	nfqueue_cb cb;
	void *arg;
	bool ready; /* open finished: packets go to cb */
	/* One whole packet message: payload up to 0xffff and its attributes
	 * (STYLE F.23), plus room for the alignment of a last message. */
	char *buf;
	size_t bufsize;
	/* The packet the callback is handling. */
	bool in_cb, cur_tried, cur_done;
	uint32_t cur_id;
	struct nfqueue_stats st;
	struct {
		enum nq_problem what;
		int err;
	} logged[NQ_LOGGED_MAX];
	unsigned nlogged;
};

/* ---- parsing (pure) ------------------------------------------------------- */

/*
 * Whether the attributes after the nfgenmsg cover the message exactly: a
 * truncated or overlong attribute leaves a gap that the walk stops at.  The
 * kernel does not count the padding after the last attribute in nlmsg_len,
 * and libmnl walks up to the aligned end, so an attribute must also end
 * within nlmsg_len itself.
 */
static bool nq_attrs_tile(const struct nlmsghdr *nlh)
{
	const char *lim = (const char *)nlh + nlh->nlmsg_len;
	const char *tail = mnl_nlmsg_get_payload_tail(nlh);
	const char *end =
		mnl_nlmsg_get_payload_offset(nlh, sizeof(struct nfgenmsg));
	struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if ((const char *)a + a->nla_len > lim)
			return false;
		end = (const char *)mnl_attr_next(a);
	}
	return end == tail;
}

/* A 32-bit attribute that must be exactly that size when present. */
static bool nq_get_u32(const struct nlattr *a, uint32_t *v)
{
	uint32_t be;

	if (!a)
		return true;
	if (mnl_attr_get_payload_len(a) != sizeof(be))
		return false;
	memcpy(&be, mnl_attr_get_payload(a), sizeof(be));
	*v = ntohl(be);
	return true;
}

/* The payload must start with a plausible IPv4 header: IPv6 packets queued
 * to the same number by an ip6tables rule are refused here too. */
static bool nq_ipv4_ok(const uint8_t *d, size_t len)
{
	size_t ihl;

	if (len < sizeof(struct iphdr) || d[0] >> 4 != 4)
		return false;
	ihl = (size_t)(d[0] & 0x0f) * 4;
	return ihl >= sizeof(struct iphdr) && ihl <= len;
}

enum nfqueue_parse_rc nfqueue_parse(const struct nlmsghdr *nlh, size_t len,
				    struct nfqueue_pkt *p)
{
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	struct nfqnl_msg_packet_hdr ph;
	const struct nlattr *pl;
	int parsed;

	memset(p, 0, sizeof(*p));
	if (len < sizeof(*nlh) ||
	    nlh->nlmsg_len <
		    NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)) ||
	    MNL_ALIGN((size_t)nlh->nlmsg_len) > len ||
	    nlh->nlmsg_type != NQ_PACKET_TYPE)
		return NFQUEUE_PARSE_BAD;
	/* Fills attr[] with what validated before any failure.  An attribute
	 * reaching into the padding is caught by nq_attrs_tile below. */
	parsed = nfq_nlmsg_parse(nlh, attr);
	if (!attr[NFQA_PACKET_HDR] ||
	    mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) != sizeof(ph) ||
	    (const char *)attr[NFQA_PACKET_HDR] +
			    attr[NFQA_PACKET_HDR]->nla_len >
		    (const char *)nlh + nlh->nlmsg_len)
		return NFQUEUE_PARSE_BAD;
	memcpy(&ph, mnl_attr_get_payload(attr[NFQA_PACKET_HDR]), sizeof(ph));
	p->id = ntohl(ph.packet_id);
	p->hook = ph.hook;
	/* From here on the kernel holds a packet under p->id: anything
	 * wrong drops it rather than leaving it in the queue. */
	if (parsed < 0 || !nq_attrs_tile(nlh))
		return NFQUEUE_PARSE_DROP;
	if (!nq_get_u32(attr[NFQA_MARK], &p->mark) ||
	    !nq_get_u32(attr[NFQA_IFINDEX_INDEV], &p->indev) ||
	    !nq_get_u32(attr[NFQA_IFINDEX_OUTDEV], &p->outdev) ||
	    !nq_get_u32(attr[NFQA_UID], &p->uid))
		return NFQUEUE_PARSE_DROP;
	p->has_uid = attr[NFQA_UID] != NULL;
	pl = attr[NFQA_PAYLOAD];
	if (!pl)
		return NFQUEUE_PARSE_DROP;
	p->data = mnl_attr_get_payload(pl);
	p->len = mnl_attr_get_payload_len(pl);
	if (!nq_ipv4_ok(p->data, p->len))
		return NFQUEUE_PARSE_DROP;
	return NFQUEUE_PARSE_OK;
}

/* ---- errors --------------------------------------------------------------- */

/* Counts a problem and reports each (kind, errno) once on stderr, so a
 * persistent failure cannot flood the log. */
static void nq_problem(nfqueue_t *q, enum nq_problem what, int err)
{
	q->st.errors += what != NQ_P_MALFORMED;
	for (unsigned i = 0; i < q->nlogged; i++)
		if (q->logged[i].what == what && q->logged[i].err == err)
			return;
	if (q->nlogged == NQ_LOGGED_MAX)
		return;
	q->logged[q->nlogged].what = what;
	q->logged[q->nlogged++].err = err;
	fprintf(stderr, "nfqueue: queue %u: %s%s%s (reported once)\n",
		q->queue_num, nq_problem_str[what], err ? ": " : "",
		err ? strerror(err) : "");
}

static char *nq_errf(const char *fmt, ...) PRINTF(1, 2);
static char *nq_errf(const char *fmt, ...)
{
	char tmp[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	return util_xstrdup(tmp);
}

/* ---- sending -------------------------------------------------------------- */

/* Room for any message built here (a config or a verdict with a mark). */
union nq_msgbuf {
	char buf[256];
	struct nlmsghdr align;
};

static int nq_send(nfqueue_t *q, const struct nlmsghdr *nlh)
{
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	return 0;
}

static int nq_send_verdict(nfqueue_t *q, uint32_t id, int verdict,
			   bool set_mark, uint32_t mark)
{
	union nq_msgbuf m;
	struct nlmsghdr *nlh =
		nfq_nlmsg_put(m.buf, NFQNL_MSG_VERDICT, q->queue_num);

	nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
	if (set_mark)
		nfq_nlmsg_verdict_put_mark(nlh, mark);
	if (nq_send(q, nlh) < 0) {
		int e = errno;

		nq_problem(q, NQ_P_SEND, e);
		errno = e;
		return -1;
	}
	q->st.verdicts++;
	return 0;
}

int nfqueue_verdict(nfqueue_t *q, uint32_t id, int verdict, bool set_mark,
		    uint32_t mark)
{
	bool current = q->in_cb && id == q->cur_id;
	int rc;

	if (verdict != NF_ACCEPT && verdict != NF_DROP &&
	    verdict != NF_REPEAT) {
		errno = EINVAL;
		return -1;
	}
	if (current) {
		if (q->cur_done) {
			errno = EALREADY;
			return -1;
		}
		q->cur_tried = true;
	}
	rc = nq_send_verdict(q, id, verdict, set_mark, mark);
	if (rc == 0 && current)
		q->cur_done = true;
	return rc;
}

/* ---- receiving ------------------------------------------------------------ */

static void nq_handle_packet(nfqueue_t *q, const struct nlmsghdr *nlh,
			     size_t len)
{
	struct nfqueue_pkt p;
	enum nfqueue_parse_rc rc = nfqueue_parse(nlh, len, &p);

	q->st.packets++;
	if (rc != NFQUEUE_PARSE_OK) {
		q->st.malformed++;
		nq_problem(q, NQ_P_MALFORMED, 0);
		if (rc == NFQUEUE_PARSE_DROP)
			(void)nq_send_verdict(q, p.id, NF_DROP, false, 0);
		return;
	}
	/* Packets that raced the bind's acknowledgement, before open
	 * returned, have nobody to judge them yet. */
	if (!q->ready) {
		(void)nq_send_verdict(q, p.id, NF_DROP, false, 0);
		return;
	}
	q->in_cb = true;
	q->cur_id = p.id;
	q->cur_tried = q->cur_done = false;
	q->cb(q->arg, q, &p);
	q->in_cb = false;
	if (!q->cur_done) {
		/* A verdict that failed to go out is not a missed one, but
		 * the packet still needs an answer. */
		if (!q->cur_tried)
			q->st.missed_verdicts++;
		(void)nq_send_verdict(q, p.id, NF_DROP, false, 0);
	}
}

/* An NLMSG_ERROR: an acknowledgement (error 0) or a refused message. Returns
 * the (positive) errno it carries, 0 for an ack, -1 if unreadable. */
static int nq_nlerr(const struct nlmsghdr *nlh, uint32_t *seq)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
		return -1;
	*seq = e->msg.nlmsg_seq;
	return e->error < 0 ? -e->error : e->error;
}

/*
 * Handles every message in buf.  Returns the error carried by an
 * NLMSG_ERROR whose sequence number is want_seq (0 for an ack), or -1 if
 * none was seen.
 */
static int nq_dispatch(nfqueue_t *q, char *buf, size_t n, bool truncated,
		       uint32_t want_seq)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	int rem = (int)n, found = -1;
	/* The last message's padding is not part of the datagram; buf has
	 * room for it, zeroed, so that the parse may read up to it. */
	size_t pad = MNL_ALIGN(n) - n;

	/* A cut message keeps its header and packet id: shrink it to what
	 * arrived so that it is parsed (and dropped) rather than skipped. */
	if (truncated && n >= sizeof(*nlh) && nlh->nlmsg_len > n)
		nlh->nlmsg_len = (uint32_t)(n & ~3UL);
	memset(buf + n, 0, pad);
	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
		uint32_t seq = 0;
		int err;

		switch (nlh->nlmsg_type) {
		case NQ_PACKET_TYPE:
			nq_handle_packet(q, nlh, (size_t)rem + pad);
			break;
		case NLMSG_ERROR:
			err = nq_nlerr(nlh, &seq);
			if (want_seq && seq == want_seq && err >= 0)
				found = err;
			else if (err != 0)
				nq_problem(q, NQ_P_NLERR,
					   err > 0 ? err : EBADMSG);
			break;
		default: /* NLMSG_NOOP, NLMSG_DONE, ...: nothing to do */
			break;
		}
	}
	return found;
}

/* One datagram from the kernel into q->buf.  Returns its length, or -1 with
 * errno set (EAGAIN when there is nothing to read). */
static ssize_t nq_recv(nfqueue_t *q, bool *truncated)
{
	struct sockaddr_nl from;
	struct iovec iov = { .iov_base = q->buf, .iov_len = q->bufsize };
	struct msghdr msg = { .msg_name = &from,
			      .msg_namelen = sizeof(from),
			      .msg_iov = &iov,
			      .msg_iovlen = 1 };
	ssize_t n;

	for (;;) {
		n = recvmsg(mnl_socket_get_fd(q->nl), &msg, MSG_DONTWAIT);
		if (n < 0)
			return -1;
		if (msg.msg_namelen == sizeof(from) && from.nl_pid == 0)
			break;
		/* Only a process with CAP_NET_ADMIN can send here, but
		 * it is still not the kernel: ignore it. */
		nq_problem(q, NQ_P_FOREIGN, 0);
		msg.msg_namelen = sizeof(from);
	}
	*truncated = msg.msg_flags & MSG_TRUNC;
	if (*truncated)
		nq_problem(q, NQ_P_TRUNC, 0);
	return n;
}

/* Reads at most NFQUEUE_ROUNDS datagrams; the persistent read event brings
 * us back for the rest after the loop has served others. */
static void nq_read_cb(evutil_socket_t fd, short what, void *arg)
{
	nfqueue_t *q = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < NFQUEUE_ROUNDS; i++) {
		bool truncated = false;
		ssize_t n = nq_recv(q, &truncated);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				q->st.enobufs++;
				continue;
			}
			nq_problem(q, NQ_P_RECV, errno);
			return;
		}
		nq_dispatch(q, q->buf, (size_t)n, truncated, 0);
	}
}

/* ---- setting up ----------------------------------------------------------- */

/* Waits for the answer to message seq, handling whatever comes first.
 * Returns 0 (acknowledged) or a positive errno. */
static int nq_wait_ack(nfqueue_t *q, uint32_t seq)
{
	double deadline = util_mono_now() + NQ_ACK_TIMEOUT_MS / 1000.0;

	for (;;) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(q->nl),
				      .events = POLLIN };
		double left = deadline - util_mono_now();
		bool truncated = false;
		ssize_t n;
		int err;

		if (left <= 0)
			return ETIMEDOUT;
		if (poll(&pfd, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return errno;
		n = nq_recv(q, &truncated);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				q->st.enobufs++;
				continue;
			}
			return errno;
		}
		err = nq_dispatch(q, q->buf, (size_t)n, truncated, seq);
		if (err >= 0)
			return err;
	}
}

/* The netlink port id bound to queue_num in this netns, from the kernel's
 * table; 0 if the queue is not bound. */
static uint32_t nq_bound_portid(uint16_t queue_num)
{
	FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "re");
	unsigned num, portid, found = 0;
	char line[256];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%u %u", &num, &portid) == 2 &&
		    num == queue_num) {
			found = portid;
			break;
		}
	fclose(f);
	return found;
}

/*
 * Bind, copy the whole packet, bound the queue's length, and ask for the
 * socket owner (UID_GID) and unsegmented GSO packets (GSO: without it the
 * kernel segments, or on some paths drops, them before queueing) in one
 * message: the kernel checks the flags before it binds, so a refusal
 * leaves nothing bound.
 */
static int nq_bind(nfqueue_t *q, char **err)
{
	const uint32_t flags = NFQA_CFG_F_UID_GID | NFQA_CFG_F_GSO;
	union nq_msgbuf m;
	struct nlmsghdr *nlh =
		nfq_nlmsg_put(m.buf, NFQNL_MSG_CONFIG, q->queue_num);
	uint32_t other;
	int e;

	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, NFQUEUE_MAXLEN);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(flags));
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = ++q->seq;
	if (nq_send(q, nlh) < 0) {
		*err = nq_errf("queue %u: sending the bind: %s", q->queue_num,
			       strerror(errno));
		return -1;
	}
	e = nq_wait_ack(q, nlh->nlmsg_seq);
	if (e == 0)
		return 0;
	/* The kernel answers EPERM both to a missing CAP_NET_ADMIN and to a
	 * queue bound by another socket: its table tells them apart. */
	other = nq_bound_portid(q->queue_num);
	if (e == EPERM && other)
		*err = nq_errf("queue %u is already bound by another "
			       "process (netlink port %u)",
			       q->queue_num, other);
	else if (e == EOPNOTSUPP)
		*err = nq_errf("queue %u: the kernel refused the queue flags "
			       "(socket owner, GSO): %s",
			       q->queue_num, strerror(e));
	else
		*err = nq_errf("queue %u: bind: %s%s", q->queue_num,
			       strerror(e),
			       e == EPERM ? " (needs CAP_NET_ADMIN)" : "");
	return -1;
}

static int nq_socket(nfqueue_t *q, char **err)
{
	int fd, one = 1, size = NFQUEUE_RCVBUF;

	q->nl = mnl_socket_open2(NETLINK_NETFILTER,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!q->nl || mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		*err = nq_errf("netlink socket: %s", strerror(errno));
		return -1;
	}
	fd = mnl_socket_get_fd(q->nl);
	/* Bursts of packets wait here while the loop is busy elsewhere; the
	 * forced size passes net.core.rmem_max when we may. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) <
		    0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0) {
		*err = nq_errf("SO_RCVBUF: %s", strerror(errno));
		return -1;
	}
	/*
	 * NETLINK_NO_ENOBUFS, deliberately.  When this socket's buffer is
	 * full the kernel cannot deliver a packet message, and it drops the
	 * packet (there is no FAIL_OPEN flag and no --queue-bypass): an
	 * overrun fails closed whatever we do.  Without the option the
	 * socket would also get a pending ENOBUFS error, which tells us
	 * nothing we can act on (the lost packets are gone, and there is no
	 * state to resynchronise for a queue); with it, reads simply go on.
	 * If an ENOBUFS still arrives it is counted and reading continues.
	 */
	if (mnl_socket_setsockopt(q->nl, NETLINK_NO_ENOBUFS, &one,
				  sizeof(one)) < 0) {
		*err = nq_errf("NETLINK_NO_ENOBUFS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

nfqueue_t *nfqueue_open(struct event_base *base, uint16_t queue_num,
			nfqueue_cb cb, void *arg, char **err)
{
	nfqueue_t *q = util_xcalloc(1, sizeof(*q));

	*err = NULL;
	q->queue_num = queue_num;
	q->cb = cb;
	q->arg = arg;
	q->bufsize = 0xffff + MNL_SOCKET_BUFFER_SIZE / 2;
	q->buf = util_xcalloc(1, q->bufsize + NLMSG_ALIGNTO);
	q->seq = (uint32_t)time(NULL);
	if (nq_socket(q, err) < 0 || nq_bind(q, err) < 0)
		goto fail;
	q->ev = event_new(base, mnl_socket_get_fd(q->nl), EV_READ | EV_PERSIST,
			  nq_read_cb, q);
	if (!q->ev || event_add(q->ev, NULL) < 0) {
		*err = nq_errf("queue %u: cannot register with the event "
			       "loop",
			       queue_num);
		goto fail;
	}
	q->ready = true;
	return q;
fail:
	nfqueue_close(q);
	return NULL;
}

void nfqueue_close(nfqueue_t *q)
{
	if (!q)
		return;
	if (q->ev)
		event_free(q->ev);
	if (q->nl) {
		union nq_msgbuf m;
		struct nlmsghdr *nlh =
			nfq_nlmsg_put(m.buf, NFQNL_MSG_CONFIG, q->queue_num);

		/* Closing the socket unbinds too; saying so first is
		 * explicit and costs one message.  No answer is awaited. */
		nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
		if (q->ready)
			(void)nq_send(q, nlh);
		mnl_socket_close(q->nl);
	}
	free(q->buf);
	free(q);
}

void nfqueue_get_stats(const nfqueue_t *q, struct nfqueue_stats *st)
{
	*st = q->st;
}
