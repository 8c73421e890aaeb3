/*
 * test_rnn_pack.c — cuDNN RNN eligibility and Keras-to-cuDNN weight packing
 * (src/backends/cuda/rnn_pack.h), on the CPU: every refusal reason, the
 * gate mapping on matrices of known values, and packing round trips over
 * the dense stand-in for cuDNN's layout. The GPU suite (test_cuda.c) checks
 * the same map against cuDNN's own layout and numbers.
 */
#include <stddef.h>
#include <string.h>

#include "backends/cuda/rnn_pack.h"
#include "test_util.h"

static lg_rnn_layer_desc lstm_desc(const char *name, int64_t in, int64_t units)
{
    return (lg_rnn_layer_desc){.name = name,
                               .kind = LG_CELL_LSTM,
                               .dtype = LG_F32,
                               .input_dim = in,
                               .units = units,
                               .activation = LG_ACT_TANH,
                               .recurrent_activation = LG_ACT_SIGMOID,
                               .use_bias = true,
                               .reset_after = true,
                               .merge = LG_MERGE_CONCAT};
}

START_TEST(eligible_lstm_stack)
{
    lg_rnn_layer_desc d[2] = {lstm_desc("l0", 28, 64), lstm_desc("l1", 128, 64)};
    d[0].bidirectional = d[1].bidirectional = true;
    d[0].input_dropout = true; /* the caller masks x first */
    lg_rnn_spec s;
    char why[256] = "untouched";
    ck_assert_int_eq(lg_rnn_eligible(d, 2, &s, why, sizeof why), LG_RNN_ELIGIBLE);
    ck_assert_str_eq(why, "");
    ck_assert_int_eq(s.kind, LG_CELL_LSTM);
    ck_assert_int_eq(s.layers, 2);
    ck_assert(s.bidirectional);
    ck_assert_int_eq(s.input_dim, 28);
    ck_assert_int_eq(s.units, 64);
    ck_assert(s.use_bias && !s.relu);
    ck_assert_int_eq(lg_rnn_pseudo_layers(&s), 4);
    ck_assert_int_eq(lg_rnn_layer_input(&s, 1), 28);
    ck_assert_int_eq(lg_rnn_layer_input(&s, 2), 128);
}
END_TEST

START_TEST(eligible_simple_relu_and_gru)
{
    lg_rnn_layer_desc d = lstm_desc("r", 4, 8);
    d.kind = LG_CELL_SIMPLE_RNN;
    d.activation = LG_ACT_RELU;
    d.recurrent_activation = LG_ACT_HARD_SIGMOID; /* SimpleRNN has no gates: ignored */
    lg_rnn_spec s;
    char why[256];
    ck_assert_int_eq(lg_rnn_eligible(&d, 1, &s, why, sizeof why), LG_RNN_ELIGIBLE);
    ck_assert(s.relu);
    d = lstm_desc("g", 4, 8);
    d.kind = LG_CELL_GRU;
    d.dtype = LG_F64;
    d.use_bias = false;
    ck_assert_int_eq(lg_rnn_eligible(&d, 1, &s, why, sizeof why), LG_RNN_ELIGIBLE);
    ck_assert(s.kind == LG_CELL_GRU && s.dtype == LG_F64 && !s.use_bias && !s.relu && !s.reverse);
    /* a unidirectional layer read backwards: the caller reverses x and y */
    d.go_backwards = true;
    ck_assert_int_eq(lg_rnn_eligible(&d, 1, &s, why, sizeof why), LG_RNN_ELIGIBLE);
    ck_assert(s.reverse);
    /* read backwards, masked steps run before any valid one: their repeated output is 0, as cuDNN's */
    d.repeat_output = true;
    ck_assert_int_eq(lg_rnn_eligible(&d, 1, &s, why, sizeof why), LG_RNN_ELIGIBLE);
}
END_TEST

/* One refusal per row: a change to an eligible two-layer LSTM stack, the
 * reason expected and a word its message must contain. */
typedef struct refusal_row {
    const char *what;
    void (*change)(lg_rnn_layer_desc *d);
    int n;
    lg_rnn_refusal want;
    const char *word;
} refusal_row;

static void custom(lg_rnn_layer_desc *d) { d[0].kind = LG_CELL_KIND_COUNT; }
static void dtype_i32(lg_rnn_layer_desc *d) { d[0].dtype = LG_I32; }
static void relu_lstm(lg_rnn_layer_desc *d) { d[0].activation = LG_ACT_RELU; }
static void sigmoid_simple(lg_rnn_layer_desc *d)
{
    d[0].kind = LG_CELL_SIMPLE_RNN;
    d[0].activation = LG_ACT_SIGMOID;
}
static void hard_gates(lg_rnn_layer_desc *d) { d[1].recurrent_activation = LG_ACT_HARD_SIGMOID; }
static void gru_before(lg_rnn_layer_desc *d)
{
    d[0].kind = d[1].kind = LG_CELL_GRU;
    d[1].reset_after = false;
}
static void peephole(lg_rnn_layer_desc *d) { d[0].peephole = true; }
static void rec_dropout(lg_rnn_layer_desc *d) { d[1].recurrent_dropout = true; }
static void backwards(lg_rnn_layer_desc *d) { d[0].go_backwards = true; }
static void hole_mask(lg_rnn_layer_desc *d) { d[1].hole_mask = true; }
static void stop(lg_rnn_layer_desc *d) { d[0].has_stop = true; }
static void huge(lg_rnn_layer_desc *d) { d[0].input_dim = (int64_t)INT32_MAX + 1; }
static void zero_units(lg_rnn_layer_desc *d) { d[0].units = 0; }
static void other_units(lg_rnn_layer_desc *d) { d[1].units = 32; }
static void wrong_input(lg_rnn_layer_desc *d) { d[1].input_dim = 65; }
static void other_kind(lg_rnn_layer_desc *d) { d[1].kind = LG_CELL_GRU; }
static void stack_dropout(lg_rnn_layer_desc *d) { d[1].input_dropout = true; }
static void stack_merge(lg_rnn_layer_desc *d)
{
    d[0].bidirectional = d[1].bidirectional = true;
    d[1].input_dim = 128;
    d[0].merge = LG_MERGE_SUM;
}
static void repeat_output(lg_rnn_layer_desc *d) { d[1].repeat_output = true; }
static void repeat_bidir(lg_rnn_layer_desc *d)
{
    d[0].bidirectional = d[0].go_backwards = d[0].repeat_output = true;
}
static void none(lg_rnn_layer_desc *d) { (void)d; }


