/*
 * passes.c — the pass table, switching passes off, lowering the user's graph
 * into a compile-time graph, and the rewrite helpers passes share.
 */
#include <stdarg.h>
#include <string.h>

#include "graph/passes/passes.h"
#include "ops/op.h"

const lg_pass lg_passes[] = {
    {"verify", lg_pass_verify},
    {"fuse_rnn", lg_pass_fuse_rnn}, /* before hoist, which moves x_t W out of the body it matches */
    {"lower_loops", lg_pass_lower_loops}, /* after fuse_rnn, which reads masking as attributes */
    {"hoist", lg_pass_hoist},
    {"fuse_elementwise", lg_pass_fuse_elementwise}, /* after hoist: what hoist moves out is batched already */
    {"dce", lg_pass_dce},
    {"merge_rnn", lg_pass_merge_rnn}, /* after fuse_rnn (its rnn nodes) and dce (gradients nothing reads) */
    {"memory_plan", NULL},
    {"graph_capture", NULL}, /* the executor's too: replaying runs as one captured graph (program.c) */
};
const int lg_pass_count = (int)LG_ARRAY_LEN(lg_passes);
_Static_assert(LG_ARRAY_LEN(lg_passes) <= 32, "pass switches are bits of a uint32_t");

/* Every port kept the size rule when it was inferred (lg_op_infer) or fed. */
size_t lg_port_bytes(const lg_port *p)
{
    size_t bytes = 0;
    LG_ASSERT(lg_shape_bytes(p->shape, p->dtype, &bytes));
    return bytes;
}

static lg_status parse_off(const char *list, const char *where, uint32_t *off)
{
    for (const char *s = list; s && *s;) {
        size_t len = strcspn(s, ", ");
        if (len) {
            int i = 0;
            while (i < lg_pass_count && !(strlen(lg_passes[i].name) == len && !strncmp(lg_passes[i].name, s, len))) i++;
            if (i == lg_pass_count)
                return lg_fail(LG_ERR_INVALID_ARGUMENT,
                               "%s: no pass named '%.*s' (passes: verify, fuse_rnn, hoist, fuse_elementwise, dce, merge_rnn, memory_plan, graph_capture)", where,
                               (int)len, s);
            if (lg_passes[i].run == lg_pass_lower_loops)
                return lg_fail(LG_ERR_INVALID_ARGUMENT,
                               "%s: the pass 'lower_loops' cannot be switched off: the executor runs masked and "
                               "truncated loops only as it lowers them", where);
            *off |= 1u << i;
        }
        s += len;
        s += strspn(s, ", ");
    }
    return LG_OK;
}

lg_status lg_passes_off(const char *list, uint32_t *off)
{
    *off = 0;
    lg_status st = parse_off(list, "lg_compile_opts.passes_off", off);
    return st ? st : parse_off(getenv("LG_PASSES_OFF"), "LG_PASSES_OFF", off);
}

bool lg_pass_on(const lg_cgraph *cg, const char *name)
{
    for (int i = 0; i < lg_pass_count; i++)
        if (!strcmp(lg_passes[i].name, name)) return !(cg->off & (1u << i));
    return true;
}

bool lg_pass_fuses(const lg_cgraph *cg)
{
    const lg_node probe = {.op = LG_OP_FUSED_ELEMENTWISE};
    return cg->backend && cg->backend->supports_op(cg->backend, &probe) && lg_pass_on(cg, "fuse_elementwise");
}

void lg_cgraph_note(lg_cgraph *cg, const char *fmt, ...)
{
    /* a report line lost to low memory leaves the program unaffected */
    if (!cg->note_f && (cg->notes || !(cg->note_f = open_memstream(&cg->notes, &cg->notes_len)))) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(cg->note_f, fmt, ap);
    va_end(ap);
    fputc('\n', cg->note_f);
}

/* cg->notes as written so far (closing the stream sets it). */
static void close_notes(lg_cgraph *cg)
{
    if (cg->note_f) fclose(cg->note_f);
    cg->note_f = NULL;
}

