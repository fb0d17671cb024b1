/*
 * check_runc.c - egress-runc (reference §6, SPEC §8), the parts tested in
 * process: argument parsing as runc 1.1 does it, settings, finding the
 * real runc, the config.json transformation, injection on the sample
 * bundles of fixtures/runc/ (Debian, RHEL, Alpine, distroless, hostile
 * symlinks, mounts over the bundle paths, pre-set variables, malformed
 * config.json, missing CA, read-only bundle, idempotence), the HTTP parser
 * and the Docker lookup against a fake API socket.
 *
 * Every injection test works on a copy of a fixture in a temporary
 * directory and checks that the copy's rootfs is byte for byte unchanged.
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
	{ { "runc", "delete", "--force", "c1", NULL },
	  "delete",
	  ".",
	  NULL,
	  false },
	{ { "runc", "state", "c1", NULL }, "state", ".", NULL, false },
	{ { "runc", "exec", "--process", "/p.json", "-b", "/x", "c1", NULL },
	  "exec",
	  ".",
	  NULL,
	  false },
	/* global flags with a value: the value is not the subcommand */
	{ { "runc", "--root", "/run/docker/runtime-runc/moby", "create",
	    "--bundle", "/b1", "c1", NULL },
	  "create",
	  "/b1",
	  "c1",
	  true },
	{ { "runc", "--log", "create", "start", "c1", NULL },
	  "start",
	  ".",
	  NULL,
	  false },
	{ { "runc", "--log-format", "json", "run", "-b", "/b2", "c2", NULL },
	  "run",
	  "/b2",
	  "c2",
	  true },
	{ { "runc", "--criu", "run", "create", NULL },
	  "create",
	  ".",
	  NULL,
	  true },
	{ { "runc", "--rootless", "run", "state", "c1", NULL },
	  "state",
	  ".",
	  NULL,
	  false },
	{ { "runc", "--root=/r", "--log=/l", "create", "--bundle=/b3", "c3",
	    NULL },
	  "create",
	  "/b3",
	  "c3",
	  true },
	/* Go's flag package: one dash works as well as two */
	{ { "runc", "-root", "/r", "create", "-bundle", "/b4", "c4", NULL },
	  "create",
	  "/b4",
	  "c4",
	  true },
	{ { "runc", "-log=/l", "create", "-bundle=/b5", "c5", NULL },
	  "create",
	  "/b5",
	  "c5",
	  true },
	/* boolean globals take nothing */
	{ { "runc", "--debug", "--systemd-cgroup", "create", "-b", "/b6", "c6",
	    NULL },
	  "create",
	  "/b6",
	  "c6",
	  true },
	{ { "runc", "--debug=true", "run", "c7", NULL },
	  "run",
	  ".",
	  "c7",
	  true },
	/* the full containerd-shim invocation */
	{ { "runc", "--root", "/var/run/docker/runtime-runc/moby", "--log",
	    "/run/containerd/io.containerd.runtime.v2.task/moby/" RT_ID64
	    "/log.json",
	    "--log-format", "json", "create", "--bundle",
	    "/run/containerd/io.containerd.runtime.v2.task/moby/" RT_ID64,
	    "--pid-file", "/run/x/init.pid", RT_ID64, NULL },
	  "create",
	  "/run/containerd/io.containerd.runtime.v2.task/moby/" RT_ID64,
	  RT_ID64,
	  true },
	/* create's value flags are skipped with their values */
	{ { "runc", "create", "--console-socket", "/s.sock", "--pid-file", "/p",
	    "--preserve-fds", "2", "-b", "/b8", "c8", NULL },
	  "create",
	  "/b8",
	  "c8",
	  true },
	{ { "runc", "run", "--pid-file", "-b", "c9", NULL },
	  "run",
	  ".",
	  "c9",
	  true },
	/* flags after the container id still count (urfave/cli reorders) */
	{ { "runc", "create", "c10", "--bundle", "/b10", NULL },
	  "create",
	  "/b10",
	  "c10",
	  true },
	/* ... but not after "--" */
	{ { "runc", "create", "c11", "--", "--bundle", "/b11", NULL },
	  "create",
	  ".",
	  "c11",
	  true },
	{ { "runc", "create", "--", "c12", NULL }, "create", ".", "c12", true },
	{ { "runc", "--", "create", "c13", NULL }, "create", ".", "c13", true },
	/* the last --bundle wins; an empty one means the cwd */
	{ { "runc", "create", "-b", "/first", "--bundle", "/last", "c14",
	    NULL },
	  "create",
	  "/last",
	  "c14",
	  true },
	{ { "runc", "create", "--bundle=", "c15", NULL },
	  "create",
	  ".",
	  "c15",
	  true },
	/* a value flag at the very end has nothing to take */
	{ { "runc", "create", "c16", "--bundle", NULL },
	  "create",
	  ".",
	  "c16",
	  true },
	{ { "runc", "--root", NULL }, NULL, ".", NULL, false },
	/* boolean create/run flags take nothing */
	{ { "runc", "run", "--detach", "--keep", "--no-pivot",
	    "--no-new-keyring", "-d", "c17", "-b", "/b17", NULL },
	  "run",
	  "/b17",
	  "c17",
	  true },
	/* "-" alone is an argument, not a flag */
	{ { "runc", "-", "create", NULL }, "-", ".", NULL, false },
	/* the subcommand is matched exactly */
	{ { "runc", "Create", "-b", "/x", NULL }, "Create", ".", NULL, false },
	{ { "runc", "spec", "--bundle", "/x", NULL }, "spec", ".", NULL, false },
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
	ck_assert_ptr_nonnull(strstr(
		err.buf, "EGRESS_RUNC_DOCKER_TIMEOUT_MS: docker_timeout"));

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

	rt_spit(rt_path(0, "runc.conf"), "inject=false\nca=/file/ca.pem\n",
		0644);
	snprintf(envcfg, sizeof(envcfg), "EGRESS_RUNC_CONFIG=%s",
		 rt_path(0, "runc.conf"));
	runc_conf_load(&c, env, &err);
	ck_assert_str_eq(strbuf_str(&err), "");
	ck_assert(!c.inject);
	ck_assert_str_eq(c.ca, "/file/ca.pem");
	ck_assert_str_eq(c.log, "/l.log");
	runc_conf_fini(&c);

	/* a config file named explicitly but missing is reported */
	runc_conf_load(&c, none, &err);
	ck_assert_ptr_nonnull(
		strstr(err.buf, "/nonexistent/runc.conf: No such"));
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
	rt_spit(path, "#!/bin/sh\nexit 0\n", 0755);
}

