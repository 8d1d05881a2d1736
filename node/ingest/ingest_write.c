/* ingest_write.c: the writer thread of the write pipeline.
 *
 * Every LMDB write of the node happens here: ingest batches (grouped per
 * product and source into one transaction), contract registrations (after
 * the upgrade rules of contract/contract_compat.h) and deregistrations. A
 * reply is sent to the node loop's outbox only after the commit, and a
 * change of the served products is announced with DM_CTL_CATALOG. */
#include "ingest/ingest_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "base/clock.h"
#include "base/log.h"
#include "contract/contract_compat.h"
#include "quality/quality.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

static void s_send_reply(dm_ingest_t *self, dm_ingest__job_t *job, Dm__Envelope *env)
{
    env->id = job->req_id;
    zmq_msg_t msg;
    if (dm_rpc_pack(env, &msg) != DM_OK) {
        dm_log_err("ingest: out of memory packing a reply");
        return;
    }
    zmq_msg_send(&job->rid, self->w_out, ZMQ_SNDMORE);
    zmq_msg_send(&msg, self->w_out, 0);
}

static void s_send_error(dm_ingest_t *self, dm_ingest__job_t *job, dm_err err, const char *text)
{
    Dm__Envelope env;
    Dm__Error e;
    dm_envelope_error(&env, &e, job->req_id, err, text);
    s_send_reply(self, job, &env);
}

static void s_run_event(dm_ingest_t *self, const struct dm_ingest__run *r,
                        dm_ingest_run_event ev, const dm_qreport_t *report, const char *error)
{
    if (!self->run_hook)
        return;
    dm_ingest_run_t e = {.event = ev,
                         .domain = r->domain,
                         .name = r->name,
                         .source = r->source,
                         .at_ms = dm_clock_wall_ms(),
                         .accepted = r->accepted,
                         .quarantined = r->quarantined,
                         .report = report,
                         .error = error};
    memcpy(e.run_id, r->id, DM_INGEST_RUN_ID_BYTES);
    self->run_hook(self->run_hook_ctx, &e);
}

/* Ends run r with FAIL, error saying why. Its slot stays, marked ended,
 * so that its batches still in flight report nothing (no second START);
 * the batch marked last, or a new run needing room, frees it. */
static void s_run_fail(dm_ingest_t *self, struct dm_ingest__run *r, const char *error)
{
    s_run_event(self, r, DM_INGEST_RUN_FAIL, NULL, error);
    r->ended = true;
}

/* The writer's entry for run id, NULL when it has none. */
static struct dm_ingest__run *s_run_get(dm_ingest_t *self, const uint8_t *id)
{
    for (size_t i = 0; i < DM_INGEST_RUNS_MAX; i++)
        if (self->runs[i].used && memcmp(self->runs[i].id, id, DM_INGEST_RUN_ID_BYTES) == 0)
            return &self->runs[i];
    return NULL;
}

/* A slot for a new run without failing a live one: a free slot, else the
 * oldest ended one; NULL when all are live. */
static struct dm_ingest__run *s_run_spare(dm_ingest_t *self)
{
    struct dm_ingest__run *ended = NULL;
    for (size_t i = 0; i < DM_INGEST_RUNS_MAX; i++) {
        struct dm_ingest__run *r = &self->runs[i];
        if (!r->used)
            return r;
        if (r->ended && (!ended || r->started < ended->started))
            ended = r;
    }
    return ended;
}

/* Makes r job's run, new. */
static void s_run_init(dm_ingest_t *self, struct dm_ingest__run *r, const dm_ingest__job_t *job)
{
    memset(r, 0, sizeof *r);
    memcpy(r->id, job->run_id, DM_INGEST_RUN_ID_BYTES);
    snprintf(r->domain, sizeof r->domain, "%s", job->ref->contract->domain);
    snprintf(r->name, sizeof r->name, "%s", job->ref->contract->name);
    snprintf(r->source, sizeof r->source, "%s", job->source ? job->source : "");
    r->used = true;
    r->started = ++self->run_tick;
}

/* A slot for job's new run (its START reported by the caller): a spare
 * one, else the oldest live run's, which is failed as abandoned (its
 * client never sent the batch marked last). */
