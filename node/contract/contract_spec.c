/* contract_spec.c: spec.storage, spec.sla, spec.policies and
 * spec.interoperability -> the contract model (quality checks live in
 * contract_quality.c, the schema in contract_schema.c). */
#include "contract/contract_priv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PERCENT_DIGITS_MAX 6 /* p999999 is the finest latency percentile */

static void *s_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

void dm_contract__storage(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *n)
{
    static const char *const keys[] = {"format", "location", "partitioning", NULL};
    static const char *const grans[] = {"hour", "day", "month", "year"};
    if (!dm_contract__map(cx, n, "spec.storage", keys))
        return;
    const dm_ytree_node_t *v;
    if ((v = dm_ytree_get(n, "format")))
        (void)dm_contract__str(cx, v, "spec.storage.format", &c->storage_format);
    if ((v = dm_ytree_get(n, "location")))
        (void)dm_contract__str(cx, v, "spec.storage.location", &c->storage_location);
    if (!(v = dm_ytree_get(n, "partitioning")) || !dm_contract__seq(cx, v, "spec.storage.partitioning"))
        return;
    static const char *const pkeys[] = {"field", "granularity", NULL};
    c->partitions = s_calloc(v->n, sizeof *c->partitions);
    bool *used = s_calloc(c->nfields, sizeof *used); /* fields partitioned on so far */
    for (size_t i = 0; i < v->n; i++) {
        const dm_ytree_node_t *p = v->items[i], *f, *g;
        char what[64];
        snprintf(what, sizeof what, "spec.storage.partitioning[%zu]", i);
        if (!dm_contract__map(cx, p, what, pkeys))
            continue;
        int fi = -1, gi = -1;
        if ((f = dm_contract__need(cx, p, "field", what)))
            fi = dm_contract__column(cx, c, f, "partitioning field");
        if ((g = dm_contract__need(cx, p, "granularity", what)))
            gi = dm_contract__choice(cx, g, "partitioning granularity", grans, 4);
        if (fi < 0)
            continue;
        const dm_field_t *fd = &c->fields[fi];
        if (fd->type != DM_FT_TIMESTAMP && fd->type != DM_FT_DATE) {
            dm_contract__err(cx, f, "partitioning field '%s' is %s; it must be a timestamp or date field",
                      fd->name, dm_contract_ftype_name(fd->type));
            continue;
        }
        if (gi == DM_GRAN_HOUR && fd->type == DM_FT_DATE) {
            dm_contract__err(cx, g, "granularity hour needs a timestamp field; '%s' is a date (use day, "
                             "month or year)", fd->name);
            continue;
        }
        if (used[fi]) {
            dm_contract__err(cx, f, "partitioning names field '%s' twice", fd->name);
            continue;
        }
        if (gi < 0)
            continue;
        used[fi] = true;
        c->partitions[c->npartitions++] =
            (dm_partition_t){dm_contract__strdup(fd->name), (dm_granularity)gi};
    }
    free(used);
}

/* "pNN < DURATION" with optional spaces; p99 -> 99, p999 -> 99.9. */
static bool s_latency(const char *s, double *pct, int64_t *ms)
{
    while (*s == ' ')
        s++;
    if (*s++ != 'p' || *s < '1' || *s > '9')
        return false;
    /* all digits as one integer over 10^(digits-2): the division of two
     * exact values rounds once, so p999 gives exactly the double 99.9 */
    uint64_t v = 0;
    double scale = 1;
    size_t nd = 0;
    while (*s >= '0' && *s <= '9') {
        if (nd == S_PERCENT_DIGITS_MAX)
            return false;
        v = v * 10 + (uint64_t)(*s++ - '0');
        if (++nd > 2)
            scale *= 10;
    }
    *pct = v == 100 ? 100.0 : (double)v / scale;
    if (*pct <= 0 || *pct > 100)
        return false;
    while (*s == ' ')
        s++;
    if (*s++ != '<')
        return false;
    while (*s == ' ')
        s++;
    size_t len = strlen(s);
    while (len && s[len - 1] == ' ')
        len--;
    return dm_contract_duration_parse(s, len, ms) && *ms > 0;
}

