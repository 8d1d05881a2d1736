/* meshsim: N membership machines (node/membership/membership.h) in one
 * process, on virtual time, with message loss and a small random latency;
 * no sockets.
 *
 * It measures what docs/membership.md reports: how many gossip rounds a
 * new fact (a node joining; a node dying) takes to reach 99%, 99.99% and
 * all of the nodes; what the steady state costs each node in messages and
 * bytes (the wire encoding, node/membership/membership_wire.c); and how
 * many live nodes were falsely declared dead. `meshsim catalog` simulates the
 * catalog's anti-entropy instead (meshsim_catalog.c); the two are not
 * simulated together.
 *
 * Time advances in steps of SIM_STEP_MS; messages wait in a timing wheel
 * for 1..SIM_MAX_LATENCY_STEPS steps; a machine is ticked only when its
 * own next deadline is due. Memory is about 100 bytes per member per
 * machine, so 10,000 nodes need about 10 GB. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/clock.h"
#include "membership/membership.h"
#include "meshsim.h"

#define SIM_STEP_MS 2
#define SIM_MAX_LATENCY_STEPS 4 /* latency 2..8 ms */
#define SIM_SLOW_NODE 1 /* the node --slow-ms starves of CPU */
#define SIM_WARMUP_ROUNDS 20
#define SIM_DEFAULT_ROUNDS 50
#define SIM_FACT_MAX_ROUNDS 600
#define SIM_EXIT_OK 0
#define SIM_EXIT_FAIL 1
#define SIM_EXIT_USAGE 2

typedef struct {
    uint32_t to;
    uint32_t len;
    uint8_t *data;
} sim_msg_t;

typedef struct {
    sim_msg_t *v;
    size_t n, cap;
} sim_bucket_t;

typedef struct {
    uint8_t id[DM_ID_PUBLIC_BYTES];
    uint32_t node;
} sim_idx_t;

typedef struct {
    size_t n;
    double loss;
    int64_t interval;
    unsigned fanout;
    uint64_t seed;
    unsigned rounds;

    uint64_t rng;
    dm_membership_t **m;
    uint8_t (*id)[DM_ID_PUBLIC_BYTES];
    int64_t *deadline;
    bool *down;
    sim_idx_t *by_id; /* sorted by id */
    sim_bucket_t *wheel;
    size_t nwheel;  /* buckets: more than the longest delay in steps */
    int64_t slow_ms; /* SIM_SLOW_NODE runs only every slow_ms (0: never slow) */
    int64_t now;
    dm_swim_out_t out;
    dm_swim_msg_t in;

    /* counters */
    bool counting;
    uint64_t msgs, bytes;
    uint64_t false_suspects, false_deaths, slow_suspects;
    unsigned slow_lhm_max;
    /* the fact being watched: subject, kind of event, when each node saw it */
    int watch_subject;
    dm_membership_event watch_ev;
    int64_t *seen_at;
    size_t seen;
    int dead_subject; /* the node that really died, -1 before */
    int64_t first_suspect; /* when some node first suspected it */
    char (*addr)[96];      /* per node: its address and its domain */
    char (*dom)[32];
} sim_t;

