/* ingest_priv.h: what the files of the write pipeline share: the job that
 * travels from the validator to the writer, and the pipeline's state.
 *
 * Calls go one way: ingest.c (lifecycle: sockets, threads) starts
 * ingest_validate.c (the validator thread: decode, validate, hand over) and
 * ingest_write.c (the writer thread: commit, reply); both build and free
 * jobs with ingest_job.c. Nobody outside node/ingest/ includes it. */
#ifndef DM_INGEST_PRIV_H
#define DM_INGEST_PRIV_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "contract/contract.h"
#include "ingest/ingest.h"
#include "quality/quality.h"

#define DM_INGEST_JOBS "inproc://dm-ingest-jobs"
#define DM_ERROR_TEXT_MAX 8192 /* bytes of diagnostics sent back in one Error */
#define DM_INGEST_GROUP_JOBS 16     /* batches merged into one commit at most */
#define DM_INGEST_SOURCE_MAX 255    /* bytes of the input's name kept with quarantined lines */
#define DM_INGEST_GROUP_ROWS 50000  /* rows after which a group stops growing */
#define DM_INGEST_RUNS_MAX 64       /* ingest runs tracked at once; the oldest is failed */
#define DM_INGEST_RUN_NAME_MAX 128  /* a run's domain and product as kept (names are shorter) */
#define DM_INGEST_POOL_BUFS 8       /* jobs' buffers kept for reuse (dm_ingest__job_recycle) */
#define DM_INGEST_POOL_BUF_MAX ((size_t)4 << 20) /* bytes of capacity a kept buffer may have */

/* What a job asks the writer to do. */
typedef enum {
    DM_INGEST__INGEST,     /* commit validated rows and quarantined lines */
    DM_INGEST__REGISTER,   /* store and install a contract */
    DM_INGEST__DEREGISTER, /* delete a product */
    DM_INGEST__REPLY,      /* send errtext as an Error: the validator refused the request */
    DM_INGEST__STOP        /* the pipeline is stopping */
} dm_ingest__kind;

/* A valid record inside job->bytes: its encoded key and row. */
typedef struct {
    size_t key_off, key_len, row_off, row_len;
} dm_ingest__rowref_t;

/* A quarantined line inside job->bytes: the raw bytes and the reason. */
typedef struct {
    uint64_t line, orig_len;
    size_t raw_off, raw_len, why_off;
} dm_ingest__qref_t;

/* One unit of work from the validator to the writer; whoever holds the
 * pointer owns it. */
typedef struct {
    dm_ingest__kind kind;
    zmq_msg_t rid; /* the client's routing id */
    uint64_t req_id;
    dm_rpc_caller_t caller; /* who sent it, as the node loop authenticated it */
    /* DM_INGEST__REPLY: an error to send as is */
    dm_err err;
    char *errtext;
    /* DM_INGEST__INGEST */
    uint32_t pid;
    char *source;
    dm_buf_t bytes; /* keys, rows, raw lines and reasons, back to back */
    dm_buf_t rows;  /* dm_ingest__rowref_t[] */
    dm_buf_t quar;  /* dm_ingest__qref_t[] */
    const dm_product_ref_t *ref; /* the product, held until the job is freed */
    /* The validator's maker of the unique checks' keys (quality/quality.h's
     * dm_quality_keys_append), NULL once the rows are validated; keyed: it
     * put a block of keys after each row in bytes */
    dm_quality_keys_t *keys;
    bool keyed;
    dm_registry_t *ref_registry;
    bool has_run, run_first, run_last; /* IngestReq's run fields */
    uint8_t run_id[DM_INGEST_RUN_ID_BYTES];
    /* DM_INGEST__DEREGISTER */
    char *domain, *name;
    /* DM_INGEST__REGISTER */
    dm_contract_t *contract;
    dm_buf_t canonical;
    uint8_t hash[DM_CONTRACT_HASH_BYTES];
    sem_t *done; /* posted by the writer when done (register, deregister) */
} dm_ingest__job_t;

