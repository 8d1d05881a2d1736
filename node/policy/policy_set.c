/* policy_set.c: a set of governance documents: adding (a mask tie or a
 * domain certified twice is refused), sealing (indexes: groups and
 * certificates sorted by name, every rule in one array, a per-product
 * cache of the rules that may apply), reference counting, and the
 * questions about groups and certificates. */
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"

/* ---- adding ---- */

static bool s_has_wildcard(const char *g)
{
    return strpbrk(g, "*?") != NULL;
}

/* Globs overlap unless both are literal and differ (deciding whether two
 * globs share a match is not worth its cost here). */
static bool s_products_overlap(const dm_policy__products_t *a, const dm_policy__products_t *b)
{
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++)
            if (s_has_wildcard(a->globs[i]) || s_has_wildcard(b->globs[j]) ||
                strcmp(a->globs[i], b->globs[j]) == 0)
                return true;
    return false;
}

/* A classification and a list of names may meet in one field (which
 * fields a product classifies is not known at publish), so they overlap. */
static bool s_fields_overlap(const dm_policy__fields_t *a, const dm_policy__fields_t *b)
{
    if (a->kind == DM_POLICY__FIELDS_CLASS && b->kind == DM_POLICY__FIELDS_CLASS)
        return strcmp(a->classification, b->classification) == 0;
    if (a->kind == DM_POLICY__FIELDS_NAMES && b->kind == DM_POLICY__FIELDS_NAMES) {
        for (size_t i = 0; i < a->nnames; i++)
            for (size_t j = 0; j < b->nnames; j++)
                if (dm_policy__field_eq(a->names[i], b->names[j]))
                    return true;
        return false;
    }
    return true;
}

static bool s_tie(const dm_policy__maskrule_t *a, const dm_policy__maskrule_t *b)
{
    return a->mask != b->mask && s_fields_overlap(&a->fields, &b->fields) &&
           s_products_overlap(&a->products, &b->products);
}

static dm_err s_tie_why(const dm_policy__maskrule_t *a, const dm_policy__maskrule_t *b, dm_buf_t *why)
{
    dm_buf_why(why,
               "mask rule %s/%s (%s) and mask rule %s/%s (%s) may mask one column of one product "
               "differently (their products and fields overlap): give them disjoint products or "
               "fields, or the same mask",
               a->doc->name, a->name, dm_policy_mask_name(a->mask), b->doc->name, b->name,
               dm_policy_mask_name(b->mask));
    return DM_ERR_CONFLICT;
}

/* Whether doc d is replaced by a document called name. */
static bool s_replaced(const dm_policy_doc_t *d, const char *name)
{
    return strcmp(d->name, name) == 0;
}

dm_err dm_policy_set_check(const dm_policy_set_t *s, const dm_policy_doc_t *doc, dm_buf_t *why)
{
    size_t ndocs = 1, nmasks = doc->nmasks;
    for (size_t i = 0; i < s->ndocs; i++)
        if (!s_replaced(s->docs[i], doc->name)) {
            ndocs++;
            nmasks += s->docs[i]->nmasks;
        }
    if (ndocs > DM_POLICY_MAX_DOCS) {
        dm_buf_why(why, "document %s would make the set %zu documents; at most %d", doc->name, ndocs,
                   DM_POLICY_MAX_DOCS);
        return DM_ERR_TOOBIG;
    }
    if (nmasks > DM_POLICY_SET_MASKS_MAX) {
        dm_buf_why(why, "document %s would make the set %zu mask rules; at most %d in all documents",
                   doc->name, nmasks, DM_POLICY_SET_MASKS_MAX);
        return DM_ERR_TOOBIG;
    }
    for (size_t i = 0; i < s->ndocs; i++) {
        const dm_policy_doc_t *o = s->docs[i];
        if (s_replaced(o, doc->name))
            continue;
        if (doc->kind == DM_POLICY__CERT && o->kind == DM_POLICY__CERT &&
            strcmp(doc->cert_domain, o->cert_domain) == 0 &&
            memcmp(doc->cert_node, o->cert_node, DM_POLICY_KEY_BYTES) != 0) {
            char a[DM_POLICY_HEX + 1], b[DM_POLICY_HEX + 1];
            dm_policy__key_hex(doc->cert_node, a);
            dm_policy__key_hex(o->cert_node, b);
            dm_buf_why(why, "certificate %s binds domain %s to node %s, but certificate %s binds it "
                            "to node %s: a domain has one node (replace or remove the other)",
                       doc->name, doc->cert_domain, a, o->name, b);
            return DM_ERR_CONFLICT;
        }
        for (size_t j = 0; j < doc->nmasks; j++)
            for (size_t k = 0; k < o->nmasks; k++)
                if (s_tie(&doc->masks[j], &o->masks[k]))
                    return s_tie_why(&doc->masks[j], &o->masks[k], why);
    }
    for (size_t j = 0; j < doc->nmasks; j++)
        for (size_t k = j + 1; k < doc->nmasks; k++)
            if (s_tie(&doc->masks[j], &doc->masks[k]))
                return s_tie_why(&doc->masks[j], &doc->masks[k], why);
    return DM_OK;
}

