/*
 * check_runc.c - egress-runc (reference §6, SPEC §8): argument parsing as
 * runc 1.1 does it, settings, injection on the sample bundles of
 * fixtures/runc/ (Debian, RHEL, Alpine, distroless, hostile symlinks,
 * mounts over the bundle paths, pre-set variables, malformed config.json,
 * missing CA, read-only bundle, idempotence), the Docker lookup against a
 * fake API socket, and the built wrapper exec'ing a fake runc that records
 * the arguments and environment it got.
 *
 * Every injection test works on a copy of a fixture in a temporary
 * directory and checks that the copy's rootfs is byte for byte unchanged.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runc.h"
#include "suites.h"
#include "util.h"

#define ID64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* ---- temporary directories and fixture copies ---- */

static char tmpdir[64];

static void tmp_setup(void)
{
	strcpy(tmpdir, "/tmp/egress-runc-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
	char cmd[256];

	/* Bundles made read-only by a test must be removable again. */
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s 2>/dev/null; rm -rf %s",
		 tmpdir, tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "check_runc: cannot remove %s\n", tmpdir);
}

/* Path of name under the test's directory (static slot). */
static const char *tpath(int slot, const char *name)
{
	static char buf[8][512];

	snprintf(buf[slot], sizeof(buf[slot]), "%s/%s", tmpdir, name);
	return buf[slot];
}

static char *slurp(const char *path)
{
	char *s = util_read_file(path, NULL);

	ck_assert_msg(s != NULL, "cannot read %s: %s", path, strerror(errno));
	return s;
}

static void spit(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_msg(fd >= 0, "cannot create %s", path);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(path, mode);
}

/* Replaces every @BUNDLE@ in s with bundle. */
static char *subst_bundle(const char *s, const char *bundle)
{
	struct strbuf sb = { 0 };
	const char *p;

	while ((p = strstr(s, "@BUNDLE@"))) {
		strbuf_add(&sb, s, (size_t)(p - s));
		strbuf_adds(&sb, bundle);
		s = p + 8;
	}
	strbuf_adds(&sb, s);
	return strbuf_steal(&sb);
}

/* fixtures/runc/<fixture>/<file> in the source tree (static). */
static const char *fixture_path(const char *fixture, const char *file)
{
	static char p[1024];
	char rel[256];

	snprintf(rel, sizeof(rel), "fixtures/runc/%s/%s", fixture, file);
	snprintf(p, sizeof(p), "%s", test_srcpath(rel));
	return p;
}

/*
 * Copies fixtures/runc/<fixture> to <tmpdir>/<name> (symlinks kept) and
 * fills in @BUNDLE@ in its config.json; returns the copy's path (static).
 */
static const char *copy_fixture(const char *fixture, const char *name)
{
	static char dst[512];
	char cmd[1536], cfg[600], *text, *out;
	struct stat st;

	snprintf(dst, sizeof(dst), "%s/%s", tmpdir, name);
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", fixture_path(fixture, ""),
		 dst);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cfg, sizeof(cfg), "%s/config.json", dst);
	if (stat(cfg, &st) == 0) {
		text = slurp(cfg);
		out = subst_bundle(text, dst);
		spit(cfg, out, 0640);
		free(text);
		free(out);
	}
	return dst;
}

static const char *ca_path(void)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s", fixture_path("ca", "ca.pem"));
	return p;
}

/* ---- rootfs snapshots: the wrapper must never write there ---- */

static struct strbuf *snap_sb;

static int snap_cb(const char *path, const struct stat *st, int flag,
		   struct FTW *ftw)
{
	(void)ftw;
	strbuf_addf(snap_sb, "%s %o %lld %lld.%09ld", path, st->st_mode,
		    (long long)st->st_size, (long long)st->st_mtim.tv_sec,
		    st->st_mtim.tv_nsec);
	if (flag == FTW_SL) {
		char t[512];
		ssize_t n = readlink(path, t, sizeof(t) - 1);

		t[n > 0 ? n : 0] = '\0';
		strbuf_addf(snap_sb, " -> %s", t);
	} else if (S_ISREG(st->st_mode)) {
		char *c = util_read_file(path, NULL);

		strbuf_addf(snap_sb, " [%s]", c ? c : "?");
		free(c);
	}
	strbuf_addc(snap_sb, '\n');
	return 0;
}

static char *snapshot(const char *dir)
{
	struct strbuf sb = { 0 };

	snap_sb = &sb;
	ck_assert_int_eq(nftw(dir, snap_cb, 16, FTW_PHYS), 0);
	return strbuf_steal(&sb);
}

/* ---- argument parsing ---- */

static const struct args_case {
	const char *argv[14];
	const char *subcmd; /* NULL: none */
	const char *bundle;
	const char *id;
	bool inject;
} args_cases[] = {
	{ { "runc", NULL }, NULL, ".", NULL, false },
	{ { "runc", "--debug", NULL }, NULL, ".", NULL, false },
	{ { "runc", "create", "c1", NULL }, "create", ".", "c1", true },
	{ { "runc", "run", "c1", NULL }, "run", ".", "c1", true },
	{ { "runc", "start", "c1", NULL }, "start", ".", NULL, false },
	{ { "runc", "delete", "--force", "c1", NULL }, "delete", ".", NULL,
	  false },
	{ { "runc", "state", "c1", NULL }, "state", ".", NULL, false },
	{ { "runc", "exec", "--process", "/p.json", "-b", "/x", "c1", NULL },
	  "exec", ".", NULL, false },
	/* global flags with a value: the value is not the subcommand */
	{ { "runc", "--root", "/run/docker/runtime-runc/moby", "create",
	    "--bundle", "/b1", "c1", NULL },
	  "create", "/b1", "c1", true },
	{ { "runc", "--log", "create", "start", "c1", NULL }, "start", ".",
	  NULL, false },
	{ { "runc", "--log-format", "json", "run", "-b", "/b2", "c2", NULL },
	  "run", "/b2", "c2", true },
	{ { "runc", "--criu", "run", "create", NULL }, "create", ".", NULL,
	  true },
	{ { "runc", "--rootless", "run", "state", "c1", NULL }, "state", ".",
	  NULL, false },
	{ { "runc", "--root=/r", "--log=/l", "create", "--bundle=/b3", "c3",
	    NULL },
	  "create", "/b3", "c3", true },
	/* Go's flag package: one dash works as well as two */
	{ { "runc", "-root", "/r", "create", "-bundle", "/b4", "c4", NULL },
	  "create", "/b4", "c4", true },
	{ { "runc", "-log=/l", "create", "-bundle=/b5", "c5", NULL }, "create",
	  "/b5", "c5", true },
	/* boolean globals take nothing */
	{ { "runc", "--debug", "--systemd-cgroup", "create", "-b", "/b6", "c6",
	    NULL },
	  "create", "/b6", "c6", true },
	{ { "runc", "--debug=true", "run", "c7", NULL }, "run", ".", "c7",
	  true },
	/* the full containerd-shim invocation */
	{ { "runc", "--root", "/var/run/docker/runtime-runc/moby", "--log",
	    "/run/containerd/io.containerd.runtime.v2.task/moby/" ID64
	    "/log.json",
	    "--log-format", "json", "create", "--bundle",
	    "/run/containerd/io.containerd.runtime.v2.task/moby/" ID64,
	    "--pid-file", "/run/x/init.pid", ID64, NULL },
	  "create", "/run/containerd/io.containerd.runtime.v2.task/moby/" ID64,
	  ID64, true },
	/* create's value flags are skipped with their values */
	{ { "runc", "create", "--console-socket", "/s.sock", "--pid-file",
	    "/p", "--preserve-fds", "2", "-b", "/b8", "c8", NULL },
	  "create", "/b8", "c8", true },
	{ { "runc", "run", "--pid-file", "-b", "c9", NULL }, "run", ".", "c9",
	  true },
	/* flags after the container id still count (urfave/cli reorders) */
	{ { "runc", "create", "c10", "--bundle", "/b10", NULL }, "create",
	  "/b10", "c10", true },
	/* ... but not after "--" */
	{ { "runc", "create", "c11", "--", "--bundle", "/b11", NULL },
	  "create", ".", "c11", true },
	{ { "runc", "create", "--", "c12", NULL }, "create", ".", "c12",
	  true },
	{ { "runc", "--", "create", "c13", NULL }, "create", ".", "c13",
	  true },
	/* the last --bundle wins; an empty one means the cwd */
	{ { "runc", "create", "-b", "/first", "--bundle", "/last", "c14",
	    NULL },
	  "create", "/last", "c14", true },
	{ { "runc", "create", "--bundle=", "c15", NULL }, "create", ".",
	  "c15", true },
	/* a value flag at the very end has nothing to take */
	{ { "runc", "create", "c16", "--bundle", NULL }, "create", ".", "c16",
	  true },
	{ { "runc", "--root", NULL }, NULL, ".", NULL, false },
	/* boolean create/run flags take nothing */
	{ { "runc", "run", "--detach", "--keep", "--no-pivot",
	    "--no-new-keyring", "-d", "c17", "-b", "/b17", NULL },
	  "run", "/b17", "c17", true },
	/* "-" alone is an argument, not a flag */
	{ { "runc", "-", "create", NULL }, "-", ".", NULL, false },
	/* the subcommand is matched exactly */
	{ { "runc", "Create", "-b", "/x", NULL }, "Create", ".", NULL, false },
	{ { "runc", "spec", "--bundle", "/x", NULL }, "spec", ".", NULL,
	  false },
};

