/* node_health.c: the health of the node's products, measured here and
 * published as catalog entries "health/DOMAIN/NAME" (docs/sla.md).
 *
 * What it keeps: per owned product a latency window (quality/sla.h) fed by
 * the query pool's workers (dm_query_pool_set_latency; a read lock, a
 * binary search and one atomic add per product a query reads); the node's availability (down intervals: the gap
 * since the last heartbeat at a restart, and each refutation of a
 * suspicion membership made); and what it last published per product.
 * The loop's tick builds each product's dm.HealthRecord from its checks
 * judged now from the stored state (dm_quality_run without storing:
 * O(checks), so a lapsing freshness shows without an ingest), the
 * store's counts and the SLA terms, and publishes it when it starts
 * failing (at once), when another state changed (at most every
 * DM_NODE_HEALTH_MIN_GAP_MS per product) or, when only numbers changed,
 * every DM_NODE_HEALTH_REFRESH_MS. Readers of the health entries (listings,
 * describe, lineage) classify them here; a listing or a lineage answer
 * takes one view of every product's health (each entry decoded once,
 * "upstream degraded" for all in one pass over the graph the caller
 * passes). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "base/log.h"
#include "catalog/lineage.h"
#include "quality/quality.h"
#include "quality/sla.h"
#include "server/node_priv.h"
#include "storage/catalog_db.h"

#define S_NAME_MAX (DM_CATALOG_NAME_MAX + 1)
#define S_FNV_OFFSET 1469598103934665603ULL
#define S_FNV_PRIME 1099511628211ULL

/* One product the node owns. */
typedef struct {
    char domain[S_NAME_MAX], name[S_NAME_MAX];
    dm_sla_latency_t *lat;
    uint64_t states, numbers; /* fingerprints of what was last published; 0: nothing */
    int64_t published_ms;     /* monotonic */
    bool failing;             /* what was last published fails a check or breaches an SLA */
    bool seen;                /* listed by the registry in this tick */
} s_prod;

struct dm_node__health {
    /* The products: changed by the loop under the write lock, looked up
     * by query workers under the read lock. Ordered by domain, name. */
    pthread_rwlock_t lock;
    s_prod *prods;
    size_t n, cap;
    dm_sla_avail_t avail; /* the loop's */
    uint64_t incarnation; /* this node's, as last seen */
    int64_t next_tick, next_beat;
    dm_registry_t *registry; /* the node's: what it owns */
};

static uint64_t s_mix(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * S_FNV_PRIME;
    return h;
}

static int s_prod_cmp(const char *d, const char *n, const s_prod *p)
{
    int c = strcmp(d, p->domain);
    return c ? c : strcmp(n, p->name);
}

/* The index of domain/name, or where it would go (*found false). */
static size_t s_find(const dm_node__health_t *h, const char *d, const char *n, bool *found)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = s_prod_cmp(d, n, &h->prods[mid]);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

/* Inserts domain/name (each under S_NAME_MAX bytes) at at, with a new
 * latency window; the write lock is held. false: out of memory. */
static bool s_insert(dm_node__health_t *h, size_t at, const char *domain, const char *name)
{
    dm_sla_latency_t *lat = dm_sla_latency_new();
    if (!lat || !dm_array_reserve(&h->prods, &h->cap, h->n + 1, sizeof *h->prods, 8)) {
        dm_sla_latency_destroy(&lat);
        return false;
    }
    memmove(&h->prods[at + 1], &h->prods[at], (h->n - at) * sizeof *h->prods);
    memset(&h->prods[at], 0, sizeof *h->prods);
    strcpy(h->prods[at].domain, domain);
    strcpy(h->prods[at].name, name);
    h->prods[at].lat = lat;
    h->prods[at].seen = true;
    h->n++;
    return true;
}

/* Whether the node owns domain/name (its registry holds it). */
static bool s_owned(dm_node__health_t *h, const char *domain, const char *name)
{
    char q[2 * S_NAME_MAX + 1];
    const dm_product_ref_t *ref = NULL;
    if (strlen(domain) >= S_NAME_MAX || strlen(name) >= S_NAME_MAX)
        return false;
    snprintf(q, sizeof q, "%s/%s", domain, name);
    if (dm_registry_acquire(h->registry, q, strlen(q), &ref) != DM_OK)
        return false;
    dm_registry_release(h->registry, ref);
    return true;
}

