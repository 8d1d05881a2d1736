/* contract_quality.c: spec.quality.checks -> dm_check_t.
 *
 * Each rule has its own set of keys; a key of another rule is reported as
 * not applying (rather than unknown). Values are checked against the
 * column's type: an in_list value of a timestamp column must parse as a
 * timestamp, of an enum column be one of its values. */
#include "contract/contract_priv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/types.h"

#define S_LIST_VALUES_MAX 20 /* enum values quoted in a diagnostic */
#define DM_QUALITY_SCHEDULE_MIN_MS 1000 /* spec.quality.schedule's shortest period */
#define S_COMMON_KEYS "rule", "name", "description"

static const char *const s_rules[DM_CHECK__COUNT] = {
    "not_null", "in_list", "range", "regex", "unique", "row_count_delta", "freshness"};

static const char *const s_all_keys[] = {
    S_COMMON_KEYS, "column", "columns", "values", "min",  "max",    "pattern", "threshold",
    "baseline",    "over",   "max_age", "mostly", "warn", "fail",   NULL};

static const char *const s_baselines[] = {"previous", "average", "same_weekday"};

/* Keys of each rule besides the common ones, NULL-terminated. */
static const char *const s_rule_keys[DM_CHECK__COUNT][8] = {
    {"column", "mostly", "warn", "fail", NULL},
    {"column", "values", "mostly", "warn", "fail", NULL},
    {"column", "min", "max", "mostly", "warn", "fail", NULL},
    {"column", "pattern", "mostly", "warn", "fail", NULL},
    {"column", "columns", NULL},
    {"threshold", "baseline", "over", "warn", NULL},
    {"column", "max_age", NULL}};

static bool s_in(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(k, *list) == 0)
            return true;
    return false;
}

/* Reports keys that are unknown or belong to another rule (rule < 0:
 * unknown rule, only unknown keys are reported). */
static void s_keys(dm_contract__cx_t *cx, const dm_ytree_node_t *m, int rule)
{
    static const char *const common[] = {S_COMMON_KEYS, NULL};
    size_t nall = sizeof s_all_keys / sizeof s_all_keys[0] - 1;
    for (size_t i = 0; i < dm_ytree_npairs(m); i++) {
        const dm_ytree_node_t *k = m->items[2 * i];
        if (strncmp(k->text, "x-", 2) == 0 || s_in(k->text, common))
            continue;
        if (!s_in(k->text, s_all_keys)) {
            dm_buf_t msg = DM_BUF_INIT;
            dm_buf_printf(&msg, "unknown key '%s' in a quality check (valid: ", k->text);
            for (size_t j = 0; j < nall; j++)
                dm_buf_printf(&msg, "%s%s", j ? ", " : "", s_all_keys[j]);
            dm_buf_puts(&msg, "; or an x- extension key)");
            dm_contract__suggest_put(cx, &msg, k->text, s_all_keys, nall);
            dm_contract__err(cx, k, "%s", msg.data);
            dm_buf_free(&msg);
        } else if (rule >= 0 && !s_in(k->text, s_rule_keys[rule])) {
            dm_buf_t msg = DM_BUF_INIT;
            dm_buf_printf(&msg, "'%s' does not apply to rule %s (its keys: rule", k->text,
                          s_rules[rule]);
            for (const char *const *p = s_rule_keys[rule]; *p; p++)
                dm_buf_printf(&msg, ", %s", *p);
            dm_buf_puts(&msg, ", name, description)");
            dm_contract__err(cx, k, "%s", msg.data);
            dm_buf_free(&msg);
        }
    }
}

