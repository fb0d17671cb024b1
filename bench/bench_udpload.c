/*
 * bench_udpload - UDP and DNS load for bench/bench_udp.sh: two servers that
 * stand for fast hosts of the internet, and three clients that measure
 * rates and latencies (one thread each, epoll, CLOCK_MONOTONIC).
 *
 *   bench_udpload echo IP PORT [-n NPORTS]
 *       UDP echo on IP:PORT .. IP:PORT+NPORTS-1; prints "ready", runs
 *       until killed.
 *   bench_udpload dnsd IP PORT [-a ADDR] [-t TTL]
 *       DNS over UDP and TCP on IP:PORT answering every well-formed
 *       query: A -> ADDR (TTL), anything else NOERROR without answers;
 *       prints "ready", runs until killed.
 *   bench_udpload flows IP PORT [-n NPORTS] [-c CONC] [-d SECS] [-f FIRST]
 *                 [-w TIMEOUT_MS]
 *       new flows: CONC at a time, each a new socket on its own source
 *       port that sends one datagram to IP:PORT+k and waits for the echo.
 *       Flow number i uses source port 1024 + i % 60000 and destination
 *       port PORT + (i / 60000) % NPORTS, so no 4-tuple repeats within
 *       60000 * NPORTS flows: every flow is new to conntrack.  FIRST is
 *       the first flow number (pass the previous run's "next").
 *   bench_udpload stream IP PORT [-c WINDOW] [-d SECS] [-w TIMEOUT_MS]
 *                 [-p SPORT]
 *       one connected socket, WINDOW datagrams in flight: one flow.
 *   bench_udpload dnsq IP PORT NAMEFILE [-c WINDOW] [-d SECS] [-w TIMEOUT_MS]
 *                 [-p SPORT]
 *       one connected socket, WINDOW A queries in flight, names from
 *       NAMEFILE (one a line) in turn; counts the answers' rcodes.
 *
 * -p binds the client's source port (default: an ephemeral one).
 *
 * The clients print one line: sent, ok (answered), lost (no answer within
 * TIMEOUT_MS, default 500), secs, rate (answered per second), p50_us and
 * p99_us of the round trip; dnsq adds noerror, refused and other; flows
 * adds next.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define DGRAM_MAX 2048
#define MAGIC 0x45554450u /* "EUDP" */
#define SPORT_LO 1024
#define SPORT_SPAN 60000
#define RING 65536 /* in-flight bookkeeping, indexed by seq or DNS id */
#define WINDOW_MAX 1024
#define NAME_MAX_WIRE 255
#define TCP_CONN_OUT_MAX (1 << 20)

static struct sockaddr_in dst;
static int nports = 1, conc = 1, timeout_ms = 500, sport;
static double secs = 3;
static uint64_t first_flow;
static struct in_addr answer_ip;
static uint32_t answer_ttl = 60;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_udpload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* ---- round-trip times -------------------------------------------------- */

struct lat {
	uint32_t *ns;
	size_t n, cap;
};

static void lat_add(struct lat *l, double s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 65536;
		l->ns = realloc(l->ns, l->cap * sizeof(*l->ns));
		if (!l->ns)
			die("realloc");
	}
	/* Answers slower than 4 s are never waited for (TIMEOUT_MS). */
	l->ns[l->n++] = s > 4.0 ? 4000000000u : (uint32_t)(s * 1e9);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double lat_pct(struct lat *l, double p)
{
	size_t i;

	if (!l->n)
		return 0;
	i = (size_t)(p * (double)(l->n - 1) + 0.5);
	return l->ns[i] / 1e3;
}

struct result {
	unsigned long sent, ok, lost, rcode[16];
	double t0, t1;
	struct lat lat;
};

static void result_print(struct result *r, const char *extra)
{
	double el = r->t1 - r->t0;

	qsort(r->lat.ns, r->lat.n, sizeof(*r->lat.ns), cmp_u32);
	printf("sent=%lu ok=%lu lost=%lu secs=%.3f rate=%.0f p50_us=%.1f "
	       "p99_us=%.1f%s\n",
	       r->sent, r->ok, r->lost, el, el > 0 ? (double)r->ok / el : 0,
	       lat_pct(&r->lat, 0.50), lat_pct(&r->lat, 0.99), extra);
}

static int udp_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	return fd;
}