static uint64_t s_rand(sim_t *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int s_cmp_idx(const void *a, const void *b)
{
    return memcmp(((const sim_idx_t *)a)->id, ((const sim_idx_t *)b)->id, DM_ID_PUBLIC_BYTES);
}

static int s_node_of(const sim_t *s, const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    sim_idx_t key;
    memcpy(key.id, id, DM_ID_PUBLIC_BYTES);
    const sim_idx_t *hit = bsearch(&key, s->by_id, s->n, sizeof key, s_cmp_idx);
    return hit ? (int)hit->node : -1;
}

static int s_hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The node an address belongs to (the simulator's addresses are all
 * self-certifying). */
static int s_node_of_address(const sim_t *s, const char *addr)
{
    uint8_t id[DM_ID_PUBLIC_BYTES];
    for (size_t i = 0; i < DM_ID_PUBLIC_BYTES; i++) {
        int hi = s_hexval(addr[2 * i]), lo = hi < 0 ? -1 : s_hexval(addr[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    return s_node_of(s, id);
}

typedef struct {
    sim_t *sim;
    uint32_t self;
} sim_obs_t;

static sim_obs_t *s_obs;

static void s_on_event(void *ctx, dm_membership_event ev, const dm_member_t *mem, int64_t now)
{
    sim_obs_t *o = ctx;
    sim_t *s = o->sim;
    if (ev != DM_MEMBERSHIP_EV_SUSPECT && ev != DM_MEMBERSHIP_EV_DEAD &&
        ev != DM_MEMBERSHIP_EV_JOINED)
        return;
    int subj = s_node_of(s, mem->id);
    if (subj < 0)
        return;
    if (subj != s->dead_subject && ev == DM_MEMBERSHIP_EV_SUSPECT)
        s->false_suspects++;
    if (subj == SIM_SLOW_NODE && ev == DM_MEMBERSHIP_EV_SUSPECT)
        s->slow_suspects++;
    if (subj != s->dead_subject && ev == DM_MEMBERSHIP_EV_DEAD)
        s->false_deaths++;
    if (subj == s->dead_subject && ev == DM_MEMBERSHIP_EV_SUSPECT && s->first_suspect < 0)
        s->first_suspect = now;
    if (subj == s->watch_subject && ev == s->watch_ev && s->seen_at[o->self] < 0) {
        s->seen_at[o->self] = now;
        s->seen++;
    }
}

static void s_send_all(sim_t *s, uint32_t from)
{
    dm_membership_t *m = s->m[from];
    while (dm_membership_next_outgoing(m, &s->out)) {
        int to = s->out.has_to_id ? s_node_of(s, s->out.to_id) : s_node_of_address(s, s->out.to);
        uint8_t *wire;
        size_t len;
        if (dm_membership_encode(&s->out.msg, &wire, &len) != DM_OK) {
            fprintf(stderr, "meshsim: node %u produced a message it cannot encode\n", from);
            exit(SIM_EXIT_FAIL);
        }
        if (s->counting) {
            s->msgs++;
            s->bytes += len;
        }
        double r = (double)(s_rand(s) >> 11) / 9007199254740992.0;
        if (to < 0 || r < s->loss) {
            free(wire);
            continue;
        }
        int64_t step = s->now / SIM_STEP_MS + 1 + (int64_t)(s_rand(s) % SIM_MAX_LATENCY_STEPS);
        if (s->slow_ms && to == SIM_SLOW_NODE) {
            /* it reads its socket only when it next gets the CPU */
            int64_t slot = s->slow_ms / SIM_STEP_MS;
            step = (step + slot - 1) / slot * slot;
        }
        sim_bucket_t *b = &s->wheel[step % (int64_t)s->nwheel];
        if (b->n == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 1024;
            b->v = realloc(b->v, b->cap * sizeof *b->v);
            if (!b->v) {
                fprintf(stderr, "meshsim: out of memory\n");
                exit(SIM_EXIT_FAIL);
            }
        }
        b->v[b->n++] = (sim_msg_t){(uint32_t)to, (uint32_t)len, wire};
    }
    s->deadline[from] = dm_membership_next_deadline(m);
}

/* One step of SIM_STEP_MS: deliveries due, then timers due. */
static void s_step(sim_t *s)
{
    s->now += SIM_STEP_MS;
    sim_bucket_t *b = &s->wheel[(s->now / SIM_STEP_MS) % (int64_t)s->nwheel];
    /* deliveries may queue into other buckets only (latency >= 1 step) */
    for (size_t i = 0; i < b->n; i++) {
        sim_msg_t *mg = &b->v[i];
        if (!s->down[mg->to] && dm_membership_decode(mg->data, mg->len, &s->in) == DM_OK) {
            dm_err rc = dm_membership_receive(s->m[mg->to], NULL, &s->in, s->now);
            if (rc == DM_OK)
                s_send_all(s, mg->to);
        }
        free(mg->data);
    }
    b->n = 0;
    bool slow_runs = s->slow_ms == 0 || s->now % s->slow_ms == 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (!s->down[i] && s->deadline[i] <= s->now && (i != SIM_SLOW_NODE || slow_runs)) {
            dm_membership_tick(s->m[i], s->now);
            s_send_all(s, i);
        }
    if (s->slow_ms && dm_membership_lhm(s->m[SIM_SLOW_NODE]) > s->slow_lhm_max)
        s->slow_lhm_max = dm_membership_lhm(s->m[SIM_SLOW_NODE]);
}

static void s_run_rounds(sim_t *s, double rounds)
{
    int64_t end = s->now + (int64_t)(rounds * (double)s->interval);
    while (s->now < end)
        s_step(s);
}

static void s_watch(sim_t *s, int subject, dm_membership_event ev)
{
    s->watch_subject = subject;
    s->watch_ev = ev;
    s->seen = 0;
    for (size_t i = 0; i < s->n; i++)
        s->seen_at[i] = -1;
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Runs until every observer saw the watched fact (or the limit), then
 * prints rounds to 99%, 99.99% and 100% of the observers from t0. */
static void s_report_fact(sim_t *s, const char *what, int64_t t0, size_t observers)
{
    int64_t limit = t0 + SIM_FACT_MAX_ROUNDS * s->interval;
    while (s->seen < observers && s->now < limit)
        s_step(s);
    int64_t *t = malloc(s->n * sizeof *t);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->seen_at[i] >= 0)
            t[k++] = s->seen_at[i];
    qsort(t, k, sizeof *t, s_cmp_i64);
    const double pct[] = {50, 99, 99.99, 100};
    printf("%-6s fact:", what);
    for (size_t p = 0; p < sizeof pct / sizeof *pct; p++) {
        size_t need = (size_t)((double)observers * pct[p] / 100.0 + 0.999999);
        if (need == 0)
            need = 1;
        if (need <= k)
            printf("  %g%% %.1f rounds", pct[p],
                   (double)(t[need - 1] - t0) / (double)s->interval);
        else
            printf("  %g%% not reached", pct[p]);
    }
    printf("  (%zu of %zu nodes)\n", k, observers);
    free(t);
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: meshsim --nodes N --loss PCT [--rounds R] [--seed S] [--fanout F] "
               "[--interval-ms MS] [--probe-ms P] [--slow-ms D]\n"
               "  N membership machines on virtual time; PCT%% of messages lost; R rounds of\n"
               "  steady state measured (default %d); gossip interval MS (default %d), probe\n"
               "  interval P (default 2 x MS), probe timeout P/2; F members per gossip round\n"
               "  (default %d).\n"
               "  --slow-ms D: node 1 gets the CPU only every D ms (reads its messages and\n"
               "  runs its timers then), as a node whose CPU is saturated.\n"
               "       meshsim catalog --nodes N --loss PCT [--seed S]\n"
               "  the catalog's anti-entropy instead (meshsim catalog --help).\n",
            SIM_DEFAULT_ROUNDS, DM_MEMBERSHIP_GOSSIP_INTERVAL_MS, DM_MEMBERSHIP_GOSSIP_FANOUT);
}

static bool s_num(const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || d < lo || d > hi)
        return false;
    *out = d;
    return true;
}

/* Reads the options into s (and nodes, loss, probe_ms). Returns -1 to go
 * on, else the exit status (after printing the usage or why not). */
static int s_parse(int argc, char **argv, sim_t *s, double *nodes, double *loss, int64_t *probe_ms)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            s_usage(stdout);
            return SIM_EXIT_OK;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "meshsim: %s needs a value (see meshsim --help)\n", a);
            return SIM_EXIT_USAGE;
        }
        const char *val = argv[++i];
        bool ok = true;
        if (strcmp(a, "--nodes") == 0)
            ok = s_num(val, 4, 100000, nodes);
        else if (strcmp(a, "--loss") == 0)
            ok = s_num(val, 0, 90, loss);
        else if (strcmp(a, "--rounds") == 0 && (ok = s_num(val, 1, 100000, &v)))
            s->rounds = (unsigned)v;
        else if (strcmp(a, "--seed") == 0 && (ok = s_num(val, 0, 1e18, &v)))
            s->seed = (uint64_t)v;
        else if (strcmp(a, "--fanout") == 0 && (ok = s_num(val, 1, 16, &v)))
            s->fanout = (unsigned)v;
        else if (strcmp(a, "--interval-ms") == 0 && (ok = s_num(val, 10, 60000, &v)))
            s->interval = (int64_t)v;
        else if (strcmp(a, "--probe-ms") == 0 && (ok = s_num(val, 20, 600000, &v)))
            *probe_ms = (int64_t)v;
        else if (strcmp(a, "--slow-ms") == 0 && (ok = s_num(val, 0, 60000, &v)))
            s->slow_ms = (int64_t)v / SIM_STEP_MS * SIM_STEP_MS;
        else if (strcmp(a, "--nodes") && strcmp(a, "--loss") && strcmp(a, "--rounds") &&
                 strcmp(a, "--seed") && strcmp(a, "--fanout") && strcmp(a, "--interval-ms") &&
                 strcmp(a, "--slow-ms") && strcmp(a, "--probe-ms")) {
            fprintf(stderr, "meshsim: unknown option %s (see meshsim --help)\n", a);
            return SIM_EXIT_USAGE;
        }
        if (!ok) {
            fprintf(stderr,
                    "meshsim: %s %s: expected a number (nodes 4-100000, loss 0-90, fanout "
                    "1-16, interval-ms 10-60000, probe-ms 20-600000, slow-ms 0-60000)\n",
                    a, val);
            return SIM_EXIT_USAGE;
        }
    }
    if (*nodes == 0 || *loss < 0) {
        fprintf(stderr, "meshsim: --nodes and --loss are required (see meshsim --help)\n");
        return SIM_EXIT_USAGE;
    }
    return -1;
}

