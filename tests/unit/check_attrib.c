/*
 * check_attrib.c - attribution without attached programs: the GitHub
 * context walk on fake /proc trees (reference §3.5), the PID-reuse and
 * cgroup guards on synthetic map entries naming real processes, and the
 * sock_diag path on a real (never used) loopback socket.  Maps are created
 * here with bpf_map_create, so nothing is attached anywhere.  The image of
 * a container comes from a fake dockerd (fakedocker.c) for a fake /proc
 * record in a cgroup this suite creates.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attrib.h"
#include "cgroup.h"
#include "dockerimg.h"
#include "fakedocker.h"
#include "suites.h"
#include "util.h"

#define WORKER "/opt/runner/bin/Runner.Worker"
#define RUNNER_CG "/system.slice/runner.service"

/* ---- GitHub context on fake /proc trees ------------------------------------ */

/* One fake process: pid, ppid, exe, cgroup, environment ("K=V\0K=V"). */
struct fake_proc {
	int pid, ppid;
	const char *exe;
	const char *env;
	size_t envlen;
};

#define ENV(s) s, sizeof(s) - 1

static const struct {
	const char *name;
	const char *cgroup; /* of the first process */
	struct fake_proc procs[12];
	const char *step, *action;
} gh_cases[] = {
	{ "child of the trusted step process",
	  RUNNER_CG,
	  { { 100, 101, "/usr/bin/curl", ENV("GITHUB_ACTION=evil") },
	    { 101, 102, "/usr/bin/bash",
	      ENV("GITHUB_ACTION=__run_2\0GITHUB_ACTION_REPOSITORY=o/r") },
	    { 102, 103, WORKER, ENV("") },
	    { 103, 1, "/usr/bin/node", ENV("") } },
	  "__run_2",
	  "o/r" },
	{ "the trusted process itself",
	  RUNNER_CG,
	  { { 101, 102, "/usr/bin/bash", ENV("GITHUB_ACTION=__run") },
	    { 102, 1, WORKER, ENV("") } },
	  "__run",
	  NULL },
	{ "another cgroup: no context",
	  "/system.slice/other.service",
	  { { 101, 102, "/usr/bin/bash", ENV("GITHUB_ACTION=__run") },
	    { 102, 1, WORKER, ENV("") } },
	  NULL,
	  NULL },
	{ "the worker itself: no context",
	  RUNNER_CG,
	  { { 102, 103, WORKER, ENV("GITHUB_ACTION=x") },
	    { 103, 1, "/usr/bin/node", ENV("") } },
	  NULL,
	  NULL },
	{ "a worker of the same name elsewhere is not trusted",
	  RUNNER_CG,
	  { { 101, 102, "/usr/bin/bash", ENV("GITHUB_ACTION=__run") },
	    { 102, 1, "/tmp/Runner.Worker", ENV("") } },
	  NULL,
	  NULL },
	{ "empty GITHUB_ACTION is no step",
	  RUNNER_CG,
	  { { 101, 102, "/usr/bin/bash",
	      ENV("GITHUB_ACTION=\0GITHUB_ACTION_REPOSITORY=a/b") },
	    { 102, 1, WORKER, ENV("") } },
	  NULL,
	  "a/b" },
	{ "worker at the 10th entry is found",
	  RUNNER_CG,
	  { { 10, 11, "/bin/p", ENV("") },
	    { 11, 12, "/bin/p", ENV("") },
	    { 12, 13, "/bin/p", ENV("") },
	    { 13, 14, "/bin/p", ENV("") },
	    { 14, 15, "/bin/p", ENV("") },
	    { 15, 16, "/bin/p", ENV("") },
	    { 16, 17, "/bin/p", ENV("") },
	    { 17, 18, "/bin/p", ENV("") },
	    { 18, 19, "/bin/p", ENV("GITHUB_ACTION=deep") },
	    { 19, 1, WORKER, ENV("") } },
	  "deep",
	  NULL },
	{ "worker at the 11th entry is too far",
	  RUNNER_CG,
	  { { 9, 10, "/bin/p", ENV("") },
	    { 10, 11, "/bin/p", ENV("") },
	    { 11, 12, "/bin/p", ENV("") },
	    { 12, 13, "/bin/p", ENV("") },
	    { 13, 14, "/bin/p", ENV("") },
	    { 14, 15, "/bin/p", ENV("") },
	    { 15, 16, "/bin/p", ENV("") },
	    { 16, 17, "/bin/p", ENV("") },
	    { 17, 18, "/bin/p", ENV("") },
	    { 18, 19, "/bin/p", ENV("GITHUB_ACTION=deep") },
	    { 19, 1, WORKER, ENV("") } },
	  NULL,
	  NULL },
	{ "an unreadable exe ends the walk",
	  RUNNER_CG,
	  { { 101, 102, "/usr/bin/bash", ENV("GITHUB_ACTION=__run") },
	    { 102, 103, NULL, ENV("") },
	    { 103, 1, WORKER, ENV("") } },
	  NULL,
	  NULL },
};

