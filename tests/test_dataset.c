/*
 * test_dataset.c — batching and shuffling of in-memory datasets
 * (dataset.h) and the train/validation split.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkfifo */

#include "data_util.h"

/* ---- datasets ------------------------------------------------------------------------------- */

/* x [n, 2] f32 with row r = (r, 10 r); y [n] i32 with row r = r */
static void rows_xy(int n, lg_tensor **x, lg_tensor **y)
{
    *x = lg_test_tensor(LG_F32, lg_shape_of(2, n, 2), NULL);
    *y = lg_test_tensor(LG_I32, lg_shape_of(1, n), NULL);
    for (int r = 0; r < n; r++) {
        lg_tensor_set(*x, 2 * r, r);
        lg_tensor_set(*x, 2 * r + 1, 10 * r);
        lg_tensor_set(*y, r, r);
    }
}

static lg_dataset_opts batches_of(int64_t b, bool shuffle)
{
    lg_dataset_opts o = lg_dataset_opts_default();
    o.batch_size = b;
    o.shuffle = shuffle;
    return o;
}

/* What a training loop does: every batch of the epoch. Checks that x and y
 * agree (x row = (r, 10 r) for y = r), fills order[] with the rows in the
 * order seen and returns how many. */
static int epoch_rows(lg_dataset *ds, int64_t epoch, int *order)
{
    ASSERT_OK(lg_dataset_epoch(ds, epoch));
    int seen = 0;
    for (int k = 0; k < lg_dataset_batch_count(ds); k++) {
        lg_tensor *bx, *by;
        ASSERT_OK(lg_dataset_batch(ds, k, &bx, &by));
        int64_t b = lg_tensor_shape(bx).dims[0];
        ck_assert_int_eq(lg_tensor_shape(by).dims[0], b);
        for (int64_t e = 0; e < b; e++) {
            double r = lg_tensor_get(by, e);
            ck_assert_double_eq(lg_tensor_get(bx, 2 * e), r);
            ck_assert_double_eq(lg_tensor_get(bx, 2 * e + 1), 10 * r);
            order[seen++] = (int)r;
        }
    }
    return seen;
}

START_TEST(test_dataset_in_order)
{
    lg_dataset_opts d = lg_dataset_opts_default();
    ck_assert_int_eq(d.batch_size, 32);
    ck_assert(d.shuffle && d.seed == 0 && !d.drop_last);
    lg_tensor *x, *y;
    rows_xy(5, &x, &y);
    lg_dataset *ds = NULL;
    ASSERT_OK(lg_dataset_new(x, y, batches_of(2, false), &ds));
    lg_tensor_set(x, 0, 99); /* the dataset copied x */
    lg_tensor_free(x);
    lg_tensor_free(y);
    ck_assert_int_eq(lg_dataset_size(ds), 5);
    ck_assert_int_eq(lg_dataset_batch_count(ds), 3);
    const int sizes[3] = {2, 2, 1};
    for (int k = 0; k < 3; k++) {
        lg_tensor *bx, *by;
        ASSERT_OK(lg_dataset_batch(ds, k, &bx, &by));
        ck_assert_int_eq(lg_tensor_dtype(bx), LG_F32);
        ck_assert_int_eq(lg_tensor_dtype(by), LG_I32);
        assert_shape(bx, lg_shape_of(2, sizes[k], 2));
        assert_shape(by, lg_shape_of(1, sizes[k]));
        for (int e = 0; e < sizes[k]; e++) {
            int r = 2 * k + e;
            ck_assert_double_eq(lg_tensor_get(bx, 2 * e), r);
            ck_assert_double_eq(lg_tensor_get(bx, 2 * e + 1), 10 * r);
            ck_assert_double_eq(lg_tensor_get(by, e), r);
        }
    }
    int order[5];
    ck_assert_int_eq(epoch_rows(ds, 3, order), 5); /* no shuffle: every epoch in order */
    for (int i = 0; i < 5; i++) ck_assert_int_eq(order[i], i);
    lg_dataset_free(ds);
}
END_TEST

START_TEST(test_dataset_drop_last_and_big_batch)
{
    lg_tensor *x, *y;
    rows_xy(5, &x, &y);
    lg_dataset_opts o = batches_of(2, false);
    o.drop_last = true;
    lg_dataset *ds = NULL;
    ASSERT_OK(lg_dataset_new(x, y, o, &ds));
    ck_assert_int_eq(lg_dataset_batch_count(ds), 2);
    int order[5];
    ck_assert_int_eq(epoch_rows(ds, 0, order), 4);
    lg_dataset_free(ds);
    /* a batch larger than the data: one batch of everything */
    ASSERT_OK(lg_dataset_new(x, y, batches_of(100, false), &ds));
    ck_assert_int_eq(lg_dataset_batch_count(ds), 1);
    lg_tensor *bx;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, NULL)); /* y not wanted */
    assert_shape(bx, lg_shape_of(2, 5, 2));
    lg_dataset_free(ds);
    /* an exact multiple has no smaller batch */
    ASSERT_OK(lg_dataset_new(x, y, batches_of(5, false), &ds));
    ck_assert_int_eq(lg_dataset_batch_count(ds), 1);
    lg_dataset_free(ds);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

