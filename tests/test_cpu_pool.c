/*
 * test_cpu_pool.c — the CPU worker pool (src/backends/cpu/cpu_pool.h): a
 * region's parts each run once, on threads of their own (one part: on the
 * calling thread); regions of two application threads run one after the
 * other; the first failing part's status and message come back; a
 * together-region of one part runs nothing; a broken barrier releases
 * every waiter; and a child of fork(), taken after the pool's workers
 * started or while another thread is inside a region, runs regions on
 * workers of its own instead of waiting for its parent's (which it does
 * not have). Parts record what they see; the
 * checks run on the test's thread.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <time.h>

#include "backends/cpu/cpu_pool.h"
#include "test_util.h"

enum { N = 4 };

typedef struct record {
    _Atomic int runs[N];
    pthread_t thread[N];
    int fail_part; /* -1: none */
    _Atomic bool bad_n;   /* a part was told another part count than N */
    lg_cpu_barrier barrier;
    _Atomic int released; /* parts whose barrier wait returned false */
} record;

static lg_status note(void *arg, int k, int n)
{
    record *r = arg;
    if (n != N || k < 0 || k >= N) {
        atomic_store(&r->bad_n, true);
        return LG_OK;
    }
    atomic_fetch_add(&r->runs[k], 1);
    r->thread[k] = pthread_self();
    if (k == r->fail_part) return lg_fail(LG_ERR_RUNTIME, "part %d of %d failed", k, n);
    return LG_OK;
}

static void nap_us(long us) { nanosleep(&(struct timespec){0, us * 1000}, NULL); }

static void ran_once(record *r)
{
    ck_assert(!atomic_load(&r->bad_n));
    for (int k = 0; k < N; k++) ck_assert_int_eq(atomic_load(&r->runs[k]), 1);
}

START_TEST(parts_run_once_on_threads_of_their_own)
{
    record r = {.fail_part = -1};
    ck_assert_int_eq(lg_cpu_parallel(N, note, &r), LG_OK);
    ran_once(&r);
    ck_assert(pthread_equal(r.thread[0], pthread_self()));
    for (int k = 1; k < N; k++) ck_assert(!pthread_equal(r.thread[k], pthread_self()));
}
END_TEST

START_TEST(a_failing_part_is_reported)
{
    for (int fail = 0; fail < N; fail += N - 1) { /* the caller's part, and a worker's */
        record r = {.fail_part = fail};
        ck_assert_int_eq(lg_cpu_parallel(N, note, &r), LG_ERR_RUNTIME);
        char want[32];
        snprintf(want, sizeof want, "part %d of %d failed", fail, N);
        ck_assert_str_eq(lg_last_error(), want);
        ran_once(&r); /* the others still ran */
    }
}
END_TEST

/* Two application threads' regions do not overlap: the second waits until
 * the first has ended, then runs on workers. Part 0 of the first region
 * holds it open for 50 ms once the second thread is about to start its
 * own (on a loaded machine it may start later: the check then shows
 * less, but cannot fail wrongly). */
typedef struct two {
    record first, second;
    _Atomic bool holding, second_started, second_done, overlapped;
    lg_status second_status;
} two;

static lg_status hold(void *arg, int k, int n)
{
    two *t = arg;
    note(&t->first, k, n);
    if (k == 0) {
        atomic_store(&t->holding, true);
        while (!atomic_load(&t->second_started)) nap_us(100);
        nap_us(50000);
        if (atomic_load(&t->second_done)) atomic_store(&t->overlapped, true);
    }
    return LG_OK;
}

static void *second_region(void *arg)
{
    two *t = arg;
    while (!atomic_load(&t->holding)) nap_us(100);
    atomic_store(&t->second_started, true);
    t->second.fail_part = N - 1;
    t->second_status = lg_cpu_parallel(N, note, &t->second);
    atomic_store(&t->second_done, true);
    return NULL;
}

START_TEST(a_second_threads_region_waits_its_turn)
{
    two t = {.first = {.fail_part = -1}};
    pthread_t second;
    ck_assert_int_eq(pthread_create(&second, NULL, second_region, &t), 0);
    ck_assert_int_eq(lg_cpu_parallel(N, hold, &t), LG_OK);
    ck_assert_int_eq(pthread_join(second, NULL), 0);
    ck_assert_msg(!atomic_load(&t.overlapped), "the second region ran inside the first");
    ck_assert_int_eq(t.second_status, LG_ERR_RUNTIME); /* its last part failed (the message is on its thread) */
    ran_once(&t.first), ran_once(&t.second);
    ck_assert(pthread_equal(t.second.thread[0], second));
    for (int k = 1; k < N; k++) ck_assert(!pthread_equal(t.second.thread[k], second));
}
END_TEST

/* A part that starts a region of its own: refused, not a hang (it would
 * wait for the region it is part of). */
static lg_status nest(void *arg, int k, int n)
{
    record *inner = (record *)arg + 1 + k;
    inner->fail_part = -1;
    bool ran = true;
    lg_status st = k % 2 ? lg_cpu_parallel(n, note, inner) : lg_cpu_parallel_together(n, note, inner, &ran);
    return st == LG_ERR_RUNTIME && ran == (k % 2 == 1) ? LG_OK : lg_fail(LG_ERR_INVALID_ARGUMENT, "part %d: %d", k, st);
}

