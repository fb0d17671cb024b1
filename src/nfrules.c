/*
 * nfrules.c - the daemon's netfilter rules: the iptables-restore script,
 * and installing, replacing and removing it (see nfrules.h).
 *
 * Layout.  Each hook is a built-in chain with exactly one jump, inserted at
 * its head, to a chain of ours (SPEC §3); a chain name may repeat across
 * tables:
 *
 *   nat OUTPUT        -> EGRESS_OUTPUT      host processes, host-network
 *                                           containers: TCP REDIRECT to the
 *                                           proxy, DNS-marked UDP to the
 *                                           DNS port
 *   nat PREROUTING    -> EGRESS_PREROUTING  the same for bridged containers
 *                                           (-i PATTERN)
 *   mangle OUTPUT     -> EGRESS_OUTPUT      UDP and other protocols from the
 *                                           host to NFQUEUE
 *   mangle PREROUTING -> EGRESS_PREROUTING  -i PATTERN -> EGRESS_BRIDGE, the
 *                                           same for bridged containers
 *
 * EGRESS_BRIDGE has no jump from a built-in chain; it is reached only from
 * EGRESS_PREROUTING, once per bridge pattern, so the queue rules are
 * written once.  Every chain reached from a built-in chain starts by
 * RETURNing the daemon's own marked traffic; then each protocol has its
 * own block function.
 *
 * Installing.  One `iptables-restore --noflush` run per change: declaring
 * ":EGRESS_X - [0:0]" creates the chain or flushes it in the same
 * transaction that refills it, so a daemon restarting after a crash
 * replaces its predecessor's rules with no moment without them.  Whether
 * the jumps exist is read first (iptables-save), and a jump is inserted
 * only when it is missing.  All of a table's chains are declared before
 * any rule, so EGRESS_BRIDGE exists before the rules jumping to it.
 * Nothing else is declared: built-in chains are never named with a policy
 * (that would reset it), and other tables are not mentioned, so --noflush
 * leaves them alone.
 *
 * Atomicity is per table: iptables-restore commits at each COMMIT line.
 * A state in between lacks (or still has) a whole table, and nf_tables[]
 * is ordered so that it never lets out unjudged what the tables already
 * there took in.  Install commits filter first: its one rule only drops
 * DNS-marked packets that nat did not redirect, and nothing is marked
 * before mangle commits; removal takes it away last, so a DNS verdict given
 * just before nat went can never leave unredirected.  Then nat, then
 * mangle: until mangle commits
 * nothing is queued, so nothing is marked for DNS, and once it is, nat's
 * DNS REDIRECT is already there.  The other way round, a query the
 * consumer marked would RETURN from mangle and leave, unjudged, for the
 * resolver it named.  Removal goes backwards, mangle then nat: once
 * nothing is queued and marked any more, nat's REDIRECT still catches the
 * DNS verdicts the consumer gave just before.  A restart with the same
 * configuration replaces each table by the same rules.  An install that
 * fails in mangle leaves nat committed: nfrules_present says unknown and
 * nfrules_remove clears it.
 *
 * The tools run synchronously in the caller's thread and network namespace;
 * none of this belongs on an event loop.
 */
#include "nfrules.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

#define NF_LOOPBACK "127.0.0.0/8"
#define NF_DNS_PORT 53
#define NF_IFNAME_MAX 15 /* IFNAMSIZ - 1 */
/* Waiting for the xtables lock (legacy backend; nft ignores it). */
#define NF_RESTORE_WAIT "--wait=10"
/* A saved table larger than this is refused rather than held in memory. */
#define NF_SAVE_MAX (256u << 20)
#define NF_STDERR_MAX 16384
/* Reads before and after an install that lost a race with another writer. */
#define NF_INSTALL_TRIES 3

/* ---- the rules ------------------------------------------------------------- */

typedef void (*nf_fill_fn)(struct strbuf *sb, const struct nfrules_cfg *c,
			   const char *chain);

static void nf_fill_nat_output(struct strbuf *sb, const struct nfrules_cfg *c,
			       const char *chain);
static void nf_fill_nat_prerouting(struct strbuf *sb,
				   const struct nfrules_cfg *c,
				   const char *chain);
static void nf_fill_mangle_output(struct strbuf *sb,
				  const struct nfrules_cfg *c,
				  const char *chain);
static void nf_fill_mangle_prerouting(struct strbuf *sb,
				      const struct nfrules_cfg *c,
				      const char *chain);
static void nf_fill_mangle_bridge(struct strbuf *sb,
				  const struct nfrules_cfg *c,
				  const char *chain);
static void nf_fill_filter(struct strbuf *sb, const struct nfrules_cfg *c,
			   const char *chain);

/*
 * Tables in the order an install commits them; removal goes backwards.
 * See the header comment for why nat comes first.
 */
static const char *const nf_tables[] = { "filter", "nat", "mangle" };

enum nf_chain_id {
	NF_FILTER_OUTPUT,
	NF_FILTER_FORWARD,
	NF_NAT_OUTPUT,
	NF_NAT_PREROUTING,
	NF_MANGLE_OUTPUT,
	NF_MANGLE_PREROUTING,
	NF_MANGLE_BRIDGE,
	NF_CHAIN_MAX,
};

