/*
 * test_timeseries.c — Keras's timeseries windows (dataset.h), worked out by
 * hand from keras/src/utils/timeseries_dataset_utils.py, and the
 * forecasting recipe on the committed El Nino series end to end.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkfifo */

#include "data_util.h"

/* ---- time-series windows ---------------------------------------------------------------- */

/* data [n, 1] f32 = 0, 1, ..., n - 1 */
static lg_tensor *ramp(int n)
{
    lg_tensor *t = lg_test_tensor(LG_F32, lg_shape_of(2, n, 1), NULL);
    for (int i = 0; i < n; i++) lg_tensor_set(t, i, i);
    return t;
}

/* targets [n] i32 = 0, 10, 20, ... */
static lg_tensor *tens(int n)
{
    lg_tensor *t = lg_test_tensor(LG_I32, lg_shape_of(1, n), NULL);
    for (int i = 0; i < n; i++) lg_tensor_set(t, i, 10 * i);
    return t;
}

static lg_dataset *windows_ok(const lg_tensor *data, const lg_tensor *targets, lg_timeseries_opts o)
{
    lg_dataset *ds = NULL;
    ASSERT_OK(lg_timeseries_dataset_new(data, targets, o, &ds));
    return ds;
}

/* The dataset's windows (its only batch) equal want [n_win, len] (first
 * feature) and, when targets, want_y [n_win]. */
static void assert_windows(lg_dataset *ds, int n_win, int len, const double *want, const double *want_y)
{
    ck_assert_int_eq(lg_dataset_size(ds), n_win);
    ck_assert_int_eq(lg_dataset_batch_count(ds), 1);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    assert_shape(bx, lg_shape_of(3, n_win, len, 1));
    assert_values(bx, want, n_win * len);
    if (want_y) {
        assert_shape(by, lg_shape_of(1, n_win));
        assert_values(by, want_y, n_win);
    } else {
        ck_assert_ptr_null(by);
    }
}

/* sequence_length 3, sampling_rate 2, sequence_stride 2 over 10 rows:
 * num_seqs = 10 - 0 - (3 - 1) * 2 = 6, start positions arange(0, 6, 2) =
 * 0, 2, 4; window p is rows p, p + 2, p + 4; its target is targets[p]. */
START_TEST(test_windows_rate_and_stride)
{
    lg_timeseries_opts d = lg_timeseries_opts_default(3);
    ck_assert(d.sequence_length == 3 && d.sequence_stride == 1 && d.sampling_rate == 1);
    ck_assert(d.start_index == 0 && d.end_index == -1 && d.delay == 0);
    ck_assert(d.batch.batch_size == 128 && !d.batch.shuffle && !d.batch.drop_last);
    lg_tensor *data = ramp(10), *targets = tens(10);
    lg_timeseries_opts o = lg_timeseries_opts_default(3);
    o.sampling_rate = 2;
    o.sequence_stride = 2;
    lg_dataset *ds = windows_ok(data, targets, o);
    assert_windows(ds, 3, 3, (const double[]){0, 2, 4, 2, 4, 6, 4, 6, 8}, (const double[]){0, 20, 40});
    lg_dataset_free(ds);
    /* stride 1: num_seqs 6 windows, the last at 5 (rows 5, 7, 9) */
    o.sequence_stride = 1;
    ds = windows_ok(data, targets, o);
    ck_assert_int_eq(lg_dataset_size(ds), 6);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    ck_assert_double_eq(lg_tensor_get(bx, 15), 5);
    ck_assert_double_eq(lg_tensor_get(bx, 17), 9);
    ck_assert_double_eq(lg_tensor_get(by, 5), 50);
    lg_dataset_free(ds);
    lg_tensor_free(data);
    lg_tensor_free(targets);
}
END_TEST

/* start_index 1, end_index 9: Keras slices data[1:9] (8 rows), num_seqs =
 * 8 - 4 = 4, starts 0, 2 of the slice: rows (1, 3, 5) and (3, 5, 7),
 * targets targets[1 + 0] and targets[1 + 2]. end_index is exclusive:
 * end_index 7 leaves num_seqs 2 and only the first window, since the
 * second would read row 7. */
