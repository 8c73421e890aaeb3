/*
 * rnn.h — the fused recurrent op pair (rnn, rnn_grad). Private to the library.
 *
 * A whole LSTM, GRU or SimpleRNN loop as one node, so a backend can run it
 * with one input-projection GEMM for all steps and, per step, one recurrent
 * GEMM plus one pass of gate math (cuDNN's shape of the problem). The
 * fuse_rnn pass puts it where a loop body matched a cell
 * (src/graph/passes/fuse_rnn_match.h); its values equal the loop's.
 *
 * Keras's equations, gate orders and weight shapes (include/graph/cells.h),
 * time-major, with G gates and H units:
 *
 *   rnn inputs   x [T, B, I], h0 [B, H], c0 [B, H] (LSTM only),
 *                W [I, G H], U [H, G H], b (with LG_RNN_BIAS: [G H], or
 *                [2, 3H] for the reset_after GRU: row 0 input, row 1
 *                recurrent), mask [T, B] (with LG_RNN_MASK; f32, f64 or i32,
 *                nonzero where the step is valid), hmask [B, H] (with
 *                LG_RNN_HMASK: Keras's recurrent dropout, see below)
 *   rnn outputs  h_T [B, H], c_T [B, H] (LSTM only), ys [T, B, H],
 *                ws [T, B, K H]: what the backward kernel reads (planes
 *                per cell, listed in lg_rnn_ws_planes; lg_rnn_cpu_sizes gives
 *                the width, which differs where oneDNN runs the op);
 *                [T, B, 0] with LG_RNN_FORWARD_ONLY
 *
 * Steps run t = 0..T-1, or T-1..0 with LG_RNN_REVERSE (ys[t] stays at t).
 * Masking is Keras's: where mask[t, b] is 0 the states keep their values and
 * ys[t, b] is 0; with LG_RNN_REPEAT (Keras 3's zero_output_for_mask=False)
 * ys[t, b] is h as the step leaves it, the output of the last valid step
 * run before it, or 0 where no step before it (in run order) was valid.
 *
 * Recurrent dropout as the layers apply it (one mask for all gates,
 * include/graph/layers.h): every product with U reads h_{t-1} hmask
 * (elementwise, the same mask at every step) where the cell reads h_{t-1};
 * the GRU's mix z h_{t-1} + (1 - z) h~ reads the unmasked h_{t-1}. A
 * dropout mask on x_t needs no flag: it is constant over time, so x is
 * multiplied by it before the node.
 *
 *   rnn_grad inputs   x, h0, c0 (LSTM), W, U, mask (LG_RNN_MASK), hmask
 *                     (LG_RNN_HMASK), ws, then the cotangents dh_T, dc_T
 *                     (LSTM), dys
 *   rnn_grad outputs  dx, dh0, dc0 (LSTM), dW, dU, db (LG_RNN_BIAS), dhmask
 *                     (LG_RNN_HMASK), scratch [n]: per-step gate gradients,
 *                     kept so the weight gradients are one GEMM over all
 *                     T B rows
 *
 * Attributes: ints = {lg_rnn_cell, flags}, or {lg_rnn_cell, flags,
 * ws_width, scratch} where the backend sizes the workspace (ws [T, B,
 * ws_width]) and rnn_grad's scratch ([scratch]) itself (backend.h's
 * rnn_plan: cuDNN's reserve space is not the CPU's planes); the CPU's
 * sizes otherwise.
 *
 * Merged nodes, which the merge_rnn pass makes from single rnn nodes (and,
 * where each has one, from their rnn_grad nodes) so that a backend may run
 * them as one call, have parts, each a single node (lg_rnn_part_of):
 *   - Bidirectional (LG_RNN_BIDIR): a forward and a reverse rnn over the
 *     same x, cuDNN's CUDNN_BIDIRECTIONAL. Part d (0 forward, 1 reverse)
 *     has flags lg_rnn_part_flags(flags, d) (a merged node's own flags
 *     never have LG_RNN_REVERSE); its inputs and outputs are the single
 *     layout's, direction after direction (x and mask once per direction).
 *     A backend that differentiates the pair in one call may write the
 *     whole dx into direction 0's and zeros into direction 1's (x's
 *     gradient is their sum).
 *   - Stacked (LG_RNN_STACK, ints = {cell, flags, layers} or {cell, flags,
 *     ws_width, scratch, layers}): layers of one cell, width and flags
 *     (all reverse or none), each reading the one below's ys, cuDNN's
 *     numLayers. Layer l's inputs are the single layout's without x for
 *     l > 0 (x is layer l - 1's ys, an output of the node), layer after
 *     layer; its outputs likewise, all of them. A stacked rnn_grad takes
 *     each layer's single inputs without dys below the top layer (layer
 *     l's dys is layer l + 1's dx, an output) and runs from the top layer
 *     down. A backend running the stack in one call need not write the
 *     layers' ys and dx below the top (nothing outside the node reads or
 *     fetches them).
 *   - Stacked bidirectional (LG_RNN_BIDIR | LG_RNN_STACK, ints as
 *     stacked, layers L at most LG_RNN_MAX_LAYERS / 2): Keras's
 *     Bidirectional layers (concat merge), each pair reading the
 *     concatenation of the pair below's ys, cuDNN's numLayers with
 *     CUDNN_BIDIRECTIONAL. Part q = 2 l + d is layer l's direction d
 *     (cuDNN's pseudo-layer), flags lg_rnn_part_flags(flags, q). Layer
 *     0's parts take the single inputs as a bidirectional node's (x and
 *     mask once per direction); each part above takes the single inputs
 *     without x, part after part, its x being the join [T, B, 2H] of
 *     layer l - 1's ys, direction 0's H features then direction 1's (see
 *     lg_rnn_join). Outputs: every part's single outputs, part after
 *     part. The rnn_grad takes each part's single inputs without dys,
 *     part after part, then the top layer's two dys; a part above layer
 *     0 gets in its x slot layer l - 1's ys of its direction (the rnn's
 *     output) and reads as x the join of its layer's two x slots; a part
 *     below the top reads as dys its direction's H-wide half of the sum
 *     of layer l + 1's two dx (outputs). Parts run from q = 0 up, the
 *     rnn_grad's from the top down. A backend running the stack in one
 *     call need not write the ys and dx of the layers below the top
 *     (merge_rnn drops what read them between the layers: the
 *     concatenation, its transposes, the dx sum and its slices) and may
 *     write layer 0's whole dx into part 0's, zeros into part 1's.
 * With the backend's sizes, part 0's ws and scratch hold the whole call's
 * spaces and the other parts' are empty ([T, B, 0], [0]). Merged nodes are
 * made after autodiff: they have no gradient rule.
 */
