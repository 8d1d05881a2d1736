/* meshsim_catalog.c: `meshsim catalog`, the catalog's anti-entropy in one
 * process on virtual time: N real catalog state machines
 * (node/catalog/catalog.h, in memory) exchanging the same messages as
 * node/gossip/gossip.c (a digest hash, then digest pages and deltas), each
 * message lost with the given probability. One node publishes a new fact (its node record and a
 * contract); the run reports how many rounds until 99% and all nodes hold
 * it, and the messages and bytes each node sends per round. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "contract/contract.h"
#include "identity/identity.h"
#include "base/log.h"
#include "meshsim.h"

#define MS_SYNC_ROUNDS 5      /* periodic hash poke: every 5 rounds of 200 ms = 1 s */
#define MS_PUSH_FANOUT 3      /* pokes when a node learned something */
#define MS_DELTA_BYTES (256 << 10)
#define MS_MAX_ROUNDS 200
#define MS_HASH_MSG_BYTES 48  /* hash + reply address, about */

typedef struct {
    dm_identity_t *id;
    dm_catalog_t *cat;
    bool changed;   /* learned something this round: pokes next round */
    unsigned phase; /* round offset of its periodic poke */
} ms_node_t;

typedef struct {
    ms_node_t *nodes;
    size_t n;
    double loss;
    uint64_t rng;
    uint64_t msgs, bytes;
} ms_sim_t;

static uint64_t s_rand(ms_sim_t *s)
{
    uint64_t x = s->rng += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Whether a message of len bytes from a node arrives (and counts it). */
static bool s_deliver(ms_sim_t *s, size_t len)
{
    s->msgs++;
    s->bytes += len;
    return (double)(s_rand(s) >> 11) / 9007199254740992.0 >= s->loss;
}

static void s_hash(dm_catalog_t *c, uint8_t out[crypto_hash_sha256_BYTES], dm_buf_t *digest)
{
    dm_buf_reset(digest);
    dm_catalog_digest(c, digest);
    crypto_hash_sha256(out, (const unsigned char *)(digest->data ? digest->data : ""), digest->len);
}

/* Applies a delta that arrived; marks the node when it learned something. */
static void s_take(ms_node_t *to, const dm_buf_t *delta, int64_t now)
{
    dm_catalog_counts_t counts;
    if (delta->len && dm_catalog_apply_delta(to->cat, delta->data, delta->len, now, &counts, NULL,
                                             NULL) == DM_OK &&
        counts.n[DM_CATALOG_ACCEPTED])
        to->changed = true;
}

/* A pokes B: the steps of node/gossip/gossip.c, each message may be lost.
 * 1. A -> B {hash}; 2. B -> A {hash, first digest page}; 3. A -> B {A's
 * page of that range, delta}; 4. B -> A {delta, and while pages remain
 * hash + B's next page}, which A answers as in 3. */
static void s_exchange(ms_sim_t *s, size_t a, size_t b, int64_t now)
{
    ms_node_t *A = &s->nodes[a], *B = &s->nodes[b];
    dm_buf_t da = DM_BUF_INIT, db = DM_BUF_INIT, page = DM_BUF_INIT;
    uint8_t ha[crypto_hash_sha256_BYTES], hb[crypto_hash_sha256_BYTES];
    s_hash(A->cat, ha, &da);
    if (!s_deliver(s, MS_HASH_MSG_BYTES))                      /* 1. A -> B {hash} */
        goto out;
    s_hash(B->cat, hb, &db);
    if (memcmp(ha, hb, sizeof ha) == 0)
        goto out;
    dm_catalog_digest_first(B->cat, &page);
    if (!s_deliver(s, MS_HASH_MSG_BYTES + page.len))           /* 2. B -> A {hash, page} */
        goto out;
    for (;;) {
        dm_buf_t delta = DM_BUF_INIT, mine = DM_BUF_INIT, next = DM_BUF_INIT;
        bool ask = false, lost = true;
        if (dm_catalog_answer(A->cat, page.data, page.len, true, MS_DELTA_BYTES, &delta, &mine,
                              &ask) != DM_OK ||
            !s_deliver(s, MS_HASH_MSG_BYTES + mine.len + delta.len)) /* 3. A -> B */
            goto next;
        s_take(B, &delta, now);
        dm_buf_reset(&delta);
        if (dm_catalog_answer(B->cat, mine.data, mine.len, false, MS_DELTA_BYTES, &delta, &next,
                              &ask) != DM_OK ||
            (!delta.len && !next.len) ||
            !s_deliver(s, MS_HASH_MSG_BYTES + next.len + delta.len)) /* 4. B -> A */
            goto next;
        s_take(A, &delta, now);
        lost = false;
    next:
        dm_buf_free(&page);
        page = next;
        dm_buf_free(&delta);
        dm_buf_free(&mine);
        if (lost || !ask)
            break;
    }
out:
    dm_buf_free(&da);
    dm_buf_free(&db);
    dm_buf_free(&page);
}

static size_t s_holding(ms_sim_t *s, const uint8_t *origin, const char *key)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        dm_catalog_entry_t e = {0};
        if (dm_catalog_get(s->nodes[i].cat, origin, key, &e) == DM_OK)
            k++;
        dm_catalog_entry_clear(&e);
    }
    return k;
}

