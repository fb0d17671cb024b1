/*
 * bpfload.h - loads bpf/egress.bpf.c, attaches it to a cgroup v2 directory
 * and keeps it there: links (and maps) are pinned in a bpffs directory, so
 * the IPv6 and raw-socket blocks stay in place if the daemon dies (fail
 * closed) until bpfload_cleanup() removes exactly what was pinned.
 *
 * Life cycle: bpfload_open() (open, configure, load) -> bpfload_attach()
 * -> ... -> bpfload_free().  Freeing never detaches pinned links; links of
 * a loader without pin_dir go away with it.
 */
#ifndef EGRESS_BPFLOAD_H
#define EGRESS_BPFLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cdefs.h"

/* The conventional bpffs mount point; mounted by us only if it is not. */
#define BPFLOAD_BPFFS "/sys/fs/bpf"
#define BPFLOAD_PIN_DIR_DEFAULT BPFLOAD_BPFFS "/egressd"

struct bpfload_opts {
	const char *cgroup; /* cgroup v2 directory; NULL: the v2 root */
	const char *pin_dir; /* bpffs directory for links and maps, or NULL */
	unsigned map_entries; /* entries of each LRU map; 0: the default */
	bool no_attrib; /* leave the attribution programs out */
	bool no_block_ipv6; /* leave connect6/sendmsg6 out */
	bool no_block_raw; /* leave sock_create out */
	/* Sockets whose mark & own_mask == own_mark (the daemon's own) are
	 * not recorded for attribution; own_mask 0: every socket is. */
	uint32_t own_mark, own_mask;
};

typedef struct bpfload bpfload_t;

/* The maps userspace reads (see bpf/egress.h). */
enum bpfload_map {
	BPFLOAD_MAP_CONN4, /* egress_tuple4 -> egress_owner */
	BPFLOAD_MAP_COOKIE, /* socket cookie -> egress_owner */
	BPFLOAD_MAP_MAX,
};

/*
 * Opens the object, sets its configuration (rodata, map sizes, programs
 * left out), reuses the maps pinned in o->pin_dir when they are compatible
 * (so attribution survives a restart), and loads it.  Nothing is attached
 * yet.  Returns 0 and *out (free with bpfload_free), or -errno after
 * printing why to stderr.  Needs CAP_BPF (root).
 */
int bpfload_open(const struct bpfload_opts *o, bpfload_t **out)
	NONNULL(1, 2) WUNRES;

/*
 * Attaches every loaded program to o->cgroup with a bpf_link.  With a
 * pin_dir, a link already pinned there for the same cgroup and hook (left
 * by a daemon that died) is switched to the new program in place with
 * BPF_LINK_UPDATE, so no moment passes without the hook; other links are
 * created and pinned, and the maps pinned (an incompatible old pin is
 * replaced by rename, atomically).  On failure, links created by this call
 * are removed again.  Returns 0 or -errno (message printed).
 */
int bpfload_attach(bpfload_t *b) NONNULL(1) WUNRES;

/* The fd of a map (owned by b; valid until bpfload_free). */
int bpfload_map_fd(const bpfload_t *b, enum bpfload_map m) NONNULL(1);

/* Releases b (NULL is fine).  Pinned links stay attached. */
void bpfload_free(bpfload_t *b);

/*
 * Makes pin_dir a usable bpffs directory: nothing to do when it is on a
 * bpffs already; mkdir when its parent is; mounts bpffs on /sys/fs/bpf
 * when pin_dir lives directly under that (unmounted) mount point; else
 * creates pin_dir and mounts a private bpffs instance on it.  Mounting is
 * a change to the machine's mount table (not to any network namespace).
 * Returns 0 or -errno (message printed).
 */
int bpfload_pin_dir_prepare(const char *pin_dir) NONNULL(1) WUNRES;

/*
 * Detaches (BPF_LINK_DETACH) and unpins every link this module pins in
 * pin_dir, unpins its maps, then removes pin_dir if nothing else is in it
 * (unmounting it first if it is a bpffs mount of its own, never
 * /sys/fs/bpf itself).  Other files in pin_dir are left alone.  Returns the
 * number of pins removed (0 when there was nothing), or -errno.
 */
int bpfload_cleanup(const char *pin_dir) NONNULL(1) WUNRES;

/*
 * Opens map m pinned in pin_dir (read access is enough for attribution).
 * Returns an fd the caller closes, or -errno.
 */
int bpfload_open_pinned_map(const char *pin_dir, enum bpfload_map m)
	NONNULL(1) WUNRES;

/* The name of link pin i in a pin directory ("link_connect4", ...), or
 * NULL past the last one. */
const char *bpfload_link_pin(unsigned i);

#endif /* EGRESS_BPFLOAD_H */