/* The query pool's latency observer: any worker thread. A product the
 * loop has not taken in yet (registered since its last tick) is added
 * here, so no query of a new product goes uncounted. */
static void s_on_latency(void *ctx, const char *domain, const char *product, int64_t us)
{
    dm_node__health_t *h = ctx;
    bool found = false;
    pthread_rwlock_rdlock(&h->lock);
    size_t i = s_find(h, domain, product, &found);
    if (found)
        dm_sla_latency_record(h->prods[i].lat, dm_clock_wall_ms(), us);
    pthread_rwlock_unlock(&h->lock);
    if (found || !s_owned(h, domain, product))
        return; /* another node's product, read through this one: not ours to measure */
    pthread_rwlock_wrlock(&h->lock);
    i = s_find(h, domain, product, &found);
    if (found || s_insert(h, i, domain, product))
        dm_sla_latency_record(h->prods[i].lat, dm_clock_wall_ms(), us);
    pthread_rwlock_unlock(&h->lock);
}

/* ---- availability: the heartbeat and refutations ---- */

static const uint8_t s_beat_key[1] = {DM_STORE_CATALOG_HEARTBEAT};

static int s_find_beat(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    dm_sla_avail_t *a = ctx;
    if (klen != sizeof s_beat_key || memcmp(key, s_beat_key, klen) != 0)
        return 0;
    if (!dm_sla_avail_decode(val, vlen, a))
        dm_log_warn("health: the stored heartbeat does not decode (%zu bytes); availability "
                    "starts afresh",
                    vlen);
    return 1;
}

/* Writes the heartbeat (the availability record, last beat now). */
static void s_beat(dm_node_t *self, int64_t wall_ms)
{
    dm_node__health_t *h = self->health;
    uint8_t rec[DM_SLA_AVAIL_RECORD_MAX];
    h->avail.last_beat_ms = wall_ms;
    size_t len = dm_sla_avail_encode(&h->avail, rec);
    dm_store_catalog_op_t op = {s_beat_key, sizeof s_beat_key, rec, len};
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_catalog_db_write(self->store, &op, 1, &why);
    if (rc != DM_OK && rc != DM_ERR_BUSY) /* busy: the map grows; the next beat writes */
        dm_log_warn("health: cannot write the heartbeat: %s", why.len ? why.data : dm_err_str(rc));
    dm_buf_free(&why);
}

/* A refutation (this node's incarnation rose): peers suspected it or
 * declared it dead. The accusation reached it about one probe interval
 * after it was made, so that long counts as down. */
static void s_watch_refutations(dm_node_t *self, int64_t wall_ms)
{
    dm_node__health_t *h = self->health;
    const dm_membership_t *m = dm_gossip_membership(self->gossip);
    uint64_t inc = dm_membership_incarnation(m);
    if (inc == h->incarnation)
        return;
    int64_t probe = dm_membership_probe_interval(m) + dm_membership_probe_timeout(m);
    dm_log_info("health: peers suspected this node (incarnation %llu -> %llu); %lld ms count "
                "as down",
                (unsigned long long)h->incarnation, (unsigned long long)inc, (long long)probe);
    dm_sla_avail_down(&h->avail, wall_ms - probe, wall_ms);
    h->incarnation = inc;
}

dm_err dm_node__health_open(dm_node_t *self, dm_buf_t *why)
{
    dm_node__health_t *h = calloc(1, sizeof *h);
    if (!h) {
        dm_buf_puts(why, "cannot set up health: out of memory");
        return DM_ERR_NOMEM;
    }
    pthread_rwlock_init(&h->lock, NULL);
    h->registry = self->registry;
    self->health = h;
    int64_t now = dm_clock_wall_ms();
    dm_buf_t reason = DM_BUF_INIT;
    if (dm_catalog_db_scan(self->store, s_find_beat, &h->avail, &reason) != DM_OK)
        dm_log_warn("health: cannot read the heartbeat (%s); availability starts afresh",
                    reason.data ? reason.data : "");
    dm_buf_free(&reason);
    int64_t was = h->avail.last_beat_ms;
    dm_sla_avail_restarted(&h->avail, now);
    if (was > 0 && was < now)
        dm_log_info("health: down since the last heartbeat %lld ms ago", (long long)(now - was));
    h->incarnation = dm_membership_incarnation(dm_gossip_membership(self->gossip));
    s_beat(self, now);
    h->next_beat = dm_clock_mono_ms() + DM_NODE_HEARTBEAT_MS;
    dm_query_pool_set_latency(self->queries, s_on_latency, h);
    return DM_OK;
}

