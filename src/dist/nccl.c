/*
 * nccl.c — data-parallel groups whose gradient sums run on the GPUs
 * (include/graph/distributed_nccl.h): lg_dist_ops's device collectives as
 * ncclAllReduce and ncclBroadcast on the stream the core passes (the CUDA
 * backend's), its host collectives over MPI (mpi_coll.c). Built into
 * libloopgrad_nccl only, so neither the core nor libloopgrad_mpi links
 * NCCL or the CUDA runtime.
 *
 * The NCCL communicator is non-blocking (ncclConfig_t.blocking = 0): its
 * creation and any later call may return ncclInProgress and go on in the
 * background, and settle() polls its state with the group's timeout, so a
 * rank that never joins cannot hang the others forever.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "dist/mpi_coll.h"
#include "graph/distributed_nccl.h"

typedef struct nccl_group {
    MPI_Comm comm;    /* our duplicate: the unique id and the host sums */
    ncclComm_t nccl;  /* NULL before NCCL's initialisation, and once aborted */
    bool aborted;     /* a wait for NCCL ran out of time: the group is unusable */
    double timeout_s; /* lg_dist_nccl_opts.timeout_s */
    int rank, size;
    char name[24];    /* "cuda:<device>" */
    bool finalize;    /* we called MPI_Init */
} nccl_group;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* NCCL's final answer to a call on g's communicator that answered r: while
 * the state is ncclInProgress, poll it (every millisecond) for at most
 * g->timeout_s; then abort the communicator (g->nccl NULL, g->aborted) and
 * answer ncclInProgress. */
static ncclResult_t settle(nccl_group *g, ncclResult_t r)
{
    double deadline = now_s() + g->timeout_s;
    while (r == ncclInProgress) {
        if (now_s() > deadline) {
            ncclCommAbort(g->nccl);
            g->nccl = NULL;
            g->aborted = true;
            return ncclInProgress;
        }
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        ncclResult_t q = ncclCommGetAsyncError(g->nccl, &r);
        if (q != ncclSuccess) r = q;
    }
    return r;
}

static lg_status nccl_failed(const nccl_group *g, const char *what, ncclResult_t r)
{
    if (r == ncclInProgress)
        return lg_fail(LG_ERR_RUNTIME, "dist: %s on %s (rank %d of %d) did not finish within %g s "
                       "(lg_dist_nccl_opts.timeout_s): a rank never joined or stopped answering; NCCL's communicator "
                       "was aborted", what, g->name, g->rank, g->size, g->timeout_s);
    const char *last = ncclGetLastError(g->nccl);
    return lg_fail(LG_ERR_RUNTIME, "dist: %s on %s failed: %s%s%s", what, g->name, ncclGetErrorString(r),
                   last && *last ? ": " : "", last ? last : "");
}

/* The status of NCCL call `what` on g's communicator, which answered r,
 * once NCCL has finished it (settle). */
static lg_status nccl_call(nccl_group *g, const char *what, ncclResult_t r)
{
    r = settle(g, r);
    return r == ncclSuccess ? LG_OK : nccl_failed(g, what, r);
}

/* A group whose communicator was aborted after a timeout refuses work. */
static lg_status usable(const nccl_group *g, const char *what)
{
    if (!g->aborted) return LG_OK;
    return lg_fail(LG_ERR_RUNTIME, "dist: %s on %s (rank %d of %d): NCCL's communicator was aborted after a timeout; "
                   "free the group", what, g->name, g->rank, g->size);
}

static lg_status host_sum(void *ctx, void *data, int64_t n, lg_dtype dt)
{
    return lg_mpi_sum(((nccl_group *)ctx)->comm, data, n, dt);
}

static lg_status host_broadcast(void *ctx, void *data, size_t bytes)
{
    return lg_mpi_broadcast(((nccl_group *)ctx)->comm, data, bytes);
}

static const char *device_of(void *ctx) { return ((nccl_group *)ctx)->name; }

