/*
 * test_graph.c — the graph builder (graph.h, ops.h) through its public API:
 * recorded errors and their propagation, names and scopes, shape and dtype
 * inference (with -1 dims), parameters, and introspection.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "graph/loopgrad.h"

LG_TEST_GRAPH_FIXTURE

static bool starts_with(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Asserts v is valid with the expected dtype and shape. */
#define ck_assert_value(v, dtype, shape)                                                   \
    do {                                                                                  \
        lg_value v_ = (v);                                                                \
        char want_[64], got_[64];                                                         \
        ck_assert_msg(lg_value_ok(v_), "invalid value; graph error: %s",                   \
                      lg_graph_error(g) ? lg_graph_error(g) : "(none)");                  \
        ck_assert_int_eq(lg_value_dtype(v_), (dtype));                                    \
        ck_assert_msg(lg_shape_equal(lg_value_shape(v_), (shape)), "shape %s, want %s",   \
                      lg_shape_str(lg_value_shape(v_), got_, sizeof got_),                \
                      lg_shape_str((shape), want_, sizeof want_));                        \
    } while (0)

/* ---- recorded errors ------------------------------------------------------ */

START_TEST(test_fresh_graph_has_no_error)
{
    ck_assert_ptr_null(lg_graph_error(g));
    ck_assert_int_eq(lg_graph_node_count(g), 0);
    ck_assert_int_eq(lg_graph_param_count(g), 0);
    lg_graph_free(NULL);
}
END_TEST

START_TEST(test_matmul_error_names_op_and_shapes)
{
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(2, 2, 3));
    lg_value b = lg_input(g, "b", LG_F32, lg_shape_of(2, 4, 5));
    ck_assert_ptr_null(lg_graph_error(g));
    lg_value c = lg_matmul(a, b, false, false);
    ck_assert(!lg_value_ok(c));
    const char *err = lg_graph_error(g);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "matmul"));
    ck_assert_ptr_nonnull(strstr(err, "[2, 3]"));
    ck_assert_ptr_nonnull(strstr(err, "[4, 5]"));
}
END_TEST

START_TEST(test_add_shape_error_message)
{
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(1, 3));
    lg_value b = lg_input(g, "b", LG_F32, lg_shape_of(1, 4));
    ck_assert(!lg_value_ok(lg_add(a, b)));
    const char *err = lg_graph_error(g);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "add"));
    ck_assert_ptr_nonnull(strstr(err, "[3]"));
    ck_assert_ptr_nonnull(strstr(err, "[4]"));
}
END_TEST

START_TEST(test_dtype_mismatch_error)
{
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(1, 3));
    lg_value b = lg_input(g, "b", LG_F64, lg_shape_of(1, 3));
    ck_assert(!lg_value_ok(lg_mul(a, b)));
    ck_assert_ptr_nonnull(lg_graph_error(g));
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "mul"));
}
END_TEST

START_TEST(test_int_to_float_op_error)
{
    lg_value i = lg_input(g, "i", LG_I32, lg_shape_of(1, 3));
    ck_assert(!lg_value_ok(lg_exp(i)));
    ck_assert_ptr_nonnull(lg_graph_error(g));
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "exp"));
}
END_TEST

START_TEST(test_invalid_propagates_without_new_error)
{
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(2, 2, 3));
    lg_value b = lg_input(g, "b", LG_F32, lg_shape_of(2, 4, 5));
    lg_value bad = lg_matmul(a, b, false, false);
    ck_assert(!lg_value_ok(bad));
    char first[512];
    ck_assert_ptr_nonnull(lg_graph_error(g));
    strncpy(first, lg_graph_error(g), sizeof first - 1);
    first[sizeof first - 1] = '\0';

    /* builders given the invalid value return invalid values and keep the message */
    ck_assert(!lg_value_ok(lg_tanh(bad)));
    ck_assert(!lg_value_ok(lg_add(bad, a)));
    ck_assert(!lg_value_ok(lg_add(a, bad)));
    ck_assert(!lg_value_ok(lg_sum(bad, NULL, 0, false)));
    lg_value parts[2];
    lg_split(bad, 0, NULL, 2, parts);
    ck_assert(!lg_value_ok(parts[0]) && !lg_value_ok(parts[1]));
    ck_assert_str_eq(lg_graph_error(g), first);

    /* a second, unrelated error does not replace the first either */
    lg_value c = lg_input(g, "c", LG_F32, lg_shape_of(1, 7));
    ck_assert(!lg_value_ok(lg_add(a, c)));
    ck_assert_str_eq(lg_graph_error(g), first);

    /* the graph stays usable for inspection */
    ck_assert_int_ge(lg_graph_node_count(g), 2);
    ck_assert_str_eq(lg_graph_node_name(g, a.node), "a");
    ck_assert(lg_shape_equal(lg_value_shape(b), lg_shape_of(2, 4, 5)));
}
END_TEST

START_TEST(test_explicit_invalid_value)
{
    lg_value v = lg_value_invalid();
    ck_assert(!lg_value_ok(v));
    ck_assert_int_eq(lg_value_rank(v), -1);
    ck_assert_int_eq(lg_value_shape(v).rank, -1);
    ck_assert_str_eq(lg_value_name(v), "");
    ck_assert(!lg_value_ok(lg_tanh(v)));
    ck_assert(!lg_value_ok(lg_add(v, v)));
}
END_TEST

