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
#define _GNU_SOURCE /* mremap */
#include "quality/quality_priv.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "storage/index_bloom.h"

#define S_SLOTS_MIN 1024u
#define S_ENTRY_HEAD 6 /* u32 count, u16 klen */
#define S_ALIGN 4
#define S_ARENA_MIN 4096u
#define S_GOLDEN 0x9E3779B97F4A7C15ull
#define S_HUGE ((size_t)2 << 20) /* a huge page: arrays this large get them */

struct dm_quality__utable {
    uint64_t *slots;
    size_t nslots, n;
    uint8_t *arena;
    size_t len, cap;
    uint8_t hash_key[crypto_shorthash_KEYBYTES]; /* drawn with the table, kept in its file */
};

/* The home slot of a value whose hash has tag (its upper 32 bits): a
 * function of the tag alone, so that growing never reads a key back, and
 * multiplied so that values of one home still differ in most tag bits.
 * The top bits of the product, so that doubling the slots sends home h to
 * 2h or 2h + 1: growing walks the old slots in order and writes the new
 * ones nearly in order, not at random (s_grow). */
static size_t s_home(uint64_t tag, size_t nslots)
{
    uint32_t m = (uint32_t)((tag * S_GOLDEN) >> 32);
    return (size_t)(m >> (32 - __builtin_ctzll(nslots))); /* nslots <= 2^32: the bound's */
}

/* n rounded up to whole huge pages: what s_alloc maps for n. */
static size_t s_round(size_t n)
{
    return (n + S_HUGE - 1) & ~(S_HUGE - 1);
}

/* n zeroed bytes; from S_HUGE up, mapped on a huge-page boundary and
 * advised to be backed by huge pages (where the kernel allows it): a
 * probe of a table of millions of values would otherwise miss the TLB as
 * well as the cache, and growing it fault every 4 KB. Freed with s_free. */
static void *s_alloc(size_t n)
{
    if (n < S_HUGE)
        return calloc(1, n ? n : 1);
    size_t r = s_round(n);
    uint8_t *p = mmap(NULL, r + S_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)p + S_HUGE - 1) & ~(uintptr_t)(S_HUGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    munmap(a + r, (size_t)(p + S_HUGE - a)); /* a < p + S_HUGE: the tail is never empty */
    (void)madvise(a, r, MADV_HUGEPAGE); /* advice: refused, it is 4 KB pages */
    return a;
}

static void s_free(void *p, size_t n)
{
    if (!p)
        return;
    if (n < S_HUGE)
        free(p);
    else
        munmap(p, s_round(n));
}

/* p (of old_n bytes from s_alloc) grown to new_n, its bytes kept, the
 * new ones zeroed; NULL when out of memory (p is then untouched). A large
 * one is remapped, not copied: a copy would also fault in (and zero) its
 * bytes twice. */
static void *s_grow_block(void *p, size_t old_n, size_t new_n)
{
    if (old_n >= S_HUGE) { /* (the moved mapping may lose the huge-page alignment) */
        void *q = mremap(p, s_round(old_n), s_round(new_n), MREMAP_MAYMOVE);
        return q == MAP_FAILED ? NULL : q;
    }
    uint8_t *q = s_alloc(new_n);
    if (q && old_n)
        memcpy(q, p, old_n);
    if (q)
        s_free(p, old_n);
    return q;
}

dm_quality__utable_t *dm_quality__utable_new(void)
{
    dm_quality__utable_t *t = calloc(1, sizeof *t);
    if (t)
        randombytes_buf(t->hash_key, sizeof t->hash_key);
    return t;
}

