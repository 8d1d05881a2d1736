/* policy.h: who may do what. Pure decision logic over the mesh's
 * governance documents and a product owner's rules; no sockets, no LMDB,
 * no clock (times are arguments). docs/governance.md is the user's guide.
 *
 * Governance documents are YAML (apiVersion: datamesh.io/v1), one per
 * catalog entry "gov/doc/NAME" signed by the governance key (the catalog
 * checks the signature; this module never sees an unsigned document):
 *   kind: Group              a named set of ed25519 keys ("group:NAME")
 *   kind: DomainCertificate  binds a domain name to a node key
 *   kind: Policy             access rules (deny|allow over products,
 *                            fields, consumers, actions), column masks and
 *                            row filters, contract rules
 *
 * A decision combines deny-overrides, as Cedar and the seed's
 * GovernanceEngine do; governance only ever narrows what the owner allows:
 *   1. any governance access rule that applies (products, tags, fields,
 *      actions and consumers match) and denies -> DENY, for everyone, the
 *      domain admins too;
 *   2. the governance allow rules about the product and action (products,
 *      tags, fields and actions match; consumers not looked at) are a gate:
 *      when there is one or more, the caller must be among the consumers of
 *      at least one of them, else DENY (admins too; "*" lets in anyone,
 *      also a caller the node could not verify);
 *   3. the owner: the node's domain admins may do everything; writes need
 *      an admin; describe is open to any identity; reads follow the
 *      product's policies.access: public (any identity, also one the node
 *      could not verify), restricted (its readers and the admins), private
 *      (admins only); readers are keys or group:NAME;
 *   4. nothing allowed -> DENY.
 * An allowed read carries the column masks and the row filter that apply to
 * the caller (domain admins see raw rows: they hold the store anyway).
 *
 * Thread-safety: a set is built by one thread (dm_policy_set_new,
 * dm_policy_set_add, dm_policy_set_seal), then immutable and shared by any
 * number of threads through dm_policy_set_ref/unref. dm_policy_decide only
 * reads its arguments. */
#ifndef DM_POLICY_H
#define DM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/diags.h"
#include "base/err.h"
#include "contract/contract.h"

#define DM_POLICY_KEY_BYTES 32          /* an ed25519 public key */
#define DM_POLICY_MAX_DOC_BYTES (256 << 10) /* one governance YAML document */
#define DM_POLICY_MAX_RULES 4096        /* rules of all kinds in one document */
#define DM_POLICY_MAX_GROUP_KEYS 10000  /* keys of one Group */
#define DM_POLICY_MAX_DOCS 1024         /* documents in one set */
#define DM_POLICY_FILTER_MAX 4096       /* bytes of one row filter predicate */
#define DM_POLICY_RULE_MAX 256          /* bytes of a decision's rule text, NUL included */
#define DM_POLICY_REASON_MAX 512        /* bytes of a decision's reason, NUL included */
#define DM_POLICY_GROUP_PREFIX "group:"

typedef enum {
    DM_POLICY_READ,     /* records: SQL, quarantine */
    DM_POLICY_DESCRIBE, /* metadata: contract, counts */
    DM_POLICY_WRITE,    /* register, ingest, deregister, grant, revoke, admins */
    DM_POLICY__ACTIONS
} dm_policy_action;

typedef enum {
    DM_POLICY_MASK_NONE,
    DM_POLICY_MASK_REDACT, /* '***' */
    DM_POLICY_MASK_HASH,   /* lowercase hex SHA-256 of the value's text, first 16 bytes */
    DM_POLICY_MASK_LAST4,  /* '****' then the last 4 characters */
    DM_POLICY_MASK_NULL,   /* NULL */
    DM_POLICY_MASK_YEAR,   /* the first 4 characters of a date or timestamp ("2026") */
    DM_POLICY_MASK__COUNT
} dm_policy_mask;

/* ---- documents ---- */

typedef struct dm_policy_doc dm_policy_doc_t;

