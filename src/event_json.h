/*
 * event_json.h - decision events from JSON objects (egressctl check's input
 * lines and connection-log lines for analyze).
 */
#ifndef EGRESS_EVENT_JSON_H
#define EGRESS_EVENT_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "policy.h"

enum evj_kind {
	EVJ_EVENT, /* a decision event (ev is filled in) */
	EVJ_DNS_RESPONSE, /* feeds the DNS cache */
	EVJ_OTHER, /* analyze only: a type the engine has no stage for */
	EVJ_KIND_MAX
};

struct evj {
	enum evj_kind kind;
	const char *type; /* the line's "type" */
	struct policy_event ev;
	bool mitm; /* https: judge as the daemon's TLS stage */
	/* dns_response */
	const char *name;
	const char **answers;
	size_t nanswers;
	long ttl;
	/* storage */
	const char **cmdline;
};

/*
 * Reads one event object.  strict (egressctl check) requires dst_ip and
 * dst_port and the fields each type needs; otherwise (analyze, reading
 * logs) missing fields take the reference's defaults ("" and 0) and unknown
 * types are EVJ_OTHER.  Strings stay owned by obj.  Returns 0, or -1 with a
 * message in err.  evj_fini releases what evj_read allocated.
 */
int evj_read(json_t *obj, bool strict, struct evj *out, char *err,
	     size_t errlen) NONNULL(3, 4) WUNRES;
void evj_fini(struct evj *e) NONNULL(1);

#endif /* EGRESS_EVENT_JSON_H */
