/*
 * bench_attrib.c - what attribution costs and how soon it is there.
 *
 *   1. per-connect overhead: loopback TCP connect+accept+close cycles and
 *      UDP sends (unconnected and connected), first without the programs,
 *      then with the egress object attached to the benchmark's cgroup;
 *   2. attribution latency: from the connect()/send() call to the moment
 *      userspace sees the map entry (the hooks write it synchronously, so
 *      it is there when the syscall returns: the number shows by how much);
 *   3. the cost of one attrib_lookup (map + /proc, and through sock_diag).
 *
 * Runs as root in a private network namespace (loopback only) and a child
 * cgroup of its own, both removed at exit; never the machine's root
 * cgroup or network.  Run with `make bench`.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attrib.h"
#include "bpfload.h"
#include "cgroup.h"
#include "util.h"

#define N_TCP 20000
#define N_UDP 200000
#define N_LAT 5000

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rc;

	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	ifr.ifr_flags |= IFF_UP;
	rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	return rc;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), rc;

	if (fd < 0)
		return -1;
	rc = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return rc;
}

static int tcp_listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr->sin_port = 0;
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0 ||
	    listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) < 0)
		return -1;
	return fd;
}

/* Mean ns per TCP connect+accept+close cycle. */
static double bench_tcp(int lfd, const struct sockaddr_in *addr)
{
	static const struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	double t0 = now_ns();

	for (int i = 0; i < N_TCP; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0), s;
		/* RST on close: no TIME_WAIT pile-up over 20,000 cycles */
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (connect(c, (const struct sockaddr *)addr, sizeof(*addr)) <
		    0)
			return -1;
		s = accept(lfd, NULL, NULL);
		close(c);
		close(s);
	}
	return (now_ns() - t0) / N_TCP;
}

/* Mean ns per UDP datagram sent to a loopback sink. */
static double bench_udp(bool connected)
{
	struct sockaddr_in sink = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sink);
	int r = socket(AF_INET, SOCK_DGRAM, 0),
	    s = socket(AF_INET, SOCK_DGRAM, 0);
	int big = 1 << 20;
	double t0;

	setsockopt(r, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	bind(r, (struct sockaddr *)&sink, sizeof(sink));
	getsockname(r, (struct sockaddr *)&sink, &len);
	if (connected)
		connect(s, (struct sockaddr *)&sink, sizeof(sink));
	t0 = now_ns();
	for (int i = 0; i < N_UDP; i++) {
		ssize_t n = connected ? send(s, "x", 1, 0) :
					sendto(s, "x", 1, 0,
					       (struct sockaddr *)&sink,
					       sizeof(sink));
		if (n != 1)
			return -1;
		/* drain, so the sink never drops and costs the same */
		while (recv(r, &n, sizeof(n), MSG_DONTWAIT) > 0)
			;
	}
	t0 = (now_ns() - t0) / N_UDP;
	close(r);
	close(s);
	return t0;
}

struct lat {
	double sum_visible; /* syscall start -> entry seen */
	double sum_after; /* syscall return -> entry seen */
	long at_return; /* entries seen at the first look after return */
	double sum_lookup; /* one attrib_lookup */
	long ok;
	int via[ATTRIB_VIA_MAX];
};

/* Spins on the map until key appears; returns when it was seen. */
static double wait_entry(int map_fd, const struct egress_tuple4 *k, bool *first)
{
	struct egress_owner o;

	*first = true;
	while (bpf_map_lookup_elem(map_fd, k, &o) < 0)
		*first = false;
	return now_ns();
}

/*
 * Measures one connection: when its entry became visible (unless
 * diag_only: no entry is expected yet), then one attrib_lookup.  wild:
 * the entry is keyed with source 0.0.0.0 (an unbound sendto).
 */
static void lat_one(attrib_t *a, int map_fd, int fd, double t0, double t1,
		    int proto, struct lat *l, bool diag_only, bool wild)
{
	struct sockaddr_in src, dst;
	socklen_t len = sizeof(src);
	struct attrib_tuple t = { .proto = (uint8_t)proto };
	struct egress_tuple4 k;
	struct attrib_proc *p;
	bool first = true;
	double seen = t1, t2;

	getsockname(fd, (struct sockaddr *)&src, &len);
	len = sizeof(dst);
	getpeername(fd, (struct sockaddr *)&dst, &len);
	t.saddr = src.sin_addr.s_addr;
	t.sport = ntohs(src.sin_port);
	t.daddr = dst.sin_addr.s_addr;
	t.dport = ntohs(dst.sin_port);
	attrib_key(&t, &k);
	if (wild)
		k.saddr = 0;
	if (!diag_only)
		seen = wait_entry(map_fd, &k, &first);
	l->sum_visible += seen - t0;
	l->sum_after += seen - t1;
	l->at_return += first;
	t2 = now_ns();
	if (attrib_lookup(a, &t, &p, NULL) == 0) {
		l->ok++;
		l->via[p->via]++;
	}
	l->sum_lookup += now_ns() - t2;
	attrib_proc_free(p);
}

static void lat_print(const char *what, const struct lat *l, long n)
{
	if (l->sum_after == 0) {
		printf("attrib: %-22s no entry yet by design; attrib_lookup "
		       "through sock_diag %6.1f us; %ld/%ld attributed "
		       "(diag %d)\n",
		       what, l->sum_lookup / n / 1e3, l->ok, n,
		       l->via[ATTRIB_VIA_DIAG]);
		return;
	}
	printf("attrib: %-22s visible %6.1f us after the call (%5.2f us "
	       "after it returned, %ld/%ld at the first look); "
	       "attrib_lookup %6.1f us; %ld/%ld attributed (exact %d, "
	       "wildcard %d, diag %d)\n",
	       what, l->sum_visible / n / 1e3, l->sum_after / n / 1e3,
	       l->at_return, n, l->sum_lookup / n / 1e3, l->ok, n,
	       l->via[ATTRIB_VIA_EXACT], l->via[ATTRIB_VIA_WILDCARD],
	       l->via[ATTRIB_VIA_DIAG]);
}

