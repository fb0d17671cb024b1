/*
 * event_json.c - JSON object -> struct policy_event.
 */
#include "event_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int errf(char *err, size_t len, const char *fmt, ...) PRINTF(3, 4);

static int errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * An optional string field: absent or null -> NULL; empty -> NULL when
 * empty_is_absent (process fields, as the reference drops empty ones).
 */
static int opt_str(json_t *obj, const char *key, bool empty_is_absent,
		   const char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return errf(err, errlen, "\"%s\" must be a string", key);
	*out = json_string_value(v);
	if (empty_is_absent && !**out)
		*out = NULL;
	return 0;
}

static const char *const ev_types[POLICY_EV_TYPE_MAX] = {
	[POLICY_EV_HTTP] = "http", [POLICY_EV_HTTPS] = "https",
	[POLICY_EV_TCP] = "tcp",   [POLICY_EV_UDP] = "udp",
	[POLICY_EV_DNS] = "dns",
};

static int read_proc(json_t *obj, struct evj *e, char *err, size_t errlen)
{
	struct policy_proc *pr = &e->ev.proc;
	json_t *cl = json_object_get(obj, "cmdline");

	if (opt_str(obj, "exe", true, &pr->exe, err, errlen) ||
	    opt_str(obj, "cgroup", true, &pr->cgroup, err, errlen) ||
	    opt_str(obj, "step", true, &pr->step, err, errlen) ||
	    opt_str(obj, "action", true, &pr->action, err, errlen) ||
	    opt_str(obj, "image", true, &pr->image, err, errlen))
		return -1;
	if (!cl || json_is_null(cl))
		return 0;
	if (!json_is_array(cl))
		return errf(err, errlen,
			    "\"cmdline\" must be a list of strings");
	if (json_array_size(cl) == 0)
		return 0;
	e->cmdline = util_xcalloc(json_array_size(cl), sizeof(char *));
	for (size_t i = 0; i < json_array_size(cl); i++) {
		json_t *a = json_array_get(cl, i);
		if (!json_is_string(a))
			return errf(err, errlen,
				    "\"cmdline\" must be a list of strings");
		e->cmdline[i] = json_string_value(a);
	}
	pr->cmdline = e->cmdline;
	pr->ncmdline = json_array_size(cl);
	return 0;
}

static int read_dns_response(json_t *obj, struct evj *e, char *err,
			     size_t errlen)
{
	json_t *ans = json_object_get(obj, "answers");
	json_t *ttl = json_object_get(obj, "ttl");

	e->kind = EVJ_DNS_RESPONSE;
	if (opt_str(obj, "name", false, &e->name, err, errlen))
		return -1;
	if (!e->name)
		return errf(err, errlen, "dns_response needs \"name\"");
	if (ans && !json_is_null(ans)) {
		if (!json_is_array(ans))
			return errf(err, errlen,
				    "\"answers\" must be a list of strings");
		e->answers =
			util_xcalloc(json_array_size(ans) + 1, sizeof(char *));
		for (size_t i = 0; i < json_array_size(ans); i++) {
			json_t *a = json_array_get(ans, i);
			if (!json_is_string(a))
				return errf(err, errlen,
					    "\"answers\" must be a list of "
					    "strings");
			e->answers[e->nanswers++] = json_string_value(a);
		}
	}
	e->ttl = 300;
	if (ttl && !json_is_null(ttl)) {
		if (!json_is_integer(ttl))
			return errf(err, errlen, "\"ttl\" must be an integer");
		e->ttl = (long)json_integer_value(ttl);
	}
	return 0;
}

int evj_read(json_t *obj, bool strict, struct evj *e, char *err, size_t errlen)
{
	json_t *t, *ip, *port, *mitm;
	size_t i;

	memset(e, 0, sizeof(*e));
	e->mitm = true;
	if (!json_is_object(obj))
		return errf(err, errlen, "an event must be a JSON object");
	t = json_object_get(obj, "type");
	if (!json_is_string(t))
		return errf(err, errlen, "\"type\" must be a string");
	e->type = json_string_value(t);
	if (strcmp(e->type, "dns_response") == 0)
		return read_dns_response(obj, e, err, errlen);
	for (i = 0; i < POLICY_EV_TYPE_MAX; i++)
		if (strcmp(e->type, ev_types[i]) == 0)
			break;
	if (i == POLICY_EV_TYPE_MAX) {
		if (strict)
			return errf(err, errlen,
				    "unknown event type \"%s\" (https, http, "
				    "tcp, udp, dns or dns_response)",
				    e->type);
		e->kind = EVJ_OTHER;
		i = POLICY_EV_TCP; /* matched raw, with all its fields */
	} else {
		e->kind = EVJ_EVENT;
	}
	e->ev.type = (enum policy_ev_type)i;

	ip = json_object_get(obj, "dst_ip");
	port = json_object_get(obj, "dst_port");
	if (ip && !json_is_null(ip) && !json_is_string(ip))
		return errf(err, errlen, "\"dst_ip\" must be a string");
	if (port && !json_is_null(port) && !json_is_integer(port))
		return errf(err, errlen, "\"dst_port\" must be an integer");
	if (strict && !json_is_string(ip))
		return errf(err, errlen, "missing \"dst_ip\"");
	if (strict && !json_is_integer(port))
		return errf(err, errlen, "missing \"dst_port\"");
	e->ev.dst_ip = json_is_string(ip) ? json_string_value(ip) : "";
	e->ev.dst_port = json_is_integer(port) ? json_integer_value(port) : 0;

	if (opt_str(obj, "url", false, &e->ev.url, err, errlen) ||
	    opt_str(obj, "host", false, &e->ev.host, err, errlen) ||
	    opt_str(obj, "name", false, &e->ev.name, err, errlen) ||
	    opt_str(obj, "method", false, &e->ev.method, err, errlen) ||
	    read_proc(obj, e, err, errlen))
		return -1;
	if (strict && e->ev.type == POLICY_EV_HTTP && !e->ev.url)
		return errf(err, errlen, "an http event needs \"url\"");
	if (strict && e->ev.type == POLICY_EV_DNS && !e->ev.name)
		return errf(err, errlen, "a dns event needs \"name\"");
	mitm = json_object_get(obj, "mitm");
	if (mitm && !json_is_null(mitm)) {
		if (!json_is_boolean(mitm))
			return errf(err, errlen,
				    "\"mitm\" must be true or false");
		e->mitm = json_is_true(mitm);
	}
	return 0;
}

void evj_fini(struct evj *e)
{
	free(e->cmdline);
	free(e->answers);
	e->cmdline = NULL;
	e->answers = NULL;
}
