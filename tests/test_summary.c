/*
 * test_summary.c — the Keras-style model summary (summary.h): the table of a
 * model built from lg_rnn, lg_batch_norm and lg_dense against parameter
 * counts worked out by hand, the row for parameters outside layers, shared
 * cells, digit grouping, wide names, and every error.
 */
#include <check.h>
#include <string.h>

#include "test_util.h"

static char *summary_of(const lg_graph *g)
{
    char *s = NULL;
    lg_status st = lg_graph_summary_string(g, &s);
    ck_assert_msg(st == LG_OK, "%s: %s", lg_status_name(st), lg_last_error());
    ck_assert_ptr_nonnull(s);
    return s;
}

static lg_cell *cell(lg_graph *g, const char *name, lg_cell_kind kind, int in, int units)
{
    lg_cell *c = lg_cell_new(g, name, in, lg_cell_opts_default(kind, units));
    ck_assert_ptr_nonnull(c);
    return c;
}

/* x [B, 5, 3] -> SimpleRNN(4) sequences -> BatchNorm -> LSTM(2) -> Dense(3),
 * and two parameters outside any layer. */
START_TEST(test_model_rows_and_totals)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, -1, 5, 3));
    lg_cell *c1 = cell(g, "rnn_cell", LG_CELL_SIMPLE_RNN, 3, 4), *c2 = cell(g, "lstm_cell", LG_CELL_LSTM, 4, 2);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    lg_rnn_result r1, r2;
    ck_assert_int_eq(lg_rnn(g, "rnn", c1, x, o, &r1), LG_OK);
    lg_batch_norm_result bn;
    ck_assert_int_eq(lg_batch_norm(g, "bn", r1.output, lg_batch_norm_opts_default(), &bn), LG_OK);
    o.return_sequences = false;
    ck_assert_int_eq(lg_rnn(g, "lstm", c2, bn.output, o, &r2), LG_OK);
    lg_dense(g, "out", r2.output, 3, lg_dense_opts_default());
    lg_param(g, "temperature", LG_F32, lg_shape_of(1, 1));
    lg_param(g, "scale", LG_F32, lg_shape_of(2, 2, 2));
    ck_assert_ptr_null(lg_graph_error(g));

    /* SimpleRNN: kernel 3x4 + recurrent 4x4 + bias 4 = 32
     * BatchNormalization: gamma, beta, moving mean and variance, 4 each = 16
     *   (the moving statistics, 8, are not trainable)
     * LSTM: kernel 4x8 + recurrent 2x8 + bias 8 = 56
     * Dense: kernel 2x3 + bias 3 = 9
     * outside layers: 1 + 2x2 = 5
     * total 118, trainable 110, non-trainable 8 */
    static const char want[] =
        "__________________________________________________________________\n"
        " Layer (type)                 Output Shape              Param #\n"
        "==================================================================\n"
        " rnn (SimpleRNN)              (None, 5, 4)              32\n"
        " bn (BatchNormalization)      (None, 5, 4)              16\n"
        " lstm (LSTM)                  (None, 2)                 56\n"
        " out (Dense)                  (None, 3)                 9\n"
        " (other parameters)           -                         5\n"
        "==================================================================\n"
        "Total params: 118\n"
        "Trainable params: 110\n"
        "Non-trainable params: 8\n"
        "__________________________________________________________________\n";
    char *s = summary_of(g);
    ck_assert_str_eq(s, want);
    free(s);
    lg_cell_free(c1), lg_cell_free(c2);
    lg_graph_free(g);
}
END_TEST

/* A cell run by two layers counts in both rows and once in the totals; no
 * "(other parameters)" row when every parameter is in a layer. */
START_TEST(test_shared_cell)
{
    lg_graph *g = lg_graph_new();
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(3, -1, -1, 2));
    lg_value b = lg_input(g, "b", LG_F32, lg_shape_of(3, 8, -1, 2));
    lg_cell *c = cell(g, "gru_cell", LG_CELL_GRU, 2, 3);
    lg_rnn_opts o = lg_rnn_opts_default();
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, "left", c, a, o, &r), LG_OK);
    ck_assert_int_eq(lg_rnn(g, "right", c, b, o, &r), LG_OK);
    /* GRU (reset_after): kernel 2x9 + recurrent 3x9 + bias 2x9 = 63 */
    char *s = summary_of(g);
    ck_assert_ptr_nonnull(strstr(s, "\n left (GRU)                   (None, 3)                 63\n"));
    ck_assert_ptr_nonnull(strstr(s, "\n right (GRU)                  (8, 3)                    63\n"));
    ck_assert_ptr_null(strstr(s, "other parameters"));
    ck_assert_ptr_nonnull(strstr(s, "\nTotal params: 63\nTrainable params: 63\nNon-trainable params: 0\n"));
    free(s);
    lg_cell_free(c);
    lg_graph_free(g);
}
END_TEST

