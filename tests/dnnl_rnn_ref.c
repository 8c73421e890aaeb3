/*
 * dnnl_rnn_ref.c — see dnnl_rnn_ref.h.
 */
#include "dnnl_rnn_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "backends/cpu/cpu_rnn_select.h"

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

static unsigned flags_of(const rnn_problem *p) { return LG_RNN_BIAS | (p->reverse ? LG_RNN_REVERSE : 0); }

struct rnn_runner {
    rnn_problem p;
    lg_rnn_impl impl;
    float *ws, *scratch;
    int64_t ws_width, scratch_len;
};

static int fail(char *err, size_t size, const char *what, int code)
{
    snprintf(err, size, "%s (status %d)", what, code);
    return -1;
}

rnn_runner *rnn_runner_new(const rnn_problem *p, lg_rnn_impl impl, char *err, size_t size)
{
    rnn_runner *r = calloc(1, sizeof *r);
    if (!r) {
        fail(err, size, "out of memory", 0);
        return NULL;
    }
    r->p = *p;
    lg_rnn_problem q = {p->cell, flags_of(p), LG_F32, p->T, p->B, p->I, p->H};
    lg_status st = lg_cpu_rnn_impl_force(impl);
    if (!st) st = lg_cpu_rnn_plan(&q, &r->impl, &r->ws_width, &r->scratch_len);
    if (st || r->impl != impl) {
        fail(err, size, st ? lg_last_error() : "the plan did not take the implementation", st);
        rnn_runner_free(r);
        return NULL;
    }
    r->ws = malloc((size_t)(p->T * p->B * r->ws_width) * sizeof(float));
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

/* The op's kernels with r's implementation forced (and left forced). */
int rnn_runner_step(rnn_runner *r, rnn_io *io, char *err, size_t size)
{
    const rnn_problem *p = &r->p;
    int64_t T = p->T, B = p->B, I = p->I, H = p->H, GH = gates(p) * H;
    int64_t ints[2] = {p->cell, flags_of(p)};
    lg_node n = {.op = LG_OP_RNN, .attrs = {.ints = ints, .n_ints = 2}, .name = "rnn"};
    lg_rnn_layout L = lg_rnn_layout_of(p->cell, flags_of(p));
    lg_buf in[12], out[8];
    in[L.x] = buf(io->x, 3, T, B, I), in[L.h0] = buf(io->h0, 2, B, H, 0);
    if (L.c0 >= 0) in[L.c0] = buf(io->c0, 2, B, H, 0);
    in[L.w] = buf(io->w, 2, I, GH, 0), in[L.u] = buf(io->u, 2, H, GH, 0);
    in[L.b] = p->cell == LG_RNN_GRU ? buf(io->b, 2, 2, GH, 0) : buf(io->b, 1, GH, 0, 0);
    out[L.h_t] = buf(io->h_t, 2, B, H, 0);
    if (L.c_t >= 0) out[L.c_t] = buf(io->c_t, 2, B, H, 0);
    out[L.ys] = buf(io->ys, 3, T, B, H);
    out[L.ws] = buf(r->ws, 3, T, B, r->ws_width);
    lg_status st = lg_cpu_rnn_impl_force(r->impl);
    if (!st) st = lg_cpu_rnn(&n, in, out);
    if (!st) {
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
    }
    return st ? fail(err, size, lg_last_error(), st) : 0;
}

void rnn_runner_free(rnn_runner *r)
{
    if (!r) return;
    free(r->ws);
    free(r->scratch);
    free(r);
}
