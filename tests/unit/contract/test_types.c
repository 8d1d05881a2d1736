/* test_types.c: scalar type parsers and formatters (node/contract/types.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "contract/types.h"

static bool s_ts(const char *s, int64_t *us) { return dm_types_timestamp_parse(s, strlen(s), us); }
static bool s_int(const char *s, int64_t *v) { return dm_types_int_parse(s, strlen(s), v); }
static bool s_dbl(const char *s, double *v) { return dm_types_double_parse(s, strlen(s), v); }

Test(types, timestamp_parses_utc_with_millis)
{
    int64_t us;
    cr_assert(s_ts("2026-03-01T12:34:56.789Z", &us));
    cr_assert_eq(us, INT64_C(1772368496789000));
}

Test(types, timestamp_applies_offset)
{
    int64_t a, b;
    cr_assert(s_ts("2024-02-29T01:00:00+01:00", &a));
    cr_assert(s_ts("2024-02-29T00:00:00Z", &b));
    cr_assert_eq(a, b);
}

Test(types, timestamp_accepts_lowercase_t_space_and_nanoseconds)
{
    int64_t a, b;
    cr_assert(s_ts("2026-01-01t00:00:00.123456789z", &a));
    cr_assert(s_ts("2026-01-01 00:00:00.123456-00:00", &b));
    cr_assert_eq(a, b);
}

Test(types, timestamp_rejects_missing_offset)
{
    int64_t us;
    cr_assert_not(s_ts("2026-01-01T00:00:00", &us));
    cr_assert_not(s_ts("2026-01-01", &us));
}

Test(types, timestamp_rejects_impossible_date)
{
    int64_t us;
    cr_assert_not(s_ts("2026-02-30T00:00:00Z", &us));
    cr_assert_not(s_ts("2026-13-01T00:00:00Z", &us));
    cr_assert_not(s_ts("2023-02-29T00:00:00Z", &us));
}

Test(types, timestamp_rejects_impossible_time)
{
    int64_t us;
    cr_assert_not(s_ts("2026-01-01T24:00:00Z", &us));
    cr_assert_not(s_ts("2026-01-01T23:60:00Z", &us));
    cr_assert_not(s_ts("2026-01-01T23:59:60Z", &us));
}

Test(types, timestamp_rejects_impossible_offset)
{
    int64_t us;
    cr_assert_not(s_ts("2026-01-01T00:00:00+25:00", &us));
    cr_assert_not(s_ts("2026-01-01T00:00:00+01:60", &us));
    cr_assert_not(s_ts("2026-01-01T00:00:00+0100", &us));
}

Test(types, timestamp_rejects_bad_fraction_and_trailing_text)
{
    int64_t us;
    cr_assert_not(s_ts("2026-01-01T00:00:00.Z", &us));
    cr_assert_not(s_ts("2026-01-01T00:00:00.1234567890Z", &us));
    cr_assert_not(s_ts("2026-01-01T00:00:00Zx", &us));
}

Test(types, timestamp_does_not_read_past_length)
{
    int64_t us;
    cr_assert_not(dm_types_timestamp_parse("2026-01-01T00:00:00Z", 19, &us));
}

Test(types, timestamp_format_round_trips)
{
    const char *cases[] = {"2026-03-01T12:34:56.789Z", "1970-01-01T00:00:00Z",
                           "1969-12-31T23:59:59.999999Z", "0000-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t us;
        char buf[DM_TIMESTAMP_TEXT_MAX];
        cr_assert(s_ts(cases[i], &us));
        size_t n = dm_types_timestamp_format(us, buf);
        cr_assert_str_eq(buf, cases[i]);
        cr_assert_eq(n, strlen(cases[i]));
    }
}

Test(types, timestamp_accepts_the_last_and_first_instants)
{
    int64_t us;
    cr_assert_eq(dm_types_timestamp_check("9999-12-31T23:59:59.999999Z", 27, &us), DM_TS_OK);
    cr_assert_eq(us, DM_TIMESTAMP_MAX_US);
    cr_assert_eq(dm_types_timestamp_check("0000-01-01T00:00:00Z", 20, &us), DM_TS_OK);
    cr_assert_eq(us, DM_TIMESTAMP_MIN_US);
    cr_assert(s_ts("9999-12-31T23:59:59.999999999Z", &us), "nanoseconds are cut, not rounded up");
    cr_assert_eq(us, DM_TIMESTAMP_MAX_US);
    cr_assert(s_ts("0000-01-01T01:00:00+01:00", &us));
    cr_assert_eq(us, DM_TIMESTAMP_MIN_US);
    cr_assert(s_ts("9999-12-31T22:59:59.999999-01:00", &us));
    cr_assert_eq(us, DM_TIMESTAMP_MAX_US);
}

Test(types, timestamp_refuses_an_offset_that_leaves_the_range)
{
    int64_t us = 42;
    const char *over[] = {"9999-12-31T23:59:59.999999-00:01", "9999-12-31T23:30:00-00:30",
                          "9999-12-31T23:59:59-23:59"};
    const char *under[] = {"0000-01-01T00:00:00+00:01", "0000-01-01T00:59:59.999999+01:00",
                           "0000-01-01T00:00:00.5+23:59"};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(dm_types_timestamp_check(over[i], strlen(over[i]), &us), DM_TS_RANGE, "%s",
                     over[i]);
        cr_assert_eq(dm_types_timestamp_check(under[i], strlen(under[i]), &us), DM_TS_RANGE, "%s",
                     under[i]);
        cr_assert_not(s_ts(over[i], &us));
        cr_assert_not(s_ts(under[i], &us));
    }
    cr_assert_eq(us, 42, "the output is untouched on refusal");
    cr_assert_eq(dm_types_timestamp_check("2026-02-30T00:00:00Z", 20, &us), DM_TS_SYNTAX);
}

Test(types, timestamp_text_of_every_accepted_instant_has_fixed_width_date)
{
    /* the edges and their neighbours: the date part is always YYYY-MM-DD,
     * so the text sorts as the instant does */
    const int64_t us[] = {DM_TIMESTAMP_MIN_US, DM_TIMESTAMP_MIN_US + 1, DM_TIMESTAMP_MAX_US,
                          DM_TIMESTAMP_MAX_US - 1, 0, -1};
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        char buf[DM_TIMESTAMP_TEXT_MAX];
        dm_types_timestamp_format(us[i], buf);
        cr_assert(buf[4] == '-' && buf[7] == '-' && buf[10] == 'T', "%s", buf);
        int64_t back;
        cr_assert(s_ts(buf, &back), "%s", buf);
        cr_assert_eq(back, us[i], "%s", buf);
    }
}

