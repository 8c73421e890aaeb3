/*
 * dataset.c — in-memory datasets: rows of tensors or windows over a series,
 * batched in a per-epoch order.
 *
 * Both kinds are one structure. Example i starts at row i * stride of x; a
 * tensor dataset takes that one row (window 0: no time dim), a time-series
 * dataset takes `window` rows from there, `rate` rows apart. Its target is
 * row i * stride of y.
 */
#include <limits.h>
#include <string.h>

#include "graph/dataset.h"
#include "graph/init.h"
#include "graph/internal.h"

struct lg_dataset {
    lg_dataset_opts opts;
    lg_tensor *x, *y; /* owned copies of the rows examples read (y may be NULL) */
    int64_t n;        /* examples */
    int64_t window;   /* rows an example (0: one row, no time dim) */
    int64_t stride, rate;
    size_t x_row, y_row; /* bytes a row */
    int64_t *order;      /* the epoch's order of the examples */
    /* The batch tensors: full[0] owns a buffer of batch_size examples
     * (or N when fewer), last[] are views over it for a smaller last batch
     * (NULL when there is none). */
    lg_tensor *bx_full, *by_full, *bx_last, *by_last;
};

lg_dataset_opts lg_dataset_opts_default(void)
{
    return (lg_dataset_opts){.batch_size = 32, .shuffle = true, .seed = 0, .drop_last = false};
}

lg_split_opts lg_split_opts_default(void)
{
    lg_split_opts o = {.validation_fraction = 0.2, .side = LG_SPLIT_LAST};
    o.train = lg_dataset_opts_default();
    o.validation = lg_dataset_opts_default();
    o.validation.shuffle = false;
    return o;
}

lg_timeseries_opts lg_timeseries_opts_default(int64_t sequence_length)
{
    lg_timeseries_opts o = {.sequence_length = sequence_length,
                            .sequence_stride = 1,
                            .sampling_rate = 1,
                            .start_index = 0,
                            .end_index = -1,
                            .delay = 0};
    o.batch = lg_dataset_opts_default();
    o.batch.batch_size = 128;
    o.batch.shuffle = false;
    return o;
}

void lg_dataset_free(lg_dataset *ds)
{
    if (!ds) return;
    lg_tensor_free(ds->x);
    lg_tensor_free(ds->y);
    lg_tensor_free(ds->bx_last);
    lg_tensor_free(ds->by_last);
    lg_tensor_free(ds->bx_full);
    lg_tensor_free(ds->by_full);
    free(ds->order);
    free(ds);
}

int64_t lg_dataset_size(const lg_dataset *ds) { return ds ? ds->n : 0; }

int lg_dataset_batch_count(const lg_dataset *ds)
{
    if (!ds) return 0;
    int64_t b = ds->opts.batch_size;
    return (int)(ds->opts.drop_last ? ds->n / b : (ds->n + b - 1) / b);
}

static size_t row_bytes(const lg_tensor *t)
{
    lg_shape s = lg_tensor_shape(t);
    size_t n = lg_dtype_size(lg_tensor_dtype(t));
    for (int i = 1; i < s.rank; i++) n *= (size_t)s.dims[i];
    return n;
}

/* Rows [r0, r0 + n) of t as a new tensor [n, ...]. */
static lg_status rows_copy(const lg_tensor *t, int64_t r0, int64_t n, lg_tensor **out)
{
    lg_shape s = lg_tensor_shape(t);
    s.dims[0] = n;
    lg_status st = lg_tensor_new(lg_tensor_dtype(t), s, out);
    if (st) return st;
    size_t rb = row_bytes(t);
    if (n > 0 && rb > 0)
        memcpy(lg_tensor_data(*out), (const char *)lg_tensor_cdata(t) + (size_t)r0 * rb, (size_t)n * rb);
    return LG_OK;
}

/* The batch shape: b examples of t's rows, with a time dim `window` when
 * nonzero. */
static lg_shape batch_shape(const lg_tensor *t, int64_t b, int64_t window)
{
    lg_shape src = lg_tensor_shape(t), s = {.rank = 1, .dims = {b}};
    if (window) s.dims[s.rank++] = window;
    for (int i = 1; i < src.rank; i++) s.dims[s.rank++] = src.dims[i];
    return s;
}

