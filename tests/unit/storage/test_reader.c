/* test_reader.c: the store's read API for queries: log scans, key-range
 * walks that merge pk and pk_recent, prefix bounds, lookups, counts and
 * snapshot isolation. Keys and rows are raw bytes here (the store does not
 * look inside them). */
#include <criterion/criterion.h>

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "storage/reader.h"
#include "storage/store.h"
#include "fixture.h"

static char s_dir[PATH_MAX];
static dm_store_t *s_store;
static uint32_t s_pid, s_other;

static uint32_t s_register(const char *name)
{
    dm_product_t in = {0}, out = {0};
    in.domain = (char *)"d";
    in.name = (char *)name;
    in.version = (char *)"1.0.0";
    in.version_major = 1;
    in.contract = (char *)"{}";
    in.contract_len = 2;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, &out, NULL, NULL), DM_OK);
    uint32_t id = out.id;
    dm_store_product_clear(&out);
    return id;
}

/* A store whose pk_recent holds at most 4 entries, so that commits move
 * entries on into pk and both parts hold keys. */
static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_reader"));
    dm_store_opts_t opts = {.pk_recent_max = 4};
    cr_assert_eq(dm_store_open(s_dir, &opts, &s_store, NULL), DM_OK);
    s_pid = s_register("p");
    s_other = s_register("q");
}

static void s_teardown(void)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
}

TestSuite(reader, .init = s_setup, .fini = s_teardown);

/* Commits rows with 2-byte keys {a, b} and rows "a.b/tag". */
static void s_put(uint32_t pid, const uint8_t (*keys)[2], size_t n, const char *tag)
{
    dm_row_in_t *in = calloc(n, sizeof *in);
    char (*rows)[32] = calloc(n, sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        snprintf(rows[i], sizeof rows[i], "%u.%u/%s", keys[i][0], keys[i][1], tag);
        in[i] = (dm_row_in_t){keys[i], 2, rows[i], strlen(rows[i])};
    }
    cr_assert_eq(dm_store_commit_batch(s_store, pid, in, n, NULL, 0, "t", NULL, NULL), DM_OK);
    free(in);
    free(rows);
}

/* Keys a = 1..5, b = 1..4 written in four batches (so pk_recent overflows),
 * then a.2 of every a rewritten ("new"). */
static void s_fill(void)
{
    for (uint8_t b = 1; b <= 4; b++) {
        uint8_t k[5][2];
        for (uint8_t a = 1; a <= 5; a++)
            k[a - 1][0] = a, k[a - 1][1] = b;
        s_put(s_pid, (const uint8_t (*)[2])k, 5, "old");
    }
    uint8_t k[5][2];
    for (uint8_t a = 1; a <= 5; a++)
        k[a - 1][0] = a, k[a - 1][1] = 2;
    s_put(s_pid, (const uint8_t (*)[2])k, 5, "new");
    static const uint8_t other[][2] = {{0, 0}, {3, 3}, {9, 9}};
    s_put(s_other, other, 3, "other");
}

/* Walks [lo, hi] and writes "row;row;..." into out. */
static size_t s_walk(const dm_store_bound_t *lo, const dm_store_bound_t *hi, char *out, size_t cap)
{
    dm_reader_t *r;
    dm_reader_cursor_t *c;
    cr_assert_eq(dm_reader_open(s_store, &r, NULL), DM_OK);
    cr_assert_eq(dm_reader_cursor_open(r, &c, NULL), DM_OK);
    cr_assert_eq(dm_reader_cursor_range(c, s_pid, lo, hi, true, NULL), DM_OK);
    size_t n = 0, pos = 0;
    const void *row, *key;
    size_t rlen, klen;
    uint64_t seq;
    dm_err err;
    out[0] = 0;
    while ((err = dm_reader_cursor_next(c, &seq, &row, &rlen, &key, &klen, NULL)) == DM_OK) {
        cr_assert_eq(klen, 2);
        pos += (size_t)snprintf(out + pos, cap - pos, "%.*s;", (int)rlen, (const char *)row);
        n++;
    }
    cr_assert_eq(err, DM_ERR_NOTFOUND);
    dm_reader_cursor_close(&c);
    dm_reader_close(&r);
    return n;
}

