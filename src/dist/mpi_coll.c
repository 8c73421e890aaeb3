/*
 * mpi_coll.c — the host collectives both MPI-based engines share
 * (mpi_coll.h).
 */
#include <limits.h>

#include "dist/mpi_coll.h"

lg_status lg_mpi_failed(const char *what, int rc)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = 0;
    return lg_fail(LG_ERR_RUNTIME, "dist: %s failed: %s", what, len ? msg : "unknown MPI error");
}

lg_status lg_mpi_sum(MPI_Comm comm, void *data, int64_t n, lg_dtype dt)
{
    MPI_Datatype t = dt == LG_F64 ? MPI_DOUBLE : MPI_FLOAT;
    for (char *p = data; n > 0;) {
        int c = n > INT_MAX ? INT_MAX : (int)n;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p, c, t, MPI_SUM, comm);
        if (rc != MPI_SUCCESS) return lg_mpi_failed("MPI_Allreduce", rc);
        p += (size_t)c * lg_dtype_size(dt), n -= c;
    }
    return LG_OK;
}

lg_status lg_mpi_broadcast(MPI_Comm comm, void *data, size_t bytes)
{
    for (char *p = data; bytes > 0;) {
        int c = bytes > INT_MAX ? INT_MAX : (int)bytes;
        int rc = MPI_Bcast(p, c, MPI_BYTE, 0, comm);
        if (rc != MPI_SUCCESS) return lg_mpi_failed("MPI_Bcast", rc);
        p += c, bytes -= (size_t)c;
    }
    return LG_OK;
}

bool lg_mpi_usable(void)
{
    int init = 0, finalized = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&finalized);
    return init && !finalized;
}
