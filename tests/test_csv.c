/*
 * test_csv.c — CSV files through datafiles.h: headers and selections,
 * delimiters and quotes, non-finite cells, broken files and read errors
 * (getline failing as under a memory limit), and the committed El Nino
 * series.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkfifo */

#include <limits.h>
#include <math.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include "data_util.h"

/* getline as the CSV reader sees it: the C library's, unless a test sets
 * getline_fail_errno, when call number getline_fail_at (from 1) fails with
 * that errno as glibc's does when the line does not fit in memory (ENOMEM)
 * or the read fails (EIO). This definition takes the place of the C
 * library's for the whole program, the loopgrad library included. */
static int getline_fail_errno, getline_fail_at, getline_calls;

ssize_t getline(char **restrict line, size_t *restrict cap, FILE *restrict f)
{
    if (getline_fail_errno && ++getline_calls == getline_fail_at) {
        errno = getline_fail_errno;
        return -1;
    }
    return getdelim(line, cap, '\n', f);
}

/* ---- CSV ----------------------------------------------------------------------------------- */

static lg_tensor *csv_ok(const char *path, lg_csv_opts o)
{
    lg_tensor *t = NULL;
    ASSERT_OK(lg_csv_read(path, o, &t));
    return t;
}

START_TEST(test_csv_header_all_columns)
{
    lg_csv_opts d = lg_csv_opts_default();
    ck_assert_int_eq(d.delimiter, ',');
    ck_assert(d.header);
    ck_assert(d.columns == NULL && d.names == NULL && d.n_columns == 0);
    ck_assert_int_eq(d.dtype, LG_F32);
    const char *path = write_text("a.csv", "a,b,c\n1,2,3\n4.5,-5,6e2\n");
    lg_tensor *t = csv_ok(path, d);
    ck_assert_int_eq(lg_tensor_dtype(t), LG_F32);
    assert_shape(t, lg_shape_of(2, 2, 3));
    assert_values(t, (const double[]){1, 2, 3, 4.5, -5, 600}, 6);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_csv_select_columns)
{
    const char *path = write_text("a.csv", "a,b,c\n1,2,3\n4.5,-5,0.1\n");
    lg_csv_opts o = lg_csv_opts_default();
    o.dtype = LG_F64;
    const char *names[] = {"c", "a"};
    o.names = names;
    o.n_columns = 2;
    lg_tensor *t = csv_ok(path, o);
    assert_shape(t, lg_shape_of(2, 2, 2));
    assert_values(t, (const double[]){3, 1, 0.1, 4.5}, 4);
    lg_tensor_free(t);
    o.names = NULL;
    const int cols[] = {2, 0, 2};
    o.columns = cols;
    o.n_columns = 3;
    t = csv_ok(path, o);
    assert_shape(t, lg_shape_of(2, 2, 3));
    assert_values(t, (const double[]){3, 1, 3, 0.1, 4.5, 0.1}, 6);
    lg_tensor_free(t);
}
END_TEST

/* No header, another delimiter, CRLF, blank lines, blanks around fields,
 * quoted numbers. */
START_TEST(test_csv_no_header_delimiter_quotes)
{
    const char *path = write_text("b.csv", "1;2\r\n\r\n  3 ; \"4\" \r\n   \n-0.5;\t7\n");
    lg_csv_opts o = lg_csv_opts_default();
    o.header = false;
    o.delimiter = ';';
    lg_tensor *t = csv_ok(path, o);
    assert_shape(t, lg_shape_of(2, 3, 2));
    assert_values(t, (const double[]){1, 2, 3, 4, -0.5, 7}, 6);
    lg_tensor_free(t);
    /* a tab-separated file keeps its empty-looking fields apart */
    path = write_text("c.tsv", "x\ty\n1\t2\n");
    o = lg_csv_opts_default();
    o.delimiter = '\t';
    t = csv_ok(path, o);
    assert_values(t, (const double[]){1, 2}, 2);
    lg_tensor_free(t);
}
END_TEST

