/*
 * test_program.c — compiling and running graphs (program.h) through the
 * public API: numeric results per dtype, feed and fetch errors, the program
 * cache, parameters across recompiles, liveness planning and scheduling, and
 * run-time errors from kernels.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "graph/loopgrad.h"

LG_TEST_GRAPH_FIXTURE

static lg_tensor *tensor_f32(lg_shape shape, const float *vals) { return lg_test_tensor(LG_F32, shape, vals); }

static lg_tensor *tensor_f64(lg_shape shape, const double *vals) { return lg_test_tensor(LG_F64, shape, vals); }

static lg_tensor *tensor_i32(lg_shape shape, const int32_t *vals) { return lg_test_tensor(LG_I32, shape, vals); }

/* Runs g for one fetch, asserting success; the caller frees the result. */
static lg_tensor *run1(const lg_feed *feeds, int n_feeds, lg_value fetch) { return lg_test_run1(g, feeds, n_feeds, fetch); }

#define ck_assert_close(got, want, tol)                                                              \
    do {                                                                                             \
        double got_ = (got), want_ = (want);                                                         \
        ck_assert_msg(fabs(got_ - want_) <= (tol) * fmax(1.0, fabs(want_)), "got %.9g, want %.9g", \
                      got_, want_);                                                                  \
    } while (0)

static void assert_tensor(const lg_tensor *t, lg_dtype dtype, lg_shape shape, const double *want, double tol)
{
    char a[64], b[64];
    ck_assert_int_eq(lg_tensor_dtype(t), dtype);
    ck_assert_msg(lg_shape_equal(lg_tensor_shape(t), shape), "shape %s, want %s",
                  lg_shape_str(lg_tensor_shape(t), a, sizeof a), lg_shape_str(shape, b, sizeof b));
    int64_t n = lg_shape_numel(shape);
    for (int64_t i = 0; i < n; i++) ck_assert_close(lg_tensor_get(t, i), want[i], tol);
}

/* ---- numeric results --------------------------------------------------------- */

START_TEST(test_dense_f32)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 3));
    lg_value w = lg_param(g, "w", LG_F32, lg_shape_of(2, 3, 2));
    lg_value b = lg_param(g, "b", LG_F32, lg_shape_of(1, 2));
    lg_value y = lg_add(lg_matmul(x, w, false, false), b);
    const float wv[6] = {1, 2, 3, 4, 5, 6}; /* [[1,2],[3,4],[5,6]] */
    const float bv[2] = {0.5f, -1};
    ck_assert_int_eq(lg_tensor_copy_in(lg_param_tensor(w), wv, sizeof wv), LG_OK);
    ck_assert_int_eq(lg_tensor_copy_in(lg_param_tensor(b), bv, sizeof bv), LG_OK);
    const float xv[6] = {1, 0, -1, 2, 1, 0};
    lg_tensor *xt = tensor_f32(lg_shape_of(2, 2, 3), xv);
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, y);
    /* [1,0,-1]W = [-4,-4]; [2,1,0]W = [5,8]; plus b */
    const double want[4] = {-3.5, -5, 5.5, 7};
    assert_tensor(out, LG_F32, lg_shape_of(2, 2, 2), want, 1e-6);
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_matmul_transposes_f64)
{
    lg_value a = lg_input(g, "a", LG_F64, lg_shape_of(2, 3, 2));
    lg_value b = lg_input(g, "b", LG_F64, lg_shape_of(2, 2, 3));
    lg_value c = lg_matmul(a, b, true, true); /* a^T [2,3] x b^T [3,2] -> [2,2] */
    const double av[6] = {1, 2, 3, 4, 5, 6}; /* a^T = [[1,3,5],[2,4,6]] */
    const double bv[6] = {1, 0, 1, 0, 1, 0}; /* b^T = [[1,0],[0,1],[1,0]] */
    lg_tensor *at = tensor_f64(lg_shape_of(2, 3, 2), av);
    lg_tensor *bt = tensor_f64(lg_shape_of(2, 2, 3), bv);
    lg_feed f[2] = {{a, at}, {b, bt}};
    lg_tensor *out = run1(f, 2, c);
    const double want[4] = {6, 3, 8, 4};
    assert_tensor(out, LG_F64, lg_shape_of(2, 2, 2), want, 1e-12);
    lg_tensor_free(out);
    lg_tensor_free(at);
    lg_tensor_free(bt);
}
END_TEST

/* lg_allow_tf32 is a process-wide switch, off by default, that only the
 * CUDA backend reads: a CPU f32 matmul keeps its bits with it on. */
