/*
 * check_dnscache.c - the DNS IP -> name cache: TTL clamp, overwrite,
 * expiry, capacity eviction (reference 2.8).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnscache.h"
#include "suites.h"

static void ck_name(struct dnscache *c, const char *ip, double now,
		    const char *want)
{
	char *got = dnscache_lookup(c, ip, now);

	if (!want) {
		ck_assert_msg(got == NULL, "%s: expected a miss, got %s", ip,
			      got);
	} else {
		ck_assert_msg(got && strcmp(got, want) == 0,
			      "%s: expected %s, got %s", ip, want,
			      got ? got : "(miss)");
	}
	free(got);
}

START_TEST(test_add_lookup_lowercase)
{
	struct dnscache *c = dnscache_new(10);
	const char *ips[] = { "1.1.1.1", "2.2.2.2" };

	dnscache_add(c, ips, 2, "GitHub.COM", 300, 0);
	ck_name(c, "1.1.1.1", 1, "github.com");
	ck_name(c, "2.2.2.2", 1, "github.com");
	ck_name(c, "3.3.3.3", 1, NULL);
	ck_assert_uint_eq(dnscache_size(c), 2);
	dnscache_free(c);
}
END_TEST

START_TEST(test_ttl_clamped_and_expiry)
{
	struct dnscache *c = dnscache_new(10);
	const char *a[] = { "1.1.1.1" }, *b[] = { "2.2.2.2" };

	dnscache_add(c, a, 1, "short.test", 5, 100); /* clamped to 60 */
	dnscache_add(c, b, 1, "long.test", 99999, 100); /* clamped to 3600 */
	ck_name(c, "1.1.1.1", 159, "short.test");
	ck_name(c, "1.1.1.1", 161, NULL); /* expired and removed */
	ck_assert_uint_eq(dnscache_size(c), 1);
	ck_name(c, "2.2.2.2", 3699, "long.test");
	ck_name(c, "2.2.2.2", 3701, NULL);
	dnscache_free(c);
}
END_TEST

START_TEST(test_ttl_bounds_configurable)
{
	struct dnscache *c = dnscache_new(10);
	const char *a[] = { "1.1.1.1" }, *b[] = { "2.2.2.2" };

	ck_assert_int_eq(dnscache_set_ttl_bounds(c, -1, 10), -1);
	ck_assert_int_eq(dnscache_set_ttl_bounds(c, 10, 9), -1);
	ck_assert_int_eq(dnscache_set_ttl_bounds(c, 1, 20), 0);
	dnscache_add(c, a, 1, "short.test", 0, 100); /* clamped to 1 */
	dnscache_add(c, b, 1, "long.test", 300, 100); /* clamped to 20 */
	ck_name(c, "1.1.1.1", 100.5, "short.test");
	ck_name(c, "1.1.1.1", 101.5, NULL);
	ck_name(c, "2.2.2.2", 119, "long.test");
	ck_name(c, "2.2.2.2", 121, NULL);
	dnscache_free(c);
}
END_TEST

START_TEST(test_latest_answer_wins)
{
	struct dnscache *c = dnscache_new(10);
	const char *ip[] = { "9.9.9.9" };

	dnscache_add(c, ip, 1, "first.test", 60, 0);
	dnscache_add(c, ip, 1, "second.test", 600, 10);
	ck_name(c, "9.9.9.9", 100, "second.test");
	ck_assert_uint_eq(dnscache_size(c), 1);
	dnscache_free(c);
}
END_TEST

START_TEST(test_capacity_evicts_expired_then_soonest)
{
	struct dnscache *c = dnscache_new(3);
	const char *a[] = { "1.0.0.1" }, *b[] = { "1.0.0.2" },
		   *d[] = { "1.0.0.3" }, *e[] = { "1.0.0.4" },
		   *f[] = { "1.0.0.5" };

	dnscache_add(c, a, 1, "a.test", 60, 0); /* expires 60 */
	dnscache_add(c, b, 1, "b.test", 3000, 0); /* expires 3000 */
	dnscache_add(c, d, 1, "d.test", 1000, 0); /* expires 1000 */
	/* at t=100, a has expired: it goes, nothing else does */
	dnscache_add(c, e, 1, "e.test", 2000, 100);
	ck_assert_uint_eq(dnscache_size(c), 3);
	ck_name(c, "1.0.0.2", 101, "b.test");
	ck_name(c, "1.0.0.3", 101, "d.test");
	/* full, nothing expired: the one closest to expiry (d) goes */
	dnscache_add(c, f, 1, "f.test", 3600, 200);
	ck_assert_uint_eq(dnscache_size(c), 3);
	ck_name(c, "1.0.0.3", 201, NULL);
	ck_name(c, "1.0.0.2", 201, "b.test");
	ck_name(c, "1.0.0.4", 201, "e.test");
	ck_name(c, "1.0.0.5", 201, "f.test");
	dnscache_free(c);
}
END_TEST

START_TEST(test_many_entries)
{
	struct dnscache *c = dnscache_new(DNSCACHE_CAPACITY);
	char ip[32];
	const char *ips[1] = { ip };

	for (int i = 0; i < DNSCACHE_CAPACITY + 500; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255,
			 i & 255);
		dnscache_add(c, ips, 1, "n.test", 60 + i % 100, 0);
	}
	ck_assert_uint_eq(dnscache_size(c), DNSCACHE_CAPACITY);
	dnscache_free(c);
}
END_TEST

Suite *dnscache_suite(void)
{
	Suite *s = suite_create("dnscache");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_add_lookup_lowercase);
	tcase_add_test(tc, test_ttl_clamped_and_expiry);
	tcase_add_test(tc, test_ttl_bounds_configurable);
	tcase_add_test(tc, test_latest_answer_wins);
	tcase_add_test(tc, test_capacity_evicts_expired_then_soonest);
	tcase_add_test(tc, test_many_entries);
	suite_add_tcase(s, tc);
	return s;
}
