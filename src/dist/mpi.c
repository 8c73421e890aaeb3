/*
 * mpi.c — data-parallel groups over MPI (include/graph/distributed_mpi.h):
 * the two collectives of lg_dist_ops (include/graph/distributed.h) as MPI_Allreduce
 * and MPI_Bcast on a duplicate of the caller's communicator (mpi_coll.c).
 * Built into libloopgrad_mpi only, so the core library never links MPI.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "dist/mpi_coll.h"
#include "graph/distributed_mpi.h"

typedef struct mpi_group {
    MPI_Comm comm;  /* our duplicate */
    bool finalize;  /* we called MPI_Init */
} mpi_group;

static lg_status mpi_sum(void *ctx, void *data, int64_t n, lg_dtype dt)
{
    return lg_mpi_sum(((mpi_group *)ctx)->comm, data, n, dt);
}

static lg_status mpi_broadcast(void *ctx, void *data, size_t bytes)
{
    return lg_mpi_broadcast(((mpi_group *)ctx)->comm, data, bytes);
}

static void mpi_free(void *ctx)
{
    mpi_group *m = ctx;
    int finalized = 1;
    MPI_Finalized(&finalized);
    if (!finalized) {
        MPI_Comm_free(&m->comm);
        if (m->finalize) MPI_Finalize();
    }
    free(m);
}

static const lg_dist_ops mpi_ops = {.sum = mpi_sum, .broadcast = mpi_broadcast, .free = mpi_free};

static lg_status group_new(MPI_Comm comm, bool finalize, lg_dist **out)
{
    if (out) *out = NULL;
    int init = 0, finalized = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&finalized);
    if (!out || !init || finalized || comm == MPI_COMM_NULL)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "dist_mpi_new: %s", !out ? "out is NULL"
                       : !init ? "MPI is not initialised (MPI_Init, or use lg_dist_mpi_world)"
                       : finalized ? "MPI is finalized" : "the communicator is MPI_COMM_NULL");
    mpi_group *m = malloc(sizeof *m);
    if (!m) return lg_fail(LG_ERR_OUT_OF_MEMORY, "dist_mpi_new: out of memory");
    m->finalize = finalize;
    int rank = 0, size = 0, rc = MPI_Comm_dup(comm, &m->comm);
    if (rc != MPI_SUCCESS) {
        free(m);
        return lg_mpi_failed("MPI_Comm_dup", rc);
    }
    MPI_Comm_rank(m->comm, &rank);
    MPI_Comm_size(m->comm, &size);
    return lg_dist_wrap(rank, size, &mpi_ops, m, out);
}

lg_status lg_dist_mpi_new(MPI_Comm comm, lg_dist **out) { return group_new(comm, false, out); }

lg_status lg_dist_mpi_world(int *argc, char ***argv, lg_dist **out)
{
    int init = 0, finalized = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&finalized);
    if (!init && !finalized) {
        int rc = MPI_Init(argc, argv);
        if (rc != MPI_SUCCESS) return lg_mpi_failed("MPI_Init", rc);
    }
    return group_new(MPI_COMM_WORLD, !init && !finalized, out);
}
