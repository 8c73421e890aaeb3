/* sequences.c — Keras's pad_sequences for ragged i32 token sequences. */
#include <string.h>

#include "graph/internal.h"
#include "graph/preprocess.h"

lg_pad_opts lg_pad_opts_default(void)
{
    return (lg_pad_opts){.maxlen = 0, .padding = LG_PAD_PRE, .truncating = LG_PAD_PRE, .value = 0};
}

static bool side_ok(lg_pad_side s) { return (int)s >= 0 && s < LG_PAD_SIDE_COUNT; }

lg_status lg_pad_sequences(const int32_t *const *seqs, const int64_t *lens, int64_t n, lg_pad_opts o, lg_tensor **out,
                           lg_tensor **lengths)
{
    const char *fn = "lg_pad_sequences";
    if (lengths) *lengths = NULL;
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (n < 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: n %lld: must be >= 0", fn, (long long)n);
    if (n > 0 && (!seqs || !lens))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: seqs or lens is NULL with n %lld", fn, (long long)n);
    if (o.maxlen < 0 || o.maxlen > INT32_MAX)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: maxlen %lld: must lie in [0, %d] (0: the longest)", fn,
                       (long long)o.maxlen, INT32_MAX);
    if (!side_ok(o.padding))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: padding %d: not an lg_pad_side", fn, (int)o.padding);
    if (!side_ok(o.truncating))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: truncating %d: not an lg_pad_side", fn, (int)o.truncating);
    if (n == 0 && o.maxlen == 0)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: no sequences and maxlen 0: no longest sequence to pad to", fn);
    int64_t longest = 0;
    for (int64_t i = 0; i < n; i++) {
        if (lens[i] < 0)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: lens[%lld] is %lld: must be >= 0", fn, (long long)i,
                           (long long)lens[i]);
        if (lens[i] > 0 && !seqs[i])
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: seqs[%lld] is NULL with lens[%lld] %lld", fn, (long long)i,
                           (long long)i, (long long)lens[i]);
        if (lens[i] > longest) longest = lens[i];
    }
    int64_t maxlen = o.maxlen ? o.maxlen : longest;
    if (maxlen > INT32_MAX)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: the longest sequence has %lld values: above %d, give a maxlen", fn,
                       (long long)maxlen, INT32_MAX);
    lg_tensor *x = NULL, *len = NULL;
    lg_status st = lg_tensor_new(LG_I32, (lg_shape){.rank = 2, .dims = {n, maxlen}}, &x);
    if (!st && lengths) st = lg_tensor_new(LG_I32, (lg_shape){.rank = 1, .dims = {n}}, &len);
    if (st) {
        lg_tensor_free(x);
        return st;
    }
    int32_t *px = lg_tensor_data(x), *pl = lengths ? lg_tensor_data(len) : NULL;
    for (int64_t i = 0; i < n; i++) {
        int32_t *row = px ? px + i * maxlen : NULL; /* NULL + 0 is undefined too: maxlen 0 has no data */
        int64_t keep = lens[i] < maxlen ? lens[i] : maxlen;
        for (int64_t j = 0; j < maxlen; j++) row[j] = o.value;
        if (keep) {
            const int32_t *src = seqs[i] + (o.truncating == LG_PAD_PRE ? lens[i] - keep : 0);
            memcpy(row + (o.padding == LG_PAD_PRE ? maxlen - keep : 0), src, (size_t)keep * sizeof *src);
        }
        if (pl) pl[i] = (int32_t)keep;
    }
    *out = x;
    if (lengths) *lengths = len;
    return LG_OK;
}
