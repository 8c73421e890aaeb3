/*
 * fixture_reader.h — the golden-fixture file format (loopgrad-fixture v1),
 * read into memory, and the comparison every fixture suite uses.
 *
 * Format: whitespace-separated tokens; '#' at the start of a token comments
 * to the end of the line; the first line is exactly the version line.
 *
 *     loopgrad-fixture v1
 *     case NAME
 *     input NAME DTYPE RANK D0 .. D{RANK-1}   then prod(D) values (f64 or i32)
 *     output f64 RANK D..                     then the values of y
 *     cotangent f64 RANK D..                  then ct, shaped like y
 *     grad NAME f64 RANK D..                  then d sum(y * ct) / d input NAME
 *     end
 *
 * The reader checks every count, shape and name, and reports "FILE:LINE:
 * what" on the first problem. Values are compared with
 *     |got - want| <= FX_ATOL + FX_RTOL * |want|.
 * Suites using it: test_fixtures.c (ops.txt), test_cells.c (rnn.txt),
 * test_keras_dropout.c (keras_dropout.txt).
 */
#ifndef LG_TEST_FIXTURE_READER_H
#define LG_TEST_FIXTURE_READER_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>

#include "graph/loopgrad.h"

#define FX_VERSION_LINE "loopgrad-fixture v1"
#define FX_MAX_INPUTS 8
#define FX_NAME 64
#define FX_ATOL 1e-9
#define FX_RTOL 1e-7

/* ---- the fixture file ---------------------------------------------------------- */

typedef struct fx_array {
    char name[FX_NAME]; /* the input's name (inputs, grads); "" otherwise */
    lg_dtype dtype;
    lg_shape shape;
    double *v; /* numel values, row-major */
} fx_array;

typedef struct fx_case {
    char name[FX_NAME];
    int line; /* of its "case" record */
    int n_inputs;
    fx_array inputs[FX_MAX_INPUTS];
    fx_array grads[FX_MAX_INPUTS]; /* grads[i] is for inputs[i]; v NULL if none */
    fx_array output, cotangent;
} fx_case;

typedef struct fx_file {
    fx_case *cases;
    int n;
    char error[512]; /* why reading failed; "" when it did not */
} fx_file;

/* Reads a whole fixture file. On failure fx->error says why and where, and
 * fx holds no cases. */
bool fx_read(FILE *f, const char *path, fx_file *fx);
/* fx_read of the file at path; one that cannot be opened is an fx->error
 * too ("PATH: cannot open: why"). */
bool fx_load(const char *path, fx_file *fx);
void fx_file_free(fx_file *fx);
/* The case named name, or NULL. */
const fx_case *fx_find_case(const fx_file *fx, const char *name);
/* The case's input called name (NULL if it has none), and in *grad (when
 * grad is not NULL) its grad record or NULL. */
const fx_array *fx_input(const fx_case *c, const char *name, const fx_array **grad);
/* fx_input of an input the test needs: a Check failure naming the case and
 * the input when it has none (call it inside a test). */
static inline const fx_array *fx_need(const fx_case *c, const char *name, const fx_array **grad)
{
    const fx_array *a = fx_input(c, name, grad);
    ck_assert_msg(a, "case %s has no input %s", c->name, name);
    return a;
}
/* A new f64 tensor holding a's values (NULL when out of memory). */
lg_tensor *fx_to_tensor(const fx_array *a);

/* Compares got with want; on a mismatch appends a line naming the case, what
 * was compared and its worst element to msg. Returns whether all elements
 * are within tolerance. */
bool fx_compare(const char *case_name, const char *what, const lg_tensor *got, const fx_array *want, char *msg,
                size_t size);

#endif
