/* meshq_health.c: a product's health as meshq describe shows it (see
 * meshq_health.h). */
#include "meshq_health.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "cli/cli.h"

#define S_SLA_TEXT_MAX 200

/* s made safe for a terminal (an owner's record is quoted): valid UTF-8
 * as is, control bytes as \xNN; into b (reset), returned. */
static const char *s_safe(dm_buf_t *b, const char *s)
{
    dm_buf_reset(b);
    dm_cli_text(b, s, strlen(s));
    return b->data ? b->data : "";
}

/* "met", "breached" or "unknown" for one term. */
static const char *s_verdict(const Dm__SlaStatus *s)
{
    return s->unknown ? "unknown" : s->met ? "met" : "BREACHED";
}

void dm_meshq_health_text(const Dm__DescribeRep *d)
{
    const Dm__HealthRecord *h = d->health;
    if (!h) {
        printf("health: unknown (the owner has published none yet)\n");
    } else {
        char at[DM_CLOCK_UTC_TEXT_MAX] = "", ingest[DM_CLOCK_UTC_TEXT_MAX] = "never";
        if (h->measured_at_ms)
            dm_clock_utc_text(h->measured_at_ms, at);
        if (h->last_ingest_ms)
            dm_clock_utc_text(h->last_ingest_ms, ingest);
        dm_buf_t o = DM_BUF_INIT;
        printf("health: %s (measured %s; last ingest %s; %" PRIu64 " records, %" PRIu64
               " quarantined)\n",
               h->outcome[0] ? s_safe(&o, h->outcome) : "not checked yet", at, ingest,
               h->records, h->quarantined);
        dm_buf_free(&o);
        if (h->n_checks)
            printf("  checks:\n");
        dm_buf_t b[4] = {DM_BUF_INIT, DM_BUF_INIT, DM_BUF_INIT, DM_BUF_INIT};
        for (size_t i = 0; i < h->n_checks; i++) {
            const Dm__CheckResult *k = h->checks[i];
            printf("    %-24s %-7s observed %s", s_safe(&b[0], k->name),
                   s_safe(&b[1], k->outcome),
                   k->observed_text[0] ? s_safe(&b[2], k->observed_text) : "-");
            if (k->threshold[0])
                printf(", threshold %s", s_safe(&b[0], k->threshold));
            if (k->reason[0])
                printf(": %s", s_safe(&b[0], k->reason));
            printf("\n");
        }
        if (h->n_sla)
            printf("  sla:\n");
        for (size_t i = 0; i < h->n_sla; i++) {
            const Dm__SlaStatus *s = h->sla[i];
            char target[S_SLA_TEXT_MAX];
            snprintf(target, sizeof target, "target %s", s_safe(&b[1], s->target));
            printf("    %-13s %-22s measured %-36s %s\n", s_safe(&b[0], s->kind), target,
                   s_safe(&b[2], s->measured), s_verdict(s));
        }
        for (size_t i = 0; i < 4; i++)
            dm_buf_free(&b[i]);
    }
    if (d->degraded[0]) {
        dm_buf_t b = DM_BUF_INIT;
        printf("%s\n", s_safe(&b, d->degraded));
        dm_buf_free(&b);
    }
}

void dm_meshq_health_json(const Dm__DescribeRep *d, dm_buf_t *o)
{
    const Dm__HealthRecord *h = d->health;
    dm_buf_puts(o, ",\"health\":");
    if (!h) {
        dm_buf_puts(o, "null");
    } else {
        dm_buf_puts(o, "{\"outcome\":");
        dm_cli_json_string(o, h->outcome, strlen(h->outcome));
        dm_buf_printf(o,
                      ",\"measured_at_ms\":%" PRId64 ",\"last_ingest_ms\":%" PRId64
                      ",\"records\":%" PRIu64 ",\"quarantined\":%" PRIu64 ",\"checks\":[",
                      h->measured_at_ms, h->last_ingest_ms, h->records, h->quarantined);
        for (size_t i = 0; i < h->n_checks; i++) {
            const Dm__CheckResult *k = h->checks[i];
            const char *keys[] = {"name", "rule", "column", "outcome", "observed_text",
                                  "threshold", "reason"};
            const char *vals[] = {k->name, k->rule, k->column, k->outcome, k->observed_text,
                                  k->threshold, k->reason};
            dm_buf_puts(o, i ? ",{" : "{");
            for (size_t f = 0; f < sizeof keys / sizeof *keys; f++) {
                dm_buf_printf(o, "%s\"%s\":", f ? "," : "", keys[f]);
                dm_cli_json_string(o, vals[f], strlen(vals[f]));
            }
            dm_buf_puts(o, ",\"observed\":"); /* inf or NaN: null, observed_text says which */
            dm_cli_json_number(o, k->observed);
            dm_buf_putc(o, '}');
        }
        dm_buf_puts(o, "],\"sla\":[");
        for (size_t i = 0; i < h->n_sla; i++) {
            const Dm__SlaStatus *s = h->sla[i];
            dm_buf_puts(o, i ? ",{\"kind\":" : "{\"kind\":");
            dm_cli_json_string(o, s->kind, strlen(s->kind));
            dm_buf_puts(o, ",\"target\":");
            dm_cli_json_string(o, s->target, strlen(s->target));
            dm_buf_puts(o, ",\"measured\":");
            dm_cli_json_string(o, s->measured, strlen(s->measured));
            dm_buf_printf(o, ",\"status\":\"%s\"}",
                          s->unknown ? "unknown" : s->met ? "met" : "breached");
        }
        dm_buf_puts(o, "]}");
    }
    dm_buf_puts(o, ",\"degraded\":");
    dm_cli_json_string(o, d->degraded, strlen(d->degraded));
}
