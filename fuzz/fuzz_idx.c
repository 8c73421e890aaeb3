/*
 * fuzz_idx.c — a libFuzzer target for the IDX reader (datafiles.h). The
 * first input byte picks the options, the rest is the file:
 *
 *     bit 0   gzip the rest before reading it (deflated here, so the
 *             fuzzer's mutations reach the IDX parser behind zlib, not
 *             only zlib's checks); a gzip seed read plainly tests those
 *     bits 1-2  dtype: f32, f64, i32, or 3 (not an lg_dtype)
 *     bit 3   scale
 *
 * lg_idx_read must fail with a message and no tensor, or give a tensor of
 * the requested dtype, shaped as the header says, whose values come from
 * the data: for plain files the size is the header plus exactly the data;
 * scaled values lie in [0, 1]. fuzz/run fuzzes it with clang; fuzz/replay.c
 * runs fuzz/corpus/idx/ in the test suite.
 */
#define _GNU_SOURCE /* memfd_create, in fuzz.h */
#include <math.h>
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "graph/datafiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lg_fuzz_one(data, size);
    return 0;
}

/* gzip (RFC 1952) of n bytes at p, malloc'd into *out. */
static bool gzip(const uint8_t *p, size_t n, unsigned char **out, size_t *out_n)
{
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
    size_t cap = deflateBound(&z, (uLong)n);
    *out = malloc(cap);
    z.next_in = (Bytef *)p, z.avail_in = (uInt)n;
    z.next_out = *out, z.avail_out = (uInt)cap;
    bool ok = *out && deflate(&z, Z_FINISH) == Z_STREAM_END;
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    if (!ok) free(*out);
    return ok;
}

static const int type_size[16] = {[0x08] = 1, [0x09] = 1, [0x0B] = 2, [0x0C] = 4, [0x0D] = 4, [0x0E] = 8};

lg_status lg_fuzz_one(const uint8_t *data, size_t size)
{
    if (size < 1) return LG_ERR_INVALID_ARGUMENT;
    lg_idx_opts o = lg_idx_opts_default();
    o.dtype = (lg_dtype)((data[0] >> 1) & 3);
    o.scale = data[0] & 8;
    bool zip = data[0] & 1;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    unsigned char *packed = NULL;
    size_t packed_n = 0;
    if (zip && !gzip(body, n, &packed, &packed_n)) return LG_ERR_OUT_OF_MEMORY;
    char path[64];
    int fd = zip ? lg_fuzz_file(packed, packed_n, path) : lg_fuzz_file(body, n, path);
    free(packed);
    if (fd < 0) return LG_ERR_IO;
    lg_tensor *t = (lg_tensor *)&fd; /* must become NULL on failure */
    lg_status s = lg_idx_read(path, o, &t);
    close(fd);
    if (s != LG_OK) {
        REQUIRE(t == NULL && lg_last_error()[0] != '\0');
        return s;
    }
    REQUIRE(t != NULL && lg_tensor_dtype(t) == o.dtype);
    lg_shape sh = lg_tensor_shape(t);
    REQUIRE(sh.rank >= 1 && sh.rank <= LG_MAX_RANK);
    int64_t numel = lg_tensor_numel(t);
    /* body is the IDX file itself unless it is a gzip stream read as is */
    if (zip || n < 2 || body[0] != 0x1f || body[1] != 0x8b) {
        REQUIRE(n >= 4 && sh.rank == body[3] && body[2] < 16 && type_size[body[2]] > 0);
        int64_t product = 1;
        for (int i = 0; i < sh.rank; i++) {
            const uint8_t *d = body + 4 + 4 * i;
            REQUIRE(sh.dims[i] == ((int64_t)d[0] << 24 | (int64_t)d[1] << 16 | (int64_t)d[2] << 8 | d[3]));
            product *= sh.dims[i];
        }
        REQUIRE(product == numel);
        REQUIRE((size_t)(4 + 4 * sh.rank) + (size_t)numel * (size_t)type_size[body[2]] == n);
    }
    for (int64_t i = 0; i < numel; i++) {
        double v = lg_tensor_get(t, i);
        if (o.scale) REQUIRE(v >= 0 && v <= 1);
        if (o.dtype == LG_I32) REQUIRE(v == trunc(v));
    }
    lg_tensor_free(t);
    return LG_OK;
}
