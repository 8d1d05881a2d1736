/* node_quality.c: a product's quality report on request (QualityReq, the
 * `dmctl quality` command) and on the schedule its contract sets
 * (spec.quality.schedule). Both judge at that moment from the state the
 * writer keeps (quality/quality.h): O(checks), no scan, so the node loop
 * can afford them, and freshness is measured when it is asked about, not
 * when the last ingest happened. A request stores its report only with
 * run set. Storing a report is one small write; when the map would have to
 * grow while queries hold readers it is skipped (DM_ERR_BUSY) and the
 * schedule tries again on its next tick. */
#include "server/node_priv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "quality/quality.h"
#include "transport/envelope.h"

#define DM_NODE_QUALITY_HISTORY_MAX 100 /* earlier reports one QualityRep carries */
#define DM_NODE_QUALITY_TICK_MS 1000    /* how often schedules are looked at */
#define DM_NODE_QUALITY_REP_BYTES (DM_RPC_MAX_MSG_BYTES / 2) /* reports in one QualityRep */

/* Fills m (and its arrays, freed by s_msg_free) from r. */
static void s_msg(const dm_qreport_t *r, Dm__QualityReport *m)
{
    dm__quality_report__init(m);
    m->at_ms = r->at_ms;
    m->outcome = (char *)dm_quality_outcome_name(r->outcome);
    m->records = r->records;
    m->last_ingest_ms = r->last_ingest_ms;
    m->n_checks = r->n;
    m->checks = calloc(r->n ? r->n : 1, sizeof *m->checks);
    Dm__CheckResult *cr = calloc(r->n ? r->n : 1, sizeof *cr);
    if (!m->checks || !cr)
        abort();
    m->checks[0] = cr; /* s_msg_free frees cr through it, also when r->n is 0 */
    for (size_t i = 0; i < r->n; i++) {
        const dm_qresult_t *x = &r->results[i];
        dm__check_result__init(&cr[i]);
        cr[i].name = x->name ? x->name : "";
        cr[i].rule = (char *)dm_contract_rule_name(x->rule);
        cr[i].column = x->column ? x->column : "";
        cr[i].outcome = (char *)dm_quality_outcome_name(x->outcome);
        cr[i].observed = x->observed;
        cr[i].observed_text = x->observed_text ? x->observed_text : "";
        cr[i].threshold = x->threshold ? x->threshold : "";
        cr[i].reason = x->reason ? x->reason : "";
        cr[i].n_samples = x->nsamples;
        cr[i].samples = (char **)x->samples;
        cr[i].at_ms = x->at_ms;
        m->checks[i] = &cr[i];
    }
}

static void s_msg_free(Dm__QualityReport *m)
{
    if (m->checks)
        free(m->checks[0]);
    free(m->checks);
}

/* The product's contract and id, or a reply already sent. */
static const dm_product_ref_t *s_product(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                         const char *domain, const char *name,
                                         const dm_rpc_caller_t *caller)
{
    char qualified[256];
    int n = snprintf(qualified, sizeof qualified, "%.120s/%.120s", domain, name);
    const dm_product_ref_t *ref = NULL;
    if (n > 0 && dm_registry_acquire(self->registry, qualified, (size_t)n, &ref) == DM_OK)
        return ref;
    dm_buf_t text = DM_BUF_INIT;
    dm_node__unknown(self, caller, qualified, &text);
    dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOTFOUND, text.data);
    dm_buf_free(&text);
    return NULL;
}

