/*
 * check_runc_exec.c - the built egress-runc ($EGRESS_RUNC, else
 * build/egress-runc) exec'ing a fake runc that records the arguments and
 * environment it got: original arguments, no EGRESS_RUNC_* variables, fail
 * open (malformed config.json, missing CA, read-only bundle), the
 * injection switch, the warning naming the image, the PATH search that
 * skips the wrapper itself, --egress-help.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runc.h"
#include "runc_testlib.h"
#include "suites.h"
#include "util.h"

/* ---- the built wrapper, exec'ing a fake runc ---- */

static char *wrapper_path(void)
{
	static char p[600];
	const char *env = getenv("EGRESS_RUNC");

	snprintf(p, sizeof(p), "%s",
		 env ? env : test_srcpath("build/egress-runc"));
	return p;
}

/* fake/runc records its arguments (NUL-separated) and environment. */
static const char *make_fake_runc(void)
{
	static char p[600];
	char script[2048];

	mkdir(rt_path(0, "fake"), 0755);
	snprintf(p, sizeof(p), "%s/fake/runc", rt_tmpdir);
	snprintf(script, sizeof(script),
		 "#!/bin/sh\n"
		 ": > %s/argv\n"
		 "for a in \"$@\"; do printf '%%s\\0' \"$a\" >> %s/argv; done\n"
		 "/usr/bin/env -0 > %s/env\n"
		 "exit 42\n",
		 rt_tmpdir, rt_tmpdir, rt_tmpdir);
	rt_spit(p, script, 0755);
	return p;
}

struct wrun {
	int status; /* exit status, or -1 */
	char *err; /* stderr */
};

static void run_wrapper(struct wrun *w, char *const argv[], char *const envp[])
{
	const char *errp = rt_path(7, "stderr");
	int fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	pid_t pid;
	int st;

	ck_assert_int_ge(fd, 0);
	unlink(rt_path(6, "argv"));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int out = open(rt_path(5, "stdout"),
			       O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(out, 1);
		dup2(fd, 2);
		execve(wrapper_path(), argv, envp);
		_exit(126);
	}
	close(fd);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	w->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	w->err = rt_slurp(errp);
}

/* The NUL-separated argv the fake runc recorded, joined with '|'. */
static char *recorded_args(void)
{
	size_t len;
	char *s = util_read_file(rt_path(6, "argv"), &len);

	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0')
			s[i] = '|';
	return s;
}

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_exec_original_args)
{
	const char *fake = make_fake_runc();
	const char *b = rt_copy_fixture("debian", RT_ID64);
	char bundle[600], runc_env[700], ca_env[700], conf_env[700];
	char *args, *env, *cfg;
	struct wrun w;

	snprintf(bundle, sizeof(bundle), "%s", b);
	snprintf(runc_env, sizeof(runc_env), "EGRESS_RUNC_RUNC=%s", fake);
	snprintf(ca_env, sizeof(ca_env), "EGRESS_RUNC_CA=%s", rt_ca_path());
	rt_spit(rt_path(0, "runc.conf"), "log=\n", 0644);
	snprintf(conf_env, sizeof(conf_env), "EGRESS_RUNC_CONFIG=%s",
		 rt_path(0, "runc.conf"));
	{
		char *argv[] = { wrapper_path(), "--root",     "/run/x y",
				 "--log",	 "",	       "--log-format",
				 "json",	 "create",     "--bundle",
				 bundle,	 "--pid-file", "p\nq",
				 RT_ID64,	 NULL };
		char *envp[] = { "PATH=/usr/bin:/bin",
				 "KEEP_ME=1",
				 runc_env,
				 ca_env,
				 conf_env,
				 NULL };

		run_wrapper(&w, argv, envp);
	}
	ck_assert_msg(w.status == 42, "status %d, stderr: %s", w.status, w.err);
	ck_assert_str_eq(w.err, "");
	args = recorded_args();
	ck_assert_ptr_nonnull(args);
	{
		char want[2048];

		snprintf(want, sizeof(want),
			 "--root|/run/x y|--log||--log-format|json|create|"
			 "--bundle|%s|--pid-file|p\nq|%s|",
			 bundle, RT_ID64);
		ck_assert_str_eq(args, want);
	}
	/* none of the wrapper's settings reached runc; the rest did */
	env = util_read_file(rt_path(5, "env"), NULL);
	ck_assert_ptr_nonnull(env);
	ck_assert_ptr_null(strstr(env, "EGRESS_RUNC"));
	ck_assert_ptr_nonnull(strstr(env, "KEEP_ME=1"));
	/* and the bundle was injected before runc ran */
	cfg = rt_slurp(rt_path(4, RT_ID64 "/config.json"));
	ck_assert_ptr_nonnull(strstr(cfg, "SSL_CERT_FILE=/etc/ssl/certs/"));
	free(cfg);
	free(args);
	free(env);
	free(w.err);
}
END_TEST

