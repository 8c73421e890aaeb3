/*
 * fuzz_checkpoint.c — a libFuzzer target for loading checkpoints and
 * importing PyTorch weights (checkpoint.h) into a fixed model: LSTM, GRU
 * (reset_after) and SimpleRNN cells of 4 units on 3 inputs, f64, as in
 * tests/fixtures/torch_rnn.safetensors, trained by Adam. The first input
 * byte picks the call, the rest is the safetensors file:
 *
 *     bits 0-1  0: lg_checkpoint_load with the optimizer, strict;
 *               1: without it, not strict;
 *               2: lg_checkpoint_import_torch_rnn, prefix "<cell>.";
 *               3: the same with prefix ""
 *     bits 2-3  the cell imported into: lstm, gru, rnn, lstm
 *     bit 4     layer 1 (else 0)
 *     bit 5     reverse
 *
 * On failure the call must leave a message and every parameter and
 * optimizer state exactly as it was; on success the file must parse, and
 * a checkpoint load must have put the file's bytes into each parameter it
 * holds. The model is put back after each input, so runs do not depend
 * on each other. fuzz/run fuzzes it with clang; fuzz/replay.c runs
 * fuzz/corpus/checkpoint/ in the test suite.
 */
#define _GNU_SOURCE /* memfd_create, in fuzz.h */
#include <string.h>

#include "fuzz.h"
#include "graph/checkpoint.h"
#include "graph/loopgrad.h"
#include "graph/optim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lg_fuzz_one(data, size);
    return 0;
}

static const char *const cell_names[3] = {"lstm", "gru", "rnn"};

/* The model, built once; its tensors (parameters, then optimizer state)
 * and a copy of their initial bytes. */
static struct {
    lg_graph *g;
    lg_cell *cells[3];
    lg_optimizer *opt;
    int n;
    lg_tensor **t;
    unsigned char *initial;
    size_t bytes;
} m;

static void model_build(void)
{
    m.g = lg_graph_new();
    const lg_cell_kind kinds[3] = {LG_CELL_LSTM, LG_CELL_GRU, LG_CELL_SIMPLE_RNN};
    for (int i = 0; i < 3; i++) {
        lg_cell_opts o = lg_cell_opts_default(kinds[i], 4);
        o.dtype = LG_F64;
        m.cells[i] = lg_cell_new(m.g, cell_names[i], 3, o);
    }
    int n_params = lg_graph_param_count(m.g);
    lg_value params[16];
    REQUIRE(!lg_graph_error(m.g) && n_params <= 16);
    for (int i = 0; i < n_params; i++) {
        params[i] = lg_graph_param(m.g, i);
        REQUIRE(lg_init_uniform(lg_param_tensor(params[i]), -1, 1, 7, (uint64_t)i) == LG_OK);
    }
    lg_adam_opts a = lg_adam_opts_default();
    REQUIRE(lg_optimizer_adam(m.g, params, n_params, a, &m.opt) == LG_OK);
    int n_state = lg_optimizer_state_count(m.opt);
    m.n = n_params + n_state;
    m.t = calloc((size_t)m.n, sizeof *m.t);
    REQUIRE(m.t);
    for (int i = 0; i < n_params; i++) m.t[i] = lg_param_tensor(params[i]);
    for (int i = 0; i < n_state; i++) {
        const char *name;
        REQUIRE(lg_optimizer_state(m.opt, i, &name, &m.t[n_params + i]) == LG_OK);
        lg_init_uniform(m.t[n_params + i], 0, 1, 8, (uint64_t)i); /* i32 iterations stays as it is */
    }
    for (int i = 0; i < m.n; i++) m.bytes += lg_tensor_bytes(m.t[i]);
    m.initial = malloc(m.bytes);
    REQUIRE(m.initial);
    size_t at = 0;
    for (int i = 0; i < m.n; i++) {
        memcpy(m.initial + at, lg_tensor_cdata(m.t[i]), lg_tensor_bytes(m.t[i]));
        at += lg_tensor_bytes(m.t[i]);
    }
}

static bool model_unchanged(void)
{
    size_t at = 0;
    for (int i = 0; i < m.n; i++) {
        if (memcmp(m.initial + at, lg_tensor_cdata(m.t[i]), lg_tensor_bytes(m.t[i])) != 0) return false;
        at += lg_tensor_bytes(m.t[i]);
    }
    return true;
}

static void model_restore(void)
{
    size_t at = 0;
    for (int i = 0; i < m.n; i++) {
        REQUIRE(lg_tensor_copy_in(m.t[i], m.initial + at, lg_tensor_bytes(m.t[i])) == LG_OK);
        at += lg_tensor_bytes(m.t[i]);
    }
}

/* After a checkpoint load: each parameter the file holds has its bytes. */
static void check_loaded(const lg_safetensors *f)
{
    for (int i = 0; i < lg_graph_param_count(m.g); i++) {
        lg_value p = lg_graph_param(m.g, i);
        int k = lg_safetensors_find(f, lg_value_name(p));
        if (k < 0) continue;
        lg_tensor *t = NULL;
        REQUIRE(lg_safetensors_get(f, lg_value_name(p), &t) == LG_OK);
        REQUIRE(lg_tensor_bytes(t) == lg_tensor_bytes(lg_param_tensor(p)));
        REQUIRE(memcmp(lg_tensor_cdata(t), lg_tensor_cdata(lg_param_tensor(p)), lg_tensor_bytes(t)) == 0);
        lg_tensor_free(t);
    }
}

lg_status lg_fuzz_one(const uint8_t *data, size_t size)
{
    if (size < 1) return LG_ERR_INVALID_ARGUMENT;
    if (!m.g) model_build();
    int mode = data[0] & 3, cell = (data[0] >> 2) & 3;
    if (cell == 3) cell = 0;
    char path[64];
    int fd = lg_fuzz_file(data + 1, size - 1, path);
    if (fd < 0) return LG_ERR_IO;
    lg_status s;
    if (mode < 2) {
        lg_checkpoint_opts o = lg_checkpoint_opts_default();
        o.strict = mode == 0;
        s = lg_checkpoint_load(path, m.g, mode == 0 ? m.opt : NULL, o);
    } else {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "%s.", cell_names[cell]);
        lg_torch_rnn_opts o = lg_torch_rnn_opts_default();
        o.prefix = mode == 2 ? prefix : "";
        o.layer = (data[0] >> 4) & 1;
        o.reverse = (data[0] >> 5) & 1;
        s = lg_checkpoint_import_torch_rnn(path, m.cells[cell], o);
    }
    close(fd);
    if (s != LG_OK) {
        REQUIRE(lg_last_error()[0] != '\0' && model_unchanged());
        return s;
    }
    lg_safetensors *f = NULL;
    REQUIRE(lg_safetensors_parse(data + 1, size - 1, &f) == LG_OK);
    if (mode < 2) check_loaded(f);
    lg_safetensors_free(f);
    model_restore();
    return LG_OK;
}
