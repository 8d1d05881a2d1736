/* rowbatch.c: decoding the row-batch wire form (the encoders are inline in
 * rowbatch.h), and the text SQLite gives a value, so that clients print
 * what the sqlite3 shell prints without linking SQLite. */
#include "transport/rowbatch.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#define S_REAL_DIGITS 15      /* significant digits of SQLite's "%!.15g" */
#define S_REAL_SCRATCH_DIGITS 26 /* digits SQLite's "!" flag computes before padding with 0 */
#define S_REAL_EXP_MAX 350    /* decimal exponent past which SQLite prints Inf */

/* Reads a varint at *p and advances past it; false if cut by end or
 * longer than 64 bits. */
static inline bool s_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    size_t n = dm_varint_decode(*p, (size_t)(end - *p), v);
    *p += n;
    return n != 0;
}

bool dm_rowbatch_read(const uint8_t **p, const uint8_t *end, dm_rowbatch_value_t *v)
{
    memset(v, 0, sizeof *v);
    if (*p >= end)
        return false;
    uint8_t tag = *(*p)++;
    uint64_t u;
    switch (tag) {
    case DM_ROWBATCH_NULL:
        v->type = DM_ROWBATCH_NULL;
        return true;
    case DM_ROWBATCH_INT:
        if (!s_read_varint(p, end, &u))
            return false;
        v->type = DM_ROWBATCH_INT;
        v->i = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        return true;
    case DM_ROWBATCH_REAL:
        if (end - *p < DM_ROWBATCH_REAL_BYTES)
            return false;
        u = 0;
        for (int k = 0; k < DM_ROWBATCH_REAL_BYTES; k++)
            u |= (uint64_t)(*p)[k] << 8 * k;
        memcpy(&v->d, &u, sizeof u);
        *p += DM_ROWBATCH_REAL_BYTES;
        v->type = DM_ROWBATCH_REAL;
        return true;
    case DM_ROWBATCH_TEXT:
    case DM_ROWBATCH_BLOB:
        if (!s_read_varint(p, end, &u) || u > (uint64_t)(end - *p))
            return false;
        v->type = (dm_rowbatch_type)tag;
        v->s = (const char *)*p;
        v->len = (size_t)u;
        *p += u;
        return true;
    default:
        return false;
    }
}

/* The next digit of *val (in [0, 10)), consuming one of *left significant
 * digits; '0' once they are used up. */
static char s_digit(long double *val, int *left)
{
    if (*left <= 0)
        return '0';
    (*left)--;
    int digit = (int)*val;
    *val = (*val - (long double)digit) * 10.0;
    return (char)('0' + digit);
}

/* SQLite 3.40's "%!.15g" (src/printf.c, etGENERIC with the alt-form-2
 * flag), step for step and in long double like it (its constants are
 * doubles, so ours are too), so that every digit matches: scale into
 * [1, 10), add half a unit of the 15th digit, then fixed notation for
 * exponents -4..14 and exponential otherwise, trailing zeros dropped but
 * one kept after the point. glibc's "%.15g" rounds exact halves to even
 * and would differ in the last digit there. test_rowbatch.c checks it
 * against the SQLite the node links. */
size_t dm_rowbatch_real_text(double d, char *buf)
{
    if (isnan(d))
        return (size_t)snprintf(buf, DM_ROWBATCH_REAL_TEXT_MAX, "NaN");
    long double val = d;
    bool neg = val < 0.0L;
    if (neg)
        val = -val;
    int exp = 0, precision = S_REAL_DIGITS - 1;
    if (val > 0.0L) {
        long double scale = 1.0L;
        while (val >= 1e100 * scale && exp <= S_REAL_EXP_MAX) {
            scale *= 1e100;
            exp += 100;
        }
        while (val >= 1e10 * scale && exp <= S_REAL_EXP_MAX) {
            scale *= 1e10;
            exp += 10;
        }
        while (val >= 10.0 * scale && exp <= S_REAL_EXP_MAX) {
            scale *= 10.0L;
            exp++;
        }
        val /= scale;
        while (val < 1e-8) {
            val *= 1e8;
            exp -= 8;
        }
        while (val < 1.0) {
            val *= 10.0;
            exp--;
        }
        if (exp > S_REAL_EXP_MAX)
            return (size_t)snprintf(buf, DM_ROWBATCH_REAL_TEXT_MAX, "%sInf", neg ? "-" : "");
    }
    /* SQLite's rounder: 5.0e-(precision % 10) as a double, then scaled by
     * 1e-10 per whole ten, in long double. */
    static const double round_by[] = {5.0e-01, 5.0e-02, 5.0e-03, 5.0e-04, 5.0e-05,
                                      5.0e-06, 5.0e-07, 5.0e-08, 5.0e-09, 5.0e-10};
    double rounder = round_by[precision % 10];
    for (int k = precision; k >= 10; k -= 10)
        rounder *= 1.0e-10;
    val += rounder;
    if (val >= 10.0) {
        val *= 0.1;
        exp++;
    }
    bool exponential = exp < -4 || exp > precision;
    int e2 = exponential ? 0 : exp;
    if (!exponential)
        precision -= exp;
    int left = S_REAL_SCRATCH_DIGITS;
    char *o = buf;
    if (neg)
        *o++ = '-';
    if (e2 < 0)
        *o++ = '0';
    for (; e2 >= 0; e2--)
        *o++ = s_digit(&val, &left);
    *o++ = '.';
    for (e2++; e2 < 0 && precision > 0; precision--, e2++)
        *o++ = '0';
    while (precision-- > 0)
        *o++ = s_digit(&val, &left);
    while (o[-1] == '0')
        o--;
    if (o[-1] == '.')
        *o++ = '0';
    if (exponential) {
        *o++ = 'e';
        int x = exp;
        *o++ = x < 0 ? '-' : '+';
        if (x < 0)
            x = -x;
        if (x >= 100) {
            *o++ = (char)('0' + x / 100);
            x %= 100;
        }
        *o++ = (char)('0' + x / 10);
        *o++ = (char)('0' + x % 10);
    }
    *o = 0;
    return (size_t)(o - buf);
}

void dm_rowbatch_text(const dm_rowbatch_value_t *v, dm_buf_t *out)
{
    char num[DM_ROWBATCH_REAL_TEXT_MAX];
    switch (v->type) {
    case DM_ROWBATCH_INT:
        dm_buf_printf(out, "%" PRId64, v->i);
        break;
    case DM_ROWBATCH_REAL:
        dm_buf_append(out, num, dm_rowbatch_real_text(v->d, num));
        break;
    case DM_ROWBATCH_TEXT:
    case DM_ROWBATCH_BLOB:
        dm_buf_append(out, v->s, v->len);
        break;
    case DM_ROWBATCH_NULL:
        break;
    }
}
