/*
 * check_ctl.c - egressctl's commands run in-process: exit statuses, output
 * shapes, error handling (SPEC 5, reference 8.2).
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "suites.h"
#include "testutil.h"

#define ARGV(...) ((char *[]){ __VA_ARGS__, NULL })

START_TEST(test_validate_ok_and_errors)
{
	struct tu_run r;
	char *good = tu_tmpfile(0, ".txt", "github.com\n[:53/udp]\n8.8.8.8\n");
	char *bad = tu_tmpfile(1, ".txt",
			       "github.com\nbad host name\n/orphan/path\n");

	tu_run(&r, ctl_validate, ARGV("validate", good));
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.out, ": OK"));
	tu_run_fini(&r);

	tu_run(&r, ctl_validate, ARGV("validate", bad));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	/* both problems, each with its line number */
	ck_assert_ptr_nonnull(strstr(r.out, ":2:"));
	ck_assert_ptr_nonnull(strstr(r.out, ":3: error: path rule requires"));
	ck_assert_ptr_nonnull(strstr(r.out, "2 error(s)"));
	tu_run_fini(&r);

	tu_run(&r, ctl_validate, ARGV("validate", "/nonexistent/policy"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	ck_assert_ptr_nonnull(strstr(r.err, "No such file"));
	tu_run_fini(&r);
	unlink(good);
	unlink(bad);
}
END_TEST

START_TEST(test_dump_rules_shape)
{
	struct tu_run r;
	char *f = tu_tmpfile(0, ".txt",
			     "[https://api.github.com/repos/{owner}]\n"
			     "POST /{repo}/* exe=`a b` arg=\"x\"\n"
			     "*.example.com:*|80 passthrough\n");
	json_t *a, *o;
	json_error_t je;

	tu_run(&r, ctl_validate,
	       ARGV("validate", "--dump-rules", "--repo", "me/proj", f));
	ck_assert_int_eq(r.rc, CTL_OK);
	a = json_loads(r.out, 0, &je);
	ck_assert_msg(json_is_array(a), "not a JSON array: %s", r.out);
	ck_assert_uint_eq(json_array_size(a), 2);
	o = json_array_get(a, 0);
	ck_assert_str_eq(json_string_value(json_object_get(o, "type")), "path");
	ck_assert_str_eq(json_string_value(json_object_get(o, "target")),
			 "/proj/*");
	ck_assert_str_eq(json_string_value(json_object_get(o, "url_base")),
			 "https://api.github.com/repos/me");
	ck_assert_int_eq(json_integer_value(
				 json_array_get(json_object_get(o, "port"), 0)),
			 443);
	ck_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(o, "methods"), 0)),
			 "POST");
	json_t *attrs = json_object_get(o, "attrs");
	json_t *want = json_pack("{s:s,s:b}", "value", "a b", "literal", 0);
	ck_assert(json_equal(json_object_get(attrs, "exe"), want));
	json_decref(want);
	ck_assert(json_is_true(
		json_object_get(json_object_get(attrs, "arg"), "literal")));
	ck_assert_ptr_null(json_object_get(o, "passthrough"));
	o = json_array_get(a, 1);
	ck_assert_str_eq(json_string_value(json_object_get(o, "port")), "*");
	ck_assert(json_is_null(json_object_get(o, "methods")));
	ck_assert(json_is_true(json_object_get(o, "passthrough")));
	ck_assert_ptr_null(json_object_get(o, "insecure"));
	json_decref(a);
	tu_run_fini(&r);
	unlink(f);
}
END_TEST

START_TEST(test_dump_rules_errors_exit_1)
{
	struct tu_run r;
	char *f = tu_tmpfile(0, ".txt", "ok.test\nnot ok\n");

	tu_run(&r, ctl_validate, ARGV("validate", "--dump-rules", f));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_ptr_nonnull(strstr(r.err, ":2:"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"ok.test\""));
	tu_run_fini(&r);
	unlink(f);
}
END_TEST

