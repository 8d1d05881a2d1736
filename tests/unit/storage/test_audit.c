/* test_audit.c: the audit log in the store's "audit" database (suite
 * "audit"): append assigns growing sequences, list by since/after with
 * pages and "more", retention by age and by count in the append, and
 * reopen. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "storage/audit.h"
#include "storage/store.h"

#define T_T0 1700000000000LL /* a fixed "now" in Unix ms */

static char s_dir[PATH_MAX];
static dm_store_t *s_store;

static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_audit"));
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
}

static void s_teardown(void)
{
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
}

TestSuite(audit, .init = s_setup, .fini = s_teardown, .timeout = 60);

static dm_audit_record_t s_rec(int64_t at_ms, unsigned i)
{
    dm_audit_record_t r;
    memset(&r, 0, sizeof r);
    r.at_ms = at_ms;
    memset(r.caller, (int)(i & 0xff), sizeof r.caller);
    r.verified = i % 2 == 0;
    r.allowed = i % 3 == 0;
    snprintf(r.action, sizeof r.action, "ingest");
    snprintf(r.product, sizeof r.product, "commerce/orders%u", i);
    snprintf(r.rule, sizeof r.rule, "owner: rule %u", i);
    r.policy_version = 1000 + i;
    return r;
}

/* Appends n records at times t0, t0 + step, ... with retention ret. */
static void s_append_n(size_t n, int64_t t0, int64_t step, const dm_audit_retention_t *ret,
                       int64_t now)
{
    dm_audit_record_t *recs = calloc(n, sizeof *recs);
    for (size_t i = 0; i < n; i++)
        recs[i] = s_rec(t0 + (int64_t)i * step, (unsigned)i);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_audit_append(s_store, recs, n, ret, now, &why), DM_OK, "%s",
                 why.data ? why.data : "");
    dm_buf_free(&why);
    free(recs);
}

static uint64_t s_count(void)
{
    uint64_t n = 0;
    cr_assert_eq(dm_audit_count(s_store, &n, NULL), DM_OK);
    return n;
}

Test(audit, append_assigns_growing_sequences_and_round_trips_every_field)
{
    dm_audit_record_t recs[3] = {s_rec(T_T0, 0), s_rec(T_T0 + 1, 1), s_rec(T_T0 + 2, 2)};
    cr_assert_eq(dm_audit_append(s_store, recs, 3, NULL, T_T0, NULL), DM_OK);
    cr_assert_eq(recs[0].seq, 1);
    cr_assert_eq(recs[2].seq, 3);
    dm_audit_record_t more = s_rec(T_T0 + 3, 3);
    cr_assert_eq(dm_audit_append(s_store, &more, 1, NULL, T_T0, NULL), DM_OK);
    cr_assert_eq(more.seq, 4);

    dm_audit_record_t *out = NULL;
    size_t n = 0;
    bool m = true;
    cr_assert_eq(dm_audit_list(s_store, 0, 0, 0, &out, &n, &m, NULL), DM_OK);
    cr_assert_eq(n, 4);
    cr_assert_not(m);
    for (unsigned i = 0; i < 4; i++) {
        dm_audit_record_t want = s_rec(T_T0 + i, i);
        want.seq = i + 1;
        cr_assert_eq(out[i].seq, want.seq);
        cr_assert_eq(out[i].at_ms, want.at_ms);
        cr_assert_eq(memcmp(out[i].caller, want.caller, sizeof want.caller), 0);
        cr_assert_eq(out[i].verified, want.verified);
        cr_assert_eq(out[i].allowed, want.allowed);
        cr_assert_str_eq(out[i].action, want.action);
        cr_assert_str_eq(out[i].product, want.product);
        cr_assert_str_eq(out[i].rule, want.rule);
        cr_assert_eq(out[i].policy_version, want.policy_version);
    }
    free(out);
}

