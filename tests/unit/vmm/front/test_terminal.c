/* The terminal's Ctrl-A escape filter. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmini/terminal.h"
#include "../../check_main.h"

START_TEST(escape_sequences)
{
	struct escape_state st = { false };
	uint8_t out[64];
	bool quit = false;
	size_t n;

	n = terminal_escape_filter(&st, (const uint8_t *)"ab\x01\x01" "c", 5, out, &quit);
	ck_assert_uint_eq(n, 4);
	ck_assert_mem_eq(out, "ab\x01" "c", 4);
	ck_assert(!quit);
	/* Ctrl-A split across two reads, then x */
	n = terminal_escape_filter(&st, (const uint8_t *)"z\x01", 2, out, &quit);
	ck_assert_uint_eq(n, 1);
	n = terminal_escape_filter(&st, (const uint8_t *)"xjunk", 5, out, &quit);
	ck_assert_uint_eq(n, 0);
	ck_assert(quit);
	/* another key after Ctrl-A passes both through */
	quit = false;
	n = terminal_escape_filter(&st, (const uint8_t *)"\x01q", 2, out, &quit);
	ck_assert_uint_eq(n, 2);
	ck_assert_mem_eq(out, "\x01q", 2);
	ck_assert(!quit);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("terminal");
	TCase *tc = tcase_create("escape");

	tcase_add_test(tc, escape_sequences);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