struct nf_chain {
	const char *table;
	const char *builtin; /* holds the one jump; NULL: only ours jump */
	const char *name;
	nf_fill_fn fill;
};

/*
 * Within a table, chains are declared, filled and deleted in this order:
 * all declarations come before any rule, so a chain exists before the
 * rules jumping to it are added, and a chain reached only from ours comes
 * after them, so it is deleted last.
 */
static const struct nf_chain nf_chains[NF_CHAIN_MAX] = {
	[NF_FILTER_OUTPUT] = { .table = "filter",
			       .builtin = "OUTPUT",
			       .name = "EGRESS_OUTPUT",
			       .fill = nf_fill_filter },
	[NF_FILTER_FORWARD] = { .table = "filter",
				.builtin = "FORWARD",
				.name = "EGRESS_FORWARD",
				.fill = nf_fill_filter },
	[NF_NAT_OUTPUT] = { .table = "nat",
			    .builtin = "OUTPUT",
			    .name = "EGRESS_OUTPUT",
			    .fill = nf_fill_nat_output },
	[NF_NAT_PREROUTING] = { .table = "nat",
				.builtin = "PREROUTING",
				.name = "EGRESS_PREROUTING",
				.fill = nf_fill_nat_prerouting },
	[NF_MANGLE_OUTPUT] = { .table = "mangle",
			       .builtin = "OUTPUT",
			       .name = "EGRESS_OUTPUT",
			       .fill = nf_fill_mangle_output },
	[NF_MANGLE_PREROUTING] = { .table = "mangle",
				   .builtin = "PREROUTING",
				   .name = "EGRESS_PREROUTING",
				   .fill = nf_fill_mangle_prerouting },
	[NF_MANGLE_BRIDGE] = { .table = "mangle",
			       .builtin = NULL,
			       .name = "EGRESS_BRIDGE",
			       .fill = nf_fill_mangle_bridge },
};

static void PRINTF(3, 4)
	nf_rule(struct strbuf *sb, const char *chain, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s) {
		fputs("egress: out of memory (formatting a rule)\n", stderr);
		abort();
	}
	strbuf_addf(sb, "-A %s %s\n", chain, s);
	free(s);
}

/*
 * The daemon's own sockets carry its mark (SO_MARK): their packets leave
 * untouched whatever the protocol, so its upstream traffic is never
 * intercepted again.  Always the first rule of a chain.
 */
static void nf_block_own(struct strbuf *sb, const struct nfrules_cfg *c,
			 const char *chain)
{
	nf_rule(sb, chain, "-m mark --mark 0x%x/0x%x -j RETURN", c->mark,
		c->mark_mask);
}

/*
 * TCP from the host.  Loopback cannot leave the host and is left alone,
 * except DNS: a local stub resolver (127.0.0.53) must not become a way
 * around DNS policy, so TCP port 53 to loopback is redirected before the
 * loopback RETURN.  Everything else goes to the proxy, which refuses
 * connections whose original destination is its own listener (S1).
 */
static void nf_block_tcp_host(struct strbuf *sb, const struct nfrules_cfg *c,
			      const char *chain)
{
	if (!c->intercept_loopback) {
		nf_rule(sb, chain,
			"-d %s -p tcp -m tcp --dport %d -j REDIRECT "
			"--to-ports %u",
			NF_LOOPBACK, NF_DNS_PORT, c->proxy_port);
		nf_rule(sb, chain, "-d %s -p tcp -j RETURN", NF_LOOPBACK);
	}
	nf_rule(sb, chain, "-p tcp -j REDIRECT --to-ports %u", c->proxy_port);
}

/* TCP from bridged containers: one rule per bridge pattern. */
static void nf_block_tcp_bridges(struct strbuf *sb, const struct nfrules_cfg *c,
				 const char *chain)
{
	for (size_t i = 0; i < c->nbridges; i++)
		nf_rule(sb, chain, "-i %s -p tcp -j REDIRECT --to-ports %u",
			c->bridges[i], c->proxy_port);
}

/*
 * A stub resolver's own upstream queries over TCP (after a truncated
 * answer) leave like its UDP ones, so this precedes the TCP REDIRECTs.
 */
static void nf_block_tcp_exempt(struct strbuf *sb, const struct nfrules_cfg *c,
				const char *chain)
{
	if (c->exempt_uid >= 0)
		nf_rule(sb, chain,
			"-p tcp -m tcp --dport %d -m owner --uid-owner %d "
			"-j RETURN",
			NF_DNS_PORT, c->exempt_uid);
}

/*
 * DNS queries the queue consumer marked go to the DNS proxy; in: the
 * bridge pattern, NULL from the host.  nat sees only the first packet of
 * a flow; the flow's later queries follow its NAT binding.
 */
static void nf_block_dns_redirect(struct strbuf *sb,
				  const struct nfrules_cfg *c,
				  const char *chain, const char *in)
{
	if (in)
		nf_rule(sb, chain,
			"-i %s -p udp -m mark --mark 0x%x/0x%x -j REDIRECT "
			"--to-ports %u",
			in, c->mark_dns, c->mark_dns, c->dns_port);
	else
		nf_rule(sb, chain,
			"-p udp -m mark --mark 0x%x/0x%x -j REDIRECT "
			"--to-ports %u",
			c->mark_dns, c->mark_dns, c->dns_port);
}

