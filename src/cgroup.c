/*
 * cgroup.c - cgroup v2 helpers: mount point, cgroup ids, process paths.
 */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape_octal(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

const char *cgroup_v2_mount(void)
{
	static char mnt[PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (mnt[0])
		return mnt;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return NULL;
	/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE ..."
	 * Only a mount of the hierarchy's root names every cgroup's path. */
	while (getline(&line, &cap, f) > 0) {
		char root[PATH_MAX], point[PATH_MAX];
		const char *sep = strstr(line, " - ");

		if (!sep || strncmp(sep, " - cgroup2 ", 11) != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2)
			continue;
		if (strcmp(root, "/") != 0)
			continue;
		unescape_octal(point);
		snprintf(mnt, sizeof(mnt), "%s", point);
		break;
	}
	free(line);
	fclose(f);
	return mnt[0] ? mnt : NULL;
}

static int handle_id(int dirfd, const char *path, int flags, uint64_t *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h;
	int mnt_id;

	h.fh.handle_bytes = sizeof(uint64_t);
	if (name_to_handle_at(dirfd, path, &h.fh, &mnt_id, flags) < 0)
		return -errno;
	/* kernfs encodes the 64-bit node id as the whole handle */
	if (h.fh.handle_bytes != sizeof(uint64_t))
		return -EINVAL;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

int cgroup_id(const char *path, uint64_t *id)
{
	return handle_id(AT_FDCWD, path, 0, id);
}

int cgroup_id_fd(int fd, uint64_t *id)
{
	return handle_id(fd, "", AT_EMPTY_PATH, id);
}

char *cgroup_of_pid(const char *proc_root, int pid)
{
	char path[PATH_MAX], *text, *line, *save = NULL, *res = NULL;

	snprintf(path, sizeof(path), "%s/%d/cgroup", proc_root, pid);
	text = util_read_file(path, NULL);
	if (!text)
		return NULL;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "0::", 3) == 0) {
			res = util_xstrdup(line + 3);
			break;
		}
	}
	free(text);
	if (!res)
		errno = ENOENT;
	return res;
}