/* Each case: the wrapper still execs runc with the same arguments. */
START_TEST(test_exec_fail_open)
{
	const char *fake = make_fake_runc();
	char runc_env[700], ca_env[700], nca_env[700], conf_env[700];
	char *envp[] = { "PATH=/usr/bin:/bin", runc_env, ca_env, conf_env,
			 NULL };
	char *envp_noca[] = { "PATH=/usr/bin:/bin", runc_env, nca_env, conf_env,
			      NULL };
	char *envp_off[] = { "PATH=/usr/bin:/bin",   runc_env, ca_env, conf_env,
			     "EGRESS_RUNC_INJECT=0", NULL };
	char bm[600], bd[600], *before;
	struct {
		char *const *envp;
		char *bundle;
		char *subcmd;
		const char *msg; /* NULL: no stderr at all */
	} cases[4];
	struct wrun w;
	char *cfg, *args;

	snprintf(runc_env, sizeof(runc_env), "EGRESS_RUNC_RUNC=%s", fake);
	snprintf(ca_env, sizeof(ca_env), "EGRESS_RUNC_CA=%s", rt_ca_path());
	snprintf(nca_env, sizeof(nca_env), "EGRESS_RUNC_CA=%s",
		 rt_path(0, "missing-ca.pem"));
	rt_spit(rt_path(0, "runc.conf"), "# nothing\n", 0644);
	snprintf(conf_env, sizeof(conf_env), "EGRESS_RUNC_CONFIG=%s",
		 rt_path(0, "runc.conf"));
	snprintf(bm, sizeof(bm), "%s", rt_copy_fixture("malformed", "m"));
	snprintf(bd, sizeof(bd), "%s", rt_copy_fixture("debian", "d"));
	cases[0].envp = envp;
	cases[0].bundle = bm;
	cases[0].subcmd = "create";
	cases[0].msg = "config.json:2:";
	cases[1].envp = envp_noca;
	cases[1].bundle = bd;
	cases[1].subcmd = "run";
	cases[1].msg = "missing-ca.pem: No such file";
	cases[2].envp = envp_off;
	cases[2].bundle = bd;
	cases[2].subcmd = "create";
	cases[2].msg = NULL;
	cases[3].envp = envp;
	cases[3].bundle = bd;
	cases[3].subcmd = "state";
	cases[3].msg = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *argv[] = { wrapper_path(), cases[i].subcmd,
				 "-b",		 cases[i].bundle,
				 "c1",		 NULL };
		char cfgp[700], want[800];

		snprintf(cfgp, sizeof(cfgp), "%s/config.json", cases[i].bundle);
		before = rt_slurp(cfgp);
		run_wrapper(&w, argv, cases[i].envp);
		ck_assert_msg(w.status == 42, "case %zu: status %d: %s", i,
			      w.status, w.err);
		args = recorded_args();
		snprintf(want, sizeof(want), "%s|-b|%s|c1|", cases[i].subcmd,
			 cases[i].bundle);
		ck_assert_str_eq(args, want);
		free(args);
		if (cases[i].msg) {
			ck_assert_int_eq(lines(w.err), 1);
			ck_assert_msg(strncmp(w.err, "egress-runc: ", 13) == 0,
				      "%s", w.err);
			ck_assert_msg(strstr(w.err, cases[i].msg), "%s", w.err);
			ck_assert_ptr_nonnull(
				strstr(w.err, "without the egress CA"));
		} else {
			ck_assert_str_eq(w.err, "");
		}
		cfg = rt_slurp(cfgp);
		ck_assert_str_eq(cfg, before);
		free(cfg);
		free(before);
		free(w.err);
	}
}
END_TEST

