/*
 * mpi.c — data-parallel groups over MPI (include/graph/distributed_mpi.h):
 * the two collectives of lg_dist_ops (include/graph/distributed.h) as MPI_Allreduce
 * and MPI_Bcast on a duplicate of the caller's communicator. Built into
 * libloopgrad_mpi only, so the core library never links MPI.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

#include "graph/distributed_mpi.h"
#include "graph/distributed.h"

typedef struct mpi_group {
    MPI_Comm comm;  /* our duplicate */
    bool finalize;  /* we called MPI_Init */
} mpi_group;

static lg_status mpi_failed(const char *what, int rc)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = 0;
    return lg_fail(LG_ERR_RUNTIME, "dist: %s failed: %s", what, len ? msg : "unknown MPI error");
}

/* MPI counts are int: long blocks go in chunks of INT_MAX elements. */
static lg_status mpi_sum(void *ctx, void *data, int64_t n, lg_dtype dt)
{
    mpi_group *m = ctx;
    MPI_Datatype t = dt == LG_F64 ? MPI_DOUBLE : MPI_FLOAT;
    for (char *p = data; n > 0;) {
        int c = n > INT_MAX ? INT_MAX : (int)n;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p, c, t, MPI_SUM, m->comm);
        if (rc != MPI_SUCCESS) return mpi_failed("MPI_Allreduce", rc);
        p += (size_t)c * lg_dtype_size(dt), n -= c;
    }
    return LG_OK;
}

static lg_status mpi_broadcast(void *ctx, void *data, size_t bytes)
{
    mpi_group *m = ctx;
    for (char *p = data; bytes > 0;) {
        int c = bytes > INT_MAX ? INT_MAX : (int)bytes;
        int rc = MPI_Bcast(p, c, MPI_BYTE, 0, m->comm);
        if (rc != MPI_SUCCESS) return mpi_failed("MPI_Bcast", rc);
        p += c, bytes -= (size_t)c;
    }
    return LG_OK;
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

static const lg_dist_ops mpi_ops = {mpi_sum, mpi_broadcast, mpi_free};

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
        return mpi_failed("MPI_Comm_dup", rc);
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
        if (rc != MPI_SUCCESS) return mpi_failed("MPI_Init", rc);
    }
    return group_new(MPI_COMM_WORLD, !init && !finalized, out);
}
