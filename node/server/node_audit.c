/* node_audit.c: the node's audit trail: every decision about its own data
 * (writes, reads, describes, admin and grant changes, policy publishes)
 * goes into a bounded in-memory queue from whichever thread decided (the
 * loop, a query worker), and the loop writes the queue to the store's
 * audit database (storage/audit.h) every DM_NODE_AUDIT_FLUSH_MS and at
 * stop; in meshd a flusher thread does it (dm_node__audit_start), since a
 * commit waits for the disk (milliseconds, more under load) and every
 * request reaching the loop meanwhile would wait with it. Deciding never
 * waits on the store: when the queue is full a record is counted as
 * dropped, and the next flush writes one marker record
 * saying how many were lost. Refusals of callers who are not admins pass
 * a token bucket of their caller (DM_NODE_AUDIT_CALLER_PER_S, burst
 * DM_NODE_AUDIT_CALLER_BURST; DM_NODE_AUDIT_CALLERS callers, least
 * recently used out, the rest sharing one bucket) and a node-wide one
 * (DM_NODE_AUDIT_REFUSALS_PER_S, burst DM_NODE_AUDIT_REFUSALS_BURST):
 * anyone can make refused requests, and with retention by count a flood
 * of them would push real records out; one caller's flood must not hide
 * another's refusals. Past the buckets they are counted, and a flush
 * writes one summary record a second per caller, naming it.
 * a second. Allowed decisions and admins' records always go in. A
 * federated scan's records name the consumer and start "via relay HEX";
 * the relay's own record of a query it sent on is action "relay". */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "server/node_priv.h"

dm_err dm_node__audit_open(dm_node_t *self, const dm_node_opts_t *opts, dm_buf_t *why)
{
    self->audit_q = calloc(DM_NODE_AUDIT_QUEUE, sizeof *self->audit_q);
    pthread_condattr_t ca;
    bool cond = pthread_condattr_init(&ca) == 0;
    cond = cond && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
           pthread_cond_init(&self->audit_wake, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!self->audit_q || !cond || pthread_mutex_init(&self->audit_lock, NULL) != 0 ||
        pthread_mutex_init(&self->audit_flush_lock, NULL) != 0) {
        dm_buf_why(why, "cannot set up the audit queue: out of memory");
        return DM_ERR_NOMEM;
    }
    self->audit_ready = true;
    self->audit_ret.max_age_ms = opts->audit_max_age_ms;
    self->audit_ret.max_records = opts->audit_max_records;
    self->audit_next_flush = dm_clock_mono_ms() + DM_NODE_AUDIT_FLUSH_MS;
    self->audit_callers = calloc(DM_NODE_AUDIT_CALLERS + 1, sizeof *self->audit_callers);
    if (!self->audit_callers) {
        dm_buf_why(why, "cannot set up the audit queue: out of memory");
        return DM_ERR_NOMEM;
    }
    self->audit_rate = DM_NODE_AUDIT_REFUSALS_PER_S;
    self->audit_burst = DM_NODE_AUDIT_REFUSALS_BURST;
    self->audit_tokens_milli = self->audit_burst * 1000;
    self->audit_refill_ms = dm_clock_mono_ms();
    self->audit_caller_rate = DM_NODE_AUDIT_CALLER_PER_S;
    self->audit_caller_burst = DM_NODE_AUDIT_CALLER_BURST;
    return DM_OK;
}

void dm_node__audit_close(dm_node_t *self)
{
    if (!self->audit_ready)
        return;
    if (self->audit_thread_on) {
        pthread_mutex_lock(&self->audit_lock);
        self->audit_stopping = true;
        pthread_cond_signal(&self->audit_wake);
        pthread_mutex_unlock(&self->audit_lock);
        pthread_join(self->audit_thread, NULL);
        self->audit_thread_on = false;
    }
    if (self->store)
        dm_node__audit_flush(self, true);
    pthread_mutex_destroy(&self->audit_lock);
    pthread_mutex_destroy(&self->audit_flush_lock);
    pthread_cond_destroy(&self->audit_wake);
    free(self->audit_q);
    self->audit_q = NULL;
    free(self->audit_callers);
    self->audit_callers = NULL;
    self->audit_ready = false;
}

