/* test_acl_db.c: the domain's admins in the store's "acl" database (suite
 * "acl_db"): add, remove, list, the changed flags, the cap, reopen. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "storage/acl_db.h"
#include "storage/store.h"

static char s_dir[PATH_MAX];
static dm_store_t *s_store;

static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_acl_db"));
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
}

static void s_teardown(void)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
}

TestSuite(acl_db, .init = s_setup, .fini = s_teardown, .timeout = 60);

/* A key whose bytes are all b, but for a counter in the first two. */
static void s_key(uint8_t key[DM_ACL_DB_KEY_BYTES], uint8_t b, unsigned i)
{
    memset(key, b, DM_ACL_DB_KEY_BYTES);
    key[0] = (uint8_t)(i >> 8);
    key[1] = (uint8_t)i;
}

Test(acl_db, an_empty_store_has_no_admins)
{
    uint8_t (*keys)[DM_ACL_DB_KEY_BYTES] = NULL;
    size_t n = 99;
    cr_assert_eq(dm_acl_db_admins(s_store, &keys, &n, NULL), DM_OK);
    cr_assert_eq(n, 0);
    free(keys);
}

Test(acl_db, add_then_add_again_reports_changed_once)
{
    uint8_t k[DM_ACL_DB_KEY_BYTES];
    s_key(k, 0x11, 0);
    bool changed = false;
    cr_assert_eq(dm_acl_db_admin_add(s_store, k, &changed, NULL), DM_OK);
    cr_assert(changed);
    cr_assert_eq(dm_acl_db_admin_add(s_store, k, &changed, NULL), DM_OK);
    cr_assert_not(changed, "already an admin");
    uint8_t (*keys)[DM_ACL_DB_KEY_BYTES] = NULL;
    size_t n = 0;
    cr_assert_eq(dm_acl_db_admins(s_store, &keys, &n, NULL), DM_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(memcmp(keys[0], k, sizeof k), 0);
    free(keys);
}

Test(acl_db, remove_reports_whether_it_was_an_admin)
{
    uint8_t a[DM_ACL_DB_KEY_BYTES], b[DM_ACL_DB_KEY_BYTES];
    s_key(a, 0x22, 0);
    s_key(b, 0x33, 0);
    bool changed = true;
    cr_assert_eq(dm_acl_db_admin_remove(s_store, a, &changed, NULL), DM_OK);
    cr_assert_not(changed, "not an admin yet");
    cr_assert_eq(dm_acl_db_admin_add(s_store, a, &changed, NULL), DM_OK);
    cr_assert_eq(dm_acl_db_admin_add(s_store, b, &changed, NULL), DM_OK);
    cr_assert_eq(dm_acl_db_admin_remove(s_store, a, &changed, NULL), DM_OK);
    cr_assert(changed);
    uint8_t (*keys)[DM_ACL_DB_KEY_BYTES] = NULL;
    size_t n = 0;
    cr_assert_eq(dm_acl_db_admins(s_store, &keys, &n, NULL), DM_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(memcmp(keys[0], b, sizeof b), 0, "the other admin stays");
    free(keys);
}

Test(acl_db, list_is_ascending_and_survives_reopen)
{
    uint8_t k[DM_ACL_DB_KEY_BYTES];
    unsigned order[] = {5, 1, 9, 3};
    for (size_t i = 0; i < 4; i++) {
        s_key(k, 0x44, order[i]);
        cr_assert_eq(dm_acl_db_admin_add(s_store, k, NULL, NULL), DM_OK);
    }
    dm_store_destroy(&s_store);
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    uint8_t (*keys)[DM_ACL_DB_KEY_BYTES] = NULL;
    size_t n = 0;
    cr_assert_eq(dm_acl_db_admins(s_store, &keys, &n, NULL), DM_OK);
    cr_assert_eq(n, 4);
    unsigned want[] = {1, 3, 5, 9};
    for (size_t i = 0; i < 4; i++) {
        s_key(k, 0x44, want[i]);
        cr_assert_eq(memcmp(keys[i], k, sizeof k), 0, "position %zu", i);
    }
    free(keys);
}

Test(acl_db, the_cap_refuses_one_more_admin_and_names_the_limit)
{
    uint8_t k[DM_ACL_DB_KEY_BYTES];
    for (unsigned i = 0; i < DM_ACL_DB_MAX_ADMINS; i++) {
        s_key(k, 0x55, i);
        cr_assert_eq(dm_acl_db_admin_add(s_store, k, NULL, NULL), DM_OK, "admin %u", i);
    }
    s_key(k, 0x66, 0);
    bool changed = true;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_acl_db_admin_add(s_store, k, &changed, &why), DM_ERR_TOOBIG);
    cr_assert_not(changed);
    cr_assert_not_null(strstr(why.data, "1024"), "%s", why.data);
    dm_buf_free(&why);
    s_key(k, 0x55, 7);
    cr_assert_eq(dm_acl_db_admin_add(s_store, k, &changed, NULL), DM_OK,
                 "an existing admin at the cap is no error");
    cr_assert_not(changed);
    uint8_t (*keys)[DM_ACL_DB_KEY_BYTES] = NULL;
    size_t n = 0;
    cr_assert_eq(dm_acl_db_admins(s_store, &keys, &n, NULL), DM_OK);
    cr_assert_eq(n, DM_ACL_DB_MAX_ADMINS);
    free(keys);
}
