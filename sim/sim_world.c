/*
 * sim_world.c - bringing a world up and down, and describing it.
 *
 * `up` builds in a fixed order and, if any step fails, runs `down`, so a
 * failed `up` leaves nothing behind.  `down` works from the world's name
 * alone (namespace names, cgroup path and state directory all derive from
 * it), so it also cleans up after an `up` that crashed half-way, and it is
 * idempotent.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "sim.h"
#include "svc.h"
#include "util.h"

/* The simulated internet: where each name resolves, what answers there. */
static const struct {
	const char *name;
	const char *addr;
} zone[] = {
	{ "example.test", "198.51.100.10" },
	{ "www.example.test", "198.51.100.10" },
	{ "sim.test", "198.51.100.10" },
	{ "api.sim.test", "198.51.100.10" },
	{ "web.sim.test", "198.51.100.10" },
	{ "registry.sim.test", "198.51.100.10" },
	{ "mirror.sim.test", "198.51.100.10" },
	{ "telemetry.sim.test", "198.51.100.10" },
	{ "self-signed.sim.test", "198.51.100.11" },
	{ "expired.sim.test", "198.51.100.12" },
	{ "wrong-host.sim.test", "198.51.100.13" },
	{ "other.test", "203.0.113.10" },
	{ "echo.sim.test", "203.0.113.10" },
	{ "multi.sim.test", "198.51.100.10" },
	{ "multi.sim.test", "203.0.113.10" },
};

/* Every address the internet namespace answers on. */
static const char *const service_addrs[] = {
	"198.51.100.10", "198.51.100.11", "198.51.100.12", "198.51.100.13",
	"198.51.100.14", SIM_RESOLVER,	  "203.0.113.10",  SIM_RESOLVER2,
};

/* Test hook: EGRESS_SIM_CRASH_AT=<step> makes `up` die at that step, as a
 * crash would, so that tests can prove `down` cleans up a half-built world. */
static void crash_point(const char *step)
{
	const char *at = getenv("EGRESS_SIM_CRASH_AT");

	if (at && strcmp(at, step) == 0) {
		fprintf(stderr, "egress-sim: simulated crash at '%s'\n", step);
		_exit(3);
	}
}

