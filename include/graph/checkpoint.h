/*
 * checkpoint.h — saving and loading tensors in the safetensors format, whole
 * graphs' parameters (and an optimizer's state) as checkpoints, and PyTorch
 * nn.RNN / nn.LSTM / nn.GRU weights imported into loopgrad's cells.
 *
 * The file format (safetensors, as PyTorch and Hugging Face write it):
 *
 *     8 bytes     N, the header's length, unsigned little-endian
 *     N bytes     a JSON object (UTF-8, may end in spaces):
 *                   {"<name>": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
 *                    ...,
 *                    "__metadata__": {"<key>": "<string>", ...}}    (optional)
 *     the rest    the tensors' bytes, row-major and little-endian; each
 *                 tensor's data_offsets [begin, end) count from the start of
 *                 this section, and the tensors tile it with no gap and no
 *                 overlap.
 *
 * loopgrad reads and writes the dtypes F32, F64 and I32 (lg_dtype's f32,
 * f64, i32) and ranks 0..LG_MAX_RANK.
 *
 *     // a checkpoint of every parameter of g, and back
 *     if (lg_checkpoint_save("model.safetensors", g, NULL) != LG_OK) fprintf(stderr, "%s\n", lg_last_error());
 *     lg_status s = lg_checkpoint_load("model.safetensors", g, NULL, lg_checkpoint_opts_default());
 *
 *     // reading any safetensors file
 *     lg_safetensors *f = NULL;
 *     if (lg_safetensors_open("weights.safetensors", &f) == LG_OK) {
 *         for (int i = 0; i < lg_safetensors_count(f); i++) printf("%s\n", lg_safetensors_name(f, i));
 *         lg_tensor *w = NULL;
 *         lg_safetensors_get(f, "encoder/kernel", &w);   // a new tensor, or NULL on error
 *         lg_tensor_free(w);
 *         lg_safetensors_free(f);
 *     }
 *
 *     // an nn.LSTM saved with safetensors.torch.save_file(model.state_dict(), path)
 *     lg_cell *cell = lg_cell_new(g, "lstm", 28, lg_cell_opts_default(LG_CELL_LSTM, 64));
 *     lg_checkpoint_import_torch_rnn("lstm.safetensors", cell, lg_torch_rnn_opts_default());
 *
 * Writing is atomic: a file is written to a temporary file in the target's
 * directory (".<name>.XXXXXX"), flushed to disk with fsync, and renamed over
 * the target, so a crash leaves either the old file or the new one, never a
 * torn one. On any error the temporary file is removed and an existing
 * target is left untouched. A new file gets mode 0644; a replaced one keeps
 * its mode. A save killed before its rename (kill -9, a power cut) leaves
 * its temporary file; the next save of the same target removes such
 * leftovers (".<name>." and six letters or digits, not locked by a save
 * still running). A name too long for that pattern (over 247 bytes) uses
 * ".lg-<16 hex digits>.XXXXXX" instead, so every legal name can be saved.
 * A target that is a symbolic link is followed (link by link, as editors
 * do): the file it points to is replaced and the link stays a link.
 *
 * Reading refuses a path that is not a regular file (a named pipe, a
 * device, a directory) before reading from it, so nothing waits on a pipe.
 *
 * Reading validates the whole file before anything uses it: a file that is
 * truncated, corrupted or hostile (a header length beyond the file, JSON
 * that is not an object, a name given twice, a shape entry that is not a
 * non-negative integer, a shape whose byte size overflows or differs from
 * its data_offsets, offsets out of range, overlapping or leaving gaps,
 * unknown fields, a __metadata__ that is not an object of strings) is
 * LG_ERR_IO with a message naming the file and the tensor; a dtype other
 * than F32, F64, I32 is LG_ERR_DTYPE and a rank above LG_MAX_RANK is
 * LG_ERR_SHAPE. Nothing is read outside the file's bytes. fuzz/ holds a
 * libFuzzer target for the reader and its corpus.
 *
 * Errors are returned as a status with a message in lg_last_error() (see
 * status.h). NULL arguments are LG_ERR_INVALID_ARGUMENT; failing system
 * calls are LG_ERR_IO with the path and strerror; out of memory is
 * LG_ERR_OUT_OF_MEMORY. The host must be little-endian (checked when
 * loopgrad is compiled).
 */
