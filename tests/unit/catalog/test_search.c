/* test_search.c: the ranked catalog search (node/catalog/search.c)
 * over a real catalog: which part a word matches decides the rank (name >
 * tags and domain > fields > description and owner), all words beat some,
 * prefixes count half, and the query's bounds are enforced. */
#include "catalog/search.h"

#include "catalog_test.h"

static dm_t_cworld_t s_world;

static void s_fini(void) { dm_t_cworld_clear(&s_world); }

TestSuite(search, .fini = s_fini);

/* Publishes domain/name from c with meta (extra YAML lines under
 * metadata, indented 2) and fields (YAML flow maps, one a line). */
static void s_publish(dm_catalog_t *c, const char *domain, const char *name, const char *meta,
                      const char *const *fields)
{
    dm_buf_t yaml = DM_BUF_INIT;
    dm_buf_printf(&yaml,
                  "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n"
                  "  domain: %s\n  version: 1.0.0\n%s"
                  "spec:\n  schema:\n    fields:\n      - {name: id, type: int, required: true}\n",
                  name, domain,
                  meta ? meta : "  owner:\n    team: t\n    contact: t@c.com\n");
    for (size_t i = 0; fields && fields[i]; i++)
        dm_buf_printf(&yaml, "      - %s\n", fields[i]);
    dm_t_publish_yaml(c, domain, name, yaml.data, yaml.len);
    dm_buf_free(&yaml);
}

static dm_t_cnode_t *s_domain_node(const char *domain)
{
    return dm_t_domain_node(&s_world, "search", domain);
}

/* Two domains whose products mention "stock" in every part in turn. */
static dm_search_t *s_index(void)
{
    dm_t_cnode_t *l = s_domain_node("logistics"), *c = s_domain_node("commerce");
    static const char *const stock_field[] = {"{name: stock_level, type: int}", NULL};
    static const char *const sku_field[] = {"{name: sku, type: string}", NULL};
    s_publish(l->cat, "logistics", "stock", NULL, NULL);
    s_publish(l->cat, "logistics", "shelves", "  owner: {team: t, contact: t@c.com}\n"
                                             "  tags: [stock, warehouse]\n", NULL);
    s_publish(c->cat, "commerce", "carts", NULL, stock_field);
    s_publish(c->cat, "commerce", "orders",
              "  owner: {team: t, contact: t@c.com}\n"
              "  description: Orders, reserving stock in a warehouse.\n", sku_field);
    s_publish(c->cat, "commerce", "refunds",
              "  owner: {team: stock-keepers, contact: t@c.com}\n", NULL);
    s_publish(c->cat, "commerce", "payments", NULL, NULL);
    cr_assert_gt(dm_t_catalog_sync(l->cat, c->cat, 8), 0);
    dm_search_t *s = NULL;
    cr_assert_eq(dm_search_build(c->cat, &s, NULL), DM_OK);
    cr_assert_eq(dm_search_count(s), 6);
    return s;
}

typedef struct {
    dm_buf_t names, matched;
    double scores[16];
    size_t n, stop_after, desc_len;
} s_hits_t;

static int s_hit(void *ctx, const dm_search_hit_t *h)
{
    s_hits_t *x = ctx;
    dm_buf_printf(&x->names, "%s%s.%s", x->names.len ? " " : "", h->domain, h->name);
    dm_buf_printf(&x->matched, "%s%s", x->matched.len ? " | " : "", h->matched);
    cr_assert_gt(h->score, 0);
    if (x->n < 16)
        x->scores[x->n] = h->score;
    x->n++;
    x->desc_len = strlen(h->description);
    return x->stop_after && x->n >= x->stop_after;
}

static void s_run(const dm_search_t *s, const char *q, s_hits_t *x)
{
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_search_run(s, q, s_hit, x, &why), DM_OK, "%s", why.data ? why.data : "");
    dm_buf_free(&why);
}

static void s_hits_free(s_hits_t *x)
{
    dm_buf_free(&x->names);
    dm_buf_free(&x->matched);
}

Test(search, ranks_name_then_tags_then_fields_then_description_and_owner)
{
    dm_search_t *s = s_index();
    s_hits_t x = {0};
    s_run(s, "stock", &x);
    /* description and owner weigh the same: ties go by domain, name. */
    cr_assert_str_eq(x.names.data, "logistics.stock logistics.shelves commerce.carts "
                                   "commerce.orders commerce.refunds");
    cr_assert_str_eq(x.matched.data,
                     "name | tags | fields: stock | description | owner");
    cr_assert_gt(x.scores[0], x.scores[1]);
    cr_assert_gt(x.scores[1], x.scores[2]);
    cr_assert_gt(x.scores[2], x.scores[3]);
    s_hits_free(&x);
    dm_search_destroy(&s);
    cr_assert_null(s);
}

