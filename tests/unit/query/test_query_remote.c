/* test_query_remote.c: federated query in the engine (issue 10). A
 * "relay" engine over its own store reads products a second, real
 * "owner" engine and store hold, through a dm_query_remote_t written here:
 * resolve gives the owner registry's canonical contract, open runs the
 * pushed SELECT with dm_query_open on the owner, next is dm_query_fetch.
 * Results equal native SQLite holding every table; the counters show what
 * was pushed; SQL literals read back as exactly the value. */
#include "query_test.h"
#include "remote_test.h"

#include <math.h>

#include "query/query_priv.h"
#include "query/query_remote.h"

TestSuite(query_remote, .timeout = 120);


static void s_fed_setup(void)
{
    s_setup(); /* the owner */
    s_orders();
    s_customers();
    s_more_customers();
    s_events();
    s_big();
    s_relay_up("test_query_relay");
}

static void s_fed_teardown(void) { s_relay_down(); }

/* A native database holding every table of both nodes. */
static sqlite3 *s_native_all(void)
{
    cr_assert_eq(sqlite3_open(":memory:", &s_nat), SQLITE_OK);
    s_native_copy(s_nat, "commerce", "orders");
    s_native_copy(s_nat, "identity", "customers");
    s_native_copy(s_nat, "logistics", "events");
    s_native_copy(s_nat, "big", "nums");
    s_on_relay(s_copy_relay);
    return s_nat;
}

