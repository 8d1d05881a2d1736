/* ingest.c: the validator and writer threads of the write pipeline.
 *
 * Jobs travel from the validator to the writer as pointers over an inproc
 * PAIR socket; whoever holds the pointer owns the job. A register job makes
 * the validator wait until the writer has installed the new contract, so
 * batches that arrive after a register are validated against it. */
#include "ingest/ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <zmq.h>

#include "contract/contract.h"
#include "contract/contract_compat.h"
#include "base/log.h"
#include "transport/rpc.h"
#include "record/schema.h"

#define DM_INGEST_JOBS "inproc://dm-ingest-jobs"
#define DM_ERROR_TEXT_MAX 8192 /* bytes of diagnostics sent back in one Error */
#define DM_INGEST_GROUP_JOBS 16     /* batches merged into one commit at most */
#define DM_INGEST_SOURCE_MAX 255    /* bytes of the input's name kept with quarantined lines */
#define DM_INGEST_GROUP_ROWS 50000  /* rows after which a group stops growing */

typedef enum { S_INGEST, S_REGISTER, S_DEREGISTER, S_REPLY, S_STOP } s_kind;

typedef struct {
    size_t key_off, key_len, row_off, row_len;
} s_rowref;

typedef struct {
    uint64_t line, orig_len;
    size_t raw_off, raw_len, why_off;
} s_qref;

typedef struct {
    s_kind kind;
    zmq_msg_t rid; /* the client's routing id */
    uint64_t req_id;
    /* S_REPLY: an error to send as is */
    dm_err err;
    char *errtext;
    /* S_INGEST */
    uint32_t pid;
    char *source;
    dm_buf_t bytes; /* keys, rows, raw lines and reasons, back to back */
    dm_buf_t rows;  /* s_rowref[] */
    dm_buf_t quar;  /* s_qref[] */
    /* S_DEREGISTER */
    char *domain, *name;
    /* S_REGISTER */
    dm_contract_t *contract;
    dm_buf_t canonical;
    uint8_t hash[DM_CONTRACT_HASH_BYTES];
    sem_t *done;
} s_job;

struct dm_ingest {
    dm_store_t *store;
    dm_registry_t *registry;
    char *domain;
    size_t record_limit;
    void *v_in, *v_jobs;  /* validator's sockets */
    void *w_jobs, *w_out; /* writer's sockets */
    pthread_t validator, writer;
    bool v_running, w_running;
};

static void s_job_free(s_job *job)
{
    if (!job)
        return;
    zmq_msg_close(&job->rid);
    free(job->errtext);
    free(job->source);
    free(job->domain);
    free(job->name);
    dm_buf_free(&job->bytes);
    dm_buf_free(&job->rows);
    dm_buf_free(&job->quar);
    dm_contract_destroy(&job->contract);
    dm_buf_free(&job->canonical);
    free(job);
}

static void s_job_error(s_job *job, dm_err err, const char *fmt, ...) DM_PRINTF(3, 4);
static void s_job_error(s_job *job, dm_err err, const char *fmt, ...)
{
    job->kind = S_REPLY;
    job->err = err;
    va_list ap;
    va_start(ap, fmt);
    char text[DM_ERROR_TEXT_MAX];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    free(job->errtext);
    job->errtext = strdup(text);
}

/* ---- validator ---- */

typedef struct {
    dm_buf_t row, key, reasons;
} s_scratch;

static bool s_blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return false;
    return true;
}

static void s_add_quarantine(s_job *job, uint64_t line, const char *raw, size_t raw_len,
                             uint64_t orig_len, const char *why)
{
    s_qref q = {line, orig_len, job->bytes.len, raw_len, 0};
    dm_buf_append(&job->bytes, raw, raw_len);
    q.why_off = job->bytes.len;
    dm_buf_append(&job->bytes, why, strlen(why) + 1);
    dm_buf_append(&job->quar, &q, sizeof q);
}

