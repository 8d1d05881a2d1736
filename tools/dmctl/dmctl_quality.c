/* dmctl_quality.c: `dmctl quality DOMAIN/PRODUCT [--run] [--json|--junit]
 * [--history N]`: a product's quality report, judged by its owner when
 * asked, as text, JSON or JUnit XML. The command parses its own options
 * (dm_dmctl_quality_main) so that its usage errors exit 4. The exit
 * status follows Soda's scan: 0 every check passed (skipped ones
 * included), 1 a warning, 2 a failure, 3 a check erred, 4 the report
 * could not be had (usage, connection, refusal). */
#include "dmctl.h"

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
#define S_USAGE "dmctl quality DOMAIN/PRODUCT [--run] [--json|--junit] [--history N]"

/* The options quality takes: the global ones and its own. Anything else
 * is a usage error, exit 4 (not dmctl's 2, which here reads "a check
 * failed"). */
static const dm_cli_optspec_t s_opts[] = {
    {"node", true},  {"data", true},     {"json", false},     {"timeout", true},
    {"help", false}, {"version", false}, {"identity", true},  {"run", false},
    {"junit", false}, {"history", true},
};

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: " S_USAGE "\n"
            "\n"
            "The product's dataset checks, judged by its owner node now (freshness is\n"
            "measured at this moment), as text, JSON or JUnit XML. Needs a domain admin.\n"
            "\n"
            "  --run            also keep this report in the product's history\n"
            "  --json           the report (and history) as JSON\n"
            "  --junit          the report as JUnit XML, a testcase per check\n"
            "  --history N      also the N (0 to %d) reports stored before it\n"
            DM_CLI_HELP_CONNECT
            "  --timeout SECS   give up on a silent node after SECS (default 10)\n"
            "\n"
            "Exit status (as Soda's scan): 0 every check passed (skipped ones included),\n"
            "1 a warning, 2 a check failed, 3 a check erred, 4 no report: a usage error\n"
            "(an unknown option, a missing value), no such product, refused, or the node\n"
            "could not be reached.\n",
            S_HISTORY_MAX);
}

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

/* Appends key (the JSON text before the value, e.g. ",\"rule\":") and s. */
static void s_json_field(dm_buf_t *o, const char *key, const char *s)
{
    dm_buf_puts(o, key);
    s_json_str(o, s);
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
        s_json_field(o, ",\"rule\":", c->rule);
        s_json_field(o, ",\"column\":", c->column);
        s_json_field(o, ",\"outcome\":", c->outcome);
        dm_buf_puts(o, ",\"observed\":"); /* inf or NaN: null, observed_text says which */
        dm_cli_json_number(o, c->observed);
        s_json_field(o, ",\"observed_text\":", c->observed_text);
        s_json_field(o, ",\"threshold\":", c->threshold);
        s_json_field(o, ",\"reason\":", c->reason);
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
        } else if (strcmp(c->outcome, "warn") == 0) {
            /* JUnit has no warning element: a property CI can match on,
             * and the reason in system-out below */
            dm_buf_puts(o, "      <properties><property name=\"dm.warning\" value=\"");
            s_xml(o, c->reason);
            dm_buf_puts(o, "\"/></properties>\n");
        }
        dm_buf_puts(o, "      <system-out>");
        s_xml(o, c->outcome);
        dm_buf_puts(o, ": ");
        s_xml(o, c->observed_text);
        dm_buf_puts(o, " (threshold: ");
        s_xml(o, c->threshold);
        dm_buf_puts(o, ")");
        if (c->reason && *c->reason) {
            dm_buf_puts(o, "\n");
            s_xml(o, c->reason);
        }
        dm_buf_puts(o, "</system-out>\n    </testcase>\n");
    }
    dm_buf_puts(o, "  </testsuite>\n</testsuites>\n");
}

/* Appends s for a terminal (dm_cli_text: control bytes as \\xNN), padded
 * with spaces to width. The node's strings hold producer data. */
