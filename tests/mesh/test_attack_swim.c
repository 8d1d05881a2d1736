/* test_attack_swim.c: three real meshd processes attacked over the wire by
 * an outsider speaking CURVE with keys of its own (issue 7, items 3, 5, 7):
 * forged membership facts about a healthy node, a ping-request flood naming
 * made-up nodes, a JOIN that names someone else's address, and a restart
 * of the whole mesh, and a member's unsolicited SYNC of fresh members.
 * Afterwards the victim is alive everywhere, pings are
 * answered within a second, a new node still joins, and the mesh re-forms. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "harness_catalog.h"
#include "identity/identity.h"
#include "membership/membership.h"
#include "proto/mesh.pb-c.h"
#include "transport/rpc.h"

#define T_NODES 3
#define T_DEADLINE_MS 20000
#define T_POLL_MS 50
#define T_PING_MS 1000      /* "status answers within a second" */
#define T_FLOOD 3000        /* ping requests naming made-up nodes */
#define T_FLOOD_PACE_MS 1   /* between two of them */
#define T_QUIET_MS 2000     /* nothing must arrive at a named victim within this */
#define T_MAX_FDS 200       /* a node's open descriptors after the flood */
#define T_JOINERS 200       /* JOINs from fresh keys */

static dm_h_node_t s_nodes[T_NODES + 1];
static char s_dirs[T_NODES + 1][600];
static const char *const s_domains[T_NODES + 1] = {"commerce", "logistics", "identity", "late"};
enum { VICTIM = 2 };

/* Waits until every running node but `about` (among the first n) sees
 * `about` alive at the address it advertises. */
static bool s_wait_alive(int about, int n)
{
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    while (dm_h_now_ms() < deadline) {
        bool all = true;
        for (int i = 0; i < n && all; i++) {
            if (i == about || s_nodes[i].pid <= 0)
                continue;
            dm_h_member_t m = dm_h_member(&s_nodes[i], s_domains[about]);
            all = m.found && strcmp(m.state, "alive") == 0 &&
                  strcasecmp(m.address, s_nodes[about].addr) == 0;
        }
        if (all)
            return true;
        poll(NULL, 0, T_POLL_MS);
    }
    return false;
}

/* True if node i's log says the victim was declared dead or left. */
static bool s_log_says_victim_fell(int i)
{
    FILE *f = fopen(s_nodes[i].log, "r");
    if (!f)
        return false;
    char line[1024], dead[64], left[64];
    snprintf(dead, sizeof dead, "(domain %s) dead", s_domains[VICTIM]);
    snprintf(left, sizeof left, "(domain %s) left", s_domains[VICTIM]);
    bool fell = false;
    while (fgets(line, sizeof line, f))
        fell |= strstr(line, dead) != NULL || strstr(line, left) != NULL;
    fclose(f);
    return fell;
}

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    for (int i = 0; i <= T_NODES; i++)
        snprintf(s_dirs[i], sizeof s_dirs[i], "%s/%s", tmp, s_domains[i]);
    for (int i = 0; i < T_NODES; i++) {
        const char *join[] = {"--join", s_nodes[0].addr, NULL};
        cr_assert(dm_h_node_start(&s_nodes[i], s_dirs[i], s_domains[i], i ? join : NULL));
    }
    for (int i = 0; i < T_NODES; i++)
        cr_assert(s_wait_alive(i, T_NODES), "the mesh did not form (%s)", s_domains[i]);
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(attack_swim, .init = s_up, .fini = s_down, .timeout = 120);

/* An outsider's SWIM message: its own record as sender (at endpoint ep,
 * which must hold its key to get answers), of type t. */
static dm_swim_msg_t *s_msg(const dm_identity_t *me, const char *ep, dm_swim_type t)
{
    dm_swim_msg_t *msg = calloc(1, sizeof *msg);
    cr_assert_not_null(msg);
    msg->type = t;
    memcpy(msg->sender.id, dm_identity_public(me), DM_ID_PUBLIC_BYTES);
    cr_assert_eq(dm_identity_address_format(msg->sender.id, ep, msg->sender.address, DM_ADDRESS_MAX, NULL),
                 DM_OK);
    snprintf(msg->sender.domain, sizeof msg->sender.domain, "outsider");
    return msg;
}

