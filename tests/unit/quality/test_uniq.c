/* test_uniq.c: the uniqueness index's pending runs and folds
 * (quality_uniq.c) on a real LMDB store: counts before and after a fold,
 * across a reopen with runs pending, and upserts that move a value while
 * its count is split between the index and the runs; the writer's memory
 * (quality_uniq_bloom.c, quality_uniq_counts.c): a filter built after a
 * restart from the index and the runs, cached counts that a batch
 * aborting after the hook does not leave behind; the in-memory tables
 * (quality_uniq_mem.c): no index written, a restart's scan, a batch that
 * aborts undone, the move to the durable index past the memory bound and
 * back after a restart, the tables kept over a clean restart in a file
 * and a stale file not trusted. */
#include "quality_test.h"

#include <unistd.h>

#define T_ROWS_MAX 64

static int s_next_id;
/* The bound of the writer's in-memory tables: 0 (the durable index, what
 * most tests here are about) unless a test says otherwise. */
static size_t s_table_max;
/* Rows committed as the ingest validator hands them over: each followed
 * by its unique keys (quality_keys.c); s_keys_empty: by an empty block
 * (the hook then makes the keys itself). */
static bool s_keyed, s_keys_empty;
/* The writer's buffers passed from batch to batch (NULL: none). */
static dm_quality_scratch_t *s_scratch;
/* Rows committed without the quality hook (a test's way to tell a table
 * read back from one counted from the rows). */
static bool s_hookless;

static void s_setup(void)
{
    q_open("test_uniq");
    s_next_id = 0;
    s_table_max = 0;
    s_hookless = false;
    s_keyed = s_keys_empty = false;
}

static void s_teardown(void)
{
    dm_quality_scratch_destroy(&s_scratch);
    q_close();
}

TestSuite(uniq, .init = s_setup, .fini = s_teardown);

/* Registers product d.p with fields id and v (of vtype), pk (YAML line or
 * NULL) and a unique check on v. */
static void s_product_typed(const char *pk, const char *vtype)
{
    char text[2048];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: p\n"
             "  domain: d\n  version: 1.0.0\n  owner: {team: t, contact: t@c.com}\n"
             "spec:\n  schema:\n%s    fields:\n      - {name: id, type: int}\n"
             "      - {name: v, type: %s}\n  quality:\n    checks:\n"
             "      - {rule: unique, column: v}\n",
             pk ? pk : "", vtype);
    q_product(text);
}

static void s_product(const char *pk) { s_product_typed(pk, "int"); }

/* Product d.p keyed by id, its unique check's counts in memory. */
static void s_in_memory_product(void)
{
    s_table_max = DM_QUALITY_UNIQ_TABLES_MAX;
    s_product("    primaryKey: id\n");
}

/* Commits NDJSON lines[0..n) as one batch through the hook, with the fold
 * bound's floor at fold_min. */
static void s_commit(char lines[][64], size_t n, uint64_t fold_min)
{
    dm_buf_t row[T_ROWS_MAX], key[T_ROWS_MAX], why = DM_BUF_INIT;
    dm_row_in_t in[T_ROWS_MAX];
    dm_quality_keys_t *keys = NULL;
    if (s_keyed)
        cr_assert_eq(dm_quality_keys_new(s_c, s_schema, &keys, &why), DM_OK);
    cr_assert(!s_keyed || keys, "the contract's unique check makes keys");
    for (size_t i = 0; i < n; i++) {
        row[i] = (dm_buf_t)DM_BUF_INIT;
        key[i] = (dm_buf_t)DM_BUF_INIT;
        cr_assert(dm_schema_validate(s_schema, lines[i], strlen(lines[i]), &row[i], &key[i],
                                     &why),
                  "%s", why.data);
        size_t len = row[i].len;
        if (s_keyed && s_keys_empty)
            dm_buf_append(&row[i], "\xb7", 2); /* a block of no keys: its magic and 0 */
        else if (s_keyed)
            dm_quality_keys_append(keys, row[i].data, len, &row[i]);
        in[i] = (dm_row_in_t){key[i].data, key[i].len, row[i].data, len};
    }
    dm_quality_keys_destroy(&keys);
    dm_quality_batch_t *qb = NULL;
    dm_store_hook_t hook;
    cr_assert_eq(dm_quality_batch_new(s_store, s_pid, s_schema, T_NOW, &qb, &hook, &why), DM_OK);
    if (s_keyed)
        dm_quality_batch_rows_keyed(qb);
    dm_quality_batch_expect_rows(qb, n);
    dm_quality_batch_use_scratch(qb, s_scratch);
    dm_quality__batch_set_fold_min(qb, fold_min);
    dm_quality__batch_set_table_max(qb, s_table_max);
    dm_quality_batch_end_run(qb);
    dm_batch_result_t res;
    cr_assert_eq(dm_store_commit_batch_hooked(s_store, s_pid, in, n, NULL, 0, "t",
                                              s_hookless ? NULL : &hook, &res, &why),
                 DM_OK, "%s", why.data);
    dm_quality_batch_destroy(&qb);
    for (size_t i = 0; i < n; i++) {
        dm_buf_free(&row[i]);
        dm_buf_free(&key[i]);
    }
    dm_buf_free(&why);
}