START_TEST(test_args_table)
{
	const struct args_case *c = &args_cases[_i];
	struct runc_args a;
	char *argv[ARRAY_SIZE(c->argv)];
	int argc = 0;

	memcpy(argv, c->argv, sizeof(argv));
	while (argv[argc])
		argc++;
	runc_args_parse(&a, argc, argv);
	if (c->subcmd) {
		ck_assert_int_ge(a.subcmd, 1);
		ck_assert_str_eq(c->argv[a.subcmd], c->subcmd);
	} else {
		ck_assert_int_eq(a.subcmd, -1);
	}
	ck_assert_str_eq(a.bundle, c->bundle);
	if (c->id)
		ck_assert_str_eq(a.container_id ? a.container_id : "(null)",
				 c->id);
	else if (c->inject)
		ck_assert_ptr_null(a.container_id);
	ck_assert_int_eq(a.inject, c->inject);
}
END_TEST

/* ---- settings ---- */

START_TEST(test_conf_file_and_env)
{
	struct runc_conf c;
	struct strbuf err = { 0 };
	char *env[] = { "EGRESS_RUNC_CA=/env/ca.pem", "EGRESS_RUNC_INJECT=0",
			"EGRESS_RUNC_DOCKER_TIMEOUT_MS=abc", "OTHER=1", NULL };
	int n;

	runc_conf_init(&c);
	ck_assert_str_eq(c.ca, RUNC_CA_DEFAULT);
	ck_assert(c.inject);
	ck_assert_ptr_null(c.runc);
	ck_assert_str_eq(c.docker_socket, RUNC_DOCKER_SOCKET_DEFAULT);
	ck_assert_int_eq(c.docker_timeout_ms, RUNC_DOCKER_TIMEOUT_MS_DEFAULT);

	n = runc_conf_parse(&c,
			    "# egress-runc\n"
			    "  runc = /usr/sbin/runc.real  \n"
			    "\n"
			    "ca=/etc/egressd/ca.pem\r\n"
			    "inject = off\n"
			    "docker_socket=/run/sim/docker.sock\n"
			    "docker_timeout_ms = 250\n"
			    "log=/var/log/egress-runc.log\n"
			    "bogus = 1\n"
			    "no equals sign\n"
			    "ca = relative/ca.pem\n"
			    "docker_timeout_ms = 0\n"
			    "inject = maybe",
			    "runc.conf", &err);
	ck_assert_int_eq(n, 5);
	ck_assert_str_eq(c.runc, "/usr/sbin/runc.real");
	ck_assert_str_eq(c.ca, "/etc/egressd/ca.pem");
	ck_assert(!c.inject);
	ck_assert_str_eq(c.docker_socket, "/run/sim/docker.sock");
	ck_assert_int_eq(c.docker_timeout_ms, 250);
	ck_assert_str_eq(c.log, "/var/log/egress-runc.log");
	ck_assert_ptr_nonnull(
		strstr(err.buf, "runc.conf:9: unknown setting 'bogus'"));
	ck_assert_ptr_nonnull(
		strstr(err.buf, "runc.conf:10: expected key = value"));
	ck_assert_ptr_nonnull(strstr(err.buf, "runc.conf:11: ca must be"));
	ck_assert_ptr_nonnull(strstr(err.buf, "runc.conf:12: docker_timeout"));
	ck_assert_ptr_nonnull(strstr(err.buf, "runc.conf:13: inject must"));

	/* the environment overrides the file; bad values are reported */
	strbuf_reset(&err);
	c.inject = true;
	ck_assert_int_eq(runc_conf_env(&c, env, &err), 1);
	ck_assert_str_eq(c.ca, "/env/ca.pem");
	ck_assert(!c.inject);
	ck_assert_int_eq(c.docker_timeout_ms, 250);
	ck_assert_ptr_nonnull(
		strstr(err.buf, "EGRESS_RUNC_DOCKER_TIMEOUT_MS: docker_timeout"));

	/* an empty runc= or log= goes back to the default */
	ck_assert_int_eq(runc_conf_set(&c, "runc", "", &err), 0);
	ck_assert_ptr_null(c.runc);
	ck_assert_int_eq(runc_conf_set(&c, "log", "", &err), 0);
	ck_assert_ptr_null(c.log);
	runc_conf_fini(&c);
	strbuf_fini(&err);
}
END_TEST

START_TEST(test_conf_load)
{
	struct runc_conf c;
	struct strbuf err = { 0 };
	char envcfg[600], *env[3] = { envcfg, "EGRESS_RUNC_LOG=/l.log", NULL };
	char *none[] = { "EGRESS_RUNC_CONFIG=/nonexistent/runc.conf", NULL };

	spit(tpath(0, "runc.conf"), "inject=false\nca=/file/ca.pem\n", 0644);
	snprintf(envcfg, sizeof(envcfg), "EGRESS_RUNC_CONFIG=%s",
		 tpath(0, "runc.conf"));
	runc_conf_load(&c, env, &err);
	ck_assert_str_eq(strbuf_str(&err), "");
	ck_assert(!c.inject);
	ck_assert_str_eq(c.ca, "/file/ca.pem");
	ck_assert_str_eq(c.log, "/l.log");
	runc_conf_fini(&c);

	/* a config file named explicitly but missing is reported */
	runc_conf_load(&c, none, &err);
	ck_assert_ptr_nonnull(strstr(err.buf, "/nonexistent/runc.conf: No such"));
	ck_assert(c.inject);
	runc_conf_fini(&c);
	strbuf_fini(&err);
}
END_TEST

