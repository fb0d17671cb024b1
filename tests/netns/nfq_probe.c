/*
 * nfq_probe.c - the netns tier's helper for tests/netns/test_nfqueue.sh:
 * src/nfqueue.c and src/ctlookup.c driven by hand.
 *
 *   nfq-probe QUEUE PLAN [--count N] [--timeout S]
 *       consumes queue QUEUE on a libevent loop and gives the verdicts of
 *       PLAN (comma-separated, in order; the last one repeats) to successive
 *       packets: accept, drop, repeat, accept:MARK, repeat:MARK, none (no
 *       verdict: the module must drop it), twice (accept, then a second
 *       verdict that must be refused), stall (hold the packet and hang until
 *       killed).  Prints "ready", one "pkt" line per packet and a "stats"
 *       line; exits 0 after N packets (default: the plan's length), 1 when
 *       S seconds (default 20) pass first, 3 when the queue cannot be bound.
 *   nfq-probe ct PROTO REPLY_SRC REPLY_SPORT REPLY_DST REPLY_DPORT [--count N]
 *       ctlookup_orig (N times, default once); prints "found ..." or
 *       "error NAME", and with N > 1 the time per lookup.
 *   nfq-probe ct-listen PORT [--count N] [--timeout S]
 *       a UDP socket on PORT that, for each datagram, looks the flow up by
 *       its reply tuple (the address the datagram arrived on, PORT, the
 *       client) like the DNS proxy will, prints a "dgram" line and answers
 *       "ok" from the address the client reached.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <linux/netfilter.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctlookup.h"
#include "nfqueue.h"
#include "util.h"

static const char usage[] =
	"usage: nfq-probe QUEUE PLAN [--count N] [--timeout S]\n"
	"       nfq-probe ct udp|tcp REPLY_SRC REPLY_SPORT REPLY_DST "
	"REPLY_DPORT [--count N]\n"
	"       nfq-probe ct-listen PORT [--count N] [--timeout S]\n";

enum step_kind { ST_ACCEPT, ST_DROP, ST_REPEAT, ST_NONE, ST_TWICE, ST_STALL };

struct step {
	enum step_kind kind;
	bool set_mark;
	uint32_t mark;
};

struct run {
	struct event_base *base;
	struct step *plan;
	size_t nplan;
	long count, seen;
};

static const char *errname(int e)
{
	switch (e) {
	case 0:
		return "ok";
	case ENOENT:
		return "ENOENT";
	case EALREADY:
		return "EALREADY";
	case EINVAL:
		return "EINVAL";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EPERM:
		return "EPERM";
	}
	return strerror(e);
}

static const char *addr_str(uint32_t a, char *buf)
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/* ---- queue mode ------------------------------------------------------------ */

static int parse_step(const char *s, size_t n, struct step *st)
{
	static const struct {
		const char *name;
		enum step_kind kind;
	} names[] = {
		{ "accept", ST_ACCEPT }, { "drop", ST_DROP },
		{ "repeat", ST_REPEAT }, { "none", ST_NONE },
		{ "twice", ST_TWICE },	 { "stall", ST_STALL },
	};
	const char *colon = memchr(s, ':', n);
	size_t len = colon ? (size_t)(colon - s) : n;

	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i].name) != len ||
		    strncmp(names[i].name, s, len) != 0)
			continue;
		st->kind = names[i].kind;
		if (colon) {
			char num[32];
			char *end;

			if (n - len - 1 >= sizeof(num) || n - len - 1 == 0)
				return -1;
			memcpy(num, colon + 1, n - len - 1);
			num[n - len - 1] = '\0';
			st->mark = (uint32_t)strtoul(num, &end, 0);
			st->set_mark = true;
			if (*end)
				return -1;
		}
		return 0;
	}
	return -1;
}

static int parse_plan(const char *s, struct run *r)
{
	while (*s) {
		size_t n = strcspn(s, ",");

		r->plan = realloc(r->plan, (r->nplan + 1) * sizeof(*r->plan));
		if (!r->plan || parse_step(s, n, &r->plan[r->nplan]) < 0)
			return -1;
		r->nplan++;
		s += n + (s[n] == ',');
	}
	return r->nplan ? 0 : -1;
}

/* "proto=17 src=A:P dst=B:Q" of the packet, ports for UDP and TCP only. */
static void print_l3(const struct nfqueue_pkt *p)
{
	const uint8_t *d = p->data;
	size_t ihl = (size_t)(d[0] & 0x0f) * 4;
	char s[INET_ADDRSTRLEN], t[INET_ADDRSTRLEN];
	uint32_t src, dst;
	unsigned sport = 0, dport = 0;

	memcpy(&src, d + 12, 4);
	memcpy(&dst, d + 16, 4);
	if ((d[9] == IPPROTO_UDP || d[9] == IPPROTO_TCP) && p->len >= ihl + 4) {
		sport = (unsigned)(d[ihl] << 8 | d[ihl + 1]);
		dport = (unsigned)(d[ihl + 2] << 8 | d[ihl + 3]);
	}
	printf(" proto=%u src=%s:%u dst=%s:%u len=%zu", d[9], addr_str(src, s),
	       sport, addr_str(dst, t), dport, p->len);
}