static lg_status check_opts(const char *fn, lg_dataset_opts o, int64_t n)
{
    if (o.batch_size < 1)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: batch_size %lld: must be >= 1", fn, (long long)o.batch_size);
    if ((n - 1) / o.batch_size >= INT_MAX)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: %lld examples at batch_size %lld make more than %d batches", fn,
                       (long long)n, (long long)o.batch_size, INT_MAX);
    if (o.drop_last && n < o.batch_size)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "%s: drop_last with batch_size %lld leaves no batch: the dataset has %lld examples", fn,
                       (long long)o.batch_size, (long long)n);
    return LG_OK;
}

/* Finish a dataset whose x, y, n, window, stride and rate are set: the order
 * of epoch 0 and the batch tensors. Frees ds on failure. */
static lg_status finish(lg_dataset *ds, const char *fn, lg_dataset **out)
{
    ds->x_row = row_bytes(ds->x);
    ds->y_row = ds->y ? row_bytes(ds->y) : 0;
    int64_t full = ds->n < ds->opts.batch_size ? ds->n : ds->opts.batch_size;
    int64_t last = ds->opts.drop_last ? 0 : ds->n % ds->opts.batch_size;
    ds->order = malloc((size_t)ds->n * sizeof *ds->order);
    lg_status st =
        ds->order ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld examples", fn, (long long)ds->n);
    if (!st) st = lg_tensor_new(lg_tensor_dtype(ds->x), batch_shape(ds->x, full, ds->window), &ds->bx_full);
    if (!st && ds->y) st = lg_tensor_new(lg_tensor_dtype(ds->y), batch_shape(ds->y, full, 0), &ds->by_full);
    if (!st && last && last != full) {
        ds->bx_last =
            lg_tensor_view(lg_tensor_dtype(ds->x), batch_shape(ds->x, last, ds->window), lg_tensor_data(ds->bx_full));
        if (ds->y)
            ds->by_last =
                lg_tensor_view(lg_tensor_dtype(ds->y), batch_shape(ds->y, last, 0), lg_tensor_data(ds->by_full));
        if (!ds->bx_last || (ds->y && !ds->by_last))
            st = lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory for the last batch", fn);
    }
    if (!st) st = lg_dataset_epoch(ds, 0);
    if (st) {
        lg_dataset_free(ds);
        return st;
    }
    *out = ds;
    return LG_OK;
}

static lg_status check_rows(const char *fn, const char *what, const lg_tensor *t)
{
    lg_shape s = lg_tensor_shape(t);
    if (s.rank < 1) return lg_fail(LG_ERR_SHAPE, "%s: %s has rank 0: needs [N, ...]", fn, what);
    if (s.dims[0] == 0) return lg_fail(LG_ERR_SHAPE, "%s: %s %s has no rows", fn, what, lg_shape_cstr(s));
    return LG_OK;
}

/* A tensor dataset of rows [r0, r0 + n) of x and y. */
static lg_status from_rows(const char *fn, const lg_tensor *x, const lg_tensor *y, int64_t r0, int64_t n,
                           lg_dataset_opts o, lg_dataset **out)
{
    lg_status st = check_opts(fn, o, n);
    if (st) return st;
    lg_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    *ds = (lg_dataset){.opts = o, .n = n, .window = 0, .stride = 1, .rate = 1};
    st = rows_copy(x, r0, n, &ds->x);
    if (!st && y) st = rows_copy(y, r0, n, &ds->y);
    if (st) {
        lg_dataset_free(ds);
        return st;
    }
    return finish(ds, fn, out);
}

static lg_status check_xy(const char *fn, const lg_tensor *x, const lg_tensor *y)
{
    if (!x) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: x is NULL", fn);
    lg_status st = check_rows(fn, "x", x);
    if (!st && y) st = check_rows(fn, "y", y);
    if (st) return st;
    if (y && lg_tensor_shape(y).dims[0] != lg_tensor_shape(x).dims[0])
        return lg_fail(LG_ERR_SHAPE, "%s: y %s has %lld rows, x %s has %lld", fn, lg_shape_cstr(lg_tensor_shape(y)),
                       (long long)lg_tensor_shape(y).dims[0], lg_shape_cstr(lg_tensor_shape(x)),
                       (long long)lg_tensor_shape(x).dims[0]);
    return LG_OK;
}

