/* quality_priv.h: what the files of node/quality/ share.
 *
 * Calls go one way: quality_batch.c (the writer's hook) uses
 * quality_eval.c (a row against a check), quality_judge.c (results from
 * state), quality_uniq_mem.c (unique's counts in the writer's memory),
 * quality_uniq.c (the durable uniqueness index, past the memory bound)
 * and quality_state.c (state in quality_db); quality_uniq_mem.c uses
 * quality_uniq_table.c (its hash table), quality_uniq.c,
 * quality_uniq_bloom.c (the writer's cache of each check) and
 * quality_eval.c; quality_uniq.c uses quality_uniq_bloom.c (its filter)
 * and quality_state.c (which quality_uniq_bloom.c uses too, for its u64
 * codec); quality_judge.c uses
 * quality_state.c and quality_report.c (reports, their encoding and
 * history). Nobody outside node/quality/ includes it.
 *
 * Keys in the quality database (after the product id, storage/quality_db.h):
 *   'P'                 -> the product's quality state (s_pstate)
 *   'S' id u64          -> a check's state (dm_quality__cstate_t)
 *   'U' id u64 value    -> u64: live rows holding that value (unique), as
 *                          of the last fold (quality_uniq.c); only for a
 *                          check past the memory bound, like 'D' and 'N'
 *                          (else the counts are in the writer's memory,
 *                          quality_uniq_mem.c)
 *   'D' id u64 seq u64  -> a pending run: one batch's sorted (value, delta)s
 *   'N' id u64          -> u64: entries of the 'U' index of check id
 *   'F' id u64          -> no longer written: a Bloom filter stored by
 *                          older builds, deleted when seen (the filter is
 *                          in memory now, quality_uniq_bloom.c)
 *   'M' seq u64         -> a row-count measurement: at_ms i64, records u64
 *   'H' seq u64         -> a stored report (quality_report.c's encoding)
 * id is a fingerprint of what the check's state depends on (rule, columns,
 * values, bounds, pattern), so state survives a contract upgrade that
 * keeps the check and starts afresh (rebuilt from the rows) when it
 * changes. */
#ifndef DM_QUALITY_PRIV_H
#define DM_QUALITY_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "contract/pattern.h"
#include "quality/quality.h"
#include "record/schema.h"
#include "storage/quality_db.h"

#define DM_QUALITY_MEASURES_MAX 1000     /* row-count measurements kept per product */
#define DM_QUALITY_SAMPLE_BYTES 128      /* bytes of one sample kept (a row's key and value) */
#define DM_QUALITY_WEEK_MS (7LL * 24 * 3600 * 1000)
#define DM_QUALITY_WEEKDAY_SLACK_MS (24LL * 3600 * 1000) /* same_weekday: nearest within a day */
#define DM_QUALITY_NO_EVENT INT64_MIN
/* unique: pending entries folded into the index once they exceed
 * max(this, FACTOR x the index's entries) (quality_uniq.c). A fold
 * rewrites the index's pages; the runs it saves reading are mostly not
 * read (the writer's cached counts and filter answer), so folds are rare. */
#define DM_QUALITY_UNIQ_FOLD_MIN 65536
#define DM_QUALITY_UNIQ_FOLD_FACTOR 4
/* unique: the writer's in-memory tables of one store's unique checks
 * (quality_uniq_mem.c) stay under this; a check past it goes to the
 * durable index. About 64 bytes per distinct value of a 20-byte key at
 * worst (the arena and the slots double), so ten million values fit. */
#define DM_QUALITY_UNIQ_TABLES_MAX ((size_t)1 << 30)

#define DM_QTAG_PRODUCT 'P'
#define DM_QTAG_CHECK 'S'
#define DM_QTAG_UNIQUE 'U'
#define DM_QTAG_PENDING 'D'
#define DM_QTAG_UNIQUE_N 'N'
#define DM_QTAG_BLOOM 'F'
#define DM_QTAG_MEASURE 'M'
#define DM_QTAG_HISTORY 'H'
#define DM_QUALITY_KEY_PREFIX 9 /* a tag and a check id (u64): the keys of one check */

