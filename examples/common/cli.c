/* cli.c — the examples' command line (cli.h). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    static const char *const by_type[CLI_TYPE_COUNT] = {"N", "N", "X", "N", "TEXT", ""};
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
    case CLI_TEXT: {
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
    case CLI_TEXT: *(const char **)f->value = v; return true;
    case CLI_SWITCH: *(bool *)f->value = true; return true;
    case CLI_TYPE_COUNT: break;
    }
    if (f->type == CLI_SEED)
        fprintf(stderr, "%s: --%s '%s': not an integer in 0 to %" PRIu64 "\n", c->prog, f->name, v, UINT64_MAX);
    else
        fprintf(stderr, "%s: --%s '%s': not a %s in %.15g to %.15g\n", c->prog, f->name, v,
                f->type == CLI_DOUBLE ? "number" : "whole number", f->min, f->max);
    return false;
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
            usage(c, stderr, defaults);
            rc = 2;
        }
    }
    argv[0] = argv0;
    if (rc != CLI_RUN) return rc;
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (every value follows its flag)\n", c->prog, argv[optind]);
        usage(c, stderr, defaults);
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
