/* row.c: decoding encoded rows (the format of row.h), a value as text and
 * a row as JSON (dm_row_to_json), and encoding primary keys (the format of
 * schema.h), apart from schema.c's validation.
 *
 * A row carries its own field count. When a product is upgraded with new
 * optional fields at the end, rows written before have fewer fields than
 * the schema: their slots sit right after their own (maybe shorter) null
 * bitmap, and the fields they lack read as null. A row with more fields
 * than the schema (written under a newer version than the reader holds)
 * reads its first fields the same way. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/row.h"
#include "record/schema_priv.h"

static uint16_t s_get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t s_get64(const uint8_t *p) { return (uint64_t)s_get32(p) | (uint64_t)s_get32(p + 4) << 32; }

size_t dm_schema__fmt_double(double d, char *buf, size_t cap)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return (size_t)n;
}

size_t dm_schema__value_text(const dm_value_t *v, char *tmp, const char **t)
{
    *t = tmp;
    switch (v->type) {
    case DM_FT_STRING: case DM_FT_ENUM: *t = v->s; return v->slen;
    case DM_FT_INT: return (size_t)snprintf(tmp, DM_SCHEMA__TEXT_MAX, "%lld", (long long)v->i);
    case DM_FT_DOUBLE: return dm_schema__fmt_double(v->d, tmp, DM_SCHEMA__TEXT_MAX);
    case DM_FT_BOOLEAN: *t = v->i ? "true" : "false"; return strlen(*t);
    case DM_FT_TIMESTAMP: return dm_types_timestamp_format(v->i, tmp);
    case DM_FT_DATE: return dm_types_date_format((int32_t)v->i, tmp);
    default: return dm_types_uuid_format(v->uuid, tmp);
    }
}

bool dm_row_get(const dm_schema_t *s, const void *row, size_t len, size_t field, dm_value_t *out)
{
    assert(field < s->nfields);
    const uint8_t *r = row;
    const dm_schema__field_t *sf = &s->fields[field];
    memset(out, 0, sizeof *out);
    out->type = sf->f->type;
    if (len < DM_SCHEMA__ROW_FIXED || r[0] != DM_ROW_VERSION)
        return false;
    size_t nrow = s_get16(r + 2), slot = sf->slot, strings = s->header;
    if (nrow != s->nfields) {
        /* Slots shift with the row's own bitmap; strings start after the
         * row's own slots (for a longer row: at least after ours). */
        size_t bitmap_end = DM_SCHEMA__ROW_FIXED + (nrow + 7) / 8;
        if (len < bitmap_end)
            return false;
        if (field >= nrow) {
            out->is_null = true;
            return true;
        }
        slot = slot - s->bitmap_end + bitmap_end;
        strings = (nrow < s->nfields ? s->fields[nrow].slot : s->header) - s->bitmap_end + bitmap_end;
    }
    if (len < strings || slot + sf->width > len)
        return false;
    out->is_null = r[DM_SCHEMA__ROW_FIXED + field / 8] >> (field % 8) & 1;
    if (out->is_null)
        return true;
    const uint8_t *p = r + slot;
    uint64_t u;
    switch (sf->f->type) {
    case DM_FT_STRING: {
        uint32_t off = s_get32(p), n = s_get32(p + 4);
        if (off < strings || off > len || n > len - off)
            return false;
        out->s = (const char *)r + off;
        out->slen = n;
        break;
    }
    case DM_FT_INT: case DM_FT_TIMESTAMP:
        out->i = (int64_t)s_get64(p);
        break;
    case DM_FT_DOUBLE:
        u = s_get64(p);
        memcpy(&out->d, &u, sizeof u);
        break;
    case DM_FT_BOOLEAN:
        if (*p > 1)
            return false;
        out->i = *p;
        break;
    case DM_FT_DATE:
        out->i = (int32_t)s_get32(p);
        break;
    case DM_FT_UUID:
        memcpy(out->uuid, p, DM_UUID_BYTES);
        break;
    case DM_FT_ENUM:
        out->i = s_get16(p);
        if ((size_t)out->i >= sf->f->nvalues)
            return false;
        out->s = sf->f->values[out->i];
        out->slen = sf->vlens[out->i];
        break;
    default:
        return false;
    }
    return true;
}

void dm_row_to_json(const dm_schema_t *s, const void *row, size_t len, dm_buf_t *out)
{
    size_t start = out->len;
    dm_buf_putc(out, '{');
    for (size_t i = 0; i < s->nfields; i++) {
        dm_value_t v;
        char tmp[DM_SCHEMA__TEXT_MAX];
        const char *t;
        if (!dm_row_get(s, row, len, i, &v)) {
            out->len = start;
            dm_buf_puts(out, "{}");
            return;
        }
        if (i)
            dm_buf_putc(out, ',');
        dm_buf_json_string(out, s->fields[i].f->name, s->fields[i].nlen);
        dm_buf_putc(out, ':');
        size_t n = v.is_null ? 0 : dm_schema__value_text(&v, tmp, &t);
        if (v.is_null)
            dm_buf_puts(out, "null");
        else if (v.type == DM_FT_INT || v.type == DM_FT_DOUBLE || v.type == DM_FT_BOOLEAN)
            dm_buf_append(out, t, n);
        else
            dm_buf_json_string(out, t, n);
    }
    dm_buf_putc(out, '}');
}

static void s_put_be(dm_buf_t *key, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> 8 * (n - 1 - i));
    dm_buf_append(key, b, n);
}

void dm_schema_key_append(const dm_schema_t *s, size_t field, const dm_value_t *v, dm_buf_t *key)
{
    assert(field < s->nfields && !v->is_null);
    switch (s->fields[field].f->type) {
    case DM_FT_INT: case DM_FT_TIMESTAMP:
        s_put_be(key, (uint64_t)v->i ^ UINT64_C(0x8000000000000000), 8);
        break;
    case DM_FT_DATE:
        s_put_be(key, (uint32_t)(int32_t)v->i ^ UINT32_C(0x80000000), 4);
        break;
    case DM_FT_BOOLEAN:
        s_put_be(key, v->i != 0, 1);
        break;
    case DM_FT_ENUM:
        s_put_be(key, (uint16_t)v->i, 2);
        break;
    case DM_FT_UUID:
        dm_buf_append(key, v->uuid, DM_UUID_BYTES);
        break;
    case DM_FT_DOUBLE: {
        double d = v->d == 0 ? 0.0 : v->d;
        uint64_t u;
        memcpy(&u, &d, sizeof u);
        u = u >> 63 ? ~u : u ^ UINT64_C(0x8000000000000000);
        s_put_be(key, u, 8);
        break;
    }
    default: { /* string */
        const char *p = v->s, *end = v->s + v->slen;
        while (p < end) {
            const char *z = memchr(p, 0, (size_t)(end - p));
            size_t run = z ? (size_t)(z - p) : (size_t)(end - p);
            dm_buf_append(key, p, run);
            if (!z)
                break;
            dm_buf_append(key, "\0\xff", 2);
            p = z + 1;
        }
        dm_buf_append(key, "\0\x01", 2);
        break;
    }
    }
}
