/* test_store.c: the LMDB store: product registration outcomes, batch
 * commits (append, upsert, duplicates), quarantine, lookups, deletion,
 * catalog writes and the one line each failure appends to why. Map growth,
 * stale readers, reopen, crash safety and format upgrades are in
 * test_store_durable.c. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/catalog_db.h"
#include "fixture.h"
#include "storage/reader.h"
#include "storage/store.h"
#include "store_test.h"

Test(store, open_failure_names_the_directory_in_why_without_logging)
{
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/absent", s_dir);
    dm_buf_t why = DM_BUF_INIT;
    dm_buf_puts(&why, "earlier line");
    dm_store_t *st = NULL;
    cr_assert_eq(dm_store_open(missing, NULL, &st, &why), DM_ERR_IO);
    cr_assert_null(st);
    cr_assert(strncmp(why.data, "earlier line", 12) == 0, "%s", why.data); /* appended */
    cr_assert(strstr(why.data, missing), "%s", why.data);
    cr_assert_null(strchr(why.data, '\n'), "%s", why.data);
    dm_buf_free(&why);
}

Test(store, register_creates_product)
{
    dm_product_t in = s_prod("commerce", "orders", 1, 2, 3, 7), out, got;
    dm_register_outcome oc = DM_REGISTER_UNCHANGED;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, &out, NULL, NULL), DM_OK);
    cr_assert_eq(oc, DM_REGISTER_CREATED);
    cr_assert_neq(out.id, 0);
    cr_assert_str_eq(out.version, "1.2.3");
    cr_assert_gt(out.registered_ms, 0);
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &got, NULL), DM_OK);
    cr_assert_eq(got.id, out.id);
    cr_assert_str_eq(got.contract, in.contract);
    cr_assert_eq(got.contract_len, in.contract_len);
    cr_assert_eq(memcmp(got.hash, in.hash, DM_STORE_HASH_BYTES), 0);
    cr_assert_eq(got.version_minor, 2);
    dm_store_product_clear(&out);
    dm_store_product_clear(&got);
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "nope", &got, NULL), DM_ERR_NOTFOUND);
}

Test(store, register_same_version_and_hash_is_unchanged)
{
    uint32_t id = s_orders();
    dm_product_t in = s_prod("commerce", "orders", 1, 0, 0, 1), out;
    dm_register_outcome oc = DM_REGISTER_CREATED;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, &out, NULL, NULL), DM_OK);
    cr_assert_eq(oc, DM_REGISTER_UNCHANGED);
    cr_assert_eq(out.id, id);
    dm_store_product_clear(&out);
}

Test(store, register_upgrade_keeps_id_and_rows)
{
    uint32_t id = s_orders();
    dm_row_in_t rows[2] = {{NULL, 0, "a", 1}, {NULL, 0, "b", 1}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 2, NULL, 0, "", &r, NULL), DM_OK);
    dm_product_t in = s_prod("commerce", "orders", 1, 1, 0, 2), out;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, &out, NULL, NULL), DM_OK);
    cr_assert_eq(oc, DM_REGISTER_UPGRADED);
    cr_assert_eq(out.id, id);
    cr_assert_eq(out.records, 2);
    cr_assert_str_eq(out.version, "1.1.0");
    dm_store_product_clear(&out);
    cr_assert_eq(s_scan(s_store, id).n, 2);
}

Test(store, register_same_version_other_hash_conflicts)
{
    uint32_t id = s_orders();
    dm_product_t in = s_prod("commerce", "orders", 1, 0, 0, 9), prev;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, NULL, &prev, NULL), DM_ERR_CONFLICT);
    cr_assert_eq(prev.id, id);
    cr_assert_eq(prev.hash[0], 1);
    cr_assert_str_eq(prev.version, "1.0.0");
    dm_store_product_clear(&prev);
}

Test(store, register_lower_version_conflicts)
{
    dm_product_t in = s_prod("commerce", "orders", 2, 0, 0, 1), prev;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, NULL, NULL, NULL), DM_OK);
    in = s_prod("commerce", "orders", 1, 9, 9, 1);
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, NULL, &prev, NULL), DM_ERR_CONFLICT);
    cr_assert_eq(prev.version_major, 2);
    dm_store_product_clear(&prev);
}