START_TEST(test_windows_start_end)
{
    lg_tensor *data = ramp(10), *targets = tens(10);
    lg_timeseries_opts o = lg_timeseries_opts_default(3);
    o.sampling_rate = 2;
    o.sequence_stride = 2;
    o.start_index = 1;
    o.end_index = 9;
    lg_dataset *ds = windows_ok(data, targets, o);
    assert_windows(ds, 2, 3, (const double[]){1, 3, 5, 3, 5, 7}, (const double[]){10, 30});
    lg_dataset_free(ds);
    o.end_index = 8; /* num_seqs 3: starts 0, 2 still */
    ds = windows_ok(data, targets, o);
    assert_windows(ds, 2, 3, (const double[]){1, 3, 5, 3, 5, 7}, (const double[]){10, 30});
    lg_dataset_free(ds);
    o.end_index = 7;
    ds = windows_ok(data, targets, o);
    assert_windows(ds, 1, 3, (const double[]){1, 3, 5}, (const double[]){10});
    lg_dataset_free(ds);
    o.end_index = 10; /* the series' length: the same as -1 */
    o.start_index = 0;
    ds = windows_ok(data, targets, o);
    assert_windows(ds, 3, 3, (const double[]){0, 2, 4, 2, 4, 6, 4, 6, 8}, (const double[]){0, 20, 40});
    lg_dataset_free(ds);
    lg_tensor_free(data);
    lg_tensor_free(targets);
}
END_TEST

/* Keras's docstring example 1: indices 0..98, sequence_length 10,
 * sampling_rate 2, sequence_stride 3: first [0 2 ... 18], second
 * [3 5 ... 21], third [6 ... 24], last [78 80 ... 96] (num_seqs 99 - 18 =
 * 81, starts 0, 3, ..., 78: 27 windows); no targets. */
START_TEST(test_windows_keras_example_1)
{
    lg_tensor *data = ramp(99);
    lg_timeseries_opts o = lg_timeseries_opts_default(10);
    o.sampling_rate = 2;
    o.sequence_stride = 3;
    lg_dataset *ds = windows_ok(data, NULL, o);
    ck_assert_int_eq(lg_dataset_size(ds), 27);
    lg_tensor *bx, *by = (lg_tensor *)1;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    ck_assert_ptr_null(by);
    assert_shape(bx, lg_shape_of(3, 27, 10, 1));
    const int starts[4] = {0, 3, 6, 78}, win[4] = {0, 1, 2, 26};
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 10; j++) ck_assert_double_eq(lg_tensor_get(bx, win[k] * 10 + j), starts[k] + 2 * j);
    lg_dataset_free(ds);
    lg_tensor_free(data);
}
END_TEST

/* Keras's docstring example 2: input_data = data[:-10], targets =
 * data[10:], sequence_length 10: the first window is data[:10] and its
 * target data[10]. delay 10 with the whole series as targets is the same. */
