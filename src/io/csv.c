/* csv.c — numeric CSV files into [rows, cols] tensors. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "graph/datafiles.h"
#include "graph/internal.h"
#include "io/file.h"

lg_csv_opts lg_csv_opts_default(void)
{
    return (lg_csv_opts){
        .delimiter = ',', .header = true, .columns = NULL, .names = NULL, .n_columns = 0, .dtype = LG_F32,
        .allow_nonfinite = false};
}

/* One reading: the file, the current line split into fields, the header's
 * names, the selected columns and the values read so far. */
typedef struct csv {
    const char *path;
    char delim;
    lg_dtype dtype;
    bool allow_nonfinite;
    FILE *f;
    char *line;
    size_t line_cap;
    long long line_no;
    char **field;
    int n_field, field_cap;
    char **names; /* the header's fields (copies), or NULL */
    int n_names;
    int *sel;
    int n_sel;
    double *vals;
    size_t n_vals, vals_cap;
} csv;

static void csv_free(csv *c)
{
    if (c->f) fclose(c->f);
    free(c->line);
    free(c->field);
    for (int i = 0; i < c->n_names; i++) free(c->names[i]);
    free(c->names);
    free(c->sel);
    free(c->vals);
}

static lg_status oom(const csv *c) { return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_csv_read: %s: out of memory", c->path); }

static bool is_blank(char ch, char delim) { return (ch == ' ' || ch == '\t') && ch != delim; }

static lg_status push_field(csv *c, char *s)
{
    if (c->n_field == c->field_cap) {
        int cap = c->field_cap ? 2 * c->field_cap : 16;
        char **grown = realloc(c->field, (size_t)cap * sizeof *grown);
        if (!grown) return oom(c);
        c->field = grown;
        c->field_cap = cap;
    }
    c->field[c->n_field++] = s;
    return LG_OK;
}

/* Split c->line in place into c->field: quotes removed ("" is a quote),
 * blanks around fields trimmed. */
static lg_status split(csv *c)
{
    c->n_field = 0;
    char *p = c->line;
    for (;;) {
        while (is_blank(*p, c->delim)) p++;
        char *start = p, *end;
        if (*p == '"') {
            char *w = p++;
            for (;;) {
                if (!*p)
                    return lg_fail(LG_ERR_IO, "lg_csv_read: %s:%lld: column %d: unterminated quote", c->path,
                                   c->line_no, c->n_field);
                if (*p == '"' && p[1] != '"') break;
                if (*p == '"') p++;
                *w++ = *p++;
            }
            end = w;
            p++;
            while (is_blank(*p, c->delim)) p++;
            if (*p && *p != c->delim)
                return lg_fail(LG_ERR_IO, "lg_csv_read: %s:%lld: column %d: text after a closing quote", c->path,
                               c->line_no, c->n_field);
        } else {
            while (*p && *p != c->delim) p++;
            end = p;
            while (end > start && is_blank(end[-1], c->delim)) end--;
        }
        char next = *p;
        *end = '\0';
        lg_status st = push_field(c, start);
        if (st) return st;
        if (!next) return LG_OK;
        p++;
    }
}

/* A NUL byte at line[at]: refused, since C strings would end the line
 * there and drop the rest. The column is the field it falls in. */
static lg_status nul_byte(const csv *c, size_t at)
{
    int col = 0;
    bool quoted = false;
    for (size_t i = 0; i < at; i++) {
        if (c->line[i] == '"') quoted = !quoted;
        else if (c->line[i] == c->delim && !quoted) col++;
    }
    return lg_fail(LG_ERR_IO, "lg_csv_read: %s:%lld: column %d: a NUL byte (at byte %zu of the line)", c->path,
                   c->line_no, col, at + 1);
}

/* The next line that is not blank, split; false at the end of the file.
 * getline failing before the end of the file (a read error, or no memory
 * for a long line) is an error, never a short read. */
static lg_status next_line(csv *c, bool *got)
{
    *got = false;
    for (;;) {
        errno = 0;
        ssize_t len = getline(&c->line, &c->line_cap, c->f);
        if (len < 0) {
            int err = errno;
            if (!ferror(c->f) && feof(c->f)) return LG_OK;
            if (err == ENOMEM)
                return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_csv_read: %s:%lld: out of memory reading the line", c->path,
                               c->line_no + 1);
            return lg_fail(LG_ERR_IO, "lg_csv_read: %s:%lld: reading the line failed: %s", c->path, c->line_no + 1,
                           err ? strerror(err) : "unknown error");
        }
        c->line_no++;
        const char *nul = memchr(c->line, '\0', (size_t)len);
        if (nul) return nul_byte(c, (size_t)(nul - c->line));
        while (len > 0 && (c->line[len - 1] == '\n' || c->line[len - 1] == '\r')) c->line[--len] = '\0';
        char *p = c->line;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) continue;
        *got = true;
        return split(c);
    }
}

/* Resolve the selection against the first line's fields. */
static lg_status select_columns(csv *c, lg_csv_opts o)
{
    c->n_sel = o.columns || o.names ? o.n_columns : c->n_field;
    c->sel = malloc((size_t)c->n_sel * sizeof *c->sel);
    if (!c->sel) return oom(c);
    for (int i = 0; i < c->n_sel; i++) {
        if (o.columns) {
            if (o.columns[i] < 0 || o.columns[i] >= c->n_field)
                return lg_fail(LG_ERR_IO,
                               "lg_csv_read: %s:%lld: column index %d (columns[%d]) outside the %d fields of the line",
                               c->path, c->line_no, o.columns[i], i, c->n_field);
            c->sel[i] = o.columns[i];
        } else if (o.names) {
            c->sel[i] = -1;
            for (int j = 0; j < c->n_names && c->sel[i] < 0; j++)
                if (o.names[i] && strcmp(o.names[i], c->names[j]) == 0) c->sel[i] = j;
            if (c->sel[i] < 0)
                return lg_fail(LG_ERR_IO, "lg_csv_read: %s:%lld: no column named \"%s\" (names[%d]) in the header",
                               c->path, c->line_no, o.names[i] ? o.names[i] : "(null)", i);
        } else {
            c->sel[i] = i;
        }
    }
    return LG_OK;
}

