/* ingest_validate.c: the validator thread of the write pipeline.
 *
 * It decodes each write request, checks it against this node's domain and
 * registry and, for an ingest, validates every record (the CPU work of the
 * pipeline), then hands the job to the writer over the inproc PAIR socket.
 * A register or deregister job makes it wait until the writer is done, so
 * batches that arrive after a register are validated against the new
 * contract. dm_ingest_check runs the same decoding offline. */
#include "ingest/ingest_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "base/log.h"
#include "record/ndjson_check.h"
#include "record/schema.h"
#include "transport/rpc.h"

typedef struct {
    dm_buf_t row, key, reasons;
} s_scratch;

static void s_add_quarantine(dm_ingest__job_t *job, uint64_t line, const char *raw, size_t raw_len,
                             uint64_t orig_len, const char *why)
{
    dm_ingest__qref_t q = {line, orig_len, job->bytes.len, raw_len, 0};
    dm_buf_append(&job->bytes, raw, raw_len);
    q.why_off = job->bytes.len;
    dm_buf_append(&job->bytes, why, strlen(why) + 1);
    dm_buf_append(&job->quar, &q, sizeof q);
}

/* Appends sc's valid row (its key, the row, then its unique checks' keys
 * for the writer's quality hook) to job. */
static void s_add_row(dm_ingest__job_t *job, const s_scratch *sc)
{
    dm_ingest__rowref_t r = {job->bytes.len, sc->key.len, 0, sc->row.len};
    dm_buf_append(&job->bytes, sc->key.data, sc->key.len);
    r.row_off = job->bytes.len;
    dm_buf_append(&job->bytes, sc->row.data, sc->row.len);
    if (job->keys)
        dm_quality_keys_append(job->keys, sc->row.data, sc->row.len, &job->bytes);
    dm_buf_append(&job->rows, &r, sizeof r);
}

static void s_prepare_ingest(dm_ingest_t *self, dm_ingest__job_t *job, const Dm__IngestReq *req,
                             s_scratch *sc)
{
    const char *domain = req->domain ? req->domain : "";
    const char *product = req->product ? req->product : "";
    /* a refused batch of a run ends it (the writer's FAIL), so its id first */
    job->has_run = req->run_id.len == DM_INGEST_RUN_ID_BYTES;
    if (job->has_run)
        memcpy(job->run_id, req->run_id.data, DM_INGEST_RUN_ID_BYTES);
    if (strcmp(domain, self->domain) != 0) {
        dm_ingest__job_error(job, DM_ERR_DENIED,
                    "this node serves domain '%s'; product '%s/%s' belongs to another node",
                    self->domain, domain, product);
        return;
    }
    char qualified[256];
    int qn = snprintf(qualified, sizeof qualified, "%s/%s", domain, product);
    const dm_product_ref_t *ref = NULL;
    if (qn < 0 || (size_t)qn >= sizeof qualified ||
        dm_registry_acquire(self->registry, qualified, (size_t)qn, &ref) != DM_OK) {
        dm_buf_t text = DM_BUF_INIT;
        dm_registry_unknown(self->registry, qualified, NULL, &text);
        dm_ingest__job_error(job, DM_ERR_NOTFOUND,
                    "%s (dmctl products lists them; dmctl register adds one)", text.data);
        dm_buf_free(&text);
        return;
    }
    if (req->run_id.len != 0 && req->run_id.len != DM_INGEST_RUN_ID_BYTES) {
        dm_ingest__job_error(job, DM_ERR_INVALID,
                             "IngestReq.run_id is %zu bytes; a run id is %d random bytes, or "
                             "empty for a batch outside a run",
                             req->run_id.len, DM_INGEST_RUN_ID_BYTES);
        dm_registry_release(self->registry, ref);
        return;
    }
    job->kind = DM_INGEST__INGEST;
    job->pid = ref->pid;
    job->run_first = req->run_first;
    job->run_last = req->run_last;
    /* The source name is stored with every quarantined line: bound it. */
    job->source = strndup(req->source ? req->source : "", DM_INGEST_SOURCE_MAX);
    dm_ingest__job_take_bufs(self, job);
    /* Made here, where each row is still in the cache, for the writer's
     * quality hook; without them (out of memory) the hook makes them. */
    if (dm_quality_keys_new(ref->contract, ref->schema, &job->keys, NULL) != DM_OK)
        job->keys = NULL;
    /* rows and keys take about what the lines did; the keys' blocks more */
    dm_buf_reserve(&job->bytes, req->data.len + req->data.len / (job->keys ? 2 : 4));

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
    size_t max_key = dm_store_max_key_bytes();
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
        } else if (!dm_ndjson_check_blank(p, len)) {
            bool ok = dm_schema_validate(ref->schema, p, len, &sc->row, &sc->key, &sc->reasons);
            if (ok && sc->key.len > max_key) {
                snprintf(why, sizeof why,
                         "primary key is %zu bytes encoded, over the store's limit of %zu bytes "
                         "(shorten the key fields)",
                         sc->key.len, max_key);
                s_add_quarantine(job, line, p, len, len, why);
            } else if (ok) {
                s_add_row(job, sc);
            } else {
                s_add_quarantine(job, line, p, len, len, sc->reasons.data);
            }
        }
        line++;
        p = nl ? nl + 1 : end;
    }