void dm_contract__sla(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *n)
{
    static const char *const keys[] = {"freshness", "availability", "latency", NULL};
    if (!dm_contract__map(cx, n, "spec.sla", keys))
        return;
    const dm_ytree_node_t *v;
    if ((v = dm_ytree_get(n, "freshness")))
        (void)dm_contract__duration(cx, v, "spec.sla.freshness", &c->freshness_ms);
    dm_num_t a;
    if ((v = dm_ytree_get(n, "availability")) && dm_contract__num(cx, v, "spec.sla.availability", &a)) {
        if (a.d <= 0 || a.d > 100)
            dm_contract__err(cx, v, "spec.sla.availability is a percentage: it must be greater than 0 "
                             "and at most 100, got %s", v->text);
        else
            c->availability = a.d;
    }
    if (!(v = dm_ytree_get(n, "latency")))
        return;
    if (v->kind != DM_YNODE_SCALAR || dm_ytree_is_null(v) ||
        !s_latency(v->text, &c->latency_percentile, &c->latency_ms)) {
        dm_contract__err(cx, v,
                  "spec.sla.latency %s%s%s is not 'pNN < DURATION' (a percentile p50, p90, p99, "
                  "p999 ... and a duration greater than zero, such as p99 < 1s)",
                  DM_CONTRACT__SHOWN(v));
        c->latency_percentile = 0;
        c->latency_ms = -1;
    }
}

/* True if s is 64 hex digits (either case). */
static bool s_is_key_hex(const char *s)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return i == DM_CONTRACT_READER_HEX;
}

/* One policies.readers entry, lowercased when a key; NULL (reported) if
 * it is neither a key nor group:NAME. */
static char *s_reader(dm_contract__cx_t *cx, const dm_ytree_node_t *v)
{
    char *s;
    if (!dm_contract__str(cx, v, "spec.policies.readers entry", &s))
        return NULL;
    size_t gl = strlen(DM_CONTRACT_GROUP_PREFIX);
    if (strncmp(s, DM_CONTRACT_GROUP_PREFIX, gl) == 0 && dm_text_is_name(s + gl))
        return s;
    if (s_is_key_hex(s)) {
        for (char *p = s; *p; p++) /* stored lowercase: one key, one spelling */
            if (*p >= 'A' && *p <= 'F')
                *p = (char)(*p - 'A' + 'a');
        return s;
    }
    dm_contract__err(cx, v, "spec.policies.readers entry '%.80s%s' is not a reader: use an ed25519 "
                            "key as 64 hex digits or group:NAME (NAME matching " DM_TEXT_NAME_RULE ")",
                     s, strlen(s) > 80 ? "..." : "");
    free(s);
    return NULL;
}

/* spec.policies.readers: keys and groups, distinct, at most
 * DM_CONTRACT_MAX_READERS. */
static void s_readers(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *v)
{
    if (!dm_contract__seq(cx, v, "spec.policies.readers"))
        return;
    if (v->n > DM_CONTRACT_MAX_READERS) {
        dm_contract__err(cx, v, "spec.policies.readers lists %zu readers; a contract has at most %d "
                                "(grant more with a group: group:NAME)", v->n, DM_CONTRACT_MAX_READERS);
        return;
    }
    c->readers = s_calloc(v->n, sizeof *c->readers);
    const dm_ytree_node_t **at = s_calloc(v->n, sizeof *at);
    for (size_t i = 0; i < v->n; i++) {
        char *r = s_reader(cx, v->items[i]);
        if (!r)
            continue;
        at[c->nreaders] = v->items[i];
        c->readers[c->nreaders++] = r;
    }
    dm_sidx_t x = DM_SIDX_INIT;
    for (size_t i = 0; i < c->nreaders; i++)
        dm_sidx_add(&x, c->readers[i], strlen(c->readers[i]), i);
    dm_sidx_sort(&x);
    for (size_t i = 1; i < x.n; i++)
        if (dm_sidx_dup(&x, i))
            dm_contract__err(cx, at[x.e[i].pos], "spec.policies.readers: reader '%s' is listed twice",
                             x.e[i].s);
    dm_sidx_free(&x);
    free(at);
}

void dm_contract__policies(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *n)
{
    static const char *const keys[] = {"access", "readers", "retention", "encryption", NULL};
    static const char *const access[] = {"public", "restricted", "private"};
    static const char *const enc[] = {"none", "aes-256"};
    if (!dm_contract__map(cx, n, "spec.policies", keys))
        return;
    const dm_ytree_node_t *v;
    int i;
    if ((v = dm_ytree_get(n, "access")) &&
        (i = dm_contract__choice(cx, v, "spec.policies.access", access, 3)) >= 0)
        c->access = (dm_access)i;
    if ((v = dm_ytree_get(n, "retention")))
        (void)dm_contract__duration(cx, v, "spec.policies.retention", &c->retention_ms);
    if ((v = dm_ytree_get(n, "encryption")) &&
        (i = dm_contract__choice(cx, v, "spec.policies.encryption", enc, 2)) >= 0)
        c->encryption = (dm_encryption)i;
    if ((v = dm_ytree_get(n, "readers")))
        s_readers(cx, c, v);
}

