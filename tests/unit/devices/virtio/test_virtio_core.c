/* The virtio device model: feature negotiation, the status rules,
 * reset, NEEDS_RESET, stopping a queue and interrupts through a fake
 * transport. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fake_ring.h"
#include "../../check_main.h"

#define BIT(n) (1ULL << (n))
#define DEV_FEATURE_BIT 5

static struct fake_ring f;
static struct virtio_dev d;
static unsigned notify_queue_calls[VIRTIO_MAX_QUEUES], notify_config_calls;
static unsigned activate_calls, reset_calls, destroy_calls, stop_calls;
static int activate_result;
static bool stop_saw_enabled;

static void fake_notify_queue(void *transport, unsigned q)
{
	ck_assert_ptr_eq(transport, &f);
	notify_queue_calls[q]++;
}

static void fake_notify_config(void *transport)
{
	ck_assert_ptr_eq(transport, &f);
	notify_config_calls++;
}

static const struct virtio_transport_ops tops = {
	.notify_queue = fake_notify_queue,
	.notify_config = fake_notify_config,
};

static int fake_activate(struct virtio_dev *dev)
{
	activate_calls++;
	return activate_result;
}

static void fake_reset(struct virtio_dev *dev)
{
	reset_calls++;
}

static void fake_destroy(struct virtio_dev *dev)
{
	destroy_calls++;
}

static void fake_queue_stop(struct virtio_dev *dev, unsigned q)
{
	ck_assert_uint_eq(q, 0);
	stop_calls++;
	stop_saw_enabled = dev->vqs[q].enabled;
}

static const struct virtio_dev_ops ops = {
	.activate = fake_activate,
	.reset = fake_reset,
	.destroy = fake_destroy,
	.queue_stop = fake_queue_stop,
};

static void setup(void)
{
	fr_init(&f, 8);
	memset(notify_queue_calls, 0, sizeof(notify_queue_calls));
	notify_config_calls = activate_calls = reset_calls = destroy_calls = stop_calls = 0;
	activate_result = 0;
	stop_saw_enabled = false;
	virtio_dev_init(&d, "virtio-test0", VIRTIO_ID_BLOCK, BIT(DEV_FEATURE_BIT), 2, 8, 16,
			&ops, NULL, &f.gm, NULL);
	d.tops = &tops;
	d.transport = &f;
}

static void teardown(void)
{
	virtio_dev_fini(&d);
	ck_assert_uint_eq(destroy_calls, 1);
	fr_fini(&f);
}

/* Queue 0 of the device laid out like the fake ring's. */
static void configure_queue0(void)
{
	d.vqs[0].size = 8;
	d.vqs[0].desc_gpa = f.vq.desc_gpa;
	d.vqs[0].avail_gpa = f.vq.avail_gpa;
	d.vqs[0].used_gpa = f.vq.used_gpa;
}

