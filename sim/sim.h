/*
 * sim.h - egress-sim: a simulated CI runner with Docker, built entirely
 * inside network namespaces and a cgroup v2 directory of its own.
 *
 * A world NAME consists of:
 *   netns esim-NAME-host   the runner: docker0 (172.17.0.1/16), br-sim1
 *                          (172.18.0.1/16, a user-defined network), uplink
 *                          up0 203.0.113.253/30, default route, ip_forward
 *   netns esim-NAME-inet   the "internet": up0 203.0.113.254/30, routes back
 *                          to the bridges, service addresses on lo, and one
 *                          process serving HTTP, HTTPS, DNS, UDP/TCP echo
 *   netns esim-NAME-cK     container K: eth0 on docker0 or br-sim1
 *   cgroup <v2>/egress-sim/NAME/{host,internet,docker/<64 hex>}
 *   state  /run/egress-sim/NAME/ (world.json, test PKI, service config/log)
 * Addresses are namespace-local, so worlds side by side share the plan
 * without colliding; every name (netns, cgroup, state) carries NAME.
 * Nothing is ever created in the machine's own network namespace: links are
 * created inside the world's namespaces through netlink sockets opened there.
 */
#ifndef EGRESS_SIM_H
#define EGRESS_SIM_H

#include <stdbool.h>
#include <stddef.h>

#include "cdefs.h"

#define SIM_STATE_ROOT "/run/egress-sim"
#define SIM_NETNS_DIR "/run/netns"
#define SIM_CGROUP_BASE "egress-sim"
#define SIM_MAX_CONTAINERS 200
#define SIM_NAME_MAX 32

/* The address plan (see above). */
#define SIM_DOCKER0_NET "172.17.0.0/16"
#define SIM_DOCKER0_GW "172.17.0.1"
#define SIM_BRSIM1_NET "172.18.0.0/16"
#define SIM_BRSIM1_GW "172.18.0.1"
#define SIM_UPLINK_HOST "203.0.113.253"
#define SIM_UPLINK_INET "203.0.113.254"
#define SIM_RESOLVER "198.51.100.53"
#define SIM_RESOLVER2 "203.0.113.53"

enum sim_bridge { SIM_DOCKER0, SIM_BRSIM1, SIM_BRIDGE_MAX };

struct sim_container {
	unsigned index;
	enum sim_bridge bridge;
	char id[65]; /* Docker-like 64 hex characters */
	char ip[16]; /* dotted quad */
	char netns[64]; /* netns name */
};

struct sim_world {
	char name[SIM_NAME_MAX + 1];
	char state[256]; /* state directory */
	char cgroup[512]; /* absolute path of the world's cgroup */
	char cgroup_rel[256]; /* the same, relative to the v2 mount */
	char netns_host[64];
	char netns_inet[64];
	struct sim_container containers[SIM_MAX_CONTAINERS];
	unsigned ncontainers;
	int services_pid;
	int dockerd_pid; /* -1: no dockerd (up without --docker) */
	/* dockerd's default runtime: egress-runc at this path, with its
	 * settings in <state>/egress-runc.conf; "" means plain runc */
	char runc_wrapper[512];
	char egress_ca[512]; /* the CA the wrapper injects */
};

const char *sim_bridge_name(enum sim_bridge b);

/* ---- sim_ns.c: namespaces, cgroups, processes ---- */

/* Is name usable for a world ([a-z0-9-], 1..SIM_NAME_MAX, no leading '-')? */
bool sim_name_ok(const char *name) NONNULL(1);
/* sim_name_ok, printing why not. */
bool sim_check_name(const char *name) NONNULL(1);
/* mkdir -p; the last component gets mode.  Prints why on failure. */
int sim_mkdir_p(const char *path, unsigned mode) NONNULL(1) WUNRES;
/* Fills the names and paths of world w from its name (no I/O but the
 * cgroup v2 mount lookup).  Returns 0 or -1 (no cgroup v2 mounted). */
int sim_world_paths(struct sim_world *w, const char *name) NONNULL(1, 2) WUNRES;

int sim_netns_create(const char *name) NONNULL(1) WUNRES;
/* Opens /run/netns/NAME (O_RDONLY|O_CLOEXEC); -1 with errno. */
int sim_netns_open(const char *name) NONNULL(1) WUNRES;
/* Unmounts and removes /run/netns/NAME; 0 if it did not exist. */
int sim_netns_delete(const char *name) NONNULL(1);
bool sim_netns_exists(const char *name) NONNULL(1);

