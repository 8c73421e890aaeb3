/*
 * trainer.c — one training, evaluation or prediction step of a model
 * (include/graph/fit.h), and the registrations around it.
 *
 * A step is one lg_graph_run: feeds are x and y, the dropout masks and the
 * stateful layers' states; fetches are the loss, the output, then (when
 * training) the gradients into the optimizer's block, the batch norms' next
 * moving statistics and the stateful layers' final states.
 */
#include <math.h>
#include <string.h>

#include "graph/autodiff.h"
#include "optim/optim_internal.h"
#include "train/train.h"

lg_model_spec lg_model_spec_default(void)
{
    lg_value none = lg_value_invalid();
    return (lg_model_spec){.x = none, .y = none, .loss = none, .output = none, .eval_loss = none, .eval_output = none};
}

const char *lg_metric_name(lg_metric m)
{
    static const char *const names[] = {
        [LG_METRIC_NONE] = "", [LG_METRIC_ACCURACY] = "accuracy",
        [LG_METRIC_BINARY_ACCURACY] = "binary_accuracy", [LG_METRIC_MAE] = "mae"};
    static_assert(LG_ARRAY_LEN(names) == LG_METRIC_COUNT, "a name per metric");
    return (unsigned)m < LG_METRIC_COUNT ? names[m] : "";
}

static bool of_graph(lg_value v, const lg_graph *g) { return lg_value_ok(v) && v.graph == g; }

static lg_status check_spec(lg_graph *g, const lg_model_spec *m)
{
    static const char *const what[] = {"x", "y", "loss"};
    const lg_value req[] = {m->x, m->y, m->loss};
    for (int i = 0; i < 3; i++)
        if (!of_graph(req[i], g))
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer: %s is %s", what[i],
                           lg_value_ok(req[i]) ? "a value of another graph" : "not set");
    const lg_value opt[] = {m->output, m->eval_loss, m->eval_output};
    static const char *const opt_what[] = {"output", "eval_loss", "eval_output"};
    for (int i = 0; i < 3; i++)
        if (opt[i].graph && !of_graph(opt[i], g))
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer: %s is %s", opt_what[i],
                           lg_value_ok(opt[i]) ? "a value of another graph" : "invalid");
    const lg_value losses[] = {m->loss, m->eval_loss};
    for (int i = 0; i < 2; i++)
        if (lg_value_ok(losses[i]) && lg_shape_numel(lg_value_shape(losses[i])) != 1)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer: %s '%s' must be a scalar, got %s", i ? "eval_loss" : "loss",
                           lg_value_name(losses[i]), lg_shape_cstr(lg_value_shape(losses[i])));
    if ((unsigned)m->metric >= LG_METRIC_COUNT)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer: unknown metric %d", (int)m->metric);
    if (m->metric != LG_METRIC_NONE && !lg_value_ok(m->output))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer: metric '%s' needs an output", lg_metric_name(m->metric));
    if (strcmp(lg_graph_node_op(g, m->x.node), "input") || strcmp(lg_graph_node_op(g, m->y.node), "input"))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer: x and y must be inputs (lg_input)");
    return LG_OK;
}

lg_status lg_trainer_new(lg_graph *g, lg_model_spec m, lg_optimizer *opt, lg_trainer **out)
{
    if (out) *out = NULL;
    if (!g || !opt || !out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer: graph, optimizer and out are required");
    if (lg_graph_error(g)) return lg_fail(LG_ERR_GRAPH, "trainer: the graph has an error: %s", lg_graph_error(g));
    lg_status s = check_spec(g, &m);
    if (s) return s;
    if (!lg_value_ok(m.eval_loss)) m.eval_loss = m.loss;
    if (!lg_value_ok(m.eval_output)) m.eval_output = m.output;
    lg_trainer *tr = calloc(1, sizeof *tr);
    int n = lg_optimizer_param_count(opt);
    if (tr) {
        tr->params = malloc((size_t)(n ? n : 1) * sizeof *tr->params);
        tr->grads = malloc((size_t)(n ? n : 1) * sizeof *tr->grads);
    }
    if (!tr || !tr->params || !tr->grads) {
        lg_trainer_free(tr);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "trainer: out of memory");
    }
    tr->g = g, tr->m = m, tr->opt = opt, tr->n_params = n;
    for (int i = 0; i < n; i++) tr->params[i] = lg_optimizer_param(opt, i);
    s = lg_grad(g, m.loss, tr->params, n, tr->grads);
    if (s) {
        lg_trainer_free(tr);
        return lg_fail(LG_ERR_GRAPH, "trainer: gradients of '%s': %s", lg_value_name(m.loss), lg_last_error());
    }
    *out = tr;
    return LG_OK;
}