START_TEST(test_env_strip)
{
	char *env[] = { "PATH=/bin",
			"EGRESS_RUNC_CA=/x",
			"EGRESS_RUNC_CONFIG=/c",
			"EGRESS_RUNCX=kept",
			"EGRESS_CONTAINER_CERTS=1",
			"HOME=/root",
			NULL };
	char **out = runc_env_strip(env);

	ck_assert_str_eq(out[0], "PATH=/bin");
	ck_assert_str_eq(out[1], "EGRESS_RUNCX=kept");
	ck_assert_str_eq(out[2], "EGRESS_CONTAINER_CERTS=1");
	ck_assert_str_eq(out[3], "HOME=/root");
	ck_assert_ptr_null(out[4]);
	free(out);
}
END_TEST

/* ---- finding the real runc ---- */

static void make_exec(const char *path)
{
	spit(path, "#!/bin/sh\nexit 0\n", 0755);
}

START_TEST(test_find_real)
{
	struct strbuf err = { 0 };
	struct stat self;
	char path[2048], *r;

	mkdir(tpath(0, "a"), 0755);
	mkdir(tpath(0, "b"), 0755);
	mkdir(tpath(0, "c"), 0755);
	make_exec(tpath(0, "wrapper"));
	ck_assert_int_eq(stat(tpath(0, "wrapper"), &self), 0);
	/* a/runc is the wrapper itself, through a symlink */
	ck_assert_int_eq(symlink(tpath(0, "wrapper"), tpath(1, "a/runc")), 0);
	make_exec(tpath(0, "b/runc"));
	spit(tpath(0, "c/runc"), "not executable", 0644);

	snprintf(path, sizeof(path), "relative:%s:%s:%s", tpath(0, "c"),
		 tpath(1, "a"), tpath(2, "b"));
	r = runc_find_real(NULL, path, &self, NULL, &err);
	ck_assert_str_eq(r, tpath(0, "b/runc"));
	free(r);

	/* configured wins */
	make_exec(tpath(0, "c/runc.real"));
	r = runc_find_real(tpath(0, "c/runc.real"), path, &self, NULL, &err);
	ck_assert_str_eq(r, tpath(0, "c/runc.real"));
	ck_assert_str_eq(strbuf_str(&err), "");
	free(r);

	/* a configured runc that is the wrapper: search instead, and say so */
	r = runc_find_real(tpath(0, "a/runc"), path, &self, NULL, &err);
	ck_assert_str_eq(r, tpath(0, "b/runc"));
	ck_assert_ptr_nonnull(strstr(err.buf, "is this wrapper"));
	free(r);
	strbuf_reset(&err);

	/* only the wrapper on PATH: runc.real next to it, else nothing */
	snprintf(path, sizeof(path), "%s", tpath(0, "a"));
	r = runc_find_real(NULL, path, &self, tpath(0, "c"), &err);
	ck_assert_str_eq(r, tpath(0, "c/runc.real"));
	free(r);
	r = runc_find_real(NULL, path, &self, tpath(0, "b"), &err);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(err.buf, "no runc found"));
	strbuf_reset(&err);

	/* without knowing itself, the wrapper will not search PATH */
	r = runc_find_real(NULL, tpath(0, "b"), NULL, NULL, &err);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(err.buf, "cannot identify"));
	strbuf_fini(&err);
}
END_TEST

/* ---- the pure transformation ---- */

START_TEST(test_bundle_merge_and_names)
{
	struct strbuf sb = { 0 };
	char *n;

	runc_bundle_merge(&sb, "A\n", 2, "CA\n", 3);
	ck_assert_str_eq(sb.buf, "A\nCA\n");
	strbuf_reset(&sb);
	runc_bundle_merge(&sb, "A", 1, "CA", 2);
	ck_assert_str_eq(sb.buf, "A\nCA\n");
	strbuf_reset(&sb);
	runc_bundle_merge(&sb, "", 0, "CA\n", 3);
	ck_assert_str_eq(sb.buf, "CA\n");
	strbuf_fini(&sb);

	n = runc_bundle_file_name("/etc/ssl/certs/ca-certificates.crt");
	ck_assert_str_eq(n, ".egress-ca-etc_ssl_certs_ca-certificates.crt");
	free(n);
	n = runc_bundle_file_name("/etc/pki/tls/certs/ca-bundle.crt");
	ck_assert_str_eq(n, ".egress-ca-etc_pki_tls_certs_ca-bundle.crt");
	free(n);
}
END_TEST

START_TEST(test_covering_mount)
{
	json_t *cfg = json_loads(
		"{\"mounts\":[{\"destination\":\"/etc\",\"type\":\"bind\"},"
		"{\"destination\":\"/etc/ssl/\",\"type\":\"tmpfs\"},"
		"{\"destination\":\"/etc/ssl/certs/ca-certificates.crt\","
		"\"type\":\"bind\"},"
		"{\"destination\":\"/etc/pk\",\"type\":\"tmpfs\"},"
		"{\"destination\":\"/etc/../etc/pki\",\"type\":\"tmpfs\"}]}",
		0, NULL);
	const char *rest;
	json_t *m;

	ck_assert_ptr_nonnull(cfg);
	m = runc_config_covering_mount(cfg,
				       "/etc/ssl/certs/ca-certificates.crt",
				       &rest);
	ck_assert_ptr_eq(m, json_array_get(json_object_get(cfg, "mounts"), 2));
	ck_assert_str_eq(rest, "");
	m = runc_config_covering_mount(cfg, "/etc/ssl/cert.pem", &rest);
	ck_assert_ptr_eq(m, json_array_get(json_object_get(cfg, "mounts"), 1));
	ck_assert_str_eq(rest, "cert.pem");
	/* "/etc/pk" is not a parent of /etc/pki; ".." never matches */
	m = runc_config_covering_mount(cfg, "/etc/pki/tls/certs/ca-bundle.crt",
				       &rest);
	ck_assert_ptr_eq(m, json_array_get(json_object_get(cfg, "mounts"), 0));
	ck_assert_str_eq(rest, "pki/tls/certs/ca-bundle.crt");
	m = runc_config_covering_mount(cfg, "/usr/share/x", &rest);
	ck_assert_ptr_null(m);
	json_decref(cfg);
}
END_TEST

START_TEST(test_transform_errors)
{
	static const char *const bad[] = {
		"{\"mounts\":{}, \"process\":{\"env\":[]}}",
		"{\"mounts\":[], \"process\":{\"env\":{}}}",
		"{\"mounts\":[], \"process\":{\"env\":[1]}}",
		"{\"mounts\":[]}",
		"{\"mounts\":[], \"process\":[]}",
	};
	struct runc_xform x = { .bundle = "/b", .ca_source = "/b/.egress-ca.pem" };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *cfg = json_loads(bad[i], 0, NULL);
		struct runc_result r = { 0 };

		ck_assert_ptr_nonnull(cfg);
		ck_assert_int_eq(runc_config_transform(cfg, &x, &r), -1);
		ck_assert_msg(r.err.len > 0, "no reason for %s", bad[i]);
		runc_result_fini(&r);
		json_decref(cfg);
	}
}
END_TEST

