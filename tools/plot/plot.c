/* plot.c — learning curves through PLplot (plot.h). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <plplot.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot/plot.h"
#include "graph/status.h"
#include "io/atomic_file.h"

/* The history as columns: x (1, 2, ...), then loss, val_loss, metric,
 * val_metric per epoch ([n] each; NULL when the history lacks the column). */
enum { LOSS, VAL_LOSS, METRIC, VAL_METRIC, N_COLS };

typedef struct history {
    int n;
    double *x, *col[N_COLS];
    char metric[64];
} history;

static void history_free(history *h)
{
    free(h->x);
    for (int c = 0; c < N_COLS; c++) free(h->col[c]);
    *h = (history){0};
}

/* Columns [n] for x and each wanted column. */
static lg_status history_alloc(history *h, int n, const bool want[N_COLS])
{
    h->n = n;
    h->x = malloc((size_t)n * sizeof *h->x);
    bool ok = h->x != NULL;
    for (int c = 0; c < N_COLS; c++)
        if (want[c]) ok = (h->col[c] = malloc((size_t)n * sizeof *h->col[c])) != NULL && ok;
    if (!ok) return lg_fail(LG_ERR_OUT_OF_MEMORY, "plot: out of memory for %d epochs", n);
    for (int i = 0; i < n; i++) h->x[i] = i + 1;
    return LG_OK;
}

/* ---- the picture -------------------------------------------------------------- */

/* Colour map 0 entries this file sets. */
enum { INK = 1, GRID = 2, TRAIN = 3, VALID = 4 };

static bool all_nan(const double *y, int n)
{
    for (int i = 0; y && i < n; i++)
        if (!isnan(y[i])) return false;
    return true;
}

/* The range of the finite values of the given columns, widened a little
 * (and made non-empty) so the curves do not touch the frame. */
static void y_range(const history *h, int a, int b, double *lo, double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (int c = a; c <= b; c++)
        for (int i = 0; h->col[c] && i < h->n; i++)
            if (isfinite(h->col[c][i])) *lo = fmin(*lo, h->col[c][i]), *hi = fmax(*hi, h->col[c][i]);
    if (*lo > *hi) *lo = 0, *hi = 1;
    double pad = *hi > *lo ? 0.08 * (*hi - *lo) : fmax(0.05 * fabs(*hi), 0.05);
    *lo -= pad, *hi += pad;
}

/* One panel: the training column c (solid, blue) and its validation column
 * c + 1 (dashed, orange), each epoch marked; runs of finite values only. */
static void panel(const history *h, int c, const char *ylabel)
{
    double lo, hi;
    y_range(h, c, c + 1, &lo, &hi);
    /* half an epoch of margin each side; a tick per epoch when few */
    double x0 = 0.5, x1 = h->n + 0.5, xtick = h->n <= 12 ? 1 : 0;
    pladv(0);
    plvpor(0.2, 0.96, 0.14, 0.84);
    plwind(x0, x1, lo, hi);
    plcol0(GRID);
    plwidth(1);
    plbox("g", xtick, 0, "g", 0, 0);
    plcol0(INK);
    plbox("bcnst", xtick, 0, "bcnstv", 0, 0);
    pllab("epoch", ylabel, "");
    const char *names[2] = {"training", "validation"};
    PLINT colors[2] = {TRAIN, VALID}, styles[2] = {1, 2}, shown = 0;
    const char *leg_text[2];
    PLINT leg_opt[2], leg_col[2], leg_style[2], leg_sym_col[2], leg_sym_n[2];
    PLFLT leg_width[2], leg_scale[2];
    const char *leg_sym[2];
    for (int k = 0; k < 2; k++) {
        const double *y = h->col[c + k];
        if (all_nan(y, h->n)) continue;
        plcol0(colors[k]);
        pllsty(styles[k]);
        plwidth(2);
        for (int i = 0; i < h->n;) { /* each run of finite values as one line */
            int j = i;
            while (j < h->n && isfinite(y[j])) j++;
            if (j - i > 1) plline(j - i, h->x + i, y + i);
            if (j > i) plstring(j - i, h->x + i, y + i, k ? "#(840)" : "#(841)");
            i = j + (j == i);
        }
        pllsty(1);
        leg_text[shown] = names[k], leg_opt[shown] = PL_LEGEND_LINE | PL_LEGEND_SYMBOL;
        leg_col[shown] = colors[k], leg_style[shown] = styles[k], leg_width[shown] = 2;
        leg_sym_col[shown] = colors[k], leg_scale[shown] = 1, leg_sym_n[shown] = 1;
        leg_sym[shown] = k ? "#(840)" : "#(841)";
        shown++;
    }
    plcol0(INK);
    PLFLT w, hgt;
    /* above the frame, one row: it never hides a curve */
    if (shown)
        pllegend(&w, &hgt, 0, PL_POSITION_TOP | PL_POSITION_OUTSIDE, 0, 0.03, 0.08, 0, INK, 1, 1, shown, shown,
                 leg_opt, 1.0, 0.9, 2.0, 0, leg_col, leg_text, NULL, NULL, NULL, NULL, leg_col, leg_style, leg_width,
                 leg_sym_col, leg_scale, leg_sym_n, leg_sym);
}

