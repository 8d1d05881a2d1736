/* test_contract_rules.c: the contract sections after the schema (suite
 * "contract"): storage, sla, policies, interoperability, quality checks. */
#include "contract_test.h"

/* ---- storage, sla, policies, interoperability ---- */

Test(contract, reads_storage)
{
    result_t r = parse_base("  storage:\n    format: parquet\n    location: s3://b/o/\n"
                            "    partitioning:\n      - {field: ts, granularity: hour}\n"
                            "      - {field: d, granularity: month}\n");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert_str_eq(c->storage_format, "parquet");
    cr_assert_str_eq(c->storage_location, "s3://b/o/");
    cr_assert_eq(c->npartitions, 2);
    cr_assert_eq(c->partitions[0].granularity, DM_GRAN_HOUR);
    cr_assert_str_eq(c->partitions[1].field, "d");
    cr_assert_eq(c->partitions[1].granularity, DM_GRAN_MONTH);
    result_free(&r);
}

Test(contract, rejects_partitioning_on_non_time_field)
{
    result_t r = parse_base("  storage:\n    partitioning:\n      - {field: s, granularity: day}\n");
    expect_err(&r, 23, 17, "partitioning field 's' is string; it must be a timestamp or date field");
    result_free(&r);
}

Test(contract, rejects_hour_partitioning_on_date)
{
    result_t r = parse_base("  storage:\n    partitioning:\n      - {field: d, granularity: hour}\n");
    expect_err(&r, 23, 33, "granularity hour needs a timestamp field; 'd' is a date");
    result_free(&r);
}

Test(contract, rejects_unknown_granularity)
{
    result_t r = parse_base("  storage:\n    partitioning:\n      - {field: ts, granularity: daily}\n");
    expect_err(&r, 23, 34, "partitioning granularity 'daily' is not one of hour, day, month, year");
    result_free(&r);
}

Test(contract, rejects_partition_without_granularity)
{
    result_t r = parse_base("  storage:\n    partitioning:\n      - field: ts\n");
    expect_err(&r, 23, 9, "spec.storage.partitioning[0] is missing the required key 'granularity'");
    result_free(&r);
}

Test(contract, reads_sla)
{
    result_t r = parse_base("  sla: {freshness: PT5M, availability: 100, latency: p999<250ms}\n");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert_eq(c->freshness_ms, 300000);
    cr_assert_float_eq(c->availability, 100, 1e-12);
    cr_assert_float_eq(c->latency_percentile, 99.9, 1e-12);
    cr_assert(c->latency_percentile == 99.9, "p999 is exactly the double 99.9");
    cr_assert_eq(c->latency_ms, 250);
    result_free(&r);
}

Test(contract, reads_latency_percentiles)
{
    const char *in[] = {"p50 < 1s", "p99 <  2s", "p9999 < 1m", "  p90<1h  "};
    const double pct[] = {50, 99, 99.99, 90};
    const int64_t ms[] = {1000, 2000, 60000, 3600000};
    for (size_t i = 0; i < 4; i++) {
        char extra[96];
        snprintf(extra, sizeof extra, "  sla:\n    latency: '%s'\n", in[i]);
        result_t r = parse_base(extra);
        expect_ok(&r);
        cr_assert_float_eq(r.cs[0]->latency_percentile, pct[i], 1e-9, "%s", in[i]);
        cr_assert_eq(r.cs[0]->latency_ms, ms[i], "%s", in[i]);
        result_free(&r);
    }
}

Test(contract, rejects_bad_latency)
{
    const char *bad[] = {"99 < 1s", "p99 1s", "p99 < 0s", "p0 < 1s", "p99 > 1s", "p99 < soon"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char extra[96];
        snprintf(extra, sizeof extra, "  sla:\n    latency: '%s'\n", bad[i]);
        result_t r = parse_base(extra);
        expect_err(&r, 22, 14, "is not 'pNN < DURATION'");
        result_free(&r);
    }
}

Test(contract, rejects_availability_out_of_range)
{
    result_t r = parse_base("  sla:\n    availability: 100.5\n");
    expect_err(&r, 22, 19, "spec.sla.availability is a percentage: it must be greater than 0 and "
                           "at most 100, got 100.5");
    result_free(&r);
}

