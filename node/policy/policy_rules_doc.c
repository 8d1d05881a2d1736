/* policy_rules_doc.c: the spec of a kind: Policy document: access rules,
 * masks, row filters and contract rules (docs/governance.md). Rule names
 * are unique in the document whatever their kind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sidx.h"
#include "policy/policy_priv.h"

#define S_WHAT_MAX 64

static const char *const s_requires[] = {"owner.contact", "sla.freshness", "sla.availability",
                                         "sla.latency", "description", "quality.checks"};
#define S_NREQUIRES (sizeof s_requires / sizeof *s_requires)

/* The rule's name (required); NULL (reported) when missing or not a name. */
static const char *s_rule_name(dm_policy__cx_t *cx, const dm_ytree_node_t *m, const char *what)
{
    const dm_ytree_node_t *n = dm_ytree_get(m, "name");
    const char *out = NULL;
    if (!n)
        dm_diags_add(cx->d, cx->file, m->line, m->col, "%s lacks a name (required, matching "
                                                        DM_TEXT_NAME_RULE ")", what);
    else
        (void)dm_policy__name_node(cx, n, "rule name", &out);
    return out;
}

static unsigned s_actions(dm_policy__cx_t *cx, const dm_ytree_node_t *n)
{
    static const char *const names[] = {"read", "describe", "write"};
    if (!n)
        return 1u << DM_POLICY_READ;
    if (!dm_policy__seq(cx->d, cx->file, n, "actions", DM_POLICY__ACTIONS * 4))
        return 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n->n; i++) {
        int a = dm_policy__choice(cx->d, cx->file, n->items[i], "action", names, 3);
        if (a >= 0)
            bits |= 1u << a;
    }
    if (!bits && !n->n)
        dm_diags_add(cx->d, cx->file, n->line, n->col, "actions must list read, describe or write");
    return bits;
}

static void s_tags(dm_policy__cx_t *cx, const dm_ytree_node_t *n, dm_policy__access_t *r)
{
    if (!n || !dm_policy__seq(cx->d, cx->file, n, "tags", DM_POLICY_LIST_MAX))
        return;
    r->tags = dm_policy__alloc(&cx->doc->arena, (n->n ? n->n : 1) * sizeof *r->tags);
    for (size_t i = 0; i < n->n; i++) {
        const char *s = dm_policy__str(cx->d, cx->file, n->items[i], "tags entry");
        if (s)
            r->tags[r->ntags++] = dm_policy__strdup(&cx->doc->arena, s);
    }
}

static void s_access(dm_policy__cx_t *cx, const dm_ytree_node_t *m, size_t i, dm_policy__access_t *r)
{
    static const char *const keys[] = {"name", "description", "effect", "actions", "products",
                                       "tags", "fields", "consumers", NULL};
    static const char *const effects[] = {"deny", "allow"};
    char what[S_WHAT_MAX];
    snprintf(what, sizeof what, "spec.access[%zu]", i);
    if (!dm_policy__map(cx->d, cx->file, m, what, keys))
        return;
    r->name = s_rule_name(cx, m, what);
    r->doc = cx->doc;
    const dm_ytree_node_t *e = dm_ytree_get(m, "effect"), *v;
    int eff = -1;
    if (!e)
        dm_diags_add(cx->d, cx->file, m->line, m->col, "%s lacks effect (deny or allow)", what);
    else
        eff = dm_policy__choice(cx->d, cx->file, e, "effect", effects, 2);
    r->deny = eff == 0;
    r->actions = s_actions(cx, dm_ytree_get(m, "actions"));
    dm_policy__products(cx, dm_ytree_get(m, "products"), "products", &r->products);
    s_tags(cx, dm_ytree_get(m, "tags"), r);
    if ((v = dm_ytree_get(m, "fields")))
        dm_policy__fields(cx, v, "fields", &r->fields);
    dm_policy__who(cx, dm_ytree_get(m, "consumers"), "consumers", true, &r->consumers);
}

static void s_mask(dm_policy__cx_t *cx, const dm_ytree_node_t *m, size_t i, dm_policy__maskrule_t *r)
{
    static const char *const keys[] = {"name", "description", "products", "fields", "mask",
                                       "except", NULL};
    static const char *const masks[] = {"redact", "hash", "last4", "null", "year"};
    char what[S_WHAT_MAX];
    snprintf(what, sizeof what, "spec.masks[%zu]", i);
    if (!dm_policy__map(cx->d, cx->file, m, what, keys))
        return;
    r->name = s_rule_name(cx, m, what);
    r->doc = cx->doc;
    dm_policy__products(cx, dm_ytree_get(m, "products"), "products", &r->products);
    const dm_ytree_node_t *v = dm_ytree_get(m, "fields");
    if (!v)
        dm_diags_add(cx->d, cx->file, m->line, m->col,
                     "%s lacks fields ({classification: NAME} or {names: [FIELD, ...]})", what);
    else
        dm_policy__fields(cx, v, "fields", &r->fields);
    int k = -1;
    if (!(v = dm_ytree_get(m, "mask")))
        dm_diags_add(cx->d, cx->file, m->line, m->col,
                     "%s lacks mask (redact, hash, last4, null or year)", what);
    else if (v->kind == DM_YNODE_SCALAR && strcmp(v->text, "null") == 0)
        k = 3; /* YAML reads a plain null as nothing; here it names the mask */
    else
        k = dm_policy__choice(cx->d, cx->file, v, "mask", masks, 5);
    r->mask = k < 0 ? DM_POLICY_MASK_NONE : (dm_policy_mask)(k + 1);
    dm_policy__who(cx, dm_ytree_get(m, "except"), "except", false, &r->except);
}