START_TEST(test_find_real)
{
	struct strbuf err = { 0 };
	struct stat self;
	char path[2048], *r;

	mkdir(rt_path(0, "a"), 0755);
	mkdir(rt_path(0, "b"), 0755);
	mkdir(rt_path(0, "c"), 0755);
	make_exec(rt_path(0, "wrapper"));
	ck_assert_int_eq(stat(rt_path(0, "wrapper"), &self), 0);
	/* a/runc is the wrapper itself, through a symlink */
	ck_assert_int_eq(symlink(rt_path(0, "wrapper"), rt_path(1, "a/runc")),
			 0);
	make_exec(rt_path(0, "b/runc"));
	rt_spit(rt_path(0, "c/runc"), "not executable", 0644);

	snprintf(path, sizeof(path), "relative:%s:%s:%s", rt_path(0, "c"),
		 rt_path(1, "a"), rt_path(2, "b"));
	r = runc_find_real(NULL, path, &self, NULL, &err);
	ck_assert_str_eq(r, rt_path(0, "b/runc"));
	free(r);

	/* configured wins */
	make_exec(rt_path(0, "c/runc.real"));
	r = runc_find_real(rt_path(0, "c/runc.real"), path, &self, NULL, &err);
	ck_assert_str_eq(r, rt_path(0, "c/runc.real"));
	ck_assert_str_eq(strbuf_str(&err), "");
	free(r);

	/* a configured runc that is the wrapper: search instead, and say so */
	r = runc_find_real(rt_path(0, "a/runc"), path, &self, NULL, &err);
	ck_assert_str_eq(r, rt_path(0, "b/runc"));
	ck_assert_ptr_nonnull(strstr(err.buf, "is this wrapper"));
	free(r);
	strbuf_reset(&err);

	/* only the wrapper on PATH: runc.real next to it, else nothing */
	snprintf(path, sizeof(path), "%s", rt_path(0, "a"));
	r = runc_find_real(NULL, path, &self, rt_path(0, "c"), &err);
	ck_assert_str_eq(r, rt_path(0, "c/runc.real"));
	free(r);
	r = runc_find_real(NULL, path, &self, rt_path(0, "b"), &err);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(err.buf, "no runc found"));
	strbuf_reset(&err);

	/* without knowing itself, the wrapper will not search PATH */
	r = runc_find_real(NULL, rt_path(0, "b"), NULL, NULL, &err);
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
	m = runc_config_covering_mount(
		cfg, "/etc/ssl/certs/ca-certificates.crt", &rest);
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
	struct runc_xform x = { .bundle = "/b",
				.ca_source = "/b/.egress-ca.pem" };

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
	struct runc_xform x = { .bundle = "/b",
				.ca_source = "/b/.egress-ca.pem" };
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

	json_array_foreach(env, i, e)
	{
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
	char *got = rt_slurp(path);

	ck_assert_str_eq(got, want);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, mode);
	free(got);
}

