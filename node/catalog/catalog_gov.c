/* catalog_gov.c: the mesh's governance in the catalog (docs/catalog.md,
 * "Governance"): the governance key chain (set at start, moved by
 * "gov/root" rotations signed by the current key, TUF's root rule), who
 * may publish gov/ entries, the documents of the current key, the domain
 * certificates, and the owner's acl entries as the server reads them.
 * Judging and storing stay in catalog.c, which calls the dm_catalog__gov_*
 * helpers here. */
#include "catalog/catalog_priv.h"

#include <stdarg.h>
#include <stdlib.h>

#include "base/array.h"
#include "base/log.h"
#include "base/text.h"
#include "storage/catalog_db.h"

#define S_ROOT_KEY_BYTES 9 /* tag + u64 BE root version */
#define S_HEX_SHORT 16     /* hex digits of a key in messages */

/* ---- the key chain ---- */

const uint8_t *dm_catalog__gov_current(const dm_catalog_t *c)
{
    return c->nchain ? c->chain[c->nchain - 1].key : NULL;
}

/* Whether key is in the chain (current or retired). */
static bool s_in_chain(const dm_catalog_t *c, const uint8_t *key)
{
    for (size_t i = 0; i < c->nchain; i++)
        if (memcmp(c->chain[i].key, key, DM_ID_PUBLIC_BYTES) == 0)
            return true;
    return false;
}

/* Appends key as root version rv to the chain and queues its record. */
static bool s_chain_add(dm_catalog_t *c, const uint8_t *key, uint64_t rv)
{
    if (!dm_array_reserve(&c->chain, &c->capchain, c->nchain + 1, sizeof *c->chain, 4))
        return false;
    dm_catalog__gov_key_t *k = &c->chain[c->nchain++];
    k->root_version = rv;
    memcpy(k->key, key, DM_ID_PUBLIC_BYTES);
    uint8_t be[8];
    for (int i = 7; i >= 0; i--, rv >>= 8)
        be[i] = (uint8_t)rv;
    return dm_catalog__queue(c, DM_STORE_CATALOG_GOV, be, sizeof be, NULL, 0, key,
                             DM_ID_PUBLIC_BYTES);
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
    if (!s_chain_add(c, val, rv)) {
        *nomem = true;
        return false;
    }
    return true;
}

/* The first S_HEX_SHORT hex digits of key, for messages. */
static void s_hex(const uint8_t *key, char out[S_HEX_SHORT + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < S_HEX_SHORT / 2; i++) {
        out[2 * i] = digits[key[i] >> 4];
        out[2 * i + 1] = digits[key[i] & 15];
    }
    out[S_HEX_SHORT] = 0;
}

dm_err dm_catalog_set_governance(dm_catalog_t *c, const uint8_t key[DM_ID_PUBLIC_BYTES],
                                 dm_buf_t *why)
{
    char want[S_HEX_SHORT + 1], cur[S_HEX_SHORT + 1];
    s_hex(key, want);
    if (memcmp(key, c->self_id, DM_ID_PUBLIC_BYTES) == 0) {
        dm_buf_why(why,
                   "catalog: governance key %s... is this node's own key; the governance key "
                   "publishes nothing but gov/ entries: make one with keygen",
                   want);
        return DM_ERR_INVALID;
    }
    if (s_in_chain(c, key))
        return DM_OK; /* the chain may have moved on: keep its current key */
    if (c->nchain) {
        s_hex(dm_catalog__gov_current(c), cur);
        dm_buf_why(why,
                   "catalog: governance key %s... is not in this node's key chain, whose "
                   "current key is %s... (root version %llu); a new key comes only by a rotation signed "
                   "by the current one",
                   want, cur, (unsigned long long)c->chain[c->nchain - 1].root_version);
        return DM_ERR_CONFLICT;
    }
    if (!s_chain_add(c, key, 1)) {
        dm_catalog__abort(c);
        return DM_ERR_NOMEM;
    }
    dm_err err = dm_catalog__commit(c, why);
    if (!err) {
        c->gov_generation++;
        char h[S_HEX_SHORT + 1];
        s_hex(key, h);
        dm_log_info("catalog: governance key %s... (root version 1)", h);
    }
    return err;
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

uint64_t dm_catalog_max_version(const dm_catalog_t *c, const uint8_t origin[DM_ID_PUBLIC_BYTES])
{
    const dm_catalog__origin_t *o = dm_catalog__origin_find(c, origin);
    return o ? o->max_version : 0;
}

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
                                        bool *seen, dm_buf_t *why)
{
    *seen = false;
    bool gov_key = strncmp(e->key, DM_CATALOG_GOV_PREFIX, sizeof DM_CATALOG_GOV_PREFIX - 1) == 0;
    const uint8_t *cur = dm_catalog__gov_current(c);
    bool from_gov = cur && memcmp(cur, e->origin, DM_ID_PUBLIC_BYTES) == 0;
    char o[S_HEX_SHORT + 1], g[S_HEX_SHORT + 1];
    if (gov_key && !cur) {
        s_hex(e->origin, o);
        return s_refuse(why, DM_CATALOG_NOT_OWNER,
                        "entry '%.64s' of %s... is a governance entry and this node has no "
                        "governance key (meshd --governance KEY)",
                        e->key, o);
    }
    if (gov_key && !from_gov) {
        /* A retired key never comes back: its entry is final. Any other
         * key may be the next one, named by a rotation not here yet. */
        *seen = s_in_chain(c, e->origin);
        s_hex(e->origin, o);
        s_hex(cur, g);
        return s_refuse(why, DM_CATALOG_NOT_OWNER,
                        "entry '%.64s' is a governance entry; its origin %s... is %s, the "
                        "governance key is %s...",
                        e->key, o, *seen ? "a retired governance key" : "not the governance key",
                        g);
    }
    if (from_gov && !gov_key) {
        *seen = true;
        return s_refuse(why, DM_CATALOG_MALFORMED,
                        "the governance key publishes only \"" DM_CATALOG_GOV_ROOT_KEY
                        "\" and \"" DM_CATALOG_GOV_DOC_PREFIX "NAME\", not '%.64s'",
                        e->key);
    }
    return DM_CATALOG_ACCEPTED;
}

