/*
 * runc_config.c - the pure half of the injection: what config.json gains
 * (mounts, environment), how merged bundles are named and built, and the
 * warning for variables the container already sets.  No I/O here; the
 * files themselves are read and written by runc_inject.c.
 */
#include "runc.h"

#include <stdlib.h>
#include <string.h>

/* Longest process.args excerpt quoted in a warning. */
#define ARGS_MAX 256

/*
 * The variables the wrapper sets, in order; ca_only: the value is the CA
 * alone (Node adds it to its own store), otherwise the system bundle.
 */
static const struct {
	const char *key;
	bool ca_only;
} env_vars[] = {
	{ "NODE_EXTRA_CA_CERTS", true }, { "SSL_CERT_FILE", false },
	{ "REQUESTS_CA_BUNDLE", false }, { "AWS_CA_BUNDLE", false },
	{ "HEX_CACERTS_PATH", false },
};

void runc_sanitize(struct strbuf *out, const char *s, size_t max)
{
	size_t start = out->len;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (out->len - start >= max) {
			strbuf_adds(out, "...");
			return;
		}
		if (c < 0x20 || c >= 0x7f || c == '\\')
			strbuf_addf(out, "\\x%02x", c);
		else
			strbuf_addc(out, (char)c);
	}
}

char *runc_bundle_file_name(const char *container_path)
{
	struct strbuf sb = { 0 };
	const char *p = container_path;

	while (*p == '/')
		p++;
	strbuf_adds(&sb, RUNC_FILE_PREFIX "-");
	for (; *p; p++)
		strbuf_addc(&sb, *p == '/' ? '_' : *p);
	return strbuf_steal(&sb);
}

void runc_bundle_merge(struct strbuf *out, const char *orig, size_t olen,
		       const char *ca, size_t calen)
{
	if (orig && olen) {
		strbuf_add(out, orig, olen);
		if (orig[olen - 1] != '\n')
			strbuf_addc(out, '\n');
	}
	strbuf_add(out, ca, calen);
	if (calen && ca[calen - 1] != '\n')
		strbuf_addc(out, '\n');
}

/* True if source names a file this wrapper writes in bundle. */
static bool is_our_source(const char *source, const char *bundle)
{
	size_t blen = strlen(bundle);
	const char *name;

	while (blen > 1 && bundle[blen - 1] == '/')
		blen--;
	if (strncmp(source, bundle, blen) != 0 || source[blen] != '/')
		return false;
	name = source + blen + 1;
	return strncmp(name, RUNC_FILE_PREFIX, strlen(RUNC_FILE_PREFIX)) == 0 &&
	       !strchr(name, '/');
}

int runc_config_strip(json_t *cfg, const char *bundle)
{
	json_t *mounts = json_object_get(cfg, "mounts");
	size_t i = 0;

	if (!mounts)
		return 0;
	if (!json_is_array(mounts))
		return -1;
	while (i < json_array_size(mounts)) {
		json_t *m = json_array_get(mounts, i);
		const char *src =
			json_string_value(json_object_get(m, "source"));

		if (src && is_our_source(src, bundle))
			json_array_remove(mounts, i);
		else
			i++;
	}
	return 0;
}

/*
 * Next component of a path at *p ("" at the end): skips slashes and "."
 * components.  Returns its length; *start points at it.
 */
static size_t next_component(const char **p, const char **start)
{
	for (;;) {
		const char *s = *p;
		size_t n;

		while (*s == '/')
			s++;
		n = strcspn(s, "/");
		*start = s;
		*p = s + n;
		if (!(n == 1 && s[0] == '.'))
			return n;
	}
}

/*
 * True if the absolute path dest is path or a parent of it; *rest gets the
 * part of path below dest.  A ".." in either never matches: Docker writes
 * clean destinations, and lexical guesses about ".." would be wrong.
 */
static bool path_covers(const char *dest, const char *path, const char **rest)
{
	const char *d = dest, *p = path;

	if (dest[0] != '/' || path[0] != '/')
		return false;
	for (;;) {
		const char *ds, *ps;
		size_t dn = next_component(&d, &ds);
		size_t pn;
		const char *before = p;

		if (dn == 2 && memcmp(ds, "..", 2) == 0)
			return false;
		if (dn == 0) {
			const char *r = before;

			while (*r == '/')
				r++;
			*rest = r;
			return true;
		}
		pn = next_component(&p, &ps);
		if (pn != dn || memcmp(ds, ps, dn) != 0)
			return false;
	}
}

json_t *runc_config_covering_mount(json_t *cfg, const char *path,
				   const char **rest)
{
	json_t *mounts = json_object_get(cfg, "mounts");
	size_t i = json_is_array(mounts) ? json_array_size(mounts) : 0;

	while (i-- > 0) {
		json_t *m = json_array_get(mounts, i);
		const char *dest =
			json_string_value(json_object_get(m, "destination"));

		if (dest && path_covers(dest, path, rest))
			return m;
	}
	*rest = NULL;
	return NULL;
}

static json_t *mount_new(const char *dest, const char *source)
{
	return json_pack("{s:s, s:s, s:s, s:[s, s]}", "destination", dest,
			 "type", "bind", "source", source, "options", "bind",
			 "ro");
}