START_TEST(a_region_inside_a_part_is_refused)
{
    record r[1 + N];
    memset(r, 0, sizeof r);
    lg_status st = lg_cpu_parallel(N, nest, r);
    ck_assert_msg(st == LG_OK, "%s", lg_last_error());
    for (int k = 0; k < N; k++)
        for (int j = 0; j < N; j++) ck_assert_int_eq(atomic_load(&r[1 + k].runs[j]), 0);
    ck_assert_int_eq(lg_cpu_parallel(N, nest, r), LG_OK); /* again: the refusals left nothing held */
    record after = {.fail_part = -1};
    ck_assert_int_eq(lg_cpu_parallel(N, note, &after), LG_OK);
    ran_once(&after);
}
END_TEST

static lg_status one_part(void *arg, int k, int n)
{
    atomic_fetch_add((_Atomic int *)arg, k == 0 && n == 1 ? 1 : 100);
    return LG_OK;
}

START_TEST(one_part_runs_here_and_never_together)
{
    _Atomic int runs = 0;
    ck_assert_int_eq(lg_cpu_parallel(1, one_part, &runs), LG_OK);
    ck_assert_int_eq(atomic_load(&runs), 1);
    bool ran = true;
    ck_assert_int_eq(lg_cpu_parallel_together(1, one_part, &runs, &ran), LG_OK);
    ck_assert(!ran);
    ck_assert_int_eq(atomic_load(&runs), 1);
}
END_TEST

/* Part N - 1 fails before the barrier and breaks it; the others, waiting
 * there, are released with false instead of waiting forever. */
static lg_status meet(void *arg, int k, int n)
{
    record *r = arg;
    note(arg, k, n);
    if (k == n - 1) {
        lg_cpu_barrier_break(&r->barrier);
        return lg_fail(LG_ERR_RUNTIME, "part %d gave up", k);
    }
    if (!lg_cpu_barrier_wait(&r->barrier)) atomic_fetch_add(&r->released, 1);
    return LG_OK;
}

START_TEST(a_broken_barrier_releases_the_waiters)
{
    record r = {.fail_part = -1};
    lg_cpu_barrier_init(&r.barrier, N);
    bool ran = false;
    ck_assert_int_eq(lg_cpu_parallel_together(N, meet, &r, &ran), LG_ERR_RUNTIME);
    ck_assert(ran);
    ck_assert_str_eq(lg_last_error(), "part 3 gave up");
    ck_assert_int_eq(atomic_load(&r.released), N - 1);
    ran_once(&r);
}
END_TEST

/* fork(), and the child runs a region: every part once, parts 1.. on
 * workers of its own. The child gets 10 s, then is killed. */
static void child_runs_a_region(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGALRM, SIG_DFL); /* not Check's handler, which kills the process group */
        alarm(10);
        record c = {.fail_part = -1};
        lg_status st = lg_cpu_parallel(N, note, &c);
        bool own = true;
        for (int k = 1; k < N; k++) own = own && atomic_load(&c.runs[k]) == 1 && !pthread_equal(c.thread[k], pthread_self());
        _exit(st == LG_OK && atomic_load(&c.runs[0]) == 1 && own ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child %s",
                  WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? "hung in its first region" : "failed");
}

/* The parent's workers started, then fork(): the child's first region must
 * start workers of its own. (Before forget_workers it waited for workers
 * that the child does not have.) */
START_TEST(a_forked_child_starts_its_own_workers)
{
    record r = {.fail_part = -1};
    ck_assert_int_eq(lg_cpu_parallel(N, note, &r), LG_OK);
    child_runs_a_region();
}
END_TEST

/* fork() while another thread is inside a region: the fork waits for the
 * region's end (gemm_openblas.c's atfork handlers), so the child's first
 * region finds the GEMM pin free. (Before, the child waited forever for a
 * pin held by a thread it did not have.) */
typedef struct busy_region {
    record r;
    _Atomic bool started;
} busy_region;

static lg_status linger(void *arg, int k, int n)
{
    busy_region *b = arg;
    note(&b->r, k, n);
    if (k == 0) {
        atomic_store(&b->started, true);
        nap_us(100000);
    }
    return LG_OK;
}

static void *run_lingering(void *arg)
{
    busy_region *b = arg;
    lg_status st = lg_cpu_parallel(N, linger, b);
    return st == LG_OK ? arg : NULL;
}

START_TEST(a_fork_during_a_region_waits_for_it)
{
    busy_region b = {.r = {.fail_part = -1}};
    pthread_t other;
    ck_assert_int_eq(pthread_create(&other, NULL, run_lingering, &b), 0);
    while (!atomic_load(&b.started)) nap_us(100);
    child_runs_a_region();
    void *ok = NULL;
    ck_assert_int_eq(pthread_join(other, &ok), 0);
    ck_assert_ptr_nonnull(ok);
    ran_once(&b.r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cpu_pool");
    TCase *tc = tcase_create("pool");
    tcase_add_test(tc, parts_run_once_on_threads_of_their_own);
    tcase_add_test(tc, a_failing_part_is_reported);
    tcase_add_test(tc, a_second_threads_region_waits_its_turn);
    tcase_add_test(tc, a_region_inside_a_part_is_refused);
    tcase_add_test(tc, one_part_runs_here_and_never_together);
    tcase_add_test(tc, a_broken_barrier_releases_the_waiters);
    tcase_add_test(tc, a_forked_child_starts_its_own_workers);
    tcase_add_test(tc, a_fork_during_a_region_waits_for_it);
    suite_add_tcase(s, tc);
    return lg_check_run(s);
}
