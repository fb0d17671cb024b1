/*
 * sim_ns.c - network namespaces, cgroups and the world's names.
 *
 * Named network namespaces follow iproute2's convention (a bind mount of
 * the namespace at /run/netns/NAME), so `ip netns`, `nsenter --net=` and
 * dockerd all find them.  /run/netns itself is not made a shared mount
 * point: nothing here needs the propagation, and a world leaves no mount
 * behind once it is down.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "sim.h"
#include "util.h"

const char *sim_bridge_name(enum sim_bridge b)
{
	return b == SIM_BRSIM1 ? "br-sim1" : "docker0";
}

bool sim_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > SIM_NAME_MAX || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
			return false;
	return true;
}

bool sim_check_name(const char *name)
{
	if (sim_name_ok(name))
		return true;
	fprintf(stderr,
		"egress-sim: '%s' is not a world name (1-%d of a-z, "
		"0-9, -)\n",
		name, SIM_NAME_MAX);
	return false;
}

int sim_world_paths(struct sim_world *w, const char *name)
{
	const char *cg = cgroup_v2_mount();

	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	snprintf(w->state, sizeof(w->state), "%s/%s", SIM_STATE_ROOT, name);
	snprintf(w->netns_host, sizeof(w->netns_host), "esim-%s-host", name);
	snprintf(w->netns_inet, sizeof(w->netns_inet), "esim-%s-inet", name);
	snprintf(w->cgroup_rel, sizeof(w->cgroup_rel), "/%s/%s",
		 SIM_CGROUP_BASE, name);
	if (!cg) {
		fprintf(stderr, "egress-sim: no cgroup v2 hierarchy is mounted "
				"(see /proc/self/mountinfo)\n");
		return -1;
	}
	snprintf(w->cgroup, sizeof(w->cgroup), "%s%s", cg, w->cgroup_rel);
	w->services_pid = -1;
	w->dockerd_pid = -1;
	return 0;
}

static void netns_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", SIM_NETNS_DIR, name);
}

bool sim_netns_exists(const char *name)
{
	char p[PATH_MAX];

	netns_path(p, sizeof(p), name);
	return access(p, F_OK) == 0;
}

int sim_netns_create(const char *name)
{
	char p[PATH_MAX];
	pid_t pid;
	int fd, status;

	if (mkdir(SIM_NETNS_DIR, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "egress-sim: mkdir %s: %s\n", SIM_NETNS_DIR,
			strerror(errno));
		return -1;
	}
	netns_path(p, sizeof(p), name);
	fd = open(p, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "egress-sim: %s: %s\n", p, strerror(errno));
		return -1;
	}
	close(fd);
	/* A child makes the namespace and pins it with a bind mount; the
	 * caller's own network namespace is never changed. */
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0 ||
		    mount("/proc/self/ns/net", p, "none", MS_BIND, NULL) < 0) {
			fprintf(stderr, "egress-sim: netns %s: %s\n", name,
				strerror(errno));
			_exit(1);
		}
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		unlink(p);
		return -1;
	}
	return 0;
}

int sim_netns_open(const char *name)
{
	char p[PATH_MAX];

	netns_path(p, sizeof(p), name);
	return open(p, O_RDONLY | O_CLOEXEC);
}

int sim_netns_delete(const char *name)
{
	char p[PATH_MAX];

	netns_path(p, sizeof(p), name);
	if (access(p, F_OK) < 0)
		return 0;
	if (umount2(p, MNT_DETACH) < 0 && errno != EINVAL) {
		fprintf(stderr, "egress-sim: umount %s: %s\n", p,
			strerror(errno));
		return -1;
	}
	if (unlink(p) < 0 && errno != ENOENT) {
		fprintf(stderr, "egress-sim: unlink %s: %s\n", p,
			strerror(errno));
		return -1;
	}
	return 0;
}

int sim_in_netns(int nsfd, int (*fn)(void *), void *arg)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int rc;

	if (self < 0)
		return -1;
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "egress-sim: setns: %s\n", strerror(errno));
		close(self);
		return -1;
	}
	rc = fn(arg);
	if (setns(self, CLONE_NEWNET) < 0) {
		/* never go on inside a world's namespace by accident */
		fprintf(stderr,
			"egress-sim: cannot return to the original "
			"network namespace: %s\n",
			strerror(errno));
		abort();
	}
	close(self);
	return rc;
}

struct sysctl_arg {
	const char *path, *value;
};

static int sysctl_here(void *arg)
{
	const struct sysctl_arg *a = arg;
	int fd = open(a->path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "egress-sim: %s: %s\n", a->path,
			strerror(errno));
		return -1;
	}
	n = write(fd, a->value, strlen(a->value));
	close(fd);
	return n == (ssize_t)strlen(a->value) ? 0 : -1;
}

int sim_sysctl_in(int nsfd, const char *path, const char *value)
{
	struct sysctl_arg a = { path, value };

	/* /proc/sys/net shows the namespace of whoever opens the file */
	return sim_in_netns(nsfd, sysctl_here, &a);
}

int sim_mkdir_p(const char *path, unsigned mode)
{
	if (util_mkdir_p(path, mode) == 0)
		return 0;
	fprintf(stderr, "egress-sim: mkdir %s: %s\n", path, strerror(errno));
	return -1;
}