Test(types, date_accepts_leap_day_in_leap_years)
{
    int32_t d;
    cr_assert(dm_types_date_parse("2000-02-29", 10, &d));
    cr_assert(dm_types_date_parse("2024-02-29", 10, &d));
    cr_assert_eq(d, 19782);
}

Test(types, date_rejects_leap_day_in_common_years)
{
    int32_t d;
    cr_assert_not(dm_types_date_parse("1900-02-29", 10, &d));
    cr_assert_not(dm_types_date_parse("2023-02-29", 10, &d));
}

Test(types, date_rejects_malformed)
{
    int32_t d;
    cr_assert_not(dm_types_date_parse("2023-04-31", 10, &d));
    cr_assert_not(dm_types_date_parse("2023-4-01", 9, &d));
    cr_assert_not(dm_types_date_parse("2023/04/01", 10, &d));
    cr_assert_not(dm_types_date_parse("2023-00-10", 10, &d));
}

Test(types, date_format_round_trips)
{
    int32_t d;
    char buf[11];
    cr_assert(dm_types_date_parse("1969-07-20", 10, &d));
    cr_assert_eq(d, -165);
    dm_types_date_format(d, buf);
    cr_assert_str_eq(buf, "1969-07-20");
}

Test(types, uuid_accepts_either_case)
{
    uint8_t a[DM_UUID_BYTES], b[DM_UUID_BYTES];
    cr_assert(dm_types_uuid_parse("3F1C0000-AAAA-bbbb-CCCC-0123456789ab", 36, a));
    cr_assert(dm_types_uuid_parse("3f1c0000-aaaa-bbbb-cccc-0123456789AB", 36, b));
    cr_assert_arr_eq(a, b, DM_UUID_BYTES);
    cr_assert_eq(a[0], 0x3f);
    cr_assert_eq(a[15], 0xab);
}

