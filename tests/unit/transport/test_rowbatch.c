/* test_rowbatch.c: the row-batch codec (suite "rowbatch"): every type
 * round trips, the wire bytes are the protocol's, cut or hostile input is
 * refused, and the text of a REAL is SQLite's own (checked against the
 * SQLite the node links: DM_UNIT_EXTRA_test_rowbatch). */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/rowbatch.h"

#define S_RANDOM_REALS 200000

/* Decodes exactly one value from b; fails the test otherwise. */
static dm_rowbatch_value_t s_one(const dm_buf_t *b)
{
    const uint8_t *p = (const uint8_t *)b->data, *end = p + b->len;
    dm_rowbatch_value_t v;
    cr_assert(dm_rowbatch_read(&p, end, &v));
    cr_assert_eq(p, end, "the value left %td bytes", end - p);
    return v;
}

/* Whether every cut of b short of its end is refused. */
static bool s_cuts_refused(const dm_buf_t *b)
{
    for (size_t n = 0; n < b->len; n++) {
        const uint8_t *p = (const uint8_t *)b->data;
        dm_rowbatch_value_t v;
        if (dm_rowbatch_read(&p, p + n, &v))
            return false;
    }
    return true;
}

Test(rowbatch, null_round_trips)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_rowbatch_put_null(&b);
    cr_assert_eq(s_one(&b).type, DM_ROWBATCH_NULL);
    dm_buf_free(&b);
}

Test(rowbatch, int_round_trips_at_the_edges)
{
    const int64_t vals[] = {0, 1, -1, 63, -64, 64, 300, -300, INT32_MAX, INT32_MIN,
                            INT64_MAX, INT64_MIN};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
        dm_buf_t b = DM_BUF_INIT;
        dm_rowbatch_put_int(&b, vals[k]);
        dm_rowbatch_value_t v = s_one(&b);
        cr_assert_eq(v.type, DM_ROWBATCH_INT);
        cr_assert_eq(v.i, vals[k], "%lld", (long long)vals[k]);
        cr_assert(s_cuts_refused(&b));
        dm_buf_free(&b);
    }
}

Test(rowbatch, real_round_trips_bit_for_bit)
{
    const double vals[] = {0.0, -0.0, 1.5, -2.25e-300, DBL_MAX, DBL_MIN, INFINITY, -INFINITY};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
        dm_buf_t b = DM_BUF_INIT;
        dm_rowbatch_put_real(&b, vals[k]);
        dm_rowbatch_value_t v = s_one(&b);
        cr_assert_eq(v.type, DM_ROWBATCH_REAL);
        cr_assert_eq(memcmp(&v.d, &vals[k], sizeof v.d), 0, "%g", vals[k]);
        cr_assert(s_cuts_refused(&b));
        dm_buf_free(&b);
    }
}

Test(rowbatch, text_and_blob_round_trip)
{
    dm_buf_t b = DM_BUF_INIT;
    char big[300];
    memset(big, 'x', sizeof big);
    dm_rowbatch_put_bytes(&b, DM_ROWBATCH_TEXT, "héllo", strlen("héllo"));
    dm_rowbatch_put_bytes(&b, DM_ROWBATCH_BLOB, "\0\1\2", 3);
    dm_rowbatch_put_bytes(&b, DM_ROWBATCH_TEXT, NULL, 0);
    dm_rowbatch_put_bytes(&b, DM_ROWBATCH_BLOB, big, sizeof big);
    const uint8_t *p = (const uint8_t *)b.data, *end = p + b.len;
    dm_rowbatch_value_t v;
    cr_assert(dm_rowbatch_read(&p, end, &v));
    cr_assert(v.type == DM_ROWBATCH_TEXT && v.len == strlen("héllo") &&
              memcmp(v.s, "héllo", v.len) == 0);
    cr_assert(dm_rowbatch_read(&p, end, &v));
    cr_assert(v.type == DM_ROWBATCH_BLOB && v.len == 3 && memcmp(v.s, "\0\1\2", 3) == 0);
    cr_assert(dm_rowbatch_read(&p, end, &v));
    cr_assert(v.type == DM_ROWBATCH_TEXT && v.len == 0);
    cr_assert(dm_rowbatch_read(&p, end, &v));
    cr_assert(v.type == DM_ROWBATCH_BLOB && v.len == sizeof big && memcmp(v.s, big, v.len) == 0);
    cr_assert_eq(p, end);
    cr_assert_not(dm_rowbatch_read(&p, end, &v), "read past the end");
    dm_buf_free(&b);
}

