/* policy_cases.c: table-driven cases of a kind: PolicyTest document (dmctl
 * policy test, docs/governance.md): read them all, refusing the file with
 * every problem, then decide each case and compare with what it expects. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"

#define S_CASES_MAX 10000        /* cases of one file */
#define S_CASES_MAX_BYTES (1 << 20)
#define S_WHAT_MAX 64

typedef struct {
    const char *alias;
    uint8_t key[DM_POLICY_KEY_BYTES];
} s_alias_t;

typedef struct {
    const char *name;
    uint8_t key[DM_POLICY_KEY_BYTES];
    const char **groups;
    size_t ngroups;
    const dm_policy_product_t *product;
    dm_policy_action action;
    bool expect_allow;
    dm_policy_mask *masks; /* product->nfields, NULL: not checked */
    bool check_filter;
    const char *filter;    /* NULL: none expected */
} s_case_t;

typedef struct {
    dm_policy__cx_t cx;
    s_alias_t *aliases;
    size_t naliases;
    dm_policy_product_t *products;
    size_t nproducts;
    uint8_t (*admins)[DM_POLICY_KEY_BYTES];
    dm_policy_owner_t owner;
    s_case_t *cases;
    size_t ncases;
} s_file_t;

static void *s_alloc(s_file_t *f, size_t n, size_t size)
{
    return dm_policy__alloc(&f->cx.doc->arena, (n ? n : 1) * size);
}

static void s_err(s_file_t *f, const dm_ytree_node_t *n, const char *fmt, ...) DM_PRINTF(3, 4);
static void s_err(s_file_t *f, const dm_ytree_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_vwhy(&b, fmt, ap);
    va_end(ap);
    dm_diags_add(f->cx.d, f->cx.file, n->line, n->col, "%s", b.data ? b.data : "");
    dm_buf_free(&b);
}

/* An identity: 64 hex digits, an alias of identities, or any other word,
 * whose key is SHA-256(word). */
static bool s_identity(s_file_t *f, const dm_ytree_node_t *n, const char *what,
                       uint8_t key[DM_POLICY_KEY_BYTES])
{
    const char *s = dm_policy__str(f->cx.d, f->cx.file, n, what);
    if (!s)
        return false;
    if (dm_policy__hex_key(s, key))
        return true;
    for (size_t i = 0; i < f->naliases; i++)
        if (strcmp(f->aliases[i].alias, s) == 0) {
            memcpy(key, f->aliases[i].key, DM_POLICY_KEY_BYTES);
            return true;
        }
    _Static_assert(crypto_hash_sha256_BYTES == DM_POLICY_KEY_BYTES, "an alias's key is its hash");
    crypto_hash_sha256(key, (const unsigned char *)s, n->len);
    return true;
}

static void s_identities(s_file_t *f, const dm_ytree_node_t *m)
{
    if (m->kind != DM_YNODE_MAP) {
        s_err(f, m, "identities: expected a mapping of alias: KEY (64 hex digits)");
        return;
    }
    f->aliases = s_alloc(f, dm_ytree_npairs(m), sizeof *f->aliases);
    for (size_t i = 0; i < dm_ytree_npairs(m); i++) {
        s_alias_t *a = &f->aliases[f->naliases];
        if (dm_policy__key_node(&f->cx, m->items[2 * i + 1], "identity key", a->key)) {
            a->alias = m->items[2 * i]->text;
            f->naliases++;
        }
    }
}

static void s_owner(s_file_t *f, const dm_ytree_node_t *m)
{
    static const char *const keys[] = {"domain", "admins", NULL};
    if (!dm_policy__map(f->cx.d, f->cx.file, m, "owner", keys))
        return;
    const dm_ytree_node_t *d = dm_ytree_get(m, "domain"), *a = dm_ytree_get(m, "admins");
    if (!d)
        s_err(f, m, "owner lacks domain (the node's domain)");
    else
        (void)dm_policy__name_node(&f->cx, d, "owner.domain", &f->owner.domain);
    if (!a || !dm_policy__seq(f->cx.d, f->cx.file, a, "owner.admins", DM_POLICY_LIST_MAX))
        return;
    f->admins = s_alloc(f, a->n, sizeof *f->admins);
    for (size_t i = 0; i < a->n; i++)
        if (s_identity(f, a->items[i], "owner.admins entry", f->admins[f->owner.nadmins]))
            f->owner.nadmins++;
    f->owner.admins = (const uint8_t(*)[DM_POLICY_KEY_BYTES])f->admins;
}