void dm_node__handle_quality(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                             const Dm__QualityReq *req, const dm_rpc_caller_t *caller)
{
    const char *domain = req->domain ? req->domain : "", *name = req->product ? req->product : "";
    if (!dm_node__is_admin(self, caller)) {
        char hex[DM_RPC_CALLER_HEX_BYTES], text[512];
        dm_rpc_caller_hex(caller, hex);
        snprintf(text, sizeof text,
                 "access denied to the quality report of %.63s.%.63s: its samples hold values, "
                 "so only %s admins may read it (you are %s); meshq describe shows the health "
                 "the owner publishes",
                 domain, name, self->domain, hex);
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_DENIED, text);
        return;
    }
    const dm_product_ref_t *ref = s_product(self, rid, id, domain, name, caller);
    if (!ref)
        return;
    dm_qreport_t latest = {0}, *hist = NULL;
    size_t nhist = 0;
    dm_buf_t why = DM_BUF_INIT;
    int64_t t0 = dm_clock_mono_ns();
    /* Judged now, never read back: a report stored at the ingest says
     * nothing about freshness an hour later. Without --run the report is
     * not kept (a read transaction, no write); with it, it joins the history. */
    dm_err rc = dm_quality_run(self->store, ref->pid, ref->contract, dm_clock_wall_ms(),
                               req->run, &latest, &why);
    if (rc == DM_ERR_BUSY) { /* judged all the same; only the history misses it */
        dm_buf_reset(&why);
        rc = dm_quality_run(self->store, ref->pid, ref->contract, dm_clock_wall_ms(), false,
                            &latest, &why);
    }
    if (rc == DM_OK) /* what judging costs: O(checks), whatever the product's size */
        dm_log_debug("quality: %.100s/%.100s: %s in %.3f ms (%" PRIu64 " records)", domain, name,
                     req->run ? "judged and stored" : "judged",
                     (double)(dm_clock_mono_ns() - t0) / 1e6, latest.records);
    size_t want = req->history < DM_NODE_QUALITY_HISTORY_MAX ? req->history
                                                             : DM_NODE_QUALITY_HISTORY_MAX;
    if (rc == DM_OK && want)
        rc = dm_quality_history(self->store, ref->pid, want + 1, &hist, &nhist, &why);
    if (rc != DM_OK) {
        char text[1024];
        snprintf(text, sizeof text, "the node could not judge the checks of %.100s/%.100s: %s",
                 domain, name, why.len ? why.data : dm_err_str(rc));
        dm_log_err("%s", text);
        dm_rpc_server_send_error(self->rpc, rid, id, rc, text);
        goto out;
    }
    Dm__QualityReport lm, *hm = calloc(nhist ? nhist : 1, sizeof *hm);
    Dm__QualityReport **hp = calloc(nhist ? nhist : 1, sizeof *hp);
    if (!hm || !hp)
        abort();
    s_msg(&latest, &lm);
    size_t nh = 0, bytes = dm__quality_report__get_packed_size(&lm);
    for (size_t i = 0; i < nhist && nh < want; i++) {
        if (i == 0 && hist[0].at_ms == latest.at_ms)
            continue; /* the latest itself */
        s_msg(&hist[i], &hm[nh]);
        bytes += dm__quality_report__get_packed_size(&hm[nh]);
        if (bytes > DM_NODE_QUALITY_REP_BYTES) { /* the rest would not fit one message */
            s_msg_free(&hm[nh]);
            hm[nh].checks = NULL;
            break;
        }
        hp[nh] = &hm[nh];
        nh++;
    }
    Dm__QualityRep rep = DM__QUALITY_REP__INIT;
    rep.latest = &lm;
    rep.n_history = nh;
    rep.history = hp;
    Dm__Envelope env;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_QUALITY_REP, &rep);
    dm_rpc_server_send(self->rpc, rid, &env);
    s_msg_free(&lm);
    for (size_t i = 0; i < nhist && hm; i++)
        if (hm[i].checks)
            s_msg_free(&hm[i]);
    free(hm);
    free(hp);
out:
    dm_quality_report_clear(&latest);
    for (size_t i = 0; i < nhist; i++)
        dm_quality_report_clear(&hist[i]);
    free(hist);
    dm_buf_free(&why);
    dm_registry_release(self->registry, ref);
}

typedef struct {
    dm_node_t *self;
    int64_t now_ms;
    dm_buf_t names; /* "domain/name\0" back to back */
} s_tick_ctx;

static void s_collect(void *arg, const char *domain, const char *name)
{
    s_tick_ctx *t = arg;
    dm_buf_printf(&t->names, "%s/%s", domain, name);
    dm_buf_putc(&t->names, 0);
}

/* Runs product domain/name's checks when its schedule says they are due
 * (dm_quality_schedule_due). */
static void s_due(s_tick_ctx *t, const char *qualified)
{
    const dm_product_ref_t *ref = NULL;
    if (dm_registry_acquire(t->self->registry, qualified, strlen(qualified), &ref) != DM_OK)
        return;
    dm_qreport_t r = {0};
    dm_buf_t why = DM_BUF_INIT;
    int64_t every = ref->contract->quality_schedule_ms;
    if (every > 0) {
        dm_err rc = dm_quality_latest(t->self->store, ref->pid, &r, &why);
        bool due = (rc == DM_OK || rc == DM_ERR_NOTFOUND) &&
                   dm_quality_schedule_due(rc == DM_OK, r.at_ms, every, t->now_ms);
        dm_quality_report_clear(&r);
        if (due && (rc = dm_quality_run(t->self->store, ref->pid, ref->contract, t->now_ms, true,
                                        &r, &why)) == DM_OK)
            dm_log_info("quality: %s judged on schedule: %s", qualified,
                        dm_quality_outcome_name(r.outcome));
        else if (due && rc != DM_ERR_BUSY)
            dm_log_warn("quality: %s: the scheduled checks did not run: %s", qualified,
                        why.len ? why.data : dm_err_str(rc));
    }
    dm_quality_report_clear(&r);
    dm_buf_free(&why);
    dm_registry_release(t->self->registry, ref);
}

void dm_node__quality_tick(dm_node_t *self, int64_t now_mono)
{
    if (now_mono < self->quality_next_ms)
        return;
    self->quality_next_ms = now_mono + DM_NODE_QUALITY_TICK_MS;
    s_tick_ctx t = {self, dm_clock_wall_ms(), DM_BUF_INIT};
    dm_registry_each(self->registry, s_collect, &t); /* then acquire each, outside its lock */
    for (size_t off = 0; off < t.names.len; off += strlen(t.names.data + off) + 1)
        s_due(&t, t.names.data + off);
    dm_buf_free(&t.names);
}