START_TEST(test_tf32_switch_leaves_cpu_alone)
{
    ck_assert(!lg_tf32_allowed());
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(2, 3, 5));
    lg_value c = lg_matmul(a, a, false, true);
    float av[15];
    for (int i = 0; i < 15; i++) av[i] = 1.0f / (float)(i + 3);
    lg_tensor *at = tensor_f32(lg_shape_of(2, 3, 5), av);
    lg_feed f = {a, at};
    lg_tensor *exact = run1(&f, 1, c);
    lg_allow_tf32(true);
    ck_assert(lg_tf32_allowed());
    lg_graph *h = lg_graph_new(); /* a fresh program, compiled with the switch on */
    lg_value a2 = lg_input(h, "a", LG_F32, lg_shape_of(2, 3, 5));
    lg_feed f2 = {a2, at};
    lg_tensor *on = lg_test_run1(h, &f2, 1, lg_matmul(a2, a2, false, true));
    lg_allow_tf32(false);
    ck_assert(!lg_tf32_allowed());
    ck_assert_mem_eq(lg_tensor_cdata(on), lg_tensor_cdata(exact), lg_tensor_bytes(exact));
    lg_tensor_free(exact), lg_tensor_free(on), lg_tensor_free(at);
    lg_graph_free(h);
}
END_TEST

START_TEST(test_elementwise_f64)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 4));
    const double xv[4] = {-2, -0.5, 0.5, 3};
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 4), xv);
    lg_feed f = {x, xt};
    struct {
        lg_value v;
        double (*ref)(double);
    } rows[] = {
        {lg_exp(x), exp},   {lg_tanh(x), tanh},   {lg_abs(x), fabs},
        {lg_neg(x), NULL},  {lg_sigmoid(x), NULL}, {lg_relu(x), NULL},
        {lg_square(x), NULL}, {lg_softplus(x), NULL}, {lg_clip(x, -1, 1), NULL},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        lg_tensor *out = run1(&f, 1, rows[r].v);
        for (int i = 0; i < 4; i++) {
            double v = xv[i], want;
            switch (r) {
            case 3: want = -v; break;
            case 4: want = 1 / (1 + exp(-v)); break;
            case 5: want = v > 0 ? v : 0; break;
            case 6: want = v * v; break;
            case 7: want = log1p(exp(v)); break;
            case 8: want = fmin(fmax(v, -1), 1); break;
            default: want = rows[r].ref(v); break;
            }
            ck_assert_close(lg_tensor_get(out, i), want, 1e-12);
        }
        lg_tensor_free(out);
    }
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_broadcast_and_reduce_f64)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, 2, 3));
    lg_value c = lg_input(g, "c", LG_F64, lg_shape_of(2, 2, 1));
    const double xv[6] = {1, 2, 3, 4, 5, 6};
    const double cv[2] = {10, 100};
    lg_tensor *xt = tensor_f64(lg_shape_of(2, 2, 3), xv);
    lg_tensor *ct = tensor_f64(lg_shape_of(2, 2, 1), cv);
    lg_feed f[2] = {{x, xt}, {c, ct}};

    lg_tensor *out = run1(f, 2, lg_mul(x, c));
    const double want_mul[6] = {10, 20, 30, 400, 500, 600};
    assert_tensor(out, LG_F64, lg_shape_of(2, 2, 3), want_mul, 0);
    lg_tensor_free(out);

    const int ax0[] = {0}, ax1[] = {-1};
    out = run1(f, 2, lg_sum(x, ax0, 1, false));
    const double want_sum0[3] = {5, 7, 9};
    assert_tensor(out, LG_F64, lg_shape_of(1, 3), want_sum0, 0);
    lg_tensor_free(out);

    out = run1(f, 2, lg_mean(x, ax1, 1, true));
    const double want_mean1[2] = {2, 5};
    assert_tensor(out, LG_F64, lg_shape_of(2, 2, 1), want_mean1, 1e-12);
    lg_tensor_free(out);

    out = run1(f, 2, lg_max(x, NULL, 0, false));
    const double want_max[1] = {6};
    assert_tensor(out, LG_F64, lg_shape_of(0), want_max, 0);
    lg_tensor_free(out);

    out = run1(f, 2, lg_softmax(x, -1));
    double z = exp(1) + exp(2) + exp(3);
    const double want_sm[6] = {exp(1) / z, exp(2) / z, exp(3) / z, exp(1) / z, exp(2) / z, exp(3) / z};
    assert_tensor(out, LG_F64, lg_shape_of(2, 2, 3), want_sm, 1e-12);
    lg_tensor_free(out);

    out = run1(f, 2, lg_mse(x, lg_add_scalar(x, 2.0)));
    const double want_mse[1] = {4};
    assert_tensor(out, LG_F64, lg_shape_of(0), want_mse, 1e-12);
    lg_tensor_free(out);

    lg_tensor_free(xt);
    lg_tensor_free(ct);
}
END_TEST

START_TEST(test_i32)
{
    lg_value a = lg_input(g, "a", LG_I32, lg_shape_of(1, 4));
    lg_value b = lg_input(g, "b", LG_I32, lg_shape_of(1, 4));
    const int32_t av[4] = {1, -2, 3, 40};
    const int32_t bv[4] = {5, 6, -7, 8};
    lg_tensor *at = tensor_i32(lg_shape_of(1, 4), av);
    lg_tensor *bt = tensor_i32(lg_shape_of(1, 4), bv);
    lg_feed f[2] = {{a, at}, {b, bt}};

    lg_tensor *out = run1(f, 2, lg_add(lg_mul(a, b), a)); /* a*b + a */
    const double want[4] = {6, -14, -18, 360};
    assert_tensor(out, LG_I32, lg_shape_of(1, 4), want, 0);
    lg_tensor_free(out);

    out = run1(f, 2, lg_sum(lg_sub(a, b), NULL, 0, false));
    const double want_sum[1] = {(1 - 5) + (-2 - 6) + (3 + 7) + (40 - 8)};
    assert_tensor(out, LG_I32, lg_shape_of(0), want_sum, 0);
    lg_tensor_free(out);

    out = run1(f, 2, lg_compare(a, b, LG_CMP_LT));
    const double want_lt[4] = {1, 1, 0, 0};
    assert_tensor(out, LG_I32, lg_shape_of(1, 4), want_lt, 0);
    lg_tensor_free(out);

    lg_tensor_free(at);
    lg_tensor_free(bt);
}
END_TEST

