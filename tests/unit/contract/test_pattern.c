/* Tests of pattern.c (the static cost check of contract regexes) and
 * pattern_match.c (the linear matcher): every limit with a pattern just
 * inside and one just over it, the hostile shapes of issue 7 refused, a
 * hostile contract refused with its line:col, and the matcher agreeing with
 * glibc's regexec on random patterns and subjects. */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract_test.h"
#include "contract/pattern.h"

#define S_RANDOM_PATTERNS 20000/* random patterns compared with glibc */
#define S_RANDOM_SUBJECTS 20   /* subjects per accepted pattern */
#define S_SUBJECT_MAX 12       /* bytes of a random subject */
#define S_PATTERN_GEN_MAX 14   /* tokens of a random pattern */
#define S_LONG_SUBJECT (256 * 1024) /* bytes of a subject that would stall glibc */

static void accepted(const char *p)
{
    dm_buf_t why = DM_BUF_INIT;
    dm_pattern_info_t info;
    cr_assert_eq(dm_pattern_check(p, &info, &why), DM_OK, "'%s' refused: %s", p, why.data);
    cr_assert_eq(why.len, 0);
    regex_t re;
    cr_assert_eq(regcomp(&re, p, REG_EXTENDED | REG_NOSUB), 0, "glibc refuses '%s'", p);
    regfree(&re);
}

static void refused(const char *p, const char *msg)
{
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_pattern_check(p, NULL, &why), DM_ERR_INVALID, "'%.80s' accepted", p);
    cr_assert(strstr(why.data, msg), "'%.80s': expected '%s' in: %s", p, msg, why.data);
    cr_assert(why.len < DM_PATTERN_WHY_MAX && !strchr(why.data, '\n'), "one bounded line");
    dm_buf_free(&why);
}

static char *repeat(const char *unit, size_t times)
{
    size_t u = strlen(unit);
    char *s = malloc(u * times + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * u, unit, u);
    s[u * times] = 0;
    return s;
}

Test(pattern, length_limit)
{
    char *ok = repeat("a", DM_PATTERN_MAX_LEN), *over = repeat("a", DM_PATTERN_MAX_LEN + 1);
    accepted(ok);
    refused(over, "at most 256 are allowed");
    free(ok);
    free(over);
}

Test(pattern, bound_limit)
{
    accepted("a{255}");
    accepted("a{0,255}");
    refused("a{256}", "bound over 255");
    refused("a{1,30000}", "bound over 255");
    refused("a{1,99999999999999999999}", "bound over 255");
}

Test(pattern, nesting_limit)
{
    accepted("((a*)*)*");
    accepted("((a{2}){2}){2}");
    refused("(((a*)*)*)*", "nest deeper than 3");
    refused("(((a{1,2}){1,2}){1,2}){1,2}", "nest deeper than 3");
}

Test(pattern, product_limit)
{
    accepted("((a{1,4}){1,8}){1,8}");          /* 256 */
    refused("((a{1,4}){1,8}){1,9}", "expands to more than 256 atoms");
    refused("((a{1,100}){1,100}){1,100}", "expands to more than 256 atoms");
    refused("(a{1,200})(b{1,200})", "expands to more than 256 atoms"); /* siblings add up */
    accepted("[0-9]{1,128}[a-z]{1,127}");
    refused("(abcd){1,65}", "expands to more than 256 atoms");
}

Test(pattern, many_alternatives)
{
    char *alts = repeat("ab|", 80); /* 160 atoms */
    alts[strlen(alts) - 1] = 0;
    accepted(alts);
    free(alts);
    char *grp = malloc(DM_PATTERN_MAX_LEN + 1);
    snprintf(grp, DM_PATTERN_MAX_LEN + 1, "(a|b|c|d|e|f|g|h){1,40}");
    refused(grp, "expands to more than 256 atoms");
    free(grp);
}

Test(pattern, group_nesting_limit)
{
    char *deep = malloc(64);
    snprintf(deep, 64, "%sa%s", "((((((((((((((((", "))))))))))))))))");
    accepted(deep);
    snprintf(deep, 64, "%sa%s", "(((((((((((((((((", ")))))))))))))))))");
    refused(deep, "parentheses nest deeper than 16");
    free(deep);
}

