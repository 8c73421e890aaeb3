/*
 * qr.h — the Q of a QR decomposition on the CPU (LAPACK's Householder QR in
 * OpenBLAS), for the orthogonal initializer (src/nn/cells.c). Private to
 * the library.
 */
#ifndef LG_CPU_QR_H
#define LG_CPU_QR_H

#include <stdbool.h>
#include <stdint.h>

#include "graph/status.h"

/* The m x n (m >= n) column-major q (column j at q + j m) replaced by the
 * Q of its thin QR, each column times the sign of R's diagonal (so R's
 * diagonal is positive, as Keras makes it); *full_rank false when R has a
 * zero on its diagonal. OpenBLAS runs it on one thread, whatever its pool:
 * its threaded QR gave other bits at another thread count, and initial
 * weights must not depend on that. LG_ERR_SHAPE past LAPACK's int,
 * LG_ERR_OUT_OF_MEMORY, LG_ERR_RUNTIME when LAPACK reports an error. */
lg_status lg_cpu_qr_q(double *q, int64_t m, int64_t n, bool *full_rank);

#endif
