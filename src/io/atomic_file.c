/* atomic_file.c — write beside the target, sync, rename (atomic_file.h). */
#define _DEFAULT_SOURCE /* flock */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"

/* The file a save writes: path itself, or, when path is a symbolic link,
 * the file it leads to (followed link by link, as editors save), so the
 * link stays a link. A dangling link's target is created. malloc'd. */
static lg_status save_target(const char *path, const char *what, char **out)
{
    char *cur = strdup(path);
    for (int hops = 0; cur; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) break; /* a new file, or not a link */
        if (hops == 40) {
            free(cur);
            return lg_fail(LG_ERR_IO, "%s: too many levels of symbolic links", what);
        }
        char link[PATH_MAX];
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0) {
            lg_status s = lg_fail(LG_ERR_IO, "%s: cannot read the link '%s': %s", what, cur, strerror(errno));
            free(cur);
            return s;
        }
        link[n] = '\0';
        const char *slash = strrchr(cur, '/');
        int keep = link[0] == '/' || !slash ? 0 : (int)(slash - cur) + 1; /* a relative link is from its directory */
        size_t size = (size_t)keep + (size_t)n + 1;
        char *next = malloc(size);
        if (next) snprintf(next, size, "%.*s%s", keep, cur, link);
        free(cur);
        cur = next;
    }
    if (!cur) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    *out = cur;
    return LG_OK;
}

/* A temporary file's name in the target's directory: ".<base>." and six
 * mkstemp characters, or, when that would pass NAME_MAX, ".lg-<hash of
 * base>." and six, so any legal name can be saved. A name that fits the
 * pattern with the same prefix is a temporary file of this target. */
#define TEMP_SUFFIX "XXXXXX"

static void temp_prefix(const char *base, char *out, size_t size)
{
    if (strlen(base) + 2 + strlen(TEMP_SUFFIX) <= NAME_MAX) {
        snprintf(out, size, ".%s.", base);
        return;
    }
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)base; *p; p++) h = (h ^ *p) * 0x100000001b3u;
    snprintf(out, size, ".lg-%016llx.", (unsigned long long)h);
}

/* "<dir>/<prefix>XXXXXX" for mkstemp, <dir> alone (for its fsync and the
 * clean-up) and the prefix. */
static lg_status temp_names(lg_atomic_file *a, char prefix[NAME_MAX + 1])
{
    const char *path = a->target, *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path) : 0; /* "/x": the root, "x": "." */
    a->tmp = malloc(strlen(path) + NAME_MAX + 2);
    a->dir = malloc((size_t)dir_len + 2);
    if (!a->tmp || !a->dir) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", a->what);
    snprintf(a->dir, (size_t)dir_len + 2, "%.*s", dir_len, !slash ? "." : slash == path ? "/" : path);
    int at = slash ? (int)(slash - path) + 1 : 0;
    temp_prefix(path + at, prefix, NAME_MAX + 1);
    sprintf(a->tmp, "%.*s%s" TEMP_SUFFIX, at, path, prefix);
    return LG_OK;
}

/* Remove temporary files that earlier saves of this target left behind
 * when they were killed. A live save holds an flock on its temporary file
 * until it is renamed, so only files whose lock can be taken are stale;
 * the lock dies with its process. Best effort: what cannot be removed
 * stays, and the save goes on. */
static void remove_stale_temps(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d) return;
    size_t n = strlen(prefix), n_suffix = strlen(TEMP_SUFFIX);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (strncmp(name, prefix, n) != 0 || strlen(name) != n + n_suffix) continue;
        bool pattern = true;
        for (size_t i = n; i < n + n_suffix; i++)
            pattern = pattern && ((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
                                  (name[i] >= '0' && name[i] <= '9'));
        if (!pattern) continue;
        int fd = openat(dirfd(d), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat held, named;
        if (fstat(fd, &held) == 0 && S_ISREG(held.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            fstatat(dirfd(d), name, &named, AT_SYMLINK_NOFOLLOW) == 0 && named.st_ino == held.st_ino &&
            named.st_dev == held.st_dev)
            unlinkat(dirfd(d), name, 0);
        close(fd);
    }
    closedir(d);
}

static void release(lg_atomic_file *a)
{
    if (a->live >= 0) close(a->live);
    free(a->what), free(a->target), free(a->tmp), free(a->dir);
    *a = (lg_atomic_file){.live = -1};
}

lg_status lg_atomic_file_open(lg_atomic_file *a, const char *path, const char *what)
{
    *a = (lg_atomic_file){.live = -1, .what = strdup(what)};
    if (!a->what) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    if (!path[0] || path[strlen(path) - 1] == '/') {
        release(a);
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: the path names no file", what);
    }
    char prefix[NAME_MAX + 1];
    lg_status s = save_target(path, what, &a->target);
    if (s == LG_OK) s = temp_names(a, prefix);
    if (s != LG_OK) {
        release(a);
        return s;
    }
    remove_stale_temps(a->dir, prefix);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        s = lg_fail(LG_ERR_IO, "%s: cannot create a temporary file in '%s': %s", what, a->dir, strerror(errno));
        release(a);
        return s;
    }
    /* The lock marks the file live for remove_stale_temps until it is
     * renamed: `live` shares it and keeps it past fclose, which must come
     * first to catch a failed write-back. */
    flock(fd, LOCK_EX | LOCK_NB);
    a->live = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        s = lg_fail(LG_ERR_IO, "%s: %s", what, strerror(errno));
        close(fd);
        unlink(a->tmp);
        release(a);
    }
    return s;
}

void lg_atomic_file_abort(lg_atomic_file *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    release(a);
}

lg_status lg_atomic_file_commit(lg_atomic_file *a)
{
    /* a replaced file keeps its mode; a new one gets 0644 (mkstemp made 0600) */
    struct stat st;
    mode_t mode = stat(a->target, &st) == 0 && S_ISREG(st.st_mode) ? st.st_mode & 07777 : 0644;
    const char *step = "write";
    bool ok = fflush(a->f) == 0 && !ferror(a->f);
    if (ok) step = "chmod", ok = fchmod(fileno(a->f), mode) == 0;
    if (ok) step = "fsync", ok = fsync(fileno(a->f)) == 0;
    int err = errno;
    int closed = fclose(a->f);
    a->f = NULL;
    if (ok && closed != 0) ok = false, step = "close", err = errno;
    if (ok && rename(a->tmp, a->target) != 0) ok = false, step = "rename onto the target", err = errno;
    if (!ok) {
        lg_status s = lg_fail(LG_ERR_IO, "%s: %s failed: %s", a->what, step, err ? strerror(err) : "an error");
        lg_atomic_file_abort(a);
        return s;
    }
    /* make the rename durable too; the file is in place whatever this says */
    int dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    release(a);
    return LG_OK;
}