/* Creates the s->n machines with cfg. Every node but the last knows every
 * other but the last, as after a restart from a persisted member list; the
 * last joins later and is down until then. Returns false (after printing
 * why, where there is a why) on failure. */
static bool s_build(sim_t *s, const dm_membership_config_t *cfg)
{
    size_t n = s->n;
    s->m = calloc(n, sizeof *s->m);
    s->id = calloc(n, sizeof *s->id);
    s->deadline = calloc(n, sizeof *s->deadline);
    s->down = calloc(n, sizeof *s->down);
    s->by_id = calloc(n, sizeof *s->by_id);
    s->seen_at = calloc(n, sizeof *s->seen_at);
    s_obs = calloc(n, sizeof *s_obs);
    s->addr = calloc(n, sizeof *s->addr);
    s->dom = calloc(n, sizeof *s->dom);
    if (!s->m || !s->id || !s->deadline || !s->down || !s->by_id || !s->seen_at || !s_obs ||
        !s->addr || !s->dom) {
        fprintf(stderr, "meshsim: out of memory\n");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t b = 0; b < DM_ID_PUBLIC_BYTES; b += 8) {
            uint64_t r = s_rand(s);
            memcpy(s->id[i] + b, &r, 8);
        }
        char ep[64];
        snprintf(ep, sizeof ep, "tcp://10.%zu.%zu.%zu:7000", (i >> 16) & 255, (i >> 8) & 255,
                 i & 255);
        if (dm_identity_address_format(s->id[i], ep, s->addr[i], sizeof s->addr[i], NULL) != DM_OK)
            return false;
        snprintf(s->dom[i], sizeof s->dom[i], "domain%zu", i);
        memcpy(s->by_id[i].id, s->id[i], DM_ID_PUBLIC_BYTES);
        s->by_id[i].node = (uint32_t)i;
        if (dm_membership_new(s->id[i], s->dom[i], s->addr[i], cfg, s->seed * 1000003u + i,
                              &s->m[i]) != DM_OK) {
            fprintf(stderr, "meshsim: cannot create machine %zu\n", i);
            return false;
        }
        s_obs[i] = (sim_obs_t){s, (uint32_t)i};
        dm_membership_on_event(s->m[i], s_on_event, &s_obs[i]);
    }
    qsort(s->by_id, n, sizeof *s->by_id, s_cmp_idx);
    size_t joiner = n - 1;
    for (size_t i = 0; i < joiner; i++) {
        for (size_t j = 0; j < joiner; j++) {
            dm_member_t mb = {.address = s->addr[j], .domain = s->dom[j],
                              .state = DM_MEMBER_ALIVE};
            memcpy(mb.id, s->id[j], DM_ID_PUBLIC_BYTES);
            if (dm_membership_add_known(s->m[i], &mb, 0) != DM_OK) {
                fprintf(stderr, "meshsim: out of memory at node %zu (try fewer nodes)\n", i);
                return false;
            }
        }
        dm_membership_trim(s->m[i]);
    }
    s->down[joiner] = true;
    return true;
}

