/* catalog_priv.h: the layout of dm_catalog_t, shared by the files of
 * node/catalog/. Calls go one way, from the top down:
 *   catalog_sync.c       anti-entropy: digests and deltas (Scuttlebutt)
 *   catalog_trust.c      the governance key and certificates the node sets
 *   catalog_publish.c    publication of this node's own entries, lookups,
 *                        listings
 *   catalog.c            judging entries, storing them, the domain pins
 *   catalog_gov.c        the governance key chain in memory, who may say
 *                        gov/ entries, their payloads, certificate lookup
 *   catalog_keys.c       the key grammar and the payload checks
 *   catalog_strangers.c  the quota of origins membership does not know
 *   catalog_limits.c     per-member rate of costly sync messages (called
 *                        from node/gossip/ only), refusals reported lately
 *   catalog_entry.c      one entry's codec and signed bytes.
 * catalog_local.c (reconciliation with the store) does not include it: it
 * uses only catalog.h. Not a public header. */
#ifndef DM_CATALOG_PRIV_H
#define DM_CATALOG_PRIV_H

#include "catalog/catalog.h"
#include "proto/catalog.pb-c.h"

#include <string.h>

/* What a key is about (catalog_keys.c). */
typedef enum {
    DM_CATALOG__NODE,     /* "node" */
    DM_CATALOG__PRODUCT,  /* "product/DOMAIN/NAME" */
    DM_CATALOG__ACL,      /* "acl/DOMAIN/NAME" */
    DM_CATALOG__HEALTH,   /* "health/DOMAIN/NAME" */
    DM_CATALOG__GOV_ROOT, /* "gov/root" */
    DM_CATALOG__GOV_DOC   /* "gov/doc/NAME" */
} dm_catalog__kind;

/* What an entry says, from its key (and a node record's payload). */
typedef struct {
    dm_catalog__kind kind;
    char domain[DM_CATALOG_NAME_MAX + 1]; /* "" for governance entries */
    char name[DM_CATALOG_NAME_MAX + 1];   /* product or document name; "" for node, gov/root */
    Dm__NodeRecord *node;                 /* owned until handed to an item */
} dm_catalog__parsed_t;

/* One stored entry with what was derived from it. */
typedef struct {
    dm_catalog_entry_t e; /* owns key and payload */
    dm_catalog__kind kind;
    char *domain;         /* product, acl: from the key; node: the claimed domain; gov: "" */
    char *name;           /* product or document name; NULL for a node record and gov/root */
    Dm__NodeRecord *node; /* node record, decoded; NULL for a product */
    size_t wire_bytes;    /* as one element of CatalogDelta.entries */
} dm_catalog__item_t;

typedef struct {
    uint8_t origin[DM_ID_PUBLIC_BYTES];
    uint64_t max_version; /* highest authentic version seen */
} dm_catalog__origin_t;

typedef struct {
    char *domain;
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    int64_t first_seen_ms;
} dm_catalog__pin_t;

typedef struct {
    char *domain;
    uint8_t owner[DM_ID_PUBLIC_BYTES], claimant[DM_ID_PUBLIC_BYTES];
    int64_t first_seen_ms, last_seen_ms;
    uint64_t refusals;
} dm_catalog__conflict_t;

/* One link of the governance key chain. */
typedef struct {
    uint64_t root_version; /* 1, 2, ... in chain order */
    uint8_t key[DM_ID_PUBLIC_BYTES];
} dm_catalog__gov_key_t;

/* A domain certificate: domain belongs to node. */
typedef struct {
    char domain[DM_CATALOG_NAME_MAX + 1];
    uint8_t node[DM_ID_PUBLIC_BYTES];
} dm_catalog__cert_t;

/* One queued store operation; key and value live in the batch arena. */
typedef struct {
    size_t koff, klen, voff, vlen;
    bool del;
} dm_catalog__op_t;

/* Contract payload one sender had judged in the current window. */
typedef struct {
    uint8_t sender[DM_ID_PUBLIC_BYTES];
    size_t bytes;
} dm_catalog__share_t;