/* Appends a fact about the node at address `addr`. */
static dm_swim_update_t *s_fact(dm_swim_msg_t *msg, const char *addr, dm_member_state st,
                                uint64_t inc)
{
    dm_swim_update_t *u = &msg->updates[msg->n_updates++];
    char ep[256];
    cr_assert_eq(dm_identity_address_parse(addr, u->id, ep, sizeof ep, NULL), DM_OK);
    snprintf(u->address, sizeof u->address, "%s", addr);
    snprintf(u->domain, sizeof u->domain, "%s", "evil");
    u->state = st;
    u->incarnation = inc;
    return u;
}

static void s_send(dm_h_raw_t *raw, const dm_swim_msg_t *msg)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    cr_assert_eq(dm_membership_encode(msg, &bytes, &len), DM_OK);
    Dm__Envelope env = DM__ENVELOPE__INIT;
    env.body_case = DM__ENVELOPE__BODY_SWIM;
    env.swim.data = bytes;
    env.swim.len = len;
    cr_assert(dm_h_raw_send_env(raw, &env));
    free(bytes);
}

/* Every lie about the victim, and about the receiver itself, in one message. */
static void s_lies(dm_swim_msg_t *msg, int to)
{
    const char *victim = s_nodes[VICTIM].addr;
    unsigned long long inc = dm_h_member(&s_nodes[0], s_domains[VICTIM]).incarnation;
    msg->n_updates = 0;
    s_fact(msg, victim, DM_MEMBER_DEAD, inc);
    s_fact(msg, victim, DM_MEMBER_LEFT, inc + 1);
    s_fact(msg, victim, DM_MEMBER_DEAD, UINT64_MAX);
    dm_swim_update_t *moved = s_fact(msg, victim, DM_MEMBER_ALIVE, inc + 5);
    char ep[256];
    uint8_t id[DM_ID_PUBLIC_BYTES];
    cr_assert_eq(dm_identity_address_parse(victim, id, ep, sizeof ep, NULL), DM_OK);
    cr_assert_eq(dm_identity_address_format(id, "tcp://127.0.0.1:9", moved->address, DM_ADDRESS_MAX, NULL),
                 DM_OK);
    for (int k = 0; k < T_NODES; k++) { /* forged accusers: every member */
        dm_swim_update_t *u = s_fact(msg, victim, DM_MEMBER_SUSPECT, inc + 6);
        u->has_from = true;
        cr_assert_eq(dm_identity_address_parse(s_nodes[k].addr, u->from, ep, sizeof ep, NULL),
                     DM_OK);
    }
    s_fact(msg, s_nodes[to].addr, DM_MEMBER_DEAD, UINT64_MAX);
}

Test(attack_swim, forged_facts_from_an_outsider_leave_the_victim_alive_everywhere)
{
    dm_identity_t *me = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&me), DM_OK);
    dm_h_raw_t *raw[T_NODES];
    for (int i = 0; i < T_NODES; i++)
        cr_assert_not_null(raw[i] = dm_h_raw_new(s_nodes[i].addr, me));
    /* first as a stranger, then as a member that joined (the limits hold
     * against members too) */
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1)
            for (int i = 0; i < T_NODES; i++) {
                dm_swim_msg_t *join = s_msg(me, "tcp://127.0.0.1:1", DM_SWIM_JOIN);
                s_send(raw[i], join);
                free(join);
            }
        for (int round = 0; round < 10; round++) {
            for (int i = 0; i < T_NODES; i++) {
                if (i == VICTIM && round % 2)
                    continue;
                dm_swim_msg_t *msg = s_msg(me, "tcp://127.0.0.1:1", DM_SWIM_GOSSIP);
                s_lies(msg, i);
                s_send(raw[i], msg);
                free(msg);
                long long ms = dm_h_ping_ms(&s_nodes[i], T_PING_MS);
                cr_assert(ms >= 0 && ms < T_PING_MS, "node %d did not answer within 1 s", i);
            }
            poll(NULL, 0, 200);
        }
    }
    for (int i = 0; i < T_NODES; i++)
        dm_h_raw_destroy(&raw[i]);
    dm_identity_destroy(&me);
    /* outlast the longest suspicion (max timeout ~10 s at 3 nodes) */
    long long until = dm_h_now_ms() + 12000;
    while (dm_h_now_ms() < until)
        poll(NULL, 0, 500);
    cr_assert(s_wait_alive(VICTIM, T_NODES), "the victim is not alive at its address everywhere");
    for (int i = 0; i < T_NODES; i++) {
        cr_assert(!s_log_says_victim_fell(i), "node %d declared the victim dead or left", i);
        dm_h_member_t m = dm_h_member(&s_nodes[i == 0 ? 1 : 0], s_domains[i]);
        cr_assert(m.found, "node %s lost its domain", s_domains[i]);
        long long ms = dm_h_ping_ms(&s_nodes[i], T_PING_MS);
        cr_assert(ms >= 0 && ms < T_PING_MS);
    }
}

