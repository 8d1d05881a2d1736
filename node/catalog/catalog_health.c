/* catalog_health.c: what a "health/DOMAIN/NAME" payload must hold (a
 * dm.HealthRecord within DM_CATALOG_HEALTH_*, docs/catalog.md). Who may
 * say it is judged as for every product key: the domain's owner only. */
#include "catalog/catalog_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/mesh.pb-c.h"

/* The outcomes a record may carry (quality.h's names; "" before any
 * report) and the SLA kinds (quality/sla.h's). */
static const char *const s_outcomes[] = {"", "pass", "skipped", "warn", "fail", "error"};
static const char *const s_kinds[] = {"freshness", "latency", "availability"};

static bool s_one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

static bool s_bad(dm_buf_t *why, const char *fmt, ...) DM_PRINTF(2, 3);

/* Writes a one-line reason into why (may be NULL); returns false. */
static bool s_bad(dm_buf_t *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_buf_vwhy(why, fmt, ap);
    va_end(ap);
    return false;
}

/* Whether every string of strs is within DM_CATALOG_HEALTH_TEXT_MAX; the
 * first that is not is named in why (field, item). */
static bool s_texts_ok(const char *key, const char *item, size_t index, const char *const *names,
                       char *const *strs, size_t n, dm_buf_t *why)
{
    for (size_t i = 0; i < n; i++)
        if (strs[i] && strnlen(strs[i], DM_CATALOG_HEALTH_TEXT_MAX + 1) >
                           DM_CATALOG_HEALTH_TEXT_MAX)
            return s_bad(why, "%s: %s %zu's %s is over %d bytes", key, item, index + 1, names[i],
                         DM_CATALOG_HEALTH_TEXT_MAX);
    return true;
}

static bool s_check_ok(const char *key, size_t i, const Dm__CheckResult *k, dm_buf_t *why)
{
    static const char *const names[] = {"name", "rule", "column", "outcome",
                                        "observed_text", "threshold", "reason"};
    char *strs[] = {k->name, k->rule, k->column, k->outcome, k->observed_text, k->threshold,
                    k->reason};
    if (!s_texts_ok(key, "check", i, names, strs, sizeof strs / sizeof *strs, why))
        return false;
    if (!s_one_of(k->outcome, s_outcomes + 1, sizeof s_outcomes / sizeof *s_outcomes - 1))
        return s_bad(why, "%s: check %zu's outcome '%.32s' is none of pass, skipped, warn, "
                          "fail, error",
                     key, i + 1, k->outcome);
    if (k->n_samples)
        return s_bad(why, "%s: check %zu carries %zu samples; a health record carries none "
                          "(they stay with the owner: dmctl quality)",
                     key, i + 1, k->n_samples);
    return true;
}

static bool s_sla_ok(const char *key, size_t i, const Dm__SlaStatus *s, dm_buf_t *why)
{
    static const char *const names[] = {"kind", "target", "measured"};
    char *strs[] = {s->kind, s->target, s->measured};
    if (!s_texts_ok(key, "sla term", i, names, strs, sizeof strs / sizeof *strs, why))
        return false;
    if (!s_one_of(s->kind, s_kinds, sizeof s_kinds / sizeof *s_kinds))
        return s_bad(why, "%s: sla term %zu's kind '%.32s' is none of freshness, latency, "
                          "availability",
                     key, i + 1, s->kind);
    if (s->met && s->unknown)
        return s_bad(why, "%s: sla term %zu is both met and unknown", key, i + 1);
    return true;
}

bool dm_catalog__health_ok(const dm_catalog_entry_t *e, dm_buf_t *why)
{
    Dm__HealthRecord *r = dm__health_record__unpack(NULL, e->payload_len, e->payload);
    if (!r)
        return s_bad(why, "the payload of %s is not a dm.HealthRecord", e->key);
    bool ok = true;
    if (!s_one_of(r->outcome, s_outcomes, sizeof s_outcomes / sizeof *s_outcomes))
        ok = s_bad(why, "%s: outcome '%.32s' is none of pass, skipped, warn, fail, error (or "
                        "empty: no report yet)",
                   e->key, r->outcome);
    else if (r->n_checks > DM_CONTRACT_MAX_CHECKS)
        ok = s_bad(why, "%s: %zu checks; at most %d (a contract's)", e->key, r->n_checks,
                   DM_CONTRACT_MAX_CHECKS);
    else if (r->n_sla > DM_CATALOG_HEALTH_SLA_MAX)
        ok = s_bad(why, "%s: %zu sla terms; at most %d", e->key, r->n_sla,
                   DM_CATALOG_HEALTH_SLA_MAX);
    for (size_t i = 0; ok && i < r->n_checks; i++)
        ok = s_check_ok(e->key, i, r->checks[i], why);
    for (size_t i = 0; ok && i < r->n_sla; i++)
        ok = s_sla_ok(e->key, i, r->sla[i], why);
    dm__health_record__free_unpacked(r, NULL);
    return ok;
}
