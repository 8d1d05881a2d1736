/* contract_schema.c: spec.schema -> fields and primary key.
 *
 * An inline schema lists its fields; an avro schema names a local .avsc
 * file read through avro.c. Constraints are checked for applicability (a
 * minimum on a string is an error naming the type) and consistency
 * (minimum <= maximum, patterns compile). */
#include "contract/contract_priv.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/avro.h"
#include "contract/pattern.h"

#define S_LIST_FIELDS_MAX 20  /* list the schema's fields in messages up to this many */
#define S_PATTERN_QUOTE_MAX 64 /* bytes of a refused pattern quoted in its diagnostic */

static const char *const s_types[DM_FT__COUNT] = {"string", "int",  "double", "boolean",
                                                   "timestamp", "date", "uuid", "enum"};

int dm_contract__field_index(const dm_contract__cx_t *cx, const char *name)
{
    size_t i = dm_sidx_find(&cx->fields, name, strlen(name));
    return i == DM_SIDX_NONE ? -1 : (int)i;
}

long dm_contract__enum_index(dm_contract__cx_t *cx, const dm_contract_t *c, size_t fi, const char *t)
{
    if (!cx->enums) {
        cx->enums = calloc(c->nfields ? c->nfields : 1, sizeof *cx->enums);
        if (!cx->enums)
            abort();
        cx->nenums = c->nfields;
    }
    dm_sidx_t *x = &cx->enums[fi];
    const dm_field_t *f = &c->fields[fi];
    if (!x->e && f->nvalues) {
        for (size_t k = 0; k < f->nvalues; k++)
            dm_sidx_add(x, f->values[k], strlen(f->values[k]), k);
        dm_sidx_sort(x);
    }
    size_t k = dm_sidx_find(x, t, strlen(t));
    return k == DM_SIDX_NONE ? -1 : (long)k;
}

/* Builds cx->fields over c's fields; with names (the name node of each
 * field, inline schemas), reports every later declaration of a name. */
static void s_index_fields(dm_contract__cx_t *cx, const dm_contract_t *c, const dm_ytree_node_t *const *names)
{
    dm_sidx_free(&cx->fields);
    for (size_t i = 0; i < c->nfields; i++)
        dm_sidx_add(&cx->fields, c->fields[i].name, strlen(c->fields[i].name), i);
    dm_sidx_sort(&cx->fields);
    size_t first = 0;
    for (size_t i = 1; names && i < cx->fields.n; i++) {
        if (!dm_sidx_dup(&cx->fields, i)) {
            first = i;
            continue;
        }
        const dm_field_t *f = &c->fields[cx->fields.e[i].pos];
        if (dm_contract__is_field_name(f->name))
            dm_contract__err(cx, names[cx->fields.e[i].pos],
                      "duplicate field name '%s' (first declared at line %u)", f->name,
                      c->fields[cx->fields.e[first].pos].line);
    }
}

int dm_contract__column(dm_contract__cx_t *cx, const dm_contract_t *c, const dm_ytree_node_t *n, const char *what)
{
    if (n->kind != DM_YNODE_SCALAR || dm_ytree_is_null(n)) {
        dm_contract__err(cx, n, "%s: expected a field name, got %s", what, dm_contract__kind(n));
        return -1;
    }
    int i = dm_contract__field_index(cx, n->text);
    if (i >= 0 || c->nfields == 0) /* no fields: the schema's own error says why */
        return i;
    if (dm_contract__full(cx)) {
        dm_contract__err(cx, n, "%s", "");
        return -1;
    }
    dm_buf_t msg = DM_BUF_INIT;
    dm_buf_printf(&msg, "%s '%s' is not a field of the schema", what, n->text);
    if (c->nfields <= S_LIST_FIELDS_MAX) {
        dm_buf_puts(&msg, " (fields: ");
        for (size_t k = 0; k < c->nfields; k++)
            dm_buf_printf(&msg, "%s%s", k ? ", " : "", c->fields[k].name);
        dm_buf_putc(&msg, ')');
    }
    if (dm_contract__suggest_afford(cx, n->text, c->nfields)) {
        const char **names = malloc(c->nfields * sizeof *names);
        if (!names)
            abort();
        for (size_t k = 0; k < c->nfields; k++)
            names[k] = c->fields[k].name;
        const char *near = dm_contract__suggest(n->text, names, c->nfields);
        if (near)
            dm_buf_printf(&msg, " (did you mean '%s'?)", near);
        free(names);
    }
    dm_contract__err(cx, n, "%s", msg.data);
    dm_buf_free(&msg);
    return -1;
}

