/*
 * fuzz_keras.c — a libFuzzer target for Keras weights import (keras.h):
 * any bytes, as a file, go to lg_keras_load_weights into the model of
 * tests/fixtures/make_keras_fixture.py (built as tests/test_keras.c builds
 * it), whose weights file fuzz/corpus/keras/ starts from. The call must
 * succeed, or fail with a message and every parameter exactly as it was.
 * The model is put back after each input, which goes to a file
 * $TMPDIR/lg_fuzz_keras_XXXXXX for the call. fuzz/run fuzzes it with clang
 * (libhdf5 itself is not instrumented: the sanitizers see loopgrad's side
 * of the calls); fuzz/replay.c runs fuzz/corpus/keras/ in the test suite.
 */
#define _GNU_SOURCE /* memfd_create, in fuzz.h */
#include <string.h>

#include "fuzz.h"
#include "graph/keras.h"
#include "graph/loopgrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lg_fuzz_one(data, size);
    return 0;
}

/* The model and a copy of its parameters' initial bytes. */
static struct {
    lg_graph *g;
    unsigned char *initial;
    size_t bytes;
} m;

static void model_build(void)
{
    lg_graph *g = m.g = lg_graph_new();
    lg_value ids = lg_input(g, "ids", LG_I32, lg_shape_of(2, -1, -1));
    lg_value x = lg_embedding(g, "embedding", ids, 7, 4, lg_embedding_opts_default(), NULL);
    lg_cell *fw = lg_cell_new(g, "forward_lstm", 4, lg_cell_opts_default(LG_CELL_LSTM, 3));
    lg_cell *bw = lg_cell_new(g, "backward_lstm", 4, lg_cell_opts_default(LG_CELL_LSTM, 3));
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.return_sequences = true;
    lg_bidirectional_result br;
    REQUIRE(lg_bidirectional(g, "bidirectional", fw, bw, x, LG_MERGE_CONCAT, ro, &br) == LG_OK);
    lg_rnn_result r;
    lg_cell *gru = lg_cell_new(g, "gru", 6, lg_cell_opts_default(LG_CELL_GRU, 4));
    REQUIRE(lg_rnn(g, "gru", gru, br.output, ro, &r) == LG_OK);
    lg_cell_opts go = lg_cell_opts_default(LG_CELL_GRU, 3);
    go.reset_after = false;
    lg_cell *gru_1 = lg_cell_new(g, "gru_1", 4, go);
    REQUIRE(lg_rnn(g, "gru_1", gru_1, r.output, ro, &r) == LG_OK);
    lg_cell *rnn = lg_cell_new(g, "simple_rnn", 3, lg_cell_opts_default(LG_CELL_SIMPLE_RNN, 5));
    ro.return_sequences = false;
    REQUIRE(lg_rnn(g, "simple_rnn", rnn, r.output, ro, &r) == LG_OK);
    lg_batch_norm_result bn;
    REQUIRE(lg_batch_norm(g, "batch_normalization", r.output, lg_batch_norm_opts_default(), &bn) == LG_OK);
    lg_dense(g, "dense", bn.output, 2, lg_dense_opts_default());
    REQUIRE(lg_graph_error(g) == NULL);
    /* the cells' parameters live in the graph; the handles can go */
    lg_cell_free(fw), lg_cell_free(bw), lg_cell_free(gru), lg_cell_free(gru_1), lg_cell_free(rnn);

    for (int i = 0; i < lg_graph_param_count(g); i++) {
        lg_tensor *t = lg_param_tensor(lg_graph_param(g, i));
        REQUIRE(lg_init_uniform(t, -1, 1, 7, (uint64_t)i) == LG_OK);
        m.bytes += lg_tensor_bytes(t);
    }
    m.initial = malloc(m.bytes);
    REQUIRE(m.initial);
    size_t at = 0;
    for (int i = 0; i < lg_graph_param_count(g); i++) {
        lg_tensor *t = lg_param_tensor(lg_graph_param(g, i));
        memcpy(m.initial + at, lg_tensor_cdata(t), lg_tensor_bytes(t));
        at += lg_tensor_bytes(t);
    }
}

static bool model_unchanged(void)
{
    size_t at = 0;
    for (int i = 0; i < lg_graph_param_count(m.g); i++) {
        lg_tensor *t = lg_param_tensor(lg_graph_param(m.g, i));
        if (memcmp(m.initial + at, lg_tensor_cdata(t), lg_tensor_bytes(t)) != 0) return false;
        at += lg_tensor_bytes(t);
    }
    return true;
}

static void model_restore(void)
{
    size_t at = 0;
    for (int i = 0; i < lg_graph_param_count(m.g); i++) {
        lg_tensor *t = lg_param_tensor(lg_graph_param(m.g, i));
        REQUIRE(lg_tensor_copy_in(t, m.initial + at, lg_tensor_bytes(t)) == LG_OK);
        at += lg_tensor_bytes(t);
    }
}

/* The input in a new file named in path (libhdf5 wants a real path: it
 * resolves /proc/self/fd/N of fuzz.h's memfd to a name it cannot open). */
static bool write_input(const uint8_t *data, size_t size, char path[512])
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, 512, "%s/lg_fuzz_keras_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) return false;
    bool ok = true;
    for (size_t at = 0; ok && at < size;) {
        ssize_t w = write(fd, data + at, size - at);
        ok = w > 0;
        at += ok ? (size_t)w : 0;
    }
    close(fd);
    if (!ok) unlink(path);
    return ok;
}

lg_status lg_fuzz_one(const uint8_t *data, size_t size)
{
    if (!m.g) model_build();
    char path[512];
    if (!write_input(data, size, path)) return LG_ERR_IO;
    lg_status s = lg_keras_load_weights(path, m.g);
    unlink(path);
    if (s != LG_OK) {
        REQUIRE(lg_last_error()[0] != '\0' && model_unchanged());
        return s;
    }
    model_restore();
    return LG_OK;
}
