/* search.c: the ranked catalog search of search.h.
 *
 * Each product is a document of tokens tagged with the part they come
 * from, sorted and unique per part. A run scores every document against
 * every query word (the best weighted match of the word in any part),
 * weighs each word by idf = ln(1 + (N - df + 0.5) / (df + 0.5)) as BM25
 * does (N documents, df of them matching the word), sums, and scales the
 * sum by the share of the words matched, so a product matching all words
 * ranks above one that matches a single rare word strongly. A run costs
 * O(tokens of the catalog x words), bounded by the catalog's limits and
 * DM_SEARCH_WORDS_MAX. */
#include "catalog/search.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { S_NAME, S_DOMAIN, S_TAG, S_FIELD, S_DESC, S_OWNER, S__PARTS };

static const double s_weight[S__PARTS] = {DM_SEARCH_W_NAME,  DM_SEARCH_W_DOMAIN,
                                          DM_SEARCH_W_TAG,   DM_SEARCH_W_FIELD,
                                          DM_SEARCH_W_DESCRIPTION, DM_SEARCH_W_OWNER};
static const char *const s_part_name[S__PARTS] = {"name", "domain", "tags", "fields",
                                                  "description", "owner"};

typedef struct {
    uint32_t off; /* into the document's text */
    uint8_t part;
} s_tok_t;

typedef struct {
    char *domain, *name, *description;
    dm_buf_t text; /* the tokens, each NUL-terminated */
    s_tok_t *toks;
    size_t ntoks, cap;
} s_doc_t;

struct dm_search {
    s_doc_t *docs;
    size_t n, cap;
    bool nomem;
};

static bool s_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Appends the words of text (len bytes) to d as tokens of part: ASCII
 * lowered, each cut at DM_SEARCH_WORD_MAX bytes. */
static bool s_add_text(s_doc_t *d, const char *text, size_t len, unsigned part)
{
    for (size_t i = 0; i < len;) {
        while (i < len && !s_word_byte((unsigned char)text[i]))
            i++;
        size_t start = i;
        while (i < len && s_word_byte((unsigned char)text[i]))
            i++;
        if (i == start)
            continue;
        if (d->ntoks == d->cap) {
            size_t cap = d->cap ? d->cap * 2 : 32;
            s_tok_t *p = realloc(d->toks, cap * sizeof *p);
            if (!p)
                return false;
            d->toks = p;
            d->cap = cap;
        }
        size_t n = i - start < DM_SEARCH_WORD_MAX ? i - start : DM_SEARCH_WORD_MAX;
        if (d->text.len > UINT32_MAX - DM_SEARCH_WORD_MAX - 1)
            return true; /* a document over 4 GiB of tokens: the rest is not indexed */
        d->toks[d->ntoks++] = (s_tok_t){(uint32_t)d->text.len, (uint8_t)part};
        dm_buf_reserve(&d->text, n + 1);
        char *w = d->text.data + d->text.len;
        for (size_t k = 0; k < n; k++) {
            char c = text[start + k];
            w[k] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
        w[n] = 0;
        d->text.len += n + 1;
        d->text.data[d->text.len] = 0; /* the buffer's own terminator */
    }
    return true;
}

static bool s_add_json(s_doc_t *d, const cJSON *v, unsigned part)
{
    return !cJSON_IsString(v) || s_add_text(d, v->valuestring, strlen(v->valuestring), part);
}

/* A copy of s cut to at most max bytes, not inside a UTF-8 sequence. */
static char *s_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = 0;
    }
    return out;
}

/* A token with its text, for sorting (qsort has no context argument). */
typedef struct {
    const char *t;
    s_tok_t tok;
} s_sort_t;

static int s_tok_cmp(const void *a, const void *b)
{
    const s_sort_t *x = a, *y = b;
    if (x->tok.part != y->tok.part)
        return x->tok.part < y->tok.part ? -1 : 1;
    return strcmp(x->t, y->t);
}

/* Sorts d's tokens by part and text and drops repeats. */
static bool s_seal(s_doc_t *d)
{
    if (!d->ntoks)
        return true;
    s_sort_t *v = malloc(d->ntoks * sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < d->ntoks; i++)
        v[i] = (s_sort_t){d->text.data + d->toks[i].off, d->toks[i]};
    qsort(v, d->ntoks, sizeof *v, s_tok_cmp);
    size_t w = 0;
    for (size_t i = 0; i < d->ntoks; i++)
        if (!w || s_tok_cmp(&v[i], &v[i - 1]) != 0)
            d->toks[w++] = v[i].tok;
    d->ntoks = w;
    free(v);
    return true;
}

