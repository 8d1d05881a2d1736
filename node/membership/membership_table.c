/* membership_table.c: where a membership machine keeps its members.
 *
 * An array (which is also the probe order: it is shuffled at the end of
 * every probe round), an open-addressing hash from node id to array index,
 * and one string arena for addresses and domains. Compact on purpose: the
 * simulator holds N machines of N members each. */
#include <stdlib.h>
#include <string.h>

#include "membership/membership_priv.h"
#include "base/array.h"

#define S_MIN_SLOTS 16

_Static_assert(sizeof(dm_membership__member_t) == 56, "a member record grew: the simulator holds N^2");
#define S_ARENA_COMPACT_MIN 65536 /* bytes of garbage before compacting */

/* splitmix64: small, fast, and good enough for choosing members. */
uint64_t dm_membership__rand(dm_membership_t *m)
{
    uint64_t z = (m->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Ids are public keys chosen by their owners; the keyed mix keeps a peer
 * from choosing ids that collide in our table. */
static size_t s_hash(const dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 24, 8);
    uint64_t h = (a ^ m->hash_key) * 0x9e3779b97f4a7c15ULL;
    h ^= (b + (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
    return (size_t)(h ^ (h >> 32)) & (m->nslots - 1);
}

uint32_t dm_membership__find(const dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    if (!m->nslots)
        return DM_MEMBERSHIP_NONE;
    for (size_t i = s_hash(m, id);; i = (i + 1) & (m->nslots - 1)) {
        uint32_t v = m->slots[i];
        if (!v)
            return DM_MEMBERSHIP_NONE;
        if (memcmp(m->mem[v - 1].id, id, DM_ID_PUBLIC_BYTES) == 0)
            return v - 1;
    }
}

static void s_slot_put(dm_membership_t *m, uint32_t idx)
{
    size_t i = s_hash(m, m->mem[idx].id);
    while (m->slots[i])
        i = (i + 1) & (m->nslots - 1);
    m->slots[i] = idx + 1;
}

/* The slot position holding member idx. */
static size_t s_slot_of(const dm_membership_t *m, uint32_t idx)
{
    for (size_t i = s_hash(m, m->mem[idx].id);; i = (i + 1) & (m->nslots - 1))
        if (m->slots[i] == idx + 1)
            return i;
}

/* Swaps members a and b, in the array and in the hash. */
static void s_swap(dm_membership_t *m, uint32_t a, uint32_t b)
{
    size_t sa = s_slot_of(m, a), sb = s_slot_of(m, b);
    dm_membership__member_t t = m->mem[a];
    m->mem[a] = m->mem[b];
    m->mem[b] = t;
    m->slots[sa] = b + 1;
    m->slots[sb] = a + 1;
}

/* Backward-shift deletion keeps probe chains without tombstones. */
static void s_slot_delete(dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    size_t mask = m->nslots - 1, i = s_hash(m, id);
    while (memcmp(m->mem[m->slots[i] - 1].id, id, DM_ID_PUBLIC_BYTES) != 0)
        i = (i + 1) & mask;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j])
            break;
        size_t home = s_hash(m, m->mem[m->slots[j] - 1].id);
        /* move j's entry into the hole at i unless its home lies in (i, j] */
        bool in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = 0;
}

static dm_err s_rehash(dm_membership_t *m, size_t nslots)
{
    uint32_t *s = calloc(nslots, sizeof *s);
    if (!s)
        return DM_ERR_NOMEM;
    free(m->slots);
    m->slots = s;
    m->nslots = nslots;
    for (size_t i = 0; i < m->n; i++)
        s_slot_put(m, (uint32_t)i);
    return DM_OK;
}

const char *dm_membership__short_address(const uint8_t id[DM_ID_PUBLIC_BYTES], const char *address)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < DM_ID_PUBLIC_BYTES; i++) {
        char c0 = address[2 * i], c1 = c0 ? address[2 * i + 1] : 0;
        if (c0 >= 'A' && c0 <= 'F')
            c0 = (char)(c0 - 'A' + 'a');
        if (c1 >= 'A' && c1 <= 'F')
            c1 = (char)(c1 - 'A' + 'a');
        if (c0 != hex[id[i] >> 4] || c1 != hex[id[i] & 15])
            return NULL;
    }
    return address[2 * DM_ID_PUBLIC_BYTES] == '@' ? address + 2 * DM_ID_PUBLIC_BYTES + 1 : NULL;
}