Test(pattern, backreferences_and_gnu_escapes)
{
    refused("(a)\\1", "backreferences");
    refused("(a*)*\\1\\1", "backreferences");
    refused("\\w+", "GNU escapes");
    refused("\\bword", "GNU escapes");
    refused("a\\", "may only escape");
    accepted("\\(\\)\\[\\]\\{\\}\\.\\*\\+\\?\\|\\^\\$\\\\");
}

Test(pattern, brackets)
{
    accepted("[]a]");
    accepted("[^]a]");
    accepted("[[:alpha:][:digit:]_-]");
    accepted("[a-z0-9]");
    accepted("[-a]");
    accepted("[a-]");
    accepted("[[]");
    refused("[z-a]", "reversed");
    refused("[[:foo:]]", "unknown character class");
    refused("[[.a.]]", "collating elements");
    refused("[[=a=]]", "collating elements");
    refused("[abc", "unterminated bracket");
    refused("[a-c-e]", "must be last");
}

Test(pattern, repetition_syntax)
{
    accepted("a{3}b{2,}c{0,4}d*e+f?");
    refused("*a", "nothing to repeat");
    refused("a|+b", "nothing to repeat");
    refused("a**", "two repetition operators");
    refused("a+?", "two repetition operators");
    refused("a{2}{3}", "two repetition operators");
    refused("a{,3}", "must start a bound");
    refused("a{2,1}", "maximum below its minimum");
    refused("a{2", "'}' is missing");
    refused("^*", "repeats an anchor");
    refused("a{x}", "must start a bound");
}

Test(pattern, groups_and_alternatives)
{
    accepted("^(ab|cd)+$");
    refused("", "empty");
    refused("a||b", "empty alternative");
    refused("a|", "empty alternative");
    refused("()", "empty alternative or group");
    refused("(a", "not closed");
    refused("a)", "unmatched ')'");
    refused("a}", "unmatched '}'");
    refused("a\tb", "control byte");
    refused("a$b", "'$' is allowed only as the last");
    refused("(a$)", "'$' is allowed only as the last");
    refused("a|^b", "'^' is allowed only as the first");
    accepted("^a|b$");
}

/* The hostile shapes of issue 7, each refused without compiling. */
Test(pattern, hostile_patterns_refused)
{
    static const char *const hostile[] = {
        "((a{1,100}){1,100}){1,100}", "(((a{1,10}){1,10}){1,10}){1,10}", "a{1,30000}",
        ".{1,1000}", "([[:alpha:]]{1,50}){1,50}", "(a|aa){1,1000}c", "(a)\\1\\1\\1",
        "(x{1,255}){1,255}"};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++)
        cr_assert_eq(dm_pattern_check(hostile[i], NULL, NULL), DM_ERR_INVALID, "%s",
                     hostile[i]);
    char *big = repeat("(a{1,2})", 10000);
    cr_assert_eq(dm_pattern_check(big, NULL, NULL), DM_ERR_INVALID);
    free(big);
}

/* A tiny deterministic generator (xorshift) for the comparison with glibc. */
static uint64_t s_rand(uint64_t *st)
{
    *st ^= *st << 13;
    *st ^= *st >> 7;
    *st ^= *st << 17;
    return *st;
}

static void s_gen(uint64_t *st, char *out, size_t cap)
{
    static const char *const tok[] = {"a", "b", "c", ".", "[ab]", "[^a]", "[[:alpha:]]", "(", ")",
                                      "|", "*", "+", "?", "{2}", "{0,2}", "{1,}", "^", "$",
                                      "a", "b", "\\.", "[]a-]", "{1,3}", "(a|b)", "[^ab]", "c*", "(", "|"};
    size_t n = 1 + s_rand(st) % S_PATTERN_GEN_MAX, len = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = tok[s_rand(st) % (sizeof tok / sizeof tok[0])];
        if (len + strlen(t) + 1 > cap)
            break;
        strcpy(out + len, t);
        len += strlen(t);
    }
}

/* Every random pattern the checker accepts compiles with glibc, and the
 * linear matcher agrees with regexec on random subjects. */