/* Counts group their digits; a long name widens its column and every rule
 * with it; control characters show as \xNN; a rank-1 output is (None,). */
START_TEST(test_wide_table)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 999));
    const char *longname = "a_layer_name_much_longer_than_the_first_column";
    lg_dense(g, longname, x, 1000, lg_dense_opts_default()); /* 999 * 1000 + 1000 */
    lg_dense(g, "two\nlines", x, 1, lg_dense_opts_default()); /* 999 + 1 */
    lg_scope_push(g, "custom");
    lg_graph_add_layer(g, "Custom", lg_input(g, "v", LG_F32, lg_shape_of(1, -1)), NULL, 0);
    lg_scope_pop(g);
    ck_assert_ptr_null(lg_graph_error(g));
    char *s = summary_of(g);
    ck_assert_ptr_nonnull(strstr(s, " a_layer_name_much_longer_than_the_first_column (Dense)   (None, 1000)"));
    ck_assert_ptr_nonnull(strstr(s, "1,000,000\n"));
    ck_assert_ptr_nonnull(strstr(s, " two\\x0alines (Dense) "));
    ck_assert_ptr_nonnull(strstr(s, " custom (Custom) "));
    ck_assert_ptr_nonnull(strstr(s, "(None,) "));
    ck_assert_ptr_nonnull(strstr(s, "\nTotal params: 1,001,000\n"));
    /* the rules are as wide as the widest row */
    size_t width = strcspn(s, "\n");
    ck_assert_uint_eq(width, 1 + strlen(longname) + strlen(" (Dense)") + 3 + 26 + 10);
    for (const char *line = s; *line; line += strcspn(line, "\n") + 1)
        if (line[0] == '_' || line[0] == '=') ck_assert_uint_eq(strcspn(line, "\n"), width);
    free(s);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_empty_graph)
{
    lg_graph *g = lg_graph_new();
    char *s = summary_of(g);
    ck_assert_ptr_nonnull(strstr(s, "Param #\n=====")); /* no rows */
    ck_assert_ptr_nonnull(strstr(s, "Total params: 0\nTrainable params: 0\nNon-trainable params: 0\n"));
    free(s);
    /* the stream form prints the same */
    FILE *f = tmpfile();
    ck_assert_int_eq(lg_graph_summary(g, f), LG_OK);
    ck_assert_int_gt(ftell(f), 100);
    fclose(f);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_errors)
{
    char *s = (char *)"unchanged";
    ck_assert_int_eq(lg_graph_summary_string(NULL, &s), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "graph is NULL"));
    ck_assert_ptr_null(s);
    lg_graph *g = lg_graph_new();
    ck_assert_int_eq(lg_graph_summary(g, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "stream is NULL"));
    ck_assert_int_eq(lg_graph_summary_string(g, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "out is NULL"));
    /* a stream that fails */
    FILE *full = fopen("/dev/full", "w");
    ck_assert_ptr_nonnull(full);
    ck_assert_int_eq(lg_graph_summary(g, full), LG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "write failed"));
    fclose(full);
    /* a graph with an error */
    lg_matmul(lg_input(g, "a", LG_F32, lg_shape_of(2, 2, 3)), lg_input(g, "b", LG_F32, lg_shape_of(2, 4, 5)), false,
              false);
    ck_assert_int_eq(lg_graph_summary_string(g, &s), LG_ERR_GRAPH);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), lg_graph_error(g)));
    ck_assert_ptr_null(s);
    lg_graph_free(g);
}
END_TEST

static Suite *summary_suite(void)
{
    Suite *s = suite_create("summary");
    TCase *tc = tcase_create("summary");
    tcase_add_test(tc, test_model_rows_and_totals);
    tcase_add_test(tc, test_shared_cell);
    tcase_add_test(tc, test_wide_table);
    tcase_add_test(tc, test_empty_graph);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lg_check_run(summary_suite()); }
