/*
 * cpu_rnn_onednn.c — the fused recurrent op pair (src/ops/rnn.h) on oneDNN's
 * RNN primitives, f32 without a mask: LSTM (oneDNN's gate order i, f, c~, o
 * is Keras's), GRU reset_after (oneDNN's linear-before-reset GRU), GRU
 * reset_before (oneDNN's GRU; its u, r, o are Keras's z, r, h) and SimpleRNN
 * (vanilla RNN, tanh or relu with slope 0), left to right or, with
 * LG_RNN_REVERSE, right to left (ys[t] stays at t in both). cpu_rnn_select.c
 * decides which problems come here.
 *
 * Layouts: oneDNN's ldigo weights [1, 1, I, G, H] are the bytes of Keras's
 * W [I, G H] (and of U), x [T, B, I] and ys are tnc, the states [B, H] ldnc
 * with one layer and one direction. The bias [G, H] is the same bytes too,
 * except for the reset_after GRU, whose oneDNN bias is [4, H]: the z and r
 * input and recurrent biases summed, then the h input bias, then the h
 * recurrent one; db goes back by copying the z and r gradients into both of
 * Keras's rows. Without LG_RNN_BIAS the primitives get a zero bias.
 *
 * Buffers: a forward-only node (LG_RNN_FORWARD_ONLY) runs oneDNN's
 * inference forward, with no workspace and the bias in its cache entry;
 * otherwise the forward trains (forward_training). Its workspace is the head
 * of the op's ws output; the bias in oneDNN's layout follows, then copies of
 * ys, h_T and c_T: the backward reads them (oneDNN's forward writes the
 * outputs straight to dst_layer and dst_iter, not into its workspace), and
 * rnn_grad's inputs have neither them nor b. rnn_grad's scratch
 * holds the backward's scratchpad (shared with the weight reorders, which
 * run before it), W and U reordered into the layout the backward chose, and
 * db in oneDNN's layout. oneDNN accumulates the weight gradients, so they
 * are zeroed first.
 *
 * Caching: creating the primitives costs milliseconds (descriptors, JIT), so
 * they are kept per problem (cell, direction, T, B, I, H) with their memory
 * objects and the forward's scratchpad, in a process-wide cache. A call
 * takes an entry for itself and gives it back, so two threads with the same
 * problem at once get one each; at most CACHE_IDLE idle entries stay, the
 * least recently used leave first.
 *
 * Threads: Debian's oneDNN threads with OpenMP and uses omp_get_max_threads()
 * of the calling thread. A call sets that for itself (and puts the caller's
 * back, as gemm_onednn.c does) to what gemm.c gives the step's recurrent
 * product, [B, H] x [H, G H], from its budget: one thread below
 * LG_GEMM_SMALL_FLOPS, the budget above. The primitives are created under
 * the same setting: created for two threads and run on one, an LSTM(64)
 * training step took 3x the CPU time. Every scratchpad is the caller's
 * (user mode), so primitives run by several threads never share one.
 */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "backends/cpu/cpu_rnn_select.h"
#include "backends/cpu/gemm.h"
#include "graph/cpu.h"

enum { CACHE_IDLE = 8, ALIGN = 64 };

/* The memory objects of one problem: created once, pointed at each call's
 * buffers (dnnl_memory_set_data_handle). */
enum {
    M_SRC, M_H0, M_C0, M_W, M_U, M_BIAS, M_DST, M_HT, M_CT, M_WS, M_FSCRATCH,          /* forward */
    M_WB, M_UB, M_DDST, M_DHT, M_DCT, M_DSRC, M_DH0, M_DC0, M_DW, M_DU, M_DBIAS, M_BSCRATCH, /* backward */
    M_COUNT
};

typedef struct rnn_key {
    lg_rnn_cell cell;
    bool reverse, infer; /* infer: forward only (no backward primitives, no workspace) */
    int64_t T, B, I, H;
} rnn_key;

