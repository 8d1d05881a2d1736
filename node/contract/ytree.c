/* ytree.c: builds the bounded YAML node tree from libyaml events.
 *
 * Before libyaml sees the text, a pre-scan checks size, UTF-8 and NUL bytes
 * and notes lines whose indentation holds a TAB. While events arrive the
 * builder enforces depth, key rules and alias expansion limits, so the work
 * done is linear in the input and a billion-laughs file stops after a few
 * hundred events. */
#include "contract/ytree.h"
#include "base/text.h"
#include "base/array.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include <sodium.h>

#include "contract/contract.h" /* DM_CONTRACT_MAX_DEPTH, DM_CONTRACT_MAX_FILE: the limits a contract file obeys */

#define S_ANCHORS_MIN 16 /* initial anchor table slots (power of two) */

typedef struct { /* a position, 0-based as libyaml counts */
    size_t line, col;
} s_pos_t;

typedef struct {
    s_pos_t start, end;
} s_range_t;

typedef struct {
    char *name;
    dm_ytree_node_t *node;
} s_anchor_t;

typedef struct {
    const char *file;
    const char *buf;
    size_t len;
    dm_diags_t *diags;
    bool bad;               /* a problem was reported */
    bool aliased;           /* an alias was seen */
    size_t nodes, bytes;    /* expanded totals for the file */
    dm_ytree_doc_t **docs;
    size_t ndocs, capdocs;
    dm_ytree_doc_t *doc;         /* the document being built */
    dm_ytree_node_t *stack[DM_CONTRACT_MAX_DEPTH];
    size_t depth;
    s_anchor_t *anchors;    /* open addressing, capacity nanchor_slots */
    size_t nanchors, nanchor_slots;
    s_pos_t *tabs;          /* first TAB in the indentation of a line */
    size_t ntabs, captabs;
    s_range_t *ranges;      /* multi-line scalars: a TAB inside them is content */
    size_t nranges, capranges;
    unsigned char hkey[crypto_shorthash_KEYBYTES]; /* random: see s_hash */
} s_build_t;

static void *s_grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (!dm_array_reserve(&p, cap, need, size, 16))
        abort(); /* like dm_buf: nobody can continue without memory */
    return p;
}

static void s_err(s_build_t *b, size_t line0, size_t col0, const char *msg)
{
    dm_diags_add(b->diags, b->file, (unsigned)line0 + 1, (unsigned)col0 + 1, "%s", msg);
    b->bad = true;
}

/* Position (0-based line, column in code points) of byte offset off. */
static s_pos_t s_pos_of(const char *buf, size_t len, size_t off)
{
    s_pos_t p = {0, 0};
    for (size_t i = 0; i < off && i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n') {
            p.line++;
            p.col = 0;
        } else if ((c & 0xC0) != 0x80) {
            p.col++;
        }
    }
    return p;
}

/* Checks UTF-8 and NUL bytes and records TABs in indentation. Returns
 * false (after one diagnostic) if the text is not UTF-8. */
static bool s_prescan(s_build_t *b)
{
    const unsigned char *s = (const unsigned char *)b->buf;
    s_pos_t p = {0, 0};
    bool at_indent = true, tab_seen = false;
    s_pos_t tab = {0, 0};
    if (b->len >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF))) {
        s_err(b, 0, 0, "the file is UTF-16 (it starts with a UTF-16 byte order mark); a contract "
                       "must be UTF-8 text");
        return false;
    }
    for (size_t i = 0; i < b->len;) {
        unsigned char c = s[i];
        if (c == 0) {
            s_err(b, p.line, p.col, "NUL byte: a contract must be UTF-8 text (is the file UTF-16?)");
            return false;
        }
        size_t w = dm_text_utf8_len(s + i, b->len - i);
        if (w == 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "invalid UTF-8 (byte 0x%02x): a contract must be UTF-8 text", c);
            s_err(b, p.line, p.col, msg);
            return false;
        }
        if (c == '\n' || (c == '\r' && (i + 1 >= b->len || s[i + 1] != '\n'))) {
            p.line++;
            p.col = 0;
            at_indent = true;
            tab_seen = false;
            i++;
            continue;
        }
        if (at_indent) {
            if (c == '\t' && !tab_seen) {
                tab_seen = true;
                tab = p;
            } else if (c != ' ' && c != '\t' && c != '\r') {
                at_indent = false;
                if (tab_seen) {
                    b->tabs = s_grow(b->tabs, &b->captabs, b->ntabs + 1, sizeof *b->tabs);
                    b->tabs[b->ntabs++] = tab;
                }
            }
        }
        p.col++;
        i += w;
    }
    return true;
}