/* One member's bucket of costly sync messages (node/catalog/catalog_limits.c). */
typedef struct {
    uint8_t sender[DM_ID_PUBLIC_BYTES];
    int64_t milli;        /* tokens x 1000 */
    int64_t last_ms;      /* last refill */
    int64_t logged_ms;    /* last debug line about drops */
    uint64_t dropped;     /* since that line */
} dm_catalog__bucket_t;

/* One refusal reported lately (node/catalog/catalog_limits.c). */
typedef struct {
    uint8_t origin[DM_ID_PUBLIC_BYTES];
    char key[DM_CATALOG_KEY_MAX];
    uint64_t version;
    int64_t logged_ms;
} dm_catalog__refusal_t;

/* What one dm_catalog_apply_delta call may still have judged: cap bytes of
 * contract payload, of which used are spent; cut once an entry had to
 * wait. One entry is always judged while cap > 0. */
typedef struct {
    size_t cap, used;
    bool cut;
} dm_catalog__budget_t;

struct dm_catalog {
    dm_store_t *store;
    const dm_identity_t *self;
    uint8_t self_id[DM_ID_PUBLIC_BYTES];
    dm_catalog__item_t **items; /* sorted by (origin, key) */
    size_t nitems, capitems;
    dm_catalog__origin_t *origins; /* sorted by origin */
    size_t norigins, caporigins;
    dm_catalog__pin_t *pins; /* sorted by domain */
    size_t npins, cappins;
    dm_catalog__conflict_t *conflicts; /* sorted by (domain, claimant) */
    size_t nconflicts, capconflicts;
    dm_catalog__op_t *ops; /* the pending write batch */
    size_t nops, capops;
    dm_buf_t arena;
    dm_catalog_known_fn known; /* NULL: every origin is welcome */
    void *known_ctx;
    uint8_t strangers[DM_CATALOG_STRANGERS_MAX][DM_ID_PUBLIC_BYTES]; /* see dm_catalog_set_known */
    size_t nstrangers;
    int64_t judge_window_ms;   /* start of the current judging window */
    size_t judge_window_bytes; /* payload judged from deltas in it */
    dm_catalog__share_t shares[DM_CATALOG_JUDGE_SENDERS]; /* per sender, this window */
    size_t nshares;
    dm_catalog__bucket_t *buckets; /* DM_CATALOG_SYNC_SENDERS, allocated on first use */
    size_t nbuckets;
    dm_catalog__refusal_t *refusals; /* DM_CATALOG_REFUSALS_TRACKED, allocated on first use */
    size_t nrefusals;
    dm_catalog__gov_key_t *chain; /* the governance key chain, oldest first; last is current */
    size_t nchain, capchain;
    uint64_t gov_generation;      /* see dm_catalog_gov_generation */
    dm_catalog_gov_check_fn gov_check;
    void *gov_check_ctx;
    dm_catalog__cert_t *certs; /* sorted by domain; in memory only */
    size_t ncerts;
    size_t rr;    /* which origin goes first in the next delta */
    bool loading; /* reading the store: no log lines for old news */
};

