/* quality_uniq.c: the uniqueness index of a `unique` check, written so
 * that a batch costs O(batch) sequential bytes, not a page per value.
 *
 * A value's live-row count is its count in the base index ('U', one entry
 * per value) plus the deltas of the pending runs ('D'): each batch writes
 * its distinct values and their deltas, sorted, as ONE run (a blob, in the
 * batch's own transaction). Updating the base index in place would dirty,
 * copy and fsync nearly every leaf page of it per batch, since values are
 * random (docs/quality.md, "Cost"). Once the runs hold more entries than
 * max(fold_min, DM_QUALITY_UNIQ_FOLD_FACTOR x base entries), or
 * S_PENDING_BYTES_MAX bytes, or S_RUNS_MAX runs, they are folded into the
 * base index in key order (one cursor walk, each leaf page dirtied once)
 * and deleted. The count "before" of a value is read, not written, and
 * mostly not read either: the writer's cached counts and filter
 * (quality_uniq_counts.c, quality_uniq_bloom.c) answer for a value seen
 * before in this process and for a new one; the rest are read from base
 * (one cursor, keys in order) plus the runs (each searched from where the
 * last value left it), so the groups/extra counters and the samples are
 * exact after every batch, and every write is in the batch's transaction
 * (a kill -9 leaves the last committed batch). */
#include "quality/quality_priv.h"

#include <stdlib.h>
#include <string.h>

#include "storage/index_bloom.h"

#define S_PENDING_BYTES_MAX (64u << 20) /* runs' bytes that force a fold */
#define S_RUNS_MAX 64                   /* runs searched per batch at most */
#define S_RUN_HEAD 4                    /* u32 n, then u32 offsets, then entries */
#define S_ENTRY_FIXED 10                /* u16 klen + i64 delta around the key */
#define S_SEQ_KEY 17                    /* 'D' id seq */

static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void s_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void s_prefix(uint8_t k[DM_QUALITY_KEY_PREFIX], uint8_t tag, uint64_t id)
{
    k[0] = tag;
    dm_quality__put64(k + 1, id);
}

/* One pending run, borrowed from the store or from a copy. */
typedef struct {
    const uint8_t *data;
    size_t len;
    uint32_t n;
    size_t pos; /* search cursor (lookups) or merge position (fold) */
} s_run;

/* Entry i of r: key and delta. false when r is corrupt there. */
static bool s_entry(const s_run *r, size_t i, const uint8_t **key, size_t *klen, int64_t *delta)
{
    size_t base = S_RUN_HEAD + (size_t)r->n * 4;
    size_t off = base + s_get32(r->data + S_RUN_HEAD + i * 4);
    if (off + 2 > r->len)
        return false;
    size_t kl = (size_t)r->data[off] << 8 | r->data[off + 1];
    if (off + S_ENTRY_FIXED + kl > r->len)
        return false;
    *key = r->data + off + 2;
    *klen = kl;
    *delta = (int64_t)dm_quality__get64(r->data + off + 2 + kl);
    return true;
}

/* Compares entry i of r with key; *bad set when r is corrupt there. */
static int s_cmp_at(const s_run *r, size_t i, const uint8_t *key, size_t klen, bool *bad)
{
    const uint8_t *k;
    size_t kl;
    int64_t d;
    if (!s_entry(r, i, &k, &kl, &d)) {
        *bad = true;
        return 1;
    }
    return dm_store_key_cmp(k, kl, key, klen);
}

/* The delta r holds for key (0 when none). Keys come in ascending order:
 * the search gallops from where the previous one stopped, so a batch
 * costs O(batch * log(gap)) per run, not O(run). */
