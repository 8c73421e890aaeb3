/*
 * program.h — compiling and running graphs.
 *
 * A program is a graph compiled for a set of fetches and concrete feed
 * shapes: the nodes the fetches need in a topological schedule, every shape
 * made concrete, and intermediate buffers planned by liveness so that values
 * whose last reader has run give their memory to later ones.
 *
 * The simple way is lg_graph_run(), which compiles on first use and caches
 * one program per (fetches, feed shapes) on the graph, so a smaller last batch
 * compiles once more and then hits the cache:
 *
 *     lg_feed feeds[] = {{x, x_tensor}, {y, y_tensor}};
 *     lg_tensor *out[1] = {NULL};                 // NULL: allocated for you
 *     lg_status s = lg_graph_run(g, feeds, 2, &loss, 1, out);
 *     double l = lg_tensor_get(out[0], 0);
 *     lg_tensor_free(out[0]);
 *
 * Errors (status + lg_last_error()): LG_ERR_GRAPH for a graph with a builder
 * error, LG_ERR_FEED for a missing feed, a feed that is not an input of this
 * graph, or a feed whose dtype or shape does not match its input,
 * LG_ERR_INVALID_ARGUMENT for a fetch from another graph or an invalid value,
 * LG_ERR_SHAPE when the concrete shapes do not fit an op, LG_ERR_RUNTIME when
 * a kernel finds bad data (an index out of range).
 */
#ifndef LG_PROGRAM_H
#define LG_PROGRAM_H

#include <stddef.h>

#include "api.h"
#include "graph.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* A value to feed: an input of the graph and the tensor that feeds it. The
 * tensor is read, not copied or kept. */
typedef struct lg_feed {
    lg_value input;
    const lg_tensor *tensor;
} lg_feed;

typedef struct lg_program lg_program;

/* Compile g for the fetches given feeds of these tensors' shapes (only the
 * shapes and dtypes of feeds[].tensor are used here). The program is the
 * caller's to free, and must be freed before its graph. */
lg_status lg_program_compile(lg_graph *g, const lg_feed *feeds, int n_feeds, const lg_value *fetches,
                             int n_fetches, lg_program **out);

/* How to compile. Compiling lowers the part of the graph the fetches need
 * into a private copy and runs passes over it, in this order:
 *   verify       the copy is well formed (shapes, dtypes, references);
 *   fuse_rnn     a loop whose body is an LSTM, GRU (either reset mode) or
 *                SimpleRNN, however it was written (the cell API or ops by
 *                hand; masked by lengths, reversed, bidirectional), and its
 *                gradient loop become one fused op pair sharing a saved
 *                workspace, where the backend has its kernels (the CPU);
 *                lg_program_report says per loop "fused as lstm" or the
 *                first difference that kept it a loop;
 *   lower_loops  a loop's masking (lengths or a mask) and truncated BPTT,
 *                attributes of the loop node until here, become where
 *                nodes in its body and around it, and its gradient loop the
 *                gradient of that loop; it cannot be switched off (the
 *                executor runs lowered loops only);
 *   hoist        loop body work that depends only on sequences, invariants
 *                and constants (x_t W + b, an embedding lookup) runs as
 *                batched ops over chunks of steps (a quarter of T or less,
 *                at most 4 MiB; all T at once when T does not split so);
 *                a gradient loop's weight gradients x_t^T dG sum as GEMMs
 *                over the same chunks instead of per step; each only where
 *                it pays by a cost rule (src/graph/passes/hoist.c): the
 *                weight bytes a step no longer touches against the stack
 *                it adds, so x_t W moves when W has about 2B rows or more;
 *                a small model at a large batch B keeps its loops as they are;
 *   fuse_elementwise  connected elementwise ops of one shape (a cell's
 *                gate math, sigmoid(a + b) * tanh(c)) run as one kernel
 *                that keeps their intermediates in registers, in loop
 *                bodies and at the top level, where the backend has the
 *                kernel (CPU, CUDA); a value also read elsewhere (a next
 *                state, a residual the gradient loop saves, a fetch) is
 *                one more output of that kernel; on CUDA the pieces of a
 *                split along the last axis (a cell's gates) are read in
 *                place from the split's input, whose own elementwise sum
 *                (x W + h U + b) the kernel computes, and a concatenation
 *                along the last axis of elementwise pieces (the gates'
 *                gradients) is written by the kernel that computes them;
 *                results are bit-identical;
 *   dce          values nothing fetched reads are not computed, and a loop
 *                saves for its gradient loop only what that loop reads (a
 *                forward-only program saves nothing); identities read
 *                only what they equal (a stop_gradient, the gradients being
 *                built; a where whose branches are one value; a transpose
 *                undoing a transpose);
 *   merge_rnn    fused layers that one backend call can run together become
 *                one node where the backend takes it: a bidirectional
 *                layer's two directions (cuDNN's bidirectional RNN runs them
 *                at once) and stacked layers of one cell and width whose
 *                lower outputs nothing else reads (cuDNN's numLayers),
 *                bidirectional ones (merge mode concat) too;
 *                lg_program_report says "one bidirectional node", "one
 *                stacked node", "one stacked bidirectional node" or why
 *                not;
 *   memory_plan  buffers are reused once their last reader has run;
 *   graph_capture  on a device that can record its work as a graph (CUDA
 *                Graphs), a program's second run records the kernels of its
 *                schedule, loops' steps included, and later runs launch that
 *                graph with one call instead of one launch per kernel (feeds
 *                are still copied in and fetches out per run); a run whose
 *                feeds or parameters sit at other device addresses than at
 *                capture runs kernel by kernel. Not for programs with a loop
 *                that has a stop condition (it syncs per step) or a fused
 *                cuDNN RNN; a capture the device refuses falls back to
 *                kernel by kernel for good. lg_program_report says which
 *                ("CUDA graph: captured ..." or "not captured: <why>").
 * Results are the same with any pass off; switching one off is for tests and
 * for bisecting a wrong result. */