bool dm_contract__regex_ok(dm_contract__cx_t *cx, const dm_ytree_node_t *n, const char *what, const char *pattern)
{
    dm_buf_t why = DM_BUF_INIT;
    dm_pattern_info_t info;
    if (dm_pattern_check(pattern, &info, &why) != DM_OK) {
        bool cut = strlen(pattern) > S_PATTERN_QUOTE_MAX;
        dm_contract__err(cx, n,
                  "%s '%.*s%s' is not a valid POSIX extended regular expression within the "
                  "limits of a contract: %s (a contract pattern has at most %d bytes, no "
                  "backreferences, repetitions nested at most %d deep, bounds {m,n} up to %d, "
                  "and at most %d atoms once every repetition is expanded)",
                  what, S_PATTERN_QUOTE_MAX, pattern, cut ? "..." : "", why.data,
                  DM_PATTERN_MAX_LEN, DM_PATTERN_MAX_DEPTH, DM_PATTERN_MAX_BOUND,
                  DM_PATTERN_MAX_COST);
        dm_buf_free(&why);
        return false;
    }
    cx->pattern_cost += info.cost;
    if (cx->pattern_cost > DM_PATTERN_MAX_TOTAL) {
        dm_contract__err(cx, n,
                  "%s: the patterns of this contract expand to %llu atoms so far; at most %d "
                  "are allowed in one contract (each value is matched against its patterns, so "
                  "they bound the work per record byte): use fewer or simpler patterns",
                  what, (unsigned long long)cx->pattern_cost, DM_PATTERN_MAX_TOTAL);
        return false;
    }
    if (cx->flags & DM_CONTRACT_NO_COMPILE)
        return true;
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc == 0) {
        regfree(&re);
        return true;
    }
    char err[128];
    regerror(rc, &re, err, sizeof err);
    dm_contract__err(cx, n, "%s '%s' is not a valid POSIX extended regular expression: %s", what,
              pattern, err);
    return false;
}

static void s_values(dm_contract__cx_t *cx, dm_field_t *f, const dm_ytree_node_t *v, const char *label)
{
    if (!dm_contract__seq(cx, v, label))
        return;
    if (v->n == 0) {
        dm_contract__err(cx, v, "%s must list at least one value", label);
        return;
    }
    if (v->n > DM_CONTRACT_MAX_VALUES) {
        dm_contract__err(cx, v, "%s lists %zu values; an enum field has at most %d (the limit "
                         "DM_CONTRACT_MAX_VALUES)", label, v->n, DM_CONTRACT_MAX_VALUES);
        return;
    }
    f->values = calloc(v->n, sizeof *f->values);
    const dm_ytree_node_t **at = calloc(v->n, sizeof *at);
    if (!f->values || !at)
        abort();
    for (size_t i = 0; i < v->n; i++) {
        char *s;
        if (!dm_contract__str(cx, v->items[i], label, &s))
            continue;
        if (!s[0])
            dm_contract__err(cx, v->items[i], "%s: a value must not be empty", label);
        at[f->nvalues] = v->items[i];
        f->values[f->nvalues++] = s;
    }
    /* duplicates by sorting: pairwise comparison is quadratic in values */
    dm_sidx_t x = DM_SIDX_INIT;
    for (size_t i = 0; i < f->nvalues; i++)
        dm_sidx_add(&x, f->values[i], strlen(f->values[i]), i);
    dm_sidx_sort(&x);
    for (size_t i = 1; i < x.n; i++)
        if (x.e[i].len && dm_sidx_dup(&x, i))
            dm_contract__err(cx, at[x.e[i].pos], "%s: duplicate value '%s'", label, x.e[i].s);
    dm_sidx_free(&x);
    free(at);
}

/* Reads one of minimum/maximum/exclusiveMinimum/exclusiveMaximum. */
static const dm_ytree_node_t *s_bound(dm_contract__cx_t *cx, const dm_ytree_node_t *m, dm_field_t *f, bool type_ok,
                                 const char *key, const char *fname, bool *has, dm_num_t *out)
{
    const dm_ytree_node_t *v = dm_ytree_get(m, key);
    if (!v)
        return NULL;
    char what[DM_CONTRACT_FIELD_NAME_MAX + 64];
    snprintf(what, sizeof what, "field '%s': %s", fname, key);
    if (type_ok && f->type != DM_FT_INT && f->type != DM_FT_DOUBLE) {
        dm_contract__err(cx, v, "%s applies only to int and double fields, not %s", what,
                  s_types[f->type]);
        return NULL;
    }
    if (type_ok && f->type == DM_FT_INT) {
        int64_t i;
        if (!dm_contract__int(cx, v, what, &i))
            return NULL;
        *out = (dm_num_t){true, i, (double)i};
    } else if (!dm_contract__num(cx, v, what, out)) {
        return NULL;
    }
    *has = true;
    return v;
}