static struct dm_ingest__run *s_run_new(dm_ingest_t *self, const dm_ingest__job_t *job)
{
    struct dm_ingest__run *r = s_run_spare(self);
    if (!r) {
        r = &self->runs[0];
        for (size_t i = 1; i < DM_INGEST_RUNS_MAX; i++)
            if (self->runs[i].started < r->started)
                r = &self->runs[i];
        char text[160];
        snprintf(text, sizeof text, "abandoned: its last batch never came, and newer runs took "
                 "its place (the node tracks %d at once)", DM_INGEST_RUNS_MAX);
        s_run_fail(self, r, text);
    }
    s_run_init(self, r, job);
    return r;
}

/* Job's batch failed to commit (rc): its run ends with FAIL; a run that
 * had not started reports START first, in a spare slot (so that its
 * batches in flight stay silent) or, when every slot is live, in none. */
static void s_run_failed(dm_ingest_t *self, const dm_ingest__job_t *job,
                         struct dm_ingest__run *r, dm_err rc)
{
    char text[256];
    snprintf(text, sizeof text, "a batch of the run was not stored: %s", dm_err_str(rc));
    struct dm_ingest__run none;
    if (!r) {
        r = s_run_spare(self);
        r = r ? r : &none;
        s_run_init(self, r, job);
        s_run_event(self, r, DM_INGEST_RUN_START, NULL, NULL);
    }
    s_run_fail(self, r, text);
}

/* Reports the runs of a committed (rc DM_OK) or failed group. A run that
 * ended (FAIL) reports nothing more: its last batch frees its slot. */
static void s_runs_after(dm_ingest_t *self, dm_ingest__job_t **group, size_t ngroup, dm_err rc,
                         const dm_qreport_t *report)
{
    for (size_t g = 0; g < ngroup; g++) {
        dm_ingest__job_t *job = group[g];
        if (!job->has_run)
            continue;
        struct dm_ingest__run *r = s_run_get(self, job->run_id);
        if (r && r->ended) {
            r->used = !job->run_last;
            continue;
        }
        if (rc != DM_OK) {
            s_run_failed(self, job, r, rc);
            continue;
        }
        bool fresh = !r;
        if (fresh)
            r = s_run_new(self, job);
        r->accepted += job->rows.len / sizeof(dm_ingest__rowref_t);
        r->quarantined += job->quar.len / sizeof(dm_ingest__qref_t);
        if (fresh)
            s_run_event(self, r, DM_INGEST_RUN_START, NULL, NULL);
        if (job->run_last) {
            s_run_event(self, r, DM_INGEST_RUN_COMPLETE, g == ngroup - 1 ? report : NULL, NULL);
            r->used = false;
        }
    }
}

/* A refused batch (job: the validator's reply) ends its run, if it began
 * and has not ended. */
static void s_run_refused(dm_ingest_t *self, const dm_ingest__job_t *job)
{
    struct dm_ingest__run *r = job->has_run ? s_run_get(self, job->run_id) : NULL;
    if (!r)
        return;
    if (!r->ended) {
        char text[DM_ERROR_TEXT_MAX + 48];
        snprintf(text, sizeof text, "a batch of the run was refused: %s",
                 job->errtext ? job->errtext : dm_err_str(job->err));
        s_run_fail(self, r, text);
    }
    r->used = !job->run_last;
}

/* At the node's stop: every run still open ends with FAIL. */
static void s_runs_stopped(dm_ingest_t *self)
{
    for (size_t i = 0; i < DM_INGEST_RUNS_MAX; i++)
        if (self->runs[i].used && !self->runs[i].ended)
            s_run_fail(self, &self->runs[i], "the node stopped before the run's last batch");
}

/* Commits rows and q for the group with the quality hook of its product;
 * a group that ends an ingest run (or a batch outside any run) also
 * measures the product and judges its checks (quality/quality.h). */