Test(audit, a_full_length_rule_is_kept_whole_and_an_overlong_one_cut)
{
    dm_audit_record_t r = s_rec(T_T0, 0);
    memset(r.rule, 'r', sizeof r.rule - 1);
    r.rule[sizeof r.rule - 1] = 0;
    memset(r.product, 'p', sizeof r.product); /* no NUL: bounded by the field */
    cr_assert_eq(dm_audit_append(s_store, &r, 1, NULL, T_T0, NULL), DM_OK);
    dm_audit_record_t *out = NULL;
    size_t n = 0;
    bool m;
    cr_assert_eq(dm_audit_list(s_store, 0, 0, 0, &out, &n, &m, NULL), DM_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(strlen(out[0].rule), DM_AUDIT_RULE_MAX - 1);
    cr_assert_eq(strlen(out[0].product), DM_AUDIT_PRODUCT_MAX - 1);
    free(out);
}

Test(audit, list_pages_with_after_and_more)
{
    s_append_n(25, T_T0, 10, NULL, T_T0);
    dm_audit_record_t *out = NULL;
    size_t n = 0;
    bool m = false;
    uint64_t after = 0, seen = 0;
    int pages = 0;
    do {
        cr_assert_eq(dm_audit_list(s_store, 0, after, 10, &out, &n, &m, NULL), DM_OK);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(out[i].seq, after + i + 1, "no gap, no repeat");
        seen += n;
        if (n)
            after = out[n - 1].seq;
        free(out);
        pages++;
    } while (m);
    cr_assert_eq(seen, 25);
    cr_assert_eq(pages, 3);
}

Test(audit, list_since_skips_older_records)
{
    s_append_n(100, T_T0, 1000, NULL, T_T0 + 100000);
    dm_audit_record_t *out = NULL;
    size_t n = 0;
    bool m;
    cr_assert_eq(dm_audit_list(s_store, T_T0 + 40500, 0, 0, &out, &n, &m, NULL), DM_OK);
    cr_assert_eq(n, 59); /* times T0+41000 .. T0+99000 */
    cr_assert_eq(out[0].at_ms, T_T0 + 41000);
    cr_assert_eq(out[0].seq, 42);
    free(out);
    cr_assert_eq(dm_audit_list(s_store, T_T0 + 40500, 90, 0, &out, &n, &m, NULL), DM_OK);
    cr_assert_eq(n, 10, "since and after together");
    cr_assert_eq(out[0].seq, 91);
    free(out);
    cr_assert_eq(dm_audit_list(s_store, T_T0 + 1000000, 0, 0, &out, &n, &m, NULL), DM_OK);
    cr_assert_eq(n, 0);
    cr_assert_not(m);
    free(out);
}

Test(audit, limit_is_capped_at_a_page)
{
    s_append_n(DM_AUDIT_PAGE_MAX + 5, T_T0, 1, NULL, T_T0);
    dm_audit_record_t *out = NULL;
    size_t n = 0;
    bool m = false;
    cr_assert_eq(dm_audit_list(s_store, 0, 0, DM_AUDIT_PAGE_MAX * 10, &out, &n, &m, NULL),
                 DM_OK);
    cr_assert_eq(n, DM_AUDIT_PAGE_MAX);
    cr_assert(m);
    free(out);
}

Test(audit, retention_by_age_prunes_old_records_in_the_append)
{
    dm_audit_retention_t ret = {.max_age_ms = 50000, .max_records = 0};
    s_append_n(10, T_T0, 10000, &ret, T_T0 + 90000); /* ages 90 s .. 0 s */
    cr_assert_eq(s_count(), 6, "records older than 50 s are gone; 50 s old stays");
    dm_audit_record_t *out = NULL;
    size_t n = 0;
    bool m;
    cr_assert_eq(dm_audit_list(s_store, 0, 0, 0, &out, &n, &m, NULL), DM_OK);
    cr_assert_eq(n, 6);
    cr_assert_eq(out[0].at_ms, T_T0 + 40000);
    free(out);
    /* Later: everything old, one new record stays. */
    s_append_n(1, T_T0 + 500000, 0, &ret, T_T0 + 500000);
    cr_assert_eq(s_count(), 1);
}

Test(audit, retention_by_count_keeps_the_newest)
{
    dm_audit_retention_t ret = {.max_age_ms = 0, .max_records = 7};
    s_append_n(5, T_T0, 1, &ret, T_T0);
    s_append_n(5, T_T0 + 5, 1, &ret, T_T0);
    cr_assert_eq(s_count(), 7);
    dm_audit_record_t *out = NULL;
    size_t n = 0;
    bool m;
    cr_assert_eq(dm_audit_list(s_store, 0, 0, 0, &out, &n, &m, NULL), DM_OK);
    cr_assert_eq(n, 7);
    cr_assert_eq(out[0].seq, 4);
    cr_assert_eq(out[6].seq, 10);
    free(out);
}

Test(audit, sequences_keep_growing_after_retention_emptied_the_log_and_a_reopen)
{
    dm_audit_retention_t ret = {.max_age_ms = 1000, .max_records = 0};
    s_append_n(3, T_T0, 1, &ret, T_T0);
    s_append_n(1, T_T0 + 100000, 0, &ret, T_T0 + 100000); /* prunes the first three */
    dm_store_destroy(&s_store);
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    cr_assert_eq(s_count(), 1, "the log survives the reopen");
    dm_audit_record_t r = s_rec(T_T0 + 100001, 9);
    cr_assert_eq(dm_audit_append(s_store, &r, 1, &ret, T_T0 + 100001, NULL), DM_OK);
    cr_assert_eq(r.seq, 5, "never reused");
    dm_audit_record_t *out = NULL;
    size_t n = 0;
    bool m;
    cr_assert_eq(dm_audit_list(s_store, 0, 0, 0, &out, &n, &m, NULL), DM_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(out[0].seq, 4);
    cr_assert_str_eq(out[1].rule, "owner: rule 9");
    free(out);
}