START_TEST(test_transform_env_created)
{
	json_t *cfg = json_loads("{\"process\":{\"args\":[\"a b\",\"c\\n\"]}}",
				 0, NULL);
	struct runc_xform x = { .bundle = "/b", .ca_source = "/b/.egress-ca.pem" };
	struct runc_result r = { 0 };
	json_t *env, *mounts;

	ck_assert_int_eq(runc_config_transform(cfg, &x, &r), 0);
	env = json_object_get(json_object_get(cfg, "process"), "env");
	ck_assert_int_eq(json_array_size(env), 5);
	ck_assert_str_eq(json_string_value(json_array_get(env, 0)),
			 "NODE_EXTRA_CA_CERTS=/tmp/egress-ca.pem");
	ck_assert_str_eq(json_string_value(json_array_get(env, 1)),
			 "SSL_CERT_FILE=/tmp/egress-ca.pem");
	mounts = json_object_get(cfg, "mounts");
	ck_assert_int_eq(json_array_size(mounts), 1);
	ck_assert_str_eq(r.args, "a b c\\x0a");
	runc_result_fini(&r);
	json_decref(cfg);
}
END_TEST

START_TEST(test_warning_text)
{
	struct runc_result r = { 0 };
	struct runc_kept k[2] = { { "SSL_CERT_FILE", "/opt/ca.pem" },
				  { "REQUESTS_CA_BUNDLE", "/x\n\033[31m" } };
	struct strbuf sb = { 0 };

	runc_warning(&sb, &r, "image=x");
	ck_assert_uint_eq(sb.len, 0);
	r.kept = k;
	r.nkept = 2;
	r.args = "python app.py";
	runc_warning(&sb, &r, "image=registry.test/app:1.2");
	ck_assert_ptr_null(strchr(sb.buf, '\n'));
	ck_assert_ptr_null(strchr(sb.buf, '\033'));
	ck_assert_ptr_nonnull(strstr(
		sb.buf, "warning: image=registry.test/app:1.2 keeps "
			"SSL_CERT_FILE=/opt/ca.pem, REQUESTS_CA_BUNDLE=/x\\x0a"
			"\\x1b[31m"));
	ck_assert_ptr_nonnull(strstr(sb.buf, "TLS verification"));
	ck_assert_ptr_nonnull(strstr(sb.buf, "(process: python app.py)"));
	strbuf_fini(&sb);
}
END_TEST

/* ---- injection on the sample bundles ---- */

struct bundle_want {
	const char *dest; /* container path */
	const char *orig; /* file of the copy whose content is merged */
};

static const struct inject_case {
	const char *fixture;
	struct bundle_want bundles[3];
	const char *sysbundle; /* NULL: the CA alone */
	const char *kept[3]; /* "KEY=value" kept with a warning */
} inject_cases[] = {
	{ "debian",
	  { { "/etc/ssl/certs/ca-certificates.crt",
	      "rootfs/etc/ssl/certs/ca-certificates.crt" } },
	  "/etc/ssl/certs/ca-certificates.crt",
	  { NULL } },
	/* ca-bundle.crt and cert.pem are one file (symlinks): merged once */
	{ "rhel",
	  { { "/etc/pki/tls/certs/ca-bundle.crt",
	      "rootfs/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem" } },
	  "/etc/pki/tls/certs/ca-bundle.crt",
	  { NULL } },
	{ "alpine",
	  { { "/etc/ssl/certs/ca-certificates.crt",
	      "rootfs/etc/ssl/certs/ca-certificates.crt" } },
	  "/etc/ssl/certs/ca-certificates.crt",
	  { NULL } },
	{ "alpine-certpem",
	  { { "/etc/ssl/cert.pem", "rootfs/etc/ssl/cert.pem" } },
	  "/etc/ssl/cert.pem",
	  { NULL } },
	{ "distroless", { { NULL } }, NULL, { NULL } },
	/*
	 * Symlinks out of the rootfs resolve inside it: "../../../etc/passwd"
	 * is the rootfs's own /etc/passwd; /etc/hostname and /proc/self/root
	 * do not exist there.
	 */
	{ "hostile",
	  { { "/etc/ssl/certs/ca-certificates.crt", "rootfs/etc/passwd" } },
	  "/etc/ssl/certs/ca-certificates.crt",
	  { NULL } },
	/* a bind-mounted host directory is what the container sees; a tmpfs
	 * over /etc/pki hides the image's RHEL bundle */
	{ "mounts",
	  { { "/etc/ssl/certs/ca-certificates.crt",
	      "hostcerts/ca-certificates.crt" } },
	  "/etc/ssl/certs/ca-certificates.crt",
	  { NULL } },
	/* SSL_CERT_FILE kept with a warning; AWS_CA_BUNDLE already right */
	{ "preset-env",
	  { { "/etc/ssl/certs/ca-certificates.crt",
	      "rootfs/etc/ssl/certs/ca-certificates.crt" } },
	  "/etc/ssl/certs/ca-certificates.crt",
	  { "SSL_CERT_FILE=/opt/app/ca.pem" } },
};

static json_t *load_json(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);

	ck_assert_msg(j != NULL, "%s: %s", path, je.text);
	return j;
}

/* The value of KEY in a process.env array, or NULL. */
static const char *env_of(json_t *cfg, const char *key)
{
	json_t *env = json_object_get(json_object_get(cfg, "process"), "env");
	const char *v = NULL;
	size_t i, n = strlen(key);
	json_t *e;

	json_array_foreach(env, i, e) {
		const char *s = json_string_value(e);

		if (strncmp(s, key, n) == 0 && s[n] == '=') {
			ck_assert_msg(v == NULL, "%s set twice", key);
			v = s + n + 1;
		}
	}
	return v;
}

static void assert_mount(json_t *m, const char *dest, const char *src)
{
	json_t *opts = json_object_get(m, "options");

	ck_assert_str_eq(json_string_value(json_object_get(m, "destination")),
			 dest);
	ck_assert_str_eq(json_string_value(json_object_get(m, "source")), src);
	ck_assert_str_eq(json_string_value(json_object_get(m, "type")), "bind");
	ck_assert_int_eq(json_array_size(opts), 2);
	ck_assert_str_eq(json_string_value(json_array_get(opts, 0)), "bind");
	ck_assert_str_eq(json_string_value(json_array_get(opts, 1)), "ro");
}

static void assert_file(const char *path, const char *want, mode_t mode)
{
	struct stat st;
	char *got = slurp(path);

	ck_assert_str_eq(got, want);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, mode);
	free(got);
}

