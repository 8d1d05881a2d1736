/* schema.c: compiles a contract into a record validator and encodes rows.
 *
 * The hot path is dm_schema_validate: one pass of json_scan over the line,
 * each member matched to its field (first by guessing the next field in
 * contract order, which is how producers write records, then by hash),
 * checked and written straight into the caller's row buffer. The row buffer
 * is reserved once per call for header + line length, which bounds
 * everything written (decoded strings never outgrow their JSON text), so no
 * further allocation or bounds logic is needed while filling it; the bytes
 * past the committed end double as scratch for decoding escaped keys and
 * values. Reasons are only formatted for invalid records. Decoding rows and
 * encoding keys live in row.c. */
#include "record/schema.h"
#include "record/schema_priv.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/json_scan.h"
#include "record/row.h"
#include "contract/pattern.h"

#define S_ENUM_LIST_MAX 200 /* bytes of an enum's value list quoted in a reason */
#define S_WORDS ((DM_SCHEMA_MAX_FIELDS + 63) / 64)

_Static_assert(DM_CONTRACT_MAX_FIELDS <= DM_SCHEMA_MAX_FIELDS,
               "every contract the parser accepts must compile into a schema");

struct dm_schema__rcheck {
    const dm_check_t *c;
    size_t field;
    dm_value_t *vals; /* in_list, typed */
    size_t nvals;
    dm_pattern_t *re; /* DM_CHECK_REGEX's pattern, or NULL */
};

typedef dm_schema__field_t s_field_t;
typedef struct dm_schema__rcheck s_rcheck_t;

/* Per-call reason collector. */
typedef struct {
    dm_buf_t *out;
    unsigned n, more;
} s_ctx_t;

static void s_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void s_put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void s_put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }

static size_t s_width(dm_ftype t)
{
    switch (t) {
    case DM_FT_DATE: return 4;
    case DM_FT_BOOLEAN: return 1;
    case DM_FT_ENUM: return 2;
    case DM_FT_UUID: return DM_UUID_BYTES;
    default: return 8; /* int, double, timestamp, string (offset, length) */
    }
}

/* Field-name hash, keyed per schema: the names come from a contract and
 * the keys from records, so with a fixed hash both could be chosen to
 * collide and make every key lookup O(fields). */
static uint32_t s_hash(const dm_schema_t *s, const char *k, size_t n)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)k, n, s->hkey);
    return (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
}

static bool s_bit(const uint64_t *w, size_t i) { return w[i / 64] >> (i % 64) & 1; }
static void s_set(uint64_t *w, size_t i) { w[i / 64] |= UINT64_C(1) << (i % 64); }

static size_t s_fmt_num(const dm_num_t *v, char *buf, size_t cap)
{
    if (v->is_int)
        return (size_t)snprintf(buf, cap, "%lld", (long long)v->i);
    return dm_schema__fmt_double(v->d, buf, cap);
}

/* Starts a reason: separator and "field 'name': " when f is set. Returns
 * false (and counts it) once DM_SCHEMA_MAX_REASONS were written. */
static bool s_reason(s_ctx_t *x, const dm_field_t *f)
{
    if (x->n == DM_SCHEMA_MAX_REASONS) {
        x->more++;
        return false;
    }
    if (x->n++)
        dm_buf_append(x->out, "; ", 2);
    if (f)
        dm_buf_printf(x->out, "field '%s': ", f->name);
    return true;
}

/* Appends 'text' cut to DM_SCHEMA_QUOTE_MAX bytes (on a UTF-8 boundary,
 * then "...") with control characters escaped, so a reason stays one line. */
static void s_quote(dm_buf_t *b, const char *t, size_t n)
{
    bool cut = n > DM_SCHEMA_QUOTE_MAX;
    if (cut) {
        n = DM_SCHEMA_QUOTE_MAX;
        while (n > 0 && ((unsigned char)t[n] & 0xc0) == 0x80)
            n--;
    }
    dm_buf_putc(b, '\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\n')
            dm_buf_append(b, "\\n", 2);
        else if (c == '\t')
            dm_buf_append(b, "\\t", 2);
        else if (c == '\r')
            dm_buf_append(b, "\\r", 2);
        else if (c < 0x20 || c == 0x7f)
            dm_buf_printf(b, "\\u%04x", c);
        else
            dm_buf_putc(b, (char)c);
    }
    if (cut)
        dm_buf_append(b, "...", 3);
    dm_buf_putc(b, '\'');
}

