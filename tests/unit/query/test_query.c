/* test_query.c: the SQL engine's virtual tables: column types and values,
 * which plan the key pushdown picks, results equal to a native SQLite table
 * for filters, conversions, joins, ORDER BY, LIMIT/OFFSET, aggregates and
 * NULLs, read-your-writes, streaming, upgraded products, the reuse of
 * pooled connections, and queries while batches commit and the map grows.
 * The sandbox's refusals are in test_query_sandbox.c. */
#include "query_test.h"

#include <pthread.h>
#include <stdatomic.h>

TestSuite(query, .init = s_setup, .fini = s_teardown);

/* ---- virtual table ---- */

Test(query, columns_have_contract_types)
{
    s_orders();
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT;
    const char *sql = "SELECT orderId, customerId, amount, status, ts, qty, day, gift, 1 + 1 AS two "
                      "FROM commerce.orders";
    cr_assert_eq(dm_query_open(s_eng, sql, strlen(sql), &q, &err), DM_OK, "%s", err.data);
    static const char *want[] = {"UUID", "TEXT", "REAL", "TEXT", "TIMESTAMP",
                                 "INTEGER", "DATE", "BOOLEAN", ""};
    cr_assert_eq(dm_query_ncolumns(q), 9);
    for (int i = 0; i < 9; i++)
        cr_assert_str_eq(dm_query_column_decltype(q, i), want[i], "column %d", i);
    cr_assert_str_eq(dm_query_column_name(q, 8), "two");
    dm_query_close(&q);
    dm_buf_free(&err);
}

Test(query, values_are_typed_and_timestamps_fixed_width)
{
    s_orders();
    char *got = s_run("SELECT orderId, amount, status, ts, qty, day, gift, note FROM commerce.orders "
                      "WHERE orderId = '7a2d4b1c-0e3f-4a5b-8c6d-7e8f90a1b2c3'");
    cr_assert_str_eq(got, "'7a2d4b1c-0e3f-4a5b-8c6d-7e8f90a1b2c3'|42|'paid'|"
                          "'2026-11-24T08:16:30.250000Z'|1|'2026-11-23'|0|NULL\n");
    free(got);
    got = s_run("SELECT ts, typeof(amount), typeof(qty), typeof(day) FROM commerce.orders "
                "WHERE orderId = '00000000-0000-4000-8000-000000000001'");
    cr_assert_str_eq(got, "'1969-12-31T23:59:59.999999Z'|'real'|'integer'|'text'\n");
    free(got);
}

Test(query, pk_equality_uses_the_index)
{
    s_orders();
    char *plan = s_plan("SELECT * FROM commerce.orders WHERE orderId = "
                        "'c0ffee00-1234-4abc-9def-0123456789ab'");
    cr_assert(strstr(plan, "pk eq=1"), "%s", plan);
    free(plan);
}

Test(query, pk_range_uses_the_index)
{
    s_lines();
    char *plan = s_plan("SELECT * FROM commerce.lines WHERE orderNo >= 10 AND orderNo < 12");
    cr_assert(strstr(plan, "pk eq=0 lo hi"), "%s", plan);
    free(plan);
    plan = s_plan("SELECT * FROM commerce.lines WHERE orderNo = 10 AND lineNo > 5");
    cr_assert(strstr(plan, "pk eq=1 lo"), "%s", plan);
    free(plan);
    char *got = s_run("SELECT count(*), min(lineNo), max(lineNo) FROM commerce.lines "
                      "WHERE orderNo = 10 AND lineNo > 5");
    cr_assert_str_eq(got, "15|6|20\n");
    free(got);
}

Test(query, date_and_timestamp_literals_bound_the_key)
{
    s_events();
    char *plan = s_plan("SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at >= '2026-11-24'");
    cr_assert(strstr(plan, "pk eq=1 lo"), "%s", plan);
    free(plan);
    plan = s_plan("SELECT * FROM logistics.events WHERE day = '2026-11-24' AND "
                  "at < '2026-11-24T10:00:00.000000Z'");
    cr_assert(strstr(plan, "pk eq=1 hi"), "%s", plan);
    free(plan);
    char *got = s_run("SELECT what FROM logistics.events WHERE day = '2026-11-24' AND "
                      "at >= '2026-11-24T09:00:00.000000Z' AND at < '2026-11-24T10:00:00.000000Z'");
    cr_assert_str_eq(got, "'nine'\n'almost ten'\n");
    free(got);
}

