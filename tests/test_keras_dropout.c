/*
 * test_keras_dropout.c — the recurrent layers' dropout and recurrent
 * dropout against Keras 3 (fixtures/keras_dropout.txt, made by
 * fixtures/make_keras_dropout_fixtures.py with tied masks, as loopgrad's
 * layers apply them): SimpleRNN, LSTM and both GRUs in training mode, the
 * output sequence and the gradients of sum(y * ct) with respect to x and
 * every weight, with the fused kernels (the default) and with fuse_rnn off
 * (the generic loop).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_reader.h"
#include "graph/loopgrad.h"
#include "test_util.h"

#ifndef LG_TEST_DATA_DIR
#error "LG_TEST_DATA_DIR must be the directory holding keras_dropout.txt, as a string literal"
#endif

#define FIXTURE_PATH LG_TEST_DATA_DIR "/keras_dropout.txt"

static fx_file fx; /* read once in main() before the runner forks */

static const char *const weight_names[3] = {"kernel", "recurrent_kernel", "bias"};

/* _i: case x {fused, fuse_rnn off}. */
START_TEST(test_keras_dropout)
{
    const fx_case *c = &fx.cases[_i / 2];
    const char *passes_off = _i % 2 ? "fuse_rnn" : NULL;
    bool lstm = !strncmp(c->name, "lstm", 4), gru = !strncmp(c->name, "gru", 3);
    const fx_array *gx, *gw[3];
    const fx_array *x = fx_need(c, "x", &gx), *dm = fx_need(c, "dropout_mask", NULL);
    const fx_array *rdm = fx_need(c, "recurrent_dropout_mask", NULL), *w[3];
    for (int k = 0; k < 3; k++) w[k] = fx_need(c, weight_names[k], &gw[k]);
    int64_t units = rdm->shape.dims[1];

    lg_graph *g = lg_graph_new();
    lg_cell_opts co = lg_cell_opts_default(lstm ? LG_CELL_LSTM : gru ? LG_CELL_GRU : LG_CELL_SIMPLE_RNN, (int)units);
    co.dtype = LG_F64;
    co.reset_after = strstr(c->name, "reset_after") != NULL;
    lg_cell *cell = lg_cell_new(g, "cell", (int)x->shape.dims[2], co);
    ck_assert_ptr_nonnull(cell);
    lg_value params[3] = {lg_cell_kernel(cell), lg_cell_recurrent_kernel(cell), lg_cell_bias(cell)};
    for (int k = 0; k < 3; k++) {
        lg_tensor *t = lg_param_tensor(params[k]);
        ck_assert_msg(lg_shape_equal(lg_tensor_shape(t), w[k]->shape), "%s: %s shape", c->name, weight_names[k]);
        for (int64_t i = 0; i < lg_tensor_numel(t); i++) lg_tensor_set(t, i, w[k]->v[i]);
    }
    lg_value xv = lg_input(g, "x", LG_F64, x->shape);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    o.training = true;
    o.dropout = 0.25, o.recurrent_dropout = 0.4; /* the script's RATE, RECURRENT_RATE */
    lg_rnn_result r;
    ck_assert_msg(lg_rnn(g, NULL, cell, xv, o, &r) == LG_OK, "%s: %s", c->name, lg_last_error());
    lg_tensor *ct = fx_to_tensor(&c->cotangent);
    lg_value loss = lg_sum(lg_mul(r.output, lg_constant(g, "ct", ct)), NULL, 0, false);
    lg_value wrt[4] = {xv, params[0], params[1], params[2]}, fetch[5] = {r.output};
    ck_assert_msg(lg_grad(g, loss, wrt, 4, fetch + 1) == LG_OK, "%s: %s", c->name, lg_last_error());

    lg_tensor *feed_t[3] = {fx_to_tensor(x), fx_to_tensor(dm), fx_to_tensor(rdm)};
    lg_feed feeds[3] = {{xv, feed_t[0]}, {r.dropout_mask, feed_t[1]}, {r.recurrent_dropout_mask, feed_t[2]}};
    lg_compile_opts co_opts = lg_compile_opts_default();
    co_opts.passes_off = passes_off;
    lg_program *p = NULL;
    ck_assert_msg(lg_program_compile_opts(g, feeds, 3, fetch, 5, co_opts, &p) == LG_OK, "%s", lg_last_error());
    char *rep = lg_program_report(p);
    ck_assert_msg(passes_off ? !strstr(rep, "fused as") : strstr(rep, "recurrent dropout)") != NULL,
                  "%s (%s): the report:\n%s", c->name, passes_off ? "fuse_rnn off" : "fused", rep);
    free(rep);
    lg_tensor *out[5] = {0};
    ck_assert_msg(lg_program_run(p, feeds, 3, out) == LG_OK, "%s", lg_last_error());

    char msg[2048] = "", what[64];
    bool ok = fx_compare(c->name, "output", out[0], &c->output, msg, sizeof msg);
    ok &= fx_compare(c->name, "grad x", out[1], gx, msg, sizeof msg);
    for (int k = 0; k < 3; k++) {
        snprintf(what, sizeof what, "grad %s", weight_names[k]);
        ok &= fx_compare(c->name, what, out[2 + k], gw[k], msg, sizeof msg);
    }
    ck_assert_msg(ok, "case %s (keras_dropout.txt:%d, %s) differs from Keras:%s", c->name, c->line,
                  passes_off ? "fuse_rnn off" : "fused", msg);
    for (int k = 0; k < 5; k++) lg_tensor_free(out[k]);
    for (int k = 0; k < 3; k++) lg_tensor_free(feed_t[k]);
    lg_tensor_free(ct);
    lg_program_free(p);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_fixture_file)
{
    ck_assert_msg(fx.error[0] == 0, "%s", fx.error);
    const char *want[] = {"simple_rnn_dropout", "lstm_dropout", "gru_reset_after_dropout", "gru_reset_before_dropout"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(fx_find_case(&fx, want[i]) != NULL, "keras_dropout.txt lacks case %s", want[i]);
}
END_TEST

int main(void)
{
    fx_load(FIXTURE_PATH, &fx);
    Suite *s = suite_create("keras_dropout");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fixture_file);
    tcase_add_loop_test(tc, test_keras_dropout, 0, 2 * fx.n);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fx_file_free(&fx);
    return failed ? 1 : 0;
}
