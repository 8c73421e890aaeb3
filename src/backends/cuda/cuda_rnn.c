/*
 * cuda_rnn.c — the fused rnn/rnn_grad op pair (ops/rnn.h) on cuDNN
 * (cudnn_rnn.h), and the backend's rnn_plan: whether cuDNN computes a
 * matched loop exactly (rnn_pack.h's eligibility) and the sizes its rnn
 * node's workspace and its rnn_grad's scratch take.
 *
 * Why the workspace is the rnn node's output, sized by the backend, rather
 * than memory the kernel keeps aside per node: it is then planned, freed
 * and reported with the program like any buffer; two rnn nodes of the same
 * shapes each keep their own reserve space from forward to backward; and
 * nothing outlives the program (a backend hears nothing when a program is
 * freed). What is shared lives in the context, one entry per (spec, B, T):
 * cuDNN's descriptors, the packing map and cuDNN's temporary workspace,
 * which only the call in flight uses (the context's one stream orders
 * calls).
 *
 * The workspace, from a 256-byte-aligned base inside the buffer (the plan
 * aligns buffers to 64 bytes; rnn_pack.h's lg_rnn_spaces_of places them):
 *   weights   cuDNN's weight space, packed from W, U, b by the forward and
 *             read again by the backward (no repack)
 *   reserve   cuDNN's reserve space (training forward only)
 *   y         the output in cuDNN's step order, which its backward calls
 *             read (rnn_grad has no ys input); training, reverse or
 *             bidirectional
 *   x         x with each example's valid steps reversed (reverse only)
 *   hx, cx, hy, cy  bidirectional or stacked only: cuDNN's states
 *             [P, B, H] over its P pseudo-layers (a bidirectional call's
 *             direction 0, then 1; a stack's layer 0 up), staged from and to
 *             the parts' h0, c0, h_T, c_T (see below)
 * rnn_grad's scratch: dweights (packed weight gradients, zeroed before
 * cudnnRNNBackwardWeights_v8, then unpacked into dW, dU, db), with
 * reverse dy and dx in cuDNN's order, bidirectional dy [T, B, 2H], with
 * several pseudo-layers the states hx, cx, dhy, dcy, dhx, dcx [P, B, H],
 * and, where another rnn_grad
 * reads the same workspace (LG_RNN_SHARED_WS: two gradients of one loop in
 * a program, which fuse_rnn counts before it asks the plan), room for a
 * copy of the reserve space: cudnnRNNBackwardData_v8 writes into the
 * reserve it is given, so each works on a copy.
 *
 * A merged bidirectional node (LG_RNN_BIDIR, ops/rnn.h) is one cuDNN call
 * with CUDNN_BIDIRECTIONAL: direction 0's workspace and scratch hold the
 * whole call's spaces above (direction 1's are empty). Its pseudo-layers 0
 * and 1 are the forward and reverse directions; cuDNN's y [T, B, 2H] holds
 * per step the forward's H outputs then the reverse's, each aligned with
 * forward time (the rnn op's convention for a reverse direction), so the
 * forward splits it into the two ys and the backward joins the two dys
 * into it. cuDNN's dx is the sum over both directions: it goes into
 * direction 0's dx, zeros into direction 1's (rnn.h allows it).
 *
 * What a merged node copies between its parts' tensors and these spaces
 * (its states; a bidirectional call's y and dy) is rnn_pack.h's staging
 * plan (lg_rnn_stages_of, which the CPU suite tests), and stage() runs it:
 * a state as one copy, a y or dy with the bidirectional kernels, which
 * also zero each example's steps past its length.
 *
 * A merged stacked node (LG_RNN_STACK) of L layers is one cuDNN call with
 * numLayers L, on the single node's path: layer 0's workspace and scratch
 * hold the whole call's spaces (the other layers' are empty), every
 * layer's W, U, b are packed (pseudo-layer l is layer l), the states are
 * staged as above, y is the top layer's ys and dy its dys, dx goes into
 * layer 0's dx. The layers' ys and dx below the top are left unwritten:
 * cuDNN keeps what lies between layers in its reserve space, and nothing
 * outside the node reads them (rnn.h; merge_rnn merges only such stacks).
 * A reversed stack (every layer LG_RNN_REVERSE) runs as a reversed single
 * node does (spec.reverse): the stack forwards over each example's valid
 * steps of x reversed, its top ys reversed back.
 *
 * A merged stacked bidirectional node (LG_RNN_BIDIR | LG_RNN_STACK) of L
 * layers is one cuDNN call with numLayers L and CUDNN_BIDIRECTIONAL: part
 * q = 2 l + d is cuDNN's pseudo-layer q (its W, U, b packed there, its
 * states staged at [q, B, H]), layer l > 0 reads in cuDNN what the node's
 * join says (layer l - 1's outputs, forward then reverse features), the
 * top layer's two ys and dys are staged as a bidirectional node's, layer
 * 0's dx goes into part 0's and zeros into part 1's. The joins themselves,
 * and the ys and dx below the top, are never read or written here (rnn.h
 * allows it: merge_rnn dropped what read them).
 *
 * A mask ([T, B], from per-example lengths: the plan refuses one that may
 * have holes) comes to the host as lengths, as cuDNN's data descriptors
 * take them: one small copy and sync per call of a masked loop.
 */

