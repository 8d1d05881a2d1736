/* contract_priv.h: shared helpers of the contract parser's files. Calls go
 * one way, from the top down (and every file reads ytree.c's tree):
 *   contract_parse.c       entry points, apiVersion, kind, metadata, spec
 *   -> contract_spec.c, contract_quality.c   the sections after the schema
 *   -> contract_schema.c   spec.schema -> avro.c (.avsc files), pattern.c
 *   -> contract_canonical.c  the canonical form and hash
 *   -> contract.c          enum names, version order, release
 *   -> contract_read.c       these helpers: typed node reads, diagnostics,
 *                          suggestions -> duration.c, types.c
 * contract_compat.c (upgrade rules) and pattern_match.c do not include it:
 * they work on a parsed contract or a checked pattern.
 *
 * Each helper reads one YAML node, reports a diagnostic at the node when
 * it is not what the contract needs (naming what would be valid), and
 * returns false; the caller carries on so that every problem is found. */
#ifndef DM_CONTRACT_PRIV_H
#define DM_CONTRACT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract/contract.h"
#include "base/sidx.h"
#include "base/text.h"
#include "contract/ytree.h"

#define DM_CONTRACT_FIELD_NAME_MAX 128 /* bytes in a field name */
/* Edit-distance cells one file may spend on "did you mean" suggestions:
 * a few milliseconds. Past it (or once the diagnostics are full) messages
 * carry no suggestion, so misspelt references cannot cost
 * references x candidates. */
#define DM_CONTRACT_SUGGEST_BUDGET (4u * 1024 * 1024)

typedef struct {
    const char *file;    /* name used in diagnostics */
    const char *basedir; /* folder for relative avro locations, NULL forbids them */
    dm_diags_t *diags;
    size_t errors;       /* diagnostics added through this context */
    unsigned flags;      /* DM_CONTRACT_* parse options */
    uint64_t pattern_cost; /* atoms of the current document's patterns so far */
    uint64_t suggest_cells; /* edit-distance cells spent on suggestions (whole file) */
    /* Indexes of the current document, freed by dm_contract__contract_done: */
    dm_sidx_t fields;  /* field names -> index in c->fields, sorted */
    dm_sidx_t *enums;  /* per field (c->nfields), enum values -> index; built on demand */
    size_t nenums;
} dm_contract__cx_t;

/* Frees the current document's indexes (cx->fields, cx->enums). */
void dm_contract__contract_done(dm_contract__cx_t *cx);

/* True once the diagnostics list is full: callers may skip building a
 * message that would be dropped (dm_contract__err still counts the error). */
bool dm_contract__full(const dm_contract__cx_t *cx);

/* Reports a problem at node at (position 0:0 if at is NULL). */
void dm_contract__err(dm_contract__cx_t *cx, const dm_ytree_node_t *at, const char *fmt, ...) DM_PRINTF(3, 4);

/* A known synonym of word among cands (integer -> int), else the candidate
 * dm_text_suggest picks (base/text.h), or NULL. */
const char *dm_contract__suggest(const char *word, const char *const *cands, size_t n);

/* True if a suggestion among n candidates for word still fits the file's
 * DM_CONTRACT_SUGGEST_BUDGET (and the diagnostics are not full); charges it. */
bool dm_contract__suggest_afford(dm_contract__cx_t *cx, const char *word, size_t n);

/* Appends " (did you mean 'X'?)" to out when a candidate is close and
 * dm_contract__suggest_afford allows the search. */
void dm_contract__suggest_put(dm_contract__cx_t *cx, dm_buf_t *out, const char *word, const char *const *cands,
                       size_t n);

/* Checks that n is a mapping whose keys are all in allowed (NULL-terminated)
 * or start with "x-". Unknown keys are reported with a suggestion. Returns
 * false (reported) if n is not a mapping. */
bool dm_contract__map(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, const char *const *allowed);

/* Returns the value of a required key, or NULL after reporting that the
 * mapping (what) lacks it. */
const dm_ytree_node_t *dm_contract__need(dm_contract__cx_t *cx, const dm_ytree_node_t *map, const char *key,
                             const char *what);

/* Checks that n is a sequence (reported if not). */
bool dm_contract__seq(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what);

/* Short description of what a node is, for "got ..." messages. */
const char *dm_contract__kind(const dm_ytree_node_t *n);
/* Three arguments for "%s%s%s" in a diagnostic: a scalar's text in
 * quotes ('20 %'), any other node's kind (a mapping). */
#define DM_CONTRACT__SHOWN(v)                                                                      \
    (v)->kind == DM_YNODE_SCALAR ? "'" : "",                                                       \
        (v)->kind == DM_YNODE_SCALAR ? (v)->text : dm_contract__kind(v),                          \
        (v)->kind == DM_YNODE_SCALAR ? "'" : ""

/* A non-null scalar as text (plain or quoted). *out is a copy the caller
 * frees; unchanged on failure. */
bool dm_contract__str(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, char **out);

/* A plain true/false. */
bool dm_contract__bool(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, bool *out);

/* A plain JSON number. is_int when written as an integer that fits int64;
 * d is always set. */
bool dm_contract__num(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, dm_num_t *out);

/* A plain number whose value is an integer within int64. */
bool dm_contract__int(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, int64_t *out);

/* A duration (see dm_contract_duration_parse) greater than zero. */
bool dm_contract__duration(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, int64_t *ms);

/* One of names[0..count); returns its index or -1 (reported, with the
 * valid names and a suggestion). */
int dm_contract__choice(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, const char *const *names,
                 size_t count);

/* Compares two numbers exactly when both are ints: <0, 0, >0. */
int dm_contract__num_cmp(dm_num_t a, dm_num_t b);


/* ^[A-Za-z_][A-Za-z0-9_]{0,127}$ (field names). */
bool dm_contract__is_field_name(const char *s);

/* strdup that aborts on out of memory. */
char *dm_contract__strdup(const char *s);

/* Sections, each in its own file. They read the spec's sub-mapping node
 * (non-NULL) and fill c; problems go to cx. */
void dm_contract__schema(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *schema);
void dm_contract__storage(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *n);
void dm_contract__sla(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *n);
void dm_contract__quality(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *n);
void dm_contract__policies(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *n);
void dm_contract__interop(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *n);

/* Resolves a reference to a field (a column, a primaryKey entry): returns
 * its index, or -1 after reporting the valid names and a suggestion
 * (silently when the schema has no fields: its own error says why). */
int dm_contract__column(dm_contract__cx_t *cx, const dm_contract_t *c, const dm_ytree_node_t *n, const char *what);

/* Checks that pattern is within the static limits of pattern.h and, unless
 * cx->flags has DM_CONTRACT_NO_COMPILE, that it compiles as a POSIX extended
 * regex (reported if not). */
bool dm_contract__regex_ok(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, const char *pattern);

/* Index of the field called name (its first declaration) in the current
 * document, or -1; O(log fields) through cx->fields. */
int dm_contract__field_index(const dm_contract__cx_t *cx, const char *name);

/* Index of value t among the values of enum field number fi of c, or -1;
 * O(log values) through cx->enums (built on first use). */
long dm_contract__enum_index(dm_contract__cx_t *cx, const dm_contract_t *c, size_t fi, const char *t);

/* Frees the strings of one field (not the struct). */
void dm_contract__field_free(dm_field_t *f);

#endif
