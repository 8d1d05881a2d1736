/* contract_canonical.c: the canonical JSON form of a contract and its hash.
 *
 * The canonical form is the parsed YAML document written as JSON: mapping
 * keys sorted bytewise, sequences in order, quoted scalars as strings,
 * plain scalars as bare numbers, true, false or null when they are those
 * and as strings otherwise, x- keys kept, aliases expanded. An avro schema
 * is replaced by the equivalent inline schema. The text is also valid YAML
 * (flow style): strings escape every character that YAML would not read
 * back verbatim, so parsing it again gives the same model and the same
 * bytes. */
#include "contract/contract.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "contract/contract_priv.h"

/* Appends s as a JSON string that YAML's double-quoted style reads back
 * unchanged: besides JSON's escapes, C1 controls, NEL, LS, PS and BOM
 * (which YAML treats as breaks or refuses raw) are written as \uXXXX. */
static void s_str(dm_buf_t *out, const char *s, size_t len)
{
    size_t run = 0; /* start of the pending run of bytes that need no care */
    dm_buf_putc(out, '"');
    for (size_t i = 0; i < len;) {
        const unsigned char *u = (const unsigned char *)s + i;
        unsigned cp = 0;
        size_t w = 1;
        if (u[0] == 0xC2 && i + 1 < len && u[1] >= 0x80 && u[1] <= 0x9F) {
            cp = u[1];
            w = 2;
        } else if (u[0] == 0xE2 && i + 2 < len && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9)) {
            cp = 0x2000u | (u[2] & 0x3Fu);
            w = 3;
        } else if (u[0] == 0xEF && i + 2 < len && ((u[1] == 0xBB && u[2] == 0xBF) ||
                                                   (u[1] == 0xBF && u[2] >= 0xBE))) {
            cp = u[1] == 0xBB ? 0xFEFFu : (0xFFC0u | (u[2] & 0x3Fu));
            w = 3;
        }
        if (!cp) {
            i++;
            continue;
        }
        if (i > run) {
            dm_buf_t tmp = DM_BUF_INIT;
            dm_buf_json_string(&tmp, s + run, i - run);
            dm_buf_append(out, tmp.data + 1, tmp.len - 2); /* without its quotes */
            dm_buf_free(&tmp);
        }
        dm_buf_printf(out, "\\u%04x", cp);
        i += w;
        run = i;
    }
    if (len > run) {
        dm_buf_t tmp = DM_BUF_INIT;
        dm_buf_json_string(&tmp, s + run, len - run);
        dm_buf_append(out, tmp.data + 1, tmp.len - 2);
        dm_buf_free(&tmp);
    }
    dm_buf_putc(out, '"');
}