/* Whether caller is a verified admin and the version of the set in force,
 * read from the tables node_access.c and node_policy.c keep (a scan: the
 * admins are few, and calling those files, which audit, would make them
 * call each other). */
static void s_access_view(dm_node_t *self, const dm_rpc_caller_t *caller, bool *admin,
                          uint64_t *version)
{
    *admin = false;
    *version = 0;
    if (!self->acc_ready)
        return;
    pthread_rwlock_rdlock(&self->acc_lock);
    for (size_t i = 0; caller && caller->verified && !*admin && i < self->nadmins; i++)
        *admin = memcmp(self->admins[i], caller->key, DM_ID_PUBLIC_BYTES) == 0;
    *version = self->gov ? dm_policy_set_version(self->gov) : 0;
    pthread_rwlock_unlock(&self->acc_lock);
}

/* Refills a bucket (tokens in thousandths) at rate a second up to burst
 * and takes one token: false when it is empty. */
static bool s_take(uint64_t *tokens_milli, int64_t *refill_ms, uint64_t rate, uint64_t burst,
                   int64_t now)
{
    uint64_t cap = burst * 1000;
    if (now > *refill_ms) {
        uint64_t add = (uint64_t)(now - *refill_ms) * rate;
        *tokens_milli = add >= cap - *tokens_milli ? cap : *tokens_milli + add;
        *refill_ms = now;
    }
    if (*tokens_milli < 1000)
        return false;
    *tokens_milli -= 1000;
    return true;
}

/* The refusal slot of caller (key, verified): its own, a free one, the
 * least recently used one with no summary pending, or else the shared
 * last slot of the callers beyond the table. audit_lock held. */
static dm_node__refusals_t *s_slot(dm_node_t *self, const uint8_t *key, bool verified,
                                   int64_t now)
{
    dm_node__refusals_t *t = self->audit_callers, *lru = NULL;
    for (size_t i = 0; i < DM_NODE_AUDIT_CALLERS; i++) {
        if (t[i].used && t[i].verified == verified &&
            memcmp(t[i].key, key, DM_AUDIT_KEY_BYTES) == 0)
            return &t[i];
        if (!t[i].used) {
            if (!lru || lru->used)
                lru = &t[i];
        } else if (t[i].suppressed == 0 &&
                   (!lru || (lru->used && t[i].last_ms < lru->last_ms))) {
            lru = &t[i];
        }
    }
    if (!lru)
        return &t[DM_NODE_AUDIT_CALLERS];
    memset(lru, 0, sizeof *lru);
    lru->used = true;
    lru->verified = verified;
    memcpy(lru->key, key, DM_AUDIT_KEY_BYTES);
    lru->tokens_milli = self->audit_caller_burst * 1000;
    lru->refill_ms = now;
    return lru;
}

/* Whether one more refusal of a non-admin (r's caller) may be recorded
 * now: takes a token of its caller's bucket and of the node's, or counts
 * it as suppressed for its caller's summary. audit_lock held. */
static bool s_refusal_token(dm_node_t *self, const dm_audit_record_t *r, int64_t now)
{
    if (self->audit_burst == 0)
        return true;
    dm_node__refusals_t *s = s_slot(self, r->caller, r->verified, now);
    s->last_ms = now;
    if (s->suppressed == 0)
        s->next_summary = now + DM_NODE_AUDIT_SUMMARY_MS;
    if (!s_take(&s->tokens_milli, &s->refill_ms, self->audit_caller_rate,
                self->audit_caller_burst, now)) {
        s->suppressed++;
        return false;
    }
    if (!s_take(&self->audit_tokens_milli, &self->audit_refill_ms, self->audit_rate,
                self->audit_burst, now)) {
        s->tokens_milli += 1000; /* the caller's token was not spent */
        s->suppressed++;
        return false;
    }
    return true;
}

