/*
 * test_data.c — data loading through its public API (datafiles.h,
 * dataset.h, preprocess.h, synthetic.h): IDX files (plain and gzipped,
 * every type, every broken-file error, and the real Fashion-MNIST t10k
 * files when installed), CSV files, Keras's timeseries windows worked out
 * by hand from keras/src/utils/timeseries_dataset_utils.py, batching and
 * shuffling, the train/validation split, standardisation, pad_sequences,
 * the synthetic tasks and the committed El Nino series. Broken files are
 * written to a fresh temporary directory per test.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "graph/datafiles.h"
#include "graph/dataset.h"
#include "graph/loopgrad.h"
#include "graph/preprocess.h"
#include "graph/synthetic.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define ELNINO_CSV LG_TEST_DATA_DIR "/../../data/elnino.csv"

/* The call fails with code and a message containing sub. */
#define ASSERT_FAILS(call, code, sub)                                                                                  \
    do {                                                                                                               \
        lg_status s_ = (call);                                                                                         \
        ck_assert_msg(s_ == (code), "%s: got %s (%s)", #call, lg_status_name(s_), lg_last_error());                    \
        ck_assert_msg(strstr(lg_last_error(), (sub)) != NULL, "message \"%s\" lacks \"%s\"", lg_last_error(), (sub));  \
    } while (0)

#define ASSERT_OK(call)                                                                                                \
    do {                                                                                                               \
        lg_status s_ = (call);                                                                                         \
        ck_assert_msg(s_ == LG_OK, "%s: %s: %s", #call, lg_status_name(s_), lg_last_error());                          \
    } while (0)

/* ---- temporary files ----------------------------------------------------------- */

static char tmpdir[64];
static char *tmpfiles[32];
static int n_tmpfiles;

static void tmp_setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lg_test_data_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    n_tmpfiles = 0;
}

static void tmp_teardown(void)
{
    for (int i = 0; i < n_tmpfiles; i++) {
        unlink(tmpfiles[i]);
        free(tmpfiles[i]);
    }
    rmdir(tmpdir);
}

/* Write bytes to tmpdir/name; returns the path (freed at teardown). */
static const char *write_file(const char *name, const void *bytes, size_t n)
{
    ck_assert_int_lt(n_tmpfiles, (int)(sizeof tmpfiles / sizeof tmpfiles[0]));
    char *path = malloc(strlen(tmpdir) + strlen(name) + 2);
    ck_assert_ptr_nonnull(path);
    sprintf(path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    tmpfiles[n_tmpfiles++] = path;
    return path;
}

static const char *write_text(const char *name, const char *text) { return write_file(name, text, strlen(text)); }

/* A named pipe tmpdir/name with no writer (removed at teardown). Reading it
 * would block forever, so the caller arms an alarm. */
static const char *make_fifo(const char *name)
{
    ck_assert_int_lt(n_tmpfiles, (int)(sizeof tmpfiles / sizeof tmpfiles[0]));
    char *path = malloc(strlen(tmpdir) + strlen(name) + 2);
    ck_assert_ptr_nonnull(path);
    sprintf(path, "%s/%s", tmpdir, name);
    ck_assert_msg(mkfifo(path, 0600) == 0, "mkfifo %s: %s", path, strerror(errno));
    tmpfiles[n_tmpfiles++] = path;
    return path;
}

/* getline as the CSV reader sees it: the C library's, unless a test sets
 * getline_fail_errno, when call number getline_fail_at (from 1) fails with
 * that errno as glibc's does when the line does not fit in memory (ENOMEM)
 * or the read fails (EIO). This definition takes the place of the C
 * library's for the whole program, the loopgrad library included. */
static int getline_fail_errno, getline_fail_at, getline_calls;

ssize_t getline(char **restrict line, size_t *restrict cap, FILE *restrict f)
{
    if (getline_fail_errno && ++getline_calls == getline_fail_at) {
        errno = getline_fail_errno;
        return -1;
    }
    return getdelim(line, cap, '\n', f);
}

/* ---- IDX and gzip bytes ------------------------------------------------------------ */

typedef struct bytes {
    unsigned char b[1024];
    size_t n;
} bytes;

static void put(bytes *o, const void *p, size_t n)
{
    ck_assert_uint_le(o->n + n, sizeof o->b);
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put_be32(bytes *o, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    put(o, b, 4);
}

/* An IDX file: magic 0x0000 type rank, the dims, then data as given (already big-endian). */
static bytes idx_file(int type, int rank, const uint32_t *dims, const void *data, size_t n)
{
    bytes o = {.n = 0};
    put_be32(&o, (uint32_t)type << 8 | (uint32_t)rank);
    for (int i = 0; i < rank; i++) put_be32(&o, dims[i]);
    put(&o, data, n);
    return o;
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

static void put_le32(bytes *o, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(o, b, 4);
}

/* A gzip member (RFC 1952) holding raw in one stored deflate block (RFC
 * 1951, BTYPE 00): real gzip that any reader must inflate, written without
 * zlib. */
static bytes gzip_stored(const bytes *raw)
{
    bytes o = {.n = 0};
    const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    put(&o, head, sizeof head);
    uint16_t len = (uint16_t)raw->n, nlen = (uint16_t)~len;
    const unsigned char block[5] = {1, (unsigned char)len, (unsigned char)(len >> 8), (unsigned char)nlen,
                                    (unsigned char)(nlen >> 8)};
    put(&o, block, sizeof block);
    put(&o, raw->b, raw->n);
    put_le32(&o, crc32_of(raw->b, raw->n));
    put_le32(&o, (uint32_t)raw->n);
    return o;
}

static const unsigned char UBYTES[6] = {0, 1, 2, 128, 254, 255};
static const uint32_t DIMS_2x3[2] = {2, 3};

static lg_tensor *idx_read_ok(const char *path, lg_dtype dt, bool scale)
{
    lg_idx_opts o = lg_idx_opts_default();
    o.dtype = dt;
    o.scale = scale;
    lg_tensor *t = NULL;
    ASSERT_OK(lg_idx_read(path, o, &t));
    return t;
}

static void assert_shape(const lg_tensor *t, lg_shape want)
{
    char a[64], b[64];
    ck_assert_msg(lg_shape_equal(lg_tensor_shape(t), want), "shape %s, expected %s",
                  lg_shape_str(lg_tensor_shape(t), a, sizeof a), lg_shape_str(want, b, sizeof b));
}

/* ---- IDX ------------------------------------------------------------------------------- */

START_TEST(test_idx_ubyte_plain)
{
    lg_idx_opts d = lg_idx_opts_default();
    ck_assert_int_eq(d.dtype, LG_F32);
    ck_assert(!d.scale);
    bytes f = idx_file(0x08, 2, DIMS_2x3, UBYTES, 6);
    const char *path = write_file("u.idx", f.b, f.n);
    const lg_dtype dts[] = {LG_F32, LG_F64, LG_I32};
    for (int k = 0; k < 3; k++) {
        lg_tensor *t = idx_read_ok(path, dts[k], false);
        ck_assert_int_eq(lg_tensor_dtype(t), dts[k]);
        assert_shape(t, lg_shape_of(2, 2, 3));
        for (int i = 0; i < 6; i++) ck_assert_double_eq(lg_tensor_get(t, i), UBYTES[i]);
        lg_tensor_free(t);
    }
    lg_tensor *s = idx_read_ok(path, LG_F32, true);
    for (int i = 0; i < 6; i++) ck_assert_double_eq(lg_tensor_get(s, i), (float)(UBYTES[i] / 255.0));
    ck_assert_double_eq(lg_tensor_get(s, 5), 1.0);
    lg_tensor_free(s);
    s = idx_read_ok(path, LG_F64, true);
    ck_assert_double_eq(lg_tensor_get(s, 3), 128 / 255.0);
    lg_tensor_free(s);
}
END_TEST

START_TEST(test_idx_gzip)
{
    bytes raw = idx_file(0x08, 2, DIMS_2x3, UBYTES, 6);
    bytes gz = gzip_stored(&raw);
    lg_tensor *t = idx_read_ok(write_file("u.idx.gz", gz.b, gz.n), LG_F64, false);
    assert_shape(t, lg_shape_of(2, 2, 3));
    for (int i = 0; i < 6; i++) ck_assert_double_eq(lg_tensor_get(t, i), UBYTES[i]);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_idx_every_type)
{
    /* big-endian data of each type, with the values it encodes */
    const unsigned char sb[4] = {0x80, 0xFF, 0x00, 0x7F};
    const double sb_v[4] = {-128, -1, 0, 127};
    const unsigned char i16[6] = {0xFE, 0xD4, 0x7F, 0xFF, 0x80, 0x00};
    const double i16_v[3] = {-300, 32767, -32768};
    const unsigned char i32[8] = {0xFF, 0xFE, 0xEE, 0x90, 0x7F, 0xFF, 0xFF, 0xFF};
    const double i32_v[2] = {-70000, 2147483647};
    const unsigned char f32[8] = {0x3F, 0xC0, 0, 0, 0xBE, 0x80, 0, 0};
    const double f32_v[2] = {1.5, -0.25};
    const unsigned char f64[16] = {0x40, 0x0A, 0, 0, 0, 0, 0, 0, 0xC0, 0x59, 0, 0, 0, 0, 0, 0};
    const double f64_v[2] = {3.25, -100};
    const struct {
        int type;
        const unsigned char *data;
        size_t bytes;
        int n;
        const double *v;
        bool integer;
    } rows[] = {{0x09, sb, 4, 4, sb_v, true},
                {0x0B, i16, 6, 3, i16_v, true},
                {0x0C, i32, 8, 2, i32_v, true},
                {0x0D, f32, 8, 2, f32_v, false},
                {0x0E, f64, 16, 2, f64_v, false}};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        uint32_t dim = (uint32_t)rows[r].n;
        bytes f = idx_file(rows[r].type, 1, &dim, rows[r].data, rows[r].bytes);
        const char *path = write_file(r % 2 ? "odd.idx" : "even.idx", f.b, f.n);
        lg_tensor *t = idx_read_ok(path, LG_F64, false);
        assert_shape(t, lg_shape_of(1, rows[r].n));
        for (int i = 0; i < rows[r].n; i++) ck_assert_double_eq(lg_tensor_get(t, i), rows[r].v[i]);
        lg_tensor_free(t);
        if (rows[r].integer) {
            t = idx_read_ok(path, LG_I32, false);
            for (int i = 0; i < rows[r].n; i++) ck_assert_double_eq(lg_tensor_get(t, i), rows[r].v[i]);
            lg_tensor_free(t);
        }
    }
    /* rank 6, the most a tensor has */
    const uint32_t dims6[6] = {1, 2, 1, 1, 1, 3};
    bytes f = idx_file(0x08, 6, dims6, UBYTES, 6);
    lg_tensor *t = idx_read_ok(write_file("r6.idx", f.b, f.n), LG_F32, false);
    assert_shape(t, lg_shape_of(6, 1, 2, 1, 1, 1, 3));
    ck_assert_double_eq(lg_tensor_get(t, 4), 254);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_idx_errors_arguments)
{
    bytes f = idx_file(0x08, 2, DIMS_2x3, UBYTES, 6);
    const char *path = write_file("u.idx", f.b, f.n);
    lg_tensor *t = (lg_tensor *)1;
    lg_idx_opts o = lg_idx_opts_default();
    ASSERT_FAILS(lg_idx_read(path, o, NULL), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    ASSERT_FAILS(lg_idx_read(NULL, o, &t), LG_ERR_INVALID_ARGUMENT, "path is NULL");
    ck_assert_ptr_null(t);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/absent-idx3-ubyte.gz", tmpdir);
    ASSERT_FAILS(lg_idx_read(missing, o, &t), LG_ERR_IO, "absent-idx3-ubyte.gz: cannot open: No such file");
    ASSERT_FAILS(lg_idx_read(tmpdir, o, &t), LG_ERR_IO, "is not a regular file (a directory)");
    o.dtype = (lg_dtype)7;
    ASSERT_FAILS(lg_idx_read(path, o, &t), LG_ERR_DTYPE, "dtype 7");
    o = lg_idx_opts_default();
    o.dtype = LG_I32;
    o.scale = true;
    ASSERT_FAILS(lg_idx_read(path, o, &t), LG_ERR_INVALID_ARGUMENT, "needs a float dtype, not i32");
    /* scale is for ubyte; i32 is not for float data */
    const unsigned char sb[2] = {1, 2};
    uint32_t two = 2;
    bytes fs = idx_file(0x09, 1, &two, sb, 2);
    o = lg_idx_opts_default();
    o.scale = true;
    ASSERT_FAILS(lg_idx_read(write_file("s.idx", fs.b, fs.n), o, &t), LG_ERR_INVALID_ARGUMENT,
                 "s.idx: scale to [0, 1] is for ubyte data; the file holds sbyte");
    const unsigned char f32[8] = {0x3F, 0xC0, 0, 0, 0, 0, 0, 0};
    bytes ff = idx_file(0x0D, 1, &two, f32, 8);
    o = lg_idx_opts_default();
    o.dtype = LG_I32;
    ASSERT_FAILS(lg_idx_read(write_file("f.idx", ff.b, ff.n), o, &t), LG_ERR_DTYPE, "f.idx: i32 asked for f32 data");
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_idx_errors_gzip)
{
    bytes raw = idx_file(0x08, 2, DIMS_2x3, UBYTES, 6);
    bytes gz = gzip_stored(&raw);
    lg_tensor *t = NULL;
    lg_idx_opts o = lg_idx_opts_default();
    /* cut inside the stored block: zlib sees the stream end early */
    ASSERT_FAILS(lg_idx_read(write_file("cut.gz", gz.b, 10 + 5 + 14), o, &t), LG_ERR_IO,
                 "cut.gz: reading the data: truncated or corrupt gzip stream (zlib: unexpected end of file)");
    /* the whole member but the last trailer byte */
    ASSERT_FAILS(lg_idx_read(write_file("short.gz", gz.b, gz.n - 1), o, &t), LG_ERR_IO, "truncated or corrupt gzip");
    /* a wrong CRC: the data decompresses but fails its check */
    bytes bad = gz;
    bad.b[bad.n - 8] ^= 0x01;
    ASSERT_FAILS(lg_idx_read(write_file("crc.gz", bad.b, bad.n), o, &t), LG_ERR_IO, "incorrect data check");
    /* a deflate block of the reserved type 3 */
    bad = gz;
    bad.b[10] = 0x07;
    ASSERT_FAILS(lg_idx_read(write_file("type.gz", bad.b, bad.n), o, &t), LG_ERR_IO, "invalid block type");
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_idx_errors_header)
{
    lg_tensor *t = NULL;
    lg_idx_opts o = lg_idx_opts_default();
    bytes f = idx_file(0x08, 2, DIMS_2x3, UBYTES, 6);
    f.b[0] = 0x01;
    ASSERT_FAILS(lg_idx_read(write_file("magic.idx", f.b, f.n), o, &t), LG_ERR_IO, "magic.idx: bad magic 0x01000802");
    f = idx_file(0x0A, 2, DIMS_2x3, UBYTES, 6);
    ASSERT_FAILS(lg_idx_read(write_file("type.idx", f.b, f.n), o, &t), LG_ERR_IO, "unknown type byte 0x0a");
    f = idx_file(0x08, 0, NULL, UBYTES, 1);
    ASSERT_FAILS(lg_idx_read(write_file("rank0.idx", f.b, f.n), o, &t), LG_ERR_IO, "rank 0 in magic 0x00000800");
    const uint32_t dims7[7] = {1, 1, 1, 1, 1, 2, 3};
    f = idx_file(0x08, 7, dims7, UBYTES, 6);
    ASSERT_FAILS(lg_idx_read(write_file("rank7.idx", f.b, f.n), o, &t), LG_ERR_IO, "rank 7 in magic 0x00000807");
    ASSERT_FAILS(lg_idx_read(write_file("three.idx", f.b, 3), o, &t), LG_ERR_IO,
                 "three.idx: header ends after 3 bytes: the magic needs 4");
    f = idx_file(0x08, 2, DIMS_2x3, UBYTES, 6);
    ASSERT_FAILS(lg_idx_read(write_file("dims.idx", f.b, 9), o, &t), LG_ERR_IO,
                 "dims.idx: header ends after 9 bytes: rank 2 needs 12");
    ASSERT_FAILS(lg_idx_read(write_file("empty.idx", "", 0), o, &t), LG_ERR_IO, "header ends after 0 bytes");
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_idx_errors_data_length)
{
    lg_tensor *t = NULL;
    lg_idx_opts o = lg_idx_opts_default();
    bytes f = idx_file(0x08, 2, DIMS_2x3, UBYTES, 5);
    ASSERT_FAILS(lg_idx_read(write_file("short.idx", f.b, f.n), o, &t), LG_ERR_IO,
                 "short.idx: dims [2, 3] need 6 bytes of data, the file has 5");
    f = idx_file(0x08, 2, DIMS_2x3, UBYTES, 6);
    put(&f, "x", 1);
    ASSERT_FAILS(lg_idx_read(write_file("long.idx", f.b, f.n), o, &t), LG_ERR_IO,
                 "long.idx: dims [2, 3] need 6 bytes of data, the file has more");
    /* the same through gzip */
    bytes gz = gzip_stored(&f);
    ASSERT_FAILS(lg_idx_read(write_file("long.gz", gz.b, gz.n), o, &t), LG_ERR_IO, "the file has more");
    /* 2^48 bytes claimed, 6 present: fails at the real end without allocating the claim */
    const uint32_t huge[3] = {65536, 65536, 65536};
    f = idx_file(0x08, 3, huge, UBYTES, 6);
    ASSERT_FAILS(lg_idx_read(write_file("huge.idx", f.b, f.n), o, &t), LG_ERR_IO,
                 "dims [65536, 65536, 65536] need 281474976710656 bytes of data, the file has 6");
    /* (2^32 - 1)^3 f64 elements: the size overflows */
    const uint32_t over[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    f = idx_file(0x0E, 3, over, UBYTES, 6);
    ASSERT_FAILS(lg_idx_read(write_file("over.idx", f.b, f.n), o, &t), LG_ERR_IO,
                 "dims [4294967295, 4294967295, 4294967295]: the data size overflows (8-byte f64 elements)");
    const uint32_t over2[2] = {0xFFFFFFFFu, 0x80000000u};
    f = idx_file(0x0E, 2, over2, UBYTES, 6);
    ASSERT_FAILS(lg_idx_read(write_file("over2.idx", f.b, f.n), o, &t), LG_ERR_IO, "the data size overflows");
    ck_assert_ptr_null(t);
}
END_TEST

/* One rule wherever a zero dim stands: the product of the nonzero dims
 * (times the element size) must not overflow. Both orders of an
 * overflowing shape with a zero are refused alike; both orders of a
 * fitting one are empty tensors. */
START_TEST(test_idx_zero_dim_rule)
{
    lg_tensor *t = NULL;
    lg_idx_opts o = lg_idx_opts_default();
    const uint32_t zero_first[4] = {0, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    const uint32_t zero_last[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0};
    bytes f = idx_file(0x08, 4, zero_first, UBYTES, 0);
    ASSERT_FAILS(lg_idx_read(write_file("zf.idx", f.b, f.n), o, &t), LG_ERR_IO,
                 "dims [0, 4294967295, 4294967295, 4294967295]: the data size overflows");
    f = idx_file(0x08, 4, zero_last, UBYTES, 0);
    ASSERT_FAILS(lg_idx_read(write_file("zl.idx", f.b, f.n), o, &t), LG_ERR_IO,
                 "dims [4294967295, 4294967295, 4294967295, 0]: the data size overflows");
    /* 2^62 f64 elements: 2^65 bytes, wherever the zero is */
    const uint32_t bytes_over[3] = {0, 0x80000000u, 0x80000000u};
    f = idx_file(0x0E, 3, bytes_over, UBYTES, 0);
    ASSERT_FAILS(lg_idx_read(write_file("bo.idx", f.b, f.n), o, &t), LG_ERR_IO, "the data size overflows");
    ck_assert_ptr_null(t);
    const uint32_t fits_first[3] = {0, 65536, 65536}, fits_last[3] = {65536, 65536, 0};
    f = idx_file(0x08, 3, fits_first, UBYTES, 0);
    t = idx_read_ok(write_file("ff.idx", f.b, f.n), LG_F32, false);
    assert_shape(t, lg_shape_of(3, 0, 65536, 65536));
    lg_tensor_free(t);
    f = idx_file(0x08, 3, fits_last, UBYTES, 0);
    t = idx_read_ok(write_file("fl.idx", f.b, f.n), LG_F32, false);
    assert_shape(t, lg_shape_of(3, 65536, 65536, 0));
    lg_tensor_free(t);
    /* an empty tensor still has no data after its header */
    f = idx_file(0x08, 3, fits_last, UBYTES, 1);
    ASSERT_FAILS(lg_idx_read(write_file("fx.idx", f.b, f.n), o, &t), LG_ERR_IO, "need 0 bytes of data, the file has more");
}
END_TEST

/* Named pipes, directories and devices are refused before a byte is read:
 * no loader waits for a writer that never comes. */
START_TEST(test_loaders_refuse_non_regular_files)
{
    alarm(20); /* a hang fails the test instead of the suite's timeout */
    const char *fifo = make_fifo("pipe");
    lg_tensor *t = NULL;
    ASSERT_FAILS(lg_idx_read(fifo, lg_idx_opts_default(), &t), LG_ERR_IO, "pipe: is not a regular file (a named pipe)");
    ASSERT_FAILS(lg_csv_read(fifo, lg_csv_opts_default(), &t), LG_ERR_IO, "pipe: is not a regular file (a named pipe)");
    ASSERT_FAILS(lg_idx_read("/dev/null", lg_idx_opts_default(), &t), LG_ERR_IO,
                 "/dev/null: is not a regular file (a character device)");
    ASSERT_FAILS(lg_csv_read("/dev/zero", lg_csv_opts_default(), &t), LG_ERR_IO,
                 "/dev/zero: is not a regular file (a character device)");
    ck_assert_ptr_null(t);
    alarm(0);
}
END_TEST

static bool fashion_present(void)
{
    if (access(FASHION_DIR "/t10k-images-idx3-ubyte.gz", R_OK) == 0 &&
        access(FASHION_DIR "/t10k-labels-idx1-ubyte.gz", R_OK) == 0)
        return true;
    printf("test_fashion_mnist_t10k: SKIPPED: " FASHION_DIR
           "/t10k-*.gz not found; install Debian's dataset-fashion-mnist (scripts/setup does)\n");
    return false;
}

START_TEST(test_fashion_mnist_t10k)
{
    if (!fashion_present()) return;
    lg_idx_opts o = lg_idx_opts_default();
    o.dtype = LG_I32;
    lg_tensor *labels = NULL, *images = NULL;
    ASSERT_OK(lg_idx_read(FASHION_DIR "/t10k-labels-idx1-ubyte.gz", o, &labels));
    assert_shape(labels, lg_shape_of(1, 10000));
    const int first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7}; /* ankle boot, pullover, trouser, trouser, shirt, ... */
    for (int i = 0; i < 10; i++) ck_assert_double_eq(lg_tensor_get(labels, i), first[i]);
    int count[10] = {0};
    const int32_t *l = lg_tensor_cdata(labels);
    for (int i = 0; i < 10000; i++) {
        ck_assert_int_ge(l[i], 0);
        ck_assert_int_le(l[i], 9);
        count[l[i]]++;
    }
    for (int c = 0; c < 10; c++) ck_assert_int_eq(count[c], 1000); /* the test set is balanced */
    o = lg_idx_opts_default();
    o.scale = true;
    ASSERT_OK(lg_idx_read(FASHION_DIR "/t10k-images-idx3-ubyte.gz", o, &images));
    assert_shape(images, lg_shape_of(3, 10000, 28, 28));
    ck_assert_int_eq(lg_tensor_dtype(images), LG_F32);
    /* the first image: pixel sum 33456 / 255, pixel 215 is 3, pixel 221 is 37 */
    double sum = 0;
    for (int i = 0; i < 784; i++) sum += lg_tensor_get(images, i);
    ck_assert_double_eq_tol(sum, 33456 / 255.0, 1e-3);
    ck_assert_double_eq(lg_tensor_get(images, 215), (float)(3 / 255.0));
    ck_assert_double_eq(lg_tensor_get(images, 221), (float)(37 / 255.0));
    ck_assert_double_eq(lg_tensor_get(images, 0), 0);
    /* the last image's pixels sum to 24390 */
    sum = 0;
    for (int i = 0; i < 784; i++) sum += lg_tensor_get(images, 9999 * 784 + i);
    ck_assert_double_eq_tol(sum, 24390 / 255.0, 1e-3);
    const float *p = lg_tensor_cdata(images);
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < lg_tensor_numel(images); i++) {
        lo = p[i] < lo ? p[i] : lo;
        hi = p[i] > hi ? p[i] : hi;
    }
    ck_assert_double_eq(lo, 0);
    ck_assert_double_eq(hi, 1);
    /* the pair makes a dataset the training loop can batch */
    lg_dataset *ds = NULL;
    lg_dataset_opts d = lg_dataset_opts_default();
    d.batch_size = 128;
    ASSERT_OK(lg_dataset_new(images, labels, d, &ds));
    ck_assert_int_eq(lg_dataset_batch_count(ds), 79);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 78, &bx, &by));
    assert_shape(bx, lg_shape_of(3, 16, 28, 28));
    assert_shape(by, lg_shape_of(1, 16));
    lg_dataset_free(ds);
    lg_tensor_free(images);
    lg_tensor_free(labels);
}
END_TEST

/* ---- CSV ----------------------------------------------------------------------------------- */

static lg_tensor *csv_ok(const char *path, lg_csv_opts o)
{
    lg_tensor *t = NULL;
    ASSERT_OK(lg_csv_read(path, o, &t));
    return t;
}

static void assert_values(const lg_tensor *t, const double *want, int n)
{
    ck_assert_int_eq(lg_tensor_numel(t), n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(lg_tensor_get(t, i) == want[i], "element %d: %g, expected %g", i, lg_tensor_get(t, i), want[i]);
}

START_TEST(test_csv_header_all_columns)
{
    lg_csv_opts d = lg_csv_opts_default();
    ck_assert_int_eq(d.delimiter, ',');
    ck_assert(d.header);
    ck_assert(d.columns == NULL && d.names == NULL && d.n_columns == 0);
    ck_assert_int_eq(d.dtype, LG_F32);
    const char *path = write_text("a.csv", "a,b,c\n1,2,3\n4.5,-5,6e2\n");
    lg_tensor *t = csv_ok(path, d);
    ck_assert_int_eq(lg_tensor_dtype(t), LG_F32);
    assert_shape(t, lg_shape_of(2, 2, 3));
    assert_values(t, (const double[]){1, 2, 3, 4.5, -5, 600}, 6);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_csv_select_columns)
{
    const char *path = write_text("a.csv", "a,b,c\n1,2,3\n4.5,-5,0.1\n");
    lg_csv_opts o = lg_csv_opts_default();
    o.dtype = LG_F64;
    const char *names[] = {"c", "a"};
    o.names = names;
    o.n_columns = 2;
    lg_tensor *t = csv_ok(path, o);
    assert_shape(t, lg_shape_of(2, 2, 2));
    assert_values(t, (const double[]){3, 1, 0.1, 4.5}, 4);
    lg_tensor_free(t);
    o.names = NULL;
    const int cols[] = {2, 0, 2};
    o.columns = cols;
    o.n_columns = 3;
    t = csv_ok(path, o);
    assert_shape(t, lg_shape_of(2, 2, 3));
    assert_values(t, (const double[]){3, 1, 3, 0.1, 4.5, 0.1}, 6);
    lg_tensor_free(t);
}
END_TEST

/* No header, another delimiter, CRLF, blank lines, blanks around fields,
 * quoted numbers. */
START_TEST(test_csv_no_header_delimiter_quotes)
{
    const char *path = write_text("b.csv", "1;2\r\n\r\n  3 ; \"4\" \r\n   \n-0.5;\t7\n");
    lg_csv_opts o = lg_csv_opts_default();
    o.header = false;
    o.delimiter = ';';
    lg_tensor *t = csv_ok(path, o);
    assert_shape(t, lg_shape_of(2, 3, 2));
    assert_values(t, (const double[]){1, 2, 3, 4, -0.5, 7}, 6);
    lg_tensor_free(t);
    /* a tab-separated file keeps its empty-looking fields apart */
    path = write_text("c.tsv", "x\ty\n1\t2\n");
    o = lg_csv_opts_default();
    o.delimiter = '\t';
    t = csv_ok(path, o);
    assert_values(t, (const double[]){1, 2}, 2);
    lg_tensor_free(t);
}
END_TEST

/* Jena-climate style: quoted header names (one with a comma, one with an
 * escaped quote) and a text column that is never parsed. */
START_TEST(test_csv_quoted_names_and_text_column)
{
    const char *path = write_text("jena.csv", "\"Date Time\",\"T (degC)\",\"x,y\",\"say \"\"hi\"\"\"\n"
                                              "01.01.2009 00:10:00,-8.02,1,2\n"
                                              "01.01.2009 00:20:00,-8.41,3,4\n");
    lg_csv_opts o = lg_csv_opts_default();
    const char *names[] = {"T (degC)", "x,y", "say \"hi\""};
    o.names = names;
    o.n_columns = 3;
    o.dtype = LG_F64;
    lg_tensor *t = csv_ok(path, o);
    assert_shape(t, lg_shape_of(2, 2, 3));
    assert_values(t, (const double[]){-8.02, 1, 2, -8.41, 3, 4}, 6);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_csv_errors_arguments)
{
    const char *path = write_text("a.csv", "a,b\n1,2\n");
    lg_tensor *t = (lg_tensor *)1;
    lg_csv_opts o = lg_csv_opts_default();
    ASSERT_FAILS(lg_csv_read(path, o, NULL), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    ASSERT_FAILS(lg_csv_read(NULL, o, &t), LG_ERR_INVALID_ARGUMENT, "path is NULL");
    ck_assert_ptr_null(t);
    o.dtype = LG_I32;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_DTYPE, "a.csv: dtype 2: needs LG_F32 or LG_F64");
    o = lg_csv_opts_default();
    const int cols[] = {0};
    const char *names[] = {"a"};
    o.columns = cols;
    o.names = names;
    o.n_columns = 1;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_INVALID_ARGUMENT, "both columns and names given");
    o.names = NULL;
    o.n_columns = 0;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_INVALID_ARGUMENT, "n_columns 0 with a column list");
    o = lg_csv_opts_default();
    o.names = names;
    o.n_columns = 1;
    o.header = false;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_INVALID_ARGUMENT, "columns selected by name need header true");
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_csv_errors_file)
{
    lg_tensor *t = NULL;
    lg_csv_opts o = lg_csv_opts_default();
    char missing[128];
    snprintf(missing, sizeof missing, "%s/absent.csv", tmpdir);
    ASSERT_FAILS(lg_csv_read(missing, o, &t), LG_ERR_IO, "absent.csv: cannot open: No such file");
    ASSERT_FAILS(lg_csv_read(tmpdir, o, &t), LG_ERR_IO, "is not a regular file (a directory)");
    ASSERT_FAILS(lg_csv_read(write_text("empty.csv", ""), o, &t), LG_ERR_IO, "empty.csv: empty file");
    ASSERT_FAILS(lg_csv_read(write_text("blank.csv", "\n  \n\r\n"), o, &t), LG_ERR_IO, "blank.csv: empty file");
    ASSERT_FAILS(lg_csv_read(write_text("head.csv", "\na,b\n\n"), o, &t), LG_ERR_IO,
                 "head.csv: no data rows after the header on line 2");
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_csv_errors_cells)
{
    lg_tensor *t = NULL;
    lg_csv_opts o = lg_csv_opts_default();
    ASSERT_FAILS(lg_csv_read(write_text("nan.csv", "a,b,c\n1,2,3\n4,abc,6\n"), o, &t), LG_ERR_IO,
                 "nan.csv:3: column 1 (\"b\"): \"abc\" is not a number");
    ASSERT_FAILS(lg_csv_read(write_text("tail.csv", "a,b\n1,2x\n"), o, &t), LG_ERR_IO,
                 "tail.csv:2: column 1 (\"b\"): \"2x\" is not a number");
    ASSERT_FAILS(lg_csv_read(write_text("gap.csv", "a,b\n1, \n"), o, &t), LG_ERR_IO,
                 "gap.csv:2: column 1 (\"b\"): \"\" is not a number");
    o.header = false;
    ASSERT_FAILS(lg_csv_read(write_text("nohead.csv", "1,2\n\n3,x\n"), o, &t), LG_ERR_IO,
                 "nohead.csv:3: column 1: \"x\" is not a number");
    o = lg_csv_opts_default();
    ASSERT_FAILS(lg_csv_read(write_text("ragged.csv", "a,b,c\n1,2,3\n4,5\n"), o, &t), LG_ERR_IO,
                 "ragged.csv:3: 2 fields, expected 3 as in line 1");
    ASSERT_FAILS(lg_csv_read(write_text("wide.csv", "a,b\n1,2\n3,4,5\n"), o, &t), LG_ERR_IO,
                 "wide.csv:3: 3 fields, expected 2 as in line 1");
    ASSERT_FAILS(lg_csv_read(write_text("quote.csv", "a,b\n1,\"2\n"), o, &t), LG_ERR_IO,
                 "quote.csv:2: column 1: unterminated quote");
    ASSERT_FAILS(lg_csv_read(write_text("after.csv", "a,b\n\"1\"x,2\n"), o, &t), LG_ERR_IO,
                 "after.csv:2: column 0: text after a closing quote");
    ck_assert_ptr_null(t);
}
END_TEST

