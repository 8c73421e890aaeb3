/*
 * char_lm.c — a character-level language model, after Keras's character-
 * level text generation example: an LSTM reads fixed-length windows of the
 * GNU GPL version 3 (/usr/share/common-licenses/GPL-3, on every Debian
 * system) and predicts the next character at every step, then writes new
 * text one character at a time from a start string (--start).
 *
 *   Embedding(V, 32) -> LSTM(128, return_sequences) -> Dense(V) logits,
 *   sparse categorical cross-entropy over every step, Adam, lg_fit.
 *
 * Sampling runs in the graph, in a loop that feeds each step's character
 * back in as the next input (lg_loop with lg_loop_until): the LSTM first
 * reads the start string (all but its last character, with lg_rnn and the
 * same weights), then the loop starts from its last character and stops
 * at the end of a paragraph (a blank line) or after --length characters.
 * The graph has no random op, so the randomness comes in as data: the loop
 * also reads a sequence of noise, T * Gumbel(0, 1) per step and character,
 * drawn in C from a seeded Philox stream, and picks argmax(logits + noise).
 * By the Gumbel-max trick that is an exact sample from softmax(logits / T)
 * (temperature T); T = 0 is greedy decoding. Feeding the noise keeps the
 * whole decoding in one graph run and makes the sample reproducible.
 *
 *     char_lm [--epochs N] [--batch N] [--lr X] [--seed N] [--limit N]
 *             [--start TEXT] [--temperature X] [--length N] [--data FILE]
 *             [--plot FILE] [--dot FILE] [--svg FILE]   (--help: all)
 *
 * Every tenth block of 1024 characters validates (non-overlapping windows
 * of 64 characters), the rest trains (windows of 64 every 16 characters),
 * so the text needs 9,281 characters or more.
 * --limit uses only the first N training windows (quick runs); --start,
 * the text the samples continue, needs at least 2 characters, all of them
 * in the text; --seed seeds the weights, the shuffling and the sampling.
 * Prints the summary, a line per epoch, the validation loss and perplexity
 * against a unigram baseline, and a greedy and a sampled continuation of
 * the start string.
 * Quick run: --epochs 1 --limit 64 --length 40.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "graph/loopgrad.h"

enum { WINDOW = 64, STRIDE = 16, BLOCK = 1024, EMBED = 32, UNITS = 128, KEY_NOISE = 1 };

typedef struct args {
    int epochs, batch, length;
    long limit;
    double lr, temperature;
    uint64_t seed;
    const char *start, *data;
    cli_outputs out;
} args;

static int parse(int argc, char **argv, args *a)
{
    *a = (args){.epochs = 20, .batch = 32, .length = 400, .lr = 0.003, .temperature = 0.5, .seed = 1,
                .start = "This License ", .data = "/usr/share/common-licenses/GPL-3"};
    const cli_flag flags[] = {
        CLI_EPOCHS(&a->epochs), CLI_BATCH(&a->batch), CLI_LR(&a->lr), CLI_SEED_FLAG(&a->seed), CLI_LIMIT(&a->limit),
        {"start", CLI_TEXT, &a->start, 0, 0, "TEXT", "the text the samples continue, 2 characters or more"},
        {"temperature", CLI_DOUBLE, &a->temperature, 0, 100, NULL, "sampling temperature, 0 for greedy"},
        {"length", CLI_INT, &a->length, 1, 1000000, NULL, "longest sample, in characters"},
        {"data", CLI_TEXT, &a->data, 0, 0, "FILE", "the text to learn"},
        CLI_PLOT_FLAG(&a->out), CLI_GRAPH_FLAGS(&a->out),
    };
    const cli c = {"char_lm", "Trains a character-level LSTM language model and samples text from it.", flags,
                   CLI_COUNT(flags)};
    int rc = cli_parse(&c, argc, argv);
    if (rc == CLI_RUN && strlen(a->start) < 2) {
        fprintf(stderr, "char_lm: --start '%s': needs at least 2 characters\n", a->start);
        return 2;
    }
    return rc;
}

/* ---- the text ------------------------------------------------------------------ */