static void container_id(const char *world, unsigned index, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char in[128];

	snprintf(in, sizeof(in), "egress-sim:%s:%u", world, index);
	EVP_Digest(in, strlen(in), md, &len, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void cg_path(const struct sim_world *w, const char *sub, char *buf,
		    size_t len)
{
	snprintf(buf, len, "%.511s/%.64s", w->cgroup, sub);
}

/* ---- world.json ---------------------------------------------------------- */

static json_t *world_json(const struct sim_world *w)
{
	json_t *cs = json_array();
	char path[512];

	for (unsigned i = 0; i < w->ncontainers; i++) {
		const struct sim_container *c = &w->containers[i];
		char cg[512];
		snprintf(cg, sizeof(cg), "%.256s/docker/%.64s", w->cgroup_rel,
			 c->id);
		json_array_append_new(
			cs, json_pack("{s:i,s:s,s:s,s:s,s:s,s:s}", "index",
				      (int)c->index, "id", c->id, "ip", c->ip,
				      "bridge", sim_bridge_name(c->bridge),
				      "netns", c->netns, "cgroup", cg));
	}
	snprintf(path, sizeof(path), "%s/ca.pem", w->state);
	json_t *docker = json_null();
	if (w->dockerd_pid > 0) {
		docker = json_pack("{s:i,s:s+,s:s+,s:s}", "pid", w->dockerd_pid,
				   "socket", w->state, "/docker.sock", "log",
				   w->state, "/dockerd.log", "runtime",
				   w->runc_wrapper[0] ? "egress" : "runc");
		if (docker && w->runc_wrapper[0]) {
			json_t *rt = json_pack("{s:s,s:s+,s:s+,s:s}",
					       "runtime_path", w->runc_wrapper,
					       "runc_config", w->state,
					       "/egress-runc.conf", "runc_log",
					       w->state, "/egress-runc.log",
					       "egress_ca", w->egress_ca);
			json_object_update(docker, rt);
			json_decref(rt);
		}
	}
	return json_pack(
		"{s:s,s:s,s:s,s:{s:s,s:s,s:s},s:{s:s,s:s},s:s,s:s,s:{s:i,s:s+},"
		"s:o,s:o}",
		"name", w->name, "state_dir", w->state, "ca", path, "cgroup",
		"path", w->cgroup_rel, "host", "host", "internet", "internet",
		"netns", "host", w->netns_host, "internet", w->netns_inet,
		"resolver", SIM_RESOLVER, "resolver2", SIM_RESOLVER2,
		"services", "pid", w->services_pid, "log", w->state,
		"/services.jsonl", "containers", cs, "docker", docker);
}

static int world_save(const struct sim_world *w)
{
	char path[512], tmp[520];
	json_t *j = world_json(w);
	int rc;

	snprintf(path, sizeof(path), "%s/world.json", w->state);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	rc = json_dump_file(j, tmp, JSON_INDENT(2));
	json_decref(j);
	if (rc == 0 && rename(tmp, path) == 0)
		return 0;
	fprintf(stderr, "egress-sim: cannot write %s\n", path);
	return -1;
}

static int load(const char *name, struct sim_world *w, bool quiet)
{
	char path[512];
	json_error_t je;
	json_t *j, *cs, *c;
	size_t i;

	if (!sim_check_name(name))
		return -1;
	if (sim_world_paths(w, name) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/world.json", w->state);
	j = json_load_file(path, 0, &je);
	if (!j) {
		if (!quiet)
			fprintf(stderr,
				"egress-sim: no world named '%s' (%s: %s)\n",
				name, path, je.text);
		return -1;
	}
	w->services_pid = (int)json_integer_value(
		json_object_get(json_object_get(j, "services"), "pid"));
	w->dockerd_pid = (int)json_integer_value(
		json_object_get(json_object_get(j, "docker"), "pid"));
	if (!w->dockerd_pid)
		w->dockerd_pid = -1;
	snprintf(
		w->runc_wrapper, sizeof(w->runc_wrapper), "%s",
		json_string_value(json_object_get(json_object_get(j, "docker"), "runtime_path")) ?:
			"");
	snprintf(
		w->egress_ca, sizeof(w->egress_ca), "%s",
		json_string_value(json_object_get(json_object_get(j, "docker"), "egress_ca")) ?:
			"");
	cs = json_object_get(j, "containers");
	json_array_foreach(cs, i, c)
	{
		struct sim_container *sc = &w->containers[w->ncontainers];
		if (w->ncontainers >= SIM_MAX_CONTAINERS)
			break;
		sc->index = (unsigned)json_integer_value(
			json_object_get(c, "index"));
		sc->bridge =
			strcmp(json_string_value(json_object_get(c, "bridge")) ?:
				       "",
			       "br-sim1") == 0 ?
				SIM_BRSIM1 :
				SIM_DOCKER0;
		snprintf(sc->id, sizeof(sc->id), "%s",
			 json_string_value(json_object_get(c, "id")) ?: "");
		snprintf(sc->ip, sizeof(sc->ip), "%s",
			 json_string_value(json_object_get(c, "ip")) ?: "");
		snprintf(sc->netns, sizeof(sc->netns), "%s",
			 json_string_value(json_object_get(c, "netns")) ?: "");
		w->ncontainers++;
	}
	json_decref(j);
	return 0;
}

int sim_load(const char *name, struct sim_world *w)
{
	return load(name, w, false);
}

/* ---- the services of the simulated internet ------------------------------ */

static json_t *tls_certs(const struct sim_world *w, const char *const *files)
{
	json_t *a = json_array();
	char c[512], k[512];

	for (; *files; files++) {
		snprintf(c, sizeof(c), "%s/%s.pem", w->state, *files);
		snprintf(k, sizeof(k), "%s/%s.key", w->state, *files);
		json_array_append_new(a, json_pack("{s:s,s:s}", "cert", c,
						   "key", k));
	}
	return a;
}

static json_t *svc_zone(void)
{
	json_t *z = json_object();

	for (size_t i = 0; i < ARRAY_SIZE(zone); i++) {
		json_t *a = json_object_get(z, zone[i].name);
		if (!a) {
			a = json_array();
			json_object_set_new(z, zone[i].name, a);
		}
		json_array_append_new(a, json_string(zone[i].addr));
	}
	return z;
}

static int write_svc_config(const struct sim_world *w, char *path, size_t len)
{
	static const char *const main_c[] = { "main", NULL };
	static const char *const self_c[] = { "self-signed", NULL };
	static const char *const exp_c[] = { "expired", NULL };
	static const char *const wrong_c[] = { "wrong-host", NULL };
	static const char *const ip_c[] = { "ip-only", NULL };
	char log[512];
	json_t *zone_j = svc_zone(), *cfg;
	int rc;

	snprintf(log, sizeof(log), "%s/services.jsonl", w->state);
	cfg = json_pack(
		"{s:s,"
		" s:[{s:s,s:i},{s:s,s:i},{s:s,s:i}],"
		" s:[{s:s,s:i,s:o},{s:s,s:i,s:o},{s:s,s:i,s:o},{s:s,s:i,s:o},"
		"    {s:s,s:i,s:o},{s:s,s:i,s:o},{s:s,s:i,s:o}],"
		" s:[{s:s,s:i,s:O,s:i},{s:s,s:i,s:O,s:i}],"
		" s:[{s:s,s:i},{s:s,s:i}],"
		" s:[{s:s,s:i},{s:s,s:i}],"
		" s:[{s:s,s:i,s:s}]}",
		"log", log,
		/* plain HTTP */
		"http", "addr", "198.51.100.10", "port", 80, "addr",
		"198.51.100.10", "port", 8080, "addr", "203.0.113.10", "port",
		80,
		/* HTTPS, one certificate family per address */
		"https", "addr", "198.51.100.10", "port", 443, "certs",
		tls_certs(w, main_c), "addr", "198.51.100.10", "port", 8443,
		"certs", tls_certs(w, main_c), "addr", "203.0.113.10", "port",
		443, "certs", tls_certs(w, main_c), "addr", "198.51.100.11",
		"port", 443, "certs", tls_certs(w, self_c), "addr",
		"198.51.100.12", "port", 443, "certs", tls_certs(w, exp_c),
		"addr", "198.51.100.13", "port", 443, "certs",
		tls_certs(w, wrong_c), "addr", "198.51.100.14", "port", 443,
		"certs", tls_certs(w, ip_c),
		/* authoritative DNS for the test zone, two resolvers */
		"dns", "addr", SIM_RESOLVER, "port", 53, "zone", zone_j, "ttl",
		300, "addr", SIM_RESOLVER2, "port", 53, "zone", zone_j, "ttl",
		300,
		/* echo services and a server-first protocol */
		"udp_echo", "addr", "203.0.113.10", "port", 9999, "addr",
		"203.0.113.10", "port", 9998, "tcp_echo", "addr",
		"203.0.113.10", "port", 7, "addr", "203.0.113.10", "port", 22,
		"tcp_banner", "addr", "203.0.113.10", "port", 25, "banner",
		"220 sim.test ESMTP egress-sim\r\n");
	json_decref(zone_j);
	if (!cfg) {
		fprintf(stderr,
			"egress-sim: cannot build the service config\n");
		return -1;
	}
	snprintf(path, len, "%s/services.json", w->state);
	rc = json_dump_file(cfg, path, JSON_INDENT(2));
	json_decref(cfg);
	return rc;
}

/* Connects to addr:port from inside the internet namespace. */
struct probe {
	const char *addr;
	int port;
};

static int probe_here(void *arg)
{
	const struct probe *p = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return -1;
	sa.sin_port = htons((uint16_t)p->port);
	inet_pton(AF_INET, p->addr, &sa.sin_addr);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc;
}

static int start_services(struct sim_world *w, int inet_fd)
{
	char cfg[512], errpath[512], cg[1024];
	const struct probe probes[] = { { "198.51.100.10", 80 },
					{ "198.51.100.10", 443 },
					{ SIM_RESOLVER, 53 },
					{ "203.0.113.10", 25 } };
	pid_t pid;

	if (write_svc_config(w, cfg, sizeof(cfg)) < 0)
		return -1;
	snprintf(errpath, sizeof(errpath), "%s/services.err", w->state);
	cg_path(w, "internet", cg, sizeof(cg));
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(errpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int null = open("/dev/null", O_RDWR);
		if (fd < 0 || null < 0 || sim_cgroup_enter(cg, 0) < 0 ||
		    setns(inet_fd, CLONE_NEWNET) < 0)
			_exit(1);
		setsid();
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		_exit(svc_main(cfg) == 0 ? 0 : 1);
	}
	w->services_pid = pid;
	/* ready when every kind of listener accepts */
	for (int tries = 0; tries < 500; tries++) {
		int status;
		size_t ok = 0;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr,
				"egress-sim: the services exited at "
				"start; see %s\n",
				errpath);
			return -1;
		}
		for (size_t i = 0; i < ARRAY_SIZE(probes); i++)
			ok += sim_in_netns(inet_fd, probe_here,
					   (void *)(uintptr_t)&probes[i]) == 0;
		if (ok == ARRAY_SIZE(probes))
			return 0;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr,
		"egress-sim: the services did not start listening; "
		"see %s\n",
		errpath);
	return -1;
}

/* ---- dockerd ------------------------------------------------------------ */

struct ping_arg {
	const char *sock;
};

/* GET /_ping on dockerd's socket; 0 when it answers OK. */
static int docker_ping(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char req[] = "GET /_ping HTTP/1.0\r\n\r\n";
	char buf[256];
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;

	if (fd < 0)
		return -1;
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		close(fd);
		return -1;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1 &&
	    (n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		rc = strstr(buf, " 200 ") ? 0 : -1;
	}
	close(fd);
	return rc;
}

/*
 * The egress-runc dockerd runs as its default runtime: the one asked for,
 * else the one built next to this egress-sim.  Absolute, because
 * containerd's shims run it from their own working directories.
 */
static int resolve_wrapper(const struct sim_up_opts *o, char *out, size_t len)
{
	char path[PATH_MAX], self[PATH_MAX];
	ssize_t n;

	if (o->runc_wrapper) {
		if (!realpath(o->runc_wrapper, path)) {
			fprintf(stderr, "egress-sim: --runc-wrapper %s: %s\n",
				o->runc_wrapper, strerror(errno));
			return -1;
		}
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0)
			return -1;
		self[n] = '\0';
		snprintf(path, sizeof(path), "%.*s/egress-runc",
			 (int)(strrchr(self, '/') - self), self);
	}
	if (access(path, X_OK) < 0) {
		fprintf(stderr,
			"egress-sim: %s: %s (build it with make, name "
			"another with --runc-wrapper, or run plain runc "
			"with --no-runc-wrapper)\n",
			path, strerror(errno));
		return -1;
	}
	if (strlen(path) >= len) {
		fprintf(stderr, "egress-sim: %s: path too long\n", path);
		return -1;
	}
	memcpy(out, path, strlen(path) + 1);
	return 0;
}