#include "backends/cuda/cuda.h"
#include "backends/cuda/cudnn_rnn.h"
#include "backends/cuda/kernels.h"
#include "ops/rnn.h"

enum { ALIGN = LG_RNN_SPACE_ALIGN };

struct lg_cuda_rnn_entry {
    lg_rnn_spec spec;
    int64_t B, T;
    bool tf32; /* the context's math when it was made */
    lg_cudnn_rnn *r;
    struct lg_cuda_rnn_entry *next;
};

void lg_cuda_rnn_cache_free(lg_cuda_ctx *c)
{
    while (c->rnns) {
        struct lg_cuda_rnn_entry *e = c->rnns;
        c->rnns = e->next;
        lg_cudnn_rnn_free(e->r);
        free(e);
    }
}

/* The layer rnn_pack judges: cell, flags and dims of a fused rnn node. */
static lg_rnn_layer_desc layer_of(lg_rnn_cell cell, unsigned flags, lg_dtype dt, int64_t I, int64_t H,
                                  bool hole_mask, const char *name)
{
    bool simple = cell == LG_RNN_SIMPLE_TANH || cell == LG_RNN_SIMPLE_RELU;
    return (lg_rnn_layer_desc){
        .name = name,
        .kind = simple ? LG_CELL_SIMPLE_RNN : cell == LG_RNN_LSTM ? LG_CELL_LSTM : LG_CELL_GRU,
        .dtype = dt,
        .input_dim = I,
        .units = H,
        .activation = cell == LG_RNN_SIMPLE_RELU ? LG_ACT_RELU : LG_ACT_TANH,
        .recurrent_activation = LG_ACT_SIGMOID,
        .use_bias = flags & LG_RNN_BIAS,
        .reset_after = cell != LG_RNN_GRU_RESET_BEFORE,
        .recurrent_dropout = flags & LG_RNN_HMASK,
        .go_backwards = flags & LG_RNN_REVERSE,
        .hole_mask = hole_mask,
        .repeat_output = (flags & LG_RNN_REPEAT) && (flags & LG_RNN_MASK),
        .bidirectional = flags & LG_RNN_BIDIR,
        .merge = LG_MERGE_CONCAT,
    };
}

/* The spec of the one cuDNN call that computes `layers` layers of this
 * cell and flags (a single or bidirectional node: 1; a stack's layers
 * above the first read H-wide ys, 2H-wide where bidirectional: the
 * directions concatenated), if cuDNN computes them exactly; else false
 * with why. */
