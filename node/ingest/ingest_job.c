/* ingest_job.c: the job of the write pipeline (see ingest_priv.h): freeing
 * one, and turning one into an error reply. */
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
    if (job->ref)
        dm_registry_release(job->ref_registry, job->ref);
    dm_contract_destroy(&job->contract);
    dm_buf_free(&job->canonical);
    free(job);
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
