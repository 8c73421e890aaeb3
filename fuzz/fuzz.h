/*
 * fuzz.h — what the fuzz targets in fuzz/ share. Each target defines
 * LLVMFuzzerTestOneInput for libFuzzer (fuzz/run) and lg_fuzz_one for
 * replay.c, which runs the committed corpus in the test suite.
 */
#ifndef LG_FUZZ_H
#define LG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "graph/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run one input through the reader under test, checking its promises
 * (a broken one traps, so the fuzzer reports a crash); returns the
 * reader's status, which replay.c checks against "valid-" and "broken-"
 * file names. */
lg_status lg_fuzz_one(const uint8_t *data, size_t size);

#define REQUIRE(cond)                  \
    do {                               \
        if (!(cond)) __builtin_trap(); \
    } while (0)

/* The readers under test take paths: an in-memory file (memfd, a regular
 * file to fstat) holding bytes, named /proc/self/fd/N in path. Returns
 * the descriptor to close afterwards, or -1 when it cannot be made. */
static inline int lg_fuzz_file(const void *bytes, size_t n, char path[64])
{
    int fd = memfd_create("lg_fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    const char *p = bytes;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