Test(query, non_pk_filter_scans_the_log)
{
    s_orders();
    char *plan = s_plan("SELECT * FROM commerce.orders WHERE customerId = 'c1'");
    cr_assert(strstr(plan, "log scan"), "%s", plan);
    free(plan);
    /* a key literal that is no uuid cannot narrow the walk */
    plan = s_plan("SELECT * FROM commerce.orders WHERE orderId >= '4' AND orderId < '6'");
    cr_assert(strstr(plan, "log scan"), "%s", plan);
    free(plan);
}

Test(query, join_probes_the_inner_table_by_key)
{
    s_orders();
    s_customers();
    s_more_customers();
    char *plan = s_plan("SELECT o.orderId, c.name FROM commerce.orders o "
                        "JOIN identity.customers c ON c.customerId = o.customerId");
    cr_assert(strstr(plan, "pk eq=1"), "%s", plan);
    free(plan);
}

Test(query, order_by_key_needs_no_sort)
{
    s_lines();
    char *plan = s_plan("SELECT * FROM commerce.lines ORDER BY orderNo, lineNo LIMIT 5");
    cr_assert(strstr(plan, "pk eq=0 limit") && !strstr(plan, "TEMP B-TREE"), "%s", plan);
    free(plan);
    plan = s_plan("SELECT * FROM commerce.lines LIMIT 5");
    cr_assert(strstr(plan, "log scan limit"), "%s", plan);
    free(plan);
    char *got = s_run("SELECT orderNo, lineNo FROM commerce.lines ORDER BY orderNo, lineNo LIMIT 3 OFFSET 19");
    cr_assert_str_eq(got, "1|20\n2|1\n2|2\n");
    free(got);
}

/* ---- results equal a native SQLite table ---- */

/* Runs every query on the engine and on native copies of the products and
 * compares the rows (as text; sorted unless the query orders them). */
static void s_compare(const char *const *queries, size_t n)
{
    sqlite3 *nat;
    cr_assert_eq(sqlite3_open(":memory:", &nat), SQLITE_OK);
    s_native_copy(nat, "commerce", "orders");
    s_native_copy(nat, "identity", "customers");
    s_native_copy(nat, "commerce", "lines");
    s_native_copy(nat, "logistics", "events");
    s_compare_native(nat, queries, n);
    sqlite3_close(nat);
}

static void s_all_products(void)
{
    s_orders();
    s_customers();
    s_more_customers();
    s_lines();
    s_events();
}