lg_status lg_dataset_new(const lg_tensor *x, const lg_tensor *y, lg_dataset_opts o, lg_dataset **out)
{
    const char *fn = "lg_dataset_new";
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    lg_status st = check_xy(fn, x, y);
    if (st) return st;
    return from_rows(fn, x, y, 0, lg_tensor_shape(x).dims[0], o, out);
}

lg_status lg_dataset_split(const lg_tensor *x, const lg_tensor *y, lg_split_opts o, lg_dataset **train,
                           lg_dataset **validation)
{
    const char *fn = "lg_dataset_split";
    if (!train || !validation) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: train or validation is NULL", fn);
    *train = *validation = NULL;
    lg_status st = check_xy(fn, x, y);
    if (st) return st;
    if (!(o.validation_fraction > 0 && o.validation_fraction < 1))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: validation_fraction %g: must lie in (0, 1)", fn,
                       o.validation_fraction);
    if ((int)o.side < 0 || o.side >= LG_SPLIT_SIDE_COUNT)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: side %d: not an lg_split_side", fn, (int)o.side);
    int64_t n = lg_tensor_shape(x).dims[0];
    int64_t n_train = (int64_t)((double)n * (1.0 - o.validation_fraction)); /* floor: the value is >= 0 */
    if (n_train == 0 || n_train == n)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "%s: %lld examples are too few to split with validation_fraction %g (training would get %lld)",
                       fn, (long long)n, o.validation_fraction, (long long)n_train);
    int64_t train_r0 = o.side == LG_SPLIT_LAST ? 0 : n - n_train;
    int64_t val_r0 = o.side == LG_SPLIT_LAST ? n_train : 0;
    st = from_rows(fn, x, y, train_r0, n_train, o.train, train);
    if (!st) st = from_rows(fn, x, y, val_r0, n - n_train, o.validation, validation);
    if (st) {
        lg_dataset_free(*train);
        *train = NULL;
    }
    return st;
}

lg_status lg_dataset_epoch(lg_dataset *ds, int64_t epoch)
{
    if (!ds) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_dataset_epoch: dataset is NULL");
    if (epoch < 0)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_dataset_epoch: epoch %lld: must be >= 0", (long long)epoch);
    for (int64_t i = 0; i < ds->n; i++) ds->order[i] = i;
    if (!ds->opts.shuffle) return LG_OK;
    /* Fisher-Yates; 64 random bits a draw (two stream positions), so the
     * modulo's bias is below N / 2^64. */
    uint64_t key = (uint64_t)epoch;
    for (int64_t i = ds->n - 1; i > 0; i--) {
        uint64_t r = (uint64_t)lg_philox_u32(ds->opts.seed, key, 2 * (uint64_t)i) << 32 |
                     lg_philox_u32(ds->opts.seed, key, 2 * (uint64_t)i + 1);
        int64_t j = (int64_t)(r % (uint64_t)(i + 1));
        int64_t t = ds->order[i];
        ds->order[i] = ds->order[j];
        ds->order[j] = t;
    }
    return LG_OK;
}

lg_status lg_dataset_batch(lg_dataset *ds, int k, lg_tensor **x, lg_tensor **y)
{
    if (!ds || !x) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_dataset_batch: dataset or x is NULL");
    int count = lg_dataset_batch_count(ds);
    if (k < 0 || k >= count)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_dataset_batch: batch %d outside [0, %d)", k, count);
    int64_t first = (int64_t)k * ds->opts.batch_size;
    int64_t b = ds->n - first < ds->opts.batch_size ? ds->n - first : ds->opts.batch_size;
    bool small = ds->bx_last && b != lg_tensor_shape(ds->bx_full).dims[0];
    char *bx = lg_tensor_data(ds->bx_full), *by = lg_tensor_data(ds->by_full);
    const char *sx = lg_tensor_cdata(ds->x), *sy = lg_tensor_cdata(ds->y);
    int64_t steps = ds->window ? ds->window : 1;
    for (int64_t e = 0; e < b; e++) {
        int64_t row = ds->order[first + e] * ds->stride;
        for (int64_t j = 0; j < steps && ds->x_row; j++)
            memcpy(bx + (size_t)(e * steps + j) * ds->x_row, sx + (size_t)(row + j * ds->rate) * ds->x_row, ds->x_row);
        if (ds->y && ds->y_row) memcpy(by + (size_t)e * ds->y_row, sy + (size_t)row * ds->y_row, ds->y_row);
    }
    *x = small ? ds->bx_last : ds->bx_full;
    if (y) *y = !ds->y ? NULL : small ? ds->by_last : ds->by_full;
    return LG_OK;
}

