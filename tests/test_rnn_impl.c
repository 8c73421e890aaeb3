/*
 * test_rnn_impl.c — the fused rnn op's two CPU implementations through
 * whole compiled programs (src/backends/cpu/cpu_rnn_select.c): recurrent
 * layers that the fuse_rnn pass fuses, compiled once with the hand-fused
 * kernels forced and once with oneDNN's primitives forced, whatever the
 * table would pick. The loss, the gradients of every parameter and of x, and
 * the parameters after three SGD steps agree to f32 tolerance (1e-4 of the
 * largest magnitude). Masked and f64 problems stay on the fused kernels, and
 * a bad LG_RNN_IMPL is an error that names it. Built only with oneDNN.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_rnn_select.h"
#include "graph/loopgrad.h"
#include "test_util.h"

enum { B = 4, T = 6, F = 5, U = 7, STEPS = 3 };

typedef struct rnn_case {
    const char *name;
    lg_cell_kind kind;
    lg_rnn_cell fused;
    bool reset_after, relu, no_bias, backwards, stacked, bidir;
} rnn_case;

static const rnn_case cases[] = {
    {.name = "lstm", .kind = LG_CELL_LSTM, .fused = LG_RNN_LSTM},
    {.name = "lstm backwards, no bias", .kind = LG_CELL_LSTM, .fused = LG_RNN_LSTM, .no_bias = true, .backwards = true},
    {.name = "gru reset_after stacked", .kind = LG_CELL_GRU, .fused = LG_RNN_GRU, .reset_after = true, .stacked = true},
    {.name = "gru reset_after bidirectional", .kind = LG_CELL_GRU, .fused = LG_RNN_GRU, .reset_after = true, .bidir = true},
    {.name = "gru reset_before backwards", .kind = LG_CELL_GRU, .fused = LG_RNN_GRU_RESET_BEFORE, .backwards = true},
    {.name = "simple_rnn tanh bidirectional", .kind = LG_CELL_SIMPLE_RNN, .fused = LG_RNN_SIMPLE_TANH, .bidir = true},
    {.name = "simple_rnn relu, no bias", .kind = LG_CELL_SIMPLE_RNN, .fused = LG_RNN_SIMPLE_RELU, .relu = true, .no_bias = true},
};
enum { N_CASES = sizeof cases / sizeof *cases };

/* What one implementation gave: the loss and gradients of the first run
 * (fetch order), then the parameters after STEPS SGD steps. */
typedef struct result {
    lg_tensor *first[32];
    lg_tensor *params[16];
    int n_fetch, n_params;
} result;

static lg_value weighted_sum(lg_graph *g, lg_value y)
{
    lg_tensor *r = lg_test_uniform(lg_value_dtype(y), lg_value_shape(y), 7, 3, -1, 1);
    lg_value w = lg_constant(g, "loss_weights", r);
    lg_tensor_free(r);
    return lg_sum(lg_mul(y, w), NULL, 0, false);
}

static lg_value model(lg_graph *g, const rnn_case *c, lg_value x)
{
    lg_cell_opts co = lg_cell_opts_default(c->kind, U);
    co.seed = 9;
    co.reset_after = c->reset_after;
    co.use_bias = !c->no_bias;
    if (c->relu) co.activation = LG_ACT_RELU;
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    o.go_backwards = c->backwards;
    lg_cell *c1 = lg_cell_new(g, "c1", F, co), *c2 = NULL;
    ck_assert_ptr_nonnull(c1);
    lg_value y;
    if (c->bidir) {
        c2 = lg_cell_new(g, "c2", F, co);
        lg_bidirectional_result br;
        ck_assert_int_eq(lg_bidirectional(g, NULL, c1, c2, x, LG_MERGE_CONCAT, o, &br), LG_OK);
        y = br.output;
    } else {
        lg_rnn_result r;
        ck_assert_int_eq(lg_rnn(g, NULL, c1, x, o, &r), LG_OK);
        if (c->stacked) {
            c2 = lg_cell_new(g, "c2", U, co);
            ck_assert_int_eq(lg_rnn(g, "second", c2, r.output, o, &r), LG_OK);
        }
        y = r.output;
    }
    if (!c->no_bias) /* biases away from 0, so that their gradients matter */
        for (int i = 0; i < lg_graph_param_count(g); i++)
            if (strstr(lg_value_name(lg_graph_param(g, i)), "bias"))
                ck_assert_int_eq(lg_init_uniform(lg_param_tensor(lg_graph_param(g, i)), -0.5, 0.5, 5, (uint64_t)i),
                                 LG_OK);
    lg_cell_free(c1);
    lg_cell_free(c2);
    return weighted_sum(g, y);
}