Test(query, filters_equal_a_native_table)
{
    s_all_products();
    static const char *const q[] = {
        "SELECT * FROM commerce.orders",
        "SELECT * FROM commerce.orders WHERE orderId = 'c0ffee00-1234-4abc-9def-0123456789ab'",
        "SELECT * FROM commerce.orders WHERE orderId = 'C0FFEE00-1234-4ABC-9DEF-0123456789AB'",
        "SELECT orderId FROM commerce.orders WHERE orderId > '7'",
        "SELECT orderId FROM commerce.orders WHERE orderId >= '3f1c2a9e-8b7d-4c6e-9f01-23456789abcd' "
        "AND orderId < 'c0ffee00-1234-4abc-9def-0123456789ab'",
        "SELECT orderId FROM commerce.orders WHERE orderId > 'C0FFEE00-1234-4ABC-9DEF-0123456789AB'",
        "SELECT * FROM commerce.orders WHERE orderId IN ('c0ffee00-1234-4abc-9def-0123456789ab', "
        "'12345678-1234-4234-8234-123456789012', 'nope')",
        "SELECT * FROM commerce.orders WHERE orderId IN ('c0ffee00-1234-4abc-9def-0123456789ab', "
        "'12345678-1234-4234-8234-123456789012') AND orderId IN "
        "('C0FFEE00-1234-4ABC-9DEF-0123456789AB', '12345678-1234-4234-8234-123456789012')",
        "SELECT * FROM commerce.orders WHERE orderId IN ('C0FFEE00-1234-4ABC-9DEF-0123456789AB', "
        "'12345678-1234-4234-8234-123456789012')",
        "SELECT * FROM commerce.lines WHERE orderNo IN (3, '4', 5.5, 6.0) AND lineNo IN (1, 2)",
        "SELECT orderId, ts FROM commerce.orders WHERE ts >= '2026-11-24' AND ts < '2026-11-25'",
        "SELECT orderId, ts FROM commerce.orders WHERE ts > '2026-11-24T09:15:00.000000Z'",
        "SELECT orderId, ts FROM commerce.orders WHERE ts <= '2026-11-24T10:15:00+01:00'",
        "SELECT orderId FROM commerce.orders WHERE customerId = 'c1' AND amount > 0",
        "SELECT orderId, day, gift FROM commerce.orders WHERE gift",
        "SELECT orderId FROM commerce.orders WHERE status = 'paid' AND qty >= 1",
        "SELECT orderId FROM commerce.orders WHERE note LIKE '%quoted%'",
        "SELECT * FROM commerce.lines WHERE orderNo = 5 AND lineNo >= 3 AND lineNo <= 9",
        "SELECT * FROM commerce.lines WHERE orderNo = '5' AND lineNo = 2",
        "SELECT * FROM commerce.lines WHERE orderNo = 5.0 AND lineNo = 2.0",
        "SELECT * FROM commerce.lines WHERE orderNo > 49.5",
        "SELECT * FROM commerce.lines WHERE orderNo >= 48 AND orderNo < 50.5",
        "SELECT * FROM commerce.lines WHERE lineNo = 3 AND orderNo < 4",
        "SELECT * FROM commerce.lines WHERE orderNo = 7 AND lineNo > 18.5",
        "SELECT * FROM commerce.lines WHERE orderNo = -1 OR lineNo = 20 AND orderNo < 3",
        "SELECT * FROM identity.customers WHERE customerId >= 'c' AND customerId < 'x0003'",
        "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at >= '2026-11-24T10'",
        "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at < '2026-11-24T10:00:00.000000Z'",
        "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at <= '2026-11-24T10:00:00.000000Z'",
        "SELECT * FROM logistics.events WHERE day >= '2026-11-23' AND day < '2026-11-25'",
        "SELECT * FROM logistics.events WHERE day > '1969-12-31' AND day <= '2026-11-24'",
        "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at >= '2026-11-24'",
        "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at > '2026-11-24'",
        "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at <= '2026-11-24'",
        "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at < '2026-11-25'",
        "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at = '2026-11-24T09:00:00Z'",
        "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at = '2026-11-24T09:00:00.000000Z'",
        "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at > '2026-11-24T10:00:00+01:00'",
        "SELECT * FROM logistics.events WHERE day < '2026-11-24T00:00:00Z' ORDER BY day, at",
        "SELECT * FROM logistics.events WHERE day = 20251 OR at > 5",
        "SELECT * FROM identity.customers WHERE customerId = 'C1' COLLATE NOCASE",
    };
    s_compare(q, S_NELEM(q));
}

