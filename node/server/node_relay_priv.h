/* node_relay_priv.h: what the two files of the relay share
 * (node_relay.c: the queries' remote tables; node_relay_wire.c: talking
 * to an owner on a connection). Not for other files. */
#ifndef DM_NODE_RELAY_PRIV_H
#define DM_NODE_RELAY_PRIV_H

#include "server/node_priv.h"
#include "transport/grant.h"

#define DM_NODE_RELAY_PASS_PRODUCTS_MAX 16 /* products of one passed query, at most */

typedef struct {
    char address[DM_ADDRESS_MAX];
    dm_rpc_client_t *client;
    int64_t idle_since_ms;
} dm_node__relay_idle_t;

struct dm_node__fedrelay {
    const dm_identity_t *id;
    dm_node__fedrelay_dir_fn dir;
    void *dir_ctx;
    dm_node__fedrelay_audit_fn audit;
    void *audit_ctx;
    pthread_mutex_t lock;
    dm_node__rows_t *rows; /* the owners' record counts, for the planner */
    dm_node__fedsess_t *sess; /* owners' sessions a later query may reuse */
    int64_t time_limit_ms;    /* the node's query time limit */
    dm_node__relay_idle_t idle[DM_NODE_RELAY_IDLE_MAX];
    size_t nidle;
    dm_registry_t *registry; /* this node's products (none pass through); may be NULL */
    char domain[DM_CATALOG_NAME_MAX + 1]; /* this node's domain */
};

/* One owner reached by a query. */
typedef struct {
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    char address[DM_ADDRESS_MAX];
    dm_rpc_client_t *client;
    uint8_t nonce[DM_GRANT_NONCE_BYTES]; /* the session's: the query's, or a reused one's */
    bool reused;        /* found in the relay's table: no FedOpen */
    bool stale;         /* reused, and its owner no longer knows it */
    bool kept;          /* in the relay's table: no FedClose either */
    uint64_t open_id;   /* the FedOpen's request id */
    bool open_pending;  /* its reply not read yet */
    bool broken;        /* the connection's state is unknown: never reused */
    dm_err failed;      /* the session failed: every later scan fails alike */
    char *failure;      /* its line */
    struct dm_query_rscan *scans; /* open scans, whose pulls ahead a wait may meet */
} dm_node__relay_session_t;

typedef struct {
    dm_query_remote_t remote; /* first: free gets it back */
    dm_node__fedrelay_t *relay;
    dm_rpc_caller_t caller;
    uint8_t *grant;
    size_t grant_len;
    char *sql;
    uint8_t nonce[DM_GRANT_NONCE_BYTES];
    char grant_problem[200]; /* "" when the grant looked usable */
    int64_t grant_expires_ms;
    bool grant_verified; /* the signature too (when a session is reused) */
    dm_node__remote_dir_t *dir;
    dm_node__relay_session_t sessions[DM_NODE_RELAY_OWNERS_MAX];
    size_t nsessions;
    /* Products whose relaying is audited already (entries of dir, which
     * stay put while the query holds it); past the table, every scan. */
    const dm_node__remote_t *audited[64];
    size_t naudited;
    /* A query passed through whole (node_relay_pass.c): its scan, what
     * moved, and the products for explain. */
    struct dm_query_rscan *pass;
    bool pass_explain;
    unsigned pass_trips;
    uint64_t pass_rows, pass_bytes;
    char pass_names[256];
    const dm_node__remote_t *pass_e[DM_NODE_RELAY_PASS_PRODUCTS_MAX]; /* its products */
    size_t pass_n;
    bool cache_only; /* the node loop's: only a kept session, only on an idle connection */
} dm_node__relay_query_t;

struct dm_query_rscan {
    dm_node__relay_query_t *q;
    dm_node__relay_session_t *s;
    char product[2 * DM_CATALOG_NAME_MAX + 2]; /* "domain.name" */
    char owner_hex[DM_ID_HEX_BYTES];
    char mesh_says[96]; /* "alive", "suspect since 12:01:03 UTC": for timeouts */
    uint64_t cursor;
    bool done;
    dm_buf_t first; /* the first batch, until next hands it over */
    uint32_t first_n;
    bool have_first;
    /* The next batch is asked for as soon as one arrives (the protocol
     * allows two pulls in flight), so the owner reads while the engine
     * works: ahead_id is that QueryNext, stash its reply when another
     * scan's wait on the same connection read it. */
    uint64_t ahead_id;
    Dm__Envelope *stash;
    struct dm_query_rscan *next_open; /* in s->scans */
};

/* ns left before deadline_ns, at most DM_NODE_RELAY_SCAN_MS. */
int64_t dm_node_relay__clip(int64_t deadline_ns);
/* A member state's name for errors ("not a member this node knows"). */
const char *dm_node_relay__state_name(int state);
/* Marks s failed with line (its first failure is kept) and its
 * connection broken. */
void dm_node_relay__fail(dm_node__relay_session_t *s, dm_err rc, const char *line);
/* Sends env to sc's owner, assigning *id, retrying the connection wait
 * (one poll slice each) until deadline_ns, cancel, or the newest directory
 * has the owner gone. The error names product and owner in why. */