/* Decodes a gov/root payload: the new key and its root version. */
static bool s_root_decode(const dm_catalog_entry_t *e, uint8_t key[DM_ID_PUBLIC_BYTES],
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
    if (!s_root_decode(e, key, &rv))
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
    if (s_in_chain(c, key))
        return s_refuse(why, DM_CATALOG_MALFORMED,
                        "gov/root: the new key is already in the governance key chain; a "
                        "rotation names a key never used before");
    return DM_CATALOG_ACCEPTED;
}

bool dm_catalog__gov_rotate(dm_catalog_t *c, const dm_catalog_entry_t *e)
{
    uint8_t key[DM_ID_PUBLIC_BYTES];
    uint64_t rv = 0;
    if (!s_root_decode(e, key, &rv)) /* judged by dm_catalog__gov_payload: memory */
        return false;
    char h[S_HEX_SHORT + 1];
    s_hex(key, h);
    dm_log_info("catalog: governance key rotated to %s... (root version %llu)", h,
                (unsigned long long)rv);
    return s_chain_add(c, key, rv);
}

/* Index of the first item of origin, or where it would go. */
static size_t s_first_item(const dm_catalog_t *c, const uint8_t *origin)
{
    size_t lo = 0, hi = c->nitems;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(c->items[mid]->e.origin, origin, DM_ID_PUBLIC_BYTES) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void dm_catalog_gov_docs(const dm_catalog_t *c, dm_catalog_entry_fn fn, void *ctx)
{
    const uint8_t *cur = dm_catalog__gov_current(c);
    if (!cur)
        return;
    for (size_t i = s_first_item(c, cur);
         i < c->nitems && memcmp(c->items[i]->e.origin, cur, DM_ID_PUBLIC_BYTES) == 0; i++) {
        const dm_catalog__item_t *it = c->items[i]; /* by key within the origin */
        if (it->kind == DM_CATALOG__GOV_DOC && !it->e.tombstone && fn(ctx, &it->e))
            break;
    }
}

/* ---- certificates ---- */

static int s_cert_cmp(const void *a, const void *b)
{
    return strcmp(((const dm_catalog__cert_t *)a)->domain, ((const dm_catalog__cert_t *)b)->domain);
}

const uint8_t *dm_catalog__cert_find(const dm_catalog_t *c, const char *domain)
{
    if (!c->nchain || !c->ncerts || strlen(domain) > DM_CATALOG_NAME_MAX)
        return NULL;
    dm_catalog__cert_t key;
    strcpy(key.domain, domain);
    const dm_catalog__cert_t *k = bsearch(&key, c->certs, c->ncerts, sizeof *c->certs, s_cert_cmp);
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

/* A sorted copy of the n certificates; DM_ERR_INVALID (a line in why) for
 * a domain that is not a name or is certified twice. */
static dm_err s_certs_copy(const char *const *domains, const uint8_t (*nodes)[DM_ID_PUBLIC_BYTES],
                           size_t n, dm_catalog__cert_t **out, dm_buf_t *why)
{
    *out = NULL;
    if (!n)
        return DM_OK;
    dm_catalog__cert_t *certs = calloc(n, sizeof *certs);
    if (!certs)
        return DM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!dm_text_is_name(domains[i])) {
            dm_buf_why(why, "catalog: certificate %zu names domain '%.80s', which does not match "
                            DM_TEXT_NAME_RULE, i + 1, domains[i]);
            free(certs);
            return DM_ERR_INVALID;
        }
        strcpy(certs[i].domain, domains[i]);
        memcpy(certs[i].node, nodes[i], DM_ID_PUBLIC_BYTES);
    }
    qsort(certs, n, sizeof *certs, s_cert_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(certs[i - 1].domain, certs[i].domain) == 0) {
            dm_buf_why(why, "catalog: domain '%s' has two certificates; one per domain",
                       certs[i].domain);
            free(certs);
            return DM_ERR_INVALID;
        }
    *out = certs;
    return DM_OK;
}

dm_err dm_catalog_set_certificates(dm_catalog_t *c, const char *const *domains,
                                   const uint8_t (*nodes)[DM_ID_PUBLIC_BYTES], size_t n,
                                   dm_buf_t *why)
{
    dm_catalog__cert_t *certs = NULL;
    dm_err err = s_certs_copy(domains, nodes, c->nchain ? n : 0, &certs, why);
    if (err)
        return err;
    dm_catalog__cert_t *old = c->certs;
    size_t nold = c->ncerts;
    c->certs = certs;
    c->ncerts = c->nchain ? n : 0;
    for (size_t i = 0; i < c->ncerts && !err; i++)
        if (!dm_catalog__repin(c, certs[i].domain, certs[i].node))
            err = DM_ERR_NOMEM;
    if (err)
        dm_catalog__abort(c);
    else
        err = dm_catalog__commit(c, why);
    if (err) { /* memory was reloaded from the store: the old certificates hold */
        c->certs = old;
        c->ncerts = nold;
        free(certs);
        return err;
    }
    free(old);
    return DM_OK;
}
