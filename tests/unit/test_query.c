/* test_query.c: the SQL engine: virtual tables over products (pushdown,
 * results equal to a native SQLite table), the sandbox's refusals (each
 * followed by a query that still works), read-your-writes and streaming.
 *
 * Each test makes its own store in a temp dir, registers products from
 * YAML text in the store and a registry, ingests NDJSON lines through the
 * real validator and dm_store_commit_batch, and queries through the public
 * API. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "contract.h"
#include "query.h"
#include "registry.h"
#include "schema.h"
#include "store.h"

#define S_BATCH_ROWS 1000

static char s_dir[PATH_MAX];
static dm_store_t *s_store;
static dm_registry_t *s_reg;
static dm_query_engine_t *s_eng;

static void s_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[PATH_MAX + 300];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

static void s_engine(int64_t timeout_ms)
{
    dm_query_engine_destroy(&s_eng);
    dm_query_limits_t l = {.timeout_ms = timeout_ms};
    cr_assert_eq(dm_query_engine_new(s_store, s_reg, &l, &s_eng), DM_OK);
}

static void s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/dm_test_query_XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store), DM_OK);
    cr_assert_eq(dm_registry_new(&s_reg), DM_OK);
    s_engine(0);
}

static void s_teardown(void)
{
    dm_query_engine_destroy(&s_eng);
    dm_registry_destroy(&s_reg);
    dm_store_destroy(&s_store);
    s_rmdir(s_dir);
}

TestSuite(query, .init = s_setup, .fini = s_teardown);

/* Registers a product from a YAML contract (domain, name, version, the
 * primary key line and the field list) in the store and the registry. */
static uint32_t s_product(const char *domain, const char *name, const char *version,
                          const char *pk, const char *fields)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n"
             "  domain: %s\n  version: %s\n  owner:\n    team: t\n    contact: t@example.com\n"
             "spec:\n  schema:\n    type: inline\n%s    fields:\n%s",
             name, domain, version, pk, fields);
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_contract_parse("test.yaml", yaml, strlen(yaml), NULL, &list, &n, &diags);
    dm_buf_t text = DM_BUF_INIT;
    dm_diags_format(&diags, &text);
    cr_assert_eq(rc, DM_OK, "contract: %s", text.data ? text.data : "");
    dm_buf_free(&text);
    dm_diags_clear(&diags);
    dm_contract_t *c = list[0];
    dm_buf_t canon = DM_BUF_INIT;
    dm_contract_canonical(c, &canon);
    dm_product_t in = {0}, out = {0};
    in.domain = c->domain;
    in.name = c->name;
    in.version = c->version;
    in.version_major = c->version_major;
    in.version_minor = c->version_minor;
    in.version_patch = c->version_patch;
    dm_contract_hash(c, in.hash);
    in.contract = canon.data;
    in.contract_len = canon.len;
    dm_register_outcome outcome;
    cr_assert_eq(dm_store_product_register(s_store, &in, &outcome, &out, NULL), DM_OK);
    uint32_t pid = out.id;
    dm_product_clear(&out);
    cr_assert_eq(dm_registry_install(s_reg, pid, canon.data, canon.len), DM_OK);
    dm_buf_free(&canon);
    dm_contract_destroy(&list[0]);
    free(list);
    return pid;
}

/* Validates NDJSON lines (each NUL-terminated) for domain/name and commits
 * them in one batch. */
static void s_ingest(const char *qualified, const char *const *lines, size_t n)
{
    const dm_product_ref_t *ref;
    cr_assert_eq(dm_registry_acquire(s_reg, qualified, strlen(qualified), &ref), DM_OK);
    dm_buf_t *rows = calloc(n + 1, sizeof *rows), *keys = calloc(n + 1, sizeof *keys);
    dm_row_in_t *in = calloc(n + 1, sizeof *in);
    dm_buf_t reasons = DM_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        cr_assert(dm_schema_validate(ref->schema, lines[i], strlen(lines[i]), &rows[i], &keys[i],
                                     &reasons),
                  "line %zu: %s", i, reasons.data);
        in[i] = (dm_row_in_t){keys[i].data, keys[i].len, rows[i].data, rows[i].len};
    }
    cr_assert_eq(dm_store_commit_batch(s_store, ref->pid, in, n, NULL, 0, "test", NULL), DM_OK);
    for (size_t i = 0; i < n; i++) {
        dm_buf_free(&rows[i]);
        dm_buf_free(&keys[i]);
    }
    free(rows);
    free(keys);
    free(in);
    dm_buf_free(&reasons);
    dm_registry_release(s_reg, ref);
}

