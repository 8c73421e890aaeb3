/*
 * keras.c — Keras 3 .weights.h5 files into a graph's parameters (keras.h),
 * through libhdf5.
 *
 * Two passes: collect every layer of the file with weights and match each
 * weight to a parameter (names, counts, shapes), then read them all into
 * new buffers, and only when everything has been read copy into the
 * parameters, so an error anywhere leaves the graph as it was.
 */
#include <errno.h>
/* HDF5's 1.10 API (H5O_info_t with rc), which 1.12 and later map to */
#define H5_USE_110_API
#include <hdf5.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/keras.h"
#include "graph/internal.h"

enum { MAX_WEIGHTS = 8, NAME = 256 };

/* Keras's weight order within a layer, over every layer kind keras.h lists:
 * a layer's parameters are the ones of these that the graph has, in this
 * order (Dense: kernel, bias; LSTM: kernel, recurrent_kernel, bias; ...). */
static const char *const WEIGHT_ORDER[] = {"embeddings", "kernel",     "recurrent_kernel", "bias",
                                           "gamma",      "beta",       "moving_mean",      "moving_variance"};

typedef struct layer {
    char name[NAME];       /* the Keras layer's name: the parameters' scope */
    char path[NAME];       /* its group in the file, for messages */
    char vars[2][NAME];    /* the groups holding its datasets ("" if none) */
    int n;                 /* weights in the file */
    hsize_t dims[MAX_WEIGHTS][LG_MAX_RANK];
    int rank[MAX_WEIGHTS];
    lg_value param[MAX_WEIGHTS];
    void *data[MAX_WEIGHTS]; /* read in pass 2, in the parameter's dtype */
} layer;

typedef struct walk {
    hid_t file;
    layer *layers;
    int n, cap;
    lg_status s; /* the first error */
} walk;

/* ---- HDF5 helpers ------------------------------------------------------------- */

/* printf into out[NAME]; false when it does not fit. */
static bool fmt(char *out, const char *f, ...) __attribute__((format(printf, 2, 3)));
static bool fmt(char *out, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, NAME, f, ap);
    va_end(ap);
    return n >= 0 && n < NAME;
}

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *why)
{
    if (n == 0 && e->desc && e->desc[0]) snprintf(why, NAME, "%s", e->desc);
    return 0;
}

/* HDF5's account of its last failure, for messages: the innermost entry of
 * its error stack ("truncated file: eof = 1000, ...", "file signature not
 * found"). */
static const char *hdf5_why(char why[NAME])
{
    snprintf(why, NAME, "no reason given");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, why);
    return why;
}

static bool is_group(hid_t loc, const char *name)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return false;
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    if (o < 0) return false;
    bool group = H5Iget_type(o) == H5I_GROUP;
    H5Oclose(o);
    return group;
}

/* The string attribute a (of type t, one element) of the group vars into
 * out[NAME]; a string longer than out holds is an error, found from the
 * type's size before a fixed-size string is read. */
static lg_status read_name(hid_t a, hid_t t, const char *vars, char *out)
{
    hid_t mem = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mem, H5Tget_cset(t)); /* Keras writes UTF-8; HDF5 does not convert between sets */
    size_t len = 0;
    if (H5Tis_variable_str(t) > 0) {
        char *v = NULL;
        H5Tset_size(mem, H5T_VARIABLE);
        if (H5Aread(a, mem, &v) >= 0 && v && (len = strlen(v)) < NAME) memcpy(out, v, len + 1);
        if (v) H5free_memory(v);
    } else if ((len = H5Tget_size(t)) < NAME) {
        char v[NAME + 1] = {0};
        H5Tset_size(mem, len + 1);
        if (H5Aread(a, mem, v) >= 0) memcpy(out, v, strlen(v) + 1);
    }
    H5Tclose(mem);
    if (len >= NAME)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "keras: %s: the attribute 'name' has %zu bytes, above the %d of a layer name", vars, len,
                       NAME - 1);
    return LG_OK;
}

/* The string attribute "name" of the group vars into out[NAME], when it has
 * one; out is left as it is when it has none or it is not a string. */
