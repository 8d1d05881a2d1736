/* sla.h: a product's SLA terms (spec.sla: freshness, availability,
 * latency) measured by its owner and judged met, breached or unknown, each
 * with the measured value as text (docs/sla.md).
 *
 * Pure logic: no store, no sockets; time is an argument (Unix ms).
 *   - latency: a sliding window of DM_SLA_LAT_SLOTS one-minute slots, each
 *     a log-scale histogram of query latencies (four bins per octave of
 *     microseconds); recording costs one relaxed atomic add, plus a short
 *     lock once a minute when a slot turns over.
 *   - availability: the node's down intervals (restarts, from its persisted
 *     heartbeat; refutations, when peers suspected it) over a window;
 *     unknown when no peer was alive in the window.
 *   - freshness: now minus the newest event time (or the last ingest) the
 *     quality report carries (O(1)).
 * Thread-safety: dm_sla_latency_record may run on any thread concurrently
 * with the readers; dm_sla_avail_t is the caller's (one thread). */
#ifndef DM_SLA_H
#define DM_SLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract/contract.h"

#define DM_SLA_WINDOW_MS (60 * 60 * 1000) /* latency and availability: the last hour */
#define DM_SLA_LAT_SLOT_MS 60000          /* one latency slot: a minute */
#define DM_SLA_LAT_SLOTS (DM_SLA_WINDOW_MS / DM_SLA_LAT_SLOT_MS)
#define DM_SLA_LAT_PER_OCTAVE 4           /* bins per doubling: about 19% wide */
#define DM_SLA_LAT_OCTAVES 32             /* 1 us .. 2^32 us (71 min); above: the last bin */
#define DM_SLA_LAT_BINS (DM_SLA_LAT_PER_OCTAVE * DM_SLA_LAT_OCTAVES)
/* Down intervals remembered (the oldest goes first); with the heartbeat
 * they fit in DM_SLA_AVAIL_RECORD_MAX bytes. */
#define DM_SLA_AVAIL_INTERVALS 32
#define DM_SLA_AVAIL_RECORD_MAX (2 + 2 * 8 + DM_SLA_AVAIL_INTERVALS * 16)
/* Availability is unknown until the node has been observed this long. */
#define DM_SLA_AVAIL_MIN_OBSERVED_MS 5000
#define DM_SLA_TEXT_MAX 96 /* a term's target and measured texts, NUL included */
#define DM_SLA_TERMS 3

typedef enum { DM_SLA_UNKNOWN = 0, DM_SLA_MET, DM_SLA_BREACHED } dm_sla_state;

/* One judged term. */
typedef struct {
    const char *kind; /* "freshness", "latency", "availability" (static) */
    dm_sla_state state;
    char target[DM_SLA_TEXT_MAX];   /* as the contract says it: "5m", "p99 < 1s", "99.9%" */
    char measured[DM_SLA_TEXT_MAX]; /* "3m12s", "p99 14ms over 1h (120 queries)", ... */
} dm_sla_term_t;

/* "met", "breached", "unknown". */
const char *dm_sla_state_name(dm_sla_state s);

/* ---- latency ---- */

typedef struct dm_sla_latency dm_sla_latency_t;

/* A new, empty window; NULL when out of memory. */
dm_sla_latency_t *dm_sla_latency_new(void);
/* NULL-safe; sets *self_p to NULL. No recorder may be running. */
void dm_sla_latency_destroy(dm_sla_latency_t **self_p);
/* Records one latency (microseconds; negative counts as 0) at now_ms.
 * Any thread; cannot fail. */
void dm_sla_latency_record(dm_sla_latency_t *w, int64_t now_ms, int64_t latency_us);
/* The pct percentile (0 < pct <= 100) of the latencies recorded within
 * DM_SLA_WINDOW_MS before now_ms, in microseconds, interpolated within
 * its bin; *n gets the number of samples. false (and *us 0) when there are
 * none. Any thread. */
