/*
 * runc_testlib.c - helpers shared by the egress-runc suites.
 */
#include "runc_testlib.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "suites.h"
#include "util.h"

/* ---- temporary directories and fixture copies ---- */

char rt_tmpdir[64];

void rt_setup(void)
{
	strcpy(rt_tmpdir, "/tmp/egress-runc-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(rt_tmpdir));
}

void rt_teardown(void)
{
	char cmd[256];

	/* Bundles made read-only by a test must be removable again. */
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s 2>/dev/null; rm -rf %s",
		 rt_tmpdir, rt_tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "check_runc: cannot remove %s\n", rt_tmpdir);
}

/* Path of name under the test's directory (static slot). */
const char *rt_path(int slot, const char *name)
{
	static char buf[8][512];

	snprintf(buf[slot], sizeof(buf[slot]), "%s/%s", rt_tmpdir, name);
	return buf[slot];
}

char *rt_slurp(const char *path)
{
	char *s = util_read_file(path, NULL);

	ck_assert_msg(s != NULL, "cannot read %s: %s", path, strerror(errno));
	return s;
}

void rt_spit(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_msg(fd >= 0, "cannot create %s", path);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(path, mode);
}

/* Replaces every @BUNDLE@ in s with bundle. */
char *rt_subst_bundle(const char *s, const char *bundle)
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
const char *rt_fixture_path(const char *fixture, const char *file)
{
	static char p[1024];
	char rel[256];

	snprintf(rel, sizeof(rel), "fixtures/runc/%s/%s", fixture, file);
	snprintf(p, sizeof(p), "%s", test_srcpath(rel));
	return p;
}

/*
 * Copies fixtures/runc/<fixture> to <rt_tmpdir>/<name> (symlinks kept) and
 * fills in @BUNDLE@ in its config.json; returns the copy's path (static).
 */
const char *rt_copy_fixture(const char *fixture, const char *name)
{
	static char dst[512];
	char cmd[1536], cfg[600], *text, *out;
	struct stat st;

	snprintf(dst, sizeof(dst), "%s/%s", rt_tmpdir, name);
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'",
		 rt_fixture_path(fixture, ""), dst);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cfg, sizeof(cfg), "%s/config.json", dst);
	if (stat(cfg, &st) == 0) {
		text = rt_slurp(cfg);
		out = rt_subst_bundle(text, dst);
		rt_spit(cfg, out, 0640);
		free(text);
		free(out);
	}
	return dst;
}

const char *rt_ca_path(void)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s", rt_fixture_path("ca", "ca.pem"));
	return p;
}

/*
 * Makes dir read-only for this process: as root (whom permission bits do
 * not stop) with a read-only bind mount in a private mount namespace,
 * otherwise with chmod.  Returns 0, or -1 (message on stderr).
 */
int rt_make_readonly(const char *dir)
{
	if (geteuid() != 0)
		return chmod(dir, 0555);
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(dir, dir, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) <
		    0) {
		perror("rt_make_readonly");
		return -1;
	}
	return 0;
}

static void *rt_fake_docker_main(void *arg)
{
	struct rt_fake_docker *f = arg;
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

void rt_fake_docker_start(struct rt_fake_docker *f, const char *answer)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	memset(f->request, 0, sizeof(f->request));
	snprintf(f->path, sizeof(f->path), "%s/docker.sock", rt_tmpdir);
	unlink(f->path);
	memcpy(sun.sun_path, f->path, strlen(f->path) + 1);
	f->answer = answer;
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(f->lfd, 0);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(f->lfd, 4), 0);
	ck_assert_int_eq(pthread_create(&f->th, NULL, rt_fake_docker_main, f),
			 0);
}

void rt_fake_docker_stop(struct rt_fake_docker *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->path);
}
