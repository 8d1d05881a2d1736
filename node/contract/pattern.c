/* pattern.c: the static cost check of a POSIX extended regular expression
 * (see pattern.h for why).
 *
 * A recursive-descent reader of the ERE grammar as glibc reads it with
 * REG_EXTENDED in the C locale:
 *   alt    := branch ('|' branch)*
 *   branch := piece+
 *   piece  := atom [ '*' | '+' | '?' | '{m}' | '{m,}' | '{m,n}' ]
 *   atom   := '(' alt ')' | '.' | '^' | '$' | bracket | '\' special | char
 * It computes, per subexpression, its expanded size (the copies glibc's
 * regcomp makes of it) and its repetition nesting, and stops at the first
 * limit crossed, so it never does more than one pass over the text.
 * Everything outside that grammar is refused rather than guessed at:
 * backreferences and GNU escapes (\1, \w, \b, \<), collating elements and
 * equivalence classes ([[.a.]], [[=a=]]), ^ or $ anywhere but at the very
 * start or end of the pattern, two repetition operators in a
 * row (a*? is a lazy quantifier elsewhere, a{2}{3} a product), a repetition
 * with nothing to repeat, empty alternatives and groups, control bytes. */
#include "contract/pattern.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define S_SPECIALS ".[]()*+?{}|^$\\" /* what a backslash may escape */
#define S_PLUS_COPIES 2              /* glibc compiles a+ as a a* */

typedef struct {
    const char *p;
    size_t len, pos;
    unsigned groups; /* parentheses open around pos */
    char *why;
    size_t cap;
} s_rx;

/* Records the refusal at the current position; returns false. */
static bool DM_PRINTF(2, 3) s_fail(s_rx *x, const char *fmt, ...)
{
    int n = snprintf(x->why, x->cap, "at character %zu: ", x->pos + 1);
    if (n < 0 || (size_t)n >= x->cap)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->why + n, x->cap - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static int s_peek(const s_rx *x, size_t ahead)
{
    return x->pos + ahead < x->len ? (unsigned char)x->p[x->pos + ahead] : -1;
}

static bool s_is_rep(int c)
{
    return c == '*' || c == '+' || c == '?' || c == '{';
}

static bool s_cost_ok(s_rx *x, uint64_t cost)
{
    if (cost <= DM_PATTERN_MAX_COST)
        return true;
    return s_fail(x,
                  "the pattern expands to more than %d atoms (a repetition {m,n} copies what it "
                  "repeats n times, and nested repetitions multiply); use * or + instead of "
                  "large bounds, or smaller bounds",
                  DM_PATTERN_MAX_COST);
}

/* [:name:] inside a bracket, at pos (the '['). */
static bool s_class(s_rx *x)
{
    static const char *const names[] = {"alpha", "upper", "lower", "digit",  "xdigit", "alnum",
                                        "punct", "space", "blank", "cntrl",  "graph",  "print"};
    const char *start = x->p + x->pos + 2;
    const char *end = strstr(start, ":]");
    size_t n = end ? (size_t)(end - start) : 0;
    for (size_t i = 0; end && i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i]) == n && memcmp(names[i], start, n) == 0) {
            x->pos = (size_t)(end - x->p) + 2;
            return true;
        }
    }
    return s_fail(x, "unknown character class; valid are [:alpha:], [:upper:], [:lower:], "
                     "[:digit:], [:xdigit:], [:alnum:], [:punct:], [:space:], [:blank:], "
                     "[:cntrl:], [:graph:], [:print:]");
}

/* One byte of a bracket expression, printable ASCII only. */
static bool s_bracket_byte(s_rx *x, int c)
{
    if (c < 0)
        return s_fail(x, "unterminated bracket expression: a ']' is missing");
    if (c < 0x20 || c >= 0x7f)
        return s_fail(x, "byte 0x%02x in a bracket expression; a bracket expression may hold "
                         "printable ASCII only",
                      (unsigned)c);
    return true;
}

