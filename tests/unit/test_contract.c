/* test_contract.c: the contract parser (suite "contract").
 *
 * Most tests patch one line of a valid base contract and check that the
 * parse fails with a diagnostic at the right place naming the problem, or
 * that the model holds the right value. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "contract.h"

#define EX DM_SOURCE_DIR "/docs/examples/"
#define DATA DM_SOURCE_DIR "/tests/data/contracts/"

/* A minimal valid contract; %s is replaced by extra spec text. */
static const char *const s_base = "apiVersion: datamesh.io/v1\n"       /* 1 */
                                  "kind: DataProduct\n"                /* 2 */
                                  "metadata:\n"                        /* 3 */
                                  "  name: orders\n"                   /* 4 */
                                  "  domain: commerce\n"               /* 5 */
                                  "  version: 1.0.0\n"                 /* 6 */
                                  "  owner:\n"                         /* 7 */
                                  "    team: commerce\n"               /* 8 */
                                  "    contact: data@company.com\n"    /* 9 */
                                  "spec:\n"                            /* 10 */
                                  "  schema:\n"                        /* 11 */
                                  "    primaryKey: id\n"               /* 12 */
                                  "    fields:\n"                      /* 13 */
                                  "      - {name: id, type: uuid}\n"   /* 14 */
                                  "      - {name: n, type: int}\n"     /* 15 */
                                  "      - {name: x, type: double}\n"  /* 16 */
                                  "      - {name: s, type: string}\n"  /* 17 */
                                  "      - {name: ts, type: timestamp}\n" /* 18 */
                                  "      - {name: d, type: date}\n"    /* 19 */
                                  "      - {name: st, type: enum, values: [a, b]}\n" /* 20 */
                                  "%s";

typedef struct {
    dm_contract_t **cs;
    size_t n;
    dm_diags_t diags;
    dm_buf_t text; /* formatted diagnostics */
    dm_err rc;
} result_t;

static void result_free(result_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        dm_contract_destroy(&r->cs[i]);
    free(r->cs);
    dm_diags_clear(&r->diags);
    dm_buf_free(&r->text);
}

static result_t parse_text(const char *text, size_t len, const char *basedir)
{
    result_t r = {NULL, 0, DM_DIAGS_INIT, DM_BUF_INIT, DM_OK};
    r.rc = dm_contract_parse("t.yaml", text, len, basedir, &r.cs, &r.n, &r.diags);
    dm_diags_format(&r.diags, &r.text);
    if (!r.text.data)
        dm_buf_puts(&r.text, "");
    return r;
}

static result_t parse(const char *text) { return parse_text(text, strlen(text), NULL); }

/* Parses the base contract with extra spec text appended. */
static result_t parse_base(const char *extra)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, extra);
    result_t r = parse(b.data);
    dm_buf_free(&b);
    return r;
}

/* Parses the base contract with the line starting with `from` replaced. */
static result_t parse_patch(const char *from, const char *to)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, "");
    char *p = strstr(b.data, from);
    cr_assert(p, "base has no '%s'", from);
    char *eol = strchr(p, '\n');
    dm_buf_t o = DM_BUF_INIT;
    dm_buf_append(&o, b.data, (size_t)(p - b.data));
    dm_buf_puts(&o, to);
    dm_buf_puts(&o, eol);
    result_t r = parse(o.data);
    dm_buf_free(&b);
    dm_buf_free(&o);
    return r;
}

static void expect_ok(const result_t *r)
{
    cr_assert_eq(r->rc, DM_OK, "expected success, got:\n%s", r->text.data);
    cr_assert_eq(r->diags.count, 0);
}

/* Asserts failure with a diagnostic containing `line:col: error:` and msg. */
static void expect_err(const result_t *r, unsigned line, unsigned col, const char *msg)
{
    cr_assert_neq(r->rc, DM_OK, "expected failure");
    cr_assert_null(r->cs);
    char pos[64];
    snprintf(pos, sizeof pos, "t.yaml:%u:%u: error: ", line, col);
    for (size_t i = 0; i < r->diags.count; i++) {
        const dm_diag_t *d = &r->diags.items[i];
        if (d->line == line && d->col == col && strstr(d->message, msg))
            return;
    }
    cr_assert_fail("no diagnostic %s...%s in:\n%s", pos, msg, r->text.data);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    dm_buf_t b = DM_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        dm_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return dm_buf_steal(&b);
}

