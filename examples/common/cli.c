/* cli.c — the examples' command line (cli.h). */
#define _DEFAULT_SOURCE /* realpath */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cli.h"
#include "graph/cpu.h"
#if LG_PLOT
#include "plot/plot.h"
#endif
#if LG_VIZ
#include "viz/viz.h"
#endif

enum { MAX_FLAGS = 32, HELP = MAX_FLAGS };

static const char *meta_of(const cli_flag *f)
{
    static const char *const by_type[] = {"N", "N", "X", "N", "TEXT", "", "FILE", "DEV"};
    static_assert(sizeof by_type / sizeof by_type[0] == CLI_TYPE_COUNT, "a meta per type");
    return f->meta ? f->meta : by_type[f->type];
}

/* The flag's current value, as the default shown by --help. */
static void print_default(FILE *out, const cli_flag *f)
{
    switch (f->type) {
    case CLI_INT: fprintf(out, "%d", *(const int *)f->value); break;
    case CLI_LONG: fprintf(out, "%ld", *(const long *)f->value); break;
    case CLI_DOUBLE: fprintf(out, "%g", *(const double *)f->value); break;
    case CLI_SEED: fprintf(out, "%" PRIu64, *(const uint64_t *)f->value); break;
    case CLI_TEXT:
    case CLI_OUTPUT:
    case CLI_DEVICE: {
        const char *s = *(const char *const *)f->value;
        if (!s) fputs("none", out);
        else fprintf(out, strpbrk(s, " \t") ? "'%s'" : "%s", s); /* quoted when spaces matter */
        break;
    }
    case CLI_SWITCH: fputs(*(const bool *)f->value ? "on" : "off", out); break;
    case CLI_TYPE_COUNT: break;
    }
}

static void usage(const cli *c, FILE *out, const char *const *defaults)
{
    fprintf(out, "usage: %s [options]\n%s\n\noptions:\n", c->prog, c->summary);
    for (int i = 0; i < c->n_flags; i++) {
        const cli_flag *f = &c->flags[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", f->name, f->type == CLI_SWITCH ? "" : " ", meta_of(f));
        fprintf(out, "  %-22s %s (", left, f->help);
        if (f->type == CLI_INT || f->type == CLI_LONG || f->type == CLI_DOUBLE)
            fprintf(out, "%.15g to %.15g; ", f->min, f->max);
        else if (f->type == CLI_SEED)
            fprintf(out, "0 to %" PRIu64 "; ", UINT64_MAX);
        fprintf(out, "default %s)\n", defaults[i]);
    }
    fprintf(out, "  %-22s print this and exit\n", "--help");
}

/* Set f from text v; false (and a message) when v is not a value of f. */
static bool set_value(const cli *c, const cli_flag *f, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case CLI_INT:
    case CLI_LONG: {
        long long x = strtoll(v, &end, 10);
        if (end == v || *end || errno == ERANGE || (double)x < f->min || (double)x > f->max) break;
        if (f->type == CLI_INT) *(int *)f->value = (int)x;
        else *(long *)f->value = (long)x;
        return true;
    }
    case CLI_DOUBLE: {
        double x = strtod(v, &end);
        if (end == v || *end || !isfinite(x) || x < f->min || x > f->max) break;
        *(double *)f->value = x;
        return true;
    }
    case CLI_SEED: {
        unsigned long long x = v[0] == '-' ? 0 : strtoull(v, &end, 10);
        if (v[0] == '-' || end == v || *end || errno == ERANGE) break;
        *(uint64_t *)f->value = (uint64_t)x;
        return true;
    }
    case CLI_TEXT:
    case CLI_OUTPUT: *(const char **)f->value = v; return true;
    case CLI_SWITCH: *(bool *)f->value = true; return true;
    case CLI_DEVICE: {
        /* as the library spells devices: cpu, cuda (cuda:0) or cuda:N, N from 0 to 1024 */
        bool ok = !strcmp(v, "cpu") || !strcmp(v, "cuda");
        if (!ok && !strncmp(v, "cuda:", 5) && v[5] >= '0' && v[5] <= '9') {
            long n = strtol(v + 5, &end, 10);
            ok = !*end && errno != ERANGE && n <= 1024;
        }
        if (!ok) break;
        *(const char **)f->value = v;
        return true;
    }
    case CLI_TYPE_COUNT: break;
    }
    if (f->type == CLI_DEVICE)
        fprintf(stderr, "%s: --%s '%s': not a device (cpu, cuda or cuda:N, N the GPU's number)\n", c->prog, f->name, v);
    else if (f->type == CLI_SEED)
        fprintf(stderr, "%s: --%s '%s': not an integer in 0 to %" PRIu64 "\n", c->prog, f->name, v, UINT64_MAX);
    else
        fprintf(stderr, "%s: --%s '%s': not a %s in %.15g to %.15g\n", c->prog, f->name, v,
                f->type == CLI_DOUBLE ? "number" : "whole number", f->min, f->max);
    return false;
}

