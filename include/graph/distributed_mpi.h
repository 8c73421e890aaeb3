/*
 * distributed_mpi.h — data-parallel groups over MPI (Open MPI), in
 * libloopgrad_mpi (pkg-config loopgrad-mpi), built when loopgrad was
 * configured with MPI (meson option mpi, on when libopenmpi-dev is there).
 * What a group does is in distributed.h.
 *
 *     // mpirun -np 2 ./train
 *     lg_dist *d = NULL;
 *     if (lg_dist_mpi_world(&argc, &argv, &d) != LG_OK) ...   // MPI_Init if not yet done
 *     lg_trainer_distribute(tr, d);
 *     ...
 *     lg_dist_free(d);                                          // MPI_Finalize (it did MPI_Init)
 *
 * Sums are MPI_Allreduce(MPI_SUM) and the parameters' copy MPI_Bcast from
 * rank 0 on a duplicate of the communicator, so they never mix with the
 * caller's own messages. MPI errors follow the communicator's error
 * handler; MPI's default, MPI_ERRORS_ARE_FATAL, aborts every process of the
 * job, and so does a rank that dies or exits: mpirun then ends the others.
 */
#ifndef LG_DISTRIBUTED_MPI_H
#define LG_DISTRIBUTED_MPI_H

#include <mpi.h>

#include "api.h"
#include "distributed.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* A group of the processes of comm (MPI must be initialised), with rank and
 * size from comm. lg_dist_free frees the duplicate, not comm. Errors:
 * LG_ERR_INVALID_ARGUMENT (out NULL, MPI not initialised or already
 * finalized, MPI_COMM_NULL), LG_ERR_RUNTIME (an MPI call failed, with its
 * error string), LG_ERR_OUT_OF_MEMORY. */
lg_status lg_dist_mpi_new(MPI_Comm comm, lg_dist **out);

/* A group of MPI_COMM_WORLD. Calls MPI_Init(argc, argv) when MPI is not
 * initialised yet (argc and argv may be NULL), and then lg_dist_free calls
 * MPI_Finalize. Errors: those of lg_dist_mpi_new. */
lg_status lg_dist_mpi_world(int *argc, char ***argv, lg_dist **out);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