/* A string list of at most max entries into *out (arena). */
static size_t s_strings(s_file_t *f, const dm_ytree_node_t *n, const char *what, size_t max,
                        const char ***out)
{
    if (!dm_policy__seq(f->cx.d, f->cx.file, n, what, max))
        return 0;
    const char **v = s_alloc(f, n->n, sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < n->n; i++) {
        const char *s = dm_policy__str(f->cx.d, f->cx.file, n->items[i], what);
        if (s)
            v[k++] = s;
    }
    *out = v;
    return k;
}

static void s_readers(s_file_t *f, const dm_ytree_node_t *n, dm_policy_product_t *p)
{
    const char **v = NULL;
    size_t k = s_strings(f, n, "readers", DM_CONTRACT_MAX_READERS, &v);
    size_t gl = strlen(DM_POLICY_GROUP_PREFIX);
    for (size_t i = 0; i < k; i++) {
        if (strncmp(v[i], DM_POLICY_GROUP_PREFIX, gl) == 0)
            continue;
        uint8_t key[DM_POLICY_KEY_BYTES];
        (void)s_identity(f, n->items[i], "readers entry", key);
        char *hex = s_alloc(f, DM_POLICY_HEX + 1, 1);
        dm_policy__key_hex(key, hex);
        v[i] = hex;
    }
    p->readers = v;
    p->nreaders = k;
}

static void s_product_fields(s_file_t *f, const dm_ytree_node_t *m, dm_policy_product_t *p)
{
    if (m->kind != DM_YNODE_MAP || dm_ytree_npairs(m) > DM_CONTRACT_MAX_FIELDS) {
        s_err(f, m, "fields: expected a mapping of FIELD: CLASSIFICATION (\"\" for none), at most %d",
              DM_CONTRACT_MAX_FIELDS);
        return;
    }
    size_t n = dm_ytree_npairs(m);
    const char **names = s_alloc(f, n, sizeof *names), **cls = s_alloc(f, n, sizeof *cls);
    for (size_t i = 0; i < n; i++) {
        const dm_ytree_node_t *v = m->items[2 * i + 1];
        names[i] = m->items[2 * i]->text;
        if (v->kind == DM_YNODE_SCALAR && (dm_ytree_is_null(v) || !v->len))
            continue;
        (void)dm_policy__name_node(&f->cx, v, "field classification", &cls[i]);
    }
    p->fields = names;
    p->classifications = cls;
    p->nfields = n;
}

static void s_product(s_file_t *f, const dm_ytree_node_t *m, size_t idx, dm_policy_product_t *p)
{
    static const char *const keys[] = {"domain", "name", "access", "readers", "tags", "fields", NULL};
    static const char *const access[] = {"public", "restricted", "private"};
    char what[S_WHAT_MAX];
    snprintf(what, sizeof what, "products[%zu]", idx);
    p->access = DM_ACCESS_RESTRICTED;
    if (!dm_policy__map(f->cx.d, f->cx.file, m, what, keys))
        return;
    const dm_ytree_node_t *d = dm_ytree_get(m, "domain"), *n = dm_ytree_get(m, "name"), *v;
    if (!d || !n) {
        s_err(f, m, "%s needs domain and name", what);
        return;
    }
    (void)dm_policy__name_node(&f->cx, d, "product domain", &p->domain);
    (void)dm_policy__name_node(&f->cx, n, "product name", &p->name);
    int a;
    if ((v = dm_ytree_get(m, "access")) && (a = dm_policy__choice(f->cx.d, f->cx.file, v, "access", access, 3)) >= 0)
        p->access = (dm_access)a;
    if ((v = dm_ytree_get(m, "readers")))
        s_readers(f, v, p);
    const char **tags = NULL;
    if ((v = dm_ytree_get(m, "tags")))
        p->ntags = s_strings(f, v, "tags", DM_POLICY_LIST_MAX, &tags);
    p->tags = tags;
    if ((v = dm_ytree_get(m, "fields")))
        s_product_fields(f, v, p);
}

static const dm_policy_product_t *s_find_product(s_file_t *f, const dm_ytree_node_t *n)
{
    const char *s = dm_policy__str(f->cx.d, f->cx.file, n, "product");
    if (!s)
        return NULL;
    for (size_t i = 0; i < f->nproducts; i++) {
        const dm_policy_product_t *p = &f->products[i];
        size_t dl = p->domain ? strlen(p->domain) : 0;
        if (p->domain && p->name && strncmp(s, p->domain, dl) == 0 && s[dl] == '/' &&
            strcmp(s + dl + 1, p->name) == 0)
            return p;
    }
    s_err(f, n, "product '%.80s' is not one of the file's products (DOMAIN/NAME)", s);
    return NULL;
}

