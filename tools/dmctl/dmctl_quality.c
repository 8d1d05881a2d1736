/* dmctl_quality.c: `dmctl quality DOMAIN/PRODUCT [--run] [--json|--junit]
 * [--history N]`: a product's quality report from its owner, as text, JSON
 * or JUnit XML. The exit status follows Soda's scan: 0 every check passed
 * (skipped ones included), 1 a warning, 2 a failure, 3 a check erred, 4
 * the report could not be had (usage, connection, refusal). */
#include "dmctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/types.h"
#include "transport/envelope.h"

#define S_P "dmctl"
#define S_EXIT_WARN 1
#define S_EXIT_FAIL 2
#define S_EXIT_ERROR 3
#define S_EXIT_NOREPORT 4
#define S_HISTORY_MAX 100

static int s_exit_of(const char *outcome)
{
    if (strcmp(outcome, "warn") == 0)
        return S_EXIT_WARN;
    if (strcmp(outcome, "fail") == 0)
        return S_EXIT_FAIL;
    if (strcmp(outcome, "error") == 0)
        return S_EXIT_ERROR;
    return 0; /* pass, skipped */
}

static void s_time(int64_t ms, char *buf)
{
    if (ms <= 0)
        snprintf(buf, DM_TIMESTAMP_TEXT_MAX, "never");
    else
        dm_types_timestamp_format(ms * 1000, buf);
}

static void s_json_str(dm_buf_t *o, const char *s)
{
    dm_cli_json_string(o, s ? s : "", s ? strlen(s) : 0);
}

static void s_json_report(dm_buf_t *o, const Dm__QualityReport *r)
{
    char at[DM_TIMESTAMP_TEXT_MAX], last[DM_TIMESTAMP_TEXT_MAX];
    s_time(r->at_ms, at);
    s_time(r->last_ingest_ms, last);
    dm_buf_printf(o, "{\"at\":\"%s\",\"outcome\":", at);
    s_json_str(o, r->outcome);
    dm_buf_printf(o, ",\"records\":%" PRIu64 ",\"last_ingest\":\"%s\",\"checks\":[", r->records,
                  last);
    for (size_t i = 0; i < r->n_checks; i++) {
        const Dm__CheckResult *c = r->checks[i];
        dm_buf_puts(o, i ? ",{\"name\":" : "{\"name\":");
        s_json_str(o, c->name);
        dm_buf_puts(o, ",\"rule\":");
        s_json_str(o, c->rule);
        dm_buf_puts(o, ",\"column\":");
        s_json_str(o, c->column);
        dm_buf_puts(o, ",\"outcome\":");
        s_json_str(o, c->outcome);
        dm_buf_printf(o, ",\"observed\":%.17g,\"observed_text\":",
                      c->observed == c->observed && c->observed - c->observed == 0 ? c->observed
                                                                                  : 0);
        s_json_str(o, c->observed_text);
        dm_buf_puts(o, ",\"threshold\":");
        s_json_str(o, c->threshold);
        dm_buf_puts(o, ",\"reason\":");
        s_json_str(o, c->reason);
        dm_buf_puts(o, ",\"samples\":[");
        for (size_t j = 0; j < c->n_samples; j++) {
            if (j)
                dm_buf_putc(o, ',');
            s_json_str(o, c->samples[j]);
        }
        dm_buf_puts(o, "]}");
    }
    dm_buf_puts(o, "]}");
}

/* Appends s with XML's five special characters escaped and control bytes
 * dropped (XML 1.0 cannot carry them). */
static void s_xml(dm_buf_t *o, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': dm_buf_puts(o, "&lt;"); break;
        case '>': dm_buf_puts(o, "&gt;"); break;
        case '&': dm_buf_puts(o, "&amp;"); break;
        case '"': dm_buf_puts(o, "&quot;"); break;
        case '\'': dm_buf_puts(o, "&apos;"); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
                dm_buf_putc(o, *s);
        }
    }
}

static void s_junit(dm_buf_t *o, const char *qualified, const Dm__QualityReport *r)
{
    size_t fails = 0, errors = 0, skipped = 0;
    for (size_t i = 0; i < r->n_checks; i++) {
        fails += strcmp(r->checks[i]->outcome, "fail") == 0;
        errors += strcmp(r->checks[i]->outcome, "error") == 0;
        skipped += strcmp(r->checks[i]->outcome, "skipped") == 0;
    }
    dm_buf_puts(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
                   "  <testsuite name=\"");
    s_xml(o, qualified);
    dm_buf_printf(o, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\">\n",
                  r->n_checks, fails, errors, skipped);
    for (size_t i = 0; i < r->n_checks; i++) {
        const Dm__CheckResult *c = r->checks[i];
        dm_buf_puts(o, "    <testcase classname=\"");
        s_xml(o, qualified);
        dm_buf_puts(o, "\" name=\"");
        s_xml(o, c->name);
        dm_buf_puts(o, "\">\n");
        const char *tag = strcmp(c->outcome, "fail") == 0      ? "failure"
                          : strcmp(c->outcome, "error") == 0   ? "error"
                          : strcmp(c->outcome, "skipped") == 0 ? "skipped"
                                                               : NULL;
        if (tag) {
            dm_buf_printf(o, "      <%s message=\"", tag);
            s_xml(o, c->reason);
            dm_buf_puts(o, "\"/>\n");
        }
        dm_buf_puts(o, "      <system-out>");
        s_xml(o, c->outcome);
        dm_buf_puts(o, ": ");
        s_xml(o, c->observed_text);
        dm_buf_puts(o, " (threshold: ");
        s_xml(o, c->threshold);
        dm_buf_puts(o, ")</system-out>\n    </testcase>\n");
    }
    dm_buf_puts(o, "  </testsuite>\n</testsuites>\n");
}