void lg_cgraph_free(lg_cgraph *cg)
{
    if (!cg) return;
    close_notes(cg);
    lg_graph_free(cg->g);
    free(cg->inputs), free(cg->outputs), free(cg->notes);
    *cg = (lg_cgraph){0};
}

lg_status lg_cgraph_fail(const lg_graph *g, const char *what)
{
    if (g && g->error) return lg_fail(LG_ERR_SHAPE, "%s", g->error);
    return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
}

/* ---- rewrite ------------------------------------------------------------- */

bool lg_rewrite_init(lg_rewrite *r, const lg_graph *src, lg_graph *dst)
{
    *r = (lg_rewrite){.src = src, .dst = dst};
    r->base = malloc((size_t)(src->n_nodes + 1) * sizeof *r->base);
    if (!r->base) return false;
    r->base[0] = 0;
    for (int32_t i = 0; i < src->n_nodes; i++) r->base[i + 1] = r->base[i] + src->nodes[i].n_out;
    r->map = malloc((size_t)(r->base[src->n_nodes] ? r->base[src->n_nodes] : 1) * sizeof *r->map);
    if (!r->map) {
        lg_rewrite_free(r);
        return false;
    }
    for (int i = 0; i < r->base[src->n_nodes]; i++) r->map[i] = (lg_ref){-1, 0};
    return true;
}

void lg_rewrite_free(lg_rewrite *r)
{
    free(r->base), free(r->map);
    r->base = NULL, r->map = NULL;
}

int32_t lg_rewrite_copy(lg_rewrite *r, int32_t node, lg_loop_spec *spec, const lg_port *port)
{
    const lg_node *n = &r->src->nodes[node];
    int32_t id;
    if (!lg_op_is_compute(n->op)) {
        id = lg_node_copy_source(r->dst, n, port ? *port : n->out[0]);
        if (id < 0) lg_graph_fail(r->dst, "compile: out of memory");
        /* a body a pass made (lower_loops) may go before the body rebuilt
         * from it, whose constants it lends */
        if (id >= 0 && n->op == LG_OP_CONST && r->src->is_body && r->dst->lender != r->src) {
            LG_ASSERT(!r->dst->lender);
            r->dst->lender = lg_graph_ref((lg_graph *)r->src);
        }
    } else {
        lg_value in[n->n_in > 0 ? n->n_in : 1];
        for (int j = 0; j < n->n_in; j++) {
            in[j] = lg_rewrite_value(r, n->in[j]);
            LG_ASSERT(in[j].node >= 0);
        }
        lg_attrs a = n->attrs;
        a.loop = NULL;
        if (n->op == LG_OP_LOOP) {
            a.loop = spec ? spec : lg_loop_spec_dup(n->attrs.loop);
            if (!a.loop) {
                lg_graph_fail(r->dst, "compile: out of memory");
                return -1;
            }
        }
        id = lg_node_build(r->dst, n->op, in, n->n_in, &a, n->name);
        if (id < 0) {
            lg_loop_spec_free(a.loop);
            return -1;
        }
        /* keep the user's full name (lg_node_build added nothing: the
         * compile-time graph has no scope) and the flags */
        r->dst->nodes[id].is_grad = n->is_grad;
    }
    if (id >= 0 && r->dst->nodes[id].n_out == n->n_out)
        for (int o = 0; o < n->n_out; o++) *lg_rewrite_at(r, (lg_ref){node, o}) = (lg_ref){id, o};
    return id;
}

