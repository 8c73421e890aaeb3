/*
 * program_cache.c — lg_graph_run(): one compiled program per (fetches, feed
 * shapes, device) kept on the graph, so a new batch size compiles once and a repeat
 * finds its program.
 */
#include <string.h>

#include "graph/internal.h"

typedef struct cache_entry {
    lg_ref *fetches;
    int n_fetches;
    lg_ref *feed_nodes; /* (node, 0) of each fed input, sorted by node */
    lg_shape *feed_shapes;
    int n_feeds;
    char *device; /* NULL: the CPU */
    lg_program *program;
    struct cache_entry *next;
} cache_entry;

struct lg_program_cache {
    cache_entry *head;
    int count;
};

static void entry_free(cache_entry *e)
{
    if (!e) return;
    free(e->fetches), free(e->feed_nodes), free(e->feed_shapes), free(e->device);
    lg_program_free(e->program);
    free(e);
}

void lg_program_cache_free(struct lg_program_cache *c)
{
    if (!c) return;
    for (cache_entry *e = c->head, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    free(c);
}

int lg_graph_program_count(const lg_graph *g) { return g && g->cache ? g->cache->count : 0; }

/* The feeds' (node, shape) in node order: the cache key's feed half. */
static void feed_key(const lg_feed *feeds, int n, lg_ref *nodes, lg_shape *shapes)
{
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && nodes[j - 1].node > feeds[i].input.node) {
            nodes[j] = nodes[j - 1];
            shapes[j] = shapes[j - 1];
            j--;
        }
        nodes[j] = (lg_ref){feeds[i].input.node, 0};
        shapes[j] = lg_tensor_shape(feeds[i].tensor);
    }
}

static bool entry_matches(const cache_entry *e, const char *device, const lg_value *fetches, int n_fetches,
                          const lg_ref *nodes, const lg_shape *shapes, int n_feeds)
{
    if (e->n_fetches != n_fetches || e->n_feeds != n_feeds) return false;
    if (!e->device != !device || (device && strcmp(e->device, device))) return false;
    for (int i = 0; i < n_fetches; i++)
        if (e->fetches[i].node != fetches[i].node || e->fetches[i].out != fetches[i].output) return false;
    for (int i = 0; i < n_feeds; i++)
        if (e->feed_nodes[i].node != nodes[i].node || !lg_shape_equal(e->feed_shapes[i], shapes[i])) return false;
    return true;
}

lg_status lg_graph_program_on(lg_graph *g, const char *device, const lg_feed *feeds, int n_feeds,
                              const lg_value *fetches, int n_fetches, lg_program **out)
{
    if (device && (!device[0] || !strcmp(device, "cpu"))) device = NULL;
    *out = NULL;
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "run: graph is NULL");
    if (g->error) return lg_fail(LG_ERR_GRAPH, "the graph has a builder error: %s", g->error);
    if (n_feeds < 0 || (n_feeds > 0 && !feeds)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "feeds: NULL or negative count");
    if (n_fetches < 1 || !fetches) return lg_fail(LG_ERR_INVALID_ARGUMENT, "fetches: at least one value is needed");
    for (int i = 0; i < n_feeds; i++)
        if (!feeds[i].tensor || feeds[i].input.graph != g)
            return lg_fail(LG_ERR_FEED, "feed %d: %s", i, feeds[i].tensor ? "not a value of this graph" : "tensor is NULL");
    for (int i = 0; i < n_fetches; i++)
        if (fetches[i].graph != g)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "fetch %d: %s", i,
                           fetches[i].graph ? "a value of another graph" : "an invalid value");
    lg_ref nodes[n_feeds ? n_feeds : 1];
    lg_shape shapes[n_feeds ? n_feeds : 1];
    feed_key(feeds, n_feeds, nodes, shapes);
    if (g->cache)
        for (cache_entry *e = g->cache->head; e; e = e->next)
            if (entry_matches(e, device, fetches, n_fetches, nodes, shapes, n_feeds)) {
                *out = e->program;
                return LG_OK;
            }

    lg_program *p = NULL;
    lg_compile_opts opts = lg_compile_opts_default();
    opts.device = device;
    lg_status st = lg_program_compile_opts(g, feeds, n_feeds, fetches, n_fetches, opts, &p);
    if (st) return st;
    if (!g->cache) g->cache = calloc(1, sizeof *g->cache);
    cache_entry *e = calloc(1, sizeof *e);
    if (e) {
        e->fetches = malloc((size_t)n_fetches * sizeof *e->fetches);
        e->feed_nodes = malloc((size_t)(n_feeds ? n_feeds : 1) * sizeof *e->feed_nodes);
        e->feed_shapes = malloc((size_t)(n_feeds ? n_feeds : 1) * sizeof *e->feed_shapes);
        e->device = device ? strdup(device) : NULL;
    }
    if (!g->cache || !e || !e->fetches || !e->feed_nodes || !e->feed_shapes || (device && !e->device)) {
        entry_free(e);
        lg_program_free(p);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    }
    for (int i = 0; i < n_fetches; i++) e->fetches[i] = (lg_ref){fetches[i].node, fetches[i].output};
    memcpy(e->feed_nodes, nodes, (size_t)n_feeds * sizeof *nodes);
    memcpy(e->feed_shapes, shapes, (size_t)n_feeds * sizeof *shapes);
    e->n_fetches = n_fetches;
    e->n_feeds = n_feeds;
    e->program = p;
    e->next = g->cache->head;
    g->cache->head = e;
    g->cache->count++;
    *out = p;
    return LG_OK;
}

lg_status lg_graph_run(lg_graph *g, const lg_feed *feeds, int n_feeds, const lg_value *fetches, int n_fetches,
                       lg_tensor **out)
{
    return lg_graph_run_on(g, NULL, feeds, n_feeds, fetches, n_fetches, out);
}

lg_status lg_graph_run_on(lg_graph *g, const char *device, const lg_feed *feeds, int n_feeds, const lg_value *fetches,
                          int n_fetches, lg_tensor **out)
{
    lg_program *p;
    lg_status st = lg_graph_program_on(g, device, feeds, n_feeds, fetches, n_fetches, &p);
    return st ? st : lg_program_run(p, feeds, n_feeds, out);
}