static void s_bounds(dm_contract__cx_t *cx, const dm_ytree_node_t *m, dm_field_t *f, bool type_ok)
{
    const char *nm = f->name;
    const dm_ytree_node_t *mn = s_bound(cx, m, f, type_ok, "minimum", nm, &f->has_minimum, &f->minimum);
    const dm_ytree_node_t *mx = s_bound(cx, m, f, type_ok, "maximum", nm, &f->has_maximum, &f->maximum);
    const dm_ytree_node_t *emn = s_bound(cx, m, f, type_ok, "exclusiveMinimum", nm,
                                    &f->has_exclusive_minimum, &f->exclusive_minimum);
    const dm_ytree_node_t *emx = s_bound(cx, m, f, type_ok, "exclusiveMaximum", nm,
                                    &f->has_exclusive_maximum, &f->exclusive_maximum);
    if (mn && mx && dm_contract__num_cmp(f->minimum, f->maximum) > 0)
        dm_contract__err(cx, mx, "field '%s': maximum %s is less than minimum %s", nm, mx->text, mn->text);
    if (emn && emx && dm_contract__num_cmp(f->exclusive_minimum, f->exclusive_maximum) >= 0)
        dm_contract__err(cx, emx, "field '%s': exclusiveMaximum %s must be greater than exclusiveMinimum %s",
                  nm, emx->text, emn->text);
    if (mn && emx && dm_contract__num_cmp(f->minimum, f->exclusive_maximum) >= 0)
        dm_contract__err(cx, emx, "field '%s': exclusiveMaximum %s must be greater than minimum %s", nm,
                  emx->text, mn->text);
    if (emn && mx && dm_contract__num_cmp(f->exclusive_minimum, f->maximum) >= 0)
        dm_contract__err(cx, mx, "field '%s': maximum %s must be greater than exclusiveMinimum %s", nm,
                  mx->text, emn->text);
}

static void s_lengths(dm_contract__cx_t *cx, const dm_ytree_node_t *m, dm_field_t *f, bool type_ok)
{
    static const char *const keys[] = {"minLength", "maxLength"};
    const dm_ytree_node_t *at[2] = {NULL, NULL};
    int64_t *dst[2] = {&f->min_length, &f->max_length};
    for (int k = 0; k < 2; k++) {
        const dm_ytree_node_t *v = dm_ytree_get(m, keys[k]);
        if (!v)
            continue;
        char what[DM_CONTRACT_FIELD_NAME_MAX + 64];
        snprintf(what, sizeof what, "field '%s': %s", f->name, keys[k]);
        int64_t i;
        if (type_ok && f->type != DM_FT_STRING) {
            dm_contract__err(cx, v, "%s applies only to string fields, not %s", what, s_types[f->type]);
        } else if (dm_contract__int(cx, v, what, &i)) {
            if (i < 0) {
                dm_contract__err(cx, v, "%s must be zero or more, got %s", what, v->text);
            } else {
                *dst[k] = i;
                at[k] = v;
            }
        }
    }
    if (at[0] && at[1] && f->min_length > f->max_length)
        dm_contract__err(cx, at[1], "field '%s': maxLength %s is less than minLength %s", f->name,
                  at[1]->text, at[0]->text);
    const dm_ytree_node_t *p = dm_ytree_get(m, "pattern");
    if (!p)
        return;
    char what[DM_CONTRACT_FIELD_NAME_MAX + 64];
    snprintf(what, sizeof what, "field '%s': pattern", f->name);
    if (type_ok && f->type != DM_FT_STRING)
        dm_contract__err(cx, p, "%s applies only to string fields, not %s", what, s_types[f->type]);
    else if (dm_contract__str(cx, p, what, &f->pattern))
        (void)dm_contract__regex_ok(cx, p, what, f->pattern);
}

/* Reads one field mapping; returns false if it has no usable name. *name
 * is its name node (duplicates are found once all are read). */
