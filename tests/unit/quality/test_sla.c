/* test_sla.c: the SLA terms (node/quality/sla.h): the latency window and
 * its percentiles, availability from down intervals and the persisted
 * heartbeat, freshness, and each term judged met, breached or unknown. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "quality/sla.h"

#define NOW INT64_C(1800000000000) /* a Unix ms well away from 0 */
#define MIN_MS INT64_C(60000)

/* A contract with only the SLA terms set (-1 / 0: absent). */
static dm_contract_t s_contract(int64_t freshness_ms, double pct, int64_t latency_ms,
                                double availability)
{
    dm_contract_t c;
    memset(&c, 0, sizeof c);
    c.freshness_ms = freshness_ms;
    c.latency_percentile = pct;
    c.latency_ms = latency_ms;
    c.availability = availability;
    return c;
}

Test(sla, latency_percentile_of_uniform_samples)
{
    dm_sla_latency_t *w = dm_sla_latency_new();
    cr_assert_not_null(w);
    for (int i = 1; i <= 1000; i++)
        dm_sla_latency_record(w, NOW, i * 1000); /* 1 ms .. 1000 ms */
    int64_t us = 0;
    uint64_t n = 0;
    cr_assert(dm_sla_latency_percentile(w, NOW, 99, &us, &n));
    cr_assert_eq(n, 1000);
    /* Exact: 990 ms; bins are a quarter octave wide, interpolated. */
    cr_assert(us > 900000 && us < 1080000, "p99 %lld us", (long long)us);
    cr_assert(dm_sla_latency_percentile(w, NOW, 50, &us, &n));
    cr_assert(us > 450000 && us < 550000, "p50 %lld us", (long long)us);
    dm_sla_latency_destroy(&w);
    cr_assert_null(w);
}

Test(sla, latency_window_forgets_old_minutes)
{
    dm_sla_latency_t *w = dm_sla_latency_new();
    dm_sla_latency_record(w, NOW, 5000000); /* 5 s, now */
    int64_t us = 0;
    uint64_t n = 0;
    cr_assert(dm_sla_latency_percentile(w, NOW + 59 * MIN_MS, 99, &us, &n));
    cr_assert_eq(n, 1);
    /* An hour later the slot is outside the window, and reused. */
    cr_assert_not(dm_sla_latency_percentile(w, NOW + 60 * MIN_MS, 99, &us, &n));
    cr_assert_eq(n, 0);
    dm_sla_latency_record(w, NOW + 60 * MIN_MS, 2000);
    cr_assert(dm_sla_latency_percentile(w, NOW + 60 * MIN_MS, 99, &us, &n));
    cr_assert_eq(n, 1, "the reused slot starts empty");
    cr_assert(us < 3000, "%lld", (long long)us);
    dm_sla_latency_destroy(&w);
}

Test(sla, latency_extremes_land_in_the_end_bins)
{
    dm_sla_latency_t *w = dm_sla_latency_new();
    dm_sla_latency_record(w, NOW, -5);
    dm_sla_latency_record(w, NOW, 0);
    dm_sla_latency_record(w, NOW, INT64_MAX);
    int64_t us = 0;
    uint64_t n = 0;
    cr_assert(dm_sla_latency_percentile(w, NOW, 100, &us, &n));
    cr_assert_eq(n, 3);
    cr_assert(us >= INT64_C(1) << 31, "the top bin reports its range: %lld", (long long)us);
    cr_assert(dm_sla_latency_percentile(w, NOW, 10, &us, &n));
    cr_assert(us <= 2, "%lld", (long long)us);
    dm_sla_latency_destroy(&w);
}

typedef struct {
    dm_sla_latency_t *w;
    int64_t t0;
} s_rec_arg;

static void *s_recorder(void *p)
{
    s_rec_arg *a = p;
    for (int i = 0; i < 100000; i++) /* crosses minutes: slots turn over meanwhile */
        dm_sla_latency_record(a->w, a->t0 + i, 1000);
    return NULL;
}

