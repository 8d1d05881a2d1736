/* test_json_scan.c: the strict single-line JSON object scanner. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "record/json_scan.h"

/* Scans text to the end; returns the number of members, or -1 with *sc
 * holding the error. */
static int s_scan(const char *text, dm_json_scan_t *sc, dm_json_member_t *ms, int max)
{
    dm_json_member_t m;
    int n = 0, r;
    memset(ms, 0, (size_t)max * sizeof *ms);
    dm_json_scan_init(sc, text, strlen(text));
    while ((r = dm_json_scan_next(sc, &m)) == 1) {
        if (n < max)
            ms[n] = m;
        n++;
    }
    return r < 0 ? -1 : n;
}

static void s_fails_at(const char *text, const char *err, size_t col)
{
    dm_json_scan_t sc;
    dm_json_member_t ms[1];
    cr_assert_eq(s_scan(text, &sc, ms, 1), -1, "accepted: %s", text);
    cr_assert_str_eq(sc.err, err, "%s", text);
    cr_assert_eq(sc.err_col, col, "%s: column %zu", text, sc.err_col);
}

Test(json_scan, yields_members_in_order)
{
    dm_json_scan_t sc;
    dm_json_member_t ms[4];
    cr_assert_eq(s_scan(" {\"a\": 1, \"b\":\"x\" ,\"c\":true,\"d\":null} ", &sc, ms, 4), 4);
    cr_assert_eq(ms[0].key_len, 1);
    cr_assert_eq(ms[0].key[0], 'a');
    cr_assert_eq(ms[0].type, DM_JSON_NUMBER);
    cr_assert(ms[0].num_is_int);
    cr_assert_eq(ms[1].type, DM_JSON_STRING);
    cr_assert_eq(ms[1].val_len, 1);
    cr_assert_eq(ms[1].val[0], 'x');
    cr_assert_eq(ms[2].type, DM_JSON_TRUE);
    cr_assert_eq(ms[3].type, DM_JSON_NULL);
}

Test(json_scan, accepts_empty_object)
{
    dm_json_scan_t sc;
    dm_json_member_t ms[1];
    cr_assert_eq(s_scan("{}", &sc, ms, 1), 0);
}

Test(json_scan, number_kinds_are_reported)
{
    dm_json_scan_t sc;
    dm_json_member_t ms[3];
    cr_assert_eq(s_scan("{\"a\":-12,\"b\":1.5,\"c\":2e3}", &sc, ms, 3), 3);
    cr_assert(ms[0].num_is_int);
    cr_assert_eq(ms[0].val_len, 3);
    cr_assert_not(ms[1].num_is_int);
    cr_assert_not(ms[2].num_is_int);
}

Test(json_scan, nested_values_are_one_opaque_member)
{
    dm_json_scan_t sc;
    dm_json_member_t ms[3];
    const char *t = "{\"a\":{\"x\":[1,{\"y\":\"}]\"}],\"z\":{}},\"b\":[[],[true]],\"c\":3}";
    cr_assert_eq(s_scan(t, &sc, ms, 3), 3);
    cr_assert_eq(ms[0].type, DM_JSON_OBJECT);
    cr_assert_eq(ms[0].val_len, strlen("{\"x\":[1,{\"y\":\"}]\"}],\"z\":{}}"));
    cr_assert_eq(ms[1].type, DM_JSON_ARRAY);
    cr_assert_eq(ms[2].type, DM_JSON_NUMBER);
}

Test(json_scan, rejects_malformed_nested_value)
{
    s_fails_at("{\"a\":[1,}", "unexpected character", 9);
    s_fails_at("{\"a\":{\"x\":1]}", "expected ',' or '}'", 12);
    s_fails_at("{\"a\":[1 2]}", "expected ',' or ']'", 9);
}

Test(json_scan, rejects_too_deep_nesting)
{
    char t[2 * DM_JSON_MAX_DEPTH + 32];
    size_t n = 0;
    n += (size_t)sprintf(t, "{\"a\":");
    for (int i = 0; i <= DM_JSON_MAX_DEPTH; i++)
        t[n++] = '[';
    t[n] = 0;
    s_fails_at(t, "nesting too deep", 6 + DM_JSON_MAX_DEPTH);
}