static char fake_root[256];

static void write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void make_fake_proc(const struct fake_proc *p)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], stat[128];

	snprintf(dir, sizeof(dir), "%s/%d", fake_root, p->pid);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	/* a command name with ") (" checks the parse after the last ')' */
	snprintf(stat, sizeof(stat),
		 "%d (a) (b) S %d 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4242 "
		 "0 0\n",
		 p->pid, p->ppid);
	snprintf(path, sizeof(path), "%s/stat", dir);
	write_file(path, stat, strlen(stat));
	snprintf(path, sizeof(path), "%s/environ", dir);
	write_file(path, p->env, p->envlen);
	if (p->exe) {
		snprintf(path, sizeof(path), "%s/exe", dir);
		ck_assert_int_eq(symlink(p->exe, path), 0);
	}
}

START_TEST(test_github_context)
{
	struct attrib_opts o = { .conn_map_fd = -1,
				 .cookie_map_fd = -1,
				 .no_diag = true,
				 .proc_root = fake_root,
				 .worker_exe = WORKER,
				 .runner_cgroup = RUNNER_CG };
	char *step, *action, cmd[PATH_MAX + 16];
	attrib_t *a;

	snprintf(fake_root, sizeof(fake_root), "/tmp/egress-unit-proc-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fake_root));
	for (size_t i = 0; i < ARRAY_SIZE(gh_cases[_i].procs); i++) {
		if (gh_cases[_i].procs[i].pid)
			make_fake_proc(&gh_cases[_i].procs[i]);
	}
	a = attrib_new(&o);
	ck_assert_ptr_nonnull(a);
	attrib_github_context(a, gh_cases[_i].procs[0].pid, gh_cases[_i].cgroup,
			      &step, &action);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fake_root);
	ck_assert_int_eq(system(cmd), 0);
	if (gh_cases[_i].step)
		ck_assert_msg(step && strcmp(step, gh_cases[_i].step) == 0,
			      "%s: step %s", gh_cases[_i].name,
			      step ? step : "(none)");
	else
		ck_assert_msg(step == NULL, "%s: step %s", gh_cases[_i].name,
			      step);
	if (gh_cases[_i].action)
		ck_assert_str_eq(action, gh_cases[_i].action);
	else
		ck_assert_ptr_null(action);
	free(step);
	free(action);
	attrib_free(a);
}
END_TEST

/* ---- guards on synthetic entries ------------------------------------------- */

static int conn_fd = -1, cookie_fd = -1;
static uint64_t tick_ns;

static void maps_setup(void)
{
	ck_assert_msg(geteuid() == 0, "creating BPF maps needs root");
	conn_fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "unit_conn4",
				 sizeof(struct egress_tuple4),
				 sizeof(struct egress_owner), 1024, NULL);
	cookie_fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "unit_cookie",
				   sizeof(uint64_t),
				   sizeof(struct egress_owner), 1024, NULL);
	ck_assert_int_ge(conn_fd, 0);
	ck_assert_int_ge(cookie_fd, 0);
	tick_ns = 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK);
}

static void maps_teardown(void)
{
	close(conn_fd);
	close(cookie_fd);
}

static attrib_t *new_attrib(bool diag)
{
	struct attrib_opts o = { .conn_map_fd = conn_fd,
				 .cookie_map_fd = cookie_fd,
				 .no_diag = !diag };
	attrib_t *a = attrib_new(&o);

	ck_assert_msg(a != NULL, "attrib_new: %s", strerror(errno));
	return a;
}

static uint64_t now_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned long long start_ticks(int pid)
{
	char path[64], *text, *p;
	unsigned long long v = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	text = util_read_file(path, NULL);
	ck_assert_ptr_nonnull(text);
	p = strrchr(text, ')');
	ck_assert_int_eq(sscanf(p + 2,
				"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
				"%*u %*u %*d %*d %*d %*d %*d %*d %llu",
				&v),
			 1);
	free(text);
	return v;
}

/* An owner entry exactly as BPF would write it for process pid. */
static struct egress_owner owner_of(int pid)
{
	struct egress_owner o = { .tgid = (uint32_t)pid,
				  .src = EGRESS_SRC_SOCKOPS,
				  .ts_ns = now_boot_ns(),
				  .cookie = 77 };
	char *cg = cgroup_of_pid("/proc", pid), path[PATH_MAX];
	uint64_t id;

