/* err.h: the one error enum of the project, its strerror, and the one way
 * to carry error detail.
 *
 * Library codes (MDB_*, SQLITE_*, errno, sodium's -1, zmq errno) are
 * translated to these at each module's edge.
 *
 * Error detail (every header points here):
 * - A function that can fail for a reason worth showing returns dm_err and
 *   takes `dm_buf_t *why` (base/buf.h) as its LAST parameter; NULL means the
 *   caller wants only the code.
 * - On failure the callee APPENDS one line, without a trailing newline,
 *   naming the input, the place (file:line:col, field, record line, peer)
 *   and what would be valid. It does not log that failure.
 * - The caller that handles the failure logs `why` once, or sends it to the
 *   client; a caller that only passes the failure up passes `why` on and
 *   logs nothing.
 * - Only the buffer's owner resets it, so several lines may accumulate.
 * - A validator that reports every problem of a document takes
 *   `dm_diags_t *diags` (base/diags.h) as its last parameter instead.
 * Not used: `char *err, size_t errcap` pairs, last-error getters, failures
 * that are only logged, and log-and-return (the caller logging it again).
 * Three documented exceptions, each for a reason its header gives:
 * dm_schema_validate returns a record's verdict (bool) and resets its
 * reasons buffer, reused record after record on the ingest hot path (the
 * reasons are the record's quarantine text, not a failure of the call);
 * json_scan reports a static message and offset, allocation-free; and the
 * store logs once, when it happens, that LMDB panicked and the environment
 * must be reopened: a state change of the whole store, beside the failed
 * call's own why. */
#ifndef DM_ERR_H
#define DM_ERR_H

#define DM_NODISCARD __attribute__((warn_unused_result))
#define DM_PRINTF(f, a) __attribute__((format(printf, f, a)))

typedef enum {
    DM_OK = 0,
    DM_ERR_NOMEM,    /* out of memory */
    DM_ERR_IO,       /* file or device I/O failed */
    DM_ERR_INVALID,  /* the input is malformed or breaks a rule */
    DM_ERR_NOTFOUND, /* the named thing does not exist */
    DM_ERR_EXISTS,   /* already there (for example a duplicate name) */
    DM_ERR_CONFLICT, /* refused: contradicts what is stored */
    DM_ERR_TOOBIG,   /* over a size limit */
    DM_ERR_STORE,    /* the LMDB store failed */
    DM_ERR_MAPFULL,  /* the LMDB map is full (handled by growing it) */
    DM_ERR_CRYPTO,   /* a key or signature operation failed */
    DM_ERR_NET,      /* a socket operation failed */
    DM_ERR_TIMEOUT,  /* no answer within the deadline */
    DM_ERR_PROTO,    /* a malformed or unexpected message */
    DM_ERR_DENIED,   /* refused by policy */
    DM_ERR_USAGE,    /* wrong command line */
    DM_ERR_BUSY,     /* the node cannot take this now; retry shortly */
    DM_ERR__COUNT
} dm_err;

/* Returns a static, human-readable description of err. Cannot fail. */
const char *dm_err_str(dm_err err);

#endif