typedef struct corpus {
    unsigned char *text;
    long n;
    int vocab;             /* distinct bytes */
    int id[256];           /* byte -> id, -1 when absent */
    unsigned char ch[256]; /* id -> byte */
} corpus;

/* Read the whole file and number its distinct bytes in byte order; false
 * with errno set when reading fails. */
static bool corpus_read(const char *path, corpus *c)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    long cap = 0;
    for (size_t got = 1; got > 0;) {
        if (c->n == cap) {
            unsigned char *t = realloc(c->text, (size_t)(cap = cap ? 2 * cap : 65536));
            if (!t) break;
            c->text = t;
        }
        got = fread(c->text + c->n, 1, (size_t)(cap - c->n), f);
        c->n += (long)got;
    }
    bool ok = !ferror(f) && c->n < cap;
    fclose(f);
    bool seen[256] = {0};
    for (long i = 0; i < c->n; i++) seen[c->text[i]] = true;
    for (int b = 0; b < 256; b++) {
        c->id[b] = seen[b] ? c->vocab : -1;
        if (seen[b]) c->ch[c->vocab++] = (unsigned char)b;
    }
    return ok;
}

/* Where the windows of one split start: the text is cut into blocks of
 * BLOCK characters and every tenth block validates, so both splits read
 * every part of the licence (its last tenth alone is the "How to Apply"
 * appendix). Windows lie inside a block, one every `stride` characters.
 * Writes the starts to `starts` (when not NULL) and returns their count. */
static long window_starts(const corpus *c, bool validation, long stride, long *starts)
{
    long k = 0;
    for (long lo = 0; lo < c->n; lo += BLOCK) {
        long hi = lo + BLOCK < c->n ? lo + BLOCK : c->n;
        if ((lo / BLOCK % 10 == 9) != validation) continue;
        for (long p = lo; p + WINDOW < hi; p += stride, k++)
            if (starts) starts[k] = p;
    }
    return k;
}

/* The windows of one split (at most `limit`, 0: all): x i32 [n, WINDOW] and
 * y the same shifted by one character. */
static lg_status make_windows(const corpus *c, bool validation, long stride, long limit, lg_tensor **x, lg_tensor **y)
{
    long n = window_starts(c, validation, stride, NULL);
    long *starts = malloc((size_t)(n + 1) * sizeof *starts); /* + 1: no malloc(0) for a tiny text */
    lg_status s = starts ? LG_OK : LG_ERR_OUT_OF_MEMORY;
    if (limit > 0 && limit < n) n = limit;
    if (s == LG_OK) s = lg_tensor_new(LG_I32, lg_shape_of(2, (int)n, WINDOW), x);
    if (s == LG_OK) s = lg_tensor_new(LG_I32, lg_shape_of(2, (int)n, WINDOW), y);
    if (s == LG_OK) {
        window_starts(c, validation, stride, starts);
        int32_t *xd = lg_tensor_data(*x), *yd = lg_tensor_data(*y);
        for (long k = 0; k < n; k++)
            for (int t = 0; t < WINDOW; t++) {
                xd[k * WINDOW + t] = c->id[c->text[starts[k] + t]];
                yd[k * WINDOW + t] = c->id[c->text[starts[k] + t + 1]];
            }
    }
    free(starts);
    return s;
}

/* The perplexity of the validation targets under the training targets'
 * character frequencies (add-one smoothed): what a model without context
 * reaches. */
static double unigram_perplexity(const lg_tensor *y_train, const lg_tensor *y_val, int vocab)
{
    double count[256] = {0}, nll = 0;
    const int32_t *t = lg_tensor_cdata(y_train), *v = lg_tensor_cdata(y_val);
    int64_t n_train = lg_tensor_numel(y_train), n_val = lg_tensor_numel(y_val);
    for (int64_t i = 0; i < n_train; i++) count[t[i]] += 1;
    for (int64_t i = 0; i < n_val; i++) nll -= log((count[v[i]] + 1) / (double)(n_train + vocab));
    return exp(nll / (double)n_val);
}