/* The real runc: the first `runc` on PATH, then in the system's sbin
 * directories, that is not the wrapper itself (compared by inode, in case
 * someone installed the wrapper over runc). */
static int find_runc(const char *wrapper, char *out, size_t len)
{
	const char *env = getenv("PATH");
	char dirs[4096];
	struct stat ws, rs;
	bool have_ws = stat(wrapper, &ws) == 0;

	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/bin:/sbin:/bin",
		 env ? env : "");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		if (d[0] != '/')
			continue;
		snprintf(out, len, "%s/runc", d);
		if (access(out, X_OK) < 0 || stat(out, &rs) < 0)
			continue;
		if (have_ws && rs.st_dev == ws.st_dev && rs.st_ino == ws.st_ino)
			continue;
		return 0;
	}
	fprintf(stderr, "egress-sim: no runc found for egress-runc to run "
			"(install docker.io: scripts/install-deps.sh)\n");
	return -1;
}

/*
 * The wrapper's settings for this world, read by egress-runc on every
 * call (dockerd hands EGRESS_RUNC_CONFIG down through containerd and its
 * shims): the real runc, the CA that the world's egressd publishes, the
 * world's dockerd for image names in warnings, and a log, since messages
 * during `runc create` otherwise end up in the container's stderr.
 */
