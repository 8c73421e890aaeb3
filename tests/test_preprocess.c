/*
 * test_preprocess.c — preprocess.h: standardisation and pad_sequences
 * (with the padded lengths masking an RNN).
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkfifo */

#include "data_util.h"

/* ---- standardisation ----------------------------------------------------------------------- */

START_TEST(test_standardize)
{
    /* columns (1, 2, 3 | 10) and (2, 4, 6 | 0): training rows 0..2 give
     * means 2 and 4, population stds sqrt(2/3) and sqrt(8/3) */
    lg_tensor *t = lg_test_tensor(LG_F64, lg_shape_of(2, 4, 2), (const double[]){1, 2, 2, 4, 3, 6, 10, 0});
    lg_tensor *mean = NULL, *std = NULL;
    ASSERT_OK(lg_standardize(t, 3, &mean, &std));
    assert_shape(mean, lg_shape_of(1, 2));
    ck_assert_int_eq(lg_tensor_dtype(std), LG_F64);
    ck_assert_double_eq_tol(lg_tensor_get(mean, 0), 2, 1e-15);
    ck_assert_double_eq_tol(lg_tensor_get(mean, 1), 4, 1e-15);
    double s0 = sqrt(2.0 / 3), s1 = sqrt(8.0 / 3);
    ck_assert_double_eq_tol(lg_tensor_get(std, 0), s0, 1e-15);
    ck_assert_double_eq_tol(lg_tensor_get(std, 1), s1, 1e-15);
    const double want[8] = {-1 / s0, -2 / s1, 0, 0, 1 / s0, 2 / s1, 8 / s0, -4 / s1};
    for (int i = 0; i < 8; i++) ck_assert_double_eq_tol(lg_tensor_get(t, i), want[i], 1e-14);
    lg_tensor_free(mean);
    lg_tensor_free(std);
    lg_tensor_free(t);
    /* f32 [5], all rows training, outputs not wanted: mean 0 and std 1 after */
    t = lg_test_tensor(LG_F32, lg_shape_of(1, 5), (const float[]){3, -1, 4, 1, 5});
    ASSERT_OK(lg_standardize(t, 5, NULL, NULL));
    double m = 0, v = 0;
    for (int i = 0; i < 5; i++) m += lg_tensor_get(t, i) / 5;
    for (int i = 0; i < 5; i++) v += (lg_tensor_get(t, i) - m) * (lg_tensor_get(t, i) - m) / 5;
    ck_assert_double_eq_tol(m, 0, 1e-6);
    ck_assert_double_eq_tol(v, 1, 1e-6);
    ck_assert_double_eq_tol(lg_tensor_get(t, 0), (3 - 2.4) / sqrt(4.64), 1e-6);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_standardize_errors)
{
    lg_tensor *mean = (lg_tensor *)1, *std = (lg_tensor *)1;
    ASSERT_FAILS(lg_standardize(NULL, 1, &mean, &std), LG_ERR_INVALID_ARGUMENT, "tensor is NULL");
    ck_assert(mean == NULL && std == NULL);
    lg_tensor *i = lg_test_tensor(LG_I32, lg_shape_of(1, 3), NULL);
    ASSERT_FAILS(lg_standardize(i, 1, NULL, NULL), LG_ERR_DTYPE, "tensor [3] is i32: needs f32 or f64");
    lg_tensor *s = lg_test_tensor(LG_F32, lg_shape_of(0), NULL);
    ASSERT_FAILS(lg_standardize(s, 1, NULL, NULL), LG_ERR_SHAPE, "rank 0");
    const double vals[6] = {1, 5, 2, 5, 3, 7};
    lg_tensor *t = lg_test_tensor(LG_F64, lg_shape_of(2, 3, 2), vals);
    ASSERT_FAILS(lg_standardize(t, 0, NULL, NULL), LG_ERR_INVALID_ARGUMENT,
                 "n_train 0: must lie in [1, 3] for tensor [3, 2]");
    ASSERT_FAILS(lg_standardize(t, 4, NULL, NULL), LG_ERR_INVALID_ARGUMENT, "n_train 4");
    /* column 1 is constant over the first two rows; t stays as it was */
    ASSERT_FAILS(lg_standardize(t, 2, &mean, &std), LG_ERR_INVALID_ARGUMENT,
                 "column 1 of tensor [3, 2] has std 0 over the first 2 rows");
    ck_assert(mean == NULL && std == NULL);
    assert_values(t, vals, 6);
    lg_tensor_set(t, 2, NAN);
    ASSERT_FAILS(lg_standardize(t, 3, NULL, NULL), LG_ERR_INVALID_ARGUMENT, "column 0 of tensor [3, 2] has std nan");
    lg_tensor_free(i);
    lg_tensor_free(s);
    lg_tensor_free(t);
}
END_TEST

