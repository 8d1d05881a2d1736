/* sla.c: the SLA terms of a product, measured and judged (see sla.h). */
#include "quality/sla.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_AVAIL_VERSION 1
#define S_MS_PER_S 1000
#define S_MS_PER_MIN (60 * S_MS_PER_S)
#define S_MS_PER_H (60 * S_MS_PER_MIN)
#define S_MS_PER_D (24 * S_MS_PER_H)
#define S_US_PER_MS 1000

/* One minute of latencies. minute is the slot's minute (now / slot), -1
 * while empty; bins count the samples of each log-scale bin. */
typedef struct {
    _Atomic int64_t minute;
    _Atomic uint32_t bins[DM_SLA_LAT_BINS];
} s_slot;

struct dm_sla_latency {
    pthread_mutex_t turn; /* taken only to reset a slot for a new minute */
    s_slot slots[DM_SLA_LAT_SLOTS];
};

const char *dm_sla_state_name(dm_sla_state s)
{
    return s == DM_SLA_MET ? "met" : s == DM_SLA_BREACHED ? "breached" : "unknown";
}

dm_sla_latency_t *dm_sla_latency_new(void)
{
    dm_sla_latency_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    pthread_mutex_init(&w->turn, NULL);
    for (size_t i = 0; i < DM_SLA_LAT_SLOTS; i++)
        atomic_init(&w->slots[i].minute, -1);
    return w;
}

void dm_sla_latency_destroy(dm_sla_latency_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pthread_mutex_destroy(&(*self_p)->turn);
    free(*self_p);
    *self_p = NULL;
}

/* The bin of us: the octave (the leading bit's place) times four plus the
 * next two bits, so bin edges are 2^e * (1 + k/4). */
static unsigned s_bin(int64_t us)
{
    if (us < 1)
        return 0;
    unsigned e = 63u - (unsigned)__builtin_clzll((unsigned long long)us);
    if (e >= DM_SLA_LAT_OCTAVES)
        return DM_SLA_LAT_BINS - 1;
    uint64_t u = (uint64_t)us;
    unsigned sub = (unsigned)((e >= 2 ? u >> (e - 2) : u << (2 - e)) & 3u);
    return e * DM_SLA_LAT_PER_OCTAVE + sub;
}

/* The lower and upper edges of bin b, in microseconds. */
static void s_edges(unsigned b, double *lo, double *hi)
{
    unsigned e = b / DM_SLA_LAT_PER_OCTAVE, sub = b % DM_SLA_LAT_PER_OCTAVE;
    double base = (double)(UINT64_C(1) << e);
    *lo = base * (1.0 + sub / (double)DM_SLA_LAT_PER_OCTAVE);
    *hi = base * (1.0 + (sub + 1) / (double)DM_SLA_LAT_PER_OCTAVE);
}

void dm_sla_latency_record(dm_sla_latency_t *w, int64_t now_ms, int64_t latency_us)
{
    if (now_ms < 0)
        return;
    int64_t minute = now_ms / DM_SLA_LAT_SLOT_MS;
    s_slot *s = &w->slots[minute % DM_SLA_LAT_SLOTS];
    int64_t cur = atomic_load_explicit(&s->minute, memory_order_acquire);
    if (cur != minute) {
        if (cur > minute)
            return; /* the clock went back past an hour: that minute is gone */
        pthread_mutex_lock(&w->turn);
        if (atomic_load_explicit(&s->minute, memory_order_relaxed) < minute) {
            for (size_t i = 0; i < DM_SLA_LAT_BINS; i++)
                atomic_store_explicit(&s->bins[i], 0, memory_order_relaxed);
            atomic_store_explicit(&s->minute, minute, memory_order_release);
        }
        pthread_mutex_unlock(&w->turn);
        if (atomic_load_explicit(&s->minute, memory_order_acquire) != minute)
            return;
    }
    atomic_fetch_add_explicit(&s->bins[s_bin(latency_us)], 1, memory_order_relaxed);
}

