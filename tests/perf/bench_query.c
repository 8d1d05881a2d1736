/* bench_query.c: the SQL engine's virtual tables against a native SQLite
 * table holding the same rows.
 *
 * Not a test (tests never assert timing): CMake builds it with -DDM_PERF=ON
 * (test.sh does, so it keeps linking) and nothing runs it. Loads N orders
 * (uuid key, customer, amount, status, timestamp) into a temp store through
 * the real validator, copies them into an in-memory SQLite table (orderId
 * TEXT PRIMARY KEY) and times the same statements on both: the engine's
 * figure includes opening the query (connection, sandbox, read transaction)
 * and encoding every result row. Build and run (from the repo root; a
 * RelWithDebInfo or Release build, not the sanitizer one, for figures):
 *   cmake -S . -B build -DDM_PERF=ON && cmake --build build --target bench_query
 *   build/perf/bench_query [records]      (default 1000000) */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "contract/contract.h"
#include "query/query.h"
#include "record/registry.h"
#include "record/schema.h"
#include "storage/store.h"
#include "fixture.h"
#include "transport/rowbatch.h"

#define BENCH_DEFAULT_RECORDS 1000000
#define BENCH_BATCH 50000
#define BENCH_LOOKUPS 2000
#define BENCH_FETCH_ROWS 1000

static const char *s_yaml =
    "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: orders\n"
    "  domain: commerce\n  version: 1.0.0\n  owner:\n    team: t\n    contact: t@example.com\n"
    "spec:\n  schema:\n    type: inline\n    primaryKey: orderId\n    fields:\n"
    "      - {name: orderId, type: uuid, required: true}\n"
    "      - {name: customerId, type: string, required: true}\n"
    "      - {name: amount, type: double, required: true}\n"
    "      - {name: status, type: enum, values: [created, paid, shipped, cancelled]}\n"
    "      - {name: ts, type: timestamp, required: true}\n";

/* A pseudo-random uuid text for record i (a 64-bit mix, so keys are spread). */
static void s_uuid(uint64_t i, char out[37])
{
    uint64_t a = i * 0x9E3779B97F4A7C15u, b = (a ^ (a >> 29)) * 0xBF58476D1CE4E5B9u;
    snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
             (unsigned)a & 0xfff, (unsigned)(b >> 52), (unsigned long long)(b & 0xffffffffffffu));
}

/* Runs sql on the engine to the end; returns the rows. */
static uint64_t s_engine_run(dm_query_engine_t *e, const char *sql, dm_buf_t *out)
{
    dm_query_t *q;
    dm_buf_t err = DM_BUF_INIT;
    if (dm_query_open(e, sql, strlen(sql), &q, &err) != DM_OK) {
        fprintf(stderr, "%s: %s\n", sql, err.data);
        exit(1);
    }
    uint64_t rows = 0;
    bool done = false;
    while (!done) {
        uint32_t n;
        dm_buf_reset(out);
        if (dm_query_fetch(q, BENCH_FETCH_ROWS, 0, out, &n, &done, &err) != DM_OK) {
            fprintf(stderr, "%s: %s\n", sql, err.data);
            exit(1);
        }
        rows += n;
    }
    dm_query_close(&q);
    dm_buf_free(&err);
    return rows;
}

