/*
 * test_util.h — what loopgrad's suites share: the suite runner, a graph
 * fixture, and tensor helpers that assert their own success.
 */
#ifndef LG_TEST_UTIL_H
#define LG_TEST_UTIL_H

#include <check.h>
#include <stdlib.h>

#include "graph/loopgrad.h"

/* Run every test of s; the exit status is nonzero if any failed. */
static inline int lg_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* A fresh graph g per test: tcase_add_checked_fixture(tc, setup, teardown). */
#define LG_TEST_GRAPH_FIXTURE                 \
    static lg_graph *g;                       \
    static void setup(void)                   \
    {                                         \
        g = lg_graph_new();                   \
        ck_assert_ptr_nonnull(g);             \
    }                                         \
    static void teardown(void)                \
    {                                         \
        lg_graph_free(g);                     \
        g = NULL;                             \
    }

/* A new tensor holding vals (in its dtype, row-major), or zeros when NULL. */
static inline lg_tensor *lg_test_tensor(lg_dtype dt, lg_shape s, const void *vals)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(dt, s, &t), LG_OK);
    if (vals) ck_assert_int_eq(lg_tensor_copy_in(t, vals, lg_tensor_bytes(t)), LG_OK);
    return t;
}

/* A new tensor of uniform values in [lo, hi), reproducible from (seed, key). */
static inline lg_tensor *lg_test_uniform(lg_dtype dt, lg_shape s, uint64_t seed, uint64_t key, double lo, double hi)
{
    lg_tensor *t = lg_test_tensor(dt, s, NULL);
    ck_assert_int_eq(lg_init_uniform(t, lo, hi, seed, key), LG_OK);
    return t;
}

/* An f64 cell of `kind` (in inputs, `units` units, weights from `seed`) with
 * a nonzero bias, so that its gradient and masking are exercised. */
static inline lg_cell *lg_test_cell(lg_graph *g, const char *name, lg_cell_kind kind, int in, int units, uint64_t seed)
{
    lg_cell_opts o = lg_cell_opts_default(kind, units);
    o.dtype = LG_F64;
    o.seed = seed;
    lg_cell *c = lg_cell_new(g, name, in, o);
    ck_assert_msg(c != NULL, "cell: %s", lg_graph_error(g));
    lg_tensor *bias = lg_param_tensor(lg_cell_bias(c));
    if (bias) lg_init_uniform(bias, -0.3, 0.3, seed, 99);
    return c;
}

/* Run g for one fetch, asserting success; the caller frees the result. */
static inline lg_tensor *lg_test_run1(lg_graph *g, const lg_feed *feeds, int n_feeds, lg_value fetch)
{
    lg_tensor *out = NULL;
    lg_status s = lg_graph_run(g, feeds, n_feeds, &fetch, 1, &out);
    ck_assert_msg(s == LG_OK, "run: %s: %s (graph error: %s)", lg_status_name(s), lg_last_error(),
                  lg_graph_error(g) ? lg_graph_error(g) : "none");
    ck_assert_ptr_nonnull(out);
    return out;
}

#endif