START_TEST(test_windows_delay)
{
    enum { T = 30, D = 10 };
    lg_tensor *data = lg_test_tensor(LG_F64, lg_shape_of(2, T, 2), NULL),
              *temp = lg_test_tensor(LG_F64, lg_shape_of(1, T), NULL);
    lg_tensor *head = lg_test_tensor(LG_F64, lg_shape_of(2, T - D, 2), NULL),
              *tail = lg_test_tensor(LG_F64, lg_shape_of(1, T - D), NULL);
    for (int i = 0; i < T; i++) {
        lg_tensor_set(data, 2 * i, i);
        lg_tensor_set(data, 2 * i + 1, 100 + i);
        lg_tensor_set(temp, i, 0.5 * i);
        if (i < T - D) {
            lg_tensor_set(head, 2 * i, i);
            lg_tensor_set(head, 2 * i + 1, 100 + i);
        }
        if (i >= D) lg_tensor_set(tail, i - D, 0.5 * i);
    }
    lg_timeseries_opts o = lg_timeseries_opts_default(10);
    o.batch.batch_size = 4;
    o.start_index = 2;
    lg_dataset *by_delay, *sliced = windows_ok(head, tail, o);
    o.delay = D;
    by_delay = windows_ok(data, temp, o);
    /* num_seqs = 20 - 2 - 9 = 9 windows, starting at rows 2..10 */
    ck_assert_int_eq(lg_dataset_size(by_delay), 9);
    ck_assert_int_eq(lg_dataset_batch_count(by_delay), 3);
    for (int k = 0; k < 3; k++) {
        lg_tensor *ax, *ay, *bx, *by;
        ASSERT_OK(lg_dataset_batch(by_delay, k, &ax, &ay));
        ASSERT_OK(lg_dataset_batch(sliced, k, &bx, &by));
        ck_assert(lg_shape_equal(lg_tensor_shape(ax), lg_tensor_shape(bx)));
        for (int64_t i = 0; i < lg_tensor_numel(ax); i++)
            ck_assert_double_eq(lg_tensor_get(ax, i), lg_tensor_get(bx, i));
        for (int64_t i = 0; i < lg_tensor_numel(ay); i++)
            ck_assert_double_eq(lg_tensor_get(ay, i), lg_tensor_get(by, i));
        if (k == 0) { /* window 0: rows 2..11, target row 2 + 10 */
            assert_shape(ax, lg_shape_of(3, 4, 10, 2));
            ck_assert_double_eq(lg_tensor_get(ax, 0), 2);
            ck_assert_double_eq(lg_tensor_get(ax, 19), 111);
            ck_assert_double_eq(lg_tensor_get(ay, 0), 0.5 * 12);
        }
    }
    lg_dataset_free(by_delay);
    lg_dataset_free(sliced);
    /* example 2 itself: the step right after the window */
    o = lg_timeseries_opts_default(10);
    o.delay = D;
    by_delay = windows_ok(temp, temp, o);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(by_delay, 0, &bx, &by));
    assert_shape(bx, lg_shape_of(2, 11, 10)); /* data [T] gives windows [b, 10] */
    for (int j = 0; j < 10; j++) ck_assert_double_eq(lg_tensor_get(bx, j), 0.5 * j);
    ck_assert_double_eq(lg_tensor_get(by, 0), 0.5 * 10);
    lg_dataset_free(by_delay);
    lg_tensor_free(data);
    lg_tensor_free(temp);
    lg_tensor_free(head);
    lg_tensor_free(tail);
}
END_TEST

/* Targets shorter than the data bound num_seqs (Keras: min(num_seqs,
 * len(targets))); targets of rank 2 give y [b, k]. */
START_TEST(test_windows_short_targets)
{
    lg_tensor *data = ramp(10);
    lg_tensor *t2 = lg_test_tensor(LG_F32, lg_shape_of(2, 4, 2), (const float[]){0, 1, 2, 3, 4, 5, 6, 7});
    lg_timeseries_opts o = lg_timeseries_opts_default(3);
    lg_dataset *ds = windows_ok(data, t2, o);
    ck_assert_int_eq(lg_dataset_size(ds), 4); /* min(10 - 2, 4) */
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    assert_shape(by, lg_shape_of(2, 4, 2));
    assert_values(by, (const double[]){0, 1, 2, 3, 4, 5, 6, 7}, 8);
    ck_assert_double_eq(lg_tensor_get(bx, 3 * 3 + 2), 5); /* window 3: rows 3, 4, 5 */
    lg_dataset_free(ds);
    lg_tensor_free(data);
    lg_tensor_free(t2);
}
END_TEST

/* Batches of windows, the last one smaller or dropped, and shuffling that
 * keeps each window with its target; data of rank 3. */