/* Appends one decoded value as text: NULL, integers, reals with %.17g,
 * text as is (the comparison format of both engines). */
static void s_value_text(const dm_qvalue_t *v, dm_buf_t *out)
{
    switch (v->type) {
    case SQLITE_NULL: dm_buf_puts(out, "NULL"); break;
    case SQLITE_INTEGER: dm_buf_printf(out, "%lld", (long long)v->i); break;
    case SQLITE_FLOAT: dm_buf_printf(out, "%.17g", v->d); break;
    default: dm_buf_putc(out, '\''); dm_buf_append(out, v->s, v->len); dm_buf_putc(out, '\''); break;
    }
}

/* Runs sql on the engine and returns its rows as text, one line per row
 * ("a|b|c\n"); fails the test on error. */
static char *s_run(const char *sql)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT, text = DM_BUF_INIT;
    dm_err rc = dm_query_open(s_eng, sql, strlen(sql), &q, &err);
    cr_assert_eq(rc, DM_OK, "%s: %s (%s)", sql, err.data, dm_strerror(rc));
    bool done = false;
    while (!done) {
        uint32_t n;
        dm_buf_reset(&batch);
        rc = dm_query_fetch(q, 100, 0, &batch, &n, &done, &err);
        cr_assert_eq(rc, DM_OK, "%s: %s", sql, err.data);
        const uint8_t *p = (const uint8_t *)batch.data, *end = p + batch.len;
        for (uint32_t r = 0; r < n; r++) {
            for (int c = 0; c < dm_query_ncolumns(q); c++) {
                dm_qvalue_t v;
                cr_assert(dm_qvalue_read(&p, end, &v));
                if (c)
                    dm_buf_putc(&text, '|');
                s_value_text(&v, &text);
            }
            dm_buf_putc(&text, '\n');
        }
        cr_assert_eq(p, end);
    }
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
    return text.data ? dm_buf_steal(&text) : strdup("");
}

/* Opens sql expecting failure want; returns the message (caller frees). */
static char *s_fail(const char *sql, dm_err want)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT;
    dm_err rc = dm_query_open(s_eng, sql, strlen(sql), &q, &err);
    cr_assert_eq(rc, want, "%s: got %s (%s), want %s", sql, dm_strerror(rc),
                 err.data ? err.data : "", dm_strerror(want));
    cr_assert_null(q);
    cr_assert(err.len > 0, "%s: no message", sql);
    return dm_buf_steal(&err);
}

/* Runs sql and fetches until it fails; returns the error and message. */
static dm_err s_fetch_fail(const char *sql, char **msg)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT;
    dm_err rc = dm_query_open(s_eng, sql, strlen(sql), &q, &err);
    if (rc == DM_OK) {
        bool done = false;
        while (!done && rc == DM_OK) {
            uint32_t n;
            dm_buf_reset(&batch);
            rc = dm_query_fetch(q, 100, 0, &batch, &n, &done, &err);
        }
        dm_query_close(&q);
    }
    dm_buf_free(&batch);
    *msg = dm_buf_steal(&err);
    return rc;
}

/* ---- fixtures ---- */

static const char *const S_ORDERS_FIELDS =
    "      - {name: orderId, type: uuid, required: true}\n"
    "      - {name: customerId, type: string, required: true}\n"
    "      - {name: amount, type: double}\n"
    "      - {name: status, type: enum, values: [created, paid, shipped, cancelled]}\n"
    "      - {name: ts, type: timestamp}\n"
    "      - {name: qty, type: int}\n"
    "      - {name: day, type: date}\n"
    "      - {name: gift, type: boolean}\n"
    "      - {name: note, type: string}\n";