static int s_pos_cmp(s_pos_t a, s_pos_t b)
{
    if (a.line != b.line)
        return a.line < b.line ? -1 : 1;
    if (a.col != b.col)
        return a.col < b.col ? -1 : 1;
    return 0;
}

/* Reports every indentation TAB that is not inside a multi-line scalar
 * (before limit, when parsing stopped there). Returns how many. */
static size_t s_report_tabs(s_build_t *b, const s_pos_t *limit)
{
    size_t r = 0, found = 0;
    for (size_t i = 0; i < b->ntabs; i++) {
        s_pos_t t = b->tabs[i];
        if (limit && s_pos_cmp(t, *limit) > 0)
            break;
        while (r < b->nranges && s_pos_cmp(b->ranges[r].end, t) < 0)
            r++;
        if (r < b->nranges && s_pos_cmp(b->ranges[r].start, t) < 0)
            continue;
        s_err(b, t.line, t.col, "TAB character in indentation: YAML indents with spaces only");
        found++;
    }
    return found;
}

/* Anchor-name hash, keyed per file: with a fixed hash a document could
 * name thousands of anchors that share one slot chain and make their
 * definitions and aliases cost O(anchors) each. */
static size_t s_hash(const unsigned char *key, const char *s)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)s, strlen(s), key);
    size_t v = 0;
    for (size_t i = 0; i < sizeof v && i < sizeof h; i++)
        v |= (size_t)h[i] << (8 * i);
    return v;
}

static void s_anchors_clear(s_build_t *b)
{
    for (size_t i = 0; i < b->nanchor_slots; i++)
        free(b->anchors[i].name);
    free(b->anchors);
    b->anchors = NULL;
    b->nanchors = b->nanchor_slots = 0;
}

static s_anchor_t *s_anchor_slot(const s_build_t *b, s_anchor_t *t, size_t slots,
                                 const char *name)
{
    size_t i = s_hash(b->hkey, name) & (slots - 1);
    while (t[i].name && strcmp(t[i].name, name) != 0)
        i = (i + 1) & (slots - 1);
    return &t[i];
}

static void s_anchor_set(s_build_t *b, const char *name, dm_ytree_node_t *node)
{
    if ((b->nanchors + 1) * 2 > b->nanchor_slots) {
        size_t slots = b->nanchor_slots ? b->nanchor_slots * 2 : S_ANCHORS_MIN;
        s_anchor_t *t = calloc(slots, sizeof *t);
        if (!t)
            abort();
        for (size_t i = 0; i < b->nanchor_slots; i++)
            if (b->anchors[i].name)
                *s_anchor_slot(b, t, slots, b->anchors[i].name) = b->anchors[i];
        free(b->anchors);
        b->anchors = t;
        b->nanchor_slots = slots;
    }
    s_anchor_t *a = s_anchor_slot(b, b->anchors, b->nanchor_slots, name);
    if (!a->name) {
        a->name = strdup(name);
        if (!a->name)
            abort();
        b->nanchors++;
    }
    a->node = node; /* a redefined anchor replaces the old one, as YAML says */
}

static dm_ytree_node_t *s_anchor_get(s_build_t *b, const char *name)
{
    if (!b->nanchor_slots)
        return NULL;
    return s_anchor_slot(b, b->anchors, b->nanchor_slots, name)->node;
}

static dm_ytree_node_t *s_node_new(s_build_t *b, dm_ynode_kind kind, yaml_mark_t m)
{
    dm_ytree_doc_t *d = b->doc;
    dm_ytree_node_t *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->kind = kind;
    n->line = (unsigned)m.line + 1;
    n->col = (unsigned)m.column + 1;
    n->weight = 1;
    d->all = s_grow(d->all, &d->capall, d->nall + 1, sizeof *d->all);
    d->all[d->nall++] = n;
    return n;
}

/* Adds n (new or aliased) to the open container or as the root. Returns
 * false when a limit is exceeded (parsing must stop). */
