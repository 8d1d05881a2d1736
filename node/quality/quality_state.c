/* quality_state.c: a product's and its checks' quality state in the
 * quality database (keys in quality_priv.h), and the check fingerprint. */
#include "quality/quality_priv.h"

#include <stdlib.h>
#include <string.h>

#define S_PSTATE_BYTES 40
#define S_CSTATE_FIXED 33 /* groups, extra, failing, newest, nsamples */
#define S_CSTATE_TAIL 16  /* after the samples: ahead, ahead_max (absent in older state) */
#define S_CSTATE_TOKEN 8  /* then the unique counts' token (absent in older state) */
#define S_FNV_OFFSET 14695981039346656037ULL
#define S_FNV_PRIME 1099511628211ULL

static uint64_t s_fnv(uint64_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * S_FNV_PRIME;
    return h;
}

static uint64_t s_fnv_str(uint64_t h, const char *s)
{
    return s ? s_fnv(h, s, strlen(s) + 1) : s_fnv(h, "", 1);
}

uint64_t dm_quality__check_id(const dm_check_t *k)
{
    uint64_t h = S_FNV_OFFSET;
    uint32_t rule = (uint32_t)k->rule;
    h = s_fnv(h, &rule, sizeof rule);
    h = s_fnv_str(h, k->column);
    for (size_t i = 0; i < k->ncolumns; i++)
        h = s_fnv_str(h, k->columns[i]);
    for (size_t i = 0; i < k->nvalues; i++)
        h = s_fnv_str(h, k->values[i]);
    h = s_fnv_str(h, k->pattern);
    double b[2] = {k->has_min ? k->min.d : 0, k->has_max ? k->max.d : 0};
    int64_t bi[2] = {k->has_min ? k->min.i : 0, k->has_max ? k->max.i : 0};
    bool has[2] = {k->has_min, k->has_max};
    h = s_fnv(h, b, sizeof b);
    h = s_fnv(h, bi, sizeof bi);
    h = s_fnv(h, has, sizeof has);
    return h;
}

static const uint8_t s_ptag = DM_QTAG_PRODUCT;

dm_err dm_quality__pstate_get(dm_store_txn_t *t, uint32_t pid, dm_quality__pstate_t *out,
                              dm_buf_t *why)
{
    memset(out, 0, sizeof *out);
    dm_buf_t v = DM_BUF_INIT;
    dm_err err = dm_quality_db_get(t, pid, &s_ptag, 1, &v, why);
    if (err == DM_OK && v.len == S_PSTATE_BYTES) {
        const uint8_t *p = (const uint8_t *)v.data;
        out->last_ingest_ms = (int64_t)dm_quality__get64(p);
        out->next_measure = dm_quality__get64(p + 8);
        out->next_report = dm_quality__get64(p + 16);
        out->nmeasures = dm_quality__get64(p + 24);
        out->nreports = dm_quality__get64(p + 32);
    }
    dm_buf_free(&v);
    return err == DM_ERR_NOTFOUND ? DM_OK : err;
}

dm_err dm_quality__pstate_put(dm_store_txn_t *t, uint32_t pid, const dm_quality__pstate_t *in,
                              dm_buf_t *why)
{
    uint8_t p[S_PSTATE_BYTES];
    dm_quality__put64(p, (uint64_t)in->last_ingest_ms);
    dm_quality__put64(p + 8, in->next_measure);
    dm_quality__put64(p + 16, in->next_report);
    dm_quality__put64(p + 24, in->nmeasures);
    dm_quality__put64(p + 32, in->nreports);
    return dm_quality_db_put(t, pid, &s_ptag, 1, p, sizeof p, why);
}

static void s_ckey(uint8_t k[9], uint8_t tag, uint64_t id)
{
    k[0] = tag;
    dm_quality__put64(k + 1, id);
}