void dm_node__health_close(dm_node_t *self)
{
    dm_node__health_t *h = self->health;
    if (!h)
        return;
    if (self->store)
        s_beat(self, dm_clock_wall_ms()); /* a clean stop: down from now */
    for (size_t i = 0; i < h->n; i++)
        dm_sla_latency_destroy(&h->prods[i].lat);
    free(h->prods);
    pthread_rwlock_destroy(&h->lock);
    free(h);
    self->health = NULL;
}

/* ---- the products: kept in step with the registry ---- */

typedef struct {
    char (*names)[2][S_NAME_MAX];
    size_t n, cap;
    bool nomem;
} s_names;

static void s_collect_name(void *arg, const char *domain, const char *name)
{
    s_names *s = arg;
    if (strlen(domain) >= S_NAME_MAX || strlen(name) >= S_NAME_MAX)
        return;
    if (!dm_array_reserve(&s->names, &s->cap, s->n + 1, sizeof *s->names, 16)) {
        s->nomem = true;
        return;
    }
    strcpy(s->names[s->n][0], domain);
    strcpy(s->names[s->n][1], name);
    s->n++;
}

/* Adds the registry's new products (with a latency window each) and drops
 * the ones it no longer holds. Loop only. */
static void s_sync_products(dm_node_t *self)
{
    dm_node__health_t *h = self->health;
    s_names s = {0};
    dm_registry_each(self->registry, s_collect_name, &s);
    if (s.nomem) {
        free(s.names);
        return;
    }
    pthread_rwlock_wrlock(&h->lock);
    for (size_t i = 0; i < h->n; i++)
        h->prods[i].seen = false;
    for (size_t k = 0; k < s.n; k++) {
        bool found = false;
        size_t at = s_find(h, s.names[k][0], s.names[k][1], &found);
        if (found)
            h->prods[at].seen = true;
        else
            (void)s_insert(h, at, s.names[k][0], s.names[k][1]); /* none: the next tick */
    }
    size_t kept = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (h->prods[i].seen)
            h->prods[kept++] = h->prods[i];
        else
            dm_sla_latency_destroy(&h->prods[i].lat);
    }
    h->n = kept;
    pthread_rwlock_unlock(&h->lock);
    free(s.names);
}

/* ---- building a record ---- */

/* s, or a copy cut to DM_CATALOG_HEALTH_TEXT_MAX bytes kept in *keep (the
 * caller frees it): a record must stay within the catalog's bounds. */
static char *s_text(const char *s, char **keep)
{
    if (!s)
        return (char *)"";
    if (strlen(s) <= DM_CATALOG_HEALTH_TEXT_MAX)
        return (char *)s;
    *keep = strndup(s, DM_CATALOG_HEALTH_TEXT_MAX);
    return *keep ? *keep : (char *)"";
}

/* What one record holds while it is packed. */
typedef struct {
    Dm__HealthRecord r;
    Dm__CheckResult *checks, **checkp;
    Dm__SlaStatus sla[DM_SLA_TERMS], *slap[DM_SLA_TERMS];
    dm_sla_term_t terms[DM_SLA_TERMS];
    char **keep; /* cut copies: 4 per check */
    size_t nkeep;
    dm_qreport_t rep;
} s_rec;

static void s_rec_clear(s_rec *x)
{
    for (size_t i = 0; x->keep && i < x->nkeep; i++)
        free(x->keep[i]);
    free(x->keep);
    free(x->checks);
    free(x->checkp);
    dm_qreport_clear(&x->rep);
}