Test(contract, rejects_quoted_availability)
{
    result_t r = parse_base("  sla:\n    availability: \"99.9\"\n");
    expect_err(&r, 22, 19, "spec.sla.availability: expected a number, got the string \"99.9\"");
    result_free(&r);
}

Test(contract, rejects_bad_freshness)
{
    result_t r = parse_base("  sla:\n    freshness: 5 min\n");
    expect_err(&r, 22, 16, "spec.sla.freshness: '5 min' is not a duration");
    result_free(&r);
}

Test(contract, reads_policies)
{
    result_t r = parse_base("  policies: {access: public, retention: P30D, encryption: none}\n");
    expect_ok(&r);
    cr_assert_eq(r.cs[0]->access, DM_ACCESS_PUBLIC);
    cr_assert_eq(r.cs[0]->retention_ms, 30LL * 86400000);
    cr_assert_eq(r.cs[0]->encryption, DM_ENC_NONE);
    result_free(&r);
}

Test(contract, rejects_unknown_access_with_suggestion)
{
    result_t r = parse_base("  policies: {access: privat}\n");
    expect_err(&r, 21, 22, "spec.policies.access 'privat' is not one of public, restricted, "
                           "private (did you mean 'private'?)");
    result_free(&r);
}

Test(contract, rejects_unknown_encryption)
{
    result_t r = parse_base("  policies: {encryption: aes-128}\n");
    expect_err(&r, 21, 26, "spec.policies.encryption 'aes-128' is not one of none, aes-256");
    result_free(&r);
}

Test(contract, rejects_zero_retention)
{
    result_t r = parse_base("  policies: {retention: 0s}\n");
    expect_err(&r, 21, 25, "spec.policies.retention: the duration must be greater than zero");
    result_free(&r);
}

Test(contract, reads_interoperability)
{
    result_t r = parse_base("  interoperability:\n    protocols: [grpc, sql]\n"
                            "    lineage: {upstream: [{product: a, domain: b}]}\n");
    expect_ok(&r);
    cr_assert_eq(r.cs[0]->protocols, DM_PROTO_GRPC | DM_PROTO_SQL);
    cr_assert_eq(r.cs[0]->nupstream, 1);
    cr_assert_str_eq(r.cs[0]->upstream[0].product, "a");
    result_free(&r);
}

Test(contract, rejects_unknown_protocol)
{
    result_t r = parse_base("  interoperability:\n    protocols: [graphq]\n");
    expect_err(&r, 22, 17, "protocol 'graphq' is not one of graphql, rest, grpc, sql (did you mean 'graphql'?)");
    result_free(&r);
}

Test(contract, rejects_upstream_without_domain)
{
    result_t r = parse_base("  interoperability:\n    lineage:\n      upstream:\n        - product: a\n");
    expect_err(&r, 24, 11, "spec.interoperability.lineage.upstream[0] is missing the required key 'domain'");
    result_free(&r);
}

Test(contract, rejects_upstream_with_bad_name)
{
    result_t r = parse_base("  interoperability:\n    lineage: {upstream: [{product: A, domain: b}]}\n");
    expect_err(&r, 22, 36, "upstream product 'A' is not a valid name");
    result_free(&r);
}

Test(contract, rejects_protocols_as_scalar)
{
    result_t r = parse_base("  interoperability:\n    protocols: rest\n");
    expect_err(&r, 22, 16, "spec.interoperability.protocols must be a sequence (a YAML list), got a string");
    result_free(&r);
}

Test(contract, rejects_unknown_spec_section)
{
    result_t r = parse_base("  qualty: {}\n");
    expect_err(&r, 21, 3, "unknown key 'qualty' in spec (valid: schema, sla, storage, quality, "
                          "policies, interoperability; or an x- extension key) (did you mean 'quality'?)");
    result_free(&r);
}

/* ---- quality checks ---- */

static result_t parse_check(const char *check)
{
    char extra[512];
    snprintf(extra, sizeof extra, "  quality:\n    checks:\n      - %s\n", check);
    return parse_base(extra);
}