/* The usual driver sequence up to FEATURES_OK; returns the status read back. */
static uint8_t negotiate(uint64_t driver_features)
{
	virtio_dev_set_status(&d, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	virtio_dev_set_status(&d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	d.driver_features = driver_features;
	virtio_dev_set_status(&d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
					  VIRTIO_CONFIG_S_FEATURES_OK);
	return d.status;
}

static void go_live(uint64_t driver_features)
{
	ck_assert(negotiate(driver_features) & VIRTIO_CONFIG_S_FEATURES_OK);
	configure_queue0();
	virtio_dev_enable_queue(&d, 0);
	ck_assert(d.vqs[0].enabled);
	virtio_dev_set_status(&d, d.status | VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert(virtio_dev_live(&d));
}

START_TEST(init_fields)
{
	ck_assert_str_eq(d.name, "virtio-test0");
	ck_assert_uint_eq(d.device_id, VIRTIO_ID_BLOCK);
	ck_assert_uint_eq(d.features, BIT(DEV_FEATURE_BIT) | BIT(VIRTIO_F_VERSION_1) |
					      BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC));
	ck_assert_uint_eq(d.nr_queues, 2);
	ck_assert_uint_eq(d.vqs[1].max_size, 8);
	ck_assert_uint_eq(d.vqs[2].max_size, 0);
	ck_assert_uint_eq(d.config_len, 16);
	ck_assert_uint_eq(d.status, 0);
	ck_assert(!virtio_dev_live(&d));
}
END_TEST

START_TEST(features_accepted)
{
	uint8_t s = negotiate(BIT(VIRTIO_F_VERSION_1) | BIT(DEV_FEATURE_BIT) |
			      BIT(VIRTIO_RING_F_EVENT_IDX));

	ck_assert(s & VIRTIO_CONFIG_S_FEATURES_OK);
}
END_TEST

START_TEST(features_unoffered_refused)
{
	uint8_t s = negotiate(BIT(VIRTIO_F_VERSION_1) | BIT(DEV_FEATURE_BIT + 1));

	ck_assert(!(s & VIRTIO_CONFIG_S_FEATURES_OK));
	ck_assert(s & VIRTIO_CONFIG_S_DRIVER);
	/* DRIVER_OK without FEATURES_OK breaks the device instead of activating it. */
	virtio_dev_set_status(&d, s | VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert_uint_eq(activate_calls, 0);
	ck_assert(!virtio_dev_live(&d));
	ck_assert(d.status & VIRTIO_CONFIG_S_NEEDS_RESET);
}
END_TEST

START_TEST(features_without_version_1_refused)
{
	ck_assert(!(negotiate(BIT(DEV_FEATURE_BIT)) & VIRTIO_CONFIG_S_FEATURES_OK));
}
END_TEST

START_TEST(activate_and_reset)
{
	go_live(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC));
	ck_assert_uint_eq(activate_calls, 1);
	ck_assert(d.vqs[0].event_idx);
	ck_assert(d.vqs[0].indirect);
	/* Re-writing the same status does not activate again. */
	virtio_dev_set_status(&d, d.status);
	ck_assert_uint_eq(activate_calls, 1);

	virtio_dev_set_status(&d, 0);
	ck_assert_uint_eq(reset_calls, 1);
	ck_assert_uint_eq(d.status, 0);
	ck_assert_uint_eq(d.driver_features, 0);
	ck_assert(!d.vqs[0].enabled);
	ck_assert_uint_eq(d.vqs[0].desc_gpa, 0);
	ck_assert_uint_eq(d.vqs[0].max_size, 8);
	ck_assert_uint_eq(d.vqs[0].size, 8);
	ck_assert(!virtio_dev_live(&d));
}
END_TEST

START_TEST(activate_failure_needs_reset)
{
	activate_result = -ENOMEM;
	ck_assert(negotiate(BIT(VIRTIO_F_VERSION_1)) & VIRTIO_CONFIG_S_FEATURES_OK);
	virtio_dev_set_status(&d, d.status | VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert_uint_eq(activate_calls, 1);
	ck_assert(d.broken);
	ck_assert(d.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(notify_config_calls, 1);
	ck_assert(!virtio_dev_live(&d));
}
END_TEST

START_TEST(fail_once_until_reset)
{
	uint8_t gen;

	go_live(BIT(VIRTIO_F_VERSION_1));
	gen = d.config_generation;
	virtio_dev_fail(&d, "test failure %d", 1);
	ck_assert(d.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert(d.broken);
	ck_assert(!virtio_dev_live(&d));
	ck_assert_uint_eq(notify_config_calls, 1);
	ck_assert_uint_eq(d.config_generation, (uint8_t)(gen + 1));
	virtio_dev_fail(&d, "test failure %d", 2);
	ck_assert_uint_eq(notify_config_calls, 1);
	ck_assert_uint_eq(d.config_generation, (uint8_t)(gen + 1));
	/* The driver cannot clear NEEDS_RESET by writing status ... */
	virtio_dev_set_status(&d, d.status & (uint8_t)~VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert(d.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* ... only a reset does, and the device works again. */
	virtio_dev_set_status(&d, 0);
	ck_assert(!d.broken);
	ck_assert_uint_eq(d.status, 0);
	go_live(BIT(VIRTIO_F_VERSION_1));
	virtio_dev_fail(&d, "again");
	ck_assert_uint_eq(notify_config_calls, 2);
}
END_TEST

START_TEST(bad_queue_config_needs_reset)
{
	ck_assert(negotiate(BIT(VIRTIO_F_VERSION_1)) & VIRTIO_CONFIG_S_FEATURES_OK);
	configure_queue0();
	d.vqs[0].used_gpa += 2;
	virtio_dev_enable_queue(&d, 0);
	ck_assert(!d.vqs[0].enabled);
	ck_assert(d.broken);
	ck_assert_uint_eq(notify_config_calls, 1);
	/* A queue the device does not have. */
	virtio_dev_set_status(&d, 0);
	ck_assert(negotiate(BIT(VIRTIO_F_VERSION_1)) & VIRTIO_CONFIG_S_FEATURES_OK);
	virtio_dev_enable_queue(&d, 2);
	ck_assert(d.broken);
}
END_TEST

START_TEST(used_interrupts_per_event_idx)
{
	go_live(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX));
	fr_set_used_event(&f, 1);
	ck_assert_int_eq(vq_push(&d.vqs[0], 0, 0), 0);
	virtio_dev_used(&d, 0); /* first: always */
	ck_assert_uint_eq(notify_queue_calls[0], 1);
	ck_assert_int_eq(vq_push(&d.vqs[0], 1, 0), 0); /* used idx 2: entry 1 used */
	virtio_dev_used(&d, 0);
	ck_assert_uint_eq(notify_queue_calls[0], 2);
	ck_assert_int_eq(vq_push(&d.vqs[0], 2, 0), 0); /* 3: used_event passed */
	virtio_dev_used(&d, 0);
	ck_assert_uint_eq(notify_queue_calls[0], 2);
	fr_set_used_event(&f, 3);
	ck_assert_int_eq(vq_push(&d.vqs[0], 3, 0), 0);
	virtio_dev_used(&d, 0);
	ck_assert_uint_eq(notify_queue_calls[0], 3);
	virtio_dev_used(&d, 7); /* out of range: ignored */
	ck_assert_uint_eq(notify_queue_calls[1], 0);
}
END_TEST

START_TEST(used_without_event_idx)
{
	go_live(BIT(VIRTIO_F_VERSION_1));
	ck_assert(!d.vqs[0].event_idx);
	fr_set_avail_flags(&f, VRING_AVAIL_F_NO_INTERRUPT);
	ck_assert_int_eq(vq_push(&d.vqs[0], 0, 0), 0);
	virtio_dev_used(&d, 0);
	ck_assert_uint_eq(notify_queue_calls[0], 0);
	fr_set_avail_flags(&f, 0);
	ck_assert_int_eq(vq_push(&d.vqs[0], 1, 0), 0);
	virtio_dev_used(&d, 0);
	ck_assert_uint_eq(notify_queue_calls[0], 1);
}
END_TEST

#define S_ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRV VIRTIO_CONFIG_S_DRIVER
#define S_FOK VIRTIO_CONFIG_S_FEATURES_OK
#define S_DOK VIRTIO_CONFIG_S_DRIVER_OK

/* §2.1.1: clearing FEATURES_OK on a live device is refused and needs a
 * reset; the status keeps every bit the driver set. */
START_TEST(clearing_features_ok_needs_reset)
{
	go_live(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX));
	virtio_dev_set_status(&d, S_ACK | S_DRV | S_DOK);
	ck_assert_uint_eq(d.status, S_ACK | S_DRV | S_FOK | S_DOK | VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert(d.broken);
	ck_assert(!virtio_dev_live(&d));
	ck_assert_uint_eq(notify_config_calls, 1);
	/* The queue keeps the features it was enabled under, which are
	 * still the negotiated ones. */
	ck_assert(d.vqs[0].event_idx);
	ck_assert_uint_eq(d.driver_features, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX));
}
END_TEST

/* DRIVER_OK cleared and set again without a reset: the clearing write
 * breaks the device, and the device is not activated a second time. */
START_TEST(driver_ok_twice_without_reset)
{
	go_live(BIT(VIRTIO_F_VERSION_1));
	ck_assert_uint_eq(activate_calls, 1);
	virtio_dev_set_status(&d, S_ACK | S_DRV | S_FOK);
	ck_assert(d.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert(d.status & S_DOK);
	virtio_dev_set_status(&d, S_ACK | S_DRV | S_FOK | S_DOK);
	ck_assert_uint_eq(activate_calls, 1);
	ck_assert(!virtio_dev_live(&d));
	/* After a reset the same sequence activates again. */
	virtio_dev_set_status(&d, 0);
	go_live(BIT(VIRTIO_F_VERSION_1));
	ck_assert_uint_eq(activate_calls, 2);
}
END_TEST

/* Before DRIVER_OK too: ACKNOWLEDGE or DRIVER cleared is a broken rule. */
START_TEST(clearing_any_driver_bit_needs_reset)
{
	virtio_dev_set_status(&d, S_ACK | S_DRV);
	virtio_dev_set_status(&d, S_DRV);
	ck_assert(d.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert(d.status & S_ACK);
	virtio_dev_set_status(&d, 0);
	virtio_dev_set_status(&d, S_ACK | VIRTIO_CONFIG_S_FAILED);
	virtio_dev_set_status(&d, S_ACK);
	ck_assert(d.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert(d.status & VIRTIO_CONFIG_S_FAILED);
}
END_TEST

/* NEEDS_RESET and SUSPEND (VIRTIO_F_SUSPEND is not offered) are not the
 * driver's to set. */
START_TEST(device_bits_ignored_in_writes)
{
	virtio_dev_set_status(&d, S_ACK | VIRTIO_CONFIG_S_NEEDS_RESET | 0x10);
	ck_assert_uint_eq(d.status, S_ACK);
	ck_assert(!d.broken);
}
END_TEST

/* Queues are enabled after FEATURES_OK (§3.1.1): a queue enabled
 * before it would run with ring features the driver may still change. */
START_TEST(queue_before_features_ok_needs_reset)
{
	virtio_dev_set_status(&d, S_ACK | S_DRV);
	d.driver_features = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX);
	configure_queue0();
	virtio_dev_enable_queue(&d, 0);
	ck_assert(!d.vqs[0].enabled);
	ck_assert(d.status & VIRTIO_CONFIG_S_NEEDS_RESET);
}
END_TEST

START_TEST(stop_queue_asks_the_device_first)
{
	go_live(BIT(VIRTIO_F_VERSION_1));
	virtio_dev_stop_queue(&d, 0);
	ck_assert_uint_eq(stop_calls, 1);
	ck_assert(stop_saw_enabled);
	ck_assert(!d.vqs[0].enabled);
	/* The configuration stays for the driver to change or re-enable. */
	ck_assert_uint_eq(d.vqs[0].desc_gpa, f.vq.desc_gpa);
	ck_assert(virtio_dev_live(&d));
	/* Not enabled, or not a queue: nothing to do. */
	virtio_dev_stop_queue(&d, 0);
	virtio_dev_stop_queue(&d, 1);
	virtio_dev_stop_queue(&d, 7);
	ck_assert_uint_eq(stop_calls, 1);
	virtio_dev_enable_queue(&d, 0);
	ck_assert(d.vqs[0].enabled);
	ck_assert_uint_eq(d.vqs[0].last_avail, 0);
}
END_TEST

/* The exit dump never waits for the device lock: held elsewhere, the
 * device is named as busy and skipped; free, its status and queues show. */
START_TEST(dump_skips_a_busy_device)
{
	char out[1024] = "";
	FILE *m = fmemopen(out, sizeof(out) - 1, "w");

	ck_assert_ptr_nonnull(m);
	pthread_mutex_lock(&d.lock);
	virtio_dev_dump(&d, m);
	pthread_mutex_unlock(&d.lock);
	fflush(m);
	ck_assert_str_eq(out, "kvmini: virtio-test0: busy (another thread holds its lock): "
			      "not dumped\r\n");
	rewind(m);
	memset(out, 0, sizeof(out));
	virtio_dev_dump(&d, m);
	fclose(m);
	ck_assert_ptr_nonnull(strstr(out, "kvmini: virtio-test0: status 0"));
	ck_assert_ptr_nonnull(strstr(out, "kvmini: virtio-test0: queue 1: disabled\r\n"));
	ck_assert_int_eq(pthread_mutex_trylock(&d.lock), 0);
	pthread_mutex_unlock(&d.lock);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_core");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, init_fields);
	tcase_add_test(tc, features_accepted);
	tcase_add_test(tc, features_unoffered_refused);
	tcase_add_test(tc, features_without_version_1_refused);
	tcase_add_test(tc, activate_and_reset);
	tcase_add_test(tc, activate_failure_needs_reset);
	tcase_add_test(tc, fail_once_until_reset);
	tcase_add_test(tc, bad_queue_config_needs_reset);
	tcase_add_test(tc, used_interrupts_per_event_idx);
	tcase_add_test(tc, used_without_event_idx);
	tcase_add_test(tc, clearing_features_ok_needs_reset);
	tcase_add_test(tc, driver_ok_twice_without_reset);
	tcase_add_test(tc, clearing_any_driver_bit_needs_reset);
	tcase_add_test(tc, device_bits_ignored_in_writes);
	tcase_add_test(tc, queue_before_features_ok_needs_reset);
	tcase_add_test(tc, stop_queue_asks_the_device_first);
	tcase_add_test(tc, dump_skips_a_busy_device);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
