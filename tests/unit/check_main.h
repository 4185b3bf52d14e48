/* The main() of every check suite, in one place. Include it from a test
 * file (as "../check_main.h" under tests/unit/) and end main() with
 * `return check_run_suite(suite);`. */
#ifndef KVMINI_TEST_CHECK_MAIN_H
#define KVMINI_TEST_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

/* Runs every test of @s (each in a forked child, CK_NORMAL output on
 * stdout with the "Checks: N" summary), frees the runner and returns the
 * process exit status: EXIT_SUCCESS only when no check failed. A skip
 * (exit 77) is the caller's to return before building the suite. */
static inline int check_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
