/* quality_eval.c: one row against one check: a field rule's verdict, a
 * unique check's index key, freshness's event time. */
#include "quality/quality_priv.h"

#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/types.h"
#include "record/row.h"

#define S_US_PER_MS 1000
#define S_KEY_HASHED_AT (DM_QDB_KEY_MAX - 10) /* value keys longer than this are hashed */
#define S_KEY_RAW 0
#define S_KEY_HASHED 1
#define S_MS_PER_DAY (24LL * 3600 * 1000)

int dm_quality__event_field(const dm_contract_t *c, const dm_check_t *k)
{
    if (k->field_index >= 0)
        return k->field_index;
    for (size_t i = 0; i < c->npartitions; i++)
        for (size_t f = 0; f < c->nfields; f++)
            if (strcmp(c->fields[f].name, c->partitions[i].field) == 0 &&
                c->fields[f].type == DM_FT_TIMESTAMP)
                return (int)f;
    return -1;
}

bool dm_quality__sla_event_check(const dm_contract_t *c, dm_check_t *out)
{
    memset(out, 0, sizeof *out);
    out->rule = DM_CHECK_FRESHNESS;
    out->field_index = -1;
    out->max_age_ms = c->freshness_ms;
    for (size_t i = 0; i < c->nchecks; i++)
        if (c->checks[i].rule == DM_CHECK_FRESHNESS)
            return false;
    int ev = dm_quality__event_field(c, out);
    if (c->freshness_ms < 0 || ev < 0)
        return false;
    /* named by its field: the state of `freshness column: ts` (the same
     * measure), rebuilt when an upgrade moves the event time elsewhere */
    out->column = c->fields[ev].name;
    out->field_index = ev;
    return true;
}

/* Whether two values of one in_list column are equal (enum values compare
 * as text). */
static bool s_equal(const dm_value_t *a, const dm_value_t *b)
{
    switch (a->type) {
    case DM_FT_STRING:
    case DM_FT_ENUM: return a->slen == b->slen && memcmp(a->s, b->s, a->slen) == 0;
    case DM_FT_DOUBLE: return a->d == b->d;
    case DM_FT_UUID: return memcmp(a->uuid, b->uuid, DM_UUID_BYTES) == 0;
    default: return a->i == b->i;
    }
}

dm_err dm_quality__ccheck_init(dm_quality__ccheck_t *cc, const dm_schema_t *s,
                               const dm_check_t *k, dm_buf_t *why)
{
    const dm_contract_t *c = dm_schema_contract(s);
    memset(cc, 0, sizeof *cc);
    cc->k = k;
    cc->id = dm_quality__check_id(k);
    cc->event_field = k->rule == DM_CHECK_FRESHNESS ? dm_quality__event_field(c, k) : -1;
    if (k->rule == DM_CHECK_UNIQUE && c->npk && k->ncolumns == c->npk) {
        bool same = true; /* the same set in any order */
        for (size_t i = 0; i < k->ncolumns && same; i++) {
            bool in = false;
            for (size_t j = 0; j < c->npk; j++)
                in = in || (size_t)k->column_index[i] == c->pk[j];
            same = in;
        }
        cc->trivial = same;
    }
    if (k->rule == DM_CHECK_IN_LIST && k->field_index >= 0) {
        if (!(cc->vals = calloc(k->nvalues + 1, sizeof *cc->vals)))
            return DM_ERR_NOMEM;
        for (size_t i = 0; i < k->nvalues; i++) {
            if (!dm_schema_value_parse(&c->fields[k->field_index], k->values[i], &cc->vals[i])) {
                dm_buf_why(why, "quality: check in_list on '%s': '%s' is not a valid value",
                           k->column, k->values[i]);
                return DM_ERR_INVALID;
            }
        }
        cc->nvals = k->nvalues;
    }
    if (k->rule == DM_CHECK_REGEX && k->pattern &&
        (dm_pattern_check(k->pattern, NULL, NULL) != DM_OK ||
         dm_pattern_compile(k->pattern, &cc->re) != DM_OK)) {
        dm_buf_why(why, "quality: check regex on '%s': pattern '%.64s' is refused", k->column,
                   k->pattern);
        return DM_ERR_INVALID;
    }
    return DM_OK;
}

