/*
 * cpu_rnn_impl.h — the fused RNN kernels for one element type, included by
 * cpu_rnn.c once per dtype with T (the type), FN(name) (suffixes names),
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

static inline __attribute__((always_inline)) VT FN(ld)(const T *p, int64_t m)
{
    VT v = {0};
    if (m == VL) memcpy(&v, p, sizeof v);
    else
        for (int64_t k = 0; k < m; k++) v[k] = p[k]; /* a tail: no call to memcpy */
    return v;
}

static inline __attribute__((always_inline)) void FN(st)(T *p, VT v, int64_t m)
{
    if (m == VL) memcpy(p, &v, sizeof v);
    else
        for (int64_t k = 0; k < m; k++) p[k] = v[k];
}

#define LD(p) FN(ld)(p, m_)
#define ST(p, v) FN(st)(p, v, m_)
/* A GEMM whose failure (the provider's, see gemm.h) ends the kernel. */
#define GEMM(...)                                                                          \
    do {                                                                                   \
        lg_status st_ = lg_cpu_gemm(__VA_ARGS__);                                          \
        if (st_) return st_;                                                               \
    } while (0)
#define FOR_V(n, ...)                                                                      \
    for (int64_t j = 0, m_; (m_ = (n) - j < VL ? (n) - j : VL) > 0; j += VL) {             \
        __VA_ARGS__                                                                        \
    }

/* p[j] += b[j] when there is a bias. */
static inline void FN(add_bias)(T *p, const T *b, int64_t n)
{
    if (b) FOR_V(n, ST(p + j, LD(p + j) + LD(b + j));)
}

static void FN(act_row)(T *p, int64_t n, bool relu)
{
    if (!relu) {
        TANH_ROW(p, n);
        return;
    }
    for (int64_t j = 0; j < n; j++) p[j] = p[j] > 0 ? p[j] : 0;
}

/* h'/y of row b after a step: state kept where the step is masked out. */
static inline void FN(emit)(T *h, T *y, const T *hn, int64_t H, bool valid)
{
    if (valid) {
        memcpy(h, hn, (size_t)H * sizeof(T));
        memcpy(y, hn, (size_t)H * sizeof(T));
    } else {
        memset(y, 0, (size_t)H * sizeof(T));
    }
}

