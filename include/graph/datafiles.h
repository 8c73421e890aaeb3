/*
 * datafiles.h — reading data files into tensors: IDX (the MNIST and
 * Fashion-MNIST format, gzipped or not) and numeric CSV.
 *
 *     lg_idx_opts io = lg_idx_opts_default();
 *     io.scale = true;                                   // ubyte pixels to [0, 1]
 *     lg_tensor *images = NULL, *labels = NULL;
 *     lg_idx_read("t10k-images-idx3-ubyte.gz", io, &images);   // f32 [10000, 28, 28]
 *     io = lg_idx_opts_default();
 *     io.dtype = LG_I32;
 *     lg_idx_read("t10k-labels-idx1-ubyte.gz", io, &labels);   // i32 [10000]
 *
 *     const char *cols[] = {"p (mbar)", "T (degC)"};
 *     lg_csv_opts co = lg_csv_opts_default();
 *     co.names = cols;
 *     co.n_columns = 2;
 *     lg_tensor *series = NULL;
 *     lg_csv_read("jena_climate_2009_2016.csv", co, &series);  // f32 [rows, 2]
 *
 * Debian's dataset-fashion-mnist package installs Fashion-MNIST under
 * /usr/share/datasets/fashion-mnist/.
 *
 * Ownership: the tensor returned through out is new and belongs to the
 * caller (lg_tensor_free); *out is NULL on failure. Errors are LG_ERR_IO for
 * files that cannot be read or do not hold what the format says, with a
 * message naming the file and what was wrong in it (the field, the line, the
 * column), and LG_ERR_INVALID_ARGUMENT / LG_ERR_DTYPE for bad options.
 */
#ifndef LG_DATAFILES_H
#define LG_DATAFILES_H

#include <stdbool.h>

#include "api.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* ---- IDX --------------------------------------------------------------------- */

typedef struct lg_idx_opts {
    lg_dtype dtype; /* the tensor's dtype */
    bool scale;     /* ubyte data only, to a float dtype: divide by 255, giving [0, 1] */
} lg_idx_opts;

/* dtype LG_F32, no scaling. */
lg_idx_opts lg_idx_opts_default(void);

/* Read an IDX file (gzip-compressed or plain; zlib tells them apart) into
 * *out, shaped by the file's dims ([N, 28, 28] for images, [N] for labels).
 * The format: a big-endian magic 0x0000TTRR with the type byte TT and the
 * rank RR, RR big-endian u32 dims, then the row-major data, big-endian.
 * Every IDX type is read: 0x08 ubyte, 0x09 sbyte, 0x0B i16, 0x0C i32,
 * 0x0D f32, 0x0E f64; values convert to the requested dtype (f32, f64, or
 * i32 from the integer types; i32 values beyond 2^24 lose precision in
 * f32). Errors: LG_ERR_INVALID_ARGUMENT (path or out NULL, scale for data
 * that is not ubyte or to i32), LG_ERR_DTYPE (a dtype out of range, i32
 * from float data), LG_ERR_IO (a missing or unreadable file, a truncated or
 * corrupt gzip stream, a magic without its two zero bytes, an unknown type
 * byte, rank 0 or above 6, a header cut short, dims whose data size
 * overflows, data shorter or longer than the dims say, a path that is not a
 * regular file). The size rule ignores where a zero dim stands: the product
 * of the nonzero dims times the element size must fit in memory's address
 * range, and a zero dim then makes an empty tensor. Data is read as it
 * arrives, so a file claiming huge dims fails at its real end without
 * allocating what the dims claim. */
lg_status lg_idx_read(const char *path, lg_idx_opts o, lg_tensor **out);

/* ---- CSV --------------------------------------------------------------------- */

typedef struct lg_csv_opts {
    char delimiter; /* between fields */
    bool header;    /* the first line names the columns */
    /* Columns to read, in this order (repeats allowed): by 0-based index,
     * or by header name; at most one of the two, NULL for every column. */
    const int *columns;
    const char *const *names;
    int n_columns;  /* entries in columns or names */
    lg_dtype dtype; /* LG_F32 or LG_F64 */
    /* Accept nan, inf and values beyond the dtype's range (read as inf);
     * false (default): refuse them, naming line and column. */
    bool allow_nonfinite;
} lg_csv_opts;

/* delimiter ',', header true, every column, f32, finite values only. */
lg_csv_opts lg_csv_opts_default(void);

/* Read the selected columns of a numeric CSV file into *out [rows, cols].
 * Fields may be quoted ("a,b" with "" for a quote); spaces and tabs around
 * a field are ignored; blank lines are skipped; CRLF line ends are fine.
 * Columns that are not selected are not parsed, so a text column (a date)
 * can sit beside the numbers. A selected cell must be a whole number in
 * strtod's syntax; nan, inf and values that overflow the dtype
 * (1e999, or 1e39 for f32) are refused unless allow_nonfinite. Line numbers in messages
 * count from 1, column numbers from 0 (as in columns), and the column's
 * header name is given when there is a header. Errors: LG_ERR_INVALID_ARGUMENT
 * (path or out NULL, both columns and names, a list with n_columns < 1, names
 * without header), LG_ERR_DTYPE (not f32/f64), LG_ERR_IO (a missing file, an
 * empty file, a header without data rows, a non-numeric cell, a row with
 * another number of fields than the first line, an unknown column name, a
 * column index outside the first line's fields, an unterminated quote,
 * a NUL byte in a line, a non-finite cell, a path that is not a regular
 * file (a named pipe is refused, not waited on), a read error),
 * LG_ERR_OUT_OF_MEMORY (including a line too long to hold in memory: the
 * file is never cut short silently). */
lg_status lg_csv_read(const char *path, lg_csv_opts o, lg_tensor **out);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
