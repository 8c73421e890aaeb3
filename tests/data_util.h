/*
 * data_util.h — what the data suites share (test_idx.c, test_csv.c,
 * test_dataset.c, test_timeseries.c, test_preprocess.c, test_synthetic.c):
 * status assertions, a fresh temporary directory per test for the files
 * they write, and tensor checks.
 */
#ifndef LG_TEST_DATA_UTIL_H
#define LG_TEST_DATA_UTIL_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "graph/datafiles.h"
#include "graph/dataset.h"
#include "graph/loopgrad.h"
#include "graph/preprocess.h"
#include "graph/synthetic.h"

#define ELNINO_CSV LG_TEST_DATA_DIR "/../../data/elnino.csv"

/* The call fails with code and a message containing sub. */
#define ASSERT_FAILS(call, code, sub)                                                                                  \
    do {                                                                                                               \
        lg_status s_ = (call);                                                                                         \
        ck_assert_msg(s_ == (code), "%s: got %s (%s)", #call, lg_status_name(s_), lg_last_error());                    \
        ck_assert_msg(strstr(lg_last_error(), (sub)) != NULL, "message \"%s\" lacks \"%s\"", lg_last_error(), (sub));  \
    } while (0)

#define ASSERT_OK(call)                                                                                                \
    do {                                                                                                               \
        lg_status s_ = (call);                                                                                         \
        ck_assert_msg(s_ == LG_OK, "%s: %s: %s", #call, lg_status_name(s_), lg_last_error());                          \
    } while (0)

/* ---- temporary files ----------------------------------------------------------- */

static char tmpdir[64];
static char *tmpfiles[32];
static int n_tmpfiles;

static inline void tmp_setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lg_test_data_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    n_tmpfiles = 0;
}

static inline void tmp_teardown(void)
{
    for (int i = 0; i < n_tmpfiles; i++) {
        unlink(tmpfiles[i]);
        free(tmpfiles[i]);
    }
    rmdir(tmpdir);
}

/* Write bytes to tmpdir/name; returns the path (freed at teardown). */
static inline const char *write_file(const char *name, const void *bytes, size_t n)
{
    ck_assert_int_lt(n_tmpfiles, (int)(sizeof tmpfiles / sizeof tmpfiles[0]));
    char *path = malloc(strlen(tmpdir) + strlen(name) + 2);
    ck_assert_ptr_nonnull(path);
    sprintf(path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    tmpfiles[n_tmpfiles++] = path;
    return path;
}

static inline const char *write_text(const char *name, const char *text) { return write_file(name, text, strlen(text)); }

/* A named pipe tmpdir/name with no writer (removed at teardown). Reading it
 * would block forever, so the caller arms an alarm. */
static inline const char *make_fifo(const char *name)
{
    ck_assert_int_lt(n_tmpfiles, (int)(sizeof tmpfiles / sizeof tmpfiles[0]));
    char *path = malloc(strlen(tmpdir) + strlen(name) + 2);
    ck_assert_ptr_nonnull(path);
    sprintf(path, "%s/%s", tmpdir, name);
    ck_assert_msg(mkfifo(path, 0600) == 0, "mkfifo %s: %s", path, strerror(errno));
    tmpfiles[n_tmpfiles++] = path;
    return path;
}

static inline void assert_shape(const lg_tensor *t, lg_shape want)
{
    char a[64], b[64];
    ck_assert_msg(lg_shape_equal(lg_tensor_shape(t), want), "shape %s, expected %s",
                  lg_shape_str(lg_tensor_shape(t), a, sizeof a), lg_shape_str(want, b, sizeof b));
}

static inline void assert_values(const lg_tensor *t, const double *want, int n)
{
    ck_assert_int_eq(lg_tensor_numel(t), n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(lg_tensor_get(t, i) == want[i], "element %d: %g, expected %g", i, lg_tensor_get(t, i), want[i]);
}

#endif