/* The fact: node 0 claims its domain and publishes a contract. Returns
 * false if that fails. */
static bool s_publish(ms_sim_t *s, int64_t now)
{
    const char *text = "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: orders\n"
                       "  domain: commerce\n  version: 1.0.0\n  owner: {team: t, contact: t@x.io}\n"
                       "spec:\n  schema:\n    fields: [{name: id, type: int, required: true}]\n";
    dm_contract_t **list = NULL;
    size_t nc = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_buf_t canon = DM_BUF_INIT;
    bool ok = false;
    if (dm_contract_parse("sim", text, strlen(text), NULL, &list, &nc, &diags) != DM_OK)
        goto out;
    dm_contract_canonical(list[0], &canon);
    char addr[DM_ADDRESS_MAX];
    ok = dm_identity_address_format(dm_identity_public(s->nodes[0].id), "tcp://127.0.0.1:7400",
                                    addr, sizeof addr, NULL) == DM_OK &&
         dm_catalog_publish_node(s->nodes[0].cat, "commerce", addr, now, NULL) == DM_OK &&
         dm_catalog_publish(s->nodes[0].cat, "product/commerce/orders", canon.data, canon.len,
                            false, now, NULL) == DM_OK;
    s->nodes[0].changed = true;
out:
    dm_contract_list_destroy(&list, nc);
    dm_diags_clear(&diags);
    dm_buf_free(&canon);
    return ok;
}

/* Runs rounds from *now until every node holds node 0's contract or
 * MS_MAX_ROUNDS have passed: a node that learned something pokes
 * MS_PUSH_FANOUT random peers, and every node pokes one on its periodic
 * phase. Sets *r99 and *rall to the rounds at which 99% and all nodes held
 * it (0: not within MS_MAX_ROUNDS) and returns the rounds run. */
static unsigned s_spread(ms_sim_t *s, int64_t *now, unsigned *r99, unsigned *rall)
{
    size_t n = s->n;
    const uint8_t *origin = dm_identity_public(s->nodes[0].id);
    unsigned r;
    *r99 = *rall = 0;
    for (r = 1; r <= MS_MAX_ROUNDS && !*rall; r++) {
        *now += 200;
        bool *poke = calloc(n, sizeof *poke);
        for (size_t i = 0; i < n; i++) {
            poke[i] = s->nodes[i].changed;
            s->nodes[i].changed = false;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned k = poke[i] ? MS_PUSH_FANOUT : 0;
            if (s->nodes[i].phase == r % MS_SYNC_ROUNDS)
                k++;
            for (unsigned j = 0; j < k; j++) {
                size_t peer = (size_t)(s_rand(s) % (n - 1));
                s_exchange(s, i, peer >= i ? peer + 1 : peer, *now);
            }
        }
        free(poke);
        size_t have = s_holding(s, origin, "product/commerce/orders");
        if (!*r99 && have * 100 >= n * 99)
            *r99 = r;
        if (have == n)
            *rall = r;
    }
    return r - 1;
}

