/*
 * cpu_rnn_impl.h — the fused RNN kernels for one element type, included by
 * cpu_rnn_f32.c and cpu_rnn_f64.c with T (the type), FN(name) (suffixes names),
 * DT (its lg_dtype), SIG_ROW and TANH_ROW (in-place activations of n
 * elements) defined. See cpu_rnn.c for the workspace layout.
 *
 * The gate math runs on 64-byte vectors of T (GCC vector extensions) in
 * FOR_V loops: j steps by a vector, m_ is how many lanes are real (fewer in
 * the tail), LD and ST move those lanes. Each lane computes exactly the
 * scalar expression, so results do not depend on the width.
 */

typedef T FN(vt) __attribute__((vector_size(64)));
#define VT FN(vt)
#define VL ((int64_t)(sizeof(VT) / sizeof(T)))

/* A tail of m < VL lanes moves through a stack copy of the vector in
 * power-of-two pieces: fixed-size copies, which compile to single moves
 * (a loop over the lanes compiles to rep movs, whose start-up cost
 * dominated the gate math of layers under 16 units). */
#define TAIL_COPY(dst, src, m)                                                                      \
    do {                                                                                            \
        int64_t k_ = 0;                                                                             \
        for (int64_t w_ = VL / 2; w_ >= 1; w_ /= 2)                                                \
            if ((m) - k_ >= w_) {                                                                   \
                switch (w_ * (int64_t)sizeof(T)) {                                                  \
                case 32: memcpy((dst) + k_, (src) + k_, 32); break;                                 \
                case 16: memcpy((dst) + k_, (src) + k_, 16); break;                                 \
                case 8: memcpy((dst) + k_, (src) + k_, 8); break;                                   \
                default: memcpy((dst) + k_, (src) + k_, 4); break;                                  \
                }                                                                                   \
                k_ += w_;                                                                           \
            }                                                                                       \
    } while (0)

static inline __attribute__((always_inline)) VT FN(ld)(const T *p, int64_t m)
{
    union {
        VT v;
        T a[VL];
    } u = {{0}};
    if (m == VL) memcpy(&u.v, p, sizeof u.v);
    else TAIL_COPY(u.a, p, m);
    return u.v;
}

static inline __attribute__((always_inline)) void FN(st)(T *p, VT v, int64_t m)
{
    union {
        VT v;
        T a[VL];
    } u = {v};
    if (m == VL) memcpy(p, &u.v, sizeof u.v);
    else TAIL_COPY(p, u.a, m);
}

#define LD(p) FN(ld)(p, m_)
#define ST(p, v) FN(st)(p, v, m_)
/* A call whose failure ends the function with its status. */
#define TRY(call)                                          \
    do {                                                   \
        lg_status try_st_ = (call);                        \
        if (try_st_) return try_st_;                       \
    } while (0)
/* A GEMM of the steps: one thread each when the kernel runs in parts
 * (rnn_gemm). */
#define GEMM(...) TRY(rnn_gemm(c, __VA_ARGS__))
#define FOR_V(n, ...)                                                                      \
    for (int64_t j = 0, m_; (m_ = (n) - j < VL ? (n) - j : VL) > 0; j += VL) {             \
        __VA_ARGS__                                                                        \
    }


/* The unit split's products (cols_*): U's columns packed once per call in
 * panels of NR = 2 VL columns, panel p holding columns [p NR, p NR + NR) as
 * [k][NR] (a last panel's lanes past the matrix's columns unwritten and
 * unread), so that no step packs U again; the forward's panels continue
 * with W's rows (x_t W joins h_{t-1} U in one product), the backward's step
 * products with W^T have panels too, and its dW of a step reads x and dG as
 * they lie. In C [m, n] (+)= A B each element sums its k products in order
 * from zero, then joins or replaces C, so its bits do not depend on m, n or
 * where its panel starts. */
#define NR (2 * VL)

/* C [m, n] = A B (store) or C += A B. A's element (r, k) at A[r ar + k ak]
 * for k < K, then at A2[r K2 + k - K] for K2 more (the forward's x_t after
 * h_{t-1}); panel j of B (columns [j NR, j NR + NR)) at B + j NR bj, its
 * row k at + k bk. */
typedef struct FN(mm) {
    int64_t m, n, K, K2;
    const T *A, *A2;
    int64_t ar, ak;
    const T *B;
    int64_t bj, bk;
    T *C;
    int64_t ldc;
    bool store;
} FN(mm);

/* acc[r] += the K products of row r of A (as in mm) with rows of the
 * panel pb, for R rows (R <= 8, a constant after inlining: the row loop
 * unrolls and the 2 R accumulators stay in registers); with nn the
 * constant NR whole vectors load, otherwise only nn columns. */
static inline __attribute__((always_inline)) void FN(pgemm_acc)(int R, VT acc[8][2], int64_t K, const T *A,
                                                                int64_t ar, int64_t ak, const T *pb, int64_t bk,
                                                                int64_t nn)
{
    for (int64_t k = 0; k < K; k++) {
        VT b0 = FN(ld)(pb + k * bk, nn < VL ? nn : VL), b1 = FN(ld)(pb + k * bk + VL, nn > VL ? nn - VL : 0);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            T x = A[r * ar + k * ak];
            acc[r][0] += x * b0, acc[r][1] += x * b1;
        }
    }
}

/* Rows [i0, i0 + R) of the panel at column j0 of p->C, nn of its columns
 * real: sums, then one vector add (or store) per row and half panel,
 * lane by lane the same sums. */
static inline __attribute__((always_inline)) void FN(pgemm_rows)(const FN(mm) *p, int R, int64_t i0, int64_t j0,
                                                                 int64_t nn)
{
    VT acc[8][2];
    const T *pb = p->B + j0 * p->bj;
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = (VT){0};
    FN(pgemm_acc)(R, acc, p->K, p->A + i0 * p->ar, p->ar, p->ak, pb, p->bk, nn);
    if (p->K2) FN(pgemm_acc)(R, acc, p->K2, p->A2 + i0 * p->K2, p->K2, 1, pb + p->K * p->bk, p->bk, nn);
    int64_t m0 = nn < VL ? nn : VL, m1 = nn > VL ? nn - VL : 0;
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        T *cr = p->C + (i0 + r) * p->ldc + j0;
        FN(st)(cr, p->store ? acc[r][0] : FN(ld)(cr, m0) + acc[r][0], m0);
        FN(st)(cr + VL, p->store ? acc[r][1] : FN(ld)(cr + VL, m1) + acc[r][1], m1);
    }
}

LG_RNN_CLONES __attribute__((optimize("fp-contract=fast"))) static void FN(pgemm_of)(const FN(mm) *p)
{
#if defined(__x86_64__) && defined(__GNUC__)
    int wide = __builtin_cpu_supports("avx512f");
#else
    int wide = 0;
#endif
/* a full panel with the constant NR: whole vectors, no tails */
#define PGEMM_ROWS(R) (nn == NR ? FN(pgemm_rows)(p, R, i0, j0, NR) : FN(pgemm_rows)(p, R, i0, j0, nn))
    for (int64_t j0 = 0; j0 < p->n; j0 += NR) {
        int64_t nn = p->n - j0 < NR ? p->n - j0 : NR, i0 = 0;
        /* eight rows at once where 64-byte vectors are registers (16
         * accumulators of the 32 AVX-512 registers; fewer registers spill),
         * then four, then one */
        for (; wide && i0 + 8 <= p->m; i0 += 8) PGEMM_ROWS(8);
        for (; i0 + 4 <= p->m; i0 += 4) PGEMM_ROWS(4);
        for (; i0 < p->m; i0++) PGEMM_ROWS(1);
    }
#undef PGEMM_ROWS
}

