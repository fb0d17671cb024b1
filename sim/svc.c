/*
 * svc.c - svc_main(): reads the services' config (format in svc.h), sets up
 * every listener on one event loop and runs it until SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc.h"
#include "svc_int.h"
#include "util.h"

/*
 * What each kind of service listens with: a TCP protocol, a datagram
 * handler, or (DNS) both on the same address and port.
 */
static const struct {
	const char *name;
	const struct svc_conn_ops *ops;
	svc_dgram_fn dgram;
} kinds[SVC_KIND_MAX] = {
	[SVC_HTTP] = { "http", &svc_http_ops, NULL },
	[SVC_HTTPS] = { "https", &svc_http_ops, NULL },
	[SVC_DNS] = { "dns", &svc_dns_tcp_ops, svc_dns_dgram },
	[SVC_UDP_ECHO] = { "udp_echo", NULL, svc_udp_echo_dgram },
	[SVC_TCP_ECHO] = { "tcp_echo", &svc_echo_ops, NULL },
	[SVC_TCP_BANNER] = { "tcp_banner", &svc_banner_ops, NULL },
};

#define DNS_TTL_DEFAULT 300

const char *svc_kind_str(enum svc_kind k)
{
	return k < SVC_KIND_MAX ? kinds[k].name : "?";
}

static int kind_by_name(const char *name)
{
	for (int k = 0; k < SVC_KIND_MAX; k++) {
		if (strcmp(kinds[k].name, name) == 0)
			return k;
	}
	return -1;
}

static int parse_addr(const char *addr, json_int_t port,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (port < 1 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	return -1;
}

static struct svc_listener *listener_add(struct svc *sv, enum svc_kind kind,
					 bool udp,
					 const struct sockaddr_storage *ss,
					 socklen_t len)
{
	struct svc_listener *l = util_xcalloc(1, sizeof(*l));

	l->sv = sv;
	l->kind = kind;
	l->udp = udp;
	l->fd = -1;
	l->addr = *ss;
	l->addrlen = len;
	l->ops = kinds[kind].ops;
	l->dgram = kinds[kind].dgram;
	svc_addr_str((const struct sockaddr *)ss, l->local, sizeof(l->local));
	sv->ls = util_xrealloc(sv->ls, (sv->nls + 1) * sizeof(*sv->ls));
	sv->ls[sv->nls++] = l;
	return l;
}

/* Settings beyond addr and port, one entry of a service array. */
struct entry {
	const char *addr;
	json_int_t port;
	json_t *certs, *zone;
	json_int_t ttl;
	const char *banner;
};

static int unpack_entry(enum svc_kind kind, json_t *ent, struct entry *e,
			const char *what)
{
	json_error_t jerr;
	int rc;

	e->ttl = DNS_TTL_DEFAULT;
	switch (kind) {
	case SVC_HTTPS:
		rc = json_unpack_ex(ent, &jerr, JSON_STRICT, "{s:s,s:I,s:o}",
				    "addr", &e->addr, "port", &e->port, "certs",
				    &e->certs);
		break;
	case SVC_DNS:
		rc = json_unpack_ex(ent, &jerr, JSON_STRICT,
				    "{s:s,s:I,s:o,s?I}", "addr", &e->addr,
				    "port", &e->port, "zone", &e->zone, "ttl",
				    &e->ttl);
		break;
	case SVC_TCP_BANNER:
		rc = json_unpack_ex(ent, &jerr, JSON_STRICT, "{s:s,s:I,s:s}",
				    "addr", &e->addr, "port", &e->port,
				    "banner", &e->banner);
		break;
	default:
		rc = json_unpack_ex(ent, &jerr, JSON_STRICT, "{s:s,s:I}",
				    "addr", &e->addr, "port", &e->port);
		break;
	}
	if (rc < 0)
		fprintf(stderr, "svc: %s: %s\n", what, jerr.text);
	else if (e->ttl < 0 || e->ttl > INT32_MAX)
		fprintf(stderr, "svc: %s: ttl out of range\n", what);
	else
		return 0;
	return -1;
}

static int load_entry(struct svc *sv, enum svc_kind kind, json_t *ent,
		      const char *where, const char *basedir)
{
	struct sockaddr_storage ss;
	struct svc_listener *l;
	struct svc_zone *z;
	struct entry e = { 0 };
	socklen_t len;
	char what[256];

	if (unpack_entry(kind, ent, &e, where) < 0)
		return -1;
	if (parse_addr(e.addr, e.port, &ss, &len) < 0) {
		fprintf(stderr, "svc: %s: bad address %s port %lld\n", where,
			e.addr, (long long)e.port);
		return -1;
	}
	l = listener_add(sv, kind, !kinds[kind].ops, &ss, len);
	snprintf(what, sizeof(what), "%s %s", where, l->local);
	switch (kind) {
	case SVC_HTTPS:
		l->tls = svc_tls_new(e.certs, basedir, what);
		return l->tls ? 0 : -1;
	case SVC_TCP_BANNER:
		l->banner = util_xstrdup(e.banner);
		return 0;
	case SVC_DNS:
		z = svc_zone_new(e.zone, what);
		if (!z)
			return -1;
		sv->zones = util_xrealloc(
			sv->zones, (sv->nzones + 1) * sizeof(*sv->zones));
		sv->zones[sv->nzones++] = z;
		l->zone = z;
		l->ttl = (uint32_t)e.ttl;
		/* and the same zone over UDP */
		l = listener_add(sv, kind, true, &ss, len);
		l->zone = z;
		l->ttl = (uint32_t)e.ttl;
		return 0;
	default:
		return 0;
	}
}

static int load_services(struct svc *sv, json_t *root, const char *basedir)
{
	const char *key;
	json_t *val;

	json_object_foreach(root, key, val)
	{
		int kind = kind_by_name(key);
		char where[64];
		size_t i;
		json_t *ent;

		if (strcmp(key, "log") == 0 || strcmp(key, "idle_timeout") == 0)
			continue;
		if (kind < 0 || !json_is_array(val)) {
			fprintf(stderr,
				"svc: config: unknown key or not an "
				"array: \"%s\"\n",
				key);
			return -1;
		}
		json_array_foreach(val, i, ent)
		{
			snprintf(where, sizeof(where), "%s[%zu]", key, i);
			if (load_entry(sv, (enum svc_kind)kind, ent, where,
				       basedir) < 0)
				return -1;
		}
	}
	return 0;
}

static int load_globals(struct svc *sv, json_t *root, const char *basedir)
{
	json_t *log = json_object_get(root, "log");
	json_t *idle = json_object_get(root, "idle_timeout");
	double secs = SVC_IDLE_DEFAULT;
	char path[PATH_MAX];

	if (idle) {
		secs = json_number_value(idle);
		if (!json_is_number(idle) || secs <= 0 || secs > 86400) {
			fprintf(stderr, "svc: config: idle_timeout must be a "
					"number of seconds\n");
			return -1;
		}
	}
	sv->idle.tv_sec = (time_t)secs;
	sv->idle.tv_usec = (suseconds_t)((secs - (double)(time_t)secs) * 1e6);
	if (log && !json_is_string(log)) {
		fprintf(stderr, "svc: config: log must be a path\n");
		return -1;
	}
	if (!log || strcmp(json_string_value(log), "-") == 0)
		return svc_log_open(sv, "-");
	if (json_string_value(log)[0] == '/')
		snprintf(path, sizeof(path), "%s", json_string_value(log));
	else
		snprintf(path, sizeof(path), "%s/%s", basedir,
			 json_string_value(log));
	return svc_log_open(sv, path);
}

static int load_config(struct svc *sv, const char *path)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	const char *slash = strrchr(path, '/');
	char *basedir;
	int rc = -1;

	if (!root) {
		fprintf(stderr, "svc: config %s: line %d: %s\n", path,
			jerr.line, jerr.text);
		return -1;
	}
	basedir = slash ? util_xstrndup(path, (size_t)(slash - path)) :
			  util_xstrdup(".");
	if (!json_is_object(root))
		fprintf(stderr, "svc: config %s: not a JSON object\n", path);
	else if (load_services(sv, root, basedir) == 0 &&
		 load_globals(sv, root, basedir) == 0)
		rc = 0;
	free(basedir);
	json_decref(root);
	return rc;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct svc *sv = arg;
	json_t *line = svc_log_new("svc", NULL, NULL, NULL, "stop");

	(void)what;
	json_object_set_new(line, "signal", json_integer(sig));
	svc_log_write(sv, line);
	event_base_loopexit(sv->base, NULL);
}

