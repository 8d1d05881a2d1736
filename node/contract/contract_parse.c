/* contract_parse.c: the contract parser's entry points and the top of the
 * document (apiVersion, kind, metadata, spec).
 *
 * Sections of spec live in contract_schema.c, contract_spec.c and
 * contract_quality.c, the canonical form in contract_canonical.c, typed
 * node reads in contract_read.c. Every document of a file is checked
 * completely so that one run reports every problem; diagnostics are sorted
 * by position. */
#include "contract/contract.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/lines.h"
#include "contract/contract_priv.h"

#define S_API_VERSION "datamesh.io/v1"
#define S_KIND "DataProduct"
#define S_EMAIL_MAX 254 /* bytes, RFC 5321 path limit */

/* ---- metadata ---- */

/* Reads one decimal component of a semantic version. */
static bool s_semver_part(const char **p, uint64_t *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
        return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    *p = s;
    return true;
}

static bool s_semver(const char *s, uint64_t *maj, uint64_t *min, uint64_t *pat)
{
    return s_semver_part(&s, maj) && *s++ == '.' && s_semver_part(&s, min) && *s++ == '.' &&
           s_semver_part(&s, pat) && *s == 0;
}

static bool s_email(const char *s)
{
    size_t len = strlen(s);
    const char *at = strchr(s, '@');
    if (len > S_EMAIL_MAX || !at || at == s || strchr(at + 1, '@'))
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    const char *dom = at + 1;
    size_t dl = strlen(dom);
    if (dl < 3 || !strchr(dom, '.') || dom[0] == '.' || dom[dl - 1] == '.' || strstr(dom, ".."))
        return false;
    return true;
}

static void s_name(dm_contract__cx_t *cx, const dm_ytree_node_t *m, const char *key, const char *what,
                   char **out)
{
    const dm_ytree_node_t *v = dm_contract__need(cx, m, key, "metadata");
    if (!v || !dm_contract__str(cx, v, what, out))
        return;
    if (!dm_text_is_name(*out))
        dm_contract__err(cx, v,
                  "%s '%s' is not a valid name: it must match " DM_TEXT_NAME_RULE " (a "
                  "lowercase letter, then up to 62 lowercase letters, digits, '_' or '-')",
                  what, *out);
}

static void s_owner(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *o)
{
    static const char *const keys[] = {"team", "contact", NULL};
    if (!dm_contract__map(cx, o, "metadata.owner", keys))
        return;
    const dm_ytree_node_t *v = dm_contract__need(cx, o, "team", "metadata.owner");
    if (v && dm_contract__str(cx, v, "metadata.owner.team", &c->owner_team) && !c->owner_team[0])
        dm_contract__err(cx, v, "metadata.owner.team must not be empty");
    v = dm_contract__need(cx, o, "contact", "metadata.owner");
    if (v && dm_contract__str(cx, v, "metadata.owner.contact", &c->owner_contact) &&
        !s_email(c->owner_contact))
        dm_contract__err(cx, v,
                  "metadata.owner.contact '%s' is not an e-mail address (expected one '@', a "
                  "non-empty local part, a domain with a dot, no spaces, at most %d bytes)",
                  c->owner_contact, S_EMAIL_MAX);
}

static void s_tags(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *t)
{
    if (!dm_contract__seq(cx, t, "metadata.tags"))
        return;
    c->tags = calloc(t->n ? t->n : 1, sizeof *c->tags);
    if (!c->tags)
        abort();
    dm_sidx_t x = DM_SIDX_INIT; /* duplicates by sorting, not pairwise */
    for (size_t i = 0; i < t->n; i++) {
        char *s;
        if (!dm_contract__str(cx, t->items[i], "metadata.tags entry", &s))
            continue;
        if (!s[0])
            dm_contract__err(cx, t->items[i], "metadata.tags: a tag must not be empty");
        else
            dm_sidx_add(&x, s, strlen(s), i);
        c->tags[c->ntags++] = s;
    }
    dm_sidx_sort(&x);
    for (size_t i = 1; i < x.n; i++)
        if (dm_sidx_dup(&x, i))
            dm_contract__err(cx, t->items[x.e[i].pos], "metadata.tags: duplicate tag '%s'", x.e[i].s);
    dm_sidx_free(&x);
}

static void s_metadata(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *m)
{
    static const char *const keys[] = {"name", "domain", "version", "owner",
                                       "description", "tags", NULL};
    if (!dm_contract__map(cx, m, "metadata", keys))
        return;
    s_name(cx, m, "name", "metadata.name", &c->name);
    s_name(cx, m, "domain", "metadata.domain", &c->domain);
    const dm_ytree_node_t *v = dm_contract__need(cx, m, "version", "metadata");
    if (v && dm_contract__str(cx, v, "metadata.version", &c->version) &&
        !s_semver(c->version, &c->version_major, &c->version_minor, &c->version_patch))
        dm_contract__err(cx, v,
                  "metadata.version '%s' is not a semantic version MAJOR.MINOR.PATCH such as "
                  "1.0.0 (decimal, no leading zeros)",
                  c->version);
    if ((v = dm_contract__need(cx, m, "owner", "metadata")))
        s_owner(cx, c, v);
    if ((v = dm_ytree_get(m, "description")))
        (void)dm_contract__str(cx, v, "metadata.description", &c->description);
    if ((v = dm_ytree_get(m, "tags")))
        s_tags(cx, c, v);
}

