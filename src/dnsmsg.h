/*
 * dnsmsg.h - DNS messages on the wire (RFC 1035): a validating parser for
 * the header and first question, a walker over A/AAAA answers, and builders
 * for the replies the DNS proxy and the simulator send.
 *
 * Everything here reads attacker-controlled bytes.  A message is accepted
 * only when every section the header counts is present and well formed:
 * lengths are checked before each read, labels are at most 63 octets, names
 * at most 255, and a compression pointer must point strictly before the
 * start of the name segment it appears in (which rules out loops and forward
 * references) and at most DNSMSG_PTR_MAX pointers are followed per name.
 * Bytes after the last counted record are ignored, as most servers do.
 *
 * No function allocates, keeps state or recurses; all may run in any thread.
 */
#ifndef EGRESS_DNSMSG_H
#define EGRESS_DNSMSG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"

#define DNSMSG_HDRLEN 12
#define DNSMSG_LABEL_MAX 63
#define DNSMSG_NAME_WIRE_MAX 255
#define DNSMSG_PTR_MAX 128
/* Classic UDP payload limit without EDNS (RFC 1035 4.2.1). */
#define DNSMSG_UDP_MAX 512
#define DNSMSG_TCP_MAX 65535
/*
 * Room for the text form of any valid name: at most 254 octets of labels
 * and separators, each octet escaped to at most four characters, plus NUL.
 */
#define DNSMSG_NAME_STRMAX 1024

enum dnsmsg_type {
	DNSMSG_TYPE_A = 1,
	DNSMSG_TYPE_NS = 2,
	DNSMSG_TYPE_CNAME = 5,
	DNSMSG_TYPE_SOA = 6,
	DNSMSG_TYPE_PTR = 12,
	DNSMSG_TYPE_MX = 15,
	DNSMSG_TYPE_TXT = 16,
	DNSMSG_TYPE_AAAA = 28,
	DNSMSG_TYPE_SRV = 33,
	DNSMSG_TYPE_OPT = 41,
	DNSMSG_TYPE_HTTPS = 65,
	DNSMSG_TYPE_ANY = 255,
};

enum dnsmsg_class {
	DNSMSG_CLASS_IN = 1,
	DNSMSG_CLASS_ANY = 255,
};

enum dnsmsg_rcode {
	DNSMSG_RCODE_NOERROR = 0,
	DNSMSG_RCODE_FORMERR = 1,
	DNSMSG_RCODE_SERVFAIL = 2,
	DNSMSG_RCODE_NXDOMAIN = 3,
	DNSMSG_RCODE_NOTIMP = 4,
	DNSMSG_RCODE_REFUSED = 5,
	DNSMSG_RCODE_MAX = 15, /* the header holds four bits */
};

#define DNSMSG_OPCODE_QUERY 0

struct dnsmsg_header {
	uint16_t id;
	bool qr, aa, tc, rd, ra;
	uint8_t opcode; /* 4 bits */
	uint8_t z; /* the 3 bits between RA and RCODE (Z, AD, CD) */
	uint8_t rcode; /* 4 bits */
	uint16_t qdcount, ancount, nscount, arcount;
};

struct dnsmsg_question {
	/*
	 * Dotted, without the trailing dot ("" for the root), case as sent.
	 * Octets that would make the text ambiguous are escaped as in master
	 * files (RFC 1035 5.1): '.' and '\' inside a label as "\." and "\\",
	 * octets outside 0x21-0x7e as "\DDD".  So a label that contains a dot
	 * can never read as two labels, and such a name matches no policy.
	 */
	char name[DNSMSG_NAME_STRMAX];
	uint16_t qtype;
	uint16_t qclass;
};

struct dnsmsg {
	struct dnsmsg_header hdr;
	bool has_question; /* qdcount > 0; q is the first question */
	struct dnsmsg_question q;
	size_t q_end; /* offset just past the first question (or header) */
};

/* One A or AAAA record of the answer section. */
struct dnsmsg_addr {
	char owner[DNSMSG_NAME_STRMAX]; /* as dnsmsg_question.name */
	int family; /* AF_INET or AF_INET6 */
	char addr[INET6_ADDRSTRLEN]; /* inet_ntop form */
	/* A TTL with the top bit set reads as 0 (RFC 2181 8). */
	uint32_t ttl;
};

/* Return 0 to go on, anything else to stop the walk. */
typedef int (*dnsmsg_addr_cb)(const struct dnsmsg_addr *a, void *arg);

/*
 * Validates the whole message (query or response) and fills m with its
 * header and first question.  Returns 0, or -1 if buf is not a well-formed
 * message.  A message without questions is well formed (has_question is
 * false); callers that need exactly one question check hdr.qdcount.
 */
int dnsmsg_parse(struct dnsmsg *m, const void *buf, size_t len)
	NONNULL(1, 2) WUNRES;

/*
 * Calls cb for each A and AAAA record of class IN in the answer section, in
 * order; other records (CNAME, other sections, other classes) are skipped.
 * The whole message is validated first, so cb is never called for a message
 * that turns out to be malformed.  Returns 0 (also when cb stopped the walk)
 * or -1 if buf is malformed.
 */
int dnsmsg_walk_addrs(const void *buf, size_t len, dnsmsg_addr_cb cb, void *arg)
	NONNULL(1, 3) WUNRES;

/*
 * Builds the reply the proxy sends for a query it will not answer
 * (reference 2.7 "Blocked"): same ID, QR=1, opcode copied, AA=0, TC=0, RD
 * copied, RA=0, Z=0, the given rcode, the first question echoed and no
 * other records.  Writes at most cap bytes to out and the length to
 * *outlen.  Returns 0, or -1 if the query is malformed, rcode does not fit
 * in four bits or out is too small.
 */
int dnsmsg_build_reply(const void *query, size_t qlen, unsigned rcode,
		       void *out, size_t cap, size_t *outlen)
	NONNULL(1, 4, 6) WUNRES;

/*
 * Builds an authoritative reply (AA=1, RA=0, RD copied) to query: rcode,
 * the first question echoed and one A record per address, its owner a
 * compression pointer to the question name, class IN, the given TTL.  Which
 * records fit a query type is the caller's choice: pass naddrs 0 for NODATA
 * or NXDOMAIN.  If not every record fits in cap, as many as fit are written
 * and TC is set (RFC 2181 9).  Returns 0, or -1 if the query is malformed or
 * has no question while naddrs > 0, rcode does not fit or cap cannot hold
 * the header and question.
 */
int dnsmsg_build_answer(const void *query, size_t qlen, unsigned rcode,
			const struct in_addr *addrs, size_t naddrs,
			uint32_t ttl, void *out, size_t cap, size_t *outlen)
	NONNULL(1, 7, 9) WUNRES;

/*
 * DNS over TCP (RFC 1035 4.2.2) prefixes each message with its length as
 * two big-endian octets.  dnsmsg_tcp_len reads that length from the first
 * avail bytes of buf: 0 with *msglen set, or -1 while fewer than two bytes
 * are there.  dnsmsg_tcp_prefix writes the prefix for a message of len
 * bytes; -1 if len does not fit.
 */
int dnsmsg_tcp_len(const void *buf, size_t avail, size_t *msglen)
	NONNULL(1, 3) WUNRES;
int dnsmsg_tcp_prefix(void *out, size_t len) NONNULL(1) WUNRES;

/* Mnemonics for logs: "A", "NXDOMAIN"...; NULL when there is none. */
const char *dnsmsg_type_str(unsigned type);
const char *dnsmsg_rcode_str(unsigned rcode);

#endif /* EGRESS_DNSMSG_H */