/* A product's quality state. */
typedef struct {
    int64_t last_ingest_ms;      /* 0: never */
    uint64_t next_measure, next_report;
    uint64_t nmeasures, nreports;
} dm_quality__pstate_t;

/* One check's state. */
typedef struct {
    uint64_t groups;   /* unique: values held by more than one live row */
    uint64_t extra;    /* unique: rows beyond the first of each such value */
    uint64_t failing;  /* field checks with thresholds: live rows failing */
    int64_t newest;    /* freshness: newest event time in ms, DM_QUALITY_NO_EVENT: none */
    uint64_t ahead;    /* freshness: rows ingested with an event time beyond
                        * DM_QUALITY_CLOCK_SKEW_MS ahead of the batch's clock (not in newest) */
    int64_t ahead_max; /* freshness: the most one of those was ahead, in ms */
    char samples[DM_QUALITY_SAMPLES_MAX][DM_QUALITY_SAMPLE_BYTES + 1];
    size_t nsamples;
    uint64_t token;    /* unique: what the writer's cached counts were
                        * stamped with in this state's batch (0: none) */
} dm_quality__cstate_t;

/* v big-endian in p[0..8), and back (the byte order of every u64 the
 * quality database holds). */
static inline void dm_quality__put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t dm_quality__get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* One row's value of a check, as the writer's hook queues it for the
 * batch's end: +1 (a row holding it became live) or -1 (such a row was
 * replaced), the value's index key and its text (cut to
 * DM_QUALITY_SAMPLE_BYTES), or instead of the text the row it comes from
 * (a live row of the batch, whose memory lasts the commit: the text is
 * made only for a sample, dm_quality__op_text). Encoded back to back: i8
 * sign, u16 klen, key, u16 tlen, text or (tlen DM_QUALITY__OP_ROW) the
 * row's pointer and length (host order: it never leaves the process). */
#define DM_QUALITY__OP_ROW UINT16_MAX
typedef struct {
    int sign;
    const uint8_t *key;
    uint16_t klen;
    const char *text;
    uint16_t tlen;
    const void *row; /* not NULL: the text is not made yet */
    size_t row_len;
} dm_quality__op_t;

static inline void dm_quality__op_put(dm_buf_t *ops, int sign, const void *key, size_t klen,
                                      const char *text, size_t tlen)
{
    int8_t sg = (int8_t)sign;
    uint16_t kl = (uint16_t)klen, tl = (uint16_t)(tlen > DM_QUALITY_SAMPLE_BYTES
                                                      ? DM_QUALITY_SAMPLE_BYTES : tlen);
    dm_buf_append(ops, &sg, 1);
    dm_buf_append(ops, &kl, sizeof kl);
    dm_buf_append(ops, key, kl);
    dm_buf_append(ops, &tl, sizeof tl);
    dm_buf_append(ops, text, tl);
}

/* The bytes of an op that carries its row (dm_quality__op_put_row): its
 * sign, key length and text length (1 + 2 + 2), the key, the row. */
#define DM_QUALITY__OP_ROW_BYTES(klen) (5 + (klen) + sizeof(void *) + sizeof(size_t))

/* The same with the row (stable until the batch commits) for the text:
 * one op per row and unique check, so written in one piece. */
static inline void dm_quality__op_put_row(dm_buf_t *ops, int sign, const void *key, size_t klen,
                                          const void *row, size_t len)
{
    size_t n = DM_QUALITY__OP_ROW_BYTES(klen);
    dm_buf_reserve(ops, n);
    uint8_t *p = (uint8_t *)ops->data + ops->len;
    uint16_t kl = (uint16_t)klen, tl = DM_QUALITY__OP_ROW;
    p[0] = (uint8_t)(int8_t)sign;
    memcpy(p + 1, &kl, 2);
    memcpy(p + 3, key, klen);
    memcpy(p + 3 + klen, &tl, 2);
    memcpy(p + 5 + klen, &row, sizeof row);
    memcpy(p + 5 + klen + sizeof row, &len, sizeof len);
    ops->len += n;
    ops->data[ops->len] = 0; /* dm_buf's rule */
}