static const char *const S_QUERIES[] = {
    "SELECT * FROM commerce.orders",
    "SELECT orderId, amount FROM commerce.orders WHERE status = 'paid'",
    "SELECT orderId FROM commerce.orders WHERE customerId = 'c1'",
    "SELECT orderId, amount FROM commerce.orders WHERE amount > 10",
    "SELECT orderId FROM commerce.orders WHERE amount >= 0 AND amount < 100",
    "SELECT orderId FROM commerce.orders WHERE amount = 42",
    "SELECT orderId, note FROM commerce.orders WHERE note IS NULL",
    "SELECT orderId, note FROM commerce.orders WHERE note IS NOT NULL",
    "SELECT orderId FROM commerce.orders WHERE note LIKE 'FI%'",
    "SELECT orderId FROM commerce.orders WHERE customerId LIKE 'c_'",
    "SELECT orderId, qty FROM commerce.orders WHERE qty IN (1, 3, -7, 'x', 2.5)",
    "SELECT orderId FROM commerce.orders WHERE qty = '1'",
    "SELECT orderId FROM commerce.orders WHERE qty = 1.0",
    "SELECT orderId FROM commerce.orders WHERE qty > 0.5",
    "SELECT orderId FROM commerce.orders WHERE gift = 1",
    "SELECT orderId FROM commerce.orders WHERE orderId = '3F1C2A9E-8B7D-4C6E-9F01-23456789ABCD'",
    "SELECT orderId FROM commerce.orders WHERE orderId = '3f1c2a9e-8b7d-4c6e-9f01-23456789abcd'",
    "SELECT orderId FROM commerce.orders WHERE orderId > 'c'",
    "SELECT orderId FROM commerce.orders WHERE day = '2026-11-24'",
    "SELECT orderId FROM commerce.orders WHERE ts > '2026-11-24'",
    "SELECT orderId FROM commerce.orders WHERE ts >= '2026-11-24T09:16:00.000000Z'",
    "SELECT orderId FROM commerce.orders WHERE ts < 5",
    "SELECT orderId FROM commerce.orders WHERE note = 'it''s \"quoted\" \xc3\xa9'",
    "SELECT orderId FROM commerce.orders WHERE amount = -1.25 OR qty = 0",
    "SELECT count(*) FROM commerce.orders WHERE amount IS NULL OR qty IS NULL",
    "SELECT status, count(*), sum(amount), max(ts) FROM commerce.orders GROUP BY status ORDER BY status",
    "SELECT orderId, amount FROM commerce.orders ORDER BY amount DESC, orderId",
    "SELECT orderId FROM commerce.orders ORDER BY orderId LIMIT 2",
    "SELECT orderId FROM commerce.orders ORDER BY orderId LIMIT 2 OFFSET 3",
    "SELECT orderId FROM commerce.orders LIMIT 100 OFFSET 4",
    "SELECT o.orderId, c.name, c.tier FROM commerce.orders o JOIN identity.customers c "
    "ON o.customerId = c.customerId WHERE o.status = 'paid'",
    "SELECT c.customerId, (SELECT count(*) FROM commerce.orders o WHERE o.customerId = "
    "c.customerId) FROM identity.customers c WHERE c.customerId < 'x0010'",
    "SELECT customerId, name FROM identity.customers WHERE customerId = 7",
    "SELECT customerId FROM identity.customers WHERE customerId IN ('c1', 'x0001', 7, NULL)",
    "SELECT customerId FROM identity.customers WHERE customerId > 'x0490' ORDER BY customerId",
    "SELECT count(*), sum(tier) FROM identity.customers WHERE tier IS NOT NULL",
    "SELECT * FROM logistics.events WHERE day = '2026-11-24' AND at < '2026-11-24T10:00:00.000000Z'",
    "SELECT * FROM logistics.events ORDER BY day, at LIMIT 3",
    "SELECT * FROM logistics.events WHERE day = 20261124",
    "SELECT l.orderNo, l.lineNo, n.x FROM commerce.lines l JOIN big.nums n ON n.n = l.orderNo "
    "WHERE l.lineNo = 3",
    "SELECT count(*) FROM big.nums WHERE n IN (SELECT orderNo FROM commerce.lines WHERE lineNo < 3)",
    "SELECT k, x FROM local.keys JOIN big.nums ON n = k + 1 WHERE k < 40",
    "SELECT count(*), sum(x) FROM big.nums",
    "SELECT n, s FROM big.nums WHERE s = 12 AND n < 100",
    "SELECT count(*) FROM big.nums n, commerce.lines l WHERE n.s < l.sku AND l.orderNo = 1 AND n.n < 50",
    "SELECT n FROM big.nums WHERE n BETWEEN 10 AND 14 OR n = 4999 ORDER BY n DESC",
    "SELECT n FROM big.nums WHERE x = 3 ORDER BY n LIMIT 5 OFFSET 2",
    "SELECT DISTINCT x FROM big.nums ORDER BY x",
    "SELECT * FROM logistics.events WHERE at = '2026-11-24T09:00:00Z'",
    "SELECT * FROM logistics.events WHERE at >= '2026-11-24T09:00:00.000000Z' AND "
    "at <= '2026-11-24T10:00:00.000000Z'",
    "SELECT * FROM logistics.events WHERE day IN ('2026-11-24', '1969-12-31', 5)",
    "SELECT e.what, o.orderId FROM commerce.orders o JOIN logistics.events e ON e.day = o.day",
    "SELECT o.orderId FROM commerce.orders o WHERE o.customerId IN "
    "(SELECT customerId FROM identity.customers WHERE tier >= 2)",
    "SELECT * FROM identity.customers WHERE name > 'N' AND name <= 'n9' ORDER BY name LIMIT 5",
    "SELECT c.customerId FROM identity.customers c JOIN big.nums n ON n.s = c.customerId",
    "SELECT n.n FROM big.nums n JOIN identity.customers c ON c.customerId = n.n WHERE n.n < 20",
    "SELECT n.n, c.customerId FROM big.nums n JOIN identity.customers c ON c.customerId > n.s "
    "WHERE n.n < 3 AND c.customerId < 'c9'",
    "SELECT n.n, c.customerId FROM big.nums n JOIN identity.customers c ON c.customerId < n.s "
    "WHERE n.n < 3",
    "SELECT l.orderNo, l.lineNo, n.s FROM commerce.lines l JOIN big.nums n ON n.n = l.price "
    "WHERE l.orderNo < 3",
    "SELECT n FROM big.nums WHERE n > 4990 OR x = 100 OR s IS NULL",
    "SELECT l.sku, c.name FROM commerce.lines l CROSS JOIN identity.customers c "
    "WHERE c.customerId = l.sku",
    "SELECT l.orderNo, c.name FROM commerce.lines l CROSS JOIN identity.customers c "
    "WHERE c.customerId = 'x' || substr('000' || l.orderNo, -4, 4)",
    "SELECT k.k, n.x FROM local.keys k CROSS JOIN big.nums n WHERE n.n = k.k / 2.0 AND k.k < 60",
    "SELECT k.k, n.n FROM local.keys k CROSS JOIN big.nums n WHERE n.s = k.k AND k.k < 30",
    "SELECT count(*), sum(n.n) FROM local.keys k CROSS JOIN big.nums n "
    "WHERE n.s = CAST(k.k AS TEXT) AND k.k < 100",
    "SELECT count(*), sum(n.x) FROM local.keys k CROSS JOIN big.nums n WHERE n.n = k.k",
};

