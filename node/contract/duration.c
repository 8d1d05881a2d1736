/* duration.c: contract durations ("5m", "PT5M") -> milliseconds.
 *
 * Two spellings: one integer with a unit (ms, s, m, h, d, w, y), or an ISO
 * 8601 duration P[nY][nM][nW][nD][T[nH][nM][n[.fff]S]]. A year is 365 days
 * and an ISO month 30 days, so every duration is an exact count of
 * milliseconds. Overflow of int64 milliseconds is a parse failure. */
#include "contract/contract.h"

#include <string.h>

#define S_MS_SECOND INT64_C(1000)
#define S_MS_MINUTE (60 * S_MS_SECOND)
#define S_MS_HOUR (60 * S_MS_MINUTE)
#define S_MS_DAY (24 * S_MS_HOUR)
#define S_MS_WEEK (7 * S_MS_DAY)
#define S_MS_MONTH (30 * S_MS_DAY)
#define S_MS_YEAR (365 * S_MS_DAY)

/* *acc += n * unit; false on overflow. */
static bool s_add(int64_t *acc, int64_t n, int64_t unit)
{
    if (n > (INT64_MAX - *acc) / unit)
        return false;
    *acc += n * unit;
    return true;
}

/* Reads decimal digits at s[*i]; false if none or overflow. */
static bool s_digits(const char *s, size_t len, size_t *i, int64_t *out)
{
    size_t start = *i;
    int64_t v = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        int d = s[*i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        (*i)++;
    }
    *out = v;
    return *i > start;
}

static bool s_simple(const char *s, size_t len, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},        {"s", S_MS_SECOND}, {"m", S_MS_MINUTE}, {"h", S_MS_HOUR},
                 {"d", S_MS_DAY},  {"w", S_MS_WEEK},   {"y", S_MS_YEAR}};
    size_t i = 0;
    int64_t n;
    if (!s_digits(s, len, &i, &n))
        return false;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t ul = strlen(units[u].unit);
        if (len - i == ul && memcmp(s + i, units[u].unit, ul) == 0) {
            *ms = 0;
            return s_add(ms, n, units[u].ms);
        }
    }
    return false;
}

static bool s_iso(const char *s, size_t len, int64_t *ms)
{
    static const char date_units[] = "YMWD";
    static const int64_t date_ms[] = {S_MS_YEAR, S_MS_MONTH, S_MS_WEEK, S_MS_DAY};
    static const char time_units[] = "HMS";
    static const int64_t time_ms[] = {S_MS_HOUR, S_MS_MINUTE, S_MS_SECOND};
    size_t i = 1; /* past 'P' */
    int64_t acc = 0;
    int parts = 0;
    size_t next = 0; /* designators must come in order, each at most once */
    while (i < len && s[i] != 'T') {
        int64_t n;
        if (!s_digits(s, len, &i, &n) || i >= len)
            return false;
        const char *u = strchr(date_units + next, s[i]);
        if (!u || !s[i])
            return false;
        size_t k = (size_t)(u - date_units);
        if (!s_add(&acc, n, date_ms[k]))
            return false;
        next = k + 1;
        parts++;
        i++;
    }
    if (i < len) { /* 'T' */
        i++;
        if (i == len)
            return false;
        next = 0;
        while (i < len) {
            int64_t n, frac = 0;
            if (!s_digits(s, len, &i, &n) || i >= len)
                return false;
            if (s[i] == '.') { /* fraction, seconds only, up to milliseconds */
                i++;
                int64_t scale = 100;
                size_t fstart = i;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                    if (scale == 0)
                        return false;
                    frac += (s[i] - '0') * scale;
                    scale /= 10;
                    i++;
                }
                if (i == fstart || i >= len || s[i] != 'S')
                    return false;
            }
            const char *u = strchr(time_units + next, s[i]);
            if (!u || !s[i])
                return false;
            size_t k = (size_t)(u - time_units);
            if (!s_add(&acc, n, time_ms[k]) || !s_add(&acc, frac, 1))
                return false;
            next = k + 1;
            parts++;
            i++;
        }
    }
    if (parts == 0)
        return false;
    *ms = acc;
    return true;
}

bool dm_contract_duration_parse(const char *s, size_t len, int64_t *ms_out)
{
    int64_t ms = 0;
    bool ok = len > 0 && (s[0] == 'P' ? s_iso(s, len, &ms) : s_simple(s, len, &ms));
    if (ok)
        *ms_out = ms;
    return ok;
}