/* Describes a JSON value for "got ...". */
static void s_got(dm_buf_t *b, const dm_json_member_t *m)
{
    switch (m->type) {
    case DM_JSON_STRING: dm_buf_puts(b, "string "); s_quote(b, m->val, m->val_len); break;
    case DM_JSON_NUMBER: dm_buf_puts(b, "number "); s_quote(b, m->val, m->val_len); break;
    case DM_JSON_OBJECT: dm_buf_puts(b, "an object"); break;
    case DM_JSON_ARRAY: dm_buf_puts(b, "an array"); break;
    default: dm_buf_append(b, m->val, m->val_len); break; /* true, false */
    }
}

static const char *s_expected(dm_ftype t)
{
    switch (t) {
    case DM_FT_INT: return "an integer";
    case DM_FT_DOUBLE: return "a number";
    case DM_FT_BOOLEAN: return "a boolean";
    case DM_FT_TIMESTAMP: return "an RFC 3339 timestamp string";
    case DM_FT_DATE: return "a date string";
    case DM_FT_UUID: return "a UUID string";
    default: return "a string";
    }
}

static void s_wrong_type(s_ctx_t *x, const dm_field_t *f, const dm_json_member_t *m)
{
    if (!s_reason(x, f))
        return;
    dm_buf_printf(x->out, "expected %s, got ", s_expected(f->type));
    s_got(x->out, m);
}

/* Exact comparison of an int64 with a contract number: <0, 0, >0. */
static int s_cmp_i(int64_t v, const dm_num_t *b)
{
    if (b->is_int)
        return (v > b->i) - (v < b->i);
    if (b->d >= 0x1p63)
        return -1;
    if (b->d < -0x1p63)
        return 1;
    double fl = floor(b->d);
    int64_t i = (int64_t)fl;
    if (v != i)
        return (v > i) - (v < i);
    return fl == b->d ? 0 : -1;
}

static int s_cmp_d(double v, const dm_num_t *b)
{
    double bd = b->is_int ? (double)b->i : b->d;
    return (v > bd) - (v < bd);
}

/* Applies minimum/maximum/exclusive bounds; reports the first broken one. */
static bool s_bounds(s_ctx_t *x, const dm_field_t *f, bool is_int, int64_t iv, double dv,
                     const dm_json_member_t *m)
{
    const char *op = NULL;
    const dm_num_t *b = NULL;
#define S_CMP(bound) (is_int ? s_cmp_i(iv, &(bound)) : s_cmp_d(dv, &(bound)))
    if (f->has_minimum && S_CMP(f->minimum) < 0)
        op = ">=", b = &f->minimum;
    else if (f->has_exclusive_minimum && S_CMP(f->exclusive_minimum) <= 0)
        op = ">", b = &f->exclusive_minimum;
    else if (f->has_maximum && S_CMP(f->maximum) > 0)
        op = "<=", b = &f->maximum;
    else if (f->has_exclusive_maximum && S_CMP(f->exclusive_maximum) >= 0)
        op = "<", b = &f->exclusive_maximum;
#undef S_CMP
    if (!op)
        return true;
    if (s_reason(x, f)) {
        char t[DM_SCHEMA__TEXT_MAX];
        s_fmt_num(b, t, sizeof t);
        dm_buf_printf(x->out, "must be %s %s, got ", op, t);
        dm_buf_append(x->out, m->val, m->val_len);
    }
    return false;
}

/* Matches with pattern_match.c (one pass over n bytes), not glibc's
 * regexec, whose search is quadratic or worse in the subject. */
static bool s_regex_match(const dm_pattern_t *re, const char *t, size_t n)
{
    return dm_pattern_match(re, t, n);
}