/* ---- pad_sequences ------------------------------------------------------------------------- */

static const int32_t S1[] = {1}, S2[] = {2, 3}, S3[] = {4, 5, 6};
static const int32_t *const SEQS[] = {S1, S2, S3};
static const int64_t LENS[] = {1, 2, 3};

static void pad_ok(lg_pad_opts o, const double *want, int cols, const double *want_len)
{
    lg_tensor *x = NULL, *len = NULL;
    ASSERT_OK(lg_pad_sequences(SEQS, LENS, 3, o, &x, &len));
    ck_assert_int_eq(lg_tensor_dtype(x), LG_I32);
    ck_assert_int_eq(lg_tensor_dtype(len), LG_I32);
    assert_shape(x, lg_shape_of(2, 3, cols));
    assert_values(x, want, 3 * cols);
    assert_values(len, want_len, 3);
    lg_tensor_free(x);
    lg_tensor_free(len);
}

START_TEST(test_pad_sequences)
{
    lg_pad_opts o = lg_pad_opts_default();
    ck_assert(o.maxlen == 0 && o.padding == LG_PAD_PRE && o.truncating == LG_PAD_PRE && o.value == 0);
    /* Keras's defaults: pre padding to the longest */
    pad_ok(o, (const double[]){0, 0, 1, 0, 2, 3, 4, 5, 6}, 3, (const double[]){1, 2, 3});
    o.padding = LG_PAD_POST;
    pad_ok(o, (const double[]){1, 0, 0, 2, 3, 0, 4, 5, 6}, 3, (const double[]){1, 2, 3});
    /* maxlen 2: pre truncating keeps the last two of [4, 5, 6], post the first two */
    o = lg_pad_opts_default();
    o.maxlen = 2;
    pad_ok(o, (const double[]){0, 1, 2, 3, 5, 6}, 2, (const double[]){1, 2, 2});
    o.truncating = LG_PAD_POST;
    pad_ok(o, (const double[]){0, 1, 2, 3, 4, 5}, 2, (const double[]){1, 2, 2});
    o.padding = LG_PAD_POST;
    o.value = -1;
    pad_ok(o, (const double[]){1, -1, 2, 3, 4, 5}, 2, (const double[]){1, 2, 2});
    /* maxlen above the longest */
    o = lg_pad_opts_default();
    o.maxlen = 4;
    o.value = 9;
    pad_ok(o, (const double[]){9, 9, 9, 1, 9, 9, 2, 3, 9, 4, 5, 6}, 4, (const double[]){1, 2, 3});
}
END_TEST

START_TEST(test_pad_sequences_empty)
{
    /* an empty sequence (NULL allowed) is a row of padding with length 0 */
    const int32_t *seqs[] = {S2, NULL};
    const int64_t lens[] = {2, 0};
    lg_tensor *x = NULL, *len = NULL;
    lg_pad_opts o = lg_pad_opts_default();
    o.value = 7;
    ASSERT_OK(lg_pad_sequences(seqs, lens, 2, o, &x, &len));
    assert_values(x, (const double[]){2, 3, 7, 7}, 4);
    assert_values(len, (const double[]){2, 0}, 2);
    lg_tensor_free(x);
    lg_tensor_free(len);
    /* all empty: width 0; lengths not wanted */
    const int64_t zeros[] = {0, 0};
    ASSERT_OK(lg_pad_sequences(seqs, zeros, 2, o, &x, NULL));
    assert_shape(x, lg_shape_of(2, 2, 0));
    lg_tensor_free(x);
    /* no sequences with a maxlen: [0, maxlen] */
    o.maxlen = 3;
    ASSERT_OK(lg_pad_sequences(NULL, NULL, 0, o, &x, &len));
    assert_shape(x, lg_shape_of(2, 0, 3));
    assert_shape(len, lg_shape_of(1, 0));
    lg_tensor_free(x);
    lg_tensor_free(len);
}
END_TEST

