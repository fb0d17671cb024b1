/*
 * check_nfrules.c - the netfilter rules: the iptables-restore script for
 * several configurations (rule order in the nat and mangle tables,
 * loopback and its DNS exception, the exempt uid, ICMP, marks in hex and
 * as bit masks, bridge patterns and the shared bridge chain), invalid
 * configurations refused before any tool runs, and install/remove/present
 * driven against fake iptables-save and iptables-restore scripts (what was
 * read decides which jumps are written; tables are committed nat first
 * and removed mangle first; removal is exact; tool failures come back as
 * clear errors).  The real tools run in tests/netns/test_nfrules.sh,
 * inside a simulated world.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "nfrules.h"
#include "suites.h"
#include "testutil.h"
#include "util.h"

#define ARGV(...) ((char *[]){ __VA_ARGS__, NULL })

static const char *const two_bridges[] = { "docker0", "br-+" };

static struct nfrules_cfg base_cfg(void)
{
	return (struct nfrules_cfg){ .proxy_port = 8080,
				     .mark = 0x10000000,
				     .mark_mask = 0x10000000,
				     .bridges = two_bridges,
				     .nbridges = 2,
				     .dns_port = 8053,
				     .queue_num = 1,
				     .mark_dns = 0x20000000,
				     .mark_udp = 0x40000000,
				     .exempt_uid = -1,
				     .iptables_save = "/nonexistent/save",
				     .iptables_restore =
					     "/nonexistent/restore" };
}

/* The default layout, in full. */
static const char default_script[] =
	"*filter\n"
	":EGRESS_OUTPUT - [0:0]\n"
	":EGRESS_FORWARD - [0:0]\n"
	"-A EGRESS_OUTPUT -m mark --mark 0x10000000/0x10000000 -j RETURN\n"
	"-A EGRESS_OUTPUT -m mark --mark 0x20000000/0x20000000 "
	"-m conntrack ! --ctstate DNAT -j DROP\n"
	"-A EGRESS_FORWARD -m mark --mark 0x10000000/0x10000000 -j RETURN\n"
	"-A EGRESS_FORWARD -m mark --mark 0x20000000/0x20000000 "
	"-m conntrack ! --ctstate DNAT -j DROP\n"
	"-I OUTPUT 1 -j EGRESS_OUTPUT\n"
	"-I FORWARD 1 -j EGRESS_FORWARD\n"
	"COMMIT\n"
	"*nat\n"
	":EGRESS_OUTPUT - [0:0]\n"
	":EGRESS_PREROUTING - [0:0]\n"
	"-A EGRESS_OUTPUT -m mark --mark 0x10000000/0x10000000 -j RETURN\n"
	"-A EGRESS_OUTPUT -p udp -m mark --mark 0x20000000/0x20000000 "
	"-j REDIRECT --to-ports 8053\n"
	"-A EGRESS_OUTPUT -d 127.0.0.0/8 -p tcp -m tcp --dport 53 "
	"-j REDIRECT --to-ports 8080\n"
	"-A EGRESS_OUTPUT -d 127.0.0.0/8 -p tcp -j RETURN\n"
	"-A EGRESS_OUTPUT -p tcp -j REDIRECT --to-ports 8080\n"
	"-A EGRESS_PREROUTING -m mark --mark 0x10000000/0x10000000 "
	"-j RETURN\n"
	"-A EGRESS_PREROUTING -i docker0 -p udp -m mark "
	"--mark 0x20000000/0x20000000 -j REDIRECT --to-ports 8053\n"
	"-A EGRESS_PREROUTING -i br-+ -p udp -m mark "
	"--mark 0x20000000/0x20000000 -j REDIRECT --to-ports 8053\n"
	"-A EGRESS_PREROUTING -i docker0 -p tcp -j REDIRECT --to-ports 8080\n"
	"-A EGRESS_PREROUTING -i br-+ -p tcp -j REDIRECT --to-ports 8080\n"
	"-I OUTPUT 1 -j EGRESS_OUTPUT\n"
	"-I PREROUTING 1 -j EGRESS_PREROUTING\n"
	"COMMIT\n"
	"*mangle\n"
	":EGRESS_OUTPUT - [0:0]\n"
	":EGRESS_PREROUTING - [0:0]\n"
	":EGRESS_BRIDGE - [0:0]\n"
	"-A EGRESS_OUTPUT -m mark --mark 0x10000000/0x10000000 -j RETURN\n"
	"-A EGRESS_OUTPUT -p tcp -j RETURN\n"
	"-A EGRESS_OUTPUT -m conntrack --ctdir REPLY -j RETURN\n"
	"-A EGRESS_OUTPUT -p udp -m connmark --mark 0x40000000/0x40000000 "
	"-j RETURN\n"
	"-A EGRESS_OUTPUT -p udp -m mark --mark 0x20000000/0x20000000 "
	"-j RETURN\n"
	"-A EGRESS_OUTPUT -p udp -m mark --mark 0x40000000/0x40000000 "
	"-j CONNMARK --save-mark --nfmask 0x40000000 --ctmask 0x40000000\n"
	"-A EGRESS_OUTPUT -p udp -m mark --mark 0x40000000/0x40000000 "
	"-j RETURN\n"
	"-A EGRESS_OUTPUT -d 127.0.0.0/8 -p udp -m udp --dport 53 "
	"-j NFQUEUE --queue-num 1\n"
	"-A EGRESS_OUTPUT -d 127.0.0.0/8 -j RETURN\n"
	"-A EGRESS_OUTPUT -p udp -j NFQUEUE --queue-num 1\n"
	"-A EGRESS_OUTPUT -p igmp -j RETURN\n"
	"-A EGRESS_OUTPUT -m conntrack --ctstate RELATED -j RETURN\n"
	"-A EGRESS_OUTPUT -j NFQUEUE --queue-num 1\n"
	"-A EGRESS_PREROUTING -m mark --mark 0x10000000/0x10000000 "
	"-j RETURN\n"
	"-A EGRESS_PREROUTING -i docker0 -j EGRESS_BRIDGE\n"
	"-A EGRESS_PREROUTING -i br-+ -j EGRESS_BRIDGE\n"
	"-A EGRESS_BRIDGE -p tcp -j RETURN\n"
	"-A EGRESS_BRIDGE -m conntrack --ctdir REPLY -j RETURN\n"
	"-A EGRESS_BRIDGE -p udp -m connmark --mark 0x40000000/0x40000000 "
	"-j RETURN\n"
	"-A EGRESS_BRIDGE -p udp -m mark --mark 0x20000000/0x20000000 "
	"-j RETURN\n"
	"-A EGRESS_BRIDGE -p udp -m mark --mark 0x40000000/0x40000000 "
	"-j CONNMARK --save-mark --nfmask 0x40000000 --ctmask 0x40000000\n"
	"-A EGRESS_BRIDGE -p udp -m mark --mark 0x40000000/0x40000000 "
	"-j RETURN\n"
	"-A EGRESS_BRIDGE -p udp -j NFQUEUE --queue-num 1\n"
	"-A EGRESS_BRIDGE -p igmp -j RETURN\n"
	"-A EGRESS_BRIDGE -m conntrack --ctstate RELATED -j RETURN\n"
	"-A EGRESS_BRIDGE -j NFQUEUE --queue-num 1\n"
	"-I OUTPUT 1 -j EGRESS_OUTPUT\n"
	"-I PREROUTING 1 -j EGRESS_PREROUTING\n"
	"COMMIT\n";

/*
 * The rules of one chain of one table, in order, one per line, without
 * their "-A CHAIN " (chain names repeat across tables).
 */
