/*
 * distributed.h — data-parallel training: replicas of a model, one per
 * process, each training on its share of every batch, their gradients
 * averaged before every optimizer step (Horovod, PyTorch DDP).
 *
 * A group (lg_dist) is a set of replicas. Groups of processes come from an
 * engine built into its own library: Open MPI in libloopgrad_mpi
 * (distributed_mpi.h, pkg-config loopgrad-mpi), when loopgrad was built
 * with it (meson option mpi), and NCCL on GPUs in libloopgrad_nccl
 * (distributed_nccl.h, meson option nccl), whose groups sum the gradient
 * block on the trainer's GPU without a copy to the host (compiled and
 * tested without a GPU here, not yet run on GPUs; a trainer of such a
 * group fits on lg_dist_device(d)). This header is the engine-free part, in the
 * core library: what a trainer does with a group, and a local group that
 * runs every replica's share in one process, in turn, and sums the shares
 * in rank order, which is the arithmetic of a 2-process group done in one.
 *
 *     lg_dist *d = NULL;
 *     lg_dist_mpi_world(&argc, &argv, &d);       // distributed_mpi.h; run under mpirun
 *     lg_trainer_distribute(tr, d);              // rank 0's parameters everywhere
 *     lg_fit_opts o = lg_fit_opts_default();
 *     o.history_csv = "history.csv";             // written by rank 0 only
 *     lg_fit(tr, train, validation, o);          // same datasets and options on every rank
 *     if (lg_dist_rank(d) == 0) lg_checkpoint_save("model.safetensors", g, opt);
 *     lg_trainer_free(tr);
 *     lg_dist_free(d);                           // finalizes MPI if it initialised it
 *
 * What a distributed trainer does, in fit and evaluate (predict stays
 * local: every rank predicts every example):
 *   - Every rank draws the same batches (the same dataset, seed and epoch
 *     give the same shuffled order), and batch k of b examples is cut into
 *     size shares of consecutive rows: share r holds rows
 *     [r*b/size, (r+1)*b/size) (integer division) and belongs to rank r.
 *     So a step over all ranks sees exactly the global batch a single
 *     process would, and the batch size set on the dataset is the global
 *     batch size (the per-rank batch is about b / size).
 *   - Each rank computes the loss and gradients of its share; the loss is
 *     taken to be a mean over the examples of the batch (as Keras's and
 *     every loss in losses are), so the share's gradient is scaled by
 *     b_r / b (its real row count over the batch's) and the scaled
 *     gradients are summed over the ranks: the gradient of the global
 *     batch's mean loss, also for a smaller last batch. Dropout masks are
 *     drawn for the global batch and each share takes its rows, as one
 *     process would. Then every rank takes the same optimizer step.
 *   - Losses and metrics in the logs, the progress bar and evaluate are
 *     sums over all ranks, so they are the global batch's numbers, and
 *     early stopping and best checkpoints decide on them alike everywhere.
 *   - Only rank 0 prints progress, writes the history CSV and saves best
 *     checkpoints (lg_fit_opts are ignored for those on other ranks). A
 *     failure on any rank (a bad label, a file that cannot be written) stops
 *     fit on every rank at the same batch or epoch: the failing rank returns
 *     its error, the others LG_ERR_RUNTIME "another replica failed".
 *   - Batch normalization normalizes with each share's own statistics (as
 *     DDP without SyncBatchNorm), so a model with batch norm trains close to,
 *     not exactly as, one process; its moving statistics are averaged over
 *     the shares (weighted by size) so replicas stay identical.
 *   - Stateful layers (lg_trainer_add_rnn_state) cannot be sharded: their
 *     states belong to batch rows, and lg_trainer_distribute refuses them.
 *
 * Exactness. With size 2 the sum of two shares is one addition, which is
 * commutative, so a 2-process group and a local group of 2 produce the same
 * bits on every rank. Against one process without shares the difference is
 * the rounding of summing a batch's gradient in two halves (about 1e-16
 * relative per step in f64). With more ranks, the engine chooses the order
 * in which shares are added, which may differ from a local group's rank
 * order. Every rank still gets the same bits, so replicas stay identical:
 * Open MPI's allreduce algorithms either sum an element once and pass the
 * result on (ring, reduce-scatter), or sum it on every rank in mirrored
 * orders that commutativity makes equal (recursive doubling). The MPI
 * standard recommends, but does not promise, this.
 *
 * Errors: every function returns a status; messages name the argument at
 * fault. Collective functions (lg_trainer_distribute,
 * lg_dist_broadcast_parameters, lg_dist_average_gradients, and fit and
 * evaluate of a distributed trainer) must be called by every rank in the
 * same order. A rank that dies or calls exit() ends the whole job under
 * mpirun (MPI's default error handler aborts); nothing waits for it forever.
 */