Test(types, uuid_rejects_wrong_shape)
{
    uint8_t u[DM_UUID_BYTES];
    const char *bad[] = {"3f1c0000aaaabbbbcccc0123456789ab", "3f1c0000-aaaa-bbbb-cccc-0123456789a",
                         "3f1c0000-aaaa-bbbb-cccc-0123456789ag", "3f1c000-0aaaa-bbbb-cccc-0123456789ab",
                         "{3f1c0000-aaaa-bbbb-cccc-0123456789a}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(dm_types_uuid_parse(bad[i], strlen(bad[i]), u), "%s", bad[i]);
}

Test(types, uuid_format_is_lowercase)
{
    uint8_t u[DM_UUID_BYTES];
    char buf[37];
    cr_assert(dm_types_uuid_parse("3F1C0000-AAAA-BBBB-CCCC-0123456789AB", 36, u));
    dm_types_uuid_format(u, buf);
    cr_assert_str_eq(buf, "3f1c0000-aaaa-bbbb-cccc-0123456789ab");
}

Test(types, int_accepts_integral_numbers)
{
    int64_t v;
    cr_assert(s_int("42", &v) && v == 42);
    cr_assert(s_int("-7", &v) && v == -7);
    cr_assert(s_int("1.0", &v) && v == 1);
    cr_assert(s_int("1e3", &v) && v == 1000);
    cr_assert(s_int("250e-2", &v) == false);
    cr_assert(s_int("2500e-2", &v) && v == 25);
}

Test(types, int_keeps_full_int64_precision)
{
    int64_t v;
    cr_assert(s_int("9223372036854775807", &v));
    cr_assert_eq(v, INT64_MAX);
    cr_assert(s_int("-9223372036854775808", &v));
    cr_assert_eq(v, INT64_MIN);
    cr_assert(s_int("9007199254740993", &v));
    cr_assert_eq(v, INT64_C(9007199254740993));
}

Test(types, int_rejects_fraction_and_overflow)
{
    int64_t v;
    cr_assert_not(s_int("1.5", &v));
    cr_assert_not(s_int("9223372036854775808", &v));
    cr_assert_not(s_int("-9223372036854775809", &v));
    cr_assert_not(s_int("1e19", &v));
}

Test(types, int_rejects_non_json_numbers)
{
    int64_t v;
    cr_assert_not(s_int("01", &v));
    cr_assert_not(s_int("+1", &v));
    cr_assert_not(s_int("1.", &v));
    cr_assert_not(s_int("", &v));
    cr_assert_not(s_int("0x10", &v));
}

Test(types, double_parses_decimal_exactly)
{
    double d;
    cr_assert(s_dbl("123.45", &d));
    cr_assert_eq(d, 123.45);
    cr_assert(s_dbl("-0.1e-3", &d));
    cr_assert_eq(d, -0.1e-3);
    cr_assert(s_dbl("12345678901234567890123", &d));
    cr_assert_eq(d, 12345678901234567890123.0);
}

Test(types, double_rejects_non_finite)
{
    double d;
    cr_assert_not(s_dbl("1e999", &d));
    cr_assert_not(s_dbl("-1e999", &d));
    cr_assert_not(s_dbl("NaN", &d));
    cr_assert_not(s_dbl("Infinity", &d));
}

Test(types, days_from_civil_matches_epoch)
{
    cr_assert_eq(dm_types_days_from_civil(1970, 1, 1), 0);
    cr_assert_eq(dm_types_days_from_civil(2000, 3, 1), 11017);
    cr_assert_eq(dm_types_days_from_civil(1969, 12, 31), -1);
}