static char *chain_rules(const char *script, const char *table,
			 const char *chain)
{
	struct strbuf sb = { 0 };
	char prefix[64];
	bool in_table = false;
	size_t n, tlen = strlen(table);

	n = (size_t)snprintf(prefix, sizeof(prefix), "-A %s ", chain);
	for (const char *p = script; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (p[0] == '*')
			in_table = len == tlen + 1 &&
				   strncmp(p + 1, table, tlen) == 0;
		else if (in_table && len > n && strncmp(p, prefix, n) == 0) {
			strbuf_add(&sb, p + n, len - n);
			strbuf_addc(&sb, '\n');
		}
		p = nl ? nl + 1 : NULL;
	}
	return strbuf_steal(&sb);
}

static int count_str(const char *s, const char *what)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, what)); p++)
		n++;
	return n;
}

/* The position of rule in rules (chain_rules output), -1 if absent. */
static int rule_index(const char *rules, const char *rule)
{
	size_t n = strlen(rule);
	int i = 0;

	for (const char *p = rules; *p; i++) {
		const char *nl = strchr(p, '\n');

		if ((size_t)(nl - p) == n && strncmp(p, rule, n) == 0)
			return i;
		p = nl + 1;
	}
	return -1;
}

START_TEST(test_script_default)
{
	struct nfrules_cfg c = base_cfg();
	char *s = nfrules_script(&c);

	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, default_script);
	free(s);
}
END_TEST

START_TEST(test_script_order)
{
	struct nfrules_cfg c = base_cfg();
	char *s = nfrules_script(&c);
	char *out = chain_rules(s, "nat", "EGRESS_OUTPUT");
	char *pre = chain_rules(s, "nat", "EGRESS_PREROUTING");
	const char *mark = strstr(out, "-m mark --mark 0x10000000");
	const char *udp = strstr(out, "-p udp -m mark");
	const char *dns = strstr(out, "--dport 53");
	const char *lo = strstr(out, "-d 127.0.0.0/8 -p tcp -j RETURN");
	const char *all = strstr(out, "\n-p tcp -j REDIRECT");

	/* the daemon's own traffic first, the DNS redirect of marked UDP,
	 * DNS to loopback before the loopback exemption, the catch-all
	 * last */
	ck_assert_ptr_eq(mark, out);
	ck_assert_ptr_nonnull(udp);
	ck_assert_ptr_nonnull(dns);
	ck_assert_ptr_nonnull(lo);
	ck_assert_ptr_nonnull(all);
	ck_assert(mark < udp && udp < dns && dns < lo && lo < all);
	ck_assert_int_eq(tu_lines(out), 5);
	ck_assert(strncmp(pre, "-m mark", 7) == 0);
	ck_assert_int_eq(tu_lines(pre), 5);
	/* the jumps come after the chains they target are declared, and
	 * filter is committed first, then nat, then mangle */
	ck_assert(strstr(s, ":EGRESS_OUTPUT") < strstr(s, "-I OUTPUT 1"));
	ck_assert(strstr(s, "*filter\n") == s);
	ck_assert(strstr(s, "*nat\n") > strstr(s, "COMMIT\n"));
	ck_assert(strstr(s, "*mangle\n") > strstr(s, "*nat\n"));
	free(out);
	free(pre);
	free(s);
}
END_TEST

/* The mangle chains' rules in the order the design gives them. */
START_TEST(test_script_mangle_order)
{
	static const char *const host[] = {
		"-m mark --mark 0x10000000/0x10000000 -j RETURN",
		"-p tcp -j RETURN",
		"-m conntrack --ctdir REPLY -j RETURN",
		"-p udp -m connmark --mark 0x40000000/0x40000000 -j RETURN",
		"-p udp -m mark --mark 0x20000000/0x20000000 -j RETURN",
		"-p udp -m mark --mark 0x40000000/0x40000000 -j CONNMARK "
		"--save-mark --nfmask 0x40000000 --ctmask 0x40000000",
		"-p udp -m mark --mark 0x40000000/0x40000000 -j RETURN",
		"-p udp -m owner --uid-owner 101 -j RETURN",
		"-d 127.0.0.0/8 -p udp -m udp --dport 53 -j NFQUEUE "
		"--queue-num 1",
		"-d 127.0.0.0/8 -j RETURN",
		"-p udp -j NFQUEUE --queue-num 1",
		"-p igmp -j RETURN",
		"-m conntrack --ctstate RELATED -j RETURN",
		"-j NFQUEUE --queue-num 1",
	};
	struct nfrules_cfg c = base_cfg();
	char *s, *out, *bridge;

	c.exempt_uid = 101;
	s = nfrules_script(&c);
	ck_assert_ptr_nonnull(s);
	out = chain_rules(s, "mangle", "EGRESS_OUTPUT");
	ck_assert_int_eq(tu_lines(out), (int)ARRAY_SIZE(host));
	for (size_t i = 0; i < ARRAY_SIZE(host); i++)
		ck_assert_msg(rule_index(out, host[i]) == (int)i,
			      "rule %zu '%s' at %d in:\n%s", i, host[i],
			      rule_index(out, host[i]), out);
	/* the bridge chain: the same without own mark, uid and loopback */
	bridge = chain_rules(s, "mangle", "EGRESS_BRIDGE");
	ck_assert_int_eq(tu_lines(bridge), (int)ARRAY_SIZE(host) - 4);
	for (size_t i = 1, k = 0; i < ARRAY_SIZE(host); i++) {
		if (i >= 7 && i <= 9)
			continue;
		ck_assert_int_eq(rule_index(bridge, host[i]), (int)k++);
	}
	ck_assert_ptr_null(strstr(bridge, "owner"));
	ck_assert_ptr_null(strstr(bridge, "127.0.0.0/8"));
	/* fail closed: no bypass, and every mark test is a bit mask */
	ck_assert_ptr_null(strstr(s, "bypass"));
	for (const char *p = s; (p = strstr(p, "--mark ")); p++)
		ck_assert_msg(strcspn(p + 7, "/ \n") < strcspn(p + 7, " \n"),
			      "whole-mark match at '%.40s'", p);
	free(bridge);
	free(out);
	free(s);
}
END_TEST

START_TEST(test_script_bridge_chain)
{
	struct nfrules_cfg c = base_cfg();
	char *s = nfrules_script(&c);
	char *pre = chain_rules(s, "mangle", "EGRESS_PREROUTING");
	const char *decl = strstr(s, ":EGRESS_BRIDGE - [0:0]\n");
	const char *jump = strstr(s, "-j EGRESS_BRIDGE\n");

	ck_assert_str_eq(pre, "-m mark --mark 0x10000000/0x10000000 -j RETURN\n"
			      "-i docker0 -j EGRESS_BRIDGE\n"
			      "-i br-+ -j EGRESS_BRIDGE\n");
	/* declared (created) before any rule jumps to it, in the same
	 * transaction, and never jumped to from a built-in chain */
	ck_assert_ptr_nonnull(decl);
	ck_assert_ptr_nonnull(jump);
	ck_assert(decl < jump);
	ck_assert(strstr(s, "*mangle\n") < decl);
	ck_assert_ptr_null(strstr(s, "-I PREROUTING 1 -j EGRESS_BRIDGE"));
	ck_assert_ptr_null(strstr(s, "-A PREROUTING"));
	free(pre);
	free(s);
}
END_TEST

