/*
 * fused_elementwise.h — the fused elementwise op: a tree or DAG of
 * same-shaped elementwise ops run as one kernel. Private to the library.
 *
 * Only the fuse_elementwise pass makes it, in compile-time graphs after
 * autodiff, so it has no gradient rule. Its inputs are the group's leaves
 * (values computed outside it); each broadcasts to the output's shape as
 * the ops it replaced broadcast them (a scalar, a row [H] of [B, H], ...).
 * attrs.dtype is the element type (f32 or f64); attrs.axis is 0, or the
 * output's last dim when inputs are read in windows (below); attrs.ints is
 * a postfix program, LG_FEW_WIDTH ints an instruction:
 *
 *     {LG_OP_INPUT, k, c0, 0}     push input k; c0 > 0 reads a window of it:
 *                                 along the last dim, the output's element
 *                                 j is the input's c0 + j (a piece of a
 *                                 split along the last axis, read in place;
 *                                 every load of input k has the same c0)
 *     {op, cmp, r0, r1}           pop the op's inputs, push its result; op is
 *                                 an elementwise op (add .. stop_gradient in
 *                                 op_list.h, not cast), cmp its comparison,
 *                                 r0 and r1 the bits of its attrs.real
 *     {LG_FEW_STORE, k, 0, 0}     write the top value to output k (k >= 1),
 *                                 leaving it on the stack; it follows an op
 *     {LG_FEW_RELOAD, k, 0, 0}    push output k again (stored before)
 *     {LG_FEW_PUT, c0, 0, 0}      pop the top value into output 0's window
 *                                 from column c0 (a concatenation's piece)
 *
 * For add(sigmoid(x), b): {INPUT 0} {SIGMOID} {INPUT 1} {ADD}. The value
 * left at the end is output 0; outputs 1 .. are the group's values that are
 * read outside it (a loop's next state, a residual its gradient reads, a
 * fetch), or read twice inside it, stored once each, in order. The outputs
 * have the shape the inputs broadcast to (with windows: last dim
 * attrs.axis), except that in a program that puts, nothing is left at the
 * end: its P puts fill output 0 at columns 0, w, 2 w, .. (w = attrs.axis),
 * so output 0's last dim is P w (a concatenation along the last axis).
 * Every value on the stack is of attrs.dtype, except that where's mask may
 * be an input of any dtype (it is read as "!= 0"). The program holds at
 * most LG_FEW_MAX_DEPTH values at a time, runs at most LG_FEW_MAX_OPS ops
 * and has at most LG_FEW_MAX_OUTPUTS outputs.
 */
#ifndef LG_FUSED_ELEMENTWISE_H
#define LG_FUSED_ELEMENTWISE_H

#include "ops/op.h"

enum { LG_FEW_WIDTH = 4, LG_FEW_MAX_DEPTH = 8, LG_FEW_MAX_INPUTS = 24, LG_FEW_MAX_OPS = 64, LG_FEW_MAX_OUTPUTS = 8 };

/* The instructions that are not ops (op codes are >= 0). */
enum { LG_FEW_STORE = -1, LG_FEW_RELOAD = -2, LG_FEW_PUT = -3 };

/* Whether the pass may put op into a fused program: the elementwise ops,
 * cast (which changes the dtype) left out. */
static inline bool lg_few_fusible(lg_op op) { return op >= LG_OP_ADD && op <= LG_OP_STOP_GRADIENT && op != LG_OP_CAST; }

/* Inputs op pops: where 3, the binary ops 2, the unary ops 1. */
int lg_few_arity(lg_op op);

/* The instruction that runs node n (a fusible op) of a graph. */
void lg_few_encode(const lg_node *n, int64_t *ins);
/* The node fields an instruction carries (op, cmp and reals), for the
 * kernel's expressions. */
lg_node lg_few_decode(const int64_t *ins);

/* Elementwise ops fused into n (its program's op instructions). */
int lg_few_op_count(const lg_node *n);

/* The outputs a program with attrs a has: 1 + its stores. */
int lg_few_output_count(const lg_attrs *a);

/* Whether n's program puts its pieces into output 0 (and so writes it in
 * windows, not element by element). */
bool lg_few_puts(const lg_node *n);

/* n's program as text, e.g. "add(sigmoid(in0), in1)", a stored value as
 * "out1=tanh(in2)" where it is computed and "out1" where it is read again,
 * into buf; the text is cut at size. */
void lg_few_describe(const lg_node *n, char *buf, size_t size);

#endif
