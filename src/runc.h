/*
 * runc.h - egress-runc, the runc wrapper that makes containers trust the
 * egress CA (reference §6, SPEC §8).
 *
 * The wrapper sits where dockerd (or containerd) expects runc.  For
 * `create` and `run` it rewrites the bundle's config.json so that the
 * container sees the CA at RUNC_CA_DEST, merged copies of its CA bundles
 * bind-mounted read-only over the image's own, and the usual CA environment
 * variables; then it always execs the real runc with the original
 * arguments.  Every file it writes lives next to config.json in the bundle
 * directory, never in the rootfs.  Anything that goes wrong during the
 * injection leaves config.json untouched and the container starts without
 * the CA (fail open).
 *
 * The parts the unit tests drive directly are pure: argument parsing, the
 * settings parser, the config.json transformation, bundle merging and the
 * HTTP response parser of the Docker lookup.
 */
#ifndef EGRESS_RUNC_H
#define EGRESS_RUNC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "cdefs.h"
#include "util.h"

#define RUNC_CONF_PATH "/etc/egressd/runc.conf"
#define RUNC_CA_DEFAULT "/run/egressd/ca.pem"
#define RUNC_DOCKER_SOCKET_DEFAULT "/var/run/docker.sock"
#define RUNC_DOCKER_TIMEOUT_MS_DEFAULT 2000
/* Where the CA appears inside every container. */
#define RUNC_CA_DEST "/tmp/egress-ca.pem"
/* Every file the wrapper writes into a bundle starts with this name. */
#define RUNC_FILE_PREFIX ".egress-ca"
/* The wrapper's own environment variables; none of them reaches runc. */
#define RUNC_ENV_PREFIX "EGRESS_RUNC_"
#define RUNC_ENV_CONFIG "EGRESS_RUNC_CONFIG"

/* ---- settings (runc_conf.c) ---- */

struct runc_conf {
	char *runc; /* absolute path of the real runc; NULL: search */
	char *ca; /* host path of the CA PEM */
	bool inject;
	char *docker_socket;
	int docker_timeout_ms;
	char *log; /* log file, or NULL */
};

void runc_conf_init(struct runc_conf *c) NONNULL(1);
void runc_conf_fini(struct runc_conf *c) NONNULL(1);

/*
 * Applies one setting (key as in the config file: runc, ca, inject,
 * docker_socket, docker_timeout_ms, log).  Returns 0, or -1 with the
 * setting unchanged and a reason appended to err.
 */
int runc_conf_set(struct runc_conf *c, const char *key, const char *val,
		  struct strbuf *err) NONNULL(1, 2, 3, 4);

/*
 * Parses the text of a config file: `key = value` lines, `#` comments,
 * blank lines.  A bad line is reported in err as "NAME:LINE: reason" (one
 * line each) and skipped; the other lines still apply.  Returns the number
 * of problems.
 */
int runc_conf_parse(struct runc_conf *c, const char *text, const char *name,
		    struct strbuf *err) NONNULL(1, 2, 3, 4);

/*
 * Applies EGRESS_RUNC_<KEY> variables of envp over the current settings.
 * Returns the number of problems (reported in err).
 */
int runc_conf_env(struct runc_conf *c, char *const *envp, struct strbuf *err)
	NONNULL(1, 2, 3);

/*
 * Defaults, then the config file ($EGRESS_RUNC_CONFIG, else RUNC_CONF_PATH;
 * a missing default file is not a problem), then the environment.
 */
void runc_conf_load(struct runc_conf *c, char *const *envp, struct strbuf *err)
	NONNULL(1, 2, 3);

/* ---- arguments (runc_args.c) ---- */

struct runc_args {
	int subcmd; /* index in argv of the subcommand, or -1 */
	const char *bundle; /* points into argv; "." when not given */
	const char *container_id; /* first positional after the subcommand */
	bool inject; /* subcommand is create or run */
};

/*
 * Parses runc's command line (argv[0] is the program) the way runc's CLI
 * library does: global flags up to the first positional argument, which is
 * the subcommand; then, for create and run, their flags anywhere up to
 * `--`.  Never fails: anything unknown is a boolean flag.
 */
void runc_args_parse(struct runc_args *a, int argc, char *const *argv)
	NONNULL(1);

/* ---- injection (runc_config.c: pure; runc_inject.c: files) ---- */

/* One bind mount to add: container path, host path. */
struct runc_mount {
	char *dest;
	char *source;
};

/* What runc_config_transform is told to add. */
struct runc_xform {
	const char *bundle; /* absolute, canonical bundle directory */
	const char *ca_source; /* host path bound at RUNC_CA_DEST */
	const struct runc_mount *bundles; /* merged CA bundles, in order */
	size_t nbundles;
};

/* An environment variable that was already set to a different value. */
struct runc_kept {
	char *key;
	char *value;
};

struct runc_result {
	struct runc_kept *kept;
	size_t nkept;
	size_t nbundles; /* merged bundles mounted */
	char *system_bundle; /* container path of the first, or NULL */
	char *args; /* process.args, joined, for messages */
	struct strbuf err; /* one line when runc_inject fails */
};

