/* quality_report.c: reports: outcome names, freeing, the history's
 * encoding, storing a report and reading the latest.
 *
 * Encoding (integers big-endian): u8 version, i64 at_ms, u8 outcome, u64
 * records, i64 last_ingest_ms, i64 newest_event_ms, u32 results; each
 * result: u8 rule, u8 outcome, f64 observed (its bits), i64 at_ms, the
 * strings name, column, observed_text, threshold and reason (u32 length,
 * S_NULL_LEN for NULL, then the bytes), u8 samples and each sample as a
 * string. */
#include "quality/quality_priv.h"

#include <stdlib.h>
#include <string.h>

#define S_VERSION 1
#define S_NULL_LEN 0xFFFFFFFFu
#define S_STRING_MAX (1u << 20) /* bytes of one decoded string at most */

static const char *const s_names[] = {"pass", "skipped", "warn", "fail", "error"};

const char *dm_quality_outcome_name(dm_qoutcome o)
{
    return (unsigned)o < sizeof s_names / sizeof s_names[0] ? s_names[o] : "error";
}

bool dm_quality_outcome_parse(const char *s, dm_qoutcome *out)
{
    for (size_t i = 0; s && i < sizeof s_names / sizeof s_names[0]; i++)
        if (strcmp(s, s_names[i]) == 0) {
            *out = (dm_qoutcome)i;
            return true;
        }
    return false;
}

void dm_quality_report_clear(dm_qreport_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        dm_qresult_t *x = &r->results[i];
        free(x->name);
        free(x->column);
        free(x->observed_text);
        free(x->threshold);
        free(x->reason);
        for (size_t j = 0; j < x->nsamples; j++)
            free(x->samples[j]);
    }
    free(r->results);
    memset(r, 0, sizeof *r);
}

static void s_u64(dm_buf_t *b, uint64_t v)
{
    uint8_t p[8];
    dm_quality__put64(p, v);
    dm_buf_append(b, p, sizeof p);
}

static void s_u32(dm_buf_t *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    dm_buf_append(b, p, sizeof p);
}

static void s_str(dm_buf_t *b, const char *s)
{
    if (!s) {
        s_u32(b, S_NULL_LEN);
        return;
    }
    size_t n = strlen(s);
    s_u32(b, (uint32_t)n);
    dm_buf_append(b, s, n);
}

void dm_quality__report_encode(const dm_qreport_t *r, dm_buf_t *out)
{
    uint8_t v = S_VERSION;
    dm_buf_append(out, &v, 1);
    s_u64(out, (uint64_t)r->at_ms);
    v = (uint8_t)r->outcome;
    dm_buf_append(out, &v, 1);
    s_u64(out, r->records);
    s_u64(out, (uint64_t)r->last_ingest_ms);
    s_u64(out, (uint64_t)r->newest_event_ms);
    s_u32(out, (uint32_t)r->n);
    for (size_t i = 0; i < r->n; i++) {
        const dm_qresult_t *x = &r->results[i];
        uint8_t h[2] = {(uint8_t)x->rule, (uint8_t)x->outcome};
        dm_buf_append(out, h, 2);
        uint64_t bits;
        memcpy(&bits, &x->observed, sizeof bits);
        s_u64(out, bits);
        s_u64(out, (uint64_t)x->at_ms);
        s_str(out, x->name);
        s_str(out, x->column);
        s_str(out, x->observed_text);
        s_str(out, x->threshold);
        s_str(out, x->reason);
        v = (uint8_t)x->nsamples;
        dm_buf_append(out, &v, 1);
        for (size_t j = 0; j < x->nsamples; j++)
            s_str(out, x->samples[j]);
    }
}

typedef struct {
    const uint8_t *p, *end;
    bool bad;
} s_rd;

static uint64_t s_rd_n(s_rd *r, size_t n)
{
    uint64_t v = 0;
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        v = v << 8 | *r->p++;
    return v;
}

static char *s_rd_str(s_rd *r)
{
    uint32_t n = (uint32_t)s_rd_n(r, 4);
    if (r->bad || n == S_NULL_LEN)
        return NULL;
    if (n > S_STRING_MAX || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s)
        abort();
    memcpy(s, r->p, n);
    s[n] = 0;
    r->p += n;
    return s;
}

