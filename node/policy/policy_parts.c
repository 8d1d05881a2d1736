/* policy_parts.c: the pieces shared by the documents' readers
 * (policy_doc.c, policy_rules_doc.c, policy_cases.c): keys, names,
 * consumer lists, product globs and field selectors, each read from one
 * YAML node into the document's arena, reported at the node. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"

bool dm_policy__key_node(dm_policy__cx_t *cx, const dm_ytree_node_t *n, const char *what,
                         uint8_t key[DM_POLICY_KEY_BYTES])
{
    const char *s = dm_policy__str(cx->d, cx->file, n, what);
    if (!s)
        return false;
    if (dm_policy__hex_key(s, key))
        return true;
    dm_diags_add(cx->d, cx->file, n->line, n->col,
                 "%s '%.80s' is not a key: an ed25519 public key is 64 hex digits", what, s);
    return false;
}

static int s_key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, DM_POLICY_KEY_BYTES);
}

/* Sorts n keys and drops repeats; returns the count left. */
size_t dm_policy__keys_sort(uint8_t (*keys)[DM_POLICY_KEY_BYTES], size_t n)
{
    if (n < 2)
        return n;
    qsort(keys, n, sizeof *keys, s_key_cmp);
    size_t w = 1;
    for (size_t i = 1; i < n; i++)
        if (memcmp(keys[i], keys[w - 1], DM_POLICY_KEY_BYTES) != 0)
            memcpy(keys[w++], keys[i], DM_POLICY_KEY_BYTES);
    return w;
}

bool dm_policy__name_node(dm_policy__cx_t *cx, const dm_ytree_node_t *n, const char *what,
                          const char **out)
{
    const char *s = dm_policy__str(cx->d, cx->file, n, what);
    if (!s)
        return false;
    if (!dm_text_is_name(s)) {
        dm_diags_add(cx->d, cx->file, n->line, n->col,
                     "%s '%.80s' is not a name: it must match " DM_TEXT_NAME_RULE, what, s);
        return false;
    }
    *out = dm_policy__strdup(&cx->doc->arena, s);
    return true;
}

void dm_policy__who(dm_policy__cx_t *cx, const dm_ytree_node_t *n, const char *what, bool dflt_any,
                    dm_policy__who_t *who)
{
    memset(who, 0, sizeof *who);
    if (!n) {
        who->any = dflt_any;
        return;
    }
    if (!dm_policy__seq(cx->d, cx->file, n, what, DM_POLICY_LIST_MAX))
        return;
    dm_policy__arena_t *a = &cx->doc->arena;
    who->keys = dm_policy__alloc(a, (n->n ? n->n : 1) * sizeof *who->keys);
    who->groups = dm_policy__alloc(a, (n->n ? n->n : 1) * sizeof *who->groups);
    size_t gl = strlen(DM_POLICY_GROUP_PREFIX);
    for (size_t i = 0; i < n->n; i++) {
        const dm_ytree_node_t *it = n->items[i];
        const char *s = dm_policy__str(cx->d, cx->file, it, what);
        if (!s)
            continue;
        if (strcmp(s, "*") == 0) {
            who->any = true;
        } else if (strncmp(s, DM_POLICY_GROUP_PREFIX, gl) == 0 && dm_text_is_name(s + gl)) {
            who->groups[who->ngroups++] = dm_policy__strdup(a, s + gl);
        } else if (dm_policy__hex_key(s, who->keys[who->nkeys])) {
            who->nkeys++;
        } else {
            dm_diags_add(cx->d, cx->file, it->line, it->col,
                         "%s entry '%.80s' is not a consumer: use \"*\" (anyone), group:NAME "
                         "(NAME matching " DM_TEXT_NAME_RULE ") or a key of 64 hex digits",
                         what, s);
        }
    }
    who->nkeys = dm_policy__keys_sort(who->keys, who->nkeys);
    who->resolved = dm_policy__alloc(a, (who->ngroups ? who->ngroups : 1) * sizeof *who->resolved);
}

/* DOMAIN/NAME where each side is a name that may hold * and ?. */
static bool s_glob_ok(const char *s)
{
    size_t len = strlen(s), slash = 0, nslash = 0;
    if (len > DM_POLICY_GLOB_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '/') {
            slash = i;
            nslash++;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                     c == '*' || c == '?')) {
            return false;
        }
    }
    return nslash == 1 && slash > 0 && slash + 1 < len;
}

void dm_policy__products(dm_policy__cx_t *cx, const dm_ytree_node_t *n, const char *what,
                         dm_policy__products_t *p)
{
    dm_policy__arena_t *a = &cx->doc->arena;
    memset(p, 0, sizeof *p);
    if (!n) {
        p->globs = dm_policy__alloc(a, sizeof *p->globs);
        p->globs[p->n++] = "*/*";
        return;
    }
    if (!dm_policy__seq(cx->d, cx->file, n, what, DM_POLICY_LIST_MAX))
        return;
    p->globs = dm_policy__alloc(a, (n->n ? n->n : 1) * sizeof *p->globs);
    for (size_t i = 0; i < n->n; i++) {
        const char *s = dm_policy__str(cx->d, cx->file, n->items[i], what);
        if (!s)
            continue;
        if (!s_glob_ok(s)) {
            dm_diags_add(cx->d, cx->file, n->items[i]->line, n->items[i]->col,
                         "%s entry '%.80s' is not a product pattern: DOMAIN/NAME, at most %d bytes, "
                         "of a-z, 0-9, '_', '-' and the wildcards * and ? (e.g. \"commerce/*\")",
                         what, s, DM_POLICY_GLOB_MAX);
            continue;
        }
        p->globs[p->n++] = dm_policy__strdup(a, s);
    }
}

void dm_policy__fields(dm_policy__cx_t *cx, const dm_ytree_node_t *n, const char *what,
                       dm_policy__fields_t *f)
{
    static const char *const keys[] = {"classification", "names", NULL};
    memset(f, 0, sizeof *f);
    if (!dm_policy__map(cx->d, cx->file, n, what, keys))
        return;
    const dm_ytree_node_t *c = dm_ytree_get(n, "classification"), *names = dm_ytree_get(n, "names");
    if ((c != NULL) == (names != NULL)) {
        dm_diags_add(cx->d, cx->file, n->line, n->col,
                     "%s needs exactly one of classification (e.g. {classification: pii}) or names "
                     "(e.g. {names: [email, phone]})", what);
        return;
    }
    if (c) {
        if (dm_policy__name_node(cx, c, "fields.classification", &f->classification))
            f->kind = DM_POLICY__FIELDS_CLASS;
        return;
    }
    if (!dm_policy__seq(cx->d, cx->file, names, "fields.names", DM_POLICY_LIST_MAX))
        return;
    f->names = dm_policy__alloc(&cx->doc->arena, (names->n ? names->n : 1) * sizeof *f->names);
    for (size_t i = 0; i < names->n; i++) {
        const char *s = dm_policy__str(cx->d, cx->file, names->items[i], "fields.names entry");
        if (s)
            f->names[f->nnames++] = dm_policy__strdup(&cx->doc->arena, s);
    }
    if (f->nnames)
        f->kind = DM_POLICY__FIELDS_NAMES;
    else
        dm_diags_add(cx->d, cx->file, names->line, names->col, "fields.names must list a field");
}