static bool s_field(dm_contract__cx_t *cx, const dm_ytree_node_t *m, size_t idx, dm_field_t *f,
                    const dm_ytree_node_t **name)
{
    static const char *const keys[] = {"name", "type", "required", "description", "values",
                                       "minimum", "maximum", "exclusiveMinimum",
                                       "exclusiveMaximum", "minLength", "maxLength", "pattern",
                                       "classification", NULL};
    char label[DM_CONTRACT_FIELD_NAME_MAX + 64];
    snprintf(label, sizeof label, "spec.schema.fields[%zu]", idx);
    memset(f, 0, sizeof *f);
    f->min_length = f->max_length = -1;
    f->line = m->line;
    f->col = m->col;
    if (!dm_contract__map(cx, m, label, keys))
        return false;
    const dm_ytree_node_t *v = dm_contract__need(cx, m, "name", label);
    if (!v || !dm_contract__str(cx, v, "field name", &f->name))
        return false;
    *name = v;
    if (!dm_contract__is_field_name(f->name))
        dm_contract__err(cx, v,
                  "field name '%s' must match ^[A-Za-z_][A-Za-z0-9_]{0,127}$ (a letter or '_', "
                  "then up to 127 letters, digits or '_')",
                  f->name);
    snprintf(label, sizeof label, "field '%s'", f->name);
    bool type_ok = false;
    if ((v = dm_contract__need(cx, m, "type", label))) {
        char what[DM_CONTRACT_FIELD_NAME_MAX + 64];
        snprintf(what, sizeof what, "field '%s': type", f->name);
        int t = dm_contract__choice(cx, v, what, s_types, DM_FT__COUNT);
        type_ok = t >= 0;
        f->type = type_ok ? (dm_ftype)t : DM_FT_STRING;
    }
    if ((v = dm_ytree_get(m, "required")))
        (void)dm_contract__bool(cx, v, "required", &f->required);
    if ((v = dm_ytree_get(m, "description")))
        (void)dm_contract__str(cx, v, "description", &f->description);
    if ((v = dm_ytree_get(m, "classification")) &&
        dm_contract__str(cx, v, "classification", &f->classification) &&
        !dm_text_is_name(f->classification)) {
        dm_contract__err(cx, v, "field '%s': classification '%.80s' is not a name: it must match "
                                DM_TEXT_NAME_RULE " (e.g. pii, confidential)", f->name, f->classification);
        free(f->classification);
        f->classification = NULL;
    }
    char what[DM_CONTRACT_FIELD_NAME_MAX + 64];
    snprintf(what, sizeof what, "field '%s': values", f->name);
    v = dm_ytree_get(m, "values");
    if (type_ok && f->type == DM_FT_ENUM && !v)
        dm_contract__err(cx, m, "field '%s' is an enum and needs 'values', the list of its allowed values",
                  f->name);
    else if (v && type_ok && f->type != DM_FT_ENUM)
        dm_contract__err(cx, v, "%s applies only to enum fields, not %s", what, s_types[f->type]);
    else if (v)
        s_values(cx, f, v, what);
    s_bounds(cx, m, f, type_ok);
    s_lengths(cx, m, f, type_ok);
    return true;
}

static void s_fields(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *seq)
{
    if (!dm_contract__seq(cx, seq, "spec.schema.fields"))
        return;
    if (seq->n == 0) {
        dm_contract__err(cx, seq, "spec.schema.fields must list at least one field");
        return;
    }
    if (seq->n > DM_CONTRACT_MAX_FIELDS) {
        dm_contract__err(cx, seq, "spec.schema.fields lists %zu fields; a contract has at most %d (the "
                           "limit DM_CONTRACT_MAX_FIELDS)", seq->n, DM_CONTRACT_MAX_FIELDS);
        return;
    }
    c->fields = calloc(seq->n, sizeof *c->fields);
    const dm_ytree_node_t **names = calloc(seq->n, sizeof *names);
    if (!c->fields || !names)
        abort();
    for (size_t i = 0; i < seq->n; i++) {
        dm_field_t f;
        if (s_field(cx, seq->items[i], i, &f, &names[c->nfields]))
            c->fields[c->nfields++] = f;
        else
            dm_contract__field_free(&f);
    }
    s_index_fields(cx, c, names);
    free(names);
}

static void s_pk(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *v)
{
    const dm_ytree_node_t *const *items = (const dm_ytree_node_t *const *)&v;
    size_t n = 1;
    if (v->kind == DM_YNODE_SEQ) {
        items = (const dm_ytree_node_t *const *)v->items;
        n = v->n;
        if (n == 0) {
            dm_contract__err(cx, v, "spec.schema.primaryKey must name at least one field");
            return;
        }
    }
    c->pk = calloc(n, sizeof *c->pk);
    bool *named = calloc(c->nfields, sizeof *named); /* fields named so far */
    if (!c->pk || !named)
        abort();
    for (size_t i = 0; i < n; i++) {
        int k = dm_contract__column(cx, c, items[i], "primaryKey field");
        if (k < 0)
            continue;
        dm_field_t *f = &c->fields[k];
        if (named[k]) {
            dm_contract__err(cx, items[i], "primaryKey names field '%s' twice", f->name);
            continue;
        }
        if (f->type == DM_FT_DOUBLE || f->type == DM_FT_BOOLEAN) {
            dm_contract__err(cx, items[i],
                      "primaryKey field '%s' is %s; a primary key field must be string, int, "
                      "timestamp, date, uuid or enum (doubles compare unreliably, a boolean key "
                      "holds at most two rows)",
                      f->name, s_types[f->type]);
            continue;
        }
        f->primary_key = true;
        f->required = true;
        named[k] = true;
        c->pk[c->npk++] = (size_t)k;
    }
    free(named);
}