Test(query_remote, results_equal_native_sqlite, .init = s_fed_setup, .fini = s_fed_teardown)
{
    sqlite3 *nat = s_native_all();
    for (size_t i = 0; i < S_NELEM(S_QUERIES); i++) {
        const char *sql = S_QUERIES[i];
        char *got = s_fed(sql, NULL), *want = s_run_native(nat, sql);
        if (!strstr(sql, "ORDER BY")) {
            s_sort_lines(got);
            s_sort_lines(want);
        }
        cr_assert_str_eq(got, want, "query %zu: %s\ngot:\n%s\nwant:\n%s", i, sql, got, want);
        free(got);
        free(want);
    }
    sqlite3_close(nat);
}

Test(query_remote, a_key_equality_moves_one_row, .init = s_fed_setup, .fini = s_fed_teardown)
{
    char *ex = NULL, *got = s_fed("SELECT n, x FROM big.nums WHERE n = 5", &ex);
    cr_assert_str_eq(got, "5|5\n");
    cr_assert_eq(s_seen.opens, 1);
    cr_assert(strstr(s_seen.last_sql, "\"n\" = 5"), "%s", s_seen.last_sql);
    cr_assert(strstr(ex, "big.nums: SELECT \"n\", \"x\" FROM \"big\".\"nums\" WHERE \"n\" = 5;"), "%s", ex);
    cr_assert(strstr(ex, ", 1 rows,"), "%s", ex);
    free(got);
    free(ex);
}

Test(query_remote, an_equality_no_row_meets_asks_nobody, .init = s_fed_setup,
     .fini = s_fed_teardown)
{
    char *got = s_fed("SELECT n FROM big.nums WHERE n = 'abc'", NULL);
    cr_assert_str_eq(got, "");
    cr_assert_eq(s_seen.opens, 0);
    free(got);
}

Test(query_remote, only_the_columns_used_are_asked_for, .init = s_fed_setup,
     .fini = s_fed_teardown)
{
    char *got = s_fed("SELECT count(*) FROM big.nums", NULL);
    cr_assert_str_eq(got, "5000\n");
    cr_assert(strstr(s_seen.last_sql, "SELECT \"n\" FROM"), "%s", s_seen.last_sql); /* the key */
    free(got);
    got = s_fed("SELECT sum(x) FROM big.nums WHERE s = '3'", NULL);
    cr_assert(strstr(s_seen.last_sql, "SELECT \"n\", \"x\", \"s\" FROM"), "%s", s_seen.last_sql);
    cr_assert(strstr(s_seen.last_sql, "\"s\" = '3'"), "%s", s_seen.last_sql);
    free(got);
}

Test(query_remote, order_by_and_limit_go_to_the_owner, .init = s_fed_setup,
     .fini = s_fed_teardown)
{
    char *ex = NULL, *got = s_fed("SELECT n FROM big.nums ORDER BY n DESC LIMIT 3 OFFSET 1", &ex);
    cr_assert_str_eq(got, "4998\n4997\n4996\n");
    cr_assert(strstr(s_seen.last_sql, "ORDER BY \"n\" DESC LIMIT 4"), "%s", s_seen.last_sql);
    cr_assert(strstr(ex, ", 4 rows,"), "%s", ex);
    free(got);
    free(ex);
}

