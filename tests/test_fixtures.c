/*
 * test_fixtures.c — loopgrad's forward values and gradients against golden
 * values from PyTorch, an independent implementation.
 *
 * tests/fixtures/ops.txt is made by tests/fixtures/make_fixtures.py (run it
 * with a Python that has torch; it documents the cases). Each case holds f64
 * or i32 inputs, the forward output y, a random cotangent ct shaped like y, and
 * for each differentiable input x the product ct . dy/dx. Here every case is
 * rebuilt from ops.h by the builder of the same name, its inputs fed as
 * placeholders, and y and d sum(y * ct) / dx (lg_grad) fetched with one
 * lg_graph_run. Every element must satisfy
 *     |got - want| <= 1e-9 + 1e-7 * |want|.
 *
 * Format loopgrad-fixture v1: whitespace-separated tokens; '#' at the start
 * of a token comments to the end of the line; the first line is exactly the
 * version line.
 *
 *     loopgrad-fixture v1
 *     case NAME
 *     input NAME DTYPE RANK D0 .. D{RANK-1}   then prod(D) values (f64 or i32)
 *     output f64 RANK D..                     then the values of y
 *     cotangent f64 RANK D..                  then ct, shaped like y
 *     grad NAME f64 RANK D..                  then d sum(y * ct) / d input NAME
 *     end
 *
 * Inputs come in the order the builder takes them; an input without a grad
 * record gets no gradient checked. The reader checks every count, shape and
 * name, and reports "ops.txt:LINE: what" on the first problem. A case in the
 * file without a builder, or a builder without a case, is a failure.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "graph/loopgrad.h"

#ifndef LG_TEST_DATA_DIR
#error "LG_TEST_DATA_DIR must be the directory holding ops.txt, as a string literal"
#endif

#define FX_VERSION_LINE "loopgrad-fixture v1"
#define FX_PATH LG_TEST_DATA_DIR "/ops.txt"
#define FX_MAX_INPUTS 4
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

typedef struct fx_reader {
    FILE *f;
    const char *path;
    int line;     /* the line being read */
    int tok_line; /* the line the last token started on */
    char tok[128];
    fx_file *out;
} fx_reader;

static bool fx_fail(fx_reader *r, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->out->error, sizeof r->out->error, "%s:%d: %s", r->path, r->tok_line, msg);
    return false;
}

/* The next token into r->tok, skipping whitespace and comments. False at end
 * of file (r->tok is then ""). */
static bool fx_next(fx_reader *r)
{
    int c;
    r->tok[0] = '\0';
    for (;;) {
        c = getc(r->f);
        if (c == EOF) return false;
        if (c == '\n') {
            r->line++;
        } else if (c == '#') {
            while ((c = getc(r->f)) != EOF && c != '\n') {}
            if (c == EOF) return false;
            r->line++;
        } else if (!isspace(c)) {
            break;
        }
    }
    r->tok_line = r->line;
    size_t n = 0;
    for (; c != EOF && !isspace(c); c = getc(r->f)) {
        if (n + 1 < sizeof r->tok) r->tok[n] = (char)c;
        n++;
    }
    if (c != EOF) ungetc(c, r->f); /* a newline is counted on the next call */
    r->tok[n < sizeof r->tok ? n : sizeof r->tok - 1] = '\0';
    if (n >= sizeof r->tok) return fx_fail(r, "token \"%.20s...\" too long", r->tok);
    return true;
}

static bool fx_expect_token(fx_reader *r, const char *what)
{
    if (fx_next(r)) return true;
    if (r->out->error[0] == '\0') fx_fail(r, "file ends where %s should be", what);
    return false;
}

static bool fx_long(fx_reader *r, const char *what, long lo, long hi, long *v)
{
    if (!fx_expect_token(r, what)) return false;
    char *end;
    errno = 0;
    *v = strtol(r->tok, &end, 10);
    if (*end != '\0' || end == r->tok || errno != 0 || *v < lo || *v > hi)
        return fx_fail(r, "%s \"%s\" is not an integer in [%ld, %ld]", what, r->tok, lo, hi);
    return true;
}