/* The report's results as CheckResults, without samples. */
static bool s_rec_checks(s_rec *x)
{
    size_t n = x->rep.n;
    if (!n)
        return true;
    x->checks = calloc(n, sizeof *x->checks);
    x->checkp = calloc(n, sizeof *x->checkp);
    x->keep = calloc(4 * n, sizeof *x->keep);
    if (!x->checks || !x->checkp || !x->keep)
        return false;
    x->nkeep = 4 * n;
    for (size_t i = 0; i < n; i++) {
        const dm_qresult_t *q = &x->rep.results[i];
        Dm__CheckResult *k = &x->checks[i];
        dm__check_result__init(k);
        k->name = s_text(q->name, &x->keep[4 * i]);
        k->rule = (char *)dm_contract_rule_name(q->rule);
        k->column = (char *)(q->column ? q->column : "");
        k->outcome = (char *)dm_qoutcome_name(q->outcome);
        k->observed = q->observed;
        k->observed_text = s_text(q->observed_text, &x->keep[4 * i + 1]);
        k->threshold = s_text(q->threshold, &x->keep[4 * i + 2]);
        k->reason = s_text(q->reason, &x->keep[4 * i + 3]);
        k->at_ms = q->at_ms;
        if (strlen(k->column) > DM_CATALOG_HEALTH_TEXT_MAX)
            k->column = "";
        x->checkp[i] = k;
    }
    x->r.checks = x->checkp;
    x->r.n_checks = n;
    return true;
}

/* Fills x with product c's (pid) record at now (Unix ms): the latest
 * report, the store's counts, the SLA terms. false: out of memory. */
static bool s_rec_build(dm_node_t *self, const s_prod *p, const dm_product_ref_t *ref,
                        int64_t now, s_rec *x)
{
    memset(x, 0, sizeof *x);
    dm__health_record__init(&x->r);
    dm_buf_t why = DM_BUF_INIT;
    /* Judged now from the stored state (no write), not the report stored
     * at the last ingest: a check that lapses with time alone (freshness)
     * is published as failing without an ingest or a schedule. */
    dm_err rc = dm_quality_run(self->store, ref->pid, ref->contract, now, false, &x->rep, &why);
    if (rc != DM_OK)
        dm_log_debug("health: %s/%s: the checks cannot be judged: %s", p->domain, p->name,
                     why.len ? why.data : dm_err_str(rc));
    bool have = rc == DM_OK && x->rep.last_ingest_ms != 0; /* never ingested: nothing known */
    dm_buf_free(&why);
    x->r.outcome = have ? (char *)dm_qoutcome_name(x->rep.outcome) : (char *)"";
    x->r.measured_at_ms = now;
    x->r.last_ingest_ms = have ? x->rep.last_ingest_ms : 0;
    dm_product_t prod = {0};
    if (dm_store_product_get(self->store, p->domain, p->name, &prod, NULL) == DM_OK) {
        x->r.records = prod.records;
        x->r.quarantined = prod.quarantined;
    }
    dm_store_product_clear(&prod);
    dm_sla_inputs_t in = {have ? x->rep.newest_event_ms : 0, x->r.last_ingest_ms, p->lat,
                          &self->health->avail};
    size_t nterms = dm_sla_judge(ref->contract, &in, now, x->terms);
    for (size_t i = 0; i < nterms; i++) {
        Dm__SlaStatus *s = &x->sla[i];
        dm__sla_status__init(s);
        s->kind = (char *)x->terms[i].kind;
        s->target = x->terms[i].target;
        s->measured = x->terms[i].measured;
        s->met = x->terms[i].state == DM_SLA_MET;
        s->unknown = x->terms[i].state == DM_SLA_UNKNOWN;
        x->slap[i] = s;
    }
    x->r.sla = x->slap;
    x->r.n_sla = nterms;
    return !have || s_rec_checks(x);
}

/* The fingerprint of the states (outcomes, SLA verdicts) of r. */
static uint64_t s_states(const Dm__HealthRecord *r)
{
    uint64_t h = s_mix(S_FNV_OFFSET, r->outcome, strlen(r->outcome) + 1);
    for (size_t i = 0; i < r->n_checks; i++) {
        h = s_mix(h, r->checks[i]->name, strlen(r->checks[i]->name) + 1);
        h = s_mix(h, r->checks[i]->outcome, strlen(r->checks[i]->outcome) + 1);
    }
    for (size_t i = 0; i < r->n_sla; i++) {
        uint8_t st = (uint8_t)(r->sla[i]->met | r->sla[i]->unknown << 1);
        h = s_mix(h, r->sla[i]->kind, strlen(r->sla[i]->kind) + 1);
        h = s_mix(h, &st, 1);
    }
    return h | 1; /* never 0: that means "nothing published" */
}

