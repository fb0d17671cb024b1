/*
 * egressctl.c - the egressctl command: offline policy tools, and the BPF
 * attach/inspect commands.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const char usage[] =
	"usage: egressctl COMMAND [ARGS]\n"
	"\n"
	"offline policy tools:\n"
	"  validate FILE [--dump-rules] [--preset NAME] [--repo OWNER/REPO]\n"
	"           [--workflow] [--strict] [-v] [-q]\n"
	"                      report every problem of a policy, or print its\n"
	"                      flattened rules as JSON\n"
	"  check --policy FILE [--audit] [--preset NAME]\n"
	"                      judge JSON events from stdin, one verdict a line\n"
	"  analyze --policy FILE --log LOG [--json] [-v]\n"
	"                      judge a recorded connection log\n"
	"  suggest LOG...      print a policy that allows what the logs show\n"
	"\n"
	"BPF (root):\n"
	"  bpf attach --cgroup DIR --pin-dir DIR [--map-entries N]\n"
	"                      load the BPF object, attach it to a cgroup v2\n"
	"                      directory and pin it (replacing pinned links)\n"
	"  bpf detach --pin-dir DIR\n"
	"                      detach and unpin what attach pinned\n"
	"  bpf status --pin-dir DIR\n"
	"                      pinned links and maps as JSON lines\n"
	"  attrib --pin-dir DIR [--follow] [--lookup PROTO SRC:P DST:P]\n"
	"                      attribution entries with their processes, as\n"
	"                      JSON lines\n"
	"\n"
	"netfilter rules (root, in the current network namespace):\n"
	"  nf install [--port N] [--mark MARK[/MASK]] [--bridge PATTERN]...\n"
	"             [--intercept-loopback]\n"
	"                      install or replace the EGRESS_* chains atomically\n"
	"  nf script [same options]\n"
	"                      print the iptables-restore input\n"
	"  nf remove           remove exactly the EGRESS_* chains and jumps\n"
	"  nf status           installed, absent or unknown\n"
	"\n"
	"the daemon (its control socket, --control-socket PATH):\n"
	"  status              state, counters, what fails closed\n"
	"  stop                stop the daemon (removes its rules)\n"
	"  reload              re-read the policy (a bad one is refused)\n";

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		fputs(usage, stderr);
		return CTL_USAGE;
	}
	if (strcmp(cmd, "validate") == 0)
		return ctl_validate(argc - 1, argv + 1, stdout, stderr);
	if (strcmp(cmd, "check") == 0)
		return ctl_check(argc - 1, argv + 1, stdin, stdout, stderr);
	if (strcmp(cmd, "analyze") == 0)
		return ctl_analyze(argc - 1, argv + 1, stdout, stderr);
	if (strcmp(cmd, "suggest") == 0)
		return ctl_suggest(argc - 1, argv + 1, stdout, stderr);
	if (strcmp(cmd, "bpf") == 0)
		return ctl_bpf(argc - 1, argv + 1, stdout, stderr);
	if (strcmp(cmd, "attrib") == 0)
		return ctl_attrib(argc - 1, argv + 1, stdout, stderr);
	if (strcmp(cmd, "nf") == 0)
		return ctl_nf(argc - 1, argv + 1, stdout, stderr);
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "stop") == 0 ||
	    strcmp(cmd, "reload") == 0)
		return ctl_daemon(argc - 1, argv + 1, stdout, stderr);
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		fputs(usage, stdout);
		return CTL_OK;
	}
	fprintf(stderr, "egressctl: unknown command '%s'\n\n%s", cmd, usage);
	return CTL_USAGE;
}