START_TEST(test_windows_batches_and_shuffle)
{
    lg_tensor *data = ramp(10), *targets = tens(10);
    lg_timeseries_opts o = lg_timeseries_opts_default(2); /* 9 windows */
    o.batch.batch_size = 4;
    lg_dataset *ds = windows_ok(data, targets, o);
    ck_assert_int_eq(lg_dataset_batch_count(ds), 3);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 2, &bx, &by));
    assert_shape(bx, lg_shape_of(3, 1, 2, 1));
    assert_values(bx, (const double[]){8, 9}, 2);
    assert_values(by, (const double[]){80}, 1);
    ASSERT_OK(lg_dataset_batch(ds, 1, &bx, &by));
    assert_shape(bx, lg_shape_of(3, 4, 2, 1));
    lg_dataset_free(ds);
    o.batch.drop_last = true;
    ds = windows_ok(data, targets, o);
    ck_assert_int_eq(lg_dataset_batch_count(ds), 2);
    lg_dataset_free(ds);
    o.batch.drop_last = false;
    o.batch.shuffle = true;
    o.batch.seed = 5;
    ds = windows_ok(data, targets, o);
    bool seen[9] = {false};
    bool moved = false;
    for (int k = 0, pos = 0; k < 3; k++) {
        ASSERT_OK(lg_dataset_batch(ds, k, &bx, &by));
        for (int e = 0; e < lg_tensor_shape(bx).dims[0]; e++, pos++) {
            int p = (int)lg_tensor_get(bx, 2 * e);
            ck_assert_double_eq(lg_tensor_get(bx, 2 * e + 1), p + 1);
            ck_assert_double_eq(lg_tensor_get(by, e), 10 * p);
            ck_assert(!seen[p]);
            seen[p] = true;
            moved |= p != pos;
        }
    }
    ck_assert(moved);
    lg_dataset_free(ds);
    /* rank 3 data: windows [b, len, 2, 2] */
    lg_tensor *cube = lg_test_tensor(LG_F64, lg_shape_of(3, 4, 2, 2), NULL);
    for (int i = 0; i < 16; i++) lg_tensor_set(cube, i, i);
    o = lg_timeseries_opts_default(2);
    o.sequence_stride = 2;
    ds = windows_ok(cube, NULL, o);
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    assert_shape(bx, lg_shape_of(4, 2, 2, 2, 2));
    ck_assert_double_eq(lg_tensor_get(bx, 8), 8); /* window 1 starts at row 2 */
    ck_assert_double_eq(lg_tensor_get(bx, 15), 15);
    lg_dataset_free(ds);
    lg_tensor_free(cube);
    lg_tensor_free(data);
    lg_tensor_free(targets);
}
END_TEST

