/* meshq_describe.c: meshq describe DOMAIN/PRODUCT: a product's contract
 * as text (or its canonical JSON), its counts and its health (meshq_health.c).
 * The node answers for its own products from its store and for another
 * node's from its catalog (docs/sla.md). */
#include "meshq_describe.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "contract/contract.h"
#include "meshq_health.h"
#include "transport/envelope.h"

static const char *const P = "meshq";

/* Appends before, s (another team's text: control bytes, newlines
 * included, and C1 controls escaped by dm_cli_text, so that a value can
 * neither drive the terminal nor fake a line of this output), after. */
static void s_line(dm_buf_t *o, const char *before, const char *s, const char *after)
{
    dm_buf_puts(o, before);
    dm_cli_text(o, s, strlen(s));
    dm_buf_puts(o, after);
}

/* Appends label and values[0..n) as "[a, b]" (nothing when n is 0). */
static void s_values(dm_buf_t *o, const char *label, char *const *values, size_t n)
{
    for (size_t k = 0; k < n; k++)
        s_line(o, k ? ", " : label, values[k], k + 1 == n ? "]" : "");
}

static void s_print_num(dm_buf_t *o, const char *label, const dm_num_t *n)
{
    if (n->is_int)
        dm_buf_printf(o, " %s %" PRId64, label, n->i);
    else
        dm_buf_printf(o, " %s %.17g", label, n->d);
}

static void s_print_duration(dm_buf_t *o, const char *label, int64_t ms)
{
    if (ms < 0)
        return;
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{31536000000, "y"}, {604800000, "w"}, {86400000, "d"}, {3600000, "h"},
                 {60000, "m"},       {1000, "s"},      {1, "ms"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms % units[i].ms == 0) {
            dm_buf_printf(o, "%s%" PRId64 "%s", label, ms / units[i].ms, units[i].unit);
            return;
        }
}

/* A product's contract as text; d gives its counts (unknown for another
 * node's product whose owner published no health entry yet). */