/* Jena-climate style: quoted header names (one with a comma, one with an
 * escaped quote) and a text column that is never parsed. */
START_TEST(test_csv_quoted_names_and_text_column)
{
    const char *path = write_text("jena.csv", "\"Date Time\",\"T (degC)\",\"x,y\",\"say \"\"hi\"\"\"\n"
                                              "01.01.2009 00:10:00,-8.02,1,2\n"
                                              "01.01.2009 00:20:00,-8.41,3,4\n");
    lg_csv_opts o = lg_csv_opts_default();
    const char *names[] = {"T (degC)", "x,y", "say \"hi\""};
    o.names = names;
    o.n_columns = 3;
    o.dtype = LG_F64;
    lg_tensor *t = csv_ok(path, o);
    assert_shape(t, lg_shape_of(2, 2, 3));
    assert_values(t, (const double[]){-8.02, 1, 2, -8.41, 3, 4}, 6);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_csv_errors_arguments)
{
    const char *path = write_text("a.csv", "a,b\n1,2\n");
    lg_tensor *t = (lg_tensor *)1;
    lg_csv_opts o = lg_csv_opts_default();
    ASSERT_FAILS(lg_csv_read(path, o, NULL), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    ASSERT_FAILS(lg_csv_read(NULL, o, &t), LG_ERR_INVALID_ARGUMENT, "path is NULL");
    ck_assert_ptr_null(t);
    o.dtype = LG_I32;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_DTYPE, "a.csv: dtype 2: needs LG_F32 or LG_F64");
    o = lg_csv_opts_default();
    const int cols[] = {0};
    const char *names[] = {"a"};
    o.columns = cols;
    o.names = names;
    o.n_columns = 1;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_INVALID_ARGUMENT, "both columns and names given");
    o.names = NULL;
    o.n_columns = 0;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_INVALID_ARGUMENT, "n_columns 0 with a column list");
    o = lg_csv_opts_default();
    o.names = names;
    o.n_columns = 1;
    o.header = false;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_INVALID_ARGUMENT, "columns selected by name need header true");
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_csv_errors_file)
{
    lg_tensor *t = NULL;
    lg_csv_opts o = lg_csv_opts_default();
    char missing[128];
    snprintf(missing, sizeof missing, "%s/absent.csv", tmpdir);
    ASSERT_FAILS(lg_csv_read(missing, o, &t), LG_ERR_IO, "absent.csv: cannot open: No such file");
    ASSERT_FAILS(lg_csv_read(tmpdir, o, &t), LG_ERR_IO, "is not a regular file (a directory)");
    ASSERT_FAILS(lg_csv_read(write_text("empty.csv", ""), o, &t), LG_ERR_IO, "empty.csv: empty file");
    ASSERT_FAILS(lg_csv_read(write_text("blank.csv", "\n  \n\r\n"), o, &t), LG_ERR_IO, "blank.csv: empty file");
    ASSERT_FAILS(lg_csv_read(write_text("head.csv", "\na,b\n\n"), o, &t), LG_ERR_IO,
                 "head.csv: no data rows after the header on line 2");
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_csv_errors_cells)
{
    lg_tensor *t = NULL;
    lg_csv_opts o = lg_csv_opts_default();
    ASSERT_FAILS(lg_csv_read(write_text("nan.csv", "a,b,c\n1,2,3\n4,abc,6\n"), o, &t), LG_ERR_IO,
                 "nan.csv:3: column 1 (\"b\"): \"abc\" is not a number");
    ASSERT_FAILS(lg_csv_read(write_text("tail.csv", "a,b\n1,2x\n"), o, &t), LG_ERR_IO,
                 "tail.csv:2: column 1 (\"b\"): \"2x\" is not a number");
    ASSERT_FAILS(lg_csv_read(write_text("gap.csv", "a,b\n1, \n"), o, &t), LG_ERR_IO,
                 "gap.csv:2: column 1 (\"b\"): \"\" is not a number");
    o.header = false;
    ASSERT_FAILS(lg_csv_read(write_text("nohead.csv", "1,2\n\n3,x\n"), o, &t), LG_ERR_IO,
                 "nohead.csv:3: column 1: \"x\" is not a number");
    o = lg_csv_opts_default();
    ASSERT_FAILS(lg_csv_read(write_text("ragged.csv", "a,b,c\n1,2,3\n4,5\n"), o, &t), LG_ERR_IO,
                 "ragged.csv:3: 2 fields, expected 3 as in line 1");
    ASSERT_FAILS(lg_csv_read(write_text("wide.csv", "a,b\n1,2\n3,4,5\n"), o, &t), LG_ERR_IO,
                 "wide.csv:3: 3 fields, expected 2 as in line 1");
    ASSERT_FAILS(lg_csv_read(write_text("quote.csv", "a,b\n1,\"2\n"), o, &t), LG_ERR_IO,
                 "quote.csv:2: column 1: unterminated quote");
    ASSERT_FAILS(lg_csv_read(write_text("after.csv", "a,b\n\"1\"x,2\n"), o, &t), LG_ERR_IO,
                 "after.csv:2: column 0: text after a closing quote");
    ck_assert_ptr_null(t);
}
END_TEST