/* Checks an injected copy of c->fixture at bundle against the original. */
static void check_injected(const struct inject_case *c, const char *bundle,
			   const struct runc_result *r)
{
	char p[1024], *ca = slurp(ca_path());
	json_t *orig, *cfg, *mounts, *omounts, *oenv, *env;
	size_t nb = 0, nm, nom;
	struct stat st;

	snprintf(p, sizeof(p), "%s/config.json", bundle);
	cfg = load_json(p);
	orig = load_json(fixture_path(c->fixture, "config.json"));

	/* config.json keeps its mode; everything else is still there */
	snprintf(p, sizeof(p), "%s/config.json", bundle);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert(json_equal(json_object_get(cfg, "linux"),
			     json_object_get(orig, "linux")));
	ck_assert(json_equal(json_object_get(json_object_get(cfg, "process"),
					     "args"),
			     json_object_get(json_object_get(orig, "process"),
					     "args")));

	/* the original mounts first, then the CA, then the bundles */
	while (nb < 3 && c->bundles[nb].dest)
		nb++;
	mounts = json_object_get(cfg, "mounts");
	omounts = json_object_get(orig, "mounts");
	nm = json_array_size(mounts);
	nom = json_array_size(omounts);
	ck_assert_uint_eq(nm, nom + 1 + nb);
	for (size_t i = 0; i < nom; i++) {
		json_t *om = json_array_get(omounts, i);
		json_t *m = json_array_get(mounts, i);
		const char *src = json_string_value(json_object_get(m, "source"));
		char *want = subst_bundle(
			json_string_value(json_object_get(om, "source")),
			bundle);

		ck_assert_str_eq(src, want);
		free(want);
	}
	snprintf(p, sizeof(p), "%s/.egress-ca.pem", bundle);
	assert_mount(json_array_get(mounts, nom), RUNC_CA_DEST, p);
	assert_file(p, ca, 0444);
	ck_assert_uint_eq(r->nbundles, nb);
	for (size_t i = 0; i < nb; i++) {
		char *name = runc_bundle_file_name(c->bundles[i].dest);
		char *o, src[1024];
		struct strbuf want = { 0 };

		snprintf(p, sizeof(p), "%s/%s", bundle, name);
		assert_mount(json_array_get(mounts, nom + 1 + i),
			     c->bundles[i].dest, p);
		snprintf(src, sizeof(src), "%s/%s", bundle, c->bundles[i].orig);
		o = slurp(src);
		runc_bundle_merge(&want, o, strlen(o), ca, strlen(ca));
		assert_file(p, want.buf, 0444);
		free(o);
		free(name);
		strbuf_fini(&want);
	}

	/* the original variables first and unchanged, then ours */
	env = json_object_get(json_object_get(cfg, "process"), "env");
	oenv = json_object_get(json_object_get(orig, "process"), "env");
	for (size_t i = 0; i < json_array_size(oenv); i++)
		ck_assert(json_equal(json_array_get(env, i),
				     json_array_get(oenv, i)));
	ck_assert_str_eq(env_of(cfg, "NODE_EXTRA_CA_CERTS"), RUNC_CA_DEST);
	{
		static const char *const keys[] = { "SSL_CERT_FILE",
						    "REQUESTS_CA_BUNDLE",
						    "AWS_CA_BUNDLE",
						    "HEX_CACERTS_PATH" };
		const char *sys = c->sysbundle ? c->sysbundle : RUNC_CA_DEST;

		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			const char *v = env_of(cfg, keys[k]);
			char *kv;
			bool kept = false;

			ck_assert_ptr_nonnull(v);
			ck_assert_int_ge(asprintf(&kv, "%s=%s", keys[k], v), 0);
			for (size_t j = 0; j < 3 && c->kept[j]; j++)
				kept |= strcmp(c->kept[j], kv) == 0;
			if (!kept)
				ck_assert_str_eq(v, sys);
			free(kv);
		}
	}
	for (size_t j = 0; j < 3; j++) {
		char kv[512];

		if (!c->kept[j]) {
			ck_assert_uint_eq(r->nkept, j);
			break;
		}
		snprintf(kv, sizeof(kv), "%s=%s", r->kept[j].key,
			 r->kept[j].value);
		ck_assert_str_eq(kv, c->kept[j]);
	}
	if (c->sysbundle)
		ck_assert_str_eq(r->system_bundle, c->sysbundle);
	else
		ck_assert_ptr_null(r->system_bundle);
	json_decref(cfg);
	json_decref(orig);
	free(ca);
}

START_TEST(test_inject_table)
{
	const struct inject_case *c = &inject_cases[_i];
	struct runc_result r = { 0 }, r2 = { 0 };
	const char *bundle = copy_fixture(c->fixture, "bundle");
	char rootfs[600], cfgp[600], *before, *after, *cfg1, *cfg2;
	json_t *j1, *j2;

	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
	snprintf(cfgp, sizeof(cfgp), "%s/config.json", bundle);
	before = snapshot(rootfs);
	ck_assert_msg(runc_inject(bundle, ca_path(), &r) == 0, "%s: %s",
		      c->fixture, strbuf_str(&r.err));
	check_injected(c, bundle, &r);

	/* twice gives the same config: no second set of mounts or vars */
	cfg1 = slurp(cfgp);
	ck_assert_int_eq(runc_inject(bundle, ca_path(), &r2), 0);
	cfg2 = slurp(cfgp);
	j1 = json_loads(cfg1, 0, NULL);
	j2 = json_loads(cfg2, 0, NULL);
	ck_assert_msg(json_equal(j1, j2), "second run changed\n%s\n%s", cfg1,
		      cfg2);
	ck_assert_uint_eq(r2.nkept, r.nkept);
	check_injected(c, bundle, &r2);

	after = snapshot(rootfs);
	ck_assert_str_eq(after, before);
	json_decref(j1);
	json_decref(j2);
	free(cfg1);
	free(cfg2);
	free(before);
	free(after);
	runc_result_fini(&r);
	runc_result_fini(&r2);
}
END_TEST

/* Failures leave config.json exactly as it was. */
static void assert_fails_untouched(const char *bundle, const char *ca,
				   const char *why)
{
	struct runc_result r = { 0 };
	char cfgp[600], *before, *after;

	snprintf(cfgp, sizeof(cfgp), "%s/config.json", bundle);
	before = slurp(cfgp);
	ck_assert_int_eq(runc_inject(bundle, ca, &r), -1);
	ck_assert_msg(strstr(strbuf_str(&r.err), why), "error '%s' lacks '%s'",
		      strbuf_str(&r.err), why);
	ck_assert_ptr_null(strchr(strbuf_str(&r.err), '\n'));
	after = slurp(cfgp);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
	runc_result_fini(&r);
}

START_TEST(test_inject_failures)
{
	const char *b;
	char p[700];

	b = copy_fixture("malformed", "malformed");
	assert_fails_untouched(b, ca_path(), "config.json:2:");

	b = copy_fixture("debian", "noca");
	assert_fails_untouched(b, tpath(0, "no-such-ca.pem"),
			       "no-such-ca.pem: No such file");
	spit(tpath(0, "notpem"), "just text\n", 0644);
	assert_fails_untouched(b, tpath(0, "notpem"), "no PEM certificate");

	/* root.path "." would put our files into the rootfs */
	b = copy_fixture("debian", "dotroot");
	snprintf(p, sizeof(p), "%s/config.json", b);
	spit(p, "{\"root\":{\"path\":\".\"},\"process\":{\"env\":[]}}", 0644);
	assert_fails_untouched(b, ca_path(), "inside the rootfs");

	b = copy_fixture("debian", "noroot");
	snprintf(p, sizeof(p), "%s/config.json", b);
	spit(p, "{\"root\":{\"path\":\"nowhere\"},\"process\":{}}", 0644);
	assert_fails_untouched(b, ca_path(), "rootfs nowhere: No such");

	b = copy_fixture("debian", "numbers");
	snprintf(p, sizeof(p), "%s/config.json", b);
	spit(p, "{\"process\":{\"env\":[]},\"x\":18446744073709551615}",
	     0644);
	assert_fails_untouched(b, ca_path(), "too big");

	b = copy_fixture("debian", "array");
	snprintf(p, sizeof(p), "%s/config.json", b);
	spit(p, "[]", 0644);
	assert_fails_untouched(b, ca_path(), "not a JSON object");

	b = copy_fixture("debian", "configdir");
	snprintf(p, sizeof(p), "%s/config.json", b);
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	{
		struct runc_result r = { 0 };

		ck_assert_int_eq(runc_inject(b, ca_path(), &r), -1);
		ck_assert_ptr_nonnull(strstr(r.err.buf, "not a regular file"));
		runc_result_fini(&r);
		ck_assert_int_eq(runc_inject(tpath(0, "no-bundle-here"),
					     ca_path(), &r),
				 -1);
		ck_assert_ptr_nonnull(strstr(r.err.buf, "No such file"));
		runc_result_fini(&r);
	}
}
END_TEST

