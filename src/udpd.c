/*
 * udpd.c - the NFQUEUE consumer and the UDP DNS proxy (see udpd.h).
 *
 * Each of the UDP threads owns its event_base, its queue (queue_num + i),
 * its DNS socket (SO_REUSEPORT, picked by CPU like the queue: see
 * udpd_reuseport_cpu), its pending queries, its conntrack socket and its
 * attrib_t.  What they share: the queue's records (a query may be queued
 * by one thread and reach another thread's DNS socket; one mutex), the
 * counters (relaxed atomics), the policy (polref) and the DNS cache (its
 * own mutex).
 */
#include "udpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <linux/filter.h>
#include <linux/netfilter.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctlookup.h"
#include "hmap.h"
#include "nfqueue.h"
#include "procinfo.h"
#include "util.h"

/* Queue records (the fallback for the resolver): how many, how long. */
#define UDPD_REC_MAX 4096
#define UDPD_REC_TTL_S 5.0
/* Datagrams read from the DNS socket per wake-up. */
#define UDPD_READ_ROUNDS 64
/* A query larger than this is not a query anyone sends (EDNS payloads are
 * about answers); it is dropped. */
#define UDPD_QUERY_MAX 4096
#define UDPD_REPLY_MAX 65535
#define UDPD_DNS_PORT 53
#define UDPD_MDNS_PORT 5353

#define UDPD_INC(u, f) \
	atomic_fetch_add_explicit(&(u)->sh->stats.f, 1, memory_order_relaxed)
#define UDPD_DEC(u, f) \
	atomic_fetch_sub_explicit(&(u)->sh->stats.f, 1, memory_order_relaxed)
#define UDPD_ADD(u, f, v) \
	atomic_fetch_add_explicit(&(u)->sh->stats.f, (v), memory_order_relaxed)

/* A DNS query seen by the queue consumer, before its REDIRECT. */
struct udpd_rec {
	char key[8]; /* source address, source port, DNS id (wire order) */
	struct in_addr dst;
	uint16_t dport;
	double t;
	bool ambiguous; /* the same key went to two resolvers */
	bool live;
};

/* A query waiting for its resolver. */
struct udpd_q {
	struct udpd_thr *u;
	struct udpd_q *prev, *next;
	int fd; /* connected to the resolver, carrying our mark */
	struct event *ev; /* reply or timeout */
	struct sockaddr_in client;
	struct in_addr local; /* the address the client's packet reached */
	uint16_t client_id, up_id;
	uint8_t *query; /* as the client sent it */
	size_t qlen;
	/* When SERVFAIL is due: a persistent event's timeout restarts at
	 * every wake-up, so a resolver sending junk could hold the query. */
	double deadline;
	struct dnsj_query q;
};

/* The queue's records of every thread, in the order they came. */
struct udpd_recs {
	pthread_mutex_t lock;
	struct hmap map; /* key -> struct udpd_rec */
	struct udpd_rec ring[UDPD_REC_MAX];
	size_t next;
};

/* One UDP thread. */
struct udpd_thr {
	struct udpd_shared *sh;
	struct udpd_recs *recs; /* the udpd's */
	unsigned idx;
	struct event_base *base;
	pthread_t thread;
	bool thread_started;
	struct event *stop_ev;
	nfqueue_t *nfq;
	ctlookup_t *ct;
	attrib_t *attrib;
	struct attrib_stats ast; /* attrib's counters already added */
	int dns_fd;
	struct event *dns_ev;
	struct udpd_q *pending;
	unsigned lo_ifindex; /* loopback's, 0 if unknown (never foreign) */
	int cpu; /* the CPU it is pinned to, -1 if none */
	atomic_ulong queued, queries; /* this thread's share */
	uint8_t buf[UDPD_REPLY_MAX + 1];
};

struct udpd {
	struct udpd_shared *sh;
	int stop_fd; /* eventfd: the stop request, seen by every thread */
	struct udpd_recs recs;
	unsigned nthr;
	struct udpd_thr **thr;
};

/* Did a packet that came in on ifindex (0: sent here) come from another
 * netns? */
static bool udpd_foreign(const struct udpd_thr *u, unsigned ifindex)
{
	return u->lo_ifindex && ifindex && ifindex != u->lo_ifindex;
}

