/*
 * testutil.c - helpers shared by the unit suites.
 */
#include "testutil.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tu_tmpfile(int slot, const char *suffix, const char *text)
{
	static char paths[8][64];
	int fd;
	size_t len = strlen(text);

	ck_assert(slot >= 0 && slot < 8);
	snprintf(paths[slot], sizeof(paths[slot]), "/tmp/egress-test-XXXXXX%s",
		 suffix);
	fd = mkstemps(paths[slot], (int)strlen(suffix));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return paths[slot];
}

static int argc_of(char **argv)
{
	int n = 0;

	while (argv[n])
		n++;
	return n;
}

void tu_run(struct tu_run *r, int (*fn)(int, char **, FILE *, FILE *),
	    char **argv)
{
	size_t ol, el;
	FILE *out = open_memstream(&r->out, &ol);
	FILE *err = open_memstream(&r->err, &el);

	r->rc = fn(argc_of(argv), argv, out, err);
	fclose(out);
	fclose(err);
}

void tu_run_in(struct tu_run *r,
	       int (*fn)(int, char **, FILE *, FILE *, FILE *), char **argv,
	       const char *in)
{
	size_t ol, el;
	FILE *inf = fmemopen((void *)(uintptr_t)in, strlen(in), "r");
	FILE *out = open_memstream(&r->out, &ol);
	FILE *err = open_memstream(&r->err, &el);

	r->rc = fn(argc_of(argv), argv, inf, out, err);
	fclose(inf);
	fclose(out);
	fclose(err);
}

void tu_run_fini(struct tu_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

int tu_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}
