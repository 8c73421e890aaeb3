/*
 * loop.c — the loop op: shape inference through its body, and its gradient,
 * a reversed loop over the same body graph.
 *
 * The gradient body is built in the forward body itself: cotangent inputs
 * for the next states and per-step outputs, accumulator inputs for the
 * invariants, and lg_vjp of the forward step. Run forward, the body's
 * programs need only forward nodes. By default (LG_LOOP_SAVE_RESIDUALS) the
 * forward loop also stacks the body values the gradient step reads (the
 * residuals, lg_loop_save_residuals), so run backward the step only takes
 * its vector-Jacobian product; with LG_LOOP_RECOMPUTE it saves only the
 * carried states and the backward step recomputes the step from the state
 * before it (checkpointing at every step). The invariants' gradients are
 * carried states that accumulate.
 */
#include <string.h>

#include "graph/ops.h"
#include "ops/op.h"

static lg_port step_port(lg_port seq)
{
    for (int i = 0; i + 1 < seq.shape.rank; i++) seq.shape.dims[i] = seq.shape.dims[i + 1];
    seq.shape.rank--;
    return seq;
}

static bool stacked(lg_port p, int64_t steps, lg_port *out)
{
    if (p.shape.rank >= LG_MAX_RANK) return false;
    for (int i = p.shape.rank; i > 0; i--) p.shape.dims[i] = p.shape.dims[i - 1];
    p.shape.dims[0] = steps;
    p.shape.rank++;
    *out = p;
    return true;
}

static bool compatible(lg_shape a, lg_shape b)
{
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; i++)
        if (a.dims[i] != b.dims[i] && a.dims[i] != -1 && b.dims[i] != -1) return false;
    return true;
}

static bool infer_loop(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    const lg_loop_spec *s = n->attrs.loop;
    int n_in = s->n_seq + s->n_state + s->n_inv, n_body_out = s->n_state + s->n_y;
    int64_t steps = s->n_seq ? -1 : s->steps;
    for (int k = 0; k < s->n_seq; k++) {
        if (in[k].shape.rank < 1) LG_INFER_FAIL("a sequence needs a time axis");
        int64_t t = in[k].shape.dims[0];
        if (steps >= 0 && t >= 0 && t != steps) LG_INFER_FAIL("sequences differ in length");
        if (t >= 0) steps = t;
    }
    for (int k = 0; s->batched && s->n_seq && k < s->n_state; k++) {
        int64_t b = in[s->n_seq + k].shape.rank ? in[s->n_seq + k].shape.dims[0] : -1, bx = in[0].shape.dims[1];
        if (in[0].shape.rank >= 2 && b >= 0 && bx >= 0 && b != bx) {
            snprintf(err, size, "initial state %d of '%s': batch %lld, x has batch %lld", k, n->name, (long long)b,
                     (long long)bx);
            return false;
        }
    }
    int mask_at = lg_loop_mask_input(s);
    if (mask_at >= 0 && mask_at < n->n_in && s->n_seq && in[0].shape.rank >= 2) {
        /* the lengths (i32 [B]) or the mask (time-major [T, B]) against the
         * first sequence, as the loop's builder checked what it knew */
        const lg_port *m = &in[mask_at];
        int64_t T = in[0].shape.dims[0], B = in[0].shape.dims[1];
        bool by_len = s->masking == LG_LOOP_BY_LENGTHS;
        int64_t mt = by_len ? T : m->shape.rank == 2 ? m->shape.dims[0] : -2, mb = m->shape.rank ? m->shape.dims[m->shape.rank - 1] : -2;
        bool fits = (by_len ? m->dtype == LG_I32 && m->shape.rank == 1 : m->shape.rank == 2) && (mt == T || mt < 0 || T < 0) &&
                    (mb == B || mb < 0 || B < 0);
        if (!fits && by_len) {
            snprintf(err, size, "the lengths, %s %s, are not one per example of a batch of %lld (the sequences are %s, "
                                "time-major)", lg_dtype_name(m->dtype), lg_shape_cstr(m->shape), (long long)B,
                     lg_shape_cstr(in[0].shape));
            return false;
        }
        if (!fits) {
            snprintf(err, size, "the mask, %s time-major, does not have the sequences' %lld steps and batch %lld (they "
                                "are %s, time-major)", lg_shape_cstr(m->shape), (long long)T, (long long)B,
                     lg_shape_cstr(in[0].shape));
            return false;
        }
    }
    lg_port ports[n_in > 0 ? n_in : 1], body_out[n_body_out > 0 ? n_body_out : 1];
    for (int k = 0; k < n_in; k++) ports[k] = k < s->n_seq ? step_port(in[k]) : in[k];
    if (lg_body_ports(s->body, s->inputs, ports, n_in, s->outputs, n_body_out, body_out)) {
        snprintf(err, size, "%s", lg_last_error());
        return false;
    }
    for (int k = 0; k < s->n_state; k++) {
        const lg_port *st = &in[s->n_seq + k], *next = &body_out[k];
        if (st->dtype != next->dtype || !compatible(st->shape, next->shape)) {
            snprintf(err, size, "state %d is %s %s but the body's next state is %s %s", k, lg_dtype_name(st->dtype),
                     lg_shape_cstr(st->shape), lg_dtype_name(next->dtype), lg_shape_cstr(next->shape));
            return false;
        }
        out[k] = *st;
        /* a gradient loop saves no states: nothing differentiates it again;
         * compile drops those nothing reads */
        if (!stacked(*st, s->gradient || s->drop_states ? 0 : steps, &out[s->n_state + s->n_y + k]))
            LG_INFER_FAIL("a saved state would exceed the maximum rank");
    }
    for (int j = 0; j < s->n_y; j++)
        if (!stacked(body_out[s->n_state + j], steps, &out[s->n_state + j]))
            LG_INFER_FAIL("a stacked output would exceed the maximum rank");
    if (s->n_res) {
        lg_port res[s->n_res];
        if (lg_body_ports(s->body, s->inputs, ports, n_in, s->res, s->n_res, res)) {
            snprintf(err, size, "%s", lg_last_error());
            return false;
        }
        for (int r = 0; r < s->n_res; r++)
            if (!stacked(res[r], steps, &out[2 * s->n_state + s->n_y + r]))
                LG_INFER_FAIL("a saved residual would exceed the maximum rank");
    }
    for (int j = 0; j < s->n_post; j++) /* accumulators: final values like their initial ones */
        out[2 * s->n_state + s->n_y + s->n_res + j] = in[n_in + j];
    return true;
}

