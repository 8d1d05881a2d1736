/* query_conv.c: SQL values as key values of a product's columns (the
 * virtual table's bounds, query_vtab.c), timestamps as SQL text, quoted
 * identifiers. */
#include <math.h>
#include <string.h>

#include "query/query_priv.h"
#include "contract/types.h"

#define S_US_PER_DAY INT64_C(86400000000)
#define S_DOUBLE_EXACT_INT (INT64_C(1) << 53)

/* Writes v as exactly width decimal digits (v < 10^width). */
static void s_digits(char *buf, unsigned v, size_t width)
{
    for (size_t i = width; i-- > 0; v /= 10)
        buf[i] = (char)('0' + v % 10);
}

/* Digits by hand, not snprintf: a full scan formats one timestamp a row,
 * and snprintf's format parsing was ~4% of meshd's CPU in a 10M-row scan. */
size_t dm_query__timestamp_text(int64_t us, char *buf)
{
    int64_t days = us / S_US_PER_DAY, rem = us % S_US_PER_DAY;
    if (rem < 0) {
        rem += S_US_PER_DAY;
        days--;
    }
    size_t n = dm_types_date_format((int32_t)days, buf);
    unsigned secs = (unsigned)(rem / 1000000);
    buf[n] = 'T';
    s_digits(buf + n + 1, secs / 3600, 2);
    buf[n + 3] = ':';
    s_digits(buf + n + 4, secs / 60 % 60, 2);
    buf[n + 6] = ':';
    s_digits(buf + n + 7, secs % 60, 2);
    buf[n + 9] = '.';
    s_digits(buf + n + 10, (unsigned)(rem % 1000000), 6);
    buf[n + 16] = 'Z';
    buf[n + 17] = 0;
    return n + 17;
}

/* Text (or a blob) compared for equality with an int key: the key's
 * INTEGER affinity turns text that looks like a number into that number
 * ('1e3' equals 1000); anything else stays text or blob and equals no
 * integer. */
static dm_qconv s_int_text(sqlite3_value *sv, dm_value_t *out)
{
    if (sqlite3_value_type(sv) == SQLITE_BLOB)
        return DM_QCONV_NEVER;
    sqlite3_value *num = sqlite3_value_dup(sv);
    if (!num)
        return DM_QCONV_NONE;
    int t = sqlite3_value_numeric_type(num);
    dm_qconv conv = DM_QCONV_NEVER;
    if (t == SQLITE_INTEGER) {
        out->i = sqlite3_value_int64(num);
        conv = DM_QCONV_LOOSE;
    } else if (t == SQLITE_FLOAT) {
        double d = sqlite3_value_double(num);
        conv = d == floor(d) && d >= -0x1p63 && d < 0x1p63 ? DM_QCONV_LOOSE : DM_QCONV_NEVER;
        out->i = conv == DM_QCONV_LOOSE ? (int64_t)d : 0;
    }
    sqlite3_value_free(num);
    return conv;
}