static bool s_attach(s_build_t *b, dm_ytree_node_t *n, yaml_mark_t m)
{
    if (b->nodes + n->weight > DM_YAML_MAX_NODES) {
        char msg[192];
        if (b->aliased)
            snprintf(msg, sizeof msg,
                     "alias expansion exceeds the limit: the file expands to more than %d YAML "
                     "nodes (each alias counts as a copy of its anchor)",
                     DM_YAML_MAX_NODES);
        else
            snprintf(msg, sizeof msg, "the file has more than %d YAML nodes", DM_YAML_MAX_NODES);
        s_err(b, m.line, m.column, msg);
        return false;
    }
    if (b->bytes + n->bytes > DM_YAML_MAX_EXPANDED) {
        char msg[192];
        snprintf(msg, sizeof msg,
                 "alias expansion exceeds the limit: the file expands to more than %d bytes of "
                 "text (each alias counts as a copy of its anchor)",
                 DM_YAML_MAX_EXPANDED);
        s_err(b, m.line, m.column, msg);
        return false;
    }
    b->nodes += n->weight;
    b->bytes += n->bytes;
    if (b->depth == 0) {
        b->doc->root = n;
        return true;
    }
    dm_ytree_node_t *p = b->stack[b->depth - 1];
    if (p->kind == DM_YNODE_MAP && p->n % 2 == 0) {
        if (n->kind != DM_YNODE_SCALAR)
            s_err(b, m.line, m.column, "a mapping key must be a scalar, not a mapping or sequence");
        else if (n->len > DM_YAML_MAX_KEY) {
            char msg[96];
            snprintf(msg, sizeof msg, "mapping key is %zu bytes long; at most %d are allowed", n->len,
                     DM_YAML_MAX_KEY);
            s_err(b, m.line, m.column, msg);
        }
    }
    p->items = s_grow(p->items, &p->cap, p->n + 1, sizeof *p->items);
    p->items[p->n++] = n;
    return true;
}

static int s_key_cmp(const void *a, const void *b)
{
    const dm_ytree_node_t *x = *(const dm_ytree_node_t *const *)a, *y = *(const dm_ytree_node_t *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->col < y->col ? -1 : x->col > y->col;
}

/* Reports duplicate keys of a finished mapping (at the later occurrence). */
static void s_check_dups(s_build_t *b, const dm_ytree_node_t *m)
{
    size_t np = m->n / 2;
    if (np < 2)
        return;
    const dm_ytree_node_t **keys = malloc(np * sizeof *keys);
    if (!keys)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < np; i++)
        if (m->items[2 * i]->kind == DM_YNODE_SCALAR)
            keys[k++] = m->items[2 * i];
    qsort(keys, k, sizeof *keys, s_key_cmp);
    for (size_t i = 1; i < k; i++) {
        if (keys[i]->len == keys[i - 1]->len &&
            memcmp(keys[i]->text, keys[i - 1]->text, keys[i]->len) == 0) {
            char msg[DM_YAML_MAX_KEY + 96];
            snprintf(msg, sizeof msg, "duplicate key '%s' (first defined at line %u)",
                     keys[i]->text, keys[i - 1]->line);
            /* Recoverable: lookups use the first occurrence, so the
             * contract rules still run and report what else is wrong; the
             * caller counts this diagnostic as an error. */
            dm_diags_add(b->diags, b->file, keys[i]->line, keys[i]->col, "%s", msg);
        }
    }
    free(keys);
}

/* Rejects explicit tags: they would change how a scalar is typed. */
static void s_check_tag(s_build_t *b, const yaml_char_t *tag, yaml_mark_t m)
{
    if (!tag)
        return;
    char msg[160];
    snprintf(msg, sizeof msg, "YAML tag '%.64s' is not supported (quote a value to make it a string)",
             (const char *)tag);
    s_err(b, m.line, m.column, msg);
}