/* FIFOs and devices where a bundle should be are skipped, not opened. */
START_TEST(test_inject_special_files)
{
	const char *b = copy_fixture("debian", "special");
	struct runc_result r = { 0 };
	char p[700];

	snprintf(p, sizeof(p), "%s/rootfs/etc/pki/tls/certs", b);
	ck_assert_int_eq(util_mkdir_p(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/rootfs/etc/pki/tls/certs/ca-bundle.crt", b);
	ck_assert_int_eq(mkfifo(p, 0644), 0);
	if (geteuid() == 0) {
		snprintf(p, sizeof(p), "%s/rootfs/etc/ssl/cert.pem", b);
		/* a tape device would rewind on open: use a harmless one */
		ck_assert_int_eq(mknod(p, S_IFCHR | 0644, makedev(1, 3)), 0);
	}
	ck_assert_int_eq(runc_inject(b, ca_path(), &r), 0);
	ck_assert_uint_eq(r.nbundles, 1);
	ck_assert_str_eq(r.system_bundle, "/etc/ssl/certs/ca-certificates.crt");
	runc_result_fini(&r);
}
END_TEST

/* root.path may be absolute, outside the bundle. */
START_TEST(test_inject_absolute_root)
{
	const char *b = copy_fixture("rhel", "absroot");
	struct runc_result r = { 0 };
	char p[700], q[700], cfg[1400];

	snprintf(p, sizeof(p), "%s/rootfs", b);
	snprintf(q, sizeof(q), "%s/elsewhere", tmpdir);
	ck_assert_int_eq(rename(p, q), 0);
	snprintf(p, sizeof(p), "%s/config.json", b);
	snprintf(cfg, sizeof(cfg),
		 "{\"root\":{\"path\":\"%s\"},\"process\":{\"env\":[]}}", q);
	spit(p, cfg, 0600);
	ck_assert_int_eq(runc_inject(b, ca_path(), &r), 0);
	ck_assert_str_eq(r.system_bundle, "/etc/pki/tls/certs/ca-bundle.crt");
	runc_result_fini(&r);
}
END_TEST

/*
 * Makes dir read-only for this process: as root (whom permission bits do
 * not stop) with a read-only bind mount in a private mount namespace,
 * otherwise with chmod.  Returns 0, or -1 (message on stderr).
 */
static int make_readonly(const char *dir)
{
	if (geteuid() != 0)
		return chmod(dir, 0555);
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(dir, dir, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
		perror("make_readonly");
		return -1;
	}
	return 0;
}

START_TEST(test_inject_readonly_bundle)
{
	const char *b = copy_fixture("debian", "ro");
	char bundle[600];
	pid_t pid;
	int status;

	snprintf(bundle, sizeof(bundle), "%s", b);
	/* A child, so that the mount namespace dies with it. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct runc_result r = { 0 };
		char cfgp[700], *before, *after;
		int rc;

		if (make_readonly(bundle) < 0)
			_exit(2);
		snprintf(cfgp, sizeof(cfgp), "%s/config.json", bundle);
		before = util_read_file(cfgp, NULL);
		rc = runc_inject(bundle, ca_path(), &r);
		after = util_read_file(cfgp, NULL);
		if (rc != -1 || !strstr(strbuf_str(&r.err), "cannot write") ||
		    !before || !after || strcmp(before, after) != 0) {
			fprintf(stderr, "rc=%d err=%s\n", rc,
				strbuf_str(&r.err));
			_exit(1);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "read-only bundle child failed (%d)", status);
}
END_TEST

/* ---- the HTTP response parser and the Docker lookup ---- */

static const struct http_case {
	const char *resp;
	int rc, status;
	const char *body;
} http_cases[] = {
	{ "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[1]", 0,
	  200, "[1]" },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[1]extra", 0, 200,
	  "[1]" },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "3\r\n[1,\r\na;ext=1\r\n2]        \r\n0\r\n\r\n",
	  0, 200, "[1,2]        " },
	{ "HTTP/1.1 404 Not Found\r\n\r\n", 0, 404, "" },
	{ "HTTP/1.1 200\r\n\r\n", 0, 200, "" },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[1]", -1, 0, NULL },
	{ "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n[1]", -1, 0, NULL },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	  -1, 0, NULL },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", -1,
	  0, NULL },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "fffffffffffffffffffffff\r\n",
	  -1, 0, NULL },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc", -1,
	  0, NULL },
	{ "HTTP/1.1 200 OK\r\nContent-Type: x\r\n", -1, 0, NULL },
	{ "HTTP/1.1 2000 OK\r\n\r\n", -1, 0, NULL },
	{ "HTTP/1.1 20 OK\r\n\r\n", -1, 0, NULL },
	{ "HTTP/2 200 OK\r\n\r\n", -1, 0, NULL },
	{ "SSH-2.0-OpenSSH\r\n\r\n", -1, 0, NULL },
	{ "", -1, 0, NULL },
};

START_TEST(test_http_parse_table)
{
	const struct http_case *c = &http_cases[_i];
	struct strbuf body = { 0 }, err = { 0 };
	int status = 0;
	int rc = runc_http_parse(c->resp, strlen(c->resp), &status, &body,
				 &err);

	ck_assert_int_eq(rc, c->rc);
	if (rc == 0) {
		ck_assert_int_eq(status, c->status);
		ck_assert_str_eq(strbuf_str(&body), c->body);
	} else {
		ck_assert_uint_gt(err.len, 0);
	}
	strbuf_fini(&body);
	strbuf_fini(&err);
}
END_TEST

/* Arbitrary bytes never crash the parser (run under ASan). */
START_TEST(test_http_parse_fuzz)
{
	static const char *const seeds[] = {
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		"4\r\nabcd\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	};
	unsigned seed = 12345;

	for (int iter = 0; iter < 20000; iter++) {
		const char *s = seeds[iter % 2];
		size_t len = strlen(s);
		char *buf = util_xmalloc(len);
		struct strbuf body = { 0 }, err = { 0 };
		int status;

		memcpy(buf, s, len);
		for (int k = 0; k < 3; k++) {
			seed = seed * 1103515245 + 12345;
			buf[(seed >> 8) % len] = (char)(seed >> 16);
		}
		seed = seed * 1103515245 + 12345;
		(void)!runc_http_parse(buf, (seed >> 8) % (len + 1), &status,
				       &body, &err);
		free(buf);
		strbuf_fini(&body);
		strbuf_fini(&err);
	}
}
END_TEST

START_TEST(test_image_from_list)
{
	const char *list = "[{\"Id\":\"" ID64 "x\",\"Image\":\"wrong\"},"
			   "{\"Id\":\"" ID64 "\",\"Image\":\"tools:debian\"}]";
	char *img;

	img = runc_docker_image_from_list(list, strlen(list), ID64);
	ck_assert_str_eq(img, "tools:debian");
	free(img);
	ck_assert_ptr_null(runc_docker_image_from_list("[]", 2, ID64));
	ck_assert_ptr_null(runc_docker_image_from_list("{", 1, ID64));
	ck_assert_ptr_null(runc_docker_image_from_list(
		"[{\"Id\":\"" ID64 "\",\"Image\":7}]", 80, ID64));
	ck_assert(runc_is_container_id(ID64));
	ck_assert(!runc_is_container_id("0123"));
	ck_assert(!runc_is_container_id(
		"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
}
END_TEST

/* A fake dockerd: answers one request on a unix socket, or hangs. */
struct fake_docker {
	char path[108];
	int lfd;
	const char *answer; /* NULL: accept, read, never answer */
	char request[2048];
	pthread_t th;
};

static void *fake_docker_main(void *arg)
{
	struct fake_docker *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	size_t len = 0;

	if (fd < 0)
		return NULL;
	while (len < sizeof(f->request) - 1) {
		ssize_t n = read(fd, f->request + len,
				 sizeof(f->request) - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		f->request[len] = '\0';
		if (strstr(f->request, "\r\n\r\n"))
			break;
	}
	if (f->answer) {
		if (write(fd, f->answer, strlen(f->answer)) < 0)
			perror("fake_docker");
	} else {
		/* hold the connection like dockerd holding a lock */
		struct timespec ts = { 1, 0 };

		nanosleep(&ts, NULL);
	}
	close(fd);
	return NULL;
}

static void fake_docker_start(struct fake_docker *f, const char *answer)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	memset(f->request, 0, sizeof(f->request));
	snprintf(f->path, sizeof(f->path), "%s/docker.sock", tmpdir);
	unlink(f->path);
	memcpy(sun.sun_path, f->path, strlen(f->path) + 1);
	f->answer = answer;
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(f->lfd, 0);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)),
			 0);
	ck_assert_int_eq(listen(f->lfd, 4), 0);
	ck_assert_int_eq(pthread_create(&f->th, NULL, fake_docker_main, f), 0);
}