void dm_node__audit(dm_node_t *self, const dm_rpc_caller_t *caller, bool allowed,
                    const char *action, const char *domain, const char *name, const char *rule,
                    uint64_t policy_version)
{
    if (!self->audit_ready)
        return;
    dm_audit_record_t r;
    memset(&r, 0, sizeof r);
    r.at_ms = dm_clock_wall_ms();
    if (caller) {
        memcpy(r.caller, caller->key, DM_AUDIT_KEY_BYTES);
        r.verified = caller->verified;
    }
    r.allowed = allowed;
    snprintf(r.action, sizeof r.action, "%s", action);
    if (domain && name)
        snprintf(r.product, sizeof r.product, "%.63s/%.63s", domain, name);
    if (caller && caller->relayed) {
        /* First, so a long rule cannot cut who relayed it. */
        char relay[DM_ID_HEX_BYTES];
        dm_identity_key_hex(caller->relay, relay);
        snprintf(r.rule, sizeof r.rule, "via relay %s; %s", relay, rule ? rule : "");
    } else {
        snprintf(r.rule, sizeof r.rule, "%s", rule ? rule : "");
    }
    bool admin;
    uint64_t in_force;
    s_access_view(self, caller, &admin, &in_force);
    /* Requests decided without the set (publish, audit) still name the
     * version in force when they were decided. */
    r.policy_version = policy_version ? policy_version : in_force;
    bool limited = !allowed && !admin;
    pthread_mutex_lock(&self->audit_lock);
    /* A refusal past the bucket is counted: the next summary says how many. */
    bool keep = !limited || s_refusal_token(self, &r, dm_clock_mono_ms());
    if (keep && self->audit_n < DM_NODE_AUDIT_QUEUE)
        self->audit_q[self->audit_n++] = r;
    else if (keep)
        self->audit_dropped++;
    pthread_mutex_unlock(&self->audit_lock);
}

void dm_node__audit_relay(dm_node_t *self, const dm_rpc_caller_t *consumer, const char *domain,
                          const char *name, const uint8_t owner[DM_ID_PUBLIC_BYTES])
{
    char hex[DM_ID_HEX_BYTES], rule[DM_AUDIT_RULE_MAX];
    dm_identity_key_hex(owner, hex);
    snprintf(rule, sizeof rule, "relayed to owner %s", hex);
    dm_node__audit(self, consumer, true, "relay", domain, name, rule, 0);
}

/* Fills m as a marker record of the audit trail itself (action "audit",
 * refused, no caller) whose rule says what happened to other records. */
static void s_marker(dm_audit_record_t *m, const char *fmt, ...) DM_PRINTF(2, 3);
static void s_marker(dm_audit_record_t *m, const char *fmt, ...)
{
    memset(m, 0, sizeof *m);
    m->at_ms = dm_clock_wall_ms();
    m->allowed = false;
    snprintf(m->action, sizeof m->action, "audit");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->rule, sizeof m->rule, fmt, ap);
    va_end(ap);
}

/* Moves the due summaries of suppressed refusals (all when force) into
 * batch at *n: one record per caller naming it, one for the callers
 * beyond the table. audit_lock held. */
static void s_summaries(dm_node_t *self, bool force, int64_t now, dm_audit_record_t *batch,
                        size_t *n)
{
    for (size_t i = 0; self->audit_callers && i <= DM_NODE_AUDIT_CALLERS; i++) {
        dm_node__refusals_t *s = &self->audit_callers[i];
        if (s->suppressed == 0 || (!force && now < s->next_summary))
            continue;
        dm_audit_record_t *m = &batch[(*n)++];
        memset(m, 0, sizeof *m);
        m->at_ms = dm_clock_wall_ms();
        m->allowed = false;
        memcpy(m->caller, s->key, DM_AUDIT_KEY_BYTES);
        m->verified = s->verified;
        snprintf(m->action, sizeof m->action, "refusals");
        snprintf(m->rule, sizeof m->rule,
                 "%" PRIu64 " refusals%s not recorded individually (rate limit: %" PRIu64
                 "/s, burst %" PRIu64 " per caller; %" PRIu64 "/s, burst %" PRIu64
                 " node-wide)",
                 s->suppressed, i == DM_NODE_AUDIT_CALLERS ? " of callers beyond the table" : "",
                 self->audit_caller_rate, self->audit_caller_burst, self->audit_rate,
                 self->audit_burst);
        s->suppressed = 0;
    }
}

