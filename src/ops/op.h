/*
 * op.h — the op descriptor: what the graph needs to know about an op.
 *
 * One descriptor per op (lg_op_def_<name>), defined in the op family's file
 * in src/ops and collected into lg_op_defs[] by registry.c from op_list.h.
 */
#ifndef LG_OP_H
#define LG_OP_H

#include "graph/internal.h"

/* Output ports from input ports and attributes. Called by the builder (dims
 * may be -1) and again at compile with every dim concrete. On failure writes
 * a message naming the shapes to err and returns false. */
typedef bool (*lg_infer_fn)(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t err_size);

/* Gradient rule, written with builders: given dy[k] for each output (an
 * invalid value where no gradient reaches output k), set dx[i] for each
 * differentiable input. Leaving dx[i] invalid means "no gradient". */
typedef void (*lg_grad_fn)(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx);

typedef struct lg_op_def {
    const char *name;
    int n_in; /* -1: any number >= 1 */
    lg_infer_fn infer; /* NULL for sources, whose port is set when made */
    lg_grad_fn grad; /* NULL: no input gets a gradient */
} lg_op_def;

#define LG_X_DECL(ID, name) extern const lg_op_def lg_op_def_##name;
LG_OPS(LG_X_DECL)
#undef LG_X_DECL

extern const lg_op_def *const lg_op_defs[LG_OP_COUNT];

/* Whether op computes (the executor runs a kernel for it): every op after
 * the sources (input, parameter, constant, which are bound to buffers),
 * control ops (the loop) included. */
#define LG_X_ONE(ID, name) +1
static inline bool lg_op_is_compute(lg_op op) { return (int)op >= 0 LG_SOURCE_OPS(LG_X_ONE); }
#undef LG_X_ONE

/* n's op's shape inference, then the size rule (lg_shape_bytes, unknown
 * dims counted as 1) on every output: the one place the builder, compile
 * and loop bodies infer ports, so no port too large for memory gets past. */
bool lg_op_infer(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t err_size);

/* ---- helpers shared by op families -------------------------------------- */

/* Normalise a possibly negative axis for rank; -1 if out of range. */
int lg_axis_norm(int axis, int rank);
/* numpy broadcast of a and b into out; false if incompatible. -1 dims: -1
 * with 1 gives -1, -1 with n gives n (checked at compile). */
bool lg_broadcast_shapes(lg_shape a, lg_shape b, lg_shape *out);
/* Format an error naming the shapes of every input. */
void lg_infer_error(char *err, size_t size, const lg_port *in, int n_in, const char *why);
bool lg_is_float(lg_dtype t);
/* A rank-0 constant of x's dtype, in x's graph. */
lg_value lg_scalar_like(lg_value x, double v);
/* A gather's attrs.axis: its indices are per-example lengths minus one
 * (lg_loop_opts.lengths), and a bad one is reported as the length it came
 * from, "lengths[b] = 7 outside [1, 6]", not as an index. */
enum { LG_GATHER_OF_LENGTHS = 1 };
/* In an infer function (parameters n, in, err, size): report why and fail. */
#define LG_INFER_FAIL(why)                                  \
    do {                                                    \
        lg_infer_error(err, size, in, n->n_in, why);        \
        return false;                                       \
    } while (0)


#endif