/* Open descriptors of process pid. */
static int s_fds(pid_t pid)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ls /proc/%d/fd | wc -l", (int)pid);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

Test(attack_swim, a_ping_request_flood_opens_nothing_and_a_new_node_still_joins)
{
    dm_identity_t *me = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&me), DM_OK);
    dm_h_raw_t *raw = dm_h_raw_new(s_nodes[0].addr, me);
    cr_assert_not_null(raw);
    dm_swim_msg_t *join = s_msg(me, "tcp://127.0.0.1:1", DM_SWIM_JOIN);
    s_send(raw, join); /* as a member, too: ping-req is for members only */
    free(join);
    dm_swim_msg_t *msg = s_msg(me, "tcp://127.0.0.1:1", DM_SWIM_PING_REQ);
    for (int k = 0; k < T_FLOOD; k++) {
        dm_identity_t *fake = NULL;
        cr_assert_eq(dm_identity_new_ephemeral(&fake), DM_OK);
        memcpy(msg->target_id, dm_identity_public(fake), DM_ID_PUBLIC_BYTES);
        char ep[64];
        snprintf(ep, sizeof ep, "tcp://127.0.0.%d:%d", 2 + k % 200, 20000 + k);
        cr_assert_eq(dm_identity_address_format(msg->target_id, ep, msg->target_address, DM_ADDRESS_MAX, NULL),
                     DM_OK);
        msg->seq = (uint32_t)k;
        s_send(raw, msg);
        dm_identity_destroy(&fake);
        /* paced past the 64 forwards a helper keeps in flight, so every
         * request reaches the node's ping-req path */
        poll(NULL, 0, T_FLOOD_PACE_MS);
        if (k % 500 == 0) {
            long long ms = dm_h_ping_ms(&s_nodes[0], T_PING_MS);
            cr_assert(ms >= 0 && ms < T_PING_MS, "no answer within 1 s during the flood");
        }
    }
    free(msg);
    dm_h_raw_destroy(&raw);
    dm_identity_destroy(&me);
    long long ms = dm_h_ping_ms(&s_nodes[0], T_PING_MS);
    cr_assert(ms >= 0 && ms < T_PING_MS);
    int fds = s_fds(s_nodes[0].pid);
    cr_log_info("node 0 holds %d descriptors after the flood", fds);
    cr_assert(fds > 0 && fds < T_MAX_FDS, "node 0 holds %d descriptors after the flood", fds);
    /* a JOIN flood from fresh keys: admitted at the join rate only */
    long long start = dm_h_now_ms();
    for (int k = 0; k < T_JOINERS; k++) {
        dm_identity_t *fresh = NULL;
        cr_assert_eq(dm_identity_new_ephemeral(&fresh), DM_OK);
        dm_h_raw_t *r = dm_h_raw_new(s_nodes[0].addr, fresh);
        cr_assert_not_null(r);
        dm_swim_msg_t *j = s_msg(fresh, "tcp://127.0.0.1:1", DM_SWIM_JOIN);
        s_send(r, j);
        free(j);
        dm_h_raw_destroy(&r);
        dm_identity_destroy(&fresh);
    }
    long long secs = (dm_h_now_ms() - start) / 1000 + 1;
    size_t members = dm_h_member(&s_nodes[0], NULL).count;
    cr_log_info("node 0 holds %zu members after %d JOINs in %lld s", members, T_JOINERS, secs);
    cr_assert_leq(members, (size_t)(T_NODES + 1 + DM_MEMBERSHIP_JOIN_BURST +
                                     DM_MEMBERSHIP_JOIN_RATE_PER_S * secs),
                  "%zu members after a JOIN flood", members);
    ms = dm_h_ping_ms(&s_nodes[0], T_PING_MS);
    cr_assert(ms >= 0 && ms < T_PING_MS);
    const char *jl[] = {"--join", s_nodes[0].addr, NULL};
    cr_assert(dm_h_node_start(&s_nodes[T_NODES], s_dirs[T_NODES], s_domains[T_NODES], jl));
    cr_assert(s_wait_alive(T_NODES, T_NODES + 1), "a new node could not join after the flood");
    cr_assert(s_wait_alive(VICTIM, T_NODES + 1));
}