/* The writers behind cli.h's --dot, --svg and --plot: the endings of the
 * names they take (any case) and whether this build has them. */
static const struct {
    const char *flag, *exts[2];
    bool built;
    const char *without;
} WRITERS[] = {
    {"dot", {".dot", ".gv"}, LG_VIZ, "Graphviz (meson option viz; install libgraphviz-dev)"},
    {"svg", {".svg", NULL}, LG_VIZ, "Graphviz (meson option viz; install libgraphviz-dev)"},
    {"plot", {".svg", ".png"}, LG_PLOT, "PLplot (meson option plot; install libplplot-dev)"},
};

/* "<prog>: --flag 'path': <why>" on stderr; false. */
static bool bad_output(const cli *c, const cli_flag *f, const char *path, const char *why, ...)
{
    fprintf(stderr, "%s: --%s '%s': ", c->prog, f->name, path);
    va_list ap;
    va_start(ap, why);
    vfprintf(stderr, why, ap);
    va_end(ap);
    fputc('\n', stderr);
    return false;
}

/* Whether path's name ends in one of exts (NULL ends the list), any case. */
static bool ends_in_one_of(const char *path, const char *const exts[2])
{
    const char *base = strrchr(path, '/'), *dot = strrchr(base ? base + 1 : path, '.');
    for (int i = 0; dot && i < 2 && exts[i]; i++)
        if (strcasecmp(dot, exts[i]) == 0) return true;
    return false;
}

/* Whether the file that f's value names can be written when the program
 * gets to it (cli.h); a message naming f and the path when not. Only looks:
 * creates, opens and changes nothing. */
static bool output_ok(const cli *c, const cli_flag *f, const char *path)
{
    const char *const *exts = NULL;
    for (size_t i = 0; i < sizeof WRITERS / sizeof WRITERS[0]; i++) {
        if (strcmp(f->name, WRITERS[i].flag) != 0) continue;
        if (!WRITERS[i].built) {
            fprintf(stderr, "%s: --%s: this loopgrad was built without %s\n", c->prog, f->name, WRITERS[i].without);
            return false;
        }
        exts = WRITERS[i].exts;
    }
    if (!path[0]) return bad_output(c, f, path, "no file name");
    if (exts && !ends_in_one_of(path, exts))
        return bad_output(c, f, path, "the name must end in %s%s%s (what --%s writes)", exts[0], exts[1] ? " or " : "",
                          exts[1] ? exts[1] : "", f->name);
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) return bad_output(c, f, path, "is a directory");
    /* the writers put a temporary beside the file a link leads to, then rename it */
    char *real = exists ? realpath(path, NULL) : NULL;
    const char *file = real ? real : path, *slash = strrchr(file, '/');
    char *dir = slash == file ? strdup("/") : slash ? strndup(file, (size_t)(slash - file)) : strdup(".");
    int e = !dir ? ENOMEM : stat(dir, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR
          : access(dir, W_OK | X_OK) != 0 ? errno : 0;
    if (!dir) bad_output(c, f, path, "out of memory");
    else if (e == ENOENT) bad_output(c, f, path, "the directory '%s' does not exist", dir);
    else if (e) bad_output(c, f, path, "cannot write in the directory '%s': %s", dir, strerror(e));
    free(dir);
    free(real);
    return e == 0;
}

/* c's flag of that name and type, or NULL. */
static const cli_flag *flag_named(const cli *c, const char *name, cli_type type)
{
    for (int i = 0; i < c->n_flags; i++)
        if (!strcmp(c->flags[i].name, name) && c->flags[i].type == type) return &c->flags[i];
    return NULL;
}

/* GNU's pointer to the usage after an error, which keeps the error in view. */
static int try_help(const cli *c)
{
    fprintf(stderr, "Try '%s --help' for more information.\n", c->prog);
    return 2;
}