static void s_arena_compact(dm_membership_t *m)
{
    char *fresh = malloc(m->arena_cap);
    if (!fresh)
        return; /* keep the garbage; correctness does not depend on it */
    size_t len = 0;
    for (size_t i = 0; i < m->n; i++) {
        const char *a = m->arena + m->mem[i].str;
        size_t la = strlen(a) + 1, ld = strlen(a + la) + 1;
        memcpy(fresh + len, a, la + ld);
        m->mem[i].str = (uint32_t)len;
        len += la + ld;
    }
    free(m->arena);
    m->arena = fresh;
    m->arena_len = len;
    m->arena_garbage = 0;
}

/* Appends "addr\0domain\0"; the offset goes to *off. */
static dm_err s_arena_put(dm_membership_t *m, const char *addr, const char *domain, uint32_t *off)
{
    size_t la = strlen(addr) + 1, ld = strlen(domain) + 1;
    if (m->arena_garbage > S_ARENA_COMPACT_MIN && m->arena_garbage > m->arena_len / 2)
        s_arena_compact(m);
    if (m->arena_len + la + ld > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap * 2 : 4096;
        while (cap < m->arena_len + la + ld)
            cap *= 2;
        if (cap > UINT32_MAX)
            return DM_ERR_NOMEM;
        char *a = realloc(m->arena, cap);
        if (!a)
            return DM_ERR_NOMEM;
        m->arena = a;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->arena_len, addr, la);
    memcpy(m->arena + m->arena_len + la, domain, ld);
    *off = (uint32_t)m->arena_len;
    m->arena_len += la + ld;
    return DM_OK;
}

static void s_arena_release(dm_membership_t *m, uint32_t off)
{
    const char *a = m->arena + off;
    size_t la = strlen(a) + 1;
    m->arena_garbage += la + strlen(a + la) + 1;
}

dm_err dm_membership__set_strings(dm_membership_t *m, uint32_t idx, const char *address,
                         const char *domain)
{
    const uint8_t *id = m->mem[idx].id;
    const char *s = dm_membership__short_address(id, address);
    uint32_t off;
    dm_err rc = s_arena_put(m, s ? s : address, domain, &off);
    if (rc != DM_OK)
        return rc;
    s_arena_release(m, m->mem[idx].str);
    m->mem[idx].str = off;
    m->mem[idx].short_addr = s != NULL;
    return DM_OK;
}

bool dm_membership__strings_equal(const dm_membership_t *m, uint32_t idx, const char *address,
                         const char *domain)
{
    const dm_membership__member_t *e = &m->mem[idx];
    const char *s = dm_membership__short_address(e->id, address);
    const char *stored = m->arena + e->str;
    if ((s != NULL) != (e->short_addr != 0) || strcmp(s ? s : address, stored) != 0)
        return false;
    return strcmp(stored + strlen(stored) + 1, domain) == 0;
}

void dm_membership__address(const dm_membership_t *m, uint32_t idx, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const dm_membership__member_t *e = &m->mem[idx];
    const char *stored = m->arena + e->str;
    size_t pos = 0;
    if (e->short_addr) {
        for (size_t i = 0; i < DM_ID_PUBLIC_BYTES; i++) {
            out[pos++] = hex[e->id[i] >> 4];
            out[pos++] = hex[e->id[i] & 15];
        }
        out[pos++] = '@';
    }
    size_t l = strlen(stored);
    if (pos + l >= DM_ADDRESS_MAX)
        l = DM_ADDRESS_MAX - 1 - pos; /* cannot happen: inputs are checked */
    memcpy(out + pos, stored, l);
    out[pos + l] = 0;
}

const char *dm_membership__domain(const dm_membership_t *m, uint32_t idx)
{
    const char *stored = m->arena + m->mem[idx].str;
    return stored + strlen(stored) + 1;
}

