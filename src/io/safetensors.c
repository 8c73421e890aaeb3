/* safetensors.c — the safetensors file format: validating reader and atomic
 * writer (checkpoint.h). JSON goes through jansson. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/checkpoint.h"
#include "graph/internal.h"
#include "io/atomic_file.h"
#include "io/file.h"

/* Tensor bytes go between memory and file unchanged. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

#define METADATA_KEY "__metadata__"

typedef struct st_entry {
    char *name;
    lg_dtype dtype;
    lg_shape shape;
    size_t begin, end; /* within the data section */
} st_entry;

struct lg_safetensors {
    int n;
    st_entry *e;   /* header order */
    int *by_name;  /* indices into e, sorted by name */
    const unsigned char *data; /* the data section, inside `bytes` */
    size_t data_len;
    unsigned char *bytes;      /* owned: the file, or its data section */
    int n_meta;
    char **meta; /* key, value, key, value, ... */
};

static const struct {
    const char *name;
    lg_dtype dtype;
} dtypes[] = {{"F32", LG_F32}, {"F64", LG_F64}, {"I32", LG_I32}};
_Static_assert(LG_ARRAY_LEN(dtypes) == LG_DTYPE_COUNT, "a dtype without a safetensors name");

static const char *st_dtype_name(lg_dtype t)
{
    for (size_t i = 0; i < LG_ARRAY_LEN(dtypes); i++)
        if (dtypes[i].dtype == t) return dtypes[i].name;
    return "?";
}

void lg_safetensors_free(lg_safetensors *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->e[i].name);
    for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->e);
    free(f->by_name);
    free(f->meta);
    free(f->bytes);
    free(f);
}

/* ---- reading ------------------------------------------------------------------ */

/* Messages of a parse start with src: "safetensors file '<path>'" or
 * "safetensors buffer". */
#define SRC_MAX 512

/* qsort has no context argument; the entries being sorted are set here for
 * the duration of one sort (sorts never nest). Indices are sorted. */
static _Thread_local const st_entry *sort_entries;

static int cmp_begin_q(const void *a, const void *b)
{
    const st_entry *x = &sort_entries[*(const int *)a], *y = &sort_entries[*(const int *)b];
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name_q(const void *a, const void *b)
{
    return strcmp(sort_entries[*(const int *)a].name, sort_entries[*(const int *)b].name);
}

/* A non-negative JSON integer, or false. */
static bool json_size(const json_t *j, uint64_t *out)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0) return false;
    *out = (uint64_t)json_integer_value(j);
    return true;
}