/*
 * The value of the last entry KEY=... of env (runc applies the entries in
 * order, so the last one wins), or NULL.
 */
static const char *env_value(json_t *env, const char *key)
{
	size_t klen = strlen(key);
	const char *found = NULL;
	size_t i;
	json_t *e;

	json_array_foreach(env, i, e)
	{
		const char *s = json_string_value(e);

		if (s && strncmp(s, key, klen) == 0 && s[klen] == '=')
			found = s + klen + 1;
	}
	return found;
}

static void kept_add(struct runc_result *r, const char *key, const char *val)
{
	r->kept = util_xrealloc(r->kept, (r->nkept + 1) * sizeof(*r->kept));
	r->kept[r->nkept].key = util_xstrdup(key);
	r->kept[r->nkept].value = util_xstrdup(val);
	r->nkept++;
}

static void args_note(struct runc_result *r, json_t *process)
{
	json_t *args = json_object_get(process, "args");
	struct strbuf sb = { 0 };
	size_t i;
	json_t *a;

	json_array_foreach(args, i, a)
	{
		const char *s = json_string_value(a);

		if (!s || sb.len >= ARGS_MAX)
			continue;
		if (sb.len)
			strbuf_addc(&sb, ' ');
		runc_sanitize(&sb, s, ARGS_MAX - sb.len);
	}
	free(r->args);
	r->args = strbuf_steal(&sb);
}

/* Adds the CA variables to process.env, keeping values already set. */
static int env_inject(json_t *cfg, const char *sysbundle, struct runc_result *r)
{
	json_t *process = json_object_get(cfg, "process");
	json_t *env, *e;
	size_t i;

	if (!json_is_object(process)) {
		strbuf_adds(&r->err, "config.json has no process object");
		return -1;
	}
	env = json_object_get(process, "env");
	if (!env) {
		env = json_array();
		json_object_set_new(process, "env", env);
	}
	if (!json_is_array(env)) {
		strbuf_adds(&r->err,
			    "process.env in config.json is not a list");
		return -1;
	}
	json_array_foreach(env, i, e)
	{
		if (!json_is_string(e)) {
			strbuf_adds(
				&r->err,
				"process.env in config.json holds a non-string");
			return -1;
		}
	}
	for (i = 0; i < ARRAY_SIZE(env_vars); i++) {
		const char *want = env_vars[i].ca_only ? RUNC_CA_DEST :
							 sysbundle;
		const char *have = env_value(env, env_vars[i].key);
		char *kv;

		if (have) {
			if (strcmp(have, want) != 0)
				kept_add(r, env_vars[i].key, have);
			continue;
		}
		if (asprintf(&kv, "%s=%s", env_vars[i].key, want) < 0)
			abort();
		json_array_append_new(env, json_string(kv));
		free(kv);
	}
	args_note(r, process);
	return 0;
}

int runc_config_transform(json_t *cfg, const struct runc_xform *x,
			  struct runc_result *r)
{
	json_t *mounts = json_object_get(cfg, "mounts");
	const char *sysbundle = RUNC_CA_DEST;

	if (json_typeof(cfg) != JSON_OBJECT) {
		strbuf_adds(&r->err, "config.json is not a JSON object");
		return -1;
	}
	if (!mounts) {
		mounts = json_array();
		json_object_set_new(cfg, "mounts", mounts);
	}
	if (!json_is_array(mounts)) {
		strbuf_adds(&r->err, "mounts in config.json is not a list");
		return -1;
	}
	json_array_append_new(mounts, mount_new(RUNC_CA_DEST, x->ca_source));
	for (size_t i = 0; i < x->nbundles; i++)
		json_array_append_new(mounts, mount_new(x->bundles[i].dest,
							x->bundles[i].source));
	if (x->nbundles) {
		sysbundle = x->bundles[0].dest;
		free(r->system_bundle);
		r->system_bundle = util_xstrdup(sysbundle);
	}
	r->nbundles = x->nbundles;
	return env_inject(cfg, sysbundle, r);
}

void runc_warning(struct strbuf *out, const struct runc_result *r,
		  const char *who)
{
	if (!r->nkept)
		return;
	strbuf_adds(out, "warning: ");
	runc_sanitize(out, who, 256);
	strbuf_adds(out, " keeps ");
	for (size_t i = 0; i < r->nkept; i++) {
		strbuf_addf(out, "%s%s=", i ? ", " : "", r->kept[i].key);
		runc_sanitize(out, r->kept[i].value, 256);
	}
	strbuf_adds(out, " (already set in the container); programs using ");
	strbuf_adds(out, r->nkept > 1 ? "them" : "it");
	strbuf_adds(out, " may not trust the egress CA, and HTTPS through the "
			 "egress proxy may fail TLS verification");
	if (r->args && r->args[0]) {
		strbuf_adds(out, " (process: ");
		strbuf_adds(out, r->args);
		strbuf_addc(out, ')');
	}
}

void runc_result_fini(struct runc_result *r)
{
	for (size_t i = 0; i < r->nkept; i++) {
		free(r->kept[i].key);
		free(r->kept[i].value);
	}
	free(r->kept);
	free(r->system_bundle);
	free(r->args);
	strbuf_fini(&r->err);
	memset(r, 0, sizeof(*r));
}
