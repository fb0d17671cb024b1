/*
 * egress_runc.c - egress-runc: the runc wrapper that makes containers trust
 * the egress CA.  See runc.h and `egress-runc --egress-help`.
 *
 * Whatever happens here, the real runc is exec'd with the original
 * arguments: a container must never fail to start because of the wrapper
 * (fail open).  The only exception is when no real runc can be found.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runc.h"

static const char usage[] =
	"NAME\n"
	"    egress-runc - runc wrapper that makes containers trust the egress "
	"CA\n"
	"\n"
	"SYNOPSIS\n"
	"    egress-runc [runc arguments...]\n"
	"    egress-runc --egress-help | --egress-config\n"
	"\n"
	"DESCRIPTION\n"
	"    Installed as a runtime of dockerd (or over runc), egress-runc "
	"runs the\n"
	"    real runc with exactly the arguments it was given.  Before "
	"`create` and\n"
	"    `run` it rewrites the bundle's config.json so that the container:\n"
	"      - sees the CA read-only at " RUNC_CA_DEST ";\n"
	"      - sees /etc/ssl/certs/ca-certificates.crt, "
	"/etc/pki/tls/certs/ca-bundle.crt\n"
	"        and /etc/ssl/cert.pem, where its image has them, replaced "
	"read-only by\n"
	"        copies with the CA appended (written next to config.json, "
	"never\n"
	"        into the image);\n"
	"      - gets NODE_EXTRA_CA_CERTS=" RUNC_CA_DEST " and "
	"SSL_CERT_FILE,\n"
	"        REQUESTS_CA_BUNDLE, AWS_CA_BUNDLE, HEX_CACERTS_PATH set to the "
	"first\n"
	"        of those bundles (or to the CA alone when the image has none), "
	"each\n"
	"        only if the container does not set it already.  A variable "
	"already\n"
	"        set to something else is kept, with a warning naming the "
	"image\n"
	"        (asked from dockerd) or the container.\n"
	"    Any failure (no CA, unreadable or malformed config.json, "
	"read-only\n"
	"    bundle) prints one line starting with \"egress-runc:\" and runc "
	"runs\n"
	"    unchanged.\n"
	"\n"
	"SETTINGS\n"
	"    Read from " RUNC_CONF_PATH " (or the file named by "
	"$" RUNC_ENV_CONFIG "),\n"
	"    `key = value` lines and # comments; each key can be overridden by "
	"the\n"
	"    environment variable EGRESS_RUNC_<KEY> (e.g. "
	"EGRESS_RUNC_INJECT=0).\n"
	"    None of the EGRESS_RUNC_* variables is passed on to runc.\n"
	"      runc=PATH           the real runc.  Default: the first `runc` "
	"on PATH\n"
	"                          that is not this wrapper (compared by "
	"inode),\n"
	"                          else runc.real next to the wrapper.\n"
	"      ca=PATH             CA certificate (PEM) [" RUNC_CA_DEFAULT "]\n"
	"      inject=true|false   inject at all [true]\n"
	"      docker_socket=PATH  dockerd's API socket, for image names\n"
	"                          [" RUNC_DOCKER_SOCKET_DEFAULT "]\n"
	"      docker_timeout_ms=N bound on that lookup [2000]\n"
	"      log=PATH            also append every message, and each "
	"injection,\n"
	"                          to this file\n"
	"\n"
	"INSTALLATION\n"
	"    As a dockerd runtime (preferred; runc itself stays in place):\n"
	"      dockerd --add-runtime egress=/usr/local/sbin/egress-runc "
	"--default-runtime egress\n"
	"    or in /etc/docker/daemon.json:\n"
	"      {\"runtimes\": {\"egress\": {\"path\": "
	"\"/usr/local/sbin/egress-runc\"}},\n"
	"       \"default-runtime\": \"egress\"}\n"
	"    Over runc (every runc user gets it):\n"
	"      mv /usr/sbin/runc /usr/sbin/runc.real\n"
	"      install -m 0755 egress-runc /usr/sbin/runc\n"
	"    and restore with: mv /usr/sbin/runc.real /usr/sbin/runc\n"
	"\n"
	"OPTIONS\n"
	"    These names cannot clash with runc's own flags.\n"
	"      --egress-help    this text\n"
	"      --egress-config  the settings in force and the runc that would "
	"run\n";

/* Reports each line of msgs (problems collected so far). */
static void report_lines(const struct runc_conf *c, bool to_stderr,
			 struct strbuf *msgs)
{
	char *s = msgs->buf;

	while (s && *s) {
		char *nl = strchr(s, '\n');

		if (nl)
			*nl = '\0';
		runc_report(c->log, to_stderr, s);
		s = nl ? nl + 1 : NULL;
	}
	strbuf_reset(msgs);
}

/*
 * Names the container for a warning: image=NAME when dockerd knows it,
 * else container=ID, else bundle=PATH.  Caller frees.
 */
