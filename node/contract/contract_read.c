/* contract_read.c: the contract parser's helpers declared in contract_priv.h:
 * a diagnostic at a node, typed reads of YAML nodes, the current
 * document's indexes, and the parser's "did you mean" (base/text.h's rule,
 * with a synonym list and a per-file budget). Plain vs quoted matters: 99.9
 * is a number and "99.9" a string; true/false are booleans only when plain. */
#include "contract/contract_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/types.h"

bool dm_contract__full(const dm_contract__cx_t *cx) { return cx->diags->count >= DM_DIAGS_MAX; }

void dm_contract__err(dm_contract__cx_t *cx, const dm_ytree_node_t *at, const char *fmt, ...)
{
    if (dm_contract__full(cx)) { /* counted, not kept: skip the formatting */
        cx->errors++;
        return;
    }
    dm_buf_t b = DM_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0) {
        dm_buf_reserve(&b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b.data, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b.len = (size_t)n;
    }
    dm_diags_add(cx->diags, cx->file, at ? at->line : 0, at ? at->col : 0, "%s",
                 b.data ? b.data : "");
    dm_buf_free(&b);
    cx->errors++;
}

/* Common spellings of contract words that edit distance does not catch. */
static const char *const s_synonyms[][2] = {
    {"integer", "int"},   {"long", "int"},         {"float", "double"},
    {"number", "double"}, {"bool", "boolean"},     {"datetime", "timestamp"},
    {"text", "string"},   {"str", "string"},       {"aes", "aes-256"},
};

static bool s_in_cands(const char *s, const char *const *cands, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, cands[i]) == 0)
            return true;
    return false;
}

const char *dm_contract__suggest(const char *word, const char *const *cands, size_t n)
{
    for (size_t i = 0; i < sizeof s_synonyms / sizeof s_synonyms[0]; i++)
        if (strcmp(word, s_synonyms[i][0]) == 0 && s_in_cands(s_synonyms[i][1], cands, n))
            return s_synonyms[i][1];
    return dm_text_suggest(word, cands, n);
}

bool dm_contract__suggest_afford(dm_contract__cx_t *cx, const char *word, size_t n)
{
    if (strnlen(word, DM_TEXT_WORD_MAX + 1) > DM_TEXT_WORD_MAX || dm_contract__full(cx))
        return false;
    uint64_t cost = (uint64_t)n * dm_text_cost(word);
    if (cost > DM_CONTRACT_SUGGEST_BUDGET - cx->suggest_cells)
        return false;
    cx->suggest_cells += cost;
    return true;
}

void dm_contract__suggest_put(dm_contract__cx_t *cx, dm_buf_t *out, const char *word, const char *const *cands,
                       size_t n)
{
    if (!dm_contract__suggest_afford(cx, word, n))
        return;
    const char *s = dm_contract__suggest(word, cands, n);
    if (s)
        dm_buf_printf(out, " (did you mean '%s'?)", s);
}

const char *dm_contract__kind(const dm_ytree_node_t *n)
{
    if (n->kind == DM_YNODE_MAP)
        return "a mapping";
    if (n->kind == DM_YNODE_SEQ)
        return "a sequence";
    if (dm_ytree_is_null(n))
        return "nothing (null)";
    if (dm_ytree_is_bool(n, NULL))
        return "a boolean";
    if (dm_ytree_is_number(n))
        return "a number";
    return "a string";
}

bool dm_contract__map(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, const char *const *allowed)
{
    if (n->kind != DM_YNODE_MAP) {
        dm_contract__err(cx, n, "%s must be a mapping, got %s", what, dm_contract__kind(n));
        return false;
    }
    size_t na = 0;
    while (allowed[na])
        na++;
    for (size_t i = 0; i < dm_ytree_npairs(n); i++) {
        const dm_ytree_node_t *k = n->items[2 * i];
        if (strncmp(k->text, "x-", 2) == 0)
            continue;
        size_t j;
        for (j = 0; j < na; j++)
            if (strcmp(k->text, allowed[j]) == 0)
                break;
        if (j < na)
            continue;
        dm_buf_t msg = DM_BUF_INIT;
        dm_buf_printf(&msg, "unknown key '%s' in %s (valid: ", k->text, what);
        for (j = 0; j < na; j++)
            dm_buf_printf(&msg, "%s%s", j ? ", " : "", allowed[j]);
        dm_buf_puts(&msg, "; or an x- extension key)");
        dm_contract__suggest_put(cx, &msg, k->text, allowed, na);
        dm_contract__err(cx, k, "%s", msg.data);
        dm_buf_free(&msg);
    }
    return true;
}

const dm_ytree_node_t *dm_contract__need(dm_contract__cx_t *cx, const dm_ytree_node_t *map, const char *key,
                             const char *what)
{
    const dm_ytree_node_t *v = dm_ytree_get(map, key);
    if (!v)
        dm_contract__err(cx, map, "%s is missing the required key '%s'", what, key);
    return v;
}

bool dm_contract__seq(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what)
{
    if (n->kind == DM_YNODE_SEQ)
        return true;
    dm_contract__err(cx, n, "%s must be a sequence (a YAML list), got %s", what, dm_contract__kind(n));
    return false;
}

bool dm_contract__str(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, char **out)
{
    if (n->kind != DM_YNODE_SCALAR || dm_ytree_is_null(n)) {
        dm_contract__err(cx, n, "%s: expected a string, got %s", what, dm_contract__kind(n));
        return false;
    }
    *out = dm_contract__strdup(n->text);
    return true;
}