START_TEST(test_pad_sequences_errors)
{
    lg_tensor *x = (lg_tensor *)1, *len = (lg_tensor *)1;
    lg_pad_opts o = lg_pad_opts_default();
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, 3, o, NULL, &len), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    ck_assert_ptr_null(len);
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, -1, o, &x, &len), LG_ERR_INVALID_ARGUMENT, "n -1: must be >= 0");
    ck_assert(x == NULL && len == NULL);
    ASSERT_FAILS(lg_pad_sequences(NULL, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "seqs or lens is NULL with n 3");
    ASSERT_FAILS(lg_pad_sequences(SEQS, NULL, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT, "seqs or lens is NULL");
    const int64_t neg[] = {1, -2, 3};
    ASSERT_FAILS(lg_pad_sequences(SEQS, neg, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT, "lens[1] is -2: must be >= 0");
    const int32_t *holes[] = {S1, NULL, S3};
    ASSERT_FAILS(lg_pad_sequences(holes, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "seqs[1] is NULL with lens[1] 2");
    o.maxlen = -1;
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "maxlen -1: must lie in [0, 2147483647] (0: the longest)");
    o.maxlen = (int64_t)INT32_MAX + 1;
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT, "maxlen 2147483648");
    /* the longest above INT32_MAX with maxlen 0 (never read: the check comes first) */
    const int64_t huge[] = {1, 3000000000LL, 3};
    o = lg_pad_opts_default();
    ASSERT_FAILS(lg_pad_sequences(SEQS, huge, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "the longest sequence has 3000000000 values: above 2147483647, give a maxlen");
    o.padding = (lg_pad_side)2;
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "padding 2: not an lg_pad_side");
    o = lg_pad_opts_default();
    o.truncating = (lg_pad_side)-1;
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "truncating -1: not an lg_pad_side");
    o = lg_pad_opts_default();
    ASSERT_FAILS(lg_pad_sequences(NULL, NULL, 0, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "no sequences and maxlen 0: no longest sequence to pad to");
    ck_assert(x == NULL && len == NULL);
}
END_TEST

/* Post padding feeds lg_rnn's lengths masking directly: the last output of
 * a masked SimpleRNN over a padded batch equals the unpadded run. */
START_TEST(test_pad_post_masks_rnn)
{
    const int32_t a[] = {1, 2}, b[] = {3, 1, 2};
    const int32_t *seqs[] = {a, b};
    const int64_t lens[] = {2, 3};
    lg_pad_opts po = lg_pad_opts_default();
    po.padding = LG_PAD_POST;
    lg_tensor *ids = NULL, *len = NULL;
    ASSERT_OK(lg_pad_sequences(seqs, lens, 2, po, &ids, &len));
    assert_values(ids, (const double[]){1, 2, 0, 3, 1, 2}, 6);
    ASSERT_OK(lg_lengths_check(len, 3));
    lg_graph *g = lg_graph_new();
    lg_value in = lg_input(g, "ids", LG_I32, lg_shape_of(2, -1, -1));
    lg_value ln = lg_input(g, "len", LG_I32, lg_shape_of(1, -1));
    lg_value emb = lg_embedding(g, "emb", in, 4, 3, lg_embedding_opts_default(), NULL);
    lg_cell *c = lg_cell_new(g, "rnn", 3, lg_cell_opts_default(LG_CELL_SIMPLE_RNN, 2));
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.lengths = ln;
    lg_rnn_result r;
    ASSERT_OK(lg_rnn(g, NULL, c, emb, ro, &r));
    ck_assert_msg(lg_graph_error(g) == NULL, "%s", lg_graph_error(g));
    for (int p = 0; p < lg_graph_param_count(g); p++)
        ASSERT_OK(lg_init_uniform(lg_param_tensor(lg_graph_param(g, p)), -1, 1, 3, (uint64_t)p));
    lg_feed feeds[2] = {{in, ids}, {ln, len}};
    lg_tensor *out = lg_test_run1(g, feeds, 2, r.output); /* [2, 2] */
    /* example 0 alone, unpadded */
    lg_tensor *ids0 = lg_test_tensor(LG_I32, lg_shape_of(2, 1, 2), a);
    lg_tensor *len0 = lg_test_tensor(LG_I32, lg_shape_of(1, 1), (const int32_t[]){2});
    lg_feed f0[2] = {{in, ids0}, {ln, len0}};
    lg_tensor *out0 = lg_test_run1(g, f0, 2, r.output);
    for (int j = 0; j < 2; j++) ck_assert_double_eq_tol(lg_tensor_get(out, j), lg_tensor_get(out0, j), 1e-6);
    lg_tensor_free(out0);
    lg_tensor_free(len0);
    lg_tensor_free(ids0);
    lg_tensor_free(out);
    lg_cell_free(c);
    lg_graph_free(g);
    lg_tensor_free(ids);
    lg_tensor_free(len);
}
END_TEST

static Suite *preprocess_suite(void)
{
    Suite *s = suite_create("preprocess");
    TCase *preprocess = tcase_create("preprocess");
    tcase_add_test(preprocess, test_standardize);
    tcase_add_test(preprocess, test_standardize_errors);
    tcase_add_test(preprocess, test_pad_sequences);
    tcase_add_test(preprocess, test_pad_sequences_empty);
    tcase_add_test(preprocess, test_pad_sequences_errors);
    tcase_add_test(preprocess, test_pad_post_masks_rnn);
    suite_add_tcase(s, preprocess);
    return s;
}

int main(void) { return lg_check_run(preprocess_suite()); }
