/*
 * bpfload.c - open -> configure -> load -> attach -> pin for the egress
 * BPF object, re-attachment after a crash, and cleanup.
 *
 * Pin directory layout (names fixed, so cleanup removes exactly these):
 *   link_<hook>   one bpf_link per program, attached to the cgroup
 *   map_conn4     the 5-tuple map, map_cookie the cookie map
 * A pinned link keeps its program attached with no process holding it;
 * that is what keeps the blocks in place after a daemon crash.
 */
#include "bpfload.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "util.h"

/* bpftool's generated skeleton casts away const; not our code to fix */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include "egress.skel.h"
#pragma GCC diagnostic pop

#include "egress.h"

/* What a program is for; it is loaded if any of its purposes is wanted. */
enum prog_kind { PK_ATTRIB = 1, PK_IPV6 = 2, PK_RAW = 4 };

/*
 * Attachment order matters on a first attach: connect4 fills the cookie
 * map that sockops and the skb program read, so it goes first.
 */
static const struct {
	const char *prog; /* program name in the object */
	const char *pin; /* link pin name */
	unsigned kind; /* enum prog_kind bits */
} progs[] = {
	{ "egress_connect4", "link_connect4", PK_ATTRIB },
	{ "egress_sockops", "link_sockops", PK_ATTRIB },
	/* also refuses IPv4-mapped sends of AF_INET6 sockets */
	{ "egress_sendmsg4", "link_sendmsg4", PK_ATTRIB | PK_IPV6 },
	{ "egress_skb", "link_skb_egress", PK_ATTRIB },
	{ "egress_connect6", "link_connect6", PK_IPV6 },
	{ "egress_sendmsg6", "link_sendmsg6", PK_IPV6 },
	{ "egress_sock_create", "link_sock_create", PK_RAW },
};
#define NPROGS ARRAY_SIZE(progs)

static const struct {
	const char *map;
	const char *pin;
} maps[BPFLOAD_MAP_MAX] = {
	[BPFLOAD_MAP_CONN4] = { "egress_conn4", "map_conn4" },
	[BPFLOAD_MAP_COOKIE] = { "egress_cookie", "map_cookie" },
};

struct bpfload {
	struct egress_bpf *skel;
	char *cgroup;
	char *pin_dir;
	struct bpf_program *prog[NPROGS]; /* NULL: left out */
	struct bpf_link *link[NPROGS];
	bool map_reused[BPFLOAD_MAP_MAX];
};