Test(search, all_words_rank_above_some_and_case_does_not_matter)
{
    dm_search_t *s = s_index();
    s_hits_t x = {0};
    s_run(s, "WAREHOUSE Orders", &x);
    /* orders matches both words (name, description); shelves one (tags). */
    cr_assert_str_eq(x.names.data, "commerce.orders logistics.shelves");
    s_hits_free(&x);
    dm_search_destroy(&s);
}

Test(search, a_prefix_counts_half_and_one_letter_is_not_a_prefix)
{
    dm_search_t *s = s_index();
    s_hits_t x = {0}, y = {0}, z = {0};
    s_run(s, "pay", &x);
    cr_assert_str_eq(x.names.data, "commerce.payments");
    s_run(s, "payments", &y);
    cr_assert_float_eq(x.scores[0] * 2, y.scores[0], 1e-9);
    s_run(s, "p", &z);
    cr_assert_eq(z.n, 0);
    s_hits_free(&x);
    s_hits_free(&y);
    s_hits_free(&z);
    dm_search_destroy(&s);
}

Test(search, domains_and_fields_are_searched)
{
    dm_search_t *s = s_index();
    s_hits_t x = {0}, y = {0};
    s_run(s, "logistics", &x);
    cr_assert_str_eq(x.names.data, "logistics.shelves logistics.stock");
    s_run(s, "sku", &y);
    cr_assert_str_eq(y.names.data, "commerce.orders");
    cr_assert_str_eq(y.matched.data, "fields: sku");
    s_hits_free(&x);
    s_hits_free(&y);
    dm_search_destroy(&s);
}

Test(search, the_query_is_bounded)
{
    dm_search_t *s = s_index();
    dm_buf_t why = DM_BUF_INIT, q = DM_BUF_INIT;
    s_hits_t x = {0};
    for (int i = 0; i < DM_SEARCH_QUERY_MAX + 1; i++)
        dm_buf_putc(&q, 'a');
    cr_assert_eq(dm_search_run(s, q.data, s_hit, &x, &why), DM_ERR_INVALID);
    cr_assert(strstr(why.data, "257 bytes"), "%s", why.data);
    dm_buf_reset(&q);
    dm_buf_reset(&why);
    for (int i = 0; i <= DM_SEARCH_WORDS_MAX; i++)
        dm_buf_printf(&q, "w%d ", i);
    cr_assert_eq(dm_search_run(s, q.data, s_hit, &x, &why), DM_ERR_INVALID);
    cr_assert(strstr(why.data, "17 distinct words"), "%s", why.data);
    /* Repeats are one word; sixteen are fine. */
    dm_buf_reset(&q);
    for (int i = 0; i < 40; i++)
        dm_buf_puts(&q, "stock ");
    s_run(s, q.data, &x);
    cr_assert_eq(x.n, 5);
    dm_buf_reset(&why);
    cr_assert_eq(dm_search_run(s, " ;;, -", s_hit, &x, &why), DM_ERR_INVALID);
    cr_assert(strstr(why.data, "no words"), "%s", why.data);
    dm_buf_free(&why);
    dm_buf_free(&q);
    s_hits_free(&x);
    dm_search_destroy(&s);
}

Test(search, nothing_matching_calls_nothing_and_a_callback_stops)
{
    dm_search_t *s = s_index();
    s_hits_t x = {0};
    s_run(s, "zebra", &x);
    cr_assert_eq(x.n, 0);
    s_hits_free(&x);
    s_hits_t y = {.stop_after = 2};
    s_run(s, "stock", &y);
    cr_assert_eq(y.n, 2);
    s_hits_free(&y);
    dm_search_destroy(&s);
}

Test(search, descriptions_are_cut_at_a_character)
{
    dm_t_cnode_t *c = s_domain_node("commerce");
    dm_buf_t meta = DM_BUF_INIT;
    dm_buf_puts(&meta, "  owner: {team: t, contact: t@c.com}\n  description: x");
    for (int i = 0; i < DM_SEARCH_DESCRIPTION_MAX; i++)
        dm_buf_puts(&meta, "\xc3\xa9"); /* é, two bytes each */
    dm_buf_puts(&meta, "\n");
    s_publish(c->cat, "commerce", "long", meta.data, NULL);
    dm_search_t *s = NULL;
    cr_assert_eq(dm_search_build(c->cat, &s, NULL), DM_OK);
    s_hits_t x = {0};
    s_run(s, "long", &x);
    cr_assert_eq(x.n, 1);
    /* "x" and 99 two-byte characters: the 100th would cross the cap. */
    cr_assert_eq(x.desc_len, 1 + 2 * ((DM_SEARCH_DESCRIPTION_MAX - 1) / 2));
    s_hits_free(&x);
    dm_buf_free(&meta);
    dm_search_destroy(&s);
}