START_TEST(test_exec_readonly_bundle)
{
	const char *fake = make_fake_runc();
	char bundle[600], runc_env[700], ca_env[700];
	pid_t pid;
	int status;

	snprintf(bundle, sizeof(bundle), "%s", rt_copy_fixture("debian", "ro"));
	snprintf(runc_env, sizeof(runc_env), "EGRESS_RUNC_RUNC=%s", fake);
	snprintf(ca_env, sizeof(ca_env), "EGRESS_RUNC_CA=%s", rt_ca_path());
	rt_spit(rt_path(0, "runc.conf"), "\n", 0644);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char conf_env[700];
		char *argv[] = { wrapper_path(), "create", "--bundle",
				 bundle,	 "c1",	   NULL };
		char *envp[] = { "PATH=/usr/bin:/bin", runc_env, ca_env,
				 conf_env, NULL };
		struct wrun w;
		char *args, want[800];

		snprintf(conf_env, sizeof(conf_env), "EGRESS_RUNC_CONFIG=%s",
			 rt_path(0, "runc.conf"));
		if (rt_make_readonly(bundle) < 0)
			_exit(2);
		run_wrapper(&w, argv, envp);
		args = recorded_args();
		snprintf(want, sizeof(want), "create|--bundle|%s|c1|", bundle);
		if (w.status != 42 || !args || strcmp(args, want) != 0 ||
		    lines(w.err) != 1 || !strstr(w.err, "cannot write")) {
			fprintf(stderr, "status %d args %s err %s\n", w.status,
				args ? args : "(none)", w.err);
			_exit(1);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "read-only exec child failed (%d)", status);
}
END_TEST

/* A pre-set variable: kept, and the warning names the image. */
START_TEST(test_exec_warning_names_image)
{
	const char *fake = make_fake_runc();
	char bundle[600], runc_env[700], ca_env[700], conf_env[700], conf[1400];
	char *argv[] = { wrapper_path(), "create", "--bundle",
			 bundle,	 RT_ID64,  NULL };
	char *envp[] = { "PATH=/usr/bin:/bin", runc_env, ca_env, conf_env,
			 NULL };
	struct rt_fake_docker f;
	struct wrun w;
	char *log, *cfg;

	snprintf(bundle, sizeof(bundle), "%s",
		 rt_copy_fixture("preset-env", RT_ID64));
	snprintf(runc_env, sizeof(runc_env), "EGRESS_RUNC_RUNC=%s", fake);
	snprintf(ca_env, sizeof(ca_env), "EGRESS_RUNC_CA=%s", rt_ca_path());
	rt_fake_docker_start(&f, RT_DOCKER_OK);
	snprintf(conf, sizeof(conf), "docker_socket=%s\nlog=%s\n", f.path,
		 rt_path(0, "wrapper.log"));
	rt_spit(rt_path(1, "runc.conf"), conf, 0644);
	snprintf(conf_env, sizeof(conf_env), "EGRESS_RUNC_CONFIG=%s",
		 rt_path(1, "runc.conf"));
	run_wrapper(&w, argv, envp);
	rt_fake_docker_stop(&f);
	ck_assert_msg(w.status == 42, "status %d: %s", w.status, w.err);
	ck_assert_int_eq(lines(w.err), 1);
	ck_assert_msg(strstr(w.err, "egress-runc: warning: "
				    "image=tools-preset:latest keeps "
				    "SSL_CERT_FILE=/opt/app/ca.pem "),
		      "%s", w.err);
	cfg = rt_slurp(rt_path(2, RT_ID64 "/config.json"));
	ck_assert_ptr_nonnull(strstr(cfg, "\"SSL_CERT_FILE=/opt/app/ca.pem\""));
	ck_assert_ptr_null(strstr(cfg, "SSL_CERT_FILE=/etc"));
	free(cfg);
	/* the log holds the warning and the injection */
	log = rt_slurp(rt_path(0, "wrapper.log"));
	ck_assert_ptr_nonnull(strstr(log, "image=tools-preset:latest"));
	ck_assert_ptr_nonnull(strstr(log, "injected the egress CA"));
	free(log);
	free(w.err);

	/* dockerd silent: the warning names the container id instead */
	rt_copy_fixture("preset-env", "x");
	snprintf(bundle, sizeof(bundle), "%s", rt_path(3, "x"));
	snprintf(conf, sizeof(conf),
		 "docker_socket=%s\ndocker_timeout_ms=100\n",
		 rt_path(4, "absent.sock"));
	rt_spit(rt_path(1, "runc.conf"), conf, 0644);
	run_wrapper(&w, argv, envp);
	ck_assert_int_eq(w.status, 42);
	ck_assert_int_eq(lines(w.err), 1);
	ck_assert_msg(strstr(w.err, "warning: container=" RT_ID64 " keeps"),
		      "%s", w.err);
	free(w.err);
}
END_TEST

