/* registry.c — the op table, and helpers shared by the op families. */
#include <string.h>

#include "ops/op.h"

const lg_op_def *const lg_op_defs[LG_OP_COUNT] = {
#define LG_X_ENTRY(ID, name) [LG_OP_##ID] = &lg_op_def_##name,
    LG_OPS(LG_X_ENTRY)
#undef LG_X_ENTRY
};

int lg_axis_norm(int axis, int rank)
{
    if (axis < 0) axis += rank;
    return axis >= 0 && axis < rank ? axis : -1;
}

bool lg_broadcast_shapes(lg_shape a, lg_shape b, lg_shape *out)
{
    int r = a.rank > b.rank ? a.rank : b.rank;
    lg_shape o = {.rank = r};
    for (int i = 0; i < r; i++) {
        int ia = a.rank - r + i, ib = b.rank - r + i;
        int64_t da = ia >= 0 ? a.dims[ia] : 1, db = ib >= 0 ? b.dims[ib] : 1;
        if (da == db || db == 1)
            o.dims[i] = da;
        else if (da == 1)
            o.dims[i] = db;
        else if (da == -1 || db == -1)
            o.dims[i] = da == -1 ? db : da;
        else
            return false;
    }
    *out = o;
    return true;
}

void lg_infer_error(char *err, size_t size, const lg_port *in, int n_in, const char *why)
{
    size_t k = 0;
    for (int i = 0; i < n_in && k < size; i++)
        k += (size_t)snprintf(err + k, size - k, "%s%s %s", i ? ", " : "", lg_dtype_name(in[i].dtype),
                              lg_shape_cstr(in[i].shape));
    if (k < size) snprintf(err + k, size - k, ": %s", why);
}

bool lg_op_infer(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    if (!lg_op_defs[n->op]->infer(n, in, out, err, size)) return false;
    for (int o = 0; o < n->n_out; o++)
        if (!lg_port_fits(&out[o])) {
            snprintf(err, size, "output %d would be %s %s: its dims multiply past int64 or it needs more than "
                     "LG_MAX_BYTES (%zu) bytes", o, lg_dtype_name(out[o].dtype), lg_shape_cstr(out[o].shape),
                     LG_MAX_BYTES);
            return false;
        }
    return true;
}

bool lg_is_float(lg_dtype t) { return t == LG_F32 || t == LG_F64; }

lg_value lg_scalar_like(lg_value x, double v)
{
    if (!lg_value_ok(x)) return lg_value_invalid();
    return lg_scalar(x.graph, lg_value_dtype(x), v);
}
