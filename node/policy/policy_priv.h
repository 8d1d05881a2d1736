/* policy_priv.h: the parsed form of governance documents and sets, shared
 * by the policy files:
 *   policy_read.c    the arena, typed YAML reads, hex keys, globs
 *   policy_parts.c   keys, names, consumers, products, fields of a document
 *   policy_doc.c     YAML -> dm_policy_doc_t (Group, DomainCertificate)
 *   policy_rules_doc.c  the rules of a Policy
 *   policy_index.c   per product, the rules that may apply (the cache)
 *   policy_set.c     sets: add (ties, certificates), seal (indexes), groups
 *   policy_decide.c  decisions, masks, row filters, explain
 *   policy_rules.c   contract rules
 *   policy_cases.c   table-driven cases (dmctl policy test)
 * A document's strings and arrays live in its arena and die with it. */
#ifndef DM_POLICY_PRIV_H
#define DM_POLICY_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/text.h"
#include "contract/ytree.h"
#include "policy/policy.h"

#define DM_POLICY_GLOB_MAX 127      /* bytes of a DOMAIN/NAME glob: two names and '/' */
#define DM_POLICY_LIST_MAX 1000     /* entries of one list in a rule (products, tags, ...) */
#define DM_POLICY_SET_MASKS_MAX 4096 /* mask rules of one set: the tie check is pairwise */
#define DM_POLICY_CACHE_SLOTS 8192  /* products whose applicable rules a set remembers, x2 */
#define DM_POLICY_HEX (2 * DM_POLICY_KEY_BYTES)
#define DM_POLICY_HASH_KEY_BYTES 16 /* crypto_shorthash_KEYBYTES: the cache's SipHash key */

/* ---- arena ---- */

typedef struct dm_policy__block dm_policy__block_t;
typedef struct {
    dm_policy__block_t *head;
} dm_policy__arena_t;

/* n zeroed bytes from a; aborts on out of memory like dm_buf. */
void *dm_policy__alloc(dm_policy__arena_t *a, size_t n);
char *dm_policy__strdup(dm_policy__arena_t *a, const char *s);
void dm_policy__arena_free(dm_policy__arena_t *a);

/* ---- rules ---- */

/* Who a rule is about: anyone, keys (sorted), groups (by name; resolved
 * to the set's groups when it is sealed). */
typedef struct dm_policy__group dm_policy__group_t;
typedef struct {
    bool any;
    uint8_t (*keys)[DM_POLICY_KEY_BYTES];
    size_t nkeys;
    const char **groups;
    const dm_policy__group_t **resolved; /* ngroups, NULL for a group no document defines */
    size_t ngroups;
} dm_policy__who_t;

typedef enum { DM_POLICY__FIELDS_ANY, DM_POLICY__FIELDS_CLASS, DM_POLICY__FIELDS_NAMES } dm_policy__fsel;

typedef struct {
    dm_policy__fsel kind;
    const char *classification;
    const char **names;
    size_t nnames;
} dm_policy__fields_t;

typedef struct {
    const char **globs; /* "DOMAIN/NAME" with * and ? */
    size_t n;
} dm_policy__products_t;

typedef struct {
    const char *name;
    const dm_policy_doc_t *doc;
    bool deny;
    unsigned actions; /* 1 << dm_policy_action */
    dm_policy__products_t products;
    const char **tags;
    size_t ntags;
    dm_policy__fields_t fields;
    dm_policy__who_t consumers;
} dm_policy__access_t;

typedef struct {
    const char *name;
    const dm_policy_doc_t *doc;
    dm_policy__products_t products;
    dm_policy__fields_t fields;
    dm_policy_mask mask;
    dm_policy__who_t except;
} dm_policy__maskrule_t;

typedef struct {
    const char *name;
    const dm_policy_doc_t *doc;
    dm_policy__products_t products;
    dm_policy__who_t consumers;
    const char *predicate;
    bool restrictive;
} dm_policy__filter_t;

typedef enum {
    DM_POLICY__REQUIRE,   /* what: one of the require names */
    DM_POLICY__FORBID,    /* public-pii */
    DM_POLICY__NAMES      /* snake_case */
} dm_policy__crule_kind;

typedef struct {
    const char *name;
    const dm_policy_doc_t *doc;
    dm_policy__crule_kind kind;
    const char *what;
} dm_policy__crule_t;

typedef enum { DM_POLICY__GROUP, DM_POLICY__CERT, DM_POLICY__POLICY } dm_policy__kind;

struct dm_policy__group {
    const char *name;
    uint8_t (*keys)[DM_POLICY_KEY_BYTES]; /* sorted, distinct */
    size_t nkeys;
};

struct dm_policy_doc {
    dm_policy__arena_t arena;
    dm_policy__kind kind;
    const char *name;
    dm_policy__group_t group;                 /* Group */
    const char *cert_domain;                  /* DomainCertificate */
    uint8_t cert_node[DM_POLICY_KEY_BYTES];
    dm_policy__access_t *access;              /* Policy */
    size_t naccess;
    dm_policy__maskrule_t *masks;
    size_t nmasks;
    dm_policy__filter_t *filters;
    size_t nfilters;
    dm_policy__crule_t *crules;
    size_t ncrules;
};

/* ---- sets ---- */

/* The rules of a set that may apply to one product (by its DOMAIN/NAME):
 * indexes into the set's rule arrays. Immutable once published. */
typedef struct {
    char *key;
    uint64_t hash;
    uint32_t *access, *masks, *filters;
    size_t naccess, nmasks, nfilters;
} dm_policy__applicable_t;

