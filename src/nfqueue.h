/*
 * nfqueue.h - an NFQUEUE consumer on a libevent loop (libnetfilter_queue's
 * libmnl API).
 *
 * One queue, one netlink socket, registered on the caller's event_base: the
 * socket is non-blocking and every wake-up drains a bounded number of
 * messages, so one busy queue cannot starve the loop.  Each packet is handed
 * to the caller's callback, which gives exactly one verdict for it before it
 * returns; a callback that gives none gets an NF_DROP from here.  The queue
 * never fails open: no NFQA_CFG_F_FAIL_OPEN, and whatever the kernel cannot
 * queue (a full queue or socket) it drops.
 *
 * The prefix is nfqueue_, not nfq_: libnetfilter_queue's own legacy API
 * already defines nfq_open and nfq_close in the same namespace.
 *
 * Threads: an nfqueue_t belongs to the thread running its event_base.
 */
#ifndef EGRESS_NFQUEUE_H
#define EGRESS_NFQUEUE_H

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"

struct event_base;

/* Held in the kernel's queue at once (NFQA_CFG_QUEUE_MAXLEN). */
#define NFQUEUE_MAXLEN 4096
/* Receive buffer asked for; SO_RCVBUF's cap applies without CAP_NET_ADMIN. */
#define NFQUEUE_RCVBUF (4 << 20)
/* Messages read per wake-up before the loop gets its turn back. */
#define NFQUEUE_ROUNDS 64

struct nfqueue_pkt {
	uint32_t id; /* packet id, for the verdict */
	uint32_t mark; /* packet mark (0 if the kernel gave none) */
	uint8_t hook; /* NF_INET_LOCAL_OUT, NF_INET_PRE_ROUTING, ... */
	uint32_t indev, outdev; /* ifindex, 0 if absent */
	bool has_uid; /* the socket owner is known (local sockets only) */
	uint32_t uid;
	const uint8_t *data; /* the packet from its IPv4 header */
	size_t len; /* bytes in data (the whole packet up to 64 KiB) */
};

typedef struct nfqueue nfqueue_t;

/*
 * Called once per packet on the event loop.  It must call nfqueue_verdict()
 * for p->id exactly once before returning: a missing verdict becomes an
 * NF_DROP (counted in missed_verdicts), a second one is refused.  p and
 * p->data are valid only during the call.  The callback must not call
 * nfqueue_close().
 */
typedef void (*nfqueue_cb)(void *arg, nfqueue_t *q,
			   const struct nfqueue_pkt *p);

/*
 * Binds queue queue_num in the caller's network namespace (needs
 * CAP_NET_ADMIN) and starts reading on base.  Returns NULL with *err set
 * (caller frees) when the socket cannot be made, the queue is bound by
 * another socket, or the kernel refuses the configuration.
 */
nfqueue_t *nfqueue_open(struct event_base *base, uint16_t queue_num,
			nfqueue_cb cb, void *arg, char **err)
	NONNULL(1, 3, 5) WUNRES;

/*
 * Gives verdict NF_ACCEPT, NF_DROP or NF_REPEAT for packet id, setting its
 * mark to mark when set_mark.  Returns 0, or -1 with errno set: EINVAL for
 * any other verdict, EALREADY for a second verdict on the packet the
 * callback is handling, or the socket's error.
 */
int nfqueue_verdict(nfqueue_t *q, uint32_t id, int verdict, bool set_mark,
		    uint32_t mark) NONNULL(1);

/* Unbinds and frees q (NULL is fine).  Packets still queued are dropped by
 * the kernel, and so is everything the rules queue afterwards. */
void nfqueue_close(nfqueue_t *q);

struct nfqueue_stats {
	uint64_t packets; /* packet messages read, malformed ones included */
	uint64_t verdicts; /* verdicts sent, the automatic drops included */
	uint64_t enobufs; /* socket overruns reported despite NO_ENOBUFS */
	uint64_t errors; /* read, send and netlink errors */
	uint64_t malformed; /* packet messages that failed validation */
	uint64_t missed_verdicts; /* callbacks that returned without one */
};

void nfqueue_get_stats(const nfqueue_t *q, struct nfqueue_stats *st)
	NONNULL(1, 2);

/* What nfqueue_parse made of one message. */
enum nfqueue_parse_rc {
	NFQUEUE_PARSE_OK, /* *p is filled in */
	NFQUEUE_PARSE_DROP, /* malformed, but p->id is known: drop it */
	NFQUEUE_PARSE_BAD, /* malformed, and no packet id to answer */
	NFQUEUE_PARSE_MAX,
};

/*
 * Validates one NFQNL_MSG_PACKET message and fills *p.  len is what the
 * buffer holds from nlh on, and must cover the message's alignment padding
 * (libmnl walks attributes up to the aligned end; the kernel leaves the
 * last padding out of nlmsg_len): a message whose aligned length exceeds
 * len is refused.  Pure: no socket, no state, safe on any bytes.  p->data
 * points into the message.
 */
enum nfqueue_parse_rc nfqueue_parse(const struct nlmsghdr *nlh, size_t len,
				    struct nfqueue_pkt *p) NONNULL(1, 3);

#endif /* EGRESS_NFQUEUE_H */
