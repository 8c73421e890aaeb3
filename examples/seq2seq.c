/*
 * seq2seq.c — an encoder-decoder that learns to add, as in the Keras RNN
 * guide's section on return_state / initial_state (and Keras's "addition
 * RNN" example for the task): "123+45" -> "168".
 *
 *   encoder  Embedding(14, 16) -> LSTM(128) over the question, masked by
 *            each question's length; its final states (h, c) are the
 *            decoder's initial_state.
 *   decoder  Embedding(14, 16) -> LSTM(128, return_sequences) -> Dense(14)
 *            logits per answer step.
 *
 * Training uses teacher forcing: the decoder reads the true answer shifted
 * right by one step behind a start token, so every step learns from the
 * correct history. Inference has no true answer: a greedy loop (lg_loop
 * with lg_loop_until) feeds each step's argmax token back in as the next
 * input, with the same cell, embedding and Dense weights, and stops when
 * every example of the batch has emitted the end token (or after the
 * longest answer). The greedy loop is the model's eval_output, so
 * lg_fit's val_accuracy and lg_evaluate's accuracy measure decoding as it
 * is used, not the teacher-forced shortcut.
 *
 *     seq2seq [--epochs N] [--questions N] [--test-questions N] [--batch N]
 *             [--lr X] [--digits N] [--plot FILE] [--dot FILE] [--svg FILE]
 *             (--help: all of them)
 *
 * The questions are generated here from a seeded Philox stream; a pair
 * (a, b) is a test pair or a training pair by a hash of the pair, so no
 * test question is ever seen in training (lg_fit reports on them after
 * each epoch; nothing is selected by them); --seed seeds the weights and
 * the shuffling, not the questions. --digits sets the longest
 * number (1..6). Prints the summary, a line per epoch, the exact-answer
 * and per-token accuracy of greedy decoding on the test questions, and a
 * few decoded examples. Quick run: --epochs 1 --questions 2000
 * --test-questions 200.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "graph/loopgrad.h"

/* Tokens: PAD 0 (also what an all-zero logits row after the loop stopped
 * reads as), digits 1..10, '+', start and end. */
enum { PAD = 0, PLUS = 11, START = 12, END = 13, VOCAB = 14 };
enum { EMBED = 16, UNITS = 128, MAX_DIGITS = 6, SEED = 42, KEY_PAIR = 1, KEY_SPLIT = 2 };
static const char TOKEN_CHARS[VOCAB + 1] = " 0123456789+^$";

typedef struct args {
    int epochs, batch, digits;
    long questions, test_questions;
    double lr;
    uint64_t seed;
    cli_outputs out;
} args;

static int parse(int argc, char **argv, args *a)
{
    *a = (args){.epochs = 18, .batch = 64, .digits = 3, .questions = 20000, .test_questions = 2000, .lr = 0.003, .seed = 1};
    const cli_flag flags[] = {
        CLI_EPOCHS(&a->epochs),
        {"questions", CLI_LONG, &a->questions, 1, 10000000, NULL, "training questions"},
        {"test-questions", CLI_LONG, &a->test_questions, 1, 10000000, NULL, "held-out test questions"},
        CLI_BATCH(&a->batch), CLI_LR(&a->lr), CLI_SEED_FLAG(&a->seed),
        {"digits", CLI_INT, &a->digits, 1, MAX_DIGITS, NULL, "digits of the longest number"},
        CLI_PLOT_FLAG(&a->out), CLI_GRAPH_FLAGS(&a->out),
    };
    const cli c = {"seq2seq", "An LSTM encoder-decoder learns to add numbers written as digit strings.", flags,
                   CLI_COUNT(flags)};
    return cli_parse(&c, argc, argv);
}

/* ---- data ------------------------------------------------------------------ */

typedef struct shapes {
    int t_in, t_out; /* "a+b" padded; the sum's digits and the end token */
} shapes;

static shapes shapes_for(int digits) { return (shapes){2 * digits + 1, digits + 2}; }