/* ---- gradient -------------------------------------------------------------- */

static lg_value zeros_like(lg_value v)
{
    lg_value z = lg_scalar_like(v, 0);
    return lg_value_rank(v) ? lg_broadcast_like(z, v) : z;
}

static lg_value body_input_like(lg_graph *body, const char *name, lg_value like)
{
    return lg_input(body, name, lg_value_dtype(like), lg_value_shape(like));
}

static lg_ref ref_of(lg_value v) { return (lg_ref){v.node, v.output}; }

/* Build the backward step in s's body. False on error (recorded on body). */
static bool build_grad_step(const lg_loop_spec *s, lg_grad_step *b)
{
    lg_graph *body = s->body;
    int n_fwd_in = s->n_seq + s->n_state + s->n_inv, n_fwd_out = s->n_state + s->n_y;
    int cap = 2 * (n_fwd_in + n_fwd_out) + 1;
    lg_value *fin = malloc((size_t)cap * sizeof *fin), *cot = malloc((size_t)cap * sizeof *cot);
    lg_value *wrt = malloc((size_t)cap * sizeof *wrt), *grads = malloc((size_t)cap * sizeof *grads);
    lg_value *outs = malloc((size_t)cap * sizeof *outs);
    b->inputs = malloc((size_t)cap * sizeof *b->inputs);
    b->outputs = malloc((size_t)cap * sizeof *b->outputs);
    b->dx_of_seq = malloc((size_t)(s->n_seq + 1) * sizeof *b->dx_of_seq);
    b->acc_of_inv = malloc((size_t)(s->n_inv + 1) * sizeof *b->acc_of_inv);
    bool ok = fin && cot && wrt && grads && outs && b->inputs && b->outputs && b->dx_of_seq && b->acc_of_inv;
    if (!ok) lg_graph_fail(body, "loop gradient: out of memory");
    bool was = body->in_grad;
    body->in_grad = true;

    int n_wrt = 0;
    for (int i = 0; ok && i < n_fwd_in; i++) {
        fin[i] = lg_value_of(body, s->inputs[i], 0);
        bool is_inv = i >= s->n_seq + s->n_state;
        if (lg_is_float(lg_value_dtype(fin[i]))) wrt[n_wrt++] = fin[i];
        if (i < s->n_seq) b->dx_of_seq[i] = -1;
        if (is_inv) b->acc_of_inv[i - s->n_seq - s->n_state] = -1;
    }
    /* cotangents for every output; only float ones take part in the vjp
     * (a non-float state cannot carry a gradient) */
    lg_value *vouts = malloc((size_t)cap * sizeof *vouts), *vcot = malloc((size_t)cap * sizeof *vcot);
    int n_v = 0;
    ok = ok && vouts && vcot;
    for (int k = 0; ok && k < n_fwd_out; k++) {
        lg_value y = lg_value_of(body, s->outputs[k].node, s->outputs[k].out);
        outs[k] = y;
        cot[k] = body_input_like(body, k < s->n_state ? "d_next_state" : "d_output", y);
        if (k < s->n_state && !lg_is_float(lg_value_dtype(y))) {
            lg_graph_fail(body, "state %d is %s; a differentiated loop carries float states only", k,
                          lg_dtype_name(lg_value_dtype(y)));
            ok = false;
        } else if (lg_is_float(lg_value_dtype(y))) {
            vouts[n_v] = y;
            vcot[n_v++] = cot[k];
        }
    }
    ok = ok && lg_vjp(body, vouts, vcot, n_v, wrt, n_wrt, grads) == LG_OK;
    free(vouts), free(vcot);

    /* gradient loop: sequences = forward sequences' steps, states before the
     * step, output cotangents; states = next-state cotangents, invariant
     * accumulators; invariants = forward invariants */
    int ni = 0, no = 0, w = 0, n_acc = 0;
    for (int i = 0; ok && i < s->n_seq; i++) b->inputs[ni++] = s->inputs[i];
    for (int k = 0; ok && k < s->n_state; k++) b->inputs[ni++] = s->inputs[s->n_seq + k];
    for (int j = 0; ok && j < s->n_y; j++) b->inputs[ni++] = cot[s->n_state + j].node;
    b->n_seq = ni;
    for (int k = 0; ok && k < s->n_state; k++) b->inputs[ni++] = cot[k].node;
    lg_value *dseq = grads; /* grads follow wrt: float seqs, states, float invs */
    int n_float_seq = 0;
    for (int i = 0; ok && i < s->n_seq; i++) n_float_seq += lg_is_float(lg_value_dtype(fin[i]));
    w = n_float_seq;
    for (int k = 0; ok && k < s->n_state; k++) b->outputs[no++] = ref_of(grads[w++]);
    for (int i = 0; ok && i < s->n_inv; i++) {
        lg_value inv = fin[s->n_seq + s->n_state + i];
        if (!lg_is_float(lg_value_dtype(inv))) continue;
        lg_value acc = body_input_like(body, "acc", inv);
        b->inputs[ni++] = acc.node;
        b->outputs[no++] = ref_of(lg_add(acc, grads[w++]));
        b->acc_of_inv[i] = n_acc++;
    }
    b->n_state = s->n_state + n_acc;
    for (int i = 0; ok && i < s->n_inv; i++) b->inputs[ni++] = s->inputs[s->n_seq + s->n_state + i];
    int d = 0;
    for (int i = 0; ok && i < s->n_seq; i++)
        if (lg_is_float(lg_value_dtype(fin[i]))) {
            b->outputs[no++] = ref_of(dseq[d]);
            b->dx_of_seq[i] = d++;
        }
    b->n_y = d;
    b->n_in = ni, b->n_out = no;
    b->n_fwd_seq = s->n_seq, b->n_fwd_inv = s->n_inv;
    body->in_grad = was;
    free(fin), free(cot), free(wrt), free(grads), free(outs);
    return ok && !body->error;
}