/* A list of n keys 0, 2, 4, ... as SQL. */
static char *s_in_sql(const char *fmt, int n)
{
    dm_buf_t keys = DM_BUF_INIT, sql = DM_BUF_INIT;
    for (int i = 0; i < n; i++)
        dm_buf_printf(&keys, "%s%d", i ? ", " : "", 2 * i);
    dm_buf_printf(&sql, fmt, keys.data);
    dm_buf_free(&keys);
    return dm_buf_steal(&sql);
}

Test(query_remote, in_lists_go_in_batches, .init = s_fed_setup, .fini = s_fed_teardown)
{
    char *sql = s_in_sql("SELECT count(*), sum(x) FROM big.nums WHERE n IN (%s)", 1000);
    char *ex = NULL, *got = s_fed(sql, &ex);
    long sum = 0;
    for (int i = 0; i < 1000; i++)
        sum += 2 * i % 7;
    char want[32];
    snprintf(want, sizeof want, "1000|%ld\n", sum);
    cr_assert_str_eq(got, want);
    cr_assert_eq(s_seen.opens, (1000 + DM_QUERY_IN_BATCH - 1) / DM_QUERY_IN_BATCH);
    cr_assert(strstr(ex, ", 1000 rows,"), "%s", ex);
    free(sql);
    free(got);
    free(ex);
    memset(&s_seen, 0, sizeof s_seen);
    sql = s_in_sql("SELECT count(*) FROM big.nums WHERE n IN (%s)", 2400); /* 1200 exist */
    got = s_fed(sql, &ex);
    cr_assert_str_eq(got, "2400\n"); /* keys 0..4798, all held */
    cr_assert_eq(s_seen.opens, (2400 + DM_QUERY_IN_BATCH - 1) / DM_QUERY_IN_BATCH);
    free(sql);
    free(got);
    free(ex);
}

Test(query_remote, a_join_of_local_keys_moves_at_most_their_rows, .init = s_fed_setup,
     .fini = s_fed_teardown)
{
    char *ex = NULL;
    char *got = s_fed("SELECT count(*), sum(x) FROM big.nums WHERE n IN (SELECT k FROM local.keys)", &ex);
    sqlite3 *nat = s_native_all();
    char *want = s_run_native(nat, "SELECT count(*), sum(x) FROM big.nums WHERE n IN (SELECT k FROM local.keys)");
    cr_assert_str_eq(got, want);
    cr_assert_leq(s_seen.opens, (1000 + DM_QUERY_IN_BATCH - 1) / DM_QUERY_IN_BATCH, "%s", ex);
    cr_assert(strstr(ex, ", 1000 rows,"), "%s", ex);
    sqlite3_close(nat);
    free(got);
    free(want);
    free(ex);
}

Test(query_remote, repeated_probes_are_learned_once, .init = s_fed_setup,
     .fini = s_fed_teardown)
{
    /* commerce.lines: 50 orders of 20 lines; CROSS JOIN keeps it outside. */
    const char *sql = "SELECT count(*), sum(n.x) FROM commerce.lines l CROSS JOIN big.nums n "
                      "WHERE n.n = l.orderNo";
    char *ex = NULL, *got = s_fed(sql, &ex);
    sqlite3 *nat = s_native_all();
    char *want = s_run_native(nat, sql);
    cr_assert_str_eq(got, want);
    cr_assert_eq(s_seen.opens, 1, "%s", ex); /* the 50 keys in one batch */
    cr_assert(strstr(ex, "learned 50 keys, 1 batches"), "%s", ex);
    sqlite3_close(nat);
    free(got);
    free(want);
    free(ex);
}

