/*
 * ctlookup.h - the original destination of a NATed flow, from the kernel's
 * connection tracking table (ctnetlink), looked up by the flow's REPLY
 * tuple: what a local socket that received a REDIRECTed packet knows
 * (its own address and port, and the client's).
 *
 * The request is built with libmnl (libnetfilter_conntrack's builder always
 * adds an ORIGINAL tuple, which the kernel would then prefer) and the answer
 * is read with libnetfilter_conntrack's nfct_nlmsg_parse.
 *
 * Threads: a ctlookup_t is used by one thread at a time.  Lookups are
 * synchronous, one netlink round trip, and give up after
 * CTLOOKUP_TIMEOUT_MS: the caller may be an event loop.
 */
#ifndef EGRESS_CTLOOKUP_H
#define EGRESS_CTLOOKUP_H

#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"

#define CTLOOKUP_TIMEOUT_MS 200

typedef struct ctlookup ctlookup_t;

/* Opens a ctnetlink socket in the caller's network namespace (queries need
 * CAP_NET_ADMIN).  NULL with *err set (caller frees) on failure. */
ctlookup_t *ctlookup_open(char **err) NONNULL(1) WUNRES;
void ctlookup_close(ctlookup_t *c);

/*
 * The conntrack entry whose REPLY tuple is (proto, reply_src:reply_sport ->
 * reply_dst:reply_dport): for a packet REDIRECTed to a local socket,
 * reply_src/sport are the local address and port it arrived on and
 * reply_dst/dport the client.  Ports in host byte order; proto is
 * IPPROTO_UDP or IPPROTO_TCP.  Fills *orig_src with the ORIGINAL
 * direction's source (the client), *orig_dst with its destination (the
 * address the client aimed at), and *natted with whether that destination
 * differs from reply_src:reply_sport (it was rewritten on the way).
 * Returns 0, -ENOENT (no such entry), -ETIMEDOUT, -EINVAL (another
 * protocol) or another -errno.
 */
int ctlookup_orig(ctlookup_t *c, uint8_t proto, struct in_addr reply_src,
		  uint16_t reply_sport, struct in_addr reply_dst,
		  uint16_t reply_dport, struct sockaddr_in *orig_src,
		  struct sockaddr_in *orig_dst, bool *natted)
	NONNULL(1, 7, 8, 9) WUNRES;

/* ---- the two halves of a lookup, pure, for the unit tests ---- */

struct ctlookup_tuple {
	uint8_t proto;
	struct in_addr src, dst;
	uint16_t sport, dport; /* host byte order */
};

struct ctlookup_result {
	struct sockaddr_in orig_src, orig_dst;
	bool natted;
};

/* Builds the IPCTNL_MSG_CT_GET request for reply tuple t into buf (size
 * bytes, suitably aligned).  Returns its length, 0 if it does not fit. */
size_t ctlookup_build_request(void *buf, size_t size, uint32_t seq,
			      const struct ctlookup_tuple *t) NONNULL(1, 4);

/* ctlookup_parse_answer: not an answer to this request, keep reading. */
#define CTLOOKUP_NOT_OURS 1

/*
 * Reads one message as the answer to request seq for reply tuple t: 0 and
 * *r filled for the entry, a -errno the kernel answered with, -ENOENT for
 * an entry whose ORIGINAL tuple is t (the kernel matches either side),
 * -EBADMSG for an entry that is malformed or otherwise not the one asked
 * for, or CTLOOKUP_NOT_OURS.  len is what the buffer holds from nlh on,
 * alignment padding of the last message included (-EBADMSG if not).  Safe
 * on any bytes.
 */
int ctlookup_parse_answer(const struct nlmsghdr *nlh, size_t len, uint32_t seq,
			  const struct ctlookup_tuple *t,
			  struct ctlookup_result *r) NONNULL(1, 4, 5);

#endif /* EGRESS_CTLOOKUP_H */
