/* dist.h — what a group's engine (src/dist/mpi.c) gives the core
 * (src/train/dist.c): two collectives over its processes. */
#ifndef LG_DIST_INTERNAL_H
#define LG_DIST_INTERNAL_H

#include "graph/distributed.h"

typedef struct lg_dist_ops {
    /* Sum n elements of dtype dt (f32 or f64) at data over the group's
     * processes, in place; every process ends with the same bits. */
    lg_status (*sum)(void *ctx, void *data, int64_t n, lg_dtype dt);
    /* Copy `bytes` at data from rank 0 to every process. */
    lg_status (*broadcast)(void *ctx, void *data, size_t bytes);
    void (*free)(void *ctx);
} lg_dist_ops;

/* A group of processes of which this one is `rank`, computing one share of
 * every batch; takes ctx (freed by ops->free, also on failure).
 * Errors: LG_ERR_INVALID_ARGUMENT, LG_ERR_OUT_OF_MEMORY. */
lg_status lg_dist_wrap(int rank, int size, const lg_dist_ops *ops, void *ctx, lg_dist **out);

#endif