static void nf_fill_nat_output(struct strbuf *sb, const struct nfrules_cfg *c,
			       const char *chain)
{
	nf_block_own(sb, c, chain);
	nf_block_dns_redirect(sb, c, chain, NULL);
	nf_block_tcp_exempt(sb, c, chain);
	nf_block_tcp_host(sb, c, chain);
}

/*
 * The UDP and TCP rules never match the same packet (-p), so their order
 * changes no verdict; the DNS redirects come first as in nat OUTPUT, so
 * that both chains read alike.
 */
static void nf_fill_nat_prerouting(struct strbuf *sb,
				   const struct nfrules_cfg *c,
				   const char *chain)
{
	nf_block_own(sb, c, chain);
	for (size_t i = 0; i < c->nbridges; i++)
		nf_block_dns_redirect(sb, c, chain, c->bridges[i]);
	nf_block_tcp_bridges(sb, c, chain);
}

/*
 * What is not queued, common to host and bridges.  TCP is nat's business.
 * Replies of flows someone else started are not egress.  A flow the
 * consumer allowed carries mark_udp in its connmark and skips the queue
 * (fast path).  A packet back from the queue (NF_REPEAT) carries the
 * consumer's verdict: a DNS query leaves for nat's REDIRECT and is never
 * saved to the connmark, so every query is judged; an allowed packet
 * saves its bit, and only that bit, to the connmark.
 */
static void nf_block_udp_verdicts(struct strbuf *sb,
				  const struct nfrules_cfg *c,
				  const char *chain)
{
	nf_rule(sb, chain, "-p tcp -j RETURN");
	nf_rule(sb, chain, "-m conntrack --ctdir REPLY -j RETURN");
	nf_rule(sb, chain, "-p udp -m connmark --mark 0x%x/0x%x -j RETURN",
		c->mark_udp, c->mark_udp);
	nf_rule(sb, chain, "-p udp -m mark --mark 0x%x/0x%x -j RETURN",
		c->mark_dns, c->mark_dns);
	nf_rule(sb, chain,
		"-p udp -m mark --mark 0x%x/0x%x -j CONNMARK --save-mark "
		"--nfmask 0x%x --ctmask 0x%x",
		c->mark_udp, c->mark_udp, c->mark_udp, c->mark_udp);
	nf_rule(sb, chain, "-p udp -m mark --mark 0x%x/0x%x -j RETURN",
		c->mark_udp, c->mark_udp);
}

/*
 * Host only: the stub resolver's upstream queries leave (the resolver
 * itself was judged when the client's query to it was queued), and
 * loopback stays unqueued except DNS to a local stub resolver, as for TCP.
 */
/* The NFQUEUE target's options: one queue, or a balanced range. */
static const char *nf_queue_opts(const struct nfrules_cfg *c, char *buf,
				 size_t n)
{
	if (c->queues > 1)
		snprintf(buf, n, "--queue-balance %u:%u --queue-cpu-fanout",
			 c->queue_num, c->queue_num + c->queues - 1u);
	else
		snprintf(buf, n, "--queue-num %u", c->queue_num);
	return buf;
}

static void nf_block_udp_host(struct strbuf *sb, const struct nfrules_cfg *c,
			      const char *chain)
{
	char q[64];

	if (c->exempt_uid >= 0)
		nf_rule(sb, chain, "-p udp -m owner --uid-owner %d -j RETURN",
			c->exempt_uid);
	if (!c->intercept_loopback) {
		nf_rule(sb, chain,
			"-d %s -p udp -m udp --dport %d -j NFQUEUE %s",
			NF_LOOPBACK, NF_DNS_PORT,
			nf_queue_opts(c, q, sizeof(q)));
		nf_rule(sb, chain, "-d %s -j RETURN", NF_LOOPBACK);
	}
}

/*
 * Everything left goes to the queue: a UDP flow's first packet to be
 * judged, any other protocol to be dropped and logged.  ICMP errors about
 * flows already judged (RELATED: port unreachable, fragmentation needed)
 * must flow for those flows to work.  IGMP is the kernel's own group
 * membership reporting: sent with TTL 1 and never forwarded by a router
 * (RFC 2236, 3376), it cannot leave the link, so it is not egress.  No
 * --queue-bypass: with no consumer
 * the kernel drops what is queued, so a dead daemon lets nothing through.
 */
static void nf_block_queue(struct strbuf *sb, const struct nfrules_cfg *c,
			   const char *chain)
{
	char q[64];

	nf_queue_opts(c, q, sizeof(q));
	nf_rule(sb, chain, "-p udp -j NFQUEUE %s", q);
	if (c->allow_icmp)
		nf_rule(sb, chain, "-p icmp -j RETURN");
	nf_rule(sb, chain, "-p igmp -j RETURN");
	nf_rule(sb, chain, "-m conntrack --ctstate RELATED -j RETURN");
	nf_rule(sb, chain, "-j NFQUEUE %s", q);
}

