/* policy_read.c: the small pieces every policy file uses: a document's
 * arena, typed reads of YAML nodes that report at the node, keys in hex
 * and DOMAIN/NAME globs. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"
#include "base/hex.h"

#define S_BLOCK_BYTES 8192
#define S_ALIGN 16
#define S_QUOTE_MAX 80 /* bytes of a refused value quoted in its diagnostic */

struct dm_policy__block {
    dm_policy__block_t *next;
    size_t used, cap;
    _Alignas(S_ALIGN) unsigned char data[];
};

void *dm_policy__alloc(dm_policy__arena_t *a, size_t n)
{
    n = (n + S_ALIGN - 1) & ~(size_t)(S_ALIGN - 1);
    if (!n)
        n = S_ALIGN;
    dm_policy__block_t *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > S_BLOCK_BYTES ? n : S_BLOCK_BYTES;
        b = malloc(sizeof *b + cap);
        if (!b)
            abort();
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *dm_policy__strdup(dm_policy__arena_t *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = dm_policy__alloc(a, n);
    memcpy(p, s, n);
    return p;
}

void dm_policy__arena_free(dm_policy__arena_t *a)
{
    while (a->head) {
        dm_policy__block_t *b = a->head;
        a->head = b->next;
        free(b);
    }
}

static const char *s_kind(const dm_ytree_node_t *n)
{
    if (n->kind == DM_YNODE_MAP)
        return "a mapping";
    if (n->kind == DM_YNODE_SEQ)
        return "a list";
    return dm_ytree_is_null(n) ? "nothing" : "a scalar";
}

bool dm_policy__map(dm_diags_t *d, const char *file, const dm_ytree_node_t *n, const char *what,
                    const char *const *allowed)
{
    if (n->kind != DM_YNODE_MAP) {
        dm_diags_add(d, file, n->line, n->col, "%s: expected a mapping, got %s", what, s_kind(n));
        return false;
    }
    for (size_t i = 0; i < dm_ytree_npairs(n); i++) {
        const dm_ytree_node_t *k = n->items[2 * i];
        bool ok = false;
        for (size_t j = 0; allowed[j] && !ok; j++)
            ok = strcmp(k->text, allowed[j]) == 0;
        if (ok)
            continue;
        dm_buf_t valid = DM_BUF_INIT;
        size_t na = 0;
        for (size_t j = 0; allowed[j]; j++, na++)
            dm_buf_printf(&valid, "%s%s", j ? ", " : "", allowed[j]);
        const char *near = dm_text_suggest(k->text, allowed, na);
        dm_diags_add(d, file, k->line, k->col, "%s: unknown key '%.*s'%s%s%s (valid: %s)", what,
                     S_QUOTE_MAX, k->text, near ? " (did you mean '" : "", near ? near : "",
                     near ? "'?)" : "", valid.data ? valid.data : "none");
        dm_buf_free(&valid);
    }
    return true;
}

const char *dm_policy__str(dm_diags_t *d, const char *file, const dm_ytree_node_t *n, const char *what)
{
    if (n->kind != DM_YNODE_SCALAR || dm_ytree_is_null(n) || !n->len) {
        dm_diags_add(d, file, n->line, n->col, "%s: expected a non-empty string, got %s", what,
                     n->kind == DM_YNODE_SCALAR && !dm_ytree_is_null(n) ? "an empty string" : s_kind(n));
        return NULL;
    }
    return n->text;
}

const dm_ytree_node_t *dm_policy__seq(dm_diags_t *d, const char *file, const dm_ytree_node_t *n,
                                      const char *what, size_t max)
{
    if (n->kind != DM_YNODE_SEQ) {
        dm_diags_add(d, file, n->line, n->col, "%s: expected a list, got %s", what, s_kind(n));
        return NULL;
    }
    if (n->n > max) {
        dm_diags_add(d, file, n->line, n->col, "%s lists %zu entries; at most %zu are allowed", what,
                     n->n, max);
        return NULL;
    }
    return n;
}

int dm_policy__choice(dm_diags_t *d, const char *file, const dm_ytree_node_t *n, const char *what,
                      const char *const *names, size_t count)
{
    const char *s = dm_policy__str(d, file, n, what);
    if (!s)
        return -1;
    for (size_t i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    dm_buf_t valid = DM_BUF_INIT;
    for (size_t i = 0; i < count; i++)
        dm_buf_printf(&valid, "%s%s", i ? ", " : "", names[i]);
    const char *near = dm_text_suggest(s, names, count);
    dm_diags_add(d, file, n->line, n->col, "%s '%.*s' is not one of %s%s%s%s", what, S_QUOTE_MAX, s,
                 valid.data, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    dm_buf_free(&valid);
    return -1;
}

bool dm_policy__hex_key(const char *s, uint8_t key[DM_POLICY_KEY_BYTES])
{
    if (strlen(s) != DM_POLICY_HEX)
        return false;
    return dm_hex_decode(s, DM_POLICY_KEY_BYTES, key);
}

void dm_policy__key_hex(const uint8_t key[DM_POLICY_KEY_BYTES], char out[DM_POLICY_HEX + 1])
{
    dm_hex_encode(key, DM_POLICY_KEY_BYTES, out);
}

bool dm_policy__field_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
        if (!x)
            return true;
    }
}

/* Iterative wildcard match with one backtrack point: O(len x glob) at
 * worst, no recursion. */
bool dm_policy__glob(const char *glob, const char *text, size_t len)
{
    size_t g = 0, t = 0, star_g = (size_t)-1, star_t = 0;
    while (t < len) {
        if (glob[g] == '*') {
            star_g = g++;
            star_t = t;
        } else if (glob[g] && (glob[g] == '?' || glob[g] == text[t])) {
            g++;
            t++;
        } else if (star_g != (size_t)-1) {
            g = star_g + 1;
            t = ++star_t;
        } else {
            return false;
        }
    }
    while (glob[g] == '*')
        g++;
    return !glob[g];
}

bool dm_policy__products_match(const dm_policy__products_t *p, const char *domain, const char *name)
{
    char key[2 * DM_TEXT_NAME_MAX + 2];
    size_t dl = strnlen(domain, DM_TEXT_NAME_MAX + 1), nl = strnlen(name, DM_TEXT_NAME_MAX + 1);
    if (dl > DM_TEXT_NAME_MAX || nl > DM_TEXT_NAME_MAX)
        return false; /* not a product name: no rule is about it */
    memcpy(key, domain, dl);
    key[dl] = '/';
    memcpy(key + dl + 1, name, nl);
    for (size_t i = 0; i < p->n; i++)
        if (dm_policy__glob(p->globs[i], key, dl + 1 + nl))
            return true;
    return false;
}