/* A primary-key field written with "required: false" contradicts itself. */
static void s_pk_required(dm_contract__cx_t *cx, const dm_contract_t *c, const dm_ytree_node_t *fields)
{
    if (!fields || fields->kind != DM_YNODE_SEQ)
        return;
    for (size_t i = 0; i < fields->n; i++) {
        const dm_ytree_node_t *m = fields->items[i];
        const dm_ytree_node_t *name = dm_ytree_get(m, "name"), *req = dm_ytree_get(m, "required");
        bool b;
        if (!name || !req || !dm_ytree_is_bool(req, &b) || b || name->kind != DM_YNODE_SCALAR)
            continue;
        int k = dm_contract__field_index(cx, name->text);
        if (k >= 0 && c->fields[k].primary_key)
            dm_contract__err(cx, req,
                      "field '%s' is in primaryKey, so it is required; remove 'required: false'",
                      name->text);
    }
}

static void s_avro(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *loc)
{
    if (!dm_contract__str(cx, loc, "spec.schema.location", &c->schema_location))
        return;
    const char *l = c->schema_location;
    if (strstr(l, "://")) {
        dm_contract__err(cx, loc,
                  "spec.schema.location '%s' is remote; remote schemas are not fetched: use a "
                  "local .avsc path relative to this file, or an inline schema (type: inline "
                  "with fields)",
                  l);
        return;
    }
    if (!cx->basedir) {
        dm_contract__err(cx, loc,
                  "spec.schema.location '%s': avro schemas are resolved by the client; send the "
                  "canonical contract (inline schema)",
                  l);
        return;
    }
    if (!l[0]) {
        dm_contract__err(cx, loc, "spec.schema.location must not be empty");
        return;
    }
    dm_buf_t path = DM_BUF_INIT;
    if (l[0] != '/')
        dm_buf_printf(&path, "%s/", cx->basedir);
    dm_buf_puts(&path, l);
    size_t before = cx->diags->count;
    dm_err rc = dm_avro_fields(path.data, l, cx->file, loc->line, loc->col, cx->diags, &c->fields,
                               &c->nfields);
    dm_buf_free(&path);
    if (rc != DM_OK) {
        size_t added = cx->diags->count - before;
        cx->errors += added ? added : 1;
        return;
    }
    c->schema_from_avro = true;
    s_index_fields(cx, c, NULL); /* avro.c reported duplicates */
}

void dm_contract__schema(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *s)
{
    static const char *const keys[] = {"type", "location", "fields", "primaryKey", NULL};
    static const char *const types[] = {"inline", "avro"};
    if (!dm_contract__map(cx, s, "spec.schema", keys))
        return;
    const dm_ytree_node_t *t = dm_ytree_get(s, "type");
    int type = t ? dm_contract__choice(cx, t, "spec.schema.type", types, 2) : 0;
    const dm_ytree_node_t *loc = dm_ytree_get(s, "location"), *fields = dm_ytree_get(s, "fields");
    if (type == 1) {
        if (fields)
            dm_contract__err(cx, fields, "spec.schema.fields does not apply to an avro schema (its fields "
                                  "come from the .avsc file named by location)");
        if ((loc = dm_contract__need(cx, s, "location", "spec.schema (type: avro)")))
            s_avro(cx, c, loc);
    } else {
        if (loc && type == 0)
            dm_contract__err(cx, loc, "spec.schema.location applies only to type: avro; an inline "
                               "schema lists its fields");
        if (type == 0 && (fields = dm_contract__need(cx, s, "fields", "spec.schema")))
            s_fields(cx, c, fields);
        else if (type < 0 && fields)
            s_fields(cx, c, fields); /* still check the fields */
    }
    const dm_ytree_node_t *pk = dm_ytree_get(s, "primaryKey");
    if (pk && c->nfields) {
        s_pk(cx, c, pk);
        if (!c->schema_from_avro)
            s_pk_required(cx, c, fields);
    }
}
