/*
 * test_fixtures.c — loopgrad's forward values and gradients against golden
 * values from PyTorch, an independent implementation.
 *
 * tests/fixtures/ops.txt is made by tests/fixtures/make_fixtures.py (run it
 * with a Python that has torch; it documents the cases). Each case holds f64
 * or i32 inputs, the forward output y, a random cotangent ct shaped like y, and
 * for each differentiable input x the product ct . dy/dx. Here every case is
 * rebuilt from ops.h by the builder of the same name, its inputs fed as
 * placeholders, and y and d sum(y * ct) / dx (lg_grad) fetched with one
 * lg_graph_run. Every element must satisfy
 *     |got - want| <= 1e-9 + 1e-7 * |want|.
 *
 * Format loopgrad-fixture v1: whitespace-separated tokens; '#' at the start
 * of a token comments to the end of the line; the first line is exactly the
 * version line.
 *
 *     loopgrad-fixture v1
 *     case NAME
 *     input NAME DTYPE RANK D0 .. D{RANK-1}   then prod(D) values (f64 or i32)
 *     output f64 RANK D..                     then the values of y
 *     cotangent f64 RANK D..                  then ct, shaped like y
 *     grad NAME f64 RANK D..                  then d sum(y * ct) / d input NAME
 *     end
 *
 * Inputs come in the order the builder takes them; an input without a grad
 * record gets no gradient checked. The reader checks every count, shape and
 * name (fixture_reader.c, shared with test_cells.c), and reports
 * "ops.txt:LINE: what" on the first problem. A case in the
 * file without a builder, or a builder without a case, is a failure.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "fixture_reader.h"
#include "graph/loopgrad.h"

#ifndef LG_TEST_DATA_DIR
#error "LG_TEST_DATA_DIR must be the directory holding ops.txt, as a string literal"
#endif

#define FX_PATH LG_TEST_DATA_DIR "/ops.txt"

/* ---- builders: one per case, named like it ------------------------------------ */
/* X(name, expression of in[0..]) with in[] the case's inputs in file order. */

