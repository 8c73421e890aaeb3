/*
 * gradcheck_rows.h — the gradcheck row table: one small f64 graph per row,
 * covering every op (with its gradient), shared by the suites that run it.
 *
 * A row names a builder family and an op of it, its inputs (kind, shape,
 * value range or given values), the kink points its input values avoid, and
 * a tolerance when lg_gradcheck's default does not fit. A built row is a new
 * graph whose scalar f64 loss is sum(y * R) of the row's output y (R a fixed
 * random constant of y's shape, so every element of y reaches the loss), or
 * y itself when y is a scalar (the losses). Every f64 input or parameter is a
 * wrt value; "aux" inputs are fed but not differentiated (stop_gradient's
 * operand, "like" operands, loss targets). Values are reproducible: row i
 * builds the same graph, feeds and parameters every time.
 *
 * Suites using it: test_gradcheck_ops.c (lg_gradcheck on every row, and
 * every op in some row), test_cuda.c (every row's loss and gradients on
 * cuda:0 against the CPU).
 */
#ifndef LG_TEST_GRADCHECK_ROWS_H
#define LG_TEST_GRADCHECK_ROWS_H

#include <stdbool.h>

#include "graph/loopgrad.h"

enum { GC_MAX_IN = 4 };

/* A built row. The graph, and the tensors of feeds[], belong to it:
 * gc_built_free releases them. */
typedef struct gc_built {
    lg_graph *graph;            /* lg_graph_error(graph) set: the row did not build */
    lg_value loss;              /* scalar f64 */
    lg_value wrt[GC_MAX_IN];    /* the row's f64 inputs and parameters, in row order */
    int n_wrt;
    lg_feed feeds[GC_MAX_IN];   /* every placeholder (wrt and aux inputs) with its values */
    int n_feeds;
    long long wrt_elems;        /* elements over wrt[] */
    lg_gradcheck_opts tol;      /* the row's tolerance; lg_gradcheck_opts_default() unless it sets one */
} gc_built;

/* The number of rows; rows are 0 .. gc_row_count() - 1. */
int gc_row_count(void);
/* Row i's name ("matmul [3,4]x[4,5]"), for messages. */
const char *gc_row_name(int row);
/* Build row `row` into *out: a new graph, its loss, wrt values and feeds.
 * Fails the running Check test if the row's own table entry is inconsistent
 * (an input of more than 128 elements, a "gap" row of unequal shapes). */
void gc_row_build(int row, gc_built *out);
/* Release what gc_row_build made; *b is then empty (a second free is fine). */
void gc_built_free(gc_built *b);
/* Set seen[k] for every op lg_op_name(k) of a node g now holds (seen has
 * lg_op_count() entries); after lg_gradcheck or lg_grad, gradient nodes too. */
void gc_mark_ops(const lg_graph *g, bool *seen);

#endif