static result_t parse_file(const char *path)
{
    result_t r = {NULL, 0, DM_DIAGS_INIT, DM_BUF_INIT, DM_OK};
    r.rc = dm_contract_parse_file(path, &r.cs, &r.n, &r.diags);
    dm_diags_format(&r.diags, &r.text);
    if (!r.text.data)
        dm_buf_puts(&r.text, "");
    return r;
}

static char *canonical(const dm_contract_t *c)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_contract_canonical(c, &b);
    return dm_buf_steal(&b);
}

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

/* Canonical text parses back (basedir NULL) to the same canonical text. */
static void assert_round_trip(const dm_contract_t *c)
{
    char *t1 = canonical(c);
    result_t r = parse_text(t1, strlen(t1), NULL);
    expect_ok(&r);
    cr_assert_eq(r.n, 1);
    char *t2 = canonical(r.cs[0]);
    cr_assert_str_eq(t1, t2);
    const dm_contract_t *d = r.cs[0];
    cr_assert_str_eq(c->name, d->name);
    cr_assert_eq(c->nfields, d->nfields);
    for (size_t i = 0; i < c->nfields; i++) {
        cr_assert_str_eq(c->fields[i].name, d->fields[i].name);
        cr_assert_eq(c->fields[i].type, d->fields[i].type);
        cr_assert_eq(c->fields[i].required, d->fields[i].required);
        cr_assert_eq(c->fields[i].nvalues, d->fields[i].nvalues);
        cr_assert_eq(c->fields[i].has_exclusive_minimum, d->fields[i].has_exclusive_minimum);
    }
    cr_assert_eq(c->npk, d->npk);
    cr_assert_eq(c->nchecks, d->nchecks);
    cr_assert_eq(c->freshness_ms, d->freshness_ms);
    cr_assert_eq(c->protocols, d->protocols);
    cr_assert_eq(c->nupstream, d->nupstream);
    uint8_t h1[DM_CONTRACT_HASH_BYTES], h2[DM_CONTRACT_HASH_BYTES];
    dm_contract_hash(c, h1);
    dm_contract_hash(d, h2);
    cr_assert_arr_eq(h1, h2, sizeof h1);
    free(t1);
    free(t2);
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

/* ---- hostile and malformed YAML ---- */

Test(contract, rejects_empty_file)
{
    result_t r = parse_text("", 0, NULL);
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "t.yaml:1:1: error: no contract: the file is empty"), "%s",
              r.text.data);
    result_free(&r);
}

Test(contract, rejects_comment_only_file)
{
    result_t r = parse("# nothing here\n\n   # still nothing\n");
    expect_err(&r, 1, 1, "no contract: the file is empty or holds only comments");
    result_free(&r);
}

Test(contract, rejects_tab_in_indentation)
{
    result_t r = parse_patch("  domain:", "\tdomain: commerce");
    expect_err(&r, 5, 1, "TAB character in indentation");
    result_free(&r);
}

Test(contract, accepts_tab_inside_quoted_scalar)
{
    result_t r = parse_patch("  version:", "  version: 1.0.0\n  description: \"a\n\tb\"");
    expect_ok(&r);
    cr_assert_str_eq(r.cs[0]->description, "a b");
    result_free(&r);
}

Test(contract, rejects_invalid_utf8_with_position)
{
    result_t r = parse_patch("    team:", "    team: caf\xc3\x28");
    expect_err(&r, 8, 14, "invalid UTF-8 (byte 0xc3)");
    result_free(&r);
}

Test(contract, rejects_nul_byte)
{
    const char text[] = "apiVersion: datamesh.io/v1\nkind: Data\0Product\n";
    result_t r = parse_text(text, sizeof text - 1, NULL);
    expect_err(&r, 2, 11, "NUL byte");
    result_free(&r);
}

Test(contract, rejects_file_over_limit)
{
    size_t len = DM_CONTRACT_MAX_FILE + 1;
    char *big = malloc(len);
    memset(big, '#', len);
    result_t r = parse_text(big, len, NULL);
    cr_assert_eq(r.rc, DM_ERR_TOOBIG);
    cr_assert(strstr(r.text.data, "1048577 bytes; at most 1048576"), "%s", r.text.data);
    free(big);
    result_free(&r);
}

