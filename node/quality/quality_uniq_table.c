/* quality_uniq_table.c: a unique check's values and their live-row counts
 * in the writer's memory: an open-addressing hash table whose slots point
 * into an arena holding each value's count and its index key, so that
 * equality is exact (a hash only finds the candidates).
 *
 * A slot is one u64: the upper 32 bits of the value's hash (a tag that
 * spares most key comparisons) and the entry's arena offset / 4 + 1 (0:
 * empty). An entry is u32 count, u16 klen, the key, padded to 4 bytes.
 * Values are never removed (a count may go to 0): undoing a batch is
 * subtracting what it added, and the table only grows with the distinct
 * values ever seen since it was built. About 12 + 8 + key bytes per value
 * at the table's load (at most 3/4 of the slots used). */
#include "quality/quality_priv.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "storage/index_bloom.h"

#define S_SLOTS_MIN 1024u
#define S_ENTRY_HEAD 6 /* u32 count, u16 klen */
#define S_ALIGN 4
#define S_ARENA_MIN 4096u
#define S_GOLDEN 0x9E3779B97F4A7C15ull

struct dm_quality__utable {
    uint64_t *slots;
    size_t nslots, n;
    uint8_t *arena;
    size_t len, cap;
};

/* The home slot of a value whose hash has tag (its upper 32 bits): a
 * function of the tag alone, so that growing never reads a key back, and
 * multiplied so that values of one home still differ in most tag bits. */
static size_t s_home(uint64_t tag, size_t nslots)
{
    return (size_t)((tag * S_GOLDEN) >> 32) & (nslots - 1);
}

dm_quality__utable_t *dm_quality__utable_new(void)
{
    return calloc(1, sizeof(dm_quality__utable_t));
}

void dm_quality__utable_destroy(dm_quality__utable_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free((*self_p)->arena);
    free(*self_p);
    *self_p = NULL;
}

size_t dm_quality__utable_bytes(const dm_quality__utable_t *self)
{
    return self ? self->nslots * sizeof *self->slots + self->cap : 0;
}

size_t dm_quality__utable_count(const dm_quality__utable_t *self)
{
    return self->n;
}

static size_t s_entry_bytes(size_t klen)
{
    return (S_ENTRY_HEAD + klen + S_ALIGN - 1) & ~(size_t)(S_ALIGN - 1);
}

/* The slots a table of n values wants: a power of two, at most 3/4 full. */
static size_t s_slots_for(size_t n)
{
    size_t s = S_SLOTS_MIN;
    while (n > s / 4 * 3)
        s *= 2;
    return s;
}

size_t dm_quality__utable_growth(const dm_quality__utable_t *self, size_t values,
                                 size_t key_bytes)
{
    size_t slots = s_slots_for(self->n + values), grow = 0;
    if (slots > self->nslots)
        grow += (slots - self->nslots) * sizeof *self->slots;
    size_t want = self->len + values * (S_ENTRY_HEAD + S_ALIGN) + key_bytes;
    if (want > self->cap) {
        size_t cap = self->cap ? self->cap : S_ARENA_MIN;
        while (cap < want)
            cap *= 2;
        grow += cap - self->cap;
    }
    return grow;
}

bool dm_quality__utable_reserve(dm_quality__utable_t *self, size_t values, size_t key_bytes)
{
    size_t want = self->len + values * (S_ENTRY_HEAD + S_ALIGN) + key_bytes;
    if (want > self->cap) {
        size_t cap = self->cap ? self->cap : S_ARENA_MIN;
        while (cap < want)
            cap *= 2;
        uint8_t *a = realloc(self->arena, cap);
        if (!a)
            return false;
        self->arena = a;
        self->cap = cap;
    }
    size_t nslots = s_slots_for(self->n + values);
    if (nslots <= self->nslots)
        return true;
    uint64_t *s = calloc(nslots, sizeof *s);
    if (!s)
        return false;
    for (size_t i = 0; i < self->nslots; i++) {
        uint64_t x = self->slots[i];
        if (!x)
            continue;
        size_t j = s_home(x >> 32, nslots);
        while (s[j])
            j = (j + 1) & (nslots - 1);
        s[j] = x;
    }
    free(self->slots);
    self->slots = s;
    self->nslots = nslots;
    return true;
}

