/* pattern_match.c: a linear-time matcher for the patterns dm_pattern_check
 * accepts, used by the schema instead of glibc's regexec.
 *
 * glibc's regexec is not linear: it retries an unanchored search at every
 * position and builds DFA states without bound, so ".*a.{50}c" takes
 * 0.8 s and 50 MB on 1 KB of random a/b and "(a|b)*a.{100}c" 12 s. This
 * compiles a checked pattern into a Thompson NFA (bounded repetitions
 * expanded, which the checker keeps under DM_PATTERN_MAX_COST atoms) and
 * simulates it with a set of states (Pike's VM without submatches): each
 * byte of the subject costs at most one visit per instruction, whatever
 * the pattern or the text. Semantics are glibc's with REG_EXTENDED |
 * REG_NOSUB in the C locale: leftmost-anything search (unanchored), '.'
 * any byte but NUL, ^ and $ only at the ends of the subject, bracket
 * classes in ASCII. */
#include <stdlib.h>
#include <string.h>

#include "pattern.h"

#define S_SET_BYTES 32 /* 256-bit byte set */

typedef enum { S_CHAR, S_SPLIT, S_JMP, S_BOL, S_EOL, S_MATCH } s_op;

typedef struct {
    uint8_t op;
    uint32_t x, y; /* S_CHAR: x = set index; S_SPLIT: x, y; S_JMP: x */
} s_inst;

struct dm_pattern {
    s_inst *code;
    uint32_t n, cap;
    uint8_t (*sets)[S_SET_BYTES];
    uint32_t nsets, setcap;
};

typedef struct {
    const char *p;
    size_t len, pos;
    dm_pattern_t *g;
} s_cc;

static uint32_t s_emit(dm_pattern_t *g, s_op op, uint32_t x, uint32_t y)
{
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 64;
        s_inst *c = realloc(g->code, cap * sizeof *c);
        if (!c)
            abort();
        g->code = c;
        g->cap = cap;
    }
    g->code[g->n] = (s_inst){(uint8_t)op, x, y};
    return g->n++;
}

static uint8_t *s_newset(dm_pattern_t *g)
{
    if (g->nsets == g->setcap) {
        uint32_t cap = g->setcap ? g->setcap * 2 : 16;
        uint8_t(*s)[S_SET_BYTES] = realloc(g->sets, cap * sizeof *s);
        if (!s)
            abort();
        g->sets = s;
        g->setcap = cap;
    }
    memset(g->sets[g->nsets], 0, S_SET_BYTES);
    s_emit(g, S_CHAR, g->nsets, 0);
    return g->sets[g->nsets++];
}

static void s_add(uint8_t *set, unsigned c)
{
    set[c >> 3] |= (uint8_t)(1u << (c & 7));
}

static bool s_has(const uint8_t *set, unsigned c)
{
    return set[c >> 3] & (1u << (c & 7));
}

/* ASCII members of a [:class:] (the C locale's). */
static bool s_in_class(const char *name, size_t n, unsigned c)
{
    bool up = c >= 'A' && c <= 'Z', lo = c >= 'a' && c <= 'z', dig = c >= '0' && c <= '9';
    bool graph = c > ' ' && c < 0x7f;
#define S_IS(s) (n == sizeof(s) - 1 && memcmp(name, s, n) == 0)
    if (S_IS("alpha")) return up || lo;
    if (S_IS("upper")) return up;
    if (S_IS("lower")) return lo;
    if (S_IS("digit")) return dig;
    if (S_IS("xdigit")) return dig || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (S_IS("alnum")) return up || lo || dig;
    if (S_IS("punct")) return graph && !up && !lo && !dig;
    if (S_IS("space")) return c == ' ' || (c >= '\t' && c <= '\r');
    if (S_IS("blank")) return c == ' ' || c == '\t';
    if (S_IS("cntrl")) return c < ' ' || c == 0x7f;
    if (S_IS("graph")) return graph;
    if (S_IS("print")) return graph || c == ' ';
#undef S_IS
    return false;
}