static bool udpd_pkt_foreign(const struct udpd_thr *u,
			     const struct nfqueue_pkt *p)
{
	return p->hook == NF_INET_PRE_ROUTING && udpd_foreign(u, p->indev);
}

/* ---- attribution ------------------------------------------------------- */

/*
 * foreign: the packet arrived on an interface other than loopback, so it
 * was sent from another netns (a bridged container) and sock_diag, which
 * looks in ours, cannot find its socket.  Locally sent packets, also those
 * to a bridge address, come in on loopback or through LOCAL_OUT.
 */
static struct attrib_proc *udpd_attrib(struct udpd_thr *u, uint32_t saddr,
				       uint32_t daddr, uint16_t sport,
				       uint16_t dport, bool foreign)
{
	struct attrib_tuple t = { .saddr = saddr,
				  .daddr = daddr,
				  .sport = sport,
				  .dport = dport,
				  .proto = IPPROTO_UDP,
				  .foreign = foreign };
	struct attrib_proc *pr = NULL;
	struct attrib_stats st;
	int rc;

	if (!u->attrib)
		return NULL;
	rc = attrib_lookup(u->attrib, &t, &pr, NULL);
	/* every thread's attrib_t counts its own: add what is new */
	attrib_get_stats(u->attrib, &st);
	UDPD_ADD(u, attrib_cache_hits, st.cache_hits - u->ast.cache_hits);
	UDPD_ADD(u, attrib_diag_queries, st.diag_queries - u->ast.diag_queries);
	UDPD_ADD(u, attrib_diag_skipped, st.diag_skipped - u->ast.diag_skipped);
	UDPD_ADD(u, attrib_pid_watch_hits,
		 st.pid_watch_hits - u->ast.pid_watch_hits);
	u->ast = st;
	if (rc < 0) {
		UDPD_INC(u, attrib_misses);
		return NULL;
	}
	return pr;
}

/* ---- the queue's records (resolver fallback) --------------------------- */

static void udpd_rec_key(char key[8], uint32_t saddr, uint16_t sport,
			 uint16_t id)
{
	memcpy(key, &saddr, 4);
	key[4] = (char)(sport >> 8);
	key[5] = (char)sport;
	key[6] = (char)(id >> 8);
	key[7] = (char)id;
}

static void udpd_rec_add(struct udpd_recs *rs, uint32_t saddr, uint16_t sport,
			 uint16_t id, uint32_t daddr, uint16_t dport)
{
	double now = util_mono_now();
	struct udpd_rec *r;
	bool created;
	char key[8];

	udpd_rec_key(key, saddr, sport, id);
	pthread_mutex_lock(&rs->lock);
	r = hmap_get(&rs->map, key, sizeof(key));
	if (r) {
		bool live = now - r->t <= UDPD_REC_TTL_S;

		/* the same key to another resolver while the first is
		 * pending: neither can be told from the other */
		r->ambiguous = live &&
			       (r->ambiguous || r->dst.s_addr != daddr ||
				r->dport != dport);
	} else {
		/* The ring holds records in the order they came: the oldest
		 * one makes room, and the map forgets it. */
		r = &rs->ring[rs->next];
		rs->next = (rs->next + 1) % UDPD_REC_MAX;
		if (r->live)
			hmap_del(&rs->map, r->key, sizeof(r->key));
		memcpy(r->key, key, sizeof(key));
		r->ambiguous = false;
		r->live = true;
		*hmap_slot(&rs->map, key, sizeof(key), &created) = r;
	}
	r->dst.s_addr = daddr;
	r->dport = dport;
	r->t = now;
	pthread_mutex_unlock(&rs->lock);
}

/* Takes the record of a query: 0 with the resolver, -1 if there is none
 * usable (missing, expired or ambiguous). */
