/*
 * licences.h — the data of the text-classification examples (text_rnn.c,
 * text_birnn.c): passages of the licence texts every Debian system has in
 * /usr/share/common-licenses, labelled by the licence they come from.
 *
 *     licences c;
 *     if (licences_load(licences_opts_default(), &c) != LG_OK) fprintf(stderr, "%s\n", c.error);
 *     // c.x_train i32 [N, 60] word ids padded after the words, c.y_train i32 [N]
 *     lg_value ids = lg_input(g, "ids", LG_I32, lg_shape_of(2, -1, -1)); // [B, T]
 *     lg_rnn_opts o = lg_rnn_opts_default();
 *     o.lengths = licences_mask_lengths(ids);                           // [B]
 *     ...
 *     licences_free(&c);
 *
 * Passages: each licence is lowercased and split into words (runs of ASCII
 * letters and digits, as Keras's TextVectorization standardises), then cut
 * into consecutive pieces of min_words..max_words words, each length drawn
 * from the seeded Philox stream (init.h). Every test_every-th piece is a
 * test passage, so the test passages cover every part of every licence.
 * The words between two test passages are training text, and the training
 * passages are crops of it: one starting every `stride` words, of a random
 * length, so they overlap and share no word with a test passage. A few
 * hundred disjoint passages are too few: recurrent models learn them by
 * heart and do no better than chance on the test passages; the crops show
 * every phrase at many positions and lengths (the random-crop augmentation
 * of image models).
 *
 * Vocabulary (from the training text only, as a tokenizer adapted on
 * training data, each word occurrence counted once): id 0 is padding, 1 the
 * out-of-vocabulary id "[UNK]", then the words seen at least min_count
 * times, most frequent first (ties in alphabetical order), Keras
 * TextVectorization's order. With min_count 2 the words seen once are [UNK]
 * in training too, so the [UNK] embedding is trained for the unseen words
 * of the test passages.
 *
 * Padding: rows are padded after their words (LG_PAD_POST) to max_words, so a
 * row's valid steps come first, as loopgrad's masking by lengths expects; no
 * word has id 0, so the count of nonzero ids is the row's length (Keras's
 * Embedding(mask_zero=True)).
 */
#ifndef LICENCES_H
#define LICENCES_H

#include <stdint.h>
#include <stdio.h>

#include "graph/loopgrad.h"

enum { LICENCES_CLASSES = 4, LICENCES_PAD = 0, LICENCES_OOV = 1 };

typedef struct licences_opts {
    const char *dir;        /* where the licence files are; default /usr/share/common-licenses */
    int min_words;          /* passage lengths; default 20 */
    int max_words;          /* default 60, also the padded length */
    int stride;             /* words between training passages' starts; default 2 */
    int test_every;         /* every n-th piece is a test passage; default 5 */
    int min_count;          /* the vocabulary's least word count; default 2 */
    uint64_t seed;          /* passage lengths and the training passages' order; default 1 */
    int64_t limit;          /* keep this many training passages (0: all), for quick runs;
                               the vocabulary still comes from all the training text */
} licences_opts;

typedef struct licences {
    lg_tensor *x_train, *y_train; /* i32 [N, max_words] word ids, i32 [N] class ids */
    lg_tensor *x_test, *y_test;   /* the same for the held-out passages, grouped by licence */
    int vocab_size;               /* ids lie in [0, vocab_size) */
    char **vocab;                 /* vocab_size words: "" (padding), "[UNK]", then by id */
    char error[256];              /* why licences_load failed */
} licences;

licences_opts licences_opts_default(void);

/* Read, tokenize, split and pad the licences into *out (zeroed first; free
 * it with licences_free, also after a failure). Returns LG_OK or a status
 * with out->error set: LG_ERR_IO for a licence file that cannot be read,
 * LG_ERR_INVALID_ARGUMENT for bad options, or a failing library call's
 * status with its lg_last_error(). */
lg_status licences_load(licences_opts o, licences *out);
void licences_free(licences *c);

/* The licence file of class k ("Apache-2.0", ...). */
const char *licences_class_name(int k);

/* The test accuracy of always answering the most common training class,
 * which it writes to *cls. */
double licences_majority_baseline(const licences *c, int *cls);

/* In the graph: the valid steps of each row of ids (i32 [B, T], padded
 * after the words with 0), as i32 [B] for lg_rnn_opts.lengths: the count of
 * nonzero ids, Keras's mask_zero. Invalid on a graph error. */
lg_value licences_mask_lengths(lg_value ids);

/* Print to f the confusion matrix of the test predictions (logits
 * [N, LICENCES_CLASSES] f32 from lg_predict over the test passages, in
 * order) and the first misread test passage, if any. Errors: LG_ERR_SHAPE,
 * with c->error set, for logits of another dtype or shape. */
lg_status licences_report(licences *c, const lg_tensor *logits, FILE *f);

#endif
