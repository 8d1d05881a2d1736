/* test_store_durable.c: what the store keeps across growth and failure:
 * the map grows (and another process's growth is adopted), readers of dead
 * processes are cleared, a reopen keeps everything, a SIGKILL mid-commit
 * keeps every committed batch, and a format-1 store is upgraded at open. */
#include <criterion/criterion.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "storage/reader.h"
#include "storage/store.h"
#include "store_test.h"

Test(store, map_grows_when_a_batch_does_not_fit)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_store"));
    dm_store_opts_t opts = {.initial_map_bytes = (size_t)1 << 20,
                            .max_map_bytes = (size_t)256 << 20};
    cr_assert_eq(dm_store_open(s_dir, &opts, &s_store, NULL), DM_OK);
    size_t before = dm_store_map_size(s_store);
    uint32_t id = s_orders();
    enum { N = 30000, ROW = 100 };
    static uint8_t keys[N][S_KEY_BYTES];
    static char payload[ROW];
    static dm_row_in_t rows[N];
    memset(payload, 'x', sizeof payload);
    for (size_t i = 0; i < N; i++) {
        s_key(keys[i], i * 7919);
        rows[i] = (dm_row_in_t){keys[i], S_KEY_BYTES, payload, ROW};
    }
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, N, NULL, 0, "", &r, NULL), DM_OK);
    cr_assert_eq(r.inserted, N);
    cr_assert_gt(dm_store_map_size(s_store), before);
    dm_product_t p;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, NULL), DM_OK);
    cr_assert_eq(p.records, N);
    dm_store_product_clear(&p);
    dm_buf_t row = DM_BUF_INIT;
    cr_assert_eq(dm_store_get_by_key(s_store, id, keys[N - 1], S_KEY_BYTES, &row, NULL), DM_OK);
    cr_assert_eq(row.len, ROW);
    dm_buf_free(&row);
}

/* Reopens the store with a 2 MiB map at most, registers orders, and
 * commits 5 MB of rows into it, which cannot fit; returns the commit's
 * result and leaves the product's id in *id. */
static dm_err s_overfill_small_map(uint32_t *id, dm_buf_t *why)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_store"));
    dm_store_opts_t opts = {.initial_map_bytes = (size_t)1 << 20,
                            .max_map_bytes = (size_t)2 << 20};
    cr_assert_eq(dm_store_open(s_dir, &opts, &s_store, NULL), DM_OK);
    *id = s_orders();
    enum { N = 5000, ROW = 1000 };
    static char payload[ROW];
    static dm_row_in_t rows[N];
    for (size_t i = 0; i < N; i++)
        rows[i] = (dm_row_in_t){NULL, 0, payload, ROW};
    dm_batch_result_t r;
    return dm_store_commit_batch(s_store, *id, rows, N, NULL, 0, "", &r, why);
}

Test(store, map_full_at_maximum_stores_nothing)
{
    uint32_t id;
    cr_assert_eq(s_overfill_small_map(&id, NULL), DM_ERR_MAPFULL);
    cr_assert_eq(s_scan(s_store, id).n, 0);
}

Test(store, map_full_at_maximum_says_what_to_raise_in_why)
{
    uint32_t id;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_overfill_small_map(&id, &why), DM_ERR_MAPFULL);
    cr_assert_not_null(strstr(why.data, "raise max_map_bytes"), "%s", why.data);
    dm_buf_free(&why);
}

