/*
 * egressd.c - the daemon: options, start-up in a safe order, the control
 * socket, signals and shutdown.
 *
 * Start-up order: lock the instance (a second daemon refuses), load and
 * check the policy, load or create the CA, attach the BPF programs (pinned,
 * so the IPv6/raw blocks outlive a crash), open the log, listen, start the
 * proxy workers, and only then install the netfilter rules that send
 * traffic to the listener.  Readiness is reported on the control socket
 * and, when NOTIFY_SOCKET is set, as sd_notify READY=1.
 *
 * Shutdown (SIGTERM, SIGINT, `egressctl stop`): stop the proxy (every open
 * connection closes through its one close path and logs once), remove the
 * netfilter chains, flush and close the log.  The BPF blocks stay pinned
 * until `egressd --cleanup`.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bpfload.h"
#include "certforge.h"
#include "dnscache.h"
#include "udpd.h"
#include "dockerimg.h"
#include "jlog.h"
#include "nfrules.h"
#include "policy.h"
#include "polref.h"
#include "proxy.h"
#include "util.h"

#define MAX_BRIDGES 16

struct opts {
	const char *policy;
	bool audit;
	unsigned port;
	const char *cgroup;
	bool no_bpf;
	const char *bridges[MAX_BRIDGES];
	size_t nbridges;
	const char *ca_dir;
	const char *upstream_ca;
	const char *run_dir;
	const char *control;
	const char *pin_dir;
	uint32_t mark, mark_mask;
	const char *log;
	uint64_t log_max_bytes;
	unsigned log_keep;
	const char *preset;
	const char *repo;
	bool strict_host;
	bool intercept_loopback;
	int exempt_uid;
	bool foreground;
	bool cleanup;
	unsigned workers;
	unsigned udp_threads;
	unsigned first_bytes_ms;
	unsigned idle_timeout_s;
	unsigned dns_port;
	unsigned queue_num;
	uint32_t mark_dns, mark_udp;
	bool allow_icmp;
	unsigned dns_timeout_ms;
	long dns_ttl_min, dns_ttl_max;
	const char *docker_socket; /* NULL: no image attribution */
};

struct daemon {
	struct opts o;
	char control_path[PATH_MAX];
	char lock_path[PATH_MAX];
	int lock_fd;
	time_t started;
	struct proxy_shared sh;
	struct proxy *proxy;
	struct udpd_shared ush;
	struct udpd *udpd;
	bpfload_t *bpf;
	struct dockerimg *docker;
	struct nfrules_cfg nf;
	bool nf_installed;
	struct event_base *base;
	struct evconnlistener *ctl;
	struct event *sig_term, *sig_int;
	size_t nrules;
};

static const char usage[] =
	"usage: egressd --policy FILE [options]\n"
	"       egressd --cleanup [--pin-dir DIR] [--port N] [--mark M/MASK]\n"
	"  --audit                 log what would be blocked, block nothing\n"
	"  --port N                proxy TCP port (8080)\n"
	"  --cgroup DIR            cgroup v2 directory for the BPF programs "
	"(the v2 root)\n"
	"  --no-bpf                no attribution, no IPv6/raw blocks\n"
	"  --bridge PATTERN        container bridge (repeatable; docker0, br-+)\n"
	"  --ca-dir DIR            CA key and certificate (/var/lib/egressd)\n"
	"  --upstream-ca FILE      trust store for upstream TLS (system store)\n"
	"  --run-dir DIR           run files (/run/egressd)\n"
	"  --control-socket PATH   (RUN_DIR/control.sock)\n"
	"  --pin-dir DIR           pinned BPF links (/sys/fs/bpf/egressd)\n"
	"  --mark M[/MASK]         mark of the daemon's own sockets "
	"(0x10000000/0x10000000)\n"
	"  --log FILE|-            connection log "
	"(/var/log/egressd/connections.jsonl)\n"
	"  --log-max-bytes N       rotate the log at N bytes (104857600)\n"
	"  --log-keep N            rotated logs kept (5)\n"
	"  --preset NAME           github-hosted: default rules + runner "
	"scoping\n"
	"  --repo OWNER/REPO       {owner}/{repo} placeholders\n"
	"  --strict-host           Host/SNI must match the destination IP\n"
	"  --intercept-loopback    intercept TCP to 127.0.0.0/8 too\n"
	"  --exempt-uid UID|USER|none  a local stub resolver's uid "
	"(systemd-resolve if it exists)\n"
	"  --dns-port N            DNS proxy UDP port (8053)\n"
	"  --queue N               NFQUEUE number for UDP and other "
	"protocols (1)\n"
	"  --mark-dns M            mark bit of queued DNS (0x20000000)\n"
	"  --mark-udp M            mark bit of allowed UDP flows "
	"(0x40000000)\n"
	"  --allow-icmp            let ICMP through (dropped and logged "
	"otherwise)\n"
	"  --dns-timeout-ms N      wait for a resolver's answer (5000)\n"
	"  --dns-ttl-min S         DNS cache TTL floor (60)\n"
	"  --dns-ttl-max S         DNS cache TTL ceiling (3600)\n"
	"  --workers N             proxy threads (number of CPUs)\n"
	"  --udp-threads N         UDP threads, each with its own queue from "
	"--queue on\n"
	"                          and DNS socket (half the CPUs, at least "
	"1)\n"
	"  --first-bytes-ms N      wait for client bytes before judging raw "
	"TCP (2000)\n"
	"  --idle-timeout S        close idle connections (300)\n"
	"  --docker-socket PATH|none  dockerd's API, for container images "
	"(" DOCKERIMG_SOCKET_DEFAULT ")\n"
	"  --foreground            do not detach\n"
	"  --cleanup               remove the rules and BPF pins of a daemon "
	"that is not coming back\n";