Test(contract, rejects_billion_laughs_fast)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < 10; i++) {
        dm_buf_printf(&b, "a%d: &a%d [", i, i);
        for (int j = 0; j < 10; j++)
            dm_buf_printf(&b, "%s*a%d", j ? ", " : "", i - 1);
        dm_buf_puts(&b, "]\n");
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    result_t r = parse(b.data);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "alias expansion exceeds the limit"), "%s", r.text.data);
    cr_assert_lt(ms, 200.0, "took %.1f ms", ms);
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, accepts_small_aliases)
{
    result_t r = parse_base("  x-common: &c {a: 1}\n  x-use: *c\n");
    expect_ok(&r);
    char *t = canonical(r.cs[0]);
    cr_assert(strstr(t, "\"x-use\":{\"a\":1}"), "%s", t);
    free(t);
    result_free(&r);
}

Test(contract, rejects_undefined_alias)
{
    result_t r = parse_base("  x-use: *nothing\n");
    expect_err(&r, 21, 10, "alias '*nothing' refers to no anchor");
    result_free(&r);
}

Test(contract, rejects_nesting_deeper_than_limit)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, "x-deep: ");
    for (int i = 0; i < 100; i++)
        dm_buf_putc(&b, '[');
    for (int i = 0; i < 100; i++)
        dm_buf_putc(&b, ']');
    dm_buf_putc(&b, '\n');
    result_t r = parse(b.data);
    expect_err(&r, 1, 9 + DM_CONTRACT_MAX_DEPTH - 1, "nesting deeper than 64 levels");
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, accepts_nesting_at_limit)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, "  x-deep: ");
    for (int i = 0; i < DM_CONTRACT_MAX_DEPTH - 2; i++)
        dm_buf_putc(&b, '[');
    for (int i = 0; i < DM_CONTRACT_MAX_DEPTH - 2; i++)
        dm_buf_putc(&b, ']');
    dm_buf_putc(&b, '\n');
    result_t r = parse(b.data);
    expect_ok(&r);
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, reports_yaml_syntax_error_position)
{
    result_t r = parse("apiVersion: datamesh.io/v1\nkind: [DataProduct\n");
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "t.yaml:3:1: error: YAML syntax error:"), "%s", r.text.data);
    result_free(&r);
}

Test(contract, rejects_yaml_tags)
{
    result_t r = parse_patch("  version:", "  version: !!str 1.0.0");
    expect_err(&r, 6, 12, "YAML tag 'tag:yaml.org,2002:str' is not supported");
    result_free(&r);
}

Test(contract, rejects_non_mapping_document)
{
    result_t r = parse("- a\n- b\n");
    expect_err(&r, 1, 1, "the contract must be a mapping, got a sequence");
    result_free(&r);
}

Test(contract, parses_several_documents)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, "");
    dm_buf_puts(&b, "---\n");
    dm_buf_printf(&b, s_base, "");
    char *p = strstr(strstr(b.data, "---"), "name: orders");
    memcpy(p, "name: order2", 12);
    result_t r = parse(b.data);
    expect_ok(&r);
    cr_assert_eq(r.n, 2);
    cr_assert_str_eq(r.cs[1]->name, "order2");
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, reports_problems_of_every_document)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, "  sla: {availability: 0}\n");
    dm_buf_puts(&b, "---\n");
    dm_buf_printf(&b, s_base, "  sla: {availability: 101}\n");
    result_t r = parse(b.data);
    expect_err(&r, 21, 23, "availability is a percentage");
    expect_err(&r, 43, 23, "availability is a percentage");
    expect_err(&r, 23, 1, "product commerce/orders is defined twice in this file");
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, refuses_remote_avro_location_of_seed)
{
    result_t r = parse_file(DATA "seed.yaml");
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "seed.yaml:15:15: error: spec.schema.location "
                                  "'s3://schemas/commerce/orders/v1.avsc' is remote"),
              "%s", r.text.data);
    cr_assert_eq(r.diags.count, 1, "%s", r.text.data);
    result_free(&r);
}