/* Writes n's decimal digits as tokens at out; returns how many. */
static int put_number(long n, int32_t *out)
{
    char buf[16];
    int len = snprintf(buf, sizeof buf, "%ld", n);
    for (int i = 0; i < len; i++) out[i] = 1 + (buf[i] - '0');
    return len;
}

/* A number of 1..digits digits, the digit count uniform first as in Keras's
 * addition example, so short numbers are as common as long ones. */
static long draw_number(int digits, uint64_t *counter)
{
    int len = 1 + (int)(lg_philox_uniform(SEED, KEY_PAIR, (*counter)++) * digits);
    long lo = len == 1 ? 0 : 1, hi = 1;
    for (int i = 0; i < len; i++) hi *= 10;
    for (int i = 1; i < len; i++) lo *= 10;
    return lo + (long)(lg_philox_uniform(SEED, KEY_PAIR, (*counter)++) * (double)(hi - lo));
}

/* One pair in ten is a test pair, decided by the pair alone. */
static bool is_test_pair(long a, long b)
{
    return lg_philox_u32(SEED, KEY_SPLIT, (uint64_t)(a * 1000003 + b)) % 10 == 0;
}

/* n questions x i32 [n, t_in] ("a+b", PAD after) and answers y i32
 * [n, t_out] (the sum's digits, END, PAD after), drawn from the test or the
 * training pairs. *counter moves along the stream. */
static lg_status make_data(int digits, long n, bool test, uint64_t *counter, lg_tensor **x, lg_tensor **y)
{
    shapes sh = shapes_for(digits);
    lg_status s = lg_tensor_new(LG_I32, lg_shape_of(2, (int)n, sh.t_in), x);
    if (s == LG_OK) s = lg_tensor_new(LG_I32, lg_shape_of(2, (int)n, sh.t_out), y);
    if (s != LG_OK) return s;
    int32_t *xd = lg_tensor_data(*x), *yd = lg_tensor_data(*y);
    for (long i = 0; i < n; i++) {
        long a, b;
        do {
            a = draw_number(digits, counter), b = draw_number(digits, counter);
        } while (is_test_pair(a, b) != test);
        int32_t *q = xd + i * sh.t_in, *ans = yd + i * sh.t_out;
        int k = put_number(a, q);
        q[k++] = PLUS;
        put_number(b, q + k);
        ans[put_number(a + b, ans)] = END;
    }
    return LG_OK;
}

/* ---- the model --------------------------------------------------------------- */

typedef struct model {
    lg_graph *g;
    lg_cell *enc, *dec;
    lg_model_spec spec;
    uint64_t rng; /* --seed: weights rng .. rng + 4, shuffling rng + 5 */
} model;

/* The encoder's final (h, c) [B, UNITS] over x [B, t_in]. The lengths
 * (non-PAD tokens per row) mask the padding, so the states are those after
 * each question's last token. */
static void encode(model *m, lg_value x, lg_value states[2])
{
    lg_graph *g = m->g;
    int axis = 1;
    lg_value lengths = lg_sum(lg_compare(x, lg_scalar(g, LG_I32, PAD), LG_CMP_NE), &axis, 1, false); /* [B] */
    lg_embedding_opts eo = lg_embedding_opts_default();
    eo.seed = m->rng;
    lg_value e = lg_embedding(g, "encoder_embedding", x, VOCAB, EMBED, eo, NULL);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_state = true, o.lengths = lengths;
    lg_rnn_result r;
    if (lg_rnn(g, "encoder", m->enc, e, o, &r) == LG_OK) states[0] = r.states[0], states[1] = r.states[1];
}

/* Teacher forcing: the decoder reads [START, y_0 .. y_{T-2}] from the
 * encoder's states; logits [B, t_out, VOCAB]. */
