/*
 * cuda_graph.c — capturing the work queued on a context's stream as a CUDA
 * Graph and launching it again (cuda.h, backend.h's capture hooks).
 *
 * A graph's kernels carry, as arguments fixed at capture, the error sites
 * lg_cuda_site gave them: indices into the context's site list from
 * `base` on, where base is the list's length when the capture began. The
 * graph keeps those nodes, and each launch puts them back at the same
 * indices (after a sync if unsynced work still holds indices from base on),
 * so lg_cuda_sync names the node of a replayed kernel that found a bad
 * index.
 */
#include <string.h>

#include "backends/cuda/cuda.h"

struct lg_cuda_graph {
    cudaGraphExec_t exec;
    const lg_node **sites; /* the captured kernels' sites, from index base on */
    int base, n_sites;
};

lg_status lg_cuda_capture_begin(lg_cuda_ctx *c)
{
    if (!c->stream || c->stream == cudaStreamLegacy || c->stream == cudaStreamPerThread)
        return lg_fail(LG_ERR_UNSUPPORTED, "cuda:%d: capture needs a stream of its own, not a default stream", c->device);
    c->capture_sites = c->n_sites;
    char what[48];
    snprintf(what, sizeof what, "capturing on cuda:%d", c->device);
    return lg_cuda_status(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture",
                          what);
}

lg_status lg_cuda_capture_end(lg_cuda_ctx *c, bool keep, lg_cuda_graph **out, size_t *n_nodes)
{
    *out = NULL;
    *n_nodes = 0;
    char what[48];
    snprintf(what, sizeof what, "capture on cuda:%d", c->device);
    cudaGraph_t graph = NULL;
    cudaError_t ended = cudaStreamEndCapture(c->stream, &graph);
    lg_status st = keep ? lg_cuda_status(ended, "cudaStreamEndCapture", what) : LG_OK; /* discarded: no message */
    int base = c->capture_sites, n = c->n_sites - base;
    c->n_sites = base; /* the captured kernels' sites live in the graph; nothing ran yet */
    lg_cuda_graph *g = NULL;
    if (!st && keep) st = lg_cuda_status(cudaGraphGetNodes(graph, NULL, n_nodes), "cudaGraphGetNodes", what);
    if (!st && keep) {
        g = calloc(1, sizeof *g);
        if (g) g->sites = malloc((size_t)(n > 0 ? n : 1) * sizeof *g->sites);
        if (!g || !g->sites) st = lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of host memory", what);
    }
    if (!st && keep) st = lg_cuda_status(cudaGraphInstantiate(&g->exec, graph, 0), "cudaGraphInstantiate", what);
    if (graph) cudaGraphDestroy(graph); /* an instantiated graph does not need it */
    if (st || !keep) {
        cudaGetLastError(); /* a failed capture is not the next launch's error */
        if (g) free(g->sites);
        free(g);
        *n_nodes = 0;
        return st;
    }
    if (n > 0) memcpy(g->sites, c->sites + base, (size_t)n * sizeof *g->sites);
    g->base = base, g->n_sites = n;
    *out = g;
    return LG_OK;
}

/* g's error sites back at the indices its kernels record under. */
static lg_status put_sites(lg_cuda_ctx *c, const lg_cuda_graph *g)
{
    if (c->n_sites > g->base) { /* unsynced kernels hold indices the graph's use */
        lg_status st = lg_cuda_sync(c);
        if (st) return st;
    }
    int need = g->base + g->n_sites;
    if (need > c->cap_sites) {
        const lg_node **s = realloc(c->sites, (size_t)need * sizeof *s);
        if (!s) return lg_fail(LG_ERR_OUT_OF_MEMORY, "cuda:%d: out of host memory for a graph's error sites", c->device);
        c->sites = s, c->cap_sites = need;
    }
    for (int i = c->n_sites; i < g->base; i++) c->sites[i] = NULL; /* no kernel in flight records these */
    memcpy(c->sites + g->base, g->sites, (size_t)g->n_sites * sizeof *g->sites);
    c->n_sites = need;
    return LG_OK;
}

lg_status lg_cuda_graph_launch(lg_cuda_ctx *c, lg_cuda_graph *g)
{
    lg_status st = g->n_sites > 0 ? put_sites(c, g) : LG_OK;
    if (st) return st;
    char what[32];
    snprintf(what, sizeof what, "cuda:%d", c->device);
    return lg_cuda_status(cudaGraphLaunch(g->exec, c->stream), "cudaGraphLaunch", what);
}

void lg_cuda_graph_free(lg_cuda_graph *g)
{
    if (!g) return;
    cudaGraphExecDestroy(g->exec);
    free(g->sites);
    free(g);
}
