/* radix.h: sorting by a 64-bit key prefix, for the hot sorts of the
 * store's batches (storage/records.c) and of the quality checks' values
 * (node/quality/quality_batch.c), where qsort's n log n memcmp calls were
 * a large share of the writer's CPU.
 *
 * The items are structs whose FIRST member is a uint64_t: the first 8
 * bytes of the item's key, big-endian and zero-padded (dm_radix_prefix),
 * so that integer order is the keys' memcmp order up to ties. They are
 * sorted by it stably, least significant byte first (a pass is skipped
 * when every key has the same byte there), then each run of equal
 * prefixes by cmp, the full order. Inline, so that each caller's item
 * size is a constant and the copies stay cheap. */
#ifndef DM_RADIX_H
#define DM_RADIX_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DM_RADIX_BYTES 8          /* bytes of the prefix */
#define DM_RADIX_BUCKETS 256      /* buckets of one pass (one byte) */
#define DM_RADIX_INSERTION_MAX 16 /* runs of equal prefixes up to this long: insertion sort */

/* The first DM_RADIX_BYTES of key as a big-endian integer, zero-padded. */
static inline uint64_t dm_radix_prefix(const uint8_t *key, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < DM_RADIX_BYTES; i++)
        v = v << 8 | (i < len ? key[i] : 0);
    return v;
}

static inline uint64_t dm_radix__key(const uint8_t *item)
{
    uint64_t k;
    memcpy(&k, item, sizeof k);
    return k;
}

/* Orders each run of equal prefixes of items[0..n) by cmp; spare is one
 * item of scratch. */
static inline void dm_radix__ties(uint8_t *items, size_t n, size_t size, uint8_t *spare,
                                  int (*cmp)(const void *, const void *))
{
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && dm_radix__key(items + j * size) == dm_radix__key(items + i * size))
            j++;
        if (j - i > DM_RADIX_INSERTION_MAX) {
            qsort(items + i * size, j - i, size, cmp);
        } else {
            for (size_t a = i + 1; a < j; a++)
                for (size_t b = a; b > i && cmp(items + (b - 1) * size, items + b * size) > 0;
                     b--) {
                    memcpy(spare, items + b * size, size);
                    memcpy(items + b * size, items + (b - 1) * size, size);
                    memcpy(items + (b - 1) * size, spare, size);
                }
        }
        i = j;
    }
}

/* Sorts items[0..n) (each size bytes, a uint64_t prefix first) by prefix,
 * then runs of equal prefixes by cmp; tmp: n items of scratch. */
static inline void dm_radix_sort(void *items, void *tmp, size_t n, size_t size,
                                 int (*cmp)(const void *, const void *))
{
    size_t count[DM_RADIX_BYTES][DM_RADIX_BUCKETS] = {{0}};
    uint8_t *from = items, *to = tmp;
    if (n < 2)
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = dm_radix__key(from + i * size);
        for (size_t b = 0; b < DM_RADIX_BYTES; b++)
            count[b][(k >> (8 * b)) & 0xff]++;
    }
    uint64_t first = dm_radix__key(from);
    for (size_t b = 0; b < DM_RADIX_BYTES; b++) { /* least significant byte first */
        if (count[b][(first >> (8 * b)) & 0xff] == n)
            continue; /* every key has this byte: the pass would move nothing */
        size_t pos[DM_RADIX_BUCKETS], sum = 0;
        for (size_t v = 0; v < DM_RADIX_BUCKETS; v++) {
            pos[v] = sum;
            sum += count[b][v];
        }
        for (size_t i = 0; i < n; i++)
            memcpy(to + pos[(dm_radix__key(from + i * size) >> (8 * b)) & 0xff]++ * size,
                   from + i * size, size);
        uint8_t *x = from;
        from = to;
        to = x;
    }
    if (from != (uint8_t *)items)
        memcpy(items, from, n * size);
    dm_radix__ties(items, n, size, tmp, cmp);
}

#endif
