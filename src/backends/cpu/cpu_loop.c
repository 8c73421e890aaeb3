/*
 * cpu_loop.c — run a loop: the body's cached program once per step, on
 * views of the loop's buffers.
 *
 * Sequences and stacked outputs are time-major [T, ...], so step t of each
 * is one contiguous block. Carried states ping-pong between two scratch
 * buffers; each step first saves the state it starts from into the stacked
 * saved-state output (what the gradient loop reads).
 */
#include <string.h>

#include "backends/cpu/cpu.h"

static size_t buf_bytes(const lg_buf *b) { return (size_t)lg_buf_numel(b) * lg_dtype_size(b->dtype); }

static lg_shape drop_time(lg_shape s)
{
    for (int i = 0; i + 1 < s.rank; i++) s.dims[i] = s.dims[i + 1];
    s.rank--;
    return s;
}

/* The node output holding stacked residual r. */
static int res_out(const lg_loop_spec *s, int r) { return 2 * s->n_state + s->n_y + r; }

typedef struct loop_run {
    int n_in, n_fetch;
    lg_feed *feeds;
    lg_value *fetches;
    lg_tensor **in_views, **out_views;
    void **cur, **next; /* per state */
} loop_run;

static void loop_run_free(loop_run *r, int n_state)
{
    for (int i = 0; r->in_views && i < r->n_in; i++) lg_tensor_free(r->in_views[i]);
    for (int i = 0; r->out_views && i < r->n_fetch; i++) lg_tensor_free(r->out_views[i]);
    for (int k = 0; k < n_state; k++) {
        if (r->cur) free(r->cur[k]);
        if (r->next) free(r->next[k]);
    }
    free(r->feeds), free(r->fetches), free(r->in_views), free(r->out_views), free(r->cur), free(r->next);
}

lg_status lg_cpu_loop(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    const lg_loop_spec *s = n->attrs.loop;
    int n_in = s->n_seq + s->n_state + s->n_inv, n_fetch = s->n_state + s->n_y + s->has_stop + s->n_res;
    int first_res = s->n_state + s->n_y + s->has_stop; /* fetches: states, outputs, stop, residuals */
    int64_t steps = s->n_seq ? in[0].shape.dims[0] : s->steps;
    loop_run r = {.n_in = n_in, .n_fetch = n_fetch};
    r.feeds = calloc((size_t)n_in, sizeof *r.feeds);
    r.fetches = calloc((size_t)n_fetch, sizeof *r.fetches);
    r.in_views = calloc((size_t)n_in, sizeof *r.in_views);
    r.out_views = calloc((size_t)n_fetch, sizeof *r.out_views);
    r.cur = calloc((size_t)(s->n_state ? s->n_state : 1), sizeof *r.cur);
    r.next = calloc((size_t)(s->n_state ? s->n_state : 1), sizeof *r.next);
    lg_status st = LG_OK;
    if (!r.feeds || !r.fetches || !r.in_views || !r.out_views || !r.cur || !r.next) st = LG_ERR_OUT_OF_MEMORY;
    for (int k = 0; !st && k < s->n_state; k++) {
        const lg_buf *init = &in[s->n_seq + k];
        r.cur[k] = malloc(buf_bytes(init));
        r.next[k] = malloc(buf_bytes(init));
        if (!r.cur[k] || !r.next[k]) st = LG_ERR_OUT_OF_MEMORY;
        else memcpy(r.cur[k], init->data, buf_bytes(init));
    }
    for (int i = 0; !st && i < n_in; i++) {
        lg_shape shape = i < s->n_seq ? drop_time(in[i].shape) : in[i].shape;
        r.in_views[i] = lg_tensor_view(in[i].dtype, shape, in[i].data);
        r.feeds[i] = (lg_feed){lg_value_of(s->body, s->inputs[i], 0), r.in_views[i]};
        if (!r.in_views[i]) st = LG_ERR_OUT_OF_MEMORY;
    }
    for (int k = 0; !st && k < n_fetch; k++) {
        lg_ref ref = k < first_res ? s->outputs[k] : s->res[k - first_res];
        r.fetches[k] = lg_value_of(s->body, ref.node, ref.out);
        if (s->has_stop && k == first_res - 1) { /* the stop condition: a scalar */
            lg_tensor *cond = NULL;
            st = lg_tensor_new(lg_value_dtype(r.fetches[k]), lg_value_shape(r.fetches[k]), &cond);
            r.out_views[k] = cond;
            continue;
        }
        const lg_buf *o = &out[k < first_res ? k : res_out(s, k - first_res)]; /* a state, or a stack */
        lg_shape shape = k < s->n_state ? o->shape : drop_time(o->shape);
        r.out_views[k] = lg_tensor_view(o->dtype, shape, NULL);
        if (!r.out_views[k]) st = LG_ERR_OUT_OF_MEMORY;
    }
    if (!st && s->has_stop) /* steps never run stay zero */
        for (int k = s->n_state; k < n->n_out; k++) memset(out[k].data, 0, buf_bytes(&out[k]));
    if (st) {
        loop_run_free(&r, s->n_state);
        return lg_fail(st, "loop '%s': out of memory", n->name);
    }
    /* one program for every step: the steps differ only in where the views point */
    lg_program *prog = NULL;
    if (!st) st = lg_graph_program(s->body, r.feeds, n_in, r.fetches, n_fetch, &prog);
    for (int64_t step = 0; !st && step < steps; step++) {
        int64_t t = s->reverse ? steps - 1 - step : step;
        for (int i = 0; i < s->n_seq; i++) {
            size_t block = buf_bytes(&in[i]) / (size_t)steps;
            lg_tensor_view_point(r.in_views[i], (char *)in[i].data + (size_t)t * block);
        }
        for (int k = 0; k < s->n_state; k++) {
            const lg_buf *saved = &out[s->n_state + s->n_y + k]; /* [0, ...] in a gradient loop */
            size_t block = buf_bytes(saved) / (size_t)steps;
            if (block) memcpy((char *)saved->data + (size_t)t * block, r.cur[k], block);
            lg_tensor_view_point(r.in_views[s->n_seq + k], r.cur[k]);
            lg_tensor_view_point(r.out_views[k], r.next[k]);
        }
        for (int k = s->n_state; k < n_fetch; k++) { /* per-step outputs and residuals */
            if (s->has_stop && k == first_res - 1) continue;
            const lg_buf *stack = &out[k < first_res ? k : res_out(s, k - first_res)];
            size_t block = buf_bytes(stack) / (size_t)steps;
            lg_tensor_view_point(r.out_views[k], (char *)stack->data + (size_t)t * block);
        }
        st = lg_program_run(prog, r.feeds, n_in, r.out_views);
        for (int k = 0; k < s->n_state; k++) {
            void *tmp = r.cur[k];
            r.cur[k] = r.next[k];
            r.next[k] = tmp;
        }
        if (!st && s->has_stop && lg_tensor_get(r.out_views[first_res - 1], 0) != 0) break;
    }
    for (int k = 0; !st && k < s->n_state; k++) memcpy(out[k].data, r.cur[k], buf_bytes(&out[k]));
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_last_error());
        st = lg_fail(st, "loop '%s': %s", n->name, msg);
    }
    loop_run_free(&r, s->n_state);
    return st;
}