START_TEST(test_mixing_graphs_is_error)
{
    lg_graph *h = lg_graph_new();
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(1, 3));
    lg_value b = lg_input(h, "b", LG_F32, lg_shape_of(1, 3));
    ck_assert(!lg_value_ok(lg_add(a, b)));
    ck_assert(lg_graph_error(g) != NULL || lg_graph_error(h) != NULL);
    const lg_value xs[2] = {a, b};
    ck_assert(!lg_value_ok(lg_concat(xs, 2, 0)));
    lg_graph_free(h);
}
END_TEST

START_TEST(test_null_graph_input)
{
    lg_value v = lg_input(NULL, "x", LG_F32, lg_shape_of(1, 3));
    ck_assert(!lg_value_ok(v));
    ck_assert(!lg_value_ok(lg_param(NULL, "w", LG_F32, lg_shape_of(1, 3))));
    ck_assert(!lg_value_ok(lg_scalar(NULL, LG_F32, 1.0)));
    ck_assert(!lg_value_ok(lg_constant(NULL, "c", NULL)));
    lg_scope_push(NULL, "a");
    lg_scope_pop(NULL);
    lg_graph_error(NULL); /* any answer, no crash */
    ck_assert_int_eq(lg_graph_node_count(NULL), 0);
    ck_assert_int_eq(lg_graph_param_count(NULL), 0);
}
END_TEST

START_TEST(test_input_zero_dim_is_error)
{
    ck_assert(!lg_value_ok(lg_input(g, "x", LG_F32, lg_shape_of(2, 0, 3))));
    ck_assert_ptr_nonnull(lg_graph_error(g));
}
END_TEST

START_TEST(test_param_zero_dim_is_error)
{
    ck_assert(!lg_value_ok(lg_param(g, "w", LG_F32, lg_shape_of(2, 3, 0))));
    ck_assert_ptr_nonnull(lg_graph_error(g));
    ck_assert_int_eq(lg_graph_param_count(g), 0);
}
END_TEST

START_TEST(test_param_unknown_dim_is_error)
{
    ck_assert(!lg_value_ok(lg_param(g, "w", LG_F32, lg_shape_of(2, -1, 3))));
    ck_assert_ptr_nonnull(lg_graph_error(g));
    ck_assert_int_eq(lg_graph_param_count(g), 0);
}
END_TEST

START_TEST(test_input_bad_shape_and_dtype)
{
    ck_assert(!lg_value_ok(lg_input(g, "x", LG_F32, lg_shape_of(7, 1, 1, 1, 1, 1, 1, 1))));
    ck_assert_ptr_nonnull(lg_graph_error(g));
    lg_graph *h = lg_graph_new();
    ck_assert(!lg_value_ok(lg_input(h, "x", LG_DTYPE_COUNT, lg_shape_of(1, 2))));
    ck_assert_ptr_nonnull(lg_graph_error(h));
    lg_graph_free(h);
    h = lg_graph_new();
    ck_assert(!lg_value_ok(lg_input(h, "x", LG_F32, lg_shape_of(1, -2))));
    ck_assert_ptr_nonnull(lg_graph_error(h));
    lg_graph_free(h);
}
END_TEST

START_TEST(test_duplicate_param_name)
{
    lg_value w1 = lg_param(g, "w", LG_F32, lg_shape_of(1, 3));
    ck_assert(lg_value_ok(w1));
    ck_assert(!lg_value_ok(lg_param(g, "w", LG_F32, lg_shape_of(1, 3))));
    ck_assert_ptr_nonnull(lg_graph_error(g));
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "w"));
    ck_assert_int_eq(lg_graph_param_count(g), 1);
}
END_TEST

START_TEST(test_same_param_name_in_other_scope_ok)
{
    lg_scope_push(g, "a");
    lg_value w1 = lg_param(g, "w", LG_F32, lg_shape_of(1, 3));
    lg_scope_pop(g);
    lg_scope_push(g, "b");
    lg_value w2 = lg_param(g, "w", LG_F32, lg_shape_of(1, 3));
    lg_scope_pop(g);
    ck_assert(lg_value_ok(w1) && lg_value_ok(w2));
    ck_assert_ptr_null(lg_graph_error(g));
    ck_assert_str_eq(lg_value_name(w1), "a/w");
    ck_assert_str_eq(lg_value_name(w2), "b/w");
    ck_assert_int_eq(lg_graph_param_count(g), 2);
}
END_TEST

/* ---- scopes and names ------------------------------------------------------ */

