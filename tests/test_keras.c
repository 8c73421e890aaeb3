/*
 * test_keras.c — Keras 3 .weights.h5 import (keras.h): the model of
 * fixtures/make_keras_fixture.py, built with loopgrad's layers under
 * Keras's names, gets Keras's weights and must give Keras's outputs
 * (keras_model.txt) to 1e-6 in f32; and every mismatch is refused, naming
 * the layer, with the parameters left as they were.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "graph/keras.h"
#include "graph/loopgrad.h"

#define WEIGHTS LG_TEST_DATA_DIR "/keras_model.weights.h5"
#define OUTPUTS LG_TEST_DATA_DIR "/keras_model.txt"

enum { VOCAB = 7, EMBED = 4 };

/* A record of keras_model.txt (loopgrad-keras v1, see the script). */
typedef struct record {
    char name[16];
    lg_shape shape;
    double *v;
} record;

static void read_outputs(record rec[2])
{
    FILE *f = fopen(OUTPUTS, "r");
    ck_assert_msg(f != NULL, "cannot open %s", OUTPUTS);
    char line[256];
    ck_assert(fgets(line, sizeof line, f) != NULL);
    ck_assert_str_eq(line, "loopgrad-keras v1\n");
    for (int r = 0; r < 2; r++) {
        int c;
        while ((c = fgetc(f)) == '#' || c == '\n')
            if (c == '#') ck_assert(fgets(line, sizeof line, f) != NULL);
        ungetc(c, f);
        ck_assert_int_eq(fscanf(f, "%15s %d", rec[r].name, &rec[r].shape.rank), 2);
        ck_assert(rec[r].shape.rank >= 1 && rec[r].shape.rank <= LG_MAX_RANK);
        for (int i = 0; i < rec[r].shape.rank; i++) {
            long long d;
            ck_assert_int_eq(fscanf(f, "%lld", &d), 1);
            rec[r].shape.dims[i] = d;
        }
        int64_t n = lg_shape_numel(rec[r].shape);
        rec[r].v = malloc((size_t)n * sizeof *rec[r].v);
        for (int64_t i = 0; i < n; i++) ck_assert_int_eq(fscanf(f, "%lf", &rec[r].v[i]), 1);
    }
    ck_assert_str_eq(rec[0].name, "ids");
    ck_assert_str_eq(rec[1].name, "y");
    fclose(f);
}

/* What to change in the model, to check the refusals. */
typedef struct variant {
    int lstm_units;      /* 3 in the file */
    bool gru_reset_after; /* gru_1 has reset_after false in the file */
    bool no_dense;        /* leave the Dense layer out */
    bool extra_param;     /* a parameter Keras does not have */
    const char *gru_name; /* "gru" in the file */
} variant;

static const variant SAME = {.lstm_units = 3, .gru_name = "gru"};

typedef struct model {
    lg_graph *g;
    lg_value ids, y;
    lg_cell *cells[5];
} model;

static void model_free(model *m)
{
    for (int i = 0; i < 5; i++) lg_cell_free(m->cells[i]);
    lg_graph_free(m->g);
}

/* The fixture's model with Keras's layer names, in inference mode. */
static void build(model *m, variant v)
{
    lg_graph *g = m->g = lg_graph_new();
    m->ids = lg_input(g, "ids", LG_I32, lg_shape_of(2, -1, -1));
    lg_value x = lg_embedding(g, "embedding", m->ids, VOCAB, EMBED, lg_embedding_opts_default(), NULL);

    m->cells[0] = lg_cell_new(g, "forward_lstm", EMBED, lg_cell_opts_default(LG_CELL_LSTM, v.lstm_units));
    m->cells[1] = lg_cell_new(g, "backward_lstm", EMBED, lg_cell_opts_default(LG_CELL_LSTM, v.lstm_units));
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.return_sequences = true;
    lg_bidirectional_result br;
    ck_assert_int_eq(lg_bidirectional(g, "bidirectional", m->cells[0], m->cells[1], x, LG_MERGE_CONCAT, ro, &br),
                     LG_OK);

    lg_rnn_result r;
    m->cells[2] = lg_cell_new(g, v.gru_name, 2 * v.lstm_units, lg_cell_opts_default(LG_CELL_GRU, 4));
    ck_assert_int_eq(lg_rnn(g, "gru", m->cells[2], br.output, ro, &r), LG_OK);
    lg_cell_opts go = lg_cell_opts_default(LG_CELL_GRU, 3);
    go.reset_after = v.gru_reset_after;
    m->cells[3] = lg_cell_new(g, "gru_1", 4, go);
    ck_assert_int_eq(lg_rnn(g, "gru_1", m->cells[3], r.output, ro, &r), LG_OK);
    m->cells[4] = lg_cell_new(g, "simple_rnn", 3, lg_cell_opts_default(LG_CELL_SIMPLE_RNN, 5));
    ro.return_sequences = false;
    ck_assert_int_eq(lg_rnn(g, "simple_rnn", m->cells[4], r.output, ro, &r), LG_OK);

    lg_batch_norm_result bn;
    ck_assert_int_eq(lg_batch_norm(g, "batch_normalization", r.output, lg_batch_norm_opts_default(), &bn), LG_OK);
    m->y = v.no_dense ? bn.output : lg_dense(g, "dense", bn.output, 2, lg_dense_opts_default());
    if (v.extra_param) lg_param(g, "extra", LG_F32, lg_shape_of(1, 2));
    ck_assert_msg(lg_graph_error(g) == NULL, "%s", lg_graph_error(g));
}