/* The index of ref in refs[0..n), or -1. */
static int find_ref(const lg_ref *refs, int n, lg_ref r)
{
    for (int k = 0; k < n; k++)
        if (refs[k].node == r.node && refs[k].out == r.out) return k;
    return -1;
}

/* A value of the step computed in the forward part of the body (not an
 * input or a constant), which the gradient step would otherwise recompute. */
static bool is_residual(const lg_graph *body, int32_t first_grad, lg_ref r)
{
    return r.node < first_grad && lg_op_is_compute(body->nodes[r.node].op);
}

/* The forward values the gradient step b (nodes first..end-1 of the body,
 * and its outputs) reads; false when out of memory. */
static bool collect_residuals(const lg_graph *body, int32_t first, int32_t end, const lg_grad_step *b, lg_ref **res,
                              int *n)
{
    int cap = 16;
    *n = 0;
    *res = malloc((size_t)cap * sizeof **res);
    for (int32_t i = first; *res && i <= end; i++) {
        const lg_ref *refs = i < end ? body->nodes[i].in : b->outputs;
        int n_refs = i < end ? body->nodes[i].n_in : b->n_out;
        for (int j = 0; *res && j < n_refs; j++) {
            if (!is_residual(body, first, refs[j]) || find_ref(*res, *n, refs[j]) >= 0) continue;
            if (*n == cap) {
                lg_ref *r2 = realloc(*res, (size_t)(cap *= 2) * sizeof **res);
                if (!r2) free(*res);
                *res = r2;
            }
            if (*res) (*res)[(*n)++] = refs[j];
        }
    }
    return *res != NULL;
}