Test(contract, parse_file_reports_missing_file)
{
    result_t r = parse_file(DATA "does-not-exist.yaml");
    cr_assert_eq(r.rc, DM_ERR_IO);
    cr_assert(strstr(r.text.data, "does-not-exist.yaml: error: cannot read the file"), "%s",
              r.text.data);
    result_free(&r);
}

Test(contract, parse_file_matches_parse_of_its_text)
{
    size_t len;
    char *text = read_all(EX "orders.yaml", &len);
    result_t a = parse_text(text, len, NULL), b = parse_file(EX "orders.yaml");
    expect_ok(&a);
    expect_ok(&b);
    char *ta = canonical(a.cs[0]), *tb = canonical(b.cs[0]);
    cr_assert_str_eq(ta, tb);
    free(ta);
    free(tb);
    free(text);
    result_free(&a);
    result_free(&b);
}

/* ---- schema and fields ---- */

Test(contract, rejects_unknown_field_type_with_suggestion)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: integer}");
    expect_err(&r, 15, 25, "field 'n': type 'integer' is not one of string, int, double, boolean, "
                           "timestamp, date, uuid, enum (did you mean 'int'?)");
    result_free(&r);
}

Test(contract, suggests_close_field_type)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: strng}");
    expect_err(&r, 15, 25, "(did you mean 'string'?)");
    result_free(&r);
}

Test(contract, rejects_missing_field_type)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n}");
    expect_err(&r, 15, 9, "field 'n' is missing the required key 'type'");
    result_free(&r);
}

Test(contract, rejects_duplicate_field)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: id, type: int}");
    expect_err(&r, 15, 16, "duplicate field name 'id' (first declared at line 14)");
    result_free(&r);
}

Test(contract, field_names_are_case_sensitive)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: ID, type: int}");
    expect_ok(&r);
    result_free(&r);
}

Test(contract, rejects_bad_field_name)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: 1n, type: int}");
    expect_err(&r, 15, 16, "field name '1n' must match ^[A-Za-z_][A-Za-z0-9_]{0,127}$");
    result_free(&r);
}

Test(contract, rejects_empty_field_list)
{
    result_t r = parse("apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata: {name: o, domain: c, "
                       "version: 1.0.0, owner: {team: t, contact: a@b.co}}\n"
                       "spec:\n  schema:\n    fields: []\n");
    expect_err(&r, 6, 13, "spec.schema.fields must list at least one field");
    result_free(&r);
}

Test(contract, rejects_missing_fields)
{
    result_t r = parse("apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata: {name: o, domain: c, "
                       "version: 1.0.0, owner: {team: t, contact: a@b.co}}\n"
                       "spec:\n  schema:\n    type: inline\n");
    expect_err(&r, 6, 5, "spec.schema is missing the required key 'fields'");
    result_free(&r);
}

Test(contract, rejects_unknown_schema_type)
{
    result_t r = parse_patch("    primaryKey:", "    type: json\n    primaryKey: id");
    expect_err(&r, 12, 11, "spec.schema.type 'json' is not one of inline, avro");
    result_free(&r);
}

Test(contract, reads_required_and_description)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, required: true, description: count}");
    expect_ok(&r);
    cr_assert(r.cs[0]->fields[1].required);
    cr_assert_str_eq(r.cs[0]->fields[1].description, "count");
    result_free(&r);
}

Test(contract, rejects_quoted_boolean)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, required: \"true\"}");
    expect_err(&r, 15, 40, "required: expected true or false, got the string \"true\"");
    result_free(&r);
}

Test(contract, rejects_yes_as_boolean)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, required: yes}");
    expect_err(&r, 15, 40, "required: expected true or false, got 'yes'");
    result_free(&r);
}

Test(contract, rejects_enum_without_values)
{
    result_t r = parse_patch("      - {name: st,", "      - {name: st, type: enum}");
    expect_err(&r, 20, 9, "field 'st' is an enum and needs 'values'");
    result_free(&r);
}

Test(contract, rejects_empty_enum_values)
{
    result_t r = parse_patch("      - {name: st,", "      - {name: st, type: enum, values: []}");
    expect_err(&r, 20, 40, "field 'st': values must list at least one value");
    result_free(&r);
}

