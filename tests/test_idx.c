/*
 * test_idx.c — IDX files through datafiles.h: plain and gzipped, every
 * type, every broken-file error, the loaders' refusal of files that are not
 * regular, and the real Fashion-MNIST t10k files when installed.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkfifo */

#include <limits.h>
#include <math.h>
#include "data_util.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

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

static Suite *idx_suite(void)
{
    Suite *s = suite_create("idx");
    TCase *idx = tcase_create("idx");
    tcase_add_checked_fixture(idx, tmp_setup, tmp_teardown);
    tcase_add_test(idx, test_idx_ubyte_plain);
    tcase_add_test(idx, test_idx_gzip);
    tcase_add_test(idx, test_idx_every_type);
    tcase_add_test(idx, test_idx_errors_arguments);
    tcase_add_test(idx, test_idx_errors_gzip);
    tcase_add_test(idx, test_idx_errors_header);
    tcase_add_test(idx, test_idx_errors_data_length);
    tcase_add_test(idx, test_fashion_mnist_t10k);
    tcase_add_test(idx, test_idx_zero_dim_rule);
    tcase_add_test(idx, test_loaders_refuse_non_regular_files);
    suite_add_tcase(s, idx);
    return s;
}

int main(void) { return lg_check_run(idx_suite()); }
