/*
 * mpi_coll.h — the host collectives of the MPI-based engines: Open MPI's
 * (mpi.c, libloopgrad_mpi) and NCCL's (nccl.c, libloopgrad_nccl), whose
 * flags, losses and metrics are small host values summed over MPI. Private:
 * compiled into each engine's library, hidden.
 */
#ifndef LG_MPI_COLL_H
#define LG_MPI_COLL_H

#include <mpi.h>

#include "graph/distributed.h"

/* LG_ERR_RUNTIME "dist: <what> failed: <MPI's error string>". */
lg_status lg_mpi_failed(const char *what, int rc);
/* lg_dist_ops.sum and .broadcast on comm: MPI_Allreduce(MPI_SUM) in place
 * and MPI_Bcast from rank 0, in chunks of INT_MAX elements (MPI counts are
 * int). */
lg_status lg_mpi_sum(MPI_Comm comm, void *data, int64_t n, lg_dtype dt);
lg_status lg_mpi_broadcast(MPI_Comm comm, void *data, size_t bytes);
/* Whether MPI can be called: initialised and not finalized. */
bool lg_mpi_usable(void);

#endif