bool lg_loop_save_residuals(lg_loop_spec *s)
{
    lg_graph *body = s->body;
    if (s->has_stop || s->n_seq == 0 || body->error) return false;
    for (int k = 0; k < s->n_state; k++)
        if (!lg_is_float(body->nodes[s->inputs[s->n_seq + k]].out[0].dtype)) return false;
    int32_t first = body->n_nodes;
    /* a first build finds the values the step reads; then, so that the body
     * stays in topological order, their inputs come first and the step is
     * built again after them */
    lg_grad_step *b = calloc(1, sizeof *b);
    lg_ref *res = NULL;
    int32_t *res_in = NULL;
    int n = 0;
    bool ok = b && build_grad_step(s, b) && collect_residuals(body, first, body->n_nodes, b, &res, &n);
    lg_graph_truncate(body, first);
    lg_grad_step_free(b);
    b = ok ? calloc(1, sizeof *b) : NULL;
    res_in = ok ? malloc((size_t)(n ? n : 1) * sizeof *res_in) : NULL;
    ok = ok && b && res_in;
    for (int k = 0; ok && k < n; k++) {
        const lg_port *p = &body->nodes[res[k].node].out[res[k].out];
        lg_value in = lg_input(body, "residual", p->dtype, p->shape);
        ok = lg_value_ok(in);
        if (ok) res_in[k] = in.node;
    }
    int32_t step_first = body->n_nodes;
    ok = ok && build_grad_step(s, b);
    int32_t end = body->n_nodes;
    for (int32_t i = step_first; ok && i <= end; i++) { /* read the saved values instead */
        lg_ref *refs = i < end ? body->nodes[i].in : b->outputs;
        int n_refs = i < end ? body->nodes[i].n_in : b->n_out;
        for (int j = 0; j < n_refs; j++) {
            int k = is_residual(body, first, refs[j]) ? find_ref(res, n, refs[j]) : -1;
            if (k >= 0) refs[j] = (lg_ref){res_in[k], 0};
        }
    }
    if (!ok || body->error) {
        lg_graph_truncate(body, first);
        lg_grad_step_free(b);
        free(res), free(res_in);
        return false;
    }
    s->grad = b, s->res = res, s->res_inputs = res_in, s->n_res = n;
    return true;
}

