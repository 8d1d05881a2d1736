/* test_schema.c: record validation against a contract (every record
 * rule, a failing and a passing case each). Row and key encoding:
 * test_row.c. */
#include "schema_test.h"

TestSuite(schema, .fini = s_fini);

/* ---- the orders schema ---- */

Test(schema, accepts_valid_order)
{
    s_orders();
    VALID(ORDER_OK);
    cr_assert_eq(reasons.len, 0);
}

Test(schema, joins_all_reasons_of_a_record)
{
    s_orders();
    INVALID("{\"orderId\":\"3f1c0000-aaaa-bbbb-cccc-0123456789ab\",\"customerId\":\"c\",\"amount\":-3,"
            "\"status\":\"lost\",\"timestamp\":\"2026-03-01T12:34:56Z\"}",
            "field 'amount': must be > 0, got -3; field 'status': 'lost' is not one of created, "
            "paid, shipped, cancelled");
}

Test(schema, accepts_members_in_any_order)
{
    s_orders();
    VALID("{\"timestamp\":\"2026-03-01T12:34:56Z\",\"status\":\"paid\",\"amount\":1,"
          "\"customerId\":\"c\",\"orderId\":\"3f1c0000-aaaa-bbbb-cccc-0123456789ab\"}");
}

/* ---- not exactly one JSON object ---- */

Test(schema, rejects_trailing_garbage)
{
    s_orders();
    INVALID(ORDER_OK " x", "not a JSON object: trailing characters at column 150");
}

Test(schema, rejects_array_scalar_and_nan)
{
    s_one(DM_FT_INT);
    s_compile();
    INVALID("[{\"v\":1}]", "not a JSON object: expected '{' at column 1");
    INVALID("1", "not a JSON object: expected '{' at column 1");
    INVALID("{\"v\":NaN}", "not a JSON object: unexpected character at column 6");
    VALID("{\"v\":1}");
}

Test(schema, json_error_replaces_field_reasons)
{
    s_orders();
    INVALID("{\"amount\":-1,\"status\":\"x\"", "not a JSON object: expected ',' or '}' at column 26");
}

Test(schema, rejects_raw_control_character)
{
    s_one(DM_FT_STRING);
    s_compile();
    INVALID("{\"v\":\"a\x01z\"}", "not a JSON object: control character in string at column 8");
    VALID("{\"v\":\"a\\u0001z\"}");
}

/* ---- keys ---- */

Test(schema, rejects_duplicate_key)
{
    s_one(DM_FT_INT);
    s_compile();
    INVALID("{\"v\":1,\"v\":2}", "duplicate key 'v'");
    INVALID("{\"v\":null,\"v\":null}", "duplicate key 'v'");
    VALID("{\"v\":1}");
}

Test(schema, rejects_duplicate_key_written_with_escape)
{
    s_one(DM_FT_INT);
    s_compile();
    INVALID("{\"v\":1,\"\\u0076\":2}", "duplicate key 'v'");
}

Test(schema, matches_escaped_key_to_its_field)
{
    s_one(DM_FT_INT);
    s_compile();
    VALID("{\"\\u0076\":1}");
}

Test(schema, rejects_unknown_field)
{
    s_one(DM_FT_INT);
    s_compile();
    INVALID("{\"v\":1,\"w\":2}", "unknown field 'w'");
    INVALID("{\"V\":1}", "unknown field 'V'");
}

Test(schema, rejects_invalid_utf8_in_key_and_value)
{
    s_one(DM_FT_STRING);
    s_compile();
    INVALID("{\"v\":\"\xe9t\xe9\"}", "not a JSON object: invalid UTF-8 at column 7");
    INVALID("{\"v\xff\":\"x\"}", "not a JSON object: invalid UTF-8 at column 4");
    VALID("{\"v\":\"\xc3\xa9t\xc3\xa9\"}");
}

Test(schema, rejects_lone_surrogate_escape)
{
    s_one(DM_FT_STRING);
    s_compile();
    INVALID("{\"v\":\"\\ude00\"}", "not a JSON object: lone surrogate \\u escape at column 7");
    VALID("{\"v\":\"\\ud83d\\ude00\"}");
}

/* ---- required and null ---- */

