/*
 * svc_log.c - the services' JSONL event log.
 *
 * Each line is built as a jansson object, dumped compact and written with
 * a single write() on an O_APPEND descriptor, so a test reading the file
 * while the services run never sees half a line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc_int.h"
#include "util.h"

int svc_log_open(struct svc *sv, const char *path)
{
	if (strcmp(path, "-") == 0) {
		sv->log_fd = STDOUT_FILENO;
		sv->log_owned = false;
		return 0;
	}
	sv->log_fd =
		open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (sv->log_fd < 0) {
		fprintf(stderr, "svc: log %s: %s\n", path, strerror(errno));
		return -1;
	}
	sv->log_owned = true;
	return 0;
}

void svc_log_close(struct svc *sv)
{
	if (sv->log_owned && sv->log_fd >= 0)
		close(sv->log_fd);
	sv->log_fd = -1;
	sv->log_owned = false;
}

json_t *svc_log_new(const char *svc, const char *proto, const char *local,
		    const char *peer, const char *event)
{
	struct timespec ts;
	json_t *o = json_object();

	clock_gettime(CLOCK_REALTIME, &ts);
	json_object_set_new(
		o, "ts",
		json_real((double)ts.tv_sec + (double)ts.tv_nsec / 1e9));
	json_object_set_new(o, "svc", json_string(svc));
	if (proto)
		json_object_set_new(o, "proto", json_string(proto));
	if (local)
		json_object_set_new(o, "local", json_string(local));
	if (peer)
		json_object_set_new(o, "peer", json_string(peer));
	json_object_set_new(o, "event", json_string(event));
	return o;
}

json_t *svc_log_conn(const struct svc_conn *c, const char *event)
{
	return svc_log_new(svc_kind_str(c->l->kind), "tcp", c->local, c->peer,
			   event);
}

void svc_log_write(struct svc *sv, json_t *line)
{
	char *s = json_dumps(line, JSON_COMPACT);
	size_t n, off = 0;

	json_decref(line);
	if (!s || sv->log_fd < 0) {
		free(s);
		return;
	}
	n = strlen(s);
	s = util_xrealloc(s, n + 1);
	s[n++] = '\n';
	/* One write() normally; loop only on a short write or a signal. */
	while (off < n) {
		ssize_t w = write(sv->log_fd, s + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "svc: log write: %s\n",
				strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	free(s);
}

json_t *svc_json_bytes(const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	struct strbuf sb = { 0 };
	json_t *j;

	/* json_stringn refuses invalid UTF-8; NUL would hide what follows. */
	if (!memchr(s, '\0', n)) {
		j = json_stringn(s, n);
		if (j)
			return j;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			strbuf_addc(&sb, (char)c);
		} else {
			char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			strbuf_add(&sb, e, sizeof(e));
		}
	}
	j = json_string(strbuf_str(&sb));
	strbuf_fini(&sb);
	return j;
}
