/* args.c — the examples' --dot and --svg flags (viz.h). */
#include <string.h>

#include "graph/status.h"
#include "viz.h"

static const char *const FLAGS[] = {"--dot", "--svg"};

/* Whether argv[i] is one of the flags: its index in FLAGS, and its value
 * (inline after '=' or the next argument, *taken 2 then); -1 if not a flag.
 * *value is NULL when the value is missing. */
static int flag_at(int argc, char **argv, int i, const char **value, int *taken)
{
    for (int k = 0; k < (int)(sizeof FLAGS / sizeof FLAGS[0]); k++) {
        size_t n = strlen(FLAGS[k]);
        if (strncmp(argv[i], FLAGS[k], n) != 0) continue;
        if (argv[i][n] == '=') {
            *value = argv[i][n + 1] ? argv[i] + n + 1 : NULL;
            *taken = 1;
            return k;
        }
        if (argv[i][n] == '\0') {
            *value = i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0 ? argv[i + 1] : NULL;
            *taken = 2;
            return k;
        }
    }
    return -1;
}

lg_status lg_viz_args_parse(int *argc, char **argv, lg_viz_args *out)
{
    if (out) *out = (lg_viz_args){0};
    if (!argc || !argv || !out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_viz_args_parse: a NULL argument");
    const char *paths[(sizeof FLAGS / sizeof FLAGS[0])] = {NULL};
    for (int i = 1; i < *argc;) {
        const char *value;
        int taken = 1, k = flag_at(*argc, argv, i, &value, &taken);
        if (k >= 0 && !value) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s needs a file name (%s FILE)", FLAGS[k], FLAGS[k]);
        if (k >= 0) paths[k] = value;
        i += taken;
    }
    int n = *argc > 0 ? 1 : 0;
    for (int i = 1; i < *argc;) {
        const char *value;
        int taken = 1, k = flag_at(*argc, argv, i, &value, &taken);
        if (k < 0) argv[n++] = argv[i];
        i += taken;
    }
    argv[n] = NULL;
    *argc = n;
    out->dot_path = paths[0], out->svg_path = paths[1];
    return LG_OK;
}

lg_status lg_viz_args_write(const lg_graph *g, const lg_viz_args *a, lg_dot_opts opts)
{
    if (!a) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_viz_args_write: args is NULL");
    lg_status s = LG_OK;
    if (a->dot_path) s = lg_graph_write_dot(g, a->dot_path, opts);
    if (s == LG_OK && a->svg_path) s = lg_graph_render(g, a->svg_path, "svg", opts);
    return s;
}