/* Packs r into out, dropping checks from the end until it fits the
 * catalog's payload bound. */
static void s_pack(Dm__HealthRecord *r, dm_buf_t *out)
{
    size_t len;
    while ((len = dm__health_record__get_packed_size(r)) > DM_CATALOG_PAYLOAD_MAX && r->n_checks)
        r->n_checks = r->n_checks > 16 ? r->n_checks - r->n_checks / 8 : r->n_checks - 1;
    dm_buf_reset(out);
    dm_buf_reserve(out, len);
    out->len = dm__health_record__pack(r, (uint8_t *)out->data);
}

static const char *s_classify(const Dm__HealthRecord *r, bool *failing, dm_buf_t *cause);

/* Builds product p's record and publishes it when due: at once when it
 * starts failing (downstream products turn "upstream degraded" within a
 * gossip round of the failure), else a change of state at most every
 * DM_NODE_HEALTH_MIN_GAP_MS (a flapping product publishes at most twice in
 * that time: only bad news skips the wait). true: published. */
static bool s_publish_one(dm_node_t *self, s_prod *p, int64_t mono, int64_t wall)
{
    char q[2 * S_NAME_MAX + 1];
    snprintf(q, sizeof q, "%s/%s", p->domain, p->name);
    const dm_product_ref_t *ref = NULL;
    if (dm_registry_acquire(self->registry, q, strlen(q), &ref) != DM_OK)
        return false;
    s_rec x;
    bool published = false;
    dm_buf_t packed = DM_BUF_INIT, why = DM_BUF_INIT;
    if (!s_rec_build(self, p, ref, wall, &x))
        goto out;
    uint64_t states = s_states(&x.r);
    bool failing = p->failing; /* a function of the states (s_classify): same states, same */
    if (states != p->states)
        (void)s_classify(&x.r, &failing, &why); /* why: scratch until the publish */
    x.r.measured_at_ms = 0; /* the numbers, whatever the time */
    s_pack(&x.r, &packed);
    uint64_t numbers = s_mix(S_FNV_OFFSET, packed.data, packed.len);
    int64_t since = mono - p->published_ms;
    bool due = p->states == 0 || (failing && !p->failing) ||
               (states != p->states && since >= DM_NODE_HEALTH_MIN_GAP_MS) ||
               (numbers != p->numbers && since >= DM_NODE_HEALTH_REFRESH_MS);
    if (!due)
        goto out;
    x.r.measured_at_ms = wall;
    s_pack(&x.r, &packed);
    dm_buf_reset(&why);
    char key[DM_CATALOG_KEY_MAX];
    snprintf(key, sizeof key, "%s%s", DM_CATALOG_HEALTH_PREFIX, q);
    dm_err rc = dm_catalog_publish(self->catalog, key, packed.data, packed.len, false, wall, &why);
    if (rc != DM_OK) {
        dm_log_debug("health: cannot publish %s: %s", key, why.len ? why.data : dm_err_str(rc));
        goto out;
    }
    if (states != p->states)
        dm_log_info("health: %s is %s", q, x.r.outcome[0] ? x.r.outcome : "not yet checked");
    p->states = states;
    p->numbers = numbers;
    p->published_ms = mono;
    p->failing = failing;
    published = true;
out:
    s_rec_clear(&x);
    dm_buf_free(&packed);
    dm_buf_free(&why);
    dm_registry_release(self->registry, ref);
    return published;
}

void dm_node__health_tick(dm_node_t *self, int64_t mono)
{
    dm_node__health_t *h = self->health;
    if (!h || mono < h->next_tick)
        return;
    h->next_tick = mono + DM_NODE_HEALTH_TICK_MS;
    int64_t wall = dm_clock_wall_ms();
    s_watch_refutations(self, wall);
    if (dm_membership_count_live(dm_gossip_membership(self->gossip)) > 0)
        h->avail.peer_seen_ms = wall; /* someone can see this node (sla.availability) */
    if (mono >= h->next_beat) {
        s_beat(self, wall);
        h->next_beat = mono + DM_NODE_HEARTBEAT_MS;
    }
    s_sync_products(self);
    bool any = false;
    /* A worker may insert a new product meanwhile: read under the lock
     * (the fields published here are the loop's alone). */
    pthread_rwlock_rdlock(&h->lock);
    for (size_t i = 0; i < h->n; i++)
        any = s_publish_one(self, &h->prods[i], mono, wall) || any;
    pthread_rwlock_unlock(&h->lock);
    if (any)
        dm_gossip_catalog_changed(self->gossip, mono);
}