typedef struct lg_compile_opts {
    /* Comma-separated pass names to switch off ("hoist,dce"); NULL: none.
     * The environment variable LG_PASSES_OFF, same syntax, adds to these.
     * An unknown name, or lower_loops, is LG_ERR_INVALID_ARGUMENT. */
    const char *passes_off;
    /* Where the program runs: "cpu" (NULL or "" too, the default) or
     * "cuda:N". On a device the program's buffers live in its memory, the
     * parameters are read from a device copy of their block (kept there
     * between runs and copied back by lg_param_tensor and checkpoints),
     * feeds are copied in and fetches out, and an optimizer's gradient
     * tensors passed as out stay on the device, where lg_optimizer_step then
     * runs. Errors: LG_ERR_INVALID_ARGUMENT for an unknown device (named),
     * LG_ERR_UNSUPPORTED for "cuda:N" in a build without CUDA or an op the
     * device has no kernel for, and the device's own error (no GPU, an old
     * driver, out of memory) naming the CUDA call. Never a silent fallback
     * to the CPU. Threading: every program on one "cuda:N" queues its work
     * on that device's one stream, unlocked: run them from one thread at a
     * time (a graph being captured would take in another thread's kernels,
     * which then never run on their own). */
    const char *device;
} lg_compile_opts;

lg_compile_opts lg_compile_opts_default(void);

/* TensorFloat-32 on CUDA devices, for the whole process (as
 * torch.backends.cuda.matmul.allow_tf32 and TensorFlow's
 * enable_tensor_float_32_execution): with it, f32 matmuls (cuBLAS) and
 * cuDNN's f32 RNNs may round their inputs to TF32's 10-bit mantissa (about
 * 3 significant digits) to use tensor cores. Off by default: f32 runs in
 * FP32. It applies to every op run after the call; f64, i32 and the CPU
 * are unaffected. lg_tf32_allowed says which is set. */
void lg_allow_tf32(bool allow);
bool lg_tf32_allowed(void);

/* lg_program_compile with options (lg_compile_opts_default and changes,
 * by value as every options struct). */
lg_status lg_program_compile_opts(lg_graph *g, const lg_feed *feeds, int n_feeds, const lg_value *fetches,
                                  int n_fetches, lg_compile_opts opts, lg_program **out);
void lg_program_free(lg_program *p); /* NULL is fine */