Test(query, joins_order_limit_and_aggregates_equal_a_native_table)
{
    s_all_products();
    static const char *const q[] = {
        "SELECT o.orderId, c.name, c.tier FROM commerce.orders o "
        "JOIN identity.customers c ON c.customerId = o.customerId ORDER BY o.orderId",
        "SELECT c.customerId, count(o.orderId) FROM identity.customers c LEFT JOIN "
        "commerce.orders o ON o.customerId = c.customerId GROUP BY c.customerId "
        "ORDER BY 2 DESC, 1 LIMIT 5",
        "SELECT status, count(*), round(sum(amount), 6), min(ts), max(ts) FROM commerce.orders "
        "GROUP BY status ORDER BY status",
        "SELECT count(*), count(amount), count(qty), count(note), count(gift), count(day) "
        "FROM commerce.orders",
        "SELECT max(qty), min(day), round(avg(qty), 6), total(gift) FROM commerce.orders",
        "SELECT * FROM commerce.orders ORDER BY amount DESC NULLS LAST, orderId LIMIT 3 OFFSET 1",
        "SELECT orderId, note FROM commerce.orders WHERE note IS NULL ORDER BY orderId",
        "SELECT orderNo, count(*), round(sum(price), 6) FROM commerce.lines "
        "WHERE orderNo BETWEEN 3 AND 7 GROUP BY orderNo ORDER BY orderNo",
        "SELECT sku, count(*) FROM commerce.lines GROUP BY sku HAVING count(*) > 27 ORDER BY sku",
        "SELECT * FROM commerce.lines ORDER BY orderNo, lineNo LIMIT 4 OFFSET 30",
        "SELECT * FROM commerce.lines ORDER BY orderNo DESC, lineNo DESC LIMIT 3",
        "SELECT count(*) FROM (SELECT * FROM commerce.lines WHERE orderNo > 48 LIMIT 7)",
        "SELECT count(*) FROM (SELECT * FROM commerce.lines LIMIT 5 OFFSET 997)",
        "SELECT l.orderNo, l.lineNo, r.sku FROM commerce.lines l JOIN commerce.lines r "
        "ON r.orderNo = l.orderNo + 1 AND r.lineNo = l.lineNo WHERE l.orderNo = 10 ORDER BY l.lineNo",
        "WITH t AS (SELECT customerId, sum(qty) AS q FROM commerce.orders GROUP BY 1) "
        "SELECT t.customerId, t.q, c.name FROM t LEFT JOIN identity.customers c USING (customerId) "
        "ORDER BY 1",
        "SELECT o.customerId FROM commerce.orders o WHERE NOT EXISTS (SELECT 1 FROM "
        "identity.customers c WHERE c.customerId = o.customerId)",
        "SELECT tier, count(*) FROM identity.customers GROUP BY tier ORDER BY tier",
        "SELECT l.orderNo, l.lineNo, c.name FROM commerce.lines l JOIN identity.customers c "
        "ON c.customerId = l.orderNo ORDER BY 1, 2",
        "SELECT c.name FROM identity.customers c WHERE c.customerId = 7",
        "SELECT DISTINCT status FROM commerce.orders ORDER BY 1",
    };
    s_compare(q, S_NELEM(q));
}

/* ---- visibility, streaming, upgrades ---- */

Test(query, committed_batch_is_visible_to_the_next_query)
{
    s_orders();
    dm_query_t *before = NULL;
    dm_buf_t err = DM_BUF_INIT;
    const char *count = "SELECT count(*) FROM commerce.orders";
    cr_assert_eq(dm_query_open(s_eng, count, strlen(count), &before, &err), DM_OK);
    static const char *const more[] = {
        "{\"orderId\":\"abcdef00-0000-4000-8000-000000000000\",\"customerId\":\"c9\"}"};
    s_ingest("commerce/orders", more, 1);
    char *got = s_run(count);
    cr_assert_str_eq(got, "7\n");
    free(got);
    got = s_run("SELECT customerId FROM commerce.orders WHERE orderId = "
                "'abcdef00-0000-4000-8000-000000000000'");
    cr_assert_str_eq(got, "'c9'\n");
    free(got);
    /* a query opened before the commit reads its own snapshot */
    dm_buf_t batch = DM_BUF_INIT;
    uint32_t n;
    bool done;
    cr_assert_eq(dm_query_fetch(before, 10, 0, &batch, &n, &done, &err), DM_OK);
    const uint8_t *p = (const uint8_t *)batch.data;
    dm_rowbatch_value_t v;
    cr_assert(dm_rowbatch_read(&p, p + batch.len, &v) && v.i == 6);
    dm_query_close(&before);
    dm_buf_free(&batch);
    dm_buf_free(&err);
}