/* Measures the steady state, then the two facts: the last node joins
 * through node 0, and a random node (not the seed nor the joiner) dies. */
static void s_measure(sim_t *s)
{
    size_t n = s->n, joiner = n - 1;
    s_run_rounds(s, SIM_WARMUP_ROUNDS);

    s->counting = true;
    s->msgs = s->bytes = 0;
    s_run_rounds(s, s->rounds);
    s->counting = false;
    double per_round = (double)(n - 1) * s->rounds;
    printf("steady  state: %.2f msgs and %.0f bytes sent per node per round (%.0f B/s), "
           "over %u rounds\n",
           (double)s->msgs / per_round, (double)s->bytes / per_round,
           (double)s->bytes / per_round * 1000.0 / (double)s->interval, s->rounds);

    s->down[joiner] = false;
    s_watch(s, (int)joiner, DM_MEMBERSHIP_EV_JOINED);
    int64_t t0 = s->now;
    dm_membership_join(s->m[joiner], s->addr[0], s->now);
    s_send_all(s, (uint32_t)joiner);
    s_report_fact(s, "join", t0, n - 1);
    s_run_rounds(s, 10);

    int victim = 2 + (int)(s_rand(s) % (n - 3));
    s->dead_subject = victim;
    s_watch(s, victim, DM_MEMBERSHIP_EV_DEAD);
    s->down[victim] = true;
    int64_t t1 = s->now;
    s_report_fact(s, "death", t1, n - 1);
    int64_t first = -1;
    for (size_t i = 0; i < n; i++)
        if (s->seen_at[i] >= 0 && (first < 0 || s->seen_at[i] < first))
            first = s->seen_at[i];
    if (first >= 0) {
        printf("death  first suspected after %.1f rounds, first declared dead after %.1f "
               "rounds; spread from there:\n",
               (double)(s->first_suspect - t1) / (double)s->interval,
               (double)(first - t1) / (double)s->interval);
        s_report_fact(s, "spread", first, n - 1);
    }
}

