/*
 * check_bpf.c - the BPF object and its loader: the shared header's layout,
 * the skeleton's programs and attach types, the verifier's acceptance,
 * bpf_prog_test_run_opts where the kernel can run a program type on
 * synthetic input, and the loader's attach / re-attach / cleanup cycle on
 * a private child cgroup with a private bpffs instance (never the root
 * cgroup, never /sys/fs/bpf).  Traffic through attached programs is the
 * netns tier's job (tests/netns/test_bpf_*.sh).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* bpftool's generated skeleton casts away const; not our code to fix */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include "egress.skel.h"
#pragma GCC diagnostic pop
#include "attrib.h"
#include "bpfload.h"
#include "cgroup.h"
#include "ctl.h"
#include "egress.h"
#include "suites.h"
#include "testutil.h"

/* The kernel's "operation not supported" for BPF_PROG_TEST_RUN. */
#define KERNEL_ENOTSUPP 524

static void require_root(void)
{
	ck_assert_msg(geteuid() == 0,
		      "loading BPF needs root (CAP_BPF); run the unit tests "
		      "as root");
}

/* ---- the shared header ---------------------------------------------------- */

START_TEST(test_layout)
{
	/* the map key and value are ABI between the object and userspace */
	ck_assert_uint_eq(sizeof(struct egress_tuple4), 16);
	ck_assert_uint_eq(offsetof(struct egress_tuple4, saddr), 0);
	ck_assert_uint_eq(offsetof(struct egress_tuple4, daddr), 4);
	ck_assert_uint_eq(offsetof(struct egress_tuple4, sport), 8);
	ck_assert_uint_eq(offsetof(struct egress_tuple4, dport), 10);
	ck_assert_uint_eq(offsetof(struct egress_tuple4, proto), 12);
	ck_assert_uint_eq(sizeof(struct egress_owner), 40);
	ck_assert_uint_eq(offsetof(struct egress_owner, tgid), 0);
	ck_assert_uint_eq(offsetof(struct egress_owner, cgroup_id), 8);
	ck_assert_uint_eq(offsetof(struct egress_owner, ts_ns), 16);
	ck_assert_uint_eq(offsetof(struct egress_owner, cookie), 24);
	ck_assert_uint_eq(offsetof(struct egress_owner, start_ns), 32);
}
END_TEST

static const struct {
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t proto;
	unsigned char key[16]; /* the bytes BPF writes */
} keys[] = {
	{ "10.1.2.3",
	  "198.51.100.10",
	  40000,
	  443,
	  6,
	  { 10, 1, 2, 3, 198, 51, 100, 10, 0x9c, 0x40, 0x01, 0xbb, 6 } },
	{ "0.0.0.0",
	  "198.51.100.53",
	  53212,
	  53,
	  17,
	  { 0, 0, 0, 0, 198, 51, 100, 53, 0xcf, 0xdc, 0, 53, 17 } },
	{ "172.17.0.2",
	  "203.0.113.10",
	  1,
	  65535,
	  17,
	  { 172, 17, 0, 2, 203, 0, 113, 10, 0, 1, 0xff, 0xff, 17 } },
	{ "255.255.255.255",
	  "127.0.0.1",
	  65535,
	  0,
	  6,
	  { 255, 255, 255, 255, 127, 0, 0, 1, 0xff, 0xff, 0, 0, 6 } },
};

START_TEST(test_key_encoding)
{
	struct attrib_tuple t = { 0 }, back;
	struct egress_tuple4 k;

	memset(&k, 0xaa, sizeof(k)); /* padding must be cleared */
	ck_assert_int_eq(inet_pton(AF_INET, keys[_i].src, &t.saddr), 1);
	ck_assert_int_eq(inet_pton(AF_INET, keys[_i].dst, &t.daddr), 1);
	t.sport = keys[_i].sport;
	t.dport = keys[_i].dport;
	t.proto = keys[_i].proto;
	attrib_key(&t, &k);
	ck_assert_mem_eq(&k, keys[_i].key, sizeof(k));
	attrib_tuple_of_key(&k, &back);
	ck_assert_mem_eq(&back, &t, sizeof(t));
}
END_TEST

/* ---- the skeleton ---------------------------------------------------------- */