static void s_prepare_ingest(dm_ingest_t *self, s_job *job, const Dm__IngestReq *req,
                             s_scratch *sc)
{
    const char *domain = req->domain ? req->domain : "";
    const char *product = req->product ? req->product : "";
    if (strcmp(domain, self->domain) != 0) {
        s_job_error(job, DM_ERR_DENIED,
                    "this node serves domain '%s'; product '%s/%s' belongs to another node",
                    self->domain, domain, product);
        return;
    }
    char qualified[256];
    int qn = snprintf(qualified, sizeof qualified, "%s/%s", domain, product);
    const dm_product_ref_t *ref = NULL;
    if (qn < 0 || (size_t)qn >= sizeof qualified ||
        dm_registry_acquire(self->registry, qualified, (size_t)qn, &ref) != DM_OK) {
        dm_buf_t hint = DM_BUF_INIT;
        dm_registry_suggest(self->registry, qualified, &hint);
        s_job_error(job, DM_ERR_NOTFOUND,
                    "unknown product '%.200s' on this node%s%s%s (dmctl products lists them; "
                    "dmctl register adds one)",
                    qualified, hint.len ? "; did you mean '" : "", hint.len ? hint.data : "",
                    hint.len ? "'?" : "");
        dm_buf_free(&hint);
        return;
    }
    job->kind = S_INGEST;
    job->pid = ref->pid;
    /* The source name is stored with every quarantined line: bound it. */
    job->source = strndup(req->source ? req->source : "", DM_INGEST_SOURCE_MAX);
    dm_buf_reserve(&job->bytes, req->data.len + req->data.len / 4);

    uint64_t line = req->first_line ? req->first_line : 1;
    char why[160];
    if (req->oversized_len > 0) {
        size_t keep = req->data.len < self->record_limit ? req->data.len : self->record_limit;
        uint64_t full = req->oversized_len > req->data.len ? req->oversized_len : req->data.len;
        snprintf(why, sizeof why,
                 "record is %" PRIu64 " bytes, over the limit of %zu bytes (kept: its first %zu "
                 "bytes)",
                 full, self->record_limit, keep);
        s_add_quarantine(job, line, (const char *)req->data.data, keep, full, why);
        goto out;
    }
    if (req->data.len == 0 || !req->data.data)
        goto out; /* an empty batch (protobuf-c: data NULL): nothing to do */
    const char *p = (const char *)req->data.data;
    const char *end = p + req->data.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        size_t len = (size_t)(eol - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (len > self->record_limit) {
            /* Keep its first bytes only: the quarantine must stay listable
             * within the message bound. */
            snprintf(why, sizeof why,
                     "record is %zu bytes, over the limit of %zu bytes (kept: its first %zu bytes)",
                     len, self->record_limit, self->record_limit);
            s_add_quarantine(job, line, p, self->record_limit, len, why);
        } else if (!s_blank(p, len)) {
            if (dm_schema_validate(ref->schema, p, len, &sc->row, &sc->key, &sc->reasons)) {
                s_rowref r = {job->bytes.len, sc->key.len, 0, sc->row.len};
                dm_buf_append(&job->bytes, sc->key.data, sc->key.len);
                r.row_off = job->bytes.len;
                dm_buf_append(&job->bytes, sc->row.data, sc->row.len);
                dm_buf_append(&job->rows, &r, sizeof r);
            } else {
                s_add_quarantine(job, line, p, len, len, sc->reasons.data);
            }
        }
        line++;
        p = nl ? nl + 1 : end;
    }
out:
    dm_registry_release(self->registry, ref);
}

static void s_prepare_register(dm_ingest_t *self, s_job *job, const Dm__RegisterReq *req)
{
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    if (req->contract.len == 0 || !req->contract.data) {
        s_job_error(job, DM_ERR_INVALID,
                    "the register request carries no contract (field 'contract' is empty)");
        goto out;
    }
    dm_err rc = dm_contract_parse("register request", (const char *)req->contract.data,
                                  req->contract.len, NULL, &list, &n, &diags);
    if (rc != DM_OK) {
        dm_buf_t text = DM_BUF_INIT;
        dm_diags_format(&diags, &text);
        s_job_error(job, rc, "the node refused the contract:\n%s", text.data ? text.data : "");
        dm_buf_free(&text);
        goto out;
    }
    if (n != 1) {
        s_job_error(job, DM_ERR_INVALID,
                    "a register request carries exactly one contract, this one has %zu", n);
        goto out;
    }
    dm_contract_t *c = list[0];
    if (strcmp(c->domain, self->domain) != 0) {
        s_job_error(job, DM_ERR_DENIED,
                    "this node serves domain '%s'; contract %s/%s is for domain '%s' and must "
                    "be registered on that domain's node",
                    self->domain, c->domain, c->name, c->domain);
        goto out;
    }
    job->kind = S_REGISTER;
    job->contract = c;
    list[0] = NULL;
    dm_contract_canonical(c, &job->canonical);
    dm_contract_hash(c, job->hash);
out:
    for (size_t i = 0; i < n; i++)
        dm_contract_destroy(&list[i]);
    free(list);
    dm_diags_clear(&diags);
}

