/* test_schema_limits.c: a schema compiled from a contract at the shape
 * limits (suite "schema_limits"): a record's value is found at the far end
 * of the largest enum and of a long in_list. The parser's side of the
 * limits: contract/test_contract_limits.c. */
#include <criterion/criterion.h>
#include <string.h>

#include "contract/contract.h"
#include "record/schema.h"

#define T_FIRST_IN_LIST 30000 /* the in_list holds v30000..v0, then v65535 */

/* A contract whose field e is an enum of nenum values v0..v(nenum-1) and
 * whose in_list check over e lists v<from>..v0 downwards, then extra.
 * Asserts that it parses; *cs_p is the caller's to free. */
static dm_contract_t *s_parse_in_list(size_t nenum, size_t from, const char *extra,
                                      dm_contract_t ***cs_p, size_t *n)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: big\n"
                    "  domain: bench\n  version: 1.0.0\n  owner:\n    team: bench\n"
                    "    contact: data@company.com\nspec:\n  schema:\n    primaryKey: id\n"
                    "    fields:\n      - {name: id, type: int}\n      - name: e\n"
                    "        type: enum\n        values: [");
    for (size_t i = 0; i < nenum; i++)
        dm_buf_printf(&b, "%sv%zu", i ? ", " : "", i);
    dm_buf_puts(&b, "]\n  quality:\n    checks:\n      - rule: in_list\n        column: e\n"
                    "        values: [");
    for (size_t i = from + 1; i-- > 0;)
        dm_buf_printf(&b, "v%zu, ", i);
    dm_buf_printf(&b, "%s]\n", extra);
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_contract_parse("t.yaml", b.data, b.len, NULL, cs_p, n, &diags);
    dm_buf_t text = DM_BUF_INIT;
    dm_diags_format(&diags, &text);
    cr_assert_eq(rc, DM_OK, "%.2000s", text.data ? text.data : "");
    dm_buf_free(&text);
    dm_diags_clear(&diags);
    dm_buf_free(&b);
    return (*cs_p)[0];
}

Test(schema_limits, a_record_finds_the_last_value_of_the_largest_enum)
{
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_contract_t *c = s_parse_in_list(DM_CONTRACT_MAX_VALUES, T_FIRST_IN_LIST, "v65535", &cs, &n);
    dm_schema_t *s = NULL;
    cr_assert_eq(dm_schema_new(c, &s, NULL), DM_OK);
    dm_buf_t row = DM_BUF_INIT, key = DM_BUF_INIT, why = DM_BUF_INIT;
    const char *ok[] = {"{\"id\": 1, \"e\": \"v65535\"}", "{\"id\": 2, \"e\": \"v0\"}",
                        "{\"e\": \"v30000\", \"id\": 3}"};
    for (size_t i = 0; i < 3; i++)
        cr_assert(dm_schema_validate(s, ok[i], strlen(ok[i]), &row, &key, &why), "%s: %s", ok[i],
                  why.data);
    const char *enum_bad = "{\"id\": 4, \"e\": \"v65536\"}";
    cr_assert_not(dm_schema_validate(s, enum_bad, strlen(enum_bad), &row, &key, &why));
    cr_assert(strstr(why.data, "is not one of"), "%s", why.data);
    const char *list_bad = "{\"id\": 5, \"e\": \"v40001\"}"; /* in the enum, not the list */
    cr_assert_not(dm_schema_validate(s, list_bad, strlen(list_bad), &row, &key, &why));
    cr_assert(strstr(why.data, "check in_list failed"), "%s", why.data);
    dm_buf_free(&row);
    dm_buf_free(&key);
    dm_buf_free(&why);
    dm_schema_destroy(&s);
    dm_contract_list_destroy(&cs, n);
}
