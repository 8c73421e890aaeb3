/*
 * dist.c — data-parallel groups (include/graph/distributed.h): local
 * groups, the sharded step of a distributed trainer, and the agreement fit
 * needs between ranks. The engine that moves bytes between processes sits
 * behind lg_dist_ops (distributed.h); Open MPI's is src/dist/mpi.c, in
 * its own library, so the core never needs MPI.
 *
 * One step of a distributed trainer, on every rank:
 *   1. run each of this process's shares of the batch: one share for a
 *      group of processes, all of them in rank order for a local group;
 *      each share's gradient block is scaled by b_r / b in place and then
 *      copied (the first share) or added (the next ones) into the sum;
 *   2. sum five numbers over the group: a failure flag and the share's loss
 *      and metric sums, so every rank knows whether to go on, and the logs
 *      hold the global batch's numbers;
 *   3. sum the gradient block (and the batch norms' statistics) over the
 *      group, copy it into the optimizer's block, and step.
 * Scaling and adding are separate statements, so a process's sum of two
 * shares is the same two roundings as the engine's sum of two processes.
 *
 * An engine with a device (NCCL, lg_dist_ops.device) sums device memory:
 * then the trainer must run on that device, step 1 scales the gradient
 * block in place where the program wrote it (the backend's scale, rounded
 * as scale() here), and step 3 sums it there on the backend's stream, so
 * the block never crosses to the host; the five numbers and the batch
 * norms' statistics stay host sums. A host engine on a trainer on a device
 * sums on the host and hands the sum back to the device, where the step
 * runs.
 */
#include <math.h>
#include <string.h>

#include "graph/distributed.h"
#include "optim/optim_internal.h"
#include "train/train.h"

struct lg_dist {
    int rank, size;
    const lg_dist_ops *ops; /* NULL: a local group, every share in this process */
    void *ctx;
};

struct lg_trainer_dist {
    lg_dist *d;
    lg_tensor *x, *y;  /* the rows of the current share */
    lg_tensor *sum;    /* the shares' scaled gradient blocks, summed: [numel of the block]; made by the
                          first host sum (a group summing on a device needs none) */
    lg_tensor **stats; /* per batch norm, its new moving mean and variance, summed likewise */
    int n_stats;
    bool started; /* a share of this step has been added */
    const lg_backend *dev; /* this step's group device (== the trainer's); NULL: host sums */
};

lg_status lg_dist_wrap(int rank, int size, const lg_dist_ops *ops, void *ctx, lg_dist **out)
{
    lg_status s = LG_OK;
    lg_dist *d = NULL;
    if (!out || size < 1 || rank < 0 || rank >= size)
        s = lg_fail(LG_ERR_INVALID_ARGUMENT, "dist: rank %d outside a group of %d, or out NULL", rank, size);
    else if (ops && ops->device && (!ops->sum_device || !ops->broadcast_device))
        s = lg_fail(LG_ERR_INVALID_ARGUMENT, "dist: an engine with a device needs sum_device and broadcast_device");
    else if (!(d = calloc(1, sizeof *d)))
        s = lg_fail(LG_ERR_OUT_OF_MEMORY, "dist: out of memory");
    if (s) {
        if (ops && ops->free) ops->free(ctx);
        return s;
    }
    *d = (lg_dist){rank, size, ops, ctx};
    *out = d;
    return LG_OK;
}

lg_status lg_dist_local_new(int replicas, lg_dist **out)
{
    if (out) *out = NULL;
    if (!out || replicas < 1)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "dist_local_new: replicas %d must be >= 1 and out not NULL", replicas);
    return lg_dist_wrap(0, replicas, NULL, NULL, out);
}

void lg_dist_free(lg_dist *d)
{
    if (!d) return;
    if (d->ops && d->ops->free) d->ops->free(d->ctx);
    free(d);
}

int lg_dist_rank(const lg_dist *d) { return d ? d->rank : 0; }
int lg_dist_size(const lg_dist *d) { return d ? d->size : 1; }
const char *lg_dist_device(const lg_dist *d) { return d && d->ops && d->ops->device ? d->ops->device(d->ctx) : NULL; }