/* nan, inf and values beyond the dtype's range are refused by default,
 * naming line and column; allow_nonfinite reads them (beyond the range:
 * inf). 1e39 fits f64 but not f32. */
START_TEST(test_csv_nonfinite)
{
    static const struct {
        const char *cell, *says;
    } cases[] = {
        {"nan", "is nan"},          {"NaN", "is nan"},           {"-nan", "is nan"},
        {"inf", "is infinite"},     {"-Infinity", "is infinite"}, {"1e999", "is infinite or beyond f64's range"},
        {"1e39", "is beyond f32's range"}, {"-1e39", "is beyond f32's range"},
    };
    lg_tensor *t = NULL;
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        char text[128], want[128];
        snprintf(text, sizeof text, "a,b\n1,2\n3,%s\n", cases[i].cell);
        const char *path = write_text("nonfinite.csv", text);
        snprintf(want, sizeof want, "nonfinite.csv:3: column 1 (\"b\"): \"%s\" %s", cases[i].cell, cases[i].says);
        ASSERT_FAILS(lg_csv_read(path, lg_csv_opts_default(), &t), LG_ERR_IO, want);
        ck_assert_ptr_null(t);
        lg_csv_opts o = lg_csv_opts_default();
        o.allow_nonfinite = true;
        t = csv_ok(path, o);
        double v = lg_tensor_get(t, 3);
        ck_assert_msg(!isfinite(v), "%s read as %g", cases[i].cell, v);
        ck_assert_int_eq(isnan(v) != 0, cases[i].says[3] == 'n');
        if (!isnan(v)) ck_assert_int_eq(v < 0, cases[i].cell[0] == '-');
        lg_tensor_free(t);
        free(tmpfiles[--n_tmpfiles]);
        unlink(path);
    }
    /* 1e39 and 3.4e38 (just below FLT_MAX) are finite in f64; 3.4e38 also in f32 */
    lg_csv_opts o = lg_csv_opts_default();
    o.header = false;
    o.dtype = LG_F64;
    t = csv_ok(write_text("f64.csv", "1e39,3.4e38,-1e-999\n"), o);
    assert_values(t, (const double[]){1e39, 3.4e38, -0.0}, 3);
    lg_tensor_free(t);
    o.dtype = LG_F32;
    t = csv_ok(write_text("f32.csv", "3.4e38,-3.4e38\n"), o);
    ck_assert(lg_tensor_get(t, 0) > 3.3e38 && lg_tensor_get(t, 1) < -3.3e38);
    lg_tensor_free(t);
    /* a refused cell in a column that is not selected does not matter */
    const int cols[] = {0};
    o.columns = cols, o.n_columns = 1;
    t = csv_ok(write_text("skip.csv", "1,nan\n2,inf\n"), o);
    assert_values(t, (const double[]){1, 2}, 2);
    lg_tensor_free(t);
}
END_TEST

