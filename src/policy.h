/*
 * policy.h - the policy language and the decision engine.
 *
 * This module is pure: no I/O, no event loop, no netfilter, no BPF.  The
 * daemon, `egressctl check/analyze` and the unit tests call the very same
 * functions.  A policy_t is immutable once built and may be shared by any
 * number of threads; the DNS cache (dnscache.h) is the only mutable state the
 * decisions read, and it locks internally.
 *
 * The language is the reference's (SEED_BEHAVIOUR.md section 1): one rule or
 * header per line, headers setting a context that later rules inherit, rules
 * flattened into self-contained records that are matched in order (the first
 * matching index is reported; any match allows).
 */
#ifndef EGRESS_POLICY_H
#define EGRESS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"

struct dnscache;

enum policy_rule_type {
	POLICY_HOST,
	POLICY_WILDCARD_HOST,
	POLICY_IP,
	POLICY_CIDR,
	POLICY_URL,
	POLICY_PATH,
	POLICY_DNS_HOST,
	POLICY_DNS_WILDCARD_HOST,
	POLICY_RULE_TYPE_MAX
};

enum policy_proto { POLICY_TCP, POLICY_UDP, POLICY_PROTO_MAX };

/* How an attribute value was written: bare, `backtick` or "double-quoted". */
enum policy_val_form {
	POLICY_VAL_BARE,
	POLICY_VAL_BACKTICK,
	POLICY_VAL_QUOTED,
	POLICY_VAL_FORM_MAX
};

enum policy_attr_key {
	POLICY_ATTR_EXE,
	POLICY_ATTR_ARG,
	POLICY_ATTR_ARG_N,
	POLICY_ATTR_STEP,
	POLICY_ATTR_ACTION,
	POLICY_ATTR_CGROUP,
	POLICY_ATTR_IMAGE,
	POLICY_ATTR_KEY_MAX
};

struct policy_attr {
	const char *key; /* as written: "exe", "arg[01]" ... */
	enum policy_attr_key kind;
	uint64_t index; /* for arg[N]; saturates, so huge N never matches */
	const char *value;
	enum policy_val_form form;
};

/* Bits of policy_rule.method_mask, in the grammar's token order. */
enum policy_method {
	POLICY_M_GET,
	POLICY_M_HEAD,
	POLICY_M_POST,
	POLICY_M_PUT,
	POLICY_M_DELETE,
	POLICY_M_PATCH,
	POLICY_M_OPTIONS,
	POLICY_M_ANY, /* "*" */
	POLICY_METHOD_MAX
};

/*
 * One flattened rule.  The first block is what `--dump-rules` prints; the
 * second block is derived once at build time for matching.  All strings
 * belong to the policy.
 */
struct policy_rule {
	enum policy_rule_type type;
	const char *target;
	bool port_any;
	const uint64_t *ports; /* port numbers as written (no range check) */
	size_t nports;
	enum policy_proto proto;
	const uint8_t *methods; /* enum policy_method tokens; NULL = null */
	size_t nmethods;
	const char *url_base; /* path rules only */
	const struct policy_attr *attrs;
	size_t nattrs;
	bool passthrough;
	bool insecure;
	unsigned line; /* line in the user policy; 0 for preset rules */

	/* derived */
	const char *host; /* lower-cased hostname pattern (host, wildcard,
			     dns_*, URL host, url_base host) or NULL */
	bool host_wild; /* host contains '*' */
	bool https; /* URL/path rules: scheme */
	const char *path; /* URL/path rules: the path pattern */
	uint32_t net; /* cidr: network (host order), masked */
	uint32_t mask; /* cidr: prefix mask (host order) */
	uint32_t mbits; /* bitmask of enum policy_method */
};

typedef struct policy policy_t;

enum policy_diag_kind {
	POLICY_DIAG_SYNTAX, /* the line does not parse */
	POLICY_DIAG_RULE, /* parsed, but the rule is rejected (dropped) */
	POLICY_DIAG_WARNING, /* cross-rule warning, reported on line 0 */
	POLICY_DIAG_KIND_MAX
};

struct policy_diag {
	enum policy_diag_kind kind;
	unsigned line; /* 1-based; 0 for cross-rule warnings */
	unsigned column; /* 1-based column (characters) of a syntax error */
	char *text; /* the line, trimmed */
	char *msg; /* what is wrong */
};

struct policy_diags {
	struct policy_diag *v;
	size_t n;
	size_t cap;
};

void policy_diags_fini(struct policy_diags *d);
/* Number of diagnostics of one kind. */
size_t policy_diags_count(const struct policy_diags *d,
			  enum policy_diag_kind kind) NONNULL(1);