static int udpd_rec_take(struct udpd_recs *rs, uint32_t saddr, uint16_t sport,
			 uint16_t id, struct in_addr *dst, uint16_t *dport)
{
	struct udpd_rec *r;
	char key[8];
	int rc = -1;

	udpd_rec_key(key, saddr, sport, id);
	pthread_mutex_lock(&rs->lock);
	r = hmap_del(&rs->map, key, sizeof(key));
	if (r) {
		r->live = false;
		if (!r->ambiguous && util_mono_now() - r->t <= UDPD_REC_TTL_S) {
			*dst = r->dst;
			*dport = r->dport;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&rs->lock);
	return rc;
}

/* ---- queue consumer ----------------------------------------------------- */

static void udpd_verdict(nfqueue_t *q, const struct nfqueue_pkt *p, int verdict,
			 uint32_t add_mark)
{
	if (nfqueue_verdict(q, p->id, verdict, add_mark != 0,
			    p->mark | add_mark) < 0)
		fprintf(stderr,
			"egressd: queue: verdict for packet %u failed\n",
			p->id);
}

static void udpd_other_proto(struct udpd_thr *u, nfqueue_t *q,
			     const struct nfqueue_pkt *p,
			     const struct iphdr *ip)
{
	char dst[INET_ADDRSTRLEN];
	struct jrec r;
	bool audit = u->sh->dns.audit;

	inet_ntop(AF_INET, &ip->daddr, dst, sizeof(dst));
	jrec_begin(&r, "ip", 0);
	jrec_str(&r, "dst_ip", dst);
	jrec_int(&r, "protocol", ip->protocol);
	jrec_str(&r, "policy", "deny");
	procinfo_log_end(u->sh->dns.log, &r, NULL, -1);
	UDPD_INC(u, ip_dropped);
	udpd_verdict(q, p, audit ? NF_ACCEPT : NF_DROP, 0);
}

static void udpd_log_udp(struct udpd_thr *u, const struct iphdr *ip,
			 uint16_t sport, uint16_t dport,
			 const struct attrib_proc *pr,
			 const struct policy_decision *d, const char *error)
{
	char dst[INET_ADDRSTRLEN];
	struct jrec r;

	inet_ntop(AF_INET, &ip->daddr, dst, sizeof(dst));
	jrec_begin(&r, "udp", 0);
	jrec_str(&r, "dst_ip", dst);
	jrec_int(&r, "dst_port", dport);
	jrec_str(&r, "policy", policy_decision_label(d));
	if (error)
		jrec_str(&r, "error", error);
	procinfo_log_end(u->sh->dns.log, &r, pr, sport);
}

static void udpd_judge_udp(struct udpd_thr *u, nfqueue_t *q,
			   const struct nfqueue_pkt *p, const struct iphdr *ip,
			   uint16_t sport, uint16_t dport)
{
	char dst[INET_ADDRSTRLEN];
	struct policy_event ev = { .type = POLICY_EV_UDP };
	struct policy_decision d;
	struct attrib_proc *pr;
	struct polhold *h;

	pr = udpd_attrib(u, ip->saddr, ip->daddr, sport, dport,
			 udpd_pkt_foreign(u, p));
	inet_ntop(AF_INET, &ip->daddr, dst, sizeof(dst));
	ev.dst_ip = dst;
	ev.dst_port = dport;
	procinfo_to_policy(pr, &ev.proc);
	h = polref_get(u->sh->dns.policy);
	policy_decide(polhold_policy(h), NULL, u->sh->dns.audit, false,
		      util_mono_now(), &ev, &d);
	polref_put(h);
	udpd_log_udp(u, ip, sport, dport, pr, &d, NULL);
	attrib_proc_free(pr);
	if (d.allow) {
		UDPD_INC(u, udp_allow);
		udpd_verdict(q, p, NF_REPEAT, u->sh->mark_udp);
	} else {
		UDPD_INC(u, udp_deny);
		udpd_verdict(q, p, NF_DROP, 0);
	}
}

static void udpd_not_dns(struct udpd_thr *u, nfqueue_t *q,
			 const struct nfqueue_pkt *p, const struct iphdr *ip,
			 uint16_t sport, uint16_t dport)
{
	struct policy_decision d = { .allow = false, .rule = -1 };
	struct attrib_proc *pr;

	pr = udpd_attrib(u, ip->saddr, ip->daddr, sport, dport,
			 udpd_pkt_foreign(u, p));
	udpd_log_udp(u, ip, sport, dport, pr, &d, "not_dns");
	attrib_proc_free(pr);
	UDPD_INC(u, not_dns);
	/* Audit mode blocks nothing; the flow then bypasses the DNS proxy,
	 * which audit mode accepts. */
	udpd_verdict(q, p, u->sh->dns.audit ? NF_ACCEPT : NF_DROP, 0);
}

static void udpd_packet(void *arg, nfqueue_t *q, const struct nfqueue_pkt *p)
{
	struct udpd_thr *u = arg;
	const struct iphdr *ip = (const struct iphdr *)p->data;
	const struct udphdr *uh;
	struct dnsmsg m;
	size_t ihl, tot;
	uint16_t sport, dport;

	UDPD_INC(u, queued);
	atomic_fetch_add_explicit(&u->queued, 1, memory_order_relaxed);
	if (p->len < sizeof(*ip) || ip->version != 4 || ip->ihl < 5 ||
	    (size_t)ip->ihl * 4 > p->len) {
		UDPD_INC(u, malformed);
		udpd_verdict(q, p, NF_DROP, 0);
		return;
	}
	ihl = (size_t)ip->ihl * 4;
	tot = ntohs(ip->tot_len);
	if (tot > p->len || tot < ihl)
		tot = p->len;
	if (ip->protocol != IPPROTO_UDP) {
		udpd_other_proto(u, q, p, ip);
		return;
	}
	/* Conntrack reassembles before the mangle hooks: a fragment here
	 * has no UDP header to judge. */
	if ((ntohs(ip->frag_off) & (IP_MF | IP_OFFMASK)) ||
	    tot - ihl < sizeof(*uh)) {
		UDPD_INC(u, malformed);
		udpd_verdict(q, p, NF_DROP, 0);
		return;
	}
	uh = (const struct udphdr *)(p->data + ihl);
	sport = ntohs(uh->source);
	dport = ntohs(uh->dest);
	if (dport != UDPD_DNS_PORT && dport != UDPD_MDNS_PORT) {
		udpd_judge_udp(u, q, p, ip, sport, dport);
		return;
	}
	if (dnsmsg_parse(&m, p->data + ihl + sizeof(*uh),
			 tot - ihl - sizeof(*uh)) < 0 ||
	    m.hdr.qr) {
		udpd_not_dns(u, q, p, ip, sport, dport);
		return;
	}
	udpd_rec_add(u->recs, ip->saddr, sport, m.hdr.id, ip->daddr, dport);
	UDPD_INC(u, dns_marked);
	udpd_verdict(q, p, NF_REPEAT, u->sh->mark_dns);
}

/* ---- DNS proxy: replies -------------------------------------------------- */

/* Sends msg to the client from the address its query reached, so that
 * conntrack maps the reply back to the resolver it asked. */
static void udpd_send_client(struct udpd_thr *u,
			     const struct sockaddr_in *client,
			     struct in_addr local, const void *msg, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
	struct sockaddr_in to = *client;
	struct iovec iov = { .iov_len = len };
	struct msghdr mh = { .msg_name = &to,
			     .msg_namelen = sizeof(to),
			     .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	struct in_pktinfo pi = { .ipi_spec_dst = local };

	/* sendmsg does not write through iov_base. */
	memcpy(&iov.iov_base, &msg, sizeof(msg));
	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = IPPROTO_IP;
	cm->cmsg_type = IP_PKTINFO;
	cm->cmsg_len = CMSG_LEN(sizeof(pi));
	memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	if (sendmsg(u->dns_fd, &mh, MSG_DONTWAIT) < 0 && errno != EAGAIN)
		fprintf(stderr, "egressd: dns: reply to %s:%u: %s\n",
			inet_ntoa(client->sin_addr), ntohs(client->sin_port),
			strerror(errno));
}

static void udpd_reply_rcode(struct udpd_thr *u,
			     const struct sockaddr_in *client,
			     struct in_addr local, const void *query,
			     size_t qlen, unsigned rcode)
{
	uint8_t out[DNSMSG_UDP_MAX];
	size_t n;

	if (dnsmsg_build_reply(query, qlen, rcode, out, sizeof(out), &n) == 0)
		udpd_send_client(u, client, local, out, n);
}

static void udpd_q_free(struct udpd_q *pq)
{
	struct udpd_thr *u = pq->u;

	if (pq->prev)
		pq->prev->next = pq->next;
	else if (u->pending == pq)
		u->pending = pq->next;
	if (pq->next)
		pq->next->prev = pq->prev;
	if (pq->ev)
		event_free(pq->ev);
	if (pq->fd >= 0) {
		close(pq->fd);
		UDPD_DEC(u, dns_pending);
	}
	free(pq->query);
	dnsj_query_clear(&pq->q);
	free(pq);
}

static void udpd_q_servfail(struct udpd_q *pq, const char *why)
{
	struct udpd_thr *u = pq->u;

	UDPD_INC(u, dns_servfail);
	if (getenv("EGRESSD_DEBUG"))
		fprintf(stderr, "egressd: dns: %s for %s from %s: SERVFAIL\n",
			why, pq->q.msg.q.name, pq->q.dst_ip);
	udpd_reply_rcode(u, &pq->client, pq->local, pq->query, pq->qlen,
			 DNSMSG_RCODE_SERVFAIL);
	udpd_q_free(pq);
}

static void udpd_up_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udpd_q *pq = arg;
	struct udpd_thr *u = pq->u;
	ssize_t n;

	if ((what & EV_TIMEOUT) || util_mono_now() >= pq->deadline) {
		udpd_q_servfail(pq, "no reply in time");
		return;
	}
	for (;;) {
		n = recv(fd, u->buf, sizeof(u->buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			udpd_q_servfail(pq, strerror(errno));
			return;
		}
		/* The socket is connected: only the resolver's datagrams
		 * arrive.  A wrong id, an oversized datagram or another
		 * question is ignored; the right answer may still come. */
		if ((size_t)n > UDPD_REPLY_MAX || n < DNSMSG_HDRLEN ||
		    ((u->buf[0] << 8) | u->buf[1]) != pq->up_id) {
			UDPD_INC(u, dns_ignored_replies);
			continue;
		}
		u->buf[0] = (uint8_t)(pq->client_id >> 8);
		u->buf[1] = (uint8_t)pq->client_id;
		if (dnsj_answer(&u->sh->dns, &pq->q, u->buf, (size_t)n,
				util_mono_now()) < 0) {
			UDPD_INC(u, dns_ignored_replies);
			continue;
		}
		udpd_send_client(u, &pq->client, pq->local, u->buf, (size_t)n);
		UDPD_INC(u, dns_answers);
		udpd_q_free(pq);
		return;
	}
}

/* ---- DNS proxy: queries --------------------------------------------------- */

static int udpd_forward(struct udpd_thr *u, struct udpd_q *pq,
			struct in_addr dst, uint16_t dport)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr = dst,
				  .sin_port = htons(dport) };
	struct timeval tv = { .tv_sec = u->sh->timeout_ms / 1000,
			      .tv_usec = (u->sh->timeout_ms % 1000) * 1000 };
	uint8_t *msg;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &u->sh->own_mark,
		       sizeof(u->sh->own_mark)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	pq->fd = fd;
	UDPD_INC(u, dns_pending);
	arc4random_buf(&pq->up_id, sizeof(pq->up_id));
	msg = util_xmalloc(pq->qlen);
	memcpy(msg, pq->query, pq->qlen);
	msg[0] = (uint8_t)(pq->up_id >> 8);
	msg[1] = (uint8_t)pq->up_id;
	if (send(fd, msg, pq->qlen, 0) < 0) {
		free(msg);
		return -1;
	}
	free(msg);
	pq->deadline = util_mono_now() + u->sh->timeout_ms / 1000.0;
	pq->ev = event_new(u->base, fd, EV_READ | EV_PERSIST, udpd_up_cb, pq);
	if (!pq->ev || event_add(pq->ev, &tv) < 0)
		return -1;
	return 0;
}

