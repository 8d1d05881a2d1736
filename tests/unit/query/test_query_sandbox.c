/* test_query_sandbox.c: the SQL engine's sandbox: every refusal (time
 * limit, cancel, memory, size limits, extensions, writes, schema changes,
 * internal tables, syntax, unknown names, SQL length, statement count,
 * domain count) with its message, each followed by a query that still
 * works on the same engine. */
#include "query_test.h"

#include <pthread.h>
#include <unistd.h>

TestSuite(query, .init = s_setup, .fini = s_teardown);

/* ---- sandbox: every refusal leaves the engine usable ---- */

Test(query, runaway_recursive_cte_hits_the_time_limit)
{
    s_orders();
    s_engine(300);
    char *msg = NULL;
    int64_t t0 = dm_clock_mono_ms();
    dm_err rc = s_fetch_fail("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
                             "SELECT count(*) FROM r",
                             &msg);
    int64_t took = dm_clock_mono_ms() - t0;
    cr_assert_eq(rc, DM_ERR_TIMEOUT, "%s", msg);
    cr_assert(strstr(msg, "300 ms"), "%s", msg);
    cr_assert(took < 3000, "took %lld ms", (long long)took);
    free(msg);
    s_still_works();
}

Test(query, huge_values_fail_at_the_length_limit)
{
    s_orders();
    static const char *const sql[] = {
        "SELECT length(printf('%.*c', 1000000000, 'x'))",
        "SELECT length(zeroblob(10000000000))",
        "SELECT length(randomblob(1000000000))",
        "SELECT length(replace(hex(zeroblob(400000)), '0', 'xx'))",
    };
    for (size_t i = 0; i < S_NELEM(sql); i++) {
        char *msg = NULL;
        dm_err rc = s_fetch_fail(sql[i], &msg);
        cr_assert_eq(rc, DM_ERR_INVALID, "%s: %s (%s)", sql[i], dm_err_str(rc), msg);
        cr_assert(strstr(msg, "larger than the limit"), "%s: %s", sql[i], msg);
        free(msg);
        s_still_works();
    }
}

Test(query, load_extension_is_refused)
{
    s_orders();
    char *msg = s_fail("SELECT load_extension('x')", DM_ERR_DENIED);
    cr_assert(strstr(msg, "load_extension() is not allowed"), "%s", msg);
    free(msg);
    s_still_works();
}

Test(query, attach_is_refused)
{
    s_orders();
    char *msg = s_fail("ATTACH '/tmp/x.db' AS x", DM_ERR_DENIED);
    cr_assert_str_eq(msg, "ATTACH is not allowed: queries are read-only over data products");
    free(msg);
    s_still_works();
}

Test(query, pragma_is_refused)
{
    s_orders();
    char *msg = s_fail("PRAGMA writable_schema=1", DM_ERR_DENIED);
    cr_assert(strstr(msg, "PRAGMA is not allowed"), "%s", msg);
    free(msg);
    msg = s_fail("PRAGMA query_only=0", DM_ERR_DENIED);
    free(msg);
    s_still_works();
}

Test(query, writes_and_schema_changes_are_refused)
{
    s_orders();
    static const struct { const char *sql, *word; } cases[] = {
        {"CREATE TABLE t(x)", "CREATE"},
        {"CREATE TEMP VIEW v AS SELECT 1", "CREATE"},
        {"INSERT INTO commerce.orders(orderId) VALUES ('x')", "INSERT"},
        {"DELETE FROM commerce.orders", "DELETE"},
        {"UPDATE commerce.orders SET qty = 1", "UPDATE"},
        {"DROP TABLE commerce.orders", "DROP"},
        {"BEGIN", "transaction"},
        {"DETACH commerce", "DETACH"},
        {"REINDEX", "REINDEX"},
        {"VACUUM INTO '/tmp/dm_test_query_vacuum.db'", "VACUUM"},
        {"SAVEPOINT a", "SAVEPOINT"},
        {"ANALYZE", "ALTER"},
    };
    for (size_t i = 0; i < S_NELEM(cases); i++) {
        char *msg = s_fail(cases[i].sql, DM_ERR_DENIED);
        cr_assert(strstr(msg, cases[i].word) && strstr(msg, "not allowed"), "%s: %s",
                  cases[i].sql, msg);
        free(msg);
        s_still_works();
    }
}