#ifndef LG_OPS_RNN_H
#define LG_OPS_RNN_H

#include "ops/op.h"

typedef enum lg_rnn_cell {
    LG_RNN_SIMPLE_TANH,
    LG_RNN_SIMPLE_RELU,
    LG_RNN_LSTM,             /* gates i, f, c, o; sigmoid and tanh */
    LG_RNN_GRU,              /* reset_after (cuDNN's): gates z, r, h */
    LG_RNN_GRU_RESET_BEFORE, /* reset_after false: r multiplies h before U_h */
    LG_RNN_CELL_COUNT
} lg_rnn_cell;

/* LG_RNN_FORWARD_ONLY: no rnn_grad reads this node (fuse_rnn sets it when
 * the program fetches no gradient of the loop): ws is empty ([T, B, 0]) and
 * the kernel keeps one step's planes in scratch of its own. */
enum {
    LG_RNN_BIAS = 1,
    LG_RNN_REVERSE = 2,
    LG_RNN_MASK = 4,
    LG_RNN_FORWARD_ONLY = 8,
    LG_RNN_HMASK = 16,  /* recurrent dropout: the hmask input */
    LG_RNN_REPEAT = 32, /* with LG_RNN_MASK: masked steps repeat h (see above) */
    /* several rnn_grad nodes read the workspace (several gradients of one
     * loop in a program): one that writes into what it reads (cuDNN's
     * backward, into its reserve space) works on a copy */
    LG_RNN_SHARED_WS = 64,
    LG_RNN_BIDIR = 128, /* both directions in one node (see above) */
    LG_RNN_STACK = 256, /* layers in one node (see above) */
    LG_RNN_FLAGS_ALL = 511
};

