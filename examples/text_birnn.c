/*
 * text_birnn.c — text classification with a bidirectional LSTM over a
 * masked embedding, the Keras RNN guide's Bidirectional model (and the
 * "Bidirectional LSTM on IMDB" example) on a text task: which licence does
 * a passage of 20 to 60 words come from?
 *
 *     Embedding(vocab, 32, mask_zero=True)
 *     -> Bidirectional(LSTM(32), merge_mode="concat") -> Dense(4) logits
 *
 * trained with Adam on sparse categorical cross-entropy.
 *
 *     text_birnn [--epochs N] [--batch N] [--lr X] [--seed N] [--limit N]
 *                [--data DIR] [--plot FILE] [--dot FILE] [--svg FILE]
 *                (--help: all of them)
 *
 * Data (examples/text/licences.h): Apache-2.0, MPL-2.0, GPL-2 and GFDL-1.3
 * from /usr/share/common-licenses (--data DIR), cut into pieces of 20 to 60
 * words with every 5th held out as a test passage; the training passages
 * are overlapping crops (one every 2 words) of the text between them. Word
 * ids are padded after the words to 60 steps.
 * Masking: each row's length is computed in the graph from its ids (the
 * count of nonzero ids, Keras's mask_zero), so the dataset carries only ids
 * and labels. With the lengths the forward LSTM stops at each row's last
 * word and the backward one starts there, so neither reads the padding.
 *
 * --limit N trains on N training passages only (quick runs). Prints the
 * model summary, a progress line per epoch, the test accuracy beside the
 * majority-class baseline and a confusion matrix of the test passages.
 */
#include "text/classify.h"

enum { UNITS = 32 };

/* Bidirectional(LSTM(32)), outputs concatenated: [B, T, 32] -> [B, 64]. */
static lg_status layers(lg_graph *g, lg_value emb, lg_value lengths, uint64_t seed, lg_cell **cells,
                        lg_value *features)
{
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, UNITS);
    co.seed = seed;
    cells[0] = lg_cell_new(g, "forward_lstm", TEXT_EMBED, co);
    co.seed = seed + 1;
    cells[1] = lg_cell_new(g, "backward_lstm", TEXT_EMBED, co);
    if (!cells[0] || !cells[1]) return LG_ERR_GRAPH;
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.lengths = lengths;
    lg_bidirectional_result r;
    lg_status s = lg_bidirectional(g, "bidirectional", cells[0], cells[1], emb, LG_MERGE_CONCAT, ro, &r); /* [B, 64] */
    if (s == LG_OK) *features = r.output;
    return s;
}

int main(int argc, char **argv)
{
    const text_example ex = {.name = "text_birnn", .epochs = 6, .lr = 0.003, .layers = layers};
    return text_example_main(&ex, argc, argv);
}
