/*
 * bpf_probe.c - the netns tier's helper for tests/netns/test_bpf_*.sh.
 *
 * It plays the daemon's two consumers of attribution, each looking the
 * connection up at the moment the daemon will, and checks the answer
 * against what the client itself says it is:
 *   tcp-server   accepts (behind a REDIRECT, like the proxy), looks the
 *                connection up before reading a byte of it, then reads the
 *                client's "PID EXE" line and compares
 *   udp-queue    an NFQUEUE consumer (like the UDP path): looks each packet
 *                up while the kernel holds it, compares with the "PID EXE"
 *                payload, then lets it go
 * and the clients (tcp-client, udp-client) that make N back-to-back
 * connections, each from a fresh process.  Small probes for the blocks
 * (sock, connect6, sendto6) print what the syscall returned, and reuse
 * forces a PID to be reused to check the guard; cgroup-progs lists what
 * is attached to a cgroup (bpftool 7.1's `cgroup show` fails on kernels
 * before 6.0, whose BPF_PROG_QUERY rejects its prog_attach_flags).
 *
 * Output: one JSON summary line per server run; probes print one word.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netfilter_ipv4.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attrib.h"
#include "cgroup.h"

#define IDLE_TIMEOUT_MS 20000 /* a server gives up after this much silence */

static const char usage[] =
	"usage: bpf-probe tcp-server --port P --count N --pin-dir D\n"
	"       bpf-probe tcp-client --connect IP:PORT --count N\n"
	"       bpf-probe udp-queue --queue Q --count N --pin-dir D\n"
	"       bpf-probe udp-client --connect IP:PORT --count N "
	"[--connected]\n"
	"       bpf-probe sock FAMILY TYPE [PROTO]\n"
	"       bpf-probe connect6|sendto6 ADDR PORT\n"
	"       bpf-probe reuse --pin-dir D\n"
	"       bpf-probe cgroup-progs CGROUP_DIR\n";

/* ---- what a server run saw ------------------------------------------------- */

struct tally {
	long n, ok, wrong_pid, wrong_exe;
	long err[8]; /* by attrib error, see err_slot */
	long via[ATTRIB_VIA_MAX];
	double us_sum, us_max;
	int shown; /* failures printed to stderr */
};

static const int errs[] = { -ENOENT, -ESRCH, -ESTALE, -EXDEV };

static int err_slot(int e)
{
	for (size_t i = 0; i < ARRAY_SIZE(errs); i++)
		if (errs[i] == e)
			return (int)i;
	return (int)ARRAY_SIZE(errs);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/*
 * Records one lookup of t against the client's own report "PID EXE".
 */
static void tally_one(struct tally *ty, const struct attrib_tuple *t, int rc,
		      const struct attrib_proc *p, double us,
		      const char *report)
{
	char exe[PATH_MAX] = "";
	int pid = 0;
	const char *why = NULL;

	ty->n++;
	ty->us_sum += us;
	if (us > ty->us_max)
		ty->us_max = us;
	if (sscanf(report, "%d %4095s", &pid, exe) != 2)
		pid = -1;
	if (rc) {
		ty->err[err_slot(rc)]++;
		why = attrib_strerror(rc);
	} else {
		ty->via[p->via]++;
		if (p->pid != pid)
			ty->wrong_pid++, why = "wrong pid";
		else if (!p->exe || strcmp(p->exe, exe) != 0)
			ty->wrong_exe++, why = "wrong exe";
		else
			ty->ok++;
	}
	if (why && ty->shown++ < 5) {
		char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &t->saddr, s, sizeof(s));
		inet_ntop(AF_INET, &t->daddr, d, sizeof(d));
		fprintf(stderr,
			"bpf-probe: %s:%u -> %s:%u: %s (client says \"%s\", "
			"lookup pid %d exe %s)\n",
			s, t->sport, d, t->dport, why, report, p ? p->pid : 0,
			p && p->exe ? p->exe : "-");
	}
}

