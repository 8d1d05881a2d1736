/* remote_test.h: a dm_query_remote_t over the owner engine of
 * query_test.h (s_eng, s_reg): resolve gives the owner registry's
 * canonical contract, open runs the SELECT with dm_query_open there, next
 * is dm_query_fetch; s_seen counts what the owner was asked. As the
 * relay (node_relay.c), the owner's reply to the open carries the first
 * batch (S_FIRST_ROWS rows), which the first next hands over. */
#ifndef DM_REMOTE_TEST_H
#define DM_REMOTE_TEST_H

#include "query_test.h"

#define S_BIG 5000 /* rows of big.nums, keys 0..S_BIG-1 */
/* Rows of huge.items when a test makes it: the million, or a fifth
 * of it under AddressSanitizer, whose stage repeats the test at ~10x the
 * cost (the counts asserted do not depend on the size). */
#if defined(__SANITIZE_ADDRESS__)
#define S_HUGE 200000
#else
#define S_HUGE 1000000
#endif
#define S_FIRST_ROWS 10000 /* rows of the batch that comes with an open (DM_QUERY_BATCH_ROWS) */
#define S_NEXT_ROWS 700   /* rows of a batch a next asks for */

/* What the owner saw. */
S_UNUSED static struct {
    int opens, nexts, resolves;
    bool fail_open;
    char last_sql[8192];
} s_seen;

struct dm_query_rscan {
    dm_query_t *q;
    dm_buf_t first;
    uint32_t first_n;
    bool have_first, first_done;
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
    *rows = strcmp(domain, "big") == 0        ? S_BIG
            : strcmp(domain, "huge") == 0     ? S_HUGE
            : strcmp(domain, "identity") == 0 ? 505
                                              : 0;
    dm_registry_release(s_reg, ref);
    return DM_OK;
}

S_UNUSED static dm_err s_ropen(void *ctx, const char *domain, const char *product, const char *sql,
                      int64_t deadline_ns, const atomic_bool *cancel, dm_query_rscan_t **out,
                      dm_buf_t *why)
{
    (void)ctx;
    (void)deadline_ns;
    if (cancel && atomic_load(cancel)) {
        dm_buf_puts(why, "cancelled");
        return DM_ERR_TIMEOUT;
    }
    s_seen.opens++;
    snprintf(s_seen.last_sql, sizeof s_seen.last_sql, "%s", sql);
    if (s_seen.fail_open) {
        dm_buf_printf(why, "%s.%s: owner node 3f2a... is dead since 12:01:03", domain, product);
        return DM_ERR_NET;
    }
    dm_query_rscan_t *s = calloc(1, sizeof *s);
    dm_err rc = dm_query_open(s_eng, sql, strlen(sql), &s->q, why);
    cr_assert_eq(rc, DM_OK, "owner refused %s: %s", sql, why->data);
    rc = dm_query_fetch(s->q, S_FIRST_ROWS, 0, &s->first, &s->first_n, &s->first_done, why);
    cr_assert_eq(rc, DM_OK, "owner failed %s: %s", sql, why->data);
    s->have_first = true;
    *out = s;
    return DM_OK;
}

S_UNUSED static dm_err s_rnext(dm_query_rscan_t *s, int64_t deadline_ns, const atomic_bool *cancel,
                      dm_buf_t *out, uint32_t *nrows, bool *done, dm_buf_t *why)
{
    (void)deadline_ns;
    if (s->have_first) { /* no round trip: it came with the open */
        s->have_first = false;
        dm_buf_append(out, s->first.data, s->first.len);
        *nrows = s->first_n;
        *done = s->first_done;
        return DM_OK;
    }
    s_seen.nexts++;
    if (cancel && atomic_load(cancel)) {
        dm_buf_puts(why, "cancelled");
        return DM_ERR_TIMEOUT;
    }
    return dm_query_fetch(s->q, S_NEXT_ROWS, 0, out, nrows, done, why);
}

S_UNUSED static void s_rclose(dm_query_rscan_t *s)
{
    if (!s)
        return;
    dm_query_close(&s->q);
    dm_buf_free(&s->first);
    free(s);
}

S_UNUSED static const dm_query_remote_t s_remote = {s_resolve, s_ropen, s_rnext, s_rclose, NULL};

