/* test_contract.c: the contract parser (suite "contract"): the examples,
 * the canonical form and hash, the top level and metadata, durations.
 * Schema, rules and YAML-level tests are in test_contract_*.c. */
#include "contract_test.h"

/* ---- the examples ---- */

Test(contract, parses_orders_example)
{
    result_t r = parse_file(EX "orders.yaml");
    expect_ok(&r);
    cr_assert_eq(r.n, 1);
    const dm_contract_t *c = r.cs[0];
    cr_assert_str_eq(c->name, "orders");
    cr_assert_str_eq(c->domain, "commerce");
    cr_assert_eq(c->version_major, 1);
    cr_assert_eq(c->nfields, 5);
    cr_assert_eq(c->npk, 1);
    cr_assert_str_eq(c->fields[c->pk[0]].name, "orderId");
    cr_assert_eq(c->fields[2].type, DM_FT_DOUBLE);
    cr_assert(c->fields[2].has_exclusive_minimum);
    cr_assert_eq(c->fields[3].nvalues, 4);
    cr_assert_eq(c->freshness_ms, 5 * 60 * 1000);
    cr_assert_float_eq(c->availability, 99.9, 1e-9);
    cr_assert_float_eq(c->latency_percentile, 99, 1e-9);
    cr_assert_eq(c->latency_ms, 1000);
    cr_assert_eq(c->nchecks, 3);
    cr_assert_eq(c->checks[2].rule, DM_CHECK_ROW_COUNT_DELTA);
    cr_assert(c->checks[2].threshold_is_percent);
    cr_assert_float_eq(c->checks[2].threshold, 20, 1e-9);
    cr_assert_eq(c->access, DM_ACCESS_RESTRICTED);
    cr_assert_eq(c->retention_ms, 365LL * 24 * 3600 * 1000);
    cr_assert_eq(c->encryption, DM_ENC_AES256);
    cr_assert_eq(c->protocols, DM_PROTO_GRAPHQL | DM_PROTO_REST);
    cr_assert_eq(c->nupstream, 2);
    cr_assert_str_eq(c->upstream[1].domain, "identity");
    cr_assert_eq(c->npartitions, 1);
    cr_assert_eq(c->partitions[0].granularity, DM_GRAN_DAY);
    result_free(&r);
}

Test(contract, parses_minimal_base)
{
    result_t r = parse_base("");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert_eq(c->nfields, 7);
    cr_assert(c->fields[0].primary_key);
    cr_assert(c->fields[0].required, "a primary key field becomes required");
    cr_assert_not(c->fields[1].required, "required defaults to false");
    cr_assert_eq(c->access, DM_ACCESS_RESTRICTED, "access defaults to restricted");
    cr_assert_eq(c->encryption, DM_ENC_NONE);
    cr_assert_eq(c->freshness_ms, -1);
    cr_assert_eq(c->retention_ms, -1);
    cr_assert_eq(c->fields[1].min_length, -1);
    result_free(&r);
}

Test(contract, list_destroy_frees_all_but_a_kept_entry)
{
    result_t r = parse_base("");
    expect_ok(&r);
    dm_contract_t *kept = r.cs[0];
    r.cs[0] = NULL;
    dm_contract_list_destroy(&r.cs, r.n);
    cr_assert_null(r.cs, "the list pointer is cleared");
    cr_assert_str_eq(kept->name, "orders", "a NULLed entry is left to the caller");
    dm_contract_destroy(&kept);
    dm_contract_list_destroy(&r.cs, r.n); /* NULL-safe */
    result_free(&r);
}

Test(contract, canonical_round_trips_orders)
{
    result_t r = parse_file(EX "orders.yaml");
    expect_ok(&r);
    assert_round_trip(r.cs[0]);
    result_free(&r);
}

Test(contract, canonical_round_trips_avro_as_inline)
{
    result_t r = parse_file(EX "orders-avro.yaml");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert(c->schema_from_avro);
    cr_assert_str_eq(c->schema_location, "orders.avsc");
    char *t = canonical(c);
    cr_assert(strstr(t, "\"type\":\"inline\""), "%s", t);
    cr_assert_null(strstr(t, "orders.avsc"), "%s", t);
    free(t);
    assert_round_trip(c);
    result_free(&r);
}