Test(query, internal_tables_are_not_readable)
{
    s_orders();
    char *msg = s_fail("SELECT * FROM commerce.orders, commerce.sqlite_master", DM_ERR_DENIED);
    cr_assert(strstr(msg, "reading commerce.sqlite_master is not allowed"), "%s", msg);
    free(msg);
    msg = s_fail("SELECT * FROM sqlite_schema", DM_ERR_DENIED);
    cr_assert(strstr(msg, "not allowed"), "%s", msg);
    free(msg);
    s_still_works();
}

Test(query, json_table_functions_work_others_are_refused)
{
    s_orders();
    char *got = s_run("SELECT sum(value) FROM json_each('[1,2,3]')");
    cr_assert_str_eq(got, "6\n");
    free(got);
    char *msg = s_fail("SELECT * FROM pragma_database_list", DM_ERR_DENIED);
    cr_assert(strstr(msg, "not allowed"), "%s", msg);
    free(msg);
    s_still_works();
}

Test(query, syntax_error_says_where)
{
    s_orders();
    char *msg = s_fail("SELECT status,\n  count(*) FROM commerce.orders\n GROUP BYE status",
                       DM_ERR_INVALID);
    cr_assert(strstr(msg, "syntax error"), "%s", msg);
    cr_assert(strstr(msg, "line 3, column 8"), "%s", msg);
    cr_assert(strstr(msg, "\n   GROUP BYE status\n         ^"), "%s", msg);
    free(msg);
    s_still_works();
}

Test(query, unknown_product_suggests_the_closest)
{
    s_orders();
    s_customers();
    char *msg = s_fail("SELECT * FROM commerce.ordrs", DM_ERR_NOTFOUND);
    cr_assert(strstr(msg, "did you mean 'commerce.orders'?"), "%s", msg);
    cr_assert(strstr(msg, "domain 'commerce' has no product 'ordrs'"), "%s", msg);
    free(msg);
    msg = s_fail("SELECT * FROM orders", DM_ERR_NOTFOUND);
    cr_assert(strstr(msg, "did you mean 'commerce.orders'?"), "%s", msg);
    free(msg);
    s_still_works();
}

Test(query, unknown_domain_suggests_the_closest)
{
    s_orders();
    char *msg = s_fail("SELECT * FROM comerce.orders", DM_ERR_NOTFOUND);
    cr_assert(strstr(msg, "unknown domain 'comerce'"), "%s", msg);
    cr_assert(strstr(msg, "did you mean 'commerce.orders'?"), "%s", msg);
    free(msg);
    s_still_works();
}

Test(query, sql_over_the_length_cap_is_refused)
{
    s_orders();
    size_t n = DM_QUERY_DEFAULT_MAX_SQL + 1;
    char *sql = malloc(n + 1);
    memset(sql, ' ', n);
    memcpy(sql, "SELECT 1", 8);
    sql[n] = 0;
    char *msg = s_fail(sql, DM_ERR_TOOBIG);
    cr_assert(strstr(msg, "at most 100000"), "%s", msg);
    free(msg);
    free(sql);
    s_still_works();
}

Test(query, two_statements_are_refused)
{
    s_orders();
    char *msg = s_fail("SELECT 1; SELECT 2", DM_ERR_INVALID);
    cr_assert(strstr(msg, "one statement per query"), "%s", msg);
    cr_assert(strstr(msg, "column 11"), "%s", msg);
    free(msg);
    char *got = s_run("SELECT 1; -- a comment\n ; ");
    cr_assert_str_eq(got, "1\n");
    free(got);
    s_still_works();
}

Test(query, more_than_ten_domains_are_refused)
{
    s_orders();
    dm_buf_t sql = DM_BUF_INIT;
    dm_buf_puts(&sql, "SELECT 1");
    for (int i = 0; i < 11; i++) {
        char d[16];
        snprintf(d, sizeof d, "d%d", i);
        s_product(d, "p", "1.0.0", "", "      - {name: x, type: int}\n");
        dm_buf_printf(&sql, " UNION ALL SELECT count(*) FROM d%d.p", i);
    }
    char *msg = s_fail(sql.data, DM_ERR_INVALID);
    cr_assert(strstr(msg, "names 11 domains; a query may name at most 10"), "%s", msg);
    free(msg);
    dm_buf_free(&sql);
    char *got = s_run("SELECT count(*) FROM d0.p, d1.p, d2.p, d3.p, d4.p, d5.p, d6.p, d7.p, "
                      "d8.p, commerce.orders");
    cr_assert_str_eq(got, "0\n");
    free(got);
    s_still_works();
}

/* ---- time, cancel, memory ---- */

