/* remote_test.h: a dm_query_remote_t over the owner engine of
 * query_test.h (s_eng, s_reg): resolve gives the owner registry's
 * canonical contract, open runs the SELECT with dm_query_open there, next
 * is dm_query_fetch; s_seen counts what the owner was asked. */
#ifndef DM_REMOTE_TEST_H
#define DM_REMOTE_TEST_H

#include "query_test.h"

#define S_BIG 5000 /* rows of big.nums, keys 0..S_BIG-1 */

/* What the owner saw. */
S_UNUSED static struct {
    int opens, nexts, resolves;
    bool fail_open;
    char last_sql[8192];
} s_seen;

struct dm_query_rscan {
    dm_query_t *q;
};

S_UNUSED static dm_err s_resolve(void *ctx, const char *domain, const char *product, char **json,
                        uint64_t *rows, dm_buf_t *why)
{
    (void)ctx;
    (void)why;
    char qn[256];
    snprintf(qn, sizeof qn, "%s/%s", domain, product);
    const dm_product_ref_t *ref;
    if (dm_registry_acquire(s_reg, qn, strlen(qn), &ref) != DM_OK)
        return DM_ERR_NOTFOUND;
    s_seen.resolves++;
    dm_buf_t canon = DM_BUF_INIT;
    dm_contract_canonical(ref->contract, &canon);
    *json = dm_buf_steal(&canon);
    *rows = strcmp(domain, "big") == 0 ? S_BIG : strcmp(domain, "identity") == 0 ? 505 : 0;
    dm_registry_release(s_reg, ref);
    return DM_OK;
}

S_UNUSED static dm_err s_ropen(void *ctx, const char *domain, const char *product, const char *sql,
                      int64_t deadline_ns, dm_query_rscan_t **out, dm_buf_t *why)
{
    (void)ctx;
    (void)deadline_ns;
    s_seen.opens++;
    snprintf(s_seen.last_sql, sizeof s_seen.last_sql, "%s", sql);
    if (s_seen.fail_open) {
        dm_buf_printf(why, "%s.%s: owner node 3f2a... is dead since 12:01:03", domain, product);
        return DM_ERR_NET;
    }
    dm_query_rscan_t *s = calloc(1, sizeof *s);
    dm_err rc = dm_query_open(s_eng, sql, strlen(sql), &s->q, why);
    cr_assert_eq(rc, DM_OK, "owner refused %s: %s", sql, why->data);
    *out = s;
    return DM_OK;
}

S_UNUSED static dm_err s_rnext(dm_query_rscan_t *s, int64_t deadline_ns, const atomic_bool *cancel,
                      dm_buf_t *out, uint32_t *nrows, bool *done, dm_buf_t *why)
{
    (void)deadline_ns;
    s_seen.nexts++;
    if (cancel && atomic_load(cancel)) {
        dm_buf_puts(why, "cancelled");
        return DM_ERR_TIMEOUT;
    }
    return dm_query_fetch(s->q, 700, 0, out, nrows, done, why);
}

S_UNUSED static void s_rclose(dm_query_rscan_t *s)
{
    if (!s)
        return;
    dm_query_close(&s->q);
    free(s);
}

S_UNUSED static const dm_query_remote_t s_remote = {s_resolve, s_ropen, s_rnext, s_rclose, NULL};


#endif