/* Sum over the group's processes; nothing to do within one process. */
static lg_status group_sum(const lg_dist *d, void *data, int64_t n, lg_dtype dt)
{
    return d->ops && n > 0 ? d->ops->sum(d->ctx, data, n, dt) : LG_OK;
}

/* The backend of the group's device (an engine with ops->device); NULL
 * for host engines and local groups. */
static lg_status group_device(const lg_dist *d, const lg_backend **b)
{
    *b = NULL;
    const char *dev = lg_dist_device(d);
    lg_status s = dev ? lg_backend_get(dev, b) : LG_OK;
    if (!s && *b && (*b)->host_memory) {
        *b = NULL;
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "dist: the engine's device '%s' is host memory (leave ops.device NULL)",
                       dev);
    }
    return s;
}

/* The optimizer's gradient block placed on b without coming home (stale
 * segments copied over) and marked as written there: *gd is b's pointer
 * to *n elements of *dt. */
static lg_status grad_block_on(lg_optimizer *opt, const lg_backend *b, void **gd, int64_t *n, lg_dtype *dt)
{
    lg_tensor *const *g = lg_optimizer_grad_views(opt);
    *n = 0, *gd = NULL;
    for (int i = 0; i < lg_optimizer_param_count(opt); i++) *n += lg_tensor_numel(g[i]);
    *dt = *n ? lg_tensor_dtype(g[0]) : LG_F32;
    if (!*n) return LG_OK;
    size_t at = 0, bytes = (size_t)*n * lg_dtype_size(*dt);
    lg_mirror *m = lg_tensor_mirror_at(g[0], &at);
    LG_ASSERT(m && at == 0); /* the optimizer's views tile its mirrored block */
    lg_status s = lg_mirror_place(m, b, 0, bytes, gd);
    if (!s) lg_mirror_wrote(m, b, 0, bytes);
    return s;
}

/* Copy rank 0's value of parameter tensor p to every rank: on the group's
 * device gb when p lives in a mirror (placed there first), else at home. */
static lg_status broadcast_param(const lg_dist *d, const lg_backend *gb, lg_tensor *p)
{
    size_t at = 0, bytes = lg_tensor_bytes(p);
    lg_mirror *m = gb ? lg_tensor_mirror_at(p, &at) : NULL;
    if (m) {
        void *pd = NULL;
        lg_status s = lg_mirror_place(m, gb, at, bytes, &pd);
        if (!s) s = d->ops->broadcast_device(d->ctx, gb->native_stream(gb), pd, bytes);
        if (!s) lg_mirror_wrote(m, gb, at, bytes);
        return s;
    }
    lg_status s = lg_tensor_to_host(p);
    return s ? s : d->ops->broadcast(d->ctx, lg_tensor_data(p), bytes);
}

/* The optimizer's gradient block as one run of *n elements of *dt. */
static void *grad_block(lg_optimizer *opt, int64_t *n, lg_dtype *dt)
{
    lg_tensor *const *g = lg_optimizer_grads(opt);
    *n = 0;
    for (int i = 0; i < lg_optimizer_param_count(opt); i++) *n += lg_tensor_numel(g[i]);
    *dt = *n ? lg_tensor_dtype(g[0]) : LG_F32;
    return *n ? lg_tensor_data(g[0]) : NULL;
}

static void scale(void *data, int64_t n, lg_dtype dt, double w)
{
    if (dt == LG_F64)
        for (double *v = data; n-- > 0; v++) *v *= w;
    else
        for (float *v = data; n-- > 0; v++) *v = (float)((double)*v * w);
}

/* sum += v, elementwise. */
static void add(void *sum, const void *v, int64_t n, lg_dtype dt)
{
    if (dt == LG_F64)
        for (int64_t i = 0; i < n; i++) ((double *)sum)[i] += ((const double *)v)[i];
    else
        for (int64_t i = 0; i < n; i++) ((float *)sum)[i] += ((const float *)v)[i];
}