/*
 * A DNS verdict is only safe once nat has REDIRECTed the flow to the DNS
 * proxy, and nat sees only a flow's first packet.  A packet the consumer
 * marked as DNS whose flow was not redirected rides a conntrack entry made
 * earlier without the redirect: the daemon's own upstream query from the
 * same port to the same resolver (a host process can bind that port once
 * the daemon's socket closes, while the entry lives on), or a flow begun
 * before these rules.  It would reach the resolver unjudged: drop it,
 * after nat (filter OUTPUT) and for what is forwarded (filter FORWARD).
 */
static void nf_fill_filter(struct strbuf *sb, const struct nfrules_cfg *c,
			   const char *chain)
{
	nf_block_own(sb, c, chain);
	nf_rule(sb, chain,
		"-m mark --mark 0x%x/0x%x -m conntrack ! --ctstate DNAT -j DROP",
		c->mark_dns, c->mark_dns);
}

static void nf_fill_mangle_output(struct strbuf *sb,
				  const struct nfrules_cfg *c,
				  const char *chain)
{
	nf_block_own(sb, c, chain);
	nf_block_udp_verdicts(sb, c, chain);
	nf_block_udp_host(sb, c, chain);
	nf_block_queue(sb, c, chain);
}

/* One jump per bridge pattern to the shared bridge chain. */
static void nf_fill_mangle_prerouting(struct strbuf *sb,
				      const struct nfrules_cfg *c,
				      const char *chain)
{
	nf_block_own(sb, c, chain);
	for (size_t i = 0; i < c->nbridges; i++)
		nf_rule(sb, chain, "-i %s -j %s", c->bridges[i],
			nf_chains[NF_MANGLE_BRIDGE].name);
}

/* Containers: no owner match in PREROUTING, and their loopback is their
 * own. */
static void nf_fill_mangle_bridge(struct strbuf *sb,
				  const struct nfrules_cfg *c,
				  const char *chain)
{
	nf_block_udp_verdicts(sb, c, chain);
	nf_block_queue(sb, c, chain);
}

/* ---- configuration --------------------------------------------------------- */

static void PRINTF(2, 3) nf_seterr(char **err, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(*err);
	*err = s ? s : util_xstrdup("out of memory");
}

static const char *nf_tool(const char *cfg, const char *dflt)
{
	return cfg && *cfg ? cfg : dflt;
}

/*
 * An interface pattern as iptables takes it after -i: a name, or a prefix
 * followed by the wildcard '+'.  Anything that could be read as an option
 * or that matches every interface (the uplink too) is refused.
 */
static int nf_check_bridge(const char *p, char **err)
{
	size_t n = strlen(p);

	if (n == 0) {
		nf_seterr(err, "empty bridge pattern");
		return -1;
	}
	if (n > NF_IFNAME_MAX) {
		nf_seterr(err,
			  "bridge pattern '%s' is longer than %d characters", p,
			  NF_IFNAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (isalnum(ch) || ch == '_' || ch == '.' || ch == '-' ||
		    (ch == '+' && i == n - 1))
			continue;
		if (ch == '+')
			nf_seterr(err,
				  "bridge pattern '%s': '+' is a wildcard "
				  "only at the end",
				  p);
		else if (isprint(ch))
			nf_seterr(err,
				  "bridge pattern '%s': character '%c' is not "
				  "allowed (letters, digits, '_', '.', '-', "
				  "and a final '+')",
				  p, ch);
		else
			nf_seterr(err,
				  "bridge pattern: byte 0x%02x is not allowed "
				  "(letters, digits, '_', '.', '-', and a "
				  "final '+')",
				  ch);
		return -1;
	}
	if (p[0] == '-') {
		nf_seterr(err, "bridge pattern '%s' must not start with '-'",
			  p);
		return -1;
	}
	if (strcmp(p, "+") == 0) {
		nf_seterr(err,
			  "bridge pattern '+' would match every interface, "
			  "the uplink too");
		return -1;
	}
	if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
		nf_seterr(err, "bridge pattern '%s' is not an interface name",
			  p);
		return -1;
	}
	return 0;
}

/*
 * The consumer's bits must be non-zero (--mark 0/0 matches every packet)
 * and apart from each other and from the daemon's own mark: a DNS query
 * must not look allowed, and the daemon's own packets must not look like
 * either.  The own mark's mask may cover their bits: a packet carrying
 * them differs from the own mark under that mask all the same.
 */
static int nf_check_marks(const struct nfrules_cfg *c, char **err)
{
	const struct {
		const char *what;
		uint32_t v;
	} m[] = {
		{ "own mark", c->mark },
		{ "DNS mark", c->mark_dns },
		{ "UDP mark", c->mark_udp },
	};

	for (size_t i = 1; i < ARRAY_SIZE(m); i++)
		if (m[i].v == 0) {
			nf_seterr(err, "%s must not be 0", m[i].what);
			return -1;
		}
	for (size_t i = 0; i < ARRAY_SIZE(m); i++)
		for (size_t j = i + 1; j < ARRAY_SIZE(m); j++)
			if (m[i].v & m[j].v) {
				nf_seterr(err,
					  "%s 0x%x and %s 0x%x share bits 0x%x",
					  m[i].what, m[i].v, m[j].what, m[j].v,
					  m[i].v & m[j].v);
				return -1;
			}
	return 0;
}