START_TEST(test_script_intercept_loopback)
{
	struct nfrules_cfg c = base_cfg();
	char *s, *out;

	c.intercept_loopback = true;
	s = nfrules_script(&c);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(strstr(s, "127.0.0.0/8"));
	out = chain_rules(s, "nat", "EGRESS_OUTPUT");
	ck_assert_str_eq(out, "-m mark --mark 0x10000000/0x10000000 -j RETURN\n"
			      "-p udp -m mark --mark 0x20000000/0x20000000 "
			      "-j REDIRECT --to-ports 8053\n"
			      "-p tcp -j REDIRECT --to-ports 8080\n");
	free(out);
	/* loopback UDP goes to the queue like any other */
	out = chain_rules(s, "mangle", "EGRESS_OUTPUT");
	ck_assert_int_eq(rule_index(out, "-p udp -j NFQUEUE --queue-num 1"), 7);
	ck_assert_int_eq(tu_lines(out), 11);
	free(out);
	free(s);
}
END_TEST

START_TEST(test_script_exempt_uid)
{
	struct nfrules_cfg c = base_cfg();
	char *s, *nat, *mangle;

	s = nfrules_script(&c);
	ck_assert_ptr_null(strstr(s, "owner"));
	free(s);

	c.exempt_uid = 0;
	s = nfrules_script(&c);
	nat = chain_rules(s, "nat", "EGRESS_OUTPUT");
	mangle = chain_rules(s, "mangle", "EGRESS_OUTPUT");
	/* TCP DNS of that uid leaves before any TCP REDIRECT */
	ck_assert_int_eq(rule_index(nat, "-p tcp -m tcp --dport 53 -m owner "
					 "--uid-owner 0 -j RETURN"),
			 2);
	ck_assert_int_eq(rule_index(nat, "-d 127.0.0.0/8 -p tcp -m tcp "
					 "--dport 53 -j REDIRECT --to-ports "
					 "8080"),
			 3);
	/* its UDP leaves after the verdict rules, before the loopback DNS
	 * rule and the queue */
	ck_assert_int_eq(rule_index(mangle,
				    "-p udp -m owner --uid-owner 0 -j RETURN"),
			 7);
	ck_assert_int_eq(rule_index(mangle, "-d 127.0.0.0/8 -p udp -m udp "
					    "--dport 53 -j NFQUEUE "
					    "--queue-num 1"),
			 8);
	/* only in OUTPUT chains: the owner match does not exist in
	 * PREROUTING */
	ck_assert_ptr_null(strstr(s, "-A EGRESS_PREROUTING -p tcp -m tcp "
				     "--dport 53 -m owner"));
	ck_assert_ptr_null(strstr(s, "-A EGRESS_BRIDGE -p udp -m owner"));
	free(nat);
	free(mangle);
	free(s);

	c.exempt_uid = 2147483647;
	s = nfrules_script(&c);
	ck_assert_ptr_nonnull(strstr(s, "--uid-owner 2147483647 -j RETURN"));
	free(s);
}
END_TEST

START_TEST(test_script_allow_icmp)
{
	struct nfrules_cfg c = base_cfg();
	char *s, *out, *bridge;

	s = nfrules_script(&c);
	ck_assert_ptr_null(strstr(s, "icmp"));
	free(s);

	c.allow_icmp = true;
	s = nfrules_script(&c);
	out = chain_rules(s, "mangle", "EGRESS_OUTPUT");
	bridge = chain_rules(s, "mangle", "EGRESS_BRIDGE");
	/* after UDP is queued, before the catch-all queue */
	ck_assert_int_eq(rule_index(out, "-p udp -j NFQUEUE --queue-num 1"), 9);
	ck_assert_int_eq(rule_index(out, "-p icmp -j RETURN"), 10);
	ck_assert_int_eq(rule_index(out, "-p igmp -j RETURN"), 11);
	ck_assert_int_eq(rule_index(out, "-j NFQUEUE --queue-num 1"), 13);
	ck_assert_int_eq(rule_index(bridge, "-p icmp -j RETURN"), 7);
	ck_assert_int_eq(rule_index(bridge, "-j NFQUEUE --queue-num 1"), 10);
	free(out);
	free(bridge);
	free(s);
}
END_TEST

START_TEST(test_script_marks_hex_and_port)
{
	struct nfrules_cfg c = base_cfg();
	char *s, *out, *pre, *mangle;

	c.mark = 0x4000;
	c.mark_mask = 0xc000;
	c.proxy_port = 65535;
	c.dns_port = 53;
	c.queue_num = 0;
	c.mark_dns = 0x2;
	c.mark_udp = 0x30;
	s = nfrules_script(&c);
	ck_assert_ptr_nonnull(s);
	out = chain_rules(s, "nat", "EGRESS_OUTPUT");
	pre = chain_rules(s, "nat", "EGRESS_PREROUTING");
	mangle = chain_rules(s, "mangle", "EGRESS_OUTPUT");
	ck_assert(strncmp(out, "-m mark --mark 0x4000/0xc000 -j RETURN\n",
			  39) == 0);
	ck_assert(strncmp(pre, "-m mark --mark 0x4000/0xc000 -j RETURN\n",
			  39) == 0);
	ck_assert(strncmp(mangle, "-m mark --mark 0x4000/0xc000 -j RETURN\n",
			  39) == 0);
	ck_assert_ptr_null(strstr(s, "8080"));
	ck_assert_ptr_null(strstr(s, "8053"));
	ck_assert_ptr_null(strstr(s, "0x20000000"));
	ck_assert_ptr_null(strstr(s, "0x40000000"));
	ck_assert_ptr_nonnull(strstr(out, "--to-ports 65535\n"));
	ck_assert_int_eq(rule_index(out, "-p udp -m mark --mark 0x2/0x2 "
					 "-j REDIRECT --to-ports 53"),
			 1);
	ck_assert_int_eq(rule_index(pre, "-i br-+ -p udp -m mark --mark "
					 "0x2/0x2 -j REDIRECT --to-ports 53"),
			 2);
	/* a multi-bit UDP mark is tested, and saved, as all its bits */
	ck_assert_int_eq(rule_index(mangle, "-p udp -m connmark --mark "
					    "0x30/0x30 -j RETURN"),
			 3);
	ck_assert_int_eq(rule_index(mangle,
				    "-p udp -m mark --mark 0x30/0x30 -j "
				    "CONNMARK --save-mark --nfmask 0x30 "
				    "--ctmask 0x30"),
			 5);
	ck_assert_int_eq(rule_index(mangle, "-j NFQUEUE --queue-num 0"),
			 tu_lines(mangle) - 1);
	free(out);
	free(pre);
	free(mangle);
	free(s);

	c.mark = 0x1;
	c.mark_mask = 0xffffffff;
	c.queue_num = 65535;
	s = nfrules_script(&c);
	ck_assert_ptr_nonnull(strstr(s, "--mark 0x1/0xffffffff -j RETURN"));
	ck_assert_ptr_nonnull(strstr(s, "-j NFQUEUE --queue-num 65535\n"));
	free(s);
}
END_TEST