Test(contract, rejects_duplicate_enum_value)
{
    result_t r = parse_patch("      - {name: st,", "      - {name: st, type: enum, values: [a, a]}");
    expect_err(&r, 20, 44, "field 'st': values: duplicate value 'a'");
    result_free(&r);
}

Test(contract, rejects_values_on_string)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, values: [a]}");
    expect_err(&r, 17, 41, "field 's': values applies only to enum fields, not string");
    result_free(&r);
}

Test(contract, keeps_int_bounds_exact)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, minimum: -9223372036854775808, maximum: 9223372036854775807}");
    expect_ok(&r);
    const dm_field_t *f = &r.cs[0]->fields[1];
    cr_assert(f->has_minimum && f->minimum.is_int);
    cr_assert_eq(f->minimum.i, INT64_MIN);
    cr_assert_eq(f->maximum.i, INT64_MAX);
    result_free(&r);
}

Test(contract, rejects_fractional_bound_on_int)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, minimum: 1.5}");
    expect_err(&r, 15, 39, "field 'n': minimum: expected an integer");
    result_free(&r);
}

Test(contract, reads_double_bounds)
{
    result_t r = parse_patch("      - {name: x,", "      - {name: x, type: double, exclusiveMinimum: 0, maximum: 1e3}");
    expect_ok(&r);
    const dm_field_t *f = &r.cs[0]->fields[2];
    cr_assert(f->has_exclusive_minimum);
    cr_assert_float_eq(f->exclusive_minimum.d, 0, 1e-12);
    cr_assert_float_eq(f->maximum.d, 1000, 1e-12);
    cr_assert_not(f->maximum.is_int);
    result_free(&r);
}

Test(contract, rejects_quoted_number)
{
    result_t r = parse_patch("      - {name: x,", "      - {name: x, type: double, minimum: \"99.9\"}");
    expect_err(&r, 15 + 1, 42, "field 'x': minimum: expected a number, got the string \"99.9\"");
    result_free(&r);
}

Test(contract, rejects_minimum_over_maximum)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, minimum: 5, maximum: 1}");
    expect_err(&r, 15, 51, "field 'n': maximum 1 is less than minimum 5");
    result_free(&r);
}

Test(contract, rejects_exclusive_bounds_that_meet)
{
    result_t r = parse_patch("      - {name: x,", "      - {name: x, type: double, exclusiveMinimum: 1, exclusiveMaximum: 1}");
    expect_err(&r, 16, 72, "exclusiveMaximum 1 must be greater than exclusiveMinimum 1");
    result_free(&r);
}

Test(contract, rejects_minimum_at_exclusive_maximum)
{
    result_t r = parse_patch("      - {name: x,", "      - {name: x, type: double, minimum: 2, exclusiveMaximum: 2}");
    expect_err(&r, 16, 63, "exclusiveMaximum 2 must be greater than minimum 2");
    result_free(&r);
}

Test(contract, rejects_minimum_on_string)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, minimum: 1}");
    expect_err(&r, 17, 42, "field 's': minimum applies only to int and double fields, not string");
    result_free(&r);
}

Test(contract, reads_string_constraints)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, minLength: 1, maxLength: 8, pattern: '^[A-Z]+$'}");
    expect_ok(&r);
    const dm_field_t *f = &r.cs[0]->fields[3];
    cr_assert_eq(f->min_length, 1);
    cr_assert_eq(f->max_length, 8);
    cr_assert_str_eq(f->pattern, "^[A-Z]+$");
    result_free(&r);
}

Test(contract, rejects_negative_min_length)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, minLength: -1}");
    expect_err(&r, 17, 44, "field 's': minLength must be zero or more");
    result_free(&r);
}

Test(contract, rejects_min_length_over_max_length)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, minLength: 5, maxLength: 2}");
    expect_err(&r, 17, 58, "field 's': maxLength 2 is less than minLength 5");
    result_free(&r);
}

Test(contract, rejects_length_on_int)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, maxLength: 2}");
    expect_err(&r, 15, 41, "field 'n': maxLength applies only to string fields, not int");
    result_free(&r);
}

Test(contract, rejects_pattern_that_does_not_compile)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, pattern: 'a(b'}");
    expect_err(&r, 17, 42, "field 's': pattern 'a(b' is not a valid POSIX extended regular expression");
    result_free(&r);
}

