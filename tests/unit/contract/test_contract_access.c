/* test_contract_access.c: the contract's access facts (suite "contract"):
 * per-field classification and spec.policies.readers, their diagnostics,
 * their canonical form, and that changing them is a compatible upgrade. */
#include "contract_test.h"

#include "contract/contract_compat.h"

#define K1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define K1_UPPER "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"

Test(contract, reads_classification)
{
    result_t r = parse_patch("      - {name: s, type: string}",
                             "      - {name: s, type: string, classification: pii}");
    expect_ok(&r);
    cr_assert_str_eq(r.cs[0]->fields[3].classification, "pii");
    cr_assert_null(r.cs[0]->fields[2].classification, "unset is NULL");
    assert_round_trip(r.cs[0]);
    result_free(&r);
}

Test(contract, rejects_classification_not_a_name)
{
    result_t r = parse_patch("      - {name: s, type: string}",
                             "      - {name: s, type: string, classification: PII!}");
    expect_err(&r, 17, 49, "classification 'PII!' is not a name");
    result_free(&r);
}

Test(contract, reads_readers_lowercased)
{
    result_t r = parse_base("  policies:\n    readers: [" K1_UPPER ", \"group:analysts\"]\n");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert_eq(c->nreaders, 2);
    cr_assert_str_eq(c->readers[0], K1);
    cr_assert_str_eq(c->readers[1], "group:analysts");
    assert_round_trip(c);
    result_free(&r);
}

Test(contract, rejects_bad_reader)
{
    result_t r = parse_base("  policies:\n    readers: [abc]\n");
    expect_err(&r, 22, 15, "readers entry 'abc' is not a reader: use an ed25519 key as 64 hex digits "
                           "or group:NAME");
    result_free(&r);
    r = parse_base("  policies:\n    readers: [\"group:Bad Name\"]\n");
    expect_err(&r, 22, 15, "is not a reader");
    result_free(&r);
}

Test(contract, rejects_duplicate_reader_whatever_its_case)
{
    result_t r = parse_base("  policies:\n    readers: [" K1 ", " K1_UPPER "]\n");
    expect_err(&r, 22, 81, "reader '" K1 "' is listed twice");
    result_free(&r);
}

Test(contract, rejects_too_many_readers)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, "  policies:\n    readers:\n");
    for (int i = 0; i <= DM_CONTRACT_MAX_READERS; i++)
        dm_buf_printf(&b, "      - \"group:g%d\"\n", i);
    result_t r = parse_base(b.data);
    expect_err(&r, 23, 7, "lists 1001 readers; a contract has at most 1000");
    result_free(&r);
    dm_buf_free(&b);
}

Test(contract, canonical_form_unchanged_without_the_new_keys)
{
    result_t r = parse_base("");
    expect_ok(&r);
    char *t = canonical(r.cs[0]);
    cr_assert_null(strstr(t, "classification"));
    cr_assert_null(strstr(t, "readers"));
    result_free(&r);
    free(t);
}

Test(contract, canonical_form_carries_readers_and_classification)
{
    result_t r = parse_base("  policies:\n    readers: [\"group:a\"]\n");
    expect_ok(&r);
    char *t = canonical(r.cs[0]);
    cr_assert(strstr(t, "\"readers\":[\"group:a\"]"), "%s", t);
    free(t);
    result_free(&r);
}

Test(contract, readers_and_classification_changes_are_compatible)
{
    result_t a = parse_base("  policies:\n    readers: [\"group:a\"]\n");
    result_t b = parse_patch("      - {name: s, type: string}",
                             "      - {name: s, type: string, classification: pii}");
    expect_ok(&a);
    expect_ok(&b);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_contract_compat_check(a.cs[0], b.cs[0], &why), DM_OK, "%s", why.data);
    cr_assert_eq(dm_contract_compat_check(b.cs[0], a.cs[0], &why), DM_OK, "%s", why.data);
    dm_buf_free(&why);
    result_free(&a);
    result_free(&b);
}