/* dm_node__audit_flush's work; audit_flush_lock held. */
static void s_flush(dm_node_t *self, bool force)
{
    int64_t now = dm_clock_mono_ms();
    if (!force && now < self->audit_next_flush)
        return;
    pthread_mutex_lock(&self->audit_lock); /* the flusher reads it under audit_lock */
    self->audit_next_flush = now + DM_NODE_AUDIT_FLUSH_MS;
    pthread_mutex_unlock(&self->audit_lock);
    /* Take the queue as it is (slots more for the markers), so deciding
     * threads wait only for a copy, never for the store. */
    dm_audit_record_t *batch =
        malloc((DM_NODE_AUDIT_QUEUE + DM_NODE_AUDIT_CALLERS + 2) * sizeof *batch);
    if (!batch)
        return; /* the queue waits for the next flush */
    pthread_mutex_lock(&self->audit_lock);
    size_t n = self->audit_n;
    uint64_t dropped = self->audit_dropped;
    memcpy(batch, self->audit_q, n * sizeof *batch);
    self->audit_n = 0;
    self->audit_dropped = 0;
    s_summaries(self, force, now, batch, &n);
    pthread_mutex_unlock(&self->audit_lock);
    if (dropped) {
        s_marker(&batch[n++], "%" PRIu64 " audit records dropped: the queue of %d was full",
                 dropped, DM_NODE_AUDIT_QUEUE);
        dm_log_warn("audit: %" PRIu64 " records dropped (the queue of %d was full)", dropped,
                    DM_NODE_AUDIT_QUEUE);
    }
    if (n) {
        dm_buf_t why = DM_BUF_INIT;
        if (dm_audit_append(self->store, batch, n, &self->audit_ret, dm_clock_wall_ms(), &why) !=
            DM_OK)
            dm_log_err("audit: %zu records were not written: %s", n,
                       why.len ? why.data : "store error");
        dm_buf_free(&why);
    }
    free(batch);
}

void dm_node__audit_flush(dm_node_t *self, bool force)
{
    if (!self->audit_ready || (!force && self->audit_thread_on))
        return;
    pthread_mutex_lock(&self->audit_flush_lock);
    s_flush(self, force);
    pthread_mutex_unlock(&self->audit_flush_lock);
}

/* The flusher: waits until the next flush is due (or the node stops),
 * then flushes, off the node loop. */
static void *s_flusher(void *arg)
{
    dm_node_t *self = arg;
    pthread_mutex_lock(&self->audit_lock);
    while (!self->audit_stopping) {
        int64_t due = self->audit_next_flush;
        struct timespec at = {(time_t)(due / 1000), (long)(due % 1000) * 1000000};
        if (dm_clock_mono_ms() < due) {
            pthread_cond_timedwait(&self->audit_wake, &self->audit_lock, &at);
            continue;
        }
        pthread_mutex_unlock(&self->audit_lock);
        pthread_mutex_lock(&self->audit_flush_lock);
        s_flush(self, false);
        pthread_mutex_unlock(&self->audit_flush_lock);
        pthread_mutex_lock(&self->audit_lock);
    }
    pthread_mutex_unlock(&self->audit_lock);
    return NULL;
}

dm_err dm_node__audit_start(dm_node_t *self, dm_buf_t *why)
{
    if (!self->audit_ready || self->audit_thread_on)
        return DM_OK;
    if (pthread_create(&self->audit_thread, NULL, s_flusher, self) != 0) {
        dm_buf_why(why, "cannot start the audit flusher thread");
        return DM_ERR_NOMEM;
    }
    self->audit_thread_on = true;
    return DM_OK;
}