static dm_err s_commit_checked(dm_ingest_t *self, dm_ingest__job_t **group, size_t ngroup,
                               const dm_row_in_t *rows, size_t nrows,
                               const dm_quarantine_in_t *q, size_t nq,
                               dm_quality_batch_t **qb, dm_buf_t *why)
{
    const dm_ingest__job_t *last = group[ngroup - 1];
    dm_store_hook_t hook;
    dm_buf_t qwhy = DM_BUF_INIT;
    const char *source = group[0]->source ? group[0]->source : "";
    dm_err err = dm_quality_batch_new(self->store, group[0]->pid, group[0]->ref->schema,
                                      dm_clock_wall_ms(), qb, &hook, &qwhy);
    if (err != DM_OK) {
        /* Stored without its checks, the batch would leave their counts
         * (and the unique checks' tables, trusted by token) wrong for good:
         * refused instead, nothing of it stored, the client may retry. */
        const char *cause = qwhy.len ? qwhy.data : dm_err_str(err);
        dm_log_warn("ingest: the quality checks of product %u cannot run: %s (the batch is "
                    "refused)", group[0]->pid, cause);
        dm_buf_printf(why, "the quality checks of the product cannot run now (%s): nothing of "
                      "the batch is stored; retry", cause);
        dm_buf_free(&qwhy);
        return err;
    }
    dm_buf_free(&qwhy);
    if (last->run_last || !last->has_run)
        dm_quality_batch_end_run(*qb);
    if (group[0]->keyed)
        dm_quality_batch_rows_keyed(*qb);
    dm_quality_batch_expect_rows(*qb, nrows);
    if (!self->w_qscratch)
        self->w_qscratch = dm_quality_scratch_new();
    dm_quality_batch_use_scratch(*qb, self->w_qscratch);
    dm_batch_result_t res;
    return dm_store_commit_batch_hooked(self->store, group[0]->pid, rows, nrows, q, nq, source,
                                        &hook, &res, why);
}

/* Commits a group of ingest jobs for one product and source in one
 * transaction (group commit: one fsync for many batches), then acknowledges
 * each job with its own counts. All or nothing: on failure every job of the
 * group gets the error and nothing of them is stored. */
static void s_commit_ingest(dm_ingest_t *self, dm_ingest__job_t **group, size_t ngroup)
{
    size_t nrows = 0, nq = 0;
    for (size_t g = 0; g < ngroup; g++) {
        nrows += group[g]->rows.len / sizeof(dm_ingest__rowref_t);
        nq += group[g]->quar.len / sizeof(dm_ingest__qref_t);
    }
    /* The arrays live in the writer's buffers: reused, not mapped afresh
     * per group (dm_buf_reserve aborts on out of memory, as malloc's
     * callers here could only give up too). */
    dm_buf_reset(&self->w_rows);
    dm_buf_reset(&self->w_quar);
    dm_buf_reserve(&self->w_rows, nrows * sizeof(dm_row_in_t));
    dm_buf_reserve(&self->w_quar, nq * sizeof(dm_quarantine_in_t));
    dm_row_in_t *rows = (dm_row_in_t *)(void *)self->w_rows.data;
    dm_quarantine_in_t *q = (dm_quarantine_in_t *)(void *)self->w_quar.data;
    dm_err rc;
    dm_buf_t why = DM_BUF_INIT;
    dm_quality_batch_t *qb = NULL;
    size_t r = 0, k = 0;
    for (size_t g = 0; g < ngroup; g++) {
        const dm_ingest__job_t *job = group[g];
        const char *base = job->bytes.data;
        const dm_ingest__rowref_t *rr = (const dm_ingest__rowref_t *)(void *)job->rows.data;
        for (size_t i = 0; i < job->rows.len / sizeof(dm_ingest__rowref_t); i++)
            rows[r++] = (dm_row_in_t){base + rr[i].key_off, rr[i].key_len,
                                      base + rr[i].row_off, rr[i].row_len};
        const dm_ingest__qref_t *qr = (const dm_ingest__qref_t *)(void *)job->quar.data;
        for (size_t i = 0; i < job->quar.len / sizeof(dm_ingest__qref_t); i++)
            q[k++] = (dm_quarantine_in_t){qr[i].line, base + qr[i].raw_off, qr[i].raw_len,
                                          qr[i].orig_len, base + qr[i].why_off};
    }
    rc = s_commit_checked(self, group, ngroup, rows, nrows, q, nq, &qb, &why);
    s_runs_after(self, group, ngroup, rc, qb && rc == DM_OK ? dm_quality_batch_report(qb) : NULL);
    dm_quality_batch_destroy(&qb);
    if (rc != DM_OK) /* the clients get the summary; the node log gets the cause, once */
        dm_log_err("ingest: a batch of %zu job(s) for product %u was not stored: %s", ngroup,
                   group[0]->pid, why.len ? why.data : dm_err_str(rc));
    dm_buf_free(&why);
    for (size_t g = 0; g < ngroup; g++) {
        dm_ingest__job_t *job = group[g];
        if (rc != DM_OK) {
            char text[1024];
            snprintf(text, sizeof text,
                     "the node could not store the batch (%s); nothing of it was kept",
                     dm_err_str(rc));
            s_send_error(self, job, rc, text);
            continue;
        }
        Dm__Envelope env;
        Dm__IngestRep rep = DM__INGEST_REP__INIT;
        rep.accepted = job->rows.len / sizeof(dm_ingest__rowref_t);
        rep.quarantined = job->quar.len / sizeof(dm_ingest__qref_t);
        dm_envelope_init(&env, job->req_id, DM__ENVELOPE__BODY_INGEST_REP, &rep);
        s_send_reply(self, job, &env);
    }
}

