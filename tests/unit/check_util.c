/*
 * check_util.c - string buffers and file reading.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "suites.h"
#include "util.h"

START_TEST(test_strbuf_grows)
{
	struct strbuf sb = { 0 };

	ck_assert_str_eq(strbuf_str(&sb), "");
	for (int i = 0; i < 1000; i++)
		strbuf_addf(&sb, "%d,", i);
	ck_assert_uint_eq(sb.len, strlen(sb.buf));
	ck_assert(strncmp(sb.buf, "0,1,2,", 6) == 0);
	ck_assert(strstr(sb.buf, ",999,") != NULL);
	strbuf_reset(&sb);
	ck_assert_str_eq(strbuf_str(&sb), "");
	strbuf_add(&sb, "a\0b", 3);
	ck_assert_uint_eq(sb.len, 3);
	char *s = strbuf_steal(&sb);
	ck_assert_ptr_null(sb.buf);
	ck_assert_int_eq(s[2], 'b');
	free(s);
	strbuf_fini(&sb);
}
END_TEST

START_TEST(test_read_file)
{
	char path[] = "/tmp/egress-util-XXXXXX";
	int fd = mkstemp(path);
	size_t len = 0;
	char *s;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "line\nx", 6), 6);
	close(fd);
	s = util_read_file(path, &len);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, 6);
	ck_assert_str_eq(s, "line\nx");
	free(s);
	unlink(path);
	errno = 0;
	ck_assert_ptr_null(util_read_file(path, NULL));
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_ascii_lower)
{
	char *s = util_ascii_lower("GitHub.COM-\xc3\x89", 13);

	ck_assert_str_eq(s, "github.com-\xc3\x89");
	free(s);
}
END_TEST

START_TEST(test_mkdir_p)
{
	char base[] = "/tmp/egress-mkdir-XXXXXX";
	char path[128];
	struct stat st;

	ck_assert_ptr_nonnull(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	ck_assert_int_eq(util_mkdir_p(path, 0700), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	/* an existing directory is fine */
	ck_assert_int_eq(util_mkdir_p(path, 0700), 0);
	/* a file in the way is an error with errno */
	snprintf(path, sizeof(path), "%s/file", base);
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/file/x", base);
	ck_assert_int_eq(util_mkdir_p(path, 0755), -1);
	ck_assert_int_eq(errno, ENOTDIR);
	snprintf(path, sizeof(path), "rm -rf %s", base);
	ck_assert_int_eq(system(path), 0);
}
END_TEST

Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_strbuf_grows);
	tcase_add_test(tc, test_read_file);
	tcase_add_test(tc, test_ascii_lower);
	tcase_add_test(tc, test_mkdir_p);
	suite_add_tcase(s, tc);
	return s;
}
