/*
 * suites.h - every Check suite of the unit-test runner.  One suite per
 * module, each defined in tests/unit/check_<module>.c.
 */
#ifndef EGRESS_TESTS_SUITES_H
#define EGRESS_TESTS_SUITES_H

#include <check.h>

Suite *util_suite(void);
Suite *hmap_suite(void);
Suite *policy_parse_suite(void);
Suite *policy_match_suite(void);
Suite *policy_decide_suite(void);
Suite *dnscache_suite(void);
Suite *workflow_suite(void);
Suite *ctl_suite(void);
Suite *fixtures_suite(void);
Suite *bpf_suite(void);
Suite *attrib_suite(void);
Suite *llhttp_suite(void);
Suite *dnsmsg_suite(void);
Suite *svc_suite(void);
Suite *tlsparse_suite(void);
Suite *certforge_suite(void);
Suite *nfrules_suite(void);
Suite *jlog_suite(void);
Suite *proxy_suite(void);
Suite *runc_suite(void);
Suite *runc_exec_suite(void);
Suite *dnsjudge_suite(void);
Suite *nfqueue_suite(void);
Suite *ctlookup_suite(void);
Suite *dockerimg_suite(void);

/* Path of a file under the source tree (fixtures/...), static buffer. */
const char *test_srcpath(const char *rel);

#endif /* EGRESS_TESTS_SUITES_H */