#define FX_BUILDERS(X)                                                                  \
    X(matmul_nn, lg_matmul(in[0], in[1], false, false))                                 \
    X(matmul_tn, lg_matmul(in[0], in[1], true, false))                                  \
    X(matmul_nt, lg_matmul(in[0], in[1], false, true))                                  \
    X(matmul_tt, lg_matmul(in[0], in[1], true, true))                                   \
    X(matmul_batched, lg_matmul(in[0], in[1], false, false))                            \
    X(matmul_batched_both, lg_matmul(in[0], in[1], false, false))                       \
    X(matmul_batched_ta_tb, lg_matmul(in[0], in[1], true, true))                        \
    X(add_bcast, lg_add(in[0], in[1]))                                                  \
    X(sub_bcast_both, lg_sub(in[0], in[1]))                                             \
    X(mul_bcast, lg_mul(in[0], in[1]))                                                  \
    X(mul_rank0, lg_mul(in[0], in[1]))                                                  \
    X(div_bcast, lg_div(in[0], in[1]))                                                  \
    X(scale_add_scalar, lg_add_scalar(lg_scale(in[0], -1.5), 0.25))                     \
    X(neg, lg_neg(in[0]))                                                               \
    X(exp, lg_exp(in[0]))                                                               \
    X(log, lg_log(in[0]))                                                               \
    X(sqrt, lg_sqrt(in[0]))                                                             \
    X(square, lg_square(in[0]))                                                         \
    X(pow_2_5, lg_pow(in[0], 2.5))                                                      \
    X(tanh, lg_tanh(in[0]))                                                             \
    X(sigmoid, lg_sigmoid(in[0]))                                                       \
    X(hard_sigmoid, lg_hard_sigmoid(in[0]))                                             \
    X(relu, lg_relu(in[0]))                                                             \
    X(elu_alpha1, lg_elu(in[0], 1.0))                                                   \
    X(elu_alpha05, lg_elu(in[0], 0.5))                                                  \
    X(softplus, lg_softplus(in[0]))                                                     \
    X(softsign, lg_softsign(in[0]))                                                     \
    X(abs, lg_abs(in[0]))                                                               \
    X(clip, lg_clip(in[0], -0.5, 0.7))                                                  \
    X(sum_axis1, lg_sum(in[0], (const int[]){1}, 1, false))                             \
    X(sum_axes02_keep, lg_sum(in[0], (const int[]){0, 2}, 2, true))                     \
    X(sum_all, lg_sum(in[0], NULL, 0, false))                                           \
    X(mean_last_keep, lg_mean(in[0], (const int[]){-1}, 1, true))                       \
    X(mean_axes01, lg_mean(in[0], (const int[]){0, 1}, 2, false))                       \
    X(mean_all, lg_mean(in[0], NULL, 0, false))                                         \
    X(max_axis1, lg_max(in[0], (const int[]){1}, 1, false))                             \
    X(max_axes02_keep, lg_max(in[0], (const int[]){0, 2}, 2, true))                     \
    X(max_all, lg_max(in[0], NULL, 0, false))                                           \
    X(max_ties, lg_max(in[0], (const int[]){1}, 1, false))                              \
    X(transpose_201, lg_transpose(in[0], (const int[]){2, 0, 1}))                       \
    X(transpose_reverse, lg_transpose(in[0], NULL))                                     \
    X(slice_axis1, lg_slice(in[0], 1, 1, 3))                                            \
    X(slice_to_end, lg_slice(in[0], 0, 1, -1))                                          \
    X(concat_axis1, lg_concat(in, 2, 1))                                                \
    X(concat_axis0_three, lg_concat(in, 3, 0))                                          \
    X(gather_rows, lg_gather(in[0], in[1]))                                             \
    X(gather_rank1, lg_gather(in[0], in[1]))                                            \
    X(softmax_last, lg_softmax(in[0], -1))                                              \
    X(softmax_axis0, lg_softmax(in[0], 0))                                              \
    X(softmax_large, lg_softmax(in[0], -1))                                             \
    X(log_softmax_last, lg_log_softmax(in[0], -1))                                      \
    X(log_softmax_axis0, lg_log_softmax(in[0], 0))                                      \
    X(log_softmax_large, lg_log_softmax(in[0], -1))                                     \
    X(sigmoid_xent, lg_sigmoid_xent(in[1], in[0]))                                      \
    X(softmax_xent, lg_softmax_xent(in[1], in[0]))                                      \
    X(sparse_softmax_xent, lg_sparse_softmax_xent(in[1], in[0]))                        \
    X(loss_mse, lg_mse(in[0], in[1]))                                                   \
    X(loss_mae, lg_mae(in[0], in[1]))                                                   \
    X(loss_bce_logits, lg_binary_crossentropy(in[0], in[1], true))                      \
    X(loss_bce_logits_large, lg_binary_crossentropy(in[0], in[1], true))                \
    X(loss_bce_probs, lg_binary_crossentropy(in[0], in[1], false))                      \
    X(loss_cce_logits, lg_categorical_crossentropy(in[0], in[1], true))                 \
    X(loss_cce_logits_rank3, lg_categorical_crossentropy(in[0], in[1], true))           \
    X(loss_cce_logits_large, lg_categorical_crossentropy(in[0], in[1], true))           \
    X(loss_cce_probs, lg_categorical_crossentropy(in[0], in[1], false))                 \
    X(loss_scce_logits, lg_sparse_categorical_crossentropy(in[0], in[1], true))         \
    X(loss_scce_logits_rank3, lg_sparse_categorical_crossentropy(in[0], in[1], true))   \
    X(loss_scce_logits_large, lg_sparse_categorical_crossentropy(in[0], in[1], true))   \
    X(loss_scce_probs, lg_sparse_categorical_crossentropy(in[0], in[1], false))

typedef lg_value (*fx_builder)(const lg_value *in);

#define FX_X_FN(name, expr) \
    static lg_value fx_build_##name(const lg_value *in) { return (expr); }
FX_BUILDERS(FX_X_FN)
#undef FX_X_FN

static const struct fx_builder_row {
    const char *name;
    fx_builder build;
} fx_builders[] = {
#define FX_X_ROW(name, expr) {#name, fx_build_##name},
    FX_BUILDERS(FX_X_ROW)
#undef FX_X_ROW
};

#define FX_N_BUILDERS ((int)(sizeof fx_builders / sizeof fx_builders[0]))

static fx_builder fx_find_builder(const char *name)
{
    for (int i = 0; i < FX_N_BUILDERS; i++)
        if (strcmp(fx_builders[i].name, name) == 0) return fx_builders[i].build;
    return NULL;
}

static lg_tensor *fx_tensor(const fx_array *a)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(a->dtype, a->shape, &t), LG_OK);
    int64_t n = lg_shape_numel(a->shape);
    for (int64_t i = 0; i < n; i++) lg_tensor_set(t, i, a->v[i]);
    return t;
}