/* ---- servers --------------------------------------------------------------- */

/* Echoes every datagram of every port back to its sender, in batches. */
static int srv_echo(void)
{
	static uint8_t bufs[BATCH][DGRAM_MAX];
	struct sockaddr_in peers[BATCH];
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	struct epoll_event evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), buf = 4 << 20;

	if (ep < 0)
		die("epoll_create1");
	for (int i = 0; i < nports; i++) {
		struct sockaddr_in sa = dst;
		struct epoll_event ev = { .events = EPOLLIN };
		int fd = udp_socket();

		sa.sin_port = htons((uint16_t)(ntohs(dst.sin_port) + i));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("bind");
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl");
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int k = epoll_wait(ep, evs, 64, -1);

		if (k < 0 && errno != EINTR)
			break;
		for (int e = 0; e < k; e++) {
			int fd = evs[e].data.fd, n;

			do {
				for (int i = 0; i < BATCH; i++) {
					iov[i].iov_base = bufs[i];
					iov[i].iov_len = DGRAM_MAX;
					memset(&msgs[i], 0, sizeof(msgs[i]));
					msgs[i].msg_hdr.msg_name = &peers[i];
					msgs[i].msg_hdr.msg_namelen =
						sizeof(peers[i]);
					msgs[i].msg_hdr.msg_iov = &iov[i];
					msgs[i].msg_hdr.msg_iovlen = 1;
				}
				n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT,
					     NULL);
				if (n <= 0)
					break;
				/* Back as long as it came (a truncated one
				 * as far as it was read). */
				for (int i = 0; i < n; i++)
					iov[i].iov_len = msgs[i].msg_len;
				sendmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT);
			} while (n == BATCH);
		}
	}
	die("epoll_wait");
	return 1;
}

/*
 * The answer to query q (qlen bytes, from anyone: checked in full) in out
 * (at least 12 + NAME_MAX_WIRE + 4 + 16 bytes), or -1 if q is not a plain
 * query with one question (no answer is sent to those).
 */
static int dns_answer(const uint8_t *q, size_t qlen, uint8_t *out)
{
	size_t off = 12, qend;
	uint16_t qtype, qclass;
	bool a;

	if (qlen < 12 || (q[2] & 0x80) || ((q[2] >> 3) & 0xf) != 0 ||
	    get16(q + 4) != 1)
		return -1;
	for (;;) {
		uint8_t len;

		if (off >= qlen)
			return -1;
		len = q[off];
		if (len == 0) {
			off++;
			break;
		}
		/* A question's name has no reason to be compressed. */
		if (len & 0xc0 || off + 1 + len > qlen ||
		    off + 1 + len - 12 > NAME_MAX_WIRE)
			return -1;
		off += 1 + (size_t)len;
	}
	if (off + 4 > qlen)
		return -1;
	qtype = get16(q + off);
	qclass = get16(q + off + 2);
	qend = off + 4;
	memcpy(out, q, qend);
	out[2] = (uint8_t)(0x84 | (q[2] & 0x01)); /* QR, AA, RD as asked */
	out[3] = 0x80; /* RA, NOERROR */
	a = qtype == 1 && qclass == 1;
	put16(out + 6, a ? 1 : 0);
	put16(out + 8, 0);
	put16(out + 10, 0);
	if (!a)
		return (int)qend;
	out += qend;
	put16(out, 0xc00c); /* the question's name */
	put16(out + 2, 1);
	put16(out + 4, 1);
	put16(out + 6, (uint16_t)(answer_ttl >> 16));
	put16(out + 8, (uint16_t)answer_ttl);
	put16(out + 10, 4);
	memcpy(out + 12, &answer_ip, 4);
	return (int)qend + 16;
}

struct tconn {
	int fd;
	uint8_t in[2 + 65535];
	size_t inlen;
	uint8_t *out;
	size_t outlen, outoff, outcap;
};

static void tconn_free(int ep, struct tconn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
}

