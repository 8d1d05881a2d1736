/* harness.c: process control for tests that drive real meshd and tools. */
#include "base/clock.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

#include "identity/identity.h"
#include "proto/mesh.pb-c.h"
#include "transport/envelope.h"
#include "transport/rpc.h"
#include "fixture.h"

#define DM_H_MAX_NODES 64
#define DM_H_MAX_DIRS 64
#define DM_H_POLL_MS 20 /* poll interval while waiting on a condition */

static pid_t s_pids[DM_H_MAX_NODES]; /* nodes still running */
static char *s_dirs[DM_H_MAX_DIRS];
static bool s_atexit;
static bool s_isolated; /* XDG_CONFIG_HOME set to a dir of ours (removed at cleanup) */

long long dm_h_now_ms(void) { return dm_clock_mono_ms(); }

static char *s_keep_dir(const char *d);

/* The tools keep a person's identity in $XDG_CONFIG_HOME/datamesh/identity,
 * created on first use: every test process gets its own config directory
 * so no run writes to the user's home or picks up the user's key, and
 * MESH_IDENTITY / MESH_NODE from the caller's shell cannot change what a
 * tool acts as or talks to. */
static void s_isolate_env(void)
{
    char tmpl[64];
    char *d = dm_t_tmpdir(tmpl, sizeof tmpl, "xdg");
    if (d) {
        s_keep_dir(d);
        setenv("XDG_CONFIG_HOME", d, 1);
    }
    unsetenv("MESH_IDENTITY");
    unsetenv("MESH_NODE");
}

static void s_register_cleanup(void)
{
    if (!s_atexit) {
        atexit(dm_h_cleanup);
        s_atexit = true;
    }
    if (!s_isolated) {
        s_isolate_env();
        s_isolated = true;
    }
}

/* Remembers d for removal at cleanup; returns the kept copy. */
static char *s_keep_dir(const char *d)
{
    for (int i = 0; i < DM_H_MAX_DIRS; i++)
        if (!s_dirs[i]) {
            s_dirs[i] = strdup(d);
            return s_dirs[i];
        }
    return strdup(d);
}

const char *dm_h_tmpdir(void)
{
    s_register_cleanup();
    char tmpl[64];
    char *d = dm_t_tmpdir(tmpl, sizeof tmpl, "mesh");
    return d ? s_keep_dir(d) : NULL;
}

const char *dm_h_config_home(void)
{
    s_register_cleanup();
    return getenv("XDG_CONFIG_HOME");
}

const char *dm_h_bin(const char *name)
{
    static char path[8][600];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 600, "%s/%s", DM_BIN_DIR, name);
    return p;
}

const char *dm_h_src(const char *rel)
{
    static char path[8][600];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 600, "%s/%s", DM_SOURCE_DIR, rel);
    return p;
}

void dm_h_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

static bool s_read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return n > 0;
}

bool dm_h_node_start(dm_h_node_t *n, const char *dir, const char *domain, const char *const *extra)
{
    s_register_cleanup();
    snprintf(n->dir, sizeof n->dir, "%s", dir);
    snprintf(n->domain, sizeof n->domain, "%s", domain);
    snprintf(n->log, sizeof n->log, "%s.log", dir);
    char addr_path[600];
    snprintf(addr_path, sizeof addr_path, "%s/node.addr", dir);
    unlink(addr_path);
    const char *argv[32] = {dm_h_bin("meshd"), "--data", dir, "--domain", domain,
                            "--listen", "tcp://127.0.0.1:*", "--log-level", "debug"};
    int argc = 9;
    for (int i = 0; extra && extra[i] && argc < 31; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    n->pid = pid;
    for (int i = 0; i < DM_H_MAX_NODES; i++)
        if (!s_pids[i]) {
            s_pids[i] = pid;
            break;
        }
    long long deadline = dm_h_now_ms() + DM_H_WAIT_MS;
    while (dm_h_now_ms() < deadline) {
        if (s_read_file(addr_path, n->addr, sizeof n->addr))
            return true;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            n->pid = 0;
            return false;
        }
        poll(NULL, 0, DM_H_POLL_MS);
    }
    return false;
}

int dm_h_star_start(dm_h_node_t *nodes, int n, const char *const *domains, char *dirs,
                    size_t dir_size)
{
    const char *tmp = dm_h_tmpdir();
    if (!tmp)
        return 0;
    for (int i = 0; i < n; i++) {
        char own[600];
        char *dir = dirs ? dirs + (size_t)i * dir_size : own;
        snprintf(dir, dirs ? dir_size : sizeof own, "%s/%s", tmp, domains[i]);
        const char *join[] = {"--join", nodes[0].addr, NULL};
        if (!dm_h_node_start(&nodes[i], dir, domains[i], i ? join : NULL))
            return i;
    }
    return -1;
}

