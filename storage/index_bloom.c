/* index_bloom.c: a blocked Bloom filter per index run, so that looking a
 * key up skips the runs that cannot hold it.
 *
 * Why: a batch of random keys looks every key up in every run (the upsert
 * needs the row it replaces), and in a run larger than the batch each
 * lookup is a descent to a leaf that is not in the CPU cache: with seven
 * runs at 7M rows, perf put 47% of the writer's time in those descents.
 * A blocked filter costs one cache line per run and key instead: the key's
 * hash picks a 64-byte block and S_K bits inside it. At 10 bits per key
 * 1.2-1.3% of absent keys still descended: with 9 runs at 12M rows, 106K
 * descents per 1M keys (each a page fault or cache miss deep in a big
 * run), a quarter of the writer's CPU. At 16 bits per key 0.2% do (2 bytes
 * a key: 20 MB of filters at 10M rows). At 24 bits per key ~0.04% do:
 * with runs stored as blocks (index_block.c) the false positives' cold
 * descents were the largest cost left of a lookup, ~15 us each with a
 * page fault, 25K per 1M keys into 14M rows. S_K stays 6, so filters
 * written at 10 or 16 bits (their size is their own) stay valid.
 *
 * Filters live in pk_bloom under [pid][run id] (written once, when a run is
 * complete; read zero-copy from the map), so deleting a product's prefix
 * removes them with the runs.
 *
 * index_bloom.h exports the same filter (hash, block, bits) for callers
 * that keep one in their own memory (node/quality/'s unique checks). */
#include "storage/index_bloom.h"
#include "storage/store_int.h"

#include <stdlib.h>
#include <string.h>

#define S_BLOCK_BYTES 64
#define S_BLOCK_BITS (S_BLOCK_BYTES * 8)
#define S_BITS_PER_KEY DM_INDEX_BLOOM_BITS_PER_KEY
#define S_K 6 /* bits set per key, 9 bits of the hash each */

/* A 64-bit hash of key: 8-byte words multiplied in, then splitmix64's
 * finalizer, so that similar keys spread over blocks. */
static uint64_t s_hash(const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

static size_t s_block(uint64_t h, size_t nblocks)
{
    return (size_t)(((h >> 32) * (uint64_t)nblocks) >> 32);
}

dm_err dm_store__bloom_init(dm_store__bloom_t *b, uint64_t n)
{
    b->nblocks = (size_t)((n * S_BITS_PER_KEY + S_BLOCK_BITS - 1) / S_BLOCK_BITS);
    if (b->nblocks == 0)
        b->nblocks = 1;
    b->bits = calloc(b->nblocks, S_BLOCK_BYTES);
    return b->bits ? DM_OK : DM_ERR_NOMEM;
}

/* Sets h's bits in the block blk. */
static void s_set(uint8_t *blk, uint64_t h)
{
    for (int i = 0; i < S_K; i++) {
        unsigned bit = (unsigned)(h >> (i * 9)) & (S_BLOCK_BITS - 1);
        blk[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
}

void dm_store__bloom_add(dm_store__bloom_t *b, const void *key, size_t len)
{
    uint64_t h = s_hash(key, len);
    s_set(b->bits + s_block(h, b->nblocks) * S_BLOCK_BYTES, h);
}

size_t dm_index_bloom_bytes(uint64_t n)
{
    uint64_t blocks = (n * S_BITS_PER_KEY + S_BLOCK_BITS - 1) / S_BLOCK_BITS;
    return (size_t)(blocks ? blocks : 1) * S_BLOCK_BYTES;
}

uint64_t dm_index_bloom_hash(const void *key, size_t len) { return s_hash(key, len); }

bool dm_index_bloom_test(const uint8_t *bits, size_t len, uint64_t h)
{
    return dm_store__bloom_test(dm_store__bloom_block(bits, len, h), h);
}

void dm_index_bloom_set(uint8_t *bits, size_t len, uint64_t h)
{
    if (len >= S_BLOCK_BYTES)
        s_set(bits + s_block(h, len / S_BLOCK_BYTES) * S_BLOCK_BYTES, h);
}

const uint8_t *dm_store__bloom_block(const uint8_t *bits, size_t len, uint64_t h)
{
    if (!bits || len < S_BLOCK_BYTES)
        return NULL;
    const uint8_t *blk = bits + s_block(h, len / S_BLOCK_BYTES) * S_BLOCK_BYTES;
    __builtin_prefetch(blk);
    return blk;
}

bool dm_store__bloom_test(const uint8_t *block, uint64_t h)
{
    if (!block)
        return true;
    for (int i = 0; i < S_K; i++) {
        unsigned bit = (unsigned)(h >> (i * 9)) & (S_BLOCK_BITS - 1);
        if (!(block[bit >> 3] & (1u << (bit & 7))))
            return false;
    }
    return true;
}

bool dm_store__bloom_maybe(const uint8_t *bits, size_t len, const void *key, size_t klen)
{
    uint64_t h = s_hash(key, klen);
    return dm_store__bloom_test(dm_store__bloom_block(bits, len, h), h);
}

void dm_store__bloom_free(dm_store__bloom_t *b)
{
    free(b->bits);
    b->bits = NULL;
    b->nblocks = 0;
}

static void s_key(uint8_t *k, uint32_t pid, uint32_t id)
{
    dm_store__put_be32(k, pid);
    dm_store__put_be32(k + DM_STORE_PID_BYTES, id);
}

dm_err dm_store__bloom_save(dm_store_t *self, MDB_txn *txn, uint32_t pid, uint32_t id,
                            const dm_store__bloom_t *b, dm_buf_t *why)
{
    uint8_t k[DM_STORE_RUN_PREFIX_BYTES];
    s_key(k, pid, id);
    MDB_val key = {sizeof k, k}, val = {b->nblocks * S_BLOCK_BYTES, b->bits};
    return dm_store__mdb_why("save an index filter", mdb_put(txn, self->pk_bloom, &key, &val, 0),
                             why);
}

dm_err dm_store__bloom_load(dm_store_t *self, MDB_txn *txn, uint32_t pid, uint32_t id,
                            const uint8_t **bits, size_t *len, dm_buf_t *why)
{
    uint8_t k[DM_STORE_RUN_PREFIX_BYTES];
    s_key(k, pid, id);
    MDB_val key = {sizeof k, k}, val;
    *bits = NULL;
    *len = 0;
    int rc = mdb_get(txn, self->pk_bloom, &key, &val);
    if (rc == MDB_NOTFOUND)
        return DM_OK; /* a run being merged has none yet: look in it */
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("read an index filter", rc, why);
    *bits = val.mv_data;
    *len = val.mv_size;
    return DM_OK;
}

dm_err dm_store__bloom_delete(dm_store_t *self, MDB_txn *txn, uint32_t pid, uint32_t id,
                              dm_buf_t *why)
{
    uint8_t k[DM_STORE_RUN_PREFIX_BYTES];
    s_key(k, pid, id);
    MDB_val key = {sizeof k, k};
    int rc = mdb_del(txn, self->pk_bloom, &key, NULL);
    return rc == MDB_NOTFOUND ? DM_OK : dm_store__mdb_why("delete an index filter", rc, why);
}