/* Commits rows "id:v,id:v,..." (id -1: the next fresh id) as one batch. */
static void s_batch(const char *rows, uint64_t fold_min)
{
    char lines[T_ROWS_MAX][64];
    size_t n = 0;
    for (const char *p = rows; *p && n < T_ROWS_MAX; n++) {
        int id, v, used = 0;
        cr_assert_eq(sscanf(p, "%d:%d%n", &id, &v, &used), 2, "%s", p);
        snprintf(lines[n], sizeof lines[n], "{\"id\":%d,\"v\":%d}", id < 0 ? s_next_id++ : id,
                 v);
        p += used;
        p += *p == ',';
    }
    s_commit(lines, n, fold_min);
}

/* Commits string values "a b c" (space-separated, fresh ids) as one batch. */
static void s_strings(const char *values, uint64_t fold_min)
{
    char lines[T_ROWS_MAX][64];
    size_t n = 0;
    for (const char *p = values; *p && n < T_ROWS_MAX; n++) {
        size_t l = strcspn(p, " ");
        snprintf(lines[n], sizeof lines[n], "{\"id\":%d,\"v\":\"%.*s\"}", s_next_id++,
                 (int)l, p);
        p += l;
        p += *p == ' ';
    }
    s_commit(lines, n, fold_min);
}

/* The unique check's result now: extra rows, groups (from the text) and
 * the first sample ("" when none). */
static void s_expect(double extra, const char *groups_text, const char *sample)
{
    dm_qreport_t r = {0};
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_quality_run(s_store, s_pid, s_c, T_NOW, false, &r, &why), DM_OK);
    cr_assert_eq(r.n, 1);
    const dm_qresult_t *x = &r.results[0];
    cr_assert_eq(x->observed, extra, "extra rows %g, want %g (%s)", x->observed, extra,
                 x->observed_text);
    cr_assert(strstr(x->observed_text, groups_text), "%s, want %s", x->observed_text,
              groups_text);
    cr_assert_str_eq(x->nsamples ? x->samples[0] : "", sample);
    dm_quality_report_clear(&r);
    dm_buf_free(&why);
}

typedef struct {
    size_t runs, index;
} s_layout;

static int s_count(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    (*(size_t *)ctx)++;
    return 0;
}

static dm_err s_layout_fn(dm_store_txn_t *t, void *ctx, dm_buf_t *why)
{
    s_layout *l = ctx;
    uint8_t d = DM_QTAG_PENDING, u = DM_QTAG_UNIQUE;
    dm_err err = dm_quality_db_each(t, s_pid, &d, 1, false, s_count, &l->runs, why);
    return err ? err : dm_quality_db_each(t, s_pid, &u, 1, false, s_count, &l->index, why);
}

/* Pending runs and index entries of the product now. */
static s_layout s_where(void)
{
    s_layout l = {0, 0};
    cr_assert_eq(dm_quality_db_view(s_store, s_layout_fn, &l, NULL), DM_OK);
    return l;
}

Test(uniq, the_vector_across_two_batches_and_a_fold)
{
    s_product(NULL);
    s_batch("-1:1,-1:2,-1:3", 4);
    cr_assert_eq(s_where().runs, 1);
    cr_assert_eq(s_where().index, 0);
    s_expect(0, "0 duplicate groups, 0 extra rows", "");
    s_batch("-1:3,-1:3", 4); /* 3 pending + 1 distinct = 4: not over the bound yet */
    s_expect(2, "1 duplicate group, 2 extra rows", "3");
    cr_assert_eq(s_where().runs, 2);
    s_batch("-1:4", 4); /* 5 > 4: folded */
    s_layout l = s_where();
    cr_assert_eq(l.runs, 0);
    cr_assert_eq(l.index, 4);
    s_expect(2, "1 duplicate group, 2 extra rows", "3");
    s_batch("-1:3", 4); /* on top of the folded index */
    s_expect(3, "1 duplicate group, 3 extra rows", "3");
    cr_assert_eq(s_where().runs, 1);
}

