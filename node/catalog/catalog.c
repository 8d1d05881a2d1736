/* catalog.c: the catalog's state (entries, per-origin versions, domain
 * pins, refused claims), how an entry is judged, and the LMDB persistence.
 * Local publication and the listings are in catalog_publish.c, the Scuttlebutt
 * exchange in catalog_sync.c, an entry's wire form in catalog_entry.c.
 *
 * Everything lives in memory (sorted arrays, binary search) and every
 * change is also queued as a store operation; a call commits its queue in
 * one LMDB transaction. If that fails, or memory runs out half-way, the
 * memory is rebuilt from the store, so the two never drift apart. */
#include "catalog/catalog_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "base/hex.h"
#include "storage/catalog_db.h"
#include "base/log.h"
#include "base/text.h"

#define S_PIN_BYTES (DM_ID_PUBLIC_BYTES + 8)
#define S_CONFLICT_BYTES (DM_ID_PUBLIC_BYTES + 24)
#define S_VERSION_BYTES 8
#define S_HEX_SHORT 8 /* hex digits of a node id in log lines */

/* ---- small helpers ---- */

static void s_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t s_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static dm_catalog_verdict s_refuse(dm_buf_t *why, dm_catalog_verdict v, const char *fmt, ...)
    DM_PRINTF(3, 4);

/* Writes a one-line reason into why (may be NULL) and returns v. */
static dm_catalog_verdict s_refuse(dm_buf_t *why, dm_catalog_verdict v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_buf_vwhy(why, fmt, ap);
    va_end(ap);
    return v;
}

/* ---- sorted tables ---- */

static int s_item_cmp(const uint8_t *origin, const char *key, const dm_catalog__item_t *it)
{
    int r = memcmp(origin, it->e.origin, DM_ID_PUBLIC_BYTES);
    return r ? r : strcmp(key, it->e.key);
}

/* Binary search; *at receives the index of the match or the insert point. */
static dm_catalog__item_t *s_item_find(const dm_catalog_t *c, const uint8_t *origin, const char *key,
                                  size_t *at)
{
    size_t lo = 0, hi = c->nitems;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = s_item_cmp(origin, key, c->items[mid]);
        if (r == 0) {
            if (at)
                *at = mid;
            return c->items[mid];
        }
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (at)
        *at = lo;
    return NULL;
}

static void s_item_free(dm_catalog__item_t *it)
{
    if (!it)
        return;
    dm_catalog_entry_clear(&it->e);
    free(it->domain);
    free(it->name);
    if (it->node)
        dm__node_record__free_unpacked(it->node, NULL);
    free(it);
}

/* A stored item made from e and p (takes p's node record). NULL on NOMEM. */
static dm_catalog__item_t *s_item_new(const dm_catalog_entry_t *e, dm_catalog__parsed_t *p)
{
    dm_catalog__item_t *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->e = *e;
    it->e.key = strdup(e->key);
    it->e.payload = e->payload_len ? malloc(e->payload_len) : NULL;
    it->domain = strdup(p->domain);
    it->kind = p->kind;
    it->name = p->name[0] ? strdup(p->name) : NULL;
    if (!it->e.key || (e->payload_len && !it->e.payload) || !it->domain ||
        (p->name[0] && !it->name)) {
        s_item_free(it);
        return NULL;
    }
    if (e->payload_len)
        memcpy(it->e.payload, e->payload, e->payload_len);
    it->node = p->node;
    p->node = NULL;
    it->wire_bytes = dm_catalog__wire_bytes(&it->e);
    return it;
}

/* Puts it at index at (replacing the item there if replace). */
static bool s_item_place(dm_catalog_t *c, dm_catalog__item_t *it, size_t at, bool replace)
{
    if (replace) {
        s_item_free(c->items[at]);
        c->items[at] = it;
        return true;
    }
    if (!dm_array_reserve(&c->items, &c->capitems, c->nitems + 1, sizeof *c->items, 16))
        return false;
    memmove(c->items + at + 1, c->items + at, (c->nitems - at) * sizeof *c->items);
    c->items[at] = it;
    c->nitems++;
    return true;
}