/* Tokenizes one contract's searchable parts into d. */
static bool s_index_contract(s_doc_t *d, const char *json, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *owner = cJSON_GetObjectItemCaseSensitive(meta, "owner");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(meta, "description");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(root, "spec");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(spec, "schema");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(schema, "fields");
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(meta, "tags"), *it;
    bool ok = s_add_json(d, desc, S_DESC) &&
              s_add_json(d, cJSON_GetObjectItemCaseSensitive(owner, "team"), S_OWNER) &&
              s_add_json(d, cJSON_GetObjectItemCaseSensitive(owner, "contact"), S_OWNER);
    if (ok && cJSON_IsString(desc))
        ok = (d->description = s_cut(desc->valuestring, DM_SEARCH_DESCRIPTION_MAX)) != NULL;
    if (cJSON_IsArray(tags))
        cJSON_ArrayForEach(it, tags) ok = ok && s_add_json(d, it, S_TAG);
    if (cJSON_IsArray(fields))
        cJSON_ArrayForEach(it, fields) {
            ok = ok && s_add_json(d, cJSON_GetObjectItemCaseSensitive(it, "name"), S_FIELD) &&
                 s_add_json(d, cJSON_GetObjectItemCaseSensitive(it, "description"), S_DESC);
        }
    cJSON_Delete(root);
    return ok;
}

static int s_on_product(void *ctx, const dm_catalog_product_t *p)
{
    dm_search_t *s = ctx;
    if (p->tombstone || !p->contract)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        s_doc_t *docs = realloc(s->docs, cap * sizeof *docs);
        if (!docs) {
            s->nomem = true;
            return 1;
        }
        s->docs = docs;
        s->cap = cap;
    }
    s_doc_t *d = &s->docs[s->n++];
    memset(d, 0, sizeof *d);
    d->domain = strdup(p->domain);
    d->name = strdup(p->name);
    if (!d->domain || !d->name || !s_add_text(d, p->name, strlen(p->name), S_NAME) ||
        !s_add_text(d, p->domain, strlen(p->domain), S_DOMAIN) ||
        !s_index_contract(d, p->contract, p->contract_len)) {
        s->nomem = true;
        return 1;
    }
    if (!s_seal(d)) {
        s->nomem = true;
        return 1;
    }
    return 0;
}

dm_err dm_search_build(const dm_catalog_t *c, dm_search_t **out, dm_buf_t *why)
{
    *out = NULL;
    dm_search_t *s = calloc(1, sizeof *s);
    dm_err rc = s ? dm_catalog_products(c, false, s_on_product, s) : DM_ERR_NOMEM;
    if (rc == DM_OK && s->nomem)
        rc = DM_ERR_NOMEM;
    if (rc != DM_OK) {
        dm_buf_why(why, "search: cannot index the catalog: %s", dm_err_str(rc));
        dm_search_destroy(&s);
        return rc;
    }
    *out = s;
    return DM_OK;
}

void dm_search_destroy(dm_search_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_search_t *s = *self_p;
    for (size_t i = 0; i < s->n; i++) {
        free(s->docs[i].domain);
        free(s->docs[i].name);
        free(s->docs[i].description);
        dm_buf_free(&s->docs[i].text);
        free(s->docs[i].toks);
    }
    free(s->docs);
    free(s);
    *self_p = NULL;
}

size_t dm_search_count(const dm_search_t *s) { return s ? s->n : 0; }

/* The query's distinct words, lowered, as a document of one part. */
static dm_err s_query_words(const char *query, s_doc_t *q, dm_buf_t *why)
{
    size_t len = strlen(query);
    if (len > DM_SEARCH_QUERY_MAX) {
        dm_buf_why(why, "search: the query is %zu bytes; at most %d are searched", len,
                   DM_SEARCH_QUERY_MAX);
        return DM_ERR_INVALID;
    }
    if (!s_add_text(q, query, len, S_NAME) || !s_seal(q))
        return DM_ERR_NOMEM;
    if (q->ntoks == 0) {
        dm_buf_why(why, "search: the query '%s' has no words (letters or digits)", query);
        return DM_ERR_INVALID;
    }
    if (q->ntoks > DM_SEARCH_WORDS_MAX) {
        dm_buf_why(why, "search: the query has %zu distinct words; at most %d are searched",
                   q->ntoks, DM_SEARCH_WORDS_MAX);
        return DM_ERR_INVALID;
    }
    return DM_OK;
}

/* How well token t matches word w: 1 equal, DM_SEARCH_PREFIX_FACTOR when
 * w (two bytes or more) begins t, else 0. */
static double s_match(const char *t, const char *w, size_t wlen)
{
    if (strncmp(t, w, wlen) != 0)
        return 0;
    if (t[wlen] == 0)
        return 1;
    return wlen >= 2 ? DM_SEARCH_PREFIX_FACTOR : 0;
}

