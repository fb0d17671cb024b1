/*
 * attrib.c - 5-tuple -> process record, through the BPF maps, sock_diag
 * and /proc (reference §3.2-3.5), refusing records that could belong to a
 * reused PID.
 */
#include "attrib.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "bpfload.h"
#include "cgroup.h"
#include "dockerimg.h"
#include "hmap.h"
#include "util.h"

/* A validated record of one process, kept for the cache's TTL. */
struct attrib_cent {
	struct attrib_cent *prev, *next; /* recency list, newest first */
	char key[20]; /* pid, /proc start time, entry's cgroup id */
	double t; /* when it was validated */
	struct attrib_proc *p; /* owned; via and owner are the first lookup's */
};

/* A pidfd on a process the cache holds, and its /proc start time. */
struct attrib_pidw {
	int pid; /* 0: unused */
	int fd;
	unsigned long long start;
};

struct attrib {
	int conn_fd;
	int cookie_fd;
	bool own_fds;
	int diag_fd; /* NETLINK_SOCK_DIAG in the diag netns, or -1 */
	uint32_t diag_seq;
	char *proc_root;
	char *worker_exe;
	char *runner_cgroup;
	struct dockerimg *docker; /* not owned */
	uint64_t tick_ns; /* one /proc clock tick (1/USER_HZ s) in ns */
	/* record cache: cents[0..ncent) in use, in the map by key */
	struct attrib_cent *cents;
	size_t ncent, cache_max;
	struct attrib_cent *newest, *oldest;
	struct hmap cache;
	/* pid watches, replaced in turn; on only with the cache and the
	 * real /proc (a pidfd names a process of our pid namespace) */
	struct attrib_pidw pidw[ATTRIB_PIDW_MAX];
	unsigned pidw_next;
	bool pidw_on;
	double ttl;
	double (*clock)(void);
	struct attrib_stats st;
};

const char *attrib_via_str(enum attrib_via v)
{
	static const char *const names[ATTRIB_VIA_MAX] = {
		[ATTRIB_VIA_EXACT] = "exact",
		[ATTRIB_VIA_WILDCARD] = "wildcard",
		[ATTRIB_VIA_DIAG] = "diag",
	};
	return v < ATTRIB_VIA_MAX ? names[v] : "?";
}

const char *attrib_src_str(uint32_t src)
{
	switch (src) {
	case EGRESS_SRC_CONNECT4:
		return "connect4";
	case EGRESS_SRC_SOCKOPS:
		return "sockops";
	case EGRESS_SRC_SENDMSG4:
		return "sendmsg4";
	case EGRESS_SRC_SKB:
		return "skb";
	}
	return "?";
}

const char *attrib_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case -ENOENT:
		return "no entry";
	case -ESRCH:
		return "process exited";
	case -ESTALE:
		return "pid reused";
	case -EXDEV:
		return "cgroup mismatch";
	}
	return strerror(err < 0 ? -err : err);
}

void attrib_key(const struct attrib_tuple *t, struct egress_tuple4 *k)
{
	memset(k, 0, sizeof(*k));
	k->saddr = t->saddr;
	k->daddr = t->daddr;
	k->sport = htons(t->sport);
	k->dport = htons(t->dport);
	k->proto = t->proto;
}

void attrib_tuple_of_key(const struct egress_tuple4 *k, struct attrib_tuple *t)
{
	memset(t, 0, sizeof(*t));
	t->saddr = k->saddr;
	t->daddr = k->daddr;
	t->sport = ntohs(k->sport);
	t->dport = ntohs(k->dport);
	t->proto = k->proto;
}

int attrib_conn_map_fd(const attrib_t *a)
{
	return a->conn_fd;
}

/* ---- sock_diag ------------------------------------------------------------ */

/*
 * Opens the NETLINK_SOCK_DIAG socket inside netns path: a socket stays
 * bound to the namespace it was created in, so the thread only visits it.
 */