/* True if next may join a group started by first: same product, same
 * source (quarantine entries carry one source per commit), validated
 * against the same contract (the quality hook judges the group by
 * first's, and takes the rows' unique keys when every job made them). */
static bool s_groupable(const dm_ingest__job_t *first, const dm_ingest__job_t *next)
{
    return next->kind == DM_INGEST__INGEST && next->ref == first->ref &&
           next->keyed == first->keyed &&
           first->has_run == next->has_run &&
           strcmp(next->source ? next->source : "", first->source ? first->source : "") == 0;
}

/* A product that holds records takes an upgrade only if its stored rows
 * still decode (contract/contract_compat.h). Returns true, after replying
 * with the refusal, if c may not replace the registered contract of the
 * product old describes. */
static bool s_upgrade_refused(dm_ingest_t *self, dm_ingest__job_t *job, const dm_contract_t *c,
                              const dm_product_t *old, const char *qualified)
{
    if (old->records == 0 ||
        !(c->version_major > old->version_major ||
          (c->version_major == old->version_major &&
           (c->version_minor > old->version_minor ||
            (c->version_minor == old->version_minor && c->version_patch > old->version_patch)))))
        return false;
    const dm_product_ref_t *ref = NULL;
    if (dm_registry_acquire(self->registry, qualified, strlen(qualified), &ref) != DM_OK)
        return false;
    dm_buf_t why = DM_BUF_INIT;
    dm_err compat = dm_contract_compat_check(ref->contract, c, &why);
    dm_registry_release(self->registry, ref);
    if (compat != DM_OK) {
        char text[1024];
        snprintf(text, sizeof text,
                 "cannot upgrade %s from %s to %s: it holds %" PRIu64
                 " records and %s (allowed on a product with records: new optional "
                 "fields at the end, new enum values at the end, and any change to "
                 "constraints, checks, SLA, policies or metadata; register a new "
                 "product for breaking changes)",
                 qualified, old->version, c->version, old->records, why.data);
        s_send_error(self, job, DM_ERR_CONFLICT, text);
    }
    dm_buf_free(&why);
    return compat != DM_OK;
}

