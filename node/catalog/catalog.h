/* catalog.h: the signed catalog: every fact a node publishes, as entries
 * signed with its ed25519 key, versioned per origin, kept in LMDB and
 * spread by Scuttlebutt anti-entropy (van Renesse et al. 2008).
 *
 * Keys (docs/catalog.md):
 *   "node"                the node record (dm.NodeRecord: domain claim,
 *                         address, products); it claims the domain
 *   "product/DOMAIN/NAME" the canonical contract JSON, or a tombstone
 *   "acl/DOMAIN/NAME"     the owner's grants (dm.AclRecord), or a tombstone
 *   "health/DOMAIN/NAME"  the owner's view of the product's health
 *                         (dm.HealthRecord), or a tombstone
 *   "gov/root", "gov/doc/NAME"  governance, from the governance key only
 * A receiver verifies the signature first, then who may say it (gov/ keys),
 * then ownership (a certified domain belongs to its certified node, else
 * the first accepted claim of a domain is pinned; claims, products and acl
 * entries from any other origin are refused), then the version (the
 * highest per (origin, key) wins). Pure logic plus LMDB: no sockets, time is an argument. Not
 * thread-safe: one thread (the node loop) owns a catalog. Every call that
 * changes the catalog commits one synchronous LMDB transaction before it
 * returns, so a process killed at any moment restarts from a consistent
 * catalog. */
#ifndef DM_CATALOG_H
#define DM_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "contract/contract.h"
#include "base/err.h"
#include "identity/identity.h"
#include "storage/store.h"

#define DM_CATALOG_KEY_MAX 160                   /* bytes of a key, NUL included */
#define DM_CATALOG_NAME_MAX 63                   /* domain and product names */
#define DM_CATALOG_PAYLOAD_MAX DM_CONTRACT_MAX_FILE /* bytes of a payload */
/* Bytes of one encoded entry at most (payload + key + ids + varints). */
#define DM_CATALOG_ENTRY_MAX_BYTES (DM_CATALOG_PAYLOAD_MAX + 512)
/* A delta message is never larger than this: its max_bytes, or one entry
 * alone when a single entry is larger. The transport must accept it. */
#define DM_CATALOG_DELTA_MAX_BYTES (DM_CATALOG_ENTRY_MAX_BYTES + 16)
/* Payload bytes (contracts, each parsed) one dm_catalog_apply_delta call
 * judges; the rest of a larger delta waits for the next exchange, so a
 * peer's message costs the node loop about one honest delta at most
 * (docs/catalog.md has the figures). One entry is always judged. */
#define DM_CATALOG_JUDGE_BYTES (256 << 10)
/* And per window of time, over all peers: what the catalog may cost the
 * node loop per second, whoever sends (about 200-250 ms at the measured
 * rates; one entry may overshoot it). Deltas past it wait for the next
 * periodic exchange. */
#define DM_CATALOG_JUDGE_WINDOW_MS 1000
#define DM_CATALOG_JUDGE_BYTES_PER_WINDOW (4 * DM_CATALOG_JUDGE_BYTES)
/* One sending member's share of that window (dm_catalog_apply_delta_from):
 * a quarter, so one peer leaves three quarters to the others, and an
 * honest first sync from one peer still judges 256 KiB a second. Only
 * payload that reaches the contract parser is charged: what fails the
 * cheap checks (decoding, signature, origin admission, staleness) is not;
 * a governance document's check is charged as a contract. */
#define DM_CATALOG_JUDGE_SENDER_BYTES DM_CATALOG_JUDGE_BYTES
/* Senders tracked per window; later ones in the same window share the
 * last row (a bounded table, emptied when the window turns). */
#define DM_CATALOG_JUDGE_SENDERS 64
/* Origins in one digest page: the builder's cap and the receiver's limit
 * alike, so an honest digest is never refused however many origins the
 * mesh has; a peer asks for the next page (docs/catalog.md). */