START_TEST(keras_outputs_match)
{
    record rec[2];
    read_outputs(rec);
    model m = {0};
    build(&m, SAME);
    lg_status s = lg_keras_load_weights(WEIGHTS, m.g);
    ck_assert_msg(s == LG_OK, "%s", lg_last_error());

    lg_tensor *ids = NULL, *y = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, rec[0].shape, &ids), LG_OK);
    for (int64_t i = 0; i < lg_tensor_numel(ids); i++) lg_tensor_set(ids, i, rec[0].v[i]);
    lg_feed feed = {m.ids, ids};
    ck_assert_int_eq(lg_graph_run(m.g, &feed, 1, &m.y, 1, &y), LG_OK);
    ck_assert_int_eq(lg_tensor_numel(y), lg_shape_numel(rec[1].shape));
    double worst = 0;
    for (int64_t i = 0; i < lg_tensor_numel(y); i++) worst = fmax(worst, fabs(lg_tensor_get(y, i) - rec[1].v[i]));
    ck_assert_msg(worst <= 1e-6, "largest difference from Keras %g", worst);
    /* and the outputs depend on the ids: the rows differ */
    ck_assert(fabs(rec[1].v[0] - rec[1].v[2]) > 1e-3);

    lg_tensor_free(ids), lg_tensor_free(y);
    model_free(&m);
    free(rec[0].v), free(rec[1].v);
}
END_TEST

/* Each refusal: the status, words the message must contain, and the
 * parameters unchanged (the embedding stands for them all). */
typedef struct refusal {
    variant v;
    lg_status status;
    const char *says[2];
} refusal;

static const refusal REFUSALS[] = {
    {{.lstm_units = 4, .gru_name = "gru"}, LG_ERR_SHAPE, {"layer 'backward_lstm' weight 0 (kernel)", "[4, 12], the graph [4, 16]"}},
    {{.lstm_units = 3, .gru_name = "gru", .gru_reset_after = true}, LG_ERR_SHAPE, {"layer 'gru_1' weight 2 (bias)", "[9]"}},
    {{.lstm_units = 3, .gru_name = "gru", .no_dense = true}, LG_ERR_INVALID_ARGUMENT, {"layer 'dense'", "not in the graph"}},
    {{.lstm_units = 3, .gru_name = "gru", .extra_param = true}, LG_ERR_INVALID_ARGUMENT, {"'extra'", "no weight in the file"}},
    {{.lstm_units = 3, .gru_name = "encoder"}, LG_ERR_INVALID_ARGUMENT, {"layer 'gru'", "layers/gru"}},
};

START_TEST(keras_mismatch_refused)
{
    const refusal *r = &REFUSALS[_i];
    model m = {0};
    build(&m, r->v);
    lg_tensor *emb = lg_param_tensor(lg_graph_find_param(m.g, "embedding/embeddings"));
    float before = lg_tensor_get(emb, 0);
    ck_assert_int_eq(lg_keras_load_weights(WEIGHTS, m.g), r->status);
    for (int k = 0; k < 2; k++)
        ck_assert_msg(strstr(lg_last_error(), r->says[k]), "case %d: '%s' lacks '%s'", _i, lg_last_error(), r->says[k]);
    ck_assert(lg_tensor_get(emb, 0) == before);
    model_free(&m);
}
END_TEST

/* The fixture's bytes into buf; returns how many. */
static size_t read_fixture(unsigned char *buf, size_t cap)
{
    FILE *in = fopen(WEIGHTS, "rb");
    ck_assert_ptr_nonnull(in);
    size_t n = fread(buf, 1, cap, in);
    ck_assert(n > 0 && n < cap && feof(in));
    fclose(in);
    return n;
}