/* [NAME] DTYPE RANK DIMS... then the values. want_f64 refuses i32. */
static bool fx_read_array(fx_reader *r, fx_array *a, bool named, bool want_f64)
{
    if (named) {
        if (!fx_expect_token(r, "a name")) return false;
        if (strlen(r->tok) >= FX_NAME) return fx_fail(r, "name \"%s\" too long", r->tok);
        strcpy(a->name, r->tok);
    }
    if (!fx_expect_token(r, "a dtype")) return false;
    if (strcmp(r->tok, "f64") == 0) {
        a->dtype = LG_F64;
    } else if (strcmp(r->tok, "i32") == 0 && !want_f64) {
        a->dtype = LG_I32;
    } else {
        return fx_fail(r, "dtype \"%s\", want %s", r->tok, want_f64 ? "f64" : "f64 or i32");
    }
    long rank, dim;
    if (!fx_long(r, "rank", 0, LG_MAX_RANK, &rank)) return false;
    a->shape.rank = (int)rank;
    for (int i = 0; i < rank; i++) {
        if (!fx_long(r, "dim", 1, 1L << 20, &dim)) return false;
        a->shape.dims[i] = dim;
    }
    int64_t n = lg_shape_numel(a->shape);
    if (n > (1 << 20)) return fx_fail(r, "%lld values is more than a fixture needs", (long long)n);
    a->v = malloc((size_t)n * sizeof *a->v);
    if (a->v == NULL) return fx_fail(r, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        if (!fx_expect_token(r, "a value")) return false;
        char *end;
        double v = strtod(r->tok, &end);
        if (*end != '\0' || end == r->tok || !isfinite(v))
            return fx_fail(r, "value %lld of %lld is \"%s\", not a finite number", (long long)i, (long long)n,
                           r->tok);
        if (a->dtype == LG_I32 && (v != floor(v) || fabs(v) > 2147483647.0))
            return fx_fail(r, "i32 value \"%s\" is not an int32", r->tok);
        a->v[i] = v;
    }
    return true;
}

static void fx_case_free(fx_case *c)
{
    for (int i = 0; i < FX_MAX_INPUTS; i++) {
        free(c->inputs[i].v);
        free(c->grads[i].v);
    }
    free(c->output.v);
    free(c->cotangent.v);
}

static void fx_file_free(fx_file *fx)
{
    for (int i = 0; i < fx->n; i++) fx_case_free(&fx->cases[i]);
    free(fx->cases);
    fx->cases = NULL;
    fx->n = 0;
}

/* Reads one case after its "case" token, through "end". */
static bool fx_read_case(fx_reader *r, fx_case *c)
{
    c->line = r->tok_line;
    if (!fx_expect_token(r, "a case name")) return false;
    if (strlen(r->tok) >= FX_NAME) return fx_fail(r, "case name \"%s\" too long", r->tok);
    strcpy(c->name, r->tok);
    for (;;) {
        if (!fx_expect_token(r, "a record or \"end\"")) return false;
        if (strcmp(r->tok, "end") == 0) break;
        if (strcmp(r->tok, "input") == 0) {
            if (c->n_inputs == FX_MAX_INPUTS) return fx_fail(r, "more than %d inputs", FX_MAX_INPUTS);
            fx_array *a = &c->inputs[c->n_inputs++];
            if (!fx_read_array(r, a, true, false)) return false;
            for (int i = 0; i + 1 < c->n_inputs; i++)
                if (strcmp(c->inputs[i].name, a->name) == 0) return fx_fail(r, "input %s given twice", a->name);
        } else if (strcmp(r->tok, "output") == 0 || strcmp(r->tok, "cotangent") == 0) {
            fx_array *a = r->tok[0] == 'o' ? &c->output : &c->cotangent;
            if (a->v != NULL) return fx_fail(r, "%s given twice", r->tok);
            if (!fx_read_array(r, a, false, true)) return false;
        } else if (strcmp(r->tok, "grad") == 0) {
            fx_array g = {0};
            if (!fx_read_array(r, &g, true, true)) {
                free(g.v);
                return false;
            }
            int k = 0;
            while (k < c->n_inputs && strcmp(c->inputs[k].name, g.name) != 0) k++;
            bool ok = k < c->n_inputs && c->inputs[k].dtype == LG_F64 && c->grads[k].v == NULL &&
                      lg_shape_equal(g.shape, c->inputs[k].shape);
            if (!ok) {
                free(g.v);
                return fx_fail(r, "grad %s: no earlier f64 input of that name and shape, or a second grad",
                               g.name);
            }
            c->grads[k] = g;
        } else {
            return fx_fail(r, "unknown record \"%s\" in case %s", r->tok, c->name);
        }
    }
    if (c->output.v == NULL || c->cotangent.v == NULL)
        return fx_fail(r, "case %s lacks its output or cotangent", c->name);
    if (!lg_shape_equal(c->output.shape, c->cotangent.shape))
        return fx_fail(r, "case %s: cotangent not shaped like the output", c->name);
    return true;
}