/* The resolver the client asked, or -1 if it is unknown; 1 if the query
 * was not redirected at all (sent to the DNS port directly). */
static int udpd_orig_dst(struct udpd_thr *u, const struct sockaddr_in *client,
			 struct in_addr local, uint16_t id, struct in_addr *dst,
			 uint16_t *dport)
{
	struct sockaddr_in osrc, odst;
	struct in_addr rdst;
	uint16_t rport;
	bool natted = false;
	int rc, have_rec;

	have_rec = udpd_rec_take(u->recs, client->sin_addr.s_addr,
				 ntohs(client->sin_port), id, &rdst, &rport);
	rc = u->ct ? ctlookup_orig(u->ct, IPPROTO_UDP, local, u->sh->dns_port,
				   client->sin_addr, ntohs(client->sin_port),
				   &osrc, &odst, &natted) :
		     -ENOENT;
	if (rc == 0) {
		if (!natted)
			return 1;
		*dst = odst.sin_addr;
		*dport = ntohs(odst.sin_port);
		return 0;
	}
	if (have_rec == 0) {
		UDPD_INC(u, dns_via_record);
		*dst = rdst;
		*dport = rport;
		return 0;
	}
	UDPD_INC(u, dns_unknown_dst);
	return -1;
}

static void udpd_query(struct udpd_thr *u, const uint8_t *msg, size_t len,
		       const struct sockaddr_in *client, struct in_addr local,
		       bool foreign)
{
	struct udpd_q *pq;
	struct in_addr dst;
	uint16_t dport = 0;
	enum dnsj_form form;
	int where;

	UDPD_INC(u, dns_queries);
	atomic_fetch_add_explicit(&u->queries, 1, memory_order_relaxed);
	pq = util_xcalloc(1, sizeof(*pq));
	pq->u = u;
	pq->fd = -1;
	pq->client = *client;
	pq->local = local;
	form = dnsj_parse_query(&pq->q, msg, len);
	if (form == DNSJ_FORM_DROP) {
		UDPD_INC(u, dns_dropped);
		udpd_q_free(pq);
		return;
	}
	pq->query = util_xmalloc(len);
	memcpy(pq->query, msg, len);
	pq->qlen = len;
	pq->client_id = pq->q.msg.hdr.id;
	pq->q.src_port = ntohs(client->sin_port);
	where = udpd_orig_dst(u, client, local, pq->client_id, &dst, &dport);
	if (where == 1) {
		/* Aimed at our own port: answering would be fine, forwarding
		 * would loop; refuse it, as the TCP proxy does (SPEC §9.5). */
		UDPD_INC(u, dns_direct);
		dnsj_set_dst(&pq->q, &local, u->sh->dns_port);
		pq->q.error = "direct_to_proxy";
		pq->q.proc = udpd_attrib(u, client->sin_addr.s_addr,
					 local.s_addr, pq->q.src_port,
					 u->sh->dns_port, foreign);
		dnsj_log_refused(&u->sh->dns, &pq->q);
		UDPD_INC(u, dns_deny);
		udpd_reply_rcode(u, client, local, msg, len,
				 DNSMSG_RCODE_REFUSED);
		udpd_q_free(pq);
		return;
	}
	dnsj_set_dst(&pq->q, where == 0 ? &dst : NULL, dport);
	if (where == 0)
		pq->q.proc = udpd_attrib(u, client->sin_addr.s_addr, dst.s_addr,
					 pq->q.src_port, dport, foreign);
	if (form == DNSJ_FORM_REFUSE) {
		dnsj_log_refused(&u->sh->dns, &pq->q);
		UDPD_INC(u, dns_deny);
		udpd_reply_rcode(u, client, local, msg, len, pq->q.reply_rcode);
		udpd_q_free(pq);
		return;
	}
	if (!dnsj_judge(&u->sh->dns, &pq->q, util_mono_now())) {
		UDPD_INC(u, dns_deny);
		udpd_reply_rcode(u, client, local, msg, len,
				 DNSMSG_RCODE_REFUSED);
		udpd_q_free(pq);
		return;
	}
	UDPD_INC(u, dns_allow);
	if (where != 0) {
		/* Audit mode allows what it cannot forward. */
		udpd_q_servfail(pq, "resolver unknown");
		return;
	}
	if (atomic_load_explicit(&u->sh->stats.dns_pending,
				 memory_order_relaxed) >= u->sh->max_pending) {
		udpd_q_servfail(pq, "too many queries pending");
		return;
	}
	pq->next = u->pending;
	if (u->pending)
		u->pending->prev = pq;
	u->pending = pq;
	if (udpd_forward(u, pq, dst, dport) < 0)
		udpd_q_servfail(pq, strerror(errno));
}