lg_status lg_dist_broadcast_parameters(lg_dist *d, lg_optimizer *opt)
{
    if (!d || !opt)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "dist_broadcast_parameters: group and optimizer are required");
    const lg_backend *gb = NULL;
    lg_status s = group_device(d, &gb);
    for (int i = 0; !s && d->ops && i < lg_optimizer_param_count(opt); i++)
        s = broadcast_param(d, gb, lg_param_tensor(lg_optimizer_param(opt, i)));
    return s;
}

lg_status lg_dist_average_gradients(lg_dist *d, lg_optimizer *opt, int64_t examples)
{
    if (!d || !opt || examples < 0)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "dist_average_gradients: group and optimizer are required, examples %lld >= 0",
                       (long long)examples);
    double total = (double)examples;
    lg_status s = group_sum(d, &total, 1, LG_F64);
    if (s) return s;
    if (!(total > 0)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "dist_average_gradients: no rank had examples");
    int64_t n;
    lg_dtype dt;
    const lg_backend *gb = NULL;
    if ((s = group_device(d, &gb))) return s;
    if (gb) { /* scaled and summed on the device, where the block stays */
        void *gd = NULL;
        s = grad_block_on(opt, gb, &gd, &n, &dt);
        if (!s && n) s = gb->scale(gb, dt, gd, n, (double)examples / total);
        if (!s && n) s = d->ops->sum_device(d->ctx, gb->native_stream(gb), gd, n, dt);
        return s;
    }
    void *g = grad_block(opt, &n, &dt);
    if (!d->ops) return LG_OK;
    scale(g, n, dt, (double)examples / total);
    return group_sum(d, g, n, dt);
}

void lg_trainer_dist_free(struct lg_trainer_dist *td)
{
    if (!td) return;
    lg_tensor_free(td->x), lg_tensor_free(td->y), lg_tensor_free(td->sum);
    for (int i = 0; i < td->n_stats; i++) lg_tensor_free(td->stats[i]);
    free(td->stats);
    free(td);
}

lg_status lg_trainer_distribute(lg_trainer *tr, lg_dist *d)
{
    if (!tr) return lg_fail(LG_ERR_INVALID_ARGUMENT, "trainer_distribute: trainer is NULL");
    if (d && tr->n_states)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "trainer_distribute: the trainer has %d stateful layer(s), whose states belong to batch rows "
                       "and cannot be split between replicas", tr->n_states);
    lg_trainer_dist_free(tr->dist);
    tr->dist = NULL;
    if (!d) return LG_OK;
    const lg_backend *gb = NULL; /* every parameter of the graph, trained or not (moving statistics) */
    lg_status s = group_device(d, &gb);
    for (int i = 0; !s && d->ops && i < lg_graph_param_count(tr->g); i++)
        s = broadcast_param(d, gb, lg_param_tensor(lg_graph_param(tr->g, i)));
    if (s) return s;
    struct lg_trainer_dist *td = calloc(1, sizeof *td);
    if (!td) return lg_fail(LG_ERR_OUT_OF_MEMORY, "trainer_distribute: out of memory");
    td->d = d;
    tr->dist = td;
    return LG_OK;
}

bool lg_trainer_lead(const lg_trainer *tr) { return !tr->dist || tr->dist->d->rank == 0; }

lg_status lg_trainer_agree(lg_trainer *tr, lg_status s)
{
    if (!tr->dist) return s;
    double failed = s != LG_OK;
    lg_status c = group_sum(tr->dist->d, &failed, 1, LG_F64);
    if (s || c) return s ? s : c;
    return failed > 0 ? lg_fail(LG_ERR_RUNTIME, "another replica failed (its own message says why)") : LG_OK;
}

