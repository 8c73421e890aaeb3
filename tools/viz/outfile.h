/*
 * outfile.h — a file written whole or not at all (private to tools/viz).
 *
 * outfile_open creates "<path>.<pid>.<n>.tmp" in path's directory;
 * outfile_commit closes it and renames it over path; outfile_abort (or a
 * failed commit) closes and removes it. Either way no partial file is left.
 */
#ifndef LG_VIZ_OUTFILE_H
#define LG_VIZ_OUTFILE_H

#include <stdio.h>

#include "graph/status.h"

typedef struct outfile {
    const char *path; /* the caller's */
    char *tmp;
    FILE *f;
} outfile;

/* LG_ERR_IO naming path when the temporary file cannot be created. */
lg_status outfile_open(outfile *o, const char *path);
/* Close and rename; LG_ERR_IO naming path if a write, the close or the
 * rename failed (the temporary file is removed then). */
lg_status outfile_commit(outfile *o);
void outfile_abort(outfile *o);

#endif