/* Reads a whole fixture file. On failure fx->error says why and where, and
 * fx holds no cases. */
static bool fx_read(FILE *f, const char *path, fx_file *fx)
{
    memset(fx, 0, sizeof *fx);
    fx_reader r = {.f = f, .path = path, .line = 1, .tok_line = 1, .out = fx};
    char first[64];
    if (fgets(first, sizeof first, f) == NULL) return fx_fail(&r, "empty file, want \"%s\"", FX_VERSION_LINE);
    first[strcspn(first, "\r\n")] = '\0';
    if (strcmp(first, FX_VERSION_LINE) != 0)
        return fx_fail(&r, "version line \"%s\", want \"%s\": regenerate with make_fixtures.py or update the reader",
                       first, FX_VERSION_LINE);
    r.line = 2;
    int cap = 0;
    bool ok = true;
    while (ok && fx_next(&r)) {
        if (strcmp(r.tok, "case") != 0) {
            ok = fx_fail(&r, "\"%s\" where \"case\" should be", r.tok);
            break;
        }
        if (fx->n == cap) {
            cap = cap ? 2 * cap : 64;
            fx_case *grown = realloc(fx->cases, (size_t)cap * sizeof *grown);
            if (grown == NULL) {
                ok = fx_fail(&r, "out of memory");
                break;
            }
            fx->cases = grown;
        }
        fx_case *c = &fx->cases[fx->n++];
        memset(c, 0, sizeof *c);
        ok = fx_read_case(&r, c);
        for (int i = 0; ok && i + 1 < fx->n; i++)
            if (strcmp(fx->cases[i].name, c->name) == 0) ok = fx_fail(&r, "case %s given twice", c->name);
    }
    if (ok && fx->error[0] != '\0') ok = false; /* fx_next failed on a long token */
    if (ok && fx->n == 0) ok = fx_fail(&r, "no cases");
    if (!ok) fx_file_free(fx);
    return ok;
}

/* ---- builders: one per case, named like it ------------------------------------ */
/* X(name, expression of in[0..]) with in[] the case's inputs in file order. */

