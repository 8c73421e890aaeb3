/* file.h — what the loaders in src/io share: opening a file to read it. */
#ifndef LG_IO_FILE_H
#define LG_IO_FILE_H

#include <sys/stat.h>

#include "graph/status.h"

/* Open path for reading, refusing anything that is not a regular file (a
 * named pipe, a device, a directory) before reading a byte: the open is
 * non-blocking, so a FIFO without a writer cannot hang it, and fstat
 * decides. On success *fd is the open descriptor (blocking again, close-on-
 * exec) and *st its fstat. On failure *fd is -1 and the error names `what`
 * (e.g. "lg_idx_read: data/x.idx"): LG_ERR_IO "<what>: cannot open: <errno
 * text>" or "<what>: is not a regular file (a named pipe)". */
lg_status lg_open_regular(const char *path, const char *what, int *fd, struct stat *st);

#endif