/* The device for path's extension, or NULL. */
static const char *device_for(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strcasecmp(dot, ".svg")) return "svg";
    if (dot && !strcasecmp(dot, ".png")) return "pngcairo";
    return NULL;
}

static bool have_device(const char *dev)
{
    enum { MAX_DEVICES = 128 };
    const char *menu[MAX_DEVICES], *names[MAX_DEVICES];
    const char **m = menu, **d = names;
    int n = MAX_DEVICES;
    plgDevs(&m, &d, &n);
    for (int i = 0; i < n; i++)
        if (!strcmp(d[i], dev)) return true;
    return false;
}

static lg_status draw(const history *h, const char *out_path)
{
    const char *dev = device_for(out_path);
    if (!dev) return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: '%s': the file name must end in .svg or .png", out_path);
    if (h->n < 1) return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: the history has no epochs");
    if (!have_device(dev))
        return lg_fail(LG_ERR_UNSUPPORTED, "plot: PLplot has no '%s' driver (install plplot-driver-cairo)", dev);
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "plot: cannot write '%s'", out_path);
    lg_atomic_file o;
    lg_status s = lg_atomic_file_open(&o, out_path, what);
    if (s != LG_OK) return s;
    /* PLplot closes the stream it writes to when the plot ends: give it its
     * own on a duplicate descriptor, and keep ours to commit. */
    int fd = dup(fileno(o.f));
    FILE *pf = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!pf) {
        if (fd >= 0) close(fd);
        lg_atomic_file_abort(&o);
        return lg_fail(LG_ERR_IO, "plot: cannot write '%s': %s", out_path, strerror(errno));
    }
    bool metric = !all_nan(h->col[METRIC], h->n) || !all_nan(h->col[VAL_METRIC], h->n);

    PLINT old, strm;
    plgstrm(&old);
    plmkstrm(&strm); /* a stream of our own: the caller's PLplot state is untouched */
    plsdev(dev);
    plsfile(pf); /* PLplot writes to our temporary file and opens nothing */
    plspage(0, 0, metric ? 1000 : 560, 450, 0, 0);
    plscolbg(255, 255, 255);
    plscol0(INK, 0, 0, 0);
    plscol0(GRID, 215, 215, 215);
    plscol0(TRAIN, 31, 119, 180);   /* blue */
    plscol0(VALID, 255, 127, 14);   /* orange */
    plssub(metric ? 2 : 1, 1);
    plinit();
    plfontld(1);
    plschr(0, 1.1);
    panel(h, LOSS, "loss");
    if (metric) panel(h, METRIC, h->metric);
    plend1();
    plsstrm(old);
    /* PLplot reports no write errors: an empty file is the sign of one */
    struct stat st;
    if (fstat(fileno(o.f), &st) != 0 || st.st_size == 0) {
        lg_atomic_file_abort(&o);
        return lg_fail(LG_ERR_IO, "plot: cannot write '%s': nothing was written", out_path);
    }
    return lg_atomic_file_commit(&o);
}

/* ---- from memory -------------------------------------------------------------- */

lg_status lg_plot_history(const lg_epoch_logs *logs, int n, const char *metric, const char *out_path)
{
    if (!logs || !out_path) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_plot_history: a NULL argument");
    if (n < 1) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_plot_history: %d epochs", n);
    history h = {0};
    lg_status s = history_alloc(&h, n, (const bool[N_COLS]){true, true, true, true});
    if (s == LG_OK) {
        snprintf(h.metric, sizeof h.metric, "%s", metric && *metric ? metric : "metric");
        for (int i = 0; i < n; i++) {
            h.col[LOSS][i] = logs[i].loss, h.col[VAL_LOSS][i] = logs[i].val_loss;
            h.col[METRIC][i] = logs[i].metric, h.col[VAL_METRIC][i] = logs[i].val_metric;
        }
        s = draw(&h, out_path);
    }
    history_free(&h);
    return s;
}

/* ---- from a CSV --------------------------------------------------------------- */

/* Split line (modified in place) at commas into at most max fields, trailing
 * newline and spaces around fields removed; the number of fields, or max + 1
 * when there are more. */
static int split(char *line, char **fields, int max)
{
    line[strcspn(line, "\r\n")] = '\0';
    int n = 0;
    for (char *p = line;; p++) {
        while (*p == ' ') p++;
        if (n == max) return max + 1;
        fields[n++] = p;
        char *end = strchr(p, ',');
        char *stop = end ? end : p + strlen(p);
        while (stop > p && stop[-1] == ' ') stop--;
        if (!end) {
            *stop = '\0';
            return n;
        }
        *stop = '\0';
        p = end;
    }
}