/* Part k's flags: a merged node's without LG_RNN_BIDIR and LG_RNN_STACK,
 * with LG_RNN_REVERSE for a bidirectional node's odd k (direction 1); a
 * single node's own. */
static inline unsigned lg_rnn_part_flags(unsigned flags, int k)
{
    unsigned f = flags & ~(unsigned)(LG_RNN_BIDIR | LG_RNN_STACK);
    return (flags & LG_RNN_BIDIR) && (k & 1) ? f | LG_RNN_REVERSE : f;
}

/* The most parts (layers, or directions of layers) the merge_rnn pass
 * puts in one merged node. */
enum { LG_RNN_MAX_LAYERS = 8 };

/* Whether attributes a are an rnn or rnn_grad node's (see above). */
bool lg_rnn_attrs_ok(const lg_attrs *a);

/* A merged node's parts (see above): 2 directions, the layers (times 2
 * when bidirectional), or 1 for a single node. Valid attributes only. */
int lg_rnn_parts(const lg_attrs *a);
/* Its layers: a stack's, else 1. */
int lg_rnn_layer_count(const lg_attrs *a);

/* A part's input made from two values of the merged node (a stacked
 * bidirectional node's, see above), each as lg_rnn_part's in[] names
 * them: with half < 0 the two [T, B, H] side by side, [T, B, 2H]; with
 * half 0 or 1 that H-wide half (of the last dim) of their sum, two [T, B,
 * 2H] in, [T, B, H] out. at: the part's input it is, -1 for none. */
typedef struct lg_rnn_join {
    int at;
    int from[2];
    int half;
} lg_rnn_join;

/* A join's port from its two values' ports; false where they are not
 * what the join takes. */
bool lg_rnn_join_port(const lg_rnn_join *j, lg_port a, lg_port b, lg_port *out);

/* Part k of a valid rnn (grad false) or rnn_grad node n: as a single node
 * (n_in, n_out and attributes its own: ints[4] holds them), where its
 * inputs are (in[j] >= 0: the merged node's input in[j]; LG_RNN_JOINED:
 * the join whose at is j; else its output -1 - in[j]) and where its
 * outputs start. Parts run in order, a stacked rnn_grad's from the last
 * down (lg_rnn_part_order). */
enum { LG_RNN_JOINED = -(1 << 30) };
typedef struct lg_rnn_part {
    lg_node node;
    int in[12];
    int out;
    lg_rnn_join join[2]; /* x (rnn, rnn_grad) and dys (rnn_grad) of a stacked bidirectional node's parts */
} lg_rnn_part;

lg_rnn_part lg_rnn_part_of(const lg_node *n, bool grad, int k, int64_t ints[4]);
/* The part that runs i-th of n parts. */
static inline int lg_rnn_part_order(unsigned flags, bool grad, int i, int n)
{
    return grad && (flags & LG_RNN_STACK) ? n - 1 - i : i;
}

/* A cell's name ("lstm", "gru_reset_after", ...) for reports. */
const char *lg_rnn_cell_name(lg_rnn_cell c);
int lg_rnn_cell_gates(lg_rnn_cell c);  /* G: 1, 4 or 3 */
int lg_rnn_states(lg_rnn_cell c); /* 1, or 2 for LSTM */
/* K: the workspace's width in units of H (sum of its planes). */
int lg_rnn_ws_planes(lg_rnn_cell c);
/* rnn_grad's scratch per (t, b) row in units of H (plus a [B, H] block). */
int lg_rnn_scratch_width(lg_rnn_cell c);