static volatile sig_atomic_t quitting;

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno || *end || end == s || *out > max ? -1 : 0;
}

static int parse_mark(const char *s, uint32_t *mark, uint32_t *mask)
{
	char buf[64], *slash;
	unsigned long m, k;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	if (parse_uint(buf, UINT32_MAX, &m) || m == 0)
		return -1;
	k = m;
	if (slash && (parse_uint(slash, UINT32_MAX, &k) || (m & ~k)))
		return -1;
	*mark = (uint32_t)m;
	*mask = (uint32_t)k;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "policy", required_argument, NULL, 'P' },
		{ "audit", no_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "no-bpf", no_argument, NULL, 'B' },
		{ "bridge", required_argument, NULL, 'b' },
		{ "ca-dir", required_argument, NULL, 'c' },
		{ "upstream-ca", required_argument, NULL, 'u' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "control-socket", required_argument, NULL, 's' },
		{ "pin-dir", required_argument, NULL, 'i' },
		{ "mark", required_argument, NULL, 'm' },
		{ "log", required_argument, NULL, 'l' },
		{ "log-max-bytes", required_argument, NULL, 'L' },
		{ "log-keep", required_argument, NULL, 'K' },
		{ "preset", required_argument, NULL, 'R' },
		{ "repo", required_argument, NULL, 'O' },
		{ "strict-host", no_argument, NULL, 'S' },
		{ "intercept-loopback", no_argument, NULL, 'I' },
		{ "exempt-uid", required_argument, NULL, 'U' },
		{ "workers", required_argument, NULL, 'w' },
		{ "udp-threads", required_argument, NULL, 'W' },
		{ "first-bytes-ms", required_argument, NULL, 'f' },
		{ "idle-timeout", required_argument, NULL, 't' },
		{ "dns-port", required_argument, NULL, 'D' },
		{ "queue", required_argument, NULL, 'Q' },
		{ "mark-dns", required_argument, NULL, '2' },
		{ "mark-udp", required_argument, NULL, '4' },
		{ "allow-icmp", no_argument, NULL, 'A' },
		{ "dns-timeout-ms", required_argument, NULL, 'T' },
		{ "dns-ttl-min", required_argument, NULL, 'n' },
		{ "dns-ttl-max", required_argument, NULL, 'x' },
		{ "docker-socket", required_argument, NULL, 'k' },
		{ "foreground", no_argument, NULL, 'F' },
		{ "cleanup", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	uint32_t mask;
	int c, idx = 0;
	bool exempt_set = false;

	o->port = 8080;
	o->ca_dir = "/var/lib/egressd";
	o->run_dir = "/run/egressd";
	o->pin_dir = BPFLOAD_PIN_DIR_DEFAULT;
	o->mark = o->mark_mask = NFRULES_DEFAULT_MARK;
	o->log = "/var/log/egressd/connections.jsonl";
	o->log_max_bytes = 100ULL << 20;
	o->log_keep = 5;
	o->exempt_uid = -1;
	o->first_bytes_ms = 2000;
	o->idle_timeout_s = 300;
	o->dns_port = NFRULES_DEFAULT_DNS_PORT;
	o->queue_num = NFRULES_DEFAULT_QUEUE;
	o->mark_dns = NFRULES_DEFAULT_MARK_DNS;
	o->mark_udp = NFRULES_DEFAULT_MARK_UDP;
	o->dns_timeout_ms = UDPD_DEFAULT_TIMEOUT_MS;
	o->dns_ttl_min = DNSCACHE_TTL_MIN;
	o->dns_ttl_max = DNSCACHE_TTL_MAX;
	o->docker_socket = DOCKERIMG_SOCKET_DEFAULT;
	while ((c = getopt_long(argc, argv, "h", lo, &idx)) != -1) {
		switch (c) {
		case 'P':
			o->policy = optarg;
			break;
		case 'a':
			o->audit = true;
			break;
		case 'p':
			if (parse_uint(optarg, 65535, &v) || !v)
				goto bad;
			o->port = (unsigned)v;
			break;
		case 'g':
			o->cgroup = optarg;
			break;
		case 'B':
			o->no_bpf = true;
			break;
		case 'b':
			if (o->nbridges == MAX_BRIDGES)
				goto bad;
			o->bridges[o->nbridges++] = optarg;
			break;
		case 'c':
			o->ca_dir = optarg;
			break;
		case 'u':
			o->upstream_ca = optarg;
			break;
		case 'r':
			o->run_dir = optarg;
			break;
		case 's':
			o->control = optarg;
			break;
		case 'i':
			o->pin_dir = optarg;
			break;
		case 'm':
			if (parse_mark(optarg, &o->mark, &o->mark_mask))
				goto bad;
			break;
		case 'l':
			o->log = optarg;
			break;
		case 'L':
			if (parse_uint(optarg, ULONG_MAX, &v))
				goto bad;
			o->log_max_bytes = v;
			break;
		case 'K':
			if (parse_uint(optarg, 1000, &v))
				goto bad;
			o->log_keep = (unsigned)v;
			break;
		case 'R':
			o->preset = optarg;
			break;
		case 'O':
			o->repo = optarg;
			break;
		case 'S':
			o->strict_host = true;
			break;
		case 'I':
			o->intercept_loopback = true;
			break;
		case 'U': {
			struct passwd *pw = getpwnam(optarg);

			exempt_set = true;
			if (strcmp(optarg, "none") == 0)
				o->exempt_uid = -1;
			else if (pw)
				o->exempt_uid = (int)pw->pw_uid;
			else if (parse_uint(optarg, INT_MAX, &v) == 0)
				o->exempt_uid = (int)v;
			else
				goto bad;
			break;
		}
		case 'w':
			if (parse_uint(optarg, 256, &v) || !v)
				goto bad;
			o->workers = (unsigned)v;
			break;
		case 'W':
			if (parse_uint(optarg, 64, &v) || !v)
				goto bad;
			o->udp_threads = (unsigned)v;
			break;
		case 'f':
			if (parse_uint(optarg, 600000, &v))
				goto bad;
			o->first_bytes_ms = (unsigned)v;
			break;
		case 't':
			if (parse_uint(optarg, 86400, &v) || !v)
				goto bad;
			o->idle_timeout_s = (unsigned)v;
			break;
		case 'D':
			if (parse_uint(optarg, 65535, &v) || !v)
				goto bad;
			o->dns_port = (unsigned)v;
			break;
		case 'Q':
			if (parse_uint(optarg, 65535, &v))
				goto bad;
			o->queue_num = (unsigned)v;
			break;
		case '2':
			if (parse_mark(optarg, &o->mark_dns, &mask) ||
			    mask != o->mark_dns)
				goto bad;
			break;
		case '4':
			if (parse_mark(optarg, &o->mark_udp, &mask) ||
			    mask != o->mark_udp)
				goto bad;
			break;
		case 'A':
			o->allow_icmp = true;
			break;
		case 'T':
			if (parse_uint(optarg, 600000, &v) || v < 10)
				goto bad;
			o->dns_timeout_ms = (unsigned)v;
			break;
		case 'n':
			if (parse_uint(optarg, 86400, &v))
				goto bad;
			o->dns_ttl_min = (long)v;
			break;
		case 'x':
			if (parse_uint(optarg, 86400 * 7, &v) || !v)
				goto bad;
			o->dns_ttl_max = (long)v;
			break;
		case 'k':
			o->docker_socket = strcmp(optarg, "none") == 0 ? NULL :
									 optarg;
			break;
		case 'F':
			o->foreground = true;
			break;
		case 'C':
			o->cleanup = true;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return -1;
		}
		continue;
bad:
		fprintf(stderr, "egressd: bad value for --%s: '%s'\n",
			lo[idx].name, optarg ? optarg : "");
		return -1;
	}
	if (optind != argc || (!o->cleanup && !o->policy)) {
		fputs(usage, stderr);
		return -1;
	}
	if (o->dns_ttl_max < o->dns_ttl_min) {
		fprintf(stderr,
			"egressd: --dns-ttl-max is below --dns-ttl-min\n");
		return -1;
	}
	if (!exempt_set) {
		/* As the reference: a local stub resolver's own upstream
		 * queries are not intercepted. */
		struct passwd *pw = getpwnam("systemd-resolve");

		if (pw)
			o->exempt_uid = (int)pw->pw_uid;
	}
	if (!o->nbridges) {
		o->bridges[o->nbridges++] = "docker0";
		o->bridges[o->nbridges++] = "br-+";
	}
	if (!o->workers || !o->udp_threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		unsigned ncpu = n > 0 && n < 64 ? (unsigned)n : 2;

		if (!o->workers)
			o->workers = ncpu;
		/* Half the CPUs: the clients, the resolvers and the proxy
		 * need them too.  On two cores one thread measured faster
		 * than two (README, UDP benchmark). */
		if (!o->udp_threads)
			o->udp_threads = ncpu / 2 ? ncpu / 2 : 1;
	}
	if (o->queue_num + o->udp_threads - 1 > 65535) {
		fprintf(stderr,
			"egressd: --queue %u with %u UDP threads needs queues "
			"past 65535\n",
			o->queue_num, o->udp_threads);
		return -1;
	}
	return 0;
}

