/*
 * cli.h — the examples' command line: one table of flags per program,
 * parsed with getopt_long, so every example answers --help, refuses what it
 * does not know and range-checks its numbers the same way.
 *
 *     typedef struct args { int epochs; double lr; cli_outputs out; } args;
 *     args a = {.epochs = 1, .lr = 0.01};
 *     const cli_flag flags[] = {
 *         CLI_EPOCHS(&a.epochs), CLI_LR(&a.lr), CLI_GRAPH_FLAGS(&a.out), CLI_PLOT_FLAG(&a.out),
 *     };
 *     const cli c = {"my_example", "What it trains.", flags, CLI_COUNT(flags)};
 *     int rc = cli_parse(&c, argc, argv);
 *     if (rc != CLI_RUN) return rc;   // 0 after --help, 2 after a bad flag
 *
 * Every flag but a switch (--full-graph, --distributed: set by the name
 * alone) takes a value ("--epochs 3" or "--epochs=3"); the target holds
 * the default before parsing and the value after. Numbers must be whole
 * (no trailing text), finite and inside [min, max]; an integer that does
 * not fit its type is out of range, not wrapped. The same names mean the
 * same thing in every example: --epochs, --batch (examples per step), --lr
 * (learning rate), --seed (an integer seeding the example's random
 * streams), --data (the file or directory of data read), --limit (use
 * only the first N training examples), --dot and
 * --svg (write the graph: its layers, or every op with --full-graph),
 * --plot (plot the learning curves).
 *
 * A file the program writes (CLI_OUTPUT: --checkpoint, --dot, --svg,
 * --plot, ...) is checked when the flags are parsed, not when training is
 * over: its directory must exist and be writable, it must not be a
 * directory, and for --dot, --svg and --plot (cli_write_graph and
 * cli_write_plot) its name must end in what the writer makes (.dot or .gv;
 * .svg; .svg or .png, any case) and the writer must be built (Graphviz,
 * PLplot).
 * The check only looks (stat, access): it creates, opens and changes no
 * file. The writers replace the file whole (a temporary beside it, then a
 * rename), so a file that exists is checked by its directory.
 *
 * Errors are GNU-style: "<prog>: <what was wrong>" and "Try '<prog> --help'
 * for more information." on stderr, exit status 2; --help alone prints the
 * usage (to stdout, status 0).
 */
#ifndef EXAMPLES_CLI_H
#define EXAMPLES_CLI_H

#include <stdint.h>

#include "graph/loopgrad.h"

typedef enum cli_type {
    CLI_INT,    /* int *, in [min, max] */
    CLI_LONG,   /* long *, in [min, max] */
    CLI_DOUBLE, /* double *, finite, in [min, max] */
    CLI_SEED,   /* uint64_t *, any value 0 .. 2^64 - 1 */
    CLI_TEXT,   /* const char ** (points into argv) */
    CLI_SWITCH, /* bool *, set by the flag alone (no value) */
    CLI_OUTPUT, /* const char ** (into argv), a file the program writes: checked as above */
    CLI_DEVICE, /* const char ** (into argv): "cpu", "cuda" or "cuda:N", checked as spelled
                   (not whether the device is there: compiling for it says) */
    CLI_TYPE_COUNT
} cli_type;

typedef struct cli_flag {
    const char *name; /* without the dashes */
    cli_type type;
    void *value;
    double min, max;  /* numbers only */
    const char *meta; /* "FILE", "DIR", ...; NULL: N, X or TEXT by type */
    const char *help; /* one line; the default is appended */
} cli_flag;

typedef struct cli {
    const char *prog;    /* the program's name, for messages */
    const char *summary; /* one line under the usage */
    const cli_flag *flags;
    int n_flags;
} cli;

/* What --dot, --svg, --full-graph, --expand and --plot ask for: paths,
 * NULL when not given. */
typedef struct cli_outputs {
    const char *dot, *svg, *plot;
    bool full_graph;  /* every op, not the layer view */
    const char *expand; /* the layer view's scope drawn as its ops */
    /* Set by the program, not a flag: the layer view's optimizer node. */
    const lg_optimizer *optimizer;
} cli_outputs;

#define CLI_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define CLI_EPOCHS(p) {"epochs", CLI_INT, (p), 1, 100000, NULL, "epochs to train"}
#define CLI_STEPS(p) {"steps", CLI_INT, (p), 1, 100000000, NULL, "training steps"}
#define CLI_BATCH(p) {"batch", CLI_INT, (p), 1, 65536, NULL, "examples per training step"}
#define CLI_LR(p) {"lr", CLI_DOUBLE, (p), 1e-9, 100, NULL, "learning rate"}
#define CLI_SEED_FLAG(p) {"seed", CLI_SEED, (p), 0, 0, NULL, "seed of the random streams"}
#define CLI_LIMIT(p) {"limit", CLI_LONG, (p), 0, 1e12, NULL, "train on the first N examples only, 0 for all"}
#define CLI_GRAPH_FLAGS(o)                                                                          \
    {"dot", CLI_OUTPUT, &(o)->dot, 0, 0, "FILE", "write the graph as Graphviz DOT"},                \
    {"svg", CLI_OUTPUT, &(o)->svg, 0, 0, "FILE", "draw the graph as SVG"},                          \
    {"full-graph", CLI_SWITCH, &(o)->full_graph, 0, 0, NULL, "--dot/--svg: every op, not the layers"}, \
    {"expand", CLI_TEXT, &(o)->expand, 0, 0, "SCOPE", "--dot/--svg: draw this scope's ops"}
#define CLI_PLOT_FLAG(o) {"plot", CLI_OUTPUT, &(o)->plot, 0, 0, "FILE", "plot the learning curves (.svg or .png)"}

/* The flags of the examples that train by steps without lg_fit
 * (--steps, --lr, --seed, and the graph's --dot/--svg). */
typedef struct cli_step_args {
    int steps;
    double lr;
    uint64_t seed;
    cli_outputs out;
} cli_step_args;

/* What cli_parse returns when the program should go on. */
enum { CLI_RUN = -1 };

/* Parse argv against c's flags (and --help). Returns CLI_RUN to go on; 0
 * after --help (usage printed to stdout); 2 after an unknown flag, a
 * missing or bad value, an output file that cannot be written (its value or
 * its default) or a positional argument (a message naming it and a pointer
 * to --help on stderr), --expand or --full-graph without --dot or --svg
 * (they would draw nothing), or after a bad LG_GEMM or LG_NUM_THREADS (the
 * message from lg_cpu_gemm_info_get). On CLI_RUN it prints the header line naming the GEMM provider,
 * its core and threads (lg_cpu_gemm_summary). Allocates nothing that
 * outlives the call. */
int cli_parse(const cli *c, int argc, char **argv);

/* Write what --dot and --svg ask for (nothing when neither is given): the
 * layer view (lg_dot_opts.layers, with --expand's scope and o->optimizer),
 * or every op with --full-graph; prints where. LG_OK or the writer's
 * status; LG_ERR_UNSUPPORTED, saying so, when loopgrad was built without
 * Graphviz (meson option viz). */
lg_status cli_write_graph(const cli_outputs *o, const lg_graph *g);

/* Plot tr's history (its metric named by metric) to --plot's file
 * (nothing when not given); prints where. */
lg_status cli_write_plot(const cli_outputs *o, const lg_trainer *tr, lg_metric metric);

#endif
