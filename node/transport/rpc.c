/* rpc.c: CurveZMQ ROUTER server with a ZAP handler, DEALER client, and
 * who called: the CURVE key the handshake authenticated (the ZAP User-Id)
 * and the ed25519 identity the client claims in its handshake metadata,
 * believed only when it converts to that CURVE key. */
#include "transport/rpc.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "identity/identity.h"
#include "base/log.h"
#include "transport/ctl.h"
#include "transport/envelope.h"
#include "transport/zsock.h"

#define DM_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define DM_ZAP_CONTROL "inproc://dm-zap-control"
#define DM_CURVE_KEY_BYTES DM_ID_CURVE_BYTES
/* libzmq 4.3 declares ZMQ_METADATA only under ZMQ_BUILD_DRAFT_API, yet a
 * library built with the draft API (Debian's, for one) implements it; one
 * built without refuses it with EINVAL, which dm_rpc_client_new_as
 * reports. Its value is fixed in libzmq's zmq.h. */
#ifndef ZMQ_METADATA
#define ZMQ_METADATA 95
#endif
#define S_CALLER_CACHE 16 /* verified-or-not answers kept per thread */

/* ---- envelopes ---- */

dm_err dm_rpc_pack(const Dm__Envelope *env, void *zmq_msg)
{
    size_t len = dm__envelope__get_packed_size(env);
    if (zmq_msg_init_size(zmq_msg, len) != 0)
        return DM_ERR_NOMEM;
    dm__envelope__pack(env, zmq_msg_data(zmq_msg));
    return DM_OK;
}

Dm__Envelope *dm_rpc_unpack(const void *data, size_t len)
{
    if (!data && len)
        return NULL;
    Dm__Envelope *env = dm__envelope__unpack(NULL, len, data);
    if (!env || env->body_case == DM__ENVELOPE__BODY__NOT_SET ||
        env->body_case == DM__ENVELOPE__BODY_SWIM)
        return env;
    /* Every other body is a sub-message: handlers dereference it, so a
     * body case without its message is malformed, whatever protobuf-c
     * does with an empty one. All share one union slot. */
    if (!env->error) {
        dm__envelope__free_unpacked(env, NULL);
        return NULL;
    }
    return env;
}

/* The options every socket of ours carries (zsock.h adds linger 0). */
static const dm_zsock_opts_t s_common = {.maxmsgsize = DM_RPC_MAX_MSG_BYTES};


/* ---- ZAP handler ----
 * Answers libzmq's authentication requests (RFC 27). Only CURVE in our
 * domain is accepted; the client's public key becomes the message User-Id
 * (64 hex chars), so handlers know who asked. Any other mechanism, domain
 * or malformed request is refused. */

