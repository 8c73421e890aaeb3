/*
 * rnn_bench.c — loopgrad's side of bench/rnn.sh: eleven recurrent models
 * (issue 10's eight, a GRU(256), a Bidirectional LSTM, and a peephole LSTM
 * written as a custom cell, which nothing fuses), timed per
 * training step (forward, backward, optimizer) and per inference step
 * (forward only), median milliseconds.
 *
 *   rnn_bench [--quick] [--steps N] [--only NAME] [--generic | --fused] [--off PASSES] [--report]
 *   rnn_bench --list          (the configurations' names, one a line)
 *
 * Each model runs twice: "generic", compiled with the fuse_rnn pass off
 * (LG_PASSES_OFF=fuse_rnn: the loop node runs the body step by step), and
 * "fused", the library as built (lg_program_compile's fuse_rnn pass replaces
 * each matched loop by the fused rnn op; "refused" gives its reason where it
 * did not). --off switches more passes off in both ("hoist": what hoisting
 * gains). --report writes each training program's lg_program_report to
 * stderr (kernels per loop step, what each pass did). Output, one line each:
 *
 *   core <openblas_get_corename()>
 *   <config> <generic|fused> train_ms M infer_ms M train_cpu_ms M infer_cpu_ms M
 *       [refused: why]    (medians; _cpu_ms: CPU time of all threads)
 *   <config> gemm_bound_ms <ms>   (LSTM(256), LSTM(512), GRU(256): sgemm time alone)
 *
 * Data are uniform noise: the time of a step does not depend on it. Models
 * are time-major ([T, B, ...]) like the PyTorch peer (rnn_torch.py).
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph/loopgrad.h"
#include "graph/optim.h"
#include "graph/internal.h"
#include "hand_lstm.h"
#include "peephole.h"

typedef enum opt_kind { OPT_SGD, OPT_ADAM, OPT_RMSPROP } opt_kind;
/* The loop body: the cell API's, or written from ops (examples/cells):
 * an LSTM (fuse_rnn matches it) or a peephole LSTM (nothing matches it: the
 * generic loop in both columns). */
typedef enum body_kind { BODY_CELL, BODY_HAND_LSTM, BODY_PEEPHOLE } body_kind;
typedef enum head_kind { HEAD_CLASSES, HEAD_REGRESS, HEAD_BINARY, HEAD_SEQ_REGRESS } head_kind;

typedef struct config {
    const char *name;
    int steps, batch, in; /* in: input features, or the vocabulary with an embedding */
    int embed;         /* embedding dim, 0 for none */
    lg_cell_kind kind; /* every layer's cell */
    int units, layers;
    body_kind body;
    bool bidirectional; /* every layer Keras's Bidirectional, outputs concatenated */
    head_kind head;
    int classes;
    opt_kind opt;
} config;

static const config configs[] = {
    {"lstm64_rows", 28, 64, 28, 0, LG_CELL_LSTM, 64, 1, BODY_CELL, false, HEAD_CLASSES, 10, OPT_SGD},
    {"lstm32_rmsprop", 120, 256, 14, 0, LG_CELL_LSTM, 32, 1, BODY_CELL, false, HEAD_REGRESS, 1, OPT_RMSPROP},
    {"gru32x2", 120, 256, 14, 0, LG_CELL_GRU, 32, 2, BODY_CELL, false, HEAD_REGRESS, 1, OPT_RMSPROP},
    {"emb_rnn64x2", 80, 128, 10000, 100, LG_CELL_SIMPLE_RNN, 64, 2, BODY_CELL, false, HEAD_BINARY, 1, OPT_ADAM},
    {"lstm256", 100, 64, 32, 0, LG_CELL_LSTM, 256, 1, BODY_CELL, false, HEAD_REGRESS, 1, OPT_ADAM},
    {"lstm512", 50, 32, 32, 0, LG_CELL_LSTM, 512, 1, BODY_CELL, false, HEAD_REGRESS, 1, OPT_ADAM},
    {"lstm256_ops", 100, 64, 32, 0, LG_CELL_LSTM, 256, 1, BODY_HAND_LSTM, false, HEAD_REGRESS, 1, OPT_ADAM},
    {"lstm10_sincos", 20, 50, 1, 0, LG_CELL_LSTM, 10, 1, BODY_CELL, false, HEAD_SEQ_REGRESS, 1, OPT_ADAM},
    {"gru256", 100, 64, 32, 0, LG_CELL_GRU, 256, 1, BODY_CELL, false, HEAD_REGRESS, 1, OPT_ADAM},
    {"bilstm64_rows", 28, 64, 28, 0, LG_CELL_LSTM, 64, 1, BODY_CELL, true, HEAD_CLASSES, 10, OPT_ADAM},
    {"peephole256", 100, 64, 32, 0, LG_CELL_LSTM, 256, 1, BODY_PEEPHOLE, false, HEAD_REGRESS, 1, OPT_ADAM},
};
enum { N_CONFIGS = sizeof configs / sizeof *configs };

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static double now_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
/* CPU time of all the process's threads: on a shared, loaded machine the
 * wall clock also counts waiting for a core. */