typedef struct entry {
    rnn_key key;
    struct entry *next;
    dnnl_stream_t stream;
    dnnl_primitive_desc_t fwd_pd, bwd_pd;
    dnnl_primitive_t fwd, bwd, reorder_w, reorder_u; /* reorders NULL where the layouts are the same */
    dnnl_memory_t mem[M_COUNT];
    void *fscratch;                              /* the forward's scratchpad */
    float *ibias;                                /* the bias in oneDNN's layout, inference only */
    size_t bias_off, ys_off, ht_off, ct_off, ws_end; /* in the op's ws, after oneDNN's workspace */
    size_t wb_off, ub_off, dbias_off, bwd_bytes; /* in rnn_grad's scratch */
} entry;

static struct {
    pthread_once_t once;
    dnnl_status_t engine_status;
    dnnl_engine_t engine;
    pthread_mutex_t lock;
    entry *idle; /* most recently used first */
} cache = {.once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER};

static void engine_create(void) { cache.engine_status = dnnl_engine_create(&cache.engine, dnnl_cpu, 0); }

static size_t align_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static int64_t gates(const rnn_key *k) { return lg_rnn_cell_gates(k->cell); }
/* oneDNN's bias rows: G, or 4 for the linear-before-reset GRU. */
static int64_t bias_rows(const rnn_key *k) { return k->cell == LG_RNN_GRU ? 4 : gates(k); }

static lg_status dnnl_failed(const char *what, dnnl_status_t s)
{
    return lg_fail(s == dnnl_out_of_memory ? LG_ERR_OUT_OF_MEMORY : LG_ERR_RUNTIME, "oneDNN RNN: %s failed (dnnl status %d)",
                   what, (int)s);
}

#define DNNL_TRY(call, what)                                  \
    do {                                                      \
        dnnl_status_t s_ = (call);                            \
        if (s_ != dnnl_success) return dnnl_failed(what, s_); \
    } while (0)

static void entry_free(entry *e)
{
    if (!e) return;
    dnnl_primitive_t prims[] = {e->fwd, e->bwd, e->reorder_w, e->reorder_u};
    for (size_t i = 0; i < LG_ARRAY_LEN(prims); i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
    if (e->fwd_pd) dnnl_primitive_desc_destroy(e->fwd_pd);
    if (e->bwd_pd) dnnl_primitive_desc_destroy(e->bwd_pd);
    for (int k = 0; k < M_COUNT; k++)
        if (e->mem[k]) dnnl_memory_destroy(e->mem[k]);
    if (e->stream) dnnl_stream_destroy(e->stream);
    free(e->fscratch);
    free(e->ibias);
    free(e);
}

typedef struct rnn_mds {
    dnnl_memory_desc_t src, dst, iter, w, u, w_any, u_any, bias;
} rnn_mds;

static dnnl_status_t mds_init(const rnn_key *k, rnn_mds *m)
{
    dnnl_dims_t src = {k->T, k->B, k->I}, dst = {k->T, k->B, k->H}, iter = {1, 1, k->B, k->H};
    dnnl_dims_t w = {1, 1, k->I, gates(k), k->H}, u = {1, 1, k->H, gates(k), k->H};
    dnnl_dims_t bias = {1, 1, bias_rows(k), k->H};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&m->src, 3, src, dnnl_f32, dnnl_tnc);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->dst, 3, dst, dnnl_f32, dnnl_tnc);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->iter, 4, iter, dnnl_f32, dnnl_ldnc);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->w, 5, w, dnnl_f32, dnnl_ldigo);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->u, 5, u, dnnl_f32, dnnl_ldigo);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->w_any, 5, w, dnnl_f32, dnnl_format_tag_any);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->u_any, 5, u, dnnl_f32, dnnl_format_tag_any);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->bias, 4, bias, dnnl_f32, dnnl_ldgo);
    return s;
}

/* The forward takes the plain weights; the backward chooses its own layout
 * (any) and gets plain gradients. */