static lg_value decode_teacher_forced(model *m, lg_value y, int t_out, const lg_value states[2])
{
    lg_graph *g = m->g;
    lg_value first = lg_slice(y, 1, 0, 1); /* [B, 1] */
    lg_value parts[2] = {lg_broadcast_like(lg_scalar(g, LG_I32, START), first), lg_slice(y, 1, 0, t_out - 1)};
    lg_embedding_opts eo = lg_embedding_opts_default();
    eo.seed = m->rng + 1;
    lg_value e = lg_embedding(g, "decoder_embedding", lg_concat(parts, 2, 1), VOCAB, EMBED, eo, NULL);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true, o.initial_state = states, o.n_initial_state = 2;
    lg_rnn_result r;
    if (lg_rnn(g, "decoder", m->dec, e, o, &r) != LG_OK) return lg_value_invalid();
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = m->rng + 2;
    return lg_dense(g, "dense", r.output, VOCAB, d);
}

/* Greedy decoding: a loop of at most t_out steps whose state is the
 * previous token (one-hot [B, VOCAB], START at first), the LSTM's (h, c)
 * and a done flag [B, 1]; it stops once every row has emitted END. The
 * embedding lookup is one-hot x table, and the argmax is the one-hot of
 * logits == max(logits) (the library has no argmax op; an exact tie of two
 * float logits would mix two embeddings). The cell is the training
 * decoder's and the table and Dense weights are found by name, so both
 * branches share every weight. Logits [B, t_out, VOCAB], zeros after the
 * stop. */
static lg_value decode_greedy(model *m, lg_value x, int t_out, const lg_value states[2])
{
    lg_graph *g = m->g;
    lg_value first = lg_squeeze(lg_slice(x, 1, 0, 1), 1); /* [B] */
    lg_value start = lg_one_hot(lg_broadcast_like(lg_scalar(g, LG_I32, START), first), VOCAB, LG_F32);
    lg_value none_done = lg_broadcast_like(lg_scalar(g, LG_F32, 0), lg_slice(start, 1, 0, 1)); /* [B, 1] */

    lg_loop_opts lo = lg_loop_opts_default();
    lo.max_steps = t_out;
    lg_loop *l = lg_loop_new(g, "greedy", lo);
    lg_value prev = lg_loop_state(l, start), done = lg_loop_state(l, none_done);
    lg_value s[2] = {lg_loop_state(l, states[0]), lg_loop_state(l, states[1])}, next[2], h;
    lg_value table = lg_loop_invariant(l, lg_graph_find_param(g, "decoder_embedding/embeddings"));
    lg_value kernel = lg_loop_invariant(l, lg_graph_find_param(g, "dense/kernel"));
    lg_value bias = lg_loop_invariant(l, lg_graph_find_param(g, "dense/bias"));

    lg_cell_step(m->dec, l, lg_matmul(prev, table, false, false), s, lg_value_invalid(), lg_value_invalid(), next, &h);
    lg_value logits = lg_add(lg_matmul(h, kernel, false, false), bias); /* [B, VOCAB] */
    int last = -1;
    lg_value token = lg_compare(logits, lg_max(logits, &last, 1, true), LG_CMP_EQ);
    lg_value done_next = lg_clip(lg_add(done, lg_slice(token, 1, END, 1)), 0, 1);
    lg_loop_next(l, prev, token);
    lg_loop_next(l, done, done_next);
    lg_loop_next(l, s[0], next[0]);
    lg_loop_next(l, s[1], next[1]);
    lg_loop_emit(l, logits);
    lg_loop_until(l, lg_compare(lg_sum(done_next, NULL, 0, false), lg_numel(done_next, NULL, 0), LG_CMP_GE));
    lg_value out;
    return lg_loop_end(l, NULL, &out) == LG_OK ? out : lg_value_invalid();
}

