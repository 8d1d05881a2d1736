/* gossip_members.c: the members: who counts as one (dm_gossip_is_member,
 * asked by the catalog and the node), and the list on disk (DIR/members),
 * written after every change and read at start, so a restarted node
 * rejoins by itself. */
#include "gossip/gossip_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/lines.h"
#include "base/log.h"

/* ---- the member list on disk ----
 * A text file, rewritten atomically: "incarnation N" for this node, then
 * one "member ADDRESS DOMAIN INCARNATION STATE" line per member, departed
 * ones too: at start-up every one of them is a join seed, so a mesh whose
 * nodes all stopped together (each saw the others leave) re-forms. */

typedef struct {
    FILE *f;
    const uint8_t *self_id;
} s_save_ctx;

static void s_save_member(void *ctx, const dm_member_t *mb)
{
    s_save_ctx *sc = ctx;
    if (memcmp(mb->id, sc->self_id, DM_ID_PUBLIC_BYTES) == 0)
        return;
    fprintf(sc->f, "member %s %s %" PRIu64 " %s\n", mb->address,
            mb->domain[0] ? mb->domain : "-", mb->incarnation, dm_membership_state_name(mb->state));
}

void dm_gossip__save(dm_gossip_t *self)
{
    char path[DM_PATH_MAX], tmp[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", self->dir, DM_GOSSIP_MEMBERS_FILE);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", self->dir, DM_GOSSIP_MEMBERS_FILE);
    /* Whatever happens, this change is handled: a failed write is retried
     * at the next change, not on every loop pass (which would flood the log). */
    uint64_t inc = dm_membership_incarnation(self->m);
    self->saved_incarnation = inc;
    self->dirty = false;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        dm_log_warn("gossip: cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f, "incarnation %" PRIu64 "\n", inc);
    s_save_ctx sc = {f, dm_identity_public(self->id)};
    dm_membership_list(self->m, s_save_member, &sc);
    /* No fsync: this runs on the gossip loop, and a killed process keeps
     * what it wrote (page cache); only a power cut can lose the last
     * change, after which the node needs --join again. */
    bool ok = fflush(f) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        dm_log_warn("gossip: cannot save the member list to %s: %s", path, strerror(errno));
        unlink(tmp);
        return;
    }
}

/* Loads the persisted list: sets the incarnation above the saved one and
 * re-adds the members. A missing file is a first start. */
void dm_gossip__load(dm_gossip_t *self, int64_t now_ms)
{
    char path[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", self->dir, DM_GOSSIP_MEMBERS_FILE);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[DM_ADDRESS_MAX + 200];
    size_t n = 0;
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        unsigned long long inc;
        char addr[DM_ADDRESS_MAX], domain[DM_SWIM_DOMAIN_MAX], state[16] = "alive";
        if (sscanf(line, "incarnation %llu", &inc) == 1) {
            /* saturating: the maximum is still refutable (docs/membership.md) */
            dm_membership_set_incarnation(self->m, inc < UINT64_MAX ? (uint64_t)inc + 1
                                                                    : UINT64_MAX);
            continue;
        }
        if (sscanf(line, "member %319s %63s %llu %15s", addr, domain, &inc, state) < 3) {
            dm_log_warn("gossip: %s:%u is not a member line; skipped", path, lineno);
            continue;
        }
        dm_member_t mb = {.address = addr, .domain = strcmp(domain, "-") ? domain : "",
                          .state = DM_MEMBER_ALIVE, .incarnation = (uint64_t)inc,
                          .last_heard_ms = now_ms};
        char ep[DM_ID_ENDPOINT_MAX];
        bool live = strcmp(state, "alive") == 0 || strcmp(state, "suspect") == 0;
        if (dm_identity_address_parse(addr, mb.id, ep, sizeof ep, NULL) != DM_OK ||
            (live && dm_membership_add_known(self->m, &mb, now_ms) != DM_OK)) {
            dm_log_warn("gossip: %s:%u: bad member address; skipped", path, lineno);
            continue;
        }
        /* Every member we knew, departed or not, may let us back in: the
         * others may have forgotten us, and a stranger must JOIN. */
        dm_membership_join(self->m, addr, now_ms);
        n++;
    }
    fclose(f);
    dm_membership_trim(self->m);
    dm_log_info("gossip: %zu known member(s) from %s", n, path);
}

/* ---- who is a member ---- */

bool dm_gossip_is_member(const dm_gossip_t *self, const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    if (memcmp(id, dm_identity_public(self->id), DM_ID_PUBLIC_BYTES) == 0)
        return true;
    dm_member_state st = dm_membership_state_of(self->m, id);
    return st == DM_MEMBER_ALIVE || st == DM_MEMBER_SUSPECT;
}