static bool is_permutation(const int *order, int n)
{
    bool seen[128] = {false};
    for (int i = 0; i < n; i++) {
        if (order[i] < 0 || order[i] >= n || seen[order[i]]) return false;
        seen[order[i]] = true;
    }
    return true;
}

static bool same(const int *a, const int *b, int n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

START_TEST(test_dataset_shuffle)
{
    enum { N = 100 };
    lg_tensor *x, *y;
    rows_xy(N, &x, &y);
    lg_dataset_opts o = batches_of(7, true);
    o.seed = 42;
    lg_dataset *a = NULL, *b = NULL, *c = NULL;
    ASSERT_OK(lg_dataset_new(x, y, o, &a));
    ASSERT_OK(lg_dataset_new(x, y, o, &b));
    o.seed = 43;
    ASSERT_OK(lg_dataset_new(x, y, o, &c));
    ck_assert_int_eq(lg_dataset_batch_count(a), 15);
    int e0[N], e1[N], again[N], other[N], ident[N];
    for (int i = 0; i < N; i++) ident[i] = i;
    ck_assert_int_eq(epoch_rows(a, 0, e0), N);
    ck_assert_int_eq(epoch_rows(a, 1, e1), N);
    ck_assert(is_permutation(e0, N) && is_permutation(e1, N));
    ck_assert(!same(e0, ident, N));
    ck_assert(!same(e0, e1, N)); /* a new order each epoch */
    ck_assert_int_eq(epoch_rows(b, 1, again), N);
    ck_assert(same(e1, again, N)); /* same seed and epoch: same order, in any visiting order */
    ck_assert_int_eq(epoch_rows(a, 0, again), N);
    ck_assert(same(e0, again, N));
    ck_assert_int_eq(epoch_rows(c, 0, other), N);
    ck_assert(!same(e0, other, N)); /* another seed */
    /* a new dataset starts in epoch 0 */
    lg_dataset_free(b);
    o.seed = 42;
    ASSERT_OK(lg_dataset_new(x, y, o, &b));
    lg_tensor *by;
    lg_tensor *bx;
    ASSERT_OK(lg_dataset_batch(b, 0, &bx, &by));
    for (int e = 0; e < 7; e++) ck_assert_double_eq(lg_tensor_get(by, e), e0[e]);
    lg_dataset_free(a);
    lg_dataset_free(b);
    lg_dataset_free(c);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

/* Any dtypes and ranks; no y. */
START_TEST(test_dataset_dtypes_ranks_no_y)
{
    lg_tensor *x = lg_test_tensor(LG_F64, lg_shape_of(3, 3, 2, 2), NULL);
    for (int i = 0; i < 12; i++) lg_tensor_set(x, i, i + 0.5);
    lg_tensor *y = lg_test_tensor(LG_I32, lg_shape_of(2, 3, 2), (const int32_t[]){1, 2, 3, 4, 5, 6});
    lg_dataset *ds = NULL;
    ASSERT_OK(lg_dataset_new(x, y, batches_of(2, false), &ds));
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(ds, 1, &bx, &by));
    assert_shape(bx, lg_shape_of(3, 1, 2, 2));
    assert_shape(by, lg_shape_of(2, 1, 2));
    assert_values(bx, (const double[]){8.5, 9.5, 10.5, 11.5}, 4);
    assert_values(by, (const double[]){5, 6}, 2);
    lg_dataset_free(ds);
    ASSERT_OK(lg_dataset_new(y, NULL, batches_of(2, false), &ds));
    by = (lg_tensor *)1;
    ASSERT_OK(lg_dataset_batch(ds, 0, &bx, &by));
    ck_assert_ptr_null(by);
    assert_values(bx, (const double[]){1, 2, 3, 4}, 4);
    lg_dataset_free(ds);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

START_TEST(test_dataset_errors)
{
    lg_tensor *x, *y;
    rows_xy(5, &x, &y);
    lg_dataset *ds = (lg_dataset *)1;
    lg_dataset_opts o = batches_of(2, false);
    ASSERT_FAILS(lg_dataset_new(x, y, o, NULL), LG_ERR_INVALID_ARGUMENT, "lg_dataset_new: out is NULL");
    ASSERT_FAILS(lg_dataset_new(NULL, y, o, &ds), LG_ERR_INVALID_ARGUMENT, "lg_dataset_new: x is NULL");
    ck_assert_ptr_null(ds);
    lg_tensor *scalar = lg_test_tensor(LG_F32, lg_shape_of(0), NULL);
    lg_tensor *none = lg_test_tensor(LG_F32, lg_shape_of(2, 0, 2), NULL);
    lg_tensor *y4 = lg_test_tensor(LG_I32, lg_shape_of(1, 4), NULL);
    ASSERT_FAILS(lg_dataset_new(scalar, NULL, o, &ds), LG_ERR_SHAPE, "x has rank 0: needs [N, ...]");
    ASSERT_FAILS(lg_dataset_new(x, scalar, o, &ds), LG_ERR_SHAPE, "y has rank 0");
    ASSERT_FAILS(lg_dataset_new(none, NULL, o, &ds), LG_ERR_SHAPE, "x [0, 2] has no rows");
    ASSERT_FAILS(lg_dataset_new(x, y4, o, &ds), LG_ERR_SHAPE, "y [4] has 4 rows, x [5, 2] has 5");
    o.batch_size = 0;
    ASSERT_FAILS(lg_dataset_new(x, y, o, &ds), LG_ERR_INVALID_ARGUMENT, "batch_size 0: must be >= 1");
    o = batches_of(8, false);
    o.drop_last = true;
    ASSERT_FAILS(lg_dataset_new(x, y, o, &ds), LG_ERR_INVALID_ARGUMENT,
                 "drop_last with batch_size 8 leaves no batch: the dataset has 5 examples");
    /* 3e9 empty rows in batches of one: more batches than an int counts */
    lg_tensor *many = lg_test_tensor(LG_F32, (lg_shape){.rank = 2, .dims = {3000000000LL, 0}}, NULL);
    ASSERT_FAILS(lg_dataset_new(many, NULL, batches_of(1, false), &ds), LG_ERR_INVALID_ARGUMENT,
                 "3000000000 examples at batch_size 1 make more than 2147483647 batches");
    ck_assert_ptr_null(ds);
    ASSERT_OK(lg_dataset_new(x, y, batches_of(2, false), &ds));
    lg_tensor *bx = NULL, *by = NULL;
    ASSERT_FAILS(lg_dataset_batch(ds, 3, &bx, &by), LG_ERR_INVALID_ARGUMENT, "batch 3 outside [0, 3)");
    ASSERT_FAILS(lg_dataset_batch(ds, -1, &bx, &by), LG_ERR_INVALID_ARGUMENT, "batch -1 outside [0, 3)");
    ASSERT_FAILS(lg_dataset_batch(ds, 0, NULL, &by), LG_ERR_INVALID_ARGUMENT, "dataset or x is NULL");
    ASSERT_FAILS(lg_dataset_batch(NULL, 0, &bx, &by), LG_ERR_INVALID_ARGUMENT, "dataset or x is NULL");
    ASSERT_FAILS(lg_dataset_epoch(ds, -1), LG_ERR_INVALID_ARGUMENT, "epoch -1: must be >= 0");
    ASSERT_FAILS(lg_dataset_epoch(NULL, 0), LG_ERR_INVALID_ARGUMENT, "dataset is NULL");
    ck_assert_int_eq(lg_dataset_size(NULL), 0);
    ck_assert_int_eq(lg_dataset_batch_count(NULL), 0);
    lg_dataset_free(NULL);
    lg_dataset_free(ds);
    lg_tensor_free(many);
    lg_tensor_free(scalar);
    lg_tensor_free(none);
    lg_tensor_free(y4);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

/* The rows a dataset holds, in order (it must not shuffle). */
static int dataset_rows(lg_dataset *ds, int *rows) { return epoch_rows(ds, 0, rows); }

START_TEST(test_split)
{
    lg_split_opts d = lg_split_opts_default();
    ck_assert_double_eq(d.validation_fraction, 0.2);
    ck_assert_int_eq(d.side, LG_SPLIT_LAST);
    ck_assert(d.train.shuffle && !d.validation.shuffle);
    ck_assert_int_eq(d.train.batch_size, 32);
    lg_tensor *x, *y;
    rows_xy(10, &x, &y);
    lg_split_opts o = lg_split_opts_default();
    o.train.shuffle = false;
    lg_dataset *tr = NULL, *va = NULL;
    int rows[10];
    ASSERT_OK(lg_dataset_split(x, y, o, &tr, &va)); /* floor(10 * 0.8) = 8 train rows */
    ck_assert_int_eq(dataset_rows(tr, rows), 8);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(rows[i], i);
    ck_assert_int_eq(dataset_rows(va, rows), 2);
    ck_assert(rows[0] == 8 && rows[1] == 9);
    lg_dataset_free(tr);
    lg_dataset_free(va);
    o.side = LG_SPLIT_FIRST;
    ASSERT_OK(lg_dataset_split(x, y, o, &tr, &va));
    ck_assert_int_eq(dataset_rows(va, rows), 2);
    ck_assert(rows[0] == 0 && rows[1] == 1);
    ck_assert_int_eq(dataset_rows(tr, rows), 8);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(rows[i], 2 + i);
    lg_dataset_free(tr);
    lg_dataset_free(va);
    /* Keras's rounding: floor(10 * 0.75) = 7 train, 3 validation; no y */
    o = lg_split_opts_default();
    o.validation_fraction = 0.25;
    o.validation.batch_size = 2;
    ASSERT_OK(lg_dataset_split(x, NULL, o, &tr, &va));
    ck_assert_int_eq(lg_dataset_size(tr), 7);
    ck_assert_int_eq(lg_dataset_size(va), 3);
    ck_assert_int_eq(lg_dataset_batch_count(va), 2);
    lg_tensor *bx, *by;
    ASSERT_OK(lg_dataset_batch(va, 1, &bx, &by));
    ck_assert_ptr_null(by);
    assert_values(bx, (const double[]){9, 90}, 2);
    lg_dataset_free(tr);
    lg_dataset_free(va);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

START_TEST(test_split_errors)
{
    lg_tensor *x, *y;
    rows_xy(10, &x, &y);
    lg_dataset *tr = (lg_dataset *)1, *va = (lg_dataset *)1;
    lg_split_opts o = lg_split_opts_default();
    ASSERT_FAILS(lg_dataset_split(x, y, o, NULL, &va), LG_ERR_INVALID_ARGUMENT, "train or validation is NULL");
    ASSERT_FAILS(lg_dataset_split(x, y, o, &tr, NULL), LG_ERR_INVALID_ARGUMENT, "train or validation is NULL");
    ASSERT_FAILS(lg_dataset_split(NULL, y, o, &tr, &va), LG_ERR_INVALID_ARGUMENT, "lg_dataset_split: x is NULL");
    ck_assert(tr == NULL && va == NULL);
    lg_tensor *y4 = lg_test_tensor(LG_I32, lg_shape_of(1, 4), NULL);
    ASSERT_FAILS(lg_dataset_split(x, y4, o, &tr, &va), LG_ERR_SHAPE, "y [4] has 4 rows, x [10, 2] has 10");
    const double bad[] = {0, 1, -0.5, NAN};
    for (int i = 0; i < 4; i++) {
        o.validation_fraction = bad[i];
        ASSERT_FAILS(lg_dataset_split(x, y, o, &tr, &va), LG_ERR_INVALID_ARGUMENT, "must lie in (0, 1)");
    }
    o = lg_split_opts_default();
    o.side = (lg_split_side)2;
    ASSERT_FAILS(lg_dataset_split(x, y, o, &tr, &va), LG_ERR_INVALID_ARGUMENT, "side 2: not an lg_split_side");
    o = lg_split_opts_default();
    o.validation_fraction = 0.95; /* floor(0.5) = 0 train rows */
    ASSERT_FAILS(lg_dataset_split(x, y, o, &tr, &va), LG_ERR_INVALID_ARGUMENT,
                 "10 examples are too few to split with validation_fraction 0.95 (training would get 0)");
    o.validation_fraction = 0.01; /* floor(9.9) = 9: one validation row */
    ASSERT_OK(lg_dataset_split(x, y, o, &tr, &va));
    ck_assert_int_eq(lg_dataset_size(va), 1);
    lg_dataset_free(tr);
    lg_dataset_free(va);
    /* the validation part's options fail after the training part was made:
     * nothing is returned */
    o = lg_split_opts_default();
    o.validation.drop_last = true;
    o.validation.batch_size = 3;
    ASSERT_FAILS(lg_dataset_split(x, y, o, &tr, &va), LG_ERR_INVALID_ARGUMENT,
                 "drop_last with batch_size 3 leaves no batch: the dataset has 2 examples");
    ck_assert(tr == NULL && va == NULL);
    lg_tensor_free(y4);
    lg_tensor_free(x);
    lg_tensor_free(y);
}
END_TEST

static Suite *dataset_suite(void)
{
    Suite *s = suite_create("dataset");
    TCase *dataset = tcase_create("dataset");
    tcase_add_test(dataset, test_dataset_in_order);
    tcase_add_test(dataset, test_dataset_drop_last_and_big_batch);
    tcase_add_test(dataset, test_dataset_shuffle);
    tcase_add_test(dataset, test_dataset_dtypes_ranks_no_y);
    tcase_add_test(dataset, test_dataset_errors);
    tcase_add_test(dataset, test_split);
    tcase_add_test(dataset, test_split_errors);
    suite_add_tcase(s, dataset);
    return s;
}

int main(void) { return lg_check_run(dataset_suite()); }