/* nan, inf and values beyond the dtype's range are refused by default,
 * naming line and column; allow_nonfinite reads them (beyond the range:
 * inf). 1e39 fits f64 but not f32. */
START_TEST(test_csv_nonfinite)
{
    static const struct {
        const char *cell, *says;
    } cases[] = {
        {"nan", "is nan"},          {"NaN", "is nan"},           {"-nan", "is nan"},
        {"inf", "is infinite"},     {"-Infinity", "is infinite"}, {"1e999", "is infinite or beyond f64's range"},
        {"1e39", "is beyond f32's range"}, {"-1e39", "is beyond f32's range"},
    };
    lg_tensor *t = NULL;
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        char text[128], want[128];
        snprintf(text, sizeof text, "a,b\n1,2\n3,%s\n", cases[i].cell);
        const char *path = write_text("nonfinite.csv", text);
        snprintf(want, sizeof want, "nonfinite.csv:3: column 1 (\"b\"): \"%s\" %s", cases[i].cell, cases[i].says);
        ASSERT_FAILS(lg_csv_read(path, lg_csv_opts_default(), &t), LG_ERR_IO, want);
        ck_assert_ptr_null(t);
        lg_csv_opts o = lg_csv_opts_default();
        o.allow_nonfinite = true;
        t = csv_ok(path, o);
        double v = lg_tensor_get(t, 3);
        ck_assert_msg(!isfinite(v), "%s read as %g", cases[i].cell, v);
        ck_assert_int_eq(isnan(v) != 0, cases[i].says[3] == 'n');
        if (!isnan(v)) ck_assert_int_eq(v < 0, cases[i].cell[0] == '-');
        lg_tensor_free(t);
        unlink(path);
        free(tmpfiles[--n_tmpfiles]); /* path itself */
    }
    /* 1e39 and 3.4e38 (just below FLT_MAX) are finite in f64; 3.4e38 also in f32 */
    lg_csv_opts o = lg_csv_opts_default();
    o.header = false;
    o.dtype = LG_F64;
    t = csv_ok(write_text("f64.csv", "1e39,3.4e38,-1e-999\n"), o);
    assert_values(t, (const double[]){1e39, 3.4e38, -0.0}, 3);
    lg_tensor_free(t);
    o.dtype = LG_F32;
    t = csv_ok(write_text("f32.csv", "3.4e38,-3.4e38\n"), o);
    ck_assert(lg_tensor_get(t, 0) > 3.3e38 && lg_tensor_get(t, 1) < -3.3e38);
    lg_tensor_free(t);
    /* a refused cell in a column that is not selected does not matter */
    const int cols[] = {0};
    o.columns = cols, o.n_columns = 1;
    t = csv_ok(write_text("skip.csv", "1,nan\n2,inf\n"), o);
    assert_values(t, (const double[]){1, 2}, 2);
    lg_tensor_free(t);
}
END_TEST

