/* policy_doc.c: one governance YAML document -> dm_policy_doc_t, with
 * every problem reported at its line:col and what would be valid
 * (docs/governance.md is the format). The rules of a Policy are read by
 * policy_rules_doc.c. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"

#define S_API_VERSION "datamesh.io/v1"

static const char *const s_kinds[] = {"Group", "DomainCertificate", "Policy"};

static void s_group(dm_policy__cx_t *cx, const dm_ytree_node_t *spec)
{
    static const char *const keys[] = {"members", NULL};
    if (!dm_policy__map(cx->d, cx->file, spec, "spec (kind Group)", keys))
        return;
    const dm_ytree_node_t *m = dm_ytree_get(spec, "members");
    if (!m) {
        dm_diags_add(cx->d, cx->file, spec->line, spec->col,
                     "spec (kind Group) lacks members, the list of its keys (64 hex digits each)");
        return;
    }
    if (!dm_policy__seq(cx->d, cx->file, m, "spec.members", DM_POLICY_MAX_GROUP_KEYS))
        return;
    dm_policy__group_t *g = &cx->doc->group;
    g->name = cx->doc->name;
    g->keys = dm_policy__alloc(&cx->doc->arena, (m->n ? m->n : 1) * sizeof *g->keys);
    for (size_t i = 0; i < m->n; i++)
        if (dm_policy__key_node(cx, m->items[i], "spec.members entry", g->keys[g->nkeys]))
            g->nkeys++;
    g->nkeys = dm_policy__keys_sort(g->keys, g->nkeys);
}

static void s_cert(dm_policy__cx_t *cx, const dm_ytree_node_t *spec)
{
    static const char *const keys[] = {"domain", "node", NULL};
    if (!dm_policy__map(cx->d, cx->file, spec, "spec (kind DomainCertificate)", keys))
        return;
    const dm_ytree_node_t *dn = dm_ytree_get(spec, "domain"), *nn = dm_ytree_get(spec, "node");
    if (!dn || !nn) {
        dm_diags_add(cx->d, cx->file, spec->line, spec->col,
                     "spec (kind DomainCertificate) needs domain (a name) and node (the node's key, "
                     "64 hex digits)");
        return;
    }
    (void)dm_policy__name_node(cx, dn, "spec.domain", &cx->doc->cert_domain);
    (void)dm_policy__key_node(cx, nn, "spec.node", cx->doc->cert_node);
}

/* apiVersion, kind, metadata; returns the kind index or -1. */
static int s_header(dm_policy__cx_t *cx, const dm_ytree_node_t *root)
{
    static const char *const keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const mkeys[] = {"name", "description", NULL};
    if (!dm_policy__map(cx->d, cx->file, root, "a governance document", keys))
        return -1;
    const dm_ytree_node_t *v = dm_ytree_get(root, "apiVersion");
    const char *s;
    if (!v)
        dm_diags_add(cx->d, cx->file, root->line, root->col, "apiVersion is missing: it must be "
                                                              S_API_VERSION);
    else if ((s = dm_policy__str(cx->d, cx->file, v, "apiVersion")) && strcmp(s, S_API_VERSION) != 0)
        dm_diags_add(cx->d, cx->file, v->line, v->col, "apiVersion '%.80s' is not " S_API_VERSION, s);
    int kind = -1;
    if (!(v = dm_ytree_get(root, "kind")))
        dm_diags_add(cx->d, cx->file, root->line, root->col,
                     "kind is missing: it must be Group, DomainCertificate or Policy");
    else
        kind = dm_policy__choice(cx->d, cx->file, v, "kind", s_kinds, 3);
    const dm_ytree_node_t *m = dm_ytree_get(root, "metadata"), *nm;
    if (!m) {
        dm_diags_add(cx->d, cx->file, root->line, root->col, "metadata is missing: it needs a name");
    } else if (dm_policy__map(cx->d, cx->file, m, "metadata", mkeys)) {
        if (!(nm = dm_ytree_get(m, "name")))
            dm_diags_add(cx->d, cx->file, m->line, m->col, "metadata.name is missing: it must match "
                                                            DM_TEXT_NAME_RULE);
        else
            (void)dm_policy__name_node(cx, nm, "metadata.name", &cx->doc->name);
    }
    return kind;
}