/* Reads the options; returns -1 to go on, else the exit status (after
 * printing the usage or why not). */
static int s_parse(int argc, char **argv, size_t *n, double *loss, uint64_t *seed)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--nodes") == 0)
            *n = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--loss") == 0)
            *loss = strtod(argv[++i], NULL) / 100.0;
        else if (i + 1 < argc && strcmp(argv[i], "--seed") == 0)
            *seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: meshsim catalog --nodes N --loss PCT [--seed S]\n"
                            "Runs N in-memory catalogs exchanging digests and deltas as meshd does\n"
                            "(a hash poke every %d rounds, %d pokes when something is new), one\n"
                            "node publishes a contract, and prints the rounds until 99%% and all\n"
                            "nodes hold it and the traffic per node per round.\n",
                    MS_SYNC_ROUNDS, MS_PUSH_FANOUT);
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (*n < 2 || *n > 100000 || *loss < 0 || *loss >= 1) {
        fprintf(stderr, "meshsim catalog: --nodes 2..100000, --loss 0..99\n");
        return 2;
    }
    return -1;
}

int dm_meshsim_catalog_main(int argc, char **argv)
{
    size_t n = 1000;
    double loss = 0.01;
    uint64_t seed = 1;
    int rc = s_parse(argc, argv, &n, &loss, &seed);
    if (rc >= 0)
        return rc;
    dm_log_init("meshsim", DM_LOG_ERR);
    ms_sim_t s = {calloc(n, sizeof(ms_node_t)), n, loss, seed, 0, 0};
    if (!s.nodes)
        return 1;
    for (size_t i = 0; i < n; i++) {
        if (dm_identity_new_ephemeral(&s.nodes[i].id) != DM_OK ||
            dm_catalog_open(NULL, s.nodes[i].id, &s.nodes[i].cat, NULL) != DM_OK)
            return 1;
        s.nodes[i].phase = (unsigned)(s_rand(&s) % MS_SYNC_ROUNDS);
    }
    /* Steady state before the fact: everyone's catalog is the same (empty
     * of others), so pokes cost only hashes. */
    int64_t now = 1700000000000;
    for (unsigned r = 0; r < MS_SYNC_ROUNDS; r++)
        for (size_t i = 0; i < n; i++)
            if (s.nodes[i].phase == r % MS_SYNC_ROUNDS)
                s_exchange(&s, i, (size_t)(s_rand(&s) % n), now);
    double steady_msgs = (double)s.msgs / n / MS_SYNC_ROUNDS;
    double steady_bytes = (double)s.bytes / n / MS_SYNC_ROUNDS;
    uint64_t m0 = s.msgs, b0 = s.bytes;

    if (!s_publish(&s, now))
        return 1;
    unsigned r99, rall;
    unsigned rounds = s_spread(&s, &now, &r99, &rall);
    double spread_msgs = (double)(s.msgs - m0) / n / rounds;
    double spread_bytes = (double)(s.bytes - b0) / n / rounds;
    printf("catalog sim: %zu nodes, %.0f%% loss: the new contract reached 99%% in %u rounds, all "
           "in %u rounds (200 ms each; 0 = not within %d); per node per round: %.2f messages / "
           "%.0f bytes while it spread, %.2f messages / %.0f bytes at steady state\n",
           n, loss * 100, r99, rall, MS_MAX_ROUNDS, spread_msgs, spread_bytes, steady_msgs,
           steady_bytes);
    for (size_t i = 0; i < n; i++) {
        dm_catalog_destroy(&s.nodes[i].cat);
        dm_identity_destroy(&s.nodes[i].id);
    }
    free(s.nodes);
    return rall ? 0 : 1;
}
