/*
 * test_loop.c — the loop node through its builder API: values against a
 * hand-written recurrence, rolled against unrolled, nested loops, invariants
 * and integer sequences, several cells stepped in one loop, BPTT memory
 * linear in the steps, and every builder error.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "graph/loopgrad.h"

LG_TEST_GRAPH_FIXTURE

static lg_tensor *filled(lg_dtype t, lg_shape s, uint64_t key, double lo, double hi)
{
    return lg_test_uniform(t, s, 5, key, lo, hi);
}

/* h_t = tanh(x_t W + h_{t-1} U); emits h_t. */
typedef struct rnn {
    lg_value x, h0, w, u, last, seq;
} rnn;

static rnn build_rnn(const char *name, lg_loop_opts o, int b, int t, int f, int units)
{
    rnn r;
    r.x = lg_input(g, "x", LG_F64, lg_shape_of(3, b, t, f));
    r.h0 = lg_input(g, "h0", LG_F64, lg_shape_of(2, b, units));
    char scope[16];
    snprintf(scope, sizeof scope, "rnn%d", lg_graph_param_count(g) / 2); /* one per rnn in g */
    lg_scope_push(g, scope);
    r.w = lg_param(g, "w", LG_F64, lg_shape_of(2, f, units));
    r.u = lg_param(g, "u", LG_F64, lg_shape_of(2, units, units));
    lg_scope_pop(g);
    lg_init_uniform(lg_param_tensor(r.w), -0.7, 0.7, 1, 0);
    lg_init_uniform(lg_param_tensor(r.u), -0.7, 0.7, 1, 1);
    lg_loop *l = lg_loop_new(g, name, o);
    lg_value xt = lg_loop_seq(l, r.x), h = lg_loop_state(l, r.h0);
    lg_value w = lg_loop_invariant(l, r.w), u = lg_loop_invariant(l, r.u);
    lg_value hn = lg_tanh(lg_add(lg_matmul(xt, w, false, false), lg_matmul(h, u, false, false)));
    lg_loop_next(l, h, hn);
    lg_loop_emit(l, hn);
    ck_assert_int_eq(lg_loop_end(l, &r.last, &r.seq), LG_OK);
    return r;
}

START_TEST(test_values_match_hand_recurrence)
{
    enum { B = 2, T = 4, F = 3, U = 2 };
    rnn r = build_rnn(NULL, lg_loop_opts_default(), B, T, F, U);
    lg_tensor *x = filled(LG_F64, lg_shape_of(3, B, T, F), 1, -1, 1), *h0 = filled(LG_F64, lg_shape_of(2, B, U), 2, -1, 1);
    lg_feed f[2] = {{r.x, x}, {r.h0, h0}};
    lg_value fetch[2] = {r.last, r.seq};
    lg_tensor *out[2] = {NULL, NULL};
    ck_assert_int_eq(lg_graph_run(g, f, 2, fetch, 2, out), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(out[1]), lg_shape_of(3, B, T, U)));
    const double *w = lg_tensor_cdata(lg_param_tensor(r.w)), *u = lg_tensor_cdata(lg_param_tensor(r.u));
    for (int b = 0; b < B; b++) {
        double h[U];
        for (int j = 0; j < U; j++) h[j] = lg_tensor_get(h0, b * U + j);
        for (int t = 0; t < T; t++) {
            double hn[U];
            for (int j = 0; j < U; j++) {
                double z = 0;
                for (int k = 0; k < F; k++) z += lg_tensor_get(x, (b * T + t) * F + k) * w[k * U + j];
                for (int k = 0; k < U; k++) z += h[k] * u[k * U + j];
                hn[j] = tanh(z);
            }
            for (int j = 0; j < U; j++) {
                h[j] = hn[j];
                ck_assert_double_eq_tol(lg_tensor_get(out[1], (b * T + t) * U + j), h[j], 1e-12);
            }
        }
        for (int j = 0; j < U; j++) ck_assert_double_eq_tol(lg_tensor_get(out[0], b * U + j), h[j], 1e-12);
    }
    lg_tensor_free(out[0]), lg_tensor_free(out[1]), lg_tensor_free(x), lg_tensor_free(h0);
}
END_TEST

/* Rolled and unrolled loops (reverse too) give the same values and gradients. */
START_TEST(test_rolled_equals_unrolled)
{
    enum { B = 3, T = 5, F = 2, U = 4 };
    lg_loop_opts o = lg_loop_opts_default();
    o.reverse = _i == 1;
    rnn a = build_rnn(NULL, o, B, T, F, U);
    o.unroll = true;
    rnn b = build_rnn(NULL, o, B, T, F, U);
    lg_tensor *x = filled(LG_F64, lg_shape_of(3, B, T, F), 3, -1, 1), *h0 = filled(LG_F64, lg_shape_of(2, B, U), 4, -1, 1);
    lg_tensor *rt = filled(LG_F64, lg_shape_of(3, B, T, U), 6, -1, 1);
    lg_value rw = lg_constant(g, "weights", rt);
    lg_value la = lg_add(lg_sum(lg_mul(a.seq, rw), NULL, 0, false), lg_sum(a.last, NULL, 0, false));
    lg_value lb = lg_add(lg_sum(lg_mul(b.seq, rw), NULL, 0, false), lg_sum(b.last, NULL, 0, false));
    lg_value wa[4] = {a.w, a.u, a.x, a.h0}, wb[4] = {b.w, b.u, b.x, b.h0}, ga[4], gb[4];
    ck_assert_int_eq(lg_grad(g, la, wa, 4, ga), LG_OK);
    ck_assert_int_eq(lg_grad(g, lb, wb, 4, gb), LG_OK);
    int loops = 0;
    for (int i = 0; i < lg_graph_node_count(g); i++) loops += strcmp(lg_graph_node_op(g, i), "loop") == 0;
    ck_assert_int_eq(loops, 2); /* the rolled loop and its gradient; the unrolled one has none */
    lg_feed f[4] = {{a.x, x}, {a.h0, h0}, {b.x, x}, {b.h0, h0}};
    lg_value fetch[10] = {la, lb, ga[0], gb[0], ga[1], gb[1], ga[2], gb[2], ga[3], gb[3]};
    lg_tensor *out[10] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, f, 4, fetch, 10, out), LG_OK);
    for (int k = 0; k < 10; k += 2) {
        ck_assert(lg_shape_equal(lg_tensor_shape(out[k]), lg_tensor_shape(out[k + 1])));
        for (int64_t i = 0; i < lg_tensor_numel(out[k]); i++)
            ck_assert_double_eq_tol(lg_tensor_get(out[k], i), lg_tensor_get(out[k + 1], i), 1e-12);
    }
    for (int k = 0; k < 10; k++) lg_tensor_free(out[k]);
    lg_tensor_free(x), lg_tensor_free(h0), lg_tensor_free(rt);
}
END_TEST