START_TEST(test_exec_path_search)
{
	const char *fake = make_fake_runc();
	char path_env[1400], conf_env[700];
	char *argv[] = { wrapper_path(), "--version", NULL };
	char *envp[] = { path_env, conf_env, NULL };
	struct wrun w;
	char *args;

	/* the wrapper itself, as `runc`, comes first on PATH */
	mkdir(rt_path(0, "self"), 0755);
	ck_assert_int_eq(symlink(wrapper_path(), rt_path(0, "self/runc")), 0);
	rt_spit(rt_path(0, "runc.conf"), "\n", 0644);
	snprintf(conf_env, sizeof(conf_env), "EGRESS_RUNC_CONFIG=%s",
		 rt_path(0, "runc.conf"));
	snprintf(path_env, sizeof(path_env), "PATH=%s:%s:/usr/bin:/bin",
		 rt_path(0, "self"), rt_path(1, "fake"));
	run_wrapper(&w, argv, envp);
	ck_assert_msg(w.status == 42, "status %d: %s", w.status, w.err);
	args = recorded_args();
	ck_assert_str_eq(args, "--version|");
	free(args);
	free(w.err);
	(void)fake;

	/* nothing but the wrapper: it says so and fails */
	snprintf(path_env, sizeof(path_env), "PATH=%s", rt_path(0, "self"));
	run_wrapper(&w, argv, envp);
	ck_assert_int_eq(w.status, 127);
	ck_assert_ptr_nonnull(strstr(w.err, "egress-runc: no runc found"));
	ck_assert_ptr_null(recorded_args());
	free(w.err);
}
END_TEST

START_TEST(test_exec_help)
{
	const char *fake = make_fake_runc();
	char runc_env[700];
	char *argv[] = { wrapper_path(), "--egress-help", NULL };
	char *envp[] = { runc_env, NULL };
	struct wrun w;
	char *out;

	snprintf(runc_env, sizeof(runc_env), "EGRESS_RUNC_RUNC=%s", fake);
	run_wrapper(&w, argv, envp);
	ck_assert_int_eq(w.status, 0);
	ck_assert_ptr_null(recorded_args());
	out = rt_slurp(rt_path(5, "stdout"));
	ck_assert_ptr_nonnull(strstr(out, "--add-runtime egress="));
	ck_assert_ptr_nonnull(strstr(out, "EGRESS_RUNC_INJECT=0"));
	free(out);
	free(w.err);
}
END_TEST

Suite *runc_exec_suite(void)
{
	Suite *s = suite_create("runc_exec");
	TCase *ex = tcase_create("exec");

	tcase_add_checked_fixture(ex, rt_setup, rt_teardown);
	tcase_set_timeout(ex, 30);
	tcase_add_test(ex, test_exec_original_args);
	tcase_add_test(ex, test_exec_fail_open);
	tcase_add_test(ex, test_exec_readonly_bundle);
	tcase_add_test(ex, test_exec_warning_names_image);
	tcase_add_test(ex, test_exec_path_search);
	tcase_add_test(ex, test_exec_help);
	suite_add_tcase(s, ex);
	return s;
}
