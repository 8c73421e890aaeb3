/*
 * text_rnn.c — text classification with stacked SimpleRNNs over a masked
 * embedding, the Keras RNN guide's Embedding + SimpleRNN model on a text
 * task as in Keras's text-classification tutorials: which licence does a
 * passage of 20 to 60 words come from?
 *
 *     Embedding(vocab, 32, mask_zero=True)
 *     -> SimpleRNN(32, return_sequences=True) -> SimpleRNN(32) -> Dense(4) logits
 *
 * trained with Adam on sparse categorical cross-entropy.
 *
 *     text_rnn [--epochs N] [--batch N] [--lr X] [--seed N] [--limit N]
 *              [--data DIR] [--plot FILE] [--dot FILE] [--svg FILE]
 *              (--help: all of them)
 *
 * Data (examples/text/licences.h): Apache-2.0, MPL-2.0, GPL-2 and GFDL-1.3
 * from /usr/share/common-licenses (--data DIR), cut into pieces of 20 to 60
 * words with every 5th held out as a test passage; the training passages
 * are overlapping crops (one every 2 words) of the text between them. Word
 * ids are padded after the words to 60 steps.
 * Masking: each row's length is computed in the graph from its ids (the
 * count of nonzero ids, Keras's mask_zero), so the dataset carries only ids
 * and labels. Both layers take the lengths: padding never changes a state.
 * The first layer's outputs past a row's length repeat its last valid
 * output (Keras 3's default, zero_output_for_mask false); the second layer,
 * masked by the same lengths, never reads them.
 *
 * --limit N trains on N training passages only (quick runs). Prints the
 * model summary, a progress line per epoch, the test accuracy beside the
 * majority-class baseline and a confusion matrix of the test passages.
 */
#include "text/classify.h"

enum { UNITS = 32 };

/* SimpleRNN (sequences) -> SimpleRNN: [B, T, 32] -> [B, 32], the second
 * layer's output taken at each row's last word. */
static lg_status layers(lg_graph *g, lg_value emb, lg_value lengths, uint64_t seed, lg_cell **cells,
                        lg_value *features)
{
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_SIMPLE_RNN, UNITS);
    co.seed = seed;
    cells[0] = lg_cell_new(g, "simple_rnn", TEXT_EMBED, co);
    co.seed = seed + 1;
    cells[1] = lg_cell_new(g, "simple_rnn_1", UNITS, co);
    if (!cells[0] || !cells[1]) return LG_ERR_GRAPH;
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.lengths = lengths;
    ro.return_sequences = true;
    lg_rnn_result r1, r2;
    lg_status s = lg_rnn(g, "simple_rnn", cells[0], emb, ro, &r1); /* [B, T, 32] */
    ro.return_sequences = false;
    if (s == LG_OK) s = lg_rnn(g, "simple_rnn_1", cells[1], r1.output, ro, &r2); /* [B, 32] */
    if (s == LG_OK) *features = r2.output;
    return s;
}

int main(int argc, char **argv)
{
    const text_example ex = {.name = "text_rnn", .epochs = 8, .lr = 0.001, .layers = layers};
    return text_example_main(&ex, argc, argv);
}