/* An outer loop over sentences whose body runs an inner loop over words,
 * gathering embeddings of i32 token ids inside the body: gradients reach the
 * table (an invariant of both loops) through both levels. */
START_TEST(test_nested_loops_and_integer_sequences)
{
    enum { B = 2, S = 3, W = 4, V = 5, E = 3 };
    lg_value tok = lg_input(g, "tokens", LG_I32, lg_shape_of(3, B, S, W));
    lg_value table = lg_param(g, "table", LG_F64, lg_shape_of(2, V, E));
    lg_value h0 = lg_input(g, "h0", LG_F64, lg_shape_of(2, B, E));
    lg_init_uniform(lg_param_tensor(table), -1, 1, 2, 0);

    lg_loop *outer = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_value sent = lg_loop_seq(outer, tok); /* [B, W] */
    lg_value h = lg_loop_state(outer, h0);
    lg_value tab = lg_loop_invariant(outer, table);
    lg_loop *inner = lg_loop_new(lg_loop_body(outer), NULL, lg_loop_opts_default());
    lg_value word = lg_loop_seq(inner, sent); /* [B] i32 */
    lg_value hi = lg_loop_state(inner, h);
    lg_value tab2 = lg_loop_invariant(inner, tab);
    lg_value hn = lg_tanh(lg_add(lg_gather(tab2, word), lg_scale(hi, 0.5)));
    lg_loop_next(inner, hi, hn);
    lg_value inner_last;
    ck_assert_int_eq(lg_loop_end(inner, &inner_last, NULL), LG_OK);
    lg_loop_next(outer, h, inner_last);
    lg_loop_emit(outer, inner_last);
    lg_value last, seq;
    ck_assert_int_eq(lg_loop_end(outer, &last, &seq), LG_OK);
    ck_assert(lg_shape_equal(lg_value_shape(seq), lg_shape_of(3, B, S, E)));
    lg_tensor *rt = filled(LG_F64, lg_shape_of(3, B, S, E), 9, -1, 1);
    lg_value loss = lg_add(lg_sum(lg_mul(seq, lg_constant(g, "r", rt)), NULL, 0, false), lg_sum(last, NULL, 0, false));

    lg_tensor *tt = NULL, *h0t = filled(LG_F64, lg_shape_of(2, B, E), 8, -1, 1);
    lg_tensor_new(LG_I32, lg_shape_of(3, B, S, W), &tt);
    for (int i = 0; i < B * S * W; i++) lg_tensor_set(tt, i, (i * 7 + 3) % V);
    lg_feed f[2] = {{tok, tt}, {h0, h0t}};
    lg_value wrt[2] = {table, h0};
    lg_gradcheck_report rep;
    ck_assert_int_eq(lg_gradcheck(g, loss, wrt, 2, f, 2, lg_gradcheck_opts_default(), &rep), LG_OK);
    ck_assert_msg(rep.passed, "nested loop gradient: worst %s[%lld] %g vs %g", rep.worst_name, rep.worst_index,
                  rep.analytic, rep.numeric);
    lg_tensor_free(tt), lg_tensor_free(h0t), lg_tensor_free(rt);
}
END_TEST

/* RecurrentShop's stacked cells: an LSTM and a GRU stepped together inside
 * one loop equal the two layers chained with return_sequences, in values
 * and in every gradient. */