void dm_quality__ccheck_clear(dm_quality__ccheck_t *cc)
{
    free(cc->vals);
    dm_pattern_destroy(&cc->re);
    memset(cc, 0, sizeof *cc);
}

size_t dm_quality__value_text(const dm_value_t *v, char *buf, size_t cap)
{
    int n = 0;
    switch (v->type) {
    case DM_FT_STRING:
    case DM_FT_ENUM: {
        size_t l = v->slen < cap - 1 ? v->slen : cap - 1;
        memcpy(buf, v->s, l);
        buf[l] = 0;
        return l;
    }
    case DM_FT_INT: n = snprintf(buf, cap, "%" PRId64, v->i); break;
    case DM_FT_DOUBLE: n = snprintf(buf, cap, "%.17g", v->d); break;
    case DM_FT_BOOLEAN: n = snprintf(buf, cap, "%s", v->i ? "true" : "false"); break;
    case DM_FT_TIMESTAMP: {
        char t[64];
        size_t l = dm_types_timestamp_format(v->i, t);
        n = snprintf(buf, cap, "%.*s", (int)l, t);
        break;
    }
    case DM_FT_DATE: {
        char t[32];
        size_t l = dm_types_date_format((int32_t)v->i, t);
        n = snprintf(buf, cap, "%.*s", (int)l, t);
        break;
    }
    case DM_FT_UUID: {
        char t[64];
        size_t l = dm_types_uuid_format(v->uuid, t);
        n = snprintf(buf, cap, "%.*s", (int)l, t);
        break;
    }
    default: break;
    }
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* The range rule on a number. */
static bool s_out_of_range(const dm_check_t *k, const dm_value_t *v)
{
    double x = v->type == DM_FT_INT ? (double)v->i : v->d;
    if (v->type == DM_FT_INT) {
        if (k->has_min && (k->min.is_int ? v->i < k->min.i : x < k->min.d))
            return true;
        return k->has_max && (k->max.is_int ? v->i > k->max.i : x > k->max.d);
    }
    if (isnan(x))
        return true;
    return (k->has_min && x < (k->min.is_int ? (double)k->min.i : k->min.d)) ||
           (k->has_max && x > (k->max.is_int ? (double)k->max.i : k->max.d));
}

void dm_quality__keyed_sample(const dm_contract_t *c, const dm_schema_t *s, const void *row,
                              size_t len, const dm_buf_t *value, dm_buf_t *out)
{
    dm_buf_reset(out);
    for (size_t i = 0; i < c->npk && out->len < DM_QUALITY_SAMPLE_BYTES; i++) {
        dm_value_t v;
        char t[DM_QUALITY_SAMPLE_BYTES + 1];
        if (!dm_row_get(s, row, len, c->pk[i], &v))
            break;
        size_t n = v.is_null ? 0 : dm_quality__value_text(&v, t, sizeof t);
        dm_buf_printf(out, "%s%s=%.*s", i ? "," : "", c->fields[c->pk[i]].name, (int)n, t);
    }
    if (out->len)
        dm_buf_puts(out, ": ");
    dm_buf_append(out, value->data, value->len);
}

bool dm_quality__row_fails(const dm_quality__ccheck_t *cc, const dm_schema_t *s,
                           const void *row, size_t len, dm_buf_t *tmp)
{
    const dm_check_t *k = cc->k;
    dm_value_t v;
    dm_buf_reset(tmp);
    if (k->field_index < 0 || !dm_row_get(s, row, len, (size_t)k->field_index, &v))
        return false; /* a malformed row is the store's problem, not this rule's */
    if (v.is_null) {
        if (k->rule == DM_CHECK_NOT_NULL)
            dm_buf_puts(tmp, "null");
        return k->rule == DM_CHECK_NOT_NULL;
    }
    bool bad = false;
    switch (k->rule) {
    case DM_CHECK_IN_LIST:
        bad = true;
        for (size_t i = 0; i < cc->nvals && bad; i++)
            bad = !s_equal(&v, &cc->vals[i]);
        break;
    case DM_CHECK_RANGE:
        bad = (v.type == DM_FT_INT || v.type == DM_FT_DOUBLE) && s_out_of_range(k, &v);
        break;
    case DM_CHECK_REGEX:
        if (cc->re && v.type == DM_FT_STRING) {
            dm_buf_reset(tmp);
            dm_buf_append(tmp, v.s, v.slen); /* NUL-terminated for the matcher */
            bad = !dm_pattern_match(cc->re, tmp->data, v.slen);
        }
        break;
    default:
        break;
    }
    if (bad) {
        char t[DM_QUALITY_SAMPLE_BYTES + 1];
        size_t n = dm_quality__value_text(&v, t, sizeof t);
        dm_buf_reset(tmp);
        dm_buf_append(tmp, t, n);
    }
    return bad;
}

bool dm_quality__unique_key(const dm_quality__ccheck_t *cc, const dm_schema_t *s,
                            const void *row, size_t len, dm_buf_t *key, dm_buf_t *text)
{
    const dm_check_t *k = cc->k;
    uint8_t tag = S_KEY_RAW;
    if (key) {
        dm_buf_reset(key);
        dm_buf_append(key, &tag, 1);
    }
    if (text)
        dm_buf_reset(text);
    for (size_t i = 0; i < k->ncolumns; i++) {
        dm_value_t v;
        if (!dm_row_get(s, row, len, (size_t)k->column_index[i], &v) || v.is_null)
            return false;
        if (key)
            dm_schema_key_append(s, (size_t)k->column_index[i], &v, key);
        if (text && text->len < DM_QUALITY_SAMPLE_BYTES) {
            char t[DM_QUALITY_SAMPLE_BYTES + 1];
            size_t n = dm_quality__value_text(&v, t, sizeof t);
            if (i)
                dm_buf_putc(text, ',');
            dm_buf_append(text, t, n);
        }
    }
    if (key && key->len - 1 > S_KEY_HASHED_AT) { /* too long for an LMDB key: its BLAKE2b */
        uint8_t h[crypto_generichash_BYTES];
        crypto_generichash(h, sizeof h, (const uint8_t *)key->data + 1, key->len - 1, NULL, 0);
        dm_buf_reset(key);
        tag = S_KEY_HASHED;
        dm_buf_append(key, &tag, 1);
        dm_buf_append(key, h, sizeof h);
    }
    return true;
}

void dm_quality__op_text(const dm_quality__ccheck_t *cc, const dm_schema_t *s,
                         dm_quality__op_t *o, dm_buf_t *text)
{
    if (!o->row)
        return;
    if (dm_quality__unique_key(cc, s, o->row, o->row_len, NULL, text)) { /* the text alone */
        o->text = text->data;
        o->tlen = (uint16_t)(text->len > DM_QUALITY_SAMPLE_BYTES ? DM_QUALITY_SAMPLE_BYTES
                                                                 : text->len);
    }
    o->row = NULL;
}

bool dm_quality__event_ms(const dm_quality__ccheck_t *cc, const dm_schema_t *s,
                          const void *row, size_t len, int64_t *ms)
{
    dm_value_t v;
    if (cc->event_field < 0 || !dm_row_get(s, row, len, (size_t)cc->event_field, &v) ||
        v.is_null)
        return false;
    if (v.type == DM_FT_TIMESTAMP)
        *ms = v.i / S_US_PER_MS;
    else if (v.type == DM_FT_DATE)
        *ms = v.i * S_MS_PER_DAY;
    else
        return false;
    return true;
}