struct policy_opts {
	/*
	 * A preset (see policy_preset_names()) whose rules are put in front
	 * of the user's and whose default attributes scope every rule, or
	 * NULL for none.
	 */
	const char *preset;
	/* "OWNER/REPO" for the {owner} and {repo} placeholders, or NULL. */
	const char *repo;
	/*
	 * Validation mode: placeholders get the dummy values _owner and
	 * _repo whatever repo says, as the reference's validator does.
	 */
	bool validate;
};

/*
 * Parses policy text (UTF-8) into a flattened, indexed policy.  Parsing is
 * lenient, as at run time: a line that does not parse is skipped and leaves
 * the header context alone; a rejected rule is dropped.  Every problem in the
 * user's text is appended to diags (if not NULL), with line numbers of the
 * user's text; presets never produce diagnostics.
 *
 * Returns 0 and stores a new policy in *out (free with policy_free), or -1
 * when the text cannot be read at all (not UTF-8, unknown preset); then a
 * diagnostic says why and *out is NULL.
 */
int policy_parse(const char *text, size_t len, const struct policy_opts *opts,
		 policy_t **out, struct policy_diags *diags)
	NONNULL(1, 4) WUNRES;
void policy_free(policy_t *p);

size_t policy_nrules(const policy_t *p) NONNULL(1);
const struct policy_rule *policy_rule(const policy_t *p, size_t i) NONNULL(1);

/* NULL-terminated list of preset names. */
const char *const *policy_preset_names(void);

const char *policy_rule_type_str(enum policy_rule_type t);
const char *policy_proto_str(enum policy_proto p);
const char *policy_method_str(enum policy_method m);

/* ---- events and decisions ---------------------------------------------- */

enum policy_ev_type {
	POLICY_EV_HTTP,
	POLICY_EV_HTTPS,
	POLICY_EV_TCP,
	POLICY_EV_UDP,
	POLICY_EV_DNS,
	POLICY_EV_TYPE_MAX
};

/* Process fields; NULL (or ncmdline 0) means absent. */
struct policy_proc {
	const char *exe;
	const char *const *cmdline;
	size_t ncmdline;
	const char *cgroup;
	const char *step;
	const char *action;
	const char *image;
};

struct policy_event {
	enum policy_ev_type type;
	const char *dst_ip; /* dotted quad as logged; may be "unknown" */
	int64_t dst_port;
	const char *url; /* full request URL (http) */
	const char *host; /* SNI (https), or a hostname learned elsewhere */
	const char *name; /* DNS query name */
	const char *method; /* HTTP method; NULL is taken as GET */
	struct policy_proc proc;
};

struct policy_decision {
	bool allow; /* the verdict (audit mode allows everything) */
	int rule; /* first matching rule index, -1 for none */
	bool passthrough; /* TLS stage: relay without interception */
	bool insecure; /* TLS stage: do not verify the upstream */
};

/* "allow" when a rule matched, else "deny": the log's `policy` field. */
static inline const char *policy_decision_label(const struct policy_decision *d)
{
	return d->rule >= 0 ? "allow" : "deny";
}

/*
 * The raw matcher: index of the first rule that matches the event, or -1.
 * A dns event with a name gets the dual check (resolver and domain).
 */
int policy_match(const policy_t *p, const struct policy_event *ev)
	NONNULL(1, 2);

/*
 * The decision engine (reference section 2).  `now` is a monotonic time in
 * seconds for the DNS cache; cache may be NULL (no cache).  Safe to call from
 * any thread.
 *
 * policy_decide() dispatches on ev->type:
 *  - https: the TLS stage with SNI in ev->host (NULL: no SNI).  With mitm,
 *    the daemon's behaviour: URL/path hostname fallback, passthrough and
 *    insecure selection, and no block without SNI.  Without mitm, the
 *    offline analyzer's: plain matching, DNS cache and IP rules when there
 *    is no SNI, no flags.
 *  - http: one request (url, method); the DNS cache is not used.
 *  - tcp: DNS-cache hostname first, then IP/CIDR rules.
 *  - udp: IP/CIDR rules only.
 *  - dns: resolver and domain dual check.
 */
void policy_decide(const policy_t *p, struct dnscache *cache, bool audit,
		   bool mitm, double now, const struct policy_event *ev,
		   struct policy_decision *out) NONNULL(1, 6, 7);

/* ---- helpers shared with tests and other modules ------------------------ */

/* Python-fnmatch-compatible glob, case-sensitive, anchored. */
bool policy_glob(const char *pat, const char *str) NONNULL(1, 2);
/* Hostname against a host or wildcard pattern (section 1.7). */
bool policy_host_match(const char *pattern, bool wildcard, const char *host)
	NONNULL(1, 3);
/* URL path against a path pattern (section 1.9). */
bool policy_path_match(const char *pattern, const char *path) NONNULL(1, 2);

#endif /* EGRESS_POLICY_H */