/* ---- time series ------------------------------------------------------------------- */

lg_status lg_timeseries_dataset_new(const lg_tensor *data, const lg_tensor *targets, lg_timeseries_opts o,
                                    lg_dataset **out)
{
    const char *fn = "lg_timeseries_dataset_new";
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!data) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: data is NULL", fn);
    lg_status st = check_rows(fn, "data", data);
    if (!st && targets) st = check_rows(fn, "targets", targets);
    if (st) return st;
    lg_shape ds_shape = lg_tensor_shape(data);
    if (ds_shape.rank == LG_MAX_RANK)
        return lg_fail(LG_ERR_SHAPE, "%s: data %s has rank %d: a batch of its windows would need rank %d > %d", fn,
                       lg_shape_cstr(ds_shape), LG_MAX_RANK, LG_MAX_RANK + 1, LG_MAX_RANK);
    int64_t rows = ds_shape.dims[0], t_rows = targets ? lg_tensor_shape(targets).dims[0] : 0;
    if (o.delay < 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: delay %lld: must be >= 0", fn, (long long)o.delay);
    if (o.delay > 0 && !targets)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: delay %lld without targets: delay shifts the targets", fn,
                       (long long)o.delay);
    if (o.delay > 0 && (o.delay >= rows || o.delay >= t_rows))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: delay %lld leaves no rows: data has %lld, targets %lld", fn,
                       (long long)o.delay, (long long)rows, (long long)t_rows);
    int64_t n = rows - o.delay; /* data[:T - delay] */
    t_rows -= o.delay;          /* targets[delay:] */
    if (o.sequence_length < 1)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: sequence_length %lld: must be >= 1", fn,
                       (long long)o.sequence_length);
    if (o.sequence_stride < 1 || o.sequence_stride >= n)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: sequence_stride %lld: must lie in [1, %lld) for %lld rows", fn,
                       (long long)o.sequence_stride, (long long)n, (long long)n);
    if (o.sampling_rate < 1 || o.sampling_rate >= n)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: sampling_rate %lld: must lie in [1, %lld) for %lld rows", fn,
                       (long long)o.sampling_rate, (long long)n, (long long)n);
    if (o.start_index < 0 || o.start_index >= n)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: start_index %lld: must lie in [0, %lld) for %lld rows", fn,
                       (long long)o.start_index, (long long)n, (long long)n);
    int64_t start = o.start_index, end = o.end_index == -1 ? n : o.end_index;
    if (end <= start || end > n)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: end_index %lld: must be -1 or lie in (start_index %lld, %lld]", fn,
                       (long long)o.end_index, (long long)start, (long long)n);
    /* A window spans (sequence_length - 1) * sampling_rate + 1 rows; compare
     * without forming the product, which may overflow. */
    if (o.sequence_length - 1 > (end - start - 1) / o.sampling_rate)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "%s: sequence_length %lld at sampling_rate %lld spans more than the %lld rows in "
                       "[start_index %lld, end_index %lld)",
                       fn, (long long)o.sequence_length, (long long)o.sampling_rate, (long long)(end - start),
                       (long long)start, (long long)end);
    int64_t num_seqs = end - start - (o.sequence_length - 1) * o.sampling_rate;
    if (targets && t_rows < num_seqs) num_seqs = t_rows;
    int64_t count = (num_seqs + o.sequence_stride - 1) / o.sequence_stride;
    int64_t last = (count - 1) * o.sequence_stride; /* the last window's p */
    if (targets && start + last >= t_rows)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "%s: targets have %lld rows after delay %lld; the window at row %lld needs target row %lld", fn,
                       (long long)t_rows, (long long)o.delay, (long long)(start + last), (long long)(start + last));
    st = check_opts(fn, o.batch, count);
    if (st) return st;
    lg_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    *ds = (lg_dataset){
        .opts = o.batch, .n = count, .window = o.sequence_length, .stride = o.sequence_stride, .rate = o.sampling_rate};
    st = rows_copy(data, start, last + (o.sequence_length - 1) * o.sampling_rate + 1, &ds->x);
    if (!st && targets) st = rows_copy(targets, o.delay + start, last + 1, &ds->y);
    if (st) {
        lg_dataset_free(ds);
        return st;
    }
    return finish(ds, fn, out);
}