START_TEST(test_script_bridges)
{
	static const char *const many[] = { "docker0", "br-+", "cni0",
					    "veth.1_a-b+", "abcdefghijklmno" };
	struct nfrules_cfg c = base_cfg();
	char *s, *pre, *mpre;

	c.bridges = many;
	c.nbridges = ARRAY_SIZE(many);
	s = nfrules_script(&c);
	ck_assert_ptr_nonnull(s);
	pre = chain_rules(s, "nat", "EGRESS_PREROUTING");
	ck_assert_str_eq(
		pre,
		"-m mark --mark 0x10000000/0x10000000 -j RETURN\n"
		"-i docker0 -p udp -m mark --mark 0x20000000/0x20000000 -j "
		"REDIRECT --to-ports 8053\n"
		"-i br-+ -p udp -m mark --mark 0x20000000/0x20000000 -j "
		"REDIRECT --to-ports 8053\n"
		"-i cni0 -p udp -m mark --mark 0x20000000/0x20000000 -j "
		"REDIRECT --to-ports 8053\n"
		"-i veth.1_a-b+ -p udp -m mark --mark 0x20000000/0x20000000 -j "
		"REDIRECT --to-ports 8053\n"
		"-i abcdefghijklmno -p udp -m mark --mark "
		"0x20000000/0x20000000 -j REDIRECT --to-ports 8053\n"
		"-i docker0 -p tcp -j REDIRECT --to-ports 8080\n"
		"-i br-+ -p tcp -j REDIRECT --to-ports 8080\n"
		"-i cni0 -p tcp -j REDIRECT --to-ports 8080\n"
		"-i veth.1_a-b+ -p tcp -j REDIRECT --to-ports 8080\n"
		"-i abcdefghijklmno -p tcp -j REDIRECT --to-ports 8080\n");
	mpre = chain_rules(s, "mangle", "EGRESS_PREROUTING");
	ck_assert_str_eq(mpre,
			 "-m mark --mark 0x10000000/0x10000000 -j RETURN\n"
			 "-i docker0 -j EGRESS_BRIDGE\n"
			 "-i br-+ -j EGRESS_BRIDGE\n"
			 "-i cni0 -j EGRESS_BRIDGE\n"
			 "-i veth.1_a-b+ -j EGRESS_BRIDGE\n"
			 "-i abcdefghijklmno -j EGRESS_BRIDGE\n");
	/* no -i outside PREROUTING */
	ck_assert_ptr_null(strstr(s, "EGRESS_OUTPUT -i"));
	ck_assert_ptr_null(strstr(s, "EGRESS_BRIDGE -i"));
	free(pre);
	free(mpre);
	free(s);

	/* no bridges: the chains and their jumps stay, with the mark rule
	 * only (and the bridge chain, unreached) */
	c.bridges = NULL;
	c.nbridges = 0;
	s = nfrules_script(&c);
	ck_assert_ptr_nonnull(s);
	pre = chain_rules(s, "nat", "EGRESS_PREROUTING");
	ck_assert_str_eq(pre,
			 "-m mark --mark 0x10000000/0x10000000 -j RETURN\n");
	mpre = chain_rules(s, "mangle", "EGRESS_PREROUTING");
	ck_assert_str_eq(mpre,
			 "-m mark --mark 0x10000000/0x10000000 -j RETURN\n");
	ck_assert_int_eq(count_str(s, "-I PREROUTING 1 -j EGRESS_PREROUTING\n"),
			 2);
	ck_assert_ptr_nonnull(strstr(s, ":EGRESS_BRIDGE - [0:0]\n"));
	free(pre);
	free(mpre);
	free(s);
}
END_TEST

/* ---- invalid configurations ------------------------------------------------- */

static const struct bad_case {
	const char *what;
	uint16_t port;
	uint32_t mark, mask;
	const char *bridge1, *bridge2; /* NULL: fewer bridges */
	int uid;
	const char *want; /* in the error */
} bad_cases[] = {
	{ "port 0", 0, 1, 1, "docker0", NULL, -1, "proxy port must not be 0" },
	{ "mask 0", 8080, 0, 0, "docker0", NULL, -1, "mask must not be 0" },
	{ "mark 0", 8080, 0, 1, "docker0", NULL, -1, "mark must not be 0" },
	{ "mark outside mask", 8080, 0x3, 0x1, "docker0", NULL, -1,
	  "mark 0x3 has bits outside its mask 0x1" },
	{ "empty bridge", 8080, 1, 1, "", NULL, -1, "empty bridge pattern" },
	{ "space", 8080, 1, 1, "br 0", NULL, -1,
	  "character ' ' is not allowed" },
	{ "shell", 8080, 1, 1, "eth0;reboot", NULL, -1,
	  "character ';' is not allowed" },
	{ "newline", 8080, 1, 1, "eth0\n-A", NULL, -1,
	  "byte 0x0a is not allowed" },
	{ "slash", 8080, 1, 1, "br/0", NULL, -1, "character '/'" },
	{ "inner +", 8080, 1, 1, "br+x", NULL, -1,
	  "'+' is a wildcard only at the end" },
	{ "every interface", 8080, 1, 1, "+", NULL, -1,
	  "would match every interface" },
	{ "option-like", 8080, 1, 1, "-j", NULL, -1,
	  "must not start with '-'" },
	{ "dot", 8080, 1, 1, "..", NULL, -1, "is not an interface name" },
	{ "16 chars", 8080, 1, 1, "abcdefghijklmnop", NULL, -1,
	  "longer than 15 characters" },
	{ "twice", 8080, 1, 1, "docker0", "docker0", -1, "listed twice" },
	{ "uid", 8080, 1, 1, "docker0", NULL, -2, "exempt uid -2" },
};

START_TEST(test_invalid_cfg)
{
	const struct bad_case *b = &bad_cases[_i];
	const char *bridges[2] = { b->bridge1, b->bridge2 };
	struct nfrules_cfg c = base_cfg();
	char *err = NULL;

	c.proxy_port = b->port;
	c.mark = b->mark;
	c.mark_mask = b->mask;
	c.bridges = bridges;
	c.nbridges = b->bridge2 ? 2 : 1;
	c.exempt_uid = b->uid;
	ck_assert_ptr_null(nfrules_script(&c));
	/* refused before any tool runs (they do not exist here) */
	ck_assert_int_eq(nfrules_install(&c, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, b->want) != NULL, "%s: got '%s'", b->what,
		      err);
	free(err);
}
END_TEST

/* The UDP fields: ports, and the three marks' bits. */
static const struct udp_bad_case {
	const char *what;
	uint16_t dns_port;
	uint32_t mark, mask, dns, udp;
	const char *want;
} udp_bad_cases[] = {
	{ "DNS port 0", 0, 0x1, 0x1, 0x2, 0x4, "DNS port must not be 0" },
	{ "DNS mark 0", 8053, 0x1, 0x1, 0, 0x4, "DNS mark must not be 0" },
	{ "UDP mark 0", 8053, 0x1, 0x1, 0x2, 0, "UDP mark must not be 0" },
	{ "DNS = UDP", 8053, 0x1, 0x1, 0x2, 0x2,
	  "DNS mark 0x2 and UDP mark 0x2 share bits 0x2" },
	{ "DNS overlaps UDP", 8053, 0x1, 0x1, 0x6, 0xc,
	  "DNS mark 0x6 and UDP mark 0xc share bits 0x4" },
	{ "own = DNS", 8053, 0x10000000, 0x10000000, 0x10000000, 0x4,
	  "own mark 0x10000000 and DNS mark 0x10000000 share bits" },
	{ "own overlaps UDP", 8053, 0x3, 0xff, 0x4, 0x2,
	  "own mark 0x3 and UDP mark 0x2 share bits 0x2" },
	{ "own mark 0 still first", 8053, 0, 0x1, 0x2, 0x4,
	  "mark must not be 0" },
};

START_TEST(test_invalid_udp_cfg)
{
	const struct udp_bad_case *b = &udp_bad_cases[_i];
	struct nfrules_cfg c = base_cfg();
	char *err = NULL;

	c.dns_port = b->dns_port;
	c.mark = b->mark;
	c.mark_mask = b->mask;
	c.mark_dns = b->dns;
	c.mark_udp = b->udp;
	ck_assert_ptr_null(nfrules_script(&c));
	ck_assert_int_eq(nfrules_install(&c, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, b->want) != NULL, "%s: got '%s'", b->what,
		      err);
	free(err);
}
END_TEST