Test(query, results_stream_one_batch_at_a_time)
{
    enum { N = 200000, BATCH = 10000, FETCH = 1000 };
    s_product("d", "big", "1.0.0", "    primaryKey: id\n",
              "      - {name: id, type: int, required: true}\n"
              "      - {name: v, type: string}\n");
    static char text[BATCH][64];
    static const char *lines[BATCH];
    for (int b = 0; b < N / BATCH; b++) {
        for (int i = 0; i < BATCH; i++) {
            snprintf(text[i], sizeof text[i], "{\"id\":%d,\"v\":\"value %d\"}", b * BATCH + i,
                     b * BATCH + i);
            lines[i] = text[i];
        }
        s_ingest("d/big", lines, BATCH);
    }
    const char *sql = "SELECT id, v FROM d.big";
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, out = DM_BUF_INIT;
    cr_assert_eq(dm_query_open(s_eng, sql, strlen(sql), &q, &err), DM_OK);
    uint64_t rows = 0, sum = 0, fetches = 0;
    size_t most = 0;
    bool done = false;
    while (!done) {
        uint32_t n;
        dm_buf_reset(&out);
        cr_assert_eq(dm_query_fetch(q, FETCH, 0, &out, &n, &done, &err), DM_OK, "%s", err.data);
        cr_assert(n <= FETCH);
        most = out.len > most ? out.len : most;
        const uint8_t *p = (const uint8_t *)out.data, *end = p + out.len;
        for (uint32_t r = 0; r < n; r++) {
            dm_rowbatch_value_t id, v;
            cr_assert(dm_rowbatch_read(&p, end, &id) && dm_rowbatch_read(&p, end, &v));
            sum += (uint64_t)id.i;
        }
        rows += n;
        fetches++;
    }
    cr_assert_eq(rows, N);
    cr_assert_eq(sum, (uint64_t)N * (N - 1) / 2);
    cr_assert_geq(fetches, N / FETCH);
    cr_assert_lt(most, (size_t)FETCH * 24, "a batch took %zu bytes", most); /* ~17 bytes a row */
    dm_query_close(&q);
    /* a byte bound ends a batch early */
    cr_assert_eq(dm_query_open(s_eng, sql, strlen(sql), &q, &err), DM_OK);
    uint32_t n;
    dm_buf_reset(&out);
    cr_assert_eq(dm_query_fetch(q, FETCH, 100, &out, &n, &done, &err), DM_OK);
    cr_assert(n >= 1 && n <= 10 && !done, "%u rows", n); /* rows of ~11 bytes */
    dm_query_close(&q);
    dm_buf_free(&out);
    dm_buf_free(&err);
}

Test(query, old_rows_read_null_in_fields_an_upgrade_added)
{
    const char *v1 = "      - {name: id, type: int, required: true}\n"
                     "      - {name: a, type: string}\n";
    s_product("d", "p", "1.0.0", "    primaryKey: id\n", v1);
    static const char *const old[] = {"{\"id\":1,\"a\":\"x\"}", "{\"id\":2}"};
    s_ingest("d/p", old, 2);
    char fields[512];
    snprintf(fields, sizeof fields, "%s%s", v1,
             "      - {name: b, type: int}\n      - {name: c, type: timestamp}\n"
             "      - {name: d, type: string}\n      - {name: e, type: boolean}\n"
             "      - {name: f, type: double}\n      - {name: g, type: uuid}\n"
             "      - {name: h, type: date}\n"); /* 9 fields: the null bitmap grows a byte */
    s_product("d", "p", "1.1.0", "    primaryKey: id\n", fields);
    static const char *const fresh[] = {"{\"id\":3,\"a\":\"y\",\"h\":\"2026-01-02\",\"b\":5}"};
    s_ingest("d/p", fresh, 1);
    char *got = s_run("SELECT * FROM d.p ORDER BY id");
    cr_assert_str_eq(got, "1|'x'|NULL|NULL|NULL|NULL|NULL|NULL|NULL\n"
                          "2|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL\n"
                          "3|'y'|5|NULL|NULL|NULL|NULL|NULL|'2026-01-02'\n");
    free(got);
}

/* ---- reused connections ---- */

Test(query, a_pooled_connection_never_serves_an_upgraded_product)
{
    const char *v1 = "      - {name: id, type: int, required: true}\n";
    s_product("d", "p", "1.0.0", "    primaryKey: id\n", v1);
    static const char *const rows[] = {"{\"id\":1}"};
    s_ingest("d/p", rows, 1);
    char *got = s_run("SELECT * FROM d.p"); /* leaves a connection in the pool */
    cr_assert_str_eq(got, "1\n");
    free(got);
    char fields[256];
    snprintf(fields, sizeof fields, "%s      - {name: extra, type: string}\n", v1);
    s_product("d", "p", "1.1.0", "    primaryKey: id\n", fields);
    got = s_run("SELECT * FROM d.p");
    cr_assert_str_eq(got, "1|NULL\n", "the old contract's table was reused");
    free(got);
}

Test(query, a_query_after_a_timeout_on_the_same_products_runs_normally)
{
    s_engine(300);
    s_orders();
    char *msg = NULL;
    cr_assert_eq(s_fetch_fail("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                              "SELECT count(*) FROM c, commerce.orders",
                              &msg),
                 DM_ERR_TIMEOUT);
    free(msg);
    char *got = s_run("SELECT count(*) FROM commerce.orders");
    cr_assert_str_eq(got, "6\n");
    free(got);
    got = s_run("SELECT count(*) FROM commerce.orders"); /* twice: the pooled one too */
    cr_assert_str_eq(got, "6\n");
    free(got);
}