	ck_assert_ptr_nonnull(cg);
	snprintf(path, sizeof(path), "%s%s", cgroup_v2_mount(), cg);
	ck_assert_int_eq(cgroup_id(path, &id), 0);
	o.cgroup_id = id;
	o.start_ns = start_ticks(pid) * tick_ns + 12345;
	free(cg);
	return o;
}

static const struct attrib_tuple tcp_tuple = {
	.saddr = 0x0201a8c0, /* 192.168.1.2, network order on any host */
	.daddr = 0x0a6433c6,
	.sport = 40000,
	.dport = 443,
	.proto = IPPROTO_TCP,
};

static void put(const struct attrib_tuple *t, const struct egress_owner *o)
{
	struct egress_tuple4 k;

	attrib_key(t, &k);
	ck_assert_int_eq(bpf_map_update_elem(conn_fd, &k, o, BPF_ANY), 0);
}

/* A child that waits until killed: a live process to attribute to. */
static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/bin/sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	/* Wait for the exec, so exe and cmdline are sleep's: the kernel
	 * switches the exe link before it lays out the new arguments, so
	 * the exe alone can name sleep while cmdline is still empty. */
	for (int i = 0; i < 500; i++) {
		char path[64], buf[64], *args;
		size_t len = 0;
		ssize_t n;
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
		n = readlink(path, buf, sizeof(buf) - 1);
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		args = util_read_file(path, &len);
		if (n > 0 && memmem(buf, (size_t)n, "sleep", 5) && args &&
		    len == 9 &&
		    memcmp(args,
			   "sleep\0"
			   "30",
			   9) == 0) {
			free(args);
			break;
		}
		free(args);
		usleep(2000);
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

START_TEST(test_lookup_ok)
{
	pid_t pid = spawn_sleeper();
	struct egress_owner o = owner_of(pid);
	struct attrib_proc *p;
	attrib_t *a = new_attrib(false);

	put(&tcp_tuple, &o);
	ck_assert_int_eq(attrib_lookup(a, &tcp_tuple, &p, NULL), 0);
	ck_assert_int_eq(p->pid, pid);
	ck_assert_ptr_nonnull(strstr(p->exe, "sleep"));
	ck_assert_uint_eq(p->ncmdline, 2);
	ck_assert_str_eq(p->cmdline[0], "sleep");
	ck_assert_str_eq(p->cmdline[1], "30");
	ck_assert_ptr_nonnull(p->cgroup);
	ck_assert_int_eq(p->via, ATTRIB_VIA_EXACT);
	ck_assert_uint_eq(p->owner.cookie, 77);
	attrib_proc_free(p);
	reap(pid);
	attrib_free(a);
}
END_TEST

/*
 * A cache hit proves the pid by the pidfd kept since the first lookup
 * instead of reading /proc; once the process has exited, the watch is
 * dropped and the lookup fails: it never answers from the record.
 */
START_TEST(test_pid_watch)
{
	pid_t pid = spawn_sleeper();
	struct egress_owner o = owner_of(pid);
	struct attrib_opts ao = { .conn_map_fd = conn_fd,
				  .cookie_map_fd = cookie_fd,
				  .no_diag = true,
				  .cache_ttl_ms = 3600000 };
	struct attrib_proc *p;
	struct attrib_stats st;
	attrib_t *a, *plain;

	a = attrib_new(&ao);
	ao.no_pid_watch = true;
	plain = attrib_new(&ao);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(plain);
	put(&tcp_tuple, &o);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(attrib_lookup(a, &tcp_tuple, &p, NULL), 0);
		ck_assert_int_eq(p->pid, pid);
		ck_assert_str_eq(p->cmdline[0], "sleep");
		attrib_proc_free(p);
		ck_assert_int_eq(attrib_lookup(plain, &tcp_tuple, &p, NULL), 0);
		ck_assert_int_eq(p->pid, pid);
		attrib_proc_free(p);
	}
	attrib_get_stats(a, &st);
	ck_assert_uint_eq(st.cache_hits, 2);
	ck_assert_uint_eq(st.pid_watch_hits, 2);
	attrib_get_stats(plain, &st);
	ck_assert_uint_eq(st.cache_hits, 2);
	ck_assert_uint_eq(st.pid_watch_hits, 0);
	reap(pid);
	p = NULL;
	ck_assert_int_eq(attrib_lookup(a, &tcp_tuple, &p, NULL), -ESRCH);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(attrib_lookup(plain, &tcp_tuple, &p, NULL), -ESRCH);
	attrib_get_stats(a, &st);
	ck_assert_uint_eq(st.pid_watch_hits, 2);
	attrib_free(a);
	attrib_free(plain);
}
END_TEST