START_TEST(test_valid_marks)
{
	struct nfrules_cfg c = base_cfg();
	char *s;

	/* the own mark's mask may cover the consumer's bits: only the
	 * marks themselves must be apart */
	c.mark = 0x1;
	c.mark_mask = 0xffffffff;
	c.mark_dns = 0x2;
	c.mark_udp = 0x4;
	c.queue_num = 0;
	s = nfrules_script(&c);
	ck_assert_ptr_nonnull(s);
	free(s);
}
END_TEST

START_TEST(test_invalid_bridge_array)
{
	const char *holes[] = { "docker0", NULL };
	struct nfrules_cfg c = base_cfg();
	char *err = NULL;

	c.bridges = NULL;
	c.nbridges = 1;
	ck_assert_int_eq(nfrules_install(&c, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "none given"));
	free(err);
	err = NULL;
	c.bridges = holes;
	c.nbridges = 2;
	ck_assert_int_eq(nfrules_install(&c, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "bridge pattern 1 is missing"));
	free(err);
}
END_TEST

/* ---- against fake tools ----------------------------------------------------- */

/*
 * Fake iptables-save prints DIR/state (or fails as DIR/save.rc says);
 * fake iptables-restore appends its input to DIR/restore.in, prints
 * DIR/restore.err to stderr, then exits with DIR/restore.rc or, on
 * success, makes DIR/after the new state, as the kernel would.
 */
static char dir[64];
static char save_tool[128], restore_tool[128];

