/*
 * nf_probe.c - the netns tier's TCP client for tests/netns/test_nfrules.sh.
 *
 * Connects to IP:PORT, optionally from a socket carrying a packet mark
 * (SO_MARK, set before connect() as the daemon sets it on its upstream
 * sockets: socat can only set options after connecting), sends a message,
 * shuts its sending side and prints everything it reads until the peer
 * closes.  A failed connect prints the errno name (ECONNREFUSED, ...) and
 * exits 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROBE_TIMEOUT_MS 5000

static const char usage[] =
	"usage: nf-probe [--mark MARK] IP PORT [MESSAGE]\n"
	"  MESSAGE may use \\r and \\n; without one nothing is sent\n";

static const char *errno_name(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EHOSTUNREACH:
		return "EHOSTUNREACH";
	case ENETUNREACH:
		return "ENETUNREACH";
	case EPERM:
		return "EPERM";
	default:
		return strerror(e);
	}
}

/* Expands \r, \n and \\ in place. */
static size_t unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (r[0] == '\\' &&
		    (r[1] == 'r' || r[1] == 'n' || r[1] == '\\')) {
			r++;
			*w++ = *r == 'r' ? '\r' : *r == 'n' ? '\n' : '\\';
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static int relay(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	for (;;) {
		int rc = poll(&p, 1, PROBE_TIMEOUT_MS);

		if (rc == 0) {
			fputs("timeout\n", stderr);
			return 1;
		}
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return 0;
		if (n < 0) {
			printf("%s\n", errno_name(errno));
			return 1;
		}
		fwrite(buf, 1, (size_t)n, stdout);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = PROBE_TIMEOUT_MS / 1000 };
	unsigned long mark = 0;
	bool marked = false;
	int i = 1, fd;

	if (argc > 2 && strcmp(argv[1], "--mark") == 0) {
		mark = strtoul(argv[2], NULL, 0);
		marked = true;
		i = 3;
	}
	if (argc - i < 2 || argc - i > 3 ||
	    inet_pton(AF_INET, argv[i], &sa.sin_addr) != 1) {
		fputs(usage, stderr);
		return 2;
	}
	sa.sin_port = htons((unsigned short)atoi(argv[i + 1]));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	if (marked) {
		unsigned m = (unsigned)mark;

		if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof(m)) < 0) {
			perror("SO_MARK");
			return 1;
		}
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("%s\n", errno_name(errno));
		return 1;
	}
	if (argc - i == 3) {
		size_t len = unescape(argv[i + 2]);

		if (write(fd, argv[i + 2], len) != (ssize_t)len) {
			perror("write");
			return 1;
		}
	}
	shutdown(fd, SHUT_WR);
	return relay(fd);
}
