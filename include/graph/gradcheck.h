/*
 * gradcheck.h — check lg_grad() against central finite differences.
 *
 * Run it on your own graph, built in f64: it differentiates loss with respect
 * to each wrt value (parameters or inputs), then perturbs every element x of
 * each by h = eps * max(|x|, 1) and compares (L(x+h) - L(x-h)) / 2h with the
 * analytic gradient. An element passes when
 *     |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).
 *
 *     lg_gradcheck_opts o = lg_gradcheck_opts_default();
 *     lg_gradcheck_report r;
 *     lg_gradcheck(g, loss, params, 2, feeds, 1, o, &r);
 *     if (!r.passed) printf("worst: %s[%lld] %g vs %g\n", r.worst_name,
 *                           (long long)r.worst_index, r.analytic, r.numeric);
 *
 * Parameters are perturbed in place and restored. Input values are perturbed
 * in private copies of their feeds.
 *
 * Errors: those of lg_grad() and lg_graph_run(), and LG_ERR_DTYPE when the
 * loss or a wrt value is not f64 (finite differences in f32 are noise).
 */
#ifndef LG_GRADCHECK_H
#define LG_GRADCHECK_H

#include "api.h"
#include "program.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef struct lg_gradcheck_opts {
    double eps;  /* relative step; default 1e-6 */
    double atol; /* default 1e-6 */
    double rtol; /* default 1e-5 */
} lg_gradcheck_opts;

lg_gradcheck_opts lg_gradcheck_opts_default(void);

typedef struct lg_gradcheck_report {
    bool passed;        /* every element within tolerance, all finite */
    bool all_finite;    /* no NaN or Inf in analytic or numeric gradients */
    long long checked;  /* elements compared */
    double max_abs_err; /* over all elements */
    double max_rel_err; /* |a - n| / max(|a|, |n|, tiny) */
    /* the element with the largest excess over its tolerance */
    int worst_wrt;         /* index into wrt */
    char worst_name[128];  /* that value's name */
    long long worst_index; /* flat index */
    double analytic, numeric;
} lg_gradcheck_report;

lg_status lg_gradcheck(lg_graph *g, lg_value loss, const lg_value *wrt, int n_wrt, const lg_feed *feeds,
                       int n_feeds, lg_gradcheck_opts opts, lg_gradcheck_report *report);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