/* ---- the model ------------------------------------------------------------------ */

typedef struct model {
    lg_graph *g;
    lg_cell *cell;
    lg_model_spec spec;
    lg_value seed, noise, sample; /* the sampler: [1, S] ids, [1, L, V] noise -> [1, L, V] one-hot */
    uint64_t rng;                 /* --seed: weights rng, rng + 1, rng + 2; shuffling + 3; noise + 6 */
} model;

/* Embedding -> LSTM -> Dense logits over x [B, T] ids; with states, the
 * LSTM starts from them and they get its final states. */
static lg_value logits_of(model *m, lg_value x, int vocab, const char *rnn_name, lg_value *states)
{
    lg_embedding_opts eo = lg_embedding_opts_default();
    eo.seed = m->rng;
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;
    lg_rnn_result r;
    if (lg_rnn(m->g, rnn_name, m->cell, lg_embedding(m->g, "embedding", x, vocab, EMBED, eo, NULL), o, &r) != LG_OK)
        return lg_value_invalid();
    if (states) states[0] = r.states[0], states[1] = r.states[1];
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = m->rng + 1;
    return lg_dense(m->g, "dense", r.output, vocab, d);
}

/* The sampler: the LSTM reads the seed but its last character, then a loop
 * over the noise [1, L, V] feeds back argmax(logits + noise_t) as one-hot
 * (the lookup is one-hot x table) and stops after two newlines in a row
 * (newline < 0: never). Emits each step's one-hot [1, V]; rows after the
 * stop are zero. */
static lg_value sampler(model *m, int seed_len, int vocab, int newline)
{
    lg_graph *g = m->g;
    lg_value states[2] = {lg_value_invalid(), lg_value_invalid()};
    logits_of(m, lg_slice(m->seed, 1, 0, seed_len - 1), vocab, "prime", states);
    lg_value last = lg_squeeze(lg_slice(m->seed, 1, seed_len - 1, 1), 1); /* [1] */

    lg_loop_opts lo = lg_loop_opts_default();
    lg_loop *l = lg_loop_new(g, "sample", lo);
    lg_value noise_t = lg_loop_seq(l, m->noise);
    lg_value prev = lg_loop_state(l, lg_one_hot(last, vocab, LG_F32));
    lg_value s[2] = {lg_loop_state(l, states[0]), lg_loop_state(l, states[1])}, next[2], h;
    lg_value table = lg_loop_invariant(l, lg_graph_find_param(g, "embedding/embeddings"));
    lg_value kernel = lg_loop_invariant(l, lg_graph_find_param(g, "dense/kernel"));
    lg_value bias = lg_loop_invariant(l, lg_graph_find_param(g, "dense/bias"));

    lg_cell_step(m->cell, l, lg_matmul(prev, table, false, false), s, lg_value_invalid(), lg_value_invalid(), next, &h);
    lg_value z = lg_add(lg_add(lg_matmul(h, kernel, false, false), bias), noise_t); /* [1, V] */
    int axis = -1;
    lg_value token = lg_compare(z, lg_max(z, &axis, 1, true), LG_CMP_EQ);
    lg_loop_next(l, prev, token);
    lg_loop_next(l, s[0], next[0]);
    lg_loop_next(l, s[1], next[1]);
    lg_loop_emit(l, token);
    if (newline >= 0) {
        lg_value both = lg_mul(lg_slice(prev, 1, newline, 1), lg_slice(token, 1, newline, 1));
        lg_loop_until(l, lg_compare(lg_sum(both, NULL, 0, false), lg_scalar(lg_loop_body(l), LG_F32, 0), LG_CMP_GT));
    }
    lg_value out;
    return lg_loop_end(l, NULL, &out) == LG_OK ? out : lg_value_invalid();
}