/* ---- reading the entries: listings, describe, lineage ---- */

/* The word a listing shows for r ("pass", "warn", "fail", "error", "sla
 * breached", or "" when nothing is known), *failing when a check fails or
 * errs or an SLA term is breached (a warn is the product's own health
 * only: it does not make its downstream "upstream degraded"), and why
 * into cause ("fails unique(sku)"). */
static const char *s_classify(const Dm__HealthRecord *r, bool *failing, dm_buf_t *cause)
{
    static const struct {
        const char *outcome, *verb;
    } bad[] = {{"error", "cannot judge"}, {"fail", "fails"}, {"warn", "warns on"}};
    *failing = false;
    dm_buf_reset(cause);
    const char *word = NULL;
    for (size_t b = 0; !word && b < sizeof bad / sizeof *bad; b++) {
        if (strcmp(r->outcome, bad[b].outcome) != 0)
            continue;
        word = bad[b].outcome;
        size_t i = 0;
        while (i < r->n_checks && strcmp(r->checks[i]->outcome, bad[b].outcome) != 0)
            i++;
        if (i == r->n_checks) {
            dm_buf_printf(cause, "%s its checks", bad[b].verb);
        } else {
            dm_buf_printf(cause, "%s %s", bad[b].verb, r->checks[i]->name);
            if (r->checks[i]->observed_text[0])
                dm_buf_printf(cause, " (%s)", r->checks[i]->observed_text);
        }
    }
    if (word && strcmp(word, "warn") != 0) {
        *failing = true;
        return word;
    }
    bool known = r->outcome[0] != 0;
    for (size_t i = 0; i < r->n_sla; i++) {
        const Dm__SlaStatus *s = r->sla[i];
        if (!s->met && !s->unknown) {
            *failing = true;
            dm_buf_reset(cause);
            dm_buf_printf(cause, "breaches sla.%s (%s; target %s)", s->kind, s->measured,
                          s->target);
            return "sla breached";
        }
        known = known || s->met;
    }
    return word ? word : known ? "pass" : "";
}

/* The decoded health entry of domain/name, NULL when there is none (or
 * it does not decode: it was checked when accepted). */
static Dm__HealthRecord *s_entry(dm_node_t *self, const char *domain, const char *name)
{
    dm_buf_t payload = DM_BUF_INIT;
    Dm__HealthRecord *r = NULL;
    if (dm_catalog_health(self->catalog, domain, name, &payload) == DM_OK)
        r = dm__health_record__unpack(NULL, payload.len, (const uint8_t *)payload.data);
    dm_buf_free(&payload);
    return r;
}

bool dm_node__health_of(void *ctx, const char *domain, const char *name, bool *failing,
                        dm_buf_t *cause)
{
    Dm__HealthRecord *r = s_entry(ctx, domain, name);
    if (!r)
        return false;
    s_classify(r, failing, cause);
    dm__health_record__free_unpacked(r, NULL);
    return true;
}

void dm_node__health_show(dm_node_t *self, const dm_lineage_t *g, const char *domain,
                          const char *name, dm_buf_t *health, dm_buf_t *cause)
{
    dm_buf_reset(health);
    dm_buf_reset(cause);
    if (!self->health)
        return;
    Dm__HealthRecord *r = s_entry(self, domain, name);
    bool failing = false;
    const char *word = r ? s_classify(r, &failing, cause) : "";
    if (r)
        dm__health_record__free_unpacked(r, NULL);
    if (!failing &&
        dm_lineage_degraded(g, domain, name, dm_node__health_of, self, cause))
        word = "upstream degraded";
    dm_buf_puts(health, word);
}

Dm__HealthRecord *dm_node__health_describe(dm_node_t *self, const dm_lineage_t *g,
                                           const char *domain, const char *name,
                                           dm_buf_t *degraded)
{
    dm_buf_reset(degraded);
    if (!self->health)
        return NULL;
    (void)dm_lineage_degraded(g, domain, name, dm_node__health_of, self, degraded);
    return s_entry(self, domain, name);
}