/* ---- policy -------------------------------------------------------------- */

/*
 * Reads and parses the policy.  Syntax errors and rejected rules make it
 * invalid (*why set, caller frees); cross-rule warnings are reported on
 * stderr but do not stop the daemon (reference 10.B.8 is a flaw we fix).
 */
static policy_t *load_policy(const struct opts *o, char **why)
{
	struct policy_opts po = { .preset = o->preset, .repo = o->repo };
	struct policy_diags d = { 0 };
	struct strbuf sb = { 0 };
	size_t len, errors;
	policy_t *p = NULL;
	char *text = util_read_file(o->policy, &len);

	*why = NULL;
	if (!text) {
		strbuf_addf(&sb, "%s: %s", o->policy, strerror(errno));
		*why = strbuf_steal(&sb);
		return NULL;
	}
	if (!po.repo)
		po.repo = getenv("GITHUB_REPOSITORY");
	if (policy_parse(text, len, &po, &p, &d) < 0)
		p = NULL;
	free(text);
	errors = 0;
	for (size_t i = 0; i < d.n; i++) {
		const struct policy_diag *g = &d.v[i];
		if (g->kind == POLICY_DIAG_WARNING) {
			fprintf(stderr, "egressd: %s: warning: %s\n", o->policy,
				g->msg);
			continue;
		}
		errors++;
		strbuf_addf(&sb, "%s%s:%u: %s (%s)", sb.len ? "; " : "",
			    o->policy, g->line, g->msg, g->text);
	}
	policy_diags_fini(&d);
	if (p && errors && !o->audit) {
		policy_free(p);
		p = NULL;
	} else if (p && errors) {
		fprintf(stderr,
			"egressd: audit mode: continuing without the "
			"invalid lines: %s\n",
			sb.buf);
		strbuf_reset(&sb);
	}
	if (!p)
		*why = strbuf_steal(&sb);
	strbuf_fini(&sb);
	return p;
}

