/*
 * ctl_bpf.c - egressctl's BPF commands, for humans and for tests:
 *   bpf attach|detach|status   load and pin the BPF object on a cgroup,
 *                              remove it, show what is pinned
 *   attrib                     the attribution map as JSON lines, each
 *                              resolved to its process; or one lookup
 * egressd does the same through bpfload_* and attrib_*; these commands
 * exist so the pieces can be driven and inspected on their own.
 */
#include "ctl.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attrib.h"
#include "bpfload.h"
#include "hmap.h"

static const char bpf_usage[] =
	"usage: egressctl bpf attach --cgroup DIR --pin-dir DIR "
	"[--map-entries N]\n"
	"                  [--no-attrib] [--no-block-ipv6] [--no-block-raw]\n"
	"       egressctl bpf detach --pin-dir DIR\n"
	"       egressctl bpf status --pin-dir DIR\n";

static const char attrib_usage[] =
	"usage: egressctl attrib --pin-dir DIR [--follow] [--interval MS] "
	"[--max N]\n"
	"                        [--netns PATH] [--worker-exe PATH] "
	"[--runner-cgroup PATH]\n"
	"       egressctl attrib --pin-dir DIR --lookup tcp|udp SRC:PORT "
	"DST:PORT [...]\n"
	"  prints attribution entries (or one lookup) as JSON lines\n";

static void print_json(FILE *out, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	fprintf(out, "%s\n", s);
	free(s);
	json_decref(o);
	fflush(out);
}

/* ---- bpf attach / detach / status ----------------------------------------- */

static int bpf_attach_cmd(int argc, char **argv, FILE *err)
{
	static const struct option lopts[] = {
		{ "cgroup", required_argument, NULL, 'c' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "map-entries", required_argument, NULL, 'n' },
		{ "no-attrib", no_argument, NULL, 'A' },
		{ "no-block-ipv6", no_argument, NULL, '6' },
		{ "no-block-raw", no_argument, NULL, 'R' },
		{ 0 },
	};
	struct bpfload_opts o = { 0 };
	bpfload_t *b;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.cgroup = optarg;
			break;
		case 'p':
			o.pin_dir = optarg;
			break;
		case 'n':
			o.map_entries = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'A':
			o.no_attrib = true;
			break;
		case '6':
			o.no_block_ipv6 = true;
			break;
		case 'R':
			o.no_block_raw = true;
			break;
		default:
			fputs(bpf_usage, err);
			return CTL_USAGE;
		}
	}
	if (!o.cgroup || !o.pin_dir || optind != argc) {
		fputs(bpf_usage, err);
		return CTL_USAGE;
	}
	if ((rc = bpfload_pin_dir_prepare(o.pin_dir)) < 0) {
		fprintf(err, "egressctl: %s: %s\n", o.pin_dir, strerror(-rc));
		return CTL_FAIL;
	}
	if (bpfload_open(&o, &b) < 0)
		return CTL_FAIL;
	rc = bpfload_attach(b);
	bpfload_free(b); /* the pins keep everything attached */
	return rc < 0 ? CTL_FAIL : CTL_OK;
}

static void status_links(const char *pin_dir, FILE *out)
{
	const char *name;
	char path[4096];

	for (unsigned i = 0; (name = bpfload_link_pin(i)); i++) {
		struct bpf_link_info info = { 0 };
		__u32 len = sizeof(info);
		int fd;

		snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			print_json(out,
				   json_pack("{s:s,s:I,s:I,s:I,s:i}", "pin",
					     name, "link_id",
					     (json_int_t)info.id, "prog_id",
					     (json_int_t)info.prog_id,
					     "cgroup_id",
					     (json_int_t)info.cgroup.cgroup_id,
					     "attach_type",
					     (int)info.cgroup.attach_type));
		close(fd);
	}
}

static void status_maps(const char *pin_dir, FILE *out)
{
	static const char *const names[BPFLOAD_MAP_MAX] = { "map_conn4",
							    "map_cookie" };

	for (int m = 0; m < BPFLOAD_MAP_MAX; m++) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);
		int fd = bpfload_open_pinned_map(pin_dir, m);

		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			print_json(out,
				   json_pack("{s:s,s:I,s:I}", "pin", names[m],
					     "map_id", (json_int_t)info.id,
					     "max_entries",
					     (json_int_t)info.max_entries));
		close(fd);
	}
}