START_TEST(test_cast_truncates)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 4));
    const float xv[4] = {-2.7f, -0.5f, 0.9f, 3.99f};
    lg_tensor *xt = tensor_f32(lg_shape_of(1, 4), xv);
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, lg_cast(x, LG_I32));
    const double want[4] = {-2, 0, 0, 3};
    assert_tensor(out, LG_I32, lg_shape_of(1, 4), want, 0);
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

/* Float to i32 is defined for every value (ops.h): saturated, NaN as 0. A
 * plain C conversion is undefined here; x86 gives INT32_MIN for all of
 * NaN, 1e10 and -inf. */
START_TEST(test_cast_saturates)
{
    const double xv[8] = {NAN, 1e10, -INFINITY, INFINITY, -1e10, 2147483647.9, -2147483648.9, -2.5};
    const double want[8] = {0, INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN, -2};
    for (int d = 0; d < 2; d++) {
        lg_dtype dt = d ? LG_F64 : LG_F32;
        lg_graph *h = lg_graph_new();
        lg_value x = lg_input(h, "x", dt, lg_shape_of(1, 8));
        lg_tensor *xt = lg_test_tensor(dt, lg_shape_of(1, 8), NULL);
        for (int i = 0; i < 8; i++) lg_tensor_set(xt, i, xv[i]);
        lg_feed f = {x, xt};
        lg_tensor *out = lg_test_run1(h, &f, 1, lg_cast(x, LG_I32));
        const int32_t *y = lg_tensor_cdata(out);
        /* f32 rounds 2147483647.9 up to 2^31 and -2147483648.9 to -2^31: still saturated */
        for (int i = 0; i < 8; i++) ck_assert_msg(y[i] == (int32_t)want[i], "%s %g -> %d", lg_dtype_name(dt), xv[i], y[i]);
        lg_tensor_free(out);
        lg_tensor_free(xt);
        lg_graph_free(h);
    }
}
END_TEST

START_TEST(test_gather_and_split_values)
{
    lg_value table = lg_param(g, "emb", LG_F32, lg_shape_of(2, 3, 2));
    const float tv[6] = {0, 1, 10, 11, 20, 21};
    lg_tensor_copy_in(lg_param_tensor(table), tv, sizeof tv);
    lg_value idx = lg_input(g, "idx", LG_I32, lg_shape_of(1, -1));
    const int32_t iv[3] = {2, 0, 2};
    lg_tensor *it = tensor_i32(lg_shape_of(1, 3), iv);
    lg_feed f = {idx, it};
    lg_value rows = lg_gather(table, idx); /* [3, 2] */
    lg_value parts[2];
    lg_split(rows, 1, NULL, 2, parts);
    lg_value fetches[3] = {rows, parts[0], parts[1]};
    lg_tensor *out[3] = {NULL, NULL, NULL};
    ck_assert_int_eq(lg_graph_run(g, &f, 1, fetches, 3, out), LG_OK);
    const double want[6] = {20, 21, 0, 1, 20, 21};
    const double want0[3] = {20, 0, 20}, want1[3] = {21, 1, 21};
    assert_tensor(out[0], LG_F32, lg_shape_of(2, 3, 2), want, 0);
    assert_tensor(out[1], LG_F32, lg_shape_of(2, 3, 1), want0, 0);
    assert_tensor(out[2], LG_F32, lg_shape_of(2, 3, 1), want1, 0);
    for (int i = 0; i < 3; i++) lg_tensor_free(out[i]);
    lg_tensor_free(it);
}
END_TEST

START_TEST(test_no_feeds_needed)
{
    lg_value c = lg_scalar(g, LG_F64, 2.0);
    lg_value p = lg_param(g, "p", LG_F64, lg_shape_of(1, 2));
    lg_tensor_fill(lg_param_tensor(p), 3.0);
    lg_tensor *out = run1(NULL, 0, lg_mul(p, c));
    const double want[2] = {6, 6};
    assert_tensor(out, LG_F64, lg_shape_of(1, 2), want, 0);
    lg_tensor_free(out);
}
END_TEST

/* ---- feed and fetch errors ----------------------------------------------------- */