/* Parses one governance document (name is used in diagnostics, e.g. the
 * file name or the catalog key). Refuses with every problem in diags
 * (DM_ERR_INVALID): a wrong apiVersion or kind, a missing metadata.name
 * (the name rule of base/text.h), keys that are not 64 hex digits, an
 * unknown action, mask or effect, a glob or regex over its bounds, a row
 * filter that is not one SQL expression (unbalanced parentheses, a ';'),
 * more than DM_POLICY_MAX_RULES rules. DM_ERR_TOOBIG over
 * DM_POLICY_MAX_DOC_BYTES. Never reads beyond len. */
DM_NODISCARD dm_err dm_policy_doc_parse(const char *name, const char *buf, size_t len,
                                        dm_policy_doc_t **out, dm_diags_t *diags);
void dm_policy_doc_destroy(dm_policy_doc_t **self_p);
/* "Group", "DomainCertificate" or "Policy"; and metadata.name. Borrowed. */
const char *dm_policy_doc_kind(const dm_policy_doc_t *d);
const char *dm_policy_doc_name(const dm_policy_doc_t *d);

/* ---- sets ---- */

typedef struct dm_policy_set dm_policy_set_t;

/* An empty set with version (the governance catalog version it reflects;
 * it names the set in decisions and audits). DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_policy_set_new(uint64_t version, dm_policy_set_t **out);
/* Adds doc (taken: *doc is NULL afterwards, also on failure). A document
 * of the same name replaces the earlier one. DM_ERR_CONFLICT with a line
 * in why when it would give one column two masks for one consumer (a tie:
 * refused at publish) or certify a domain to two nodes; DM_ERR_TOOBIG past
 * DM_POLICY_MAX_DOCS. The set is unchanged on failure. */
DM_NODISCARD dm_err dm_policy_set_add(dm_policy_set_t *s, dm_policy_doc_t **doc, dm_buf_t *why);
/* Whether dm_policy_set_add(s, doc) would succeed: the same refusals with
 * the same line in why, s and doc unchanged (s may be sealed: the node's
 * governance check tries a published document against its current set). */
DM_NODISCARD dm_err dm_policy_set_check(const dm_policy_set_t *s, const dm_policy_doc_t *doc,
                                        dm_buf_t *why);
/* Builds the lookup indexes; afterwards the set is read-only. Call once
 * after the last add, before the first decision. DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_policy_set_seal(dm_policy_set_t *s);
/* Reference counting (atomic): a new reference; drop one (frees at zero,
 * sets *s_p NULL; NULL-safe). */
dm_policy_set_t *dm_policy_set_ref(dm_policy_set_t *s);
void dm_policy_set_unref(dm_policy_set_t **s_p);
uint64_t dm_policy_set_version(const dm_policy_set_t *s);
size_t dm_policy_set_ndocs(const dm_policy_set_t *s);
/* The node key a DomainCertificate binds domain to: true and node set,
 * or false when the set certifies no node for it. */
bool dm_policy_set_certificate(const dm_policy_set_t *s, const char *domain,
                               uint8_t node[DM_POLICY_KEY_BYTES]);
/* Calls fn for every certificate (domain, node key) in name order. */
void dm_policy_set_each_certificate(const dm_policy_set_t *s,
                                    void (*fn)(void *ctx, const char *domain,
                                               const uint8_t node[DM_POLICY_KEY_BYTES]),
                                    void *ctx);
/* Whether key is in group NAME (without "group:"). */
bool dm_policy_set_in_group(const dm_policy_set_t *s, const char *group,
                            const uint8_t key[DM_POLICY_KEY_BYTES]);
/* Appends to out the names of the groups key belongs to, comma-separated. */
void dm_policy_set_groups_of(const dm_policy_set_t *s, const uint8_t key[DM_POLICY_KEY_BYTES],
                             dm_buf_t *out);

/* ---- decisions ---- */

/* The owner's side: the node's domain and its admins (the node's own key
 * first). Borrowed for the call. */
typedef struct {
    const char *domain;
    const uint8_t (*admins)[DM_POLICY_KEY_BYTES];
    size_t nadmins;
} dm_policy_owner_t;

/* The product asked about. readers are the contract's policies.readers
 * with the owner's grants added and its revocations removed ("HEX" or
 * "group:NAME"). fields are the contract's fields (names and their
 * classification, NULL when unclassified). Borrowed for the call. For a
 * request that names no product (admins, audit), product is NULL. */
