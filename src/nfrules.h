/*
 * nfrules.h - the daemon's netfilter rules, in chains it owns.
 *
 * Everything lives in chains named EGRESS_* (in the nat, mangle and filter
 * tables), installed atomically with one `iptables-restore --noflush` and
 * reached by exactly one jump from each built-in chain used.  Installing
 * again (a restart after a crash) replaces the chains' contents in the same
 * atomic step and keeps one jump, so no unfiltered gap opens.  Removal
 * deletes exactly those jumps and chains and nothing else.  Runs the
 * iptables tools (iptables-nft by default) in the caller's network
 * namespace, synchronously: the caller must not reap children it did not
 * start (waitpid(-1), SIGCHLD ignored) while these run.
 *
 * TCP (SPEC §3): nat OUTPUT (host processes, host-network containers) and
 * nat PREROUTING -i <bridge> for every configured bridge pattern REDIRECT
 * to the proxy port; the first rule of each chain RETURNs packets carrying
 * the daemon's mark (its own upstream sockets use SO_MARK); loopback
 * destinations are left alone unless intercept_loopback, except TCP port
 * 53, which is always intercepted.
 */
#ifndef EGRESS_NFRULES_H
#define EGRESS_NFRULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"

/*
 * The default mark of the daemon's own sockets: one high bit, clear of
 * Docker's swarm marks (from 256), kube-proxy's 0x4000/0x8000 and the UDP
 * path's mark bits 0x2/0x4.
 */
#define NFRULES_DEFAULT_MARK 0x10000000u

struct nfrules_cfg {
	uint16_t proxy_port; /* TCP REDIRECT target */
	uint32_t mark; /* the daemon's own sockets' mark */
	uint32_t mark_mask; /* which bits of the mark are ours */
	const char *const *bridges; /* interface patterns, e.g. "br-+" */
	size_t nbridges;
	bool intercept_loopback;
	int exempt_uid; /* -1: none (UDP rules, later) */
	const char *iptables_restore; /* NULL: "iptables-restore" */
	const char *iptables_save; /* NULL: "iptables-save" */
};

/* The ruleset as iptables-restore input (caller frees); for tests/debug.
 * NULL if c is invalid (nfrules_install says why). */
char *nfrules_script(const struct nfrules_cfg *c) NONNULL(1) WUNRES;
/* Installs or replaces atomically.  0, or -1 with *err (caller frees). */
int nfrules_install(const struct nfrules_cfg *c, char **err)
	NONNULL(1, 2) WUNRES;
/* Removes exactly the jumps and chains; 0 if none were there. */
int nfrules_remove(const struct nfrules_cfg *c, char **err) NONNULL(1, 2);
/* Are our chains present (1), absent (0), or unknown (-1)?  Unknown also
 * covers a partial state: some chain or jump missing. */
int nfrules_present(const struct nfrules_cfg *c) NONNULL(1);

#endif /* EGRESS_NFRULES_H */
