/*
 * optim_internal.h — what the optimizer files share. Private to the library.
 *
 * optimizer.c owns the lifecycle (checks, packing, blocks, state, the step
 * driver); clip.c clips the gradient block; sgd.c, adam.c and rmsprop.c each
 * give their options, checks and update rule. An update rule is one flat
 * loop over the n elements of every parameter at once: p, g and each slot
 * s[k] are blocks of the same layout.
 */
#ifndef LG_OPTIM_INTERNAL_H
#define LG_OPTIM_INTERNAL_H

#include "graph/mirror.h"
#include "graph/optim.h"

#define LG_OPTIM_MAX_SLOTS 3

typedef struct lg_optim_rule {
    /* The rule's options passed to b's update kernel (backend.h) over blocks
     * in b's memory. */
    lg_status (*update)(const lg_optimizer *o, const lg_backend *b, void *p, const void *g, void *const *s,
                        int64_t n, double lr, int64_t t);
} lg_optim_rule;

struct lg_optimizer {
    lg_graph *graph;
    const lg_optim_rule *rule;
    union {
        lg_sgd_opts sgd;
        lg_adam_opts adam;
        lg_rmsprop_opts rmsprop;
    } opts;
    double learning_rate; /* the base rate */
    lg_clip_opts clip;
    lg_lr_schedule schedule;
    void *schedule_ctx;
    lg_dtype dtype;
    int n;                /* parameters */
    int32_t *nodes;       /* their node ids, in params order */
    int64_t *offsets;     /* n + 1 element offsets into every block */
    void *grad_block;     /* offsets[n] elements */
    lg_tensor **grads;    /* n views into grad_block */
    int n_slots;
    void *slot_block[LG_OPTIM_MAX_SLOTS];
    lg_tensor **slot_views; /* n_slots * n, slot-major */
    char **state_names;     /* 1 + n_slots * n */
    lg_tensor *iterations;  /* i32 [] */
    /* the blocks' device copies, a segment per parameter (mirror.h); the
     * step runs where the gradients were written */
    lg_mirror grad_mirror;
    lg_mirror slot_mirror[LG_OPTIM_MAX_SLOTS];
};

/* What one constructor hands the common part. */
typedef struct lg_optim_spec {
    const char *fn; /* "lg_optimizer_sgd", for messages */
    const lg_optim_rule *rule;
    double learning_rate;
    lg_clip_opts clip;
    const char *slots[LG_OPTIM_MAX_SLOTS]; /* Keras slot names, n_slots of them */
    int n_slots;
} lg_optim_spec;

/* Check the parameters and the common options, pack, allocate. The caller
 * fills (*out)->opts on success. */
lg_status lg_optimizer_create(lg_graph *g, const lg_value *params, int n, const lg_optim_spec *spec,
                              lg_optimizer **out);

/* LG_OK if ok, else LG_ERR_INVALID_ARGUMENT: "<fn>: opts.<field> = <v> is
 * outside <range>". */
lg_status lg_optim_check(const char *fn, const char *field, double v, bool ok, const char *range);

/* The clip options' checks, and clipping o's gradient block g (in b's
 * memory) in place. */
lg_status lg_clip_check(const char *fn, const lg_clip_opts *c);
lg_status lg_clip_apply(const lg_optimizer *o, const lg_backend *b, void *g);

/* The gradient views a program writes (on whichever side it runs), without
 * bringing them home as lg_optimizer_grads does. */
lg_tensor *const *lg_optimizer_grad_views(lg_optimizer *o);
/* Bring the slot blocks home (checkpoints). */
lg_status lg_optimizer_to_host(lg_optimizer *o);

#endif
