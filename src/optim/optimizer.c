/*
 * optimizer.c — what every optimizer shares: checking the parameter list,
 * packing the parameters, the gradient and slot blocks with their tensor
 * views, the state for checkpoints, the schedule and the step driver.
 */
#include <math.h>
#include <string.h>

#include "optim/optim_internal.h"

lg_status lg_optim_check(const char *fn, const char *field, double v, bool ok, const char *range)
{
    return ok ? LG_OK : lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: opts.%s = %g is outside %s", fn, field, v, range);
}

/* params[i] must be a trainable f32/f64 parameter of g, of params[0]'s dtype,
 * not listed before. */
static lg_status check_param(const char *fn, lg_graph *g, const lg_value *params, int i)
{
    lg_value v = params[i];
    if (!lg_value_ok(v)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: params[%d] is an invalid value", fn, i);
    if (v.graph != g)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: params[%d] '%s' belongs to another graph", fn, i,
                       lg_value_name(v));
    if (!lg_param_tensor(v))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: params[%d] '%s' is not a parameter (its op is %s)", fn, i,
                       lg_value_name(v), lg_graph_node_op(g, v.node));
    if (!lg_param_trainable(v))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: params[%d] '%s' is not trainable", fn, i, lg_value_name(v));
    lg_dtype dt = lg_value_dtype(v);
    if (dt != LG_F32 && dt != LG_F64)
        return lg_fail(LG_ERR_DTYPE, "%s: params[%d] '%s' is %s; optimizers train f32 or f64 parameters", fn, i,
                       lg_value_name(v), lg_dtype_name(dt));
    if (dt != lg_value_dtype(params[0]))
        return lg_fail(LG_ERR_DTYPE, "%s: params[%d] '%s' is %s but params[0] '%s' is %s (one dtype per optimizer)",
                       fn, i, lg_value_name(v), lg_dtype_name(dt), lg_value_name(params[0]),
                       lg_dtype_name(lg_value_dtype(params[0])));
    for (int j = 0; j < i; j++)
        if (params[j].node == v.node)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: params[%d] '%s' repeats params[%d]", fn, i, lg_value_name(v),
                           j);
    return LG_OK;
}

void lg_optimizer_free(lg_optimizer *o)
{
    if (!o) return;
    for (int i = 0; o->grads && i < o->n; i++) lg_tensor_free(o->grads[i]);
    for (int i = 0; o->slot_views && i < o->n_slots * o->n; i++) lg_tensor_free(o->slot_views[i]);
    for (int i = 0; o->state_names && i < 1 + o->n_slots * o->n; i++) free(o->state_names[i]);
    lg_mirror_release(&o->grad_mirror);
    for (int k = 0; k < LG_OPTIM_MAX_SLOTS; k++) lg_mirror_release(&o->slot_mirror[k]);
    for (int k = 0; k < o->n_slots; k++) free(o->slot_block[k]);
    free(o->grads), free(o->slot_views), free(o->state_names), free(o->grad_block);
    free(o->nodes), free(o->offsets);
    lg_tensor_free(o->iterations);
    free(o);
}

static char *state_name(const char *slot, const char *param)
{
    size_t len = strlen("optimizer/") + strlen(slot) + 1 + strlen(param) + 1;
    char *s = malloc(len);
    if (s) snprintf(s, len, "optimizer/%s%s%s", slot, param[0] ? "/" : "", param);
    return s;
}