static lg_status parse_entry(const char *src, const char *name, json_t *v, size_t data_len, st_entry *e)
{
    if (!json_is_object(v))
        return lg_fail(LG_ERR_IO, "%s: tensor '%s': header entry is not a JSON object", src, name);
    const char *key;
    json_t *field;
    json_object_foreach(v, key, field)
    {
        if (strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 && strcmp(key, "data_offsets") != 0)
            return lg_fail(LG_ERR_IO, "%s: tensor '%s': unknown field '%s'", src, name, key);
    }
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
    json_t *offs = json_object_get(v, "data_offsets");
    if (!dt || !shape || !offs)
        return lg_fail(LG_ERR_IO, "%s: tensor '%s': field '%s' is missing", src, name,
                       !dt ? "dtype" : !shape ? "shape" : "data_offsets");

    if (!json_is_string(dt))
        return lg_fail(LG_ERR_IO, "%s: tensor '%s': dtype is not a string", src, name);
    size_t k = 0;
    while (k < LG_ARRAY_LEN(dtypes) && strcmp(json_string_value(dt), dtypes[k].name) != 0) k++;
    if (k == LG_ARRAY_LEN(dtypes))
        return lg_fail(LG_ERR_DTYPE, "%s: tensor '%s': dtype '%s' is not one loopgrad reads (F32, F64, I32)",
                       src, name, json_string_value(dt));
    e->dtype = dtypes[k].dtype;

    if (!json_is_array(shape))
        return lg_fail(LG_ERR_IO, "%s: tensor '%s': shape is not an array", src, name);
    size_t rank = json_array_size(shape);
    if (rank > LG_MAX_RANK)
        return lg_fail(LG_ERR_SHAPE, "%s: tensor '%s': rank %zu is above LG_MAX_RANK (%d)", src,
                       name, rank, LG_MAX_RANK);
    e->shape.rank = (int)rank;
    for (size_t i = 0; i < rank; i++) {
        uint64_t d;
        if (!json_size(json_array_get(shape, i), &d))
            return lg_fail(LG_ERR_IO, "%s: tensor '%s': shape entry %zu is not a non-negative integer",
                           src, name, i);
        e->shape.dims[i] = (int64_t)d;
    }
    size_t bytes; /* the size rule of tensor.h, so every shape that parses can be got */
    if (!lg_shape_bytes(e->shape, e->dtype, &bytes))
        return lg_fail(LG_ERR_IO, "%s: tensor '%s': shape %s overflows a byte count (its nonzero dims must "
                       "multiply within int64, its bytes within LG_MAX_BYTES)", src, name, lg_shape_cstr(e->shape));

    uint64_t begin, end;
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_size(json_array_get(offs, 0), &begin) ||
        !json_size(json_array_get(offs, 1), &end))
        return lg_fail(LG_ERR_IO, "%s: tensor '%s': data_offsets is not [begin, end] of non-negative integers",
                       src, name);
    if (end < begin)
        return lg_fail(LG_ERR_IO, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin",
                       src, name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_len)
        return lg_fail(LG_ERR_IO, "%s: tensor '%s': data_offsets [%llu, %llu] beyond the %zu data bytes",
                       src, name, (unsigned long long)begin, (unsigned long long)end, data_len);
    if (end - begin != bytes)
        return lg_fail(LG_ERR_IO, "%s: tensor '%s': %s %s is %llu bytes but data_offsets [%llu, %llu] hold %llu",
                       src, name, st_dtype_name(e->dtype), lg_shape_cstr(e->shape),
                       (unsigned long long)bytes, (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)(end - begin));
    e->begin = (size_t)begin;
    e->end = (size_t)end;
    return LG_OK;
}

static lg_status parse_metadata(const char *src, json_t *v, lg_safetensors *f)
{
    if (!json_is_object(v))
        return lg_fail(LG_ERR_IO, "%s: " METADATA_KEY " is not a JSON object", src);
    f->meta = calloc(2 * json_object_size(v) + 1, sizeof *f->meta);
    if (!f->meta) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (!json_is_string(val))
            return lg_fail(LG_ERR_IO, "%s: " METADATA_KEY " '%s' is not a string", src, key);
        char *k = strdup(key), *s = strdup(json_string_value(val));
        f->meta[2 * f->n_meta] = k;
        f->meta[2 * f->n_meta + 1] = s;
        f->n_meta++;
        if (!k || !s) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
    }
    return LG_OK;
}

/* The tensors, sorted by begin, must tile [0, data_len). */
static lg_status check_layout(const char *src, const lg_safetensors *f, int *order)
{
    for (int i = 0; i < f->n; i++) order[i] = i;
    sort_entries = f->e;
    qsort(order, (size_t)f->n, sizeof *order, cmp_begin_q);
    size_t at = 0;
    for (int k = 0; k < f->n; k++) {
        const st_entry *e = &f->e[order[k]];
        if (e->begin < at)
            return lg_fail(LG_ERR_IO, "%s: tensor '%s': data_offsets [%zu, %zu] overlap '%s' before it",
                           src, e->name, e->begin, e->end, f->e[order[k - 1]].name);
        if (e->begin > at)
            return lg_fail(LG_ERR_IO, "%s: tensor '%s': data_offsets [%zu, %zu] leave bytes [%zu, %zu) unused",
                           src, e->name, e->begin, e->end, at, e->begin);
        at = e->end;
    }
    if (at != f->data_len)
        return lg_fail(LG_ERR_IO, "%s: the tensors cover %zu of the %zu data bytes", src, at,
                       f->data_len);
    return LG_OK;
}