static lg_status build(model *m, int vocab, int seed_len, int newline)
{
    lg_graph *g = m->g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_I32, lg_shape_of(2, -1, WINDOW));
    lg_value y = lg_input(g, "y", LG_I32, lg_shape_of(2, -1, WINDOW));
    m->seed = lg_input(g, "seed", LG_I32, lg_shape_of(2, 1, seed_len));
    m->noise = lg_input(g, "noise", LG_F32, lg_shape_of(3, 1, -1, vocab));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, UNITS);
    co.seed = m->rng + 2;
    m->cell = lg_cell_new(g, "lstm", EMBED, co);
    if (!m->cell) return LG_ERR_GRAPH;
    lg_value logits = logits_of(m, x, vocab, "lstm", NULL); /* [B, T, V] */
    m->sample = sampler(m, seed_len, vocab, newline);
    m->spec = lg_model_spec_default();
    m->spec.x = x, m->spec.y = y, m->spec.metric = LG_METRIC_ACCURACY;
    m->spec.loss = lg_sparse_categorical_crossentropy(y, logits, true);
    m->spec.output = logits;
    return lg_graph_error(g) ? LG_ERR_GRAPH : LG_OK;
}

/* ---- sampling --------------------------------------------------------------------- */

/* Continue the seed for at most `length` characters at `temperature` (0:
 * greedy) and print it. The noise is temperature * Gumbel(0, 1) from the
 * Philox stream (--seed + 6, KEY_NOISE). */
static lg_status generate(model *m, const corpus *c, const char *seed, int length, double temperature)
{
    int seed_len = (int)strlen(seed), vocab = c->vocab;
    lg_tensor *ids = NULL, *noise = NULL, *out = NULL;
    lg_status s = lg_tensor_new(LG_I32, lg_shape_of(2, 1, seed_len), &ids);
    if (s == LG_OK) s = lg_tensor_new(LG_F32, lg_shape_of(3, 1, length, vocab), &noise);
    if (s == LG_OK) {
        int32_t *id = lg_tensor_data(ids);
        float *nz = lg_tensor_data(noise);
        for (int i = 0; i < seed_len; i++) id[i] = c->id[(unsigned char)seed[i]];
        for (int64_t i = 0; temperature > 0 && i < (int64_t)length * vocab; i++) {
            double u = fmax(lg_philox_uniform(m->rng + 6, KEY_NOISE, (uint64_t)i), 1e-300);
            nz[i] = (float)(-temperature * log(-log(u)));
        }
        lg_feed feeds[2] = {{m->seed, ids}, {m->noise, noise}};
        s = lg_graph_run(m->g, feeds, 2, &m->sample, 1, &out);
    }
    if (s == LG_OK) {
        const float *p = lg_tensor_cdata(out);
        printf("--- %s (temperature %g) ---\n%s", temperature > 0 ? "sampled" : "greedy", temperature, seed);
        for (int t = 0; t < length; t++) {
            int best = -1;
            for (int v = 0; v < vocab; v++)
                if (p[(int64_t)t * vocab + v] > 0) best = v;
            if (best < 0) break; /* the loop stopped */
            putchar(c->ch[best]);
        }
        printf("\n---\n");
    }
    lg_tensor_free(ids), lg_tensor_free(noise), lg_tensor_free(out);
    return s;
}

/* ---- main ----------------------------------------------------------------------- */

static int fail(const char *what, lg_graph *g)
{
    fprintf(stderr, "char_lm: %s: %s\n", what, g && lg_graph_error(g) ? lg_graph_error(g) : lg_last_error());
    return 1;
}

/* Everything main allocates, freed in one place whatever step failed. */
typedef struct session {
    corpus c;
    lg_tensor *x_train, *y_train, *x_val, *y_val;
    model m;
    lg_optimizer *opt;
    lg_trainer *tr;
    lg_dataset *train, *val;
} session;

static void session_free(session *S)
{
    lg_dataset_free(S->train), lg_dataset_free(S->val);
    lg_tensor_free(S->x_train), lg_tensor_free(S->y_train), lg_tensor_free(S->x_val), lg_tensor_free(S->y_val);
    lg_trainer_free(S->tr), lg_optimizer_free(S->opt), lg_cell_free(S->m.cell), lg_graph_free(S->m.g);
    free(S->c.text);
}