static int write_runc_conf(const struct sim_world *w)
{
	char path[512], runc[PATH_MAX];
	FILE *f;

	if (find_runc(w->runc_wrapper, runc, sizeof(runc)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/egress-runc.conf", w->state);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "egress-sim: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f,
		"# egress-runc settings of world %s (egress-sim up --docker)\n"
		"runc = %s\nca = %s\ndocker_socket = %s/docker.sock\n"
		"log = %s/egress-runc.log\n",
		w->name, runc, w->egress_ca, w->state, w->state);
	return fclose(f) == 0 ? 0 : -1;
}

/* dockerd's environment: ours, minus any EGRESS_RUNC_* override (the
 * world's config file decides), plus the config file.  In the child. */
static void runc_env(const struct sim_world *w)
{
	extern char **environ;
	char path[512];

	for (bool again = true; again;) {
		again = false;
		for (char **e = environ; *e; e++) {
			char name[256];
			const char *eq = strchr(*e, '=');
			if (strncmp(*e, "EGRESS_RUNC_", 12) || !eq ||
			    (size_t)(eq - *e) >= sizeof(name))
				continue;
			snprintf(name, sizeof(name), "%.*s", (int)(eq - *e),
				 *e);
			unsetenv(name);
			again = true;
			break;
		}
	}
	if (w->runc_wrapper[0]) {
		snprintf(path, sizeof(path), "%s/egress-runc.conf", w->state);
		setenv("EGRESS_RUNC_CONFIG", path, 1);
	}
}

/*
 * dockerd in the world's host netns, with its own data and exec roots,
 * socket and pid file, its containers' cgroups under the world's (so BPF
 * attached to the world sees them, and `docker` stays in the path for
 * @docker rules) and the world's resolver for containers.  It adopts the
 * docker0 bridge the world made.
 */
static int start_dockerd(struct sim_world *w, int host_fd,
			 const struct sim_up_opts *o)
{
	char data[512], exec_root[512], pidf[512], sock[512], host[600];
	char log[512], cg[1024], parent[512], runtime[600];
	char *argv[32];
	size_t argc = 0;
	pid_t pid;

	if (!sim_have_command("dockerd")) {
		fprintf(stderr, "egress-sim: --docker needs dockerd: install "
				"docker.io (scripts/install-deps.sh)\n");
		return -1;
	}
	w->runc_wrapper[0] = w->egress_ca[0] = '\0';
	if (!o->no_runc_wrapper) {
		if (resolve_wrapper(o, w->runc_wrapper,
				    sizeof(w->runc_wrapper)) < 0)
			return -1;
		if (o->egress_ca && o->egress_ca[0] != '/') {
			fprintf(stderr, "egress-sim: --egress-ca takes an "
					"absolute path\n");
			return -1;
		}
		if (o->egress_ca &&
		    strlen(o->egress_ca) >= sizeof(w->egress_ca)) {
			fprintf(stderr, "egress-sim: --egress-ca: path too "
					"long\n");
			return -1;
		}
		if (o->egress_ca)
			snprintf(w->egress_ca, sizeof(w->egress_ca), "%s",
				 o->egress_ca);
		else
			snprintf(w->egress_ca, sizeof(w->egress_ca),
				 "%s/egressd/ca.pem", w->state);
		if (write_runc_conf(w) < 0)
			return -1;
	}
	snprintf(data, sizeof(data), "%s/docker/data", w->state);
	snprintf(exec_root, sizeof(exec_root), "%s/docker/exec", w->state);
	snprintf(pidf, sizeof(pidf), "%s/docker/dockerd.pid", w->state);
	snprintf(sock, sizeof(sock), "%s/docker.sock", w->state);
	snprintf(host, sizeof(host), "unix://%s", sock);
	snprintf(log, sizeof(log), "%s/dockerd.log", w->state);
	snprintf(parent, sizeof(parent), "%s/docker", w->cgroup_rel);
	cg_path(w, "dockerd", cg, sizeof(cg));
	if (sim_mkdir_p(data, 0700) || sim_mkdir_p(exec_root, 0700) ||
	    sim_cgroup_mkdir(cg))
		return -1;
	argv[argc++] = "dockerd";
	argv[argc++] = "--data-root";
	argv[argc++] = data;
	argv[argc++] = "--exec-root";
	argv[argc++] = exec_root;
	argv[argc++] = "--pidfile";
	argv[argc++] = pidf;
	argv[argc++] = "-H";
	argv[argc++] = host;
	argv[argc++] = "--cgroup-parent";
	argv[argc++] = parent;
	argv[argc++] = "--dns";
	argv[argc++] = SIM_RESOLVER;
	argv[argc++] = "--userland-proxy=false";
	if (w->runc_wrapper[0]) {
		snprintf(runtime, sizeof(runtime), "egress=%s",
			 w->runc_wrapper);
		argv[argc++] = "--add-runtime";
		argv[argc++] = runtime;
		argv[argc++] = "--default-runtime";
		argv[argc++] = "egress";
	}
	argv[argc] = NULL;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int null = open("/dev/null", O_RDWR);
		if (fd < 0 || null < 0 || sim_cgroup_enter(cg, 0) < 0 ||
		    setns(host_fd, CLONE_NEWNET) < 0)
			_exit(1);
		setsid();
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		runc_env(w);
		execvp("dockerd", argv);
		_exit(127);
	}
	w->dockerd_pid = pid;
	for (int tries = 0; tries < 600; tries++) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr,
				"egress-sim: dockerd exited at start; "
				"see %s\n",
				log);
			w->dockerd_pid = -1;
			return -1;
		}
		if (docker_ping(sock) == 0)
			return 0;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr,
		"egress-sim: dockerd did not answer within 30 s; "
		"see %s\n",
		log);
	return -1;
}

