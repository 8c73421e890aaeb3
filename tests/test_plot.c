/*
 * test_plot.c — learning curves (tools/plot/plot.h) and the lg-plot tool:
 * a history becomes a well-formed SVG (XML with the curves' polylines) and
 * PNG (the signature and the size plot.h states); bad CSVs are refused
 * with the file and line named, and a failed plot leaves no file.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "plot/plot.h"

static char dir[] = "/tmp/lg_plot_XXXXXX";

/* Outside the tests (no ck_assert there): the suite's scratch directory. */
static bool make_dir(void) { return mkdtemp(dir) != NULL; }

static void remove_dir(void)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static const char *in_dir(const char *name)
{
    static char path[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* The whole file, NUL-terminated; *n its size. */
static char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)*n + 1);
    ck_assert_int_eq(fread(b, 1, (size_t)*n, f), *n);
    b[*n] = '\0';
    fclose(f);
    return b;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

static const char HISTORY[] = "epoch,loss,accuracy,val_loss,val_accuracy\n"
                              "0,1.2,0.55,1.0,0.6\n1,0.8,0.7,0.85,0.68\n2,0.6,0.78,0.7,0.74\n";

START_TEST(plot_svg_is_well_formed)
{
    write_file(in_dir("h.csv"), HISTORY);
    ck_assert_msg(lg_plot_history_csv(in_dir("h.csv"), in_dir("h.svg")) == LG_OK, "%s", lg_last_error());
    long n;
    char *svg = slurp(in_dir("h.svg"), &n);
    ck_assert(svg != NULL);
    ck_assert_msg(strncmp(svg, "<?xml", 5) == 0, "no XML declaration");
    ck_assert(strstr(svg, "<svg") != NULL);
    ck_assert_msg(strstr(svg + n - 16, "</svg>") != NULL, "does not end with </svg>");
    ck_assert_int_eq(count(svg, "<svg"), 1);
    /* both panels' four curves: at least one polyline each; the metric's
     * axis label, which PLplot's svg driver writes as character references */
    ck_assert_int_ge(count(svg, "<polyline"), 4);
    ck_assert(strstr(svg, "&#x61;&#x63;&#x63;&#x75;&#x72;&#x61;&#x63;&#x79;") != NULL); /* "accuracy" */
    free(svg);
}
END_TEST

static unsigned be32(const unsigned char *p) { return (unsigned)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* Keras 3's CSVLogger adds learning_rate beside a schedule (Keras 2: lr):
 * read past, not taken for a second metric. */
START_TEST(plot_keras_learning_rate_column)
{
    write_file(in_dir("k.csv"), "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n0,.5,.001,1.2,.6,1.1\n"
                                "1,.6,.0005,1.0,.65,1.0\n");
    ck_assert_msg(lg_plot_history_csv(in_dir("k.csv"), in_dir("k.svg")) == LG_OK, "%s", lg_last_error());
    write_file(in_dir("k2.csv"), "epoch,loss,lr\n0,1.2,0.01\n");
    ck_assert_msg(lg_plot_history_csv(in_dir("k2.csv"), in_dir("k2.svg")) == LG_OK, "%s", lg_last_error());
    long n;
    char *svg = slurp(in_dir("k.svg"), &n);
    ck_assert(svg && strstr(svg, "&#x61;&#x63;&#x63;&#x75;&#x72;&#x61;&#x63;&#x79;")); /* "accuracy" is the metric */
    free(svg);
}
END_TEST

START_TEST(plot_png_from_logs)
{
    lg_epoch_logs logs[3] = {{0, 1.0, 0.5, NAN, NAN, 1}, {1, 0.7, 0.6, NAN, NAN, 1}, {2, 0.5, 0.7, NAN, NAN, 1}};
    ck_assert_msg(lg_plot_history(logs, 3, "accuracy", in_dir("l.png")) == LG_OK, "%s", lg_last_error());
    long n;
    unsigned char *png = (unsigned char *)slurp(in_dir("l.png"), &n);
    ck_assert(png != NULL && n > 33);
    ck_assert(memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    ck_assert(memcmp(png + 12, "IHDR", 4) == 0);
    ck_assert_uint_eq(be32(png + 16), 1000); /* two panels */
    ck_assert_uint_eq(be32(png + 20), 450);
    free(png);
    /* without a metric: one panel */
    for (int i = 0; i < 3; i++) logs[i].metric = NAN;
    ck_assert_int_eq(lg_plot_history(logs, 3, NULL, in_dir("m.png")), LG_OK);
    png = (unsigned char *)slurp(in_dir("m.png"), &n);
    ck_assert_uint_eq(be32(png + 16), 560);
    free(png);
}
END_TEST

/* Bad histories: the CSV, and words the message must hold. */
static const struct {
    const char *csv, *says;
} BAD[] = {
    {"", "empty file"},
    {"epoch,loss\n", "no epochs"},
    {"loss,val_loss\n0.5,0.6\n", "needs the columns epoch and loss"},
    {"epoch,loss\n0,0.5\n1,abc\n", "line 3: field 2 'abc' is not a number"},
    {"epoch,loss\n0,0.5,0.7\n", "line 2: 3 fields, the header has 2"},
    {"epoch,loss,accuracy,mae\n0,1,2,3\n", "a second 'mae' column"},
    {"epoch,loss,accuracy,val_mae\n0,1,2,3\n", "'val_mae' does not go with the metric 'accuracy'"},
    {"epoch,loss,\n0,1,2\n", "column 3 has no name"},
};

START_TEST(plot_bad_csv_refused)
{
    write_file(in_dir("bad.csv"), BAD[_i].csv);
    write_file(in_dir("keep.svg"), "old");
    ck_assert_int_eq(lg_plot_history_csv(in_dir("bad.csv"), in_dir("keep.svg")), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), BAD[_i].says), "'%s' lacks '%s'", lg_last_error(), BAD[_i].says);
    ck_assert(strstr(lg_last_error(), "bad.csv") != NULL);
    long n;
    char *kept = slurp(in_dir("keep.svg"), &n);
    ck_assert_str_eq(kept, "old"); /* untouched */
    free(kept);
}
END_TEST

