/*
 * dnnl_rnn_ref.c — see dnnl_rnn_ref.h.
 */
#include "dnnl_rnn_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "backends/cpu/cpu.h"

static int64_t gates(const rnn_problem *p) { return lg_rnn_cell_gates(p->cell); }

int64_t rnn_bias_len(const rnn_problem *p) { return (p->cell == LG_RNN_GRU ? 2 : 1) * gates(p) * p->H; }

static float *filled(int64_t n, uint64_t *state, bool random)
{
    float *a = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (a && random)
        for (int64_t i = 0; i < n; i++) {
            *state = *state * 6364136223846793005ull + 1442695040888963407ull;
            a[i] = (float)((*state >> 40) / (double)(1ull << 24)) - 0.5f;
        }
    return a;
}

int rnn_io_alloc(rnn_io *io, const rnn_problem *p, uint64_t seed)
{
    memset(io, 0, sizeof *io);
    int64_t T = p->T, B = p->B, I = p->I, H = p->H, GH = gates(p) * H;
    bool lstm = p->cell == LG_RNN_LSTM;
    uint64_t s = seed;
    io->x = filled(T * B * I, &s, true), io->h0 = filled(B * H, &s, true);
    io->w = filled(I * GH, &s, true), io->u = filled(H * GH, &s, true), io->b = filled(rnn_bias_len(p), &s, true);
    io->dys = filled(T * B * H, &s, true), io->dh = filled(B * H, &s, true);
    io->ys = filled(T * B * H, &s, false), io->h_t = filled(B * H, &s, false);
    io->dx = filled(T * B * I, &s, false), io->dh0 = filled(B * H, &s, false);
    io->dw = filled(I * GH, &s, false), io->du = filled(H * GH, &s, false), io->db = filled(rnn_bias_len(p), &s, false);
    bool ok = io->x && io->h0 && io->w && io->u && io->b && io->dys && io->dh && io->ys && io->h_t && io->dx &&
              io->dh0 && io->dw && io->du && io->db;
    if (lstm) {
        io->c0 = filled(B * H, &s, true), io->dc = filled(B * H, &s, true);
        io->c_t = filled(B * H, &s, false), io->dc0 = filled(B * H, &s, false);
        ok = ok && io->c0 && io->dc && io->c_t && io->dc0;
    }
    if (!ok) rnn_io_free(io);
    return ok ? 0 : -1;
}