/* A finished ingest job's buffers, kept for the next job: a fresh 1 MiB
 * buffer per batch came from mmap and cost a page fault per 4 KiB, twice
 * (validator's copy in, writer's free), ~12% of the validator's CPU in a
 * 1M-record ingest (perf). */
typedef struct {
    dm_buf_t bytes, rows;
} dm_ingest__bufs_t;

struct dm_ingest {
    dm_store_t *store;
    dm_registry_t *registry;
    char *domain;
    size_t record_limit;
    dm_ingest_policy_fn policy; /* the governance set a register is checked against */
    void *policy_ctx;
    dm_ingest_register_fn reg_gate; /* the write decision on a parsed contract */
    void *reg_gate_ctx;
    void *v_in, *v_jobs;  /* validator's sockets */
    void *w_jobs, *w_out; /* writer's sockets */
    dm_ingest_run_fn run_hook; /* ingest run events (dm_ingest_set_run_hook) */
    void *run_hook_ctx;
    struct dm_ingest__run {
        uint8_t id[DM_INGEST_RUN_ID_BYTES];
        bool used;
        bool ended; /* FAIL reported: its batches still in flight report nothing */
        uint64_t accepted, quarantined, started; /* started: a tick for eviction */
        /* its product and the client's input name, kept for its last event
         * (a refused batch or the node's stop has no contract to name them) */
        char domain[DM_INGEST_RUN_NAME_MAX], name[DM_INGEST_RUN_NAME_MAX];
        char source[DM_INGEST_SOURCE_MAX + 1];
    } runs[DM_INGEST_RUNS_MAX]; /* the writer's */
    uint64_t run_tick;
    dm_buf_t w_rows, w_quar; /* the writer's: a group's dm_row_in_t[] and dm_quarantine_in_t[] */
    dm_quality_scratch_t *w_qscratch; /* the writer's: its quality batches' buffers */
    pthread_mutex_t pool_mu;  /* guards pool and npool (validator takes, writer gives back) */
    bool pool_on;             /* false in dm_ingest_check's pipeline: no pool */
    size_t npool;
    dm_ingest__bufs_t pool[DM_INGEST_POOL_BUFS];
    pthread_t validator, writer;
    bool v_running, w_running;
};

/* Frees job and everything it owns. NULL-safe. */
void dm_ingest__job_free(dm_ingest__job_t *job);

/* Gives job (an ingest being prepared, its buffers still empty) a finished
 * job's buffers from self's pool, if any; it keeps its own otherwise. */
void dm_ingest__job_take_bufs(dm_ingest_t *self, dm_ingest__job_t *job);

/* Frees job like dm_ingest__job_free, but first hands its row buffers to
 * self's pool (emptied, at most DM_INGEST_POOL_BUFS sets, none larger than
 * DM_INGEST_POOL_BUF_MAX) for a later job. NULL-safe. */
void dm_ingest__job_recycle(dm_ingest_t *self, dm_ingest__job_t *job);

/* Frees the buffers in self's pool. */
void dm_ingest__pool_clear(dm_ingest_t *self);

/* Turns job into a DM_INGEST__REPLY carrying err and the formatted text
 * (at most DM_ERROR_TEXT_MAX bytes), which the writer sends as an Error. */
void dm_ingest__job_error(dm_ingest__job_t *job, dm_err err, const char *fmt, ...) DM_PRINTF(3, 4);

/* The validator thread's body (arg: the dm_ingest_t). Runs until
 * DM_CTL_STOP arrives on v_in, then passes a DM_INGEST__STOP job on. */
void *dm_ingest__validator_main(void *arg);

/* The writer thread's body (arg: the dm_ingest_t). Runs until a
 * DM_INGEST__STOP job, then sends DM_CTL_STOPPED to w_out. */
void *dm_ingest__writer_main(void *arg);

#endif