static const char *const S_ORDERS[] = {
    "{\"orderId\":\"3f1c2a9e-8b7d-4c6e-9f01-23456789abcd\",\"customerId\":\"c1\",\"amount\":129.9,"
    "\"status\":\"created\",\"ts\":\"2026-11-24T09:15:00Z\",\"qty\":3,\"day\":\"2026-11-24\","
    "\"gift\":true,\"note\":\"first\"}",
    "{\"orderId\":\"7a2d4b1c-0e3f-4a5b-8c6d-7e8f90a1b2c3\",\"customerId\":\"c2\",\"amount\":42,"
    "\"status\":\"paid\",\"ts\":\"2026-11-24T09:16:30.250+01:00\",\"qty\":1,\"day\":\"2026-11-23\","
    "\"gift\":false}",
    "{\"orderId\":\"c0ffee00-1234-4abc-9def-0123456789ab\",\"customerId\":\"c3\",\"amount\":7.5,"
    "\"status\":\"shipped\",\"ts\":\"2026-11-24T10:02:11Z\",\"note\":null}",
    "{\"orderId\":\"00000000-0000-4000-8000-000000000001\",\"customerId\":\"c1\",\"amount\":-1.25,"
    "\"status\":\"paid\",\"ts\":\"1969-12-31T23:59:59.999999Z\",\"qty\":-7,\"day\":\"1969-12-31\"}",
    "{\"orderId\":\"ffffffff-ffff-4fff-bfff-ffffffffffff\",\"customerId\":\"c4\","
    "\"status\":\"cancelled\",\"qty\":0,\"note\":\"it's \\\"quoted\\\" \\u00e9\"}",
    "{\"orderId\":\"12345678-1234-4234-8234-123456789012\",\"customerId\":\"c2\",\"amount\":0,"
    "\"status\":\"paid\",\"ts\":\"2026-11-25T00:00:00Z\",\"qty\":1,\"gift\":true}",
};

static const char *const S_CUSTOMERS[] = {
    "{\"customerId\":\"c1\",\"name\":\"Ada\",\"tier\":1}",
    "{\"customerId\":\"c2\",\"name\":\"Bob\",\"tier\":2}",
    "{\"customerId\":\"c3\",\"name\":\"Cy\"}",
    "{\"customerId\":\"c9\",\"name\":\"Nobody\",\"tier\":3}",
};

#define S_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void s_orders(void)
{
    s_product("commerce", "orders", "1.0.0", "    primaryKey: orderId\n", S_ORDERS_FIELDS);
    s_ingest("commerce/orders", S_ORDERS, S_NELEM(S_ORDERS));
}

static void s_customers(void)
{
    s_product("identity", "customers", "1.0.0", "    primaryKey: customerId\n",
              "      - {name: customerId, type: string, required: true}\n"
              "      - {name: name, type: string, required: true}\n"
              "      - {name: tier, type: int}\n");
    s_ingest("identity/customers", S_CUSTOMERS, S_NELEM(S_CUSTOMERS));
}

/* Many more customers, so that probing by key is cheaper than scanning. */
static void s_more_customers(void)
{
    enum { N = 500 };
    static char text[N][96];
    static const char *lines[N];
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "{\"customerId\":\"x%04d\",\"name\":\"n%d\",\"tier\":%d}",
                 i, i, i % 4);
        lines[i] = text[i];
    }
    s_ingest("identity/customers", lines, N);
}

/* commerce.lines: composite key (orderNo, lineNo), orderNo 1..50 x lineNo 1..20. */
static void s_lines(void)
{
    s_product("commerce", "lines", "1.0.0", "    primaryKey: [orderNo, lineNo]\n",
              "      - {name: orderNo, type: int, required: true}\n"
              "      - {name: lineNo, type: int, required: true}\n"
              "      - {name: sku, type: string, required: true}\n"
              "      - {name: price, type: double}\n");
    enum { N = 1000 };
    static char text[N][128];
    static const char *lines[N];
    for (int i = 0; i < N; i++) {
        /* written out of key order so the index, not the log, sorts them */
        int k = (i * 7919) % N;
        snprintf(text[i], sizeof text[i],
                 "{\"orderNo\":%d,\"lineNo\":%d,\"sku\":\"sku-%03d\",\"price\":%d.5}", k / 20 + 1,
                 k % 20 + 1, k % 37, k % 11);
        lines[i] = text[i];
    }
    s_ingest("commerce/lines", lines, N);
}

