/*
 * test_fuse_elementwise.c — the fuse_elementwise pass and the fused
 * elementwise kernel: what gets fused and what does not (values read
 * twice or fetched are stored as more outputs, values read before the
 * group's end stay out, as do those of another shape or dtype; the
 * program's limits), and
 * that fused results are bit-identical to the ops run one by one: every
 * fusible op in f32 and f64, broadcasts of scalars, rows and columns, and
 * the loop bodies of the peephole cell and hand-written LSTM and GRU cells
 * (fuse_rnn off) with all their gradients.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../examples/cells/peephole.h"
#include "backends/backend.h"
#include "graph/internal.h"
#include "ops/fused_elementwise.h"
#include "test_util.h"

LG_TEST_GRAPH_FIXTURE

/* The device programs compile for: "cpu", or "cpuwin:0", the CPU backend
 * claiming window_access (backend.h), so that fuse_elementwise reads split
 * pieces as windows as it does on CUDA. */
static const char *device = "cpu";

static lg_backend cpuwin;

static lg_status cpuwin_open(int index, const lg_backend **out)
{
    if (index != 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "cpuwin:%d: only cpuwin:0", index);
    cpuwin = *lg_backend_cpu();
    cpuwin.name = "cpuwin:0", cpuwin.window_access = true;
    *out = &cpuwin;
    return LG_OK;
}

static lg_program *compile_off(const char *off, const lg_feed *f, int n_f, const lg_value *fetch, int n)
{
    lg_compile_opts o = lg_compile_opts_default();
    o.passes_off = off;
    o.device = device;
    lg_program *p = NULL;
    lg_status s = lg_program_compile_opts(g, f, n_f, fetch, n, o, &p);
    ck_assert_msg(s == LG_OK, "compile (off: %s): %s", off ? off : "none", lg_last_error());
    return p;
}

static lg_tensor **run(lg_program *p, const lg_feed *f, int n_f, int n)
{
    lg_tensor **out = calloc((size_t)n, sizeof *out);
    ck_assert_msg(lg_program_run(p, f, n_f, out) == LG_OK, "run: %s", lg_last_error());
    return out;
}

/* The fetches with fuse_elementwise on and off (besides `also_off`) are
 * the same bits (any NaN for a NaN). Returns the kernels with it on minus those with it off. */
static int check_same_bits(const char *also_off, const lg_feed *f, int n_f, const lg_value *fetch, int n)
{
    char off[128];
    snprintf(off, sizeof off, "%s%sfuse_elementwise", also_off ? also_off : "", also_off ? "," : "");
    lg_program *pon = compile_off(also_off, f, n_f, fetch, n), *poff = compile_off(off, f, n_f, fetch, n);
    lg_tensor **on = run(pon, f, n_f, n), **un = run(poff, f, n_f, n);
    for (int i = 0; i < n; i++) {
        ck_assert_uint_eq(lg_tensor_bytes(on[i]), lg_tensor_bytes(un[i]));
        size_t esz = lg_tensor_bytes(on[i]) / (size_t)lg_tensor_numel(on[i]);
        const unsigned char *a = lg_tensor_data(on[i]), *b = lg_tensor_data(un[i]);
        for (int64_t e = 0; e < lg_tensor_numel(on[i]); e++) {
            double va = lg_tensor_get(on[i], e), vb = lg_tensor_get(un[i], e);
            /* a NaN's sign and payload are whichever operand's the CPU
             * propagates, which vector code may swap */
            ck_assert_msg(isnan(va) ? isnan(vb) : !memcmp(a + (size_t)e * esz, b + (size_t)e * esz, esz),
                          "fetch %d [%lld]: %.17g fused, %.17g unfused", i, (long long)e, va, vb);
        }
        lg_tensor_free(on[i]), lg_tensor_free(un[i]);
    }
    free(on), free(un);
    int d = lg_program_kernel_count(pon) - lg_program_kernel_count(poff);
    lg_program_free(pon), lg_program_free(poff);
    return d;
}

static int kernels(const lg_feed *f, int n_f, const lg_value *fetch, int n)
{
    lg_program *p = compile_off(NULL, f, n_f, fetch, n);
    int k = lg_program_kernel_count(p);
    lg_program_free(p);
    return k;
}

static char *report(const lg_feed *f, int n_f, const lg_value *fetch, int n)
{
    lg_program *p = compile_off(NULL, f, n_f, fetch, n);
    char *r = lg_program_report(p);
    lg_program_free(p);
    ck_assert_ptr_nonnull(r);
    return r;
}

enum { B = 5, H = 300 }; /* a row longer than the kernel's 256-element chunk */


static lg_value c_scalar(lg_dtype dt, double v)
{
    lg_tensor *t = lg_test_tensor(dt, lg_shape_of(0), NULL);
    lg_tensor_set(t, 0, v);
    lg_value c = lg_constant(g, "c", t);
    lg_tensor_free(t);
    return c;
}

/* ---- bits ------------------------------------------------------------------ */

/* Every fusible op in one chain per dtype, with a [H] row, a [B, 1] column,
 * scalars and an i32 mask from outside, and a compare inside: one kernel,
 * the same bits as the ops one by one. */