static lg_status device_sum(void *ctx, void *stream, void *data, int64_t n, lg_dtype dt)
{
    nccl_group *g = ctx;
    lg_status s = usable(g, "ncclAllReduce");
    if (s) return s;
    return nccl_call(g, "ncclAllReduce", ncclAllReduce(data, data, (size_t)n, dt == LG_F64 ? ncclDouble : ncclFloat,
                                                       ncclSum, g->nccl, (cudaStream_t)stream));
}

static lg_status device_broadcast(void *ctx, void *stream, void *data, size_t bytes)
{
    nccl_group *g = ctx;
    lg_status s = usable(g, "ncclBroadcast");
    if (s) return s;
    return nccl_call(g, "ncclBroadcast",
                     ncclBroadcast(data, data, bytes, ncclUint8, 0, g->nccl, (cudaStream_t)stream));
}

/* Ends NCCL's communicator (its queued work flushed; aborted instead when
 * that does not finish in time) and our duplicate of the MPI one, and MPI
 * itself when `finalize`. */
static void release(nccl_group *g, bool finalize)
{
    if (g->nccl && settle(g, ncclCommFinalize(g->nccl)) != ncclInProgress) ncclCommDestroy(g->nccl);
    if (lg_mpi_usable()) {
        MPI_Comm_free(&g->comm);
        if (finalize) MPI_Finalize();
    }
    free(g);
}

static void group_free(void *ctx)
{
    nccl_group *g = ctx;
    release(g, g->finalize);
}

static const lg_dist_ops nccl_ops = {
    .sum = host_sum, .broadcast = host_broadcast, .free = group_free,
    .device = device_of, .sum_device = device_sum, .broadcast_device = device_broadcast,
};

/* This process's rank among comm's processes on its node (collective). */
static lg_status node_rank(MPI_Comm comm, int rank, int *out)
{
    MPI_Comm node;
    int rc = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS) return lg_mpi_failed("MPI_Comm_split_type", rc);
    MPI_Comm_rank(node, out);
    MPI_Comm_free(&node);
    return LG_OK;
}

/* Make GPU `device` current for NCCL's initialisation. */
static lg_status use_device(int device)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        return lg_fail(LG_ERR_UNSUPPORTED, "dist_nccl_mpi_new: no usable GPU on this node (cudaGetDeviceCount: %s)",
                       e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    if (device >= count)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "dist_nccl_mpi_new: device cuda:%d is not present (%d GPU(s) here)",
                       device, count);
    e = cudaSetDevice(device);
    if (e != cudaSuccess)
        return lg_fail(LG_ERR_RUNTIME, "dist_nccl_mpi_new: cudaSetDevice(%d) failed: %s", device,
                       cudaGetErrorString(e));
    return LG_OK;
}

/* Whether any rank of g's communicator says `bad` (collective). */
static lg_status any_rank(nccl_group *g, bool bad, bool *any)
{
    int mine = bad, all = mine;
    int rc = MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MAX, g->comm);
    *any = all != 0;
    return rc == MPI_SUCCESS ? LG_OK : lg_mpi_failed("MPI_Allreduce", rc);
}

/* Every rank's GPU checked and the unique id made before NCCL's
 * initialisation, which waits for all ranks: a rank that cannot get there
 * fails every rank instead. The initialisation is non-blocking and waited
 * for at most g->timeout_s; the ranks agree after it too, so that none
 * keeps a communicator whose peers gave up on theirs. */