Test(reader, walk_merges_both_index_parts_newest_wins)
{
    s_fill();
    char out[1024];
    dm_store_bound_t all = {NULL, 0, true};
    cr_assert_eq(s_walk(&all, &all, out, sizeof out), 20);
    cr_assert(strstr(out, "1.1/old;1.2/new;1.3/old;1.4/old;2.1/old;2.2/new;"), "%s", out);
    cr_assert(strstr(out, "5.4/old;") == out + strlen(out) - 8, "%s", out);
    cr_assert_null(strstr(out, "2/old"), "%s", out); /* no stale version */
    cr_assert_null(strstr(out, "other"), "%s", out);
}

Test(reader, prefix_bounds_select_leading_key_parts)
{
    s_fill();
    char out[1024];
    uint8_t three = 3, two = 2, four = 4, ff = 0xff;
    dm_store_bound_t lo = {&three, 1, true}, hi = {&three, 1, true};
    cr_assert_eq(s_walk(&lo, &hi, out, sizeof out), 4);
    cr_assert_str_eq(out, "3.1/old;3.2/new;3.3/old;3.4/old;");
    lo = (dm_store_bound_t){&two, 1, false};
    hi = (dm_store_bound_t){&four, 1, false};
    cr_assert_eq(s_walk(&lo, &hi, out, sizeof out), 4, "%s", out);
    cr_assert_str_eq(out, "3.1/old;3.2/new;3.3/old;3.4/old;");
    uint8_t k32[2] = {3, 2}, k41[2] = {4, 1};
    lo = (dm_store_bound_t){k32, 2, false};
    hi = (dm_store_bound_t){k41, 2, true};
    cr_assert_eq(s_walk(&lo, &hi, out, sizeof out), 3);
    cr_assert_str_eq(out, "3.3/old;3.4/old;4.1/old;");
    lo = (dm_store_bound_t){&ff, 1, false}; /* nothing sorts after 0xff.. of this product */
    hi = (dm_store_bound_t){NULL, 0, true};
    cr_assert_eq(s_walk(&lo, &hi, out, sizeof out), 0);
}

Test(reader, key_only_walk_fetches_no_rows)
{
    s_fill();
    dm_reader_t *r;
    dm_reader_cursor_t *c;
    cr_assert_eq(dm_reader_open(s_store, &r, NULL), DM_OK);
    cr_assert_eq(dm_reader_cursor_open(r, &c, NULL), DM_OK);
    dm_store_bound_t all = {NULL, 0, true};
    cr_assert_eq(dm_reader_cursor_range(c, s_pid, &all, &all, false, NULL), DM_OK);
    const void *row = (void *)1, *key;
    size_t klen, n = 0;
    uint64_t seq;
    while (dm_reader_cursor_next(c, &seq, &row, NULL, &key, &klen, NULL) == DM_OK) {
        cr_assert_null(row);
        cr_assert_gt(seq, 0);
        n++;
    }
    cr_assert_eq(n, 20);
    dm_reader_cursor_close(&c);
    dm_reader_close(&r);
}

Test(reader, scan_yields_live_rows_in_log_order)
{
    s_fill();
    dm_reader_t *r;
    dm_reader_cursor_t *c;
    cr_assert_eq(dm_reader_open(s_store, &r, NULL), DM_OK);
    cr_assert_eq(dm_reader_cursor_open(r, &c, NULL), DM_OK);
    cr_assert_eq(dm_reader_cursor_scan(c, s_pid), DM_OK);
    const void *row;
    size_t len, n = 0;
    uint64_t seq, last = 0;
    char last_row[32] = "";
    while (dm_reader_cursor_next(c, &seq, &row, &len, NULL, NULL, NULL) == DM_OK) {
        cr_assert_gt(seq, last);
        last = seq;
        snprintf(last_row, sizeof last_row, "%.*s", (int)len, (const char *)row);
        n++;
    }
    cr_assert_eq(n, 20);
    cr_assert_str_eq(last_row, "5.2/new"); /* rewritten rows move to the end of the log */
    uint64_t count;
    cr_assert_eq(dm_reader_count(r, s_pid, &count, NULL), DM_OK);
    cr_assert_eq(count, 20);
    cr_assert_eq(dm_reader_count(r, 999, &count, NULL), DM_ERR_NOTFOUND);
    dm_reader_cursor_close(&c);
    dm_reader_close(&r);
}

Test(reader, get_finds_the_newest_row_by_key)
{
    s_fill();
    dm_reader_t *r;
    cr_assert_eq(dm_reader_open(s_store, &r, NULL), DM_OK);
    const void *row;
    size_t len;
    uint8_t k[2] = {1, 2}, missing[2] = {1, 9};
    cr_assert_eq(dm_reader_get(r, s_pid, k, 2, &row, &len, NULL), DM_OK);
    cr_assert_eq(len, 7);
    cr_assert_arr_eq(row, "1.2/new", 7);
    cr_assert_eq(dm_reader_get(r, s_pid, missing, 2, &row, &len, NULL), DM_ERR_NOTFOUND);
    cr_assert_null(row);
    dm_reader_close(&r);
}

