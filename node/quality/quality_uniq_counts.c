/* quality_uniq_counts.c: the live-row counts of a unique check's values
 * as the writer last committed them, kept in its memory for the process's
 * lifetime, so that a value seen before in this process needs no read of
 * the index and the pending runs (with 100,000 distinct values every
 * value of a batch after the first few has been seen). A value is taken
 * in when a batch finds it already stored (read from the index: it
 * repeats); a new value is not, so a column of a million distinct values
 * (every value new, answered by the filter) costs no table.
 *
 * An open-addressing table of (hash, count, key) with the keys in one
 * arena; bounded: past S_ENTRIES_MAX values or S_ARENA_MAX key bytes it is
 * emptied and fills again (the index answers meanwhile). Valid only for
 * the committed state it was written with: quality_uniq.c stamps it and
 * the check's state with the same token in the batch's transaction, and
 * empties it when the stored token differs (a batch that aborted after
 * updating it, a check rebuilt). */
#include "quality/quality_priv.h"

#include <stdlib.h>
#include <string.h>

#define S_SLOTS_MIN 4096u
#define S_ENTRIES_MAX (1u << 18)  /* values kept; 2 slots each at most */
#define S_ARENA_MAX (8u << 20)    /* key bytes kept (16 MB allocated at most) */

struct dm_quality__uslot {
    uint64_t h; /* 0: empty (hashes are forced non-zero) */
    uint64_t count;
    uint32_t koff;
    uint16_t klen;
};

static uint64_t s_nz(uint64_t h) { return h ? h : 1; }

void dm_quality__ucounts_reset(dm_quality__ucounts_t *c)
{
    if (c->slots && c->n)
        memset(c->slots, 0, c->nslots * sizeof *c->slots);
    c->n = 0;
    dm_buf_reset(&c->keys);
}

void dm_quality__ucounts_free(dm_quality__ucounts_t *c)
{
    free(c->slots);
    c->slots = NULL;
    c->nslots = c->n = 0;
    dm_buf_free(&c->keys);
}

size_t dm_quality__ucounts_bytes(const dm_quality__ucounts_t *c)
{
    return c->nslots * sizeof *c->slots + c->keys.cap;
}

/* The slot of key (hash h): the one holding it, or the empty one where it
 * would go. */
static struct dm_quality__uslot *s_find(const dm_quality__ucounts_t *c, const uint8_t *key,
                                        size_t klen, uint64_t h)
{
    size_t mask = c->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct dm_quality__uslot *s = &c->slots[i];
        if (!s->h || (s->h == h && s->klen == klen &&
                      memcmp(c->keys.data + s->koff, key, klen) == 0))
            return s;
    }
}

bool dm_quality__ucounts_get(const dm_quality__ucounts_t *c, const uint8_t *key, size_t klen,
                             uint64_t h, uint64_t *count)
{
    if (!c->n)
        return false;
    const struct dm_quality__uslot *s = s_find(c, key, klen, s_nz(h));
    if (!s->h)
        return false;
    *count = s->count;
    return true;
}

/* Doubles the table (up to two slots per value at S_ENTRIES_MAX); false
 * when out of memory. */
static bool s_grow(dm_quality__ucounts_t *c)
{
    size_t nslots = c->nslots ? c->nslots * 2 : S_SLOTS_MIN;
    struct dm_quality__uslot *old = c->slots, *s = calloc(nslots, sizeof *s);
    if (!s)
        return false;
    size_t oldn = c->nslots;
    c->slots = s;
    c->nslots = nslots;
    for (size_t i = 0; i < oldn; i++) {
        if (!old[i].h)
            continue;
        size_t j = (size_t)old[i].h & (nslots - 1);
        while (s[j].h) /* keys are distinct: the first empty slot */
            j = (j + 1) & (nslots - 1);
        s[j] = old[i];
    }
    free(old);
    return true;
}

void dm_quality__ucounts_put(dm_quality__ucounts_t *c, const uint8_t *key, size_t klen,
                             uint64_t h, uint64_t count, bool admit)
{
    h = s_nz(h);
    if (c->n) {
        struct dm_quality__uslot *s = s_find(c, key, klen, h);
        if (s->h) {
            s->count = count;
            return;
        }
    }
    if (!admit)
        return;
    if (c->n >= S_ENTRIES_MAX || c->keys.len + klen > S_ARENA_MAX)
        dm_quality__ucounts_reset(c);
    if ((c->n + 1) * 2 > c->nslots && !s_grow(c))
        return; /* not kept: only a read is lost */
    struct dm_quality__uslot *s = s_find(c, key, klen, h);
    s->h = h;
    s->count = count;
    s->koff = (uint32_t)c->keys.len;
    s->klen = (uint16_t)klen;
    dm_buf_append(&c->keys, key, klen);
    c->n++;
}
