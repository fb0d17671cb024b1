/*
 * runc_exec.c - finding the real runc, cleaning the environment handed to
 * it, and the wrapper's messages.
 */
#include "runc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* An executable regular file that is not the wrapper. */
static bool usable(const char *path, const struct stat *self)
{
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
	    access(path, X_OK) < 0)
		return false;
	return !self || !same_file(&st, self);
}

char *runc_find_real(const char *configured, const char *path_env,
		     const struct stat *self, const char *self_dir,
		     struct strbuf *err)
{
	char *dirs, *save = NULL;

	if (configured) {
		struct stat st;

		if (configured[0] == '/' && stat(configured, &st) == 0 &&
		    self && same_file(&st, self))
			strbuf_addf(err,
				    "runc=%s is this wrapper; searching PATH "
				    "instead",
				    configured);
		else if (configured[0] == '/' && usable(configured, self))
			return util_xstrdup(configured);
		else
			strbuf_addf(err,
				    "runc=%s is not an executable file; "
				    "searching PATH instead",
				    configured);
	}
	/*
	 * Without knowing which file the wrapper is, any `runc` on PATH may
	 * be the wrapper itself, and exec'ing it would loop forever.
	 */
	if (!self) {
		if (err->len)
			strbuf_adds(err, "; ");
		strbuf_adds(err, "cannot identify the wrapper's own file "
				 "(/proc/self/exe), so cannot search PATH");
		return NULL;
	}
	if (!path_env)
		path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
			   "/sbin:/bin";
	dirs = util_xstrdup(path_env);
	for (char *d = strtok_r(dirs, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		char *cand;

		/* A relative entry would run whatever is in the cwd. */
		if (d[0] != '/')
			continue;
		if (asprintf(&cand, "%s/runc", d) < 0)
			abort();
		if (usable(cand, self)) {
			free(dirs);
			return cand;
		}
		free(cand);
	}
	free(dirs);
	if (self_dir) {
		char *cand;

		if (asprintf(&cand, "%s/runc.real", self_dir) < 0)
			abort();
		if (usable(cand, self))
			return cand;
		free(cand);
	}
	if (err->len)
		strbuf_adds(err, "; ");
	strbuf_adds(err, "no runc found on PATH other than this wrapper, and "
			 "no runc.real next to it (set runc= in the config)");
	return NULL;
}

char **runc_env_strip(char *const *envp)
{
	size_t n = 0, k = 0;
	char **out;

	while (envp[n])
		n++;
	out = util_xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		if (strncmp(envp[i], RUNC_ENV_PREFIX,
			    strlen(RUNC_ENV_PREFIX)) != 0)
			out[k++] = envp[i];
	out[k] = NULL;
	return out;
}

void runc_report(const char *log_path, bool to_stderr, const char *line)
{
	struct strbuf sb = { 0 };

	if (to_stderr) {
		strbuf_addf(&sb, "egress-runc: %s\n", line);
		/* One write, so that concurrent runs do not interleave. */
		if (write(STDERR_FILENO, sb.buf, sb.len) < 0) {
			/* nothing to do: stderr is gone */
		}
		strbuf_reset(&sb);
	}
	if (log_path) {
		char ts[32];
		struct tm tm;
		time_t now = time(NULL);
		int fd = open(log_path,
			      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
				      O_NOCTTY | O_NONBLOCK,
			      0640);

		if (fd < 0)
			goto out;
		gmtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		strbuf_addf(&sb, "%s egress-runc[%ld]: %s\n", ts,
			    (long)getpid(), line);
		if (write(fd, sb.buf, sb.len) < 0) {
			/* the log must never stop a container */
		}
		close(fd);
	}
out:
	strbuf_fini(&sb);
}
