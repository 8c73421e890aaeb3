/*
 * cpu_pool.c — the CPU backend's worker threads (cpu_pool.h).
 *
 * A region publishes its task under `lock` and bumps `generation`; worker w
 * (1..) runs part w when w < n, then counts itself done. Workers that see no
 * new generation poll it for SPIN_NS, then sleep on `wake`; the caller runs
 * part 0, polls `done` for SPIN_NS, then sleeps on `finished`. Regions
 * of different application threads never overlap: each holds the GEMM
 * providers' one-thread pin (lg_gemm_one_begin, gemm.h) for its length, so
 * a second thread's region waits for the first's to end.
 *
 * Workers are detached and live until the process ends; a worker blocked on
 * a condition variable costs nothing. A child of fork() has none of them:
 * it starts its own at its first region (a fork while another thread is
 * inside a region waits for the region's end: gemm_openblas.c).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "backends/cpu/cpu_pool.h"
#include "backends/cpu/gemm.h"

enum { MAX_WORKERS = 64, SPIN_NS = 20000 };

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, finished;
    int n_workers;                 /* started, under lock */
    atomic_uint_fast64_t generation; /* bumped per region */
    atomic_int done;               /* workers done with this region */
    int n;                         /* parts of this region */
    lg_cpu_task task;
    void *arg;
    lg_status status; /* the first failing worker's, under lock */
    char why[1024];
    bool caller_sleeps; /* under lock: the caller waits on `finished` */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .finished = PTHREAD_COND_INITIALIZER};

static atomic_int forced;

/* This thread is running a part: a region started there would wait for
 * the one it is part of (the pin, gemm.h), so it is refused instead. */
static _Thread_local bool in_part;