/* ---- control socket ------------------------------------------------------ */

#define LOADU(x) ((json_int_t)atomic_load_explicit(&(x), memory_order_relaxed))

/* Verdicts per event type: the TCP proxy's (DNS over TCP included) plus
 * the UDP side's. */
static json_t *counters_json(const struct proxy_stats *st,
			     const struct udpd_stats *us)
{
	static const char *const names[] = { "http", "https", "tcp", "udp",
					     "dns" };
	json_t *c = json_object();

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		json_int_t a = LOADU(st->allow[i]), d = LOADU(st->deny[i]);

		if (i == POLICY_EV_UDP) {
			a += LOADU(us->udp_allow);
			d += LOADU(us->udp_deny) + LOADU(us->not_dns);
		} else if (i == POLICY_EV_DNS) {
			a += LOADU(us->dns_allow);
			d += LOADU(us->dns_deny);
		}
		json_object_set_new(c, names[i],
				    json_pack("{s:I,s:I}", "allow", a, "deny",
					      d));
	}
	return c;
}

/* Each UDP thread's share: its queue, CPU and packets and queries. */
static json_t *udp_threads_json(const struct daemon *dm)
{
	json_t *a = json_array();

	for (unsigned i = 0; dm->udpd && i < udpd_threads(dm->udpd); i++) {
		struct udpd_thread_stats ts;

		udpd_thread_stats(dm->udpd, i, &ts);
		json_array_append_new(
			a,
			json_pack("{s:i,s:i,s:I,s:I}", "queue", ts.queue, "cpu",
				  ts.cpu, "packets", (json_int_t)ts.queued,
				  "queries", (json_int_t)ts.queries));
	}
	return a;
}

static json_t *udp_json(const struct daemon *dm)
{
	const struct udpd_stats *u = &dm->ush.stats;
	json_t *q, *d;

	q = json_pack("{s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "queue",
		      (int)dm->o.queue_num, "queues", (int)dm->o.udp_threads,
		      "packets", LOADU(u->queued), "udp_allow",
		      LOADU(u->udp_allow), "udp_deny", LOADU(u->udp_deny),
		      "not_dns", LOADU(u->not_dns), "ip_dropped",
		      LOADU(u->ip_dropped), "malformed", LOADU(u->malformed),
		      "dns_marked", LOADU(u->dns_marked));
	d = json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		      "port", (int)dm->o.dns_port, "queries",
		      LOADU(u->dns_queries), "allow", LOADU(u->dns_allow),
		      "deny", LOADU(u->dns_deny), "direct",
		      LOADU(u->dns_direct), "dropped", LOADU(u->dns_dropped),
		      "answers", LOADU(u->dns_answers), "servfail",
		      LOADU(u->dns_servfail), "ignored_replies",
		      LOADU(u->dns_ignored_replies), "unknown_resolver",
		      LOADU(u->dns_unknown_dst), "resolver_from_queue_record",
		      LOADU(u->dns_via_record), "pending",
		      LOADU(u->dns_pending));
	return json_pack("{s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I}", "threads",
			 udp_threads_json(dm), "queue", q, "dns", d,
			 "attrib_misses", LOADU(u->attrib_misses),
			 "attrib_cache_hits", LOADU(u->attrib_cache_hits),
			 "attrib_diag_queries", LOADU(u->attrib_diag_queries),
			 "attrib_diag_skipped", LOADU(u->attrib_diag_skipped),
			 "attrib_pid_watch_hits",
			 LOADU(u->attrib_pid_watch_hits));
}

