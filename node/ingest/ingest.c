/* ingest.c: the write pipeline's lifecycle: its sockets, its two threads
 * and their stopping (see ingest.h).
 *
 * The validator (ingest_validate.c) and the writer (ingest_write.c) each
 * use their own sockets, all made here; jobs travel between them as
 * pointers over an inproc PAIR socket (ingest_priv.h). */
#include "ingest/ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "ingest/ingest_priv.h"
#include "transport/zsock.h"

/* ---- lifecycle ---- */

/* A socket of type bound or connected to endpoint, receiving at most
 * rcvhwm queued messages; NULL with a line in why on failure. */
static void *s_socket(void *ctx, int type, const char *endpoint, bool bind, int rcvhwm,
                      dm_buf_t *why)
{
    dm_zsock_opts_t o = {.sndhwm = DM_INGEST_QUEUE_MSGS, .rcvhwm = rcvhwm};
    void *s = dm_zsock_new(ctx, type, &o, why);
    if (!s)
        return NULL;
    if ((bind ? zmq_bind(s, endpoint) : zmq_connect(s, endpoint)) != 0) {
        dm_buf_why(why, "ingest: cannot %s %s: %s", bind ? "bind" : "connect", endpoint,
                   zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

dm_err dm_ingest_new(void *ctx, dm_store_t *store, dm_registry_t *registry, const char *domain,
                     size_t record_limit, dm_ingest_t **out, dm_buf_t *why)
{
    *out = NULL;
    dm_err err = DM_ERR_NET;
    dm_ingest_t *self = calloc(1, sizeof *self);
    if (!self || !(self->domain = strdup(domain))) {
        free(self);
        dm_buf_why(why, "ingest: out of memory");
        return DM_ERR_NOMEM;
    }
    self->store = store;
    self->registry = registry;
    self->record_limit = record_limit;
    if (pthread_mutex_init(&self->pool_mu, NULL) != 0) {
        free(self->domain);
        free(self);
        dm_buf_why(why, "ingest: cannot make the buffer pool's mutex");
        return DM_ERR_NOMEM;
    }
    self->pool_on = true;
    /* All sockets are made here; each is then used by one thread only. */
    /* The inbox receives at most one queued request: the node loop's send
     * queue (DM_INGEST_QUEUE_MSGS) is the bound it answers "busy" at. */
    if (!(self->w_jobs = s_socket(ctx, ZMQ_PAIR, DM_INGEST_JOBS, true, DM_INGEST_QUEUE_MSGS,
                                  why)) ||
        !(self->v_jobs = s_socket(ctx, ZMQ_PAIR, DM_INGEST_JOBS, false, DM_INGEST_QUEUE_MSGS,
                                  why)) ||
        !(self->v_in = s_socket(ctx, ZMQ_PULL, DM_INGEST_INBOX, false, 1, why)) ||
        !(self->w_out = s_socket(ctx, ZMQ_PUSH, DM_CTL_OUTBOX, false, DM_INGEST_QUEUE_MSGS, why)))
        goto fail;
    if (pthread_create(&self->writer, NULL, dm_ingest__writer_main, self) != 0) {
        dm_buf_why(why, "ingest: cannot start the writer thread");
        goto fail;
    }
    self->w_running = true;
    if (pthread_create(&self->validator, NULL, dm_ingest__validator_main, self) != 0) {
        dm_buf_why(why, "ingest: cannot start the validator thread");
        goto fail;
    }
    self->v_running = true;
    *out = self;
    return DM_OK;
fail: /* why says what; the caller reports it, once */
    dm_ingest_destroy(&self);
    return err;
}

void dm_ingest_set_policy(dm_ingest_t *self, dm_ingest_policy_fn fn, void *ctx)
{
    self->policy = fn;
    self->policy_ctx = ctx;
}

void dm_ingest_set_register_gate(dm_ingest_t *self, dm_ingest_register_fn fn, void *ctx)
{
    self->reg_gate = fn;
    self->reg_gate_ctx = ctx;
}

void dm_ingest_set_run_hook(dm_ingest_t *self, dm_ingest_run_fn fn, void *ctx)
{
    self->run_hook = fn;
    self->run_hook_ctx = ctx;
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
        dm_ingest__job_t *job = calloc(1, sizeof *job);
        if (job) {
            zmq_msg_init(&job->rid);
            job->kind = DM_INGEST__STOP;
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
    dm_ingest__pool_clear(self);
    if (self->pool_on)
        pthread_mutex_destroy(&self->pool_mu);
    dm_buf_free(&self->w_rows);
    dm_quality_scratch_destroy(&self->w_qscratch);
    dm_buf_free(&self->w_quar);
    free(self->domain);
    free(self);
    *self_p = NULL;
}