/* C [m, n] += A [m, K] (then A2 [m, K2], where K2 > 0: one sum per
 * element; rows K and K2 apart) times the panels at P (pack: from its first
 * column, kp rows each); C = that with store. */
static inline void FN(pgemm)(int64_t m, int64_t n, const T *A, int64_t K, const T *A2, int64_t K2, const T *P,
                             int64_t kp, T *C, int64_t ldc, bool store)
{
    FN(pgemm_of)(&(FN(mm)){.m = m, .n = n, .K = K, .K2 = K2, .A = A, .ar = K, .ak = 1, .A2 = A2, .B = P, .bj = kp,
                           .bk = NR, .C = C, .ldc = ldc, .store = store});
}

/* C [m, n] += A^T B for A [K, m] and B [K, n], row-major as they lie. */
static inline void FN(pgemm_tn)(int64_t m, int64_t n, int64_t K, const T *A, int64_t lda, const T *B, int64_t ldb,
                                T *C, int64_t ldc)
{
    FN(pgemm_of)(&(FN(mm)){.m = m, .n = n, .K = K, .A = A, .ar = 1, .ak = lda, .B = B, .bj = 1, .bk = ldb, .C = C,
                           .ldc = ldc});
}

/* Packs columns [c0, c1) (c0 at a panel start) of a K-row matrix X, element
 * (k, c) at X[k sk + c sc], into rows [0, K) of the panels of P, kp rows
 * each (panel of column c at c / NR). A last panel's lanes past c1 stay
 * unwritten: every product over these columns (pgemm) ends at c1 too and
 * loads only the lanes before it. */
static void FN(pack)(T *P, int64_t kp, const T *X, int64_t K, int64_t sk, int64_t sc, int64_t c0, int64_t c1)
{
    for (int64_t j0 = c0; j0 < c1; j0 += NR) {
        T *pp = P + j0 * kp;
        int64_t nn = c1 - j0 < NR ? c1 - j0 : NR;
        for (int64_t k = 0; k < K; k++)
            for (int64_t l = 0; l < nn; l++) pp[k * NR + l] = X[k * sk + (j0 + l) * sc];
    }
}

/* p[j] += q[j] for j < n; nothing when q is NULL (no bias). */
static inline __attribute__((always_inline)) void FN(add)(T *p, const T *q, int64_t n)
{
    if (q) FOR_V(n, ST(p + j, LD(p + j) + LD(q + j));)
}

/* Recurrent dropout (rnn.h) on n rows of w units, every array's rows ld
 * apart: hm = h m. */
static inline __attribute__((always_inline)) void FN(hmask_rows)(T *hm, const T *h, const T *m, int64_t n, int64_t w, int64_t ld)
{
    for (int64_t b = 0; b < n; b++) FOR_V(w, ST(hm + b * ld + j, LD(h + b * ld + j) * LD(m + b * ld + j));)
}

/* Its backward: given d = dL/d(h m), dh += d m and dmask += d h. */
static inline __attribute__((always_inline)) void FN(hmask_back)(T *dh, T *dmask, const T *d, const T *h, const T *m,
                                                                 int64_t n, int64_t w, int64_t ld)
{
    for (int64_t b = 0; b < n; b++) {
        int64_t i0 = b * ld;
        FOR_V(w, {
            VT dv = LD(d + i0 + j);
            ST(dh + i0 + j, LD(dh + i0 + j) + dv * LD(m + i0 + j));
            ST(dmask + i0 + j, LD(dmask + i0 + j) + dv * LD(h + i0 + j));
        })
    }
}

static void FN(act_row)(T *p, int64_t n, bool relu)
{
    if (!relu) {
        TANH_ROW(p, n);
        return;
    }
    for (int64_t j = 0; j < n; j++) p[j] = p[j] > 0 ? p[j] : 0;
}

/* h'/y of row b after a step (lg_rnn_out): state kept where the step is
 * masked out, y zeros or the kept h. */
static inline void FN(emit)(T *h, T *y, const T *hn, int64_t H, lg_rnn_out out)
{
    switch (out) {
    case LG_RNN_OUT_STEP:
        memcpy(h, hn, (size_t)H * sizeof(T));
        memcpy(y, hn, (size_t)H * sizeof(T));
        break;
    case LG_RNN_OUT_ZERO: memset(y, 0, (size_t)H * sizeof(T)); break;
    case LG_RNN_OUT_REPEAT: memcpy(y, h, (size_t)H * sizeof(T)); break;
    }
}

/* An LSTM row's backward over w units, gate blocks gs apart in its
 * activated gates (row) and their gradients (drow): from dh + dy and dc,
 * the pre-activation gradients and dc's carry f dc; dh is zeroed for the
 * product that adds dh_{t-1}. tc: tanh(c'); cp: c_{t-1}. */
static inline __attribute__((always_inline)) void FN(lstm_back_row)(const T *row, T *drow, int64_t gs, const T *tc,
                                                                    const T *cp, T *dh, const T *dy, T *dc, int64_t w)
{
    FOR_V(w, {
        VT ig = LD(row + j), fg = LD(row + gs + j), gg = LD(row + 2 * gs + j), og = LD(row + 3 * gs + j);
        VT tcj = LD(tc + j), dhv = LD(dh + j) + LD(dy + j);
        VT dcv = LD(dc + j) + dhv * og * (1 - tcj * tcj);
        ST(drow + j, dcv * gg * ig * (1 - ig));
        ST(drow + gs + j, dcv * LD(cp + j) * fg * (1 - fg));
        ST(drow + 2 * gs + j, dcv * ig * (1 - gg * gg));
        ST(drow + 3 * gs + j, dhv * tcj * og * (1 - og));
        ST(dc + j, dcv * fg);
    })
    memset(dh, 0, (size_t)w * sizeof(T));
}

/* A GRU row's mix over w units, gate blocks gs apart in row (h~ activated
 * in its block): h' = h~ + z (h - h~) through tmp, then emit. */
static inline __attribute__((always_inline)) void FN(gru_mix)(const T *row, int64_t gs, const T *hp, T *tmp, T *h,
                                                              T *y, int64_t w, lg_rnn_out out)
{
    FOR_V(w, {
        VT hh = LD(row + 2 * gs + j);
        ST(tmp + j, hh + LD(row + j) * (LD(hp + j) - hh));
    })
    FN(emit)(h, y, tmp, w, out);
}

/* A GRU's (reset_after) row backward over w units, gate blocks gs apart
 * in its activated gates (row) and the gradients of their pre-activations
 * from x (drow) and from h (dhrow): from dh + dy, hgh (h U_h + b_rh) and
 * hp (h_{t-1}); dh becomes z (dh + dy), which the product with U joins. */