Test(contract, rejects_pattern_on_enum)
{
    result_t r = parse_patch("      - {name: st,", "      - {name: st, type: enum, values: [a], pattern: a}");
    expect_err(&r, 20, 54, "field 'st': pattern applies only to string fields, not enum");
    result_free(&r);
}

Test(contract, reads_composite_primary_key)
{
    result_t r = parse_patch("    primaryKey:", "    primaryKey: [n, d]");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert_eq(c->npk, 2);
    cr_assert_eq(c->pk[0], 1);
    cr_assert_eq(c->pk[1], 5);
    cr_assert(c->fields[5].required);
    cr_assert_not(c->fields[0].primary_key);
    result_free(&r);
}

Test(contract, rejects_primary_key_of_unknown_field)
{
    result_t r = parse_patch("    primaryKey:", "    primaryKey: idd");
    expect_err(&r, 12, 17, "primaryKey field 'idd' is not a field of the schema (fields: id, n, x, s, "
                           "ts, d, st) (did you mean 'id'?)");
    result_free(&r);
}

Test(contract, rejects_repeated_primary_key_field)
{
    result_t r = parse_patch("    primaryKey:", "    primaryKey: [id, id]");
    expect_err(&r, 12, 22, "primaryKey names field 'id' twice");
    result_free(&r);
}

Test(contract, rejects_double_primary_key)
{
    result_t r = parse_patch("    primaryKey:", "    primaryKey: x");
    expect_err(&r, 12, 17, "primaryKey field 'x' is double");
    result_free(&r);
}

Test(contract, rejects_primary_key_declared_not_required)
{
    result_t r = parse_patch("      - {name: id,", "      - {name: id, type: uuid, required: false}");
    expect_err(&r, 14, 42, "field 'id' is in primaryKey, so it is required");
    result_free(&r);
}

Test(contract, rejects_location_on_inline_schema)
{
    result_t r = parse_patch("    primaryKey:", "    location: x.avsc\n    primaryKey: id");
    expect_err(&r, 12, 15, "spec.schema.location applies only to type: avro");
    result_free(&r);
}

Test(contract, refuses_avro_without_basedir)
{
    result_t r = parse_patch("    primaryKey:", "    type: avro\n    location: x.avsc\n    primaryKey: id");
    expect_err(&r, 13, 15, "avro schemas are resolved by the client; send the canonical contract");
    expect_err(&r, 16, 7, "spec.schema.fields does not apply to an avro schema");
    result_free(&r);
}

/* ---- avro ---- */

/* Writes contract.yaml (base with an avro schema) and schema.avsc into a
 * fresh temp dir and parses the contract file. */
static result_t parse_avro(const char *avsc, const char *schema_extra)
{
    char dir[] = "/tmp/dm_contract_XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/schema.avsc", dir);
    FILE *f = fopen(path, "w");
    fputs(avsc, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/contract.yaml", dir);
    f = fopen(path, "w");
    fprintf(f, "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: orders\n"
               "  domain: commerce\n  version: 1.0.0\n  owner: {team: t, contact: a@b.co}\n"
               "spec:\n  schema:\n    type: avro\n    location: schema.avsc\n%s",
            schema_extra);
    fclose(f);
    result_t r = parse_file(path);
    unlink(path);
    snprintf(path, sizeof path, "%s/schema.avsc", dir);
    unlink(path);
    rmdir(dir);
    return r;
}

static const char *const s_avro_all =
    "{\"type\": \"record\", \"name\": \"R\", \"fields\": ["
    "{\"name\": \"id\", \"type\": {\"type\": \"string\", \"logicalType\": \"uuid\"}, \"doc\": \"key\"},"
    "{\"name\": \"b\", \"type\": \"boolean\"}, {\"name\": \"i\", \"type\": \"int\"},"
    "{\"name\": \"l\", \"type\": [\"null\", \"long\"]}, {\"name\": \"f\", \"type\": [\"float\", \"null\"]},"
    "{\"name\": \"d\", \"type\": \"double\"}, {\"name\": \"s\", \"type\": {\"type\": \"string\"}},"
    "{\"name\": \"e\", \"type\": {\"type\": \"enum\", \"name\": \"E\", \"symbols\": [\"x\", \"y\"]}},"
    "{\"name\": \"day\", \"type\": {\"type\": \"int\", \"logicalType\": \"date\"}},"
    "{\"name\": \"ms\", \"type\": {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}},"
    "{\"name\": \"us\", \"type\": [\"null\", {\"type\": \"long\", \"logicalType\": \"timestamp-micros\"}]}"
    "]}";