/* A NUL byte in a line is refused, naming line and column (the field it
 * falls in), instead of ending the line there. */
START_TEST(test_csv_nul_byte)
{
    lg_tensor *t = NULL;
    static const char cut[] = "a,b\n1,2\n3,4\0005\n";
    ASSERT_FAILS(lg_csv_read(write_file("nul.csv", cut, sizeof cut - 1), lg_csv_opts_default(), &t), LG_ERR_IO,
                 "nul.csv:3: column 1: a NUL byte (at byte 4 of the line)");
    static const char head[] = "a,\"x,\0\",c\n1,2,3\n";
    ASSERT_FAILS(lg_csv_read(write_file("nulhead.csv", head, sizeof head - 1), lg_csv_opts_default(), &t), LG_ERR_IO,
                 "nulhead.csv:1: column 1: a NUL byte");
    static const char tail[] = "a,b\n1,2\n\0";
    ASSERT_FAILS(lg_csv_read(write_file("nultail.csv", tail, sizeof tail - 1), lg_csv_opts_default(), &t), LG_ERR_IO,
                 "nultail.csv:3: column 0: a NUL byte (at byte 1 of the line)");
    ck_assert_ptr_null(t);
}
END_TEST

/* getline failing before the end of the file is an error, never a short
 * file: ENOMEM (a line too long for memory) and EIO, on the header line and
 * on a data line. */
START_TEST(test_csv_read_errors)
{
    const char *path = write_text("rows.csv", "a,b\n1,2\n3,4\n5,6\n");
    lg_tensor *t = NULL;
    getline_fail_errno = ENOMEM, getline_fail_at = 3, getline_calls = 0;
    ASSERT_FAILS(lg_csv_read(path, lg_csv_opts_default(), &t), LG_ERR_OUT_OF_MEMORY,
                 "rows.csv:3: out of memory reading the line");
    getline_fail_errno = EIO, getline_fail_at = 1, getline_calls = 0;
    ASSERT_FAILS(lg_csv_read(path, lg_csv_opts_default(), &t), LG_ERR_IO,
                 "rows.csv:1: reading the line failed: Input/output error");
    ck_assert_ptr_null(t);
    getline_fail_errno = 0;
    t = csv_ok(path, lg_csv_opts_default());
    assert_shape(t, lg_shape_of(2, 3, 2));
    lg_tensor_free(t);
}
END_TEST

/* The reproduction: a 64 MB line under a memory limit (ulimit -v)
 * that leaves room for 48 MB more. The reader gets ENOMEM from getline and
 * must say so; it used to return the rows before the line with LG_OK. The
 * limit is set in a child process. ASan reserves far more address space
 * than any such limit allows, so under ASan the injected ENOMEM of
 * test_csv_read_errors is the test. */
#if defined(__SANITIZE_ADDRESS__)
#define LG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LG_ASAN 1
#endif
#endif

START_TEST(test_csv_line_beyond_memory_limit)
{
#ifdef LG_ASAN
    return;
#endif
    enum { LINE = 64 << 20 };
    char *big = malloc(LINE + 64);
    ck_assert_ptr_nonnull(big);
    strcpy(big, "a,b\n1,2\n3,");
    size_t at = strlen(big);
    memset(big + at, '4', LINE);
    strcpy(big + at + LINE, "\n5,6\n");
    const char *path = write_file("long.csv", big, strlen(big));
    free(big);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        long pages = 0;
        FILE *statm = fopen("/proc/self/statm", "r");
        if (!statm || fscanf(statm, "%ld", &pages) != 1) _exit(3);
        fclose(statm);
        rlim_t room = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (48 << 20);
        struct rlimit lim = {room, room};
        if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(4);
        lg_tensor *t = NULL;
        lg_status s = lg_csv_read(path, lg_csv_opts_default(), &t);
        _exit(s == LG_ERR_OUT_OF_MEMORY && strstr(lg_last_error(), "long.csv:3: out of memory reading the line") ? 0
              : s == LG_OK                                                                                    ? 1
                                                                                                              : 2);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "the reading child died: %d", status);
    ck_assert_msg(WEXITSTATUS(status) == 0, "child exit %d: 1 = LG_OK (rows dropped), 2 = another error",
                  WEXITSTATUS(status));
}
END_TEST