/* minLength, maxLength and pattern on a value given as JSON string: m has
 * the text as written (for messages) and its length in code points, t/n the
 * decoded text. scratch (past the row's string area, room for n + 1 bytes)
 * gets a NUL-terminated copy for the regex. */
static bool s_text_rules(s_ctx_t *x, const s_field_t *sf, const dm_json_member_t *m,
                         const char *t, size_t n, char *scratch)
{
    const dm_field_t *f = sf->f;
    int64_t cps = (int64_t)m->val_cps;
    const char *what = NULL;
    int64_t lim = 0;
    if (f->min_length >= 0 && cps < f->min_length)
        what = "at least", lim = f->min_length;
    else if (f->max_length >= 0 && cps > f->max_length)
        what = "at most", lim = f->max_length;
    if (what) {
        if (s_reason(x, f)) {
            dm_buf_printf(x->out, "must be %s %lld characters, got %lld: ", what, (long long)lim,
                          (long long)cps);
            s_quote(x->out, m->val, m->val_len);
        }
        return false;
    }
    if (sf->re) {
        if (t != scratch)
            memcpy(scratch, t, n);
        scratch[n] = 0;
        if (!s_regex_match(sf->re, scratch, n)) {
            if (s_reason(x, f)) {
                s_quote(x->out, m->val, m->val_len);
                dm_buf_printf(x->out, " does not match pattern '%s'", f->pattern);
            }
            return false;
        }
    }
    return true;
}

static long s_enum_index(const s_field_t *sf, const char *t, size_t n)
{
    size_t k = dm_sidx_find(&sf->vidx, t, n);
    return k == DM_SIDX_NONE ? -1 : (long)k;
}

static void s_enum_fail(s_ctx_t *x, const s_field_t *sf, const dm_json_member_t *m)
{
    if (!s_reason(x, sf->f))
        return;
    s_quote(x->out, m->val, m->val_len);
    dm_buf_puts(x->out, " is not one of ");
    size_t start = x->out->len;
    for (size_t k = 0; k < sf->f->nvalues; k++) {
        if (x->out->len - start > S_ENUM_LIST_MAX) {
            dm_buf_puts(x->out, ", ...");
            break;
        }
        if (k)
            dm_buf_append(x->out, ", ", 2);
        dm_buf_puts(x->out, sf->f->values[k]);
    }
}

/* Fast path for the common integer literal: at most 18 digits cannot overflow. */
static bool s_int(const dm_json_member_t *m, int64_t *out)
{
    const char *p = m->val;
    size_t n = m->val_len;
    bool neg = n && *p == '-';
    if (!m->num_is_int || n - neg > 18)
        return dm_types_int_parse(p, n, out);
    int64_t v = 0;
    for (size_t i = neg; i < n; i++)
        v = v * 10 + (p[i] - '0');
    *out = neg ? -v : v;
    return true;
}

/* The reasons of a value that has the right JSON type but does not parse.
 * They run on failures only, so they stay out of line (cold): the valid
 * path of s_field_value does not grow. Each returns false. */
#define S_COLD __attribute__((cold, noinline))

/* A refused number: what, then the number as written; for an int field
 * (what NULL) out of range if the number is whole, else not an integer. */
S_COLD static bool s_bad_number(s_ctx_t *x, const dm_field_t *f, const dm_json_member_t *m,
                                const char *what)
{
    double dv;
    if (s_reason(x, f)) {
        if (!what)
            what = dm_types_double_parse(m->val, m->val_len, &dv) && dv == floor(dv)
                       ? "out of the int64 range, got "
                       : "expected an integer, got ";
        dm_buf_puts(x->out, what);
        dm_buf_append(x->out, m->val, m->val_len);
    }
    return false;
}

/* A refused text: the string quoted, then what. */
S_COLD static bool s_bad_text(s_ctx_t *x, const dm_field_t *f, const dm_json_member_t *m,
                              const char *what)
{
    if (s_reason(x, f)) {
        s_quote(x->out, m->val, m->val_len);
        dm_buf_puts(x->out, what);
    }
    return false;
}