/* logistics.events: key (day date, at timestamp), both text in SQL. */
static void s_events(void)
{
    s_product("logistics", "events", "1.0.0", "    primaryKey: [day, at]\n",
              "      - {name: day, type: date, required: true}\n"
              "      - {name: at, type: timestamp, required: true}\n"
              "      - {name: what, type: string}\n");
    static const char *const ev[] = {
        "{\"day\":\"2026-11-24\",\"at\":\"2026-11-24T00:00:00Z\",\"what\":\"midnight\"}",
        "{\"day\":\"2026-11-24\",\"at\":\"2026-11-24T09:00:00Z\",\"what\":\"nine\"}",
        "{\"day\":\"2026-11-24\",\"at\":\"2026-11-24T09:59:59.5Z\",\"what\":\"almost ten\"}",
        "{\"day\":\"2026-11-24\",\"at\":\"2026-11-24T10:00:00+00:00\",\"what\":\"ten\"}",
        "{\"day\":\"2026-11-24\",\"at\":\"2026-11-24T23:59:59.999999Z\",\"what\":\"late\"}",
        "{\"day\":\"2026-11-23\",\"at\":\"2026-11-23T12:00:00Z\"}",
        "{\"day\":\"2026-11-25\",\"at\":\"2026-11-25T00:00:00.000001Z\",\"what\":\"next\"}",
        "{\"day\":\"1969-12-31\",\"at\":\"1969-12-31T23:59:59Z\",\"what\":\"before 1970\"}",
    };
    s_ingest("logistics/events", ev, S_NELEM(ev));
}

/* The plan text of sql (EXPLAIN QUERY PLAN, details joined by "; "). */
static char *s_plan(const char *sql)
{
    char eqp[1024];
    snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT, text = DM_BUF_INIT;
    cr_assert_eq(dm_query_open(s_eng, eqp, strlen(eqp), &q, &err), DM_OK, "%s", err.data);
    bool done = false;
    while (!done) {
        uint32_t n;
        cr_assert_eq(dm_query_fetch(q, 100, 0, &batch, &n, &done, &err), DM_OK);
    }
    const uint8_t *p = (const uint8_t *)batch.data, *end = p + batch.len;
    while (p < end) {
        dm_qvalue_t v[4];
        for (int c = 0; c < 4; c++)
            cr_assert(dm_qvalue_read(&p, end, &v[c]));
        dm_buf_append(&text, v[3].s, v[3].len);
        dm_buf_puts(&text, "; ");
    }
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
    return dm_buf_steal(&text);
}

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

/* ---- sandbox: every refusal leaves the engine usable ---- */

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A normal query on the same engine, after a refusal. */
static void s_still_works(void)
{
    char *got = s_run("SELECT count(*) FROM commerce.orders");
    cr_assert_str_eq(got, "6\n");
    free(got);
}

Test(query, runaway_recursive_cte_hits_the_time_limit)
{
    s_orders();
    s_engine(300);
    char *msg = NULL;
    int64_t t0 = s_now_ms();
    dm_err rc = s_fetch_fail("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
                             "SELECT count(*) FROM r",
                             &msg);
    int64_t took = s_now_ms() - t0;
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
        cr_assert_eq(rc, DM_ERR_INVALID, "%s: %s (%s)", sql[i], dm_strerror(rc), msg);
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

/* ---- results equal a native SQLite table ---- */

/* Copies product domain.name, as the engine exposes it (SELECT *, with
 * the declared types), into a native table of the same name in nat. */
static void s_native_copy(sqlite3 *nat, const char *domain, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "ATTACH ':memory:' AS %s", domain);
    sqlite3_exec(nat, sql, NULL, NULL, NULL); /* fails harmlessly when attached already */
    snprintf(sql, sizeof sql, "SELECT * FROM %s.%s", domain, name);
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT, ddl = DM_BUF_INIT;
    cr_assert_eq(dm_query_open(s_eng, sql, strlen(sql), &q, &err), DM_OK, "%s", err.data);
    int nc = dm_query_ncolumns(q);
    dm_buf_printf(&ddl, "CREATE TABLE %s.%s(", domain, name);
    for (int c = 0; c < nc; c++)
        dm_buf_printf(&ddl, "%s\"%s\" %s", c ? ", " : "", dm_query_column_name(q, c),
                      dm_query_column_decltype(q, c));
    dm_buf_puts(&ddl, ")");
    cr_assert_eq(sqlite3_exec(nat, ddl.data, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(nat));
    dm_buf_reset(&ddl);
    dm_buf_printf(&ddl, "INSERT INTO %s.%s VALUES (", domain, name);
    for (int c = 0; c < nc; c++)
        dm_buf_puts(&ddl, c ? ", ?" : "?");
    dm_buf_puts(&ddl, ")");
    sqlite3_stmt *ins;
    cr_assert_eq(sqlite3_prepare_v2(nat, ddl.data, -1, &ins, NULL), SQLITE_OK);
    bool done = false;
    while (!done) {
        uint32_t n;
        dm_buf_reset(&batch);
        cr_assert_eq(dm_query_fetch(q, 500, 0, &batch, &n, &done, &err), DM_OK);
        const uint8_t *p = (const uint8_t *)batch.data, *end = p + batch.len;
        for (uint32_t r = 0; r < n; r++) {
            for (int c = 0; c < nc; c++) {
                dm_qvalue_t v;
                cr_assert(dm_qvalue_read(&p, end, &v));
                if (v.type == SQLITE_INTEGER)
                    sqlite3_bind_int64(ins, c + 1, v.i);
                else if (v.type == SQLITE_FLOAT)
                    sqlite3_bind_double(ins, c + 1, v.d);
                else if (v.type == SQLITE_TEXT)
                    sqlite3_bind_text(ins, c + 1, v.s, (int)v.len, SQLITE_TRANSIENT);
                else
                    sqlite3_bind_null(ins, c + 1);
            }
            cr_assert_eq(sqlite3_step(ins), SQLITE_DONE);
            sqlite3_reset(ins);
        }
    }
    sqlite3_finalize(ins);
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
    dm_buf_free(&ddl);
}

/* Runs sql on the native db in s_run's text format. */
static char *s_run_native(sqlite3 *nat, const char *sql)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(nat, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(nat));
    dm_buf_t text = DM_BUF_INIT;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            dm_qvalue_t v = {.type = sqlite3_column_type(st, c)};
            v.i = sqlite3_column_int64(st, c);
            v.d = sqlite3_column_double(st, c);
            v.s = (const char *)sqlite3_column_text(st, c);
            v.len = (size_t)sqlite3_column_bytes(st, c);
            if (c)
                dm_buf_putc(&text, '|');
            s_value_text(&v, &text);
        }
        dm_buf_putc(&text, '\n');
    }
    cr_assert_eq(rc, SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(nat));
    sqlite3_finalize(st);
    return text.data ? dm_buf_steal(&text) : strdup("");
}