START_TEST(test_every_op_same_bits)
{
    lg_dtype dt = _i % 2 ? LG_F64 : LG_F32;
    int B = _i < 2 ? 5 : 37, H = _i < 2 ? 300 : 16; /* rows longer than a chunk; many rows a chunk */
    lg_value x = lg_input(g, "x", dt, lg_shape_of(2, B, H)), y = lg_input(g, "y", dt, lg_shape_of(2, B, H));
    lg_value row = lg_input(g, "row", dt, lg_shape_of(1, H)), col = lg_input(g, "col", dt, lg_shape_of(2, B, 1));
    lg_value m = lg_input(g, "m", LG_I32, lg_shape_of(2, B, H));
    lg_value v = lg_add(x, row);                            /* (-3, 3) */
    lg_value pos = lg_add(lg_exp(v), c_scalar(dt, 0.5));    /* > 0 */
    lg_value a = lg_mul(lg_sigmoid(v), lg_tanh(y));
    a = lg_sub(a, lg_div(lg_log(pos), lg_sqrt(pos)));
    a = lg_add(a, lg_mul(lg_square(col), lg_pow(pos, 1.5)));
    a = lg_add(a, lg_mul(row, col)); /* both gathered */
    a = lg_add(a, lg_abs(lg_neg(lg_hard_sigmoid(lg_scale(v, 2)))));
    a = lg_add(a, lg_relu(y));
    a = lg_add(a, lg_elu(y, 0.7));
    a = lg_add(a, lg_softplus(v));
    a = lg_add(a, lg_softsign(lg_clip(v, -1, 2)));
    a = lg_add(a, lg_stop_gradient(lg_where(lg_compare(x, y, LG_CMP_GT), x, y)));
    a = lg_where(m, a, lg_neg(a));
    lg_tensor *xt = lg_test_uniform(dt, lg_shape_of(2, B, H), 1, 1, -2, 2);
    lg_tensor *yt = lg_test_uniform(dt, lg_shape_of(2, B, H), 1, 2, -4, 4);
    lg_tensor *rt = lg_test_uniform(dt, lg_shape_of(1, H), 1, 3, -1, 1);
    lg_tensor *ct = lg_test_uniform(dt, lg_shape_of(2, B, 1), 1, 4, -1, 1);
    lg_tensor *mt = lg_test_tensor(LG_I32, lg_shape_of(2, B, H), NULL);
    for (int64_t e = 0; e < B * H; e++) lg_tensor_set(mt, e, e % 3 ? 1 : 0);
    lg_tensor_set(xt, 3, NAN), lg_tensor_set(xt, 7, INFINITY), lg_tensor_set(xt, 8, -INFINITY);
    lg_tensor_set(yt, 11, -INFINITY), lg_tensor_set(yt, 13, NAN), lg_tensor_set(yt, 17, INFINITY);
    lg_feed f[5] = {{x, xt}, {y, yt}, {row, rt}, {col, ct}, {m, mt}};
    /* square(col) is [B, 1]: a kernel of its own; the rest is one group,
     * which stores x + row, exp(.) + 0.5 and a (each read several times)
     * once and reads them again */
    ck_assert_int_eq(kernels(f, 5, &a, 1), 2);
    ck_assert_int_lt(check_same_bits(NULL, f, 5, &a, 1), -27);
    char *r = report(f, 5, &a, 1);
    ck_assert_msg(strstr(r, "fuse_elementwise: "), "%s", r);
    free(r);
    lg_tensor_free(xt), lg_tensor_free(yt), lg_tensor_free(rt), lg_tensor_free(ct), lg_tensor_free(mt);
}
END_TEST

/* Broadcasts along any dims of [3, 4, 20]: [3, 1, 20], [4, 1], [20], a
 * scalar, i32 [3, 4, 1] as where's mask. */
START_TEST(test_broadcasts_same_bits)
{
    lg_dtype dt = _i ? LG_F64 : LG_F32;
    lg_shape sh[5] = {lg_shape_of(3, 3, 4, 20), lg_shape_of(3, 3, 1, 20), lg_shape_of(2, 4, 1), lg_shape_of(1, 20),
                      lg_shape_of(3, 3, 4, 1)};
    lg_value in[5];
    lg_tensor *t[5];
    lg_feed f[5];
    for (int k = 0; k < 5; k++) {
        char name[8];
        snprintf(name, sizeof name, "in%d", k);
        in[k] = lg_input(g, name, k == 4 ? LG_I32 : dt, sh[k]);
        t[k] = lg_test_uniform(k == 4 ? LG_F64 : dt, sh[k], 4, (uint64_t)k, -2, 2);
        if (k == 4) {
            lg_tensor *m = lg_test_tensor(LG_I32, sh[k], NULL);
            for (int64_t e = 0; e < lg_tensor_numel(m); e++) lg_tensor_set(m, e, lg_tensor_get(t[k], e) > 0);
            lg_tensor_free(t[k]);
            t[k] = m;
        }
        f[k] = (lg_feed){in[k], t[k]};
    }
    lg_value y = lg_tanh(lg_add(lg_mul(in[0], in[1]), in[2]));
    y = lg_where(in[4], lg_sub(y, in[3]), lg_scale(lg_sigmoid(y), 3));
    ck_assert_int_eq(kernels(f, 5, &y, 1), 1); /* y is read twice: stored, read again */
    ck_assert_int_eq(check_same_bits(NULL, f, 5, &y, 1), 1 - 7);
    for (int k = 0; k < 5; k++) lg_tensor_free(t[k]);
}
END_TEST

/* Special values and a ragged length (not a multiple of the chunk or of
 * the vector width): NaN, infinities, zeros, large and tiny numbers pass
 * through the fused exp, sigmoid and tanh with the unfused bits. */