/* A NUL byte in a line is refused, naming line and column (the field it
 * falls in), instead of ending the line there. */
START_TEST(test_csv_nul_byte)
{
    lg_tensor *t = NULL;
    static const char cut[] = "a,b\n1,2\n3,4\0005\n";
    ASSERT_FAILS(lg_csv_read(write_file("nul.csv", cut, sizeof cut - 1), lg_csv_opts_default(), &t), LG_ERR_IO,
                 "nul.csv:3: column 1: a NUL byte (at byte 4 of the line)");
    static const char head[] = "a,\"x,\0\",c\n1,2,3\n";
    ASSERT_FAILS(lg_csv_read(write_file("nulhead.csv", head, sizeof head - 1), lg_csv_opts_default(), &t), LG_ERR_IO,
                 "nulhead.csv:1: column 1: a NUL byte");
    static const char tail[] = "a,b\n1,2\n\0";
    ASSERT_FAILS(lg_csv_read(write_file("nultail.csv", tail, sizeof tail - 1), lg_csv_opts_default(), &t), LG_ERR_IO,
                 "nultail.csv:3: column 0: a NUL byte (at byte 1 of the line)");
    ck_assert_ptr_null(t);
}
END_TEST

/* getline failing before the end of the file is an error, never a short
 * file: ENOMEM (a line too long for memory) and EIO, on the header line and
 * on a data line. */
START_TEST(test_csv_read_errors)
{
    const char *path = write_text("rows.csv", "a,b\n1,2\n3,4\n5,6\n");
    lg_tensor *t = NULL;
    getline_fail_errno = ENOMEM, getline_fail_at = 3, getline_calls = 0;
    ASSERT_FAILS(lg_csv_read(path, lg_csv_opts_default(), &t), LG_ERR_OUT_OF_MEMORY,
                 "rows.csv:3: out of memory reading the line");
    getline_fail_errno = EIO, getline_fail_at = 1, getline_calls = 0;
    ASSERT_FAILS(lg_csv_read(path, lg_csv_opts_default(), &t), LG_ERR_IO,
                 "rows.csv:1: reading the line failed: Input/output error");
    ck_assert_ptr_null(t);
    getline_fail_errno = 0;
    t = csv_ok(path, lg_csv_opts_default());
    assert_shape(t, lg_shape_of(2, 3, 2));
    lg_tensor_free(t);
}
END_TEST

/* The reproduction: a 64 MB line under a memory limit (ulimit -v)
 * that leaves room for 48 MB more. The reader gets ENOMEM from getline and
 * must say so; it used to return the rows before the line with LG_OK. The
 * limit is set in a child process. ASan reserves far more address space
 * than any such limit allows, so under ASan the injected ENOMEM of
 * test_csv_read_errors is the test. */
#if defined(__SANITIZE_ADDRESS__)
#define LG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LG_ASAN 1
#endif
#endif