/* n bytes into a new file $TMPDIR/lg_keras_XXXXXX, named in path. */
static void write_temp(char path[512], const unsigned char *bytes, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, 512, "%s/lg_keras_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, bytes, n), (ssize_t)n);
    close(fd);
}

START_TEST(keras_bad_files)
{
    model m = {0};
    build(&m, SAME);
    ck_assert_int_eq(lg_keras_load_weights(LG_TEST_DATA_DIR "/no_such.weights.h5", m.g), LG_ERR_IO);
    ck_assert(strstr(lg_last_error(), "no_such.weights.h5"));
    ck_assert_int_eq(lg_keras_load_weights(OUTPUTS, m.g), LG_ERR_IO); /* text, not HDF5 */
    ck_assert(strstr(lg_last_error(), "not an HDF5 file"));

    /* the fixture cut short: HDF5's reason is passed on */
    static unsigned char bytes[1 << 17];
    size_t n = read_fixture(bytes, sizeof bytes);
    char path[512];
    write_temp(path, bytes, 30000);
    ck_assert_int_eq(lg_keras_load_weights(path, m.g), LG_ERR_IO);
    ck_assert_msg(strstr(lg_last_error(), "truncated file: eof = 30000"), "%s", lg_last_error());
    unlink(path);

    /* the global heap's first object (the strings' collection) made a free
     * space of size 0, on which libhdf5 1.10 loops forever */
    size_t gcol = 0;
    while (gcol + 4 <= n && memcmp(bytes + gcol, "GCOL", 4) != 0) gcol++;
    ck_assert_msg(gcol + 32 <= n && bytes[gcol + 16] == 1, "the fixture's collection of strings is not where expected");
    memset(bytes + gcol + 16, 0, 16);
    write_temp(path, bytes, n);
    ck_assert_int_eq(lg_keras_load_weights(path, m.g), LG_ERR_IO);
    char want[96];
    snprintf(want, sizeof want, "global heap collection at byte %zu is corrupt: object 0 at byte 16", gcol);
    ck_assert_msg(strstr(lg_last_error(), want), "'%s' lacks '%s'", lg_last_error(), want);
    unlink(path);

    ck_assert_int_eq(lg_keras_load_weights(WEIGHTS, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_keras_load_weights(NULL, m.g), LG_ERR_INVALID_ARGUMENT);
    model_free(&m);
}
END_TEST

/* ---- crafted files ------------------------------------------------------------
 * Files no Keras writes, made here with libhdf5: a Dense layer "dense"
 * (kernel [2, 3], bias [3], in layers/dense/vars) and one defect each. The
 * load must refuse them at once with a message naming the defect, and
 * leave the parameters as they were. */

typedef enum defect {
    SELF_LINKS,   /* layers/dense/a and /b: hard links to layers/dense (was: walked round to "name too long") */
    SOFT_LINK,    /* layers/up: a soft link to /layers */
    NAME_ARRAY,   /* vars' "name" is 3 strings (was: all 3 written over a one-pointer buffer) */
    NAME_LONG,    /* vars' "name" is a fixed 1000-byte string (was: cut to 255 silently) */
    NULL_SPACE,   /* layers/s/vars/0 has no data, a null dataspace, for a scalar s/kernel (was: loaded
                   * uninitialised bytes) */
    NO_LAYERS,    /* the layer under model/ instead of layers/: some other HDF5 file */
    EXTRA_WEIGHT, /* a third weight, vars/2, for a graph layer of two */
    I32_PARAM,    /* the graph's dense/kernel is i32 */
    DEFECT_COUNT
} defect;

static void write_dataset(hid_t vars, const char *name, int rank, const hsize_t *dims)
{
    hid_t sp = rank >= 0 ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_NULL);
    hid_t d = H5Dcreate2(vars, name, H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(sp >= 0 && d >= 0);
    if (rank >= 0) {
        const float v[6] = {1, 2, 3, 4, 5, 6};
        ck_assert(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    }
    H5Dclose(d), H5Sclose(sp);
}

static void write_name(hid_t vars, size_t fixed, hsize_t count)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, fixed ? fixed : H5T_VARIABLE);
    hid_t sp = H5Screate_simple(1, &count, NULL);
    hid_t a = H5Acreate2(vars, "name", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(t >= 0 && sp >= 0 && a >= 0);
    if (fixed) {
        char *v = calloc(fixed * count, 1);
        memset(v, 'd', fixed - 1);
        ck_assert(H5Awrite(a, t, v) >= 0);
        free(v);
    } else {
        const char *v[3] = {"dense", "dense", "dense"};
        ck_assert(count <= 3 && H5Awrite(a, t, v) >= 0);
    }
    H5Aclose(a), H5Sclose(sp), H5Tclose(t);
}

static void write_crafted(const char *path, defect d)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    const char *at = d == NULL_SPACE ? "layers/s/vars" : d == NO_LAYERS ? "model/dense/vars" : "layers/dense/vars";
    hid_t vars = H5Gcreate2(f, at, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0 && lcpl >= 0 && vars >= 0);
    if (d == NULL_SPACE) {
        write_dataset(vars, "0", -1, NULL);
    } else {
        write_dataset(vars, "0", 2, (const hsize_t[]){2, 3});
        write_dataset(vars, "1", 1, (const hsize_t[]){3});
        if (d == EXTRA_WEIGHT) write_dataset(vars, "2", 1, (const hsize_t[]){3});
    }
    if (d == SELF_LINKS) {
        ck_assert(H5Lcreate_hard(f, "layers/dense", f, "layers/dense/a", H5P_DEFAULT, H5P_DEFAULT) >= 0);
        ck_assert(H5Lcreate_hard(f, "layers/dense", f, "layers/dense/b", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    }
    if (d == SOFT_LINK) ck_assert(H5Lcreate_soft("/layers", f, "layers/up", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    if (d != NULL_SPACE) write_name(vars, d == NAME_LONG ? 1000 : 0, d == NAME_ARRAY ? 3 : 1);
    H5Gclose(vars), H5Pclose(lcpl), H5Fclose(f);
}

static const struct {
    const char *says[2];
} CRAFTED[DEFECT_COUNT] = {
    [SELF_LINKS] = {{"layers/dense' has 3 hard links", "links each group once"}},
    [SOFT_LINK] = {{"layers/up' is a soft link", "only groups"}},
    [NAME_ARRAY] = {{"layers/dense/vars", "'name' holds 3 strings, not one"}},
    [NAME_LONG] = {{"layers/dense/vars", "'name' has 1000 bytes, above the 255"}},
    [NULL_SPACE] = {{"layer 's'", "layers/s/vars/0 is not an array"}},
    [NO_LAYERS] = {{"has no group 'layers'", "not a Keras 3 .weights.h5 file"}},
    [EXTRA_WEIGHT] = {{"layer 'dense' (layers/dense)", "the file has 3 weights, the graph 2 (kernel, bias)"}},
    [I32_PARAM] = {{"layer 'dense'", "parameter 'dense/kernel' is not f32 or f64"}},
};

START_TEST(keras_crafted_refused)
{
    char path[512];
    write_temp(path, NULL, 0); /* a name for H5Fcreate */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    write_crafted(path, (defect)_i);

    lg_graph *g = lg_graph_new();
    lg_value w = _i == NULL_SPACE ? lg_param(g, "s/kernel", LG_F32, lg_shape_of(0))
                                  : lg_param(g, "dense/kernel", _i == I32_PARAM ? LG_I32 : LG_F32, lg_shape_of(2, 2, 3));
    if (_i != NULL_SPACE) lg_param(g, "dense/bias", LG_F32, lg_shape_of(1, 3));
    lg_tensor *t = lg_param_tensor(w);
    ck_assert_int_eq(lg_tensor_fill(t, -7), LG_OK);
    ck_assert_int_eq(lg_keras_load_weights(path, g), LG_ERR_INVALID_ARGUMENT);
    for (int k = 0; k < 2; k++)
        ck_assert_msg(strstr(lg_last_error(), CRAFTED[_i].says[k]), "case %d: '%s' lacks '%s'", _i, lg_last_error(),
                      CRAFTED[_i].says[k]);
    for (int64_t i = 0; i < lg_tensor_numel(t); i++) ck_assert(lg_tensor_get(t, i) == -7);
    lg_graph_free(g);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keras");
    TCase *tc = tcase_create("weights");
    tcase_add_test(tc, keras_outputs_match);
    tcase_add_loop_test(tc, keras_mismatch_refused, 0, (int)(sizeof REFUSALS / sizeof REFUSALS[0]));
    tcase_add_test(tc, keras_bad_files);
    tcase_add_loop_test(tc, keras_crafted_refused, 0, DEFECT_COUNT);
    suite_add_tcase(s, tc);
    return lg_check_run(s);
}
