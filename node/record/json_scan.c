/* json_scan.c: strict single-line JSON object scanner (see json_scan.h).
 *
 * Strings are the bulk of a record, so the string loop skips plain ASCII
 * through a byte-class table and only decodes escapes and multi-byte UTF-8
 * where they occur. Containers nested in a value are checked iteratively
 * with a bit stack (object or array per level), so hostile nesting cannot
 * exhaust the C stack. */
#include "record/json_scan.h"

#include <stdint.h>
#include <string.h>

enum { S_START, S_MEMBERS, S_DONE, S_ERROR };

/* byte classes inside a string */
enum { C_PLAIN = 0, C_QUOTE, C_BSLASH, C_CTRL, C_HIGH };

static const unsigned char s_class[256] = {
    [0x00] = C_CTRL, [0x01] = C_CTRL, [0x02] = C_CTRL, [0x03] = C_CTRL, [0x04] = C_CTRL,
    [0x05] = C_CTRL, [0x06] = C_CTRL, [0x07] = C_CTRL, [0x08] = C_CTRL, [0x09] = C_CTRL,
    [0x0a] = C_CTRL, [0x0b] = C_CTRL, [0x0c] = C_CTRL, [0x0d] = C_CTRL, [0x0e] = C_CTRL,
    [0x0f] = C_CTRL, [0x10] = C_CTRL, [0x11] = C_CTRL, [0x12] = C_CTRL, [0x13] = C_CTRL,
    [0x14] = C_CTRL, [0x15] = C_CTRL, [0x16] = C_CTRL, [0x17] = C_CTRL, [0x18] = C_CTRL,
    [0x19] = C_CTRL, [0x1a] = C_CTRL, [0x1b] = C_CTRL, [0x1c] = C_CTRL, [0x1d] = C_CTRL,
    [0x1e] = C_CTRL, [0x1f] = C_CTRL, ['"'] = C_QUOTE, ['\\'] = C_BSLASH,
#define H16(x) [x] = C_HIGH, [x + 1] = C_HIGH, [x + 2] = C_HIGH, [x + 3] = C_HIGH, \
    [x + 4] = C_HIGH, [x + 5] = C_HIGH, [x + 6] = C_HIGH, [x + 7] = C_HIGH, [x + 8] = C_HIGH, \
    [x + 9] = C_HIGH, [x + 10] = C_HIGH, [x + 11] = C_HIGH, [x + 12] = C_HIGH, \
    [x + 13] = C_HIGH, [x + 14] = C_HIGH, [x + 15] = C_HIGH
    H16(0x80), H16(0x90), H16(0xa0), H16(0xb0), H16(0xc0), H16(0xd0), H16(0xe0), H16(0xf0),
#undef H16
};

static bool s_fail(dm_json_scan_t *sc, const char *at, const char *what)
{
    sc->err = what;
    sc->err_col = (size_t)(at - sc->start) + 1;
    sc->state = S_ERROR;
    return false;
}

static inline void s_ws(dm_json_scan_t *sc)
{
    const char *p = sc->p, *end = sc->end;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    sc->p = p;
}