static int64_t s_run_delta(s_run *r, const uint8_t *key, size_t klen, bool *bad)
{
    size_t lo = r->pos, step = 1, hi;
    if (lo >= r->n)
        return 0;
    if (s_cmp_at(r, lo, key, klen, bad) < 0) { /* the answer is beyond lo */
        while (lo + step < r->n && s_cmp_at(r, lo + step, key, klen, bad) < 0) {
            lo += step;
            step *= 2;
        }
        hi = lo + step < r->n ? lo + step : r->n;
        lo++;
        while (lo < hi) { /* first entry >= key in [lo, hi) */
            size_t mid = lo + (hi - lo) / 2;
            if (s_cmp_at(r, mid, key, klen, bad) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    r->pos = lo;
    const uint8_t *k;
    size_t kl;
    int64_t d;
    if (lo < r->n && s_entry(r, lo, &k, &kl, &d) && dm_store_key_cmp(k, kl, key, klen) == 0)
        return d;
    return 0;
}

/* The runs of one check, as found under 'D' id. */
typedef struct {
    s_run *runs;
    size_t n, cap;
    uint64_t entries, bytes, next_seq;
    bool bad, nomem;
} s_pending;

static int s_take_run(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_pending *p = ctx;
    if (klen != S_SEQ_KEY || vlen < S_RUN_HEAD) {
        p->bad = true;
        return 1;
    }
    uint32_t n = s_get32(val);
    if ((vlen - S_RUN_HEAD) / 4 < n) {
        p->bad = true;
        return 1;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        s_run *r = realloc(p->runs, cap * sizeof *r);
        if (!r) {
            p->nomem = true;
            return 1;
        }
        p->runs = r;
        p->cap = cap;
    }
    p->runs[p->n++] = (s_run){val, vlen, n, 0};
    p->entries += n;
    p->bytes += vlen;
    p->next_seq = dm_quality__get64((const uint8_t *)key + DM_QUALITY_KEY_PREFIX) + 1;
    return 0;
}

/* Reads check id's runs into p (borrowed until the next write in t). */
static dm_err s_pending_read(dm_store_txn_t *t, uint32_t pid, uint64_t id, s_pending *p,
                             dm_buf_t *why)
{
    uint8_t k[DM_QUALITY_KEY_PREFIX];
    s_prefix(k, DM_QTAG_PENDING, id);
    memset(p, 0, sizeof *p);
    p->next_seq = 1;
    dm_err err = dm_quality_db_each(t, pid, k, sizeof k, false, s_take_run, p, why);
    if (!err && p->nomem)
        err = DM_ERR_NOMEM;
    else if (!err && p->bad) {
        dm_buf_why(why, "quality: a pending uniqueness run of product %u is corrupt", pid);
        err = DM_ERR_STORE;
    }
    return err;
}

static dm_err s_entries_get(dm_store_txn_t *t, uint32_t pid, uint64_t id, uint64_t *out,
                            dm_buf_t *why)
{
    uint8_t k[DM_QUALITY_KEY_PREFIX];
    s_prefix(k, DM_QTAG_UNIQUE_N, id);
    dm_buf_t v = DM_BUF_INIT;
    *out = 0;
    dm_err err = dm_quality_db_get(t, pid, k, sizeof k, &v, why);
    if (!err && v.len == 8)
        *out = dm_quality__get64((const uint8_t *)v.data);
    dm_buf_free(&v);
    return err == DM_ERR_NOTFOUND ? DM_OK : err;
}

dm_err dm_quality__uniq_set_entries(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                                    uint64_t entries, dm_buf_t *why)
{
    uint8_t k[DM_QUALITY_KEY_PREFIX], v[8];
    s_prefix(k, DM_QTAG_UNIQUE_N, id);
    dm_quality__put64(v, entries);
    return dm_quality_db_put(t, pid, k, sizeof k, v, sizeof v, why);
}

void dm_quality__uniq_moved(dm_quality__cstate_t *st, uint64_t before, uint64_t after,
                            const char *text, size_t tlen)
{
    st->groups += (after >= 2) - (before >= 2);
    st->extra = st->extra + (after > 1 ? after - 1 : 0) - (before > 1 ? before - 1 : 0);
    if (after >= 2 && before < 2)
        dm_quality__sample_add(st, text, tlen);
    else if (after < 2 && before >= 2)
        dm_quality__sample_drop(st, text, tlen);
}

static uint64_t s_plus(uint64_t c, int64_t d)
{
    return d < 0 && (uint64_t)-d > c ? 0 : c + (uint64_t)d;
}

dm_err dm_quality__uniq_direct(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                               dm_quality__cstate_t *st, const dm_quality__uval_t *v,
                               int64_t *entries, dm_buf_t *why)
{
    uint8_t key[DM_QUALITY_KEY_PREFIX + DM_QDB_KEY_MAX];
    if (v->delta == 0)
        return DM_OK;
    if (v->klen > DM_QDB_KEY_MAX - DM_QUALITY_KEY_PREFIX) {
        dm_buf_why(why, "quality: a unique value key of %u bytes is over the limit", v->klen);
        return DM_ERR_TOOBIG;
    }
    s_prefix(key, DM_QTAG_UNIQUE, id);
    memcpy(key + DM_QUALITY_KEY_PREFIX, v->key, v->klen);
    uint64_t before, after;
    dm_err err = dm_quality_db_add(t, pid, key, DM_QUALITY_KEY_PREFIX + v->klen, v->delta, &before, &after,
                                   why);
    if (err)
        return err;
    *entries += (after > 0) - (before > 0);
    dm_quality__uniq_moved(st, before, after, v->text, v->tlen);
    return DM_OK;
}

/* Encodes v[0..n) as a run into out. */
static void s_run_encode(const dm_quality__uval_t *v, size_t n, dm_buf_t *out)
{
    uint8_t b[8];
    s_put32(b, (uint32_t)n);
    dm_buf_append(out, b, 4);
    uint32_t off = 0;
    for (size_t i = 0; i < n; i++) {
        s_put32(b, off);
        dm_buf_append(out, b, 4);
        off += S_ENTRY_FIXED + v[i].klen;
    }
    for (size_t i = 0; i < n; i++) {
        b[0] = (uint8_t)(v[i].klen >> 8);
        b[1] = (uint8_t)v[i].klen;
        dm_buf_append(out, b, 2);
        dm_buf_append(out, v[i].key, v[i].klen);
        dm_quality__put64(b, (uint64_t)v[i].delta);
        dm_buf_append(out, b, 8);
    }
}

/* The runs' heap for the fold: run indexes ordered by their current key. */
static bool s_less(const s_run *runs, size_t a, size_t b)
{
    const uint8_t *ka, *kb;
    size_t la, lb;
    int64_t d;
    if (!s_entry(&runs[a], runs[a].pos, &ka, &la, &d) ||
        !s_entry(&runs[b], runs[b].pos, &kb, &lb, &d))
        return false;
    return dm_store_key_cmp(ka, la, kb, lb) < 0;
}

static void s_sift(const s_run *runs, size_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && s_less(runs, h[l], h[m]))
            m = l;
        if (r < n && s_less(runs, h[r], h[m]))
            m = r;
        if (m == i)
            return;
        size_t x = h[i];
        h[i] = h[m];
        h[m] = x;
        i = m;
    }
}

/* Merges p's runs (copies: the fold writes) into out[0..*n), summing the
 * deltas of one key and dropping zero sums, with h (p->n entries) for the
 * heap. false when a run is corrupt. */
static bool s_merge(s_pending *p, size_t *h, dm_quality_db_delta_t *out, size_t *n)
{
    size_t hn = 0, m = 0;
    for (size_t i = 0; i < p->n; i++) {
        p->runs[i].pos = 0;
        if (p->runs[i].n)
            h[hn++] = i;
    }
    for (size_t i = hn; i-- > 0;)
        s_sift(p->runs, h, hn, i);
    bool ok = true;
    while (hn && ok) {
        s_run *r = &p->runs[h[0]];
        const uint8_t *k;
        size_t kl;
        int64_t d;
        if (!(ok = s_entry(r, r->pos, &k, &kl, &d)))
            break;
        if (m && dm_store_key_cmp(out[m - 1].key, out[m - 1].klen, k, kl) == 0)
            out[m - 1].delta += d;
        else if (m && out[m - 1].delta == 0)
            out[m - 1] = (dm_quality_db_delta_t){k, kl, d};
        else
            out[m++] = (dm_quality_db_delta_t){k, kl, d};
        if (++r->pos == r->n)
            h[0] = h[--hn];
        s_sift(p->runs, h, hn, 0);
    }
    if (m && out[m - 1].delta == 0)
        m--;
    *n = m;
    return ok;
}

/* Folds check id's runs into its base index (entries before, *after
 * after) and deletes them. */
static dm_err s_fold(dm_store_txn_t *t, uint32_t pid, uint64_t id, uint64_t entries,
                     uint64_t *after, dm_buf_t *why)
{
    s_pending p;
    dm_buf_t copy = DM_BUF_INIT;
    dm_quality_db_delta_t *d = NULL;
    size_t *h = NULL;
    dm_err err = s_pending_read(t, pid, id, &p, why);
    if (err)
        goto out;
    for (size_t i = 0; i < p.n; i++) /* offsets first: the copy may move while it grows */
        dm_buf_append(&copy, p.runs[i].data, p.runs[i].len);
    for (size_t i = 0, off = 0; i < p.n; off += p.runs[i].len, i++)
        p.runs[i].data = (const uint8_t *)copy.data + off;
    size_t n = 0;
    d = malloc((p.entries ? p.entries : 1) * sizeof *d);
    h = malloc((p.n ? p.n : 1) * sizeof *h);
    if (!d || !h) {
        err = DM_ERR_NOMEM;
        goto out;
    }
    if (!s_merge(&p, h, d, &n)) {
        dm_buf_why(why, "quality: a pending uniqueness run of product %u is corrupt", pid);
        err = DM_ERR_STORE;
        goto out;
    }
    uint8_t k[DM_QUALITY_KEY_PREFIX];
    s_prefix(k, DM_QTAG_UNIQUE, id);
    int64_t made = 0;
    if ((err = dm_quality_db_add_sorted(t, pid, k, sizeof k, d, n, &made, why)))
        goto out;
    s_prefix(k, DM_QTAG_PENDING, id);
    if ((err = dm_quality_db_del_prefix(t, pid, k, sizeof k, why)))
        goto out;
    *after = s_plus(entries, made);
    err = dm_quality__uniq_set_entries(t, pid, id, *after, why);
out:
    free(d);
    free(h);
    free(p.runs);
    dm_buf_free(&copy);
    return err;
}

/* Counts before the batch: base plus every run, for v[0..n) in key order. */
static dm_err s_counts(dm_store_txn_t *t, uint32_t pid, uint64_t id, s_pending *p,
                       const dm_quality__uval_t *v, size_t n, uint64_t *before, dm_buf_t *why)
{
    dm_quality_db_delta_t *d = malloc((n ? n : 1) * sizeof *d);
    if (!d)
        return DM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        d[i] = (dm_quality_db_delta_t){v[i].key, v[i].klen, 0};
    uint8_t k[DM_QUALITY_KEY_PREFIX];
    s_prefix(k, DM_QTAG_UNIQUE, id);
    dm_err err = dm_quality_db_get_sorted(t, pid, k, sizeof k, d, n, before, why);
    free(d);
    bool bad = false;
    for (size_t r = 0; r < p->n && !err; r++)
        for (size_t i = 0; i < n; i++)
            before[i] = s_plus(before[i], s_run_delta(&p->runs[r], v[i].key, v[i].klen, &bad));
    if (!err && bad) {
        dm_buf_why(why, "quality: a pending uniqueness run of product %u is corrupt", pid);
        err = DM_ERR_STORE;
    }
    return err;
}

/* Splits v[0..n) (hashes h) by what f knows: a value with a cached
 * count gets it in before; the values the filter may hold go to sub
 * (their indexes in idx); the others are new (count 0). Returns how many
 * went to sub. */
static size_t s_sift_new(dm_quality__ubloom_t *f, const dm_quality__uval_t *v,
                         const uint64_t *h, size_t n, uint64_t *before,
                         dm_quality__uval_t *sub, size_t *idx)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (dm_quality__ucounts_get(&f->counts, v[i].key, v[i].klen, h[i], &before[i]))
            continue;
        if (dm_quality__ubloom_maybe(f, h[i])) {
            idx[m] = i;
            sub[m++] = v[i];
        }
    }
    return m;
}