START_TEST(test_csv_errors_selection)
{
    lg_tensor *t = NULL;
    const char *path = write_text("a.csv", "a,b,c\n1,2,3\n");
    lg_csv_opts o = lg_csv_opts_default();
    const char *names[] = {"a", "zz"};
    o.names = names;
    o.n_columns = 2;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_IO, "a.csv:1: no column named \"zz\" (names[1]) in the header");
    o = lg_csv_opts_default();
    const int cols[] = {1, 3};
    o.columns = cols;
    o.n_columns = 2;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_IO,
                 "a.csv:1: column index 3 (columns[1]) outside the 3 fields of the line");
    const int neg[] = {-1};
    o.columns = neg;
    o.n_columns = 1;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_IO, "column index -1 (columns[0])");
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_csv_elnino)
{
    lg_csv_opts o = lg_csv_opts_default();
    o.dtype = LG_F64;
    lg_tensor *t = csv_ok(ELNINO_CSV, o);
    assert_shape(t, lg_shape_of(2, 732, 3));
    const double head[9] = {1950, 1, 23.11, 1950, 2, 24.2, 1950, 3, 25.37};
    for (int i = 0; i < 9; i++) ck_assert_double_eq(lg_tensor_get(t, i), head[i]);
    ck_assert_double_eq(lg_tensor_get(t, 731 * 3), 2010);
    ck_assert_double_eq(lg_tensor_get(t, 731 * 3 + 1), 12);
    ck_assert_double_eq(lg_tensor_get(t, 731 * 3 + 2), 22.07);
    for (int r = 0; r < 732; r++) { /* consecutive months */
        ck_assert_double_eq(lg_tensor_get(t, 3 * r), 1950 + r / 12);
        ck_assert_double_eq(lg_tensor_get(t, 3 * r + 1), 1 + r % 12);
    }
    lg_tensor_free(t);
}
END_TEST

/* ---- datasets ------------------------------------------------------------------------------- */

/* x [n, 2] f32 with row r = (r, 10 r); y [n] i32 with row r = r */
static void rows_xy(int n, lg_tensor **x, lg_tensor **y)
{
    *x = lg_test_tensor(LG_F32, lg_shape_of(2, n, 2), NULL);
    *y = lg_test_tensor(LG_I32, lg_shape_of(1, n), NULL);
    for (int r = 0; r < n; r++) {
        lg_tensor_set(*x, 2 * r, r);
        lg_tensor_set(*x, 2 * r + 1, 10 * r);
        lg_tensor_set(*y, r, r);
    }
}

static lg_dataset_opts batches_of(int64_t b, bool shuffle)
{
    lg_dataset_opts o = lg_dataset_opts_default();
    o.batch_size = b;
    o.shuffle = shuffle;
    return o;
}

/* What a training loop does: every batch of the epoch. Checks that x and y
 * agree (x row = (r, 10 r) for y = r), fills order[] with the rows in the
 * order seen and returns how many. */
static int epoch_rows(lg_dataset *ds, int64_t epoch, int *order)
{
    ASSERT_OK(lg_dataset_epoch(ds, epoch));
    int seen = 0;
    for (int k = 0; k < lg_dataset_batch_count(ds); k++) {
        lg_tensor *bx, *by;
        ASSERT_OK(lg_dataset_batch(ds, k, &bx, &by));
        int64_t b = lg_tensor_shape(bx).dims[0];
        ck_assert_int_eq(lg_tensor_shape(by).dims[0], b);
        for (int64_t e = 0; e < b; e++) {
            double r = lg_tensor_get(by, e);
            ck_assert_double_eq(lg_tensor_get(bx, 2 * e), r);
            ck_assert_double_eq(lg_tensor_get(bx, 2 * e + 1), 10 * r);
            order[seen++] = (int)r;
        }
    }
    return seen;
}

START_TEST(test_dataset_in_order)
{
    lg_dataset_opts d = lg_dataset_opts_default();
    ck_assert_int_eq(d.batch_size, 32);
    ck_assert(d.shuffle && d.seed == 0 && !d.drop_last);
    lg_tensor *x, *y;
    rows_xy(5, &x, &y);
    lg_dataset *ds = NULL;
    ASSERT_OK(lg_dataset_new(x, y, batches_of(2, false), &ds));
    lg_tensor_set(x, 0, 99); /* the dataset copied x */
    lg_tensor_free(x);
    lg_tensor_free(y);
    ck_assert_int_eq(lg_dataset_size(ds), 5);
    ck_assert_int_eq(lg_dataset_batch_count(ds), 3);
    const int sizes[3] = {2, 2, 1};
    for (int k = 0; k < 3; k++) {
        lg_tensor *bx, *by;
        ASSERT_OK(lg_dataset_batch(ds, k, &bx, &by));
        ck_assert_int_eq(lg_tensor_dtype(bx), LG_F32);
        ck_assert_int_eq(lg_tensor_dtype(by), LG_I32);
        assert_shape(bx, lg_shape_of(2, sizes[k], 2));
        assert_shape(by, lg_shape_of(1, sizes[k]));
        for (int e = 0; e < sizes[k]; e++) {
            int r = 2 * k + e;
            ck_assert_double_eq(lg_tensor_get(bx, 2 * e), r);
            ck_assert_double_eq(lg_tensor_get(bx, 2 * e + 1), 10 * r);
            ck_assert_double_eq(lg_tensor_get(by, e), r);
        }
    }
    int order[5];
    ck_assert_int_eq(epoch_rows(ds, 3, order), 5); /* no shuffle: every epoch in order */
    for (int i = 0; i < 5; i++) ck_assert_int_eq(order[i], i);
    lg_dataset_free(ds);
}
END_TEST

START_TEST(test_dataset_drop_last_and_big_batch)
{
    lg_tensor *x, *y;
    rows_xy(5, &x, &y);
    lg_dataset_opts o = batches_of(2, false);
    o.drop_last = true;
    lg_dataset *ds = NULL;
    ASSERT_OK(lg_dataset_new(x, y, o, &ds));
    ck_assert_int_eq(lg_dataset_batch_count(ds), 2);
    int order[5];
    ck_assert_int_eq(epoch_rows(ds, 0, order), 4);
    lg_dataset_free(ds);
    /* a batch larger than the data: one batch of everything */
    ASSERT_OK(lg_dataset_new(x, y, batches_of(100, false), &ds));
    ck_assert_int_eq(lg_dataset_batch_count(ds), 1);
    lg_tensor *bx;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, NULL)); /* y not wanted */
    assert_shape(bx, lg_shape_of(2, 5, 2));
    lg_dataset_free(ds);
    /* an exact multiple has no smaller batch */
    ASSERT_OK(lg_dataset_new(x, y, batches_of(5, false), &ds));
    ck_assert_int_eq(lg_dataset_batch_count(ds), 1);
    lg_dataset_free(ds);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

static bool is_permutation(const int *order, int n)
{
    bool seen[128] = {false};
    for (int i = 0; i < n; i++) {
        if (order[i] < 0 || order[i] >= n || seen[order[i]]) return false;
        seen[order[i]] = true;
    }
    return true;
}