static void tally_print(const struct tally *ty)
{
	printf("{\"n\":%ld,\"ok\":%ld,\"wrong_pid\":%ld,\"wrong_exe\":%ld,",
	       ty->n, ty->ok, ty->wrong_pid, ty->wrong_exe);
	printf("\"no_entry\":%ld,\"exited\":%ld,\"reused\":%ld,"
	       "\"cgroup_mismatch\":%ld,\"other_error\":%ld,",
	       ty->err[0], ty->err[1], ty->err[2], ty->err[3], ty->err[4]);
	printf("\"via\":{\"exact\":%ld,\"wildcard\":%ld,\"diag\":%ld},",
	       ty->via[ATTRIB_VIA_EXACT], ty->via[ATTRIB_VIA_WILDCARD],
	       ty->via[ATTRIB_VIA_DIAG]);
	printf("\"lookup_us_avg\":%.1f,\"lookup_us_max\":%.1f}\n",
	       ty->n ? ty->us_sum / ty->n : 0.0, ty->us_max);
	fflush(stdout);
}

static attrib_t *open_attrib(const char *pin_dir)
{
	struct attrib_opts o = { .pin_dir = pin_dir };
	attrib_t *a = attrib_new(&o);

	if (!a)
		fprintf(stderr, "bpf-probe: maps in %s: %s\n", pin_dir,
			strerror(errno));
	return a;
}

static void ready(void)
{
	printf("ready\n");
	fflush(stdout);
}

/* ---- TCP -------------------------------------------------------------------- */

static int tcp_server(int port, long count, const char *pin_dir)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_port = htons((uint16_t)port) };
	struct tally ty = { 0 };
	attrib_t *a = open_attrib(pin_dir);
	int one = 1, lfd;

	if (!a)
		return 1;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(lfd, 128) < 0) {
		perror("bpf-probe: listen");
		return 1;
	}
	ready();
	while (ty.n < count) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		struct sockaddr_in peer, orig;
		socklen_t plen = sizeof(peer), olen = sizeof(orig);
		struct attrib_tuple t = { .proto = IPPROTO_TCP };
		struct attrib_proc *p;
		char line[PATH_MAX + 32] = "";
		double t0;
		ssize_t n;
		int fd, rc;

		if (poll(&pfd, 1, IDLE_TIMEOUT_MS) <= 0)
			break;
		fd = accept4(lfd, (struct sockaddr *)&peer, &plen,
			     SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		/* The proxy's view: the client's address, and the original
		 * destination from conntrack (REDIRECT), else the local one. */
		if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &olen) < 0)
			getsockname(fd, (struct sockaddr *)&orig, &olen);
		t.saddr = peer.sin_addr.s_addr;
		t.sport = ntohs(peer.sin_port);
		t.daddr = orig.sin_addr.s_addr;
		t.dport = ntohs(orig.sin_port);
		t0 = now_us();
		rc = attrib_lookup(a, &t, &p, NULL);
		t0 = now_us() - t0;
		/* only now read what the client sent */
		n = read(fd, line, sizeof(line) - 1);
		line[n > 0 ? n : 0] = '\0';
		line[strcspn(line, "\n")] = '\0';
		tally_one(&ty, &t, rc, p, t0, line);
		if (write(fd, "ok\n", 3) < 0)
			perror("bpf-probe: write");
		attrib_proc_free(p);
		close(fd);
	}
	tally_print(&ty);
	attrib_free(a);
	close(lfd);
	return ty.ok == count ? 0 : 1;
}

static int parse_dst(const char *s, struct sockaddr_in *sa)
{
	char ip[INET_ADDRSTRLEN];
	const char *c = strrchr(s, ':');

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (!c || (size_t)(c - s) >= sizeof(ip))
		return -1;
	memcpy(ip, s, (size_t)(c - s));
	ip[c - s] = '\0';
	sa->sin_port = htons((uint16_t)atoi(c + 1));
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

/* "PID EXE\n" of the calling process. */
static int self_report(char *buf, size_t n)
{
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (len <= 0)
		return -1;
	exe[len] = '\0';
	return snprintf(buf, n, "%d %s\n", (int)getpid(), exe);
}

static int wait_readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1 ? 0 : -1;
}