START_TEST(test_missing_feed)
{
    lg_value x = lg_input(g, "my_input_x", LG_F32, lg_shape_of(1, 3));
    lg_value y = lg_input(g, "other_y", LG_F32, lg_shape_of(1, 3));
    lg_value z = lg_add(x, y);
    lg_tensor *yt = tensor_f32(lg_shape_of(1, 3), NULL);
    lg_feed f = {y, yt};
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &z, 1, &out), LG_ERR_FEED);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "my_input_x"));
    ck_assert_ptr_null(out);
    lg_program *p = (lg_program *)1;
    ck_assert_int_eq(lg_program_compile(g, &f, 1, &z, 1, &p), LG_ERR_FEED);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "my_input_x"));
    lg_tensor_free(yt);
}
END_TEST

START_TEST(test_unneeded_input_need_not_be_fed)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 2));
    lg_value unused = lg_input(g, "unused", LG_F32, lg_shape_of(1, 2));
    (void)unused;
    lg_tensor *xt = tensor_f32(lg_shape_of(1, 2), (const float[]){1, 2});
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, lg_neg(x));
    const double want[2] = {-1, -2};
    assert_tensor(out, LG_F32, lg_shape_of(1, 2), want, 0);
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_feed_wrong_shape)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 3));
    lg_value y = lg_tanh(x);
    lg_tensor *bad = tensor_f32(lg_shape_of(2, 2, 4), NULL);
    lg_tensor *rank = tensor_f32(lg_shape_of(1, 3), NULL);
    lg_tensor *good = tensor_f32(lg_shape_of(2, 5, 3), NULL);
    lg_tensor *out = NULL;
    lg_feed f = {x, bad};
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, &out), LG_ERR_FEED);
    ck_assert_str_ne(lg_last_error(), "");
    f.tensor = rank;
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, &out), LG_ERR_FEED);
    f.tensor = good; /* the unknown dim takes any size */
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, &out), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(out), lg_shape_of(2, 5, 3)));
    lg_tensor_free(out);
    lg_tensor_free(bad);
    lg_tensor_free(rank);
    lg_tensor_free(good);
}
END_TEST

START_TEST(test_feed_zero_size_is_error)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 3));
    lg_value y = lg_tanh(x);
    lg_tensor *empty = tensor_f32(lg_shape_of(2, 0, 3), NULL);
    lg_feed f = {x, empty};
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, &out), LG_ERR_FEED);
    lg_tensor_free(empty);
}
END_TEST

/* A shape fixed by a feed keeps the size rule too: [-1, 2^60] f32 is fine
 * at build (2^62 bytes a row), [4, 2^60] at compile is 2^64 bytes. Before,
 * the byte count wrapped to 0 and the planner gave the add 64 bytes. */
START_TEST(test_compile_refuses_too_large_fed_shape)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 1));
    lg_value c = lg_broadcast_to(lg_scalar(g, LG_F32, 1), (lg_shape){.rank = 2, .dims = {1, 1LL << 60}});
    lg_value y = lg_add(x, c);
    ck_assert_ptr_null(lg_graph_error(g));
    lg_tensor *xt = tensor_f32(lg_shape_of(2, 4, 1), NULL);
    lg_feed f = {x, xt};
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile(g, &f, 1, &y, 1, &p), LG_ERR_SHAPE);
    ck_assert_ptr_null(p);
    const char *want[] = {"add '", "f32 [4, 1152921504606846976]", "LG_MAX_BYTES", "(feeds: 'x' [4, 1])"};
    for (int i = 0; i < 4; i++) ck_assert_msg(strstr(lg_last_error(), want[i]), "'%s' lacks '%s'", lg_last_error(), want[i]);
    lg_tensor_free(xt);
}
END_TEST

/* Values live at once that together pass LG_MAX_BYTES are refused: four of
 * 2^62 bytes made the planner's size_t sum wrap to 0 bytes, an empty arena. */
START_TEST(test_planner_never_wraps)
{
    lg_value c[4];
    for (int i = 0; i < 4; i++)
        c[i] = lg_broadcast_to(lg_scalar(g, LG_F32, i), (lg_shape){.rank = 2, .dims = {1, 1LL << 60}});
    ck_assert_ptr_null(lg_graph_error(g));
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile(g, NULL, 0, c, 4, &p), LG_ERR_OUT_OF_MEMORY);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(lg_last_error(), "broadcast_to '") && strstr(lg_last_error(), "pass LG_MAX_BYTES"), "%s",
                  lg_last_error());
}
END_TEST

