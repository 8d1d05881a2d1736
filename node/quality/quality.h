/* quality.h: a product's dataset checks (validateQuality), judged by its
 * owner from state the writer keeps up to date (docs/quality.md).
 *
 * Record-level rules (not_null, in_list, range, regex without thresholds)
 * still quarantine at ingest (record/schema.h). What this module adds is
 * the dataset view: every check of the contract yields a result, from
 * counts and indexes that each batch updates inside its own transaction
 * (dm_store_hook_t), so judging costs O(checks), never a rescan. Results
 * and their history live in the store (storage/quality_db.h).
 *
 * Thread-safety: a dm_quality_batch_t belongs to the writer thread; the
 * read functions may run on any thread. */
#ifndef DM_QUALITY_H
#define DM_QUALITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "contract/contract.h"
#include "record/schema.h"
#include "storage/store.h"

/* Worst first is highest: the report's outcome is the maximum. Skipped
 * sits below warn: a check that cannot be judged yet (no history) is
 * reported, not failed. */
typedef enum {
    DM_QOUT_PASS = 0,
    DM_QOUT_SKIPPED = 1,
    DM_QOUT_WARN = 2,
    DM_QOUT_FAIL = 3,
    DM_QOUT_ERROR = 4
} dm_qoutcome;

#define DM_QUALITY_SAMPLES_MAX 5 /* failing keys or values kept per result */
#define DM_QUALITY_HISTORY_MAX 1000 /* reports kept per product, oldest dropped first */
/* freshness: an event time more than this ahead of the writer's clock does
 * not count as the newest (one row stamped years ahead would otherwise
 * keep the product fresh for years); such rows are counted and the result
 * warns about them. */
#define DM_QUALITY_CLOCK_SKEW_MS (5LL * 60 * 1000)

/* "pass", "skipped", "warn", "fail", "error". */
const char *dm_quality_outcome_name(dm_qoutcome o);
/* The inverse; false for anything else. */
bool dm_quality_outcome_parse(const char *s, dm_qoutcome *out);

typedef struct {
    char *name;            /* the check's name, or "RULE(COLUMN)" */
    dm_check_rule rule;
    char *column;          /* NULL when the check has none */
    dm_qoutcome outcome;
    double observed;       /* rule-specific number (failure rate, delta, age in ms, extra rows) */
    char *observed_text;   /* the same, for people */
    char *threshold;       /* what it was judged against, for people */
    char *reason;          /* why it warned, failed, erred or was skipped; NULL on pass */
    char *samples[DM_QUALITY_SAMPLES_MAX];
    size_t nsamples;
    int64_t at_ms;
} dm_qresult_t;

typedef struct {
    int64_t at_ms;
    dm_qoutcome outcome;   /* the worst result's; PASS when there are none */
    uint64_t records;
    int64_t last_ingest_ms;  /* 0: never */
    int64_t newest_event_ms; /* freshness's event time; 0: none */
    dm_qresult_t *results;
    size_t n;
} dm_qreport_t;

/* Frees what r owns and zeroes it. NULL-safe. */
void dm_quality_report_clear(dm_qreport_t *r);

/* The interface's first spellings (bd24061), kept so that code written
 * against them builds; scripts/check_layout.py wants functions named
 * after their header. */
#define dm_qoutcome_name dm_quality_outcome_name
#define dm_qoutcome_parse dm_quality_outcome_parse
#define dm_qreport_clear dm_quality_report_clear

/* ---- the writer's side ---- */

typedef struct dm_quality_batch dm_quality_batch_t;

/* Prepares the hook that keeps product pid's check state (s: its contract
 * compiled, borrowed until dm_quality_batch_destroy) up to date during one
 * batch commit (dm_store_commit_batch_hooked), and judges the checks and
 * stores the report in the same transaction. *hook is filled; it and *out
 * stay valid until dm_quality_batch_destroy. now_ms is the batch's time. */
DM_NODISCARD dm_err dm_quality_batch_new(dm_store_t *store, uint32_t pid,
                                         const dm_schema_t *s, int64_t now_ms,
                                         dm_quality_batch_t **out, dm_store_hook_t *hook,
                                         dm_buf_t *why);
void dm_quality_batch_destroy(dm_quality_batch_t **self_p);

/* Ends the batch's ingest run: finish also measures the product's row
 * count (row_count_delta's history) and judges and stores a full report,
 * readable with dm_quality_batch_report after the commit. Without it a
 * batch only updates the checks' state. */
void dm_quality_batch_end_run(dm_quality_batch_t *self);
/* The report judged at the end of the run (NULL before, or when the batch
 * did not end a run); valid until dm_quality_batch_destroy. */