DM_NODISCARD dm_err dm_node_relay__send(dm_query_rscan_t *sc, Dm__Envelope *env, uint64_t *id,
                                        int64_t deadline_ns, const atomic_bool *cancel,
                                        dm_buf_t *why);
/* Whether the owner has been quiet too long for sc's scan, judged as the
 * waits (a worker's and the loop's) judge it at now: DM_ERR_TIMEOUT with
 * the line in why when the deadline passed (the session is broken) or
 * nothing came since heard_ns for DM_NODE_RELAY_WAIT_MS (the session
 * fails); DM_OK otherwise. */
DM_NODISCARD dm_err dm_node_relay__silence(dm_query_rscan_t *sc, int64_t deadline_ns,
                                           int64_t heard_ns, int64_t now, dm_buf_t *why);
/* A failed read from sc's owner (rc, detail: what the read said): the
 * session broken, the line in why. */
void dm_node_relay__read_failed(dm_query_rscan_t *sc, dm_err rc, const dm_buf_t *detail,
                                dm_buf_t *why);
/* Waits for the reply to request id (and reads the session's FedOpen
 * reply on the way: an opened session goes into the relay's table),
 * polling every DM_NODE_RELAY_POLL_MS for cancel, the deadline and the
 * owner's state; replies for other scans' pulls ahead are stashed with
 * them, late ones dropped. *rep is the caller's. */
DM_NODISCARD dm_err dm_node_relay__wait(dm_query_rscan_t *sc, uint64_t id, int64_t deadline_ns,
                                        const atomic_bool *cancel, Dm__Envelope **rep,
                                        dm_buf_t *why);
/* rep's QueryRep, its cursor (when sc has none yet) and done taken into
 * sc; NULL when rep is another message (the session marked broken, why
 * naming the product, the owner and the message). */
Dm__QueryRep *dm_node_relay__query_rep(dm_query_rscan_t *sc, Dm__Envelope *rep, dm_buf_t *why);
/* Reads a QueryRep (or the owner's Error, returned named) into the scan;
 * rows appended to out when not NULL, else kept as its first batch. */
DM_NODISCARD dm_err dm_node_relay__take(dm_query_rscan_t *sc, Dm__Envelope *rep, dm_buf_t *out,
                                        uint32_t *nrows, dm_buf_t *why);

/* node_relay.c's parts the pass-through shares. */
/* "3f2a9c1e0b7d...": enough of key to find the node in meshq members. */
void dm_node_relay__short_hex(const uint8_t key[DM_ID_PUBLIC_BYTES], char out[24]);
/* The session sc's scan of e runs in (reused unless fresh, or new with a
 * FedOpen sent); NULL with the error in *rc and why. */
dm_node__relay_session_t *dm_node_relay__session_get(dm_node__relay_query_t *q,
                                                     dm_query_rscan_t *sc,
                                                     const dm_node__remote_t *e, bool fresh,
                                                     int64_t deadline_ns, dm_err *rc,
                                                     dm_buf_t *why);
/* Audits once per product and query that the consumer's query of it goes
 * to its owner. */
void dm_node_relay__audit_relayed(dm_node__relay_query_t *q, const dm_node__remote_t *e);
/* Verifies the query's whole grant as its owner would (a reused session);
 * DM_ERR_DENIED, audited, with the line in why. */
DM_NODISCARD dm_err dm_node_relay__grant_verify(dm_query_rscan_t *sc, const dm_node__remote_t *e,
                                                dm_buf_t *why);
/* Whether rep is the owner's refusal of a session it does not know. */
bool dm_node_relay__forgotten(const Dm__Envelope *rep);
/* node_relay_pass.c's parts the node loop's pass-through
 * (node_relay_loop.c) shares. */
/* Plans q's first request req: q->pass set (its scan, named after the
 * first product; its session not chosen) when the query passes whole,
 * and *covered when a kept session of the consumer's covers every product
 * it names; q->pass NULL when the engine runs it. DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_node_relay__pass_plan(dm_node__relay_query_t *q, const Dm__QueryReq *req,
                                             bool *covered);
/* Audits the passed query's products as relayed (once per query). */
void dm_node_relay__pass_audit(dm_node__relay_query_t *q);
/* The passed query's request to its owner (*env, its body *qr): q's SQL
 * with the client's req->max_rows, in sc's session. */
void dm_node_relay__pass_req(const dm_node__relay_query_t *q, const dm_query_rscan_t *sc,
                             const Dm__QueryReq *req, Dm__QueryReq *qr, Dm__Envelope *env);
/* Reads the owner's reply to the passed query into its counts (a
 * QueryRep's cursor and end; an Error's text named as a scan's would be);
 * DM_ERR_PROTO for any other message. */
DM_NODISCARD dm_err dm_node_relay__pass_take(dm_query_rscan_t *sc, Dm__Envelope *rep,
                                             dm_buf_t *why);
/* DM_ERR_NET naming product, owner and state since when the newest
 * directory has sc's owner other than alive (sc's session then failed);
 * DM_OK otherwise. */
DM_NODISCARD dm_err dm_node_relay__owner_gone(dm_query_rscan_t *sc, dm_buf_t *why);
/* Frees a scan (unlinked from its session's open scans). */
void dm_node_relay__scan_free(dm_query_rscan_t *sc);

#endif