START_TEST(test_skeleton_programs)
{
	struct egress_bpf *skel = egress_bpf__open();

	ck_assert_msg(skel != NULL, "egress_bpf__open: %s", strerror(errno));
	ck_assert_int_eq(bpf_program__type(skel->progs.egress_connect6),
			 BPF_PROG_TYPE_CGROUP_SOCK_ADDR);
	ck_assert_int_eq(
		bpf_program__expected_attach_type(skel->progs.egress_connect6),
		BPF_CGROUP_INET6_CONNECT);
	ck_assert_int_eq(
		bpf_program__expected_attach_type(skel->progs.egress_sendmsg6),
		BPF_CGROUP_UDP6_SENDMSG);
	ck_assert_int_eq(bpf_program__type(skel->progs.egress_sock_create),
			 BPF_PROG_TYPE_CGROUP_SOCK);
	ck_assert_int_eq(
		bpf_program__expected_attach_type(skel->progs.egress_connect4),
		BPF_CGROUP_INET4_CONNECT);
	ck_assert_int_eq(bpf_program__type(skel->progs.egress_sockops),
			 BPF_PROG_TYPE_SOCK_OPS);
	ck_assert_int_eq(
		bpf_program__expected_attach_type(skel->progs.egress_sendmsg4),
		BPF_CGROUP_UDP4_SENDMSG);
	ck_assert_int_eq(bpf_program__type(skel->progs.egress_skb),
			 BPF_PROG_TYPE_CGROUP_SKB);
	ck_assert_int_eq(
		bpf_program__expected_attach_type(skel->progs.egress_skb),
		BPF_CGROUP_INET_EGRESS);
	ck_assert_int_eq(bpf_map__type(skel->maps.egress_conn4),
			 BPF_MAP_TYPE_LRU_HASH);
	ck_assert_uint_eq(bpf_map__max_entries(skel->maps.egress_conn4),
			  EGRESS_MAP_ENTRIES_DEFAULT);
	/* configuration lives in rodata, settable between open and load */
	ck_assert_uint_eq(skel->rodata->cfg_block_ipv6, 1);
	ck_assert_uint_eq(skel->rodata->cfg_attrib, 1);
	skel->rodata->cfg_block_ipv6 = 0;
	egress_bpf__destroy(skel);
}
END_TEST

START_TEST(test_skeleton_loads)
{
	struct egress_bpf *skel;
	int err;

	require_root();
	skel = egress_bpf__open();
	ck_assert_ptr_nonnull(skel);
	err = egress_bpf__load(skel);
	ck_assert_msg(err == 0, "the verifier rejected the object: %s",
		      strerror(-err));
	ck_assert_int_ge(bpf_program__fd(skel->progs.egress_connect6), 0);
	ck_assert_int_ge(bpf_program__fd(skel->progs.egress_sockops), 0);
	egress_bpf__destroy(skel);
}
END_TEST

/* The loader's configuration reaches the kernel objects. */
START_TEST(test_loader_config)
{
	struct bpfload_opts o = { .map_entries = 1024, .no_block_raw = true };
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	bpfload_t *b;

	require_root();
	ck_assert_int_eq(bpfload_open(&o, &b), 0);
	for (int m = 0; m < BPFLOAD_MAP_MAX; m++) {
		int fd = bpfload_map_fd(b, m);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
		ck_assert_uint_eq(info.max_entries, 1024);
		ck_assert_uint_eq(info.type, BPF_MAP_TYPE_LRU_HASH);
	}
	ck_assert_uint_eq(info.key_size, sizeof(__u64));
	ck_assert_uint_eq(info.value_size, sizeof(struct egress_owner));
	bpfload_free(b);
}
END_TEST

/* ---- bpf_prog_test_run_opts ------------------------------------------------ */

/* A minimal IPv4 + UDP/TCP header, enough for the kernel's skb setup. */
static size_t make_ipv4(unsigned char *p, uint8_t proto)
{
	memset(p, 0, 64);
	p[0] = 0x45;
	p[3] = 48; /* total length */
	p[8] = 64;
	p[9] = proto;
	memcpy(p + 12, (unsigned char[]){ 172, 17, 0, 2 }, 4);
	memcpy(p + 16, (unsigned char[]){ 198, 51, 100, 10 }, 4);
	p[20] = 0x9c, p[21] = 0x40, p[23] = 53;
	return 48;
}

