/* test_store_reads.c: the store's read path reports like its write path
 * (base/err.h): a read that fails (a corrupt product record, a corrupt
 * index entry, an index entry whose row is gone) returns DM_ERR_STORE with
 * one line in why and logs nothing; "not found" returns DM_ERR_NOTFOUND,
 * leaves why empty and logs nothing either. The damage is done with LMDB
 * directly while the store is closed. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <lmdb.h>

#include "fixture.h"
#include "storage/reader.h"
#include "storage/store.h"

static char s_dir[PATH_MAX];
static dm_store_t *s_store;
static uint32_t s_pid;

/* Registers commerce/orders and commits the row "r1" under key "a". */
static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_store_reads"));
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    dm_product_t in = {0}, out;
    in.domain = (char *)"commerce";
    in.name = (char *)"orders";
    in.version = (char *)"1.0.0";
    in.version_major = 1;
    in.contract = (char *)"{}";
    in.contract_len = 2;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, &out, NULL, NULL), DM_OK);
    s_pid = out.id;
    dm_store_product_clear(&out);
    dm_row_in_t rows[1] = {{"a", 1, "r1", 2}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, s_pid, rows, 1, NULL, 0, "", &r, NULL), DM_OK);
}

static void s_teardown(void)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
}

TestSuite(store_reads, .init = s_setup, .fini = s_teardown);

/* Closes the store, puts val under key in database db (val NULL: deletes
 * key) with LMDB itself, and reopens the store. */
static void s_poke(const char *db, const void *key, size_t klen, const void *val, size_t vlen)
{
    dm_store_destroy(&s_store);
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), MDB_SUCCESS);
    cr_assert_eq(mdb_env_set_maxdbs(env, 8), MDB_SUCCESS);
    cr_assert_eq(mdb_env_open(env, s_dir, MDB_NOTLS, 0600), MDB_SUCCESS);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), MDB_SUCCESS);
    cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), MDB_SUCCESS);
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    cr_assert_eq(val ? mdb_put(txn, dbi, &k, &v, 0) : mdb_del(txn, dbi, &k, NULL), MDB_SUCCESS);
    cr_assert_eq(mdb_txn_commit(txn), MDB_SUCCESS);
    mdb_env_close(env);
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
}

/* The index key of "a": [pid u32 BE]"a". */
static size_t s_index_key(uint8_t k[5])
{
    k[0] = (uint8_t)(s_pid >> 24), k[1] = (uint8_t)(s_pid >> 16);
    k[2] = (uint8_t)(s_pid >> 8), k[3] = (uint8_t)s_pid;
    k[4] = 'a';
    return 5;
}

/* why holds exactly one line containing what. */
static void s_assert_line(const dm_buf_t *why, const char *what)
{
    cr_assert_gt(why->len, 0, "why is empty");
    cr_assert_not_null(strstr(why->data, what), "%s", why->data);
    cr_assert_null(strchr(why->data, '\n'), "%s", why->data);
}

static void s_assert_quiet(void)
{
    fflush(stderr);
    cr_assert_stderr_eq_str("", "the store logged a failure it returned");
}

Test(store_reads, corrupt_product_record_is_reported_in_why_by_get,
     .init = cr_redirect_stderr)
{
    s_poke("products", "commerce/orders", 15, "bad", 3);
    dm_product_t p;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, &why), DM_ERR_STORE);
    s_assert_line(&why, "product record is corrupt (3 bytes)");
    cr_assert_null(p.domain, "a failed get left a product behind");
    dm_buf_free(&why);
    s_assert_quiet();
}

Test(store_reads, corrupt_product_record_is_reported_in_why_by_list,
     .init = cr_redirect_stderr)
{
    s_poke("products", "commerce/orders", 15, "bad", 3);
    dm_product_t *list = NULL;
    size_t n = 7;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_store_product_list(s_store, &list, &n, &why), DM_ERR_STORE);
    s_assert_line(&why, "product record is corrupt");
    cr_assert_null(list);
    cr_assert_eq(n, 0);
    dm_buf_free(&why);
    s_assert_quiet();
}