static void s_prepare_deregister(dm_ingest_t *self, s_job *job, const Dm__DeregisterReq *req)
{
    const char *domain = req->domain ? req->domain : "";
    const char *name = req->product ? req->product : "";
    if (strcmp(domain, self->domain) != 0) {
        s_job_error(job, DM_ERR_DENIED,
                    "this node serves domain '%s'; product '%.100s/%.100s' belongs to another node",
                    self->domain, domain, name);
        return;
    }
    job->kind = S_DEREGISTER;
    job->domain = strdup(domain);
    job->name = strdup(name);
}

/* Decodes one write request envelope and turns job into the work it asks
 * for, or into an S_REPLY error. Everything a client controls passes here. */
static void s_prepare(dm_ingest_t *self, s_job *job, const void *data, size_t len,
                      s_scratch *sc)
{
    Dm__Envelope *env = dm_rpc_unpack(data, len);
    if (!env) {
        s_job_error(job, DM_ERR_PROTO, "malformed request envelope");
        return;
    }
    job->req_id = env->id;
    if (env->body_case == DM__ENVELOPE__BODY_INGEST_REQ)
        s_prepare_ingest(self, job, env->ingest_req, sc);
    else if (env->body_case == DM__ENVELOPE__BODY_REGISTER_REQ)
        s_prepare_register(self, job, env->register_req);
    else if (env->body_case == DM__ENVELOPE__BODY_DEREGISTER_REQ)
        s_prepare_deregister(self, job, env->deregister_req);
    else
        s_job_error(job, DM_ERR_PROTO, "unexpected request on the write path");
    dm__envelope__free_unpacked(env, NULL);
}

dm_err dm_ingest_check(dm_registry_t *registry, const char *domain, size_t record_limit,
                       const void *data, size_t len, size_t *rows, size_t *quarantined)
{
    dm_ingest_t self = {.registry = registry, .domain = (char *)domain,
                        .record_limit = record_limit ? record_limit : DM_RECORD_LIMIT_DEFAULT};
    s_scratch sc = {DM_BUF_INIT, DM_BUF_INIT, DM_BUF_INIT};
    s_job *job = calloc(1, sizeof *job);
    if (!job)
        return DM_ERR_NOMEM;
    zmq_msg_init(&job->rid);
    s_prepare(&self, job, data, len, &sc);
    dm_err rc = job->kind == S_REPLY ? job->err : DM_OK;
    if (rows)
        *rows = job->rows.len / sizeof(s_rowref);
    if (quarantined)
        *quarantined = job->quar.len / sizeof(s_qref);
    s_job_free(job);
    dm_buf_free(&sc.row);
    dm_buf_free(&sc.key);
    dm_buf_free(&sc.reasons);
    return rc;
}

static void *s_validator_main(void *arg)
{
    dm_ingest_t *self = arg;
    prctl(PR_SET_NAME, "dm-validator");
    s_scratch sc = {DM_BUF_INIT, DM_BUF_INIT, DM_BUF_INIT};
    sem_t done;
    sem_init(&done, 0, 0);
    for (;;) {
        zmq_msg_t first;
        zmq_msg_init(&first);
        if (zmq_msg_recv(&first, self->v_in, 0) < 0) {
            zmq_msg_close(&first);
            if (errno == EINTR)
                continue;
            dm_log_err("ingest: validator receive failed: %s", zmq_strerror(errno));
            break;
        }
        s_job *job = calloc(1, sizeof *job);
        if (!job) {
            dm_log_err("ingest: out of memory");
            zmq_msg_close(&first);
            break;
        }
        zmq_msg_init(&job->rid);
        if (!zmq_msg_more(&first)) {
            /* A single frame is a control message: only DM_CTL_STOP. */
            bool stop = dm_ctl_is(zmq_msg_data(&first), zmq_msg_size(&first), DM_CTL_STOP);
            zmq_msg_close(&first);
            if (!stop) {
                dm_log_warn("ingest: an unknown control message was dropped");
                zmq_msg_close(&job->rid);
                free(job);
                continue;
            }
            job->kind = S_STOP;
            zmq_send(self->v_jobs, &job, sizeof job, 0);
            break;
        }
        zmq_msg_move(&job->rid, &first);
        zmq_msg_close(&first);
        zmq_msg_t payload;
        zmq_msg_init(&payload);
        zmq_msg_recv(&payload, self->v_in, 0);
        s_prepare(self, job, zmq_msg_data(&payload), zmq_msg_size(&payload), &sc);
        zmq_msg_close(&payload);
        bool wait = job->kind == S_REGISTER || job->kind == S_DEREGISTER;
        if (wait)
            job->done = &done;
        zmq_send(self->v_jobs, &job, sizeof job, 0);
        if (wait)
            while (sem_wait(&done) != 0 && errno == EINTR)
                ;
    }
    sem_destroy(&done);
    dm_buf_free(&sc.row);
    dm_buf_free(&sc.key);
    dm_buf_free(&sc.reasons);
    return NULL;
}