/* The blocks, their views and the state names; false when out of memory. */
static bool alloc_blocks(lg_optimizer *o, const lg_value *params, const lg_optim_spec *spec)
{
    int n = o->n, n_state = 1 + spec->n_slots * n;
    size_t es = lg_dtype_size(o->dtype);
    int64_t total = o->offsets[n];
    o->grads = calloc((size_t)n, sizeof *o->grads);
    o->slot_views = calloc((size_t)(spec->n_slots * n + 1), sizeof *o->slot_views);
    o->state_names = calloc((size_t)n_state, sizeof *o->state_names);
    o->grad_block = calloc((size_t)total, es);
    if (!o->grads || !o->slot_views || !o->state_names || !o->grad_block) return false;
    o->n_slots = spec->n_slots;
    for (int k = 0; k < spec->n_slots; k++)
        if (!(o->slot_block[k] = calloc((size_t)total, es))) return false;
    if (lg_tensor_new(LG_I32, lg_shape_of(0), &o->iterations) != LG_OK) return false;
    if (!(o->state_names[0] = state_name("iterations", ""))) return false;
    size_t *bytes = malloc((size_t)(n + 1) * sizeof *bytes);
    if (!bytes) return false;
    for (int i = 0; i <= n; i++) bytes[i] = (size_t)o->offsets[i] * es;
    bool ok = lg_mirror_init(&o->grad_mirror, o->grad_block, bytes, n);
    for (int k = 0; ok && k < spec->n_slots; k++) ok = lg_mirror_init(&o->slot_mirror[k], o->slot_block[k], bytes, n);
    free(bytes);
    if (!ok) return false;
    for (int i = 0; i < n; i++) {
        lg_shape s = lg_value_shape(params[i]);
        size_t off = (size_t)o->offsets[i] * es;
        if (!(o->grads[i] = lg_tensor_view(o->dtype, s, (unsigned char *)o->grad_block + off))) return false;
        lg_tensor_set_mirror(o->grads[i], &o->grad_mirror);
        for (int k = 0; k < spec->n_slots; k++) {
            int j = k * n + i;
            o->slot_views[j] = lg_tensor_view(o->dtype, s, (unsigned char *)o->slot_block[k] + off);
            o->state_names[1 + j] = state_name(spec->slots[k], lg_value_name(params[i]));
            if (!o->slot_views[j] || !o->state_names[1 + j]) return false;
            lg_tensor_set_mirror(o->slot_views[j], &o->slot_mirror[k]);
        }
    }
    return true;
}

