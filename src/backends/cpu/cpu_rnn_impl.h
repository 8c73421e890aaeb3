/*
 * cpu_rnn_impl.h — the fused RNN kernels for one element type, included by
 * cpu_rnn.c once per dtype with T (the type), FN(name) (suffixes names),
 * DT (its lg_dtype), SIG_ROW and TANH_ROW (in-place activations of n
 * elements) defined. See cpu_rnn.c for the workspace layout.
 */

/* p[j] += b[j] when there is a bias. */
static inline void FN(add_bias)(T *p, const T *b, int64_t n)
{
    for (int64_t j = 0; b && j < n; j++) p[j] += b[j];
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
    for (int64_t j = 0; j < H; j++) {
        if (valid) h[j] = hn[j];
        y[j] = valid ? hn[j] : 0;
    }
}

static void FN(forward)(const rnn_ctx *c, const lg_buf *in, lg_buf *out)
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
    lg_cpu_gemm(DT, false, false, TB, GH, c->I, 1, x, c->I, W, GH, 0, gate, GH);
    memcpy(h, in[L->h0].data, (size_t)(B * H) * sizeof(T));
    if (cs) memcpy(cs, in[L->c0].data, (size_t)(B * H) * sizeof(T));

    for (int64_t s = 0; s < c->steps; s++) {
        int64_t t = c->reverse ? c->steps - 1 - s : s;
        T *g = gate + t * B * GH, *hp = hprev + t * B * H, *y = ys + t * B * H;
        memcpy(hp, h, (size_t)(B * H) * sizeof(T));
        switch (c->cell) {
        case LG_RNN_SIMPLE_TANH:
        case LG_RNN_SIMPLE_RELU:
            lg_cpu_gemm(DT, false, false, B, H, H, 1, hp, H, U, H, 1, g, H);
            for (int64_t b = 0; b < B; b++) {
                FN(add_bias)(g + b * H, bias, H);
                FN(act_row)(g + b * H, H, c->cell == LG_RNN_SIMPLE_RELU);
                FN(emit)(h + b * H, y + b * H, g + b * H, H, rnn_valid(c, t, b));
            }
            break;
        case LG_RNN_LSTM: {
            T *cp = cprev + t * B * H, *tc = tanhc + t * B * H;
            memcpy(cp, cs, (size_t)(B * H) * sizeof(T));
            lg_cpu_gemm(DT, false, false, B, GH, H, 1, hp, H, U, GH, 1, g, GH);
            for (int64_t b = 0; b < B; b++) {
                T *row = g + b * GH, *tcr = tc + b * H, *cb = cs + b * H;
                const T *cpb = cp + b * H;
                FN(add_bias)(row, bias, GH);
                SIG_ROW(row, 2 * H);
                TANH_ROW(row + 2 * H, H);
                SIG_ROW(row + 3 * H, H);
                bool valid = rnn_valid(c, t, b);
                for (int64_t j = 0; j < H; j++) tcr[j] = row[H + j] * cpb[j] + row[j] * row[2 * H + j];
                if (valid) memcpy(cb, tcr, (size_t)H * sizeof(T));
                TANH_ROW(tcr, H);
                for (int64_t j = 0; j < H; j++) tmp[j] = row[3 * H + j] * tcr[j];
                FN(emit)(h + b * H, y + b * H, tmp, H, valid);
            }
            break;
        }
        case LG_RNN_GRU: {
            T *hg = hgp + t * B * GH;
            const T *brec = bias ? bias + GH : NULL;
            lg_cpu_gemm(DT, false, false, B, GH, H, 1, hp, H, U, GH, 0, hg, GH);
            for (int64_t b = 0; b < B; b++) {
                T *row = g + b * GH, *hgr = hg + b * GH;
                const T *hpb = hp + b * H;
                FN(add_bias)(row, bias, GH);
                FN(add_bias)(hgr, brec, GH); /* the backward reads h U_h + b_h */
                for (int64_t j = 0; j < 2 * H; j++) row[j] += hgr[j];
                SIG_ROW(row, 2 * H);
                for (int64_t j = 0; j < H; j++) row[2 * H + j] += row[H + j] * hgr[2 * H + j];
                TANH_ROW(row + 2 * H, H);
                for (int64_t j = 0; j < H; j++) tmp[j] = row[2 * H + j] + row[j] * (hpb[j] - row[2 * H + j]);
                FN(emit)(h + b * H, y + b * H, tmp, H, rnn_valid(c, t, b));
            }
            break;
        }
        case LG_RNN_GRU_RESET_BEFORE: {
            T *rh = rhp + t * B * H;
            lg_cpu_gemm(DT, false, false, B, 2 * H, H, 1, hp, H, U, GH, 1, g, GH);
            for (int64_t b = 0; b < B; b++) {
                T *row = g + b * GH;
                FN(add_bias)(row, bias, 2 * H);
                SIG_ROW(row, 2 * H);
                for (int64_t j = 0; j < H; j++) rh[b * H + j] = row[H + j] * hp[b * H + j];
            }
            lg_cpu_gemm(DT, false, false, B, H, H, 1, rh, H, U + 2 * H, GH, 1, g + 2 * H, GH);
            for (int64_t b = 0; b < B; b++) {
                T *row = g + b * GH;
                const T *hpb = hp + b * H;
                FN(add_bias)(row + 2 * H, bias ? bias + 2 * H : NULL, H);
                TANH_ROW(row + 2 * H, H);
                for (int64_t j = 0; j < H; j++) tmp[j] = row[2 * H + j] + row[j] * (hpb[j] - row[2 * H + j]);
                FN(emit)(h + b * H, y + b * H, tmp, H, rnn_valid(c, t, b));
            }
            break;
        }
        case LG_RNN_CELL_COUNT: break;
        }
    }
}

