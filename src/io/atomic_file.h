/*
 * atomic_file.h — a file written whole or not at all, and durably: the one
 * way loopgrad writes a file it replaces (checkpoints, safetensors) and so
 * do the tools built on it (tools/viz, tools/plot compile atomic_file.c in).
 *
 * lg_atomic_file_open creates a temporary file ".<name>.XXXXXX" in the
 * target's directory (".lg-<hash>.XXXXXX" when that would pass NAME_MAX);
 * lg_atomic_file_commit flushes it, fsyncs it, renames it over the target
 * and fsyncs the directory; lg_atomic_file_abort (or a failed commit)
 * removes it. So a crash or an error leaves the old file or the new one,
 * never a torn one. A target that is a symbolic link is followed (the link
 * stays a link); a replaced file keeps its mode, a new one gets 0644. A
 * live temporary file holds an flock, so an open removes what killed
 * writers of the same target left behind.
 *
 * Errors (LG_ERR_IO, LG_ERR_OUT_OF_MEMORY, LG_ERR_INVALID_ARGUMENT for a
 * path that names no file) start with `what` (e.g. "safetensors file
 * 'm.safetensors'") and say which step failed.
 */
#ifndef LG_IO_ATOMIC_FILE_H
#define LG_IO_ATOMIC_FILE_H

#include <stdio.h>

#include "graph/status.h"

typedef struct lg_atomic_file {
    FILE *f; /* write here */
    char *what, *target, *tmp, *dir;
    int live; /* holds the flock until the rename */
} lg_atomic_file;

lg_status lg_atomic_file_open(lg_atomic_file *a, const char *path, const char *what);
/* Flush, sync and rename; on failure the temporary file is removed. */
lg_status lg_atomic_file_commit(lg_atomic_file *a);
void lg_atomic_file_abort(lg_atomic_file *a);

#endif
