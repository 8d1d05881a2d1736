/* fuzz_contract.c: the contract parser (YAML and canonical JSON, which is
 * YAML too) over any bytes, as the node parses a RegisterReq or a catalog
 * entry (no avro files: basedir NULL). A contract that parses must have a
 * canonical form that parses back to one contract with the same hash, and
 * must compile into a record schema or be refused cleanly. */
#include <stdlib.h>
#include <string.h>

#include "contract/contract.h"
#include "fuzz.h"
#include "base/log.h"
#include "record/schema.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dm_log_init("fuzz_contract", DM_LOG_ERR);
    return 0;
}

/* Canonical form round trip of one parsed contract. */
static void s_round_trip(const dm_contract_t *c)
{
    dm_buf_t canon = DM_BUF_INIT;
    dm_contract_canonical(c, &canon);
    uint8_t h1[DM_CONTRACT_HASH_BYTES], h2[DM_CONTRACT_HASH_BYTES];
    dm_contract_hash(c, h1);
    dm_contract_t **again = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_contract_parse("canonical", canon.data, canon.len, NULL, &again, &n, &diags);
    DM_FUZZ_CHECK(rc == DM_OK && n == 1);
    dm_contract_hash(again[0], h2);
    DM_FUZZ_CHECK(memcmp(h1, h2, sizeof h1) == 0);
    dm_contract_destroy(&again[0]);
    free(again);
    dm_diags_clear(&diags);
    dm_buf_free(&canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_contract_parse("fuzz", (const char *)data, size, NULL, &list, &n, &diags);
    dm_buf_t text = DM_BUF_INIT;
    dm_diags_format(&diags, &text);
    dm_buf_free(&text);
    if (rc == DM_OK) {
        for (size_t i = 0; i < n; i++) {
            s_round_trip(list[i]);
            dm_schema_t *s = NULL;
            if (dm_schema_new(list[i], &s, NULL) == DM_OK)
                dm_schema_destroy(&s);
        }
    }
    dm_contract_list_destroy(&list, n);
    dm_diags_clear(&diags);
    return 0;
}
