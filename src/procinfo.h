/*
 * procinfo.h - an attributed process (attrib_proc) as the two consumers of
 * its fields see it: the policy event's process scope and the log line's
 * process fields.  Shared by the TCP proxy, the DNS proxies and the queue.
 */
#ifndef EGRESS_PROCINFO_H
#define EGRESS_PROCINFO_H

#include <stdlib.h>

#include "attrib.h"
#include "jlog.h"
#include "policy.h"

/* Fills the event's process fields; pr NULL leaves them absent. */
static inline void procinfo_to_policy(const struct attrib_proc *pr,
				      struct policy_proc *out)
{
	if (!pr)
		return;
	out->exe = pr->exe;
	out->cmdline = (const char *const *)pr->cmdline;
	out->ncmdline = pr->ncmdline;
	out->cgroup = pr->cgroup;
	out->step = pr->step;
	out->action = pr->action;
	out->image = pr->image;
}

/* Ends a log line with the process fields, src_port and pid (reference
 * 7.3 order) and queues it on log (log NULL: dropped, for tests). */
static inline void procinfo_log_end(jlog_t *log, struct jrec *r,
				    const struct attrib_proc *pr, int src_port)
{
	char *line;

	if (pr)
		jrec_proc(r, pr->exe, (const char *const *)pr->cmdline,
			  pr->ncmdline, pr->cgroup, pr->image, pr->step,
			  pr->action);
	line = jrec_end(r, src_port, pr ? pr->pid : -1);
	if (log)
		jlog_write(log, line);
	else
		free(line);
}

#endif /* EGRESS_PROCINFO_H */
