/*
 * runc_conf.c - the wrapper's settings: defaults, config file, environment.
 *
 * The config file is deliberately trivial (key = value lines) because it is
 * read on every runc invocation, including the frequent `state` and
 * `delete`: no library, nothing that can be slow.  Problems never stop the
 * wrapper; they are reported and the setting keeps its previous value.
 */
#include "runc.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest config file or setting worth reading. */
#define CONF_MAX_BYTES (64 * 1024)

void runc_conf_init(struct runc_conf *c)
{
	c->runc = NULL;
	c->ca = util_xstrdup(RUNC_CA_DEFAULT);
	c->inject = true;
	c->docker_socket = util_xstrdup(RUNC_DOCKER_SOCKET_DEFAULT);
	c->docker_timeout_ms = RUNC_DOCKER_TIMEOUT_MS_DEFAULT;
	c->log = NULL;
}

void runc_conf_fini(struct runc_conf *c)
{
	free(c->runc);
	free(c->ca);
	free(c->docker_socket);
	free(c->log);
	c->runc = c->ca = c->docker_socket = c->log = NULL;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* Replaces *slot with an absolute path ("" clears it when allowed). */
static int set_path(char **slot, const char *key, const char *val,
		    bool may_clear, struct strbuf *err)
{
	if (val[0] == '\0' && may_clear) {
		free(*slot);
		*slot = NULL;
		return 0;
	}
	if (val[0] != '/') {
		strbuf_addf(err, "%s must be an absolute path", key);
		return -1;
	}
	if (strlen(val) >= PATH_MAX) {
		strbuf_addf(err, "%s is too long", key);
		return -1;
	}
	free(*slot);
	*slot = util_xstrdup(val);
	return 0;
}

int runc_conf_set(struct runc_conf *c, const char *key, const char *val,
		  struct strbuf *err)
{
	if (strcmp(key, "runc") == 0)
		return set_path(&c->runc, key, val, true, err);
	if (strcmp(key, "ca") == 0)
		return set_path(&c->ca, key, val, false, err);
	if (strcmp(key, "docker_socket") == 0)
		return set_path(&c->docker_socket, key, val, false, err);
	if (strcmp(key, "log") == 0)
		return set_path(&c->log, key, val, true, err);
	if (strcmp(key, "inject") == 0) {
		if (parse_bool(val, &c->inject) == 0)
			return 0;
		strbuf_adds(err, "inject must be true or false");
		return -1;
	}
	if (strcmp(key, "docker_timeout_ms") == 0) {
		char *end;
		long ms;

		errno = 0;
		ms = strtol(val, &end, 10);
		if (errno || end == val || *end || ms < 1 || ms > 60000) {
			strbuf_adds(err,
				    "docker_timeout_ms must be 1 to 60000");
			return -1;
		}
		c->docker_timeout_ms = (int)ms;
		return 0;
	}
	strbuf_adds(err, "unknown setting '");
	runc_sanitize(err, key, 64);
	strbuf_addc(err, '\'');
	return -1;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Trims blanks around [s, e) in place; returns the start. */
static char *trim(char *s, char *e)
{
	while (s < e && is_space(*s))
		s++;
	while (e > s && is_space(e[-1]))
		e--;
	*e = '\0';
	return s;
}

int runc_conf_parse(struct runc_conf *c, const char *text, const char *name,
		    struct strbuf *err)
{
	char *copy = util_xstrdup(text);
	char *line = copy;
	int lineno = 0, problems = 0;

	while (line) {
		char *nl = strchr(line, '\n');
		char *end = nl ? nl : line + strlen(line);
		char *eq, *key, *val;
		struct strbuf why = { 0 };

		lineno++;
		key = trim(line, end);
		line = nl ? nl + 1 : NULL;
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			strbuf_adds(&why, "expected key = value");
		} else {
			val = trim(eq + 1, eq + 1 + strlen(eq + 1));
			key = trim(key, eq);
			runc_conf_set(c, key, val, &why);
		}
		if (why.len) {
			if (err->len)
				strbuf_addc(err, '\n');
			strbuf_addf(err, "%s:%d: %s", name, lineno,
				    strbuf_str(&why));
			problems++;
		}
		strbuf_fini(&why);
	}
	free(copy);
	return problems;
}

int runc_conf_env(struct runc_conf *c, char *const *envp, struct strbuf *err)
{
	static const char *const keys[] = {
		"runc", "ca", "inject", "docker_socket", "docker_timeout_ms",
		"log"
	};
	int problems = 0;

	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		char name[64];
		size_t nlen;

		nlen = (size_t)snprintf(name, sizeof(name), "%s",
					RUNC_ENV_PREFIX);
		for (const char *p = keys[k]; *p && nlen < sizeof(name) - 2;
		     p++)
			name[nlen++] =
				(char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		name[nlen++] = '=';
		name[nlen] = '\0';
		for (char *const *e = envp; *e; e++) {
			struct strbuf why = { 0 };

			if (strncmp(*e, name, nlen) != 0)
				continue;
			if (runc_conf_set(c, keys[k], *e + nlen, &why) < 0) {
				if (err->len)
					strbuf_addc(err, '\n');
				strbuf_addf(err, "%.*s: %s", (int)nlen - 1,
					    name, strbuf_str(&why));
				problems++;
			}
			strbuf_fini(&why);
		}
	}
	return problems;
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (char *const *e = envp; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

void runc_conf_load(struct runc_conf *c, char *const *envp, struct strbuf *err)
{
	const char *path = env_get(envp, RUNC_ENV_CONFIG);
	bool explicit = path && *path;
	char *text;
	size_t len;

	runc_conf_init(c);
	if (!explicit)
		path = RUNC_CONF_PATH;
	text = util_read_file(path, &len);
	if (!text) {
		if (explicit || errno != ENOENT) {
			if (err->len)
				strbuf_addc(err, '\n');
			strbuf_addf(err, "%s: %s", path, strerror(errno));
		}
	} else if (len > CONF_MAX_BYTES || strlen(text) != len) {
		if (err->len)
			strbuf_addc(err, '\n');
		strbuf_addf(err, "%s: not a text file of at most %d bytes",
			    path, CONF_MAX_BYTES);
	} else {
		runc_conf_parse(c, text, path, err);
	}
	free(text);
	runc_conf_env(c, envp, err);
}