static void s_text(dm_buf_t *o, const char *qualified, const Dm__QualityReport *r)
{
    char at[DM_TIMESTAMP_TEXT_MAX], last[DM_TIMESTAMP_TEXT_MAX];
    s_time(r->at_ms, at);
    s_time(r->last_ingest_ms, last);
    dm_buf_printf(o, "%s: %s (%zu check%s, %" PRIu64 " records, judged %s, last ingest %s)\n",
                  qualified, r->outcome, r->n_checks, r->n_checks == 1 ? "" : "s", r->records,
                  at, last);
    for (size_t i = 0; i < r->n_checks; i++) {
        const Dm__CheckResult *c = r->checks[i];
        dm_buf_printf(o, "  %-7s %-28s %s [%s]\n", c->outcome, c->name, c->observed_text,
                      c->threshold);
        if (c->reason && *c->reason)
            dm_buf_printf(o, "          %s\n", c->reason);
        for (size_t j = 0; j < c->n_samples; j++)
            dm_buf_printf(o, "          sample: %s\n", c->samples[j]);
    }
}

/* Reads --history N (0 when absent); -1 after printing when invalid. */
static long s_history_opt(const dm_cli_args_t *a)
{
    const char *v = dm_cli_get(a, "history");
    if (!v)
        return 0;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (end == v || *end || errno || v[0] == '-' || n > S_HISTORY_MAX) {
        fprintf(stderr, "%s: invalid --history '%s': expected a number of reports from 0 to %d\n",
                S_P, v, S_HISTORY_MAX);
        return -1;
    }
    return (long)n;
}

int dm_dmctl_quality(const dm_cli_args_t *a)
{
    dm_cli_qualified_t q;
    if (dm_cli_product_arg(a, "dmctl quality DOMAIN/PRODUCT [--run] [--json|--junit] "
                              "[--history N]", &q) != DM_EXIT_OK)
        return S_EXIT_NOREPORT;
    bool json = dm_cli_get(a, "json") != NULL, junit = dm_cli_get(a, "junit") != NULL;
    long history = s_history_opt(a);
    if (history < 0)
        return S_EXIT_NOREPORT;
    if (json && junit) {
        fprintf(stderr, "%s: quality: choose --json or --junit, not both\n", S_P);
        return S_EXIT_NOREPORT;
    }
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__QualityReq body = DM__QUALITY_REQ__INIT;
    body.domain = (char *)q.domain;
    body.product = (char *)q.product;
    body.run = dm_cli_get(a, "run") != NULL;
    body.history = (uint32_t)history;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_QUALITY_REQ, &body);
    Dm__Envelope *rep = NULL;
    if (dm_cli_request(a, &req, DM__ENVELOPE__BODY_QUALITY_REP, "quality", &rep) != DM_EXIT_OK)
        return S_EXIT_NOREPORT;
    const Dm__QualityRep *r = rep->quality_rep;
    if (!r->latest) {
        fprintf(stderr, "%s: quality: the node sent no report\n", S_P);
        dm__envelope__free_unpacked(rep, NULL);
        return S_EXIT_NOREPORT;
    }
    char qualified[300];
    snprintf(qualified, sizeof qualified, "%s/%s", q.domain, q.product);
    dm_buf_t o = DM_BUF_INIT;
    if (junit) {
        s_junit(&o, qualified, r->latest);
    } else if (json) {
        dm_buf_puts(&o, "{\"product\":");
        s_json_str(&o, qualified);
        dm_buf_puts(&o, ",\"latest\":");
        s_json_report(&o, r->latest);
        dm_buf_puts(&o, ",\"history\":[");
        for (size_t i = 0; i < r->n_history; i++) {
            if (i)
                dm_buf_putc(&o, ',');
            s_json_report(&o, r->history[i]);
        }
        dm_buf_puts(&o, "]}\n");
    } else {
        s_text(&o, qualified, r->latest);
        for (size_t i = 0; i < r->n_history; i++) {
            char at[DM_TIMESTAMP_TEXT_MAX];
            s_time(r->history[i]->at_ms, at);
            dm_buf_printf(&o, "earlier: %s %s (%" PRIu64 " records)\n", at,
                          r->history[i]->outcome, r->history[i]->records);
        }
    }
    fputs(o.data, stdout);
    dm_buf_free(&o);
    int status = s_exit_of(r->latest->outcome ? r->latest->outcome : "error");
    dm__envelope__free_unpacked(rep, NULL);
    return status;
}