/* Decodes the op at p into o (borrowing p); returns its encoded size. */
static inline size_t dm_quality__op_at(const uint8_t *p, dm_quality__op_t *o)
{
    o->sign = (int8_t)p[0];
    memcpy(&o->klen, p + 1, 2);
    o->key = p + 3;
    memcpy(&o->tlen, p + 3 + o->klen, 2);
    p += 5 + o->klen;
    if (o->tlen != DM_QUALITY__OP_ROW) {
        o->text = (const char *)p;
        o->row = NULL;
        return 5 + (size_t)o->klen + o->tlen;
    }
    memcpy(&o->row, p, sizeof o->row);
    memcpy(&o->row_len, p + sizeof o->row, sizeof o->row_len);
    o->text = "";
    o->tlen = 0;
    return 5 + (size_t)o->klen + sizeof o->row + sizeof o->row_len;
}

/* ---- quality_state.c ---- */

/* The fingerprint of check k (see above). */
uint64_t dm_quality__check_id(const dm_check_t *k);
/* Reads pid's product state (zeroes when absent). */
DM_NODISCARD dm_err dm_quality__pstate_get(dm_store_txn_t *t, uint32_t pid,
                                           dm_quality__pstate_t *out, dm_buf_t *why);
DM_NODISCARD dm_err dm_quality__pstate_put(dm_store_txn_t *t, uint32_t pid,
                                           const dm_quality__pstate_t *in, dm_buf_t *why);
/* Reads check id's state: *found false (state zeroed, newest NO_EVENT)
 * when there is none. */
DM_NODISCARD dm_err dm_quality__cstate_get(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                                           dm_quality__cstate_t *out, bool *found,
                                           dm_buf_t *why);
DM_NODISCARD dm_err dm_quality__cstate_put(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                                           const dm_quality__cstate_t *in, dm_buf_t *why);
/* Adds text (n bytes, cut to DM_QUALITY_SAMPLE_BYTES) to s's samples
 * unless full or already there; removes it with dm_quality__sample_drop. */
void dm_quality__sample_add(dm_quality__cstate_t *s, const char *text, size_t n);
void dm_quality__sample_drop(dm_quality__cstate_t *s, const char *text, size_t n);
/* Appends val under [tag][(*next)++] and, once more than max are kept
 * (*count of them), deletes the oldest: the bounded histories
 * (measurements, reports). */
DM_NODISCARD dm_err dm_quality__append(dm_store_txn_t *t, uint32_t pid, uint8_t tag,
                                       uint64_t *next, uint64_t *count, uint64_t max,
                                       const void *val, size_t vlen, dm_buf_t *why);
/* Appends a row-count measurement and trims the oldest beyond the bound. */
DM_NODISCARD dm_err dm_quality__measure_add(dm_store_txn_t *t, uint32_t pid,
                                            dm_quality__pstate_t *ps, int64_t at_ms,
                                            uint64_t records, dm_buf_t *why);
/* Deletes the state of every check of pid whose id is not among keep[0..nkeep)
 * (a check the contract dropped or changed), its uniqueness index too. */
DM_NODISCARD dm_err dm_quality__prune(dm_store_txn_t *t, uint32_t pid, const uint64_t *keep,
                                      size_t nkeep, dm_buf_t *why);
/* Deletes every uniqueness-index entry of check id, its pending runs, its
 * entry count and its filter (before a rebuild). */
DM_NODISCARD dm_err dm_quality__unique_clear(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                                             dm_buf_t *why);

/* ---- quality_uniq.c ---- */

/* One distinct value of a batch for a unique check: its index key, its
 * text (for samples) and how many live rows it gained (or lost). */