static bool judge(lg_rnn_cell cell, unsigned flags, lg_dtype dt, int64_t I, int64_t H, int layers, bool hole_mask,
                  const char *name, lg_rnn_spec *s, char *why, size_t len)
{
    int dirs = flags & LG_RNN_BIDIR ? 2 : 1;
    if (layers < 1 || layers * dirs > LG_RNN_MAX_LAYERS) {
        snprintf(why, len, "loop '%s': a stack of %d layers; one cuDNN call takes 1 to %d here", name, layers,
                 LG_RNN_MAX_LAYERS / dirs);
        return false;
    }
    lg_rnn_layer_desc l[LG_RNN_MAX_LAYERS];
    for (int k = 0; k < layers; k++) l[k] = layer_of(cell, flags, dt, k ? dirs * H : I, H, hole_mask, name);
    return lg_rnn_eligible(l, layers, s, why, len) == LG_RNN_ELIGIBLE;
}

static bool same_spec(const lg_rnn_spec *a, const lg_rnn_spec *b)
{
    return a->kind == b->kind && a->dtype == b->dtype && a->input_dim == b->input_dim && a->units == b->units &&
           a->layers == b->layers && a->bidirectional == b->bidirectional && a->use_bias == b->use_bias &&
           a->relu == b->relu && a->reverse == b->reverse;
}

/* The context's cuDNN RNN for spec over [T, B], made (and bound to the
 * [W | U | b] layout) on first use. */
static lg_status entry(lg_cuda_ctx *c, const lg_rnn_spec *s, int64_t B, int64_t T, lg_cudnn_rnn **out)
{
    for (struct lg_cuda_rnn_entry *e = c->rnns; e; e = e->next)
        if (same_spec(&e->spec, s) && e->B == B && e->T == T && e->tf32 == c->allow_tf32) {
            *out = e->r;
            return LG_OK;
        }
    struct lg_cuda_rnn_entry *e = calloc(1, sizeof *e);
    if (!e) return lg_fail(LG_ERR_OUT_OF_MEMORY, "cuDNN RNN: out of host memory");
    /* one source per pseudo-layer: a bidirectional call's 2, a stack's layers */
    lg_rnn_src src[LG_CUDA_PARTS / 3];
    LG_ASSERT(lg_rnn_pseudo_layers(s) <= LG_CUDA_PARTS / 3);
    lg_rnn_src_dense(s, src);
    lg_status st = lg_cudnn_rnn_new(c, s, B, T, true, &e->r);
    if (!st) st = lg_cudnn_rnn_bind(e->r, src);
    if (st) {
        lg_cudnn_rnn_free(e->r);
        free(e);
        return st;
    }
    *e = (struct lg_cuda_rnn_entry){.spec = *s, .B = B, .T = T, .tf32 = c->allow_tf32, .r = e->r, .next = c->rnns};
    c->rnns = e;
    *out = e->r;
    return LG_OK;
}

/* Byte offsets in the workspace and scratch (see the overview). */
static lg_rnn_spaces spaces_of(const lg_cudnn_rnn *r, int64_t T, int64_t B, bool train, unsigned flags)
{
    return lg_rnn_spaces_of(lg_cudnn_rnn_spec(r), T, B, lg_cudnn_rnn_weight_bytes(r), lg_cudnn_rnn_reserve_bytes(r),
                            train, flags & LG_RNN_SHARED_WS);
}