static void s_t(dm_buf_t *o, const char *s, size_t width)
{
    size_t before = o->len;
    dm_cli_text(o, s ? s : "", s ? strlen(s) : 0);
    for (size_t n = o->len - before; n < width; n++)
        dm_buf_putc(o, ' ');
}

static void s_text(dm_buf_t *o, const char *qualified, const Dm__QualityReport *r)
{
    char at[DM_TIMESTAMP_TEXT_MAX], last[DM_TIMESTAMP_TEXT_MAX];
    s_time(r->at_ms, at);
    s_time(r->last_ingest_ms, last);
    s_t(o, qualified, 0);
    dm_buf_puts(o, ": ");
    s_t(o, r->outcome, 0);
    dm_buf_printf(o, " (%zu check%s, %" PRIu64 " records, judged %s, last ingest %s)\n",
                  r->n_checks, r->n_checks == 1 ? "" : "s", r->records, at, last);
    for (size_t i = 0; i < r->n_checks; i++) {
        const Dm__CheckResult *c = r->checks[i];
        dm_buf_puts(o, "  ");
        s_t(o, c->outcome, 8);
        s_t(o, c->name, 29);
        s_t(o, c->observed_text, 0);
        dm_buf_puts(o, " [");
        s_t(o, c->threshold, 0);
        dm_buf_puts(o, "]\n");
        if (c->reason && *c->reason) {
            dm_buf_puts(o, "          ");
            s_t(o, c->reason, 0);
            dm_buf_putc(o, '\n');
        }
        for (size_t j = 0; j < c->n_samples; j++) {
            dm_buf_puts(o, "          sample: ");
            s_t(o, c->samples[j], 0);
            dm_buf_putc(o, '\n');
        }
    }
}

/* Reads --history N (0 when absent); -1 after printing when invalid. */
static long s_history_opt(const dm_cli_args_t *a)
{
    uint64_t n;
    if (dm_cli_uint_opt(a, "history", "a number of reports", 0, S_HISTORY_MAX, 0, &n) != 0)
        return -1;
    return (long)n;
}

int dm_dmctl_quality(const dm_cli_args_t *a)
{
    dm_cli_qualified_t q;
    if (dm_cli_product_arg(a, S_USAGE, &q) != DM_EXIT_OK)
        return S_EXIT_NOREPORT;
    bool json = dm_cli_get(a, "json") != NULL, junit = dm_cli_get(a, "junit") != NULL;
    long history = s_history_opt(a);
    if (history < 0)
        return S_EXIT_NOREPORT;
    if (json && junit) {
        fprintf(stderr, "%s: quality: choose --json or --junit, not both\n", S_P);
        return S_EXIT_NOREPORT;
    }
    if (junit && history > 0) {
        fprintf(stderr, "%s: quality: --history is shown as text or --json; a JUnit report "
                        "holds the latest only\n", S_P);
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
            dm_buf_printf(&o, "earlier: %s ", at);
            s_t(&o, r->history[i]->outcome, 0);
            dm_buf_printf(&o, " (%" PRIu64 " records)\n", r->history[i]->records);
        }
    }
    fputs(o.data, stdout);
    dm_buf_free(&o);
    int status = s_exit_of(r->latest->outcome ? r->latest->outcome : "error");
    dm__envelope__free_unpacked(rep, NULL);
    return status;
}

int dm_dmctl_quality_main(int argc, char **argv, const char *version)
{
    dm_cli_args_t a;
    if (dm_cli_parse(S_P, argc, argv, s_opts, sizeof s_opts / sizeof s_opts[0], &a) != 0) {
        fprintf(stderr, "%s: usage: " S_USAGE " (dmctl quality --help)\n", S_P);
        return S_EXIT_NOREPORT;
    }
    if (dm_cli_get(&a, "version")) {
        printf("%s %s\n", S_P, version);
        return DM_EXIT_OK;
    }
    if (dm_cli_get(&a, "help")) {
        s_usage(stdout);
        return DM_EXIT_OK;
    }
    return dm_dmctl_quality(&a);
}
