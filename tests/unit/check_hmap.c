/*
 * check_hmap.c - the string-keyed hash map.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "hmap.h"
#include "suites.h"

START_TEST(test_insert_get_delete)
{
	struct hmap m = { 0 };
	char key[32];
	static int vals[5000];
	bool created;

	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		void **slot = hmap_slot(&m, key, strlen(key), &created);
		ck_assert(created);
		*slot = &vals[i];
	}
	ck_assert_uint_eq(m.count, 5000);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		ck_assert_ptr_eq(hmap_get(&m, key, strlen(key)), &vals[i]);
	}
	ck_assert_ptr_null(hmap_get(&m, "key-5000", 8));
	/* existing key: same slot, not created */
	ck_assert_ptr_eq(*hmap_slot(&m, "key-7", 5, &created), &vals[7]);
	ck_assert(!created);
	for (int i = 0; i < 5000; i += 2) {
		snprintf(key, sizeof(key), "key-%d", i);
		ck_assert_ptr_eq(hmap_del(&m, key, strlen(key)), &vals[i]);
	}
	ck_assert_uint_eq(m.count, 2500);
	ck_assert_ptr_null(hmap_get(&m, "key-4", 5));
	ck_assert_ptr_eq(hmap_get(&m, "key-5", 5), &vals[5]);
	ck_assert_ptr_null(hmap_del(&m, "nope", 4));
	hmap_fini(&m);
	ck_assert_uint_eq(m.count, 0);
}
END_TEST

START_TEST(test_binary_keys)
{
	struct hmap m = { 0 };
	const char a[4] = { 1, 0, 2, 0 }, b[4] = { 1, 0, 2, 1 };
	int x, y;

	*hmap_slot(&m, a, 4, NULL) = &x;
	*hmap_slot(&m, b, 4, NULL) = &y;
	ck_assert_ptr_eq(hmap_get(&m, a, 4), &x);
	ck_assert_ptr_eq(hmap_get(&m, b, 4), &y);
	ck_assert_ptr_null(hmap_get(&m, a, 3));
	hmap_fini(&m);
}
END_TEST

Suite *hmap_suite(void)
{
	Suite *s = suite_create("hmap");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_insert_get_delete);
	tcase_add_test(tc, test_binary_keys);
	suite_add_tcase(s, tc);
	return s;
}