START_TEST(test_scoped_names)
{
    lg_scope_push(g, "enc");
    lg_scope_push(g, "dense");
    lg_value w = lg_param(g, "kernel", LG_F32, lg_shape_of(2, 3, 4));
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 3));
    lg_value y = lg_tanh(lg_matmul(x, w, false, false));
    lg_scope_pop(g);
    lg_value z = lg_relu(y);
    lg_scope_pop(g);
    lg_value top = lg_input(g, "top", LG_F32, lg_shape_of(1, 2));
    lg_scope_pop(g); /* pop without push is ignored */
    lg_value top2 = lg_input(g, "top2", LG_F32, lg_shape_of(1, 2));
    ck_assert_ptr_null(lg_graph_error(g));

    ck_assert_str_eq(lg_value_name(w), "enc/dense/kernel");
    ck_assert_str_eq(lg_value_name(x), "enc/dense/x");
    /* unnamed nodes take their op's name inside the scope */
    ck_assert_msg(starts_with(lg_value_name(y), "enc/dense/tanh"), "got %s", lg_value_name(y));
    ck_assert_msg(starts_with(lg_value_name(z), "enc/relu"), "got %s", lg_value_name(z));
    ck_assert_str_eq(lg_value_name(top), "top");
    ck_assert_str_eq(lg_value_name(top2), "top2");
    ck_assert(lg_value_same(lg_graph_find_param(g, "enc/dense/kernel"), w));
    ck_assert(!lg_value_ok(lg_graph_find_param(g, "kernel")));
    ck_assert(!lg_value_ok(lg_graph_find_param(g, "enc/dense/x")));
}
END_TEST

START_TEST(test_empty_scope_name_is_error)
{
    lg_scope_push(g, "");
    ck_assert_ptr_nonnull(lg_graph_error(g));
}
END_TEST

START_TEST(test_slash_scope_name_is_error)
{
    lg_scope_push(g, "a/b");
    ck_assert_ptr_nonnull(lg_graph_error(g));
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "a/b"));
}
END_TEST

START_TEST(test_null_scope_name_is_error)
{
    lg_scope_push(g, NULL);
    ck_assert_ptr_nonnull(lg_graph_error(g));
    ck_assert_str_eq(lg_graph_error(g), "lg_scope_push: the scope name is NULL");
}
END_TEST

/* ---- shape and dtype inference --------------------------------------------- */

START_TEST(test_infer_matmul)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 3));
    lg_value w = lg_param(g, "w", LG_F32, lg_shape_of(2, 3, 4));
    ck_assert_value(lg_matmul(x, w, false, false), LG_F32, lg_shape_of(2, -1, 4));
    lg_value wt = lg_param(g, "wt", LG_F32, lg_shape_of(2, 4, 3));
    ck_assert_value(lg_matmul(x, wt, false, true), LG_F32, lg_shape_of(2, -1, 4));
    lg_value a = lg_input(g, "a", LG_F64, lg_shape_of(2, 3, 5));
    lg_value b = lg_input(g, "b", LG_F64, lg_shape_of(2, 3, 2));
    ck_assert_value(lg_matmul(a, b, true, false), LG_F64, lg_shape_of(2, 5, 2));
    /* batched: [B, T, K] x [K, N] and [B, M, K] x [B, K, N] */
    lg_value s = lg_input(g, "s", LG_F32, lg_shape_of(3, -1, 7, 3));
    ck_assert_value(lg_matmul(s, w, false, false), LG_F32, lg_shape_of(3, -1, 7, 4));
    lg_value bb = lg_input(g, "bb", LG_F32, lg_shape_of(3, 2, 3, 6));
    lg_value cc = lg_input(g, "cc", LG_F32, lg_shape_of(3, 2, 6, 4));
    ck_assert_value(lg_matmul(bb, cc, false, false), LG_F32, lg_shape_of(3, 2, 3, 4));
    ck_assert_ptr_null(lg_graph_error(g));
}
END_TEST

START_TEST(test_infer_broadcast)
{
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(3, -1, 1, 3));
    lg_value b = lg_input(g, "b", LG_F32, lg_shape_of(2, 4, 1));
    ck_assert_value(lg_add(a, b), LG_F32, lg_shape_of(3, -1, 4, 3));
    lg_value c = lg_input(g, "c", LG_F32, lg_shape_of(0));
    ck_assert_value(lg_mul(a, c), LG_F32, lg_shape_of(3, -1, 1, 3));
    lg_value d = lg_input(g, "d", LG_F32, lg_shape_of(1, 3));
    ck_assert_value(lg_sub(d, a), LG_F32, lg_shape_of(3, -1, 1, 3));
    lg_value i = lg_input(g, "i", LG_I32, lg_shape_of(2, 2, 1));
    lg_value j = lg_input(g, "j", LG_I32, lg_shape_of(1, 5));
    ck_assert_value(lg_add(i, j), LG_I32, lg_shape_of(2, 2, 5));
    ck_assert_value(lg_compare(i, j, LG_CMP_LT), LG_I32, lg_shape_of(2, 2, 5));
    lg_value m = lg_input(g, "m", LG_I32, lg_shape_of(2, 4, 1));
    ck_assert_value(lg_where(m, b, lg_scalar(g, LG_F32, 0.0)), LG_F32, lg_shape_of(2, 4, 1));
    ck_assert_value(lg_scale(a, 2.0), LG_F32, lg_shape_of(3, -1, 1, 3));
    ck_assert_ptr_null(lg_graph_error(g));
}
END_TEST