#ifndef LG_CHECKPOINT_H
#define LG_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"
#include "cells.h"
#include "graph.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* ---- safetensors files ------------------------------------------------------ */

/* Write tensors[i] under names[i], i < n, to path (atomically, see the
 * overview). Data is laid out in the given order; the header lists the
 * tensors in that order and is padded with spaces to a multiple of 8 bytes.
 * n may be 0 (a file with no tensors). The arrays are read during the call
 * only. Errors: LG_ERR_INVALID_ARGUMENT (path, names or tensors NULL, n < 0,
 * a NULL or empty name or tensor, a name given twice or called
 * "__metadata__", a name that is not UTF-8; the message gives the index and
 * name), LG_ERR_IO (the temporary file cannot be made, written, synced or
 * renamed, e.g. a missing directory or a target that is a directory). */
lg_status lg_safetensors_save(const char *path, const char *const *names, lg_tensor *const *tensors, int n);

/* An opened, validated safetensors file, held in memory (one copy of the
 * file's bytes; the tensors are copied out of it on request). */
typedef struct lg_safetensors lg_safetensors;

/* Read and validate the whole file at path. *out is the caller's to free
 * with lg_safetensors_free (NULL on failure). Errors: as in the overview,
 * and LG_ERR_IO for a file that cannot be opened or read or is not a
 * regular file. */
lg_status lg_safetensors_open(const char *path, lg_safetensors **out);
/* The same for the len bytes of a file at buf, which are copied (buf may be
 * freed after the call). Messages say "safetensors buffer" where open's
 * name the path. */
lg_status lg_safetensors_parse(const void *buf, size_t len, lg_safetensors **out);
void lg_safetensors_free(lg_safetensors *f); /* NULL is fine */

/* The tensors in the header's order: their number (0 for NULL), and the
 * i-th one's name (owned by f; NULL out of range), dtype (LG_DTYPE_COUNT out
 * of range) and shape (rank -1 out of range). */
int lg_safetensors_count(const lg_safetensors *f);
const char *lg_safetensors_name(const lg_safetensors *f, int i);
lg_dtype lg_safetensors_dtype(const lg_safetensors *f, int i);
lg_shape lg_safetensors_shape(const lg_safetensors *f, int i);
/* The index of the tensor called name, or -1 if there is none. */
int lg_safetensors_find(const lg_safetensors *f, const char *name);

/* A new tensor (the caller frees it) holding the tensor called name; *out
 * is NULL on failure. Errors: LG_ERR_INVALID_ARGUMENT (NULL arguments, no
 * tensor called name), LG_ERR_OUT_OF_MEMORY. */
lg_status lg_safetensors_get(const lg_safetensors *f, const char *name, lg_tensor **out);
/* Copy the tensor called name into dst, which must have its dtype and
 * shape (dst is unchanged otherwise). Errors: LG_ERR_INVALID_ARGUMENT (NULL
 * arguments, no such tensor), LG_ERR_DTYPE, LG_ERR_SHAPE (both naming the
 * tensor with the file's and dst's dtype or shape). */
lg_status lg_safetensors_read(const lg_safetensors *f, const char *name, lg_tensor *dst);

/* The "__metadata__" value for key (owned by f), or NULL if the file has no
 * such key. */
const char *lg_safetensors_metadata(const lg_safetensors *f, const char *key);

/* ---- checkpoints ------------------------------------------------------------ */

/* The optimizer (optim.h), whose state a checkpoint may carry. */
typedef struct lg_optimizer lg_optimizer;

/* Save every parameter of g under its full name (lg_value_name, e.g.
 * "lstm/kernel") with its dtype and shape, in creation order, and, when opt
 * is not NULL, each tensor of opt's state under its state name
 * ("optimizer/...", optim.h), as a safetensors file at path (atomically).
 * Errors: LG_ERR_INVALID_ARGUMENT (g or path NULL, a parameter whose name
 * starts with "optimizer/", which is kept for optimizer state), and those
 * of lg_safetensors_save. */
lg_status lg_checkpoint_save(const char *path, lg_graph *g, lg_optimizer *opt);