static dnnl_status_t desc_init(const rnn_key *k, const rnn_mds *m, bool backward, dnnl_rnn_desc_t *d)
{
    dnnl_rnn_direction_t dir = k->reverse ? dnnl_unidirectional_right2left : dnnl_unidirectional_left2right;
    const dnnl_memory_desc_t *ci = k->cell == LG_RNN_LSTM ? &m->iter : NULL, *w = backward ? &m->w_any : &m->w,
                             *u = backward ? &m->u_any : &m->u;
    dnnl_alg_kind_t act = k->cell == LG_RNN_SIMPLE_RELU ? dnnl_eltwise_relu : dnnl_eltwise_tanh;
    if (!backward) {
        dnnl_prop_kind_t prop = k->infer ? dnnl_forward_inference : dnnl_forward_training;
        switch (k->cell) {
        case LG_RNN_LSTM:
            return dnnl_lstm_forward_desc_init(d, prop, dir, &m->src, &m->iter, ci, w, u, &m->bias, &m->dst, &m->iter,
                                               ci, 0);
        case LG_RNN_GRU:
            return dnnl_lbr_gru_forward_desc_init(d, prop, dir, &m->src, &m->iter, w, u, &m->bias, &m->dst, &m->iter, 0);
        case LG_RNN_GRU_RESET_BEFORE:
            return dnnl_gru_forward_desc_init(d, prop, dir, &m->src, &m->iter, w, u, &m->bias, &m->dst, &m->iter, 0);
        default:
            return dnnl_vanilla_rnn_forward_desc_init(d, prop, act, dir, &m->src, &m->iter, w, u, &m->bias, &m->dst,
                                                      &m->iter, 0, 0, 0);
        }
    }
    dnnl_prop_kind_t prop = dnnl_backward;
    switch (k->cell) {
    case LG_RNN_LSTM:
        return dnnl_lstm_backward_desc_init(d, prop, dir, &m->src, &m->iter, ci, w, u, &m->bias, &m->dst, &m->iter, ci,
                                            &m->src, &m->iter, ci, &m->w, &m->u, &m->bias, &m->dst, &m->iter, ci, 0);
    case LG_RNN_GRU:
        return dnnl_lbr_gru_backward_desc_init(d, prop, dir, &m->src, &m->iter, w, u, &m->bias, &m->dst, &m->iter,
                                               &m->src, &m->iter, &m->w, &m->u, &m->bias, &m->dst, &m->iter, 0);
    case LG_RNN_GRU_RESET_BEFORE:
        return dnnl_gru_backward_desc_init(d, prop, dir, &m->src, &m->iter, w, u, &m->bias, &m->dst, &m->iter, &m->src,
                                           &m->iter, &m->w, &m->u, &m->bias, &m->dst, &m->iter, 0);
    default:
        return dnnl_vanilla_rnn_backward_desc_init(d, prop, act, dir, &m->src, &m->iter, w, u, &m->bias, &m->dst,
                                                   &m->iter, &m->src, &m->iter, &m->w, &m->u, &m->bias, &m->dst,
                                                   &m->iter, 0, 0, 0);
    }
}

static size_t md_bytes(const dnnl_memory_desc_t *md) { return md ? dnnl_memory_desc_get_size(md) : 0; }

static const dnnl_memory_desc_t *query(dnnl_primitive_desc_t pd, dnnl_query_t what, int index)
{
    return dnnl_primitive_desc_query_md(pd, what, index);
}

/* A reorder from the plain weights (from) into the backward's layout (to),
 * with a user scratchpad; *r stays NULL where the layouts are the same.
 * *scratch: the largest scratchpad so far. */
static lg_status reorder_new(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_attr_t attr,
                             dnnl_primitive_t *r, size_t *scratch)
{
    if (dnnl_memory_desc_equal(from, to)) return LG_OK;
    dnnl_primitive_desc_t pd;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, from, cache.engine, to, cache.engine, attr), "reorder descriptor");
    size_t s = md_bytes(query(pd, dnnl_query_scratchpad_md, 0));
    if (s > *scratch) *scratch = s;
    dnnl_status_t st = dnnl_primitive_create(r, pd);
    dnnl_primitive_desc_destroy(pd);
    DNNL_TRY(st, "reorder primitive");
    return LG_OK;
}