/* Is c usable for a ruleset?  0, or -1 with *err saying why. */
static int nf_check_cfg(const struct nfrules_cfg *c, char **err)
{
	if (c->proxy_port == 0) {
		nf_seterr(err, "proxy port must not be 0");
		return -1;
	}
	if (c->mark_mask == 0) {
		nf_seterr(err, "mark mask must not be 0");
		return -1;
	}
	/* --mark 0/MASK matches every unmarked packet: nothing would be
	 * intercepted at all. */
	if (c->mark == 0) {
		nf_seterr(err, "mark must not be 0 (every unmarked packet "
			       "would be exempt)");
		return -1;
	}
	if (c->mark & ~c->mark_mask) {
		nf_seterr(err, "mark 0x%x has bits outside its mask 0x%x",
			  c->mark, c->mark_mask);
		return -1;
	}
	if (c->dns_port == 0) {
		nf_seterr(err, "DNS port must not be 0");
		return -1;
	}
	if (c->queues > 1 && (unsigned)c->queue_num + c->queues - 1u > 65535) {
		nf_seterr(err, "queues %u to %u: past queue 65535",
			  c->queue_num, c->queue_num + c->queues - 1u);
		return -1;
	}
	if (nf_check_marks(c, err) < 0)
		return -1;
	if (c->exempt_uid < -1) {
		nf_seterr(err, "exempt uid %d is neither -1 nor a uid",
			  c->exempt_uid);
		return -1;
	}
	if (c->nbridges && !c->bridges) {
		nf_seterr(err, "%zu bridge patterns announced, none given",
			  c->nbridges);
		return -1;
	}
	for (size_t i = 0; i < c->nbridges; i++) {
		if (!c->bridges[i]) {
			nf_seterr(err, "bridge pattern %zu is missing", i);
			return -1;
		}
		if (nf_check_bridge(c->bridges[i], err) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->bridges[i], c->bridges[j]) == 0) {
				nf_seterr(err,
					  "bridge pattern '%s' is listed twice",
					  c->bridges[i]);
				return -1;
			}
	}
	return 0;
}

/* ---- what is installed now ------------------------------------------------- */

struct nf_chain_state {
	bool exists;
	unsigned jumps; /* "-A BUILTIN -j CHAIN" rules */
	unsigned refs; /* other rules, not in our chains, targeting it */
	char ref_from[32]; /* the chain of the first of those */
};

struct nf_state {
	struct nf_chain_state ch[NF_CHAIN_MAX];
};

/* Is the n-byte name one of our chains of table? */
static int nf_find_chain(const char *table, const char *name, size_t n)
{
	for (int i = 0; i < NF_CHAIN_MAX; i++)
		if (strcmp(nf_chains[i].table, table) == 0 &&
		    strlen(nf_chains[i].name) == n &&
		    strncmp(nf_chains[i].name, name, n) == 0)
			return i;
	return -1;
}

/* Does a saved rule's text (after "-A CHAIN ") jump or go to target? */
static bool nf_rule_targets(const char *rule, const char *target)
{
	size_t n = strlen(target);

	for (const char *p = rule; (p = strstr(p, target)); p++) {
		if (p - rule < 3 || (p[n] != '\0' && p[n] != ' '))
			continue;
		if ((strncmp(p - 3, "-j ", 3) == 0 ||
		     strncmp(p - 3, "-g ", 3) == 0) &&
		    (p - rule == 3 || p[-4] == ' '))
			return true;
	}
	return false;
}

static void nf_parse_rule(struct nf_state *st, const char *table,
			  const char *line)
{
	const char *from = line + 3, *sp = strchr(from, ' ');
	size_t flen;

	if (!sp)
		return;
	flen = (size_t)(sp - from);
	for (int i = 0; i < NF_CHAIN_MAX; i++) {
		const struct nf_chain *ch = &nf_chains[i];
		struct nf_chain_state *cs = &st->ch[i];

		if (strcmp(ch->table, table) != 0 ||
		    !nf_rule_targets(sp + 1, ch->name))
			continue;
		/* Ours is exactly "-A BUILTIN -j CHAIN" (nf_rule_targets
		 * made sure the text is long enough). */
		if (ch->builtin && strlen(ch->builtin) == flen &&
		    strncmp(ch->builtin, from, flen) == 0 &&
		    strncmp(sp + 1, "-j ", 3) == 0 &&
		    strcmp(sp + 4, ch->name) == 0) {
			cs->jumps++;
		} else if (nf_find_chain(table, from, flen) < 0) {
			if (cs->refs++ == 0)
				snprintf(cs->ref_from, sizeof(cs->ref_from),
					 "%.*s", (int)flen, from);
		}
	}
}

/*
 * Records, for each of our chains in table, whether it exists and which
 * rules jump to it, from iptables-save output (modified in place).
 */
static void nf_parse_save(struct nf_state *st, const char *table, char *text)
{
	bool in_table = false;
	char *save = NULL;

	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '*') {
			in_table = strcmp(l + 1, table) == 0;
		} else if (!in_table) {
			continue;
		} else if (l[0] == ':') {
			int i = nf_find_chain(table, l + 1,
					      strcspn(l + 1, " "));

			if (i >= 0)
				st->ch[i].exists = true;
		} else if (strncmp(l, "-A ", 3) == 0) {
			nf_parse_rule(st, table, l);
		}
	}
}

/* ---- running the tools ----------------------------------------------------- */