/* The counts before the batch of v[0..n) (hashes h) into before (zeroed). */
static dm_err s_before(dm_store_txn_t *t, uint32_t pid, uint64_t id, s_pending *p,
                       dm_quality__ubloom_t *f, const dm_quality__uval_t *v,
                       const uint64_t *h, size_t n, uint64_t *before, dm_buf_t *why)
{
    dm_quality__uval_t *sub = malloc(n * sizeof *sub);
    size_t *idx = malloc(n * sizeof *idx);
    uint64_t *c = malloc(n * sizeof *c);
    dm_err err = sub && idx && c ? DM_OK : DM_ERR_NOMEM;
    if (!err) {
        size_t m = s_sift_new(f, v, h, n, before, sub, idx);
        err = s_counts(t, pid, id, p, sub, m, c, why);
        for (size_t j = 0; j < m && !err; j++)
            before[idx[j]] = c[j];
    }
    free(sub);
    free(idx);
    free(c);
    return err;
}

/* Makes f hold every value of check id (the base index's, *entries of
 * them, and p's runs') when it is not built or is over its size: *built
 * then says so and *seen gets the base entries walked. Reads only. */
static dm_err s_filter(dm_store_txn_t *t, uint32_t pid, uint64_t id, const s_pending *p,
                       dm_quality__ubloom_t *f, uint64_t entries, size_t n, bool *built,
                       uint64_t *seen, dm_buf_t *why)
{
    *built = false;
    if (dm_quality__ubloom_ready(f))
        return DM_OK;
    dm_err err = dm_quality__ubloom_build(t, pid, id, f, entries + p->entries + n, seen, why);
    if (err == DM_ERR_NOMEM && !f->bits)
        return DM_OK; /* unbuilt: "may hold" for every value, each is looked up */
    for (size_t r = 0; r < p->n && !err; r++)
        for (size_t i = 0; i < p->runs[r].n; i++) {
            const uint8_t *k;
            size_t kl;
            int64_t d;
            if (s_entry(&p->runs[r], i, &k, &kl, &d))
                dm_quality__ubloom_add(f, dm_index_bloom_hash(k, kl));
        }
    *built = !err;
    return err;
}

