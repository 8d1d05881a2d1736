/* meshbench_gossip.c: `meshbench gossip`, a mesh of N real meshd processes
 * on loopback. Measures how long N nodes take to all see each other, the
 * membership traffic each node sends at steady state, how long after a
 * kill -9 every node marks the victim dead, and (with --soak) false deaths
 * while one node is starved of CPU. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "contract/contract.h"
#include "meshbench.h"
#include "transport/envelope.h"

#define MB_G_MAX_NODES 256
#define MB_G_POLL_MS 20
#define MB_G_START_DEADLINE_MS 60000
#define MB_G_CONVERGE_DEADLINE_MS 120000
#define MB_G_DETECT_DEADLINE_MS 60000
#define MB_G_STARVE_PERIOD_MS 100 /* SIGSTOP/SIGCONT duty cycle of --soak */

typedef struct {
    pid_t pid;
    char dir[512];
    char addr[400];
    char domain[32];
} mb_node_t;

static mb_node_t s_nodes[MB_G_MAX_NODES];
static int s_n;
static char s_base[256];

static void s_sleep_ms(int ms) { poll(NULL, 0, ms); }

static bool s_start(int i, const char *meshd, const char *join, const char *gossip_ms)
{
    mb_node_t *n = &s_nodes[i];
    snprintf(n->domain, sizeof n->domain, "d%03d", i);
    char domain[sizeof n->domain];
    memcpy(domain, n->domain, sizeof domain);
    snprintf(n->dir, sizeof n->dir, "%s/%s", s_base, domain);
    char log[600];
    snprintf(log, sizeof log, "%s.log", n->dir);
    const char *argv[24] = {meshd, "--data", n->dir, "--domain", n->domain, "--listen",
                            "tcp://127.0.0.1:*", "--log-level", "warn"};
    int argc = 9;
    if (gossip_ms) {
        argv[argc++] = "--gossip-interval";
        argv[argc++] = gossip_ms;
    }
    if (join) {
        argv[argc++] = "--join";
        argv[argc++] = join;
    }
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        execv(meshd, (char *const *)argv);
        _exit(127);
    }
    n->pid = pid;
    return pid > 0;
}

static bool s_wait_addr(int i)
{
    char path[600];
    snprintf(path, sizeof path, "%s/node.addr", s_nodes[i].dir);
    int64_t deadline = dm_clock_mono_ms() + MB_G_START_DEADLINE_MS;
    while (dm_clock_mono_ms() < deadline) {
        FILE *f = fopen(path, "r");
        if (f) {
            size_t k = fread(s_nodes[i].addr, 1, sizeof s_nodes[i].addr - 1, f);
            fclose(f);
            s_nodes[i].addr[k] = 0;
            if (k)
                return true;
        }
        if (waitpid(s_nodes[i].pid, NULL, WNOHANG) == s_nodes[i].pid) {
            s_nodes[i].pid = 0;
            fprintf(stderr, "meshbench gossip: meshd %d exited (see %s.log)\n", i, s_nodes[i].dir);
            return false;
        }
        s_sleep_ms(MB_G_POLL_MS);
    }
    return false;
}

typedef struct {
    int alive, suspect, dead, left;
    const char *victim_state; /* state of the member with victim domain */
    uint64_t bytes, msgs, uptime_ms;
    bool ok;
} mb_view_t;