/* Handles one event. Returns false when building must stop. */
static bool s_event(s_build_t *b, const yaml_event_t *e)
{
    yaml_mark_t m = e->start_mark;
    dm_ytree_node_t *n;
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        b->doc = calloc(1, sizeof *b->doc);
        if (!b->doc)
            abort();
        b->docs = s_grow(b->docs, &b->capdocs, b->ndocs + 1, sizeof *b->docs);
        b->docs[b->ndocs++] = b->doc;
        return true;
    case YAML_DOCUMENT_END_EVENT:
        s_anchors_clear(b); /* anchors do not cross documents */
        b->doc = NULL;
        return true;
    case YAML_ALIAS_EVENT:
        n = s_anchor_get(b, (const char *)e->data.alias.anchor);
        if (!n) {
            char msg[128];
            snprintf(msg, sizeof msg, "alias '*%.64s' refers to no anchor defined before it",
                     (const char *)e->data.alias.anchor);
            s_err(b, m.line, m.column, msg);
            return false;
        }
        if (!n->done) {
            s_err(b, m.line, m.column, "alias refers to a node that contains it (recursive alias)");
            return false;
        }
        b->aliased = true;
        return s_attach(b, n, m);
    case YAML_SCALAR_EVENT:
        n = s_node_new(b, DM_YNODE_SCALAR, m);
        n->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->len = e->data.scalar.length;
        n->bytes = n->len;
        n->done = true;
        n->text = malloc(n->len + 1);
        if (!n->text)
            abort();
        memcpy(n->text, e->data.scalar.value, n->len);
        n->text[n->len] = 0;
        if (memchr(n->text, 0, n->len))
            s_err(b, m.line, m.column, "a string may not contain a NUL character");
        s_check_tag(b, e->data.scalar.tag, m);
        if (e->end_mark.line != m.line) {
            b->ranges = s_grow(b->ranges, &b->capranges, b->nranges + 1, sizeof *b->ranges);
            b->ranges[b->nranges++] = (s_range_t){{m.line, m.column},
                                                  {e->end_mark.line, e->end_mark.column}};
        }
        if (e->data.scalar.anchor)
            s_anchor_set(b, (const char *)e->data.scalar.anchor, n);
        return s_attach(b, n, m);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (b->depth == DM_CONTRACT_MAX_DEPTH) {
            char msg[96];
            snprintf(msg, sizeof msg, "nesting deeper than %d levels", DM_CONTRACT_MAX_DEPTH);
            s_err(b, m.line, m.column, msg);
            return false;
        }
        n = s_node_new(b, e->type == YAML_MAPPING_START_EVENT ? DM_YNODE_MAP : DM_YNODE_SEQ, m);
        s_check_tag(b, e->type == YAML_MAPPING_START_EVENT ? e->data.mapping_start.tag
                                                          : e->data.sequence_start.tag, m);
        {
            const yaml_char_t *anchor = e->type == YAML_MAPPING_START_EVENT
                                            ? e->data.mapping_start.anchor
                                            : e->data.sequence_start.anchor;
            if (anchor)
                s_anchor_set(b, (const char *)anchor, n);
        }
        if (!s_attach(b, n, m))
            return false;
        b->stack[b->depth++] = n;
        return true;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        n = b->stack[--b->depth];
        n->weight = 1;
        n->bytes = 0;
        for (size_t i = 0; i < n->n; i++) {
            n->weight += n->items[i]->weight;
            n->bytes += n->items[i]->bytes;
        }
        n->done = true;
        if (n->kind == DM_YNODE_MAP)
            s_check_dups(b, n);
        return true;
    default:
        return true;
    }
}

/* Turns libyaml's error into a diagnostic; returns its position. */
static s_pos_t s_yaml_error(s_build_t *b, const yaml_parser_t *p)
{
    s_pos_t at;
    if (p->error == YAML_READER_ERROR)
        at = s_pos_of(b->buf, b->len, p->problem_offset);
    else
        at = (s_pos_t){p->problem_mark.line, p->problem_mark.column};
    return at;
}

static void s_yaml_message(s_build_t *b, const yaml_parser_t *p, s_pos_t at)
{
    char msg[512];
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->context)
        snprintf(msg, sizeof msg, "YAML syntax error: %s %s (started at line %zu, column %zu)",
                 p->context, problem, p->context_mark.line + 1, p->context_mark.column + 1);
    else
        snprintf(msg, sizeof msg, "YAML syntax error: %s", problem);
    s_err(b, at.line, at.col, msg);
}

static void s_build_free(s_build_t *b)
{
    s_anchors_clear(b);
    free(b->tabs);
    free(b->ranges);
    if (b->docs) {
        for (size_t i = 0; i < b->ndocs; i++)
            dm_ytree_doc_destroy(&b->docs[i]);
        free(b->docs);
    }
}