dm_err dm_quality__uniq_apply(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                              dm_quality__cstate_t *st, const dm_quality__uval_t *v, size_t n,
                              uint64_t fold_min, dm_buf_t *why)
{
    if (n == 0)
        return DM_OK;
    s_pending p = {0};
    dm_quality__ubloom_t *f = NULL;
    uint64_t entries = 0, seen = 0, *before = calloc(n, sizeof *before);
    uint64_t *h = malloc(n * sizeof *h);
    bool built = false;
    dm_buf_t run = DM_BUF_INIT;
    dm_err err = before && h ? DM_OK : DM_ERR_NOMEM;
    for (size_t i = 0; i < n && !err; i++)
        h[i] = dm_index_bloom_hash(v[i].key, v[i].klen);
    /* Reads first: the runs are borrowed from the map until the next write. */
    if (err || (err = s_entries_get(t, pid, id, &entries, why)) ||
        (err = s_pending_read(t, pid, id, &p, why)) ||
        (err = dm_quality__ubloom_open(t, pid, id, &f)))
        goto out;
    if (f->counts.token != st->token) /* not the committed state's: an aborted batch, a rebuild */
        dm_quality__ucounts_reset(&f->counts);
    if ((err = s_filter(t, pid, id, &p, f, entries, n, &built, &seen, why)) ||
        (err = s_before(t, pid, id, &p, f, v, h, n, before, why)))
        goto out;
    /* A new token before the counts change: if this batch does not commit,
     * the stored one will not match them. */
    st->token = f->counts.token = dm_quality__ubloom_next_token(f);
    for (size_t i = 0; i < n; i++) {
        uint64_t after = s_plus(before[i], v[i].delta);
        dm_quality__uniq_moved(st, before[i], after, v[i].text, v[i].tlen);
        /* Every value that enters the index enters the filter, whatever
         * told its count before: a cached count of 0 may be of a value a
         * fold removed and a rebuild left out of the filter. */
        if (before[i] == 0 && after > 0)
            dm_quality__ubloom_add(f, h[i]);
        dm_quality__ucounts_put(&f->counts, v[i].key, v[i].klen, h[i], after, before[i] > 0);
    }
    s_run_encode(v, n, &run);
    uint8_t k[S_SEQ_KEY];
    s_prefix(k, DM_QTAG_PENDING, id);
    dm_quality__put64(k + DM_QUALITY_KEY_PREFIX, p.next_seq);
    if ((err = dm_quality_db_put(t, pid, k, sizeof k, run.data, run.len, why)))
        goto out;
    /* A build walked the index: a store from before 'N' existed (or an
     * older build's stored filter 'F') is mended here. */
    s_prefix(k, DM_QTAG_BLOOM, id);
    if (built && ((err = dm_quality_db_del(t, pid, k, DM_QUALITY_KEY_PREFIX, why)) ||
                  (seen != entries &&
                   (err = dm_quality__uniq_set_entries(t, pid, id, entries = seen, why)))))
        goto out;
    uint64_t bound = entries * DM_QUALITY_UNIQ_FOLD_FACTOR;
    bound = fold_min > bound ? fold_min : bound;
    if (p.entries + n > bound || p.bytes + run.len > S_PENDING_BYTES_MAX ||
        p.n + 1 >= S_RUNS_MAX)
        err = s_fold(t, pid, id, entries, &entries, why);
out:
    free(before);
    free(h);
    free(p.runs);
    dm_buf_free(&run);
    return err;
}