/* A bracket expression at pos (the '['), already checked. */
static void s_bracket(s_cc *cc)
{
    uint8_t *set = s_newset(cc->g);
    const char *p = cc->p;
    size_t i = cc->pos + 1;
    bool neg = p[i] == '^';
    if (neg)
        i++;
    for (bool first = true; first || p[i] != ']'; first = false) {
        if (p[i] == '[' && p[i + 1] == ':') {
            const char *name = p + i + 2, *end = strstr(name, ":]");
            for (unsigned c = 0; c < 256; c++)
                if (s_in_class(name, (size_t)(end - name), c))
                    s_add(set, c);
            i = (size_t)(end - p) + 2;
            continue;
        }
        unsigned lo = (unsigned char)p[i], hi = lo;
        if (p[i + 1] == '-' && p[i + 2] != ']') {
            hi = (unsigned char)p[i + 2];
            i += 2;
        }
        for (unsigned c = lo; c <= hi; c++)
            s_add(set, c);
        i++;
    }
    cc->pos = i + 1;
    if (neg) {
        for (unsigned k = 0; k < S_SET_BYTES; k++)
            set[k] = (uint8_t)~set[k];
        set[0] &= (uint8_t)~1u; /* never NUL, like '.' */
    }
}

/* Where the atom starting at i ends (the pattern is checked). */
static size_t s_atom_end(const char *p, size_t i)
{
    if (p[i] == '\\')
        return i + 2;
    if (p[i] == '[') {
        i++;
        if (p[i] == '^')
            i++;
        for (bool first = true; first || p[i] != ']'; first = false)
            i = p[i] == '[' && p[i + 1] == ':' ? (size_t)(strstr(p + i + 2, ":]") - p) + 2 : i + 1;
        return i + 1;
    }
    if (p[i] != '(')
        return i + 1;
    unsigned depth = 0;
    do {
        if (p[i] == '(')
            depth++;
        else if (p[i] == ')')
            depth--;
        i = p[i] == '(' || p[i] == ')' ? i + 1 : s_atom_end(p, i);
    } while (depth);
    return i;
}

static void s_alt(s_cc *cc);

static void s_atom(s_cc *cc)
{
    const char *p = cc->p;
    char c = p[cc->pos];
    if (c == '(') {
        cc->pos++;
        s_alt(cc);
        cc->pos++; /* ')' */
    } else if (c == '[') {
        s_bracket(cc);
    } else if (c == '^' || c == '$') {
        s_emit(cc->g, c == '^' ? S_BOL : S_EOL, 0, 0);
        cc->pos++;
    } else if (c == '.') {
        uint8_t *set = s_newset(cc->g);
        memset(set, 0xff, S_SET_BYTES);
        set[0] &= (uint8_t)~1u;
        cc->pos++;
    } else {
        if (c == '\\')
            c = p[++cc->pos];
        s_add(s_newset(cc->g), (unsigned char)c);
        cc->pos++;
    }
}

/* The operand at start, compiled again (each copy of a repetition). */
static void s_copy(s_cc *cc, size_t start)
{
    cc->pos = start;
    s_atom(cc);
}

static unsigned s_num(s_cc *cc)
{
    unsigned v = 0;
    while (cc->p[cc->pos] >= '0' && cc->p[cc->pos] <= '9')
        v = v * 10 + (unsigned)(cc->p[cc->pos++] - '0');
    return v;
}

static void s_piece(s_cc *cc)
{
    dm_pattern_t *g = cc->g;
    size_t start = cc->pos, end = s_atom_end(cc->p, start);
    char r = end < cc->len ? cc->p[end] : 0;
    unsigned m = 1, n = 1;
    bool open = false;
    cc->pos = end + 1;
    if (r == '*' || r == '+' || r == '?') {
        m = r == '+';
        n = r == '?';
        open = r != '?';
    } else if (r == '{') {
        m = n = s_num(cc);
        if (cc->p[cc->pos] == ',') {
            cc->pos++;
            open = cc->p[cc->pos] == '}';
            if (!open)
                n = s_num(cc);
        }
        cc->pos++; /* '}' */
    } else {
        s_copy(cc, start);
        return;
    }
    size_t after = cc->pos;
    for (unsigned k = 0; k < m; k++)
        s_copy(cc, start);
    if (open) { /* L: split L+1, out; x; jmp L */
        uint32_t l = s_emit(g, S_SPLIT, g->n + 1, 0);
        s_copy(cc, start);
        s_emit(g, S_JMP, l, 0);
        g->code[l].y = g->n;
    } else if (n > m) { /* (n - m) optional copies, each may skip to the end */
        uint32_t *skip = malloc((n - m) * sizeof *skip);
        if (!skip)
            abort();
        for (unsigned k = 0; k < n - m; k++) {
            skip[k] = s_emit(g, S_SPLIT, g->n + 1, 0);
            s_copy(cc, start);
        }
        for (unsigned k = 0; k < n - m; k++)
            g->code[skip[k]].y = g->n;
        free(skip);
    }
    cc->pos = after;
}