bool dm_sla_latency_percentile(const dm_sla_latency_t *w, int64_t now_ms, double pct,
                               int64_t *us, uint64_t *n);

/* ---- availability ---- */

typedef struct {
    int64_t from_ms, to_ms; /* Unix ms, from < to */
} dm_sla_interval_t;

typedef struct {
    int64_t first_up_ms; /* when the node was first seen running (0: never) */
    int64_t last_beat_ms; /* the last heartbeat written (0: none) */
    dm_sla_interval_t down[DM_SLA_AVAIL_INTERVALS]; /* oldest first */
    size_t ndown;
    /* The last time (Unix ms; 0: never) membership held a live peer, one
     * that can see this node: in memory only (not in the persisted form).
     * With none within the window availability is unknown: nobody saw
     * the node, so its own view is not its peers'. */
    int64_t peer_seen_ms;
} dm_sla_avail_t;

/* A node that starts at now_ms: first_up_ms now, nothing down. */
void dm_sla_avail_init(dm_sla_avail_t *a, int64_t now_ms);
/* Records [from_ms, to_ms) as down; merged with an interval it overlaps or
 * touches; intervals older than the window are dropped first, then the
 * oldest when the table is full. An empty or reversed interval is ignored. */
void dm_sla_avail_down(dm_sla_avail_t *a, int64_t from_ms, int64_t to_ms);
/* A start at now_ms after a stop: the time since the last heartbeat is
 * down (a beat from the future, a clock that went back, counts nothing). */
void dm_sla_avail_restarted(dm_sla_avail_t *a, int64_t now_ms);
/* Percent of [now_ms - window_ms, now_ms] (cut at first_up_ms) the node
 * was up; *observed_ms gets the length judged. false when under
 * DM_SLA_AVAIL_MIN_OBSERVED_MS was observed. */
bool dm_sla_avail_percent(const dm_sla_avail_t *a, int64_t now_ms, int64_t window_ms,
                          double *pct, int64_t *observed_ms);
/* The persisted form (a version byte, a count, the two times, the
 * intervals, big-endian): returns the bytes written to out (at least
 * DM_SLA_AVAIL_RECORD_MAX long). Cannot fail. */
size_t dm_sla_avail_encode(const dm_sla_avail_t *a, uint8_t *out);
/* Decodes it; false (a zeroed) for anything malformed: a wrong version or
 * length, a count over DM_SLA_AVAIL_INTERVALS, a reversed interval. */
bool dm_sla_avail_decode(const uint8_t *in, size_t len, dm_sla_avail_t *a);

/* ---- judging ---- */

/* What the terms are measured from; a NULL pointer or 0 time is unknown. */
typedef struct {
    int64_t newest_event_ms;       /* the quality report's */
    int64_t last_ingest_ms;        /* the quality report's (or the store's) */
    const dm_sla_latency_t *latency;
    const dm_sla_avail_t *avail;
} dm_sla_inputs_t;

/* Judges each term contract c has (in the order freshness, latency,
 * availability) into out; returns how many (0..DM_SLA_TERMS). Freshness:
 * age = now - newest event (the last ingest when there is none), met when
 * age <= sla.freshness; a time ahead of the clock counts as age 0.
 * Latency: the window's pN, met when below the target. Availability: met
 * when the percent up over the window is at least the target; unknown
 * when under DM_SLA_AVAIL_MIN_OBSERVED_MS was observed or no peer was
 * alive within the window (avail->peer_seen_ms). */
size_t dm_sla_judge(const dm_contract_t *c, const dm_sla_inputs_t *in, int64_t now_ms,
                    dm_sla_term_t out[DM_SLA_TERMS]);

/* Writes ms as people read a duration ("850ms", "12.5s", "3m12s",
 * "2h05m", "3d04h") into out (at least 24 bytes). */
void dm_sla_duration_text(int64_t ms, char *out, size_t cap);

#endif
