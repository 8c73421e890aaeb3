/*
 * dot_util.h — what the DOT writers of tools/viz share: names as Graphviz
 * text, name scopes, and the layer view (layers.c) that dot.c hands
 * lg_dot_opts.layers to. Not installed.
 */
#ifndef LG_VIZ_DOT_UTIL_H
#define LG_VIZ_DOT_UTIL_H

#include <stdbool.h>
#include <stdio.h>

#include "graph/loop.h"
#include "viz.h"

typedef enum viz_text_mode {
    VIZ_HTML,  /* the inside of an HTML-like label */
    VIZ_QUOTED /* the inside of a quoted escString ("...") */
} viz_text_mode;

/* Write s to f for `mode`: a newline is a line break, valid UTF-8 passes,
 * control characters and bytes that are not UTF-8 show as \xNN, and what
 * either syntax reserves is escaped, so any name is valid DOT. */
void viz_put_text(FILE *f, const char *s, viz_text_mode mode);

/* Whether name is `scope` or under "scope/" (a trailing '/' of scope is
 * ignored); NULL or "" holds every name. */
bool viz_in_scope(const char *name, const char *scope);

/* Loop node i of g fused or not, as lg_program_compile will run it
 * (lg_loop_fused): the label text "fused: lstm (64 units, bias), CPU
 * kernel" or "not fused: <the reason, cut to a line>", HTML-escaped.
 * Fused loops are also drawn with a border VIZ_FUSED_PENWIDTH wide. */
enum { VIZ_FUSED_PENWIDTH = 3 };
bool viz_put_fusion(FILE *f, const lg_graph *g, int32_t i);

/* The layer view of g (checked: not NULL, no builder error) to f; fn names
 * the public function in messages. */
lg_status viz_write_layers(const lg_graph *g, FILE *f, lg_dot_opts o, const char *fn);

#endif
