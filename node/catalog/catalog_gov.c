/* catalog_gov.c: the mesh's governance as the catalog judges it
 * (docs/catalog.md, "Governance"): the governance key chain in memory,
 * who may publish gov/ entries (the current key only, and nothing else),
 * the checks of "gov/root" rotations (TUF's root rule: signed by the
 * current key, root version + 1) and "gov/doc/NAME" payloads, the active
 * documents (per name, the newest key's entry; a tombstone withdraws),
 * the chain-wide version rule, and the certificate lookup. State only: catalog.c
 * judges and stores, catalog_trust.c takes the node's settings. */
#include "catalog/catalog_priv.h"

#include <stdarg.h>
#include <stdlib.h>

#include "base/array.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/text.h"

#define S_ROOT_KEY_BYTES 9 /* tag + u64 BE root version */
#define S_HEX_SHORT 16     /* hex digits of a key in messages */

/* ---- the key chain ---- */

const uint8_t *dm_catalog__gov_current(const dm_catalog_t *c)
{
    return c->nchain ? c->chain[c->nchain - 1].key : NULL;
}

/* Whether key is in the chain (current or retired). */
bool dm_catalog__in_chain(const dm_catalog_t *c, const uint8_t *key)
{
    for (size_t i = 0; i < c->nchain; i++)
        if (memcmp(c->chain[i].key, key, DM_ID_PUBLIC_BYTES) == 0)
            return true;
    return false;
}

bool dm_catalog__chain_append(dm_catalog_t *c, const uint8_t *key, uint64_t rv)
{
    if (!dm_array_reserve(&c->chain, &c->capchain, c->nchain + 1, sizeof *c->chain, 4))
        return false;
    dm_catalog__gov_key_t *k = &c->chain[c->nchain++];
    k->root_version = rv;
    memcpy(k->key, key, DM_ID_PUBLIC_BYTES);
    return true;
}

bool dm_catalog__gov_load(dm_catalog_t *c, const uint8_t *key, size_t klen, const uint8_t *val,
                          size_t vlen, bool *nomem)
{
    *nomem = false;
    if (klen != S_ROOT_KEY_BYTES || vlen != DM_ID_PUBLIC_BYTES)
        return false;
    uint64_t rv = 0;
    for (size_t i = 1; i < klen; i++)
        rv = rv << 8 | key[i];
    uint64_t want = c->nchain ? c->chain[c->nchain - 1].root_version + 1 : 1;
    if (rv != want) /* a chain has every link from 1 */
        return false;
    if (!dm_catalog__chain_append(c, val, rv)) {
        *nomem = true;
        return false;
    }
    return true;
}

bool dm_catalog_governance(const dm_catalog_t *c, uint8_t key[DM_ID_PUBLIC_BYTES],
                           uint64_t *root_version)
{
    if (!c->nchain)
        return false;
    if (key)
        memcpy(key, c->chain[c->nchain - 1].key, DM_ID_PUBLIC_BYTES);
    if (root_version)
        *root_version = c->chain[c->nchain - 1].root_version;
    return true;
}

void dm_catalog_set_gov_check(dm_catalog_t *c, dm_catalog_gov_check_fn fn, void *ctx)
{
    c->gov_check = fn;
    c->gov_check_ctx = ctx;
}

uint64_t dm_catalog_gov_generation(const dm_catalog_t *c) { return c->gov_generation; }


/* ---- judging governance entries ---- */

static dm_catalog_verdict s_refuse(dm_buf_t *why, dm_catalog_verdict v, const char *fmt, ...)
    DM_PRINTF(3, 4);

static dm_catalog_verdict s_refuse(dm_buf_t *why, dm_catalog_verdict v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_buf_vwhy(why, fmt, ap);
    va_end(ap);
    return v;
}