Test(store, list_is_ordered_and_ids_distinct)
{
    dm_product_t a = s_prod("logistics", "shipments", 1, 0, 0, 1);
    dm_product_t b = s_prod("commerce", "orders", 1, 0, 0, 1);
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &a, &oc, NULL, NULL, NULL), DM_OK);
    cr_assert_eq(dm_store_product_register(s_store, &b, &oc, NULL, NULL, NULL), DM_OK);
    dm_product_t *list;
    size_t n;
    cr_assert_eq(dm_store_product_list(s_store, &list, &n, NULL), DM_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(list[0].domain, "commerce");
    cr_assert_str_eq(list[1].name, "shipments");
    cr_assert_neq(list[0].id, list[1].id);
    for (size_t i = 0; i < n; i++)
        dm_store_product_clear(&list[i]);
    free(list);
}

Test(store, rejects_domain_with_slash)
{
    dm_product_t a = s_prod("com/merce", "orders", 1, 0, 0, 1);
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &a, &oc, NULL, NULL, NULL), DM_ERR_INVALID);
}

Test(store, commit_appends_and_counts)
{
    uint32_t id = s_orders();
    dm_row_in_t rows[3] = {{NULL, 0, "r1", 2}, {NULL, 0, "r2", 2}, {NULL, 0, "r3", 2}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 3, NULL, 0, "", &r, NULL), DM_OK);
    cr_assert_eq(r.inserted, 3);
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 2, NULL, 0, "", &r, NULL), DM_OK);
    dm_product_t p;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, NULL), DM_OK);
    cr_assert_eq(p.records, 5);
    dm_store_product_clear(&p);
    s_scan_ctx c = s_scan(s_store, id);
    cr_assert_eq(c.n, 5);
    cr_assert(c.ordered);
    cr_assert_str_eq(c.first, "r1");
}

Test(store, commit_unknown_product_is_notfound)
{
    dm_row_in_t rows[1] = {{NULL, 0, "r1", 2}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, 42, rows, 1, NULL, 0, "", &r, NULL), DM_ERR_NOTFOUND);
}

Test(store, upsert_by_key_replaces_row)
{
    uint32_t id = s_orders();
    dm_row_in_t b1[2] = {{"a", 1, "a1", 2}, {"b", 1, "b1", 2}};
    dm_row_in_t b2[2] = {{"b", 1, "b2", 2}, {"c", 1, "c2", 2}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, b1, 2, NULL, 0, "", &r, NULL), DM_OK);
    cr_assert_eq(dm_store_commit_batch(s_store, id, b2, 2, NULL, 0, "", &r, NULL), DM_OK);
    cr_assert_eq(r.inserted, 1);
    cr_assert_eq(r.updated, 1);
    dm_buf_t row = DM_BUF_INIT;
    cr_assert_eq(dm_store_get_by_key(s_store, id, "b", 1, &row, NULL), DM_OK);
    cr_assert_str_eq(row.data, "b2");
    dm_buf_free(&row);
    dm_product_t p;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, NULL), DM_OK);
    cr_assert_eq(p.records, 3);
    dm_store_product_clear(&p);
    cr_assert_eq(s_scan(s_store, id).n, 3);
}

Test(store, duplicate_key_in_one_batch_later_wins)
{
    uint32_t id = s_orders();
    dm_row_in_t rows[4] = {{"k", 1, "v1", 2}, {"x", 1, "x1", 2}, {"k", 1, "v2", 2},
                           {"k", 1, "v3", 2}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 4, NULL, 0, "", &r, NULL), DM_OK);
    cr_assert_eq(r.inserted, 2);
    cr_assert_eq(r.updated, 2);
    dm_buf_t row = DM_BUF_INIT;
    cr_assert_eq(dm_store_get_by_key(s_store, id, "k", 1, &row, NULL), DM_OK);
    cr_assert_str_eq(row.data, "v3");
    dm_buf_free(&row);
    dm_product_t p;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, NULL), DM_OK);
    cr_assert_eq(p.records, 2);
    dm_store_product_clear(&p);
    cr_assert_eq(s_scan(s_store, id).n, 2);
}

