/* test_records_sort.c: a batch's keys are put in key order by a radix sort
 * on their first 8 bytes with a full comparison for equal prefixes
 * (storage/records.c): keys that differ only past byte 8, short keys and
 * their zero-padded extensions, and duplicates must still come out right,
 * in a batch written as an index run and in one that goes to pk_recent. */
#include "store_test.h"

#define S_DISTINCT 3000 /* keys of the big batch: >= pk_recent_max / 32, so a run */
#define S_DUPS 500      /* rows repeating an earlier key of the batch */
#define S_KEY_MAX 20

typedef struct {
    uint8_t k[S_KEY_MAX];
    size_t len;
} s_tkey;

/* Deterministic pseudo-random numbers (xorshift64*). */
static uint64_t s_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* Key i of a set built to trip a prefix sort: groups of keys that share
 * their first 8 bytes and differ after them, keys shorter than 8 bytes,
 * and a short key's extensions by zero bytes (equal prefixes, different
 * lengths). Distinct for distinct i. */
static s_tkey s_make_key(size_t i)
{
    s_tkey t = {{0}, 0};
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ (i / 4);
    uint64_t r = s_next(&seed);
    switch (i % 4) {
    case 0: /* 16 random bytes */
    case 1: { /* the same first 8 bytes as its neighbour, then i */
        t.len = 16;
        for (size_t b = 0; b < 8; b++)
            t.k[b] = (uint8_t)(r >> (8 * b));
        for (size_t b = 0; b < 8; b++)
            t.k[8 + b] = (uint8_t)((uint64_t)i >> (8 * b));
        break;
    }
    case 2: /* a 3-byte key */
        t.len = 3;
        memcpy(t.k, &r, 2);
        t.k[2] = (uint8_t)(i >> 2);
        t.k[1] = (uint8_t)(i >> 10);
        break;
    default: /* the 3-byte key of i - 1 with zero bytes after it */
        t = s_make_key(i - 1);
        t.len = 3 + 1 + (i / 4) % 9;
        break;
    }
    return t;
}

/* Commits n distinct keys plus dups repeats of earlier ones in a shuffled
 * order, each row naming its position, and checks that every key reads
 * back the row of its last occurrence. */
static void s_check_batch(size_t n, size_t dups)
{
    uint32_t pid = s_orders();
    size_t total = n + dups;
    size_t *order = malloc(total * sizeof *order);
    dm_row_in_t *rows = malloc(total * sizeof *rows);
    s_tkey *keys = malloc(n * sizeof *keys);
    char (*text)[32] = malloc(total * sizeof *text);
    size_t *last = malloc(n * sizeof *last);
    cr_assert(order && rows && keys && text && last);
    for (size_t i = 0; i < n; i++)
        keys[i] = s_make_key(i);
    uint64_t seed = 42;
    for (size_t i = 0; i < total; i++)
        order[i] = i < n ? i : (size_t)(s_next(&seed) % n);
    for (size_t i = total - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = (size_t)(s_next(&seed) % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < total; i++) {
        const s_tkey *k = &keys[order[i]];
        snprintf(text[i], sizeof text[i], "row %zu", i);
        rows[i] = (dm_row_in_t){k->k, k->len, text[i], strlen(text[i])};
        last[order[i]] = i;
    }
    dm_batch_result_t res;
    cr_assert_eq(dm_store_commit_batch(s_store, pid, rows, total, NULL, 0, "", &res, NULL), DM_OK);
    cr_assert_eq(res.inserted, n, "inserted %llu of %zu distinct keys",
                 (unsigned long long)res.inserted, n);
    cr_assert_eq(res.updated, dups);
    dm_buf_t row = DM_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(dm_store_get_by_key(s_store, pid, keys[i].k, keys[i].len, &row, NULL), DM_OK,
                     "key %zu (%zu bytes) not found", i, keys[i].len);
        cr_assert_eq(row.len, strlen(text[last[i]]));
        cr_assert_eq(memcmp(row.data, text[last[i]], row.len), 0, "key %zu read '%.*s', want '%s'",
                     i, (int)row.len, row.data, text[last[i]]);
    }
    dm_buf_free(&row);
    cr_assert_eq(s_scan(s_store, pid).n, n);
    free(order);
    free(rows);
    free(keys);
    free(text);
    free(last);
}

Test(store, batch_as_run_sorts_keys_equal_in_their_first_8_bytes)
{
    s_check_batch(S_DISTINCT, S_DUPS);
}

Test(store, small_batch_sorts_keys_equal_in_their_first_8_bytes)
{
    s_check_batch(40, 10);
}