START_TEST(test_stacked_cells_in_one_loop)
{
    enum { B = 2, T = 5, F = 3, U1 = 4, U2 = 3 };
    lg_cell_opts o1 = lg_cell_opts_default(LG_CELL_LSTM, U1), o2 = lg_cell_opts_default(LG_CELL_GRU, U2);
    o1.dtype = o2.dtype = LG_F64;
    lg_cell *lstm = lg_cell_new(g, "lstm", F, o1), *gru = lg_cell_new(g, "gru", U1, o2);
    ck_assert_ptr_nonnull(lstm);
    ck_assert_ptr_nonnull(gru);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_tensor *zt = NULL;
    lg_tensor_new(LG_F64, lg_shape_of(2, B, U1), &zt);
    lg_value z1 = lg_constant(g, "z1", zt);
    lg_tensor_free(zt);
    lg_tensor_new(LG_F64, lg_shape_of(2, B, U2), &zt);
    lg_value z2 = lg_constant(g, "z2", zt);
    lg_tensor_free(zt);

    /* one loop, both cells */
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_value xt = lg_loop_seq(l, x);
    lg_value s1[2] = {lg_loop_state(l, z1), lg_loop_state(l, z1)}, s2 = lg_loop_state(l, z2);
    lg_value n1[2], y1, n2, y2;
    lg_cell_step(lstm, l, xt, s1, lg_value_invalid(), lg_value_invalid(), n1, &y1);
    lg_cell_step(gru, l, y1, &s2, lg_value_invalid(), lg_value_invalid(), &n2, &y2);
    lg_loop_next(l, s1[0], n1[0]);
    lg_loop_next(l, s1[1], n1[1]);
    lg_loop_next(l, s2, n2);
    lg_loop_emit(l, y2);
    lg_value joint;
    ck_assert_int_eq(lg_loop_end(l, NULL, &joint), LG_OK);

    /* two chained layers */
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.return_sequences = true;
    lg_rnn_result r1, r2;
    ck_assert_int_eq(lg_rnn(g, "layer1", lstm, x, ro, &r1), LG_OK);
    ck_assert_int_eq(lg_rnn(g, "layer2", gru, r1.output, ro, &r2), LG_OK);

    lg_tensor *rt = filled(LG_F64, lg_shape_of(3, B, T, U2), 7, -1, 1);
    lg_value rw = lg_constant(g, "r", rt);
    lg_value la = lg_sum(lg_mul(joint, rw), NULL, 0, false), lb = lg_sum(lg_mul(r2.output, rw), NULL, 0, false);
    lg_value wrt[4] = {lg_cell_kernel(lstm), lg_cell_recurrent_kernel(gru), lg_cell_bias(gru), x}, ga[4], gb[4];
    ck_assert_int_eq(lg_grad(g, la, wrt, 4, ga), LG_OK);
    ck_assert_int_eq(lg_grad(g, lb, wrt, 4, gb), LG_OK);
    lg_tensor *xv = filled(LG_F64, lg_shape_of(3, B, T, F), 8, -1, 1);
    lg_feed f = {x, xv};
    lg_value fetch[10] = {joint, r2.output, ga[0], gb[0], ga[1], gb[1], ga[2], gb[2], ga[3], gb[3]};
    lg_tensor *out[10] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, &f, 1, fetch, 10, out), LG_OK);
    for (int k = 0; k < 10; k += 2)
        for (int64_t i = 0; i < lg_tensor_numel(out[k]); i++)
            ck_assert_double_eq_tol(lg_tensor_get(out[k], i), lg_tensor_get(out[k + 1], i), 1e-12);
    lg_gradcheck_report rep;
    ck_assert_int_eq(lg_gradcheck(g, la, wrt, 4, &f, 1, lg_gradcheck_opts_default(), &rep), LG_OK);
    ck_assert_msg(rep.passed, "stacked cells: worst %s[%lld] %g vs %g", rep.worst_name, rep.worst_index, rep.analytic,
                  rep.numeric);
    for (int k = 0; k < 10; k++) lg_tensor_free(out[k]);
    lg_tensor_free(rt), lg_tensor_free(xv), lg_cell_free(lstm), lg_cell_free(gru);
}
END_TEST

/* Peak planned memory of the weight gradient for T steps. */
static size_t grad_peak_with(int steps, lg_loop_memory memory)
{
    enum { B = 2, F = 3, U = 4 };
    lg_graph *saved = g;
    g = lg_graph_new();
    lg_loop_opts o = lg_loop_opts_default();
    o.memory = memory;
    rnn r = build_rnn(NULL, o, B, steps, F, U);
    lg_value loss = lg_sum(r.seq, NULL, 0, false), gw;
    ck_assert_int_eq(lg_grad(g, loss, &r.w, 1, &gw), LG_OK);
    lg_tensor *x = filled(LG_F64, lg_shape_of(3, B, steps, F), 1, -1, 1), *h0 = filled(LG_F64, lg_shape_of(2, B, U), 2, -1, 1);
    lg_feed f[2] = {{r.x, x}, {r.h0, h0}};
    lg_program *p = NULL;
    lg_compile_opts co = lg_compile_opts_default();
    co.passes_off = "fuse_rnn"; /* the loop's own memory policies, not the fused op's */
    ck_assert_int_eq(lg_program_compile_opts(g, f, 2, &gw, 1, co, &p), LG_OK);
    size_t peak = lg_program_peak_bytes(p);
    lg_program_free(p), lg_tensor_free(x), lg_tensor_free(h0), lg_graph_free(g);
    g = saved;
    return peak;
}

static size_t grad_peak(int steps) { return grad_peak_with(steps, LG_LOOP_SAVE_RESIDUALS); }

/* Both memory policies give the same gradients; saving residuals costs
 * memory (the stacked body values), recomputing does not. */
START_TEST(test_memory_policies_agree)
{
    enum { B = 2, T = 6, F = 3, U = 4 };
    lg_loop_opts o = lg_loop_opts_default();
    rnn a = build_rnn(NULL, o, B, T, F, U);
    o.memory = LG_LOOP_RECOMPUTE;
    rnn b = build_rnn(NULL, o, B, T, F, U);
    lg_tensor *rt = filled(LG_F64, lg_shape_of(3, B, T, U), 6, -1, 1);
    lg_value rw = lg_constant(g, "weights", rt);
    lg_value la = lg_add(lg_sum(lg_mul(a.seq, rw), NULL, 0, false), lg_sum(a.last, NULL, 0, false));
    lg_value lb = lg_add(lg_sum(lg_mul(b.seq, rw), NULL, 0, false), lg_sum(b.last, NULL, 0, false));
    lg_value wa[4] = {a.w, a.u, a.x, a.h0}, wb[4] = {b.w, b.u, b.x, b.h0}, ga[4], gb[4];
    ck_assert_int_eq(lg_grad(g, la, wa, 4, ga), LG_OK);
    ck_assert_int_eq(lg_grad(g, lb, wb, 4, gb), LG_OK);
    lg_tensor *x = filled(LG_F64, lg_shape_of(3, B, T, F), 3, -1, 1), *h0 = filled(LG_F64, lg_shape_of(2, B, U), 4, -1, 1);
    lg_feed f[4] = {{a.x, x}, {a.h0, h0}, {b.x, x}, {b.h0, h0}};
    lg_value fetch[8] = {ga[0], gb[0], ga[1], gb[1], ga[2], gb[2], ga[3], gb[3]};
    lg_tensor *out[8] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, f, 4, fetch, 8, out), LG_OK);
    for (int k = 0; k < 8; k += 2)
        for (int64_t i = 0; i < lg_tensor_numel(out[k]); i++)
            ck_assert_double_eq_tol(lg_tensor_get(out[k], i), lg_tensor_get(out[k + 1], i), 1e-12);
    lg_gradcheck_report rep;
    ck_assert_int_eq(lg_gradcheck(g, lb, wb, 4, f, 4, lg_gradcheck_opts_default(), &rep), LG_OK);
    ck_assert_msg(rep.passed, "recompute policy: worst %s[%lld] %g vs %g", rep.worst_name, rep.worst_index, rep.analytic,
                  rep.numeric);
    for (int k = 0; k < 8; k++) lg_tensor_free(out[k]);
    lg_tensor_free(x), lg_tensor_free(h0), lg_tensor_free(rt);
    ck_assert_uint_gt(grad_peak_with(16, LG_LOOP_SAVE_RESIDUALS), grad_peak_with(16, LG_LOOP_RECOMPUTE));
}
END_TEST