struct nf_io {
	int fd;
	struct strbuf *sb; /* reading into; NULL: writing from in/len */
	const char *in;
	size_t len;
	size_t max; /* reading: stop keeping data beyond this */
	bool over; /* reading: max was exceeded */
};

/* One poll round's work on one pipe; closes it (fd = -1) when done. */
static void nf_io_step(struct nf_io *io)
{
	char buf[8192];
	ssize_t n;

	if (!io->sb) {
		n = write(io->fd, io->in, io->len);
		if (n > 0) {
			io->in += n;
			io->len -= (size_t)n;
		}
		/* EPIPE: the tool exited without reading all; its exit
		 * status says why. */
		if (io->len == 0 ||
		    (n < 0 && errno != EINTR && errno != EAGAIN)) {
			close(io->fd);
			io->fd = -1;
		}
		return;
	}
	n = read(io->fd, buf, sizeof(buf));
	if (n > 0) {
		if (io->sb->len + (size_t)n > io->max)
			io->over = true;
		else
			strbuf_add(io->sb, buf, (size_t)n);
	} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
		close(io->fd);
		io->fd = -1;
	}
}

/* Feeds stdin and drains stdout/stderr together, so neither side blocks. */
static void nf_io_loop(struct nf_io *io, int nio)
{
	struct pollfd pfd[3];

	for (;;) {
		int n = 0;

		for (int i = 0; i < nio; i++) {
			if (io[i].fd < 0)
				continue;
			pfd[n].fd = io[i].fd;
			pfd[n].events = io[i].sb ? POLLIN : POLLOUT;
			pfd[n].revents = 0;
			n++;
		}
		if (n == 0)
			return;
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			for (int i = 0; i < nio; i++)
				if (io[i].fd >= 0) {
					close(io[i].fd);
					io[i].fd = -1;
				}
			return;
		}
		for (int i = 0, k = 0; i < nio; i++) {
			if (io[i].fd < 0)
				continue;
			if (pfd[k++].revents)
				nf_io_step(&io[i]);
		}
	}
}

/*
 * Writing to a tool that has exited raises SIGPIPE.  The daemon may not
 * ignore it, and a library must not change the process's dispositions, so
 * the signal is blocked in this thread while the pipes are served, and one
 * that this raised is taken back before unblocking.
 */
struct nf_sigpipe {
	sigset_t old;
	bool was_pending;
};

static void nf_sigpipe_block(struct nf_sigpipe *sp)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	sp->was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &sp->old);
}

static void nf_sigpipe_restore(struct nf_sigpipe *sp)
{
	sigset_t set, pending;
	const struct timespec zero = { 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!sp->was_pending && sigismember(&pending, SIGPIPE) == 1)
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &sp->old, NULL);
}

static void nf_close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0) {
			close(p[i]);
			p[i] = -1;
		}
}

#define NF_ARGV_MAX 8

/* posix_spawnp wants char *[]: a private copy of the caller's argv. */
static int nf_spawn(pid_t *pid, const char *const argv[], int pin[2],
		    int pout[2], int perr[2])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dflt;
	char *av[NF_ARGV_MAX] = { NULL };
	int rc;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return ENOMEM;
	if (posix_spawnattr_init(&at) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return ENOMEM;
	}
	for (int i = 0; argv[i] && i < NF_ARGV_MAX - 1; i++)
		av[i] = util_xstrdup(argv[i]);
	/* The tool starts with a clean signal state whatever ours is. */
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	rc = posix_spawn_file_actions_adddup2(&fa, pin[0], STDIN_FILENO);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, pout[1],
						      STDOUT_FILENO);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, perr[1],
						      STDERR_FILENO);
	if (!rc)
		rc = posix_spawnattr_setflags(
			&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (!rc)
		rc = posix_spawnattr_setsigmask(&at, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(&at, &dflt);
	if (!rc)
		rc = posix_spawnp(pid, av[0], &fa, &at, av, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; av[i]; i++)
		free(av[i]);
	return rc;
}

/*
 * Runs argv[0] (looked up in PATH) with in on its standard input, and
 * collects its standard output into out (at most NF_SAVE_MAX bytes) and
 * its standard error into errout.  Returns the exit status, or -1 with
 * *err set when the tool could not run, was killed, or said too much.
 */
static int nf_run(const char *const argv[], const char *in, struct strbuf *out,
		  struct strbuf *errout, char **err)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	struct nf_sigpipe sp;
	struct nf_io io[3];
	pid_t pid;
	int rc, status;

	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 ||
	    pipe2(perr, O_CLOEXEC) < 0) {
		nf_seterr(err, "pipe: %s", strerror(errno));
		rc = -1;
		goto out;
	}
	rc = nf_spawn(&pid, argv, pin, pout, perr);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	pin[0] = pout[1] = perr[1] = -1;
	if (rc != 0) {
		nf_seterr(err, "cannot run %s: %s", argv[0], strerror(rc));
		rc = -1;
		goto out;
	}
	/* Should this fail, writes block but still complete: the tools
	 * read all their input before writing much. */
	(void)fcntl(pin[1], F_SETFL, O_NONBLOCK);
	io[0] = (struct nf_io){ .fd = pin[1],
				.in = in ? in : "",
				.len = in ? strlen(in) : 0 };
	io[1] = (struct nf_io){ .fd = pout[0], .sb = out, .max = NF_SAVE_MAX };
	io[2] = (struct nf_io){ .fd = perr[0],
				.sb = errout,
				.max = NF_STDERR_MAX };
	pin[1] = pout[0] = perr[0] = -1; /* io[] owns them now */
	nf_sigpipe_block(&sp);
	nf_io_loop(io, 3);
	nf_sigpipe_restore(&sp);

	while ((rc = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		nf_seterr(err, "%s: waitpid: %s", argv[0], strerror(errno));
		rc = -1;
	} else if (WIFSIGNALED(status)) {
		nf_seterr(err, "%s was killed by signal %d", argv[0],
			  WTERMSIG(status));
		rc = -1;
	} else if (io[1].over) {
		nf_seterr(err, "%s wrote more than %u bytes", argv[0],
			  NF_SAVE_MAX);
		rc = -1;
	} else {
		rc = WEXITSTATUS(status);
	}
out:
	nf_close_pair(pin);
	nf_close_pair(pout);
	nf_close_pair(perr);
	return rc;
}