static inline __attribute__((always_inline)) void FN(gru_back_row)(const T *row, T *drow, T *dhrow, int64_t gs,
                                                                   const T *hgh, const T *hp, T *dh, const T *dy,
                                                                   int64_t w)
{
    FOR_V(w, {
        VT z = LD(row + j), r = LD(row + gs + j), hh = LD(row + 2 * gs + j);
        VT dhv = LD(dh + j) + LD(dy + j);
        VT dhh = dhv * (1 - z) * (1 - hh * hh);
        VT dr = dhh * LD(hgh + j) * r * (1 - r);
        VT dz = dhv * (LD(hp + j) - hh) * z * (1 - z);
        ST(drow + j, dz);
        ST(dhrow + j, dz);
        ST(drow + gs + j, dr);
        ST(dhrow + gs + j, dr);
        ST(drow + 2 * gs + j, dhh);
        ST(dhrow + 2 * gs + j, dhh * r);
        ST(dh + j, dhv * z);
    })
}

/* Both GRUs' last pass over a step's rows [b0, b0 + nb): h~ (activated,
 * parked in y) goes back to its gate block, then the mix. */
static inline __attribute__((always_inline)) void FN(gru_update)(const lg_rnn_ctx *c, int64_t s, int64_t t, int64_t b0,
                                                                 int64_t nb, T *g, const T *hp, T *y, T *h)
{
    int64_t H = c->H, GH = c->GH;
    T tmp[H > 0 ? H : 1];
    for (int64_t b = 0; b < nb; b++) {
        T *row = g + b * GH;
        memcpy(row + 2 * H, y + b * H, (size_t)H * sizeof(T));
        FN(gru_mix)(row, H, hp + b * H, tmp, h + b * H, y + b * H, H, rnn_out_of(c, s, t, b0 + b));
    }
}

/* The forward's buffers (see cpu_rnn.c): plane bases at row 0 of step 0,
 * and the rows between steps in them: B when they keep every step (the
 * workspace), 0 when they are one step's scratch (forward only; then the
 * gate plane holds x_t W too, computed per step). */
typedef struct FN(fwd) {
    const T *x, *W, *U, *bias;
    T *h, *cs, *ys;
    T *gate, *hprev, *cprev, *tanhc, *hg, *rh;
    int64_t tstride;
    T *PU; /* c->cols: per gate, U's then W's rows packed (pgemm), [G][Hp / NR][H + I][NR], Hp = H rounded up to NR */
    const T *hmask; /* recurrent dropout [B, H], or NULL */
    T *hm;          /* with hmask: h_{t-1} hmask, [B, H] (two blocks with c->cols) */
} FN(fwd);

/* The steps of batch rows [b0, b0 + nb): rows never read other rows, so
 * any split of the batch gives the same bits. In forward-only scratch, the
 * planes are this part's own: row 0 is b0. */
LG_RNN_CLONES static lg_status FN(forward_rows)(const lg_rnn_ctx *c, const FN(fwd) *a, int64_t b0, int64_t nb)
{
    int64_t B = c->B, H = c->H, GH = c->GH, ts = a->tstride, o = ts ? b0 : 0;
    const T *bias = a->bias, *U = a->U;
    T *h = a->h + b0 * H, *cs = a->cs ? a->cs + b0 * H : NULL;
    T tmp[H > 0 ? H : 1];
    memcpy(h, (const T *)c->h0 + b0 * H, (size_t)(nb * H) * sizeof(T));
    if (cs) memcpy(cs, (const T *)c->c0 + b0 * H, (size_t)(nb * H) * sizeof(T));

    for (int64_t s = 0; s < c->steps; s++) {
        int64_t t = c->reverse ? c->steps - 1 - s : s, r0 = t * ts + o; /* this step's first row in the planes */
        T *g = a->gate + r0 * GH, *hp = a->hprev + r0 * H, *y = a->ys + (t * B + b0) * H;
        if (!ts) GEMM(DT, false, false, nb, GH, c->I, 1, a->x + (t * B + b0) * c->I, c->I, a->W, GH, 0, g, GH);
        memcpy(hp, h, (size_t)(nb * H) * sizeof(T));
        /* what the products with U read: h_{t-1}, or h_{t-1} hmask */
        const T *hr = hp;
        if (a->hmask) {
            FN(hmask_rows)(a->hm + b0 * H, hp, a->hmask + b0 * H, nb, H, H);
            hr = a->hm + b0 * H;
        }
        /* Activations run over the whole step block in one call each (a
         * call per row costs more than the math when H is small): the
         * columns that need another activation than the block's are parked
         * in y, this step's output block [nb, H], which is written last. */
        switch (c->cell) {
        case LG_RNN_SIMPLE_TANH:
        case LG_RNN_SIMPLE_RELU:
            GEMM(DT, false, false, nb, H, H, 1, hr, H, U, H, 1, g, H);
            for (int64_t b = 0; b < nb; b++) FN(add)(g + b * H, bias, H);
            FN(act_row)(g, nb * H, c->cell == LG_RNN_SIMPLE_RELU);
            for (int64_t b = 0; b < nb; b++) FN(emit)(h + b * H, y + b * H, g + b * H, H, rnn_out_of(c, s, t, b0 + b));
            break;
        case LG_RNN_LSTM: {
            T *cp = a->cprev + r0 * H, *tc = a->tanhc + r0 * H;
            memcpy(cp, cs, (size_t)(nb * H) * sizeof(T));
            GEMM(DT, false, false, nb, GH, H, 1, hr, H, U, GH, 1, g, GH);
            for (int64_t b = 0; b < nb; b++) {
                FN(add)(g + b * GH, bias, GH);
                memcpy(y + b * H, g + b * GH + 2 * H, (size_t)H * sizeof(T)); /* c~ */
            }
            SIG_ROW(g, nb * GH);
            TANH_ROW(y, nb * H);
            for (int64_t b = 0; b < nb; b++) {
                T *row = g + b * GH, *tcr = tc + b * H;
                const T *cpb = cp + b * H;
                memcpy(row + 2 * H, y + b * H, (size_t)H * sizeof(T));
                FOR_V(H, ST(tcr + j, LD(row + H + j) * LD(cpb + j) + LD(row + j) * LD(row + 2 * H + j));)
                if (rnn_valid(c, t, b0 + b)) memcpy(cs + b * H, tcr, (size_t)H * sizeof(T));
            }
            TANH_ROW(tc, nb * H);
            for (int64_t b = 0; b < nb; b++) {
                const T *row = g + b * GH, *tcr = tc + b * H;
                FOR_V(H, ST(tmp + j, LD(row + 3 * H + j) * LD(tcr + j));)
                FN(emit)(h + b * H, y + b * H, tmp, H, rnn_out_of(c, s, t, b0 + b));
            }
            break;
        }
        case LG_RNN_GRU: {
            T *hg = a->hg + r0 * GH;
            const T *brec = bias ? bias + GH : NULL;
            GEMM(DT, false, false, nb, GH, H, 1, hr, H, U, GH, 0, hg, GH);
            for (int64_t b = 0; b < nb; b++) {
                T *row = g + b * GH, *hgr = hg + b * GH;
                FN(add)(row, bias, GH);
                FN(add)(hgr, brec, GH); /* the backward reads h U_h + b_h */
                FN(add)(row, hgr, 2 * H);
                memcpy(y + b * H, row + 2 * H, (size_t)H * sizeof(T)); /* x W_h + b_h */
            }
            SIG_ROW(g, nb * GH);
            for (int64_t b = 0; b < nb; b++) {
                const T *row = g + b * GH, *hgr = hg + b * GH;
                T *yb = y + b * H;
                FOR_V(H, ST(yb + j, LD(yb + j) + LD(row + H + j) * LD(hgr + 2 * H + j));)
            }
            TANH_ROW(y, nb * H);
            FN(gru_update)(c, s, t, b0, nb, g, hp, y, h);
            break;
        }
        case LG_RNN_GRU_RESET_BEFORE: {
            T *rh = a->rh + r0 * H;
            GEMM(DT, false, false, nb, 2 * H, H, 1, hr, H, U, GH, 1, g, GH);
            for (int64_t b = 0; b < nb; b++) {
                FN(add)(g + b * GH, bias, 2 * H);
                memcpy(y + b * H, g + b * GH + 2 * H, (size_t)H * sizeof(T)); /* x W_h */
            }
            SIG_ROW(g, nb * GH);
            for (int64_t b = 0; b < nb; b++) FOR_V(H, ST(rh + b * H + j, LD(g + b * GH + H + j) * LD(hr + b * H + j));)
            GEMM(DT, false, false, nb, H, H, 1, rh, H, U + 2 * H, GH, 1, y, H);
            for (int64_t b = 0; b < nb; b++) FN(add)(y + b * H, bias ? bias + 2 * H : NULL, H);
            TANH_ROW(y, nb * H);
            FN(gru_update)(c, s, t, b0, nb, g, hp, y, h);
            break;
        }
        case LG_RNN_CELL_COUNT: break;
        }
    }
    return LG_OK;
}