LG_RNN_CLONES static lg_status FN(forward)(const rnn_ctx *c, const lg_buf *in, lg_buf *out)
{
    const lg_rnn_layout *L = &c->L;
    int64_t B = c->B, H = c->H, GH = c->GH, TB = c->steps * c->B;
    const T *x = in[L->x].data, *W = in[L->w].data, *U = in[L->u].data;
    const T *bias = L->b >= 0 ? in[L->b].data : NULL;
    T *h = out[L->h_t].data, *cs = L->c_t >= 0 ? out[L->c_t].data : NULL, *ys = out[L->ys].data;
    T *ws = out[L->ws].data;
    T *gate = ws + c->planes.gate * TB * H, *hprev = ws + c->planes.hprev * TB * H;
    T *cprev = ws + c->planes.cprev * TB * H, *tanhc = ws + c->planes.tanhc * TB * H;
    T *hgp = ws + c->planes.hg * TB * H, *rhp = ws + c->planes.rh * TB * H;
    T tmp[H > 0 ? H : 1];

    /* the input projection of every step at once; biases join in the gate pass */
    GEMM(DT, false, false, TB, GH, c->I, 1, x, c->I, W, GH, 0, gate, GH);
    memcpy(h, in[L->h0].data, (size_t)(B * H) * sizeof(T));
    if (cs) memcpy(cs, in[L->c0].data, (size_t)(B * H) * sizeof(T));

    for (int64_t s = 0; s < c->steps; s++) {
        int64_t t = c->reverse ? c->steps - 1 - s : s;
        T *g = gate + t * B * GH, *hp = hprev + t * B * H, *y = ys + t * B * H;
        memcpy(hp, h, (size_t)(B * H) * sizeof(T));
        /* Activations run over the whole step block in one call each (a
         * call per row costs more than the math when H is small): the
         * columns that need another activation than the block's are parked
         * in y, this step's output block [B, H], which is written last. */
        switch (c->cell) {
        case LG_RNN_SIMPLE_TANH:
        case LG_RNN_SIMPLE_RELU:
            GEMM(DT, false, false, B, H, H, 1, hp, H, U, H, 1, g, H);
            for (int64_t b = 0; b < B; b++) FN(add_bias)(g + b * H, bias, H);
            FN(act_row)(g, B * H, c->cell == LG_RNN_SIMPLE_RELU);
            for (int64_t b = 0; b < B; b++) FN(emit)(h + b * H, y + b * H, g + b * H, H, rnn_valid(c, t, b));
            break;
        case LG_RNN_LSTM: {
            T *cp = cprev + t * B * H, *tc = tanhc + t * B * H;
            memcpy(cp, cs, (size_t)(B * H) * sizeof(T));
            GEMM(DT, false, false, B, GH, H, 1, hp, H, U, GH, 1, g, GH);
            for (int64_t b = 0; b < B; b++) {
                FN(add_bias)(g + b * GH, bias, GH);
                memcpy(y + b * H, g + b * GH + 2 * H, (size_t)H * sizeof(T)); /* c~ */
            }
            SIG_ROW(g, B * GH);
            TANH_ROW(y, B * H);
            for (int64_t b = 0; b < B; b++) {
                T *row = g + b * GH, *tcr = tc + b * H;
                const T *cpb = cp + b * H;
                memcpy(row + 2 * H, y + b * H, (size_t)H * sizeof(T));
                FOR_V(H, ST(tcr + j, LD(row + H + j) * LD(cpb + j) + LD(row + j) * LD(row + 2 * H + j));)
                if (rnn_valid(c, t, b)) memcpy(cs + b * H, tcr, (size_t)H * sizeof(T));
            }
            TANH_ROW(tc, B * H);
            for (int64_t b = 0; b < B; b++) {
                const T *row = g + b * GH, *tcr = tc + b * H;
                FOR_V(H, ST(tmp + j, LD(row + 3 * H + j) * LD(tcr + j));)
                FN(emit)(h + b * H, y + b * H, tmp, H, rnn_valid(c, t, b));
            }
            break;
        }
        case LG_RNN_GRU: {
            T *hg = hgp + t * B * GH;
            const T *brec = bias ? bias + GH : NULL;
            GEMM(DT, false, false, B, GH, H, 1, hp, H, U, GH, 0, hg, GH);
            for (int64_t b = 0; b < B; b++) {
                T *row = g + b * GH, *hgr = hg + b * GH;
                FN(add_bias)(row, bias, GH);
                FN(add_bias)(hgr, brec, GH); /* the backward reads h U_h + b_h */
                FOR_V(2 * H, ST(row + j, LD(row + j) + LD(hgr + j));)
                memcpy(y + b * H, row + 2 * H, (size_t)H * sizeof(T)); /* x W_h + b_h */
            }
            SIG_ROW(g, B * GH);
            for (int64_t b = 0; b < B; b++) {
                const T *row = g + b * GH, *hgr = hg + b * GH;
                T *yb = y + b * H;
                FOR_V(H, ST(yb + j, LD(yb + j) + LD(row + H + j) * LD(hgr + 2 * H + j));)
            }
            TANH_ROW(y, B * H);
            for (int64_t b = 0; b < B; b++) {
                T *row = g + b * GH;
                const T *hpb = hp + b * H;
                memcpy(row + 2 * H, y + b * H, (size_t)H * sizeof(T));
                FOR_V(H, {
                    VT hh = LD(row + 2 * H + j);
                    ST(tmp + j, hh + LD(row + j) * (LD(hpb + j) - hh));
                })
                FN(emit)(h + b * H, y + b * H, tmp, H, rnn_valid(c, t, b));
            }
            break;
        }
        case LG_RNN_GRU_RESET_BEFORE: {
            T *rh = rhp + t * B * H;
            GEMM(DT, false, false, B, 2 * H, H, 1, hp, H, U, GH, 1, g, GH);
            for (int64_t b = 0; b < B; b++) {
                FN(add_bias)(g + b * GH, bias, 2 * H);
                memcpy(y + b * H, g + b * GH + 2 * H, (size_t)H * sizeof(T)); /* x W_h */
            }
            SIG_ROW(g, B * GH);
            for (int64_t b = 0; b < B; b++) FOR_V(H, ST(rh + b * H + j, LD(g + b * GH + H + j) * LD(hp + b * H + j));)
            GEMM(DT, false, false, B, H, H, 1, rh, H, U + 2 * H, GH, 1, y, H);
            for (int64_t b = 0; b < B; b++) FN(add_bias)(y + b * H, bias ? bias + 2 * H : NULL, H);
            TANH_ROW(y, B * H);
            for (int64_t b = 0; b < B; b++) {
                T *row = g + b * GH;
                const T *hpb = hp + b * H;
                memcpy(row + 2 * H, y + b * H, (size_t)H * sizeof(T));
                FOR_V(H, {
                    VT hh = LD(row + 2 * H + j);
                    ST(tmp + j, hh + LD(row + j) * (LD(hpb + j) - hh));
                })
                FN(emit)(h + b * H, y + b * H, tmp, H, rnn_valid(c, t, b));
            }
            break;
        }
        case LG_RNN_CELL_COUNT: break;
        }
    }
    return LG_OK;
}

