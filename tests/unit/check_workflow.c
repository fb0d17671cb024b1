/*
 * check_workflow.c - policies found in GitHub workflow YAML.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"
#include "workflow.h"

static const char wf_yaml[] = "name: ci\n"
			      "on: [push]\n"
			      "jobs:\n"
			      "  build:\n"
			      "    runs-on: ubuntu-latest\n"
			      "    steps:\n"
			      "      - uses: actions/checkout@v4\n"
			      "      - name: Egress\n"
			      "        uses: gregclermont/egress-filter@v1\n"
			      "        with:\n"
			      "          policy: |\n"
			      "            github.com\n"
			      "            [:53/udp]\n"
			      "            8.8.8.8\n"
			      "      - uses: ./egress-filter\n"
			      "        with:\n"
			      "          policy: example.com\n"
			      "      - uses: someone/else@v1\n"
			      "        with:\n"
			      "          policy: ignored.com\n"
			      "      - uses: o/egress-filter@v2\n"
			      "        with:\n"
			      "          policy: ''\n"
			      "  test:\n"
			      "    steps:\n"
			      "      - uses: me/egressd@main\n"
			      "        with: { policy: 'a.test' }\n";

START_TEST(test_finds_policies)
{
	char *path = tu_tmpfile(0, ".yml", wf_yaml);
	struct wf_policies w;
	char *err = NULL;

	ck_assert_int_eq(workflow_policies(path, &w, &err), 0);
	ck_assert_uint_eq(w.n, 3);
	ck_assert_str_eq(w.v[0].label, "jobs.build.steps[1] (Egress)");
	ck_assert_str_eq(w.v[0].text, "github.com\n[:53/udp]\n8.8.8.8\n");
	ck_assert_str_eq(w.v[1].label, "jobs.build.steps[2] (step 2)");
	ck_assert_str_eq(w.v[1].text, "example.com");
	ck_assert_str_eq(w.v[2].label, "jobs.test.steps[0] (step 0)");
	workflow_policies_fini(&w);
	unlink(path);
}
END_TEST

START_TEST(test_errors)
{
	struct wf_policies w;
	char *err = NULL;
	char *bad = tu_tmpfile(0, ".yml", "jobs: [unclosed\n");
	char *list = tu_tmpfile(1, ".yml", "- a\n- b\n");

	ck_assert_int_eq(workflow_policies(bad, &w, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "invalid YAML"));
	free(err);
	ck_assert_int_eq(workflow_policies(list, &w, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a YAML mapping"));
	free(err);
	ck_assert_int_eq(workflow_policies("/nonexistent/x.yml", &w, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	free(err);
	unlink(bad);
	unlink(list);
}
END_TEST

Suite *workflow_suite(void)
{
	Suite *s = suite_create("workflow");
	TCase *tc = tcase_create("yaml");

	tcase_add_test(tc, test_finds_policies);
	tcase_add_test(tc, test_errors);
	suite_add_tcase(s, tc);
	return s;
}