START_TEST(test_special_values_same_bits)
{
    lg_dtype dt = _i ? LG_F64 : LG_F32;
    enum { N = 613 };
    lg_value x = lg_input(g, "x", dt, lg_shape_of(1, N));
    lg_value y = lg_add(lg_mul(lg_sigmoid(x), lg_tanh(x)), lg_exp(lg_neg(x)));
    lg_tensor *xt = lg_test_uniform(dt, lg_shape_of(1, N), 1, 5, -100, 100);
    const double special[] = {NAN,   INFINITY, -INFINITY, 0.0, -0.0, 88.7, -103.9,
                              1e-30, -1e-30,   700,       -745, 0.624, -0.626};
    for (size_t k = 0; k < sizeof special / sizeof special[0]; k++) lg_tensor_set(xt, (int64_t)(k * 37), special[k]);
    lg_feed f[1] = {{x, xt}};
    ck_assert_int_eq(check_same_bits(NULL, f, 1, &y, 1), -5); /* 6 ops, 1 kernel */
    lg_tensor_free(xt);
}
END_TEST

/* ---- what is fused --------------------------------------------------------- */

static lg_tensor *x_tensor(lg_dtype dt, lg_shape s) { return lg_test_uniform(dt, s, 2, 9, -1, 1); }

/* A value read twice inside a group is stored once and read again:
 * tanh(s) + s is one kernel with s as its second output. */
START_TEST(test_two_readers_stored)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, B, H));
    lg_value s = lg_sigmoid(x), y = lg_add(lg_tanh(s), s);
    lg_tensor *xt = x_tensor(LG_F32, lg_shape_of(2, B, H));
    lg_feed f[1] = {{x, xt}};
    ck_assert_int_eq(kernels(f, 1, &y, 1), 1);
    ck_assert_int_eq(check_same_bits(NULL, f, 1, &y, 1), -2);
    char *r = report(f, 1, &y, 1);
    ck_assert_msg(strstr(r, "add(tanh(out1=sigmoid(in0)), out1)"), "%s", r);
    free(r);
    lg_tensor_free(xt);
}
END_TEST

/* A fetched member is one more output: fetching sigmoid(x) and tanh of it
 * (in either order, and tanh twice) is one kernel. */
START_TEST(test_fetched_stored)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, B, H));
    lg_value fetch[3];
    fetch[0] = lg_sigmoid(x);
    fetch[1] = lg_tanh(fetch[0]);
    fetch[2] = fetch[1];
    lg_tensor *xt = x_tensor(LG_F64, lg_shape_of(2, B, H));
    lg_feed f[1] = {{x, xt}};
    ck_assert_int_eq(kernels(f, 1, fetch, 3), 1);
    ck_assert_int_eq(check_same_bits(NULL, f, 1, fetch, 3), -1);
    lg_value swapped[2] = {fetch[1], fetch[0]};
    ck_assert_int_eq(check_same_bits(NULL, f, 1, swapped, 2), -1);
    lg_tensor_free(xt);
}
END_TEST

/* A member read outside the group before the root would have to be
 * computed before the fused node: s = sigmoid(x) feeds a product that the
 * root reads, so s stays out (three kernels: s, the product, and the
 * fused tanh(s) + s W), with the same bits; and a member read before the
 * root by an op that the root does not read drops out as well. */
START_TEST(test_read_before_root_stays_out)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, B, 8)), w = lg_input(g, "w", LG_F32, lg_shape_of(2, 8, 8));
    lg_value s = lg_sigmoid(x), y = lg_add(lg_tanh(s), lg_matmul(s, w, false, false));
    lg_tensor *xt = x_tensor(LG_F32, lg_shape_of(2, B, 8)), *wt = x_tensor(LG_F32, lg_shape_of(2, 8, 8));
    lg_feed f[2] = {{x, xt}, {w, wt}};
    ck_assert_int_eq(kernels(f, 2, &y, 1), 3);
    ck_assert_int_eq(check_same_bits(NULL, f, 2, &y, 1), -1);
    lg_value e = lg_exp(x), fetch[2] = {lg_sum(e, NULL, 0, false), lg_add(lg_neg(e), x)};
    /* exp, sum, fused add(neg(exp), x): exp is read by the sum, which comes before the root */
    ck_assert_int_eq(kernels(f, 2, fetch, 2), 3);
    ck_assert_int_eq(check_same_bits(NULL, f, 2, fetch, 2), -1);
    lg_tensor_free(xt), lg_tensor_free(wt);
}
END_TEST

/* Ops of another shape are operands, not members: sigmoid(b) [H] feeds
 * the fused tanh(x + .) [B, H]; a cast ends a group (another dtype), and
 * i32 ops are not fused. */
START_TEST(test_shape_and_dtype_boundaries)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, B, H)), b = lg_input(g, "b", LG_F32, lg_shape_of(1, H));
    lg_value i = lg_input(g, "i", LG_I32, lg_shape_of(2, B, H));
    lg_value fetch[3];
    fetch[0] = lg_tanh(lg_add(x, lg_sigmoid(b)));
    fetch[1] = lg_exp(lg_cast(lg_tanh(lg_cast(x, LG_F64)), LG_F32));
    fetch[2] = lg_neg(lg_abs(i));
    lg_tensor *xt = x_tensor(LG_F32, lg_shape_of(2, B, H)), *bt = x_tensor(LG_F32, lg_shape_of(1, H));
    lg_tensor *it = lg_test_tensor(LG_I32, lg_shape_of(2, B, H), NULL);
    for (int64_t e = 0; e < B * H; e++) lg_tensor_set(it, e, (double)(e % 7) - 3);
    lg_feed f[3] = {{x, xt}, {b, bt}, {i, it}};
    /* sigmoid, fused(add, tanh); cast, tanh, cast, exp; abs, neg */
    ck_assert_int_eq(kernels(f, 3, fetch, 3), 2 + 4 + 2);
    ck_assert_int_eq(check_same_bits(NULL, f, 3, fetch, 3), -1);
    lg_tensor_free(xt), lg_tensor_free(bt), lg_tensor_free(it);
}
END_TEST

