/* checkpoint.c — a graph's parameters and an optimizer's state as a
 * safetensors file, and PyTorch recurrent weights imported into cells
 * (checkpoint.h). The file format itself is safetensors.c's. */
#include <string.h>

#include "graph/checkpoint.h"
#include "graph/internal.h"
#include "graph/optim.h"

#define OPT_PREFIX "optimizer/"

static bool is_optimizer_name(const char *name) { return strncmp(name, OPT_PREFIX, strlen(OPT_PREFIX)) == 0; }

/* The tensors a checkpoint of g (and opt) holds, by name, in order: g's
 * parameters, then opt's state. */
typedef struct ckpt_list {
    int n;
    const char **names;
    lg_tensor **tensors;
} ckpt_list;

static void list_free(ckpt_list *l)
{
    free(l->names);
    free(l->tensors);
}

static lg_status list_make(const char *fn, lg_graph *g, lg_optimizer *opt, ckpt_list *l)
{
    int n_params = lg_graph_param_count(g), n_state = opt ? lg_optimizer_state_count(opt) : 0;
    *l = (ckpt_list){0};
    l->names = calloc((size_t)(n_params + n_state) + 1, sizeof *l->names);
    l->tensors = calloc((size_t)(n_params + n_state) + 1, sizeof *l->tensors);
    if (!l->names || !l->tensors) {
        list_free(l);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    for (int i = 0; i < n_params; i++) {
        lg_value p = lg_graph_param(g, i);
        l->names[i] = lg_value_name(p);
        l->tensors[i] = lg_param_tensor(p); /* the host copy, brought back from a device */
        if (!l->tensors[i]) {
            list_free(l);
            return lg_fail(LG_ERR_RUNTIME, "%s: parameter '%s': %s", fn, l->names[i], lg_last_error());
        }
    }
    for (int i = 0; i < n_state; i++) {
        lg_status s = lg_optimizer_state(opt, i, &l->names[n_params + i], &l->tensors[n_params + i]);
        if (s != LG_OK) {
            list_free(l);
            return s;
        }
    }
    l->n = n_params + n_state;
    return LG_OK;
}

lg_status lg_checkpoint_save(const char *path, lg_graph *g, lg_optimizer *opt)
{
    if (!path || !g)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_checkpoint_save: %s is NULL", !path ? "path" : "graph");
    for (int i = 0; i < lg_graph_param_count(g); i++) {
        const char *name = lg_value_name(lg_graph_param(g, i));
        if (is_optimizer_name(name))
            return lg_fail(LG_ERR_INVALID_ARGUMENT,
                           "lg_checkpoint_save: parameter '%s': names starting '" OPT_PREFIX
                           "' are kept for optimizer state",
                           name);
    }
    ckpt_list l;
    lg_status s = list_make("lg_checkpoint_save", g, opt, &l);
    if (s != LG_OK) return s;
    s = lg_safetensors_save(path, l.names, l.tensors, l.n);
    list_free(&l);
    return s;
}

lg_checkpoint_opts lg_checkpoint_opts_default(void) { return (lg_checkpoint_opts){.strict = true}; }

/* Every check of a load, before anything is written. */
static lg_status check_load(const char *path, const lg_safetensors *f, const ckpt_list *l, bool have_opt,
                            lg_checkpoint_opts opts)
{
    int n_file = lg_safetensors_count(f);
    bool *used = calloc((size_t)n_file + 1, sizeof *used);
    if (!used) return lg_fail(LG_ERR_OUT_OF_MEMORY, "checkpoint '%s': out of memory", path);
    lg_status s = LG_OK;
    for (int k = 0; k < l->n && s == LG_OK; k++) {
        const char *what = is_optimizer_name(l->names[k]) ? "optimizer state" : "parameter";
        int i = lg_safetensors_find(f, l->names[k]);
        lg_dtype want_dt = lg_tensor_dtype(l->tensors[k]);
        lg_shape want_sh = lg_tensor_shape(l->tensors[k]);
        if (i < 0) {
            if (opts.strict)
                s = lg_fail(LG_ERR_IO, "checkpoint '%s': %s '%s' is missing from the file", path, what, l->names[k]);
            continue;
        }
        used[i] = true;
        if (lg_safetensors_dtype(f, i) != want_dt)
            s = lg_fail(LG_ERR_DTYPE, "checkpoint '%s': %s '%s' is %s, the file has %s", path, what, l->names[k],
                        lg_dtype_name(want_dt), lg_dtype_name(lg_safetensors_dtype(f, i)));
        else if (!lg_shape_equal(lg_safetensors_shape(f, i), want_sh))
            s = lg_fail(LG_ERR_SHAPE, "checkpoint '%s': %s '%s' has shape %s, the file has %s", path, what,
                        l->names[k], lg_shape_cstr(want_sh), lg_shape_cstr(lg_safetensors_shape(f, i)));
    }
    for (int i = 0; i < n_file && s == LG_OK && opts.strict; i++) {
        const char *name = lg_safetensors_name(f, i);
        if (!used[i] && (have_opt || !is_optimizer_name(name)))
            s = lg_fail(LG_ERR_IO, "checkpoint '%s': the file's tensor '%s' is not a %s", path, name,
                        have_opt ? "parameter of the graph or state of the optimizer" : "parameter of the graph");
    }
    free(used);
    return s;
}

lg_status lg_checkpoint_load(const char *path, lg_graph *g, lg_optimizer *opt, lg_checkpoint_opts opts)
{
    if (!path || !g)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_checkpoint_load: %s is NULL", !path ? "path" : "graph");
    lg_safetensors *f = NULL;
    lg_status s = lg_safetensors_open(path, &f);
    if (s != LG_OK) return s;
    ckpt_list l;
    s = list_make("lg_checkpoint_load", g, opt, &l);
    if (s == LG_OK) {
        s = check_load(path, f, &l, opt != NULL, opts);
        for (int k = 0; k < l.n && s == LG_OK; k++) {
            if (lg_safetensors_find(f, l.names[k]) < 0) continue; /* not strict, and not in the file */
            lg_status r = lg_safetensors_read(f, l.names[k], l.tensors[k]);
            LG_ASSERT(r == LG_OK); /* check_load found it with this dtype and shape */
        }
        list_free(&l);
    }
    lg_safetensors_free(f);
    return s;
}

/* ---- PyTorch recurrent weights ---------------------------------------------- */

lg_torch_rnn_opts lg_torch_rnn_opts_default(void) { return (lg_torch_rnn_opts){.prefix = "", .layer = 0}; }

enum { W_IH, W_HH, B_IH, B_HH, N_TORCH };
static const char *const torch_keys[N_TORCH] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};