static lg_status mems_create(entry *e, const rnn_mds *m)
{
    const dnnl_memory_desc_t *mds[M_COUNT] = {
        [M_SRC] = &m->src,   [M_H0] = &m->iter,  [M_C0] = &m->iter,   [M_W] = &m->w,      [M_U] = &m->u,
        [M_BIAS] = &m->bias, [M_DST] = &m->dst,  [M_HT] = &m->iter,   [M_CT] = &m->iter,  [M_DDST] = &m->dst,
        [M_DHT] = &m->iter,  [M_DCT] = &m->iter, [M_DSRC] = &m->src,  [M_DH0] = &m->iter, [M_DC0] = &m->iter,
        [M_DW] = &m->w,      [M_DU] = &m->u,     [M_DBIAS] = &m->bias,
        [M_WS] = query(e->fwd_pd, dnnl_query_workspace_md, 0),
        [M_FSCRATCH] = query(e->fwd_pd, dnnl_query_scratchpad_md, 0),
        [M_WB] = query(e->bwd_pd, dnnl_query_weights_md, 0),
        [M_UB] = query(e->bwd_pd, dnnl_query_weights_md, 1),
        [M_BSCRATCH] = query(e->bwd_pd, dnnl_query_scratchpad_md, 0),
    };
    for (int k = 0; k < M_COUNT; k++) {
        if (!mds[k] && e->key.infer && (k == M_WS || k > M_FSCRATCH)) continue; /* training-only memory */
        if (!mds[k]) return lg_fail(LG_ERR_RUNTIME, "oneDNN RNN: no memory descriptor %d", k);
        DNNL_TRY(dnnl_memory_create(&e->mem[k], mds[k], cache.engine, DNNL_MEMORY_NONE), "memory object");
    }
    return LG_OK;
}

/* The forward primitive, the memory objects and the forward's scratchpad. */
static lg_status forward_init(entry *e, const rnn_mds *m)
{
    DNNL_TRY(dnnl_primitive_create(&e->fwd, e->fwd_pd), "forward primitive");
    lg_status st = mems_create(e, m);
    if (st) return st;
    size_t fscratch = md_bytes(query(e->fwd_pd, dnnl_query_scratchpad_md, 0));
    if (fscratch && !(e->fscratch = aligned_alloc(ALIGN, align_up(fscratch))))
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "oneDNN RNN: out of memory for a %zu-byte scratchpad", fscratch);
    return LG_OK;
}

/* An inference entry: the forward and a bias buffer of its own. */
static lg_status infer_init(entry *e, const rnn_mds *m)
{
    lg_status st = forward_init(e, m);
    if (st) return st;
    if (!(e->ibias = aligned_alloc(ALIGN, align_up((size_t)(bias_rows(&e->key) * e->key.H) * sizeof(float)))))
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "oneDNN RNN: out of memory for a bias");
    return LG_OK;
}