/* The program report names each loop's trip count, policy and the bytes it
 * saves for the backward loop: the states before each step ([T, B, U] f64)
 * under both policies, plus the stacked body values only when saving
 * residuals; the gradient loop is marked as such. */
START_TEST(test_loop_report)
{
    enum { B = 2, T = 7, F = 3, U = 4 };
    lg_loop_memory memory = _i ? LG_LOOP_RECOMPUTE : LG_LOOP_SAVE_RESIDUALS;
    lg_loop_opts o = lg_loop_opts_default();
    o.memory = memory;
    rnn r = build_rnn("rnn", o, B, T, F, U);
    lg_value loss = lg_sum(r.seq, NULL, 0, false), gw;
    ck_assert_int_eq(lg_grad(g, loss, &r.w, 1, &gw), LG_OK);
    lg_tensor *x = filled(LG_F64, lg_shape_of(3, B, T, F), 1, -1, 1), *h0 = filled(LG_F64, lg_shape_of(2, B, U), 2, -1, 1);
    lg_feed f[2] = {{r.x, x}, {r.h0, h0}};
    lg_program *p = NULL;
    lg_compile_opts co = lg_compile_opts_default();
    co.passes_off = "fuse_rnn"; /* the loops themselves (fused, none would be left) */
    ck_assert_int_eq(lg_program_compile_opts(g, f, 2, &gw, 1, co, &p), LG_OK);
    ck_assert_int_eq(lg_program_loop_count(p), 2);
    lg_loop_report fwd, bwd;
    ck_assert_int_eq(lg_program_loop_report(p, 0, &fwd), LG_OK);
    ck_assert_int_eq(lg_program_loop_report(p, 1, &bwd), LG_OK);
    ck_assert_str_eq(fwd.name, "rnn");
    ck_assert(!fwd.gradient && bwd.gradient && !fwd.has_stop);
    ck_assert_int_eq(fwd.steps, T);
    ck_assert_int_eq(bwd.steps, T);
    ck_assert_int_eq(fwd.memory, memory);
    ck_assert_uint_eq(fwd.state_bytes, (size_t)T * B * U * sizeof(double));
    /* two matmuls, an add, a tanh (fused into one kernel); saving residuals,
     * x_t W runs before the loop for all steps, and the weight's gradient
     * after the gradient loop */
    ck_assert_int_eq(fwd.body_kernels, memory == LG_LOOP_RECOMPUTE ? 3 : 2);
    ck_assert_int_eq(fwd.fused_ops, 2);
    ck_assert_int_eq(fwd.fused_kernels, 1);
    ck_assert_int_eq(fwd.n_hoisted, memory == LG_LOOP_RECOMPUTE ? 0 : 1);
    ck_assert_int_eq(bwd.n_sunk, memory == LG_LOOP_RECOMPUTE ? 0 : 2);
    if (memory == LG_LOOP_RECOMPUTE) {
        ck_assert_int_eq(fwd.n_residuals, 0);
        ck_assert_uint_eq(fwd.residual_bytes, fwd.state_bytes);
    } else {
        ck_assert_int_gt(fwd.n_residuals, 0);
        ck_assert_uint_gt(fwd.residual_bytes, fwd.state_bytes);
        ck_assert_uint_eq((fwd.residual_bytes - fwd.state_bytes) % (T * sizeof(double)), 0); /* stacked [T, ...] */
    }
    char *text = lg_program_report(p);
    ck_assert_ptr_nonnull(text);
    char want[64];
    snprintf(want, sizeof want, "program: %d kernels on cpu,", lg_program_kernel_count(p)); /* program.h's example */
    ck_assert_msg(strstr(text, want) && strstr(text, "\ndevice cpu: host memory\n") && strstr(text, "loop 'rnn': 7 steps") && strstr(text, "gradient loop"), "%s", text);
    ck_assert_msg(strstr(text, lg_cpu_gemm_summary()) && !strncmp(lg_cpu_gemm_summary(), "GEMM: ", 6), "%s", text);
    ck_assert_msg(strstr(text, memory == LG_LOOP_RECOMPUTE ? "recompute" : "save residuals"), "%s", text);
    free(text);
    /* bad calls */
    ck_assert_int_eq(lg_program_loop_report(p, 2, &fwd), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_program_loop_report(p, 0, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_program_loop_report(NULL, 0, &fwd), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(lg_program_report(NULL));
    ck_assert_int_eq(lg_program_loop_count(NULL), 0);
    lg_program_free(p), lg_tensor_free(x), lg_tensor_free(h0);
}
END_TEST

/* BPTT memory is linear in T: the forward loop keeps [T, ...] buffers (its
 * saved states and outputs), the body's own buffers are reused every step. */
START_TEST(test_bptt_memory_linear_in_steps)
{
    size_t p8 = grad_peak(8), p16 = grad_peak(16), p32 = grad_peak(32);
    ck_assert_uint_gt(p16, p8);
    /* doubling T adds the same amount each time, up to the planner's
     * 64-byte alignment and placement (a few blocks) */
    ck_assert_uint_le(p32 - p16, 2 * (p16 - p8) + 1024);
    ck_assert_uint_ge(p32 - p16, 2 * (p16 - p8) - 1024);
}
END_TEST

/* Truncated BPTT in chunks of 3 over 6 steps: the loss on the last state
 * reaches the inputs of the last chunk exactly as full BPTT does, and the
 * first chunk not at all; values are unchanged. Rolled and unrolled agree. */
START_TEST(test_truncated_bptt)
{
    enum { B = 2, T = 6, F = 3, U = 4, K = 3 };
    lg_loop_opts o = lg_loop_opts_default();
    o.unroll = _i == 1;
    rnn full = build_rnn(NULL, o, B, T, F, U);
    o.truncate = K;
    rnn cut = build_rnn(NULL, o, B, T, F, U);
    lg_value lf = lg_sum(full.last, NULL, 0, false), lc = lg_sum(cut.last, NULL, 0, false), gf, gc;
    ck_assert_int_eq(lg_grad(g, lf, &full.x, 1, &gf), LG_OK);
    ck_assert_int_eq(lg_grad(g, lc, &cut.x, 1, &gc), LG_OK);
    lg_tensor *x = filled(LG_F64, lg_shape_of(3, B, T, F), 3, -1, 1), *h0 = filled(LG_F64, lg_shape_of(2, B, U), 4, -1, 1);
    lg_feed f[4] = {{full.x, x}, {full.h0, h0}, {cut.x, x}, {cut.h0, h0}};
    lg_value fetch[4] = {lf, lc, gf, gc};
    lg_tensor *out[4] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, f, 4, fetch, 4, out), LG_OK);
    ck_assert_double_eq_tol(lg_tensor_get(out[0], 0), lg_tensor_get(out[1], 0), 1e-12);
    double first_chunk = 0, last_chunk = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int k = 0; k < F; k++) {
                int64_t i = (b * T + t) * F + k;
                if (t < T - K) {
                    ck_assert_double_eq(lg_tensor_get(out[3], i), 0);
                    first_chunk += fabs(lg_tensor_get(out[2], i));
                } else {
                    ck_assert_double_eq_tol(lg_tensor_get(out[3], i), lg_tensor_get(out[2], i), 1e-12);
                    last_chunk += fabs(lg_tensor_get(out[3], i));
                }
            }
    ck_assert(first_chunk > 1e-6 && last_chunk > 1e-6); /* full BPTT does reach the first chunk */
    for (int k = 0; k < 4; k++) lg_tensor_free(out[k]);
    lg_tensor_free(x), lg_tensor_free(h0);
}
END_TEST

