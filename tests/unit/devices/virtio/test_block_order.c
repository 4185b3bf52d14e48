/* virtio-blk data integrity in any completion order (blk_model.h): the
 * disk engine in manual mode, where the test runs every I/O the disk
 * started in a random order, some between kicks and some handed back
 * later than they ran; snapshot and read-write disks, and a snapshot
 * overlay that runs out of space. */
#include <check.h>

#include "blk_model.h"
#include "../../check_main.h"

START_TEST(snapshot_any_completion_order)
{
	blk_model_run(true, true, 0xbf58476d1ce4e5b9ull + (uint64_t)_i, 12);
}
END_TEST

START_TEST(read_write_any_completion_order)
{
	blk_model_run(false, true, 0x94d049bb133111ebull + (uint64_t)_i, 12);
}
END_TEST

START_TEST(snapshot_overlay_full_any_order)
{
	blk_model_overlay_full(true, 0x2545f4914f6cdd1eull + (uint64_t)_i);
}
END_TEST

static Suite *order_suite(void)
{
	Suite *s = suite_create("virtio_block_order");
	TCase *order = tcase_create("order");

	tcase_add_checked_fixture(order, blk_model_setup, blk_model_teardown);
	tcase_set_timeout(order, 60);
	tcase_add_loop_test(order, snapshot_any_completion_order, 0, 3);
	tcase_add_loop_test(order, read_write_any_completion_order, 0, 1);
	tcase_add_loop_test(order, snapshot_overlay_full_any_order, 0, 2);
	suite_add_tcase(s, order);
	return s;
}

int main(void)
{
	return check_run_suite(order_suite());
}