static void s_commit_register(dm_ingest_t *self, dm_ingest__job_t *job)
{
    const dm_contract_t *c = job->contract;
    char qualified[256];
    snprintf(qualified, sizeof qualified, "%s/%s", c->domain, c->name);
    dm_product_t old = {0};
    dm_product_t stored = {0};
    dm_product_t prev = {0};
    dm_buf_t old_why = DM_BUF_INIT;
    dm_err old_rc = dm_store_product_get(self->store, c->domain, c->name, &old, &old_why);
    if (old_rc != DM_OK && old_rc != DM_ERR_NOTFOUND) { /* not "new": the store failed */
        const char *cause = old_why.len ? old_why.data : dm_err_str(old_rc);
        dm_log_err("ingest: contract %s was not stored: %s", qualified, cause);
        char text[1024];
        snprintf(text, sizeof text, "the node could not store contract %s: %s", qualified, cause);
        dm_buf_free(&old_why);
        s_send_error(self, job, old_rc, text);
        goto out;
    }
    dm_buf_free(&old_why);
    bool had_old = old_rc == DM_OK;
    if (had_old && s_upgrade_refused(self, job, c, &old, qualified))
        goto out;
    dm_product_t in = {0};
    in.domain = c->domain;
    in.name = c->name;
    in.version = c->version;
    in.version_major = c->version_major;
    in.version_minor = c->version_minor;
    in.version_patch = c->version_patch;
    memcpy(in.hash, job->hash, sizeof in.hash);
    in.contract = job->canonical.data;
    in.contract_len = job->canonical.len;
    dm_register_outcome outcome;
    dm_buf_t store_why = DM_BUF_INIT;
    dm_err rc = dm_store_product_register(self->store, &in, &outcome, &stored, &prev, &store_why);
    if (rc != DM_OK && rc != DM_ERR_CONFLICT)
        dm_log_err("ingest: contract %s was not stored: %s", qualified,
                   store_why.len ? store_why.data : dm_err_str(rc));
    dm_buf_free(&store_why);
    if (rc == DM_ERR_CONFLICT) {
        char text[1024];
        if (strcmp(prev.version, c->version) == 0)
            snprintf(text, sizeof text,
                     "%s %s is already registered with different content; contracts are "
                     "immutable per version: publish the change as a higher version than %s",
                     qualified, c->version, prev.version);
        else
            snprintf(text, sizeof text,
                     "%s %s is lower than the registered version %s; versions only move "
                     "forward: publish a version higher than %s",
                     qualified, c->version, prev.version, prev.version);
        s_send_error(self, job, rc, text);
        goto out;
    }
    if (rc != DM_OK) {
        char text[1024];
        snprintf(text, sizeof text, "the node could not store contract %s: %s", qualified,
                 dm_err_str(rc));
        s_send_error(self, job, rc, text);
        goto out;
    }
    if (outcome != DM_REGISTER_UNCHANGED) {
        dm_buf_t why = DM_BUF_INIT;
        rc = dm_registry_install(self->registry, stored.id, job->canonical.data,
                                 job->canonical.len, &why);
        if (rc != DM_OK && why.len) /* the client gets the summary below; the node says why */
            dm_log_err("ingest: contract %s was stored but could not be loaded: %s", qualified,
                       why.data);
        dm_buf_free(&why);
        if (rc != DM_OK) {
            char text[1024];
            snprintf(text, sizeof text, "contract %s was stored but could not be loaded: %s",
                     qualified, dm_err_str(rc));
            s_send_error(self, job, rc, text);
            goto out;
        }
        dm_log_info("registered %s %s (%s)", qualified, c->version,
                    outcome == DM_REGISTER_CREATED ? "new" : "upgrade");
        /* Tell the node loop, which publishes it in the catalog. */
        dm_ctl_send(self->w_out, DM_CTL_CATALOG);
    }
    Dm__Envelope env;
    Dm__RegisterRep rep = DM__REGISTER_REP__INIT;
    rep.outcome = outcome == DM_REGISTER_CREATED    ? DM__REGISTER_REP__OUTCOME__CREATED
                  : outcome == DM_REGISTER_UPGRADED ? DM__REGISTER_REP__OUTCOME__UPGRADED
                                                    : DM__REGISTER_REP__OUTCOME__UNCHANGED;
    rep.domain = c->domain;
    rep.name = c->name;
    rep.version = c->version;
    rep.previous_version = had_old ? old.version : "";
    dm_envelope_init(&env, job->req_id, DM__ENVELOPE__BODY_REGISTER_REP, &rep);
    s_send_reply(self, job, &env);
out:
    dm_store_product_clear(&old);
    dm_store_product_clear(&stored);
    dm_store_product_clear(&prev);
}