uint32_t *dm_quality__utable_find(dm_quality__utable_t *self, const uint8_t *key, size_t klen,
                                  uint64_t h, bool insert)
{
    if (!self->nslots)
        return NULL;
    size_t mask = self->nslots - 1;
    uint64_t tag = h >> 32;
    for (size_t i = s_home(tag, self->nslots);; i = (i + 1) & mask) {
        uint64_t x = self->slots[i];
        if (!x) {
            if (!insert || (self->n + 1 > self->nslots / 4 * 3) ||
                self->len + s_entry_bytes(klen) > self->cap)
                return NULL; /* not there, or no room reserved for it */
            uint8_t *e = self->arena + self->len;
            uint32_t zero = 0;
            uint16_t kl = (uint16_t)klen;
            memcpy(e, &zero, 4);
            memcpy(e + 4, &kl, 2);
            memcpy(e + S_ENTRY_HEAD, key, klen);
            self->slots[i] = tag << 32 | (uint64_t)(self->len / S_ALIGN + 1);
            self->len += s_entry_bytes(klen);
            self->n++;
            return (uint32_t *)(void *)e;
        }
        if (x >> 32 != tag)
            continue;
        uint8_t *e = self->arena + ((x & UINT32_MAX) - 1) * S_ALIGN;
        uint16_t kl;
        memcpy(&kl, e + 4, 2);
        if (kl == klen && memcmp(e + S_ENTRY_HEAD, key, klen) == 0)
            return (uint32_t *)(void *)e;
    }
}

void dm_quality__utable_prefetch(const dm_quality__utable_t *self, uint64_t h)
{
    if (self->nslots)
        __builtin_prefetch(&self->slots[s_home(h >> 32, self->nslots)]);
}

size_t dm_quality__utable_offset(const dm_quality__utable_t *self, const uint32_t *count)
{
    return (size_t)((const uint8_t *)(const void *)count - self->arena);
}

uint32_t *dm_quality__utable_at(dm_quality__utable_t *self, size_t off)
{
    return (uint32_t *)(void *)(self->arena + off);
}

int dm_quality__utable_each(const dm_quality__utable_t *self, dm_quality__utable_fn fn,
                            void *ctx)
{
    for (size_t off = 0; off < self->len;) {
        const uint8_t *e = self->arena + off;
        uint32_t count;
        uint16_t kl;
        memcpy(&count, e, 4);
        memcpy(&kl, e + 4, 2);
        int rc = fn(ctx, e + S_ENTRY_HEAD, kl, count);
        if (rc)
            return rc;
        off += s_entry_bytes(kl);
    }
    return 0;
}

/* ---- the hash, and a table in a file (quality_uniq_bloom.c keeps them over a clean restart) ---- */

/* SipHash under a key drawn once per process: the values come from the
 * producers' records, and an unkeyed hash would let one craft values of
 * one slot chain, each probe then walking all of them. (16 ns for a 30
 * byte value here, against 3.5 ns unkeyed: about 1% of a record's ingest.) */
static uint8_t s_hash_key[crypto_shorthash_KEYBYTES];
static pthread_once_t s_hash_once = PTHREAD_ONCE_INIT;

static void s_hash_init(void)
{
    randombytes_buf(s_hash_key, sizeof s_hash_key);
}

