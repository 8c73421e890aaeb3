/*
 * progress.c — Keras-style progress lines:
 *
 *     Epoch 1/5
 *     1875/1875 [==============================] - 41s 22ms/step - loss: 0.6011 - accuracy: 0.7843 - val_loss: ...
 *
 * On a terminal the line is redrawn in place (at most ten times a second)
 * with an ETA while the epoch runs; otherwise only the final line is
 * written, so logs stay readable.
 */
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "train/train.h"

double lg_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void lg_progress_begin(lg_progress *p, FILE *out, int verbose, int epoch, int epochs, int total)
{
    *p = (lg_progress){.out = out, .verbose = verbose, .total = total, .start = lg_now_seconds()};
    p->tty = isatty(fileno(out)) == 1;
    if (verbose == 1) fprintf(out, "Epoch %d/%d\n", epoch + 1, epochs);
}

static void bar(const lg_progress *p, int done)
{
    enum { WIDTH = 30 };
    int digits = snprintf(NULL, 0, "%d", p->total);
    int filled = p->total ? (int)((long long)WIDTH * done / p->total) : WIDTH;
    fprintf(p->out, "%*d/%d [", digits, done, p->total);
    for (int i = 0; i < WIDTH; i++) {
        char c = i < filled ? '=' : '.';
        if (done < p->total && i == filled) c = '>'; /* the arrow's head */
        fputc(c, p->out);
    }
    fputc(']', p->out);
}

static void metrics(FILE *out, const char *prefix, double loss, lg_metric m, double metric)
{
    fprintf(out, " - %sloss: %.4f", prefix, loss);
    if (m != LG_METRIC_NONE && !isnan(metric)) fprintf(out, " - %s%s: %.4f", prefix, lg_metric_name(m), metric);
}

void lg_progress_update(lg_progress *p, int done, double loss, lg_metric m, double metric)
{
    if (p->verbose != 1 || !p->tty) return;
    double now = lg_now_seconds();
    if (done < p->total && now - p->last_draw < 0.1) return;
    p->last_draw = now;
    double per = (now - p->start) / done;
    fputc('\r', p->out);
    bar(p, done);
    fprintf(p->out, " - ETA: %.0fs", per * (p->total - done));
    metrics(p->out, "", loss, m, metric);
    fprintf(p->out, "\033[K"); /* clear the rest of a longer previous line */
    fflush(p->out);
}

void lg_progress_end(lg_progress *p, const lg_epoch_logs *logs, lg_metric m, bool has_val)
{
    if (p->verbose == 0) return;
    if (p->verbose == 1) {
        if (p->tty) fputc('\r', p->out);
        bar(p, p->total);
    } else {
        fprintf(p->out, "Epoch %d", logs->epoch + 1);
    }
    double per = p->total ? logs->seconds / p->total : 0;
    fprintf(p->out, " - %.0fs %.0fms/step", logs->seconds, 1e3 * per);
    metrics(p->out, "", logs->loss, m, logs->metric);
    if (has_val) metrics(p->out, "val_", logs->val_loss, m, logs->val_metric);
    fprintf(p->out, "%s\n", p->verbose == 1 && p->tty ? "\033[K" : "");
    fflush(p->out);
}