typedef struct {
    const uint8_t *key;
    uint16_t klen;
    const char *text;
    uint16_t tlen;
    int64_t delta;
} dm_quality__uval_t;

/* Applies a batch's v[0..n) (ascending keys, each once, delta != 0) to
 * check id: st's groups, extra and samples from the exact counts before,
 * and one pending run written; folds the runs into the index when they
 * exceed max(fold_min, DM_QUALITY_UNIQ_FOLD_FACTOR x the index's
 * entries) or the byte or run bounds.
 * DM_ERR_STORE when a run is corrupt (rebuild the check). */
DM_NODISCARD dm_err dm_quality__uniq_apply(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                                           dm_quality__cstate_t *st,
                                           const dm_quality__uval_t *v, size_t n,
                                           uint64_t fold_min, dm_buf_t *why);
/* A rebuild's step: adds v->delta to the index directly (no run) and
 * adds the entries created less deleted to *entries; the rebuild then
 * records the count with dm_quality__uniq_set_entries. */
DM_NODISCARD dm_err dm_quality__uniq_direct(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                                            dm_quality__cstate_t *st,
                                            const dm_quality__uval_t *v, int64_t *entries,
                                            dm_buf_t *why);
DM_NODISCARD dm_err dm_quality__uniq_set_entries(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                                                 uint64_t entries, dm_buf_t *why);

/* A value's count moved from before to after: st's groups, extra rows
 * and samples follow. */
void dm_quality__uniq_moved(dm_quality__cstate_t *st, uint64_t before, uint64_t after,
                            const char *text, size_t tlen);

/* ---- quality_uniq_counts.c ---- */

/* The values' live-row counts as last committed, for one unique check. */
typedef struct {
    struct dm_quality__uslot *slots;
    size_t nslots, n;
    dm_buf_t keys;  /* the values' index keys, back to back */
    uint64_t token; /* the committed state they are valid for (cstate's token) */
} dm_quality__ucounts_t;

/* Empties c (it stays usable); frees what it holds. */
void dm_quality__ucounts_reset(dm_quality__ucounts_t *c);
void dm_quality__ucounts_free(dm_quality__ucounts_t *c);
/* The bytes c holds. */
size_t dm_quality__ucounts_bytes(const dm_quality__ucounts_t *c);
/* key's count (h: dm_index_bloom_hash of key) into *count; false when c
 * does not know it. */
bool dm_quality__ucounts_get(const dm_quality__ucounts_t *c, const uint8_t *key, size_t klen,
                             uint64_t h, uint64_t *count);
/* Sets key's count if c knows key, else takes it in when admit (emptying
 * c first when it is at its bound; out of memory: not kept). */
void dm_quality__ucounts_put(dm_quality__ucounts_t *c, const uint8_t *key, size_t klen,
                             uint64_t h, uint64_t count, bool admit);

/* ---- quality_uniq_table.c ---- */

/* A unique check's values and live-row counts in the writer's memory. */
typedef struct dm_quality__utable dm_quality__utable_t;

/* An empty table; NULL when out of memory. */
dm_quality__utable_t *dm_quality__utable_new(void);
void dm_quality__utable_destroy(dm_quality__utable_t **self_p);
/* The bytes it holds (NULL: 0), and its values. */
size_t dm_quality__utable_bytes(const dm_quality__utable_t *self);
size_t dm_quality__utable_count(const dm_quality__utable_t *self);
/* The bytes dm_quality__utable_reserve would add for values more values
 * of key_bytes bytes of keys in all. */
size_t dm_quality__utable_growth(const dm_quality__utable_t *self, size_t values,
                                 size_t key_bytes);
/* Makes room for values more values of key_bytes key bytes in all (the
 * inserts of dm_quality__utable_find); false when out of memory (the
 * table stays as it was, usable). */
