/*
 * test_synthetic.c — the synthetic tasks of synthetic.h: sine to cosine,
 * adding and copy, their reproducibility and their errors.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkfifo */

#include <math.h>
#include "data_util.h"

/* ---- synthetic tasks ------------------------------------------------------------------------- */

static bool tensors_equal(const lg_tensor *a, const lg_tensor *b)
{
    return lg_tensor_bytes(a) == lg_tensor_bytes(b) &&
           memcmp(lg_tensor_cdata(a), lg_tensor_cdata(b), lg_tensor_bytes(a)) == 0;
}

START_TEST(test_synth_sine)
{
    lg_sine_opts d = lg_sine_opts_default();
    ck_assert(d.n == 1000 && d.steps == 50 && d.dt == 0.1 && d.seed == 0 && d.dtype == LG_F32);
    lg_sine_opts o = {.n = 4, .steps = 20, .dt = 0.3, .seed = 9, .dtype = LG_F64};
    lg_tensor *x, *y, *x2, *y2;
    ASSERT_OK(lg_synth_sine(o, &x, &y));
    assert_shape(x, lg_shape_of(3, 4, 20, 1));
    assert_shape(y, lg_shape_of(3, 4, 20, 1));
    for (int i = 0; i < 4; i++) {
        double phi = atan2(lg_tensor_get(x, i * 20), lg_tensor_get(y, i * 20));
        for (int t = 0; t < 20; t++) {
            ck_assert_double_eq_tol(lg_tensor_get(x, i * 20 + t), sin(phi + 0.3 * t), 1e-12);
            ck_assert_double_eq_tol(lg_tensor_get(y, i * 20 + t), cos(phi + 0.3 * t), 1e-12);
        }
    }
    ck_assert(lg_tensor_get(x, 0) != lg_tensor_get(x, 20)); /* phases differ */
    o.n = 2;                                                /* example i does not depend on n */
    ASSERT_OK(lg_synth_sine(o, &x2, &y2));
    ck_assert(memcmp(lg_tensor_cdata(x), lg_tensor_cdata(x2), lg_tensor_bytes(x2)) == 0);
    lg_tensor_free(x2);
    lg_tensor_free(y2);
    o.n = 4;
    o.seed = 10;
    ASSERT_OK(lg_synth_sine(o, &x2, &y2));
    ck_assert(!tensors_equal(x, x2));
    lg_tensor_free(x2);
    lg_tensor_free(y2);
    lg_tensor_free(x);
    lg_tensor_free(y);
    ASSERT_OK(lg_synth_sine(lg_sine_opts_default(), &x, &y));
    ck_assert_int_eq(lg_tensor_dtype(x), LG_F32);
    assert_shape(y, lg_shape_of(3, 1000, 50, 1));
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

START_TEST(test_synth_adding)
{
    lg_adding_opts d = lg_adding_opts_default();
    ck_assert(d.n == 1000 && d.steps == 100 && d.seed == 0 && d.dtype == LG_F32);
    enum { N = 200, T = 11 };
    lg_adding_opts o = {.n = N, .steps = T, .seed = 3, .dtype = LG_F64};
    lg_tensor *x, *y, *x2, *y2;
    ASSERT_OK(lg_synth_adding(o, &x, &y));
    assert_shape(x, lg_shape_of(3, N, T, 2));
    assert_shape(y, lg_shape_of(2, N, 1));
    int first_at[T] = {0}, second_at[T] = {0};
    double ysum = 0;
    for (int i = 0; i < N; i++) {
        int marks = 0, m[2] = {-1, -1};
        double sum = 0;
        for (int t = 0; t < T; t++) {
            double v = lg_tensor_get(x, (i * T + t) * 2), k = lg_tensor_get(x, (i * T + t) * 2 + 1);
            ck_assert(v >= 0 && v < 1);
            ck_assert(k == 0 || k == 1);
            if (k == 1) {
                ck_assert_int_lt(marks, 2);
                m[marks++] = t;
                sum += v;
            }
        }
        ck_assert_int_eq(marks, 2);
        ck_assert_int_lt(m[0], T / 2); /* one marker in each half */
        ck_assert_int_ge(m[1], T / 2);
        first_at[m[0]]++;
        second_at[m[1]]++;
        ck_assert_double_eq(lg_tensor_get(y, i), sum);
        ysum += sum;
    }
    for (int t = 0; t < T / 2; t++) ck_assert_int_gt(first_at[t], 0); /* every position is drawn */
    for (int t = T / 2; t < T; t++) ck_assert_int_gt(second_at[t], 0);
    ck_assert_double_eq_tol(ysum / N, 1.0, 0.1); /* E[y] = 1 */
    ASSERT_OK(lg_synth_adding(o, &x2, &y2));
    ck_assert(tensors_equal(x, x2) && tensors_equal(y, y2)); /* reproducible */
    lg_tensor_free(x2);
    lg_tensor_free(y2);
    o.seed = 4;
    ASSERT_OK(lg_synth_adding(o, &x2, &y2));
    ck_assert(!tensors_equal(x, x2));
    lg_tensor_free(x2);
    lg_tensor_free(y2);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

START_TEST(test_synth_copy)
{
    lg_copy_opts d = lg_copy_opts_default();
    ck_assert(d.n == 1000 && d.length == 10 && d.blanks == 10 && d.symbols == 8 && d.seed == 0);
    enum { N = 50, L = 3, B = 2, S = 2 * L + B + 1 };
    lg_copy_opts o = {.n = N, .length = L, .blanks = B, .symbols = 8, .seed = 1};
    lg_tensor *x, *y, *x2, *y2;
    ASSERT_OK(lg_synth_copy(o, &x, &y));
    ck_assert_int_eq(lg_tensor_dtype(x), LG_I32);
    assert_shape(x, lg_shape_of(2, N, S));
    assert_shape(y, lg_shape_of(2, N, S));
    bool symbol_seen[9] = {false};
    for (int i = 0; i < N; i++) {
        const int32_t *rx = (const int32_t *)lg_tensor_cdata(x) + i * S,
                      *ry = (const int32_t *)lg_tensor_cdata(y) + i * S;
        for (int j = 0; j < L; j++) {
            ck_assert(rx[j] >= 1 && rx[j] <= 8);
            symbol_seen[rx[j]] = true;
            ck_assert_int_eq(ry[L + B + 1 + j], rx[j]); /* the target repeats the symbols */
        }
        for (int j = L; j < L + B; j++) ck_assert_int_eq(rx[j], 0);
        ck_assert_int_eq(rx[L + B], 9); /* the delimiter */
        for (int j = L + B + 1; j < S; j++) ck_assert_int_eq(rx[j], 0);
        for (int j = 0; j < L + B + 1; j++) ck_assert_int_eq(ry[j], 0);
    }
    for (int s = 1; s <= 8; s++) ck_assert(symbol_seen[s]);
    ASSERT_OK(lg_synth_copy(o, &x2, &y2));
    ck_assert(tensors_equal(x, x2) && tensors_equal(y, y2));
    lg_tensor_free(x2);
    lg_tensor_free(y2);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

START_TEST(test_synth_errors)
{
    lg_tensor *x = (lg_tensor *)1, *y = (lg_tensor *)1;
    lg_sine_opts s = lg_sine_opts_default();
    ASSERT_FAILS(lg_synth_sine(s, NULL, &y), LG_ERR_INVALID_ARGUMENT, "lg_synth_sine: x or y is NULL");
    ck_assert_ptr_null(y);
    s.n = 0;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_INVALID_ARGUMENT, "lg_synth_sine: n 0: must be >= 1");
    ck_assert(x == NULL && y == NULL);
    s = lg_sine_opts_default();
    s.steps = -3;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_INVALID_ARGUMENT, "steps -3: must be >= 1");
    s = lg_sine_opts_default();
    s.dt = 0;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_INVALID_ARGUMENT, "dt 0: must be finite and nonzero");
    s.dt = INFINITY;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_INVALID_ARGUMENT, "dt inf");
    s = lg_sine_opts_default();
    s.dtype = LG_I32;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_DTYPE, "lg_synth_sine: dtype 2: needs LG_F32 or LG_F64");
    s = lg_sine_opts_default();
    s.n = 1LL << 40;
    s.steps = 1LL << 40;
    ASSERT_FAILS(lg_synth_sine(s, &x, &y), LG_ERR_SHAPE, "too many elements");

    lg_adding_opts a = lg_adding_opts_default();
    ASSERT_FAILS(lg_synth_adding(a, &x, NULL), LG_ERR_INVALID_ARGUMENT, "lg_synth_adding: x or y is NULL");
    ck_assert_ptr_null(x);
    a.steps = 1;
    ASSERT_FAILS(lg_synth_adding(a, &x, &y), LG_ERR_INVALID_ARGUMENT, "lg_synth_adding: steps 1: must be >= 2");
    a = lg_adding_opts_default();
    a.n = -1;
    ASSERT_FAILS(lg_synth_adding(a, &x, &y), LG_ERR_INVALID_ARGUMENT, "n -1");
    a = lg_adding_opts_default();
    a.dtype = (lg_dtype)5;
    ASSERT_FAILS(lg_synth_adding(a, &x, &y), LG_ERR_DTYPE, "dtype 5");

    lg_copy_opts c = lg_copy_opts_default();
    ASSERT_FAILS(lg_synth_copy(c, NULL, NULL), LG_ERR_INVALID_ARGUMENT, "lg_synth_copy: x or y is NULL");
    c.n = 0;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_INVALID_ARGUMENT, "lg_synth_copy: n 0");
    c = lg_copy_opts_default();
    c.length = 0;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_INVALID_ARGUMENT, "length 0: must be >= 1");
    c = lg_copy_opts_default();
    c.blanks = -1;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_INVALID_ARGUMENT, "blanks -1: must be >= 0");
    c = lg_copy_opts_default();
    c.symbols = 0;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_INVALID_ARGUMENT, "symbols 0: must lie in [1, 2147483647)");
    c.symbols = INT32_MAX;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_INVALID_ARGUMENT, "symbols 2147483647");
    c = lg_copy_opts_default();
    c.length = INT64_MAX / 2;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_SHAPE, "too many steps");
    c = lg_copy_opts_default();
    c.blanks = INT64_MAX - 5;
    ASSERT_FAILS(lg_synth_copy(c, &x, &y), LG_ERR_SHAPE, "too many steps");
    ck_assert(x == NULL && y == NULL);
}
END_TEST

static Suite *synthetic_suite(void)
{
    Suite *s = suite_create("synthetic");
    TCase *synthetic = tcase_create("synthetic");
    tcase_add_test(synthetic, test_synth_sine);
    tcase_add_test(synthetic, test_synth_adding);
    tcase_add_test(synthetic, test_synth_copy);
    tcase_add_test(synthetic, test_synth_errors);
    suite_add_tcase(s, synthetic);
    return s;
}

int main(void) { return lg_check_run(synthetic_suite()); }