static double cpu_ms(void) { return clock_ms(CLOCK_PROCESS_CPUTIME_ID); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void check(lg_status s, const char *what)
{
    if (s == LG_OK) return;
    fprintf(stderr, "rnn_bench: %s: %s: %s\n", what, lg_status_name(s), lg_last_error());
    exit(1);
}

/* One recurrent layer over xs [T, B, F]: the stacked outputs [T, B, u] and
 * the final h [B, u]. */
static void layer(lg_graph *g, const config *c, int index, lg_value xs, lg_value *ys, lg_value *h_last)
{
    char name[32];
    snprintf(name, sizeof name, "rnn%d", index);
    int in_dim = (int)lg_value_shape(xs).dims[2], u = c->units;
    lg_loop_opts lo = lg_loop_opts_default();
    lo.time_major = true;
    if (c->body == BODY_PEEPHOLE) {
        peephole cell = peephole_new(g, name, in_dim, u, LG_F32, 1);
        lg_value zeros = lg_broadcast_to(lg_scalar(g, LG_F32, 0), lg_shape_of(2, c->batch, u));
        lg_loop *l = lg_loop_new(g, NULL, lo);
        lg_value x_t = lg_loop_seq(l, xs), h = lg_loop_state(l, zeros), cs = lg_loop_state(l, zeros), hn, cn;
        peephole_step(l, &cell, x_t, h, cs, &hn, &cn);
        lg_loop_next(l, h, hn);
        lg_loop_next(l, cs, cn);
        lg_loop_emit(l, hn);
        lg_value fin[2];
        check(lg_loop_end(l, fin, ys), "loop");
        *h_last = fin[0];
        return;
    }
    if (c->body == BODY_HAND_LSTM) {
        hand_lstm cell = hand_lstm_new(g, name, in_dim, u, LG_F32);
        check(lg_init_glorot_uniform(lg_param_tensor(cell.kernel), 1, 1), "init");
        check(lg_init_glorot_uniform(lg_param_tensor(cell.recurrent_kernel), 1, 2), "init");
        check(hand_lstm_sequence(g, &cell, xs, lo, ys, h_last), "loop");
        return;
    }
    if (c->bidirectional) {
        lg_cell *dir[2];
        for (int d = 0; d < 2; d++) {
            char scope[48];
            snprintf(scope, sizeof scope, "%s_%s", name, d ? "backward" : "forward");
            dir[d] = lg_cell_new(g, scope, in_dim, lg_cell_opts_default(c->kind, u));
            if (!dir[d]) check(LG_ERR_GRAPH, "cell");
        }
        lg_rnn_opts o = lg_rnn_opts_default();
        o.time_major = o.return_sequences = true;
        lg_bidirectional_result r;
        check(lg_bidirectional(g, name, dir[0], dir[1], xs, LG_MERGE_CONCAT, o, &r), "bidirectional");
        lg_cell_free(dir[0]);
        lg_cell_free(dir[1]);
        /* Keras's Bidirectional(LSTM(u)) output: both directions' final h */
        *ys = r.output;
        *h_last = lg_concat((lg_value[]){r.forward.states[0], r.backward.states[0]}, 2, 1);
        return;
    }
    lg_value zeros = lg_broadcast_to(lg_scalar(g, LG_F32, 0), lg_shape_of(2, c->batch, u));
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value x_t = lg_loop_seq(l, xs), st[2] = {lg_loop_state(l, zeros), lg_value_invalid()}, next[2], y;
    int n_states = c->kind == LG_CELL_LSTM ? 2 : 1;
    if (n_states == 2) st[1] = lg_loop_state(l, zeros);
    lg_cell *cell = lg_cell_new(g, name, in_dim, lg_cell_opts_default(c->kind, u));
    if (!cell) check(LG_ERR_GRAPH, "cell");
    lg_cell_step(cell, l, x_t, st, lg_value_invalid(), lg_value_invalid(), next, &y);
    lg_cell_free(cell);
    for (int k = 0; k < n_states; k++) lg_loop_next(l, st[k], next[k]);
    lg_loop_emit(l, y);
    lg_value fin[2];
    check(lg_loop_end(l, fin, ys), "loop");
    *h_last = fin[0];
}

static lg_value dense(lg_graph *g, const char *name, lg_value x, int units)
{
    return lg_dense(g, name, x, units, lg_dense_opts_default());
}

typedef struct model {
    lg_graph *g;
    lg_value pred, loss;
    lg_feed feeds[2];
    lg_tensor *feed_t[2];
    int n_feeds;
    char refused[256];
} model;

static lg_tensor *noise(lg_dtype dt, lg_shape s, int64_t ints_below)
{
    lg_tensor *t = NULL;
    check(lg_tensor_new(dt, s, &t), "tensor");
    if (dt == LG_I32) {
        int32_t *p = lg_tensor_data(t);
        for (int64_t i = 0; i < lg_tensor_numel(t); i++) p[i] = (int32_t)((i * 7919) % ints_below);
    } else {
        check(lg_init_uniform(t, -1, 1, 42, 1), "noise");
    }
    return t;
}

static void model_build(model *m, const config *c)
{
    memset(m, 0, sizeof *m);
    lg_graph *g = m->g = lg_graph_new();
    lg_value xs;
    lg_value x = c->embed ? lg_input(g, "ids", LG_I32, lg_shape_of(2, c->steps, c->batch))
                          : lg_input(g, "x", LG_F32, lg_shape_of(3, c->steps, c->batch, c->in));
    m->feed_t[0] = c->embed ? noise(LG_I32, lg_shape_of(2, c->steps, c->batch), c->in)
                            : noise(LG_F32, lg_shape_of(3, c->steps, c->batch, c->in), 0);
    m->feeds[m->n_feeds++] = (lg_feed){x, m->feed_t[0]};
    xs = c->embed ? lg_embedding(g, "embedding", x, c->in, c->embed, lg_embedding_opts_default(), NULL) : x;
    lg_value ys = xs, h = lg_value_invalid();
    for (int k = 0; k < c->layers; k++) layer(g, c, k, ys, &ys, &h);
    lg_value target;
    switch (c->head) {
    case HEAD_CLASSES:
        m->pred = dense(g, "dense", h, c->classes);
        target = lg_input(g, "labels", LG_I32, lg_shape_of(1, c->batch));
        m->feed_t[1] = noise(LG_I32, lg_shape_of(1, c->batch), c->classes);
        m->loss = lg_sparse_categorical_crossentropy(target, m->pred, true);
        break;
    case HEAD_SEQ_REGRESS:
        m->pred = dense(g, "dense", ys, 1);
        target = lg_input(g, "y", LG_F32, lg_shape_of(3, c->steps, c->batch, 1));
        m->feed_t[1] = noise(LG_F32, lg_shape_of(3, c->steps, c->batch, 1), 0);
        m->loss = lg_mse(target, m->pred);
        break;
    default:
        m->pred = dense(g, "dense", h, 1);
        target = lg_input(g, "y", LG_F32, lg_shape_of(2, c->batch, 1));
        m->feed_t[1] = noise(LG_F32, lg_shape_of(2, c->batch, 1), 0);
        m->loss = c->head == HEAD_BINARY ? lg_binary_crossentropy(target, m->pred, true) : lg_mse(target, m->pred);
        break;
    }
    m->feeds[m->n_feeds++] = (lg_feed){target, m->feed_t[1]};
    if (lg_graph_error(g)) check(LG_ERR_GRAPH, lg_graph_error(g));
}

static void model_free(model *m)
{
    lg_tensor_free(m->feed_t[0]);
    lg_tensor_free(m->feed_t[1]);
    lg_graph_free(m->g);
}

static bool show_report; /* --report */

/* Median ms (wall, then CPU) of a training and of an inference step, after
 * one warm-up each: ms[0..1] train, ms[2..3] inference. */
static void time_model(model *m, const config *c, int steps, double *ms)
{
    lg_graph *g = m->g;
    int n = g->n_params;
    lg_value *params = malloc((size_t)n * sizeof *params), *fetch = malloc((size_t)(n + 1) * sizeof *fetch);
    lg_tensor **out = calloc((size_t)n + 1, sizeof *out);
    double *t = malloc((size_t)steps * sizeof *t), *tc = malloc((size_t)steps * sizeof *tc);
    if (!params || !fetch || !out || !t || !tc) check(LG_ERR_OUT_OF_MEMORY, "bench");
    for (int i = 0; i < n; i++) params[i] = lg_value_of(g, g->params[i], 0);
    check(lg_grad(g, m->loss, params, n, fetch + 1), "grad");
    fetch[0] = m->loss;
    lg_optimizer *opt = NULL;
    if (c->opt == OPT_SGD) {
        lg_sgd_opts o = lg_sgd_opts_default();
        o.momentum = 0.9;
        check(lg_optimizer_sgd(g, params, n, o, &opt), "sgd");
    } else if (c->opt == OPT_ADAM) {
        lg_adam_opts o = lg_adam_opts_default();
        check(lg_optimizer_adam(g, params, n, o, &opt), "adam");
    } else {
        lg_rmsprop_opts o = lg_rmsprop_opts_default();
        check(lg_optimizer_rmsprop(g, params, n, o, &opt), "rmsprop");
    }
    for (int i = 0; i < n; i++) out[i + 1] = lg_optimizer_grads(opt)[i];
    /* fuse_rnn's first refusal, from the training program's report */
    lg_program *p = NULL;
    check(lg_program_compile(g, m->feeds, m->n_feeds, fetch, n + 1, &p), "compile");
    char *rep = lg_program_report(p), *no = rep ? strstr(rep, "not fused: ") : NULL;
    if (show_report && rep) fprintf(stderr, "%s, training program:\n%s\n", c->name, rep);
    if (no) snprintf(m->refused, sizeof m->refused, "%.*s", (int)strcspn(no + 11, "\n"), no + 11);
    free(rep);
    lg_program_free(p);
    for (int s = -1; s < steps; s++) {
        double t0 = now_ms(), c0 = cpu_ms();
        check(lg_graph_run(g, m->feeds, m->n_feeds, fetch, n + 1, out), "train step");
        check(lg_optimizer_step(opt), "optimizer");
        if (s >= 0) t[s] = now_ms() - t0, tc[s] = cpu_ms() - c0;
    }
    ms[0] = median(t, steps), ms[1] = median(tc, steps);
    lg_tensor *pred = NULL;
    for (int s = -1; s < steps; s++) {
        double t0 = now_ms(), c0 = cpu_ms();
        check(lg_graph_run(g, m->feeds, 1, &m->pred, 1, &pred), "inference step");
        if (s >= 0) t[s] = now_ms() - t0, tc[s] = cpu_ms() - c0;
        lg_tensor_free(pred);
        pred = NULL;
    }
    ms[2] = median(t, steps), ms[3] = median(tc, steps);
    lg_tensor_free(out[0]);
    lg_optimizer_free(opt);
    free(params), free(fetch), free(out), free(t), free(tc);
}

/* sgemm alone on the GEMMs of one fused training step (input projection
 * hoisted; G = 4 H for an LSTM, 3 H for a GRU): forward x W over T B rows
 * and T steps of h U; backward T steps of dG U^T, then dW, dU and dx over
 * T B rows. */
static double gemm_bound_ms(const config *c, int steps)
{
    int64_t T = c->steps, B = c->batch, In = c->in, H = c->units, TB = T * B;
    int64_t G = (c->kind == LG_CELL_LSTM ? 4 : c->kind == LG_CELL_GRU ? 3 : 1) * H;
    float *x = calloc((size_t)(TB * In), 4), *w = calloc((size_t)(In * G), 4), *u = calloc((size_t)(H * G), 4);
    float *gt = calloc((size_t)(TB * G), 4), *h = calloc((size_t)(TB * H), 4), *dw = calloc((size_t)(In * G), 4);
    float *du = calloc((size_t)(H * G), 4), *dx = calloc((size_t)(TB * In), 4);
    double *t = malloc((size_t)steps * sizeof *t);
    for (int s = -1; s < steps; s++) {
        double t0 = now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)TB, (int)G, (int)In, 1, x, (int)In, w, (int)G, 1, gt,
                    (int)G);
        for (int64_t k = 0; k < T; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)G, (int)H, 1, h + k * B * H, (int)H, u,
                        (int)G, 1, gt + k * B * G, (int)G);
        for (int64_t k = 0; k < T; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)H, (int)G, 1, gt + k * B * G, (int)G, u,
                        (int)G, 1, h + k * B * H, (int)H);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)In, (int)G, (int)TB, 1, x, (int)In, gt, (int)G, 0, dw,
                    (int)G);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)H, (int)G, (int)TB, 1, h, (int)H, gt, (int)G, 0, du,
                    (int)G);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)TB, (int)In, (int)G, 1, gt, (int)G, w, (int)G, 0, dx,
                    (int)In);
        if (s >= 0) t[s] = now_ms() - t0;
    }
    double ms = median(t, steps);
    free(x), free(w), free(u), free(gt), free(h), free(dw), free(du), free(dx), free(t);
    return ms;
}

