/* ytree.h: YAML text -> a small tree of nodes with positions, bounded.
 *
 * The contract parser reads YAML through this tree instead of libyaml's
 * document API so that it keeps the scalar style (plain or quoted: "99.9"
 * is a string, 99.9 a number), 1-based line:col of every node, and so that
 * hostile input fails fast: size, tabs in indentation, invalid UTF-8,
 * nesting depth, and alias expansion (billion laughs) are all checked while
 * the tree is built. An alias is the anchored node itself (shared, never
 * copied); its expanded size counts against DM_YAML_MAX_NODES. */
#ifndef DM_YTREE_H
#define DM_YTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/diags.h"

#define DM_YAML_MAX_NODES 100000              /* per file, aliases expanded */
#define DM_YAML_MAX_EXPANDED (4 * 1024 * 1024) /* scalar bytes per file, aliases expanded */
#define DM_YAML_MAX_KEY 128                   /* bytes in a mapping key */

typedef enum { DM_YNODE_SCALAR, DM_YNODE_MAP, DM_YNODE_SEQ } dm_ynode_kind;

typedef struct dm_ynode dm_ytree_node_t;
struct dm_ynode {
    dm_ynode_kind kind;
    bool plain;          /* scalar written without quotes or block style */
    bool done;           /* container fully read (aliases may only point at done nodes) */
    unsigned line, col;  /* 1-based */
    char *text;          /* scalar, NUL-terminated, never contains NUL */
    size_t len;
    dm_ytree_node_t **items;  /* seq: n items; map: n/2 pairs, items[2i] key, items[2i+1] value */
    size_t n, cap;
    size_t weight;       /* nodes in this subtree, aliases expanded */
    size_t bytes;        /* scalar bytes in this subtree, aliases expanded */
};

/* One YAML document; owns all its nodes. */
typedef struct dm_ydoc dm_ytree_doc_t;
struct dm_ydoc {
    dm_ytree_node_t *root;
    dm_ytree_node_t **all; /* every node, for freeing */
    size_t nall, capall;
};

/* Parses buf (len bytes, need not be NUL-terminated) into documents.
 * name is the file name for diagnostics. On DM_OK *docs holds *ndocs (>= 1)
 * documents: destroy each with dm_ytree_doc_destroy, then free(*docs). On
 * failure (DM_ERR_INVALID, DM_ERR_TOOBIG) every problem found is in diags
 * and *docs is NULL. Duplicate keys are reported in diags but do not fail
 * the load (the first occurrence is the one found): callers must treat any
 * diagnostic added by the load as an error. */
DM_NODISCARD dm_err dm_ytree_load(const char *name, const char *buf, size_t len, dm_ytree_doc_t ***docs,
                                  size_t *ndocs, dm_diags_t *diags);

/* Frees a document and all its nodes. NULL-safe; sets *self_p to NULL. */
void dm_ytree_doc_destroy(dm_ytree_doc_t **self_p);

/* Number of key/value pairs of a mapping. */
static inline size_t dm_ytree_npairs(const dm_ytree_node_t *m) { return m->n / 2; }

/* The value under key in mapping m, or NULL (also when m is not a mapping). */
const dm_ytree_node_t *dm_ytree_get(const dm_ytree_node_t *m, const char *key);

/* Plain "", "~", "null", "Null", "NULL". */
bool dm_ytree_is_null(const dm_ytree_node_t *n);
/* Plain "true" or "false"; writes the value to *out when non-NULL. */
bool dm_ytree_is_bool(const dm_ytree_node_t *n, bool *out);
/* Plain scalar that is a JSON number ("-1", "2.5e3"; not ".5", "0x1f"). */
bool dm_ytree_is_number(const dm_ytree_node_t *n);

#endif