/* ---- writer ---- */

static void s_send_reply(dm_ingest_t *self, s_job *job, Dm__Envelope *env)
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

static void s_send_error(dm_ingest_t *self, s_job *job, dm_err err, const char *text)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__Error e = DM__ERROR__INIT;
    e.code = (uint32_t)err;
    e.message = (char *)text;
    env.body_case = DM__ENVELOPE__BODY_ERROR;
    env.error = &e;
    s_send_reply(self, job, &env);
}

/* Commits a group of ingest jobs for one product and source in one
 * transaction (group commit: one fsync for many batches), then acknowledges
 * each job with its own counts. All or nothing: on failure every job of the
 * group gets the error and nothing of them is stored. */
static void s_commit_ingest(dm_ingest_t *self, s_job **group, size_t ngroup)
{
    size_t nrows = 0, nq = 0;
    for (size_t g = 0; g < ngroup; g++) {
        nrows += group[g]->rows.len / sizeof(s_rowref);
        nq += group[g]->quar.len / sizeof(s_qref);
    }
    dm_row_in_t *rows = nrows ? malloc(nrows * sizeof *rows) : NULL;
    dm_quarantine_in_t *q = nq ? malloc(nq * sizeof *q) : NULL;
    dm_err rc = DM_ERR_NOMEM;
    if ((nrows && !rows) || (nq && !q))
        goto reply;
    size_t r = 0, k = 0;
    for (size_t g = 0; g < ngroup; g++) {
        const s_job *job = group[g];
        const char *base = job->bytes.data;
        const s_rowref *rr = (const s_rowref *)(void *)job->rows.data;
        for (size_t i = 0; i < job->rows.len / sizeof(s_rowref); i++)
            rows[r++] = (dm_row_in_t){base + rr[i].key_off, rr[i].key_len,
                                      base + rr[i].row_off, rr[i].row_len};
        const s_qref *qr = (const s_qref *)(void *)job->quar.data;
        for (size_t i = 0; i < job->quar.len / sizeof(s_qref); i++)
            q[k++] = (dm_quarantine_in_t){qr[i].line, base + qr[i].raw_off, qr[i].raw_len,
                                          qr[i].orig_len, base + qr[i].why_off};
    }
    dm_batch_result_t res = {0, 0, 0};
    rc = dm_store_commit_batch(self->store, group[0]->pid, rows, nrows, q, nq,
                               group[0]->source ? group[0]->source : "", &res);
reply:
    for (size_t g = 0; g < ngroup; g++) {
        s_job *job = group[g];
        if (rc != DM_OK) {
            char text[1024];
            snprintf(text, sizeof text,
                     "the node could not store the batch (%s); nothing of it was kept",
                     dm_err_str(rc));
            s_send_error(self, job, rc, text);
            continue;
        }
        Dm__Envelope env = DM__ENVELOPE__INIT;
        Dm__IngestRep rep = DM__INGEST_REP__INIT;
        rep.accepted = job->rows.len / sizeof(s_rowref);
        rep.quarantined = job->quar.len / sizeof(s_qref);
        env.body_case = DM__ENVELOPE__BODY_INGEST_REP;
        env.ingest_rep = &rep;
        s_send_reply(self, job, &env);
    }
    free(rows);
    free(q);
}