#ifndef LG_DISTRIBUTED_H
#define LG_DISTRIBUTED_H

#include <stdint.h>

#include "api.h"
#include "fit.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef struct lg_dist lg_dist;

/* A local group: `replicas` shares a batch, all computed by this process in
 * turn (rank 0, size replicas); a reference for a group of processes, and
 * gradient accumulation over micro-batches when memory is short.
 * Errors: LG_ERR_INVALID_ARGUMENT (replicas < 1, out NULL),
 * LG_ERR_OUT_OF_MEMORY. */
lg_status lg_dist_local_new(int replicas, lg_dist **out);

/* Ends the group (for MPI: frees its communicator, and finalizes MPI when
 * the group initialised it). NULL is fine. Free trainers using it first. */
void lg_dist_free(lg_dist *d);

/* This process's rank (0 .. size - 1; 0 for a local group) and the number of
 * replicas. 0 and 1 for NULL. */
int lg_dist_rank(const lg_dist *d);
int lg_dist_size(const lg_dist *d);

/* The device d's engine sums gradients on ("cuda:1" for NCCL), owned by d,
 * which a trainer of d must fit on (lg_fit_opts.device); NULL for host
 * engines, local groups and NULL. */
const char *lg_dist_device(const lg_dist *d);

/* Make fit and evaluate of tr data-parallel over d (see the overview), after
 * copying rank 0's values of every parameter of tr's graph, trained or not
 * (batch norm's moving statistics too), to every rank. Optimizer slots are
 * not copied: they start at zero, or load the same checkpoint everywhere. d
 * NULL makes tr a single-process trainer again. d must outlive tr's use of
 * it. Collective. Errors: LG_ERR_INVALID_ARGUMENT (tr NULL, or tr has
 * stateful layers), LG_ERR_OUT_OF_MEMORY. */
lg_status lg_trainer_distribute(lg_trainer *tr, lg_dist *d);

/* For loops of one's own: copy rank 0's parameter values of opt to every
 * rank. Collective. Errors: LG_ERR_INVALID_ARGUMENT (NULL). */
lg_status lg_dist_broadcast_parameters(lg_dist *d, lg_optimizer *opt);

/* For loops of one's own, between the gradient run and lg_optimizer_step:
 * replace opt's gradient block on every rank by the average of the ranks'
 * blocks weighted by `examples`, the rows this rank's gradient was a mean
 * over (examples / total * gradient, summed). On a local group the block is
 * already the whole batch's and stays as it is. Collective. Errors:
 * LG_ERR_INVALID_ARGUMENT (NULL, examples < 0, a total of 0). */
lg_status lg_dist_average_gradients(lg_dist *d, lg_optimizer *opt, int64_t examples);

/* ---- engines ----------------------------------------------------------------
 * What an engine (libloopgrad_mpi's Open MPI one, or one's own over another
 * transport) gives the core: two collectives over its processes. */
typedef struct lg_dist_ops {
    /* Sum n elements of dtype dt (f32 or f64) at data over the group's
     * processes, in place; every process ends with the same bits. */
    lg_status (*sum)(void *ctx, void *data, int64_t n, lg_dtype dt);
    /* Copy `bytes` at data from rank 0 to every process. */
    lg_status (*broadcast)(void *ctx, void *data, size_t bytes);
    void (*free)(void *ctx);
    /* Optional, for an engine that moves device memory (NCCL,
     * distributed_nccl.h); NULL in a host engine. device names the device
     * this process's collectives run on ("cuda:1"): a trainer of the group
     * must fit and evaluate on it (else fit fails, LG_ERR_INVALID_ARGUMENT
     * naming both devices), and the gradient block, scaled and summed where
     * it lives, never comes to the host. sum_device and broadcast_device are
     * sum and broadcast over device pointers on that device, queued on
     * `stream` (the device's queue the block was written on, a cudaStream_t
     * for CUDA) after the work queued before them; work queued after them
     * sees the result, and they need not wait for it. sum and broadcast
     * still serve the small host values (flags, losses, metrics). */
    const char *(*device)(void *ctx);
    lg_status (*sum_device)(void *ctx, void *stream, void *data, int64_t n, lg_dtype dt);
    lg_status (*broadcast_device)(void *ctx, void *stream, void *data, size_t bytes);
} lg_dist_ops;

/* A group of processes of which this one is `rank`, computing one share of
 * every batch; takes ctx (freed by ops->free, also on failure).
 * Errors: LG_ERR_INVALID_ARGUMENT (also ops with device but without
 * sum_device or broadcast_device), LG_ERR_OUT_OF_MEMORY. */
lg_status lg_dist_wrap(int rank, int size, const lg_dist_ops *ops, void *ctx, lg_dist **out);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
