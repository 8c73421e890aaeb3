/*
 * test_verify.c — the verify pass (src/graph/passes/verify.c) refuses a
 * compile-time graph that lowering or a pass got wrong, naming the node
 * and what is wrong with it: an input that is not an earlier node's
 * output, a shape that is not concrete, ports that the op's inference does
 * not give, inference that fails, a loop whose inputs do not add up, a
 * fetch of an output that does not exist. Each case lowers a well-formed
 * graph (which verifies), breaks one thing in the copy, and runs the pass.
 */
#include <check.h>
#include <string.h>

#include "graph/passes/passes.h"
#include "test_util.h"

enum { B = 2, F = 3, H = 4 };

typedef enum breakage {
    LATER_INPUT,     /* tanh reads the add after it */
    MISSING_OUTPUT,  /* add reads tanh's output 1 */
    OPEN_SHAPE,      /* tanh's output [-1, 3] */
    WRONG_PORT,      /* tanh's output f64 [2, 4] */
    FAILED_INFER,    /* matmul of [2, 3] and [3, 4] marked trans_b */
    LOOP_INPUTS,     /* the rnn loop with one input fewer than its spec says */
    BAD_FETCH,       /* fetch of the add's output 2 */
    BREAKAGE_COUNT
} breakage;

static const char *const says[BREAKAGE_COUNT] = {
    [LATER_INPUT] = "verify: tanh 'tanh': input 0 refers to node 2 output 0, not an earlier node",
    [MISSING_OUTPUT] = "verify: add 'add': input 0 refers to node 1 output 1, not an earlier node",
    [OPEN_SHAPE] = "verify: tanh 'tanh': output 0 has shape [?, 3], not concrete",
    [WRONG_PORT] = "verify: tanh 'tanh': output 0 is f64 [2, 4], its inputs give f64 [2, 3]",
    [FAILED_INFER] = "verify: matmul 'matmul': f64 [2, 3], f64 [3, 4]: inner or batch dims differ",
    [LOOP_INPUTS] = "verify: loop 'cell/loop': 4 inputs for 1 sequences, 1 states, 3 invariants, 0 accumulators and 0 "
                    "lengths or masks",
    [BAD_FETCH] = "verify: fetch 0 refers to node 2 output 2, which does not exist",
};

static int32_t node_of(const lg_graph *g, lg_op op)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == op) return i;
    ck_abort_msg("no node of op %d", (int)op);
    return -1;
}

/* z = tanh(x) + x, and m = x w (w [3, 4]); or an rnn over x [B, T, F]. */
START_TEST(verify_refuses)
{
    breakage b = (breakage)_i;
    lg_graph *g = lg_graph_new();
    lg_cell *cell = NULL;
    lg_value out;
    lg_port port = {LG_F64, lg_shape_of(2, B, F)};
    lg_value x;
    if (b == LOOP_INPUTS) {
        x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, 5, F));
        port.shape = lg_shape_of(3, B, 5, F);
        cell = lg_test_cell(g, "cell", LG_CELL_SIMPLE_RNN, F, H, 7);
        lg_rnn_result r;
        ck_assert_int_eq(lg_rnn(g, NULL, cell, x, lg_rnn_opts_default(), &r), LG_OK);
        out = r.output;
    } else if (b == FAILED_INFER) {
        x = lg_input(g, "x", LG_F64, lg_shape_of(2, B, F));
        lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(2, F, H));
        out = lg_matmul(x, w, false, false);
    } else {
        x = lg_input(g, "x", LG_F64, lg_shape_of(2, B, F));
        out = lg_add(lg_tanh(x), x);
    }
    ck_assert_ptr_null(lg_graph_error(g));
    lg_cgraph cg = {0};
    lg_ref fetch = {out.node, out.output};
    ck_assert_int_eq(lg_cgraph_lower(g, &x.node, &port, 1, &fetch, 1, &cg), LG_OK);
    ck_assert_msg(lg_pass_verify(&cg) == LG_OK, "the lowered graph: %s", lg_last_error());

    lg_graph *cgg = cg.g;
    switch (b) {
    case LATER_INPUT: cgg->nodes[node_of(cgg, LG_OP_TANH)].in[0].node = node_of(cgg, LG_OP_ADD); break;
    case MISSING_OUTPUT: cgg->nodes[node_of(cgg, LG_OP_ADD)].in[0].out = 1; break;
    case OPEN_SHAPE: cgg->nodes[node_of(cgg, LG_OP_TANH)].out[0].shape.dims[0] = -1; break;
    case WRONG_PORT: cgg->nodes[node_of(cgg, LG_OP_TANH)].out[0].shape.dims[1] = H; break;
    case FAILED_INFER: cgg->nodes[node_of(cgg, LG_OP_MATMUL)].attrs.trans_b = true; break;
    case LOOP_INPUTS: cgg->nodes[node_of(cgg, LG_OP_LOOP)].n_in--; break;
    case BAD_FETCH: cg.outputs[0].out = 2; break;
    default: ck_abort();
    }
    ck_assert_int_eq(lg_pass_verify(&cg), LG_ERR_GRAPH);
    ck_assert_msg(strstr(lg_last_error(), says[b]), "case %d: '%s' lacks '%s'", _i, lg_last_error(), says[b]);
    if (b == LOOP_INPUTS) cgg->nodes[node_of(cgg, LG_OP_LOOP)].n_in++; /* as allocated, for lg_graph_free */
    lg_cgraph_free(&cg);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("verify");
    TCase *tc = tcase_create("verify");
    tcase_add_loop_test(tc, verify_refuses, 0, BREAKAGE_COUNT);
    suite_add_tcase(s, tc);
    return lg_check_run(s);
}