static void run_case(const rnn_case *c, lg_rnn_impl impl, result *res)
{
    ck_assert_int_eq(lg_cpu_rnn_impl_force(impl), LG_OK);
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, B, T, F));
    lg_value loss = model(g, c, x);
    int n_p = lg_graph_param_count(g);
    ck_assert_int_le(n_p, 15);
    lg_value wrt[16], fetch[32];
    for (int i = 0; i < n_p; i++) wrt[i] = lg_graph_param(g, i);
    wrt[n_p] = x;
    fetch[0] = loss;
    ck_assert_int_eq(lg_grad(g, loss, wrt, n_p + 1, fetch + 1), LG_OK);
    lg_sgd_opts so = lg_sgd_opts_default();
    so.learning_rate = 0.1;
    lg_optimizer *opt = NULL;
    ck_assert_int_eq(lg_optimizer_sgd(g, wrt, n_p, so, &opt), LG_OK);
    lg_tensor *xt = lg_test_uniform(LG_F32, lg_shape_of(3, B, T, F), 1, 4, -1, 1);
    lg_feed feed = {x, xt};
    lg_program *prog = NULL; /* the loops became rnn ops */
    ck_assert_msg(lg_program_compile(g, &feed, 1, fetch, n_p + 2, &prog) == LG_OK, "%s", lg_last_error());
    char *rep = lg_program_report(prog);
    ck_assert_msg(rep && strstr(rep, "fused as") && !strstr(rep, "not fused"), "%s: %s", c->name, rep);
    free(rep);
    lg_program_free(prog);
    memset(res, 0, sizeof *res);
    res->n_fetch = n_p + 2, res->n_params = n_p;
    ck_assert_msg(lg_graph_run(g, &feed, 1, fetch, res->n_fetch, res->first) == LG_OK, "%s", lg_last_error());
    lg_tensor *out[32] = {0};
    for (int i = 0; i < n_p; i++) out[1 + i] = lg_optimizer_grads(opt)[i];
    for (int s = 0; s < STEPS; s++) {
        ck_assert_msg(lg_graph_run(g, &feed, 1, fetch, n_p + 1, out) == LG_OK, "%s", lg_last_error());
        ck_assert_int_eq(lg_optimizer_step(opt), LG_OK);
    }
    for (int i = 0; i < n_p; i++) ck_assert_int_eq(lg_tensor_clone(lg_param_tensor(wrt[i]), &res->params[i]), LG_OK);
    lg_tensor_free(out[0]);
    lg_tensor_free(xt);
    lg_optimizer_free(opt);
    lg_graph_free(g);
    ck_assert_int_eq(lg_cpu_rnn_impl_force(LG_RNN_IMPL_COUNT), LG_OK);
}

static void result_free(result *r)
{
    for (int i = 0; i < r->n_fetch; i++) lg_tensor_free(r->first[i]);
    for (int i = 0; i < r->n_params; i++) lg_tensor_free(r->params[i]);
}