/* True if next may join a group started by first: same product, same
 * source (quarantine entries carry one source per commit). */
static bool s_groupable(const s_job *first, const s_job *next)
{
    return next->kind == S_INGEST && next->pid == first->pid &&
           strcmp(next->source ? next->source : "", first->source ? first->source : "") == 0;
}

static void s_commit_register(dm_ingest_t *self, s_job *job)
{
    const dm_contract_t *c = job->contract;
    char qualified[256];
    snprintf(qualified, sizeof qualified, "%s/%s", c->domain, c->name);
    dm_product_t old = {0};
    dm_product_t stored = {0};
    dm_product_t prev = {0};
    bool had_old = dm_store_product_get(self->store, c->domain, c->name, &old) == DM_OK;
    if (had_old && old.records > 0 &&
        (c->version_major > old.version_major ||
         (c->version_major == old.version_major &&
          (c->version_minor > old.version_minor ||
           (c->version_minor == old.version_minor && c->version_patch > old.version_patch))))) {
        const dm_product_ref_t *ref = NULL;
        if (dm_registry_acquire(self->registry, qualified, strlen(qualified), &ref) == DM_OK) {
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
                         qualified, old.version, c->version, old.records, why.data);
                dm_buf_free(&why);
                s_send_error(self, job, DM_ERR_CONFLICT, text);
                goto out;
            }
            dm_buf_free(&why);
        }
    }
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
    dm_err rc = dm_store_product_register(self->store, &in, &outcome, &stored, &prev);
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
        rc = dm_registry_install(self->registry, stored.id, job->canonical.data,
                                 job->canonical.len);
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
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__RegisterRep rep = DM__REGISTER_REP__INIT;
    rep.outcome = outcome == DM_REGISTER_CREATED    ? DM__REGISTER_REP__OUTCOME__CREATED
                  : outcome == DM_REGISTER_UPGRADED ? DM__REGISTER_REP__OUTCOME__UPGRADED
                                                    : DM__REGISTER_REP__OUTCOME__UNCHANGED;
    rep.domain = c->domain;
    rep.name = c->name;
    rep.version = c->version;
    rep.previous_version = had_old ? old.version : "";
    env.body_case = DM__ENVELOPE__BODY_REGISTER_REP;
    env.register_rep = &rep;
    s_send_reply(self, job, &env);
out:
    dm_store_product_clear(&old);
    dm_store_product_clear(&stored);
    dm_store_product_clear(&prev);
}

static void s_commit_deregister(dm_ingest_t *self, s_job *job)
{
    char qualified[256];
    snprintf(qualified, sizeof qualified, "%.120s/%.120s", job->domain, job->name);
    dm_product_t removed = {0};
    dm_err rc = dm_store_product_delete(self->store, job->domain, job->name, &removed);
    if (rc == DM_ERR_NOTFOUND) {
        char text[512];
        dm_buf_t hint = DM_BUF_INIT;
        dm_registry_suggest(self->registry, qualified, &hint);
        snprintf(text, sizeof text, "unknown product '%s' on this node%s%s%s", qualified,
                 hint.len ? "; did you mean '" : "", hint.len ? hint.data : "", hint.len ? "'?" : "");
        dm_buf_free(&hint);
        s_send_error(self, job, rc, text);
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
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__DeregisterRep rep = DM__DEREGISTER_REP__INIT;
    rep.domain = job->domain;
    rep.name = job->name;
    rep.version = removed.version;
    rep.records = removed.records;
    env.body_case = DM__ENVELOPE__BODY_DEREGISTER_REP;
    env.deregister_rep = &rep;
    s_send_reply(self, job, &env);
    dm_store_product_clear(&removed);
}

static void *s_writer_main(void *arg)
{
    dm_ingest_t *self = arg;
    prctl(PR_SET_NAME, "dm-writer");
    s_job *group[DM_INGEST_GROUP_JOBS];
    s_job *pending = NULL; /* received while grouping, not groupable */
    for (;;) {
        s_job *job = pending;
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
        case S_STOP:
            s_job_free(job);
            dm_ctl_send(self->w_out, DM_CTL_STOPPED);
            return NULL;
        case S_REPLY:
            s_send_error(self, job, job->err, job->errtext ? job->errtext : "error");
            break;
        case S_INGEST: {
            /* Take what else is already queued for the same product, up to
             * the group limits, into the same transaction. */
            size_t ngroup = 0, rows = job->rows.len / sizeof(s_rowref);
            group[ngroup++] = job;
            while (ngroup < DM_INGEST_GROUP_JOBS && rows < DM_INGEST_GROUP_ROWS) {
                s_job *next = NULL;
                if (zmq_recv(self->w_jobs, &next, sizeof next, ZMQ_DONTWAIT) != (int)sizeof next ||
                    !next)
                    break;
                if (!s_groupable(job, next)) {
                    pending = next;
                    break;
                }
                group[ngroup++] = next;
                rows += next->rows.len / sizeof(s_rowref);
            }
            s_commit_ingest(self, group, ngroup);
            for (size_t g = 1; g < ngroup; g++)
                s_job_free(group[g]);
            break;
        }
        case S_REGISTER:
            s_commit_register(self, job);
            break;
        case S_DEREGISTER:
            s_commit_deregister(self, job);
            break;
        }
        s_job_free(job);
        if (done)
            sem_post(done);
    }
    return NULL;
}

