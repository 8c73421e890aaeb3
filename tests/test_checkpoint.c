/*
 * test_checkpoint.c — safetensors files and checkpoints (checkpoint.h)
 * through the public API: the exact bytes written, round trips of tensors
 * and of graphs' parameters and optimizer state, a table of broken files
 * (parsed from memory and opened from disk), atomic writes that leave the
 * old file alone on failure, loads that change nothing unless everything
 * fits, and PyTorch nn.LSTM / nn.GRU / nn.RNN weights
 * (fixtures/torch_rnn.safetensors, made by make_torch_checkpoint.py) run in
 * loopgrad's layers against PyTorch's outputs (fixtures/torch_rnn.txt).
 */
#define _DEFAULT_SOURCE /* mkdtemp, DT_DIR */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "graph/checkpoint.h"
#include "graph/loopgrad.h"
#include "graph/optim.h"

#define TORCH_FILE LG_TEST_DATA_DIR "/torch_rnn.safetensors"
#define TORCH_OUTPUTS LG_TEST_DATA_DIR "/torch_rnn.txt"

/* ---- a scratch directory per test ------------------------------------------------ */

static char dir[256];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/lg_ckpt_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Removes dir and what is in it (files and empty directories). */
static void teardown(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (remove(p) != 0) rmdir(p);
        }
    closedir(d);
    rmdir(dir);
}

static const char *path_in(const char *name)
{
    static char ring[4][512];
    static int next;
    char *p = ring[next++ % 4];
    snprintf(p, sizeof ring[0], "%s/%s", dir, name);
    return p;
}

/* Entries of dir (besides . and ..). */
static int dir_entries(void)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert(fwrite(b, 1, n, f) == n);
    fclose(f);
}

static void assert_status(lg_status got, lg_status want, const char *msg_part)
{
    ck_assert_msg(got == want, "got %s (%s), want %s", lg_status_name(got), lg_last_error(), lg_status_name(want));
    if (msg_part)
        ck_assert_msg(strstr(lg_last_error(), msg_part), "message '%s' lacks '%s'", lg_last_error(), msg_part);
}

static void assert_tensors_equal(const lg_tensor *a, const lg_tensor *b)
{
    ck_assert_int_eq(lg_tensor_dtype(a), lg_tensor_dtype(b));
    ck_assert(lg_shape_equal(lg_tensor_shape(a), lg_tensor_shape(b)));
    ck_assert(lg_tensor_bytes(a) == 0 || memcmp(lg_tensor_cdata(a), lg_tensor_cdata(b), lg_tensor_bytes(a)) == 0);
}

/* ---- safetensors files ------------------------------------------------------------- */

/* The bytes of a small file, against the format: the length, the header
 * text (padded with spaces to 8), and each tensor's bytes in order. */