dm_err dm_membership__add(dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES], const char *address,
                 const char *domain, uint32_t *idx_out)
{
    if (m->n + 1 >= UINT32_MAX - 1)
        return DM_ERR_NOMEM;
    if (!dm_array_reserve(&m->mem, &m->cap, m->n + 1, sizeof *m->mem, 16))
        return DM_ERR_NOMEM;
    if ((m->n + 1) * 4 > m->nslots * 3) { /* load factor at most 3/4 */
        size_t ns = m->nslots ? m->nslots * 2 : S_MIN_SLOTS;
        while ((m->n + 1) * 4 > ns * 3)
            ns *= 2;
        dm_err rc = s_rehash(m, ns);
        if (rc != DM_OK)
            return rc;
    }
    const char *s = dm_membership__short_address(id, address);
    uint32_t off;
    dm_err rc = s_arena_put(m, s ? s : address, domain, &off);
    if (rc != DM_OK)
        return rc;
    uint32_t idx = (uint32_t)m->n++;
    dm_membership__member_t *e = &m->mem[idx];
    memset(e, 0, sizeof *e);
    memcpy(e->id, id, DM_ID_PUBLIC_BYTES);
    e->str = off;
    e->short_addr = s != NULL;
    e->aux = DM_MEMBERSHIP_NO_AUX;
    e->state = DM_MEMBER_ALIVE;
    s_slot_put(m, idx);
    /* A newcomer takes a random place in the probe order, so it is probed
     * within one round on average, wherever the round is. */
    uint32_t j = (uint32_t)(dm_membership__rand(m) % m->n);
    if (j != idx) {
        s_swap(m, idx, j);
        idx = j;
    }
    *idx_out = idx;
    return DM_OK;
}

void dm_membership__remove(dm_membership_t *m, uint32_t idx)
{
    dm_membership__aux_put(m, idx);
    s_arena_release(m, m->mem[idx].str);
    s_slot_delete(m, m->mem[idx].id);
    uint32_t last = (uint32_t)(m->n - 1);
    if (idx != last) {
        size_t sl = s_slot_of(m, last);
        m->mem[idx] = m->mem[last];
        m->slots[sl] = idx + 1;
    }
    m->n--;
}

void dm_membership__shuffle(dm_membership_t *m)
{
    for (size_t i = m->n; i > 1; i--) {
        size_t j = (size_t)(dm_membership__rand(m) % i);
        dm_membership__member_t t = m->mem[i - 1];
        m->mem[i - 1] = m->mem[j];
        m->mem[j] = t;
    }
    if (!m->nslots)
        return;
    memset(m->slots, 0, m->nslots * sizeof *m->slots);
    for (size_t i = 0; i < m->n; i++)
        s_slot_put(m, (uint32_t)i);
}

uint32_t dm_membership__aux_get(dm_membership_t *m, uint32_t idx)
{
    dm_membership__member_t *e = &m->mem[idx];
    if (e->aux != DM_MEMBERSHIP_NO_AUX)
        return e->aux;
    uint32_t a = DM_MEMBERSHIP_NO_AUX;
    if (m->aux_free < m->naux && !m->aux[m->aux_free].used)
        a = m->aux_free;
    for (size_t i = 0; a == DM_MEMBERSHIP_NO_AUX && i < m->naux; i++)
        if (!m->aux[i].used)
            a = (uint32_t)i;
    if (a == DM_MEMBERSHIP_NO_AUX) {
        if (!dm_array_reserve(&m->aux, &m->auxcap, m->naux + 1, sizeof *m->aux, 8))
            return DM_MEMBERSHIP_NO_AUX;
        if (m->naux >= DM_MEMBERSHIP_NO_AUX)
            return DM_MEMBERSHIP_NO_AUX;
        a = (uint32_t)m->naux++;
    }
    memset(&m->aux[a], 0, sizeof m->aux[a]);
    m->aux[a].used = true;
    memcpy(m->aux[a].id, e->id, DM_ID_PUBLIC_BYTES);
    e->aux = a;
    return a;
}

void dm_membership__aux_put(dm_membership_t *m, uint32_t idx)
{
    dm_membership__member_t *e = &m->mem[idx];
    if (e->aux == DM_MEMBERSHIP_NO_AUX)
        return;
    m->aux[e->aux].used = false;
    m->aux_free = e->aux;
    e->aux = DM_MEMBERSHIP_NO_AUX;
    while (m->naux && !m->aux[m->naux - 1].used)
        m->naux--;
}

void dm_membership_trim(dm_membership_t *m)
{
    if (m->n && m->n < m->cap) {
        dm_membership__member_t *a = realloc(m->mem, m->n * sizeof *a);
        if (a) {
            m->mem = a;
            m->cap = m->n;
        }
    }
    if (m->arena_garbage)
        s_arena_compact(m);
    if (m->arena_len && m->arena_len < m->arena_cap) {
        char *a = realloc(m->arena, m->arena_len);
        if (a) {
            m->arena = a;
            m->arena_cap = m->arena_len;
        }
    }
}

void dm_membership__free_table(dm_membership_t *m)
{
    free(m->mem);
    free(m->slots);
    free(m->arena);
    free(m->aux);
    m->mem = NULL;
    m->slots = NULL;
    m->arena = NULL;
    m->aux = NULL;
    m->n = m->cap = m->nslots = m->naux = m->auxcap = 0;
}