static int diag_open(const char *netns)
{
	struct timeval tv = { .tv_sec = 1 };
	int self = -1, target = -1, fd = -1, err = 0;

	if (netns) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		target = open(netns, O_RDONLY | O_CLOEXEC);
		if (self < 0 || target < 0 || setns(target, CLONE_NEWNET) < 0) {
			err = errno;
			goto out;
		}
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	err = errno;
	if (netns && setns(self, CLONE_NEWNET) < 0) {
		/* never carry on in the wrong namespace */
		perror("attrib: cannot return to the original netns");
		abort();
	}
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
out:
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	errno = err;
	return fd;
}

/*
 * One exact inet_diag request.  The kernel's UDP dump_one looks the socket
 * up as a received packet would (__udp4_lib_lookup(src, sport, dst,
 * dport)), so for UDP the request's "src" is the remote end; TCP's
 * inet_diag_find_one_icsk takes src as the local end ("src and dst are
 * swapped for historical reasons", net/ipv4/udp_diag.c).
 */
static int diag_query(attrib_t *a, const struct attrib_tuple *t,
		      struct inet_diag_msg *res)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = {
			.nlmsg_len = sizeof(req),
			.nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST,
			.nlmsg_seq = ++a->diag_seq,
		},
		.r = {
			.sdiag_family = AF_INET,
			.sdiag_protocol = t->proto,
			.idiag_states = ~0u,
			.id = {
				.idiag_cookie = { INET_DIAG_NOCOOKIE,
						  INET_DIAG_NOCOOKIE },
			},
		},
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	bool udp = t->proto == IPPROTO_UDP;
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	ssize_t n;

	req.r.id.idiag_src[0] = udp ? t->daddr : t->saddr;
	req.r.id.idiag_sport = htons(udp ? t->dport : t->sport);
	req.r.id.idiag_dst[0] = udp ? t->saddr : t->daddr;
	req.r.id.idiag_dport = htons(udp ? t->sport : t->dport);
	if (sendto(a->diag_fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		n = recv(a->diag_fd, buf, sizeof(buf), 0);
		if (n < 0)
			return -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != a->diag_seq)
				continue; /* a late answer to a timed-out query */
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					return -EBADMSG;
				return e->error ? e->error : -ENOENT;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*res)))
				return -EBADMSG;
			memcpy(res, NLMSG_DATA(h), sizeof(*res));
			return 0;
		}
	}
}

int attrib_diag_cookie(attrib_t *a, const struct attrib_tuple *t,
		       uint64_t *cookie, bool *connected)
{
	struct inet_diag_msg m;
	int err;

	if (a->diag_fd < 0)
		return -ENOENT;
	a->st.diag_queries++;
	err = diag_query(a, t, &m);
	if (err)
		return err;
	/* The answer must be this client socket: same local end, and either
	 * connected to this destination or not connected at all (an
	 * unconnected UDP socket, which the lookup also returns). */
	if (m.id.idiag_sport != htons(t->sport) ||
	    (m.id.idiag_src[0] != t->saddr && m.id.idiag_src[0] != 0))
		return -ENOENT;
	if (m.id.idiag_dst[0] != 0 && (m.id.idiag_dst[0] != t->daddr ||
				       m.id.idiag_dport != htons(t->dport)))
		return -ENOENT;
	*cookie = (uint64_t)m.id.idiag_cookie[1] << 32 | m.id.idiag_cookie[0];
	*connected = m.id.idiag_dst[0] != 0;
	return 0;
}

/* ---- /proc ---------------------------------------------------------------- */

static char *proc_path(const attrib_t *a, char *buf, size_t n, int pid,
		       const char *file)
{
	snprintf(buf, n, "%s/%d/%s", a->proc_root, pid, file);
	return buf;
}

/*
 * PPID and start time (clock ticks since boot, CLOCK_BOOTTIME) from
 * /proc/PID/stat; the fields are counted after the last ')' because the
 * command name may hold spaces and parentheses.
 */