/* The steps split by units (cpu_rnn_kernels.h, lg_rnn_ctx.cols: an LSTM or a GRU with
 * reset_after): part k of n owns units [u0, u1) of every gate and of h (and
 * c), for all batch rows. Each step copies its units of h (and c) into the
 * step's planes, waits for the other parts (the recurrent product reads all
 * of h_{t-1}), then runs one product per gate, [h_{t-1} | x_t] times its
 * columns of [U; W] (packed once: pgemm, so the gate plane is written once,
 * not projected before the steps and read back), and the gate math of its
 * units. The GRU's h~ block takes h_{t-1} U_h (into hg: r multiplies it)
 * and x_t W_h as two products, so of hg the unit split writes only that
 * block. In forward-only scratch, hprev alternates between two [B, H]
 * blocks, so a part a step ahead never writes the block another part still
 * reads. Any n gives the same bits, and forward-only the same as training. */
LG_RNN_CLONES static lg_status FN(cols_fwd)(const lg_rnn_ctx *c, const FN(fwd) *a, int k, int n, lg_cpu_barrier *bar)
{
    int64_t B = c->B, H = c->H, GH = c->GH, G = GH / H, ts = a->tstride;
    int64_t u0 = rnn_col_split(c, k, n), u1 = rnn_col_split(c, k + 1, n), hu = u1 - u0;
    bool gru = c->cell == LG_RNN_GRU;
    const T *bias = a->bias, *brec = gru && bias ? bias + GH : NULL, *h0 = c->h0, *c0 = c->c0;
    T *h = a->h, *cs = a->cs;
    T tmp[hu > 0 ? hu : 1];
    int64_t I = c->I, Kp = H + I, Hp = (H + NR - 1) / NR * NR;
    for (int q = 0; q < G; q++) {
        FN(pack)(a->PU + q * Kp * Hp, Kp, a->U + q * H, H, GH, 1, u0, u1);
        FN(pack)(a->PU + q * Kp * Hp + H * NR, Kp, a->W + q * H, I, GH, 1, u0, u1);
    }
    for (int64_t b = 0; b < B; b++) {
        memcpy(h + b * H + u0, h0 + b * H + u0, (size_t)hu * sizeof(T));
        if (cs) memcpy(cs + b * H + u0, c0 + b * H + u0, (size_t)hu * sizeof(T));
    }
    for (int64_t s = 0; s < c->steps; s++) {
        int64_t t = c->reverse ? c->steps - 1 - s : s, r0 = t * ts;
        T *g = a->gate + r0 * GH, *hp = a->hprev + (ts ? r0 : (s & 1) * B) * H, *y = a->ys + t * B * H;
        T *cp = a->cprev + r0 * H, *tc = a->tanhc + r0 * H, *hg = a->hg + r0 * GH;
        for (int64_t b = 0; b < B; b++) {
            memcpy(hp + b * H + u0, h + b * H + u0, (size_t)hu * sizeof(T));
            if (cs) memcpy(cp + b * H + u0, cs + b * H + u0, (size_t)hu * sizeof(T));
        }
        /* the products read h_{t-1} hmask: alternating blocks, as hprev's in forward-only scratch */
        const T *hr = hp, *xt = a->x + t * B * I;
        if (a->hmask) {
            T *hm = a->hm + (s & 1) * B * H;
            FN(hmask_rows)(hm + u0, hp + u0, a->hmask + u0, B, hu, H);
            hr = hm;
        }
        if (!lg_cpu_barrier_wait(bar))
            return lg_fail(LG_ERR_RUNTIME, "rnn '%s': another part of its steps failed", c->name);
        for (int q = 0; q < G; q++) {
            const T *P = a->PU + q * Kp * Hp + u0 * Kp;
            if (gru && q == 2) {
                FN(pgemm)(B, hu, hr, H, NULL, 0, P, Kp, hg + 2 * H + u0, GH, true);
                FN(pgemm)(B, hu, xt, I, NULL, 0, P + H * NR, Kp, g + 2 * H + u0, GH, true);
            } else {
                FN(pgemm)(B, hu, hr, H, xt, I, P, Kp, g + q * H + u0, GH, true);
            }
        }
        for (int64_t b = 0; b < B; b++) {
            T *row = g + b * GH + u0;
            for (int q = 0; q < G; q++) FN(add)(row + q * H, bias ? bias + q * H + u0 : NULL, hu);
            if (gru) { /* z and r add their recurrent biases; h~ = tanh(x W_h + b_h + r (h U_h + b_rh)) */
                T *hgh = hg + b * GH + 2 * H + u0;
                for (int q = 0; q < 3; q++)
                    FN(add)(q < 2 ? row + q * H : hgh, brec ? brec + q * H + u0 : NULL, hu);
                SIG_ROW(row, hu);
                SIG_ROW(row + H, hu);
                FOR_V(hu, ST(row + 2 * H + j, LD(row + 2 * H + j) + LD(row + H + j) * LD(hgh + j));)
                TANH_ROW(row + 2 * H, hu);
                FN(gru_mix)(row, H, hp + b * H + u0, tmp, h + b * H + u0, y + b * H + u0, hu, rnn_out_of(c, s, t, b));
                continue;
            }
            T *tcr = tc + b * H + u0;
            const T *cpb = cp + b * H + u0;
            SIG_ROW(row, hu);
            SIG_ROW(row + H, hu);
            TANH_ROW(row + 2 * H, hu);
            SIG_ROW(row + 3 * H, hu);
            FOR_V(hu, ST(tcr + j, LD(row + H + j) * LD(cpb + j) + LD(row + j) * LD(row + 2 * H + j));)
            lg_rnn_out out = rnn_out_of(c, s, t, b);
            if (out == LG_RNN_OUT_STEP) memcpy(cs + b * H + u0, tcr, (size_t)hu * sizeof(T));
            TANH_ROW(tcr, hu);
            FOR_V(hu, ST(tmp + j, LD(row + 3 * H + j) * LD(tcr + j));)
            FN(emit)(h + b * H + u0, y + b * H + u0, tmp, hu, out);
        }
    }
    return LG_OK;
}