/* A CURVE listener holding identity id's key on a kernel-chosen port;
 * writes its endpoint to ep. */
static void *s_listener(void *ctx, const dm_identity_t *id, char *ep, size_t cap)
{
    uint8_t pub[32], sec[32];
    cr_assert_eq(dm_identity_curve_keys(id, pub, sec, NULL), DM_OK);
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, linger = 0;
    zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 32);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
    size_t len = cap;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len);
    return s;
}

static bool s_something_arrives(void *s, int timeout_ms)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    return zmq_poll(&it, 1, timeout_ms) > 0;
}

Test(attack_swim, a_join_is_answered_only_at_an_address_holding_the_joiners_key)
{
    dm_identity_t *me = NULL, *victim = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&me), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&victim), DM_OK);
    void *ctx = zmq_ctx_new();
    char vep[256], mep[256];
    void *vs = s_listener(ctx, victim, vep, sizeof vep);
    void *ms = s_listener(ctx, me, mep, sizeof mep);
    dm_h_raw_t *raw = dm_h_raw_new(s_nodes[0].addr, me);
    cr_assert_not_null(raw);
    /* the outsider names the victim's address (the victim's key) */
    dm_swim_msg_t *join = s_msg(me, "tcp://127.0.0.1:1", DM_SWIM_JOIN);
    cr_assert_eq(dm_identity_address_format(dm_identity_public(victim), vep, join->sender.address,
                                   DM_ADDRESS_MAX, NULL), DM_OK);
    s_send(raw, join);
    cr_assert(!s_something_arrives(vs, T_QUIET_MS), "the seed sent to the address a joiner named");
    /* its own address: the member list comes, to the holder of its key */
    cr_assert_eq(dm_identity_address_format(dm_identity_public(me), mep, join->sender.address,
                                   DM_ADDRESS_MAX, NULL), DM_OK);
    s_send(raw, join);
    cr_assert(s_something_arrives(ms, T_DEADLINE_MS), "the joiner got no member list");
    free(join);
    dm_h_raw_destroy(&raw);
    zmq_close(vs);
    zmq_close(ms);
    zmq_ctx_term(ctx);
    dm_identity_destroy(&me);
    dm_identity_destroy(&victim);
}

/* A free loopback port (the kernel's choice; released for meshd to take). */
static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

Test(attack_swim, a_whole_mesh_restart_reforms_without_join)
{
    dm_h_cleanup(); /* this mesh needs fixed ports: its saved addresses must hold */
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    char listen[T_NODES][64];
    for (int i = 0; i < T_NODES; i++) {
        snprintf(s_dirs[i], sizeof s_dirs[i], "%s/%s", tmp, s_domains[i]);
        snprintf(listen[i], sizeof listen[i], "tcp://127.0.0.1:%d", s_free_port());
        const char *args[] = {"--listen", listen[i], i ? "--join" : NULL, s_nodes[0].addr, NULL};
        cr_assert(dm_h_node_start(&s_nodes[i], s_dirs[i], s_domains[i], args),
                  "node %d did not start", i);
    }
    for (int i = 0; i < T_NODES; i++)
        cr_assert(s_wait_alive(i, T_NODES));
    /* stopped together: each sees the others leave */
    for (int i = 0; i < T_NODES; i++)
        kill(s_nodes[i].pid, SIGTERM);
    for (int i = 0; i < T_NODES; i++)
        dm_h_node_signal(&s_nodes[i], SIGTERM);
    for (int i = 0; i < T_NODES; i++) {
        const char *args[] = {"--listen", listen[i], NULL};
        cr_assert(dm_h_node_start(&s_nodes[i], s_dirs[i], s_domains[i], args));
    }
    for (int i = 0; i < T_NODES; i++)
        cr_assert(s_wait_alive(i, T_NODES), "after the restart not every node sees %s alive",
                  s_domains[i]);
}