/* One SQL expression: no ';', no comment (it could swallow what the query
 * wraps around it), quotes closed, parentheses balanced. Returns NULL or
 * what is wrong. */
static const char *s_predicate_problem(const char *p, size_t len)
{
    int depth = 0;
    char quote = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (quote) {
            if (c == quote && i + 1 < len && p[i + 1] == quote)
                i++;
            else if (c == quote)
                quote = 0;
            continue;
        }
        if (c == '\'' || c == '"')
            quote = c;
        else if (c == ';')
            return "it holds a ';' (one expression only)";
        else if ((c == '-' && i + 1 < len && p[i + 1] == '-') ||
                 (c == '/' && i + 1 < len && p[i + 1] == '*'))
            return "it holds an SQL comment";
        else if (c == '(')
            depth++;
        else if (c == ')' && --depth < 0)
            return "a ')' closes nothing";
    }
    if (quote)
        return "a quote is not closed";
    return depth ? "a '(' is not closed" : NULL;
}

static void s_filter(dm_policy__cx_t *cx, const dm_ytree_node_t *m, size_t i, dm_policy__filter_t *r)
{
    static const char *const keys[] = {"name", "description", "products", "consumers", "predicate",
                                       "mode", NULL};
    static const char *const modes[] = {"permissive", "restrictive"};
    char what[S_WHAT_MAX];
    snprintf(what, sizeof what, "spec.rowFilters[%zu]", i);
    if (!dm_policy__map(cx->d, cx->file, m, what, keys))
        return;
    r->name = s_rule_name(cx, m, what);
    r->doc = cx->doc;
    dm_policy__products(cx, dm_ytree_get(m, "products"), "products", &r->products);
    dm_policy__who(cx, dm_ytree_get(m, "consumers"), "consumers", true, &r->consumers);
    const dm_ytree_node_t *v = dm_ytree_get(m, "predicate");
    const char *s, *bad;
    if (!v) {
        dm_diags_add(cx->d, cx->file, m->line, m->col,
                     "%s lacks predicate (one SQL expression over the product's columns)", what);
    } else if ((s = dm_policy__str(cx->d, cx->file, v, "predicate"))) {
        if (v->len >= DM_POLICY_FILTER_MAX)
            dm_diags_add(cx->d, cx->file, v->line, v->col, "predicate has %zu bytes; at most %d",
                         v->len, DM_POLICY_FILTER_MAX - 1);
        else if ((bad = s_predicate_problem(s, v->len)))
            dm_diags_add(cx->d, cx->file, v->line, v->col,
                         "predicate \"%.80s\" is not one SQL expression: %s", s, bad);
        else
            r->predicate = dm_policy__strdup(&cx->doc->arena, s);
    }
    int k = 0;
    if ((v = dm_ytree_get(m, "mode")))
        k = dm_policy__choice(cx->d, cx->file, v, "mode", modes, 2);
    r->restrictive = k == 1;
}

static void s_crule(dm_policy__cx_t *cx, const dm_ytree_node_t *m, size_t i, dm_policy__crule_t *r)
{
    static const char *const keys[] = {"name", "description", "require", "forbid", "names", NULL};
    static const char *const forbids[] = {"public-pii"};
    static const char *const namings[] = {"snake_case"};
    char what[S_WHAT_MAX];
    snprintf(what, sizeof what, "spec.contractRules[%zu]", i);
    if (!dm_policy__map(cx->d, cx->file, m, what, keys))
        return;
    r->name = s_rule_name(cx, m, what);
    r->doc = cx->doc;
    const dm_ytree_node_t *req = dm_ytree_get(m, "require"), *fb = dm_ytree_get(m, "forbid"),
                          *nm = dm_ytree_get(m, "names");
    if ((req != NULL) + (fb != NULL) + (nm != NULL) != 1) {
        dm_diags_add(cx->d, cx->file, m->line, m->col,
                     "%s needs exactly one of require (owner.contact, sla.freshness, "
                     "sla.availability, sla.latency, description, quality.checks), forbid "
                     "(public-pii) or names (snake_case)", what);
        return;
    }
    int k;
    if (req && (k = dm_policy__choice(cx->d, cx->file, req, "require", s_requires, S_NREQUIRES)) >= 0)
        *r = (dm_policy__crule_t){r->name, cx->doc, DM_POLICY__REQUIRE, s_requires[k]};
    else if (fb && dm_policy__choice(cx->d, cx->file, fb, "forbid", forbids, 1) == 0)
        *r = (dm_policy__crule_t){r->name, cx->doc, DM_POLICY__FORBID, forbids[0]};
    else if (nm && dm_policy__choice(cx->d, cx->file, nm, "names", namings, 1) == 0)
        *r = (dm_policy__crule_t){r->name, cx->doc, DM_POLICY__NAMES, namings[0]};
}