struct dm_policy_set {
    atomic_int refs;
    uint64_t version;
    bool sealed;
    dm_policy_doc_t **docs; /* sorted by name after seal */
    size_t ndocs, capdocs;
    /* built by seal */
    const dm_policy__group_t **groups; /* sorted by name */
    size_t ngroups;
    const dm_policy_doc_t **certs;     /* sorted by domain */
    size_t ncerts;
    const dm_policy__access_t **access;
    size_t naccess;
    const dm_policy__maskrule_t **masks;
    size_t nmasks;
    const dm_policy__filter_t **filters;
    size_t nfilters;
    /* product -> applicable rules, filled on first use by any thread */
    pthread_mutex_t lock;
    _Atomic(dm_policy__applicable_t *) *cache; /* DM_POLICY_CACHE_SLOTS */
    size_t ncached;                             /* under lock */
    uint8_t hash_key[DM_POLICY_HASH_KEY_BYTES]; /* random: no name list slows the cache */
};

/* ---- shared helpers ---- */

/* Whether two field names are the same column: equal ignoring ASCII case,
 * as SQL compares column names ("Email" is email). */
bool dm_policy__field_eq(const char *a, const char *b);
/* Whether the len bytes of text match glob (* any run, ? one byte). */
bool dm_policy__glob(const char *glob, const char *text, size_t len);
/* Whether any of p's globs matches "domain/name". */
bool dm_policy__products_match(const dm_policy__products_t *p, const char *domain, const char *name);
/* Whether key (NULL: unverified) is one of who. extra: group names the
 * caller belongs to besides the set's (the cases runner), nextra of them. */
bool dm_policy__who_match(const dm_policy_set_t *s, const dm_policy__who_t *who, const uint8_t *key,
                          const char *const *extra, size_t nextra);
/* The set's group called name, or NULL. */
const dm_policy__group_t *dm_policy__group_find(const dm_policy_set_t *s, const char *name);
bool dm_policy__group_has(const dm_policy__group_t *g, const uint8_t key[DM_POLICY_KEY_BYTES]);
/* Parses 64 hex digits (either case) into key. */
bool dm_policy__hex_key(const char *s, uint8_t key[DM_POLICY_KEY_BYTES]);
/* key as lowercase hex, NUL-terminated. */
void dm_policy__key_hex(const uint8_t key[DM_POLICY_KEY_BYTES], char out[DM_POLICY_HEX + 1]);
/* The rules of s that may apply to domain/name (cached); NULL only when
 * memory runs out. tmp: set when the caller must free the result with
 * dm_policy__applicable_free (the cache was full). */
const dm_policy__applicable_t *dm_policy__applicable(const dm_policy_set_t *s, const char *domain,
                                                     const char *name, bool *tmp);
void dm_policy__applicable_free(dm_policy__applicable_t *a);

/* A decision with the cases runner's extra groups and an optional trace
 * (dm_policy_explain): every rule that applied, one line each. */
dm_err dm_policy__decide(const dm_policy_set_t *gov, const dm_policy_owner_t *owner,
                         const dm_policy_request_t *req, const char *const *extra, size_t nextra,
                         dm_buf_t *trace, dm_policy_decision_t *out);

/* ---- document parsing (policy_doc.c, policy_rules_doc.c) ---- */

typedef struct {
    dm_diags_t *d;
    const char *file;
    dm_policy_doc_t *doc;
    size_t rules; /* rules of all kinds read so far */
} dm_policy__cx_t;

/* Each reads node n (what names it in messages), reports problems and
 * carries on; the results live in cx->doc's arena. */
bool dm_policy__key_node(dm_policy__cx_t *cx, const dm_ytree_node_t *n, const char *what,
                         uint8_t key[DM_POLICY_KEY_BYTES]);
bool dm_policy__name_node(dm_policy__cx_t *cx, const dm_ytree_node_t *n, const char *what,
                          const char **out);
/* n NULL: the default (anyone when dflt_any, else no one). */
void dm_policy__who(dm_policy__cx_t *cx, const dm_ytree_node_t *n, const char *what, bool dflt_any,
                    dm_policy__who_t *who);
/* n NULL: every product, the glob DOMAIN/NAME of two stars. */
void dm_policy__products(dm_policy__cx_t *cx, const dm_ytree_node_t *n, const char *what,
                         dm_policy__products_t *p);
void dm_policy__fields(dm_policy__cx_t *cx, const dm_ytree_node_t *n, const char *what,
                       dm_policy__fields_t *f);
/* The spec of a kind: Policy document. */
void dm_policy__policy_spec(dm_policy__cx_t *cx, const dm_ytree_node_t *spec);
/* Sorts n keys and drops repeats; returns the count left. */
size_t dm_policy__keys_sort(uint8_t (*keys)[DM_POLICY_KEY_BYTES], size_t n);

/* Reads a YAML mapping's keys against allowed (NULL-terminated), reporting
 * the others; false (reported) when n is not a mapping. */
bool dm_policy__map(dm_diags_t *d, const char *file, const dm_ytree_node_t *n, const char *what,
                    const char *const *allowed);
/* A non-empty scalar's text, or NULL (reported). */
const char *dm_policy__str(dm_diags_t *d, const char *file, const dm_ytree_node_t *n, const char *what);
/* A sequence, or NULL (reported); at most max items. */
const dm_ytree_node_t *dm_policy__seq(dm_diags_t *d, const char *file, const dm_ytree_node_t *n,
                                      const char *what, size_t max);
/* The index of n's text in names[0..count), or -1 (reported with the
 * valid names). */
int dm_policy__choice(dm_diags_t *d, const char *file, const dm_ytree_node_t *n, const char *what,
                      const char *const *names, size_t count);

#endif
