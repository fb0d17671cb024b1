/*
 * bench_policy.c - decisions per second of the policy engine with 1,000
 * rules, on one core (target: >= 2,000,000/s).
 *
 * The policy mixes every rule type the way real policies do: mostly exact
 * hosts, then wildcards, URL and path rules, addresses, DNS-only names, and
 * some rules scoped by attributes.  The event stream mixes hits and misses
 * of every decision path (TLS stage, HTTP request, raw TCP through the DNS
 * cache, UDP, DNS dual check).  Run with `make bench`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnscache.h"
#include "policy.h"
#include "util.h"

#define NRULES 1000
#define NEVENTS 4096
#define TARGET 2000000.0

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *make_policy(void)
{
	struct strbuf sb = { 0 };
	int n = 0;

	strbuf_adds(&sb, "[:53/udp]\n127.0.0.53\n10.53.0.0/16\n[]\n");
	n += 2;
	for (int i = 0; n < 600; i++, n++)
		strbuf_addf(&sb, "host%d.svc%d.example.com%s\n", i, i % 7,
			    i % 10 == 0 ? ":80|443" : "");
	for (int i = 0; n < 750; i++, n++)
		strbuf_addf(&sb, "*.zone%d.example.net\n", i);
	strbuf_adds(&sb, "[GET|POST exe=/usr/bin/*]\n");
	for (int i = 0; n < 850; i++, n++)
		strbuf_addf(&sb, "https://api%d.example.org/v%d/*\n", i, i % 3);
	strbuf_adds(&sb, "[https://repo.example.io/base]\n");
	for (int i = 0; n < 900; i++, n++)
		strbuf_addf(&sb, "/pkg%d/*/download\n", i);
	strbuf_adds(&sb, "[]\n");
	for (int i = 0; n < 950; i++, n++)
		strbuf_addf(&sb, "198.51.%d.%d:22\n", i / 250, i % 250 + 1);
	for (int i = 0; n < 980; i++, n++)
		strbuf_addf(&sb, "dns:only%d.example.com\n", i);
	for (int i = 0; n < NRULES; i++, n++)
		strbuf_addf(&sb,
			    "scoped%d.example.com cgroup=@docker "
			    "image=`registry/*`\n",
			    i);
	return strbuf_steal(&sb);
}

struct ev_store {
	struct policy_event ev[NEVENTS];
	char *strs[NEVENTS * 2];
};

static void make_events(struct ev_store *s)
{
	static const char *const cmd[] = { "curl", "-s" };
	struct strbuf sb = { 0 };

	for (int i = 0; i < NEVENTS; i++) {
		struct policy_event *e = &s->ev[i];
		memset(e, 0, sizeof(*e));
		e->dst_port = 443;
		e->proc.exe = "/usr/bin/curl";
		e->proc.cmdline = cmd;
		e->proc.ncmdline = 2;
		e->proc.cgroup = "/system.slice/runner.service";
		strbuf_reset(&sb);
		switch (i % 8) {
		case 0: /* TLS, exact host hit */
		case 1:
			e->type = POLICY_EV_HTTPS;
			strbuf_addf(&sb, "host%d.svc%d.example.com", i % 598,
				    (i % 598) % 7);
			break;
		case 2: /* TLS, miss */
			e->type = POLICY_EV_HTTPS;
			strbuf_addf(&sb, "unknown%d.example.com", i);
			break;
		case 3: /* TLS, wildcard hit */
			e->type = POLICY_EV_HTTPS;
			strbuf_addf(&sb, "a.b.zone%d.example.net", i % 150);
			break;
		case 4: /* HTTP request against URL rules */
			e->type = POLICY_EV_HTTP;
			e->method = i % 3 ? "GET" : "DELETE";
			strbuf_addf(&sb, "https://api%d.example.org/v%d/x?y=1",
				    i % 100, (i % 100) % 3);
			break;
		case 5: /* raw TCP by address */
			e->type = POLICY_EV_TCP;
			e->dst_port = 22;
			break;
		case 6: /* DNS dual check */
			e->type = POLICY_EV_DNS;
			e->dst_port = 53;
			strbuf_addf(&sb, "host%d.svc%d.example.com", i % 600,
				    (i % 600) % 7);
			break;
		case 7: /* UDP, miss */
			e->type = POLICY_EV_UDP;
			e->dst_port = 9999;
			break;
		}
		s->strs[2 * i] = strbuf_steal(&sb);
		strbuf_addf(&sb,
			    e->type == POLICY_EV_DNS ? "10.53.1.%d" :
						       "198.51.%d.%d",
			    (i / 250) % 4, i % 250 + 1);
		s->strs[2 * i + 1] = strbuf_steal(&sb);
		e->dst_ip = s->strs[2 * i + 1];
		if (e->type == POLICY_EV_HTTPS)
			e->host = s->strs[2 * i];
		else if (e->type == POLICY_EV_HTTP)
			e->url = s->strs[2 * i];
		else if (e->type == POLICY_EV_DNS)
			e->name = s->strs[2 * i];
	}
	strbuf_fini(&sb);
}

int main(void)
{
	char *text = make_policy();
	struct policy_diags d = { 0 };
	struct ev_store *s = util_xcalloc(1, sizeof(*s));
	struct policy_decision dec;
	struct dnscache *cache = dnscache_new(DNSCACHE_CAPACITY);
	policy_t *p = NULL;
	unsigned long allowed = 0, n = 0;
	double t0, el;

	if (policy_parse(text, strlen(text), NULL, &p, &d) < 0 || d.n) {
		fprintf(stderr, "bench: the generated policy is invalid\n");
		return 1;
	}
	make_events(s);
	t0 = now_s();
	do {
		for (int i = 0; i < NEVENTS; i++, n++) {
			policy_decide(p, cache, false, true, 0, &s->ev[i],
				      &dec);
			allowed += dec.allow;
		}
		el = now_s() - t0;
	} while (el < 2.0);
	printf("policy: %zu rules, %lu decisions in %.2f s (%lu allowed)\n",
	       policy_nrules(p), n, el, allowed);
	printf("policy: %.0f decisions/s on one core (target >= %.0f): %s\n",
	       (double)n / el, TARGET,
	       (double)n / el >= TARGET ? "met" : "NOT MET");
	for (int i = 0; i < NEVENTS * 2; i++)
		free(s->strs[i]);
	free(s);
	free(text);
	dnscache_free(cache);
	policy_diags_fini(&d);
	policy_free(p);
	return 0;
}
