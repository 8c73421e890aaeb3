/*
 * mirror.h — a host block and its copy in a backend's memory. Private to
 * the library.
 *
 * The contiguous parameter blocks (param_block.c) and the optimizer's
 * gradient and slot blocks are mirrors: the host block is what tensors
 * borrow (lg_tensor_mirror names the mirror of a tensor's data), and a
 * program on a device reads and writes the device copy. Each segment (a
 * parameter's slice) knows which side holds its newest data, so only what
 * changed crosses: a program places the segments it reads and writes on its
 * backend (copying the stale ones over), then marks those it wrote. One
 * device at a time: placing on another first brings everything home.
 */
#ifndef LG_MIRROR_H
#define LG_MIRROR_H

#include "backends/backend.h"

typedef struct lg_mirror {
    unsigned char *host;   /* the host block (not owned) */
    size_t *off;           /* owned: n_seg + 1 byte offsets of the segments */
    int n_seg;
    const lg_backend *b;   /* the device copy's backend; NULL: none */
    unsigned char *dev;    /* the device copy (b's pointer) */
    unsigned char *newer;  /* owned, per segment: LG_MIRROR_* */
} lg_mirror;

enum { LG_MIRROR_SAME, LG_MIRROR_HOST_NEWER, LG_MIRROR_DEV_NEWER };

/* A mirror of host laid out by n_seg + 1 byte offsets (copied); no device
 * copy yet. false when out of memory. */
bool lg_mirror_init(lg_mirror *m, void *host, const size_t *off, int n_seg);
/* Frees the device copy (without bringing it home) and the arrays. */
void lg_mirror_release(lg_mirror *m);

/* Make the segments overlapping bytes [at, at + bytes) current on b (the
 * host for a host_memory backend), copying the stale ones, and set *ptr to
 * where byte `at` lives there. */
lg_status lg_mirror_place(lg_mirror *m, const lg_backend *b, size_t at, size_t bytes, void **ptr);
/* After writing bytes [at, at + bytes) on b: that side is now the newest. */
void lg_mirror_wrote(lg_mirror *m, const lg_backend *b, size_t at, size_t bytes);
/* Bring every segment home (device-newer ones copied back). */
lg_status lg_mirror_to_host(lg_mirror *m);

/* The mirror of t's data and the byte offset of its data in it; NULL when
 * t lives in no mirror. */
lg_mirror *lg_tensor_mirror_at(const lg_tensor *t, size_t *at);
/* Place t's bytes on b (lg_mirror_place) when it lives in a mirror; else
 * *ptr is its host data. */
lg_status lg_tensor_place(const lg_tensor *t, const lg_backend *b, void **ptr);
/* Bring t's bytes home and mark them host-newer (the caller may write them);
 * a no-op for a tensor in no mirror. */
lg_status lg_tensor_to_host(const lg_tensor *t);

#endif