static mb_view_t s_view(int i, const char *victim_domain)
{
    static char state[16];
    mb_view_t v = {0, 0, 0, 0, NULL, 0, 0, 0, false};
    dm_rpc_client_t *c = NULL;
    if (dm_rpc_client_new(s_nodes[i].addr, 2000, &c, NULL) != DM_OK)
        return v;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__MembersReq body = DM__MEMBERS_REQ__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_MEMBERS_REQ, &body);
    Dm__Envelope *rep = NULL;
    if (dm_rpc_client_call(c, &req, &rep, NULL) == DM_OK && rep->body_case == DM__ENVELOPE__BODY_MEMBERS_REP) {
        const Dm__MembersRep *r = rep->members_rep;
        for (size_t k = 0; k < r->n_members; k++) {
            const Dm__MemberInfo *m = r->members[k];
            if (m->self)
                continue;
            v.alive += strcmp(m->state, "alive") == 0;
            v.suspect += strcmp(m->state, "suspect") == 0;
            v.dead += strcmp(m->state, "dead") == 0;
            v.left += strcmp(m->state, "left") == 0;
            if (victim_domain && strcmp(m->domain, victim_domain) == 0) {
                snprintf(state, sizeof state, "%s", m->state);
                v.victim_state = state;
            }
        }
        v.bytes = r->gossip_bytes_sent;
        v.msgs = r->gossip_msgs_sent;
        v.uptime_ms = r->uptime_ms;
        v.ok = true;
    }
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    dm_rpc_client_destroy(&c);
    return v;
}

/* Registers product NAME of node i's domain through the client library. */
static bool s_register(int i, const char *name)
{
    char text[1024];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n"
             "  domain: %s\n  version: 1.0.0\n  owner: {team: bench, contact: bench@example.com}\n"
             "spec:\n  schema:\n    fields: [{name: id, type: int, required: true}]\n",
             name, s_nodes[i].domain);
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    bool ok = false;
    if (dm_contract_parse("bench", text, strlen(text), NULL, &list, &n, &diags) == DM_OK && n == 1) {
        dm_buf_t canon = DM_BUF_INIT;
        dm_contract_canonical(list[0], &canon);
        dm_rpc_client_t *c = NULL;
        if (dm_rpc_client_new(s_nodes[i].addr, 5000, &c, NULL) == DM_OK) {
            Dm__Envelope req = DM__ENVELOPE__INIT;
            Dm__RegisterReq body = DM__REGISTER_REQ__INIT;
            body.contract.data = (uint8_t *)canon.data;
            body.contract.len = canon.len;
            dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_REGISTER_REQ, &body);
            Dm__Envelope *rep = NULL;
            ok = dm_rpc_client_call(c, &req, &rep, NULL) == DM_OK &&
                 rep->body_case == DM__ENVELOPE__BODY_REGISTER_REP;
            if (rep)
                dm__envelope__free_unpacked(rep, NULL);
            dm_rpc_client_destroy(&c);
        }
        dm_buf_free(&canon);
    }
    dm_contract_list_destroy(&list, n);
    dm_diags_clear(&diags);
    return ok;
}

/* Whether node i lists DOMAIN/NAME among the mesh's products. */
static bool s_lists(int i, const char *domain, const char *name)
{
    dm_rpc_client_t *c = NULL;
    bool found = false;
    if (dm_rpc_client_new(s_nodes[i].addr, 2000, &c, NULL) != DM_OK)
        return false;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__ProductsReq body = DM__PRODUCTS_REQ__INIT;
    body.mesh = 1;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_PRODUCTS_REQ, &body);
    Dm__Envelope *rep = NULL;
    if (dm_rpc_client_call(c, &req, &rep, NULL) == DM_OK && rep->body_case == DM__ENVELOPE__BODY_PRODUCTS_REP)
        for (size_t k = 0; k < rep->products_rep->n_products && !found; k++)
            found = strcmp(rep->products_rep->products[k]->domain, domain) == 0 &&
                    strcmp(rep->products_rep->products[k]->name, name) == 0;
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    dm_rpc_client_destroy(&c);
    return found;
}

static void s_stop_all(bool keep)
{
    for (int i = 0; i < s_n; i++)
        if (s_nodes[i].pid > 0) {
            kill(s_nodes[i].pid, SIGCONT);
            kill(s_nodes[i].pid, SIGTERM);
        }
    for (int i = 0; i < s_n; i++)
        if (s_nodes[i].pid > 0)
            waitpid(s_nodes[i].pid, NULL, 0);
    if (!keep && s_base[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_base);
        if (system(cmd) != 0)
            fprintf(stderr, "meshbench gossip: could not remove %s\n", s_base);
    }
}