bool dm_sla_latency_percentile(const dm_sla_latency_t *w, int64_t now_ms, double pct,
                               int64_t *us, uint64_t *n)
{
    uint64_t sum[DM_SLA_LAT_BINS] = {0}, total = 0;
    int64_t minute = now_ms / DM_SLA_LAT_SLOT_MS;
    *us = 0;
    *n = 0;
    for (size_t i = 0; i < DM_SLA_LAT_SLOTS; i++) {
        const s_slot *s = &w->slots[i];
        int64_t m = atomic_load_explicit(&s->minute, memory_order_acquire);
        if (m < 0 || m > minute || minute - m >= DM_SLA_LAT_SLOTS)
            continue;
        for (size_t b = 0; b < DM_SLA_LAT_BINS; b++) {
            uint32_t c = atomic_load_explicit(&s->bins[b], memory_order_relaxed);
            sum[b] += c;
            total += c;
        }
    }
    if (!total || pct <= 0)
        return false;
    if (pct > 100)
        pct = 100;
    /* The rank of the percentile (nearest rank, 1-based), then its place
     * within the bin that holds it. */
    double rank = pct / 100.0 * (double)total;
    if (rank < 1)
        rank = 1;
    uint64_t before = 0;
    for (unsigned b = 0; b < DM_SLA_LAT_BINS; b++) {
        if (!sum[b] || (double)(before + sum[b]) < rank) {
            before += sum[b];
            continue;
        }
        double lo, hi;
        s_edges(b, &lo, &hi);
        double f = (rank - (double)before) / (double)sum[b];
        *us = (int64_t)(lo + f * (hi - lo) + 0.5);
        break;
    }
    *n = total;
    return true;
}

/* ---- availability ---- */

void dm_sla_avail_init(dm_sla_avail_t *a, int64_t now_ms)
{
    memset(a, 0, sizeof *a);
    a->first_up_ms = now_ms;
}

/* Drops intervals that ended before the window of now_ms. */
static void s_forget(dm_sla_avail_t *a, int64_t now_ms)
{
    size_t k = 0;
    for (size_t i = 0; i < a->ndown; i++)
        if (a->down[i].to_ms > now_ms - DM_SLA_WINDOW_MS)
            a->down[k++] = a->down[i];
    a->ndown = k;
}

void dm_sla_avail_down(dm_sla_avail_t *a, int64_t from_ms, int64_t to_ms)
{
    if (to_ms <= from_ms)
        return;
    s_forget(a, to_ms);
    /* Merge with every interval it overlaps or touches. */
    size_t k = 0;
    for (size_t i = 0; i < a->ndown; i++) {
        dm_sla_interval_t *d = &a->down[i];
        if (d->to_ms >= from_ms && d->from_ms <= to_ms) {
            from_ms = d->from_ms < from_ms ? d->from_ms : from_ms;
            to_ms = d->to_ms > to_ms ? d->to_ms : to_ms;
            continue;
        }
        a->down[k++] = *d;
    }
    a->ndown = k;
    if (a->ndown == DM_SLA_AVAIL_INTERVALS) {
        memmove(&a->down[0], &a->down[1], (a->ndown - 1) * sizeof a->down[0]);
        a->ndown--;
    }
    /* Keep them ordered by start. */
    size_t at = a->ndown;
    while (at > 0 && a->down[at - 1].from_ms > from_ms) {
        a->down[at] = a->down[at - 1];
        at--;
    }
    a->down[at] = (dm_sla_interval_t){from_ms, to_ms};
    a->ndown++;
}

void dm_sla_avail_restarted(dm_sla_avail_t *a, int64_t now_ms)
{
    if (!a->first_up_ms || a->first_up_ms > now_ms)
        a->first_up_ms = now_ms;
    if (a->last_beat_ms > 0 && a->last_beat_ms < now_ms)
        dm_sla_avail_down(a, a->last_beat_ms, now_ms);
    a->last_beat_ms = now_ms;
}