dm_err dm_policy_set_new(uint64_t version, dm_policy_set_t **out)
{
    dm_policy_set_t *s = calloc(1, sizeof *s);
    if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        *out = NULL;
        return DM_ERR_NOMEM;
    }
    atomic_init(&s->refs, 1);
    s->version = version;
    *out = s;
    return DM_OK;
}

dm_err dm_policy_set_add(dm_policy_set_t *s, dm_policy_doc_t **doc, dm_buf_t *why)
{
    assert(!s->sealed);
    dm_policy_doc_t *d = *doc;
    *doc = NULL;
    dm_err rc = dm_policy_set_check(s, d, why);
    if (rc != DM_OK) {
        dm_policy_doc_destroy(&d);
        return rc;
    }
    for (size_t i = 0; i < s->ndocs; i++)
        if (s_replaced(s->docs[i], d->name)) {
            dm_policy_doc_destroy(&s->docs[i]);
            s->docs[i] = d;
            return DM_OK;
        }
    if (s->ndocs == s->capdocs) {
        size_t cap = s->capdocs ? 2 * s->capdocs : 8;
        dm_policy_doc_t **docs = realloc(s->docs, cap * sizeof *docs);
        if (!docs) {
            dm_policy_doc_destroy(&d);
            return DM_ERR_NOMEM;
        }
        s->docs = docs;
        s->capdocs = cap;
    }
    s->docs[s->ndocs++] = d;
    return DM_OK;
}

/* ---- sealing ---- */

static int s_doc_cmp(const void *a, const void *b)
{
    return strcmp((*(const dm_policy_doc_t *const *)a)->name, (*(const dm_policy_doc_t *const *)b)->name);
}

static int s_group_cmp(const void *a, const void *b)
{
    return strcmp((*(const dm_policy__group_t *const *)a)->name,
                  (*(const dm_policy__group_t *const *)b)->name);
}

static int s_cert_cmp(const void *a, const void *b)
{
    return strcmp((*(const dm_policy_doc_t *const *)a)->cert_domain,
                  (*(const dm_policy_doc_t *const *)b)->cert_domain);
}

static void s_resolve(const dm_policy_set_t *s, dm_policy__who_t *w)
{
    for (size_t i = 0; i < w->ngroups; i++)
        w->resolved[i] = dm_policy__group_find(s, w->groups[i]);
}

/* Fills the set's arrays of groups, certificates and rules, counting
 * first (n == NULL) and then storing. */
static dm_err s_collect(dm_policy_set_t *s)
{
    size_t ng = 0, nc = 0, na = 0, nm = 0, nf = 0;
    for (size_t i = 0; i < s->ndocs; i++) {
        const dm_policy_doc_t *d = s->docs[i];
        ng += d->kind == DM_POLICY__GROUP;
        nc += d->kind == DM_POLICY__CERT;
        na += d->naccess;
        nm += d->nmasks;
        nf += d->nfilters;
    }
    s->groups = calloc(ng + 1, sizeof *s->groups);
    s->certs = calloc(nc + 1, sizeof *s->certs);
    s->access = calloc(na + 1, sizeof *s->access);
    s->masks = calloc(nm + 1, sizeof *s->masks);
    s->filters = calloc(nf + 1, sizeof *s->filters);
    s->cache = calloc(DM_POLICY_CACHE_SLOTS, sizeof *s->cache);
    if (!s->groups || !s->certs || !s->access || !s->masks || !s->filters || !s->cache)
        return DM_ERR_NOMEM;
    for (size_t i = 0; i < s->ndocs; i++) {
        dm_policy_doc_t *d = s->docs[i];
        if (d->kind == DM_POLICY__GROUP)
            s->groups[s->ngroups++] = &d->group;
        if (d->kind == DM_POLICY__CERT)
            s->certs[s->ncerts++] = d;
        for (size_t k = 0; k < d->naccess; k++)
            s->access[s->naccess++] = &d->access[k];
        for (size_t k = 0; k < d->nmasks; k++)
            s->masks[s->nmasks++] = &d->masks[k];
        for (size_t k = 0; k < d->nfilters; k++)
            s->filters[s->nfilters++] = &d->filters[k];
    }
    return DM_OK;
}

