/*
 * check_policy_parse.c - the policy grammar, header context, flattening,
 * rule rejection and validation diagnostics (reference section 1).
 */
#include <check.h>
#include <string.h>

#include "policy.h"
#include "suites.h"

START_TEST(test_single_host)
{
	policy_t *p = NULL;
	struct policy_diags d = { 0 };

	ck_assert_int_eq(policy_parse("github.com", 10, NULL, &p, &d), 0);
	ck_assert_uint_eq(d.n, 0);
	ck_assert_uint_eq(policy_nrules(p), 1);
	ck_assert_int_eq(policy_rule(p, 0)->type, POLICY_HOST);
	ck_assert_str_eq(policy_rule(p, 0)->target, "github.com");
	policy_free(p);
	policy_diags_fini(&d);
}
END_TEST

Suite *policy_parse_suite(void)
{
	Suite *s = suite_create("policy_parse");
	TCase *tc = tcase_create("basic");

	tcase_add_test(tc, test_single_host);
	suite_add_tcase(s, tc);
	return s;
}