Test(schema, rejects_missing_required_field)
{
    s_field("a", DM_FT_INT, true);
    s_field("b", DM_FT_INT, false);
    s_compile();
    INVALID("{\"b\":1}", "field 'a': is required but missing");
    VALID("{\"a\":1}");
}

Test(schema, rejects_null_required_field)
{
    s_field("a", DM_FT_INT, true);
    s_compile();
    INVALID("{\"a\":null}", "field 'a': is required, got null");
}

Test(schema, accepts_null_or_absent_optional_field)
{
    s_field("a", DM_FT_INT, false);
    s_compile();
    VALID("{\"a\":null}");
    VALID("{}");
}

Test(schema, validates_non_null_optional_value)
{
    dm_field_t *f = s_one(DM_FT_INT);
    f->has_maximum = true;
    f->maximum = (dm_num_t){.is_int = true, .i = 5};
    s_compile();
    INVALID("{\"v\":6}", "field 'v': must be <= 5, got 6");
}

/* ---- JSON types ---- */

Test(schema, rejects_string_for_number)
{
    s_one(DM_FT_DOUBLE);
    s_compile();
    INVALID("{\"v\":\"12\"}", "field 'v': expected a number, got string '12'");
    VALID("{\"v\":12.5}");
}

Test(schema, accepts_int_for_double)
{
    s_one(DM_FT_DOUBLE);
    s_compile();
    VALID("{\"v\":12}");
}

Test(schema, rejects_fraction_for_int)
{
    s_one(DM_FT_INT);
    s_compile();
    INVALID("{\"v\":1.5}", "field 'v': expected an integer, got 1.5");
    VALID("{\"v\":1.0}");
}

Test(schema, rejects_out_of_range_int)
{
    s_one(DM_FT_INT);
    s_compile();
    INVALID("{\"v\":9223372036854775808}", "field 'v': out of the int64 range, got 9223372036854775808");
    INVALID("{\"v\":1e19}", "field 'v': out of the int64 range, got 1e19");
}

Test(schema, keeps_int64_precision)
{
    dm_value_t v;
    s_one(DM_FT_INT);
    s_compile();
    VALID("{\"v\":9007199254740993}");
    cr_assert(dm_row_get(S, row.data, row.len, 0, &v));
    cr_assert_eq(v.i, INT64_C(9007199254740993));
    VALID("{\"v\":-9223372036854775808}");
    cr_assert(dm_row_get(S, row.data, row.len, 0, &v));
    cr_assert_eq(v.i, INT64_MIN);
}

Test(schema, rejects_non_finite_double)
{
    s_one(DM_FT_DOUBLE);
    s_compile();
    INVALID("{\"v\":1e999}", "field 'v': expected a finite number, got 1e999");
}

Test(schema, rejects_number_for_string)
{
    s_one(DM_FT_STRING);
    s_compile();
    INVALID("{\"v\":12}", "field 'v': expected a string, got number '12'");
}

Test(schema, boolean_accepts_only_true_and_false)
{
    s_one(DM_FT_BOOLEAN);
    s_compile();
    VALID("{\"v\":true}");
    VALID("{\"v\":false}");
    INVALID("{\"v\":\"true\"}", "field 'v': expected a boolean, got string 'true'");
    INVALID("{\"v\":1}", "field 'v': expected a boolean, got number '1'");
}

Test(schema, rejects_nested_value_for_every_type)
{
    for (int t = 0; t < DM_FT__COUNT; t++) {
        memset(&M, 0, sizeof M);
        dm_schema_destroy(&S);
        dm_field_t *f = s_one((dm_ftype)t);
        f->values = ORDER_STATUS;
        f->nvalues = 4;
        s_compile();
        INVALID_HAS("{\"v\":{\"a\":[1]}}", "got an object");
        INVALID_HAS("{\"v\":[\"paid\"]}", "got an array");
    }
}

Test(schema, scans_nested_values_to_judge_the_record)
{
    s_field("v", DM_FT_STRING, false);
    s_field("w", DM_FT_INT, true);
    s_compile();
    INVALID("{\"v\":{\"x\":\"}\",\"y\":[{}]},\"w\":1}", "field 'v': expected a string, got an object");
    INVALID("{\"v\":{\"x\":\"}\",\"y\":[{]},\"w\":1}", "not a JSON object: expected a key at column 21");
}