#define DM_CATALOG_DIGEST_PAGE 1024
#define DM_CATALOG_DIGEST_ROW_BYTES 64 /* one OriginVersion on the wire, at most (47 in fact) */
/* A digest page on the wire: its rows plus the two range bounds. */
#define DM_CATALOG_DIGEST_MAX_BYTES ((DM_CATALOG_DIGEST_PAGE + 2) * DM_CATALOG_DIGEST_ROW_BYTES)
/* Catalog sync messages that cost this node work (a digest page, a
 * delta, a hash that differs from ours: each makes it build or judge a
 * page or a delta) taken from one member: a token bucket of
 * DM_CATALOG_SYNC_BURST messages refilled at DM_CATALOG_SYNC_PER_S. An
 * honest round at 10,000 origins is about 11 such messages per direction;
 * answering a page there costs about 1.25 ms, so one member costs the loop
 * at most about 25 ms a second. Past it messages are dropped (the next
 * round resyncs) and a debug line says so once per DM_CATALOG_SYNC_LOG_MS. */
#define DM_CATALOG_SYNC_PER_S 20
#define DM_CATALOG_SYNC_BURST 40
#define DM_CATALOG_SYNC_LOG_MS 10000
/* Members tracked; when full, the longest idle row is reused. */
#define DM_CATALOG_SYNC_SENDERS 1024
/* A peer resends what this node refused but did not count as seen (a
 * retired governance key's entries, say) every round: the refusal of one
 * (origin, key, version) goes into a delta's why at most once per
 * DM_CATALOG_REFUSAL_QUIET_MS. The table remembers
 * DM_CATALOG_REFUSALS_TRACKED of them; a new one takes the row reported
 * longest ago. */
#define DM_CATALOG_REFUSAL_QUIET_MS (10 * 60 * 1000)
#define DM_CATALOG_REFUSALS_TRACKED 256
/* Origins that membership does not know (strangers) the catalog takes on
 * at once, and the entries each may have stored: enough for the race in
 * which a new member's entries arrive before the news of its joining;
 * everything else from a stranger is refused until membership knows it.
 * Origins already stored (also after a restart) are not strangers. */
#define DM_CATALOG_STRANGERS_MAX 32
#define DM_CATALOG_STRANGER_ENTRIES 8
#define DM_CATALOG_NODE_KEY "node"
#define DM_CATALOG_PRODUCT_PREFIX "product/"
/* "acl/DOMAIN/NAME": the owner's grants and revocations of readers of one
 * product (an encoded dm.AclRecord), published by the domain's owner as
 * products are; a tombstone when the product is deregistered. */
#define DM_CATALOG_ACL_PREFIX "acl/"
/* Readers in each list of an acl record at most (each 64 hex digits of a
 * key, either case, or "group:NAME"). */
#define DM_CATALOG_ACL_READERS_MAX 1000
/* "health/DOMAIN/NAME": the latest check results (without samples), SLA
 * terms, last ingest and counts of one product (an encoded
 * dm.HealthRecord), published by the domain's owner as acl entries are; a
 * tombstone when the product is deregistered. A payload holds at most
 * DM_CONTRACT_MAX_CHECKS checks and DM_CATALOG_HEALTH_SLA_MAX SLA terms,
 * each string at most DM_CATALOG_HEALTH_TEXT_MAX bytes, and no samples. */
#define DM_CATALOG_HEALTH_PREFIX "health/"
#define DM_CATALOG_HEALTH_SLA_MAX 3
#define DM_CATALOG_HEALTH_TEXT_MAX 512
/* Governance entries, published by the governance key only (their origin),
 * never by a node: "gov/root" (an encoded dm.GovRoot: a key rotation) and
 * "gov/doc/NAME" (one governance YAML document, policy/policy.h). */
#define DM_CATALOG_GOV_PREFIX "gov/"
#define DM_CATALOG_GOV_ROOT_KEY "gov/root"
#define DM_CATALOG_GOV_DOC_PREFIX "gov/doc/"
/* A governance entry whose version is more than this above the
 * governance log's (dm_catalog_gov_max_version) is refused (MALFORMED),
 * from a client or a peer, so no entry can push the log's version near
 * the top of uint64 and leave no next version; honest publications take
 * the next one. */