static void udpd_dns_cb(evutil_socket_t fd, short what UNUSED, void *arg)
{
	struct udpd_thr *u = arg;

	for (int i = 0; i < UDPD_READ_ROUNDS; i++) {
		char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct sockaddr_in client;
		struct iovec iov = { .iov_base = u->buf,
				     .iov_len = sizeof(u->buf) };
		struct msghdr mh = { .msg_name = &client,
				     .msg_namelen = sizeof(client),
				     .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct in_addr local = { 0 };
		unsigned ifindex = 0;
		bool have_local = false;
		ssize_t n;

		n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0)
			return;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
		     cm = CMSG_NXTHDR(&mh, cm)) {
			struct in_pktinfo pi;

			if (cm->cmsg_level != IPPROTO_IP ||
			    cm->cmsg_type != IP_PKTINFO ||
			    cm->cmsg_len < CMSG_LEN(sizeof(pi)))
				continue;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			local = pi.ipi_addr;
			ifindex = (unsigned)pi.ipi_ifindex;
			have_local = true;
		}
		if (!have_local || mh.msg_namelen < sizeof(client) ||
		    client.sin_family != AF_INET ||
		    (mh.msg_flags & MSG_TRUNC) || (size_t)n > UDPD_QUERY_MAX) {
			UDPD_INC(u, dns_dropped);
			continue;
		}
		udpd_query(u, u->buf, (size_t)n, &client, local,
			   udpd_foreign(u, ifindex));
	}
}