/* ---- constraints ---- */

Test(schema, enum_rejects_value_outside_list)
{
    dm_field_t *f = s_one(DM_FT_ENUM);
    f->values = ORDER_STATUS;
    f->nvalues = 4;
    s_compile();
    INVALID("{\"v\":\"Paid\"}", "field 'v': 'Paid' is not one of created, paid, shipped, cancelled");
    VALID("{\"v\":\"cancelled\"}");
}

Test(schema, minimum_is_inclusive)
{
    dm_field_t *f = s_one(DM_FT_INT);
    f->has_minimum = true;
    f->minimum = (dm_num_t){.is_int = true, .i = 10};
    s_compile();
    VALID("{\"v\":10}");
    INVALID("{\"v\":9}", "field 'v': must be >= 10, got 9");
}

Test(schema, maximum_is_inclusive)
{
    dm_field_t *f = s_one(DM_FT_DOUBLE);
    f->has_maximum = true;
    f->maximum = (dm_num_t){.d = 2.5};
    s_compile();
    VALID("{\"v\":2.5}");
    INVALID("{\"v\":2.50001}", "field 'v': must be <= 2.5, got 2.50001");
}

Test(schema, exclusive_minimum_excludes_bound)
{
    dm_field_t *f = s_one(DM_FT_DOUBLE);
    f->has_exclusive_minimum = true;
    f->exclusive_minimum = (dm_num_t){.is_int = true, .i = 0};
    s_compile();
    VALID("{\"v\":0.001}");
    INVALID("{\"v\":0}", "field 'v': must be > 0, got 0");
}

Test(schema, exclusive_maximum_excludes_bound)
{
    dm_field_t *f = s_one(DM_FT_INT);
    f->has_exclusive_maximum = true;
    f->exclusive_maximum = (dm_num_t){.d = 100.5};
    s_compile();
    VALID("{\"v\":100}");
    INVALID("{\"v\":101}", "field 'v': must be < 100.5, got 101");
}

Test(schema, int_bounds_compare_exactly_beyond_2_pow_53)
{
    dm_field_t *f = s_one(DM_FT_INT);
    f->has_maximum = true;
    f->maximum = (dm_num_t){.is_int = true, .i = INT64_C(9007199254740992)};
    s_compile();
    VALID("{\"v\":9007199254740992}");
    INVALID("{\"v\":9007199254740993}", "field 'v': must be <= 9007199254740992, got 9007199254740993");
}

Test(schema, max_length_counts_code_points)
{
    dm_field_t *f = s_one(DM_FT_STRING);
    f->max_length = 3;
    s_compile();
    VALID("{\"v\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}");
    VALID("{\"v\":\"\\u00e9\\ud83d\\ude00x\"}");
    INVALID("{\"v\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
            "field 'v': must be at most 3 characters, got 4: '\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9'");
}

Test(schema, min_length_counts_code_points)
{
    dm_field_t *f = s_one(DM_FT_STRING);
    f->min_length = 2;
    s_compile();
    VALID("{\"v\":\"ab\"}");
    INVALID("{\"v\":\"\xe2\x82\xac\"}", "field 'v': must be at least 2 characters, got 1: '\xe2\x82\xac'");
}

Test(schema, pattern_is_an_unanchored_search)
{
    dm_field_t *f = s_one(DM_FT_STRING);
    f->pattern = "[0-9]{3}";
    s_compile();
    VALID("{\"v\":\"ab123cd\"}");
    INVALID("{\"v\":\"ab12cd\"}", "field 'v': 'ab12cd' does not match pattern '[0-9]{3}'");
}

Test(schema, pattern_honours_anchors)
{
    dm_field_t *f = s_one(DM_FT_STRING);
    f->pattern = "^cust-[0-9]+$";
    s_compile();
    VALID("{\"v\":\"cust-42\"}");
    INVALID_HAS("{\"v\":\"xcust-42\"}", "does not match pattern");
}

Test(schema, pattern_sees_decoded_text)
{
    dm_field_t *f = s_one(DM_FT_STRING);
    f->pattern = "^a.b$";
    s_compile();
    VALID("{\"v\":\"a\\nb\"}");
}