static void grad_loop(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    const lg_loop_spec *s = g->nodes[node].attrs.loop;
    if (s->gradient) {
        lg_graph_fail(g, "loop '%s': second-order gradients through loops are not supported", g->nodes[node].name);
        return;
    }
    if (s->has_stop || s->n_seq == 0) {
        lg_graph_fail(g, "loop '%s': a loop with a stop condition or no sequences is not differentiable (use it "
                         "for inference, e.g. greedy decoding)", g->nodes[node].name);
        return;
    }
    lg_grad_step *built = NULL; /* the recompute policy builds the step now */
    const lg_grad_step *b = s->grad;
    if (!b) {
        built = calloc(1, sizeof *built);
        if (!built || !build_grad_step(s, built)) {
            lg_graph_fail(g, "loop '%s': its gradient: %s", g->nodes[node].name,
                          s->body->error ? s->body->error : "out of memory");
            lg_grad_step_free(built);
            return;
        }
        b = built;
    }
    /* gradient loop: sequences = the step's sequences, states before each
     * step, output cotangents (b->n_seq of them), then the saved residuals;
     * states = next-state cotangents and invariant accumulators; invariants
     * = the forward invariants */
    int n_seq = b->n_seq + s->n_res, n_in = b->n_in + s->n_res;
    int res_out = 2 * s->n_state + s->n_y; /* the forward node's first residual */
    lg_value *in = malloc((size_t)n_in * sizeof *in);
    lg_loop_spec *gs = calloc(1, sizeof *gs);
    if (gs) {
        gs->inputs = malloc((size_t)n_in * sizeof *gs->inputs);
        gs->outputs = malloc((size_t)(b->n_out ? b->n_out : 1) * sizeof *gs->outputs);
    }
    if (!in || !gs || !gs->inputs || !gs->outputs) {
        free(in), lg_loop_spec_free(gs), lg_grad_step_free(built);
        lg_graph_fail(g, "loop gradient: out of memory");
        return;
    }
    int k = 0;
    for (int i = 0; i < s->n_seq; i++) in[k++] = lg_node_input(g, node, i);
    for (int i = 0; i < s->n_state; i++) in[k++] = lg_value_of(g, node, s->n_state + s->n_y + i);
    for (int j = 0; j < s->n_y; j++) {
        lg_value ys = lg_value_of(g, node, s->n_state + j);
        in[k++] = lg_value_ok(dy[s->n_state + j]) ? dy[s->n_state + j] : zeros_like(ys);
    }
    for (int r = 0; r < s->n_res; r++) in[k++] = lg_value_of(g, node, res_out + r);
    for (int i = 0; i < s->n_state; i++) in[k++] = lg_value_ok(dy[i]) ? dy[i] : zeros_like(lg_node_input(g, node, s->n_seq + i));
    for (int i = 0; i < s->n_inv; i++)
        if (b->acc_of_inv[i] >= 0) in[k++] = zeros_like(lg_node_input(g, node, s->n_seq + s->n_state + i));
    for (int i = 0; i < s->n_inv; i++) in[k++] = lg_node_input(g, node, s->n_seq + s->n_state + i);

    memcpy(gs->inputs, b->inputs, (size_t)b->n_seq * sizeof *gs->inputs);
    if (s->n_res) memcpy(gs->inputs + b->n_seq, s->res_inputs, (size_t)s->n_res * sizeof *gs->inputs);
    memcpy(gs->inputs + n_seq, b->inputs + b->n_seq, (size_t)(b->n_in - b->n_seq) * sizeof *gs->inputs);
    memcpy(gs->outputs, b->outputs, (size_t)b->n_out * sizeof *gs->outputs);
    gs->body = lg_graph_ref(s->body);
    gs->n_seq = n_seq, gs->n_state = b->n_state, gs->n_inv = s->n_inv, gs->n_y = b->n_y;
    gs->reverse = !s->reverse;
    gs->gradient = true;
    gs->memory = s->memory; /* the forward loop's policy governs its gradient loop too */
    /* the gradient of a masked or truncated loop: lower_loops lowers the
     * pair together (the gradient of the lowered forward loop) */
    gs->masking = s->masking, gs->repeat_output = s->repeat_output, gs->truncate = s->truncate;
    int n_state_fwd = s->n_state, n_seq_fwd = s->n_seq, n_inv = s->n_inv;
    int32_t id = lg_node_build(g, LG_OP_LOOP, in, n_in, &(lg_attrs){.loop = gs}, "loop");
    if (id < 0) {
        lg_loop_spec_free(gs);
    } else {
        for (int i = 0; i < n_seq_fwd; i++)
            if (b->dx_of_seq[i] >= 0) dx[i] = lg_value_of(g, id, b->n_state + b->dx_of_seq[i]);
        for (int i = 0; i < n_state_fwd; i++) dx[n_seq_fwd + i] = lg_value_of(g, id, i);
        for (int i = 0; i < n_inv; i++)
            if (b->acc_of_inv[i] >= 0) dx[n_seq_fwd + n_state_fwd + i] = lg_value_of(g, id, n_state_fwd + b->acc_of_inv[i]);
    }
    free(in);
    lg_grad_step_free(built);
}

const lg_op_def lg_op_def_loop = {"loop", -1, infer_loop, grad_loop};