static lg_status build(model *m, shapes sh)
{
    lg_graph *g = m->g = lg_graph_new();
    lg_value x = lg_input(g, "question", LG_I32, lg_shape_of(2, -1, sh.t_in));
    lg_value y = lg_input(g, "answer", LG_I32, lg_shape_of(2, -1, sh.t_out));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, UNITS);
    co.seed = m->rng + 3;
    m->enc = lg_cell_new(g, "encoder_lstm", EMBED, co);
    co.seed = m->rng + 4;
    m->dec = lg_cell_new(g, "decoder_lstm", EMBED, co);
    if (!m->enc || !m->dec) return LG_ERR_GRAPH;
    lg_value states[2] = {lg_value_invalid(), lg_value_invalid()};
    encode(m, x, states);
    lg_value logits = decode_teacher_forced(m, y, sh.t_out, states);
    lg_value greedy = decode_greedy(m, x, sh.t_out, states);
    m->spec = lg_model_spec_default();
    m->spec.x = x, m->spec.y = y, m->spec.metric = LG_METRIC_ACCURACY;
    m->spec.loss = lg_sparse_categorical_crossentropy(y, logits, true);
    m->spec.output = logits;
    m->spec.eval_output = greedy; /* eval_loss stays the teacher-forced loss */
    return lg_graph_error(g) ? LG_ERR_GRAPH : LG_OK;
}

/* ---- reading the predictions ---------------------------------------------------- */

/* Row r of logits [rows, VOCAB]'s argmax (PAD for an all-zero row). */
static int argmax_row(const float *logits, int64_t r)
{
    int best = 0;
    for (int c = 1; c < VOCAB; c++)
        if (logits[r * VOCAB + c] > logits[r * VOCAB + best]) best = c;
    return best;
}

/* Tokens up to the first END or PAD as text into buf; returns buf. */
static const char *tokens_str(const int32_t *t, int n, char *buf)
{
    int k = 0;
    for (; k < n && t[k] != END && t[k] != PAD; k++) buf[k] = TOKEN_CHARS[t[k]];
    buf[k] = 0;
    return buf;
}

/* What a model that ignores the question reaches on y [N, t_out]: always
 * the commonest token of each position, scored per position as the
 * accuracy metric is. */
static double majority_per_position(const lg_tensor *y, shapes sh)
{
    const int32_t *yd = lg_tensor_cdata(y);
    int64_t n = lg_tensor_shape(y).dims[0], hits = 0;
    for (int t = 0; t < sh.t_out; t++) {
        int64_t count[VOCAB] = {0}, best = 0;
        for (int64_t i = 0; i < n; i++) count[yd[i * sh.t_out + t]]++;
        for (int v = 0; v < VOCAB; v++) best = count[v] > best ? count[v] : best;
        hits += best;
    }
    return (double)hits / (double)(n * sh.t_out);
}

/* Exact-answer and per-token accuracy of the greedy predictions [N, t_out,
 * VOCAB] against y [N, t_out]: tokens are compared up to and including the
 * true END, and after a predicted END the prediction reads as PAD. Prints
 * the first `show` questions with their decoded answers. */
static void score(const lg_tensor *x, const lg_tensor *y, const lg_tensor *pred, shapes sh, int show)
{
    int64_t n = lg_tensor_shape(y).dims[0], exact = 0, hits = 0, tokens = 0;
    const int32_t *xd = lg_tensor_cdata(x), *yd = lg_tensor_cdata(y);
    const float *pd = lg_tensor_cdata(pred);
    for (int64_t i = 0; i < n; i++) {
        int32_t guess[MAX_DIGITS + 2];
        bool ended = false, right = true;
        for (int t = 0; t < sh.t_out; t++) {
            guess[t] = ended ? PAD : argmax_row(pd, i * sh.t_out + t);
            ended = ended || guess[t] == END;
        }
        const int32_t *truth = yd + i * sh.t_out;
        for (int t = 0; t < sh.t_out; t++) {
            hits += guess[t] == truth[t], tokens++, right = right && guess[t] == truth[t];
            if (truth[t] == END) break;
        }
        exact += right;
        if (i < show) {
            char q[2 * MAX_DIGITS + 2], a[MAX_DIGITS + 2], p[MAX_DIGITS + 2];
            tokens_str(xd + i * sh.t_in, sh.t_in, q);
            printf("  %*s = %-*s  decoded %-*s %s\n", sh.t_in, q, sh.t_out, tokens_str(truth, sh.t_out, a), sh.t_out,
                   tokens_str(guess, sh.t_out, p), right ? "ok" : "WRONG");
        }
    }
    printf("test exact-answer accuracy %.4f, per-token accuracy %.4f (%lld questions, greedy decoding)\n",
           (double)exact / (double)n, (double)hits / (double)tokens, (long long)n);
}

