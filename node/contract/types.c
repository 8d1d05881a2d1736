/* types.c: parsers and formatters for the contract's scalar types.
 *
 * These run once per field per record on the ingest path, so they are
 * hand-written digit loops rather than sscanf/strptime, and they never
 * allocate except dm_types_double_parse on pathologically long numbers (see
 * there). Dates use the proleptic Gregorian calendar (Hinnant's
 * days_from_civil / civil_from_days). */
#include "contract/types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_SEC INT64_C(1000000)
#define SEC_PER_MIN 60
#define SEC_PER_HOUR 3600
#define SEC_PER_DAY INT64_C(86400)
#define DOUBLE_STACK_TEXT 128 /* numbers longer than this are copied to the heap for strtod */
#define CLINGER_MAX_MANTISSA (UINT64_C(1) << 53)
#define CLINGER_MAX_POW10 22

static inline bool s_isdigit(char c) { return (unsigned)(unsigned char)c - '0' <= 9u; }

/* Reads n decimal digits at s into *out. Returns false on a non-digit. */
static bool s_digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool s_is_leap(unsigned y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned s_month_days(unsigned y, unsigned m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && s_is_leap(y) ? 29 : days[m - 1];
}

int64_t dm_types_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Inverse of dm_types_days_from_civil. */
static void s_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* "YYYY-MM-DD" at s (10 bytes available). */
static bool s_date10(const char *s, int64_t *days)
{
    unsigned y, m, d;
    if (s[4] != '-' || s[7] != '-' || !s_digits(s, 4, &y) || !s_digits(s + 5, 2, &m) ||
        !s_digits(s + 8, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1 || d > s_month_days(y, m))
        return false;
    *days = dm_types_days_from_civil(y, m, d);
    return true;
}

bool dm_types_date_parse(const char *s, size_t len, int32_t *days_out)
{
    int64_t days;
    if (len != 10 || !s_date10(s, &days))
        return false;
    *days_out = (int32_t)days;
    return true;
}

static void s_put_digits(char *buf, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        buf[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Writes YYYY-MM-DD; years outside 0000-9999 (only reachable through an
 * offset at the calendar's edge) get ISO 8601's expanded "+YYYYY" form. */
static size_t s_format_civil(int64_t days, char *buf)
{
    int64_t y;
    unsigned m, d;
    s_civil_from_days(days, &y, &m, &d);
    size_t n = 4;
    if (y >= 0 && y <= 9999)
        s_put_digits(buf, (unsigned)y, 4);
    else
        n = (size_t)snprintf(buf, DM_TIMESTAMP_TEXT_MAX - 20, "%+05lld", (long long)y);
    buf[n] = '-';
    s_put_digits(buf + n + 1, m, 2);
    buf[n + 3] = '-';
    s_put_digits(buf + n + 4, d, 2);
    return n + 6;
}

/* The parser only yields years 0000-9999, which fit the 11-byte buffer; any
 * other day number is formatted expanded and cut to fit rather than overrun. */
size_t dm_types_date_format(int32_t days, char *buf)
{
    char tmp[DM_TIMESTAMP_TEXT_MAX];
    size_t n = s_format_civil(days, tmp);
    if (n > 10)
        n = 10;
    memcpy(buf, tmp, n);
    buf[n] = 0;
    return n;
}

/* Leap seconds (":60") are refused: the stored form is POSIX time, which
 * cannot represent them, and accepting them silently would shift data. */
dm_types_ts_status_t dm_types_timestamp_check(const char *s, size_t len, int64_t *us_out)
{
    int64_t days;
    unsigned hh, mi, ss, oh, om;
    if (len < 20 || !s_date10(s, &days))
        return DM_TS_SYNTAX;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return DM_TS_SYNTAX;
    if (s[13] != ':' || s[16] != ':' || !s_digits(s + 11, 2, &hh) ||
        !s_digits(s + 14, 2, &mi) || !s_digits(s + 17, 2, &ss))
        return DM_TS_SYNTAX;
    if (hh > 23 || mi > 59 || ss > 59)
        return DM_TS_SYNTAX;
    size_t i = 19;
    int64_t frac_us = 0;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && s_isdigit(s[i]))
            i++;
        size_t nd = i - start;
        if (nd < 1 || nd > 9)
            return DM_TS_SYNTAX;
        for (size_t k = 0; k < 6; k++)
            frac_us = frac_us * 10 + (k < nd ? s[start + k] - '0' : 0);
    }
    if (i >= len)
        return DM_TS_SYNTAX;
    int64_t off_sec = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        if (len - i < 6 || s[i + 3] != ':' || !s_digits(s + i + 1, 2, &oh) ||
            !s_digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return DM_TS_SYNTAX;
        off_sec = (int64_t)oh * SEC_PER_HOUR + (int64_t)om * SEC_PER_MIN;
        if (s[i] == '-')
            off_sec = -off_sec;
        i += 6;
    } else {
        return DM_TS_SYNTAX;
    }
    if (i != len)
        return DM_TS_SYNTAX;
    int64_t secs = days * SEC_PER_DAY + (int64_t)hh * SEC_PER_HOUR + (int64_t)mi * SEC_PER_MIN +
                   (int64_t)ss - off_sec;
    int64_t us = secs * US_PER_SEC + frac_us;
    /* days is at most 9999-12-31, so this cannot overflow; only the offset
     * can carry the instant past either end of the four-digit years */
    if (us < DM_TIMESTAMP_MIN_US || us > DM_TIMESTAMP_MAX_US)
        return DM_TS_RANGE;
    *us_out = us;
    return DM_TS_OK;
}

bool dm_types_timestamp_parse(const char *s, size_t len, int64_t *us_out)
{
    return dm_types_timestamp_check(s, len, us_out) == DM_TS_OK;
}

size_t dm_types_timestamp_format(int64_t us, char *buf)
{
    /* floor division so instants before 1970 format correctly */
    int64_t secs = us / US_PER_SEC, frac = us % US_PER_SEC;
    if (frac < 0) {
        frac += US_PER_SEC;
        secs--;
    }
    int64_t days = secs / SEC_PER_DAY, sod = secs % SEC_PER_DAY;
    if (sod < 0) {
        sod += SEC_PER_DAY;
        days--;
    }
    size_t n = s_format_civil(days, buf);
    buf[n++] = 'T';
    s_put_digits(buf + n, (unsigned)(sod / SEC_PER_HOUR), 2);
    buf[n + 2] = ':';
    s_put_digits(buf + n + 3, (unsigned)(sod / SEC_PER_MIN % 60), 2);
    buf[n + 5] = ':';
    s_put_digits(buf + n + 6, (unsigned)(sod % 60), 2);
    n += 8;
    if (frac) {
        buf[n++] = '.';
        if (frac % 1000 == 0) { /* milliseconds are the common case: keep them short */
            s_put_digits(buf + n, (unsigned)(frac / 1000), 3);
            n += 3;
        } else {
            s_put_digits(buf + n, (unsigned)frac, 6);
            n += 6;
        }
    }
    buf[n++] = 'Z';
    buf[n] = 0;
    return n;
}

static int s_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool dm_types_uuid_parse(const char *s, size_t len, uint8_t out[DM_UUID_BYTES])
{
    if (len != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
        return false;
    size_t o = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            i++;
            continue;
        }
        int hi = s_hexval((unsigned char)s[i]), lo = s_hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return true;
}

size_t dm_types_uuid_format(const uint8_t in[DM_UUID_BYTES], char *buf)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < DM_UUID_BYTES; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            buf[n++] = '-';
        buf[n++] = hex[in[i] >> 4];
        buf[n++] = hex[in[i] & 15];
    }
    buf[n] = 0;
    return n;
}

/* The parts of a JSON number: -? int (. frac)? ([eE] [+-]? exp)? */
typedef struct {
    bool neg;
    const char *ip, *fp; /* integer and fraction digits */
    size_t in, fn;
    int64_t exp; /* saturated near +-S_EXP_CAP */
} s_num_t;

#define S_EXP_CAP 100000

/* Splits s into the parts of a JSON number; false if it is not one. */
static bool s_json_number(const char *s, size_t len, s_num_t *n)
{
    size_t i = 0;
    memset(n, 0, sizeof *n);
    if (i < len && s[i] == '-') {
        n->neg = true;
        i++;
    }
    n->ip = s + i;
    if (i < len && s[i] == '0') {
        i++;
    } else {
        while (i < len && s_isdigit(s[i]))
            i++;
    }
    n->in = (size_t)(s + i - n->ip);
    if (n->in == 0)
        return false;
    if (i < len && s[i] == '.') {
        n->fp = s + ++i;
        while (i < len && s_isdigit(s[i]))
            i++;
        n->fn = (size_t)(s + i - n->fp);
        if (n->fn == 0)
            return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        bool eneg = false;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        size_t start = i;
        while (i < len && s_isdigit(s[i])) {
            if (n->exp < S_EXP_CAP)
                n->exp = n->exp * 10 + (s[i] - '0');
            i++;
        }
        if (i == start)
            return false;
        if (eneg)
            n->exp = -n->exp;
    }
    return i == len;
}

bool dm_types_int_parse(const char *s, size_t len, int64_t *out)
{
    s_num_t n;
    if (!s_json_number(s, len, &n))
        return false;
    /* significant digits: int digits then fraction digits, value = D * 10^e */
    const char *ip = n.ip;
    size_t in = n.in, fn = n.fn;
    int64_t e = n.exp - (int64_t)fn;
    while (fn > 0 && n.fp[fn - 1] == '0' && e < 0) {
        fn--;
        e++;
    }
    if (fn == 0)
        while (in > 0 && ip[in - 1] == '0' && e < 0) {
            in--;
            e++;
        }
    uint64_t limit = n.neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    bool any = false; /* a nonzero digit seen */
    for (size_t k = 0; k < in + fn; k++) {
        unsigned d = (unsigned)((k < in ? ip[k] : n.fp[k - in]) - '0');
        if (d)
            any = true;
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (e < 0) {
        if (any) /* a nonzero fraction digit is left: not an integer */
            return false;
        *out = 0;
        return true;
    }
    for (int64_t k = 0; k < e && v; k++) {
        if (v > limit / 10)
            return false;
        v *= 10;
    }
    *out = n.neg ? (int64_t)(0 - v) : (int64_t)v;
    if (n.neg && v == (uint64_t)INT64_MAX + 1)
        *out = INT64_MIN;
    return true;
}

bool dm_types_double_parse(const char *s, size_t len, double *out)
{
    static const double pow10[CLINGER_MAX_POW10 + 1] = {
        1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    s_num_t n;
    if (!s_json_number(s, len, &n))
        return false;
    /* Clinger's fast path: a mantissa below 2^53 times an exact power of
     * ten is correctly rounded by one IEEE operation. Covers "123.45". */
    if (n.in + n.fn <= 19) {
        uint64_t m = 0;
        for (size_t k = 0; k < n.in; k++)
            m = m * 10 + (uint64_t)(n.ip[k] - '0');
        for (size_t k = 0; k < n.fn; k++)
            m = m * 10 + (uint64_t)(n.fp[k] - '0');
        int64_t e = n.exp - (int64_t)n.fn;
        if (m < CLINGER_MAX_MANTISSA && e >= -CLINGER_MAX_POW10 && e <= CLINGER_MAX_POW10) {
            double d = (double)m;
            d = e < 0 ? d / pow10[-e] : d * pow10[e];
            *out = n.neg ? -d : d;
            return true;
        }
    }
    /* strtod wants a NUL; the grammar check above means it sees only a
     * JSON number (no hex, inf or nan). The C locale is assumed. */
    char stack[DOUBLE_STACK_TEXT];
    char *text = len < sizeof stack ? stack : malloc(len + 1);
    if (!text)
        return false;
    memcpy(text, s, len);
    text[len] = 0;
    double d = strtod(text, NULL);
    if (text != stack)
        free(text);
    if (!isfinite(d))
        return false;
    *out = d;
    return true;
}