static const refusal_row refusals[] = {
    {"empty stack", none, 0, LG_RNN_NO_LAYERS, "no recurrent layers"},
    {"custom cell", custom, 2, LG_RNN_CUSTOM_CELL, "pattern"},
    {"i32", dtype_i32, 2, LG_RNN_DTYPE, "f32 and f64"},
    {"relu LSTM", relu_lstm, 2, LG_RNN_ACTIVATION, "tanh"},
    {"sigmoid SimpleRNN", sigmoid_simple, 1, LG_RNN_ACTIVATION, "tanh or relu"},
    {"hard_sigmoid gates", hard_gates, 2, LG_RNN_RECURRENT_ACTIVATION, "sigmoid"},
    {"GRU reset_after false", gru_before, 2, LG_RNN_RESET_BEFORE, "reset_after"},
    {"peephole", peephole, 2, LG_RNN_PEEPHOLE, "peephole"},
    {"recurrent dropout", rec_dropout, 2, LG_RNN_RECURRENT_DROPOUT, "recurrent dropout"},
    {"go_backwards on one stacked layer", backwards, 2, LG_RNN_GO_BACKWARDS, "go_backwards"},
    {"mask with holes", hole_mask, 2, LG_RNN_HOLE_MASK, "per-example lengths"},
    {"stop condition", stop, 2, LG_RNN_STOP_CONDITION, "stop condition"},
    {"input dim beyond int32", huge, 2, LG_RNN_SIZE, "2147483648"},
    {"zero units", zero_units, 1, LG_RNN_SIZE, "units 0"},
    {"stacked units differ", other_units, 2, LG_RNN_STACK_MISMATCH, "units 32"},
    {"stacked input not the output", wrong_input, 2, LG_RNN_STACK_MISMATCH, "input dim 65"},
    {"stacked kinds differ", other_kind, 2, LG_RNN_STACK_MISMATCH, "one kind"},
    {"dropout between layers", stack_dropout, 2, LG_RNN_STACK_DROPOUT, "dropout mask"},
    {"bidirectional merged by sum below another layer", stack_merge, 2, LG_RNN_STACK_MERGE, "concatenation"},
    {"masked steps repeat h", repeat_output, 2, LG_RNN_REPEAT_OUTPUT, "zero_output_for_mask"},
    {"bidirectional, masked steps repeat h", repeat_bidir, 1, LG_RNN_REPEAT_OUTPUT, "past each example's length"},
};
#define N_REFUSALS (sizeof refusals / sizeof refusals[0])

START_TEST(every_refusal)
{
    const refusal_row *r = &refusals[_i];
    lg_rnn_layer_desc d[2] = {lstm_desc("first", 16, 64), lstm_desc("second", 64, 64)};
    r->change(d);
    lg_rnn_spec s;
    memset(&s, 0x5a, sizeof s);
    lg_rnn_spec untouched = s;
    char why[512] = "";
    lg_rnn_refusal got = lg_rnn_eligible(d, r->n, &s, why, sizeof why);
    ck_assert_msg(got == r->want, "%s: got %s, want %s (%s)", r->what, lg_rnn_refusal_name(got),
                  lg_rnn_refusal_name(r->want), why);
    ck_assert_msg(strstr(why, r->word), "%s: '%s' lacks '%s'", r->what, why, r->word);
    if (r->n) ck_assert_msg(strstr(why, "first") || strstr(why, "second"), "%s: '%s' names no layer", r->what, why);
    ck_assert_msg(memcmp(&s, &untouched, sizeof s) == 0, "%s: a refusal filled the spec", r->what);
}
END_TEST

START_TEST(refusal_names)
{
    for (int r = 0; r < LG_RNN_REFUSAL_COUNT; r++) ck_assert_str_ne(lg_rnn_refusal_name((lg_rnn_refusal)r), "unknown");
    ck_assert_str_eq(lg_rnn_refusal_name(LG_RNN_RECURRENT_DROPOUT), "recurrent_dropout");
    ck_assert_str_eq(lg_rnn_refusal_name(LG_RNN_REFUSAL_COUNT), "unknown");
    /* every reason has a row above */
    bool seen[LG_RNN_REFUSAL_COUNT] = {false};
    for (size_t i = 0; i < N_REFUSALS; i++) seen[refusals[i].want] = true;
    for (int r = 1; r < LG_RNN_REFUSAL_COUNT; r++) ck_assert_msg(seen[r], "no test row refuses with %s", lg_rnn_refusal_name((lg_rnn_refusal)r));
}
END_TEST

/* The map, the dense layout and the dense sources of a spec. */
typedef struct packing {
    lg_rnn_spec s;
    lg_rnn_wlayout l;
    lg_rnn_src src[8];
    int64_t n_src;
    int64_t *map;
} packing;

static void packing_init(packing *p, lg_rnn_spec s)
{
    p->s = s;
    ck_assert(lg_rnn_layout_dense(&s, &p->l));
    char why[256];
    ck_assert_msg(lg_rnn_layout_check(&s, &p->l, why, sizeof why), "%s", why);
    p->n_src = lg_rnn_src_dense(&s, p->src);
    p->map = malloc((size_t)p->l.size * sizeof *p->map);
    ck_assert_ptr_nonnull(p->map);
    lg_rnn_pack_map(&s, &p->l, p->src, p->map);
}