START_TEST(test_feed_wrong_dtype)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 3));
    lg_value y = lg_tanh(x);
    lg_tensor *t = tensor_f64(lg_shape_of(1, 3), NULL);
    lg_feed f = {x, t};
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, &out), LG_ERR_FEED);
    ck_assert_ptr_null(out);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_feed_not_an_input)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 3));
    lg_value w = lg_param(g, "w", LG_F32, lg_shape_of(1, 3));
    lg_value h = lg_tanh(x);
    lg_value y = lg_mul(h, w);
    lg_tensor *t = tensor_f32(lg_shape_of(1, 3), NULL);
    lg_tensor *out = NULL;
    lg_feed f[2] = {{x, t}, {w, t}};
    ck_assert_int_eq(lg_graph_run(g, f, 2, &y, 1, &out), LG_ERR_FEED);
    f[1].input = h;
    ck_assert_int_eq(lg_graph_run(g, f, 2, &y, 1, &out), LG_ERR_FEED);
    f[1].input = lg_value_invalid();
    ck_assert_int_ne(lg_graph_run(g, f, 2, &y, 1, &out), LG_OK);
    lg_graph *other = lg_graph_new();
    f[1].input = lg_input(other, "x", LG_F32, lg_shape_of(1, 3));
    ck_assert_int_eq(lg_graph_run(g, f, 2, &y, 1, &out), LG_ERR_FEED);
    lg_graph_free(other);
    f[1].input = x;
    ck_assert_int_eq(lg_graph_run(g, f, 2, &y, 1, &out), LG_ERR_FEED);
    ck_assert_str_eq(lg_last_error(), "input 'x' is fed twice");
    ck_assert_ptr_null(out);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_feed_null_tensor)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 3));
    lg_value y = lg_tanh(x);
    lg_feed f = {x, NULL};
    lg_tensor *out = NULL;
    lg_status s = lg_graph_run(g, &f, 1, &y, 1, &out);
    ck_assert(s == LG_ERR_FEED || s == LG_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_fetch_errors)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 3));
    lg_value y = lg_tanh(x);
    (void)y;
    lg_tensor *t = tensor_f32(lg_shape_of(1, 3), NULL);
    lg_feed f = {x, t};
    lg_graph *other = lg_graph_new();
    lg_value foreign = lg_scalar(other, LG_F32, 1.0);
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &foreign, 1, &out), LG_ERR_INVALID_ARGUMENT);
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile(g, &f, 1, &foreign, 1, &p), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(p);
    lg_value inv = lg_value_invalid();
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &inv, 1, &out), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(out);
    lg_value second = y; /* tanh has one output */
    second.output = 1;
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &second, 1, &out), LG_ERR_INVALID_ARGUMENT);
    ck_assert_str_eq(lg_last_error(), "fetch 0: no such node output");
    ck_assert_int_eq(lg_graph_run(NULL, &f, 1, &y, 1, &out), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_program_compile(g, &f, 1, &y, 1, NULL), LG_ERR_INVALID_ARGUMENT);
    lg_graph_free(other);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_graph_with_error)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 3));
    lg_value y = lg_tanh(x);
    lg_value bad = lg_matmul(x, x, false, false); /* [3] is not a matrix */
    ck_assert(!lg_value_ok(bad));
    ck_assert_ptr_nonnull(lg_graph_error(g));
    lg_tensor *t = tensor_f32(lg_shape_of(1, 3), NULL);
    lg_feed f = {x, t};
    lg_tensor *out = NULL;
    /* even a fetch that does not depend on the bad node is refused */
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, &out), LG_ERR_GRAPH);
    ck_assert_ptr_null(out);
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile(g, &f, 1, &y, 1, &p), LG_ERR_GRAPH);
    ck_assert_ptr_null(p);
    ck_assert_str_ne(lg_last_error(), "");
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_concrete_shape_mismatch)
{
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(2, -1, 3));
    lg_value b = lg_input(g, "b", LG_F32, lg_shape_of(2, -1, 3));
    lg_value c = lg_add(a, b);
    ck_assert_ptr_null(lg_graph_error(g));
    lg_tensor *at = tensor_f32(lg_shape_of(2, 2, 3), NULL);
    lg_tensor *bt = tensor_f32(lg_shape_of(2, 4, 3), NULL);
    lg_feed f[2] = {{a, at}, {b, bt}};
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_graph_run(g, f, 2, &c, 1, &out), LG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "add"));
    lg_tensor_free(at);
    lg_tensor_free(bt);
}
END_TEST

START_TEST(test_preallocated_out)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 3));
    lg_value y = lg_scale(x, 2.0);
    lg_tensor *xt = tensor_f32(lg_shape_of(1, 3), (const float[]){1, 2, 3});
    lg_feed f = {x, xt};

    lg_tensor *right = tensor_f32(lg_shape_of(1, 3), NULL);
    lg_tensor *out = right;
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, &out), LG_OK);
    ck_assert_ptr_eq(out, right);
    const double want[3] = {2, 4, 6};
    assert_tensor(right, LG_F32, lg_shape_of(1, 3), want, 0);

    lg_tensor *wrong_shape = tensor_f32(lg_shape_of(1, 4), NULL);
    out = wrong_shape;
    ck_assert_int_ne(lg_graph_run(g, &f, 1, &y, 1, &out), LG_OK);
    ck_assert_str_ne(lg_last_error(), "");
    ck_assert_ptr_eq(out, wrong_shape);

    lg_tensor *wrong_dtype = tensor_f64(lg_shape_of(1, 3), NULL);
    out = wrong_dtype;
    ck_assert_int_ne(lg_graph_run(g, &f, 1, &y, 1, &out), LG_OK);

    lg_tensor_free(right);
    lg_tensor_free(wrong_shape);
    lg_tensor_free(wrong_dtype);
    lg_tensor_free(xt);
}
END_TEST

/* ---- explicit programs, cache, parameters ----------------------------------------- */