dm_err dm_quality__cstate_get(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                              dm_quality__cstate_t *out, bool *found, dm_buf_t *why)
{
    memset(out, 0, sizeof *out);
    out->newest = DM_QUALITY_NO_EVENT;
    *found = false;
    uint8_t k[9];
    s_ckey(k, DM_QTAG_CHECK, id);
    dm_buf_t v = DM_BUF_INIT;
    dm_err err = dm_quality_db_get(t, pid, k, sizeof k, &v, why);
    if (err == DM_ERR_NOTFOUND) {
        dm_buf_free(&v);
        return DM_OK;
    }
    if (err)
        goto out;
    const uint8_t *p = (const uint8_t *)v.data, *end = p + v.len;
    if (v.len < S_CSTATE_FIXED)
        goto corrupt;
    out->groups = dm_quality__get64(p);
    out->extra = dm_quality__get64(p + 8);
    out->failing = dm_quality__get64(p + 16);
    out->newest = (int64_t)dm_quality__get64(p + 24);
    size_t ns = p[32];
    p += S_CSTATE_FIXED;
    for (size_t i = 0; i < ns && i < DM_QUALITY_SAMPLES_MAX; i++) {
        if (p >= end || (size_t)(end - p) < 1u + p[0] || p[0] > DM_QUALITY_SAMPLE_BYTES)
            goto corrupt;
        memcpy(out->samples[i], p + 1, p[0]);
        out->samples[i][p[0]] = 0;
        out->nsamples++;
        p += 1 + p[0];
    }
    if ((size_t)(end - p) >= S_CSTATE_TAIL) {
        out->ahead = dm_quality__get64(p);
        out->ahead_max = (int64_t)dm_quality__get64(p + 8);
        p += S_CSTATE_TAIL;
    }
    if ((size_t)(end - p) >= S_CSTATE_TOKEN)
        out->token = dm_quality__get64(p);
    *found = true;
    goto out;
corrupt:
    err = DM_ERR_STORE;
    dm_buf_why(why, "quality: the state of a check of product %u is corrupt", pid);
out:
    dm_buf_free(&v);
    return err;
}

dm_err dm_quality__cstate_put(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                              const dm_quality__cstate_t *in, dm_buf_t *why)
{
    uint8_t v[S_CSTATE_FIXED + DM_QUALITY_SAMPLES_MAX * (DM_QUALITY_SAMPLE_BYTES + 1) +
              S_CSTATE_TAIL + S_CSTATE_TOKEN];
    dm_quality__put64(v, in->groups);
    dm_quality__put64(v + 8, in->extra);
    dm_quality__put64(v + 16, in->failing);
    dm_quality__put64(v + 24, (uint64_t)in->newest);
    v[32] = (uint8_t)in->nsamples;
    size_t n = S_CSTATE_FIXED;
    for (size_t i = 0; i < in->nsamples; i++) {
        size_t l = strlen(in->samples[i]);
        v[n++] = (uint8_t)l;
        memcpy(v + n, in->samples[i], l);
        n += l;
    }
    dm_quality__put64(v + n, in->ahead);
    dm_quality__put64(v + n + 8, (uint64_t)in->ahead_max);
    n += S_CSTATE_TAIL;
    dm_quality__put64(v + n, in->token);
    n += S_CSTATE_TOKEN;
    uint8_t k[9];
    s_ckey(k, DM_QTAG_CHECK, id);
    return dm_quality_db_put(t, pid, k, sizeof k, v, n, why);
}

/* Index of text among s's samples, or -1. */
static int s_sample_find(const dm_quality__cstate_t *s, const char *text, size_t n)
{
    n = n > DM_QUALITY_SAMPLE_BYTES ? DM_QUALITY_SAMPLE_BYTES : n;
    for (size_t i = 0; i < s->nsamples; i++)
        if (strlen(s->samples[i]) == n && memcmp(s->samples[i], text, n) == 0)
            return (int)i;
    return -1;
}

void dm_quality__sample_add(dm_quality__cstate_t *s, const char *text, size_t n)
{
    if (s->nsamples >= DM_QUALITY_SAMPLES_MAX || s_sample_find(s, text, n) >= 0)
        return;
    n = n > DM_QUALITY_SAMPLE_BYTES ? DM_QUALITY_SAMPLE_BYTES : n;
    for (size_t i = 0; i < n; i++) /* a sample is one line of text */
        s->samples[s->nsamples][i] = text[i] == '\n' || text[i] == 0 ? ' ' : text[i];
    s->samples[s->nsamples][n] = 0;
    s->nsamples++;
}