/* One client connection in a fresh process; exit status 0 on success. */
static int tcp_client_once(const struct sockaddr_in *dst)
{
	char buf[PATH_MAX + 32];
	int fd = socket(AF_INET, SOCK_STREAM, 0), n;

	if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) < 0)
		return 2;
	n = self_report(buf, sizeof(buf));
	if (n <= 0 || write(fd, buf, (size_t)n) != n)
		return 3;
	if (wait_readable(fd, 5000) < 0 || read(fd, buf, sizeof(buf)) <= 0)
		return 4;
	return 0;
}

static int udp_client_once(const struct sockaddr_in *dst, bool connected)
{
	char buf[PATH_MAX + 32];
	int fd = socket(AF_INET, SOCK_DGRAM, 0), n;

	n = self_report(buf, sizeof(buf));
	if (n <= 0)
		return 3;
	if (connected) {
		if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) <
			    0 ||
		    send(fd, buf, (size_t)n, 0) != n)
			return 2;
	} else if (sendto(fd, buf, (size_t)n, 0, (const struct sockaddr *)dst,
			  sizeof(*dst)) != n) {
		return 2;
	}
	/* stay alive until the echo comes back: the consumer reads our
	 * /proc entry while it holds the packet */
	if (wait_readable(fd, 5000) < 0 || recv(fd, buf, sizeof(buf), 0) <= 0)
		return 4;
	return 0;
}

/* count fresh processes, one after the other, each one connection. */
static int run_clients(const char *dst_s, long count, int proto, bool connected)
{
	struct sockaddr_in dst;
	long failed = 0;

	if (parse_dst(dst_s, &dst) < 0) {
		fputs(usage, stderr);
		return 2;
	}
	for (long i = 0; i < count; i++) {
		int st;
		pid_t pid = fork();

		if (pid < 0)
			return 1;
		if (pid == 0)
			_exit(proto == IPPROTO_TCP ?
				      tcp_client_once(&dst) :
				      udp_client_once(&dst, connected));
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			failed++;
	}
	printf("{\"clients\":%ld,\"failed\":%ld}\n", count, failed);
	return failed ? 1 : 0;
}

/* ---- UDP: NFQUEUE consumer ------------------------------------------------- */

struct queue_ctx {
	attrib_t *a;
	struct mnl_socket *nl;
	unsigned queue;
	struct tally ty;
};

static void queue_verdict(struct queue_ctx *q, uint32_t id)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, q->queue);

	nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		perror("bpf-probe: verdict");
}

/* One held packet: look it up before letting it go. */
static int queue_cb(const struct nlmsghdr *nlh, void *data)
{
	struct queue_ctx *q = data;
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	const struct nfqnl_msg_packet_hdr *ph;
	struct attrib_tuple t = { .proto = IPPROTO_UDP };
	struct attrib_proc *p = NULL;
	const unsigned char *pkt;
	char report[PATH_MAX + 32] = "";
	uint16_t len;
	size_t ihl;
	double us;
	int rc;

	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR] ||
	    !attr[NFQA_PAYLOAD])
		return MNL_CB_OK;
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	pkt = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
	len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	if (len >= ihl + 8 && pkt[9] == IPPROTO_UDP) {
		memcpy(&t.saddr, pkt + 12, 4);
		memcpy(&t.daddr, pkt + 16, 4);
		t.sport = (uint16_t)(pkt[ihl] << 8 | pkt[ihl + 1]);
		t.dport = (uint16_t)(pkt[ihl + 2] << 8 | pkt[ihl + 3]);
		us = now_us();
		rc = attrib_lookup(q->a, &t, &p, NULL);
		us = now_us() - us;
		snprintf(report, sizeof(report), "%.*s", (int)(len - ihl - 8),
			 (const char *)pkt + ihl + 8);
		report[strcspn(report, "\n")] = '\0';
		tally_one(&q->ty, &t, rc, p, us, report);
		attrib_proc_free(p);
	}
	queue_verdict(q, ntohl(ph->packet_id));
	return MNL_CB_OK;
}

