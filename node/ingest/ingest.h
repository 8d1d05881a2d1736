/* ingest.h: the node's write pipeline: a validator thread and a writer
 * thread joined by inproc sockets.
 *
 * The node loop forwards every write request (RegisterReq, IngestReq,
 * DeregisterReq) as three frames [routing id][envelope][caller] to
 * DM_INGEST_INBOX, caller being the dm_rpc_caller_t the loop authenticated
 * (sizeof bytes; a request without it is judged as an unverified caller's).
 * The validator parses and validates it (CPU work) and hands a job to the
 * writer, which commits it to LMDB and only then sends the reply, as two
 * frames [routing id][envelope], to DM_CTL_OUTBOX, where the node loop
 * relays it to the client. Jobs keep their arrival order end to end, so a
 * client's batches are acknowledged in order. Every LMDB write of the node
 * happens on the writer thread; the node loop never waits on a commit.
 * Files: ingest.c (lifecycle), ingest_validate.c, ingest_write.c,
 * ingest_job.c, sharing ingest_priv.h. */
#ifndef DM_INGEST_H
#define DM_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "policy/policy.h"
#include "record/registry.h"
#include "storage/store.h"
#include "transport/ctl.h"
#include "transport/rpc.h"

#define DM_INGEST_INBOX "inproc://dm-ingest-inbox"
#define DM_INGEST_QUEUE_MSGS 32 /* requests queued before the node says busy */

typedef struct dm_ingest dm_ingest_t;

/* Starts both threads on ctx. The node loop must have bound a PUSH socket
 * at DM_INGEST_INBOX and a PULL socket at DM_CTL_OUTBOX first. store and
 * registry are borrowed and must outlive the pipeline. domain is the only
 * domain this node accepts contracts for. Returns DM_ERR_NOMEM, or
 * DM_ERR_NET when a socket or a thread cannot be made, with a line naming
 * the socket or thread in why (base/err.h; not logged). */
DM_NODISCARD dm_err dm_ingest_new(void *ctx, dm_store_t *store, dm_registry_t *registry,
                                  const char *domain, size_t record_limit, dm_ingest_t **out,
                                  dm_buf_t *why);

/* Decodes and validates one write request envelope (RegisterReq,
 * IngestReq or DeregisterReq; data, len bytes) exactly as the validator
 * thread does, against registry and domain, without storing anything: for
 * fuzz harnesses and tests. Returns DM_OK if the node would hand the work
 * to the writer (*rows and *quarantined, each may be NULL, get the counts
 * of an ingest), else the dm_err of the Error the client would get.
 * record_limit 0: DM_RECORD_LIMIT_DEFAULT. */
DM_NODISCARD dm_err dm_ingest_check(dm_registry_t *registry, const char *domain,
                                    size_t record_limit, const void *data, size_t len,
                                    size_t *rows, size_t *quarantined);

/* The mesh's governance set a register is checked against: a new
 * reference (NULL: none) that the pipeline drops with dm_policy_set_unref.
 * Called on the validator thread, so it must be thread-safe. */
typedef dm_policy_set_t *(*dm_ingest_policy_fn)(void *ctx);
/* Installs fn: from then on a register whose contract breaks a contract
 * rule of the set (dm_policy_check_contract) is refused with
 * DM_ERR_DENIED, every broken rule named with its policy and the set's
 * version. Call before the first request is forwarded. fn NULL: no check. */
void dm_ingest_set_policy(dm_ingest_t *self, dm_ingest_policy_fn fn, void *ctx);

/* The write decision on a register's parsed contract c (JSON or YAML) for
 * caller, whose admin check the node loop made: true to go on; false with
 * the refusal in text (may stay empty). refused non-NULL: the pipeline
 * refuses the register for that reason (an unparsable contract, c NULL;
 * another domain; broken contract rules) and the hook records it, unless
 * its own decision denies, whose text then replaces the pipeline's. Called
 * once per register on the validator thread: it must be thread-safe. */
typedef bool (*dm_ingest_register_fn)(void *ctx, const dm_rpc_caller_t *caller,
                                      const dm_contract_t *c, const char *refused,
                                      dm_buf_t *text);
/* Installs fn (NULL: none). Call before the first request is forwarded. */
void dm_ingest_set_register_gate(dm_ingest_t *self, dm_ingest_register_fn fn, void *ctx);

/* dm_ingest_check with the contract rules of gov (may be NULL) applied to
 * a register, as a pipeline with dm_ingest_set_policy does: for tests.
 * text (may be NULL) gets the Error's message the client would get. */
DM_NODISCARD dm_err dm_ingest_check_policy(dm_registry_t *registry, const char *domain,
                                           dm_policy_set_t *gov, const void *data, size_t len,
                                           dm_buf_t *text);

/* An ingest run: the batches one `dmctl ingest` sends, tied by
 * IngestReq.run_id (docs/protocol.md). The writer reports a run's start
 * (its first batch committed), its completion (the batch marked run_last
 * committed; report holds the checks judged after it) or its failure (a
 * batch of the run failed to commit or was refused by the validator, the
 * run was abandoned for newer ones, or the node stopped first; error says
 * why). A run whose first batch fails reports START, then FAIL. */
typedef enum { DM_INGEST_RUN_START, DM_INGEST_RUN_COMPLETE, DM_INGEST_RUN_FAIL } dm_ingest_run_event;

#define DM_INGEST_RUN_ID_BYTES 16

typedef struct {
    dm_ingest_run_event event;
    uint8_t run_id[DM_INGEST_RUN_ID_BYTES];
    const char *domain, *name;
    const char *source;          /* the client's input name ("" if none) */
    int64_t at_ms;
    uint64_t accepted, quarantined; /* over the run so far */
    const void *report;          /* COMPLETE: a const dm_qreport_t * (quality/quality.h), or NULL */
    const char *error;           /* FAIL: why; NULL otherwise */
} dm_ingest_run_t;

/* Called on the writer thread for every run event; must not block long
 * (an append to a file is fine) and must not call back into the pipeline. */
typedef void (*dm_ingest_run_fn)(void *ctx, const dm_ingest_run_t *run);
/* Installs fn (NULL: none). Call before the first request is forwarded. */
void dm_ingest_set_run_hook(dm_ingest_t *self, dm_ingest_run_fn fn, void *ctx);

/* Asks the threads to finish the jobs already queued and stop; the writer
 * sends a single-frame DM_CTL_STOPPED to the outbox when done. The node loop
 * relays replies until then and calls dm_ingest_destroy. */
void dm_ingest_stop(dm_ingest_t *self, void *inbox_push);
/* Joins the threads and frees the pipeline. NULL-safe. */
void dm_ingest_destroy(dm_ingest_t **self_p);

#endif
