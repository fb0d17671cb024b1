/*
 * svc_echo.c - the simplest services: TCP echo, a TCP banner that the
 * server sends before the client says anything (SMTP- or SSH-like, for
 * proving that a proxy does not wait for client data), and UDP echo.
 */
#include <event2/buffer.h>
#include <string.h>

#include "svc_int.h"

/* Moves the input to the output; back-pressure is svc_net.c's job. */
static void echo_read(struct svc_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	c->bytes_out += evbuffer_get_length(in);
	bufferevent_write_buffer(c->bev, in);
}

static void banner_start(struct svc_conn *c)
{
	svc_conn_send(c, c->l->banner, strlen(c->l->banner));
}

const struct svc_conn_ops svc_echo_ops = {
	.read = echo_read,
};

const struct svc_conn_ops svc_banner_ops = {
	.start = banner_start,
	.read = echo_read,
};

void svc_udp_echo_dgram(struct svc_listener *l, const uint8_t *buf, size_t n,
			const struct sockaddr *peer, socklen_t peerlen,
			const char *peerstr)
{
	json_t *line =
		svc_log_new("udp_echo", "udp", l->local, peerstr, "datagram");

	json_object_set_new(line, "bytes", json_integer((json_int_t)n));
	svc_log_write(l->sv, line);
	/* Best effort, like any UDP service: a full buffer drops it. */
	sendto(l->fd, buf, n, 0, peer, peerlen);
}
