/* fuzz_avro.c: the Avro schema reader (.avsc -> contract fields) over any
 * bytes. dm_avro_fields reads a file, so each input is written to a file
 * of this process first. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "contract/avro.h"
#include "contract/contract.h"
#include "fuzz.h"
#include "base/log.h"

static char s_path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dm_log_init("fuzz_avro", DM_LOG_ERR);
    const char *tmp = getenv("TMPDIR");
    snprintf(s_path, sizeof s_path, "%s/dm-fuzz-avro-%ld.avsc", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_path[0])
        LLVMFuzzerInitialize(NULL, NULL);
    FILE *f = fopen(s_path, "wb");
    DM_FUZZ_CHECK(f);
    DM_FUZZ_CHECK(fwrite(data, 1, size, f) == size || size == 0);
    fclose(f);
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_field_t *fields = NULL;
    size_t n = 0;
    dm_err rc = dm_avro_fields(s_path, "x.avsc", "c.yaml", 3, 5, &diags, &fields, &n);
    DM_FUZZ_CHECK(rc == DM_OK || (fields == NULL && diags.count > 0));
    /* The fields belong to a contract normally: free them the same way. */
    dm_contract_t *c = calloc(1, sizeof *c);
    DM_FUZZ_CHECK(c);
    c->fields = fields;
    c->nfields = n;
    dm_contract_destroy(&c);
    dm_diags_clear(&diags);
    unlink(s_path);
    return 0;
}