/* The one non-empty document of a load, or NULL (reported). */
static const dm_ytree_node_t *s_only_doc(dm_policy__cx_t *cx, dm_ytree_doc_t **docs, size_t n)
{
    const dm_ytree_node_t *root = NULL;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const dm_ytree_node_t *r = docs[i]->root;
        if (!r || (r->kind == DM_YNODE_SCALAR && dm_ytree_is_null(r)))
            continue;
        if (count++ == 1)
            dm_diags_add(cx->d, cx->file, r->line, r->col,
                         "a second YAML document: a governance document is one YAML document "
                         "(publish each of a file's documents as its own entry)");
        root = r;
    }
    if (!count)
        dm_diags_add(cx->d, cx->file, 0, 0, "the document is empty: it needs apiVersion, kind, "
                                            "metadata and spec");
    return count == 1 ? root : NULL;
}

dm_err dm_policy_doc_parse(const char *name, const char *buf, size_t len, dm_policy_doc_t **out,
                           dm_diags_t *diags)
{
    *out = NULL;
    if (len > DM_POLICY_MAX_DOC_BYTES) {
        dm_diags_add(diags, name, 0, 0, "the document has %zu bytes; at most %d are allowed", len,
                     DM_POLICY_MAX_DOC_BYTES);
        return DM_ERR_TOOBIG;
    }
    size_t before = diags->count;
    dm_ytree_doc_t **docs = NULL;
    size_t ndocs = 0;
    dm_err rc = dm_ytree_load(name, buf, len, &docs, &ndocs, diags);
    if (rc != DM_OK)
        return rc == DM_ERR_TOOBIG ? rc : DM_ERR_INVALID;
    dm_policy_doc_t *doc = calloc(1, sizeof *doc);
    if (!doc)
        abort();
    dm_policy__cx_t cx = {diags, name, doc, 0};
    const dm_ytree_node_t *root = diags->count == before ? s_only_doc(&cx, docs, ndocs) : NULL;
    int kind = root ? s_header(&cx, root) : -1;
    const dm_ytree_node_t *spec = root && root->kind == DM_YNODE_MAP ? dm_ytree_get(root, "spec") : NULL;
    if (root && root->kind == DM_YNODE_MAP && !spec)
        dm_diags_add(diags, name, root->line, root->col, "spec is missing");
    doc->kind = kind < 0 ? DM_POLICY__POLICY : (dm_policy__kind)kind;
    if (spec && kind == DM_POLICY__GROUP)
        s_group(&cx, spec);
    else if (spec && kind == DM_POLICY__CERT)
        s_cert(&cx, spec);
    else if (spec && kind == DM_POLICY__POLICY)
        dm_policy__policy_spec(&cx, spec);
    for (size_t i = 0; i < ndocs; i++)
        dm_ytree_doc_destroy(&docs[i]);
    free(docs);
    if (diags->count != before || !doc->name) {
        if (diags->count == before)
            dm_diags_add(diags, name, 0, 0, "the document is not a governance document");
        dm_diags_sort(diags, before);
        dm_policy_doc_destroy(&doc);
        return DM_ERR_INVALID;
    }
    *out = doc;
    return DM_OK;
}

void dm_policy_doc_destroy(dm_policy_doc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_policy__arena_free(&(*self_p)->arena);
    free(*self_p);
    *self_p = NULL;
}

const char *dm_policy_doc_kind(const dm_policy_doc_t *d)
{
    return s_kinds[d->kind];
}

const char *dm_policy_doc_name(const dm_policy_doc_t *d)
{
    return d->name;
}
