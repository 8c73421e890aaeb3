/*
 * mirror.c — a host block and its device copy, kept coherent per segment
 * (mirror.h).
 */
#include <string.h>

#include "graph/mirror.h"

bool lg_mirror_init(lg_mirror *m, void *host, const size_t *off, int n_seg)
{
    *m = (lg_mirror){.host = host, .n_seg = n_seg};
    m->off = malloc((size_t)(n_seg + 1) * sizeof *m->off);
    m->newer = malloc((size_t)(n_seg ? n_seg : 1));
    if (!m->off || !m->newer) {
        lg_mirror_release(m);
        return false;
    }
    memcpy(m->off, off, (size_t)(n_seg + 1) * sizeof *m->off);
    return true;
}

void lg_mirror_release(lg_mirror *m)
{
    if (m->b) m->b->free(m->b, m->dev);
    free(m->off), free(m->newer);
    *m = (lg_mirror){0};
}

/* The segments [*lo, *hi) overlapping bytes [at, at + bytes). */
static void seg_range(const lg_mirror *m, size_t at, size_t bytes, int *lo, int *hi)
{
    int a = 0, b = m->n_seg;
    while (a < b) { /* the first segment ending after at */
        int mid = (a + b) / 2;
        if (m->off[mid + 1] <= at) a = mid + 1;
        else b = mid;
    }
    *lo = a;
    int h = a;
    while (h < m->n_seg && m->off[h] < at + bytes) h++;
    *hi = h;
}

lg_status lg_mirror_to_host(lg_mirror *m)
{
    for (int s = 0; m->b && s < m->n_seg; s++) {
        if (m->newer[s] != LG_MIRROR_DEV_NEWER) continue;
        lg_status st = m->b->copy_d2h(m->b, m->host + m->off[s], m->dev + m->off[s], m->off[s + 1] - m->off[s]);
        if (st) return st;
        m->newer[s] = LG_MIRROR_SAME;
    }
    return LG_OK;
}

/* A device copy on b: the old device's newest data brought home first. */
static lg_status move_to(lg_mirror *m, const lg_backend *b)
{
    if (m->b == b) return LG_OK;
    lg_status st = lg_mirror_to_host(m);
    if (st) return st;
    if (m->b) m->b->free(m->b, m->dev);
    m->b = NULL, m->dev = NULL;
    void *dev = NULL;
    st = b->alloc(b, m->off[m->n_seg], &dev);
    if (st) return st;
    m->b = b, m->dev = dev;
    memset(m->newer, LG_MIRROR_HOST_NEWER, (size_t)m->n_seg);
    return LG_OK;
}

lg_status lg_mirror_place(lg_mirror *m, const lg_backend *b, size_t at, size_t bytes, void **ptr)
{
    int lo, hi;
    seg_range(m, at, bytes, &lo, &hi);
    if (b->host_memory) {
        for (int s = lo; m->b && s < hi; s++) {
            if (m->newer[s] != LG_MIRROR_DEV_NEWER) continue;
            lg_status st = m->b->copy_d2h(m->b, m->host + m->off[s], m->dev + m->off[s], m->off[s + 1] - m->off[s]);
            if (st) return st;
            m->newer[s] = LG_MIRROR_SAME;
        }
        *ptr = m->host + at;
        return LG_OK;
    }
    lg_status st = move_to(m, b);
    for (int s = lo; !st && s < hi; s++) {
        if (m->newer[s] != LG_MIRROR_HOST_NEWER) continue;
        st = b->copy_h2d(b, m->dev + m->off[s], m->host + m->off[s], m->off[s + 1] - m->off[s]);
        if (!st) m->newer[s] = LG_MIRROR_SAME;
    }
    *ptr = m->dev + at;
    return st;
}

void lg_mirror_wrote(lg_mirror *m, const lg_backend *b, size_t at, size_t bytes)
{
    if (!m->b) return; /* no device copy: the host is all there is */
    int lo, hi;
    seg_range(m, at, bytes, &lo, &hi);
    unsigned char side = b->host_memory ? LG_MIRROR_HOST_NEWER : LG_MIRROR_DEV_NEWER;
    for (int s = lo; s < hi; s++) m->newer[s] = side;
}

lg_mirror *lg_tensor_mirror_at(const lg_tensor *t, size_t *at)
{
    lg_mirror *m = lg_tensor_mirror(t);
    if (m) *at = (size_t)((const unsigned char *)lg_tensor_cdata(t) - m->host);
    return m;
}

lg_status lg_tensor_place(const lg_tensor *t, const lg_backend *b, void **ptr)
{
    size_t at = 0;
    lg_mirror *m = lg_tensor_mirror_at(t, &at);
    if (!m) {
        *ptr = (void *)lg_tensor_cdata(t);
        return LG_OK;
    }
    return lg_mirror_place(m, b, at, lg_tensor_bytes(t), ptr);
}

lg_status lg_tensor_to_host(const lg_tensor *t)
{
    void *ptr;
    lg_status st = lg_tensor_place(t, lg_backend_cpu(), &ptr);
    size_t at = 0;
    lg_mirror *m = lg_tensor_mirror_at(t, &at);
    if (!st && m) lg_mirror_wrote(m, lg_backend_cpu(), at, lg_tensor_bytes(t));
    return st;
}