/* Per-example lengths (Keras masking) on a loop with a [B, U] and a
 * [B, 2, U] state: each example equals the same loop run on its valid steps
 * alone (reversed too: padded steps, met first, keep the initial state), its
 * outputs past its length are zero, and gradients pass the f64 check. */
typedef struct masked {
    lg_value x, h0, c0, w, u, h, c, hs, cs;
} masked;

static masked build_masked(lg_value w, lg_value u, int batch, int steps, lg_value lengths, bool reverse)
{
    enum { F = 3, U = 2 };
    masked m = {.w = w, .u = u};
    m.x = lg_input(g, "x", LG_F64, lg_shape_of(3, batch, steps, F));
    m.h0 = lg_input(g, "h0", LG_F64, lg_shape_of(2, batch, U));
    m.c0 = lg_input(g, "c0", LG_F64, lg_shape_of(3, batch, 2, U));
    lg_loop_opts o = lg_loop_opts_default();
    o.lengths = lengths, o.reverse = reverse;
    lg_loop *l = lg_loop_new(g, NULL, o);
    lg_value xt = lg_loop_seq(l, m.x), h = lg_loop_state(l, m.h0), c = lg_loop_state(l, m.c0);
    lg_value hn = lg_tanh(lg_add(lg_matmul(xt, lg_loop_invariant(l, w), false, false),
                                 lg_matmul(h, lg_loop_invariant(l, u), false, false)));
    lg_value cn = lg_add(lg_scale(c, 0.5), lg_expand_dims(hn, 1)); /* [B, 2, U] */
    lg_loop_next(l, h, hn);
    lg_loop_next(l, c, cn);
    lg_loop_emit(l, hn);
    lg_loop_emit(l, cn);
    lg_value fin[2], ys[2];
    ck_assert_msg(lg_loop_end(l, fin, ys) == LG_OK, "%s", lg_graph_error(g));
    m.h = fin[0], m.c = fin[1], m.hs = ys[0], m.cs = ys[1];
    return m;
}