static const dm_cli_optspec_t s_opts[] = {
    {"nodes", true},  {"seconds", true}, {"trials", true}, {"gossip-interval", true},
    {"soak", true},   {"starve", true},  {"keep", false},  {"help", false},
    {"catalog-trials", true},
    {"bin", true},
};

static void s_gossip_usage(void)
{
    printf("usage: meshbench gossip --nodes N [--seconds S] [--trials T] [--gossip-interval MS]\n"
           "         [--soak SECONDS --starve PERCENT] [--bin DIR] [--keep]\n"
           "Starts N meshd processes on loopback joined through the first, then reports:\n"
           "  the time until every node sees every other alive;\n"
           "  membership bytes and messages each node sends per second over S seconds\n"
           "  of steady state (default 10);\n"
           "  for C catalog trials (--catalog-trials, default 20): the time from a\n"
           "  contract's registration on a random node until every node lists it\n"
           "  (p50, p99; each node polled in turn, so about N round trips of resolution);\n"
           "  for T kill -9 trials (default 3): the time until every other node marks\n"
           "  the victim dead (median and max);\n"
           "  with --soak: node 1 is stopped PERCENT of every 100 ms for SECONDS while\n"
           "  the others are watched for false deaths.\n"
           "--bin: where meshd is (default: beside this program).\n");
}

/* Writes meshd's path into out: in --bin DIR, or beside this program. */
static void s_meshd_path(const dm_cli_args_t *a, char *out, size_t cap)
{
    if (dm_cli_get(a, "bin")) {
        snprintf(out, cap, "%s/meshd", dm_cli_get(a, "bin"));
        return;
    }
    char self[512];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    self[k > 0 ? k : 0] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    snprintf(out, cap, "%s/meshd", self);
}

/* Starts the s_n nodes, each joining through node 0, and waits until every
 * node sees every other alive; prints the times. False (after saying why)
 * if a node does not start or the mesh does not converge in time. */
static bool s_start_mesh(const char *meshd, const char *gms)
{
    int64_t t0 = dm_clock_mono_ms();
    if (!s_start(0, meshd, NULL, gms) || !s_wait_addr(0))
        return false;
    for (int i = 1; i < s_n; i++)
        if (!s_start(i, meshd, s_nodes[0].addr, gms))
            return false;
    for (int i = 1; i < s_n; i++)
        if (!s_wait_addr(i)) {
            fprintf(stderr, "meshbench gossip: node %d did not start (see %s.log)\n", i, s_nodes[i].dir);
            return false;
        }
    int64_t started = dm_clock_mono_ms();
    int64_t deadline = started + MB_G_CONVERGE_DEADLINE_MS;
    bool all = false;
    while (!all && dm_clock_mono_ms() < deadline) {
        all = true;
        for (int i = 0; i < s_n && all; i++)
            all = s_view(i, NULL).alive == s_n - 1;
        if (!all)
            s_sleep_ms(MB_G_POLL_MS);
    }
    if (!all) {
        fprintf(stderr, "meshbench gossip: the mesh did not converge within %d s\n",
                MB_G_CONVERGE_DEADLINE_MS / 1000);
        return false;
    }
    printf("%d nodes: all started in %.2f s; every node saw every other alive %.2f s after the "
           "last one started\n", s_n, (started - t0) / 1e3, (dm_clock_mono_ms() - started) / 1e3);
    return true;
}