typedef struct lg_checkpoint_opts {
    /* true (default): the file must hold exactly the expected tensors (g's
     * parameters, and opt's state when opt is not NULL). false: expected
     * tensors missing from the file keep their values and tensors of the
     * file that nothing expects are ignored. Either way a tensor found in
     * both must have the same dtype and shape. */
    bool strict;
} lg_checkpoint_opts;

lg_checkpoint_opts lg_checkpoint_opts_default(void);

/* Load a checkpoint written by lg_checkpoint_save (or any safetensors file
 * whose names are g's parameter names) into g's parameters and, when opt
 * is not NULL, opt's state. With opt NULL, the file's optimizer tensors
 * (names starting "optimizer/") are skipped, so a training checkpoint loads
 * for inference. The file is validated and every expected tensor checked
 * before any is written: on error no parameter or state has changed.
 * Errors: LG_ERR_INVALID_ARGUMENT (path or g NULL), those of
 * lg_safetensors_open, and, naming the tensor: LG_ERR_IO (strict: a
 * parameter or state tensor missing from the file, or a file tensor that
 * nothing expects), LG_ERR_DTYPE and LG_ERR_SHAPE (the file's dtype or shape
 * differs; the message gives the expected and the found one). */
lg_status lg_checkpoint_load(const char *path, lg_graph *g, lg_optimizer *opt, lg_checkpoint_opts opts);

/* ---- PyTorch recurrent weights ---------------------------------------------- */

/* Where an nn.RNN / nn.LSTM / nn.GRU's weights sit in a state_dict. The keys
 * read are <prefix>weight_ih_l<layer><sfx>, <prefix>weight_hh_l<layer><sfx>,
 * <prefix>bias_ih_l<layer><sfx> and <prefix>bias_hh_l<layer><sfx>, with
 * <sfx> "_reverse" for the backward direction of a bidirectional module. */
typedef struct lg_torch_rnn_opts {
    const char *prefix; /* the module's path with its dot, e.g. "encoder.rnn."; default "" (NULL reads as "") */
    int layer;          /* default 0 */
    bool reverse;       /* default false */
} lg_torch_rnn_opts;

lg_torch_rnn_opts lg_torch_rnn_opts_default(void);

/* Set cell's weights (cells.h) from one layer and direction of a PyTorch
 * recurrent module saved as safetensors (e.g. safetensors.torch.save_file(
 * module.state_dict(), path)). PyTorch stores weight_ih [G*u, in],
 * weight_hh [G*u, u], bias_ih and bias_hh [G*u], with gate blocks in the
 * order i, f, g, o (LSTM, G = 4) and r, z, n (GRU, G = 3); nn.RNN has G = 1.
 * The mapping into Keras's layout:
 *   kernel [in, G*u]           = weight_ih^T, gate blocks reordered
 *   recurrent_kernel [u, G*u]  = weight_hh^T, gate blocks reordered
 *   SimpleRNN, LSTM bias [G*u] = bias_ih + bias_hh
 *   GRU bias [2, 3u]           = row 0 bias_ih, row 1 bias_hh, reordered
 * where LSTM keeps its order (i, f, g = c, o) and GRU takes Keras's z, r, h
 * from PyTorch's blocks 1, 0, 2. F32 and F64 weights convert to the cell's
 * dtype. Everything is checked before the cell's weights change: on error
 * they are as they were. Errors: LG_ERR_INVALID_ARGUMENT (NULL path or cell,
 * opts.layer < 0), those of lg_safetensors_open, LG_ERR_IO (a key missing,
 * or bias keys in the file of a cell without a bias), LG_ERR_SHAPE (a
 * weight not of the cell's shape; the key, the expected and the found shape
 * are named), LG_ERR_DTYPE (a weight not F32 or F64), LG_ERR_UNSUPPORTED (a
 * GRU with reset_after false, which PyTorch does not have; an LSTM or GRU
 * whose activations are not PyTorch's sigmoid gates and tanh). nn.RNN's
 * nonlinearity is not in the file: a SimpleRNN cell needs the module's (tanh
 * or relu) to compute what it computed. */
lg_status lg_checkpoint_import_torch_rnn(const char *path, lg_cell *cell, lg_torch_rnn_opts opts);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
