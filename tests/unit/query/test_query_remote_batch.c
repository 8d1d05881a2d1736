/* test_query_remote_batch.c: a join's probes of a remote table batched by
 * a dry run (query_remote_learn.c). The relay and owner engines of
 * remote_test.h; results equal native SQLite holding every table, and the
 * counters of explain show how many keys, batches, round trips and rows. */
#include "query_test.h"
#include "remote_test.h"

#include <inttypes.h>

#include "query/query_priv.h"
#include "query/query_remote.h"

TestSuite(query_remote_batch, .timeout = 120);

static void s_setup_batch(void)
{
    s_setup(); /* the owner */
    s_customers();
    s_more_customers();
    s_big();
    s_relay_up("test_query_batch");
}

static void s_teardown_batch(void) { s_relay_down(); }

/* A native database holding every table of both nodes. */
static sqlite3 *s_native_all(void)
{
    cr_assert_eq(sqlite3_open(":memory:", &s_nat), SQLITE_OK);
    s_native_copy(s_nat, "identity", "customers");
    s_native_copy(s_nat, "big", "nums");
    s_on_relay(s_copy_relay);
    return s_nat;
}

/* The counters of table's explain line: round trips and rows moved. */
static void s_counts(const char *ex, const char *table, uint64_t *trips, uint64_t *rows)
{
    const char *line = strstr(ex, table);
    cr_assert_not_null(line, "%s", ex);
    const char *at = strstr(line, " scans, ");
    cr_assert_not_null(at, "%s", ex);
    unsigned long long t = 0, r = 0;
    cr_assert_eq(sscanf(at, " scans, %llu round trips, %llu rows", &t, &r), 2, "%s", ex);
    *trips = t;
    *rows = r;
}

static const char *const S_JOINS[] = {
    /* both orders, the planner's choice and forced */
    "SELECT k.k, n.x, n.s FROM local.keys k JOIN big.nums n ON n.n = k.k",
    "SELECT k.k, n.x, n.s FROM big.nums n JOIN local.keys k ON n.n = k.k",
    "SELECT k.k, n.x FROM local.keys k CROSS JOIN big.nums n WHERE n.n = k.k + 3001",
    "SELECT k.k, n.x FROM big.nums n, local.keys k WHERE k.k = n.n AND n.x = 2",
    /* LEFT JOIN: keys past 4999 have no row */
    "SELECT k.k, n.x FROM local.keys k LEFT JOIN big.nums n ON n.n = k.k + 4000",
    "SELECT k.k, n.x FROM local.keys k LEFT JOIN big.nums n ON n.n = k.k + 4000 AND n.x > 3",
    "SELECT count(*), count(n.n), sum(n.x) FROM local.keys k LEFT JOIN big.nums n ON n.n = k.k * 3",
    /* LIMIT and OFFSET */
    "SELECT k.k, n.s FROM local.keys k JOIN big.nums n ON n.n = k.k ORDER BY k.k LIMIT 7 OFFSET 3",
    "SELECT k.k, n.s FROM local.keys k JOIN big.nums n ON n.n = k.k * 2 ORDER BY k.k DESC LIMIT 5",
    "SELECT n.x, count(*) FROM local.keys k JOIN big.nums n ON n.n = k.k GROUP BY n.x "
    "ORDER BY n.x LIMIT 3",
    /* correlated subqueries */
    "SELECT k.k, (SELECT n.s FROM big.nums n WHERE n.n = k.k * 3) FROM local.keys k WHERE k.k < 3400",
    "SELECT count(*) FROM local.keys k WHERE EXISTS (SELECT 1 FROM big.nums n WHERE n.n = k.k + 1 "
    "AND n.x = 3)",
    "SELECT k.k FROM local.keys k WHERE k.k > (SELECT n.x * 100 FROM big.nums n WHERE n.n = k.k)",
    "SELECT l.orderNo, l.lineNo, (SELECT count(*) FROM big.nums n WHERE n.n = l.orderNo * 97) "
    "FROM commerce.lines l WHERE l.lineNo < 4",
    /* three tables, two remote: the second's keys come from the first's rows */
    "SELECT k.k, n.x, c.name FROM local.keys k CROSS JOIN big.nums n CROSS JOIN identity.customers c "
    "WHERE n.n = k.k AND c.customerId = 'x' || substr('0000' || (n.n % 500), -4, 4)",
    "SELECT c.tier, count(*), sum(n.x) FROM local.keys k JOIN big.nums n ON n.n = k.k + 1 "
    "JOIN identity.customers c ON c.customerId = 'x' || substr('0000' || (n.n / 4), -4, 4) "
    "GROUP BY c.tier ORDER BY c.tier",
    "SELECT l.sku, c.name, n.x FROM commerce.lines l JOIN identity.customers c ON c.customerId = "
    "'x' || substr('000' || l.orderNo, -4, 4) JOIN big.nums n ON n.n = c.tier * 1000 + l.lineNo",
    /* values of other types than the key: text, reals, NULL */
    "SELECT k.k, n.n FROM local.keys k CROSS JOIN big.nums n WHERE n.n = CAST(k.k AS TEXT) AND k.k < 50",
    "SELECT k.k, n.x FROM local.keys k CROSS JOIN big.nums n WHERE n.n = k.k / 4.0",
    "SELECT k.k, n.n FROM local.keys k CROSS JOIN big.nums n WHERE n.s = k.k % 20",
    "SELECT k.k, n.n FROM local.keys k LEFT JOIN big.nums n ON n.n = NULLIF(k.k % 10, 0) "
    "WHERE k.k < 100",
    /* both sides remote */
    "SELECT c.customerId, n.x FROM identity.customers c CROSS JOIN big.nums n WHERE c.tier = 2 AND "
    "n.n = CAST(substr(c.customerId, 2) AS INTEGER) * 7",
    /* filters on the remote table go with every batch */
    "SELECT k.k, n.s FROM local.keys k JOIN big.nums n ON n.n = k.k WHERE n.x = 3",
    "SELECT k.k FROM local.keys k JOIN big.nums n ON n.n = k.k WHERE n.x >= 5 AND n.s < '5'",
    "SELECT k.k, n.s FROM local.keys k JOIN big.nums n ON n.n = k.k AND n.s IN ('1', '2')",
    "SELECT k.k, n.x FROM local.keys k LEFT JOIN big.nums n ON n.n = k.k + 1 AND n.x = 4 "
    "WHERE k.k < 200",
    /* dense keys: one key range */
    "SELECT count(*), sum(n.x) FROM local.keys k CROSS JOIN big.nums n WHERE n.n = k.k / 2",
};