START_TEST(test_program_compile_and_run)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, -1, 2));
    lg_value y = lg_sum(lg_square(x), NULL, 0, false);
    lg_tensor *xt = tensor_f64(lg_shape_of(2, 2, 2), (const double[]){1, 2, 3, 4});
    lg_feed f = {x, xt};
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile(g, &f, 1, &y, 1, &p), LG_OK);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(lg_program_kernel_count(p), 2);
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_program_run(p, &f, 1, &out), LG_OK);
    const double want[1] = {30};
    assert_tensor(out, LG_F64, lg_shape_of(0), want, 0);
    /* run again into the same tensor with new data */
    lg_tensor_set(xt, 0, 10);
    ck_assert_int_eq(lg_program_run(p, &f, 1, &out), LG_OK);
    ck_assert(lg_tensor_get(out, 0) == 129);

    /* a feed of a different shape than compiled is refused by this program */
    lg_tensor *x3 = tensor_f64(lg_shape_of(2, 3, 2), NULL);
    f.tensor = x3;
    ck_assert_int_eq(lg_program_run(p, &f, 1, &out), LG_ERR_FEED);
    ck_assert_int_eq(lg_program_run(NULL, &f, 1, &out), LG_ERR_INVALID_ARGUMENT);

    /* explicit programs do not go into the graph's cache */
    ck_assert_int_eq(lg_graph_program_count(g), 0);
    lg_program_free(p);
    lg_program_free(NULL);
    lg_tensor_free(out);
    lg_tensor_free(xt);
    lg_tensor_free(x3);
}
END_TEST

static double dense_expected(int row, int col, const float *xv, const float *wv)
{
    double s = 0;
    for (int k = 0; k < 2; k++) s += (double)xv[row * 2 + k] * wv[k * 3 + col];
    return s;
}

START_TEST(test_cache_and_params_across_recompiles)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 2));
    lg_value w = lg_param(g, "w", LG_F32, lg_shape_of(2, 2, 3));
    lg_value y = lg_matmul(x, w, false, false);
    float wv[6] = {1, -1, 2, 0.5f, 3, -2};
    ck_assert_int_eq(lg_tensor_copy_in(lg_param_tensor(w), wv, sizeof wv), LG_OK);
    float xv[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    lg_tensor *x4 = tensor_f32(lg_shape_of(2, 4, 2), xv);
    lg_tensor *x3 = tensor_f32(lg_shape_of(2, 3, 2), xv);
    ck_assert_int_eq(lg_graph_program_count(g), 0);

    const int batches[3] = {4, 3, 4};
    const int programs[3] = {1, 2, 2};
    for (int step = 0; step < 3; step++) {
        int bsz = batches[step];
        lg_feed f = {x, bsz == 4 ? x4 : x3};
        lg_tensor *out = run1(&f, 1, y);
        ck_assert(lg_shape_equal(lg_tensor_shape(out), lg_shape_of(2, bsz, 3)));
        for (int r = 0; r < bsz; r++)
            for (int c = 0; c < 3; c++) ck_assert_close(lg_tensor_get(out, r * 3 + c), dense_expected(r, c, xv, wv), 1e-6);
        ck_assert_int_eq(lg_graph_program_count(g), programs[step]);
        lg_tensor_free(out);
    }

    /* new weights written through lg_param_tensor reach both cached programs */
    wv[0] = 10;
    wv[5] = -7;
    lg_tensor_copy_in(lg_param_tensor(w), wv, sizeof wv);
    for (int step = 0; step < 2; step++) {
        int bsz = step == 0 ? 3 : 4;
        lg_feed f = {x, bsz == 4 ? x4 : x3};
        lg_tensor *out = run1(&f, 1, y);
        for (int r = 0; r < bsz; r++)
            for (int c = 0; c < 3; c++) ck_assert_close(lg_tensor_get(out, r * 3 + c), dense_expected(r, c, xv, wv), 1e-6);
        lg_tensor_free(out);
    }
    ck_assert_int_eq(lg_graph_program_count(g), 2);

    /* a different fetch set is a different program */
    lg_feed f = {x, x4};
    lg_tensor *out = run1(&f, 1, lg_tanh(y));
    lg_tensor_free(out);
    ck_assert_int_eq(lg_graph_program_count(g), 3);

    lg_tensor_free(x4);
    lg_tensor_free(x3);
}
END_TEST

START_TEST(test_params_not_changed_by_run)
{
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(1, 3));
    lg_tensor_fill(lg_param_tensor(w), 1.5);
    lg_tensor *out = run1(NULL, 0, lg_exp(w));
    ck_assert_close(lg_tensor_get(out, 0), exp(1.5), 1e-12);
    for (int i = 0; i < 3; i++) ck_assert(lg_tensor_get(lg_param_tensor(w), i) == 1.5);
    lg_tensor_free(out);
}
END_TEST

/* ---- planning ------------------------------------------------------------------------ */

enum { CHAIN = 24, WIDTH = 1000 };