/* Each row breaks one property of a valid entry; all must be refused. */
static const struct {
	const char *name;
	int err;
} guard_cases[] = {
	{ "process started after the entry (pid reused)", -ESTALE },
	{ "start time differs from the one BPF read", -ESTALE },
	{ "cgroup id differs", -EXDEV },
	{ "process exited", -ESRCH },
	{ "no entry", -ENOENT },
};

START_TEST(test_lookup_refused)
{
	pid_t pid = spawn_sleeper();
	struct egress_owner o = owner_of(pid), got = { 0 };
	struct attrib_proc *p = NULL;
	attrib_t *a = new_attrib(false);

	switch (_i) {
	case 0:
		/* the entry was written before this process existed */
		o.ts_ns = start_ticks(pid) * tick_ns - 2 * tick_ns;
		o.start_ns = 0;
		break;
	case 1:
		o.start_ns -= 3 * tick_ns;
		break;
	case 2:
		o.cgroup_id ^= 1;
		break;
	case 3:
		reap(pid);
		pid = 0;
		break;
	}
	if (_i != 4)
		put(&tcp_tuple, &o);
	ck_assert_int_eq(attrib_lookup(a, &tcp_tuple, &p, &got),
			 guard_cases[_i].err);
	ck_assert_ptr_null(p);
	if (_i != 4)
		ck_assert_uint_eq(got.tgid, o.tgid);
	if (pid)
		reap(pid);
	attrib_free(a);
}
END_TEST

/* Unconnected UDP recorded before the route lookup: source 0.0.0.0. */
START_TEST(test_lookup_wildcard)
{
	struct attrib_tuple t = tcp_tuple, wild;
	struct egress_owner o = owner_of(getpid());
	struct attrib_proc *p;
	attrib_t *a = new_attrib(false);

	t.proto = IPPROTO_UDP;
	wild = t;
	wild.saddr = 0;
	put(&wild, &o);
	ck_assert_int_eq(attrib_lookup(a, &t, &p, NULL), 0);
	ck_assert_int_eq(p->pid, getpid());
	ck_assert_int_eq(p->via, ATTRIB_VIA_WILDCARD);
	attrib_proc_free(p);
	/* a TCP tuple never falls back to the wildcard */
	t.proto = IPPROTO_TCP;
	wild.proto = IPPROTO_TCP;
	put(&wild, &o);
	ck_assert_int_eq(attrib_lookup(a, &t, &p, NULL), -ENOENT);
	attrib_free(a);
}
END_TEST

/* ---- sock_diag ---------------------------------------------------------------- */

/*
 * A UDP socket connected to a loopback port (nothing is sent): the diag
 * path finds it by its exact tuple and maps its cookie to the owner, and
 * a stale exact entry naming another socket with the same tuple is
 * ignored.
 */
START_TEST(test_diag_connected_udp)
{
	struct sockaddr_in dst = { .sin_family = AF_INET,
				   .sin_port = htons(9),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in src;
	socklen_t len = sizeof(src);
	struct egress_owner o = owner_of(getpid()), stale;
	struct attrib_tuple t = { .proto = IPPROTO_UDP };
	struct attrib_proc *p;
	struct attrib_stats st0, st1;
	uint64_t cookie, dcookie;
	bool connected;
	attrib_t *a = new_attrib(true);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&src, &len), 0);
	len = sizeof(cookie);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len),
			 0);
	t.saddr = src.sin_addr.s_addr;
	t.sport = ntohs(src.sin_port);
	t.daddr = dst.sin_addr.s_addr;
	t.dport = 9;

	ck_assert_int_eq(attrib_diag_cookie(a, &t, &dcookie, &connected), 0);
	ck_assert_uint_eq(dcookie, cookie);
	ck_assert(connected);
	/* no entry yet: the host's connected UDP before cgroup_skb ran */
	ck_assert_int_eq(attrib_lookup(a, &t, &p, NULL), -ENOENT);
	o.cookie = cookie;
	o.src = EGRESS_SRC_CONNECT4;
	ck_assert_int_eq(bpf_map_update_elem(cookie_fd, &cookie, &o, BPF_ANY),
			 0);
	stale = o;
	stale.cookie = cookie + 1000;
	stale.tgid = 1; /* an earlier socket's owner */
	put(&t, &stale);
	ck_assert_int_eq(attrib_lookup(a, &t, &p, NULL), 0);
	ck_assert_int_eq(p->pid, getpid());
	ck_assert_int_eq(p->via, ATTRIB_VIA_DIAG);
	attrib_proc_free(p);
	/* a packet from another netns cannot be this socket's: sock_diag is
	 * not asked, and the stale entry decides (and is refused) */
	attrib_get_stats(a, &st0);
	t.foreign = true;
	ck_assert_int_eq(attrib_lookup(a, &t, &p, NULL), -ESTALE);
	ck_assert_ptr_null(p);
	attrib_get_stats(a, &st1);
	ck_assert_uint_eq(st1.diag_queries, st0.diag_queries);
	ck_assert_uint_eq(st1.diag_skipped, st0.diag_skipped + 1);
	t.foreign = false;
	/* once cgroup_skb has written the entry, the map answers */
	put(&t, &o);
	ck_assert_int_eq(attrib_lookup(a, &t, &p, NULL), 0);
	ck_assert_int_eq(p->via, ATTRIB_VIA_EXACT);
	attrib_proc_free(p);
	/* another destination is another socket: not this one */
	t.dport = 10;
	ck_assert_int_eq(attrib_diag_cookie(a, &t, &dcookie, &connected),
			 -ENOENT);
	close(fd);
	attrib_free(a);
}
END_TEST