static void s_zap_reply(void *rep, const zmq_msg_t *version, const zmq_msg_t *reqid,
                        const char *code, const char *text, const char *user)
{
    zmq_send(rep, zmq_msg_data((zmq_msg_t *)version), zmq_msg_size((zmq_msg_t *)version),
             ZMQ_SNDMORE);
    zmq_send(rep, zmq_msg_data((zmq_msg_t *)reqid), zmq_msg_size((zmq_msg_t *)reqid),
             ZMQ_SNDMORE);
    zmq_send(rep, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(rep, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(rep, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(rep, "", 0, 0);
}

static void s_zap_handle(void *rep)
{
    enum { ZAP_FRAMES = 7 };
    zmq_msg_t f[ZAP_FRAMES + 1];
    int n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_init(&tmp);
        if (zmq_msg_recv(&tmp, rep, 0) < 0) {
            zmq_msg_close(&tmp);
            break;
        }
        more = zmq_msg_more(&tmp);
        if (n < ZAP_FRAMES + 1)
            f[n++] = tmp;
        else
            zmq_msg_close(&tmp);
    }
    if (n < 6) {
        /* Too short to answer properly: REP still needs a reply. */
        zmq_send(rep, "", 0, 0);
        goto out;
    }
    const char *mech = zmq_msg_data(&f[5]);
    size_t mech_len = zmq_msg_size(&f[5]);
    const char *dom = zmq_msg_data(&f[2]);
    size_t dom_len = zmq_msg_size(&f[2]);
    bool curve = mech_len == 5 && memcmp(mech, "CURVE", 5) == 0;
    bool domain_ok = dom_len == strlen(DM_RPC_ZAP_DOMAIN) &&
                     memcmp(dom, DM_RPC_ZAP_DOMAIN, dom_len) == 0;
    if (!curve || !domain_ok || n != ZAP_FRAMES || zmq_msg_size(&f[6]) != DM_CURVE_KEY_BYTES) {
        s_zap_reply(rep, &f[0], &f[1], "400", "only CURVE clients are accepted", "");
        goto out;
    }
    char user[2 * DM_CURVE_KEY_BYTES + 1];
    sodium_bin2hex(user, sizeof user, zmq_msg_data(&f[6]), DM_CURVE_KEY_BYTES);
    s_zap_reply(rep, &f[0], &f[1], "200", "OK", user);
out:
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

/* ---- server ---- */

struct dm_rpc_server {
    void *ctx;
    void *router;
    void *zap_rep; /* bound here, then used only by the ZAP thread */
    void *zap_ctl;
    pthread_t zap_thread;
    bool zap_running;
    char endpoint[DM_ID_ENDPOINT_MAX];
};

/* The ZAP REP socket must exist (bound) before the ROUTER binds, so it is
 * bound in this thread and then only used by the handler thread. libzmq
 * sockets may migrate between threads with a full memory barrier, which
 * pthread_create provides. */
static void *s_zap_thread(void *arg)
{
    dm_rpc_server_t *self = arg;
    void *rep = self->zap_rep;
    void *ctl = dm_zsock_new(self->ctx, ZMQ_PAIR, NULL, NULL);
    if (!ctl || zmq_connect(ctl, DM_ZAP_CONTROL) != 0) {
        dm_log_err("zap: cannot connect control socket: %s", zmq_strerror(errno));
        if (ctl)
            zmq_close(ctl);
        return NULL;
    }
    zmq_pollitem_t items[2] = {{rep, 0, ZMQ_POLLIN, 0}, {ctl, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            char name[sizeof DM_CTL_STOP];
            int n = zmq_recv(ctl, name, sizeof name, 0);
            if (n >= 0 && dm_ctl_is(name, (size_t)n, DM_CTL_STOP))
                break;
            continue;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_zap_handle(rep);
    }
    zmq_close(ctl);
    return NULL;
}

dm_err dm_rpc_server_new(void *ctx, const char *endpoint, const uint8_t curve_secret[DM_ID_CURVE_BYTES],
                         dm_rpc_server_t **out, dm_buf_t *why)
{
    *out = NULL;
    dm_err rc = DM_ERR_NET;
    dm_rpc_server_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    self->ctx = ctx;

    self->zap_rep = dm_zsock_new(ctx, ZMQ_REP, &s_common, NULL);
    self->zap_ctl = self->zap_rep ? dm_zsock_new(ctx, ZMQ_PAIR, &s_common, NULL) : NULL;
    if (!self->zap_rep || !self->zap_ctl || zmq_bind(self->zap_rep, DM_ZAP_ENDPOINT) != 0 ||
        zmq_bind(self->zap_ctl, DM_ZAP_CONTROL) != 0) {
        dm_buf_why(why, "cannot start the ZAP handler: %s", zmq_strerror(errno));
        goto fail;
    }
    if (pthread_create(&self->zap_thread, NULL, s_zap_thread, self) != 0) {
        dm_buf_why(why, "cannot start the ZAP handler thread");
        goto fail;
    }
    self->zap_running = true;

    dm_zsock_opts_t ropts = s_common;
    ropts.curve_server_secret = curve_secret;
    ropts.zap_domain = DM_RPC_ZAP_DOMAIN;
    ropts.router_mandatory = true;
    self->router = dm_zsock_new(ctx, ZMQ_ROUTER, &ropts, NULL);
    if (!self->router) {
        dm_buf_why(why, "cannot configure the RPC socket: %s", zmq_strerror(errno));
        goto fail;
    }
    if (zmq_bind(self->router, endpoint) != 0) {
        dm_buf_why(why, "cannot listen on %s: %s (valid: tcp://HOST:PORT, a free port)", endpoint,
              zmq_strerror(errno));
        goto fail;
    }
    size_t eplen = sizeof self->endpoint;
    if (zmq_getsockopt(self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &eplen) != 0)
        snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    *out = self;
    return DM_OK;
fail:
    dm_rpc_server_destroy(&self);
    return rc;
}

void dm_rpc_server_destroy(dm_rpc_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_rpc_server_t *self = *self_p;
    if (self->router)
        zmq_close(self->router);
    if (self->zap_running) {
        dm_ctl_send(self->zap_ctl, DM_CTL_STOP);
        pthread_join(self->zap_thread, NULL);
    }
    if (self->zap_rep)
        zmq_close(self->zap_rep);
    if (self->zap_ctl)
        zmq_close(self->zap_ctl);
    free(self);
    *self_p = NULL;
}

void *dm_rpc_server_socket(dm_rpc_server_t *self) { return self->router; }

void dm_rpc_server_send(dm_rpc_server_t *self, void *rid, const Dm__Envelope *env)
{
    zmq_msg_t msg;
    if (dm_rpc_pack(env, &msg) != DM_OK)
        return;
    if (zmq_msg_send(rid, self->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(&msg, self->router, ZMQ_DONTWAIT) < 0) {
        /* The client left (EHOSTUNREACH) or its queue is full: drop. */
        dm_log_debug("reply dropped: %s", zmq_strerror(errno));
        zmq_msg_close(&msg);
    }
}

void dm_rpc_server_send_error(dm_rpc_server_t *self, void *rid, uint64_t id, dm_err code,
                              const char *text)
{
    Dm__Envelope env;
    Dm__Error e;
    dm_envelope_error(&env, &e, id, code, text);
    dm_rpc_server_send(self, rid, &env);
}

const char *dm_rpc_server_endpoint(dm_rpc_server_t *self) { return self->endpoint; }

/* ---- who called ----
 * Converting an ed25519 key to its CURVE key costs about 70 us (a point
 * decompression and a subgroup check), too much to pay for every request
 * of a connection. Each thread (the node loop, each query worker) keeps
 * the last few answers for (claimed key, CURVE key) pairs, both outcomes,
 * so a client repeating a false claim costs no more than an honest one.
 * Thread-local: nothing is shared, nothing to lock. */

typedef struct {
    uint8_t ed[DM_ID_PUBLIC_BYTES];
    uint8_t curve[DM_CURVE_KEY_BYTES];
    bool used, match;
} s_caller_entry_t;

static _Thread_local s_caller_entry_t s_caller_cache[S_CALLER_CACHE];
static _Thread_local unsigned s_caller_next;

/* True if curve is the CURVE key of ed25519 key ed. */
static bool s_claim_matches(const uint8_t ed[DM_ID_PUBLIC_BYTES],
                            const uint8_t curve[DM_CURVE_KEY_BYTES])
{
    for (unsigned i = 0; i < S_CALLER_CACHE; i++) {
        const s_caller_entry_t *e = &s_caller_cache[i];
        if (e->used && memcmp(e->ed, ed, sizeof e->ed) == 0 &&
            memcmp(e->curve, curve, sizeof e->curve) == 0)
            return e->match;
    }
    uint8_t derived[DM_CURVE_KEY_BYTES];
    bool match = dm_identity_curve_from_id(ed, derived) == DM_OK &&
                 sodium_memcmp(derived, curve, sizeof derived) == 0;
    s_caller_entry_t *e = &s_caller_cache[s_caller_next++ % S_CALLER_CACHE];
    memcpy(e->ed, ed, sizeof e->ed);
    memcpy(e->curve, curve, sizeof e->curve);
    e->used = true;
    e->match = match;
    return match;
}

void dm_rpc_caller(void *msg, dm_rpc_caller_t *out)
{
    memset(out, 0, sizeof *out);
    uint8_t curve[DM_CURVE_KEY_BYTES];
    const char *user = zmq_msg_gets(msg, "User-Id");
    if (!user || !dm_identity_key_parse(user, curve))
        return;
    memcpy(out->key, curve, sizeof out->key);
    /* The property came inside the CURVE handshake, so only the holder of
     * the CURVE secret could have sent it; the conversion check then ties
     * the claimed identity to that secret. */
    const char *claim = zmq_msg_gets(msg, DM_RPC_KEY_PROPERTY);
    uint8_t ed[DM_ID_PUBLIC_BYTES];
    if (claim && dm_identity_key_parse(claim, ed) && s_claim_matches(ed, curve)) {
        memcpy(out->key, ed, sizeof out->key);
        out->verified = true;
    }
}

void dm_rpc_caller_hex(const dm_rpc_caller_t *c, char out[DM_RPC_CALLER_HEX_BYTES])
{
    char hex[DM_ID_HEX_BYTES];
    dm_identity_key_hex(c->key, hex);
    snprintf(out, DM_RPC_CALLER_HEX_BYTES, "%s%s", c->verified ? "" : "curve:", hex);
}

/* ---- client ---- */

struct dm_client {
    void *ctx;
    void *dealer;
    int timeout_ms;
    uint64_t next_id;
    char address[DM_ADDRESS_MAX];
};

/* Sets the handshake property that names the caller's ed25519 identity.
 * DM_ERR_NET with a line in why if libzmq cannot. */
static dm_err s_claim_identity(void *dealer, const dm_identity_t *id, dm_buf_t *why)
{
    char prop[sizeof DM_RPC_KEY_PROPERTY + DM_ID_HEX_BYTES];
    char hex[DM_ID_HEX_BYTES];
    dm_identity_hex(id, hex);
    snprintf(prop, sizeof prop, "%s:%s", DM_RPC_KEY_PROPERTY, hex);
    if (zmq_setsockopt(dealer, ZMQ_METADATA, prop, strlen(prop)) != 0) {
        dm_buf_why(why,
                   "cannot send the identity %s in the handshake: this libzmq refuses "
                   "ZMQ_METADATA (%s); a libzmq 4.3 built with the draft API is needed",
                   hex, zmq_strerror(errno));
        return DM_ERR_NET;
    }
    return DM_OK;
}

dm_err dm_rpc_client_new(const char *address, int timeout_ms, dm_rpc_client_t **out,
                         dm_buf_t *why)
{
    return dm_rpc_client_new_as(address, timeout_ms, NULL, out, why);
}

/* The client's CURVE key pair: the identity's, or a throwaway one. */
static dm_err s_client_keys(const dm_identity_t *id, uint8_t cpub[DM_CURVE_KEY_BYTES],
                            uint8_t csec[DM_CURVE_KEY_BYTES], dm_buf_t *why)
{
    if (sodium_init() < 0) {
        dm_buf_why(why, "libsodium failed to initialise");
        return DM_ERR_CRYPTO;
    }
    if (id)
        return dm_identity_curve_keys(id, cpub, csec, why);
    crypto_box_keypair(cpub, csec);
    return DM_OK;
}

dm_err dm_rpc_client_new_as(const char *address, int timeout_ms, const dm_identity_t *id,
                            dm_rpc_client_t **out, dm_buf_t *why)
{
    *out = NULL;
    uint8_t node_id[DM_ID_PUBLIC_BYTES];
    uint8_t server_curve[DM_CURVE_KEY_BYTES];
    char endpoint[DM_ID_ENDPOINT_MAX];
    dm_buf_t reason = DM_BUF_INIT;
    if (dm_identity_address_parse(address, node_id, endpoint, sizeof endpoint, &reason) !=
        DM_OK) {
        dm_buf_why(why, "invalid node address '%s': %s", address, reason.data ? reason.data : "?");
        dm_buf_free(&reason);
        return DM_ERR_USAGE;
    }
    if (dm_identity_curve_from_id(node_id, server_curve) != DM_OK) {
        dm_buf_why(why, "invalid node address '%s': the key is not a valid ed25519 key", address);
        return DM_ERR_USAGE;
    }
    uint8_t cpub[DM_CURVE_KEY_BYTES], csec[DM_CURVE_KEY_BYTES];
    dm_err err = s_client_keys(id, cpub, csec, why);
    if (err)
        return err;
    dm_rpc_client_t *self = calloc(1, sizeof *self);
    if (!self) {
        sodium_memzero(csec, sizeof csec);
        return DM_ERR_NOMEM;
    }
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : DM_RPC_DEFAULT_TIMEOUT_MS;
    self->next_id = 1;
    snprintf(self->address, sizeof self->address, "%s", address);
    self->ctx = zmq_ctx_new();
    dm_zsock_opts_t copts = s_common;
    copts.immediate = true;
    /* Every request gets one reply and clients keep at most a few in
     * flight (a query's two pulls, a relay's FedOpen and QueryReq), so a
     * node that sends more than that unasked is hostile: ZeroMQ stops
     * reading from it past this mark instead of queueing up to 1,000
     * messages of DM_RPC_MAX_MSG_BYTES each (a relay's idle cached
     * connections are never read). */
    copts.rcvhwm = DM_RPC_CLIENT_RCVHWM;
    copts.curve_server_key = server_curve;
    copts.curve_public = cpub;
    copts.curve_secret = csec;
    self->dealer = self->ctx ? dm_zsock_new(self->ctx, ZMQ_DEALER, &copts, NULL) : NULL;
    sodium_memzero(csec, sizeof csec);
    if (self->dealer && id)
        err = s_claim_identity(self->dealer, id, why);
    if (!err && (!self->dealer || zmq_connect(self->dealer, endpoint) != 0)) {
        dm_buf_why(why, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        err = DM_ERR_NET;
    }
    if (err) {
        dm_rpc_client_destroy(&self);
        return err;
    }
    *out = self;
    return DM_OK;
}

void dm_rpc_client_destroy(dm_rpc_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_rpc_client_t *self = *self_p;
    if (self->dealer)
        zmq_close(self->dealer);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    free(self);
    *self_p = NULL;
}

/* The timeout message: no connection (ZMQ_IMMEDIATE: the CURVE handshake
 * never completed) points at the address; a connection that answered
 * nothing points at the node's load, not at it being down. */
static dm_err s_timeout(dm_rpc_client_t *self, const char *what, dm_buf_t *why)
{
    if (strcmp(what, "connection") == 0)
        dm_buf_why(why,
                 "no connection to node %s within %d.%03d s: is meshd running there, and is the "
                 "address (key and endpoint) current? (--timeout SECONDS waits longer)",
                 self->address, self->timeout_ms / 1000, self->timeout_ms % 1000);
    else
        dm_buf_why(why,
                 "node %s accepted the connection but sent no %s within %d.%03d s: it is "
                 "overloaded, the request is slow, or it stopped since; retry later or wait "
                 "longer (--timeout SECONDS)",
                 self->address, what, self->timeout_ms / 1000, self->timeout_ms % 1000);
    return DM_ERR_TIMEOUT;
}

/* Polls the dealer for events (ZMQ_POLLIN or ZMQ_POLLOUT) up to the
 * timeout: DM_OK when ready, else the error named in why (what: for the
 * timeout's wording). */
static dm_err s_ready(dm_rpc_client_t *self, short events, const char *what, dm_buf_t *why)
{
    zmq_pollitem_t item = {self->dealer, 0, events, 0};
    int rc = zmq_poll(&item, 1, self->timeout_ms);
    if (rc < 0) {
        dm_buf_why(why, "poll failed: %s", zmq_strerror(errno));
        return DM_ERR_NET;
    }
    return rc == 0 ? s_timeout(self, what, why) : DM_OK;
}

/* Sending and receiving try at once and poll only when they would block:
 * a poll costs system calls (ZeroMQ's own plus the kernel's) on every
 * request of a relay's hot path, and usually the socket is ready. */
/* req numbered with the client's next id (*id) and packed into msg. */
static dm_err s_pack_next(dm_rpc_client_t *self, Dm__Envelope *req, uint64_t *id, zmq_msg_t *msg,
                          dm_buf_t *why)
{
    req->id = self->next_id++;
    if (id)
        *id = req->id;
    if (dm_rpc_pack(req, msg) != DM_OK) {
        dm_buf_why(why, "out of memory packing a request");
        return DM_ERR_NOMEM;
    }
    return DM_OK;
}

dm_err dm_rpc_client_send(dm_rpc_client_t *self, Dm__Envelope *req, uint64_t *id, dm_buf_t *why)
{
    zmq_msg_t msg;
    dm_err rc = s_pack_next(self, req, id, &msg, why);
    if (rc != DM_OK)
        return rc;
    for (bool polled = false; zmq_msg_send(&msg, self->dealer, ZMQ_DONTWAIT) < 0; polled = true) {
        if (errno != EAGAIN) {
            dm_buf_why(why, "send to %s failed: %s", self->address, zmq_strerror(errno));
            rc = DM_ERR_NET;
        } else if (!polled) {
            rc = s_ready(self, ZMQ_POLLOUT, "connection", why);
        } else { /* writable, yet it would block: as a timeout */
            rc = s_timeout(self, "connection", why);
        }
        if (rc != DM_OK) {
            zmq_msg_close(&msg);
            return rc;
        }
    }
    return DM_OK;
}

dm_err dm_rpc_client_send_now(dm_rpc_client_t *self, Dm__Envelope *req, uint64_t *id,
                              dm_buf_t *why)
{
    zmq_msg_t msg;
    dm_err rc = s_pack_next(self, req, id, &msg, why);
    if (rc != DM_OK)
        return rc;
    if (zmq_msg_send(&msg, self->dealer, ZMQ_DONTWAIT) >= 0)
        return DM_OK;
    int err = errno;
    rc = err == EAGAIN ? DM_ERR_TIMEOUT : DM_ERR_NET;
    dm_buf_why(why, "send to %s failed: %s", self->address,
               rc == DM_ERR_TIMEOUT ? "not connected or its queue is full" : zmq_strerror(err));
    zmq_msg_close(&msg);
    return rc;
}

void *dm_rpc_client_socket(dm_rpc_client_t *self) { return self->dealer; }

dm_err dm_rpc_client_recv(dm_rpc_client_t *self, Dm__Envelope **rep, dm_buf_t *why)
{
    *rep = NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    dm_err rc = DM_OK;
    for (bool polled = false; zmq_msg_recv(&msg, self->dealer, ZMQ_DONTWAIT) < 0; polled = true) {
        if (errno != EAGAIN) {
            dm_buf_why(why, "receive from %s failed: %s", self->address, zmq_strerror(errno));
            rc = DM_ERR_NET;
        } else if (!polled) {
            rc = s_ready(self, ZMQ_POLLIN, "answer", why);
        } else {
            rc = s_timeout(self, "answer", why);
        }
        if (rc != DM_OK) {
            zmq_msg_close(&msg);
            return rc;
        }
    }
    *rep = dm_rpc_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
    zmq_msg_close(&msg);
    if (!*rep) {
        dm_buf_why(why, "node %s sent a malformed reply", self->address);
        return DM_ERR_PROTO;
    }
    return DM_OK;
}

dm_err dm_rpc_client_call(dm_rpc_client_t *self, Dm__Envelope *req, Dm__Envelope **rep,
                         dm_buf_t *why)
{
    uint64_t id;
    *rep = NULL;
    dm_err rc = dm_rpc_client_send(self, req, &id, why);
    if (rc != DM_OK)
        return rc;
    for (;;) {
        rc = dm_rpc_client_recv(self, rep, why);
        if (rc != DM_OK)
            return rc;
        if ((*rep)->id == id)
            return DM_OK;
        /* A late reply to an abandoned request: skip it. */
        dm__envelope__free_unpacked(*rep, NULL);
        *rep = NULL;
    }
}