START_TEST(test_infer_unary_and_cast)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, -1, 5));
    ck_assert_value(lg_tanh(x), LG_F64, lg_shape_of(2, -1, 5));
    ck_assert_value(lg_pow(x, 3.0), LG_F64, lg_shape_of(2, -1, 5));
    ck_assert_value(lg_clip(x, -1, 1), LG_F64, lg_shape_of(2, -1, 5));
    ck_assert_value(lg_cast(x, LG_I32), LG_I32, lg_shape_of(2, -1, 5));
    ck_assert_value(lg_cast(x, LG_F32), LG_F32, lg_shape_of(2, -1, 5));
    ck_assert_value(lg_stop_gradient(x), LG_F64, lg_shape_of(2, -1, 5));
    lg_value i = lg_input(g, "i", LG_I32, lg_shape_of(1, 4));
    ck_assert_value(lg_neg(i), LG_I32, lg_shape_of(1, 4));
    ck_assert_value(lg_abs(i), LG_I32, lg_shape_of(1, 4));
    ck_assert_ptr_null(lg_graph_error(g));
}
END_TEST

START_TEST(test_infer_reductions)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, -1, 4, 5));
    const int ax1[] = {1};
    const int axneg[] = {-1};
    const int ax02[] = {0, 2};
    ck_assert_value(lg_sum(x, NULL, 0, false), LG_F32, lg_shape_of(0));
    ck_assert_value(lg_sum(x, NULL, 0, true), LG_F32, lg_shape_of(3, 1, 1, 1));
    ck_assert_value(lg_sum(x, ax1, 1, false), LG_F32, lg_shape_of(2, -1, 5));
    ck_assert_value(lg_mean(x, axneg, 1, true), LG_F32, lg_shape_of(3, -1, 4, 1));
    ck_assert_value(lg_max(x, ax02, 2, false), LG_F32, lg_shape_of(1, 4));
    ck_assert_value(lg_numel(x, ax02, 2), LG_F32, lg_shape_of(0));
    const int bad[] = {3};
    ck_assert(!lg_value_ok(lg_sum(x, bad, 1, false)));
    ck_assert_ptr_nonnull(lg_graph_error(g));
}
END_TEST

START_TEST(test_infer_shape_ops)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, -1, 4, 6));
    ck_assert_value(lg_reshape(x, lg_shape_of(3, -1, 2, 12)), LG_F32, lg_shape_of(3, -1, 2, 12));
    lg_value y = lg_input(g, "y", LG_F32, lg_shape_of(2, 4, 6));
    ck_assert_value(lg_reshape(y, lg_shape_of(2, -1, 3)), LG_F32, lg_shape_of(2, 8, 3));
    ck_assert_value(lg_transpose(x, NULL), LG_F32, lg_shape_of(3, 6, 4, -1));
    const int perm[] = {0, 2, 1};
    ck_assert_value(lg_transpose(x, perm), LG_F32, lg_shape_of(3, -1, 6, 4));
    ck_assert_value(lg_expand_dims(x, 1), LG_F32, lg_shape_of(4, -1, 1, 4, 6));
    ck_assert_value(lg_expand_dims(x, -1), LG_F32, lg_shape_of(4, -1, 4, 6, 1));
    lg_value s = lg_input(g, "s", LG_F32, lg_shape_of(3, 2, 1, 5));
    ck_assert_value(lg_squeeze(s, 1), LG_F32, lg_shape_of(2, 2, 5));
    ck_assert_value(lg_slice(x, 2, 1, 3), LG_F32, lg_shape_of(3, -1, 4, 3));
    ck_assert_value(lg_slice(x, -1, 2, -1), LG_F32, lg_shape_of(3, -1, 4, 4));
    lg_value z = lg_input(g, "z", LG_F32, lg_shape_of(3, -1, 4, 2));
    const lg_value xs[2] = {x, z};
    ck_assert_value(lg_concat(xs, 2, -1), LG_F32, lg_shape_of(3, -1, 4, 8));
    ck_assert_value(lg_broadcast_to(s, lg_shape_of(3, 2, 7, 5)), LG_F32, lg_shape_of(3, 2, 7, 5));
    ck_assert_ptr_null(lg_graph_error(g));

    /* a reshape that cannot hold the elements is an error */
    ck_assert(!lg_value_ok(lg_reshape(y, lg_shape_of(2, 5, 5))));
    ck_assert_ptr_nonnull(lg_graph_error(g));
}
END_TEST

START_TEST(test_infer_squeeze_non_one_is_error)
{
    lg_value s = lg_input(g, "s", LG_F32, lg_shape_of(2, 2, 3));
    ck_assert(!lg_value_ok(lg_squeeze(s, 1)));
    ck_assert_ptr_nonnull(lg_graph_error(g));
}
END_TEST