Test(query_remote_batch, joins_equal_native_sqlite, .init = s_setup_batch, .fini = s_teardown_batch)
{
    sqlite3 *nat = s_native_all();
    for (size_t i = 0; i < S_NELEM(S_JOINS); i++) {
        const char *sql = S_JOINS[i];
        char *ex = NULL, *got = s_fed(sql, &ex), *want = s_run_native(nat, sql);
        if (!strstr(sql, "ORDER BY")) {
            s_sort_lines(got);
            s_sort_lines(want);
        }
        cr_assert_str_eq(got, want, "query %zu: %s\n%s\ngot:\n%s\nwant:\n%s", i, sql, ex, got, want);
        free(got);
        free(want);
        free(ex);
    }
    sqlite3_close(nat);
}

/* huge.items on the owner: id 0..S_HUGE-1, v = id * 7 % 1000; ingested in
 * large batches. */
static void s_huge(void)
{
    enum { CHUNK = 100000 };
    s_product("huge", "items", "1.0.0", "    primaryKey: id\n",
              "      - {name: id, type: int, required: true}\n"
              "      - {name: v, type: int, required: true}\n");
    static char text[CHUNK][40];
    static const char *lines[CHUNK];
    for (int at = 0; at < S_HUGE; at += CHUNK) {
        for (int i = 0; i < CHUNK; i++) {
            snprintf(text[i], sizeof text[i], "{\"id\":%d,\"v\":%d}", at + i, (at + i) * 7 % 1000);
            lines[i] = text[i];
        }
        s_ingest("huge/items", lines, CHUNK);
    }
}

/* The acceptance of issue 10: 1,000 local keys against a 1,000,000-row
 * remote product (S_HUGE) move at most 1,000 rows in ceil(1000 / batch)
 * round trips. Keys 0..1998 step 2: too sparse for a range, so IN batches. */