Test(query_remote, a_failing_owner_is_named, .init = s_fed_setup, .fini = s_fed_teardown)
{
    s_seen.fail_open = true;
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT;
    const char *sql = "SELECT * FROM big.nums WHERE n = 3";
    cr_assert_eq(dm_query_open_fed(r_eng, sql, strlen(sql), NULL, &s_remote, &q, &err), DM_OK);
    uint32_t n;
    bool done = false;
    dm_err rc = dm_query_fetch(q, 100, 0, &batch, &n, &done, &err);
    cr_assert_eq(rc, DM_ERR_NET, "%s", dm_err_str(rc));
    cr_assert(strstr(err.data, "big.nums: owner node 3f2a... is dead since 12:01:03"), "%s", err.data);
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
    /* a query that touches no unavailable product is unaffected */
    char *got = s_fed("SELECT count(*) FROM commerce.lines", NULL);
    cr_assert_str_eq(got, "1000\n");
    free(got);
}

static int s_decided;

static dm_err s_decide_local(void *ctx, const char *domain, const char *product,
                             dm_policy_decision_t *out, dm_buf_t *why)
{
    (void)ctx;
    (void)why;
    cr_assert_str_eq(domain, "commerce");
    cr_assert_str_eq(product, "lines", "asked about %s.%s", domain, product);
    s_decided++;
    out->allow = true;
    return DM_OK;
}

Test(query_remote, the_relay_decides_only_its_own_products, .init = s_fed_setup,
     .fini = s_fed_teardown)
{
    dm_query_access_t access = {s_decide_local, NULL, NULL};
    const char *sql = "SELECT count(*) FROM commerce.lines l JOIN commerce.orders o "
                      "ON o.qty = l.lineNo";
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT;
    cr_assert_eq(dm_query_open_fed(r_eng, sql, strlen(sql), &access, &s_remote, &q, &err), DM_OK,
                 "%s", err.data);
    cr_assert_eq(s_decided, 1);
    dm_query_close(&q);
    /* neither local nor remote: the "did you mean" of today */
    sql = "SELECT * FROM commerce.lnes";
    cr_assert_eq(dm_query_open_fed(r_eng, sql, strlen(sql), NULL, &s_remote, &q, &err),
                 DM_ERR_NOTFOUND);
    cr_assert(strstr(err.data, "did you mean"), "%s", err.data);
    dm_buf_free(&err);
}

static void s_many_domains(void)
{
    for (int i = 0; i < DM_QUERY_MAX_DOMAINS; i++) {
        char d[16];
        snprintf(d, sizeof d, "d%d", i);
        s_product(d, "t", "1.0.0", "    primaryKey: a\n", "      - {name: a, type: int, required: true}\n");
    }
}

Test(query_remote, remote_domains_count_toward_the_cap, .init = s_fed_setup,
     .fini = s_fed_teardown)
{
    s_many_domains(); /* on the owner */
    dm_buf_t sql = DM_BUF_INIT, err = DM_BUF_INIT;
    dm_buf_puts(&sql, "SELECT count(*) FROM commerce.lines");
    for (int i = 0; i < DM_QUERY_MAX_DOMAINS; i++)
        dm_buf_printf(&sql, ", d%d.t", i);
    dm_query_t *q = NULL;
    cr_assert_eq(dm_query_open_fed(r_eng, sql.data, sql.len, NULL, &s_remote, &q, &err),
                 DM_ERR_INVALID);
    cr_assert(strstr(err.data, "domains"), "%s", err.data);
    dm_buf_free(&sql);
    dm_buf_free(&err);
}

