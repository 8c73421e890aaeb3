/*
 * idx.c — the IDX format (LeCun's MNIST files), read through zlib so that
 * gzipped and plain files take the same path.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "graph/datafiles.h"
#include "graph/internal.h"
#include "io/file.h"

/* Type byte, element size and name; one row per IDX type. */
static const struct {
    unsigned char code;
    int size;
    const char *name;
    bool is_float;
} idx_types[] = {
    {0x08, 1, "ubyte", false}, {0x09, 1, "sbyte", false}, {0x0B, 2, "i16", false},
    {0x0C, 4, "i32", false},   {0x0D, 4, "f32", true},    {0x0E, 8, "f64", true},
};

lg_idx_opts lg_idx_opts_default(void) { return (lg_idx_opts){.dtype = LG_F32, .scale = false}; }

/* The error zlib recorded on f: a file error or a broken gzip stream. */
static lg_status gz_fail(gzFile f, const char *path, const char *what)
{
    int err = Z_OK;
    const char *msg = gzerror(f, &err);
    if (err == Z_ERRNO) return lg_fail(LG_ERR_IO, "lg_idx_read: %s: %s: %s", path, what, strerror(errno));
    /* zlib's message starts with "<fd:N>: " (the file came through gzdopen), which ours names by path */
    const char *after = strncmp(msg, "<fd:", 4) == 0 ? strstr(msg, ">: ") : NULL;
    if (after) msg = after + 3;
    return lg_fail(LG_ERR_IO, "lg_idx_read: %s: %s: truncated or corrupt gzip stream (zlib: %s)", path, what, msg);
}

static bool gz_failed(gzFile f)
{
    int err = Z_OK;
    gzerror(f, &err);
    return err != Z_OK;
}

/* Read up to n bytes; *got is how many came (fewer at the end of the data).
 * Fails only on a zlib or file error. */
static lg_status gz_read(gzFile f, const char *path, const char *what, unsigned char *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < (1u << 30) ? n - *got : (1u << 30);
        int r = gzread(f, buf + *got, (unsigned)want);
        /* zlib may report a broken stream only once the data before the
         * break has been returned */
        if (r < 0 || (r == 0 && gz_failed(f))) return gz_fail(f, path, what);
        if (r == 0) break;
        *got += (size_t)r;
    }
    return LG_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The big-endian element of the given type at p, as a double. */
static double element(const unsigned char *p, int code)
{
    switch (code) {
    case 0x08: return p[0];
    case 0x09: return (int8_t)p[0];
    case 0x0B: return (int16_t)(uint16_t)(p[0] << 8 | p[1]);
    case 0x0C: return (int32_t)be32(p);
    case 0x0D: {
        uint32_t u = be32(p);
        float v;
        memcpy(&v, &u, sizeof v);
        return v;
    }
    default: {
        uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
        double v;
        memcpy(&v, &u, sizeof v);
        return v;
    }
    }
}

/* The header: *type, the row of idx_types, and the shape. */
static lg_status read_header(gzFile f, const char *path, int *type, lg_shape *shape)
{
    unsigned char magic[4], dims[4 * LG_MAX_RANK];
    size_t got;
    lg_status st = gz_read(f, path, "reading the magic", magic, 4, &got);
    if (st) return st;
    if (got < 4)
        return lg_fail(LG_ERR_IO, "lg_idx_read: %s: header ends after %zu bytes: the magic needs 4", path, got);
    if (magic[0] || magic[1])
        return lg_fail(LG_ERR_IO,
                       "lg_idx_read: %s: bad magic 0x%08x: IDX starts with two zero bytes, a type byte and the rank",
                       path, (unsigned)be32(magic));
    *type = -1;
    for (int i = 0; i < (int)LG_ARRAY_LEN(idx_types); i++)
        if (idx_types[i].code == magic[2]) *type = i;
    if (*type < 0)
        return lg_fail(LG_ERR_IO,
                       "lg_idx_read: %s: unknown type byte 0x%02x in magic 0x%08x (IDX types: 0x08 ubyte, 0x09 sbyte, "
                       "0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)",
                       path, magic[2], (unsigned)be32(magic));
    int rank = magic[3];
    if (rank < 1 || rank > LG_MAX_RANK)
        return lg_fail(LG_ERR_IO, "lg_idx_read: %s: rank %d in magic 0x%08x: loopgrad reads ranks 1..%d", path, rank,
                       (unsigned)be32(magic), LG_MAX_RANK);
    st = gz_read(f, path, "reading the dims", dims, 4 * (size_t)rank, &got);
    if (st) return st;
    if (got < 4 * (size_t)rank)
        return lg_fail(LG_ERR_IO, "lg_idx_read: %s: header ends after %zu bytes: rank %d needs %d", path, 4 + got, rank,
                       4 + 4 * rank);
    shape->rank = rank;
    for (int i = 0; i < rank; i++) shape->dims[i] = be32(dims + 4 * i);
    return LG_OK;
}