#define DM_CATALOG_GOV_VERSION_LEAP (UINT64_C(1) << 20)

typedef struct dm_catalog dm_catalog_t;

/* One entry, decoded. Owns key and payload when it came from
 * dm_catalog_entry_decode or dm_catalog_get (free with
 * dm_catalog_entry_clear); a caller building one may point them anywhere. */
typedef struct {
    uint8_t origin[DM_ID_PUBLIC_BYTES];
    char *key;           /* NUL-terminated */
    uint64_t version;    /* >= 1 */
    int64_t issued_at_ms;
    bool tombstone;
    uint8_t *payload;
    size_t payload_len;
    uint8_t signature[DM_ID_SIGNATURE_BYTES];
} dm_catalog_entry_t;

typedef enum {
    DM_CATALOG_ACCEPTED,        /* stored (a product of an unclaimed domain waits for its claim) */
    DM_CATALOG_STALE,           /* a replay or older than the stored version */
    DM_CATALOG_BAD_SIGNATURE,   /* not signed by its origin: nothing else was looked at */
    DM_CATALOG_NOT_OWNER,       /* a product of a domain pinned to another origin */
    DM_CATALOG_MALFORMED,       /* bad key, bounds, node record or contract */
    DM_CATALOG_DOMAIN_CONFLICT, /* a node record claiming a domain pinned to another origin */
    DM_CATALOG_UNKNOWN_ORIGIN,  /* an origin membership does not know, over the stranger quota */
    DM_CATALOG__VERDICTS
} dm_catalog_verdict;

/* Counts per verdict of a batch (dm_catalog_apply_delta). */
typedef struct {
    size_t n[DM_CATALOG__VERDICTS];
    /* Of the refusals counted in n as BAD_SIGNATURE, NOT_OWNER, MALFORMED
     * or DOMAIN_CONFLICT, those of an (origin, key, version) already
     * reported in a why within DM_CATALOG_REFUSAL_QUIET_MS: their lines
     * are left out of why (the catalog logs them at debug). */
    size_t quiet;
} dm_catalog_counts_t;

/* ---- lifecycle ---- */

/* Loads the catalog kept in store (entries, versions, pins, conflicts).
 * store and self are borrowed and must outlive the catalog. store NULL
 * makes an in-memory catalog that persists nothing (the simulator runs
 * thousands of them in one process). A stored governance entry whose
 * signature does not verify is skipped (logged with its key: never
 * activated), and the key chain ends before a link that no authentic
 * stored rotation backs. On error *out is NULL: DM_ERR_STORE (also for a
 * corrupt record) with a line in why naming it (base/err.h; not logged),
 * DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_catalog_open(dm_store_t *store, const dm_identity_t *self,
                                    dm_catalog_t **out, dm_buf_t *why);
/* Frees the catalog (the store keeps everything). NULL-safe; sets *self_p
 * to NULL. */
void dm_catalog_destroy(dm_catalog_t **self_p);

/* Whether membership knows origin (in any state); ctx is the caller's. */
typedef bool (*dm_catalog_known_fn)(void *ctx, const uint8_t origin[DM_ID_PUBLIC_BYTES]);
/* From now on, remote entries of an origin that neither is stored nor
 * known(ctx, origin) take one of DM_CATALOG_STRANGERS_MAX slots, with at
 * most DM_CATALOG_STRANGER_ENTRIES entries; past that they are refused
 * (DM_CATALOG_UNKNOWN_ORIGIN) and nothing of them is stored, so a peer
 * resends them once membership knows the origin. known NULL: every origin
 * is welcome (the simulator). ctx is borrowed. Cannot fail. */
void dm_catalog_set_known(dm_catalog_t *c, dm_catalog_known_fn known, void *ctx);

/* Whether a costly sync message from member sender (a node id) may be
 * handled at now_ms: takes one token of its bucket (see
 * DM_CATALOG_SYNC_PER_S). false: drop the message. Cannot fail. */
bool dm_catalog_sync_allow(dm_catalog_t *c, const uint8_t sender[DM_ID_PUBLIC_BYTES],
                           int64_t now_ms);