LG_RNN_CLONES static lg_status FN(backward)(const rnn_ctx *c, const lg_buf *in, lg_buf *out)
{
    const lg_rnn_layout *L = &c->L;
    int64_t B = c->B, H = c->H, GH = c->GH, TB = c->steps * c->B;
    const T *x = in[L->x].data, *W = in[L->w].data, *U = in[L->u].data, *ws = in[L->g_ws].data;
    const T *dys = in[L->g_dys].data;
    const T *gate = ws + c->planes.gate * TB * H, *hprev = ws + c->planes.hprev * TB * H;
    const T *cprev = ws + c->planes.cprev * TB * H, *tanhc = ws + c->planes.tanhc * TB * H;
    const T *hgp = ws + c->planes.hg * TB * H, *rhp = ws + c->planes.rh * TB * H;
    T *dh = out[L->g_dh0].data, *dc = L->g_dc0 >= 0 ? out[L->g_dc0].data : NULL;
    T *dG = out[L->g_scratch].data; /* [TB, GH] pre-activation gate gradients */
    T *dHG = dG + TB * GH;          /* GRU: [TB, GH] of the recurrent projection */
    T *drh = dG + TB * c->scratch * H; /* [B, H] */
    T *ones = drh + B * H;              /* [TB]: column sums as GEMMs */
    memcpy(dh, in[L->g_dh].data, (size_t)(B * H) * sizeof(T));
    if (dc) memcpy(dc, in[L->g_dc].data, (size_t)(B * H) * sizeof(T));

    for (int64_t s = c->steps - 1; s >= 0; s--) {
        int64_t t = c->reverse ? c->steps - 1 - s : s;
        const T *g = gate + t * B * GH, *hp = hprev + t * B * H, *dy = dys + t * B * H;
        T *dg = dG + t * B * GH;
        for (int64_t b = 0; b < B; b++)
            if (!rnn_valid(c, t, b)) { /* the state passed through: dh, dc stay */
                memset(dg + b * GH, 0, (size_t)GH * sizeof(T));
                if (c->cell == LG_RNN_GRU) memset(dHG + (t * B + b) * GH, 0, (size_t)GH * sizeof(T));
            }
        switch (c->cell) {
        case LG_RNN_SIMPLE_TANH:
        case LG_RNN_SIMPLE_RELU:
            for (int64_t b = 0; b < B; b++) {
                if (!rnn_valid(c, t, b)) continue;
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
            GEMM(DT, false, true, B, H, H, 1, dg, H, U, H, 1, dh, H);
            break;
        case LG_RNN_LSTM: {
            const T *cp = cprev + t * B * H, *tc = tanhc + t * B * H;
            for (int64_t b = 0; b < B; b++) {
                if (!rnn_valid(c, t, b)) continue;
                const T *row = g + b * GH;
                T *drow = dg + b * GH;
                int64_t i0 = b * H;
                FOR_V(H, {
                    VT ig = LD(row + j), fg = LD(row + H + j), gg = LD(row + 2 * H + j), og = LD(row + 3 * H + j);
                    VT tcj = LD(tc + i0 + j), dhv = LD(dh + i0 + j) + LD(dy + i0 + j);
                    VT dcv = LD(dc + i0 + j) + dhv * og * (1 - tcj * tcj);
                    ST(drow + j, dcv * gg * ig * (1 - ig));
                    ST(drow + H + j, dcv * LD(cp + i0 + j) * fg * (1 - fg));
                    ST(drow + 2 * H + j, dcv * ig * (1 - gg * gg));
                    ST(drow + 3 * H + j, dhv * tcj * og * (1 - og));
                    ST(dc + i0 + j, dcv * fg);
                })
                memset(dh + i0, 0, (size_t)H * sizeof(T));
            }
            GEMM(DT, false, true, B, H, GH, 1, dg, GH, U, GH, 1, dh, H);
            break;
        }
        case LG_RNN_GRU: {
            const T *hg = hgp + t * B * GH;
            T *dhg = dHG + t * B * GH;
            for (int64_t b = 0; b < B; b++) {
                if (!rnn_valid(c, t, b)) continue;
                const T *row = g + b * GH, *hgr = hg + b * GH;
                T *drow = dg + b * GH, *dhrow = dhg + b * GH;
                int64_t i0 = b * H;
                FOR_V(H, {
                    VT z = LD(row + j), r = LD(row + H + j), hh = LD(row + 2 * H + j);
                    VT dhv = LD(dh + i0 + j) + LD(dy + i0 + j);
                    VT dhh = dhv * (1 - z) * (1 - hh * hh);
                    VT dr = dhh * LD(hgr + 2 * H + j) * r * (1 - r);
                    VT dz = dhv * (LD(hp + i0 + j) - hh) * z * (1 - z);
                    ST(drow + j, dz);
                    ST(dhrow + j, dz);
                    ST(drow + H + j, dr);
                    ST(dhrow + H + j, dr);
                    ST(drow + 2 * H + j, dhh);
                    ST(dhrow + 2 * H + j, dhh * r);
                    ST(dh + i0 + j, dhv * z);
                })
            }
            GEMM(DT, false, true, B, H, GH, 1, dhg, GH, U, GH, 1, dh, H);
            break;
        }
        case LG_RNN_GRU_RESET_BEFORE:
            for (int64_t b = 0; b < B; b++) {
                if (!rnn_valid(c, t, b)) continue;
                const T *row = g + b * GH;
                int64_t i0 = b * H;
                FOR_V(H, {
                    VT z = LD(row + j), hh = LD(row + 2 * H + j);
                    ST(dg + b * GH + 2 * H + j, (LD(dh + i0 + j) + LD(dy + i0 + j)) * (1 - z) * (1 - hh * hh));
                })
            }
            /* d(r h) = dhh U_h^T */
            GEMM(DT, false, true, B, H, H, 1, dg + 2 * H, GH, U + 2 * H, GH, 0, drh, H);
            for (int64_t b = 0; b < B; b++) {
                if (!rnn_valid(c, t, b)) continue;
                const T *row = g + b * GH;
                int64_t i0 = b * H;
                FOR_V(H, {
                    VT z = LD(row + j), r = LD(row + H + j), hh = LD(row + 2 * H + j);
                    VT dhv = LD(dh + i0 + j) + LD(dy + i0 + j), hpv = LD(hp + i0 + j), d = LD(drh + i0 + j);
                    ST(dg + b * GH + j, dhv * (hpv - hh) * z * (1 - z));
                    ST(dg + b * GH + H + j, d * hpv * r * (1 - r));
                    ST(dh + i0 + j, dhv * z + d * r);
                })
            }
            GEMM(DT, false, true, B, H, 2 * H, 1, dg, GH, U, GH, 1, dh, H);
            break;
        case LG_RNN_CELL_COUNT: break;
        }
    }

    /* the weight gradients and dx, one GEMM each over all T B rows */
    T *dW = out[L->g_dw].data, *dU = out[L->g_du].data;
    GEMM(DT, true, false, c->I, GH, TB, 1, x, c->I, dG, GH, 0, dW, GH);
    GEMM(DT, false, true, TB, c->I, GH, 1, dG, GH, W, GH, 0, out[L->g_dx].data, c->I);
    switch (c->cell) {
    case LG_RNN_GRU: GEMM(DT, true, false, H, GH, TB, 1, hprev, H, dHG, GH, 0, dU, GH); break;
    case LG_RNN_GRU_RESET_BEFORE:
        GEMM(DT, true, false, H, 2 * H, TB, 1, hprev, H, dG, GH, 0, dU, GH);
        GEMM(DT, true, false, H, H, TB, 1, rhp, H, dG + 2 * H, GH, 0, dU + 2 * H, GH);
        break;
    default: GEMM(DT, true, false, H, GH, TB, 1, hprev, H, dG, GH, 0, dU, GH); break;
    }
    if (L->g_db >= 0) {
        T *db = out[L->g_db].data;
        for (int64_t r = 0; r < TB; r++) ones[r] = 1;
        GEMM(DT, true, false, GH, 1, TB, 1, dG, GH, ones, 1, 0, db, 1);
        if (c->cell == LG_RNN_GRU) GEMM(DT, true, false, GH, 1, TB, 1, dHG, GH, ones, 1, 0, db + GH, 1);
    }
    return LG_OK;
}

#undef FOR_V
#undef GEMM
#undef ST
#undef LD
#undef VL
#undef VT