static int read_stat(const attrib_t *a, int pid, int *ppid,
		     unsigned long long *start)
{
	char path[PATH_MAX], *text, *p, *save = NULL;
	int field = 3, err = -EBADMSG;

	text = util_read_file(proc_path(a, path, sizeof(path), pid, "stat"),
			      NULL);
	if (!text)
		return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
	p = strrchr(text, ')');
	for (p = p ? strtok_r(p + 1, " ", &save) : NULL; p;
	     p = strtok_r(NULL, " ", &save), field++) {
		if (field == 4 && ppid)
			*ppid = atoi(p);
		if (field == 22) {
			*start = strtoull(p, NULL, 10);
			err = 0;
			break;
		}
	}
	free(text);
	return err;
}

static char *read_link(const attrib_t *a, int pid, const char *file)
{
	char path[PATH_MAX], buf[PATH_MAX];
	ssize_t n;

	n = readlink(proc_path(a, path, sizeof(path), pid, file), buf,
		     sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	return util_xstrndup(buf, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t k;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 1, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 2, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 3, cp = s[0] & 0x07;
	else
		return 0;
	if (n <= k)
		return 0;
	for (size_t j = 1; j <= k; j++) {
		if ((s[j] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[j] & 0x3f);
	}
	if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k + 1;
}

/* A copy of s[0..n) with every invalid UTF-8 byte replaced by U+FFFD. */
static char *utf8_copy(const char *s, size_t n)
{
	struct strbuf sb = { 0 };
	size_t i = 0;

	while (i < n) {
		size_t k = utf8_seq((const unsigned char *)s + i, n - i);
		if (k) {
			strbuf_add(&sb, s + i, k);
			i += k;
		} else {
			strbuf_adds(&sb, "\xef\xbf\xbd");
			i++;
		}
	}
	return sb.buf ? strbuf_steal(&sb) : util_xstrdup("");
}

/* Splits a NUL-separated file (cmdline, environ) into an argv-like list:
 * trailing NULs dropped, empty fields in the middle kept. */
static char **read_nul_list(const attrib_t *a, int pid, const char *file,
			    size_t *count)
{
	char path[PATH_MAX], *text, **v = NULL;
	size_t len, n = 0;

	*count = 0;
	text = util_read_file(proc_path(a, path, sizeof(path), pid, file),
			      &len);
	if (!text)
		return NULL;
	while (len > 0 && text[len - 1] == '\0')
		len--;
	for (size_t i = 0; len > 0 && i <= len;) {
		size_t e = i;
		while (e < len && text[e] != '\0')
			e++;
		v = util_xrealloc(v, (n + 2) * sizeof(*v));
		v[n++] = utf8_copy(text + i, e - i);
		v[n] = NULL;
		i = e + 1;
	}
	free(text);
	*count = n;
	return v;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char *environ_get(const attrib_t *a, int pid, const char *name)
{
	size_t n, len = strlen(name);
	char **env = read_nul_list(a, pid, "environ", &n), *res = NULL;

	for (size_t i = 0; i < n && !res; i++) {
		if (strncmp(env[i], name, len) == 0 && env[i][len] == '=' &&
		    env[i][len + 1] != '\0')
			res = util_xstrdup(env[i] + len + 1);
	}
	free_list(env, n);
	return res;
}

void attrib_github_context(attrib_t *a, int pid, const char *cgroup,
			   char **step, char **action)
{
	int pids[ATTRIB_ANCESTRY_MAX];
	char *exes[ATTRIB_ANCESTRY_MAX];
	size_t n = 0, worker = SIZE_MAX;

	*step = *action = NULL;
	if (!cgroup || strcmp(cgroup, a->runner_cgroup) != 0)
		return;
	while (n < ATTRIB_ANCESTRY_MAX) {
		unsigned long long start;
		char *exe = read_link(a, pid, "exe");
		int ppid = 0;

		if (!exe)
			break;
		pids[n] = pid;
		exes[n++] = exe;
		if (read_stat(a, pid, &ppid, &start) < 0 || ppid <= 1)
			break;
		pid = ppid;
	}
	/* The full path, not the name: a process cannot make its exe link
	 * point at the runner's installed binary without being it. */
	for (size_t i = 0; i < n && worker == SIZE_MAX; i++) {
		if (strcmp(exes[i], a->worker_exe) == 0)
			worker = i;
	}
	if (worker != SIZE_MAX && worker > 0) {
		*step = environ_get(a, pids[worker - 1], "GITHUB_ACTION");
		*action = environ_get(a, pids[worker - 1],
				      "GITHUB_ACTION_REPOSITORY");
	}
	for (size_t i = 0; i < n; i++)
		free(exes[i]);
}

/* ---- validation and records ----------------------------------------------- */

/*
 * Could o->tgid now name a process other than the one BPF saw?  /proc's
 * start time is in ticks, floored; the entry's ts_ns is the moment BPF read
 * the pid, so the process BPF saw started at or before it.  When BPF also
 * read the exact start time, the two must agree to the tick.
 */
static bool pid_reused(const attrib_t *a, const struct egress_owner *o,
		       unsigned long long start_ticks)
{
	if (start_ticks * a->tick_ns > o->ts_ns)
		return true;
	return o->start_ns && start_ticks != o->start_ns / a->tick_ns;
}

static int check_cgroup(const struct egress_owner *o, const char *cgroup)
{
	const char *root = cgroup_v2_mount();
	char path[PATH_MAX];
	uint64_t id;

	if (!root)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s%s", root, cgroup);
	/* a cgroup removed since then cannot be the one BPF saw either */
	if (cgroup_id(path, &id) < 0 || id != o->cgroup_id)
		return -EXDEV;
	return 0;
}

/* The image of the container whose cgroup this is, from the cache only. */
static char *container_image(const attrib_t *a, const char *cgroup)
{
	char id[DOCKERIMG_ID_LEN + 1];

	if (!a->docker || !dockerimg_container_id(cgroup, id))
		return NULL;
	return dockerimg_get(a->docker, id);
}

void attrib_proc_free(struct attrib_proc *p)
{
	if (!p)
		return;
	free(p->exe);
	free_list(p->cmdline, p->ncmdline);
	free(p->cgroup);
	free(p->image);
	free(p->step);
	free(p->action);
	free(p);
}

static char *dup_or_null(const char *s)
{
	return s ? util_xstrdup(s) : NULL;
}

/* A deep copy of p without the image (which is looked up per use). */
static struct attrib_proc *proc_dup(const struct attrib_proc *p)
{
	struct attrib_proc *c = util_xcalloc(1, sizeof(*c));

	c->pid = p->pid;
	c->via = p->via;
	c->owner = p->owner;
	c->exe = dup_or_null(p->exe);
	c->cgroup = dup_or_null(p->cgroup);
	c->step = dup_or_null(p->step);
	c->action = dup_or_null(p->action);
	if (p->ncmdline) {
		c->cmdline = util_xcalloc(p->ncmdline + 1, sizeof(*c->cmdline));
		for (size_t i = 0; i < p->ncmdline; i++)
			c->cmdline[i] = util_xstrdup(p->cmdline[i]);
		c->ncmdline = p->ncmdline;
	}
	return c;
}

static void cache_key(char key[20], int pid, unsigned long long start,
		      uint64_t cgroup_id)
{
	uint64_t st = start;

	memcpy(key, &pid, 4);
	memcpy(key + 4, &st, 8);
	memcpy(key + 12, &cgroup_id, 8);
}

static void cache_unlink(attrib_t *a, struct attrib_cent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		a->newest = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		a->oldest = e->prev;
	e->prev = e->next = NULL;
}

static void cache_push(attrib_t *a, struct attrib_cent *e)
{
	e->prev = NULL;
	e->next = a->newest;
	if (a->newest)
		a->newest->prev = e;
	a->newest = e;
	if (!a->oldest)
		a->oldest = e;
}

/* The cached record for key if it is younger than the TTL, else NULL. */
static const struct attrib_proc *cache_get(attrib_t *a, const char key[20])
{
	struct attrib_cent *e;
	double now;

	if (!a->cache_max)
		return NULL;
	e = hmap_get(&a->cache, key, 20);
	now = e ? a->clock() : 0;
	if (!e || now - e->t > a->ttl || now < e->t) {
		a->st.cache_misses++;
		return NULL;
	}
	a->st.cache_hits++;
	cache_unlink(a, e);
	cache_push(a, e);
	return e->p;
}

/* Keeps a copy of p under key: a new record, or the oldest one reused. */
static void cache_put(attrib_t *a, const char key[20],
		      const struct attrib_proc *p)
{
	struct attrib_cent *e;
	bool created;
	void **slot;

	if (!a->cache_max)
		return;
	e = hmap_get(&a->cache, key, 20);
	if (!e) {
		if (a->ncent < a->cache_max) {
			e = &a->cents[a->ncent++];
		} else {
			e = a->oldest;
			cache_unlink(a, e);
			hmap_del(&a->cache, e->key, sizeof(e->key));
			attrib_proc_free(e->p);
			e->p = NULL;
		}
		memcpy(e->key, key, sizeof(e->key));
		slot = hmap_slot(&a->cache, e->key, sizeof(e->key), &created);
		*slot = e;
	} else {
		cache_unlink(a, e);
		attrib_proc_free(e->p);
	}
	e->p = proc_dup(p);
	e->t = a->clock();
	cache_push(a, e);
}

/* ---- pid watches ----------------------------------------------------------
 *
 * A pidfd refers to one process, never to a later one with the same pid,
 * and polls readable once that process has exited.  While it does not,
 * the pid still names the process whose start time was read when the
 * watch was made: a cache hit needs one poll(2) instead of opening and
 * reading /proc/PID/stat (about a tenth of the UDP thread's CPU per DNS
 * query).
 */

static void pidw_drop(struct attrib_pidw *w)
{
	if (w->pid)
		close(w->fd);
	w->pid = 0;
	w->fd = -1;
}

/* pid's start time from its watch, if it has one and has not exited. */
static bool pidw_start(attrib_t *a, int pid, unsigned long long *start)
{
	for (unsigned i = 0; i < ATTRIB_PIDW_MAX; i++) {
		struct attrib_pidw *w = &a->pidw[i];
		struct pollfd pfd = { .fd = w->fd, .events = POLLIN };

		if (w->pid != pid)
			continue;
		if (poll(&pfd, 1, 0) != 0) {
			/* exited (or the poll failed): read /proc again */
			pidw_drop(w);
			return false;
		}
		*start = w->start;
		a->st.pid_watch_hits++;
		return true;
	}
	return false;
}

/* Watches pid, whose start time was read as start. */
static void pidw_add(attrib_t *a, int pid, unsigned long long start)
{
	struct attrib_pidw *w = NULL;
	unsigned long long again;
	int fd;

	for (unsigned i = 0; i < ATTRIB_PIDW_MAX && !w; i++)
		if (a->pidw[i].pid == pid)
			w = &a->pidw[i];
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		/* ENOSYS before 5.3: nothing is watched from now on */
		if (errno == ENOSYS)
			a->pidw_on = false;
		return;
	}
	/* The pid may have changed hands since start was read: the process
	 * the pidfd names must have that start time too. */
	if (read_stat(a, pid, NULL, &again) < 0 || again != start) {
		close(fd);
		return;
	}
	if (!w) {
		w = &a->pidw[a->pidw_next];
		a->pidw_next = (a->pidw_next + 1) % ATTRIB_PIDW_MAX;
	}
	pidw_drop(w);
	w->pid = pid;
	w->fd = fd;
	w->start = start;
}

void attrib_get_stats(const attrib_t *a, struct attrib_stats *st)
{
	*st = a->st;
}

int attrib_resolve(attrib_t *a, const struct egress_owner *o,
		   enum attrib_via via, struct attrib_proc **out)
{
	unsigned long long start, again;
	const struct attrib_proc *hit;
	struct attrib_proc *p;
	int pid = (int)o->tgid, err;
	char key[20];

	bool watched;

	*out = NULL;
	if (pid <= 0)
		return -ENOENT;
	watched = a->pidw_on && pidw_start(a, pid, &start);
	if (!watched) {
		err = read_stat(a, pid, NULL, &start);
		if (err)
			return err;
	}
	if (pid_reused(a, o, start))
		return -ESTALE;
	/* The same pid with the same start time is the same process, and
	 * the record was validated against this very cgroup id. */
	cache_key(key, pid, start, o->cgroup_id);
	hit = cache_get(a, key);
	if (hit) {
		p = proc_dup(hit);
		p->via = via;
		p->owner = *o;
		/* the image may have become known since */
		p->image = container_image(a, p->cgroup);
		*out = p;
		if (!watched && a->pidw_on)
			pidw_add(a, pid, start);
		return 0;
	}
	p = util_xcalloc(1, sizeof(*p));
	p->pid = pid;
	p->via = via;
	p->owner = *o;
	p->cgroup = cgroup_of_pid(a->proc_root, pid);
	if (!p->cgroup) {
		err = -ESRCH;
		goto fail;
	}
	if ((err = check_cgroup(o, p->cgroup)) < 0)
		goto fail;
	p->exe = read_link(a, pid, "exe");
	p->cmdline = read_nul_list(a, pid, "cmdline", &p->ncmdline);
	p->image = container_image(a, p->cgroup);
	attrib_github_context(a, pid, p->cgroup, &p->step, &p->action);
	/* The reads above are not atomic: if the pid changed hands while we
	 * read, the start time tells. */
	err = read_stat(a, pid, NULL, &again);
	if (err == 0 && again != start)
		err = -ESTALE;
	if (err)
		goto fail;
	cache_put(a, key, p);
	if (!watched && a->pidw_on)
		pidw_add(a, pid, start);
	*out = p;
	return 0;
fail:
	attrib_proc_free(p);
	return err;
}

/* ---- lookup --------------------------------------------------------------- */

static bool map_get(int fd, const void *key, struct egress_owner *o)
{
	return bpf_map_lookup_elem(fd, key, o) == 0;
}

int attrib_lookup(attrib_t *a, const struct attrib_tuple *t,
		  struct attrib_proc **out, struct egress_owner *owner_out)
{
	struct egress_owner exact, wild, found;
	struct egress_tuple4 k;
	bool has_exact, has_wild = false, have = false, connected;
	enum attrib_via via = ATTRIB_VIA_EXACT;
	uint64_t cookie;
	int err;

	*out = NULL;
	attrib_key(t, &k);
	has_exact = map_get(a->conn_fd, &k, &exact);
	if (t->proto == IPPROTO_UDP && t->saddr != 0) {
		k.saddr = 0;
		has_wild = map_get(a->conn_fd, &k, &wild);
	}
	/*
	 * TCP entries are written before the SYN leaves, so a hit is current.
	 * A UDP entry may be older than the socket now using the tuple (the
	 * host's connected UDP is recorded only after the queue), so for UDP
	 * the socket's cookie, if the socket is in the diag netns, decides.
	 */
	if (t->foreign && a->diag_fd >= 0)
		a->st.diag_skipped++;
	if ((t->proto == IPPROTO_UDP || !has_exact) && !t->foreign) {
		err = attrib_diag_cookie(a, t, &cookie, &connected);
		if (err == 0) {
			if (has_exact && exact.cookie == cookie) {
				found = exact, have = true;
			} else if (has_wild && wild.cookie == cookie) {
				found = wild, have = true;
				via = ATTRIB_VIA_WILDCARD;
			} else if (map_get(a->cookie_fd, &cookie, &found)) {
				have = true;
				via = ATTRIB_VIA_DIAG;
			} else if (connected) {
				/* the socket holding exactly this tuple is
				 * not the one the entries name */
				return -ENOENT;
			}
			/* An unconnected socket only matched as a receiver
			 * would (bound to this port on any address): it may
			 * be an unrelated local socket when the packet came
			 * from another netns; the entries decide. */
		} else if (err != -ENOENT) {
			return err;
		}
	}
	if (!have && has_exact) {
		found = exact, have = true;
	} else if (!have && has_wild) {
		found = wild, have = true;
		via = ATTRIB_VIA_WILDCARD;
	}
	if (!have)
		return -ENOENT;
	if (owner_out)
		*owner_out = found;
	return attrib_resolve(a, &found, via, out);
}

/* ---- life cycle ----------------------------------------------------------- */

attrib_t *attrib_new(const struct attrib_opts *o)
{
	attrib_t *a = util_xcalloc(1, sizeof(*a));
	long hz = sysconf(_SC_CLK_TCK);
	int err;

	a->conn_fd = a->cookie_fd = a->diag_fd = -1;
	a->tick_ns = 1000000000ull / (uint64_t)(hz > 0 ? hz : 100);
	a->docker = o->docker;
	a->proc_root = util_xstrdup(o->proc_root ? o->proc_root : "/proc");
	a->worker_exe = util_xstrdup(o->worker_exe ? o->worker_exe :
						     ATTRIB_WORKER_EXE_DEFAULT);
	a->runner_cgroup = util_xstrdup(o->runner_cgroup ?
						o->runner_cgroup :
						ATTRIB_RUNNER_CGROUP_DEFAULT);
	a->clock = o->clock ? o->clock : util_mono_now;
	a->ttl = (o->cache_ttl_ms ? o->cache_ttl_ms :
				    ATTRIB_CACHE_TTL_MS_DEFAULT) /
		 1000.0;
	if (!o->no_cache) {
		a->cache_max = o->cache_max ? o->cache_max :
					      ATTRIB_CACHE_MAX_DEFAULT;
		a->cents = util_xcalloc(a->cache_max, sizeof(*a->cents));
		a->pidw_on = strcmp(a->proc_root, "/proc") == 0 &&
			     !o->no_pid_watch;
	}
	for (unsigned i = 0; i < ATTRIB_PIDW_MAX; i++)
		a->pidw[i].fd = -1;
	if (o->pin_dir) {
		a->own_fds = true;
		a->conn_fd =
			bpfload_open_pinned_map(o->pin_dir, BPFLOAD_MAP_CONN4);
		a->cookie_fd =
			bpfload_open_pinned_map(o->pin_dir, BPFLOAD_MAP_COOKIE);
		if (a->conn_fd < 0 || a->cookie_fd < 0) {
			err = a->conn_fd < 0 ? -a->conn_fd : -a->cookie_fd;
			goto fail;
		}
	} else {
		a->conn_fd = o->conn_map_fd;
		a->cookie_fd = o->cookie_map_fd;
	}
	if (!o->no_diag) {
		a->diag_fd = diag_open(o->diag_netns);
		if (a->diag_fd < 0) {
			err = errno;
			goto fail;
		}
	}
	return a;
fail:
	attrib_free(a);
	errno = err;
	return NULL;
}

void attrib_free(attrib_t *a)
{
	if (!a)
		return;
	if (a->own_fds) {
		if (a->conn_fd >= 0)
			close(a->conn_fd);
		if (a->cookie_fd >= 0)
			close(a->cookie_fd);
	}
	if (a->diag_fd >= 0)
		close(a->diag_fd);
	for (size_t i = 0; i < a->ncent; i++)
		attrib_proc_free(a->cents[i].p);
	for (unsigned i = 0; i < ATTRIB_PIDW_MAX; i++)
		pidw_drop(&a->pidw[i]);
	free(a->cents);
	hmap_fini(&a->cache);
	free(a->proc_root);
	free(a->worker_exe);
	free(a->runner_cgroup);
	free(a);
}