static lg_status entry_init(entry *e)
{
    const rnn_key *k = &e->key;
    rnn_mds m;
    dnnl_rnn_desc_t fd, bd;
    dnnl_primitive_attr_t attr;
    DNNL_TRY(mds_init(k, &m), "memory descriptors");
    DNNL_TRY(dnnl_stream_create(&e->stream, cache.engine, dnnl_stream_default_flags), "stream");
    DNNL_TRY(dnnl_primitive_attr_create(&attr), "attributes");
    dnnl_status_t s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (!s) s = desc_init(k, &m, false, &fd);
    if (!s) s = dnnl_primitive_desc_create(&e->fwd_pd, &fd, attr, cache.engine, NULL);
    if (!s && !k->infer) s = desc_init(k, &m, true, &bd);
    if (!s && !k->infer) s = dnnl_primitive_desc_create(&e->bwd_pd, &bd, attr, cache.engine, e->fwd_pd);
    if (s) {
        dnnl_primitive_attr_destroy(attr);
        return s == dnnl_unimplemented || s == dnnl_invalid_arguments
                   ? lg_fail(LG_ERR_UNSUPPORTED, "oneDNN RNN: no primitive for %s T %lld B %lld I %lld H %lld",
                             lg_rnn_cell_name(k->cell), (long long)k->T, (long long)k->B, (long long)k->I,
                             (long long)k->H)
                   : dnnl_failed("primitive descriptor", s);
    }
    if (k->infer) {
        dnnl_primitive_attr_destroy(attr);
        return infer_init(e, &m);
    }
    size_t bscratch = md_bytes(query(e->bwd_pd, dnnl_query_scratchpad_md, 0));
    lg_status st = reorder_new(&m.w, query(e->bwd_pd, dnnl_query_weights_md, 0), attr, &e->reorder_w, &bscratch);
    if (!st) st = reorder_new(&m.u, query(e->bwd_pd, dnnl_query_weights_md, 1), attr, &e->reorder_u, &bscratch);
    dnnl_primitive_attr_destroy(attr);
    if (st) return st;
    if ((st = forward_init(e, &m))) return st;
    DNNL_TRY(dnnl_primitive_create(&e->bwd, e->bwd_pd), "backward primitive");
    size_t state = (size_t)(k->B * k->H) * sizeof(float);
    e->bias_off = align_up(md_bytes(query(e->fwd_pd, dnnl_query_workspace_md, 0)));
    e->ys_off = e->bias_off + align_up((size_t)(bias_rows(k) * k->H) * sizeof(float));
    e->ht_off = e->ys_off + align_up((size_t)k->T * state);
    e->ct_off = e->ht_off + align_up(state);
    e->ws_end = e->ct_off + (k->cell == LG_RNN_LSTM ? state : 0);
    e->wb_off = align_up(bscratch);
    e->ub_off = e->wb_off + align_up(e->reorder_w ? md_bytes(query(e->bwd_pd, dnnl_query_weights_md, 0)) : 0);
    e->dbias_off = e->ub_off + align_up(e->reorder_u ? md_bytes(query(e->bwd_pd, dnnl_query_weights_md, 1)) : 0);
    e->bwd_bytes = e->dbias_off + (size_t)(bias_rows(k) * k->H) * sizeof(float);
    return LG_OK;
}

static bool key_eq(const rnn_key *a, const rnn_key *b)
{
    return a->cell == b->cell && a->reverse == b->reverse && a->infer == b->infer && a->T == b->T && a->B == b->B && a->I == b->I &&
           a->H == b->H;
}

/* The thread count for one call (see the top of the file), set on this
 * thread; returns the caller's. */
static int threads_set(const rnn_key *k)
{
    lg_cpu_gemm_info info;
    int budget = lg_cpu_gemm_info_get(&info) == LG_OK ? info.threads : 1;
    int caller = omp_get_max_threads(), want = lg_gemm_threads_for(k->B, gates(k) * k->H, k->H, budget);
    if (want != caller) omp_set_num_threads(want);
    return caller;
}

static void threads_restore(int caller)
{
    if (omp_get_max_threads() != caller) omp_set_num_threads(caller);
}

/* An entry for k, the caller's until entry_give. */
static lg_status entry_take(const rnn_key *k, entry **out)
{
    pthread_once(&cache.once, engine_create);
    if (cache.engine_status != dnnl_success) return dnnl_failed("engine", cache.engine_status);
    pthread_mutex_lock(&cache.lock);
    for (entry **p = &cache.idle; *p; p = &(*p)->next)
        if (key_eq(&(*p)->key, k)) {
            *out = *p;
            *p = (*p)->next;
            pthread_mutex_unlock(&cache.lock);
            return LG_OK;
        }
    pthread_mutex_unlock(&cache.lock);
    entry *e = calloc(1, sizeof *e);
    if (!e) return lg_fail(LG_ERR_OUT_OF_MEMORY, "oneDNN RNN: out of memory");
    e->key = *k;
    int caller = threads_set(k); /* the primitives are planned for the threads they will run on */
    lg_status st = entry_init(e);
    threads_restore(caller);
    if (st) {
        entry_free(e);
        return st;
    }
    *out = e;
    return LG_OK;
}