START_TEST(test_check_stream)
{
	struct tu_run r;
	char *f = tu_tmpfile(0, ".txt", "github.com\n");
	const char *in =
		"{\"type\":\"https\",\"dst_ip\":\"1.1.1.1\",\"dst_port\":443,"
		"\"host\":\"github.com\"}\n"
		"\n"
		"[1,2]\n"
		"{\"type\":\"tcp\",\"dst_ip\":\"1.1.1.1\"}\n"
		"{\"type\":\"https\",\"dst_ip\":\"1.1.1.1\",\"dst_port\":443,"
		"\"host\":\"gitlab.com\"}\n";

	tu_run_in(&r, ctl_check, ARGV("check", "--policy", f), in);
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_int_eq(tu_lines(r.out), 4);
	ck_assert_ptr_nonnull(strstr(
		r.out,
		"{\"verdict\":\"allow\",\"rule\":0,\"passthrough\":false,"
		"\"insecure\":false}\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "{\"error\":\"an event must be"));
	ck_assert_ptr_nonnull(strstr(r.out, "missing \\\"dst_port\\\""));
	ck_assert_ptr_nonnull(
		strstr(r.out, "{\"verdict\":\"block\",\"rule\":null,"));
	tu_run_fini(&r);

	/* audit mode allows, but reports no rule */
	tu_run_in(&r, ctl_check, ARGV("check", "--audit", "--policy", f),
		  "{\"type\":\"udp\",\"dst_ip\":\"1.1.1.1\",\"dst_port\":1}\n");
	ck_assert_str_eq(r.out, "{\"verdict\":\"allow\",\"rule\":null,"
				"\"passthrough\":false,\"insecure\":false}\n");
	tu_run_fini(&r);
	unlink(f);
}
END_TEST

START_TEST(test_check_invalid_policy_exits_1)
{
	struct tu_run r;
	char *f = tu_tmpfile(0, ".txt", "github.com.\n");

	tu_run_in(&r, ctl_check, ARGV("check", "--policy", f),
		  "{\"type\":\"udp\"}\n");
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_str_eq(r.out, "");
	ck_assert_ptr_nonnull(strstr(r.err, "cannot end with a dot"));
	tu_run_fini(&r);
	unlink(f);
}
END_TEST

START_TEST(test_analyze_json_and_report)
{
	struct tu_run r;
	char *pol = tu_tmpfile(0, ".txt", "github.com:22\n");
	char *log = tu_tmpfile(
		1, ".jsonl",
		"{\"type\":\"dns_response\",\"name\":\"github.com\","
		"\"answers\":[\"140.82.1.1\"],\"ttl\":60}\n"
		"{\"type\":\"tcp\",\"dst_ip\":\"140.82.1.1\",\"dst_port\":22}\n"
		"{\"type\":\"tcp\",\"dst_ip\":\"140.82.1.2\",\"dst_port\":22}\n"
		"not json\n"
		"{\"type\":\"https\",\"dst_ip\":\"1.1.1.1\",\"dst_port\":443,"
		"\"host\":null,\"error\":\"tls_client_rejected_ca\"}\n");

	tu_run(&r, ctl_analyze,
	       ARGV("analyze", "--policy", pol, "--log", log, "--json"));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_int_eq(tu_lines(r.out), 4);
	ck_assert(strncmp(r.out, "{\"verdict\":\"allow\",\"rule\":0", 27) == 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\n{\"verdict\":\"block\","));
	ck_assert_ptr_nonnull(strstr(r.err, ":4: not a JSON object"));
	tu_run_fini(&r);

	tu_run(&r, ctl_analyze,
	       ARGV("analyze", "--policy", pol, "--log", log, "-v"));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_ptr_nonnull(strstr(r.out, "tcp 140.82.1.2:22 (1x)"));
	ck_assert_ptr_nonnull(strstr(r.out, "<- rule 0"));
	ck_assert_ptr_nonnull(strstr(r.out, "error=tls_client_rejected_ca"));
	ck_assert_ptr_nonnull(strstr(r.out, "1 allowed, 1 blocked, 1 failed"));
	tu_run_fini(&r);
	unlink(pol);
	unlink(log);
}
END_TEST

/* What suggest prints must validate, and allow the whole log. */
START_TEST(test_suggest_round_trip)
{
	struct tu_run r;
	char *log = tu_tmpfile(
		0, ".jsonl",
		"{\"type\":\"https\",\"dst_ip\":\"1.1.1.1\",\"dst_port\":443,"
		"\"host\":\"a.cdn.test\",\"exe\":\"/usr/bin/curl\"}\n"
		"{\"type\":\"https\",\"dst_ip\":\"1.1.1.2\",\"dst_port\":443,"
		"\"host\":\"b.cdn.test\"}\n"
		"{\"type\":\"http\",\"dst_ip\":\"1.1.1.3\",\"dst_port\":80,"
		"\"url\":\"http://plain.test/x?y\",\"method\":\"GET\"}\n"
		"{\"type\":\"dns\",\"dst_ip\":\"127.0.0.53\",\"dst_port\":53,"
		"\"name\":\"a.cdn.test\"}\n"
		"{\"type\":\"dns\",\"dst_ip\":\"127.0.0.53\",\"dst_port\":53,"
		"\"name\":\"only-resolved.test\"}\n"
		"{\"type\":\"tcp\",\"dst_ip\":\"10.9.8.7\",\"dst_port\":22}\n"
		"{\"type\":\"udp\",\"dst_ip\":\"10.9.8.6\",\"dst_port\":9999}\n"
		"{\"type\":\"dns\",\"dst_ip\":\"127.0.0.53\",\"dst_port\":53,"
		"\"name\":\"bad_name.test\"}\n");
	char *pol;

	tu_run(&r, ctl_suggest, ARGV("suggest", log));
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_ptr_nonnull(
		strstr(r.out, "\n*.cdn.test  # from /usr/bin/curl\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nplain.test:80\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\n127.0.0.53:53/udp\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\ndns:only-resolved.test\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\n10.9.8.7:22\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\n10.9.8.6:9999/udp\n"));
	ck_assert_ptr_nonnull(
		strstr(r.out, "# cannot be written as a rule: dns:bad_name"));
	pol = tu_tmpfile(1, ".txt", r.out);
	tu_run_fini(&r);

	tu_run(&r, ctl_validate, ARGV("validate", pol));
	ck_assert_msg(r.rc == CTL_OK, "suggested policy invalid: %s", r.out);
	tu_run_fini(&r);
	/* everything but the name that cannot be written is allowed */
	tu_run(&r, ctl_analyze, ARGV("analyze", "--policy", pol, "--log", log));
	ck_assert_ptr_nonnull(strstr(r.out, "7 allowed, 1 blocked"));
	ck_assert_ptr_nonnull(strstr(r.out, "dns bad_name.test:53"));
	tu_run_fini(&r);
	unlink(pol);
	unlink(log);
}
END_TEST

START_TEST(test_workflow_validate)
{
	struct tu_run r;
	char *wf = tu_tmpfile(
		0, ".yml",
		"jobs:\n  j:\n    steps:\n"
		"      - uses: x/egress-filter@v1\n"
		"        with:\n          policy: |\n            ok.test\n"
		"            bad\n");
	char *notmap = tu_tmpfile(1, ".yml", "just a string\n");

	tu_run(&r, ctl_validate, ARGV("validate", "--workflow", wf));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_ptr_nonnull(strstr(r.out, "jobs.j.steps[0] (step 0):2:"));
	tu_run_fini(&r);
	tu_run(&r, ctl_validate,
	       ARGV("validate", "--workflow", "--dump-rules", notmap));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	tu_run_fini(&r);
	unlink(wf);
	unlink(notmap);
}
END_TEST

START_TEST(test_usage_errors)
{
	struct tu_run r;

	tu_run(&r, ctl_validate, ARGV("validate"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	tu_run_fini(&r);
	tu_run(&r, ctl_validate, ARGV("validate", "--preset", "nope", "x"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	ck_assert_ptr_nonnull(strstr(r.err, "unknown preset"));
	tu_run_fini(&r);
	tu_run_in(&r, ctl_check, ARGV("check"), "");
	ck_assert_int_eq(r.rc, CTL_USAGE);
	tu_run_fini(&r);
	tu_run(&r, ctl_analyze, ARGV("analyze", "--policy", "x"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	tu_run_fini(&r);
}
END_TEST

Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("commands");

	tcase_add_test(tc, test_validate_ok_and_errors);
	tcase_add_test(tc, test_dump_rules_shape);
	tcase_add_test(tc, test_dump_rules_errors_exit_1);
	tcase_add_test(tc, test_check_stream);
	tcase_add_test(tc, test_check_invalid_policy_exits_1);
	tcase_add_test(tc, test_analyze_json_and_report);
	tcase_add_test(tc, test_suggest_round_trip);
	tcase_add_test(tc, test_workflow_validate);
	tcase_add_test(tc, test_usage_errors);
	suite_add_tcase(s, tc);
	return s;
}