/* Stops dockerd cleanly (it unmounts its layers and stops its containers),
 * waiting up to 20 s; down kills whatever is left afterwards. */
static void stop_dockerd(const struct sim_world *w)
{
	char pidf[512];
	FILE *f;
	int pid = w->dockerd_pid;

	snprintf(pidf, sizeof(pidf), "%s/docker/dockerd.pid", w->state);
	f = fopen(pidf, "r");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = w->dockerd_pid;
		fclose(f);
	}
	if (pid <= 0 || kill(pid, SIGTERM) < 0)
		return;
	for (int i = 0; i < 400 && kill(pid, 0) == 0; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		waitpid(pid, NULL, WNOHANG);
		nanosleep(&ts, NULL);
	}
}

/* ---- building the namespaces --------------------------------------------- */

static int build_host_and_internet(int host_fd, int inet_fd)
{
	struct nl_sock *h = sim_nl_open(host_fd), *i = sim_nl_open(inet_fd);
	char cidr[32];
	int rc = -1;

	if (!h || !i)
		goto out;
	if (sim_nl_link_up(h, "lo") || sim_nl_link_up(i, "lo"))
		goto out;
	/* the runner's uplink to the internet */
	if (sim_nl_veth_add(h, "up0", "up0", inet_fd) ||
	    sim_nl_addr_add(h, "up0", SIM_UPLINK_HOST "/30") ||
	    sim_nl_addr_add(i, "up0", SIM_UPLINK_INET "/30") ||
	    sim_nl_link_up(h, "up0") || sim_nl_link_up(i, "up0") ||
	    sim_nl_route_add(h, "default", SIM_UPLINK_INET))
		goto out;
	crash_point("uplink");
	/* docker0 and a user-defined network */
	if (sim_nl_bridge_add(h, "docker0") ||
	    sim_nl_addr_add(h, "docker0", SIM_DOCKER0_GW "/16") ||
	    sim_nl_link_up(h, "docker0") || sim_nl_bridge_add(h, "br-sim1") ||
	    sim_nl_addr_add(h, "br-sim1", SIM_BRSIM1_GW "/16") ||
	    sim_nl_link_up(h, "br-sim1"))
		goto out;
	if (sim_sysctl_in(host_fd, "/proc/sys/net/ipv4/ip_forward", "1"))
		goto out;
	/* the internet: service addresses, and routes back to the bridges */
	for (size_t k = 0; k < ARRAY_SIZE(service_addrs); k++) {
		snprintf(cidr, sizeof(cidr), "%s/32", service_addrs[k]);
		if (sim_nl_addr_add(i, "lo", cidr))
			goto out;
	}
	if (sim_nl_route_add(i, SIM_DOCKER0_NET, SIM_UPLINK_HOST) ||
	    sim_nl_route_add(i, SIM_BRSIM1_NET, SIM_UPLINK_HOST))
		goto out;
	rc = 0;
out:
	sim_nl_close(h);
	sim_nl_close(i);
	return rc;
}