/* The program's limits split a group: a sum of 30 inputs (more than 24
 * inputs) is two kernels; a right-nested product 12 deep (more than 8
 * stack values) is two or more; 100 tanh in a row (more than 64 ops) are
 * two; all equal the ops one by one. */
START_TEST(test_limits_split)
{
    enum { K = 30, D = 12 };
    lg_value xs[K], fetch[3];
    lg_tensor *ts[K];
    lg_feed f[K];
    for (int k = 0; k < K; k++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", k);
        xs[k] = lg_input(g, name, LG_F64, lg_shape_of(2, B, 7));
        ts[k] = lg_test_uniform(LG_F64, lg_shape_of(2, B, 7), 3, (uint64_t)k, -1, 1);
        f[k] = (lg_feed){xs[k], ts[k]};
    }
    fetch[0] = xs[0];
    for (int k = 1; k < K; k++) fetch[0] = lg_add(fetch[0], xs[k]);
    fetch[1] = lg_tanh(xs[D]);
    for (int k = D - 1; k >= 0; k--) fetch[1] = lg_mul(xs[k], lg_tanh(fetch[1]));
    ck_assert_int_eq(kernels(f, K, &fetch[0], 1), 2);
    int deep = kernels(f, K, &fetch[1], 1);
    ck_assert_int_ge(deep, 2);
    ck_assert_int_le(deep, 5);
    ck_assert_int_eq(check_same_bits(NULL, f, K, fetch, 2), 2 + deep - (K - 1) - (2 * D + 1));
    fetch[2] = xs[0];
    for (int k = 0; k < 100; k++) fetch[2] = lg_tanh(fetch[2]);
    ck_assert_int_eq(kernels(f, K, &fetch[2], 1), 2);
    ck_assert_int_eq(check_same_bits(NULL, f, K, &fetch[2], 1), 2 - 100);
    for (int k = 0; k < K; k++) lg_tensor_free(ts[k]);
}
END_TEST

/* The fused kernel writes over an input of its shape that dies there (the
 * executor's in-place rule): tanh(a) + sigmoid(a) of a = x W needs a's
 * buffer only, and reads each chunk of a before writing it. */
START_TEST(test_in_place)
{
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, B, 8)), w = lg_input(g, "w", LG_F32, lg_shape_of(2, 8, H));
    lg_value a = lg_matmul(x, w, false, false), y = lg_add(lg_tanh(a), lg_sigmoid(a));
    lg_tensor *xt = x_tensor(LG_F32, lg_shape_of(2, B, 8)), *wt = x_tensor(LG_F32, lg_shape_of(2, 8, H));
    lg_feed f[2] = {{x, xt}, {w, wt}};
    lg_program *p = compile_off(NULL, f, 2, &y, 1);
    ck_assert_int_eq(lg_program_kernel_count(p), 2);
    size_t one = (B * H * sizeof(float) + 63) / 64 * 64;
    ck_assert_uint_eq(lg_program_peak_bytes(p), one);
    lg_program_free(p);
    ck_assert_int_eq(check_same_bits("memory_plan", f, 2, &y, 1), -2);
    ck_assert_int_eq(check_same_bits(NULL, f, 2, &y, 1), -2);
    lg_tensor_free(xt), lg_tensor_free(wt);
}
END_TEST

/* ---- windows ------------------------------------------------------------- */

static void window_setup(void)
{
    static bool registered;
    if (!registered) ck_assert_int_eq(lg_backend_register("cpuwin", cpuwin_open), LG_OK);
    registered = true;
    device = "cpuwin:0";
}

static void window_teardown(void) { device = "cpu"; }

/* An LSTM's gate math on the pieces of z = a + bias split along the last
 * axis, on a backend with window_access: the pieces are read in place as
 * windows of a and the bias (the sum and the split run in no kernel of
 * their own), one kernel in all, with the unfused bits; rows longer than a
 * chunk, and many rows a chunk. On the CPU itself the split stays. */