/* Checks that v is a valid value of field f; what names it in messages. */
static bool s_typed_value(dm_contract__cx_t *cx, const dm_contract_t *c, const dm_field_t *f,
                          const dm_ytree_node_t *v, const char *what)
{
    if (v->kind != DM_YNODE_SCALAR || dm_ytree_is_null(v)) {
        dm_contract__err(cx, v, "%s: expected a %s value, got %s", what, dm_contract_ftype_name(f->type),
                  dm_contract__kind(v));
        return false;
    }
    int64_t i;
    double d;
    int32_t days;
    uint8_t uuid[DM_UUID_BYTES];
    const char *t = v->text;
    switch (f->type) {
    case DM_FT_STRING:
        return true;
    case DM_FT_INT:
        return dm_contract__int(cx, v, what, &i);
    case DM_FT_DOUBLE:
        if (!dm_ytree_is_number(v) || !dm_types_double_parse(t, v->len, &d)) {
            dm_num_t n;
            return dm_contract__num(cx, v, what, &n);
        }
        return true;
    case DM_FT_BOOLEAN: {
        bool b;
        return dm_contract__bool(cx, v, what, &b);
    }
    case DM_FT_TIMESTAMP:
        switch (dm_types_timestamp_check(t, v->len, &i)) {
        case DM_TS_OK: return true;
        case DM_TS_RANGE:
            dm_contract__err(cx, v, "%s '%s' is outside the timestamp range "
                             DM_TIMESTAMP_RANGE_TEXT " once its offset is applied", what, t);
            return false;
        default: break;
        }
        dm_contract__err(cx, v, "%s '%s' is not an RFC 3339 timestamp with an offset (such as "
                         "2024-01-31T12:00:00Z or 2024-01-31T13:00:00+01:00)", what, t);
        return false;
    case DM_FT_DATE:
        if (dm_types_date_parse(t, v->len, &days))
            return true;
        dm_contract__err(cx, v, "%s '%s' is not a date YYYY-MM-DD", what, t);
        return false;
    case DM_FT_UUID:
        if (dm_types_uuid_parse(t, v->len, uuid))
            return true;
        dm_contract__err(cx, v, "%s '%s' is not a UUID (8-4-4-4-12 hex digits)", what, t);
        return false;
    case DM_FT_ENUM:
    default:
        if (dm_contract__enum_index(cx, c, (size_t)(f - c->fields), t) >= 0)
            return true;
        if (dm_contract__full(cx)) {
            dm_contract__err(cx, v, "%s", "");
            return false;
        }
        dm_buf_t msg = DM_BUF_INIT;
        dm_buf_printf(&msg, "%s '%s' is not one of the values of enum field '%s': ", what, t,
                      f->name);
        for (size_t k = 0; k < f->nvalues && k < S_LIST_VALUES_MAX; k++)
            dm_buf_printf(&msg, "%s%s", k ? ", " : "", f->values[k]);
        if (f->nvalues > S_LIST_VALUES_MAX)
            dm_buf_printf(&msg, ", ... (%zu values)", f->nvalues);
        dm_contract__suggest_put(cx, &msg, t, (const char *const *)f->values, f->nvalues);
        dm_contract__err(cx, v, "%s", msg.data);
        dm_buf_free(&msg);
        return false;
    }
}

static void s_in_list(dm_contract__cx_t *cx, const dm_contract_t *c, dm_check_t *k, const dm_ytree_node_t *m)
{
    const dm_ytree_node_t *v = dm_contract__need(cx, m, "values", "in_list check");
    if (!v || !dm_contract__seq(cx, v, "in_list values"))
        return;
    if (v->n == 0) {
        dm_contract__err(cx, v, "in_list values must list at least one value");
        return;
    }
    if (v->n > DM_CONTRACT_MAX_VALUES) {
        dm_contract__err(cx, v, "in_list values lists %zu values; a check has at most %d (the limit "
                         "DM_CONTRACT_MAX_VALUES)", v->n, DM_CONTRACT_MAX_VALUES);
        return;
    }
    k->values = calloc(v->n, sizeof *k->values);
    const dm_ytree_node_t **at = calloc(v->n, sizeof *at);
    if (!k->values || !at)
        abort();
    const dm_field_t *f = k->field_index >= 0 ? &c->fields[k->field_index] : NULL;
    for (size_t i = 0; i < v->n; i++) {
        const dm_ytree_node_t *it = v->items[i];
        if (f && !s_typed_value(cx, c, f, it, "in_list value"))
            continue;
        if (!f && (it->kind != DM_YNODE_SCALAR || dm_ytree_is_null(it)))
            continue; /* the column error was reported already */
        at[k->nvalues] = it;
        k->values[k->nvalues++] = dm_contract__strdup(it->text);
    }
    /* duplicates by sorting (a duplicate fails the contract, so it may stay) */
    dm_sidx_t x = DM_SIDX_INIT;
    for (size_t i = 0; i < k->nvalues; i++)
        dm_sidx_add(&x, k->values[i], strlen(k->values[i]), i);
    dm_sidx_sort(&x);
    for (size_t i = 1; i < x.n; i++)
        if (dm_sidx_dup(&x, i))
            dm_contract__err(cx, at[x.e[i].pos], "in_list: duplicate value '%s'", x.e[i].s);
    dm_sidx_free(&x);
    free(at);
}

