/*
 * check_main.c - the unit-test runner: every suite, one Check runner.
 *
 * CK_FORK, CK_RUN_SUITE, CK_RUN_CASE, CK_VERBOSITY and CK_TAP_LOG_FILE_NAME
 * work as the Check manual describes (e.g. CK_FORK=no under valgrind).
 */
#include <stdio.h>
#include <stdlib.h>

#include "suites.h"

const char *test_srcpath(const char *rel)
{
	static char buf[4096];
	const char *root = getenv("EGRESS_SRCDIR");

	snprintf(buf, sizeof(buf), "%s/%s", root ? root : EGRESS_SRCDIR, rel);
	return buf;
}

int main(void)
{
	Suite *(*const suites[])(void) = {
		util_suite,	    hmap_suite,		 policy_parse_suite,
		policy_match_suite, policy_decide_suite, dnscache_suite,
		workflow_suite,	    ctl_suite,		 fixtures_suite,
		bpf_suite,	    attrib_suite,	 llhttp_suite,
		dnsmsg_suite,	    svc_suite,		 jlog_suite,
		nfrules_suite,	    tlsparse_suite,	 certforge_suite,
		proxy_suite,	    dnsjudge_suite,	 nfqueue_suite,
		ctlookup_suite,	    dockerimg_suite,	 runc_suite,
		runc_exec_suite,
	};
	SRunner *sr = srunner_create(NULL);
	int failed;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