Test(json_scan, rejects_trailing_characters)
{
    s_fails_at("{\"a\":1} x", "trailing characters", 9);
    s_fails_at("{\"a\":1}{}", "trailing characters", 8);
}

Test(json_scan, rejects_non_objects)
{
    s_fails_at("[1,2]", "expected '{'", 1);
    s_fails_at("42", "expected '{'", 1);
    s_fails_at("\"s\"", "expected '{'", 1);
    s_fails_at("", "expected '{'", 1);
}

Test(json_scan, rejects_nan_and_bad_numbers)
{
    s_fails_at("{\"a\":NaN}", "unexpected character", 6);
    s_fails_at("{\"a\":01}", "expected ',' or '}'", 7);
    s_fails_at("{\"a\":1.}", "invalid number", 6);
    s_fails_at("{\"a\":-}", "invalid number", 6);
    s_fails_at("{\"a\":tru}", "unexpected character", 6);
}

Test(json_scan, rejects_unterminated_object_and_string)
{
    s_fails_at("{\"a\":1", "expected ',' or '}'", 7);
    s_fails_at("{\"a\":\"xy", "unterminated string", 6);
    s_fails_at("{\"a\" 1}", "expected ':'", 6);
    s_fails_at("{\"a\":1,}", "expected a key", 8);
}

Test(json_scan, rejects_raw_control_characters)
{
    s_fails_at("{\"a\":\"x\ty\"}", "control character in string", 8);
}

Test(json_scan, rejects_invalid_utf8_in_value)
{
    s_fails_at("{\"a\":\"\xc3\x28\"}", "invalid UTF-8", 7);
    s_fails_at("{\"a\":\"\xc0\xaf\"}", "invalid UTF-8", 7);     /* overlong */
    s_fails_at("{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8", 7); /* encoded surrogate */
    s_fails_at("{\"a\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8", 7); /* above U+10FFFF */
    s_fails_at("{\"a\":\"\xe2\x82\"}", "invalid UTF-8", 7);     /* truncated */
}

Test(json_scan, rejects_invalid_utf8_in_key)
{
    s_fails_at("{\"\xff\":1}", "invalid UTF-8", 3);
}

Test(json_scan, rejects_lone_surrogate_escapes)
{
    s_fails_at("{\"a\":\"\\ud800\"}", "lone surrogate \\u escape", 7);
    s_fails_at("{\"a\":\"\\udc00\\ud800\"}", "lone surrogate \\u escape", 7);
    s_fails_at("{\"a\":\"\\ud800\\u0041\"}", "lone surrogate \\u escape", 7);
}

Test(json_scan, rejects_bad_escapes)
{
    s_fails_at("{\"a\":\"\\x\"}", "invalid escape", 7);
    s_fails_at("{\"a\":\"\\u12g4\"}", "invalid \\u escape", 7);
}

Test(json_scan, counts_code_points)
{
    dm_json_scan_t sc;
    dm_json_member_t ms[1];
    /* "é" (2 bytes) + "€" (3) + "😀" as a surrogate pair escape + "\n" */
    cr_assert_eq(s_scan("{\"a\":\"\xc3\xa9\xe2\x82\xac\\ud83d\\ude00\\n\"}", &sc, ms, 1), 1);
    cr_assert_eq(ms[0].val_cps, 4);
    cr_assert(ms[0].val_escaped);
}

Test(json_scan, unescape_decodes_every_escape)
{
    const char raw[] = "a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00z";
    char out[sizeof raw];
    size_t n = dm_json_scan_unescape(raw, strlen(raw), out);
    const char want[] = "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80z";
    cr_assert_eq(n, strlen(want));
    cr_assert_arr_eq(out, want, n);
}

Test(json_scan, unescape_keeps_nul)
{
    char out[8];
    size_t n = dm_json_scan_unescape("a\\u0000b", 8, out);
    cr_assert_eq(n, 3);
    cr_assert_arr_eq(out, "a\0b", 3);
}

Test(json_scan, does_not_read_past_length)
{
    dm_json_scan_t sc;
    dm_json_member_t m;
    const char text[] = "{\"a\":1}";
    dm_json_scan_init(&sc, text, 6);
    cr_assert_eq(dm_json_scan_next(&sc, &m), 1);
    cr_assert_eq(dm_json_scan_next(&sc, &m), -1);
    cr_assert_eq(sc.err_col, 7);
}