/* Frees the machines, the messages still in flight and s itself. */
static void s_free(sim_t *s)
{
    for (size_t i = 0; s->m && i < s->n; i++)
        dm_membership_destroy(&s->m[i]);
    for (size_t w = 0; s->wheel && w < s->nwheel; w++) {
        for (size_t i = 0; i < s->wheel[w].n; i++)
            free(s->wheel[w].v[i].data);
        free(s->wheel[w].v);
    }
    free(s->wheel);
    free(s->m);
    free(s->id);
    free(s->deadline);
    free(s->down);
    free(s->by_id);
    free(s->seen_at);
    free(s_obs);
    s_obs = NULL;
    free(s->addr);
    free(s->dom);
    free(s);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "catalog") == 0)
        return dm_meshsim_catalog_main(argc - 1, argv + 1);
    sim_t *s = calloc(1, sizeof *s);
    if (!s)
        return SIM_EXIT_FAIL;
    s->interval = DM_MEMBERSHIP_GOSSIP_INTERVAL_MS;
    s->fanout = DM_MEMBERSHIP_GOSSIP_FANOUT;
    s->seed = 1;
    s->rounds = SIM_DEFAULT_ROUNDS;
    double nodes = 0, loss = -1;
    int64_t probe_ms = 0;
    int rc = s_parse(argc, argv, s, &nodes, &loss, &probe_ms);
    if (rc >= 0) {
        s_free(s);
        return rc;
    }
    s->n = (size_t)nodes;
    s->nwheel = (size_t)(SIM_MAX_LATENCY_STEPS + 2 + 2 * s->slow_ms / SIM_STEP_MS);
    s->wheel = calloc(s->nwheel, sizeof *s->wheel);
    if (!s->wheel) {
        s_free(s);
        return SIM_EXIT_FAIL;
    }
    s->loss = loss / 100.0;
    s->rng = s->seed ^ 0x5eed5eed5eed5eedULL;
    s->dead_subject = -1;
    s->first_suspect = -1;
    s->watch_subject = -1;

    dm_membership_config_t cfg;
    dm_membership_config_default(&cfg);
    cfg.gossip_interval_ms = s->interval;
    cfg.probe_interval_ms = probe_ms ? probe_ms : 2 * s->interval;
    cfg.probe_timeout_ms = cfg.probe_interval_ms / 2;
    cfg.gossip_fanout = s->fanout;

    double w0 = dm_clock_mono_s();
    if (!s_build(s, &cfg)) {
        s_free(s);
        return SIM_EXIT_FAIL;
    }
    double w1 = dm_clock_mono_s();
    printf("meshsim: %zu nodes, loss %g%%, gossip interval %" PRId64 " ms, probe interval "
           "%" PRId64 " ms, fanout %u, seed %" PRIu64 ", slow node every %" PRId64 " ms\n",
           s->n, loss, s->interval, cfg.probe_interval_ms, s->fanout, s->seed, s->slow_ms);
    s_measure(s);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("false  suspicions %" PRIu64 ", false deaths %" PRIu64 " (suspicion events summed "
           "over all observers)\n",
           s->false_suspects, s->false_deaths);
    if (s->slow_ms)
        printf("slow   node: suspected in %" PRIu64 " events, its LHM peaked at %u\n",
               s->slow_suspects, s->slow_lhm_max);
    printf("cost   setup %.1f s, simulation %.1f s, max RSS %.0f MB, %.1f s simulated\n", w1 - w0,
           dm_clock_mono_s() - w1, (double)ru.ru_maxrss / 1024.0, (double)s->now / 1000.0);
    s_free(s);
    return SIM_EXIT_OK;
}