bool dm_sla_avail_percent(const dm_sla_avail_t *a, int64_t now_ms, int64_t window_ms,
                          double *pct, int64_t *observed_ms)
{
    int64_t start = now_ms - window_ms;
    if (a->first_up_ms > start)
        start = a->first_up_ms;
    *observed_ms = now_ms > start ? now_ms - start : 0;
    *pct = 0;
    if (*observed_ms < DM_SLA_AVAIL_MIN_OBSERVED_MS)
        return false;
    int64_t down = 0;
    for (size_t i = 0; i < a->ndown; i++) {
        int64_t f = a->down[i].from_ms > start ? a->down[i].from_ms : start;
        int64_t t = a->down[i].to_ms < now_ms ? a->down[i].to_ms : now_ms;
        if (t > f)
            down += t - f;
    }
    *pct = 100.0 * (double)(*observed_ms - down) / (double)*observed_ms;
    return true;
}

static void s_put64(uint8_t *p, int64_t v)
{
    for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
        p[i] = (uint8_t)v;
}

static int64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

size_t dm_sla_avail_encode(const dm_sla_avail_t *a, uint8_t *out)
{
    out[0] = S_AVAIL_VERSION;
    out[1] = (uint8_t)a->ndown;
    s_put64(out + 2, a->first_up_ms);
    s_put64(out + 10, a->last_beat_ms);
    size_t at = 18;
    for (size_t i = 0; i < a->ndown; i++, at += 16) {
        s_put64(out + at, a->down[i].from_ms);
        s_put64(out + at + 8, a->down[i].to_ms);
    }
    return at;
}

bool dm_sla_avail_decode(const uint8_t *in, size_t len, dm_sla_avail_t *a)
{
    memset(a, 0, sizeof *a);
    if (len < 18 || in[0] != S_AVAIL_VERSION || in[1] > DM_SLA_AVAIL_INTERVALS ||
        len != 18 + (size_t)in[1] * 16)
        return false;
    a->first_up_ms = s_get64(in + 2);
    a->last_beat_ms = s_get64(in + 10);
    for (size_t i = 0; i < in[1]; i++) {
        dm_sla_interval_t d = {s_get64(in + 18 + 16 * i), s_get64(in + 26 + 16 * i)};
        if (d.to_ms <= d.from_ms) {
            memset(a, 0, sizeof *a);
            return false;
        }
        a->down[a->ndown++] = d;
    }
    return true;
}

/* ---- judging ---- */

void dm_sla_duration_text(int64_t ms, char *out, size_t cap)
{
    long long v = ms < 0 ? 0 : (long long)ms;
    if (v < S_MS_PER_S)
        snprintf(out, cap, "%lldms", v);
    else if (v < S_MS_PER_MIN && v % S_MS_PER_S == 0)
        snprintf(out, cap, "%llds", v / S_MS_PER_S);
    else if (v < S_MS_PER_MIN)
        snprintf(out, cap, "%.1fs", (double)v / S_MS_PER_S);
    else if (v < S_MS_PER_H)
        snprintf(out, cap, "%lldm%02llds", v / S_MS_PER_MIN, v % S_MS_PER_MIN / S_MS_PER_S);
    else if (v < S_MS_PER_D)
        snprintf(out, cap, "%lldh%02lldm", v / S_MS_PER_H, v % S_MS_PER_H / S_MS_PER_MIN);
    else
        snprintf(out, cap, "%lldd%02lldh", v / S_MS_PER_D, v % S_MS_PER_D / S_MS_PER_H);
}