lg_status lg_optimizer_create(lg_graph *g, const lg_value *params, int n, const lg_optim_spec *spec,
                              lg_optimizer **out)
{
    const char *fn = spec->fn;
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: graph is NULL", fn);
    if (!params) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: params is NULL", fn);
    if (n <= 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: n = %d, at least one parameter is needed", fn, n);
    lg_status st = lg_optim_check(fn, "learning_rate", spec->learning_rate,
                                  spec->learning_rate >= 0 && isfinite(spec->learning_rate), "[0, inf)");
    if (!st) st = lg_clip_check(fn, &spec->clip);
    for (int i = 0; !st && i < n; i++) st = check_param(fn, g, params, i);
    if (st) return st;

    lg_optimizer *o = calloc(1, sizeof *o);
    if (!o) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    *o = (lg_optimizer){.graph = g, .rule = spec->rule, .learning_rate = spec->learning_rate, .clip = spec->clip,
                        .dtype = lg_value_dtype(params[0]), .n = n};
    o->nodes = malloc((size_t)n * sizeof *o->nodes);
    o->offsets = malloc((size_t)(n + 1) * sizeof *o->offsets);
    if (o->nodes && o->offsets) {
        o->offsets[0] = 0;
        for (int i = 0; i < n; i++) {
            o->nodes[i] = params[i].node;
            o->offsets[i + 1] = o->offsets[i] + lg_shape_numel(lg_value_shape(params[i]));
        }
    }
    if (!o->nodes || !o->offsets || !alloc_blocks(o, params, spec)) {
        lg_optimizer_free(o);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory for %d parameters", fn, n);
    }
    st = lg_param_block_pack(g, o->nodes, n);
    if (st) {
        lg_optimizer_free(o);
        return st;
    }
    *out = o;
    return LG_OK;
}

lg_tensor *const *lg_optimizer_grad_views(lg_optimizer *o) { return o->grads; }

lg_tensor *const *lg_optimizer_grads(lg_optimizer *o)
{
    for (int i = 0; o && i < o->n; i++)
        if (lg_tensor_to_host(o->grads[i])) return NULL;
    return o ? o->grads : NULL;
}

lg_status lg_optimizer_to_host(lg_optimizer *o)
{
    lg_status st = lg_mirror_to_host(&o->grad_mirror);
    for (int k = 0; !st && k < o->n_slots; k++) st = lg_mirror_to_host(&o->slot_mirror[k]);
    return st;
}

/* Where the gradients were written last: a device whose copy holds a newer
 * segment, else the host. */
static const lg_backend *grads_backend(const lg_optimizer *o)
{
    const lg_mirror *m = &o->grad_mirror;
    for (int s = 0; m->b && s < m->n_seg; s++)
        if (m->newer[s] == LG_MIRROR_DEV_NEWER) return m->b;
    return lg_backend_cpu();
}

int lg_optimizer_param_count(const lg_optimizer *o) { return o ? o->n : 0; }

lg_value lg_optimizer_param(const lg_optimizer *o, int i)
{
    return o && i >= 0 && i < o->n ? (lg_value){o->graph, o->nodes[i], 0} : lg_value_invalid();
}

static int32_t iterations_of(const lg_optimizer *o) { return *(const int32_t *)lg_tensor_cdata(o->iterations); }

int64_t lg_optimizer_iterations(const lg_optimizer *o) { return o ? iterations_of(o) : 0; }

void lg_optimizer_set_schedule(lg_optimizer *o, lg_lr_schedule fn, void *ctx)
{
    if (!o) return;
    o->schedule = fn;
    o->schedule_ctx = ctx;
}

static double rate_at(const lg_optimizer *o, int64_t step)
{
    return o->schedule ? o->schedule(step, o->learning_rate, o->schedule_ctx) : o->learning_rate;
}

double lg_optimizer_learning_rate(const lg_optimizer *o) { return o ? rate_at(o, iterations_of(o)) : NAN; }

lg_status lg_optimizer_grad_norm(lg_optimizer *o, double *norm)
{
    if (!o || !norm) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_optimizer_grad_norm: NULL argument");
    const lg_backend *b = grads_backend(o);
    size_t bytes = (size_t)o->offsets[o->n] * lg_dtype_size(o->dtype);
    void *g = NULL;
    lg_status st = lg_mirror_place(&o->grad_mirror, b, 0, bytes, &g);
    return st ? st : b->grad_norm(b, o->dtype, g, o->offsets[o->n], norm);
}

lg_status lg_optimizer_step(lg_optimizer *o)
{
    if (!o) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_optimizer_step: optimizer is NULL");
    int32_t it = iterations_of(o);
    if (it < 0)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_optimizer_step: optimizer/iterations holds %d, must be >= 0",
                       (int)it);
    if (it == INT32_MAX)
        return lg_fail(LG_ERR_RUNTIME, "lg_optimizer_step: optimizer/iterations is at its maximum %d", (int)it);
    double lr = rate_at(o, it);
    if (!(lr >= 0) || !isfinite(lr))
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "lg_optimizer_step: the learning-rate schedule gave %g for step %d (must be finite and >= 0)",
                       lr, (int)it);
    void *p = lg_param_block_run(o->graph, o->nodes, o->n);
    if (!p) { /* another optimizer's packing took this run apart */
        lg_status st = lg_param_block_pack(o->graph, o->nodes, o->n);
        if (st) return st;
        p = lg_param_block_run(o->graph, o->nodes, o->n);
    }
    /* the update runs where the gradients are: the parameters and slots
     * are placed there (copied only where the other side is newer) */
    const lg_backend *b = grads_backend(o);
    int64_t total = o->offsets[o->n];
    size_t bytes = (size_t)total * lg_dtype_size(o->dtype), at = 0;
    lg_mirror *pm = lg_tensor_mirror_at(o->graph->nodes[o->nodes[0]].attrs.tensor, &at);
    LG_ASSERT(pm && (unsigned char *)p == pm->host + at); /* packed: the run lives in its block */
    void *pd = NULL, *gd = NULL, *s[LG_OPTIM_MAX_SLOTS] = {NULL};
    lg_status st = lg_mirror_place(pm, b, at, bytes, &pd);
    if (!st) st = lg_mirror_place(&o->grad_mirror, b, 0, bytes, &gd);
    for (int k = 0; !st && k < o->n_slots; k++) st = lg_mirror_place(&o->slot_mirror[k], b, 0, bytes, &s[k]);
    if (!st) st = lg_clip_apply(o, b, gd);
    if (!st) st = o->rule->update(o, b, pd, gd, s, total, lr, (int64_t)it + 1);
    if (st) return st;
    lg_mirror_wrote(pm, b, at, bytes);
    lg_mirror_wrote(&o->grad_mirror, b, 0, bytes);
    for (int k = 0; k < o->n_slots; k++) lg_mirror_wrote(&o->slot_mirror[k], b, 0, bytes);
    *(int32_t *)lg_tensor_data(o->iterations) = it + 1;
    return LG_OK;
}

int lg_optimizer_state_count(const lg_optimizer *o) { return o ? 1 + o->n_slots * o->n : 0; }

lg_status lg_optimizer_state(lg_optimizer *o, int i, const char **name, lg_tensor **t)
{
    if (name) *name = NULL;
    if (t) *t = NULL;
    if (!o || !name || !t) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_optimizer_state: NULL argument");
    int count = lg_optimizer_state_count(o);
    if (i < 0 || i >= count)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_optimizer_state: index %d outside 0..%d", i, count - 1);
    *name = o->state_names[i];
    *t = i == 0 ? o->iterations : o->slot_views[i - 1];
    return lg_tensor_to_host(*t); /* the host copy, current, for reading or writing */
}