/* Evaluates expr with SQLite, renders it, and reads the literal back. */
static void s_round_trip(sqlite3 *db, const char *expr, bool want_ok)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s", expr);
    sqlite3_stmt *a, *b;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &a, NULL), SQLITE_OK, "%s", sql);
    cr_assert_eq(sqlite3_step(a), SQLITE_ROW);
    sqlite3_value *v = sqlite3_column_value(a, 0);
    dm_buf_t lit = DM_BUF_INIT, back = DM_BUF_INIT;
    bool ok = dm_query__sql_literal(v, &lit);
    cr_assert_eq(ok, want_ok, "%s -> %s", expr, lit.data ? lit.data : "(nothing)");
    if (ok) {
        dm_buf_printf(&back, "SELECT %s", lit.data);
        cr_assert_eq(sqlite3_prepare_v2(db, back.data, -1, &b, NULL), SQLITE_OK, "%s", back.data);
        cr_assert_eq(sqlite3_step(b), SQLITE_ROW);
        int t = sqlite3_column_type(a, 0);
        cr_assert_eq(sqlite3_column_type(b, 0), t, "%s -> %s: type", expr, lit.data);
        if (t == SQLITE_FLOAT) {
            double x = sqlite3_column_double(a, 0), y = sqlite3_column_double(b, 0);
            cr_assert_eq(memcmp(&x, &y, sizeof x), 0, "%s -> %s: %.17g", expr, lit.data, y);
        } else if (t == SQLITE_INTEGER) {
            cr_assert_eq(sqlite3_column_int64(b, 0), sqlite3_column_int64(a, 0), "%s", expr);
        } else if (t != SQLITE_NULL) {
            int n = sqlite3_column_bytes(a, 0);
            cr_assert_eq(sqlite3_column_bytes(b, 0), n, "%s -> %s", expr, lit.data);
            cr_assert(n == 0 || !memcmp(sqlite3_column_blob(b, 0), sqlite3_column_blob(a, 0), (size_t)n));
        }
        sqlite3_finalize(b);
    }
    sqlite3_finalize(a);
    dm_buf_free(&lit);
    dm_buf_free(&back);
}

Test(query_remote, literals_read_back_exactly)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
    static const char *const ok[] = {
        "0", "-1", "9223372036854775807", "-9223372036854775807 - 1", "1.0", "-0.0", "0.1",
        "1e308 * 10", "-1e308 * 10", "123456789.123456789", "2.5e-310", "1e300", "-3.75",
        "4503599627370497.0", "'it''s'", "''", "'\xc3\xa9t\xc3\xa9'", "x'00ff10'", "x''", "NULL",
        "'a\"b'", "'--'", "1/3.0"};
    for (size_t i = 0; i < S_NELEM(ok); i++)
        s_round_trip(db, ok[i], true);
    s_round_trip(db, "'a' || char(0) || 'b'", false);
    sqlite3_close(db);
}

Test(query_remote, a_cancel_reaches_the_remote_scan, .init = s_fed_setup, .fini = s_fed_teardown)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT;
    const char *sql = "SELECT n FROM big.nums";
    cr_assert_eq(dm_query_open_fed(r_eng, sql, strlen(sql), NULL, &s_remote, &q, &err), DM_OK);
    uint32_t n;
    bool done = false;
    cr_assert_eq(dm_query_fetch(q, 1, 0, &batch, &n, &done, &err), DM_OK, "%s", err.data);
    cr_assert_eq(n, 1);
    int nexts = s_seen.nexts;
    dm_query_cancel(q);
    dm_err rc = DM_OK;
    for (int i = 0; i < S_BIG && rc == DM_OK && !done; i++)
        rc = dm_query_fetch(q, 1, 0, &batch, &n, &done, &err);
    cr_assert_eq(rc, DM_ERR_TIMEOUT, "%s", dm_err_str(rc));
    cr_assert(strstr(err.data, "cancelled"), "%s", err.data);
    cr_assert_leq(s_seen.nexts, nexts + 1); /* no batch asked for after the cancel */
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
}

/* An owner that announces more rows than its batch holds. */
static dm_err s_rnext_lying(dm_query_rscan_t *s, int64_t deadline_ns, const atomic_bool *cancel,
                            dm_buf_t *out, uint32_t *nrows, bool *done, dm_buf_t *why)
{
    dm_err rc = s_rnext(s, deadline_ns, cancel, out, nrows, done, why);
    *nrows += 1;
    return rc;
}

