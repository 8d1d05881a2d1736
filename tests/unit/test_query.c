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
    if (!text.data)
        dm_buf_reserve(&text, 1);
    return dm_buf_steal(&text);
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

Test(query, non_pk_filter_scans_the_log)
{
    s_orders();
    char *plan = s_plan("SELECT * FROM commerce.orders WHERE customerId = 'c1'");
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
    cr_assert(strstr(plan, "pk eq=0") && !strstr(plan, "TEMP B-TREE"), "%s", plan);
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