/* A TCP miss (evicted entry) is resolved through diag too. */
START_TEST(test_diag_tcp_miss)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in src;
	socklen_t len = sizeof(addr);
	struct egress_owner o = owner_of(getpid());
	struct attrib_tuple t = { .proto = IPPROTO_TCP };
	struct attrib_proc *p;
	uint64_t cookie;
	attrib_t *a = new_attrib(true);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd;

	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&addr, &len), 0);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(cfd, (struct sockaddr *)&addr, sizeof(addr)),
			 0);
	len = sizeof(src);
	ck_assert_int_eq(getsockname(cfd, (struct sockaddr *)&src, &len), 0);
	len = sizeof(cookie);
	ck_assert_int_eq(getsockopt(cfd, SOL_SOCKET, SO_COOKIE, &cookie, &len),
			 0);
	t.saddr = src.sin_addr.s_addr;
	t.sport = ntohs(src.sin_port);
	t.daddr = addr.sin_addr.s_addr;
	t.dport = ntohs(addr.sin_port);
	o.cookie = cookie;
	ck_assert_int_eq(bpf_map_update_elem(cookie_fd, &cookie, &o, BPF_ANY),
			 0);
	ck_assert_int_eq(attrib_lookup(a, &t, &p, NULL), 0);
	ck_assert_int_eq(p->pid, getpid());
	ck_assert_int_eq(p->via, ATTRIB_VIA_DIAG);
	attrib_proc_free(p);
	close(cfd);
	close(lfd);
	attrib_free(a);
}
END_TEST

/* ---- Docker image of a container's process -------------------------------- */

#define CTR_ID \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A fake /proc record for pid in cgroup cg (relative to the v2 mount). */
static void make_fake_cg_proc(int pid, const char *exe, const char *cg)
{
	struct fake_proc fp = { pid, 1, exe, ENV("") };
	char path[PATH_MAX + 16], line[PATH_MAX];

	make_fake_proc(&fp);
	snprintf(path, sizeof(path), "%s/%d/cgroup", fake_root, pid);
	snprintf(line, sizeof(line), "0::%s\n", cg);
	write_file(path, line, strlen(line));
}

static struct egress_owner fake_owner(int pid, const char *cg)
{
	struct egress_owner o = { .tgid = (uint32_t)pid,
				  .src = EGRESS_SRC_SOCKOPS,
				  .ts_ns = now_boot_ns() };
	char path[PATH_MAX];
	uint64_t id;

	snprintf(path, sizeof(path), "%s%s", cgroup_v2_mount(), cg);
	ck_assert_int_eq(cgroup_id(path, &id), 0);
	o.cgroup_id = id;
	return o;
}

/* Named in the runner process, so that its teardown removes them even when
 * the (forked) test fails half-way. */
static char dk_parent[64], dk_root[64];

