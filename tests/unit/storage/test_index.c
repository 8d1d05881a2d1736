/* test_index.c: the primary-key index as sorted runs (storage/index.c):
 * upserts against a model through every kind of merge (pk_recent flushes,
 * merges at once, merges in steps across commits and a reopen), the batch
 * hook's old rows, key-range walks that step over their range only, runs
 * of one LMDB entry per key (stores written before blocks) read and merged,
 * and kill -9 in the middle of merges. */
#include <criterion/criterion.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "storage/index_bloom.h"
#include "storage/reader.h"
#include "storage/store.h"
#include "storage/store_int.h"

#define S_KEYS 3000     /* key space of the model */
#define S_KEY_BYTES 8
#define S_VAL_MAX 32

static char s_dir[PATH_MAX];
static dm_store_t *s_store;
static uint32_t s_pid;
static int s_model[S_KEYS]; /* version of each key's row, 0: absent */

/* Tiny index shape: pk_recent flushes at 16 entries and merges above 64
 * entries go in steps of 4 entries per key of the batch. */
static size_t s_recent_max = 16;

static void s_open(void)
{
    dm_store_opts_t opts = {.pk_recent_max = s_recent_max};
    cr_assert_eq(dm_store_open(s_dir, &opts, &s_store, NULL), DM_OK);
    s_store->sync_merge_max = 64;
    s_store->merge_step_min = 1;
}

static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_index"));
    s_open();
    dm_product_t in = {.domain = "commerce", .name = "orders", .version = "1.0.0",
                       .version_major = 1, .contract = "{}", .contract_len = 2}, out;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, &out, NULL, NULL), DM_OK);
    s_pid = out.id;
    dm_store_product_clear(&out);
    memset(s_model, 0, sizeof s_model);
}

static void s_teardown(void)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
}

TestSuite(index, .init = s_setup, .fini = s_teardown);

static void s_key(uint8_t *k, size_t i)
{
    for (int b = 0; b < S_KEY_BYTES; b++) /* spread: neighbours land far apart */
        k[b] = (uint8_t)((i * 2654435761u) >> (b % 4 * 8)) ^ (uint8_t)b;
    k[0] = (uint8_t)(i >> 8); /* but keep the order of i in the first bytes */
    k[1] = (uint8_t)i;
}

static uint64_t s_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* What the hook saw: rows that replaced a stored row, and mismatches. */
typedef struct {
    size_t replaced, wrong;
    const int *before; /* the model before the batch */
} s_hook_ctx;

static dm_err s_hook_row(void *ctx, const void *old_row, size_t old_len, const void *new_row,
                         size_t new_len, dm_buf_t *why)
{
    (void)why;
    s_hook_ctx *h = ctx;
    unsigned k, v, ok, ov;
    char nb[S_VAL_MAX + 1], ob[S_VAL_MAX + 1];
    snprintf(nb, sizeof nb, "%.*s", (int)new_len, (const char *)new_row);
    if (sscanf(nb, "%u=%u", &k, &v) != 2 || k >= S_KEYS) {
        h->wrong++;
        return DM_OK;
    }
    if (!old_row) {
        h->wrong += h->before[k] != 0;
        return DM_OK;
    }
    h->replaced++;
    snprintf(ob, sizeof ob, "%.*s", (int)old_len, (const char *)old_row);
    if (sscanf(ob, "%u=%u", &ok, &ov) != 2 || ok != k || (int)ov != h->before[k])
        h->wrong++;
    return DM_OK;
}

/* Commits n random keys (some twice) with version ver; checks the counts
 * and what the hook saw against the model. */
static void s_batch(uint64_t *rng, size_t n, int ver)
{
    uint8_t (*keys)[S_KEY_BYTES] = calloc(n, S_KEY_BYTES);
    char (*vals)[S_VAL_MAX] = calloc(n, S_VAL_MAX);
    dm_row_in_t *rows = calloc(n, sizeof *rows);
    int *before = malloc(sizeof s_model);
    cr_assert(keys && vals && rows && before);
    memcpy(before, s_model, sizeof s_model);
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = s_rand(rng) % S_KEYS;
        s_key(keys[i], k);
        snprintf(vals[i], S_VAL_MAX, "%zu=%d", k, ver);
        rows[i] = (dm_row_in_t){keys[i], S_KEY_BYTES, vals[i], strlen(vals[i])};
        fresh += s_model[k] == 0;
        s_model[k] = ver;
    }
    s_hook_ctx h = {.before = before};
    dm_store_hook_t hook = {.row = s_hook_row, .ctx = &h};
    dm_batch_result_t r;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_store_commit_batch_hooked(s_store, s_pid, rows, n, NULL, 0, "", &hook, &r,
                                              &why),
                 DM_OK, "%s", why.data ? why.data : "");
    cr_assert_eq(r.inserted, fresh);
    cr_assert_eq(r.inserted + r.updated, n);
    cr_assert_eq(h.wrong, 0, "the hook saw %zu wrong old rows", h.wrong);
    dm_buf_free(&why);
    free(keys);
    free(vals);
    free(rows);
    free(before);
}