/* Run with feeds of exactly the compiled shapes. out[i] NULL gets a new
 * tensor the caller frees; a non-NULL out[i] must already have the fetch's
 * dtype and shape and is overwritten. */
lg_status lg_program_run(lg_program *p, const lg_feed *feeds, int n_feeds, lg_tensor **out);

/* Kernels in the schedule, and the bytes of planned intermediate memory
 * (after reuse by liveness; feeds, parameters and constants not counted,
 * nor what loops hold for one step or chunk of steps: lg_program_report
 * lists that). */
int lg_program_kernel_count(const lg_program *p);
size_t lg_program_peak_bytes(const lg_program *p);

/* What a program does with one of its loops (top-level loop nodes in
 * schedule order; loops nested in a body run inside their outer loop's
 * kernel and are not listed). */
typedef struct lg_loop_report {
    const char *name;      /* the loop node's full name; valid while the program lives */
    bool gradient;         /* the backward (BPTT) loop of another loop */
    int64_t steps;         /* trip count; the most steps with a stop condition */
    bool has_stop;         /* lg_loop_until */
    lg_loop_memory memory; /* the policy (a forward loop's) */
    int n_residuals;       /* body values saved per step beyond the states */
    /* Bytes the forward loop keeps for its backward loop: the states before
     * each step, stacked ([T, ...] each), plus the saved body values. They
     * are chosen for the program's fetches: without the gradient loop in
     * the program, nothing is saved (0). A gradient loop saves nothing for a
     * further pass. */
    size_t state_bytes, residual_bytes;
    int body_kernels;      /* kernels in one step of the body */
    int n_hoisted;         /* body values computed before the loop, batched over all steps */
    size_t hoisted_bytes;  /* their stacked bytes */
    int n_sunk;            /* accumulators (weight gradients) summed after the loop as one op */
    int fused_ops, fused_kernels; /* body elementwise ops run as fused_kernels kernels (fuse_elementwise) */
    int n_wide;            /* accumulators of parameters broadcast over the batch (a peephole or
                              layer-norm weight's gradient) kept per example through the steps and
                              summed over the batch once after the loop */
} lg_loop_report;

int lg_program_loop_count(const lg_program *p);
/* Loop i's report. LG_ERR_INVALID_ARGUMENT for a NULL program or report, or
 * i out of range. (Bodies are compiled with the program: a body that does
 * not fit its step shapes fails lg_program_compile.) */
lg_status lg_program_loop_report(const lg_program *p, int i, lg_loop_report *out);

/* A human-readable report, one line per item, as new text the caller frees
 * (NULL when out of memory or p is NULL): the program, its device (on one
 * that captures, "CUDA graph: captured on run 2 ..." or "not captured:
 * <why>", the graph_capture pass above), each loop, each
 * fused loop (fuse_rnn) with the workspace it keeps for its gradient (none
 * when the program fetches no gradient of it), then what each pass did
 * (indented for the passes run on loop bodies):
 *
 *     program: 9 kernels on cpu, 1.50 MiB planned, loops' own buffers 0.02 MiB
 *     device cpu: host memory
 *     GEMM: openblas (SkylakeX), 2 threads; f64: openblas (SkylakeX), 2 threads; ...   (lg_cpu_gemm_summary)
 *     loop 'lstm/loop': 28 steps, 3 kernels per step, save residuals: 3 values, 0.42 MiB saved (states 0.11 MiB); hoisted 1 values, 0.21 MiB; 4 elementwise ops fused into 1 kernels
 *     loop 'grad/rnn/loop': 28 steps, 9 kernels per step, gradient loop; hoisted 0 values, 0.00 MiB; 2 accumulators summed by batched GEMMs
 *     rnn 'lstm/loop': fused lstm, forward only: workspace 0.00 MiB
 *     hoist: loop 'lstm/loop': 1 values batched before the steps (0.21 MiB, 0 of them per chunk of 0 steps); ...
 */
char *lg_program_report(const lg_program *p);

/* Compile (or take from g's cache) and run; see the overview. */
lg_status lg_graph_run(lg_graph *g, const lg_feed *feeds, int n_feeds, const lg_value *fetches, int n_fetches,
                       lg_tensor **out);
/* Programs in g's cache (for tests of caching). */
int lg_graph_program_count(const lg_graph *g);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