#define FX_BUILDERS(X)                                                                  \
    X(matmul_nn, lg_matmul(in[0], in[1], false, false))                                 \
    X(matmul_tn, lg_matmul(in[0], in[1], true, false))                                  \
    X(matmul_nt, lg_matmul(in[0], in[1], false, true))                                  \
    X(matmul_tt, lg_matmul(in[0], in[1], true, true))                                   \
    X(matmul_batched, lg_matmul(in[0], in[1], false, false))                            \
    X(matmul_batched_both, lg_matmul(in[0], in[1], false, false))                       \
    X(matmul_batched_ta_tb, lg_matmul(in[0], in[1], true, true))                        \
    X(add_bcast, lg_add(in[0], in[1]))                                                  \
    X(sub_bcast_both, lg_sub(in[0], in[1]))                                             \
    X(mul_bcast, lg_mul(in[0], in[1]))                                                  \
    X(mul_rank0, lg_mul(in[0], in[1]))                                                  \
    X(div_bcast, lg_div(in[0], in[1]))                                                  \
    X(scale_add_scalar, lg_add_scalar(lg_scale(in[0], -1.5), 0.25))                     \
    X(neg, lg_neg(in[0]))                                                               \
    X(exp, lg_exp(in[0]))                                                               \
    X(log, lg_log(in[0]))                                                               \
    X(sqrt, lg_sqrt(in[0]))                                                             \
    X(square, lg_square(in[0]))                                                         \
    X(pow_2_5, lg_pow(in[0], 2.5))                                                      \
    X(tanh, lg_tanh(in[0]))                                                             \
    X(sigmoid, lg_sigmoid(in[0]))                                                       \
    X(hard_sigmoid, lg_hard_sigmoid(in[0]))                                             \
    X(relu, lg_relu(in[0]))                                                             \
    X(elu_alpha1, lg_elu(in[0], 1.0))                                                   \
    X(elu_alpha05, lg_elu(in[0], 0.5))                                                  \
    X(softplus, lg_softplus(in[0]))                                                     \
    X(softsign, lg_softsign(in[0]))                                                     \
    X(abs, lg_abs(in[0]))                                                               \
    X(clip, lg_clip(in[0], -0.5, 0.7))                                                  \
    X(sum_axis1, lg_sum(in[0], (const int[]){1}, 1, false))                             \
    X(sum_axes02_keep, lg_sum(in[0], (const int[]){0, 2}, 2, true))                     \
    X(sum_all, lg_sum(in[0], NULL, 0, false))                                           \
    X(mean_last_keep, lg_mean(in[0], (const int[]){-1}, 1, true))                       \
    X(mean_axes01, lg_mean(in[0], (const int[]){0, 1}, 2, false))                       \
    X(mean_all, lg_mean(in[0], NULL, 0, false))                                         \
    X(max_axis1, lg_max(in[0], (const int[]){1}, 1, false))                             \
    X(max_axes02_keep, lg_max(in[0], (const int[]){0, 2}, 2, true))                     \
    X(max_all, lg_max(in[0], NULL, 0, false))                                           \
    X(max_ties, lg_max(in[0], (const int[]){1}, 1, false))                              \
    X(transpose_201, lg_transpose(in[0], (const int[]){2, 0, 1}))                       \
    X(transpose_reverse, lg_transpose(in[0], NULL))                                     \
    X(slice_axis1, lg_slice(in[0], 1, 1, 3))                                            \
    X(slice_to_end, lg_slice(in[0], 0, 1, -1))                                          \
    X(concat_axis1, lg_concat(in, 2, 1))                                                \
    X(concat_axis0_three, lg_concat(in, 3, 0))                                          \
    X(gather_rows, lg_gather(in[0], in[1]))                                             \
    X(gather_rank1, lg_gather(in[0], in[1]))                                            \
    X(softmax_last, lg_softmax(in[0], -1))                                              \
    X(softmax_axis0, lg_softmax(in[0], 0))                                              \
    X(softmax_large, lg_softmax(in[0], -1))                                             \
    X(log_softmax_last, lg_log_softmax(in[0], -1))                                      \
    X(log_softmax_axis0, lg_log_softmax(in[0], 0))                                      \
    X(log_softmax_large, lg_log_softmax(in[0], -1))                                     \
    X(sigmoid_xent, lg_sigmoid_xent(in[0], in[1]))                                      \
    X(softmax_xent, lg_softmax_xent(in[0], in[1]))                                      \
    X(sparse_softmax_xent, lg_sparse_softmax_xent(in[0], in[1]))                        \
    X(loss_mse, lg_mse(in[0], in[1]))                                                   \
    X(loss_mae, lg_mae(in[0], in[1]))                                                   \
    X(loss_bce_logits, lg_binary_crossentropy(in[0], in[1], true))                      \
    X(loss_bce_logits_large, lg_binary_crossentropy(in[0], in[1], true))                \
    X(loss_bce_probs, lg_binary_crossentropy(in[0], in[1], false))                      \
    X(loss_cce_logits, lg_categorical_crossentropy(in[0], in[1], true))                 \
    X(loss_cce_logits_rank3, lg_categorical_crossentropy(in[0], in[1], true))           \
    X(loss_cce_logits_large, lg_categorical_crossentropy(in[0], in[1], true))           \
    X(loss_cce_probs, lg_categorical_crossentropy(in[0], in[1], false))                 \
    X(loss_scce_logits, lg_sparse_categorical_crossentropy(in[0], in[1], true))         \
    X(loss_scce_logits_rank3, lg_sparse_categorical_crossentropy(in[0], in[1], true))   \
    X(loss_scce_logits_large, lg_sparse_categorical_crossentropy(in[0], in[1], true))   \
    X(loss_scce_probs, lg_sparse_categorical_crossentropy(in[0], in[1], false))

typedef lg_value (*fx_builder)(const lg_value *in);