bool lg_cuda_rnn_plan(lg_cuda_ctx *c, const lg_rnn_desc *d, lg_rnn_sizes *train, lg_rnn_sizes *forward, char *why,
                      size_t len)
{
    lg_rnn_spec s;
    if (!judge(d->cell, d->flags, d->dtype, d->I, d->H, d->flags & LG_RNN_STACK ? d->layers : 1,
               (d->flags & LG_RNN_MASK) && !d->mask_by_lengths, d->name, &s, why, len))
        return false;
    if (d->T < 1 || d->B < 1 || d->T > INT32_MAX || d->B > INT32_MAX) {
        snprintf(why, len, "loop '%s': %lld steps of batch %lld; cuDNN needs both in [1, 2^31)", d->name,
                 (long long)d->T, (long long)d->B);
        return false;
    }
    lg_cudnn_rnn *r = NULL;
    if (entry(c, &s, d->B, d->T, &r)) {
        snprintf(why, len, "loop '%s': cuDNN could not set it up: %s", d->name, lg_last_error());
        return false;
    }
    size_t es = lg_dtype_size(d->dtype), row = (size_t)(d->T * d->B) * es;
    for (int k = 0; k < 2; k++) {
        lg_rnn_spaces p = spaces_of(r, d->T, d->B, k == 0, d->flags);
        lg_rnn_sizes *z = k == 0 ? train : forward;
        /* ALIGN more: the kernels align the base up */
        z->ws_width = (int64_t)((p.ws_bytes + ALIGN + row - 1) / row);
        z->scratch = (int64_t)((p.scratch_bytes + ALIGN + es - 1) / es);
    }
    return true;
}

static void *aligned(void *p) { return (void *)(((uintptr_t)p + ALIGN - 1) / ALIGN * ALIGN); }
static size_t buf_bytes(const lg_buf *b) { return (size_t)lg_shape_numel(b->shape) * lg_dtype_size(b->dtype); }

/* Host lengths [B] of a mask [T, B] (any dtype, nonzero where valid): the
 * valid steps of each example, which the plan made a prefix. NULL mask:
 * NULL (every example runs T steps). */
static lg_status lengths_of(lg_cuda_ctx *c, const lg_node *n, const lg_buf *mask, int64_t T, int64_t B,
                            int32_t **out)
{
    *out = NULL;
    if (!mask) return LG_OK;
    size_t es = lg_dtype_size(mask->dtype);
    unsigned char *m = malloc((size_t)(T * B) * es);
    int32_t *len = calloc((size_t)B, sizeof *len);
    lg_status st = m && len ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "rnn '%s': out of host memory", n->name);
    if (!st) st = lg_cuda_copy_d2h(c, m, mask->data, (size_t)(T * B) * es);
    for (int64_t i = 0; !st && i < T * B; i++) {
        bool on = mask->dtype == LG_F32   ? ((float *)m)[i] != 0
                  : mask->dtype == LG_F64 ? ((double *)m)[i] != 0
                                          : ((int32_t *)m)[i] != 0;
        len[i % B] += on;
    }
    for (int64_t b = 0; !st && b < B; b++)
        if (len[b] < 1)
            st = lg_fail(LG_ERR_INVALID_ARGUMENT,
                         "rnn '%s' on cuDNN: example %lld has length 0; cuDNN runs at least one step per example",
                         n->name, (long long)b);
    free(m);
    if (st) {
        free(len);
        return st;
    }
    *out = len;
    return LG_OK;
}

/* The node's cuDNN RNN, dims, spaces and stages (rnn_pack.h; none for a
 * single node); the rnn (grad false) or rnn_grad (true) node's inputs. L:
 * the layout of one part (a merged node's other parts follow it,
 * lg_rnn_part_of); layers: a stack's, else 1; top: the last part (the
 * top layer's, or its direction 1); masked: the call runs over the mask's
 * lengths. */
typedef struct call {
    lg_rnn_cell cell;
    unsigned flags;
    bool grad, masked;
    int layers, top;
    lg_rnn_layout L;
    int64_t T, B, I, H;
    lg_dtype dt;
    lg_cudnn_rnn *r;
    lg_rnn_spaces p;
    int n_stages;
    /* entry makes calls of at most LG_CUDA_PARTS / 3 pseudo-layers */
    lg_rnn_stage stages[LG_RNN_STAGES_PER_LAYER * (LG_CUDA_PARTS / 3)];
} call;