Test(contract, reads_every_rule)
{
    result_t r = parse_base("  sla: {freshness: 10m}\n  quality:\n    checks:\n"
                            "      - {rule: not_null, column: s, name: s-set, description: d}\n"
                            "      - {rule: in_list, column: st, values: [a]}\n"
                            "      - {rule: range, column: n, min: 0, max: 10}\n"
                            "      - {rule: regex, column: s, pattern: '^x'}\n"
                            "      - {rule: unique, column: id}\n"
                            "      - {rule: row_count_delta, threshold: 500}\n"
                            "      - {rule: freshness, column: ts}\n");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert_eq(c->nchecks, 7);
    for (int i = 0; i < 7; i++)
        cr_assert_eq(c->checks[i].rule, (dm_check_rule)i);
    cr_assert_str_eq(c->checks[0].name, "s-set");
    cr_assert_str_eq(c->checks[0].description, "d");
    cr_assert_eq(c->checks[0].field_index, 3);
    cr_assert_str_eq(c->checks[1].values[0], "a");
    cr_assert(c->checks[2].has_min && c->checks[2].has_max && c->checks[2].max.is_int);
    cr_assert_eq(c->checks[2].max.i, 10);
    cr_assert_str_eq(c->checks[3].pattern, "^x");
    cr_assert_not(c->checks[5].threshold_is_percent);
    cr_assert_float_eq(c->checks[5].threshold, 500, 1e-9);
    cr_assert_eq(c->checks[5].field_index, -1);
    cr_assert_null(c->checks[5].column);
    cr_assert_eq(c->checks[6].max_age_ms, 600000, "freshness defaults to sla.freshness");
    cr_assert_eq(c->checks[0].max_age_ms, -1);
    result_free(&r);
}

Test(contract, rejects_check_without_rule)
{
    result_t r = parse_check("{column: s}");
    expect_err(&r, 23, 9, "spec.quality.checks[0] is missing the required key 'rule'");
    result_free(&r);
}

Test(contract, rejects_unknown_rule_with_suggestion)
{
    result_t r = parse_check("{rule: notnull, column: s}");
    expect_err(&r, 23, 16, "check rule 'notnull' is not one of not_null, in_list, range, regex, "
                           "unique, row_count_delta, freshness (did you mean 'not_null'?)");
    result_free(&r);
}

Test(contract, rejects_check_on_unknown_column)
{
    result_t r = parse_check("{rule: not_null, column: sx}");
    expect_err(&r, 23, 34, "check column 'sx' is not a field of the schema");
    result_free(&r);
}

Test(contract, rejects_check_without_column)
{
    result_t r = parse_check("{rule: unique}");
    expect_err(&r, 23, 9, "spec.quality.checks[0] (rule unique) is missing the required key 'column'");
    result_free(&r);
}

Test(contract, rejects_key_of_another_rule)
{
    result_t r = parse_check("{rule: not_null, column: s, values: [a]}");
    expect_err(&r, 23, 37, "'values' does not apply to rule not_null (its keys: rule, column, mostly, warn, fail, name, description)");
    result_free(&r);
}

Test(contract, rejects_unknown_check_key)
{
    result_t r = parse_check("{rule: regex, column: s, patern: x}");
    expect_err(&r, 23, 34, "unknown key 'patern' in a quality check");
    expect_err(&r, 23, 34, "(did you mean 'pattern'?)");
    result_free(&r);
}

Test(contract, rejects_in_list_value_of_wrong_type)
{
    result_t r = parse_check("{rule: in_list, column: n, values: [1, two]}");
    expect_err(&r, 23, 48, "in_list value: expected an integer, got 'two'");
    result_free(&r);
}

Test(contract, rejects_quoted_int_in_list)
{
    result_t r = parse_check("{rule: in_list, column: n, values: [\"1\"]}");
    expect_err(&r, 23, 45, "in_list value: expected an integer, got the string \"1\"");
    result_free(&r);
}

Test(contract, rejects_in_list_timestamp_without_offset)
{
    result_t r = parse_check("{rule: in_list, column: ts, values: [2024-01-01T00:00:00Z, 2024-01-01T00:00:00]}");
    expect_err(&r, 23, 68, "in_list value '2024-01-01T00:00:00' is not an RFC 3339 timestamp with an offset");
    result_free(&r);
}