int main(int argc, char **argv)
{
    const char *usage =
        "usage: rnn_bench [--quick] [--steps N] [--only CONFIG] [--generic | --fused] [--off PASSES] [--report] | --list\n";
    int steps = 7;
    const char *only = NULL, *off = "";
    int first_mode = 0, last_mode = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) steps = 2;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--generic")) last_mode = 0;
        else if (!strcmp(argv[i], "--fused")) first_mode = 1;
        else if (!strcmp(argv[i], "--off") && i + 1 < argc) off = argv[++i];
        else if (!strcmp(argv[i], "--report")) show_report = true;
        else if (!strcmp(argv[i], "--list")) {
            for (int k = 0; k < N_CONFIGS; k++) printf("%s\n", configs[k].name);
            return 0;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (steps < 1) steps = 1;
    printf("core %s\n", openblas_get_corename());
    fflush(stdout);
    for (int k = 0; k < N_CONFIGS; k++) {
        const config *c = &configs[k];
        if (only && strcmp(only, c->name)) continue;
        for (int fuse = first_mode; fuse <= last_mode; fuse++) {
            model m;
            char off_list[256];
            snprintf(off_list, sizeof off_list, "%s,%s", fuse ? "" : "fuse_rnn", off);
            setenv("LG_PASSES_OFF", off_list, 1);
            model_build(&m, c);
            double ms[4];
            time_model(&m, c, steps, ms);
            printf("%s %s train_ms %.2f infer_ms %.2f train_cpu_ms %.2f infer_cpu_ms %.2f", c->name,
                   fuse ? "fused" : "generic", ms[0], ms[2], ms[1], ms[3]);
            if (m.refused[0]) printf(" refused: %s", m.refused);
            printf("\n");
            fflush(stdout);
            model_free(&m);
        }
        if (c->units >= 256 && c->body == BODY_CELL) printf("%s gemm_bound_ms %.2f\n", c->name, gemm_bound_ms(c, steps));
        fflush(stdout);
    }
    return 0;
}