static lg_status name_attr(hid_t file, const char *vars, char *out)
{
    if (H5Aexists_by_name(file, vars, "name", H5P_DEFAULT) <= 0) return LG_OK;
    hid_t a = H5Aopen_by_name(file, vars, "name", H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return LG_OK;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t count = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    bool string = t >= 0 && H5Tget_class(t) == H5T_STRING;
    lg_status s = LG_OK;
    if (string && count != 1) /* H5Aread would write every element */
        s = lg_fail(LG_ERR_INVALID_ARGUMENT, "keras: %s: the attribute 'name' holds %lld strings, not one", vars,
                    (long long)count);
    else if (string)
        s = read_name(a, t, vars, out);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return s;
}

/* A group the walk enters must have one hard link: Keras writes each group
 * once, and a group linked again would be read twice, or, linked under
 * itself, go round until its path is too long to say what was wrong. */
static lg_status linked_once(hid_t g, const char *path)
{
    H5O_info_t info;
    if (H5Oget_info2(g, &info, H5O_INFO_BASIC) < 0)
        return lg_fail(LG_ERR_IO, "keras: cannot read the object header of the group '%s'", path);
    if (info.rc != 1)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "keras: the group '%s' has %u hard links: a Keras weights file links each group once (a link "
                       "back up would be a cycle)",
                       path, info.rc);
    return LG_OK;
}

/* How many datasets "0", "1", ... the group holds (stops at the first gap). */
static int count_vars(hid_t file, const char *group)
{
    int n = 0;
    char name[NAME];
    for (;; n++)
        if (!fmt(name, "%s/%d", group, n) || H5Lexists(file, name, H5P_DEFAULT) <= 0) return n;
}

/* ---- libhdf5's global heap --------------------------------------------------
 * Variable-length strings (the layers' "name") live in global heap
 * collections: "GCOL", version 1, 3 reserved bytes and the collection's
 * size (a length: L bytes, 8 in Keras's files), then objects, each an index
 * (u16), a reference count (u16), 4 reserved bytes, a size (L bytes) and its
 * data padded to 8 bytes; index 0 is the free space to the end. libhdf5 1.10
 * steps from object to object by those sizes unchecked: an index-0 object
 * of size 0 loops forever, and a size past the collection reads beyond it.
 * So every collection in the file is walked here first, as libhdf5 walks
 * it, and such a step is refused. */

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static size_t read_at(FILE *f, uint64_t at, void *buf, size_t n)
{
    return at <= INT64_MAX && fseeko(f, (off_t)at, SEEK_SET) == 0 ? fread(buf, 1, n, f) : 0;
}

/* The superblock's size of lengths, L; 0 when there is no superblock (H5Fopen
 * will say so) or L is not 2, 4 or 8. */
static int length_size(FILE *f, uint64_t file_size)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char sb[16];
    for (uint64_t at = 0; at + sizeof sb <= file_size; at = at ? 2 * at : 512) /* at 0, 512, 1024, 2048, ... */
        if (read_at(f, at, sb, sizeof sb) == sizeof sb && !memcmp(sb, sig, sizeof sig)) {
            int n = sb[8] < 2 ? sb[14] : sb[10]; /* superblock versions 0 and 1, then 2 and 3 */
            return n == 2 || n == 4 || n == 8 ? n : 0;
        }
    return 0;
}

/* The collection whose "GCOL" is at byte at, if libhdf5 would read it. */
static lg_status check_collection(FILE *f, const char *path, uint64_t at, uint64_t file_size, int L)
{
    const uint64_t head = 8 + (uint64_t)L, objhdr = 8 + (uint64_t)L;
    unsigned char h[16];
    if (read_at(f, at, h, head) != head || h[4] != 1) return LG_OK;
    uint64_t size = le(h + 8, L);
    if (size < head || size > file_size - at) return LG_OK; /* libhdf5 refuses to read past the file */
    for (uint64_t p = head; p < size && objhdr <= size - p;) {
        if (read_at(f, at + p, h, objhdr) != objhdr) return LG_OK;
        uint64_t idx = le(h, 2), n = le(h + 8, L);
        uint64_t need = n > size - p ? 0 : idx ? objhdr + ((n + 7) & ~(uint64_t)7) : n;
        if (need == 0 || need > size - p)
            return lg_fail(LG_ERR_IO,
                           "keras: '%s': the global heap collection at byte %llu is corrupt: object %llu at byte %llu "
                           "of its %llu has size %llu (libhdf5 would loop or read past the collection)",
                           path, (unsigned long long)at, (unsigned long long)idx, (unsigned long long)p,
                           (unsigned long long)size, (unsigned long long)n);
        p += need;
    }
    return LG_OK;
}