/* Where the branch starting at i ends: at '|', ')' or the end. */
static size_t s_branch_end(const s_cc *cc, size_t i)
{
    while (i < cc->len && cc->p[i] != '|' && cc->p[i] != ')')
        i = s_atom_end(cc->p, i);
    return i;
}

static void s_alt(s_cc *cc)
{
    dm_pattern_t *g = cc->g;
    uint32_t jumps[DM_PATTERN_MAX_LEN];
    size_t nj = 0;
    for (;;) {
        size_t end = s_branch_end(cc, cc->pos);
        bool last = end >= cc->len || cc->p[end] != '|';
        uint32_t split = last ? 0 : s_emit(g, S_SPLIT, g->n + 1, 0);
        while (cc->pos < end)
            s_piece(cc);
        if (last)
            break;
        jumps[nj++] = s_emit(g, S_JMP, 0, 0);
        g->code[split].y = g->n;
        cc->pos = end + 1;
    }
    for (size_t k = 0; k < nj; k++)
        g->code[jumps[k]].x = g->n;
}

dm_err dm_pattern_compile(const char *pattern, dm_pattern_t **out)
{
    *out = NULL;
    if (dm_pattern_check(pattern, NULL, NULL, 0) != DM_OK)
        return DM_ERR_INVALID;
    dm_pattern_t *g = calloc(1, sizeof *g);
    if (!g)
        return DM_ERR_NOMEM;
    s_cc cc = {pattern, strlen(pattern), 0, g};
    s_alt(&cc);
    s_emit(g, S_MATCH, 0, 0);
    *out = g;
    return DM_OK;
}

void dm_pattern_destroy(dm_pattern_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->code);
    free((*self_p)->sets);
    free(*self_p);
    *self_p = NULL;
}

/* A set of instruction indexes (sparse set: O(1) insert, test, clear). */
typedef struct {
    uint32_t *dense, *sparse;
    uint32_t n;
} s_list;

static bool s_in(const s_list *l, uint32_t pc)
{
    return l->sparse[pc] < l->n && l->dense[l->sparse[pc]] == pc;
}

/* Adds pc and everything it reaches without consuming a byte at position
 * pos of an n-byte subject; returns true when that reaches S_MATCH. */
static bool s_follow(const dm_pattern_t *g, s_list *l, uint32_t *stack, uint32_t pc, size_t pos,
                     size_t n)
{
    size_t top = 0;
    stack[top++] = pc;
    while (top) {
        pc = stack[--top];
        if (s_in(l, pc))
            continue;
        l->sparse[pc] = l->n;
        l->dense[l->n++] = pc;
        const s_inst *in = &g->code[pc];
        switch (in->op) {
        case S_MATCH: return true;
        case S_JMP: stack[top++] = in->x; break;
        case S_SPLIT:
            stack[top++] = in->y;
            stack[top++] = in->x;
            break;
        case S_BOL:
            if (pos == 0)
                stack[top++] = pc + 1;
            break;
        case S_EOL:
            if (pos == n)
                stack[top++] = pc + 1;
            break;
        default: break;
        }
    }
    return false;
}

dm_err dm_pattern_match(const dm_pattern_t *g, const char *t, size_t n, bool *matched)
{
    *matched = false;
    /* two lists of dense + sparse, and the stack: each instruction enters a
     * list once per step and pushes at most two more */
    uint32_t *mem = calloc((size_t)g->n * 6 + 1, sizeof *mem);
    if (!mem)
        return DM_ERR_NOMEM;
    s_list a = {mem, mem + g->n, 0}, b = {mem + 2 * g->n, mem + 3 * g->n, 0};
    uint32_t *stack = mem + 4 * g->n;
    s_list *cur = &a, *next = &b;
    for (size_t i = 0;; i++) {
        if (s_follow(g, cur, stack, 0, i, n)) { /* a match may start anywhere */
            *matched = true;
            break;
        }
        if (i == n)
            break;
        unsigned c = (unsigned char)t[i];
        next->n = 0;
        for (uint32_t k = 0; k < cur->n; k++) {
            const s_inst *in = &g->code[cur->dense[k]];
            if (in->op == S_CHAR && s_has(g->sets[in->x], c) &&
                s_follow(g, next, stack, cur->dense[k] + 1, i + 1, n)) {
                *matched = true;
                goto out;
            }
        }
        s_list *tmp = cur;
        cur = next;
        next = tmp;
    }
out:
    free(mem);
    return DM_OK;
}