const dm_qreport_t *dm_quality_batch_report(const dm_quality_batch_t *self);

/* The batch's rows are each followed, past their length, by the block of
 * keys dm_quality_keys_append made for them with the same contract: the
 * hook takes the unique checks' keys from there, not from the rows. */
void dm_quality_batch_rows_keyed(dm_quality_batch_t *self);
/* The batch will have about nrows rows: buffers are sized for them once. */
void dm_quality_batch_expect_rows(dm_quality_batch_t *self, size_t nrows);

/* Buffers one writer's batches pass on to the next: a unique check's ops
 * take megabytes per batch, and fresh memory costs a page fault per 4 KB
 * written (a fifth of the check's time). Only the writer's thread uses it. */
typedef struct dm_quality_scratch dm_quality_scratch_t;
/* NULL when out of memory (batches then allocate their own). */
dm_quality_scratch_t *dm_quality_scratch_new(void);
void dm_quality_scratch_destroy(dm_quality_scratch_t **self_p);
/* The batch takes scratch's buffers (NULL: none) and gives them back when
 * it is destroyed: scratch must outlive it. */
void dm_quality_batch_use_scratch(dm_quality_batch_t *self, dm_quality_scratch_t *scratch);

/* ---- the ingest validator's side ---- */

/* The unique checks' value keys of rows, made by whoever has the rows in
 * its cache (the validator, just after validating one) for the writer's
 * hook (quality_keys.c). */
typedef struct dm_quality_keys dm_quality_keys_t;

/* For contract c and its schema s (borrowed until destroyed); *out NULL
 * when c has no unique check that keeps state. DM_ERR_NOMEM, or
 * DM_ERR_INVALID (a line in why) when a check does not compile. */
DM_NODISCARD dm_err dm_quality_keys_new(const dm_contract_t *c, const dm_schema_t *s,
                                        dm_quality_keys_t **out, dm_buf_t *why);
void dm_quality_keys_destroy(dm_quality_keys_t **self_p);
/* Appends the keys of row (a valid row of s) to out: one block per row,
 * right after the row's bytes. Not thread-safe (scratch inside). */
void dm_quality_keys_append(dm_quality_keys_t *self, const void *row, size_t len,
                            dm_buf_t *out);

/* ---- readers ---- */

/* Judges every check of product pid at now_ms from the stored state and,
 * when store_it, keeps the report in the history (the last
 * DM_QUALITY_HISTORY_MAX). Storing never waits for readers: DM_ERR_BUSY
 * when the map would have to grow while a transaction is open (judge
 * again without storing, or later). A check whose state cannot be read is
 * an error result, not a failed call.
 *
 * This, not dm_quality_latest, is how a reader learns the product's health
 * now: a stored report was judged at its own time, and freshness ages.
 * With store_it false it is cheap and safe on the node loop, each tick:
 * one LMDB read transaction (no write, only the store's shared hold every
 * query takes, never DM_ERR_BUSY, concurrent with the writer), O(checks)
 * state reads plus at most DM_QUALITY_MEASURES_MAX row-count measurements
 * for a row_count_delta, no scan of rows and no pattern compiled; c must
 * stay valid for the call (hold the registry's reference). */
DM_NODISCARD dm_err dm_quality_run(dm_store_t *store, uint32_t pid, const dm_contract_t *c,
                                   int64_t now_ms, bool store_it, dm_qreport_t *out,
                                   dm_buf_t *why);

/* The latest stored report of pid: one read transaction, one cursor
 * step and a decode, whatever the product's size. It is as old as its
 * at_ms (freshness then, not now): to show health, judge with
 * dm_quality_run(.., false, ..). DM_ERR_NOTFOUND (why
 * untouched) when none was stored. */
DM_NODISCARD dm_err dm_quality_latest(dm_store_t *store, uint32_t pid, dm_qreport_t *out,
                                      dm_buf_t *why);

/* Whether spec.quality.schedule (every_ms > 0) makes the checks due at
 * now_ms, the latest stored report judged at latest_ms (has_latest false:
 * none yet, due): it is older than every_ms, or stamped more than
 * DM_QUALITY_CLOCK_SKEW_MS ahead of now (the clock stepped back; the
 * schedule would otherwise stop until it caught up with the report). */
bool dm_quality_schedule_due(bool has_latest, int64_t latest_ms, int64_t every_ms,
                             int64_t now_ms);

/* Up to max stored reports of pid, newest first: *out is an array of *n
 * reports (the caller clears each and frees it; NULL when none). */
DM_NODISCARD dm_err dm_quality_history(dm_store_t *store, uint32_t pid, size_t max,
                                       dm_qreport_t **out, size_t *n, dm_buf_t *why);

#endif