static int s_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads 4 hex digits at p (bounds checked by the caller). -1 if not hex. */
static long s_hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = s_hex((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Validates one UTF-8 sequence starting with a byte >= 0x80 at p. Returns
 * its length, or 0 if it is not well-formed (Unicode table 3-7). */
static size_t s_utf8(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f; /* no encoded surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Scans a string at sc->p (on the opening quote). Sets the body, whether it
 * has escapes and its length in code points; leaves sc->p after the quote. */
static bool s_string(dm_json_scan_t *sc, const char **body, size_t *blen, bool *escaped,
                     size_t *cps)
{
    const unsigned char *p = (const unsigned char *)sc->p + 1;
    const unsigned char *end = (const unsigned char *)sc->end;
    const unsigned char *b = p;
    size_t extra = 0; /* bytes beyond one per code point */
    bool esc = false;
    for (;;) {
        while (p < end && s_class[*p] == C_PLAIN)
            p++;
        if (p >= end)
            return s_fail(sc, sc->p, "unterminated string");
        switch (s_class[*p]) {
        case C_QUOTE:
            *body = (const char *)b;
            *blen = (size_t)(p - b);
            *escaped = esc;
            *cps = *blen - extra;
            sc->p = (const char *)p + 1;
            return true;
        case C_CTRL:
            return s_fail(sc, (const char *)p, "control character in string");
        case C_HIGH: {
            size_t n = s_utf8(p, end);
            if (!n)
                return s_fail(sc, (const char *)p, "invalid UTF-8");
            p += n;
            extra += n - 1;
            break;
        }
        default: { /* backslash */
            const unsigned char *e = p;
            esc = true;
            if (end - p < 2)
                return s_fail(sc, (const char *)e, "unterminated string");
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                extra += 1;
                break;
            case 'u': {
                long u = end - p >= 6 ? s_hex4((const char *)p + 2) : -1;
                if (u < 0)
                    return s_fail(sc, (const char *)e, "invalid \\u escape");
                if (u >= 0xdc00 && u <= 0xdfff)
                    return s_fail(sc, (const char *)e, "lone surrogate \\u escape");
                if (u >= 0xd800 && u <= 0xdbff) {
                    long lo = end - p >= 12 && p[6] == '\\' && p[7] == 'u'
                                  ? s_hex4((const char *)p + 8) : -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return s_fail(sc, (const char *)e, "lone surrogate \\u escape");
                    p += 12;
                    extra += 11;
                } else {
                    p += 6;
                    extra += 5;
                }
                break;
            }
            default:
                return s_fail(sc, (const char *)e, "invalid escape");
            }
        }
        }
    }
}

static inline bool s_isdigit(char c) { return (unsigned)(unsigned char)c - '0' <= 9u; }

/* Scans a JSON number at sc->p; sets *is_int when it has no '.' or exponent. */
static bool s_number(dm_json_scan_t *sc, bool *is_int)
{
    const char *p = sc->p, *end = sc->end, *s = p;
    *is_int = true;
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && s_isdigit(*p))
        while (p < end && s_isdigit(*p))
            p++;
    else
        return s_fail(sc, s, "invalid number");
    if (p < end && *p == '.') {
        *is_int = false;
        if (++p >= end || !s_isdigit(*p))
            return s_fail(sc, s, "invalid number");
        while (p < end && s_isdigit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_int = false;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !s_isdigit(*p))
            return s_fail(sc, s, "invalid number");
        while (p < end && s_isdigit(*p))
            p++;
    }
    sc->p = p;
    return true;
}

static bool s_literal(dm_json_scan_t *sc, const char *word, size_t n)
{
    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, word, n) != 0)
        return s_fail(sc, sc->p, "unexpected character");
    sc->p += n;
    return true;
}

/* Scans true, false or null at sc->p (its first byte is t, f or n); *type
 * gets which. Inline: the caller's switch has already read that byte. */
static inline bool s_word(dm_json_scan_t *sc, dm_json_type *type)
{
    switch (*sc->p) {
    case 't': *type = DM_JSON_TRUE; return s_literal(sc, "true", 4);
    case 'f': *type = DM_JSON_FALSE; return s_literal(sc, "false", 5);
    default: *type = DM_JSON_NULL; return s_literal(sc, "null", 4);
    }
}

/* Scans a string used as a key inside a nested object, then the colon. */
static bool s_nested_key(dm_json_scan_t *sc)
{
    const char *b;
    size_t bl, cps;
    bool esc;
    if (sc->p >= sc->end || *sc->p != '"')
        return s_fail(sc, sc->p, "expected a key");
    if (!s_string(sc, &b, &bl, &esc, &cps))
        return false;
    s_ws(sc);
    if (sc->p >= sc->end || *sc->p != ':')
        return s_fail(sc, sc->p, "expected ':'");
    sc->p++;
    s_ws(sc);
    return true;
}

/* Scans any value at sc->p and sets m's value fields. Containers are walked
 * to their end with a bit stack: bit set = object, clear = array. */
