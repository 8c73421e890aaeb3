/* check_main.h — the one way a loopgrad suite runs: every test of s, exit
 * status nonzero if any failed. */
#ifndef LG_CHECK_MAIN_H
#define LG_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

static inline int lg_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