static void PRINTF(2, 3) bl_warnx(const char *fn, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bpfload: %s: ", fn);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* libbpf's own messages: warnings always, the rest with EGRESS_BPF_DEBUG. */
static int bl_libbpf_print(enum libbpf_print_level level, const char *fmt,
			   va_list ap)
{
	if (level != LIBBPF_WARN && !getenv("EGRESS_BPF_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int pin_path(char *buf, size_t n, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, n, "%s/%s", dir, name) >= n)
		return -ENAMETOOLONG;
	return 0;
}

const char *bpfload_link_pin(unsigned i)
{
	return i < NPROGS ? progs[i].pin : NULL;
}

static bool kind_wanted(const struct bpfload_opts *o, unsigned kind)
{
	return ((kind & PK_ATTRIB) && !o->no_attrib) ||
	       ((kind & PK_IPV6) && !o->no_block_ipv6) ||
	       ((kind & PK_RAW) && !o->no_block_raw);
}

/*
 * Reuses the map pinned under pin_dir if its definition matches the one
 * about to be created (type, key, value, size); an incompatible pin is
 * left for bpfload_attach() to replace.
 */
static int reuse_pinned_map(struct bpfload *b, enum bpfload_map m)
{
	struct bpf_map *map =
		bpf_object__find_map_by_name(b->skel->obj, maps[m].map);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd, err;

	if (!map)
		return -ENOENT;
	err = pin_path(path, sizeof(path), b->pin_dir, maps[m].pin);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err == 0 && info.type == bpf_map__type(map) &&
	    info.key_size == bpf_map__key_size(map) &&
	    info.value_size == bpf_map__value_size(map) &&
	    info.max_entries == bpf_map__max_entries(map)) {
		err = bpf_map__reuse_fd(map, fd);
		if (err == 0)
			b->map_reused[m] = true;
	} else {
		err = 0; /* replaced after attach */
	}
	close(fd);
	return err;
}

/* Open and configure; task_start selects the start-time read (see BPF). */
static int bl_open_one(struct bpfload *b, const struct bpfload_opts *o,
		       bool task_start)
{
	unsigned entries = o->map_entries ? o->map_entries :
					    EGRESS_MAP_ENTRIES_DEFAULT;
	int err;

	b->skel = egress_bpf__open();
	if (!b->skel)
		return -errno;
	b->skel->rodata->cfg_attrib = !o->no_attrib;
	b->skel->rodata->cfg_block_ipv6 = !o->no_block_ipv6;
	b->skel->rodata->cfg_block_raw = !o->no_block_raw;
	b->skel->rodata->cfg_task_start = task_start;
	b->skel->rodata->cfg_own_mark = o->own_mark & o->own_mask;
	b->skel->rodata->cfg_own_mask = o->own_mask;
	for (size_t i = 0; i < NPROGS; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(
			b->skel->obj, progs[i].prog);
		if (!p)
			return -ENOENT;
		if (!kind_wanted(o, progs[i].kind)) {
			bpf_program__set_autoload(p, false);
			p = NULL;
		}
		b->prog[i] = p;
	}
	for (int m = 0; m < BPFLOAD_MAP_MAX; m++) {
		struct bpf_map *map =
			bpf_object__find_map_by_name(b->skel->obj, maps[m].map);
		if (!map)
			return -ENOENT;
		err = bpf_map__set_max_entries(map, entries);
		if (err)
			return err;
		b->map_reused[m] = false;
		if (b->pin_dir && (err = reuse_pinned_map(b, m)) < 0)
			return err;
	}
	return egress_bpf__load(b->skel);
}

/* bl_open_one, without the start-time read if the kernel refuses it. */
static int bl_open_any(struct bpfload *b, const struct bpfload_opts *o)
{
	int err = bl_open_one(b, o, true);

	if (err == -EPERM || err == -EINVAL || err == -EACCES) {
		/* a kernel that does not give cgroup programs the current
		 * task: load without the start-time read */
		egress_bpf__destroy(b->skel);
		b->skel = NULL;
		err = bl_open_one(b, o, false);
	}
	return err;
}

int bpfload_open(const struct bpfload_opts *o, bpfload_t **out)
{
	struct bpfload *b;
	int err;

	libbpf_set_print(bl_libbpf_print);
	b = util_xcalloc(1, sizeof(*b));
	/* the default is the whole machine, as the reference does; tests
	 * always name a world's cgroup */
	if (o->cgroup)
		b->cgroup = util_xstrdup(o->cgroup);
	else if (cgroup_v2_mount())
		b->cgroup = util_xstrdup(cgroup_v2_mount());
	b->pin_dir = o->pin_dir ? util_xstrdup(o->pin_dir) : NULL;
	err = bl_open_any(b, o);
	if ((err == -EPERM || err == -EINVAL || err == -EACCES) &&
	    o->own_mask) {
		/* a verifier that refuses reading a socket's mark: the
		 * daemon's own sockets are recorded too, as before */
		struct bpfload_opts all = *o;

		all.own_mark = all.own_mask = 0;
		egress_bpf__destroy(b->skel);
		b->skel = NULL;
		err = bl_open_any(b, &all);
		if (err == 0)
			bl_warnx(__func__, "this kernel refuses reading a "
					   "socket's mark: the daemon's own "
					   "sockets are recorded too");
	}
	if (err) {
		bl_warnx(__func__, "cannot load the BPF object: %s",
			 strerror(-err));
		bpfload_free(b);
		return err;
	}
	*out = b;
	return 0;
}

int bpfload_map_fd(const bpfload_t *b, enum bpfload_map m)
{
	struct bpf_map *map;

	if (m >= BPFLOAD_MAP_MAX)
		return -EINVAL;
	map = bpf_object__find_map_by_name(b->skel->obj, maps[m].map);
	return map ? bpf_map__fd(map) : -ENOENT;
}

/*
 * Takes over the link pinned at path if it is the same hook on the same
 * cgroup, switching it to prog atomically (BPF_LINK_UPDATE).  Returns 1
 * and *out when it did, 0 when there is no usable pin (none, or one left
 * defunct by a removed cgroup: unpinned here), -errno otherwise.
 */
static int take_over_link(const char *path, struct bpf_program *prog,
			  uint64_t cgid, struct bpf_link **out)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	struct bpf_link *link;
	int err;

	if (access(path, F_OK) < 0)
		return errno == ENOENT ? 0 : -errno;
	link = bpf_link__open(path);
	if (!link)
		return -errno;
	err = bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len);
	if (err) {
		err = -errno;
		goto fail;
	}
	if (info.type != BPF_LINK_TYPE_CGROUP ||
	    info.cgroup.attach_type !=
		    bpf_program__expected_attach_type(prog)) {
		err = -EEXIST;
		goto fail;
	}
	if (info.cgroup.cgroup_id == 0) {
		/* the cgroup was removed and the kernel auto-detached it */
		unlink(path);
		bpf_link__destroy(link);
		return 0;
	}
	if (info.cgroup.cgroup_id != cgid) {
		bl_warnx(__func__,
			 "%s is attached to another cgroup (id %llu); "
			 "detach it first",
			 path, (unsigned long long)info.cgroup.cgroup_id);
		err = -EEXIST;
		goto fail;
	}
	err = bpf_link__update_program(link, prog);
	if (err)
		goto fail;
	*out = link;
	return 1;
fail:
	bpf_link__destroy(link);
	return err;
}