/* Steady state traffic: what each node sends over `seconds`. */
static void s_steady(long seconds)
{
    uint64_t *b0 = calloc((size_t)s_n, sizeof *b0), *m0 = calloc((size_t)s_n, sizeof *m0);
    int64_t w0 = dm_clock_mono_ms();
    for (int i = 0; i < s_n; i++) {
        mb_view_t v = s_view(i, NULL);
        b0[i] = v.bytes;
        m0[i] = v.msgs;
    }
    s_sleep_ms((int)seconds * 1000);
    double secs = (dm_clock_mono_ms() - w0) / 1e3, bsum = 0, bmax = 0, msum = 0;
    for (int i = 0; i < s_n; i++) {
        mb_view_t v = s_view(i, NULL);
        double bps = (double)(v.bytes - b0[i]) / secs;
        bsum += bps;
        msum += (double)(v.msgs - m0[i]) / secs;
        if (bps > bmax)
            bmax = bps;
    }
    free(b0);
    free(m0);
    printf("steady state over %.1f s: %.0f bytes/s per node on average (max %.0f), %.1f "
           "messages/s per node (payload bytes; CURVE adds about 33 bytes per message)\n",
           secs, bsum / s_n, bmax, msum / s_n);
}

/* Catalog convergence: a new contract on a random node reaches all. */
static void s_catalog_trials(long ctrials)
{
    int64_t *conv = calloc((size_t)ctrials, sizeof *conv);
    bool *seen = calloc((size_t)s_n, sizeof *seen);
    for (long t = 0; t < ctrials; t++) {
        int origin = (int)((t * 7919) % s_n);
        char name[32];
        snprintf(name, sizeof name, "bench%ld", t);
        memset(seen, 0, (size_t)s_n * sizeof *seen);
        int64_t r0 = dm_clock_mono_ms();
        if (!s_register(origin, name)) {
            fprintf(stderr, "meshbench gossip: registering on node %d failed\n", origin);
            conv[t] = -1;
            continue;
        }
        int left = s_n;
        while (left > 0 && dm_clock_mono_ms() < r0 + MB_G_DETECT_DEADLINE_MS) {
            for (int i = 0; i < s_n; i++)
                if (!seen[i] && s_lists(i, s_nodes[origin].domain, name)) {
                    seen[i] = true;
                    left--;
                }
        }
        conv[t] = left == 0 ? dm_clock_mono_ms() - r0 : MB_G_DETECT_DEADLINE_MS;
    }
    dm_cli_sort_i64(conv, (size_t)ctrials);
    printf("catalog: a new contract reached all %d nodes in p50 %.3f s, p99 %.3f s, max "
           "%.3f s over %ld trials\n", s_n, conv[ctrials / 2] / 1e3,
           conv[(ctrials * 99) / 100 < ctrials ? (ctrials * 99) / 100 : ctrials - 1] / 1e3,
           conv[ctrials - 1] / 1e3, ctrials);
    free(conv);
    free(seen);
}

/* Failure detection: kill -9 the last `trials` nodes one by one and time
 * until every other node marks each dead. */
static void s_kill_trials(long trials)
{
    int64_t *det = calloc((size_t)trials + 1, sizeof *det);
    for (long t = 0; t < trials; t++) {
        int victim = s_n - 1 - (int)t;
        kill(s_nodes[victim].pid, SIGKILL);
        waitpid(s_nodes[victim].pid, NULL, 0);
        s_nodes[victim].pid = 0;
        int64_t k0 = dm_clock_mono_ms();
        bool dead = false;
        while (!dead && dm_clock_mono_ms() < k0 + MB_G_DETECT_DEADLINE_MS) {
            dead = true;
            for (int i = 0; i < s_n && dead; i++) {
                if (s_nodes[i].pid <= 0)
                    continue;
                mb_view_t v = s_view(i, s_nodes[victim].domain);
                dead = v.victim_state && strcmp(v.victim_state, "dead") == 0;
            }
            if (!dead)
                s_sleep_ms(MB_G_POLL_MS);
        }
        det[t] = dead ? dm_clock_mono_ms() - k0 : -1;
        printf("kill -9 trial %ld: every node marked the victim dead after %s%.2f s\n", t + 1,
               dead ? "" : "more than ", (dead ? det[t] : MB_G_DETECT_DEADLINE_MS) / 1e3);
    }
    if (trials > 0) {
        dm_cli_sort_i64(det, (size_t)trials);
        printf("failure detection: median %.2f s, max %.2f s over %ld trials\n",
               det[trials / 2] / 1e3, det[trials - 1] / 1e3, trials);
    }
    free(det);
}