/* ---- threads and setup ---------------------------------------------------- */

static void udpd_stop_cb(evutil_socket_t fd UNUSED, short what UNUSED,
			 void *arg)
{
	struct udpd_thr *u = arg;

	event_base_loopbreak(u->base);
}

static void *udpd_main(void *arg)
{
	struct udpd_thr *u = arg;

	event_base_dispatch(u->base);
	return NULL;
}

/* reuseport: one of several threads' sockets on the same port. */
static int udpd_dns_socket(struct udpd_shared *sh, bool reuseport)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(sh->dns_port),
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	int one = 1, buf = 4 << 20;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Our replies carry the mark too: the queue leaves them alone. */
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &sh->own_mark,
		       sizeof(sh->own_mark)) < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	return fd;
}

/*
 * Several threads: the rules queue a packet to queue_num + (the CPU it is
 * handled on) % n (--queue-cpu-fanout), and this program picks, among the
 * n DNS sockets (index = the order they were bound), socket (the CPU the
 * redirected query is delivered on) % n.  A verdict re-injects the packet
 * on the thread's own CPU, so a thread pinned to a CPU c with c % n equal
 * to its index receives the queries it has just let through: no other
 * thread is woken.  Without the pinning it is still correct (the records
 * are shared), only slower.
 */