static bool same(const int *a, const int *b, int n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

START_TEST(test_dataset_shuffle)
{
    enum { N = 100 };
    lg_tensor *x, *y;
    rows_xy(N, &x, &y);
    lg_dataset_opts o = batches_of(7, true);
    o.seed = 42;
    lg_dataset *a = NULL, *b = NULL, *c = NULL;
    ASSERT_OK(lg_dataset_new(x, y, o, &a));
    ASSERT_OK(lg_dataset_new(x, y, o, &b));
    o.seed = 43;
    ASSERT_OK(lg_dataset_new(x, y, o, &c));
    ck_assert_int_eq(lg_dataset_batch_count(a), 15);
    int e0[N], e1[N], again[N], other[N], ident[N];
    for (int i = 0; i < N; i++) ident[i] = i;
    ck_assert_int_eq(epoch_rows(a, 0, e0), N);
    ck_assert_int_eq(epoch_rows(a, 1, e1), N);
    ck_assert(is_permutation(e0, N) && is_permutation(e1, N));
    ck_assert(!same(e0, ident, N));
    ck_assert(!same(e0, e1, N)); /* a new order each epoch */
    ck_assert_int_eq(epoch_rows(b, 1, again), N);
    ck_assert(same(e1, again, N)); /* same seed and epoch: same order, in any visiting order */
    ck_assert_int_eq(epoch_rows(a, 0, again), N);
    ck_assert(same(e0, again, N));
    ck_assert_int_eq(epoch_rows(c, 0, other), N);
    ck_assert(!same(e0, other, N)); /* another seed */
    /* a new dataset starts in epoch 0 */
    lg_dataset_free(b);
    o.seed = 42;
    ASSERT_OK(lg_dataset_new(x, y, o, &b));
    lg_tensor *by;
    lg_tensor *bx;
    ASSERT_OK(lg_dataset_batch(b, 0, &bx, &by));
    for (int e = 0; e < 7; e++) ck_assert_double_eq(lg_tensor_get(by, e), e0[e]);
    lg_dataset_free(a);
    lg_dataset_free(b);
    lg_dataset_free(c);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

/* Any dtypes and ranks; no y. */
START_TEST(test_dataset_dtypes_ranks_no_y)
{
    lg_tensor *x = lg_test_tensor(LG_F64, lg_shape_of(3, 3, 2, 2), NULL);
    for (int i = 0; i < 12; i++) lg_tensor_set(x, i, i + 0.5);
    lg_tensor *y = lg_test_tensor(LG_I32, lg_shape_of(2, 3, 2), (const int32_t[]){1, 2, 3, 4, 5, 6});
    lg_dataset *ds = NULL;
    ASSERT_OK(lg_dataset_new(x, y, batches_of(2, false), &ds));
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 1, &bx, &by));
    assert_shape(bx, lg_shape_of(3, 1, 2, 2));
    assert_shape(by, lg_shape_of(2, 1, 2));
    assert_values(bx, (const double[]){8.5, 9.5, 10.5, 11.5}, 4);
    assert_values(by, (const double[]){5, 6}, 2);
    lg_dataset_free(ds);
    ASSERT_OK(lg_dataset_new(y, NULL, batches_of(2, false), &ds));
    by = (lg_tensor *)1;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    ck_assert_ptr_null(by);
    assert_values(bx, (const double[]){1, 2, 3, 4}, 4);
    lg_dataset_free(ds);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

START_TEST(test_dataset_errors)
{
    lg_tensor *x, *y;
    rows_xy(5, &x, &y);
    lg_dataset *ds = (lg_dataset *)1;
    lg_dataset_opts o = batches_of(2, false);
    ASSERT_FAILS(lg_dataset_new(x, y, o, NULL), LG_ERR_INVALID_ARGUMENT, "lg_dataset_new: out is NULL");
    ASSERT_FAILS(lg_dataset_new(NULL, y, o, &ds), LG_ERR_INVALID_ARGUMENT, "lg_dataset_new: x is NULL");
    ck_assert_ptr_null(ds);
    lg_tensor *scalar = lg_test_tensor(LG_F32, lg_shape_of(0), NULL);
    lg_tensor *none = lg_test_tensor(LG_F32, lg_shape_of(2, 0, 2), NULL);
    lg_tensor *y4 = lg_test_tensor(LG_I32, lg_shape_of(1, 4), NULL);
    ASSERT_FAILS(lg_dataset_new(scalar, NULL, o, &ds), LG_ERR_SHAPE, "x has rank 0: needs [N, ...]");
    ASSERT_FAILS(lg_dataset_new(x, scalar, o, &ds), LG_ERR_SHAPE, "y has rank 0");
    ASSERT_FAILS(lg_dataset_new(none, NULL, o, &ds), LG_ERR_SHAPE, "x [0, 2] has no rows");
    ASSERT_FAILS(lg_dataset_new(x, y4, o, &ds), LG_ERR_SHAPE, "y [4] has 4 rows, x [5, 2] has 5");
    o.batch_size = 0;
    ASSERT_FAILS(lg_dataset_new(x, y, o, &ds), LG_ERR_INVALID_ARGUMENT, "batch_size 0: must be >= 1");
    o = batches_of(8, false);
    o.drop_last = true;
    ASSERT_FAILS(lg_dataset_new(x, y, o, &ds), LG_ERR_INVALID_ARGUMENT,
                 "drop_last with batch_size 8 leaves no batch: the dataset has 5 examples");
    /* 3e9 empty rows in batches of one: more batches than an int counts */
    lg_tensor *many = lg_test_tensor(LG_F32, (lg_shape){.rank = 2, .dims = {3000000000LL, 0}}, NULL);
    ASSERT_FAILS(lg_dataset_new(many, NULL, batches_of(1, false), &ds), LG_ERR_INVALID_ARGUMENT,
                 "3000000000 examples at batch_size 1 make more than 2147483647 batches");
    ck_assert_ptr_null(ds);
    ASSERT_OK(lg_dataset_new(x, y, batches_of(2, false), &ds));
    lg_tensor *bx = NULL, *by = NULL;
    ASSERT_FAILS(lg_dataset_batch(ds, 3, &bx, &by), LG_ERR_INVALID_ARGUMENT, "batch 3 outside [0, 3)");
    ASSERT_FAILS(lg_dataset_batch(ds, -1, &bx, &by), LG_ERR_INVALID_ARGUMENT, "batch -1 outside [0, 3)");
    ASSERT_FAILS(lg_dataset_batch(ds, 0, NULL, &by), LG_ERR_INVALID_ARGUMENT, "dataset or x is NULL");
    ASSERT_FAILS(lg_dataset_batch(NULL, 0, &bx, &by), LG_ERR_INVALID_ARGUMENT, "dataset or x is NULL");
    ASSERT_FAILS(lg_dataset_epoch(ds, -1), LG_ERR_INVALID_ARGUMENT, "epoch -1: must be >= 0");
    ASSERT_FAILS(lg_dataset_epoch(NULL, 0), LG_ERR_INVALID_ARGUMENT, "dataset is NULL");
    ck_assert_int_eq(lg_dataset_size(NULL), 0);
    ck_assert_int_eq(lg_dataset_batch_count(NULL), 0);
    lg_dataset_free(NULL);
    lg_dataset_free(ds);
    lg_tensor_free(many);
    lg_tensor_free(scalar);
    lg_tensor_free(none);
    lg_tensor_free(y4);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

/* The rows a dataset holds, in order (it must not shuffle). */
static int dataset_rows(lg_dataset *ds, int *rows) { return epoch_rows(ds, 0, rows); }

START_TEST(test_split)
{
    lg_split_opts d = lg_split_opts_default();
    ck_assert_double_eq(d.validation_fraction, 0.2);
    ck_assert_int_eq(d.side, LG_SPLIT_LAST);
    ck_assert(d.train.shuffle && !d.validation.shuffle);
    ck_assert_int_eq(d.train.batch_size, 32);
    lg_tensor *x, *y;
    rows_xy(10, &x, &y);
    lg_split_opts o = lg_split_opts_default();
    o.train.shuffle = false;
    lg_dataset *tr = NULL, *va = NULL;
    int rows[10];
    ASSERT_OK(lg_dataset_split(x, y, o, &tr, &va)); /* floor(10 * 0.8) = 8 train rows */
    ck_assert_int_eq(dataset_rows(tr, rows), 8);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(rows[i], i);
    ck_assert_int_eq(dataset_rows(va, rows), 2);
    ck_assert(rows[0] == 8 && rows[1] == 9);
    lg_dataset_free(tr);
    lg_dataset_free(va);
    o.side = LG_SPLIT_FIRST;
    ASSERT_OK(lg_dataset_split(x, y, o, &tr, &va));
    ck_assert_int_eq(dataset_rows(va, rows), 2);
    ck_assert(rows[0] == 0 && rows[1] == 1);
    ck_assert_int_eq(dataset_rows(tr, rows), 8);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(rows[i], 2 + i);
    lg_dataset_free(tr);
    lg_dataset_free(va);
    /* Keras's rounding: floor(10 * 0.75) = 7 train, 3 validation; no y */
    o = lg_split_opts_default();
    o.validation_fraction = 0.25;
    o.validation.batch_size = 2;
    ASSERT_OK(lg_dataset_split(x, NULL, o, &tr, &va));
    ck_assert_int_eq(lg_dataset_size(tr), 7);
    ck_assert_int_eq(lg_dataset_size(va), 3);
    ck_assert_int_eq(lg_dataset_batch_count(va), 2);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(va, 1, &bx, &by));
    ck_assert_ptr_null(by);
    assert_values(bx, (const double[]){9, 90}, 2);
    lg_dataset_free(tr);
    lg_dataset_free(va);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

START_TEST(test_split_errors)
{
    lg_tensor *x, *y;
    rows_xy(10, &x, &y);
    lg_dataset *tr = (lg_dataset *)1, *va = (lg_dataset *)1;
    lg_split_opts o = lg_split_opts_default();
    ASSERT_FAILS(lg_dataset_split(x, y, o, NULL, &va), LG_ERR_INVALID_ARGUMENT, "train or validation is NULL");
    ASSERT_FAILS(lg_dataset_split(x, y, o, &tr, NULL), LG_ERR_INVALID_ARGUMENT, "train or validation is NULL");
    ASSERT_FAILS(lg_dataset_split(NULL, y, o, &tr, &va), LG_ERR_INVALID_ARGUMENT, "lg_dataset_split: x is NULL");
    ck_assert(tr == NULL && va == NULL);
    lg_tensor *y4 = lg_test_tensor(LG_I32, lg_shape_of(1, 4), NULL);
    ASSERT_FAILS(lg_dataset_split(x, y4, o, &tr, &va), LG_ERR_SHAPE, "y [4] has 4 rows, x [10, 2] has 10");
    const double bad[] = {0, 1, -0.5, NAN};
    for (int i = 0; i < 4; i++) {
        o.validation_fraction = bad[i];
        ASSERT_FAILS(lg_dataset_split(x, y, o, &tr, &va), LG_ERR_INVALID_ARGUMENT, "must lie in (0, 1)");
    }
    o = lg_split_opts_default();
    o.side = (lg_split_side)2;
    ASSERT_FAILS(lg_dataset_split(x, y, o, &tr, &va), LG_ERR_INVALID_ARGUMENT, "side 2: not an lg_split_side");
    o = lg_split_opts_default();
    o.validation_fraction = 0.95; /* floor(0.5) = 0 train rows */
    ASSERT_FAILS(lg_dataset_split(x, y, o, &tr, &va), LG_ERR_INVALID_ARGUMENT,
                 "10 examples are too few to split with validation_fraction 0.95 (training would get 0)");
    o.validation_fraction = 0.01; /* floor(9.9) = 9: one validation row */
    ASSERT_OK(lg_dataset_split(x, y, o, &tr, &va));
    ck_assert_int_eq(lg_dataset_size(va), 1);
    lg_dataset_free(tr);
    lg_dataset_free(va);
    /* the validation part's options fail after the training part was made:
     * nothing is returned */
    o = lg_split_opts_default();
    o.validation.drop_last = true;
    o.validation.batch_size = 3;
    ASSERT_FAILS(lg_dataset_split(x, y, o, &tr, &va), LG_ERR_INVALID_ARGUMENT,
                 "drop_last with batch_size 3 leaves no batch: the dataset has 2 examples");
    ck_assert(tr == NULL && va == NULL);
    lg_tensor_free(y4);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

/* ---- time-series windows ---------------------------------------------------------------- */

/* data [n, 1] f32 = 0, 1, ..., n - 1 */
static lg_tensor *ramp(int n)
{
    lg_tensor *t = lg_test_tensor(LG_F32, lg_shape_of(2, n, 1), NULL);
    for (int i = 0; i < n; i++) lg_tensor_set(t, i, i);
    return t;
}

/* targets [n] i32 = 0, 10, 20, ... */
static lg_tensor *tens(int n)
{
    lg_tensor *t = lg_test_tensor(LG_I32, lg_shape_of(1, n), NULL);
    for (int i = 0; i < n; i++) lg_tensor_set(t, i, 10 * i);
    return t;
}

static lg_dataset *windows_ok(const lg_tensor *data, const lg_tensor *targets, lg_timeseries_opts o)
{
    lg_dataset *ds = NULL;
    ASSERT_OK(lg_timeseries_dataset_new(data, targets, o, &ds));
    return ds;
}

/* The dataset's windows (its only batch) equal want [n_win, len] (first
 * feature) and, when targets, want_y [n_win]. */
static void assert_windows(lg_dataset *ds, int n_win, int len, const double *want, const double *want_y)
{
    ck_assert_int_eq(lg_dataset_size(ds), n_win);
    ck_assert_int_eq(lg_dataset_batch_count(ds), 1);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    assert_shape(bx, lg_shape_of(3, n_win, len, 1));
    assert_values(bx, want, n_win * len);
    if (want_y) {
        assert_shape(by, lg_shape_of(1, n_win));
        assert_values(by, want_y, n_win);
    } else {
        ck_assert_ptr_null(by);
    }
}

/* sequence_length 3, sampling_rate 2, sequence_stride 2 over 10 rows:
 * num_seqs = 10 - 0 - (3 - 1) * 2 = 6, start positions arange(0, 6, 2) =
 * 0, 2, 4; window p is rows p, p + 2, p + 4; its target is targets[p]. */
START_TEST(test_windows_rate_and_stride)
{
    lg_timeseries_opts d = lg_timeseries_opts_default(3);
    ck_assert(d.sequence_length == 3 && d.sequence_stride == 1 && d.sampling_rate == 1);
    ck_assert(d.start_index == 0 && d.end_index == -1 && d.delay == 0);
    ck_assert(d.batch.batch_size == 128 && !d.batch.shuffle && !d.batch.drop_last);
    lg_tensor *data = ramp(10), *targets = tens(10);
    lg_timeseries_opts o = lg_timeseries_opts_default(3);
    o.sampling_rate = 2;
    o.sequence_stride = 2;
    lg_dataset *ds = windows_ok(data, targets, o);
    assert_windows(ds, 3, 3, (const double[]){0, 2, 4, 2, 4, 6, 4, 6, 8}, (const double[]){0, 20, 40});
    lg_dataset_free(ds);
    /* stride 1: num_seqs 6 windows, the last at 5 (rows 5, 7, 9) */
    o.sequence_stride = 1;
    ds = windows_ok(data, targets, o);
    ck_assert_int_eq(lg_dataset_size(ds), 6);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    ck_assert_double_eq(lg_tensor_get(bx, 15), 5);
    ck_assert_double_eq(lg_tensor_get(bx, 17), 9);
    ck_assert_double_eq(lg_tensor_get(by, 5), 50);
    lg_dataset_free(ds);
    lg_tensor_free(data);
    lg_tensor_free(targets);
}
END_TEST

/* start_index 1, end_index 9: Keras slices data[1:9] (8 rows), num_seqs =
 * 8 - 4 = 4, starts 0, 2 of the slice: rows (1, 3, 5) and (3, 5, 7),
 * targets targets[1 + 0] and targets[1 + 2]. end_index is exclusive:
 * end_index 7 leaves num_seqs 2 and only the first window, since the
 * second would read row 7. */
START_TEST(test_windows_start_end)
{
    lg_tensor *data = ramp(10), *targets = tens(10);
    lg_timeseries_opts o = lg_timeseries_opts_default(3);
    o.sampling_rate = 2;
    o.sequence_stride = 2;
    o.start_index = 1;
    o.end_index = 9;
    lg_dataset *ds = windows_ok(data, targets, o);
    assert_windows(ds, 2, 3, (const double[]){1, 3, 5, 3, 5, 7}, (const double[]){10, 30});
    lg_dataset_free(ds);
    o.end_index = 8; /* num_seqs 3: starts 0, 2 still */
    ds = windows_ok(data, targets, o);
    assert_windows(ds, 2, 3, (const double[]){1, 3, 5, 3, 5, 7}, (const double[]){10, 30});
    lg_dataset_free(ds);
    o.end_index = 7;
    ds = windows_ok(data, targets, o);
    assert_windows(ds, 1, 3, (const double[]){1, 3, 5}, (const double[]){10});
    lg_dataset_free(ds);
    o.end_index = 10; /* the series' length: the same as -1 */
    o.start_index = 0;
    ds = windows_ok(data, targets, o);
    assert_windows(ds, 3, 3, (const double[]){0, 2, 4, 2, 4, 6, 4, 6, 8}, (const double[]){0, 20, 40});
    lg_dataset_free(ds);
    lg_tensor_free(data);
    lg_tensor_free(targets);
}
END_TEST

/* Keras's docstring example 1: indices 0..98, sequence_length 10,
 * sampling_rate 2, sequence_stride 3: first [0 2 ... 18], second
 * [3 5 ... 21], third [6 ... 24], last [78 80 ... 96] (num_seqs 99 - 18 =
 * 81, starts 0, 3, ..., 78: 27 windows); no targets. */
START_TEST(test_windows_keras_example_1)
{
    lg_tensor *data = ramp(99);
    lg_timeseries_opts o = lg_timeseries_opts_default(10);
    o.sampling_rate = 2;
    o.sequence_stride = 3;
    lg_dataset *ds = windows_ok(data, NULL, o);
    ck_assert_int_eq(lg_dataset_size(ds), 27);
    lg_tensor *bx, *by = (lg_tensor *)1;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    ck_assert_ptr_null(by);
    assert_shape(bx, lg_shape_of(3, 27, 10, 1));
    const int starts[4] = {0, 3, 6, 78}, win[4] = {0, 1, 2, 26};
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 10; j++) ck_assert_double_eq(lg_tensor_get(bx, win[k] * 10 + j), starts[k] + 2 * j);
    lg_dataset_free(ds);
    lg_tensor_free(data);
}
END_TEST

/* Keras's docstring example 2: input_data = data[:-10], targets =
 * data[10:], sequence_length 10: the first window is data[:10] and its
 * target data[10]. delay 10 with the whole series as targets is the same. */
START_TEST(test_windows_delay)
{
    enum { T = 30, D = 10 };
    lg_tensor *data = lg_test_tensor(LG_F64, lg_shape_of(2, T, 2), NULL),
              *temp = lg_test_tensor(LG_F64, lg_shape_of(1, T), NULL);
    lg_tensor *head = lg_test_tensor(LG_F64, lg_shape_of(2, T - D, 2), NULL),
              *tail = lg_test_tensor(LG_F64, lg_shape_of(1, T - D), NULL);
    for (int i = 0; i < T; i++) {
        lg_tensor_set(data, 2 * i, i);
        lg_tensor_set(data, 2 * i + 1, 100 + i);
        lg_tensor_set(temp, i, 0.5 * i);
        if (i < T - D) {
            lg_tensor_set(head, 2 * i, i);
            lg_tensor_set(head, 2 * i + 1, 100 + i);
        }
        if (i >= D) lg_tensor_set(tail, i - D, 0.5 * i);
    }
    lg_timeseries_opts o = lg_timeseries_opts_default(10);
    o.batch.batch_size = 4;
    o.start_index = 2;
    lg_dataset *by_delay, *sliced = windows_ok(head, tail, o);
    o.delay = D;
    by_delay = windows_ok(data, temp, o);
    /* num_seqs = 20 - 2 - 9 = 9 windows, starting at rows 2..10 */
    ck_assert_int_eq(lg_dataset_size(by_delay), 9);
    ck_assert_int_eq(lg_dataset_batch_count(by_delay), 3);
    for (int k = 0; k < 3; k++) {
        lg_tensor *ax, *ay, *bx, *by;
        ASSERT_OK(lg_dataset_batch(by_delay, k, &ax, &ay));
        ASSERT_OK(lg_dataset_batch(sliced, k, &bx, &by));
        ck_assert(lg_shape_equal(lg_tensor_shape(ax), lg_tensor_shape(bx)));
        for (int64_t i = 0; i < lg_tensor_numel(ax); i++)
            ck_assert_double_eq(lg_tensor_get(ax, i), lg_tensor_get(bx, i));
        for (int64_t i = 0; i < lg_tensor_numel(ay); i++)
            ck_assert_double_eq(lg_tensor_get(ay, i), lg_tensor_get(by, i));
        if (k == 0) { /* window 0: rows 2..11, target row 2 + 10 */
            assert_shape(ax, lg_shape_of(3, 4, 10, 2));
            ck_assert_double_eq(lg_tensor_get(ax, 0), 2);
            ck_assert_double_eq(lg_tensor_get(ax, 19), 111);
            ck_assert_double_eq(lg_tensor_get(ay, 0), 0.5 * 12);
        }
    }
    lg_dataset_free(by_delay);
    lg_dataset_free(sliced);
    /* example 2 itself: the step right after the window */
    o = lg_timeseries_opts_default(10);
    o.delay = D;
    by_delay = windows_ok(temp, temp, o);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(by_delay, 0, &bx, &by));
    assert_shape(bx, lg_shape_of(2, 11, 10)); /* data [T] gives windows [b, 10] */
    for (int j = 0; j < 10; j++) ck_assert_double_eq(lg_tensor_get(bx, j), 0.5 * j);
    ck_assert_double_eq(lg_tensor_get(by, 0), 0.5 * 10);
    lg_dataset_free(by_delay);
    lg_tensor_free(data);
    lg_tensor_free(temp);
    lg_tensor_free(head);
    lg_tensor_free(tail);
}
END_TEST

/* Targets shorter than the data bound num_seqs (Keras: min(num_seqs,
 * len(targets))); targets of rank 2 give y [b, k]. */
START_TEST(test_windows_short_targets)
{
    lg_tensor *data = ramp(10);
    lg_tensor *t2 = lg_test_tensor(LG_F32, lg_shape_of(2, 4, 2), (const float[]){0, 1, 2, 3, 4, 5, 6, 7});
    lg_timeseries_opts o = lg_timeseries_opts_default(3);
    lg_dataset *ds = windows_ok(data, t2, o);
    ck_assert_int_eq(lg_dataset_size(ds), 4); /* min(10 - 2, 4) */
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    assert_shape(by, lg_shape_of(2, 4, 2));
    assert_values(by, (const double[]){0, 1, 2, 3, 4, 5, 6, 7}, 8);
    ck_assert_double_eq(lg_tensor_get(bx, 3 * 3 + 2), 5); /* window 3: rows 3, 4, 5 */
    lg_dataset_free(ds);
    lg_tensor_free(data);
    lg_tensor_free(t2);
}
END_TEST

/* Batches of windows, the last one smaller or dropped, and shuffling that
 * keeps each window with its target; data of rank 3. */
START_TEST(test_windows_batches_and_shuffle)
{
    lg_tensor *data = ramp(10), *targets = tens(10);
    lg_timeseries_opts o = lg_timeseries_opts_default(2); /* 9 windows */
    o.batch.batch_size = 4;
    lg_dataset *ds = windows_ok(data, targets, o);
    ck_assert_int_eq(lg_dataset_batch_count(ds), 3);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 2, &bx, &by));
    assert_shape(bx, lg_shape_of(3, 1, 2, 1));
    assert_values(bx, (const double[]){8, 9}, 2);
    assert_values(by, (const double[]){80}, 1);
    ASSERT_OK(lg_dataset_batch(ds, 1, &bx, &by));
    assert_shape(bx, lg_shape_of(3, 4, 2, 1));
    lg_dataset_free(ds);
    o.batch.drop_last = true;
    ds = windows_ok(data, targets, o);
    ck_assert_int_eq(lg_dataset_batch_count(ds), 2);
    lg_dataset_free(ds);
    o.batch.drop_last = false;
    o.batch.shuffle = true;
    o.batch.seed = 5;
    ds = windows_ok(data, targets, o);
    bool seen[9] = {false};
    bool moved = false;
    for (int k = 0, pos = 0; k < 3; k++) {
        ASSERT_OK(lg_dataset_batch(ds, k, &bx, &by));
        for (int e = 0; e < lg_tensor_shape(bx).dims[0]; e++, pos++) {
            int p = (int)lg_tensor_get(bx, 2 * e);
            ck_assert_double_eq(lg_tensor_get(bx, 2 * e + 1), p + 1);
            ck_assert_double_eq(lg_tensor_get(by, e), 10 * p);
            ck_assert(!seen[p]);
            seen[p] = true;
            moved |= p != pos;
        }
    }
    ck_assert(moved);
    lg_dataset_free(ds);
    /* rank 3 data: windows [b, len, 2, 2] */
    lg_tensor *cube = lg_test_tensor(LG_F64, lg_shape_of(3, 4, 2, 2), NULL);
    for (int i = 0; i < 16; i++) lg_tensor_set(cube, i, i);
    o = lg_timeseries_opts_default(2);
    o.sequence_stride = 2;
    ds = windows_ok(cube, NULL, o);
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    assert_shape(bx, lg_shape_of(4, 2, 2, 2, 2));
    ck_assert_double_eq(lg_tensor_get(bx, 8), 8); /* window 1 starts at row 2 */
    ck_assert_double_eq(lg_tensor_get(bx, 15), 15);
    lg_dataset_free(ds);
    lg_tensor_free(cube);
    lg_tensor_free(data);
    lg_tensor_free(targets);
}
END_TEST