START_TEST(test_infer_index_and_nn)
{
    lg_value table = lg_param(g, "emb", LG_F32, lg_shape_of(2, 10, 4));
    lg_value idx = lg_input(g, "idx", LG_I32, lg_shape_of(2, -1, 3));
    ck_assert_value(lg_gather(table, idx), LG_F32, lg_shape_of(3, -1, 3, 4));
    ck_assert_value(lg_one_hot(idx, 5, LG_F64), LG_F64, lg_shape_of(3, -1, 3, 5));
    lg_value logits = lg_input(g, "logits", LG_F32, lg_shape_of(3, -1, 3, 5));
    ck_assert_value(lg_softmax(logits, -1), LG_F32, lg_shape_of(3, -1, 3, 5));
    ck_assert_value(lg_log_softmax(logits, 1), LG_F32, lg_shape_of(3, -1, 3, 5));
    ck_assert_value(lg_sparse_softmax_xent(idx, logits), LG_F32, lg_shape_of(2, -1, 3));
    ck_assert_value(lg_softmax_xent(logits, logits), LG_F32, lg_shape_of(2, -1, 3));
    ck_assert_value(lg_sigmoid_xent(logits, logits), LG_F32, lg_shape_of(3, -1, 3, 5));
    ck_assert_value(lg_mse(logits, logits), LG_F32, lg_shape_of(0));
    ck_assert_value(lg_sparse_categorical_crossentropy(idx, logits, true), LG_F32, lg_shape_of(0));
    ck_assert_ptr_null(lg_graph_error(g));
    /* gather needs i32 indices */
    lg_value fidx = lg_input(g, "fidx", LG_F32, lg_shape_of(1, 3));
    ck_assert(!lg_value_ok(lg_gather(table, fidx)));
    ck_assert_ptr_nonnull(lg_graph_error(g));
}
END_TEST

START_TEST(test_split_outputs)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 6));
    lg_value parts[3];
    const int64_t sizes[2] = {2, 4};
    lg_split(x, 1, sizes, 2, parts);
    ck_assert_value(parts[0], LG_F32, lg_shape_of(2, -1, 2));
    ck_assert_value(parts[1], LG_F32, lg_shape_of(2, -1, 4));
    ck_assert_int_eq(parts[0].node, parts[1].node);
    ck_assert_int_eq(parts[0].output, 0);
    ck_assert_int_eq(parts[1].output, 1);
    ck_assert_str_eq(lg_graph_node_op(g, parts[0].node), "split");
    ck_assert_int_eq(lg_graph_node_output_count(g, parts[0].node), 2);
    ck_assert(!lg_value_same(parts[0], parts[1]));

    lg_split(x, -1, NULL, 3, parts);
    for (int i = 0; i < 3; i++) {
        ck_assert_value(parts[i], LG_F32, lg_shape_of(2, -1, 2));
        ck_assert_int_eq(parts[i].output, i);
    }
    ck_assert_int_eq(lg_graph_node_output_count(g, parts[0].node), 3);
    ck_assert_ptr_null(lg_graph_error(g));
}
END_TEST

START_TEST(test_split_bad_sizes)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, 3, 6));
    lg_value parts[2] = {{0}};
    const int64_t sizes[2] = {2, 3};
    lg_split(x, 1, sizes, 2, parts);
    ck_assert(!lg_value_ok(parts[0]) && !lg_value_ok(parts[1]));
    ck_assert_ptr_nonnull(lg_graph_error(g));
    ck_assert_ptr_nonnull(strstr(lg_graph_error(g), "split"));
}
END_TEST

START_TEST(test_split_uneven_equal_pieces)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 7));
    lg_value parts[2] = {{0}};
    lg_split(x, 0, NULL, 2, parts);
    ck_assert(!lg_value_ok(parts[0]) && !lg_value_ok(parts[1]));
    ck_assert_ptr_nonnull(lg_graph_error(g));
}
END_TEST

/* ---- sources, parameters, introspection ------------------------------------- */

START_TEST(test_constants_and_scalars)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(2, 2, 3), &t), LG_OK);
    lg_tensor_fill(t, 1.5);
    lg_value c = lg_constant(g, "c", t);
    lg_tensor_free(t); /* the graph holds a copy */
    ck_assert_value(c, LG_F64, lg_shape_of(2, 2, 3));
    ck_assert_str_eq(lg_value_name(c), "c");
    ck_assert_str_eq(lg_graph_node_op(g, c.node), "const");
    lg_value s = lg_scalar(g, LG_I32, 3.0);
    ck_assert_value(s, LG_I32, lg_shape_of(0));
    ck_assert_int_eq(lg_value_rank(s), 0);
    ck_assert_ptr_null(lg_param_tensor(c));
    ck_assert_ptr_null(lg_graph_error(g));
}
END_TEST

START_TEST(test_params)
{
    lg_scope_push(g, "dense");
    lg_value w = lg_param(g, "kernel", LG_F32, lg_shape_of(2, 3, 4));
    lg_value b = lg_param(g, "bias", LG_F64, lg_shape_of(1, 4));
    lg_scope_pop(g);
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 3));
    ck_assert_int_eq(lg_graph_param_count(g), 2);
    ck_assert(lg_value_same(lg_graph_param(g, 0), w));
    ck_assert(lg_value_same(lg_graph_param(g, 1), b));
    ck_assert(!lg_value_ok(lg_graph_param(g, 2)));
    ck_assert(!lg_value_ok(lg_graph_param(g, -1)));
    ck_assert(lg_value_same(lg_graph_find_param(g, "dense/bias"), b));
    ck_assert(!lg_value_ok(lg_graph_find_param(g, "dense/nothing")));
    ck_assert(!lg_value_ok(lg_graph_find_param(g, NULL)));

    lg_tensor *wt = lg_param_tensor(w);
    ck_assert_ptr_nonnull(wt);
    ck_assert_int_eq(lg_tensor_dtype(wt), LG_F32);
    ck_assert(lg_shape_equal(lg_tensor_shape(wt), lg_shape_of(2, 3, 4)));
    for (int i = 0; i < 12; i++) ck_assert(lg_tensor_get(wt, i) == 0.0);
    /* the same tensor every time: writes stick */
    lg_tensor_set(wt, 5, 2.0);
    ck_assert_ptr_eq(lg_param_tensor(w), wt);
    ck_assert(lg_tensor_get(lg_param_tensor(lg_graph_param(g, 0)), 5) == 2.0);

    lg_tensor *bt = lg_param_tensor(b);
    ck_assert_int_eq(lg_tensor_dtype(bt), LG_F64);
    ck_assert(lg_shape_equal(lg_tensor_shape(bt), lg_shape_of(1, 4)));
    ck_assert_ptr_null(lg_param_tensor(x));
    ck_assert_ptr_null(lg_param_tensor(lg_value_invalid()));
    ck_assert_str_eq(lg_graph_node_op(g, w.node), "param");
    ck_assert_str_eq(lg_graph_node_op(g, x.node), "input");
}
END_TEST

