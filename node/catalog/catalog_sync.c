/* catalog_sync.c: the catalog's anti-entropy on the wire: Scuttlebutt (van Renesse et al.
 * 2008): a digest {origin: highest version}, and the delta a peer's
 * digest shows it lacks, in ascending version per origin, bounded in size.
 *
 * Why ascending per origin: a receiver that holds every entry of an origin
 * up to version V advertises V; entries sent in version order keep that
 * true after any prefix of a delta, so a delta cut at max_bytes loses
 * nothing: the next digest asks for the rest. */
#include "catalog/catalog_priv.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define S_MORE_FLAG_BYTES 2 /* tag + value of CatalogDelta.more */

/* ---- digest ---- */

/* A digest page's range: origins in (after, upto]; a NULL bound is open. */
typedef struct {
    const uint8_t *after, *upto;
} s_range;

static bool s_in_range(const s_range *r, const uint8_t *origin)
{
    return (!r->after || memcmp(origin, r->after, DM_ID_PUBLIC_BYTES) > 0) &&
           (!r->upto || memcmp(origin, r->upto, DM_ID_PUBLIC_BYTES) <= 0);
}

/* Index of the first origin row above after (0 when after is NULL). */
static size_t s_origin_lower(const dm_catalog_t *c, const uint8_t *after)
{
    size_t lo = 0, hi = c->norigins;
    while (after && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(c->origins[mid].origin, after, DM_ID_PUBLIC_BYTES) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Appends the encoded digest of this node's origins in r, at most cap of
 * them; a page cut short ends at its last origin (upto), one that is not
 * ends at r's upto. */
static void s_digest_range(const dm_catalog_t *c, const s_range *r, size_t cap, dm_buf_t *out)
{
    size_t from = s_origin_lower(c, r->after), n = 0;
    size_t room = c->norigins - from < cap ? c->norigins - from : cap;
    Dm__OriginVersion *rows = calloc(room ? room : 1, sizeof *rows);
    Dm__OriginVersion **ptrs = calloc(room ? room : 1, sizeof *ptrs);
    if (!rows || !ptrs)
        abort(); /* as dm_buf does: nothing sensible to send without memory */
    Dm__CatalogDigest d;
    dm__catalog_digest__init(&d);
    if (r->after) {
        d.after.data = (uint8_t *)r->after;
        d.after.len = DM_ID_PUBLIC_BYTES;
    }
    const uint8_t *upto = r->upto;
    size_t i = from;
    for (; i < c->norigins && s_in_range(r, c->origins[i].origin); i++) {
        if (!c->origins[i].max_version)
            continue;
        if (n == cap) { /* more than fit: this page ends at the last listed */
            upto = rows[n - 1].origin.data;
            break;
        }
        Dm__OriginVersion *row = &rows[n];
        dm__origin_version__init(row);
        row->origin.data = (uint8_t *)c->origins[i].origin;
        row->origin.len = DM_ID_PUBLIC_BYTES;
        row->max_version = c->origins[i].max_version;
        ptrs[n++] = row;
    }
    if (upto) {
        d.upto.data = (uint8_t *)upto;
        d.upto.len = DM_ID_PUBLIC_BYTES;
    }
    d.n_origins = n;
    d.origins = ptrs;
    size_t len = dm__catalog_digest__get_packed_size(&d);
    dm_buf_reserve(out, len);
    out->len += dm__catalog_digest__pack(&d, (uint8_t *)out->data + out->len);
    out->data[out->len] = 0;
    free(rows);
    free(ptrs);
}

void dm_catalog_digest(const dm_catalog_t *c, dm_buf_t *out)
{
    s_range all = {NULL, NULL};
    s_digest_range(c, &all, c->norigins, out);
}

void dm_catalog_digest_first(const dm_catalog_t *c, dm_buf_t *out)
{
    s_range all = {NULL, NULL};
    s_digest_range(c, &all, DM_CATALOG_DIGEST_PAGE, out);
}

/* ---- delta ---- */

typedef struct {
    const uint8_t *origin;
    uint64_t version;
} s_peer_row;

static int s_peer_cmp(const void *a, const void *b)
{
    return memcmp(((const s_peer_row *)a)->origin, ((const s_peer_row *)b)->origin,
                  DM_ID_PUBLIC_BYTES);
}

static int s_item_version_cmp(const void *a, const void *b)
{
    const dm_catalog__item_t *x = *(dm_catalog__item_t *const *)a, *y = *(dm_catalog__item_t *const *)b;
    int r = memcmp(x->e.origin, y->e.origin, DM_ID_PUBLIC_BYTES);
    if (r)
        return r;
    return x->e.version < y->e.version ? -1 : x->e.version > y->e.version;
}

/* The peer's version for origin (0 when its digest does not name it). */
static uint64_t s_peer_version(const s_peer_row *rows, size_t n, const uint8_t *origin)
{
    s_peer_row key = {origin, 0};
    const s_peer_row *r = bsearch(&key, rows, n, sizeof *rows, s_peer_cmp);
    return r ? r->version : 0;
}

/* Decodes a peer's digest page and checks its bounds: at most
 * DM_CATALOG_DIGEST_PAGE origins of DM_ID_PUBLIC_BYTES, strictly ascending,
 * all in its range. *rows (sorted; points into *d) and *range are set.
 * DM_ERR_PROTO or DM_ERR_NOMEM; the caller frees *d and *rows either way. */
static dm_err s_digest_decode(const void *digest, size_t len, Dm__CatalogDigest **d,
                              s_peer_row **rows, s_range *range)
{
    *rows = NULL;
    *d = len <= DM_CATALOG_DIGEST_MAX_BYTES ? dm__catalog_digest__unpack(NULL, len, digest) : NULL;
    if (!*d || (*d)->n_origins > DM_CATALOG_DIGEST_PAGE ||
        ((*d)->after.len && (*d)->after.len != DM_ID_PUBLIC_BYTES) ||
        ((*d)->upto.len && (*d)->upto.len != DM_ID_PUBLIC_BYTES))
        return DM_ERR_PROTO;
    range->after = (*d)->after.len ? (*d)->after.data : NULL;
    range->upto = (*d)->upto.len ? (*d)->upto.data : NULL;
    *rows = calloc((*d)->n_origins ? (*d)->n_origins : 1, sizeof **rows);
    if (!*rows)
        return DM_ERR_NOMEM;
    for (size_t i = 0; i < (*d)->n_origins; i++) {
        const Dm__OriginVersion *o = (*d)->origins[i];
        if (o->origin.len != DM_ID_PUBLIC_BYTES || !s_in_range(range, o->origin.data) ||
            (i && memcmp((*rows)[i - 1].origin, o->origin.data, DM_ID_PUBLIC_BYTES) >= 0))
            return DM_ERR_PROTO;
        (*rows)[i].origin = o->origin.data;
        (*rows)[i].version = o->max_version;
    }
    return DM_OK;
}

/* Index of the first item whose origin is above after (0 when NULL). */
static size_t s_item_lower(const dm_catalog_t *c, const uint8_t *after)
{
    size_t lo = 0, hi = c->nitems;
    while (after && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(c->items[mid]->e.origin, after, DM_ID_PUBLIC_BYTES) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Appends the delta of the entries in range the peer (rows) lacks. */
static dm_err s_delta(dm_catalog_t *c, const s_peer_row *rows, size_t nrows, const s_range *range,
                      size_t max_bytes, dm_buf_t *out, bool *more)
{
    *more = false;
    dm_err err = DM_ERR_NOMEM;
    dm_catalog__item_t **cand = NULL, **sel = NULL;
    size_t *runs = NULL;
    Dm__CatalogEntry *pbs = NULL, **pbp = NULL;
    size_t from = s_item_lower(c, range->after), ncand = 0;
    cand = calloc(c->nitems - from ? c->nitems - from : 1, sizeof *cand);
    if (!cand)
        goto out;
    for (size_t i = from; i < c->nitems && s_in_range(range, c->items[i]->e.origin); i++)
        if (c->items[i]->e.version > s_peer_version(rows, nrows, c->items[i]->e.origin))
            cand[ncand++] = c->items[i];
    qsort(cand, ncand, sizeof *cand, s_item_version_cmp);

    /* Runs of one origin; the run to start with rotates between calls. */
    sel = calloc(ncand ? ncand : 1, sizeof *sel);
    runs = calloc(ncand + 1, sizeof *runs);
    if (!sel || !runs)
        goto out;
    size_t nruns = 0;
    for (size_t i = 0; i < ncand; i++)
        if (i == 0 || memcmp(cand[i]->e.origin, cand[i - 1]->e.origin, DM_ID_PUBLIC_BYTES))
            runs[nruns++] = i;
    runs[nruns] = ncand;
    size_t first_run = nruns ? c->rr++ % nruns : 0;
    size_t nsel = 0, total = S_MORE_FLAG_BYTES;
    bool full = false;
    for (size_t r = 0; r < nruns && !full; r++) {
        size_t run = (first_run + r) % nruns;
        for (size_t j = runs[run]; j < runs[run + 1]; j++) {
            size_t w = cand[j]->wire_bytes;
            if (total + w <= max_bytes) {
                sel[nsel++] = cand[j];
                total += w;
                continue;
            }
            *more = true;
            if (nsel == 0) { /* larger than max_bytes: travels alone, never cut */
                sel[nsel++] = cand[j];
                full = true;
            }
            break; /* the rest of this origin must wait: ascending order */
        }
    }
    if (nsel < ncand)
        *more = true;
    pbs = calloc(nsel ? nsel : 1, sizeof *pbs);
    pbp = calloc(nsel ? nsel : 1, sizeof *pbp);
    if (!pbs || !pbp)
        goto out;
    Dm__CatalogDelta msg;
    dm__catalog_delta__init(&msg);
    for (size_t i = 0; i < nsel; i++) {
        dm_catalog__entry_to_pb(&sel[i]->e, &pbs[i]);
        pbp[i] = &pbs[i];
    }
    msg.n_entries = nsel;
    msg.entries = pbp;
    msg.more = *more;
    size_t n = dm__catalog_delta__get_packed_size(&msg);
    dm_buf_reserve(out, n);
    out->len += dm__catalog_delta__pack(&msg, (uint8_t *)out->data + out->len);
    out->data[out->len] = 0;
    err = DM_OK;
out:
    free(cand);
    free(sel);
    free(runs);
    free(pbs);
    free(pbp);
    return err;
}

dm_err dm_catalog_delta(dm_catalog_t *c, const void *digest, size_t len, size_t max_bytes,
                        dm_buf_t *out, bool *more)
{
    *more = false;
    Dm__CatalogDigest *d = NULL;
    s_peer_row *rows = NULL;
    s_range range;
    dm_err err = s_digest_decode(digest, len, &d, &rows, &range);
    if (!err)
        err = s_delta(c, rows, d->n_origins, &range, max_bytes, out, more);
    if (d)
        dm__catalog_digest__free_unpacked(d, NULL);
    free(rows);
    return err;
}

dm_err dm_catalog_answer(dm_catalog_t *c, const void *digest, size_t len, bool wants_digest,
                         size_t max_bytes, dm_buf_t *delta, dm_buf_t *digest_out, bool *ask)
{
    *ask = false;
    Dm__CatalogDigest *d = NULL;
    s_peer_row *rows = NULL;
    s_range range;
    bool more = false;
    dm_err err = s_digest_decode(digest, len, &d, &rows, &range);
    if (err)
        goto out;
    /* Nothing to send is sent as nothing, not as an empty message. */
    size_t mark = delta->len;
    err = s_delta(c, rows, d->n_origins, &range, max_bytes, delta, &more);
    if (err)
        goto out;
    if (delta->len - mark <= S_MORE_FLAG_BYTES && !more)
        delta->len = mark;
    if (wants_digest) {
        s_digest_range(c, &range, DM_CATALOG_DIGEST_PAGE, digest_out);
    } else if (range.upto) {
        s_range next = {range.upto, NULL};
        s_digest_range(c, &next, DM_CATALOG_DIGEST_PAGE, digest_out);
        *ask = true;
    }
out:
    if (d)
        dm__catalog_digest__free_unpacked(d, NULL);
    free(rows);
    return err;
}

/* ---- applying a delta ---- */

static int s_pb_order(const void *a, const void *b)
{
    const Dm__CatalogEntry *x = *(Dm__CatalogEntry *const *)a, *y = *(Dm__CatalogEntry *const *)b;
    size_t n = x->origin.len < y->origin.len ? x->origin.len : y->origin.len;
    int r = n ? memcmp(x->origin.data, y->origin.data, n) : 0;
    if (r)
        return r;
    if (x->origin.len != y->origin.len)
        return x->origin.len < y->origin.len ? -1 : 1;
    return x->version < y->version ? -1 : x->version > y->version;
}

/* Turns the judging window over when DM_CATALOG_JUDGE_WINDOW_MS has passed
 * (or the clock went back): nothing judged, no sender's share spent. */
static void s_judge_window(dm_catalog_t *c, int64_t now_ms)
{
    if (now_ms - c->judge_window_ms >= DM_CATALOG_JUDGE_WINDOW_MS || now_ms < c->judge_window_ms) {
        c->judge_window_ms = now_ms;
        c->judge_window_bytes = 0;
        c->nshares = 0;
    }
}

/* sender's row in this window's shares (NULL sender: NULL). A new sender
 * takes a free row; when all are taken, the last row is shared. */
static dm_catalog__share_t *s_share(dm_catalog_t *c, const uint8_t *sender)
{
    if (!sender)
        return NULL;
    for (size_t i = 0; i < c->nshares; i++)
        if (memcmp(c->shares[i].sender, sender, DM_ID_PUBLIC_BYTES) == 0)
            return &c->shares[i];
    if (c->nshares == DM_CATALOG_JUDGE_SENDERS)
        return &c->shares[DM_CATALOG_JUDGE_SENDERS - 1];
    dm_catalog__share_t *s = &c->shares[c->nshares++];
    memcpy(s->sender, sender, DM_ID_PUBLIC_BYTES);
    s->bytes = 0;
    return s;
}

/* Contract bytes the next delta (of sender, may be NULL) may have judged:
 * DM_CATALOG_JUDGE_BYTES, or less as what is left of the node-wide window
 * and of the sender's DM_CATALOG_JUDGE_SENDER_BYTES share (0: none). */
static size_t s_judge_budget(dm_catalog_t *c, const uint8_t *sender, int64_t now_ms)
{
    s_judge_window(c, now_ms);
    size_t left = c->judge_window_bytes < DM_CATALOG_JUDGE_BYTES_PER_WINDOW
                      ? DM_CATALOG_JUDGE_BYTES_PER_WINDOW - c->judge_window_bytes
                      : 0;
    const dm_catalog__share_t *sh = s_share(c, sender);
    if (sh) {
        size_t mine = sh->bytes < DM_CATALOG_JUDGE_SENDER_BYTES
                          ? DM_CATALOG_JUDGE_SENDER_BYTES - sh->bytes
                          : 0;
        left = mine < left ? mine : left;
    }
    return left < DM_CATALOG_JUDGE_BYTES ? left : DM_CATALOG_JUDGE_BYTES;
}

dm_err dm_catalog_apply_delta(dm_catalog_t *c, const void *delta, size_t len, int64_t now_ms,
                              dm_catalog_counts_t *counts, bool *more, dm_buf_t *why)
{
    return dm_catalog_apply_delta_from(c, NULL, delta, len, now_ms, counts, more, why);
}

dm_err dm_catalog_apply_delta_from(dm_catalog_t *c, const uint8_t *sender, const void *delta,
                                   size_t len, int64_t now_ms, dm_catalog_counts_t *counts,
                                   bool *more, dm_buf_t *why)
{
    if (counts)
        memset(counts, 0, sizeof *counts);
    if (more)
        *more = false;
    if (len > DM_CATALOG_DELTA_MAX_BYTES)
        return DM_ERR_PROTO;
    Dm__CatalogDelta *d = dm__catalog_delta__unpack(NULL, len, delta);
    if (!d)
        return DM_ERR_PROTO;
    dm_err err = DM_OK;
    /* Ascending per origin whatever order the sender chose, so a digest
     * never claims a version whose predecessors were skipped. */
    Dm__CatalogEntry **order = malloc((d->n_entries ? d->n_entries : 1) * sizeof *order);
    if (!order) {
        err = DM_ERR_NOMEM;
        goto out;
    }
    if (d->n_entries)
        memcpy(order, d->entries, d->n_entries * sizeof *order);
    qsort(order, d->n_entries, sizeof *order, s_pb_order);
    dm_buf_t line = DM_BUF_INIT;
    /* Only contracts about to be parsed are charged (dm_catalog__admit), after
     * decoding, signature, origin and staleness: junk costs its sender
     * nothing of the window, and nobody else anything. */
    dm_catalog__budget_t budget = {s_judge_budget(c, sender, now_ms), 0, false};
    for (size_t i = 0; i < d->n_entries && !err; i++) {
        dm_catalog_entry_t e = {0};
        dm_catalog_verdict v = DM_CATALOG_MALFORMED;
        dm_buf_reset(&line);
        if (dm_catalog__entry_view(order[i], &e, &line))
            v = dm_catalog__admit(c, &e, DM_CATALOG__DELTA, now_ms, &budget, &line, &err);
        /* Past the budget the rest waits: entries are in (origin, version)
         * order, so what was applied is a prefix per origin and the next
         * digest asks for exactly the rest. */
        if (budget.cut)
            break;
        if (counts)
            counts->n[v]++;
        bool bad = v != DM_CATALOG_ACCEPTED && v != DM_CATALOG_STALE &&
                   v != DM_CATALOG_UNKNOWN_ORIGIN;
        if (bad && why && e.key && dm_catalog__refusal_quiet(c, &e, now_ms)) {
            dm_log_debug("catalog: refused again (reported within %d minutes): %s: %s",
                         DM_CATALOG_REFUSAL_QUIET_MS / 60000, dm_catalog_verdict_name(v),
                         line.data ? line.data : "");
            if (counts)
                counts->quiet++;
        } else if (v != DM_CATALOG_ACCEPTED && why) {
            dm_buf_printf(why, "%s: %s\n", dm_catalog_verdict_name(v), line.data ? line.data : "");
        }
    }
    dm_buf_free(&line);
    free(order);
    if (err)
        dm_catalog__abort(c);
    else
        err = dm_catalog__commit(c, why);
    c->judge_window_bytes += budget.used;
    dm_catalog__share_t *sh = s_share(c, sender);
    if (sh)
        sh->bytes += budget.used;
    /* Cut by the window: the next periodic exchange brings the rest; asking
     * at once would only be cut again. */
    if (!err && more)
        *more = d->more || (budget.cut && s_judge_budget(c, sender, now_ms) > 0);
out:
    dm__catalog_delta__free_unpacked(d, NULL);
    return err;
}
