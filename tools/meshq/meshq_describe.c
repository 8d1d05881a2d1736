/* meshq_describe.c: meshq describe DOMAIN/PRODUCT: a product's contract
 * as text (or its canonical JSON), its counts and its health (meshq_health.c).
 * The node answers for its own products from its store and for another
 * node's from its catalog (docs/sla.md). */
#include "meshq_describe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "contract/contract.h"
#include "meshq_health.h"
#include "transport/envelope.h"

static const char *const P = "meshq";

static void s_print_num(FILE *f, const char *label, const dm_num_t *n)
{
    if (n->is_int)
        fprintf(f, " %s %" PRId64, label, n->i);
    else
        fprintf(f, " %s %.17g", label, n->d);
}

static void s_print_duration(FILE *f, const char *label, int64_t ms)
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
            fprintf(f, "%s%" PRId64 "%s", label, ms / units[i].ms, units[i].unit);
            return;
        }
}

/* A product's contract as text; d gives its counts (unknown for another
 * node's product whose owner published no health entry yet). */
static void s_describe_text(FILE *f, const dm_contract_t *c, const Dm__DescribeRep *d)
{
    fprintf(f, "%s/%s %s\n", c->domain, c->name, c->version);
    if (c->description)
        fprintf(f, "  %s\n", c->description);
    fprintf(f, "owner: %s <%s>\n", c->owner_team, c->owner_contact);
    if (d->from_catalog && !d->health)
        fprintf(f, "records: unknown (its owner has published no health entry yet)\n");
    else
        fprintf(f, "records: %" PRIu64 " (quarantined: %" PRIu64 ")%s\n", d->records, d->quarantined,
               d->from_catalog ? ", as its owner last published them" : "");
    fprintf(f, "fields:\n");
    for (size_t i = 0; i < c->nfields; i++) {
        const dm_field_t *fd = &c->fields[i];
        fprintf(f, "  %-20s %-9s%s%s", fd->name, dm_contract_ftype_name(fd->type),
                fd->primary_key ? " primary-key" : "", fd->required ? " required" : "");
        if (fd->nvalues) {
            fprintf(f, " values [");
            for (size_t k = 0; k < fd->nvalues; k++)
                fprintf(f, "%s%s", k ? ", " : "", fd->values[k]);
            fprintf(f, "]");
        }
        if (fd->has_minimum)
            s_print_num(f, ">=", &fd->minimum);
        if (fd->has_exclusive_minimum)
            s_print_num(f, ">", &fd->exclusive_minimum);
        if (fd->has_maximum)
            s_print_num(f, "<=", &fd->maximum);
        if (fd->has_exclusive_maximum)
            s_print_num(f, "<", &fd->exclusive_maximum);
        if (fd->min_length >= 0)
            fprintf(f, " minLength %" PRId64, fd->min_length);
        if (fd->max_length >= 0)
            fprintf(f, " maxLength %" PRId64, fd->max_length);
        if (fd->pattern)
            fprintf(f, " pattern /%s/", fd->pattern);
        if (fd->classification)
            fprintf(f, " classification %s", fd->classification);
        fprintf(f, "\n");
        if (fd->description)
            fprintf(f, "  %-20s %s\n", "", fd->description);
    }
    if (c->freshness_ms >= 0 || c->availability > 0 || c->latency_ms > 0) {
        fprintf(f, "sla:");
        s_print_duration(f, " freshness ", c->freshness_ms);
        if (c->availability > 0)
            fprintf(f, " availability %g%%", c->availability);
        if (c->latency_ms > 0) {
            fprintf(f, " latency p%g <", c->latency_percentile);
            s_print_duration(f, " ", c->latency_ms);
        }
        fprintf(f, "\n");
    }
    if (c->nchecks) {
        fprintf(f, "quality checks:\n");
        for (size_t i = 0; i < c->nchecks; i++) {
            const dm_check_t *k = &c->checks[i];
            fprintf(f, "  %s", dm_contract_rule_name(k->rule));
            if (k->column)
                fprintf(f, " %s", k->column);
            if (k->nvalues) {
                fprintf(f, " [");
                for (size_t v = 0; v < k->nvalues; v++)
                    fprintf(f, "%s%s", v ? ", " : "", k->values[v]);
                fprintf(f, "]");
            }
            if (k->has_min)
                s_print_num(f, "min", &k->min);
            if (k->has_max)
                s_print_num(f, "max", &k->max);
            if (k->pattern)
                fprintf(f, " /%s/", k->pattern);
            if (k->rule == DM_CHECK_ROW_COUNT_DELTA)
                fprintf(f, " threshold %g%s", k->threshold, k->threshold_is_percent ? "%" : "");
            if (k->rule == DM_CHECK_FRESHNESS)
                s_print_duration(f, " max_age ", k->max_age_ms);
            fprintf(f, "\n");
        }
    }
    fprintf(f, "policies: access %s", dm_contract_access_name(c->access));
    s_print_duration(f, ", retention ", c->retention_ms);
    fprintf(f, ", encryption %s\n", c->encryption == DM_ENC_AES256 ? "aes-256" : "none");
    if (c->nreaders) {
        fprintf(f, "readers (the contract's; dmctl grant and revoke change them):");
        for (size_t i = 0; i < c->nreaders; i++)
            fprintf(f, " %s", c->readers[i]);
        fprintf(f, "\n");
    }
    if (c->nupstream) {
        fprintf(f, "lineage upstream:");
        for (size_t i = 0; i < c->nupstream; i++)
            fprintf(f, "%s %s.%s", i ? "," : "", c->upstream[i].domain, c->upstream[i].product);
        fprintf(f, "\n");
    }
}

/* Prints c as text: a contract may be another team's (from the catalog),
 * so its control characters show as '?' and cannot drive the terminal. */
static int s_describe_print(const dm_contract_t *c, const Dm__DescribeRep *d)
{
    FILE *tmp = tmpfile();
    if (!tmp) {
        fprintf(stderr, "%s: no temporary file for the description: %s\n", P, strerror(errno));
        return DM_EXIT_FAIL;
    }
    s_describe_text(tmp, c, d);
    rewind(tmp);
    for (int ch; (ch = getc(tmp)) != EOF;)
        putchar((ch < 0x20 && ch != '\n') || ch == 0x7f ? '?' : ch);
    fclose(tmp);
    return DM_EXIT_OK;
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
    if (dm_contract_parse("node reply", (const char *)d->contract.data, d->contract.len, NULL,
                          &list, &n, &diags) != DM_OK || n != 1) {
        fprintf(stderr, "%s: the node sent a contract that does not parse\n", P);
        status = DM_EXIT_USAGE;
    } else {
        status = s_describe_print(list[0], d);
        if (status == DM_EXIT_OK)
            dm_meshq_health_text(d);
    }
    dm_contract_list_destroy(&list, n);
    dm_diags_clear(&diags);
out:
    dm__envelope__free_unpacked(rep, NULL);
    return status;
}