bool dm_quality__utable_reserve(dm_quality__utable_t *self, size_t values, size_t key_bytes);
/* The count of key (h: dm_quality__utable_hash of it), or NULL when the table
 * does not hold it; with insert, it is taken in with count 0 if room was
 * reserved (else NULL). The pointer is valid until the next reserve. */
uint32_t *dm_quality__utable_find(dm_quality__utable_t *self, const uint8_t *key, size_t klen,
                                  uint64_t h, bool insert);
/* Calls fn for each value (in insertion order) until it returns non-zero,
 * which is returned. */
typedef int (*dm_quality__utable_fn)(void *ctx, const uint8_t *key, size_t klen,
                                     uint32_t count);
/* Starts loading the slot where a value of hash h would be (a probe of
 * it soon then need not wait for memory). */
void dm_quality__utable_prefetch(const dm_quality__utable_t *self, uint64_t h);
/* Then, once that slot is loaded, the entry it points to if it may be the
 * value's (a probe that finds the value compares its key there). */
void dm_quality__utable_prefetch_entry(const dm_quality__utable_t *self, uint64_t h);
/* The arena offset of a count dm_quality__utable_find returned (stable
 * across reserves), and back. */
size_t dm_quality__utable_offset(const dm_quality__utable_t *self, const uint32_t *count);
uint32_t *dm_quality__utable_at(dm_quality__utable_t *self, size_t off);
int dm_quality__utable_each(const dm_quality__utable_t *self, dm_quality__utable_fn fn,
                            void *ctx);
/* The table written to f (false: not written, or nothing to write); read
 * back from f into a new table (NULL when what f holds is not a whole,
 * consistent table, or one of more than max_bytes). */
bool dm_quality__utable_write(const dm_quality__utable_t *self, FILE *f);
/* The table's hash of a value (keyed per table: the values are the
 * producers'); what dm_quality__utable_find and _prefetch take. */
uint64_t dm_quality__utable_hash(const dm_quality__utable_t *self, const uint8_t *key,
                                 size_t klen);
dm_quality__utable_t *dm_quality__utable_read(FILE *f, size_t max_bytes);

/* ---- quality_uniq_bloom.c ---- */

/* What the writer keeps in memory for a unique check: a Bloom filter of
 * its values (bits NULL: not built, every value may be there) and their
 * counts. */
typedef struct {
    uint32_t pid;
    uint64_t id;
    uint8_t *bits;
    size_t len;
    uint64_t cap, added; /* values it was sized for, values added */
    uint64_t used;       /* when last opened (least recently used goes first) */
    uint64_t next_token; /* the counts' next token: random start, then counted */
    dm_quality__ucounts_t counts;
    /* The in-memory path (quality_uniq_mem.c): the values' counts as of
     * the committed state stamped token; prev_token and the undo log
     * (entry counts touched, +1 or -1 each) take them back to the state
     * before the last batch applied, should that batch not commit. */
    dm_quality__utable_t *table;
    uint64_t token, prev_token;
    int64_t *undo;        /* arena offset * 2 + (1 when the count went down) */
    size_t nundo, undo_cap;
    bool durable;         /* this process keeps the check on the durable index */
    bool clear_pending;   /* the last batch deleted a stale index: not yet committed */
} dm_quality__ubloom_t;

/* The filter of check id of pid in t's store (created empty, not built,
 * the first time): borrowed until the store is destroyed. DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_quality__ubloom_open(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                                            dm_quality__ubloom_t **out);
/* Whether f is built and holds no more values than it was sized for (or
 * is as large as a filter gets). */
bool dm_quality__ubloom_ready(const dm_quality__ubloom_t *f);
/* Builds f afresh, sized for twice values, from check id's base index
 * (the caller then adds the pending runs' values); *seen gets the index
 * entries walked. Reads only (the caller deletes an older build's stored
 * filter 'F' once it writes). On error f is left unbuilt. */
DM_NODISCARD dm_err dm_quality__ubloom_build(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                                             dm_quality__ubloom_t *f, uint64_t values,
                                             uint64_t *seen, dm_buf_t *why);
