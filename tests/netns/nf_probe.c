/*
 * nf_probe.c - the netns tier's TCP and UDP client for
 * tests/netns/test_nfrules.sh.
 *
 * TCP: connects to IP:PORT, optionally from a socket carrying a packet
 * mark (SO_MARK, set before connect() as the daemon sets it on its
 * upstream sockets: socat can only set options after connecting), sends a
 * message, shuts its sending side and prints everything it reads until
 * the peer closes.  A failed connect prints the errno name (ECONNREFUSED,
 * ...) and exits 1.
 *
 * UDP (--udp): sends the message as one datagram from a connected socket
 * (marked as above, before the first packet) and prints the first reply.
 * No reply within the wait prints "timeout" and exits 1; an ICMP error
 * prints the errno name.
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
	"usage: nf-probe [--mark MARK] [--udp] [--wait MS] IP PORT [MESSAGE]\n"
	"  MESSAGE may use \\r and \\n; without one nothing is sent (TCP) or\n"
	"  an empty datagram is (UDP); --wait: how long to wait for data\n"
	"  (5000 ms)\n";

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

static int relay(int fd, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	for (;;) {
		int rc = poll(&p, 1, wait_ms);

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

/* One datagram out, the first one back (or the ICMP error) printed. */
static int udp_exchange(int fd, const char *msg, size_t len, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[65536];
	ssize_t n;
	int rc;

	if (send(fd, msg, len, 0) != (ssize_t)len) {
		printf("%s\n", errno_name(errno));
		return 1;
	}
	while ((rc = poll(&p, 1, wait_ms)) < 0 && errno == EINTR)
		;
	if (rc == 0) {
		puts("timeout");
		return 1;
	}
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0) {
		printf("%s\n", errno_name(errno));
		return 1;
	}
	fwrite(buf, 1, (size_t)n, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = PROBE_TIMEOUT_MS / 1000 };
	unsigned long mark = 0;
	bool marked = false, udp = false;
	int i = 1, fd, wait_ms = PROBE_TIMEOUT_MS;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--udp") == 0) {
			udp = true;
		} else if (strcmp(argv[i], "--mark") == 0 && i + 1 < argc) {
			mark = strtoul(argv[++i], NULL, 0);
			marked = true;
		} else if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) {
			wait_ms = atoi(argv[++i]);
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (argc - i < 2 || argc - i > 3 || wait_ms <= 0 ||
	    inet_pton(AF_INET, argv[i], &sa.sin_addr) != 1) {
		fputs(usage, stderr);
		return 2;
	}
	sa.sin_port = htons((unsigned short)atoi(argv[i + 1]));
	fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC,
		    0);
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
	if (udp) {
		char empty[] = "";
		char *msg = argc - i == 3 ? argv[i + 2] : empty;

		return udp_exchange(fd, msg, unescape(msg), wait_ms);
	}
	if (argc - i == 3) {
		size_t len = unescape(argv[i + 2]);

		if (write(fd, argv[i + 2], len) != (ssize_t)len) {
			perror("write");
			return 1;
		}
	}
	shutdown(fd, SHUT_WR);
	return relay(fd, wait_ms);
}