/*
 * cgroup_skb programs can be run on synthetic packets: the kernel wraps
 * them in a dummy socket that is neither a UDP socket nor connected, so
 * egress_skb must pass every one of them (it never drops) and record
 * nothing.
 */
START_TEST(test_skb_never_drops)
{
	static const uint8_t protos[] = { 17, 6, 1, 0 };
	struct egress_tuple4 k;
	unsigned char pkt[64];
	struct egress_bpf *skel;

	require_root();
	skel = egress_bpf__open_and_load();
	ck_assert_ptr_nonnull(skel);
	for (size_t i = 0; i < sizeof(protos); i++) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt,
			    .data_size_in = make_ipv4(pkt, protos[i]),
			    .repeat = 1);
		ck_assert_int_eq(
			bpf_prog_test_run_opts(
				bpf_program__fd(skel->progs.egress_skb), &run),
			0);
		ck_assert_uint_eq(run.retval, 1);
	}
	ck_assert_int_ne(
		bpf_map_get_next_key(bpf_map__fd(skel->maps.egress_conn4), NULL,
				     &k),
		0);
	egress_bpf__destroy(skel);
}
END_TEST

/*
 * sock_addr programs gained BPF_PROG_TEST_RUN only in recent kernels;
 * where it exists, check the IPv6 verdicts on synthetic addresses.  Where
 * it does not, the kernel must say exactly that (ENOTSUPP), and the
 * verdicts are covered by the netns tier on real sockets.
 */
START_TEST(test_connect6_verdicts)
{
	static const struct {
		const char *addr;
		unsigned verdict;
	} cases[] = {
		{ "::1", EGRESS_VERDICT_ALLOW },
		{ "2001:db8::1", EGRESS_VERDICT_DENY },
		{ "::ffff:198.51.100.10", EGRESS_VERDICT_DENY },
		{ "::", EGRESS_VERDICT_DENY },
	};
	struct egress_bpf *skel;

	require_root();
	skel = egress_bpf__open_and_load();
	ck_assert_ptr_nonnull(skel);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct bpf_sock_addr ctx = { .user_family = AF_INET6 };
		LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx));
		int err;

		ck_assert_int_eq(
			inet_pton(AF_INET6, cases[i].addr, ctx.user_ip6), 1);
		err = bpf_prog_test_run_opts(
			bpf_program__fd(skel->progs.egress_connect6), &run);
		if (err == -KERNEL_ENOTSUPP)
			continue;
		ck_assert_int_eq(err, 0);
		ck_assert_uint_eq(run.retval, cases[i].verdict);
	}
	egress_bpf__destroy(skel);
}
END_TEST

/* ---- attach / re-attach / cleanup ----------------------------------------- */

static char unit_cg[PATH_MAX], unit_pins[256];

static void attach_setup(void)
{
	const char *root = cgroup_v2_mount();

	ck_assert_msg(root != NULL, "no cgroup v2 hierarchy is mounted");
	snprintf(unit_cg, sizeof(unit_cg), "%s/egress-unit-%d", root,
		 (int)getpid());
	snprintf(unit_pins, sizeof(unit_pins), "/tmp/egress-unit-pins-%d",
		 (int)getpid());
	ck_assert_int_eq(mkdir(unit_cg, 0755), 0);
}

static void attach_teardown(void)
{
	int rc = bpfload_cleanup(unit_pins);

	(void)rc;
	rmdir(unit_pins);
	rmdir(unit_cg);
}

/* Number of programs attached to the test cgroup for one hook. */
static unsigned attached(enum bpf_attach_type type)
{
	__u32 ids[8], n = 8;
	int fd = open(unit_cg, O_RDONLY | O_DIRECTORY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bpf_prog_query(fd, type, 0, NULL, ids, &n), 0);
	close(fd);
	return n;
}

static __u32 pinned_id(const char *name, __u32 *prog_id)
{
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", unit_pins, name);
	fd = bpf_obj_get(path);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	if (prog_id)
		*prog_id = info.prog_id;
	return info.id;
}

static const enum bpf_attach_type hooks[] = {
	BPF_CGROUP_INET4_CONNECT,    BPF_CGROUP_SOCK_OPS,
	BPF_CGROUP_UDP4_SENDMSG,     BPF_CGROUP_INET_EGRESS,
	BPF_CGROUP_INET6_CONNECT,    BPF_CGROUP_UDP6_SENDMSG,
	BPF_CGROUP_INET_SOCK_CREATE,
};