#define FX_X_FN(name, expr) \
    static lg_value fx_build_##name(const lg_value *in) { return (expr); }
FX_BUILDERS(FX_X_FN)
#undef FX_X_FN

static const struct fx_builder_row {
    const char *name;
    fx_builder build;
} fx_builders[] = {
#define FX_X_ROW(name, expr) {#name, fx_build_##name},
    FX_BUILDERS(FX_X_ROW)
#undef FX_X_ROW
};

#define FX_N_BUILDERS ((int)(sizeof fx_builders / sizeof fx_builders[0]))

static fx_builder fx_find_builder(const char *name)
{
    for (int i = 0; i < FX_N_BUILDERS; i++)
        if (strcmp(fx_builders[i].name, name) == 0) return fx_builders[i].build;
    return NULL;
}

/* ---- comparing ----------------------------------------------------------------- */

/* "[1, 0, 2]": the multi-index of flat element i of shape s. */
static const char *fx_index_str(lg_shape s, int64_t i, char *buf, size_t size)
{
    int64_t idx[LG_MAX_RANK];
    for (int d = s.rank - 1; d >= 0; d--) {
        idx[d] = i % s.dims[d];
        i /= s.dims[d];
    }
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < s.rank && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, d ? ", %lld" : "%lld", (long long)idx[d]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

/* Compares got with want; on a mismatch appends a line naming the case, what
 * was compared and its worst element to msg. Returns whether all elements
 * are within tolerance. */
static bool fx_compare(const char *case_name, const char *what, const lg_tensor *got, const fx_array *want,
                       char *msg, size_t size)
{
    size_t used = strlen(msg);
    char a[64], b[64];
    if (got == NULL || !lg_shape_equal(lg_tensor_shape(got), want->shape) || lg_tensor_dtype(got) != LG_F64) {
        snprintf(msg + used, size - used, "\n  %s %s: got %s %s, want f64 %s", case_name, what,
                 got ? lg_dtype_name(lg_tensor_dtype(got)) : "no tensor",
                 got ? lg_shape_str(lg_tensor_shape(got), a, sizeof a) : "", lg_shape_str(want->shape, b, sizeof b));
        return false;
    }
    int64_t n = lg_shape_numel(want->shape), worst = -1, bad = 0;
    double worst_excess = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double g = lg_tensor_get(got, i), w = want->v[i];
        double err = fabs(g - w), tol = FX_ATOL + FX_RTOL * fabs(w);
        if (err <= tol) continue; /* NaN fails here */
        double excess = isnan(err) ? INFINITY : err - tol;
        bad++;
        if (worst < 0 || excess > worst_excess) {
            worst = i;
            worst_excess = excess;
        }
    }
    if (bad == 0) return true;
    double g = lg_tensor_get(got, worst), w = want->v[worst];
    snprintf(msg + used, size - used,
             "\n  %s %s: %lld of %lld elements off; worst %s: got %.17g, want %.17g (|diff| %.3g, tol %.3g)",
             case_name, what, (long long)bad, (long long)n, fx_index_str(want->shape, worst, a, sizeof a), g, w,
             fabs(g - w), FX_ATOL + FX_RTOL * fabs(w));
    return false;
}

static lg_tensor *fx_tensor(const fx_array *a)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(a->dtype, a->shape, &t), LG_OK);
    int64_t n = lg_shape_numel(a->shape);
    for (int64_t i = 0; i < n; i++) lg_tensor_set(t, i, a->v[i]);
    return t;
}

/* ---- tests ----------------------------------------------------------------------- */

static fx_file fx; /* ops.txt, read once in main() before the runner forks */

START_TEST(test_file_reads)
{
    ck_assert_msg(fx.error[0] == '\0', "%s", fx.error);
    ck_assert_int_gt(fx.n, 0);
}
END_TEST

START_TEST(test_every_case_has_builder)
{
    char missing[1024] = "";
    int n = 0;
    for (int i = 0; i < fx.n; i++) {
        if (fx_find_builder(fx.cases[i].name) != NULL) continue;
        size_t used = strlen(missing);
        snprintf(missing + used, sizeof missing - used, " %s", fx.cases[i].name);
        n++;
    }
    ck_assert_msg(n == 0, "%d case(s) in ops.txt have no builder in FX_BUILDERS:%s", n, missing);
}
END_TEST