static int tconn_flush(int ep, struct tconn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	while (c->outoff < c->outlen) {
		ssize_t w =
			write(c->fd, c->out + c->outoff, c->outlen - c->outoff);

		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0)
			return -1;
		c->outoff += (size_t)w;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	/* A client that does not read its answers is not read either. */
	if (c->outlen > TCP_CONN_OUT_MAX)
		ev.events = EPOLLOUT;
	else if (c->outlen)
		ev.events = EPOLLIN | EPOLLOUT;
	else
		ev.events = EPOLLIN;
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Reads what is there and answers every whole message; -1: close it. */
static int tconn_read(int ep, struct tconn *c)
{
	uint8_t ans[12 + NAME_MAX_WIRE + 4 + 16];
	ssize_t r;
	size_t off = 0;

	r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r <= 0)
		return -1;
	c->inlen += (size_t)r;
	while (c->inlen - off >= 2) {
		size_t mlen = get16(c->in + off);
		int n;

		if (c->inlen - off < 2 + mlen)
			break;
		n = dns_answer(c->in + off + 2, mlen, ans);
		if (n < 0)
			return -1;
		if (c->outlen + 2 + (size_t)n > c->outcap) {
			c->outcap = (c->outlen + 2 + (size_t)n) * 2;
			c->out = realloc(c->out, c->outcap);
			if (!c->out)
				die("realloc");
		}
		put16(c->out + c->outlen, (uint16_t)n);
		memcpy(c->out + c->outlen + 2, ans, (size_t)n);
		c->outlen += 2 + (size_t)n;
		off += 2 + mlen;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	return tconn_flush(ep, c);
}

static int srv_dns(void)
{
	static uint8_t bufs[BATCH][DGRAM_MAX];
	static uint8_t outs[BATCH][12 + NAME_MAX_WIRE + 4 + 16];
	struct sockaddr_in peers[BATCH];
	struct iovec iov[BATCH], oiov[BATCH];
	struct mmsghdr msgs[BATCH], omsgs[BATCH];
	struct epoll_event evs[64], ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC), one = 1, buf = 4 << 20;
	int ufd = udp_socket(), lfd;
	/* The listeners are told from connections by these addresses. */
	static char ukey, lkey;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ep < 0 || lfd < 0)
		die("socket");
	setsockopt(ufd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ufd, (struct sockaddr *)&dst, sizeof(dst)) < 0 ||
	    bind(lfd, (struct sockaddr *)&dst, sizeof(dst)) < 0 ||
	    listen(lfd, 1024) < 0)
		die("bind");
	ev.data.ptr = &ukey;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev) < 0)
		die("epoll_ctl");
	ev.data.ptr = &lkey;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int k = epoll_wait(ep, evs, 64, -1);

		if (k < 0 && errno != EINTR)
			break;
		for (int e = 0; e < k; e++) {
			void *p = evs[e].data.ptr;

			if (p == &lkey) {
				struct tconn *c;
				int fd = accept4(lfd, NULL, NULL,
						 SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd < 0)
					continue;
				c = calloc(1, sizeof(*c));
				if (!c)
					die("calloc");
				c->fd = fd;
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
					close(fd);
					free(c);
				}
				continue;
			}
			if (p != &ukey) {
				struct tconn *c = p;
				int rc = 0;

				if (evs[e].events & (EPOLLERR | EPOLLHUP))
					rc = -1;
				if (!rc && (evs[e].events & EPOLLOUT))
					rc = tconn_flush(ep, c);
				if (!rc && (evs[e].events & EPOLLIN) &&
				    c->outlen <= TCP_CONN_OUT_MAX)
					rc = tconn_read(ep, c);
				if (rc < 0)
					tconn_free(ep, c);
				continue;
			}
			for (int n = BATCH; n == BATCH;) {
				int m = 0;

				for (int i = 0; i < BATCH; i++) {
					iov[i].iov_base = bufs[i];
					iov[i].iov_len = DGRAM_MAX;
					memset(&msgs[i], 0, sizeof(msgs[i]));
					msgs[i].msg_hdr.msg_name = &peers[i];
					msgs[i].msg_hdr.msg_namelen =
						sizeof(peers[i]);
					msgs[i].msg_hdr.msg_iov = &iov[i];
					msgs[i].msg_hdr.msg_iovlen = 1;
				}
				n = recvmmsg(ufd, msgs, BATCH, MSG_DONTWAIT,
					     NULL);
				for (int i = 0; i < n; i++) {
					int len;

					if (msgs[i].msg_hdr.msg_flags &
					    MSG_TRUNC)
						continue;
					len = dns_answer(bufs[i],
							 msgs[i].msg_len,
							 outs[m]);
					if (len < 0)
						continue;
					oiov[m].iov_base = outs[m];
					oiov[m].iov_len = (size_t)len;
					memset(&omsgs[m], 0, sizeof(omsgs[m]));
					omsgs[m].msg_hdr.msg_name = &peers[i];
					omsgs[m].msg_hdr.msg_namelen =
						msgs[i].msg_hdr.msg_namelen;
					omsgs[m].msg_hdr.msg_iov = &oiov[m];
					omsgs[m].msg_hdr.msg_iovlen = 1;
					m++;
				}
				if (m)
					sendmmsg(ufd, omsgs, (unsigned)m,
						 MSG_DONTWAIT);
			}
		}
	}
	die("epoll_wait");
	return 1;
}

