/*
 * runc_inject.c - the I/O half of the injection: reading config.json, the
 * CA and the image's CA bundles, writing the merged bundles next to
 * config.json and replacing config.json atomically.
 *
 * The rootfs belongs to the image, which may be hostile: a bundle path may
 * be a symlink to a host file ("/etc/shadow"), a FIFO or a device.  Paths
 * inside it are therefore resolved with openat2(RESOLVE_IN_ROOT), which
 * keeps absolute symlinks and ".." inside the rootfs exactly as the
 * container will see them, and only regular files are read (opened as
 * O_PATH first, so that opening a device or FIFO never happens).  Nothing
 * is ever written below the rootfs.
 */
#include "runc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES (16 * 1024 * 1024)
#define CA_MAX_BYTES (1024 * 1024)
#define BUNDLE_MAX_BYTES (16 * 1024 * 1024)

/* The image's CA bundles, in the order the system bundle is chosen. */
static const char *const bundle_paths[] = {
	"/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine */
	"/etc/pki/tls/certs/ca-bundle.crt", /* RHEL, Fedora, CentOS */
	"/etc/ssl/cert.pem", /* Alpine, LibreSSL users */
};

static int open_in_root(int rootfd, const char *rel, int flags)
{
	struct open_how how = {
		.flags = (unsigned long long)flags,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
}

/*
 * Reads the regular file rel (relative to dirfd; resolved inside dirfd
 * when in_root) into out, at most max bytes.  Returns 1 when read; 0 when
 * there is no regular file there (errno: ENOENT, ENOTDIR or ELOOP when
 * nothing is there, 0 for something else than a regular file); -1 with
 * errno on other errors.
 */
static int read_regular(int dirfd, const char *rel, bool in_root, size_t max,
			struct strbuf *out, struct stat *st)
{
	int pfd, fd, rc = -1, e;
	struct stat st2;
	const int rdflags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;

	pfd = in_root ? open_in_root(dirfd, rel, O_PATH | O_CLOEXEC) :
			openat(dirfd, rel, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ?
			       0 :
			       -1;
	if (fstat(pfd, st) < 0) {
		e = errno;
		close(pfd);
		errno = e;
		return -1;
	}
	close(pfd);
	if (!S_ISREG(st->st_mode)) {
		errno = 0;
		return 0;
	}
	if ((size_t)st->st_size > max) {
		errno = EFBIG;
		return -1;
	}
	fd = in_root ? open_in_root(dirfd, rel, rdflags) :
		       openat(dirfd, rel, rdflags);
	if (fd < 0)
		return -1;
	/* The file must still be the one checked above. */
	if (fstat(fd, &st2) < 0 || st2.st_dev != st->st_dev ||
	    st2.st_ino != st->st_ino) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	for (;;) {
		char buf[65536];
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0) {
			rc = 1;
			break;
		}
		if (out->len + (size_t)n > max) {
			errno = EFBIG;
			break;
		}
		strbuf_add(out, buf, (size_t)n);
	}
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Replaces name in dirfd with data, atomically: a temporary file is
 * written, given mode (and owner, when own is set), flushed, then renamed
 * over name, and the directory flushed, so that a crash leaves either the
 * old or the new file, never a torn one.  Returns 0 or -1 with errno.
 */
static int write_atomic(int dirfd, const char *name, const char *data,
			size_t len, mode_t mode, const struct stat *own)
{
	char tmp[256];
	int fd, e;

	if (snprintf(tmp, sizeof(tmp), "%s.egress-tmp", name) >=
	    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = openat(dirfd, tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		/* Left by a wrapper that died half-way. */
		(void)unlinkat(dirfd, tmp, 0);
		fd = openat(dirfd, tmp,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				    O_CLOEXEC,
			    0600);
	}
	if (fd < 0)
		return -1;
	if (write_all(fd, data, len) < 0 || fchmod(fd, mode) < 0)
		goto fail;
	/* Not being root (a test, rootless) is fine: the owner is then us. */
	if (own && fchown(fd, own->st_uid, own->st_gid) < 0 && errno != EPERM)
		goto fail;
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0)
		goto fail;
	(void)fsync(dirfd);
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	(void)unlinkat(dirfd, tmp, 0);
	errno = e;
	return -1;
}

/* True if dir is root or below it (both canonical). */
static bool path_within(const char *dir, const char *root)
{
	size_t n = strlen(root);

	if (n == 1 && root[0] == '/')
		return true;
	return strncmp(dir, root, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

static bool is_bind_mount(json_t *m)
{
	const char *type = json_string_value(json_object_get(m, "type"));
	size_t i;
	json_t *o;

	if (type && strcmp(type, "bind") == 0)
		return true;
	json_array_foreach(json_object_get(m, "options"), i, o)
	{
		const char *s = json_string_value(o);

		if (s && (strcmp(s, "bind") == 0 || strcmp(s, "rbind") == 0))
			return true;
	}
	return false;
}

/*
 * Reads what the container will see at path: the file from the rootfs, or,
 * when a bind mount of the config covers the path (`-v
 * /etc/ssl/certs:/etc/ssl/certs`), the file from that mount's source.
 * Any other mount (tmpfs...) hides the image's file: not found.  Returns
 * 1, 0 or -1 as read_regular.
 */
static int read_container_file(json_t *cfg, int rootfd, const char *path,
			       struct strbuf *out, struct stat *st)
{
	const char *rest, *src;
	json_t *m = runc_config_covering_mount(cfg, path, &rest);
	int dfd, rc, e;

	if (!m)
		return read_regular(rootfd, path + 1, true, BUNDLE_MAX_BYTES,
				    out, st);
	src = json_string_value(json_object_get(m, "source"));
	if (!is_bind_mount(m) || !src || src[0] != '/')
		return 0;
	if (*rest == '\0')
		return read_regular(AT_FDCWD, src, false, BUNDLE_MAX_BYTES, out,
				    st);
	dfd = open(src, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	rc = read_regular(dfd, rest, true, BUNDLE_MAX_BYTES, out, st);
	e = errno;
	close(dfd);
	errno = e;
	return rc;
}

struct inject_ctx {
	char *bundle; /* canonical */
	int bundlefd;
	int rootfd;
	json_t *cfg;
	struct stat cfg_st;
	struct strbuf ca;
	struct runc_mount mounts[ARRAY_SIZE(bundle_paths)];
	size_t nmounts;
};

static void ctx_fini(struct inject_ctx *c)
{
	free(c->bundle);
	if (c->bundlefd >= 0)
		close(c->bundlefd);
	if (c->rootfd >= 0)
		close(c->rootfd);
	json_decref(c->cfg);
	strbuf_fini(&c->ca);
	for (size_t i = 0; i < c->nmounts; i++) {
		free(c->mounts[i].dest);
		free(c->mounts[i].source);
	}
}

static int load_config(struct inject_ctx *c, struct strbuf *err)
{
	struct strbuf text = { 0 };
	json_error_t jerr;
	int rc;

	rc = read_regular(c->bundlefd, "config.json", false, CONFIG_MAX_BYTES,
			  &text, &c->cfg_st);
	if (rc <= 0) {
		strbuf_addf(err, "%s/config.json: %s", c->bundle,
			    rc == 0 && !errno ? "not a regular file" :
						strerror(errno));
		strbuf_fini(&text);
		return -1;
	}
	c->cfg = json_loadb(text.buf, text.len, 0, &jerr);
	strbuf_fini(&text);
	if (!c->cfg) {
		strbuf_addf(err, "%s/config.json:%d: ", c->bundle, jerr.line);
		runc_sanitize(err, jerr.text, 120);
		return -1;
	}
	if (!json_is_object(c->cfg)) {
		strbuf_addf(err, "%s/config.json is not a JSON object",
			    c->bundle);
		return -1;
	}
	if (runc_config_strip(c->cfg, c->bundle) < 0) {
		strbuf_addf(err, "%s/config.json: mounts is not a list",
			    c->bundle);
		return -1;
	}
	return 0;
}

/* Opens the rootfs and makes sure the bundle directory is not inside it. */
static int open_rootfs(struct inject_ctx *c, struct strbuf *err)
{
	json_t *root = json_object_get(c->cfg, "root");
	const char *rel = json_string_value(json_object_get(root, "path"));
	char *joined = NULL, *canon;

	if (root && !json_is_object(root)) {
		strbuf_adds(err, "root in config.json is not an object");
		return -1;
	}
	if (!rel)
		rel = "rootfs";
	if (rel[0] != '/' && asprintf(&joined, "%s/%s", c->bundle, rel) < 0)
		abort();
	canon = realpath(joined ? joined : rel, NULL);
	free(joined);
	if (!canon) {
		strbuf_adds(err, "rootfs ");
		runc_sanitize(err, rel, 200);
		strbuf_addf(err, ": %s", strerror(errno));
		return -1;
	}
	if (path_within(c->bundle, canon)) {
		strbuf_addf(
			err,
			"the bundle %s is inside the rootfs %s: refusing to "
			"write there",
			c->bundle, canon);
		free(canon);
		return -1;
	}
	c->rootfd = open(canon, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->rootfd < 0)
		strbuf_addf(err, "rootfs %s: %s", canon, strerror(errno));
	free(canon);
	return c->rootfd < 0 ? -1 : 0;
}

static int load_ca(struct inject_ctx *c, const char *ca_path,
		   struct strbuf *err)
{
	struct stat st;
	int rc = read_regular(AT_FDCWD, ca_path, false, CA_MAX_BYTES, &c->ca,
			      &st);

	if (rc <= 0) {
		strbuf_addf(err, "CA %s: %s", ca_path,
			    rc == 0 && !errno ? "not a regular file" :
						strerror(errno));
		return -1;
	}
	if (!strstr(strbuf_str(&c->ca), "-----BEGIN CERTIFICATE-----") ||
	    strlen(c->ca.buf) != c->ca.len) {
		strbuf_addf(err, "CA %s: no PEM certificate in it", ca_path);
		return -1;
	}
	return 0;
}

/* Writes file name of the bundle directory; records its host path. */
static int write_bundle_file(struct inject_ctx *c, const char *name,
			     const char *data, size_t len, char **hostpath,
			     struct strbuf *err)
{
	if (write_atomic(c->bundlefd, name, data, len, 0444, NULL) < 0) {
		strbuf_addf(err, "cannot write %s/%s: %s", c->bundle, name,
			    strerror(errno));
		return -1;
	}
	if (asprintf(hostpath, "%s/%s", c->bundle, name) < 0)
		abort();
	return 0;
}

/*
 * For each bundle path the image has, writes the merged bundle next to
 * config.json.  Paths that are the same file (Alpine's /etc/ssl/cert.pem
 * is a symlink to certs/ca-certificates.crt) are merged once: mounting
 * over the first also changes what the others show.
 */
static int merge_bundles(struct inject_ctx *c, struct strbuf *err)
{
	struct stat seen[ARRAY_SIZE(bundle_paths)];

	for (size_t i = 0; i < ARRAY_SIZE(bundle_paths); i++) {
		struct strbuf orig = { 0 }, merged = { 0 };
		struct stat st;
		char *name, *host;
		bool dup = false;
		int rc = read_container_file(c->cfg, c->rootfd, bundle_paths[i],
					     &orig, &st);

		if (rc < 0) {
			strbuf_addf(err, "reading %s of the image: %s",
				    bundle_paths[i], strerror(errno));
			strbuf_fini(&orig);
			return -1;
		}
		for (size_t k = 0; rc == 1 && k < c->nmounts; k++)
			dup |= seen[k].st_dev == st.st_dev &&
			       seen[k].st_ino == st.st_ino;
		if (rc == 0 || dup) {
			strbuf_fini(&orig);
			continue;
		}
		runc_bundle_merge(&merged, orig.buf, orig.len, c->ca.buf,
				  c->ca.len);
		strbuf_fini(&orig);
		name = runc_bundle_file_name(bundle_paths[i]);
		rc = write_bundle_file(c, name, merged.buf, merged.len, &host,
				       err);
		free(name);
		strbuf_fini(&merged);
		if (rc < 0)
			return -1;
		seen[c->nmounts] = st;
		c->mounts[c->nmounts].dest = util_xstrdup(bundle_paths[i]);
		c->mounts[c->nmounts].source = host;
		c->nmounts++;
	}
	return 0;
}

static int save_config(struct inject_ctx *c, struct strbuf *err)
{
	char *text = json_dumps(c->cfg, JSON_COMPACT);
	int rc;

	if (!text) {
		strbuf_adds(err, "cannot encode config.json");
		return -1;
	}
	rc = write_atomic(c->bundlefd, "config.json", text, strlen(text),
			  c->cfg_st.st_mode & 07777, &c->cfg_st);
	if (rc < 0)
		strbuf_addf(err, "cannot write %s/config.json: %s", c->bundle,
			    strerror(errno));
	free(text);
	return rc;
}

int runc_inject(const char *bundle, const char *ca_path, struct runc_result *r)
{
	struct inject_ctx c = { .bundlefd = -1, .rootfd = -1 };
	struct runc_xform x = { 0 };
	char *ca_host = NULL;
	int rc = -1;

	c.bundle = realpath(bundle, NULL);
	if (!c.bundle) {
		strbuf_adds(&r->err, "bundle ");
		runc_sanitize(&r->err, bundle, 200);
		strbuf_addf(&r->err, ": %s", strerror(errno));
		goto out;
	}
	c.bundlefd = open(c.bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c.bundlefd < 0) {
		strbuf_addf(&r->err, "bundle %s: %s", c.bundle,
			    strerror(errno));
		goto out;
	}
	/*
	 * Everything is read and checked before the first write; a failure
	 * after that may leave .egress-ca* files in the bundle but never
	 * touches config.json.  They are not removed on failure: an earlier
	 * successful run's config.json may be mounting them.
	 */
	if (load_config(&c, &r->err) < 0 || open_rootfs(&c, &r->err) < 0 ||
	    load_ca(&c, ca_path, &r->err) < 0)
		goto out;
	if (write_bundle_file(&c, RUNC_FILE_PREFIX ".pem", c.ca.buf, c.ca.len,
			      &ca_host, &r->err) < 0 ||
	    merge_bundles(&c, &r->err) < 0)
		goto out;
	x.bundle = c.bundle;
	x.ca_source = ca_host;
	x.bundles = c.mounts;
	x.nbundles = c.nmounts;
	if (runc_config_transform(c.cfg, &x, r) < 0 ||
	    save_config(&c, &r->err) < 0)
		goto out;
	rc = 0;
out:
	free(ca_host);
	ctx_fini(&c);
	return rc;
}
