/* registry.c: reference-counted product entries behind one mutex. The
 * list is short (a domain's own products), so lookups scan it. */
#include "record/registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"

typedef struct s_entry {
    dm_product_ref_t ref; /* first member: the public view */
    char *qualified;      /* "domain/name" */
    unsigned refs;        /* readers + 1 while installed */
    struct s_entry *next;
} s_entry;

struct dm_registry {
    pthread_mutex_t lock;
    s_entry *head;
};

static void s_entry_free(s_entry *e)
{
    dm_schema_destroy(&e->ref.schema);
    dm_contract_destroy(&e->ref.contract);
    free(e->qualified);
    free(e);
}

/* Drops one reference; frees at zero. Called with the lock held. */
static void s_unref(s_entry *e)
{
    if (--e->refs == 0)
        s_entry_free(e);
}

dm_err dm_registry_new(dm_registry_t **out)
{
    dm_registry_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    pthread_mutex_init(&self->lock, NULL);
    *out = self;
    return DM_OK;
}

void dm_registry_destroy(dm_registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_registry_t *self = *self_p;
    s_entry *e = self->head;
    while (e) {
        s_entry *next = e->next;
        s_unref(e);
        e = next;
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* Appends "stored contract PID does not parse: D1; D2..." to why: the
 * diagnostics on one line. */
static void s_parse_failed(dm_buf_t *why, uint32_t pid, const dm_diags_t *diags)
{
    dm_buf_t text = DM_BUF_INIT;
    dm_diags_format(diags, &text);
    while (text.len && text.data[text.len - 1] == '\n')
        text.data[--text.len] = 0;
    dm_buf_printf(why, "stored contract %u does not parse: ", pid);
    for (size_t i = 0; i < text.len; i++) {
        if (text.data[i] == '\n')
            dm_buf_puts(why, "; ");
        else
            dm_buf_putc(why, text.data[i]);
    }
    if (!text.len)
        dm_buf_puts(why, "no document");
    dm_buf_free(&text);
}

dm_err dm_registry_install(dm_registry_t *self, uint32_t pid, const char *canonical, size_t len,
                           dm_buf_t *why)
{
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_contract_parse("stored contract", canonical, len, NULL, &list, &n, &diags);
    if (rc != DM_OK || n != 1) {
        if (why)
            s_parse_failed(why, pid, &diags);
        dm_diags_clear(&diags);
        dm_contract_list_destroy(&list, n);
        return rc == DM_OK ? DM_ERR_INVALID : rc;
    }
    dm_diags_clear(&diags);
    s_entry *e = calloc(1, sizeof *e);
    if (!e) {
        dm_contract_list_destroy(&list, n);
        return DM_ERR_NOMEM;
    }
    e->ref.pid = pid;
    e->ref.contract = list[0];
    free(list);
    rc = dm_schema_new(e->ref.contract, &e->ref.schema, why);
    if (rc != DM_OK) {
        s_entry_free(e);
        return rc;
    }
    size_t qlen = strlen(e->ref.contract->domain) + 1 + strlen(e->ref.contract->name) + 1;
    e->qualified = malloc(qlen);
    if (!e->qualified) {
        s_entry_free(e);
        return DM_ERR_NOMEM;
    }
    snprintf(e->qualified, qlen, "%s/%s", e->ref.contract->domain, e->ref.contract->name);
    e->refs = 1;

    pthread_mutex_lock(&self->lock);
    s_entry **pp = &self->head;
    while (*pp && strcmp((*pp)->qualified, e->qualified) != 0)
        pp = &(*pp)->next;
    if (*pp) {
        s_entry *old = *pp;
        e->next = old->next;
        *pp = e;
        s_unref(old);
    } else {
        e->next = self->head;
        self->head = e;
    }
    pthread_mutex_unlock(&self->lock);
    return DM_OK;
}

dm_err dm_registry_remove(dm_registry_t *self, const char *qualified)
{
    dm_err rc = DM_ERR_NOTFOUND;
    pthread_mutex_lock(&self->lock);
    for (s_entry **pp = &self->head; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->qualified, qualified) == 0) {
            s_entry *e = *pp;
            *pp = e->next;
            s_unref(e);
            rc = DM_OK;
            break;
        }
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

dm_err dm_registry_acquire(dm_registry_t *self, const char *qualified, size_t len,
                           const dm_product_ref_t **ref)
{
    *ref = NULL;
    pthread_mutex_lock(&self->lock);
    for (s_entry *e = self->head; e; e = e->next) {
        if (strlen(e->qualified) == len && memcmp(e->qualified, qualified, len) == 0) {
            e->refs++;
            *ref = &e->ref;
            break;
        }
    }
    pthread_mutex_unlock(&self->lock);
    return *ref ? DM_OK : DM_ERR_NOTFOUND;
}

void dm_registry_release(dm_registry_t *self, const dm_product_ref_t *ref)
{
    if (!ref)
        return;
    pthread_mutex_lock(&self->lock);
    s_unref((s_entry *)(void *)ref);
    pthread_mutex_unlock(&self->lock);
}

void dm_registry_suggest(dm_registry_t *self, const char *qualified, dm_buf_t *out)
{
    dm_text_suggest_t sg;
    dm_text_suggest_init(&sg, qualified);
    pthread_mutex_lock(&self->lock);
    for (s_entry *e = self->head; e && sg.best > 0; e = e->next)
        dm_text_suggest_add(&sg, e->qualified);
    if (sg.pick)
        dm_buf_puts(out, sg.pick);
    pthread_mutex_unlock(&self->lock);
}

void dm_registry_unknown(dm_registry_t *self, const char *qualified, const char *served,
                         dm_buf_t *why)
{
    dm_buf_t hint = DM_BUF_INIT;
    dm_registry_suggest(self, qualified, &hint);
    dm_buf_printf(why, "unknown product '%.*s' on this node", DM_REGISTRY_UNKNOWN_SHOWN,
                  qualified);
    if (served)
        dm_buf_printf(why, " (domain %s)", served);
    if (hint.len)
        dm_buf_printf(why, "; did you mean '%s'?", hint.data);
    dm_buf_free(&hint);
}

void dm_registry_each(dm_registry_t *self, dm_registry_each_fn fn, void *arg)
{
    pthread_mutex_lock(&self->lock);
    for (s_entry *e = self->head; e; e = e->next)
        fn(arg, e->ref.contract->domain, e->ref.contract->name);
    pthread_mutex_unlock(&self->lock);
}