static int run(session *S, const args *a)
{
    corpus *c = &S->c;
    if (!corpus_read(a->data, c)) {
        fprintf(stderr, "char_lm: reading %s: %s\n", a->data, strerror(errno));
        return 1;
    }
    /* said here, not as the empty dataset lg_dataset_new would refuse later */
    if (window_starts(c, false, STRIDE, NULL) == 0 || window_starts(c, true, WINDOW, NULL) == 0) {
        fprintf(stderr, "char_lm: %s: %ld characters are too few; the text needs %d or more (every tenth block of %d "
                "characters validates, in windows of %d)\n", a->data, c->n, 9 * BLOCK + WINDOW + 1, BLOCK, WINDOW);
        return 1;
    }
    for (const char *p = a->start; *p; p++)
        if (c->id[(unsigned char)*p] < 0) {
            fprintf(stderr, "char_lm: --start: the character '%c' is not in %s\n", *p, a->data);
            return 2;
        }
    if (make_windows(c, false, STRIDE, a->limit, &S->x_train, &S->y_train) ||
        make_windows(c, true, WINDOW, 0, &S->x_val, &S->y_val))
        return fail("making windows", NULL);

    model *m = &S->m;
    m->rng = a->seed;
    if (build(m, c->vocab, (int)strlen(a->start), c->id['\n']) != LG_OK) return fail("building the model", m->g);
    if (lg_graph_summary(m->g, stdout)) return fail("summary", m->g);

    lg_value params[8];
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(m->g) && n < 8; i++)
        if (lg_param_trainable(lg_graph_param(m->g, i))) params[n++] = lg_graph_param(m->g, i);
    lg_adam_opts ao = lg_adam_opts_default();
    ao.learning_rate = a->lr, ao.clip.global_clipnorm = 1.0;
    if (lg_optimizer_adam(m->g, params, n, ao, &S->opt) || lg_trainer_new(m->g, m->spec, S->opt, &S->tr))
        return fail("setting up training", m->g);
    if (cli_write_graph(&a->out, m->g)) return fail("writing the graph", NULL);

    lg_dataset_opts dopt = lg_dataset_opts_default();
    dopt.batch_size = a->batch, dopt.seed = a->seed + 3;
    if (lg_dataset_new(S->x_train, S->y_train, dopt, &S->train)) return fail("training data", NULL);
    dopt.shuffle = false, dopt.batch_size = 256;
    if (lg_dataset_new(S->x_val, S->y_val, dopt, &S->val)) return fail("validation data", NULL);
    printf("%s: %ld characters, %d distinct; %lld training windows of %d, %lld validation windows "
           "(batch %d, Adam lr %g)\n", a->data, c->n, c->vocab, (long long)lg_dataset_size(S->train), WINDOW,
           (long long)lg_dataset_size(S->val), a->batch, a->lr);

    lg_fit_opts fo = lg_fit_opts_default();
    fo.epochs = a->epochs, fo.verbose = 2;
    lg_eval_result ev;
    if (lg_fit(S->tr, S->train, S->val, fo)) return fail("training", NULL);
    if (lg_evaluate(S->tr, S->val, &ev)) return fail("evaluating", NULL);
    printf("validation loss %.4f, perplexity %.2f (unigram baseline %.2f), next-character accuracy %.4f\n", ev.loss,
           exp(ev.loss), unigram_perplexity(S->y_train, S->y_val, c->vocab), ev.metric);
    if (generate(m, c, a->start, a->length, 0) || generate(m, c, a->start, a->length, a->temperature))
        return fail("sampling", NULL);
    if (cli_write_plot(&a->out, S->tr, m->spec.metric)) return fail("plotting the learning curves", NULL);
    return 0;
}

int main(int argc, char **argv)
{
    args a;
    int rc = parse(argc, argv, &a);
    if (rc != CLI_RUN) return rc;
    session S = {0};
    rc = run(&S, &a);
    session_free(&S);
    return rc;
}
