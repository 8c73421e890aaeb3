/* timeseries.c — standardising a series with its training rows' statistics. */
#include <math.h>

#include "graph/internal.h"
#include "graph/preprocess.h"

lg_status lg_standardize(lg_tensor *t, int64_t n_train, lg_tensor **mean, lg_tensor **std)
{
    const char *fn = "lg_standardize";
    if (mean) *mean = NULL;
    if (std) *std = NULL;
    if (!t) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: tensor is NULL", fn);
    lg_dtype dt = lg_tensor_dtype(t);
    lg_shape s = lg_tensor_shape(t);
    if (dt != LG_F32 && dt != LG_F64)
        return lg_fail(LG_ERR_DTYPE, "%s: tensor %s is %s: needs f32 or f64", fn, lg_shape_cstr(s), lg_dtype_name(dt));
    if (s.rank < 1) return lg_fail(LG_ERR_SHAPE, "%s: tensor has rank 0: needs [T, ...]", fn);
    int64_t rows = s.dims[0];
    if (n_train < 1 || n_train > rows)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: n_train %lld: must lie in [1, %lld] for tensor %s", fn,
                       (long long)n_train, (long long)rows, lg_shape_cstr(s));
    lg_shape row = {.rank = s.rank - 1};
    for (int i = 1; i < s.rank; i++) row.dims[i - 1] = s.dims[i];
    int64_t cols = lg_shape_numel(row);
    lg_tensor *m = NULL, *d = NULL;
    lg_status st = lg_tensor_new(dt, row, &m);
    if (!st) st = lg_tensor_new(dt, row, &d);
    /* two passes in double: the mean, then the squared deviations from it */
    for (int64_t c = 0; !st && c < cols; c++) {
        double sum = 0, sq = 0;
        for (int64_t r = 0; r < n_train; r++) sum += lg_tensor_get(t, r * cols + c);
        double mu = sum / (double)n_train;
        for (int64_t r = 0; r < n_train; r++) {
            double dev = lg_tensor_get(t, r * cols + c) - mu;
            sq += dev * dev;
        }
        double sd = sqrt(sq / (double)n_train);
        if (!(sd > 0 && isfinite(sd))) /* constant, or NaN/inf in the data */
            st = lg_fail(LG_ERR_INVALID_ARGUMENT,
                         "%s: column %lld of tensor %s has std %g over the first %lld rows: "
                         "standardising needs a positive finite std",
                         fn, (long long)c, lg_shape_cstr(s), sd, (long long)n_train);
        lg_tensor_set(m, c, mu);
        lg_tensor_set(d, c, sd);
    }
    if (st) {
        lg_tensor_free(m);
        lg_tensor_free(d);
        return st;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t i = r * cols + c;
            lg_tensor_set(t, i, (lg_tensor_get(t, i) - lg_tensor_get(m, c)) / lg_tensor_get(d, c));
        }
    if (mean)
        *mean = m;
    else
        lg_tensor_free(m);
    if (std)
        *std = d;
    else
        lg_tensor_free(d);
    return LG_OK;
}