uint64_t dm_quality__uhash(const uint8_t *key, size_t klen)
{
    pthread_once(&s_hash_once, s_hash_init);
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, key, klen, s_hash_key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

/* The file holds the live values only (count > 0), as a list: u64 n, u64
 * bytes of the entries, u64 their checksum, then per value u32 count, u16
 * klen, the key. The reader builds the table again by inserting them
 * (this process's hash, no value lost or kept twice). */
typedef struct {
    uint64_t n, bytes, sum;
} s_file_head;

typedef struct {
    FILE *f;
    uint64_t sum;
    bool ok;
} s_writer;

static int s_write_entry(void *ctx, const uint8_t *key, size_t klen, uint32_t count)
{
    s_writer *w = ctx;
    if (!count)
        return 0;
    uint16_t kl = (uint16_t)klen;
    w->ok = w->ok && fwrite(&count, sizeof count, 1, w->f) == 1 &&
            fwrite(&kl, sizeof kl, 1, w->f) == 1 && fwrite(key, 1, klen, w->f) == klen;
    w->sum = (w->sum ^ dm_index_bloom_hash(key, klen) ^ count) * S_GOLDEN;
    return w->ok ? 0 : 1;
}

static int s_measure_live(void *ctx, const uint8_t *key, size_t klen, uint32_t count)
{
    (void)key;
    uint64_t *nb = ctx;
    if (count) {
        nb[0]++;
        nb[1] += S_ENTRY_HEAD + klen;
    }
    return 0;
}

bool dm_quality__utable_write(const dm_quality__utable_t *self, FILE *f)
{
    uint64_t nb[2] = {0, 0};
    dm_quality__utable_each(self, s_measure_live, nb);
    s_writer w = {f, 0, true};
    long at = ftell(f);
    s_file_head h = {nb[0], nb[1], 0};
    if (at < 0 || fwrite(&h, sizeof h, 1, f) != 1)
        return false;
    dm_quality__utable_each(self, s_write_entry, &w);
    h.sum = w.sum;
    long end = ftell(f);
    return w.ok && end >= 0 && fseek(f, at, SEEK_SET) == 0 && fwrite(&h, sizeof h, 1, f) == 1 &&
           fseek(f, end, SEEK_SET) == 0;
}

/* Inserts the entries of buf (h's) into t; false when they are not h's
 * (a short or torn entry, a count of 0, a value twice, a wrong sum). */
static bool s_insert_all(dm_quality__utable_t *t, const uint8_t *buf, const s_file_head *h)
{
    uint64_t sum = 0, n = 0;
    for (size_t off = 0; off < h->bytes; n++) {
        uint32_t count;
        uint16_t kl;
        if (h->bytes - off < S_ENTRY_HEAD)
            return false;
        memcpy(&count, buf + off, 4);
        memcpy(&kl, buf + off + 4, 2);
        off += S_ENTRY_HEAD;
        if (!count || h->bytes - off < kl)
            return false;
        const uint8_t *key = buf + off;
        off += kl;
        if (dm_quality__utable_find(t, key, kl, dm_quality__uhash(key, kl), false))
            return false;
        uint32_t *c = dm_quality__utable_find(t, key, kl, dm_quality__uhash(key, kl), true);
        if (!c)
            return false;
        *c = count;
        sum = (sum ^ dm_index_bloom_hash(key, kl) ^ count) * S_GOLDEN;
    }
    return n == h->n && sum == h->sum;
}

dm_quality__utable_t *dm_quality__utable_read(FILE *f, size_t max_bytes)
{
    s_file_head h;
    if (fread(&h, sizeof h, 1, f) != 1 || h.n > h.bytes / S_ENTRY_HEAD || h.bytes > max_bytes)
        return NULL;
    dm_quality__utable_t *t = dm_quality__utable_new();
    uint8_t *buf = malloc(h.bytes ? (size_t)h.bytes : 1);
    bool ok = t && buf && fread(buf, 1, (size_t)h.bytes, f) == h.bytes &&
              dm_quality__utable_growth(t, (size_t)h.n, (size_t)h.bytes) <= max_bytes &&
              dm_quality__utable_reserve(t, (size_t)h.n, (size_t)h.bytes) &&
              s_insert_all(t, buf, &h);
    free(buf);
    if (!ok)
        dm_quality__utable_destroy(&t);
    return t;
}