static void FN(backward)(const rnn_ctx *c, const lg_buf *in, lg_buf *out)
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
                for (int64_t j = 0; j < H; j++) {
                    int64_t i = b * H + j;
                    T dhv = dh[i] + dy[i], hn = g[i];
                    dg[i] = c->cell == LG_RNN_SIMPLE_RELU ? (hn > 0 ? dhv : 0) : dhv * (1 - hn * hn);
                    dh[i] = 0;
                }
            }
            lg_cpu_gemm(DT, false, true, B, H, H, 1, dg, H, U, H, 1, dh, H);
            break;
        case LG_RNN_LSTM: {
            const T *cp = cprev + t * B * H, *tc = tanhc + t * B * H;
            for (int64_t b = 0; b < B; b++) {
                if (!rnn_valid(c, t, b)) continue;
                const T *row = g + b * GH;
                T *drow = dg + b * GH;
                for (int64_t j = 0; j < H; j++) {
                    int64_t i = b * H + j;
                    T ig = row[j], fg = row[H + j], gg = row[2 * H + j], og = row[3 * H + j], tcj = tc[i];
                    T dhv = dh[i] + dy[i];
                    T dcv = dc[i] + dhv * og * (1 - tcj * tcj);
                    drow[j] = dcv * gg * ig * (1 - ig);
                    drow[H + j] = dcv * cp[i] * fg * (1 - fg);
                    drow[2 * H + j] = dcv * ig * (1 - gg * gg);
                    drow[3 * H + j] = dhv * tcj * og * (1 - og);
                    dc[i] = dcv * fg;
                    dh[i] = 0;
                }
            }
            lg_cpu_gemm(DT, false, true, B, H, GH, 1, dg, GH, U, GH, 1, dh, H);
            break;
        }
        case LG_RNN_GRU: {
            const T *hg = hgp + t * B * GH;
            T *dhg = dHG + t * B * GH;
            for (int64_t b = 0; b < B; b++) {
                if (!rnn_valid(c, t, b)) continue;
                const T *row = g + b * GH, *hgr = hg + b * GH;
                T *drow = dg + b * GH, *dhrow = dhg + b * GH;
                for (int64_t j = 0; j < H; j++) {
                    int64_t i = b * H + j;
                    T z = row[j], r = row[H + j], hh = row[2 * H + j];
                    T dhv = dh[i] + dy[i];
                    T dhh = dhv * (1 - z) * (1 - hh * hh);
                    T dr = dhh * hgr[2 * H + j] * r * (1 - r);
                    T dz = dhv * (hp[i] - hh) * z * (1 - z);
                    drow[j] = dhrow[j] = dz;
                    drow[H + j] = dhrow[H + j] = dr;
                    drow[2 * H + j] = dhh;
                    dhrow[2 * H + j] = dhh * r;
                    dh[i] = dhv * z;
                }
            }
            lg_cpu_gemm(DT, false, true, B, H, GH, 1, dhg, GH, U, GH, 1, dh, H);
            break;
        }
        case LG_RNN_GRU_RESET_BEFORE:
            for (int64_t b = 0; b < B; b++) {
                if (!rnn_valid(c, t, b)) continue;
                const T *row = g + b * GH;
                for (int64_t j = 0; j < H; j++) {
                    int64_t i = b * H + j;
                    T z = row[j], hh = row[2 * H + j];
                    dg[b * GH + 2 * H + j] = (dh[i] + dy[i]) * (1 - z) * (1 - hh * hh);
                }
            }
            /* d(r h) = dhh U_h^T */
            lg_cpu_gemm(DT, false, true, B, H, H, 1, dg + 2 * H, GH, U + 2 * H, GH, 0, drh, H);
            for (int64_t b = 0; b < B; b++) {
                if (!rnn_valid(c, t, b)) continue;
                const T *row = g + b * GH;
                for (int64_t j = 0; j < H; j++) {
                    int64_t i = b * H + j;
                    T z = row[j], r = row[H + j], hh = row[2 * H + j];
                    T dhv = dh[i] + dy[i];
                    dg[b * GH + j] = dhv * (hp[i] - hh) * z * (1 - z);
                    dg[b * GH + H + j] = drh[i] * hp[i] * r * (1 - r);
                    dh[i] = dhv * z + drh[i] * r;
                }
            }
            lg_cpu_gemm(DT, false, true, B, H, 2 * H, 1, dg, GH, U, GH, 1, dh, H);
            break;
        case LG_RNN_CELL_COUNT: break;
        }
    }

    /* the weight gradients and dx, one GEMM each over all T B rows */
    T *dW = out[L->g_dw].data, *dU = out[L->g_du].data;
    lg_cpu_gemm(DT, true, false, c->I, GH, TB, 1, x, c->I, dG, GH, 0, dW, GH);
    lg_cpu_gemm(DT, false, true, TB, c->I, GH, 1, dG, GH, W, GH, 0, out[L->g_dx].data, c->I);
    switch (c->cell) {
    case LG_RNN_GRU: lg_cpu_gemm(DT, true, false, H, GH, TB, 1, hprev, H, dHG, GH, 0, dU, GH); break;
    case LG_RNN_GRU_RESET_BEFORE:
        lg_cpu_gemm(DT, true, false, H, 2 * H, TB, 1, hprev, H, dG, GH, 0, dU, GH);
        lg_cpu_gemm(DT, true, false, H, H, TB, 1, rhp, H, dG + 2 * H, GH, 0, dU + 2 * H, GH);
        break;
    default: lg_cpu_gemm(DT, true, false, H, GH, TB, 1, hprev, H, dG, GH, 0, dU, GH); break;
    }
    if (L->g_db >= 0) {
        T *db = out[L->g_db].data;
        for (int64_t r = 0; r < TB; r++) ones[r] = 1;
        lg_cpu_gemm(DT, true, false, GH, 1, TB, 1, dG, GH, ones, 1, 0, db, 1);
        if (c->cell == LG_RNN_GRU) lg_cpu_gemm(DT, true, false, GH, 1, TB, 1, dHG, GH, ones, 1, 0, db + GH, 1);
    }
}