Test(pattern, matcher_agrees_with_glibc)
{
    uint64_t st = 0x9e3779b97f4a7c15u;
    size_t compared = 0;
    for (int k = 0; k < S_RANDOM_PATTERNS; k++) {
        char p[128];
        s_gen(&st, p, sizeof p);
        if (dm_pattern_check(p, NULL, NULL) != DM_OK)
            continue;
        regex_t re;
        cr_assert_eq(regcomp(&re, p, REG_EXTENDED | REG_NOSUB), 0, "glibc refuses '%s'", p);
        dm_pattern_t *m = NULL;
        cr_assert_eq(dm_pattern_compile(p, &m), DM_OK);
        for (int j = 0; j < S_RANDOM_SUBJECTS; j++) {
            char s[S_SUBJECT_MAX + 1];
            size_t n = s_rand(&st) % (S_SUBJECT_MAX + 1);
            for (size_t i = 0; i < n; i++)
                s[i] = "abc.\n"[s_rand(&st) % 5];
            s[n] = 0;
            bool mine = dm_pattern_match(m, s, n);
            bool theirs = regexec(&re, s, 0, NULL, 0) == 0;
            cr_assert_eq(mine, theirs, "pattern '%s' on '%s': matcher %d, glibc %d", p, s, mine,
                         theirs);
            compared++;
        }
        dm_pattern_destroy(&m);
        regfree(&re);
    }
    cr_assert_gt(compared, S_RANDOM_PATTERNS, "too few accepted patterns: %zu", compared);
}

/* Patterns that make glibc's regexec quadratic or build DFA states without
 * bound run through the matcher in one pass over a long subject. */
Test(pattern, matcher_on_long_subjects)
{
    static const char *const pats[] = {".*a.{50}c", "(a|b)*a.{100}c", "b(ab)*c", "(a|aa)*c",
                                       "((a|b){1,10}){1,12}c"};
    char *s = malloc(S_LONG_SUBJECT + 1);
    uint64_t st = 42;
    for (size_t i = 0; i < S_LONG_SUBJECT; i++)
        s[i] = "ab"[s_rand(&st) & 1];
    s[S_LONG_SUBJECT] = 0;
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        dm_pattern_t *m = NULL;
        cr_assert_eq(dm_pattern_compile(pats[i], &m), DM_OK, "%s", pats[i]);
        cr_assert_not(dm_pattern_match(m, s, S_LONG_SUBJECT), "%s found a 'c' in a and b",
                      pats[i]);
        s[S_LONG_SUBJECT - 1] = 'c';
        (void)dm_pattern_match(m, s, S_LONG_SUBJECT); /* may or may not match; must finish */
        s[S_LONG_SUBJECT - 1] = 'a';
        dm_pattern_destroy(&m);
    }
    free(s);
}

Test(pattern, contract_with_hostile_pattern_names_line_col)
{
    result_t r = parse_patch("      - {name: s,",
                             "      - {name: s, type: string, pattern: '((a{1,100}){1,100}){1,100}'}");
    expect_err(&r, 17, 42, "field 's': pattern '((a{1,100}){1,100}){1,100}' is not a valid POSIX "
                           "extended regular expression within the limits of a contract: at "
                           "character 19: the pattern expands to more than 256 atoms");
    result_free(&r);
}

Test(pattern, contract_check_with_backreference_refused)
{
    result_t r = parse_base("  quality:\n    checks:\n"
                            "      - {rule: regex, column: s, pattern: '(a)\\1'}\n");
    cr_assert_neq(r.rc, DM_OK);
    cr_assert(strstr(r.text.data, "backreferences"), "%s", r.text.data);
    cr_assert(strstr(r.text.data, "t.yaml:"), "%s", r.text.data);
    result_free(&r);
}

/* The base contract with field s given pattern pat, parsed with flags. */
static dm_err s_parse_flags(const char *pat, unsigned flags, dm_diags_t *d)
{
    dm_buf_t b = DM_BUF_INIT, extra = DM_BUF_INIT;
    dm_buf_printf(&extra, "  quality:\n    checks:\n      - {rule: regex, column: s, pattern: '%s'}\n",
                  pat);
    dm_buf_printf(&b, s_base, extra.data);
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_err rc = dm_contract_parse_opts("t.yaml", b.data, b.len, NULL, flags, &cs, &n, d);
    dm_contract_list_destroy(&cs, n);
    dm_buf_free(&b);
    dm_buf_free(&extra);
    return rc;
}

Test(pattern, no_compile_flag_still_checks)
{
    dm_diags_t d = DM_DIAGS_INIT;
    cr_assert_eq(s_parse_flags("^[a-z]{2,8}$", DM_CONTRACT_NO_COMPILE, &d), DM_OK);
    cr_assert_eq(s_parse_flags("(a{1,200}){1,200}", DM_CONTRACT_NO_COMPILE, &d), DM_ERR_INVALID);
    cr_assert_eq(d.count, 1);
    cr_assert_eq(d.items[0].line, 23);
    cr_assert(strstr(d.items[0].message, "expands to more than"), "%s", d.items[0].message);
    dm_diags_clear(&d);
}

