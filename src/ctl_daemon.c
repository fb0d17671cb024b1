/*
 * ctl_daemon.c - `egressctl status|stop|reload`: the daemon's control
 * socket client.  A daemon that does not answer is reported loudly, with
 * what is still in force (failing closed) and how to clean up.
 */
#include "ctl.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bpfload.h"
#include "nfrules.h"

#define CONTROL_DEFAULT "/run/egressd/control.sock"

static int ask(const char *path, const char *cmd, char **reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct strbuf sb = { 0 };
	char buf[4096];
	ssize_t n;
	int fd;

	*reply = NULL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	snprintf(buf, sizeof(buf), "{\"cmd\":\"%s\"}\n", cmd);
	if (write(fd, buf, strlen(buf)) < 0) {
		close(fd);
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		strbuf_add(&sb, buf, (size_t)n);
	close(fd);
	*reply = strbuf_steal(&sb);
	return 0;
}

/* What is left of a daemon that does not answer. */
static void report_dead(const char *control, const char *pin_dir, FILE *out)
{
	struct nfrules_cfg nf = { .proxy_port = 1 };
	char pin[4096];
	struct stat st;
	int rules = nfrules_present(&nf);
	bool pinned = false;

	for (unsigned i = 0; bpfload_link_pin(i); i++) {
		snprintf(pin, sizeof(pin), "%s/%s", pin_dir,
			 bpfload_link_pin(i));
		pinned |= stat(pin, &st) == 0;
	}

	fprintf(out, "egressd is NOT RUNNING (no answer on %s)\n", control);
	if (rules == 1)
		fprintf(out, "  netfilter: its EGRESS_* chains are still "
			     "installed: TCP to the proxy port is refused, "
			     "queued UDP, DNS and other protocols are dropped "
			     "(failing closed)\n");
	else if (rules == 0)
		fprintf(out, "  netfilter: no EGRESS_* chains: traffic is NOT "
			     "filtered\n");
	if (stat(pin_dir, &st) == 0)
		fprintf(out,
			"  BPF: links pinned in %s: IPv6 and raw sockets "
			"stay blocked\n",
			pin_dir);
	fprintf(out, "  restart egressd, or remove what is left with "
		     "`egressd --cleanup`\n");
}

static int run(int argc, char **argv, const char *cmd, FILE *out, FILE *err)
{
	static const struct option opts[] = {
		{ "control-socket", required_argument, NULL, 's' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *control = CONTROL_DEFAULT;
	const char *pin_dir = BPFLOAD_PIN_DIR_DEFAULT;
	char *reply;
	json_t *j;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 's')
			control = optarg;
		else if (c == 'p')
			pin_dir = optarg;
		else {
			fprintf(err,
				"usage: egressctl %s [--control-socket "
				"PATH] [--pin-dir DIR]\n",
				cmd);
			return CTL_USAGE;
		}
	}
	if (ask(control, cmd, &reply) < 0) {
		if (strcmp(cmd, "status") == 0) {
			report_dead(control, pin_dir, out);
			return 3;
		}
		fprintf(err, "egressctl: %s: %s (is egressd running?)\n",
			control, strerror(errno));
		return CTL_FAIL;
	}
	j = json_loads(reply, 0, NULL);
	if (!j) {
		fprintf(err, "egressctl: unreadable reply: %s\n", reply);
		free(reply);
		return CTL_FAIL;
	}
	char *pretty = json_dumps(j, JSON_INDENT(2));
	fprintf(out, "%s\n", pretty);
	free(pretty);
	rc = json_is_true(json_object_get(j, "ok")) ? CTL_OK : CTL_FAIL;
	json_decref(j);
	free(reply);
	return rc;
}

int ctl_daemon(int argc, char **argv, FILE *out, FILE *err)
{
	return run(argc, argv, argv[0], out, err);
}
