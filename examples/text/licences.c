/* licences.c — licence passages as padded word ids (see licences.h). */
#include "licences.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Four licences of different authors and subjects, from 1,600 to 3,700
 * words each, so the classes are of the same order of size. */
static const char *const class_names[LICENCES_CLASSES] = {"Apache-2.0", "MPL-2.0", "GPL-2", "GFDL-1.3"};

/* Philox keys: per licence a stream of piece lengths (key k) and one of
 * training passage lengths (KEY_CROPS + k); one for the training order. */
enum { KEY_CROPS = LICENCES_CLASSES, KEY_ORDER = 2 * LICENCES_CLASSES };

/* One licence's text with its words split in place (NUL-terminated). */
typedef struct text {
    char *buf;
    char **words;
    int64_t n;
} text;

typedef struct passage {
    int cls;
    int64_t start; /* its first word's index in the licence */
    char **words;  /* into its licence's word list */
    int64_t n;
} passage;

typedef struct vocab_entry {
    const char *word;
    int64_t count;
    int32_t id;
} vocab_entry;

licences_opts licences_opts_default(void)
{
    return (licences_opts){.dir = "/usr/share/common-licenses", .min_words = 20, .max_words = 60, .stride = 2,
                           .test_every = 5, .min_count = 2, .seed = 1};
}

const char *licences_class_name(int k) { return k >= 0 && k < LICENCES_CLASSES ? class_names[k] : "?"; }

static lg_status fail(licences *c, lg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return s;
}

/* A failed library call: keep its message. */
static lg_status fail_lib(licences *c, lg_status s, const char *what)
{
    return fail(c, s, "%s: %s", what, lg_last_error());
}

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    return p ? memcpy(p, s, n) : NULL;
}

/* Lowercase the text and cut it at every byte that is not an ASCII letter
 * or digit; returns the number of words and, with words, their starts. */
static int64_t split_words(char *buf, size_t len, char **words)
{
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        bool word = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        buf[i] = word ? ch : '\0';
        if (word && (i == 0 || !buf[i - 1])) {
            if (words) words[n] = buf + i;
            n++;
        }
    }
    return n;
}

static lg_status read_text(licences *c, const char *dir, const char *name, text *t)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(c, LG_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return fail(c, LG_ERR_IO, "cannot read %s", path);
    }
    t->buf = malloc((size_t)len + 1);
    size_t got = t->buf ? fread(t->buf, 1, (size_t)len, f) : 0;
    fclose(f);
    if (!t->buf || got != (size_t)len) return fail(c, LG_ERR_IO, "cannot read %s", path);
    t->buf[len] = '\0';
    t->n = split_words(t->buf, (size_t)len, NULL);
    t->words = malloc((size_t)(t->n ? t->n : 1) * sizeof *t->words);
    if (!t->words) return fail(c, LG_ERR_OUT_OF_MEMORY, "out of memory");
    split_words(t->buf, (size_t)len, t->words); /* the bytes are final now; this only finds the starts */
    return LG_OK;
}

/* A passage length in [min_words, max_words] from position i of stream
 * key, cut to the words left. */
static int64_t draw_length(licences_opts o, uint64_t key, uint64_t i, int64_t left)
{
    uint32_t span = (uint32_t)(o.max_words - o.min_words + 1);
    int64_t len = o.min_words + (int64_t)(lg_philox_u32(o.seed, key, i) % span);
    return len < left ? len : left;
}

/* Cut licence k into consecutive pieces, every test_every-th a test
 * passage; the runs of words between test passages are training regions. */
static void split_licence(const text *t, int k, licences_opts o, passage *regions, int64_t *n_regions, passage *test,
                          int64_t *n_test)
{
    int64_t pos = 0, start = 0; /* the current region starts at start */
    for (uint64_t j = 0; t->n - pos >= o.min_words; j++) {
        int64_t len = draw_length(o, (uint64_t)k, j, t->n - pos);
        if (j % (uint64_t)o.test_every == (uint64_t)o.test_every - 1) {
            regions[(*n_regions)++] = (passage){k, start, t->words + start, pos - start};
            test[(*n_test)++] = (passage){k, pos, t->words + pos, len};
            start = pos + len;
        }
        pos += len;
    }
    regions[(*n_regions)++] = (passage){k, start, t->words + start, t->n - start};
}