static void s_spec(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *s)
{
    static const char *const keys[] = {"schema", "sla", "storage", "quality",
                                       "policies", "interoperability", NULL};
    if (!dm_contract__map(cx, s, "spec", keys))
        return;
    const dm_ytree_node_t *v;
    if ((v = dm_contract__need(cx, s, "schema", "spec")))
        dm_contract__schema(cx, c, v);
    if ((v = dm_ytree_get(s, "sla")))
        dm_contract__sla(cx, c, v);
    if ((v = dm_ytree_get(s, "storage")))
        dm_contract__storage(cx, c, v);
    if ((v = dm_ytree_get(s, "quality")))
        dm_contract__quality(cx, c, v);
    if ((v = dm_ytree_get(s, "policies")))
        dm_contract__policies(cx, c, v);
    if ((v = dm_ytree_get(s, "interoperability")))
        dm_contract__interop(cx, c, v);
}

/* Builds the contract of one document; takes ownership of *doc. Problems
 * go to cx; the caller checks cx->errors. */
static dm_contract_t *s_contract(dm_contract__cx_t *cx, dm_ytree_doc_t **doc)
{
    static const char *const keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    dm_contract_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->tree = *doc;
    *doc = NULL;
    c->freshness_ms = c->latency_ms = c->retention_ms = c->quality_schedule_ms = -1;
    c->access = DM_ACCESS_RESTRICTED;
    c->encryption = DM_ENC_NONE;
    const dm_ytree_node_t *root = ((dm_ytree_doc_t *)c->tree)->root;
    size_t before = cx->errors;
    cx->pattern_cost = 0;
    if (!root || dm_ytree_is_null(root)) {
        dm_contract__err(cx, root, "empty document: expected a DataProduct mapping with apiVersion, "
                            "kind, metadata and spec");
        return c;
    }
    if (!dm_contract__map(cx, root, "the contract", keys))
        return c; /* nothing indexed yet */
    const dm_ytree_node_t *v = dm_contract__need(cx, root, "apiVersion", "the contract");
    if (v && (v->kind != DM_YNODE_SCALAR || strcmp(v->text, S_API_VERSION) != 0))
        dm_contract__err(cx, v, "apiVersion %s%s%s is not supported; expected " S_API_VERSION,
                  DM_CONTRACT__SHOWN(v));
    static const char *const kinds[] = {S_KIND};
    if ((v = dm_contract__need(cx, root, "kind", "the contract")))
        (void)dm_contract__choice(cx, v, "kind", kinds, 1);
    if ((v = dm_contract__need(cx, root, "metadata", "the contract")))
        s_metadata(cx, c, v);
    if ((v = dm_contract__need(cx, root, "spec", "the contract")))
        s_spec(cx, c, v);
    if (cx->errors == before) {
        dm_buf_t canon = DM_BUF_INIT;
        dm_contract_canonical(c, &canon);
        if (canon.len > DM_CONTRACT_MAX_FILE)
            dm_contract__err(cx, root,
                      "the canonical form of this contract is %zu bytes (aliases expanded); at "
                      "most %d bytes are allowed",
                      canon.len, DM_CONTRACT_MAX_FILE);
        dm_buf_free(&canon);
    }
    dm_contract__contract_done(cx);
    return c;
}

/* Reports a product defined by two documents of one file (at the later
 * one). keys holds "domain\0name" of document i at key_off[i] (empty when
 * it has no valid name); sorted, so many documents cost O(n log n). */
static void s_twice(dm_contract__cx_t *cx, dm_contract_t **cs, size_t nc, const dm_buf_t *keys,
                    const size_t *key_off)
{
    dm_sidx_t x = DM_SIDX_INIT;
    for (size_t i = 0; i < nc; i++) {
        size_t end = i + 1 < nc ? key_off[i + 1] : keys->len;
        if (end > key_off[i])
            dm_sidx_add(&x, keys->data + key_off[i], end - key_off[i], i);
    }
    dm_sidx_sort(&x);
    size_t first = 0;
    for (size_t i = 1; i < x.n; i++) {
        if (!dm_sidx_dup(&x, i)) {
            first = i;
            continue;
        }
        const dm_contract_t *c = cs[x.e[i].pos];
        dm_contract__err(cx, ((dm_ytree_doc_t *)c->tree)->root,
                  "product %s/%s is defined twice in this file (documents %zu and %zu)",
                  c->domain, c->name, x.e[first].pos + 1, x.e[i].pos + 1);
    }
    dm_sidx_free(&x);
}