START_TEST(test_windows_errors)
{
    lg_tensor *data = ramp(10), *targets = tens(10);
    lg_dataset *ds = (lg_dataset *)1;
    const char *fn = "lg_timeseries_dataset_new: ";
    (void)fn;
    lg_timeseries_opts o = lg_timeseries_opts_default(3);
    ASSERT_FAILS(lg_timeseries_dataset_new(data, targets, o, NULL), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    ASSERT_FAILS(lg_timeseries_dataset_new(NULL, targets, o, &ds), LG_ERR_INVALID_ARGUMENT, "data is NULL");
    ck_assert_ptr_null(ds);
    lg_tensor *scalar = lg_test_tensor(LG_F32, lg_shape_of(0), NULL);
    lg_tensor *rank6 = lg_test_tensor(LG_F32, lg_shape_of(6, 4, 1, 1, 1, 1, 1), NULL);
    ASSERT_FAILS(lg_timeseries_dataset_new(scalar, NULL, o, &ds), LG_ERR_SHAPE, "data has rank 0");
    ASSERT_FAILS(lg_timeseries_dataset_new(data, scalar, o, &ds), LG_ERR_SHAPE, "targets has rank 0");
    ASSERT_FAILS(lg_timeseries_dataset_new(rank6, NULL, o, &ds), LG_ERR_SHAPE,
                 "data [4, 1, 1, 1, 1, 1] has rank 6: a batch of its windows would need rank 7 > 6");
    const struct {
        int64_t len, stride, rate, start, end, delay;
        bool targets;
        const char *msg;
    } bad[] = {
        {0, 1, 1, 0, -1, 0, true, "sequence_length 0: must be >= 1"},
        {3, 0, 1, 0, -1, 0, true, "sequence_stride 0: must lie in [1, 10) for 10 rows"},
        {3, 10, 1, 0, -1, 0, true, "sequence_stride 10: must lie in [1, 10)"},
        {3, 1, 0, 0, -1, 0, true, "sampling_rate 0: must lie in [1, 10)"},
        {3, 1, 10, 0, -1, 0, true, "sampling_rate 10: must lie in [1, 10)"},
        {3, 1, 1, -1, -1, 0, true, "start_index -1: must lie in [0, 10)"},
        {3, 1, 1, 10, -1, 0, true, "start_index 10: must lie in [0, 10)"},
        {3, 1, 1, 4, 4, 0, true, "end_index 4: must be -1 or lie in (start_index 4, 10]"},
        {3, 1, 1, 0, 11, 0, true, "end_index 11: must be -1 or lie in (start_index 0, 10]"},
        {3, 1, 1, 0, -2, 0, true, "end_index -2"},
        {3, 1, 1, 0, -1, -1, true, "delay -1: must be >= 0"},
        {3, 1, 1, 0, -1, 2, false, "delay 2 without targets"},
        {3, 1, 1, 0, -1, 10, true, "delay 10 leaves no rows: data has 10, targets 10"},
        /* windows longer than the series: 11 rows, or 3 at rate 5 (11 rows) */
        {11, 1, 1, 0, -1, 0, true,
         "sequence_length 11 at sampling_rate 1 spans more than the 10 rows in [start_index 0, end_index 10)"},
        {3, 1, 5, 0, -1, 0, true, "sequence_length 3 at sampling_rate 5 spans more than the 10 rows"},
        {3, 1, 2, 6, -1, 0, true, "spans more than the 4 rows in [start_index 6, end_index 10)"},
        {3, 1, 1, 0, -1, 8, true, "sequence_length 3 at sampling_rate 1 spans more than the 2 rows"},
        {INT64_MAX, 1, 2, 0, -1, 0, true, "spans more than the 10 rows"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = lg_timeseries_opts_default(bad[i].len);
        o.sequence_stride = bad[i].stride;
        o.sampling_rate = bad[i].rate;
        o.start_index = bad[i].start;
        o.end_index = bad[i].end;
        o.delay = bad[i].delay;
        ASSERT_FAILS(lg_timeseries_dataset_new(data, bad[i].targets ? targets : NULL, o, &ds), LG_ERR_INVALID_ARGUMENT,
                     bad[i].msg);
    }
    /* delay beyond the targets only */
    lg_tensor *t3 = tens(3);
    o = lg_timeseries_opts_default(3);
    o.delay = 3;
    ASSERT_FAILS(lg_timeseries_dataset_new(data, t3, o, &ds), LG_ERR_INVALID_ARGUMENT,
                 "delay 3 leaves no rows: data has 10, targets 3");
    /* targets too short for a window's target row once start_index shifts it
     * (Keras fails on this while iterating) */
    o = lg_timeseries_opts_default(3);
    o.start_index = 2;
    ASSERT_FAILS(lg_timeseries_dataset_new(data, t3, o, &ds), LG_ERR_INVALID_ARGUMENT,
                 "targets have 3 rows after delay 0; the window at row 4 needs target row 4");
    /* bad batching */
    o = lg_timeseries_opts_default(3);
    o.batch.batch_size = 0;
    ASSERT_FAILS(lg_timeseries_dataset_new(data, targets, o, &ds), LG_ERR_INVALID_ARGUMENT, "batch_size 0");
    o.batch.batch_size = 9;
    o.batch.drop_last = true;
    ASSERT_FAILS(lg_timeseries_dataset_new(data, targets, o, &ds), LG_ERR_INVALID_ARGUMENT,
                 "drop_last with batch_size 9 leaves no batch: the dataset has 8 examples");
    ck_assert_ptr_null(ds);
    lg_tensor_free(t3);
    lg_tensor_free(scalar);
    lg_tensor_free(rank6);
    lg_tensor_free(data);
    lg_tensor_free(targets);
}
END_TEST

/* ---- the El Nino series end to end --------------------------------------------------------- */

/* The forecasting recipe on the committed series: read the temperature
 * column, standardise with the first 600 months, and window 12 months to
 * predict the month after (delay 12). */
START_TEST(test_elnino_forecasting_windows)
{
    lg_csv_opts co = lg_csv_opts_default();
    const char *cols[] = {"sst"};
    co.names = cols;
    co.n_columns = 1;
    lg_tensor *sst = NULL;
    ASSERT_OK(lg_csv_read(ELNINO_CSV, co, &sst));
    assert_shape(sst, lg_shape_of(2, 732, 1));
    ck_assert_double_eq(lg_tensor_get(sst, 0), 23.11f);
    ck_assert_double_eq(lg_tensor_get(sst, 731), 22.07f);
    double raw12 = lg_tensor_get(sst, 12);
    lg_tensor *mean = NULL, *std = NULL;
    ASSERT_OK(lg_standardize(sst, 600, &mean, &std));
    double sum = 0;
    for (int i = 0; i < 600; i++) sum += lg_tensor_get(sst, i);
    ck_assert_double_eq_tol(sum / 600, 0, 1e-4);
    ck_assert(lg_tensor_get(mean, 0) > 22 && lg_tensor_get(mean, 0) < 24);
    ck_assert(lg_tensor_get(std, 0) > 1 && lg_tensor_get(std, 0) < 3);
    lg_tensor *target = lg_test_tensor(LG_F32, lg_shape_of(1, 732), lg_tensor_cdata(sst)); /* [732] */
    lg_timeseries_opts o = lg_timeseries_opts_default(12);
    o.delay = 12;
    o.end_index = 600;
    o.batch.batch_size = 64;
    lg_dataset *train = NULL;
    ASSERT_OK(lg_timeseries_dataset_new(sst, target, o, &train));
    ck_assert_int_eq(lg_dataset_size(train), 600 - 11); /* num_seqs = 600 - 0 - 11 */
    ck_assert_int_eq(lg_dataset_batch_count(train), 10);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(train, 0, &bx, &by));
    assert_shape(bx, lg_shape_of(3, 64, 12, 1));
    assert_shape(by, lg_shape_of(1, 64));
    for (int j = 0; j < 12; j++) ck_assert_double_eq(lg_tensor_get(bx, j), lg_tensor_get(sst, j));
    ck_assert_double_eq(lg_tensor_get(by, 0), lg_tensor_get(sst, 12));
    ck_assert_double_eq_tol(lg_tensor_get(by, 0) * lg_tensor_get(std, 0) + lg_tensor_get(mean, 0), raw12, 1e-5);
    lg_dataset_free(train);
    lg_tensor_free(target);
    lg_tensor_free(mean);
    lg_tensor_free(std);
    lg_tensor_free(sst);
}
END_TEST

static Suite *timeseries_suite(void)
{
    Suite *s = suite_create("timeseries");
    TCase *timeseries = tcase_create("timeseries");
    tcase_add_test(timeseries, test_windows_rate_and_stride);
    tcase_add_test(timeseries, test_windows_start_end);
    tcase_add_test(timeseries, test_windows_keras_example_1);
    tcase_add_test(timeseries, test_windows_delay);
    tcase_add_test(timeseries, test_windows_short_targets);
    tcase_add_test(timeseries, test_windows_batches_and_shuffle);
    tcase_add_test(timeseries, test_windows_errors);
    tcase_add_test(timeseries, test_elnino_forecasting_windows);
    suite_add_tcase(s, timeseries);
    return s;
}

int main(void) { return lg_check_run(timeseries_suite()); }