static void entry_give(entry *e)
{
    entry *drop = NULL;
    pthread_mutex_lock(&cache.lock);
    e->next = cache.idle;
    cache.idle = e;
    int n = 0;
    for (entry **p = &cache.idle; *p; p = &(*p)->next)
        if (++n > CACHE_IDLE) {
            drop = *p;
            *p = NULL;
            break;
        }
    pthread_mutex_unlock(&cache.lock);
    while (drop) {
        entry *next = drop->next;
        entry_free(drop);
        drop = next;
    }
}

static bool key_of(const lg_rnn_problem *p, rnn_key *k)
{
    bool reverse = p->flags & LG_RNN_REVERSE, infer = p->flags & LG_RNN_FORWARD_ONLY;
    *k = (rnn_key){p->cell, reverse, infer, p->T, p->B, p->I, p->H};
    return p->dtype == LG_F32 && !(p->flags & LG_RNN_MASK) && (unsigned)p->cell < LG_RNN_CELL_COUNT;
}

/* Elements of f32 for n bytes. */
static int64_t floats(size_t n) { return (int64_t)((n + sizeof(float) - 1) / sizeof(float)); }

lg_status lg_rnn_onednn_sizes(const lg_rnn_problem *p, int64_t *ws_width, int64_t *scratch)
{
    rnn_key k;
    if (!key_of(p, &k))
        return lg_fail(LG_ERR_UNSUPPORTED, "oneDNN RNN: f32 without a mask only (%s%s)", lg_dtype_name(p->dtype),
                       (p->flags & LG_RNN_MASK) ? ", masked" : "");
    entry *e;
    lg_status st = entry_take(&k, &e);
    if (st) return st;
    int64_t rows = k.T * k.B > 0 ? k.T * k.B : 1;
    int64_t ws = floats(e->ws_end);
    *ws_width = k.infer ? 0 : (ws + rows - 1) / rows;
    *scratch = k.infer ? 0 : floats(e->bwd_bytes);
    entry_give(e);
    return LG_OK;
}

/* The node's problem from its buffers (x and U). */
static rnn_key node_key(const lg_node *n, const lg_buf *in, lg_rnn_layout *L)
{
    lg_rnn_cell c = lg_rnn_node_cell(n);
    *L = lg_rnn_layout_of(c, lg_rnn_node_flags(n));
    const lg_shape *x = &in[L->x].shape;
    unsigned flags = lg_rnn_node_flags(n);
    bool reverse = flags & LG_RNN_REVERSE, infer = flags & LG_RNN_FORWARD_ONLY;
    return (rnn_key){c, reverse, infer, x->dims[0], x->dims[1], x->dims[2], in[L->u].shape.dims[0]};
}

static void set(entry *e, int k, const void *p) { dnnl_memory_set_data_handle(e->mem[k], (void *)p); }

/* Runs prim with the arguments (arg, memory index) in list. */
static dnnl_status_t execute(entry *e, dnnl_primitive_t prim, const int (*list)[2], int n)
{
    dnnl_exec_arg_t args[24];
    for (int k = 0; k < n; k++) args[k] = (dnnl_exec_arg_t){list[k][0], e->mem[list[k][1]]};
    dnnl_status_t s = dnnl_primitive_execute(prim, e->stream, n, args);
    return s ? s : dnnl_stream_wait(e->stream);
}

static lg_status fail_node(const lg_node *n, const char *what, dnnl_status_t s)
{
    return lg_fail(s == dnnl_out_of_memory ? LG_ERR_OUT_OF_MEMORY : LG_ERR_RUNTIME,
                   "%s '%s': oneDNN RNN: %s failed (dnnl status %d)", lg_op_name(n->op), n->name ? n->name : "?", what,
                   (int)s);
}