/* Checks member m against field i and writes its slot. rd is the row,
 * *pos the end of its string area (advanced for strings). */
static bool s_field_value(s_ctx_t *x, const dm_schema_t *s, size_t i,
                          const dm_json_member_t *m, uint8_t *rd, size_t *pos)
{
    const s_field_t *sf = &s->fields[i];
    const dm_field_t *f = sf->f;
    uint8_t *slot = rd + sf->slot;
    const char *t = m->val;
    size_t n = m->val_len;
    int64_t iv;
    double dv;
    dm_types_ts_status_t ts;
    bool typed = f->type == DM_FT_INT || f->type == DM_FT_DOUBLE ? m->type == DM_JSON_NUMBER
                 : f->type == DM_FT_BOOLEAN ? m->type == DM_JSON_TRUE || m->type == DM_JSON_FALSE
                                            : m->type == DM_JSON_STRING;
    if (!typed) {
        s_wrong_type(x, f, m);
        return false;
    }
    if (m->type == DM_JSON_STRING) { /* a text type: string, timestamp, date, uuid, enum */
        if (m->val_escaped) { /* decode into the scratch past the string area */
            n = dm_json_scan_unescape(m->val, m->val_len, (char *)rd + *pos);
            t = (const char *)rd + *pos;
        } else if (f->type == DM_FT_STRING) {
            memcpy(rd + *pos, m->val, n);
            t = (const char *)rd + *pos;
        }
        if ((f->min_length >= 0 || f->max_length >= 0 || sf->re) &&
            !s_text_rules(x, sf, m, t, n, (char *)rd + *pos))
            return false;
    }
    switch (f->type) {
    case DM_FT_STRING:
        s_put32(slot, (uint32_t)*pos);
        s_put32(slot + 4, (uint32_t)n);
        *pos += n;
        break;
    case DM_FT_INT:
        if (!s_int(m, &iv))
            return s_bad_number(x, f, m, NULL);
        if (!s_bounds(x, f, true, iv, 0, m))
            return false;
        s_put64(slot, (uint64_t)iv);
        break;
    case DM_FT_DOUBLE:
        if (!dm_types_double_parse(m->val, m->val_len, &dv))
            return s_bad_number(x, f, m, "expected a finite number, got ");
        if (!s_bounds(x, f, false, 0, dv, m))
            return false;
        memcpy(&iv, &dv, sizeof dv);
        s_put64(slot, (uint64_t)iv);
        break;
    case DM_FT_BOOLEAN:
        *slot = m->type == DM_JSON_TRUE;
        break;
    case DM_FT_TIMESTAMP:
        if ((ts = dm_types_timestamp_check(t, n, &iv)) != DM_TS_OK)
            return s_bad_text(x, f, m, ts == DM_TS_RANGE ? " is outside the timestamp range "
                              DM_TIMESTAMP_RANGE_TEXT " once its offset is applied"
                              : " is not an RFC 3339 timestamp with offset (or names an "
                                "impossible date or time)");
        s_put64(slot, (uint64_t)iv);
        break;
    case DM_FT_DATE: {
        int32_t d;
        if (!dm_types_date_parse(t, n, &d))
            return s_bad_text(x, f, m, " is not a calendar date YYYY-MM-DD");
        s_put32(slot, (uint32_t)d);
        break;
    }
    case DM_FT_UUID:
        if (!dm_types_uuid_parse(t, n, slot))
            return s_bad_text(x, f, m, " is not a UUID (8-4-4-4-12 hex digits)");
        break;
    case DM_FT_ENUM: {
        long k = s_enum_index(sf, t, n);
        if (k < 0) {
            s_enum_fail(x, sf, m);
            return false;
        }
        s_put16(slot, (uint16_t)k);
        break;
    }
    default:
        assert(!"unknown field type");
        return false;
    }
    rd[DM_SCHEMA__ROW_FIXED + i / 8] &= (uint8_t) ~(1u << (i % 8));
    return true;
}