dm_catalog_verdict dm_catalog__gov_gate(const dm_catalog_t *c, const dm_catalog_entry_t *e,
                                        dm_buf_t *why)
{
    bool gov_key = strncmp(e->key, DM_CATALOG_GOV_PREFIX, sizeof DM_CATALOG_GOV_PREFIX - 1) == 0;
    const uint8_t *cur = dm_catalog__gov_current(c);
    bool from_gov = cur && memcmp(cur, e->origin, DM_ID_PUBLIC_BYTES) == 0;
    char o[S_HEX_SHORT + 1], g[S_HEX_SHORT + 1];
    if (gov_key && !cur) {
        dm_hex_encode(e->origin, S_HEX_SHORT / 2, o);
        return s_refuse(why, DM_CATALOG_NOT_OWNER,
                        "entry '%.64s' of %s... is a governance entry and this node has no "
                        "governance key (meshd --governance KEY)",
                        e->key, o);
    }
    if (gov_key && !from_gov) {
        /* Not seen (dm_catalog__admit): a retired key's entry must not
         * raise the version the governance log goes on from, and any
         * other key may be the next one, named by a rotation not here
         * yet. */
        dm_hex_encode(e->origin, S_HEX_SHORT / 2, o);
        dm_hex_encode(cur, S_HEX_SHORT / 2, g);
        return s_refuse(why, DM_CATALOG_NOT_OWNER,
                        "entry '%.64s' is a governance entry; its origin %s... is %s, the "
                        "governance key is %s...",
                        e->key, o,
                        dm_catalog__in_chain(c, e->origin) ? "a retired governance key"
                                                           : "not the governance key",
                        g);
    }
    if (from_gov && !gov_key) {
        return s_refuse(why, DM_CATALOG_MALFORMED,
                        "the governance key publishes only \"" DM_CATALOG_GOV_ROOT_KEY
                        "\" and \"" DM_CATALOG_GOV_DOC_PREFIX "NAME\", not '%.64s'",
                        e->key);
    }
    return DM_CATALOG_ACCEPTED;
}

bool dm_catalog__gov_root_decode(const dm_catalog_entry_t *e, uint8_t key[DM_ID_PUBLIC_BYTES],
                          uint64_t *rv)
{
    Dm__GovRoot *r = dm__gov_root__unpack(NULL, e->payload_len, e->payload);
    bool ok = r && r->key.len == DM_ID_PUBLIC_BYTES;
    if (ok) {
        memcpy(key, r->key.data, DM_ID_PUBLIC_BYTES);
        *rv = r->root_version;
    }
    if (r)
        dm__gov_root__free_unpacked(r, NULL);
    return ok;
}

dm_catalog_verdict dm_catalog__gov_payload(dm_catalog_t *c, const dm_catalog_entry_t *e,
                                           dm_catalog__kind kind, dm_buf_t *why)
{
    if (kind == DM_CATALOG__GOV_DOC) {
        if (!c->gov_check ||
            c->gov_check(c->gov_check_ctx, e->key, e->payload, e->payload_len, why))
            return DM_CATALOG_ACCEPTED;
        if (why && !why->len)
            dm_buf_why(why, "governance document '%s' refused by the policy check", e->key);
        return DM_CATALOG_MALFORMED;
    }
    uint8_t key[DM_ID_PUBLIC_BYTES];
    uint64_t rv = 0, cur = c->chain[c->nchain - 1].root_version;
    if (!dm_catalog__gov_root_decode(e, key, &rv))
        return s_refuse(why, DM_CATALOG_MALFORMED,
                        "gov/root version %llu: the payload is not a dm.GovRoot with a %d-byte "
                        "key",
                        (unsigned long long)e->version, DM_ID_PUBLIC_BYTES);
    if (rv != cur + 1)
        return s_refuse(why, DM_CATALOG_MALFORMED,
                        "gov/root: root version %llu, but the current is %llu and a rotation "
                        "must name exactly %llu",
                        (unsigned long long)rv, (unsigned long long)cur,
                        (unsigned long long)(cur + 1));
    if (dm_catalog__in_chain(c, key))
        return s_refuse(why, DM_CATALOG_MALFORMED,
                        "gov/root: the new key is already in the governance key chain; a "
                        "rotation names a key never used before");
    return DM_CATALOG_ACCEPTED;
}

uint64_t dm_catalog_max_version(const dm_catalog_t *c, const uint8_t origin[DM_ID_PUBLIC_BYTES])
{
    const dm_catalog__origin_t *o = dm_catalog__origin_find(c, origin);
    uint64_t v = o ? o->max_version : 0; /* seen in order (the digest's) */
    for (size_t i = dm_catalog__first_item(c, origin); /* and pushed alone */
         i < c->nitems && memcmp(c->items[i]->e.origin, origin, DM_ID_PUBLIC_BYTES) == 0; i++)
        if (c->items[i]->e.version > v)
            v = c->items[i]->e.version;
    return v;
}

/* The highest version among the stored entries of origin: of its
 * governance entries only (gov_only), or of all of them. */
