/* index_bloom.h: the blocked Bloom filter of the primary-key index
 * (storage/index_bloom.c), for a caller that keeps one in its own memory:
 * node/quality/'s unique checks. One implementation, one hash: a key's
 * bits fall in one 64-byte block (one cache miss), 24 bits per key sized
 * for, about 0.04% false positives at that load (index_bloom.c says why).
 *
 * A filter is len bytes the caller owns (zeroed, from dm_index_bloom_bytes);
 * the functions never allocate and cannot fail. */
#ifndef DM_INDEX_BLOOM_H
#define DM_INDEX_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DM_INDEX_BLOOM_BITS_PER_KEY 24 /* a filter's size per key it is sized for */

/* Bytes of a filter sized for n keys: whole blocks, at least one. */
size_t dm_index_bloom_bytes(uint64_t n);
/* The key's hash, computed once for a test and a set. */
uint64_t dm_index_bloom_hash(const void *key, size_t len);
/* false when no key of hash h was set in bits (certain); true when one may have been. */
bool dm_index_bloom_test(const uint8_t *bits, size_t len, uint64_t h);
void dm_index_bloom_set(uint8_t *bits, size_t len, uint64_t h);

#endif