void rnn_io_free(rnn_io *io)
{
    float *all[] = {io->x,  io->h0, io->c0, io->w,   io->u,  io->b,   io->dys, io->dh, io->dc, io->ys,
                    io->h_t, io->c_t, io->dx, io->dh0, io->dc0, io->dw, io->du,  io->db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    memset(io, 0, sizeof *io);
}

struct rnn_runner {
    rnn_problem p;
    bool dnnl;
    /* fused */
    float *ws, *scratch;
    int64_t ws_len, scratch_len;
    /* oneDNN */
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_desc_t fwd_pd, bwd_pd;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t workspace;
    float *bias, *dbias; /* oneDNN's bias layout */
};

static int fail(char *err, size_t size, const char *what, int code)
{
    snprintf(err, size, "%s (status %d)", what, code);
    return -1;
}

/* ---- the fused kernels ---- */

rnn_runner *rnn_fused_new(const rnn_problem *p, char *err, size_t size)
{
    rnn_runner *r = calloc(1, sizeof *r);
    if (!r) {
        fail(err, size, "out of memory", 0);
        return NULL;
    }
    r->p = *p;
    int64_t TB = p->T * p->B;
    r->ws_len = TB * lg_rnn_ws_planes(p->cell) * p->H;
    r->scratch_len = TB * lg_rnn_scratch_width(p->cell) * p->H + p->B * p->H + TB;
    r->ws = malloc((size_t)r->ws_len * sizeof(float));
    r->scratch = malloc((size_t)r->scratch_len * sizeof(float));
    if (!r->ws || !r->scratch) {
        rnn_runner_free(r);
        fail(err, size, "out of memory", 0);
        return NULL;
    }
    return r;
}

static lg_buf buf(float *d, int rank, int64_t a, int64_t b, int64_t c)
{
    lg_buf x = {.data = d, .dtype = LG_F32, .shape = {.rank = rank}};
    int64_t dims[3] = {a, b, c};
    for (int k = 0; k < rank; k++) x.shape.dims[k] = dims[k];
    return x;
}

static int fused_step(rnn_runner *r, rnn_io *io, char *err, size_t size)
{
    const rnn_problem *p = &r->p;
    int64_t T = p->T, B = p->B, I = p->I, H = p->H, GH = gates(p) * H;
    int64_t ints[2] = {p->cell, LG_RNN_BIAS};
    lg_node n = {.op = LG_OP_RNN, .attrs = {.ints = ints, .n_ints = 2}, .name = "rnn"};
    lg_rnn_layout L = lg_rnn_layout_of(p->cell, LG_RNN_BIAS);
    lg_buf in[12], out[8];
    in[L.x] = buf(io->x, 3, T, B, I), in[L.h0] = buf(io->h0, 2, B, H, 0);
    if (L.c0 >= 0) in[L.c0] = buf(io->c0, 2, B, H, 0);
    in[L.w] = buf(io->w, 2, I, GH, 0), in[L.u] = buf(io->u, 2, H, GH, 0);
    in[L.b] = p->cell == LG_RNN_GRU ? buf(io->b, 2, 2, GH, 0) : buf(io->b, 1, GH, 0, 0);
    out[L.h_t] = buf(io->h_t, 2, B, H, 0);
    if (L.c_t >= 0) out[L.c_t] = buf(io->c_t, 2, B, H, 0);
    out[L.ys] = buf(io->ys, 3, T, B, H);
    out[L.ws] = buf(r->ws, 3, T, B, r->ws_len / (T * B));
    lg_status st = lg_cpu_rnn(&n, in, out);
    if (st) return fail(err, size, lg_last_error(), st);

    n.op = LG_OP_RNN_GRAD;
    n.name = "rnn_grad";
    in[L.g_ws] = out[L.ws];
    in[L.g_dh] = buf(io->dh, 2, B, H, 0);
    if (L.g_dc >= 0) in[L.g_dc] = buf(io->dc, 2, B, H, 0);
    in[L.g_dys] = buf(io->dys, 3, T, B, H);
    out[L.g_dx] = buf(io->dx, 3, T, B, I), out[L.g_dh0] = buf(io->dh0, 2, B, H, 0);
    if (L.g_dc0 >= 0) out[L.g_dc0] = buf(io->dc0, 2, B, H, 0);
    out[L.g_dw] = buf(io->dw, 2, I, GH, 0), out[L.g_du] = buf(io->du, 2, H, GH, 0);
    out[L.g_db] = in[L.b];
    out[L.g_db].data = io->db;
    out[L.g_scratch] = buf(r->scratch, 1, r->scratch_len, 0, 0);
    st = lg_cpu_rnn_grad(&n, in, out);
    return st ? fail(err, size, lg_last_error(), st) : 0;
}

/* ---- oneDNN ---- */

#define DNNL_TRY(call, what)                                                                       \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success) {                                                                  \
            fail(err, size, what, (int)s_);                                                        \
            goto bad;                                                                              \
        }                                                                                          \
    } while (0)

/* oneDNN's bias: [G, H], or [4, H] for the linear-before-reset GRU. */
static int64_t dnnl_bias_rows(const rnn_problem *p) { return p->cell == LG_RNN_GRU ? 4 : gates(p); }

typedef struct rnn_mds {
    dnnl_memory_desc_t src, iter, w, u, bias, dst, wd, ud; /* wd, ud: the plain ldigo weights */
} rnn_mds;