dm_err dm_contract_parse(const char *name, const char *buf, size_t len, const char *basedir,
                         dm_contract_t ***out, size_t *n, dm_diags_t *diags)
{
    return dm_contract_parse_opts(name, buf, len, basedir, 0, out, n, diags);
}

dm_err dm_contract_parse_opts(const char *name, const char *buf, size_t len, const char *basedir,
                              unsigned flags, dm_contract_t ***out, size_t *n, dm_diags_t *diags)
{
    *out = NULL;
    *n = 0;
    size_t first = diags->count;
    dm_ytree_doc_t **docs = NULL;
    size_t ndocs = 0;
    size_t before = diags->count;
    dm_err rc = dm_ytree_load(name, buf, len, &docs, &ndocs, diags);
    if (rc != DM_OK)
        goto out;
    dm_contract_t **cs = calloc(ndocs, sizeof *cs);
    if (!cs)
        abort();
    dm_contract__cx_t cx = {.file = name, .basedir = basedir, .diags = diags,
                  .errors = diags->count - before, /* dup. keys */ .flags = flags};
    size_t nc = 0;
    dm_buf_t keys = DM_BUF_INIT; /* "domain\0name" of each product, for s_twice */
    size_t *key_off = calloc(ndocs ? ndocs : 1, sizeof *key_off);
    if (!key_off)
        abort();
    for (size_t i = 0; i < ndocs; i++) {
        const dm_ytree_node_t *root = docs[i]->root;
        if (!root || (dm_ytree_is_null(root) && root->len == 0)) {
            dm_ytree_doc_destroy(&docs[i]); /* an empty document, e.g. after a trailing --- */
            continue;
        }
        dm_contract_t *c = s_contract(&cx, &docs[i]);
        key_off[nc] = keys.len;
        if (c->name && c->domain) {
            dm_buf_puts(&keys, c->domain);
            dm_buf_append(&keys, "", 1);
            dm_buf_puts(&keys, c->name);
        }
        cs[nc++] = c;
    }
    s_twice(&cx, cs, nc, &keys, key_off);
    dm_buf_free(&keys);
    free(key_off);
    if (nc == 0) {
        dm_diags_add(diags, name, 1, 1, "no contract: every document in the file is empty");
        cx.errors++;
    }
    free(docs);
    if (cx.errors) {
        dm_contract_list_destroy(&cs, nc);
        rc = DM_ERR_INVALID;
        goto out;
    }
    *out = cs;
    *n = nc;
out:
    dm_diags_sort(diags, first);
    return rc;
}

void dm_contract_list_destroy(dm_contract_t ***list_p, size_t n)
{
    if (!*list_p)
        return;
    for (size_t i = 0; i < n; i++)
        dm_contract_destroy(&(*list_p)[i]);
    free(*list_p);
    *list_p = NULL;
}

dm_err dm_contract_parse_file(const char *path, dm_contract_t ***out, size_t *n,
                              dm_diags_t *diags)
{
    *out = NULL;
    *n = 0;
    dm_err rc = DM_ERR_IO;
    char *buf = NULL, *dir = NULL;
    FILE *f = NULL;
    struct stat st;
    dm_buf_t why = DM_BUF_INIT;
    int fd = -1;
    if (dm_lines_open_read(path, DM_FILE_REGULAR, &fd, &why) != DM_OK) {
        dm_diags_add(diags, path, 0, 0, "cannot read the file: %s", why.len ? why.data : "?");
        dm_buf_free(&why);
        goto out;
    }
    f = fdopen(fd, "rb");
    if (!f || fstat(fd, &st) != 0) {
        dm_diags_add(diags, path, 0, 0, "cannot read the file: %s", strerror(errno));
        if (!f)
            close(fd);
        goto out;
    }
    if (st.st_size > DM_CONTRACT_MAX_FILE) {
        dm_diags_add(diags, path, 0, 0, "the file is %lld bytes; at most %d bytes are allowed",
                     (long long)st.st_size, DM_CONTRACT_MAX_FILE);
        rc = DM_ERR_TOOBIG;
        goto out;
    }
    buf = malloc(DM_CONTRACT_MAX_FILE + 1);
    if (!buf) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    size_t len = fread(buf, 1, DM_CONTRACT_MAX_FILE + 1, f);
    if (ferror(f)) {
        dm_diags_add(diags, path, 0, 0, "cannot read the file: %s", strerror(errno));
        goto out;
    }
    dir = dm_contract__strdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    rc = dm_contract_parse(path, buf, len, dir, out, n, diags);
out:
    if (f)
        fclose(f);
    free(buf);
    free(dir);
    return rc;
}