void runc_result_fini(struct runc_result *r) NONNULL(1);

/*
 * Removes the mounts an earlier run of the wrapper added (source a
 * RUNC_FILE_PREFIX file directly in bundle), so that injecting twice gives
 * the same config.  Returns 0, or -1 if "mounts" is not an array.
 */
int runc_config_strip(json_t *cfg, const char *bundle) NONNULL(1, 2) WUNRES;

/*
 * Appends the CA and bundle mounts and the environment variables
 * (NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, REQUESTS_CA_BUNDLE, AWS_CA_BUNDLE,
 * HEX_CACERTS_PATH) to cfg.  A variable already present keeps its value;
 * if that value differs from the one the wrapper would set, it is added to
 * r->kept.  Returns 0, or -1 with a reason in r->err and cfg possibly half
 * changed (the caller then discards it).
 */
int runc_config_transform(json_t *cfg, const struct runc_xform *x,
			  struct runc_result *r) NONNULL(1, 2, 3) WUNRES;

/*
 * The last mount of cfg whose destination is path or one of its parent
 * directories (the one the container will see), or NULL.  *rest receives
 * what remains of path below the destination ("" for an exact match).
 */
json_t *runc_config_covering_mount(json_t *cfg, const char *path,
				   const char **rest) NONNULL(1, 2, 3);

/* The image's bundle, a newline if it lacks one, then the CA. */
void runc_bundle_merge(struct strbuf *out, const char *orig, size_t olen,
		       const char *ca, size_t calen) NONNULL(1, 4);

/* ".egress-ca-etc_ssl_certs_ca-certificates.crt" for that path; caller frees. */
char *runc_bundle_file_name(const char *container_path) NONNULL(1) WUNRES;

/*
 * Injects the CA at ca_path into the bundle directory.  Returns 0 with the
 * outcome in r, or -1 with config.json untouched and a one-line reason in
 * r->err.
 */
int runc_inject(const char *bundle, const char *ca_path, struct runc_result *r)
	NONNULL(1, 2, 3) WUNRES;

/*
 * The one-line warning for r->kept (empty r->kept: nothing appended).  who
 * names the container: "image=NAME", "container=ID" or "bundle=PATH".
 */
void runc_warning(struct strbuf *out, const struct runc_result *r,
		  const char *who) NONNULL(1, 2, 3);

/* Appends s with control and non-ASCII bytes escaped, at most max bytes. */
void runc_sanitize(struct strbuf *out, const char *s, size_t max) NONNULL(1, 2);

/* ---- Docker lookup (runc_docker.c) ---- */

/* True if s is a 64-character lowercase hex Docker container id. */
bool runc_is_container_id(const char *s) NONNULL(1);

/*
 * Parses an HTTP/1.x response: status code into *status and the body,
 * de-chunked if needed, into body.  Returns 0, or -1 with a reason in err
 * for anything that is not a complete response.
 */
int runc_http_parse(const char *resp, size_t len, int *status,
		    struct strbuf *body, struct strbuf *err)
	NONNULL(1, 3, 4, 5) WUNRES;

/*
 * From a GET /containers/json answer, the "Image" of the entry whose "Id"
 * is id.  Caller frees; NULL if absent or malformed.
 */
char *runc_docker_image_from_list(const char *json, size_t len, const char *id)
	NONNULL(1, 3) WUNRES;

/*
 * Asks dockerd over its unix socket for the image of container id, with
 * GET /containers/json?all=1&filters={"id":["ID"]}: unlike
 * /containers/ID/json it does not wait for the container lock, which
 * dockerd holds while runc create runs.  The whole exchange is bounded by
 * timeout_ms.  Caller frees; NULL with a reason in err on failure.
 */
char *runc_docker_image(const char *socket_path, int timeout_ms, const char *id,
			struct strbuf *err) NONNULL(1, 3, 4) WUNRES;

/* ---- finding and running the real runc (runc_exec.c) ---- */

/*
 * The runc to exec: configured (absolute, executable, not the wrapper
 * itself), else the first executable `runc` in path_env that is not the
 * wrapper (compared by device and inode, so symlinks and hard links to the
 * wrapper are skipped), else `runc.real` in self_dir (the wrapper installed
 * over runc).  self may be NULL when the wrapper cannot identify itself;
 * then the PATH search is refused rather than risk exec'ing itself.
 * Returns a malloc'd path, or NULL with a reason in err.
 */
char *runc_find_real(const char *configured, const char *path_env,
		     const struct stat *self, const char *self_dir,
		     struct strbuf *err) NONNULL(5) WUNRES;

/* A copy of envp without the wrapper's EGRESS_RUNC_* variables. */
char **runc_env_strip(char *const *envp) NONNULL(1) WUNRES;

/*
 * Writes "egress-runc: LINE" to stderr and, if log_path is set, appends it
 * with a timestamp and the pid to that file (errors there are ignored: the
 * log must never stop a container).
 */
void runc_report(const char *log_path, bool to_stderr, const char *line)
	NONNULL(3);

#endif /* EGRESS_RUNC_H */
