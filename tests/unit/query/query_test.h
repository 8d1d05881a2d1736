/* query_test.h: helpers shared by the SQL engine's tests (suite "query"):
 * a temp store, registry and engine per test, products registered from
 * YAML text and filled through the real validator, fixtures (orders,
 * customers, order lines with a composite key, events keyed by date and
 * timestamp), and running SQL to text rows or to an expected failure. */
#ifndef DM_QUERY_TEST_H
#define DM_QUERY_TEST_H

#define S_UNUSED __attribute__((unused))

#include <criterion/criterion.h>

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "contract/contract.h"
#include "query/query.h"
#include "record/registry.h"
#include "record/schema.h"
#include "storage/store.h"
#include "transport/rowbatch.h"
#include "fixture.h"

S_UNUSED static char s_dir[PATH_MAX];
S_UNUSED static dm_store_t *s_store;
S_UNUSED static dm_registry_t *s_reg;
S_UNUSED static dm_query_engine_t *s_eng;

S_UNUSED static void s_engine(int64_t timeout_ms)
{
    dm_query_engine_destroy(&s_eng);
    dm_query_limits_t l = {.timeout_ms = timeout_ms};
    cr_assert_eq(dm_query_engine_new(s_store, s_reg, &l, &s_eng, NULL), DM_OK);
}

S_UNUSED static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_query"));
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    cr_assert_eq(dm_registry_new(&s_reg), DM_OK);
    s_engine(0);
}

S_UNUSED static void s_teardown(void)
{
    dm_query_engine_destroy(&s_eng);
    dm_registry_destroy(&s_reg);
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
}

/* Registers a product from a YAML contract (domain, name, version, the
 * primary key line and the field list) in the store and the registry. */
S_UNUSED static uint32_t s_product(const char *domain, const char *name, const char *version,
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
    cr_assert_eq(dm_store_product_register(s_store, &in, &outcome, &out, NULL, NULL), DM_OK);
    uint32_t pid = out.id;
    dm_store_product_clear(&out);
    cr_assert_eq(dm_registry_install(s_reg, pid, canon.data, canon.len, NULL), DM_OK);
    dm_buf_free(&canon);
    dm_contract_destroy(&list[0]);
    free(list);
    return pid;
}

/* Validates NDJSON lines (each NUL-terminated) for domain/name and commits
 * them in one batch. */
S_UNUSED static void s_ingest(const char *qualified, const char *const *lines, size_t n)
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
    cr_assert_eq(dm_store_commit_batch(s_store, ref->pid, in, n, NULL, 0, "test", NULL, NULL), DM_OK);
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
S_UNUSED static void s_value_text(const dm_rowbatch_value_t *v, dm_buf_t *out)
{
    switch (v->type) {
    case DM_ROWBATCH_NULL: dm_buf_puts(out, "NULL"); break;
    case DM_ROWBATCH_INT: dm_buf_printf(out, "%lld", (long long)v->i); break;
    case DM_ROWBATCH_REAL: dm_buf_printf(out, "%.17g", v->d); break;
    default: dm_buf_putc(out, '\''); dm_buf_append(out, v->s, v->len); dm_buf_putc(out, '\''); break;
    }
}

/* Fetches every row of the open query q (of sql, for messages) as text,
 * one line per row ("a|b|c\n"); fails the test on error. q stays open. */
S_UNUSED static char *s_drain(dm_query_t *q, const char *sql)
{
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT, text = DM_BUF_INIT;
    dm_err rc;
    bool done = false;
    while (!done) {
        uint32_t n;
        dm_buf_reset(&batch);
        rc = dm_query_fetch(q, 100, 0, &batch, &n, &done, &err);
        cr_assert_eq(rc, DM_OK, "%s: %s", sql, err.data);
        const uint8_t *p = (const uint8_t *)batch.data, *end = p + batch.len;
        for (uint32_t r = 0; r < n; r++) {
            for (int c = 0; c < dm_query_ncolumns(q); c++) {
                dm_rowbatch_value_t v;
                cr_assert(dm_rowbatch_read(&p, end, &v));
                if (c)
                    dm_buf_putc(&text, '|');
                s_value_text(&v, &text);
            }
            dm_buf_putc(&text, '\n');
        }
        cr_assert_eq(p, end);
    }
    dm_buf_free(&err);
    dm_buf_free(&batch);
    return text.data ? dm_buf_steal(&text) : strdup("");
}

/* Runs sql on the engine and returns its rows as text, one line per row
 * ("a|b|c\n"); fails the test on error. */
S_UNUSED static char *s_run(const char *sql)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT;
    dm_err rc = dm_query_open(s_eng, sql, strlen(sql), &q, &err);
    cr_assert_eq(rc, DM_OK, "%s: %s (%s)", sql, err.data, dm_err_str(rc));
    char *text = s_drain(q, sql);
    dm_query_close(&q);
    dm_buf_free(&err);
    return text;
}

