/* pattern_match.c: a linear-time matcher for the patterns dm_pattern_check
 * accepts, used by the schema instead of glibc's regexec.
 *
 * glibc's regexec is not linear: it retries an unanchored search at every
 * position and builds DFA states without bound, so ".*a.{50}c" takes
 * 0.8 s and 50 MB on 1 KB of random a/b and "(a|b)*a.{100}c" 12 s. Here a
 * checked pattern is compiled into a Thompson program (bounded repetitions
 * expanded, which the checker keeps under DM_PATTERN_MAX_COST atoms), and
 * the program into its position automaton: one position per byte-set
 * atom, each with the positions that may follow it (its epsilon closure).
 * A state is a bit set of at most DM_PATTERN_MAX_COST positions, and one
 * byte of the subject costs one mask AND plus one table row OR per
 * non-empty 8-position slice of the state, whatever the pattern or the
 * text; a new match may start at every offset, so the search is one pass.
 * Semantics are glibc's with REG_EXTENDED | REG_NOSUB in the C locale: a
 * match anywhere (unanchored), '.' any byte but NUL ([^a] does match NUL,
 * as in glibc), ^ and $ only at the ends of the subject, bracket classes
 * in ASCII. The unit tests compare it with regexec on random patterns. */
#include <stdlib.h>
#include <string.h>

#include "contract/pattern.h"

#define S_SET_BYTES 32 /* 256-bit byte set */

typedef enum { S_CHAR, S_SPLIT, S_JMP, S_BOL, S_EOL, S_MATCH } s_op;

typedef struct {
    uint8_t op;
    uint32_t x, y; /* S_CHAR: x = set index; S_SPLIT: x, y; S_JMP: x */
} s_inst;

#define S_WORDS ((DM_PATTERN_MAX_COST + 63) / 64) /* 64-bit words of a position set */
#define S_NIB 8                                    /* positions per follow-table slice */
#define S_NIB_VALUES (1u << S_NIB)

/* The Thompson program while compiling; each S_CHAR is one position, its
 * byte set sets[x], and x counts the positions in program order. */
typedef struct {
    s_inst *code;
    uint32_t n, cap;
    uint8_t (*sets)[S_SET_BYTES];
    uint32_t nsets, setcap;
} s_prog;

/* The position (Glushkov) automaton derived from the program: a state is
 * the set of positions waiting for a byte, a bit each. */
struct dm_pattern {
    uint32_t m, words;          /* positions, 64-bit words per set */
    uint64_t *mask;             /* [256][words]: positions that accept byte c */
    uint64_t *follow;           /* [slices][256][words]: union of follow sets of an 8-bit slice */
    uint64_t first0[S_WORDS];   /* positions a match can start with at offset 0 */
    uint64_t first[S_WORDS];    /* ... at any later offset (past a leading ^) */
    uint64_t fin[S_WORDS];      /* positions after which the match is complete */
    uint64_t fin_end[S_WORDS];  /* ... complete only at the end of the subject ($) */
    bool empty0, empty;         /* the empty match: at offset 0, at any later offset */
    bool empty0_end, empty_end; /* ... only at the end ($): when it is offset 0, or later */
};

/* The compiler's cursor over a checked pattern. */
typedef struct {
    const char *p;
    size_t len, pos;
    s_prog *g;
} s_cc;

/* Appends one instruction; returns its index. Aborts on out of memory. */
static uint32_t s_emit(s_prog *g, s_op op, uint32_t x, uint32_t y)
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

/* Emits an S_CHAR for a new, empty byte set and returns the set. */
static uint8_t *s_newset(s_prog *g)
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
            set[k] = (uint8_t)~set[k]; /* NUL included, as glibc does */
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

/* Emits one atom (a group compiles its alternatives). */
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