Test(schema, new_fails_on_bad_pattern)
{
    dm_field_t *f = s_one(DM_FT_STRING);
    f->pattern = "([a-z";
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_schema_new(&M, &S, &why), DM_ERR_INVALID);
    cr_assert_null(S);
    cr_assert(why.data && strncmp(why.data, "field 'v': pattern '([a-z' is refused: ", 39) == 0,
              "why: %s", why.data);
    cr_assert_null(strchr(why.data, '\n'), "one line");
    dm_buf_free(&why);
}

/* ---- timestamp, date, uuid ---- */

Test(schema, timestamp_requires_offset)
{
    s_one(DM_FT_TIMESTAMP);
    s_compile();
    VALID("{\"v\":\"2026-03-01T12:34:56+05:30\"}");
    INVALID("{\"v\":\"2026-03-01T12:34:56\"}",
            "field 'v': '2026-03-01T12:34:56' is not an RFC 3339 timestamp with offset (or names an "
            "impossible date or time)");
}

Test(schema, timestamp_rejects_impossible_values)
{
    const char *bad[] = {"{\"v\":\"2026-02-30T00:00:00Z\"}", "{\"v\":\"2026-01-01T24:00:00Z\"}",
                         "{\"v\":\"2026-01-01T23:60:00Z\"}", "{\"v\":\"2026-01-01T00:00:00+25:00\"}"};
    s_one(DM_FT_TIMESTAMP);
    s_compile();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        INVALID_HAS(bad[i], "is not an RFC 3339 timestamp");
}

Test(schema, timestamp_pushed_past_the_four_digit_years_is_refused_with_the_range)
{
    s_one(DM_FT_TIMESTAMP);
    s_compile();
    VALID("{\"v\":\"9999-12-31T23:59:59.999999Z\"}");
    VALID("{\"v\":\"0000-01-01T00:00:00Z\"}");
    VALID("{\"v\":\"9999-12-31T23:59:59-00:00\"}");
    INVALID("{\"v\":\"9999-12-31T23:59:59-00:01\"}",
            "field 'v': '9999-12-31T23:59:59-00:01' is outside the timestamp range "
            "0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z once its offset is applied");
    INVALID_HAS("{\"v\":\"0000-01-01T00:00:00+00:01\"}",
                "'0000-01-01T00:00:00+00:01' is outside the timestamp range");
}

Test(schema, date_knows_leap_years)
{
    s_one(DM_FT_DATE);
    s_compile();
    VALID("{\"v\":\"2024-02-29\"}");
    INVALID("{\"v\":\"2100-02-29\"}", "field 'v': '2100-02-29' is not a calendar date YYYY-MM-DD");
}

Test(schema, uuid_accepts_either_case_only_in_8_4_4_4_12)
{
    s_one(DM_FT_UUID);
    s_compile();
    VALID("{\"v\":\"3F1C0000-AAAA-bbbb-CCCC-0123456789ab\"}");
    INVALID("{\"v\":\"3f1c0000aaaabbbbcccc0123456789ab\"}",
            "field 'v': '3f1c0000aaaabbbbcccc0123456789ab' is not a UUID (8-4-4-4-12 hex digits)");
}

/* ---- row-level quality checks ---- */

Test(schema, check_not_null_rejects_null)
{
    s_field("v", DM_FT_STRING, false);
    s_check(DM_CHECK_NOT_NULL, "v");
    s_compile();
    VALID("{\"v\":\"x\"}");
    INVALID("{\"v\":null}", "field 'v': check not_null failed: value is null");
    INVALID("{}", "field 'v': check not_null failed: value is null");
}

Test(schema, check_in_list_on_string)
{
    static char *list[] = {"EU", "US"};
    s_field("v", DM_FT_STRING, false);
    dm_check_t *c = s_check(DM_CHECK_IN_LIST, "v");
    c->values = list;
    c->nvalues = 2;
    s_compile();
    VALID("{\"v\":\"US\"}");
    VALID("{\"v\":null}");
    INVALID("{\"v\":\"UK\"}", "field 'v': check in_list failed: 'UK' is not in the list");
}