enum { MAX_FIELDS = 16, LINE = 4096 };

/* Which column of the header is which (-1 when absent). */
typedef struct layout {
    int epoch, col[N_COLS], n_fields;
} layout;

static lg_status read_header(char *line, const char *path, layout *L, history *h)
{
    char *f[MAX_FIELDS];
    int n = split(line, f, MAX_FIELDS);
    *L = (layout){.epoch = -1, .col = {-1, -1, -1, -1}, .n_fields = n};
    if (n > MAX_FIELDS) return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: %s: line 1: more than %d columns", path, MAX_FIELDS);
    for (int i = 0; i < n; i++) {
        int *slot = NULL;
        if (!strcmp(f[i], "epoch")) slot = &L->epoch;
        else if (!strcmp(f[i], "loss")) slot = &L->col[LOSS];
        else if (!strcmp(f[i], "val_loss")) slot = &L->col[VAL_LOSS];
        else if (!strcmp(f[i], "lr") || !strcmp(f[i], "learning_rate")) continue; /* Keras's schedule, not a metric */
        else if (!strncmp(f[i], "val_", 4)) slot = &L->col[VAL_METRIC];
        else if (*f[i]) {
            slot = &L->col[METRIC];
            snprintf(h->metric, sizeof h->metric, "%s", f[i]);
        }
        if (!slot) return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: %s: line 1: column %d has no name", path, i + 1);
        if (*slot >= 0)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: %s: line 1: a second '%s' column (one metric at most)", path, f[i]);
        *slot = i;
    }
    if (L->epoch < 0 || L->col[LOSS] < 0)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: %s: line 1: not a fit history (needs the columns epoch and loss)", path);
    if (L->col[VAL_METRIC] >= 0 && strcmp(f[L->col[VAL_METRIC]] + 4, h->metric))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: %s: line 1: '%s' does not go with the metric '%s'", path,
                       f[L->col[VAL_METRIC]], h->metric);
    return LG_OK;
}

/* A number: the whole field, "nan" allowed, not empty. */
static bool number(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return end != s && *end == '\0' && errno != ERANGE;
}

/* Read the rows after the header; counts them first so the columns are
 * allocated once. */
static lg_status read_rows(FILE *f, const char *path, const layout *L, history *h)
{
    char line[LINE];
    long start = ftell(f);
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (line[strspn(line, " \r\n")]) n++;
    if (n == 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: %s: no epochs after the header", path);
    bool want[N_COLS];
    for (int c = 0; c < N_COLS; c++) want[c] = L->col[c] >= 0;
    lg_status s = history_alloc(h, n, want);
    if (s != LG_OK || fseek(f, start, SEEK_SET) != 0) return s ? s : lg_fail(LG_ERR_IO, "plot: cannot read '%s'", path);
    int row = 0;
    for (int lineno = 2; row < n && fgets(line, sizeof line, f); lineno++) {
        if (!strchr(line, '\n') && !feof(f))
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: %s: line %d: longer than %d bytes", path, lineno, LINE - 1);
        if (!line[strspn(line, " \r\n")]) continue;
        char *fld[MAX_FIELDS];
        int k = split(line, fld, MAX_FIELDS);
        if (k != L->n_fields)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: %s: line %d: %d fields, the header has %d", path, lineno,
                           k > MAX_FIELDS ? MAX_FIELDS + 1 : k, L->n_fields);
        double v;
        for (int i = 0; i < k; i++)
            if (!number(fld[i], &v))
                return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: %s: line %d: field %d '%s' is not a number", path,
                               lineno, i + 1, fld[i]);
        for (int c = 0; c < N_COLS; c++)
            if (L->col[c] >= 0) number(fld[L->col[c]], &h->col[c][row]);
        row++;
    }
    if (ferror(f)) return lg_fail(LG_ERR_IO, "plot: cannot read '%s': %s", path, strerror(errno));
    return LG_OK;
}

lg_status lg_plot_history_csv(const char *csv_path, const char *out_path)
{
    if (!csv_path || !out_path) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_plot_history_csv: a NULL argument");
    if (!device_for(out_path))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: '%s': the file name must end in .svg or .png", out_path);
    FILE *f = fopen(csv_path, "r");
    if (!f) return lg_fail(LG_ERR_IO, "plot: cannot open '%s': %s", csv_path, strerror(errno));
    history h = {0};
    snprintf(h.metric, sizeof h.metric, "metric");
    char line[LINE];
    layout L;
    lg_status s = fgets(line, sizeof line, f) ? read_header(line, csv_path, &L, &h)
                                              : lg_fail(LG_ERR_INVALID_ARGUMENT, "plot: %s: empty file", csv_path);
    if (s == LG_OK) s = read_rows(f, csv_path, &L, &h);
    fclose(f);
    if (s == LG_OK) s = draw(&h, out_path);
    history_free(&h);
    return s;
}