static lg_status begin(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, bool grad, call *k)
{
    *k = (call){.cell = lg_rnn_node_cell(n), .flags = lg_rnn_node_flags(n), .grad = grad};
    bool stack = k->flags & LG_RNN_STACK;
    k->layers = lg_rnn_layer_count(&n->attrs);
    k->top = lg_rnn_parts(&n->attrs) - 1;
    k->L = lg_rnn_layout_of(k->cell, lg_rnn_part_flags(k->flags, 0));
    const lg_buf *x = &in[k->L.x];
    k->dt = x->dtype;
    k->T = x->shape.dims[0], k->B = x->shape.dims[1], k->I = x->shape.dims[2];
    k->H = in[k->L.u].shape.dims[0];
    lg_rnn_spec s;
    char why[256];
    bool sized = n->attrs.n_ints == (stack ? 5 : 4);
    if (!sized || !judge(k->cell, k->flags, k->dt, k->I, k->H, k->layers, false, n->name, &s, why, sizeof why))
        return lg_fail(LG_ERR_UNSUPPORTED, "%s '%s': not planned for cuDNN on cuda:%d%s%s", grad ? "rnn_grad" : "rnn",
                       n->name, c->device, sized ? ": " : " (no backend sizes)", sized ? why : "");
    lg_status st = entry(c, &s, k->B, k->T, &k->r);
    int mask_at = grad ? k->L.g_mask : k->L.mask;
    int32_t *lengths = NULL;
    if (!st) st = lengths_of(c, n, mask_at >= 0 ? &in[mask_at] : NULL, k->T, k->B, &lengths);
    /* set_lengths keeps a copy */
    if (!st) st = lg_cudnn_rnn_set_lengths(k->r, lengths);
    k->masked = lengths != NULL;
    free(lengths);
    if (st) return st;
    k->p = spaces_of(k->r, k->T, k->B, grad || !(k->flags & LG_RNN_FORWARD_ONLY), k->flags);
    k->n_stages = lg_rnn_stages_of(lg_cudnn_rnn_spec(k->r), &k->p, k->T, k->B, grad, k->stages);
    return LG_OK;
}

/* The spaces of node n in buffer b (the workspace or scratch), checked
 * against its size. */
static lg_status space_base(const lg_node *n, const lg_buf *b, size_t need, char **out)
{
    char *base = aligned(b->data);
    if ((size_t)(base - (char *)b->data) + need > buf_bytes(b))
        return lg_fail(LG_ERR_RUNTIME, "'%s': its cuDNN spaces need %zu bytes, the buffer has %zu (sized for other "
                                       "shapes?)",
                       n->name, need, buf_bytes(b));
    *out = base;
    return LG_OK;
}

_Static_assert(LG_CUDA_PARTS >= 3 * LG_RNN_MAX_LAYERS && LG_CUDA_PARTS >= 3 * 2,
               "lg_cuda_parts holds W, U, b of each pseudo-layer of a stack or a bidirectional call");

/* Part l's single-layout input j (an input of the node, not another
 * part's output) and output j; NULL for j < 0 (absent). A single node is
 * its own part 0. */
static void *in_at(const lg_node *n, const lg_buf *in, bool grad, int l, int j)
{
    if (j < 0) return NULL;
    int64_t ints[4];
    lg_rnn_part p = lg_rnn_part_of(n, grad, l, ints);
    LG_ASSERT(p.in[j] >= 0);
    return in[p.in[j]].data;
}

static void *out_at(const lg_node *n, lg_buf *out, bool grad, int l, int j)
{
    if (j < 0) return NULL;
    int64_t ints[4];
    return out[lg_rnn_part_of(n, grad, l, ints).out + j].data;
}

/* The W, U, b (rnn_grad: dW, dU, db; b NULL without bias) of each of the
 * call's pseudo-layers (directions, or a stack's layers: part d is
 * pseudo-layer d) as the parts of the source buffer the packing map
 * indexes (lg_rnn_src_dense: pseudo-layer by pseudo-layer). */