Test(uniq, fold_bound_grows_with_the_index)
{
    s_product(NULL);
    s_batch("-1:1,-1:2,-1:3,-1:4,-1:5,-1:6", 2); /* 6 > 2: folded at once */
    cr_assert_eq(s_where().index, 6);
    cr_assert_eq(s_where().runs, 0);
    /* bound: max(2, 4 x 6 entries) = 24 */
    s_batch("-1:7,-1:8,-1:9,-1:10,-1:11,-1:12,-1:13,-1:14,-1:15,-1:16,-1:17,-1:18", 2);
    s_batch("-1:19,-1:20,-1:21,-1:22,-1:23,-1:24,-1:25,-1:26,-1:27,-1:28,-1:29,-1:30", 2);
    cr_assert_eq(s_where().runs, 2); /* 24 pending: not over */
    s_batch("-1:1", 2); /* 25 > 24: folded; 1 now twice */
    s_layout l = s_where();
    cr_assert_eq(l.runs, 0);
    cr_assert_eq(l.index, 30);
    s_expect(1, "1 duplicate group, 1 extra row", "1");
}

Test(uniq, counts_survive_a_reopen_with_runs_pending)
{
    s_product(NULL);
    s_batch("-1:1,-1:2,-1:2", DM_QUALITY_UNIQ_FOLD_MIN);
    s_batch("-1:2,-1:3,-1:1", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(3, "2 duplicate groups, 3 extra rows", "2");
    cr_assert_eq(s_where().runs, 2);
    dm_store_destroy(&s_store);
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    s_expect(3, "2 duplicate groups, 3 extra rows", "2");
    s_batch("-1:3", DM_QUALITY_UNIQ_FOLD_MIN); /* the runs still count after the reopen */
    s_expect(4, "3 duplicate groups, 4 extra rows", "2");
    s_batch("-1:9", 1); /* and fold to the same answer */
    cr_assert_eq(s_where().runs, 0);
    cr_assert_eq(s_where().index, 4);
    s_expect(4, "3 duplicate groups, 4 extra rows", "2");
}

Test(uniq, upserts_move_a_value_across_a_fold)
{
    s_product("    primaryKey: id\n");
    s_batch("1:10,2:20", DM_QUALITY_UNIQ_FOLD_MIN);
    s_batch("2:10", 1); /* 20 leaves (-1, pending), 10 gains (+1): folded */
    cr_assert_eq(s_where().runs, 0);
    cr_assert_eq(s_where().index, 1); /* 20's count reached 0: its entry is gone */
    s_expect(1, "1 duplicate group, 1 extra row", "10");
    s_batch("2:30", DM_QUALITY_UNIQ_FOLD_MIN); /* 10 back to 1 with its 2 in the index */
    cr_assert_eq(s_where().runs, 1);
    s_expect(0, "0 duplicate groups, 0 extra rows", "");
    s_batch("1:30", DM_QUALITY_UNIQ_FOLD_MIN); /* 30: 1 pending + 1 = a group, split */
    s_expect(1, "1 duplicate group, 1 extra row", "30");
    s_batch("3:40", 1); /* folded: 10 gone, 30 twice */
    s_layout l = s_where();
    cr_assert_eq(l.runs, 0);
    cr_assert_eq(l.index, 2);
    s_expect(1, "1 duplicate group, 1 extra row", "30");
}

static dm_err s_corrupt_run(dm_store_txn_t *t, void *ctx, dm_buf_t *why)
{
    (void)ctx;
    uint8_t k[17] = {DM_QTAG_PENDING};
    uint64_t id = dm_quality__check_id(&s_c->checks[0]);
    for (int i = 8; i >= 1; i--, id >>= 8)
        k[i] = (uint8_t)id;
    k[16] = 1; /* the first run */
    return dm_quality_db_put(t, s_pid, k, sizeof k, "\xff\xff", 2, why);
}

Test(uniq, a_corrupt_run_is_rebuilt_from_the_rows)
{
    s_product(NULL);
    s_batch("-1:1,-1:1,-1:2", DM_QUALITY_UNIQ_FOLD_MIN);
    cr_assert_eq(dm_quality_db_update(s_store, s_corrupt_run, NULL, NULL), DM_OK);
    s_batch("-1:2", DM_QUALITY_UNIQ_FOLD_MIN);
    s_layout l = s_where();
    cr_assert_eq(l.runs, 0); /* the rebuild wrote the index directly */
    cr_assert_eq(l.index, 2);
    s_expect(2, "2 duplicate groups, 2 extra rows", "1");
    s_batch("-1:3", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(2, "2 duplicate groups, 2 extra rows", "1");
}

Test(uniq, values_sharing_long_prefixes_sort_and_count_exactly)
{
    /* Past the batch's common prefix the sort compares 8 bytes as one
     * integer: values equal there, or one a prefix of another, must still
     * sort as bytes do, or a run's search and the index walk miss them. */
    s_product_typed(NULL, "string");
    s_strings("cust-000000000001 cust-0000000000012 cust-000000000001 cust-00000000000 "
              "cust-0000000000012x cust-000000000002",
              DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(1, "1 duplicate group, 1 extra row", "cust-000000000001");
    s_strings("cust-0000000000012 cust-00000000000 zz cust-0000000000012x", 1); /* folded */
    cr_assert_eq(s_where().runs, 0);
    cr_assert_eq(s_where().index, 6);
    s_expect(4, "4 duplicate groups, 4 extra rows", "cust-000000000001");
    s_strings("x-prefix-AAAAAAAAAAAA-1 cust-0000000000012 a x-prefix-AAAAAAAAAAAA-2 "
              "cust-000000000002 x-prefix-AAAAAAAAAAAA-1",
              DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(7, "6 duplicate groups, 7 extra rows", "cust-000000000001");
}

Test(uniq, a_restart_builds_the_filter_from_the_index_and_the_runs)
{
    /* After a reopen the writer's filter and counts are gone: the first
     * batch builds the filter from the index AND the pending runs; a value
     * only in a run that the filter missed would count as new. */
    s_product(NULL);
    s_batch("-1:1,-1:2", 1); /* folded: 1 and 2 in the index */
    s_batch("-1:5,-1:6", DM_QUALITY_UNIQ_FOLD_MIN); /* 5 and 6 in a run */
    cr_assert_eq(s_where().runs, 1);
    dm_store_destroy(&s_store);
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    s_batch("-1:5,-1:1,-1:9", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(2, "2 duplicate groups, 2 extra rows", "1");
    s_batch("-1:6,-1:9,-1:5", DM_QUALITY_UNIQ_FOLD_MIN); /* 5 now cached, 6 and 9 read */
    s_expect(5, "4 duplicate groups, 5 extra rows", "1");
}

static dm_store_hook_t s_inner;

static void s_fail_begin(void *ctx) { s_inner.begin(ctx); }

static dm_err s_fail_row(void *ctx, const void *old_row, size_t old_len, const void *new_row,
                         size_t new_len, dm_buf_t *why)
{
    return s_inner.row(ctx, old_row, old_len, new_row, new_len, why);
}

/* The quality hook's finish runs (and updates the writer's cached counts),
 * then the batch fails: nothing of it commits. */
static dm_err s_fail_finish(void *ctx, dm_store_txn_t *txn, const dm_batch_result_t *result,
                            dm_buf_t *why)
{
    dm_err err = s_inner.finish(ctx, txn, result, why);
    cr_assert_eq(err, DM_OK);
    dm_buf_why(why, "test: the batch fails after the quality hook");
    return DM_ERR_INVALID;
}

/* Commits {"id":3,"v":7} through the hook, then fails the batch. */
static void s_aborted_batch(void)
{
    const char *line = "{\"id\":3,\"v\":7}";
    dm_buf_t row = DM_BUF_INIT, key = DM_BUF_INIT, why = DM_BUF_INIT;
    cr_assert(dm_schema_validate(s_schema, line, strlen(line), &row, &key, &why));
    dm_row_in_t in = {key.data, key.len, row.data, row.len};
    dm_quality_batch_t *qb = NULL;
    cr_assert_eq(dm_quality_batch_new(s_store, s_pid, s_schema, T_NOW, &qb, &s_inner, &why), DM_OK);
    dm_quality__batch_set_table_max(qb, s_table_max);
    dm_store_hook_t failing = {s_fail_begin, s_fail_row, s_fail_finish, s_inner.ctx};
    dm_batch_result_t res;
    cr_assert_neq(dm_store_commit_batch_hooked(s_store, s_pid, &in, 1, NULL, 0, "t", &failing,
                                               &res, &why),
                  DM_OK);
    dm_quality_batch_destroy(&qb);
    dm_buf_free(&row);
    dm_buf_free(&key);
    dm_buf_free(&why);
}

Test(uniq, a_batch_that_aborts_after_the_hook_leaves_no_trace_in_the_cached_counts)
{
    s_product("    primaryKey: id\n");
    s_batch("1:7", DM_QUALITY_UNIQ_FOLD_MIN);
    s_batch("2:7", DM_QUALITY_UNIQ_FOLD_MIN); /* read from the run: now cached, 2 */
    s_expect(1, "1 duplicate group, 1 extra row", "7");
    s_aborted_batch();
    s_expect(1, "1 duplicate group, 1 extra row", "7"); /* the stored state: unchanged */
    /* 7 loses a row: 2 -> 1 stored, no longer a group (3 -> 2 had the
     * aborted batch's count been kept) */
    s_batch("2:8", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(0, "0 duplicate groups, 0 extra rows", "");
    s_batch("3:8,4:9", 1); /* and a fold agrees */
    cr_assert_eq(s_where().runs, 0);
    s_expect(1, "1 duplicate group, 1 extra row", "8");
}

static dm_err s_old_filter(dm_store_txn_t *t, void *ctx, dm_buf_t *why)
{
    (void)ctx;
    uint8_t k[9] = {DM_QTAG_BLOOM};
    dm_quality__put64(k + 1, dm_quality__check_id(&s_c->checks[0]));
    return dm_quality_db_put(t, s_pid, k, sizeof k, "\0\0\0\0", 4, why);
}

static dm_err s_has_old_filter(dm_store_txn_t *t, void *ctx, dm_buf_t *why)
{
    uint8_t k[9] = {DM_QTAG_BLOOM};
    dm_quality__put64(k + 1, dm_quality__check_id(&s_c->checks[0]));
    dm_buf_t v = DM_BUF_INIT;
    dm_err err = dm_quality_db_get(t, s_pid, k, sizeof k, &v, why);
    *(bool *)ctx = err == DM_OK;
    dm_buf_free(&v);
    return err == DM_ERR_NOTFOUND ? DM_OK : err;
}

Test(uniq, a_filter_stored_by_an_older_build_is_deleted_and_not_read)
{
    s_product(NULL);
    s_batch("-1:1,-1:2", 1);
    s_batch("-1:3", DM_QUALITY_UNIQ_FOLD_MIN);
    cr_assert_eq(dm_quality_db_update(s_store, s_old_filter, NULL, NULL), DM_OK);
    dm_store_destroy(&s_store); /* the writer's filter goes; the stored one stays */
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    s_batch("-1:1,-1:3,-1:4", DM_QUALITY_UNIQ_FOLD_MIN); /* an empty stored filter would say new */
    s_expect(2, "2 duplicate groups, 2 extra rows", "1");
    bool has = true;
    cr_assert_eq(dm_quality_db_view(s_store, s_has_old_filter, &has, NULL), DM_OK);
    cr_assert_not(has);
}

/* ---- the writer's in-memory tables (quality_uniq_mem.c) ---- */

static void s_reopen(void)
{
    dm_store_destroy(&s_store);
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
}

/* The file of in-memory tables a clean close leaves (quality_uniq_bloom.c). */
static void s_tables_file(char *out, size_t cap, const char *suffix)
{
    int n = snprintf(out, cap, "%s/quality-unique.bin%s", s_dir, suffix);
    cr_assert(n > 0 && (size_t)n < cap);
}

static bool s_exists_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* A reopen as after a crash: no file of tables (the scan rebuilds them). */
static void s_reopen_without_tables(void)
{
    s_reopen();
    char path[PATH_MAX];
    s_tables_file(path, sizeof path, "");
    unlink(path);
}

Test(uniq, in_memory_no_index_is_written_and_a_restart_scans_the_rows)
{
    s_in_memory_product();
    s_batch("1:1,2:2,3:2,4:3", DM_QUALITY_UNIQ_FOLD_MIN);
    s_batch("5:3,6:3,4:1", DM_QUALITY_UNIQ_FOLD_MIN); /* 4 moves from 3 to 1 */
    s_expect(3, "3 duplicate groups, 3 extra rows", "2");
    s_layout l = s_where();
    cr_assert_eq(l.runs + l.index, 0);
    s_reopen_without_tables(); /* the table is gone: the next batch counts the rows again */
    s_batch("6:9,7:9,2:1", DM_QUALITY_UNIQ_FOLD_MIN); /* 3: 2 -> 1, 2: 2 -> 1, 1: 2 -> 3 */
    s_expect(3, "2 duplicate groups, 3 extra rows", "1");
    s_batch("8:2,9:3", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(5, "4 duplicate groups, 5 extra rows", "1");
    l = s_where();
    cr_assert_eq(l.runs + l.index, 0);
}

Test(uniq, in_memory_a_batch_that_aborts_is_undone)
{
    s_in_memory_product();
    s_batch("1:7,2:7", DM_QUALITY_UNIQ_FOLD_MIN);
    s_aborted_batch(); /* 7: 2 -> 3 in memory, then rolled back in the store */
    s_expect(1, "1 duplicate group, 1 extra row", "7");
    s_batch("2:8", DM_QUALITY_UNIQ_FOLD_MIN); /* 7: 2 -> 1 (not 3 -> 2) */
    s_expect(0, "0 duplicate groups, 0 extra rows", "");
    s_aborted_batch();
    s_aborted_batch(); /* twice in a row: undone each time */
    s_batch("3:8,4:7", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(2, "2 duplicate groups, 2 extra rows", "8");
}

Test(uniq, past_the_memory_bound_the_table_becomes_the_durable_index)
{
    s_in_memory_product();
    s_batch("1:1,2:2,3:2,4:3", DM_QUALITY_UNIQ_FOLD_MIN);
    s_batch("4:4", DM_QUALITY_UNIQ_FOLD_MIN); /* 3 back to 0 rows */
    s_table_max = 1; /* no room to grow: the table goes to the index */
    s_batch("5:1,6:5", DM_QUALITY_UNIQ_FOLD_MIN);
    s_layout l = s_where();
    cr_assert_eq(l.index, 3, "the table's live values 1, 2, 4 (3 has no rows)");
    cr_assert_eq(l.runs, 1, "the batch, applied on the index");
    s_expect(2, "2 duplicate groups, 2 extra rows", "2");
    s_table_max = DM_QUALITY_UNIQ_TABLES_MAX; /* durable for the rest of the process */
    s_batch("7:4,1:5", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(3, "3 duplicate groups, 3 extra rows", "2");
    cr_assert_eq(s_where().runs, 2);
}

Test(uniq, a_move_to_the_durable_index_that_aborts_is_not_trusted)
{
    s_in_memory_product();
    s_batch("1:7,2:7", DM_QUALITY_UNIQ_FOLD_MIN);
    s_table_max = 1;
    s_aborted_batch(); /* the table goes to an index in a batch that fails */
    s_layout l = s_where();
    cr_assert_eq(l.runs + l.index, 0);
    s_batch("2:8", DM_QUALITY_UNIQ_FOLD_MIN); /* 7: 2 -> 1, counted from the rows */
    s_expect(0, "0 duplicate groups, 0 extra rows", "");
    s_batch("3:8", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(1, "1 duplicate group, 1 extra row", "8");
    cr_assert_gt(s_where().index, 0);
}

Test(uniq, a_durable_index_is_dropped_when_a_restart_finds_the_values_fit)
{
    s_product("    primaryKey: id\n");
    s_batch("1:1,2:1,3:2", 1); /* on the index (s_table_max 0), folded */
    s_batch("4:2,1:3", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(1, "1 duplicate group, 1 extra row", "2");
    cr_assert_gt(s_where().runs + s_where().index, 0);
    s_reopen();
    s_table_max = DM_QUALITY_UNIQ_TABLES_MAX;
    s_batch("5:3,6:1", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(3, "3 duplicate groups, 3 extra rows", "2");
    s_layout l = s_where();
    cr_assert_eq(l.runs + l.index, 0);
    s_batch("5:4", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(2, "2 duplicate groups, 2 extra rows", "2");
}

/* A clean close writes the tables with the tokens of their committed
 * state; the next start reads them back (and deletes the file), and a
 * file older than the store's state is not trusted: its checks count
 * their rows again. */
Test(uniq, in_memory_a_clean_restart_reads_the_tables_back_and_a_stale_file_is_not_trusted)
{
    s_in_memory_product();
    s_batch("1:1,2:2,3:2,4:3", DM_QUALITY_UNIQ_FOLD_MIN);
    s_reopen();
    char path[PATH_MAX], old[PATH_MAX];
    s_tables_file(path, sizeof path, "");
    s_tables_file(old, sizeof old, ".old");
    cr_assert(s_exists_file(path), "a clean close writes the tables to %s", path);
    cr_assert_eq(link(path, old), 0); /* kept for later: stale then */
    s_batch("5:3,6:3,4:1", DM_QUALITY_UNIQ_FOLD_MIN); /* 4 moves from 3 to 1 */
    cr_assert(!s_exists_file(path), "the file is deleted once read");
    s_expect(3, "3 duplicate groups, 3 extra rows", "2");
    s_reopen();
    cr_assert_eq(rename(old, path), 0); /* the first file, older than the store */
    /* 1 held by ids 1 and 4: a third row is one more extra row, no new
     * group; the stale table (1 held once) would make it a new group */
    s_batch("8:1", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(4, "3 duplicate groups, 4 extra rows", "2");
    s_batch("9:1", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(5, "3 duplicate groups, 5 extra rows", "2");
}

/* A move to the durable index that aborts builds the durable path's
 * filter from the index it did not commit; back in memory, new values go
 * into the table only. A later move must not trust that filter: a value
 * added in memory meanwhile is found, not taken for new. */
Test(uniq, a_move_again_after_an_aborted_one_finds_the_values_added_in_memory)
{
    s_in_memory_product();
    s_batch("1:1,2:2", DM_QUALITY_UNIQ_FOLD_MIN);
    s_table_max = 1;
    s_aborted_batch(); /* to the index, with a filter of it, then undone */
    s_table_max = DM_QUALITY_UNIQ_TABLES_MAX;
    s_batch("4:4", DM_QUALITY_UNIQ_FOLD_MIN); /* back in memory */
    s_batch("5:5", DM_QUALITY_UNIQ_FOLD_MIN);
    s_table_max = 1;
    s_batch("6:5", DM_QUALITY_UNIQ_FOLD_MIN); /* to the index: 5 is held twice now */
    s_expect(1, "1 duplicate group, 1 extra row", "5");
}

/* Back in memory after a restart, the batch deletes the stale durable
 * index; if that batch aborts, the delete goes with it, and the next batch
 * (which undoes the aborted one from its log) must delete it again, or a
 * later move that aborts would leave that stale index to be trusted. */
Test(uniq, the_delete_of_a_stale_index_is_not_lost_with_an_aborted_batch)
{
    s_product("    primaryKey: id\n");
    s_batch("1:1,2:1", 1); /* on the index (s_table_max 0): 1 held twice */
    s_expect(1, "1 duplicate group, 1 extra row", "1");
    s_reopen();
    s_table_max = DM_QUALITY_UNIQ_TABLES_MAX;
    s_aborted_batch(); /* in memory again, its delete of the index undone */
    s_batch("4:4", DM_QUALITY_UNIQ_FOLD_MIN);
    s_layout l = s_where();
    cr_assert_eq(l.runs + l.index, 0, "the stale index is still there");
    s_batch("1:5", DM_QUALITY_UNIQ_FOLD_MIN); /* 1: 2 -> 1, no group */
    s_expect(0, "0 duplicate groups, 0 extra rows", "");
    s_table_max = 1;
    s_aborted_batch(); /* a move that aborts */
    s_batch("6:1", DM_QUALITY_UNIQ_FOLD_MIN); /* 1: 1 -> 2 */
    s_expect(1, "1 duplicate group, 1 extra row", "1");
}

/* The table a clean close wrote is the one the next start uses, not a
 * count of the rows: rows changed behind the checks' back (no hook) show
 * which. Then a file that is not whole is not read: the rows are counted. */
Test(uniq, in_memory_the_table_read_back_is_used_and_a_torn_file_is_not)
{
    s_in_memory_product();
    s_batch("1:1,2:2,3:2", DM_QUALITY_UNIQ_FOLD_MIN);
    s_reopen();
    s_hookless = true;
    s_batch("3:1", DM_QUALITY_UNIQ_FOLD_MIN); /* rows: 1 twice, 2 once; the table: 1 once, 2 twice */
    s_hookless = false;
    /* from the table read back: 2 goes 2 -> 3, one more extra row in the
     * one group (counted from the rows, 2 would go 1 -> 2, a second group) */
    s_batch("4:2", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(2, "1 duplicate group, 2 extra rows", "2");
    s_reopen();
    char path[PATH_MAX];
    s_tables_file(path, sizeof path, "");
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "a clean close writes %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    fclose(f);
    cr_assert_eq(truncate(path, size - 3), 0); /* torn: its last value cut */
    s_batch("5:1", DM_QUALITY_UNIQ_FOLD_MIN);
    /* counted from the rows, 1 (ids 1 and 3) goes 2 -> 3: one more extra
     * row in a group the stored counters never had; the torn file's table
     * (1 held once) would have made it a second group */
    s_expect(3, "1 duplicate group, 3 extra rows", "2");
    cr_assert(!s_exists_file(path), "a file not read whole is deleted too");
}

/* The keys the validator leaves after each row count as the hook's own
 * would: in memory and on the durable index, with upserts, null values
 * (never duplicates) and rows whose block lacks the check's key. */
static void s_keyed_vector(void)
{
    char nulls[][64] = {"{\"id\":20}", "{\"id\":21,\"v\":null}"};
    s_product("    primaryKey: id\n");
    s_batch("1:1,2:2,3:2,4:3", DM_QUALITY_UNIQ_FOLD_MIN);
    s_commit(nulls, 2, DM_QUALITY_UNIQ_FOLD_MIN);
    s_batch("5:3,6:3,4:1", DM_QUALITY_UNIQ_FOLD_MIN); /* 4 moves from 3 to 1 */
    s_expect(3, "3 duplicate groups, 3 extra rows", "2");
    s_keys_empty = true;
    s_batch("7:2,20:2,8:9", DM_QUALITY_UNIQ_FOLD_MIN); /* the null row 20 now holds 2 */
    s_expect(5, "3 duplicate groups, 5 extra rows", "2");
}

Test(uniq, keys_made_by_the_validator_count_as_the_hooks_own_in_memory)
{
    s_table_max = DM_QUALITY_UNIQ_TABLES_MAX;
    s_keyed = true;
    s_keyed_vector();
}

Test(uniq, keys_made_by_the_validator_count_as_the_hooks_own_on_the_index)
{
    s_keyed = true;
    s_keyed_vector();
}

Test(uniq, the_hook_takes_a_rows_key_from_the_block_after_it)
{
    s_in_memory_product();
    s_batch("1:1", DM_QUALITY_UNIQ_FOLD_MIN);
    /* a row of value 5 followed by the keys of a row of value 1: the
     * hook counts what the block says (the validator made it from the
     * very row, so they agree), which makes a group of 1 */
    const char *line = "{\"id\":2,\"v\":5}", *other = "{\"id\":9,\"v\":1}";
    dm_buf_t row = DM_BUF_INIT, key = DM_BUF_INIT, orow = DM_BUF_INIT, okey = DM_BUF_INIT;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert(dm_schema_validate(s_schema, line, strlen(line), &row, &key, &why));
    cr_assert(dm_schema_validate(s_schema, other, strlen(other), &orow, &okey, &why));
    dm_quality_keys_t *keys = NULL;
    cr_assert_eq(dm_quality_keys_new(s_c, s_schema, &keys, &why), DM_OK);
    size_t len = row.len;
    dm_quality_keys_append(keys, orow.data, orow.len, &row);
    dm_row_in_t in = {key.data, key.len, row.data, len};
    dm_quality_batch_t *qb = NULL;
    dm_store_hook_t hook;
    cr_assert_eq(dm_quality_batch_new(s_store, s_pid, s_schema, T_NOW, &qb, &hook, &why), DM_OK);
    dm_quality__batch_set_table_max(qb, s_table_max);
    dm_quality_batch_rows_keyed(qb);
    dm_batch_result_t res;
    cr_assert_eq(dm_store_commit_batch_hooked(s_store, s_pid, &in, 1, NULL, 0, "t", &hook, &res,
                                              &why),
                 DM_OK, "%s", why.data);
    dm_quality_batch_destroy(&qb);
    dm_quality_keys_destroy(&keys);
    s_expect(1, "1 duplicate group, 1 extra row", "5");
    dm_buf_free(&row);
    dm_buf_free(&key);
    dm_buf_free(&orow);
    dm_buf_free(&okey);
    dm_buf_free(&why);
}

Test(uniq, a_keyed_batch_that_rebuilds_the_check_reads_the_stored_rows_without_blocks)
{
    /* rows stored without the hook: the keyed batch that follows finds no
     * state on a product with rows, and rebuilds it from the stored rows
     * (which end where the row does: there is no block after them) */
    s_product("    primaryKey: id\n");
    s_hookless = true;
    s_batch("1:7,2:7,3:8", DM_QUALITY_UNIQ_FOLD_MIN);
    s_hookless = false;
    s_keyed = true;
    s_batch("4:8,5:9", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(2, "2 duplicate groups, 2 extra rows", "7");
}

Test(uniq, keyed_rows_of_a_product_without_a_key_count_for_two_unique_checks)
{
    /* no primary key: rows are hooked after the log is written; the block
     * holds two checks' keys, so the second check's lookup skips the first */
    q_product("apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: p\n"
              "  domain: d\n  version: 1.0.0\n  owner: {team: t, contact: t@c.com}\n"
              "spec:\n  schema:\n    fields:\n      - {name: id, type: int}\n"
              "      - {name: v, type: int}\n  quality:\n    checks:\n"
              "      - {rule: unique, column: v}\n"
              "      - {rule: unique, columns: [id, v]}\n");
    s_table_max = DM_QUALITY_UNIQ_TABLES_MAX;
    s_keyed = true;
    char first[][64] = {"{\"id\":1,\"v\":7}", "{\"id\":2,\"v\":7}", "{\"id\":3,\"v\":8}"};
    char again[][64] = {"{\"id\":1,\"v\":7}", "{\"id\":4}"};
    s_commit(first, 3, DM_QUALITY_UNIQ_FOLD_MIN);
    s_commit(again, 2, DM_QUALITY_UNIQ_FOLD_MIN);
    dm_qreport_t r = {0};
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_quality_run(s_store, s_pid, s_c, T_NOW, false, &r, &why), DM_OK);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.results[0].observed, 2, "v: 7 held by 3 rows, 2 extra (%s)",
                 r.results[0].observed_text);
    cr_assert_eq(r.results[1].observed, 1, "(id, v): (1, 7) held by 2 rows, 1 extra (%s)",
                 r.results[1].observed_text);
    dm_quality_report_clear(&r);
    dm_buf_free(&why);
}

Test(uniq, batches_passing_their_buffers_on_count_as_fresh_ones)
{
    /* each batch takes the last one's ops buffer, its bytes still there */
    s_scratch = dm_quality_scratch_new();
    cr_assert_not_null(s_scratch);
    s_keyed = true;
    s_in_memory_product();
    s_batch("1:1,2:2,3:2,4:3", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(1, "1 duplicate group, 1 extra row", "2");
    s_batch("5:3", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(2, "2 duplicate groups, 2 extra rows", "2");
    s_batch("6:7,7:8,3:9", DM_QUALITY_UNIQ_FOLD_MIN);
    s_expect(1, "1 duplicate group, 1 extra row", "3");
}
