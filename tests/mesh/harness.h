/* harness.h: start real meshd processes and run the real tools from
 * Criterion tests. Nodes listen on loopback with a port the kernel picks
 * (tcp://127.0.0.1:*), so tests never collide; every wait is on a
 * condition with a deadline; every node started is stopped at exit. */
#ifndef DM_HARNESS_H
#define DM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define DM_H_WAIT_MS 15000 /* deadline for a node to come up or a condition to hold */

typedef struct {
    pid_t pid;
    char dir[512];
    char domain[64];
    char addr[400];
    char log[600];
} dm_h_node_t;

typedef struct {
    int status;   /* exit code, or 128+signal */
    char *out;    /* captured stdout, NUL-terminated; free with dm_h_result_free */
    char *err;    /* captured stderr */
} dm_h_result_t;

/* A fresh temporary directory (removed by dm_h_cleanup). */
const char *dm_h_tmpdir(void);
/* This test process's $XDG_CONFIG_HOME: a temporary directory the harness
 * sets (and removes) before the first node or tool runs, so a tool's
 * default identity is created there, never in the user's home. The
 * harness also unsets MESH_IDENTITY and MESH_NODE. */
const char *dm_h_config_home(void);
/* Starts meshd on dir for domain with extra arguments (NULL-terminated,
 * may be NULL) and waits until it serves (node.addr written). Returns
 * false if it did not come up within DM_H_WAIT_MS. */
bool dm_h_node_start(dm_h_node_t *n, const char *dir, const char *domain, const char *const *extra);
/* Starts n nodes, node i for domains[i] in TMPDIR/DOMAIN, each but the
 * first joined to the first. dirs (may be NULL): n buffers of dir_size
 * bytes, laid end to end, that receive the directories. Returns -1 when
 * all started, else the first node that did not (the rest are not started). */
int dm_h_star_start(dm_h_node_t *nodes, int n, const char *const *domains, char *dirs,
                    size_t dir_size);
/* Sends sig and waits for the process to exit (SIGKILL after a deadline). */
void dm_h_node_signal(dm_h_node_t *n, int sig);
/* Runs bin/NAME with args (NULL-terminated) and optional stdin text;
 * waits at most timeout_ms (then kills it and reports status 124). */
dm_h_result_t dm_h_run(const char *name, const char *const *args, const char *stdin_text,
                       int timeout_ms);
void dm_h_result_free(dm_h_result_t *r);
/* The last non-empty line of text (static buffer). */
const char *dm_h_last_line(const char *text);
/* Writes text to path. */
void dm_h_write(const char *path, const char *text);
/* Path of a built binary or a source file. */
const char *dm_h_bin(const char *name);
const char *dm_h_src(const char *rel);
/* Stops every node still running and removes temp dirs. Registered with
 * atexit by the first start, safe to call twice. */
void dm_h_cleanup(void);
/* Monotonic milliseconds. */
long long dm_h_now_ms(void);

#endif

/* ---- an outsider on the wire ----
 * A CURVE DEALER of the test's own, authenticated with any ed25519
 * identity (a stranger's throwaway key, or a key that signs forged
 * entries), that sends raw frames or envelopes to a node and reads its
 * replies. It speaks the transport like a real peer, so an attack test
 * reaches exactly the code an outsider reaches. */

typedef struct dm_identity dm_identity_t;
typedef struct dm_h_raw dm_h_raw_t;

/* Connects to the node's self-certifying address as identity id, claimed
 * in the handshake as the tools do, so the node knows the caller (NULL: a
 * fresh throwaway key the node cannot verify: public reads only). NULL if
 * the address does not parse. */
dm_h_raw_t *dm_h_raw_new(const char *node_addr, const dm_identity_t *id);
/* Closes the socket, waiting at most 2 s to deliver what is queued. */
void dm_h_raw_destroy(dm_h_raw_t **self_p);
/* Sends one frame of len bytes (data may be NULL when len is 0). */
bool dm_h_raw_send(dm_h_raw_t *self, const void *data, size_t len);
/* Packs a dm.Envelope (as const void * to keep protobuf out of this
 * header) and sends it. */
bool dm_h_raw_send_env(dm_h_raw_t *self, const void *envelope);
/* Receives one frame within timeout_ms into a malloc'd buffer (*len set);
 * NULL on timeout. */
void *dm_h_raw_recv(dm_h_raw_t *self, size_t *len, int timeout_ms);
/* Sends a dm.Envelope and returns the unpacked reply (a Dm__Envelope
 * the caller frees), NULL when the send fails, no reply comes within
 * timeout_ms or it does not unpack. */
void *dm_h_raw_call(dm_h_raw_t *self, const void *envelope, int timeout_ms);

/* The node's own identity (DIR/identity.key): a domain admin, for a raw
 * client whose requests must pass the access check to reach the code
 * under test. The caller destroys it; NULL if it cannot be read. */
dm_identity_t *dm_h_node_identity(const dm_h_node_t *n);
/* A raw client acting as node n's own key (dm_h_raw_new with
 * dm_h_node_identity); NULL on failure. */
dm_h_raw_t *dm_h_raw_admin(const dm_h_node_t *n);

/* Pings the node with a fresh client and returns the round trip in ms, or
 * -1 if no Pong came within timeout_ms. */
long long dm_h_ping_ms(const dm_h_node_t *n, int timeout_ms);