static void s_range(dm_contract__cx_t *cx, const dm_contract_t *c, dm_check_t *k, const dm_ytree_node_t *m)
{
    const dm_field_t *f = k->field_index >= 0 ? &c->fields[k->field_index] : NULL;
    const dm_ytree_node_t *mn = dm_ytree_get(m, "min"), *mx = dm_ytree_get(m, "max");
    if (f && f->type != DM_FT_INT && f->type != DM_FT_DOUBLE) {
        dm_contract__err(cx, dm_ytree_get(m, "column"),
                  "rule range needs an int or double column; '%s' is %s", f->name,
                  dm_contract_ftype_name(f->type));
        return;
    }
    if (!mn && !mx) {
        dm_contract__err(cx, m, "rule range needs min, max or both");
        return;
    }
    const dm_ytree_node_t *at[2] = {mn, mx};
    bool *has[2] = {&k->has_min, &k->has_max};
    dm_num_t *dst[2] = {&k->min, &k->max};
    const char *names[2] = {"range min", "range max"};
    for (int i = 0; i < 2; i++) {
        if (!at[i])
            continue;
        if (f && f->type == DM_FT_INT) {
            int64_t v;
            if (dm_contract__int(cx, at[i], names[i], &v)) {
                *dst[i] = (dm_num_t){true, v, (double)v};
                *has[i] = true;
            }
        } else if (dm_contract__num(cx, at[i], names[i], dst[i])) {
            *has[i] = true;
        }
    }
    if (k->has_min && k->has_max && dm_contract__num_cmp(k->min, k->max) > 0)
        dm_contract__err(cx, mx, "range max %s is less than min %s", mx->text, mn->text);
}

/* Reads a row_count_delta limit (key: threshold or warn): "20%" or a
 * positive number of rows. */
static bool s_limit(dm_contract__cx_t *cx, const dm_ytree_node_t *v, const char *key,
                    double *out, bool *is_percent)
{
    bool ok = false;
    *is_percent = false;
    if (v->kind == DM_YNODE_SCALAR && v->len > 1 && v->text[v->len - 1] == '%') {
        double d = 0;
        ok = dm_types_double_parse(v->text, v->len - 1, &d) && d > 0;
        *out = d;
        *is_percent = true;
    } else if (dm_ytree_is_number(v)) {
        ok = dm_types_double_parse(v->text, v->len, out) && *out > 0;
    }
    if (!ok)
        dm_contract__err(cx, v, "row_count_delta %s %s%s%s is neither a percentage greater than "
                         "zero (such as 20%%) nor a positive number of rows", key,
                  DM_CONTRACT__SHOWN(v));
    return ok;
}

static void s_threshold(dm_contract__cx_t *cx, dm_check_t *k, const dm_ytree_node_t *m)
{
    const dm_ytree_node_t *v = dm_contract__need(cx, m, "threshold", "row_count_delta check");
    if (v)
        (void)s_limit(cx, v, "threshold", &k->threshold, &k->threshold_is_percent);
    if ((v = dm_ytree_get(m, "warn")) && s_limit(cx, v, "warn", &k->warn, &k->warn_is_percent)) {
        k->has_warn = true;
        if (k->warn_is_percent != k->threshold_is_percent)
            dm_contract__err(cx, v, "row_count_delta warn must use the unit of its threshold "
                             "(both percentages such as 10%%, or both numbers of rows)");
        else if (k->warn >= k->threshold)
            dm_contract__err(cx, v, "row_count_delta warn %s must be below its threshold",
                             v->text);
    }
    const dm_ytree_node_t *b = dm_ytree_get(m, "baseline"), *o = dm_ytree_get(m, "over");
    if (b) {
        int i = dm_contract__choice(cx, b, "row_count_delta baseline", s_baselines, 3);
        if (i >= 0)
            k->baseline = (dm_baseline)i;
    }
    k->over = DM_CHECK_OVER_DEFAULT;
    if (o && k->baseline != DM_BASELINE_AVERAGE) {
        dm_contract__err(cx, o, "'over' applies only to baseline: average");
    } else if (o) {
        int64_t n;
        if (dm_contract__int(cx, o, "row_count_delta over", &n)) {
            if (n < 1 || n > DM_CHECK_OVER_MAX)
                dm_contract__err(cx, o, "row_count_delta over %" PRId64 " is out of range: "
                                 "between 1 and %d measurements", n, DM_CHECK_OVER_MAX);
            else
                k->over = (uint32_t)n;
        }
    }
}