dm_err dm_ytree_load(const char *name, const char *buf, size_t len, dm_ytree_doc_t ***docs,
                     size_t *ndocs, dm_diags_t *diags)
{
    *docs = NULL;
    *ndocs = 0;
    /* protobuf-c hands an empty bytes field over as NULL; libyaml asserts on
     * a NULL input, so an empty input is "" here. */
    if (!buf) {
        if (len) {
            dm_diags_add(diags, name, 0, 0, "no input");
            return DM_ERR_INVALID;
        }
        buf = "";
    }
    if (len > DM_CONTRACT_MAX_FILE) {
        dm_diags_add(diags, name, 0, 0, "the file is %zu bytes; at most %d bytes are allowed", len,
                     DM_CONTRACT_MAX_FILE);
        return DM_ERR_TOOBIG;
    }
    s_build_t b = {.file = name, .buf = buf, .len = len, .diags = diags};
    randombytes_buf(b.hkey, sizeof b.hkey);
    dm_err rc = DM_ERR_INVALID;
    yaml_parser_t parser;
    bool parser_ok = false;
    if (!s_prescan(&b))
        goto out;
    if (!yaml_parser_initialize(&parser)) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    parser_ok = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&parser, &e)) {
            if (parser.error == YAML_MEMORY_ERROR) {
                rc = DM_ERR_NOMEM;
                goto out;
            }
            s_pos_t at = s_yaml_error(&b, &parser);
            if (s_report_tabs(&b, &at) == 0)
                s_yaml_message(&b, &parser, at);
            goto out;
        }
        bool go = s_event(&b, &e);
        bool end = e.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&e);
        if (!go)
            goto out;
        if (end)
            break;
    }
    s_report_tabs(&b, NULL);
    if (b.ndocs == 0)
        s_err(&b, 0, 0, "no contract: the file is empty or holds only comments");
    if (b.bad)
        goto out;
    *docs = b.docs;
    *ndocs = b.ndocs;
    b.docs = NULL;
    rc = DM_OK;
out:
    if (parser_ok)
        yaml_parser_delete(&parser);
    s_build_free(&b);
    return rc;
}

void dm_ytree_doc_destroy(dm_ytree_doc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_ytree_doc_t *d = *self_p;
    for (size_t i = 0; i < d->nall; i++) {
        free(d->all[i]->text);
        free(d->all[i]->items);
        free(d->all[i]);
    }
    free(d->all);
    free(d);
    *self_p = NULL;
}

const dm_ytree_node_t *dm_ytree_get(const dm_ytree_node_t *m, const char *key)
{
    if (!m || m->kind != DM_YNODE_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i + 1 < m->n; i += 2) {
        const dm_ytree_node_t *k = m->items[i];
        if (k->kind == DM_YNODE_SCALAR && k->len == klen && memcmp(k->text, key, klen) == 0)
            return m->items[i + 1];
    }
    return NULL;
}

bool dm_ytree_is_null(const dm_ytree_node_t *n)
{
    if (n->kind != DM_YNODE_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

bool dm_ytree_is_bool(const dm_ytree_node_t *n, bool *out)
{
    if (n->kind != DM_YNODE_SCALAR || !n->plain)
        return false;
    bool v;
    if (strcmp(n->text, "true") == 0)
        v = true;
    else if (strcmp(n->text, "false") == 0)
        v = false;
    else
        return false;
    if (out)
        *out = v;
    return true;
}

bool dm_ytree_is_number(const dm_ytree_node_t *n)
{
    if (n->kind != DM_YNODE_SCALAR || !n->plain)
        return false;
    const char *s = n->text, *e = n->text + n->len;
    if (s < e && *s == '-')
        s++;
    if (s == e || *s < '0' || *s > '9')
        return false;
    if (*s == '0')
        s++;
    else
        while (s < e && *s >= '0' && *s <= '9')
            s++;
    if (s < e && *s == '.') {
        s++;
        if (s == e || *s < '0' || *s > '9')
            return false;
        while (s < e && *s >= '0' && *s <= '9')
            s++;
    }
    if (s < e && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < e && (*s == '+' || *s == '-'))
            s++;
        if (s == e || *s < '0' || *s > '9')
            return false;
        while (s < e && *s >= '0' && *s <= '9')
            s++;
    }
    return s == e;
}