START_TEST(test_csv_line_beyond_memory_limit)
{
#ifdef LG_ASAN
    return;
#endif
    enum { LINE = 64 << 20 };
    char *big = malloc(LINE + 64);
    ck_assert_ptr_nonnull(big);
    strcpy(big, "a,b\n1,2\n3,");
    size_t at = strlen(big);
    memset(big + at, '4', LINE);
    strcpy(big + at + LINE, "\n5,6\n");
    const char *path = write_file("long.csv", big, strlen(big));
    free(big);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        long pages = 0;
        FILE *statm = fopen("/proc/self/statm", "r");
        if (!statm || fscanf(statm, "%ld", &pages) != 1) _exit(3);
        fclose(statm);
        rlim_t room = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (48 << 20);
        struct rlimit lim = {room, room};
        if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(4);
        lg_tensor *t = NULL;
        lg_status s = lg_csv_read(path, lg_csv_opts_default(), &t);
        _exit(s == LG_ERR_OUT_OF_MEMORY && strstr(lg_last_error(), "long.csv:3: out of memory reading the line") ? 0
              : s == LG_OK                                                                                    ? 1
                                                                                                              : 2);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "the reading child died: %d", status);
    ck_assert_msg(WEXITSTATUS(status) == 0, "child exit %d: 1 = LG_OK (rows dropped), 2 = another error",
                  WEXITSTATUS(status));
}
END_TEST

START_TEST(test_csv_errors_selection)
{
    lg_tensor *t = NULL;
    const char *path = write_text("a.csv", "a,b,c\n1,2,3\n");
    lg_csv_opts o = lg_csv_opts_default();
    const char *names[] = {"a", "zz"};
    o.names = names;
    o.n_columns = 2;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_IO, "a.csv:1: no column named \"zz\" (names[1]) in the header");
    o = lg_csv_opts_default();
    const int cols[] = {1, 3};
    o.columns = cols;
    o.n_columns = 2;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_IO,
                 "a.csv:1: column index 3 (columns[1]) outside the 3 fields of the line");
    const int neg[] = {-1};
    o.columns = neg;
    o.n_columns = 1;
    ASSERT_FAILS(lg_csv_read(path, o, &t), LG_ERR_IO, "column index -1 (columns[0])");
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_csv_elnino)
{
    lg_csv_opts o = lg_csv_opts_default();
    o.dtype = LG_F64;
    lg_tensor *t = csv_ok(ELNINO_CSV, o);
    assert_shape(t, lg_shape_of(2, 732, 3));
    const double head[9] = {1950, 1, 23.11, 1950, 2, 24.2, 1950, 3, 25.37};
    for (int i = 0; i < 9; i++) ck_assert_double_eq(lg_tensor_get(t, i), head[i]);
    ck_assert_double_eq(lg_tensor_get(t, 731 * 3), 2010);
    ck_assert_double_eq(lg_tensor_get(t, 731 * 3 + 1), 12);
    ck_assert_double_eq(lg_tensor_get(t, 731 * 3 + 2), 22.07);
    for (int r = 0; r < 732; r++) { /* consecutive months */
        ck_assert_double_eq(lg_tensor_get(t, 3 * r), 1950 + r / 12);
        ck_assert_double_eq(lg_tensor_get(t, 3 * r + 1), 1 + r % 12);
    }
    lg_tensor_free(t);
}
END_TEST

static Suite *csv_suite(void)
{
    Suite *s = suite_create("csv");
    TCase *csv = tcase_create("csv");
    tcase_add_checked_fixture(csv, tmp_setup, tmp_teardown);
    tcase_add_test(csv, test_csv_header_all_columns);
    tcase_add_test(csv, test_csv_select_columns);
    tcase_add_test(csv, test_csv_no_header_delimiter_quotes);
    tcase_add_test(csv, test_csv_quoted_names_and_text_column);
    tcase_add_test(csv, test_csv_errors_arguments);
    tcase_add_test(csv, test_csv_errors_file);
    tcase_add_test(csv, test_csv_errors_cells);
    tcase_add_test(csv, test_csv_errors_selection);
    tcase_add_test(csv, test_csv_elnino);
    tcase_add_test(csv, test_csv_nonfinite);
    tcase_add_test(csv, test_csv_nul_byte);
    tcase_add_test(csv, test_csv_read_errors);
    tcase_add_test(csv, test_csv_line_beyond_memory_limit);
    suite_add_tcase(s, csv);
    return s;
}

int main(void) { return lg_check_run(csv_suite()); }
