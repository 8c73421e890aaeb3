/*
 * nccl.c — data-parallel groups whose gradient sums run on the GPUs
 * (include/graph/distributed_nccl.h): lg_dist_ops's device collectives as
 * ncclAllReduce and ncclBroadcast on the stream the core passes (the CUDA
 * backend's), its host collectives over MPI (mpi_coll.c). Built into
 * libloopgrad_nccl only, so neither the core nor libloopgrad_mpi links
 * NCCL or the CUDA runtime.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "dist/mpi_coll.h"
#include "graph/distributed_nccl.h"

typedef struct nccl_group {
    MPI_Comm comm;   /* our duplicate: the unique id and the host sums */
    ncclComm_t nccl; /* NULL until NCCL's initialisation succeeded */
    char name[24];   /* "cuda:<device>" */
    bool finalize;   /* we called MPI_Init */
} nccl_group;

static lg_status nccl_failed(const nccl_group *g, const char *what, ncclResult_t r)
{
    const char *last = ncclGetLastError(g->nccl);
    return lg_fail(LG_ERR_RUNTIME, "dist: %s on %s failed: %s%s%s", what, g->name, ncclGetErrorString(r),
                   last && *last ? ": " : "", last ? last : "");
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
    ncclResult_t r = ncclAllReduce(data, data, (size_t)n, dt == LG_F64 ? ncclDouble : ncclFloat, ncclSum, g->nccl,
                                   (cudaStream_t)stream);
    return r == ncclSuccess ? LG_OK : nccl_failed(g, "ncclAllReduce", r);
}

static lg_status device_broadcast(void *ctx, void *stream, void *data, size_t bytes)
{
    nccl_group *g = ctx;
    ncclResult_t r = ncclBroadcast(data, data, bytes, ncclUint8, 0, g->nccl, (cudaStream_t)stream);
    return r == ncclSuccess ? LG_OK : nccl_failed(g, "ncclBroadcast", r);
}

/* Ends NCCL's communicator (its queued work flushed) and our duplicate of
 * the MPI one, and MPI itself when `finalize`. */
static void release(nccl_group *g, bool finalize)
{
    if (g->nccl) {
        ncclCommFinalize(g->nccl);
        ncclCommDestroy(g->nccl);
    }
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

/* Every rank's GPU checked and the unique id made before NCCL's
 * initialisation, which waits for all ranks: a rank that cannot get there
 * fails every rank instead. */
static lg_status init_nccl(nccl_group *g, int rank, int size, int device)
{
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    lg_status s = use_device(device);
    if (!s && rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) s = nccl_failed(g, "ncclGetUniqueId", r);
    }
    int bad = s != LG_OK, any = bad;
    int rc = MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, g->comm);
    if (s) return s;
    if (rc != MPI_SUCCESS) return lg_mpi_failed("MPI_Allreduce", rc);
    if (any)
        return lg_fail(LG_ERR_RUNTIME, "dist_nccl_mpi_new: another rank could not set up its GPU (its own message says why)");
    s = lg_mpi_broadcast(g->comm, &id, sizeof id);
    if (s) return s;
    ncclComm_t comm = NULL;
    ncclResult_t r = ncclCommInitRank(&comm, size, id, rank);
    if (r != ncclSuccess) return nccl_failed(g, "ncclCommInitRank", r);
    g->nccl = comm;
    return LG_OK;
}

static lg_status group_new(MPI_Comm comm, int device, bool finalize, lg_dist **out)
{
    if (out) *out = NULL;
    bool usable = lg_mpi_usable();
    if (!out || !usable || comm == MPI_COMM_NULL || device < -1)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "dist_nccl_mpi_new: %s", !out ? "out is NULL"
                       : !usable ? "MPI is not initialised or is finalized (MPI_Init, or use lg_dist_nccl_mpi_world)"
                       : comm == MPI_COMM_NULL ? "the communicator is MPI_COMM_NULL"
                       : "device must be >= 0, or -1 for the rank on this node");
    nccl_group *g = calloc(1, sizeof *g);
    if (!g) return lg_fail(LG_ERR_OUT_OF_MEMORY, "dist_nccl_mpi_new: out of memory");
    g->finalize = finalize;
    int rank = 0, size = 0, local = 0, rc = MPI_Comm_dup(comm, &g->comm);
    if (rc != MPI_SUCCESS) {
        free(g);
        return lg_mpi_failed("MPI_Comm_dup", rc);
    }
    MPI_Comm_rank(g->comm, &rank);
    MPI_Comm_size(g->comm, &size);
    lg_status s = node_rank(g->comm, rank, &local); /* on every rank, whatever its device argument */
    if (device < 0) device = local;
    snprintf(g->name, sizeof g->name, "cuda:%d", device);
    if (!s) s = init_nccl(g, rank, size, device);
    if (s) {
        release(g, false); /* MPI stays up, as after lg_dist_mpi_world's failures */
        return s;
    }
    return lg_dist_wrap(rank, size, &nccl_ops, g, out);
}

lg_status lg_dist_nccl_mpi_new(MPI_Comm comm, int device, lg_dist **out) { return group_new(comm, device, false, out); }

lg_status lg_dist_nccl_mpi_world(int *argc, char ***argv, int device, lg_dist **out)
{
    int init = 0, finalized = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&finalized);
    if (!init && !finalized) {
        int rc = MPI_Init(argc, argv);
        if (rc != MPI_SUCCESS) return lg_mpi_failed("MPI_Init", rc);
    }
    return group_new(MPI_COMM_WORLD, device, !init && !finalized, out);
}