START_TEST(test_split_windows_same_bits)
{
    lg_dtype dt = _i % 2 ? LG_F64 : LG_F32;
    int B = _i < 2 ? 5 : 37, H = _i < 2 ? 300 : 16;
    lg_value a = lg_input(g, "a", dt, lg_shape_of(2, B, 4 * H)), bias = lg_input(g, "bias", dt, lg_shape_of(1, 4 * H));
    lg_value c = lg_input(g, "c", dt, lg_shape_of(2, B, H)), z[4];
    lg_split(lg_add(a, bias), -1, NULL, 4, z);
    lg_value c2 = lg_add(lg_mul(lg_sigmoid(z[1]), c), lg_mul(lg_sigmoid(z[0]), lg_tanh(z[2])));
    lg_value fetch[2] = {lg_mul(lg_sigmoid(z[3]), lg_tanh(c2)), c2};
    lg_tensor *at = lg_test_uniform(dt, lg_shape_of(2, B, 4 * H), 1, 1, -3, 3);
    lg_tensor *bt = lg_test_uniform(dt, lg_shape_of(1, 4 * H), 1, 2, -1, 1);
    lg_tensor *ct = lg_test_uniform(dt, lg_shape_of(2, B, H), 1, 3, -2, 2);
    lg_feed f[3] = {{a, at}, {bias, bt}, {c, ct}};
    ck_assert_int_eq(kernels(f, 3, fetch, 2), 1);
    ck_assert_int_eq(check_same_bits(NULL, f, 3, fetch, 2), 1 - 2 - 9); /* add, split and 9 gate ops */
    char *r = report(f, 3, fetch, 2);
    ck_assert_msg(strstr(r, "[..., 32:]") || strstr(r, "[..., 600:]"), "%s", r);
    free(r);
    device = "cpu";
    ck_assert_int_eq(kernels(f, 3, fetch, 2), 3); /* add, split, the gates */
    lg_tensor_free(at), lg_tensor_free(bt), lg_tensor_free(ct);
}
END_TEST

/* A split whose piece is fetched, or read by a product, keeps its kernel:
 * its pieces are read as they are, with the same bits. */
START_TEST(test_split_kept)
{
    lg_value a = lg_input(g, "a", LG_F64, lg_shape_of(2, B, 2 * H)), w = lg_input(g, "w", LG_F64, lg_shape_of(2, H, 3));
    lg_value z[2], fetch[3];
    lg_split(lg_neg(a), -1, NULL, 2, z);
    fetch[0] = lg_add(lg_tanh(z[0]), z[1]);
    fetch[1] = z[1]; /* fetched */
    lg_tensor *at = x_tensor(LG_F64, lg_shape_of(2, B, 2 * H)), *wt = x_tensor(LG_F64, lg_shape_of(2, H, 3));
    lg_feed f[2] = {{a, at}, {w, wt}};
    ck_assert_int_eq(kernels(f, 2, fetch, 2), 3); /* neg, split, fused add(tanh) */
    ck_assert_int_eq(check_same_bits(NULL, f, 2, fetch, 2), -1);
    fetch[1] = lg_matmul(z[1], w, false, false); /* a piece read by a product */
    ck_assert_int_eq(kernels(f, 2, fetch, 2), 4);
    ck_assert_int_eq(check_same_bits(NULL, f, 2, fetch, 2), -1);
    lg_tensor_free(at), lg_tensor_free(wt);
}
END_TEST

/* A concatenation along the last axis of elementwise pieces, on a backend
 * with window_access: one kernel puts each piece into its window of the
 * result (a piece also fetched is one more output), with the unfused bits;
 * on the CPU the pieces and the concatenation stay kernels. */
START_TEST(test_concat_puts_same_bits)
{
    lg_dtype dt = _i % 2 ? LG_F64 : LG_F32;
    int B = _i < 2 ? 5 : 37, H = _i < 2 ? 300 : 16;
    lg_value a = lg_input(g, "a", dt, lg_shape_of(2, B, H)), b = lg_input(g, "b", dt, lg_shape_of(2, B, H));
    lg_value t = lg_tanh(b);
    lg_value pieces[4] = {lg_sigmoid(a), lg_mul(t, a), lg_add(a, b), lg_neg(t)};
    lg_value fetch[2] = {lg_concat(pieces, 4, -1), pieces[2]};
    lg_tensor *at = lg_test_uniform(dt, lg_shape_of(2, B, H), 1, 1, -3, 3);
    lg_tensor *bt = lg_test_uniform(dt, lg_shape_of(2, B, H), 1, 2, -3, 3);
    lg_feed f[2] = {{a, at}, {b, bt}};
    ck_assert_int_eq(kernels(f, 2, fetch, 2), 1);
    ck_assert_int_eq(check_same_bits(NULL, f, 2, fetch, 2), 1 - 6);
    char buf[64];
    snprintf(buf, sizeof buf, "out0[..., %d:]=neg(", 3 * H);
    char *r = report(f, 2, fetch, 2);
    ck_assert_msg(strstr(r, buf), "%s", r);
    free(r);
    device = "cpu";
    ck_assert_int_eq(kernels(f, 2, fetch, 2), 5); /* tanh(b) with neg, stored for the mul */
    lg_tensor_free(at), lg_tensor_free(bt);
}
END_TEST

/* The peephole cell's loops on a backend with window_access: the forward
 * step is its recurrent product and one kernel, the gradient step puts
 * its gates' gradients into dG; the same bits as unfused. */
