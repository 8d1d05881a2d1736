/* node_relay_sess.c: the relay's table of the federated sessions owners
 * opened for it (docs/protocol.md "Federated query", "Session reuse").
 *
 * An owner's session lets this relay scan the products its FedOpenRep
 * named as the consumer whose grant opened it, until that grant expires,
 * whatever the scans' SQL: that is what the owner verified and admitted.
 * So a later query of the same consumer that only scans products of the
 * session, while the session has at least the query's time limit left,
 * is sent on it instead of a FedOpen of its own (node_relay.c still
 * checks that query's own grant: consumer, relay, expiry, SQL hash and
 * signature). The table only remembers: a session is shared by every
 * query that finds it, is never closed by the relay (its owner forgets it
 * at its grant's expiry) and is forgotten here at that expiry, when its
 * owner says it does not know it, or when the table is full (then the
 * query that opened it closes it). Any thread: one mutex. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/node_priv.h"

typedef struct {
    uint8_t consumer[DM_ID_PUBLIC_BYTES];
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    uint8_t nonce[DM_GRANT_NONCE_BYTES];
    int64_t expires_ms;
    char *products; /* "domain.name" NUL-separated, nproducts of them */
    size_t nproducts;
} s_entry;

struct dm_node__fedsess {
    pthread_mutex_t lock;
    s_entry e[DM_NODE_RELAY_SESSIONS_MAX];
    size_t n;
};

dm_node__fedsess_t *dm_node__fedsess_new(void)
{
    dm_node__fedsess_t *t = calloc(1, sizeof *t);
    if (t && pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

void dm_node__fedsess_destroy(dm_node__fedsess_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_node__fedsess_t *t = *self_p;
    for (size_t i = 0; i < t->n; i++)
        free(t->e[i].products);
    pthread_mutex_destroy(&t->lock);
    free(t);
    *self_p = NULL;
}

/* Forgets entry i. lock held. */
static void s_remove(dm_node__fedsess_t *t, size_t i)
{
    free(t->e[i].products);
    t->e[i] = t->e[--t->n];
}

/* Whether x's products include product. */
static bool s_covers(const s_entry *x, const char *product)
{
    const char *p = x->products;
    for (size_t i = 0; i < x->nproducts; i++, p += strlen(p) + 1)
        if (strcmp(p, product) == 0)
            return true;
    return false;
}

bool dm_node__fedsess_find(dm_node__fedsess_t *self, const uint8_t consumer[DM_ID_PUBLIC_BYTES],
                           const uint8_t owner[DM_ID_PUBLIC_BYTES], const char *product,
                           int64_t until_ms, uint8_t nonce[DM_GRANT_NONCE_BYTES])
{
    bool found = false;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; !found && i < self->n; i++) {
        const s_entry *x = &self->e[i];
        if (x->expires_ms >= until_ms && memcmp(x->owner, owner, DM_ID_PUBLIC_BYTES) == 0 &&
            memcmp(x->consumer, consumer, DM_ID_PUBLIC_BYTES) == 0 && s_covers(x, product)) {
            memcpy(nonce, x->nonce, DM_GRANT_NONCE_BYTES);
            found = true;
        }
    }
    pthread_mutex_unlock(&self->lock);
    return found;
}

bool dm_node__fedsess_put(dm_node__fedsess_t *self, const uint8_t consumer[DM_ID_PUBLIC_BYTES],
                          const uint8_t owner[DM_ID_PUBLIC_BYTES],
                          const uint8_t nonce[DM_GRANT_NONCE_BYTES], int64_t expires_ms,
                          char *const *products, size_t nproducts, int64_t now_ms)
{
    if (nproducts == 0 || nproducts > DM_NODE_FED_PRODUCTS_MAX)
        return false;
    size_t bytes = 0;
    for (size_t i = 0; i < nproducts; i++) {
        size_t len = products[i] ? strnlen(products[i], DM_AUDIT_PRODUCT_MAX) : 0;
        if (len == 0 || len >= DM_AUDIT_PRODUCT_MAX)
            return false; /* hostile or odd: such a session is simply not reused */
        bytes += len + 1;
    }
    char *copy = malloc(bytes);
    if (!copy)
        return false;
    char *p = copy;
    for (size_t i = 0; i < nproducts; i++) {
        size_t len = strlen(products[i]) + 1;
        memcpy(p, products[i], len);
        p += len;
    }
    bool kept = false;
    pthread_mutex_lock(&self->lock);
    size_t of_owner = 0;
    for (size_t i = 0; i < self->n;) {
        if (self->e[i].expires_ms < now_ms) {
            s_remove(self, i);
            continue;
        }
        of_owner += memcmp(self->e[i].owner, owner, DM_ID_PUBLIC_BYTES) == 0;
        i++;
    }
    if (self->n < DM_NODE_RELAY_SESSIONS_MAX && of_owner < DM_NODE_RELAY_SESSIONS_PER_OWNER) {
        s_entry *x = &self->e[self->n++];
        memcpy(x->consumer, consumer, DM_ID_PUBLIC_BYTES);
        memcpy(x->owner, owner, DM_ID_PUBLIC_BYTES);
        memcpy(x->nonce, nonce, DM_GRANT_NONCE_BYTES);
        x->expires_ms = expires_ms;
        x->products = copy;
        x->nproducts = nproducts;
        copy = NULL;
        kept = true;
    }
    pthread_mutex_unlock(&self->lock);
    free(copy);
    return kept;
}

void dm_node__fedsess_drop(dm_node__fedsess_t *self, const uint8_t owner[DM_ID_PUBLIC_BYTES],
                           const uint8_t nonce[DM_GRANT_NONCE_BYTES])
{
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->n; i++)
        if (memcmp(self->e[i].owner, owner, DM_ID_PUBLIC_BYTES) == 0 &&
            memcmp(self->e[i].nonce, nonce, DM_GRANT_NONCE_BYTES) == 0) {
            s_remove(self, i);
            break;
        }
    pthread_mutex_unlock(&self->lock);
}