static void *s_cancel_later(void *arg)
{
    usleep(100 * 1000);
    dm_query_cancel(arg);
    return NULL;
}

Test(query, cancel_from_another_thread_stops_the_query)
{
    s_orders();
    const char *sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
                      "SELECT count(*) FROM r";
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, out = DM_BUF_INIT;
    cr_assert_eq(dm_query_open(s_eng, sql, strlen(sql), &q, &err), DM_OK);
    pthread_t t;
    pthread_create(&t, NULL, s_cancel_later, q);
    int64_t t0 = dm_clock_mono_ms();
    uint32_t n;
    bool done;
    dm_err rc = dm_query_fetch(q, 10, 0, &out, &n, &done, &err);
    pthread_join(t, NULL);
    cr_assert_eq(rc, DM_ERR_TIMEOUT);
    cr_assert(strstr(err.data, "cancelled"), "%s", err.data);
    cr_assert_lt(dm_clock_mono_ms() - t0, 5000);
    cr_assert(done);
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&out);
    s_still_works();
}

Test(query, heap_limit_stops_a_huge_sort)
{
    s_orders();
    dm_query_engine_destroy(&s_eng);
    dm_query_limits_t l = {.heap_limit_bytes = (int64_t)32 << 20};
    cr_assert_eq(dm_query_engine_new(s_store, s_reg, &l, &s_eng, NULL), DM_OK);
    char *msg = NULL;
    dm_err rc = s_fetch_fail("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r "
                             "WHERE n < 2000) SELECT count(*) FROM (SELECT randomblob(100000) AS b "
                             "FROM r ORDER BY b)",
                             &msg);
    cr_assert_eq(rc, DM_ERR_NOMEM, "%s (%s)", msg, dm_err_str(rc));
    cr_assert(strstr(msg, "more memory"), "%s", msg);
    free(msg);
    s_still_works();
}

/* ---- error detail (base/err.h): appended to why, which may be NULL ---- */

Test(query, a_refusal_is_appended_to_why)
{
    s_orders();
    dm_buf_t why = DM_BUF_INIT;
    dm_buf_puts(&why, "earlier line\n");
    dm_query_t *q = NULL;
    const char *sql = "DELETE FROM commerce.orders";
    cr_assert_eq(dm_query_open(s_eng, sql, strlen(sql), &q, &why), DM_ERR_DENIED);
    cr_assert_null(q);
    static const char want[] = "earlier line\nINSERT, UPDATE and DELETE are not allowed";
    cr_assert(strncmp(why.data, want, sizeof want - 1) == 0, "%s", why.data);
    dm_buf_free(&why);
}

Test(query, a_failure_needs_no_why)
{
    s_orders();
    dm_query_t *q = NULL;
    const char *sql = "SELEC 1";
    cr_assert_eq(dm_query_open(s_eng, sql, strlen(sql), &q, NULL), DM_ERR_INVALID);
    cr_assert_null(q);
    dm_query_limits_t bad = {.timeout_ms = -1};
    dm_query_engine_t *e = NULL;
    cr_assert_eq(dm_query_engine_new(s_store, s_reg, &bad, &e, NULL), DM_ERR_INVALID);
    cr_assert_null(e);
    s_still_works();
}

Test(query, negative_limits_are_named_in_why)
{
    dm_query_limits_t bad = {.heap_limit_bytes = -5};
    dm_query_engine_t *e = NULL;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_query_engine_new(s_store, s_reg, &bad, &e, &why), DM_ERR_INVALID);
    cr_assert(strstr(why.data, "heap limit -5 bytes"), "%s", why.data);
    dm_buf_free(&why);
}

Test(query, a_runtime_error_is_appended_to_why)
{
    s_orders();
    dm_query_t *q = NULL;
    const char *sql = "SELECT json_extract('not json', '$.a') FROM commerce.orders";
    cr_assert_eq(dm_query_open(s_eng, sql, strlen(sql), &q, NULL), DM_OK);
    dm_buf_t why = DM_BUF_INIT, out = DM_BUF_INIT;
    dm_buf_puts(&why, "kept");
    uint32_t n;
    bool done;
    cr_assert_eq(dm_query_fetch(q, 10, 0, &out, &n, &done, &why), DM_ERR_INVALID);
    cr_assert(strncmp(why.data, "keptmalformed JSON", 18) == 0, "%s", why.data);
    cr_assert(done);
    dm_query_close(&q);
    dm_buf_free(&why);
    dm_buf_free(&out);
}
