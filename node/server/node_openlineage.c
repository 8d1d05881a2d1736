/* node_openlineage.c: meshd --openlineage FILE: one OpenLineage RunEvent
 * (spec 2-0-2, https://openlineage.io/spec/2-0-2/OpenLineage.json) per
 * line, START at an ingest run's first batch and COMPLETE or FAIL at its
 * end, from the write pipeline's run hook (ingest/ingest.h).
 *
 * The job is the ingest of a product ("ingest.DOMAIN.NAME" in namespace
 * datamesh://DOMAIN); the output dataset is the product (DOMAIN.NAME), its
 * inputs the contract's lineage.upstream. COMPLETE carries the run's
 * quality report as the dataQualityAssertions facet and the accepted
 * records as outputStatistics; FAIL the error as an errorMessage run facet.
 *
 * The hook runs on the writer thread: an event is one write(2) to a file
 * opened O_APPEND (a whole line lands at the end, whoever else appends),
 * never retried; the first failure is logged, later ones are counted until
 * a write succeeds again, so a full disk costs the writer one failed
 * system call per event and the log one line. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/version.h"
#include "quality/quality.h"
#include "server/node_priv.h"

#define S_SCHEMA_URL "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
#define S_PRODUCER "https://datamesh.io/meshd/" DM_VERSION
#define S_DQ_SCHEMA                                                                              \
    "https://openlineage.io/spec/facets/1-1-0/DataQualityAssertionsDatasetFacet.json"          \
    "#/$defs/DataQualityAssertionsDatasetFacet"
#define S_STATS_SCHEMA                                                                           \
    "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json"         \
    "#/$defs/OutputStatisticsOutputDatasetFacet"
#define S_ERROR_SCHEMA                                                                           \
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json"                       \
    "#/$defs/ErrorMessageRunFacet"

struct dm_node__openlineage {
    int fd;
    char *path;
    bool failing;      /* the last write failed (logged once) */
    uint64_t lost;     /* events not written since */
};

static void s_str(dm_buf_t *out, const char *s) { dm_buf_json_string(out, s, strlen(s)); }

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of Unix milliseconds. */
static void s_time(dm_buf_t *out, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    struct tm tm;
    char text[64];
    if (!gmtime_r(&secs, &tm) || !strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(text, sizeof text, "1970-01-01T00:00:00");
    dm_buf_printf(out, "\"%s.%03dZ\"", text, frac);
}

/* The run id as an RFC 4122 UUID (version 4 and variant bits set, so the
 * same run id always gives the same UUID). */
static void s_uuid(dm_buf_t *out, const uint8_t id[DM_INGEST_RUN_ID_BYTES])
{
    uint8_t u[16];
    memcpy(u, id, sizeof u);
    u[6] = (uint8_t)((u[6] & 0x0F) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3F) | 0x80);
    dm_buf_putc(out, '"');
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            dm_buf_putc(out, '-');
        dm_buf_printf(out, "%02x", u[i]);
    }
    dm_buf_putc(out, '"');
}

/* Appends the JSON string of prefix, a, and (when b) "." and b. */
static void s_join(dm_buf_t *out, const char *prefix, const char *a, const char *b)
{
    dm_buf_t t = DM_BUF_INIT;
    dm_buf_printf(&t, "%s%s%s%s", prefix, a, b ? "." : "", b ? b : "");
    dm_buf_json_string(out, t.data, t.len);
    dm_buf_free(&t);
}

/* Opens a dataset object: {"namespace":"datamesh://DOMAIN","name":"DOMAIN.NAME" */
static void s_dataset(dm_buf_t *out, const char *domain, const char *name)
{
    dm_buf_puts(out, "{\"namespace\":");
    s_join(out, "datamesh://", domain, NULL);
    dm_buf_puts(out, ",\"name\":");
    s_join(out, "", domain, name);
}

/* The dataQualityAssertions facet of report r: one assertion per result,
 * success for pass, warn and skipped (nothing wrong was found). */
static void s_assertions(dm_buf_t *out, const dm_qreport_t *r)
{
    dm_buf_puts(out, "\"dataQualityAssertions\":{\"_producer\":\"" S_PRODUCER
                     "\",\"_schemaURL\":\"" S_DQ_SCHEMA "\",\"assertions\":[");
    for (size_t i = 0; i < r->n; i++) {
        const dm_qresult_t *q = &r->results[i];
        bool ok = q->outcome == DM_QOUT_PASS || q->outcome == DM_QOUT_WARN ||
                  q->outcome == DM_QOUT_SKIPPED;
        dm_buf_puts(out, i ? ",{\"assertion\":" : "{\"assertion\":");
        s_str(out, q->name ? q->name : "");
        dm_buf_printf(out, ",\"success\":%s", ok ? "true" : "false");
        if (q->column) {
            dm_buf_puts(out, ",\"column\":");
            s_str(out, q->column);
        }
        if (q->threshold) {
            dm_buf_puts(out, ",\"expected\":");
            s_str(out, q->threshold);
        }
        if (q->observed_text) {
            dm_buf_puts(out, ",\"actual\":");
            s_str(out, q->observed_text);
        }
        dm_buf_putc(out, '}');
    }
    dm_buf_puts(out, "]}");
}