/* ---- governance ---- */

/* Sets the mesh's governance key (meshd --governance). The catalog keeps
 * the key chain in the store: the first key given is root version 1, and
 * each accepted "gov/root" rotation (signed by the current key, with a
 * root version exactly one higher) makes its key the current one. Giving
 * a key already in the chain keeps the current one; a key not in it is
 * refused (DM_ERR_CONFLICT, a line in why naming both keys) unless the
 * chain is empty; this node's own key is refused (DM_ERR_INVALID: the
 * governance key publishes nothing but gov/ entries). From then on:
 *   - entries whose origin is the current governance key are admitted
 *     whatever membership knows, but only with gov/ keys; gov/ entries from
 *     any other origin are refused (DM_CATALOG_NOT_OWNER; so are all gov/
 *     entries while no key is set);
 *   - a "gov/doc/NAME" payload must pass the check set with
 *     dm_catalog_set_gov_check (DM_CATALOG_MALFORMED otherwise);
 *   - domain ownership follows the certificates (dm_catalog_set_certificates).
 * A store error leaves everything as it was. */
DM_NODISCARD dm_err dm_catalog_set_governance(dm_catalog_t *c,
                                              const uint8_t key[DM_ID_PUBLIC_BYTES],
                                              dm_buf_t *why);
/* The current governance key and its root version; false when none. */
bool dm_catalog_governance(const dm_catalog_t *c, uint8_t key[DM_ID_PUBLIC_BYTES],
                           uint64_t *root_version);
/* Validates a "gov/doc/NAME" payload before it is stored (the node parses
 * it with policy/policy.h): true to accept; false with a line in why. */
typedef bool (*dm_catalog_gov_check_fn)(void *ctx, const char *key, const uint8_t *payload,
                                        size_t len, dm_buf_t *why);
void dm_catalog_set_gov_check(dm_catalog_t *c, dm_catalog_gov_check_fn fn, void *ctx);
/* Counts every change to the governance entries of the key chain (and
 * every rotation): the node rebuilds its policy set when it moves. */
uint64_t dm_catalog_gov_generation(const dm_catalog_t *c);
/* Calls fn for every active governance document, ordered by key: per
 * "gov/doc/NAME", the entry of the newest key of the chain that has one.
 * A retired key publishes nothing new, so its documents stay active until
 * a newer key replaces them or withdraws them with a tombstone (which
 * also hides that name; tombstones are never passed to fn). Each entry's
 * signature was verified as it came in, from a peer, a client or the
 * store (dm_catalog_open). Cannot fail. */
typedef int (*dm_catalog_entry_fn)(void *ctx, const dm_catalog_entry_t *e);
void dm_catalog_gov_docs(const dm_catalog_t *c, dm_catalog_entry_fn fn, void *ctx);
/* The version of the active set: the highest version among the entries
 * dm_catalog_gov_docs chooses, withdrawals (tombstones) included, so a
 * withdrawal gives the set a new version too. 0 when there is none. */
uint64_t dm_catalog_gov_docs_version(const dm_catalog_t *c);
/* The highest version seen or stored for origin (0 when none). */
uint64_t dm_catalog_max_version(const dm_catalog_t *c, const uint8_t origin[DM_ID_PUBLIC_BYTES]);
/* The highest version among the stored governance entries of the keys of
 * the governance chain (0 without a key): a governance publication takes
 * the next. Only stored entries count, each accepted while its key was
 * current; a refused entry (a retired key's, a malformed one) never
 * raises it. A "gov/doc/NAME" entry handed over by a client
 * (dm_catalog_apply) whose version is not above it is refused as STALE, so
 * versions keep rising across rotations and name one set. Entries from
 * peers (deltas) are not held to it: a peer may deliver an older entry
 * this node missed. Any governance entry more than
 * DM_CATALOG_GOV_VERSION_LEAP above it is refused. */
