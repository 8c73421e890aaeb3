/*
 * render.c — DOT to SVG, PNG or PDF through Graphviz's libgvc (viz.h).
 *
 * Graphviz reports problems through agerr, by default to stderr; while a
 * render runs, a handler collects them instead, so that a failure's status
 * message carries Graphviz's own words and nothing is printed.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include "graph/status.h"
#include "io/atomic_file.h"
#include "viz.h"

static const char *const FORMATS[] = {"svg", "png", "pdf"};

static _Thread_local char gv_said[1024];

static int collect(char *msg)
{
    size_t n = strlen(gv_said);
    snprintf(gv_said + n, sizeof gv_said - n, "%s", msg);
    return 0;
}

/* What Graphviz said, on one line without its "Error: " ("" if nothing). */
static const char *said(void)
{
    size_t n = strlen(gv_said);
    while (n > 0 && isspace((unsigned char)gv_said[n - 1])) gv_said[--n] = '\0';
    for (char *p = gv_said; *p; p++)
        if (*p == '\n') *p = ' ';
    return strncmp(gv_said, "Error: ", 7) == 0 ? gv_said + 7 : gv_said;
}

/* The format to write: `format`, or out_path's extension. NULL on error. */
static const char *resolve_format(const char *out_path, const char *format, const char *fn, lg_status *s)
{
    const char *f = format;
    if (!f || !f[0]) {
        const char *base = strrchr(out_path, '/'), *dot = strrchr(base ? base + 1 : out_path, '.');
        if (!dot || !dot[1]) {
            *s = lg_fail(LG_ERR_INVALID_ARGUMENT,
                         "%s: cannot tell the output format of '%s': give a format or end the name in .svg, .png or "
                         ".pdf", fn, out_path);
            return NULL;
        }
        f = dot + 1;
    }
    for (size_t k = 0; k < sizeof FORMATS / sizeof FORMATS[0]; k++)
        if (strcasecmp(f, FORMATS[k]) == 0) return FORMATS[k];
    *s = lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: unknown output format '%s' for '%s' (svg, png or pdf)", fn, f, out_path);
    return NULL;
}

/* One Graphviz context for the process, made on first use and never freed:
 * Graphviz 2.42's pango plugin keeps a pointer into the font table of the
 * context it last measured text for, so a second context in the same
 * process reads freed memory. */
static GVC_t *context(void)
{
    static GVC_t *gvc;
    if (!gvc) gvc = gvContext();
    return gvc;
}

/* Lay out the parsed graph and write it to out_path. */
static lg_status layout_and_write(Agraph_t *gr, const char *out_path, const char *format, const char *fn)
{
    GVC_t *gvc = context();
    if (!gvc) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: Graphviz: no context (out of memory)", fn);
    if (gvLayout(gvc, gr, "dot") != 0)
        return lg_fail(LG_ERR_UNSUPPORTED, "%s: Graphviz cannot lay out the graph: %s", fn, said());
    if (agerrors() > 0) { /* e.g. a bad HTML-like label: Graphviz goes on with a wrong picture */
        gvFreeLayout(gvc, gr);
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: Graphviz found an error in the DOT text: %s", fn, said());
    }
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "cannot write '%s'", out_path);
    lg_atomic_file o;
    lg_status s = lg_atomic_file_open(&o, out_path, what);
    if (s == LG_OK && (gvRender(gvc, gr, format, o.f) != 0 || agerrors() > 0)) {
        s = lg_fail(LG_ERR_UNSUPPORTED, "%s: Graphviz cannot render %s to '%s': %s", fn, format, out_path, said());
        lg_atomic_file_abort(&o);
    } else if (s == LG_OK) {
        s = lg_atomic_file_commit(&o);
    }
    gvFreeLayout(gvc, gr);
    return s;
}

static lg_status render(const char *dot, const char *out_path, const char *format, const char *fn)
{
    if (!dot) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: DOT text is NULL", fn);
    if (!out_path) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: output path is NULL", fn);
    lg_status s = LG_OK;
    const char *fmt = resolve_format(out_path, format, fn, &s);
    if (!fmt) return s;
    gv_said[0] = '\0';
    agusererrf before = agseterrf(collect);
    agreseterrors();
    Agraph_t *gr = agmemread(dot);
    if (!gr)
        s = lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: the DOT text does not parse: %s", fn,
                    said()[0] ? said() : "no graph in it");
    else
        s = layout_and_write(gr, out_path, fmt, fn);
    if (gr) agclose(gr);
    agseterrf(before);
    return s;
}

lg_status lg_viz_render(const char *dot, const char *out_path, const char *format)
{
    return render(dot, out_path, format, "lg_viz_render");
}

lg_status lg_viz_render_file(const char *dot_path, const char *out_path, const char *format)
{
    static const char fn[] = "lg_viz_render_file";
    if (!dot_path) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: DOT path is NULL", fn);
    FILE *f = fopen(dot_path, "rb");
    if (!f) return lg_fail(LG_ERR_IO, "%s: cannot read '%s': %s", fn, dot_path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    bool oom = false;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *t = realloc(text, cap = 2 * cap + 4096 + 1);
            if (!t) {
                oom = true;
                break;
            }
            text = t;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    lg_status s;
    if (oom) s = lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: reading '%s': out of memory", fn, dot_path);
    else if (bad) s = lg_fail(LG_ERR_IO, "%s: cannot read '%s'", fn, dot_path);
    else text[len] = '\0', s = render(text, out_path, format, fn);
    free(text);
    return s;
}

lg_status lg_graph_render(const lg_graph *g, const char *out_path, const char *format, lg_dot_opts opts)
{
    char *dot = NULL;
    lg_status s = lg_graph_dot_string(g, opts, &dot);
    if (s == LG_OK) s = render(dot, out_path, format, "lg_graph_render");
    free(dot);
    return s;
}