/* Finds the member's field: first the guess (the field after the previous
 * one), then the hash. scratch receives an escaped key's decoding. */
static long s_lookup(const dm_schema_t *s, const dm_json_member_t *m, char *scratch, size_t *guess)
{
    const char *k = m->key;
    size_t n = m->key_len;
    if (m->key_escaped) {
        n = dm_json_scan_unescape(k, n, scratch);
        k = scratch;
    }
    size_t g = *guess;
    if (g < s->nfields && s->fields[g].nlen == n && memcmp(s->fields[g].f->name, k, n) == 0) {
        *guess = g + 1;
        return (long)g;
    }
    for (size_t h = s_hash(s, k, n) & s->hmask;; h = (h + 1) & s->hmask) {
        uint32_t e = s->htab[h];
        if (!e)
            return -1;
        const s_field_t *sf = &s->fields[e - 1];
        if (sf->nlen == n && memcmp(sf->f->name, k, n) == 0) {
            *guess = e;
            return (long)e - 1;
        }
    }
}

int dm_schema_field_index(const dm_schema_t *s, const char *name, size_t len)
{
    dm_json_member_t m = {.key = name, .key_len = len};
    size_t guess = s->nfields;
    return (int)s_lookup(s, &m, NULL, &guess);
}

/* Orders two values of one type (an in_list is sorted by it and searched
 * in O(log values) per record); 0 exactly when they are equal. */
static int s_value_cmp(const void *pa, const void *pb)
{
    const dm_value_t *a = pa, *b = pb;
    switch (a->type) {
    case DM_FT_STRING: {
        int c = memcmp(a->s, b->s, a->slen < b->slen ? a->slen : b->slen);
        return c ? c : (a->slen > b->slen) - (a->slen < b->slen);
    }
    case DM_FT_DOUBLE: return (a->d > b->d) - (a->d < b->d);
    case DM_FT_UUID: return memcmp(a->uuid, b->uuid, DM_UUID_BYTES);
    default: return (a->i > b->i) - (a->i < b->i);
    }
}

/* Row-level quality checks on the fields that passed their own rules.
 * range applies to int and double columns. */
static void s_row_checks(s_ctx_t *x, const dm_schema_t *s, uint8_t *rd, size_t len,
                         const uint64_t *bad)
{
    for (size_t k = 0; k < s->nchecks; k++) {
        const s_rcheck_t *rc = &s->checks[k];
        const dm_field_t *f = s->fields[rc->field].f;
        dm_value_t v;
        char tmp[DM_SCHEMA__TEXT_MAX];
        const char *t;
        size_t n;
        if (s_bit(bad, rc->field) || !dm_row_get(s, rd, len, rc->field, &v))
            continue;
        if (v.is_null) {
            if (rc->c->rule == DM_CHECK_NOT_NULL && s_reason(x, f))
                dm_buf_puts(x->out, "check not_null failed: value is null");
            continue;
        }
        switch (rc->c->rule) {
        case DM_CHECK_IN_LIST: {
            if (!bsearch(&v, rc->vals, rc->nvals, sizeof *rc->vals, s_value_cmp) &&
                s_reason(x, f)) {
                n = dm_schema__value_text(&v, tmp, &t);
                dm_buf_puts(x->out, "check in_list failed: ");
                s_quote(x->out, t, n);
                dm_buf_puts(x->out, " is not in the list");
            }
            break;
        }
        case DM_CHECK_RANGE: {
            bool isint = v.type == DM_FT_INT;
            if (!isint && v.type != DM_FT_DOUBLE)
                break;
            bool lo = rc->c->has_min && (isint ? s_cmp_i(v.i, &rc->c->min) : s_cmp_d(v.d, &rc->c->min)) < 0;
            bool hi = rc->c->has_max && (isint ? s_cmp_i(v.i, &rc->c->max) : s_cmp_d(v.d, &rc->c->max)) > 0;
            if ((lo || hi) && s_reason(x, f)) {
                char a[DM_SCHEMA__TEXT_MAX], b[DM_SCHEMA__TEXT_MAX];
                s_fmt_num(&rc->c->min, a, sizeof a);
                s_fmt_num(&rc->c->max, b, sizeof b);
                n = dm_schema__value_text(&v, tmp, &t);
                if (rc->c->has_min && rc->c->has_max)
                    dm_buf_printf(x->out, "check range failed: must be between %s and %s, got %.*s", a, b, (int)n, t);
                else
                    dm_buf_printf(x->out, "check range failed: must be %s %s, got %.*s",
                                  lo ? ">=" : "<=", lo ? a : b, (int)n, t);
            }
            break;
        }
        case DM_CHECK_REGEX: {
            /* a row string is followed by other bytes: end it for the regex,
             * then put the byte back (rd has room for the NUL at its end) */
            n = dm_schema__value_text(&v, tmp, &t);
            uint8_t *after = v.type == DM_FT_STRING ? (uint8_t *)t + n : NULL, saved = 0;
            if (after) {
                saved = *after;
                *after = 0;
            }
            bool ok = s_regex_match(rc->re, t, n);
            if (after)
                *after = saved;
            if (!ok && s_reason(x, f)) {
                dm_buf_puts(x->out, "check regex failed: ");
                s_quote(x->out, t, n);
                dm_buf_printf(x->out, " does not match '%s'", rc->c->pattern);
            }
            break;
        }
        default:
            break;
        }
    }
}