/* Soak with node 1 starved of CPU: any member marked dead is a false death. */
static void s_soak(long soak, long starve)
{
    pid_t starved = s_nodes[1].pid;
    int64_t end = dm_clock_mono_ms() + soak * 1000;
    int false_deaths = 0, suspicions = 0;
    int64_t next_check = dm_clock_mono_ms();
    while (dm_clock_mono_ms() < end) {
        kill(starved, SIGSTOP);
        s_sleep_ms((int)(MB_G_STARVE_PERIOD_MS * starve / 100));
        kill(starved, SIGCONT);
        s_sleep_ms((int)(MB_G_STARVE_PERIOD_MS * (100 - starve) / 100));
        if (dm_clock_mono_ms() >= next_check) {
            for (int i = 0; i < s_n; i++) {
                if (s_nodes[i].pid <= 0 || i == 1)
                    continue;
                mb_view_t v = s_view(i, s_nodes[1].domain);
                false_deaths += v.victim_state && strcmp(v.victim_state, "dead") == 0;
                suspicions += v.victim_state && strcmp(v.victim_state, "suspect") == 0;
            }
            next_check = dm_clock_mono_ms() + 1000;
        }
    }
    printf("soak %ld s with node 1 stopped %ld%% of every %d ms: %d false death "
           "observations, %d suspect observations (checked every second on every node)\n",
           soak, starve, MB_G_STARVE_PERIOD_MS, false_deaths, suspicions);
}

int dm_meshbench_gossip(int argc, char **argv)
{
    dm_cli_args_t a;
    if (dm_cli_parse("meshbench gossip", argc, argv, s_opts, sizeof s_opts / sizeof s_opts[0], &a) != 0)
        return MB_EXIT_USAGE;
    if (dm_cli_get(&a, "help")) {
        s_gossip_usage();
        return MB_EXIT_OK;
    }
    uint64_t nodes, seconds, trials, soak, starve, ctrials;
    if (dm_cli_uint_opt(&a, "nodes", "a number of nodes", 2, MB_G_MAX_NODES, 16, &nodes) != 0 ||
        dm_cli_uint_opt(&a, "seconds", "whole seconds", 1, 86400, 10, &seconds) != 0 ||
        dm_cli_uint_opt(&a, "trials", "a number of kills (fewer than --nodes - 1)", 0, nodes - 2,
                        nodes - 2 < 3 ? nodes - 2 : 3, &trials) != 0 ||
        dm_cli_uint_opt(&a, "soak", "whole seconds", 0, 86400, 0, &soak) != 0 ||
        dm_cli_uint_opt(&a, "starve", "a percentage", 0, 99, 90, &starve) != 0 ||
        dm_cli_uint_opt(&a, "catalog-trials", "a number of trials", 0, 100000, 20, &ctrials) != 0)
        return MB_EXIT_USAGE;
    char meshd[600];
    s_meshd_path(&a, meshd, sizeof meshd);
    snprintf(s_base, sizeof s_base, "/tmp/meshgossip.XXXXXX");
    if (!mkdtemp(s_base)) {
        fprintf(stderr, "meshbench gossip: cannot make a temp dir: %s\n", strerror(errno));
        return MB_EXIT_IO;
    }
    s_n = (int)nodes;
    int status = MB_EXIT_IO;
    if (!s_start_mesh(meshd, dm_cli_get(&a, "gossip-interval")))
        goto out;
    s_steady((long)seconds);
    if (ctrials > 0)
        s_catalog_trials((long)ctrials);
    s_kill_trials((long)trials);
    if (soak > 0)
        s_soak((long)soak, (long)starve);
    status = MB_EXIT_OK;
out:
    s_stop_all(dm_cli_get(&a, "keep") != NULL);
    return status;
}