/* The cell's kind must be one PyTorch has, with PyTorch's activations. */
static lg_status check_torch_cell(const lg_cell *cell, const char *name)
{
    lg_cell_opts o = lg_cell_get_opts(cell);
    if (o.kind == LG_CELL_GRU && !o.reset_after)
        return lg_fail(LG_ERR_UNSUPPORTED,
                       "torch import into cell '%s': a GRU with reset_after false has no PyTorch counterpart "
                       "(nn.GRU applies the reset gate after the recurrent matmul: use reset_after true)",
                       name);
    if (o.kind == LG_CELL_SIMPLE_RNN && o.activation != LG_ACT_TANH && o.activation != LG_ACT_RELU)
        return lg_fail(LG_ERR_UNSUPPORTED,
                       "torch import into cell '%s': nn.RNN's nonlinearity is tanh or relu, the cell's activation is "
                       "neither",
                       name);
    if (o.kind != LG_CELL_SIMPLE_RNN && (o.activation != LG_ACT_TANH || o.recurrent_activation != LG_ACT_SIGMOID))
        return lg_fail(LG_ERR_UNSUPPORTED,
                       "torch import into cell '%s': PyTorch's %s uses sigmoid gates and tanh; the cell's activation "
                       "or recurrent_activation differs",
                       name, o.kind == LG_CELL_LSTM ? "nn.LSTM" : "nn.GRU");
    return LG_OK;
}

/* The file's tensors for the cell, checked; t[B_IH], t[B_HH] stay NULL for a
 * cell without a bias. */