/* Training passages from a region: one starting every o.stride words, each
 * of a random length, so they overlap (the text's random crops). */
static void crop(const passage *r, licences_opts o, passage *train, int64_t *n_train)
{
    uint64_t key = KEY_CROPS + (uint64_t)r->cls;
    for (int64_t s = 0; r->n - s >= o.min_words; s += o.stride) {
        int64_t len = draw_length(o, key, (uint64_t)(r->start + s), r->n - s);
        train[(*n_train)++] = (passage){r->cls, r->start + s, r->words + s, len};
    }
}

/* Fisher-Yates from the seeded stream, so --limit keeps a mix of licences. */
static void shuffle(passage *p, int64_t n, uint64_t seed)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(lg_philox_u32(seed, KEY_ORDER, (uint64_t)i) % (uint64_t)(i + 1));
        passage tmp = p[i];
        p[i] = p[j], p[j] = tmp;
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int cmp_word(const void *a, const void *b)
{
    return strcmp(((const vocab_entry *)a)->word, ((const vocab_entry *)b)->word);
}

/* Most frequent first, ties alphabetically. */
static int cmp_count(const void *a, const void *b)
{
    const vocab_entry *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->word, y->word);
}

/* The vocabulary of the training text (the regions, where each word
 * occurs once, unlike in the overlapping passages) into c->vocab, and
 * *lookup, its words sorted alphabetically with their ids, for bsearch. */
static lg_status build_vocab(licences *c, const passage *regions, int64_t n, int min_count, vocab_entry **lookup,
                             int *n_lookup)
{
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) total += regions[i].n;
    const char **all = malloc((size_t)(total ? total : 1) * sizeof *all);
    vocab_entry *e = malloc((size_t)(total ? total : 1) * sizeof *e);
    if (!all || !e) {
        free(all), free(e);
        return fail(c, LG_ERR_OUT_OF_MEMORY, "out of memory");
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < regions[i].n; j++) all[k++] = regions[i].words[j];
    qsort(all, (size_t)total, sizeof *all, cmp_str);
    int m = 0;
    for (int64_t i = 0, run; i < total; i += run) {
        for (run = 1; i + run < total && !strcmp(all[i], all[i + run]); run++) continue;
        if (run >= min_count) e[m++] = (vocab_entry){all[i], run, 0};
    }
    free(all);
    qsort(e, (size_t)m, sizeof *e, cmp_count);
    c->vocab = calloc((size_t)m + 2, sizeof *c->vocab);
    if (!c->vocab) {
        free(e);
        return fail(c, LG_ERR_OUT_OF_MEMORY, "out of memory");
    }
    c->vocab_size = m + 2;
    c->vocab[LICENCES_PAD] = copy_string("");
    c->vocab[LICENCES_OOV] = copy_string("[UNK]");
    for (int i = 0; i < m; i++) {
        e[i].id = i + 2;
        c->vocab[i + 2] = copy_string(e[i].word);
    }
    for (int i = 0; i < c->vocab_size; i++)
        if (!c->vocab[i]) {
            free(e);
            return fail(c, LG_ERR_OUT_OF_MEMORY, "out of memory");
        }
    qsort(e, (size_t)m, sizeof *e, cmp_word);
    *lookup = e, *n_lookup = m;
    return LG_OK;
}

/* Passages to x i32 [n, max_words] (word ids, padded after the words) and
 * y i32 [n] (class ids). */
static lg_status encode(licences *c, const passage *ps, int64_t n, const vocab_entry *lookup, int n_lookup,
                        int max_words, lg_tensor **x, lg_tensor **y)
{
    int32_t *ids = malloc((size_t)(n * max_words + 1) * sizeof *ids);
    const int32_t **seqs = malloc((size_t)(n + 1) * sizeof *seqs);
    int64_t *lens = malloc((size_t)(n + 1) * sizeof *lens);
    lg_status s = ids && seqs && lens ? LG_OK : fail(c, LG_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; s == LG_OK && i < n; i++) {
        int32_t *row = ids + i * max_words;
        for (int64_t j = 0; j < ps[i].n; j++) {
            vocab_entry key = {.word = ps[i].words[j]};
            const vocab_entry *hit = bsearch(&key, lookup, (size_t)n_lookup, sizeof key, cmp_word);
            row[j] = hit ? hit->id : LICENCES_OOV;
        }
        seqs[i] = row, lens[i] = ps[i].n;
    }
    lg_pad_opts po = lg_pad_opts_default();
    po.maxlen = max_words, po.padding = LG_PAD_POST; /* valid steps first, for masking */
    if (s == LG_OK && (s = lg_pad_sequences(seqs, lens, n, po, x, NULL)) != LG_OK) fail_lib(c, s, "padding");
    if (s == LG_OK && (s = lg_tensor_new(LG_I32, lg_shape_of(1, (int)n), y)) != LG_OK) fail_lib(c, s, "labels");
    for (int64_t i = 0; s == LG_OK && i < n; i++) ((int32_t *)lg_tensor_data(*y))[i] = ps[i].cls;
    free(ids), free(seqs), free(lens);
    return s;
}