static bool s_value(dm_json_scan_t *sc, dm_json_member_t *m)
{
    uint64_t stack[DM_JSON_MAX_DEPTH / 64];
    size_t depth = 0;
    const char *vstart = sc->p;
    m->val_col = (size_t)(vstart - sc->start) + 1;
    m->val_escaped = false;
    m->num_is_int = false;
    m->val_cps = 0;
    for (;;) {
        const char *b;
        size_t bl, cps;
        bool esc, isint;
        if (sc->p >= sc->end)
            return s_fail(sc, sc->p, "unexpected end of line");
        switch (*sc->p) {
        case '"':
            if (!s_string(sc, &b, &bl, &esc, &cps))
                return false;
            if (depth == 0) {
                m->type = DM_JSON_STRING;
                m->val = b;
                m->val_len = bl;
                m->val_escaped = esc;
                m->val_cps = cps;
                return true;
            }
            break;
        case '{': case '[': {
            bool obj = *sc->p == '{';
            if (depth == DM_JSON_MAX_DEPTH)
                return s_fail(sc, sc->p, "nesting too deep");
            if (depth == 0)
                m->type = obj ? DM_JSON_OBJECT : DM_JSON_ARRAY;
            if (obj)
                stack[depth / 64] |= UINT64_C(1) << (depth % 64);
            else
                stack[depth / 64] &= ~(UINT64_C(1) << (depth % 64));
            depth++;
            sc->p++;
            s_ws(sc);
            if (sc->p < sc->end && *sc->p == (obj ? '}' : ']')) {
                sc->p++;
                depth--;
                break;
            }
            if (obj && !s_nested_key(sc))
                return false;
            continue; /* a value follows */
        }
        case 't': case 'f': case 'n': {
            dm_json_type t;
            if (!s_word(sc, &t))
                return false;
            if (depth == 0)
                m->type = t;
            break;
        }
        default:
            if (*sc->p != '-' && !s_isdigit(*sc->p))
                return s_fail(sc, sc->p, "unexpected character");
            if (!s_number(sc, &isint))
                return false;
            if (depth == 0) {
                m->type = DM_JSON_NUMBER;
                m->num_is_int = isint;
            }
            break;
        }
        /* after a complete value: close containers or move to the next element */
        for (;;) {
            if (depth == 0) {
                m->val = vstart;
                m->val_len = (size_t)(sc->p - vstart);
                return true;
            }
            bool obj = stack[(depth - 1) / 64] >> ((depth - 1) % 64) & 1;
            s_ws(sc);
            if (sc->p < sc->end && *sc->p == ',') {
                sc->p++;
                s_ws(sc);
                if (obj && !s_nested_key(sc))
                    return false;
                break;
            }
            if (sc->p < sc->end && *sc->p == (obj ? '}' : ']')) {
                sc->p++;
                depth--;
                continue;
            }
            return s_fail(sc, sc->p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
}

void dm_json_scan_init(dm_json_scan_t *sc, const char *line, size_t len)
{
    sc->start = sc->p = line;
    sc->end = line + len;
    sc->state = S_START;
    sc->err = NULL;
    sc->err_col = 0;
}

/* Consumes the closing brace and checks that only whitespace follows. */
static int s_finish(dm_json_scan_t *sc)
{
    sc->p++;
    s_ws(sc);
    if (sc->p != sc->end) {
        s_fail(sc, sc->p, "trailing characters");
        return -1;
    }
    sc->state = S_DONE;
    return 0;
}

int dm_json_scan_next(dm_json_scan_t *sc, dm_json_member_t *m)
{
    size_t cps;
    switch (sc->state) {
    case S_DONE:
        return 0;
    case S_ERROR:
        return -1;
    case S_START:
        s_ws(sc);
        if (sc->p >= sc->end || *sc->p != '{')
            return s_fail(sc, sc->p, "expected '{'"), -1;
        sc->p++;
        s_ws(sc);
        if (sc->p < sc->end && *sc->p == '}')
            return s_finish(sc);
        sc->state = S_MEMBERS;
        break;
    default:
        s_ws(sc);
        if (sc->p < sc->end && *sc->p == '}')
            return s_finish(sc);
        if (sc->p >= sc->end || *sc->p != ',')
            return s_fail(sc, sc->p, "expected ',' or '}'"), -1;
        sc->p++;
        s_ws(sc);
        break;
    }
    if (sc->p >= sc->end || *sc->p != '"')
        return s_fail(sc, sc->p, "expected a key"), -1;
    m->key_col = (size_t)(sc->p - sc->start) + 1;
    if (!s_string(sc, &m->key, &m->key_len, &m->key_escaped, &cps))
        return -1;
    s_ws(sc);
    if (sc->p >= sc->end || *sc->p != ':')
        return s_fail(sc, sc->p, "expected ':'"), -1;
    sc->p++;
    s_ws(sc);
    return s_value(sc, m) ? 1 : -1;
}

/* Appends code point u as UTF-8 at out; returns the bytes written. */
static size_t s_put_utf8(char *out, unsigned long u)
{
    if (u < 0x80) {
        out[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        out[0] = (char)(0xc0 | u >> 6);
        out[1] = (char)(0x80 | (u & 0x3f));
        return 2;
    }
    if (u < 0x10000) {
        out[0] = (char)(0xe0 | u >> 12);
        out[1] = (char)(0x80 | (u >> 6 & 0x3f));
        out[2] = (char)(0x80 | (u & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | u >> 18);
    out[1] = (char)(0x80 | (u >> 12 & 0x3f));
    out[2] = (char)(0x80 | (u >> 6 & 0x3f));
    out[3] = (char)(0x80 | (u & 0x3f));
    return 4;
}

size_t dm_json_scan_unescape(const char *raw, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        const char *bs = memchr(raw + i, '\\', len - i);
        size_t run = bs ? (size_t)(bs - (raw + i)) : len - i;
        memmove(out + o, raw + i, run);
        o += run;
        i += run;
        if (!bs)
            break;
        char c = raw[i + 1];
        i += 2;
        switch (c) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned long u = (unsigned long)s_hex4(raw + i);
            i += 4;
            if (u >= 0xd800 && u <= 0xdbff) {
                unsigned long lo = (unsigned long)s_hex4(raw + i + 2);
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            o += s_put_utf8(out + o, u);
            break;
        }
        default: out[o++] = c; break; /* " \ / */
        }
    }
    return o;
}