/* ---- clients --------------------------------------------------------------- */

struct slot {
	int fd;
	uint64_t n;
	double t0;
};

/* A new flow in slot s: a socket on flow n's own source port. */
static void flow_start(int ep, struct slot *s, uint64_t *next, struct result *r)
{
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t n = (*next)++;
		struct sockaddr_in src = { .sin_family = AF_INET };
		struct sockaddr_in to = dst;
		struct epoll_event ev = { .events = EPOLLIN };
		uint8_t msg[16];
		uint32_t magic = MAGIC;
		int fd = udp_socket();

		src.sin_port = htons((uint16_t)(SPORT_LO + n % SPORT_SPAN));
		to.sin_port = htons((uint16_t)(ntohs(dst.sin_port) +
					       (n / SPORT_SPAN) % nports));
		/* A port someone holds (the daemon's own, another slot's
		 * after a wrap) is skipped: its flow number stays unused. */
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
		    connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
			close(fd);
			continue;
		}
		memcpy(msg, &magic, 4);
		memcpy(msg + 4, &n, 8);
		memset(msg + 12, 0, 4);
		ev.data.ptr = s;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl");
		s->fd = fd;
		s->n = n;
		s->t0 = now();
		r->sent++;
		/* A send refused at once is a flow lost at once. */
		if (send(fd, msg, sizeof(msg), 0) < 0)
			s->t0 = 0;
		return;
	}
	fprintf(stderr, "bench_udpload: no free source port\n");
	exit(1);
}

static int cli_flows(void)
{
	struct slot *slots = calloc((size_t)conc, sizeof(*slots));
	struct epoll_event *evs = calloc((size_t)conc, sizeof(*evs));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint64_t next = first_flow;
	struct result r = { 0 };
	double end, tmo = timeout_ms / 1e3;
	char extra[64];

	if (!slots || !evs || ep < 0)
		die("setup");
	r.t0 = now();
	end = r.t0 + secs;
	for (int i = 0; i < conc; i++)
		flow_start(ep, &slots[i], &next, &r);
	while ((r.t1 = now()) < end) {
		int k = epoll_wait(ep, evs, conc, 10);

		for (int e = 0; e < k; e++) {
			struct slot *s = evs[e].data.ptr;
			uint8_t buf[64];
			uint32_t magic;
			uint64_t n;
			ssize_t len = recv(s->fd, buf, sizeof(buf), 0);

			if (len < 16)
				continue;
			memcpy(&magic, buf, 4);
			memcpy(&n, buf + 4, 8);
			if (magic != MAGIC || n != s->n)
				continue;
			lat_add(&r.lat, now() - s->t0);
			r.ok++;
			close(s->fd);
			flow_start(ep, s, &next, &r);
		}
		r.t1 = now();
		for (int i = 0; i < conc; i++) {
			struct slot *s = &slots[i];

			if (r.t1 - s->t0 < tmo)
				continue;
			r.lost++;
			close(s->fd);
			flow_start(ep, s, &next, &r);
		}
	}
	snprintf(extra, sizeof(extra), " next=%llu", (unsigned long long)next);
	result_print(&r, extra);
	return 0;
}

/* In flight: what was sent under a ring index, and when. */
struct inflight {
	uint64_t seq;
	double t0; /* 0: nothing in flight here */
};

/* Builds query number seq for name (wire form, from names_load) in out;
 * returns its length. */
