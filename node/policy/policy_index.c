/* policy_index.c: which rules of a sealed set may apply to one product,
 * by its DOMAIN/NAME, remembered per product so that a decision looks at
 * a few rules instead of matching every glob of the set.
 *
 * The cache is an open-addressing table of DM_POLICY_CACHE_SLOTS atomic
 * pointers, filled at most half: readers probe without a lock (an entry,
 * once published with release order, never changes or moves until the
 * set is freed); a miss takes the set's mutex, probes again and inserts.
 * Past half full a miss is computed into a temporary the caller frees.
 * Slots are chosen by SipHash with a key drawn at seal, so no choice of
 * product names makes probing long. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"

_Static_assert(DM_POLICY_HASH_KEY_BYTES == crypto_shorthash_KEYBYTES, "SipHash key size");
_Static_assert((DM_POLICY_CACHE_SLOTS & (DM_POLICY_CACHE_SLOTS - 1)) == 0, "slots: a power of two");

void dm_policy__applicable_free(dm_policy__applicable_t *a)
{
    if (!a)
        return;
    free(a->key);
    free(a->access);
    free(a->masks);
    free(a->filters);
    free(a);
}

static uint32_t *s_matching(const dm_policy__products_t *const *p, size_t n, const char *domain,
                            const char *name, size_t *count)
{
    uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    *count = 0;
    for (size_t i = 0; i < n; i++)
        if (dm_policy__products_match(p[i], domain, name))
            idx[(*count)++] = (uint32_t)i;
    return idx;
}

/* The products of rule i of each kind, as one array for s_matching. */
static const dm_policy__products_t **s_products(const dm_policy_set_t *s, int kind, size_t *n)
{
    *n = kind == 0 ? s->naccess : kind == 1 ? s->nmasks : s->nfilters;
    const dm_policy__products_t **p = malloc((*n ? *n : 1) * sizeof *p);
    if (!p)
        return NULL;
    for (size_t i = 0; i < *n; i++)
        p[i] = kind == 0 ? &s->access[i]->products
             : kind == 1 ? &s->masks[i]->products
                         : &s->filters[i]->products;
    return p;
}

static dm_policy__applicable_t *s_build(const dm_policy_set_t *s, const char *key, uint64_t h,
                                        const char *domain, const char *name)
{
    dm_policy__applicable_t *a = calloc(1, sizeof *a);
    if (!a || !(a->key = strdup(key))) {
        free(a);
        return NULL;
    }
    a->hash = h;
    uint32_t **dst[3] = {&a->access, &a->masks, &a->filters};
    size_t *cnt[3] = {&a->naccess, &a->nmasks, &a->nfilters};
    for (int k = 0; k < 3; k++) {
        size_t n;
        const dm_policy__products_t **p = s_products(s, k, &n);
        *dst[k] = p ? s_matching(p, n, domain, name, cnt[k]) : NULL;
        free(p);
        if (!*dst[k]) {
            dm_policy__applicable_free(a);
            return NULL;
        }
    }
    return a;
}

/* The cached entry for key, probing from its slot; NULL on a miss. *free_slot
 * is the first empty slot seen. */
static dm_policy__applicable_t *s_probe(const dm_policy_set_t *s, const char *key, uint64_t h,
                                        size_t *free_slot)
{
    for (size_t i = 0; i < DM_POLICY_CACHE_SLOTS; i++) {
        size_t slot = (h + i) & (DM_POLICY_CACHE_SLOTS - 1);
        dm_policy__applicable_t *e = atomic_load_explicit(&s->cache[slot], memory_order_acquire);
        if (!e) {
            *free_slot = slot;
            return NULL;
        }
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    }
    *free_slot = (size_t)-1;
    return NULL;
}

const dm_policy__applicable_t *dm_policy__applicable(const dm_policy_set_t *s, const char *domain,
                                                     const char *name, bool *tmp)
{
    static const uint32_t none[1];
    static const dm_policy__applicable_t empty = {NULL, 0, (uint32_t *)none, (uint32_t *)none,
                                                  (uint32_t *)none, 0, 0, 0};
    *tmp = false;
    char key[2 * DM_TEXT_NAME_MAX + 2];
    size_t dl = strnlen(domain, DM_TEXT_NAME_MAX + 1), nl = strnlen(name, DM_TEXT_NAME_MAX + 1);
    if (dl > DM_TEXT_NAME_MAX || nl > DM_TEXT_NAME_MAX)
        return &empty; /* not a product's name: no rule is about it */
    memcpy(key, domain, dl);
    key[dl] = '/';
    memcpy(key + dl + 1, name, nl);
    key[dl + 1 + nl] = 0;
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)key, dl + 1 + nl, s->hash_key);
    size_t slot;
    dm_policy__applicable_t *e = s_probe(s, key, h, &slot);
    if (e)
        return e;
    dm_policy_set_t *m = (dm_policy_set_t *)s; /* the cache is the one mutable part */
    pthread_mutex_lock(&m->lock);
    e = s_probe(s, key, h, &slot);
    if (!e && (e = s_build(s, key, h, domain, name))) {
        if (m->ncached < DM_POLICY_CACHE_SLOTS / 2 && slot != (size_t)-1) {
            atomic_store_explicit(&m->cache[slot], e, memory_order_release);
            m->ncached++;
        } else {
            *tmp = true;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return e;
}