static void s_describe_text(dm_buf_t *o, const dm_contract_t *c, const Dm__DescribeRep *d)
{
    dm_buf_printf(o, "%s/%s %s\n", c->domain, c->name, c->version);
    if (c->description)
        s_line(o, "  ", c->description, "\n");
    s_line(o, "owner: ", c->owner_team, " <");
    s_line(o, "", c->owner_contact, ">\n");
    if (d->from_catalog && !d->health)
        dm_buf_printf(o, "records: unknown (its owner has published no health entry yet)\n");
    else
        dm_buf_printf(o, "records: %" PRIu64 " (quarantined: %" PRIu64 ")%s\n", d->records,
                      d->quarantined, d->from_catalog ? ", as its owner last published them" : "");
    dm_buf_printf(o, "fields:\n");
    for (size_t i = 0; i < c->nfields; i++) {
        const dm_field_t *fd = &c->fields[i];
        dm_buf_printf(o, "  %-20s %-9s%s%s", fd->name, dm_contract_ftype_name(fd->type),
                      fd->primary_key ? " primary-key" : "", fd->required ? " required" : "");
        s_values(o, " values [", fd->values, fd->nvalues);
        if (fd->has_minimum)
            s_print_num(o, ">=", &fd->minimum);
        if (fd->has_exclusive_minimum)
            s_print_num(o, ">", &fd->exclusive_minimum);
        if (fd->has_maximum)
            s_print_num(o, "<=", &fd->maximum);
        if (fd->has_exclusive_maximum)
            s_print_num(o, "<", &fd->exclusive_maximum);
        if (fd->min_length >= 0)
            dm_buf_printf(o, " minLength %" PRId64, fd->min_length);
        if (fd->max_length >= 0)
            dm_buf_printf(o, " maxLength %" PRId64, fd->max_length);
        if (fd->pattern)
            s_line(o, " pattern /", fd->pattern, "/");
        if (fd->classification)
            s_line(o, " classification ", fd->classification, "");
        dm_buf_printf(o, "\n");
        if (fd->description)
            s_line(o, "                       ", fd->description, "\n");
    }
    if (c->freshness_ms >= 0 || c->availability > 0 || c->latency_ms > 0) {
        dm_buf_printf(o, "sla:");
        s_print_duration(o, " freshness ", c->freshness_ms);
        if (c->availability > 0)
            dm_buf_printf(o, " availability %g%%", c->availability);
        if (c->latency_ms > 0) {
            dm_buf_printf(o, " latency p%g <", c->latency_percentile);
            s_print_duration(o, " ", c->latency_ms);
        }
        dm_buf_printf(o, "\n");
    }
    if (c->nchecks) {
        dm_buf_printf(o, "quality checks:\n");
        for (size_t i = 0; i < c->nchecks; i++) {
            const dm_check_t *k = &c->checks[i];
            dm_buf_printf(o, "  %s", dm_contract_rule_name(k->rule));
            if (k->column)
                dm_buf_printf(o, " %s", k->column);
            s_values(o, " [", k->values, k->nvalues);
            if (k->has_min)
                s_print_num(o, "min", &k->min);
            if (k->has_max)
                s_print_num(o, "max", &k->max);
            if (k->pattern)
                s_line(o, " /", k->pattern, "/");
            if (k->rule == DM_CHECK_ROW_COUNT_DELTA)
                dm_buf_printf(o, " threshold %g%s", k->threshold,
                              k->threshold_is_percent ? "%" : "");
            if (k->rule == DM_CHECK_FRESHNESS)
                s_print_duration(o, " max_age ", k->max_age_ms);
            dm_buf_printf(o, "\n");
        }
    }
    dm_buf_printf(o, "policies: access %s", dm_contract_access_name(c->access));
    s_print_duration(o, ", retention ", c->retention_ms);
    dm_buf_printf(o, ", encryption %s\n", c->encryption == DM_ENC_AES256 ? "aes-256" : "none");
    if (c->nreaders) {
        dm_buf_printf(o, "readers (the contract's; dmctl grant and revoke change them):");
        for (size_t i = 0; i < c->nreaders; i++)
            s_line(o, " ", c->readers[i], "");
        dm_buf_printf(o, "\n");
    }
    if (c->nupstream) {
        dm_buf_printf(o, "lineage upstream:");
        for (size_t i = 0; i < c->nupstream; i++)
            dm_buf_printf(o, "%s %s.%s", i ? "," : "", c->upstream[i].domain,
                          c->upstream[i].product);
        dm_buf_printf(o, "\n");
    }
}

int dm_meshq_describe_run(const dm_cli_args_t *a)
{
    dm_cli_qualified_t q;
    if (dm_cli_product_arg(a, "meshq describe DOMAIN/PRODUCT [--json]", &q) != DM_EXIT_OK)
        return DM_EXIT_USAGE;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__DescribeReq body = DM__DESCRIBE_REQ__INIT;
    body.domain = (char *)q.domain;
    body.product = (char *)q.product;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_DESCRIBE_REQ, &body);
    Dm__Envelope *rep = NULL;
    int status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_DESCRIBE_REP, "describe", &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__DescribeRep *d = rep->describe_rep;
    if (dm_cli_get(a, "json")) {
        dm_buf_t h = DM_BUF_INIT;
        dm_meshq_health_json(d, &h);
        printf("{\"records\":%" PRIu64 ",\"quarantined\":%" PRIu64
               ",\"from_catalog\":%s,\"contract\":%.*s%s}\n",
               d->records, d->quarantined, d->from_catalog ? "true" : "false",
               (int)d->contract.len, (const char *)d->contract.data, h.data);
        dm_buf_free(&h);
        goto out;
    }
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    /* printed only: another team's patterns are not compiled here */
    if (dm_contract_parse_opts("node reply", (const char *)d->contract.data, d->contract.len,
                               NULL, DM_CONTRACT_NO_COMPILE, &list, &n, &diags) != DM_OK ||
        n != 1) {
        fprintf(stderr, "%s: the node sent a contract that does not parse\n", P);
        status = DM_EXIT_FAIL;
    } else {
        dm_buf_t o = DM_BUF_INIT;
        s_describe_text(&o, list[0], d);
        fputs(o.data ? o.data : "", stdout);
        dm_buf_free(&o);
        dm_meshq_health_text(d);
    }
    dm_contract_list_destroy(&list, n);
    dm_diags_clear(&diags);
out:
    dm__envelope__free_unpacked(rep, NULL);
    return status;
}