static void attach_once(unsigned entries)
{
	struct bpfload_opts o = { .cgroup = unit_cg,
				  .pin_dir = unit_pins,
				  .map_entries = entries };
	bpfload_t *b;

	ck_assert_int_eq(bpfload_pin_dir_prepare(unit_pins), 0);
	ck_assert_int_eq(bpfload_open(&o, &b), 0);
	ck_assert_int_eq(bpfload_attach(b), 0);
	bpfload_free(b);
}

START_TEST(test_attach_cycle)
{
	__u32 link1, link2, prog1, prog2, map1, map2, map3;
	struct statfs sfs;
	struct bpf_map_info mi = { 0 };
	__u32 len = sizeof(mi);
	int fd;

	require_root();
	attach_once(0);
	ck_assert_int_eq(statfs(unit_pins, &sfs), 0);
	ck_assert_msg(sfs.f_type == BPF_FS_MAGIC,
		      "a private bpffs instance is mounted on the pin dir");
	for (size_t i = 0; i < ARRAY_SIZE(hooks); i++)
		ck_assert_uint_eq(attached(hooks[i]), 1);
	link1 = pinned_id("link_connect6", &prog1);
	fd = bpfload_open_pinned_map(unit_pins, BPFLOAD_MAP_CONN4);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bpf_obj_get_info_by_fd(fd, &mi, &len), 0);
	map1 = mi.id;
	close(fd);

	/* a second attach (a daemon restarted after a crash) takes the
	 * pinned links over in place: same links, new programs, one
	 * program per hook at every moment, the same map */
	attach_once(0);
	link2 = pinned_id("link_connect6", &prog2);
	ck_assert_uint_eq(link2, link1);
	ck_assert_uint_ne(prog2, prog1);
	for (size_t i = 0; i < ARRAY_SIZE(hooks); i++)
		ck_assert_uint_eq(attached(hooks[i]), 1);
	fd = bpfload_open_pinned_map(unit_pins, BPFLOAD_MAP_CONN4);
	ck_assert_int_eq(bpf_obj_get_info_by_fd(fd, &mi, &len), 0);
	map2 = mi.id;
	close(fd);
	ck_assert_uint_eq(map2, map1);

	/* a different map size cannot reuse the map: it is replaced */
	attach_once(4096);
	fd = bpfload_open_pinned_map(unit_pins, BPFLOAD_MAP_CONN4);
	ck_assert_int_eq(bpf_obj_get_info_by_fd(fd, &mi, &len), 0);
	map3 = mi.id;
	close(fd);
	ck_assert_uint_ne(map3, map1);
	ck_assert_uint_eq(mi.max_entries, 4096);

	/* cleanup detaches and unpins everything, and unmounts its bpffs */
	ck_assert_int_eq(bpfload_cleanup(unit_pins), 9);
	for (size_t i = 0; i < ARRAY_SIZE(hooks); i++)
		ck_assert_uint_eq(attached(hooks[i]), 0);
	ck_assert_int_ne(access(unit_pins, F_OK), 0);
	ck_assert_int_eq(bpfload_cleanup(unit_pins), 0);
}
END_TEST

/* Pinned links on another cgroup are not taken over silently. */
START_TEST(test_attach_other_cgroup)
{
	char other[PATH_MAX + 8];
	struct bpfload_opts o = { .cgroup = other, .pin_dir = unit_pins };
	bpfload_t *b;

	require_root();
	attach_once(0);
	snprintf(other, sizeof(other), "%s/sub", unit_cg);
	ck_assert_int_eq(mkdir(other, 0755), 0);
	ck_assert_int_eq(bpfload_open(&o, &b), 0);
	ck_assert_int_eq(bpfload_attach(b), -EEXIST);
	bpfload_free(b);
	ck_assert_int_eq(rmdir(other), 0);
	ck_assert_uint_eq(attached(BPF_CGROUP_INET6_CONNECT), 1);
}
END_TEST

/*
 * A child in the test cgroup and a private netns makes a loopback TCP
 * connection and holds it; writes its pid to fd and waits to be killed.
 */