int sim_cgroup_mkdir(const char *path)
{
	return sim_mkdir_p(path, 0755);
}

int sim_cgroup_enter(const char *path, int pid)
{
	char p[PATH_MAX], v[32];
	int fd, n;

	snprintf(p, sizeof(p), "%s/cgroup.procs", path);
	n = snprintf(v, sizeof(v), "%d", pid ? pid : getpid());
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, v, (size_t)n) != n) {
		fprintf(stderr, "egress-sim: join %s: %s\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static bool cgroup_empty(const char *path)
{
	char p[PATH_MAX], buf[64];
	int fd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/cgroup.procs", path);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n <= 0;
}

/* Kills the processes of one cgroup (cgroup.kill, else SIGKILL each). */
static void cgroup_kill(const char *path)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/cgroup.kill", path);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) == 1) {
			close(fd);
			return;
		}
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/cgroup.procs", path);
	FILE *f = fopen(p, "r");
	int pid;
	while (f && fscanf(f, "%d", &pid) == 1)
		kill(pid, SIGKILL);
	if (f)
		fclose(f);
}

int sim_cgroup_destroy(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL) {
		char child[PATH_MAX];
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
		rc |= sim_cgroup_destroy(child);
	}
	closedir(d);
	cgroup_kill(path);
	for (int i = 0; i < 500 && !cgroup_empty(path); i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (rmdir(path) < 0 && errno != ENOENT) {
		fprintf(stderr, "egress-sim: rmdir %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return rc;
}

/*
 * Calls fn for every mount in /proc/self/mountinfo: its mount point and
 * file system type (octal escapes in the mount point are decoded).
 */
static void for_each_mount(void (*fn)(const char *point, const char *fstype,
				      const char *root, void *arg),
			   void *arg)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char *line = NULL;
	size_t cap = 0;

	while (f && getline(&line, &cap, f) > 0) {
		char root[PATH_MAX], point[PATH_MAX], fstype[64], out[PATH_MAX];
		char *sep = strstr(line, " - ");
		size_t o = 0;
		if (!sep ||
		    sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) !=
			    2 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		for (size_t i = 0; point[i] && o + 1 < sizeof(out); i++) {
			if (point[i] == '\\' && point[i + 1] && point[i + 2] &&
			    point[i + 3]) {
				out[o++] = (char)(((point[i + 1] - '0') << 6) |
						  ((point[i + 2] - '0') << 3) |
						  (point[i + 3] - '0'));
				i += 3;
			} else {
				out[o++] = point[i];
			}
		}
		out[o] = '\0';
		fn(out, fstype, root, arg);
	}
	free(line);
	if (f)
		fclose(f);
}

struct cg_arg {
	const char *rel;
	bool rmdir_only; /* just rmdir (if empty), no kill, no recursion */
	int rc;
};

static void destroy_in(const char *point, const char *fstype, const char *root,
		       void *arg)
{
	struct cg_arg *a = arg;
	char p[PATH_MAX];

	if ((strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0) ||
	    strcmp(root, "/") != 0)
		return;
	snprintf(p, sizeof(p), "%s%s", point, a->rel);
	if (a->rmdir_only)
		rmdir(p);
	else
		a->rc |= sim_cgroup_destroy(p);
}

int sim_cgroup_destroy_everywhere(const char *rel)
{
	struct cg_arg a = { rel, false, 0 };

	for_each_mount(destroy_in, &a);
	return a.rc;
}

void sim_cgroup_rmdir_everywhere(const char *rel)
{
	struct cg_arg a = { rel, true, 0 };

	for_each_mount(destroy_in, &a);
}

struct below_arg {
	const char *dir;
	char **v;
	size_t n;
};

static void collect_below(const char *point, const char *fstype UNUSED,
			  const char *root UNUSED, void *arg)
{
	struct below_arg *a = arg;
	size_t len = strlen(a->dir);

	if (strncmp(point, a->dir, len) == 0 &&
	    (point[len] == '/' || point[len] == '\0')) {
		a->v = util_xrealloc(a->v, (a->n + 1) * sizeof(*a->v));
		a->v[a->n++] = util_xstrdup(point);
	}
}

static int by_length_desc(const void *x, const void *y)
{
	size_t a = strlen(*(char *const *)x), b = strlen(*(char *const *)y);

	return a < b ? 1 : a > b ? -1 : 0;
}

int sim_umount_below(const char *dir)
{
	struct below_arg a = { dir, NULL, 0 };
	int rc = 0;

	for_each_mount(collect_below, &a);
	qsort(a.v, a.n, sizeof(*a.v), by_length_desc);
	for (size_t i = 0; i < a.n; i++) {
		if (umount2(a.v[i], MNT_DETACH) < 0 && errno != EINVAL &&
		    errno != ENOENT) {
			fprintf(stderr, "egress-sim: umount %s: %s\n", a.v[i],
				strerror(errno));
			rc = -1;
		}
		free(a.v[i]);
	}
	free(a.v);
	return rc;
}

bool sim_have_command(const char *cmd)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(cmd, '/'))
		return access(cmd, X_OK) == 0;
	for (const char *p = path ? path : "/usr/bin:/bin"; p && *p;) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, cmd);
		if (access(buf, X_OK) == 0)
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}