/* Reopens the store with a tiny pk_recent so that index merges happen. */
static void s_reopen_small_recent(size_t recent_max)
{
    dm_store_destroy(&s_store);
    dm_store_opts_t opts = {.pk_recent_max = recent_max};
    cr_assert_eq(dm_store_open(s_dir, &opts, &s_store, NULL), DM_OK);
}

Test(store, upsert_across_index_merges)
{
    uint32_t id = s_orders();
    s_reopen_small_recent(3);
    enum { N = 40, ROUNDS = 3 };
    uint8_t keys[N][S_KEY_BYTES];
    char vals[N][48];
    dm_row_in_t rows[N];
    dm_batch_result_t r;
    for (int round = 0; round < ROUNDS; round++) {
        /* A few keys per batch, interleaved, so entries sit in both parts. */
        for (size_t off = 0; off < N; off += 7) {
            size_t n = N - off < 7 ? N - off : 7;
            for (size_t i = 0; i < n; i++) {
                size_t k = (off + i) * 17 % N;
                s_key(keys[i], k);
                snprintf(vals[i], sizeof vals[i], "k%zu-r%d", k, round);
                rows[i] = (dm_row_in_t){keys[i], S_KEY_BYTES, vals[i], strlen(vals[i])};
            }
            cr_assert_eq(dm_store_commit_batch(s_store, id, rows, n, NULL, 0, "", &r, NULL), DM_OK);
            cr_assert_eq(round == 0 ? r.inserted : r.updated, n);
        }
    }
    dm_product_t p;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, NULL), DM_OK);
    cr_assert_eq(p.records, N);
    dm_store_product_clear(&p);
    cr_assert_eq(s_scan(s_store, id).n, N);
    dm_buf_t row = DM_BUF_INIT;
    for (size_t k = 0; k < N; k++) {
        uint8_t key[S_KEY_BYTES];
        char want[48];
        s_key(key, k);
        snprintf(want, sizeof want, "k%zu-r%d", k, ROUNDS - 1);
        cr_assert_eq(dm_store_get_by_key(s_store, id, key, sizeof key, &row, NULL), DM_OK);
        cr_assert_str_eq(row.data, want);
    }
    dm_buf_free(&row);
}

Test(store, get_by_key_hit_and_miss)
{
    uint32_t id = s_orders();
    uint8_t k[S_KEY_BYTES];
    s_key(k, 7);
    dm_row_in_t rows[1] = {{k, sizeof k, "seven", 5}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 1, NULL, 0, "", &r, NULL), DM_OK);
    dm_buf_t row = DM_BUF_INIT;
    cr_assert_eq(dm_store_get_by_key(s_store, id, k, sizeof k, &row, NULL), DM_OK);
    cr_assert_eq(row.len, 5);
    cr_assert_eq(memcmp(row.data, "seven", 5), 0);
    s_key(k, 8);
    cr_assert_eq(dm_store_get_by_key(s_store, id, k, sizeof k, &row, NULL), DM_ERR_NOTFOUND);
    cr_assert_eq(row.len, 0);
    s_key(k, 7);
    cr_assert_eq(dm_store_get_by_key(s_store, id + 1, k, sizeof k, &row, NULL), DM_ERR_NOTFOUND);
    dm_buf_free(&row);
}

typedef struct {
    size_t n;
    uint64_t last;
    dm_quarantine_item_t first;
    char raw[64], reasons[64], source[64];
} s_q_ctx;

static int s_q_collect(void *arg, const dm_quarantine_item_t *it)
{
    s_q_ctx *c = arg;
    if (c->n == 0) {
        c->first = *it;
        snprintf(c->raw, sizeof c->raw, "%.*s", (int)it->raw_len, it->raw);
        snprintf(c->reasons, sizeof c->reasons, "%s", it->reasons);
        snprintf(c->source, sizeof c->source, "%s", it->source);
    }
    c->last = it->seq;
    c->n++;
    return 0;
}