Test(pattern, contract_total_cost_limit)
{
    dm_buf_t extra = DM_BUF_INIT;
    dm_buf_puts(&extra, "  quality:\n    checks:\n");
    for (int i = 0; i < DM_PATTERN_MAX_TOTAL / DM_PATTERN_MAX_COST; i++)
        dm_buf_puts(&extra, "      - {rule: regex, column: s, pattern: 'a{1,255}c'}\n");
    result_t r = parse_base(extra.data);
    expect_ok(&r);
    result_free(&r);
    dm_buf_puts(&extra, "      - {rule: regex, column: s, pattern: 'b'}\n");
    r = parse_base(extra.data);
    expect_err(&r, 21 + DM_PATTERN_MAX_TOTAL / DM_PATTERN_MAX_COST + 2, 43,
               "the patterns of this contract expand to 1025 atoms so far; at most 1024");
    result_free(&r);
    dm_buf_free(&extra);
}

/* Random printable text (every ERE metacharacter likely): whatever the
 * checker accepts, glibc compiles and the matcher agrees with regexec. */
Test(pattern, random_text_accepted_means_glibc_agrees)
{
    uint64_t st = 0x2545f4914f6cdd1du;
    size_t accepted_n = 0;
    for (int k = 0; k < S_RANDOM_PATTERNS; k++) {
        char p[24];
        size_t len = 1 + s_rand(&st) % (sizeof p - 1);
        for (size_t i = 0; i < len; i++) {
            const char *meta = "()[]{}|*+?.^$\\-:,0123ab";
            p[i] = s_rand(&st) % 2 ? meta[s_rand(&st) % strlen(meta)]
                                   : (char)(' ' + s_rand(&st) % 95);
        }
        p[len] = 0;
        if (dm_pattern_check(p, NULL, NULL) != DM_OK)
            continue;
        accepted_n++;
        regex_t re;
        cr_assert_eq(regcomp(&re, p, REG_EXTENDED | REG_NOSUB), 0, "glibc refuses '%s'", p);
        dm_pattern_t *m = NULL;
        cr_assert_eq(dm_pattern_compile(p, &m), DM_OK);
        for (int j = 0; j < S_RANDOM_SUBJECTS; j++) {
            char s[S_SUBJECT_MAX + 1];
            size_t n = s_rand(&st) % (S_SUBJECT_MAX + 1);
            for (size_t i = 0; i < n; i++)
                s[i] = p[s_rand(&st) % len] == 0 ? 'a' : (s_rand(&st) % 3 ? p[s_rand(&st) % len]
                                                                          : "ab\n-"[s_rand(&st) % 4]);
            s[n] = 0;
            bool mine = dm_pattern_match(m, s, n);
            cr_assert_eq(mine, regexec(&re, s, 0, NULL, 0) == 0, "pattern '%s' on '%s'", p, s);
        }
        dm_pattern_destroy(&m);
        regfree(&re);
    }
    cr_log_info("%zu random texts accepted", accepted_n);
    cr_assert_gt(accepted_n, 100);
}

/* A decoded JSON value may hold NUL: the matcher reads it as glibc does
 * with REG_STARTEND ('.' skips NUL, [^a] and [[:cntrl:]] take it). */
Test(pattern, nul_bytes_as_glibc)
{
    static const char *const pats[] = {".", "[^a]", "a.b", "a[^x]b", "[[:cntrl:]]", "^.$", "b$"};
    static const char subj[] = "a\0b";
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        regex_t re;
        cr_assert_eq(regcomp(&re, pats[i], REG_EXTENDED | REG_NOSUB), 0);
        dm_pattern_t *m = NULL;
        cr_assert_eq(dm_pattern_compile(pats[i], &m), DM_OK);
        for (size_t from = 0; from < 3; from++) {
            regmatch_t pm = {0, (regoff_t)(3 - from)};
            bool theirs = regexec(&re, subj + from, 1, &pm, REG_STARTEND) == 0;
            bool mine = dm_pattern_match(m, subj + from, 3 - from);
            cr_assert_eq(mine, theirs, "'%s' from %zu: matcher %d, glibc %d", pats[i], from, mine,
                         theirs);
        }
        dm_pattern_destroy(&m);
        regfree(&re);
    }
}