static uint64_t s_stored_max(const dm_catalog_t *c, const uint8_t *origin, bool gov_only)
{
    uint64_t v = 0;
    for (size_t i = dm_catalog__first_item(c, origin);
         i < c->nitems && memcmp(c->items[i]->e.origin, origin, DM_ID_PUBLIC_BYTES) == 0; i++) {
        const dm_catalog__item_t *it = c->items[i];
        bool gov = it->kind == DM_CATALOG__GOV_ROOT || it->kind == DM_CATALOG__GOV_DOC;
        if ((gov || !gov_only) && it->e.version > v)
            v = it->e.version;
    }
    return v;
}

uint64_t dm_catalog_gov_max_version(const dm_catalog_t *c)
{
    /* Only what is stored: every stored gov/ entry of a chain key was
     * accepted while that key was current (dm_catalog__gov_gate), and
     * nothing refused ever counts. */
    uint64_t v = 0;
    for (size_t k = 0; k < c->nchain; k++) {
        uint64_t m = s_stored_max(c, c->chain[k].key, true);
        if (m > v)
            v = m;
    }
    return v;
}

dm_catalog_verdict dm_catalog__gov_leap(const dm_catalog_t *c, const dm_catalog_entry_t *e,
                                        dm_buf_t *why)
{
    uint64_t top = dm_catalog_gov_max_version(c);
    if (e->version <= top || e->version - top <= DM_CATALOG_GOV_VERSION_LEAP)
        return DM_CATALOG_ACCEPTED;
    return s_refuse(why, DM_CATALOG_MALFORMED,
                    "%.64s: version %llu is more than %llu above the governance log's %llu; a "
                    "governance publication takes the next version (%llu)",
                    e->key, (unsigned long long)e->version,
                    (unsigned long long)DM_CATALOG_GOV_VERSION_LEAP, (unsigned long long)top,
                    (unsigned long long)(top + 1));
}

dm_catalog_verdict dm_catalog__gov_monotonic(const dm_catalog_t *c, const dm_catalog_entry_t *e,
                                             dm_buf_t *why)
{
    uint64_t top = dm_catalog_gov_max_version(c);
    if (e->version > top)
        return DM_CATALOG_ACCEPTED;
    return s_refuse(why, DM_CATALOG_STALE,
                    "%.64s: version %llu is not above the governance log's %llu; a governance "
                    "publication takes the next version of the whole key chain",
                    e->key, (unsigned long long)e->version, (unsigned long long)top);
}

/* The first gov/doc item of origin whose key sorts after `after` (NULL:
 * the first), or NULL. Items are ordered by (origin, key). */
static const dm_catalog__item_t *s_doc_after(const dm_catalog_t *c, const uint8_t *origin,
                                             const char *after)
{
    size_t lo = dm_catalog__first_item(c, origin), hi = lo;
    while (hi < c->nitems && memcmp(c->items[hi]->e.origin, origin, DM_ID_PUBLIC_BYTES) == 0)
        hi++;
    size_t end = hi;
    while (after && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(c->items[mid]->e.key, after) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < end; lo++)
        if (c->items[lo]->kind == DM_CATALOG__GOV_DOC)
            return c->items[lo];
    return NULL;
}

/* Calls fn for the winning entry of every document name, ordered by key:
 * the entry of the newest key of the chain that has one (a retired key
 * publishes nothing new, so its documents stand until a newer key
 * replaces or withdraws them). Tombstones (withdrawals) only if asked. */
static void s_docs_walk(const dm_catalog_t *c, bool tombstones, dm_catalog_entry_fn fn,
                        void *ctx)
{
    const char *prev = NULL;
    for (;;) {
        const dm_catalog__item_t *best = NULL;
        for (size_t k = 0; k < c->nchain; k++) { /* oldest first: a newer key wins a tie */
            const dm_catalog__item_t *it = s_doc_after(c, c->chain[k].key, prev);
            if (it && (!best || strcmp(it->e.key, best->e.key) <= 0))
                best = it;
        }
        if (!best)
            return;
        if ((tombstones || !best->e.tombstone) && fn(ctx, &best->e))
            return;
        prev = best->e.key;
    }
}

void dm_catalog_gov_docs(const dm_catalog_t *c, dm_catalog_entry_fn fn, void *ctx)
{
    s_docs_walk(c, false, fn, ctx);
}

