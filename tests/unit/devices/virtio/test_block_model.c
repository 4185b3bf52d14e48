/* virtio-blk data integrity with Linux AIO (blk_model.h): many requests
 * in flight on snapshot and read-write disks, and a snapshot overlay that
 * runs out of space. On a88ca8e the snapshot cases read zeroes where the
 * base image's data belongs. */
#include <check.h>

#include "blk_model.h"
#include "../../check_main.h"

START_TEST(snapshot_many_in_flight)
{
	blk_model_run(true, false, 0x9e3779b97f4a7c15ull + (uint64_t)_i, 12);
}
END_TEST

START_TEST(read_write_many_in_flight)
{
	blk_model_run(false, false, 0xd1b54a32d192ed03ull + (uint64_t)_i, 12);
}
END_TEST

START_TEST(snapshot_overlay_full)
{
	blk_model_overlay_full(false, 0x2545f4914f6cdd1dull);
}
END_TEST

static Suite *model_suite(void)
{
	Suite *s = suite_create("virtio_block_model");
	TCase *aio = tcase_create("aio");

	tcase_add_checked_fixture(aio, blk_model_setup, blk_model_teardown);
	tcase_set_timeout(aio, 60);
	tcase_add_loop_test(aio, snapshot_many_in_flight, 0, 2);
	tcase_add_loop_test(aio, read_write_many_in_flight, 0, 2);
	tcase_add_test(aio, snapshot_overlay_full);
	suite_add_tcase(s, aio);
	return s;
}

int main(void)
{
	return check_run_suite(model_suite());
}