/* rnn_task arguments of the forward's regions. */
typedef struct FN(fwd_job) {
    const lg_rnn_ctx *c;
    const FN(fwd) *a;
    T *scratch; /* forward only: [B, K H], part k's planes at its rows' block */
    lg_cpu_barrier *bar; /* c->cols: the parts' step barrier */
} FN(fwd_job);

/* Part k of n of the input projection: its share of the T B rows' blocks
 * (rnn_wg_width, cpu_rnn_kernels.h), each one GEMM on this thread, so that
 * no product's shape depends on the thread count. */
static lg_status FN(project_part)(void *arg, int k, int n)
{
    const FN(fwd_job) *j = arg;
    const lg_rnn_ctx *c = j->c;
    int64_t TB = c->steps * c->B, rows = rnn_wg_width(TB), blocks = rnn_blocks(TB, rows);
    for (int64_t i = blocks * k / n; i < blocks * (k + 1) / n; i++) {
        int64_t r0 = i * rows, r1 = r0 + rows < TB ? r0 + rows : TB;
        TRY(rnn_gemm_one(DT, false, false, r1 - r0, c->GH, c->I, 1, j->a->x + r0 * c->I, c->I, j->a->W, c->GH, 0,
                         j->a->gate + r0 * c->GH, c->GH));
    }
    return LG_OK;
}

static lg_status FN(forward_part)(void *arg, int k, int n)
{
    const FN(fwd_job) *j = arg;
    const lg_rnn_ctx *c = j->c;
    if (c->cols) {
        lg_status st = FN(cols_fwd)(c, j->a, k, n, j->bar);
        if (st) lg_cpu_barrier_break(j->bar);
        return st;
    }
    int64_t b0 = rnn_split(c->B, k, n), nb = rnn_split(c->B, k + 1, n) - b0;
    if (j->a->tstride) return FN(forward_rows)(c, j->a, b0, nb);
    /* this part's planes in the scratch, each [nb, width H] */
    FN(fwd) a = *j->a;
    T *p = j->scratch + b0 * c->ws_width;
    a.gate = p, a.hg = p + nb * c->planes.hg * c->H, a.hprev = p + nb * c->planes.hprev * c->H;
    a.cprev = p + nb * c->planes.cprev * c->H, a.tanhc = p + nb * c->planes.tanhc * c->H;
    a.rh = p + nb * c->planes.rh * c->H;
    return FN(forward_rows)(c, &a, b0, nb);
}

LG_RNN_CLONES static lg_status FN(forward)(const lg_rnn_ctx *c, const lg_buf *in, lg_buf *out)
{
    const lg_rnn_layout *L = &c->L;
    int64_t TB = c->steps * c->B, H = c->H;
    FN(fwd) a = {.x = in[L->x].data, .W = in[L->w].data, .U = in[L->u].data,
                 .bias = L->b >= 0 ? in[L->b].data : NULL, .h = out[L->h_t].data,
                 .cs = L->c_t >= 0 ? out[L->c_t].data : NULL, .ys = out[L->ys].data, .hmask = c->hmask};
    if (a.hmask) {
        a.hm = malloc((size_t)((c->cols ? 2 : 1) * c->B * H) * sizeof(T)); /* unit split: double-buffered */
        if (!a.hm && c->B * H > 0) return lg_fail(LG_ERR_OUT_OF_MEMORY, "rnn '%s': out of memory for h hmask", c->name);
    }
    lg_cpu_barrier bar;
    FN(fwd_job) job = {.c = c, .a = &a, .bar = &bar};
    if (c->forward_only) {
        /* c->cols: the planes shared by the parts, one more [B, H] for hprev's second block */
        int64_t width = c->ws_width + (c->cols ? H : 0);
        job.scratch = malloc((size_t)(c->B * width) * sizeof(T));
        if (!job.scratch && c->B * width > 0) {
            free(a.hm);
            return lg_fail(LG_ERR_OUT_OF_MEMORY, "rnn '%s': out of memory for a step's scratch", c->name);
        }
        if (c->cols) { /* hprev's second block is the plane after it: the GRU's last, the LSTM's tanhc, which
                          moves past the planes */
            T *p = job.scratch;
            a.gate = p, a.cprev = p + c->B * c->planes.cprev * H, a.hprev = p + c->B * c->planes.hprev * H;
            a.hg = p + c->B * c->planes.hg * H, a.tanhc = p + c->B * c->ws_width;
        }
    } else {
        T *ws = out[L->ws].data;
        a.tstride = c->B;
        a.gate = ws + c->planes.gate * TB * H, a.hprev = ws + c->planes.hprev * TB * H;
        a.cprev = ws + c->planes.cprev * TB * H, a.tanhc = ws + c->planes.tanhc * TB * H;
        a.hg = ws + c->planes.hg * TB * H, a.rh = ws + c->planes.rh * TB * H;
    }
    if (c->cols) {
        a.PU = malloc((size_t)(c->GH / H * (H + c->I) * ((H + NR - 1) / NR * NR)) * sizeof(T));
        if (!a.PU) {
            free(job.scratch), free(a.hm);
            return lg_fail(LG_ERR_OUT_OF_MEMORY, "rnn '%s': out of memory for packed U and W", c->name);
        }
    }
    lg_status st = LG_OK;
    /* the input projection of every step at once, where the steps do not
     * make it (forward only: per step; the unit split: in its products);
     * biases join in the gate pass */
    if (!c->forward_only && !c->cols)
        st = rnn_blocks_run(DT, rnn_blocks(TB, rnn_wg_width(TB)), (double)TB * (double)c->I * (double)c->GH,
                            FN(project_part), &job);
    if (!st) st = rnn_steps(c, FN(forward_part), &job, &bar);
    free(job.scratch);
    free(a.PU);
    free(a.hm);
    return st;
}

/* The backward's buffers (see cpu_rnn.c and rnn.h). */
typedef struct FN(bwd) {
    const lg_rnn_ctx *c;
    const T *UT, *dys; /* UT [GH, H]: U transposed (unit split: W^T then U^T, packed) */
    const T *gate, *hprev, *cprev, *tanhc, *hg;
    T *dh, *dc;
    T *dG;  /* [TB, GH] pre-activation gate gradients */
    T *dHG; /* GRU: [TB, GH] of the recurrent projection */
    T *drh; /* [B, H]: d(r h) of the reset-before GRU; with hmask also d(h hmask) */
    const T *hmask; /* recurrent dropout [B, H], or NULL */
    T *dhmask;      /* with hmask: its gradient [B, H], summed over the steps */
    T *hm;          /* with hmask: h_{t-1} hmask of every step [TB, H], dU's rows (wgrad); the steps write it */
    const T *U;
    T *PU; /* c->cols: U^T packed (pgemm), [Hp / NR][GH][NR] */
    lg_cpu_barrier *bar; /* c->cols: the parts' step barrier */
    /* c->cols: what cols_bwd sums step by step (wgrad does the rest) */
    const T *x;
    const T *PW; /* W^T packed, [Ip / NR][GH][NR], Ip = I rounded up to NR */
    T *dW, *db, *dx;
} FN(bwd);