static int udpd_reuseport_cpu(int fd, unsigned n)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_CPU),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog = { .len = ARRAY_SIZE(code), .filter = code };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
			  sizeof(prog));
}

/* Pins thread t to an allowed CPU c with c % n == idx; the CPU,
 * or -1 if there is none (a restricted cpuset) or pinning fails. */
static int udpd_pin_thread(pthread_t t, unsigned idx, unsigned n)
{
	cpu_set_t allowed, one;

	if (n < 2 || sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &allowed) || (unsigned)c % n != idx)
			continue;
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		if (pthread_setaffinity_np(t, sizeof(one), &one) == 0)
			return c;
		return -1;
	}
	return -1;
}

static void udpd_thr_free(struct udpd_thr *u)
{
	if (!u)
		return;
	while (u->pending)
		udpd_q_servfail(u->pending, "shutting down");
	if (u->dns_ev)
		event_free(u->dns_ev);
	if (u->dns_fd >= 0)
		close(u->dns_fd);
	if (u->nfq)
		nfqueue_close(u->nfq);
	if (u->ct)
		ctlookup_close(u->ct);
	if (u->stop_ev)
		event_free(u->stop_ev);
	attrib_free(u->attrib);
	if (u->base)
		event_base_free(u->base);
	free(u);
}

/* Thread idx's loop, sockets and queue, not yet running; NULL (said on
 * stderr) on failure. */
static struct udpd_thr *udpd_thr_open(struct udpd *d, unsigned idx)
{
	struct udpd_shared *sh = d->sh;
	struct udpd_thr *u = util_xcalloc(1, sizeof(*u));
	uint16_t qnum = (uint16_t)(sh->queue_num + idx);
	char *err = NULL;