/* Adds container w->containers[w->ncontainers] on bridge b. */
static int build_container(struct sim_world *w, int host_fd, enum sim_bridge b)
{
	struct sim_container *c = &w->containers[w->ncontainers];
	unsigned idx = w->ncontainers, hostnum = 2;
	struct nl_sock *h = NULL, *ct = NULL;
	char veth[16], cidr[32], cg[1024];
	int cfd = -1, rc = -1;

	if (w->ncontainers >= SIM_MAX_CONTAINERS) {
		fprintf(stderr, "egress-sim: at most %d containers\n",
			SIM_MAX_CONTAINERS);
		return -1;
	}
	for (unsigned k = 0; k < w->ncontainers; k++)
		hostnum += w->containers[k].bridge == b;
	memset(c, 0, sizeof(*c));
	c->index = idx;
	c->bridge = b;
	char name[SIM_NAME_MAX + 1];

	snprintf(name, sizeof(name), "%s", w->name);
	container_id(name, idx, c->id);
	/* hostnum < 2 + SIM_MAX_CONTAINERS, so the third octet stays 0-1 */
	snprintf(c->ip, sizeof(c->ip), "172.%d.%u.%u",
		 b == SIM_BRSIM1 ? 18 : 17, (hostnum / 250) % 256,
		 hostnum % 250);
	snprintf(c->netns, sizeof(c->netns), "esim-%s-c%u", name, idx);
	snprintf(veth, sizeof(veth), "veth%u", idx % 100000);
	snprintf(cidr, sizeof(cidr), "%s/16", c->ip);
	snprintf(cg, sizeof(cg), "%.511s/docker/%.64s", w->cgroup, c->id);
	if (sim_cgroup_mkdir(cg) || sim_netns_create(c->netns))
		return -1;
	w->ncontainers++; /* from here on, down removes it */
	cfd = sim_netns_open(c->netns);
	h = sim_nl_open(host_fd);
	ct = cfd >= 0 ? sim_nl_open(cfd) : NULL;
	if (!h || !ct)
		goto out;
	if (sim_nl_link_up(ct, "lo") || sim_nl_veth_add(h, veth, "eth0", cfd) ||
	    sim_nl_enslave(h, sim_bridge_name(b), veth) ||
	    sim_nl_link_up(h, veth) || sim_nl_addr_add(ct, "eth0", cidr) ||
	    sim_nl_link_up(ct, "eth0") ||
	    sim_nl_route_add(ct, "default",
			     b == SIM_BRSIM1 ? SIM_BRSIM1_GW : SIM_DOCKER0_GW))
		goto out;
	rc = 0;
out:
	sim_nl_close(h);
	sim_nl_close(ct);
	if (cfd >= 0)
		close(cfd);
	return rc;
}