/* ---- tests ----------------------------------------------------------------------- */

static fx_file fx; /* ops.txt, read once in main() before the runner forks */

START_TEST(test_file_reads)
{
    ck_assert_msg(fx.error[0] == '\0', "%s", fx.error);
    ck_assert_int_gt(fx.n, 0);
}
END_TEST

START_TEST(test_every_case_has_builder)
{
    char missing[1024] = "";
    int n = 0;
    for (int i = 0; i < fx.n; i++) {
        if (fx_find_builder(fx.cases[i].name) != NULL) continue;
        size_t used = strlen(missing);
        snprintf(missing + used, sizeof missing - used, " %s", fx.cases[i].name);
        n++;
    }
    ck_assert_msg(n == 0, "%d case(s) in ops.txt have no builder in FX_BUILDERS:%s", n, missing);
}
END_TEST

START_TEST(test_every_builder_has_case)
{
    ck_assert_msg(fx.n > 0, "ops.txt was not read: %s", fx.error);
    char missing[1024] = "";
    int n = 0;
    for (int b = 0; b < FX_N_BUILDERS; b++) {
        int i = 0;
        while (i < fx.n && strcmp(fx.cases[i].name, fx_builders[b].name) != 0) i++;
        if (i < fx.n) continue;
        size_t used = strlen(missing);
        snprintf(missing + used, sizeof missing - used, " %s", fx_builders[b].name);
        n++;
    }
    ck_assert_msg(n == 0, "%d builder(s) have no case in ops.txt (rerun make_fixtures.py?):%s", n, missing);
}
END_TEST

/* The reader on small texts: one that must read, and damaged ones that must be
 * refused with a message naming the problem. */
static const struct {
    const char *text;
    const char *error; /* a substring of the expected error; NULL: reads */
} fx_reader_rows[] = {
    {"loopgrad-fixture v1\n# c\ncase k\ninput x f64 1 2\n1 -2.5\ninput i i32 0\n3\noutput f64 0\n4\n"
     "cotangent f64 0\n0.5\ngrad x f64 1 2\n0.25 1e-3\nend\n",
     NULL},
    {"loopgrad-fixture v2\ncase k\nend\n", "version line \"loopgrad-fixture v2\", want \"loopgrad-fixture v1\""},
    {"loopgrad-fixture\n", "version line"},
    {"", "empty file"},
    {"loopgrad-fixture v1\n", "no cases"},
    {"loopgrad-fixture v1\ncase k\ninput x f64 1 3\n1 2\noutput f64 0\n", ":5: value 2 of 3 is \"output\""},
    {"loopgrad-fixture v1\ncase k\ninput x f64 1 2\n1 2\n", "file ends where a record"},
    {"loopgrad-fixture v1\ncase k\ninput x f64 1 2\n1 2\noutput f64 0\n1\ncotangent f64 0\n1\ngrad y f64 1 2\n1 2\nend\n",
     "grad y"},
    {"loopgrad-fixture v1\ncase k\ninput x f32 1 2\n1 2\n", "dtype \"f32\""},
    {"loopgrad-fixture v1\ncase k\ninput x i32 1 2\n1 2.5\n", "not an int32"},
    {"loopgrad-fixture v1\ncase k\ninput x f64 1 1\n1\noutput f64 0\n1\nend\n", "lacks its output or cotangent"},
    {"loopgrad-fixture v1\ncase k\ninput x f64 1 1\n1\noutput f64 0\n1\ncotangent f64 1 1\n1\nend\n",
     "cotangent not shaped"},
    {"loopgrad-fixture v1\ncase k\noutput f64 0\n1\ncotangent f64 0\n1\nend\ncase k\noutput f64 0\n1\n"
     "cotangent f64 0\n1\nend\n",
     "case k given twice"},
    {"loopgrad-fixture v1\ncase k\nweight x f64 0\n1\nend\n", "unknown record \"weight\""},
};