START_TEST(test_introspection)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 3));
    lg_value w = lg_param(g, "w", LG_F32, lg_shape_of(2, 3, 4));
    lg_value b = lg_param(g, "b", LG_F32, lg_shape_of(1, 4));
    lg_value mm = lg_matmul(x, w, false, false);
    lg_value y = lg_tanh(lg_add(mm, b));
    ck_assert_ptr_null(lg_graph_error(g));
    ck_assert_int_eq(lg_graph_node_count(g), 6);

    static const char *const ops[] = {"input", "param", "param", "matmul", "add", "tanh"};
    for (int i = 0; i < 6; i++) {
        ck_assert_str_eq(lg_graph_node_op(g, i), ops[i]);
        ck_assert(!lg_graph_node_is_grad(g, i));
        ck_assert_int_eq(lg_graph_node_output_count(g, i), 1);
    }
    ck_assert_str_eq(lg_graph_node_name(g, 0), "x");
    ck_assert_str_eq(lg_graph_node_name(g, 1), "w");
    ck_assert_int_eq(x.node, 0);
    ck_assert_int_eq(y.node, 5);

    ck_assert_int_eq(lg_graph_node_input_count(g, x.node), 0);
    ck_assert_int_eq(lg_graph_node_input_count(g, mm.node), 2);
    ck_assert(lg_value_same(lg_graph_node_input(g, mm.node, 0), x));
    ck_assert(lg_value_same(lg_graph_node_input(g, mm.node, 1), w));
    ck_assert(!lg_value_ok(lg_graph_node_input(g, mm.node, 2)));
    ck_assert_int_eq(lg_graph_node_input_count(g, y.node), 1);
    ck_assert_int_eq(lg_graph_node_input(g, y.node, 0).node, 4);

    /* out of range nodes are answered, not crashed on */
    ck_assert_int_eq(lg_graph_node_output_count(g, 99), 0);
    ck_assert_int_eq(lg_graph_node_input_count(g, -1), 0);
    ck_assert(!lg_graph_node_is_grad(g, 99));
    ck_assert(!lg_value_ok(lg_graph_node_input(g, 99, 0)));
}
END_TEST

START_TEST(test_value_same)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 3));
    lg_value y = lg_input(g, "y", LG_F32, lg_shape_of(1, 3));
    lg_value x2 = x;
    ck_assert(lg_value_same(x, x2));
    ck_assert(!lg_value_same(x, y));
    lg_graph *h = lg_graph_new();
    lg_value hx = lg_input(h, "x", LG_F32, lg_shape_of(1, 3));
    ck_assert_int_eq(hx.node, x.node);
    ck_assert(!lg_value_same(x, hx));
    lg_graph_free(h);
}
END_TEST

START_TEST(test_op_registry)
{
    int n = lg_op_count();
    ck_assert_int_gt(n, 10);
    bool saw_matmul = false, saw_input = false, saw_split = false;
    for (int i = 0; i < n; i++) {
        const char *name = lg_op_name(i);
        ck_assert_ptr_nonnull(name);
        ck_assert_int_gt(strlen(name), 0);
        for (int j = 0; j < i; j++) ck_assert_str_ne(name, lg_op_name(j));
        saw_matmul |= strcmp(name, "matmul") == 0;
        saw_input |= strcmp(name, "input") == 0;
        saw_split |= strcmp(name, "split") == 0;
    }
    ck_assert(saw_matmul && saw_input && saw_split);
    ck_assert_str_eq(lg_op_name(-1), "");
    ck_assert_str_eq(lg_op_name(n), "");
}
END_TEST

START_TEST(test_node_ops_are_registered)
{
    /* every node's op name is one the registry lists */
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, 2, 3));
    lg_value parts[3];
    lg_split(x, 1, NULL, 3, parts);
    lg_value y = lg_sum(lg_sigmoid(parts[0]), NULL, 0, false);
    (void)y;
    ck_assert_ptr_null(lg_graph_error(g));
    for (int i = 0; i < lg_graph_node_count(g); i++) {
        bool found = false;
        for (int k = 0; k < lg_op_count(); k++) found |= strcmp(lg_graph_node_op(g, i), lg_op_name(k)) == 0;
        ck_assert_msg(found, "node %d op '%s' not registered", i, lg_graph_node_op(g, i));
    }
}
END_TEST