START_TEST(test_liveness_and_schedule)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, WIDTH));
    /* an unused branch: built, never fetched */
    lg_value unused = lg_exp(lg_square(lg_tanh(x)));
    (void)unused;
    lg_value v = x;
    for (int i = 0; i < CHAIN; i++) {
        switch (i % 3) {
        case 0: v = lg_tanh(v); break;
        case 1: v = lg_neg(v); break;
        default: v = lg_sigmoid(v); break;
        }
    }
    ck_assert_ptr_null(lg_graph_error(g));
    lg_tensor *xt = tensor_f32(lg_shape_of(1, WIDTH), NULL);
    for (int i = 0; i < WIDTH; i++) lg_tensor_set(xt, i, (i - WIDTH / 2) / 100.0);
    lg_feed f = {x, xt};
    lg_program *p = NULL;
    lg_compile_opts o = lg_compile_opts_default();
    o.passes_off = "fuse_elementwise"; /* the chain op by op, each value a buffer */
    ck_assert_int_eq(lg_program_compile_opts(g, &f, 1, &v, 1, o, &p), LG_OK);
    ck_assert_int_eq(lg_program_kernel_count(p), CHAIN);

    size_t one = WIDTH * sizeof(float);
    size_t all_intermediates = CHAIN * one;
    size_t peak = lg_program_peak_bytes(p);
    ck_assert_uint_gt(peak, 0);
    ck_assert_uint_lt(peak, all_intermediates);
    /* a chain never needs more than a few buffers live at once */
    ck_assert_uint_le(peak, 4 * one);

    /* reuse must not corrupt the result */
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_program_run(p, &f, 1, &out), LG_OK);
    for (int i = 0; i < WIDTH; i++) {
        float r = (float)lg_tensor_get(xt, i);
        for (int k = 0; k < CHAIN; k++) {
            switch (k % 3) {
            case 0: r = tanhf(r); break;
            case 1: r = -r; break;
            default: r = 1.0f / (1.0f + expf(-r)); break;
            }
        }
        ck_assert_close(lg_tensor_get(out, i), r, 1e-5);
    }
    lg_tensor_free(out);
    lg_program_free(p);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_schedule_shares_common_subgraph)
{
    /* a value read twice is computed once (fuse_elementwise off, which
     * would make both one kernel) */
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value t = lg_tanh(x);
    lg_value y = lg_add(t, t);
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 3), (const double[]){0.1, 0.2, 0.3});
    lg_feed f = {x, xt};
    lg_program *p = NULL;
    lg_value fetches[2] = {y, t};
    lg_compile_opts o = lg_compile_opts_default();
    o.passes_off = "fuse_elementwise";
    ck_assert_int_eq(lg_program_compile_opts(g, &f, 1, fetches, 2, o, &p), LG_OK);
    ck_assert_int_eq(lg_program_kernel_count(p), 2);
    lg_tensor *out[2] = {NULL, NULL};
    ck_assert_int_eq(lg_program_run(p, &f, 1, out), LG_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_close(lg_tensor_get(out[0], i), 2 * tanh(0.1 * (i + 1)), 1e-12);
        ck_assert_close(lg_tensor_get(out[1], i), tanh(0.1 * (i + 1)), 1e-12);
    }
    lg_tensor_free(out[0]);
    lg_tensor_free(out[1]);
    lg_program_free(p);
    lg_tensor_free(xt);
}
END_TEST

/* ---- run-time errors --------------------------------------------------------------------- */

START_TEST(test_gather_out_of_range)
{
    lg_value table = lg_param(g, "emb", LG_F32, lg_shape_of(2, 3, 2));
    lg_value idx = lg_input(g, "idx", LG_I32, lg_shape_of(1, 2));
    lg_value y = lg_gather(table, idx);
    lg_tensor *it = tensor_i32(lg_shape_of(1, 2), (const int32_t[]){0, 3});
    lg_feed f = {idx, it};
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, &out), LG_ERR_RUNTIME);
    ck_assert_str_ne(lg_last_error(), "");
    lg_tensor_set(it, 1, -1);
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, &out), LG_ERR_RUNTIME);
    ck_assert_ptr_null(out);
    /* the graph and its cached program still work with good data */
    lg_tensor_set(it, 1, 2);
    ck_assert_int_eq(lg_graph_run(g, &f, 1, &y, 1, &out), LG_OK);
    lg_tensor_free(out);
    lg_tensor_free(it);
}
END_TEST

START_TEST(test_sparse_xent_label_out_of_range)
{
    lg_value logits = lg_input(g, "logits", LG_F32, lg_shape_of(2, -1, 3));
    lg_value labels = lg_input(g, "labels", LG_I32, lg_shape_of(1, -1));
    lg_value y = lg_sparse_softmax_xent(labels, logits);
    lg_tensor *lt = tensor_f32(lg_shape_of(2, 2, 3), (const float[]){1, 2, 3, 0, 0, 0});
    lg_tensor *bt = tensor_i32(lg_shape_of(1, 2), (const int32_t[]){2, 0});
    lg_feed f[2] = {{logits, lt}, {labels, bt}};
    lg_tensor *out = run1(f, 2, y);
    double z = log(exp(1) + exp(2) + exp(3));
    const double want[2] = {z - 3, log(3)};
    assert_tensor(out, LG_F32, lg_shape_of(1, 2), want, 1e-6);
    lg_tensor_free(out);
    out = NULL;
    lg_tensor_set(bt, 1, 3);
    ck_assert_int_eq(lg_graph_run(g, f, 2, &y, 1, &out), LG_ERR_RUNTIME);
    lg_tensor_set(bt, 1, -1);
    ck_assert_int_eq(lg_graph_run(g, f, 2, &y, 1, &out), LG_ERR_RUNTIME);
    ck_assert_ptr_null(out);
    lg_tensor_free(lt);
    lg_tensor_free(bt);
}
END_TEST

