/* bench_store.c: ingest throughput of the store alone: 1M orders rows
 * (random 16-byte uuid keys, ~60-byte rows) committed in synced batches.
 *
 * Not a test (tests never assert timing): CMake builds it with -DDM_PERF=ON
 * (test.sh does, so it keeps linking) and nothing runs it. Build and run
 * (from the repo root; a RelWithDebInfo or Release build for figures):
 *   cmake -S . -B build -DDM_PERF=ON && cmake --build build --target bench_store
 *   build/perf/bench_store [batch (20000)] [keyed|keyless] [pk_recent_max entries] */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Prints what failed and exits: a benchmark has no cleanup worth doing. */
static void s_check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "bench_store: %s failed\n", what);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    size_t batch = argc > 1 ? strtoul(argv[1], NULL, 10) : S_DEFAULT_BATCH;
    bool keyless = argc > 2 && strcmp(argv[2], "keyless") == 0;
    dm_store_opts_t opts = {0};
    if (argc > 3)
        opts.pk_recent_max = strtoul(argv[3], NULL, 10);
    s_check(batch > 0, "batch > 0");
    char dir[64];
    s_check(dm_t_tmpdir(dir, sizeof dir, "bench_store") != NULL, "temp dir");
    dm_store_t *st = NULL;
    s_check(dm_store_open(dir, &opts, &st, NULL) == DM_OK, "dm_store_open");
    dm_product_t in = {.domain = "commerce", .name = "orders", .version = "1.0.0",
                       .version_major = 1, .contract = "{}", .contract_len = 2}, out;
    dm_register_outcome oc;
    s_check(dm_store_product_register(st, &in, &oc, &out, NULL, NULL) == DM_OK, "register");
    uint8_t (*keys)[S_KEY_BYTES] = malloc((size_t)S_ROWS * S_KEY_BYTES);
    char (*rows)[S_ROW_BYTES] = malloc((size_t)S_ROWS * S_ROW_BYTES);
    dm_row_in_t *in_rows = malloc(batch * sizeof *in_rows);
    s_check(keys && rows && in_rows, "malloc");
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
        s_check(dm_store_commit_batch(st, out.id, in_rows, n, NULL, 0, "", &r, NULL) == DM_OK,
                "dm_store_commit_batch");
    }
    double dt = dm_clock_mono_s() - t0;
    dm_product_t p;
    s_check(dm_store_product_get(st, "commerce", "orders", &p, NULL) == DM_OK, "product_get");
    /* A figure for rows the store did not keep would be meaningless. */
    s_check(p.records == S_ROWS, "every row stored");
    printf("store bench: %d %s rows, batch %zu: %.3f s = %.0f rows/s\n", S_ROWS,
           keyless ? "keyless" : "keyed", batch, dt, S_ROWS / dt);
    dm_store_product_clear(&p);
    dm_store_product_clear(&out);
    dm_store_destroy(&st);
    dm_t_rmdir(dir);
    free(keys);
    free(rows);
    free(in_rows);
    return 0;
}