dm_err dm_quality__report_decode(const void *data, size_t len, dm_qreport_t *out)
{
    memset(out, 0, sizeof *out);
    s_rd r = {data, (const uint8_t *)data + len, false};
    if (s_rd_n(&r, 1) != S_VERSION)
        return DM_ERR_STORE;
    out->at_ms = (int64_t)s_rd_n(&r, 8);
    out->outcome = (dm_qoutcome)s_rd_n(&r, 1);
    out->records = s_rd_n(&r, 8);
    out->last_ingest_ms = (int64_t)s_rd_n(&r, 8);
    out->newest_event_ms = (int64_t)s_rd_n(&r, 8);
    uint32_t n = (uint32_t)s_rd_n(&r, 4);
    if (r.bad || n > DM_CONTRACT_MAX_CHECKS)
        return DM_ERR_STORE;
    out->results = calloc(n ? n : 1, sizeof *out->results);
    if (!out->results)
        return DM_ERR_NOMEM;
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        dm_qresult_t *x = &out->results[out->n++];
        x->rule = (dm_check_rule)s_rd_n(&r, 1);
        x->outcome = (dm_qoutcome)s_rd_n(&r, 1);
        uint64_t bits = s_rd_n(&r, 8);
        memcpy(&x->observed, &bits, sizeof bits);
        x->at_ms = (int64_t)s_rd_n(&r, 8);
        x->name = s_rd_str(&r);
        x->column = s_rd_str(&r);
        x->observed_text = s_rd_str(&r);
        x->threshold = s_rd_str(&r);
        x->reason = s_rd_str(&r);
        size_t ns = (size_t)s_rd_n(&r, 1);
        for (size_t j = 0; j < ns && j < DM_QUALITY_SAMPLES_MAX && !r.bad; j++)
            x->samples[x->nsamples++] = s_rd_str(&r);
        if (x->rule >= DM_CHECK__COUNT || x->outcome > DM_QOUT_ERROR)
            r.bad = true;
    }
    if (r.bad || out->outcome > DM_QOUT_ERROR) {
        dm_quality_report_clear(out);
        return DM_ERR_STORE;
    }
    return DM_OK;
}

dm_err dm_quality__report_store(dm_store_txn_t *t, uint32_t pid, dm_quality__pstate_t *ps,
                                const dm_qreport_t *r, dm_buf_t *why)
{
    dm_buf_t v = DM_BUF_INIT;
    dm_quality__report_encode(r, &v);
    dm_err err = dm_quality__append(t, pid, DM_QTAG_HISTORY, &ps->next_report, &ps->nreports,
                                    DM_QUALITY_HISTORY_MAX, v.data, v.len, why);
    dm_buf_free(&v);
    return err;
}

typedef struct {
    uint32_t pid;
    dm_qreport_t *out;
    size_t want, got;
    dm_err err;
    dm_qreport_t *many; /* dm_quality_history's array, or NULL */
} s_latest_ctx;

static int s_take(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key;
    (void)klen;
    s_latest_ctx *c = ctx;
    dm_qreport_t *dst = c->many ? &c->many[c->got] : c->out;
    c->err = dm_quality__report_decode(val, vlen, dst);
    if (c->err)
        return 1;
    return ++c->got >= c->want;
}

static dm_err s_latest_txn(dm_store_txn_t *t, void *ctx, dm_buf_t *why)
{
    s_latest_ctx *c = ctx;
    uint32_t pid = c->pid;
    uint8_t tag = DM_QTAG_HISTORY;
    dm_err err = dm_quality_db_each(t, pid, &tag, 1, true, s_take, c, why);
    if (!err && c->err)
        dm_buf_why(why, "quality: a stored report of product %u is corrupt", pid);
    return err ? err : c->err;
}

bool dm_quality_schedule_due(bool has_latest, int64_t latest_ms, int64_t every_ms,
                             int64_t now_ms)
{
    return every_ms > 0 && (!has_latest || now_ms - latest_ms >= every_ms ||
                            latest_ms - now_ms > DM_QUALITY_CLOCK_SKEW_MS);
}

dm_err dm_quality_latest(dm_store_t *store, uint32_t pid, dm_qreport_t *out, dm_buf_t *why)
{
    memset(out, 0, sizeof *out);
    s_latest_ctx c = {pid, out, 1, 0, DM_OK, NULL};
    dm_err err = dm_quality_db_view(store, s_latest_txn, &c, why);
    if (!err && c.got == 0)
        return DM_ERR_NOTFOUND;
    return err;
}

dm_err dm_quality_history(dm_store_t *store, uint32_t pid, size_t max, dm_qreport_t **out,
                          size_t *n, dm_buf_t *why)
{
    *out = NULL;
    *n = 0;
    if (max == 0)
        return DM_OK;
    s_latest_ctx c = {pid, NULL, max, 0, DM_OK, calloc(max, sizeof(dm_qreport_t))};
    if (!c.many)
        return DM_ERR_NOMEM;
    dm_err err = dm_quality_db_view(store, s_latest_txn, &c, why);
    if (err) {
        for (size_t i = 0; i < c.got; i++)
            dm_quality_report_clear(&c.many[i]);
        free(c.many);
        return err;
    }
    *out = c.many;
    *n = c.got;
    return DM_OK;
}