out: /* the writer needs the contract for the quality checks: the job holds it */
    job->keyed = job->keys != NULL;
    dm_quality_keys_destroy(&job->keys); /* the blocks are made: only the flag goes on */
    job->ref = ref;
    job->ref_registry = self->registry;
}

#define S_RULES_NAMED 3 /* broken contract rules an audit record names */
#define S_NAME_SHOWN 63 /* bytes of a policy or rule name it shows */

/* Writes the audit's reason for a register refused by contract rules:
 * the policy version and the first few broken rules as "POLICY/RULE"
 * (read from the messages of policy_rules.c, "contract rule RULE of policy
 * POLICY (version V): ..."), with how many more. */
static void s_rules_refused(const dm_diags_t *diags, uint64_t version, char *out, size_t cap)
{
    static const char lead[] = "contract rule ", of[] = " of policy ";
    int k = snprintf(out, cap,
                     "the contract breaks governance contract rules (policy version %llu): ",
                     (unsigned long long)version);
    size_t len = k > 0 && (size_t)k < cap ? (size_t)k : cap - 1;
    for (size_t i = 0; i < diags->count && i < S_RULES_NAMED && len + 1 < cap; i++) {
        const char *m = diags->items[i].message ? diags->items[i].message : "";
        if (strncmp(m, lead, sizeof lead - 1) == 0)
            m += sizeof lead - 1;
        const char *pol = strstr(m, of), *end = pol ? strstr(pol, " (version ") : NULL;
        if (pol && end) {
            int pw = (int)(end - pol) - (int)(sizeof of - 1), rw = (int)(pol - m);
            k = snprintf(out + len, cap - len, "%s%.*s/%.*s", i ? ", " : "",
                         pw > S_NAME_SHOWN ? S_NAME_SHOWN : pw, pol + sizeof of - 1,
                         rw > S_NAME_SHOWN ? S_NAME_SHOWN : rw, m);
        } else
            k = snprintf(out + len, cap - len, "%s%.60s", i ? ", " : "", m);
        len = k > 0 && (size_t)k < cap - len ? len + (size_t)k : cap - 1;
    }
    if (diags->count > S_RULES_NAMED && len + 1 < cap)
        snprintf(out + len, cap - len, " (+%zu more)", diags->count - S_RULES_NAMED);
}

/* Checks c against the contract rules of the mesh's governance set; false
 * after turning job into the refusal naming every broken rule, and refused
 * (cap bytes) into the audit's reason naming the first few. */