static int s_max_of(void *ctx, const dm_catalog_entry_t *e)
{
    uint64_t *v = ctx;
    if (e->version > *v)
        *v = e->version;
    return 0;
}

uint64_t dm_catalog_gov_docs_version(const dm_catalog_t *c)
{
    uint64_t v = 0;
    s_docs_walk(c, true, s_max_of, &v);
    return v;
}

/* ---- governance entries read back from the store ---- */

bool dm_catalog__gov_authentic(const dm_catalog_entry_t *e, dm_catalog__kind kind)
{
    if (kind != DM_CATALOG__GOV_ROOT && kind != DM_CATALOG__GOV_DOC)
        return true;
    dm_buf_t msg = DM_BUF_INIT;
    dm_catalog_entry_signed_bytes(e, &msg);
    bool good = dm_identity_verify(e->origin, msg.data, msg.len, e->signature);
    dm_buf_free(&msg);
    if (!good) {
        char hex[DM_ID_HEX_BYTES];
        dm_identity_key_hex(e->origin, hex);
        dm_log_warn("catalog: the stored governance entry '%.64s' version %llu of key %s is "
                    "not signed by that key (changed in the store?); skipped, never activated",
                    e->key, (unsigned long long)e->version, hex);
    }
    return good;
}

/* Whether chain link i (from 1) is backed by a stored gov/root entry of
 * the key before it naming its key and root version. */
static bool s_link_backed(const dm_catalog_t *c, size_t i)
{
    const uint8_t *prev = c->chain[i - 1].key;
    for (size_t k = dm_catalog__first_item(c, prev);
         k < c->nitems && memcmp(c->items[k]->e.origin, prev, DM_ID_PUBLIC_BYTES) == 0; k++) {
        const dm_catalog__item_t *it = c->items[k];
        uint8_t key[DM_ID_PUBLIC_BYTES];
        uint64_t rv = 0;
        if (it->kind == DM_CATALOG__GOV_ROOT && dm_catalog__gov_root_decode(&it->e, key, &rv))
            return rv == c->chain[i].root_version &&
                   memcmp(key, c->chain[i].key, DM_ID_PUBLIC_BYTES) == 0;
    }
    return false;
}

void dm_catalog__gov_loaded(dm_catalog_t *c)
{
    for (size_t i = 1; i < c->nchain; i++)
        if (!s_link_backed(c, i)) {
            char hex[DM_ID_HEX_BYTES];
            dm_identity_key_hex(c->chain[i].key, hex);
            dm_log_warn("catalog: governance key %s (root version %llu) has no authentic "
                        "rotation entry of the key before it in the store; the chain ends at "
                        "root version %llu until a peer sends that rotation again",
                        hex, (unsigned long long)c->chain[i].root_version,
                        (unsigned long long)c->chain[i - 1].root_version);
            c->nchain = i;
            break;
        }
    /* A chain key's version seen stays within what is stored of it, so
     * peers resend what was refused or skipped (a store written before
     * refusals stopped counting may hold more). In memory only. */
    for (size_t k = 0; k < c->nchain; k++) {
        dm_catalog__origin_t *o =
            (dm_catalog__origin_t *)dm_catalog__origin_find(c, c->chain[k].key);
        uint64_t m = s_stored_max(c, c->chain[k].key, false);
        if (o && o->max_version > m)
            o->max_version = m;
    }
}

/* ---- certificates ---- */

int dm_catalog__cert_cmp(const void *a, const void *b)
{
    return strcmp(((const dm_catalog__cert_t *)a)->domain, ((const dm_catalog__cert_t *)b)->domain);
}

const uint8_t *dm_catalog__cert_find(const dm_catalog_t *c, const char *domain)
{
    if (!c->nchain || !c->ncerts || strlen(domain) > DM_CATALOG_NAME_MAX)
        return NULL;
    dm_catalog__cert_t key;
    strcpy(key.domain, domain);
    const dm_catalog__cert_t *k = bsearch(&key, c->certs, c->ncerts, sizeof *c->certs, dm_catalog__cert_cmp);
    return k ? k->node : NULL;
}

bool dm_catalog_certified(const dm_catalog_t *c, const char *domain,
                          const uint8_t origin[DM_ID_PUBLIC_BYTES])
{
    if (!c->nchain)
        return true;
    const uint8_t *node = dm_catalog__cert_find(c, domain);
    return node && memcmp(node, origin, DM_ID_PUBLIC_BYTES) == 0;
}