/* |a - b| <= 1e-4 max(1, max |b|) elementwise. */
static void assert_close(const lg_tensor *a, const lg_tensor *b, const char *name, const char *what, int k)
{
    int64_t n = lg_tensor_numel(b);
    ck_assert_int_eq(lg_tensor_numel(a), n);
    double scale = 1;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(lg_tensor_get(b, i)));
    for (int64_t i = 0; i < n; i++) {
        double x = lg_tensor_get(a, i), y = lg_tensor_get(b, i);
        ck_assert_msg(fabs(x - y) <= 1e-4 * scale, "%s: %s %d [%lld]: oneDNN %.8g, fused %.8g", name, what, k,
                      (long long)i, x, y);
    }
}

/* Both implementations plan this problem when forced (so the comparison
 * below is of two different kernels). */
static void assert_plans(lg_rnn_cell cell, unsigned flags, lg_dtype dt, lg_rnn_impl forced, lg_rnn_impl expect)
{
    lg_rnn_problem p = {cell, flags, dt, T, B, F, U};
    lg_rnn_impl got;
    int64_t width, scratch;
    ck_assert_int_eq(lg_cpu_rnn_impl_force(forced), LG_OK);
    ck_assert_msg(lg_cpu_rnn_plan(&p, &got, &width, &scratch) == LG_OK, "%s", lg_last_error());
    ck_assert_int_eq(lg_cpu_rnn_impl_force(LG_RNN_IMPL_COUNT), LG_OK);
    ck_assert_msg(got == expect, "%s flags %u %s forced to %s: planned %s", lg_rnn_cell_name(cell), flags,
                  lg_dtype_name(dt), lg_rnn_impl_name(forced), lg_rnn_impl_name(got));
    ck_assert_int_gt(width, 0);
    ck_assert_int_gt(scratch, 0);
}

START_TEST(test_onednn_equals_fused)
{
    const rnn_case *c = &cases[_i];
    unsigned flags = (c->no_bias ? 0 : LG_RNN_BIAS) | (c->backwards ? LG_RNN_REVERSE : 0);
    assert_plans(c->fused, flags, LG_F32, LG_RNN_IMPL_ONEDNN, LG_RNN_IMPL_ONEDNN);
    assert_plans(c->fused, flags, LG_F32, LG_RNN_IMPL_FUSED, LG_RNN_IMPL_FUSED);
    result fused, onednn;
    run_case(c, LG_RNN_IMPL_FUSED, &fused);
    run_case(c, LG_RNN_IMPL_ONEDNN, &onednn);
    for (int k = 0; k < fused.n_fetch; k++)
        assert_close(onednn.first[k], fused.first[k], c->name, k ? "gradient" : "loss", k);
    for (int k = 0; k < fused.n_params; k++)
        assert_close(onednn.params[k], fused.params[k], c->name, "parameter after SGD steps", k);
    result_free(&fused);
    result_free(&onednn);
}
END_TEST

/* The loss of a forward-only program (its rnn nodes keep no workspace;
 * oneDNN runs its inference forward) under impl. */
static lg_tensor *forward_only_loss(const rnn_case *c, lg_rnn_impl impl)
{
    ck_assert_int_eq(lg_cpu_rnn_impl_force(impl), LG_OK);
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, B, T, F));
    lg_value loss = model(g, c, x);
    lg_tensor *xt = lg_test_uniform(LG_F32, lg_shape_of(3, B, T, F), 1, 4, -1, 1);
    lg_feed feed = {x, xt};
    lg_program *prog = NULL;
    ck_assert_msg(lg_program_compile(g, &feed, 1, &loss, 1, &prog) == LG_OK, "%s", lg_last_error());
    char *rep = lg_program_report(prog);
    ck_assert_msg(rep && strstr(rep, "forward only") && !strstr(rep, "not fused"), "%s: %s", c->name, rep);
    free(rep);
    lg_tensor *out = NULL;
    ck_assert_msg(lg_program_run(prog, &feed, 1, &out) == LG_OK, "%s", lg_last_error());
    lg_program_free(prog);
    lg_tensor_free(xt);
    lg_graph_free(g);
    ck_assert_int_eq(lg_cpu_rnn_impl_force(LG_RNN_IMPL_COUNT), LG_OK);
    return out;
}

