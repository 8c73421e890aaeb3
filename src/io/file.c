/* file.c — opening a loader's input (file.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "graph/internal.h"
#include "io/file.h"

static const char *kind(mode_t m)
{
    if (S_ISFIFO(m)) return "a named pipe";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a plain file";
}

lg_status lg_open_regular(const char *path, const char *what, int *fd, struct stat *st)
{
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0) return lg_fail(LG_ERR_IO, "%s: cannot open: %s", what, strerror(errno));
    lg_status s = LG_OK;
    int flags;
    if (fstat(*fd, st) != 0)
        s = lg_fail(LG_ERR_IO, "%s: cannot stat: %s", what, strerror(errno));
    else if (!S_ISREG(st->st_mode))
        s = lg_fail(LG_ERR_IO, "%s: is not a regular file (%s)", what, kind(st->st_mode));
    else if ((flags = fcntl(*fd, F_GETFL)) < 0 || fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
        s = lg_fail(LG_ERR_IO, "%s: cannot clear O_NONBLOCK: %s", what, strerror(errno));
    if (s != LG_OK) {
        close(*fd);
        *fd = -1;
    }
    return s;
}