Test(reader, reader_sees_its_snapshot_only)
{
    s_fill();
    dm_reader_t *r;
    cr_assert_eq(dm_reader_open(s_store, &r, NULL), DM_OK);
    static const uint8_t k[][2] = {{6, 1}};
    s_put(s_pid, k, 1, "later");
    uint64_t count;
    cr_assert_eq(dm_reader_count(r, s_pid, &count, NULL), DM_OK);
    cr_assert_eq(count, 20);
    const void *row;
    size_t len;
    cr_assert_eq(dm_reader_get(r, s_pid, k[0], 2, &row, &len, NULL), DM_ERR_NOTFOUND);
    dm_reader_close(&r);
    cr_assert_eq(dm_reader_open(s_store, &r, NULL), DM_OK);
    cr_assert_eq(dm_reader_count(r, s_pid, &count, NULL), DM_OK);
    cr_assert_eq(count, 21);
    dm_reader_close(&r);
}

/* ---- map growth under a steady overlap of readers ---- */

#define T_HOLD_MS 20        /* how long a simulated query keeps its reader */
#define T_GROW_DEADLINE_MS 10000
#define T_ROWS 30000
#define T_ROW_BYTES 100

static atomic_bool s_grown, s_readers_stop;
static atomic_int s_busy;

static void s_hold(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL); /* a query's work, not a wait for a condition */
}

/* A query loop: readers of T_HOLD_MS, back to back, until told to stop. */
static void *s_query_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&s_readers_stop)) {
        dm_reader_t *r = NULL;
        dm_err rc = dm_reader_open(s_store, &r, NULL);
        if (rc == DM_ERR_BUSY) {
            atomic_fetch_add(&s_busy, 1);
            s_hold(1);
            continue;
        }
        cr_assert_eq(rc, DM_OK);
        s_hold(T_HOLD_MS);
        dm_reader_close(&r);
    }
    return NULL;
}

static void *s_big_commit(void *arg)
{
    static uint8_t keys[T_ROWS][4];
    static char payload[T_ROW_BYTES];
    static dm_row_in_t rows[T_ROWS];
    for (size_t i = 0; i < T_ROWS; i++) {
        uint32_t k = (uint32_t)(i * 7919u);
        memcpy(keys[i], &k, 4);
        rows[i] = (dm_row_in_t){keys[i], 4, payload, T_ROW_BYTES};
    }
    *(dm_err *)arg = dm_store_commit_batch(s_store, s_pid, rows, T_ROWS, NULL, 0, "t", NULL, NULL);
    atomic_store(&s_grown, true);
    return NULL;
}

/* Three threads keep readers open back to back, always overlapping; a
 * commit that needs a bigger map must still get through (before, glibc's
 * reader-preferring lock let it wait for as long as the overlap lasted). */
Test(reader, map_growth_is_not_starved_by_overlapping_readers, .timeout = 60)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_reader"));
    dm_store_opts_t opts = {.initial_map_bytes = (size_t)1 << 20,
                            .max_map_bytes = (size_t)256 << 20};
    cr_assert_eq(dm_store_open(s_dir, &opts, &s_store, NULL), DM_OK);
    s_pid = s_register("grow");
    size_t before = dm_store_map_size(s_store);
    atomic_store(&s_grown, false);
    atomic_store(&s_readers_stop, false);
    atomic_store(&s_busy, 0);
    pthread_t q[3], w;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pthread_create(&q[i], NULL, s_query_loop, NULL), 0);
        s_hold(T_HOLD_MS / 3);
    }
    dm_err rc = DM_ERR_IO;
    cr_assert_eq(pthread_create(&w, NULL, s_big_commit, &rc), 0);
    long long deadline = dm_clock_mono_ms() + T_GROW_DEADLINE_MS;
    while (!atomic_load(&s_grown) && dm_clock_mono_ms() < deadline)
        s_hold(5);
    bool grown = atomic_load(&s_grown);
    atomic_store(&s_readers_stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(q[i], NULL);
    pthread_join(w, NULL);
    cr_assert(grown, "the commit that grows the map waited over %d ms behind readers",
              T_GROW_DEADLINE_MS);
    cr_assert_eq(rc, DM_OK);
    cr_assert_gt(dm_store_map_size(s_store), before);
}