START_TEST(test_lengths_mask_like_keras)
{
    enum { B = 3, T = 4, F = 3, U = 2 };
    static const int len[B] = {4, 2, 1};
    bool reverse = _i == 1;
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(2, F, U)), u = lg_param(g, "u", LG_F64, lg_shape_of(2, U, U));
    lg_init_uniform(lg_param_tensor(w), -0.8, 0.8, 1, 0);
    lg_init_uniform(lg_param_tensor(u), -0.8, 0.8, 1, 1);
    lg_value lv = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    masked m = build_masked(w, u, B, T, lv, reverse);
    masked one = build_masked(w, u, 1, -1, lg_value_invalid(), reverse); /* unmasked, any T */
    lg_tensor *x = filled(LG_F64, lg_shape_of(3, B, T, F), 11, -1, 1), *h0 = filled(LG_F64, lg_shape_of(2, B, U), 12, -1, 1);
    lg_tensor *c0 = filled(LG_F64, lg_shape_of(3, B, 2, U), 13, -1, 1), *lt = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, B), &lt), LG_OK);
    for (int b = 0; b < B; b++) lg_tensor_set(lt, b, len[b]);
    lg_feed f[4] = {{m.x, x}, {m.h0, h0}, {m.c0, c0}, {lv, lt}};
    lg_value fetch[4] = {m.h, m.c, m.hs, m.cs};
    lg_tensor *out[4] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, f, 4, fetch, 4, out), LG_OK);
    for (int b = 0; b < B; b++) {
        lg_tensor *xb = NULL, *hb = NULL, *cb = NULL, *ob[4] = {NULL};
        ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(3, 1, len[b], F), &xb), LG_OK);
        ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(2, 1, U), &hb), LG_OK);
        ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(3, 1, 2, U), &cb), LG_OK);
        for (int i = 0; i < len[b] * F; i++) lg_tensor_set(xb, i, lg_tensor_get(x, b * T * F + i));
        for (int i = 0; i < U; i++) lg_tensor_set(hb, i, lg_tensor_get(h0, b * U + i));
        for (int i = 0; i < 2 * U; i++) lg_tensor_set(cb, i, lg_tensor_get(c0, b * 2 * U + i));
        lg_feed fb[3] = {{one.x, xb}, {one.h0, hb}, {one.c0, cb}};
        lg_value fo[4] = {one.h, one.c, one.hs, one.cs};
        ck_assert_int_eq(lg_graph_run(g, fb, 3, fo, 4, ob), LG_OK);
        for (int i = 0; i < U; i++) ck_assert_double_eq_tol(lg_tensor_get(out[0], b * U + i), lg_tensor_get(ob[0], i), 1e-12);
        for (int i = 0; i < 2 * U; i++)
            ck_assert_double_eq_tol(lg_tensor_get(out[1], b * 2 * U + i), lg_tensor_get(ob[1], i), 1e-12);
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < U; i++)
                ck_assert_double_eq_tol(lg_tensor_get(out[2], (b * T + t) * U + i), t < len[b] ? lg_tensor_get(ob[2], t * U + i) : 0,
                                        1e-12);
            for (int i = 0; i < 2 * U; i++)
                ck_assert_double_eq_tol(lg_tensor_get(out[3], (b * T + t) * 2 * U + i),
                                        t < len[b] ? lg_tensor_get(ob[3], t * 2 * U + i) : 0, 1e-12);
        }
        for (int k = 0; k < 4; k++) lg_tensor_free(ob[k]);
        lg_tensor_free(xb), lg_tensor_free(hb), lg_tensor_free(cb);
    }
    lg_value loss = lg_add(lg_sum(lg_square(m.hs), NULL, 0, false), lg_sum(lg_mul(m.c, m.c), NULL, 0, false));
    lg_value wrt[5] = {w, u, m.x, m.h0, m.c0};
    lg_gradcheck_report rep;
    ck_assert_int_eq(lg_gradcheck(g, loss, wrt, 5, f, 4, lg_gradcheck_opts_default(), &rep), LG_OK);
    ck_assert_msg(rep.passed, "worst %s[%lld] %.10g vs %.10g", rep.worst_name, rep.worst_index, rep.analytic, rep.numeric);
    for (int k = 0; k < 4; k++) lg_tensor_free(out[k]);
    lg_tensor_free(x), lg_tensor_free(h0), lg_tensor_free(c0), lg_tensor_free(lt);
}
END_TEST

/* Lengths outside [1, T] stop the run with an error naming the check. */
START_TEST(test_lengths_out_of_range)
{
    enum { B = 3, T = 4, F = 3, U = 2 };
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(2, F, U)), u = lg_param(g, "u", LG_F64, lg_shape_of(2, U, U));
    lg_value lv = lg_input(g, "len", LG_I32, lg_shape_of(1, -1));
    masked m = build_masked(w, u, -1, -1, lv, false);
    lg_tensor *x = filled(LG_F64, lg_shape_of(3, B, T, F), 11, -1, 1), *h0 = filled(LG_F64, lg_shape_of(2, B, U), 12, -1, 1);
    lg_tensor *c0 = filled(LG_F64, lg_shape_of(3, B, 2, U), 13, -1, 1), *lt = NULL, *out = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, B), &lt), LG_OK);
    static const int bad[2][B] = {{1, 5, 2}, {0, 1, 1}};
    for (int k = 0; k < 2; k++) {
        for (int b = 0; b < B; b++) lg_tensor_set(lt, b, bad[k][b]);
        lg_feed f[4] = {{m.x, x}, {m.h0, h0}, {m.c0, c0}, {lv, lt}};
        ck_assert_int_eq(lg_graph_run(g, f, 4, &m.h, 1, &out), LG_ERR_RUNTIME);
        ck_assert_msg(strstr(lg_last_error(), "loop/lengths_in_1_to_T/"), "%s", lg_last_error());
        ck_assert_msg(strstr(lg_last_error(), k == 0 ? "lengths[1] = 5 outside [1, 4]" : "lengths[0] = 0 outside [1, 4]"),
                      "%s", lg_last_error());
    }
    lg_tensor_free(x), lg_tensor_free(h0), lg_tensor_free(c0), lg_tensor_free(lt);
}
END_TEST

static void expect_error(lg_status s, const char *fragment)
{
    ck_assert_int_eq(s, LG_ERR_GRAPH);
    ck_assert_ptr_nonnull(lg_graph_error(g));
    ck_assert_msg(strstr(lg_graph_error(g), fragment), "error '%s' lacks '%s'", lg_graph_error(g), fragment);
}

/* Greedy decoding shape: no sequences, a counter state, stop once it
 * reaches 3 (of at most 6 steps): three steps run, the rest of the stacked
 * output is zero, the final state is the one after step 3. */
START_TEST(test_stop_condition)
{
    lg_value c0 = lg_input(g, "c0", LG_F64, lg_shape_of(2, 2, 1));
    lg_loop_opts o = lg_loop_opts_default();
    o.max_steps = 6;
    lg_loop *l = lg_loop_new(g, NULL, o);
    lg_value c = lg_loop_state(l, c0);
    lg_value next = lg_add_scalar(c, 1);
    lg_loop_next(l, c, next);
    lg_loop_emit(l, lg_scale(next, 10));
    lg_loop_until(l, lg_compare(lg_sum(next, NULL, 0, false), lg_scalar(lg_loop_body(l), LG_F64, 6), LG_CMP_GE));
    lg_value last, seq;
    ck_assert_int_eq(lg_loop_end(l, &last, &seq), LG_OK);
    ck_assert(lg_shape_equal(lg_value_shape(seq), lg_shape_of(3, 2, 6, 1)));
    lg_tensor *c0t = NULL;
    lg_tensor_new(LG_F64, lg_shape_of(2, 2, 1), &c0t); /* zeros: sum(next) = 2 * step */
    lg_feed f = {c0, c0t};
    lg_value fetch[2] = {last, seq};
    lg_tensor *out[2] = {NULL, NULL};
    ck_assert_int_eq(lg_graph_run(g, &f, 1, fetch, 2, out), LG_OK);
    ck_assert_double_eq(lg_tensor_get(out[0], 0), 3);
    const double want[6] = {10, 20, 30, 0, 0, 0};
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 6; t++) ck_assert_double_eq(lg_tensor_get(out[1], b * 6 + t), want[t]);
    /* inference only */
    lg_value gr;
    ck_assert_int_eq(lg_grad(g, lg_sum(seq, NULL, 0, false), &c0, 1, &gr), LG_ERR_GRAPH);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "not differentiable"));
    lg_tensor_free(out[0]), lg_tensor_free(out[1]), lg_tensor_free(c0t);
}
END_TEST