/* A decimal number of a bound (checked: at most DM_PATTERN_MAX_BOUND). */
static unsigned s_num(s_cc *cc)
{
    unsigned v = 0;
    while (cc->p[cc->pos] >= '0' && cc->p[cc->pos] <= '9')
        v = v * 10 + (unsigned)(cc->p[cc->pos++] - '0');
    return v;
}

/* Emits an atom with its repetition: m copies, then a loop ({m,}, *, +)
 * or n - m optional copies. */
static void s_piece(s_cc *cc)
{
    s_prog *g = cc->g;
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

/* Emits branches separated by '|' up to ')' or the end: a split before
 * each branch but the last, a jump past the rest after each. */
static void s_alt(s_cc *cc)
{
    s_prog *g = cc->g;
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

/* What the program reaches from pc without consuming a byte: the
 * positions (bits), whether MATCH is reached, and whether it is reached
 * only through $ (at the end of the subject). ^ passes only at offset 0.
 * The checker allows $ only as the pattern's last character, so nothing
 * but MATCH follows it. visited and stack have room for g->n entries
 * (stack: twice that). */
static void s_closure(const s_prog *g, uint32_t pc, bool at_start, uint64_t *bits, bool *match,
                      bool *match_end, uint8_t *visited, uint32_t *stack)
{
    memset(visited, 0, g->n);
    size_t top = 0;
    stack[top++] = pc << 1;
    while (top) {
        uint32_t v = stack[--top], at = v >> 1, after_eol = v & 1;
        if (visited[at] & (1u << after_eol))
            continue;
        visited[at] |= (uint8_t)(1u << after_eol);
        const s_inst *in = &g->code[at];
        switch (in->op) {
        case S_MATCH:
            if (after_eol)
                *match_end = true;
            else
                *match = true;
            break;
        case S_CHAR:
            if (!after_eol)
                bits[in->x / 64] |= 1ull << (in->x % 64);
            break;
        case S_JMP: stack[top++] = in->x << 1 | after_eol; break;
        case S_SPLIT:
            stack[top++] = in->y << 1 | after_eol;
            stack[top++] = in->x << 1 | after_eol;
            break;
        case S_BOL:
            if (at_start)
                stack[top++] = (at + 1) << 1 | after_eol;
            break;
        case S_EOL: stack[top++] = (at + 1) << 1 | 1; break;
        default: break;
        }
    }
}

/* Builds the position automaton of program g into p. */
static dm_err s_automaton(const s_prog *g, dm_pattern_t *p)
{
    dm_err rc = DM_ERR_NOMEM;
    p->m = g->nsets;
    if (p->m > DM_PATTERN_MAX_COST)
        return DM_ERR_TOOBIG; /* the checker keeps this from happening */
    p->words = (p->m + 63) / 64 ? (p->m + 63) / 64 : 1;
    uint32_t w = p->words, slices = (p->m + S_NIB - 1) / S_NIB;
    uint8_t *visited = malloc(g->n);
    uint32_t *stack = malloc(2 * (size_t)g->n * sizeof *stack + sizeof *stack);
    uint64_t *fol = calloc((size_t)p->m * w + 1, sizeof *fol);
    p->mask = calloc(256 * (size_t)w, sizeof *p->mask);
    p->follow = calloc((size_t)slices * S_NIB_VALUES * w + 1, sizeof *p->follow);
    if (!visited || !stack || !fol || !p->mask || !p->follow)
        goto out;
    bool m0 = false, e0 = false, m1 = false, e1 = false;
    s_closure(g, 0, true, p->first0, &m0, &e0, visited, stack);
    s_closure(g, 0, false, p->first, &m1, &e1, visited, stack);
    p->empty0 = m0;
    p->empty = m1;
    p->empty0_end = e0;
    p->empty_end = e1;
    for (uint32_t pc = 0; pc < g->n; pc++) {
        if (g->code[pc].op != S_CHAR)
            continue;
        uint32_t k = g->code[pc].x;
        bool mt = false, me = false;
        s_closure(g, pc + 1, false, fol + (size_t)k * w, &mt, &me, visited, stack);
        if (mt)
            p->fin[k / 64] |= 1ull << (k % 64);
        if (me)
            p->fin_end[k / 64] |= 1ull << (k % 64);
        for (unsigned c = 0; c < 256; c++)
            if (s_has(g->sets[k], c))
                p->mask[(size_t)c * w + k / 64] |= 1ull << (k % 64);
    }
    for (uint32_t sl = 0; sl < slices; sl++)
        for (unsigned v = 1; v < S_NIB_VALUES; v++)
            for (unsigned b = 0; b < S_NIB; b++) {
                uint32_t k = sl * S_NIB + b;
                if (!(v & (1u << b)) || k >= p->m)
                    continue;
                uint64_t *dst = p->follow + ((size_t)sl * S_NIB_VALUES + v) * w;
                for (uint32_t j = 0; j < w; j++)
                    dst[j] |= fol[(size_t)k * w + j];
            }
    rc = DM_OK;
out:
    free(visited);
    free(stack);
    free(fol);
    return rc;
}

dm_err dm_pattern_compile(const char *pattern, dm_pattern_t **out)
{
    *out = NULL;
    if (dm_pattern_check(pattern, NULL, NULL) != DM_OK)
        return DM_ERR_INVALID;
    s_prog g = {0};
    s_cc cc = {pattern, strlen(pattern), 0, &g};
    s_alt(&cc);
    s_emit(&g, S_MATCH, 0, 0);
    dm_pattern_t *p = calloc(1, sizeof *p);
    dm_err rc = p ? s_automaton(&g, p) : DM_ERR_NOMEM;
    free(g.code);
    free(g.sets);
    if (rc != DM_OK) {
        dm_pattern_destroy(&p);
        return rc;
    }
    *out = p;
    return DM_OK;
}

void dm_pattern_destroy(dm_pattern_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->mask);
    free((*self_p)->follow);
    free(*self_p);
    *self_p = NULL;
}

/* Whether the sets a and b (w words) meet. */
static bool s_any(const uint64_t *a, const uint64_t *b, uint32_t w)
{
    for (uint32_t j = 0; j < w; j++)
        if (a[j] & b[j])
            return true;
    return false;
}

bool dm_pattern_match(const dm_pattern_t *p, const char *t, size_t n)
{
    uint32_t w = p->words;
    bool matched = p->empty0 || (n == 0 && p->empty0_end) || (n > 0 && (p->empty || p->empty_end));
    uint64_t cur[S_WORDS], live[S_WORDS];
    memcpy(cur, p->first0, sizeof cur);
    for (size_t i = 0; i < n && !matched; i++) {
        const uint64_t *mask = p->mask + (size_t)(unsigned char)t[i] * w;
        bool any = false;
        for (uint32_t j = 0; j < w; j++) {
            live[j] = cur[j] & mask[j];
            any = any || live[j];
        }
        memcpy(cur, p->first, sizeof cur); /* a match may start at the next offset */
        if (!any)
            continue;
        if (s_any(live, p->fin, w) || (i + 1 == n && s_any(live, p->fin_end, w))) {
            matched = true;
            break;
        }
        for (uint32_t j = 0; j < w; j++) {
            uint64_t word = live[j];
            while (word) { /* one table row per non-empty 8-position slice */
                unsigned shift = (unsigned)__builtin_ctzll(word) / S_NIB * S_NIB;
                unsigned v = (unsigned)(word >> shift) & (S_NIB_VALUES - 1);
                const uint64_t *f =
                    p->follow + (((size_t)j * 64 + shift) / S_NIB * S_NIB_VALUES + v) * w;
                for (uint32_t k = 0; k < w; k++)
                    cur[k] |= f[k];
                word &= ~((uint64_t)(S_NIB_VALUES - 1) << shift);
            }
        }
    }
    return matched;
}