/* false when no value of hash h (dm_index_bloom_hash of its index key)
 * was added (certain); true when one may have been, or f is not built. */
bool dm_quality__ubloom_maybe(const dm_quality__ubloom_t *f, uint64_t h);
void dm_quality__ubloom_add(dm_quality__ubloom_t *f, uint64_t h);
/* Drops the filter, counts and table of check id of pid (its index is
 * rebuilt directly, or the check was dropped). */
void dm_quality__ubloom_forget(dm_store_txn_t *t, uint32_t pid, uint64_t id);
/* f's next token (never 0): from a random start, counted up. */
uint64_t dm_quality__ubloom_next_token(dm_quality__ubloom_t *f);
/* Frees f's table and undo log. */
void dm_quality__ubloom_table_free(dm_quality__ubloom_t *f);
/* Drops f's filter and cached counts (the durable path's), kept: the
 * table. Called whenever the check moves between memory and the durable
 * index: values added meanwhile are in neither. */
void dm_quality__ubloom_drop_filter(dm_store_txn_t *t, dm_quality__ubloom_t *f);
/* Whether want more bytes of table fit f's store under max for all its
 * checks' tables, after dropping the least recently used other checks'
 * (rebuilt by a scan when their check next runs). */
bool dm_quality__ubloom_table_room(dm_store_txn_t *t, const dm_quality__ubloom_t *f,
                                   size_t want, size_t max);

/* ---- quality_batch.c ---- */

/* Tests: the fold bound's floor (DM_QUALITY_UNIQ_FOLD_MIN by default). */
void dm_quality__batch_set_fold_min(dm_quality_batch_t *b, uint64_t entries);
/* Tests: the bound of the unique checks' tables (DM_QUALITY_UNIQ_TABLES_MAX
 * by default; 0: every unique check on the durable index). */
void dm_quality__batch_set_table_max(dm_quality_batch_t *b, size_t bytes);

/* ---- quality_eval.c ---- */

/* A check compiled against a schema for evaluating rows. */
typedef struct {
    const dm_check_t *k;
    uint64_t id;
    int event_field;     /* freshness: the field read, -1: the last ingest */
    bool trivial;        /* unique on exactly the primary key: no index */
    dm_value_t *vals;    /* in_list, typed */
    size_t nvals;
    dm_pattern_t *re;    /* regex */
} dm_quality__ccheck_t;

/* Compiles k for s. DM_ERR_INVALID (a line in why) if an in_list value
 * or the pattern cannot be used. */
DM_NODISCARD dm_err dm_quality__ccheck_init(dm_quality__ccheck_t *cc, const dm_schema_t *s,
                                            const dm_check_t *k, dm_buf_t *why);
void dm_quality__ccheck_clear(dm_quality__ccheck_t *cc);
/* Field checks: true when row fails check cc (a null passes every rule
 * but not_null); text/n get the failing value's text (tmp: scratch). */
bool dm_quality__row_fails(const dm_quality__ccheck_t *cc, const dm_schema_t *s,
                           const void *row, size_t len, dm_buf_t *tmp);
/* unique: the index key of row's value set into key (a tag byte, then
 * the columns' key encoding, or their BLAKE2b when that is too long for an
 * LMDB key) and its text into text (either NULL: not made; both reset
 * first); false when a column is null (NULLs are never duplicates) or the
 * row is malformed. */
bool dm_quality__unique_key(const dm_quality__ccheck_t *cc, const dm_schema_t *s,
                            const void *row, size_t len, dm_buf_t *key, dm_buf_t *text);
/* unique: the key of check id that quality_keys.c left after row (len
 * bytes): 1 (*key, *klen set: borrowed from the row's buffer), 0 when a
 * column is null (no key), -1 when the block has none for id. */
int dm_quality__key_given(const void *row, size_t len, uint64_t id, const uint8_t **key,
                          size_t *klen);