int cli_parse(const cli *c, int argc, char **argv)
{
    if (c->n_flags > MAX_FLAGS) {
        fprintf(stderr, "%s: %d flags, at most %d\n", c->prog, c->n_flags, MAX_FLAGS);
        return 2;
    }
    /* the defaults as text, before any flag changes them */
    char text[MAX_FLAGS][64];
    const char *defaults[MAX_FLAGS];
    for (int i = 0; i < c->n_flags; i++) {
        FILE *f = fmemopen(text[i], sizeof text[i], "w");
        text[i][0] = '\0';
        if (f) print_default(f, &c->flags[i]), fclose(f);
        defaults[i] = text[i];
    }
    struct option opts[MAX_FLAGS + 2];
    for (int i = 0; i < c->n_flags; i++) opts[i] = (struct option){c->flags[i].name, c->flags[i].type == CLI_SWITCH ? no_argument : required_argument, NULL, i};
    opts[c->n_flags] = (struct option){"help", no_argument, NULL, HELP};
    opts[c->n_flags + 1] = (struct option){0};

    optind = 1;
    opterr = 1; /* getopt_long names an unknown flag or a missing value, after argv[0] */
    char *argv0 = argv[0];
    argv[0] = (char *)c->prog; /* "fashion_mnist: ...", as the messages below, not the path it ran by */
    int rc = CLI_RUN;
    for (int k; rc == CLI_RUN && (k = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (k == HELP) {
            usage(c, stdout, defaults);
            rc = 0;
        } else if (k < 0 || k >= c->n_flags || !set_value(c, &c->flags[k], optarg)) {
            rc = try_help(c);
        }
    }
    argv[0] = argv0;
    if (rc != CLI_RUN) return rc;
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (every value follows its flag)\n", c->prog, argv[optind]);
        return try_help(c);
    }
    /* before any work: a file that cannot be written fails now, not after training */
    for (int i = 0; i < c->n_flags; i++) {
        const cli_flag *f = &c->flags[i];
        const char *path = f->type == CLI_OUTPUT ? *(const char *const *)f->value : NULL;
        if (path && !output_ok(c, f, path)) return try_help(c);
    }
    /* --expand and --full-graph shape what --dot or --svg draw: alone they would do nothing */
    const cli_flag *dot = flag_named(c, "dot", CLI_OUTPUT), *svg = flag_named(c, "svg", CLI_OUTPUT),
                   *expand = flag_named(c, "expand", CLI_TEXT), *full = flag_named(c, "full-graph", CLI_SWITCH);
    bool drawn = (dot && *(const char *const *)dot->value) || (svg && *(const char *const *)svg->value);
    const char *idle = expand && *(const char *const *)expand->value ? "--expand"
                       : full && *(const bool *)full->value          ? "--full-graph"
                                                                     : NULL;
    if (idle && !drawn) {
        fprintf(stderr, "%s: %s shapes the graph that --dot or --svg draws; give one of them\n", c->prog, idle);
        return try_help(c);
    }
    /* a bad LG_GEMM or LG_NUM_THREADS fails now too, not at the first product */
    lg_cpu_gemm_info gemm;
    if (lg_cpu_gemm_info_get(&gemm) != LG_OK) {
        fprintf(stderr, "%s: %s\n", c->prog, lg_last_error());
        return 2;
    }
    printf("%s\n", lg_cpu_gemm_summary()); /* the header names the GEMM that gives every number below */
    return CLI_RUN;
}

lg_status cli_write_graph(const cli_outputs *o, const lg_graph *g)
{
#if LG_VIZ
    lg_viz_args a = {.dot_path = o->dot, .svg_path = o->svg};
    lg_dot_opts opts = lg_dot_opts_default();
    opts.layers = !o->full_graph;
    opts.expand = o->expand;
    opts.optimizer = o->optimizer;
    lg_status s = lg_viz_args_write(g, &a, opts);
    if (s == LG_OK && o->dot) printf("graph written to %s\n", o->dot);
    if (s == LG_OK && o->svg) printf("graph drawn in %s\n", o->svg);
    return s;
#else
    (void)g;
    if (!o->dot && !o->svg) return LG_OK;
    return lg_fail(LG_ERR_UNSUPPORTED, "--%s: this loopgrad was built without Graphviz (meson option viz; "
                   "install libgraphviz-dev)", o->dot ? "dot" : "svg");
#endif
}

lg_status cli_write_plot(const cli_outputs *o, const lg_trainer *tr, lg_metric metric)
{
    if (!o->plot) return LG_OK;
#if LG_PLOT
    int n = lg_trainer_history_count(tr);
    lg_epoch_logs *logs = malloc((size_t)(n > 0 ? n : 1) * sizeof *logs);
    if (!logs) return LG_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < n; i++) logs[i] = *lg_trainer_history(tr, i);
    lg_status s = lg_plot_history(logs, n, lg_metric_name(metric), o->plot);
    free(logs);
    if (s == LG_OK) printf("learning curves plotted in %s\n", o->plot);
    return s;
#else
    (void)tr, (void)metric;
    return lg_fail(LG_ERR_UNSUPPORTED, "--plot: this loopgrad was built without PLplot (meson option plot; install "
                   "libplplot-dev)");
#endif
}