static size_t dns_query(uint8_t *out, uint16_t id, const uint8_t *name,
			size_t nlen)
{
	put16(out, id);
	put16(out + 2, 0x0100); /* RD */
	put16(out + 4, 1);
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, 0);
	memcpy(out + 12, name, nlen);
	put16(out + 12 + nlen, 1);
	put16(out + 14 + nlen, 1);
	return 16 + nlen;
}

struct name {
	uint8_t w[NAME_MAX_WIRE + 1];
	size_t len;
};

/* Names (one a line, dots between labels) in wire form. */
static struct name *names_load(const char *file, size_t *count)
{
	FILE *f = fopen(file, "r");
	struct name *v = NULL;
	char line[512];
	size_t n = 0;

	if (!f)
		die(file);
	while (fgets(line, sizeof(line), f)) {
		char *s = strtok(line, " \t\r\n"), *lab, *save = NULL;
		struct name nm = { .len = 0 };
		bool bad = false;

		if (!s || s[0] == '#')
			continue;
		for (lab = strtok_r(s, ".", &save); lab;
		     lab = strtok_r(NULL, ".", &save)) {
			size_t l = strlen(lab);

			if (l > 63 || nm.len + 1 + l + 1 > NAME_MAX_WIRE) {
				bad = true;
				break;
			}
			nm.w[nm.len++] = (uint8_t)l;
			memcpy(nm.w + nm.len, lab, l);
			nm.len += l;
		}
		if (bad || nm.len == 0) {
			fprintf(stderr, "bench_udpload: bad name in %s\n",
				file);
			exit(1);
		}
		nm.w[nm.len++] = 0;
		v = realloc(v, (n + 1) * sizeof(*v));
		if (!v)
			die("realloc");
		v[n++] = nm;
	}
	fclose(f);
	if (!n) {
		fprintf(stderr, "bench_udpload: no names in %s\n", file);
		exit(1);
	}
	*count = n;
	return v;
}

/*
 * One socket, conc messages in flight: echo datagrams (names == NULL) or
 * DNS queries.  A datagram is matched to what it answers by its sequence
 * number (echo) or its id (DNS); anything else is ignored.  When nothing
 * comes back for TIMEOUT_MS, whatever is in flight is counted lost and the
 * window is filled again.
 */