static lg_status run_part(lg_cpu_task task, void *arg, int k, int n)
{
    in_part = true;
    lg_status st = task(arg, k, n);
    in_part = false;
    return st;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Poll `pred` for SPIN_NS; true when it held within that time. */
#define SPIN_UNTIL(pred)                                                       \
    ({                                                                         \
        bool ok_ = false;                                                      \
        int64_t end_ = now_ns() + SPIN_NS;                                     \
        for (int i_ = 0; !(ok_ = (pred)); i_++) {                              \
            cpu_relax();                                                       \
            if ((i_ & 63) == 63 && now_ns() > end_) break;                     \
        }                                                                      \
        ok_;                                                                   \
    })

/* The generation each worker was started at (it runs only later ones). */
static uint_fast64_t start_generation[MAX_WORKERS + 1];

static void *worker(void *p)
{
    int w = (int)(intptr_t)p;
    uint_fast64_t seen = start_generation[w];
    for (;;) {
        if (!SPIN_UNTIL(atomic_load_explicit(&pool.generation, memory_order_acquire) != seen)) {
            pthread_mutex_lock(&pool.lock);
            while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = atomic_load_explicit(&pool.generation, memory_order_acquire);
        if (w < pool.n) {
            lg_status st = run_part(pool.task, pool.arg, w, pool.n);
            if (st) {
                pthread_mutex_lock(&pool.lock);
                if (!pool.status) {
                    pool.status = st;
                    snprintf(pool.why, sizeof pool.why, "%s", lg_last_error());
                }
                pthread_mutex_unlock(&pool.lock);
            }
        }
        if (atomic_fetch_add_explicit(&pool.done, 1, memory_order_acq_rel) + 1 == pool.n_workers) {
            pthread_mutex_lock(&pool.lock);
            if (pool.caller_sleeps) pthread_cond_signal(&pool.finished);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return NULL;
}

/* Start workers until there are want of them (under lock). */
static lg_status grow(int want)
{
    while (pool.n_workers < want) {
        pthread_t t;
        pthread_attr_t a;
        start_generation[pool.n_workers + 1] = atomic_load(&pool.generation);
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int e = pthread_create(&t, &a, worker, (void *)(intptr_t)(pool.n_workers + 1));
        pthread_attr_destroy(&a);
        if (e) return lg_fail(LG_ERR_RUNTIME, "CPU worker pool: cannot start thread %d (error %d)", pool.n_workers + 1, e);
        pool.n_workers++;
    }
    return LG_OK;
}

/* In a child of fork(): no workers (a region there must not wait for the
 * parent's), and fresh synchronisation objects. */
static void forget_workers(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.finished, NULL);
    pool.n_workers = 0;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void) { pthread_atfork(NULL, NULL, forget_workers); }

static lg_status run_here(int n, lg_cpu_task task, void *arg)
{
    lg_status first = LG_OK;
    char why[1024] = "";
    for (int k = 0; k < n; k++) {
        lg_status st = run_part(task, arg, k, n);
        if (st && !first) {
            first = st;
            snprintf(why, sizeof why, "%s", lg_last_error());
        }
    }
    return first ? lg_fail(first, "%s", why) : LG_OK;
}

/* A region of n parts; when they cannot run on threads of their own, this
 * thread runs them in order (`together` false) or none of them (*ran false). */
static lg_status region(int n, lg_cpu_task task, void *arg, bool together, bool *ran)
{
    if (in_part) {
        *ran = false;
        return lg_fail(LG_ERR_RUNTIME, "CPU worker pool: a part of a region started a region of its own");
    }
    if (n > MAX_WORKERS + 1) n = MAX_WORKERS + 1;
    pthread_once(&atfork_once, register_atfork);
    lg_gemm_one_begin();
    pthread_mutex_lock(&pool.lock);
    lg_status st = n <= 1 ? LG_ERR_RUNTIME : grow(n - 1);
    if (st) { /* alone, or no threads: this thread runs every part */
        pthread_mutex_unlock(&pool.lock);
        st = together ? LG_OK : run_here(n, task, arg);
        lg_gemm_one_end();
        *ran = !together;
        return st;
    }
    *ran = true;
    pool.n = n, pool.task = task, pool.arg = arg, pool.status = LG_OK, pool.caller_sleeps = false;
    atomic_store(&pool.done, 0);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    lg_status mine = run_part(task, arg, 0, n);
    int all = pool.n_workers; /* fixed until the region ends */
    if (!SPIN_UNTIL(atomic_load_explicit(&pool.done, memory_order_acquire) == all)) {
        pthread_mutex_lock(&pool.lock);
        pool.caller_sleeps = true;
        while (atomic_load(&pool.done) != all) pthread_cond_wait(&pool.finished, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_lock(&pool.lock);
    st = mine ? mine : pool.status;
    char why[sizeof pool.why];
    snprintf(why, sizeof why, "%s", pool.why);
    pthread_mutex_unlock(&pool.lock);
    lg_gemm_one_end();
    if (!mine && st) return lg_fail(st, "%s", why);
    return st;
}

lg_status lg_cpu_parallel(int n, lg_cpu_task task, void *arg)
{
    bool ran;
    return region(n, task, arg, false, &ran);
}

lg_status lg_cpu_parallel_together(int n, lg_cpu_task task, void *arg, bool *ran)
{
    return region(n, task, arg, true, ran);
}

void lg_cpu_barrier_init(lg_cpu_barrier *b, int n)
{
    atomic_init(&b->count, 0);
    atomic_init(&b->phase, 0);
    atomic_init(&b->broken, false);
    b->n = n;
}

bool lg_cpu_barrier_wait(lg_cpu_barrier *b)
{
    int phase = atomic_load_explicit(&b->phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) + 1 == b->n) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->phase, 1, memory_order_release);
        return !atomic_load(&b->broken);
    }
    /* spin for SPIN_NS (the parts of a step are even), then let others run */
    if (!SPIN_UNTIL(atomic_load_explicit(&b->phase, memory_order_acquire) != phase || atomic_load(&b->broken)))
        while (atomic_load_explicit(&b->phase, memory_order_acquire) == phase && !atomic_load(&b->broken))
            sched_yield();
    return !atomic_load(&b->broken);
}

void lg_cpu_barrier_break(lg_cpu_barrier *b) { atomic_store(&b->broken, true); }

int lg_cpu_threads(lg_dtype dt)
{
    int f = atomic_load(&forced);
    return f > 0 ? f : lg_gemm_budget(dt);
}

void lg_cpu_threads_force(int n) { atomic_store(&forced, n > 0 ? n : 0); }

int lg_cpu_threads_forced(void) { return atomic_load(&forced); }
