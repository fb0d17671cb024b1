/*
 * ctl_nf.c - egressctl's netfilter commands, for humans and for tests:
 *   nf install   install or replace the EGRESS_* chains (nfrules_install)
 *   nf script    print the iptables-restore input an install would use
 *   nf remove    remove exactly our chains and jumps
 *   nf status    "installed", "absent" or "unknown"
 * egressd does the same through nfrules_*; these commands exist so that the
 * rules can be driven and inspected on their own, in the network namespace
 * egressctl runs in.
 */
#include "ctl.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nfrules.h"

/* Defaults as SPEC §2 gives them; the marks are ours to choose (see
 * nfrules.h). */
#define NF_DEFAULT_PORT 8080
#define NF_DEFAULT_MARK NFRULES_DEFAULT_MARK
#define NF_MAX_BRIDGES 64

static const char nf_usage[] =
	"usage: egressctl nf install [--port N] [--mark MARK[/MASK]] "
	"[--bridge PATTERN]...\n"
	"                            [--intercept-loopback] [--dns-port N] "
	"[--queue N]\n"
	"                            [--queues N] [--mark-dns MARK] [--mark-udp MARK] "
	"[--allow-icmp]\n"
	"                            [--exempt-uid UID|USER]\n"
	"       egressctl nf script  [the same options]\n"
	"       egressctl nf remove\n"
	"       egressctl nf status\n"
	"defaults: --port 8080 --mark 0x10000000/0x10000000 --bridge docker0 "
	"--bridge 'br-+'\n"
	"          --dns-port 8053 --queue 1 --mark-dns 0x20000000 "
	"--mark-udp 0x40000000 --queues 1\n"
	"          no exempt uid, ICMP queued (dropped without a consumer)\n";

static const char *const nf_default_bridges[] = { "docker0", "br-+" };

/* "MARK" or "MARK/MASK", each in C notation (0x.. hex, decimal). */
static int nf_parse_mark(const char *s, uint32_t *mark, uint32_t *mask)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || v > UINT32_MAX || *s == '-')
		return -1;
	*mark = (uint32_t)v;
	*mask = UINT32_MAX;
	if (*end == '\0')
		return 0;
	if (*end != '/')
		return -1;
	s = end + 1;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > UINT32_MAX || *s == '-')
		return -1;
	*mask = (uint32_t)v;
	return 0;
}

/* A mark without a mask: the rules test and set exactly its bits. */
static int nf_parse_bits(const char *s, uint32_t *bits)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > UINT32_MAX || *s == '-')
		return -1;
	*bits = (uint32_t)v;
	return 0;
}

/* A user name, or a uid in decimal (a name that is all digits is taken as
 * a name first, as egressd does). */
static int nf_parse_uid(const char *s, int *uid)
{
	struct passwd *pw = getpwnam(s);
	unsigned long v;
	char *end;

	if (pw && pw->pw_uid <= INT_MAX) {
		*uid = (int)pw->pw_uid;
		return 0;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > INT_MAX || *s < '0' || *s > '9')
		return -1;
	*uid = (int)v;
	return 0;
}

static int nf_parse_port(const char *s, uint16_t *port)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > UINT16_MAX || *s == '-')
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/*
 * Fills c from the options of install/script; bridges is the caller's
 * array of NF_MAX_BRIDGES.  Returns CTL_OK or CTL_USAGE (after saying
 * why).  Values are checked by nfrules itself, not here.
 */
