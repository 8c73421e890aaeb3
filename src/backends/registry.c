/*
 * registry.c — device strings to backends (backend.h): "cpu" is always
 * there, "cuda" opens through lg_backend_cuda_open (real or refusing, as
 * meson built it), and tests may register kinds of their own. Opened
 * backends are kept for the life of the process, one per device string.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "backends/backend.h"
#include "graph/program.h"

enum { MAX_KINDS = 8, MAX_OPEN = 32, MAX_NAME = 32 };

typedef struct kind {
    char name[MAX_NAME];
    lg_backend_open_fn open;
} kind;

typedef struct opened {
    char device[MAX_NAME + 16];
    const lg_backend *b;
} opened;

static _Atomic bool tf32; /* lg_allow_tf32 (program.h) */

void lg_allow_tf32(bool allow) { tf32 = allow; }
bool lg_tf32_allowed(void) { return tf32; }

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static kind kinds[MAX_KINDS] = {{"cuda", lg_backend_cuda_open}};
static int n_kinds = 1;
static opened open_list[MAX_OPEN];
static int n_open;

lg_status lg_backend_register(const char *name, lg_backend_open_fn open)
{
    if (!name || !open || !name[0] || strlen(name) >= MAX_NAME || strchr(name, ':') || !strcmp(name, "cpu"))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_backend_register: a kind needs a name without ':' (not \"cpu\") and an opener");
    pthread_mutex_lock(&lock);
    lg_status st = LG_OK;
    for (int i = 0; !st && i < n_kinds; i++)
        if (!strcmp(kinds[i].name, name)) st = lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_backend_register: '%s' is known already", name);
    if (!st && n_kinds == MAX_KINDS) st = lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_backend_register: %d kinds at most", MAX_KINDS);
    if (!st) {
        snprintf(kinds[n_kinds].name, MAX_NAME, "%s", name);
        kinds[n_kinds++].open = open;
    }
    pthread_mutex_unlock(&lock);
    return st;
}

/* "kind" or "kind:index" into its parts; false when malformed. */
static bool parse(const char *device, char *name, int *index)
{
    const char *colon = strchr(device, ':');
    size_t len = colon ? (size_t)(colon - device) : strlen(device);
    if (len == 0 || len >= MAX_NAME) return false;
    memcpy(name, device, len);
    name[len] = '\0';
    *index = 0;
    if (!colon) return true;
    char *end = NULL;
    errno = 0;
    long v = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || errno || v > 1024) return false;
    *index = (int)v;
    return true;
}

static lg_status unknown(const char *device)
{
    char known[MAX_KINDS * (MAX_NAME + 4) + 8] = "cpu";
    for (int i = 0; i < n_kinds; i++) {
        strcat(known, ", ");
        strcat(known, kinds[i].name);
        strcat(known, ":N");
    }
    return lg_fail(LG_ERR_INVALID_ARGUMENT, "device '%s': unknown (devices are %s)", device, known);
}

lg_status lg_backend_get(const char *device, const lg_backend **out)
{
    *out = NULL;
    if (!device || !device[0] || !strcmp(device, "cpu")) {
        *out = lg_backend_cpu();
        return LG_OK;
    }
    char name[MAX_NAME];
    int index = 0;
    if (!parse(device, name, &index)) return unknown(device);
    char canon[MAX_NAME + 16];
    snprintf(canon, sizeof canon, "%s:%d", name, index);
    pthread_mutex_lock(&lock);
    lg_status st = LG_OK;
    for (int i = 0; !*out && i < n_open; i++)
        if (!strcmp(open_list[i].device, canon)) *out = open_list[i].b;
    int k = 0;
    while (!*out && k < n_kinds && strcmp(kinds[k].name, name)) k++;
    if (!*out && k == n_kinds) st = unknown(device);
    else if (!*out && n_open == MAX_OPEN) st = lg_fail(LG_ERR_INVALID_ARGUMENT, "device '%s': %d devices open already", device, MAX_OPEN);
    else if (!*out) {
        st = kinds[k].open(index, out);
        if (!st) {
            memcpy(open_list[n_open].device, canon, sizeof canon);
            open_list[n_open++].b = *out;
        }
    }
    pthread_mutex_unlock(&lock);
    return st;
}