static int write_resolv_conf(const struct sim_world *w)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/resolv.conf", w->state);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f,
		"# egress-sim world %s\nnameserver %s\n"
		"options timeout:2 attempts:2\n",
		w->name, SIM_RESOLVER);
	return fclose(f);
}

static bool world_exists(const char *name)
{
	struct sim_world w;
	char glob_prefix[64];
	struct dirent *e;
	DIR *d;
	bool found = false;

	if (sim_world_paths(&w, name) < 0)
		return false;
	if (access(w.state, F_OK) == 0 || access(w.cgroup, F_OK) == 0)
		return true;
	snprintf(glob_prefix, sizeof(glob_prefix), "esim-%s-", name);
	d = opendir(SIM_NETNS_DIR);
	while (d && (e = readdir(d)) != NULL)
		found |= strncmp(e->d_name, glob_prefix, strlen(glob_prefix)) ==
			 0;
	if (d)
		closedir(d);
	return found;
}

static int up_steps(struct sim_world *w, const struct sim_up_opts *o)
{
	char cg[1024];
	int host_fd = -1, inet_fd = -1, rc = -1;

	if (sim_mkdir_p(w->state, 0700) < 0)
		return -1;
	crash_point("state");
	cg_path(w, "host", cg, sizeof(cg));
	if (sim_cgroup_mkdir(cg))
		return -1;
	cg_path(w, "internet", cg, sizeof(cg));
	if (sim_cgroup_mkdir(cg))
		return -1;
	crash_point("cgroups");
	if (sim_netns_create(w->netns_host) || sim_netns_create(w->netns_inet))
		return -1;
	crash_point("netns");
	host_fd = sim_netns_open(w->netns_host);
	inet_fd = sim_netns_open(w->netns_inet);
	if (host_fd < 0 || inet_fd < 0)
		goto out;
	if (build_host_and_internet(host_fd, inet_fd))
		goto out;
	crash_point("links");
	if (sim_certs_create(w->state, w->name) || write_resolv_conf(w))
		goto out;
	if (start_services(w, inet_fd))
		goto out;
	crash_point("services");
	if (o->docker && start_dockerd(w, host_fd, o))
		goto out;
	crash_point("docker");
	for (unsigned k = 0; k < o->containers + o->user_containers; k++) {
		if (build_container(w, host_fd,
				    k < o->containers ? SIM_DOCKER0 :
							SIM_BRSIM1))
			goto out;
		crash_point("container");
	}
	rc = world_save(w);
out:
	if (host_fd >= 0)
		close(host_fd);
	if (inet_fd >= 0)
		close(inet_fd);
	return rc;
}