static void docker_setup(void)
{
	snprintf(dk_parent, sizeof(dk_parent), "/egress-unit-docker-%d",
		 getpid());
	snprintf(dk_root, sizeof(dk_root), "/tmp/egress-unit-proc-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dk_root));
}

static void docker_teardown(void)
{
	static const char *const sub[] = { "/docker/" CTR_ID, "/docker", "" };
	char path[PATH_MAX], cmd[PATH_MAX + 16];

	for (size_t i = 0; cgroup_v2_mount() && i < ARRAY_SIZE(sub); i++) {
		snprintf(path, sizeof(path), "%s%s%s", cgroup_v2_mount(),
			 dk_parent, sub[i]);
		if (rmdir(path) < 0 && errno != ENOENT)
			fprintf(stderr, "rmdir %s: %s\n", path,
				strerror(errno));
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dk_root);
	if (system(cmd) != 0)
		fprintf(stderr, "%s failed\n", cmd);
}

/*
 * A process in <parent>/docker/<id> gets the image dockerd lists for id;
 * one in the parent cgroup, or an attrib_t without a cache, gets none.
 */
START_TEST(test_docker_image)
{
	const char *parent = dk_parent;
	char ctr[PATH_MAX], dir[PATH_MAX], sock[PATH_MAX + 16];
	struct attrib_opts o = { .conn_map_fd = -1,
				 .cookie_map_fd = -1,
				 .no_diag = true };
	struct dockerimg_opts dopts = { .backoff_min_ms = 10,
					.backoff_max_ms = 40,
					.io_timeout_ms = 300,
					.quiet = true };
	struct dockerimg_stats st;
	struct egress_owner own;
	struct attrib_proc *p;
	struct fakedocker *f;
	struct dockerimg *d;
	attrib_t *a, *plain;

	ck_assert_msg(geteuid() == 0, "making a cgroup needs root");
	ck_assert_ptr_nonnull(cgroup_v2_mount());
	snprintf(ctr, sizeof(ctr), "%s/docker/" CTR_ID, parent);
	snprintf(dir, sizeof(dir), "%s%s", cgroup_v2_mount(), ctr);
	ck_assert_int_eq(util_mkdir_p(dir, 0755), 0);

	snprintf(fake_root, sizeof(fake_root), "%s", dk_root);
	make_fake_cg_proc(200, "/bin/busybox", ctr);
	make_fake_cg_proc(201, "/usr/bin/curl", parent);
	snprintf(sock, sizeof(sock), "%s/docker.sock", fake_root);
	f = fakedocker_start(sock);
	ck_assert_ptr_nonnull(f);
	fakedocker_add(f, CTR_ID, "busybox:1.36", true);
	dopts.socket_path = sock;
	d = dockerimg_new_opts(&dopts);
	ck_assert_ptr_nonnull(d);
	for (int i = 0; i < 400; i++) {
		dockerimg_stats(d, &st);
		if (st.connected)
			break;
		usleep(5000);
	}
	ck_assert(st.connected);

	o.proc_root = fake_root;
	plain = attrib_new(&o);
	o.docker = d;
	a = attrib_new(&o);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(plain);

	own = fake_owner(200, ctr);
	ck_assert_int_eq(attrib_resolve(a, &own, ATTRIB_VIA_EXACT, &p), 0);
	ck_assert_str_eq(p->cgroup, ctr);
	ck_assert_str_eq(p->exe, "/bin/busybox");
	ck_assert_ptr_nonnull(p->image);
	ck_assert_str_eq(p->image, "busybox:1.36");
	attrib_proc_free(p);
	ck_assert_int_eq(attrib_resolve(plain, &own, ATTRIB_VIA_EXACT, &p), 0);
	ck_assert_ptr_null(p->image);
	attrib_proc_free(p);
	own = fake_owner(201, parent);
	ck_assert_int_eq(attrib_resolve(a, &own, ATTRIB_VIA_EXACT, &p), 0);
	ck_assert_str_eq(p->cgroup, parent);
	ck_assert_ptr_null(p->image);
	attrib_proc_free(p);

	attrib_free(a);
	attrib_free(plain);
	dockerimg_free(d);
	fakedocker_stop(f);
}
END_TEST

/* ---- the record cache --------------------------------------------------- */

static double cache_now;
static char cache_cg[PATH_MAX];

static double cache_clock(void)
{
	return cache_now;
}

static void cache_setup(void)
{
	char *cg = cgroup_of_pid("/proc", getpid());

	ck_assert_ptr_nonnull(cg);
	snprintf(cache_cg, sizeof(cache_cg), "%s", cg);
	free(cg);
	snprintf(fake_root, sizeof(fake_root), "/tmp/egress-unit-proc-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fake_root));
	cache_now = 1000.0;
	tick_ns = 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK);
}

static void cache_teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fake_root);
	if (system(cmd) != 0)
		fprintf(stderr, "%s failed\n", cmd);
}

/* (Re)writes pid's fake record: start time, exe link and cmdline. */
static void fake_set(int pid, unsigned long long start, const char *exe,
		     const char *arg)
{
	char path[PATH_MAX + 16], stat[128];

	snprintf(path, sizeof(path), "%s/%d/stat", fake_root, pid);
	snprintf(stat, sizeof(stat),
		 "%d (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %llu 0 0\n",
		 pid, start);
	write_file(path, stat, strlen(stat));
	snprintf(path, sizeof(path), "%s/%d/exe", fake_root, pid);
	unlink(path);
	ck_assert_int_eq(symlink(exe, path), 0);
	snprintf(path, sizeof(path), "%s/%d/cmdline", fake_root, pid);
	write_file(path, arg, strlen(arg) + 1);
}

static attrib_t *cache_attrib(size_t max, bool off)
{
	struct attrib_opts o = { .conn_map_fd = -1,
				 .cookie_map_fd = -1,
				 .no_diag = true,
				 .proc_root = fake_root,
				 .cache_max = max,
				 .no_cache = off,
				 .clock = cache_clock };
	attrib_t *a = attrib_new(&o);

	ck_assert_ptr_nonnull(a);
	return a;
}