Test(query, a_refusal_does_not_stick_to_a_reused_connection)
{
    s_orders();
    char *got = s_run("SELECT count(*) FROM commerce.orders");
    free(got);
    char *msg = s_fail("SELECT load_extension('x') FROM commerce.orders", DM_ERR_DENIED);
    free(msg);
    got = s_run("SELECT count(*) FROM commerce.orders");
    cr_assert_str_eq(got, "6\n");
    free(got);
}

/* ---- threads ---- */

/* Readers run back to back, with no pause: four threads keep the store's
 * reader-preferring lock held without a gap. Before new readers were
 * refused while the map grows, a resize waited minutes here (158 s). */
typedef struct {
    atomic_bool stop;
    atomic_int failures;
    atomic_long queries;
    atomic_long busy; /* refused while the map grew */
} s_race_t;

/* Counts orders again and again until told to stop; the count must never
 * go down (each query sees a later snapshot). */
static void *s_race_reader(void *arg)
{
    s_race_t *r = arg;
    const char *sql = "SELECT count(*), count(DISTINCT customerId) FROM commerce.orders "
                      "WHERE orderId >= '00000000-0000-4000-8000-000000000000'";
    int64_t last = 0;
    dm_buf_t err = DM_BUF_INIT, out = DM_BUF_INIT;
    while (!atomic_load(&r->stop)) {
        dm_query_t *q = NULL;
        uint32_t n = 0;
        bool done = false;
        dm_buf_reset(&out);
        dm_err rc = dm_query_open(s_eng, sql, strlen(sql), &q, &err);
        if (rc == DM_ERR_BUSY) {
            /* refused while the map grows: a client retries */
            atomic_fetch_add(&r->busy, 1);
            dm_buf_reset(&err);
            continue;
        }
        if (rc != DM_OK || dm_query_fetch(q, 10, 0, &out, &n, &done, &err) != DM_OK || n != 1) {
            atomic_fetch_add(&r->failures, 1);
            dm_query_close(&q);
            continue;
        }
        const uint8_t *p = (const uint8_t *)out.data;
        dm_rowbatch_value_t v;
        if (!dm_rowbatch_read(&p, p + out.len, &v) || v.i < last)
            atomic_fetch_add(&r->failures, 1);
        last = v.i;
        dm_query_close(&q);
        atomic_fetch_add(&r->queries, 1);
    }
    dm_buf_free(&err);
    dm_buf_free(&out);
    return NULL;
}

Test(query, threads_query_while_batches_commit_and_the_map_grows)
{
    enum { READERS = 4, BATCHES = 30, ROWS = 400 };
    s_orders();
    /* reopen the store with a 1 MiB map, so these batches make it grow */
    dm_query_engine_destroy(&s_eng);
    dm_store_destroy(&s_store);
    dm_store_opts_t opts = {.initial_map_bytes = (size_t)1 << 20};
    cr_assert_eq(dm_store_open(s_dir, &opts, &s_store, NULL), DM_OK);
    s_engine(0);
    size_t map0 = dm_store_map_size(s_store);
    s_race_t r = {0};
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        pthread_create(&t[i], NULL, s_race_reader, &r);
    static char text[ROWS][256];
    static const char *lines[ROWS];
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < ROWS; i++) {
            snprintf(text[i], sizeof text[i],
                     "{\"orderId\":\"%08x-0000-4000-8000-%012x\",\"customerId\":\"c%d\","
                     "\"note\":\"%0100d\"}", b + 1, i, i % 7, i); /* b + 1: no fixture key */
            lines[i] = text[i];
        }
        s_ingest("commerce/orders", lines, ROWS);
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&r.failures), 0);
    cr_assert_gt(atomic_load(&r.queries), READERS);
    cr_assert_gt(dm_store_map_size(s_store), map0);
    char *got = s_run("SELECT count(*) FROM commerce.orders");
    char want[32];
    snprintf(want, sizeof want, "%d\n", 6 + BATCHES * ROWS);
    cr_assert_str_eq(got, want);
    free(got);
}
