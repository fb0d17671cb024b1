/*
 * httpresp.h - an incremental reader of HTTP/1.1 responses, for the two
 * clients of dockerd's API over its unix socket: the image cache of the
 * daemon (dockerimg.c, a long-lived event stream) and egress-runc's one
 * image lookup (runc_docker.c).  No I/O, no allocation beyond its own
 * state; safe on any input.
 */
#ifndef EGRESS_HTTPRESP_H
#define EGRESS_HTTPRESP_H

#include <stddef.h>

#include "cdefs.h"

/*
 * Incremental: status line and headers (at most HTTPRESP_HEAD_MAX
 * bytes), then a body framed by chunked transfer coding, Content-Length
 * or the end of the connection.  Body bytes go to body(arg, p, n), which
 * returns 0, or -1 to fail the response.  Safe on any input.
 */
#define HTTPRESP_HEAD_MAX 16384

struct httpresp;

enum httpresp_rc {
	HTTPRESP_ERROR = -1,
	HTTPRESP_MORE = 0, /* feed more */
	HTTPRESP_DONE = 1, /* the body is complete; later bytes ignored */
};

struct httpresp *httpresp_new(int (*body)(void *, const char *, size_t),
			      void *arg) NONNULL(1) WUNRES;
void httpresp_free(struct httpresp *h);
int httpresp_feed(struct httpresp *h, const char *p, size_t n) NONNULL(1);
/* The connection ended: DONE if the body was complete (or ends here). */
int httpresp_eof(struct httpresp *h) NONNULL(1);
/* Status code once a valid head is read, else 0. */
int httpresp_status(const struct httpresp *h) NONNULL(1);
/* Why the last call failed (static text), or NULL. */
const char *httpresp_error(const struct httpresp *h) NONNULL(1);

#endif /* EGRESS_HTTPRESP_H */