/* Bytes of data the shape needs, or -1 when the product of its nonzero
 * dims and the element size overflows: the rule is the same wherever a zero
 * dim stands, so [0, 2^32-1, 2^32-1] and [2^32-1, 2^32-1, 0] are both
 * refused, and [0, 60000] is an empty tensor. */
static int64_t data_bytes(lg_shape s, int size)
{
    int64_t n = size;
    bool empty = false;
    for (int i = 0; i < s.rank; i++) {
        if (s.dims[i] == 0) empty = true;
        else if (__builtin_mul_overflow(n, s.dims[i], &n)) return -1;
    }
    if ((uint64_t)n > SIZE_MAX) return -1;
    return empty ? 0 : n;
}

/* All the data the header announces, read as it arrives (the buffer grows
 * with it), then a check that nothing follows. */
static lg_status read_data(gzFile f, const char *path, lg_shape shape, int64_t total, unsigned char **out)
{
    size_t cap = total < (1 << 20) ? (size_t)total : (1 << 20), have = 0;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf) return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_idx_read: %s: out of memory", path);
    lg_status st = LG_OK;
    for (;;) {
        size_t got;
        st = gz_read(f, path, "reading the data", buf + have, cap - have, &got);
        have += got;
        if (st || have < cap || cap == (size_t)total) break;
        size_t next = cap > (size_t)total / 2 ? (size_t)total : 2 * cap;
        unsigned char *grown = realloc(buf, next);
        if (!grown) {
            st = lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_idx_read: %s: out of memory for %zu bytes of data", path, next);
            break;
        }
        buf = grown;
        cap = next;
    }
    if (!st && have < (size_t)total)
        st = lg_fail(LG_ERR_IO, "lg_idx_read: %s: dims %s need %lld bytes of data, the file has %zu", path,
                     lg_shape_cstr(shape), (long long)total, have);
    if (!st) {
        /* reading past the end also makes zlib check the gzip trailer */
        unsigned char extra;
        size_t got;
        st = gz_read(f, path, "reading the data", &extra, 1, &got);
        if (!st && got)
            st = lg_fail(LG_ERR_IO, "lg_idx_read: %s: dims %s need %lld bytes of data, the file has more", path,
                         lg_shape_cstr(shape), (long long)total);
    }
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    return LG_OK;
}

static lg_status check_opts(const char *path, lg_idx_opts o)
{
    if ((int)o.dtype < 0 || o.dtype >= LG_DTYPE_COUNT)
        return lg_fail(LG_ERR_DTYPE, "lg_idx_read: %s: dtype %d is not an lg_dtype", path, (int)o.dtype);
    if (o.scale && o.dtype == LG_I32)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_idx_read: %s: scale to [0, 1] needs a float dtype, not i32", path);
    return LG_OK;
}

lg_status lg_idx_read(const char *path, lg_idx_opts o, lg_tensor **out)
{
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_idx_read: out is NULL");
    *out = NULL;
    if (!path) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_idx_read: path is NULL");
    lg_status st = check_opts(path, o);
    if (st) return st;
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "lg_idx_read: %s", path);
    int fd;
    struct stat fst;
    st = lg_open_regular(path, what, &fd, &fst);
    if (st) return st;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_idx_read: %s: out of memory", path);
    }
    int type = -1;
    lg_shape shape = {.rank = 0};
    st = read_header(f, path, &type, &shape);
    int size = type >= 0 ? idx_types[type].size : 0;
    if (!st && o.scale && idx_types[type].code != 0x08)
        st = lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_idx_read: %s: scale to [0, 1] is for ubyte data; the file holds %s",
                     path, idx_types[type].name);
    if (!st && o.dtype == LG_I32 && idx_types[type].is_float)
        st = lg_fail(LG_ERR_DTYPE, "lg_idx_read: %s: i32 asked for %s data; read it as f32 or f64", path,
                     idx_types[type].name);
    int64_t total = st ? 0 : data_bytes(shape, size);
    if (!st && total < 0)
        st = lg_fail(LG_ERR_IO, "lg_idx_read: %s: dims %s: the data size overflows (%d-byte %s elements)", path,
                     lg_shape_cstr(shape), size, idx_types[type].name);
    unsigned char *raw = NULL;
    if (!st) st = read_data(f, path, shape, total, &raw);
    gzclose(f);
    if (!st) st = lg_tensor_new(o.dtype, shape, out);
    if (!st) {
        int64_t n = total / size;
        double div = o.scale ? 255.0 : 1.0;
        for (int64_t i = 0; i < n; i++) lg_tensor_set(*out, i, element(raw + i * size, idx_types[type].code) / div);
    }
    free(raw);
    return st;
}