static void packing_free(packing *p)
{
    lg_rnn_layout_free(&p->l);
    free(p->map);
}

static lg_rnn_spec spec_of(lg_cell_kind kind, int64_t in, int64_t u, int layers, bool bidi, bool bias)
{
    return (lg_rnn_spec){.kind = kind, .dtype = LG_F64, .input_dim = in, .units = u, .layers = layers,
                         .bidirectional = bidi, .use_bias = bias};
}

/* Keras's gate k of a [rows, G*u] parameter at base filled with value(k). */
static void fill_gates(double *src, int64_t base, int64_t rows, int g, int64_t u, const double *value)
{
    for (int64_t r = 0; r < rows; r++)
        for (int k = 0; k < g; k++)
            for (int64_t j = 0; j < u; j++) src[base + r * g * u + k * u + j] = value[k];
}

/* Every element of cuDNN matrix (p, id) and its bias equals w and b. */
static void expect_mat(const packing *p, const double *packed, int pl, int id, double w, double b)
{
    const lg_rnn_mat *m = &p->l.mats[pl * p->l.n_lin + id];
    for (int64_t i = 0; i < m->rows * m->cols; i++)
        ck_assert_msg(packed[m->w_off + i] == w, "pseudo-layer %d id %d: W[%lld] = %g, want %g", pl, id, (long long)i,
                      packed[m->w_off + i], w);
    for (int64_t i = 0; i < m->b_len; i++)
        ck_assert_msg(packed[m->b_off + i] == b, "pseudo-layer %d id %d: b[%lld] = %g, want %g", pl, id, (long long)i,
                      packed[m->b_off + i], b);
}

START_TEST(lstm_gate_order)
{
    packing p;
    packing_init(&p, spec_of(LG_CELL_LSTM, 3, 2, 1, false, true));
    double *src = calloc((size_t)p.n_src, sizeof *src), *packed = calloc((size_t)p.l.size, sizeof *packed);
    /* Keras i, f, c, o = 1, 2, 3, 4 in the kernel, 11.. in the recurrent
     * kernel, 21.. in the bias */
    fill_gates(src, p.src[0].kernel, 3, 4, 2, (double[]){1, 2, 3, 4});
    fill_gates(src, p.src[0].recurrent_kernel, 2, 4, 2, (double[]){11, 12, 13, 14});
    fill_gates(src, p.src[0].bias, 1, 4, 2, (double[]){21, 22, 23, 24});
    lg_rnn_pack(LG_F64, p.map, p.l.size, src, packed);
    /* cuDNN i, f, g, o: the same order; the h-side bias is zero */
    for (int k = 0; k < 4; k++) {
        expect_mat(&p, packed, 0, k, 1 + k, 21 + k);
        expect_mat(&p, packed, 0, 4 + k, 11 + k, 0);
    }
    free(src), free(packed);
    packing_free(&p);
}
END_TEST

START_TEST(gru_gate_order)
{
    packing p;
    packing_init(&p, spec_of(LG_CELL_GRU, 3, 2, 1, false, true));
    double *src = calloc((size_t)p.n_src, sizeof *src), *packed = calloc((size_t)p.l.size, sizeof *packed);
    /* Keras z, r, h; bias row 0 (input side) and row 1 (recurrent side) */
    fill_gates(src, p.src[0].kernel, 3, 3, 2, (double[]){1, 2, 3});
    fill_gates(src, p.src[0].recurrent_kernel, 2, 3, 2, (double[]){11, 12, 13});
    fill_gates(src, p.src[0].bias, 1, 3, 2, (double[]){21, 22, 23});
    fill_gates(src, p.src[0].bias + 6, 1, 3, 2, (double[]){31, 32, 33});
    lg_rnn_pack(LG_F64, p.map, p.l.size, src, packed);
    /* cuDNN r, z, n */
    expect_mat(&p, packed, 0, 0, 2, 22);
    expect_mat(&p, packed, 0, 1, 1, 21);
    expect_mat(&p, packed, 0, 2, 3, 23);
    expect_mat(&p, packed, 0, 3, 12, 32);
    expect_mat(&p, packed, 0, 4, 11, 31);
    expect_mat(&p, packed, 0, 5, 13, 33);
    free(src), free(packed);
    packing_free(&p);
}
END_TEST

