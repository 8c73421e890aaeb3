/*
 * summary.h — a Keras-style model summary: one row per layer with its name,
 * type, output shape and parameter count, then the parameter totals.
 *
 *     lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 8));
 *     lg_value y = lg_dense(g, "dense", x, 4, lg_dense_opts_default());
 *     lg_graph_summary(g, stdout);
 *
 * prints
 *
 *     __________________________________________________________________
 *      Layer (type)                 Output Shape              Param #
 *     ==================================================================
 *      dense (Dense)                (None, 4)                 36
 *     ==================================================================
 *     Total params: 36
 *     Trainable params: 36
 *     Non-trainable params: 0
 *     __________________________________________________________________
 *
 * The layers are those the layer builders recorded (lg_graph_add_layer in
 * graph.h), in creation order: a layer's name is its scope path, its count
 * is the elements of the parameters it lists (a recurrent layer lists its
 * cell's). Parameters no layer lists (made with lg_param directly) are
 * summed in one more row, "(other parameters)", so the totals are always
 * the graph's: every parameter counted once, trainable or not
 * (lg_param_trainable). A parameter listed by two layers (a cell shared by
 * two lg_rnn calls) shows in both rows and once in the totals. An unknown
 * dim (-1, the batch or the time) shows as None, as in Keras. Counts over
 * 999 group their digits with commas ("1,234"). Control characters in
 * names show as \xNN; columns widen to fit long names.
 *
 * Errors: LG_ERR_INVALID_ARGUMENT (NULL graph, stream or out),
 * LG_ERR_GRAPH (the graph has a builder error), LG_ERR_IO (a write
 * failed), LG_ERR_OUT_OF_MEMORY.
 */
#ifndef LG_SUMMARY_H
#define LG_SUMMARY_H

#include <stdio.h>

#include "api.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* Print the summary of g to f. */
lg_status lg_graph_summary(const lg_graph *g, FILE *f);

/* The summary as a new NUL-terminated string, the caller's to free();
 * *out is NULL on error. */
lg_status lg_graph_summary_string(const lg_graph *g, char **out);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