static void put(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static char *get(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return util_read_file(path, NULL);
}

static void fake_setup(void)
{
	struct strbuf sb = { 0 };

	snprintf(dir, sizeof(dir), "/tmp/check-nfrules-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(save_tool, sizeof(save_tool), "%s/save", dir);
	snprintf(restore_tool, sizeof(restore_tool), "%s/restore", dir);
	strbuf_addf(&sb,
		    "#!/bin/sh\n"
		    "D=%s\n"
		    "echo \"$*\" >>\"$D/save.args\"\n"
		    "[ -f \"$D/save.rc\" ] && { echo 'no such table' >&2; "
		    "exit $(cat \"$D/save.rc\"); }\n"
		    "cat \"$D/state\"\n",
		    dir);
	put("save", strbuf_str(&sb));
	strbuf_reset(&sb);
	strbuf_addf(
		&sb,
		"#!/bin/sh\n"
		"D=%s\n"
		"echo \"$*\" >\"$D/restore.args\"\n"
		"[ -f \"$D/restore.rc\" ] && [ ! -f \"$D/restore.read\" ] "
		"&& exit $(cat \"$D/restore.rc\")\n"
		"cat >>\"$D/restore.in\"\n"
		"[ -f \"$D/restore.err\" ] && cat \"$D/restore.err\" >&2\n"
		"[ -f \"$D/restore.rc\" ] && exit $(cat \"$D/restore.rc\")\n"
		"[ -f \"$D/after\" ] && cp \"$D/after\" \"$D/state\"\n"
		"exit 0\n",
		dir);
	put("restore", strbuf_str(&sb));
	strbuf_fini(&sb);
	ck_assert_int_eq(chmod(save_tool, 0700), 0);
	ck_assert_int_eq(chmod(restore_tool, 0700), 0);
}

static void fake_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct nfrules_cfg fake_cfg(void)
{
	struct nfrules_cfg c = base_cfg();

	c.iptables_save = save_tool;
	c.iptables_restore = restore_tool;
	return c;
}

#define NAT_HEAD                                            \
	"# Generated by iptables-save v1.8.9 (nf_tables)\n" \
	"*nat\n"                                            \
	":PREROUTING ACCEPT [0:0]\n"                        \
	":INPUT ACCEPT [0:0]\n"                             \
	":OUTPUT ACCEPT [0:0]\n"                            \
	":POSTROUTING ACCEPT [0:0]\n"
#define NAT_TAIL "COMMIT\n# Completed\n"
#define FOREIGN                                                               \
	":DOCKER - [0:0]\n"                                                   \
	"-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"              \
	"-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER\n" \
	"-A OUTPUT -m comment --comment \"x -j EGRESS_OUTPUT2\" -j ACCEPT\n"  \
	"-A DOCKER -i docker0 -j RETURN\n"
#define OURS                                   \
	":EGRESS_OUTPUT - [0:0]\n"             \
	":EGRESS_PREROUTING - [0:0]\n"         \
	"-A PREROUTING -j EGRESS_PREROUTING\n" \
	"-A OUTPUT -j EGRESS_OUTPUT\n"         \
	"-A EGRESS_OUTPUT -p tcp -j REDIRECT --to-ports 9999\n"
#define MANGLE_HEAD                                         \
	"# Generated by iptables-save v1.8.9 (nf_tables)\n" \
	"*mangle\n"                                         \
	":PREROUTING ACCEPT [0:0]\n"                        \
	":INPUT ACCEPT [0:0]\n"                             \
	":FORWARD ACCEPT [0:0]\n"                           \
	":OUTPUT ACCEPT [0:0]\n"                            \
	":POSTROUTING ACCEPT [0:0]\n"
#define MANGLE_FOREIGN                                    \
	":DOCKER-MANGLE - [0:0]\n"                        \
	"-A PREROUTING -j MARK --set-xmark 0x100/0x100\n" \
	"-A PREROUTING -i docker0 -j DOCKER-MANGLE\n"     \
	"-A DOCKER-MANGLE -p udp -j MARK --set-mark 0x1\n"
/* iptables-save lists chains sorted, rules by chain */
#define MANGLE_OURS                                   \
	":EGRESS_BRIDGE - [0:0]\n"                    \
	":EGRESS_OUTPUT - [0:0]\n"                    \
	":EGRESS_PREROUTING - [0:0]\n"                \
	"-A PREROUTING -j EGRESS_PREROUTING\n"        \
	"-A OUTPUT -j EGRESS_OUTPUT\n"                \
	"-A EGRESS_BRIDGE -j NFQUEUE --queue-num 1\n" \
	"-A EGRESS_PREROUTING -i docker0 -j EGRESS_BRIDGE\n"
#define FILTER_HEAD                                         \
	"# Generated by iptables-save v1.8.9 (nf_tables)\n" \
	"*filter\n"                                         \
	":INPUT ACCEPT [0:0]\n"                             \
	":FORWARD DROP [0:0]\n"                             \
	":OUTPUT ACCEPT [0:0]\n"
#define FILTER_FOREIGN                \
	":DOCKER-USER - [0:0]\n"      \
	"-A FORWARD -j DOCKER-USER\n" \
	"-A DOCKER-USER -j RETURN\n"
#define FILTER_OURS                      \
	":EGRESS_FORWARD - [0:0]\n"      \
	":EGRESS_OUTPUT - [0:0]\n"       \
	"-A FORWARD -j EGRESS_FORWARD\n" \
	"-A OUTPUT -j EGRESS_OUTPUT\n"   \
	"-A EGRESS_OUTPUT -m mark --mark 0x2/0x2 -j DROP\n"
static const char state_absent[] = FILTER_HEAD FILTER_FOREIGN NAT_TAIL NAT_HEAD
	FOREIGN NAT_TAIL MANGLE_HEAD MANGLE_FOREIGN NAT_TAIL;
static const char state_present[] =
	FILTER_HEAD FILTER_FOREIGN FILTER_OURS NAT_TAIL NAT_HEAD FOREIGN OURS
		NAT_TAIL MANGLE_HEAD MANGLE_FOREIGN MANGLE_OURS NAT_TAIL;

START_TEST(test_install_fresh)
{
	struct nfrules_cfg c = fake_cfg();
	char *err = NULL, *in, *args;

	put("state", state_absent);
	put("after", state_present);
	ck_assert_int_eq(nfrules_install(&c, &err), 0);
	ck_assert_ptr_null(err);
	/* one restore (the read-back found one jump each), with the whole
	 * script, jumps included */
	in = get("restore.in");
	ck_assert_str_eq(in, default_script);
	args = get("restore.args");
	ck_assert_str_eq(args, "--noflush --wait=10\n");
	free(args);
	/* read both tables, then read them back */
	args = get("save.args");
	ck_assert_str_eq(args,
			 "-t filter\n-t nat\n-t mangle\n-t filter\n-t nat\n"
			 "-t mangle\n");
	free(args);
	free(in);
}
END_TEST

START_TEST(test_install_over_existing)
{
	struct nfrules_cfg c = fake_cfg();
	char *err = NULL, *in;

	/* a restart after a crash: the chains are refilled in place, the
	 * jumps left as they are */
	put("state", state_present);
	ck_assert_int_eq(nfrules_install(&c, &err), 0);
	in = get("restore.in");
	ck_assert_ptr_nonnull(strstr(in, ":EGRESS_OUTPUT - [0:0]\n"));
	ck_assert_ptr_nonnull(strstr(in, ":EGRESS_PREROUTING - [0:0]\n"));
	ck_assert_ptr_nonnull(strstr(in, ":EGRESS_BRIDGE - [0:0]\n"));
	ck_assert_ptr_nonnull(strstr(in, "--to-ports 8080"));
	ck_assert_ptr_nonnull(strstr(in, "--queue-num 1"));
	ck_assert_ptr_null(strstr(in, "-I "));
	ck_assert_ptr_null(strstr(in, "-D "));
	ck_assert_ptr_null(strstr(in, "DOCKER"));
	ck_assert_ptr_null(strstr(in, ":OUTPUT"));
	ck_assert_ptr_null(strstr(in, ":PREROUTING"));
	ck_assert_ptr_null(strstr(in, "MARK --set"));
	free(in);
}
END_TEST

START_TEST(test_install_duplicate_jumps)
{
	struct nfrules_cfg c = fake_cfg();
	char *err = NULL, *in;

	put("state", FILTER_HEAD FILTER_OURS NAT_TAIL NAT_HEAD OURS
	    "-A OUTPUT -j EGRESS_OUTPUT\n"
	    "-A OUTPUT -j EGRESS_OUTPUT\n" NAT_TAIL MANGLE_HEAD MANGLE_OURS
	    "-A PREROUTING -j EGRESS_PREROUTING\n" NAT_TAIL);
	put("after", state_present);
	ck_assert_int_eq(nfrules_install(&c, &err), 0);
	in = get("restore.in");
	/* two extra nat OUTPUT jumps, one extra mangle PREROUTING jump,
	 * each in its own table */
	ck_assert_ptr_nonnull(strstr(in, "-D OUTPUT -j EGRESS_OUTPUT\n"
					 "-D OUTPUT -j EGRESS_OUTPUT\nCOMMIT\n"
					 "*mangle\n"));
	ck_assert_ptr_nonnull(
		strstr(in, "-j NFQUEUE --queue-num 1\n"
			   "-D PREROUTING -j EGRESS_PREROUTING\nCOMMIT\n"));
	ck_assert_int_eq(count_str(in, "-D "), 3);
	ck_assert_ptr_null(strstr(in, "-I "));
	free(in);
}
END_TEST

START_TEST(test_install_never_settles)
{
	struct nfrules_cfg c = fake_cfg();
	char *err = NULL, *in;

	/* the restore "succeeds" but the jumps never show up */
	put("state", state_absent);
	ck_assert_int_eq(nfrules_install(&c, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "keep changing"));
	in = get("restore.in");
	ck_assert_int_eq(tu_lines(in), 3 * tu_lines(default_script));
	free(in);
	free(err);
}
END_TEST

START_TEST(test_install_restore_fails)
{
	struct nfrules_cfg c = fake_cfg();
	char *err = NULL;

	put("state", state_absent);
	put("restore.rc", "2\n");
	put("restore.read", "");
	put("restore.err",
	    "iptables-restore v1.8.9 (nf_tables): Chain 'X' does not exist\n"
	    "Error occurred at line: 4\n"
	    "Try `iptables-restore -h' or 'iptables-restore --help' for "
	    "more information.\n");
	ck_assert_int_eq(nfrules_install(&c, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(
		strstr(err,
		       "restore failed (exit status 2): iptables-restore "
		       "v1.8.9 (nf_tables): Chain 'X' does not exist: "
		       "Error occurred at line: 4 [script: -A "
		       "EGRESS_OUTPUT -m mark --mark 0x10000000/0x10000000 "
		       "-j RETURN]") != NULL,
		"got '%s'", err);
	ck_assert_ptr_null(strstr(err, "Try `"));
	free(err);
}
END_TEST

START_TEST(test_install_restore_exits_unread)
{
	struct nfrules_cfg c = fake_cfg();
	const char **many = util_xcalloc(5000, sizeof(*many));
	char(*names)[8] = util_xcalloc(5000, sizeof(*names));
	char *err = NULL;

	/* a script far larger than a pipe, and a tool that exits without
	 * reading it: an error, not a SIGPIPE */
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(names[i], sizeof(names[i]), "b%u", i);
		many[i] = names[i];
	}
	c.bridges = many;
	c.nbridges = 5000;
	put("state", state_absent);
	put("restore.rc", "1\n");
	ck_assert_int_eq(nfrules_install(&c, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "exit status 1"));
	free(err);
	free(names);
	free(many);
}
END_TEST

START_TEST(test_save_fails)
{
	struct nfrules_cfg c = fake_cfg();
	char *err = NULL;

	put("save.rc", "1\n");
	ck_assert_int_eq(nfrules_install(&c, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "save failed (exit status 1): "
					  "no such table"));
	free(err);
	err = NULL;
	ck_assert_int_eq(nfrules_remove(&c, &err), -1);
	ck_assert_ptr_nonnull(err);
	free(err);
	ck_assert_int_eq(nfrules_present(&c), -1);
	ck_assert_ptr_null(get("restore.args"));

	c.iptables_save = "/nonexistent/iptables-save";
	err = NULL;
	ck_assert_int_eq(nfrules_install(&c, &err), -1);
	ck_assert_str_eq(err, "cannot run /nonexistent/iptables-save: No "
			      "such file or directory");
	free(err);
}
END_TEST

START_TEST(test_save_large)
{
	struct nfrules_cfg c = fake_cfg();
	struct strbuf sb = { 0 };

	/* a busy host's nat table, far larger than a pipe */
	strbuf_adds(&sb, NAT_HEAD ":KUBE - [0:0]\n");
	for (int i = 0; i < 40000; i++)
		strbuf_addf(&sb, "-A KUBE -d 10.0.%d.%d/32 -j RETURN\n",
			    i / 256 % 256, i % 256);
	strbuf_adds(&sb, OURS NAT_TAIL MANGLE_HEAD MANGLE_OURS NAT_TAIL
				 FILTER_HEAD FILTER_OURS NAT_TAIL);
	put("state", strbuf_str(&sb));
	ck_assert_uint_gt(sb.len, 1u << 20);
	ck_assert_int_eq(nfrules_present(&c), 1);
	strbuf_fini(&sb);
}
END_TEST

START_TEST(test_remove)
{
	struct nfrules_cfg c = fake_cfg();
	char *err = NULL, *in;

	put("state", state_present);
	put("after", state_absent);
	ck_assert_int_eq(nfrules_remove(&c, &err), 0);
	ck_assert_ptr_null(err);
	/* mangle first (nothing queued and marked any more), then nat;
	 * the bridge chain deleted after the chain jumping to it */
	in = get("restore.in");
	ck_assert_str_eq(in, "*mangle\n"
			     "-D OUTPUT -j EGRESS_OUTPUT\n"
			     "-D PREROUTING -j EGRESS_PREROUTING\n"
			     "-F EGRESS_OUTPUT\n"
			     "-F EGRESS_PREROUTING\n"
			     "-F EGRESS_BRIDGE\n"
			     "-X EGRESS_OUTPUT\n"
			     "-X EGRESS_PREROUTING\n"
			     "-X EGRESS_BRIDGE\n"
			     "COMMIT\n"
			     "*nat\n"
			     "-D OUTPUT -j EGRESS_OUTPUT\n"
			     "-D PREROUTING -j EGRESS_PREROUTING\n"
			     "-F EGRESS_OUTPUT\n"
			     "-F EGRESS_PREROUTING\n"
			     "-X EGRESS_OUTPUT\n"
			     "-X EGRESS_PREROUTING\n"
			     "COMMIT\n"
			     "*filter\n"
			     "-D OUTPUT -j EGRESS_OUTPUT\n"
			     "-D FORWARD -j EGRESS_FORWARD\n"
			     "-F EGRESS_OUTPUT\n"
			     "-F EGRESS_FORWARD\n"
			     "-X EGRESS_OUTPUT\n"
			     "-X EGRESS_FORWARD\n"
			     "COMMIT\n");
	free(in);

	/* nothing there: success without running iptables-restore */
	unlink(restore_tool);
	ck_assert_int_eq(nfrules_remove(&c, &err), 0);
	ck_assert_ptr_null(err);
}
END_TEST

START_TEST(test_remove_every_jump)
{
	struct nfrules_cfg c = fake_cfg();
	char *err = NULL, *in;

	put("state", NAT_HEAD ":EGRESS_OUTPUT - [0:0]\n"
			      "-A OUTPUT -j EGRESS_OUTPUT\n"
			      "-A OUTPUT -j ACCEPT\n"
			      "-A OUTPUT -j EGRESS_OUTPUT\n" NAT_TAIL);
	ck_assert_int_eq(nfrules_remove(&c, &err), 0);
	in = get("restore.in");
	ck_assert_str_eq(in, "*nat\n"
			     "-D OUTPUT -j EGRESS_OUTPUT\n"
			     "-D OUTPUT -j EGRESS_OUTPUT\n"
			     "-F EGRESS_OUTPUT\n"
			     "-X EGRESS_OUTPUT\n"
			     "COMMIT\n");
	free(in);
}
END_TEST

START_TEST(test_remove_foreign_reference)
{
	struct nfrules_cfg c = fake_cfg();
	char *err = NULL;

	/* someone else's rule targets our chain: deleting it is not ours
	 * to do, and -X would fail, so nothing is touched */
	put("state",
	    NAT_HEAD OURS ":CUSTOM - [0:0]\n"
			  "-A CUSTOM -p tcp -j EGRESS_OUTPUT\n" NAT_TAIL);
	ck_assert_int_eq(nfrules_remove(&c, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "nat chain EGRESS_OUTPUT is still "
					  "the target of 1 rule(s) that are "
					  "not ours (first in chain CUSTOM)"));
	ck_assert_ptr_null(get("restore.args"));
	free(err);

	/* the same for the bridge chain, which no built-in chain jumps to */
	err = NULL;
	put("state", NAT_HEAD OURS NAT_TAIL MANGLE_HEAD MANGLE_OURS
	    "-A PREROUTING -i cni0 -g EGRESS_BRIDGE\n" NAT_TAIL);
	ck_assert_int_eq(nfrules_remove(&c, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "mangle chain EGRESS_BRIDGE is "
					  "still the target of 1 rule(s) that "
					  "are not ours (first in chain "
					  "PREROUTING)"));
	ck_assert_ptr_null(get("restore.args"));
	free(err);
}
END_TEST

START_TEST(test_present)
{
	struct nfrules_cfg c = fake_cfg();

	put("state", state_absent);
	ck_assert_int_eq(nfrules_present(&c), 0);
	put("state", state_present);
	ck_assert_int_eq(nfrules_present(&c), 1);
	/* a chain without its jump is neither */
	put("state", NAT_HEAD ":EGRESS_OUTPUT - [0:0]\n"
			      ":EGRESS_PREROUTING - [0:0]\n"
			      "-A OUTPUT -j EGRESS_OUTPUT\n" NAT_TAIL);
	ck_assert_int_eq(nfrules_present(&c), -1);
	/* a jump with more to it is not ours, and other tables are not
	 * read as nat */
	put("state", NAT_HEAD ":EGRESS_OUTPUT - [0:0]\n"
			      ":EGRESS_PREROUTING - [0:0]\n"
			      "-A OUTPUT -p tcp -j EGRESS_OUTPUT\n"
			      "-A PREROUTING -j EGRESS_PREROUTING\n" NAT_TAIL
			      "*filter\n-A OUTPUT -j EGRESS_OUTPUT\n" NAT_TAIL);
	ck_assert_int_eq(nfrules_present(&c), -1);
	/* our chains calling each other are not foreign references */
	put("state", FILTER_HEAD FILTER_OURS NAT_TAIL NAT_HEAD OURS
	    "-A EGRESS_OUTPUT -j EGRESS_PREROUTING\n" NAT_TAIL MANGLE_HEAD
		    MANGLE_OURS NAT_TAIL);
	ck_assert_int_eq(nfrules_present(&c), 1);
	/* filter missing (an install from before the DNS guard) is partial */
	put("state", NAT_HEAD OURS NAT_TAIL MANGLE_HEAD MANGLE_OURS NAT_TAIL);
	ck_assert_int_eq(nfrules_present(&c), -1);
	/* nat alone (a TCP-only install) is partial */
	put("state", NAT_HEAD OURS NAT_TAIL MANGLE_HEAD NAT_TAIL);
	ck_assert_int_eq(nfrules_present(&c), -1);
	/* mangle alone, too */
	put("state", NAT_HEAD NAT_TAIL MANGLE_HEAD MANGLE_OURS NAT_TAIL);
	ck_assert_int_eq(nfrules_present(&c), -1);
	/* one mangle jump missing */
	put("state", NAT_HEAD OURS NAT_TAIL MANGLE_HEAD
	    ":EGRESS_BRIDGE - [0:0]\n"
	    ":EGRESS_OUTPUT - [0:0]\n"
	    ":EGRESS_PREROUTING - [0:0]\n"
	    "-A OUTPUT -j EGRESS_OUTPUT\n" NAT_TAIL);
	ck_assert_int_eq(nfrules_present(&c), -1);
	/* the bridge chain missing */
	put("state", NAT_HEAD OURS NAT_TAIL MANGLE_HEAD
	    ":EGRESS_OUTPUT - [0:0]\n"
	    ":EGRESS_PREROUTING - [0:0]\n"
	    "-A PREROUTING -j EGRESS_PREROUTING\n"
	    "-A OUTPUT -j EGRESS_OUTPUT\n" NAT_TAIL);
	ck_assert_int_eq(nfrules_present(&c), -1);
	/* nat's chains are not mangle's: the names alone do not count */
	put("state", NAT_HEAD OURS
	    ":EGRESS_BRIDGE - [0:0]\n" NAT_TAIL MANGLE_HEAD NAT_TAIL);
	ck_assert_int_eq(nfrules_present(&c), -1);
}
END_TEST

/* ---- egressctl nf, in-process ---------------------------------------------- */

START_TEST(test_ctl_script)
{
	struct tu_run r;

	tu_run(&r, ctl_nf, ARGV("nf", "script"));
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_str_eq(r.out, default_script);
	tu_run_fini(&r);

	tu_run(&r, ctl_nf,
	       ARGV("nf", "script", "--port", "3128", "--mark", "0x4/0xc",
		    "--bridge", "cni0", "--bridge", "br-+",
		    "--intercept-loopback"));
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.out, "--mark 0x4/0xc -j RETURN"));
	ck_assert_ptr_nonnull(strstr(r.out,
				     "-A EGRESS_PREROUTING -i cni0 -p "
				     "tcp -j REDIRECT --to-ports "
				     "3128\n-A EGRESS_PREROUTING -i br-+"));
	ck_assert_ptr_null(strstr(r.out, "docker0"));
	ck_assert_ptr_null(strstr(r.out, "127.0.0.0/8"));
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--mark", "7"));
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.out, "--mark 0x7/0xffffffff"));
	tu_run_fini(&r);
}
END_TEST