Test(sla, latency_records_from_threads_are_all_counted)
{
    dm_sla_latency_t *w = dm_sla_latency_new();
    pthread_t th[4];
    s_rec_arg a = {w, NOW - 30000};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, s_recorder, &a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    int64_t us = 0;
    uint64_t n = 0;
    cr_assert(dm_sla_latency_percentile(w, NOW + 100000, 50, &us, &n));
    cr_assert_eq(n, 400000);
    dm_sla_latency_destroy(&w);
}

Test(sla, availability_counts_down_intervals_in_the_window)
{
    dm_sla_avail_t a;
    dm_sla_avail_init(&a, NOW - 2 * 60 * MIN_MS);
    dm_sla_avail_down(&a, NOW - 90 * MIN_MS, NOW - 80 * MIN_MS); /* before the window */
    dm_sla_avail_down(&a, NOW - 30 * MIN_MS, NOW - 30 * MIN_MS + 36000);
    double pct = 0;
    int64_t observed = 0;
    cr_assert(dm_sla_avail_percent(&a, NOW, DM_SLA_WINDOW_MS, &pct, &observed));
    cr_assert_eq(observed, DM_SLA_WINDOW_MS);
    cr_assert_float_eq(pct, 99.0, 1e-9); /* 36 s of an hour */
}

Test(sla, availability_merges_overlapping_intervals)
{
    dm_sla_avail_t a;
    dm_sla_avail_init(&a, NOW - 60 * MIN_MS);
    dm_sla_avail_down(&a, NOW - 10000, NOW - 4000);
    dm_sla_avail_down(&a, NOW - 6000, NOW - 1000);
    dm_sla_avail_down(&a, NOW - 1000, NOW); /* touches: one interval */
    cr_assert_eq(a.ndown, 1);
    cr_assert_eq(a.down[0].from_ms, NOW - 10000);
    cr_assert_eq(a.down[0].to_ms, NOW);
    dm_sla_avail_down(&a, NOW - 5, NOW - 5); /* empty: ignored */
    cr_assert_eq(a.ndown, 1);
}

Test(sla, availability_is_unknown_when_barely_observed)
{
    dm_sla_avail_t a;
    dm_sla_avail_init(&a, NOW - 2000);
    double pct = 1;
    int64_t observed = 0;
    cr_assert_not(dm_sla_avail_percent(&a, NOW, DM_SLA_WINDOW_MS, &pct, &observed));
    cr_assert_eq(observed, 2000);
}

Test(sla, restart_counts_the_time_since_the_last_beat)
{
    dm_sla_avail_t a;
    dm_sla_avail_init(&a, NOW - 60 * MIN_MS);
    a.last_beat_ms = NOW - 60000;
    uint8_t rec[DM_SLA_AVAIL_RECORD_MAX];
    size_t len = dm_sla_avail_encode(&a, rec);
    dm_sla_avail_t b;
    cr_assert(dm_sla_avail_decode(rec, len, &b));
    dm_sla_avail_restarted(&b, NOW);
    cr_assert_eq(b.first_up_ms, NOW - 60 * MIN_MS, "the first start is kept");
    cr_assert_eq(b.ndown, 1);
    double pct = 0;
    int64_t observed = 0;
    cr_assert(dm_sla_avail_percent(&b, NOW, DM_SLA_WINDOW_MS, &pct, &observed));
    cr_assert_float_eq(pct, 100.0 * 59 / 60, 1e-9);
    /* A beat from the future (the clock went back) counts nothing. */
    dm_sla_avail_t c;
    dm_sla_avail_init(&c, NOW - 60 * MIN_MS);
    c.last_beat_ms = NOW + 5000;
    dm_sla_avail_restarted(&c, NOW);
    cr_assert_eq(c.ndown, 0);
}

