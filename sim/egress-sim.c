/*
 * egress-sim.c - the simulator's command line.
 *
 *   egress-sim up [NAME] [--containers N] [--user-containers M]
 *                 [--docker [--runc-wrapper PATH | --no-runc-wrapper]
 *                           [--egress-ca PATH]]
 *   egress-sim down NAME
 *   egress-sim exec NAME {host|internet|container:K} [--cgroup REL] -- CMD...
 *   egress-sim add-container NAME [--bridge docker0|br-sim1]
 *   egress-sim status [NAME]
 *   egress-sim ca NAME
 *   egress-sim serve CONFIG        (internal: the internet's services)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim.h"
#include "svc.h"

static const char usage[] =
	"usage: egress-sim up [NAME] [--containers N] [--user-containers M]\n"
	"                     [--docker [--runc-wrapper PATH | "
	"--no-runc-wrapper]\n"
	"                               [--egress-ca PATH]]\n"
	"       egress-sim down NAME\n"
	"       egress-sim exec NAME {host|internet|container:K} [--cgroup REL]"
	" [--keep-mounts] -- CMD...\n"
	"       egress-sim add-container NAME [--bridge docker0|br-sim1]\n"
	"       egress-sim status [NAME]\n"
	"       egress-sim ca NAME\n";

static int need_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "egress-sim: must run as root (it creates "
				"network namespaces and cgroups)\n");
		return -1;
	}
	return 0;
}

static int parse_count(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > SIM_MAX_CONTAINERS) {
		fprintf(stderr, "egress-sim: '%s' is not a count (0-%d)\n", s,
			SIM_MAX_CONTAINERS);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int cmd_up(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "containers", required_argument, NULL, 'c' },
		{ "user-containers", required_argument, NULL, 'u' },
		{ "docker", no_argument, NULL, 'd' },
		{ "runc-wrapper", required_argument, NULL, 'w' },
		{ "no-runc-wrapper", no_argument, NULL, 'W' },
		{ "egress-ca", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	struct sim_up_opts o = { 0 };
	const char *name = "default";
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c' && parse_count(optarg, &o.containers) == 0)
			continue;
		if (c == 'u' && parse_count(optarg, &o.user_containers) == 0)
			continue;
		if (c == 'd') {
			o.docker = true;
			continue;
		}
		if (c == 'w') {
			o.runc_wrapper = optarg;
			continue;
		}
		if (c == 'W') {
			o.no_runc_wrapper = true;
			continue;
		}
		if (c == 'a') {
			o.egress_ca = optarg;
			continue;
		}
		fputs(usage, stderr);
		return 2;
	}
	if (optind < argc)
		name = argv[optind++];
	if (optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	if ((o.runc_wrapper || o.no_runc_wrapper || o.egress_ca) && !o.docker) {
		fprintf(stderr, "egress-sim: --runc-wrapper, --no-runc-wrapper "
				"and --egress-ca go with --docker\n");
		return 2;
	}
	if (o.runc_wrapper && o.no_runc_wrapper) {
		fprintf(stderr, "egress-sim: --runc-wrapper or "
				"--no-runc-wrapper, not both\n");
		return 2;
	}
	return sim_up(name, &o) == 0 ? 0 : 1;
}

/*
 * Runs CMD in the chosen place: its cgroup, its network namespace, and a
 * private mount namespace in which /etc/resolv.conf names the world's
 * resolver.  /sys is left alone, so the cgroup hierarchy stays visible
 * (unlike `ip netns exec`, which remounts it).  Replaces this process.
 */
