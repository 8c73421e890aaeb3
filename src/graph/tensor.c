/* tensor.c — dense host tensors and shapes. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "graph/internal.h"

struct lg_tensor {
    lg_dtype dtype;
    lg_shape shape;
    int64_t numel;
    void *data;
    bool borrowed; /* a view: data belongs to someone else */
    struct lg_mirror *mirror; /* the block data lives in, with a device copy (mirror.h); NULL: none */
};

lg_shape lg_shape_of(int rank, ...)
{
    lg_shape s = {.rank = rank};
    if (rank < 0 || rank > LG_MAX_RANK) {
        s.rank = -1;
        return s;
    }
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++) s.dims[i] = va_arg(ap, int);
    va_end(ap);
    return s;
}

/* The size rule (tensor.h): the product of the nonzero dims must fit int64,
 * so where a zero dim stands does not matter. Returns the element count, or
 * -1. Unknown (-1) dims count as 1 when unknown_as_one, else give -1. */
static int64_t checked_numel(lg_shape s, bool unknown_as_one)
{
    if (s.rank < 0 || s.rank > LG_MAX_RANK) return -1;
    int64_t n = 1;
    bool empty = false;
    for (int i = 0; i < s.rank; i++) {
        int64_t d = s.dims[i];
        if (d == -1 && unknown_as_one) continue;
        if (d < 0) return -1;
        if (d == 0) empty = true;
        else if (__builtin_mul_overflow(n, d, &n)) return -1;
    }
    return empty ? 0 : n;
}

int64_t lg_shape_numel(lg_shape s) { return checked_numel(s, false); }

static bool bytes_fit(lg_shape s, lg_dtype t, bool unknown_as_one, size_t *bytes)
{
    int64_t n = checked_numel(s, unknown_as_one), b;
    size_t esize = lg_dtype_size(t);
    if (n < 0 || esize == 0 || __builtin_mul_overflow(n, (int64_t)esize, &b) || (uint64_t)b > LG_MAX_BYTES)
        return false;
    if (bytes) *bytes = (size_t)b;
    return true;
}

bool lg_shape_bytes(lg_shape s, lg_dtype t, size_t *bytes) { return bytes_fit(s, t, false, bytes); }

bool lg_port_fits(const lg_port *p) { return bytes_fit(p->shape, p->dtype, true, NULL); }

bool lg_shape_equal(lg_shape a, lg_shape b)
{
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank && i < LG_MAX_RANK; i++)
        if (a.dims[i] != b.dims[i]) return false;
    return true;
}

char *lg_shape_str(lg_shape s, char *buf, size_t size)
{
    if (!buf || size == 0) return buf;
    if (s.rank < 0 || s.rank > LG_MAX_RANK) {
        snprintf(buf, size, "[invalid rank %d]", s.rank);
        return buf;
    }
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s.rank && k < size; i++) {
        if (s.dims[i] < 0)
            k += (size_t)snprintf(buf + k, size - k, "%s?", i ? ", " : "");
        else
            k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? ", " : "", (long long)s.dims[i]);
    }
    if (k < size) snprintf(buf + k, size - k, "]");
    return buf;
}

const char *lg_shape_cstr(lg_shape s)
{
    static _Thread_local char ring[8][128]; /* 6 dims of 19 digits fit */
    static _Thread_local int next;
    char *buf = ring[next++ % 8];
    return lg_shape_str(s, buf, sizeof ring[0]);
}

const char *lg_dtype_name(lg_dtype t)
{
    switch (t) {
    case LG_F32: return "f32";
    case LG_F64: return "f64";
    case LG_I32: return "i32";
    default: return "invalid-dtype";
    }
}

size_t lg_dtype_size(lg_dtype t)
{
    switch (t) {
    case LG_F32: return 4;
    case LG_F64: return 8;
    case LG_I32: return 4;
    default: return 0;
    }
}

lg_status lg_tensor_new(lg_dtype dtype, lg_shape shape, lg_tensor **out)
{
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_tensor_new: out is NULL");
    *out = NULL;
    if ((int)dtype < 0 || dtype >= LG_DTYPE_COUNT)
        return lg_fail(LG_ERR_DTYPE, "lg_tensor_new: invalid dtype %d", (int)dtype);
    if (shape.rank < 0 || shape.rank > LG_MAX_RANK)
        return lg_fail(LG_ERR_SHAPE, "lg_tensor_new: rank %d outside 0..%d", shape.rank, LG_MAX_RANK);
    /* named apart from the overflow below: a shape string prints any negative dim as '?' */
    for (int k = 0; k < shape.rank; k++)
        if (shape.dims[k] < 0)
            return lg_fail(LG_ERR_SHAPE, "lg_tensor_new: %s %s: dim %d is %lld; a tensor's dims are known and "
                           ">= 0 (-1, unknown until run time, is for the shapes of lg_input)",
                           lg_dtype_name(dtype), lg_shape_cstr(shape), k, (long long)shape.dims[k]);
    if (!lg_shape_bytes(shape, dtype, NULL))
        return lg_fail(LG_ERR_SHAPE, "lg_tensor_new: %s %s has too many elements (dims that "
                       "multiply past int64, or more than LG_MAX_BYTES (%zu) bytes)",
                       lg_dtype_name(dtype), lg_shape_cstr(shape), LG_MAX_BYTES);
    int64_t numel = lg_shape_numel(shape);
    lg_tensor *t = calloc(1, sizeof *t);
    if (!t) return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_tensor_new: out of memory");
    t->dtype = dtype;
    t->shape = shape;
    t->numel = numel;
    if (numel > 0) {
        t->data = calloc((size_t)numel, lg_dtype_size(dtype));
        if (!t->data) {
            free(t);
            return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_tensor_new: out of memory for shape %s", lg_shape_cstr(shape));
        }
    }
    *out = t;
    return LG_OK;
}

