/*
 * attrib.h - process attribution: from a connection's IPv4 5-tuple to the
 * process that opened it, through the maps of bpf/egress.bpf.c, with
 * sock_diag as the fallback for sockets the maps do not (yet) name.
 *
 * The record is refused, never guessed, when the PID in the map may now
 * belong to another process: a /proc start time later than the BPF
 * timestamp (or different from the start time BPF read), or a cgroup id
 * that differs from the one BPF saw.  comm is never used (threads rename
 * themselves).
 *
 * Threads: an attrib_t is used by one thread at a time (it owns one
 * netlink socket and its record cache).  All reads are synchronous (/proc,
 * bpf(2), netlink); callers on an event loop should expect tens of
 * microseconds per lookup, a few when the record cache answers.
 *
 * The record cache keeps a validated record per (pid, /proc start time,
 * cgroup id of the entry) for a short time (ATTRIB_CACHE_TTL_MS): a hit
 * still proves the pid's start time, so a reused pid (another start time)
 * never meets an earlier process's record, and an entry naming another
 * cgroup never hits (it is validated afresh).  The proof is a poll(2) of a
 * pidfd kept for the ATTRIB_PIDW_MAX processes validated last (with the
 * real /proc: the process has not exited, so its pid names it still),
 * else a read of /proc/PID/stat.  Within the TTL, a changed cmdline
 * or exe of the same process is not seen yet.
 * The image of a container comes from the dockerimg cache, which never
 * waits for dockerd: a container not in it yet has no image this time.
 */
#ifndef EGRESS_ATTRIB_H
#define EGRESS_ATTRIB_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"
#include "egress.h"

struct dockerimg;

/* Reference §3.5 defaults: the runner's worker and the runner cgroup. */
#define ATTRIB_WORKER_EXE_DEFAULT \
	"/home/runner/actions-runner/cached/bin/Runner.Worker"
#define ATTRIB_RUNNER_CGROUP_DEFAULT \
	"/system.slice/hosted-compute-agent.service"
/* How far up the ancestry the worker is searched (reference §3.5). */
#define ATTRIB_ANCESTRY_MAX 10
/* Record cache defaults: how many processes, for how long. */
#define ATTRIB_CACHE_MAX_DEFAULT 256
#define ATTRIB_CACHE_TTL_MS_DEFAULT 1000
/* pidfds kept per attrib_t (file descriptors: every thread has one). */
#define ATTRIB_PIDW_MAX 32

/* A connection as seen from the client's socket. */
struct attrib_tuple {
	uint32_t saddr; /* network byte order (struct in_addr's s_addr) */
	uint32_t daddr; /* network byte order */
	uint16_t sport; /* host byte order */
	uint16_t dport; /* host byte order */
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
	/* The packet came into the diag netns from another one (it arrived
	 * on an interface other than loopback): no socket of the diag netns
	 * sent it, so sock_diag is not asked and the map entries decide.
	 * Set only when sure; false always asks. */
	bool foreign;
};

/* Which path found the owner. */
enum attrib_via {
	ATTRIB_VIA_EXACT, /* the 5-tuple map, exact tuple */
	ATTRIB_VIA_WILDCARD, /* the 5-tuple map, source address 0.0.0.0 */
	ATTRIB_VIA_DIAG, /* sock_diag's socket cookie -> connect4 map */
	ATTRIB_VIA_MAX,
};

struct attrib_proc {
	int pid;
	char *exe; /* /proc/PID/exe target, NULL if unreadable */
	char **cmdline; /* ncmdline arguments (UTF-8, invalid bytes
			   replaced), NULL if empty */
	size_t ncmdline;
	char *cgroup; /* cgroup v2 path, NULL if unknown */
	char *image; /* Docker image of the container (dockerimg), or NULL */
	char *step; /* GitHub context (reference §3.5), NULL if none */
	char *action;
	enum attrib_via via;
	struct egress_owner owner; /* the map entry behind the record */
};

