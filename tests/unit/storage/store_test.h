/* store_test.h: the fixture the store's test files share: a fresh store in
 * a temporary directory per test (suite "store"), a product to commit to,
 * 16-byte keys and a scan that counts rows and checks their order. */
#ifndef DM_STORE_TEST_H
#define DM_STORE_TEST_H

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "storage/store.h"

#define S_KEY_BYTES 16

static char s_dir[PATH_MAX];
static dm_store_t *s_store;

/* Removes the store files and the directory. */
static inline void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_store"));
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
}

static inline void s_teardown(void)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
}

TestSuite(store, .init = s_setup, .fini = s_teardown);

/* A product description with version maj.min.patch and a hash of byte h. */
static inline dm_product_t s_prod(const char *domain, const char *name, uint64_t maj, uint64_t min,
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
static inline uint32_t s_orders(void)
{
    dm_product_t in = s_prod("commerce", "orders", 1, 0, 0, 1), out;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &in, &oc, &out, NULL, NULL), DM_OK);
    uint32_t id = out.id;
    dm_store_product_clear(&out);
    return id;
}

/* A 16-byte key from n (big-endian in the last bytes). */
static inline void s_key(uint8_t k[S_KEY_BYTES], uint64_t n)
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

static inline int s_count_rows(void *arg, uint64_t seq, const void *row, size_t len)
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

static inline s_scan_ctx s_scan(dm_store_t *st, uint32_t pid)
{
    s_scan_ctx c = {.ordered = true};
    cr_assert_eq(dm_store_scan(st, pid, s_count_rows, &c, NULL), DM_OK);
    return c;
}

#endif