typedef struct {
    const char *domain, *name;
    const char *const *tags;
    size_t ntags;
    dm_access access;
    const char *const *readers;
    size_t nreaders;
    const char *const *fields;
    const char *const *classifications;
    size_t nfields;
} dm_policy_product_t;

typedef struct {
    /* The caller's ed25519 key, or NULL for a caller whose identity the
     * node could not verify (it may read public products only). */
    const uint8_t *key;
    dm_policy_action action;
    const dm_policy_product_t *product;
} dm_policy_request_t;

typedef struct {
    bool allow;
    /* The rule that decided, for audits and refusals: "governance
     * pii-guard/deny-contractors", "owner: restricted, not a reader",
     * "owner: admin", "owner: public". */
    char rule[DM_POLICY_RULE_MAX];
    /* A refusal as the user sees it, naming the product, its access level
     * and what refused: "access denied to commerce.orders (restricted):
     * KEY is not a reader", "access denied to commerce.orders (public):
     * governance policy lockdown rule deny-all (version 4) denies read to
     * KEY" (KEY the caller's hex). Empty when allowed. */
    char reason[DM_POLICY_REASON_MAX];
    uint64_t policy_version; /* the set's, 0 without a set */
    /* Reads only: one mask per product field (nfields entries, malloc'd,
     * NULL when no field is masked) and the row filter (a SQL predicate
     * over the product's columns, malloc'd, NULL when none): permissive
     * filters that apply are ORed, restrictive ones ANDed to that, as
     * PostgreSQL's row security combines them. */
    dm_policy_mask *masks;
    size_t nmasks;
    char *row_filter;
} dm_policy_decision_t;

/* Decides req. gov may be NULL (no governance key: owner rules only).
 * Fills *out (clear it with dm_policy_decision_clear). DM_ERR_NOMEM only;
 * a refusal is DM_OK with out->allow false. */
DM_NODISCARD dm_err dm_policy_decide(const dm_policy_set_t *gov, const dm_policy_owner_t *owner,
                                     const dm_policy_request_t *req, dm_policy_decision_t *out);
void dm_policy_decision_clear(dm_policy_decision_t *d);
/* Appends to out every rule of gov and of the owner that applied to req,
 * one per line, with its effect, then the decision (dmctl policy
 * explain). */
void dm_policy_explain(const dm_policy_set_t *gov, const dm_policy_owner_t *owner,
                       const dm_policy_request_t *req, dm_buf_t *out);

static inline const char *dm_policy_action_name(dm_policy_action a)
{
    return a == DM_POLICY_READ ? "read" : a == DM_POLICY_DESCRIBE ? "describe" : "write";
}
/* "redact", "hash", ...; "none" for DM_POLICY_MASK_NONE. */
const char *dm_policy_mask_name(dm_policy_mask m);

/* ---- contract rules ---- */

/* Checks c against every contract rule of gov (e.g. an owner contact and
 * an sla.freshness are declared; no pii field in a public product; names
 * snake_case). DM_OK when all hold; DM_ERR_DENIED with one diagnostic per
 * broken rule, each naming the rule, its policy and the set's version
 * ("contract rule require-freshness of policy baseline (version 7): ...").
 * gov NULL: DM_OK. */
DM_NODISCARD dm_err dm_policy_check_contract(const dm_policy_set_t *gov, const dm_contract_t *c,
                                             dm_diags_t *diags);

/* ---- table-driven tests (dmctl policy test) ---- */

/* Runs the cases of a CASES.yaml document (docs/governance.md: each case
 * names an identity, its groups, a product with access, readers, tags and
 * field classifications, an action, the expected decision and optionally
 * the expected masks and row filter) against gov, as `opa test` does.
 * Appends a line per case to report ("PASS name" / "FAIL name: expected
 * deny, got allow by owner: public"), sets *failed to the number of
 * mismatches. DM_ERR_INVALID (diags) for a malformed cases file. */
DM_NODISCARD dm_err dm_policy_run_cases(const dm_policy_set_t *gov, const char *name,
                                        const char *buf, size_t len, dm_buf_t *report,
                                        size_t *failed, dm_diags_t *diags);

#endif
