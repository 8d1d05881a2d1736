/* test_relay_sess.c: the relay's table of owners' open sessions (suite
 * "relay_sess", node/server/node_relay_sess.c): a session is found only
 * for its consumer, its owner, a product its owner named and while its
 * grant lasts past the asked time; an owner's hostile product list keeps
 * nothing; one owner cannot take more than its share; a forgotten session
 * is not found again. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "server/node_priv.h"

#define S_NOW 1000000
#define S_EXPIRES (S_NOW + 60000)

static void s_key(uint8_t *k, size_t len, int v)
{
    memset(k, 0, len);
    k[0] = (uint8_t)v;
    k[1] = (uint8_t)(v >> 8);
}

Test(relay_sess, finds_only_its_consumer_owner_products_and_lifetime)
{
    dm_node__fedsess_t *t = dm_node__fedsess_new();
    cr_assert_not_null(t);
    uint8_t consumer[DM_ID_PUBLIC_BYTES], other[DM_ID_PUBLIC_BYTES], owner[DM_ID_PUBLIC_BYTES],
        nonce[DM_GRANT_NONCE_BYTES], got[DM_GRANT_NONCE_BYTES];
    s_key(consumer, sizeof consumer, 1);
    s_key(other, sizeof other, 2);
    s_key(owner, sizeof owner, 3);
    s_key(nonce, sizeof nonce, 4);
    char *products[] = {"identity.customers", "identity.accounts"};
    cr_assert(dm_node__fedsess_put(t, consumer, owner, nonce, S_EXPIRES, products, 2, S_NOW));
    cr_assert(dm_node__fedsess_find(t, consumer, owner, "identity.accounts", S_NOW, got));
    cr_assert_arr_eq(got, nonce, sizeof nonce);
    cr_assert(dm_node__fedsess_find(t, consumer, owner, "identity.customers", S_EXPIRES, got));
    cr_assert_not(dm_node__fedsess_find(t, consumer, owner, "identity.customers",
                                        S_EXPIRES + 1, got),
                  "a session whose grant ends before the query may is not offered");
    cr_assert_not(dm_node__fedsess_find(t, other, owner, "identity.customers", S_NOW, got),
                  "another consumer's session");
    cr_assert_not(dm_node__fedsess_find(t, owner, consumer, "identity.customers", S_NOW, got),
                  "another owner's session");
    cr_assert_not(dm_node__fedsess_find(t, consumer, owner, "identity.orders", S_NOW, got),
                  "a product the owner did not name");
    dm_node__fedsess_drop(t, owner, nonce);
    cr_assert_not(dm_node__fedsess_find(t, consumer, owner, "identity.accounts", S_NOW, got),
                  "a dropped session is not found");
    dm_node__fedsess_destroy(&t);
    cr_assert_null(t);
}

Test(relay_sess, keeps_nothing_of_a_hostile_product_list)
{
    dm_node__fedsess_t *t = dm_node__fedsess_new();
    uint8_t k[DM_ID_PUBLIC_BYTES], nonce[DM_GRANT_NONCE_BYTES];
    s_key(k, sizeof k, 1);
    s_key(nonce, sizeof nonce, 2);
    char *empty[] = {""}, *null[] = {NULL};
    char long_name[DM_AUDIT_PRODUCT_MAX + 8];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    char *too_long[] = {long_name};
    cr_assert_not(dm_node__fedsess_put(t, k, k, nonce, S_EXPIRES, empty, 0, S_NOW), "none");
    cr_assert_not(dm_node__fedsess_put(t, k, k, nonce, S_EXPIRES, empty, 1, S_NOW), "\"\"");
    cr_assert_not(dm_node__fedsess_put(t, k, k, nonce, S_EXPIRES, null, 1, S_NOW), "NULL");
    cr_assert_not(dm_node__fedsess_put(t, k, k, nonce, S_EXPIRES, too_long, 1, S_NOW), "long");
    cr_assert_not(dm_node__fedsess_put(t, k, k, nonce, S_EXPIRES, empty,
                                       DM_NODE_FED_PRODUCTS_MAX + 1, S_NOW),
                  "more names than a session may have");
    dm_node__fedsess_destroy(&t);
}

Test(relay_sess, one_owner_has_a_share_and_expired_sessions_leave)
{
    dm_node__fedsess_t *t = dm_node__fedsess_new();
    uint8_t consumer[DM_ID_PUBLIC_BYTES], owner[DM_ID_PUBLIC_BYTES], second[DM_ID_PUBLIC_BYTES],
        nonce[DM_GRANT_NONCE_BYTES];
    s_key(owner, sizeof owner, 1);
    s_key(second, sizeof second, 2);
    char *products[] = {"d.p"};
    for (int i = 0; i < DM_NODE_RELAY_SESSIONS_PER_OWNER; i++) {
        s_key(consumer, sizeof consumer, 100 + i);
        s_key(nonce, sizeof nonce, 100 + i);
        cr_assert(dm_node__fedsess_put(t, consumer, owner, nonce, S_EXPIRES, products, 1, S_NOW));
    }
    s_key(nonce, sizeof nonce, 7);
    cr_assert_not(dm_node__fedsess_put(t, consumer, owner, nonce, S_EXPIRES, products, 1, S_NOW),
                  "past the owner's share");
    cr_assert(dm_node__fedsess_put(t, consumer, second, nonce, S_EXPIRES, products, 1, S_NOW),
              "another owner still has room");
    cr_assert(dm_node__fedsess_put(t, consumer, owner, nonce, S_EXPIRES, products, 1,
                                   S_EXPIRES + 1),
              "once the first ones expired there is room again");
    dm_node__fedsess_destroy(&t);
}