dm_err dm_policy_set_seal(dm_policy_set_t *s)
{
    assert(!s->sealed);
    if (s->ndocs > 1) /* an empty set has no array at all */
        qsort(s->docs, s->ndocs, sizeof *s->docs, s_doc_cmp);
    if (s_collect(s) != DM_OK)
        return DM_ERR_NOMEM;
    qsort(s->groups, s->ngroups, sizeof *s->groups, s_group_cmp);
    qsort(s->certs, s->ncerts, sizeof *s->certs, s_cert_cmp);
    for (size_t i = 0; i < s->naccess; i++)
        s_resolve(s, &((dm_policy__access_t *)s->access[i])->consumers);
    for (size_t i = 0; i < s->nmasks; i++)
        s_resolve(s, &((dm_policy__maskrule_t *)s->masks[i])->except);
    for (size_t i = 0; i < s->nfilters; i++)
        s_resolve(s, &((dm_policy__filter_t *)s->filters[i])->consumers);
    randombytes_buf(s->hash_key, sizeof s->hash_key);
    s->sealed = true;
    return DM_OK;
}

/* ---- lifetime ---- */

dm_policy_set_t *dm_policy_set_ref(dm_policy_set_t *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void dm_policy_set_unref(dm_policy_set_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    dm_policy_set_t *s = *s_p;
    *s_p = NULL;
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; s->cache && i < DM_POLICY_CACHE_SLOTS; i++)
        dm_policy__applicable_free(atomic_load(&s->cache[i]));
    free((void *)s->cache);
    for (size_t i = 0; i < s->ndocs; i++)
        dm_policy_doc_destroy(&s->docs[i]);
    free(s->docs);
    free(s->groups);
    free(s->certs);
    free(s->access);
    free(s->masks);
    free(s->filters);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

uint64_t dm_policy_set_version(const dm_policy_set_t *s)
{
    return s->version;
}

size_t dm_policy_set_ndocs(const dm_policy_set_t *s)
{
    return s->ndocs;
}

/* ---- groups and certificates ---- */

const dm_policy__group_t *dm_policy__group_find(const dm_policy_set_t *s, const char *name)
{
    size_t lo = 0, hi = s->ngroups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, s->groups[mid]->name);
        if (!c)
            return s->groups[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool s_keys_has(const uint8_t (*keys)[DM_POLICY_KEY_BYTES], size_t n,
                       const uint8_t key[DM_POLICY_KEY_BYTES])
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(key, keys[mid], DM_POLICY_KEY_BYTES);
        if (!c)
            return true;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

bool dm_policy__group_has(const dm_policy__group_t *g, const uint8_t key[DM_POLICY_KEY_BYTES])
{
    return g && s_keys_has((const uint8_t (*)[DM_POLICY_KEY_BYTES])g->keys, g->nkeys, key);
}

bool dm_policy__who_match(const dm_policy_set_t *s, const dm_policy__who_t *who, const uint8_t *key,
                          const char *const *extra, size_t nextra)
{
    (void)s;
    if (who->any)
        return true;
    if (!key)
        return false;
    if (s_keys_has((const uint8_t (*)[DM_POLICY_KEY_BYTES])who->keys, who->nkeys, key))
        return true;
    for (size_t i = 0; i < who->ngroups; i++) {
        if (dm_policy__group_has(who->resolved[i], key))
            return true;
        for (size_t k = 0; k < nextra; k++)
            if (strcmp(who->groups[i], extra[k]) == 0)
                return true;
    }
    return false;
}

bool dm_policy_set_certificate(const dm_policy_set_t *s, const char *domain,
                               uint8_t node[DM_POLICY_KEY_BYTES])
{
    size_t lo = 0, hi = s->ncerts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(domain, s->certs[mid]->cert_domain);
        if (!c) {
            memcpy(node, s->certs[mid]->cert_node, DM_POLICY_KEY_BYTES);
            return true;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

void dm_policy_set_each_certificate(const dm_policy_set_t *s,
                                    void (*fn)(void *ctx, const char *domain,
                                               const uint8_t node[DM_POLICY_KEY_BYTES]),
                                    void *ctx)
{
    for (size_t i = 0; i < s->ncerts; i++)
        fn(ctx, s->certs[i]->cert_domain, s->certs[i]->cert_node);
}

bool dm_policy_set_in_group(const dm_policy_set_t *s, const char *group,
                            const uint8_t key[DM_POLICY_KEY_BYTES])
{
    return dm_policy__group_has(dm_policy__group_find(s, group), key);
}

void dm_policy_set_groups_of(const dm_policy_set_t *s, const uint8_t key[DM_POLICY_KEY_BYTES],
                             dm_buf_t *out)
{
    bool first = true;
    for (size_t i = 0; i < s->ngroups; i++)
        if (dm_policy__group_has(s->groups[i], key)) {
            dm_buf_printf(out, "%s%s", first ? "" : ",", s->groups[i]->name);
            first = false;
        }
}