uint64_t dm_catalog_gov_max_version(const dm_catalog_t *c);
/* The active certificates (domain -> node key), from the node's policy
 * set; n 0 clears them. With a governance key set, a domain with a
 * certificate belongs to the certified node: its node records and products
 * from any other origin are refused (a domain pinned first-come to another
 * node moves to the certified one; the old owner's products of it stop
 * being listed); a domain without one is still pinned first-come but
 * reported uncertified. Without a governance key certificates are ignored.
 * Kept in memory only (the moved pins are stored). DM_ERR_INVALID for a
 * domain that is not a name or is certified twice, DM_ERR_NOMEM or a
 * store error (nothing changed; a line in why). */
DM_NODISCARD dm_err dm_catalog_set_certificates(dm_catalog_t *c, const char *const *domains,
                                                const uint8_t (*nodes)[DM_ID_PUBLIC_BYTES],
                                                size_t n, dm_buf_t *why);
/* Whether domain's owner may be trusted: true without a governance key,
 * else whether a certificate binds the domain to origin. */
bool dm_catalog_certified(const dm_catalog_t *c, const char *domain,
                          const uint8_t origin[DM_ID_PUBLIC_BYTES]);
/* Appends to payload the live "acl/DOMAIN/NAME" entry of the origin domain
 * is pinned to: an encoded dm.AclRecord (checked when accepted; may be
 * empty). DM_ERR_NOTFOUND (nothing appended) when the domain is not
 * pinned, or its owner published no acl entry for name or tombstoned it. */
DM_NODISCARD dm_err dm_catalog_acl(const dm_catalog_t *c, const char *domain, const char *name,
                                   dm_buf_t *payload);
/* The live health entry (key "health/DOMAIN/NAME", an encoded
 * dm.HealthRecord, docs/catalog.md) of the domain's owner (its certified
 * node, else the origin it is pinned to), copied into payload (reset
 * first; checked when accepted). DM_ERR_NOTFOUND when there is none: the
 * domain has no owner, or its owner published none or tombstoned it. */
DM_NODISCARD dm_err dm_catalog_health(const dm_catalog_t *c, const char *domain,
                                      const char *name, dm_buf_t *payload);

/* ---- local publications ---- */

/* Signs and stores a fact of this node with the next version. key is
 * "node" (payload: an encoded dm.NodeRecord), "product/DOMAIN/NAME"
 * (payload: the canonical contract JSON of DOMAIN/NAME; tombstone: payload
 * empty, deletes the product) or "acl/DOMAIN/NAME" (an encoded
 * dm.AclRecord of a product this node publishes) or "health/DOMAIN/NAME"
 * (an encoded dm.HealthRecord of one). Fails with a reason in why (may be NULL):
 * DM_ERR_INVALID (bad key or payload), DM_ERR_DENIED (a product of a
 * domain not pinned to this node: publish the node record first),
 * DM_ERR_CONFLICT (the node record claims a domain pinned to another
 * node), DM_ERR_NOTFOUND (tombstone of a product not published), or a
 * store error (nothing changed). */
DM_NODISCARD dm_err dm_catalog_publish(dm_catalog_t *c, const char *key, const void *payload,
                                       size_t len, bool tombstone, int64_t now_ms,
                                       dm_buf_t *why);
/* Publishes the node record: domain, address and the node's live products
 * ("DOMAIN/NAME", from its own product entries). Errors as above. */
DM_NODISCARD dm_err dm_catalog_publish_node(dm_catalog_t *c, const char *domain,
                                            const char *address, int64_t now_ms, dm_buf_t *why);

/* ---- remote entries ---- */

/* Judges one entry from a peer: signature first, then bounds and key,
 * ownership, version, then the payload (a product's contract must parse
 * and name DOMAIN/NAME). Accepted entries are stored; refused claims are
 * listed as conflicts and logged once. A governance entry (a client's
 * dmctl policy publish, handed to any node out of order) does not advance
 * its origin's version in the digest, so peers still send what lies below
 * it; dm_catalog_max_version counts it. On DM_OK *verdict is set and, unless
 * accepted, why (may be NULL) gets a one-line reason. Returns a store
 * error only when a write failed (the catalog is then reloaded from the
 * store). */