static void s_case_masks(s_file_t *f, const dm_ytree_node_t *m, s_case_t *c)
{
    static const char *const masks[] = {"none", "redact", "hash", "last4", "null", "year"};
    if (m->kind != DM_YNODE_MAP) {
        s_err(f, m, "masks: expected a mapping of FIELD: MASK");
        return;
    }
    c->masks = s_alloc(f, c->product->nfields, sizeof *c->masks);
    for (size_t i = 0; i < dm_ytree_npairs(m); i++) {
        const dm_ytree_node_t *k = m->items[2 * i];
        size_t fi = 0;
        while (fi < c->product->nfields && !dm_policy__field_eq(c->product->fields[fi], k->text))
            fi++;
        if (fi == c->product->nfields) {
            s_err(f, k, "masks: '%.80s' is not a field of product %s/%s", k->text, c->product->domain,
                  c->product->name);
            continue;
        }
        const dm_ytree_node_t *v = m->items[2 * i + 1];
        int x = v->kind == DM_YNODE_SCALAR && strcmp(v->text, "null") == 0
                    ? (int)DM_POLICY_MASK_NULL /* a plain null names the mask here */
                    : dm_policy__choice(f->cx.d, f->cx.file, v, "mask", masks, 6);
        if (x > 0)
            c->masks[fi] = (dm_policy_mask)x;
    }
}

static void s_case(s_file_t *f, const dm_ytree_node_t *m, size_t idx, s_case_t *c)
{
    static const char *const keys[] = {"name", "identity", "groups", "product", "action", "expect",
                                       "masks", "rowFilter", NULL};
    static const char *const actions[] = {"read", "describe", "write"};
    static const char *const expects[] = {"allow", "deny"};
    char what[S_WHAT_MAX];
    snprintf(what, sizeof what, "cases[%zu]", idx);
    if (!dm_policy__map(f->cx.d, f->cx.file, m, what, keys))
        return;
    const dm_ytree_node_t *nm = dm_ytree_get(m, "name"), *id = dm_ytree_get(m, "identity"),
                          *pr = dm_ytree_get(m, "product"), *ex = dm_ytree_get(m, "expect"), *v;
    if (!nm || !id || !pr || !ex) {
        s_err(f, m, "%s needs name, identity, product and expect", what);
        return;
    }
    c->name = dm_policy__str(f->cx.d, f->cx.file, nm, "case name");
    (void)s_identity(f, id, "identity", c->key);
    c->product = s_find_product(f, pr);
    int x;
    if ((v = dm_ytree_get(m, "action")) && (x = dm_policy__choice(f->cx.d, f->cx.file, v, "action", actions, 3)) >= 0)
        c->action = (dm_policy_action)x;
    c->expect_allow = dm_policy__choice(f->cx.d, f->cx.file, ex, "expect", expects, 2) == 0;
    if ((v = dm_ytree_get(m, "groups")))
        c->ngroups = s_strings(f, v, "groups", DM_POLICY_LIST_MAX, &c->groups);
    if ((v = dm_ytree_get(m, "masks")) && c->product)
        s_case_masks(f, v, c);
    if ((v = dm_ytree_get(m, "rowFilter"))) {
        c->check_filter = true;
        if (v->kind != DM_YNODE_SCALAR)
            s_err(f, v, "rowFilter: expected the predicate text (\"\" for none)");
        else if (!dm_ytree_is_null(v) && v->len)
            c->filter = v->text;
    }
}

static void s_file(s_file_t *f, const dm_ytree_node_t *root)
{
    static const char *const keys[] = {"apiVersion", "kind", "owner", "identities", "products",
                                       "cases", NULL};
    if (!dm_policy__map(f->cx.d, f->cx.file, root, "a PolicyTest document", keys))
        return;
    const dm_ytree_node_t *v = dm_ytree_get(root, "apiVersion");
    if (!v || v->kind != DM_YNODE_SCALAR || strcmp(v->text, "datamesh.io/v1") != 0)
        s_err(f, v ? v : root, "apiVersion must be datamesh.io/v1");
    v = dm_ytree_get(root, "kind");
    if (!v || v->kind != DM_YNODE_SCALAR || strcmp(v->text, "PolicyTest") != 0)
        s_err(f, v ? v : root, "kind must be PolicyTest");
    if ((v = dm_ytree_get(root, "identities")))
        s_identities(f, v);
    if (!(v = dm_ytree_get(root, "owner")))
        s_err(f, root, "owner is missing: {domain: NAME, admins: [KEY, ...]}");
    else
        s_owner(f, v);
    if ((v = dm_ytree_get(root, "products")) &&
        dm_policy__seq(f->cx.d, f->cx.file, v, "products", DM_POLICY_LIST_MAX)) {
        f->products = s_alloc(f, v->n, sizeof *f->products);
        for (size_t i = 0; i < v->n; i++)
            s_product(f, v->items[i], i, &f->products[f->nproducts++]);
    }
    if (!(v = dm_ytree_get(root, "cases")) || !dm_policy__seq(f->cx.d, f->cx.file, v, "cases", S_CASES_MAX)) {
        if (!v)
            s_err(f, root, "cases is missing: the list of cases to run");
        return;
    }
    f->cases = s_alloc(f, v->n, sizeof *f->cases);
    for (size_t i = 0; i < v->n; i++)
        s_case(f, v->items[i], i, &f->cases[f->ncases++]);
}