int ctl_bpf(int argc, char **argv, FILE *out, FILE *err)
{
	const char *sub = argc > 1 ? argv[1] : "";
	const char *pin_dir = NULL;

	if (strcmp(sub, "attach") == 0)
		return bpf_attach_cmd(argc - 1, argv + 1, err);
	if (argc == 4 && strcmp(argv[2], "--pin-dir") == 0)
		pin_dir = argv[3];
	if (pin_dir && strcmp(sub, "detach") == 0) {
		int n = bpfload_cleanup(pin_dir);
		if (n < 0) {
			fprintf(err, "egressctl: cleanup %s: %s\n", pin_dir,
				strerror(-n));
			return CTL_FAIL;
		}
		fprintf(out, "removed %d pins\n", n);
		return CTL_OK;
	}
	if (pin_dir && strcmp(sub, "status") == 0) {
		status_links(pin_dir, out);
		status_maps(pin_dir, out);
		return CTL_OK;
	}
	fputs(bpf_usage, err);
	return CTL_USAGE;
}

/* ---- attrib ---------------------------------------------------------------- */

static json_t *addr_json(uint32_t addr, uint16_t port)
{
	char ip[INET_ADDRSTRLEN], buf[INET_ADDRSTRLEN + 8];

	inet_ntop(AF_INET, &addr, ip, sizeof(ip));
	snprintf(buf, sizeof(buf), "%s:%u", ip, port);
	return json_string(buf);
}

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * One JSON line: the tuple, the entry, and either the process record or
 * why there is none ("status").
 */
static json_t *entry_json(const struct attrib_tuple *t,
			  const struct egress_owner *o,
			  const struct attrib_proc *p, int rc)
{
	json_t *j = json_object();

	json_object_set_new(j, "proto",
			    json_string(t->proto == IPPROTO_TCP ? "tcp" :
					t->proto == IPPROTO_UDP ? "udp" :
								  "?"));
	json_object_set_new(j, "src", addr_json(t->saddr, t->sport));
	json_object_set_new(j, "dst", addr_json(t->daddr, t->dport));
	json_object_set_new(j, "status", json_string(attrib_strerror(rc)));
	if (o) {
		json_object_set_new(j, "pid", json_integer(o->tgid));
		json_object_set_new(j, "hook",
				    json_string(attrib_src_str(o->src)));
		json_object_set_new(j, "cgroup_id",
				    json_integer((json_int_t)o->cgroup_id));
		json_object_set_new(j, "cookie",
				    json_integer((json_int_t)o->cookie));
		json_object_set_new(j, "ts_ns",
				    json_integer((json_int_t)o->ts_ns));
		json_object_set_new(
			j, "age_ms",
			json_integer((json_int_t)((boot_ns() - o->ts_ns) /
						  1000000)));
	}
	if (!p)
		return j;
	json_object_set_new(j, "via", json_string(attrib_via_str(p->via)));
	if (p->exe)
		json_object_set_new(j, "exe", json_string(p->exe));
	if (p->ncmdline) {
		json_t *a = json_array();
		for (size_t i = 0; i < p->ncmdline; i++)
			json_array_append_new(a, json_string(p->cmdline[i]));
		json_object_set_new(j, "cmdline", a);
	}
	if (p->cgroup)
		json_object_set_new(j, "cgroup", json_string(p->cgroup));
	if (p->step)
		json_object_set_new(j, "step", json_string(p->step));
	if (p->action)
		json_object_set_new(j, "action", json_string(p->action));
	return j;
}

/* "a.b.c.d:port" */
static int parse_addr(const char *s, uint32_t *addr, uint16_t *port)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long p;

	if (!colon || (size_t)(colon - s) >= sizeof(ip))
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	p = strtoul(colon + 1, &end, 10);
	if (*end || p > 65535 || inet_pton(AF_INET, ip, addr) != 1)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

static int attrib_lookup_cmd(attrib_t *a, char **args, int n, FILE *out,
			     FILE *err)
{
	int status = CTL_OK;

	if (n % 3) {
		fputs(attrib_usage, err);
		return CTL_USAGE;
	}
	for (int i = 0; i < n; i += 3) {
		struct attrib_tuple t = { 0 };
		struct egress_owner o = { 0 };
		struct attrib_proc *p;
		bool has_owner;
		int rc;

		if (strcmp(args[i], "tcp") && strcmp(args[i], "udp")) {
			fputs(attrib_usage, err);
			return CTL_USAGE;
		}
		t.proto = args[i][0] == 't' ? IPPROTO_TCP : IPPROTO_UDP;
		if (parse_addr(args[i + 1], &t.saddr, &t.sport) < 0 ||
		    parse_addr(args[i + 2], &t.daddr, &t.dport) < 0) {
			fputs(attrib_usage, err);
			return CTL_USAGE;
		}
		rc = attrib_lookup(a, &t, &p, &o);
		has_owner = p || o.tgid;
		print_json(out,
			   entry_json(&t,
				      has_owner ? (p ? &p->owner : &o) : NULL,
				      p, rc));
		if (rc)
			status = CTL_FAIL;
		attrib_proc_free(p);
	}
	return status;
}