static lg_cuda_parts parts_of(const call *k, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    const lg_rnn_spec *s = lg_cudnn_rnn_spec(k->r);
    const lg_rnn_layout *L = &k->L;
    lg_rnn_src src[LG_CUDA_PARTS / 3];
    lg_rnn_src_dense(s, src);
    lg_cuda_parts parts;
    for (int j = 0; j < LG_CUDA_PARTS; j++) parts.ptr[j] = NULL, parts.start[j] = -1;
    for (int d = 0; d < lg_rnn_pseudo_layers(s); d++) {
        void *b = k->grad ? out_at(n, out, true, d, L->g_db) : in_at(n, in, false, d, L->b);
        parts.ptr[3 * d] = k->grad ? out_at(n, out, true, d, L->g_dw) : in_at(n, in, false, d, L->w);
        parts.ptr[3 * d + 1] = k->grad ? out_at(n, out, true, d, L->g_du) : in_at(n, in, false, d, L->u);
        parts.ptr[3 * d + 2] = b;
        parts.start[3 * d] = src[d].kernel, parts.start[3 * d + 1] = src[d].recurrent_kernel;
        parts.start[3 * d + 2] = b ? src[d].bias : -1;
    }
    return parts;
}

static lg_status launched(cudaError_t e, const lg_node *n) { return lg_cuda_launched(e, n); }

/* A training forward's reserve space is sized for full lengths: shorter
 * ones must not need more. */
static lg_status reserve_fits(const lg_node *n, const lg_cudnn_rnn *r)
{
    if (lg_cudnn_rnn_reserve_needed(r) <= lg_cudnn_rnn_reserve_bytes(r)) return LG_OK;
    return lg_fail(LG_ERR_RUNTIME, "rnn '%s': cuDNN asks %zu reserve bytes for these lengths, more than the %zu of "
                                   "full lengths",
                   n->name, lg_cudnn_rnn_reserve_needed(r), lg_cudnn_rnn_reserve_bytes(r));
}

/* Where a staged value sits in one part's single layout. */
static int index_of(const lg_rnn_layout *L, lg_rnn_value v)
{
    switch (v) {
    case LG_RNN_V_H0: return L->h0;
    case LG_RNN_V_C0: return L->c0;
    case LG_RNN_V_H_T: return L->h_t;
    case LG_RNN_V_C_T: return L->c_t;
    case LG_RNN_V_YS: return L->ys;
    case LG_RNN_V_DH: return L->g_dh;
    case LG_RNN_V_DC: return L->g_dc;
    case LG_RNN_V_DYS: return L->g_dys;
    case LG_RNN_V_DH0: return L->g_dh0;
    case LG_RNN_V_DC0: return L->g_dc0;
    case LG_RNN_VALUE_COUNT: LG_ASSERT(!"a staged value"); break;
    }
    return -1;
}

/* The part's tensor a stage reads (an input, into cuDNN's space) or
 * writes (an output). */
static void *staged_at(const call *k, const lg_node *n, const lg_buf *in, lg_buf *out, const lg_rnn_stage *g)
{
    int j = index_of(&k->L, g->v);
    return g->in ? in_at(n, in, k->grad, g->q, j) : out_at(n, out, k->grad, g->q, j);
}

/* The call's stages into its spaces at base (the workspace, or rnn_grad's
 * scratch) before it (in), or out of them after it: a state is one
 * contiguous copy; a bidirectional y or dy, two stages in a row, is one
 * kernel that also zeroes each example's steps past its length. */