static dnnl_status_t make_mds(const rnn_problem *p, rnn_mds *m, bool any_weights)
{
    dnnl_dims_t src = {p->T, p->B, p->I}, dst = {p->T, p->B, p->H}, iter = {1, 1, p->B, p->H};
    dnnl_dims_t w = {1, 1, p->I, gates(p), p->H}, u = {1, 1, p->H, gates(p), p->H};
    dnnl_dims_t bias = {1, 1, dnnl_bias_rows(p), p->H};
    dnnl_status_t s = dnnl_success;
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->src, 3, src, dnnl_f32, dnnl_tnc);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->dst, 3, dst, dnnl_f32, dnnl_tnc);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->iter, 4, iter, dnnl_f32, dnnl_ldnc);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->wd, 5, w, dnnl_f32, dnnl_ldigo);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->ud, 5, u, dnnl_f32, dnnl_ldigo);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->w, 5, w, dnnl_f32, any_weights ? dnnl_format_tag_any : dnnl_ldigo);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->u, 5, u, dnnl_f32, any_weights ? dnnl_format_tag_any : dnnl_ldigo);
    if (!s) s = dnnl_memory_desc_init_by_tag(&m->bias, 4, bias, dnnl_f32, dnnl_ldgo);
    return s;
}

static dnnl_status_t init_desc(const rnn_problem *p, dnnl_rnn_desc_t *d, bool backward, const rnn_mds *m)
{
    dnnl_rnn_direction_t dir = dnnl_unidirectional_left2right;
    dnnl_prop_kind_t prop = backward ? dnnl_backward : dnnl_forward_training;
    const dnnl_memory_desc_t *ci = p->cell == LG_RNN_LSTM ? &m->iter : NULL;
    dnnl_alg_kind_t act = p->cell == LG_RNN_SIMPLE_RELU ? dnnl_eltwise_relu : dnnl_eltwise_tanh;
    if (!backward) switch (p->cell) {
        case LG_RNN_LSTM:
            return dnnl_lstm_forward_desc_init(d, prop, dir, &m->src, &m->iter, ci, &m->w, &m->u, &m->bias, &m->dst,
                                               &m->iter, ci, 0);
        case LG_RNN_GRU:
            return dnnl_lbr_gru_forward_desc_init(d, prop, dir, &m->src, &m->iter, &m->w, &m->u, &m->bias, &m->dst,
                                                  &m->iter, 0);
        case LG_RNN_GRU_RESET_BEFORE:
            return dnnl_gru_forward_desc_init(d, prop, dir, &m->src, &m->iter, &m->w, &m->u, &m->bias, &m->dst,
                                              &m->iter, 0);
        default:
            return dnnl_vanilla_rnn_forward_desc_init(d, prop, act, dir, &m->src, &m->iter, &m->w, &m->u,
                                                      &m->bias, &m->dst, &m->iter, 0, 0, 0);
        }
    /* diff descriptors: the plain layouts the fused kernel uses */
    switch (p->cell) {
    case LG_RNN_LSTM:
        return dnnl_lstm_backward_desc_init(d, prop, dir, &m->src, &m->iter, ci, &m->w, &m->u, &m->bias, &m->dst,
                                            &m->iter, ci, &m->src, &m->iter, ci, &m->wd, &m->ud, &m->bias, &m->dst,
                                            &m->iter, ci, 0);
    case LG_RNN_GRU:
        return dnnl_lbr_gru_backward_desc_init(d, prop, dir, &m->src, &m->iter, &m->w, &m->u, &m->bias, &m->dst,
                                               &m->iter, &m->src, &m->iter, &m->wd, &m->ud, &m->bias, &m->dst,
                                               &m->iter, 0);
    case LG_RNN_GRU_RESET_BEFORE:
        return dnnl_gru_backward_desc_init(d, prop, dir, &m->src, &m->iter, &m->w, &m->u, &m->bias, &m->dst,
                                           &m->iter, &m->src, &m->iter, &m->wd, &m->ud, &m->bias, &m->dst, &m->iter,
                                           0);
    default:
        return dnnl_vanilla_rnn_backward_desc_init(d, prop, act, dir, &m->src, &m->iter, &m->w, &m->u,
                                                   &m->bias, &m->dst, &m->iter, &m->src, &m->iter, &m->wd, &m->ud,
                                                   &m->bias, &m->dst, &m->iter, 0, 0, 0);
    }
}