/* W_k[j, c] = kernel[c, k u + j]: a transpose within each gate block. */
START_TEST(matrices_transposed)
{
    packing p;
    packing_init(&p, spec_of(LG_CELL_SIMPLE_RNN, 3, 2, 1, false, false));
    /* kernel [3, 2] = [[1, 2], [3, 4], [5, 6]]; recurrent [2, 2] = [[7, 8], [9, 10]] */
    double src[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, packed[10];
    ck_assert_int_eq(p.n_src, 10);
    ck_assert_int_eq(p.l.size, 10);
    lg_rnn_pack(LG_F64, p.map, p.l.size, src, packed);
    const double w[6] = {1, 3, 5, 2, 4, 6}, r[4] = {7, 9, 8, 10};
    const lg_rnn_mat *mw = &p.l.mats[0], *mr = &p.l.mats[1];
    ck_assert_int_eq(mw->b_len, 0);
    for (int i = 0; i < 6; i++) ck_assert_double_eq(packed[mw->w_off + i], w[i]);
    for (int i = 0; i < 4; i++) ck_assert_double_eq(packed[mr->w_off + i], r[i]);
    packing_free(&p);
}
END_TEST

/* Pack then unpack gives every Keras element back, and the map hits each
 * Keras element exactly once. */
static void round_trip(lg_rnn_spec s)
{
    packing p;
    packing_init(&p, s);
    ck_assert(p.n_src > 0 && p.n_src < (1 << 24) && p.l.size > 0 && p.l.size < (1 << 24));
    size_t n_src = (size_t)p.n_src, n_packed = (size_t)p.l.size;
    int *hits = calloc(n_src, sizeof *hits);
    for (int64_t i = 0; i < p.l.size; i++)
        if (p.map[i] >= 0) {
            ck_assert_int_lt(p.map[i], p.n_src);
            hits[p.map[i]]++;
        }
    for (int64_t i = 0; i < p.n_src; i++) ck_assert_msg(hits[i] == 1, "Keras element %lld packed %d times", (long long)i, hits[i]);
    float *src = malloc(n_src * sizeof *src), *back = calloc(n_src, sizeof *back);
    float *packed = malloc(n_packed * sizeof *packed);
    for (int64_t i = 0; i < p.n_src; i++) src[i] = (float)(i % 997) * 0.5f + 1;
    lg_rnn_pack(LG_F32, p.map, p.l.size, src, packed);
    lg_rnn_unpack(LG_F32, p.map, p.l.size, packed, back);
    ck_assert_mem_eq(src, back, n_src * sizeof *src);
    free(hits), free(src), free(back), free(packed);
    packing_free(&p);
}

START_TEST(round_trips)
{
    round_trip(spec_of(LG_CELL_LSTM, 5, 3, 1, false, true));
    round_trip(spec_of(LG_CELL_LSTM, 5, 3, 2, true, true));
    round_trip(spec_of(LG_CELL_GRU, 4, 6, 3, false, true));
    round_trip(spec_of(LG_CELL_GRU, 4, 6, 2, true, false));
    round_trip(spec_of(LG_CELL_SIMPLE_RNN, 7, 2, 2, true, true));
}
END_TEST

/* Each pseudo-layer (a stack's layer, a direction) packs from its own
 * sources, pseudo-layer by pseudo-layer as lg_rnn_src_dense lays them out
 * (cuda_rnn's parts): pseudo-layer p's kernel, recurrent kernel and bias
 * filled with 10 p + 1, 2, 3. A map that mixed up layers or directions
 * would still round-trip. */
static void own_sources(lg_rnn_spec s)
{
    packing p;
    packing_init(&p, s);
    int n = lg_rnn_pseudo_layers(&s), g = lg_rnn_gates(s.kind);
    double *src = calloc((size_t)p.n_src, sizeof *src), *packed = calloc((size_t)p.l.size, sizeof *packed);
    for (int pl = 0; pl < n; pl++) {
        int64_t end = pl + 1 < n ? p.src[pl + 1].kernel : p.n_src;
        for (int64_t i = p.src[pl].kernel; i < end; i++)
            src[i] = 10 * pl + (i < p.src[pl].recurrent_kernel ? 1 : s.use_bias && i >= p.src[pl].bias ? 3 : 2);
    }
    lg_rnn_pack(LG_F64, p.map, p.l.size, src, packed);
    for (int pl = 0; pl < n; pl++)
        for (int id = 0; id < 2 * g; id++) {
            bool h_side = id >= g;
            double b = s.use_bias && (!h_side || s.kind == LG_CELL_GRU) ? 10 * pl + 3 : 0;
            expect_mat(&p, packed, pl, id, 10 * pl + (h_side ? 2 : 1), b);
        }
    free(src), free(packed);
    packing_free(&p);
}

START_TEST(pseudo_layers_own_sources)
{
    own_sources(spec_of(LG_CELL_LSTM, 5, 3, 3, false, true));
    own_sources(spec_of(LG_CELL_LSTM, 5, 3, 1, true, true));
    own_sources(spec_of(LG_CELL_GRU, 4, 6, 2, true, true));
    own_sources(spec_of(LG_CELL_GRU, 4, 6, 4, false, true));
    own_sources(spec_of(LG_CELL_SIMPLE_RNN, 7, 2, 3, false, false));
}
END_TEST

/* The second layer of a bidirectional stack reads both directions. */
START_TEST(stacked_bidirectional_shapes)
{
    packing p;
    packing_init(&p, spec_of(LG_CELL_LSTM, 5, 3, 2, true, true));
    ck_assert_int_eq(p.l.n_pseudo, 4);
    ck_assert_int_eq(p.l.mats[1 * 8 + 0].cols, 5);  /* layer 0, backward, x side */
    ck_assert_int_eq(p.l.mats[2 * 8 + 0].cols, 6);  /* layer 1, forward: 2u */
    ck_assert_int_eq(p.l.mats[3 * 8 + 5].cols, 3);  /* h side: u */
    ck_assert_int_eq(lg_rnn_kernel_size(&p.s, 2), 6 * 12);
    ck_assert_int_eq(p.src[3].bias - p.src[3].recurrent_kernel, 3 * 12);
    packing_free(&p);
}
END_TEST

START_TEST(layout_mismatches)
{
    lg_rnn_spec s = spec_of(LG_CELL_LSTM, 5, 3, 1, false, true);
    lg_rnn_wlayout l;
    ck_assert(lg_rnn_layout_dense(&s, &l));
    char why[256];
    l.mats[2].cols = 4;
    ck_assert(!lg_rnn_layout_check(&s, &l, why, sizeof why));
    ck_assert_msg(strstr(why, "linear id 2") && strstr(why, "[3, 4]"), "%s", why);
    l.mats[2].cols = 5;
    l.mats[3].w_off = l.mats[2].w_off + 1;
    ck_assert(!lg_rnn_layout_check(&s, &l, why, sizeof why));
    ck_assert_msg(strstr(why, "overlaps"), "%s", why);
    l.mats[3].w_off = l.size;
    ck_assert(!lg_rnn_layout_check(&s, &l, why, sizeof why));
    ck_assert_msg(strstr(why, "outside"), "%s", why);
    lg_rnn_spec gru = spec_of(LG_CELL_GRU, 5, 3, 1, false, true);
    ck_assert(!lg_rnn_layout_check(&gru, &l, why, sizeof why));
    ck_assert_msg(strstr(why, "expected 1 of 6"), "%s", why);
    lg_rnn_layout_free(&l);
    lg_rnn_layout_free(NULL);
}
END_TEST

/* ---- the spaces of a fused rnn node on cuDNN (lg_rnn_spaces_of) ---------- */

typedef struct space {
    const char *name;
    size_t off, need; /* need: the bytes it must hold */
} space;

/* Each space aligned, holding its bytes, inside total and clear of the
 * others. */
static void expect_disjoint(const char *what, const space *sp, int n, size_t total)
{
    for (int i = 0; i < n; i++) {
        ck_assert_msg(sp[i].off % LG_RNN_SPACE_ALIGN == 0, "%s: %s at %zu", what, sp[i].name, sp[i].off);
        ck_assert_msg(sp[i].off + sp[i].need <= total, "%s: %s [%zu, +%zu) past %zu", what, sp[i].name, sp[i].off,
                      sp[i].need, total);
        for (int j = 0; j < i; j++)
            ck_assert_msg(!sp[i].need || !sp[j].need || sp[i].off + sp[i].need <= sp[j].off ||
                              sp[j].off + sp[j].need <= sp[i].off,
                          "%s: %s and %s overlap", what, sp[i].name, sp[j].name);
    }
}

static void check_spaces(lg_cell_kind kind, int layers, bool bidir, bool reverse, bool train, bool shared)
{
    lg_rnn_spec s = spec_of(kind, 5, 3, layers, bidir, true);
    s.reverse = reverse;
    int64_t T = 7, B = 4;
    size_t es = sizeof(double), wb = 1000, rb = 3000, D = bidir ? 2 : 1, LD = (size_t)layers * D;
    /* y is the top layer's; the states [L D, B, u] are staged where L D > 1 */
    size_t yb = (size_t)(T * B * 3) * D * es, xb = (size_t)(T * B * 5) * es,
           hb = LD > 1 ? LD * (size_t)(B * 3) * es : 0, cb = kind == LG_CELL_LSTM ? hb : 0;
    lg_rnn_spaces p = lg_rnn_spaces_of(&s, T, B, wb, rb, train, shared);
    char what[96];
    snprintf(what, sizeof what, "cell kind %d, %d layers%s%s%s%s", (int)kind, layers, bidir ? " bidirectional" : "",
             reverse ? " reverse" : "", train ? " train" : " forward", shared ? " shared" : "");
    space ws[] = {{"weights", p.weights, wb},
                  {"reserve", p.reserve, train ? rb : 0},
                  {"y", p.y, train || reverse || bidir ? yb : 0},
                  {"x", p.x, reverse ? xb : 0},
                  {"hx", p.hx, hb},
                  {"cx", p.cx, cb},
                  {"hy", p.hy, hb},
                  {"cy", p.cy, cb}};
    expect_disjoint(what, ws, (int)(sizeof ws / sizeof ws[0]), p.ws_bytes);
    space sc[] = {{"dweights", p.dweights, wb},
                  {"dy", p.dy, reverse || bidir ? yb : 0},
                  {"dx", p.dx, reverse ? xb : 0},
                  {"g_hx", p.g_hx, hb},
                  {"g_cx", p.g_cx, cb},
                  {"dhy", p.dhy, hb},
                  {"dcy", p.dcy, cb},
                  {"dhx", p.dhx, hb},
                  {"dcx", p.dcx, cb},
                  {"reserve_copy", p.reserve_copy, train && shared ? rb : 0}};
    expect_disjoint(what, sc, (int)(sizeof sc / sizeof sc[0]), p.scratch_bytes);
    /* nothing beyond what the call uses */
    size_t used = 0, sc_used = 0;
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        used += (ws[i].need + LG_RNN_SPACE_ALIGN - 1) / LG_RNN_SPACE_ALIGN * LG_RNN_SPACE_ALIGN;
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++)
        sc_used += (sc[i].need + LG_RNN_SPACE_ALIGN - 1) / LG_RNN_SPACE_ALIGN * LG_RNN_SPACE_ALIGN;
    ck_assert_uint_eq(p.ws_bytes, used);
    ck_assert_uint_eq(p.scratch_bytes, sc_used);
}