/* Builders given bad arguments, one row each: x is f32 [2, 3], i is i32 [2].
 * Each must return an invalid value and record an error naming its op. */
static const char *const bad_builder_ops[] = {
    "transpose", "slice", "reshape", "one_hot", "pow", "expand_dims", "sum", "sum",
    "softmax", "cast", "broadcast_to", "matmul", "where", "dropout", "sparse_softmax_xent",
    "gather", "squeeze", "sum_to", "div", "compare", "clip",
};

static lg_value build_bad(int row, lg_value x, lg_value i)
{
    static const int dup_perm[2] = {0, 0}, ax9[1] = {9}, ax_rep[2] = {1, 1};
    switch (row) {
    case 0: return lg_transpose(x, dup_perm);
    case 1: return lg_slice(x, 1, 2, 5);
    case 2: return lg_reshape(x, lg_shape_of(2, -1, -1));
    case 3: return lg_one_hot(x, 3, LG_F32);
    case 4: return lg_pow(i, 2.0);
    case 5: return lg_expand_dims(x, 4);
    case 6: return lg_sum(x, ax9, 1, false);
    case 7: return lg_sum(x, ax_rep, 2, false);
    case 8: return lg_softmax(x, 2);
    case 9: return lg_cast(x, LG_DTYPE_COUNT);
    case 10: return lg_broadcast_to(x, lg_shape_of(2, 3, 3));
    case 11: return lg_matmul(x, i, false, false);
    case 12: return lg_where(x, x, i);
    case 13: return lg_dropout(x, x, 1.0);
    case 14: return lg_sparse_softmax_xent(x, x);
    case 15: return lg_gather(x, x);
    case 16: return lg_squeeze(x, 5);
    case 17: return lg_sum_to(x, i);
    case 18: return lg_div(i, i);
    case 19: return lg_compare(x, x, LG_CMP_COUNT);
    default: return lg_clip(x, 2, 1);
    }
}

START_TEST(test_bad_builders_table)
{
    int rows = (int)(sizeof bad_builder_ops / sizeof bad_builder_ops[0]);
    for (int r = 0; r < rows; r++) {
        lg_graph *h = lg_graph_new();
        lg_value x = lg_input(h, "x", LG_F32, lg_shape_of(2, 2, 3));
        lg_value i = lg_input(h, "i", LG_I32, lg_shape_of(1, 2));
        ck_assert_ptr_null(lg_graph_error(h));
        lg_value v = build_bad(r, x, i);
        ck_assert_msg(!lg_value_ok(v), "row %d (%s) built a valid value", r, bad_builder_ops[r]);
        const char *err = lg_graph_error(h);
        ck_assert_msg(err != NULL, "row %d (%s) recorded no error", r, bad_builder_ops[r]);
        ck_assert_msg(strstr(err, bad_builder_ops[r]) != NULL, "row %d: '%s' does not name %s", r, err,
                      bad_builder_ops[r]);
        lg_graph_free(h);
    }
}
END_TEST

/* Shapes too large for memory, one row each: the builder must return an
 * invalid value and record an error naming the op, the node and the
 * offending shape or sum (issue 11: these wrapped, or overflowed int64,
 * and later kernels wrote past the planned arena). x is f32 [1, 2], idx is
 * i32 [2]. */
typedef struct size_row {
    const char *want[2]; /* substrings of the graph error */
} size_row;

#define P(k) (1LL << (k))
static const size_row size_rows[] = {
    {{"broadcast_to 'broadcast_to': output 0 would be f32 [2305843009213693952, 2]", "LG_MAX_BYTES"}},
    {{"one_hot 'one_hot': output 0 would be f32 [2, 4611686018427387904]", "multiply past int64"}},
    {{"one_hot 'one_hot': output 0 would be f32 [1, 2305843009213693952]", "LG_MAX_BYTES"}}, /* 2^63 bytes */
    {{"reshape 'reshape'", "the target's dims multiply past int64"}},
    {{"reshape 'reshape'", "the target's dims multiply past int64"}},
    {{"input 'a': i32 [1, 4611686018427387904]", "LG_MAX_BYTES"}}, /* concat's sum is never reached */
    {{"slice 'slice'", "start + size overflows int64"}},
    {{"split 'split'", "the piece sizes add past int64"}},
    {{"input 'big': i32 [?, 4611686018427387904]", "LG_MAX_BYTES"}},
};