/* Every key: lookup, reader lookup and a full key-order walk agree with
 * the model. */
static void s_check_model(void)
{
    dm_buf_t row = DM_BUF_INIT;
    size_t live = 0;
    for (size_t k = 0; k < S_KEYS; k++) {
        uint8_t key[S_KEY_BYTES];
        s_key(key, k);
        dm_err err = dm_store_get_by_key(s_store, s_pid, key, sizeof key, &row, NULL);
        if (!s_model[k]) {
            cr_assert_eq(err, DM_ERR_NOTFOUND, "key %zu should be absent", k);
            continue;
        }
        live++;
        char want[S_VAL_MAX];
        snprintf(want, sizeof want, "%zu=%d", k, s_model[k]);
        cr_assert_eq(err, DM_OK, "key %zu missing", k);
        cr_assert_str_eq(row.data, want);
    }
    dm_buf_free(&row);
    dm_reader_t *rd;
    dm_reader_cursor_t *cur;
    cr_assert_eq(dm_reader_open(s_store, &rd, NULL), DM_OK);
    uint64_t count;
    cr_assert_eq(dm_reader_count(rd, s_pid, &count, NULL), DM_OK);
    cr_assert_eq(count, live);
    cr_assert_eq(dm_reader_cursor_open(rd, &cur, NULL), DM_OK);
    dm_store_bound_t all = {NULL, 0, true};
    cr_assert_eq(dm_reader_cursor_range(cur, s_pid, &all, &all, true, NULL), DM_OK);
    size_t walked = 0;
    uint8_t prev[S_KEY_BYTES] = {0};
    const void *r, *k;
    size_t rlen, klen;
    uint64_t seq;
    while (dm_reader_cursor_next(cur, &seq, &r, &rlen, &k, &klen, NULL) == DM_OK) {
        cr_assert_eq(klen, S_KEY_BYTES);
        cr_assert(walked == 0 || memcmp(prev, k, S_KEY_BYTES) < 0, "keys out of order");
        memcpy(prev, k, S_KEY_BYTES);
        unsigned kk, v;
        char buf[S_VAL_MAX + 1];
        snprintf(buf, sizeof buf, "%.*s", (int)rlen, (const char *)r);
        cr_assert_eq(sscanf(buf, "%u=%u", &kk, &v), 2);
        cr_assert_eq((int)v, s_model[kk], "key %u: stale version %u in the walk", kk, v);
        walked++;
    }
    cr_assert_eq(walked, live);
    dm_reader_cursor_close(&cur);
    dm_reader_close(&rd);
}

/* The run list as the store keeps it. */
static dm_store__runs_t s_runs(void)
{
    MDB_txn *txn;
    dm_store__runs_t runs;
    cr_assert_eq(dm_store__read_begin(s_store, &txn, NULL), DM_OK);
    cr_assert_eq(dm_store__runs_get(s_store, txn, s_pid, &runs, NULL), DM_OK);
    dm_store__read_end(s_store, txn);
    return runs;
}

Test(index, upserts_match_a_model_through_every_kind_of_merge)
{
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    bool stepped = false, flushed_small = false;
    int mid = 0; /* lookups checked with a merge half done: its output and
                  * inputs are then skipped by the position, not filters */
    for (int ver = 1; ver <= 120; ver++) {
        /* Mostly run-sized batches, some small ones that go to pk_recent. */
        size_t n = ver % 5 == 0 ? 1 + s_rand(&rng) % 3 : 1 + s_rand(&rng) % 90;
        flushed_small |= n < 16 / DM_STORE_RUN_MIN_DIV + 1;
        s_batch(&rng, n, ver);
        dm_store__runs_t runs = s_runs();
        stepped |= runs.merge_in > 0;
        if (ver % 30 == 0 || (runs.merge_in && runs.pos_len && mid < 6 && ++mid))
            s_check_model();
    }
    cr_assert(stepped, "no merge went in steps: the test does not cover them");
    cr_assert(mid > 0, "no lookup ran with a merge half done");
    cr_assert(s_runs().n < DM_STORE_RUNS_MAX);
    s_check_model();
}

