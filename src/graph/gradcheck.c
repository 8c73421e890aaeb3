/* gradcheck.c — lg_grad() against central finite differences in f64. */
#include <math.h>
#include <string.h>

#include "graph/autodiff.h"
#include "graph/gradcheck.h"
#include "graph/internal.h"

lg_gradcheck_opts lg_gradcheck_opts_default(void) { return (lg_gradcheck_opts){.eps = 1e-6, .atol = 1e-6, .rtol = 1e-5}; }

static lg_status loss_at(lg_graph *g, lg_value loss, const lg_feed *feeds, int n_feeds, double *out)
{
    lg_tensor *t = NULL;
    lg_status st = lg_graph_run(g, feeds, n_feeds, &loss, 1, &t);
    if (!st) *out = lg_tensor_get(t, 0);
    lg_tensor_free(t);
    return st;
}

/* The tensor to perturb for wrt: a parameter's own, or a private copy of
 * the feed of an input (swapped into feeds). */
static lg_status perturbable(lg_value v, lg_feed *feeds, int n_feeds, lg_tensor **t, lg_tensor **copy)
{
    *copy = NULL;
    const lg_node *n = &v.graph->nodes[v.node];
    if (n->op == LG_OP_PARAM) {
        *t = n->attrs.tensor;
        return LG_OK;
    }
    if (n->op == LG_OP_INPUT)
        for (int i = 0; i < n_feeds; i++)
            if (feeds[i].input.node == v.node && feeds[i].tensor) {
                lg_status st = lg_tensor_clone(feeds[i].tensor, copy);
                if (st) return st;
                feeds[i].tensor = *copy;
                *t = *copy;
                return LG_OK;
            }
    return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_gradcheck: '%s' is neither a parameter nor a fed input", n->name);
}

/* Fold one element into the report; *worst is the largest excess over
 * tolerance so far. */
static void report_element(lg_gradcheck_report *r, double *worst, lg_gradcheck_opts o, int k, const char *name,
                           int64_t i, double a, double num)
{
    double err = fabs(a - num), scale = fmax(fabs(a), fabs(num));
    double excess = err - (o.atol + o.rtol * scale);
    r->checked++;
    if (!isfinite(a) || !isfinite(num)) {
        r->all_finite = false;
        excess = INFINITY;
    }
    if (err > r->max_abs_err) r->max_abs_err = err;
    if (err / fmax(scale, 1e-300) > r->max_rel_err && err > 0) r->max_rel_err = err / fmax(scale, 1e-300);
    if (excess > 0) r->passed = false;
    if (excess > *worst) {
        *worst = excess;
        r->worst_wrt = k;
        snprintf(r->worst_name, sizeof r->worst_name, "%s", name);
        r->worst_index = i;
        r->analytic = a;
        r->numeric = num;
    }
}

lg_status lg_gradcheck(lg_graph *g, lg_value loss, const lg_value *wrt, int n_wrt, const lg_feed *feeds,
                       int n_feeds, lg_gradcheck_opts opts, lg_gradcheck_report *report)
{
    if (!report) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_gradcheck: report is NULL");
    memset(report, 0, sizeof *report);
    report->passed = report->all_finite = true;
    if (!g || n_wrt < 1 || !wrt || n_feeds < 0 || (n_feeds > 0 && !feeds))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_gradcheck: NULL graph, wrt or feeds, or no wrt values");
    if (!(opts.eps > 0) || !(opts.atol >= 0) || !(opts.rtol >= 0))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_gradcheck: eps must be > 0, atol and rtol >= 0");
    lg_value *grads = malloc((size_t)n_wrt * sizeof *grads);
    lg_tensor **analytic = calloc((size_t)n_wrt, sizeof *analytic);
    lg_feed *fd = malloc((size_t)(n_feeds ? n_feeds : 1) * sizeof *fd);
    lg_status st = !grads || !analytic || !fd ? lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_gradcheck: out of memory") : LG_OK;
    if (!st) st = lg_grad(g, loss, wrt, n_wrt, grads);
    for (int k = 0; !st && k < n_wrt; k++)
        if (lg_value_dtype(wrt[k]) != LG_F64 || lg_value_dtype(loss) != LG_F64)
            st = lg_fail(LG_ERR_DTYPE, "lg_gradcheck: '%s' and the loss must be f64 (finite differences in f32 are noise)",
                         lg_value_name(wrt[k]));
    if (!st) st = lg_graph_run(g, feeds, n_feeds, grads, n_wrt, analytic);
    if (!st && n_feeds) memcpy(fd, feeds, (size_t)n_feeds * sizeof *fd);
    double worst = -INFINITY;
    for (int k = 0; !st && k < n_wrt; k++) {
        lg_tensor *t = NULL, *copy = NULL;
        st = perturbable(wrt[k], fd, n_feeds, &t, &copy);
        double *x = st ? NULL : lg_tensor_data(t);
        for (int64_t i = 0; !st && i < lg_tensor_numel(t); i++) {
            double x0 = x[i], h = opts.eps * fmax(fabs(x0), 1.0), lp = 0, lm = 0;
            x[i] = x0 + h;
            double up = x[i];
            st = loss_at(g, loss, fd, n_feeds, &lp);
            x[i] = x0 - h;
            double down = x[i];
            if (!st) st = loss_at(g, loss, fd, n_feeds, &lm);
            x[i] = x0;
            if (!st) report_element(report, &worst, opts, k, lg_value_name(wrt[k]), i, lg_tensor_get(analytic[k], i),
                                    (lp - lm) / (up - down));
        }
        if (copy) {
            for (int i = 0; i < n_feeds; i++)
                if (fd[i].tensor == copy) fd[i].tensor = feeds[i].tensor;
            lg_tensor_free(copy);
        }
    }
    for (int k = 0; analytic && k < n_wrt; k++) lg_tensor_free(analytic[k]);
    free(grads), free(analytic), free(fd);
    if (st) report->passed = false;
    return st;
}
