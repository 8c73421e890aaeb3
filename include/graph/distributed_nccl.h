/*
 * distributed_nccl.h — data-parallel groups whose gradients are summed on
 * the GPUs by NCCL, in libloopgrad_nccl (pkg-config loopgrad-nccl), built
 * when loopgrad was configured with CUDA and MPI and meson found NCCL
 * (nccl.h and libnccl, e.g. from the CUDA toolkit). What a group does is
 * in distributed.h; this one differs only in where the bytes move.
 *
 *     // mpirun -np 2 ./train             (one process per GPU)
 *     lg_dist *d = NULL;
 *     if (lg_dist_nccl_mpi_world(&argc, &argv, -1, &d) != LG_OK) ...  // GPU cuda:<local rank>
 *     lg_trainer_distribute(tr, d);
 *     lg_fit_opts o = lg_fit_opts_default();
 *     o.device = lg_dist_device(d);           // "cuda:<local rank>": fit must run there
 *     lg_fit(tr, train, validation, o);
 *     lg_dist_free(d);                        // NCCL's communicator, then MPI_Finalize
 *
 * Each process drives one GPU. MPI starts the processes and carries the
 * small host values: rank 0 makes the NCCL unique id and MPI_Bcasts it,
 * and the flags, losses and metrics of every step are MPI_Allreduce'd on
 * the host, as they are already there (an NCCL sum would need a device
 * buffer, two copies and a wait for the step's queue each time). The
 * gradient block is scaled where the program wrote it and summed in place
 * by ncclAllReduce(ncclSum) on the CUDA backend's stream, queued behind
 * the backward kernels and before the optimizer's update: it never comes
 * to the host, and nothing waits for it. Parameters a trainer or
 * lg_dist_broadcast_parameters copies from rank 0 go by ncclBroadcast
 * when they live in a mirrored block (then on the device), else by
 * MPI_Bcast. With 2 ranks a sum is one addition per element, so training
 * matches a local group of 2 bit for bit, as over MPI.
 *
 * Not yet run on GPUs: this engine compiles and links against the CUDA
 * toolkit's NCCL and its argument checks are tested, but no machine with
 * two GPUs has run its two-rank suite (tests/test_distributed_nccl.c,
 * which skips with fewer than two GPUs).
 *
 * Failures: NCCL errors become LG_ERR_RUNTIME naming the call and NCCL's
 * own message. Creating a group is collective: every rank checks its GPU
 * and they agree over MPI before NCCL's initialisation, so a rank without
 * a usable GPU fails every rank instead of leaving the others waiting.
 * NCCL's communicator is created non-blocking and waited for at most
 * lg_dist_nccl_opts.timeout_s (300 s by default), as is any NCCL call that
 * has not finished by the time it returns (the first sum connects the
 * ranks): past it, the communicator is aborted and the call fails, naming
 * the rank and the timeout, so a rank that joins MPI but never reaches
 * NCCL, or a network that never connects, cannot hang the others forever.
 * The ranks agree over MPI after the initialisation too, so all fail
 * together. The MPI steps themselves wait as MPI does: a rank that dies
 * ends the job under mpirun, as with MPI alone, and mpirun --timeout
 * bounds a job whose rank never calls in.
 *
 *     lg_dist_nccl_opts o = lg_dist_nccl_opts_default();
 *     o.timeout_s = 60;                      // a cluster that starts slowly wants more
 *     lg_dist_nccl_mpi_world_opts(&argc, &argv, o, &d);
 */
#ifndef LG_DISTRIBUTED_NCCL_H
#define LG_DISTRIBUTED_NCCL_H

#include <mpi.h>

#include "api.h"
#include "distributed.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* Options of a group: lg_dist_nccl_opts_default(), then set fields. */
typedef struct lg_dist_nccl_opts {
    /* The GPU this rank sums on, "cuda:<device>", or -1 (the default): the
     * GPU numbered by this process's rank among comm's processes on its
     * node (one process per GPU, the usual launch). */
    int device;
    /* The most seconds this rank waits for NCCL to create the communicator
     * (default 300), and for any later NCCL call that NCCL goes on with in
     * the background (the first sum connects the ranks). Past it, the
     * communicator is aborted, the call fails with LG_ERR_RUNTIME, and the
     * group refuses further sums on the GPU: free it. A finite number > 0. */
    double timeout_s;
} lg_dist_nccl_opts;

lg_dist_nccl_opts lg_dist_nccl_opts_default(void);

/* A group of the processes of comm (MPI must be initialised) summing on
 * GPU `device` ("cuda:<device>"), or, for device -1, on the GPU numbered
 * by this process's rank among comm's processes on its node (one process
 * per GPU, the usual launch). Collective: every rank of comm calls it
 * (each with its own device, or -1 everywhere). lg_dist_free, also collective (NCCL's
 * finalisation flushes the queued sums), destroys the NCCL communicator and
 * the duplicate of comm, not comm. Errors:
 * LG_ERR_INVALID_ARGUMENT (out NULL, MPI not initialised or finalized,
 * MPI_COMM_NULL, device < -1, the device number not present, with the
 * count), LG_ERR_UNSUPPORTED (no usable GPU or driver), LG_ERR_RUNTIME (an
 * MPI, CUDA or NCCL call failed, naming it, or another rank could not set
 * up its GPU: the ranks agree before NCCL's initialisation, so all fail
 * together; or NCCL's initialisation did not finish within the timeout,
 * naming the rank and the timeout, or failed on another rank),
 * LG_ERR_OUT_OF_MEMORY. The timeout is the default one
 * (lg_dist_nccl_opts). */
lg_status lg_dist_nccl_mpi_new(MPI_Comm comm, int device, lg_dist **out);

/* lg_dist_nccl_mpi_new with options (lg_dist_nccl_opts_default and
 * changes, by value as every options struct); every rank
 * passes the same timeout_s. LG_ERR_INVALID_ARGUMENT also for a timeout_s
 * that is not a finite number > 0. */
lg_status lg_dist_nccl_mpi_new_opts(MPI_Comm comm, lg_dist_nccl_opts opts, lg_dist **out);

/* The same on MPI_COMM_WORLD, calling MPI_Init(argc, argv) when MPI is
 * not initialised yet (argc and argv may be NULL); then lg_dist_free calls
 * MPI_Finalize. */
lg_status lg_dist_nccl_mpi_world(int *argc, char ***argv, int device, lg_dist **out);
lg_status lg_dist_nccl_mpi_world_opts(int *argc, char ***argv, lg_dist_nccl_opts opts, lg_dist **out);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