static lg_status parse_header(const char *src, json_t *root, lg_safetensors *f)
{
    if (!json_is_object(root)) return lg_fail(LG_ERR_IO, "%s: header is not a JSON object", src);
    size_t n = json_object_size(root);
    if (n > INT_MAX) return lg_fail(LG_ERR_IO, "%s: %zu header entries is too many", src, n);
    f->e = calloc(n + 1, sizeof *f->e);
    f->by_name = calloc(n + 1, sizeof *f->by_name);
    if (!f->e || !f->by_name) return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        lg_status s;
        if (strcmp(key, METADATA_KEY) == 0) {
            s = parse_metadata(src, v, f);
        } else {
            st_entry *e = &f->e[f->n];
            s = parse_entry(src, key, v, f->data_len, e);
            if (s == LG_OK && !(e->name = strdup(key)))
                s = lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
            f->n += s == LG_OK;
        }
        if (s != LG_OK) return s;
    }
    lg_status s = check_layout(src, f, f->by_name);
    if (s != LG_OK) return s;
    for (int i = 0; i < f->n; i++) f->by_name[i] = i;
    sort_entries = f->e;
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name_q);
    return LG_OK;
}

/* Parse the len bytes at buf. With take, a successful parse keeps buf (a
 * malloc'd block) as the file's memory; without, the data section is
 * copied. */
static lg_status parse(const char *src, const unsigned char *buf, size_t len, bool take, lg_safetensors **out)
{
    *out = NULL;
    if (len < 8)
        return lg_fail(LG_ERR_IO, "%s: %zu bytes, shorter than the 8-byte header length", src, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > len - 8)
        return lg_fail(LG_ERR_IO, "%s: not a safetensors file (its header length, %llu, is beyond the %zu bytes that "
                                  "follow it)", src, (unsigned long long)n, len - 8);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return lg_fail(LG_ERR_IO, "%s: header is not valid JSON (at header byte %d: %s)", src,
                       jerr.position, jerr.text);
    lg_safetensors *f = calloc(1, sizeof *f);
    lg_status s = f ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
    if (s == LG_OK) {
        f->data_len = len - 8 - (size_t)n;
        s = parse_header(src, root, f);
    }
    json_decref(root);
    if (s == LG_OK && take) {
        f->bytes = (unsigned char *)buf;
        f->data = buf + 8 + n;
    } else if (s == LG_OK) {
        f->bytes = malloc(f->data_len ? f->data_len : 1);
        if (!f->bytes) s = lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
        else if (f->data_len) memcpy(f->bytes, buf + 8 + n, f->data_len);
        f->data = f->bytes;
    }
    if (s != LG_OK) {
        lg_safetensors_free(f);
        return s;
    }
    *out = f;
    return LG_OK;
}

lg_status lg_safetensors_parse(const void *buf, size_t len, lg_safetensors **out)
{
    if (out) *out = NULL;
    if (!out || (!buf && len))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_parse: %s is NULL", !out ? "out" : "buf");
    return parse("safetensors buffer", buf ? buf : (const void *)"", len, false, out);
}

lg_status lg_safetensors_open(const char *path, lg_safetensors **out)
{
    if (out) *out = NULL;
    if (!path || !out)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_open: %s is NULL", !path ? "path" : "out");
    char src[SRC_MAX];
    snprintf(src, sizeof src, "safetensors file '%s'", path);
    int fd;
    struct stat st;
    lg_status s = lg_open_regular(path, src, &fd, &st);
    if (s != LG_OK) return s;
    if ((uintmax_t)st.st_size > SIZE_MAX - 1)
        s = lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: %lld bytes do not fit in memory", src,
                    (long long)st.st_size);
    size_t len = s == LG_OK ? (size_t)st.st_size : 0;
    unsigned char *buf = s == LG_OK ? malloc(len + 1) : NULL;
    if (s == LG_OK && !buf)
        s = lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", src, len);
    size_t got = 0;
    while (s == LG_OK && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) s = lg_fail(LG_ERR_IO, "%s: read failed: %s", src, strerror(errno));
        else if (r == 0) s = lg_fail(LG_ERR_IO, "%s: the file shrank while being read", src);
        got += r > 0 ? (size_t)r : 0;
    }
    close(fd);
    if (s == LG_OK) s = parse(src, buf, len, true, out);
    if (s != LG_OK) free(buf);
    return s;
}