START_TEST(test_every_builder_has_case)
{
    ck_assert_msg(fx.n > 0, "ops.txt was not read: %s", fx.error);
    char missing[1024] = "";
    int n = 0;
    for (int b = 0; b < FX_N_BUILDERS; b++) {
        int i = 0;
        while (i < fx.n && strcmp(fx.cases[i].name, fx_builders[b].name) != 0) i++;
        if (i < fx.n) continue;
        size_t used = strlen(missing);
        snprintf(missing + used, sizeof missing - used, " %s", fx_builders[b].name);
        n++;
    }
    ck_assert_msg(n == 0, "%d builder(s) have no case in ops.txt (rerun make_fixtures.py?):%s", n, missing);
}
END_TEST

/* The reader on small texts: one that must read, and damaged ones that must be
 * refused with a message naming the problem. */
static const struct {
    const char *text;
    const char *error; /* a substring of the expected error; NULL: reads */
} fx_reader_rows[] = {
    {"loopgrad-fixture v1\n# c\ncase k\ninput x f64 1 2\n1 -2.5\ninput i i32 0\n3\noutput f64 0\n4\n"
     "cotangent f64 0\n0.5\ngrad x f64 1 2\n0.25 1e-3\nend\n",
     NULL},
    {"loopgrad-fixture v2\ncase k\nend\n", "version line \"loopgrad-fixture v2\", want \"loopgrad-fixture v1\""},
    {"loopgrad-fixture\n", "version line"},
    {"", "empty file"},
    {"loopgrad-fixture v1\n", "no cases"},
    {"loopgrad-fixture v1\ncase k\ninput x f64 1 3\n1 2\noutput f64 0\n", ":5: value 2 of 3 is \"output\""},
    {"loopgrad-fixture v1\ncase k\ninput x f64 1 2\n1 2\n", "file ends where a record"},
    {"loopgrad-fixture v1\ncase k\ninput x f64 1 2\n1 2\noutput f64 0\n1\ncotangent f64 0\n1\ngrad y f64 1 2\n1 2\nend\n",
     "grad y"},
    {"loopgrad-fixture v1\ncase k\ninput x f32 1 2\n1 2\n", "dtype \"f32\""},
    {"loopgrad-fixture v1\ncase k\ninput x i32 1 2\n1 2.5\n", "not an int32"},
    {"loopgrad-fixture v1\ncase k\ninput x f64 1 1\n1\noutput f64 0\n1\nend\n", "lacks its output or cotangent"},
    {"loopgrad-fixture v1\ncase k\ninput x f64 1 1\n1\noutput f64 0\n1\ncotangent f64 1 1\n1\nend\n",
     "cotangent not shaped"},
    {"loopgrad-fixture v1\ncase k\noutput f64 0\n1\ncotangent f64 0\n1\nend\ncase k\noutput f64 0\n1\n"
     "cotangent f64 0\n1\nend\n",
     "case k given twice"},
    {"loopgrad-fixture v1\ncase k\nweight x f64 0\n1\nend\n", "unknown record \"weight\""},
};

START_TEST(test_reader)
{
    const char *text = fx_reader_rows[_i].text;
    const char *want = fx_reader_rows[_i].error;
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    rewind(f);
    fx_file t;
    bool ok = fx_read(f, "t.txt", &t);
    fclose(f);
    if (want == NULL) {
        ck_assert_msg(ok, "row %d should read: %s", _i, t.error);
        ck_assert_int_eq(t.n, 1);
        const fx_case *c = &t.cases[0];
        ck_assert_str_eq(c->name, "k");
        ck_assert_int_eq(c->n_inputs, 2);
        ck_assert_int_eq(c->inputs[1].dtype, LG_I32);
        ck_assert_int_eq(c->inputs[1].shape.rank, 0);
        ck_assert(c->inputs[0].v[1] == -2.5 && c->inputs[1].v[0] == 3.0);
        ck_assert(c->grads[0].v != NULL && c->grads[0].v[1] == 1e-3 && c->grads[1].v == NULL);
        ck_assert(c->output.v[0] == 4.0 && c->cotangent.v[0] == 0.5);
        fx_file_free(&t);
    } else {
        ck_assert_msg(!ok, "row %d should be refused (%s)", _i, want);
        ck_assert_msg(strstr(t.error, want) != NULL, "row %d: error \"%s\" lacks \"%s\"", _i, t.error, want);
        ck_assert_int_eq(t.n, 0);
    }
}
END_TEST

