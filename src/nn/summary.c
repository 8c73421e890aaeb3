/* summary.c — a Keras-style model summary (summary.h). */
#include <string.h>

#include "graph/internal.h"
#include "graph/summary.h"

/* One line of the table: "name (type)", "(None, 4)", the count. */
typedef struct row {
    char *layer, *shape;
    int64_t params;
} row;

/* s with control characters as \xNN, in a new string (NULL: out of memory). */
static char *printable(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += *p < 0x20 || *p == 0x7f ? 4 : 1;
    char *out = malloc(n + 1), *q = out;
    for (const unsigned char *p = (const unsigned char *)s; out && *p; p++) {
        if (*p < 0x20 || *p == 0x7f) q += snprintf(q, 5, "\\x%02x", *p);
        else *q++ = (char)*p;
    }
    if (out) *q = '\0';
    return out;
}

/* Columns on a terminal: UTF-8 continuation bytes take none. */
static int width(const char *s)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) w += (*p & 0xc0) != 0x80;
    return w;
}

static char *layer_cell(const char *name, const char *type)
{
    char *n = printable(name), *t = printable(type), *cell = NULL;
    if (n && t && (cell = malloc(strlen(n) + strlen(t) + 4))) sprintf(cell, "%s (%s)", n, t);
    free(n), free(t);
    return cell;
}

/* "(None, 4)": Keras's tuple, unknown dims as None. */
static char *shape_cell(lg_shape s)
{
    char *cell = malloc((size_t)s.rank * 24 + 4), *q = cell;
    if (!cell) return NULL;
    *q++ = '(';
    for (int i = 0; i < s.rank; i++) {
        if (s.dims[i] < 0) q += sprintf(q, "%sNone", i ? ", " : "");
        else q += sprintf(q, "%s%lld", i ? ", " : "", (long long)s.dims[i]);
    }
    strcpy(q, s.rank == 1 ? ",)" : ")");
    return cell;
}

/* 1234567 -> "1,234,567" */
static char *group_digits(int64_t v, char *buf)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v), k = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

static int64_t param_numel(lg_value p) { return lg_tensor_numel(lg_param_tensor(p)); }

static void rule(FILE *f, char c, int w)
{
    for (int i = 0; i < w; i++) fputc(c, f);
    fputc('\n', f);
}

/* The table's rows (n_layers, plus one when some parameter is in no layer). */
static lg_status make_rows(const lg_graph *g, row *rows, int *n_rows)
{
    int n_layers = lg_graph_layer_count(g), n_params = lg_graph_param_count(g);
    bool *listed = calloc((size_t)n_params + 1, sizeof *listed);
    if (!listed) return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_graph_summary: out of memory");
    int n = 0;
    for (int i = 0; i < n_layers; i++, n++) {
        rows[n].layer = layer_cell(lg_graph_layer_name(g, i), lg_graph_layer_type(g, i));
        rows[n].shape = shape_cell(lg_value_shape(lg_graph_layer_output(g, i)));
        for (int k = 0; k < lg_graph_layer_param_count(g, i); k++) {
            lg_value p = lg_graph_layer_param(g, i, k);
            rows[n].params += param_numel(p);
            for (int j = 0; j < n_params; j++) listed[j] = listed[j] || lg_value_same(lg_graph_param(g, j), p);
        }
    }
    int64_t other = 0;
    bool any_other = false;
    for (int j = 0; j < n_params; j++)
        if (!listed[j]) other += param_numel(lg_graph_param(g, j)), any_other = true;
    free(listed);
    if (any_other) {
        rows[n].layer = printable("(other parameters)");
        rows[n].shape = printable("-");
        rows[n++].params = other;
    }
    *n_rows = n;
    for (int i = 0; i < n; i++)
        if (!rows[i].layer || !rows[i].shape) return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_graph_summary: out of memory");
    return LG_OK;
}

static void print_table(const lg_graph *g, FILE *f, const row *rows, int n)
{
    static const char *const head[3] = {"Layer (type)", "Output Shape", "Param #"};
    char buf[32];
    int w1 = width(head[0]), w2 = width(head[1]), w3 = width(head[2]);
    for (int i = 0; i < n; i++) {
        if (width(rows[i].layer) > w1) w1 = width(rows[i].layer);
        if (width(rows[i].shape) > w2) w2 = width(rows[i].shape);
        if (width(group_digits(rows[i].params, buf)) > w3) w3 = width(buf);
    }
    w1 = w1 + 3 > 29 ? w1 + 3 : 29, w2 = w2 + 3 > 26 ? w2 + 3 : 26, w3 = w3 + 1 > 10 ? w3 + 1 : 10;
    int total_w = 1 + w1 + w2 + w3;
    rule(f, '_', total_w);
    fprintf(f, " %s%*s%s%*s%s\n", head[0], w1 - width(head[0]), "", head[1], w2 - width(head[1]), "", head[2]);
    rule(f, '=', total_w);
    for (int i = 0; i < n; i++)
        fprintf(f, " %s%*s%s%*s%s\n", rows[i].layer, w1 - width(rows[i].layer), "", rows[i].shape,
                w2 - width(rows[i].shape), "", group_digits(rows[i].params, buf));
    rule(f, '=', total_w);
    int64_t total = 0, trainable = 0;
    for (int j = 0; j < lg_graph_param_count(g); j++) {
        lg_value p = lg_graph_param(g, j);
        total += param_numel(p);
        if (lg_param_trainable(p)) trainable += param_numel(p);
    }
    fprintf(f, "Total params: %s\n", group_digits(total, buf));
    fprintf(f, "Trainable params: %s\n", group_digits(trainable, buf));
    fprintf(f, "Non-trainable params: %s\n", group_digits(total - trainable, buf));
    rule(f, '_', total_w);
}

lg_status lg_graph_summary(const lg_graph *g, FILE *f)
{
    if (!g || !f) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_graph_summary: %s is NULL", g ? "stream" : "graph");
    if (lg_graph_error(g))
        return lg_fail(LG_ERR_GRAPH, "lg_graph_summary: the graph has an error: %s", lg_graph_error(g));
    int cap = lg_graph_layer_count(g) + 1, n = 0;
    row *rows = calloc((size_t)cap, sizeof *rows);
    if (!rows) return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_graph_summary: out of memory");
    lg_status s = make_rows(g, rows, &n);
    if (s == LG_OK) {
        print_table(g, f, rows, n);
        if (fflush(f) != 0 || ferror(f)) s = lg_fail(LG_ERR_IO, "lg_graph_summary: a write failed");
    }
    for (int i = 0; i < cap; i++) free(rows[i].layer), free(rows[i].shape);
    free(rows);
    return s;
}

lg_status lg_graph_summary_string(const lg_graph *g, char **out)
{
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_graph_summary_string: out is NULL");
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_graph_summary_string: out of memory");
    lg_status s = lg_graph_summary(g, f);
    if (fclose(f) != 0 && s == LG_OK) s = lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_graph_summary_string: out of memory");
    if (s) free(buf);
    else *out = buf;
    return s;
}