/* ---- accessors ---------------------------------------------------------------- */

int lg_safetensors_count(const lg_safetensors *f) { return f ? f->n : 0; }

static const st_entry *entry_at(const lg_safetensors *f, int i) { return f && i >= 0 && i < f->n ? &f->e[i] : NULL; }

const char *lg_safetensors_name(const lg_safetensors *f, int i)
{
    const st_entry *e = entry_at(f, i);
    return e ? e->name : NULL;
}

lg_dtype lg_safetensors_dtype(const lg_safetensors *f, int i)
{
    const st_entry *e = entry_at(f, i);
    return e ? e->dtype : LG_DTYPE_COUNT;
}

lg_shape lg_safetensors_shape(const lg_safetensors *f, int i)
{
    const st_entry *e = entry_at(f, i);
    return e ? e->shape : (lg_shape){.rank = -1};
}

int lg_safetensors_find(const lg_safetensors *f, const char *name)
{
    if (!f || !name) return -1;
    int lo = 0, hi = f->n; /* binary search over by_name */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->e[f->by_name[mid]].name, name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static lg_status find_or_fail(const lg_safetensors *f, const char *name, const char *fn, const st_entry **e)
{
    if (!f || !name) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !f ? "file" : "name");
    int i = lg_safetensors_find(f, name);
    if (i < 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: the file has no tensor '%s'", fn, name);
    *e = &f->e[i];
    return LG_OK;
}

lg_status lg_safetensors_get(const lg_safetensors *f, const char *name, lg_tensor **out)
{
    if (out) *out = NULL;
    if (!out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_get: out is NULL");
    const st_entry *e = NULL;
    lg_status s = find_or_fail(f, name, "lg_safetensors_get", &e);
    if (s != LG_OK) return s;
    lg_tensor *t = NULL;
    s = lg_tensor_new(e->dtype, e->shape, &t);
    if (s != LG_OK) return s;
    if (e->end > e->begin) memcpy(lg_tensor_data(t), f->data + e->begin, e->end - e->begin);
    *out = t;
    return LG_OK;
}

lg_status lg_safetensors_read(const lg_safetensors *f, const char *name, lg_tensor *dst)
{
    const st_entry *e = NULL;
    lg_status s = find_or_fail(f, name, "lg_safetensors_read", &e);
    if (s != LG_OK) return s;
    if (!dst) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_read: dst is NULL");
    if (lg_tensor_dtype(dst) != e->dtype)
        return lg_fail(LG_ERR_DTYPE, "tensor '%s': the file has %s, the destination is %s", name,
                       lg_dtype_name(e->dtype), lg_dtype_name(lg_tensor_dtype(dst)));
    if (!lg_shape_equal(lg_tensor_shape(dst), e->shape))
        return lg_fail(LG_ERR_SHAPE, "tensor '%s': the file has shape %s, the destination is %s", name,
                       lg_shape_cstr(e->shape), lg_shape_cstr(lg_tensor_shape(dst)));
    if (e->end > e->begin) memcpy(lg_tensor_data(dst), f->data + e->begin, e->end - e->begin);
    return LG_OK;
}

const char *lg_safetensors_metadata(const lg_safetensors *f, const char *key)
{
    if (!f || !key) return NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

/* ---- writing ------------------------------------------------------------------ */

/* The header JSON for the tensors, laid out in order, padded with spaces
 * to a multiple of 8 bytes (malloc'd; *len without the terminator). */
static lg_status build_header(const char *const *names, lg_tensor *const *tensors, int n, char **out, size_t *len)
{
    json_t *root = json_object();
    if (!root) return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_safetensors_save: out of memory");
    lg_status s = LG_OK;
    size_t at = 0;
    for (int i = 0; i < n && s == LG_OK; i++) {
        lg_shape sh = lg_tensor_shape(tensors[i]);
        size_t bytes = lg_tensor_bytes(tensors[i]);
        json_t *shape = json_array(), *e = json_object();
        bool ok = shape && e;
        for (int d = 0; d < sh.rank && ok; d++) ok = json_array_append_new(shape, json_integer(sh.dims[d])) == 0;
        ok = ok && json_object_set_new(e, "dtype", json_string(st_dtype_name(lg_tensor_dtype(tensors[i])))) == 0;
        ok = ok && json_object_set(e, "shape", shape) == 0;
        ok = ok &&
             json_object_set_new(e, "data_offsets",
                                 json_pack("[II]", (json_int_t)at, (json_int_t)(at + bytes))) == 0;
        json_decref(shape);
        if (!ok) {
            json_decref(e);
            s = lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_safetensors_save: out of memory");
        } else if (json_object_set_new(root, names[i], e) != 0) { /* takes e, even when it fails */
            s = lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_save: name %d ('%s') is not valid UTF-8", i, names[i]);
        }
        at += bytes;
    }
    char *text = s == LG_OK ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (s == LG_OK && !text) s = lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_safetensors_save: out of memory");
    if (s != LG_OK) return s;
    size_t n_text = strlen(text), padded = (n_text + 7) / 8 * 8;
    char *h = realloc(text, padded + 1);
    if (!h) {
        free(text);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_safetensors_save: out of memory");
    }
    memset(h + n_text, ' ', padded - n_text);
    h[padded] = '\0';
    *out = h;
    *len = padded;
    return LG_OK;
}

static lg_status check_save_args(const char *path, const char *const *names, lg_tensor *const *tensors, int n)
{
    if (!path || (n > 0 && (!names || !tensors)))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_save: %s is NULL",
                       !path ? "path" : !names ? "names" : "tensors");
    if (n < 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_save: n is %d", n);
    for (int i = 0; i < n; i++) {
        if (!names[i] || !names[i][0])
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_save: name %d is %s", i,
                           !names[i] ? "NULL" : "empty");
        if (!tensors[i])
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_save: tensor %d ('%s') is NULL", i, names[i]);
        if (strcmp(names[i], METADATA_KEY) == 0)
            return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_save: name %d is the reserved '" METADATA_KEY "'",
                           i);
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_safetensors_save: name '%s' is given twice (%d and %d)",
                               names[i], j, i);
    }
    return LG_OK;
}

