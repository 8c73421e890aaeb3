/*
 * param_block.c — the graph's contiguous parameter blocks, one per dtype.
 *
 * A block is one allocation holding the values of parameters back to back,
 * in the block's layout order, with no gaps; each parameter's tensor borrows
 * its slice. Packing builds the new layout in a fresh allocation, copies every
 * value over, re-points the tensors and frees the old block, so a failure
 * leaves everything as it was. Parameters created after a packing keep their
 * own memory until the next one.
 *
 * Each block is a mirror (mirror.h) with one segment per parameter: a
 * program on a device reads the device copy, and only the parameters
 * changed on one side cross. Packing brings the block home first.
 */
#include <string.h>

#include "graph/mirror.h"

typedef struct param_block {
    void *data;     /* owned */
    int32_t *nodes; /* parameter node ids in layout order */
    int n;
    lg_mirror mirror; /* over data, a segment per parameter */
} param_block;

struct lg_param_store {
    param_block block[LG_DTYPE_COUNT];
};

void lg_param_store_free(struct lg_param_store *s)
{
    if (!s) return;
    for (int d = 0; d < LG_DTYPE_COUNT; d++) {
        lg_mirror_release(&s->block[d].mirror);
        free(s->block[d].data), free(s->block[d].nodes);
    }
    free(s);
}

static lg_tensor *tensor_of(const lg_graph *g, int32_t node) { return g->nodes[node].attrs.tensor; }

/* Where nodes[0..n) start in b's layout if they are a run of it, else -1. */
static int run_start(const param_block *b, const int32_t *nodes, int n)
{
    int pos = 0;
    while (pos < b->n && b->nodes[pos] != nodes[0]) pos++;
    if (pos + n > b->n) return -1;
    for (int i = 1; i < n; i++)
        if (b->nodes[pos + i] != nodes[i]) return -1;
    return pos;
}

void *lg_param_block_run(const lg_graph *g, const int32_t *nodes, int n)
{
    if (!g->param_store) return NULL;
    const param_block *b = &g->param_store->block[g->nodes[nodes[0]].out[0].dtype];
    return run_start(b, nodes, n) < 0 ? NULL : lg_tensor_data(tensor_of(g, nodes[0]));
}

enum { IN_BLOCK = 1, IN_RUN = 2 };

/* The new layout: the old one with the run's members taken out, then the
 * dtype's parameters not yet in the block (creation order), then the run;
 * or, when the run is in place already, the old layout plus the newcomers.
 * mark has a zeroed byte per node. */
static int new_layout(const lg_graph *g, const param_block *b, lg_dtype dtype, const int32_t *nodes, int n,
                      unsigned char *mark, int32_t *order)
{
    bool in_place = run_start(b, nodes, n) >= 0;
    for (int i = 0; i < b->n; i++) mark[b->nodes[i]] |= IN_BLOCK;
    for (int i = 0; i < n; i++) mark[nodes[i]] |= IN_RUN;
    int k = 0;
    for (int i = 0; i < b->n; i++)
        if (in_place || !(mark[b->nodes[i]] & IN_RUN)) order[k++] = b->nodes[i];
    for (int i = 0; i < g->n_params; i++) {
        int32_t p = g->params[i];
        if (g->nodes[p].out[0].dtype == dtype && !(mark[p] & IN_BLOCK) && (in_place || !(mark[p] & IN_RUN)))
            order[k++] = p;
    }
    if (!in_place)
        for (int i = 0; i < n; i++) order[k++] = nodes[i];
    return k;
}

lg_status lg_param_block_pack(lg_graph *g, const int32_t *nodes, int n)
{
    if (!g->param_store && !(g->param_store = calloc(1, sizeof *g->param_store)))
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "packing parameters: out of memory");
    lg_dtype dtype = g->nodes[nodes[0]].out[0].dtype;
    param_block *b = &g->param_store->block[dtype];
    unsigned char *mark = calloc((size_t)g->n_nodes, 1);
    int32_t *order = malloc((size_t)g->n_params * sizeof *order);
    if (!mark || !order) {
        free(mark), free(order);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "packing parameters: out of memory");
    }
    int k = new_layout(g, b, dtype, nodes, n, mark, order);
    free(mark);
    if (k == b->n && memcmp(order, b->nodes, (size_t)k * sizeof *order) == 0) {
        free(order);
        return LG_OK;
    }
    size_t *offs = malloc((size_t)(k + 1) * sizeof *offs);
    lg_status st = offs ? lg_mirror_to_host(&b->mirror) : LG_OK; /* the values to copy are the newest */
    if (!offs || st) {
        free(order), free(offs);
        return st ? st : lg_fail(LG_ERR_OUT_OF_MEMORY, "packing parameters: out of memory");
    }
    offs[0] = 0;
    for (int i = 0; i < k; i++) offs[i + 1] = offs[i] + lg_tensor_bytes(tensor_of(g, order[i]));
    size_t bytes = offs[k];
    unsigned char *data = malloc(bytes ? bytes : 1);
    lg_mirror mirror;
    if (!data || !lg_mirror_init(&mirror, data, offs, k)) {
        free(order), free(offs), free(data);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "packing parameters: out of memory for %zu bytes of %s", bytes,
                       lg_dtype_name(dtype));
    }
    free(offs);
    lg_mirror_release(&b->mirror);
    b->mirror = mirror;
    size_t off = 0;
    for (int i = 0; i < k; i++) {
        lg_tensor *t = tensor_of(g, order[i]);
        memcpy(data + off, lg_tensor_data(t), lg_tensor_bytes(t));
        lg_tensor_borrow(t, data + off);
        lg_tensor_set_mirror(t, &b->mirror);
        off += lg_tensor_bytes(t);
    }
    free(b->data), free(b->nodes);
    b->data = data, b->nodes = order, b->n = k;
    return LG_OK;
}

lg_status lg_param_block_pack_all(lg_graph *g)
{
    for (int d = 0; d < LG_DTYPE_COUNT; d++) {
        int n = 0, loose = 0;
        for (int i = 0; i < g->n_params; i++)
            if (g->nodes[g->params[i]].out[0].dtype == (lg_dtype)d) {
                n++;
                loose += !lg_tensor_mirror(tensor_of(g, g->params[i]));
            }
        if (!loose) continue;
        /* the block's own layout as the run keeps it in place; the newcomers follow */
        const param_block *b = g->param_store ? &g->param_store->block[d] : NULL;
        int32_t *nodes = malloc((size_t)n * sizeof *nodes);
        if (!nodes) return lg_fail(LG_ERR_OUT_OF_MEMORY, "packing parameters: out of memory");
        int k = 0;
        if (b && b->n) memcpy(nodes, b->nodes, (size_t)(k = b->n) * sizeof *nodes);
        else
            for (int i = 0; i < g->n_params; i++)
                if (g->nodes[g->params[i]].out[0].dtype == (lg_dtype)d) nodes[k++] = g->params[i];
        lg_status st = lg_param_block_pack(g, nodes, k);
        free(nodes);
        if (st) return st;
    }
    return LG_OK;
}

lg_status lg_param_blocks_to_host(lg_graph *g)
{
    for (int d = 0; g && g->param_store && d < LG_DTYPE_COUNT; d++) {
        lg_status st = lg_mirror_to_host(&g->param_store->block[d].mirror);
        if (st) return st;
    }
    return LG_OK;
}