Test(query_remote, a_batch_that_does_not_match_its_count_is_refused, .init = s_fed_setup,
     .fini = s_fed_teardown)
{
    dm_query_remote_t lying = s_remote;
    lying.next = s_rnext_lying;
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT;
    const char *sql = "SELECT n FROM big.nums WHERE n < 10";
    cr_assert_eq(dm_query_open_fed(r_eng, sql, strlen(sql), NULL, &lying, &q, &err), DM_OK);
    uint32_t n;
    bool done = false;
    dm_err rc = dm_query_fetch(q, 100, 0, &batch, &n, &done, &err);
    cr_assert_eq(rc, DM_ERR_PROTO, "%s", dm_err_str(rc));
    cr_assert(strstr(err.data, "big.nums: the owner announced 1 more rows"), "%s", err.data);
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
}

/* Not an assertion of speed: prints what a point lookup through a remote
 * table costs in the engine (owner in-process), for the notes. */
Test(query_remote, point_lookup_cost, .init = s_fed_setup, .fini = s_fed_teardown)
{
    enum { N = 2000 };
    static int64_t ns[N];
    char sql[96];
    for (int i = 0; i < N; i++) {
        snprintf(sql, sizeof sql, "SELECT n, x, s FROM big.nums WHERE n = %d", (i * 7919) % S_BIG);
        int64_t t0 = dm_clock_mono_ns();
        char *got = s_fed(sql, NULL);
        ns[i] = dm_clock_mono_ns() - t0;
        cr_assert(got[0]);
        free(got);
    }
    int64_t local = dm_clock_mono_ns();
    for (int i = 0; i < N; i++) {
        snprintf(sql, sizeof sql, "SELECT n, x, s FROM big.nums WHERE n = %d", (i * 7919) % S_BIG);
        free(s_run(sql));
    }
    local = (dm_clock_mono_ns() - local) / N;
    for (int i = 1; i < N; i++) /* insertion sort: small N */
        for (int j = i; j > 0 && ns[j - 1] > ns[j]; j--) {
            int64_t t = ns[j];
            ns[j] = ns[j - 1];
            ns[j - 1] = t;
        }
    cr_log_info("remote point lookup in the engine: p50 %lld us, p99 %lld us (local mean %lld us)",
                (long long)ns[N / 2] / 1000, (long long)ns[N * 99 / 100] / 1000,
                (long long)local / 1000);
    cr_assert_gt(ns[N / 2], 0);
}

Test(query_remote, a_pooled_connection_keeps_nothing_of_the_last_query, .init = s_fed_setup,
     .fini = s_fed_teardown)
{
    const char *sql = "SELECT x FROM big.nums WHERE n = 12";
    char *ex1 = NULL, *ex2 = NULL, *a = s_fed(sql, &ex1), *b = s_fed(sql, &ex2);
    cr_assert_str_eq(a, "5\n");
    cr_assert_str_eq(b, "5\n");
    cr_assert_str_eq(ex1, ex2); /* counters start again */
    cr_assert(strstr(ex2, "1 scans, 1 round trips, 1 rows"), "%s", ex2); /* rows came with the open */
    cr_assert_eq(s_seen.opens, 2); /* the probe cache went with the first query */
    free(a);
    free(b);
    free(ex1);
    free(ex2);
}

Test(query_remote, many_probes_go_in_one_batch, .init = s_fed_setup,
     .fini = s_fed_teardown)
{
    const char *sql = "SELECT count(*), sum(n.x) FROM local.keys k CROSS JOIN big.nums n "
                      "WHERE n.n = k.k + 1";
    char *ex = NULL, *got = s_fed(sql, &ex);
    sqlite3 *nat = s_native_all();
    char *want = s_run_native(nat, sql);
    cr_assert_str_eq(got, want);
    cr_assert_eq(s_seen.opens, 1, "%s", ex); /* keys 1..1999 step 2: not dense enough for a range */
    cr_assert(strstr(ex, "1 round trips, 1000 rows"), "%s", ex);
    cr_assert(strstr(ex, "learned 1000 keys, 1 batches, 0 key ranges, 1000 probes from the learned keys"),
              "%s", ex);
    sqlite3_close(nat);
    free(got);
    free(want);
    free(ex);
}
