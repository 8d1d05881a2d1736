/* test_query_inline.c: dm_query_open_local and dm_query_fetch_within, what
 * the node loop runs a short query with (query_pool_inline.c): a whole
 * result within the budget, or nothing and the statement back at its
 * start, so the worker that takes it over returns exactly the rows a
 * plain fetch returns. */
#include "query_test.h"

TestSuite(query_inline, .init = s_setup, .fini = s_teardown);

#define S_BIG_ROWS 20000
#define S_NS_PER_MS INT64_C(1000000)

/* d.big: ids 0..S_BIG_ROWS-1 with "value N". */
static void s_big(void)
{
    enum { BATCH = 5000 };
    s_product("d", "big", "1.0.0", "    primaryKey: id\n",
              "      - {name: id, type: int, required: true}\n"
              "      - {name: v, type: string}\n");
    static char text[BATCH][64];
    static const char *lines[BATCH];
    for (int b = 0; b < S_BIG_ROWS / BATCH; b++) {
        for (int i = 0; i < BATCH; i++) {
            snprintf(text[i], sizeof text[i], "{\"id\":%d,\"v\":\"value %d\"}", b * BATCH + i,
                     b * BATCH + i);
            lines[i] = text[i];
        }
        s_ingest("d/big", lines, BATCH);
    }
}

static dm_query_t *s_open_local(const char *sql)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT;
    cr_assert_eq(dm_query_open_local(s_eng, sql, strlen(sql), NULL, NULL, &q, &err), DM_OK, "%s",
                 err.data);
    cr_assert_not_null(q);
    dm_buf_free(&err);
    return q;
}

/* Fetches q to its end with dm_query_fetch: all rows' bytes, *rows. */
static void s_fetch_all(dm_query_t *q, dm_buf_t *out, uint64_t *rows)
{
    dm_buf_t err = DM_BUF_INIT;
    bool done = false;
    *rows = 0;
    while (!done) {
        uint32_t n = 0;
        cr_assert_eq(dm_query_fetch(q, 1000, 0, out, &n, &done, &err), DM_OK, "%s", err.data);
        *rows += n;
    }
    dm_buf_free(&err);
}

Test(query_inline, a_point_lookup_comes_whole_within_the_budget)
{
    s_big();
    const char *sql = "SELECT id, v FROM d.big WHERE id = 4242";
    dm_query_t *q = s_open_local(sql);
    dm_buf_t out = DM_BUF_INIT, err = DM_BUF_INIT, want = DM_BUF_INIT;
    uint32_t n = 0;
    bool over = true;
    cr_assert_eq(dm_query_fetch_within(q, 1000, 0, 100 * S_NS_PER_MS, &out, &n, &over, &err), DM_OK,
                 "%s", err.data);
    cr_assert(!over);
    cr_assert_eq(n, 1);
    cr_assert_eq(dm_query_rows_walked(q), 1);
    dm_query_close(&q);
    q = s_open_local(sql);
    uint64_t rows;
    s_fetch_all(q, &want, &rows);
    cr_assert_eq(rows, 1);
    cr_assert_eq(out.len, want.len);
    cr_assert(memcmp(out.data, want.data, out.len) == 0);
    dm_query_close(&q);
    dm_buf_free(&out);
    dm_buf_free(&err);
    dm_buf_free(&want);
}

Test(query_inline, a_result_over_one_batch_is_left_whole_to_fetch)
{
    s_big();
    dm_query_t *q = s_open_local("SELECT id FROM d.big WHERE id < 50");
    dm_buf_t out = DM_BUF_INIT, err = DM_BUF_INIT;
    uint32_t n = 7;
    bool over = false;
    cr_assert_eq(dm_query_fetch_within(q, 10, 0, 100 * S_NS_PER_MS, &out, &n, &over, &err), DM_OK);
    cr_assert(over);
    cr_assert_eq(n, 0);
    cr_assert_eq(out.len, 0, "nothing appended, got %zu bytes", out.len);
    uint64_t rows;
    s_fetch_all(q, &out, &rows);
    cr_assert_eq(rows, 50, "the statement restarts from its first row: %llu rows",
                 (unsigned long long)rows);
    const uint8_t *p = (const uint8_t *)out.data, *end = p + out.len;
    for (int i = 0; i < 50; i++) {
        dm_rowbatch_value_t id;
        cr_assert(dm_rowbatch_read(&p, end, &id));
        cr_assert_eq(id.i, i);
    }
    dm_query_close(&q);
    dm_buf_free(&out);
    dm_buf_free(&err);
}