Test(store_reads, corrupt_index_entry_is_reported_in_why_by_get_by_key,
     .init = cr_redirect_stderr)
{
    uint8_t k[5];
    s_poke("pk_recent", k, s_index_key(k), "xyz", 3);
    dm_buf_t row = DM_BUF_INIT, why = DM_BUF_INIT;
    cr_assert_eq(dm_store_get_by_key(s_store, s_pid, "a", 1, &row, &why), DM_ERR_STORE);
    char want[64];
    snprintf(want, sizeof want, "index entry of product %u is corrupt", s_pid);
    s_assert_line(&why, want);
    dm_buf_free(&row);
    dm_buf_free(&why);
    s_assert_quiet();
}

Test(store_reads, index_entry_without_its_row_is_reported_in_why,
     .init = cr_redirect_stderr)
{
    uint8_t lk[12] = {0};
    lk[0] = (uint8_t)(s_pid >> 24), lk[1] = (uint8_t)(s_pid >> 16);
    lk[2] = (uint8_t)(s_pid >> 8), lk[3] = (uint8_t)s_pid;
    lk[11] = 1; /* the first sequence */
    s_poke("rows", lk, sizeof lk, NULL, 0);
    dm_buf_t row = DM_BUF_INIT, why = DM_BUF_INIT;
    cr_assert_eq(dm_store_get_by_key(s_store, s_pid, "a", 1, &row, &why), DM_ERR_STORE);
    s_assert_line(&why, "index points at a missing row");
    dm_buf_free(&row);
    dm_buf_free(&why);
    s_assert_quiet();
}

Test(store_reads, corrupt_index_entry_is_reported_in_why_by_a_reader_walk,
     .init = cr_redirect_stderr)
{
    uint8_t k[5];
    s_poke("pk_recent", k, s_index_key(k), "xyz", 3);
    dm_reader_t *r = NULL;
    dm_reader_cursor_t *c = NULL;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_reader_open(s_store, &r, &why), DM_OK);
    cr_assert_eq(dm_reader_cursor_open(r, &c, &why), DM_OK);
    dm_store_bound_t all = {NULL, 0, true};
    /* The walk decodes an entry where it is sought (storage/index_block.c):
     * the range's start or the first step reports it, with nothing before. */
    dm_err err = dm_reader_cursor_range(c, s_pid, &all, &all, true, &why);
    cr_assert(err == DM_ERR_STORE || why.len == 0);
    if (err == DM_OK)
        err = dm_reader_cursor_next(c, NULL, NULL, NULL, NULL, NULL, &why);
    cr_assert_eq(err, DM_ERR_STORE);
    s_assert_line(&why, "is corrupt");
    dm_buf_reset(&why);
    const void *row = NULL;
    size_t len = 0;
    cr_assert_eq(dm_reader_get(r, s_pid, "a", 1, &row, &len, &why), DM_ERR_STORE);
    s_assert_line(&why, "is corrupt");
    dm_reader_cursor_close(&c);
    dm_reader_close(&r);
    dm_buf_free(&why);
    s_assert_quiet();
}

Test(store_reads, missing_product_is_not_found_and_quiet, .init = cr_redirect_stderr)
{
    dm_product_t p;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "nope", &p, &why), DM_ERR_NOTFOUND);
    cr_assert_eq(why.len, 0, "%s", why.data);
    dm_buf_free(&why);
    s_assert_quiet();
}

Test(store_reads, missing_key_is_not_found_and_quiet, .init = cr_redirect_stderr)
{
    dm_buf_t row = DM_BUF_INIT, why = DM_BUF_INIT;
    cr_assert_eq(dm_store_get_by_key(s_store, s_pid, "b", 1, &row, &why), DM_ERR_NOTFOUND);
    dm_reader_t *r = NULL;
    cr_assert_eq(dm_reader_open(s_store, &r, &why), DM_OK);
    const void *rp = NULL;
    size_t len = 0;
    uint64_t count = 0;
    cr_assert_eq(dm_reader_get(r, s_pid, "b", 1, &rp, &len, &why), DM_ERR_NOTFOUND);
    cr_assert_eq(dm_reader_count(r, s_pid + 1, &count, &why), DM_ERR_NOTFOUND);
    dm_reader_close(&r);
    cr_assert_eq(why.len, 0, "%s", why.data);
    dm_buf_free(&row);
    dm_buf_free(&why);
    s_assert_quiet();
}