static volatile sig_atomic_t attrib_stop;

static void attrib_on_signal(int sig)
{
	(void)sig;
	attrib_stop = 1;
}

/*
 * Prints every entry of the 5-tuple map not printed by the previous scan
 * (a new tuple, or the same tuple with a new socket or time).  Remembering
 * only the previous scan keeps memory bounded by the map's size.
 */
static long attrib_scan(attrib_t *a, struct hmap *prev, struct hmap *cur,
			long max, FILE *out)
{
	struct egress_tuple4 key, next;
	void *kp = NULL;
	int fd = attrib_conn_map_fd(a);
	long printed = 0;

	while (bpf_map_get_next_key(fd, kp, &next) == 0) {
		struct egress_owner o;
		struct attrib_tuple t;
		struct attrib_proc *p;
		char id[128];
		int rc;

		key = next;
		kp = &key;
		if (bpf_map_lookup_elem(fd, &key, &o) < 0)
			continue; /* evicted meanwhile */
		attrib_tuple_of_key(&key, &t);
		snprintf(id, sizeof(id), "%08x:%u>%08x:%u/%u %llu %llu",
			 t.saddr, t.sport, t.daddr, t.dport, t.proto,
			 (unsigned long long)o.cookie,
			 (unsigned long long)o.ts_ns);
		*hmap_slot(cur, id, strlen(id), NULL) = cur;
		if (hmap_get(prev, id, strlen(id)))
			continue;
		rc = attrib_resolve(a, &o, ATTRIB_VIA_EXACT, &p);
		print_json(out, entry_json(&t, &o, p, rc));
		attrib_proc_free(p);
		if (max > 0 && ++printed >= max)
			break;
	}
	return printed;
}

static int attrib_dump(attrib_t *a, bool follow, long interval_ms, long max,
		       FILE *out)
{
	struct hmap seen[2] = { { 0 } };
	struct timespec ts = { interval_ms / 1000,
			       (interval_ms % 1000) * 1000000 };
	long total = 0;
	int i = 0;

	signal(SIGINT, attrib_on_signal);
	signal(SIGTERM, attrib_on_signal);
	do {
		total += attrib_scan(a, &seen[i], &seen[!i],
				     max > 0 ? max - total : 0, out);
		hmap_fini(&seen[i]);
		i = !i;
		if (max > 0 && total >= max)
			break;
		if (follow)
			nanosleep(&ts, NULL);
	} while (follow && !attrib_stop);
	hmap_fini(&seen[0]);
	hmap_fini(&seen[1]);
	return CTL_OK;
}

int ctl_attrib(int argc, char **argv, FILE *out, FILE *err)
{
	static const struct option lopts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "follow", no_argument, NULL, 'f' },
		{ "interval", required_argument, NULL, 'i' },
		{ "max", required_argument, NULL, 'm' },
		{ "netns", required_argument, NULL, 'N' },
		{ "worker-exe", required_argument, NULL, 'w' },
		{ "runner-cgroup", required_argument, NULL, 'r' },
		{ "lookup", no_argument, NULL, 'l' },
		{ 0 },
	};
	struct attrib_opts o = { .conn_map_fd = -1, .cookie_map_fd = -1 };
	bool follow = false, lookup = false;
	long interval = 200, max = 0;
	attrib_t *a;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+", lopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o.pin_dir = optarg;
			break;
		case 'f':
			follow = true;
			break;
		case 'i':
			interval = strtol(optarg, NULL, 10);
			break;
		case 'm':
			max = strtol(optarg, NULL, 10);
			break;
		case 'N':
			o.diag_netns = optarg;
			break;
		case 'w':
			o.worker_exe = optarg;
			break;
		case 'r':
			o.runner_cgroup = optarg;
			break;
		case 'l':
			lookup = true;
			break;
		default:
			fputs(attrib_usage, err);
			return CTL_USAGE;
		}
	}
	if (!o.pin_dir || interval <= 0 || (!lookup && optind != argc)) {
		fputs(attrib_usage, err);
		return CTL_USAGE;
	}
	a = attrib_new(&o);
	if (!a) {
		fprintf(err, "egressctl: attribution maps in %s: %s\n",
			o.pin_dir, strerror(errno));
		return CTL_FAIL;
	}
	if (lookup)
		rc = attrib_lookup_cmd(a, argv + optind, argc - optind, out,
				       err);
	else
		rc = attrib_dump(a, follow, interval, max, out);
	attrib_free(a);
	return rc;
}