/* Reads a percentage "N%" with 0 <= N <= 100 (what names the key). */
static bool s_percent(dm_contract__cx_t *cx, const dm_ytree_node_t *v, const char *what,
                      double *out)
{
    double d = 0;
    if (v->kind == DM_YNODE_SCALAR && v->len > 1 && v->text[v->len - 1] == '%' &&
        dm_types_double_parse(v->text, v->len - 1, &d) && d >= 0 && d <= 100) {
        *out = d;
        return true;
    }
    dm_contract__err(cx, v, "%s %s%s%s is not a percentage between 0%% and 100%% (such as "
                     "99%%)", what, DM_CONTRACT__SHOWN(v));
    return false;
}

/* A field check's dataset thresholds: mostly (pass rate), warn and fail
 * (failure rates). */
static void s_rates(dm_contract__cx_t *cx, dm_check_t *k, const dm_ytree_node_t *m)
{
    const dm_ytree_node_t *mo = dm_ytree_get(m, "mostly"), *w = dm_ytree_get(m, "warn"),
                          *f = dm_ytree_get(m, "fail");
    if (mo && f) {
        dm_contract__err(cx, f, "a check takes mostly (the pass rate) or fail (the failure "
                         "rate), not both: mostly: 99%% is fail: 1%%");
        return;
    }
    if (mo)
        k->has_mostly = s_percent(cx, mo, "mostly", &k->mostly);
    if (f)
        k->has_fail = s_percent(cx, f, "fail", &k->fail);
    if (w)
        k->has_warn = s_percent(cx, w, "warn", &k->warn);
    k->warn_is_percent = true;
    double fail_at = k->has_mostly ? 100 - k->mostly : k->fail;
    if (k->has_warn && (k->has_mostly || k->has_fail) && k->warn > fail_at)
        dm_contract__err(cx, w, "warn %s is above the failure rate the check fails at "
                         "(%g%%); warn must not exceed it", w->text, fail_at);
}

/* unique's column set: `column` (one) or `columns` (a list). */
static void s_unique(dm_contract__cx_t *cx, dm_contract_t *c, dm_check_t *k,
                     const dm_ytree_node_t *m)
{
    const dm_ytree_node_t *one = dm_ytree_get(m, "column"), *set = dm_ytree_get(m, "columns");
    if (one && set) {
        dm_contract__err(cx, set, "a unique check takes column or columns, not both");
        return;
    }
    if (one) {
        if (k->field_index < 0)
            return;
        k->columns = calloc(1, sizeof *k->columns);
        k->column_index = calloc(1, sizeof *k->column_index);
        if (!k->columns || !k->column_index)
            abort();
        k->columns[0] = dm_contract__strdup(k->column);
        k->column_index[0] = k->field_index;
        k->ncolumns = 1;
        return;
    }
    if (!set || !dm_contract__seq(cx, set, "unique columns"))
        return;
    if (set->n == 0 || set->n > DM_CHECK_COLUMNS_MAX) {
        dm_contract__err(cx, set, "unique columns lists %zu columns; list between 1 and %d",
                         set->n, DM_CHECK_COLUMNS_MAX);
        return;
    }
    k->columns = calloc(set->n, sizeof *k->columns);
    k->column_index = calloc(set->n, sizeof *k->column_index);
    if (!k->columns || !k->column_index)
        abort();
    for (size_t i = 0; i < set->n; i++) {
        int fi = dm_contract__column(cx, c, set->items[i], "unique column");
        if (fi < 0)
            continue;
        for (size_t j = 0; j < k->ncolumns; j++)
            if (k->column_index[j] == fi) {
                dm_contract__err(cx, set->items[i], "unique columns: '%s' is listed twice",
                                 c->fields[fi].name);
                fi = -1;
                break;
            }
        if (fi < 0)
            continue;
        k->column_index[k->ncolumns] = fi;
        k->columns[k->ncolumns++] = dm_contract__strdup(c->fields[fi].name);
    }
}