static lg_status init_nccl(nccl_group *g, int device)
{
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    lg_status s = use_device(device);
    if (!s && g->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) s = nccl_failed(g, "ncclGetUniqueId", r);
    }
    bool any = false;
    lg_status agreed = any_rank(g, s != LG_OK, &any);
    if (s || agreed) return s ? s : agreed;
    if (any)
        return lg_fail(LG_ERR_RUNTIME, "dist_nccl_mpi_new: another rank could not set up its GPU (its own message says why)");
    s = lg_mpi_broadcast(g->comm, &id, sizeof id);
    if (s) return s;
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    s = nccl_call(g, "ncclCommInitRankConfig", ncclCommInitRankConfig(&g->nccl, g->size, id, g->rank, &config));
    agreed = any_rank(g, s != LG_OK, &any);
    if (!s && !agreed && any)
        s = lg_fail(LG_ERR_RUNTIME, "dist_nccl_mpi_new: another rank could not create NCCL's communicator (its own "
                    "message says why)");
    if ((s || agreed) && g->nccl) { /* peers are gone or going: nothing to flush */
        ncclCommAbort(g->nccl);
        g->nccl = NULL;
    }
    return s ? s : agreed;
}

lg_dist_nccl_opts lg_dist_nccl_opts_default(void) { return (lg_dist_nccl_opts){.device = -1, .timeout_s = 300}; }

static lg_status group_new(MPI_Comm comm, lg_dist_nccl_opts o, bool finalize, lg_dist **out)
{
    if (out) *out = NULL;
    bool usable_mpi = lg_mpi_usable();
    if (!out || !usable_mpi || comm == MPI_COMM_NULL || o.device < -1)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "dist_nccl_mpi_new: %s", !out ? "out is NULL"
                       : !usable_mpi ? "MPI is not initialised or is finalized (MPI_Init, or use lg_dist_nccl_mpi_world)"
                       : comm == MPI_COMM_NULL ? "the communicator is MPI_COMM_NULL"
                       : "device must be >= 0, or -1 for the rank on this node");
    if (!(isfinite(o.timeout_s) && o.timeout_s > 0))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "dist_nccl_mpi_new: timeout_s is %g; it must be a finite number of "
                       "seconds > 0", o.timeout_s);
    nccl_group *g = calloc(1, sizeof *g);
    if (!g) return lg_fail(LG_ERR_OUT_OF_MEMORY, "dist_nccl_mpi_new: out of memory");
    g->finalize = finalize;
    g->timeout_s = o.timeout_s;
    int local = 0, rc = MPI_Comm_dup(comm, &g->comm);
    if (rc != MPI_SUCCESS) {
        free(g);
        return lg_mpi_failed("MPI_Comm_dup", rc);
    }
    MPI_Comm_rank(g->comm, &g->rank);
    MPI_Comm_size(g->comm, &g->size);
    lg_status s = node_rank(g->comm, g->rank, &local); /* on every rank, whatever its device argument */
    int device = o.device < 0 ? local : o.device;
    snprintf(g->name, sizeof g->name, "cuda:%d", device);
    if (!s) s = init_nccl(g, device);
    if (s) {
        release(g, false); /* MPI stays up, as after lg_dist_mpi_world's failures */
        return s;
    }
    return lg_dist_wrap(g->rank, g->size, &nccl_ops, g, out);
}

lg_status lg_dist_nccl_mpi_new_opts(MPI_Comm comm, lg_dist_nccl_opts opts, lg_dist **out)
{
    return group_new(comm, opts, false, out);
}

lg_status lg_dist_nccl_mpi_new(MPI_Comm comm, int device, lg_dist **out)
{
    lg_dist_nccl_opts o = lg_dist_nccl_opts_default();
    o.device = device;
    return group_new(comm, o, false, out);
}

lg_status lg_dist_nccl_mpi_world_opts(int *argc, char ***argv, lg_dist_nccl_opts opts, lg_dist **out)
{
    int init = 0, finalized = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&finalized);
    if (!init && !finalized) {
        int rc = MPI_Init(argc, argv);
        if (rc != MPI_SUCCESS) return lg_mpi_failed("MPI_Init", rc);
    }
    return group_new(MPI_COMM_WORLD, opts, !init && !finalized, out);
}

lg_status lg_dist_nccl_mpi_world(int *argc, char ***argv, int device, lg_dist **out)
{
    lg_dist_nccl_opts o = lg_dist_nccl_opts_default();
    o.device = device;
    return lg_dist_nccl_mpi_world_opts(argc, argv, o, out);
}