lg_status lg_rnn_onednn_forward(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_rnn_layout L;
    rnn_key k = node_key(n, in, &L);
    entry *e;
    lg_status st = entry_take(&k, &e);
    if (st) return st;
    int64_t H = k.H, GH = gates(&k) * H;
    char *ws = out[L.ws].data;
    float *bias = k.infer ? e->ibias : (float *)(ws + e->bias_off);
    const float *b = L.b >= 0 ? in[L.b].data : NULL;
    if (!b) memset(bias, 0, (size_t)(bias_rows(&k) * H) * sizeof(float));
    else if (k.cell == LG_RNN_GRU) { /* [bz + rz, br + rr, bh, rh] from [2, 3H] */
        for (int64_t j = 0; j < 2 * H; j++) bias[j] = b[j] + b[GH + j];
        memcpy(bias + 2 * H, b + 2 * H, (size_t)H * sizeof(float));
        memcpy(bias + 3 * H, b + GH + 2 * H, (size_t)H * sizeof(float));
    } else {
        memcpy(bias, b, (size_t)GH * sizeof(float));
    }
    bool lstm = k.cell == LG_RNN_LSTM;
    set(e, M_SRC, in[L.x].data), set(e, M_H0, in[L.h0].data), set(e, M_W, in[L.w].data), set(e, M_U, in[L.u].data);
    set(e, M_BIAS, bias), set(e, M_DST, out[L.ys].data), set(e, M_HT, out[L.h_t].data);
    if (!k.infer) set(e, M_WS, ws);
    set(e, M_FSCRATCH, e->fscratch);
    int args[13][2] = {{DNNL_ARG_SRC_LAYER, M_SRC}, {DNNL_ARG_SRC_ITER, M_H0},     {DNNL_ARG_WEIGHTS_LAYER, M_W},
                       {DNNL_ARG_WEIGHTS_ITER, M_U}, {DNNL_ARG_BIAS, M_BIAS},       {DNNL_ARG_DST_LAYER, M_DST},
                       {DNNL_ARG_DST_ITER, M_HT},    {DNNL_ARG_WORKSPACE, M_WS},    {DNNL_ARG_SCRATCHPAD, M_FSCRATCH}};
    int n_args = 9;
    if (k.infer) args[7][1] = M_FSCRATCH, args[7][0] = DNNL_ARG_SCRATCHPAD, n_args = 8; /* no workspace */
    if (lstm) {
        set(e, M_C0, in[L.c0].data), set(e, M_CT, out[L.c_t].data);
        args[n_args][0] = DNNL_ARG_SRC_ITER_C, args[n_args++][1] = M_C0;
        args[n_args][0] = DNNL_ARG_DST_ITER_C, args[n_args++][1] = M_CT;
    }
    int caller = threads_set(&k);
    dnnl_status_t s = execute(e, e->fwd, (const int (*)[2])args, n_args);
    threads_restore(caller);
    size_t state = (size_t)(k.B * H) * sizeof(float);
    if (!s && !k.infer) {
        memcpy(ws + e->ys_off, out[L.ys].data, (size_t)k.T * state);
        memcpy(ws + e->ht_off, out[L.h_t].data, state);
        if (lstm) memcpy(ws + e->ct_off, out[L.c_t].data, state);
    }
    entry_give(e);
    return s ? fail_node(n, "forward", s) : LG_OK;
}