/* The backward of cols_fwd: part k of n computes the gate gradients of
 * its units for all rows, and adds the step's x_t^T dG_t and column sums
 * (the GRU's of dHG too, its recurrent biases') to its columns of dW and db
 * while they are in cache (wgrad's GEMMs over all steps pack dG again for
 * each); waits for the other parts (dh_{t-1} of its units reads every
 * gate's gradient), then its units' dh_{t-1} with one product of dG (the
 * GRU's dHG) against its rows of U (packed transposed once: pgemm), and
 * dx_t of its block of rows (rnn_split) against W^T. Each element of dW
 * and db sums the steps in the same order for any n, so the bits do not
 * depend on the split. */
LG_RNN_CLONES static lg_status FN(cols_bwd)(const lg_rnn_ctx *c, const FN(bwd) *a, int k, int n)
{
    int64_t B = c->B, H = c->H, GH = c->GH, G = GH / H, I = c->I;
    int64_t u0 = rnn_col_split(c, k, n), u1 = rnn_col_split(c, k + 1, n), hu = u1 - u0;
    int64_t b0 = rnn_split(B, k, n), nb = rnn_split(B, k + 1, n) - b0;
    bool gru = c->cell == LG_RNN_GRU;
    const T *dhT = c->dh_T, *dcT = c->dc_T;
    T *dh = a->dh, *dc = a->dc, *dW = a->dW, *db = a->db;
    FN(pack)(a->PU, GH, a->U, GH, 1, GH, u0, u1);
    /* the GRU's recurrent bias gradients of z and r equal the input bias's
     * (gru_back_row writes dHG's z and r blocks as dG's): only h~'s is summed */
    for (int q = 0; q < G; q++) {
        for (int64_t i = 0; i < I; i++) memset(dW + i * GH + q * H + u0, 0, (size_t)hu * sizeof(T));
        for (int64_t e = 0; db && e < (gru && q == 2 ? 2 : 1); e++)
            memset(db + e * GH + q * H + u0, 0, (size_t)hu * sizeof(T));
    }
    for (int64_t b = 0; b < B; b++) {
        memcpy(dh + b * H + u0, dhT + b * H + u0, (size_t)hu * sizeof(T));
        if (dc) memcpy(dc + b * H + u0, dcT + b * H + u0, (size_t)hu * sizeof(T));
    }
    for (int64_t s = c->steps - 1; s >= 0; s--) {
        int64_t t = c->reverse ? c->steps - 1 - s : s, r0 = t * B;
        const T *g = a->gate + r0 * GH, *dy = a->dys + r0 * H, *cp = a->cprev + r0 * H, *tc = a->tanhc + r0 * H;
        const T *hp = a->hprev + r0 * H, *hg = a->hg + r0 * GH;
        T *dg = a->dG + r0 * GH, *dhg = a->dHG + r0 * GH;
        for (int64_t b = 0; b < B; b++) {
            const T *row = g + b * GH + u0;
            T *drow = dg + b * GH + u0, *dhrow = dhg + b * GH + u0;
            int64_t i0 = b * H + u0;
            if (!rnn_valid(c, t, b)) { /* the state passed through: dh, dc stay */
                for (int q = 0; q < G; q++) {
                    memset(drow + q * H, 0, (size_t)hu * sizeof(T));
                    if (gru) memset(dhrow + q * H, 0, (size_t)hu * sizeof(T));
                }
                if (rnn_out_of(c, s, t, b) == LG_RNN_OUT_REPEAT) FN(add)(dh + i0, dy + i0, hu) /* the repeated output's backward */;
                continue;
            }
            /* two rows ahead: a row's segments lie a page apart, too short
             * for the hardware prefetcher (a quarter of this pass's time) */
            for (int64_t v = 0; b + 2 < B && v < hu; v += 64 / (int64_t)sizeof(T)) {
                for (int q = 0; q < G; q++) {
                    __builtin_prefetch(row + 2 * GH + q * H + v);
                    __builtin_prefetch(drow + 2 * GH + q * H + v, 1);
                    if (gru) __builtin_prefetch(dhrow + 2 * GH + q * H + v, 1);
                }
                if (gru) __builtin_prefetch(hg + (b + 2) * GH + 2 * H + u0 + v);
                else __builtin_prefetch(tc + i0 + 2 * H + v);
                __builtin_prefetch((gru ? hp : cp) + i0 + 2 * H + v);
                __builtin_prefetch(dy + i0 + 2 * H + v);
            }
            if (gru)
                FN(gru_back_row)(row, drow, dhrow, H, hg + b * GH + 2 * H + u0, hp + i0, dh + i0, dy + i0, hu);
            else
                FN(lstm_back_row)(row, drow, H, tc + i0, cp + i0, dh + i0, dy + i0, dc + i0, hu);
        }
        for (int q = 0; q < G; q++) {
            FN(pgemm_tn)(I, hu, B, a->x + r0 * I, I, dg + q * H + u0, GH, dW + q * H + u0, GH);
            for (int64_t e = 0; db && e < (gru && q == 2 ? 2 : 1); e++) { /* the GRU's recurrent h~ bias from dHG */
                T *dbq = db + e * GH + q * H + u0;
                const T *d = (e ? dhg : dg) + q * H + u0;
                for (int64_t b = 0; b < B; b++) FN(add)(dbq, d + b * GH, hu);
            }
        }
        if (!lg_cpu_barrier_wait(a->bar))
            return lg_fail(LG_ERR_RUNTIME, "rnn_grad '%s': another part of its steps failed", c->name);
        FN(pgemm)(nb, I, dg + b0 * GH, GH, NULL, 0, a->PW, GH, a->dx + (r0 + b0) * I, I, true);
        const T *dp = gru ? dhg : dg; /* what dh_{t-1} reads */
        if (!a->hmask) {
            FN(pgemm)(B, hu, dp, GH, NULL, 0, a->PU + u0 * GH, GH, dh + u0, H, false);
            continue;
        }
        /* d(h hmask) in drh, then through the mask */
        FN(pgemm)(B, hu, dp, GH, NULL, 0, a->PU + u0 * GH, GH, a->drh + u0, H, true);
        FN(hmask_back)(dh + u0, a->dhmask + u0, a->drh + u0, hp + u0, a->hmask + u0, B, hu, H);
        FN(hmask_rows)(a->hm + r0 * H + u0, hp + u0, a->hmask + u0, B, hu, H);
    }
    for (int q = 0; gru && db && q < 2; q++) memcpy(db + GH + q * H + u0, db + q * H + u0, (size_t)hu * sizeof(T));
    return LG_OK;
}

/* The steps of batch rows [b0, b0 + nb), in reverse: as the forward, rows
 * never read other rows. */