/* Resolves o and checks the record's exe (NULL: expects error err). */
static void resolve_expect(attrib_t *a, const struct egress_owner *o,
			   enum attrib_via via, int err, const char *exe)
{
	struct attrib_proc *p = NULL;

	ck_assert_int_eq(attrib_resolve(a, o, via, &p), err);
	if (err) {
		ck_assert_ptr_null(p);
		return;
	}
	ck_assert_str_eq(p->exe, exe);
	ck_assert_uint_eq(p->ncmdline, 1);
	ck_assert_str_eq(p->cmdline[0], exe + 5); /* "/bin/NAME" */
	ck_assert_str_eq(p->cgroup, cache_cg);
	ck_assert_int_eq(p->via, via);
	ck_assert_uint_eq(p->owner.cookie, o->cookie);
	attrib_proc_free(p);
}

static struct egress_owner cache_owner(int pid, uint64_t cookie)
{
	struct egress_owner o = fake_owner(pid, cache_cg);

	o.cookie = cookie;
	return o;
}

/*
 * A hit answers from the record (a changed exe is not seen yet) with this
 * lookup's via and entry; after the TTL the record is read again.
 */
START_TEST(test_cache_hit_expiry)
{
	attrib_t *a = cache_attrib(0, false);
	struct egress_owner o = cache_owner(300, 1);
	struct attrib_stats st;
	char cmd[PATH_MAX + 32];

	make_fake_cg_proc(300, "/bin/one", cache_cg);
	fake_set(300, 4242, "/bin/one", "one");
	resolve_expect(a, &o, ATTRIB_VIA_EXACT, 0, "/bin/one");
	fake_set(300, 4242, "/bin/two", "two");
	o.cookie = 2;
	cache_now += 0.5;
	resolve_expect(a, &o, ATTRIB_VIA_DIAG, 0, "/bin/one");
	attrib_get_stats(a, &st);
	ck_assert_uint_eq(st.cache_hits, 1);
	cache_now += ATTRIB_CACHE_TTL_MS_DEFAULT / 1000.0;
	resolve_expect(a, &o, ATTRIB_VIA_EXACT, 0, "/bin/two");
	resolve_expect(a, &o, ATTRIB_VIA_EXACT, 0, "/bin/two");
	attrib_get_stats(a, &st);
	ck_assert_uint_eq(st.cache_hits, 2);
	/* a process that has exited is not answered from the cache */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/300'", fake_root);
	ck_assert_int_eq(system(cmd), 0);
	resolve_expect(a, &o, ATTRIB_VIA_EXACT, -ESRCH, NULL);
	attrib_free(a);
}
END_TEST

/* A pid that changed hands never meets the earlier process's record. */
START_TEST(test_cache_pid_reuse)
{
	attrib_t *a = cache_attrib(0, false);
	struct egress_owner o = cache_owner(301, 1), late;

	make_fake_cg_proc(301, "/bin/one", cache_cg);
	fake_set(301, 4242, "/bin/one", "one");
	resolve_expect(a, &o, ATTRIB_VIA_EXACT, 0, "/bin/one");
	/* another process with the same pid, started before the entry: a
	 * new start time, so a new record */
	fake_set(301, 4243, "/bin/two", "two");
	resolve_expect(a, &o, ATTRIB_VIA_EXACT, 0, "/bin/two");
	/* started after the entry was written: refused, cache or not */
	late = o;
	late.ts_ns = 4243 * tick_ns + 1;
	fake_set(301, 4242, "/bin/one", "one");
	resolve_expect(a, &late, ATTRIB_VIA_EXACT, 0, "/bin/one");
	fake_set(301, 4300, "/bin/three", "three");
	resolve_expect(a, &late, ATTRIB_VIA_EXACT, -ESTALE, NULL);
	/* the start time BPF read must agree too */
	fake_set(301, 4242, "/bin/one", "one");
	late.start_ns = 4200 * tick_ns;
	resolve_expect(a, &late, ATTRIB_VIA_EXACT, -ESTALE, NULL);
	attrib_free(a);
}
END_TEST