Test(query_remote_batch, a_thousand_keys_against_a_million_rows_take_one_batch,
     .init = s_setup_batch, .fini = s_teardown_batch)
{
    int64_t t0 = dm_clock_mono_ns();
    s_huge();
    int64_t t1 = dm_clock_mono_ns();
    const char *sql = "SELECT count(*), sum(h.v) FROM local.keys k JOIN huge.items h ON h.id = k.k";
    char *ex = NULL, *got = s_fed(sql, &ex);
    int64_t t2 = dm_clock_mono_ns();
    long long sum = 0;
    for (int i = 0; i < 1000; i++)
        sum += (2 * i) * 7 % 1000;
    char want[64];
    snprintf(want, sizeof want, "1000|%lld\n", sum);
    cr_assert_str_eq(got, want, "%s", ex);
    uint64_t trips, rows;
    s_counts(ex, "huge.items", &trips, &rows);
    cr_assert_leq(rows, 1000, "%s", ex);
    cr_assert_leq(trips, (1000 + DM_QUERY_IN_BATCH - 1) / DM_QUERY_IN_BATCH, "%s", ex);
    cr_assert(strstr(ex, "learned 1000 keys, 1 batches, 0 key ranges"), "%s", ex);
    cr_assert_eq(s_seen.opens, 1);
    cr_log_info("1,000 keys against %d remote rows: ingest %lld ms, query %lld ms, %llu round "
                "trips, %llu rows",
                S_HUGE, (long long)(t1 - t0) / 1000000, (long long)(t2 - t1) / 1000000,
                (unsigned long long)trips, (unsigned long long)rows);
    free(got);
    free(ex);
}

Test(query_remote_batch, dense_keys_go_as_one_range, .init = s_setup_batch,
     .fini = s_teardown_batch)
{
    const char *sql = "SELECT count(*), sum(n.x) FROM local.keys k CROSS JOIN big.nums n WHERE n.n = k.k / 2";
    char *ex = NULL, *got = s_fed(sql, &ex);
    sqlite3 *nat = s_native_all();
    char *want = s_run_native(nat, sql);
    cr_assert_str_eq(got, want);
    uint64_t trips, rows;
    s_counts(ex, "big.nums", &trips, &rows);
    cr_assert(strstr(ex, "BETWEEN 0 AND 999"), "%s", ex);
    cr_assert(strstr(ex, "learned 1000 keys, 0 batches, 1 key ranges"), "%s", ex);
    cr_assert_eq(rows, 1000, "%s", ex);
    cr_assert_eq(trips, 1, "%s", ex);
    sqlite3_close(nat);
    free(got);
    free(want);
    free(ex);
}

Test(query_remote_batch, a_second_remote_table_is_learned_in_a_second_round,
     .init = s_setup_batch, .fini = s_teardown_batch)
{
    const char *sql = "SELECT count(*), sum(n.x), count(c.name) FROM local.keys k CROSS JOIN big.nums n "
                      "CROSS JOIN identity.customers c WHERE n.n = k.k AND "
                      "c.customerId = 'x' || substr('0000' || (n.n % 500), -4, 4)";
    char *ex = NULL, *got = s_fed(sql, &ex);
    sqlite3 *nat = s_native_all();
    char *want = s_run_native(nat, sql);
    cr_assert_str_eq(got, want);
    cr_assert(strstr(ex, "big.nums") && strstr(ex, "learned 1000 keys, 1 batches"), "%s", ex);
    cr_assert(strstr(ex, "learned 250 keys, 1 batches"), "%s", ex); /* even n % 500 */
    cr_assert_eq(s_seen.opens, 2, "%s", ex);
    sqlite3_close(nat);
    free(got);
    free(want);
    free(ex);
}

Test(query_remote_batch, a_limit_learns_one_batch_at_most, .init = s_setup_batch,
     .fini = s_teardown_batch)
{
    /* 2,500 distinct keys; with LIMIT the dry run stops after one batch */
    const char *sql = "SELECT l.orderNo, n.x FROM local.keys k CROSS JOIN commerce.lines l "
                      "CROSS JOIN big.nums n WHERE n.n = k.k + l.lineNo AND l.orderNo = 1 LIMIT 5";
    char *ex = NULL, *got = s_fed(sql, &ex);
    cr_assert_eq(strlen(got) > 0, true);
    const char *at = strstr(ex, "learned ");
    unsigned long long learned = 0;
    cr_assert(at && sscanf(at, "learned %llu keys", &learned) == 1, "%s", ex);
    cr_assert_leq(learned, DM_QUERY_IN_BATCH, "%s", ex);
    cr_assert_leq(s_seen.opens, 1 + 5, "%s", ex);
    free(got);
    free(ex);
}