static dm_catalog__pin_t *s_pin_find(const dm_catalog_t *c, const char *domain, size_t *at)
{
    size_t lo = 0, hi = c->npins;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(domain, c->pins[mid].domain);
        if (r == 0)
            return &c->pins[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (at)
        *at = lo;
    return NULL;
}

const dm_catalog__pin_t *dm_catalog__pin_find(const dm_catalog_t *c, const char *domain)
{
    return s_pin_find(c, domain, NULL);
}

static int s_conflict_cmp(const char *domain, const uint8_t *claimant, const dm_catalog__conflict_t *k)
{
    int r = strcmp(domain, k->domain);
    return r ? r : memcmp(claimant, k->claimant, DM_ID_PUBLIC_BYTES);
}

static dm_catalog__conflict_t *s_conflict_find(const dm_catalog_t *c, const char *domain,
                                          const uint8_t *claimant, size_t *at)
{
    size_t lo = 0, hi = c->nconflicts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = s_conflict_cmp(domain, claimant, &c->conflicts[mid]);
        if (r == 0)
            return &c->conflicts[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *at = lo;
    return NULL;
}

/* ---- the write batch ---- */

bool dm_catalog__queue(dm_catalog_t *c, char tag, const void *a, size_t alen, const void *b,
                       size_t blen, const void *val, size_t vlen)
{
    if (!dm_array_reserve(&c->ops, &c->capops, c->nops + 1, sizeof *c->ops, 16))
        return false;
    dm_catalog__op_t *op = &c->ops[c->nops++];
    op->koff = c->arena.len;
    dm_buf_putc(&c->arena, tag);
    dm_buf_append(&c->arena, a, alen);
    if (blen)
        dm_buf_append(&c->arena, b, blen);
    op->klen = c->arena.len - op->koff;
    op->del = val == NULL;
    op->voff = c->arena.len;
    if (val)
        dm_buf_append(&c->arena, val, vlen);
    op->vlen = c->arena.len - op->voff;
    return true;
}

static bool s_queue_entry(dm_catalog_t *c, const dm_catalog_entry_t *e, bool del)
{
    if (del)
        return dm_catalog__queue(c, DM_STORE_CATALOG_ENTRY, e->origin, DM_ID_PUBLIC_BYTES, e->key,
                       strlen(e->key), NULL, 0);
    dm_buf_t v = DM_BUF_INIT;
    dm_catalog_entry_encode(e, &v);
    bool ok = dm_catalog__queue(c, DM_STORE_CATALOG_ENTRY, e->origin, DM_ID_PUBLIC_BYTES, e->key,
                      strlen(e->key), v.data ? v.data : "", v.len);
    dm_buf_free(&v);
    return ok;
}

static void s_batch_reset(dm_catalog_t *c)
{
    c->nops = 0;
    dm_buf_reset(&c->arena);
}

static void s_state_clear(dm_catalog_t *c)
{
    for (size_t i = 0; i < c->nitems; i++)
        s_item_free(c->items[i]);
    for (size_t i = 0; i < c->npins; i++)
        free(c->pins[i].domain);
    for (size_t i = 0; i < c->nconflicts; i++)
        free(c->conflicts[i].domain);
    c->nitems = c->norigins = c->npins = c->nconflicts = c->nchain = 0;
    s_batch_reset(c);
}

static dm_err s_load(dm_catalog_t *c, dm_buf_t *why);

void dm_catalog__abort(dm_catalog_t *c)
{
    s_state_clear(c);
    c->gov_generation++; /* whatever was undone, the node rebuilds its policy set */
    dm_buf_t why = DM_BUF_INIT;
    if (s_load(c, &why) != DM_OK) /* the one report of this failure: abort returns nothing */
        dm_log_err("catalog: could not reload from the store (%s); the catalog is empty until "
                   "restart",
                   why.len ? why.data : "no reason given");
    dm_buf_free(&why);
}

dm_err dm_catalog__commit(dm_catalog_t *c, dm_buf_t *why)
{
    dm_err err = DM_OK;
    dm_store_catalog_op_t *ops = c->nops ? malloc(c->nops * sizeof *ops) : NULL;
    if (c->nops && !ops) {
        err = DM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < c->nops; i++) {
        const dm_catalog__op_t *op = &c->ops[i];
        ops[i].key = c->arena.data + op->koff;
        ops[i].key_len = op->klen;
        ops[i].val = op->del ? NULL : c->arena.data + op->voff;
        ops[i].val_len = op->vlen;
    }
    if (c->store) /* NULL: an in-memory catalog (the simulator) */
        err = dm_catalog_db_write(c->store, ops, c->nops, why);
out:
    free(ops);
    if (err)
        dm_catalog__abort(c);
    s_batch_reset(c);
    return err;
}

/* ---- changes ---- */

/* Records that origin said version (an authentic entry, kept or not). */
static bool s_raise(dm_catalog_t *c, const uint8_t *origin, uint64_t version)
{
    dm_catalog__origin_t *o = (dm_catalog__origin_t *)dm_catalog__origin_find(c, origin);
    if (!o) {
        if (!dm_array_reserve(&c->origins, &c->caporigins, c->norigins + 1, sizeof *c->origins, 16))
            return false;
        size_t at = 0;
        while (at < c->norigins && memcmp(c->origins[at].origin, origin, DM_ID_PUBLIC_BYTES) < 0)
            at++;
        memmove(c->origins + at + 1, c->origins + at, (c->norigins - at) * sizeof *c->origins);
        o = &c->origins[at];
        memcpy(o->origin, origin, DM_ID_PUBLIC_BYTES);
        o->max_version = 0;
        c->norigins++;
    }
    if (version <= o->max_version)
        return true;
    o->max_version = version;
    uint8_t v[S_VERSION_BYTES];
    s_put_be64(v, version);
    return dm_catalog__queue(c, DM_STORE_CATALOG_ORIGIN, origin, DM_ID_PUBLIC_BYTES, NULL, 0, v, sizeof v);
}

/* Queues the store record of conflict k. */
static bool s_conflict_put(dm_catalog_t *c, const dm_catalog__conflict_t *k)
{
    uint8_t v[S_CONFLICT_BYTES];
    memcpy(v, k->owner, DM_ID_PUBLIC_BYTES);
    s_put_be64(v + DM_ID_PUBLIC_BYTES, (uint64_t)k->first_seen_ms);
    s_put_be64(v + DM_ID_PUBLIC_BYTES + 8, (uint64_t)k->last_seen_ms);
    s_put_be64(v + DM_ID_PUBLIC_BYTES + 16, k->refusals);
    return dm_catalog__queue(c, DM_STORE_CATALOG_CONFLICT, k->domain, strlen(k->domain) + 1,
                             k->claimant, DM_ID_PUBLIC_BYTES, v, sizeof v);
}

/* Lists (and logs the first time) claimant's refused claim on domain. */
static bool s_conflict_note(dm_catalog_t *c, const char *domain, const uint8_t *owner,
                            const uint8_t *claimant, int64_t now_ms)
{
    size_t at = 0;
    dm_catalog__conflict_t *k = s_conflict_find(c, domain, claimant, &at);
    if (!k) {
        if (!dm_array_reserve(&c->conflicts, &c->capconflicts, c->nconflicts + 1, sizeof *c->conflicts, 16))
            return false;
        char *d = strdup(domain);
        if (!d)
            return false;
        memmove(c->conflicts + at + 1, c->conflicts + at,
                (c->nconflicts - at) * sizeof *c->conflicts);
        c->nconflicts++;
        k = &c->conflicts[at];
        memset(k, 0, sizeof *k);
        k->domain = d;
        memcpy(k->claimant, claimant, DM_ID_PUBLIC_BYTES);
        k->first_seen_ms = now_ms;
        char o[S_HEX_SHORT + 1], n[S_HEX_SHORT + 1];
        dm_hex_encode(owner, S_HEX_SHORT / 2, o);
        dm_hex_encode(claimant, S_HEX_SHORT / 2, n);
        dm_log_warn("catalog: domain '%s' is pinned to node %s...; refused the claim of node "
                    "%s... (see the catalog's conflicts)",
                    domain, o, n);
    }
    memcpy(k->owner, owner, DM_ID_PUBLIC_BYTES);
    k->last_seen_ms = now_ms;
    k->refusals++;
    return s_conflict_put(c, k);
}

/* Deletes the entries of other origins than owner about domain (their
 * products and acl entries; with claims also their node records claiming
 * it) and lists each origin as a refused claimant: seen at now_ms, or with
 * claims when the deleted entry was issued. */
static bool s_purge(dm_catalog_t *c, const char *domain, const uint8_t *owner, bool claims,
                    int64_t now_ms)
{
    size_t kept = 0;
    bool ok = true;
    for (size_t i = 0; i < c->nitems; i++) {
        dm_catalog__item_t *it = c->items[i];
        bool bound = it->kind == DM_CATALOG__PRODUCT || it->kind == DM_CATALOG__ACL ||
                     it->kind == DM_CATALOG__HEALTH || (claims && it->kind == DM_CATALOG__NODE);
        if (ok && bound && strcmp(it->domain, domain) == 0 &&
            memcmp(it->e.origin, owner, DM_ID_PUBLIC_BYTES) != 0) {
            ok = s_queue_entry(c, &it->e, true) &&
                 s_conflict_note(c, domain, owner, it->e.origin,
                                 claims ? it->e.issued_at_ms : now_ms);
            s_item_free(it);
            continue;
        }
        c->items[kept++] = it;
    }
    c->nitems = kept;
    return ok;
}

/* Queues the store record of pin. */
static bool s_pin_put(dm_catalog_t *c, const dm_catalog__pin_t *pin)
{
    uint8_t v[S_PIN_BYTES];
    memcpy(v, pin->owner, DM_ID_PUBLIC_BYTES);
    s_put_be64(v + DM_ID_PUBLIC_BYTES, (uint64_t)pin->first_seen_ms);
    return dm_catalog__queue(c, DM_STORE_CATALOG_PIN, pin->domain, strlen(pin->domain), NULL, 0,
                             v, sizeof v);
}

/* Pins domain to owner and drops what other origins published for it
 * while it was unclaimed (listing them as refused claims). */
static bool s_pin(dm_catalog_t *c, const char *domain, const uint8_t *owner, int64_t now_ms)
{
    size_t at = 0;
    if (s_pin_find(c, domain, &at))
        return true;
    if (!dm_array_reserve(&c->pins, &c->cappins, c->npins + 1, sizeof *c->pins, 16))
        return false;
    char *d = strdup(domain);
    if (!d)
        return false;
    memmove(c->pins + at + 1, c->pins + at, (c->npins - at) * sizeof *c->pins);
    c->npins++;
    dm_catalog__pin_t *pin = &c->pins[at];
    pin->domain = d;
    memcpy(pin->owner, owner, DM_ID_PUBLIC_BYTES);
    pin->first_seen_ms = now_ms;
    if (!s_pin_put(c, pin))
        return false;
    char o[S_HEX_SHORT + 1];
    dm_hex_encode(owner, S_HEX_SHORT / 2, o);
    if (!c->loading)
        dm_log_info("catalog: domain '%s' pinned to node %s...", domain, o);
    return s_purge(c, domain, owner, false, now_ms);
}

bool dm_catalog__gov_add(dm_catalog_t *c, const uint8_t *key, uint64_t root_version)
{
    uint8_t be[8];
    s_put_be64(be, root_version);
    return dm_catalog__chain_append(c, key, root_version) &&
           dm_catalog__queue(c, DM_STORE_CATALOG_GOV, be, sizeof be, NULL, 0, key,
                             DM_ID_PUBLIC_BYTES);
}

bool dm_catalog__repin(dm_catalog_t *c, const char *domain, const uint8_t *owner, bool *moved)
{
    dm_catalog__pin_t *pin = s_pin_find(c, domain, NULL);
    *moved = pin && memcmp(pin->owner, owner, DM_ID_PUBLIC_BYTES) != 0;
    if (!*moved)
        return true;
    memcpy(pin->owner, owner, DM_ID_PUBLIC_BYTES);
    if (!s_pin_put(c, pin))
        return false;
    char o[S_HEX_SHORT + 1];
    dm_hex_encode(owner, S_HEX_SHORT / 2, o);
    dm_log_info("catalog: domain '%s' moved to node %s... by its certificate", domain, o);
    size_t at = 0;
    const dm_catalog__conflict_t *mine = s_conflict_find(c, domain, owner, &at);
    if (mine) { /* the rightful owner is no claimant */
        at = (size_t)(mine - c->conflicts);
        free(c->conflicts[at].domain);
        memmove(c->conflicts + at, c->conflicts + at + 1,
                (c->nconflicts - at - 1) * sizeof *c->conflicts);
        c->nconflicts--;
        if (!dm_catalog__queue(c, DM_STORE_CATALOG_CONFLICT, domain, strlen(domain) + 1, owner,
                               DM_ID_PUBLIC_BYTES, NULL, 0))
            return false;
    }
    for (size_t i = 0; i < c->nconflicts; i++) {
        dm_catalog__conflict_t *k = &c->conflicts[i];
        if (strcmp(k->domain, domain) == 0) { /* refused in favour of the new owner now */
            memcpy(k->owner, owner, DM_ID_PUBLIC_BYTES);
            if (!s_conflict_put(c, k))
                return false;
        }
    }
    return s_purge(c, domain, owner, true, 0);
}

/* The checks before anything of e is read: bounds, the signature, who may
 * say a governance entry, the origin's admission. ACCEPTED to go on; a
 * refusal here advances no version. */
static dm_catalog_verdict s_gate(dm_catalog_t *c, const dm_catalog_entry_t *e, bool remote,
                                 dm_buf_t *why)
{
    if (!e->key || strnlen(e->key, DM_CATALOG_KEY_MAX) >= DM_CATALOG_KEY_MAX || !e->key[0] ||
        e->payload_len > DM_CATALOG_PAYLOAD_MAX || (e->payload_len && !e->payload) ||
        e->version == 0)
        return s_refuse(why, DM_CATALOG_MALFORMED,
                        "an entry needs a key of 1 to %d bytes, a payload of at most %d bytes "
                        "and a version from 1",
                        DM_CATALOG_KEY_MAX - 1, DM_CATALOG_PAYLOAD_MAX);
    if (remote) {
        dm_buf_t msg = DM_BUF_INIT;
        dm_catalog_entry_signed_bytes(e, &msg);
        bool good = dm_identity_verify(e->origin, msg.data, msg.len, e->signature);
        dm_buf_free(&msg);
        if (!good)
            return s_refuse(why, DM_CATALOG_BAD_SIGNATURE,
                            "entry '%s' version %llu is not signed by its origin", e->key,
                            (unsigned long long)e->version);
    }
    dm_catalog_verdict v = dm_catalog__gov_gate(c, e, why);
    if (v != DM_CATALOG_ACCEPTED)
        return v;
    const uint8_t *gov = dm_catalog__gov_current(c);
    bool from_gov = gov && memcmp(gov, e->origin, DM_ID_PUBLIC_BYTES) == 0;
    if (remote && !from_gov && !dm_catalog__origin_admit(c, e))
        return s_refuse(why, DM_CATALOG_UNKNOWN_ORIGIN,
                        "origin %02x%02x%02x%02x... is not a known member and the catalog holds "
                        "its %d strangers (or %d entries of this one) already",
                        e->origin[0], e->origin[1], e->origin[2], e->origin[3],
                        DM_CATALOG_STRANGERS_MAX, DM_CATALOG_STRANGER_ENTRIES);
    return DM_CATALOG_ACCEPTED;
}

/* Whether e's origin owns the domain e is about: the node its certificate
 * names, else the node it is pinned to (or anyone while unpinned). A
 * refusal lists the claimant in the conflicts. */
static dm_catalog_verdict s_owner(dm_catalog_t *c, const dm_catalog_entry_t *e,
                                  const dm_catalog__parsed_t *p, int64_t now_ms, dm_buf_t *why,
                                  dm_err *err)
{
    if (p->kind == DM_CATALOG__GOV_ROOT || p->kind == DM_CATALOG__GOV_DOC)
        return DM_CATALOG_ACCEPTED; /* dm_catalog__gov_gate judged their origin */
    const uint8_t *cert = dm_catalog__cert_find(c, p->domain);
    const dm_catalog__pin_t *pin = s_pin_find(c, p->domain, NULL);
    const uint8_t *owner = cert ? cert : pin ? pin->owner : NULL;
    if (!owner || memcmp(owner, e->origin, DM_ID_PUBLIC_BYTES) == 0)
        return DM_CATALOG_ACCEPTED;
    char o[S_HEX_SHORT + 1];
    dm_hex_encode(owner, S_HEX_SHORT / 2, o);
    bool node = p->kind == DM_CATALOG__NODE;
    dm_catalog_verdict v =
        s_refuse(why, node ? DM_CATALOG_DOMAIN_CONFLICT : DM_CATALOG_NOT_OWNER,
                 "domain '%s' is %s node %s...; %s from another node refused", p->domain,
                 cert ? "certified by the mesh's governance to" : "pinned to", o,
                 node ? "the claim" : e->key);
    if (!s_conflict_note(c, p->domain, owner, e->origin, now_ms))
        *err = DM_ERR_NOMEM;
    return v;
}

/* Checks a live payload: a contract, an acl record, a governance entry. */
static dm_catalog_verdict s_payload(dm_catalog_t *c, const dm_catalog_entry_t *e,
                                    const dm_catalog__parsed_t *p, dm_buf_t *why)
{
    switch (p->kind) {
    case DM_CATALOG__PRODUCT:
        return dm_catalog__contract_ok(e, p, why) ? DM_CATALOG_ACCEPTED : DM_CATALOG_MALFORMED;
    case DM_CATALOG__ACL:
        return dm_catalog__acl_ok(e, why) ? DM_CATALOG_ACCEPTED : DM_CATALOG_MALFORMED;
    case DM_CATALOG__HEALTH:
        return dm_catalog__health_ok(e, why) ? DM_CATALOG_ACCEPTED : DM_CATALOG_MALFORMED;
    case DM_CATALOG__GOV_ROOT:
    case DM_CATALOG__GOV_DOC:
        return dm_catalog__gov_payload(c, e, p->kind, why);
    default: /* node records were decoded and checked by dm_catalog__parse */
        return DM_CATALOG_ACCEPTED;
    }
}

/* Stores the accepted e (at index at, replacing old) and what follows from
 * it: its origin's version advances if seen, a claim pins its domain, a
 * rotation moves the governance key. */
static bool s_store(dm_catalog_t *c, const dm_catalog_entry_t *e, dm_catalog__parsed_t *p,
                    size_t at, bool replace, bool seen, int64_t now_ms)
{
    dm_catalog__item_t *it = s_item_new(e, p);
    if (!it || !s_item_place(c, it, at, replace)) {
        s_item_free(it);
        return false;
    }
    if (!s_queue_entry(c, e, false) || (seen && !s_raise(c, e->origin, e->version)))
        return false;
    switch (p->kind) {
    case DM_CATALOG__NODE:
        return s_pin(c, p->domain, e->origin, now_ms);
    case DM_CATALOG__GOV_ROOT: {
        uint8_t key[DM_ID_PUBLIC_BYTES];
        uint64_t rv = 0;
        c->gov_generation++;
        if (!dm_catalog__gov_root_decode(e, key, &rv)) /* it decoded when judged: memory */
            return false;
        char h[S_HEX_SHORT + 1];
        dm_hex_encode(key, S_HEX_SHORT / 2, h);
        dm_log_info("catalog: governance key rotated to %s... (root version %llu)", h,
                    (unsigned long long)rv);
        return dm_catalog__gov_add(c, key, rv);
    }
    case DM_CATALOG__GOV_DOC:
        c->gov_generation++;
        return true;
    default:
        return true;
    }
}

dm_catalog_verdict dm_catalog__admit(dm_catalog_t *c, const dm_catalog_entry_t *e,
                                     dm_catalog__source source, int64_t now_ms, dm_catalog__budget_t *budget, dm_buf_t *why,
                                     dm_err *err)
{
    *err = DM_OK;
    bool remote = source != DM_CATALOG__LOCAL, seen = source == DM_CATALOG__DELTA;
    dm_catalog_verdict v = s_gate(c, e, remote, why);
    if (v != DM_CATALOG_ACCEPTED)
        return v;
    dm_catalog__parsed_t p;
    v = dm_catalog__parse(e, &p, why);
    if (v == DM_CATALOG_ACCEPTED)
        v = s_owner(c, e, &p, now_ms, why, err);
    size_t at = 0;
    const dm_catalog__item_t *old = s_item_find(c, e->origin, e->key, &at);
    if (v == DM_CATALOG_ACCEPTED && old && old->e.version >= e->version)
        v = s_refuse(why, DM_CATALOG_STALE, "entry '%s' version %llu: version %llu is stored",
                     e->key, (unsigned long long)e->version,
                     (unsigned long long)old->e.version);
    if (v == DM_CATALOG_ACCEPTED && source == DM_CATALOG__PUSH && p.kind == DM_CATALOG__GOV_DOC)
        v = dm_catalog__gov_monotonic(c, e, why); /* not for deltas: see catalog.h */
    if (v == DM_CATALOG_ACCEPTED && (p.kind == DM_CATALOG__GOV_ROOT || p.kind == DM_CATALOG__GOV_DOC))
        v = dm_catalog__gov_leap(c, e, why);
    bool costly = v == DM_CATALOG_ACCEPTED && !e->tombstone &&
                  (p.kind == DM_CATALOG__PRODUCT || p.kind == DM_CATALOG__GOV_DOC);
    if (costly && budget) { /* the expensive step: charged, and only it */
        if (!budget->cap || (budget->used && budget->used + e->payload_len > budget->cap)) {
            budget->cut = true;
            v = s_refuse(why, DM_CATALOG_UNKNOWN_ORIGIN, "waits: judging budget spent");
            goto out;
        }
        budget->used += e->payload_len;
    }
    if (v == DM_CATALOG_ACCEPTED && !e->tombstone)
        v = s_payload(c, e, &p, why);
    /* An authentic refusal still counts as seen, so peers stop resending
     * it; so does a stale entry (it matters after dm_catalog__repin
     * forgot an origin's versions and peers send all of it again); not
     * a governance key's other refusals: only stored entries move its log. */
    if (seen && v != DM_CATALOG_BAD_SIGNATURE && !*err &&
        (v == DM_CATALOG_ACCEPTED || v == DM_CATALOG_STALE || !dm_catalog__in_chain(c, e->origin)) &&
        !s_raise(c, e->origin, e->version))
        *err = DM_ERR_NOMEM;
    if (v == DM_CATALOG_ACCEPTED && !*err &&
        !s_store(c, e, &p, at, old != NULL, source != DM_CATALOG__PUSH, now_ms))
        *err = DM_ERR_NOMEM;
out:
    dm_catalog__parsed_clear(&p);
    return v;
}

/* ---- load ---- */

typedef struct {
    dm_catalog_t *c;
    dm_err err;
    dm_buf_t *why; /* the corrupt record's line */
} s_load_ctx;

static int s_load_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_load_ctx *l = arg;
    dm_catalog_t *c = l->c;
    const uint8_t *k = key, *v = val;
    const char *what = "record";
    l->err = DM_ERR_STORE;
    switch (klen ? k[0] : 0) {
    case DM_STORE_CATALOG_ENTRY: {
        what = "entry";
        dm_catalog_entry_t e;
        if (dm_catalog_entry_decode(val, vlen, &e) != DM_OK)
            break;
        dm_catalog__parsed_t p;
        size_t at = 0;
        bool parsed = dm_catalog__parse(&e, &p, NULL) == DM_CATALOG_ACCEPTED;
        if (parsed && !dm_catalog__gov_authentic(&e, p.kind)) {
            l->err = DM_OK; /* skipped, never activated: a peer may send it again */
        } else if (parsed && !s_item_find(c, e.origin, e.key, &at)) {
            dm_catalog__item_t *it = s_item_new(&e, &p);
            if (!it || !s_item_place(c, it, at, false)) {
                s_item_free(it);
                l->err = DM_ERR_NOMEM;
            } else {
                l->err = DM_OK;
            }
        }
        dm_catalog__parsed_clear(&p);
        dm_catalog_entry_clear(&e);
        break;
    }
    case DM_STORE_CATALOG_ORIGIN:
        what = "version";
        if (klen != 1 + DM_ID_PUBLIC_BYTES || vlen != S_VERSION_BYTES)
            break;
        l->err = s_raise(c, k + 1, s_get_be64(v)) ? DM_OK : DM_ERR_NOMEM;
        break;
    case DM_STORE_CATALOG_PIN: {
        what = "pin";
        char domain[DM_CATALOG_NAME_MAX + 1];
        if (klen - 1 > DM_CATALOG_NAME_MAX || vlen != S_PIN_BYTES)
            break;
        memcpy(domain, k + 1, klen - 1);
        domain[klen - 1] = 0;
        l->err = s_pin(c, domain, v, (int64_t)s_get_be64(v + DM_ID_PUBLIC_BYTES)) ? DM_OK
                                                                                   : DM_ERR_NOMEM;
        break;
    }
    case DM_STORE_CATALOG_CONFLICT: {
        what = "conflict";
        const uint8_t *nul = memchr(k + 1, 0, klen - 1);
        if (!nul || nul - k > DM_CATALOG_NAME_MAX + 1 ||
            klen != (size_t)(nul - k) + 1 + DM_ID_PUBLIC_BYTES || vlen != S_CONFLICT_BYTES)
            break;
        size_t at = 0;
        const char *domain = (const char *)k + 1;
        if (s_conflict_find(c, domain, nul + 1, &at))
            break;
        if (!dm_array_reserve(&c->conflicts, &c->capconflicts, c->nconflicts + 1, sizeof *c->conflicts, 16)) {
            l->err = DM_ERR_NOMEM;
            break;
        }
        dm_catalog__conflict_t k2 = {0};
        k2.domain = strdup(domain);
        if (!k2.domain) {
            l->err = DM_ERR_NOMEM;
            break;
        }
        memcpy(k2.claimant, nul + 1, DM_ID_PUBLIC_BYTES);
        memcpy(k2.owner, v, DM_ID_PUBLIC_BYTES);
        k2.first_seen_ms = (int64_t)s_get_be64(v + DM_ID_PUBLIC_BYTES);
        k2.last_seen_ms = (int64_t)s_get_be64(v + DM_ID_PUBLIC_BYTES + 8);
        k2.refusals = s_get_be64(v + DM_ID_PUBLIC_BYTES + 16);
        memmove(c->conflicts + at + 1, c->conflicts + at,
                (c->nconflicts - at) * sizeof *c->conflicts);
        c->conflicts[at] = k2;
        c->nconflicts++;
        l->err = DM_OK;
        break;
    }
    case DM_STORE_CATALOG_GOV: {
        what = "governance key";
        bool nomem = false;
        if (dm_catalog__gov_load(c, k, klen, v, vlen, &nomem))
            l->err = DM_OK;
        else if (nomem)
            l->err = DM_ERR_NOMEM;
        break;
    }
    case DM_STORE_CATALOG_HEARTBEAT: /* the node's (node_health.c), not the catalog's */
        l->err = DM_OK;
        break;
    default:
        break;
    }
    if (l->err == DM_ERR_STORE)
        dm_buf_why(l->why, "catalog: a corrupt %s record in the store (%zu-byte key)", what, klen);
    return l->err != DM_OK;
}

/* Reads the whole catalog from the store into the (empty) tables. Pins
 * come after entries in key order, so loading a pin purges nothing that
 * was not already purged when it was made. */
static dm_err s_load(dm_catalog_t *c, dm_buf_t *why)
{
    s_load_ctx l = {c, DM_OK, why};
    c->loading = true;
    dm_err err = c->store ? dm_catalog_db_scan(c->store, s_load_one, &l, why) : DM_OK;
    c->loading = false;
    dm_catalog__gov_loaded(c);
    s_batch_reset(c); /* what loading queued is already stored */
    return err ? err : l.err;
}

dm_err dm_catalog_open(dm_store_t *store, const dm_identity_t *self, dm_catalog_t **out,
                       dm_buf_t *why)
{
    *out = NULL;
    dm_catalog_t *c = calloc(1, sizeof *c);
    if (!c)
        return DM_ERR_NOMEM;
    c->store = store;
    c->self = self;
    c->gov_generation = 1; /* a node starting at 0 builds its policy set once */
    memcpy(c->self_id, dm_identity_public(self), DM_ID_PUBLIC_BYTES);
    dm_err err = s_load(c, why);
    if (err) {
        dm_catalog_destroy(&c);
        return err;
    }
    dm_log_debug("catalog: loaded %zu entries from %zu origins, %zu pinned domains", c->nitems,
                 c->norigins, c->npins);
    *out = c;
    return DM_OK;
}

void dm_catalog_destroy(dm_catalog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_catalog_t *c = *self_p;
    s_state_clear(c);
    free(c->items);
    free(c->origins);
    free(c->pins);
    free(c->conflicts);
    free(c->chain);
    free(c->certs);
    free(c->buckets);
    free(c->refusals);
    free(c->ops);
    dm_buf_free(&c->arena);
    free(c);
    *self_p = NULL;
}
