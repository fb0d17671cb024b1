/*
 * dockerimg.h - Docker container id -> image name, for the `image` field of
 * the log and the policy's `image=` attribute (issue 7; reference §3.4
 * asks dockerd synchronously, which this module never does).
 *
 * One background thread talks to dockerd over its unix socket with
 * HTTP/1.1: after every (re)connection it opens the event stream
 * (`GET /events`, container create/destroy), then lists every container
 * (`GET /containers/json?all=1`) into the cache, then follows the stream.
 * The stream is opened before the list so that nothing happening in
 * between is missed.  When dockerd is absent or goes away, the thread
 * retries with exponential backoff: dockerd may start after egressd.
 *
 * dockerimg_get() only reads the cache under a mutex and never does I/O,
 * so the proxy workers and the UDP thread may call it on their event
 * loops.  On a miss it queues the id for the thread, which asks dockerd
 * with `GET /containers/json?all=1&filters={"id":["<id>"]}` (never
 * `/containers/<id>/json`, which blocks while dockerd holds the container
 * lock during `runc create`), so a later connection finds it.
 */
#ifndef EGRESS_DOCKERIMG_H
#define EGRESS_DOCKERIMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"

#define DOCKERIMG_SOCKET_DEFAULT "/var/run/docker.sock"
#define DOCKERIMG_ID_LEN 64
/* Longest image name kept; dockerd's references are far shorter. */
#define DOCKERIMG_IMAGE_MAX 1024

struct dockerimg_opts {
	const char *socket_path; /* NULL: DOCKERIMG_SOCKET_DEFAULT */
	size_t max_entries; /* cache bound, least recently used out (4096) */
	unsigned backoff_min_ms; /* first retry delay (250) */
	unsigned backoff_max_ms; /* retry delay ceiling (30000) */
	unsigned io_timeout_ms; /* one request and its answer (2000) */
	/* A session that lasted this long resets the backoff (10000): a
	 * dockerd that accepts and drops at once is not retried in a loop. */
	unsigned stable_ms;
	unsigned negative_ttl_ms; /* "no such container" remembered (60000) */
	bool quiet; /* no state messages on stderr (tests) */
};

struct dockerimg_stats {
	uint64_t hits; /* dockerimg_get answered from the cache */
	uint64_t misses; /* dockerimg_get returned NULL */
	uint64_t lookups; /* filtered per-id queries sent to dockerd */
	uint64_t events; /* create/destroy events applied */
	uint64_t connects; /* sessions established (stream + list) */
	uint64_t reconnects; /* connection attempts after the first */
	uint64_t errors; /* I/O, HTTP and JSON errors */
	size_t entries; /* containers with an image in the cache */
	bool connected; /* a session is up now */
};

struct dockerimg;

/*
 * Starts the cache and its thread.  Returns NULL with errno set when the
 * thread cannot start or the socket path does not fit a sockaddr_un; an
 * absent dockerd is not an error.  Free with dockerimg_free.
 */
struct dockerimg *dockerimg_new(const char *socket_path) WUNRES;
struct dockerimg *dockerimg_new_opts(const struct dockerimg_opts *o)
	NONNULL(1) WUNRES;
/* Stops the thread (promptly, even in the middle of a request). */
void dockerimg_free(struct dockerimg *d);

/*
 * The image of container id (64 lowercase hex), as a copy the caller
 * frees, or NULL: unknown yet (the id is then queued for the thread), not
 * a container of this dockerd, or not an id.  Never blocks on I/O; safe
 * from any thread.
 */
char *dockerimg_get(struct dockerimg *d, const char *id) NONNULL(1, 2) WUNRES;

void dockerimg_stats(struct dockerimg *d, struct dockerimg_stats *s)
	NONNULL(1, 2);

/*
 * The container id named by a cgroup v2 path: the last component must be
 * `<64 lowercase hex>` directly under a component named `docker` (the
 * cgroupfs driver, also under a --cgroup-parent: /docker/<id>,
 * /egress-sim/W/docker/<id>) or `docker-<64 lowercase hex>.scope` (the
 * systemd driver).  A cgroup below a container's (/docker/<id>/sub) is not
 * recognised: something inside the container made it (systemd, a nested
 * dockerd) and the outer image need not describe what runs there; no image
 * only makes image= rules not match.  Returns true and fills id.
 */
bool dockerimg_container_id(const char *cgroup_path,
			    char id[DOCKERIMG_ID_LEN + 1]);

#endif /* EGRESS_DOCKERIMG_H */