Test(index, a_merge_in_steps_survives_a_reopen)
{
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int ver = 1;
    while (s_runs().merge_in == 0 && ver < 500)
        s_batch(&rng, 40, ver++);
    cr_assert(s_runs().merge_in > 0, "no merge in steps started");
    dm_store_destroy(&s_store);
    s_open();
    s_check_model(); /* half-merged: inputs above the position, output below */
    for (int i = 0; i < 40; i++)
        s_batch(&rng, 40, ver++);
    s_check_model();
}

/* The writer's product filter (index_pkf.c) answers "new" for a key
 * before any run's filter: it must hold every key the index holds, those
 * of the runs and of pk_recent when it is built after a reopen, and each
 * new key a batch writes after; the file a close writes is read back only
 * by the next open of an unchanged store (index_pkf_file.c). (A key it missed would be stored twice:
 * s_batch's counts and hook catch that too.) */
Test(index, the_product_filter_holds_every_stored_key_across_a_reopen)
{
    uint64_t rng = 0x5851F42D4C957F2Dull;
    int ver = 1;
    dm_store_destroy(&s_store);
    s_recent_max = 1024; /* batches under 32 keys go to pk_recent, larger ones are runs */
    s_open();
    for (; ver <= 30; ver++)
        s_batch(&rng, 1 + s_rand(&rng) % 60, ver);
    dm_store_destroy(&s_store); /* writes pkf.bin */
    char file[PATH_MAX + 16], stale[PATH_MAX + 16];
    snprintf(file, sizeof file, "%s/pkf.bin", s_dir);
    snprintf(stale, sizeof stale, "%s/stale.bin", s_dir);
    cr_assert_eq(rename(file, stale), 0, "no filter file was written at the close");
    s_open(); /* no file: the first batch walks the keys */
    for (int i = 0; i < 10; i++, ver++)
        s_batch(&rng, 1 + s_rand(&rng) % 60, ver);
    dm_store_destroy(&s_store);
    cr_assert_eq(rename(stale, file), 0); /* a file from before those batches */
    s_open();
    cr_assert_eq(s_store->npkf, 0, "a file older than the store was read");
    for (int i = 0; i < 10; i++, ver++)
        s_batch(&rng, 1 + s_rand(&rng) % 60, ver);
    dm_store_destroy(&s_store);
    s_open(); /* the file of the last close: read back */
    cr_assert_eq(s_store->npkf, 1, "the filter written at the close was not read back");
    cr_assert_neq(access(file, F_OK), 0, "the file outlived its open");
    for (int i = 0; i < 10; i++, ver++)
        s_batch(&rng, 1 + s_rand(&rng) % 60, ver);
    cr_assert_eq(s_store->npkf, 1, "no product filter was built");
    const dm_store__pkf_t *f = s_store->pkf[0];
    cr_assert_not_null(f->bits);
    size_t held = 0, absent_said_maybe = 0, absent = 0;
    for (size_t k = 0; k < S_KEYS; k++) {
        uint8_t key[S_KEY_BYTES];
        s_key(key, k);
        bool maybe = dm_store__pkf_maybe(f, dm_index_bloom_hash(key, sizeof key));
        if (s_model[k]) {
            cr_assert(maybe, "stored key %zu is not in the product filter", k);
            held++;
        } else {
            absent++;
            absent_said_maybe += maybe;
        }
    }
    cr_assert_gt(held, 0);
    cr_assert_lt(absent_said_maybe * 20, absent + 20, "the filter says maybe to %zu of %zu "
                 "absent keys", absent_said_maybe, absent);
    s_check_model();
    s_recent_max = 16;
}

/* Rewrites every run of the product with one LMDB entry per key ([pid][run
 * id][key] -> 8-byte seq), as stores written before blocks hold them. */
