/*
 * check_policy_decide.c - see the suite's test cases.
 */
#include <check.h>
#include <string.h>

#include "policy.h"
#include "suites.h"

START_TEST(test_host_allows)
{
	policy_t *p = NULL;
	struct policy_event ev = { .type = POLICY_EV_HTTPS,
				   .dst_ip = "1.2.3.4",
				   .dst_port = 443,
				   .host = "github.com" };

	ck_assert_int_eq(policy_parse("github.com", 10, NULL, &p, NULL), 0);
	ck_assert_int_eq(policy_match(p, &ev), 0);
	policy_free(p);
}
END_TEST

Suite *policy_decide_suite(void)
{
	Suite *s = suite_create("policy_decide");
	TCase *tc = tcase_create("basic");

	tcase_add_test(tc, test_host_allows);
	suite_add_tcase(s, tc);
	return s;
}