void dm_quality__utable_destroy(dm_quality__utable_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_free((*self_p)->slots, (*self_p)->nslots * sizeof *(*self_p)->slots);
    s_free((*self_p)->arena, (*self_p)->cap);
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

/* The arena's capacity for want bytes, from cap (0: none yet): doubled
 * from S_ARENA_MIN until want fits, or cap when it does already. */
static size_t s_arena_cap(size_t cap, size_t want)
{
    if (want <= cap)
        return cap;
    cap = cap ? cap : S_ARENA_MIN;
    while (cap < want)
        cap *= 2;
    return cap;
}

/* The slots a table of n values wants: a power of two, at most 3/4 full. */
static size_t s_slots_for(size_t n)
{
    size_t s = S_SLOTS_MIN;
    while (n > s / 4 * 3)
        s *= 2;
    return s;
}

/* The arena's capacity once values more values of key_bytes in all fit
 * (each entry padded by at most S_ALIGN - 1). */
static size_t s_arena_for(const dm_quality__utable_t *self, size_t values, size_t key_bytes)
{
    return s_arena_cap(self->cap, self->len + values * (S_ENTRY_HEAD + S_ALIGN) + key_bytes);
}

/* The entry slot value x (used) points to. */
static uint8_t *s_entry_at(const dm_quality__utable_t *self, uint64_t x)
{
    return self->arena + ((x & UINT32_MAX) - 1) * S_ALIGN;
}

size_t dm_quality__utable_growth(const dm_quality__utable_t *self, size_t values,
                                 size_t key_bytes)
{
    size_t slots = s_slots_for(self->n + values), grow = 0;
    if (slots > self->nslots)
        grow += (slots - self->nslots) * sizeof *self->slots;
    return grow + s_arena_for(self, values, key_bytes) - self->cap;
}

/* Moves self's entries to nslots slots (more than it has). The walk
 * starts past an empty slot, so that no run of used slots wraps around
 * it: the entries then come in nearly ascending home order, and so do
 * their new homes (s_home). */
static bool s_grow(dm_quality__utable_t *self, size_t nslots)
{
    uint64_t *s = s_alloc(nslots * sizeof *s);
    if (!s)
        return false;
    size_t start = 0;
    while (start < self->nslots && self->slots[start]) /* one is empty: at most 3/4 are used */
        start++;
    for (size_t k = 0; k < self->nslots; k++) {
        uint64_t x = self->slots[(start + k) & (self->nslots - 1)];
        if (!x)
            continue;
        size_t j = s_home(x >> 32, nslots);
        while (s[j])
            j = (j + 1) & (nslots - 1);
        s[j] = x;
    }
    s_free(self->slots, self->nslots * sizeof *self->slots);
    self->slots = s;
    self->nslots = nslots;
    return true;
}

bool dm_quality__utable_reserve(dm_quality__utable_t *self, size_t values, size_t key_bytes)
{
    size_t cap = s_arena_for(self, values, key_bytes);
    if (cap > self->cap) {
        uint8_t *a = self->arena ? s_grow_block(self->arena, self->cap, cap) : s_alloc(cap);
        if (!a)
            return false;
        self->arena = a;
        self->cap = cap;
    }
    size_t nslots = s_slots_for(self->n + values);
    return nslots <= self->nslots || s_grow(self, nslots);
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
        uint8_t *e = s_entry_at(self, x);
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

void dm_quality__utable_prefetch_entry(const dm_quality__utable_t *self, uint64_t h)
{
    if (!self->nslots)
        return;
    uint64_t x = self->slots[s_home(h >> 32, self->nslots)];
    if (x && x >> 32 == h >> 32)
        __builtin_prefetch(s_entry_at(self, x));
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

/* SipHash under the table's own key, drawn with it: the values come from
 * the producers' records, and an unkeyed hash would let one craft values
 * of one slot chain, each probe then walking all of them. (16 ns for a 30
 * byte value here, against 3.5 ns unkeyed: about 1% of a record's ingest.) */
uint64_t dm_quality__utable_hash(const dm_quality__utable_t *self, const uint8_t *key,
                                 size_t klen)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, key, klen, self->hash_key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

/* The file holds the table as it is in memory, so that reading it back
 * costs two reads and one pass, not a hash and a probe per value (that
 * was as slow as counting the rows again): its key, the slots and the
 * arena, with a checksum of them. */
typedef struct {
    uint64_t nslots, n, len, sum;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
} s_file_head;

/* A checksum of len bytes against a torn or corrupt file (not against a
 * forger): four independent lanes, so that it runs at the memory's speed
 * (the one-lane hash took a third of the reading). */
static uint64_t s_sum_bytes(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint64_t lane[4] = {1, 2, 3, 4};
    size_t i = 0;
    for (; len - i >= sizeof lane; i += sizeof lane)
        for (size_t j = 0; j < 4; j++) {
            uint64_t w;
            memcpy(&w, b + i + 8 * j, 8);
            lane[j] = (lane[j] ^ w) * S_GOLDEN;
        }
    return dm_index_bloom_hash(lane, sizeof lane) ^ dm_index_bloom_hash(b + i, len - i) ^ len;
}

static uint64_t s_sum(const dm_quality__utable_t *self)
{
    uint64_t a = s_sum_bytes(self->slots, self->nslots * sizeof *self->slots);
    uint64_t b = s_sum_bytes(self->arena, self->len);
    return a ^ (b * S_GOLDEN) ^ self->n;
}

bool dm_quality__utable_write(const dm_quality__utable_t *self, FILE *f)
{
    s_file_head h = {self->nslots, self->n, self->len, 0, {0}};
    if (!self->nslots)
        return false; /* never reserved: nothing to keep */
    h.sum = s_sum(self);
    memcpy(h.hash_key, self->hash_key, sizeof h.hash_key);
    return fwrite(&h, sizeof h, 1, f) == 1 &&
           fwrite(self->slots, sizeof *self->slots, self->nslots, f) == self->nslots &&
           fwrite(self->arena, 1, self->len, f) == self->len;
}

/* Whether self's slots and arena are safe to use: the entries tile the
 * arena, every used slot points at the start of an entry and no two at
 * the same, and there are n of each. (That a slot's tag is its key's hash
 * and that it is reachable from its home is not checked: the checksum
 * stands for it against a torn or corrupt file; only a forged one could
 * miscount, and who can write the store's directory can write the store.) */
static bool s_valid(const dm_quality__utable_t *self)
{
    size_t words = self->len / S_ALIGN, entries = 0, used = 0;
    uint64_t *starts = calloc(words / 64 + 1, sizeof *starts);
    if (!starts)
        return false;
    bool ok = self->len % S_ALIGN == 0;
    for (size_t off = 0; ok && off < self->len; entries++) {
        uint16_t kl;
        ok = self->len - off >= S_ENTRY_HEAD;
        if (ok) {
            memcpy(&kl, self->arena + off + 4, 2);
            starts[off / S_ALIGN / 64] |= 1ull << (off / S_ALIGN % 64);
            ok = s_entry_bytes(kl) <= self->len - off;
            off += s_entry_bytes(kl);
        }
    }
    for (size_t i = 0; ok && i < self->nslots; i++) {
        uint64_t x = self->slots[i];
        size_t w = (size_t)(x & UINT32_MAX);
        if (!x)
            continue;
        ok = w >= 1 && w - 1 < words && (starts[(w - 1) / 64] >> ((w - 1) % 64) & 1);
        if (ok) {
            starts[(w - 1) / 64] &= ~(1ull << ((w - 1) % 64)); /* one slot per entry */
            used++;
        }
    }
    free(starts);
    return ok && used == self->n && entries == self->n;
}

dm_quality__utable_t *dm_quality__utable_read(FILE *f, size_t max_bytes)
{
    s_file_head h;
    if (fread(&h, sizeof h, 1, f) != 1 || h.nslots < S_SLOTS_MIN ||
        (h.nslots & (h.nslots - 1)) || h.n > h.nslots / 4 * 3 ||
        h.nslots > max_bytes / sizeof(uint64_t) ||
        h.len > max_bytes - h.nslots * sizeof(uint64_t) || h.len / S_ALIGN >= UINT32_MAX)
        return NULL;
    size_t cap = s_arena_cap(0, (size_t)h.len); /* as growing would have made it */
    if (cap > max_bytes - h.nslots * sizeof(uint64_t))
        cap = (size_t)h.len;
    dm_quality__utable_t *t = dm_quality__utable_new();
    if (!t)
        return NULL;
    t->nslots = (size_t)h.nslots;
    t->n = (size_t)h.n;
    t->len = (size_t)h.len;
    t->cap = cap;
    memcpy(t->hash_key, h.hash_key, sizeof t->hash_key);
    t->slots = s_alloc(t->nslots * sizeof *t->slots);
    t->arena = s_alloc(t->cap);
    if (!t->slots || !t->arena ||
        fread(t->slots, sizeof *t->slots, t->nslots, f) != t->nslots ||
        fread(t->arena, 1, t->len, f) != t->len || s_sum(t) != h.sum || !s_valid(t))
        dm_quality__utable_destroy(&t);
    return t;
}