static void connect_in_cgroup(int fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct ifreq ifr = { .ifr_name = "lo" };
	socklen_t len = sizeof(a);
	char procs[PATH_MAX + 16], pid[16];
	int l, c, s, cg;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", unit_cg);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	cg = open(procs, O_WRONLY);
	if (cg < 0 || write(cg, pid, strlen(pid)) < 0 ||
	    unshare(CLONE_NEWNET) < 0)
		_exit(1);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		_exit(1);
	ifr.ifr_flags |= IFF_UP;
	l = socket(AF_INET, SOCK_STREAM, 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0 ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    write(fd, pid, strlen(pid)) < 0)
		_exit(1);
	pause();
	_exit(0);
}

/* egressctl bpf/attrib in-process, on real entries from a real socket. */
START_TEST(test_ctl_commands)
{
	char *attach[] = { "bpf",	"attach",  "--cgroup", unit_cg,
			   "--pin-dir", unit_pins, NULL };
	char *status[] = { "bpf", "status", "--pin-dir", unit_pins, NULL };
	char *dump[] = { "attrib", "--pin-dir", unit_pins, NULL };
	char *lookup[] = { "attrib", "--pin-dir",   unit_pins,	   "--lookup",
			   "tcp",    "127.0.0.1:1", "127.0.0.1:2", NULL };
	char *bad[] = { "attrib", "--pin-dir",	 unit_pins,	"--lookup",
			"sctp",	  "127.0.0.1:1", "127.0.0.1:2", NULL };
	char *detach[] = { "bpf", "detach", "--pin-dir", unit_pins, NULL };
	char want[64], pid[16] = "";
	struct tu_run r;
	int pfd[2];
	pid_t child;

	require_root();
	tu_run(&r, ctl_bpf, attach);
	ck_assert_int_eq(r.rc, CTL_OK);
	tu_run_fini(&r);
	tu_run(&r, ctl_bpf, status);
	ck_assert_int_eq(tu_lines(r.out), 9);
	ck_assert_ptr_nonnull(strstr(r.out, "\"pin\":\"link_sockops\""));
	tu_run_fini(&r);

	ck_assert_int_eq(pipe(pfd), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0)
		connect_in_cgroup(pfd[1]);
	ck_assert_int_gt(read(pfd[0], pid, sizeof(pid) - 1), 0);
	tu_run(&r, ctl_attrib, dump);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	ck_assert_int_eq(r.rc, CTL_OK);
	snprintf(want, sizeof(want), "\"status\":\"ok\",\"pid\":%s,", pid);
	ck_assert_msg(strstr(r.out, want) &&
			      strstr(r.out, "\"hook\":\"sockops\""),
		      "attrib: %s", r.out);
	tu_run_fini(&r);

	tu_run(&r, ctl_attrib, lookup);
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_ptr_nonnull(strstr(r.out, "\"status\":\"no entry\""));
	tu_run_fini(&r);
	tu_run(&r, ctl_attrib, bad);
	ck_assert_int_eq(r.rc, CTL_USAGE);
	tu_run_fini(&r);
	tu_run(&r, ctl_bpf, detach);
	ck_assert_str_eq(r.out, "removed 9 pins\n");
	tu_run_fini(&r);
	close(pfd[0]);
	close(pfd[1]);
}
END_TEST

Suite *bpf_suite(void)
{
	Suite *s = suite_create("bpf");
	TCase *tc = tcase_create("encoding");

	tcase_add_test(tc, test_layout);
	tcase_add_loop_test(tc, test_key_encoding, 0, ARRAY_SIZE(keys));
	suite_add_tcase(s, tc);

	tc = tcase_create("skeleton");
	tcase_add_test(tc, test_skeleton_programs);
	tcase_add_test(tc, test_skeleton_loads);
	tcase_add_test(tc, test_loader_config);
	suite_add_tcase(s, tc);

	tc = tcase_create("test_run");
	tcase_add_test(tc, test_skb_never_drops);
	tcase_add_test(tc, test_connect6_verdicts);
	suite_add_tcase(s, tc);

	tc = tcase_create("attach");
	tcase_add_checked_fixture(tc, attach_setup, attach_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_attach_cycle);
	tcase_add_test(tc, test_attach_other_cgroup);
	tcase_add_test(tc, test_ctl_commands);
	suite_add_tcase(s, tc);
	return s;
}