START_TEST(spaces_disjoint)
{
    static const lg_cell_kind kinds[] = {LG_CELL_LSTM, LG_CELL_GRU, LG_CELL_SIMPLE_RNN};
    for (int k = 0; k < 3; k++)
        for (int m = 0; m < 32; m++) {
            bool bidir = m & 1, reverse = m & 2, train = m & 4, shared = m & 8;
            int layers = m & 16 ? 3 : 1;
            if (!(bidir && reverse)) check_spaces(kinds[k], layers, bidir, reverse, train, shared);
        }
}
END_TEST

/* A unidirectional forward stack keeps only the weights (and, training,
 * the reserve and y); the bidirectional one stages y and its states. */
START_TEST(spaces_by_direction)
{
    lg_rnn_spec s = spec_of(LG_CELL_LSTM, 5, 3, 1, false, true);
    lg_rnn_spaces p = lg_rnn_spaces_of(&s, 7, 4, 1000, 3000, false, false);
    ck_assert_uint_eq(p.ws_bytes, 1024);
    ck_assert_uint_eq(p.scratch_bytes, 1024);
    p = lg_rnn_spaces_of(&s, 7, 4, 1000, 3000, true, false);
    ck_assert_uint_eq(p.reserve, 1024);
    ck_assert_uint_eq(p.y, 1024 + 3072);
    ck_assert_uint_eq(p.ws_bytes, 1024 + 3072 + 768); /* y: 7 * 4 * 3 doubles */
    ck_assert_uint_eq(p.scratch_bytes, 1024);
    p = lg_rnn_spaces_of(&s, 7, 4, 1000, 3000, true, true); /* several gradients: a copy of the reserve */
    ck_assert_uint_eq(p.reserve_copy, 1024);
    ck_assert_uint_eq(p.scratch_bytes, 1024 + 3072);
    s.bidirectional = true;
    p = lg_rnn_spaces_of(&s, 7, 4, 1000, 3000, false, false);
    ck_assert_uint_eq(p.y, 1024);
    ck_assert_uint_eq(p.hx, 1024 + 1536); /* y: 7 * 4 * 6 doubles */
    ck_assert_uint_eq(p.ws_bytes, 1024 + 1536 + 4 * 256); /* hx, cx, hy, cy: 2 * 4 * 3 doubles */
    s.kind = LG_CELL_GRU;
    p = lg_rnn_spaces_of(&s, 7, 4, 1000, 3000, true, false);
    ck_assert_uint_eq(p.cx, p.hy); /* no c */
    ck_assert_uint_eq(p.ws_bytes, 1024 + 3072 + 1536 + 2 * 256);
    ck_assert_uint_eq(p.scratch_bytes, 1024 + 1536 + 3 * 256);
}
END_TEST

