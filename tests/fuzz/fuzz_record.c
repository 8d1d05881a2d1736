/* fuzz_record.c: the record path of an ingest: the JSON scanner over any
 * bytes, then schema validation of the bytes as one record against a fixed
 * contract holding every field type and constraint; a valid record's row
 * must decode column by column and print as JSON. */
#include <stdlib.h>
#include <string.h>

#include "contract/contract.h"
#include "fuzz.h"
#include "record/json_scan.h"
#include "base/log.h"
#include "record/row.h"
#include "record/schema.h"

static const char s_contract[] =
    "apiVersion: datamesh.io/v1\n"
    "kind: DataProduct\n"
    "metadata: {name: every, domain: fuzz, version: 1.0.0, owner: {team: t, contact: a@b.co}}\n"
    "spec:\n"
    "  schema:\n"
    "    primaryKey: [id, n, s]\n"
    "    fields:\n"
    "      - {name: id, type: uuid}\n"
    "      - {name: n, type: int, minimum: -1000000, maximum: 1000000000000}\n"
    "      - {name: x, type: double, exclusiveMinimum: 0}\n"
    "      - {name: s, type: string, minLength: 1, maxLength: 64, pattern: '^[a-z0-9-]+$'}\n"
    "      - {name: free, type: string}\n"
    "      - {name: ts, type: timestamp, required: true}\n"
    "      - {name: d, type: date}\n"
    "      - {name: b, type: boolean}\n"
    "      - {name: st, type: enum, values: [created, paid, shipped]}\n"
    "  quality:\n"
    "    checks:\n"
    "      - {column: free, rule: not_null}\n"
    "      - {column: st, rule: in_list, values: [created, paid]}\n"
    "      - {column: n, rule: range, min: 0, max: 100}\n"
    "      - {column: free, rule: regex, pattern: 'a|b'}\n";

static dm_contract_t *s_c;
static dm_schema_t *s_schema;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dm_log_init("fuzz_record", DM_LOG_ERR);
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    DM_FUZZ_CHECK(dm_contract_parse("every.yaml", s_contract, strlen(s_contract), NULL, &list, &n,
                                    &diags) == DM_OK && n == 1);
    s_c = list[0];
    free(list);
    dm_diags_clear(&diags);
    DM_FUZZ_CHECK(dm_schema_new(s_c, &s_schema, NULL) == DM_OK);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_schema)
        LLVMFuzzerInitialize(NULL, NULL);
    const char *line = (const char *)data;
    dm_json_scan_t sc;
    dm_json_scan_init(&sc, line, size);
    dm_json_member_t m;
    char *tmp = malloc(size ? size : 1);
    DM_FUZZ_CHECK(tmp);
    int r;
    while ((r = dm_json_scan_next(&sc, &m)) == 1) {
        DM_FUZZ_CHECK(m.key >= line && m.key + m.key_len <= line + size);
        DM_FUZZ_CHECK(m.val >= line && m.val + m.val_len <= line + size);
        if (m.type == DM_JSON_STRING)
            DM_FUZZ_CHECK(dm_json_scan_unescape(m.val, m.val_len, tmp) <= m.val_len);
    }
    DM_FUZZ_CHECK(r == 0 || sc.err);
    free(tmp);

    dm_buf_t row = DM_BUF_INIT, key = DM_BUF_INIT, reasons = DM_BUF_INIT, json = DM_BUF_INIT;
    if (dm_schema_validate(s_schema, line, size, &row, &key, &reasons)) {
        for (size_t f = 0; f < s_c->nfields; f++) {
            dm_value_t v;
            DM_FUZZ_CHECK(dm_row_get(s_schema, row.data, row.len, f, &v));
        }
        dm_row_to_json(s_schema, row.data, row.len, &json);
        /* What the node stores must read back as a valid record. */
        dm_buf_t row2 = DM_BUF_INIT, key2 = DM_BUF_INIT, why2 = DM_BUF_INIT;
        DM_FUZZ_CHECK(dm_schema_validate(s_schema, json.data, json.len, &row2, &key2, &why2));
        DM_FUZZ_CHECK(key2.len == key.len && (!key.len || memcmp(key.data, key2.data, key.len) == 0));
        dm_buf_free(&row2);
        dm_buf_free(&key2);
        dm_buf_free(&why2);
    } else {
        /* Every refusal says why. */
        DM_FUZZ_CHECK(reasons.len > 0);
    }
    /* A row from the wire (a store entry) must never be trusted blindly. */
    dm_buf_reset(&json);
    for (size_t f = 0; f < s_c->nfields; f++) {
        dm_value_t v;
        DM_FUZZ_IGNORE(dm_row_get(s_schema, data, size, f, &v));
    }
    dm_row_to_json(s_schema, data, size, &json);
    dm_buf_free(&row);
    dm_buf_free(&key);
    dm_buf_free(&reasons);
    dm_buf_free(&json);
    return 0;
}