/* A list section of the spec: NULL when absent or wrong (reported; *bad
 * set, and *over too when it lists more than DM_POLICY_MAX_RULES, whose
 * entries then count towards cx->rules all the same). */
static const dm_ytree_node_t *s_section(dm_policy__cx_t *cx, const dm_ytree_node_t *spec,
                                        const char *key, bool *bad, bool *over)
{
    const dm_ytree_node_t *n = dm_ytree_get(spec, key);
    char what[S_WHAT_MAX];
    snprintf(what, sizeof what, "spec.%s", key);
    if (!n)
        return NULL;
    if (!dm_policy__seq(cx->d, cx->file, n, what, DM_POLICY_MAX_RULES)) {
        *bad = true;
        if (n->kind == DM_YNODE_SEQ) {
            *over = true;
            cx->rules += n->n;
        }
        return NULL;
    }
    cx->rules += n->n;
    return n;
}

/* Reports a rule name used twice in the document (at the later rule). */
static void s_unique_names(dm_policy__cx_t *cx, const dm_ytree_node_t *const *secs)
{
    dm_sidx_t x = DM_SIDX_INIT;
    const dm_ytree_node_t **at = calloc(cx->rules ? cx->rules : 1, sizeof *at);
    if (!at)
        abort();
    size_t k = 0;
    for (int s = 0; s < 4; s++)
        for (size_t i = 0; secs[s] && i < secs[s]->n; i++) {
            const dm_ytree_node_t *n = dm_ytree_get(secs[s]->items[i], "name");
            if (!n || n->kind != DM_YNODE_SCALAR)
                continue;
            at[k] = n;
            dm_sidx_add(&x, n->text, n->len, k++);
        }
    dm_sidx_sort(&x);
    for (size_t i = 1; i < x.n; i++)
        if (dm_sidx_dup(&x, i))
            dm_diags_add(cx->d, cx->file, at[x.e[i].pos]->line, at[x.e[i].pos]->col,
                         "rule name '%.80s' is used twice in this document (names are unique "
                         "across access, masks, rowFilters and contractRules)", x.e[i].s);
    dm_sidx_free(&x);
    free(at);
}

void dm_policy__policy_spec(dm_policy__cx_t *cx, const dm_ytree_node_t *spec)
{
    static const char *const keys[] = {"access", "masks", "rowFilters", "contractRules", NULL};
    if (!dm_policy__map(cx->d, cx->file, spec, "spec (kind Policy)", keys))
        return;
    const dm_ytree_node_t *secs[4];
    bool bad = false, over = false; /* a section was reported; one was over the limit */
    for (int s = 0; s < 4; s++)
        secs[s] = s_section(cx, spec, keys[s], &bad, &over);
    if (cx->rules > DM_POLICY_MAX_RULES) {
        if (!over)
            dm_diags_add(cx->d, cx->file, spec->line, spec->col,
                         "the policy has %zu rules; a document has at most %d (split it in two)",
                         cx->rules, DM_POLICY_MAX_RULES);
        return;
    }
    if (!cx->rules && !bad)
        dm_diags_add(cx->d, cx->file, spec->line, spec->col,
                     "the policy has no rules: list some under access, masks, rowFilters or "
                     "contractRules");
    dm_policy_doc_t *d = cx->doc;
    dm_policy__arena_t *a = &d->arena;
    if (secs[0]) {
        d->access = dm_policy__alloc(a, (secs[0]->n ? secs[0]->n : 1) * sizeof *d->access);
        for (size_t i = 0; i < secs[0]->n; i++)
            s_access(cx, secs[0]->items[i], i, &d->access[d->naccess++]);
    }
    if (secs[1]) {
        d->masks = dm_policy__alloc(a, (secs[1]->n ? secs[1]->n : 1) * sizeof *d->masks);
        for (size_t i = 0; i < secs[1]->n; i++)
            s_mask(cx, secs[1]->items[i], i, &d->masks[d->nmasks++]);
    }
    if (secs[2]) {
        d->filters = dm_policy__alloc(a, (secs[2]->n ? secs[2]->n : 1) * sizeof *d->filters);
        for (size_t i = 0; i < secs[2]->n; i++)
            s_filter(cx, secs[2]->items[i], i, &d->filters[d->nfilters++]);
    }
    if (secs[3]) {
        d->crules = dm_policy__alloc(a, (secs[3]->n ? secs[3]->n : 1) * sizeof *d->crules);
        for (size_t i = 0; i < secs[3]->n; i++)
            s_crule(cx, secs[3]->items[i], i, &d->crules[d->ncrules++]);
    }
    s_unique_names(cx, secs);
}