/* ---- one request's view of every product's health ---- */

/* A product's health as a listing shows it. */
typedef struct {
    char domain[S_NAME_MAX], name[S_NAME_MAX];
    const char *word; /* s_classify's (static) */
    char *cause, *degraded;
    bool failing;
} s_vitem;

struct dm_node__health_view {
    dm_node_t *self;
    s_vitem *items; /* in the lineage graph's order: by domain, then name */
    size_t n, cap;
    bool nomem;
};

static s_vitem *s_view_find(const dm_node__health_view_t *v, const char *d, const char *n)
{
    size_t lo = 0, hi = v ? v->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d, v->items[mid].domain);
        c = c ? c : strcmp(n, v->items[mid].name);
        if (c == 0)
            return &v->items[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* dm_lineage_health_fn: decodes the entry (once: the pass asks once per
 * product) and keeps its classification. */
static bool s_view_health(void *ctx, const char *domain, const char *name, bool *failing,
                          dm_buf_t *cause)
{
    dm_node__health_view_t *v = ctx;
    *failing = false;
    if (strlen(domain) >= S_NAME_MAX || strlen(name) >= S_NAME_MAX)
        return false;
    if (!dm_array_reserve(&v->items, &v->cap, v->n + 1, sizeof *v->items, 64)) {
        v->nomem = true;
        return false;
    }
    Dm__HealthRecord *r = s_entry(v->self, domain, name);
    s_vitem *x = &v->items[v->n];
    memset(x, 0, sizeof *x);
    strcpy(x->domain, domain);
    strcpy(x->name, name);
    x->word = r ? s_classify(r, failing, cause) : "";
    x->failing = *failing;
    x->cause = strdup(cause->len ? cause->data : "");
    if (r)
        dm__health_record__free_unpacked(r, NULL);
    v->nomem = v->nomem || !x->cause;
    v->n++;
    return r != NULL;
}

static int s_view_degraded(void *ctx, const char *domain, const char *name, const char *cause)
{
    dm_node__health_view_t *v = ctx;
    s_vitem *x = s_view_find(v, domain, name);
    if (x && !x->degraded) {
        x->degraded = strdup(cause);
        v->nomem = v->nomem || !x->degraded;
    }
    return 0;
}

dm_node__health_view_t *dm_node__health_view(dm_node_t *self, const dm_lineage_t *g)
{
    if (!self->health)
        return NULL;
    dm_node__health_view_t *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->self = self;
    if (!g || dm_lineage_degraded_all(g, s_view_health, v, s_view_degraded, v) != DM_OK ||
        v->nomem) {
        dm_node__health_view_free(&v);
        return NULL;
    }
    return v;
}

void dm_node__health_view_free(dm_node__health_view_t **v_p)
{
    dm_node__health_view_t *v = *v_p;
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        free(v->items[i].cause);
        free(v->items[i].degraded);
    }
    free(v->items);
    free(v);
    *v_p = NULL;
}

void dm_node__health_view_show(const dm_node__health_view_t *v, const char *domain,
                               const char *name, dm_buf_t *health, dm_buf_t *cause)
{
    dm_buf_reset(health);
    dm_buf_reset(cause);
    const s_vitem *x = s_view_find(v, domain, name);
    if (!x)
        return;
    if (!x->failing && x->degraded) {
        dm_buf_puts(health, "upstream degraded");
        dm_buf_puts(cause, x->degraded);
        return;
    }
    dm_buf_puts(health, x->word);
    dm_buf_puts(cause, x->cause);
}

bool dm_node__health_view_own(const dm_node__health_view_t *v, const char *domain,
                              const char *name, const char **cause)
{
    const s_vitem *x = s_view_find(v, domain, name);
    const char *word = x ? x->word : ""; /* a view whose strdup failed is not used */
    *cause = x && x->cause[0] ? x->cause : word;
    return word[0] != 0;
}

const char *dm_node__health_view_degraded(const dm_node__health_view_t *v, const char *domain,
                                          const char *name)
{
    const s_vitem *x = s_view_find(v, domain, name);
    return x ? x->degraded : NULL;
}