/* The file into f: the length of the header, the header, the tensors. */
static void write_file(FILE *f, const char *header, size_t header_len, lg_tensor *const *tensors, int n)
{
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, header_len, f);
    for (int i = 0; i < n; i++) /* an empty tensor's data may be NULL, which fwrite must not get */
        if (lg_tensor_bytes(tensors[i]) > 0) fwrite(lg_tensor_cdata(tensors[i]), 1, lg_tensor_bytes(tensors[i]), f);
}

lg_status lg_safetensors_save(const char *path, const char *const *names, lg_tensor *const *tensors, int n)
{
    lg_status s = check_save_args(path, names, tensors, n);
    if (s != LG_OK) return s;
    char *header = NULL;
    size_t header_len = 0;
    s = build_header(names, tensors, n, &header, &header_len);
    if (s != LG_OK) return s;
    size_t size = strlen(path) + 32;
    char *what = malloc(size);
    if (!what) {
        free(header);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "lg_safetensors_save: out of memory");
    }
    snprintf(what, size, "safetensors file '%s'", path);
    lg_atomic_file out;
    s = lg_atomic_file_open(&out, path, what);
    if (s == LG_OK) {
        write_file(out.f, header, header_len, tensors, n);
        s = lg_atomic_file_commit(&out);
    }
    free(header), free(what);
    return s;
}