Test(contract, rejects_in_list_timestamp_pushed_past_year_9999)
{
    result_t r = parse_check("{rule: in_list, column: ts, values: [9999-12-31T23:59:59.999999Z, "
                             "9999-12-31T23:59:59-00:01]}");
    expect_err(&r, 23, 75, "in_list value '9999-12-31T23:59:59-00:01' is outside the timestamp "
                           "range 0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z");
    result_free(&r);
}

Test(contract, rejects_in_list_bad_date_and_uuid)
{
    result_t r = parse_base("  quality:\n    checks:\n"
                            "      - {rule: in_list, column: d, values: [2024-02-30]}\n"
                            "      - {rule: in_list, column: id, values: [not-a-uuid]}\n");
    expect_err(&r, 23, 45, "in_list value '2024-02-30' is not a date YYYY-MM-DD");
    expect_err(&r, 24, 46, "in_list value 'not-a-uuid' is not a UUID");
    result_free(&r);
}

Test(contract, rejects_in_list_value_outside_enum)
{
    result_t r = parse_check("{rule: in_list, column: st, values: [a, c]}");
    expect_err(&r, 23, 49, "in_list value 'c' is not one of the values of enum field 'st': a, b");
    result_free(&r);
}

Test(contract, rejects_in_list_without_values)
{
    result_t r = parse_check("{rule: in_list, column: s}");
    expect_err(&r, 23, 9, "in_list check is missing the required key 'values'");
    result_free(&r);
}

Test(contract, rejects_range_on_string)
{
    result_t r = parse_check("{rule: range, column: s, min: 1}");
    expect_err(&r, 23, 31, "rule range needs an int or double column; 's' is string");
    result_free(&r);
}

Test(contract, rejects_range_without_bounds)
{
    result_t r = parse_check("{rule: range, column: x}");
    expect_err(&r, 23, 9, "rule range needs min, max or both");
    result_free(&r);
}

Test(contract, rejects_range_min_over_max)
{
    result_t r = parse_check("{rule: range, column: x, min: 2.5, max: 1}");
    expect_err(&r, 23, 49, "range max 1 is less than min 2.5");
    result_free(&r);
}

Test(contract, rejects_regex_on_int)
{
    result_t r = parse_check("{rule: regex, column: n, pattern: x}");
    expect_err(&r, 23, 31, "rule regex needs a string column; 'n' is int");
    result_free(&r);
}

Test(contract, rejects_regex_that_does_not_compile)
{
    result_t r = parse_check("{rule: regex, column: s, pattern: 'a{2,1}'}");
    expect_err(&r, 23, 43, "regex pattern 'a{2,1}' is not a valid POSIX extended regular expression");
    result_free(&r);
}

Test(contract, rejects_freshness_without_any_max_age)
{
    result_t r = parse_check("{rule: freshness}");
    expect_err(&r, 23, 9, "rule freshness needs max_age, or spec.sla.freshness as its default");
    result_free(&r);
}

Test(contract, reads_freshness_max_age)
{
    result_t r = parse_check("{rule: freshness, column: d, max_age: 2d}");
    expect_ok(&r);
    cr_assert_eq(r.cs[0]->checks[0].max_age_ms, 2LL * 86400000);
    cr_assert_eq(r.cs[0]->checks[0].field_index, 5);
    result_free(&r);
}

Test(contract, rejects_freshness_on_string_column)
{
    result_t r = parse_check("{rule: freshness, column: s, max_age: 1h}");
    expect_err(&r, 23, 35, "rule freshness needs a timestamp or date column; 's' is string");
    result_free(&r);
}

Test(contract, rejects_bad_threshold)
{
    const char *bad[] = {"0%", "-5%", "0", "lots", "\"%\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char check[96];
        snprintf(check, sizeof check, "{rule: row_count_delta, threshold: %s}", bad[i]);
        result_t r = parse_check(check);
        expect_err(&r, 23, 44, "is neither a percentage greater than zero");
        result_free(&r);
    }
}

Test(contract, reads_fractional_percent_threshold)
{
    result_t r = parse_check("{rule: row_count_delta, threshold: 12.5%}");
    expect_ok(&r);
    cr_assert(r.cs[0]->checks[0].threshold_is_percent);
    cr_assert_float_eq(r.cs[0]->checks[0].threshold, 12.5, 1e-12);
    result_free(&r);
}