void lg_trainer_free(lg_trainer *tr)
{
    if (!tr) return;
    for (int i = 0; i < tr->n_masks; i++) lg_tensor_free(tr->masks[i].t), lg_tensor_free(tr->masks[i].full);
    free(tr->masks), free(tr->bns), free(tr->states), free(tr->history);
    free(tr->params), free(tr->grads);
    lg_trainer_dist_free(tr->dist);
    free(tr);
}

/* Grow *arr (of *n elements of size bytes) by one; false when out of memory. */
static bool grow(void *arr, int n, size_t size)
{
    void **p = arr;
    void *q = realloc(*p, (size_t)(n + 1) * size);
    if (!q) return false;
    *p = q;
    return true;
}

lg_status lg_trainer_add_dropout_mask(lg_trainer *tr, lg_value mask, double rate)
{
    if (!tr) return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer_add_dropout_mask: trainer is NULL");
    if (!of_graph(mask, tr->g) || strcmp(lg_graph_node_op(tr->g, mask.node), "input"))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer_add_dropout_mask: the mask must be an input of the trainer's graph");
    if (!(rate >= 0 && rate < 1))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer_add_dropout_mask: rate %g outside [0, 1)", rate);
    if (!grow(&tr->masks, tr->n_masks, sizeof *tr->masks))
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "trainer_add_dropout_mask: out of memory");
    tr->masks[tr->n_masks++] = (lg_trainer_mask){mask, rate, NULL, NULL};
    return LG_OK;
}

lg_status lg_trainer_add_batch_norm(lg_trainer *tr, const lg_batch_norm_result *bn)
{
    if (!tr || !bn) return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer_add_batch_norm: trainer and result are required");
    if (!of_graph(bn->new_moving_mean, tr->g) || !of_graph(bn->new_moving_variance, tr->g))
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "trainer_add_batch_norm: not a training-mode batch norm of the trainer's graph");
    if (!grow(&tr->bns, tr->n_bns, sizeof *tr->bns)) return lg_fail(LG_ERR_OUT_OF_MEMORY, "trainer_add_batch_norm: out of memory");
    tr->bns[tr->n_bns++] = *bn;
    return LG_OK;
}

lg_status lg_trainer_add_rnn_state(lg_trainer *tr, lg_rnn_state *st)
{
    if (!tr || !st) return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer_add_rnn_state: trainer and state are required");
    if (!grow(&tr->states, tr->n_states, sizeof *tr->states))
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "trainer_add_rnn_state: out of memory");
    tr->states[tr->n_states++] = st;
    return LG_OK;
}

void lg_trainer_reset_states(lg_trainer *tr)
{
    for (int i = 0; i < tr->n_states; i++) lg_rnn_state_reset(tr->states[i]);
}

/* *t as a tensor of the input's dtype and shape with b rows. */
static lg_status mask_tensor(const lg_trainer_mask *mk, int64_t b, lg_tensor **t)
{
    lg_shape want = lg_value_shape(mk->input);
    want.dims[0] = b;
    if (*t && lg_shape_equal(lg_tensor_shape(*t), want)) return LG_OK;
    lg_tensor_free(*t);
    *t = NULL;
    return lg_tensor_new(lg_value_dtype(mk->input), want, t);
}

/* The mask tensor for a batch of b examples: [b, n] with fresh keep
 * decisions from the stream (seed, step). A share of a global batch takes
 * its rows of the global batch's mask, so shares drop what one process
 * would. */
