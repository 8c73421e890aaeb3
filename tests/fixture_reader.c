/* fixture_reader.c — reading loopgrad-fixture v1 files (fixture_reader.h). */
#include "fixture_reader.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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

void fx_file_free(fx_file *fx)
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
bool fx_read(FILE *f, const char *path, fx_file *fx)
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

const fx_case *fx_find_case(const fx_file *fx, const char *name)
{
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->cases[i].name, name) == 0) return &fx->cases[i];
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
bool fx_compare(const char *case_name, const char *what, const lg_tensor *got, const fx_array *want,
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

const fx_array *fx_input(const fx_case *c, const char *name, const fx_array **grad)
{
    for (int k = 0; k < c->n_inputs; k++)
        if (strcmp(c->inputs[k].name, name) == 0) {
            if (grad) *grad = c->grads[k].v ? &c->grads[k] : NULL;
            return &c->inputs[k];
        }
    if (grad) *grad = NULL;
    return NULL;
}

lg_tensor *fx_to_tensor(const fx_array *a)
{
    lg_tensor *t = NULL;
    if (lg_tensor_new(LG_F64, a->shape, &t) != LG_OK) return NULL;
    for (int64_t i = 0; i < lg_shape_numel(a->shape); i++) lg_tensor_set(t, i, a->v[i]);
    return t;
}

bool fx_load(const char *path, fx_file *fx)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        memset(fx, 0, sizeof *fx);
        snprintf(fx->error, sizeof fx->error, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    bool ok = fx_read(f, path, fx);
    fclose(f);
    return ok;
}