static bool s_contract_rules(dm_ingest_t *self, dm_ingest__job_t *job, const dm_contract_t *c,
                             char *refused, size_t cap)
{
    dm_policy_set_t *gov = self->policy(self->policy_ctx);
    if (!gov)
        return true;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_policy_check_contract(gov, c, &diags);
    if (rc != DM_OK) {
        dm_buf_t text = DM_BUF_INIT;
        dm_diags_format(&diags, &text);
        dm_ingest__job_error(job, rc,
                             "the node refused contract %s/%s %s: it breaks the mesh's "
                             "governance contract rules (policy version %llu):\n%s",
                             c->domain, c->name, c->version,
                             (unsigned long long)dm_policy_set_version(gov),
                             text.data ? text.data : "");
        dm_buf_free(&text);
        s_rules_refused(&diags, dm_policy_set_version(gov), refused, cap);
    }
    dm_diags_clear(&diags);
    dm_policy_set_unref(&gov);
    return rc == DM_OK;
}

/* Hands the register's outcome so far (refused: the pipeline's reason,
 * NULL to go on) to the node's register gate; false when the register is
 * refused, job then being the refusal. */
static bool s_register_gate(dm_ingest_t *self, dm_ingest__job_t *job, const dm_contract_t *c,
                            const char *refused)
{
    if (!self->reg_gate)
        return refused == NULL;
    dm_buf_t text = DM_BUF_INIT;
    bool ok = self->reg_gate(self->reg_gate_ctx, &job->caller, c, refused, &text);
    if (!ok && text.len)
        dm_ingest__job_error(job, DM_ERR_DENIED, "%s", text.data);
    dm_buf_free(&text);
    return ok && refused == NULL;
}

static void s_prepare_register(dm_ingest_t *self, dm_ingest__job_t *job, const Dm__RegisterReq *req)
{
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_contract_t *c = NULL;
    char refused[300] = "";
    if (req->contract.len == 0 || !req->contract.data) {
        dm_ingest__job_error(job, DM_ERR_INVALID,
                    "the register request carries no contract (field 'contract' is empty)");
        snprintf(refused, sizeof refused, "no contract");
        goto gate;
    }
    dm_err rc = dm_contract_parse("register request", (const char *)req->contract.data,
                                  req->contract.len, NULL, &list, &n, &diags);
    if (rc != DM_OK) {
        dm_buf_t text = DM_BUF_INIT;
        dm_diags_format(&diags, &text);
        dm_ingest__job_error(job, rc, "the node refused the contract:\n%s", text.data ? text.data : "");
        dm_buf_free(&text);
        snprintf(refused, sizeof refused, "the contract is not valid");
        goto gate;
    }
    if (n != 1) {
        dm_ingest__job_error(job, DM_ERR_INVALID,
                    "a register request carries exactly one contract, this one has %zu", n);
        snprintf(refused, sizeof refused, "%zu contracts in one request", n);
        goto gate;
    }
    c = list[0];
    if (strcmp(c->domain, self->domain) != 0) {
        dm_ingest__job_error(job, DM_ERR_DENIED,
                    "this node serves domain '%s'; contract %s/%s is for domain '%s' and must "
                    "be registered on that domain's node",
                    self->domain, c->domain, c->name, c->domain);
        snprintf(refused, sizeof refused, "domain %.63s is not this node's (%.63s)", c->domain,
                 self->domain);
    } else if (self->policy) {
        (void)s_contract_rules(self, job, c, refused, sizeof refused);
    }
gate:
    if (!s_register_gate(self, job, c, refused[0] ? refused : NULL))
        goto out;
    job->kind = DM_INGEST__REGISTER;
    job->contract = c;
    list[0] = NULL;
    dm_contract_canonical(c, &job->canonical);
    dm_contract_hash(c, job->hash);
out:
    dm_contract_list_destroy(&list, n);
    dm_diags_clear(&diags);
}

static void s_prepare_deregister(dm_ingest_t *self, dm_ingest__job_t *job, const Dm__DeregisterReq *req)
{
    const char *domain = req->domain ? req->domain : "";
    const char *name = req->product ? req->product : "";
    if (strcmp(domain, self->domain) != 0) {
        dm_ingest__job_error(job, DM_ERR_DENIED,
                    "this node serves domain '%s'; product '%.100s/%.100s' belongs to another node",
                    self->domain, domain, name);
        return;
    }
    job->kind = DM_INGEST__DEREGISTER;
    job->domain = strdup(domain);
    job->name = strdup(name);
}

/* Decodes one write request envelope and turns job into the work it asks
 * for, or into an DM_INGEST__REPLY error. Everything a client controls passes here. */