static int nf_parse_opts(int argc, char **argv, struct nfrules_cfg *c,
			 const char **bridges, FILE *err)
{
	static const struct option lopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "mark", required_argument, NULL, 'm' },
		{ "bridge", required_argument, NULL, 'b' },
		{ "intercept-loopback", no_argument, NULL, 'L' },
		{ "dns-port", required_argument, NULL, 'd' },
		{ "queue", required_argument, NULL, 'q' },
		{ "queues", required_argument, NULL, 'Q' },
		{ "mark-dns", required_argument, NULL, 'D' },
		{ "mark-udp", required_argument, NULL, 'u' },
		{ "allow-icmp", no_argument, NULL, 'i' },
		{ "exempt-uid", required_argument, NULL, 'U' },
		{ 0 },
	};
	size_t n = 0;
	int ch;

	*c = (struct nfrules_cfg){ .proxy_port = NF_DEFAULT_PORT,
				   .mark = NF_DEFAULT_MARK,
				   .mark_mask = NF_DEFAULT_MARK,
				   .dns_port = NFRULES_DEFAULT_DNS_PORT,
				   .queue_num = NFRULES_DEFAULT_QUEUE,
				   .mark_dns = NFRULES_DEFAULT_MARK_DNS,
				   .mark_udp = NFRULES_DEFAULT_MARK_UDP,
				   .exempt_uid = -1 };
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (nf_parse_port(optarg, &c->proxy_port) < 0) {
				fprintf(err, "egressctl nf: bad port '%s'\n",
					optarg);
				return CTL_USAGE;
			}
			break;
		case 'm':
			if (nf_parse_mark(optarg, &c->mark, &c->mark_mask) <
			    0) {
				fprintf(err,
					"egressctl nf: bad mark '%s' (MARK or "
					"MARK/MASK, e.g. 0x10000000/0x10000000)"
					"\n",
					optarg);
				return CTL_USAGE;
			}
			break;
		case 'b':
			if (n == NF_MAX_BRIDGES) {
				fprintf(err,
					"egressctl nf: more than %d bridges\n",
					NF_MAX_BRIDGES);
				return CTL_USAGE;
			}
			bridges[n++] = optarg;
			break;
		case 'L':
			c->intercept_loopback = true;
			break;
		case 'd':
		case 'q':
			if (nf_parse_port(optarg, ch == 'd' ?
							  &c->dns_port :
							  &c->queue_num) < 0) {
				fprintf(err, "egressctl nf: bad %s '%s'\n",
					ch == 'd' ? "DNS port" : "queue number",
					optarg);
				return CTL_USAGE;
			}
			break;
		case 'D':
		case 'u':
			if (nf_parse_bits(optarg, ch == 'D' ?
							  &c->mark_dns :
							  &c->mark_udp) < 0) {
				fprintf(err,
					"egressctl nf: bad mark '%s' (a number, "
					"e.g. 0x20000000)\n",
					optarg);
				return CTL_USAGE;
			}
			break;
		case 'Q':
			if (nf_parse_port(optarg, &c->queues) < 0 ||
			    c->queues == 0) {
				fprintf(err,
					"egressctl nf: bad queue count '%s'\n",
					optarg);
				return CTL_USAGE;
			}
			break;
		case 'i':
			c->allow_icmp = true;
			break;
		case 'U':
			if (nf_parse_uid(optarg, &c->exempt_uid) < 0) {
				fprintf(err,
					"egressctl nf: '%s' is neither a user "
					"nor a uid\n",
					optarg);
				return CTL_USAGE;
			}
			break;
		default:
			fputs(nf_usage, err);
			return CTL_USAGE;
		}
	}
	if (optind != argc) {
		fputs(nf_usage, err);
		return CTL_USAGE;
	}
	if (n == 0) {
		for (; n < ARRAY_SIZE(nf_default_bridges); n++)
			bridges[n] = nf_default_bridges[n];
	}
	c->bridges = bridges;
	c->nbridges = n;
	return CTL_OK;
}

static int nf_install_cmd(int argc, char **argv, bool dry_run, FILE *out,
			  FILE *err)
{
	const char *bridges[NF_MAX_BRIDGES];
	struct nfrules_cfg c;
	char *msg = NULL;
	int rc = nf_parse_opts(argc, argv, &c, bridges, err);

	if (rc != CTL_OK)
		return rc;
	if (dry_run) {
		char *script = nfrules_script(&c);

		if (script) {
			fputs(script, out);
			free(script);
			return CTL_OK;
		}
		/* Invalid: nfrules_install says why without running
		 * anything, since it checks first. */
	}
	if (nfrules_install(&c, &msg) < 0) {
		fprintf(err, "egressctl nf: %s\n", msg ? msg : "failed");
		free(msg);
		return CTL_FAIL;
	}
	return CTL_OK;
}

int ctl_nf(int argc, char **argv, FILE *out, FILE *err)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	struct nfrules_cfg c = { .exempt_uid = -1 };
	char *msg = NULL;
	int rc;

	if (!sub || strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		fputs(nf_usage, sub ? out : err);
		return sub ? CTL_OK : CTL_USAGE;
	}
	if (strcmp(sub, "install") == 0 || strcmp(sub, "script") == 0)
		return nf_install_cmd(argc - 1, argv + 1,
				      strcmp(sub, "script") == 0, out, err);
	if (argc != 2 ||
	    (strcmp(sub, "remove") != 0 && strcmp(sub, "status") != 0)) {
		fputs(nf_usage, err);
		return CTL_USAGE;
	}
	if (strcmp(sub, "remove") == 0) {
		if (nfrules_remove(&c, &msg) < 0) {
			fprintf(err, "egressctl nf: %s\n",
				msg ? msg : "failed");
			free(msg);
			return CTL_FAIL;
		}
		return CTL_OK;
	}
	rc = nfrules_present(&c);
	fputs(rc > 0 ? "installed\n" : rc == 0 ? "absent\n" : "unknown\n", out);
	if (rc < 0)
		fputs("egressctl nf: the rules are partly there, or "
		      "iptables-save failed\n",
		      err);
	return rc > 0 ? CTL_OK : CTL_FAIL;
}