static lg_status stage(lg_cuda_ctx *c, const call *k, const lg_node *n, const lg_buf *in, lg_buf *out, char *base,
                       bool into)
{
    lg_status st = LG_OK;
    size_t es = lg_dtype_size(k->dt);
    for (int i = 0; i < k->n_stages && !st; i++) {
        const lg_rnn_stage *g = &k->stages[i];
        if (g->in != into) continue;
        void *t = staged_at(k, n, in, out, g);
        if (g->rows == 1) {
            st = into ? lg_cuda_copy_d2d(c, base + g->off, t, g->width)
                      : lg_cuda_copy_d2d(c, t, base + g->off, g->width);
            continue;
        }
        /* the kernels' layout: [T, B, 2H], direction 0's H columns then direction 1's */
        const lg_rnn_stage *g1 = &k->stages[++i];
        LG_ASSERT(i < k->n_stages && g1->v == g->v && g1->q == g->q + 1 && g->width == (size_t)k->H * es &&
                  g->pitch == 2 * g->width && g1->off == g->off + g->width && g->rows == (size_t)(k->T * k->B));
        void *t1 = staged_at(k, n, in, out, g1);
        const int32_t *len = lg_cudnn_rnn_lengths(k->r);
        st = launched(into ? lg_cuda_launch_bidir_join(c->stream, k->dt, k->T, k->B, k->H, len, t, t1, base + g->off)
                           : lg_cuda_launch_bidir_split(c->stream, k->dt, k->T, k->B, k->H, len, base + g->off, t, t1),
                      n);
    }
    return st;
}

/* A single node, a bidirectional pair (its directions cuDNN's) or a
 * stack's layers 0..top, in one cuDNN call. */
lg_status lg_cuda_rnn(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    call k;
    char *ws = NULL;
    lg_status st = begin(c, n, in, false, &k);
    bool train = !(k.flags & LG_RNN_FORWARD_ONLY);
    if (!st) st = space_base(n, &out[k.L.ws], k.p.ws_bytes, &ws);
    if (!st && train) st = reserve_fits(n, k.r);
    if (st) return st;
    const lg_rnn_layout *L = &k.L;
    const lg_rnn_spaces *p = &k.p;
    bool rev = k.flags & LG_RNN_REVERSE, bidir = k.flags & LG_RNN_BIDIR, lstm = L->c0 >= 0;
    const int32_t *dev_len = lg_cudnn_rnn_lengths(k.r);
    cudaStream_t s = c->stream;
    lg_cuda_parts parts = parts_of(&k, n, in, out);
    st = launched(lg_cuda_launch_pack_parts(s, k.dt, lg_cudnn_rnn_layout(k.r)->size, lg_cudnn_rnn_map(k.r), &parts,
                                            ws + p->weights),
                  n);
    const void *x = rev ? ws + p->x : in[L->x].data;
    if (!st && rev)
        st = launched(lg_cuda_launch_seq_order(s, k.dt, k.T, k.B, k.I, dev_len, 1, in[L->x].data, ws + p->x), n);
    if (!st) st = stage(c, &k, n, in, out, ws, true);
    void *hx = in_at(n, in, false, 0, L->h0), *cx = in_at(n, in, false, 0, L->c0);
    void *hy = out_at(n, out, false, 0, L->h_t), *cy = out_at(n, out, false, 0, L->c_t);
    if (k.n_stages) hx = ws + p->hx, cx = lstm ? ws + p->cx : NULL, hy = ws + p->hy, cy = lstm ? ws + p->cy : NULL;
    void *ys = out_at(n, out, false, k.top, L->ys), *y = train || rev || bidir ? (void *)(ws + p->y) : ys;
    if (!st)
        st = lg_cudnn_rnn_forward_in(k.r, ws + p->weights, train ? ws + p->reserve : NULL, x, hx, cx, y, hy, cy);
    /* the top layer's ys in the loop's order, zero past each length (a bidirectional y: staged) */
    if (!st && !bidir && (rev || k.masked))
        st = launched(lg_cuda_launch_seq_order(s, k.dt, k.T, k.B, k.H, dev_len, rev, y, ys), n);
    else if (!st && !bidir && y != ys)
        st = lg_cuda_copy_d2d(c, ys, y, (size_t)(k.T * k.B * k.H) * lg_dtype_size(k.dt));
    if (!st) st = stage(c, &k, n, in, out, ws, false);
    return st;
}