Test(contract, reads_avro_schema)
{
    result_t r = parse_avro(s_avro_all, "    primaryKey: id\n");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert(c->schema_from_avro);
    cr_assert_eq(c->nfields, 11);
    const dm_ftype want[] = {DM_FT_UUID,   DM_FT_BOOLEAN, DM_FT_INT,  DM_FT_INT,
                             DM_FT_DOUBLE, DM_FT_DOUBLE,  DM_FT_STRING, DM_FT_ENUM,
                             DM_FT_DATE,   DM_FT_TIMESTAMP, DM_FT_TIMESTAMP};
    for (size_t i = 0; i < 11; i++)
        cr_assert_eq(c->fields[i].type, want[i], "field %zu", i);
    cr_assert(c->fields[1].required);
    cr_assert_not(c->fields[3].required, "[null, long] is nullable");
    cr_assert_not(c->fields[4].required, "[float, null] is nullable");
    cr_assert_not(c->fields[10].required);
    cr_assert_str_eq(c->fields[0].description, "key");
    cr_assert(c->fields[0].primary_key && c->fields[0].required);
    cr_assert_eq(c->fields[7].nvalues, 2);
    assert_round_trip(c);
    result_free(&r);
}

static void expect_avro_err(const char *avsc, const char *msg)
{
    result_t r = parse_avro(avsc, "");
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "contract.yaml:11:15: error: "), "%s", r.text.data);
    cr_assert(strstr(r.text.data, msg), "want '%s' in:\n%s", msg, r.text.data);
    result_free(&r);
}

Test(contract, rejects_avro_array_naming_field)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"tags\", "
                    "\"type\": {\"type\": \"array\", \"items\": \"string\"}}]}",
                    "avro field 'tags': arrays are not supported (supported: boolean, int, long, "
                    "float, double, string, enum, nullable unions, logical types date, "
                    "timestamp-millis, timestamp-micros, uuid)");
}

Test(contract, rejects_avro_map)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"m\", "
                    "\"type\": {\"type\": \"map\", \"values\": \"long\"}}]}",
                    "avro field 'm': maps are not supported");
}

Test(contract, rejects_avro_nested_record)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"n\", "
                    "\"type\": {\"type\": \"record\", \"name\": \"N\", \"fields\": []}}]}",
                    "avro field 'n': nested records are not supported");
}

Test(contract, rejects_avro_bytes)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"raw\", \"type\": \"bytes\"}]}",
                    "avro field 'raw': bytes are not supported");
}

Test(contract, rejects_avro_fixed)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"h\", "
                    "\"type\": {\"type\": \"fixed\", \"name\": \"H\", \"size\": 16}}]}",
                    "avro field 'h': fixed is not supported");
}

Test(contract, rejects_avro_decimal)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"p\", "
                    "\"type\": {\"type\": \"bytes\", \"logicalType\": \"decimal\", \"precision\": 9}}]}",
                    "avro field 'p': logical type decimal is not supported");
}

Test(contract, rejects_avro_multi_type_union)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"u\", "
                    "\"type\": [\"null\", \"string\", \"long\"]}]}",
                    "avro field 'u': unions other than [\"null\", T] are not supported");
}

Test(contract, rejects_avro_logical_type_on_wrong_base)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"t\", "
                    "\"type\": {\"type\": \"int\", \"logicalType\": \"timestamp-millis\"}}]}",
                    "avro field 't': logical type timestamp-millis needs type long, not int");
}

Test(contract, rejects_avro_top_level_not_record)
{
    expect_avro_err("{\"type\": \"enum\", \"name\": \"E\", \"symbols\": [\"a\"]}",
                    "avro schema 'schema.avsc': the top level must be a record");
}