static int queue_config(struct queue_ctx *q)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->queue);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
	return mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0 ? -1 : 0;
}

static int udp_queue(unsigned queue, long count, const char *pin_dir)
{
	size_t size = 0xffff + (MNL_SOCKET_BUFFER_SIZE / 2);
	struct queue_ctx q = { .queue = queue };
	char *buf = malloc(size);
	unsigned portid;
	int rc = 1;

	q.a = open_attrib(pin_dir);
	q.nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!q.a || !q.nl || !buf ||
	    mnl_socket_bind(q.nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    queue_config(&q) < 0) {
		perror("bpf-probe: nfqueue");
		goto out;
	}
	portid = mnl_socket_get_portid(q.nl);
	ready();
	while (q.ty.n < count) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(q.nl),
				      .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, IDLE_TIMEOUT_MS) <= 0)
			break;
		n = mnl_socket_recvfrom(q.nl, buf, size);
		if (n < 0 ||
		    mnl_cb_run(buf, (size_t)n, 0, portid, queue_cb, &q) < 0)
			break;
	}
	tally_print(&q.ty);
	rc = q.ty.ok == count ? 0 : 1;
out:
	if (q.nl)
		mnl_socket_close(q.nl);
	attrib_free(q.a);
	free(buf);
	return rc;
}

/* ---- the blocks ------------------------------------------------------------ */

static const char *errname(int e)
{
	switch (e) {
	case 0:
		return "ok";
	case EPERM:
		return "EPERM";
	case EACCES:
		return "EACCES";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ENETUNREACH:
		return "ENETUNREACH";
	case EAFNOSUPPORT:
		return "EAFNOSUPPORT";
	case EINVAL:
		return "EINVAL";
	}
	return strerror(e);
}

static int num(const char *s)
{
	static const struct {
		const char *name;
		int v;
	} names[] = {
		{ "AF_INET", AF_INET },
		{ "AF_INET6", AF_INET6 },
		{ "AF_PACKET", AF_PACKET },
		{ "SOCK_RAW", SOCK_RAW },
		{ "SOCK_DGRAM", SOCK_DGRAM },
		{ "SOCK_STREAM", SOCK_STREAM },
		{ "SOCK_PACKET", SOCK_PACKET },
		{ "IPPROTO_ICMP", IPPROTO_ICMP },
		{ "IPPROTO_UDP", IPPROTO_UDP },
		{ "IPPROTO_RAW", IPPROTO_RAW },
	};
	if (strcmp(s, "ETH_P_ALL") == 0)
		return htons(
			0x0003); /* packet sockets take it in network order */
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].v;
	return atoi(s);
}

/* socket(FAMILY, TYPE, PROTO): prints "ok" or the errno's name. */
static int probe_sock(int argc, char **argv)
{
	int fd;

	if (argc < 4)
		return 2;
	fd = socket(num(argv[2]), num(argv[3]), argc > 4 ? num(argv[4]) : 0);
	puts(errname(fd < 0 ? errno : 0));
	return 0;
}

/* An IPv6 TCP connect or UDP sendto to ADDR PORT. */
static int probe_ip6(bool tcp, const char *addr, const char *port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
				   .sin6_port = htons((uint16_t)atoi(port)) };
	int fd = socket(AF_INET6, tcp ? SOCK_STREAM : SOCK_DGRAM, 0), rc;

	if (fd < 0 || inet_pton(AF_INET6, addr, &sa.sin6_addr) != 1) {
		puts("bad-address");
		return 2;
	}
	if (tcp)
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	else
		rc = (int)sendto(fd, "x", 1, 0, (struct sockaddr *)&sa,
				 sizeof(sa));
	puts(errname(rc < 0 ? errno : 0));
	return 0;
}

