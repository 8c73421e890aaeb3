/*
 * lg_render.c — render a DOT file with loopgrad's renderer (viz.h).
 *
 *     lg-render [-T FORMAT] IN.dot OUT
 *
 * FORMAT is svg, png or pdf; without -T it comes from OUT's extension. OUT is
 * written whole or not at all. Exit status: 0 done, 1 the render failed
 * (the message says why), 2 bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "viz.h"

static int usage(FILE *f, int status)
{
    fputs("usage: lg-render [-T svg|png|pdf] IN.dot OUT\n"
          "Lay out a Graphviz DOT file (dot layout) and write OUT; the format comes\n"
          "from -T or from OUT's extension.\n",
          f);
    return status;
}

int main(int argc, char **argv)
{
    const char *format = NULL, *paths[2] = {NULL, NULL};
    int n_paths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return usage(stdout, 0);
        if (strcmp(argv[i], "-T") == 0) {
            if (++i == argc) return usage(stderr, 2);
            format = argv[i];
        } else if (strncmp(argv[i], "-T", 2) == 0) {
            format = argv[i] + 2;
        } else if (n_paths < 2) {
            paths[n_paths++] = argv[i];
        } else {
            return usage(stderr, 2);
        }
    }
    if (n_paths != 2) return usage(stderr, 2);
    lg_status s = lg_viz_render_file(paths[0], paths[1], format);
    if (s != LG_OK) {
        fprintf(stderr, "lg-render: %s: %s\n", lg_status_name(s), lg_last_error());
        return 1;
    }
    return 0;
}