void dm_quality__sample_drop(dm_quality__cstate_t *s, const char *text, size_t n)
{
    int i = s_sample_find(s, text, n);
    if (i < 0)
        return;
    for (size_t j = (size_t)i + 1; j < s->nsamples; j++)
        memcpy(s->samples[j - 1], s->samples[j], sizeof s->samples[j]);
    s->nsamples--;
}

dm_err dm_quality__append(dm_store_txn_t *t, uint32_t pid, uint8_t tag, uint64_t *next,
                          uint64_t *count, uint64_t max, const void *val, size_t vlen,
                          dm_buf_t *why)
{
    uint8_t k[9];
    s_ckey(k, tag, (*next)++);
    dm_err err = dm_quality_db_put(t, pid, k, sizeof k, val, vlen, why);
    if (!err && ++*count > max) {
        err = dm_quality_db_del_first(t, pid, &tag, 1, why);
        (*count)--;
    }
    return err;
}

dm_err dm_quality__measure_add(dm_store_txn_t *t, uint32_t pid, dm_quality__pstate_t *ps,
                               int64_t at_ms, uint64_t records, dm_buf_t *why)
{
    uint8_t v[16];
    dm_quality__put64(v, (uint64_t)at_ms);
    dm_quality__put64(v + 8, records);
    return dm_quality__append(t, pid, DM_QTAG_MEASURE, &ps->next_measure, &ps->nmeasures,
                              DM_QUALITY_MEASURES_MAX, v, sizeof v, why);
}

dm_err dm_quality__unique_clear(dm_store_txn_t *t, uint32_t pid, uint64_t id, dm_buf_t *why)
{
    static const uint8_t tags[] = {DM_QTAG_UNIQUE, DM_QTAG_PENDING, DM_QTAG_UNIQUE_N,
                                   DM_QTAG_BLOOM};
    dm_err err = DM_OK;
    for (size_t i = 0; i < sizeof tags && !err; i++) {
        uint8_t k[9];
        s_ckey(k, tags[i], id);
        err = dm_quality_db_del_prefix(t, pid, k, sizeof k, why);
    }
    return err;
}

typedef struct {
    const uint64_t *keep;
    size_t nkeep;
    uint64_t drop[DM_CONTRACT_MAX_CHECKS];
    size_t ndrop;
} s_prune_ctx;

static int s_prune_take(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    s_prune_ctx *p = ctx;
    if (klen != 9)
        return 0;
    uint64_t id = dm_quality__get64((const uint8_t *)key + 1);
    for (size_t i = 0; i < p->nkeep; i++)
        if (p->keep[i] == id)
            return 0;
    p->drop[p->ndrop++] = id;
    return p->ndrop >= DM_CONTRACT_MAX_CHECKS;
}

dm_err dm_quality__prune(dm_store_txn_t *t, uint32_t pid, const uint64_t *keep, size_t nkeep,
                         dm_buf_t *why)
{
    s_prune_ctx *p = calloc(1, sizeof *p);
    if (!p)
        return DM_ERR_NOMEM;
    p->keep = keep;
    p->nkeep = nkeep;
    uint8_t tag = DM_QTAG_CHECK;
    dm_err err = dm_quality_db_each(t, pid, &tag, 1, false, s_prune_take, p, why);
    for (size_t i = 0; i < p->ndrop && !err; i++) {
        uint8_t k[9];
        s_ckey(k, DM_QTAG_CHECK, p->drop[i]);
        if (!(err = dm_quality_db_del(t, pid, k, sizeof k, why)))
            err = dm_quality__unique_clear(t, pid, p->drop[i], why);
        dm_quality__ubloom_forget(t, pid, p->drop[i]); /* the writer's memory of it */
    }
    free(p);
    return err;
}