DM_NODISCARD dm_err dm_catalog_apply(dm_catalog_t *c, const dm_catalog_entry_t *e,
                                     int64_t now_ms, dm_catalog_verdict *verdict,
                                     dm_buf_t *why);

/* Static name of a verdict ("accepted", "stale", ...). */
const char *dm_catalog_verdict_name(dm_catalog_verdict v);

/* ---- Scuttlebutt anti-entropy (node/catalog/catalog_sync.c) ---- */

/* Appends an encoded dm.CatalogDigest to out: the highest version held per
 * origin, every origin. For hashing the whole catalog (and small tests):
 * a peer refuses it on the wire past DM_CATALOG_DIGEST_PAGE origins; send
 * pages instead. Cannot fail. */
void dm_catalog_digest(const dm_catalog_t *c, dm_buf_t *out);

/* Appends the first digest page (origins from the lowest id, at most
 * DM_CATALOG_DIGEST_PAGE of them). Cannot fail. */
void dm_catalog_digest_first(const dm_catalog_t *c, dm_buf_t *out);

/* Answers a peer's encoded digest page (CatalogSync.digest). delta gets an
 * encoded dm.CatalogDelta with the entries of the page's range the peer
 * lacks (as dm_catalog_delta; empty when there are none). digest gets,
 * if wants_digest (the peer sent its hash too), this node's page of the
 * same range; else, when the peer's page was not the last, this node's
 * next page after it, and *ask is set: send it with the hash so the peer
 * answers it in turn. Otherwise digest stays empty. Each call costs at
 * most one page of origins plus max_bytes of entries.
 * DM_ERR_PROTO for a digest that does not decode, holds more than
 * DM_CATALOG_DIGEST_PAGE origins, or lists them out of order or outside
 * its range. */
DM_NODISCARD dm_err dm_catalog_answer(dm_catalog_t *c, const void *digest, size_t len,
                                      bool wants_digest, size_t max_bytes, dm_buf_t *delta,
                                      dm_buf_t *digest_out, bool *ask);

/* Given a peer's encoded digest (a page: only origins in its range are
 * considered), appends to out an encoded dm.CatalogDelta
 * with the entries the peer lacks, in ascending version per origin, at
 * most max_bytes long unless its one entry alone is longer (never more
 * than DM_CATALOG_DELTA_MAX_BYTES). *more (and the message's more flag) is
 * set when entries were left for the next exchange. Origins take turns in
 * going first, so a busy origin cannot starve the others.
 * DM_ERR_PROTO for a digest that does not decode or breaks the bounds
 * (see dm_catalog_answer). */
DM_NODISCARD dm_err dm_catalog_delta(dm_catalog_t *c, const void *digest, size_t len,
                                     size_t max_bytes, dm_buf_t *out, bool *more);

/* Applies an encoded dm.CatalogDelta: each entry as dm_catalog_apply, in
 * ascending version per origin, all in one LMDB transaction, up to
 * DM_CATALOG_JUDGE_BYTES of payload and what is left of
 * DM_CATALOG_JUDGE_BYTES_PER_WINDOW in the window around now_ms (the rest
 * is left for a later exchange). counts (may be NULL) receives the verdicts, *more (may be
 * NULL) the message's flag or whether entries were left,
 * why (may be NULL) a line per refused entry. DM_ERR_PROTO (nothing
 * applied) for a message that does not decode or is over
 * DM_CATALOG_DELTA_MAX_BYTES; a store error if the commit failed. */
DM_NODISCARD dm_err dm_catalog_apply_delta(dm_catalog_t *c, const void *delta, size_t len,
                                           int64_t now_ms, dm_catalog_counts_t *counts,
                                           bool *more, dm_buf_t *why);
/* The same for a delta sent by member sender (a node id): it judges at
 * most DM_CATALOG_JUDGE_SENDER_BYTES per window of its own, within the
 * node-wide DM_CATALOG_JUDGE_BYTES_PER_WINDOW. sender NULL: only the
 * node-wide window applies (dm_catalog_apply_delta). */
