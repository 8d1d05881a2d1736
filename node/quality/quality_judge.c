/* quality_judge.c: every check's result from the stored state, in
 * O(checks) (plus the row-count history a row_count_delta reads, bounded
 * by DM_QUALITY_MEASURES_MAX), and dm_quality_run. The definitions and the
 * Soda Core checks they follow are in docs/quality.md. */
#include "quality/quality_priv.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define S_MS_PER_S 1000
#define S_TEXT_MAX 256

static char *s_fmt(const char *fmt, ...) DM_PRINTF(1, 2);
static char *s_fmt(const char *fmt, ...)
{
    char buf[S_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = strdup(buf);
    if (!s)
        abort();
    return s;
}

/* A duration for people: "450ms", "12s", "3m12s", "5h2m", "2d3h". */
static void s_dur(int64_t ms, char *buf, size_t cap)
{
    int64_t s = ms / S_MS_PER_S;
    if (ms < S_MS_PER_S)
        snprintf(buf, cap, "%" PRId64 "ms", ms);
    else if (s < 60)
        snprintf(buf, cap, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, cap, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%" PRId64 "h%" PRId64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, cap, "%" PRId64 "d%" PRId64 "h", s / 86400, s % 86400 / 3600);
}

static char *s_name(const dm_check_t *k)
{
    if (k->name)
        return s_fmt("%s", k->name);
    const char *rule = dm_contract_rule_name(k->rule);
    if (k->ncolumns > 1) {
        dm_buf_t b = DM_BUF_INIT;
        dm_buf_printf(&b, "%s(", rule);
        for (size_t i = 0; i < k->ncolumns; i++)
            dm_buf_printf(&b, "%s%s", i ? "," : "", k->columns[i]);
        dm_buf_putc(&b, ')');
        char *s = s_fmt("%s", b.data);
        dm_buf_free(&b);
        return s;
    }
    return k->column ? s_fmt("%s(%s)", rule, k->column) : s_fmt("%s", rule);
}

static void s_samples(dm_qresult_t *r, const dm_quality__cstate_t *st)
{
    for (size_t i = 0; i < st->nsamples && i < DM_QUALITY_SAMPLES_MAX; i++)
        r->samples[r->nsamples++] = s_fmt("%s", st->samples[i]);
}

static void s_unique(dm_qresult_t *r, const dm_quality__cstate_t *st, bool trivial)
{
    r->threshold = s_fmt("0 duplicate groups");
    if (trivial) {
        r->observed_text = s_fmt("0 duplicates: the columns are the primary key");
        return;
    }
    r->observed = (double)st->extra;
    r->observed_text = s_fmt("%" PRIu64 " duplicate group%s, %" PRIu64 " extra row%s",
                             st->groups, st->groups == 1 ? "" : "s", st->extra,
                             st->extra == 1 ? "" : "s");
    if (st->groups) {
        r->outcome = DM_QOUT_FAIL;
        r->reason = s_fmt("%" PRIu64 " value%s held by more than one row (%" PRIu64
                          " row%s beyond the first of each)",
                          st->groups, st->groups == 1 ? " is" : "s are", st->extra,
                          st->extra == 1 ? "" : "s");
        s_samples(r, st);
    }
}

static void s_field(dm_qresult_t *r, const dm_check_t *k, const dm_quality__cstate_t *st,
                    uint64_t records, uint64_t quarantined)
{
    if (!dm_contract_check_has_rate(k)) {
        r->threshold = s_fmt("record gate: failing records are quarantined");
        r->observed_text = s_fmt("0%% failing at ingest (%" PRIu64 " live row%s passed the gate "
                                 "when stored, not checked again; %" PRIu64 " quarantined "
                                 "record%s in the product, by any rule)",
                                 records, records == 1 ? "" : "s", quarantined,
                                 quarantined == 1 ? "" : "s");
        return;
    }
    double rate = records ? 100.0 * (double)st->failing / (double)records : 0;
    r->observed = rate;
    r->observed_text = s_fmt("%.4g%% failing (%" PRIu64 " of %" PRIu64 " rows)", rate,
                             st->failing, records);
    double fail_at = k->has_mostly ? 100 - k->mostly : k->fail;
    bool can_fail = k->has_mostly || k->has_fail;
    if (can_fail && k->has_warn)
        r->threshold = s_fmt("fail above %g%% failing, warn above %g%%", fail_at, k->warn);
    else if (can_fail)
        r->threshold = s_fmt("fail above %g%% failing%s", fail_at,
                             k->has_mostly ? " (mostly)" : "");
    else
        r->threshold = s_fmt("warn above %g%% failing", k->warn);
    if (can_fail && rate > fail_at)
        r->outcome = DM_QOUT_FAIL;
    else if (k->has_warn && rate > k->warn)
        r->outcome = DM_QOUT_WARN;
    if (r->outcome != DM_QOUT_PASS) {
        r->reason = s_fmt("%" PRIu64 " of %" PRIu64 " rows fail %s (%.4g%%)", st->failing,
                          records, dm_contract_rule_name(k->rule), rate);
        s_samples(r, st);
    }
}

static void s_freshness_age(dm_qresult_t *r, const dm_check_t *k, int64_t newest,
                            bool by_ingest, const char *column, int64_t now_ms)
{
    char a[32], b[32];
    s_dur(k->max_age_ms, b, sizeof b);
    r->threshold = s_fmt("max_age %s", b);
    if (newest == DM_QUALITY_NO_EVENT || (by_ingest && newest == 0)) {
        r->outcome = DM_QOUT_FAIL;
        r->observed_text = s_fmt("no event time");
        r->reason = by_ingest ? s_fmt("the product was never ingested")
                              : s_fmt("no row has a value in '%s'", column);
        return;
    }
    int64_t age = now_ms - newest;
    if (age < 0) {
        s_dur(-age, a, sizeof a);
        r->outcome = DM_QOUT_WARN;
        r->observed = 0;
        r->observed_text = s_fmt("age 0 (the newest %s is %s in the future)",
                                 by_ingest ? "ingest" : "event time", a);
        r->reason = s_fmt("clock skew: the newest %s is %s ahead of this node's clock",
                          by_ingest ? "ingest" : "event time", a);
        return;
    }
    s_dur(age, a, sizeof a);
    r->observed = (double)age;
    r->observed_text = s_fmt("age %s (newest %s)", a, by_ingest ? "ingest" : column);
    if (age > k->max_age_ms) {
        r->outcome = DM_QOUT_FAIL;
        r->reason = s_fmt("stale: the newest %s is %s old, over max_age %s",
                          by_ingest ? "ingest" : "event time", a, b);
    }
}

/* freshness: the age of the newest event time (st's, or the last ingest
 * when by_ingest); rows that were ahead of the writer's clock by more than
 * DM_QUALITY_CLOCK_SKEW_MS are left out of it and make at least a warning. */
static void s_freshness(dm_qresult_t *r, const dm_check_t *k, int64_t newest,
                        const dm_quality__cstate_t *st, bool by_ingest, const char *column,
                        int64_t now_ms)
{
    s_freshness_age(r, k, newest, by_ingest, column, now_ms);
    if (by_ingest || !st || st->ahead == 0)
        return;
    char a[32];
    s_dur(st->ahead_max, a, sizeof a);
    char *was = r->reason;
    r->reason = s_fmt("%s%s%" PRIu64 " row%s event times ahead of the clock by up to %s; "
                      "ignored for freshness",
                      was ? was : "", was ? "; " : "", st->ahead,
                      st->ahead == 1 ? " has" : "s have", a);
    free(was);
    if (r->outcome < DM_QOUT_WARN)
        r->outcome = DM_QOUT_WARN;
}

/* ---- row_count_delta ---- */

typedef struct {
    uint64_t n[DM_CHECK_OVER_MAX + 1]; /* newest first */
    size_t got, want;    /* want 0: same_weekday, walk until past the target */
    int64_t target;      /* same_weekday: 7 days before the latest */
    int64_t best_dist;   /* same_weekday: the nearest so far, -1: none */
    uint64_t best_n;
} s_meas;

static int s_meas_take(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key;
    (void)klen;
    s_meas *m = ctx;
    if (vlen != 16)
        return 0;
    const uint8_t *p = val;
    uint64_t at = 0, n = 0;
    for (int i = 0; i < 8; i++) {
        at = at << 8 | p[i];
        n = n << 8 | p[8 + i];
    }
    if (m->want) {
        m->n[m->got++] = n;
        return m->got >= m->want;
    }
    if (m->got++ == 0) {
        m->n[0] = n;
        m->target = (int64_t)at - DM_QUALITY_WEEK_MS;
        return 0;
    }
    int64_t d = (int64_t)at > m->target ? (int64_t)at - m->target : m->target - (int64_t)at;
    if (m->best_dist < 0 || d < m->best_dist) {
        m->best_dist = d;
        m->best_n = n;
    }
    return (int64_t)at < m->target - DM_QUALITY_WEEKDAY_SLACK_MS;
}

static dm_err s_delta(dm_store_txn_t *t, uint32_t pid, const dm_check_t *k, dm_qresult_t *r,
                      dm_buf_t *why)
{
    static s_meas zero;
    s_meas *m = malloc(sizeof *m);
    if (!m)
        return DM_ERR_NOMEM;
    *m = zero;
    m->best_dist = -1;
    m->want = k->baseline == DM_BASELINE_PREVIOUS  ? 2
              : k->baseline == DM_BASELINE_AVERAGE ? k->over + 1
                                                   : 0;
    uint8_t tag = DM_QTAG_MEASURE;
    dm_err err = dm_quality_db_each(t, pid, &tag, 1, true, s_meas_take, m, why);
    if (err)
        goto out;
    const char *unit = k->threshold_is_percent ? "%" : " rows";
    r->threshold = k->has_warn ? s_fmt("fail above %g%s, warn above %g%s", k->threshold, unit,
                                       k->warn, unit)
                               : s_fmt("fail above %g%s", k->threshold, unit);
    double base = 0;
    const char *bname = "the previous run";
    char avg[96];
    size_t have = m->got;
    if (k->baseline == DM_BASELINE_SAME_WEEKDAY) {
        bname = "the run nearest to 7 days before";
        if (m->best_dist < 0 || m->best_dist > DM_QUALITY_WEEKDAY_SLACK_MS) {
            have = m->got ? 1 : 0;
        } else {
            base = (double)m->best_n;
            have = 2;
        }
    } else if (k->baseline == DM_BASELINE_AVERAGE) {
        if (m->got > 1 && m->got - 1 < k->over)
            snprintf(avg, sizeof avg, "the average of the %zu earlier run%s there are (of %u)",
                     m->got - 1, m->got == 2 ? "" : "s", k->over);
        else
            snprintf(avg, sizeof avg, "the average of the %u earlier runs", k->over);
        bname = avg;
        for (size_t i = 1; i < m->got; i++)
            base += (double)m->n[i];
        base = m->got > 1 ? base / (double)(m->got - 1) : 0;
    } else if (m->got > 1) {
        base = (double)m->n[1];
    }
    if (have < 2) {
        r->outcome = DM_QOUT_SKIPPED;
        r->observed_text = s_fmt("%s", m->got ? "one measurement" : "no measurement");
        r->reason = s_fmt("no history to compare with: %s needs %s (row counts are measured "
                          "after each ingest run)",
                          dm_contract_rule_name(k->rule),
                          k->baseline == DM_BASELINE_SAME_WEEKDAY
                              ? "a run within a day of 7 days before the latest"
                              : "an earlier run");
        goto out;
    }
    double now = (double)m->n[0], delta = now - base;
    double pct = base != 0 ? 100.0 * delta / base : delta != 0 ? INFINITY : 0;
    double v = k->threshold_is_percent ? fabs(pct) : fabs(delta);
    r->observed = k->threshold_is_percent ? pct : delta;
    r->observed_text = s_fmt("%+.0f rows, %+.4g%% (%.0f -> %.0f; baseline %s)", delta, pct, base,
                             now, bname);
    if (v > k->threshold)
        r->outcome = DM_QOUT_FAIL;
    else if (k->has_warn && v > k->warn)
        r->outcome = DM_QOUT_WARN;
    if (r->outcome != DM_QOUT_PASS)
        r->reason = s_fmt("the row count changed by %+.0f (%+.4g%%) against %s, over %g%s",
                          delta, pct, bname, r->outcome == DM_QOUT_FAIL ? k->threshold : k->warn,
                          unit);
out:
    free(m);
    return err;
}

/* Judges check k into r. */
static dm_err s_one(dm_store_txn_t *t, uint32_t pid, const dm_contract_t *c, const dm_check_t *k,
                    const dm_quality__pstate_t *ps, uint64_t records, uint64_t quarantined,
                    dm_qreport_t *rep, dm_qresult_t *r, dm_buf_t *why)
{
    bool found = false;
    dm_quality__cstate_t st;
    dm_err err = DM_OK;
    if (k->rule != DM_CHECK_ROW_COUNT_DELTA &&
        (err = dm_quality__cstate_get(t, pid, dm_quality__check_id(k), &st, &found, why)))
        return err;
    bool trivial = false;
    if (k->rule == DM_CHECK_UNIQUE && c->npk == k->ncolumns && k->ncolumns) {
        trivial = true;
        for (size_t i = 0; i < k->ncolumns; i++) {
            bool in = false;
            for (size_t j = 0; j < c->npk; j++)
                in = in || (size_t)k->column_index[i] == c->pk[j];
            trivial = trivial && in;
        }
    }
    int ev = k->rule == DM_CHECK_FRESHNESS ? dm_quality__event_field(c, k) : -1;
    bool stateful = (k->rule == DM_CHECK_UNIQUE && !trivial) || dm_contract_check_has_rate(k) ||
                    (k->rule == DM_CHECK_FRESHNESS && ev >= 0);
    if (stateful && !found && records > 0) {
        r->outcome = DM_QOUT_SKIPPED;
        r->reason = s_fmt("no state yet: the check was added after the last ingest; the next "
                          "ingest builds it from the rows");
        return DM_OK;
    }
    switch (k->rule) {
    case DM_CHECK_UNIQUE:
        s_unique(r, &st, trivial);
        break;
    case DM_CHECK_ROW_COUNT_DELTA:
        err = s_delta(t, pid, k, r, why);
        break;
    case DM_CHECK_FRESHNESS: {
        int64_t newest = ev >= 0 ? (found ? st.newest : DM_QUALITY_NO_EVENT) : ps->last_ingest_ms;
        s_freshness(r, k, newest, found ? &st : NULL, ev < 0, ev >= 0 ? c->fields[ev].name : NULL,
                    rep->at_ms);
        if (newest != DM_QUALITY_NO_EVENT && newest > rep->newest_event_ms)
            rep->newest_event_ms = newest;
        break;
    }
    default:
        s_field(r, k, &st, records, quarantined);
        break;
    }
    return err;
}

dm_err dm_quality__judge(dm_store_txn_t *t, uint32_t pid, const dm_contract_t *c, int64_t now_ms,
                         const dm_quality__pstate_t *ps_in, dm_qreport_t *out, dm_buf_t *why)
{
    dm_quality_report_clear(out);
    out->at_ms = now_ms;
    dm_quality__pstate_t ps;
    uint64_t quarantined = 0;
    dm_err err = DM_OK;
    if (ps_in)
        ps = *ps_in;
    else
        err = dm_quality__pstate_get(t, pid, &ps, why);
    if (!err)
        err = dm_quality_db_counts(t, pid, &out->records, &quarantined, why);
    if (err)
        return err;
    out->last_ingest_ms = ps.last_ingest_ms;
    out->results = calloc(c->nchecks ? c->nchecks : 1, sizeof *out->results);
    if (!out->results)
        return DM_ERR_NOMEM;
    for (size_t i = 0; i < c->nchecks && !err; i++) {
        dm_qresult_t *r = &out->results[out->n++];
        const dm_check_t *k = &c->checks[i];
        r->name = s_name(k);
        r->rule = k->rule;
        r->column = k->column     ? s_fmt("%s", k->column)
                    : k->ncolumns ? s_fmt("%s", k->columns[0])
                                  : NULL;
        r->at_ms = now_ms;
        size_t mark = why ? why->len : 0;
        err = s_one(t, pid, c, k, &ps, out->records, quarantined, out, r, why);
        if (err == DM_ERR_STORE) { /* this check's state is unreadable: its result says so */
            r->outcome = DM_QOUT_ERROR;
            free(r->reason);
            r->reason = s_fmt("the check's state cannot be read: %s",
                              why && why->len > mark ? why->data + mark : "store error");
            dm_buf_cut(why, mark);
            err = DM_OK;
        }
        if (!r->observed_text)
            r->observed_text = s_fmt("-");
        if (!r->threshold)
            r->threshold = s_fmt("-");
        if (r->outcome > out->outcome)
            out->outcome = r->outcome;
    }
    dm_check_t sla;
    if (!err && dm_quality__sla_event_check(c, &sla)) { /* not a result: the SLA's input */
        dm_quality__cstate_t st;
        bool found = false;
        size_t mark = why ? why->len : 0;
        err = dm_quality__cstate_get(t, pid, dm_quality__check_id(&sla), &st, &found, why);
        if (err == DM_ERR_STORE) { /* unreadable: the SLA measures the last ingest */
            dm_log_warn("quality: product %u: the SLA's event-time state cannot be read: %s "
                        "(the next batch rebuilds it)", pid,
                        why && why->len > mark ? why->data + mark : "store error");
            dm_buf_cut(why, mark);
            err = DM_OK;
        } else if (!err && found && st.newest != DM_QUALITY_NO_EVENT &&
                 st.newest > out->newest_event_ms)
            out->newest_event_ms = st.newest;
    }
    if (out->newest_event_ms == DM_QUALITY_NO_EVENT)
        out->newest_event_ms = 0;
    if (err)
        dm_quality_report_clear(out);
    return err;
}

typedef struct {
    uint32_t pid;
    const dm_contract_t *c;
    int64_t now_ms;
    bool store_it;
    dm_qreport_t *out;
} s_run_ctx;

static dm_err s_run_txn(dm_store_txn_t *t, void *arg, dm_buf_t *why)
{
    s_run_ctx *x = arg;
    dm_err err = dm_quality__judge(t, x->pid, x->c, x->now_ms, NULL, x->out, why);
    if (err || !x->store_it)
        return err;
    dm_quality__pstate_t ps;
    if ((err = dm_quality__pstate_get(t, x->pid, &ps, why)) ||
        (err = dm_quality__report_store(t, x->pid, &ps, x->out, why)))
        return err;
    return dm_quality__pstate_put(t, x->pid, &ps, why);
}

dm_err dm_quality_run(dm_store_t *store, uint32_t pid, const dm_contract_t *c, int64_t now_ms,
                      bool store_it, dm_qreport_t *out, dm_buf_t *why)
{
    memset(out, 0, sizeof *out);
    s_run_ctx x = {pid, c, now_ms, store_it, out};
    dm_err err = store_it ? dm_quality_db_update(store, s_run_txn, &x, why)
                          : dm_quality_db_view(store, s_run_txn, &x, why);
    if (err)
        dm_quality_report_clear(out);
    return err;
}