/* ---- PID reuse ------------------------------------------------------------- */

/*
 * Makes the next fork get pid: ns_last_pid is the last pid handed out in
 * the caller's PID namespace.  BPF records pids of the initial namespace,
 * so this must run there (a private PID namespace has its own counter and
 * cannot reuse an initial-namespace pid).  Other processes may fork in
 * between, so the caller retries.
 */
static pid_t fork_as(pid_t want)
{
	char v[16];
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
	pid_t pid;
	int n;

	if (fd < 0)
		return -1;
	n = snprintf(v, sizeof(v), "%d", (int)want - 1);
	if (write(fd, v, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	close(fd);
	pid = fork();
	if (pid == 0) {
		if (getpid() != want)
			_exit(0);
		/* the impostor: alive, same cgroup, same exe */
		pause();
		_exit(0);
	}
	return pid;
}

/*
 * A child connects (over loopback, to us), reports, and exits: its entry
 * stays in the map.  Then its pid is handed to a new process in the same
 * cgroup.  The lookup must not name the newcomer.
 */
static int reuse_once(attrib_t *a, int lfd, const struct sockaddr_in *srv,
		      int *before, int *after, pid_t *victim)
{
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	struct attrib_tuple t = { .proto = IPPROTO_TCP };
	struct attrib_proc *p = NULL;
	pid_t child, imp = -1;
	int fd, st;

	child = fork();
	if (child == 0)
		_exit(tcp_client_once(srv));
	fd = accept(lfd, (struct sockaddr *)&peer, &plen);
	if (fd < 0 || write(fd, "ok\n", 3) != 3)
		return -1;
	waitpid(child, &st, 0);
	close(fd);
	t.saddr = peer.sin_addr.s_addr;
	t.sport = ntohs(peer.sin_port);
	t.daddr = srv->sin_addr.s_addr;
	t.dport = ntohs(srv->sin_port);
	*before = attrib_lookup(a, &t, &p, NULL);
	attrib_proc_free(p);
	p = NULL;
	/* /proc's start time has a resolution of one tick (10 ms): let one
	 * pass so the newcomer provably starts after the entry */
	usleep(30000);
	for (int i = 0; i < 200 && imp != child; i++) {
		if (imp > 0)
			waitpid(imp, NULL, 0);
		imp = fork_as(child);
	}
	if (imp != child) {
		if (imp > 0)
			waitpid(imp, NULL, 0);
		return 1; /* someone else took the pid: try again */
	}
	*after = attrib_lookup(a, &t, &p, NULL);
	*victim = child;
	attrib_proc_free(p);
	kill(imp, SIGKILL);
	waitpid(imp, NULL, 0);
	return 0;
}

static int reuse(const char *pin_dir)
{
	struct sockaddr_in srv = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(srv);
	attrib_t *a = open_attrib(pin_dir);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int before = 0, after = 0, rc = 1;
	pid_t victim = 0;

	if (!a || bind(lfd, (struct sockaddr *)&srv, sizeof(srv)) < 0 ||
	    listen(lfd, 8) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&srv, &len) < 0)
		return 2;
	for (int tries = 0; tries < 20 && rc == 1; tries++)
		rc = reuse_once(a, lfd, &srv, &before, &after, &victim);
	if (rc < 0)
		return 2;
	printf("{\"reused\":%s,\"pid\":%d,\"before\":\"%s\",\"after\":\"%s\"}"
	       "\n",
	       rc == 0 ? "true" : "false", (int)victim, attrib_strerror(before),
	       attrib_strerror(after));
	attrib_free(a);
	close(lfd);
	return rc;
}

/* ---- what is attached to a cgroup ------------------------------------------ */

/*
 * A program's name: the kernel keeps 15 characters, its BTF the whole
 * function name (which bpftool prints too).
 */
static void prog_name(__u32 id, char *buf, size_t size)
{
	struct bpf_prog_info info = { 0 };
	struct bpf_func_info fi = { 0 };
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);
	struct btf *btf;
	const struct btf_type *t;

	snprintf(buf, size, "?");
	if (fd < 0)
		return;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		goto out;
	snprintf(buf, size, "%s", info.name);
	if (!info.btf_id || !info.nr_func_info)
		goto out;
	memset(&info, 0, sizeof(info));
	info.nr_func_info = 1;
	info.func_info_rec_size = sizeof(fi);
	info.func_info = (__u64)(unsigned long)&fi;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		goto out;
	btf = btf__load_from_kernel_by_id(info.btf_id);
	t = btf ? btf__type_by_id(btf, fi.type_id) : NULL;
	if (t)
		snprintf(buf, size, "%s",
			 btf__name_by_offset(btf, t->name_off));
	btf__free(btf);
out:
	close(fd);
}