static void queue_cb(void *arg, nfqueue_t *q, const struct nfqueue_pkt *p)
{
	struct run *r = arg;
	size_t i = (size_t)r->seen < r->nplan ? (size_t)r->seen : r->nplan - 1;
	const struct step *st = &r->plan[i];
	static const char *const names[] = { "accept", "drop",	"repeat",
					     "none",   "twice", "stall" };
	int rc = 0, second = 0, e2 = 0;

	r->seen++;
	printf("pkt n=%ld id=%u hook=%u mark=0x%x indev=%u outdev=%u", r->seen,
	       p->id, p->hook, p->mark, p->indev, p->outdev);
	if (p->has_uid)
		printf(" uid=%u", p->uid);
	else
		printf(" uid=-");
	print_l3(p);
	switch (st->kind) {
	case ST_ACCEPT:
	case ST_TWICE:
		rc = nfqueue_verdict(q, p->id, NF_ACCEPT, st->set_mark,
				     st->mark);
		if (st->kind == ST_TWICE) {
			second = nfqueue_verdict(q, p->id, NF_DROP, false, 0);
			e2 = errno;
		}
		break;
	case ST_DROP:
		rc = nfqueue_verdict(q, p->id, NF_DROP, false, 0);
		break;
	case ST_REPEAT:
		rc = nfqueue_verdict(q, p->id, NF_REPEAT, st->set_mark,
				     st->mark);
		break;
	case ST_NONE:
		break;
	case ST_STALL:
		printf(" verdict=stall\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	printf(" verdict=%s", names[st->kind]);
	if (st->set_mark)
		printf(":0x%x", st->mark);
	printf(" rc=%d", rc);
	if (st->kind == ST_TWICE)
		printf(" second=%d:%s", second, second ? errname(e2) : "ok");
	printf("\n");
	fflush(stdout);
	if (r->seen >= r->count)
		event_base_loopbreak(r->base);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static int queue_mode(unsigned queue, const char *plan, long count,
		      long timeout)
{
	struct run r = { 0 };
	struct nfqueue_stats st;
	struct timeval tv = { .tv_sec = timeout };
	struct event *tev;
	char *err = NULL;
	nfqueue_t *q;
	int rc;

	if (parse_plan(plan, &r) < 0) {
		fputs(usage, stderr);
		return 2;
	}
	r.count = count > 0 ? count : (long)r.nplan;
	r.base = event_base_new();
	q = nfqueue_open(r.base, (uint16_t)queue, queue_cb, &r, &err);
	if (!q) {
		fprintf(stderr, "nfq-probe: %s\n", err);
		printf("error %s\n", err);
		free(err);
		return 3;
	}
	tev = evtimer_new(r.base, timeout_cb, r.base);
	evtimer_add(tev, &tv);
	printf("ready\n");
	fflush(stdout);
	event_base_dispatch(r.base);
	nfqueue_get_stats(q, &st);
	printf("stats packets=%llu verdicts=%llu enobufs=%llu errors=%llu "
	       "malformed=%llu missed=%llu\n",
	       (unsigned long long)st.packets, (unsigned long long)st.verdicts,
	       (unsigned long long)st.enobufs, (unsigned long long)st.errors,
	       (unsigned long long)st.malformed,
	       (unsigned long long)st.missed_verdicts);
	rc = r.seen >= r.count ? 0 : 1;
	nfqueue_close(q);
	event_free(tev);
	event_base_free(r.base);
	free(r.plan);
	return rc;
}

/* ---- conntrack ----------------------------------------------------------- */

static void print_ct(int rc, const struct sockaddr_in *os,
		     const struct sockaddr_in *od, bool natted)
{
	char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];

	if (rc) {
		printf(" error %s\n", errname(-rc));
		return;
	}
	printf(" found orig_src=%s:%u orig_dst=%s:%u natted=%s\n",
	       addr_str(os->sin_addr.s_addr, s), ntohs(os->sin_port),
	       addr_str(od->sin_addr.s_addr, d), ntohs(od->sin_port),
	       natted ? "true" : "false");
}

static int ct_open(ctlookup_t **c)
{
	char *err = NULL;

	*c = ctlookup_open(&err);
	if (!*c) {
		fprintf(stderr, "nfq-probe: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

/* count lookups of one tuple; the time they took when more than one. */
static int ct_mode(char **argv, long count)
{
	double t0, max = 0;
	struct in_addr rs, rd;
	struct sockaddr_in os, od;
	bool natted = false;
	uint8_t proto = strcmp(argv[0], "tcp") == 0 ? IPPROTO_TCP :
			strcmp(argv[0], "udp") == 0 ? IPPROTO_UDP :
						      (uint8_t)atoi(argv[0]);
	ctlookup_t *c;
	int rc;

	if (inet_pton(AF_INET, argv[1], &rs) != 1 ||
	    inet_pton(AF_INET, argv[3], &rd) != 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (ct_open(&c) < 0)
		return 3;
	t0 = util_mono_now() * 1e6;
	for (long i = 0; i < count; i++) {
		double t = util_mono_now() * 1e6;

		rc = ctlookup_orig(c, proto, rs, (uint16_t)atoi(argv[2]), rd,
				   (uint16_t)atoi(argv[4]), &os, &od, &natted);
		t = util_mono_now() * 1e6 - t;
		if (t > max)
			max = t;
	}
	printf("ct");
	print_ct(rc, &os, &od, natted);
	if (count > 1)
		printf("lookups=%ld us_avg=%.1f us_max=%.1f\n", count,
		       (util_mono_now() * 1e6 - t0) / (double)count, max);
	ctlookup_close(c);
	return rc ? 1 : 0;
}

/* One datagram and the local address it was sent to (IP_PKTINFO). */
static ssize_t recv_pktinfo(int fd, char *buf, size_t n,
			    struct sockaddr_in *peer, struct in_addr *local)
{
	char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
	struct iovec iov = { .iov_base = buf, .iov_len = n };
	struct msghdr msg = { .msg_name = peer,
			      .msg_namelen = sizeof(*peer),
			      .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	ssize_t len = recvmsg(fd, &msg, 0);

	local->s_addr = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); len >= 0 && cm;
	     cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == IPPROTO_IP &&
		    cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			*local = pi.ipi_addr;
		}
	return len;
}

/* Answers from the address the client reached, so that conntrack maps the
 * answer back onto the client's flow. */
static void reply_from(int fd, struct sockaddr_in *peer, struct in_addr local)
{
	char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))] = { 0 };
	char ok[] = "ok\n";
	struct iovec iov = { .iov_base = ok, .iov_len = 3 };
	struct msghdr msg = { .msg_name = peer,
			      .msg_namelen = sizeof(*peer),
			      .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	struct in_pktinfo pi = { .ipi_spec_dst = local };

	cm->cmsg_level = IPPROTO_IP;
	cm->cmsg_type = IP_PKTINFO;
	cm->cmsg_len = CMSG_LEN(sizeof(pi));
	memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	if (sendmsg(fd, &msg, 0) < 0)
		perror("nfq-probe: reply");
}

static int ct_listen(int port, long count, long timeout)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;
	ctlookup_t *c;
	long seen = 0;

	if (fd < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("nfq-probe: udp socket");
		return 3;
	}
	if (ct_open(&c) < 0)
		return 3;
	printf("ready\n");
	fflush(stdout);
	while (seen < count) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct sockaddr_in peer, os, od;
		struct in_addr local;
		char buf[2048], l[INET_ADDRSTRLEN], p[INET_ADDRSTRLEN];
		bool natted = false;
		int rc;

		if (poll(&pfd, 1, (int)timeout * 1000) <= 0)
			break;
		if (recv_pktinfo(fd, buf, sizeof(buf), &peer, &local) < 0)
			continue;
		seen++;
		rc = ctlookup_orig(c, IPPROTO_UDP, local, (uint16_t)port,
				   peer.sin_addr, ntohs(peer.sin_port), &os,
				   &od, &natted);
		printf("dgram local=%s:%d peer=%s:%u",
		       addr_str(local.s_addr, l), port,
		       addr_str(peer.sin_addr.s_addr, p), ntohs(peer.sin_port));
		print_ct(rc, &os, &od, natted);
		fflush(stdout);
		reply_from(fd, &peer, local);
	}
	ctlookup_close(c);
	close(fd);
	return seen >= count ? 0 : 1;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	long count = 0, timeout = 20;
	int nargs = argc;

	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--count") == 0 ||
		    strcmp(argv[i], "--timeout") == 0) {
			long v = atol(argv[i + 1]);

			if (argv[i][2] == 'c')
				count = v;
			else
				timeout = v;
			if (nargs == argc)
				nargs = i;
			i++;
		}
	}
	if (argc < 2)
		goto bad;
	if (strcmp(argv[1], "ct") == 0 && nargs == 7)
		return ct_mode(argv + 2, count > 0 ? count : 1);
	if (strcmp(argv[1], "ct-listen") == 0 && nargs == 3)
		return ct_listen(atoi(argv[2]), count > 0 ? count : 1, timeout);
	if (nargs == 3 && argv[1][0] >= '0' && argv[1][0] <= '9')
		return queue_mode((unsigned)atoi(argv[1]), argv[2], count,
				  timeout);
bad:
	fputs(usage, stderr);
	return 2;
}