struct attrib_opts {
	/* Maps: opened from pin_dir if set, else these fds (not owned). */
	const char *pin_dir;
	int conn_map_fd;
	int cookie_map_fd;
	/* Network namespace (a /run/netns/NAME or /proc/PID/ns/net path) in
	 * which sock_diag looks for sockets; NULL: the caller's. */
	const char *diag_netns;
	bool no_diag; /* maps only (benchmarks, tests) */
	const char *proc_root; /* NULL: "/proc" */
	const char *worker_exe; /* NULL: ATTRIB_WORKER_EXE_DEFAULT */
	const char *runner_cgroup; /* NULL: ATTRIB_RUNNER_CGROUP_DEFAULT */
	/* Image names of containers (not owned; shared by every attrib_t,
	 * outlives them); NULL: no image. */
	struct dockerimg *docker;
	/* Record cache: processes kept (0: ATTRIB_CACHE_MAX_DEFAULT) and for
	 * how long (0: ATTRIB_CACHE_TTL_MS_DEFAULT); no_cache: none. */
	size_t cache_max;
	unsigned cache_ttl_ms;
	bool no_cache;
	bool no_pid_watch; /* always read /proc/PID/stat (tests, benches) */
	/* Monotonic clock in seconds for the cache; NULL: util_mono_now
	 * (tests set their own). */
	double (*clock)(void);
};

struct attrib_stats {
	uint64_t cache_hits, cache_misses, diag_queries, diag_skipped;
	uint64_t pid_watch_hits; /* start times proven by a pidfd */
};

typedef struct attrib attrib_t;

/*
 * Opens the maps and the sock_diag socket.  Returns the context (free with
 * attrib_free) or NULL with errno set.
 */
attrib_t *attrib_new(const struct attrib_opts *o) NONNULL(1) WUNRES;
void attrib_free(attrib_t *a);

/*
 * The process behind tuple t.  Looks up the exact tuple, then (UDP) the
 * tuple with source 0.0.0.0; for UDP, and for a TCP miss, asks sock_diag
 * (unless t->foreign) for the socket with exactly this tuple: its cookie confirms a map entry
 * (a stale entry of an earlier socket with the same tuple is ignored) or
 * names the owner through the connect4 cookie map (the host's connected
 * UDP, whose first packet is queued before cgroup_skb/egress runs).
 * Returns 0 and *out (free with attrib_proc_free), or:
 *   -ENOENT  no entry for this tuple
 *   -ESRCH   the process has exited
 *   -ESTALE  the PID now belongs to a process started after the entry
 *   -EXDEV   the process is not in the cgroup BPF saw
 *   other    -errno of bpf(2) or netlink
 * On refusal, *owner_out (optional) receives the entry that was refused.
 */
int attrib_lookup(attrib_t *a, const struct attrib_tuple *t,
		  struct attrib_proc **out, struct egress_owner *owner_out)
	NONNULL(1, 2, 3) WUNRES;

/*
 * Validates owner o against /proc and builds its record (the second half
 * of attrib_lookup; used to list map entries), from the record cache when
 * it holds this process.  Same returns.
 */
int attrib_resolve(attrib_t *a, const struct egress_owner *o,
		   enum attrib_via via, struct attrib_proc **out)
	NONNULL(1, 2, 4) WUNRES;

void attrib_proc_free(struct attrib_proc *p);

/*
 * GitHub context of pid (reference §3.5): if cgroup equals the runner
 * cgroup, finds the first ancestor (at most ATTRIB_ANCESTRY_MAX entries,
 * the process included) whose exe is exactly the worker's; the process
 * just below it is trusted and its GITHUB_ACTION / GITHUB_ACTION_REPOSITORY
 * become *step / *action (NULL when unset or empty; caller frees).
 */
void attrib_github_context(attrib_t *a, int pid, const char *cgroup,
			   char **step, char **action) NONNULL(1, 4, 5);

/*
 * Cookie of the socket the kernel finds for tuple t in the diag netns
 * (sock_diag/inet_diag exact request).  *connected tells whether that
 * socket is connected to t's destination; if not, it is an unconnected
 * UDP socket bound to t's source port (perhaps on every address).
 * Returns 0, -ENOENT, or -errno.
 */
int attrib_diag_cookie(attrib_t *a, const struct attrib_tuple *t,
		       uint64_t *cookie, bool *connected)
	NONNULL(1, 2, 3, 4) WUNRES;

/* Map key for t (network order, zero padding), and back. */
void attrib_key(const struct attrib_tuple *t, struct egress_tuple4 *k)
	NONNULL(1, 2);
void attrib_tuple_of_key(const struct egress_tuple4 *k, struct attrib_tuple *t)
	NONNULL(1, 2);

/* Counters since attrib_new. */
void attrib_get_stats(const attrib_t *a, struct attrib_stats *st) NONNULL(1, 2);

/* Map fds (owned by a). */
int attrib_conn_map_fd(const attrib_t *a) NONNULL(1);

const char *attrib_via_str(enum attrib_via v);
const char *attrib_src_str(uint32_t src); /* enum egress_src */
/* "no entry", "process exited", "pid reused", ... for a lookup error. */
const char *attrib_strerror(int err);

#endif /* EGRESS_ATTRIB_H */