#define T_SYNC_PAGES 100      /* unsolicited SYNC pages, DM_SWIM_MAX_UPDATES fresh members each */
#define T_SYNC_SETTLE_MS 3000 /* watched after the flood: the count must stay bounded */

/* A member (it joined) sends SYNC pages nobody asked for, full of fresh
 * ALIVE members: before, SYNC skipped the introduction limits and one
 * member filled the table; now it is gossip, within this member's own
 * introduction bucket, and the node keeps answering. */
Test(attack_swim, an_unsolicited_sync_fills_no_table)
{
    dm_identity_t *me = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&me), DM_OK);
    dm_h_raw_t *raw = dm_h_raw_new(s_nodes[0].addr, me);
    cr_assert_not_null(raw);
    dm_swim_msg_t *join = s_msg(me, "tcp://127.0.0.1:1", DM_SWIM_JOIN);
    s_send(raw, join);
    free(join);
    long long start = dm_h_now_ms();
    dm_swim_msg_t *msg = s_msg(me, "tcp://127.0.0.1:1", DM_SWIM_SYNC);
    for (int page = 0; page < T_SYNC_PAGES; page++) {
        msg->n_updates = 0;
        for (int k = 0; k < DM_SWIM_MAX_UPDATES; k++) {
            dm_swim_update_t *u = &msg->updates[msg->n_updates++];
            memset(u, 0, sizeof *u);
            memcpy(u->id, dm_identity_public(me), DM_ID_PUBLIC_BYTES);
            int n = page * DM_SWIM_MAX_UPDATES + k + 1;
            u->id[0] ^= (uint8_t)n;
            u->id[1] ^= (uint8_t)(n >> 8);
            cr_assert_eq(dm_identity_address_format(u->id, "tcp://127.0.0.1:9", u->address,
                                           DM_ADDRESS_MAX, NULL), DM_OK);
            snprintf(u->domain, sizeof u->domain, "fake%d", n);
            u->state = DM_MEMBER_ALIVE;
        }
        s_send(raw, msg);
        if (page % 25 == 0) {
            long long ms = dm_h_ping_ms(&s_nodes[0], T_PING_MS);
            cr_assert(ms >= 0 && ms < T_PING_MS, "no answer within 1 s during the flood");
        }
    }
    free(msg);
    /* watch the count: it must grow (the pages arrived) and stay within one
     * introducer's burst plus its rate over the time taken */
    size_t most = 0;
    for (long long until = dm_h_now_ms() + T_SYNC_SETTLE_MS; dm_h_now_ms() < until;) {
        size_t members = dm_h_member(&s_nodes[0], NULL).count;
        long long secs = (dm_h_now_ms() - start) / 1000 + 1;
        cr_assert_leq(members, (size_t)(T_NODES + 1 + DM_MEMBERSHIP_INTRO_SENDER_BURST +
                                        DM_MEMBERSHIP_INTRO_SENDER_RATE_PER_S * secs),
                      "node 0 holds %zu members %lld s after %d unsolicited SYNC pages",
                      members, secs, T_SYNC_PAGES);
        if (members > most)
            most = members;
        poll(NULL, 0, T_POLL_MS);
    }
    cr_log_info("node 0 held at most %zu members after %d SYNC pages of %d", most, T_SYNC_PAGES,
                DM_SWIM_MAX_UPDATES);
    cr_assert_gt(most, (size_t)(T_NODES + 1), "the SYNC pages never arrived");
    dm_h_raw_destroy(&raw);
    dm_identity_destroy(&me);
    long long ms = dm_h_ping_ms(&s_nodes[0], T_PING_MS);
    cr_assert(ms >= 0 && ms < T_PING_MS);
    for (int i = 0; i < T_NODES; i++)
        cr_assert(s_wait_alive(i, T_NODES), "%s is not alive everywhere", s_domains[i]);
}