static int s_key_cmp(const void *a, const void *b)
{
    const dm_ytree_node_t *x = **(const dm_ytree_node_t *const *const *)a;
    const dm_ytree_node_t *y = **(const dm_ytree_node_t *const *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The pairs of a mapping as pointers to their key slots, sorted by key. */
static dm_ytree_node_t *const **s_sorted_pairs(const dm_ytree_node_t *m)
{
    size_t np = dm_ytree_npairs(m);
    dm_ytree_node_t *const **p = malloc((np ? np : 1) * sizeof *p);
    if (!p)
        abort();
    for (size_t i = 0; i < np; i++)
        p[i] = &m->items[2 * i];
    qsort(p, np, sizeof *p, s_key_cmp);
    return p;
}

static void s_node(dm_buf_t *out, const dm_ytree_node_t *n)
{
    if (n->kind == DM_YNODE_SCALAR) {
        if (dm_ytree_is_null(n))
            dm_buf_puts(out, "null");
        else if (dm_ytree_is_bool(n, NULL) || dm_ytree_is_number(n))
            dm_buf_append(out, n->text, n->len);
        else
            s_str(out, n->text, n->len);
        return;
    }
    if (n->kind == DM_YNODE_SEQ) {
        dm_buf_putc(out, '[');
        for (size_t i = 0; i < n->n; i++) {
            if (i)
                dm_buf_putc(out, ',');
            s_node(out, n->items[i]);
        }
        dm_buf_putc(out, ']');
        return;
    }
    dm_ytree_node_t *const **p = s_sorted_pairs(n);
    dm_buf_putc(out, '{');
    for (size_t i = 0; i < dm_ytree_npairs(n); i++) {
        if (i)
            dm_buf_putc(out, ',');
        s_str(out, p[i][0]->text, p[i][0]->len);
        dm_buf_putc(out, ':');
        s_node(out, p[i][1]);
    }
    dm_buf_putc(out, '}');
    free(p);
}

static void s_num(dm_buf_t *out, const char *key, dm_num_t v)
{
    s_str(out, key, strlen(key));
    if (v.is_int)
        dm_buf_printf(out, ":%lld,", (long long)v.i);
    else
        dm_buf_printf(out, ":%.17g,", v.d);
}

/* One field as an inline schema entry, keys in bytewise order. */
static void s_field(dm_buf_t *out, const dm_field_t *f)
{
    dm_buf_putc(out, '{');
    if (f->classification) {
        dm_buf_puts(out, "\"classification\":");
        s_str(out, f->classification, strlen(f->classification));
        dm_buf_putc(out, ',');
    }
    if (f->description) {
        dm_buf_puts(out, "\"description\":");
        s_str(out, f->description, strlen(f->description));
        dm_buf_putc(out, ',');
    }
    if (f->has_exclusive_maximum)
        s_num(out, "exclusiveMaximum", f->exclusive_maximum);
    if (f->has_exclusive_minimum)
        s_num(out, "exclusiveMinimum", f->exclusive_minimum);
    if (f->max_length >= 0)
        dm_buf_printf(out, "\"maxLength\":%lld,", (long long)f->max_length);
    if (f->has_maximum)
        s_num(out, "maximum", f->maximum);
    if (f->min_length >= 0)
        dm_buf_printf(out, "\"minLength\":%lld,", (long long)f->min_length);
    if (f->has_minimum)
        s_num(out, "minimum", f->minimum);
    dm_buf_puts(out, "\"name\":");
    s_str(out, f->name, strlen(f->name));
    if (f->pattern) {
        dm_buf_puts(out, ",\"pattern\":");
        s_str(out, f->pattern, strlen(f->pattern));
    }
    dm_buf_printf(out, ",\"required\":%s,\"type\":\"%s\"", f->required ? "true" : "false",
                  dm_contract_ftype_name(f->type));
    if (f->type == DM_FT_ENUM) {
        dm_buf_puts(out, ",\"values\":[");
        for (size_t i = 0; i < f->nvalues; i++) {
            if (i)
                dm_buf_putc(out, ',');
            s_str(out, f->values[i], strlen(f->values[i]));
        }
        dm_buf_putc(out, ']');
    }
    dm_buf_putc(out, '}');
}

/* spec.schema of an avro contract as the equivalent inline schema: the
 * written keys except type and location (primaryKey, x- keys), plus fields
 * and type: inline, all in bytewise key order. */
static void s_avro_schema(dm_buf_t *out, const dm_contract_t *c, const dm_ytree_node_t *schema)
{
    dm_ytree_node_t *const **p = s_sorted_pairs(schema);
    size_t np = dm_ytree_npairs(schema);
    bool fields_done = false, type_done = false, first = true;
    dm_buf_putc(out, '{');
    for (size_t i = 0; i <= np; i++) {
        const char *k = i < np ? p[i][0]->text : NULL;
        if (k && (strcmp(k, "type") == 0 || strcmp(k, "location") == 0))
            continue;
        if (!fields_done && (!k || strcmp("fields", k) < 0)) {
            dm_buf_puts(out, first ? "\"fields\":[" : ",\"fields\":[");
            for (size_t j = 0; j < c->nfields; j++) {
                if (j)
                    dm_buf_putc(out, ',');
                s_field(out, &c->fields[j]);
            }
            dm_buf_putc(out, ']');
            fields_done = true;
            first = false;
        }
        if (!type_done && (!k || strcmp("type", k) < 0)) {
            dm_buf_puts(out, first ? "\"type\":\"inline\"" : ",\"type\":\"inline\"");
            type_done = true;
            first = false;
        }
        if (!k)
            break;
        if (!first)
            dm_buf_putc(out, ',');
        s_str(out, p[i][0]->text, p[i][0]->len);
        dm_buf_putc(out, ':');
        s_node(out, p[i][1]);
        first = false;
    }
    dm_buf_putc(out, '}');
    free(p);
}

enum { S_AT_ROOT, S_AT_SPEC };

/* The root or spec mapping, with spec.schema replaced for avro contracts. */
static void s_top(dm_buf_t *out, const dm_contract_t *c, const dm_ytree_node_t *m, int at)
{
    dm_ytree_node_t *const **p = s_sorted_pairs(m);
    dm_buf_putc(out, '{');
    for (size_t i = 0; i < dm_ytree_npairs(m); i++) {
        const dm_ytree_node_t *k = p[i][0], *v = p[i][1];
        if (i)
            dm_buf_putc(out, ',');
        s_str(out, k->text, k->len);
        dm_buf_putc(out, ':');
        if (at == S_AT_ROOT && strcmp(k->text, "spec") == 0 && v->kind == DM_YNODE_MAP)
            s_top(out, c, v, S_AT_SPEC);
        else if (at == S_AT_SPEC && strcmp(k->text, "schema") == 0 && c->schema_from_avro &&
                 v->kind == DM_YNODE_MAP)
            s_avro_schema(out, c, v);
        else
            s_node(out, v);
    }
    dm_buf_putc(out, '}');
    free(p);
}

void dm_contract_canonical(const dm_contract_t *c, dm_buf_t *out)
{
    const dm_ytree_doc_t *doc = c->tree;
    if (!doc || !doc->root) {
        dm_buf_puts(out, "null");
        return;
    }
    if (doc->root->kind == DM_YNODE_MAP)
        s_top(out, c, doc->root, S_AT_ROOT);
    else
        s_node(out, doc->root);
}

void dm_contract_hash(const dm_contract_t *c, uint8_t out[DM_CONTRACT_HASH_BYTES])
{
    dm_buf_t b = DM_BUF_INIT;
    dm_contract_canonical(c, &b);
    crypto_hash_sha256(out, (const unsigned char *)(b.data ? b.data : ""), b.len);
    dm_buf_free(&b);
}