static void s_freshness(const dm_contract_t *c, const dm_sla_inputs_t *in, int64_t now_ms,
                        dm_sla_term_t *t)
{
    t->kind = "freshness";
    dm_sla_duration_text(c->freshness_ms, t->target, sizeof t->target);
    int64_t at = in->newest_event_ms ? in->newest_event_ms : in->last_ingest_ms;
    if (!at) {
        t->state = DM_SLA_UNKNOWN;
        snprintf(t->measured, sizeof t->measured, "no ingest yet");
        return;
    }
    int64_t age = now_ms > at ? now_ms - at : 0; /* a time ahead of the clock: fresh */
    char d[32];
    dm_sla_duration_text(age, d, sizeof d);
    snprintf(t->measured, sizeof t->measured, "%s%s", d,
             in->newest_event_ms ? "" : " since the last ingest");
    t->state = age <= c->freshness_ms ? DM_SLA_MET : DM_SLA_BREACHED;
}

static void s_latency(const dm_contract_t *c, const dm_sla_inputs_t *in, int64_t now_ms,
                      dm_sla_term_t *t)
{
    t->kind = "latency";
    char d[32], w[32];
    dm_sla_duration_text(c->latency_ms, d, sizeof d);
    dm_sla_duration_text(DM_SLA_WINDOW_MS, w, sizeof w);
    snprintf(t->target, sizeof t->target, "p%g < %s", c->latency_percentile, d);
    int64_t us = 0;
    uint64_t n = 0;
    if (!in->latency ||
        !dm_sla_latency_percentile(in->latency, now_ms, c->latency_percentile, &us, &n)) {
        t->state = DM_SLA_UNKNOWN;
        snprintf(t->measured, sizeof t->measured, "no queries in %s", w);
        return;
    }
    if (us < 10 * S_US_PER_MS)
        snprintf(d, sizeof d, "%.2fms", (double)us / S_US_PER_MS);
    else
        dm_sla_duration_text(us / S_US_PER_MS, d, sizeof d);
    snprintf(t->measured, sizeof t->measured, "p%g %s over %s (%llu quer%s)",
             c->latency_percentile, d, w, (unsigned long long)n, n == 1 ? "y" : "ies");
    t->state = us < c->latency_ms * S_US_PER_MS ? DM_SLA_MET : DM_SLA_BREACHED;
}

static void s_availability(const dm_contract_t *c, const dm_sla_inputs_t *in, int64_t now_ms,
                           dm_sla_term_t *t)
{
    t->kind = "availability";
    snprintf(t->target, sizeof t->target, "%g%%", c->availability);
    double pct = 0;
    int64_t observed = 0;
    char d[32];
    if (!in->avail ||
        !dm_sla_avail_percent(in->avail, now_ms, DM_SLA_WINDOW_MS, &pct, &observed)) {
        dm_sla_duration_text(DM_SLA_AVAIL_MIN_OBSERVED_MS, d, sizeof d);
        t->state = DM_SLA_UNKNOWN;
        snprintf(t->measured, sizeof t->measured, "observed under %s", d);
        return;
    }
    if (in->avail->peer_seen_ms <= 0 || in->avail->peer_seen_ms < now_ms - DM_SLA_WINDOW_MS) {
        dm_sla_duration_text(DM_SLA_WINDOW_MS, d, sizeof d);
        t->state = DM_SLA_UNKNOWN;
        snprintf(t->measured, sizeof t->measured, "no peer has seen this node in the last %s", d);
        return;
    }
    dm_sla_duration_text(observed, d, sizeof d);
    snprintf(t->measured, sizeof t->measured, "%.3f%% over %s", pct, d);
    t->state = pct >= c->availability ? DM_SLA_MET : DM_SLA_BREACHED;
}

size_t dm_sla_judge(const dm_contract_t *c, const dm_sla_inputs_t *in, int64_t now_ms,
                    dm_sla_term_t out[DM_SLA_TERMS])
{
    size_t n = 0;
    memset(out, 0, DM_SLA_TERMS * sizeof *out);
    if (c->freshness_ms >= 0)
        s_freshness(c, in, now_ms, &out[n++]);
    if (c->latency_ms >= 0 && c->latency_percentile > 0)
        s_latency(c, in, now_ms, &out[n++]);
    if (c->availability > 0)
        s_availability(c, in, now_ms, &out[n++]);
    return n;
}