/*
 * A tool's failure as one line: its exit status and its standard error
 * (the "Try `... -h'" advice dropped).  For iptables-restore, the script
 * line it names is quoted, since ours is not a file the user can open.
 */
static void nf_tool_failed(char **err, const char *tool, int status,
			   const char *stderr_text, const char *script)
{
	struct strbuf sb = { 0 };
	char *text = util_xstrdup(stderr_text), *save = NULL;
	const char *at;
	long line = 0;

	strbuf_addf(&sb, "%s failed (exit status %d)", tool, status);
	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		l += strspn(l, " \t");
		if (*l == '\0' || strncmp(l, "Try `", 5) == 0)
			continue;
		strbuf_addf(&sb, ": %s", l);
	}
	free(text);
	/* "Error occurred at line: N" (nft), "line N failed" (legacy). */
	for (at = stderr_text; script && !line && (at = strstr(at, "line"));) {
		at += 4;
		at += strspn(at, ": ");
		line = strtol(at, NULL, 10);
	}
	for (const char *p = script; line > 0 && p && *p; line--) {
		const char *nl = strchr(p, '\n');

		if (line == 1) {
			strbuf_addf(&sb, " [script: %.*s]",
				    (int)(nl ? nl - p : (long)strlen(p)), p);
			break;
		}
		p = nl ? nl + 1 : NULL;
	}
	free(*err);
	*err = strbuf_steal(&sb);
}