/* Every "GCOL" in the file, checked; f is open on the file. */
static lg_status check_global_heaps(FILE *f, const char *path)
{
    if (fseeko(f, 0, SEEK_END) != 0) return lg_fail(LG_ERR_IO, "keras: cannot seek in '%s': %s", path, strerror(errno));
    off_t end = ftello(f);
    int L = end > 0 ? length_size(f, (uint64_t)end) : 0;
    static const size_t BLOCK = 1 << 16;
    unsigned char *buf = L ? malloc(BLOCK) : NULL;
    if (L && !buf) return lg_fail(LG_ERR_OUT_OF_MEMORY, "keras: out of memory reading '%s'", path);
    lg_status s = LG_OK;
    /* blocks overlap by 3 bytes, so a "GCOL" across a boundary is found once */
    for (uint64_t at = 0; L && s == LG_OK && at < (uint64_t)end; at += BLOCK - 3) {
        size_t got = read_at(f, at, buf, BLOCK);
        for (unsigned char *q = buf; s == LG_OK && (q = memchr(q, 'G', (size_t)(buf + got - q))) != NULL; q++)
            if (q + 4 <= buf + got && !memcmp(q, "GCOL", 4))
                s = check_collection(f, path, at + (uint64_t)(q - buf), (uint64_t)end, L);
        if (got < BLOCK) break;
    }
    free(buf);
    return s;
}

/* ---- pass 1: the layers of the file ------------------------------------------- */

static herr_t visit_child(hid_t group, const char *name, const H5L_info_t *info, void *ctx);

/* The layer at path: its weights (in vars, then cell/vars), then its
 * sublayers (any other child group: forward_layer, layers/..., ...). */
static void visit_layer(walk *w, const char *path)
{
    layer L = {0};
    const char *base = strrchr(path, '/');
    if (!fmt(L.path, "%s", path) || !fmt(L.name, "%s", base ? base + 1 : path) || !fmt(L.vars[0], "%s/vars", path) ||
        !fmt(L.vars[1], "%s/cell/vars", path)) {
        w->s = lg_fail(LG_ERR_INVALID_ARGUMENT, "keras: the group name '%s' is too long", path);
        return;
    }
    if (is_group(w->file, L.vars[0]) && (w->s = name_attr(w->file, L.vars[0], L.name)) != LG_OK) return;
    for (int k = 0; k < 2; k++) /* keep only the groups that hold weights */
        if (!is_group(w->file, L.vars[k]) || !count_vars(w->file, L.vars[k])) L.vars[k][0] = '\0';
    for (int k = 0; k < 2; k++) L.n += L.vars[k][0] ? count_vars(w->file, L.vars[k]) : 0;
    if (L.n > MAX_WEIGHTS) {
        w->s = lg_fail(LG_ERR_INVALID_ARGUMENT, "keras: layer '%s' (%s): %d weights, more than any layer loopgrad has",
                       L.name, path, L.n);
        return;
    }
    if (L.n > 0) {
        if (w->n == w->cap) {
            int cap = w->cap ? 2 * w->cap : 16;
            layer *more = realloc(w->layers, (size_t)cap * sizeof *more);
            if (!more) {
                w->s = lg_fail(LG_ERR_OUT_OF_MEMORY, "keras: out of memory");
                return;
            }
            w->layers = more, w->cap = cap;
        }
        w->layers[w->n++] = L;
    }
    hid_t g = H5Gopen2(w->file, path, H5P_DEFAULT);
    if (g < 0) {
        w->s = lg_fail(LG_ERR_IO, "keras: cannot open the group '%s'", path);
        return;
    }
    if ((w->s = linked_once(g, path)) != LG_OK) {
        H5Gclose(g);
        return;
    }
    char *p = strdup(path);
    if (!p) w->s = lg_fail(LG_ERR_OUT_OF_MEMORY, "keras: out of memory");
    hsize_t idx = 0;
    void *ctx[2] = {w, p};
    if (p) H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_child, ctx);
    free(p);
    H5Gclose(g);
}