Test(store, quarantine_roundtrip_with_paging)
{
    uint32_t id = s_orders();
    dm_quarantine_in_t q[5];
    char raws[5][32];
    for (int i = 0; i < 5; i++) {
        snprintf(raws[i], sizeof raws[i], "{bad %d}", i);
        q[i] = (dm_quarantine_in_t){.line = (uint64_t)(10 + i), .raw = raws[i],
                                    .raw_len = strlen(raws[i]), .orig_len = 1000,
                                    .reasons = "amount: not a number; id: missing"};
    }
    dm_row_in_t rows[1] = {{NULL, 0, "ok", 2}};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 1, q, 5, "orders.ndjson", &r, NULL), DM_OK);
    cr_assert_eq(r.quarantined, 5);
    s_q_ctx c = {0};
    bool more = false;
    cr_assert_eq(dm_store_quarantine_scan(s_store, id, 0, 2, s_q_collect, &c, &more, NULL), DM_OK);
    cr_assert_eq(c.n, 2);
    cr_assert(more);
    cr_assert_eq(c.first.line, 10);
    cr_assert_eq(c.first.orig_len, 1000);
    cr_assert_gt(c.first.at_ms, 0);
    cr_assert_str_eq(c.raw, "{bad 0}");
    cr_assert_str_eq(c.reasons, "amount: not a number; id: missing");
    cr_assert_str_eq(c.source, "orders.ndjson");
    uint64_t after = c.last;
    memset(&c, 0, sizeof c);
    cr_assert_eq(dm_store_quarantine_scan(s_store, id, after, 10, s_q_collect, &c, &more, NULL),
                 DM_OK);
    cr_assert_eq(c.n, 3);
    cr_assert_not(more);
    cr_assert_eq(c.first.line, 12);
    dm_product_t p;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, NULL), DM_OK);
    cr_assert_eq(p.quarantined, 5);
    cr_assert_eq(p.records, 1);
    dm_store_product_clear(&p);
}

Test(store, delete_removes_one_product_with_its_rows_index_and_quarantine)
{
    uint32_t a = s_orders();
    dm_product_t in = s_prod("commerce", "returns", 1, 0, 0, 2), out;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, &out, NULL, NULL), DM_OK);
    uint32_t b = out.id;
    dm_store_product_clear(&out);
    dm_row_in_t rows[2] = {{"a", 1, "a1", 2}, {"b", 1, "b1", 2}};
    dm_quarantine_in_t q = {7, "bad", 3, 3, "why"};
    dm_batch_result_t r;
    cr_assert_eq(dm_store_commit_batch(s_store, a, rows, 2, &q, 1, "f", &r, NULL), DM_OK);
    cr_assert_eq(dm_store_commit_batch(s_store, b, rows, 2, NULL, 0, "", &r, NULL), DM_OK);

    dm_product_t removed = {0};
    cr_assert_eq(dm_store_product_delete(s_store, "commerce", "orders", &removed, NULL), DM_OK);
    cr_assert_eq(removed.records, 2);
    cr_assert_eq(removed.quarantined, 1);
    dm_store_product_clear(&removed);
    dm_product_t p;
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, NULL), DM_ERR_NOTFOUND);
    cr_assert_eq(s_scan(s_store, a).n, 0);
    dm_buf_t row = DM_BUF_INIT;
    cr_assert_eq(dm_store_get_by_key(s_store, a, "a", 1, &row, NULL), DM_ERR_NOTFOUND);
    cr_assert_eq(dm_store_get_by_key(s_store, b, "a", 1, &row, NULL), DM_OK,
                 "the other product lost a row");
    dm_buf_free(&row);
    cr_assert_eq(s_scan(s_store, b).n, 2);
    cr_assert_eq(dm_store_product_delete(s_store, "commerce", "orders", NULL, NULL), DM_ERR_NOTFOUND);
    /* Registered again, the product starts empty under a new id. */
    uint32_t again = s_orders();
    cr_assert_neq(again, a, "product ids are never reused");
    cr_assert_eq(dm_store_product_get(s_store, "commerce", "orders", &p, NULL), DM_OK);
    cr_assert_eq(p.records, 0);
    dm_store_product_clear(&p);
}