START_TEST(test_windows_errors)
{
    lg_tensor *data = ramp(10), *targets = tens(10);
    lg_dataset *ds = (lg_dataset *)1;
    const char *fn = "lg_timeseries_dataset_new: ";
    (void)fn;
    lg_timeseries_opts o = lg_timeseries_opts_default(3);
    ASSERT_FAILS(lg_timeseries_dataset_new(data, targets, o, NULL), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    ASSERT_FAILS(lg_timeseries_dataset_new(NULL, targets, o, &ds), LG_ERR_INVALID_ARGUMENT, "data is NULL");
    ck_assert_ptr_null(ds);
    lg_tensor *scalar = lg_test_tensor(LG_F32, lg_shape_of(0), NULL);
    lg_tensor *rank6 = lg_test_tensor(LG_F32, lg_shape_of(6, 4, 1, 1, 1, 1, 1), NULL);
    ASSERT_FAILS(lg_timeseries_dataset_new(scalar, NULL, o, &ds), LG_ERR_SHAPE, "data has rank 0");
    ASSERT_FAILS(lg_timeseries_dataset_new(data, scalar, o, &ds), LG_ERR_SHAPE, "targets has rank 0");
    ASSERT_FAILS(lg_timeseries_dataset_new(rank6, NULL, o, &ds), LG_ERR_SHAPE,
                 "data [4, 1, 1, 1, 1, 1] has rank 6: a batch of its windows would need rank 7 > 6");
    const struct {
        int64_t len, stride, rate, start, end, delay;
        bool targets;
        const char *msg;
    } bad[] = {
        {0, 1, 1, 0, -1, 0, true, "sequence_length 0: must be >= 1"},
        {3, 0, 1, 0, -1, 0, true, "sequence_stride 0: must lie in [1, 10) for 10 rows"},
        {3, 10, 1, 0, -1, 0, true, "sequence_stride 10: must lie in [1, 10)"},
        {3, 1, 0, 0, -1, 0, true, "sampling_rate 0: must lie in [1, 10)"},
        {3, 1, 10, 0, -1, 0, true, "sampling_rate 10: must lie in [1, 10)"},
        {3, 1, 1, -1, -1, 0, true, "start_index -1: must lie in [0, 10)"},
        {3, 1, 1, 10, -1, 0, true, "start_index 10: must lie in [0, 10)"},
        {3, 1, 1, 4, 4, 0, true, "end_index 4: must be -1 or lie in (start_index 4, 10]"},
        {3, 1, 1, 0, 11, 0, true, "end_index 11: must be -1 or lie in (start_index 0, 10]"},
        {3, 1, 1, 0, -2, 0, true, "end_index -2"},
        {3, 1, 1, 0, -1, -1, true, "delay -1: must be >= 0"},
        {3, 1, 1, 0, -1, 2, false, "delay 2 without targets"},
        {3, 1, 1, 0, -1, 10, true, "delay 10 leaves no rows: data has 10, targets 10"},
        /* windows longer than the series: 11 rows, or 3 at rate 5 (11 rows) */
        {11, 1, 1, 0, -1, 0, true,
         "sequence_length 11 at sampling_rate 1 spans more than the 10 rows in [start_index 0, end_index 10)"},
        {3, 1, 5, 0, -1, 0, true, "sequence_length 3 at sampling_rate 5 spans more than the 10 rows"},
        {3, 1, 2, 6, -1, 0, true, "spans more than the 4 rows in [start_index 6, end_index 10)"},
        {3, 1, 1, 0, -1, 8, true, "sequence_length 3 at sampling_rate 1 spans more than the 2 rows"},
        {INT64_MAX, 1, 2, 0, -1, 0, true, "spans more than the 10 rows"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = lg_timeseries_opts_default(bad[i].len);
        o.sequence_stride = bad[i].stride;
        o.sampling_rate = bad[i].rate;
        o.start_index = bad[i].start;
        o.end_index = bad[i].end;
        o.delay = bad[i].delay;
        ASSERT_FAILS(lg_timeseries_dataset_new(data, bad[i].targets ? targets : NULL, o, &ds), LG_ERR_INVALID_ARGUMENT,
                     bad[i].msg);
    }
    /* delay beyond the targets only */
    lg_tensor *t3 = tens(3);
    o = lg_timeseries_opts_default(3);
    o.delay = 3;
    ASSERT_FAILS(lg_timeseries_dataset_new(data, t3, o, &ds), LG_ERR_INVALID_ARGUMENT,
                 "delay 3 leaves no rows: data has 10, targets 3");
    /* targets too short for a window's target row once start_index shifts it
     * (Keras fails on this while iterating) */
    o = lg_timeseries_opts_default(3);
    o.start_index = 2;
    ASSERT_FAILS(lg_timeseries_dataset_new(data, t3, o, &ds), LG_ERR_INVALID_ARGUMENT,
                 "targets have 3 rows after delay 0; the window at row 4 needs target row 4");
    /* bad batching */
    o = lg_timeseries_opts_default(3);
    o.batch.batch_size = 0;
    ASSERT_FAILS(lg_timeseries_dataset_new(data, targets, o, &ds), LG_ERR_INVALID_ARGUMENT, "batch_size 0");
    o.batch.batch_size = 9;
    o.batch.drop_last = true;
    ASSERT_FAILS(lg_timeseries_dataset_new(data, targets, o, &ds), LG_ERR_INVALID_ARGUMENT,
                 "drop_last with batch_size 9 leaves no batch: the dataset has 8 examples");
    ck_assert_ptr_null(ds);
    lg_tensor_free(t3);
    lg_tensor_free(scalar);
    lg_tensor_free(rank6);
    lg_tensor_free(data);
    lg_tensor_free(targets);
}
END_TEST

/* ---- standardisation ----------------------------------------------------------------------- */

START_TEST(test_standardize)
{
    /* columns (1, 2, 3 | 10) and (2, 4, 6 | 0): training rows 0..2 give
     * means 2 and 4, population stds sqrt(2/3) and sqrt(8/3) */
    lg_tensor *t = lg_test_tensor(LG_F64, lg_shape_of(2, 4, 2), (const double[]){1, 2, 2, 4, 3, 6, 10, 0});
    lg_tensor *mean = NULL, *std = NULL;
    ASSERT_OK(lg_standardize(t, 3, &mean, &std));
    assert_shape(mean, lg_shape_of(1, 2));
    ck_assert_int_eq(lg_tensor_dtype(std), LG_F64);
    ck_assert_double_eq_tol(lg_tensor_get(mean, 0), 2, 1e-15);
    ck_assert_double_eq_tol(lg_tensor_get(mean, 1), 4, 1e-15);
    double s0 = sqrt(2.0 / 3), s1 = sqrt(8.0 / 3);
    ck_assert_double_eq_tol(lg_tensor_get(std, 0), s0, 1e-15);
    ck_assert_double_eq_tol(lg_tensor_get(std, 1), s1, 1e-15);
    const double want[8] = {-1 / s0, -2 / s1, 0, 0, 1 / s0, 2 / s1, 8 / s0, -4 / s1};
    for (int i = 0; i < 8; i++) ck_assert_double_eq_tol(lg_tensor_get(t, i), want[i], 1e-14);
    lg_tensor_free(mean);
    lg_tensor_free(std);
    lg_tensor_free(t);
    /* f32 [5], all rows training, outputs not wanted: mean 0 and std 1 after */
    t = lg_test_tensor(LG_F32, lg_shape_of(1, 5), (const float[]){3, -1, 4, 1, 5});
    ASSERT_OK(lg_standardize(t, 5, NULL, NULL));
    double m = 0, v = 0;
    for (int i = 0; i < 5; i++) m += lg_tensor_get(t, i) / 5;
    for (int i = 0; i < 5; i++) v += (lg_tensor_get(t, i) - m) * (lg_tensor_get(t, i) - m) / 5;
    ck_assert_double_eq_tol(m, 0, 1e-6);
    ck_assert_double_eq_tol(v, 1, 1e-6);
    ck_assert_double_eq_tol(lg_tensor_get(t, 0), (3 - 2.4) / sqrt(4.64), 1e-6);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_standardize_errors)
{
    lg_tensor *mean = (lg_tensor *)1, *std = (lg_tensor *)1;
    ASSERT_FAILS(lg_standardize(NULL, 1, &mean, &std), LG_ERR_INVALID_ARGUMENT, "tensor is NULL");
    ck_assert(mean == NULL && std == NULL);
    lg_tensor *i = lg_test_tensor(LG_I32, lg_shape_of(1, 3), NULL);
    ASSERT_FAILS(lg_standardize(i, 1, NULL, NULL), LG_ERR_DTYPE, "tensor [3] is i32: needs f32 or f64");
    lg_tensor *s = lg_test_tensor(LG_F32, lg_shape_of(0), NULL);
    ASSERT_FAILS(lg_standardize(s, 1, NULL, NULL), LG_ERR_SHAPE, "rank 0");
    const double vals[6] = {1, 5, 2, 5, 3, 7};
    lg_tensor *t = lg_test_tensor(LG_F64, lg_shape_of(2, 3, 2), vals);
    ASSERT_FAILS(lg_standardize(t, 0, NULL, NULL), LG_ERR_INVALID_ARGUMENT,
                 "n_train 0: must lie in [1, 3] for tensor [3, 2]");
    ASSERT_FAILS(lg_standardize(t, 4, NULL, NULL), LG_ERR_INVALID_ARGUMENT, "n_train 4");
    /* column 1 is constant over the first two rows; t stays as it was */
    ASSERT_FAILS(lg_standardize(t, 2, &mean, &std), LG_ERR_INVALID_ARGUMENT,
                 "column 1 of tensor [3, 2] has std 0 over the first 2 rows");
    ck_assert(mean == NULL && std == NULL);
    assert_values(t, vals, 6);
    lg_tensor_set(t, 2, NAN);
    ASSERT_FAILS(lg_standardize(t, 3, NULL, NULL), LG_ERR_INVALID_ARGUMENT, "column 0 of tensor [3, 2] has std nan");
    lg_tensor_free(i);
    lg_tensor_free(s);
    lg_tensor_free(t);
}
END_TEST

/* ---- pad_sequences ------------------------------------------------------------------------- */

static const int32_t S1[] = {1}, S2[] = {2, 3}, S3[] = {4, 5, 6};
static const int32_t *const SEQS[] = {S1, S2, S3};
static const int64_t LENS[] = {1, 2, 3};

static void pad_ok(lg_pad_opts o, const double *want, int cols, const double *want_len)
{
    lg_tensor *x = NULL, *len = NULL;
    ASSERT_OK(lg_pad_sequences(SEQS, LENS, 3, o, &x, &len));
    ck_assert_int_eq(lg_tensor_dtype(x), LG_I32);
    ck_assert_int_eq(lg_tensor_dtype(len), LG_I32);
    assert_shape(x, lg_shape_of(2, 3, cols));
    assert_values(x, want, 3 * cols);
    assert_values(len, want_len, 3);
    lg_tensor_free(x);
    lg_tensor_free(len);
}

START_TEST(test_pad_sequences)
{
    lg_pad_opts o = lg_pad_opts_default();
    ck_assert(o.maxlen == 0 && o.padding == LG_PAD_PRE && o.truncating == LG_PAD_PRE && o.value == 0);
    /* Keras's defaults: pre padding to the longest */
    pad_ok(o, (const double[]){0, 0, 1, 0, 2, 3, 4, 5, 6}, 3, (const double[]){1, 2, 3});
    o.padding = LG_PAD_POST;
    pad_ok(o, (const double[]){1, 0, 0, 2, 3, 0, 4, 5, 6}, 3, (const double[]){1, 2, 3});
    /* maxlen 2: pre truncating keeps the last two of [4, 5, 6], post the first two */
    o = lg_pad_opts_default();
    o.maxlen = 2;
    pad_ok(o, (const double[]){0, 1, 2, 3, 5, 6}, 2, (const double[]){1, 2, 2});
    o.truncating = LG_PAD_POST;
    pad_ok(o, (const double[]){0, 1, 2, 3, 4, 5}, 2, (const double[]){1, 2, 2});
    o.padding = LG_PAD_POST;
    o.value = -1;
    pad_ok(o, (const double[]){1, -1, 2, 3, 4, 5}, 2, (const double[]){1, 2, 2});
    /* maxlen above the longest */
    o = lg_pad_opts_default();
    o.maxlen = 4;
    o.value = 9;
    pad_ok(o, (const double[]){9, 9, 9, 1, 9, 9, 2, 3, 9, 4, 5, 6}, 4, (const double[]){1, 2, 3});
}
END_TEST

START_TEST(test_pad_sequences_empty)
{
    /* an empty sequence (NULL allowed) is a row of padding with length 0 */
    const int32_t *seqs[] = {S2, NULL};
    const int64_t lens[] = {2, 0};
    lg_tensor *x = NULL, *len = NULL;
    lg_pad_opts o = lg_pad_opts_default();
    o.value = 7;
    ASSERT_OK(lg_pad_sequences(seqs, lens, 2, o, &x, &len));
    assert_values(x, (const double[]){2, 3, 7, 7}, 4);
    assert_values(len, (const double[]){2, 0}, 2);
    lg_tensor_free(x);
    lg_tensor_free(len);
    /* all empty: width 0; lengths not wanted */
    const int64_t zeros[] = {0, 0};
    ASSERT_OK(lg_pad_sequences(seqs, zeros, 2, o, &x, NULL));
    assert_shape(x, lg_shape_of(2, 2, 0));
    lg_tensor_free(x);
    /* no sequences with a maxlen: [0, maxlen] */
    o.maxlen = 3;
    ASSERT_OK(lg_pad_sequences(NULL, NULL, 0, o, &x, &len));
    assert_shape(x, lg_shape_of(2, 0, 3));
    assert_shape(len, lg_shape_of(1, 0));
    lg_tensor_free(x);
    lg_tensor_free(len);
}
END_TEST

START_TEST(test_pad_sequences_errors)
{
    lg_tensor *x = (lg_tensor *)1, *len = (lg_tensor *)1;
    lg_pad_opts o = lg_pad_opts_default();
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, 3, o, NULL, &len), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    ck_assert_ptr_null(len);
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, -1, o, &x, &len), LG_ERR_INVALID_ARGUMENT, "n -1: must be >= 0");
    ck_assert(x == NULL && len == NULL);
    ASSERT_FAILS(lg_pad_sequences(NULL, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "seqs or lens is NULL with n 3");
    ASSERT_FAILS(lg_pad_sequences(SEQS, NULL, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT, "seqs or lens is NULL");
    const int64_t neg[] = {1, -2, 3};
    ASSERT_FAILS(lg_pad_sequences(SEQS, neg, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT, "lens[1] is -2: must be >= 0");
    const int32_t *holes[] = {S1, NULL, S3};
    ASSERT_FAILS(lg_pad_sequences(holes, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "seqs[1] is NULL with lens[1] 2");
    o.maxlen = -1;
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "maxlen -1: must lie in [0, 2147483647] (0: the longest)");
    o.maxlen = (int64_t)INT32_MAX + 1;
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT, "maxlen 2147483648");
    /* the longest above INT32_MAX with maxlen 0 (never read: the check comes first) */
    const int64_t huge[] = {1, 3000000000LL, 3};
    o = lg_pad_opts_default();
    ASSERT_FAILS(lg_pad_sequences(SEQS, huge, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "the longest sequence has 3000000000 values: above 2147483647, give a maxlen");
    o.padding = (lg_pad_side)2;
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "padding 2: not an lg_pad_side");
    o = lg_pad_opts_default();
    o.truncating = (lg_pad_side)-1;
    ASSERT_FAILS(lg_pad_sequences(SEQS, LENS, 3, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "truncating -1: not an lg_pad_side");
    o = lg_pad_opts_default();
    ASSERT_FAILS(lg_pad_sequences(NULL, NULL, 0, o, &x, &len), LG_ERR_INVALID_ARGUMENT,
                 "no sequences and maxlen 0: no longest sequence to pad to");
    ck_assert(x == NULL && len == NULL);
}
END_TEST

/* Post padding feeds lg_rnn's lengths masking directly: the last output of
 * a masked SimpleRNN over a padded batch equals the unpadded run. */
START_TEST(test_pad_post_masks_rnn)
{
    const int32_t a[] = {1, 2}, b[] = {3, 1, 2};
    const int32_t *seqs[] = {a, b};
    const int64_t lens[] = {2, 3};
    lg_pad_opts po = lg_pad_opts_default();
    po.padding = LG_PAD_POST;
    lg_tensor *ids = NULL, *len = NULL;
    ASSERT_OK(lg_pad_sequences(seqs, lens, 2, po, &ids, &len));
    assert_values(ids, (const double[]){1, 2, 0, 3, 1, 2}, 6);
    ASSERT_OK(lg_lengths_check(len, 3));
    lg_graph *g = lg_graph_new();
    lg_value in = lg_input(g, "ids", LG_I32, lg_shape_of(2, -1, -1));
    lg_value ln = lg_input(g, "len", LG_I32, lg_shape_of(1, -1));
    lg_value emb = lg_embedding(g, "emb", in, 4, 3, lg_embedding_opts_default());
    lg_cell *c = lg_cell_new(g, "rnn", 3, lg_cell_opts_default(LG_CELL_SIMPLE_RNN, 2));
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.lengths = ln;
    lg_rnn_result r;
    ASSERT_OK(lg_rnn(g, c, emb, ro, &r));
    ck_assert_msg(lg_graph_error(g) == NULL, "%s", lg_graph_error(g));
    for (int p = 0; p < lg_graph_param_count(g); p++)
        ASSERT_OK(lg_init_uniform(lg_param_tensor(lg_graph_param(g, p)), -1, 1, 3, (uint64_t)p));
    lg_feed feeds[2] = {{in, ids}, {ln, len}};
    lg_tensor *out = lg_test_run1(g, feeds, 2, r.output); /* [2, 2] */
    /* example 0 alone, unpadded */
    lg_tensor *ids0 = lg_test_tensor(LG_I32, lg_shape_of(2, 1, 2), a);
    lg_tensor *len0 = lg_test_tensor(LG_I32, lg_shape_of(1, 1), (const int32_t[]){2});
    lg_feed f0[2] = {{in, ids0}, {ln, len0}};
    lg_tensor *out0 = lg_test_run1(g, f0, 2, r.output);
    for (int j = 0; j < 2; j++) ck_assert_double_eq_tol(lg_tensor_get(out, j), lg_tensor_get(out0, j), 1e-6);
    lg_tensor_free(out0);
    lg_tensor_free(len0);
    lg_tensor_free(ids0);
    lg_tensor_free(out);
    lg_cell_free(c);
    lg_graph_free(g);
    lg_tensor_free(ids);
    lg_tensor_free(len);
}
END_TEST

/* ---- synthetic tasks ------------------------------------------------------------------------- */

static bool tensors_equal(const lg_tensor *a, const lg_tensor *b)
{
    return lg_tensor_bytes(a) == lg_tensor_bytes(b) &&
           memcmp(lg_tensor_cdata(a), lg_tensor_cdata(b), lg_tensor_bytes(a)) == 0;
}

START_TEST(test_synth_sine)
{
    lg_sine_opts d = lg_sine_opts_default();
    ck_assert(d.n == 1000 && d.steps == 50 && d.dt == 0.1 && d.seed == 0 && d.dtype == LG_F32);
    lg_sine_opts o = {.n = 4, .steps = 20, .dt = 0.3, .seed = 9, .dtype = LG_F64};
    lg_tensor *x, *y, *x2, *y2;
    ASSERT_OK(lg_synth_sine(o, &x, &y));
    assert_shape(x, lg_shape_of(3, 4, 20, 1));
    assert_shape(y, lg_shape_of(3, 4, 20, 1));
    for (int i = 0; i < 4; i++) {
        double phi = atan2(lg_tensor_get(x, i * 20), lg_tensor_get(y, i * 20));
        for (int t = 0; t < 20; t++) {
            ck_assert_double_eq_tol(lg_tensor_get(x, i * 20 + t), sin(phi + 0.3 * t), 1e-12);
            ck_assert_double_eq_tol(lg_tensor_get(y, i * 20 + t), cos(phi + 0.3 * t), 1e-12);
        }
    }
    ck_assert(lg_tensor_get(x, 0) != lg_tensor_get(x, 20)); /* phases differ */
    o.n = 2;                                                /* example i does not depend on n */
    ASSERT_OK(lg_synth_sine(o, &x2, &y2));
    ck_assert(memcmp(lg_tensor_cdata(x), lg_tensor_cdata(x2), lg_tensor_bytes(x2)) == 0);
    lg_tensor_free(x2);
    lg_tensor_free(y2);
    o.n = 4;
    o.seed = 10;
    ASSERT_OK(lg_synth_sine(o, &x2, &y2));
    ck_assert(!tensors_equal(x, x2));
    lg_tensor_free(x2);
    lg_tensor_free(y2);
    lg_tensor_free(x);
    lg_tensor_free(y);
    ASSERT_OK(lg_synth_sine(lg_sine_opts_default(), &x, &y));
    ck_assert_int_eq(lg_tensor_dtype(x), LG_F32);
    assert_shape(y, lg_shape_of(3, 1000, 50, 1));
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

START_TEST(test_synth_adding)
{
    lg_adding_opts d = lg_adding_opts_default();
    ck_assert(d.n == 1000 && d.steps == 100 && d.seed == 0 && d.dtype == LG_F32);
    enum { N = 200, T = 11 };
    lg_adding_opts o = {.n = N, .steps = T, .seed = 3, .dtype = LG_F64};
    lg_tensor *x, *y, *x2, *y2;
    ASSERT_OK(lg_synth_adding(o, &x, &y));
    assert_shape(x, lg_shape_of(3, N, T, 2));
    assert_shape(y, lg_shape_of(2, N, 1));
    int first_at[T] = {0}, second_at[T] = {0};
    double ysum = 0;
    for (int i = 0; i < N; i++) {
        int marks = 0, m[2] = {-1, -1};
        double sum = 0;
        for (int t = 0; t < T; t++) {
            double v = lg_tensor_get(x, (i * T + t) * 2), k = lg_tensor_get(x, (i * T + t) * 2 + 1);
            ck_assert(v >= 0 && v < 1);
            ck_assert(k == 0 || k == 1);
            if (k == 1) {
                ck_assert_int_lt(marks, 2);
                m[marks++] = t;
                sum += v;
            }
        }
        ck_assert_int_eq(marks, 2);
        ck_assert_int_lt(m[0], T / 2); /* one marker in each half */
        ck_assert_int_ge(m[1], T / 2);
        first_at[m[0]]++;
        second_at[m[1]]++;
        ck_assert_double_eq(lg_tensor_get(y, i), sum);
        ysum += sum;
    }
    for (int t = 0; t < T / 2; t++) ck_assert_int_gt(first_at[t], 0); /* every position is drawn */
    for (int t = T / 2; t < T; t++) ck_assert_int_gt(second_at[t], 0);
    ck_assert_double_eq_tol(ysum / N, 1.0, 0.1); /* E[y] = 1 */
    ASSERT_OK(lg_synth_adding(o, &x2, &y2));
    ck_assert(tensors_equal(x, x2) && tensors_equal(y, y2)); /* reproducible */
    lg_tensor_free(x2);
    lg_tensor_free(y2);
    o.seed = 4;
    ASSERT_OK(lg_synth_adding(o, &x2, &y2));
    ck_assert(!tensors_equal(x, x2));
    lg_tensor_free(x2);
    lg_tensor_free(y2);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

START_TEST(test_synth_copy)
{
    lg_copy_opts d = lg_copy_opts_default();
    ck_assert(d.n == 1000 && d.length == 10 && d.blanks == 10 && d.symbols == 8 && d.seed == 0);
    enum { N = 50, L = 3, B = 2, S = 2 * L + B + 1 };
    lg_copy_opts o = {.n = N, .length = L, .blanks = B, .symbols = 8, .seed = 1};
    lg_tensor *x, *y, *x2, *y2;
    ASSERT_OK(lg_synth_copy(o, &x, &y));
    ck_assert_int_eq(lg_tensor_dtype(x), LG_I32);
    assert_shape(x, lg_shape_of(2, N, S));
    assert_shape(y, lg_shape_of(2, N, S));
    bool symbol_seen[9] = {false};
    for (int i = 0; i < N; i++) {
        const int32_t *rx = (const int32_t *)lg_tensor_cdata(x) + i * S,
                      *ry = (const int32_t *)lg_tensor_cdata(y) + i * S;
        for (int j = 0; j < L; j++) {
            ck_assert(rx[j] >= 1 && rx[j] <= 8);
            symbol_seen[rx[j]] = true;
            ck_assert_int_eq(ry[L + B + 1 + j], rx[j]); /* the target repeats the symbols */
        }
        for (int j = L; j < L + B; j++) ck_assert_int_eq(rx[j], 0);
        ck_assert_int_eq(rx[L + B], 9); /* the delimiter */
        for (int j = L + B + 1; j < S; j++) ck_assert_int_eq(rx[j], 0);
        for (int j = 0; j < L + B + 1; j++) ck_assert_int_eq(ry[j], 0);
    }
    for (int s = 1; s <= 8; s++) ck_assert(symbol_seen[s]);
    ASSERT_OK(lg_synth_copy(o, &x2, &y2));
    ck_assert(tensors_equal(x, x2) && tensors_equal(y, y2));
    lg_tensor_free(x2);
    lg_tensor_free(y2);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

START_TEST(test_synth_errors)
{
    lg_tensor *x = (lg_tensor *)1, *y = (lg_tensor *)1;
    lg_sine_opts s = lg_sine_opts_default();
    ASSERT_FAILS(lg_synth_sine(s, NULL, &y), LG_ERR_INVALID_ARGUMENT, "lg_synth_sine: x or y is NULL");
    ck_assert_ptr_null(y);
    s.n = 0;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_INVALID_ARGUMENT, "lg_synth_sine: n 0: must be >= 1");
    ck_assert(x == NULL && y == NULL);
    s = lg_sine_opts_default();
    s.steps = -3;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_INVALID_ARGUMENT, "steps -3: must be >= 1");
    s = lg_sine_opts_default();
    s.dt = 0;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_INVALID_ARGUMENT, "dt 0: must be finite and nonzero");
    s.dt = INFINITY;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_INVALID_ARGUMENT, "dt inf");
    s = lg_sine_opts_default();
    s.dtype = LG_I32;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_DTYPE, "lg_synth_sine: dtype 2: needs LG_F32 or LG_F64");
    s = lg_sine_opts_default();
    s.n = 1LL << 40;
    s.steps = 1LL << 40;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_SHAPE, "too many elements");

    lg_adding_opts a = lg_adding_opts_default();
    ASSERT_FAILS(lg_synth_adding(a, &x, NULL), LG_ERR_INVALID_ARGUMENT, "lg_synth_adding: x or y is NULL");
    ck_assert_ptr_null(x);
    a.steps = 1;
    ASSERT_FAILS(lg_synth_adding(a, &x, &y), LG_ERR_INVALID_ARGUMENT, "lg_synth_adding: steps 1: must be >= 2");
    a = lg_adding_opts_default();
    a.n = -1;
    ASSERT_FAILS(lg_synth_adding(a, &x, &y), LG_ERR_INVALID_ARGUMENT, "n -1");
    a = lg_adding_opts_default();
    a.dtype = (lg_dtype)5;
    ASSERT_FAILS(lg_synth_adding(a, &x, &y), LG_ERR_DTYPE, "dtype 5");

    lg_copy_opts c = lg_copy_opts_default();
    ASSERT_FAILS(lg_synth_copy(c, NULL, NULL), LG_ERR_INVALID_ARGUMENT, "lg_synth_copy: x or y is NULL");
    c.n = 0;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_INVALID_ARGUMENT, "lg_synth_copy: n 0");
    c = lg_copy_opts_default();
    c.length = 0;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_INVALID_ARGUMENT, "length 0: must be >= 1");
    c = lg_copy_opts_default();
    c.blanks = -1;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_INVALID_ARGUMENT, "blanks -1: must be >= 0");
    c = lg_copy_opts_default();
    c.symbols = 0;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_INVALID_ARGUMENT, "symbols 0: must lie in [1, 2147483647)");
    c.symbols = INT32_MAX;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_INVALID_ARGUMENT, "symbols 2147483647");
    c = lg_copy_opts_default();
    c.length = INT64_MAX / 2;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_SHAPE, "too many steps");
    c = lg_copy_opts_default();
    c.blanks = INT64_MAX - 5;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_SHAPE, "too many steps");
    ck_assert(x == NULL && y == NULL);
}
END_TEST