START_TEST(test_fetch_inputs_params_and_duplicates)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 2));
    lg_value p = lg_param(g, "p", LG_F64, lg_shape_of(1, 2));
    lg_tensor_fill(lg_param_tensor(p), 4.0);
    lg_value y = lg_add(x, p);
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 2), (const double[]){1, 2});
    lg_feed f = {x, xt};
    lg_value fetches[4] = {x, p, y, y};
    lg_tensor *out[4] = {NULL, NULL, NULL, NULL};
    ck_assert_int_eq(lg_graph_run(g, &f, 1, fetches, 4, out), LG_OK);
    const double want_x[2] = {1, 2}, want_p[2] = {4, 4}, want_y[2] = {5, 6};
    assert_tensor(out[0], LG_F64, lg_shape_of(1, 2), want_x, 0);
    assert_tensor(out[1], LG_F64, lg_shape_of(1, 2), want_p, 0);
    assert_tensor(out[2], LG_F64, lg_shape_of(1, 2), want_y, 0);
    assert_tensor(out[3], LG_F64, lg_shape_of(1, 2), want_y, 0);
    /* fetched tensors are the caller's copies, not the feed or the parameter */
    ck_assert_ptr_ne(out[0], xt);
    ck_assert_ptr_ne(out[1], lg_param_tensor(p));
    ck_assert_ptr_ne(out[2], out[3]);
    lg_tensor_set(out[1], 0, -1);
    ck_assert(lg_tensor_get(lg_param_tensor(p), 0) == 4.0);
    for (int i = 0; i < 4; i++) lg_tensor_free(out[i]);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_unknown_dims_broadcast_at_compile)
{
    /* [?, 3] + [?, 3] fed [1, 3] and [4, 3]: numpy broadcasting at run time */
    lg_value a = lg_input(g, "a", LG_F64, lg_shape_of(2, -1, 3));
    lg_value b = lg_input(g, "b", LG_F64, lg_shape_of(2, -1, 3));
    lg_value c = lg_add(a, b);
    lg_tensor *at = tensor_f64(lg_shape_of(2, 1, 3), (const double[]){100, 200, 300});
    lg_tensor *bt = tensor_f64(lg_shape_of(2, 4, 3), NULL);
    for (int i = 0; i < 12; i++) lg_tensor_set(bt, i, i);
    lg_feed f[2] = {{a, at}, {b, bt}};
    lg_tensor *out = run1(f, 2, c);
    ck_assert(lg_shape_equal(lg_tensor_shape(out), lg_shape_of(2, 4, 3)));
    for (int i = 0; i < 12; i++) ck_assert(lg_tensor_get(out, i) == i + 100 * (i % 3 + 1));
    lg_tensor_free(out);
    lg_tensor_free(at);
    lg_tensor_free(bt);
}
END_TEST

static Suite *program_suite(void)
{
    Suite *s = suite_create("program");
    TCase *tc = tcase_create("values");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_dense_f32);
    tcase_add_test(tc, test_matmul_transposes_f64);
    tcase_add_test(tc, test_tf32_switch_leaves_cpu_alone);
    tcase_add_test(tc, test_elementwise_f64);
    tcase_add_test(tc, test_broadcast_and_reduce_f64);
    tcase_add_test(tc, test_i32);
    tcase_add_test(tc, test_cast_truncates);
    tcase_add_test(tc, test_cast_saturates);
    tcase_add_test(tc, test_gather_and_split_values);
    tcase_add_test(tc, test_no_feeds_needed);
    tcase_add_test(tc, test_fetch_inputs_params_and_duplicates);
    tcase_add_test(tc, test_unknown_dims_broadcast_at_compile);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_missing_feed);
    tcase_add_test(tc, test_unneeded_input_need_not_be_fed);
    tcase_add_test(tc, test_feed_wrong_shape);
    tcase_add_test(tc, test_feed_zero_size_is_error);
    tcase_add_test(tc, test_compile_refuses_too_large_fed_shape);
    tcase_add_test(tc, test_planner_never_wraps);
    tcase_add_test(tc, test_feed_wrong_dtype);
    tcase_add_test(tc, test_feed_not_an_input);
    tcase_add_test(tc, test_feed_null_tensor);
    tcase_add_test(tc, test_fetch_errors);
    tcase_add_test(tc, test_graph_with_error);
    tcase_add_test(tc, test_concrete_shape_mismatch);
    tcase_add_test(tc, test_preallocated_out);
    tcase_add_test(tc, test_gather_out_of_range);
    tcase_add_test(tc, test_sparse_xent_label_out_of_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("programs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_program_compile_and_run);
    tcase_add_test(tc, test_cache_and_params_across_recompiles);
    tcase_add_test(tc, test_params_not_changed_by_run);
    tcase_add_test(tc, test_liveness_and_schedule);
    tcase_add_test(tc, test_schedule_shares_common_subgraph);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lg_check_run(program_suite());
}
