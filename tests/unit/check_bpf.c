/*
 * check_bpf.c - the BPF object built by the vmlinux.h -> .bpf.o -> skeleton
 * chain: it opens, carries the expected programs with the expected
 * attach types, and the kernel's verifier accepts it.  Nothing is attached
 * here (attachment is tested in a dedicated cgroup by the netns tier).
 */
#include <bpf/libbpf.h>
#include <check.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* bpftool's generated skeleton casts away const; not our code to fix */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include "egress.skel.h"
#pragma GCC diagnostic pop
#include "suites.h"

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
	/* configuration lives in rodata, settable between open and load */
	ck_assert_uint_eq(skel->rodata->cfg_block_ipv6, 1);
	skel->rodata->cfg_block_ipv6 = 0;
	egress_bpf__destroy(skel);
}
END_TEST

START_TEST(test_skeleton_loads)
{
	struct egress_bpf *skel;
	int err;

	ck_assert_msg(geteuid() == 0,
		      "loading BPF needs root (CAP_BPF); run the unit tests "
		      "as root");
	skel = egress_bpf__open();
	ck_assert_ptr_nonnull(skel);
	err = egress_bpf__load(skel);
	ck_assert_msg(err == 0, "the verifier rejected the object: %s",
		      strerror(-err));
	ck_assert_int_ge(bpf_program__fd(skel->progs.egress_connect6), 0);
	egress_bpf__destroy(skel);
}
END_TEST

Suite *bpf_suite(void)
{
	Suite *s = suite_create("bpf");
	TCase *tc = tcase_create("skeleton");

	tcase_add_test(tc, test_skeleton_programs);
	tcase_add_test(tc, test_skeleton_loads);
	suite_add_tcase(s, tc);
	return s;
}