static lg_status check_opts(licences *c, licences_opts o)
{
    if (!o.dir) return fail(c, LG_ERR_INVALID_ARGUMENT, "no licence directory");
    if (o.min_words < 1 || o.max_words < o.min_words)
        return fail(c, LG_ERR_INVALID_ARGUMENT, "passage lengths %d..%d: need 1 <= min <= max", o.min_words,
                    o.max_words);
    if (o.stride < 1) return fail(c, LG_ERR_INVALID_ARGUMENT, "stride %d: must be >= 1", o.stride);
    if (o.test_every < 2) return fail(c, LG_ERR_INVALID_ARGUMENT, "test_every %d: must be >= 2", o.test_every);
    if (o.min_count < 1) return fail(c, LG_ERR_INVALID_ARGUMENT, "min_count %d: must be >= 1", o.min_count);
    if (o.limit < 0) return fail(c, LG_ERR_INVALID_ARGUMENT, "limit %lld: must be >= 0", (long long)o.limit);
    return LG_OK;
}

/* The passages of the licences: test passages, training regions and the
 * training passages cropped from them, shuffled and cut to o.limit. */
typedef struct splits {
    passage *test, *regions, *train;
    int64_t n_test, n_regions, n_train;
} splits;

static lg_status make_splits(licences *c, const text *texts, licences_opts o, splits *sp)
{
    int64_t words = 0;
    for (int k = 0; k < LICENCES_CLASSES; k++) words += texts[k].n;
    int64_t pieces = words / o.min_words + 1, regions = pieces + LICENCES_CLASSES;
    sp->test = malloc((size_t)pieces * sizeof *sp->test);
    sp->regions = malloc((size_t)regions * sizeof *sp->regions);
    sp->train = malloc((size_t)(words / o.stride + regions) * sizeof *sp->train);
    if (!sp->test || !sp->regions || !sp->train) return fail(c, LG_ERR_OUT_OF_MEMORY, "out of memory");
    for (int k = 0; k < LICENCES_CLASSES; k++)
        split_licence(&texts[k], k, o, sp->regions, &sp->n_regions, sp->test, &sp->n_test);
    for (int64_t i = 0; i < sp->n_regions; i++) crop(&sp->regions[i], o, sp->train, &sp->n_train);
    shuffle(sp->train, sp->n_train, o.seed);
    if (o.limit && o.limit < sp->n_train) sp->n_train = o.limit;
    return LG_OK;
}

lg_status licences_load(licences_opts o, licences *out)
{
    *out = (licences){0};
    lg_status s = check_opts(out, o);
    text texts[LICENCES_CLASSES] = {{0}};
    for (int k = 0; s == LG_OK && k < LICENCES_CLASSES; k++) s = read_text(out, o.dir, class_names[k], &texts[k]);
    splits sp = {0};
    if (s == LG_OK) s = make_splits(out, texts, o, &sp);
    vocab_entry *lookup = NULL;
    int n_lookup = 0;
    if (s == LG_OK) s = build_vocab(out, sp.regions, sp.n_regions, o.min_count, &lookup, &n_lookup);
    if (s == LG_OK) s = encode(out, sp.train, sp.n_train, lookup, n_lookup, o.max_words, &out->x_train, &out->y_train);
    if (s == LG_OK) s = encode(out, sp.test, sp.n_test, lookup, n_lookup, o.max_words, &out->x_test, &out->y_test);
    free(lookup), free(sp.test), free(sp.regions), free(sp.train);
    for (int k = 0; k < LICENCES_CLASSES; k++) free(texts[k].buf), free(texts[k].words);
    return s;
}