START_TEST(test_save_bytes)
{
    const float a[2] = {1.5f, -2};
    const int32_t b[3] = {7, -8, 9};
    lg_tensor *t[2] = {lg_test_tensor(LG_F32, lg_shape_of(2, 1, 2), a), lg_test_tensor(LG_I32, lg_shape_of(1, 3), b)};
    const char *names[2] = {"w", "idx"};
    ck_assert_int_eq(lg_safetensors_save(path_in("x.safetensors"), names, t, 2), LG_OK);
    size_t len;
    unsigned char *f = read_file(path_in("x.safetensors"), &len);
    const char *want = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                       "\"idx\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[8,20]}}";
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | f[i];
    ck_assert_uint_eq(n % 8, 0);
    ck_assert_uint_eq(n, (strlen(want) + 7) / 8 * 8);
    ck_assert(memcmp(f + 8, want, strlen(want)) == 0);
    for (size_t i = 8 + strlen(want); i < 8 + n; i++) ck_assert_int_eq(f[i], ' ');
    ck_assert_uint_eq(len, 8 + n + 20);
    ck_assert(memcmp(f + 8 + n, a, 8) == 0 && memcmp(f + 8 + n + 8, b, 12) == 0);
    struct stat st;
    ck_assert_int_eq(stat(path_in("x.safetensors"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    ck_assert_int_eq(dir_entries(), 1); /* no temporary file left */
    free(f);
    lg_tensor_free(t[0]), lg_tensor_free(t[1]);
}
END_TEST

/* Every dtype, ranks 0 to 6, a [1], an empty tensor: saved, opened and read
 * back with the same names, order, dtypes, shapes and bytes. */
START_TEST(test_round_trip_tensors)
{
    enum { N = 7 };
    const char *names[N] = {"f32/matrix", "f64/one", "i32/vec", "f64/rank3", "scalar", "empty", "rank6"};
    lg_shape shapes[N] = {lg_shape_of(2, 3, 4), lg_shape_of(1, 1),       lg_shape_of(1, 5),
                          lg_shape_of(3, 2, 3, 4), lg_shape_of(0),       lg_shape_of(2, 0, 3),
                          lg_shape_of(6, 1, 2, 1, 2, 1, 2)};
    lg_dtype dts[N] = {LG_F32, LG_F64, LG_I32, LG_F64, LG_F32, LG_F64, LG_F32};
    lg_tensor *t[N];
    for (int i = 0; i < N; i++) {
        t[i] = lg_test_tensor(dts[i], shapes[i], NULL);
        for (int64_t k = 0; k < lg_tensor_numel(t[i]); k++) lg_tensor_set(t[i], k, (double)(k + 1) * (i + 1) / 3.0 - 2);
    }
    const char *p = path_in("t.safetensors");
    ck_assert_int_eq(lg_safetensors_save(p, names, t, N), LG_OK);
    lg_safetensors *f = NULL;
    ck_assert_msg(lg_safetensors_open(p, &f) == LG_OK, "%s", lg_last_error());
    ck_assert_int_eq(lg_safetensors_count(f), N);
    for (int i = 0; i < N; i++) {
        ck_assert_str_eq(lg_safetensors_name(f, i), names[i]);
        ck_assert_int_eq(lg_safetensors_dtype(f, i), dts[i]);
        ck_assert(lg_shape_equal(lg_safetensors_shape(f, i), shapes[i]));
        ck_assert_int_eq(lg_safetensors_find(f, names[i]), i);
        lg_tensor *got = NULL;
        ck_assert_int_eq(lg_safetensors_get(f, names[i], &got), LG_OK);
        assert_tensors_equal(got, t[i]);
        lg_tensor *into = lg_test_tensor(dts[i], shapes[i], NULL);
        ck_assert_int_eq(lg_safetensors_read(f, names[i], into), LG_OK);
        assert_tensors_equal(into, t[i]);
        lg_tensor_free(got), lg_tensor_free(into);
    }
    ck_assert_int_eq(lg_safetensors_find(f, "nothing"), -1);
    ck_assert_ptr_null(lg_safetensors_metadata(f, "format"));
    lg_safetensors_free(f);

    /* the same bytes parse from memory */
    size_t len;
    unsigned char *b = read_file(p, &len);
    ck_assert_int_eq(lg_safetensors_parse(b, len, &f), LG_OK);
    free(b); /* parse copied what it needs */
    lg_tensor *got = NULL;
    ck_assert_int_eq(lg_safetensors_get(f, "f64/rank3", &got), LG_OK);
    assert_tensors_equal(got, t[3]);
    lg_tensor_free(got);
    lg_safetensors_free(f);

    /* no tensors at all is a valid file: "{}" padded to 8 bytes */
    ck_assert_int_eq(lg_safetensors_save(path_in("none"), NULL, NULL, 0), LG_OK);
    b = read_file(path_in("none"), &len);
    ck_assert_uint_eq(len, 16);
    ck_assert(memcmp(b + 8, "{}      ", 8) == 0);
    free(b);
    ck_assert_int_eq(lg_safetensors_open(path_in("none"), &f), LG_OK);
    ck_assert_int_eq(lg_safetensors_count(f), 0);
    lg_safetensors_free(f);
    for (int i = 0; i < N; i++) lg_tensor_free(t[i]);
}
END_TEST

/* Saving over a file replaces it and keeps its mode. */
START_TEST(test_save_replaces_and_keeps_mode)
{
    const char *p = path_in("m.safetensors");
    lg_tensor *a = lg_test_tensor(LG_F64, lg_shape_of(1, 2), (double[]){1, 2});
    lg_tensor *b = lg_test_tensor(LG_F64, lg_shape_of(1, 3), (double[]){3, 4, 5});
    ck_assert_int_eq(lg_safetensors_save(p, (const char *[]){"a"}, &a, 1), LG_OK);
    ck_assert_int_eq(chmod(p, 0600), 0);
    ck_assert_int_eq(lg_safetensors_save(p, (const char *[]){"b"}, &b, 1), LG_OK);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    lg_safetensors *f = NULL;
    ck_assert_int_eq(lg_safetensors_open(p, &f), LG_OK);
    ck_assert_int_eq(lg_safetensors_count(f), 1);
    ck_assert_str_eq(lg_safetensors_name(f, 0), "b");
    lg_safetensors_free(f);
    ck_assert_int_eq(dir_entries(), 1);
    lg_tensor_free(a), lg_tensor_free(b);
}
END_TEST

/* A save that fails leaves the old file byte for byte and no temporary
 * file: bad arguments (before any I/O), a missing directory, a target that
 * is a directory, and a write that fails halfway (the file size limit). */
START_TEST(test_failed_save_keeps_old_file)
{
    const char *p = path_in("keep.safetensors");
    lg_tensor *old = lg_test_tensor(LG_F32, lg_shape_of(1, 4), (float[]){1, 2, 3, 4});
    ck_assert_int_eq(lg_safetensors_save(p, (const char *[]){"old"}, &old, 1), LG_OK);
    size_t len0;
    unsigned char *before = read_file(p, &len0);
    lg_tensor *big = lg_test_tensor(LG_F64, lg_shape_of(1, 4096), NULL);
    lg_tensor *two[2] = {big, big};

    assert_status(lg_safetensors_save(p, (const char *[]){"x", "x"}, two, 2), LG_ERR_INVALID_ARGUMENT,
                  "name 'x' is given twice");

    /* a directory that does not exist: nothing is created anywhere */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no_such_dir/f.safetensors", dir);
    assert_status(lg_safetensors_save(missing, (const char *[]){"big"}, &big, 1), LG_ERR_IO, "no_such_dir");
    ck_assert(strstr(lg_last_error(), "cannot create a temporary file"));

    /* a target that is a directory: the rename fails, the directory stays */
    ck_assert_int_eq(mkdir(path_in("adir"), 0755), 0);
    assert_status(lg_safetensors_save(path_in("adir"), (const char *[]){"big"}, &big, 1), LG_ERR_IO, "rename");
    struct stat st;
    ck_assert(stat(path_in("adir"), &st) == 0 && S_ISDIR(st.st_mode));
    ck_assert_int_eq(dir_entries(), 2); /* keep.safetensors and adir */

    /* a write that fails past the limit on file size (EFBIG) */
    struct rlimit saved, lim = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim.rlim_max = saved.rlim_max;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    lg_status s = lg_safetensors_save(p, (const char *[]){"big"}, &big, 1);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, prev);
    assert_status(s, LG_ERR_IO, "write failed");
    ck_assert(strstr(lg_last_error(), p));

    size_t len1;
    unsigned char *after = read_file(p, &len1);
    ck_assert_uint_eq(len1, len0);
    ck_assert(memcmp(before, after, len0) == 0);
    ck_assert_int_eq(dir_entries(), 2); /* no temporary files */
    free(before), free(after);
    lg_tensor_free(old), lg_tensor_free(big);
}
END_TEST

/* A save killed mid-write: a child process saves past its file size limit,
 * and SIGXFSZ kills it, as kill -9 would, after it made its temporary file.
 * Returns the entries of dir that the dead save left. */
static int killed_save(const char *path)
{
    lg_tensor *big = lg_test_tensor(LG_F64, lg_shape_of(1, 8192), NULL);
    int before = dir_entries();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit fsize = {4096, 4096}, core = {0, 0};
        setrlimit(RLIMIT_CORE, &core);
        signal(SIGXFSZ, SIG_DFL);
        setrlimit(RLIMIT_FSIZE, &fsize);
        lg_safetensors_save(path, (const char *[]){"big"}, &big, 1);
        _exit(0); /* not reached: the write past 4096 bytes kills */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ, "the saving child was not killed: %d", status);
    lg_tensor_free(big);
    return dir_entries() - before;
}

/* Temporary files of killed saves are removed by the next save of the same
 * target, and only they: not another target's, not names outside the
 * pattern, not one locked by a save still running. */
START_TEST(test_save_removes_stale_temps)
{
    char p[512]; /* path_in's buffers are reused */
    snprintf(p, sizeof p, "%s", path_in("model.safetensors"));
    lg_tensor *a = lg_test_tensor(LG_F32, lg_shape_of(1, 2), (float[]){1, 2});
    ck_assert_int_eq(lg_safetensors_save(p, (const char *[]){"a"}, &a, 1), LG_OK);
    ck_assert_int_eq(killed_save(p), 1);
    ck_assert_int_eq(killed_save(p), 0); /* it removed the first one's leftover, then left its own */
    ck_assert_int_eq(dir_entries(), 2);
    write_file(path_in(".model.safetensors.Ab12Cd"), "stale", 5);
    static const char *const keep[] = {".model.safetensors.bak", ".model.safetensors.ab-12c",
                                       ".other.safetensors.Ab12Cd", "model.safetensors.Ab12Cd",
                                       ".model.safetensors.LIVE00"};
    for (int i = 0; i < 5; i++) write_file(path_in(keep[i]), "keep", 4);
    int live = open(path_in(".model.safetensors.LIVE00"), O_RDONLY);
    ck_assert_int_ge(live, 0);
    ck_assert_int_eq(flock(live, LOCK_EX), 0); /* as a running save holds it */
    ck_assert_int_eq(lg_safetensors_save(p, (const char *[]){"a"}, &a, 1), LG_OK);
    ck_assert_int_eq(dir_entries(), 1 + 5);
    for (int i = 0; i < 5; i++) ck_assert_msg(access(path_in(keep[i]), F_OK) == 0, "%s was removed", keep[i]);
    close(live); /* that save is gone now: its file is stale */
    ck_assert_int_eq(lg_safetensors_save(p, (const char *[]){"a"}, &a, 1), LG_OK);
    ck_assert_int_eq(dir_entries(), 1 + 4);
    lg_safetensors *f = NULL;
    ck_assert_int_eq(lg_safetensors_open(p, &f), LG_OK);
    ck_assert_int_eq(lg_safetensors_count(f), 1);
    lg_safetensors_free(f);
    lg_tensor_free(a);
}
END_TEST

/* Any legal name saves, up to NAME_MAX (255) bytes: the temporary name is
 * shortened (hashed) when ".<name>.XXXXXX" would be too long, and a killed
 * save's leftover is still found by the next save. */
START_TEST(test_save_long_names)
{
    lg_tensor *a = lg_test_tensor(LG_F32, lg_shape_of(1, 2), (float[]){1, 2});
    static const int lengths[] = {247, 248, 250, 255};
    for (int k = 0; k < 4; k++) {
        char name[256];
        memset(name, 'n', (size_t)lengths[k]);
        name[lengths[k]] = '\0';
        char p[512];
        snprintf(p, sizeof p, "%s", path_in(name));
        ck_assert_msg(lg_safetensors_save(p, (const char *[]){"a"}, &a, 1) == LG_OK, "%d bytes: %s", lengths[k],
                      lg_last_error());
        ck_assert_int_eq(killed_save(p), 1);
        ck_assert_int_eq(lg_safetensors_save(p, (const char *[]){"a"}, &a, 1), LG_OK);
        ck_assert_int_eq(dir_entries(), 1);
        lg_safetensors *f = NULL;
        ck_assert_int_eq(lg_safetensors_open(p, &f), LG_OK);
        lg_safetensors_free(f);
        ck_assert_int_eq(unlink(p), 0);
    }
    lg_tensor_free(a);
}
END_TEST

/* Saving through a symbolic link (relative, chained, or dangling) writes
 * the file it points to and leaves the links as links; the temporary file
 * goes beside the target. A loop of links is an error. */
START_TEST(test_save_through_symlink)
{
    lg_tensor *a = lg_test_tensor(LG_F32, lg_shape_of(1, 2), (float[]){1, 2});
    lg_tensor *b = lg_test_tensor(LG_F32, lg_shape_of(1, 3), (float[]){3, 4, 5});
    ck_assert_int_eq(mkdir(path_in("sub"), 0755), 0);
    char real[512];
    snprintf(real, sizeof real, "%s", path_in("sub/real.safetensors"));
    ck_assert_int_eq(lg_safetensors_save(real, (const char *[]){"a"}, &a, 1), LG_OK);
    ck_assert_int_eq(symlink("sub/real.safetensors", path_in("link")), 0);
    ck_assert_int_eq(symlink("link", path_in("link2")), 0);
    ck_assert_int_eq(lg_safetensors_save(path_in("link2"), (const char *[]){"b"}, &b, 1), LG_OK);
    struct stat st;
    ck_assert(lstat(path_in("link"), &st) == 0 && S_ISLNK(st.st_mode));
    ck_assert(lstat(path_in("link2"), &st) == 0 && S_ISLNK(st.st_mode));
    lg_safetensors *f = NULL;
    ck_assert_int_eq(lg_safetensors_open(real, &f), LG_OK);
    ck_assert_int_ge(lg_safetensors_find(f, "b"), 0);
    lg_safetensors_free(f);
    ck_assert_int_eq(dir_entries(), 3); /* sub, link, link2 */
    /* a dangling link: its target is created */
    ck_assert_int_eq(symlink("sub/new.safetensors", path_in("dangling")), 0);
    ck_assert_int_eq(lg_safetensors_save(path_in("dangling"), (const char *[]){"a"}, &a, 1), LG_OK);
    ck_assert(lstat(path_in("dangling"), &st) == 0 && S_ISLNK(st.st_mode));
    ck_assert(lstat(path_in("sub/new.safetensors"), &st) == 0 && S_ISREG(st.st_mode));
    /* an absolute link */
    ck_assert_int_eq(symlink(real, path_in("absolute")), 0);
    ck_assert_int_eq(lg_safetensors_save(path_in("absolute"), (const char *[]){"a"}, &a, 1), LG_OK);
    ck_assert(lstat(path_in("absolute"), &st) == 0 && S_ISLNK(st.st_mode));
    ck_assert_int_eq(lg_safetensors_open(path_in("absolute"), &f), LG_OK);
    ck_assert_int_ge(lg_safetensors_find(f, "a"), 0);
    lg_safetensors_free(f);
    ck_assert_int_eq(dir_entries(), 5);
    /* a loop */
    ck_assert_int_eq(symlink("loop2", path_in("loop1")), 0);
    ck_assert_int_eq(symlink("loop1", path_in("loop2")), 0);
    assert_status(lg_safetensors_save(path_in("loop1"), (const char *[]){"a"}, &a, 1), LG_ERR_IO,
                  "too many levels of symbolic links");
    ck_assert_int_eq(dir_entries(), 7);
    ck_assert_int_eq(unlink(real), 0);
    ck_assert_int_eq(unlink(path_in("sub/new.safetensors")), 0); /* sub must be empty for the teardown */
    lg_tensor_free(a), lg_tensor_free(b);
}
END_TEST

typedef struct save_error_case {
    const char *name;
    const char *path; /* a format for the path, given the scratch dir */
    int n;
    const char *names[2];
    int n_tensors; /* how many of the tensors are non-NULL */
    bool null_names, null_tensors;
    const char *message;
} save_error_case;

static const save_error_case SAVE_ERRORS[] = {
    {"null_path", NULL, 1, {"a"}, 1, false, false, "path is NULL"},
    {"null_names", "%s/out", 1, {"a"}, 1, true, false, "names is NULL"},
    {"null_tensors", "%s/out", 1, {"a"}, 1, false, true, "tensors is NULL"},
    {"negative_n", "%s/out", -1, {"a"}, 1, false, false, "n is -1"},
    {"null_name", "%s/out", 2, {"a", NULL}, 2, false, false, "name 1 is NULL"},
    {"empty_name", "%s/out", 1, {""}, 1, false, false, "name 0 is empty"},
    {"null_tensor", "%s/out", 2, {"a", "b"}, 1, false, false, "tensor 1 ('b') is NULL"},
    {"reserved_name", "%s/out", 1, {"__metadata__"}, 1, false, false, "reserved '__metadata__'"},
    {"duplicate", "%s/out", 2, {"w", "w"}, 2, false, false, "name 'w' is given twice (0 and 1)"},
    {"not_utf8", "%s/out", 1, {"bad\xff"}, 1, false, false, "is not valid UTF-8"},
    {"empty_path", "", 1, {"a"}, 1, false, false, "safetensors file '': the path names no file"},
    {"path_is_dir_slash", "%s/out/", 1, {"a"}, 1, false, false, "/out/': the path names no file"},
};

/* Each bad argument: LG_ERR_INVALID_ARGUMENT naming it, and no file made. */
START_TEST(test_save_errors)
{
    const save_error_case *c = &SAVE_ERRORS[_i];
    lg_tensor *t = lg_test_tensor(LG_F32, lg_shape_of(1, 2), NULL);
    lg_tensor *ts[2] = {t, c->n_tensors > 1 ? t : NULL};
    char path[600] = "";
    if (c->path) snprintf(path, sizeof path, c->path, dir);
    lg_status s = lg_safetensors_save(c->path ? path : NULL, c->null_names ? NULL : c->names,
                                      c->null_tensors ? NULL : ts, c->n);
    ck_assert_msg(s == LG_ERR_INVALID_ARGUMENT, "%s: %s", c->name, lg_status_name(s));
    ck_assert_msg(strstr(lg_last_error(), c->message), "%s: message '%s'", c->name, lg_last_error());
    ck_assert_int_eq(dir_entries(), 0);
    lg_tensor_free(t);
}
END_TEST

/* ---- broken files ------------------------------------------------------------------ */

/* A file: the 8-byte length (hlen, or the header's length when 0), the
 * header text, then `data` bytes, with `drop` bytes cut from the end. With
 * header NULL the file is just `data` bytes. */
typedef struct broken_case {
    const char *name;
    const char *header;
    uint64_t hlen;
    size_t data, drop;
    lg_status want;
    const char *message;
} broken_case;

#define T2(a, b) "{\"a\":" a ",\"b\":" b "}"
#define F32_2(lo, hi) "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" #lo "," #hi "]}"
#define ONE(entry) "{\"a\":" entry "}"

static const broken_case BROKEN[] = {
    /* the length prefix */
    {"empty_file", NULL, 0, 0, 0, LG_ERR_IO, "0 bytes, shorter than the 8-byte header length"},
    {"five_bytes", NULL, 0, 5, 0, LG_ERR_IO, "5 bytes, shorter than the 8-byte header length"},
    {"huge_header_length", "{}", UINT64_MAX, 0, 0, LG_ERR_IO,
     "not a safetensors file (its header length, 18446744073709551615, is beyond the 2 bytes"},
    {"header_length_2_63", "{}", (uint64_t)1 << 63, 0, 0, LG_ERR_IO, "header length, 9223372036854775808, is beyond"},
    {"header_beyond_file", "{}", 3, 0, 0, LG_ERR_IO, "its header length, 3, is beyond the 2 bytes that follow it"},
    {"truncated_header", ONE(F32_2(0, 8)), 0, 8, 20, LG_ERR_IO, "is beyond the"},
    {"truncated_data", ONE(F32_2(0, 8)), 0, 8, 3, LG_ERR_IO, "'a': data_offsets [0, 8] beyond the 5 data bytes"},
    /* the JSON */
    {"empty_header", "", 0, 0, 0, LG_ERR_IO, "header is not valid JSON"},
    {"bad_json", "{\"a\":", 0, 0, 0, LG_ERR_IO, "header is not valid JSON"},
    {"trailing_garbage", "{} x", 0, 0, 0, LG_ERR_IO, "header is not valid JSON"},
    {"not_utf8", "{\"\xff\":1}", 0, 0, 0, LG_ERR_IO, "header is not valid JSON"},
    {"nul_in_name", "{\"a\\u0000b\":" F32_2(0, 8) "}", 0, 8, 0, LG_ERR_IO, "header is not valid JSON"},
    {"json_string", "\"text\"", 0, 0, 0, LG_ERR_IO, "header is not valid JSON"},
    {"json_array", "[1, 2]", 0, 0, 0, LG_ERR_IO, "header is not a JSON object"},
    {"duplicate_name", "{\"a\":" F32_2(0, 8) ",\"a\":" F32_2(8, 16) "}", 0, 16, 0, LG_ERR_IO, "duplicate"},
    {"huge_integer", ONE("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}"), 0, 8, 0,
     LG_ERR_IO, "header is not valid JSON"},
    /* an entry */
    {"entry_not_object", "{\"a\":[1]}", 0, 0, 0, LG_ERR_IO, "tensor 'a': header entry is not a JSON object"},
    {"missing_dtype", ONE("{\"shape\":[2],\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_IO, "field 'dtype' is missing"},
    {"missing_shape", ONE("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_IO,
     "field 'shape' is missing"},
    {"missing_offsets", ONE("{\"dtype\":\"F32\",\"shape\":[2]}"), 0, 8, 0, LG_ERR_IO,
     "field 'data_offsets' is missing"},
    {"unknown_field", ONE("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}"), 0, 8, 0, LG_ERR_IO,
     "tensor 'a': unknown field 'x'"},
    {"dtype_not_string", ONE("{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_IO,
     "tensor 'a': dtype is not a string"},
    {"dtype_f16", ONE("{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}"), 0, 4, 0, LG_ERR_DTYPE,
     "tensor 'a': dtype 'F16' is not one loopgrad reads (F32, F64, I32)"},
    {"dtype_unknown", ONE("{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_DTYPE,
     "dtype 'f32' is not one"},
    {"shape_not_array", ONE("{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_IO,
     "tensor 'a': shape is not an array"},
    {"negative_dim", ONE("{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_IO,
     "tensor 'a': shape entry 1 is not a non-negative integer"},
    {"real_dim", ONE("{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_IO,
     "shape entry 0 is not a non-negative integer"},
    {"string_dim", ONE("{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_IO,
     "shape entry 0 is not a non-negative integer"},
    {"null_dim", ONE("{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_IO,
     "shape entry 0 is not a non-negative integer"},
    {"rank_7", ONE("{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,2],\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_SHAPE,
     "tensor 'a': rank 7 is above LG_MAX_RANK (6)"},
    {"shape_overflow", ONE("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}"), 0, 8, 0,
     LG_ERR_IO, "tensor 'a': shape [4294967296, 4294967296] overflows a byte count"},
    {"bytes_overflow", ONE("{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,8]}"), 0, 8, 0,
     LG_ERR_IO, "overflows a byte count"},
    {"int64_max_dims", ONE("{\"dtype\":\"I32\",\"shape\":[9223372036854775807,9223372036854775807],"
                           "\"data_offsets\":[0,8]}"),
     0, 8, 0, LG_ERR_IO, "overflows a byte count"},
    /* the size rule of tensor.h: a zero dim does not excuse the others, wherever
     * it stands (the first opened, then failed in lg_safetensors_get) */
    {"zero_last_huge_dims", ONE("{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904,0],"
                                "\"data_offsets\":[0,0]}"),
     0, 0, 0, LG_ERR_IO, "tensor 'a': shape [4611686018427387904, 4611686018427387904, 0] overflows a byte count"},
    {"zero_first_huge_dims", ONE("{\"dtype\":\"F32\",\"shape\":[0,4611686018427387904,4611686018427387904],"
                                 "\"data_offsets\":[0,0]}"),
     0, 0, 0, LG_ERR_IO, "shape [0, 4611686018427387904, 4611686018427387904] overflows a byte count"},
    {"size_mismatch", ONE("{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_IO,
     "tensor 'a': F32 [3] is 12 bytes but data_offsets [0, 8] hold 8"},
    {"dtype_size_mismatch", ONE("{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}"), 0, 8, 0, LG_ERR_IO,
     "F64 [2] is 16 bytes"},
    /* the offsets */
    {"offsets_not_array", ONE("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":8}"), 0, 8, 0, LG_ERR_IO,
     "tensor 'a': data_offsets is not [begin, end]"},
    {"offsets_one", ONE("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}"), 0, 8, 0, LG_ERR_IO,
     "data_offsets is not [begin, end]"},
    {"offsets_three", ONE("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}"), 0, 8, 0, LG_ERR_IO,
     "data_offsets is not [begin, end]"},
    {"offsets_negative", ONE("{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-8,-8]}"), 0, 0, 0, LG_ERR_IO,
     "data_offsets is not [begin, end] of non-negative integers"},
    {"offsets_real", ONE("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.0]}"), 0, 8, 0, LG_ERR_IO,
     "data_offsets is not [begin, end]"},
    {"end_before_begin", ONE(F32_2(8, 0)), 0, 8, 0, LG_ERR_IO, "tensor 'a': data_offsets [8, 0] end before begin"},
    {"end_beyond_data", ONE(F32_2(8, 16)), 0, 8, 0, LG_ERR_IO, "data_offsets [8, 16] beyond the 8 data bytes"},
    {"huge_offsets", ONE(F32_2(9223372036854775799, 9223372036854775807)), 0, 8, 0, LG_ERR_IO,
     "beyond the 8 data bytes"},
    {"overlap", T2(F32_2(0, 8), F32_2(4, 12)), 0, 12, 0, LG_ERR_IO,
     "tensor 'b': data_offsets [4, 12] overlap 'a' before it"},
    {"same_range", T2(F32_2(0, 8), F32_2(0, 8)), 0, 8, 0, LG_ERR_IO, "overlap"},
    {"gap", T2(F32_2(0, 8), F32_2(12, 20)), 0, 20, 0, LG_ERR_IO,
     "tensor 'b': data_offsets [12, 20] leave bytes [8, 12) unused"},
    {"not_from_zero", ONE(F32_2(4, 12)), 0, 12, 0, LG_ERR_IO, "leave bytes [0, 4) unused"},
    {"trailing_data", ONE(F32_2(0, 8)), 0, 12, 0, LG_ERR_IO, "the tensors cover 8 of the 12 data bytes"},
    {"data_without_tensors", "{}", 0, 4, 0, LG_ERR_IO, "the tensors cover 0 of the 4 data bytes"},
    /* the metadata */
    {"metadata_array", "{\"__metadata__\":[]}", 0, 0, 0, LG_ERR_IO, "__metadata__ is not a JSON object"},
    {"metadata_number", "{\"__metadata__\":{\"k\":1}}", 0, 0, 0, LG_ERR_IO, "__metadata__ 'k' is not a string"},
};

static unsigned char *broken_bytes(const broken_case *c, size_t *len)
{
    size_t h = c->header ? strlen(c->header) : 0, n = (c->header ? 8 + h : 0) + c->data;
    unsigned char *b = malloc(n + 1);
    uint64_t hlen = c->hlen ? c->hlen : h;
    size_t at = 0;
    if (c->header) {
        for (int i = 0; i < 8; i++) b[at++] = (unsigned char)(hlen >> (8 * i));
        memcpy(b + at, c->header, h);
        at += h;
    }
    for (size_t i = 0; i < c->data; i++) b[at++] = (unsigned char)(0x3f + i);
    ck_assert_uint_ge(n, c->drop);
    *len = n - c->drop;
    return b;
}

/* Each broken file fails with its status and message, from memory and from
 * disk, and gives no handle. */
START_TEST(test_broken_files)
{
    const broken_case *c = &BROKEN[_i];
    size_t len;
    unsigned char *b = broken_bytes(c, &len);
    lg_safetensors *f = (lg_safetensors *)(uintptr_t)1;
    lg_status s = lg_safetensors_parse(b, len, &f);
    ck_assert_msg(s == c->want, "%s: got %s (%s)", c->name, lg_status_name(s), lg_last_error());
    ck_assert_msg(strstr(lg_last_error(), c->message), "%s: message '%s'", c->name, lg_last_error());
    ck_assert_msg(strncmp(lg_last_error(), "safetensors buffer: ", 20) == 0, "%s: '%s'", c->name, lg_last_error());
    ck_assert_ptr_null(f);

    const char *p = path_in("broken.safetensors");
    write_file(p, b, len);
    f = (lg_safetensors *)(uintptr_t)1;
    s = lg_safetensors_open(p, &f);
    ck_assert_msg(s == c->want, "%s (file): got %s (%s)", c->name, lg_status_name(s), lg_last_error());
    ck_assert_msg(strstr(lg_last_error(), c->message), "%s (file): message '%s'", c->name, lg_last_error());
    ck_assert(strstr(lg_last_error(), p));
    ck_assert_ptr_null(f);
    free(b);
}
END_TEST

/* Edge cases that are valid: empty tensors anywhere (even with a huge
 * dim), rank 0, metadata, a header padded with spaces, zero-size tensors
 * at the end of the data. */
START_TEST(test_valid_edge_cases)
{
    const char *h = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"\xc3\xa9t\xc3\xa9\"},"
                    "\"z\":{\"dtype\":\"I32\",\"shape\":[0,9223372036854775807],\"data_offsets\":[0,0]},"
                    "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                    "\"e\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[8,8]}}   ";
    broken_case c = {"valid", h, 0, 8, 0, LG_OK, ""};
    size_t len;
    unsigned char *b = broken_bytes(&c, &len);
    const double v = -0.25;
    memcpy(b + 8 + strlen(h), &v, 8);
    lg_safetensors *f = NULL;
    ck_assert_msg(lg_safetensors_parse(b, len, &f) == LG_OK, "%s", lg_last_error());
    ck_assert_int_eq(lg_safetensors_count(f), 3);
    ck_assert_str_eq(lg_safetensors_name(f, 0), "z");
    ck_assert_str_eq(lg_safetensors_metadata(f, "format"), "pt");
    ck_assert_str_eq(lg_safetensors_metadata(f, "note"), "\xc3\xa9t\xc3\xa9");
    ck_assert_ptr_null(lg_safetensors_metadata(f, "other"));
    ck_assert_ptr_null(lg_safetensors_metadata(f, NULL));
    ck_assert_int_eq(lg_safetensors_find(f, "__metadata__"), -1);
    lg_shape zs = lg_safetensors_shape(f, 0);
    ck_assert(zs.rank == 2 && zs.dims[0] == 0 && zs.dims[1] == INT64_MAX);
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_safetensors_get(f, "z", &t), LG_OK);
    ck_assert_int_eq(lg_tensor_numel(t), 0);
    lg_tensor_free(t);
    ck_assert_int_eq(lg_safetensors_get(f, "s", &t), LG_OK);
    ck_assert_int_eq(lg_tensor_shape(t).rank, 0);
    ck_assert_double_eq(lg_tensor_get(t, 0), -0.25);
    lg_tensor_free(t);
    ck_assert_int_eq(lg_safetensors_get(f, "e", &t), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(t), lg_shape_of(2, 3, 0)));
    lg_tensor_free(t);
    lg_safetensors_free(f);
    free(b);
}
END_TEST

/* NULL handles, indices out of range, missing names, and reads into a
 * tensor of the wrong dtype or shape (which stays unchanged). */
START_TEST(test_accessor_errors)
{
    lg_tensor *w = lg_test_tensor(LG_F32, lg_shape_of(2, 2, 3), NULL);
    lg_tensor_fill(w, 2);
    ck_assert_int_eq(lg_safetensors_save(path_in("w"), (const char *[]){"w"}, &w, 1), LG_OK);
    lg_safetensors *f = NULL;
    ck_assert_int_eq(lg_safetensors_open(path_in("w"), &f), LG_OK);

    ck_assert_int_eq(lg_safetensors_count(NULL), 0);
    ck_assert_ptr_null(lg_safetensors_name(f, 1));
    ck_assert_ptr_null(lg_safetensors_name(f, -1));
    ck_assert_ptr_null(lg_safetensors_name(NULL, 0));
    ck_assert_int_eq(lg_safetensors_dtype(f, 1), LG_DTYPE_COUNT);
    ck_assert_int_eq(lg_safetensors_shape(f, -1).rank, -1);
    ck_assert_int_eq(lg_safetensors_find(NULL, "w"), -1);
    ck_assert_int_eq(lg_safetensors_find(f, NULL), -1);
    ck_assert_ptr_null(lg_safetensors_metadata(NULL, "k"));

    lg_tensor *t = (lg_tensor *)(uintptr_t)1;
    assert_status(lg_safetensors_get(f, "v", &t), LG_ERR_INVALID_ARGUMENT, "the file has no tensor 'v'");
    ck_assert_ptr_null(t);
    assert_status(lg_safetensors_get(NULL, "w", &t), LG_ERR_INVALID_ARGUMENT, "file is NULL");
    assert_status(lg_safetensors_get(f, NULL, &t), LG_ERR_INVALID_ARGUMENT, "name is NULL");
    assert_status(lg_safetensors_get(f, "w", NULL), LG_ERR_INVALID_ARGUMENT, "out is NULL");

    lg_tensor *f64 = lg_test_tensor(LG_F64, lg_shape_of(2, 2, 3), NULL);
    lg_tensor *wide = lg_test_tensor(LG_F32, lg_shape_of(2, 3, 2), NULL);
    assert_status(lg_safetensors_read(f, "w", f64), LG_ERR_DTYPE,
                  "tensor 'w': the file has f32, the destination is f64");
    assert_status(lg_safetensors_read(f, "w", wide), LG_ERR_SHAPE,
                  "tensor 'w': the file has shape [2, 3], the destination is [3, 2]");
    ck_assert_double_eq(lg_tensor_get(wide, 0), 0);
    assert_status(lg_safetensors_read(f, "w", NULL), LG_ERR_INVALID_ARGUMENT, "dst is NULL");
    assert_status(lg_safetensors_read(f, "x", wide), LG_ERR_INVALID_ARGUMENT, "no tensor 'x'");

    lg_safetensors_free(f);

    lg_safetensors *g = (lg_safetensors *)(uintptr_t)1;
    assert_status(lg_safetensors_parse(NULL, 8, &g), LG_ERR_INVALID_ARGUMENT, "buf is NULL");
    ck_assert_ptr_null(g);
    assert_status(lg_safetensors_parse("x", 1, NULL), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    assert_status(lg_safetensors_parse(NULL, 0, &g), LG_ERR_IO, "0 bytes");
    assert_status(lg_safetensors_open(NULL, &g), LG_ERR_INVALID_ARGUMENT, "path is NULL");
    assert_status(lg_safetensors_open(path_in("w"), NULL), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    assert_status(lg_safetensors_open(path_in("absent"), &g), LG_ERR_IO, "cannot open: No such file or directory");
    ck_assert(strstr(lg_last_error(), path_in("absent")));
    g = (lg_safetensors *)(uintptr_t)1;
    assert_status(lg_safetensors_open(dir, &g), LG_ERR_IO, "not a regular file");
    ck_assert_ptr_null(g);
    lg_safetensors_free(NULL);
    lg_tensor_free(w), lg_tensor_free(f64), lg_tensor_free(wide);
}
END_TEST

/* ---- checkpoints ------------------------------------------------------------------- */

/* A small model's parameters: f32 and f64, a [1], rank 3, in scopes. */
static lg_graph *model(bool wide_bias, lg_dtype rank3_dtype, const char *scalar_name)
{
    lg_graph *g = lg_graph_new();
    lg_scope_push(g, "enc");
    lg_param(g, "kernel", LG_F32, lg_shape_of(2, 3, 4));
    lg_param(g, "bias", LG_F32, lg_shape_of(1, wide_bias ? 5 : 4));
    lg_scope_pop(g);
    lg_param(g, scalar_name, LG_F64, lg_shape_of(1, 1));
    lg_param(g, "cube", rank3_dtype, lg_shape_of(3, 2, 3, 2));
    ck_assert_msg(!lg_graph_error(g), "%s", lg_graph_error(g));
    return g;
}

static void randomize(lg_graph *g, uint64_t seed)
{
    for (int i = 0; i < lg_graph_param_count(g); i++)
        ck_assert_int_eq(lg_init_uniform(lg_param_tensor(lg_graph_param(g, i)), -1, 1, seed, (uint64_t)i), LG_OK);
}

/* Every parameter's values, flattened (for "nothing changed" checks). */
static double *snapshot(lg_graph *g, int *n)
{
    int total = 0;
    for (int i = 0; i < lg_graph_param_count(g); i++)
        total += (int)lg_tensor_numel(lg_param_tensor(lg_graph_param(g, i)));
    double *v = malloc((size_t)total * sizeof *v);
    int k = 0;
    for (int i = 0; i < lg_graph_param_count(g); i++) {
        lg_tensor *t = lg_param_tensor(lg_graph_param(g, i));
        for (int64_t j = 0; j < lg_tensor_numel(t); j++) v[k++] = lg_tensor_get(t, j);
    }
    *n = total;
    return v;
}

static void assert_unchanged(lg_graph *g, const double *before, int n)
{
    int m;
    double *now = snapshot(g, &m);
    ck_assert_int_eq(m, n);
    for (int i = 0; i < n; i++) ck_assert_msg(now[i] == before[i], "parameter value %d changed", i);
    free(now);
}

START_TEST(test_checkpoint_round_trip)
{
    lg_graph *a = model(false, LG_F64, "scale"), *b = model(false, LG_F64, "scale");
    randomize(a, 5);
    const char *p = path_in("model.safetensors");
    ck_assert_msg(lg_checkpoint_save(p, a, NULL) == LG_OK, "%s", lg_last_error());
    lg_safetensors *f = NULL;
    ck_assert_int_eq(lg_safetensors_open(p, &f), LG_OK);
    ck_assert_int_eq(lg_safetensors_count(f), 4);
    const char *names[4] = {"enc/kernel", "enc/bias", "scale", "cube"};
    for (int i = 0; i < 4; i++) ck_assert_str_eq(lg_safetensors_name(f, i), names[i]);
    lg_safetensors_free(f);

    ck_assert_msg(lg_checkpoint_load(p, b, NULL, lg_checkpoint_opts_default()) == LG_OK, "%s", lg_last_error());
    for (int i = 0; i < 4; i++)
        assert_tensors_equal(lg_param_tensor(lg_graph_param(a, i)), lg_param_tensor(lg_graph_param(b, i)));
    ck_assert(lg_tensor_get(lg_param_tensor(lg_graph_param(b, 3)), 5) != 0);
    lg_graph_free(a), lg_graph_free(b);
}
END_TEST

typedef struct mismatch_case {
    const char *name;
    bool wide_bias;
    lg_dtype rank3_dtype;
    const char *scalar_name;
    bool strict;
    lg_status want;
    const char *message;
} mismatch_case;

static const mismatch_case MISMATCHES[] = {
    {"shape", true, LG_F64, "scale", true, LG_ERR_SHAPE,
     "parameter 'enc/bias' has shape [5], the file has [4]"},
    {"dtype", false, LG_F32, "scale", true, LG_ERR_DTYPE, "parameter 'cube' is f32, the file has f64"},
    {"missing", false, LG_F64, "gain", true, LG_ERR_IO, "parameter 'gain' is missing from the file"},
    {"shape_not_strict", true, LG_F64, "gain", false, LG_ERR_SHAPE, "'enc/bias' has shape [5]"},
    {"dtype_not_strict", false, LG_F32, "scale", false, LG_ERR_DTYPE, "'cube' is f32"},
};

/* A graph that does not fit the file: the error names the tensor with both
 * shapes or dtypes, and no parameter changed (not even those before it). */
START_TEST(test_checkpoint_mismatch)
{
    const mismatch_case *c = &MISMATCHES[_i];
    lg_graph *a = model(false, LG_F64, "scale");
    randomize(a, 1);
    const char *p = path_in("model.safetensors");
    ck_assert_int_eq(lg_checkpoint_save(p, a, NULL), LG_OK);
    lg_graph *b = model(c->wide_bias, c->rank3_dtype, c->scalar_name);
    randomize(b, 2);
    int n;
    double *before = snapshot(b, &n);
    lg_checkpoint_opts o = lg_checkpoint_opts_default();
    o.strict = c->strict;
    lg_status s = lg_checkpoint_load(p, b, NULL, o);
    ck_assert_msg(s == c->want, "%s: got %s (%s)", c->name, lg_status_name(s), lg_last_error());
    ck_assert_msg(strstr(lg_last_error(), c->message), "%s: message '%s'", c->name, lg_last_error());
    ck_assert(strstr(lg_last_error(), p));
    assert_unchanged(b, before, n);
    free(before);
    lg_graph_free(a), lg_graph_free(b);
}
END_TEST

/* A file tensor that is not a parameter: an error when strict; without
 * strict it is ignored, and so are parameters the file lacks. */
START_TEST(test_checkpoint_extra_and_not_strict)
{
    lg_graph *a = model(false, LG_F64, "scale"), *b = model(false, LG_F64, "gain");
    randomize(a, 3);
    randomize(b, 4);
    const char *p = path_in("model.safetensors");
    ck_assert_int_eq(lg_checkpoint_save(p, a, NULL), LG_OK);
    int n;
    double *before = snapshot(b, &n);
    /* strict: "gain" is missing (checked first), then "scale" is extra */
    assert_status(lg_checkpoint_load(p, b, NULL, lg_checkpoint_opts_default()), LG_ERR_IO, "'gain' is missing");
    lg_graph *c = model(false, LG_F64, "scale");
    lg_param(c, "unused", LG_F32, lg_shape_of(1, 2)); /* c has one more parameter */
    ck_assert_int_eq(lg_checkpoint_save(p, c, NULL), LG_OK);
    lg_graph *d = model(false, LG_F64, "scale");
    randomize(d, 6);
    int nd;
    double *before_d = snapshot(d, &nd);
    assert_status(lg_checkpoint_load(p, d, NULL, lg_checkpoint_opts_default()), LG_ERR_IO,
                  "the file's tensor 'unused' is not a parameter of the graph");
    assert_unchanged(d, before_d, nd);
    assert_unchanged(b, before, n);

    /* not strict: b takes what it shares with a's file, keeps "gain" */
    ck_assert_int_eq(lg_checkpoint_save(p, a, NULL), LG_OK);
    lg_checkpoint_opts o = lg_checkpoint_opts_default();
    o.strict = false;
    ck_assert_msg(lg_checkpoint_load(p, b, NULL, o) == LG_OK, "%s", lg_last_error());
    assert_tensors_equal(lg_param_tensor(lg_graph_param(b, 0)), lg_param_tensor(lg_graph_param(a, 0)));
    assert_tensors_equal(lg_param_tensor(lg_graph_param(b, 3)), lg_param_tensor(lg_graph_param(a, 3)));
    ck_assert_double_eq(lg_tensor_get(lg_param_tensor(lg_graph_param(b, 2)), 0), before[3 * 4 + 4]); /* gain */
    free(before), free(before_d);
    lg_graph_free(a), lg_graph_free(b), lg_graph_free(c), lg_graph_free(d);
}
END_TEST

/* A file written by someone else, with __metadata__, loads as a checkpoint;
 * a broken one is refused with the reader's message and changes nothing. */
START_TEST(test_checkpoint_foreign_and_broken_files)
{
    lg_graph *g = lg_graph_new();
    lg_value w = lg_param(g, "w", LG_F32, lg_shape_of(1, 2));
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    broken_case c = {"foreign", h, 0, 8, 0, LG_OK, ""};
    size_t len;
    unsigned char *b = broken_bytes(&c, &len);
    const float v[2] = {0.5f, -3};
    memcpy(b + 8 + strlen(h), v, 8);
    write_file(path_in("foreign"), b, len);
    ck_assert_msg(lg_checkpoint_load(path_in("foreign"), g, NULL, lg_checkpoint_opts_default()) == LG_OK, "%s",
                  lg_last_error());
    ck_assert_double_eq(lg_tensor_get(lg_param_tensor(w), 1), -3);

    write_file(path_in("cut"), b, len - 1);
    assert_status(lg_checkpoint_load(path_in("cut"), g, NULL, lg_checkpoint_opts_default()), LG_ERR_IO,
                  "beyond the 7 data bytes");
    assert_status(lg_checkpoint_load(path_in("absent"), g, NULL, lg_checkpoint_opts_default()), LG_ERR_IO,
                  "cannot open");
    ck_assert_double_eq(lg_tensor_get(lg_param_tensor(w), 0), 0.5);
    free(b);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_checkpoint_argument_errors)
{
    lg_graph *g = lg_graph_new();
    lg_param(g, "w", LG_F32, lg_shape_of(1, 2));
    assert_status(lg_checkpoint_save(NULL, g, NULL), LG_ERR_INVALID_ARGUMENT, "path is NULL");
    assert_status(lg_checkpoint_save(path_in("x"), NULL, NULL), LG_ERR_INVALID_ARGUMENT, "graph is NULL");
    assert_status(lg_checkpoint_load(NULL, g, NULL, lg_checkpoint_opts_default()), LG_ERR_INVALID_ARGUMENT,
                  "path is NULL");
    assert_status(lg_checkpoint_load(path_in("x"), NULL, NULL, lg_checkpoint_opts_default()),
                  LG_ERR_INVALID_ARGUMENT, "graph is NULL");
    lg_scope_push(g, "optimizer");
    lg_param(g, "iterations", LG_I32, lg_shape_of(1, 1));
    lg_scope_pop(g);
    assert_status(lg_checkpoint_save(path_in("x"), g, NULL), LG_ERR_INVALID_ARGUMENT,
                  "parameter 'optimizer/iterations': names starting 'optimizer/' are kept for optimizer state");
    lg_graph *empty = lg_graph_new();
    assert_status(lg_checkpoint_save(path_in("no/such/dir"), empty, NULL), LG_ERR_IO, "no/such");
    ck_assert_int_eq(dir_entries(), 0);
    lg_graph_free(g), lg_graph_free(empty);
}
END_TEST

/* ---- checkpoints with optimizer state ---------------------------------------------- */

/* A graph with a loss and an Adam optimizer over its parameters. */
typedef struct trainer {
    lg_graph *g;
    lg_value x, loss, params[2], grads[2];
    lg_optimizer *opt;
    lg_tensor *xt;
} trainer;

static trainer trainer_new(bool amsgrad)
{
    trainer t;
    t.g = lg_graph_new();
    t.x = lg_input(t.g, "x", LG_F64, lg_shape_of(2, 4, 3));
    t.params[0] = lg_param(t.g, "dense/kernel", LG_F64, lg_shape_of(2, 3, 2));
    t.params[1] = lg_param(t.g, "dense/bias", LG_F64, lg_shape_of(1, 2));
    lg_value y = lg_tanh(lg_add(lg_matmul(t.x, t.params[0], false, false), t.params[1]));
    t.loss = lg_sum(lg_mul(y, y), NULL, 0, false);
    ck_assert_int_eq(lg_grad(t.g, t.loss, t.params, 2, t.grads), LG_OK);
    randomize(t.g, 9);
    lg_adam_opts o = lg_adam_opts_default();
    o.amsgrad = amsgrad;
    o.learning_rate = 0.05;
    ck_assert_int_eq(lg_optimizer_adam(t.g, t.params, 2, o, &t.opt), LG_OK);
    t.xt = lg_test_uniform(LG_F64, lg_shape_of(2, 4, 3), 3, 0, -1, 1);
    return t;
}

static double trainer_steps(trainer *t, int n)
{
    lg_feed feed = {t->x, t->xt};
    lg_value fetch[3] = {t->loss, t->grads[0], t->grads[1]};
    double loss = 0;
    for (int i = 0; i < n; i++) {
        lg_tensor *out[3] = {NULL, lg_optimizer_grads(t->opt)[0], lg_optimizer_grads(t->opt)[1]};
        ck_assert_int_eq(lg_graph_run(t->g, &feed, 1, fetch, 3, out), LG_OK);
        loss = lg_tensor_get(out[0], 0);
        lg_tensor_free(out[0]);
        ck_assert_int_eq(lg_optimizer_step(t->opt), LG_OK);
    }
    return loss;
}

static void trainer_free(trainer *t)
{
    lg_optimizer_free(t->opt);
    lg_graph_free(t->g);
    lg_tensor_free(t->xt);
}

/* Training resumed from a checkpoint continues exactly as training that
 * never stopped: parameters and Adam's state (iterations, momentum,
 * velocity) come back. */
START_TEST(test_checkpoint_optimizer_resume)
{
    trainer a = trainer_new(false), b = trainer_new(false);
    trainer_steps(&a, 3);
    const char *p = path_in("train.safetensors");
    ck_assert_msg(lg_checkpoint_save(p, a.g, a.opt) == LG_OK, "%s", lg_last_error());
    lg_safetensors *f = NULL;
    ck_assert_int_eq(lg_safetensors_open(p, &f), LG_OK);
    ck_assert_int_eq(lg_safetensors_count(f), 2 + lg_optimizer_state_count(a.opt));
    ck_assert_int_ge(lg_safetensors_find(f, "optimizer/iterations"), 0);
    ck_assert_int_ge(lg_safetensors_find(f, "optimizer/velocity/dense/kernel"), 0);
    lg_safetensors_free(f);

    ck_assert_msg(lg_checkpoint_load(p, b.g, b.opt, lg_checkpoint_opts_default()) == LG_OK, "%s", lg_last_error());
    ck_assert_int_eq(lg_optimizer_iterations(b.opt), 3);
    for (int i = 0; i < lg_optimizer_state_count(a.opt); i++) {
        const char *na, *nb;
        lg_tensor *ta, *tb;
        ck_assert_int_eq(lg_optimizer_state(a.opt, i, &na, &ta), LG_OK);
        ck_assert_int_eq(lg_optimizer_state(b.opt, i, &nb, &tb), LG_OK);
        ck_assert_str_eq(na, nb);
        assert_tensors_equal(ta, tb);
    }
    double la = trainer_steps(&a, 2), lb = trainer_steps(&b, 2);
    ck_assert_double_eq(la, lb);
    for (int i = 0; i < 2; i++) assert_tensors_equal(lg_param_tensor(a.params[i]), lg_param_tensor(b.params[i]));
    trainer_free(&a), trainer_free(&b);
}
END_TEST

/* Optimizer tensors in the file: skipped when loading without an optimizer
 * (inference); required when loading with one (strict), and an optimizer
 * whose state does not fit (amsgrad's extra slot) changes nothing. */
START_TEST(test_checkpoint_optimizer_mismatch)
{
    trainer a = trainer_new(false);
    trainer_steps(&a, 2);
    const char *with = path_in("with.safetensors"), *without = path_in("without.safetensors");
    ck_assert_int_eq(lg_checkpoint_save(with, a.g, a.opt), LG_OK);
    ck_assert_int_eq(lg_checkpoint_save(without, a.g, NULL), LG_OK);

    trainer b = trainer_new(false);
    ck_assert_msg(lg_checkpoint_load(with, b.g, NULL, lg_checkpoint_opts_default()) == LG_OK, "%s", lg_last_error());
    assert_tensors_equal(lg_param_tensor(a.params[0]), lg_param_tensor(b.params[0]));
    ck_assert_int_eq(lg_optimizer_iterations(b.opt), 0);

    assert_status(lg_checkpoint_load(without, b.g, b.opt, lg_checkpoint_opts_default()), LG_ERR_IO,
                  "optimizer state 'optimizer/iterations' is missing from the file");

    trainer c = trainer_new(true);
    int n;
    double *before = snapshot(c.g, &n);
    assert_status(lg_checkpoint_load(with, c.g, c.opt, lg_checkpoint_opts_default()), LG_ERR_IO,
                  "optimizer state 'optimizer/velocity_hat/dense/kernel' is missing");
    assert_unchanged(c.g, before, n);
    ck_assert_int_eq(lg_optimizer_iterations(c.opt), 0);

    /* a file with optimizer state, loaded with an optimizer: an unknown
     * optimizer tensor is an error naming both kinds of tensor */
    trainer d = trainer_new(true);
    trainer_steps(&d, 1);
    ck_assert_int_eq(lg_checkpoint_save(with, d.g, d.opt), LG_OK);
    assert_status(lg_checkpoint_load(with, b.g, b.opt, lg_checkpoint_opts_default()), LG_ERR_IO,
                  "tensor 'optimizer/velocity_hat/dense/kernel' is not a parameter of the graph or state of the "
                  "optimizer");
    ck_assert_int_eq(lg_optimizer_iterations(b.opt), 0);
    free(before);
    trainer_free(&a), trainer_free(&b), trainer_free(&c), trainer_free(&d);
}
END_TEST

/* ---- PyTorch weights ---------------------------------------------------------------- */

enum { TB = 2, TT = 5, TIN = 3, TU = 4 };

/* A record of torch_rnn.txt (see make_torch_checkpoint.py). */
typedef struct torch_record {
    lg_shape shape;
    lg_tensor *t;
} torch_record;

/* The next token, skipping '#' comments to the end of the line. */
static bool next_token(FILE *f, char *tok, size_t size)
{
    int ch;
    for (;;) {
        while ((ch = fgetc(f)) != EOF && (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r')) {}
        if (ch == '#') {
            while ((ch = fgetc(f)) != EOF && ch != '\n') {}
            continue;
        }
        break;
    }
    if (ch == EOF) return false;
    size_t n = 0;
    while (ch != EOF && ch != ' ' && ch != '\n' && ch != '\t' && ch != '\r') {
        ck_assert_uint_lt(n, size - 1);
        tok[n++] = (char)ch;
        ch = fgetc(f);
    }
    tok[n] = '\0';
    return true;
}

/* Reads the four records x, lstm, gru, rnn. */
static void read_torch_outputs(torch_record rec[4])
{
    FILE *f = fopen(TORCH_OUTPUTS, "r");
    ck_assert_msg(f != NULL, "cannot open %s", TORCH_OUTPUTS);
    char line[64];
    ck_assert(fgets(line, sizeof line, f) != NULL);
    ck_assert_str_eq(line, "loopgrad-torch-rnn v1\n");
    const char *names[4] = {"x", "lstm", "gru", "rnn"};
    char tok[64];
    for (int r = 0; r < 4; r++) {
        ck_assert(next_token(f, tok, sizeof tok));
        ck_assert_str_eq(tok, names[r]);
        ck_assert(next_token(f, tok, sizeof tok));
        rec[r].shape.rank = atoi(tok);
        ck_assert_int_eq(rec[r].shape.rank, 3);
        for (int d = 0; d < 3; d++) {
            ck_assert(next_token(f, tok, sizeof tok));
            rec[r].shape.dims[d] = atoi(tok);
        }
        rec[r].t = lg_test_tensor(LG_F64, rec[r].shape, NULL);
        for (int64_t i = 0; i < lg_tensor_numel(rec[r].t); i++) {
            ck_assert(next_token(f, tok, sizeof tok));
            lg_tensor_set(rec[r].t, i, strtod(tok, NULL));
        }
    }
    ck_assert(!next_token(f, tok, sizeof tok));
    fclose(f);
}

static lg_cell *torch_cell(lg_graph *g, const char *name, lg_cell_kind kind, int in, lg_activation act,
                           const char *prefix, int layer, bool reverse)
{
    lg_cell_opts o = lg_cell_opts_default(kind, TU);
    o.dtype = LG_F64;
    o.activation = act;
    lg_cell *c = lg_cell_new(g, name, in, o);
    ck_assert_ptr_nonnull(c);
    lg_torch_rnn_opts t = lg_torch_rnn_opts_default();
    t.prefix = prefix;
    t.layer = layer;
    t.reverse = reverse;
    lg_status s = lg_checkpoint_import_torch_rnn(TORCH_FILE, c, t);
    ck_assert_msg(s == LG_OK, "%s: %s", name, lg_last_error());
    return c;
}

static void assert_close(const lg_tensor *got, const lg_tensor *want, const char *what)
{
    ck_assert_msg(lg_shape_equal(lg_tensor_shape(got), lg_tensor_shape(want)), "%s: shape %s", what,
                  lg_shape_str(lg_tensor_shape(got), (char[64]){0}, 64));
    for (int64_t i = 0; i < lg_tensor_numel(want); i++) {
        double g = lg_tensor_get(got, i), w = lg_tensor_get(want, i);
        ck_assert_msg(fabs(g - w) <= 1e-9 + 1e-7 * fabs(w), "%s[%lld]: %.17g, PyTorch %.17g", what, (long long)i, g,
                      w);
    }
}

/* nn.LSTM (2 layers), nn.GRU (bidirectional) and nn.RNN (relu) weights in
 * loopgrad's layers give PyTorch's output sequences. */
START_TEST(test_torch_outputs)
{
    torch_record rec[4];
    read_torch_outputs(rec);
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, TB, TT, TIN));
    lg_rnn_opts o = lg_rnn_opts_default();
    o.return_sequences = true;

    lg_cell *l1 = torch_cell(g, "lstm1", LG_CELL_LSTM, TIN, LG_ACT_TANH, "lstm.", 0, false);
    lg_cell *l2 = torch_cell(g, "lstm2", LG_CELL_LSTM, TU, LG_ACT_TANH, "lstm.", 1, false);
    lg_rnn_result r1, r2, rr;
    ck_assert_int_eq(lg_rnn(g, "lstm_layer1", l1, x, o, &r1), LG_OK);
    ck_assert_int_eq(lg_rnn(g, "lstm_layer2", l2, r1.output, o, &r2), LG_OK);

    lg_cell *gf = torch_cell(g, "gru_fwd", LG_CELL_GRU, TIN, LG_ACT_TANH, "gru.", 0, false);
    lg_cell *gb = torch_cell(g, "gru_bwd", LG_CELL_GRU, TIN, LG_ACT_TANH, "gru.", 0, true);
    lg_bidirectional_result rb;
    ck_assert_int_eq(lg_bidirectional(g, "gru_layer", gf, gb, x, LG_MERGE_CONCAT, o, &rb), LG_OK);

    lg_cell *rn = torch_cell(g, "rnn", LG_CELL_SIMPLE_RNN, TIN, LG_ACT_RELU, "rnn.", 0, false);
    ck_assert_int_eq(lg_rnn(g, "rnn_layer", rn, x, o, &rr), LG_OK);

    lg_feed feed = {x, rec[0].t};
    lg_value fetch[3] = {r2.output, rb.output, rr.output};
    lg_tensor *out[3] = {NULL};
    ck_assert_msg(lg_graph_run(g, &feed, 1, fetch, 3, out) == LG_OK, "%s", lg_last_error());
    assert_close(out[0], rec[1].t, "lstm");
    assert_close(out[1], rec[2].t, "gru");
    assert_close(out[2], rec[3].t, "rnn");

    /* the file is PyTorch's own, with its metadata */
    lg_safetensors *f = NULL;
    ck_assert_int_eq(lg_safetensors_open(TORCH_FILE, &f), LG_OK);
    ck_assert_str_eq(lg_safetensors_metadata(f, "generator"), "tests/make_torch_checkpoint.py");
    ck_assert_int_eq(lg_safetensors_count(f), 20);
    lg_safetensors_free(f);

    for (int i = 0; i < 3; i++) lg_tensor_free(out[i]);
    for (int i = 0; i < 4; i++) lg_tensor_free(rec[i].t);
    lg_cell_free(l1), lg_cell_free(l2), lg_cell_free(gf), lg_cell_free(gb), lg_cell_free(rn);
    lg_graph_free(g);
}
END_TEST

/* The mapping element by element, into an f32 cell (weights converted):
 * kernel[i, k*u + j] = weight_ih[perm[k]*u + j, i], and the GRU's bias rows. */
START_TEST(test_torch_mapping_f32)
{
    lg_safetensors *f = NULL;
    ck_assert_int_eq(lg_safetensors_open(TORCH_FILE, &f), LG_OK);
    lg_tensor *wih = NULL, *whh = NULL, *bih = NULL, *bhh = NULL;
    ck_assert_int_eq(lg_safetensors_get(f, "gru.weight_ih_l0", &wih), LG_OK);
    ck_assert_int_eq(lg_safetensors_get(f, "gru.weight_hh_l0", &whh), LG_OK);
    ck_assert_int_eq(lg_safetensors_get(f, "gru.bias_ih_l0", &bih), LG_OK);
    ck_assert_int_eq(lg_safetensors_get(f, "gru.bias_hh_l0", &bhh), LG_OK);
    lg_safetensors_free(f);

    lg_graph *g = lg_graph_new();
    lg_cell *c = lg_cell_new(g, "gru", TIN, lg_cell_opts_default(LG_CELL_GRU, TU));
    lg_torch_rnn_opts o = lg_torch_rnn_opts_default();
    o.prefix = "gru.";
    ck_assert_msg(lg_checkpoint_import_torch_rnn(TORCH_FILE, c, o) == LG_OK, "%s", lg_last_error());
    lg_tensor *K = lg_param_tensor(lg_cell_kernel(c)), *R = lg_param_tensor(lg_cell_recurrent_kernel(c));
    lg_tensor *Bt = lg_param_tensor(lg_cell_bias(c));
    ck_assert_int_eq(lg_tensor_dtype(K), LG_F32);
    const int perm[3] = {1, 0, 2}; /* Keras z, r, h <- PyTorch r, z, n */
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < TU; j++) {
            int kc = k * TU + j, pr = perm[k] * TU + j;
            for (int i = 0; i < TIN; i++)
                ck_assert_float_eq(lg_tensor_get(K, i * 3 * TU + kc), (float)lg_tensor_get(wih, pr * TIN + i));
            for (int i = 0; i < TU; i++)
                ck_assert_float_eq(lg_tensor_get(R, i * 3 * TU + kc), (float)lg_tensor_get(whh, pr * TU + i));
            ck_assert_float_eq(lg_tensor_get(Bt, kc), (float)lg_tensor_get(bih, pr));
            ck_assert_float_eq(lg_tensor_get(Bt, 3 * TU + kc), (float)lg_tensor_get(bhh, pr));
        }
    lg_tensor_free(wih), lg_tensor_free(whh), lg_tensor_free(bih), lg_tensor_free(bhh);
    lg_cell_free(c);
    lg_graph_free(g);
}
END_TEST

/* A module saved without biases goes into a cell without one; the LSTM's
 * gate order is kept (i, f, g, o). */
START_TEST(test_torch_no_bias)
{
    lg_tensor *wih = lg_test_uniform(LG_F32, lg_shape_of(2, 4 * TU, TIN), 1, 0, -1, 1);
    lg_tensor *whh = lg_test_uniform(LG_F32, lg_shape_of(2, 4 * TU, TU), 1, 1, -1, 1);
    lg_tensor *w[2] = {wih, whh};
    const char *p = path_in("nobias.safetensors");
    ck_assert_int_eq(lg_safetensors_save(p, (const char *[]){"weight_ih_l0", "weight_hh_l0"}, w, 2), LG_OK);
    lg_graph *g = lg_graph_new();
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, TU);
    co.use_bias = false;
    lg_cell *c = lg_cell_new(g, "lstm", TIN, co);
    ck_assert_msg(lg_checkpoint_import_torch_rnn(p, c, lg_torch_rnn_opts_default()) == LG_OK, "%s", lg_last_error());
    lg_tensor *K = lg_param_tensor(lg_cell_kernel(c)), *R = lg_param_tensor(lg_cell_recurrent_kernel(c));
    for (int r = 0; r < 4 * TU; r++) {
        for (int i = 0; i < TIN; i++)
            ck_assert_float_eq(lg_tensor_get(K, i * 4 * TU + r), lg_tensor_get(wih, r * TIN + i));
        for (int i = 0; i < TU; i++)
            ck_assert_float_eq(lg_tensor_get(R, i * 4 * TU + r), lg_tensor_get(whh, r * TU + i));
    }
    lg_tensor_free(wih), lg_tensor_free(whh);
    lg_cell_free(c);
    lg_graph_free(g);
}
END_TEST

typedef struct torch_error_case {
    const char *name;
    lg_cell_kind kind;
    int units, input_dim;
    bool use_bias, reset_after;
    lg_activation activation, recurrent_activation;
    const char *prefix;
    int layer;
    bool reverse;
    const char *file; /* NULL: the fixture; else a file in the scratch dir the test writes */
    lg_status want;
    const char *message;
} torch_error_case;

#define LSTM_OK LG_CELL_LSTM, TU, TIN, true, true, LG_ACT_TANH, LG_ACT_SIGMOID

static const torch_error_case TORCH_ERRORS[] = {
    {"wrong_prefix", LSTM_OK, "encoder.", 0, false, NULL, LG_ERR_IO, "no tensor 'encoder.weight_ih_l0'"},
    {"no_layer_2", LSTM_OK, "lstm.", 2, false, NULL, LG_ERR_IO, "no tensor 'lstm.weight_ih_l2'"},
    {"no_reverse", LSTM_OK, "lstm.", 0, true, NULL, LG_ERR_IO, "no tensor 'lstm.weight_ih_l0_reverse'"},
    {"negative_layer", LSTM_OK, "lstm.", -1, false, NULL, LG_ERR_INVALID_ARGUMENT, "opts.layer = -1"},
    {"units", LG_CELL_LSTM, TU + 1, TIN, true, true, LG_ACT_TANH, LG_ACT_SIGMOID, "lstm.", 0, false, NULL,
     LG_ERR_SHAPE, "'lstm.weight_ih_l0' has shape [16, 3], the cell needs [20, 3]"},
    {"input_dim", LG_CELL_LSTM, TU, TIN + 2, true, true, LG_ACT_TANH, LG_ACT_SIGMOID, "lstm.", 0, false, NULL,
     LG_ERR_SHAPE, "'lstm.weight_ih_l0' has shape [16, 3], the cell needs [16, 5]"},
    {"second_layer_input", LSTM_OK, "lstm.", 1, false, NULL, LG_ERR_SHAPE,
     "'lstm.weight_ih_l1' has shape [16, 4], the cell needs [16, 3]"},
    {"gru_as_lstm", LSTM_OK, "gru.", 0, false, NULL, LG_ERR_SHAPE, "'gru.weight_ih_l0' has shape [12, 3]"},
    {"gru_reset_before", LG_CELL_GRU, TU, TIN, true, false, LG_ACT_TANH, LG_ACT_SIGMOID, "gru.", 0, false, NULL,
     LG_ERR_UNSUPPORTED, "cell 'c': a GRU with reset_after false has no PyTorch counterpart"},
    {"lstm_hard_sigmoid", LG_CELL_LSTM, TU, TIN, true, true, LG_ACT_TANH, LG_ACT_HARD_SIGMOID, "lstm.", 0, false, NULL,
     LG_ERR_UNSUPPORTED, "nn.LSTM uses sigmoid gates and tanh"},
    {"gru_relu", LG_CELL_GRU, TU, TIN, true, true, LG_ACT_RELU, LG_ACT_SIGMOID, "gru.", 0, false, NULL,
     LG_ERR_UNSUPPORTED, "nn.GRU uses sigmoid gates and tanh"},
    {"rnn_sigmoid", LG_CELL_SIMPLE_RNN, TU, TIN, true, true, LG_ACT_SIGMOID, LG_ACT_SIGMOID, "rnn.", 0, false, NULL,
     LG_ERR_UNSUPPORTED, "nn.RNN's nonlinearity is tanh or relu"},
    {"cell_without_bias", LG_CELL_LSTM, TU, TIN, false, true, LG_ACT_TANH, LG_ACT_SIGMOID, "lstm.", 0, false, NULL,
     LG_ERR_IO, "the file has 'lstm.bias_ih_l0' but the cell has no bias"},
    {"missing_bias", LSTM_OK, "", 0, false, "weights_only", LG_ERR_IO, "no tensor 'bias_ih_l0'"},
    {"i32_weights", LSTM_OK, "", 0, false, "i32", LG_ERR_DTYPE, "'weight_ih_l0' is i32, not f32 or f64"},
    {"absent_file", LSTM_OK, "", 0, false, "absent", LG_ERR_IO, "cannot open"},
};

/* Each import error: its status and message, and the cell's weights as
 * they were. */
START_TEST(test_torch_errors)
{
    const torch_error_case *c = &TORCH_ERRORS[_i];
    char path[600];
    snprintf(path, sizeof path, "%s", TORCH_FILE);
    if (c->file) {
        snprintf(path, sizeof path, "%s", path_in(c->file));
        lg_dtype dt = strcmp(c->file, "i32") == 0 ? LG_I32 : LG_F32;
        lg_tensor *w[2] = {lg_test_tensor(dt, lg_shape_of(2, 4 * TU, TIN), NULL),
                           lg_test_tensor(dt, lg_shape_of(2, 4 * TU, TU), NULL)};
        if (strcmp(c->file, "absent") != 0)
            ck_assert_int_eq(lg_safetensors_save(path, (const char *[]){"weight_ih_l0", "weight_hh_l0"}, w, 2), LG_OK);
        lg_tensor_free(w[0]), lg_tensor_free(w[1]);
    }
    lg_graph *g = lg_graph_new();
    lg_cell_opts o = lg_cell_opts_default(c->kind, c->units);
    o.use_bias = c->use_bias;
    o.reset_after = c->reset_after;
    o.activation = c->activation;
    o.recurrent_activation = c->recurrent_activation;
    o.bias_initializer = LG_INIT_ONES;
    lg_cell *cell = lg_cell_new(g, "c", c->input_dim, o);
    ck_assert_msg(cell != NULL, "%s: %s", c->name, lg_graph_error(g));
    int n;
    double *before = snapshot(g, &n);
    lg_torch_rnn_opts t = lg_torch_rnn_opts_default();
    t.prefix = c->prefix;
    t.layer = c->layer;
    t.reverse = c->reverse;
    lg_status s = lg_checkpoint_import_torch_rnn(path, cell, t);
    ck_assert_msg(s == c->want, "%s: got %s (%s)", c->name, lg_status_name(s), lg_last_error());
    ck_assert_msg(strstr(lg_last_error(), c->message), "%s: message '%s'", c->name, lg_last_error());
    assert_unchanged(g, before, n);
    free(before);
    lg_cell_free(cell);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_torch_null_arguments)
{
    lg_graph *g = lg_graph_new();
    lg_cell *c = lg_cell_new(g, "c", TIN, lg_cell_opts_default(LG_CELL_LSTM, TU));
    assert_status(lg_checkpoint_import_torch_rnn(NULL, c, lg_torch_rnn_opts_default()), LG_ERR_INVALID_ARGUMENT,
                  "path is NULL");
    assert_status(lg_checkpoint_import_torch_rnn(TORCH_FILE, NULL, lg_torch_rnn_opts_default()),
                  LG_ERR_INVALID_ARGUMENT, "cell is NULL");
    /* a NULL prefix is "" */
    lg_torch_rnn_opts o = lg_torch_rnn_opts_default();
    ck_assert_str_eq(o.prefix, "");
    ck_assert(o.layer == 0 && !o.reverse);
    o.prefix = NULL;
    assert_status(lg_checkpoint_import_torch_rnn(TORCH_FILE, c, o), LG_ERR_IO, "no tensor 'weight_ih_l0'");
    lg_cell_free(c);
    lg_graph_free(g);
}
END_TEST

/* A named pipe without a writer: every reader of checkpoints refuses it
 * at once (opening it to read would otherwise block forever). */
START_TEST(test_loaders_refuse_fifo)
{
    alarm(20); /* a hang fails the test instead of the suite's timeout */
    const char *fifo = path_in("pipe.safetensors");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    lg_safetensors *f = NULL;
    assert_status(lg_safetensors_open(fifo, &f), LG_ERR_IO, "is not a regular file (a named pipe)");
    ck_assert_ptr_null(f);
    lg_graph *g = lg_graph_new();
    lg_param(g, "w", LG_F32, lg_shape_of(1, 2));
    assert_status(lg_checkpoint_load(fifo, g, NULL, lg_checkpoint_opts_default()), LG_ERR_IO,
                  "pipe.safetensors': is not a regular file (a named pipe)");
    lg_cell *c = lg_cell_new(g, "c", TIN, lg_cell_opts_default(LG_CELL_LSTM, TU));
    assert_status(lg_checkpoint_import_torch_rnn(fifo, c, lg_torch_rnn_opts_default()), LG_ERR_IO,
                  "is not a regular file (a named pipe)");
    lg_cell_free(c);
    lg_graph_free(g);
    alarm(0);
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tf = tcase_create("safetensors");
    tcase_add_checked_fixture(tf, setup, teardown);
    tcase_add_test(tf, test_save_bytes);
    tcase_add_test(tf, test_round_trip_tensors);
    tcase_add_test(tf, test_save_replaces_and_keeps_mode);
    tcase_add_test(tf, test_failed_save_keeps_old_file);
    tcase_add_test(tf, test_save_removes_stale_temps);
    tcase_add_test(tf, test_save_long_names);
    tcase_add_test(tf, test_save_through_symlink);
    tcase_add_loop_test(tf, test_save_errors, 0, (int)(sizeof SAVE_ERRORS / sizeof SAVE_ERRORS[0]));
    tcase_add_test(tf, test_valid_edge_cases);
    tcase_add_test(tf, test_accessor_errors);
    suite_add_tcase(s, tf);
    TCase *tb = tcase_create("broken_files");
    tcase_add_checked_fixture(tb, setup, teardown);
    tcase_add_loop_test(tb, test_broken_files, 0, (int)(sizeof BROKEN / sizeof BROKEN[0]));
    suite_add_tcase(s, tb);
    TCase *tc = tcase_create("checkpoints");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_checkpoint_round_trip);
    tcase_add_loop_test(tc, test_checkpoint_mismatch, 0, (int)(sizeof MISMATCHES / sizeof MISMATCHES[0]));
    tcase_add_test(tc, test_checkpoint_extra_and_not_strict);
    tcase_add_test(tc, test_checkpoint_foreign_and_broken_files);
    tcase_add_test(tc, test_checkpoint_argument_errors);
    tcase_add_test(tc, test_checkpoint_optimizer_resume);
    tcase_add_test(tc, test_checkpoint_optimizer_mismatch);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("torch");
    tcase_add_checked_fixture(tt, setup, teardown);
    tcase_add_test(tt, test_torch_outputs);
    tcase_add_test(tt, test_torch_mapping_f32);
    tcase_add_test(tt, test_torch_no_bias);
    tcase_add_loop_test(tt, test_torch_errors, 0, (int)(sizeof TORCH_ERRORS / sizeof TORCH_ERRORS[0]));
    tcase_add_test(tt, test_torch_null_arguments);
    tcase_add_test(tt, test_loaders_refuse_fifo);
    suite_add_tcase(s, tt);
    return s;
}

int main(void) { return lg_check_run(checkpoint_suite()); }