static json_t *status_json(struct daemon *dm)
{
	struct proxy_stats *st = &dm->sh.stats;

	return json_pack(
		"{s:b,s:i,s:I,s:s,s:b,s:{s:s,s:I},s:o,s:{s:I,s:I,s:I,s:I,s:I},"
		"s:{s:s,s:I,s:I},s:{s:b,s:i,s:s},s:{s:b,s:s},"
		"s:{s:b,s:b,s:b,s:b},s:o}",
		"ok", 1, "pid", (int)getpid(), "uptime_s",
		(json_int_t)(time(NULL) - dm->started), "policy_file",
		dm->o.policy, "audit", dm->o.audit, "policy", "file",
		dm->o.policy, "rules", (json_int_t)dm->nrules, "counters",
		counters_json(st, &dm->ush.stats), "connections", "accepted",
		(json_int_t)atomic_load(&st->accepted), "active",
		(json_int_t)atomic_load(&st->active), "refused_self",
		(json_int_t)atomic_load(&st->refused_self), "tls_client_errors",
		(json_int_t)atomic_load(&st->tls_client_errors),
		"upstream_errors",
		(json_int_t)atomic_load(&st->upstream_errors), "log", "path",
		dm->o.log, "queue_depth",
		(json_int_t)jlog_queue_depth(dm->sh.log), "lines",
		(json_int_t)jlog_lines_written(dm->sh.log), "netfilter",
		"installed", dm->nf_installed, "port", (int)dm->o.port,
		"chains", "EGRESS_*", "bpf", "attached", dm->bpf != NULL,
		"pin_dir", dm->o.pin_dir, "fail_closed", "tcp",
		dm->nf_installed, "udp", dm->nf_installed && dm->udpd != NULL,
		"bpf_blocks_pinned", dm->bpf != NULL, "running", 1, "udp",
		udp_json(dm));
}

static json_t *do_reload(struct daemon *dm)
{
	char *why;
	policy_t *p = load_policy(&dm->o, &why);
	json_t *r;

	if (!p) {
		r = json_pack("{s:b,s:s}", "ok", 0, "error",
			      why ? why : "invalid policy");
		fprintf(stderr,
			"egressd: reload refused, keeping the old "
			"policy: %s\n",
			why ? why : "invalid policy");
		free(why);
		return r;
	}
	dm->nrules = policy_nrules(p);
	polref_swap(dm->sh.policy, p);
	fprintf(stderr, "egressd: policy reloaded (%zu rules)\n", dm->nrules);
	return json_pack("{s:b,s:I}", "ok", 1, "rules", (json_int_t)dm->nrules);
}

/* One request line, one JSON reply line; then the connection closes.
 * *stop is set for `stop`: the loop ends once the reply is out. */
static json_t *handle_command(struct daemon *dm, const char *line, bool *stop)
{
	json_t *req = json_loads(line, JSON_DECODE_ANY, NULL);
	const char *cmd =
		json_is_object(req) ?
			json_string_value(json_object_get(req, "cmd")) :
			NULL;
	json_t *r;

	if (!cmd && !req)
		cmd = line; /* plain words are accepted too */
	if (!cmd)
		r = json_pack("{s:b,s:s}", "ok", 0, "error",
			      "expected {\"cmd\": \"status|stop|reload\"}");
	else if (strcmp(cmd, "status") == 0)
		r = status_json(dm);
	else if (strcmp(cmd, "reload") == 0)
		r = do_reload(dm);
	else if (strcmp(cmd, "stop") == 0) {
		r = json_pack("{s:b,s:s}", "ok", 1, "message", "stopping");
		*stop = true;
	} else
		r = json_pack("{s:b,s:s}", "ok", 0, "error", "unknown command");
	json_decref(req);
	return r;
}

/*
 * Control connections are bufferevents on the main loop: a client that
 * connects and says nothing costs a timer, not a blocked loop (reference
 * flaw R8).  Requests are one line of at most CTL_LINE_MAX bytes.
 */
#define CTL_LINE_MAX 4096

struct ctl_conn {
	struct daemon *dm;
	bool stop; /* end the loop once the reply is written */
	bool answered; /* the reply is queued */
};

static void ctl_done(struct bufferevent *bev, struct ctl_conn *cc)
{
	if (cc->stop)
		event_base_loopexit(cc->dm->base, NULL);
	bufferevent_free(bev);
	free(cc);
}

static void ctl_write_cb(struct bufferevent *bev, void *arg)
{
	ctl_done(bev, arg);
}

static void ctl_event_cb(struct bufferevent *bev, short what, void *arg);

/* Answers one request line (taken by the caller, freed here). */
static void ctl_answer(struct bufferevent *bev, struct ctl_conn *cc, char *line)
{
	json_t *r = handle_command(cc->dm, line, &cc->stop);
	char *s = json_dumps(r, JSON_COMPACT);

	cc->answered = true;
	free(line);
	json_decref(r);
	bufferevent_disable(bev, EV_READ);
	if (!s || bufferevent_write(bev, s, strlen(s)) < 0 ||
	    bufferevent_write(bev, "\n", 1) < 0) {
		free(s);
		ctl_done(bev, cc);
		return;
	}
	free(s);
	/* ctl_write_cb frees the connection once the reply is out */
	bufferevent_setcb(bev, NULL, ctl_write_cb, ctl_event_cb, cc);
}