static lg_status fill_mask(lg_trainer_mask *mk, int64_t b, uint64_t seed, uint64_t key, const lg_share *share)
{
    lg_status s = mask_tensor(mk, b, &mk->t);
    if (!s && !share) return lg_dropout_mask_fill(mk->t, mk->rate, seed, key);
    if (!s) s = mask_tensor(mk, share->global, &mk->full);
    if (!s) s = lg_dropout_mask_fill(mk->full, mk->rate, seed, key);
    if (s) return s;
    size_t row = lg_tensor_bytes(mk->full) / (size_t)share->global;
    const char *rows = (const char *)lg_tensor_cdata(mk->full) + (size_t)share->offset * row;
    memcpy(lg_tensor_data(mk->t), rows, (size_t)b * row);
    return LG_OK;
}

/* Metric sums over a batch: accuracy hits, or absolute errors, and the count
 * they are averaged over. */
static lg_status metric_sum(lg_metric m, const lg_tensor *out, const lg_tensor *y, double *sum, double *count)
{
    int64_t n = lg_tensor_numel(out), ny = lg_tensor_numel(y);
    lg_shape os = lg_tensor_shape(out);
    if (m == LG_METRIC_ACCURACY) {
        int64_t classes = os.rank ? os.dims[os.rank - 1] : 1, rows = classes ? n / classes : 0;
        if (lg_tensor_dtype(y) != LG_I32 || rows != ny)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "accuracy: output %s needs y i32 [%lld] of class ids, got %s %s",
                           lg_shape_cstr(os), (long long)rows, lg_dtype_name(lg_tensor_dtype(y)),
                           lg_shape_cstr(lg_tensor_shape(y)));
        for (int64_t r = 0; r < rows; r++) {
            int64_t best = 0;
            for (int64_t c = 1; c < classes; c++)
                if (lg_tensor_get(out, r * classes + c) > lg_tensor_get(out, r * classes + best)) best = c;
            *sum += best == (int64_t)lg_tensor_get(y, r);
        }
        *count += (double)rows;
        return LG_OK;
    }
    if (n != ny)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: output %s and y %s differ in size", lg_metric_name(m),
                       lg_shape_cstr(os), lg_shape_cstr(lg_tensor_shape(y)));
    for (int64_t i = 0; i < n; i++) {
        double o = lg_tensor_get(out, i), t = lg_tensor_get(y, i);
        *sum += m == LG_METRIC_MAE ? fabs(o - t) : (double)((o > 0.5) == (t > 0.5));
    }
    *count += (double)n;
    return LG_OK;
}

lg_status lg_trainer_step(lg_trainer *tr, const lg_tensor *x, const lg_tensor *y, lg_step_kind kind, lg_step_sums *sums,
                          lg_tensor **prediction)
{
    if (tr->dist && kind != LG_STEP_PREDICT) return lg_trainer_dist_step(tr, x, y, kind, sums);
    return lg_trainer_run(tr, x, y, kind, sums, prediction, NULL);
}

lg_status lg_trainer_nan_stop(const lg_trainer *tr, double loss)
{
    return lg_fail(LG_ERR_RUNTIME,
                   "the loss '%s' is %s: stopped before the optimizer step, the parameters are as before this batch "
                   "(lg_fit_opts.continue_on_nan trains on)",
                   lg_value_name(tr->m.loss), isnan(loss) ? "nan" : loss > 0 ? "inf" : "-inf");
}