/* origin's row in c->origins, or NULL. */
static inline const dm_catalog__origin_t *dm_catalog__origin_find(const dm_catalog_t *c, const uint8_t *origin)
{
    size_t lo = 0, hi = c->norigins;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = memcmp(origin, c->origins[mid].origin, DM_ID_PUBLIC_BYTES);
        if (r == 0)
            return &c->origins[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Index in c->items of the first item of origin, or of where it would go
 * (items are sorted by origin, then key). */
static inline size_t dm_catalog__first_item(const dm_catalog_t *c, const uint8_t *origin)
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

/* The pin of domain, or NULL. */
const dm_catalog__pin_t *dm_catalog__pin_find(const dm_catalog_t *c, const char *domain);

/* ---- catalog.c ---- */

/* Queues a put (val not NULL) or a delete of store key [tag][a][b] in the
 * pending batch. false without memory. */
bool dm_catalog__queue(dm_catalog_t *c, char tag, const void *a, size_t alen, const void *b,
                       size_t blen, const void *val, size_t vlen);
/* Moves domain's pin to owner (a certificate) if it is pinned to another
 * (*moved): the other origins' node records, products and acl entries of
 * domain are deleted and listed as refused claims, and owner's own
 * refused claim is no longer listed. false without memory. */
bool dm_catalog__repin(dm_catalog_t *c, const char *domain, const uint8_t *owner, bool *moved);
/* Makes key the current governance key at root_version (the chain's
 * next), queued for the store. false without memory. */
bool dm_catalog__gov_add(dm_catalog_t *c, const uint8_t *key, uint64_t root_version);

/* ---- catalog_keys.c ---- */

/* Checks the key, the tombstone rule and a node record's form into *p
 * (clear with dm_catalog__parsed_clear). DM_CATALOG_ACCEPTED when well
 * formed, else MALFORMED with a reason in why (may be NULL). */
dm_catalog_verdict dm_catalog__parse(const dm_catalog_entry_t *e, dm_catalog__parsed_t *p,
                                     dm_buf_t *why);
void dm_catalog__parsed_clear(dm_catalog__parsed_t *p);
/* Whether a product payload is the contract of exactly p's DOMAIN/NAME;
 * false with a reason. */
bool dm_catalog__contract_ok(const dm_catalog_entry_t *e, const dm_catalog__parsed_t *p,
                             dm_buf_t *why);
/* Whether an acl payload is a dm.AclRecord within the bounds
 * (DM_CATALOG_ACL_READERS_MAX readers a list, each HEX or group:NAME). */
bool dm_catalog__acl_ok(const dm_catalog_entry_t *e, dm_buf_t *why);
/* Whether a health payload is a dm.HealthRecord within the bounds
 * (DM_CATALOG_HEALTH_*); false with a reason naming the field. */
bool dm_catalog__health_ok(const dm_catalog_entry_t *e, dm_buf_t *why);

/* ---- catalog_gov.c ---- */

/* The current governance key, or NULL when none is set. */
const uint8_t *dm_catalog__gov_current(const dm_catalog_t *c);
/* Judges who may say e (after its signature, before anything else):
 * gov/ keys only from the current governance key, which says nothing
 * else. DM_CATALOG_ACCEPTED to go on; else a refusal with a reason, which
 * counts as seen for no one: a key that may still become the governance
 * key offers it again after the rotation arrives, and a retired key's
 * entry must not move the governance log's version. */
dm_catalog_verdict dm_catalog__gov_gate(const dm_catalog_t *c, const dm_catalog_entry_t *e,
                                        dm_buf_t *why);
/* Checks a governance payload: a gov/root rotation (root version exactly
 * the current + 1, a new 32-byte key) or a gov/doc (the check callback).
 * DM_CATALOG_ACCEPTED or MALFORMED with a reason. */
dm_catalog_verdict dm_catalog__gov_payload(dm_catalog_t *c, const dm_catalog_entry_t *e,
                                           dm_catalog__kind kind, dm_buf_t *why);
/* The chain-wide rule for a gov/doc entry a client handed over
 * (dm_catalog_gov_max_version): ACCEPTED, or STALE with a reason. */
dm_catalog_verdict dm_catalog__gov_monotonic(const dm_catalog_t *c, const dm_catalog_entry_t *e,
                                             dm_buf_t *why);
/* The bound on a governance entry's version: ACCEPTED, or MALFORMED with
 * a reason when it is more than DM_CATALOG_GOV_VERSION_LEAP above
 * dm_catalog_gov_max_version. */
dm_catalog_verdict dm_catalog__gov_leap(const dm_catalog_t *c, const dm_catalog_entry_t *e,
                                        dm_buf_t *why);
/* Whether a stored entry of kind may be loaded: true unless it is a
 * governance entry whose signature does not verify (logged once, with its
 * key: it is skipped and never activated). */
bool dm_catalog__gov_authentic(const dm_catalog_entry_t *e, dm_catalog__kind kind);
/* After a load: ends the key chain before a link that no stored gov/root
 * entry backs (logged), and lowers a chain key's version seen to the
 * highest of its stored entries. */
void dm_catalog__gov_loaded(dm_catalog_t *c);
/* Decodes a gov/root payload: its new key and root version; false if it
 * is not a dm.GovRoot with a 32-byte key. */
bool dm_catalog__gov_root_decode(const dm_catalog_entry_t *e, uint8_t key[DM_ID_PUBLIC_BYTES],
                                 uint64_t *root_version);
/* Whether key is in the chain (current or retired). */
bool dm_catalog__in_chain(const dm_catalog_t *c, const uint8_t *key);
/* Appends key at root_version to the chain in memory. false without memory. */
bool dm_catalog__chain_append(dm_catalog_t *c, const uint8_t *key, uint64_t root_version);
/* Orders dm_catalog__cert_t by domain (qsort, bsearch). */
int dm_catalog__cert_cmp(const void *a, const void *b);
/* Loads one stored chain link ('g' record); false if corrupt or without
 * memory (*nomem tells which). */
bool dm_catalog__gov_load(dm_catalog_t *c, const uint8_t *key, size_t klen, const uint8_t *val,
                          size_t vlen, bool *nomem);
/* The node a certificate binds domain to, or NULL (always NULL without a
 * governance key). */
const uint8_t *dm_catalog__cert_find(const dm_catalog_t *c, const char *domain);

/* ---- catalog_entry.c ---- */

/* Fills a protobuf view of e (pointers into e). */
void dm_catalog__entry_to_pb(const dm_catalog_entry_t *e, Dm__CatalogEntry *pb);
/* Points *out into pb (borrowed, valid while pb lives) after bounds
 * checks: false (with a reason in why, may be NULL) if an id or signature
 * has the wrong length or the key or payload is over its bound. */
bool dm_catalog__entry_view(const Dm__CatalogEntry *pb, dm_catalog_entry_t *out, dm_buf_t *why);
/* Size of e as one element of a repeated field (tag + length + body). */
size_t dm_catalog__wire_bytes(const dm_catalog_entry_t *e);

/* Whether the refusal of e was reported within DM_CATALOG_REFUSAL_QUIET_MS
 * before now_ms (node/catalog/catalog_limits.c); if not, it is reported
 * now: remembered at now_ms. */
bool dm_catalog__refusal_quiet(dm_catalog_t *c, const dm_catalog_entry_t *e, int64_t now_ms);

/* Whether a remote entry of e->origin may be judged at all
 * (node/catalog/catalog_strangers.c, see dm_catalog_set_known); may take a
 * stranger slot. */
bool dm_catalog__origin_admit(dm_catalog_t *c, const dm_catalog_entry_t *e);

/* Where an entry comes from: this node's own publication, a peer's delta
 * (in ascending version per origin: each authentic entry advances its
 * origin's version in the digest; dm_catalog_apply of a node's entry
 * counts as one), or a governance entry pushed alone (dm_catalog_apply:
 * out of order, so it advances nothing and the digest keeps asking peers
 * for what may lie below it). */
typedef enum {
    DM_CATALOG__LOCAL,
    DM_CATALOG__DELTA,
    DM_CATALOG__PUSH
} dm_catalog__source;

/* Judges e from source within the pending batch (see dm_catalog_apply).
 * Returns a verdict; DM_ERR_NOMEM aborts through *err. budget (may be NULL) is
 * charged with the payload of a contract about to be parsed, after every
 * cheaper check; an entry past it sets budget->cut and is left untouched
 * (nothing stored, its version not raised; the verdict is meaningless). */
dm_catalog_verdict dm_catalog__admit(dm_catalog_t *c, const dm_catalog_entry_t *e,
                                     dm_catalog__source source,
                                int64_t now_ms, dm_catalog__budget_t *budget, dm_buf_t *why,
                                dm_err *err);
/* Commits the pending batch; on failure reloads memory from the store and
 * appends the store's reason to why. */
dm_err dm_catalog__commit(dm_catalog_t *c, dm_buf_t *why);
/* Drops the pending batch after an in-memory failure (reloads). */
void dm_catalog__abort(dm_catalog_t *c);

#endif