/* A stack of L layers stages its states [L, B, u] (cuDNN's numLayers)
 * while its y is the top layer's only. */
START_TEST(spaces_by_layers)
{
    lg_rnn_spec s = spec_of(LG_CELL_LSTM, 5, 3, 3, false, true);
    lg_rnn_spaces p = lg_rnn_spaces_of(&s, 7, 4, 1000, 3000, true, false);
    ck_assert_uint_eq(p.y, 1024 + 3072);
    ck_assert_uint_eq(p.hx, 1024 + 3072 + 768); /* y: 7 * 4 * 3 doubles */
    ck_assert_uint_eq(p.cx, p.hx + 512);        /* hx: 3 * 4 * 3 doubles, 288 bytes */
    ck_assert_uint_eq(p.ws_bytes, 1024 + 3072 + 768 + 4 * 512);
    ck_assert_uint_eq(p.dhy, 1024 + 2 * 512); /* after dweights, g_hx, g_cx */
    ck_assert_uint_eq(p.scratch_bytes, 1024 + 6 * 512);
    s.kind = LG_CELL_GRU, s.reverse = true;
    p = lg_rnn_spaces_of(&s, 7, 4, 1000, 3000, false, false);
    ck_assert_uint_eq(p.x, 1024 + 768);       /* no reserve; y the top layer's */
    ck_assert_uint_eq(p.hx, 1024 + 768 + 1280); /* x: 7 * 4 * 5 doubles */
    ck_assert_uint_eq(p.cx, p.hy);            /* no c */
    ck_assert_uint_eq(p.ws_bytes, 1024 + 768 + 1280 + 2 * 512);
    s.layers = 1;
    p = lg_rnn_spaces_of(&s, 7, 4, 1000, 3000, false, false);
    ck_assert_uint_eq(p.ws_bytes, 1024 + 768 + 1280); /* one layer: no staging */
}
END_TEST

/* ---- staging between a merged node's parts and cuDNN (lg_rnn_stages_of) -- */

/* A value cuDNN reads or writes whole: at byte `space` of the workspace
 * (rnn) or scratch (rnn_grad), an input of the node (in) or an output, a
 * bidirectional y or dy (seq) or a state. */
typedef struct staged {
    lg_rnn_value v;
    bool in;
    size_t space; /* offsetof(lg_rnn_spaces, the space's field) */
    bool seq;
} staged;
#define SPACE(f) offsetof(lg_rnn_spaces, f)

enum { ST_T = 4, ST_B = 2, ST_U = 3, ST_ELEMS = ST_T * ST_B * ST_U };

/* Element i of part q's value v before the copies: each distinct and
 * positive, where the spaces hold negative values. */
static double code(int q, lg_rnn_value v, int64_t i) { return 1000 * q + 100 * (int)v + (double)i + 1; }

/* Each stage run on the host, as cuda_rnn.c runs it on the device: rows
 * of width bytes between part q's value v (contiguous) and the space,
 * pitch bytes apart there; after checking each stays inside both. */
static void run_stages(const lg_rnn_stage *st, int n, bool in, double *space, size_t total,
                       double (*t)[LG_RNN_VALUE_COUNT][ST_ELEMS], int P)
{
    for (int i = 0; i < n; i++) {
        const lg_rnn_stage *g = &st[i];
        ck_assert(g->v >= 0 && g->v < LG_RNN_VALUE_COUNT && g->q >= 0 && g->q < P);
        ck_assert(g->rows >= 1 && g->width <= g->pitch && g->rows * g->width <= sizeof t[0][0]);
        ck_assert_msg(g->off + (g->rows - 1) * g->pitch + g->width <= total, "stage %d past the space", i);
        if (g->in != in) continue;
        for (size_t r = 0; r < g->rows; r++) {
            char *a = (char *)space + g->off + r * g->pitch, *b = (char *)t[g->q][g->v] + r * g->width;
            memcpy(in ? a : b, in ? b : a, g->width);
        }
    }
}

/* The stages of a call of `layers` layers (bidirectional or not) of kind
 * move exactly the values `want` lists, each part's to or from where cuDNN
 * keeps it: states [P, B, u] with part q (a stack's layer q, or direction
 * q) at pseudo-layer layer D + direction, cuDNN's layer-major order; a
 * bidirectional y or dy [T, B, 2u] with direction 0 in columns [0, u)
 * and direction 1 in [u, 2u). Nothing else in the space is written. */