bool dm_schema_validate(const dm_schema_t *s, const char *line, size_t len, dm_buf_t *row,
                        dm_buf_t *key, dm_buf_t *reasons)
{
    s_ctx_t x = {reasons, 0, 0};
    uint64_t seen[S_WORDS], bad[S_WORDS];
    size_t nw = (s->nfields + 63) / 64;
    dm_buf_reset(row);
    dm_buf_reset(key);
    dm_buf_reset(reasons);
    if (len > UINT32_MAX - s->header) {
        dm_buf_printf(reasons, "record is %zu bytes, too large to encode", len);
        return false;
    }
    dm_buf_reserve(row, s->header + len);
    uint8_t *rd = (uint8_t *)row->data;
    memset(rd, 0, s->header);
    rd[0] = DM_ROW_VERSION;
    s_put16(rd + 2, (uint16_t)s->nfields);
    memset(rd + DM_SCHEMA__ROW_FIXED, 0xff, s->nfields / 8);
    if (s->nfields % 8)
        rd[DM_SCHEMA__ROW_FIXED + s->nfields / 8] = (uint8_t)((1u << (s->nfields % 8)) - 1);
    memset(seen, 0, nw * sizeof seen[0]);
    memset(bad, 0, nw * sizeof bad[0]);

    size_t pos = s->header, guess = 0;
    dm_json_scan_t sc;
    dm_json_member_t m;
    int r;
    dm_json_scan_init(&sc, line, len);
    while ((r = dm_json_scan_next(&sc, &m)) == 1) {
        long fi = s_lookup(s, &m, (char *)rd + pos, &guess);
        if (fi < 0) {
            if (s_reason(&x, NULL)) {
                dm_buf_puts(reasons, "unknown field ");
                s_quote(reasons, m.key, m.key_len);
            }
            continue;
        }
        const dm_field_t *f = s->fields[fi].f;
        if (s_bit(seen, (size_t)fi)) {
            if (s_reason(&x, NULL))
                dm_buf_printf(reasons, "duplicate key '%s'", f->name);
            s_set(bad, (size_t)fi);
            continue;
        }
        s_set(seen, (size_t)fi);
        if (m.type == DM_JSON_NULL) {
            if (f->required) {
                if (s_reason(&x, f))
                    dm_buf_puts(reasons, "is required, got null");
                s_set(bad, (size_t)fi);
            }
            continue;
        }
        if (!s_field_value(&x, s, (size_t)fi, &m, rd, &pos))
            s_set(bad, (size_t)fi);
    }
    if (r < 0) { /* the line is not JSON: field findings so far mean nothing */
        dm_buf_reset(reasons);
        dm_buf_printf(reasons, "not a JSON object: %s at column %zu", sc.err, sc.err_col);
        return false;
    }
    for (size_t i = 0; i < s->nfields; i++) {
        if (s->fields[i].f->required && !s_bit(seen, i)) {
            if (s_reason(&x, s->fields[i].f))
                dm_buf_puts(reasons, "is required but missing");
            s_set(bad, i);
        }
    }
    if (s->nchecks)
        s_row_checks(&x, s, rd, pos, bad);
    if (x.more)
        dm_buf_printf(reasons, "; and %u more problems", x.more);
    if (x.n)
        return false;
    row->len = pos;
    row->data[pos] = 0;
    for (size_t k = 0; k < s->c->npk; k++) {
        dm_value_t v;
        if (dm_row_get(s, rd, pos, s->c->pk[k], &v))
            dm_schema_key_append(s, s->c->pk[k], &v, key);
    }
    return true;
}