Test(schema, check_in_list_compares_typed_values)
{
    static char *list[] = {"1", "20"};
    s_field("v", DM_FT_INT, false);
    dm_check_t *c = s_check(DM_CHECK_IN_LIST, "v");
    c->values = list;
    c->nvalues = 2;
    s_compile();
    VALID("{\"v\":2e1}");
    INVALID("{\"v\":2}", "field 'v': check in_list failed: '2' is not in the list");
}

Test(schema, new_fails_on_in_list_value_of_wrong_type)
{
    static char *list[] = {"one"};
    s_field("v", DM_FT_INT, false);
    dm_check_t *c = s_check(DM_CHECK_IN_LIST, "v");
    c->values = list;
    c->nvalues = 1;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_schema_new(&M, &S, &why), DM_ERR_INVALID);
    cr_assert_str_eq(why.data, "check in_list on 'v': 'one' is not a valid value for it");
    dm_buf_free(&why);
}

Test(schema, check_range_is_inclusive)
{
    s_field("v", DM_FT_DOUBLE, false);
    dm_check_t *c = s_check(DM_CHECK_RANGE, "v");
    c->has_min = c->has_max = true;
    c->min = (dm_num_t){.is_int = true, .i = 1};
    c->max = (dm_num_t){.is_int = true, .i = 10};
    s_compile();
    VALID("{\"v\":1}");
    VALID("{\"v\":10}");
    INVALID("{\"v\":10.5}", "field 'v': check range failed: must be between 1 and 10, got 10.5");
}

Test(schema, check_range_with_only_min)
{
    s_field("v", DM_FT_INT, false);
    dm_check_t *c = s_check(DM_CHECK_RANGE, "v");
    c->has_min = true;
    c->min = (dm_num_t){.is_int = true, .i = 0};
    s_compile();
    VALID("{\"v\":0}");
    INVALID("{\"v\":-1}", "field 'v': check range failed: must be >= 0, got -1");
}

Test(schema, check_regex_searches_value)
{
    s_field("v", DM_FT_STRING, false);
    dm_check_t *c = s_check(DM_CHECK_REGEX, "v");
    c->pattern = "@";
    s_compile();
    VALID("{\"v\":\"a@b\"}");
    INVALID("{\"v\":\"ab\"}", "field 'v': check regex failed: 'ab' does not match '@'");
}

Test(schema, checks_skip_fields_that_already_failed)
{
    s_field("v", DM_FT_INT, true);
    s_check(DM_CHECK_NOT_NULL, "v");
    s_compile();
    INVALID("{\"v\":\"x\"}", "field 'v': expected an integer, got string 'x'");
}

Test(schema, dataset_level_checks_are_skipped)
{
    s_field("v", DM_FT_INT, false);
    s_check(DM_CHECK_UNIQUE, "v");
    s_check(DM_CHECK_FRESHNESS, "v");
    s_compile();
    VALID("{\"v\":1}");
}

/* ---- messages ---- */

Test(schema, quoted_values_are_truncated)
{
    s_one(DM_FT_INT);
    s_compile();
    INVALID("{\"v\":\"0123456789012345678901234567890123456789abc\"}",
            "field 'v': expected an integer, got string '0123456789012345678901234567890123456789...'");
}

Test(schema, quoted_values_cut_on_character_boundary)
{
    s_one(DM_FT_INT);
    s_compile();
    /* 39 ASCII bytes then a 2-byte character straddling byte 40 */
    INVALID("{\"v\":\"012345678901234567890123456789012345678\xc3\xa9z\"}",
            "field 'v': expected an integer, got string '012345678901234567890123456789012345678...'");
}

Test(schema, quoted_values_stay_on_one_line)
{
    s_one(DM_FT_INT);
    s_compile();
    INVALID("{\"v\":\"a\x7f\\nb\"}", "field 'v': expected an integer, got string 'a\\u007f\\nb'");
}

Test(schema, caps_the_number_of_reasons)
{
    char line[1024] = "{";
    s_one(DM_FT_INT);
    s_compile();
    for (int i = 0; i < DM_SCHEMA_MAX_REASONS + 4; i++)
        sprintf(line + strlen(line), "%s\"k%d\":1", i ? "," : "", i);
    strcat(line, "}");
    cr_assert_not(s_valid(line));
    cr_assert(strstr(reasons.data, "unknown field 'k15'; and 4 more problems"), "%s", reasons.data);
}