LG_RNN_CLONES static lg_status FN(backward_rows)(const lg_rnn_ctx *c, const FN(bwd) *a, int64_t b0, int64_t nb)
{
    int64_t B = c->B, H = c->H, GH = c->GH;
    const T *UT = a->UT;
    T *dh = a->dh + b0 * H, *dc = a->dc ? a->dc + b0 * H : NULL, *drh = a->drh + b0 * H;
    const T *hmask = a->hmask ? a->hmask + b0 * H : NULL;
    T *dhmask = a->dhmask ? a->dhmask + b0 * H : NULL;
    memcpy(dh, (const T *)c->dh_T + b0 * H, (size_t)(nb * H) * sizeof(T));
    if (dc) memcpy(dc, (const T *)c->dc_T + b0 * H, (size_t)(nb * H) * sizeof(T));

    for (int64_t s = c->steps - 1; s >= 0; s--) {
        int64_t t = c->reverse ? c->steps - 1 - s : s, r0 = t * B + b0;
        const T *g = a->gate + r0 * GH, *hp = a->hprev + r0 * H, *dy = a->dys + r0 * H;
        T *dg = a->dG + r0 * GH;
        for (int64_t b = 0; b < nb; b++)
            if (!rnn_valid(c, t, b0 + b)) { /* the state passed through: dh, dc stay */
                memset(dg + b * GH, 0, (size_t)GH * sizeof(T));
                if (rnn_out_of(c, s, t, b0 + b) == LG_RNN_OUT_REPEAT) FN(add)(dh + b * H, dy + b * H, H) /* the repeated output's backward */;
                if (c->cell == LG_RNN_GRU) memset(a->dHG + (r0 + b) * GH, 0, (size_t)GH * sizeof(T));
            }
        switch (c->cell) {
        case LG_RNN_SIMPLE_TANH:
        case LG_RNN_SIMPLE_RELU:
            for (int64_t b = 0; b < nb; b++) {
                if (!rnn_valid(c, t, b0 + b)) continue;
                int64_t i0 = b * H;
                if (c->cell == LG_RNN_SIMPLE_RELU)
                    for (int64_t i = i0; i < i0 + H; i++) dg[i] = g[i] > 0 ? dh[i] + dy[i] : 0;
                else
                    FOR_V(H, {
                        VT hn = LD(g + i0 + j);
                        ST(dg + i0 + j, (LD(dh + i0 + j) + LD(dy + i0 + j)) * (1 - hn * hn));
                    })
                memset(dh + i0, 0, (size_t)H * sizeof(T));
            }
            break;
        case LG_RNN_LSTM: {
            const T *cp = a->cprev + r0 * H, *tc = a->tanhc + r0 * H;
            for (int64_t b = 0; b < nb; b++) {
                if (!rnn_valid(c, t, b0 + b)) continue;
                const T *row = g + b * GH;
                T *drow = dg + b * GH;
                int64_t i0 = b * H;
                FN(lstm_back_row)(row, drow, H, tc + i0, cp + i0, dh + i0, dy + i0, dc + i0, H);
            }
            break;
        }
        case LG_RNN_GRU: {
            const T *hg = a->hg + r0 * GH;
            T *dhg = a->dHG + r0 * GH;
            for (int64_t b = 0; b < nb; b++) {
                if (!rnn_valid(c, t, b0 + b)) continue;
                int64_t i0 = b * H;
                FN(gru_back_row)(g + b * GH, dg + b * GH, dhg + b * GH, H, hg + b * GH + 2 * H, hp + i0, dh + i0,
                                 dy + i0, H);
            }
            break;
        }
        case LG_RNN_GRU_RESET_BEFORE:
            for (int64_t b = 0; b < nb; b++) {
                if (!rnn_valid(c, t, b0 + b)) continue;
                const T *row = g + b * GH;
                int64_t i0 = b * H;
                FOR_V(H, {
                    VT z = LD(row + j), hh = LD(row + 2 * H + j);
                    ST(dg + b * GH + 2 * H + j, (LD(dh + i0 + j) + LD(dy + i0 + j)) * (1 - z) * (1 - hh * hh));
                })
            }
            /* d(r h) = dhh U_h^T */
            GEMM(DT, false, false, nb, H, H, 1, dg + 2 * H, GH, UT + 2 * H * H, H, 0, drh, H);
            for (int64_t b = 0; b < nb; b++) {
                if (!rnn_valid(c, t, b0 + b)) continue;
                const T *row = g + b * GH;
                int64_t i0 = b * H;
                if (hmask) { /* U's products read h hmask: d(h hmask) joins drh */
                    FOR_V(H, {
                        VT z = LD(row + j), r = LD(row + H + j), hh = LD(row + 2 * H + j);
                        VT dhv = LD(dh + i0 + j) + LD(dy + i0 + j), hpv = LD(hp + i0 + j), d = LD(drh + i0 + j);
                        ST(dg + b * GH + j, dhv * (hpv - hh) * z * (1 - z));
                        ST(dg + b * GH + H + j, d * (hpv * LD(hmask + i0 + j)) * r * (1 - r));
                        ST(dh + i0 + j, dhv * z);
                        ST(drh + i0 + j, d * r);
                    })
                    continue;
                }
                FOR_V(H, {
                    VT z = LD(row + j), r = LD(row + H + j), hh = LD(row + 2 * H + j);
                    VT dhv = LD(dh + i0 + j) + LD(dy + i0 + j), hpv = LD(hp + i0 + j), d = LD(drh + i0 + j);
                    ST(dg + b * GH + j, dhv * (hpv - hh) * z * (1 - z));
                    ST(dg + b * GH + H + j, d * hpv * r * (1 - r));
                    ST(dh + i0 + j, dhv * z + d * r);
                })
            }
            break;
        case LG_RNN_CELL_COUNT: break;
        }
        /* dh_{t-1} += dG U^T (the GRU's dHG; the reset-before GRU's z and r
         * columns: its d(r h) r is in dh already); with recurrent dropout
         * that product is d(h hmask): into drh (joining the reset-before
         * GRU's d(r h) r there), then through the mask */
        bool rb = c->cell == LG_RNN_GRU_RESET_BEFORE;
        GEMM(DT, false, false, nb, H, rb ? 2 * H : GH, 1, c->cell == LG_RNN_GRU ? a->dHG + r0 * GH : dg, GH, UT, H,
             hmask && !rb ? 0 : 1, hmask ? drh : dh, H);
        if (!hmask) continue;
        FN(hmask_back)(dh, dhmask, drh, hp, hmask, nb, H, H);
        FN(hmask_rows)(a->hm + r0 * H, hp, hmask, nb, H, H);
    }
    return LG_OK;
}

static lg_status FN(backward_part)(void *arg, int k, int n)
{
    const FN(bwd) *a = arg;
    if (a->c->cols) {
        lg_status st = FN(cols_bwd)(a->c, a, k, n);
        if (st) lg_cpu_barrier_break(a->bar);
        return st;
    }
    int64_t B = a->c->B, b0 = rnn_split(B, k, n);
    return FN(backward_rows)(a->c, a, b0, rnn_split(B, k + 1, n) - b0);
}

/* The backward's products over all T B rows. */
typedef struct FN(wgrad) {
    const lg_rnn_ctx *c;
    const T *x, *W, *hprev, *rh, *dG, *dHG; /* hprev: what the products with U read */
    T *dW, *dU, *db, *dx;
} FN(wgrad);

/* s[j] = the sum of X[r ld + j] over rows r < rows, for j < n: a pass down
 * the rows (a GEMM against ones packs X first), each column summed in row
 * order from zero, so any split of the columns gives the same bits. */