/* The tags and bodies are the protocol (docs/protocol.md): fixed bytes. */
Test(rowbatch, wire_bytes_are_the_protocols)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_rowbatch_put_null(&b);
    dm_rowbatch_put_int(&b, -2);
    dm_rowbatch_put_real(&b, 1.0);
    dm_rowbatch_put_bytes(&b, DM_ROWBATCH_TEXT, "ab", 2);
    dm_rowbatch_put_bytes(&b, DM_ROWBATCH_BLOB, "c", 1);
    const uint8_t want[] = {0, 1, 3, 2, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 3, 2, 'a', 'b', 4, 1, 'c'};
    cr_assert_eq(b.len, sizeof want);
    cr_assert_eq(memcmp(b.data, want, sizeof want), 0);
    cr_assert_eq(b.data[b.len], 0, "the buffer stays NUL-terminated");
    dm_buf_free(&b);
}

Test(rowbatch, refuses_an_unknown_tag)
{
    const uint8_t bad[] = {5, 0};
    const uint8_t *p = bad;
    dm_rowbatch_value_t v;
    cr_assert_not(dm_rowbatch_read(&p, bad + sizeof bad, &v));
}

Test(rowbatch, refuses_a_length_past_the_end)
{
    const uint8_t bad[] = {DM_ROWBATCH_TEXT, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'};
    const uint8_t *p = bad;
    dm_rowbatch_value_t v;
    cr_assert_not(dm_rowbatch_read(&p, bad + sizeof bad, &v));
}

Test(rowbatch, refuses_a_varint_over_64_bits)
{
    const uint8_t bad[] = {DM_ROWBATCH_INT, 0xff, 0xff, 0xff, 0xff, 0xff,
                           0xff, 0xff, 0xff, 0xff, 0x02};
    const uint8_t *p = bad;
    dm_rowbatch_value_t v;
    cr_assert_not(dm_rowbatch_read(&p, bad + sizeof bad, &v));
    const uint8_t endless[] = {DM_ROWBATCH_BLOB, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                               0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    p = endless;
    cr_assert_not(dm_rowbatch_read(&p, endless + sizeof endless, &v));
}

Test(rowbatch, refuses_empty_input)
{
    const uint8_t none[1] = {0};
    const uint8_t *p = none;
    dm_rowbatch_value_t v;
    cr_assert_not(dm_rowbatch_read(&p, none, &v));
}

/* SQLite's text of d, as sqlite3_column_text gives it. */
static void s_sqlite_text(double d, char *out, size_t cap)
{
    sqlite3_snprintf((int)cap, out, "%!.15g", d);
}

static void s_assert_real_text(double d)
{
    char want[DM_ROWBATCH_REAL_TEXT_MAX], got[DM_ROWBATCH_REAL_TEXT_MAX];
    s_sqlite_text(d, want, sizeof want);
    size_t n = dm_rowbatch_real_text(d, got);
    cr_assert_str_eq(got, want, "%a", d);
    cr_assert_eq(n, strlen(want));
}

Test(rowbatch, real_text_is_sqlites_at_the_edges)
{
    const double vals[] = {0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1e15, 1e14, 123456789012345.0,
                           123456789012344.5, 123456789012345.5, 1e-4, 1e-5, 9.9999999999999995e-5,
                           0.15, 2.5, 1e100, 1e-100, 1.7976931348623157e308, 5e-324,
                           2.2250738585072014e-308, 99999999999999.99, 9.999999999999999e14,
                           INFINITY, -INFINITY, NAN, 3.141592653589793, 1.0 / 3.0, 100.0, 1e21};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
        s_assert_real_text(vals[k]);
}

Test(rowbatch, real_text_is_sqlites_for_random_doubles)
{
    srandom(7);
    for (int k = 0; k < S_RANDOM_REALS; k++) {
        uint64_t u = (uint64_t)random() << 33 ^ (uint64_t)random() << 11 ^ (uint64_t)random();
        double d;
        memcpy(&d, &u, sizeof d);
        if (k % 2) /* and numbers people store: a few decimals */
            d = (double)(random() % 2000000 - 1000000) / (double)(1 + random() % 10000);
        s_assert_real_text(d);
    }
}

Test(rowbatch, text_of_each_type)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_rowbatch_value_t v = {.type = DM_ROWBATCH_INT, .i = INT64_MIN};
    dm_rowbatch_text(&v, &b);
    v = (dm_rowbatch_value_t){.type = DM_ROWBATCH_REAL, .d = 2.0};
    dm_buf_putc(&b, '|');
    dm_rowbatch_text(&v, &b);
    v = (dm_rowbatch_value_t){.type = DM_ROWBATCH_TEXT, .s = "tx", .len = 2};
    dm_buf_putc(&b, '|');
    dm_rowbatch_text(&v, &b);
    v = (dm_rowbatch_value_t){.type = DM_ROWBATCH_NULL};
    dm_buf_putc(&b, '|');
    dm_rowbatch_text(&v, &b);
    cr_assert_str_eq(b.data, "-9223372036854775808|2.0|tx|");
    dm_buf_free(&b);
}