Test(contract, rejects_avro_invalid_json)
{
    expect_avro_err("{\"type\": \"record\",\n \"fields\": [\n oops]}",
                    "avro schema 'schema.avsc': not valid JSON (near line 3 of the .avsc file)");
}

Test(contract, reports_every_bad_avro_field)
{
    result_t r = parse_avro("{\"type\": \"record\", \"name\": \"R\", \"fields\": ["
                            "{\"name\": \"a\", \"type\": \"bytes\"}, {\"name\": \"b\", \"type\": \"int\"},"
                            "{\"name\": \"c\", \"type\": {\"type\": \"array\", \"items\": \"int\"}}]}",
                            "");
    cr_assert_eq(r.diags.count, 2, "%s", r.text.data);
    result_free(&r);
}

Test(contract, rejects_missing_avro_file)
{
    result_t r = parse_file(DATA "missing-avsc.yaml");
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "missing-avsc.yaml:9:39: error: avro schema 'nope.avsc': cannot "
                                  "read " DATA "nope.avsc: No such file or directory"),
              "%s", r.text.data);
    result_free(&r);
}

Test(contract, rejects_remote_avro_location)
{
    result_t r = parse_avro(s_avro_all, "");
    expect_ok(&r);
    result_free(&r);
    r = parse_patch("    primaryKey:", "    type: avro\n    location: https://schemas.example.com/o.avsc");
    expect_err(&r, 13, 15, "spec.schema.location 'https://schemas.example.com/o.avsc' is remote; "
                           "remote schemas are not fetched");
    result_free(&r);
}

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
    expect_err(&r, 23, 37, "'values' does not apply to rule not_null (its keys: rule, column, name, description)");
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

/* ---- durations and names ---- */

static int64_t dur(const char *s)
{
    int64_t ms = -42;
    if (!dm_duration_parse(s, strlen(s), &ms))
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
    cr_assert_str_eq(dm_ftype_name(DM_FT_TIMESTAMP), "timestamp");
    cr_assert_str_eq(dm_ftype_name(DM_FT_ENUM), "enum");
    cr_assert_str_eq(dm_check_rule_name(DM_CHECK_ROW_COUNT_DELTA), "row_count_delta");
    cr_assert_str_eq(dm_access_name(DM_ACCESS_PRIVATE), "private");
    cr_assert_str_eq(dm_ftype_name(DM_FT__COUNT), "?");
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

Test(contract, accepts_tab_inside_literal_block)
{
    result_t r = parse_patch("  version:", "  version: 1.0.0\n  description: |\n    first\n    \tindented");
    expect_ok(&r);
    cr_assert_str_eq(r.cs[0]->description, "first\n\tindented\n");
    result_free(&r);
}

Test(contract, rejects_avro_field_with_invalid_name)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"a-b\", \"type\": \"int\"}]}",
                    "avro field 'a-b': the name must match ^[A-Za-z_][A-Za-z0-9_]{0,127}$");
}

Test(contract, rejects_too_many_nodes_fast)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, "x-many: [");
    for (int i = 0; i < 300000; i++)
        dm_buf_puts(&b, "1,");
    dm_buf_puts(&b, "1]\n");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    result_t r = parse(b.data);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    expect_err(&r, 1, 200004, "the file has more than 100000 YAML nodes");
    cr_assert_lt(ms, 1000.0, "took %.1f ms", ms);
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, rejects_recursive_alias)
{
    result_t r = parse_base("  x-loop: &l [1, *l]\n");
    expect_err(&r, 21, 18, "alias refers to a node that contains it");
    result_free(&r);
}

Test(contract, rejects_large_expanded_text)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, "x-big: &s \"");
    for (int i = 0; i < 500000; i++)
        dm_buf_putc(&b, 'a');
    dm_buf_puts(&b, "\"\nx-copies: [*s, *s, *s, *s, *s, *s, *s, *s, *s, *s]\n");
    result_t r = parse(b.data);
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "bytes of text (each alias counts as a copy of its anchor)"), "%s",
              r.text.data);
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, rejects_utf16_file)
{
    const char text[] = "\xff\xfe" "a\0:\0 \0" "1\0";
    result_t r = parse_text(text, sizeof text - 1, NULL);
    expect_err(&r, 1, 1, "the file is UTF-16");
    result_free(&r);
}
