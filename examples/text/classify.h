/*
 * classify.h — what the two text examples share: flags, the model around
 * the recurrent layers (ids -> Embedding(vocab, 32) -> recurrent layers ->
 * Dense(4) logits, sparse cross-entropy, Adam), training, evaluation and the
 * report. Each example supplies only its recurrent layers.
 *
 *     text_EXAMPLE [--epochs N] [--batch N] [--lr X] [--seed N] [--limit N] [--data DIR]
 *                  [--plot FILE] [--dot FILE] [--svg FILE]   (--help: all)
 */
#ifndef TEXT_CLASSIFY_H
#define TEXT_CLASSIFY_H

#include "graph/loopgrad.h"

enum { TEXT_EMBED = 32, TEXT_MAX_CELLS = 2 };

/* Build the recurrent layers on emb [B, T, TEXT_EMBED] with per-row
 * lengths (i32 [B], padding masked); create the cells in cells[] (freed by
 * the driver), their weights seeded from seed, seed + 1, and set
 * *features [B, F]. */
typedef lg_status (*text_layers_fn)(lg_graph *g, lg_value emb, lg_value lengths, uint64_t seed, lg_cell **cells,
                                    lg_value *features);

typedef struct text_example {
    const char *name; /* the program's name, for messages */
    int epochs;       /* defaults of --epochs and --lr (batch 32) */
    double lr;
    text_layers_fn layers;
} text_example;

/* Parse the flags, train, evaluate, report; the exit code. */
int text_example_main(const text_example *ex, int argc, char **argv);

#endif