/* One fixture case: build, differentiate, run, compare. */
START_TEST(test_case)
{
    const fx_case *c = &fx.cases[_i];
    fx_builder build = fx_find_builder(c->name);
    ck_assert_msg(build != NULL, "case %s (ops.txt:%d) has no builder", c->name, c->line);

    lg_graph *g = lg_graph_new();
    ck_assert_ptr_nonnull(g);
    lg_value in[FX_MAX_INPUTS], wrt[FX_MAX_INPUTS];
    lg_tensor *feed_t[FX_MAX_INPUTS];
    lg_feed feeds[FX_MAX_INPUTS];
    const fx_array *want_grad[FX_MAX_INPUTS];
    int n_wrt = 0;
    for (int k = 0; k < c->n_inputs; k++) {
        const fx_array *a = &c->inputs[k];
        in[k] = lg_input(g, a->name, a->dtype, a->shape);
        feed_t[k] = fx_tensor(a);
        feeds[k] = (lg_feed){in[k], feed_t[k]};
        if (c->grads[k].v != NULL) {
            wrt[n_wrt] = in[k];
            want_grad[n_wrt++] = &c->grads[k];
        }
    }
    lg_value y = build(in);
    ck_assert_msg(lg_value_ok(y), "case %s: builder failed: %s", c->name,
                  lg_graph_error(g) ? lg_graph_error(g) : "(no graph error)");

    lg_tensor *ct_t = fx_tensor(&c->cotangent);
    lg_value ct = lg_constant(g, "cotangent", ct_t);
    lg_value loss = lg_sum(lg_mul(y, ct), NULL, 0, false);
    ck_assert_msg(lg_value_ok(loss), "case %s: loss: %s", c->name, lg_graph_error(g));

    lg_value fetches[1 + FX_MAX_INPUTS];
    fetches[0] = y;
    lg_status s = lg_grad(g, loss, wrt, n_wrt, fetches + 1);
    ck_assert_msg(s == LG_OK, "case %s: lg_grad: %s: %s", c->name, lg_status_name(s), lg_last_error());

    lg_tensor *out[1 + FX_MAX_INPUTS] = {NULL};
    s = lg_graph_run(g, feeds, c->n_inputs, fetches, 1 + n_wrt, out);
    ck_assert_msg(s == LG_OK, "case %s: lg_graph_run: %s: %s", c->name, lg_status_name(s), lg_last_error());

    char msg[2048] = "";
    bool ok = fx_compare(c->name, "output", out[0], &c->output, msg, sizeof msg);
    for (int j = 0; j < n_wrt; j++) {
        char what[FX_NAME + 8];
        snprintf(what, sizeof what, "grad %s", want_grad[j]->name);
        ok &= fx_compare(c->name, what, out[1 + j], want_grad[j], msg, sizeof msg);
    }
    ck_assert_msg(ok, "case %s (ops.txt:%d) differs from PyTorch:%s", c->name, c->line, msg);

    for (int j = 0; j < 1 + n_wrt; j++) lg_tensor_free(out[j]);
    for (int k = 0; k < c->n_inputs; k++) lg_tensor_free(feed_t[k]);
    lg_tensor_free(ct_t);
    lg_graph_free(g);
}
END_TEST

int main(void)
{
    FILE *f = fopen(FX_PATH, "r");
    if (f == NULL) {
        snprintf(fx.error, sizeof fx.error, "%s: cannot open: %s", FX_PATH, strerror(errno));
    } else {
        fx_read(f, FX_PATH, &fx);
        fclose(f);
    }

    Suite *s = suite_create("fixtures");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, test_file_reads);
    tcase_add_test(tc, test_every_case_has_builder);
    tcase_add_test(tc, test_every_builder_has_case);
    tcase_add_loop_test(tc, test_reader, 0, (int)(sizeof fx_reader_rows / sizeof fx_reader_rows[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("torch");
    tcase_add_loop_test(tc, test_case, 0, fx.n);
    suite_add_tcase(s, tc);

    int status = lg_check_run(s);
    fx_file_free(&fx);
    return status;
}