/* ---- the El Nino series end to end --------------------------------------------------------- */

/* The forecasting recipe on the committed series: read the temperature
 * column, standardise with the first 600 months, and window 12 months to
 * predict the month after (delay 12). */
START_TEST(test_elnino_forecasting_windows)
{
    lg_csv_opts co = lg_csv_opts_default();
    const char *cols[] = {"sst"};
    co.names = cols;
    co.n_columns = 1;
    lg_tensor *sst = NULL;
    ASSERT_OK(lg_csv_read(ELNINO_CSV, co, &sst));
    assert_shape(sst, lg_shape_of(2, 732, 1));
    ck_assert_double_eq(lg_tensor_get(sst, 0), 23.11f);
    ck_assert_double_eq(lg_tensor_get(sst, 731), 22.07f);
    double raw12 = lg_tensor_get(sst, 12);
    lg_tensor *mean = NULL, *std = NULL;
    ASSERT_OK(lg_standardize(sst, 600, &mean, &std));
    double sum = 0;
    for (int i = 0; i < 600; i++) sum += lg_tensor_get(sst, i);
    ck_assert_double_eq_tol(sum / 600, 0, 1e-4);
    ck_assert(lg_tensor_get(mean, 0) > 22 && lg_tensor_get(mean, 0) < 24);
    ck_assert(lg_tensor_get(std, 0) > 1 && lg_tensor_get(std, 0) < 3);
    lg_tensor *target = lg_test_tensor(LG_F32, lg_shape_of(1, 732), lg_tensor_cdata(sst)); /* [732] */
    lg_timeseries_opts o = lg_timeseries_opts_default(12);
    o.delay = 12;
    o.end_index = 600;
    o.batch.batch_size = 64;
    lg_dataset *train = NULL;
    ASSERT_OK(lg_timeseries_dataset_new(sst, target, o, &train));
    ck_assert_int_eq(lg_dataset_size(train), 600 - 11); /* num_seqs = 600 - 0 - 11 */
    ck_assert_int_eq(lg_dataset_batch_count(train), 10);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(train, 0, &bx, &by));
    assert_shape(bx, lg_shape_of(3, 64, 12, 1));
    assert_shape(by, lg_shape_of(1, 64));
    for (int j = 0; j < 12; j++) ck_assert_double_eq(lg_tensor_get(bx, j), lg_tensor_get(sst, j));
    ck_assert_double_eq(lg_tensor_get(by, 0), lg_tensor_get(sst, 12));
    ck_assert_double_eq_tol(lg_tensor_get(by, 0) * lg_tensor_get(std, 0) + lg_tensor_get(mean, 0), raw12, 1e-5);
    lg_dataset_free(train);
    lg_tensor_free(target);
    lg_tensor_free(mean);
    lg_tensor_free(std);
    lg_tensor_free(sst);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *io = tcase_create("files");
    tcase_add_checked_fixture(io, tmp_setup, tmp_teardown);
    tcase_add_test(io, test_idx_ubyte_plain);
    tcase_add_test(io, test_idx_gzip);
    tcase_add_test(io, test_idx_every_type);
    tcase_add_test(io, test_idx_errors_arguments);
    tcase_add_test(io, test_idx_errors_gzip);
    tcase_add_test(io, test_idx_errors_header);
    tcase_add_test(io, test_idx_errors_data_length);
    tcase_add_test(io, test_fashion_mnist_t10k);
    tcase_add_test(io, test_idx_zero_dim_rule);
    tcase_add_test(io, test_loaders_refuse_non_regular_files);
    tcase_add_test(io, test_csv_header_all_columns);
    tcase_add_test(io, test_csv_select_columns);
    tcase_add_test(io, test_csv_no_header_delimiter_quotes);
    tcase_add_test(io, test_csv_quoted_names_and_text_column);
    tcase_add_test(io, test_csv_errors_arguments);
    tcase_add_test(io, test_csv_errors_file);
    tcase_add_test(io, test_csv_errors_cells);
    tcase_add_test(io, test_csv_errors_selection);
    tcase_add_test(io, test_csv_elnino);
    tcase_add_test(io, test_csv_nonfinite);
    tcase_add_test(io, test_csv_nul_byte);
    tcase_add_test(io, test_csv_read_errors);
    tcase_add_test(io, test_csv_line_beyond_memory_limit);
    suite_add_tcase(s, io);
    TCase *ds = tcase_create("datasets");
    tcase_add_test(ds, test_dataset_in_order);
    tcase_add_test(ds, test_dataset_drop_last_and_big_batch);
    tcase_add_test(ds, test_dataset_shuffle);
    tcase_add_test(ds, test_dataset_dtypes_ranks_no_y);
    tcase_add_test(ds, test_dataset_errors);
    tcase_add_test(ds, test_split);
    tcase_add_test(ds, test_split_errors);
    tcase_add_test(ds, test_windows_rate_and_stride);
    tcase_add_test(ds, test_windows_start_end);
    tcase_add_test(ds, test_windows_keras_example_1);
    tcase_add_test(ds, test_windows_delay);
    tcase_add_test(ds, test_windows_short_targets);
    tcase_add_test(ds, test_windows_batches_and_shuffle);
    tcase_add_test(ds, test_windows_errors);
    tcase_add_test(ds, test_elnino_forecasting_windows);
    suite_add_tcase(s, ds);
    TCase *pre = tcase_create("preprocess");
    tcase_add_test(pre, test_standardize);
    tcase_add_test(pre, test_standardize_errors);
    tcase_add_test(pre, test_pad_sequences);
    tcase_add_test(pre, test_pad_sequences_empty);
    tcase_add_test(pre, test_pad_sequences_errors);
    tcase_add_test(pre, test_pad_post_masks_rnn);
    suite_add_tcase(s, pre);
    TCase *syn = tcase_create("synthetic");
    tcase_add_test(syn, test_synth_sine);
    tcase_add_test(syn, test_synth_adding);
    tcase_add_test(syn, test_synth_copy);
    tcase_add_test(syn, test_synth_errors);
    suite_add_tcase(s, syn);
    return s;
}

int main(void) { return lg_check_run(data_suite()); }