/* The best weighted match of word w in d. */
static double s_best(const s_doc_t *d, const char *w)
{
    size_t wlen = strlen(w);
    double best = 0;
    for (size_t i = 0; i < d->ntoks; i++) {
        double m = s_match(d->text.data + d->toks[i].off, w, wlen) * s_weight[d->toks[i].part];
        if (m > best)
            best = m;
    }
    return best;
}

/* Where the words of q matched in d, for people: the parts, and for
 * fields the field names. */
static void s_matched(const s_doc_t *d, const s_doc_t *q, dm_buf_t *out)
{
    bool part_seen[S__PARTS] = {0};
    size_t nfields = 0;
    dm_buf_t fields = DM_BUF_INIT;
    for (size_t i = 0; i < d->ntoks; i++) {
        const char *t = d->text.data + d->toks[i].off;
        bool hit = false;
        for (size_t k = 0; k < q->ntoks && !hit; k++) {
            const char *w = q->text.data + q->toks[k].off;
            hit = s_match(t, w, strlen(w)) > 0;
        }
        if (!hit)
            continue;
        part_seen[d->toks[i].part] = true;
        if (d->toks[i].part == S_FIELD && nfields++ < 5)
            dm_buf_printf(&fields, "%s%s", fields.len ? ", " : "", t);
    }
    dm_buf_reset(out);
    for (unsigned p = 0; p < S__PARTS; p++) {
        if (!part_seen[p])
            continue;
        dm_buf_printf(out, "%s%s", out->len ? ", " : "", s_part_name[p]);
        if (p == S_FIELD)
            dm_buf_printf(out, ": %s%s", fields.data, nfields > 5 ? ", ..." : "");
    }
    dm_buf_free(&fields);
}

typedef struct {
    const s_doc_t *doc;
    double score;
} s_rank_t;

static int s_rank_cmp(const void *a, const void *b)
{
    const s_rank_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    int c = strcmp(x->doc->domain, y->doc->domain);
    return c ? c : strcmp(x->doc->name, y->doc->name);
}

/* Scores every document of s against q's words into ranks (the matching
 * ones, unsorted); *nranks their number. */
static dm_err s_score(const dm_search_t *s, const s_doc_t *q, s_rank_t *ranks, size_t *nranks)
{
    double *best = calloc(s->n * q->ntoks + 1, sizeof *best);
    double *idf = calloc(q->ntoks, sizeof *idf);
    if (!best || !idf) {
        free(best);
        free(idf);
        return DM_ERR_NOMEM;
    }
    for (size_t k = 0; k < q->ntoks; k++) {
        size_t df = 0;
        for (size_t i = 0; i < s->n; i++)
            df += (best[i * q->ntoks + k] = s_best(&s->docs[i], q->text.data + q->toks[k].off)) > 0;
        idf[k] = log(1.0 + ((double)s->n - (double)df + 0.5) / ((double)df + 0.5));
    }
    *nranks = 0;
    for (size_t i = 0; i < s->n; i++) {
        double sum = 0;
        size_t matched = 0;
        for (size_t k = 0; k < q->ntoks; k++) {
            double b = best[i * q->ntoks + k];
            sum += idf[k] * b;
            matched += b > 0;
        }
        if (matched)
            ranks[(*nranks)++] = (s_rank_t){&s->docs[i], sum * (double)matched / (double)q->ntoks};
    }
    free(best);
    free(idf);
    return DM_OK;
}

dm_err dm_search_run(const dm_search_t *s, const char *query, dm_search_hit_fn fn, void *ctx,
                     dm_buf_t *why)
{
    s_doc_t q = {0};
    s_rank_t *ranks = NULL;
    dm_buf_t matched = DM_BUF_INIT;
    size_t nranks = 0;
    dm_err rc = s_query_words(query, &q, why);
    if (rc == DM_OK && !(ranks = malloc((s->n ? s->n : 1) * sizeof *ranks)))
        rc = DM_ERR_NOMEM;
    if (rc == DM_OK)
        rc = s_score(s, &q, ranks, &nranks);
    if (rc == DM_OK) {
        qsort(ranks, nranks, sizeof *ranks, s_rank_cmp);
        for (size_t i = 0; i < nranks; i++) {
            const s_doc_t *d = ranks[i].doc;
            s_matched(d, &q, &matched);
            dm_search_hit_t h = {d->domain, d->name, d->description ? d->description : "",
                                 ranks[i].score, matched.data ? matched.data : ""};
            if (fn(ctx, &h))
                break;
        }
    }
    if (rc == DM_ERR_NOMEM)
        dm_buf_why(why, "search: out of memory");
    free(ranks);
    free(q.toks);
    dm_buf_free(&q.text);
    dm_buf_free(&matched);
    return rc;
}