/* Forward-only programs: oneDNN's inference forward equals the fused
 * kernels' forward and its own training forward; neither plans a
 * workspace. */
START_TEST(test_forward_only)
{
    const rnn_case *c = &cases[_i];
    unsigned flags = (c->no_bias ? 0 : LG_RNN_BIAS) | (c->backwards ? LG_RNN_REVERSE : 0) | LG_RNN_FORWARD_ONLY;
    for (lg_rnn_impl impl = 0; impl < LG_RNN_IMPL_COUNT; impl++) {
        lg_rnn_problem p = {c->fused, flags, LG_F32, T, B, F, U};
        lg_rnn_impl got;
        int64_t width, scratch;
        ck_assert_int_eq(lg_cpu_rnn_impl_force(impl), LG_OK);
        ck_assert_msg(lg_cpu_rnn_plan(&p, &got, &width, &scratch) == LG_OK, "%s", lg_last_error());
        ck_assert_int_eq(lg_cpu_rnn_impl_force(LG_RNN_IMPL_COUNT), LG_OK);
        ck_assert_int_eq(got, impl);
        ck_assert_int_eq(width, 0);
    }
    lg_tensor *fused = forward_only_loss(c, LG_RNN_IMPL_FUSED), *onednn = forward_only_loss(c, LG_RNN_IMPL_ONEDNN);
    assert_close(onednn, fused, c->name, "forward-only loss", 0);
    result trained;
    run_case(c, LG_RNN_IMPL_ONEDNN, &trained);
    assert_close(onednn, trained.first[0], c->name, "forward-only loss against the training program's", 0);
    result_free(&trained);
    lg_tensor_free(fused);
    lg_tensor_free(onednn);
}
END_TEST

/* Masks (lengths) and f64 stay on the fused kernels even when oneDNN is
 * forced. */
START_TEST(test_masked_and_f64_stay_fused)
{
    for (lg_rnn_cell cell = 0; cell < LG_RNN_CELL_COUNT; cell++) {
        assert_plans(cell, LG_RNN_BIAS | LG_RNN_MASK, LG_F32, LG_RNN_IMPL_ONEDNN, LG_RNN_IMPL_FUSED);
        assert_plans(cell, LG_RNN_BIAS, LG_F64, LG_RNN_IMPL_ONEDNN, LG_RNN_IMPL_FUSED);
    }
}
END_TEST

/* Check runs each test in a child process, which reads LG_RNN_IMPL at its
 * first plan. */
START_TEST(test_bad_env_value)
{
    setenv("LG_RNN_IMPL", "cudnn", 1);
    lg_rnn_problem p = {LG_RNN_LSTM, LG_RNN_BIAS, LG_F32, T, B, F, U};
    lg_rnn_impl got;
    int64_t width, scratch;
    ck_assert_int_eq(lg_cpu_rnn_plan(&p, &got, &width, &scratch), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "LG_RNN_IMPL='cudnn': expected fused or onednn"), "%s", lg_last_error());
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rnn_impl");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_onednn_equals_fused, 0, N_CASES);
    tcase_add_loop_test(tc, test_forward_only, 0, N_CASES);
    tcase_add_test(tc, test_masked_and_f64_stay_fused);
    suite_add_tcase(s, tc);
    const char *fork = getenv("CK_FORK");
    if (!fork || strcmp(fork, "no")) {
        TCase *env = tcase_create("env");
        tcase_add_test(env, test_bad_env_value);
        suite_add_tcase(s, env);
    }
    return s;
}

int main(void) { return lg_check_run(suite()); }
