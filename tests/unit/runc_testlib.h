/*
 * runc_testlib.h - helpers shared by the egress-runc suites (check_runc.c,
 * check_runc_exec.c): a temporary directory per test, copies of the sample
 * bundles of fixtures/runc/, a read-only bundle, and a fake dockerd.
 */
#ifndef EGRESS_TESTS_RUNC_TESTLIB_H
#define EGRESS_TESTS_RUNC_TESTLIB_H

#include <pthread.h>
#include <sys/types.h>

#define RT_ID64 \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The test's directory, made by rt_setup, removed by rt_teardown. */
extern char rt_tmpdir[64];

void rt_setup(void);
void rt_teardown(void);
/* Path of name under the test's directory (static slot 0-7). */
const char *rt_path(int slot, const char *name);
/* Contents of path (asserted readable); caller frees. */
char *rt_slurp(const char *path);
void rt_spit(const char *path, const char *text, mode_t mode);
/* s with every @BUNDLE@ replaced by bundle; caller frees. */
char *rt_subst_bundle(const char *s, const char *bundle);
/* fixtures/runc/<fixture>/<file> in the source tree (static). */
const char *rt_fixture_path(const char *fixture, const char *file);
/*
 * Copies fixtures/runc/<fixture> to <tmpdir>/<name> (symlinks kept), fills
 * in @BUNDLE@ in its config.json and makes that 0640; returns the copy's
 * path (static).
 */
const char *rt_copy_fixture(const char *fixture, const char *name);
/* The test CA, fixtures/runc/ca/ca.pem (static). */
const char *rt_ca_path(void);
/*
 * Makes dir read-only for this process: as root (whom permission bits do
 * not stop) with a read-only bind mount in a private mount namespace, so
 * call it in a child; otherwise with chmod.  Returns 0, or -1.
 */
int rt_make_readonly(const char *dir);

/* A fake dockerd: answers one request on a unix socket, or hangs. */
struct rt_fake_docker {
	char path[108];
	int lfd;
	const char *answer; /* NULL: accept, read, never answer */
	char request[2048];
	pthread_t th;
};

#define RT_DOCKER_OK                                     \
	"HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\n"       \
	"Content-Type: application/json\r\n\r\n"         \
	"[{\"Id\":\"" RT_ID64 "\",\"Names\":[\"/app\"]," \
	"\"Image\":\"tools-preset:latest\",\"ImageID\":\"sha256:00\"}]\n"

/* Starts the fake dockerd on <tmpdir>/docker.sock; answer NULL: hang 1 s. */
void rt_fake_docker_start(struct rt_fake_docker *f, const char *answer);
/* Waits for its one connection to end; f->request holds what it got. */
void rt_fake_docker_stop(struct rt_fake_docker *f);

#endif /* EGRESS_TESTS_RUNC_TESTLIB_H */
