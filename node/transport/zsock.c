/* zsock.c: ZeroMQ socket creation and options (see zsock.h). */
#include "transport/zsock.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

static int s_int(void *s, int option, int value)
{
    return zmq_setsockopt(s, option, &value, sizeof value);
}

/* Applies opts to s; -1 (errno set) at the first option libzmq refuses. */
static int s_apply(void *s, const dm_zsock_opts_t *o)
{
    if (o->sndhwm && s_int(s, ZMQ_SNDHWM, o->sndhwm) != 0)
        return -1;
    if (o->rcvhwm && s_int(s, ZMQ_RCVHWM, o->rcvhwm) != 0)
        return -1;
    if (o->sndtimeo && s_int(s, ZMQ_SNDTIMEO, o->sndtimeo_ms) != 0)
        return -1;
    if (o->maxmsgsize &&
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &o->maxmsgsize, sizeof o->maxmsgsize) != 0)
        return -1;
    if (o->reconnect_ivl_max_ms &&
        s_int(s, ZMQ_RECONNECT_IVL_MAX, o->reconnect_ivl_max_ms) != 0)
        return -1;
    if (o->immediate && s_int(s, ZMQ_IMMEDIATE, 1) != 0)
        return -1;
    if (o->curve_server_secret &&
        (s_int(s, ZMQ_CURVE_SERVER, 1) != 0 ||
         zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, o->curve_server_secret, DM_ZSOCK_KEY_BYTES) != 0))
        return -1;
    if (o->zap_domain &&
        zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, o->zap_domain, strlen(o->zap_domain)) != 0)
        return -1;
    if (o->router_mandatory && s_int(s, ZMQ_ROUTER_MANDATORY, 1) != 0)
        return -1;
    if (o->curve_server_key &&
        (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, o->curve_server_key, DM_ZSOCK_KEY_BYTES) != 0 ||
         zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, o->curve_public, DM_ZSOCK_KEY_BYTES) != 0 ||
         zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, o->curve_secret, DM_ZSOCK_KEY_BYTES) != 0))
        return -1;
    return 0;
}

void *dm_zsock_new(void *ctx, int type, const dm_zsock_opts_t *opts, dm_buf_t *why)
{
    void *s = ctx ? zmq_socket(ctx, type) : NULL;
    if (!s) {
        if (why)
            dm_buf_printf(why, "cannot create a socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (s_int(s, ZMQ_LINGER, 0) != 0 || (opts && s_apply(s, opts) != 0)) {
        int saved = errno;
        if (why)
            dm_buf_printf(why, "cannot set the socket's options: %s", zmq_strerror(saved));
        zmq_close(s);
        errno = saved;
        return NULL;
    }
    return s;
}