/* A single node, a bidirectional pair or a stack's layers from the top's
 * dys down to layer 0's dx, in one cuDNN call. */
lg_status lg_cuda_rnn_grad(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    call k;
    char *ws = NULL, *sc = NULL;
    lg_status st = begin(c, n, in, true, &k);
    if (!st) st = space_base(n, &in[k.L.g_ws], k.p.ws_bytes, &ws);
    if (!st) st = space_base(n, &out[k.L.g_scratch], k.p.scratch_bytes, &sc);
    if (st) return st;
    const lg_rnn_layout *L = &k.L;
    const lg_rnn_spaces *p = &k.p;
    bool rev = k.flags & LG_RNN_REVERSE, bidir = k.flags & LG_RNN_BIDIR, lstm = L->c0 >= 0;
    const int32_t *dev_len = lg_cudnn_rnn_lengths(k.r);
    cudaStream_t s = c->stream;
    const void *x = rev ? ws + p->x : in[L->x].data;
    /* dy: the top layer's dys, or in the scratch its steps reversed or (staged) both directions' joined */
    const void *dys = in_at(n, in, true, k.top, L->g_dys), *dy = rev || bidir ? sc + p->dy : dys;
    void *dx = rev ? sc + p->dx : out[L->g_dx].data;
    if (rev) st = launched(lg_cuda_launch_seq_order(s, k.dt, k.T, k.B, k.H, dev_len, 1, dys, sc + p->dy), n);
    if (!st) st = stage(c, &k, n, in, out, sc, true);
    void *hx = in_at(n, in, true, 0, L->h0), *cx = in_at(n, in, true, 0, L->c0), *dhy = in_at(n, in, true, 0, L->g_dh),
         *dcy = in_at(n, in, true, 0, L->g_dc), *dhx = out_at(n, out, true, 0, L->g_dh0),
         *dcx = out_at(n, out, true, 0, L->g_dc0);
    if (k.n_stages) {
        hx = sc + p->g_hx, dhy = sc + p->dhy, dhx = sc + p->dhx;
        cx = lstm ? sc + p->g_cx : NULL, dcy = lstm ? sc + p->dcy : NULL, dcx = lstm ? sc + p->dcx : NULL;
    }
    /* a shared workspace stays as the forward left it: the backward writes into a copy */
    char *reserve = ws + p->reserve;
    if (!st && (k.flags & LG_RNN_SHARED_WS)) {
        reserve = sc + p->reserve_copy;
        st = lg_cuda_copy_d2d(c, reserve, ws + p->reserve, lg_cudnn_rnn_reserve_bytes(k.r));
    }
    if (!st)
        st = lg_cudnn_rnn_backward_in(k.r, ws + p->weights, reserve, sc + p->dweights, x, hx, cx, ws + p->y, dy, dhy,
                                      dcy, dx, dhx, dcx);
    /* layer 0's dx in the loop's order, zero past each length; a
     * bidirectional pair's whole dx in direction 0's, zeros in 1's */
    if (!st && (rev || k.masked))
        st = launched(lg_cuda_launch_seq_order(s, k.dt, k.T, k.B, k.I, dev_len, rev, dx, out[L->g_dx].data), n);
    if (!st && bidir) {
        lg_buf *dx1 = &out[L->g_n_out + L->g_dx];
        st = lg_cuda_memset0(c, dx1->data, buf_bytes(dx1));
    }
    if (!st) st = stage(c, &k, n, in, out, sc, false);
    if (!st) {
        lg_cuda_parts parts = parts_of(&k, n, in, out);
        st = launched(lg_cuda_launch_unpack_parts(s, k.dt, lg_cudnn_rnn_layout(k.r)->size, lg_cudnn_rnn_map(k.r),
                                                  sc + p->dweights, &parts),
                      n);
    }
    return st;
}