	u->sh = sh;
	u->recs = &d->recs;
	u->idx = idx;
	u->dns_fd = -1;
	u->cpu = -1;
	u->lo_ifindex = if_nametoindex("lo");
	u->base = event_base_new();
	if (!u->base)
		goto fail;
	if (sh->attrib.pin_dir || sh->attrib.conn_map_fd >= 0) {
		u->attrib = attrib_new(&sh->attrib);
		if (!u->attrib)
			fprintf(stderr, "egressd: udp: no attribution\n");
	}
	u->ct = ctlookup_open(&err);
	if (!u->ct) {
		fprintf(stderr, "egressd: conntrack: %s\n", err ? err : "?");
		goto fail;
	}
	u->dns_fd = udpd_dns_socket(sh, d->nthr > 1);
	if (u->dns_fd < 0) {
		fprintf(stderr, "egressd: DNS port %u: %s\n", sh->dns_port,
			strerror(errno));
		goto fail;
	}
	/* the group's program, attached once all of it is bound */
	if (d->nthr > 1 && idx == d->nthr - 1 &&
	    udpd_reuseport_cpu(u->dns_fd, d->nthr) < 0) {
		fprintf(stderr, "egressd: DNS sockets by CPU: %s\n",
			strerror(errno));
		goto fail;
	}
	u->dns_ev = event_new(u->base, u->dns_fd, EV_READ | EV_PERSIST,
			      udpd_dns_cb, u);
	u->stop_ev = event_new(u->base, d->stop_fd, EV_READ, udpd_stop_cb, u);
	if (!u->dns_ev || !u->stop_ev || event_add(u->dns_ev, NULL) < 0 ||
	    event_add(u->stop_ev, NULL) < 0)
		goto fail;
	u->nfq = nfqueue_open(u->base, qnum, udpd_packet, u, &err);
	if (!u->nfq) {
		fprintf(stderr, "egressd: queue %u: %s\n", qnum,
			err ? err : "?");
		goto fail;
	}
	return u;
fail:
	free(err);
	udpd_thr_free(u);
	return NULL;
}

static void udpd_free(struct udpd *d)
{
	for (unsigned i = 0; i < d->nthr; i++)
		udpd_thr_free(d->thr[i]);
	free(d->thr);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	hmap_fini(&d->recs.map);
	pthread_mutex_destroy(&d->recs.lock);
	free(d);
}

int udpd_start(struct udpd_shared *sh, struct udpd **out)
{
	struct udpd *d = util_xcalloc(1, sizeof(*d));
	unsigned n = sh->threads ? sh->threads : 1;

	if ((unsigned)sh->queue_num + n - 1 > UINT16_MAX) {
		fprintf(stderr, "egressd: queues %u to %u: past queue %u\n",
			sh->queue_num, sh->queue_num + n - 1, UINT16_MAX);
		free(d);
		return -1;
	}
	d->sh = sh;
	pthread_mutex_init(&d->recs.lock, NULL);
	d->nthr = n;
	d->thr = util_xcalloc(n, sizeof(*d->thr));
	d->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->stop_fd < 0)
		goto fail;
	/* Every queue bound and every socket open before any thread runs:
	 * a failure leaves nothing running. */
	for (unsigned i = 0; i < n; i++) {
		d->thr[i] = udpd_thr_open(d, i);
		if (!d->thr[i])
			goto fail;
	}
	for (unsigned i = 0; i < n; i++) {
		if (pthread_create(&d->thr[i]->thread, NULL, udpd_main,
				   d->thr[i]) != 0) {
			udpd_stop(d);
			return -1;
		}
		d->thr[i]->thread_started = true;
	}
	for (unsigned i = 0; i < n; i++)
		d->thr[i]->cpu = udpd_pin_thread(d->thr[i]->thread, i, n);
	*out = d;
	return 0;
fail:
	udpd_free(d);
	return -1;
}

void udpd_stop(struct udpd *d)
{
	uint64_t one = 1;

	if (!d)
		return;
	/* The eventfd stays readable: each thread's one-shot event sees
	 * it. */
	if (write(d->stop_fd, &one, sizeof(one)) < 0)
		fprintf(stderr, "egressd: udp: stop: %s\n", strerror(errno));
	for (unsigned i = 0; i < d->nthr; i++)
		if (d->thr[i] && d->thr[i]->thread_started)
			pthread_join(d->thr[i]->thread, NULL);
	udpd_free(d);
}

unsigned udpd_threads(const struct udpd *d)
{
	return d->nthr;
}

void udpd_thread_stats(const struct udpd *d, unsigned i,
		       struct udpd_thread_stats *st)
{
	const struct udpd_thr *u = d->thr[i];

	st->queue = (uint16_t)(d->sh->queue_num + i);
	st->cpu = u->cpu;
	st->queued = atomic_load_explicit(&u->queued, memory_order_relaxed);
	st->queries = atomic_load_explicit(&u->queries, memory_order_relaxed);
}