static dm_err s_unblock_runs(MDB_txn *txn, void *ctx, dm_buf_t *why)
{
    (void)ctx;
    dm_store__runs_t runs;
    dm_err err = dm_store__runs_get(s_store, txn, s_pid, &runs, why);
    for (size_t i = 0; i < runs.n && !err; i++) {
        MDB_dbi db = dm_store__run_db(s_store, &runs.run[i]);
        uint8_t prefix[DM_STORE_RUN_PREFIX_BYTES];
        dm_store__put_be32(prefix, s_pid);
        dm_store__put_be32(prefix + DM_STORE_PID_BYTES, runs.run[i].id);
        uint8_t (*keys)[S_KEY_BYTES] = calloc(S_KEYS, S_KEY_BYTES);
        uint64_t *seqs = calloc(S_KEYS, sizeof *seqs);
        size_t n = 0;
        dm_store__iter_t it;
        err = dm_store__iter_open(&it, txn, db, prefix, sizeof prefix, why);
        if (!err)
            err = dm_store__iter_seek(&it, NULL, 0, s_store->max_key_bytes, why);
        for (; !err && it.valid && n < S_KEYS; err = dm_store__iter_next(&it, why)) {
            cr_assert_eq(it.len, S_KEY_BYTES);
            memcpy(keys[n], it.key, S_KEY_BYTES);
            seqs[n++] = it.seq;
        }
        dm_store__iter_close(&it);
        if (!err)
            err = dm_store__range_delete(txn, db, prefix, sizeof prefix, NULL, 0,
                                         s_store->max_key_bytes, why);
        for (size_t j = 0; j < n && !err; j++) {
            uint8_t k[DM_STORE_RUN_PREFIX_BYTES + S_KEY_BYTES], v[DM_STORE_SEQ_BYTES];
            memcpy(k, prefix, sizeof prefix);
            memcpy(k + sizeof prefix, keys[j], S_KEY_BYTES);
            dm_store__put_be64(v, seqs[j]);
            MDB_val key = {sizeof k, k}, val = {sizeof v, v};
            err = dm_store__mdb_why("put", mdb_put(txn, db, &key, &val, 0), why);
        }
        free(keys);
        free(seqs);
    }
    return err;
}

Test(index, runs_of_one_entry_per_key_are_read_and_merged_into_blocks)
{
    uint64_t rng = 0xD1B54A32D192ED03ull;
    int ver = 1;
    while (s_runs().merge_in == 0 && ver < 500) /* a merge in steps half done, too */
        s_batch(&rng, 40, ver++);
    cr_assert(s_runs().merge_in > 0, "no merge in steps started");
    cr_assert_eq(dm_store__write(s_store, "unblock", s_unblock_runs, NULL, NULL), DM_OK);
    s_check_model(); /* lookups and walks through one-entry "blocks" */
    for (int i = 0; i < 60; i++) /* merges read them and write blocks */
        s_batch(&rng, 40, ver++);
    s_check_model();
}

Test(index, a_key_range_walks_only_its_range)
{
    s_store->sync_merge_max = (uint64_t)1 << 40;
    uint64_t rng = 7;
    for (int ver = 1; ver <= 30; ver++)
        s_batch(&rng, 300, ver);
    cr_assert_gt(s_runs().n, 2, "the walk should merge several runs");
    size_t live = 0;
    for (size_t k = 0; k < S_KEYS; k++)
        live += s_model[k] != 0;
    /* Keys k with first byte 3: k in [768, 1024). */
    uint8_t lo[1] = {3}, hi[1] = {3};
    dm_store_bound_t blo = {lo, 1, true}, bhi = {hi, 1, true};
    dm_reader_t *rd;
    dm_reader_cursor_t *cur;
    cr_assert_eq(dm_reader_open(s_store, &rd, NULL), DM_OK);
    cr_assert_eq(dm_reader_cursor_open(rd, &cur, NULL), DM_OK);
    cr_assert_eq(dm_reader_cursor_range(cur, s_pid, &blo, &bhi, false, NULL), DM_OK);
    size_t got = 0, want = 0;
    for (size_t k = 768; k < 1024; k++)
        want += s_model[k] != 0;
    const void *k;
    size_t klen;
    while (dm_reader_cursor_next(cur, NULL, NULL, NULL, &k, &klen, NULL) == DM_OK) {
        cr_assert_eq(((const uint8_t *)k)[0], 3);
        got++;
    }
    uint64_t walked = dm_reader_cursor_walked(cur);
    dm_reader_cursor_close(&cur);
    dm_reader_close(&rd);
    cr_assert_eq(got, want);
    /* Its keys, their stale copies in older runs and one step past the end
     * per run: a tenth of the product at most, not all of it. */
    cr_assert_leq(walked, 2 * want + DM_STORE_RUNS_MAX + 1, "walked %llu for %zu rows",
                  (unsigned long long)walked, want);
    cr_assert_lt(walked, live / 4);
}