Test(sla, heartbeat_record_round_trips_and_refuses_garbage)
{
    dm_sla_avail_t a, b;
    dm_sla_avail_init(&a, NOW - 60 * MIN_MS);
    for (int i = 0; i < DM_SLA_AVAIL_INTERVALS + 5; i++) /* more than fit: oldest go */
        dm_sla_avail_down(&a, NOW - 50 * MIN_MS + i * 10000, NOW - 50 * MIN_MS + i * 10000 + 10);
    cr_assert_eq(a.ndown, DM_SLA_AVAIL_INTERVALS);
    cr_assert_eq(a.down[0].from_ms, NOW - 50 * MIN_MS + 5 * 10000);
    uint8_t rec[DM_SLA_AVAIL_RECORD_MAX];
    size_t len = dm_sla_avail_encode(&a, rec);
    cr_assert_eq(len, DM_SLA_AVAIL_RECORD_MAX);
    cr_assert(dm_sla_avail_decode(rec, len, &b));
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
    cr_assert_not(dm_sla_avail_decode(rec, len - 1, &b));
    rec[0] = 9;
    cr_assert_not(dm_sla_avail_decode(rec, len, &b));
    rec[0] = 1;
    rec[18 + 7] = 0xff; /* the first interval now starts after it ends */
    cr_assert_not(dm_sla_avail_decode(rec, len, &b));
    cr_assert_eq(b.ndown, 0);
}

Test(sla, freshness_met_breached_and_unknown)
{
    dm_contract_t c = s_contract(5 * MIN_MS, 0, -1, 0);
    dm_sla_term_t t[DM_SLA_TERMS];
    dm_sla_inputs_t in = {.newest_event_ms = NOW - 3 * MIN_MS - 12000};
    cr_assert_eq(dm_sla_judge(&c, &in, NOW, t), 1);
    cr_assert_str_eq(t[0].kind, "freshness");
    cr_assert_eq(t[0].state, DM_SLA_MET);
    cr_assert_str_eq(t[0].target, "5m00s");
    cr_assert_str_eq(t[0].measured, "3m12s");
    in.newest_event_ms = NOW - 6 * MIN_MS;
    dm_sla_judge(&c, &in, NOW, t);
    cr_assert_eq(t[0].state, DM_SLA_BREACHED);
    in = (dm_sla_inputs_t){.last_ingest_ms = NOW - 1000};
    dm_sla_judge(&c, &in, NOW, t);
    cr_assert_eq(t[0].state, DM_SLA_MET);
    cr_assert_str_eq(t[0].measured, "1s since the last ingest");
    in = (dm_sla_inputs_t){0};
    dm_sla_judge(&c, &in, NOW, t);
    cr_assert_eq(t[0].state, DM_SLA_UNKNOWN);
}

Test(sla, freshness_with_an_event_time_ahead_of_the_clock_is_fresh)
{
    dm_contract_t c = s_contract(1000, 0, -1, 0);
    dm_sla_term_t t[DM_SLA_TERMS];
    dm_sla_inputs_t in = {.newest_event_ms = NOW + 60 * MIN_MS};
    dm_sla_judge(&c, &in, NOW, t);
    cr_assert_eq(t[0].state, DM_SLA_MET);
    cr_assert_str_eq(t[0].measured, "0ms");
}

Test(sla, latency_judged_against_the_contract)
{
    dm_contract_t c = s_contract(-1, 99, 1000, 0);
    dm_sla_latency_t *w = dm_sla_latency_new();
    dm_sla_term_t t[DM_SLA_TERMS];
    dm_sla_inputs_t in = {.latency = w};
    cr_assert_eq(dm_sla_judge(&c, &in, NOW, t), 1);
    cr_assert_str_eq(t[0].kind, "latency");
    cr_assert_str_eq(t[0].target, "p99 < 1s");
    cr_assert_eq(t[0].state, DM_SLA_UNKNOWN, "no queries: unknown");
    for (int i = 0; i < 100; i++)
        dm_sla_latency_record(w, NOW, 14000);
    dm_sla_judge(&c, &in, NOW, t);
    cr_assert_eq(t[0].state, DM_SLA_MET);
    cr_assert(strstr(t[0].measured, "(100 queries)"), "%s", t[0].measured);
    for (int i = 0; i < 5; i++) /* 5 of 105 slow: the p99 is slow */
        dm_sla_latency_record(w, NOW, 3000000);
    dm_sla_judge(&c, &in, NOW, t);
    cr_assert_eq(t[0].state, DM_SLA_BREACHED, "%s", t[0].measured);
    dm_sla_latency_destroy(&w);
}

