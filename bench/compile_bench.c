/*
 * compile_bench.c — median milliseconds of one training step (loss and the
 * gradients of every parameter, no optimizer) and one inference step of a
 * Keras-style LSTM layer, and the memory each program plans. For measuring
 * the compile passes and the loop driver before and after a change:
 *
 *     build/bench/compile_bench UNITS BATCH STEPS INPUT [REPEATS]
 *     build/bench/compile_bench 256 64 100 256     # LSTM(256) B64 T100
 *     build/bench/compile_bench 64 64 28 28        # LSTM(64) on 28 image rows
 *     LG_PASSES_OFF=hoist build/bench/compile_bench 64 64 28 28
 *
 * The model: x [B, T, I] f32 -> LSTM(units) -> last h [B, u]; the loss is
 * sum(h). Uses only the public API.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "graph/loopgrad.h"

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* Median wall and process-CPU ms of `repeats` runs of p after one warm-up
 * run (CPU time is steadier on a loaded machine; with one OpenBLAS thread
 * it is the work done). */
static void median_ms(lg_program *p, const lg_feed *f, lg_tensor **out, int repeats, double *wall, double *cpu)
{
    double *w = malloc((size_t)repeats * sizeof *w), *c = malloc((size_t)repeats * sizeof *c);
    if (!w || !c || lg_program_run(p, f, 1, out) != LG_OK) {
        fprintf(stderr, "run: %s\n", lg_last_error());
        exit(1);
    }
    for (int r = 0; r < repeats; r++) {
        double w0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
        if (lg_program_run(p, f, 1, out) != LG_OK) {
            fprintf(stderr, "run: %s\n", lg_last_error());
            exit(1);
        }
        w[r] = clock_ms(CLOCK_MONOTONIC) - w0;
        c[r] = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    *wall = median(w, repeats);
    *cpu = median(c, repeats);
    free(w), free(c);
}

static lg_program *compile(lg_graph *g, const lg_feed *f, const lg_value *fetch, int n)
{
    lg_program *p = NULL;
    if (lg_program_compile(g, f, 1, fetch, n, &p) != LG_OK) {
        fprintf(stderr, "compile: %s\n", lg_last_error());
        exit(1);
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s UNITS BATCH STEPS INPUT [REPEATS]\n", argv[0]);
        return 2;
    }
    int units = atoi(argv[1]), batch = atoi(argv[2]), steps = atoi(argv[3]), input = atoi(argv[4]);
    int repeats = argc > 5 ? atoi(argv[5]) : 10;
    if (units < 1 || batch < 1 || steps < 1 || input < 1 || repeats < 1) {
        fprintf(stderr, "all sizes must be >= 1\n");
        return 2;
    }
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, batch, steps, input));
    lg_cell *cell = lg_cell_new(g, "lstm", input, lg_cell_opts_default(LG_CELL_LSTM, units));
    lg_rnn_result r;
    if (!cell || lg_rnn(g, NULL, cell, x, lg_rnn_opts_default(), &r) != LG_OK) {
        fprintf(stderr, "build: %s\n", lg_last_error());
        return 1;
    }
    lg_value loss = lg_sum(r.output, NULL, 0, false);
    lg_value fetch[4] = {loss};
    lg_value wrt[3] = {lg_cell_kernel(cell), lg_cell_recurrent_kernel(cell), lg_cell_bias(cell)};
    if (lg_grad(g, loss, wrt, 3, fetch + 1) != LG_OK) {
        fprintf(stderr, "grad: %s\n", lg_last_error());
        return 1;
    }
    lg_tensor *xt = NULL;
    lg_tensor_new(LG_F32, lg_shape_of(3, batch, steps, input), &xt);
    lg_init_uniform(xt, -1, 1, 1, 0);
    lg_feed f[1] = {{x, xt}};
    lg_program *infer = compile(g, f, &r.output, 1), *train = compile(g, f, fetch, 4);
    lg_tensor *out[4] = {NULL};
    double infer_ms, infer_cpu, train_ms, train_cpu;
    median_ms(infer, f, out, repeats, &infer_ms, &infer_cpu);
    lg_tensor_free(out[0]), out[0] = NULL;
    median_ms(train, f, out, repeats, &train_ms, &train_cpu);
    printf("LSTM(%d) B%d T%d I%d, %d repeats\n", units, batch, steps, input, repeats);
    printf("train step: %.2f ms median (cpu %.2f ms), %.2f MiB planned\n", train_ms, train_cpu,
           lg_program_peak_bytes(train) / 1048576.0);
    printf("inference step: %.2f ms median (cpu %.2f ms), %.2f MiB planned\n", infer_ms, infer_cpu,
           lg_program_peak_bytes(infer) / 1048576.0);
    if (getenv("LG_BENCH_REPORT")) {
        char *rep = lg_program_report(train);
        printf("%s", rep ? rep : "");
        free(rep);
        rep = lg_program_report(infer);
        printf("%s", rep ? rep : "");
        free(rep);
    }
    for (int i = 0; i < 4; i++) lg_tensor_free(out[i]);
    lg_program_free(infer), lg_program_free(train);
    lg_tensor_free(xt), lg_cell_free(cell), lg_graph_free(g);
    return 0;
}