/* The node loop writes the catalog: a write that needs a bigger map while a
 * query holds a reader gives up at once (busy, nothing stored) instead of
 * waiting up to the query's time limit; once the reader is gone it grows
 * the map and succeeds. */
Test(store, catalog_write_never_waits_for_readers_to_grow_the_map)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_store"));
    dm_store_opts_t opts = {.initial_map_bytes = (size_t)1 << 20,
                            .max_map_bytes = (size_t)64 << 20};
    cr_assert_eq(dm_store_open(s_dir, &opts, &s_store, NULL), DM_OK);
    enum { N = 64, VAL = 64 * 1024 }; /* 4 MiB: more than the 1 MiB map */
    static char val[VAL];
    static char keys[N][16];
    static dm_store_catalog_op_t ops[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%03d", i);
        ops[i] = (dm_store_catalog_op_t){keys[i], strlen(keys[i]), val, VAL};
    }
    size_t before = dm_store_map_size(s_store);
    dm_reader_t *r = NULL;
    cr_assert_eq(dm_reader_open(s_store, &r, NULL), DM_OK);
    cr_assert_eq(dm_catalog_db_write(s_store, ops, N, NULL), DM_ERR_BUSY);
    cr_assert_eq(dm_store_map_size(s_store), before);
    dm_reader_close(&r);
    cr_assert_eq(dm_catalog_db_write(s_store, ops, N, NULL), DM_OK);
    cr_assert_gt(dm_store_map_size(s_store), before);
}

/* ---- a failing write reports its reason in why and logs nothing ---- */

Test(store, commit_to_unknown_product_says_so_in_why, .init = cr_redirect_stderr)
{
    dm_row_in_t rows[1] = {{NULL, 0, "r1", 2}};
    dm_batch_result_t r;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_store_commit_batch(s_store, 42, rows, 1, NULL, 0, "", &r, &why),
                 DM_ERR_NOTFOUND);
    cr_assert_not_null(strstr(why.data, "product 42 is not registered"), "%s", why.data);
    dm_buf_free(&why);
    fflush(stderr);
    cr_assert_stderr_eq_str("", "the store logged a failure it returned");
}

Test(store, commit_with_an_oversized_key_names_the_row_in_why, .init = cr_redirect_stderr)
{
    uint32_t id = s_orders();
    static char key[4096];
    memset(key, 'k', sizeof key);
    dm_row_in_t rows[2] = {{"a", 1, "r1", 2}, {key, sizeof key, "r2", 2}};
    dm_batch_result_t r;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_store_commit_batch(s_store, id, rows, 2, NULL, 0, "", &r, &why),
                 DM_ERR_TOOBIG);
    cr_assert_not_null(strstr(why.data, "row 1 of a batch"), "%s", why.data);
    cr_assert_not_null(strstr(why.data, "4096-byte key"), "%s", why.data);
    cr_assert_null(strchr(why.data, '\n'), "%s", why.data);
    cr_assert_eq(s_scan(s_store, id).n, 0);
    dm_buf_free(&why);
    fflush(stderr);
    cr_assert_stderr_eq_str("", "the store logged a failure it returned");
}

Test(store, register_refusal_names_the_product_in_why)
{
    dm_product_t a = s_prod("com/merce", "orders", 1, 0, 0, 1);
    dm_register_outcome oc;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_store_product_register(s_store, &a, &oc, NULL, NULL, &why), DM_ERR_INVALID);
    cr_assert_not_null(strstr(why.data, "'com/merce/orders'"), "%s", why.data);
    dm_buf_free(&why);
}

Test(store, catalog_write_with_an_empty_key_says_so_in_why)
{
    dm_store_catalog_op_t op = {.key = "", .key_len = 0, .val = "v", .val_len = 1};
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_db_write(s_store, &op, 1, &why), DM_ERR_TOOBIG);
    cr_assert_not_null(strstr(why.data, "catalog key of 0 bytes"), "%s", why.data);
    dm_buf_free(&why);
}