START_TEST(test_stop_condition_not_scalar)
{
    lg_value c0 = lg_input(g, "c0", LG_F64, lg_shape_of(2, 2, 1));
    lg_loop_opts o = lg_loop_opts_default();
    o.max_steps = 4;
    lg_loop *l = lg_loop_new(g, NULL, o);
    lg_value c = lg_loop_state(l, c0);
    lg_loop_next(l, c, c);
    lg_loop_until(l, c);
    expect_error(lg_loop_end(l, NULL, NULL), "must be a scalar");
}
END_TEST

/* ---- builder errors ---------------------------------------------------------- */

/* 2^62 steps of an f32 [1] state: the saved states would be [2^62, 1], 2^64
 * bytes, which wrapped to 0 in the planner and the loop kernel wrote past
 * its 64 bytes. Now the loop is refused when built, named with the shape. */
START_TEST(test_too_many_steps)
{
    lg_value h0 = lg_input(g, "h0", LG_F32, lg_shape_of(1, 1));
    lg_loop_opts o = lg_loop_opts_default();
    o.max_steps = 1LL << 62;
    lg_loop *l = lg_loop_new(g, "counter", o);
    lg_value h = lg_loop_state(l, h0);
    lg_loop_next(l, h, lg_add_scalar(h, 1));
    expect_error(lg_loop_end(l, NULL, NULL), "loop 'counter': output 1 would be f32 [4611686018427387904, 1]");
}
END_TEST

START_TEST(test_state_without_next)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, 2, 3, 4)), h0 = lg_input(g, "h0", LG_F32, lg_shape_of(2, 2, 4));
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_loop_seq(l, x);
    lg_loop_state(l, h0);
    expect_error(lg_loop_end(l, NULL, NULL), "no next value");
}
END_TEST

START_TEST(test_next_of_other_shape)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, 2, 3, 4)), h0 = lg_input(g, "h0", LG_F32, lg_shape_of(2, 2, 5));
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_value xt = lg_loop_seq(l, x), h = lg_loop_state(l, h0);
    lg_loop_next(l, h, lg_tanh(xt)); /* [2, 4] for a [2, 5] state */
    expect_error(lg_loop_end(l, NULL, NULL), "next state is f32 [2, 4]");
}
END_TEST

START_TEST(test_no_sequence)
{
    lg_value h0 = lg_input(g, "h0", LG_F32, lg_shape_of(2, 2, 5));
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_value h = lg_loop_state(l, h0);
    lg_loop_next(l, h, h);
    expect_error(lg_loop_end(l, NULL, NULL), "needs a sequence or max_steps");
}
END_TEST

START_TEST(test_sequences_of_different_lengths)
{
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(3, 2, 3, 4)), b = lg_input(g, "b", LG_F32, lg_shape_of(3, 2, 5, 4));
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_loop_emit(l, lg_add(lg_loop_seq(l, a), lg_loop_seq(l, b)));
    expect_error(lg_loop_end(l, NULL, NULL), "differ in length");
}
END_TEST

START_TEST(test_value_of_other_graph)
{
    lg_graph *h = lg_graph_new();
    lg_value x = lg_input(h, "x", LG_F32, lg_shape_of(3, 2, 3, 4));
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_loop_seq(l, x);
    expect_error(lg_loop_end(l, NULL, NULL), "another graph");
    lg_graph_free(h);
}
END_TEST

START_TEST(test_body_error_and_body_params)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, 2, 3, 4));
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_value xt = lg_loop_seq(l, x);
    lg_value w = lg_param(lg_loop_body(l), "w", LG_F32, lg_shape_of(2, 4, 4));
    lg_loop_emit(l, lg_matmul(xt, w, false, false));
    expect_error(lg_loop_end(l, NULL, NULL), "capture it with lg_loop_invariant");
}
END_TEST

START_TEST(test_sequence_without_time_axis)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 4));
    lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
    lg_loop_seq(l, x);
    expect_error(lg_loop_end(l, NULL, NULL), "needs [B, T, ...]");
}
END_TEST

START_TEST(test_unroll_needs_static_length)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, 2, -1, 4));
    lg_loop_opts o = lg_loop_opts_default();
    o.unroll = true;
    lg_loop *l = lg_loop_new(g, NULL, o);
    lg_loop_emit(l, lg_tanh(lg_loop_seq(l, x)));
    expect_error(lg_loop_end(l, NULL, NULL), "static number of steps");
}
END_TEST

/* The remaining loop-builder errors, one row each: what is built, and the
 * fragment the error must contain. */
enum {
    E_TRUNCATE_DYNAMIC, E_TRUNCATE_NO_SEQ, E_TRUNCATE_NEGATIVE, E_TWO_STOPS, E_NEXT_NOT_STATE, E_NEXT_TWICE, E_UNROLL_STOP,
    E_LENGTHS_F32, E_LENGTHS_BATCH, E_LENGTHS_NO_SEQ, E_LENGTHS_SCALAR_STATE, E_COUNT
};

static const char *const bad_loop_fragment[E_COUNT] = {
    [E_TRUNCATE_DYNAMIC] = "truncated BPTT needs a static number of steps",
    [E_TRUNCATE_NO_SEQ] = "truncated BPTT needs sequences",
    [E_TRUNCATE_NEGATIVE] = "truncate -3: expected 0 (full BPTT) or a chunk of steps >= 1",
    [E_TWO_STOPS] = "a second stop condition",
    [E_NEXT_NOT_STATE] = "is not a state of this loop",
    [E_NEXT_TWICE] = "state 0 (initial value 'h0') has a next value already",
    [E_UNROLL_STOP] = "unroll needs sequences and no stop condition",
    [E_LENGTHS_F32] = "lengths 'len' must be i32 [B] with the batch of sequence 'x' [2, 3, 4], got f32 [2]",
    [E_LENGTHS_BATCH] = "got i32 [5]",
    [E_LENGTHS_NO_SEQ] = "lengths need sequences",
    [E_LENGTHS_SCALAR_STATE] = "states and outputs must be [B, ...]",
};