/* *t = rows [lo, hi) of src, in a tensor kept between steps. */
static lg_status take_rows(const lg_tensor *src, int64_t lo, int64_t hi, lg_tensor **t)
{
    lg_shape sh = lg_tensor_shape(src);
    size_t row = lg_tensor_bytes(src) / (size_t)sh.dims[0];
    sh.dims[0] = hi - lo;
    if (!*t || !lg_shape_equal(lg_tensor_shape(*t), sh) || lg_tensor_dtype(*t) != lg_tensor_dtype(src)) {
        lg_tensor_free(*t);
        *t = NULL;
        lg_status s = lg_tensor_new(lg_tensor_dtype(src), sh, t);
        if (s) return s;
    }
    memcpy(lg_tensor_data(*t), (const char *)lg_tensor_cdata(src) + (size_t)lo * row, (size_t)(hi - lo) * row);
    return LG_OK;
}

/* Sums for every batch norm's statistics, shaped like them; a rank whose
 * share is empty still takes part in their sum. */
static lg_status stats_ready(lg_trainer *tr, struct lg_trainer_dist *td)
{
    if (td->n_stats == 2 * tr->n_bns) return LG_OK;
    lg_tensor **st = realloc(td->stats, (size_t)(2 * tr->n_bns) * sizeof *st);
    if (!st) return lg_fail(LG_ERR_OUT_OF_MEMORY, "fit: out of memory");
    td->stats = st;
    for (; td->n_stats < 2 * tr->n_bns; td->n_stats++) {
        const lg_batch_norm_result *bn = &tr->bns[td->n_stats / 2];
        lg_value v = td->n_stats % 2 ? bn->new_moving_variance : bn->new_moving_mean;
        lg_status s = lg_tensor_new(lg_value_dtype(v), lg_value_shape(v), &td->stats[td->n_stats]);
        if (s) return s;
    }
    return LG_OK;
}

lg_status lg_trainer_dist_accumulate(lg_trainer *tr, int64_t b, int64_t global, lg_tensor *const *stats)
{
    struct lg_trainer_dist *td = tr->dist;
    double w = (double)b / (double)global;
    int64_t n;
    lg_dtype dt;
    if (td->dev) { /* one share per process: the block is the share, scaled where it is */
        void *gd = NULL;
        lg_status s = grad_block_on(tr->opt, td->dev, &gd, &n, &dt);
        if (!s && n) s = td->dev->scale(td->dev, dt, gd, n, w);
        if (s) return s;
    } else {
        void *g = grad_block(tr->opt, &n, &dt);
        lg_status s = td->sum ? LG_OK : lg_tensor_new(dt, lg_shape_of(1, n), &td->sum);
        if (s) return s;
        scale(g, n, dt, w);
        if (td->started) add(lg_tensor_data(td->sum), g, n, dt);
        else memcpy(lg_tensor_data(td->sum), g, (size_t)n * lg_dtype_size(dt));
    }
    for (int i = 0; i < td->n_stats; i++) {
        lg_tensor *t = stats[i];
        if (!lg_shape_equal(lg_tensor_shape(t), lg_tensor_shape(td->stats[i])))
            return lg_fail(LG_ERR_SHAPE, "batch norm statistics %s, expected %s", lg_shape_cstr(lg_tensor_shape(t)),
                           lg_shape_cstr(lg_tensor_shape(td->stats[i])));
        scale(lg_tensor_data(t), lg_tensor_numel(t), lg_tensor_dtype(t), w);
        if (td->started) add(lg_tensor_data(td->stats[i]), lg_tensor_cdata(t), lg_tensor_numel(t), lg_tensor_dtype(t));
        else lg_tensor_copy(td->stats[i], t);
    }
    td->started = true;
    return LG_OK;
}

/* The gradient block's sum over the group, on td->dev (in place) or at
 * home (td->sum, copied into the block and, for a trainer on the device tb,
 * over to it, so the step runs there). */