/* Runs one case; appends its PASS or FAIL line. */
static dm_err s_run(const dm_policy_set_t *gov, const s_file_t *f, const s_case_t *c, dm_buf_t *report,
                    bool *ok)
{
    dm_policy_request_t req = {c->key, c->action, c->product};
    dm_policy_decision_t d;
    dm_err rc = dm_policy__decide(gov, &f->owner, &req, c->groups, c->ngroups, NULL, &d);
    if (rc != DM_OK)
        return rc;
    dm_buf_t why = DM_BUF_INIT;
    if (d.allow != c->expect_allow)
        dm_buf_printf(&why, "; expected %s, got %s by %s", c->expect_allow ? "allow" : "deny",
                      d.allow ? "allow" : "deny", d.rule);
    for (size_t i = 0; c->masks && i < c->product->nfields; i++) {
        dm_policy_mask got = d.masks ? d.masks[i] : DM_POLICY_MASK_NONE;
        if (got != c->masks[i])
            dm_buf_printf(&why, "; %s: expected mask %s, got %s", c->product->fields[i],
                          dm_policy_mask_name(c->masks[i]), dm_policy_mask_name(got));
    }
    if (c->check_filter && (c->filter ? !d.row_filter || strcmp(c->filter, d.row_filter) != 0 : d.row_filter != NULL))
        dm_buf_printf(&why, "; expected row filter %s%s%s, got %s%s%s", c->filter ? "\"" : "",
                      c->filter ? c->filter : "none", c->filter ? "\"" : "", d.row_filter ? "\"" : "",
                      d.row_filter ? d.row_filter : "none", d.row_filter ? "\"" : "");
    *ok = why.len == 0;
    if (*ok)
        dm_buf_printf(report, "PASS %s\n", c->name);
    else
        dm_buf_printf(report, "FAIL %s: %s\n", c->name, why.data + 2);
    dm_buf_free(&why);
    dm_policy_decision_clear(&d);
    return DM_OK;
}

dm_err dm_policy_run_cases(const dm_policy_set_t *gov, const char *name, const char *buf, size_t len,
                           dm_buf_t *report, size_t *failed, dm_diags_t *diags)
{
    *failed = 0;
    if (len > S_CASES_MAX_BYTES) {
        dm_diags_add(diags, name, 0, 0, "the cases file has %zu bytes; at most %d", len, S_CASES_MAX_BYTES);
        return DM_ERR_TOOBIG;
    }
    size_t before = diags->count;
    dm_ytree_doc_t **docs = NULL;
    size_t ndocs = 0;
    if (dm_ytree_load(name, buf, len, &docs, &ndocs, diags) != DM_OK)
        return DM_ERR_INVALID;
    dm_policy_doc_t arena_doc;
    memset(&arena_doc, 0, sizeof arena_doc);
    s_file_t f;
    memset(&f, 0, sizeof f);
    f.cx = (dm_policy__cx_t){diags, name, &arena_doc, 0};
    if (diags->count == before && ndocs == 1 && docs[0]->root)
        s_file(&f, docs[0]->root);
    else if (diags->count == before)
        dm_diags_add(diags, name, 0, 0, "a cases file is one YAML document of kind PolicyTest");
    dm_err rc = diags->count == before ? DM_OK : DM_ERR_INVALID;
    for (size_t i = 0; rc == DM_OK && i < f.ncases; i++) {
        bool ok = false;
        if (!f.cases[i].name || !f.cases[i].product)
            continue;
        rc = s_run(gov, &f, &f.cases[i], report, &ok);
        *failed += !ok;
    }
    if (rc == DM_ERR_INVALID)
        dm_diags_sort(diags, before);
    for (size_t i = 0; i < ndocs; i++)
        dm_ytree_doc_destroy(&docs[i]);
    free(docs);
    dm_policy__arena_free(&arena_doc.arena);
    return rc;
}