lg_status lg_rnn_onednn_backward(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_rnn_layout L;
    rnn_key k = node_key(n, in, &L);
    entry *e;
    lg_status st = entry_take(&k, &e);
    if (st) return st;
    int64_t H = k.H, GH = gates(&k) * H;
    bool lstm = k.cell == LG_RNN_LSTM;
    char *ws = in[L.g_ws].data, *scratch = out[L.g_scratch].data;
    float *dbias = (float *)(scratch + e->dbias_off);
    float *dW = out[L.g_dw].data, *dU = out[L.g_du].data;
    memset(dW, 0, (size_t)(k.I * GH) * sizeof(float));
    memset(dU, 0, (size_t)(H * GH) * sizeof(float));
    memset(dbias, 0, (size_t)(bias_rows(&k) * H) * sizeof(float));
    set(e, M_SRC, in[L.x].data), set(e, M_H0, in[L.h0].data), set(e, M_W, in[L.w].data), set(e, M_U, in[L.u].data);
    set(e, M_WB, e->reorder_w ? scratch + e->wb_off : in[L.w].data);
    set(e, M_UB, e->reorder_u ? scratch + e->ub_off : in[L.u].data);
    set(e, M_BIAS, ws + e->bias_off), set(e, M_WS, ws), set(e, M_BSCRATCH, scratch);
    set(e, M_DST, ws + e->ys_off), set(e, M_HT, ws + e->ht_off), set(e, M_CT, ws + e->ct_off);
    set(e, M_DDST, in[L.g_dys].data), set(e, M_DHT, in[L.g_dh].data), set(e, M_DSRC, out[L.g_dx].data);
    set(e, M_DH0, out[L.g_dh0].data), set(e, M_DW, dW), set(e, M_DU, dU), set(e, M_DBIAS, dbias);
    int args[24][2] = {
        {DNNL_ARG_SRC_LAYER, M_SRC},        {DNNL_ARG_SRC_ITER, M_H0},          {DNNL_ARG_WEIGHTS_LAYER, M_WB},
        {DNNL_ARG_WEIGHTS_ITER, M_UB},      {DNNL_ARG_BIAS, M_BIAS},            {DNNL_ARG_DST_LAYER, M_DST},
        {DNNL_ARG_DST_ITER, M_HT},          {DNNL_ARG_WORKSPACE, M_WS},         {DNNL_ARG_SCRATCHPAD, M_BSCRATCH},
        {DNNL_ARG_DIFF_DST_LAYER, M_DDST},  {DNNL_ARG_DIFF_DST_ITER, M_DHT},    {DNNL_ARG_DIFF_SRC_LAYER, M_DSRC},
        {DNNL_ARG_DIFF_SRC_ITER, M_DH0},    {DNNL_ARG_DIFF_WEIGHTS_LAYER, M_DW}, {DNNL_ARG_DIFF_WEIGHTS_ITER, M_DU},
        {DNNL_ARG_DIFF_BIAS, M_DBIAS}};
    int n_args = 16;
    if (lstm) {
        set(e, M_C0, in[L.c0].data), set(e, M_DCT, in[L.g_dc].data), set(e, M_DC0, out[L.g_dc0].data);
        args[n_args][0] = DNNL_ARG_SRC_ITER_C, args[n_args++][1] = M_C0;
        args[n_args][0] = DNNL_ARG_DST_ITER_C, args[n_args++][1] = M_CT;
        args[n_args][0] = DNNL_ARG_DIFF_DST_ITER_C, args[n_args++][1] = M_DCT;
        args[n_args][0] = DNNL_ARG_DIFF_SRC_ITER_C, args[n_args++][1] = M_DC0;
    }
    static const int reorder_w[3][2] = {{DNNL_ARG_FROM, M_W}, {DNNL_ARG_TO, M_WB}, {DNNL_ARG_SCRATCHPAD, M_BSCRATCH}};
    static const int reorder_u[3][2] = {{DNNL_ARG_FROM, M_U}, {DNNL_ARG_TO, M_UB}, {DNNL_ARG_SCRATCHPAD, M_BSCRATCH}};
    int caller = threads_set(&k);
    dnnl_status_t s = dnnl_success;
    const char *what = "reorder of W";
    if (e->reorder_w) s = execute(e, e->reorder_w, reorder_w, 3);
    if (!s && e->reorder_u) what = "reorder of U", s = execute(e, e->reorder_u, reorder_u, 3);
    if (!s) what = "backward", s = execute(e, e->bwd, (const int (*)[2])args, n_args);
    threads_restore(caller);
    entry_give(e);
    if (s) return fail_node(n, what, s);
    if (L.g_db >= 0) {
        float *db = out[L.g_db].data;
        if (k.cell == LG_RNN_GRU) { /* back to [2, 3H]: z and r have one gradient in both rows */
            memcpy(db, dbias, (size_t)GH * sizeof(float));
            memcpy(db + GH, dbias, (size_t)(2 * H) * sizeof(float));
            memcpy(db + GH + 2 * H, dbias + 3 * H, (size_t)H * sizeof(float));
        } else {
            memcpy(db, dbias, (size_t)GH * sizeof(float));
        }
    }
    return LG_OK;
}