/* The selected cells of the current line appended to c->vals. */
static lg_status parse_row(csv *c, int n_expected, long long first_line)
{
    if (c->n_field != n_expected)
        return lg_fail(LG_ERR_IO, "lg_csv_read: %s:%lld: %d fields, expected %d as in line %lld", c->path, c->line_no,
                       c->n_field, n_expected, first_line);
    if (c->n_vals + (size_t)c->n_sel > c->vals_cap) {
        size_t cap = c->vals_cap ? 2 * c->vals_cap : 1024;
        while (cap < c->n_vals + (size_t)c->n_sel) cap *= 2;
        double *grown = realloc(c->vals, cap * sizeof *grown);
        if (!grown) return oom(c);
        c->vals = grown;
        c->vals_cap = cap;
    }
    for (int i = 0; i < c->n_sel; i++) {
        const char *cell = c->field[c->sel[i]];
        char *end;
        double v = strtod(cell, &end);
        if (!*cell || *end) {
            const char *name = c->names ? c->names[c->sel[i]] : NULL;
            return lg_fail(LG_ERR_IO, "lg_csv_read: %s:%lld: column %d%s%s%s: \"%s\" is not a number", c->path,
                           c->line_no, c->sel[i], name ? " (\"" : "", name ? name : "", name ? "\")" : "", cell);
        }
        /* an f32 cell beyond FLT_MAX would be inf */
        bool nonfinite = !isfinite(v) || (c->dtype == LG_F32 && fabs(v) > FLT_MAX);
        if (nonfinite && !c->allow_nonfinite) {
            const char *name = c->names ? c->names[c->sel[i]] : NULL;
            return lg_fail(LG_ERR_IO, "lg_csv_read: %s:%lld: column %d%s%s%s: \"%s\" is %s (allow_nonfinite accepts it)",
                           c->path, c->line_no, c->sel[i], name ? " (\"" : "", name ? name : "", name ? "\")" : "",
                           cell, isnan(v) ? "nan" : isinf(v) ? "infinite or beyond f64's range" : "beyond f32's range");
        }
        if (nonfinite && !isnan(v)) v = copysign(INFINITY, v);
        c->vals[c->n_vals++] = v;
    }
    return LG_OK;
}

static lg_status check_opts(const char *path, lg_csv_opts o)
{
    if (o.dtype != LG_F32 && o.dtype != LG_F64)
        return lg_fail(LG_ERR_DTYPE, "lg_csv_read: %s: dtype %d: needs LG_F32 or LG_F64", path, (int)o.dtype);
    if (o.columns && o.names)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_csv_read: %s: both columns and names given: select by one", path);
    if ((o.columns || o.names) && o.n_columns < 1)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_csv_read: %s: n_columns %d with a column list: must be >= 1", path,
                       o.n_columns);
    if (o.names && !o.header)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_csv_read: %s: columns selected by name need header true", path);
    return LG_OK;
}

static lg_status read_all(csv *c, lg_csv_opts o)
{
    bool got;
    lg_status st = next_line(c, &got);
    if (st) return st;
    if (!got) return lg_fail(LG_ERR_IO, "lg_csv_read: %s: empty file", c->path);
    long long first_line = c->line_no;
    int n_expected = c->n_field;
    if (o.header) {
        c->names = calloc((size_t)c->n_field, sizeof *c->names);
        if (!c->names) return oom(c);
        for (; c->n_names < c->n_field; c->n_names++)
            if (!(c->names[c->n_names] = strdup(c->field[c->n_names]))) return oom(c);
    }
    st = select_columns(c, o);
    if (!st && !o.header) st = parse_row(c, n_expected, first_line);
    while (!st) {
        st = next_line(c, &got);
        if (st || !got) break;
        st = parse_row(c, n_expected, first_line);
    }
    if (!st && c->n_vals == 0)
        return lg_fail(LG_ERR_IO, "lg_csv_read: %s: no data rows after the header on line %lld", c->path, first_line);
    return st;
}

lg_status lg_csv_read(const char *path, lg_csv_opts o, lg_tensor **out)
{
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_csv_read: out is NULL");
    *out = NULL;
    if (!path) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_csv_read: path is NULL");
    lg_status st = check_opts(path, o);
    if (st) return st;
    csv c = {.path = path, .delim = o.delimiter, .dtype = o.dtype, .allow_nonfinite = o.allow_nonfinite};
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "lg_csv_read: %s", path);
    int fd;
    struct stat fst;
    st = lg_open_regular(path, what, &fd, &fst);
    if (st) return st;
    if (!(c.f = fdopen(fd, "r"))) {
        close(fd);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_csv_read: %s: out of memory", path);
    }
    st = read_all(&c, o);
    if (!st) {
        int64_t rows = (int64_t)(c.n_vals / (size_t)c.n_sel);
        st = lg_tensor_new(o.dtype, (lg_shape){.rank = 2, .dims = {rows, c.n_sel}}, out);
        for (size_t i = 0; !st && i < c.n_vals; i++) lg_tensor_set(*out, (int64_t)i, c.vals[i]);
    }
    csv_free(&c);
    return st;
}