static void check_stages(lg_cell_kind kind, int layers, bool bidir, bool grad, const staged *want, int n_want)
{
    lg_rnn_spec s = spec_of(kind, 5, ST_U, layers, bidir, true);
    int D = bidir ? 2 : 1, P = layers * D;
    lg_rnn_spaces p = lg_rnn_spaces_of(&s, ST_T, ST_B, 1000, 3000, true, false);
    size_t total = grad ? p.scratch_bytes : p.ws_bytes, n_el = total / sizeof(double);
    lg_rnn_stage st[LG_RNN_STAGES_PER_LAYER * 8];
    int n = lg_rnn_stages_of(&s, &p, ST_T, ST_B, grad, st);
    /* each (part, value) once, in or out as the value is, a y or dy as two stages in a row */
    int expect = 0;
    for (int w = 0; w < n_want; w++) expect += want[w].seq ? 2 : P;
    ck_assert_int_eq(n, expect);
    for (int i = 0; i < n; i++) {
        int w = 0;
        while (w < n_want && want[w].v != st[i].v) w++;
        ck_assert_msg(w < n_want, "stage %d stages value %d", i, (int)st[i].v);
        ck_assert(st[i].in == want[w].in);
        for (int j = 0; j < i; j++) ck_assert(st[j].v != st[i].v || st[j].q != st[i].q);
        if (want[w].seq && st[i].q == P - 2)
            ck_assert(i + 1 < n && st[i + 1].v == st[i].v && st[i + 1].q == P - 1);
    }
    static double t[16][LG_RNN_VALUE_COUNT][ST_ELEMS];
    double *space = malloc(total);
    ck_assert_ptr_nonnull(space);
    for (int q = 0; q < P; q++)
        for (int v = 0; v < LG_RNN_VALUE_COUNT; v++)
            for (int64_t i = 0; i < ST_ELEMS; i++) t[q][v][i] = code(q, (lg_rnn_value)v, i);
    for (size_t i = 0; i < n_el; i++) space[i] = -1;
    run_stages(st, n, true, space, total, t, P);
    size_t moved = 0;
    for (int pass = 0; pass < 2; pass++) { /* the copies in, then out */
        if (pass == 1) {
            /* the copies in wrote nothing but what was checked; then the space's elements go out */
            size_t touched = 0;
            for (size_t i = 0; i < n_el; i++) touched += space[i] != -1;
            ck_assert_uint_eq(touched, moved);
            for (size_t i = 0; i < n_el; i++) space[i] = -2 - (double)i;
            run_stages(st, n, false, space, total, t, P);
        }
        for (int w = 0; w < n_want; w++) {
            if (want[w].in != (pass == 0)) continue;
            const double *at = space + *(const size_t *)((const char *)&p + want[w].space) / sizeof(double);
            for (int q = want[w].seq ? P - 2 : 0; q < P; q++) {
                int layer = bidir ? q / 2 : q, d = bidir ? q % 2 : 0;
                int64_t rows = want[w].seq ? ST_T * ST_B : ST_B;
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t j = 0; j < ST_U; j++) {
                        /* [T, B, 2u]: row r, direction d's columns; [P, B, u]: pseudo-layer layer D + d, row r */
                        int64_t k = want[w].seq ? (r * 2 + d) * ST_U + j
                                                : (((int64_t)layer * D + d) * ST_B + r) * ST_U + j;
                        double got = pass == 0 ? at[k] : t[q][want[w].v][r * ST_U + j];
                        double exp = pass == 0 ? code(q, want[w].v, r * ST_U + j) : at[k];
                        ck_assert_msg(got == exp, "value %d of part %d, row %lld, unit %lld: %g, want %g",
                                      (int)want[w].v, q, (long long)r, (long long)j, got, exp);
                        moved += pass == 0;
                    }
            }
        }
    }
    free(space);
}

START_TEST(stages_bidirectional)
{
    /* with c0 (LSTM) and without (GRU) */
    const staged lstm[] = {{LG_RNN_V_H0, true, SPACE(hx), false},    {LG_RNN_V_C0, true, SPACE(cx), false},
                           {LG_RNN_V_YS, false, SPACE(y), true},     {LG_RNN_V_H_T, false, SPACE(hy), false},
                           {LG_RNN_V_C_T, false, SPACE(cy), false}},
                 lstm_grad[] = {{LG_RNN_V_DYS, true, SPACE(dy), true},    {LG_RNN_V_H0, true, SPACE(g_hx), false},
                                {LG_RNN_V_C0, true, SPACE(g_cx), false},  {LG_RNN_V_DH, true, SPACE(dhy), false},
                                {LG_RNN_V_DC, true, SPACE(dcy), false},   {LG_RNN_V_DH0, false, SPACE(dhx), false},
                                {LG_RNN_V_DC0, false, SPACE(dcx), false}},
                 gru[] = {{LG_RNN_V_H0, true, SPACE(hx), false},
                          {LG_RNN_V_YS, false, SPACE(y), true},
                          {LG_RNN_V_H_T, false, SPACE(hy), false}},
                 gru_grad[] = {{LG_RNN_V_DYS, true, SPACE(dy), true},
                               {LG_RNN_V_H0, true, SPACE(g_hx), false},
                               {LG_RNN_V_DH, true, SPACE(dhy), false},
                               {LG_RNN_V_DH0, false, SPACE(dhx), false}};
    check_stages(LG_CELL_LSTM, 1, true, false, lstm, 5);
    check_stages(LG_CELL_LSTM, 1, true, true, lstm_grad, 7);
    check_stages(LG_CELL_GRU, 1, true, false, gru, 3);
    check_stages(LG_CELL_GRU, 1, true, true, gru_grad, 4);
    /* the LSTM forward's stages as cuda_rnn.c runs them: [B, u] = 48 bytes
     * per direction, y rows of 2u = 48 bytes with direction 1 at byte 24 */
    lg_rnn_spec s = spec_of(LG_CELL_LSTM, 5, ST_U, 1, true, true);
    lg_rnn_spaces p = lg_rnn_spaces_of(&s, ST_T, ST_B, 1000, 3000, true, false);
    lg_rnn_stage st[LG_RNN_STAGES_PER_LAYER * 2];
    ck_assert_int_eq(lg_rnn_stages_of(&s, &p, ST_T, ST_B, false, st), 10);
    const struct {
        lg_rnn_value v;
        int q;
        size_t off, pitch, width, rows;
    } runs[10] = {{LG_RNN_V_H0, 0, p.hx, 48, 48, 1},      {LG_RNN_V_H0, 1, p.hx + 48, 48, 48, 1},
                 {LG_RNN_V_C0, 0, p.cx, 48, 48, 1},      {LG_RNN_V_C0, 1, p.cx + 48, 48, 48, 1},
                 {LG_RNN_V_YS, 0, p.y, 48, 24, 8},       {LG_RNN_V_YS, 1, p.y + 24, 48, 24, 8},
                 {LG_RNN_V_H_T, 0, p.hy, 48, 48, 1},     {LG_RNN_V_H_T, 1, p.hy + 48, 48, 48, 1},
                 {LG_RNN_V_C_T, 0, p.cy, 48, 48, 1},     {LG_RNN_V_C_T, 1, p.cy + 48, 48, 48, 1}};
    for (int i = 0; i < 10; i++) {
        ck_assert_msg(st[i].v == runs[i].v && st[i].q == runs[i].q && st[i].off == runs[i].off &&
                          st[i].pitch == runs[i].pitch && st[i].width == runs[i].width && st[i].rows == runs[i].rows,
                      "stage %d", i);
        ck_assert(st[i].in == (i < 4));
    }
}
END_TEST

