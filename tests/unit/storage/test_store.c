/* test_store.c: the LMDB store: product registration outcomes, batch
 * commits (append, upsert, duplicates), quarantine, lookups, deletion, map
 * growth, catalog writes, stale readers, reopen and crash safety under
 * SIGKILL, and the one line each failure appends to why. */
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

#include <lmdb.h>

#define S_KEY_BYTES 16

static char s_dir[PATH_MAX];
static dm_store_t *s_store;

/* Removes the store files and the directory. */
static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_store"));
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
}

static void s_teardown(void)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
}

TestSuite(store, .init = s_setup, .fini = s_teardown);

/* A product description with version maj.min.patch and a hash of byte h. */
static dm_product_t s_prod(const char *domain, const char *name, uint64_t maj, uint64_t min,
                           uint64_t patch, uint8_t h)
{
    static char version[64];
    snprintf(version, sizeof version, "%llu.%llu.%llu", (unsigned long long)maj,
             (unsigned long long)min, (unsigned long long)patch);
    dm_product_t p = {0};
    p.domain = (char *)domain;
    p.name = (char *)name;
    p.version = version;
    p.version_major = maj;
    p.version_minor = min;
    p.version_patch = patch;
    memset(p.hash, h, sizeof p.hash);
    p.contract = (char *)"{\"contract\":true}";
    p.contract_len = strlen(p.contract);
    return p;
}

/* Registers commerce/orders 1.0.0 and returns its id. */
static uint32_t s_orders(void)
{
    dm_product_t in = s_prod("commerce", "orders", 1, 0, 0, 1), out;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, &out, NULL, NULL), DM_OK);
    uint32_t id = out.id;
    dm_store_product_clear(&out);
    return id;
}

/* A 16-byte key from n (big-endian in the last bytes). */
static void s_key(uint8_t k[S_KEY_BYTES], uint64_t n)
{
    memset(k, 0xA5, S_KEY_BYTES);
    for (int i = 0; i < 8; i++)
        k[S_KEY_BYTES - 1 - i] = (uint8_t)(n >> (8 * i));
}

typedef struct {
    size_t n;
    uint64_t last_seq;
    bool ordered;
    char first[64];
} s_scan_ctx;

static int s_count_rows(void *arg, uint64_t seq, const void *row, size_t len)
{
    s_scan_ctx *c = arg;
    if (c->n > 0 && seq <= c->last_seq)
        c->ordered = false;
    if (c->n == 0)
        snprintf(c->first, sizeof c->first, "%.*s", (int)len, (const char *)row);
    c->last_seq = seq;
    c->n++;
    return 0;
}

static s_scan_ctx s_scan(dm_store_t *st, uint32_t pid)
{
    s_scan_ctx c = {.ordered = true};
    cr_assert_eq(dm_store_scan(st, pid, s_count_rows, &c, NULL), DM_OK);
    return c;
}

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

Test(store, map_full_at_maximum_says_what_to_raise_in_why)
{
    uint32_t id;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_overfill_small_map(&id, &why), DM_ERR_MAPFULL);
    cr_assert_not_null(strstr(why.data, "raise max_map_bytes"), "%s", why.data);
    dm_buf_free(&why);
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
