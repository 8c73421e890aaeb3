/*
 * fuzz_csv.c — a libFuzzer target for the CSV reader (datafiles.h). The
 * first input byte picks the options, the rest is the file:
 *
 *     bits 0-1  delimiter: ',' ';' '\t' ' '
 *     bit 2     header
 *     bit 3     dtype f64 (else f32)
 *     bit 4     allow_nonfinite
 *     bit 5     select columns 1 and 0 by index (else every column)
 *
 * lg_csv_read must fail with a message and no tensor, or give a [rows,
 * cols] tensor of the dtype with rows >= 1, as many columns as selected
 * (two when selecting), and only finite values unless allow_nonfinite.
 * The file is never longer than its cells say: rows * cols cells each
 * came from at least one byte. fuzz/run fuzzes it with clang;
 * fuzz/replay.c runs fuzz/corpus/csv/ in the test suite.
 */
#define _GNU_SOURCE /* memfd_create, in fuzz.h */
#include <math.h>

#include "fuzz.h"
#include "graph/datafiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lg_fuzz_one(data, size);
    return 0;
}

lg_status lg_fuzz_one(const uint8_t *data, size_t size)
{
    if (size < 1) return LG_ERR_INVALID_ARGUMENT;
    static const char delims[4] = {',', ';', '\t', ' '};
    static const int cols[2] = {1, 0};
    lg_csv_opts o = lg_csv_opts_default();
    o.delimiter = delims[data[0] & 3];
    o.header = data[0] & 4;
    o.dtype = data[0] & 8 ? LG_F64 : LG_F32;
    o.allow_nonfinite = data[0] & 16;
    if (data[0] & 32) o.columns = cols, o.n_columns = 2;
    char path[64];
    int fd = lg_fuzz_file(data + 1, size - 1, path);
    if (fd < 0) return LG_ERR_IO;
    lg_tensor *t = (lg_tensor *)&fd; /* must become NULL on failure */
    lg_status s = lg_csv_read(path, o, &t);
    close(fd);
    if (s != LG_OK) {
        REQUIRE(t == NULL && lg_last_error()[0] != '\0');
        return s;
    }
    REQUIRE(t != NULL && lg_tensor_dtype(t) == o.dtype);
    lg_shape sh = lg_tensor_shape(t);
    REQUIRE(sh.rank == 2 && sh.dims[0] >= 1 && sh.dims[1] >= 1);
    if (o.columns) REQUIRE(sh.dims[1] == 2);
    else REQUIRE((size_t)(sh.dims[0] * sh.dims[1]) <= size - 1);
    for (int64_t i = 0; i < lg_tensor_numel(t); i++) REQUIRE(o.allow_nonfinite || isfinite(lg_tensor_get(t, i)));
    lg_tensor_free(t);
    return LG_OK;
}
