/* test_store_bench.c: ingest throughput of the store alone: 1M orders rows
 * (random 16-byte uuid keys, ~60-byte rows) in synced batches. Skipped
 * unless DM_STORE_BENCH is set (tests never assert timing):
 *   DM_STORE_BENCH=1 [DM_STORE_BENCH_BATCH=20000] [DM_STORE_BENCH_KEYLESS=1] \
 *   [DM_STORE_BENCH_RECENT=entries (pk_recent_max)] \
 *     build/tests/test_store_bench --verbose */
#include <criterion/criterion.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "storage/store.h"
#include "fixture.h"

#define S_ROWS 1000000
#define S_DEFAULT_BATCH 20000
#define S_KEY_BYTES 16
#define S_ROW_BYTES 60

static uint64_t s_rand(uint64_t *s)
{
    /* xorshift64*: fast, good enough for random uuids */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

Test(store_bench, ingest_one_million_orders, .timeout = 300)
{
    if (!getenv("DM_STORE_BENCH"))
        cr_skip_test("set DM_STORE_BENCH=1 to run");
    size_t batch = getenv("DM_STORE_BENCH_BATCH") ? strtoul(getenv("DM_STORE_BENCH_BATCH"), 0, 10)
                                                  : S_DEFAULT_BATCH;
    bool keyless = getenv("DM_STORE_BENCH_KEYLESS") != NULL;
    char dir[64];
    cr_assert_not_null(dm_t_tmpdir(dir, sizeof dir, "bench_store"));
    dm_store_t *st = NULL;
    dm_store_opts_t opts = {0};
    if (getenv("DM_STORE_BENCH_RECENT"))
        opts.pk_recent_max = strtoul(getenv("DM_STORE_BENCH_RECENT"), NULL, 10);
    cr_assert_eq(dm_store_open(dir, &opts, &st, NULL), DM_OK);
    dm_product_t in = {.domain = "commerce", .name = "orders", .version = "1.0.0",
                       .version_major = 1, .contract = "{}", .contract_len = 2}, out;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(st, &in, &oc, &out, NULL, NULL), DM_OK);
    uint8_t (*keys)[S_KEY_BYTES] = malloc((size_t)S_ROWS * S_KEY_BYTES);
    char (*rows)[S_ROW_BYTES] = malloc((size_t)S_ROWS * S_ROW_BYTES);
    dm_row_in_t *in_rows = malloc(batch * sizeof *in_rows);
    cr_assert(keys && rows && in_rows);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < S_ROWS; i++) {
        uint64_t a = s_rand(&seed), b = s_rand(&seed);
        memcpy(keys[i], &a, 8);
        memcpy(keys[i] + 8, &b, 8);
        memset(rows[i], 'r', S_ROW_BYTES);
        memcpy(rows[i], &a, 8);
    }
    double t0 = dm_clock_mono_s();
    for (size_t off = 0; off < S_ROWS; off += batch) {
        size_t n = S_ROWS - off < batch ? S_ROWS - off : batch;
        for (size_t i = 0; i < n; i++)
            in_rows[i] = (dm_row_in_t){keyless ? NULL : keys[off + i], keyless ? 0 : S_KEY_BYTES,
                                       rows[off + i], S_ROW_BYTES};
        dm_batch_result_t r;
        cr_assert_eq(dm_store_commit_batch(st, out.id, in_rows, n, NULL, 0, "", &r, NULL), DM_OK);
    }
    double dt = dm_clock_mono_s() - t0;
    cr_log_info("store: %d %s rows in batches of %zu: %.2f s, %.0f rows/s", S_ROWS,
                keyless ? "keyless" : "keyed", batch, dt, S_ROWS / dt);
    fprintf(stderr, "store bench: %d %s rows, batch %zu: %.3f s = %.0f rows/s\n", S_ROWS,
            keyless ? "keyless" : "keyed", batch, dt, S_ROWS / dt);
    dm_product_t p;
    cr_assert_eq(dm_store_product_get(st, "commerce", "orders", &p, NULL), DM_OK);
    cr_assert_eq(p.records, S_ROWS);
    dm_store_product_clear(&p);
    dm_store_product_clear(&out);
    dm_store_destroy(&st);
    dm_t_rmdir(dir);
    free(keys);
    free(rows);
    free(in_rows);
}
