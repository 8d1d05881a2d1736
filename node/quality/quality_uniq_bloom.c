/* quality_uniq_bloom.c: a Bloom filter over every value a unique check's
 * index holds (base and pending runs), so that a value the check has
 * never seen costs a hash, not a search of the base index and of every
 * run (with a million distinct values most of a batch is new).
 *
 * Blocked: a value's probes fall in one 64-byte block, one cache miss.
 * Stored as one value, 'F' id -> capacity u64, added u64, then the bits,
 * read and written whole by each batch (about 1.2 bytes per value it was
 * sized for). A fold rebuilds it from the base index when more values
 * were added than it was sized for; values that left the index stay in it
 * until then (a false positive costs only the search). Absent (an older
 * store, or after a rebuild of the check): every value is "maybe". */
#include "quality/quality_priv.h"

#include <stdlib.h>
#include <string.h>

#define S_HEAD 16            /* capacity u64, added u64 */
#define S_BITS_PER_VALUE 10  /* about 1% false positives with S_PROBES */
#define S_PROBES 6
#define S_BLOCK_BITS 512     /* all probes of a value in one cache line */
#define S_PROBE_SHIFT 9      /* log2(S_BLOCK_BITS) */
#define S_MIN_CAPACITY 65536 /* values a filter is sized for at least */
#define S_MAX_BYTES (64u << 20)
#define S_MIX1 0x9E3779B97F4A7C15ULL
#define S_MIX2 0xBF58476D1CE4E5B9ULL
#define S_MIX3 0x94D049BB133111EBULL

static uint64_t s_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= S_MIX2;
    x ^= x >> 27;
    x *= S_MIX3;
    return x ^ (x >> 31);
}

/* A 64-bit hash of key (not for adversaries: a collision only costs a
 * search). */
static uint64_t s_hash(const uint8_t *key, size_t n)
{
    uint64_t h = S_MIX1 ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = s_mix(h ^ w) * S_MIX1;
    }
    uint64_t w = 0;
    memcpy(&w, key + i, n - i);
    return s_mix(h ^ w ^ (uint64_t)n << 56);
}

static void s_key(uint8_t k[9], uint64_t id)
{
    k[0] = DM_QTAG_BLOOM;
    dm_quality__put64(k + 1, id);
}

dm_err dm_quality__ubloom_get(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                              dm_quality__ubloom_t *f, dm_buf_t *why)
{
    uint8_t k[9];
    s_key(k, id);
    f->bits = NULL;
    f->nbits = 0;
    dm_err err = dm_quality_db_get(t, pid, k, sizeof k, &f->buf, why);
    if (err == DM_ERR_NOTFOUND)
        return DM_OK;
    if (err)
        return err;
    if (f->buf.len <= S_HEAD || (f->buf.len - S_HEAD) % (S_BLOCK_BITS / 8))
        return DM_OK; /* unusable: treated as absent, replaced at the next fold */
    f->bits = (uint8_t *)f->buf.data + S_HEAD;
    f->nbits = (uint64_t)(f->buf.len - S_HEAD) * 8;
    return DM_OK;
}

/* The first bit of key's block in f, and the probe bits in p. */
static uint64_t s_block(const dm_quality__ubloom_t *f, const uint8_t *key, size_t n, uint64_t *p)
{
    uint64_t h = s_hash(key, n);
    *p = s_mix(h);
    return (h % (f->nbits / S_BLOCK_BITS)) * S_BLOCK_BITS;
}

bool dm_quality__ubloom_maybe(const dm_quality__ubloom_t *f, const uint8_t *key, size_t n)
{
    if (!f->bits)
        return true;
    uint64_t p, base = s_block(f, key, n, &p);
    for (int i = 0; i < S_PROBES; i++, p >>= S_PROBE_SHIFT) {
        uint64_t b = base + (p & (S_BLOCK_BITS - 1));
        if (!(f->bits[b >> 3] & 1u << (b & 7)))
            return false;
    }
    return true;
}

void dm_quality__ubloom_add(dm_quality__ubloom_t *f, const uint8_t *key, size_t n)
{
    if (!f->bits)
        return;
    uint64_t p, base = s_block(f, key, n, &p);
    for (int i = 0; i < S_PROBES; i++, p >>= S_PROBE_SHIFT) {
        uint64_t b = base + (p & (S_BLOCK_BITS - 1));
        f->bits[b >> 3] |= (uint8_t)(1u << (b & 7));
    }
    uint8_t *head = (uint8_t *)f->buf.data;
    dm_quality__put64(head + 8, dm_quality__get64(head + 8) + 1);
}

bool dm_quality__ubloom_full(const dm_quality__ubloom_t *f)
{
    if (!f->bits)
        return true;
    const uint8_t *head = (const uint8_t *)f->buf.data;
    return dm_quality__get64(head + 8) > dm_quality__get64(head);
}

dm_err dm_quality__ubloom_put(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                              const dm_quality__ubloom_t *f, dm_buf_t *why)
{
    if (!f->bits)
        return DM_OK;
    uint8_t k[9];
    s_key(k, id);
    return dm_quality_db_put(t, pid, k, sizeof k, f->buf.data, f->buf.len, why);
}

typedef struct {
    dm_quality__ubloom_t f;
    uint64_t seen;
} s_build_ctx;

static int s_add_entry(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    s_build_ctx *b = ctx;
    dm_quality__ubloom_add(&b->f, (const uint8_t *)key + 9, klen - 9);
    b->seen++;
    return 0;
}

dm_err dm_quality__ubloom_build(dm_store_txn_t *t, uint32_t pid, uint64_t id, uint64_t entries,
                                uint64_t *seen, dm_buf_t *why)
{
    uint64_t cap = entries * 2 > S_MIN_CAPACITY ? entries * 2 : S_MIN_CAPACITY;
    uint64_t bytes = cap * S_BITS_PER_VALUE / 8;
    if (bytes > S_MAX_BYTES) { /* past this the filter only thins out: still correct */
        bytes = S_MAX_BYTES;
        cap = bytes * 8 / S_BITS_PER_VALUE;
    }
    bytes -= bytes % (S_BLOCK_BITS / 8);
    s_build_ctx b = {{DM_BUF_INIT, NULL, 0}, 0};
    dm_quality__ubloom_t *f = &b.f;
    uint8_t head[S_HEAD] = {0};
    dm_quality__put64(head, cap);
    dm_buf_append(&f->buf, head, sizeof head);
    dm_buf_reserve(&f->buf, (size_t)bytes);
    memset(f->buf.data + S_HEAD, 0, (size_t)bytes);
    f->buf.len = S_HEAD + (size_t)bytes;
    f->bits = (uint8_t *)f->buf.data + S_HEAD;
    f->nbits = bytes * 8;
    uint8_t k[9];
    k[0] = DM_QTAG_UNIQUE;
    dm_quality__put64(k + 1, id);
    dm_err err = dm_quality_db_each(t, pid, k, sizeof k, false, s_add_entry, &b, why);
    if (!err)
        err = dm_quality__ubloom_put(t, pid, id, f, why);
    dm_buf_free(&f->buf);
    *seen = b.seen;
    return err;
}

void dm_quality__ubloom_clear(dm_quality__ubloom_t *f)
{
    dm_buf_free(&f->buf);
    f->bits = NULL;
    f->nbits = 0;
}