START_TEST(test_reader)
{
    const char *text = fx_reader_rows[_i].text;
    const char *want = fx_reader_rows[_i].error;
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    rewind(f);
    fx_file t;
    bool ok = fx_read(f, "t.txt", &t);
    fclose(f);
    if (want == NULL) {
        ck_assert_msg(ok, "row %d should read: %s", _i, t.error);
        ck_assert_int_eq(t.n, 1);
        const fx_case *c = &t.cases[0];
        ck_assert_str_eq(c->name, "k");
        ck_assert_int_eq(c->n_inputs, 2);
        ck_assert_int_eq(c->inputs[1].dtype, LG_I32);
        ck_assert_int_eq(c->inputs[1].shape.rank, 0);
        ck_assert(c->inputs[0].v[1] == -2.5 && c->inputs[1].v[0] == 3.0);
        ck_assert(c->grads[0].v != NULL && c->grads[0].v[1] == 1e-3 && c->grads[1].v == NULL);
        ck_assert(c->output.v[0] == 4.0 && c->cotangent.v[0] == 0.5);
        fx_file_free(&t);
    } else {
        ck_assert_msg(!ok, "row %d should be refused (%s)", _i, want);
        ck_assert_msg(strstr(t.error, want) != NULL, "row %d: error \"%s\" lacks \"%s\"", _i, t.error, want);
        ck_assert_int_eq(t.n, 0);
    }
}
END_TEST

/* One fixture case: build, differentiate, run, compare. */
START_TEST(test_case)
{
    const fx_case *c = &fx.cases[_i];
    fx_builder build = fx_find_builder(c->name);
    ck_assert_msg(build != NULL, "case %s (ops.txt:%d) has no builder", c->name, c->line);

    lg_graph *g = lg_graph_new();
    ck_assert_ptr_nonnull(g);
    lg_value in[FX_MAX_INPUTS], wrt[FX_MAX_INPUTS];
    lg_tensor *feed_t[FX_MAX_INPUTS];
    lg_feed feeds[FX_MAX_INPUTS];
    const fx_array *want_grad[FX_MAX_INPUTS];
    int n_wrt = 0;
    for (int k = 0; k < c->n_inputs; k++) {
        const fx_array *a = &c->inputs[k];
        in[k] = lg_input(g, a->name, a->dtype, a->shape);
        feed_t[k] = fx_tensor(a);
        feeds[k] = (lg_feed){in[k], feed_t[k]};
        if (c->grads[k].v != NULL) {
            wrt[n_wrt] = in[k];
            want_grad[n_wrt++] = &c->grads[k];
        }
    }
    lg_value y = build(in);
    ck_assert_msg(lg_value_ok(y), "case %s: builder failed: %s", c->name,
                  lg_graph_error(g) ? lg_graph_error(g) : "(no graph error)");

    lg_tensor *ct_t = fx_tensor(&c->cotangent);
    lg_value ct = lg_constant(g, "cotangent", ct_t);
    lg_value loss = lg_sum(lg_mul(y, ct), NULL, 0, false);
    ck_assert_msg(lg_value_ok(loss), "case %s: loss: %s", c->name, lg_graph_error(g));

    lg_value fetches[1 + FX_MAX_INPUTS];
    fetches[0] = y;
    lg_status s = lg_grad(g, loss, wrt, n_wrt, fetches + 1);
    ck_assert_msg(s == LG_OK, "case %s: lg_grad: %s: %s", c->name, lg_status_name(s), lg_last_error());

    lg_tensor *out[1 + FX_MAX_INPUTS] = {NULL};
    s = lg_graph_run(g, feeds, c->n_inputs, fetches, 1 + n_wrt, out);
    ck_assert_msg(s == LG_OK, "case %s: lg_graph_run: %s: %s", c->name, lg_status_name(s), lg_last_error());

    char msg[2048] = "";
    bool ok = fx_compare(c->name, "output", out[0], &c->output, msg, sizeof msg);
    for (int j = 0; j < n_wrt; j++) {
        char what[FX_NAME + 8];
        snprintf(what, sizeof what, "grad %s", want_grad[j]->name);
        ok &= fx_compare(c->name, what, out[1 + j], want_grad[j], msg, sizeof msg);
    }
    ck_assert_msg(ok, "case %s (ops.txt:%d) differs from PyTorch:%s", c->name, c->line, msg);

    for (int j = 0; j < 1 + n_wrt; j++) lg_tensor_free(out[j]);
    for (int k = 0; k < c->n_inputs; k++) lg_tensor_free(feed_t[k]);
    lg_tensor_free(ct_t);
    lg_graph_free(g);
}
END_TEST

/* The matmul cases again in f32: inputs cast down, the product cast back up,
 * so the product runs on the f32 GEMM provider (LG_GEMM; the f64 cases
 * always run on OpenBLAS). Tolerance: f32 rounding of the inputs and of a
 * short dot product. */