/* Checks an injected copy of c->fixture at bundle against the original. */
static void check_injected(const struct inject_case *c, const char *bundle,
			   const struct runc_result *r)
{
	char p[1024], *ca = rt_slurp(rt_ca_path());
	json_t *orig, *cfg, *mounts, *omounts, *oenv, *env;
	size_t nb = 0, nm, nom;
	struct stat st;

	snprintf(p, sizeof(p), "%s/config.json", bundle);
	cfg = load_json(p);
	orig = load_json(rt_fixture_path(c->fixture, "config.json"));

	/* config.json keeps its mode; everything else is still there */
	snprintf(p, sizeof(p), "%s/config.json", bundle);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert(json_equal(json_object_get(cfg, "linux"),
			     json_object_get(orig, "linux")));
	ck_assert(json_equal(
		json_object_get(json_object_get(cfg, "process"), "args"),
		json_object_get(json_object_get(orig, "process"), "args")));

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
		const char *src =
			json_string_value(json_object_get(m, "source"));
		char *want = rt_subst_bundle(
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
		o = rt_slurp(src);
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
	const char *bundle = rt_copy_fixture(c->fixture, "bundle");
	char rootfs[600], cfgp[600], *before, *after, *cfg1, *cfg2;
	json_t *j1, *j2;

	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
	snprintf(cfgp, sizeof(cfgp), "%s/config.json", bundle);
	before = snapshot(rootfs);
	ck_assert_msg(runc_inject(bundle, rt_ca_path(), &r) == 0, "%s: %s",
		      c->fixture, strbuf_str(&r.err));
	check_injected(c, bundle, &r);

	/* twice gives the same config: no second set of mounts or vars */
	cfg1 = rt_slurp(cfgp);
	ck_assert_int_eq(runc_inject(bundle, rt_ca_path(), &r2), 0);
	cfg2 = rt_slurp(cfgp);
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
	before = rt_slurp(cfgp);
	ck_assert_int_eq(runc_inject(bundle, ca, &r), -1);
	ck_assert_msg(strstr(strbuf_str(&r.err), why), "error '%s' lacks '%s'",
		      strbuf_str(&r.err), why);
	ck_assert_ptr_null(strchr(strbuf_str(&r.err), '\n'));
	after = rt_slurp(cfgp);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
	runc_result_fini(&r);
}

START_TEST(test_inject_failures)
{
	const char *b;
	char p[700];

	b = rt_copy_fixture("malformed", "malformed");
	assert_fails_untouched(b, rt_ca_path(), "config.json:2:");

	b = rt_copy_fixture("debian", "noca");
	assert_fails_untouched(b, rt_path(0, "no-such-ca.pem"),
			       "no-such-ca.pem: No such file");
	rt_spit(rt_path(0, "notpem"), "just text\n", 0644);
	assert_fails_untouched(b, rt_path(0, "notpem"), "no PEM certificate");

	/* root.path "." would put our files into the rootfs */
	b = rt_copy_fixture("debian", "dotroot");
	snprintf(p, sizeof(p), "%s/config.json", b);
	rt_spit(p, "{\"root\":{\"path\":\".\"},\"process\":{\"env\":[]}}",
		0644);
	assert_fails_untouched(b, rt_ca_path(), "inside the rootfs");

	b = rt_copy_fixture("debian", "noroot");
	snprintf(p, sizeof(p), "%s/config.json", b);
	rt_spit(p, "{\"root\":{\"path\":\"nowhere\"},\"process\":{}}", 0644);
	assert_fails_untouched(b, rt_ca_path(), "rootfs nowhere: No such");

	b = rt_copy_fixture("debian", "numbers");
	snprintf(p, sizeof(p), "%s/config.json", b);
	rt_spit(p, "{\"process\":{\"env\":[]},\"x\":18446744073709551615}",
		0644);
	assert_fails_untouched(b, rt_ca_path(), "too big");

	b = rt_copy_fixture("debian", "array");
	snprintf(p, sizeof(p), "%s/config.json", b);
	rt_spit(p, "[]", 0644);
	assert_fails_untouched(b, rt_ca_path(), "not a JSON object");

	b = rt_copy_fixture("debian", "configdir");
	snprintf(p, sizeof(p), "%s/config.json", b);
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	{
		struct runc_result r = { 0 };

		ck_assert_int_eq(runc_inject(b, rt_ca_path(), &r), -1);
		ck_assert_ptr_nonnull(strstr(r.err.buf, "not a regular file"));
		runc_result_fini(&r);
		ck_assert_int_eq(runc_inject(rt_path(0, "no-bundle-here"),
					     rt_ca_path(), &r),
				 -1);
		ck_assert_ptr_nonnull(strstr(r.err.buf, "No such file"));
		runc_result_fini(&r);
	}
}
END_TEST

/* FIFOs and devices where a bundle should be are skipped, not opened. */
START_TEST(test_inject_special_files)
{
	const char *b = rt_copy_fixture("debian", "special");
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
	ck_assert_int_eq(runc_inject(b, rt_ca_path(), &r), 0);
	ck_assert_uint_eq(r.nbundles, 1);
	ck_assert_str_eq(r.system_bundle, "/etc/ssl/certs/ca-certificates.crt");
	runc_result_fini(&r);
}
END_TEST

/* root.path may be absolute, outside the bundle. */
START_TEST(test_inject_absolute_root)
{
	const char *b = rt_copy_fixture("rhel", "absroot");
	struct runc_result r = { 0 };
	char p[700], q[700], cfg[1400];

	snprintf(p, sizeof(p), "%s/rootfs", b);
	snprintf(q, sizeof(q), "%s/elsewhere", rt_tmpdir);
	ck_assert_int_eq(rename(p, q), 0);
	snprintf(p, sizeof(p), "%s/config.json", b);
	snprintf(cfg, sizeof(cfg),
		 "{\"root\":{\"path\":\"%s\"},\"process\":{\"env\":[]}}", q);
	rt_spit(p, cfg, 0600);
	ck_assert_int_eq(runc_inject(b, rt_ca_path(), &r), 0);
	ck_assert_str_eq(r.system_bundle, "/etc/pki/tls/certs/ca-bundle.crt");
	runc_result_fini(&r);
}
END_TEST

START_TEST(test_inject_readonly_bundle)
{
	const char *b = rt_copy_fixture("debian", "ro");
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

		if (rt_make_readonly(bundle) < 0)
			_exit(2);
		snprintf(cfgp, sizeof(cfgp), "%s/config.json", bundle);
		before = util_read_file(cfgp, NULL);
		rc = runc_inject(bundle, rt_ca_path(), &r);
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
	{ "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", -1,
	  0, NULL },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", -1, 0,
	  NULL },
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
	int rc =
		runc_http_parse(c->resp, strlen(c->resp), &status, &body, &err);

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
	const char *list = "[{\"Id\":\"" RT_ID64 "x\",\"Image\":\"wrong\"},"
			   "{\"Id\":\"" RT_ID64
			   "\",\"Image\":\"tools:debian\"}]";
	char *img;

	img = runc_docker_image_from_list(list, strlen(list), RT_ID64);
	ck_assert_str_eq(img, "tools:debian");
	free(img);
	ck_assert_ptr_null(runc_docker_image_from_list("[]", 2, RT_ID64));
	ck_assert_ptr_null(runc_docker_image_from_list("{", 1, RT_ID64));
	ck_assert_ptr_null(runc_docker_image_from_list(
		"[{\"Id\":\"" RT_ID64 "\",\"Image\":7}]", 80, RT_ID64));
	ck_assert(runc_is_container_id(RT_ID64));
	ck_assert(!runc_is_container_id("0123"));
	ck_assert(!runc_is_container_id(
		"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
}
END_TEST

START_TEST(test_docker_lookup)
{
	struct rt_fake_docker f;
	struct strbuf err = { 0 };
	struct timespec t0, t1;
	char *img;
	long ms;

	rt_fake_docker_start(&f, RT_DOCKER_OK);
	img = runc_docker_image(f.path, 2000, RT_ID64, &err);
	rt_fake_docker_stop(&f);
	ck_assert_msg(img != NULL, "%s", strbuf_str(&err));
	ck_assert_str_eq(img, "tools-preset:latest");
	free(img);
	/* the list endpoint, filtered by id: never /containers/ID/json */
	ck_assert_ptr_nonnull(strstr(
		f.request, "GET /containers/json?all=1&filters=%7B%22id%22%3A"
			   "%5B%22" RT_ID64 "%22%5D%7D HTTP/1.0\r\n"));

	/* an error status */
	rt_fake_docker_start(&f, "HTTP/1.1 500 Internal Server Error\r\n"
				 "Content-Length: 0\r\n\r\n");
	img = runc_docker_image(f.path, 2000, RT_ID64, &err);
	rt_fake_docker_stop(&f);
	ck_assert_ptr_null(img);
	ck_assert_ptr_nonnull(strstr(err.buf, "HTTP 500"));

	/* a dockerd that never answers costs the timeout, no more */
	strbuf_reset(&err);
	rt_fake_docker_start(&f, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	img = runc_docker_image(f.path, 200, RT_ID64, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rt_fake_docker_stop(&f);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_ptr_null(img);
	ck_assert_msg(ms >= 150 && ms < 900, "took %ld ms", ms);
	ck_assert_ptr_nonnull(strstr(err.buf, "timed out"));

	/* no socket */
	strbuf_reset(&err);
	img = runc_docker_image(rt_path(0, "none.sock"), 200, RT_ID64, &err);
	ck_assert_ptr_null(img);
	ck_assert_ptr_nonnull(strstr(err.buf, "No such file"));
	strbuf_fini(&err);
}
END_TEST

Suite *runc_suite(void)
{
	Suite *s = suite_create("runc");
	TCase *tc = tcase_create("pure");
	TCase *io = tcase_create("bundles");

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

	tcase_add_checked_fixture(io, rt_setup, rt_teardown);
	tcase_add_test(io, test_conf_load);
	tcase_add_test(io, test_find_real);
	tcase_add_loop_test(io, test_inject_table, 0, ARRAY_SIZE(inject_cases));
	tcase_add_test(io, test_inject_failures);
	tcase_add_test(io, test_inject_special_files);
	tcase_add_test(io, test_inject_absolute_root);
	tcase_add_test(io, test_inject_readonly_bundle);
	tcase_add_test(io, test_docker_lookup);
	suite_add_tcase(s, io);
	return s;
}