dm_qconv dm_query__convert(const dm_contract_t *c, size_t f, int op, sqlite3_value *sv,
                           dm_value_t *out, bool *incl)
{
    const dm_field_t *fd = &c->fields[f];
    bool eq = op == SQLITE_INDEX_CONSTRAINT_EQ;
    int t = sqlite3_value_type(sv);
    memset(out, 0, sizeof *out);
    out->type = fd->type;
    char canon[DM_TIMESTAMP_TEXT_MAX];
    const char *s = t == SQLITE_TEXT ? (const char *)sqlite3_value_text(sv) : NULL;
    size_t n = s ? (size_t)sqlite3_value_bytes(sv) : 0;
    if (t == SQLITE_NULL)
        return eq ? DM_QCONV_NEVER : DM_QCONV_NONE;
    bool textual = fd->type == DM_FT_TIMESTAMP || fd->type == DM_FT_DATE || fd->type == DM_FT_UUID;
    if (eq && textual && !s)
        return DM_QCONV_NEVER;
    switch (fd->type) {
    case DM_FT_INT:
        if (eq && (t == SQLITE_TEXT || t == SQLITE_BLOB))
            return s_int_text(sv, out);
        if (t == SQLITE_INTEGER) {
            out->i = sqlite3_value_int64(sv);
            return DM_QCONV_EXACT;
        }
        if (t == SQLITE_FLOAT) {
            double d = sqlite3_value_double(sv);
            if (d != floor(d) || d < -0x1p63 || d >= 0x1p63)
                return DM_QCONV_NONE;
            out->i = (int64_t)d;
            return DM_QCONV_EXACT;
        }
        return DM_QCONV_NONE;
    case DM_FT_DOUBLE:
        if (t == SQLITE_FLOAT) {
            out->d = sqlite3_value_double(sv);
            return isnan(out->d) ? DM_QCONV_NONE : DM_QCONV_EXACT;
        }
        if (t == SQLITE_INTEGER) {
            int64_t i = sqlite3_value_int64(sv);
            if (i > S_DOUBLE_EXACT_INT || i < -S_DOUBLE_EXACT_INT)
                return DM_QCONV_NONE;
            out->d = (double)i;
            return DM_QCONV_EXACT;
        }
        return DM_QCONV_NONE;
    case DM_FT_BOOLEAN:
        if (t != SQLITE_INTEGER || !eq)
            return DM_QCONV_NONE;
        out->i = sqlite3_value_int64(sv);
        return out->i == 0 || out->i == 1 ? DM_QCONV_EXACT : DM_QCONV_NONE;
    case DM_FT_STRING:
        if (!s)
            return DM_QCONV_NONE;
        out->s = s;
        out->slen = n;
        return DM_QCONV_EXACT;
    case DM_FT_ENUM:
        for (size_t k = 0; s && eq && k < fd->nvalues; k++)
            if (strlen(fd->values[k]) == n && memcmp(fd->values[k], s, n) == 0) {
                out->i = (int64_t)k;
                return DM_QCONV_EXACT;
            }
        return DM_QCONV_NONE; /* index order is not text order: no ranges */
    case DM_FT_UUID:
        if (!s || !dm_types_uuid_parse(s, n, out->uuid))
            return eq ? DM_QCONV_NEVER : DM_QCONV_NONE;
        dm_types_uuid_format(out->uuid, canon);
        if (n == strlen(canon) && memcmp(canon, s, n) == 0)
            return DM_QCONV_EXACT;
        return eq ? DM_QCONV_LOOSE : DM_QCONV_NONE; /* uppercase hex sorts differently */
    case DM_FT_DATE: {
        int32_t d;
        if (!s || !dm_types_date_parse(s, n, &d))
            return eq ? DM_QCONV_NEVER : DM_QCONV_NONE;
        out->i = d;
        size_t cn = dm_types_date_format(d, canon);
        return cn == n && memcmp(canon, s, n) == 0 ? DM_QCONV_EXACT : eq ? DM_QCONV_LOOSE : DM_QCONV_NONE;
    }
    case DM_FT_TIMESTAMP: {
        int32_t d;
        if (s && dm_types_timestamp_parse(s, n, &out->i)) {
            size_t cn = dm_query__timestamp_text(out->i, canon);
            if (cn == n && memcmp(canon, s, n) == 0)
                return DM_QCONV_EXACT;
            return eq ? DM_QCONV_LOOSE : DM_QCONV_NONE;
        }
        /* A date alone: every timestamp text of that day sorts after it,
         * so midnight, inclusive, bounds both ends from outside. */
        if (s && !eq && dm_types_date_parse(s, n, &d)) {
            out->i = (int64_t)d * S_US_PER_DAY;
            *incl = true;
            return DM_QCONV_LOOSE;
        }
        return eq ? DM_QCONV_NEVER : DM_QCONV_NONE;
    }
    default:
        return DM_QCONV_NONE;
    }
}

void dm_query__quote_ident(dm_buf_t *out, const char *ident)
{
    dm_buf_putc(out, '"');
    for (const char *p = ident; *p; p++) {
        if (*p == '"')
            dm_buf_putc(out, '"');
        dm_buf_putc(out, *p);
    }
    dm_buf_putc(out, '"');
}