/* The workspace's width (elements per (t, b) row; K H for the fused
 * kernels) and rnn_grad's scratch length for a problem: the CPU backend
 * picks the implementation that runs it, and each needs its own
 * (src/backends/cpu/cpu_rnn_select.c). -1 for both while a dim is open.
 * Errors: an unusable LG_RNN_IMPL, oneDNN failing to plan. */
lg_status lg_rnn_cpu_sizes(lg_rnn_cell c, unsigned flags, lg_dtype dt, int64_t T, int64_t B, int64_t I, int64_t H,
                           int64_t *ws_width, int64_t *scratch);

/* Where each value sits in a node's inputs or outputs; -1 when absent. */
typedef struct lg_rnn_layout {
    int x, h0, c0, w, u, b, mask, hmask, n_in;            /* rnn inputs */
    int h_t, c_t, ys, ws, n_out;                          /* rnn outputs */
    int g_mask, g_hmask, g_ws, g_dh, g_dc, g_dys, g_n_in; /* rnn_grad inputs (x..U as rnn) */
    int g_dx, g_dh0, g_dc0, g_dw, g_du, g_db, g_dhmask, g_scratch, g_n_out; /* rnn_grad outputs */
} lg_rnn_layout;

lg_rnn_layout lg_rnn_layout_of(lg_rnn_cell c, unsigned flags);

/* The cell and flags of an rnn or rnn_grad node. */
static inline lg_rnn_cell lg_rnn_node_cell(const lg_node *n) { return (lg_rnn_cell)n->attrs.ints[0]; }
static inline unsigned lg_rnn_node_flags(const lg_node *n) { return (unsigned)n->attrs.ints[1]; }

/* Outputs of an rnn or rnn_grad node (graph.c sizes nodes with it). */
int lg_rnn_output_count(const lg_attrs *a, bool grad);

/* An rnn node's optional inputs: each invalid unless flags say
 * LG_RNN_BIAS / LG_RNN_MASK / LG_RNN_HMASK. */
typedef struct lg_rnn_extras {
    lg_value b, mask, hmask;
} lg_rnn_extras;

/* Build an rnn node in x's graph: states h0 (and c0). Returns the node id,
 * or -1 with the error recorded (shapes named). */
int32_t lg_rnn_build(lg_rnn_cell cell, unsigned flags, lg_value x, const lg_value *states, lg_value w, lg_value u,
                     lg_rnn_extras e, const char *name);
/* The same with a backend's sizes (lg_rnn_sizes from rnn_plan); NULL or
 * both 0: the CPU's. */
typedef struct lg_rnn_sizes {
    int64_t ws_width; /* ws [T, B, ws_width] */
    int64_t scratch;  /* rnn_grad's scratch [scratch] */
} lg_rnn_sizes;
int32_t lg_rnn_build_sized(lg_rnn_cell cell, unsigned flags, const lg_rnn_sizes *sizes, lg_value x,
                           const lg_value *states, lg_value w, lg_value u, lg_rnn_extras e, const char *name);

/* What a backend's rnn_plan (backend.h) is asked about: a matched loop as
 * one rnn node (T, B, I, H concrete), with whether its mask comes from
 * per-example lengths (a prefix of valid steps per example) or may have
 * holes. */
typedef struct lg_rnn_desc {
    lg_rnn_cell cell;
    unsigned flags; /* LG_RNN_BIAS, LG_RNN_REVERSE, LG_RNN_MASK, LG_RNN_HMASK, LG_RNN_REPEAT,
                       LG_RNN_SHARED_WS (not FORWARD_ONLY); LG_RNN_BIDIR: a merged pair (I, H each
                       direction's) */
    lg_dtype dtype;
    int64_t T, B, I, H;
    int layers; /* LG_RNN_STACK: the stack's layers (I the lowest's input, H every layer's; with
                   LG_RNN_BIDIR each layer above the lowest reads 2H); else 0 or 1 */
    bool mask_by_lengths;
    const char *name; /* the loop's, for messages */
} lg_rnn_desc;

#endif
