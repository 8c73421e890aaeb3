/*
 * dnnl_rnn.c — the fused op's two CPU implementations (rnn / rnn_grad):
 * the hand-fused kernels and oneDNN's RNN primitives
 * (src/backends/cpu/cpu_rnn_onednn.c), one layer's training step: forward
 * (training) then backward, on the same f32 data (tests/dnnl_rnn_ref.c runs
 * both sides; tests/test_dnnl_rnn.c checks they agree). The table in
 * src/backends/cpu/cpu_rnn_select.c that picks one per cell comes from it.
 *
 *   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 build/bench/dnnl_rnn [REPEATS]
 *
 * The recurrent layers of bench/rnn_bench.c's models (and the reset_before
 * GRU on gru32's shape; LSTM(256) and LSTM(512) also with I = H). Per
 * configuration the two sides alternate, REPEATS (default 7) steps each
 * after one warm-up step, and the medians of wall and process CPU time are
 * printed as a Markdown table, with the load average before and after, the
 * GEMM that serves the fused kernels (lg_cpu_gemm_summary; LG_GEMM picks
 * it) and oneDNN's version and ISA. oneDNN's time is the op's, with what a
 * training step needs around its primitives (cached after the warm-up): the
 * bias conversion, the reorder of W and U into the backward primitive's
 * layout and the zeroing of the weight gradients it accumulates into. The
 * last column is the wall time of creating oneDNN's primitives for the
 * configuration (the first plan; what a call would pay without the cache).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#include "backends/cpu/gemm.h"
#include "graph/loopgrad.h"
#include "../tests/dnnl_rnn_ref.h"

typedef struct config {
    const char *name;
    lg_rnn_cell cell;
    int64_t H, B, T, I;
} config;

static const config configs[] = {
    {"LSTM(64), lstm64_rows", LG_RNN_LSTM, 64, 64, 28, 28},
    {"LSTM(32), lstm32_rmsprop", LG_RNN_LSTM, 32, 256, 120, 14},
    {"GRU(32) reset_after, gru32x2 layer 1", LG_RNN_GRU, 32, 256, 120, 14},
    {"GRU(32) reset_before, gru32x2's shape", LG_RNN_GRU_RESET_BEFORE, 32, 256, 120, 14},
    {"LSTM(256), lstm256", LG_RNN_LSTM, 256, 64, 100, 32},
    {"LSTM(256), I = 256", LG_RNN_LSTM, 256, 64, 100, 256},
    {"LSTM(512), lstm512", LG_RNN_LSTM, 512, 32, 50, 32},
    {"LSTM(512), I = 512", LG_RNN_LSTM, 512, 32, 50, 512},
    {"SimpleRNN(64), emb_rnn64x2 layer 1", LG_RNN_SIMPLE_TANH, 64, 128, 80, 100},
    {"LSTM(10), lstm10_sincos", LG_RNN_LSTM, 10, 50, 20, 1},
};

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_load(const char *when)
{
    double l[3] = {0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3) l[0] = l[1] = l[2] = -1;
        fclose(f);
    }
    printf("load %s: %.2f %.2f %.2f\n", when, l[0], l[1], l[2]);
}

/* One timed step of r: wall and CPU ms. */
static int timed(rnn_runner *r, rnn_io *io, double *wall, double *cpu)
{
    char err[512];
    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (rnn_runner_step(r, io, err, sizeof err)) {
        fprintf(stderr, "dnnl_rnn: %s\n", err);
        return -1;
    }
    *cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    *wall = now(CLOCK_MONOTONIC) - w0;
    return 0;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: %s [REPEATS 1..1000]\n", argv[0]);
        return 2;
    }
    const dnnl_version_t *v = dnnl_version();
    printf("fused kernels' %s\n", lg_cpu_gemm_summary());
    printf("oneDNN %d.%d.%d, JIT ISA %s, OMP_NUM_THREADS=%s\n", v->major, v->minor, v->patch,
           lg_gemm_onednn.core(), getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "unset");
    print_load("before");
    printf("\n| layer | B | T | I | fused wall ms | oneDNN wall ms | fused CPU ms | oneDNN CPU ms "
           "| oneDNN / fused (CPU) | oneDNN setup ms |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    int rc = 0;
    for (size_t k = 0; k < sizeof configs / sizeof *configs && !rc; k++) {
        const config *c = &configs[k];
        rnn_problem p = {c->cell, c->T, c->B, c->I, c->H, false};
        char err[512];
        rnn_io io_f, io_d;
        rnn_runner *rf = NULL, *rd = NULL;
        double *t = calloc((size_t)reps * 4, sizeof *t);
        if (!t || rnn_io_alloc(&io_f, &p, 5) || rnn_io_alloc(&io_d, &p, 5)) {
            fprintf(stderr, "dnnl_rnn: out of memory\n");
            return 1;
        }
        rf = rnn_runner_new(&p, LG_RNN_IMPL_FUSED, err, sizeof err);
        double setup = now(CLOCK_MONOTONIC); /* oneDNN's primitives are created (and cached) here */
        if (rf) rd = rnn_runner_new(&p, LG_RNN_IMPL_ONEDNN, err, sizeof err);
        setup = now(CLOCK_MONOTONIC) - setup;
        double w, cpu;
        if (!rf || !rd || timed(rf, &io_f, &w, &cpu) || timed(rd, &io_d, &w, &cpu)) {
            fprintf(stderr, "dnnl_rnn: %s: %s\n", c->name, err);
            rc = 1;
        }
        for (int r = 0; r < reps && !rc; r++) {
            /* alternate which side goes first */
            for (int s = 0; s < 2 && !rc; s++) {
                bool dnnl = (r + s) % 2;
                rc = timed(dnnl ? rd : rf, dnnl ? &io_d : &io_f, &t[(dnnl ? 1 : 0) * reps + r],
                           &t[(dnnl ? 3 : 2) * reps + r]);
            }
        }
        if (!rc) {
            double fw = median(t, reps), dw = median(t + reps, reps), fc = median(t + 2 * reps, reps),
                   dc = median(t + 3 * reps, reps);
            printf("| %s | %lld | %lld | %lld | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", c->name, (long long)c->B,
                   (long long)c->T, (long long)c->I, fw, dw, fc, dc, dc / fc, setup);
            fflush(stdout);
        }
        rnn_runner_free(rf);
        rnn_runner_free(rd);
        rnn_io_free(&io_f);
        rnn_io_free(&io_d);
        free(t);
    }
    printf("\n");
    print_load("after");
    return rc;
}