bool dm_contract__bool(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, bool *out)
{
    if (dm_ytree_is_bool(n, out))
        return true;
    if (n->kind == DM_YNODE_SCALAR && !n->plain)
        dm_contract__err(cx, n, "%s: expected true or false, got the string \"%s\" (remove the quotes)",
                  what, n->text);
    else if (n->kind == DM_YNODE_SCALAR && !dm_ytree_is_null(n))
        dm_contract__err(cx, n, "%s: expected true or false, got '%s'", what, n->text);
    else
        dm_contract__err(cx, n, "%s: expected true or false, got %s", what, dm_contract__kind(n));
    return false;
}

static bool s_not_number(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, const char *kind)
{
    if (n->kind == DM_YNODE_SCALAR && !n->plain)
        dm_contract__err(cx, n, "%s: expected %s, got the string \"%s\" (remove the quotes)", what, kind,
                  n->text);
    else if (n->kind == DM_YNODE_SCALAR && !dm_ytree_is_null(n))
        dm_contract__err(cx, n, "%s: expected %s, got '%s'", what, kind, n->text);
    else
        dm_contract__err(cx, n, "%s: expected %s, got %s", what, kind, dm_contract__kind(n));
    return false;
}

bool dm_contract__num(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, dm_num_t *out)
{
    if (!dm_ytree_is_number(n))
        return s_not_number(cx, n, what, "a number");
    dm_num_t v = {false, 0, 0};
    bool written_int = !strpbrk(n->text, ".eE");
    if (written_int && dm_types_int_parse(n->text, n->len, &v.i)) {
        v.is_int = true;
        v.d = (double)v.i;
    } else if (!dm_types_double_parse(n->text, n->len, &v.d)) {
        dm_contract__err(cx, n, "%s: the number %s is out of range", what, n->text);
        return false;
    }
    *out = v;
    return true;
}

bool dm_contract__int(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, int64_t *out)
{
    if (!dm_ytree_is_number(n))
        return s_not_number(cx, n, what, "an integer");
    if (!dm_types_int_parse(n->text, n->len, out)) {
        dm_contract__err(cx, n, "%s: expected an integer between %lld and %lld, got %s", what,
                  (long long)INT64_MIN, (long long)INT64_MAX, n->text);
        return false;
    }
    return true;
}

bool dm_contract__duration(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, int64_t *ms)
{
    if (n->kind != DM_YNODE_SCALAR || dm_ytree_is_null(n)) {
        dm_contract__err(cx, n, "%s: expected a duration such as 30s, 5m, 1h, 7d or PT5M, got %s", what,
                  dm_contract__kind(n));
        return false;
    }
    int64_t v;
    if (!dm_contract_duration_parse(n->text, n->len, &v)) {
        dm_contract__err(cx, n,
                  "%s: '%s' is not a duration (an integer with a unit ms, s, m, h, d, w, y such "
                  "as 30s or 5m, or ISO 8601 such as PT5M or P1Y)",
                  what, n->text);
        return false;
    }
    if (v <= 0) {
        dm_contract__err(cx, n, "%s: the duration must be greater than zero, got '%s'", what, n->text);
        return false;
    }
    *ms = v;
    return true;
}

int dm_contract__choice(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, const char *const *names,
                 size_t count)
{
    if (n->kind == DM_YNODE_SCALAR && !dm_ytree_is_null(n)) {
        for (size_t i = 0; i < count; i++)
            if (strcmp(n->text, names[i]) == 0)
                return (int)i;
    }
    dm_buf_t msg = DM_BUF_INIT;
    if (n->kind == DM_YNODE_SCALAR && !dm_ytree_is_null(n))
        dm_buf_printf(&msg, "%s '%s' is not one of ", what, n->text);
    else
        dm_buf_printf(&msg, "%s must be one of ", what);
    for (size_t i = 0; i < count; i++)
        dm_buf_printf(&msg, "%s%s", i ? ", " : "", names[i]);
    if (n->kind == DM_YNODE_SCALAR && !dm_ytree_is_null(n))
        dm_contract__suggest_put(cx, &msg, n->text, names, count);
    else
        dm_buf_printf(&msg, ", got %s", dm_contract__kind(n));
    dm_contract__err(cx, n, "%s", msg.data);
    dm_buf_free(&msg);
    return -1;
}

int dm_contract__num_cmp(dm_num_t a, dm_num_t b)
{
    if (a.is_int && b.is_int)
        return a.i < b.i ? -1 : a.i > b.i;
    return a.d < b.d ? -1 : a.d > b.d;
}

char *dm_contract__strdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

void dm_contract__contract_done(dm_contract__cx_t *cx)
{
    dm_sidx_free(&cx->fields);
    for (size_t i = 0; i < cx->nenums; i++)
        dm_sidx_free(&cx->enums[i]);
    free(cx->enums);
    cx->enums = NULL;
    cx->nenums = 0;
}

void dm_contract__field_free(dm_field_t *f)
{
    free(f->name);
    free(f->description);
    for (size_t i = 0; i < f->nvalues; i++)
        free(f->values[i]);
    free(f->values);
    free(f->pattern);
    free(f->classification);
}

bool dm_contract__is_field_name(const char *s)
{
    size_t len = strlen(s);
    if (len < 1 || len > DM_CONTRACT_FIELD_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
        if (!alpha && (i == 0 || ch < '0' || ch > '9'))
            return false;
    }
    return true;
}