/* The owner is the world of query_test.h (s_store, s_reg, s_eng); the relay
 * has its own. */
S_UNUSED static char r_dir[PATH_MAX];
S_UNUSED static dm_store_t *r_store;
S_UNUSED static dm_registry_t *r_reg;
S_UNUSED static dm_query_engine_t *r_eng;


/* Runs fn with the relay as query_test.h's world (so its helpers register
 * and ingest there). */
S_UNUSED static void s_on_relay(void (*fn)(void))
{
    dm_store_t *st = s_store;
    dm_registry_t *rg = s_reg;
    dm_query_engine_t *en = s_eng;
    s_store = r_store;
    s_reg = r_reg;
    s_eng = r_eng;
    fn();
    s_store = st;
    s_reg = rg;
    s_eng = en;
}

/* Runs sql on the relay (remote products through s_remote); returns rows
 * as s_run does, and the explain text in *explain when not NULL. */
S_UNUSED static char *s_fed(const char *sql, char **explain)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, ex = DM_BUF_INIT;
    dm_err rc = dm_query_open_fed(r_eng, sql, strlen(sql), NULL, &s_remote, &q, &err);
    cr_assert_eq(rc, DM_OK, "%s: %s (%s)", sql, err.data, dm_err_str(rc));
    char *text = s_drain(q, sql);
    dm_query_explain(q, &ex);
    dm_query_close(&q);
    if (explain)
        *explain = ex.data ? dm_buf_steal(&ex) : strdup("");
    dm_buf_free(&ex);
    dm_buf_free(&err);
    return text;
}

/* big.nums on the owner: n 0..S_BIG-1, x = n % 7, s = text of n % 13. */
S_UNUSED static void s_big(void)
{
    s_product("big", "nums", "1.0.0", "    primaryKey: n\n",
              "      - {name: n, type: int, required: true}\n"
              "      - {name: x, type: int}\n"
              "      - {name: s, type: string}\n");
    static char text[S_BIG][80];
    static const char *lines[S_BIG];
    for (int i = 0; i < S_BIG; i++) {
        snprintf(text[i], sizeof text[i], "{\"n\":%d,\"x\":%d,\"s\":\"%d\"}", i, i % 7, i % 13);
        lines[i] = text[i];
    }
    s_ingest("big/nums", lines, S_BIG);
}

/* local.keys on the relay: k 0..1999 step 2 (1000 keys). */
S_UNUSED static void s_keys(void)
{
    s_product("local", "keys", "1.0.0", "    primaryKey: k\n",
              "      - {name: k, type: int, required: true}\n");
    static char text[1000][32];
    static const char *lines[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(text[i], sizeof text[i], "{\"k\":%d}", 2 * i);
        lines[i] = text[i];
    }
    s_ingest("local/keys", lines, 1000);
}

S_UNUSED static void s_relay_products(void)
{
    s_lines();
    s_keys();
}

/* Brings up the relay (its store in a temp folder named after tag, its
 * engine, its products) once the owner's products are in; s_relay_down
 * undoes it and the owner. */
S_UNUSED static void s_relay_up(const char *tag)
{
    cr_assert_not_null(dm_t_tmpdir(r_dir, sizeof r_dir, tag));
    cr_assert_eq(dm_store_open(r_dir, NULL, &r_store, NULL), DM_OK);
    cr_assert_eq(dm_registry_new(&r_reg), DM_OK);
    cr_assert_eq(dm_query_engine_new(r_store, r_reg, NULL, &r_eng, NULL), DM_OK);
    s_on_relay(s_relay_products);
    memset(&s_seen, 0, sizeof s_seen);
}

S_UNUSED static void s_relay_down(void)
{
    dm_query_engine_destroy(&r_eng);
    dm_registry_destroy(&r_reg);
    dm_store_destroy(&r_store);
    dm_t_rmdir(r_dir);
    s_teardown();
}

/* The native database a test compares with: every table of both nodes. */
S_UNUSED static sqlite3 *s_nat;

S_UNUSED static void s_copy_relay(void)
{
    s_native_copy(s_nat, "commerce", "lines");
    s_native_copy(s_nat, "local", "keys");
}

#endif