Test(query_inline, a_scan_past_the_budget_is_rewound_not_failed)
{
    s_big();
    dm_query_t *q = s_open_local("SELECT id, v FROM d.big WHERE v = 'value 19999'");
    dm_buf_t out = DM_BUF_INIT, err = DM_BUF_INIT;
    uint32_t n = 0;
    bool over = false;
    cr_assert_eq(dm_query_fetch_within(q, 1000, 0, 1, &out, &n, &over, &err), DM_OK, "%s",
                 err.data);
    cr_assert(over, "a scan of %d rows in 1 ns", S_BIG_ROWS);
    cr_assert_eq(out.len, 0);
    uint64_t rows;
    s_fetch_all(q, &out, &rows);
    cr_assert_eq(rows, 1);
    dm_query_close(&q);
    char *got = s_run("SELECT id, v FROM d.big WHERE v = 'value 19999'");
    char *again = s_run("SELECT id, v FROM d.big WHERE v = 'value 19999'");
    cr_assert_str_eq(got, again);
    free(got);
    free(again);
    dm_buf_free(&out);
    dm_buf_free(&err);
}

Test(query_inline, the_query_time_limit_still_fails_it)
{
    s_engine(1); /* 1 ms: the budget below is longer than the query's limit */
    s_big();
    dm_query_t *q = s_open_local("SELECT a.id FROM d.big a, d.big b WHERE a.v < b.v AND a.v > b.v");
    dm_buf_t out = DM_BUF_INIT, err = DM_BUF_INIT;
    uint32_t n = 0;
    bool over = false;
    cr_assert_eq(dm_query_fetch_within(q, 1000, 0, 1000 * S_NS_PER_MS, &out, &n, &over, &err),
                 DM_ERR_TIMEOUT);
    cr_assert(!over);
    cr_assert(strstr(err.data, "time limit"), "%s", err.data);
    dm_query_close(&q);
    dm_buf_free(&out);
    dm_buf_free(&err);
}

/* A function call of the client's can run long between two checks of the
 * deadline, and a statement of no product is nobody's read: neither is
 * ever stepped within a budget, however long, and a plain fetch still
 * runs it whole. */
Test(query_inline, a_function_call_or_no_product_is_never_tried)
{
    s_big();
    static const char *const sqls[] = {
        "SELECT id FROM d.big WHERE id = 7 AND instr(v, '7') > 0",
        "SELECT id FROM d.big WHERE id = 7 AND v LIKE '%7'",
        "SELECT count(*) FROM d.big WHERE id = 7",
        "SELECT 1",
    };
    for (size_t i = 0; i < sizeof sqls / sizeof *sqls; i++) {
        dm_query_t *q = s_open_local(sqls[i]);
        dm_buf_t out = DM_BUF_INIT, err = DM_BUF_INIT;
        uint32_t n = 0;
        bool over = false;
        cr_assert_eq(dm_query_fetch_within(q, 1000, 0, 1000 * S_NS_PER_MS, &out, &n, &over, &err),
                     DM_OK, "%s", err.data);
        cr_assert(over, "%s was stepped on the loop", sqls[i]);
        cr_assert_eq(n, 0);
        uint64_t rows;
        s_fetch_all(q, &out, &rows);
        cr_assert_eq(rows, 1, "%s", sqls[i]);
        dm_query_close(&q);
        dm_buf_free(&out);
        dm_buf_free(&err);
    }
}