static uint64_t s_native_run(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
        exit(1);
    }
    uint64_t rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++)
            (void)sqlite3_column_text(st, c);
        rows++;
    }
    sqlite3_finalize(st);
    return rows;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : BENCH_DEFAULT_RECORDS;
    char dir[64];
    if (!dm_t_tmpdir(dir, sizeof dir, "bench_query"))
        return 1;
    dm_store_t *st;
    dm_registry_t *reg;
    dm_query_engine_t *eng;
    dm_contract_t **list;
    size_t nc;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_store_opts_t opts = {.initial_map_bytes = (size_t)1 << 30};
    if (dm_store_open(dir, &opts, &st, NULL) || dm_registry_new(&reg) ||
        dm_contract_parse("b.yaml", s_yaml, strlen(s_yaml), NULL, &list, &nc, &diags))
        return 1;
    dm_buf_t canon = DM_BUF_INIT;
    dm_contract_canonical(list[0], &canon);
    dm_product_t in = {.domain = "commerce", .name = "orders", .version = "1.0.0",
                       .version_major = 1, .contract = canon.data, .contract_len = canon.len};
    dm_product_t out;
    dm_register_outcome oc;
    if (dm_store_product_register(st, &in, &oc, &out, NULL, NULL) ||
        dm_registry_install(reg, out.id, canon.data, canon.len, NULL) ||
        dm_query_engine_new(st, reg, NULL, &eng, NULL))
        return 1;
    const dm_product_ref_t *ref;
    if (dm_registry_acquire(reg, "commerce/orders", 15, &ref))
        return 1;
    static const char *status[] = {"created", "paid", "shipped", "cancelled"};
    dm_buf_t *rows = calloc(BENCH_BATCH, sizeof *rows), *keys = calloc(BENCH_BATCH, sizeof *keys);
    dm_row_in_t *rin = calloc(BENCH_BATCH, sizeof *rin);
    dm_buf_t reasons = DM_BUF_INIT;
    double t0 = dm_clock_mono_s();
    for (long base = 0; base < n; base += BENCH_BATCH) {
        size_t k = 0;
        for (long i = base; i < n && i < base + BENCH_BATCH; i++, k++) {
            char id[37], line[256];
            s_uuid((uint64_t)i, id);
            int len = snprintf(line, sizeof line,
                               "{\"orderId\":\"%s\",\"customerId\":\"cust-%05ld\",\"amount\":%ld.%02ld,"
                               "\"status\":\"%s\",\"ts\":\"2026-%02ld-%02ldT%02ld:%02ld:00Z\"}",
                               id, i % 50000, i % 997, i % 100, status[i % 4], i % 12 + 1,
                               i % 28 + 1, i % 24, i % 60);
            if (!dm_schema_validate(ref->schema, line, (size_t)len, &rows[k], &keys[k], &reasons)) {
                fprintf(stderr, "%s: %s\n", line, reasons.data);
                return 1;
            }
            rin[k] = (dm_row_in_t){keys[k].data, keys[k].len, rows[k].data, rows[k].len};
        }
        if (dm_store_commit_batch(st, out.id, rin, k, NULL, 0, "bench", NULL, NULL))
            return 1;
    }
    printf("loaded %ld records in %.2f s\n", n, dm_clock_mono_s() - t0);

    /* the native copy, from the engine's own view of the rows */
    sqlite3 *nat;
    sqlite3_open(":memory:", &nat);
    sqlite3_exec(nat, "ATTACH ':memory:' AS commerce; CREATE TABLE commerce.orders(orderId UUID "
                      "PRIMARY KEY, customerId TEXT, amount REAL, status TEXT, ts TIMESTAMP) "
                      "WITHOUT ROWID; BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(nat, "INSERT INTO commerce.orders VALUES (?, ?, ?, ?, ?)", -1, &ins, NULL);
    {
        dm_query_t *q;
        dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT;
        const char *all = "SELECT * FROM commerce.orders";
        if (dm_query_open(eng, all, strlen(all), &q, &err))
            return 1;
        bool done = false;
        while (!done) {
            uint32_t got;
            dm_buf_reset(&batch);
            if (dm_query_fetch(q, BENCH_FETCH_ROWS, 0, &batch, &got, &done, &err))
                return 1;
            const uint8_t *p = (const uint8_t *)batch.data, *end = p + batch.len;
            for (uint32_t r = 0; r < got; r++) {
                for (int c = 0; c < 5; c++) {
                    dm_rowbatch_value_t v;
                    if (!dm_rowbatch_read(&p, end, &v))
                        return 1;
                    if (v.type == DM_ROWBATCH_REAL)
                        sqlite3_bind_double(ins, c + 1, v.d);
                    else
                        sqlite3_bind_text(ins, c + 1, v.s, (int)v.len, SQLITE_TRANSIENT);
                }
                sqlite3_step(ins);
                sqlite3_reset(ins);
            }
        }
        dm_query_close(&q);
        dm_buf_free(&batch);
        dm_buf_free(&err);
    }
    sqlite3_finalize(ins);
    sqlite3_exec(nat, "COMMIT", NULL, NULL, NULL);

    static const char *const queries[] = {
        "SELECT count(*) FROM commerce.orders",
        "SELECT status, count(*), sum(amount) FROM commerce.orders GROUP BY status",
        "SELECT customerId, count(*) FROM commerce.orders GROUP BY customerId ORDER BY 2 DESC LIMIT 5",
        "SELECT count(*), max(ts) FROM commerce.orders WHERE orderId >= "
        "'40000000-0000-0000-0000-000000000000' AND orderId < '60000000-0000-0000-0000-000000000000'",
        "SELECT count(*), max(ts) FROM commerce.orders WHERE orderId >= '4' AND orderId < '6'",
        "SELECT * FROM commerce.orders WHERE amount > 990",
        "SELECT * FROM commerce.orders",
    };
    dm_buf_t buf = DM_BUF_INIT;
    printf("%-60.60s %10s %10s %8s\n", "query", "engine s", "native s", "rows");
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        double a = dm_clock_mono_s();
        uint64_t r1 = s_engine_run(eng, queries[i], &buf);
        double b = dm_clock_mono_s();
        uint64_t r2 = s_native_run(nat, queries[i]);
        double c = dm_clock_mono_s();
        printf("%-60.60s %10.3f %10.3f %8llu%s\n", queries[i] + strlen("SELECT "), b - a, c - b, (unsigned long long)r1,
               r1 == r2 ? "" : " ROW COUNTS DIFFER");
    }
    double a = dm_clock_mono_s();
    for (int i = 0; i < BENCH_LOOKUPS; i++) {
        char id[37], sql[128];
        s_uuid((uint64_t)(i * 7919 % n), id);
        snprintf(sql, sizeof sql, "SELECT * FROM commerce.orders WHERE orderId = '%s'", id);
        if (s_engine_run(eng, sql, &buf) != 1)
            return 1;
    }
    double b = dm_clock_mono_s();
    for (int i = 0; i < BENCH_LOOKUPS; i++) {
        char id[37], sql[128];
        s_uuid((uint64_t)(i * 7919 % n), id);
        snprintf(sql, sizeof sql, "SELECT * FROM commerce.orders WHERE orderId = '%s'", id);
        s_native_run(nat, sql);
    }
    double c = dm_clock_mono_s();
    printf("point lookup by key, open to last row: engine %.1f us, native (prepare+step) %.1f us\n",
           (b - a) / BENCH_LOOKUPS * 1e6, (c - b) / BENCH_LOOKUPS * 1e6);
    a = dm_clock_mono_s();
    for (int i = 0; i < BENCH_LOOKUPS; i++)
        s_engine_run(eng, "SELECT 1", &buf);
    printf("open + fetch + close of SELECT 1: %.1f us\n", (dm_clock_mono_s() - a) / BENCH_LOOKUPS * 1e6);
    dm_registry_release(reg, ref);
    dm_query_engine_destroy(&eng);
    sqlite3_close(nat);
    return dm_t_rmdir(dir) == 0 ? 0 : 1;
}