static int cli_window(const struct name *names, size_t nnames)
{
	static struct inflight ring[RING];
	struct epoll_event add = { .events = EPOLLIN };
	struct result r = { 0 };
	uint64_t seq = 0;
	int fd = udp_socket(), out = 0, buf = 1 << 20;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	double end, tmo = timeout_ms / 1e3, last_rx;
	char extra[128];

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (sport) {
		struct sockaddr_in src = { .sin_family = AF_INET,
					   .sin_port = htons((uint16_t)sport) };

		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			die("bind");
	}
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0)
		die("connect");
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &add) < 0)
		die("epoll");
	r.t0 = last_rx = now();
	end = r.t0 + secs;
	for (;;) {
		uint8_t msg[DGRAM_MAX];
		ssize_t len;
		double t;

		while (out < conc && (t = now()) < end) {
			size_t mlen;
			unsigned idx = (unsigned)(seq % RING);
			uint32_t magic = MAGIC;

			if (names) {
				const struct name *nm = &names[seq % nnames];

				mlen = dns_query(msg, (uint16_t)idx, nm->w,
						 nm->len);
			} else {
				memcpy(msg, &magic, 4);
				memcpy(msg + 4, &seq, 8);
				memset(msg + 12, 0, 4);
				mlen = 16;
			}
			if (ring[idx].t0 != 0) {
				/* Overtaken: never answered. */
				r.lost++;
				out--;
			}
			ring[idx].seq = seq++;
			ring[idx].t0 = t;
			r.sent++;
			if (send(fd, msg, mlen, 0) < 0)
				ring[idx].t0 = 0, r.lost++;
			else
				out++;
		}
		if ((r.t1 = now()) >= end)
			break;
		len = recv(fd, msg, sizeof(msg), MSG_DONTWAIT);
		if (len < 0) {
			struct epoll_event ev;

			/* ECONNREFUSED: an ICMP error for one of them. */
			if (errno != EAGAIN && errno != ECONNREFUSED)
				die("recv");
			if (epoll_wait(ep, &ev, 1, 10) == 0 &&
			    now() - last_rx >= tmo && out > 0) {
				/* Lost in flight: forget them. */
				for (unsigned i = 0; i < RING; i++)
					if (ring[i].t0 != 0) {
						ring[i].t0 = 0;
						r.lost++;
					}
				out = 0;
				last_rx = now();
			}
			continue;
		}
		t = now();
		if (names) {
			unsigned idx;

			if (len < 12 || !(msg[2] & 0x80))
				continue;
			idx = get16(msg);
			if (ring[idx].t0 == 0)
				continue;
			r.rcode[msg[3] & 0xf]++;
			lat_add(&r.lat, t - ring[idx].t0);
			ring[idx].t0 = 0;
		} else {
			uint64_t s;
			uint32_t magic;

			if (len < 16)
				continue;
			memcpy(&magic, msg, 4);
			memcpy(&s, msg + 4, 8);
			if (magic != MAGIC || ring[s % RING].t0 == 0 ||
			    ring[s % RING].seq != s)
				continue;
			lat_add(&r.lat, t - ring[s % RING].t0);
			ring[s % RING].t0 = 0;
		}
		r.ok++;
		out--;
		last_rx = t;
	}
	/* What is still in flight at the end is neither answered nor lost. */
	extra[0] = 0;
	if (names)
		snprintf(extra, sizeof(extra),
			 " noerror=%lu refused=%lu other=%lu", r.rcode[0],
			 r.rcode[5], r.ok - r.rcode[0] - r.rcode[5]);
	result_print(&r, extra);
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: bench_udpload echo IP PORT [-n NPORTS]\n"
		"       bench_udpload dnsd IP PORT [-a ADDR] [-t TTL]\n"
		"       bench_udpload flows IP PORT [-n NPORTS] [-c CONC] "
		"[-d SECS] [-f FIRST] [-w TIMEOUT_MS]\n"
		"       bench_udpload stream IP PORT [-c WINDOW] [-d SECS] "
		"[-w TIMEOUT_MS] [-p SPORT]\n"
		"       bench_udpload dnsq IP PORT NAMEFILE [-c WINDOW] "
		"[-d SECS] [-w TIMEOUT_MS] [-p SPORT]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *mode, *pos[3] = { NULL };
	int npos = 0, c;
	long port;
	char *end;

	if (argc < 2)
		return usage();
	mode = argv[1];
	inet_pton(AF_INET, "198.51.100.10", &answer_ip);
	while ((c = getopt(argc - 1, argv + 1, "-n:c:d:f:w:a:t:p:")) != -1) {
		switch (c) {
		case 1:
			if (npos == 3)
				return usage();
			pos[npos++] = optarg;
			break;
		case 'n':
			nports = atoi(optarg);
			break;
		case 'c':
			conc = atoi(optarg);
			break;
		case 'd':
			secs = atof(optarg);
			break;
		case 'f':
			first_flow = strtoull(optarg, NULL, 10);
			break;
		case 'w':
			timeout_ms = atoi(optarg);
			break;
		case 'a':
			if (inet_pton(AF_INET, optarg, &answer_ip) != 1)
				return usage();
			break;
		case 't':
			answer_ttl = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			sport = atoi(optarg);
			break;
		default:
			return usage();
		}
	}
	if (npos < 2 || nports < 1 || nports > 1000 || conc < 1 || sport < 0 ||
	    sport > 65535 || conc > WINDOW_MAX || secs <= 0 || timeout_ms < 1 ||
	    timeout_ms > 4000)
		return usage();
	dst.sin_family = AF_INET;
	port = strtol(pos[1], &end, 10);
	if (inet_pton(AF_INET, pos[0], &dst.sin_addr) != 1 || *end ||
	    port < 1 || port + nports - 1 > 65535)
		return usage();
	dst.sin_port = htons((uint16_t)port);
	if (strcmp(mode, "echo") == 0 && npos == 2)
		return srv_echo();
	if (strcmp(mode, "dnsd") == 0 && npos == 2)
		return srv_dns();
	if (strcmp(mode, "flows") == 0 && npos == 2)
		return cli_flows();
	if (strcmp(mode, "stream") == 0 && npos == 2)
		return cli_window(NULL, 0);
	if (strcmp(mode, "dnsq") == 0 && npos == 3) {
		size_t n;
		struct name *names = names_load(pos[2], &n);

		return cli_window(names, n);
	}
	return usage();
}