LG_RNN_CLONES static void FN(col_sums)(T *s, const T *X, int64_t ld, int64_t rows, int64_t n)
{
    memset(s, 0, (size_t)n * sizeof(T));
    for (int64_t r = 0; r < rows; r++) FN(add)(s, X + r * ld, n);
}

/* One of the backward's blocks (rnn_wg_block, cpu_rnn_kernels.h). */
static lg_status FN(wgrad_block)(const FN(wgrad) *w, const lg_rnn_wg_block *b)
{
    const lg_rnn_ctx *c = w->c;
    int64_t H = c->H, GH = c->GH, I = c->I, TB = c->steps * c->B, lo = b->lo, hi = b->hi;
    switch (b->kind) {
    case LG_RNN_WG_DW: {
        TRY(rnn_gemm_one(DT, true, false, I, hi - lo, TB, 1, w->x, I, w->dG + lo, GH, 0, w->dW + lo, GH));
        if (!w->db) return LG_OK;
        FN(col_sums)(w->db + lo, w->dG + lo, GH, TB, hi - lo);
        if (c->cell != LG_RNN_GRU) return LG_OK;
        /* the recurrent biases: z's and r's gradients are the input's (dHG's
         * columns equal dG's there), h~'s is summed from dHG; [lo, m) and
         * [m0, hi) are this block's columns below 2 H and from 2 H */
        int64_t m = hi < 2 * H ? hi : 2 * H, m0 = lo > 2 * H ? lo : 2 * H;
        if (lo < m) memcpy(w->db + GH + lo, w->db + lo, (size_t)(m - lo) * sizeof(T));
        if (m0 < hi) FN(col_sums)(w->db + GH + m0, w->dHG + m0, GH, TB, hi - m0);
        return LG_OK;
    }
    case LG_RNN_WG_DU: /* from h_{t-1} */
        TRY(rnn_gemm_one(DT, true, false, H, hi - lo, TB, 1, w->hprev, H, (c->cell == LG_RNN_GRU ? w->dHG : w->dG) + lo,
                         GH, 0, w->dU + lo, GH));
        return LG_OK;
    case LG_RNN_WG_DU_RH: /* the reset-before GRU's U_h columns, from r h */
        TRY(rnn_gemm_one(DT, true, false, H, hi - lo, TB, 1, w->rh, H, w->dG + lo, GH, 0, w->dU + lo, GH));
        return LG_OK;
    default: /* dx's rows */
        TRY(rnn_gemm_one(DT, false, true, hi - lo, I, GH, 1, w->dG + lo * GH, GH, w->W, GH, 0, w->dx + lo * I, I));
        return LG_OK;
    }
}

/* Part k of n: its blocks (rnn_wg_mine). */
static lg_status FN(wgrad_part)(void *arg, int k, int n)
{
    const FN(wgrad) *w = arg;
    double load[n];
    memset(load, 0, sizeof load);
    lg_rnn_wg_block b;
    for (int64_t i = 0; rnn_wg_block(w->c, i, &b); i++) {
        if (!rnn_wg_mine(load, k, n, b.cost)) continue;
        lg_status st = FN(wgrad_block)(w, &b);
        if (st) return st;
    }
    return LG_OK;
}

LG_RNN_CLONES static lg_status FN(backward)(const lg_rnn_ctx *c, const lg_buf *in, lg_buf *out)
{
    const lg_rnn_layout *L = &c->L;
    int64_t B = c->B, H = c->H, GH = c->GH, TB = c->steps * c->B, Hp = (H + NR - 1) / NR * NR;
    int64_t Ip = (c->I + NR - 1) / NR * NR;
    const T *x = in[L->x].data, *W = in[L->w].data, *ws = in[L->g_ws].data;
    T *dG = out[L->g_scratch].data;
    const T *U = in[L->u].data;
    /* U^T for the row split; for the unit split W^T packed here, then U^T,
     * packed by its parts */
    size_t ut = (size_t)(GH * (c->cols ? Ip + Hp : H)), hms = c->hmask ? (size_t)(TB * H) : 0;
    /* dU's rows with recurrent dropout: h_{t-1} hmask for every step */
    T *UT = malloc(ut * sizeof(T)), *hm = hms ? malloc(hms * sizeof(T)) : NULL;
    if ((!UT && ut > 0) || (!hm && hms > 0)) {
        free(UT), free(hm);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "rnn_grad '%s': out of memory for U^T and h hmask", c->name);
    }
    if (!c->cols)
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < GH; j++) UT[j * H + i] = U[i * GH + j];
    else
        FN(pack)(UT, GH, W, GH, 1, GH, 0, c->I);
    lg_cpu_barrier bar;
    FN(bwd) a = {.c = c, .UT = UT, .U = U, .PU = c->cols ? UT + Ip * GH : UT, .bar = &bar, .dys = in[L->g_dys].data,
                 .gate = ws + c->planes.gate * TB * H, .hprev = ws + c->planes.hprev * TB * H,
                 .cprev = ws + c->planes.cprev * TB * H, .tanhc = ws + c->planes.tanhc * TB * H,
                 .hg = ws + c->planes.hg * TB * H, .dh = out[L->g_dh0].data,
                 .dc = L->g_dc0 >= 0 ? out[L->g_dc0].data : NULL, .dG = dG, .dHG = dG + TB * GH,
                 .drh = dG + TB * c->scratch * H, .x = x, .PW = UT, .dW = out[L->g_dw].data,
                 .db = L->g_db >= 0 ? out[L->g_db].data : NULL, .dx = out[L->g_dx].data, .hmask = c->hmask,
                 .dhmask = L->g_dhmask >= 0 ? out[L->g_dhmask].data : NULL, .hm = hm};
    if (a.dhmask) memset(a.dhmask, 0, (size_t)(B * H) * sizeof(T));
    lg_status st = rnn_steps(c, FN(backward_part), &a, &bar);
    free(UT);

    /* the weight gradients and dx over all T B rows (unit split: dU only,
     * the steps did the rest), in fixed blocks over the thread budget's
     * parts, each on one thread, so OpenBLAS's own pool is never woken and
     * left spinning beside the next regions */
    FN(wgrad) w = {.c = c, .x = x, .W = W, .hprev = hm ? hm : a.hprev, .rh = ws + c->planes.rh * TB * H, .dG = dG,
                   .dHG = a.dHG, .dW = out[L->g_dw].data, .dU = out[L->g_du].data,
                   .db = L->g_db >= 0 ? out[L->g_db].data : NULL, .dx = out[L->g_dx].data};
    double madds;
    int64_t blocks = rnn_wg_count(c, &madds);
    if (!st) st = rnn_blocks_run(DT, blocks, madds, FN(wgrad_part), &w);
    free(hm);
    return st;
}

#undef FOR_V
#undef TAIL_COPY
#undef NR
#undef GEMM
#undef TRY
#undef ST
#undef LD
#undef VL
#undef VT

/* The entry points (cpu_rnn_kernels.h), not cloned themselves: GCC gives a
 * cloned function's resolver default visibility, which would export it. */
lg_status FN(lg_cpu_rnn_forward)(const lg_rnn_ctx *c, const lg_buf *in, lg_buf *out)
{
    return FN(forward)(c, in, out);
}

lg_status FN(lg_cpu_rnn_backward)(const lg_rnn_ctx *c, const lg_buf *in, lg_buf *out)
{
    return FN(backward)(c, in, out);
}