/* ---- lifecycle ---- */

static void *s_socket(void *ctx, int type, const char *endpoint, bool bind)
{
    void *s = zmq_socket(ctx, type);
    if (!s)
        return NULL;
    int linger = 0;
    int hwm = DM_INGEST_QUEUE_MSGS;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if ((bind ? zmq_bind(s, endpoint) : zmq_connect(s, endpoint)) != 0) {
        dm_log_err("ingest: cannot %s %s: %s", bind ? "bind" : "connect", endpoint,
                   zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

dm_err dm_ingest_new(void *ctx, dm_store_t *store, dm_registry_t *registry, const char *domain,
                     size_t record_limit, dm_ingest_t **out)
{
    *out = NULL;
    dm_ingest_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    self->store = store;
    self->registry = registry;
    self->domain = strdup(domain);
    self->record_limit = record_limit;
    /* All sockets are made here; each is then used by one thread only. */
    self->w_jobs = s_socket(ctx, ZMQ_PAIR, DM_INGEST_JOBS, true);
    self->v_jobs = s_socket(ctx, ZMQ_PAIR, DM_INGEST_JOBS, false);
    self->v_in = s_socket(ctx, ZMQ_PULL, DM_INGEST_INBOX, false);
    int one = 1; /* the node loop's send queue (DM_INGEST_QUEUE_MSGS) is the bound */
    if (self->v_in)
        zmq_setsockopt(self->v_in, ZMQ_RCVHWM, &one, sizeof one);
    self->w_out = s_socket(ctx, ZMQ_PUSH, DM_CTL_OUTBOX, false);
    if (!self->domain || !self->w_jobs || !self->v_jobs || !self->v_in || !self->w_out)
        goto fail;
    if (pthread_create(&self->writer, NULL, s_writer_main, self) != 0)
        goto fail;
    self->w_running = true;
    if (pthread_create(&self->validator, NULL, s_validator_main, self) != 0)
        goto fail;
    self->v_running = true;
    *out = self;
    return DM_OK;
fail:
    dm_log_err("ingest: cannot start the write pipeline");
    dm_ingest_destroy(&self);
    return DM_ERR_NET;
}

void dm_ingest_stop(dm_ingest_t *self, void *inbox_push)
{
    (void)self;
    dm_ctl_send(inbox_push, DM_CTL_STOP);
}

void dm_ingest_destroy(dm_ingest_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_ingest_t *self = *self_p;
    if (self->w_running && !self->v_running) {
        /* The validator never started: stop the writer directly. */
        s_job *job = calloc(1, sizeof *job);
        if (job) {
            zmq_msg_init(&job->rid);
            job->kind = S_STOP;
            zmq_send(self->v_jobs, &job, sizeof job, 0);
        }
    }
    if (self->v_running)
        pthread_join(self->validator, NULL);
    if (self->w_running)
        pthread_join(self->writer, NULL);
    void *socks[] = {self->v_in, self->v_jobs, self->w_jobs, self->w_out};
    for (size_t i = 0; i < sizeof socks / sizeof socks[0]; i++)
        if (socks[i])
            zmq_close(socks[i]);
    free(self->domain);
    free(self);
    *self_p = NULL;
}
