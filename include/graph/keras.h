/*
 * keras.h — weights in from Keras: a Keras 3 `.weights.h5` file (what
 * model.save_weights() writes) loaded into the parameters of a loopgrad
 * graph built with the same layers under the same names. Built when
 * libhdf5 is found (meson option hdf5; Debian's libhdf5-dev).
 *
 *     # Python, Keras 3
 *     model.save_weights("model.weights.h5")
 *
 *     // C: the same layers, named as Keras named them
 *     lg_cell *cell = lg_cell_new(g, "lstm", 28, lg_cell_opts_default(LG_CELL_LSTM, 64));
 *     ...
 *     lg_value logits = lg_dense(g, "dense", h, 10, lg_dense_opts_default());
 *     if (lg_keras_load_weights("model.weights.h5", g) != LG_OK)
 *         fprintf(stderr, "%s\n", lg_last_error());
 *
 * Matching, by name and order. The file holds, under "layers/", a group per
 * layer whose "vars" group (attribute "name": the layer's name) holds its
 * weights as datasets "0", "1", ... in the layer's order; a recurrent
 * layer keeps them in "cell/vars", and a Bidirectional layer holds its two
 * layers in "forward_layer" and "backward_layer" (named "forward_<layer>"
 * and "backward_<layer>", e.g. forward_lstm). Every layer with weights
 * maps to the graph's parameters "<name>/<weight>", taken in Keras's order:
 *
 *     Dense               kernel, bias (bias absent with use_bias false)
 *     Embedding           embeddings
 *     SimpleRNN/LSTM/GRU  kernel, recurrent_kernel, bias (cells.h gives the
 *                         layouts; GRU's bias is [2, 3u] with reset_after,
 *                         [3u] without, so the shapes tell the modes apart)
 *     BatchNormalization  gamma, beta, moving_mean, moving_variance
 *                         (gamma and beta absent with scale/center false)
 *
 * so a Keras model "lstm", "batch_normalization", "dense" loads into cells
 * and layers given those names (lg_cell_new(g, "lstm", ...),
 * lg_batch_norm(g, "batch_normalization", ...), lg_dense(g, "dense", ...)),
 * and a Bidirectional(LSTM) into cells "forward_lstm" and "backward_lstm".
 * Layers without weights (the input layer, Dropout, ...) and the optimizer's
 * state are not read. Values are converted to each parameter's dtype (f32
 * or f64).
 *
 * All or nothing: every layer is matched and checked before any parameter
 * is written, so on error the graph's parameters are unchanged.
 *
 * Errors (lg_status, message in lg_last_error()): LG_ERR_INVALID_ARGUMENT
 * (NULL arguments; a file that is not a Keras weights file; a layer of the
 * file with no parameters "<name>/..." in the graph, or a different number
 * of weights than the graph has under that name; a parameter of the graph
 * that no layer of the file fills: each message names the layer and its
 * path in the file), LG_ERR_SHAPE (a weight whose shape differs from its
 * parameter's: "layer 'lstm' weight 1 (recurrent_kernel): the file has
 * [64, 256], the graph [32, 128]"), LG_ERR_GRAPH (g carries a builder
 * error), LG_ERR_IO (the file cannot be opened or read, or is not HDF5),
 * LG_ERR_OUT_OF_MEMORY.
 *
 * Damaged and crafted files: loopgrad refuses what it checks itself (a
 * group linked twice or by a soft or external link, a "name" attribute that
 * is not one string of at most 255 bytes, a weight with no data, a global
 * heap collection, where the "name" strings live, whose object sizes would
 * send libhdf5 1.10 round forever or past its end: LG_ERR_IO), and passes
 * on HDF5's reason when HDF5 refuses the file ("truncated file: eof =
 * ..."). The rest of the parsing is libhdf5's, and Debian's libhdf5 1.10.8
 * does not survive every corrupt file: fuzzing (fuzz/run 200 keras) finds
 * heap overflows, crashes and huge allocations inside it. Load only
 * weights files you trust, or check them in a separate process.
 *
 * Threading: Debian's libhdf5 is not thread-safe; load from one thread at
 * a time.
 */
#ifndef LG_KERAS_H
#define LG_KERAS_H

#include "api.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* Load the Keras 3 weights file at path into g's parameters (see above).
 * The path comes first, as in lg_checkpoint_load and the other readers. */
lg_status lg_keras_load_weights(const char *path, lg_graph *g);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
