/*
 * check_fixtures.c - end-to-end cases under fixtures/, run through the very
 * commands users run:
 *
 *   fixtures/check/<case>/    policy.txt, events.jsonl, expected.jsonl
 *                             [args: extra options, one per line]
 *   fixtures/analyze/<case>/  policy.txt, log.jsonl, expected.jsonl
 *   fixtures/dump/<case>/     policy.txt, expected.json
 *                             [args], [exit: expected status]
 *
 * Each directory is one loop iteration; its output must equal the expected
 * file byte for byte (JSON arrays are compared as JSON).
 */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "suites.h"
#include "testutil.h"
#include "util.h"

#define MAX_CASES 512

struct kind {
	const char *dir;
	char *names[MAX_CASES];
	int n;
};

static struct kind kinds[] = { { "fixtures/check", { 0 }, 0 },
			       { "fixtures/analyze", { 0 }, 0 },
			       { "fixtures/dump", { 0 }, 0 } };

static void scan(struct kind *k)
{
	struct dirent **ents;
	int n = scandir(test_srcpath(k->dir), &ents, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' && k->n < MAX_CASES)
			k->names[k->n++] = util_xstrdup(ents[i]->d_name);
		free(ents[i]);
	}
	if (n > 0)
		free(ents);
}

static char *case_file(const struct kind *k, int i, const char *f)
{
	struct strbuf sb = { 0 };
	char *s;

	strbuf_addf(&sb, "%s/%s/%s", k->dir, k->names[i], f);
	s = util_read_file(test_srcpath(sb.buf), NULL);
	strbuf_fini(&sb);
	return s;
}

static const char *case_path(const struct kind *k, int i, const char *f)
{
	static char buf[2][4096];
	static int which;
	struct strbuf sb = { 0 };

	which ^= 1;
	strbuf_addf(&sb, "%s/%s/%s", k->dir, k->names[i], f);
	snprintf(buf[which], sizeof(buf[which]), "%s", test_srcpath(sb.buf));
	strbuf_fini(&sb);
	return buf[which];
}

/* argv: cmd, the case's extra args (file "args"), then fixed ones. */
static char **build_argv(const struct kind *k, int i, const char *cmd,
			 char **fixed, char **argsbuf)
{
	char **argv = util_xcalloc(64, sizeof(char *));
	int n = 0;

	argv[n++] = (char *)(uintptr_t)cmd;
	*argsbuf = case_file(k, i, "args");
	for (char *s = *argsbuf ? strtok(*argsbuf, "\n") : NULL; s && n < 48;
	     s = strtok(NULL, "\n"))
		argv[n++] = s;
	for (; *fixed; fixed++)
		argv[n++] = *fixed;
	return argv;
}

static void assert_same(const struct kind *k, int i, const char *got,
			const char *want)
{
	ck_assert_msg(want != NULL, "%s/%s: expected output file missing",
		      k->dir, k->names[i]);
	ck_assert_msg(strcmp(got, want) == 0,
		      "%s/%s: output differs\n--- got ---\n%s--- want ---\n%s",
		      k->dir, k->names[i], got, want);
}

START_TEST(test_check_case)
{
	struct kind *k = &kinds[0];
	char *args, *in = case_file(k, _i, "events.jsonl");
	char *want = case_file(k, _i, "expected.jsonl");
	char *pol = util_xstrdup(case_path(k, _i, "policy.txt"));
	char **argv = build_argv(k, _i, "check",
				 (char *[]){ "--policy", pol, NULL }, &args);
	struct tu_run r;

	ck_assert_msg(in != NULL, "%s: events.jsonl missing", k->names[_i]);
	tu_run_in(&r, ctl_check, argv, in);
	ck_assert_msg(r.rc == 0, "%s: exit %d: %s", k->names[_i], r.rc, r.err);
	assert_same(k, _i, r.out, want);
	tu_run_fini(&r);
	free(argv);
	free(args);
	free(in);
	free(want);
	free(pol);
}
END_TEST

START_TEST(test_analyze_case)
{
	struct kind *k = &kinds[1];
	char *want = case_file(k, _i, "expected.jsonl");
	char *pol = util_xstrdup(case_path(k, _i, "policy.txt"));
	char *log = util_xstrdup(case_path(k, _i, "log.jsonl"));
	char *args;
	char **argv = build_argv(k, _i, "analyze",
				 (char *[]){ "--json", "--policy", pol, "--log",
					     log, NULL },
				 &args);
	struct tu_run r;

	tu_run(&r, ctl_analyze, argv);
	ck_assert_msg(r.rc == 0 || r.rc == 1, "%s: exit %d: %s", k->names[_i],
		      r.rc, r.err);
	assert_same(k, _i, r.out, want);
	tu_run_fini(&r);
	free(argv);
	free(args);
	free(want);
	free(pol);
	free(log);
}
END_TEST

START_TEST(test_dump_case)
{
	struct kind *k = &kinds[2];
	char *want = case_file(k, _i, "expected.json");
	char *exit_s = case_file(k, _i, "exit");
	char *pol = util_xstrdup(case_path(k, _i, "policy.txt"));
	char *args;
	char **argv = build_argv(k, _i, "validate",
				 (char *[]){ "--dump-rules", pol, NULL },
				 &args);
	struct tu_run r;
	json_error_t je;
	json_t *g, *w;

	tu_run(&r, ctl_validate, argv);
	ck_assert_msg(r.rc == (exit_s ? atoi(exit_s) : 0), "%s: exit %d: %s",
		      k->names[_i], r.rc, r.err);
	ck_assert_msg(want != NULL, "%s: expected.json missing", k->names[_i]);
	g = json_loads(r.out, 0, &je);
	w = json_loads(want, 0, &je);
	ck_assert_msg(w != NULL, "%s: expected.json: %s", k->names[_i],
		      je.text);
	ck_assert_msg(json_equal(g, w), "%s: rules differ\n--- got ---\n%s",
		      k->names[_i], r.out);
	json_decref(g);
	json_decref(w);
	tu_run_fini(&r);
	free(argv);
	free(args);
	free(want);
	free(exit_s);
	free(pol);
}
END_TEST

Suite *fixtures_suite(void)
{
	Suite *s = suite_create("fixtures");
	TCase *tc = tcase_create("cases");

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!kinds[i].n)
			scan(&kinds[i]);
	/* a fixtures tree that went missing must not pass silently */
	tcase_add_loop_test(tc, test_check_case, 0,
			    kinds[0].n ? kinds[0].n : 1);
	tcase_add_loop_test(tc, test_analyze_case, 0,
			    kinds[1].n ? kinds[1].n : 1);
	tcase_add_loop_test(tc, test_dump_case, 0, kinds[2].n ? kinds[2].n : 1);
	suite_add_tcase(s, tc);
	return s;
}