static void s_commit_deregister(dm_ingest_t *self, dm_ingest__job_t *job)
{
    char qualified[256];
    snprintf(qualified, sizeof qualified, "%.120s/%.120s", job->domain, job->name);
    dm_product_t removed = {0};
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_store_product_delete(self->store, job->domain, job->name, &removed, &why);
    if (rc != DM_OK && rc != DM_ERR_NOTFOUND)
        dm_log_err("deregister: %s was not deleted: %s", qualified,
                   why.len ? why.data : dm_err_str(rc));
    dm_buf_free(&why);
    if (rc == DM_ERR_NOTFOUND) {
        dm_buf_t text = DM_BUF_INIT;
        dm_registry_unknown(self->registry, qualified, NULL, &text);
        s_send_error(self, job, rc, text.data);
        dm_buf_free(&text);
        return;
    }
    if (rc != DM_OK) {
        char text[512];
        snprintf(text, sizeof text, "the node could not delete %s: %s", qualified, dm_err_str(rc));
        s_send_error(self, job, rc, text);
        return;
    }
    if (dm_registry_remove(self->registry, qualified) != DM_OK)
        dm_log_warn("deregister: %s was stored but not loaded", qualified);
    dm_log_info("deregistered %s %s (%" PRIu64 " records deleted)", qualified, removed.version,
                removed.records);
    dm_ctl_send(self->w_out, DM_CTL_CATALOG); /* the node loop publishes the tombstone */
    Dm__Envelope env;
    Dm__DeregisterRep rep = DM__DEREGISTER_REP__INIT;
    rep.domain = job->domain;
    rep.name = job->name;
    rep.version = removed.version;
    rep.records = removed.records;
    dm_envelope_init(&env, job->req_id, DM__ENVELOPE__BODY_DEREGISTER_REP, &rep);
    s_send_reply(self, job, &env);
    dm_store_product_clear(&removed);
}

void *dm_ingest__writer_main(void *arg)
{
    dm_ingest_t *self = arg;
    prctl(PR_SET_NAME, "dm-writer");
    dm_ingest__job_t *group[DM_INGEST_GROUP_JOBS];
    dm_ingest__job_t *pending = NULL; /* received while grouping, not groupable */
    for (;;) {
        dm_ingest__job_t *job = pending;
        pending = NULL;
        if (!job) {
            int n = zmq_recv(self->w_jobs, &job, sizeof job, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n != (int)sizeof job || !job) {
                dm_log_err("ingest: writer receive failed: %s", zmq_strerror(errno));
                break;
            }
        }
        sem_t *done = job->done;
        switch (job->kind) {
        case DM_INGEST__STOP:
            s_runs_stopped(self);
            dm_ingest__job_free(job);
            dm_ctl_send(self->w_out, DM_CTL_STOPPED);
            return NULL;
        case DM_INGEST__REPLY:
            s_run_refused(self, job);
            s_send_error(self, job, job->err, job->errtext ? job->errtext : "error");
            break;
        case DM_INGEST__INGEST: {
            /* Take what else is already queued for the same product, up to
             * the group limits, into the same transaction. */
            size_t ngroup = 0, rows = job->rows.len / sizeof(dm_ingest__rowref_t);
            group[ngroup++] = job;
            while (ngroup < DM_INGEST_GROUP_JOBS && rows < DM_INGEST_GROUP_ROWS) {
                dm_ingest__job_t *next = NULL;
                if (zmq_recv(self->w_jobs, &next, sizeof next, ZMQ_DONTWAIT) != (int)sizeof next ||
                    !next)
                    break;
                if (group[ngroup - 1]->run_last || !s_groupable(job, next)) {
                    pending = next;
                    break;
                }
                group[ngroup++] = next;
                rows += next->rows.len / sizeof(dm_ingest__rowref_t);
            }
            s_commit_ingest(self, group, ngroup);
            for (size_t g = 1; g < ngroup; g++)
                dm_ingest__job_recycle(self, group[g]);
            break;
        }
        case DM_INGEST__REGISTER:
            s_commit_register(self, job);
            break;
        case DM_INGEST__DEREGISTER:
            s_commit_deregister(self, job);
            break;
        }
        dm_ingest__job_recycle(self, job);
        if (done)
            sem_post(done);
    }
    return NULL;
}
