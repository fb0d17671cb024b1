/*
 * cgroup.h - cgroup v2 helpers shared by the BPF loader and attribution:
 * where the v2 hierarchy is mounted, a directory's cgroup id, and the v2
 * path of a process.
 */
#ifndef EGRESS_CGROUP_H
#define EGRESS_CGROUP_H

#include <stdint.h>

#include "cdefs.h"

/*
 * The cgroup v2 mount point, from /proc/self/mountinfo (never hard-coded:
 * hybrid hosts mount it at /sys/fs/cgroup/unified).  Static storage,
 * computed once; NULL when no v2 hierarchy is mounted.
 */
const char *cgroup_v2_mount(void);

/*
 * The cgroup id of the cgroup v2 directory at path: the 64-bit kernfs id
 * that bpf_get_current_cgroup_id() returns, obtained as the kernel's file
 * handle of the directory (name_to_handle_at), as systemd and bpftool do.
 * Returns 0 or -errno.
 */
int cgroup_id(const char *path, uint64_t *id) NONNULL(1, 2) WUNRES;

/* The same for an open directory fd. */
int cgroup_id_fd(int fd, uint64_t *id) NONNULL(2) WUNRES;

/*
 * The cgroup v2 path of process pid ("/a/b", relative to the v2 mount) read
 * from PROC_ROOT/PID/cgroup: the path of the "0::" line.  Returns a string
 * the caller frees, or NULL with errno set (ENOENT: no such process or no
 * v2 line).
 */
char *cgroup_of_pid(const char *proc_root, int pid) NONNULL(1) WUNRES;

#endif /* EGRESS_CGROUP_H */