/* Signals pid and reaps it, escalating to SIGKILL after the deadline. */
static void s_stop_pid(pid_t pid, int sig)
{
    kill(pid, sig);
    long long deadline = dm_h_now_ms() + DM_H_WAIT_MS;
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (dm_h_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        poll(NULL, 0, DM_H_POLL_MS);
    }
    for (int i = 0; i < DM_H_MAX_NODES; i++)
        if (s_pids[i] == pid)
            s_pids[i] = 0;
}

void dm_h_node_signal(dm_h_node_t *n, int sig)
{
    if (n->pid <= 0)
        return;
    s_stop_pid(n->pid, sig);
    n->pid = 0;
}

/* Appends what is readable on fd to *buf. Returns false at EOF. */
static bool s_drain(int fd, char **buf, size_t *len, size_t *cap)
{
    char tmp[65536];
    ssize_t r = read(fd, tmp, sizeof tmp);
    if (r <= 0)
        return r < 0 && (errno == EINTR || errno == EAGAIN);
    if (*len + (size_t)r + 1 > *cap) {
        *cap = (*len + (size_t)r + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, tmp, (size_t)r);
    *len += (size_t)r;
    (*buf)[*len] = 0;
    return true;
}

dm_h_result_t dm_h_run(const char *name, const char *const *args, const char *stdin_text,
                       int timeout_ms)
{
    s_register_cleanup();
    dm_h_result_t res = {0, NULL, NULL};
    int in[2], out[2], err[2];
    if (pipe(in) || pipe(out) || pipe(err)) {
        res.status = -1;
        return res;
    }
    const char *argv[64] = {dm_h_bin(name)};
    int argc = 1;
    for (int i = 0; args && args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(in[1]);
        close(out[0]);
        close(err[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (stdin_text) {
        size_t len = strlen(stdin_text), off = 0;
        while (off < len) {
            ssize_t w = write(in[1], stdin_text + off, len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    close(in[1]);
    size_t olen = 0, ocap = 1, elen = 0, ecap = 1;
    res.out = calloc(1, 1);
    res.err = calloc(1, 1);
    bool oopen = true, eopen = true;
    long long deadline = dm_h_now_ms() + timeout_ms;
    while (oopen || eopen) {
        long long left = deadline - dm_h_now_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
        if (poll(p, 2, (int)left) <= 0)
            continue;
        if (oopen && (p[0].revents & (POLLIN | POLLHUP)))
            oopen = s_drain(out[0], &res.out, &olen, &ocap);
        if (eopen && (p[1].revents & (POLLIN | POLLHUP)))
            eopen = s_drain(err[0], &res.err, &elen, &ecap);
        if (!oopen)
            p[0].fd = -1;
    }
    close(out[0]);
    close(err[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (oopen || eopen)
        res.status = 124;
    else if (WIFEXITED(st))
        res.status = WEXITSTATUS(st);
    else
        res.status = 128 + WTERMSIG(st);
    return res;
}

void dm_h_result_free(dm_h_result_t *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

const char *dm_h_last_line(const char *text)
{
    static char line[1024];
    line[0] = 0;
    if (!text)
        return line;
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    size_t start = n;
    while (start && text[start - 1] != '\n')
        start--;
    size_t len = n - start < sizeof line - 1 ? n - start : sizeof line - 1;
    memcpy(line, text + start, len);
    line[len] = 0;
    return line;
}

void dm_h_cleanup(void)
{
    for (int i = 0; i < DM_H_MAX_NODES; i++)
        if (s_pids[i])
            s_stop_pid(s_pids[i], SIGKILL);
    for (int i = 0; i < DM_H_MAX_DIRS; i++)
        if (s_dirs[i]) {
            if (!getenv("DM_KEEP_TMP")) {
                dm_t_rmdir(s_dirs[i]);
                char log[600];
                snprintf(log, sizeof log, "%s.log", s_dirs[i]);
                unlink(log);
            }
            free(s_dirs[i]);
            s_dirs[i] = NULL;
        }
    s_isolated = false;
}

/* ---- an outsider on the wire ---- */


#define DM_H_RAW_LINGER_MS 2000
/* Declared by libzmq 4.3 only under its draft API, implemented by the
 * builds we use (transport/rpc.c says more). */
#ifndef ZMQ_METADATA
#define ZMQ_METADATA 95
#endif

struct dm_h_raw {
    void *ctx;
    void *sock;
};

dm_h_raw_t *dm_h_raw_new(const char *node_addr, const dm_identity_t *id)
{
    uint8_t node_id[DM_ID_PUBLIC_BYTES], server[32], pub[32], sec[32];
    char ep[256];
    if (dm_identity_address_parse(node_addr, node_id, ep, sizeof ep, NULL) != DM_OK ||
        dm_identity_curve_from_id(node_id, server) != DM_OK)
        return NULL;
    dm_identity_t *own = NULL;
    /* A given identity is claimed in the handshake, as the tools claim
     * theirs, so the node believes it (transport/rpc.h); a throwaway key
     * claims nothing and stays unverified. */
    char claim[sizeof DM_RPC_KEY_PROPERTY + DM_ID_HEX_BYTES] = "";
    if (id) {
        char hex[DM_ID_HEX_BYTES];
        dm_identity_hex(id, hex);
        snprintf(claim, sizeof claim, "%s:%s", DM_RPC_KEY_PROPERTY, hex);
    } else {
        if (dm_identity_new_ephemeral(&own) != DM_OK)
            return NULL;
        id = own;
    }
    dm_err rc = dm_identity_curve_keys(id, pub, sec, NULL);
    dm_identity_destroy(&own);
    if (rc != DM_OK)
        return NULL;
    dm_h_raw_t *self = calloc(1, sizeof *self);
    self->ctx = zmq_ctx_new();
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    int linger = DM_H_RAW_LINGER_MS;
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->sock, ZMQ_CURVE_SERVERKEY, server, 32);
    zmq_setsockopt(self->sock, ZMQ_CURVE_PUBLICKEY, pub, 32);
    zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, sec, 32);
    sodium_memzero(sec, sizeof sec);
    if ((claim[0] && zmq_setsockopt(self->sock, ZMQ_METADATA, claim, strlen(claim)) != 0) ||
        zmq_connect(self->sock, ep) != 0) {
        dm_h_raw_destroy(&self);
        return NULL;
    }
    return self;
}

void dm_h_raw_destroy(dm_h_raw_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_h_raw_t *self = *self_p;
    zmq_close(self->sock);
    zmq_ctx_term(self->ctx);
    free(self);
    *self_p = NULL;
}

bool dm_h_raw_send(dm_h_raw_t *self, const void *data, size_t len)
{
    return zmq_send(self->sock, len ? data : "", len, 0) == (int)len;
}

bool dm_h_raw_send_env(dm_h_raw_t *self, const void *envelope)
{
    zmq_msg_t msg;
    if (dm_rpc_pack(envelope, &msg) != DM_OK)
        return false;
    if (zmq_msg_send(&msg, self->sock, 0) < 0) {
        zmq_msg_close(&msg);
        return false;
    }
    return true;
}

void *dm_h_raw_recv(dm_h_raw_t *self, size_t *len, int timeout_ms)
{
    zmq_pollitem_t it = {self->sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, self->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return NULL;
    }
    *len = zmq_msg_size(&msg);
    void *out = malloc(*len ? *len : 1);
    memcpy(out, zmq_msg_data(&msg), *len);
    zmq_msg_close(&msg);
    return out;
}

void *dm_h_raw_call(dm_h_raw_t *self, const void *envelope, int timeout_ms)
{
    if (!dm_h_raw_send_env(self, envelope))
        return NULL;
    size_t len = 0;
    void *data = dm_h_raw_recv(self, &len, timeout_ms);
    if (!data)
        return NULL;
    Dm__Envelope *rep = dm_rpc_unpack(data, len);
    free(data);
    return rep;
}

dm_identity_t *dm_h_node_identity(const dm_h_node_t *n)
{
    dm_identity_t *id = NULL;
    return dm_identity_load(n->dir, &id, NULL) == DM_OK ? id : NULL;
}

dm_h_raw_t *dm_h_raw_admin(const dm_h_node_t *n)
{
    dm_identity_t *id = dm_h_node_identity(n);
    dm_h_raw_t *raw = id ? dm_h_raw_new(n->addr, id) : NULL;
    dm_identity_destroy(&id);
    return raw;
}

long long dm_h_ping_ms(const dm_h_node_t *n, int timeout_ms)
{
    long long t0 = dm_h_now_ms();
    dm_rpc_client_t *c = NULL;
    if (dm_rpc_client_new(n->addr, timeout_ms, &c, NULL) != DM_OK)
        return -1;
    Dm__Ping ping = DM__PING__INIT;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_PING, &ping);
    Dm__Envelope *rep = NULL;
    long long ms = -1;
    if (dm_rpc_client_call(c, &req, &rep, NULL) == DM_OK && rep->body_case == DM__ENVELOPE__BODY_PONG)
        ms = dm_h_now_ms() - t0;
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    dm_rpc_client_destroy(&c);
    return ms;
}