static void fake_docker_stop(struct fake_docker *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->path);
}

#define DOCKER_OK                                                         \
	"HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\n"                         \
	"Content-Type: application/json\r\n\r\n"                           \
	"[{\"Id\":\"" ID64 "\",\"Names\":[\"/app\"],"                      \
	"\"Image\":\"tools-preset:latest\",\"ImageID\":\"sha256:00\"}]\n"

START_TEST(test_docker_lookup)
{
	struct fake_docker f;
	struct strbuf err = { 0 };
	struct timespec t0, t1;
	char *img;
	long ms;

	fake_docker_start(&f, DOCKER_OK);
	img = runc_docker_image(f.path, 2000, ID64, &err);
	fake_docker_stop(&f);
	ck_assert_msg(img != NULL, "%s", strbuf_str(&err));
	ck_assert_str_eq(img, "tools-preset:latest");
	free(img);
	/* the list endpoint, filtered by id: never /containers/ID/json */
	ck_assert_ptr_nonnull(strstr(
		f.request, "GET /containers/json?all=1&filters=%7B%22id%22%3A"
			   "%5B%22" ID64 "%22%5D%7D HTTP/1.0\r\n"));

	/* an error status */
	fake_docker_start(&f, "HTTP/1.1 500 Internal Server Error\r\n"
			      "Content-Length: 0\r\n\r\n");
	img = runc_docker_image(f.path, 2000, ID64, &err);
	fake_docker_stop(&f);
	ck_assert_ptr_null(img);
	ck_assert_ptr_nonnull(strstr(err.buf, "HTTP 500"));

	/* a dockerd that never answers costs the timeout, no more */
	strbuf_reset(&err);
	fake_docker_start(&f, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	img = runc_docker_image(f.path, 200, ID64, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fake_docker_stop(&f);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_ptr_null(img);
	ck_assert_msg(ms >= 150 && ms < 900, "took %ld ms", ms);
	ck_assert_ptr_nonnull(strstr(err.buf, "timed out"));

	/* no socket */
	strbuf_reset(&err);
	img = runc_docker_image(tpath(0, "none.sock"), 200, ID64, &err);
	ck_assert_ptr_null(img);
	ck_assert_ptr_nonnull(strstr(err.buf, "No such file"));
	strbuf_fini(&err);
}
END_TEST

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

	mkdir(tpath(0, "fake"), 0755);
	snprintf(p, sizeof(p), "%s/fake/runc", tmpdir);
	snprintf(script, sizeof(script),
		 "#!/bin/sh\n"
		 ": > %s/argv\n"
		 "for a in \"$@\"; do printf '%%s\\0' \"$a\" >> %s/argv; done\n"
		 "/usr/bin/env -0 > %s/env\n"
		 "exit 42\n",
		 tmpdir, tmpdir, tmpdir);
	spit(p, script, 0755);
	return p;
}

struct wrun {
	int status; /* exit status, or -1 */
	char *err; /* stderr */
};

static void run_wrapper(struct wrun *w, char *const argv[], char *const envp[])
{
	const char *errp = tpath(7, "stderr");
	int fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	pid_t pid;
	int st;

	ck_assert_int_ge(fd, 0);
	unlink(tpath(6, "argv"));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int out = open(tpath(5, "stdout"),
			       O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(out, 1);
		dup2(fd, 2);
		execve(wrapper_path(), argv, envp);
		_exit(126);
	}
	close(fd);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	w->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	w->err = slurp(errp);
}

/* The NUL-separated argv the fake runc recorded, joined with '|'. */
static char *recorded_args(void)
{
	size_t len;
	char *s = util_read_file(tpath(6, "argv"), &len);

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
	const char *b = copy_fixture("debian", ID64);
	char bundle[600], runc_env[700], ca_env[700], conf_env[700];
	char *args, *env, *cfg;
	struct wrun w;

	snprintf(bundle, sizeof(bundle), "%s", b);
	snprintf(runc_env, sizeof(runc_env), "EGRESS_RUNC_RUNC=%s", fake);
	snprintf(ca_env, sizeof(ca_env), "EGRESS_RUNC_CA=%s", ca_path());
	spit(tpath(0, "runc.conf"), "log=\n", 0644);
	snprintf(conf_env, sizeof(conf_env), "EGRESS_RUNC_CONFIG=%s",
		 tpath(0, "runc.conf"));
	{
		char *argv[] = { wrapper_path(),
				 "--root",
				 "/run/x y",
				 "--log",
				 "",
				 "--log-format",
				 "json",
				 "create",
				 "--bundle",
				 bundle,
				 "--pid-file",
				 "p\nq",
				 ID64,
				 NULL };
		char *envp[] = { "PATH=/usr/bin:/bin", "KEEP_ME=1", runc_env,
				 ca_env, conf_env, NULL };

		run_wrapper(&w, argv, envp);
	}
	ck_assert_msg(w.status == 42, "status %d, stderr: %s", w.status,
		      w.err);
	ck_assert_str_eq(w.err, "");
	args = recorded_args();
	ck_assert_ptr_nonnull(args);
	{
		char want[2048];

		snprintf(want, sizeof(want),
			 "--root|/run/x y|--log||--log-format|json|create|"
			 "--bundle|%s|--pid-file|p\nq|%s|",
			 bundle, ID64);
		ck_assert_str_eq(args, want);
	}
	/* none of the wrapper's settings reached runc; the rest did */
	env = util_read_file(tpath(5, "env"), NULL);
	ck_assert_ptr_nonnull(env);
	ck_assert_ptr_null(strstr(env, "EGRESS_RUNC"));
	ck_assert_ptr_nonnull(strstr(env, "KEEP_ME=1"));
	/* and the bundle was injected before runc ran */
	cfg = slurp(tpath(4, ID64 "/config.json"));
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
	char *envp_off[] = { "PATH=/usr/bin:/bin", runc_env, ca_env, conf_env,
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
	snprintf(ca_env, sizeof(ca_env), "EGRESS_RUNC_CA=%s", ca_path());
	snprintf(nca_env, sizeof(nca_env), "EGRESS_RUNC_CA=%s",
		 tpath(0, "missing-ca.pem"));
	spit(tpath(0, "runc.conf"), "# nothing\n", 0644);
	snprintf(conf_env, sizeof(conf_env), "EGRESS_RUNC_CONFIG=%s",
		 tpath(0, "runc.conf"));
	snprintf(bm, sizeof(bm), "%s", copy_fixture("malformed", "m"));
	snprintf(bd, sizeof(bd), "%s", copy_fixture("debian", "d"));
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
		char *argv[] = { wrapper_path(),
				 cases[i].subcmd,
				 "-b",
				 cases[i].bundle,
				 "c1",
				 NULL };
		char cfgp[700], want[800];

		snprintf(cfgp, sizeof(cfgp), "%s/config.json", cases[i].bundle);
		before = slurp(cfgp);
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
		cfg = slurp(cfgp);
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

	snprintf(bundle, sizeof(bundle), "%s", copy_fixture("debian", "ro"));
	snprintf(runc_env, sizeof(runc_env), "EGRESS_RUNC_RUNC=%s", fake);
	snprintf(ca_env, sizeof(ca_env), "EGRESS_RUNC_CA=%s", ca_path());
	spit(tpath(0, "runc.conf"), "\n", 0644);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char conf_env[700];
		char *argv[] = { wrapper_path(), "create", "--bundle",
				 bundle, "c1", NULL };
		char *envp[] = { "PATH=/usr/bin:/bin", runc_env, ca_env,
				 conf_env, NULL };
		struct wrun w;
		char *args, want[800];

		snprintf(conf_env, sizeof(conf_env), "EGRESS_RUNC_CONFIG=%s",
			 tpath(0, "runc.conf"));
		if (make_readonly(bundle) < 0)
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
	char bundle[600], runc_env[700], ca_env[700], conf_env[700],
		conf[1400];
	char *argv[] = { wrapper_path(), "create", "--bundle", bundle,
			 ID64, NULL };
	char *envp[] = { "PATH=/usr/bin:/bin", runc_env, ca_env, conf_env,
			 NULL };
	struct fake_docker f;
	struct wrun w;
	char *log, *cfg;

	snprintf(bundle, sizeof(bundle), "%s",
		 copy_fixture("preset-env", ID64));
	snprintf(runc_env, sizeof(runc_env), "EGRESS_RUNC_RUNC=%s", fake);
	snprintf(ca_env, sizeof(ca_env), "EGRESS_RUNC_CA=%s", ca_path());
	fake_docker_start(&f, DOCKER_OK);
	snprintf(conf, sizeof(conf), "docker_socket=%s\nlog=%s\n", f.path,
		 tpath(0, "wrapper.log"));
	spit(tpath(1, "runc.conf"), conf, 0644);
	snprintf(conf_env, sizeof(conf_env), "EGRESS_RUNC_CONFIG=%s",
		 tpath(1, "runc.conf"));
	run_wrapper(&w, argv, envp);
	fake_docker_stop(&f);
	ck_assert_msg(w.status == 42, "status %d: %s", w.status, w.err);
	ck_assert_int_eq(lines(w.err), 1);
	ck_assert_msg(strstr(w.err, "egress-runc: warning: "
				    "image=tools-preset:latest keeps "
				    "SSL_CERT_FILE=/opt/app/ca.pem "),
		      "%s", w.err);
	cfg = slurp(tpath(2, ID64 "/config.json"));
	ck_assert_ptr_nonnull(strstr(cfg, "\"SSL_CERT_FILE=/opt/app/ca.pem\""));
	ck_assert_ptr_null(strstr(cfg, "SSL_CERT_FILE=/etc"));
	free(cfg);
	/* the log holds the warning and the injection */
	log = slurp(tpath(0, "wrapper.log"));
	ck_assert_ptr_nonnull(strstr(log, "image=tools-preset:latest"));
	ck_assert_ptr_nonnull(strstr(log, "injected the egress CA"));
	free(log);
	free(w.err);

	/* dockerd silent: the warning names the container id instead */
	copy_fixture("preset-env", "x");
	snprintf(bundle, sizeof(bundle), "%s", tpath(3, "x"));
	snprintf(conf, sizeof(conf),
		 "docker_socket=%s\ndocker_timeout_ms=100\n",
		 tpath(4, "absent.sock"));
	spit(tpath(1, "runc.conf"), conf, 0644);
	run_wrapper(&w, argv, envp);
	ck_assert_int_eq(w.status, 42);
	ck_assert_int_eq(lines(w.err), 1);
	ck_assert_msg(strstr(w.err, "warning: container=" ID64 " keeps"), "%s",
		      w.err);
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
	mkdir(tpath(0, "self"), 0755);
	ck_assert_int_eq(symlink(wrapper_path(), tpath(0, "self/runc")), 0);
	spit(tpath(0, "runc.conf"), "\n", 0644);
	snprintf(conf_env, sizeof(conf_env), "EGRESS_RUNC_CONFIG=%s",
		 tpath(0, "runc.conf"));
	snprintf(path_env, sizeof(path_env), "PATH=%s:%s:/usr/bin:/bin",
		 tpath(0, "self"), tpath(1, "fake"));
	run_wrapper(&w, argv, envp);
	ck_assert_msg(w.status == 42, "status %d: %s", w.status, w.err);
	args = recorded_args();
	ck_assert_str_eq(args, "--version|");
	free(args);
	free(w.err);
	(void)fake;

	/* nothing but the wrapper: it says so and fails */
	snprintf(path_env, sizeof(path_env), "PATH=%s", tpath(0, "self"));
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
	out = slurp(tpath(5, "stdout"));
	ck_assert_ptr_nonnull(strstr(out, "--add-runtime egress="));
	ck_assert_ptr_nonnull(strstr(out, "EGRESS_RUNC_INJECT=0"));
	free(out);
	free(w.err);
}
END_TEST

Suite *runc_suite(void)
{
	Suite *s = suite_create("runc");
	TCase *tc = tcase_create("pure");
	TCase *io = tcase_create("bundles");
	TCase *ex = tcase_create("exec");

	tcase_add_loop_test(tc, test_args_table, 0, ARRAY_SIZE(args_cases));
	tcase_add_test(tc, test_env_strip);
	tcase_add_test(tc, test_bundle_merge_and_names);
	tcase_add_test(tc, test_covering_mount);
	tcase_add_test(tc, test_transform_errors);
	tcase_add_test(tc, test_transform_env_created);
	tcase_add_test(tc, test_warning_text);
	tcase_add_loop_test(tc, test_http_parse_table, 0,
			    ARRAY_SIZE(http_cases));
	tcase_add_test(tc, test_http_parse_fuzz);
	tcase_add_test(tc, test_image_from_list);
	tcase_add_test(tc, test_conf_file_and_env);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(io, tmp_setup, tmp_teardown);
	tcase_add_test(io, test_conf_load);
	tcase_add_test(io, test_find_real);
	tcase_add_loop_test(io, test_inject_table, 0,
			    ARRAY_SIZE(inject_cases));
	tcase_add_test(io, test_inject_failures);
	tcase_add_test(io, test_inject_special_files);
	tcase_add_test(io, test_inject_absolute_root);
	tcase_add_test(io, test_inject_readonly_bundle);
	tcase_add_test(io, test_docker_lookup);
	suite_add_tcase(s, io);

	tcase_add_checked_fixture(ex, tmp_setup, tmp_teardown);
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