Test(query_remote_batch, no_dry_run_without_a_probe, .init = s_setup_batch,
     .fini = s_teardown_batch)
{
    char *ex = NULL, *got = s_fed("SELECT count(*), sum(x) FROM big.nums WHERE n < 100", &ex);
    cr_assert_str_eq(got, "100|295\n"); /* 14 cycles of 0..6, then 0 and 1 */
    cr_assert_null(strstr(ex, "learned"), "%s", ex);
    cr_assert_eq(s_seen.opens, 1, "%s", ex);
    free(got);
    free(ex);
}

Test(query_remote_batch, a_failing_owner_in_the_dry_run_is_named, .init = s_setup_batch,
     .fini = s_teardown_batch)
{
    s_seen.fail_open = true;
    const char *sql = "SELECT k.k, n.x FROM local.keys k JOIN big.nums n ON n.n = k.k";
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT;
    cr_assert_eq(dm_query_open_fed(r_eng, sql, strlen(sql), NULL, &s_remote, &q, &err), DM_OK);
    uint32_t n;
    bool done = false;
    dm_err rc = dm_query_fetch(q, 100, 0, &batch, &n, &done, &err);
    cr_assert_eq(rc, DM_ERR_NET, "%s", dm_err_str(rc));
    cr_assert(strstr(err.data, "big.nums: owner node 3f2a... is dead since 12:01:03"), "%s", err.data);
    cr_assert(done);
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
}

Test(query_remote_batch, a_cancel_before_the_dry_run_stops_it, .init = s_setup_batch,
     .fini = s_teardown_batch)
{
    const char *sql = "SELECT k.k, n.x FROM local.keys k JOIN big.nums n ON n.n = k.k";
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT;
    cr_assert_eq(dm_query_open_fed(r_eng, sql, strlen(sql), NULL, &s_remote, &q, &err), DM_OK);
    dm_query_cancel(q);
    uint32_t n;
    bool done = false;
    dm_err rc = dm_query_fetch(q, 100, 0, &batch, &n, &done, &err);
    cr_assert_eq(rc, DM_ERR_TIMEOUT, "%s", dm_err_str(rc));
    cr_assert(strstr(err.data, "cancelled"), "%s", err.data);
    cr_assert_eq(s_seen.opens, 0); /* nothing fetched for the learned keys */
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
}

Test(query_remote_batch, a_filter_on_the_remote_table_goes_with_the_batch, .init = s_setup_batch,
     .fini = s_teardown_batch)
{
    const char *sql = "SELECT count(*), sum(n.n) FROM local.keys k CROSS JOIN big.nums n "
                      "WHERE n.n = k.k AND n.x = 3";
    char *ex = NULL, *got = s_fed(sql, &ex);
    sqlite3 *nat = s_native_all();
    char *want = s_run_native(nat, sql);
    cr_assert_str_eq(got, want);
    cr_assert(strstr(ex, "WHERE \"x\" = 3 AND \"n\" IN (0, 2, 4,"), "%s", ex);
    cr_assert(strstr(ex, "learned 1000 keys, 1 batches"), "%s", ex);
    uint64_t trips, rows;
    s_counts(ex, "big.nums", &trips, &rows);
    cr_assert_eq(trips, 1, "%s", ex);
    cr_assert_leq(rows, 1000 / 7 + 1, "%s", ex); /* only the rows with x = 3 */
    sqlite3_close(nat);
    free(got);
    free(want);
    free(ex);
}