static void ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);

	/* a request whose client closed without a newline still counts (the
	 * input's end is frozen by libevent: take the bytes as they are) */
	if ((what & BEV_EVENT_EOF) && len > 0 && len <= CTL_LINE_MAX &&
	    !cc->answered) {
		char *line = util_xmalloc(len + 1);
		evbuffer_remove(in, line, len);
		line[len] = '\0';
		ctl_answer(bev, cc, line);
		return;
	}
	ctl_done(bev, arg); /* EOF, error or timeout */
}

static void ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);

	if (line)
		ctl_answer(bev, cc, line);
	else if (evbuffer_get_length(in) > CTL_LINE_MAX)
		ctl_done(bev, cc);
}

static void ctl_accept_cb(struct evconnlistener *l UNUSED, evutil_socket_t fd,
			  struct sockaddr *sa UNUSED, int len UNUSED, void *arg)
{
	struct timeval tv = { 5, 0 };
	struct ctl_conn *cc = util_xcalloc(1, sizeof(*cc));
	struct bufferevent *bev;

	cc->dm = arg;
	evutil_make_socket_nonblocking(fd);
	/* BEV_OPT_CLOSE_ON_FREE: the bufferevent owns the client fd */
	bev = bufferevent_socket_new(cc->dm->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		close(fd);
		free(cc);
		return;
	}
	bufferevent_setcb(bev, ctl_read_cb, NULL, ctl_event_cb, cc);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
}