/* A bracket expression; pos is at the '['. */
static bool s_bracket(s_rx *x)
{
    x->pos++;
    if (s_peek(x, 0) == '^')
        x->pos++;
    for (bool first = true;; first = false) {
        int c = s_peek(x, 0);
        if (c == ']' && !first) {
            x->pos++;
            return true;
        }
        if (!s_bracket_byte(x, c))
            return false;
        int c1 = s_peek(x, 1);
        if (c == '[' && (c1 == '.' || c1 == '='))
            return s_fail(x, "collating elements and equivalence classes ([[.x.]], [[=x=]]) "
                             "are not supported; list the characters instead");
        if (c == '[' && c1 == ':') {
            if (!s_class(x))
                return false;
        } else {
            x->pos++;
            if (s_peek(x, 0) == '-' && s_peek(x, 1) != ']' && s_peek(x, 1) >= 0) {
                int hi = s_peek(x, 1);
                x->pos++;
                if (!s_bracket_byte(x, hi))
                    return false;
                if (hi == '[')
                    return s_fail(x, "a range may not end in '['; put '[' first or alone");
                if (hi < c)
                    return s_fail(x, "range %c-%c is reversed; write %c-%c", c, hi, hi, c);
                x->pos++;
            }
        }
        if (s_peek(x, 0) == '-' && s_peek(x, 1) != ']' && s_peek(x, 1) >= 0)
            return s_fail(x, "a '-' after a range or class must be last in the bracket "
                             "expression (or first) to stand for itself");
    }
}

/* A decimal bound of {m,n}, at most DM_PATTERN_MAX_BOUND. */
static bool s_number(s_rx *x, unsigned *out)
{
    unsigned v = 0;
    int c = s_peek(x, 0);
    if (c < '0' || c > '9')
        return s_fail(x, "'{' must start a bound {m}, {m,} or {m,n} (decimal m <= n); "
                         "write \\{ for a literal brace");
    for (; (c = s_peek(x, 0)) >= '0' && c <= '9'; x->pos++) {
        v = v * 10 + (unsigned)(c - '0');
        if (v > DM_PATTERN_MAX_BOUND)
            return s_fail(x, "repetition bound over %d; use * or + for long runs",
                          DM_PATTERN_MAX_BOUND);
    }
    *out = v;
    return true;
}

/* A bound {m}, {m,} or {m,n} at pos (the '{'); *copies is how many copies
 * of the operand glibc makes. */
static bool s_bound(s_rx *x, uint64_t *copies)
{
    unsigned m, n;
    x->pos++;
    if (!s_number(x, &m))
        return false;
    n = m;
    bool open = false;
    if (s_peek(x, 0) == ',') {
        x->pos++;
        if (s_peek(x, 0) == '}')
            open = true;
        else if (!s_number(x, &n))
            return false;
    }
    if (s_peek(x, 0) != '}')
        return s_fail(x, "a bound is {m}, {m,} or {m,n}; '}' is missing");
    if (!open && n < m)
        return s_fail(x, "bound {%u,%u} has its maximum below its minimum", m, n);
    x->pos++;
    *copies = open ? (uint64_t)m + 1 : n;
    return true;
}

static bool s_alt(s_rx *x, uint64_t *cost, unsigned *depth, unsigned *branches);

/* One atom; pos is at its first byte. */
static bool s_atom(s_rx *x, uint64_t *cost, unsigned *depth)
{
    int c = s_peek(x, 0);
    *cost = 1;
    *depth = 0;
    if (c == '(') {
        if (x->groups >= DM_PATTERN_MAX_GROUPS)
            return s_fail(x, "parentheses nest deeper than %d", DM_PATTERN_MAX_GROUPS);
        x->groups++;
        x->pos++;
        unsigned branches;
        if (!s_alt(x, cost, depth, &branches))
            return false;
        if (s_peek(x, 0) != ')')
            return s_fail(x, "a '(' is not closed; add ')' or write \\( for a literal");
        x->pos++;
        x->groups--;
        return true;
    }
    if (c == '[')
        return s_bracket(x);
    if (c == '\\') {
        int e = s_peek(x, 1);
        if (e >= '1' && e <= '9')
            return s_fail(x, "backreferences (\\%c) are not allowed: they make matching "
                             "exponential",
                          e);
        if (e < 0 || !strchr(S_SPECIALS, e))
            return s_fail(x, "'\\' may only escape one of %s; GNU escapes such as \\w, \\s, "
                             "\\b, \\< are not supported (use [[:alnum:]_], [[:space:]]...)",
                          S_SPECIALS);
        x->pos += 2;
        return true;
    }
    if (c == ')')
        return s_fail(x, "unmatched ')'; write \\) for a literal");
    if (c == '}')
        return s_fail(x, "unmatched '}'; write \\} for a literal");
    if (c < 0x20 || c == 0x7f)
        return s_fail(x, "control byte 0x%02x; write it as a bracket expression of a class "
                         "([[:cntrl:]]) or leave it out",
                      (unsigned)c);
    /* glibc lets a '^' or '$' inside the pattern match next to a newline
     * even without REG_NEWLINE; only the ends of the text mean what they say */
    if (c == '^' && x->pos != 0)
        return s_fail(x, "'^' is allowed only as the first character of the pattern; write \\^ "
                         "for a literal");
    if (c == '$' && (x->pos + 1 != x->len || x->groups))
        return s_fail(x, "'$' is allowed only as the last character of the pattern; write \\$ "
                         "for a literal");
    x->pos++; /* '.', '^', '$', ']' or an ordinary byte */
    return true;
}

