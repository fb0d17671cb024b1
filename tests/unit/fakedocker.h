/*
 * fakedocker.h - a fake dockerd for the unit suites: a thread serving
 * HTTP/1.1 on a unix socket with the three requests dockerimg makes
 * (`/containers/json?all=1`, the same with an id filter, and a chunked
 * `/events` stream the test writes events into), and ways to misbehave.
 */
#ifndef EGRESS_TESTS_FAKEDOCKER_H
#define EGRESS_TESTS_FAKEDOCKER_H

#include <stdbool.h>
#include <stddef.h>

enum fakedocker_mode {
	FAKEDOCKER_NORMAL,
	FAKEDOCKER_GARBAGE, /* random bytes instead of HTTP, then close */
	FAKEDOCKER_HUGE_HEADERS, /* 200 with 100 KiB of headers */
	FAKEDOCKER_BAD_JSON, /* list and lookups answer broken JSON */
	FAKEDOCKER_BAD_CHUNK, /* the event stream's first chunk size overflows */
	FAKEDOCKER_STATUS_500, /* every answer is a 500 */
	FAKEDOCKER_SILENT, /* reads the request, never answers */
	FAKEDOCKER_CLOSE, /* closes every connection at once */
};

enum fakedocker_req {
	FAKEDOCKER_REQ_LIST, /* unfiltered list */
	FAKEDOCKER_REQ_LOOKUP, /* list with an id filter */
	FAKEDOCKER_REQ_EVENTS,
	FAKEDOCKER_REQ_OTHER,
	FAKEDOCKER_REQ_MAX,
};

struct fakedocker;

/* Listens on path (removed first if it exists); NULL on failure. */
struct fakedocker *fakedocker_start(const char *path);
/* Closes every connection, stops the thread, removes the socket. */
void fakedocker_stop(struct fakedocker *f);

/* A container: named by the unfiltered list if listed, and by lookups
 * with its id in every case. */
void fakedocker_add(struct fakedocker *f, const char *id, const char *image,
		    bool listed);
void fakedocker_set_mode(struct fakedocker *f, enum fakedocker_mode m);

/* Requests of one kind served so far. */
int fakedocker_count(struct fakedocker *f, enum fakedocker_req r);
/* The ids of the last lookup's filter, as JSON text ("" if none); freed by
 * the caller. */
char *fakedocker_last_filter(struct fakedocker *f);

/* Waits (at most ms) until an event stream is open; true if it is. */
bool fakedocker_wait_stream(struct fakedocker *f, int ms);
/* One event line as one chunk on the open stream; -1 if none is open. */
int fakedocker_event(struct fakedocker *f, const char *json);
/* Raw bytes on the open stream (the test does the chunk framing). */
int fakedocker_raw(struct fakedocker *f, const char *p, size_t n);
/* Ends the open stream (as a dockerd restart does). */
void fakedocker_close_stream(struct fakedocker *f);

#endif /* EGRESS_TESTS_FAKEDOCKER_H */