static int add_signals(struct svc *sv)
{
	static const int sigs[] = { SIGTERM, SIGINT };

	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		sv->sigs[i] = evsignal_new(sv->base, sigs[i], signal_cb, sv);
		if (!sv->sigs[i] || evsignal_add(sv->sigs[i], NULL) < 0) {
			fprintf(stderr, "svc: cannot catch signal %d\n",
				sigs[i]);
			return -1;
		}
	}
	return 0;
}

static void svc_free(struct svc *sv)
{
	svc_conn_close_all(sv, "shutdown");
	for (size_t i = 0; i < sv->nls; i++)
		svc_listener_free(sv->ls[i]);
	free(sv->ls);
	for (size_t i = 0; i < sv->nzones; i++)
		svc_zone_free(sv->zones[i]);
	free(sv->zones);
	for (size_t i = 0; i < ARRAY_SIZE(sv->sigs); i++) {
		if (sv->sigs[i])
			event_free(sv->sigs[i]);
	}
	if (sv->base)
		event_base_free(sv->base);
	svc_log_close(sv);
	free(sv);
}

static int svc_run(struct svc *sv, const char *config_path)
{
	json_t *line;

	sv->base = event_base_new();
	if (!sv->base) {
		fprintf(stderr, "svc: cannot create the event loop\n");
		return -1;
	}
	if (load_config(sv, config_path) < 0)
		return -1;
	for (size_t i = 0; i < sv->nls; i++) {
		if (svc_listen(sv->ls[i]) < 0)
			return -1;
	}
	if (add_signals(sv) < 0)
		return -1;
	/* Only now: "start" means every listener accepts. */
	line = svc_log_new("svc", NULL, NULL, NULL, "start");
	json_object_set_new(line, "pid", json_integer(getpid()));
	svc_log_write(sv, line);
	if (event_base_dispatch(sv->base) < 0) {
		fprintf(stderr, "svc: event loop failed\n");
		return -1;
	}
	return 0;
}

int svc_main(const char *config_path)
{
	struct svc *sv = util_xcalloc(1, sizeof(*sv));
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe;
	int rc;

	TAILQ_INIT(&sv->conns);
	sv->log_fd = -1;
	/* A peer closing early must cost a write error, not the process. */
	sigaction(SIGPIPE, &ign, &old_pipe);
	rc = svc_run(sv, config_path);
	svc_free(sv);
	sigaction(SIGPIPE, &old_pipe, NULL);
	return rc;
}