Test(contract, canonical_sorts_keys_and_types_scalars)
{
    result_t r = parse_base("  x-b: {z: 1, a: \"2\", m: [true, null, 1.5e3, 'no']}\n");
    expect_ok(&r);
    char *t = canonical(r.cs[0]);
    cr_assert(strstr(t, "\"x-b\":{\"a\":\"2\",\"m\":[true,null,1.5e3,\"no\"],\"z\":1}"), "%s", t);
    cr_assert_eq(strncmp(t, "{\"apiVersion\":\"datamesh.io/v1\",\"kind\":", 37), 0, "%s", t);
    free(t);
    assert_round_trip(r.cs[0]);
    result_free(&r);
}

Test(contract, canonical_escapes_strings_yaml_reads_back)
{
    result_t r = parse_base("  x-s: \"tab\\there \\\"q\\\" back\\\\ nel\\N ls\\L del\\x7f c1\\x80 bom\\uFEFF\"\n");
    expect_ok(&r);
    assert_round_trip(r.cs[0]);
    result_free(&r);
}

Test(contract, hash_differs_when_content_differs)
{
    result_t a = parse_base(""), b = parse_patch("  version:", "  version: 1.0.1");
    expect_ok(&a);
    expect_ok(&b);
    uint8_t ha[DM_CONTRACT_HASH_BYTES], hb[DM_CONTRACT_HASH_BYTES];
    dm_contract_hash(a.cs[0], ha);
    dm_contract_hash(b.cs[0], hb);
    cr_assert(memcmp(ha, hb, sizeof ha) != 0);
    cr_assert_lt(dm_contract_version_cmp(a.cs[0], b.cs[0]), 0);
    result_free(&a);
    result_free(&b);
}

Test(contract, hash_ignores_key_order_and_comments)
{
    result_t a = parse_base("");
    result_t b = parse("# a comment\nkind: DataProduct\napiVersion: datamesh.io/v1\n"
                       "spec:\n  schema:\n    fields:\n      - {type: uuid, name: id}\n"
                       "      - {name: n, type: int}\n      - {name: x, type: double}\n"
                       "      - {name: s, type: string}\n      - {name: ts, type: timestamp}\n"
                       "      - {name: d, type: date}\n      - {name: st, type: enum, values: [a, b]}\n"
                       "    primaryKey: id\n"
                       "metadata: {version: 1.0.0, domain: commerce, name: orders,\n"
                       "  owner: {contact: data@company.com, team: commerce}}\n");
    expect_ok(&a);
    expect_ok(&b);
    uint8_t ha[DM_CONTRACT_HASH_BYTES], hb[DM_CONTRACT_HASH_BYTES];
    dm_contract_hash(a.cs[0], ha);
    dm_contract_hash(b.cs[0], hb);
    cr_assert_arr_eq(ha, hb, sizeof ha);
    result_free(&a);
    result_free(&b);
}

/* ---- the top level and metadata ---- */

Test(contract, rejects_missing_api_version)
{
    result_t r = parse_patch("apiVersion:", "");
    expect_err(&r, 2, 1, "the contract is missing the required key 'apiVersion'");
    result_free(&r);
}

Test(contract, rejects_wrong_api_version)
{
    result_t r = parse_patch("apiVersion:", "apiVersion: datamesh.io/v2");
    expect_err(&r, 1, 13, "apiVersion 'datamesh.io/v2' is not supported; expected datamesh.io/v1");
    result_free(&r);
}

Test(contract, rejects_wrong_kind_with_suggestion)
{
    result_t r = parse_patch("kind:", "kind: Dataproduct");
    expect_err(&r, 2, 7, "kind 'Dataproduct' is not one of DataProduct (did you mean 'DataProduct'?)");
    result_free(&r);
}

Test(contract, rejects_unknown_key_with_suggestion)
{
    result_t r = parse_patch("  version:", "  versoin: 1.0.0");
    expect_err(&r, 6, 3, "unknown key 'versoin' in metadata (valid: name, domain, version, owner, "
                         "description, tags; or an x- extension key) (did you mean 'version'?)");
    expect_err(&r, 4, 3, "metadata is missing the required key 'version'");
    result_free(&r);
}

Test(contract, keeps_x_keys_anywhere)
{
    result_t r = parse_patch("  version:", "  version: 1.0.0\n  x-owner-slack: '#commerce'");
    expect_ok(&r);
    char *t = canonical(r.cs[0]);
    cr_assert(strstr(t, "\"x-owner-slack\":\"#commerce\""), "%s", t);
    free(t);
    result_free(&r);
}