static int cmd_exec(int argc, char **argv)
{
	struct sim_world w;
	const char *cgsub = NULL, *name = NULL, *where = NULL, *netns;
	char cg[1024], resolv[512];
	char **cmd = NULL;
	bool keep_mounts = false;
	int fd;

	/* NAME WHERE [--cgroup REL] -- CMD... (--cgroup anywhere before --) */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			cmd = &argv[i + 1];
			break;
		}
		if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc)
			cgsub = argv[++i];
		else if (strcmp(argv[i], "--keep-mounts") == 0)
			keep_mounts = true;
		else if (strncmp(argv[i], "--cgroup=", 9) == 0)
			cgsub = argv[i] + 9;
		else if (!name)
			name = argv[i];
		else if (!where)
			where = argv[i];
		else
			cmd = NULL, name = NULL;
	}
	if (!name || !where || !cmd || !cmd[0]) {
		fputs(usage, stderr);
		return 2;
	}
	if (need_root() || sim_load(name, &w) < 0)
		return 1;
	if (strcmp(where, "host") == 0) {
		netns = w.netns_host;
		snprintf(cg, sizeof(cg), "%s/host", w.cgroup);
	} else if (strcmp(where, "internet") == 0) {
		netns = w.netns_inet;
		snprintf(cg, sizeof(cg), "%s/internet", w.cgroup);
	} else if (strncmp(where, "container:", 10) == 0) {
		char *end;
		unsigned long k = strtoul(where + 10, &end, 10);
		if (*end || end == where + 10 || k >= w.ncontainers) {
			fprintf(stderr,
				"egress-sim: world %s has no %s "
				"(containers: 0..%d)\n",
				w.name, where, (int)w.ncontainers - 1);
			return 1;
		}
		netns = w.containers[k].netns;
		snprintf(cg, sizeof(cg), "%s/docker/%s", w.cgroup,
			 w.containers[k].id);
	} else {
		fprintf(stderr,
			"egress-sim: unknown place '%s' (host, "
			"internet or container:K)\n",
			where);
		return 2;
	}
	if (cgsub) {
		if (strstr(cgsub, "..") || cgsub[0] == '/') {
			fprintf(stderr, "egress-sim: --cgroup takes a path "
					"inside the world's cgroup\n");
			return 2;
		}
		snprintf(cg, sizeof(cg), "%s/%s", w.cgroup, cgsub);
		if (sim_cgroup_mkdir(cg) < 0)
			return 1;
	}
	if (!sim_have_command(cmd[0])) {
		fprintf(stderr,
			"egress-sim: %s: command not found (install "
			"the Debian package that provides it: "
			"scripts/install-deps.sh)\n",
			cmd[0]);
		return 127;
	}
	fd = sim_netns_open(netns);
	if (fd < 0) {
		fprintf(stderr, "egress-sim: netns %s: %s\n", netns,
			strerror(errno));
		return 1;
	}
	snprintf(resolv, sizeof(resolv), "%s/resolv.conf", w.state);
	/* --keep-mounts: stay in the caller's mount namespace (a daemon whose
	 * mounts, e.g. a bpffs with pinned links, must outlive it). */
	if (sim_cgroup_enter(cg, 0) < 0 ||
	    (!keep_mounts &&
	     (unshare(CLONE_NEWNS) < 0 ||
	      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	      mount(resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)) ||
	    setns(fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "egress-sim: cannot enter %s: %s\n", where,
			strerror(errno));
		return 1;
	}
	close(fd);
	if (w.dockerd_pid > 0) {
		char host[600];
		snprintf(host, sizeof(host), "unix://%s/docker.sock", w.state);
		setenv("DOCKER_HOST", host, 1);
	}
	execvp(cmd[0], cmd);
	fprintf(stderr, "egress-sim: %s: %s\n", cmd[0], strerror(errno));
	return 127;
}

static int cmd_add_container(int argc, char **argv)
{
	enum sim_bridge b = SIM_DOCKER0;

	if (argc == 4 && strcmp(argv[2], "--bridge") == 0) {
		if (strcmp(argv[3], "br-sim1") == 0)
			b = SIM_BRSIM1;
		else if (strcmp(argv[3], "docker0") != 0) {
			fprintf(stderr, "egress-sim: bridge is docker0 or "
					"br-sim1\n");
			return 2;
		}
	} else if (argc != 2) {
		fputs(usage, stderr);
		return 2;
	}
	return sim_add_container(argv[1], b) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (strcmp(cmd, "serve") == 0 && argc == 3)
		return svc_main(argv[2]) == 0 ? 0 : 1;
	if (strcmp(cmd, "status") == 0 && argc <= 3)
		return sim_status(argc == 3 ? argv[2] : NULL) == 0 ? 0 : 1;
	if (strcmp(cmd, "ca") == 0 && argc == 3) {
		struct sim_world w;
		if (sim_load(argv[2], &w) < 0)
			return 1;
		printf("%s/ca.pem\n", w.state);
		return 0;
	}
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(cmd, "up") && strcmp(cmd, "down") && strcmp(cmd, "exec") &&
	    strcmp(cmd, "add-container")) {
		fputs(usage, stderr);
		return 2;
	}
	if (need_root())
		return 1;
	if (strcmp(cmd, "up") == 0)
		return cmd_up(argc - 1, argv + 1);
	if (strcmp(cmd, "down") == 0) {
		if (argc != 3) {
			fputs(usage, stderr);
			return 2;
		}
		return sim_down(argv[2]) == 0 ? 0 : 1;
	}
	if (strcmp(cmd, "exec") == 0)
		return cmd_exec(argc - 1, argv + 1);
	return cmd_add_container(argc - 1, argv + 1);
}