static int open_control(struct daemon *dm)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;

	if (strlen(dm->control_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "egressd: control socket path too long\n");
		return -1;
	}
	memcpy(sa.sun_path, dm->control_path, strlen(dm->control_path) + 1);
	unlink(dm->control_path);
	old = umask(077); /* 0600: root only */
	dm->ctl = evconnlistener_new_bind(
		dm->base, ctl_accept_cb, dm,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
		(struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (!dm->ctl || chmod(dm->control_path, 0600) < 0) {
		fprintf(stderr, "egressd: control socket %s: %s\n",
			dm->control_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- start-up pieces ----------------------------------------------------- */

static int take_lock(struct daemon *dm)
{
	snprintf(dm->lock_path, sizeof(dm->lock_path), "%s/egressd.lock",
		 dm->o.run_dir);
	dm->lock_fd = open(dm->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (dm->lock_fd < 0) {
		fprintf(stderr, "egressd: %s: %s\n", dm->lock_path,
			strerror(errno));
		return -1;
	}
	if (flock(dm->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr,
			"egressd: another egressd runs for this "
			"instance (%s is locked)\n",
			dm->lock_path);
		return -1;
	}
	return 0;
}

static SSL_CTX *upstream_ctx(const char *ca_file, bool verify)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	if (!c)
		return NULL;
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	/* CLIENT makes OpenSSL hand each new session to the proxy's
	 * per-worker cache (proxy_tls.c), the only one that offers them;
	 * without NO_INTERNAL_STORE every session (with the upstream's
	 * certificate chain) would also pile up in the context's own store,
	 * up to 20480 of them: megabytes after a few thousand handshakes. */
	SSL_CTX_set_session_cache_mode(
		c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	if (!verify) {
		SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
		return c;
	}
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	if (ca_file ? SSL_CTX_load_verify_locations(c, ca_file, NULL) != 1 :
		      SSL_CTX_set_default_verify_paths(c) != 1) {
		SSL_CTX_free(c);
		return NULL;
	}
	return c;
}

static int listen_proxy(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_ANY),
				  .sin_port = htons(port) };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 1024) < 0) {
		fprintf(stderr, "egressd: listen on port %u: %s\n", port,
			strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void notify_ready(void)
{
	const char *ns = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	int fd;

	if (!ns || !*ns || strlen(ns) >= sizeof(sa.sun_path))
		return;
	len = strlen(ns);
	memcpy(sa.sun_path, ns, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) <
	    0)
		fprintf(stderr, "egressd: sd_notify: %s\n", strerror(errno));
	close(fd);
}

static void fill_nf(struct daemon *dm)
{
	dm->nf.proxy_port = (uint16_t)dm->o.port;
	dm->nf.mark = dm->o.mark;
	dm->nf.mark_mask = dm->o.mark_mask;
	dm->nf.bridges = dm->o.bridges;
	dm->nf.nbridges = dm->o.nbridges;
	dm->nf.intercept_loopback = dm->o.intercept_loopback;
	dm->nf.exempt_uid = dm->o.exempt_uid;
	dm->nf.dns_port = (uint16_t)dm->o.dns_port;
	dm->nf.queue_num = (uint16_t)dm->o.queue_num;
	dm->nf.queues = (uint16_t)dm->o.udp_threads;
	dm->nf.mark_dns = dm->o.mark_dns;
	dm->nf.mark_udp = dm->o.mark_udp;
	dm->nf.allow_icmp = dm->o.allow_icmp;
}

/* mkdir -p of the directory holding path. */
static int mkdir_parent(const char *path)
{
	char buf[PATH_MAX], *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	slash = strrchr(buf, '/');
	if (!slash || slash == buf)
		return 0;
	*slash = '\0';
	return util_mkdir_p(buf, 0755);
}

static void on_signal(evutil_socket_t sig UNUSED, short ev UNUSED, void *arg)
{
	struct daemon *dm = arg;

	quitting = 1;
	event_base_loopexit(dm->base, NULL);
}

/* ---- run, cleanup -------------------------------------------------------- */

static int cleanup_mode(struct daemon *dm)
{
	char *err = NULL;
	int rc = 0;

	fill_nf(dm);
	if (nfrules_remove(&dm->nf, &err) < 0) {
		fprintf(stderr, "egressd: --cleanup: netfilter: %s\n",
			err ? err : "failed");
		rc = 1;
	}
	free(err);
	if (!dm->o.no_bpf && bpfload_cleanup(dm->o.pin_dir) < 0) {
		fprintf(stderr, "egressd: --cleanup: BPF pins in %s remain\n",
			dm->o.pin_dir);
		rc = 1;
	}
	if (!rc)
		fprintf(stderr, "egressd: removed the rules and BPF pins of "
				"this instance\n");
	return rc;
}

static int start(struct daemon *dm)
{
	/* 256 warm leaves (about 16 KiB each) keep the proxy small; a miss
	 * costs one signing (about 0.4 ms). */
	struct certforge_opts co = { .ca_dir = dm->o.ca_dir, .cache_max = 256 };
	struct jlog_opts jo = { .path = dm->o.log,
				.max_bytes = dm->o.log_max_bytes,
				.keep = dm->o.log_keep };
	char pub[PATH_MAX], *err = NULL;
	policy_t *p;
	int lfd;

	p = load_policy(&dm->o, &err);
	if (!p) {
		fprintf(stderr, "egressd: invalid policy: %s\n",
			err ? err : "?");
		free(err);
		return -1;
	}
	dm->nrules = policy_nrules(p);
	dm->sh.policy = polref_new(p);
	dm->sh.cache = dnscache_new(DNSCACHE_CAPACITY);
	if (dnscache_set_ttl_bounds(dm->sh.cache, dm->o.dns_ttl_min,
				    dm->o.dns_ttl_max) < 0)
		return -1;
	dm->sh.audit = dm->o.audit;
	dm->sh.strict_host = dm->o.strict_host;
	dm->sh.mark = dm->o.mark;
	dm->sh.listen_port = (uint16_t)dm->o.port;
	dm->sh.first_bytes_ms = dm->o.first_bytes_ms;
	dm->sh.idle_timeout_s = dm->o.idle_timeout_s;
	dm->sh.attrib.conn_map_fd = dm->sh.attrib.cookie_map_fd = -1;

	snprintf(pub, sizeof(pub), "%s/ca.pem", dm->o.run_dir);
	co.public_copy = pub;
	if (util_mkdir_p(dm->o.ca_dir, 0700) < 0) {
		fprintf(stderr, "egressd: %s: %s\n", dm->o.ca_dir,
			strerror(errno));
		return -1;
	}
	dm->sh.cf = certforge_new(&co, &err);
	if (!dm->sh.cf) {
		fprintf(stderr, "egressd: CA: %s\n", err ? err : "?");
		free(err);
		return -1;
	}
	dm->sh.up_verify = upstream_ctx(dm->o.upstream_ca, true);
	dm->sh.up_insecure = upstream_ctx(NULL, false);
	if (!dm->sh.up_verify || !dm->sh.up_insecure) {
		fprintf(stderr,
			"egressd: upstream trust store %s: cannot load\n",
			dm->o.upstream_ca ? dm->o.upstream_ca : "(system)");
		return -1;
	}
	if (!dm->o.no_bpf) {
		struct bpfload_opts bo = { .cgroup = dm->o.cgroup,
					   .pin_dir = dm->o.pin_dir,
					   .own_mark = dm->o.mark,
					   .own_mask = dm->o.mark_mask };
		if (bpfload_pin_dir_prepare(dm->o.pin_dir) < 0 ||
		    bpfload_open(&bo, &dm->bpf) < 0 ||
		    bpfload_attach(dm->bpf) < 0) {
			fprintf(stderr, "egressd: BPF: cannot attach to %s\n",
				dm->o.cgroup ? dm->o.cgroup : "the v2 root");
			return -1;
		}
		dm->sh.attrib.conn_map_fd =
			bpfload_map_fd(dm->bpf, BPFLOAD_MAP_CONN4);
		dm->sh.attrib.cookie_map_fd =
			bpfload_map_fd(dm->bpf, BPFLOAD_MAP_COOKIE);
	}
	/* before the workers: each one's attrib_t reads the same cache
	 * (without BPF there is no attribution to add an image to) */
	if (dm->o.docker_socket && !dm->o.no_bpf) {
		dm->docker = dockerimg_new(dm->o.docker_socket);
		if (!dm->docker) {
			fprintf(stderr, "egressd: --docker-socket %s: %s\n",
				dm->o.docker_socket, strerror(errno));
			return -1;
		}
		dm->sh.attrib.docker = dm->docker;
	}
	if (strcmp(dm->o.log, "-") != 0 && mkdir_parent(dm->o.log) < 0) {
		fprintf(stderr, "egressd: log directory for %s: %s\n",
			dm->o.log, strerror(errno));
		return -1;
	}
	dm->sh.log = jlog_open(&jo);
	if (!dm->sh.log) {
		fprintf(stderr, "egressd: log %s: %s\n", dm->o.log,
			strerror(errno));
		return -1;
	}
	lfd = listen_proxy((uint16_t)dm->o.port);
	if (lfd < 0 || proxy_start(&dm->sh, lfd, dm->o.workers, &dm->proxy))
		return -1;
	dm->ush.dns = (struct dnsj_env){ .policy = dm->sh.policy,
					 .cache = dm->sh.cache,
					 .audit = dm->sh.audit,
					 .log = dm->sh.log };
	dm->ush.attrib = dm->sh.attrib;
	dm->ush.dns_port = (uint16_t)dm->o.dns_port;
	dm->ush.queue_num = (uint16_t)dm->o.queue_num;
	dm->ush.threads = dm->o.udp_threads;
	dm->ush.own_mark = dm->o.mark;
	dm->ush.mark_dns = dm->o.mark_dns;
	dm->ush.mark_udp = dm->o.mark_udp;
	dm->ush.timeout_ms = dm->o.dns_timeout_ms;
	dm->ush.max_pending = UDPD_DEFAULT_MAX_PENDING;
	if (udpd_start(&dm->ush, &dm->udpd) < 0)
		return -1;
	fill_nf(dm);
	if (nfrules_install(&dm->nf, &err) < 0) {
		fprintf(stderr, "egressd: netfilter: %s\n", err ? err : "?");
		free(err);
		return -1;
	}
	dm->nf_installed = true;
	return open_control(dm);
}

static void stop(struct daemon *dm)
{
	char *err = NULL;

	if (dm->proxy)
		proxy_stop(dm->proxy);
	dm->proxy = NULL;
	udpd_stop(dm->udpd);
	dm->udpd = NULL;
	if (dm->nf_installed && nfrules_remove(&dm->nf, &err) < 0)
		fprintf(stderr, "egressd: netfilter teardown: %s\n",
			err ? err : "?");
	free(err);
	dm->nf_installed = false;
	if (dm->ctl) {
		evconnlistener_free(dm->ctl);
		unlink(dm->control_path);
	}
	jlog_close(dm->sh.log);
	/* after the workers, whose attrib_t read it */
	dockerimg_free(dm->docker);
	/* the BPF links stay pinned (fail closed) until --cleanup */
	bpfload_free(dm->bpf);
	certforge_free(dm->sh.cf);
	SSL_CTX_free(dm->sh.up_verify);
	SSL_CTX_free(dm->sh.up_insecure);
	dnscache_free(dm->sh.cache);
	polref_free(dm->sh.policy);
	if (dm->sig_term)
		event_free(dm->sig_term);
	if (dm->sig_int)
		event_free(dm->sig_int);
	if (dm->base)
		event_base_free(dm->base);
	if (dm->lock_fd >= 0) {
		unlink(dm->lock_path);
		close(dm->lock_fd);
	}
}

int main(int argc, char **argv)
{
	struct daemon dm;
	int rc = 1;

	memset(&dm, 0, sizeof(dm));
	dm.lock_fd = -1;
	if (parse_opts(argc, argv, &dm.o) < 0)
		return 2;
	if (dm.o.cleanup)
		return cleanup_mode(&dm);
	signal(SIGPIPE, SIG_IGN);
	if (mkdir(dm.o.run_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "egressd: %s: %s\n", dm.o.run_dir,
			strerror(errno));
		return 1;
	}
	snprintf(dm.control_path, sizeof(dm.control_path), "%s",
		 dm.o.control ? dm.o.control : "");
	if (!dm.o.control)
		snprintf(dm.control_path, sizeof(dm.control_path),
			 "%s/control.sock", dm.o.run_dir);
	dm.started = time(NULL);
	dm.base = event_base_new();
	if (!dm.base || take_lock(&dm) < 0)
		goto out;
	if (!dm.o.foreground && daemon(0, 1) < 0) {
		fprintf(stderr, "egressd: daemon: %s\n", strerror(errno));
		goto out;
	}
	if (start(&dm) < 0)
		goto out;
	dm.sig_term = evsignal_new(dm.base, SIGTERM, on_signal, &dm);
	dm.sig_int = evsignal_new(dm.base, SIGINT, on_signal, &dm);
	if (!dm.sig_term || !dm.sig_int || event_add(dm.sig_term, NULL) ||
	    event_add(dm.sig_int, NULL))
		goto out;
	fprintf(stderr, "egressd: ready: port %u, %zu rules%s, control %s\n",
		dm.o.port, dm.nrules, dm.o.audit ? ", audit mode" : "",
		dm.control_path);
	notify_ready();
	event_base_dispatch(dm.base);
	rc = 0;
out:
	stop(&dm);
	return rc;
}