Test(contract, rejects_duplicate_key)
{
    result_t r = parse_patch("  domain:", "  domain: commerce\n  domain: sales");
    expect_err(&r, 6, 3, "duplicate key 'domain' (first defined at line 5)");
    result_free(&r);
}

Test(contract, rejects_bad_name)
{
    result_t r = parse_patch("  name:", "  name: Orders");
    expect_err(&r, 4, 9, "metadata.name 'Orders' is not a valid name: it must match ^[a-z][a-z0-9_-]{0,62}$");
    result_free(&r);
}

Test(contract, rejects_too_long_domain)
{
    result_t r = parse_patch("  domain:", "  domain: a234567890123456789012345678901234567890123456789012345678901234");
    expect_err(&r, 5, 11, "metadata.domain 'a2345678901234567890");
    result_free(&r);
}

Test(contract, rejects_two_part_version)
{
    result_t r = parse_patch("  version:", "  version: 1.0");
    expect_err(&r, 6, 12, "metadata.version '1.0' is not a semantic version MAJOR.MINOR.PATCH");
    result_free(&r);
}

Test(contract, rejects_version_with_leading_zero)
{
    result_t r = parse_patch("  version:", "  version: 1.02.0");
    expect_err(&r, 6, 12, "is not a semantic version");
    result_free(&r);
}

Test(contract, rejects_version_overflowing_uint64)
{
    result_t r = parse_patch("  version:", "  version: 1.0.18446744073709551616");
    expect_err(&r, 6, 12, "is not a semantic version");
    result_free(&r);
}

Test(contract, accepts_max_uint64_version_parts)
{
    result_t r = parse_patch("  version:", "  version: 18446744073709551615.0.2");
    expect_ok(&r);
    cr_assert_eq(r.cs[0]->version_major, UINT64_MAX);
    cr_assert_eq(r.cs[0]->version_patch, 2);
    result_free(&r);
}

Test(contract, rejects_bad_email)
{
    const char *bad[] = {"data", "@company.com", "a@b@c.com", "data@company", "da ta@company.com",
                         "data@.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "    contact: '%s'", bad[i]);
        result_t r = parse_patch("    contact:", line);
        expect_err(&r, 9, 14, "is not an e-mail address");
        result_free(&r);
    }
}

Test(contract, rejects_missing_owner_team)
{
    result_t r = parse_patch("    team:", "");
    expect_err(&r, 9, 5, "metadata.owner is missing the required key 'team'");
    result_free(&r);
}

Test(contract, reads_description_and_tags)
{
    result_t r = parse_patch("  version:", "  version: 1.0.0\n  description: Orders\n  tags: [a, b]");
    expect_ok(&r);
    cr_assert_str_eq(r.cs[0]->description, "Orders");
    cr_assert_eq(r.cs[0]->ntags, 2);
    cr_assert_str_eq(r.cs[0]->tags[1], "b");
    result_free(&r);
}

Test(contract, rejects_duplicate_tag)
{
    result_t r = parse_patch("  version:", "  version: 1.0.0\n  tags: [a, a]");
    expect_err(&r, 7, 13, "duplicate tag 'a'");
    result_free(&r);
}

Test(contract, rejects_missing_schema)
{
    result_t r = parse("apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: o\n"
                       "  domain: c\n  version: 1.0.0\n  owner: {team: t, contact: a@b.co}\n"
                       "spec:\n  sla: {freshness: 5m}\n");
    expect_err(&r, 9, 3, "spec is missing the required key 'schema'");
    result_free(&r);
}

Test(contract, reports_all_problems_sorted)
{
    result_t r = parse_base("  policies: {access: secret}\n  sla: {availability: 0}\n");
    cr_assert_eq(r.diags.count, 2, "%s", r.text.data);
    for (size_t i = 1; i < r.diags.count; i++)
        cr_assert_leq(r.diags.items[i - 1].line, r.diags.items[i].line);
    result_free(&r);
}

Test(contract, diagnostics_format_is_file_line_col)
{
    result_t r = parse_patch("kind:", "kind: Product");
    cr_assert_eq(r.diags.count, 1);
    cr_assert_eq(strncmp(r.text.data, "t.yaml:2:7: error: kind 'Product' is not one of DataProduct", 58), 0,
                 "%s", r.text.data);
    cr_assert_eq(r.text.data[r.text.len - 1], '\n');
    result_free(&r);
}

/* ---- durations and names ---- */

