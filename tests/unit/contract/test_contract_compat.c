/* test_contract_compat.c: the upgrade rules for a product that holds
 * records (suite "contract_compat"): one test per refusal, asserting the
 * reason the writer quotes to the client, and the upgrades that are
 * allowed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/contract.h"
#include "contract/contract_compat.h"

/* An orders contract: version, primary key, the field list and extra spec
 * text (after the schema). */
#define S_DOC                                                                                      \
    "apiVersion: datamesh.io/v1\nkind: DataProduct\n"                                              \
    "metadata:\n  name: orders\n  domain: commerce\n  version: %s\n"                               \
    "  owner: {team: commerce, contact: data@company.com}\n"                                       \
    "spec:\n  schema:\n    primaryKey: %s\n    fields:\n%s%s"

#define S_FIELDS                                                                                   \
    "      - {name: id, type: uuid}\n"                                                             \
    "      - {name: amount, type: int, required: true}\n"                                          \
    "      - {name: status, type: enum, values: [new, paid]}\n"

static dm_contract_t *s_parse(const char *version, const char *pk, const char *fields,
                              const char *extra)
{
    char text[4096];
    snprintf(text, sizeof text, S_DOC, version, pk, fields, extra);
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_contract_parse("t.yaml", text, strlen(text), NULL, &list, &n, &diags);
    dm_buf_t msg = DM_BUF_INIT;
    dm_diags_format(&diags, &msg);
    cr_assert_eq(rc, DM_OK, "contract does not parse:\n%s", msg.data ? msg.data : "");
    cr_assert_eq(n, 1);
    dm_contract_t *c = list[0];
    free(list);
    dm_buf_free(&msg);
    dm_diags_clear(&diags);
    return c;
}

/* Checks old (S_FIELDS, pk id) against new; returns the result and the
 * reason in why (caller frees). */
static dm_err s_check(const char *pk, const char *fields, const char *extra, dm_buf_t *why)
{
    dm_contract_t *old = s_parse("1.0.0", "id", S_FIELDS, "");
    dm_contract_t *new = s_parse("1.1.0", pk, fields, extra);
    dm_err rc = dm_contract_compat_check(old, new, why);
    dm_contract_destroy(&old);
    dm_contract_destroy(&new);
    return rc;
}

static void s_refused(const char *pk, const char *fields, const char *reason)
{
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_check(pk, fields, "", &why), DM_ERR_CONFLICT);
    cr_assert_str_eq(why.data, reason);
    dm_buf_free(&why);
}

static void s_allowed(const char *fields, const char *extra)
{
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_check("id", fields, extra, &why), DM_OK, "refused: %s",
                 why.data ? why.data : "");
    cr_assert_eq(why.len, 0);
    dm_buf_free(&why);
}

/* ---- refusals, one per rule ---- */

Test(contract_compat, refuses_removed_field)
{
    s_refused("id", "      - {name: id, type: uuid}\n", "it removes 2 field(s)");
}

Test(contract_compat, refuses_renamed_field)
{
    s_refused("id",
              "      - {name: id, type: uuid}\n"
              "      - {name: total, type: int, required: true}\n"
              "      - {name: status, type: enum, values: [new, paid]}\n",
              "field 2 changes from 'amount' to 'total'");
}

Test(contract_compat, refuses_changed_type)
{
    s_refused("id",
              "      - {name: id, type: uuid}\n"
              "      - {name: amount, type: double, required: true}\n"
              "      - {name: status, type: enum, values: [new, paid]}\n",
              "field 'amount' changes type from int to double");
}

Test(contract_compat, refuses_reordered_enum_values)
{
    s_refused("id",
              "      - {name: id, type: uuid}\n"
              "      - {name: amount, type: int, required: true}\n"
              "      - {name: status, type: enum, values: [paid, new]}\n",
              "enum field 'status' must keep its values in order and only add new ones at the "
              "end");
}

Test(contract_compat, refuses_removed_enum_value)
{
    s_refused("id",
              "      - {name: id, type: uuid}\n"
              "      - {name: amount, type: int, required: true}\n"
              "      - {name: status, type: enum, values: [new]}\n",
              "enum field 'status' must keep its values in order and only add new ones at the "
              "end");
}

Test(contract_compat, refuses_new_required_field)
{
    s_refused("id", S_FIELDS "      - {name: note, type: string, required: true}\n",
              "new field 'note' is required, but stored records lack it");
}

Test(contract_compat, refuses_changed_primary_key)
{
    s_refused("[id, amount]", S_FIELDS, "it changes the primary key");
}

Test(contract_compat, reports_only_the_first_broken_rule)
{
    /* Fewer fields and a changed key: the removal is named, once. */
    s_refused("amount", "      - {name: id, type: uuid}\n      - {name: amount, type: int}\n",
              "it removes 1 field(s)");
}

Test(contract_compat, refuses_without_a_reason_buffer)
{
    cr_assert_eq(s_check("id", "      - {name: id, type: uuid}\n", "", NULL), DM_ERR_CONFLICT);
}

Test(contract_compat, appends_to_what_the_caller_holds)
{
    dm_buf_t why = DM_BUF_INIT;
    dm_buf_puts(&why, "earlier; ");
    cr_assert_eq(s_check("id", "      - {name: id, type: uuid}\n", "", &why), DM_ERR_CONFLICT);
    cr_assert_str_eq(why.data, "earlier; it removes 2 field(s)");
    dm_buf_free(&why);
}

/* ---- allowed upgrades ---- */

Test(contract_compat, allows_the_same_schema)
{
    s_allowed(S_FIELDS, "");
}

Test(contract_compat, allows_new_optional_field_at_the_end)
{
    s_allowed(S_FIELDS "      - {name: note, type: string}\n"
                       "      - {name: seen, type: timestamp, required: false}\n",
              "");
}

Test(contract_compat, allows_new_enum_values_at_the_end)
{
    s_allowed("      - {name: id, type: uuid}\n"
              "      - {name: amount, type: int, required: true}\n"
              "      - {name: status, type: enum, values: [new, paid, refunded]}\n",
              "");
}

Test(contract_compat, allows_changed_required_flag_and_constraints)
{
    /* Constraints judge new records only: stored rows still decode. */
    s_allowed("      - {name: id, type: uuid}\n"
              "      - {name: amount, type: int, minimum: 0}\n"
              "      - {name: status, type: enum, values: [new, paid]}\n",
              "");
}

Test(contract_compat, allows_new_checks_sla_and_policies)
{
    s_allowed(S_FIELDS, "  sla: {freshness: 10m}\n  quality:\n    checks:\n"
                        "      - {rule: not_null, column: amount}\n");
}