static char *identify(const struct runc_conf *c, const struct runc_args *a)
{
	struct strbuf sb = { 0 }, why = { 0 };
	char *canon = realpath(a->bundle, NULL);
	const char *base = canon ? strrchr(canon, '/') : NULL;
	const char *id = NULL;
	char *image = NULL;

	if (base && runc_is_container_id(base + 1))
		id = base + 1;
	else if (a->container_id && runc_is_container_id(a->container_id))
		id = a->container_id;
	if (id)
		image = runc_docker_image(c->docker_socket,
					  c->docker_timeout_ms, id, &why);
	if (image) {
		strbuf_adds(&sb, "image=");
		runc_sanitize(&sb, image, 256);
	} else if (id) {
		struct strbuf note = { 0 };

		strbuf_addf(&sb, "container=%s", id);
		strbuf_addf(&note, "no image name for container %s: %s", id,
			    strbuf_str(&why));
		runc_report(c->log, false, strbuf_str(&note));
		strbuf_fini(&note);
	} else {
		strbuf_adds(&sb, "bundle=");
		runc_sanitize(&sb, canon ? canon : a->bundle, 256);
	}
	free(image);
	free(canon);
	strbuf_fini(&why);
	return strbuf_steal(&sb);
}

static void inject(const struct runc_conf *c, const struct runc_args *a)
{
	struct runc_result r = { 0 };
	struct strbuf sb = { 0 };

	if (runc_inject(a->bundle, c->ca, &r) < 0) {
		strbuf_addf(&sb,
			    "%s; starting the container without the "
			    "egress CA",
			    strbuf_str(&r.err));
		runc_report(c->log, true, strbuf_str(&sb));
	} else {
		char *who = r.nkept ? identify(c, a) : NULL;

		if (who) {
			runc_warning(&sb, &r, who);
			runc_report(c->log, true, strbuf_str(&sb));
			strbuf_reset(&sb);
		}
		strbuf_adds(&sb, "injected the egress CA into bundle ");
		runc_sanitize(&sb, a->bundle, 256);
		strbuf_addf(&sb, " (%zu merged bundle%s, system bundle %s)",
			    r.nbundles, r.nbundles == 1 ? "" : "s",
			    r.system_bundle ? r.system_bundle : "none");
		runc_report(c->log, false, strbuf_str(&sb));
		free(who);
	}
	strbuf_fini(&sb);
	runc_result_fini(&r);
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (char *const *e = envp; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int show_config(const struct runc_conf *c, char *const *envp,
		       const char *real, const char *why)
{
	const char *path = env_get(envp, RUNC_ENV_CONFIG);

	printf("config=%s\n", path && *path ? path : RUNC_CONF_PATH);
	printf("runc=%s\n", real ? real : "(none)");
	printf("ca=%s\ninject=%s\ndocker_socket=%s\ndocker_timeout_ms=%d\n"
	       "log=%s\n",
	       c->ca, c->inject ? "true" : "false", c->docker_socket,
	       c->docker_timeout_ms, c->log ? c->log : "");
	if (why && *why)
		printf("problems=%s\n", why);
	return real ? 0 : 1;
}

int main(int argc, char **argv, char **envp)
{
	struct runc_conf conf;
	struct strbuf msgs = { 0 };
	struct runc_args a;
	struct stat self;
	char self_path[PATH_MAX];
	ssize_t n;
	bool have_self, loud;
	char *real, **env;

	if (argc == 2 && strcmp(argv[1], "--egress-help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	runc_conf_load(&conf, envp, &msgs);
	runc_args_parse(&a, argc, argv);
	/*
	 * Settings problems go to stderr only where they matter (create,
	 * run): containerd calls `runc state` and friends constantly.
	 */
	loud = a.inject ||
	       (argc == 2 && strcmp(argv[1], "--egress-config") == 0);
	have_self = stat("/proc/self/exe", &self) == 0;
	n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	self_path[n > 0 ? n : 0] = '\0';
	real = runc_find_real(conf.runc, env_get(envp, "PATH"),
			      have_self ? &self : NULL,
			      n > 0 ? dirname(self_path) : NULL, &msgs);
	if (argc == 2 && strcmp(argv[1], "--egress-config") == 0) {
		int rc = show_config(&conf, envp, real, strbuf_str(&msgs));

		free(real);
		strbuf_fini(&msgs);
		runc_conf_fini(&conf);
		return rc;
	}
	report_lines(&conf, loud || !real, &msgs);
	if (!real) {
		runc_conf_fini(&conf);
		strbuf_fini(&msgs);
		return 127;
	}
	if (a.inject && conf.inject)
		inject(&conf, &a);
	env = runc_env_strip(envp);
	execve(real, argv, env);
	strbuf_addf(&msgs, "cannot exec %s: %s", real, strerror(errno));
	runc_report(conf.log, true, strbuf_str(&msgs));
	free(env);
	free(real);
	strbuf_fini(&msgs);
	runc_conf_fini(&conf);
	return 127;
}