START_TEST(stages_stacked)
{
    /* a 3-layer LSTM: layer l's h0, c0, ... at block l of [3, B, u] */
    const staged lstm[] = {{LG_RNN_V_H0, true, SPACE(hx), false},
                           {LG_RNN_V_C0, true, SPACE(cx), false},
                           {LG_RNN_V_H_T, false, SPACE(hy), false},
                           {LG_RNN_V_C_T, false, SPACE(cy), false}},
                 lstm_grad[] = {{LG_RNN_V_H0, true, SPACE(g_hx), false}, {LG_RNN_V_C0, true, SPACE(g_cx), false},
                                {LG_RNN_V_DH, true, SPACE(dhy), false},  {LG_RNN_V_DC, true, SPACE(dcy), false},
                                {LG_RNN_V_DH0, false, SPACE(dhx), false}, {LG_RNN_V_DC0, false, SPACE(dcx), false}},
                 gru[] = {{LG_RNN_V_H0, true, SPACE(hx), false}, {LG_RNN_V_H_T, false, SPACE(hy), false}},
                 gru_grad[] = {{LG_RNN_V_H0, true, SPACE(g_hx), false},
                               {LG_RNN_V_DH, true, SPACE(dhy), false},
                               {LG_RNN_V_DH0, false, SPACE(dhx), false}};
    check_stages(LG_CELL_LSTM, 3, false, false, lstm, 4);
    check_stages(LG_CELL_LSTM, 3, false, true, lstm_grad, 6);
    check_stages(LG_CELL_GRU, 2, false, false, gru, 2);
    check_stages(LG_CELL_GRU, 2, false, true, gru_grad, 3);
    /* the top layer's y and dy are the top layer's own: nothing to interleave */
    lg_rnn_spec s = spec_of(LG_CELL_GRU, 5, ST_U, 2, false, true);
    lg_rnn_spaces p = lg_rnn_spaces_of(&s, ST_T, ST_B, 1000, 3000, true, false);
    lg_rnn_stage st[LG_RNN_STAGES_PER_LAYER * 2];
    ck_assert_int_eq(lg_rnn_stages_of(&s, &p, ST_T, ST_B, true, st), 6);
    ck_assert(st[3].v == LG_RNN_V_DH && st[3].q == 1 && st[3].off == p.dhy + 48 && st[3].in);
}
END_TEST

/* A single node stages nothing: cuDNN reads and writes its own tensors. */
START_TEST(stages_single)
{
    lg_rnn_stage st[LG_RNN_STAGES_PER_LAYER];
    for (int k = 0; k < 3; k++) {
        lg_rnn_spec s = spec_of((lg_cell_kind)k, 5, ST_U, 1, false, true);
        lg_rnn_spaces p = lg_rnn_spaces_of(&s, ST_T, ST_B, 1000, 3000, true, false);
        ck_assert_int_eq(lg_rnn_stages_of(&s, &p, ST_T, ST_B, false, st), 0);
        ck_assert_int_eq(lg_rnn_stages_of(&s, &p, ST_T, ST_B, true, st), 0);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rnn_pack");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, eligible_lstm_stack);
    tcase_add_test(tc, eligible_simple_relu_and_gru);
    tcase_add_loop_test(tc, every_refusal, 0, (int)N_REFUSALS);
    tcase_add_test(tc, refusal_names);
    tcase_add_test(tc, lstm_gate_order);
    tcase_add_test(tc, gru_gate_order);
    tcase_add_test(tc, matrices_transposed);
    tcase_add_test(tc, round_trips);
    tcase_add_test(tc, pseudo_layers_own_sources);
    tcase_add_test(tc, stacked_bidirectional_shapes);
    tcase_add_test(tc, layout_mismatches);
    tcase_add_test(tc, spaces_disjoint);
    tcase_add_test(tc, spaces_by_direction);
    tcase_add_test(tc, spaces_by_layers);
    tcase_add_test(tc, stages_bidirectional);
    tcase_add_test(tc, stages_stacked);
    tcase_add_test(tc, stages_single);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lg_check_run(suite()); }