Test(sla, availability_judged_against_the_contract)
{
    dm_contract_t c = s_contract(-1, 0, -1, 99.9);
    dm_sla_avail_t a;
    dm_sla_avail_init(&a, NOW - 60 * MIN_MS);
    a.peer_seen_ms = NOW - 1000; /* a peer was alive a second ago */
    dm_sla_term_t t[DM_SLA_TERMS];
    dm_sla_inputs_t in = {.avail = &a};
    dm_sla_judge(&c, &in, NOW, t);
    cr_assert_str_eq(t[0].kind, "availability");
    cr_assert_str_eq(t[0].target, "99.9%");
    cr_assert_eq(t[0].state, DM_SLA_MET);
    cr_assert_str_eq(t[0].measured, "100.000% over 1h00m");
    dm_sla_avail_down(&a, NOW - 10000, NOW - 5000); /* 5 s of an hour: 99.86% */
    dm_sla_judge(&c, &in, NOW, t);
    cr_assert_eq(t[0].state, DM_SLA_BREACHED, "%s", t[0].measured);
}

Test(sla, availability_is_unknown_when_no_peer_saw_the_node)
{
    /* A node alone (or cut off from every peer) for the whole window has
     * no peers' view: not "100% met". */
    dm_contract_t c = s_contract(-1, 0, -1, 99.9);
    dm_sla_avail_t a;
    dm_sla_avail_init(&a, NOW - 60 * MIN_MS);
    dm_sla_term_t t[DM_SLA_TERMS];
    dm_sla_inputs_t in = {.avail = &a};
    cr_assert_eq(dm_sla_judge(&c, &in, NOW, t), 1);
    cr_assert_eq(t[0].state, DM_SLA_UNKNOWN, "%s", t[0].measured);
    cr_assert_str_eq(t[0].measured, "no peer has seen this node in the last 1h00m");
    a.peer_seen_ms = NOW - DM_SLA_WINDOW_MS - 1; /* last seen before the window */
    dm_sla_judge(&c, &in, NOW, t);
    cr_assert_eq(t[0].state, DM_SLA_UNKNOWN, "%s", t[0].measured);
    a.peer_seen_ms = NOW - DM_SLA_WINDOW_MS + 1;
    dm_sla_judge(&c, &in, NOW, t);
    cr_assert_eq(t[0].state, DM_SLA_MET, "%s", t[0].measured);
}

Test(sla, a_contract_without_sla_has_no_terms)
{
    dm_contract_t c = s_contract(-1, 0, -1, 0);
    dm_sla_term_t t[DM_SLA_TERMS];
    dm_sla_inputs_t in = {0};
    cr_assert_eq(dm_sla_judge(&c, &in, NOW, t), 0);
    c = s_contract(60000, 99.9, 250, 99.5);
    cr_assert_eq(dm_sla_judge(&c, &in, NOW, t), 3);
    cr_assert_str_eq(t[1].target, "p99.9 < 250ms");
}

Test(sla, duration_texts)
{
    char b[32];
    int64_t ms[] = {0, 850, 1000, 12500, 192000, 3600000 + 5 * 60000, 3 * 86400000 + 4 * 3600000};
    const char *want[] = {"0ms", "850ms", "1s", "12.5s", "3m12s", "1h05m", "3d04h"};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        dm_sla_duration_text(ms[i], b, sizeof b);
        cr_assert_str_eq(b, want[i]);
    }
}