Test(store, adopts_map_grown_by_another_process)
{
    dm_store_destroy(&s_store);
    dm_store_opts_t opts = {.initial_map_bytes = (size_t)1 << 20,
                            .max_map_bytes = (size_t)256 << 20};
    cr_assert_eq(dm_store_open(s_dir, &opts, &s_store, NULL), DM_OK);
    uint32_t id = s_orders();
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        enum { N = 20000, ROW = 200 };
        static char payload[ROW];
        static dm_row_in_t rows[N];
        for (size_t i = 0; i < N; i++)
            rows[i] = (dm_row_in_t){NULL, 0, payload, ROW};
        dm_store_t *mine = NULL;
        dm_batch_result_t r;
        if (dm_store_open(s_dir, &opts, &mine, NULL) != DM_OK ||
            dm_store_commit_batch(mine, id, rows, N, NULL, 0, "", &r, NULL) != DM_OK)
            _exit(1);
        dm_store_destroy(&mine);
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* This process still maps 1 MiB; the data now lies beyond it. */
    cr_assert_eq(s_scan(s_store, id).n, 20000);
    dm_row_in_t more[1] = {{NULL, 0, "x", 1}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, more, 1, NULL, 0, "", &r, NULL), DM_OK);
    cr_assert_gt(dm_store_map_size(s_store), (size_t)1 << 20);
}

static int s_die_in_scan(void *ctx, uint64_t seq, const void *row, size_t len)
{
    (void)ctx, (void)seq, (void)row, (void)len;
    _exit(0); /* leaves the read transaction's reader slot behind */
}

Test(store, stale_reader_of_dead_process_is_cleared)
{
    uint32_t id = s_orders();
    dm_row_in_t rows[1] = {{NULL, 0, "r", 1}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 1, NULL, 0, "", &r, NULL), DM_OK);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        dm_store_t *mine = NULL;
        if (dm_store_open(s_dir, NULL, &mine, NULL) != DM_OK)
            _exit(1);
        if (dm_store_scan(mine, id, s_die_in_scan, NULL, NULL) != DM_OK)
            _exit(2);
        _exit(3); /* the callback never returned */
    }
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    int cleared = 0;
    cr_assert_eq(dm_store_reader_check(s_store, &cleared, NULL), DM_OK);
    cr_assert_geq(cleared, 1);
    cr_assert_eq(dm_store_reader_check(s_store, &cleared, NULL), DM_OK);
    cr_assert_eq(cleared, 0);
}

Test(store, reopen_keeps_everything)
{
    uint32_t id = s_orders();
    dm_row_in_t rows[2] = {{"a", 1, "a1", 2}, {NULL, 0, "n1", 2}};
    dm_quarantine_in_t q[1] = {{.line = 3, .raw = "x", .raw_len = 1, .orig_len = 1,
                                .reasons = "bad"}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 2, q, 1, "src", &r, NULL), DM_OK);
    dm_store_destroy(&s_store);
    cr_assert_null(s_store);
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    dm_product_t p;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, NULL), DM_OK);
    cr_assert_eq(p.id, id);
    cr_assert_eq(p.records, 2);
    cr_assert_eq(p.quarantined, 1);
    dm_store_product_clear(&p);
    dm_buf_t row = DM_BUF_INIT;
    cr_assert_eq(dm_store_get_by_key(s_store, id, "a", 1, &row, NULL), DM_OK);
    cr_assert_str_eq(row.data, "a1");
    dm_buf_free(&row);
    cr_assert_eq(s_scan(s_store, id).n, 2);
    /* Ids keep counting after a reopen. */
    dm_product_t b = s_prod("commerce", "returns", 1, 0, 0, 1), out;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &b, &oc, &out, NULL, NULL), DM_OK);
    cr_assert_gt(out.id, id);
    dm_store_product_clear(&out);
}

/* Child of the SIGKILL test: commits keyed batches forever, writing the
 * number committed so far to fd after each commit. */
static void s_commit_forever(uint32_t id, int fd)
{
    enum { N = 2000 };
    static uint8_t keys[N][S_KEY_BYTES];
    static dm_row_in_t rows[N];
    dm_store_t *st = NULL;
    dm_store_opts_t opts = {.pk_recent_max = N * 3}; /* merges happen too */
    if (dm_store_open(s_dir, &opts, &st, NULL) != DM_OK)
        _exit(1);
    for (uint64_t b = 0;; b++) {
        for (size_t i = 0; i < N; i++) {
            s_key(keys[i], (b * N + i) * 2654435761u);
            rows[i] = (dm_row_in_t){keys[i], S_KEY_BYTES, "crash-test-row", 14};
        }
        dm_batch_result_t r;
        if (dm_store_commit_batch(st, id, rows, N, NULL, 0, "", &r, NULL) != DM_OK)
            _exit(2);
        uint64_t done = b + 1;
        if (write(fd, &done, sizeof done) != (ssize_t)sizeof done)
            _exit(3);
    }
}