/* An atom and its optional repetition. */
static bool s_piece(s_rx *x, uint64_t *cost, unsigned *depth)
{
    int c = s_peek(x, 0);
    if (s_is_rep(c))
        return s_fail(x, "'%c' has nothing to repeat; write \\%c for a literal", c, c);
    bool anchor = c == '^' || c == '$';
    if (!s_atom(x, cost, depth))
        return false;
    int r = s_peek(x, 0);
    if (!s_is_rep(r))
        return true;
    if (anchor)
        return s_fail(x, "'%c' repeats an anchor, which matches no character", r);
    uint64_t copies = 1;
    if (r == '{') {
        if (!s_bound(x, &copies))
            return false;
    } else {
        copies = r == '+' ? S_PLUS_COPIES : 1;
        x->pos++;
    }
    if (++*depth > DM_PATTERN_MAX_DEPTH)
        return s_fail(x, "repetitions nest deeper than %d levels", DM_PATTERN_MAX_DEPTH);
    *cost *= copies ? copies : 1;
    if (!s_cost_ok(x, *cost))
        return false;
    if (s_is_rep(s_peek(x, 0)))
        return s_fail(x, "two repetition operators in a row have no POSIX meaning (and *? or "
                         "+? is not a lazy quantifier here); group the first: (a*)+");
    return true;
}

/* Branches separated by '|' up to ')' or the end; *branches counts them. */
static bool s_alt(s_rx *x, uint64_t *cost, unsigned *depth, unsigned *branches)
{
    *cost = 0;
    *depth = 0;
    *branches = 0;
    for (;;) {
        int c = s_peek(x, 0);
        if (c < 0 || c == '|' || (c == ')' && x->groups > 0))
            return s_fail(x, "empty alternative or group; every branch must match something");
        ++*branches;
        while ((c = s_peek(x, 0)) >= 0 && c != '|' && !(c == ')' && x->groups > 0)) {
            uint64_t pc;
            unsigned pd;
            if (!s_piece(x, &pc, &pd))
                return false;
            *cost += pc;
            if (pd > *depth)
                *depth = pd;
            if (!s_cost_ok(x, *cost))
                return false;
        }
        if (c != '|')
            return true;
        x->pos++;
    }
}

/* dm_pattern_check into a fixed buffer: the checker's recursion reports
 * without allocating. */
static dm_err s_check(const char *pattern, dm_pattern_info_t *info, char *why, size_t cap)
{
    why[0] = 0;
    s_rx x = {pattern, strlen(pattern), 0, 0, why, cap};
    if (x.len == 0) {
        snprintf(why, cap, "the pattern is empty; leave it out to accept every value");
        return DM_ERR_INVALID;
    }
    if (x.len > DM_PATTERN_MAX_LEN) {
        snprintf(why, cap, "the pattern is %zu bytes; at most %d are allowed", x.len,
                 DM_PATTERN_MAX_LEN);
        return DM_ERR_INVALID;
    }
    uint64_t cost;
    unsigned depth, branches;
    if (!s_alt(&x, &cost, &depth, &branches))
        return DM_ERR_INVALID;
    if (x.pos < x.len) { /* only a ')' at the top level stops s_alt early */
        (void)s_fail(&x, "unmatched ')'; write \\) for a literal");
        return DM_ERR_INVALID;
    }
    if (info)
        *info = (dm_pattern_info_t){x.len, depth, cost};
    return DM_OK;
}

dm_err dm_pattern_check(const char *pattern, dm_pattern_info_t *info, dm_buf_t *why)
{
    char text[DM_PATTERN_WHY_MAX];
    dm_err rc = s_check(pattern, info, text, sizeof text);
    if (rc != DM_OK && why)
        dm_buf_puts(why, text);
    return rc;
}