void licences_free(licences *c)
{
    if (!c) return;
    lg_tensor_free(c->x_train), lg_tensor_free(c->y_train), lg_tensor_free(c->x_test), lg_tensor_free(c->y_test);
    for (int i = 0; c->vocab && i < c->vocab_size; i++) free(c->vocab[i]);
    free(c->vocab);
    *c = (licences){0};
}

static void count_classes(const lg_tensor *y, int64_t counts[LICENCES_CLASSES])
{
    const int32_t *p = lg_tensor_cdata(y);
    memset(counts, 0, LICENCES_CLASSES * sizeof *counts);
    for (int64_t i = 0; i < lg_tensor_numel(y); i++) counts[p[i]]++;
}

double licences_majority_baseline(const licences *c, int *cls)
{
    int64_t train[LICENCES_CLASSES], test[LICENCES_CLASSES];
    count_classes(c->y_train, train);
    count_classes(c->y_test, test);
    int best = 0;
    for (int k = 1; k < LICENCES_CLASSES; k++)
        if (train[k] > train[best]) best = k;
    if (cls) *cls = best;
    return (double)test[best] / (double)lg_tensor_numel(c->y_test);
}

lg_value licences_mask_lengths(lg_value ids)
{
    if (!lg_value_ok(ids)) return lg_value_invalid();
    lg_graph *g = ids.graph;
    const int time_axis = 1;
    lg_scope_push(g, "mask_zero");
    lg_value valid = lg_compare(ids, lg_scalar(g, LG_I32, LICENCES_PAD), LG_CMP_NE); /* i32 0/1 [B, T] */
    lg_value lengths = lg_sum(valid, &time_axis, 1, false);                        /* [B] */
    lg_scope_pop(g);
    return lengths;
}

static int argmax(const float *row)
{
    int best = 0;
    for (int k = 1; k < LICENCES_CLASSES; k++)
        if (row[k] > row[best]) best = k;
    return best;
}

static void print_passage(const licences *c, const int32_t *row, int64_t max_words, FILE *f)
{
    for (int64_t j = 0; j < max_words && row[j] != LICENCES_PAD; j++)
        fprintf(f, "%s%s", j ? " " : "", c->vocab[row[j]]);
}

lg_status licences_report(licences *c, const lg_tensor *logits, FILE *f)
{
    lg_shape s = lg_tensor_shape(logits), xs = lg_tensor_shape(c->x_test);
    if (lg_tensor_dtype(logits) != LG_F32 || s.rank != 2 || s.dims[0] != xs.dims[0] || s.dims[1] != LICENCES_CLASSES)
        return fail(c, LG_ERR_SHAPE, "licences_report: logits must be f32 [%lld, %d]", (long long)xs.dims[0],
                    LICENCES_CLASSES);
    const float *p = lg_tensor_cdata(logits);
    const int32_t *y = lg_tensor_cdata(c->y_test), *x = lg_tensor_cdata(c->x_test);
    int64_t confusion[LICENCES_CLASSES][LICENCES_CLASSES] = {{0}}, wrong = -1;
    for (int64_t i = 0; i < s.dims[0]; i++) {
        int pred = argmax(p + i * LICENCES_CLASSES);
        confusion[y[i]][pred]++;
        if (pred != y[i] && wrong < 0) wrong = i;
    }
    fprintf(f, "Test passages by licence (rows) and prediction (columns):\n%-12s", "");
    for (int k = 0; k < LICENCES_CLASSES; k++) fprintf(f, "%11s", class_names[k]);
    fprintf(f, "%9s\n", "recall");
    for (int t = 0; t < LICENCES_CLASSES; t++) {
        int64_t n = 0;
        fprintf(f, "%-12s", class_names[t]);
        for (int k = 0; k < LICENCES_CLASSES; k++) {
            fprintf(f, "%11lld", (long long)confusion[t][k]);
            n += confusion[t][k];
        }
        fprintf(f, "%9.2f\n", n ? (double)confusion[t][t] / (double)n : 0.0);
    }
    if (wrong >= 0) {
        fprintf(f, "First misread test passage (%s, read as %s):\n  \"", class_names[y[wrong]],
                class_names[argmax(p + wrong * LICENCES_CLASSES)]);
        print_passage(c, x + wrong * xs.dims[1], xs.dims[1], f);
        fprintf(f, "\"\n");
    }
    return LG_OK;
}
