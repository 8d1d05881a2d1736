/* harness_access.h: who a test acts as (issue 9). People are identity
 * files made with the real `dmctl keygen`; a tool runs as one of them
 * (--identity FILE) or as a node's own key, a domain admin (--data DIR).
 * Governance entries a test builds itself (good, forged, tampered,
 * replayed) go to a node in a PolicyPublishReq, and a node's governance
 * state is read back with PolicyGetReq. */
#ifndef DM_HARNESS_ACCESS_H
#define DM_HARNESS_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "harness_catalog.h"
#include "identity/identity.h"
#include "proto/mesh.pb-c.h"

#define DM_H_CMD_MS 30000 /* one tool command */
#define DM_H_GOV_DOCS_MAX 32

/* A person: an identity file and its public key. */
typedef struct {
    char file[600];
    char hex[DM_ID_HEX_BYTES];
} dm_h_person_t;

/* Makes DIR/NAME.key with `dmctl keygen` and fills *p; false (with the
 * tool's output on stderr) if the tool failed or printed another key than
 * the file holds. */
bool dm_h_person(dm_h_person_t *p, const char *dir, const char *name);
/* Loads p's identity (for a test's own wire client or signatures); the
 * caller destroys it. NULL on failure. */
dm_identity_t *dm_h_person_identity(const dm_h_person_t *p);

/* Runs tool (dmctl, meshq) as identity file `as` against node n:
 * "--node ADDR --identity FILE args...". */
dm_h_result_t dm_h_run_as(const char *tool, const char *as, const dm_h_node_t *n,
                          const char *const *args, const char *stdin_text);
/* Runs tool as node n's own key, a domain admin: "--data DIR args...". */
dm_h_result_t dm_h_run_admin(const char *tool, const dm_h_node_t *n, const char *const *args,
                             const char *stdin_text);
/* A product's contract in the shape of the orders example: fields
 * orderId, email (classified pii), region and amount; sla.freshness set;
 * policies.access as given and readers a YAML flow-list body ("" for
 * none). Static buffer. */
const char *dm_h_orders_contract(const char *domain, const char *name, const char *version,
                                 const char *access, const char *readers);
/* Four valid records for it: o1..o4, regions eu, us, eu, us. */
extern const char *const dm_h_orders_rows;

/* Writes text to DIR/name and returns the path (static, 4 in rotation). */
const char *dm_h_file(const char *dir, const char *name, const char *text);
/* Governance YAML (a static buffer, overwritten by the next call): group
 * pii-readers of member_hex, and policy privacy redacting commerce/orders'
 * pii fields for everyone outside it. */
const char *dm_h_pii_policy(const char *member_hex);
/* Registers n's DOMAIN/NAME (dm_h_orders_contract with access and readers,
 * written to DIR/DOMAIN-NAME.yaml) as n's admin and ingests
 * dm_h_orders_rows. false, with the failing command and its output on
 * stderr, when either fails. */
bool dm_h_orders_product(const dm_h_node_t *n, const char *dir, const char *name,
                         const char *access, const char *readers);

/* Node n's public key (the part of its address before '@'). */
void dm_h_node_key(const dm_h_node_t *n, char hex[DM_ID_HEX_BYTES]);

/* Polls cond(ctx) every few ms until it is true (true) or timeout_ms
 * passed (false). */
bool dm_h_wait_until(bool (*cond)(void *ctx), void *ctx, int timeout_ms);

/* The integer after the first "field": in json, or def when absent. */
long long dm_h_json_int(const char *json, const char *field, long long def);
/* How many times needle occurs in hay (0 for NULL hay). */
size_t dm_h_count(const char *hay, const char *needle);

/* A decision an audit must list (dmctl audit --json): NULL matches any
 * value; product "" only an empty one; the record's policy version must
 * be version (-1: any). Every record must name its rule. */
typedef struct {
    const char *caller, *action, *product, *rule;
    bool allowed;
    long long version;
} dm_h_audit_want_t;
/* Whether one record of json (an array of flat objects) is w. */
bool dm_h_audit_has(const char *json, const dm_h_audit_want_t *w);
/* Waits until node n's audit, read by its admin, lists w; returns that
 * audit's JSON (the caller frees it; the last one read on a timeout). */
char *dm_h_audit_wait(const dm_h_node_t *n, const dm_h_audit_want_t *w, int timeout_ms);

/* One request to n as identity id (NULL: a throwaway, unverified key); the
 * reply (free with dm__envelope__free_unpacked) or NULL without one. */
Dm__Envelope *dm_h_call_as(const dm_h_node_t *n, const dm_identity_t *id, Dm__Envelope *req);

/* Node n's governance state (PolicyGetReq), answered false without a
 * reply. */
typedef struct {
    bool answered;
    char key[DM_ID_HEX_BYTES]; /* "" without a governance key */
    uint64_t root_version, max_version, policy_version;
    size_t ndocs;
    char docs[DM_H_GOV_DOCS_MAX][DM_CATALOG_KEY_MAX]; /* "gov/doc/NAME" */
    uint64_t versions[DM_H_GOV_DOCS_MAX];
} dm_h_gov_t;
dm_h_gov_t dm_h_policy_get(const dm_h_node_t *n);
/* Whether n's active documents include gov/doc/NAME (at version, if not 0). */
bool dm_h_gov_has(const dm_h_gov_t *g, const char *name, uint64_t version);

/* A governance entry a test built: key storage and the signed entry. */
typedef struct {
    char key[DM_CATALOG_KEY_MAX];
    dm_h_entry_t t;
} dm_h_gov_entry_t;

/* "gov/doc/NAME" with payload yaml, origin's at version, signed by signer
 * (a forgery when signer is not origin's key). */
bool dm_h_gov_doc(dm_h_gov_entry_t *g, const dm_identity_t *signer, const uint8_t *origin,
                  const char *name, const char *yaml, uint64_t version);
/* "gov/root": the rotation to new_key at root_version, as above. */
bool dm_h_gov_root(dm_h_gov_entry_t *g, const dm_identity_t *signer, const uint8_t *origin,
                   const uint8_t new_key[DM_ID_PUBLIC_BYTES], uint64_t root_version,
                   uint64_t version);
void dm_h_gov_entry_free(dm_h_gov_entry_t *g);

/* Sends g in a PolicyPublishReq to n as id (NULL: throwaway). Returns
 * true when the node accepted it (PolicyPublishRep); otherwise false with
 * the node's error text in why (cap bytes; "no reply" without one). */
bool dm_h_gov_publish(const dm_h_node_t *n, const dm_identity_t *id, const dm_h_gov_entry_t *g,
                      char *why, size_t cap);

/* How n's mesh listing (ProductsReq mesh) shows DOMAIN/NAME: -1 not
 * listed, 0 listed and certified, 1 listed uncertified; -2 no answer. */
int dm_h_listed(const dm_h_node_t *n, const char *domain, const char *name);
/* A listing to wait for with dm_h_wait_until(dm_h_listing_is, ...). */
typedef struct {
    const dm_h_node_t *node;
    const char *domain, *name;
    int want; /* as dm_h_listed returns */
} dm_h_listing_t;
/* Whether dm_h_listed of the dm_h_listing_t ctx is its want. */
bool dm_h_listing_is(void *ctx);

#endif