rnn_runner *rnn_dnnl_new(const rnn_problem *p, char *err, size_t size)
{
    if ((unsigned)p->cell >= LG_RNN_CELL_COUNT) {
        fail(err, size, "not a cell", (int)p->cell);
        return NULL;
    }
    rnn_runner *r = calloc(1, sizeof *r);
    if (!r) {
        fail(err, size, "out of memory", 0);
        return NULL;
    }
    r->p = *p;
    r->dnnl = true;
    rnn_mds m;
    dnnl_rnn_desc_t fd, bd;
    int64_t nb = dnnl_bias_rows(p) * p->H;
    r->bias = calloc((size_t)nb, sizeof(float));
    r->dbias = calloc((size_t)nb, sizeof(float));
    if (!r->bias || !r->dbias) {
        fail(err, size, "out of memory", 0);
        goto bad;
    }
    DNNL_TRY(dnnl_engine_create(&r->eng, dnnl_cpu, 0), "dnnl_engine_create");
    DNNL_TRY(dnnl_stream_create(&r->strm, r->eng, dnnl_stream_default_flags), "dnnl_stream_create");
    /* forward training takes the plain weights; backward wants its own
     * layout (any), reordered each step */
    DNNL_TRY(make_mds(p, &m, false), "dnnl_memory_desc_init_by_tag");
    DNNL_TRY(init_desc(p, &fd, false, &m), "forward RNN descriptor");
    DNNL_TRY(dnnl_primitive_desc_create(&r->fwd_pd, &fd, NULL, r->eng, NULL), "forward RNN primitive descriptor");
    DNNL_TRY(make_mds(p, &m, true), "dnnl_memory_desc_init_by_tag");
    DNNL_TRY(init_desc(p, &bd, true, &m), "backward RNN descriptor");
    DNNL_TRY(dnnl_primitive_desc_create(&r->bwd_pd, &bd, NULL, r->eng, r->fwd_pd), "backward RNN primitive descriptor");
    DNNL_TRY(dnnl_primitive_create(&r->fwd, r->fwd_pd), "forward RNN primitive");
    DNNL_TRY(dnnl_primitive_create(&r->bwd, r->bwd_pd), "backward RNN primitive");
    DNNL_TRY(dnnl_memory_create(&r->workspace, dnnl_primitive_desc_query_md(r->fwd_pd, dnnl_query_workspace_md, 0),
                                r->eng, DNNL_MEMORY_ALLOCATE),
             "workspace memory");
    return r;
bad:
    rnn_runner_free(r);
    return NULL;
}

typedef struct arg_list {
    dnnl_exec_arg_t a[24];
    int n;
} arg_list;

/* A memory over the caller's buffer p with descriptor md, added as argument
 * `arg`; NULL on failure. */
static dnnl_memory_t wrap(arg_list *l, dnnl_memory_t *own, int *n_own, int arg, const dnnl_memory_desc_t *md,
                          dnnl_engine_t eng, void *p)
{
    dnnl_memory_t mem;
    if (dnnl_memory_create(&mem, md, eng, p) != dnnl_success) return NULL;
    own[(*n_own)++] = mem;
    l->a[l->n++] = (dnnl_exec_arg_t){arg, mem};
    return mem;
}