int sim_up(const char *name, const struct sim_up_opts *o)
{
	struct sim_world w;

	if (!sim_check_name(name))
		return -1;
	if (o->containers + o->user_containers > SIM_MAX_CONTAINERS) {
		fprintf(stderr, "egress-sim: at most %d containers\n",
			SIM_MAX_CONTAINERS);
		return -1;
	}
	if (world_exists(name)) {
		fprintf(stderr,
			"egress-sim: world '%s' exists already; "
			"`egress-sim down %s` first\n",
			name, name);
		return -1;
	}
	if (sim_world_paths(&w, name) < 0)
		return -1;
	if (up_steps(&w, o) < 0) {
		fprintf(stderr,
			"egress-sim: up %s failed; removing what was "
			"built\n",
			name);
		sim_down(name);
		return -1;
	}
	printf("egress-sim: world %s is up (%u containers); state in %s\n",
	       name, w.ncontainers, w.state);
	return 0;
}

static int rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL) {
		char p[1024];
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		if (e->d_type == DT_DIR)
			rc |= rm_rf(p);
		else if (unlink(p) < 0)
			rc = -1;
	}
	closedir(d);
	return rmdir(path) < 0 ? -1 : rc;
}

int sim_down(const char *name)
{
	struct sim_world w;
	char prefix[64], base[512];
	struct dirent *e;
	bool existed;
	DIR *d;
	int rc = 0;

	if (!sim_check_name(name))
		return -1;
	if (sim_world_paths(&w, name) < 0)
		return -1;
	existed = world_exists(name);
	/* dockerd first, gracefully, so that it takes its mounts down */
	if (load(name, &w, true) < 0 && sim_world_paths(&w, name) < 0)
		return -1;
	stop_dockerd(&w);
	/* processes next: they keep namespaces alive */
	rc |= sim_cgroup_destroy_everywhere(w.cgroup_rel);
	rc |= sim_umount_below(w.state);
	snprintf(prefix, sizeof(prefix), "esim-%s-", name);
	d = opendir(SIM_NETNS_DIR);
	while (d && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			rc |= sim_netns_delete(e->d_name);
	if (d)
		closedir(d);
	rc |= rm_rf(w.state);
	/* the shared parents go when the last world does (in v1 hierarchies
	 * too, where runc made them for dockerd's --cgroup-parent) */
	snprintf(base, sizeof(base), "/%s", SIM_CGROUP_BASE);
	sim_cgroup_rmdir_everywhere(base);
	rmdir(SIM_STATE_ROOT);
	if (rc) {
		fprintf(stderr,
			"egress-sim: down %s: some parts could not be "
			"removed\n",
			name);
		return -1;
	}
	printf(existed ? "egress-sim: world %s removed\n" :
			 "egress-sim: no world %s (nothing to remove)\n",
	       name);
	return 0;
}

int sim_add_container(const char *name, enum sim_bridge b)
{
	struct sim_world w;
	int host_fd, rc;

	if (sim_load(name, &w) < 0)
		return -1;
	host_fd = sim_netns_open(w.netns_host);
	if (host_fd < 0) {
		fprintf(stderr, "egress-sim: world %s has no host namespace\n",
			name);
		return -1;
	}
	rc = build_container(&w, host_fd, b);
	close(host_fd);
	if (world_save(&w) < 0)
		return -1;
	if (rc == 0)
		printf("%u\n", w.ncontainers - 1);
	return rc;
}

static json_t *status_one(const char *name)
{
	struct sim_world w;
	char path[512];
	json_t *j;
	bool ok;

	if (sim_world_paths(&w, name) < 0)
		return NULL;
	snprintf(path, sizeof(path), "%s/world.json", w.state);
	j = json_load_file(path, 0, NULL);
	if (!j)
		return json_pack("{s:s,s:s}", "name", name, "state",
				 "broken (no world.json; run egress-sim down)");
	ok = sim_netns_exists(w.netns_host) && sim_netns_exists(w.netns_inet);
	ok = ok && sim_load(name, &w) == 0 && w.services_pid > 0 &&
	     kill(w.services_pid, 0) == 0;
	json_object_set_new(j, "state", json_string(ok ? "up" : "broken"));
	return j;
}

int sim_status(const char *name)
{
	json_t *out;
	char *s;

	if (name) {
		struct sim_world w;
		if (sim_load(name, &w) < 0)
			return -1;
		out = status_one(name);
	} else {
		DIR *d = opendir(SIM_STATE_ROOT);
		struct dirent *e;
		out = json_array();
		while (d && (e = readdir(d)) != NULL)
			if (e->d_name[0] != '.' && sim_name_ok(e->d_name))
				json_array_append_new(out,
						      status_one(e->d_name));
		if (d)
			closedir(d);
	}
	s = json_dumps(out, JSON_INDENT(2));
	printf("%s\n", s);
	free(s);
	json_decref(out);
	return 0;
}