Test(store, sigkill_mid_commit_keeps_committed_batches, .timeout = 60)
{
    enum { N = 2000, KILL_AFTER = 15 };
    uint32_t id = s_orders();
    dm_store_destroy(&s_store);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        close(fds[0]);
        s_commit_forever(id, fds[1]);
    }
    close(fds[1]);
    uint64_t last = 0, got;
    while (last < KILL_AFTER && read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
        last = got;
    usleep(3000); /* land somewhere inside a later commit */
    kill(child, SIGKILL);
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status), "child exited early with status %d", status);
    while (read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
        last = got;
    close(fds[0]);
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    dm_product_t p;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, NULL), DM_OK);
    cr_assert_geq(p.records, last * N);
    cr_assert_eq(p.records % N, 0, "a partial batch is visible: %llu rows",
                 (unsigned long long)p.records);
    dm_store_product_clear(&p);
    s_scan_ctx c = s_scan(s_store, id);
    cr_assert_geq(c.n, last * N);
    cr_assert(c.ordered);
}


/* Rewrites the store in s_dir as format 1 did it: every index entry in one
 * pk tree [pid][key] -> seq and meta "format" = 1. */
static void s_make_format_1(void)
{
    dm_store_destroy(&s_store);
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi pk, recent, meta;
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s", s_dir);
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 16), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    cr_assert_eq(mdb_env_open(env, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "pk", 0, &pk), 0);
    cr_assert_eq(mdb_dbi_open(txn, "pk_recent", 0, &recent), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_cursor *cur;
    MDB_val k, v;
    cr_assert_eq(mdb_cursor_open(txn, recent, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0) {
        cr_assert_eq(mdb_put(txn, pk, &k, &v, 0), 0);
        cr_assert_eq(mdb_cursor_del(cur, 0), 0);
    }
    mdb_cursor_close(cur);
    uint8_t one[4] = {0, 0, 0, 1};
    MDB_val fk = {6, "format"}, fv = {4, one};
    cr_assert_eq(mdb_put(txn, meta, &fk, &fv, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

Test(store, a_format_1_store_is_upgraded_at_open_and_keeps_every_key, .init = s_setup,
     .fini = s_teardown)
{
    uint32_t id = s_orders();
    uint8_t keys[3][S_KEY_BYTES];
    dm_row_in_t rows[3];
    for (int i = 0; i < 3; i++) {
        s_key(keys[i], (uint64_t)i + 1);
        rows[i] = (dm_row_in_t){keys[i], S_KEY_BYTES, "old", 3};
    }
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 3, NULL, 0, "", &r, NULL), DM_OK);
    s_make_format_1();
    dm_buf_t why = DM_BUF_INIT, row = DM_BUF_INIT;
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, &why), DM_OK, "%s", why.data);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(dm_store_get_by_key(s_store, id, keys[i], S_KEY_BYTES, &row, NULL), DM_OK);
        cr_assert_eq(row.len, 3);
    }
    /* An upsert finds the moved entry: it replaces, it does not add. */
    rows[0].row = "new";
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 1, NULL, 0, "", &r, NULL), DM_OK);
    cr_assert_eq(r.updated, 1);
    cr_assert_eq(r.inserted, 0);
    cr_assert_eq(dm_store_get_by_key(s_store, id, keys[0], S_KEY_BYTES, &row, NULL), DM_OK);
    cr_assert(memcmp(row.data, "new", 3) == 0);
    dm_buf_free(&row);
    dm_buf_free(&why);
}
