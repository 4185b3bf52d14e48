/* virtio-mmio's state rules: QueueReady = 0 with a request in flight
 * (§4.2.2.2) and status bits cleared without a reset (§2.1.1). Fixture:
 * mmio_fixture.h. */
#include <check.h>
#include <string.h>

#include "../../check_main.h"
#include "mmio_fixture.h"

/* §4.2.2.2: after QueueReady = 0 reads back 0 the device must not touch
 * the queue: the request in flight completes (or is dropped) first, and
 * nothing of it lands in the queue the driver sets up next. */
START_TEST(queue_ready_zero_with_request_in_flight)
{
	const uint64_t old_desc = 0x1000, new_desc = 0x3000;

	t.fd.hold = true;
	negotiate();
	setup_queue(0, 16, old_desc);
	driver_ok();
	post_and_kick(0, old_desc, 5);
	wait_kicks(0, 1);
	pthread_mutex_lock(&t.dev.lock);
	ck_assert_uint_eq(t.fd.nr_held[0], 1);
	pthread_mutex_unlock(&t.dev.lock);

	wr32(R_QUEUE_SEL, 0);
	wr32(R_QUEUE_READY, 0);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	/* The device was asked to stop while the queue was still its to
	 * finish, and holds nothing any more. */
	ck_assert_int_eq(t.fd.stops[0], 1);
	ck_assert(t.fd.enabled_during_stop);
	ck_assert_uint_eq(t.fd.nr_held[0], 0);
	ck_assert_uint_eq(ram16_get(used_of(old_desc) + 2), 1); /* completed there */
	ck_assert_uint_eq(rd32(R_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);

	/* The driver moves the queue; a late "completion" finds nothing. */
	setup_queue(0, 16, new_desc);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 1);
	pthread_mutex_lock(&t.dev.lock);
	fake_complete(&t.dev, 0);
	pthread_mutex_unlock(&t.dev.lock);
	ck_assert_uint_eq(ram16_get(used_of(new_desc) + 2), 0);
	/* The new queue works from its own index 0. */
	post_and_kick(0, new_desc, 3);
	wait_kicks(0, 2);
	pthread_mutex_lock(&t.dev.lock);
	ck_assert_uint_eq(t.fd.nr_held[0], 1);
	ck_assert_uint_eq(t.fd.held[0][0], 3);
	pthread_mutex_unlock(&t.dev.lock);
	/* Stopping a queue that is not ready asks the device nothing. */
	wr32(R_QUEUE_SEL, 1);
	wr32(R_QUEUE_READY, 0);
	ck_assert_int_eq(t.fd.stops[1], 0);
}
END_TEST

/* §2.1.1: the driver MUST NOT clear a status bit; such a write is not
 * applied and the device needs a reset. Features stay frozen and
 * DRIVER_OK does not activate a second time. */
START_TEST(status_bits_cleared_without_reset)
{
	negotiate();
	setup_queue(0, 16, 0x1000);
	driver_ok();
	ck_assert_int_eq(t.fd.activations, 1);
	/* FEATURES_OK and DRIVER_OK cleared: refused. */
	wr32(R_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	ck_assert_uint_eq(rd32(R_STATUS), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
					  VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK |
					  VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert(!virtio_dev_live(&t.dev));
	ck_assert_uint_eq(rd32(R_INT_STATUS) & 2, 2);
	/* Negotiation did not reopen. */
	wr32(R_DRV_FEATURES_SEL, 1);
	wr32(R_DRV_FEATURES, 1 | (1u << 8));
	ck_assert_uint_eq(t.dev.driver_features, 1ULL << 32);
	/* DRIVER_OK again: no second activation. */
	wr32(R_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		       VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert_int_eq(t.fd.activations, 1);
	ck_assert(!virtio_dev_live(&t.dev));
	/* A reset starts over. */
	wr32(R_STATUS, 0);
	ck_assert_uint_eq(rd32(R_STATUS), 0);
	negotiate();
	setup_queue(0, 16, 0x1000);
	driver_ok();
	ck_assert_int_eq(t.fd.activations, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_mmio_state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, queue_ready_zero_with_request_in_flight);
	tcase_add_test(tc, status_bits_cleared_without_reset);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