lg_status lg_trainer_run(lg_trainer *tr, const lg_tensor *x, const lg_tensor *y, lg_step_kind kind, lg_step_sums *sums,
                         lg_tensor **prediction, const lg_share *share)
{
    bool train = kind == LG_STEP_TRAIN, want_out = kind == LG_STEP_PREDICT || tr->m.metric != LG_METRIC_NONE;
    int64_t b = lg_tensor_shape(x).dims[0];
    int n_feeds = 2 + (train ? tr->n_masks : 0), n_fetch = 2 + (train ? tr->n_params + 2 * tr->n_bns : 0);
    for (int i = 0; i < tr->n_states; i++) {
        n_feeds += lg_rnn_state_count(tr->states[i]);
        n_fetch += lg_rnn_state_count(tr->states[i]);
    }
    lg_feed feeds[n_feeds];
    lg_value fetches[n_fetch];
    lg_tensor *out[n_fetch];
    memset(out, 0, sizeof out);
    int nf = 0, nx = 0;
    feeds[nf++] = (lg_feed){tr->m.x, x};
    if (kind != LG_STEP_PREDICT) feeds[nf++] = (lg_feed){tr->m.y, y};
    fetches[nx++] = train ? tr->m.loss : tr->m.eval_loss;
    if (kind == LG_STEP_PREDICT) nx = 0; /* no loss without targets */
    lg_value output = train ? tr->m.output : tr->m.eval_output;
    int out_at = nx;
    if (want_out) fetches[nx++] = output;
    lg_status s = LG_OK;
    for (int i = 0; train && !s && i < tr->n_masks; i++) {
        s = fill_mask(&tr->masks[i], b, tr->seed, ((uint64_t)tr->step << 8) + (uint64_t)i, share);
        feeds[nf++] = (lg_feed){tr->masks[i].input, tr->masks[i].t};
    }
    int grads_at = nx;
    if (train) {
        lg_tensor *const *gv = lg_optimizer_grad_views(tr->opt); /* written where the step runs */
        for (int i = 0; i < tr->n_params; i++) out[nx] = gv[i], fetches[nx++] = tr->grads[i];
        for (int i = 0; i < tr->n_bns; i++) {
            fetches[nx++] = tr->bns[i].new_moving_mean;
            fetches[nx++] = tr->bns[i].new_moving_variance;
        }
    }
    int states_at = nx;
    for (int i = 0; !s && i < tr->n_states; i++) {
        s = lg_rnn_state_feeds(tr->states[i], feeds, &nf);
        if (!s) s = lg_rnn_state_fetches(tr->states[i], fetches, &nx);
    }
    if (!s) s = lg_graph_run_on(tr->g, tr->device, feeds, nf, fetches, nx, out);
    if (s) s = lg_rnn_state_explain(tr->states, tr->n_states, feeds, nf, s); /* a batch its states do not hold */
    /* Keras's TerminateOnNaN, but before the update: the loss and the
     * gradients come from one run, so a non-finite loss skips the optimizer
     * step and everything after it, and the parameters stay as they were. A
     * data-parallel share leaves the decision to the group's loss (dist.c). */
    double loss = !s && kind != LG_STEP_PREDICT ? lg_tensor_get(out[0], 0) : 0;
    if (!s && train && !share && tr->stop_on_nan && !isfinite(loss)) s = lg_trainer_nan_stop(tr, loss);
    if (!s && train && share) /* the step waits for every share (dist.c) */
        s = lg_trainer_dist_accumulate(tr, b, share->global, out + grads_at + tr->n_params);
    else if (!s && train) {
        s = lg_optimizer_step(tr->opt);
        tr->step++;
    }
    for (int i = 0, k = grads_at + tr->n_params; !s && train && !share && i < tr->n_bns; i++, k += 2)
        s = lg_batch_norm_update(&tr->bns[i], out[k], out[k + 1]);
    for (int i = 0, k = states_at; !s && i < tr->n_states; k += lg_rnn_state_count(tr->states[i]), i++)
        s = lg_rnn_state_update(tr->states[i], out + k);
    if (!s && sums && kind != LG_STEP_PREDICT) {
        sums->loss += loss * (double)b;
        sums->examples += b;
        if (tr->m.metric != LG_METRIC_NONE) s = metric_sum(tr->m.metric, out[out_at], y, &sums->metric, &sums->metric_count);
    }
    if (!s && prediction) {
        *prediction = out[out_at];
        out[out_at] = NULL;
    }
    for (int i = 0; i < nx; i++)
        if (!(train && i >= grads_at && i < grads_at + tr->n_params)) lg_tensor_free(out[i]);
    return s;
}

int lg_trainer_history_count(const lg_trainer *tr) { return tr ? tr->n_history : 0; }

const lg_epoch_logs *lg_trainer_history(const lg_trainer *tr, int i)
{
    return tr && i >= 0 && i < tr->n_history ? &tr->history[i] : NULL;
}