/*
 * One "ATTACH_TYPE PROG_NAME" line per program attached to the cgroup
 * (directly, not inherited), with the old query that every kernel takes.
 * Types the kernel does not know fail with EINVAL and are skipped; exit 1
 * only if no query at all succeeded.
 */
static int cgroup_progs(const char *path)
{
	int cfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), answered = 0;

	if (cfd < 0) {
		perror(path);
		return 1;
	}
	for (int type = 0; type < __MAX_BPF_ATTACH_TYPE; type++) {
		__u32 ids[64], cnt = 64, flags = 0;
		const char *tname = libbpf_bpf_attach_type_str(type);

		if (!tname ||
		    bpf_prog_query(cfd, type, 0, &flags, ids, &cnt) < 0)
			continue;
		answered++;
		for (__u32 i = 0; i < cnt && i < 64; i++) {
			char name[128];

			prog_name(ids[i], name, sizeof(name));
			printf("%s %s\n", tname, name);
		}
	}
	close(cfd);
	return answered ? 0 : 1;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "", *pin_dir = NULL, *dst = NULL;
	long count = 1, port = 0, queue = 0;
	bool connected = false;

	signal(SIGPIPE, SIG_IGN);
	if (strcmp(cmd, "sock") == 0)
		return probe_sock(argc, argv);
	if (strcmp(cmd, "cgroup-progs") == 0 && argc == 3)
		return cgroup_progs(argv[2]);
	if ((strcmp(cmd, "connect6") == 0 || strcmp(cmd, "sendto6") == 0) &&
	    argc == 4)
		return probe_ip6(cmd[0] == 'c', argv[2], argv[3]);
	for (int i = 2; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--connected") == 0)
			connected = true;
		else if (!v)
			goto bad;
		else if (strcmp(argv[i], "--pin-dir") == 0)
			pin_dir = v, i++;
		else if (strcmp(argv[i], "--connect") == 0)
			dst = v, i++;
		else if (strcmp(argv[i], "--count") == 0)
			count = atol(v), i++;
		else if (strcmp(argv[i], "--port") == 0)
			port = atol(v), i++;
		else if (strcmp(argv[i], "--queue") == 0)
			queue = atol(v), i++;
		else
			goto bad;
	}
	if (strcmp(cmd, "tcp-server") == 0 && pin_dir && port)
		return tcp_server((int)port, count, pin_dir);
	if (strcmp(cmd, "udp-queue") == 0 && pin_dir)
		return udp_queue((unsigned)queue, count, pin_dir);
	if (strcmp(cmd, "tcp-client") == 0 && dst)
		return run_clients(dst, count, IPPROTO_TCP, false);
	if (strcmp(cmd, "udp-client") == 0 && dst)
		return run_clients(dst, count, IPPROTO_UDP, connected);
	if (strcmp(cmd, "reuse") == 0 && pin_dir)
		return reuse(pin_dir);
bad:
	fputs(usage, stderr);
	return 2;
}