static void bench_latency(attrib_t *a, int map_fd, int lfd,
			  const struct sockaddr_in *addr)
{
	struct lat tcp = { 0 }, udp = { 0 }, udpc = { 0 }, diag = { 0 };
	struct sockaddr_in sink = *addr;

	sink.sin_port = htons(9); /* nothing listens: sends are enough */
	for (int i = 0; i < N_LAT; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0), s;
		double t0 = now_ns(), t1;
		connect(c, (const struct sockaddr *)addr, sizeof(*addr));
		t1 = now_ns();
		lat_one(a, map_fd, c, t0, t1, IPPROTO_TCP, &tcp, false, false);
		s = accept(lfd, NULL, NULL);
		close(c);
		close(s);

		/* unconnected UDP: sendto, then the socket's tuple */
		c = socket(AF_INET, SOCK_DGRAM, 0);
		t0 = now_ns();
		sendto(c, "x", 1, 0, (struct sockaddr *)&sink, sizeof(sink));
		t1 = now_ns();
		connect(c, (struct sockaddr *)&sink, sizeof(sink));
		lat_one(a, map_fd, c, t0, t1, IPPROTO_UDP, &udp, false, true);
		close(c);

		/* connected UDP: connect only, before any packet: the
		 * ordering trap's lookup, through sock_diag */
		c = socket(AF_INET, SOCK_DGRAM, 0);
		t0 = now_ns();
		connect(c, (struct sockaddr *)&sink, sizeof(sink));
		t1 = now_ns();
		lat_one(a, map_fd, c, t0, t1, IPPROTO_UDP, &diag, true, false);
		/* then the first send: cgroup_skb/egress writes the entry */
		t0 = now_ns();
		send(c, "x", 1, 0);
		t1 = now_ns();
		lat_one(a, map_fd, c, t0, t1, IPPROTO_UDP, &udpc, false, false);
		close(c);
	}
	lat_print("TCP (sockops)", &tcp, N_LAT);
	lat_print("UDP sendto (sendmsg4)", &udp, N_LAT);
	lat_print("UDP connected (skb)", &udpc, N_LAT);
	lat_print("UDP before 1st packet", &diag, N_LAT);
}

static void overhead_line(const char *what, double off, double on)
{
	printf("overhead: %-26s %8.2f us without, %8.2f us with programs: "
	       "%+.2f us (%+.1f%%)\n",
	       what, off / 1e3, on / 1e3, (on - off) / 1e3,
	       (on - off) / off * 100);
}

int main(void)
{
	const char *root = cgroup_v2_mount();
	char cg[PATH_MAX], procs[PATH_MAX + 16], *orig_cg;
	char orig_procs[PATH_MAX + 32], self[32];
	double off[3], on[3];
	struct sockaddr_in addr;
	struct bpfload_opts o = { .cgroup = cg };
	struct attrib_opts ao = { 0 };
	bpfload_t *b = NULL;
	attrib_t *a;
	int lfd, rc = 1;

	if (geteuid() != 0 || !root) {
		/* not a failure of the code under test: say so and move on */
		printf("attrib: not measured (needs root and a cgroup v2 "
		       "hierarchy)\n");
		return 0;
	}
	orig_cg = cgroup_of_pid("/proc", getpid());
	snprintf(cg, sizeof(cg), "%s/egress-bench-%d", root, (int)getpid());
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	snprintf(orig_procs, sizeof(orig_procs), "%s%s/cgroup.procs", root,
		 orig_cg ? orig_cg : "");
	snprintf(self, sizeof(self), "%d", (int)getpid());
	if (!orig_cg || unshare(CLONE_NEWNET) < 0 || lo_up() < 0 ||
	    mkdir(cg, 0755) < 0 || write_str(procs, self) < 0) {
		perror("bench_attrib: private netns and cgroup");
		goto out;
	}
	lfd = tcp_listener(&addr);
	off[0] = bench_tcp(lfd, &addr);
	off[1] = bench_udp(false);
	off[2] = bench_udp(true);
	if (bpfload_open(&o, &b) < 0 || bpfload_attach(b) < 0)
		goto out;
	on[0] = bench_tcp(lfd, &addr);
	on[1] = bench_udp(false);
	on[2] = bench_udp(true);
	printf("overhead: %d TCP cycles, %d UDP datagrams each, one core, "
	       "loopback in a private netns\n",
	       N_TCP, N_UDP);
	overhead_line("TCP connect+accept+close", off[0], on[0]);
	overhead_line("UDP sendto (unconnected)", off[1], on[1]);
	overhead_line("UDP send (connected)", off[2], on[2]);

	ao.conn_map_fd = bpfload_map_fd(b, BPFLOAD_MAP_CONN4);
	ao.cookie_map_fd = bpfload_map_fd(b, BPFLOAD_MAP_COOKIE);
	a = attrib_new(&ao);
	if (!a) {
		perror("bench_attrib: attrib_new");
		goto out;
	}
	bench_latency(a, ao.conn_map_fd, lfd, &addr);
	attrib_free(a);
	close(lfd);
	rc = 0;
out:
	bpfload_free(b); /* unpinned links: detached here */
	if (orig_cg && write_str(orig_procs, self) == 0)
		rmdir(cg);
	free(orig_cg);
	return rc;
}