static int s_line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the lines of text in place (for results without ORDER BY). */
static void s_sort_lines(char *text)
{
    size_t n = 0, len = strlen(text);
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    char **lines = calloc(n + 1, sizeof *lines), *copy = strdup(text);
    size_t k = 0;
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        lines[k++] = l;
    qsort(lines, k, sizeof *lines, s_line_cmp);
    size_t pos = 0;
    for (size_t i = 0; i < k; i++) {
        size_t ll = strlen(lines[i]);
        memcpy(text + pos, lines[i], ll);
        pos += ll;
        text[pos++] = '\n';
    }
    free(lines);
    free(copy);
}

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
    for (size_t i = 0; i < n; i++) {
        char *got = s_run(queries[i]), *want = s_run_native(nat, queries[i]);
        if (!strstr(queries[i], "ORDER BY")) {
            s_sort_lines(got);
            s_sort_lines(want);
        }
        cr_assert_str_eq(got, want, "query %zu: %s\ngot:\n%s\nwant:\n%s", i, queries[i], got, want);
        free(got);
        free(want);
    }
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
    dm_qvalue_t v;
    cr_assert(dm_qvalue_read(&p, p + batch.len, &v) && v.i == 6);
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
            dm_qvalue_t id, v;
            cr_assert(dm_qvalue_read(&p, end, &id) && dm_qvalue_read(&p, end, &v));
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
    int64_t t0 = s_now_ms();
    uint32_t n;
    bool done;
    dm_err rc = dm_query_fetch(q, 10, 0, &out, &n, &done, &err);
    pthread_join(t, NULL);
    cr_assert_eq(rc, DM_ERR_TIMEOUT);
    cr_assert(strstr(err.data, "cancelled"), "%s", err.data);
    cr_assert_lt(s_now_ms() - t0, 5000);
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
    cr_assert_eq(dm_query_engine_new(s_store, s_reg, &l, &s_eng), DM_OK);
    char *msg = NULL;
    dm_err rc = s_fetch_fail("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r "
                             "WHERE n < 2000) SELECT count(*) FROM (SELECT randomblob(100000) AS b "
                             "FROM r ORDER BY b)",
                             &msg);
    cr_assert_eq(rc, DM_ERR_NOMEM, "%s (%s)", msg, dm_strerror(rc));
    cr_assert(strstr(msg, "more memory"), "%s", msg);
    free(msg);
    s_still_works();
}