void dm_node__openlineage_event(const dm_ingest_run_t *run, const dm_upstream_t *ups,
                                size_t nups, dm_buf_t *out)
{
    static const char *const types[] = {"START", "COMPLETE", "FAIL"};
    dm_buf_printf(out, "{\"eventType\":\"%s\",\"eventTime\":",
                  types[run->event <= DM_INGEST_RUN_FAIL ? run->event : DM_INGEST_RUN_FAIL]);
    s_time(out, run->at_ms);
    dm_buf_puts(out, ",\"producer\":\"" S_PRODUCER "\",\"schemaURL\":\"" S_SCHEMA_URL "\"");
    dm_buf_puts(out, ",\"run\":{\"runId\":");
    s_uuid(out, run->run_id);
    if (run->event == DM_INGEST_RUN_FAIL) {
        dm_buf_puts(out, ",\"facets\":{\"errorMessage\":{\"_producer\":\"" S_PRODUCER
                         "\",\"_schemaURL\":\"" S_ERROR_SCHEMA "\",\"message\":");
        s_str(out, run->error ? run->error : "the ingest run failed");
        dm_buf_puts(out, ",\"programmingLanguage\":\"C\"}}");
    }
    dm_buf_puts(out, "},\"job\":{\"namespace\":");
    s_join(out, "datamesh://", run->domain, NULL);
    dm_buf_puts(out, ",\"name\":");
    s_join(out, "ingest.", run->domain, run->name);
    if (run->source && run->source[0]) {
        dm_buf_puts(out, ",\"facets\":{\"documentation\":{\"_producer\":\"" S_PRODUCER
                         "\",\"_schemaURL\":\"https://openlineage.io/spec/facets/1-0-1/"
                         "DocumentationJobFacet.json#/$defs/DocumentationJobFacet\","
                         "\"description\":");
        dm_buf_t d = DM_BUF_INIT;
        dm_buf_printf(&d, "ingest of %s", run->source);
        s_str(out, d.data);
        dm_buf_free(&d);
        dm_buf_puts(out, "}}");
    }
    dm_buf_puts(out, "},\"inputs\":[");
    for (size_t i = 0; i < nups; i++) {
        if (i)
            dm_buf_putc(out, ',');
        s_dataset(out, ups[i].domain, ups[i].product);
        dm_buf_putc(out, '}');
    }
    dm_buf_puts(out, "],\"outputs\":[");
    s_dataset(out, run->domain, run->name);
    if (run->event == DM_INGEST_RUN_COMPLETE) {
        dm_buf_printf(out, ",\"outputFacets\":{\"outputStatistics\":{\"_producer\":\"" S_PRODUCER
                           "\",\"_schemaURL\":\"" S_STATS_SCHEMA "\",\"rowCount\":%llu}}",
                      (unsigned long long)run->accepted);
        if (run->report) {
            dm_buf_puts(out, ",\"facets\":{");
            s_assertions(out, run->report);
            dm_buf_putc(out, '}');
        }
    }
    dm_buf_puts(out, "}]}");
}

/* Appends line (one event and its newline) in one write. */
static void s_append(struct dm_node__openlineage *o, const dm_buf_t *line)
{
    ssize_t n = write(o->fd, line->data, line->len);
    if (n == (ssize_t)line->len) {
        if (o->failing)
            dm_log_info("openlineage: writing %s again (%llu events were lost)", o->path,
                        (unsigned long long)o->lost);
        o->failing = false;
        o->lost = 0;
        return;
    }
    if (!o->failing)
        dm_log_err("openlineage: cannot append an event to %s: %s (later failures are "
                   "counted, not logged)",
                   o->path, n < 0 ? strerror(errno) : "short write");
    o->failing = true;
    o->lost++;
}

/* The run hook (writer thread): the product's upstreams from the
 * registry, which is thread-safe, then one line. */
static void s_on_run(void *ctx, const dm_ingest_run_t *run)
{
    dm_node_t *self = ctx;
    char q[DM_AUDIT_PRODUCT_MAX];
    int qn = snprintf(q, sizeof q, "%s/%s", run->domain, run->name);
    const dm_product_ref_t *ref = NULL;
    if (qn <= 0 || (size_t)qn >= sizeof q ||
        dm_registry_acquire(self->registry, q, (size_t)qn, &ref) != DM_OK)
        ref = NULL;
    dm_buf_t line = DM_BUF_INIT;
    dm_node__openlineage_event(run, ref ? ref->contract->upstream : NULL,
                               ref ? ref->contract->nupstream : 0, &line);
    dm_buf_putc(&line, '\n');
    if (ref)
        dm_registry_release(self->registry, ref);
    s_append(self->openlineage, &line);
    dm_buf_free(&line);
}

dm_err dm_node__openlineage_start(dm_node_t *self, const char *path, dm_buf_t *why)
{
    if (!path)
        return DM_OK;
    struct dm_node__openlineage *o = calloc(1, sizeof *o);
    if (!o || !(o->path = strdup(path))) {
        free(o);
        return DM_ERR_NOMEM;
    }
    o->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (o->fd < 0) {
        dm_buf_why(why, "--openlineage %s: cannot open it for appending: %s (a file in an "
                        "existing, writable directory)",
                   path, strerror(errno));
        free(o->path);
        free(o);
        return DM_ERR_IO;
    }
    self->openlineage = o;
    dm_ingest_set_run_hook(self->ingest, s_on_run, self);
    dm_log_info("openlineage: appending a RunEvent per ingest run to %s", path);
    return DM_OK;
}

void dm_node__openlineage_close(dm_node_t *self)
{
    struct dm_node__openlineage *o = self->openlineage;
    if (!o)
        return;
    if (o->lost)
        dm_log_warn("openlineage: %llu events could not be written to %s",
                    (unsigned long long)o->lost, o->path);
    close(o->fd);
    free(o->path);
    free(o);
    self->openlineage = NULL;
}