const dm_contract_t *dm_schema_contract(const dm_schema_t *s) { return s->c; }

bool dm_schema_value_parse(const dm_field_t *f, const char *t, dm_value_t *v)
{
    size_t n = strlen(t);
    int32_t d;
    memset(v, 0, sizeof *v);
    v->type = f->type;
    switch (v->type) {
    case DM_FT_STRING: v->s = t; v->slen = n; return true;
    case DM_FT_INT: return dm_types_int_parse(t, n, &v->i);
    case DM_FT_DOUBLE: return dm_types_double_parse(t, n, &v->d);
    case DM_FT_BOOLEAN:
        v->i = strcmp(t, "true") == 0;
        return v->i || strcmp(t, "false") == 0;
    case DM_FT_TIMESTAMP: return dm_types_timestamp_parse(t, n, &v->i);
    case DM_FT_DATE:
        if (!dm_types_date_parse(t, n, &d))
            return false;
        v->i = d;
        return true;
    case DM_FT_UUID: return dm_types_uuid_parse(t, n, v->uuid);
    case DM_FT_ENUM:
        for (v->i = 0; v->i < (int64_t)f->nvalues; v->i++)
            if (strcmp(f->values[v->i], t) == 0)
                return v->s = f->values[v->i], v->slen = n, true;
        return false;
    default: return false;
    }
}

/* Compiles pattern for pattern_match.c after checking its cost statically
 * (pattern.h): a contract that did not come through the parser's check
 * still cannot make this expensive. */
static bool s_compile(dm_pattern_t **re, const char *pattern, const char *field, dm_buf_t *why)
{
    dm_buf_t reason = DM_BUF_INIT;
    if (dm_pattern_check(pattern, NULL, &reason) != DM_OK) {
        if (why)
            dm_buf_printf(why, "field '%s': pattern '%.64s' is refused: %s", field, pattern,
                          reason.data);
        dm_buf_free(&reason);
        return false;
    }
    if (dm_pattern_compile(pattern, re) != DM_OK) {
        if (why)
            dm_buf_printf(why, "field '%s': pattern '%s' cannot be compiled", field, pattern);
        return false;
    }
    return true;
}