static herr_t visit_child(hid_t group, const char *name, const H5L_info_t *info, void *ctx)
{
    walk *w = ((void **)ctx)[0];
    const char *parent = ((void **)ctx)[1];
    if (w->s != LG_OK) return 1;
    if (!strcmp(name, "vars") || !strcmp(name, "cell")) return 0;
    if (info->type != H5L_TYPE_HARD) { /* a soft link could point back up, an external one at another file */
        w->s = lg_fail(LG_ERR_INVALID_ARGUMENT, "keras: '%s/%s' is a %s link: a Keras weights file has only groups",
                       parent, name, info->type == H5L_TYPE_SOFT ? "soft" : "external");
        return 1;
    }
    if (!is_group(group, name)) return 0;
    char path[NAME];
    if (!fmt(path, "%s/%s", parent, name)) {
        w->s = lg_fail(LG_ERR_INVALID_ARGUMENT, "keras: the path '%s/%s' is too long", parent, name);
        return 1;
    }
    if (!strcmp(name, "layers")) { /* a nested model's layer list: each child is a layer */
        hid_t g = H5Gopen2(group, name, H5P_DEFAULT);
        hsize_t idx = 0;
        void *sub[2] = {w, path};
        if (g >= 0 && (w->s = linked_once(g, path)) == LG_OK)
            H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_child, sub);
        if (g >= 0) H5Gclose(g);
        return w->s != LG_OK;
    }
    visit_layer(w, path);
    return w->s != LG_OK;
}

/* ---- matching ----------------------------------------------------------------- */

static void shape_text(char *out, size_t size, int rank, const int64_t *dims)
{
    size_t k = (size_t)snprintf(out, size, "[");
    for (int i = 0; i < rank && k < size; i++) k += (size_t)snprintf(out + k, size - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (k < size) snprintf(out + k, size - k, "]");
}

static lg_status match(hid_t file, lg_graph *g, layer *L)
{
    int n = 0;
    char name[NAME];
    for (size_t k = 0; k < LG_ARRAY_LEN(WEIGHT_ORDER); k++) {
        lg_value p = fmt(name, "%s/%s", L->name, WEIGHT_ORDER[k]) ? lg_graph_find_param(g, name) : lg_value_invalid();
        if (lg_value_ok(p) && n < MAX_WEIGHTS) L->param[n++] = p;
    }
    if (n == 0)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "keras: layer '%s' (%s in the file, %d weights) is not in the graph: no parameter '%s/...'",
                       L->name, L->path, L->n, L->name);
    if (n != L->n) {
        char have[256] = "";
        for (int i = 0; i < n; i++) {
            const char *full = lg_value_name(L->param[i]);
            size_t len = strlen(have);
            snprintf(have + len, sizeof have - len, "%s%s", i ? ", " : "", full + strlen(L->name) + 1);
        }
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "keras: layer '%s' (%s): the file has %d weights, the graph %d (%s)",
                       L->name, L->path, L->n, n, have);
    }
    int i = 0;
    for (int k = 0; k < 2; k++) {
        int m = L->vars[k][0] ? count_vars(file, L->vars[k]) : 0;
        for (int j = 0; j < m; j++, i++) {
            char ds[NAME];
            hid_t d = fmt(ds, "%s/%d", L->vars[k], j) ? H5Dopen2(file, ds, H5P_DEFAULT) : -1;
            hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
            /* a null dataspace (no data, not even a scalar's) counts as no array */
            int rank = sp >= 0 && H5Sget_simple_extent_type(sp) != H5S_NULL ? H5Sget_simple_extent_ndims(sp) : -1;
            if (rank >= 0 && rank <= LG_MAX_RANK) H5Sget_simple_extent_dims(sp, L->dims[i], NULL);
            if (sp >= 0) H5Sclose(sp);
            if (d >= 0) H5Dclose(d);
            if (rank < 0 || rank > LG_MAX_RANK)
                return lg_fail(LG_ERR_INVALID_ARGUMENT, "keras: layer '%s': %s is not an array of rank 0 to %d",
                               L->name, ds, LG_MAX_RANK);
            L->rank[i] = rank;
            lg_shape want = lg_value_shape(L->param[i]);
            int64_t got[LG_MAX_RANK];
            bool same = want.rank == rank;
            for (int r = 0; r < rank; r++) {
                got[r] = (int64_t)L->dims[i][r];
                same = same && want.dims[r] == got[r];
            }
            if (!same) {
                char a[96], b[96];
                shape_text(a, sizeof a, rank, got);
                shape_text(b, sizeof b, want.rank, want.dims);
                return lg_fail(LG_ERR_SHAPE, "keras: layer '%s' weight %d (%s): the file has %s, the graph %s", L->name,
                               i, lg_value_name(L->param[i]) + strlen(L->name) + 1, a, b);
            }
        }
    }
    return LG_OK;
}