START_TEST(test_peephole_windows)
{
    lg_dtype dt = _i ? LG_F64 : LG_F32;
    enum { PB = 4, PT = 6, PF = 3, PU = 5 };
    lg_value x = lg_input(g, "x", dt, lg_shape_of(3, PB, PT, PF));
    peephole cell = peephole_new(g, "peephole", PF, PU, dt, 11);
    lg_tensor *z = lg_test_tensor(dt, lg_shape_of(2, PB, PU), NULL);
    lg_value zeros = lg_constant(g, "zeros", z), hs;
    lg_tensor_free(z);
    ck_assert_int_eq(peephole_sequence(g, &cell, x, zeros, zeros, &hs, NULL, NULL), LG_OK);
    lg_value fetch[16], wrt[16];
    fetch[0] = lg_sum(lg_mul(hs, hs), NULL, 0, false);
    int n_p = lg_graph_param_count(g);
    for (int i = 0; i < n_p; i++) wrt[i] = lg_graph_param(g, i);
    ck_assert_int_eq(lg_grad(g, fetch[0], wrt, n_p, fetch + 1), LG_OK);
    lg_tensor *xt = lg_test_uniform(dt, lg_shape_of(3, PB, PT, PF), 1, 8, -1, 1);
    lg_feed f[1] = {{x, xt}};
    lg_program *p = compile_off(NULL, f, 1, fetch, n_p + 1);
    int fwd = -1, grad = -1;
    for (int i = 0; i < lg_program_loop_count(p); i++) {
        lg_loop_report r;
        ck_assert_int_eq(lg_program_loop_report(p, i, &r), LG_OK);
        *(r.gradient ? &grad : &fwd) = r.body_kernels;
    }
    lg_program_free(p);
    ck_assert_int_eq(fwd, 2);
    ck_assert_int_le(grad, 14); /* 15 on the CPU; dG's pieces that the peephole weights' products read
                                   first stay their kernels' outputs, and the concatenation copies them */
    check_same_bits(NULL, f, 1, fetch, n_p + 1);
    lg_tensor_free(xt);
}
END_TEST

/* ---- the program's validation ---------------------------------------------- */

/* A fused node over x [2, 8] (twice; [2, 1] where narrow) with program
 * code and attrs.axis axis; whether it builds, the error (if any) in err. */
static bool build_program_over(const int64_t (*code)[LG_FEW_WIDTH], int n, int axis, bool narrow, char *err,
                               size_t size)
{
    lg_graph *h = lg_graph_new();
    lg_value x = lg_input(h, "x", LG_F32, lg_shape_of(2, 2, narrow ? 1 : 8)), ins[2] = {x, x};
    lg_attrs a = {.ints = (int64_t *)code, .n_ints = n * LG_FEW_WIDTH, .dtype = LG_F32, .axis = axis};
    int32_t id = lg_node_build(h, LG_OP_FUSED_ELEMENTWISE, ins, 2, &a, "fused");
    snprintf(err, size, "%s", lg_graph_error(h) ? lg_graph_error(h) : "");
    lg_graph_free(h);
    return id >= 0;
}

static bool build_program(const int64_t (*code)[LG_FEW_WIDTH], int n, int axis, char *err, size_t size)
{
    return build_program_over(code, n, axis, false, err, size);
}

/* Programs the pass never writes are refused with what is wrong: a store
 * not right after an op, stores out of order, a reload before its store,
 * an input's loads at two starts, a window past the last dim or without
 * the output's width, a put off the width's columns or twice at one, puts
 * leaving a column out or a value behind, a width no input has, more
 * outputs than the limit; and the good ones build. */