/* Reads one check; returns false if it is unusable (no known rule). */
static bool s_check(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *m, size_t idx, dm_check_t *k)
{
    char what[64];
    snprintf(what, sizeof what, "spec.quality.checks[%zu]", idx);
    memset(k, 0, sizeof *k);
    k->field_index = -1;
    k->max_age_ms = -1;
    k->line = m->line;
    k->col = m->col;
    if (m->kind != DM_YNODE_MAP) {
        dm_contract__err(cx, m, "%s must be a mapping, got %s", what, dm_contract__kind(m));
        return false;
    }
    const dm_ytree_node_t *r = dm_contract__need(cx, m, "rule", what), *v;
    int rule = r ? dm_contract__choice(cx, r, "check rule", s_rules, DM_CHECK__COUNT) : -1;
    s_keys(cx, m, rule);
    if ((v = dm_ytree_get(m, "name")))
        (void)dm_contract__str(cx, v, "check name", &k->name);
    if ((v = dm_ytree_get(m, "description")))
        (void)dm_contract__str(cx, v, "check description", &k->description);
    if (rule < 0)
        return false;
    k->rule = (dm_check_rule)rule;
    const dm_ytree_node_t *col = dm_ytree_get(m, "column");
    if (!col && rule == DM_CHECK_UNIQUE && dm_ytree_get(m, "columns")) {
        /* the column set is read below */
    } else if (!col && rule != DM_CHECK_ROW_COUNT_DELTA && rule != DM_CHECK_FRESHNESS) {
        char w[96];
        snprintf(w, sizeof w, "%s (rule %s)", what, s_rules[rule]);
        dm_contract__err(cx, m, "%s is missing the required key 'column'", w);
    } else if (col && rule != DM_CHECK_ROW_COUNT_DELTA) {
        k->field_index = dm_contract__column(cx, c, col, "check column");
        if (k->field_index >= 0)
            k->column = dm_contract__strdup(c->fields[k->field_index].name);
    }
    const dm_field_t *f = k->field_index >= 0 ? &c->fields[k->field_index] : NULL;
    if (k->rule <= DM_CHECK_REGEX)
        s_rates(cx, k, m);
    switch (k->rule) {
    case DM_CHECK_UNIQUE:
        s_unique(cx, c, k, m);
        break;
    case DM_CHECK_IN_LIST:
        s_in_list(cx, c, k, m);
        break;
    case DM_CHECK_RANGE:
        s_range(cx, c, k, m);
        break;
    case DM_CHECK_REGEX:
        if (f && f->type != DM_FT_STRING)
            dm_contract__err(cx, col, "rule regex needs a string column; '%s' is %s", f->name,
                      dm_contract_ftype_name(f->type));
        if ((v = dm_contract__need(cx, m, "pattern", "regex check")) &&
            dm_contract__str(cx, v, "regex pattern", &k->pattern))
            (void)dm_contract__regex_ok(cx, v, "regex pattern", k->pattern);
        break;
    case DM_CHECK_ROW_COUNT_DELTA:
        s_threshold(cx, k, m);
        break;
    case DM_CHECK_FRESHNESS:
        if (f && f->type != DM_FT_TIMESTAMP && f->type != DM_FT_DATE)
            dm_contract__err(cx, col, "rule freshness needs a timestamp or date column; '%s' is %s",
                      f->name, dm_contract_ftype_name(f->type));
        if ((v = dm_ytree_get(m, "max_age")))
            (void)dm_contract__duration(cx, v, "freshness max_age", &k->max_age_ms);
        else if (c->freshness_ms > 0)
            k->max_age_ms = c->freshness_ms;
        else
            dm_contract__err(cx, m, "rule freshness needs max_age, or spec.sla.freshness as its default");
        break;
    default:
        break;
    }
    return true;
}

void dm_contract__quality(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *n)
{
    static const char *const keys[] = {"checks", "schedule", NULL};
    if (!dm_contract__map(cx, n, "spec.quality", keys))
        return;
    const dm_ytree_node_t *v = dm_ytree_get(n, "schedule");
    if (v && dm_contract__duration(cx, v, "spec.quality.schedule", &c->quality_schedule_ms) &&
        c->quality_schedule_ms < DM_QUALITY_SCHEDULE_MIN_MS)
        dm_contract__err(cx, v, "spec.quality.schedule %s is too short: at least 1s", v->text);
    v = dm_ytree_get(n, "checks");
    if (!v || !dm_contract__seq(cx, v, "spec.quality.checks"))
        return;
    if (v->n > DM_CONTRACT_MAX_CHECKS) {
        dm_contract__err(cx, v, "spec.quality.checks lists %zu checks; a contract has at most %d (the "
                         "limit DM_CONTRACT_MAX_CHECKS)", v->n, DM_CONTRACT_MAX_CHECKS);
        return;
    }
    c->checks = calloc(v->n ? v->n : 1, sizeof *c->checks);
    if (!c->checks)
        abort();
    for (size_t i = 0; i < v->n; i++) {
        dm_check_t k;
        if (s_check(cx, c, v->items[i], i, &k)) {
            c->checks[c->nchecks++] = k;
        } else {
            free(k.name);
            free(k.description);
        }
    }
}

bool dm_contract_check_has_rate(const dm_check_t *k)
{
    return k->rule <= DM_CHECK_REGEX && (k->has_mostly || k->has_warn || k->has_fail);
}