static int64_t dur(const char *s)
{
    int64_t ms = -42;
    if (!dm_contract_duration_parse(s, strlen(s), &ms))
        return -1;
    return ms;
}

Test(contract, parses_simple_durations)
{
    cr_assert_eq(dur("250ms"), 250);
    cr_assert_eq(dur("30s"), 30000);
    cr_assert_eq(dur("5m"), 300000);
    cr_assert_eq(dur("1h"), 3600000);
    cr_assert_eq(dur("7d"), 7LL * 86400000);
    cr_assert_eq(dur("2w"), 14LL * 86400000);
    cr_assert_eq(dur("1y"), 365LL * 86400000);
    cr_assert_eq(dur("0s"), 0, "zero parses; the contract rejects it where a duration is given");
}

Test(contract, parses_iso_durations)
{
    cr_assert_eq(dur("PT5M"), 300000);
    cr_assert_eq(dur("P1Y"), 365LL * 86400000);
    cr_assert_eq(dur("P1M"), 30LL * 86400000);
    cr_assert_eq(dur("P1DT2H"), 26LL * 3600000);
    cr_assert_eq(dur("P2W"), 14LL * 86400000);
    cr_assert_eq(dur("PT1.5S"), 1500);
    cr_assert_eq(dur("P1Y2M3DT4H5M6S"), (365LL + 60 + 3) * 86400000 + 4 * 3600000LL + 5 * 60000 + 6000);
}

Test(contract, rejects_malformed_durations)
{
    const char *bad[] = {"", "5", "m", "5 m", "5min", "1.5h", "-5m", "P", "PT", "P1H", "PT1D",
                         "P1M1Y", "PT1S1M", "PT0.0001S", "5M", "p1y", "P1Y ", "1h30m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(dur(bad[i]), -1, "'%s' parsed", bad[i]);
}

Test(contract, rejects_overflowing_durations)
{
    cr_assert_eq(dur("9223372036854775807ms"), INT64_MAX);
    cr_assert_eq(dur("9223372036854775808ms"), -1);
    cr_assert_eq(dur("300000000y"), -1);
    cr_assert_eq(dur("P300000000Y"), -1);
    cr_assert_eq(dur("P290000000YT100000000000000H"), -1);
}

Test(contract, names_enums)
{
    cr_assert_str_eq(dm_contract_ftype_name(DM_FT_TIMESTAMP), "timestamp");
    cr_assert_str_eq(dm_contract_ftype_name(DM_FT_ENUM), "enum");
    cr_assert_str_eq(dm_contract_rule_name(DM_CHECK_ROW_COUNT_DELTA), "row_count_delta");
    cr_assert_str_eq(dm_contract_access_name(DM_ACCESS_PRIVATE), "private");
    cr_assert_str_eq(dm_contract_ftype_name(DM_FT__COUNT), "?");
}

Test(contract, diags_cap_keeps_memory_bounded)
{
    dm_diags_t d = DM_DIAGS_INIT;
    for (int i = 0; i < DM_DIAGS_MAX * 3; i++)
        dm_diags_add(&d, "f", 1, 1, "problem %d", i);
    cr_assert_eq(d.count, DM_DIAGS_MAX);
    cr_assert(strstr(d.items[DM_DIAGS_MAX - 1].message, "too many problems"));
    dm_diags_clear(&d);
    cr_assert_eq(d.count, 0);
    cr_assert_null(d.items);
}

Test(contract, skips_empty_trailing_document)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, "");
    dm_buf_puts(&b, "---\n");
    result_t r = parse(b.data);
    expect_ok(&r);
    cr_assert_eq(r.n, 1);
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, rejects_file_of_empty_documents)
{
    result_t r = parse("---\n---\n");
    expect_err(&r, 1, 1, "no contract: every document in the file is empty");
    result_free(&r);
}

Test(contract, canonical_round_trips_long_values_and_keys)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, "  x-long: \"");
    for (int i = 0; i < 20000; i++)
        dm_buf_puts(&b, i % 7 ? "ab" : "\\u2028\\t");
    dm_buf_puts(&b, "\"\n  x-keys: {\"");
    for (int i = 0; i < 128; i++)
        dm_buf_puts(&b, "\\x01");
    dm_buf_puts(&b, "\": 1}\n");
    result_t r = parse_base(b.data);
    expect_ok(&r);
    assert_round_trip(r.cs[0]);
    dm_buf_free(&b);
    result_free(&r);
}

