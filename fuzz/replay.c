/*
 * replay.c — runs a fuzz target (fuzz_<name>.c, linked in) over files,
 * without libFuzzer, so the test suite replays the committed corpus under
 * any compiler and sanitizer:
 *
 *     fuzz_safetensors_replay fuzz/corpus [more files or directories]
 *     fuzz_idx_replay fuzz/corpus/idx
 *
 * Each file is one input. Names carry expectations checked here as well:
 * "valid-*" must be read (the target's lg_fuzz_one returns LG_OK),
 * "broken-*" must be refused; other names (inputs the fuzzer found, e.g.
 * "crash-<sha1>" kept after a fix) only must not crash.
 * Exits nonzero when an expectation fails, a file cannot be read, or no
 * input was found.
 */
#define _GNU_SOURCE /* memfd_create, in fuzz.h */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int n_inputs, n_failed;

static void replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        n_failed++;
        return;
    }
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        n_failed++;
        return;
    }
    lg_status s = lg_fuzz_one(buf, len);
    n_inputs++;

    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    bool want_ok = strncmp(base, "valid-", 6) == 0, want_fail = strncmp(base, "broken-", 7) == 0;
    if ((want_ok || want_fail) && (s == LG_OK) != want_ok) {
        fprintf(stderr, "replay: %s: %s, expected %s (%s)\n", path, lg_status_name(s), want_ok ? "LG_OK" : "an error",
                s == LG_OK ? "read" : lg_last_error());
        n_failed++;
    }
    free(buf);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The files of a directory in name order (sub-directories are skipped). */
static void replay_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "replay: cannot open directory %s\n", path);
        n_failed++;
        return;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        size_t size = strlen(path) + strlen(e->d_name) + 2;
        if (grown) names = grown;
        if (!grown || !(names[n] = malloc(size))) {
            fprintf(stderr, "replay: out of memory listing %s\n", path);
            n_failed++;
            break;
        }
        snprintf(names[n++], size, "%s/%s", path, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) replay_file(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) replay_dir(argv[i]);
        else replay_file(argv[i]);
    }
    printf("replay: %d inputs, %d failures\n", n_inputs, n_failed);
    return n_failed == 0 && n_inputs > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
