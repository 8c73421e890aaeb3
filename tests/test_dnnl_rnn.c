/*
 * test_dnnl_rnn.c — the fused op's two CPU implementations, each the
 * other's reference, at the kernel level: the hand-fused kernels
 * (src/backends/cpu/cpu_rnn.c) and oneDNN's RNN primitives
 * (cpu_rnn_onednn.c: vanilla RNN, LSTM, GRU, linear-before-reset GRU), one
 * forward-training and backward step on the same random f32 data, left to
 * right and right to left: ys, h_T, c_T, dx, dh0, dc0, dW, dU and db agree
 * to 1e-4 relative (to the largest magnitude of each array), whichever of
 * the two cpu_rnn_select.c would pick; and oneDNN's side on two threads at
 * once. Built only with oneDNN (tests/dnnl_rnn_ref.c runs both sides).
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dnnl_rnn_ref.h"
#include "test_util.h"

typedef struct variant {
    const char *name;
    lg_rnn_cell cell;
} variant;

static const variant variants[] = {
    {"lstm", LG_RNN_LSTM},
    {"gru_reset_after", LG_RNN_GRU},
    {"gru_reset_before", LG_RNN_GRU_RESET_BEFORE},
    {"simple_tanh", LG_RNN_SIMPLE_TANH},
    {"simple_relu", LG_RNN_SIMPLE_RELU},
};

/* |a - b| <= tol * max(1, max |b|) elementwise. */
static void assert_close(const char *variant, const char *what, const float *a, const float *b, int64_t n)
{
    double scale = 1;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > worst) worst = fabs((double)a[i] - b[i]), at = i;
    ck_assert_msg(worst <= 1e-4 * scale, "%s %s[%lld]: fused %.8g, oneDNN %.8g (scale %.3g)", variant, what,
                  (long long)at, a[at], b[at], scale);
}

static void check_variant(const variant *v, rnn_problem p)
{
    char err[512];
    rnn_io fused, ref;
    ck_assert_int_eq(rnn_io_alloc(&fused, &p, 11), 0);
    ck_assert_int_eq(rnn_io_alloc(&ref, &p, 11), 0);
    rnn_runner *rf = rnn_runner_new(&p, LG_RNN_IMPL_FUSED, err, sizeof err);
    ck_assert_msg(rf, "%s", err);
    rnn_runner *rd = rnn_runner_new(&p, LG_RNN_IMPL_ONEDNN, err, sizeof err);
    ck_assert_msg(rd, "%s: %s", v->name, err);
    ck_assert_msg(rnn_runner_step(rf, &fused, err, sizeof err) == 0, "%s fused: %s", v->name, err);
    ck_assert_msg(rnn_runner_step(rd, &ref, err, sizeof err) == 0, "%s oneDNN: %s", v->name, err);
    int64_t T = p.T, B = p.B, I = p.I, H = p.H, GH = lg_rnn_cell_gates(p.cell) * H;
    assert_close(v->name, "ys", fused.ys, ref.ys, T * B * H);
    assert_close(v->name, "h_T", fused.h_t, ref.h_t, B * H);
    assert_close(v->name, "dx", fused.dx, ref.dx, T * B * I);
    assert_close(v->name, "dh0", fused.dh0, ref.dh0, B * H);
    assert_close(v->name, "dW", fused.dw, ref.dw, I * GH);
    assert_close(v->name, "dU", fused.du, ref.du, H * GH);
    assert_close(v->name, "db", fused.db, ref.db, rnn_bias_len(&p));
    if (p.cell == LG_RNN_LSTM) {
        assert_close(v->name, "c_T", fused.c_t, ref.c_t, B * H);
        assert_close(v->name, "dc0", fused.dc0, ref.dc0, B * H);
    }
    rnn_runner_free(rf);
    rnn_runner_free(rd);
    rnn_io_free(&fused);
    rnn_io_free(&ref);
}

/* Small shapes, and one whose H is not a multiple of the vector width;
 * both directions. */
START_TEST(matches_onednn)
{
    const variant *v = &variants[_i];
    for (int rev = 0; rev < 2; rev++) {
        check_variant(v, (rnn_problem){v->cell, 7, 5, 6, 8, rev == 1});
        check_variant(v, (rnn_problem){v->cell, 12, 3, 1, 19, rev == 1});
    }
}
END_TEST

/* A wider input (I = 40) drives the gates further from 0, over more of the
 * activations' range. */
START_TEST(matches_onednn_wide_input)
{
    const variant *v = &variants[_i];
    check_variant(v, (rnn_problem){v->cell, 9, 4, 40, 33, false});
}
END_TEST

typedef struct worker {
    rnn_problem p;
    rnn_io io;
    int rc;
    char err[512];
} worker;

/* Five oneDNN steps on one runner of the thread's own. */
static void *work(void *arg)
{
    worker *w = arg;
    rnn_runner *r = rnn_runner_new(&w->p, LG_RNN_IMPL_ONEDNN, w->err, sizeof w->err);
    w->rc = r ? 0 : -1;
    for (int k = 0; k < 5 && !w->rc; k++) w->rc = rnn_runner_step(r, &w->io, w->err, sizeof w->err);
    rnn_runner_free(r);
    return NULL;
}

/* Two threads running the same problem at once each take their own cached
 * primitives and scratchpads: both get the single-threaded results, bit for
 * bit. */
START_TEST(two_threads_same_problem)
{
    rnn_problem p = {_i ? LG_RNN_LSTM : LG_RNN_GRU, 20, 16, 8, 24, false};
    char err[512];
    rnn_io ref;
    ck_assert_int_eq(rnn_io_alloc(&ref, &p, 3), 0);
    rnn_runner *r = rnn_runner_new(&p, LG_RNN_IMPL_ONEDNN, err, sizeof err);
    ck_assert_msg(r && rnn_runner_step(r, &ref, err, sizeof err) == 0, "%s", err);
    rnn_runner_free(r);
    worker w[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        w[k] = (worker){.p = p};
        ck_assert_int_eq(rnn_io_alloc(&w[k].io, &p, 3), 0);
        ck_assert_int_eq(pthread_create(&th[k], NULL, work, &w[k]), 0);
    }
    int64_t H = p.H, GH = lg_rnn_cell_gates(p.cell) * H;
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(pthread_join(th[k], NULL), 0);
        ck_assert_msg(w[k].rc == 0, "thread %d: %s", k, w[k].err);
        ck_assert(!memcmp(w[k].io.ys, ref.ys, (size_t)(p.T * p.B * H) * sizeof(float)));
        ck_assert(!memcmp(w[k].io.dx, ref.dx, (size_t)(p.T * p.B * p.I) * sizeof(float)));
        ck_assert(!memcmp(w[k].io.dw, ref.dw, (size_t)(p.I * GH) * sizeof(float)));
        ck_assert(!memcmp(w[k].io.du, ref.du, (size_t)(H * GH) * sizeof(float)));
        ck_assert(!memcmp(w[k].io.db, ref.db, (size_t)rnn_bias_len(&p) * sizeof(float)));
        rnn_io_free(&w[k].io);
    }
    rnn_io_free(&ref);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("dnnl_rnn");
    TCase *tc = tcase_create("core");
    int n = (int)(sizeof variants / sizeof *variants);
    tcase_add_loop_test(tc, matches_onednn, 0, n);
    tcase_add_loop_test(tc, matches_onednn_wide_input, 0, n);
    tcase_add_loop_test(tc, two_threads_same_problem, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lg_check_run(suite()); }