/*
 * Pins map m, replacing an old pin atomically (bpffs supports rename; it
 * refuses names with a dot, hence "map_tmp").
 */
static int pin_map(struct bpfload *b, enum bpfload_map m)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd = bpfload_map_fd(b, m), err;

	if (fd < 0)
		return fd;
	if ((err = pin_path(path, sizeof(path), b->pin_dir, maps[m].pin)) ||
	    (err = pin_path(tmp, sizeof(tmp), b->pin_dir, "map_tmp")))
		return err;
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp) < 0)
		return -errno;
	if (rename(tmp, path) < 0) {
		err = -errno;
		unlink(tmp);
		return err;
	}
	return 0;
}

int bpfload_attach(bpfload_t *b)
{
	bool created[NPROGS] = { false };
	const char *what = b->cgroup;
	char path[PATH_MAX];
	uint64_t cgid;
	size_t i;
	int cgfd, err = 0;

	if (!b->cgroup)
		return -EINVAL;
	cgfd = open(b->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0 || (err = cgroup_id_fd(cgfd, &cgid)) < 0) {
		err = cgfd < 0 ? -errno : err;
		bl_warnx(__func__, "%s: not a cgroup v2 directory: %s",
			 b->cgroup, strerror(-err));
		goto out;
	}
	for (i = 0; i < NPROGS; i++) {
		if (!b->prog[i])
			continue;
		what = progs[i].prog;
		if (b->pin_dir) {
			err = pin_path(path, sizeof(path), b->pin_dir,
				       progs[i].pin);
			if (!err)
				err = take_over_link(path, b->prog[i], cgid,
						     &b->link[i]);
			if (err < 0)
				goto fail;
			if (err == 1)
				continue;
		}
		b->link[i] = bpf_program__attach_cgroup(b->prog[i], cgfd);
		if (!b->link[i]) {
			err = -errno;
			goto fail;
		}
		created[i] = true;
		if (b->pin_dir && (err = bpf_link__pin(b->link[i], path)) < 0)
			goto fail;
	}
	for (int m = 0; b->pin_dir && m < BPFLOAD_MAP_MAX; m++) {
		what = maps[m].map;
		if (!b->map_reused[m] && (err = pin_map(b, m)) < 0)
			goto fail;
	}
	err = 0;
	goto out;
fail:
	bl_warnx(__func__, "%s (cgroup %s, pins %s): %s", what, b->cgroup,
		 b->pin_dir ? b->pin_dir : "none", strerror(-err));
	for (i = 0; i < NPROGS; i++) {
		if (!created[i])
			continue;
		bpf_link__unpin(b->link[i]);
		bpf_link__destroy(b->link[i]);
		b->link[i] = NULL;
	}
out:
	if (cgfd >= 0)
		close(cgfd);
	return err;
}