enum { FX_MAX_MATMUL = 32 };
static int matmul_cases[FX_MAX_MATMUL], n_matmul;

static bool close_f32(const lg_tensor *got, const fx_array *want, const char *what, char *msg, size_t size)
{
    int64_t n = lg_shape_numel(want->shape);
    if (!got || !lg_shape_equal(lg_tensor_shape(got), want->shape)) {
        snprintf(msg, size, "%s: wrong shape", what);
        return false;
    }
    for (int64_t i = 0; i < n; i++) {
        double g = lg_tensor_get(got, i), w = want->v[i];
        if (!(fabs(g - w) <= 1e-5 * (1.0 + fabs(w)))) {
            snprintf(msg, size, "%s[%lld]: got %.9g, want %.9g", what, (long long)i, g, w);
            return false;
        }
    }
    return true;
}

START_TEST(test_matmul_f32)
{
    const fx_case *c = &fx.cases[matmul_cases[_i]];
    fx_builder build = fx_find_builder(c->name);
    ck_assert_ptr_nonnull(build);
    lg_graph *g = lg_graph_new();
    lg_value in[FX_MAX_INPUTS], in32[FX_MAX_INPUTS], wrt[FX_MAX_INPUTS];
    lg_tensor *feed_t[FX_MAX_INPUTS];
    lg_feed feeds[FX_MAX_INPUTS];
    const fx_array *want_grad[FX_MAX_INPUTS];
    int n_wrt = 0;
    for (int k = 0; k < c->n_inputs; k++) {
        in[k] = lg_input(g, c->inputs[k].name, c->inputs[k].dtype, c->inputs[k].shape);
        in32[k] = lg_cast(in[k], LG_F32);
        feed_t[k] = fx_tensor(&c->inputs[k]);
        feeds[k] = (lg_feed){in[k], feed_t[k]};
        if (c->grads[k].v) wrt[n_wrt] = in[k], want_grad[n_wrt++] = &c->grads[k];
    }
    lg_value y = lg_cast(build(in32), LG_F64);
    lg_tensor *ct_t = fx_tensor(&c->cotangent);
    lg_value loss = lg_sum(lg_mul(y, lg_constant(g, "cotangent", ct_t)), NULL, 0, false);
    lg_value fetches[1 + FX_MAX_INPUTS] = {y};
    ck_assert_msg(lg_grad(g, loss, wrt, n_wrt, fetches + 1) == LG_OK, "%s: %s", c->name, lg_last_error());
    lg_tensor *out[1 + FX_MAX_INPUTS] = {NULL};
    ck_assert_msg(lg_graph_run(g, feeds, c->n_inputs, fetches, 1 + n_wrt, out) == LG_OK, "%s: %s", c->name,
                  lg_last_error());
    char msg[512] = "";
    bool ok = close_f32(out[0], &c->output, "output", msg, sizeof msg);
    for (int j = 0; j < n_wrt && ok; j++) ok = close_f32(out[1 + j], want_grad[j], want_grad[j]->name, msg, sizeof msg);
    ck_assert_msg(ok, "case %s (ops.txt:%d) in f32 differs from PyTorch: %s", c->name, c->line, msg);
    for (int j = 0; j < 1 + n_wrt; j++) lg_tensor_free(out[j]);
    for (int k = 0; k < c->n_inputs; k++) lg_tensor_free(feed_t[k]);
    lg_tensor_free(ct_t);
    lg_graph_free(g);
}
END_TEST

int main(void)
{
    fx_load(FX_PATH, &fx);

    Suite *s = suite_create("fixtures");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, test_file_reads);
    tcase_add_test(tc, test_every_case_has_builder);
    tcase_add_test(tc, test_every_builder_has_case);
    tcase_add_loop_test(tc, test_reader, 0, (int)(sizeof fx_reader_rows / sizeof fx_reader_rows[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("torch");
    tcase_add_loop_test(tc, test_case, 0, fx.n);
    suite_add_tcase(s, tc);

    for (int i = 0; i < fx.n && n_matmul < FX_MAX_MATMUL; i++)
        if (!strncmp(fx.cases[i].name, "matmul", 6)) matmul_cases[n_matmul++] = i;
    tc = tcase_create("torch_matmul_f32");
    tcase_add_loop_test(tc, test_matmul_f32, 0, n_matmul);
    suite_add_tcase(s, tc);

    int status = lg_check_run(s);
    fx_file_free(&fx);
    return status;
}