void lg_cgraph_replace(lg_cgraph *cg, lg_rewrite *r)
{
    for (int k = 0; k < cg->n_inputs; k++)
        if (cg->inputs[k] >= 0) cg->inputs[k] = lg_rewrite_at(r, (lg_ref){cg->inputs[k], 0})->node;
    for (int k = 0; k < cg->n_outputs; k++) {
        cg->outputs[k] = *lg_rewrite_at(r, cg->outputs[k]);
        LG_ASSERT(cg->outputs[k].node >= 0);
    }
    /* a constant a pass made (a zero, say) belongs to the old graph; its
     * copy borrows it: hand it over before the old graph goes */
    for (int32_t i = 0; i < cg->g->n_nodes; i++) {
        lg_node *n = &cg->g->nodes[i];
        lg_ref to = *lg_rewrite_at(r, (lg_ref){i, 0});
        if (n->op >= LG_OP_MATMUL || n->borrowed || !n->attrs.tensor || to.node < 0) continue;
        lg_node *d = &r->dst->nodes[to.node];
        if (d->op < LG_OP_MATMUL && d->attrs.tensor == n->attrs.tensor) d->borrowed = false, n->borrowed = true;
    }
    lg_graph_free(cg->g);
    cg->g = r->dst;
}

int32_t lg_loop_forward_of(const lg_graph *g, int32_t node)
{
    const lg_node *n = &g->nodes[node];
    if (n->op != LG_OP_LOOP || !n->attrs.loop->gradient) return -1;
    const lg_loop_spec *gs = n->attrs.loop;
    for (int j = 0; j < n->n_in; j++) {
        int32_t fw = n->in[j].node;
        if (g->nodes[fw].op != LG_OP_LOOP) continue;
        const lg_loop_spec *s = g->nodes[fw].attrs.loop;
        if (!s->gradient && gs->body == s->body && j == s->n_seq && n->in[j].out == s->n_state + s->n_y) return fw;
    }
    return -1;
}

/* ---- lowering ------------------------------------------------------------ */

lg_status lg_cgraph_lower(const lg_graph *src, const int32_t *inputs, const lg_port *ports, int n_inputs,
                          const lg_ref *outputs, int n_outputs, lg_cgraph *cg)
{
    lg_walk w;
    lg_rewrite r = {0};
    cg->g = lg_graph_new();
    cg->inputs = malloc((size_t)(n_inputs ? n_inputs : 1) * sizeof *cg->inputs);
    cg->outputs = malloc((size_t)(n_outputs ? n_outputs : 1) * sizeof *cg->outputs);
    cg->n_inputs = n_inputs, cg->n_outputs = n_outputs;
    if (!cg->g || !cg->inputs || !cg->outputs) return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    if (!lg_walk_init(&w, src, outputs, n_outputs)) return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    if (!lg_rewrite_init(&r, src, cg->g)) {
        lg_walk_free(&w);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    }
    lg_status st = LG_OK;
    for (int32_t i = 0; !st && i < w.end; i++) {
        if (!w.needed[i]) continue;
        const lg_node *n = &src->nodes[i];
        const lg_port *port = NULL;
        if (n->op == LG_OP_INPUT) {
            int k = 0;
            while (k < n_inputs && inputs[k] != i) k++;
            if (k == n_inputs) {
                st = lg_fail(LG_ERR_FEED, "missing feed for input '%s' (%s %s)", n->name, lg_dtype_name(n->out[0].dtype),
                             lg_shape_cstr(n->out[0].shape));
                break;
            }
            port = &ports[k];
        }
        if (lg_rewrite_copy(&r, i, NULL, port) < 0) st = lg_cgraph_fail(cg->g, "compile");
    }
    for (int k = 0; !st && k < n_inputs; k++) {
        int32_t in = inputs[k];
        cg->inputs[k] = in >= 0 && in < w.end && w.needed[in] ? lg_rewrite_at(&r, (lg_ref){in, 0})->node : -1;
    }
    for (int k = 0; !st && k < n_outputs; k++) cg->outputs[k] = *lg_rewrite_at(&r, outputs[k]);
    lg_rewrite_free(&r);
    lg_walk_free(&w);
    return st;
}

lg_status lg_cgraph_run_passes(lg_cgraph *cg)
{
    for (int i = 0; i < lg_pass_count; i++) {
        if (!lg_passes[i].run || (cg->off & (1u << i))) continue;
        lg_status st = lg_passes[i].run(cg);
        if (st) return st;
    }
    close_notes(cg);
    return LG_OK;
}