DM_NODISCARD dm_err dm_catalog_apply_delta_from(dm_catalog_t *c, const uint8_t *sender,
                                                const void *delta, size_t len, int64_t now_ms,
                                                dm_catalog_counts_t *counts, bool *more,
                                                dm_buf_t *why);

/* ---- single entries on the wire ---- */

/* Appends e encoded as dm.CatalogEntry. Cannot fail. */
void dm_catalog_entry_encode(const dm_catalog_entry_t *e, dm_buf_t *out);
/* Decodes a dm.CatalogEntry into *out (caller clears). DM_ERR_PROTO (out
 * zeroed) if it does not decode, an id or signature has the wrong length,
 * or the key or payload is over its bound. */
DM_NODISCARD dm_err dm_catalog_entry_decode(const void *data, size_t len,
                                            dm_catalog_entry_t *out);
/* Frees the key and payload of e and zeroes it. NULL-safe. */
void dm_catalog_entry_clear(dm_catalog_entry_t *e);
/* Appends the byte string the signature covers (docs/catalog.md). */
void dm_catalog_entry_signed_bytes(const dm_catalog_entry_t *e, dm_buf_t *out);

/* ---- observation ---- */

/* Copies the stored entry (origin, key) into *out (caller clears).
 * DM_ERR_NOTFOUND if there is none. */
DM_NODISCARD dm_err dm_catalog_get(const dm_catalog_t *c, const uint8_t origin[DM_ID_PUBLIC_BYTES],
                                   const char *key, dm_catalog_entry_t *out);
/* The highest version this node has published (0 before the first). */
uint64_t dm_catalog_local_version(const dm_catalog_t *c);
/* Number of stored entries (all origins, tombstones included). */
size_t dm_catalog_count(const dm_catalog_t *c);
/* Whether domain is pinned; if so and owner is not NULL, writes the owner. */
bool dm_catalog_owner(const dm_catalog_t *c, const char *domain,
                      uint8_t owner[DM_ID_PUBLIC_BYTES]);

/* In the callbacks below every pointer is borrowed, valid during the call
 * only; the callback must not change the catalog. Return non-zero to stop. */

typedef struct {
    const uint8_t *origin;
    const char *domain, *name;
    uint64_t version;
    int64_t issued_at_ms;
    bool tombstone;
    const char *contract; /* canonical JSON, not NUL-terminated; NULL for a tombstone */
    size_t contract_len;
} dm_catalog_product_t;
typedef int (*dm_catalog_product_fn)(void *ctx, const dm_catalog_product_t *p);
/* Calls fn for the products whose domain is pinned to their origin,
 * ordered by DOMAIN/NAME; tombstoned ones only if with_tombstones. fn
 * returning non-zero stops the walk. DM_ERR_NOMEM (fn never called) if the
 * ordering cannot be allocated. */
DM_NODISCARD dm_err dm_catalog_products(const dm_catalog_t *c, bool with_tombstones,
                                        dm_catalog_product_fn fn, void *ctx);

typedef struct {
    const uint8_t *origin;
    const char *domain, *address;
    const char *const *products; /* "DOMAIN/NAME" */
    size_t nproducts;
    uint64_t version;
    int64_t issued_at_ms;
} dm_catalog_node_t;
typedef int (*dm_catalog_node_fn)(void *ctx, const dm_catalog_node_t *n);
/* Accepted node records, ordered by origin. */
void dm_catalog_nodes(const dm_catalog_t *c, dm_catalog_node_fn fn, void *ctx);

typedef struct {
    const char *domain;
    const uint8_t *owner;    /* the pinned owner */
    const uint8_t *claimant; /* the refused origin */
    int64_t first_seen_ms, last_seen_ms;
    uint64_t refusals;       /* entries refused from this claimant */
} dm_catalog_conflict_t;
typedef int (*dm_catalog_conflict_fn)(void *ctx, const dm_catalog_conflict_t *k);
/* Refused claims, ordered by domain then claimant. */
void dm_catalog_conflicts(const dm_catalog_t *c, dm_catalog_conflict_fn fn, void *ctx);

#endif