START_TEST(test_ctl_script_udp)
{
	struct tu_run r;

	tu_run(&r, ctl_nf,
	       ARGV("nf", "script", "--dns-port", "5353", "--queue", "7",
		    "--mark-dns", "0x2", "--mark-udp", "4", "--allow-icmp",
		    "--exempt-uid", "root"));
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.out, "-A EGRESS_OUTPUT -p udp -m mark "
					    "--mark 0x2/0x2 -j REDIRECT "
					    "--to-ports 5353\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "-A EGRESS_BRIDGE -p udp -m "
					    "connmark --mark 0x4/0x4 -j "
					    "RETURN\n"));
	ck_assert_ptr_nonnull(
		strstr(r.out, "-A EGRESS_OUTPUT -p udp -m owner --uid-owner 0 "
			      "-j RETURN\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "-A EGRESS_BRIDGE -p icmp -j "
					    "RETURN\n"));
	ck_assert_int_eq(count_str(r.out, "-j NFQUEUE --queue-num 7\n"), 5);
	ck_assert_ptr_null(strstr(r.out, "--queue-num 1\n"));
	ck_assert_ptr_null(strstr(r.out, "0x20000000"));
	tu_run_fini(&r);

	/* several queues: every NFQUEUE rule balances over all of them */
	tu_run(&r, ctl_nf,
	       ARGV("nf", "script", "--queue", "7", "--queues", "3"));
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_int_eq(
		count_str(r.out,
			  "-j NFQUEUE --queue-balance 7:9 --queue-cpu-fanout\n"),
		5);
	ck_assert_ptr_null(strstr(r.out, "--queue-num"));
	tu_run_fini(&r);
	tu_run(&r, ctl_nf,
	       ARGV("nf", "script", "--queue", "65534", "--queues", "3"));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_ptr_nonnull(strstr(r.err, "past queue 65535"));
	tu_run_fini(&r);
	tu_run(&r, ctl_nf, ARGV("nf", "script", "--queues", "0"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	tu_run_fini(&r);
	/* one queue is the same as none said */
	tu_run(&r, ctl_nf, ARGV("nf", "script", "--queues", "1"));
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_int_eq(count_str(r.out, "-j NFQUEUE --queue-num 1\n"), 5);
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--exempt-uid", "4242"));
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.out, "--uid-owner 4242 -j RETURN"));
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "--help"));
	ck_assert_int_eq(r.rc, CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.out, "--dns-port 8053 --queue 1 "
					    "--mark-dns 0x20000000 "
					    "--mark-udp 0x40000000"));
	ck_assert_ptr_nonnull(strstr(r.out, "[--exempt-uid UID|USER]"));
	tu_run_fini(&r);
}
END_TEST