/* An entry naming another cgroup is validated afresh, and refused. */
START_TEST(test_cache_cgroup_mismatch)
{
	attrib_t *a = cache_attrib(0, false);
	struct egress_owner o = cache_owner(302, 1), other;
	char path[PATH_MAX + 16];

	make_fake_cg_proc(302, "/bin/one", cache_cg);
	fake_set(302, 4242, "/bin/one", "one");
	resolve_expect(a, &o, ATTRIB_VIA_EXACT, 0, "/bin/one");
	other = o;
	other.cgroup_id ^= 1;
	resolve_expect(a, &other, ATTRIB_VIA_EXACT, -EXDEV, NULL);
	/* moved to a cgroup since removed: once the record is older than
	 * the TTL, the next read refuses it too */
	snprintf(path, sizeof(path), "%s/302/cgroup", fake_root);
	write_file(path, "0::/egress-unit-gone\n", 21);
	resolve_expect(a, &o, ATTRIB_VIA_EXACT, 0, "/bin/one");
	cache_now += 2 * ATTRIB_CACHE_TTL_MS_DEFAULT / 1000.0;
	resolve_expect(a, &o, ATTRIB_VIA_EXACT, -EXDEV, NULL);
	attrib_free(a);
}
END_TEST

/* Bounded: the least recently used record goes; no_cache keeps none. */
START_TEST(test_cache_bound)
{
	attrib_t *a = cache_attrib(2, false), *off = cache_attrib(0, true);
	struct egress_owner o[3];
	struct attrib_stats st;

	for (int i = 0; i < 3; i++) {
		make_fake_cg_proc(310 + i, "/bin/one", cache_cg);
		fake_set(310 + i, 4242, "/bin/one", "one");
		o[i] = cache_owner(310 + i, 1);
	}
	resolve_expect(a, &o[0], ATTRIB_VIA_EXACT, 0, "/bin/one");
	resolve_expect(a, &o[1], ATTRIB_VIA_EXACT, 0, "/bin/one");
	resolve_expect(a, &o[0], ATTRIB_VIA_EXACT, 0, "/bin/one"); /* hit */
	resolve_expect(a, &o[2], ATTRIB_VIA_EXACT, 0, "/bin/one"); /* 311 out */
	resolve_expect(off, &o[0], ATTRIB_VIA_EXACT, 0, "/bin/one");
	for (int i = 0; i < 3; i++)
		fake_set(310 + i, 4242, "/bin/two", "two");
	resolve_expect(a, &o[0], ATTRIB_VIA_EXACT, 0, "/bin/one");
	resolve_expect(a, &o[2], ATTRIB_VIA_EXACT, 0, "/bin/one");
	resolve_expect(a, &o[1], ATTRIB_VIA_EXACT, 0, "/bin/two");
	resolve_expect(off, &o[0], ATTRIB_VIA_EXACT, 0, "/bin/two");
	attrib_get_stats(a, &st);
	ck_assert_uint_eq(st.cache_hits, 3);
	attrib_get_stats(off, &st);
	ck_assert_uint_eq(st.cache_hits, 0);
	attrib_free(a);
	attrib_free(off);
}
END_TEST

START_TEST(test_strings)
{
	ck_assert_str_eq(attrib_strerror(-ESTALE), "pid reused");
	ck_assert_str_eq(attrib_strerror(-EXDEV), "cgroup mismatch");
	ck_assert_str_eq(attrib_via_str(ATTRIB_VIA_DIAG), "diag");
	ck_assert_str_eq(attrib_src_str(EGRESS_SRC_SKB), "skb");
}
END_TEST

Suite *attrib_suite(void)
{
	Suite *s = suite_create("attrib");
	TCase *tc = tcase_create("github");

	tcase_add_loop_test(tc, test_github_context, 0, ARRAY_SIZE(gh_cases));
	tcase_add_test(tc, test_strings);
	suite_add_tcase(s, tc);

	tc = tcase_create("guards");
	tcase_add_checked_fixture(tc, maps_setup, maps_teardown);
	tcase_add_test(tc, test_lookup_ok);
	tcase_add_test(tc, test_pid_watch);
	tcase_add_loop_test(tc, test_lookup_refused, 0,
			    ARRAY_SIZE(guard_cases));
	tcase_add_test(tc, test_lookup_wildcard);
	suite_add_tcase(s, tc);

	tc = tcase_create("docker");
	tcase_add_unchecked_fixture(tc, docker_setup, docker_teardown);
	tcase_add_test(tc, test_docker_image);
	suite_add_tcase(s, tc);

	tc = tcase_create("cache");
	tcase_add_checked_fixture(tc, cache_setup, cache_teardown);
	tcase_add_test(tc, test_cache_hit_expiry);
	tcase_add_test(tc, test_cache_pid_reuse);
	tcase_add_test(tc, test_cache_cgroup_mismatch);
	tcase_add_test(tc, test_cache_bound);
	suite_add_tcase(s, tc);

	tc = tcase_create("diag");
	tcase_add_checked_fixture(tc, maps_setup, maps_teardown);
	tcase_add_test(tc, test_diag_connected_udp);
	tcase_add_test(tc, test_diag_tcp_miss);
	suite_add_tcase(s, tc);
	return s;
}