Test(query_remote_batch, keys_past_the_budget_read_a_small_table_whole, .init = s_setup_batch,
     .fini = s_teardown_batch)
{
    /* LIMIT: one batch learned of ~1,020 keys; the rest miss, and after
     * DM_QUERY_REMOTE_SNAP_AFTER misses big.nums (5,000 rows) is read whole */
    const char *sql = "SELECT count(*), sum(x) FROM (SELECT n.x FROM local.keys k CROSS JOIN "
                      "commerce.lines l CROSS JOIN big.nums n WHERE n.n = k.k + l.lineNo AND "
                      "l.orderNo = 1 LIMIT 30000)";
    char *ex = NULL, *got = s_fed(sql, &ex);
    sqlite3 *nat = s_native_all();
    char *want = s_run_native(nat, sql);
    cr_assert_str_eq(got, want);
    cr_assert(strstr(ex, "learned 1000 keys"), "%s", ex);
    cr_assert(strstr(ex, "read whole once (5000 rows)"), "%s", ex);
    cr_assert_leq(s_seen.opens, 1 + DM_QUERY_REMOTE_SNAP_AFTER, "%s", ex);
    sqlite3_close(nat);
    free(got);
    free(want);
    free(ex);
}

Test(query_remote_batch, an_outer_remote_scan_is_read_once, .init = s_setup_batch,
     .fini = s_teardown_batch)
{
    const char *sql = "SELECT count(*), sum(n.x) FROM identity.customers c CROSS JOIN big.nums n "
                      "WHERE c.tier = 2 AND n.n = CAST(substr(c.customerId, 2) AS INTEGER) * 7";
    char *ex = NULL, *got = s_fed(sql, &ex);
    sqlite3 *nat = s_native_all();
    char *want = s_run_native(nat, sql);
    cr_assert_str_eq(got, want);
    /* the customers' scan ran in the dry run and came from the probe cache after */
    cr_assert_eq(s_seen.opens, 2, "%s", ex);
    cr_assert(strstr(ex, "learned 125 keys, 1 batches"), "%s", ex);
    sqlite3_close(nat);
    free(got);
    free(want);
    free(ex);
}

/* Joins built from random parts (a fixed seed, so a failure repeats):
 * join kinds, key expressions of several types, filters on either side,
 * LIMIT; every result equals native SQLite's. */
Test(query_remote_batch, random_joins_equal_native_sqlite, .init = s_setup_batch,
     .fini = s_teardown_batch)
{
    static const char *const kinds[] = {"JOIN", "LEFT JOIN", "CROSS JOIN"};
    static const char *const keys[] = {"k.k", "k.k + %d", "k.k * %d", "k.k / %d", "k.k / %d.0",
                                       "CAST(k.k + %d AS TEXT)", "k.k %% %d", "NULLIF(k.k, %d)"};
    static const char *const filters[] = {"", " AND n.x = %d", " AND n.x > %d", " AND n.s = '%d'",
                                          " AND n.s < '%d'", " AND n.x IN (%d, 1)"};
    sqlite3 *nat = s_native_all();
    unsigned seed = 20261201;
    int batched = 0;
    for (int i = 0; i < 120; i++) {
        char key[64], filter[64], sql[512];
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        int a = (int)(r % 9) + 1, b = (int)(r / 9 % 7), lim = (int)(r / 63 % 40);
        snprintf(key, sizeof key, keys[r % S_NELEM(keys)], a);
        snprintf(filter, sizeof filter, filters[(r >> 4) % S_NELEM(filters)], b);
        const char *kind = kinds[(r >> 9) % S_NELEM(kinds)];
        bool ordered = lim % 2 == 0, limited = ordered && (r >> 12) % 3 == 0;
        snprintf(sql, sizeof sql,
                 "SELECT k.k, n.n, n.x, n.s FROM local.keys k %s big.nums n %s n.n = %s%s "
                 "%s k.k < %d%s%s",
                 kind, strcmp(kind, "CROSS JOIN") ? "ON" : "WHERE", key, filter,
                 strcmp(kind, "CROSS JOIN") ? "WHERE" : "AND", 200 + (int)(r % 1800),
                 ordered ? " ORDER BY k.k, n.n" : "", limited ? " LIMIT 10 OFFSET 3" : "");
        char *ex = NULL, *got = s_fed(sql, &ex), *want = s_run_native(nat, sql);
        if (!ordered) { /* compared as sets */
            s_sort_lines(got);
            s_sort_lines(want);
        }
        cr_assert_str_eq(got, want, "query %d: %s\n%s", i, sql, ex);
        batched += strstr(ex, "learned") != NULL;
        free(got);
        free(want);
        free(ex);
    }
    cr_log_info("%d of 120 random joins batched their probes", batched);
    cr_assert_gt(batched, 60); /* the parts mostly make probes the dry run learns */
    sqlite3_close(nat);
}
