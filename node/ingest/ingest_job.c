/* ingest_job.c: the job of the write pipeline (see ingest_priv.h): freeing
 * one, recycling its buffers, and turning one into an error reply. */
#include "ingest/ingest_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dm_ingest__job_free(dm_ingest__job_t *job)
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
    dm_quality_keys_destroy(&job->keys); /* (a job refused mid-validation) before its ref */
    if (job->ref)
        dm_registry_release(job->ref_registry, job->ref);
    dm_contract_destroy(&job->contract);
    dm_buf_free(&job->canonical);
    free(job);
}

void dm_ingest__job_take_bufs(dm_ingest_t *self, dm_ingest__job_t *job)
{
    if (!self->pool_on)
        return;
    pthread_mutex_lock(&self->pool_mu);
    if (self->npool > 0) {
        dm_ingest__bufs_t *b = &self->pool[--self->npool];
        dm_buf_free(&job->bytes);
        dm_buf_free(&job->rows);
        job->bytes = b->bytes;
        job->rows = b->rows;
        *b = (dm_ingest__bufs_t){DM_BUF_INIT, DM_BUF_INIT};
    }
    pthread_mutex_unlock(&self->pool_mu);
}

void dm_ingest__job_recycle(dm_ingest_t *self, dm_ingest__job_t *job)
{
    if (!job)
        return;
    if (self->pool_on && job->bytes.cap > 0 && job->bytes.cap <= DM_INGEST_POOL_BUF_MAX &&
        job->rows.cap <= DM_INGEST_POOL_BUF_MAX) {
        pthread_mutex_lock(&self->pool_mu);
        if (self->npool < DM_INGEST_POOL_BUFS) {
            dm_buf_reset(&job->bytes);
            dm_buf_reset(&job->rows);
            self->pool[self->npool++] = (dm_ingest__bufs_t){job->bytes, job->rows};
            job->bytes = (dm_buf_t)DM_BUF_INIT;
            job->rows = (dm_buf_t)DM_BUF_INIT;
        }
        pthread_mutex_unlock(&self->pool_mu);
    }
    dm_ingest__job_free(job);
}

void dm_ingest__pool_clear(dm_ingest_t *self)
{
    for (size_t i = 0; i < self->npool; i++) {
        dm_buf_free(&self->pool[i].bytes);
        dm_buf_free(&self->pool[i].rows);
    }
    self->npool = 0;
}

void dm_ingest__job_error(dm_ingest__job_t *job, dm_err err, const char *fmt, ...)
{
    job->kind = DM_INGEST__REPLY;
    job->err = err;
    va_list ap;
    va_start(ap, fmt);
    char text[DM_ERROR_TEXT_MAX];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    free(job->errtext);
    job->errtext = strdup(text);
}