START_TEST(plot_other_errors)
{
    write_file(in_dir("h.csv"), HISTORY);
    ck_assert_int_eq(lg_plot_history_csv(in_dir("h.csv"), in_dir("h.jpg")), LG_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(lg_last_error(), ".svg or .png") != NULL);
    ck_assert_int_eq(lg_plot_history_csv(in_dir("missing.csv"), in_dir("h.svg")), LG_ERR_IO);
    ck_assert_int_eq(lg_plot_history_csv(in_dir("h.csv"), "/nonexistent-loopgrad-dir/h.svg"), LG_ERR_IO);
    ck_assert_int_eq(lg_plot_history_csv(NULL, in_dir("h.svg")), LG_ERR_INVALID_ARGUMENT);
    lg_epoch_logs one = {0, 1, NAN, NAN, NAN, 0};
    ck_assert_int_eq(lg_plot_history(&one, 0, NULL, in_dir("z.svg")), LG_ERR_INVALID_ARGUMENT);
    ck_assert(access(in_dir("z.svg"), F_OK) != 0);
    /* no temporary file (".<name>.XXXXXX") is left behind by any of the above */
    char cmd[320];
    snprintf(cmd, sizeof cmd, "ls -A %s | grep -q '^[.]'", dir);
    ck_assert_int_ne(system(cmd), 0);
}
END_TEST

/* lg-plot: 0 and a file, 1 and a message for a bad CSV, 2 for bad usage. */
static int run_tool(const char *args)
{
    char cmd[768];
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>%s", LG_PLOT_EXE, args, in_dir("err.txt"));
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(plot_tool)
{
    char args[600];
    write_file(in_dir("h.csv"), HISTORY);
    snprintf(args, sizeof args, "%s %s", in_dir("h.csv"), in_dir("t.svg"));
    ck_assert_int_eq(run_tool(args), 0);
    ck_assert(access(in_dir("t.svg"), F_OK) == 0);
    write_file(in_dir("bad.csv"), "epoch,loss\n0,x\n");
    snprintf(args, sizeof args, "%s %s", in_dir("bad.csv"), in_dir("u.png"));
    ck_assert_int_eq(run_tool(args), 1);
    ck_assert(access(in_dir("u.png"), F_OK) != 0);
    long n;
    char *err = slurp(in_dir("err.txt"), &n);
    ck_assert(strstr(err, "lg-plot: plot:") && strstr(err, "is not a number"));
    free(err);
    ck_assert_int_eq(run_tool("only-one-argument"), 2);
    ck_assert_int_eq(run_tool("--help"), 0);
}
END_TEST

int main(void)
{
    if (!make_dir()) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("plot");
    tcase_add_test(tc, plot_svg_is_well_formed);
    tcase_add_test(tc, plot_png_from_logs);
    tcase_add_loop_test(tc, plot_bad_csv_refused, 0, (int)(sizeof BAD / sizeof BAD[0]));
    tcase_add_test(tc, plot_keras_learning_rate_column);
    tcase_add_test(tc, plot_other_errors);
    tcase_add_test(tc, plot_tool);
    suite_add_tcase(s, tc);
    int rc = lg_check_run(s);
    remove_dir();
    return rc;
}
