/*
 * cpu_pool.h — the CPU backend's own worker threads, for kernels that split
 * their work into independent parts (the fused RNN's batch rows). Private to
 * the library.
 *
 * One pool per process, grown on first use to the parts asked for. Workers
 * wait on a condition variable; after a part they poll for the next one for
 * a few microseconds only (two back-to-back regions of one kernel), so
 * nothing of this pool spins between kernels or after one.
 *
 * GEMMs inside a region run on one thread each (lg_gemm_*_one in gemm.h):
 * lg_cpu_parallel pins the providers to one thread around the region, so the
 * parts' GEMMs neither switch OpenBLAS's thread count nor wake its pool.
 */
#ifndef LG_CPU_POOL_H
#define LG_CPU_POOL_H

#include "graph/internal.h"

/* One part of a region: part k of n (k = 0 runs on the calling thread).
 * Returns LG_OK or a status whose message it recorded. */
typedef lg_status (*lg_cpu_task)(void *arg, int k, int n);

/* Run task(arg, k, n) for k = 0..n-1 and return when every part has: the
 * first failing part's status (the others still run), LG_OK otherwise.
 * When n is 1 or a worker cannot be started, the calling thread runs the
 * parts itself, in order: a part must not depend on which thread runs it,
 * and must not start a region itself (that region fails with LG_ERR_RUNTIME
 * and runs nothing). A region on another application thread waits until
 * this one has ended. */
lg_status lg_cpu_parallel(int n, lg_cpu_task task, void *arg);

/* As lg_cpu_parallel, but only when the n parts run at once, each on its
 * own thread, so that they may wait for each other (lg_cpu_barrier): then
 * *ran is true. When they cannot (n is 1, a worker cannot be started)
 * nothing runs, *ran is false and LG_OK returns. */
lg_status lg_cpu_parallel_together(int n, lg_cpu_task task, void *arg, bool *ran);

/* A barrier for the n parts of one lg_cpu_parallel_together region: each
 * wait returns when all n parts have called it as often. Waiters spin
 * briefly, then yield the CPU. A part that fails calls lg_cpu_barrier_break
 * before it returns; every wait then returns false at once. */
typedef struct lg_cpu_barrier {
    _Atomic int count, phase;
    _Atomic bool broken;
    int n;
} lg_cpu_barrier;

void lg_cpu_barrier_init(lg_cpu_barrier *b, int n);
bool lg_cpu_barrier_wait(lg_cpu_barrier *b);
void lg_cpu_barrier_break(lg_cpu_barrier *b);

/* Parts a kernel may split into: the GEMM thread budget for dt (gemm.c:
 * LG_NUM_THREADS, or the provider's own setting), unless a test set
 * lg_cpu_threads_force. */
int lg_cpu_threads(lg_dtype dt);

/* Tests: n > 0 makes every splittable kernel use exactly n parts, whatever
 * its size; 0 restores the budget and the kernels' own thresholds. */
void lg_cpu_threads_force(int n);
int lg_cpu_threads_forced(void); /* the forced count, or 0 */

#endif
