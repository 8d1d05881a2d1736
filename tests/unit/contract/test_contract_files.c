/* test_contract_files.c: dm_contract_parse_file refuses a contract or an
 * .avsc that is not a regular file at once instead of blocking in open(2):
 * a FIFO with no writer, a directory (suite "contract_files"). Each test
 * has a deadline: a hang is a failure, not a stuck run. The open itself:
 * base/test_file_open.c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "contract/contract.h"
#include "fixture.h"

#define T_DEADLINE_S 10 /* a blocked open would hold the test far longer */

static char s_dir[64];

static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "contract_files"));
}

static void s_teardown(void)
{
    cr_assert_eq(dm_t_rmdir(s_dir), 0);
}

TestSuite(contract_files, .init = s_setup, .fini = s_teardown, .timeout = T_DEADLINE_S);

static const char *s_fifo(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    cr_assert_eq(mkfifo(path, 0600), 0);
    return path;
}

Test(contract_files, a_fifo_contract_is_refused_at_once)
{
    const char *path = s_fifo("c.yaml");
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_contract_parse_file(path, &cs, &n, &diags), DM_ERR_IO);
    dm_buf_t text = DM_BUF_INIT;
    dm_diags_format(&diags, &text);
    cr_assert(strstr(text.data, "not a regular file (a FIFO)"), "%s", text.data);
    dm_buf_free(&text);
    dm_diags_clear(&diags);
}

Test(contract_files, a_directory_contract_is_refused)
{
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_contract_parse_file(s_dir, &cs, &n, &diags), DM_ERR_IO);
    cr_assert_eq(diags.count, 1);
    cr_assert(strstr(diags.items[0].message, "a directory"), "%s", diags.items[0].message);
    dm_diags_clear(&diags);
}

Test(contract_files, a_fifo_avsc_is_refused_at_once)
{
    s_fifo("schema.avsc");
    char path[128];
    snprintf(path, sizeof path, "%s/c.yaml", s_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: orders\n"
          "  domain: commerce\n  version: 1.0.0\n  owner: {team: t, contact: a@b.co}\n"
          "spec:\n  schema:\n    type: avro\n    location: schema.avsc\n",
          f);
    fclose(f);
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_contract_parse_file(path, &cs, &n, &diags), DM_ERR_INVALID);
    dm_buf_t text = DM_BUF_INIT;
    dm_diags_format(&diags, &text);
    cr_assert(strstr(text.data, "not a regular file"), "%s", text.data);
    dm_buf_free(&text);
    dm_diags_clear(&diags);
}