/* Every parameter of g must be filled by some layer. */
static lg_status all_filled(const lg_graph *g, const layer *layers, int n)
{
    for (int p = 0; p < lg_graph_param_count(g); p++) {
        lg_value v = lg_graph_param(g, p);
        bool found = false;
        for (int l = 0; l < n && !found; l++)
            for (int i = 0; i < layers[l].n && !found; i++) found = lg_value_same(layers[l].param[i], v);
        if (!found)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "keras: the graph's parameter '%s' has no weight in the file",
                           lg_value_name(v));
    }
    return LG_OK;
}

/* ---- pass 2: read ------------------------------------------------------------- */

static lg_status read_layer(hid_t file, layer *L)
{
    int i = 0;
    for (int k = 0; k < 2; k++) {
        int m = L->vars[k][0] ? count_vars(file, L->vars[k]) : 0;
        for (int j = 0; j < m; j++, i++) {
            lg_tensor *t = lg_param_tensor(L->param[i]);
            bool f64 = lg_tensor_dtype(t) == LG_F64;
            if (lg_tensor_dtype(t) != LG_F32 && !f64)
                return lg_fail(LG_ERR_INVALID_ARGUMENT, "keras: layer '%s': parameter '%s' is not f32 or f64", L->name,
                               lg_value_name(L->param[i]));
            size_t bytes = lg_tensor_bytes(t);
            L->data[i] = malloc(bytes ? bytes : 1);
            if (!L->data[i]) return lg_fail(LG_ERR_OUT_OF_MEMORY, "keras: out of memory reading layer '%s'", L->name);
            char ds[NAME];
            hid_t d = fmt(ds, "%s/%d", L->vars[k], j) ? H5Dopen2(file, ds, H5P_DEFAULT) : -1;
            herr_t r = d >= 0 ? H5Dread(d, f64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                        L->data[i])
                              : -1;
            char why[NAME];
            if (r < 0) hdf5_why(why); /* before H5Dclose, which clears HDF5's error stack */
            if (d >= 0) H5Dclose(d);
            if (r < 0)
                return lg_fail(LG_ERR_IO, "keras: layer '%s': cannot read %s as numbers (HDF5: %s)", L->name, ds, why);
        }
    }
    return LG_OK;
}

lg_status lg_keras_load_weights(const char *path, lg_graph *g)
{
    if (!g || !path) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_keras_load_weights: a NULL argument");
    if (lg_graph_error(g)) return lg_fail(LG_ERR_GRAPH, "lg_keras_load_weights: the graph has an error: %s", lg_graph_error(g));
    /* HDF5 prints its error stack by default: quiet while we work */
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    lg_status s = LG_OK;
    walk w = {.file = -1};
    char why[NAME];
    FILE *f = fopen(path, "rb");
    if (!f) s = lg_fail(LG_ERR_IO, "keras: cannot open '%s': %s", path, strerror(errno));
    if (f) s = check_global_heaps(f, path), fclose(f);
    if (s == LG_OK && (w.file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        s = lg_fail(LG_ERR_IO, "keras: '%s' is not an HDF5 file, or a damaged one (HDF5: %s)", path, hdf5_why(why));
    if (s == LG_OK && !is_group(w.file, "layers"))
        s = lg_fail(LG_ERR_INVALID_ARGUMENT, "keras: '%s' has no group 'layers': not a Keras 3 .weights.h5 file", path);
    if (s == LG_OK) {
        hid_t top = H5Gopen2(w.file, "layers", H5P_DEFAULT);
        hsize_t idx = 0;
        void *ctx[2] = {&w, "layers"};
        if (top >= 0 && (w.s = linked_once(top, "layers")) == LG_OK)
            H5Literate(top, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_child, ctx);
        if (top >= 0) H5Gclose(top);
        s = w.s;
    }
    for (int l = 0; s == LG_OK && l < w.n; l++) s = match(w.file, g, &w.layers[l]);
    if (s == LG_OK) s = all_filled(g, w.layers, w.n);
    for (int l = 0; s == LG_OK && l < w.n; l++) s = read_layer(w.file, &w.layers[l]);
    for (int l = 0; l < w.n; l++)
        for (int i = 0; i < w.layers[l].n; i++) {
            if (s == LG_OK) {
                lg_tensor *t = lg_param_tensor(w.layers[l].param[i]);
                lg_tensor_copy_in(t, w.layers[l].data[i], lg_tensor_bytes(t));
            }
            free(w.layers[l].data[i]);
        }
    free(w.layers);
    if (w.file >= 0) H5Fclose(w.file);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return s;
}