/* ---- main -------------------------------------------------------------------- */

static int fail(const char *what, lg_graph *g)
{
    const char *msg = g && lg_graph_error(g) ? lg_graph_error(g) : lg_last_error();
    fprintf(stderr, "seq2seq: %s: %s\n", what, msg);
    return 1;
}

/* Every trainable parameter, for the optimizer. */
static int trainable(const lg_graph *g, lg_value *params, int cap)
{
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(g) && n < cap; i++)
        if (lg_param_trainable(lg_graph_param(g, i))) params[n++] = lg_graph_param(g, i);
    return n;
}

/* Everything main allocates, freed in one place whatever step failed. */
typedef struct session {
    lg_tensor *x_train, *y_train, *x_test, *y_test, *pred;
    model m;
    lg_optimizer *opt;
    lg_trainer *tr;
    lg_dataset *train, *test;
} session;

static void session_free(session *S)
{
    lg_tensor_free(S->pred);
    lg_dataset_free(S->train), lg_dataset_free(S->test);
    lg_tensor_free(S->x_train), lg_tensor_free(S->y_train), lg_tensor_free(S->x_test), lg_tensor_free(S->y_test);
    lg_trainer_free(S->tr), lg_optimizer_free(S->opt);
    lg_cell_free(S->m.enc), lg_cell_free(S->m.dec), lg_graph_free(S->m.g);
}

static int run(session *S, const args *a)
{
    shapes sh = shapes_for(a->digits);
    uint64_t counter = 0;
    if (make_data(a->digits, a->questions, false, &counter, &S->x_train, &S->y_train) ||
        make_data(a->digits, a->test_questions, true, &counter, &S->x_test, &S->y_test))
        return fail("making the data", NULL);

    model *m = &S->m;
    m->rng = a->seed;
    if (build(m, sh) != LG_OK) return fail("building the model", m->g);
    if (lg_graph_summary(m->g, stdout)) return fail("summary", m->g);

    lg_value params[16];
    int n = trainable(m->g, params, 16);
    lg_adam_opts ao = lg_adam_opts_default();
    ao.learning_rate = a->lr, ao.clip.global_clipnorm = 1.0;
    if (lg_optimizer_adam(m->g, params, n, ao, &S->opt) || lg_trainer_new(m->g, m->spec, S->opt, &S->tr))
        return fail("setting up training", m->g);
    if (cli_write_graph(&a->out, m->g)) return fail("writing the graph", NULL);

    lg_dataset_opts dopt = lg_dataset_opts_default();
    dopt.batch_size = a->batch, dopt.seed = a->seed + 5;
    if (lg_dataset_new(S->x_train, S->y_train, dopt, &S->train)) return fail("training data", NULL);
    dopt.shuffle = false, dopt.batch_size = 500;
    if (lg_dataset_new(S->x_test, S->y_test, dopt, &S->test)) return fail("test data", NULL);
    printf("Adding numbers of up to %d digits: %ld training questions, %ld held-out test questions "
           "(batch %d, Adam lr %g)\n", a->digits, a->questions, a->test_questions, a->batch, a->lr);
    printf("accuracy is teacher-forced per token; val_accuracy is greedy decoding per position\n");

    lg_fit_opts fo = lg_fit_opts_default();
    fo.epochs = a->epochs, fo.verbose = 2;
    lg_eval_result ev;
    if (lg_fit(S->tr, S->train, S->test, fo)) return fail("training", NULL);
    if (lg_evaluate(S->tr, S->test, &ev)) return fail("evaluating", NULL);
    printf("test loss (teacher forced) %.4f, greedy accuracy per position %.4f (the commonest token at each "
           "position: %.4f)\n", ev.loss, ev.metric, majority_per_position(S->y_test, sh));
    if (lg_predict(S->tr, S->test, &S->pred)) return fail("predicting", NULL);
    score(S->x_test, S->y_test, S->pred, sh, 10);
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