START_TEST(test_bad_programs)
{
    enum { IN = LG_OP_INPUT, ST = LG_FEW_STORE, RE = LG_FEW_RELOAD, PUT = LG_FEW_PUT, TANH = LG_OP_TANH, ADD = LG_OP_ADD };
    char err[512];
    const int64_t good[][LG_FEW_WIDTH] = {{IN, 0, 0, 0}, {TANH}, {ST, 1}, {RE, 1}, {ADD}};
    ck_assert_msg(build_program(good, 5, 0, err, sizeof err), "%s", err);
    const int64_t window[][LG_FEW_WIDTH] = {{IN, 0, 4, 0}, {IN, 1, 0, 0}, {ADD}};
    ck_assert_msg(build_program(window, 3, 4, err, sizeof err), "%s", err);
    const int64_t puts[][LG_FEW_WIDTH] = {{IN, 0, 0, 0}, {TANH}, {PUT, 4}, {IN, 1, 0, 0}, {PUT, 0}};
    ck_assert_msg(build_program(puts, 5, 4, err, sizeof err), "%s", err);
    const struct {
        const int64_t (*code)[LG_FEW_WIDTH];
        int n, axis;
        const char *why;
    } bad[] = {
        {(const int64_t[][LG_FEW_WIDTH]){{IN, 0, 0, 0}, {ST, 1}, {TANH}}, 3, 0, "a store must follow an op"},
        {(const int64_t[][LG_FEW_WIDTH]){{IN, 0, 0, 0}, {TANH}, {ST, 2}, {TANH}}, 4, 0, "a store must follow an op"},
        {(const int64_t[][LG_FEW_WIDTH]){{IN, 0, 0, 0}, {RE, 1}, {ADD}}, 3, 0, "load"},
        {(const int64_t[][LG_FEW_WIDTH]){{IN, 0, 0, 0}, {IN, 0, 4, 0}, {ADD}}, 3, 4, "different columns"},
        {(const int64_t[][LG_FEW_WIDTH]){{IN, 0, 6, 0}, {TANH}}, 2, 4, "past an input's last dim"},
        {(const int64_t[][LG_FEW_WIDTH]){{IN, 0, 4, 0}, {TANH}}, 2, 0, "a window"},
        {(const int64_t[][LG_FEW_WIDTH]){{IN, 0, 0, 0}, {PUT, 2}}, 2, 4, "a put"},
        {(const int64_t[][LG_FEW_WIDTH]){{IN, 0, 0, 0}, {PUT, 4}}, 2, 4, "leave columns out"},
        {(const int64_t[][LG_FEW_WIDTH]){{IN, 0, 0, 0}, {PUT, 0}, {IN, 1, 0, 0}, {PUT, 0}}, 4, 4, "a put"},
        {(const int64_t[][LG_FEW_WIDTH]){{IN, 0, 0, 0}, {IN, 1, 0, 0}, {PUT, 0}}, 3, 4, "a put and none"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_msg(!build_program(bad[k].code, bad[k].n, bad[k].axis, err, sizeof err), "program %zu built", k);
        ck_assert_msg(strstr(err, bad[k].why), "program %zu: %s", k, err);
    }
    /* a width no input has: every input's last dim is 1 */
    const int64_t narrow[][LG_FEW_WIDTH] = {{IN, 0, 0, 0}, {TANH}};
    ck_assert(!build_program_over(narrow, 2, 4, true, err, sizeof err));
    ck_assert_msg(strstr(err, "the window's width"), "%s", err);
    /* more outputs than LG_FEW_MAX_OUTPUTS: a store after each of 8 tanh */
    int64_t many[1 + 2 * LG_FEW_MAX_OUTPUTS + 1][LG_FEW_WIDTH] = {{IN, 0, 0, 0}};
    for (int k = 0; k < LG_FEW_MAX_OUTPUTS; k++) {
        many[1 + 2 * k][0] = TANH;
        many[2 + 2 * k][0] = ST, many[2 + 2 * k][1] = k + 1;
    }
    many[1 + 2 * LG_FEW_MAX_OUTPUTS][0] = TANH;
    ck_assert(!build_program((const int64_t(*)[LG_FEW_WIDTH])many, 2 + 2 * LG_FEW_MAX_OUTPUTS, 0, err, sizeof err));
    ck_assert_msg(strstr(err, "bad fused program"), "%s", err);
    many[2 * LG_FEW_MAX_OUTPUTS - 1][0] = TANH, many[2 * LG_FEW_MAX_OUTPUTS][0] = TANH; /* 7 stores: builds */
    ck_assert_msg(build_program((const int64_t(*)[LG_FEW_WIDTH])many, 2 + 2 * LG_FEW_MAX_OUTPUTS, 0, err, sizeof err),
                  "%s", err);
}
END_TEST

/* ---- loop bodies ----------------------------------------------------------- */

enum { LB = 4, LT = 6, LF = 3, LU = 5 };

/* loss = sum(y * r) for a fixed r; fetches: loss, then the gradients of
 * every parameter and of x. */
static int loss_and_grads(lg_value y, lg_value x, lg_value *fetch)
{
    lg_tensor *r = lg_test_uniform(lg_value_dtype(y), lg_value_shape(y), 7, 3, -1, 1);
    lg_value w = lg_constant(g, "loss_weights", r);
    lg_tensor_free(r);
    fetch[0] = lg_sum(lg_mul(y, w), NULL, 0, false);
    int n_p = lg_graph_param_count(g);
    lg_value wrt[32];
    ck_assert_int_lt(n_p, 31);
    for (int i = 0; i < n_p; i++) wrt[i] = lg_graph_param(g, i);
    wrt[n_p] = x;
    ck_assert_int_eq(lg_grad(g, fetch[0], wrt, n_p + 1, fetch + 1), LG_OK);
    return n_p + 2;
}

static lg_value zeros_state(lg_dtype dt)
{
    lg_tensor *z = lg_test_tensor(dt, lg_shape_of(2, LB, LU), NULL);
    lg_value v = lg_constant(g, "zeros", z);
    lg_tensor_free(z);
    return v;
}

static lg_value param(const char *name, lg_dtype dt, lg_shape s, uint64_t key)
{
    lg_value p = lg_param(g, name, dt, s);
    lg_init_uniform(lg_param_tensor(p), -0.5, 0.5, 31, key);
    return p;
}

/* The forward and gradient loops' fused kernels, from the report. */
static void loop_fused(const lg_feed *f, int n_f, const lg_value *fetch, int n, int *fwd_ops, int *grad_ops)
{
    lg_program *p = compile_off("fuse_rnn", f, n_f, fetch, n);
    *fwd_ops = *grad_ops = 0;
    for (int i = 0; i < lg_program_loop_count(p); i++) {
        lg_loop_report r;
        ck_assert_int_eq(lg_program_loop_report(p, i, &r), LG_OK);
        ck_assert_int_le(r.fused_kernels, r.fused_ops / 2);
        *(r.gradient ? grad_ops : fwd_ops) += r.fused_ops;
    }
    char *rep = lg_program_report(p);
    ck_assert_msg(strstr(rep, "elementwise ops fused into"), "%s", rep);
    free(rep);
    lg_program_free(p);
}

/* The peephole LSTM of examples/cells, f32 and f64: the loop and its
 * gradient loop fuse their gate math, and the loss and every gradient
 * keep their bits. */
START_TEST(test_peephole_same_bits)
{
    lg_dtype dt = _i ? LG_F64 : LG_F32;
    lg_value x = lg_input(g, "x", dt, lg_shape_of(3, LB, LT, LF));
    peephole cell = peephole_new(g, "peephole", LF, LU, dt, 11);
    lg_value hs;
    ck_assert_int_eq(peephole_sequence(g, &cell, x, zeros_state(dt), zeros_state(dt), &hs, NULL, NULL), LG_OK);
    lg_value fetch[16];
    int n = loss_and_grads(hs, x, fetch);
    lg_tensor *xt = lg_test_uniform(dt, lg_shape_of(3, LB, LT, LF), 1, 8, -1, 1);
    lg_feed f[1] = {{x, xt}};
    int fwd, grad;
    loop_fused(f, 1, fetch, n, &fwd, &grad);
    ck_assert_int_ge(fwd, 10); /* of the 14 elementwise ops a step */
    ck_assert_int_ge(grad, 20);
    check_same_bits("fuse_rnn", f, 1, fetch, n);
    check_same_bits("fuse_rnn", f, 1, fetch, 1); /* forward only */
    lg_tensor_free(xt);
}
END_TEST

/* An LSTM and a GRU (reset after) written by hand, the GRU masked by
 * lengths ([B, 1] masks in the body), with fuse_rnn off: the same bits
 * in values and every gradient (f64). */
START_TEST(test_hand_cells_same_bits)
{
    bool gru = _i;
    lg_dtype dt = LG_F64;
    lg_value x = lg_input(g, "x", dt, lg_shape_of(3, LB, LT, LF)), len = lg_input(g, "len", LG_I32, lg_shape_of(1, LB));
    lg_loop_opts lo = lg_loop_opts_default();
    if (gru) lo.lengths = len;
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value xt_ = lg_loop_seq(l, x), h = lg_loop_state(l, zeros_state(dt)), c = lg_value_invalid();
    int gates = gru ? 3 : 4;
    lg_value W = lg_loop_invariant(l, param("W", dt, lg_shape_of(2, LF, gates * LU), 0));
    lg_value U = lg_loop_invariant(l, param("U", dt, lg_shape_of(2, LU, gates * LU), 1));
    lg_value b = lg_loop_invariant(l, param("b", dt, lg_shape_of(1, gates * LU), 2));
    lg_value xw = lg_add(lg_matmul(xt_, W, false, false), b), hu = lg_matmul(h, U, false, false), h2;
    if (gru) {
        lg_value xs[3], us[3];
        lg_split(xw, 1, NULL, 3, xs);
        lg_split(hu, 1, NULL, 3, us);
        lg_value z = lg_sigmoid(lg_add(xs[0], us[0])), r = lg_sigmoid(lg_add(xs[1], us[1]));
        lg_value hh = lg_tanh(lg_add(xs[2], lg_mul(r, us[2])));
        h2 = lg_add(lg_mul(z, h), lg_mul(lg_add_scalar(lg_neg(z), 1), hh));
    } else {
        c = lg_loop_state(l, zeros_state(dt));
        lg_value zs[4];
        lg_split(lg_add(xw, hu), 1, NULL, 4, zs);
        lg_value i = lg_sigmoid(zs[0]), fg = lg_sigmoid(zs[1]), gg = lg_tanh(zs[2]), o = lg_sigmoid(zs[3]);
        lg_value c2 = lg_add(lg_mul(fg, c), lg_mul(i, gg));
        h2 = lg_mul(o, lg_tanh(c2));
        lg_loop_next(l, c, c2);
    }
    lg_loop_next(l, h, h2);
    lg_loop_emit(l, h2);
    lg_value st[2], hs;
    ck_assert_msg(lg_loop_end(l, st, &hs) == LG_OK, "%s", lg_last_error());
    lg_value fetch[16];
    int n = loss_and_grads(hs, x, fetch);
    lg_tensor *xt = lg_test_uniform(dt, lg_shape_of(3, LB, LT, LF), 1, 10, -1, 1);
    int32_t lens[LB] = {LT, 2, 5, 1};
    lg_tensor *lt = lg_test_tensor(LG_I32, lg_shape_of(1, LB), lens);
    lg_feed f[2] = {{x, xt}, {len, lt}};
    int n_f = gru ? 2 : 1, fwd, grad;
    loop_fused(f, n_f, fetch, n, &fwd, &grad);
    /* the LSTM's gates are residuals its gradient reads: only c_t's
     * products fuse forward; the GRU fuses its gates' sums too */
    ck_assert_int_ge(fwd, gru ? 10 : 3);
    ck_assert_int_ge(grad, 15);
    check_same_bits("fuse_rnn", f, n_f, fetch, n);
    lg_tensor_free(xt), lg_tensor_free(lt);
}
END_TEST

static Suite *fuse_suite(void)
{
    Suite *s = suite_create("fuse_elementwise");
    TCase *tc = tcase_create("fuse_elementwise");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_every_op_same_bits, 0, 4);
    tcase_add_loop_test(tc, test_broadcasts_same_bits, 0, 2);
    tcase_add_loop_test(tc, test_special_values_same_bits, 0, 2);
    tcase_add_test(tc, test_two_readers_stored);
    tcase_add_test(tc, test_fetched_stored);
    tcase_add_test(tc, test_read_before_root_stays_out);
    tcase_add_test(tc, test_shape_and_dtype_boundaries);
    tcase_add_test(tc, test_limits_split);
    tcase_add_test(tc, test_in_place);
    tcase_add_test(tc, test_bad_programs);
    suite_add_tcase(s, tc);
    tc = tcase_create("windows");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_checked_fixture(tc, window_setup, window_teardown);
    tcase_add_loop_test(tc, test_split_windows_same_bits, 0, 4);
    tcase_add_test(tc, test_split_kept);
    tcase_add_loop_test(tc, test_concat_puts_same_bits, 0, 4);
    tcase_add_loop_test(tc, test_peephole_windows, 0, 2);
    tcase_add_loop_test(tc, test_peephole_same_bits, 0, 2);
    tcase_add_loop_test(tc, test_hand_cells_same_bits, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lg_check_run(fuse_suite()); }
