/* outfile.c — write beside the target, then rename (outfile.h). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outfile.h"
#include "graph/status.h"

lg_status outfile_open(outfile *o, const char *path)
{
    *o = (outfile){.path = path};
    size_t size = strlen(path) + 64;
    o->tmp = malloc(size);
    if (!o->tmp) return lg_fail(LG_ERR_OUT_OF_MEMORY, "writing '%s': out of memory", path);
    /* O_EXCL: never write into a file someone else made; mode 0666 so the
     * result gets the permissions of any new file (umask applies) */
    int fd = -1;
    for (unsigned n = 0; fd < 0 && n < 100; n++) {
        snprintf(o->tmp, size, "%s.%ld.%u.tmp", path, (long)getpid(), n);
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        lg_status s = lg_fail(LG_ERR_IO, "cannot write '%s': creating '%s': %s", path, o->tmp, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        return s;
    }
    o->f = fdopen(fd, "w");
    if (!o->f) {
        int e = errno;
        close(fd);
        unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
        return lg_fail(LG_ERR_IO, "cannot write '%s': %s", path, strerror(e));
    }
    return LG_OK;
}

void outfile_abort(outfile *o)
{
    if (o->f) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    free(o->tmp);
    *o = (outfile){0};
}

lg_status outfile_commit(outfile *o)
{
    bool write_failed = ferror(o->f) != 0;
    int close_failed = fclose(o->f);
    int e = errno;
    o->f = NULL;
    const char *why = write_failed ? "a write failed" : close_failed ? strerror(e) : NULL;
    if (!why && rename(o->tmp, o->path) != 0) why = strerror(errno);
    if (!why) {
        free(o->tmp);
        *o = (outfile){0};
        return LG_OK;
    }
    lg_status s = lg_fail(LG_ERR_IO, "cannot write '%s': %s", o->path, why);
    outfile_abort(o);
    return s;
}