static void s_prepare(dm_ingest_t *self, dm_ingest__job_t *job, const void *data, size_t len,
                      s_scratch *sc)
{
    Dm__Envelope *env = dm_rpc_unpack(data, len);
    if (!env) {
        dm_ingest__job_error(job, DM_ERR_PROTO, "malformed request envelope");
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
        dm_ingest__job_error(job, DM_ERR_PROTO, "unexpected request on the write path");
    dm__envelope__free_unpacked(env, NULL);
}

/* Runs one encoded request through the validator's checks, outside the
 * pipeline (dm_ingest_check*): its outcome and, where asked for, the rows
 * kept, the rows quarantined and the refusal's text. */
static dm_err s_check(dm_ingest_t *self, const void *data, size_t len, size_t *rows,
                      size_t *quarantined, dm_buf_t *text)
{
    s_scratch sc = {DM_BUF_INIT, DM_BUF_INIT, DM_BUF_INIT};
    dm_ingest__job_t *job = calloc(1, sizeof *job);
    if (!job)
        return DM_ERR_NOMEM;
    zmq_msg_init(&job->rid);
    s_prepare(self, job, data, len, &sc);
    dm_err rc = job->kind == DM_INGEST__REPLY ? job->err : DM_OK;
    if (rows)
        *rows = job->rows.len / sizeof(dm_ingest__rowref_t);
    if (quarantined)
        *quarantined = job->quar.len / sizeof(dm_ingest__qref_t);
    if (text && rc != DM_OK && job->errtext)
        dm_buf_puts(text, job->errtext);
    dm_ingest__job_free(job);
    dm_buf_free(&sc.row);
    dm_buf_free(&sc.key);
    dm_buf_free(&sc.reasons);
    return rc;
}

dm_err dm_ingest_check(dm_registry_t *registry, const char *domain, size_t record_limit,
                       const void *data, size_t len, size_t *rows, size_t *quarantined)
{
    dm_ingest_t self = {.registry = registry, .domain = (char *)domain,
                        .record_limit = record_limit ? record_limit : DM_RECORD_LIMIT_DEFAULT};
    return s_check(&self, data, len, rows, quarantined, NULL);
}

/* The policy getter of dm_ingest_check_policy: a reference to its set. */
static dm_policy_set_t *s_fixed_policy(void *ctx) { return ctx ? dm_policy_set_ref(ctx) : NULL; }

dm_err dm_ingest_check_policy(dm_registry_t *registry, const char *domain, dm_policy_set_t *gov,
                              const void *data, size_t len, dm_buf_t *text)
{
    dm_ingest_t self = {.registry = registry, .domain = (char *)domain,
                        .record_limit = DM_RECORD_LIMIT_DEFAULT, .policy = s_fixed_policy,
                        .policy_ctx = gov};
    return s_check(&self, data, len, NULL, NULL, text);
}

void *dm_ingest__validator_main(void *arg)
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
        dm_ingest__job_t *job = calloc(1, sizeof *job);
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
            job->kind = DM_INGEST__STOP;
            zmq_send(self->v_jobs, &job, sizeof job, 0);
            break;
        }
        zmq_msg_move(&job->rid, &first);
        zmq_msg_close(&first);
        zmq_msg_t payload;
        zmq_msg_init(&payload);
        zmq_msg_recv(&payload, self->v_in, 0);
        /* The caller frame; anything else (missing, another size) leaves
         * the job's caller unverified and zero. */
        while (zmq_msg_more(&payload)) {
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            if (zmq_msg_recv(&extra, self->v_in, 0) < 0) {
                zmq_msg_close(&extra);
                break;
            }
            if (zmq_msg_size(&extra) == sizeof job->caller && !zmq_msg_more(&extra))
                memcpy(&job->caller, zmq_msg_data(&extra), sizeof job->caller);
            bool more = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
            if (!more)
                break;
        }
        s_prepare(self, job, zmq_msg_data(&payload), zmq_msg_size(&payload), &sc);
        zmq_msg_close(&payload);
        bool wait = job->kind == DM_INGEST__REGISTER || job->kind == DM_INGEST__DEREGISTER;
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