lg_status lg_tensor_clone(const lg_tensor *src, lg_tensor **out)
{
    if (!src) {
        if (out) *out = NULL;
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_tensor_clone: src is NULL");
    }
    lg_status s = lg_tensor_new(src->dtype, src->shape, out);
    if (s == LG_OK && src->numel > 0) memcpy((*out)->data, src->data, lg_tensor_bytes(src));
    return s;
}

void lg_tensor_free(lg_tensor *t)
{
    if (!t) return;
    if (!t->borrowed) free(t->data);
    free(t);
}

lg_tensor *lg_tensor_view(lg_dtype dtype, lg_shape shape, void *data)
{
    lg_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    *t = (lg_tensor){dtype, shape, lg_shape_numel(shape), data, true, NULL};
    return t;
}

void lg_tensor_borrow(lg_tensor *t, void *data)
{
    if (!t->borrowed) free(t->data);
    t->data = data;
    t->borrowed = true;
    t->mirror = NULL;
}

struct lg_mirror *lg_tensor_mirror(const lg_tensor *t) { return t ? t->mirror : NULL; }
void lg_tensor_set_mirror(lg_tensor *t, struct lg_mirror *m) { t->mirror = m; }

lg_dtype lg_tensor_dtype(const lg_tensor *t) { return t ? t->dtype : LG_DTYPE_COUNT; }
lg_shape lg_tensor_shape(const lg_tensor *t) { return t ? t->shape : (lg_shape){.rank = -1}; }
int64_t lg_tensor_numel(const lg_tensor *t) { return t ? t->numel : 0; }
size_t lg_tensor_bytes(const lg_tensor *t) { return t ? (size_t)t->numel * lg_dtype_size(t->dtype) : 0; }
void *lg_tensor_data(lg_tensor *t) { return t ? t->data : NULL; }
const void *lg_tensor_cdata(const lg_tensor *t) { return t ? t->data : NULL; }

lg_status lg_tensor_fill(lg_tensor *t, double value)
{
    if (!t) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_tensor_fill: tensor is NULL");
    for (int64_t i = 0; i < t->numel; i++) lg_tensor_set(t, i, value);
    return LG_OK;
}

lg_status lg_tensor_copy_in(lg_tensor *t, const void *src, size_t bytes)
{
    if (!t || (!src && bytes)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_tensor_copy_in: NULL argument");
    if (bytes != lg_tensor_bytes(t))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_tensor_copy_in: %zu bytes given, tensor %s %s holds %zu", bytes,
                       lg_dtype_name(t->dtype), lg_shape_cstr(t->shape), lg_tensor_bytes(t));
    if (bytes) memcpy(t->data, src, bytes);
    return LG_OK;
}

lg_status lg_tensor_copy_out(const lg_tensor *t, void *dst, size_t bytes)
{
    if (!t || (!dst && bytes)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_tensor_copy_out: NULL argument");
    if (bytes != lg_tensor_bytes(t))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_tensor_copy_out: %zu bytes asked, tensor %s %s holds %zu", bytes,
                       lg_dtype_name(t->dtype), lg_shape_cstr(t->shape), lg_tensor_bytes(t));
    if (bytes) memcpy(dst, t->data, bytes);
    return LG_OK;
}

lg_status lg_tensor_copy(lg_tensor *dst, const lg_tensor *src)
{
    if (!dst || !src) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_tensor_copy: NULL tensor");
    if (dst->dtype != src->dtype)
        return lg_fail(LG_ERR_DTYPE, "lg_tensor_copy: dtype %s into %s", lg_dtype_name(src->dtype),
                       lg_dtype_name(dst->dtype));
    if (!lg_shape_equal(dst->shape, src->shape))
        return lg_fail(LG_ERR_SHAPE, "lg_tensor_copy: shape %s into %s", lg_shape_cstr(src->shape),
                       lg_shape_cstr(dst->shape));
    if (src->numel) memcpy(dst->data, src->data, lg_tensor_bytes(src));
    return LG_OK;
}

double lg_tensor_get(const lg_tensor *t, int64_t i)
{
    if (!t || i < 0 || i >= t->numel) return NAN;
    switch (t->dtype) {
    case LG_F32: return ((const float *)t->data)[i];
    case LG_F64: return ((const double *)t->data)[i];
    case LG_I32: return ((const int32_t *)t->data)[i];
    default: return NAN;
    }
}

void lg_tensor_set(lg_tensor *t, int64_t i, double v)
{
    if (!t || i < 0 || i >= t->numel) return;
    switch (t->dtype) {
    case LG_F32: ((float *)t->data)[i] = (float)v; break;
    case LG_F64: ((double *)t->data)[i] = v; break;
    case LG_I32: ((int32_t *)t->data)[i] = lg_i32_saturate(v); break;
    default: break;
    }
}