static lg_value build_too_large(lg_graph *h, int row, lg_value x, lg_value idx)
{
    switch (row) {
    case 0: return lg_broadcast_to(x, (lg_shape){.rank = 2, .dims = {P(61), 2}});
    case 1: return lg_one_hot(idx, P(62), LG_F32);
    case 2: return lg_one_hot(lg_slice(idx, 0, 0, 1), P(61), LG_F32);
    case 3: return lg_reshape(x, (lg_shape){.rank = 3, .dims = {P(40), P(40), P(40)}});
    /* (2^32+1)(2^32-1) = 2^64-1 wraps to -1, and twice to 1: the element
     * count of x sliced to [1, 1], so the wrapped product was accepted */
    case 4: return lg_reshape(lg_slice(x, 1, 0, 1), (lg_shape){.rank = 4, .dims = {P(32) + 1, P(32) - 1, P(32) + 1, P(32) - 1}});
    case 5: {
        lg_value a[2] = {lg_input(h, "a", LG_I32, (lg_shape){.rank = 2, .dims = {1, P(62)}}),
                         lg_input(h, "b", LG_I32, (lg_shape){.rank = 2, .dims = {1, P(62)}})};
        return lg_concat(a, 2, 1);
    }
    case 6: return lg_slice(x, 1, 1, INT64_MAX);
    case 7: {
        /* INT64_MAX + INT64_MAX + 5 wraps to 3 */
        lg_value parts[3];
        const int64_t sizes[3] = {INT64_MAX, INT64_MAX, 5};
        lg_split(lg_input(h, "s", LG_F32, lg_shape_of(2, 1, 3)), 1, sizes, 3, parts);
        return parts[0];
    }
    default: return lg_input(h, "big", LG_I32, (lg_shape){.rank = 2, .dims = {-1, P(62)}});
    }
}
#undef P

START_TEST(test_too_large_shapes_table)
{
    int rows = (int)(sizeof size_rows / sizeof size_rows[0]);
    for (int r = 0; r < rows; r++) {
        lg_graph *h = lg_graph_new();
        lg_value x = lg_input(h, "x", LG_F32, lg_shape_of(2, 1, 2));
        lg_value idx = lg_input(h, "idx", LG_I32, lg_shape_of(1, 2));
        lg_value v = build_too_large(h, r, x, idx);
        ck_assert_msg(!lg_value_ok(v), "row %d built a valid value", r);
        const char *err = lg_graph_error(h);
        ck_assert_msg(err != NULL, "row %d recorded no error", r);
        for (int k = 0; k < 2; k++)
            ck_assert_msg(strstr(err, size_rows[r].want[k]) != NULL, "row %d: '%s' lacks '%s'", r, err,
                          size_rows[r].want[k]);
        lg_graph_free(h);
    }
}
END_TEST

/* The largest shapes that keep the rule still build: 2^62 bytes of f32. */
START_TEST(test_large_shapes_at_the_limit_build)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, 1, 2));
    ck_assert_value(lg_broadcast_to(x, (lg_shape){.rank = 2, .dims = {1LL << 59, 2}}), LG_F32,
                    ((lg_shape){.rank = 2, .dims = {1LL << 59, 2}}));
    ck_assert_value(lg_input(g, "y", LG_F32, (lg_shape){.rank = 2, .dims = {-1, 1LL << 60}}), LG_F32,
                    ((lg_shape){.rank = 2, .dims = {-1, 1LL << 60}}));
    ck_assert_value(lg_slice(x, 1, 1, 1), LG_F32, lg_shape_of(2, 1, 1));
}
END_TEST

static Suite *graph_suite(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fresh_graph_has_no_error);
    tcase_add_test(tc, test_matmul_error_names_op_and_shapes);
    tcase_add_test(tc, test_add_shape_error_message);
    tcase_add_test(tc, test_dtype_mismatch_error);
    tcase_add_test(tc, test_int_to_float_op_error);
    tcase_add_test(tc, test_invalid_propagates_without_new_error);
    tcase_add_test(tc, test_explicit_invalid_value);
    tcase_add_test(tc, test_mixing_graphs_is_error);
    tcase_add_test(tc, test_null_graph_input);
    tcase_add_test(tc, test_input_zero_dim_is_error);
    tcase_add_test(tc, test_param_zero_dim_is_error);
    tcase_add_test(tc, test_param_unknown_dim_is_error);
    tcase_add_test(tc, test_input_bad_shape_and_dtype);
    tcase_add_test(tc, test_duplicate_param_name);
    tcase_add_test(tc, test_same_param_name_in_other_scope_ok);
    suite_add_tcase(s, tc);

    tc = tcase_create("scopes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_scoped_names);
    tcase_add_test(tc, test_empty_scope_name_is_error);
    tcase_add_test(tc, test_slash_scope_name_is_error);
    tcase_add_test(tc, test_null_scope_name_is_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("inference");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_infer_matmul);
    tcase_add_test(tc, test_infer_broadcast);
    tcase_add_test(tc, test_infer_unary_and_cast);
    tcase_add_test(tc, test_infer_reductions);
    tcase_add_test(tc, test_infer_shape_ops);
    tcase_add_test(tc, test_infer_squeeze_non_one_is_error);
    tcase_add_test(tc, test_infer_index_and_nn);
    tcase_add_test(tc, test_split_outputs);
    tcase_add_test(tc, test_split_bad_sizes);
    tcase_add_test(tc, test_split_uneven_equal_pieces);
    tcase_add_test(tc, test_bad_builders_table);
    tcase_add_test(tc, test_too_large_shapes_table);
    tcase_add_test(tc, test_large_shapes_at_the_limit_build);
    suite_add_tcase(s, tc);

    tc = tcase_create("introspection");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_constants_and_scalars);
    tcase_add_test(tc, test_params);
    tcase_add_test(tc, test_introspection);
    tcase_add_test(tc, test_value_same);
    tcase_add_test(tc, test_op_registry);
    tcase_add_test(tc, test_node_ops_are_registered);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lg_check_run(graph_suite());
}