/* Opens sql expecting failure want; returns the message (caller frees). */
S_UNUSED static char *s_fail(const char *sql, dm_err want)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT;
    dm_err rc = dm_query_open(s_eng, sql, strlen(sql), &q, &err);
    cr_assert_eq(rc, want, "%s: got %s (%s), want %s", sql, dm_err_str(rc),
                 err.data ? err.data : "", dm_err_str(want));
    cr_assert_null(q);
    cr_assert(err.len > 0, "%s: no message", sql);
    return dm_buf_steal(&err);
}

/* Runs sql and fetches until it fails; returns the error and message. */
S_UNUSED static dm_err s_fetch_fail(const char *sql, char **msg)
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

S_UNUSED static const char *const S_ORDERS_FIELDS =
    "      - {name: orderId, type: uuid, required: true}\n"
    "      - {name: customerId, type: string, required: true}\n"
    "      - {name: amount, type: double}\n"
    "      - {name: status, type: enum, values: [created, paid, shipped, cancelled]}\n"
    "      - {name: ts, type: timestamp}\n"
    "      - {name: qty, type: int}\n"
    "      - {name: day, type: date}\n"
    "      - {name: gift, type: boolean}\n"
    "      - {name: note, type: string}\n";

S_UNUSED static const char *const S_ORDERS[] = {
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

S_UNUSED static const char *const S_CUSTOMERS[] = {
    "{\"customerId\":\"c1\",\"name\":\"Ada\",\"tier\":1}",
    "{\"customerId\":\"c2\",\"name\":\"Bob\",\"tier\":2}",
    "{\"customerId\":\"c3\",\"name\":\"Cy\"}",
    "{\"customerId\":\"c9\",\"name\":\"Nobody\",\"tier\":3}",
};

#define S_NELEM(a) (sizeof(a) / sizeof((a)[0]))

S_UNUSED static void s_orders(void)
{
    s_product("commerce", "orders", "1.0.0", "    primaryKey: orderId\n", S_ORDERS_FIELDS);
    s_ingest("commerce/orders", S_ORDERS, S_NELEM(S_ORDERS));
}

S_UNUSED static void s_customers(void)
{
    s_product("identity", "customers", "1.0.0", "    primaryKey: customerId\n",
              "      - {name: customerId, type: string, required: true}\n"
              "      - {name: name, type: string, required: true}\n"
              "      - {name: tier, type: int}\n");
    s_ingest("identity/customers", S_CUSTOMERS, S_NELEM(S_CUSTOMERS));
}

/* Many more customers, so that probing by key is cheaper than scanning. */
S_UNUSED static void s_more_customers(void)
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
    static const char *const numeric[] = {"{\"customerId\":\"7\",\"name\":\"Seven\"}"};
    s_ingest("identity/customers", numeric, 1); /* a text key that equals an integer */
}

/* commerce.lines: composite key (orderNo, lineNo), orderNo 1..50 x lineNo 1..20. */
S_UNUSED static void s_lines(void)
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
S_UNUSED static void s_events(void)
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
S_UNUSED static char *s_plan(const char *sql)
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
        dm_rowbatch_value_t v[4];
        for (int c = 0; c < 4; c++)
            cr_assert(dm_rowbatch_read(&p, end, &v[c]));
        dm_buf_append(&text, v[3].s, v[3].len);
        dm_buf_puts(&text, "; ");
    }
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
    return dm_buf_steal(&text);
}

/* A normal query on the same engine, after a refusal. */
S_UNUSED static void s_still_works(void)
{
    char *got = s_run("SELECT count(*) FROM commerce.orders");
    cr_assert_str_eq(got, "6\n");
    free(got);
}

/* ---- results equal a native SQLite table (test_query.c, test_query_keys.c) ---- */

/* Copies product domain.name, as the engine exposes it (SELECT *, with
 * the declared types), into a native table of the same name in nat. */
static inline void s_native_copy(sqlite3 *nat, const char *domain, const char *name)
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
                dm_rowbatch_value_t v;
                cr_assert(dm_rowbatch_read(&p, end, &v));
                if (v.type == DM_ROWBATCH_INT)
                    sqlite3_bind_int64(ins, c + 1, v.i);
                else if (v.type == DM_ROWBATCH_REAL)
                    sqlite3_bind_double(ins, c + 1, v.d);
                else if (v.type == DM_ROWBATCH_TEXT)
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
static inline char *s_run_native(sqlite3 *nat, const char *sql)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(nat, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(nat));
    dm_buf_t text = DM_BUF_INIT;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            static const dm_rowbatch_type types[] = {
                [SQLITE_INTEGER] = DM_ROWBATCH_INT, [SQLITE_FLOAT] = DM_ROWBATCH_REAL,
                [SQLITE_TEXT] = DM_ROWBATCH_TEXT, [SQLITE_BLOB] = DM_ROWBATCH_BLOB,
                [SQLITE_NULL] = DM_ROWBATCH_NULL};
            dm_rowbatch_value_t v = {.type = types[sqlite3_column_type(st, c)]};
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

static inline int s_line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the lines of text in place (for results without ORDER BY). */
static inline void s_sort_lines(char *text)
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

/* Runs every query on the engine and on nat (native copies of the
 * products) and compares the rows (as text; sorted unless the query
 * orders them). */
static inline void s_compare_native(sqlite3 *nat, const char *const *queries, size_t n)
{
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
}

#endif