int sim_cgroup_mkdir(const char *path) NONNULL(1) WUNRES;
/* Moves pid (0: the caller) into the cgroup at path. */
int sim_cgroup_enter(const char *path, int pid) NONNULL(1) WUNRES;
/* Kills every process in the cgroup tree at path and removes it, deepest
 * first.  0 if it did not exist. */
int sim_cgroup_destroy(const char *path) NONNULL(1);
/* The same for rel ("/egress-sim/NAME") in every cgroup hierarchy mounted,
 * v2 and v1 (runc creates container cgroups in each v1 hierarchy). */
int sim_cgroup_destroy_everywhere(const char *rel) NONNULL(1);
/* rmdir rel in every cgroup hierarchy where it exists and is empty. */
void sim_cgroup_rmdir_everywhere(const char *rel) NONNULL(1);
/* Unmounts every mount point at or below dir, deepest first. */
int sim_umount_below(const char *dir) NONNULL(1);
/* Is cmd runnable (a path, or found in PATH)? */
bool sim_have_command(const char *cmd) NONNULL(1);

/*
 * Runs fn(arg) with the calling thread in netns nsfd, then returns to the
 * original netns (aborting if that fails: the process must never be left in
 * a world's namespace by accident).
 */
int sim_in_netns(int nsfd, int (*fn)(void *), void *arg) NONNULL(2);

/* Writes value to a /proc/sys file as seen from netns nsfd. */
int sim_sysctl_in(int nsfd, const char *path, const char *value) NONNULL(2, 3);

/* ---- sim_nl.c: links, addresses, routes (libnl-route-3) ---- */

struct nl_sock;
/* A NETLINK_ROUTE socket bound to netns nsfd (NULL on error). */
struct nl_sock *sim_nl_open(int nsfd) WUNRES;
void sim_nl_close(struct nl_sock *sk);

int sim_nl_link_up(struct nl_sock *sk, const char *ifname) NONNULL(1, 2);
int sim_nl_bridge_add(struct nl_sock *sk, const char *ifname) NONNULL(1, 2);
/* A veth pair: `name` in sk's netns, `peer` in netns peer_nsfd. */
int sim_nl_veth_add(struct nl_sock *sk, const char *name, const char *peer,
		    int peer_nsfd) NONNULL(1, 2, 3);
int sim_nl_enslave(struct nl_sock *sk, const char *master, const char *slave)
	NONNULL(1, 2, 3);
/* Adds "a.b.c.d/len" to ifname. */
int sim_nl_addr_add(struct nl_sock *sk, const char *ifname, const char *cidr)
	NONNULL(1, 2, 3);
/* Adds a route to dst ("default" or "a.b.c.d/len") via gw. */
int sim_nl_route_add(struct nl_sock *sk, const char *dst, const char *gw)
	NONNULL(1, 2, 3);

/* ---- sim_certs.c: the world's test PKI ---- */

/* Writes ca.pem/ca.key and the service certificates into dir. */
int sim_certs_create(const char *dir, const char *world) NONNULL(1, 2) WUNRES;

/* ---- sim_world.c ---- */

struct sim_up_opts {
	unsigned containers; /* on docker0 */
	unsigned user_containers; /* on br-sim1 */
	bool docker; /* start dockerd in the host netns */
	/* dockerd's default runtime: egress-runc from this path (NULL: the
	 * egress-runc next to the running egress-sim), or plain runc */
	const char *runc_wrapper;
	bool no_runc_wrapper;
	/* the CA the wrapper injects (NULL: <state>/egressd/ca.pem, where
	 * the tests' egressd publishes it) */
	const char *egress_ca;
};

int sim_up(const char *name, const struct sim_up_opts *o) NONNULL(1, 2);
int sim_down(const char *name) NONNULL(1);
/* Loads world.json of an existing world; -1 (message printed) if none. */
int sim_load(const char *name, struct sim_world *w) NONNULL(1, 2) WUNRES;
/* Adds one container to a running world; prints its index. */
int sim_add_container(const char *name, enum sim_bridge b) NONNULL(1);
int sim_status(const char *name); /* NULL: every world */

#endif /* EGRESS_SIM_H */