void bpfload_free(bpfload_t *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < NPROGS; i++) {
		if (!b->link[i])
			continue;
		/* a pinned link outlives us; an unpinned one detaches */
		if (bpf_link__pin_path(b->link[i]))
			bpf_link__disconnect(b->link[i]);
		bpf_link__destroy(b->link[i]);
	}
	egress_bpf__destroy(b->skel);
	free(b->cgroup);
	free(b->pin_dir);
	free(b);
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int mount_bpffs(const char *dir)
{
	if (mount("bpf", dir, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0700") < 0) {
		int err = -errno;
		bl_warnx("bpfload_pin_dir_prepare", "mount bpffs on %s: %s",
			 dir, strerror(-err));
		return err;
	}
	return 0;
}

int bpfload_pin_dir_prepare(const char *pin_dir)
{
	char parent[PATH_MAX], *slash;
	struct stat st;

	if (on_bpffs(pin_dir))
		return 0;
	if (stat(pin_dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		return mount_bpffs(pin_dir);
	}
	if (errno != ENOENT)
		return -errno;
	snprintf(parent, sizeof(parent), "%s", pin_dir);
	slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else
		*(slash == parent ? slash + 1 : slash) = '\0';
	if (!on_bpffs(parent) && strcmp(parent, BPFLOAD_BPFFS) == 0) {
		/* the conventional mount point, not mounted on this machine */
		int err = mount_bpffs(BPFLOAD_BPFFS);
		if (err)
			return err;
	}
	if (mkdir(pin_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return on_bpffs(pin_dir) ? 0 : mount_bpffs(pin_dir);
}

/* Is dir empty but for the iterators a fresh bpffs instance holds? */
static bool pin_dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return false;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, "maps.debug") &&
		    strcmp(e->d_name, "progs.debug"))
			empty = false;
	}
	closedir(d);
	return empty;
}

static bool is_mount_point(const char *dir)
{
	char parent[PATH_MAX];
	struct stat a, b;

	snprintf(parent, sizeof(parent), "%s/..", dir);
	return stat(dir, &a) == 0 && stat(parent, &b) == 0 &&
	       a.st_dev != b.st_dev;
}

int bpfload_cleanup(const char *pin_dir)
{
	char path[PATH_MAX];
	int removed = 0, err;

	if (!on_bpffs(pin_dir))
		return access(pin_dir, F_OK) == 0 || errno != ENOENT ?
			       -ENOTDIR :
			       0;
	for (size_t i = 0; i < NPROGS; i++) {
		int fd;

		if ((err = pin_path(path, sizeof(path), pin_dir, progs[i].pin)))
			return err;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		/* detach even if some process still holds the link */
		if (bpf_link_detach(fd) < 0 && errno != EINVAL &&
		    errno != EOPNOTSUPP) {
			err = -errno;
			close(fd);
			bl_warnx(__func__, "detach %s: %s", path,
				 strerror(-err));
			return err;
		}
		close(fd);
		if (unlink(path) < 0)
			return -errno;
		removed++;
	}
	for (int m = 0; m < BPFLOAD_MAP_MAX; m++) {
		if ((err = pin_path(path, sizeof(path), pin_dir, maps[m].pin)))
			return err;
		if (unlink(path) == 0)
			removed++;
	}
	if (pin_path(path, sizeof(path), pin_dir, "map_tmp") == 0)
		unlink(path);
	if (!pin_dir_empty(pin_dir))
		return removed; /* someone else's pins: leave the directory */
	if (is_mount_point(pin_dir)) {
		if (strcmp(pin_dir, BPFLOAD_BPFFS) == 0)
			return removed;
		if (umount2(pin_dir, 0) < 0)
			return -errno;
	}
	if (rmdir(pin_dir) < 0 && errno != ENOENT)
		return -errno;
	return removed;
}

int bpfload_open_pinned_map(const char *pin_dir, enum bpfload_map m)
{
	char path[PATH_MAX];
	int err, fd;

	if (m >= BPFLOAD_MAP_MAX)
		return -EINVAL;
	if ((err = pin_path(path, sizeof(path), pin_dir, maps[m].pin)))
		return err;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}