START_TEST(test_ctl_errors)
{
	struct tu_run r;

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--port", "0"));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_str_eq(r.err, "egressctl nf: proxy port must not be 0\n");
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--bridge", "a b"));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_ptr_nonnull(strstr(r.err, "character ' ' is not allowed"));
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--port", "70000"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	ck_assert_ptr_nonnull(strstr(r.err, "bad port '70000'"));
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--mark", "0x1/"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	ck_assert_ptr_nonnull(strstr(r.err, "bad mark"));
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--dns-port", "0"));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_str_eq(r.err, "egressctl nf: DNS port must not be 0\n");
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--mark-udp", "0"));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_str_eq(r.err, "egressctl nf: UDP mark must not be 0\n");
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--mark-dns", "0x10000000"));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_str_eq(r.err, "egressctl nf: own mark 0x10000000 and DNS "
				"mark 0x10000000 share bits 0x10000000\n");
	tu_run_fini(&r);

	tu_run(&r, ctl_nf,
	       ARGV("nf", "script", "--mark-dns", "0x3", "--mark-udp", "0x6"));
	ck_assert_int_eq(r.rc, CTL_FAIL);
	ck_assert_ptr_nonnull(strstr(r.err, "share bits 0x2"));
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--queue", "65536"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	ck_assert_ptr_nonnull(strstr(r.err, "bad queue number '65536'"));
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--mark-dns", "0x2/0x2"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	ck_assert_ptr_nonnull(strstr(r.err, "bad mark '0x2/0x2'"));
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--mark-udp", "0x100000000"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	tu_run_fini(&r);

	tu_run(&r, ctl_nf,
	       ARGV("nf", "script", "--exempt-uid", "no-such-user-egress"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	ck_assert_ptr_nonnull(
		strstr(r.err, "'no-such-user-egress' is neither a user nor a "
			      "uid"));
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "script", "--exempt-uid", "-1"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "remove", "extra"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	tu_run_fini(&r);

	tu_run(&r, ctl_nf, ARGV("nf", "frobnicate"));
	ck_assert_int_eq(r.rc, CTL_USAGE);
	ck_assert_ptr_nonnull(strstr(r.err, "usage: egressctl nf install"));
	tu_run_fini(&r);
}
END_TEST

Suite *nfrules_suite(void)
{
	Suite *s = suite_create("nfrules");
	TCase *tc = tcase_create("script");

	tcase_add_test(tc, test_script_default);
	tcase_add_test(tc, test_script_order);
	tcase_add_test(tc, test_script_mangle_order);
	tcase_add_test(tc, test_script_bridge_chain);
	tcase_add_test(tc, test_script_intercept_loopback);
	tcase_add_test(tc, test_script_exempt_uid);
	tcase_add_test(tc, test_script_allow_icmp);
	tcase_add_test(tc, test_script_marks_hex_and_port);
	tcase_add_test(tc, test_script_bridges);
	tcase_add_loop_test(tc, test_invalid_cfg, 0, ARRAY_SIZE(bad_cases));
	tcase_add_loop_test(tc, test_invalid_udp_cfg, 0,
			    ARRAY_SIZE(udp_bad_cases));
	tcase_add_test(tc, test_valid_marks);
	tcase_add_test(tc, test_invalid_bridge_array);
	suite_add_tcase(s, tc);

	tc = tcase_create("tools");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_install_fresh);
	tcase_add_test(tc, test_install_over_existing);
	tcase_add_test(tc, test_install_duplicate_jumps);
	tcase_add_test(tc, test_install_never_settles);
	tcase_add_test(tc, test_install_restore_fails);
	tcase_add_test(tc, test_install_restore_exits_unread);
	tcase_add_test(tc, test_save_fails);
	tcase_add_test(tc, test_save_large);
	tcase_add_test(tc, test_remove);
	tcase_add_test(tc, test_remove_every_jump);
	tcase_add_test(tc, test_remove_foreign_reference);
	tcase_add_test(tc, test_present);
	suite_add_tcase(s, tc);

	tc = tcase_create("egressctl");
	tcase_add_test(tc, test_ctl_script);
	tcase_add_test(tc, test_ctl_script_udp);
	tcase_add_test(tc, test_ctl_errors);
	suite_add_tcase(s, tc);
	return s;
}