static lg_status torch_tensors(const char *path, const lg_safetensors *f, const char *keys[N_TORCH], int G, int u,
                               int in, bool bias, lg_tensor *t[N_TORCH])
{
    const lg_shape want[N_TORCH] = {lg_shape_of(2, G * u, in), lg_shape_of(2, G * u, u), lg_shape_of(1, G * u),
                                    lg_shape_of(1, G * u)};
    for (int k = 0; k < N_TORCH; k++) {
        int i = lg_safetensors_find(f, keys[k]);
        if (k >= B_IH && !bias) {
            if (i >= 0)
                return lg_fail(LG_ERR_IO, "torch weights '%s': the file has '%s' but the cell has no bias (use_bias "
                                          "false)", path, keys[k]);
            continue;
        }
        if (i < 0) return lg_fail(LG_ERR_IO, "torch weights '%s': no tensor '%s'", path, keys[k]);
        lg_dtype dt = lg_safetensors_dtype(f, i);
        if (dt != LG_F32 && dt != LG_F64)
            return lg_fail(LG_ERR_DTYPE, "torch weights '%s': '%s' is %s, not f32 or f64", path, keys[k],
                           lg_dtype_name(dt));
        if (!lg_shape_equal(lg_safetensors_shape(f, i), want[k]))
            return lg_fail(LG_ERR_SHAPE, "torch weights '%s': '%s' has shape %s, the cell needs %s", path, keys[k],
                           lg_shape_cstr(lg_safetensors_shape(f, i)), lg_shape_cstr(want[k]));
    }
    for (int k = 0; k < N_TORCH; k++) {
        if (k >= B_IH && !bias) continue;
        lg_status s = lg_safetensors_get(f, keys[k], &t[k]);
        if (s != LG_OK) return s;
    }
    return LG_OK;
}

lg_status lg_checkpoint_import_torch_rnn(const char *path, lg_cell *cell, lg_torch_rnn_opts opts)
{
    if (!path || !cell)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_checkpoint_import_torch_rnn: %s is NULL", !path ? "path" : "cell");
    if (opts.layer < 0)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_checkpoint_import_torch_rnn: opts.layer = %d", opts.layer);
    lg_value kernel = lg_cell_kernel(cell), recurrent = lg_cell_recurrent_kernel(cell), bias = lg_cell_bias(cell);
    char name[256]; /* the cell's scope: its kernel's name without "/kernel" */
    snprintf(name, sizeof name, "%s", lg_value_name(kernel));
    if (strrchr(name, '/')) *strrchr(name, '/') = '\0';
    lg_status s = check_torch_cell(cell, name);
    if (s != LG_OK) return s;

    lg_cell_opts o = lg_cell_get_opts(cell);
    const int G = o.kind == LG_CELL_LSTM ? 4 : o.kind == LG_CELL_GRU ? 3 : 1, u = o.units;
    const int in = (int)lg_value_shape(kernel).dims[0];
    /* Keras gate block k is PyTorch block perm[k]: GRU z, r, h <- r, z, n */
    const int perm[4] = {o.kind == LG_CELL_GRU ? 1 : 0, o.kind == LG_CELL_GRU ? 0 : 1, 2, 3};

    char key_buf[N_TORCH][512];
    const char *keys[N_TORCH];
    for (int k = 0; k < N_TORCH; k++) {
        snprintf(key_buf[k], sizeof key_buf[k], "%s%s_l%d%s", opts.prefix ? opts.prefix : "", torch_keys[k],
                 opts.layer, opts.reverse ? "_reverse" : "");
        keys[k] = key_buf[k];
    }
    lg_safetensors *f = NULL;
    s = lg_safetensors_open(path, &f);
    lg_tensor *t[N_TORCH] = {NULL};
    if (s == LG_OK) s = torch_tensors(path, f, keys, G, u, in, lg_value_ok(bias), t);
    lg_safetensors_free(f);
    if (s == LG_OK) {
        lg_tensor *K = lg_param_tensor(kernel), *R = lg_param_tensor(recurrent), *B = lg_param_tensor(bias);
        const int64_t cols = (int64_t)G * u;
        for (int k = 0; k < G; k++)
            for (int j = 0; j < u; j++) {
                int64_t kc = k * u + j, pr = perm[k] * u + j; /* Keras column, PyTorch row */
                for (int i = 0; i < in; i++) lg_tensor_set(K, i * cols + kc, lg_tensor_get(t[W_IH], pr * in + i));
                for (int i = 0; i < u; i++) lg_tensor_set(R, i * cols + kc, lg_tensor_get(t[W_HH], pr * u + i));
                if (!B) continue;
                if (o.kind == LG_CELL_GRU) {
                    lg_tensor_set(B, kc, lg_tensor_get(t[B_IH], pr));
                    lg_tensor_set(B, cols + kc, lg_tensor_get(t[B_HH], pr));
                } else {
                    lg_tensor_set(B, kc, lg_tensor_get(t[B_IH], pr) + lg_tensor_get(t[B_HH], pr));
                }
            }
    }
    for (int k = 0; k < N_TORCH; k++) lg_tensor_free(t[k]);
    return s;
}