/* unique: makes o's text from its row, if it has one instead (text:
 * scratch, which o's text then borrows; the key is not made again). */
void dm_quality__op_text(const dm_quality__ccheck_t *cc, const dm_schema_t *s,
                         dm_quality__op_t *o, dm_buf_t *text);
/* freshness: the row's event time in ms; false when null. */
bool dm_quality__event_ms(const dm_quality__ccheck_t *cc, const dm_schema_t *s,
                          const void *row, size_t len, int64_t *ms);
/* The text of a decoded value, for samples; returns its length. */
size_t dm_quality__value_text(const dm_value_t *v, char *buf, size_t cap);
/* A field check's sample of a failing row: out = "KEY: value", KEY its
 * primary key as name=value pairs (joined by ","), or value alone when the
 * contract has no primary key. */
void dm_quality__keyed_sample(const dm_contract_t *c, const dm_schema_t *s, const void *row,
                              size_t len, const dm_buf_t *value, dm_buf_t *out);
/* The field freshness reads when the check has no column: the first
 * timestamp field of spec.storage.partitioning, or -1. */
int dm_quality__event_field(const dm_contract_t *c, const dm_check_t *k);
/* The state sla.freshness reads when no check of c keeps the newest event
 * time: a freshness check on the contract's event-time field set into
 * *out (borrowing c's field name), kept by the writer like one of c's
 * checks but never reported. false when c has a freshness check, no sla.freshness or
 * no event-time field (the SLA then measures the last ingest). */
bool dm_quality__sla_event_check(const dm_contract_t *c, dm_check_t *out);

/* ---- quality_uniq_mem.c ---- */

/* Where a unique check's batch went. */
typedef enum {
    DM_QUALITY__UMEM_DONE,    /* applied in memory: st is up to date */
    DM_QUALITY__UMEM_DURABLE, /* the check is on the durable index: apply it there
                               * (or rebuild it there when st was not found and
                               * the product had rows) */
    DM_QUALITY__UMEM_REBUILD  /* the check goes to the durable index, which must
                               * be rebuilt from the rows */
} dm_quality__umem_path;

/* Applies a batch's ops (dm_quality__op_t, queued by the hook) of unique
 * check cc to its state st through the writer's in-memory table
 * (quality_uniq_mem.c says how it stays exact), under max bytes of tables
 * per store. found: st was read from the store; rows_before: the product's
 * rows before the batch. *path says what the caller does next. On error
 * the table is dropped (a scan rebuilds it). */
DM_NODISCARD dm_err dm_quality__umem_apply(dm_store_txn_t *t, uint32_t pid,
                                           const dm_quality__ccheck_t *cc,
                                           const dm_schema_t *s, dm_quality__cstate_t *st,
                                           bool found, uint64_t rows_before,
                                           const dm_buf_t *ops, size_t max,
                                           dm_quality__umem_path *path, dm_buf_t *why);

/* ---- quality_report.c ---- */

/* Encodes r for the history; decodes it back (DM_ERR_STORE when corrupt). */
void dm_quality__report_encode(const dm_qreport_t *r, dm_buf_t *out);
DM_NODISCARD dm_err dm_quality__report_decode(const void *data, size_t len, dm_qreport_t *out);
/* Stores r as pid's newest report, trimming the oldest past the bound. */
DM_NODISCARD dm_err dm_quality__report_store(dm_store_txn_t *t, uint32_t pid,
                                             dm_quality__pstate_t *ps, const dm_qreport_t *r,
                                             dm_buf_t *why);

/* ---- quality_judge.c ---- */

/* Judges every check of c for pid from the state in t into out (cleared
 * first); ps: the product's state (NULL: read from t). */
DM_NODISCARD dm_err dm_quality__judge(dm_store_txn_t *t, uint32_t pid, const dm_contract_t *c,
                                      int64_t now_ms, const dm_quality__pstate_t *ps,
                                      dm_qreport_t *out, dm_buf_t *why);

#endif