/* The user's plain weights in the layout the backward primitive chose. */
static dnnl_status_t reorder_to(dnnl_engine_t eng, dnnl_stream_t strm, dnnl_memory_t from,
                                const dnnl_memory_desc_t *to_md, dnnl_memory_t *to)
{
    const dnnl_memory_desc_t *from_md;
    dnnl_status_t s = dnnl_memory_get_memory_desc(from, &from_md);
    if (s) return s;
    if (dnnl_memory_desc_equal(from_md, to_md)) {
        *to = NULL;
        return dnnl_success;
    }
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t pr;
    s = dnnl_memory_create(to, to_md, eng, DNNL_MEMORY_ALLOCATE);
    if (!s) s = dnnl_reorder_primitive_desc_create(&pd, from_md, eng, to_md, eng, NULL);
    if (s) return s;
    s = dnnl_primitive_create(&pr, pd);
    dnnl_primitive_desc_destroy(pd);
    if (s) return s;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, *to}};
    s = dnnl_primitive_execute(pr, strm, 2, args);
    dnnl_primitive_destroy(pr);
    return s;
}

static int dnnl_step(rnn_runner *r, rnn_io *io, char *err, size_t size)
{
    const rnn_problem *p = &r->p;
    int64_t H = p->H, GH = gates(p) * H;
    bool lstm = p->cell == LG_RNN_LSTM;
    dnnl_memory_t own[32] = {0}, wb = NULL, ub = NULL;
    int n_own = 0, rc = -1;
    rnn_mds m;
    if (p->cell == LG_RNN_GRU) { /* [bz+rz, br+rr, bh, rh] */
        for (int64_t j = 0; j < 2 * H; j++) r->bias[j] = io->b[j] + io->b[GH + j];
        memcpy(r->bias + 2 * H, io->b + 2 * H, (size_t)H * sizeof(float));
        memcpy(r->bias + 3 * H, io->b + GH + 2 * H, (size_t)H * sizeof(float));
    } else {
        memcpy(r->bias, io->b, (size_t)GH * sizeof(float));
    }
    DNNL_TRY(make_mds(p, &m, false), "dnnl_memory_desc_init_by_tag");
    arg_list f = {.n = 0};
    dnnl_memory_t src = wrap(&f, own, &n_own, DNNL_ARG_SRC_LAYER, &m.src, r->eng, io->x);
    dnnl_memory_t h0 = wrap(&f, own, &n_own, DNNL_ARG_SRC_ITER, &m.iter, r->eng, io->h0);
    dnnl_memory_t c0 = lstm ? wrap(&f, own, &n_own, DNNL_ARG_SRC_ITER_C, &m.iter, r->eng, io->c0) : NULL;
    dnnl_memory_t w = wrap(&f, own, &n_own, DNNL_ARG_WEIGHTS_LAYER, &m.wd, r->eng, io->w);
    dnnl_memory_t u = wrap(&f, own, &n_own, DNNL_ARG_WEIGHTS_ITER, &m.ud, r->eng, io->u);
    dnnl_memory_t bias = wrap(&f, own, &n_own, DNNL_ARG_BIAS, &m.bias, r->eng, r->bias);
    dnnl_memory_t ys = wrap(&f, own, &n_own, DNNL_ARG_DST_LAYER, &m.dst, r->eng, io->ys);
    dnnl_memory_t ht = wrap(&f, own, &n_own, DNNL_ARG_DST_ITER, &m.iter, r->eng, io->h_t);
    dnnl_memory_t ct = lstm ? wrap(&f, own, &n_own, DNNL_ARG_DST_ITER_C, &m.iter, r->eng, io->c_t) : NULL;
    if (!src || !h0 || (lstm && (!c0 || !ct)) || !w || !u || !bias || !ys || !ht) {
        fail(err, size, "dnnl_memory_create", 0);
        goto bad;
    }
    f.a[f.n++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, r->workspace};
    DNNL_TRY(dnnl_primitive_execute(r->fwd, r->strm, f.n, f.a), "forward RNN");

    DNNL_TRY(reorder_to(r->eng, r->strm, w, dnnl_primitive_desc_query_md(r->bwd_pd, dnnl_query_weights_md, 0), &wb),
             "reorder of W");
    DNNL_TRY(reorder_to(r->eng, r->strm, u, dnnl_primitive_desc_query_md(r->bwd_pd, dnnl_query_weights_md, 1), &ub),
             "reorder of U");
    arg_list b = f;
    for (int k = 0; k < b.n; k++) {
        if (b.a[k].arg == DNNL_ARG_WEIGHTS_LAYER && wb) b.a[k].memory = wb;
        if (b.a[k].arg == DNNL_ARG_WEIGHTS_ITER && ub) b.a[k].memory = ub;
    }
    /* oneDNN accumulates into the weight gradients */
    memset(io->dw, 0, (size_t)(p->I * GH) * sizeof(float));
    memset(io->du, 0, (size_t)(H * GH) * sizeof(float));
    memset(r->dbias, 0, (size_t)(dnnl_bias_rows(p) * H) * sizeof(float));
    bool ok = wrap(&b, own, &n_own, DNNL_ARG_DIFF_DST_LAYER, &m.dst, r->eng, io->dys) &&
              wrap(&b, own, &n_own, DNNL_ARG_DIFF_DST_ITER, &m.iter, r->eng, io->dh) &&
              (!lstm || wrap(&b, own, &n_own, DNNL_ARG_DIFF_DST_ITER_C, &m.iter, r->eng, io->dc)) &&
              wrap(&b, own, &n_own, DNNL_ARG_DIFF_SRC_LAYER, &m.src, r->eng, io->dx) &&
              wrap(&b, own, &n_own, DNNL_ARG_DIFF_SRC_ITER, &m.iter, r->eng, io->dh0) &&
              (!lstm || wrap(&b, own, &n_own, DNNL_ARG_DIFF_SRC_ITER_C, &m.iter, r->eng, io->dc0)) &&
              wrap(&b, own, &n_own, DNNL_ARG_DIFF_WEIGHTS_LAYER, &m.wd, r->eng, io->dw) &&
              wrap(&b, own, &n_own, DNNL_ARG_DIFF_WEIGHTS_ITER, &m.ud, r->eng, io->du) &&
              wrap(&b, own, &n_own, DNNL_ARG_DIFF_BIAS, &m.bias, r->eng, r->dbias);
    if (!ok) {
        fail(err, size, "dnnl_memory_create", 0);
        goto bad;
    }
    DNNL_TRY(dnnl_primitive_execute(r->bwd, r->strm, b.n, b.a), "backward RNN");
    DNNL_TRY(dnnl_stream_wait(r->strm), "dnnl_stream_wait");
    if (p->cell == LG_RNN_GRU) { /* back to [2, 3H]: z and r gradients are the same in both rows */
        memcpy(io->db, r->dbias, (size_t)(3 * H) * sizeof(float));
        memcpy(io->db + GH, r->dbias, (size_t)(2 * H) * sizeof(float));
        memcpy(io->db + GH + 2 * H, r->dbias + 3 * H, (size_t)H * sizeof(float));
    } else {
        memcpy(io->db, r->dbias, (size_t)GH * sizeof(float));
    }
    rc = 0;
bad:
    if (wb) dnnl_memory_destroy(wb);
    if (ub) dnnl_memory_destroy(ub);
    for (int k = 0; k < n_own; k++) dnnl_memory_destroy(own[k]);
    return rc;
}

int rnn_runner_step(rnn_runner *r, rnn_io *io, char *err, size_t size)
{
    return r->dnnl ? dnnl_step(r, io, err, size) : fused_step(r, io, err, size);
}

void rnn_runner_free(rnn_runner *r)
{
    if (!r) return;
    if (r->fwd) dnnl_primitive_destroy(r->fwd);
    if (r->bwd) dnnl_primitive_destroy(r->bwd);
    if (r->fwd_pd) dnnl_primitive_desc_destroy(r->fwd_pd);
    if (r->bwd_pd) dnnl_primitive_desc_destroy(r->bwd_pd);
    if (r->workspace) dnnl_memory_destroy(r->workspace);
    if (r->strm) dnnl_stream_destroy(r->strm);
    if (r->eng) dnnl_engine_destroy(r->eng);
    free(r->ws);
    free(r->scratch);
    free(r->bias);
    free(r->dbias);
    free(r);
}