/* Reads the tables we use.  0, or -1 with *err. */
static int nf_state_read(const struct nfrules_cfg *c, struct nf_state *st,
			 char **err)
{
	const char *save = nf_tool(c->iptables_save, "iptables-save");

	memset(st, 0, sizeof(*st));
	for (size_t t = 0; t < ARRAY_SIZE(nf_tables); t++) {
		const char *argv[] = { save, "-t", nf_tables[t], NULL };
		struct strbuf out = { 0 }, errout = { 0 };
		int rc = nf_run(argv, NULL, &out, &errout, err);

		if (rc > 0)
			nf_tool_failed(err, save, rc, strbuf_str(&errout),
				       NULL);
		if (rc == 0 && out.buf)
			nf_parse_save(st, nf_tables[t], out.buf);
		strbuf_fini(&out);
		strbuf_fini(&errout);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* Runs iptables-restore --noflush on script.  0, or -1 with *err. */
static int nf_restore(const struct nfrules_cfg *c, const char *script,
		      char **err)
{
	const char *tool = nf_tool(c->iptables_restore, "iptables-restore");
	const char *argv[] = { tool, "--noflush", NF_RESTORE_WAIT, NULL };
	struct strbuf errout = { 0 };
	int rc = nf_run(argv, script, NULL, &errout, err);

	if (rc > 0)
		nf_tool_failed(err, tool, rc, strbuf_str(&errout), script);
	strbuf_fini(&errout);
	return rc == 0 ? 0 : -1;
}

/* ---- scripts --------------------------------------------------------------- */

/*
 * The install script for the state st: every chain declared (created or
 * flushed) and filled, and the jumps brought to exactly one each, table by
 * table in nf_tables[] order.
 */
static char *nf_install_script(const struct nfrules_cfg *c,
			       const struct nf_state *st)
{
	struct strbuf sb = { 0 };

	for (size_t t = 0; t < ARRAY_SIZE(nf_tables); t++) {
		const char *table = nf_tables[t];

		strbuf_addf(&sb, "*%s\n", table);
		for (int i = 0; i < NF_CHAIN_MAX; i++)
			if (strcmp(nf_chains[i].table, table) == 0)
				strbuf_addf(&sb, ":%s - [0:0]\n",
					    nf_chains[i].name);
		for (int i = 0; i < NF_CHAIN_MAX; i++)
			if (strcmp(nf_chains[i].table, table) == 0)
				nf_chains[i].fill(&sb, c, nf_chains[i].name);
		for (int i = 0; i < NF_CHAIN_MAX; i++) {
			const struct nf_chain *ch = &nf_chains[i];

			if (strcmp(ch->table, table) != 0 || !ch->builtin)
				continue;
			if (st->ch[i].jumps == 0)
				strbuf_addf(&sb, "-I %s 1 -j %s\n", ch->builtin,
					    ch->name);
			/* Extra jumps (two installs that raced): -D takes
			 * the first match, one stays. */
			for (unsigned j = 1; j < st->ch[i].jumps; j++)
				strbuf_addf(&sb, "-D %s -j %s\n", ch->builtin,
					    ch->name);
		}
		strbuf_adds(&sb, "COMMIT\n");
	}
	return strbuf_steal(&sb);
}

/*
 * The removal script for st, tables in reverse nf_tables[] order: every
 * jump, then every chain (all flushed first: a chain must be empty, and
 * no longer a target, to be deleted).  "" when nothing is there.
 */
static char *nf_remove_script(const struct nf_state *st)
{
	struct strbuf sb = { 0 };

	for (size_t t = ARRAY_SIZE(nf_tables); t-- > 0;) {
		const char *table = nf_tables[t];
		bool any = false;

		for (int i = 0; i < NF_CHAIN_MAX; i++)
			if (strcmp(nf_chains[i].table, table) == 0 &&
			    (st->ch[i].exists || st->ch[i].jumps))
				any = true;
		if (!any)
			continue;
		strbuf_addf(&sb, "*%s\n", table);
		for (int i = 0; i < NF_CHAIN_MAX; i++)
			if (strcmp(nf_chains[i].table, table) == 0)
				for (unsigned j = 0; j < st->ch[i].jumps; j++)
					strbuf_addf(&sb, "-D %s -j %s\n",
						    nf_chains[i].builtin,
						    nf_chains[i].name);
		for (int i = 0; i < NF_CHAIN_MAX; i++)
			if (strcmp(nf_chains[i].table, table) == 0 &&
			    st->ch[i].exists)
				strbuf_addf(&sb, "-F %s\n", nf_chains[i].name);
		for (int i = 0; i < NF_CHAIN_MAX; i++)
			if (strcmp(nf_chains[i].table, table) == 0 &&
			    st->ch[i].exists)
				strbuf_addf(&sb, "-X %s\n", nf_chains[i].name);
		strbuf_adds(&sb, "COMMIT\n");
	}
	return strbuf_steal(&sb);
}

/* ---- API --------------------------------------------------------------------- */

char *nfrules_script(const struct nfrules_cfg *c)
{
	const struct nf_state none = { 0 };
	char *err = NULL;

	if (nf_check_cfg(c, &err) < 0) {
		free(err);
		return NULL;
	}
	return nf_install_script(c, &none);
}

/* Every chain there, each with a built-in chain reached by exactly one
 * jump? */
static bool nf_state_exact(const struct nf_state *st)
{
	for (int i = 0; i < NF_CHAIN_MAX; i++)
		if (!st->ch[i].exists ||
		    (nf_chains[i].builtin && st->ch[i].jumps != 1))
			return false;
	return true;
}

int nfrules_install(const struct nfrules_cfg *c, char **err)
{
	struct nf_state st;

	*err = NULL;
	if (nf_check_cfg(c, err) < 0)
		return -1;
	/*
	 * The jumps are read, then the script written for what was read.
	 * Another writer in between (a second install) could leave two
	 * jumps or none, so the result is read back and, if need be, the
	 * install repeated: its chains' contents are the same each time.
	 */
	for (int try = 0;; try++) {
		char *script;
		int rc;

		if (nf_state_read(c, &st, err) < 0)
			return -1;
		if (try > 0 && nf_state_exact(&st))
			return 0;
		if (try == NF_INSTALL_TRIES) {
			nf_seterr(err, "the jumps to the EGRESS_* chains keep "
				       "changing under us (another writer?)");
			return -1;
		}
		script = nf_install_script(c, &st);
		rc = nf_restore(c, script, err);
		free(script);
		if (rc < 0)
			return -1;
	}
}

int nfrules_remove(const struct nfrules_cfg *c, char **err)
{
	struct nf_state st;
	char *script;
	int rc;

	*err = NULL;
	if (nf_state_read(c, &st, err) < 0)
		return -1;
	for (int i = 0; i < NF_CHAIN_MAX; i++)
		if (st.ch[i].refs) {
			/* Deleting that rule is its owner's business. */
			nf_seterr(err,
				  "%s chain %s is still the target of %u "
				  "rule(s) that are not ours (first in "
				  "chain %s); not removing",
				  nf_chains[i].table, nf_chains[i].name,
				  st.ch[i].refs, st.ch[i].ref_from);
			return -1;
		}
	script = nf_remove_script(&st);
	rc = *script ? nf_restore(c, script, err) : 0;
	free(script);
	return rc;
}

int nfrules_present(const struct nfrules_cfg *c)
{
	struct nf_state st;
	char *err = NULL;
	bool all = true, none = true;

	if (nf_state_read(c, &st, &err) < 0) {
		free(err);
		return -1;
	}
	for (int i = 0; i < NF_CHAIN_MAX; i++) {
		if (!st.ch[i].exists ||
		    (nf_chains[i].builtin && st.ch[i].jumps == 0))
			all = false;
		if (st.ch[i].exists || st.ch[i].jumps)
			none = false;
	}
	return all ? 1 : none ? 0 : -1;
}