dm_err dm_schema_new(const dm_contract_t *c, dm_schema_t **out, dm_buf_t *why)
{
    dm_err err = DM_ERR_NOMEM;
    *out = NULL;
    if (c->nfields > DM_SCHEMA_MAX_FIELDS) {
        if (why)
            dm_buf_printf(why, "the contract has %zu fields, over the limit of %d", c->nfields,
                          DM_SCHEMA_MAX_FIELDS);
        return DM_ERR_TOOBIG;
    }
    dm_schema_t *s = calloc(1, sizeof *s);
    if (!s)
        return DM_ERR_NOMEM;
    s->c = c;
    s->nfields = c->nfields;
    randombytes_buf(s->hkey, sizeof s->hkey);
    size_t hsize = 8;
    while (hsize < 2 * c->nfields)
        hsize *= 2;
    s->hmask = hsize - 1;
    s->fields = calloc(c->nfields + 1, sizeof *s->fields);
    s->htab = calloc(hsize, sizeof *s->htab);
    s->checks = calloc(c->nchecks + 1, sizeof *s->checks);
    if (!s->fields || !s->htab || !s->checks)
        goto out;
    size_t off = DM_SCHEMA__ROW_FIXED + (c->nfields + 7) / 8;
    for (size_t i = 0; i < c->nfields; i++) {
        s_field_t *sf = &s->fields[i];
        sf->f = &c->fields[i];
        sf->nlen = strlen(sf->f->name);
        sf->slot = (uint32_t)off;
        sf->width = (uint32_t)s_width(sf->f->type);
        off += sf->width;
        size_t h = s_hash(s, sf->f->name, sf->nlen) & s->hmask;
        while (s->htab[h])
            h = (h + 1) & s->hmask;
        s->htab[h] = (uint32_t)i + 1;
        if (sf->f->type == DM_FT_ENUM) {
            sf->vlens = calloc(sf->f->nvalues + 1, sizeof *sf->vlens);
            if (!sf->vlens)
                goto out;
            for (size_t k = 0; k < sf->f->nvalues; k++) {
                sf->vlens[k] = strlen(sf->f->values[k]);
                dm_sidx_add(&sf->vidx, sf->f->values[k], sf->vlens[k], k);
            }
            dm_sidx_sort(&sf->vidx);
        }
        if (sf->f->pattern) {
            err = DM_ERR_INVALID;
            if (!s_compile(&sf->re, sf->f->pattern, sf->f->name, why))
                goto out;
        }
    }
    s->header = off;
    s->bitmap_end = DM_SCHEMA__ROW_FIXED + (c->nfields + 7) / 8;
    for (size_t k = 0; k < c->nchecks; k++) {
        const dm_check_t *ck = &c->checks[k];
        if (ck->rule > DM_CHECK_REGEX || dm_contract_check_has_rate(ck))
            continue; /* dataset-level, or with thresholds: judged by quality/ */
        long fi = ck->field_index;
        if (fi < 0 && ck->column)
            fi = dm_schema_field_index(s, ck->column, strlen(ck->column));
        err = DM_ERR_INVALID;
        if (fi < 0 || (size_t)fi >= c->nfields) {
            if (why)
                dm_buf_printf(why, "a row-level check on '%s' names no field of the contract",
                              ck->column ? ck->column : "(none)");
            goto out;
        }
        s_rcheck_t *rc = &s->checks[s->nchecks++];
        rc->c = ck;
        rc->field = (size_t)fi;
        if (ck->rule == DM_CHECK_REGEX && !s_compile(&rc->re, ck->pattern, ck->column, why))
            goto out;
        if (ck->rule == DM_CHECK_IN_LIST) {
            err = DM_ERR_NOMEM;
            if (!(rc->vals = calloc(ck->nvalues + 1, sizeof *rc->vals)))
                goto out;
            err = DM_ERR_INVALID;
            for (size_t j = 0; j < ck->nvalues; j++) {
                if (!dm_schema_value_parse(s->fields[fi].f, ck->values[j], &rc->vals[j])) {
                    if (why)
                        dm_buf_printf(why, "check in_list on '%s': '%s' is not a valid value "
                                           "for it",
                                      s->fields[fi].f->name, ck->values[j]);
                    goto out;
                }
            }
            rc->nvals = ck->nvalues;
            qsort(rc->vals, rc->nvals, sizeof *rc->vals, s_value_cmp);
        }
    }
    *out = s;
    return DM_OK;
out:
    dm_schema_destroy(&s);
    return err;
}

void dm_schema_destroy(dm_schema_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_schema_t *s = *self_p;
    for (size_t i = 0; s->fields && i < s->nfields; i++) {
        free(s->fields[i].vlens);
        dm_sidx_free(&s->fields[i].vidx);
        dm_pattern_destroy(&s->fields[i].re);
    }
    for (size_t k = 0; k < s->nchecks; k++) {
        free(s->checks[k].vals);
        dm_pattern_destroy(&s->checks[k].re);
    }
    free(s->checks);
    free(s->fields);
    free(s->htab);
    free(s);
    *self_p = NULL;
}