/* Fills batch ver of n keys from rng into keys/vals/rows (NULL: model
 * only) and applies it to model. */
static void s_fill(uint64_t *rng, size_t n, int ver, uint8_t (*keys)[S_KEY_BYTES],
                   char (*vals)[S_VAL_MAX], dm_row_in_t *rows, int *model)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = s_rand(rng) % S_KEYS;
        model[k] = ver;
        if (!rows)
            continue;
        s_key(keys[i], k);
        snprintf(vals[i], S_VAL_MAX, "%zu=%d", k, ver);
        rows[i] = (dm_row_in_t){keys[i], S_KEY_BYTES, vals[i], strlen(vals[i])};
    }
}

enum { S_CRASH_BATCH = 50, S_CRASH_SEED = 99 };

/* Child of the kill -9 test: commits batch after batch, writing the number
 * of the last acknowledged one to fd. */
static void s_commit_forever(int fd)
{
    static uint8_t keys[S_CRASH_BATCH][S_KEY_BYTES];
    static char vals[S_CRASH_BATCH][S_VAL_MAX];
    static dm_row_in_t rows[S_CRASH_BATCH];
    static int model[S_KEYS];
    s_open();
    uint64_t rng = S_CRASH_SEED;
    for (int ver = 1;; ver++) {
        s_fill(&rng, S_CRASH_BATCH, ver, keys, vals, rows, model);
        if (dm_store_commit_batch(s_store, s_pid, rows, S_CRASH_BATCH, NULL, 0, "", NULL,
                                  NULL) != DM_OK)
            _exit(2);
        if (write(fd, &ver, sizeof ver) != (ssize_t)sizeof ver)
            _exit(3);
    }
}

/* Whether every key's lookup matches model. */
static bool s_store_is(const int *model)
{
    dm_buf_t row = DM_BUF_INIT;
    bool same = true;
    for (size_t k = 0; k < S_KEYS && same; k++) {
        uint8_t key[S_KEY_BYTES];
        s_key(key, k);
        dm_err err = dm_store_get_by_key(s_store, s_pid, key, sizeof key, &row, NULL);
        char want[S_VAL_MAX];
        snprintf(want, sizeof want, "%zu=%d", k, model[k]);
        same = model[k] ? err == DM_OK && strcmp(row.data, want) == 0 : err == DM_ERR_NOTFOUND;
    }
    dm_buf_free(&row);
    return same;
}

Test(index, kill_9_mid_merge_keeps_every_acknowledged_batch, .timeout = 60)
{
    enum { KILL_AFTER = 150 }; /* several merges in steps by then */
    dm_store_destroy(&s_store);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        close(fds[0]);
        s_commit_forever(fds[1]);
    }
    close(fds[1]);
    int last = 0, got;
    while (last < KILL_AFTER && read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
        last = got;
    usleep(2000); /* land somewhere inside a later commit */
    kill(child, SIGKILL);
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status), "child exited early with status %d", status);
    while (read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
        last = got;
    close(fds[0]);
    cr_assert_geq(last, KILL_AFTER);
    /* The store holds batch last, or last + 1 if its commit landed but its
     * acknowledgement did not. */
    static int after_last[S_KEYS], after_next[S_KEYS];
    uint64_t rng = S_CRASH_SEED;
    for (int ver = 1; ver <= last; ver++)
        s_fill(&rng, S_CRASH_BATCH, ver, NULL, NULL, NULL, after_last);
    memcpy(after_next, after_last, sizeof after_last);
    s_fill(&rng, S_CRASH_BATCH, last + 1, NULL, NULL, NULL, after_next);
    s_open();
    bool at_last = s_store_is(after_last);
    cr_assert(at_last || s_store_is(after_next), "the store matches neither batch %d nor %d",
              last, last + 1);
    memcpy(s_model, at_last ? after_last : after_next, sizeof s_model);
    s_check_model(); /* the walk and the counts too */
    uint64_t rng2 = 12345; /* and the index goes on working after the restart */
    for (int ver = last + 2; ver < last + 40; ver++)
        s_batch(&rng2, 60, ver);
    s_check_model();
}