static lg_status sum_grads(lg_trainer *tr, struct lg_trainer_dist *td, const lg_backend *tb)
{
    int64_t n;
    lg_dtype dt;
    const lg_dist *d = td->d;
    if (td->dev) {
        void *gd = NULL;
        lg_status s = grad_block_on(tr->opt, td->dev, &gd, &n, &dt);
        if (!s && n && !td->started) s = td->dev->zero(td->dev, gd, (size_t)n * lg_dtype_size(dt));
        if (!s && n) s = d->ops->sum_device(d->ctx, td->dev->native_stream(td->dev), gd, n, dt);
        return s;
    }
    void *g = grad_block(tr->opt, &n, &dt);
    lg_status s = td->sum ? LG_OK : lg_tensor_new(dt, lg_shape_of(1, n), &td->sum);
    if (!s && !td->started) lg_tensor_fill(td->sum, 0); /* this rank's share was empty */
    if (!s) s = group_sum(d, lg_tensor_data(td->sum), n, dt);
    if (s) return s;
    memcpy(g, lg_tensor_cdata(td->sum), (size_t)n * lg_dtype_size(dt));
    void *gd = NULL;
    return tb->host_memory ? LG_OK : grad_block_on(tr->opt, tb, &gd, &n, &dt);
}

/* Step 3 of the overview: the group's sums, then the optimizer's step and
 * the moving statistics. */
static lg_status finish_train_step(lg_trainer *tr, struct lg_trainer_dist *td, const lg_backend *tb)
{
    if (!td->started) /* this rank's share was empty */
        for (int i = 0; i < td->n_stats; i++) lg_tensor_fill(td->stats[i], 0);
    lg_status s = sum_grads(tr, td, tb);
    for (int i = 0; !s && i < td->n_stats; i++) {
        lg_tensor *t = td->stats[i];
        s = group_sum(td->d, lg_tensor_data(t), lg_tensor_numel(t), lg_tensor_dtype(t));
    }
    if (s) return s;
    s = lg_optimizer_step(tr->opt);
    tr->step++;
    for (int i = 0; !s && i < tr->n_bns; i++)
        s = lg_batch_norm_update(&tr->bns[i], td->stats[2 * i], td->stats[2 * i + 1]);
    return s;
}

lg_status lg_trainer_dist_step(lg_trainer *tr, const lg_tensor *x, const lg_tensor *y, lg_step_kind kind,
                               lg_step_sums *sums)
{
    struct lg_trainer_dist *td = tr->dist;
    const lg_dist *d = td->d;
    bool train = kind == LG_STEP_TRAIN;
    int64_t b = lg_tensor_shape(x).dims[0];
    int first = d->ops ? d->rank : 0, end = d->ops ? d->rank + 1 : d->size;
    lg_step_sums mine = {0};
    const lg_backend *tb = NULL;
    lg_status s = group_device(d, &td->dev);
    if (!s) s = lg_backend_get(tr->device, &tb);
    if (!s && td->dev && td->dev != tb)
        s = lg_fail(LG_ERR_INVALID_ARGUMENT,
                    "data-parallel step: rank %d's group sums gradients on device '%s' but the trainer runs on '%s'; "
                    "fit with lg_fit_opts.device = \"%s\"", d->rank, td->dev->name, tb->name, td->dev->name);
    if (!s && train) s = stats_ready(tr, td);
    td->started = false;
    for (int r = first; !s && r < end; r++) {
        lg_share share = {b * r / d->size, b};
        int64_t hi = b * (r + 1) / d->size;
        if (hi == share.offset) continue; /* fewer rows than replicas */
        s = take_rows(x, share.offset, hi, &td->x);
        if (!s) s = take_rows(y, share.offset, hi, &td->y);
        if (!s) s = lg_trainer_run(tr, td->x, td->y, kind, &mine, NULL, train ? &share : NULL);
    }
    /* a failure anywhere stops every rank here, before the gradients' sum */
    double v[5] = {s != LG_OK, mine.loss, (double)mine.examples, mine.metric, mine.metric_count};
    lg_status c = group_sum(d, v, 5, LG_F64);
    if (s || c) return s ? s : c;
    if (v[0] > 0) return lg_fail(LG_ERR_RUNTIME, "another replica failed at this batch (its own message says why)");
    if (train && tr->stop_on_nan && !isfinite(v[1])) return lg_trainer_nan_stop(tr, v[1]); /* the group's loss */
    if (train) s = finish_train_step(tr, td, tb);
    if (!s && sums) {
        sums->loss += v[1], sums->examples += (int64_t)v[2];
        sums->metric += v[3], sums->metric_count += v[4];
    }
    return s;
}