START_TEST(test_bad_loops)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, 2, _i == E_TRUNCATE_DYNAMIC ? -1 : 3, 4));
    lg_value h0 = lg_input(g, "h0", LG_F32, lg_shape_of(2, 2, 4));
    lg_loop_opts o = lg_loop_opts_default();
    o.truncate = _i == E_TRUNCATE_DYNAMIC || _i == E_TRUNCATE_NO_SEQ ? 2 : _i == E_TRUNCATE_NEGATIVE ? -3 : 0;
    o.unroll = _i == E_UNROLL_STOP;
    o.max_steps = 3;
    if (_i >= E_LENGTHS_F32)
        o.lengths = lg_input(g, "len", _i == E_LENGTHS_F32 ? LG_F32 : LG_I32, lg_shape_of(1, _i == E_LENGTHS_BATCH ? 5 : 2));
    if (_i == E_LENGTHS_SCALAR_STATE) h0 = lg_sum(h0, NULL, 0, false); /* a state without a batch dim */
    lg_loop *l = lg_loop_new(g, NULL, o);
    lg_value h = lg_loop_state(l, h0);
    bool no_seq = _i == E_TRUNCATE_NO_SEQ || _i == E_LENGTHS_NO_SEQ || _i == E_LENGTHS_SCALAR_STATE;
    lg_value next = no_seq ? lg_tanh(h) : lg_add(lg_tanh(h), lg_loop_seq(l, x));
    if (_i == E_LENGTHS_SCALAR_STATE) lg_loop_seq(l, x);
    lg_value stop = lg_sum(next, NULL, 0, false);
    lg_loop_next(l, _i == E_NEXT_NOT_STATE ? next : h, next);
    if (_i == E_NEXT_TWICE) lg_loop_next(l, h, next);
    if (_i == E_TWO_STOPS || _i == E_UNROLL_STOP) lg_loop_until(l, stop);
    if (_i == E_TWO_STOPS) lg_loop_until(l, stop);
    expect_error(lg_loop_end(l, NULL, NULL), bad_loop_fragment[_i]);
}
END_TEST

START_TEST(test_bad_memory_policy)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, 2, 3, 4));
    lg_loop_opts o = lg_loop_opts_default();
    o.memory = LG_LOOP_MEMORY_COUNT;
    lg_loop *l = lg_loop_new(g, NULL, o);
    lg_loop_emit(l, lg_tanh(lg_loop_seq(l, x)));
    expect_error(lg_loop_end(l, NULL, NULL), "not an lg_loop_memory");
}
END_TEST

/* A gradient loop keeps no per-step states for a further pass, so
 * differentiating it again is refused with a clear error. */
START_TEST(test_second_order_refused)
{
    rnn r = build_rnn(NULL, lg_loop_opts_default(), 2, 3, 2, 2);
    lg_value gw, ggw;
    ck_assert_int_eq(lg_grad(g, lg_sum(r.last, NULL, 0, false), &r.w, 1, &gw), LG_OK);
    ck_assert_int_eq(lg_grad(g, lg_sum(gw, NULL, 0, false), &r.u, 1, &ggw), LG_ERR_GRAPH);
    ck_assert_msg(strstr(lg_last_error(), "second-order gradients through loops"), "%s", lg_last_error());
}
END_TEST

START_TEST(test_null_loop_is_harmless)
{
    ck_assert_ptr_null(lg_loop_new(NULL, NULL, lg_loop_opts_default()));
    ck_assert_ptr_null(lg_loop_body(NULL));
    ck_assert(!lg_value_ok(lg_loop_seq(NULL, lg_value_invalid())));
    lg_loop_emit(NULL, lg_value_invalid());
    ck_assert_int_eq(lg_loop_end(NULL, NULL, NULL), LG_ERR_INVALID_ARGUMENT);
}
END_TEST

static Suite *loop_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("values");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_values_match_hand_recurrence);
    tcase_add_loop_test(tc, test_rolled_equals_unrolled, 0, 2);
    tcase_add_test(tc, test_nested_loops_and_integer_sequences);
    tcase_add_test(tc, test_bptt_memory_linear_in_steps);
    tcase_add_test(tc, test_memory_policies_agree);
    tcase_add_loop_test(tc, test_loop_report, 0, 2);
    tcase_add_loop_test(tc, test_truncated_bptt, 0, 2);
    tcase_add_test(tc, test_stop_condition);
    tcase_add_test(tc, test_stacked_cells_in_one_loop);
    tcase_add_loop_test(tc, test_lengths_mask_like_keras, 0, 2);
    tcase_add_test(tc, test_lengths_out_of_range);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_checked_fixture(te, setup, teardown);
    tcase_add_test(te, test_too_many_steps);
    tcase_add_test(te, test_state_without_next);
    tcase_add_test(te, test_next_of_other_shape);
    tcase_add_test(te, test_no_sequence);
    tcase_add_test(te, test_sequences_of_different_lengths);
    tcase_add_test(te, test_value_of_other_graph);
    tcase_add_test(te, test_body_error_and_body_params);
    tcase_add_test(te, test_sequence_without_time_axis);
    tcase_add_test(te, test_unroll_needs_static_length);
    tcase_add_test(te, test_null_loop_is_harmless);
    tcase_add_test(te, test_second_order_refused);
    tcase_add_test(te, test_bad_memory_policy);
    tcase_add_loop_test(te, test_bad_loops, 0, E_COUNT);
    tcase_add_test(te, test_stop_condition_not_scalar);
    suite_add_tcase(s, te);
    return s;
}

int main(void) { return lg_check_run(loop_suite()); }