/* Reports an upstream listed twice (at its later domain), by sorting
 * "domain/product" keys (names cannot hold '/'). */
static void s_upstream_twice(dm_contract__cx_t *cx, const dm_contract_t *c, const dm_ytree_node_t *const *at)
{
    dm_buf_t keys = DM_BUF_INIT;
    size_t *off = s_calloc(c->nupstream + 1, sizeof *off);
    for (size_t i = 0; i < c->nupstream; i++) {
        off[i] = keys.len;
        dm_buf_printf(&keys, "%s/%s", c->upstream[i].domain, c->upstream[i].product);
    }
    off[c->nupstream] = keys.len;
    dm_sidx_t x = DM_SIDX_INIT;
    for (size_t i = 0; i < c->nupstream; i++)
        dm_sidx_add(&x, keys.data + off[i], off[i + 1] - off[i], i);
    dm_sidx_sort(&x);
    for (size_t i = 1; i < x.n; i++)
        if (dm_sidx_dup(&x, i)) {
            const dm_upstream_t *l = &c->upstream[x.e[i].pos];
            dm_contract__err(cx, at[x.e[i].pos], "upstream %s/%s is listed twice", l->domain,
                      l->product);
        }
    dm_sidx_free(&x);
    free(off);
    dm_buf_free(&keys);
}

static void s_upstream(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *seq)
{
    static const char *const keys[] = {"product", "domain", NULL};
    if (!dm_contract__seq(cx, seq, "spec.interoperability.lineage.upstream"))
        return;
    c->upstream = s_calloc(seq->n, sizeof *c->upstream);
    const dm_ytree_node_t **at_domain = s_calloc(seq->n, sizeof *at_domain);
    for (size_t i = 0; i < seq->n; i++) {
        const dm_ytree_node_t *m = seq->items[i], *p, *d;
        char what[80];
        snprintf(what, sizeof what, "spec.interoperability.lineage.upstream[%zu]", i);
        if (!dm_contract__map(cx, m, what, keys))
            continue;
        dm_upstream_t l = {NULL, NULL};
        bool ok = true;
        const char *names[] = {"product", "domain"};
        char **dst[] = {&l.product, &l.domain};
        const dm_ytree_node_t *at[2];
        for (int k = 0; k < 2; k++) {
            char w[96];
            snprintf(w, sizeof w, "upstream %s", names[k]);
            at[k] = dm_contract__need(cx, m, names[k], what);
            if (!at[k] || !dm_contract__str(cx, at[k], w, dst[k])) {
                ok = false;
            } else if (!dm_text_is_name(*dst[k])) {
                dm_contract__err(cx, at[k], "%s '%s' is not a valid name: it must match "
                                     DM_TEXT_NAME_RULE, w, *dst[k]);
                ok = false;
            }
        }
        p = at[0];
        d = at[1];
        if (ok && c->name && c->domain && strcmp(l.product, c->name) == 0 &&
            strcmp(l.domain, c->domain) == 0) {
            dm_contract__err(cx, p, "a product cannot be its own upstream (%s/%s)", l.domain, l.product);
            ok = false;
        }
        if (ok) {
            at_domain[c->nupstream] = d;
            c->upstream[c->nupstream++] = l;
        } else {
            free(l.product);
            free(l.domain);
        }
    }
    s_upstream_twice(cx, c, at_domain);
    free(at_domain);
}

void dm_contract__interop(dm_contract__cx_t *cx, dm_contract_t *c, const dm_ytree_node_t *n)
{
    static const char *const keys[] = {"protocols", "lineage", NULL};
    static const char *const lkeys[] = {"upstream", NULL};
    static const char *const protos[] = {"graphql", "rest", "grpc", "sql"};
    if (!dm_contract__map(cx, n, "spec.interoperability", keys))
        return;
    const dm_ytree_node_t *v = dm_ytree_get(n, "protocols");
    if (v && dm_contract__seq(cx, v, "spec.interoperability.protocols")) {
        for (size_t i = 0; i < v->n; i++) {
            int p = dm_contract__choice(cx, v->items[i], "protocol", protos, 4);
            if (p < 0)
                continue;
            if (c->protocols & (1u << p))
                dm_contract__err(cx, v->items[i], "protocol '%s' is listed twice", protos[p]);
            c->protocols |= 1u << p;
        }
    }
    if ((v = dm_ytree_get(n, "lineage")) &&
        dm_contract__map(cx, v, "spec.interoperability.lineage", lkeys) &&
        (v = dm_ytree_get(v, "upstream")))
        s_upstream(cx, c, v);
}
