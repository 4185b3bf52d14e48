/* virtio-mmio transport: the version 2 registers as a driver sees them
 * through the MMIO bus (fixture: mmio_fixture.h). Covers identification,
 * feature negotiation through the Sel registers, queue configuration and
 * QueueReady checks, kicks (written by the handler or, with a fake KVM
 * ioeventfd, by "KVM"), InterruptStatus and ACK against a fake irq line
 * that must see each edge once, config space bounds, wrongly sized
 * register accesses, and reset. The state rules (QueueReady = 0 with a
 * request in flight, status bits cleared) are in
 * test_virtio_mmio_state.c. */
#include <check.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../../check_main.h"
#include "mmio_fixture.h"

START_TEST(identification)
{
	ck_assert_uint_eq(rd32(R_MAGIC), 0x74726976);
	ck_assert_uint_eq(rd32(R_VERSION), 2);
	ck_assert_uint_eq(rd32(R_DEVICE_ID), 42);
	ck_assert_uint_eq(rd32(R_VENDOR_ID), 0x554d4551);
	ck_assert_uint_eq(rd32(R_STATUS), 0);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 0);
	ck_assert_uint_eq(rd32(R_CONFIG_GEN), 0);
	/* Write-only registers read as 0; read-only ones ignore writes. */
	ck_assert_uint_eq(rd32(R_QUEUE_NOTIFY), 0);
	wr32(R_MAGIC, 0);
	wr32(R_DEVICE_ID, 7);
	ck_assert_uint_eq(rd32(R_MAGIC), 0x74726976);
	ck_assert_uint_eq(rd32(R_DEVICE_ID), 42);
	/* The whole 4 KiB window is the device's, nothing beyond. */
	ck_assert_int_eq(bus_dispatch(&t.mmio, BASE + 0xffc, &(uint32_t){ 0 }, 4, false), 0);
	ck_assert_int_eq(bus_dispatch(&t.mmio, BASE + 0x1000, &(uint32_t){ 0 }, 4, false),
			 -ENOENT);
}
END_TEST

START_TEST(queue_num_max)
{
	wr32(R_QUEUE_SEL, 0);
	ck_assert_uint_eq(rd32(R_QUEUE_NUM_MAX), QUEUE_MAX);
	wr32(R_QUEUE_SEL, 1);
	ck_assert_uint_eq(rd32(R_QUEUE_NUM_MAX), QUEUE_MAX);
	/* Absent queues, inside and far outside VIRTIO_MAX_QUEUES. */
	wr32(R_QUEUE_SEL, NR_QUEUES);
	ck_assert_uint_eq(rd32(R_QUEUE_NUM_MAX), 0);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	wr32(R_QUEUE_SEL, 0xffffffff);
	ck_assert_uint_eq(rd32(R_QUEUE_NUM_MAX), 0);
	/* Configuring one is ignored, not a crash. */
	wr32(R_QUEUE_NUM, 16);
	wr32(R_DESC_LO, 0x1000);
	wr32(R_QUEUE_READY, 1);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	ck_assert_uint_eq(rd32(R_STATUS), 0);
}
END_TEST

START_TEST(features)
{
	wr32(R_DEV_FEATURES_SEL, 0);
	ck_assert_uint_eq(rd32(R_DEV_FEATURES), (uint32_t)t.dev.features);
	ck_assert_uint_ne(rd32(R_DEV_FEATURES) & (1u << 5), 0);
	wr32(R_DEV_FEATURES_SEL, 1);
	ck_assert_uint_eq(rd32(R_DEV_FEATURES), (uint32_t)(t.dev.features >> 32));
	ck_assert_uint_ne(rd32(R_DEV_FEATURES) & 1, 0);         /* VERSION_1 */
	ck_assert_uint_ne(rd32(R_DEV_FEATURES) & (1u << 8), 0); /* bit 40 */
	wr32(R_DEV_FEATURES_SEL, 2);
	ck_assert_uint_eq(rd32(R_DEV_FEATURES), 0);
	wr32(R_DEV_FEATURES_SEL, 0xffffffff);
	ck_assert_uint_eq(rd32(R_DEV_FEATURES), 0);

	wr32(R_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr32(R_DRV_FEATURES_SEL, 0);
	wr32(R_DRV_FEATURES, 1u << 5);
	wr32(R_DRV_FEATURES_SEL, 1);
	wr32(R_DRV_FEATURES, 1 | (1u << 8));
	wr32(R_DRV_FEATURES_SEL, 2);
	wr32(R_DRV_FEATURES, 0xffffffff); /* no such word: ignored */
	ck_assert_uint_eq(t.dev.driver_features, (1ULL << 5) | (1ULL << 32) | (1ULL << 40));
	wr32(R_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		       VIRTIO_CONFIG_S_FEATURES_OK);
	ck_assert_uint_ne(rd32(R_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	/* Negotiation is over: later writes change nothing. */
	wr32(R_DRV_FEATURES_SEL, 0);
	wr32(R_DRV_FEATURES, 0);
	ck_assert_uint_eq(t.dev.driver_features, (1ULL << 5) | (1ULL << 32) | (1ULL << 40));
}
END_TEST

START_TEST(features_not_offered_refused)
{
	wr32(R_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr32(R_DRV_FEATURES_SEL, 1);
	wr32(R_DRV_FEATURES, 1 | (1u << 20)); /* bit 52 not offered */
	wr32(R_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		       VIRTIO_CONFIG_S_FEATURES_OK);
	ck_assert_uint_eq(rd32(R_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
}
END_TEST

START_TEST(queue_config_and_ready)
{
	struct virtq *vq = &t.dev.vqs[1];

	negotiate();
	setup_queue(1, 16, 0x1000);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 1);
	ck_assert(vq->enabled);
	ck_assert_uint_eq(vq->size, 16);
	ck_assert_uint_eq(vq->desc_gpa, 0x1000);
	ck_assert_uint_eq(vq->avail_gpa, 0x1100);
	ck_assert_uint_eq(vq->used_gpa, 0x1128);
	ck_assert(!vq->event_idx); /* negotiate() accepts VERSION_1 only */
	ck_assert_uint_eq(rd32(R_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	/* Queue 0 is untouched. */
	wr32(R_QUEUE_SEL, 0);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
}
END_TEST

START_TEST(high_address_halves)
{
	struct virtq *vq = &t.dev.vqs[0];

	wr32(R_QUEUE_SEL, 0);
	wr32(R_DESC_LO, 0x89abcdef);
	wr32(R_DESC_HI, 0x01234567);
	wr32(R_DRIVER_HI, 0xffffffff);
	wr32(R_DRIVER_LO, 0x2);
	wr32(R_DEVICE_LO, 0x4);
	ck_assert_uint_eq(vq->desc_gpa, 0x0123456789abcdefULL);
	ck_assert_uint_eq(vq->avail_gpa, 0xffffffff00000002ULL);
	ck_assert_uint_eq(vq->used_gpa, 0x4);
	/* Such rings are not in RAM: the device needs a reset and says so
	 * with a configuration interrupt. */
	wr32(R_QUEUE_READY, 1);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	ck_assert_uint_ne(rd32(R_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 2);
	ck_assert_int_eq(t.irq.raises, 1);
	ck_assert_uint_eq(t.irq.gsi, GSI);
}
END_TEST

START_TEST(bad_queue_size_needs_reset)
{
	negotiate();
	wr32(R_QUEUE_SEL, 0);
	wr32(R_QUEUE_NUM, 24); /* not a power of two */
	wr32(R_DESC_LO, 0x1000);
	wr32(R_DRIVER_LO, 0x2000);
	wr32(R_DEVICE_LO, 0x3000);
	wr32(R_QUEUE_READY, 1);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	ck_assert_uint_ne(rd32(R_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	/* Driver writes cannot clear NEEDS_RESET; a reset does. */
	wr32(R_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	ck_assert_uint_ne(rd32(R_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	wr32(R_STATUS, 0);
	ck_assert_uint_eq(rd32(R_STATUS), 0);
}
END_TEST

START_TEST(queue_num_too_large)
{
	negotiate();
	wr32(R_QUEUE_SEL, 0);
	wr32(R_QUEUE_NUM, 0x10000 + 16); /* must not wrap to 16 */
	wr32(R_DESC_LO, 0x1000);
	wr32(R_DRIVER_LO, 0x2000);
	wr32(R_DEVICE_LO, 0x3000);
	wr32(R_QUEUE_READY, 1);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	ck_assert_uint_ne(rd32(R_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}
END_TEST

START_TEST(writes_while_ready_ignored)
{
	struct virtq *vq = &t.dev.vqs[0];

	negotiate();
	setup_queue(0, 32, 0x4000);
	wr32(R_QUEUE_NUM, 8);
	wr32(R_DESC_LO, 0x8000);
	wr32(R_DESC_HI, 1);
	wr32(R_DRIVER_LO, 0x9000);
	wr32(R_DEVICE_LO, 0xa000);
	ck_assert_uint_eq(vq->size, 32);
	ck_assert_uint_eq(vq->desc_gpa, 0x4000);
	ck_assert_uint_eq(vq->avail_gpa, 0x4000 + 16 * 32);
	/* Ready again while ready: nothing changes (ring state kept). */
	vq->last_avail = 3;
	wr32(R_QUEUE_READY, 1);
	ck_assert_uint_eq(vq->last_avail, 3);
	/* Other queues are still configurable. */
	wr32(R_QUEUE_SEL, 1);
	wr32(R_QUEUE_NUM, 8);
	ck_assert_uint_eq(t.dev.vqs[1].size, 8);
	/* QueueReady = 0 stops the queue and then allows changes. */
	wr32(R_QUEUE_SEL, 0);
	wr32(R_QUEUE_READY, 0);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	wr32(R_QUEUE_NUM, 8);
	ck_assert_uint_eq(vq->size, 8);
	ck_assert_uint_eq(rd32(R_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}
END_TEST

START_TEST(notify_through_handler)
{
	negotiate();
	setup_queue(0, 16, 0x1000);
	setup_queue(1, 16, 0x2000);
	driver_ok();
	ck_assert_int_eq(t.fd.activations, 1);
	wr32(R_QUEUE_NOTIFY, 1);
	wait_kicks(1, 1);
	wr32(R_QUEUE_NOTIFY, 0);
	wait_kicks(0, 1);
	wr32(R_QUEUE_NOTIFY, 1);
	wait_kicks(1, 2);
	/* Out of range: ignored. */
	wr32(R_QUEUE_NOTIFY, NR_QUEUES);
	wr32(R_QUEUE_NOTIFY, 0xffffffff);
	settle();
	ck_assert_int_eq(kicks(0), 1);
	ck_assert_int_eq(kicks(1), 2);
}
END_TEST

START_TEST(notify_before_live_dropped)
{
	negotiate();
	setup_queue(0, 16, 0x1000);
	wr32(R_QUEUE_NOTIFY, 0); /* no DRIVER_OK yet */
	settle();
	ck_assert_int_eq(kicks(0), 0);
	driver_ok();
	wr32(R_QUEUE_NOTIFY, 1); /* live, but queue 1 was never made ready */
	settle();
	ck_assert_int_eq(kicks(1), 0);
	/* The stale kick of queue 0 was drained, not replayed. */
	ck_assert_int_eq(kicks(0), 0);
	wr32(R_QUEUE_NOTIFY, 0);
	wait_kicks(0, 1);
}
END_TEST

START_TEST(notify_through_ioeventfd)
{
	uint64_t one = 1;

	ck_assert_int_eq(t.ioev_assigns, NR_QUEUES);
	for (unsigned q = 0; q < NR_QUEUES; q++) {
		ck_assert(t.ioev[q].assigned);
		ck_assert_uint_eq(t.ioev[q].addr, BASE + R_QUEUE_NOTIFY);
		ck_assert_uint_eq(t.ioev[q].len, 4);
		ck_assert_int_eq(t.ioev[q].datamatch, q);
	}
	ck_assert_int_ne(t.ioev[0].fd, t.ioev[1].fd);
	negotiate();
	setup_queue(0, 16, 0x1000);
	setup_queue(1, 16, 0x2000);
	driver_ok();
	/* "KVM" matched a write of 1 to QueueNotify. */
	ck_assert_int_eq(write(t.ioev[1].fd, &one, sizeof(one)), sizeof(one));
	wait_kicks(1, 1);
	ck_assert_int_eq(kicks(0), 0);
	/* A write KVM did not match still reaches the right queue. */
	wr32(R_QUEUE_NOTIFY, 0);
	wait_kicks(0, 1);
	virtio_mmio_destroy(t.mm);
	t.mm = NULL;
	ck_assert_int_eq(t.ioev_deassigns, NR_QUEUES);
}
END_TEST

START_TEST(interrupt_status_and_ack)
{
	pthread_mutex_lock(&t.dev.lock);
	t.dev.tops->notify_queue(t.dev.transport, 0);
	t.dev.tops->notify_queue(t.dev.transport, 1);
	pthread_mutex_unlock(&t.dev.lock);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 1);
	ck_assert_int_eq(t.irq.raises, 1);
	ck_assert_int_eq(t.irq.level, 1);
	ck_assert_uint_eq(t.irq.gsi, GSI);

	pthread_mutex_lock(&t.dev.lock);
	t.dev.tops->notify_config(t.dev.transport);
	pthread_mutex_unlock(&t.dev.lock);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 3);
	ck_assert_int_eq(t.irq.raises, 1);

	wr32(R_INT_ACK, 1);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 2);
	ck_assert_int_eq(t.irq.level, 1);
	ck_assert_int_eq(t.irq.lowers, 0);
	wr32(R_INT_ACK, 0xfffffffc); /* bits that are not set: nothing */
	ck_assert_uint_eq(rd32(R_INT_STATUS), 2);
	wr32(R_INT_ACK, 2);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 0);
	ck_assert_int_eq(t.irq.lowers, 1);
	ck_assert_int_eq(t.irq.level, 0);
	wr32(R_INT_ACK, 3); /* acking nothing reports no edge (the fake would fail) */
	ck_assert_int_eq(t.irq.lowers, 1);

	pthread_mutex_lock(&t.dev.lock);
	t.dev.tops->notify_config(t.dev.transport);
	pthread_mutex_unlock(&t.dev.lock);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 2);
	ck_assert_int_eq(t.irq.raises, 2);
	/* InterruptStatus is read-only. */
	wr32(R_INT_STATUS, 0);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 2);
}
END_TEST

START_TEST(config_space)
{
	uint8_t v8[8];

	ck_assert_uint_eq(rd(R_CONFIG, 1), 0x10);
	ck_assert_uint_eq(rd(R_CONFIG + 1, 2), 0x1211);
	ck_assert_uint_eq(rd(R_CONFIG + 4, 4), 0x17161514);
	ck_assert_uint_eq(rd(R_CONFIG + 4, 8), 0x1b1a191817161514ULL);
	ck_assert_uint_eq(rd(R_CONFIG + CONFIG_LEN - 1, 1), 0x10 + CONFIG_LEN - 1);
	/* Beyond config_len, or straddling its end: zeros. */
	ck_assert_uint_eq(rd(R_CONFIG + CONFIG_LEN, 1), 0);
	ck_assert_uint_eq(rd(R_CONFIG + CONFIG_LEN - 2, 4), 0);
	ck_assert_uint_eq(rd(R_CONFIG + 8, 8), 0);
	ck_assert_uint_eq(rd(0xffc, 4), 0);

	wr(R_CONFIG + 2, 2, 0xbeef);
	ck_assert_uint_eq(t.fd.config[2], 0xef);
	ck_assert_uint_eq(t.fd.config[3], 0xbe);
	wr(R_CONFIG, 8, 0x0807060504030201ULL);
	memcpy(v8, t.fd.config, 8);
	ck_assert_uint_eq(v8[0], 1);
	ck_assert_uint_eq(v8[7], 8);
	/* Ignored: beyond or straddling. */
	wr(R_CONFIG + 8, 8, ~0ULL);
	wr(R_CONFIG + CONFIG_LEN, 4, ~0ULL);
	wr(0xffc, 4, ~0ULL);
	for (unsigned i = 8; i < CONFIG_LEN; i++)
		ck_assert_uint_eq(t.fd.config[i], 0x10 + i);
}
END_TEST

START_TEST(odd_register_accesses)
{
	/* Wrong sizes and unaligned reads give 0. */
	ck_assert_uint_eq(rd(R_MAGIC, 1), 0);
	ck_assert_uint_eq(rd(R_MAGIC, 2), 0);
	ck_assert_uint_eq(rd(R_MAGIC, 8), 0);
	ck_assert_uint_eq(rd(R_MAGIC + 1, 4), 0);
	ck_assert_uint_eq(rd(R_MAGIC + 2, 2), 0);
	/* Wrong-size writes change nothing. */
	wr(R_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(R_STATUS, 2, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(R_STATUS, 8, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	ck_assert_uint_eq(rd32(R_STATUS), 0);
	wr(R_QUEUE_SEL, 8, 1);
	wr(R_QUEUE_SEL + 2, 4, 1);
	wr(R_QUEUE_NUM, 2, 8);
	ck_assert_uint_eq(t.dev.vqs[0].size, QUEUE_MAX);
	/* An 8-byte write across two registers (DescLow/High) is not two
	 * 32-bit writes. */
	wr(R_DESC_LO, 8, 0x0000000100001000ULL);
	ck_assert_uint_eq(t.dev.vqs[0].desc_gpa, 0);
	/* Reserved offsets. */
	wr32(0x0c0, 0xffffffff);
	ck_assert_uint_eq(rd32(0x0c0), 0);
	/* Status bits above 7 are dropped. */
	wr32(R_STATUS, 0x100 | VIRTIO_CONFIG_S_ACKNOWLEDGE);
	ck_assert_uint_eq(rd32(R_STATUS), VIRTIO_CONFIG_S_ACKNOWLEDGE);
}
END_TEST

START_TEST(reset_clears_everything)
{
	negotiate();
	setup_queue(0, 16, 0x1000);
	driver_ok();
	wr32(R_QUEUE_SEL, 1);
	wr32(R_DEV_FEATURES_SEL, 1);
	pthread_mutex_lock(&t.dev.lock);
	t.dev.tops->notify_queue(t.dev.transport, 0);
	t.dev.tops->notify_config(t.dev.transport);
	pthread_mutex_unlock(&t.dev.lock);
	ck_assert_int_eq(t.irq.level, 1);

	wr32(R_STATUS, 0);
	ck_assert_int_eq(t.fd.resets, 1);
	ck_assert_uint_eq(rd32(R_STATUS), 0);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 0);
	ck_assert_int_eq(t.irq.level, 0);
	ck_assert_int_eq(t.irq.lowers, 1);
	ck_assert_uint_eq(t.dev.driver_features, 0);
	ck_assert(!virtio_dev_live(&t.dev));
	/* Selectors are back at 0: queue 0 shows, no longer ready. */
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	ck_assert(!t.dev.vqs[0].enabled);
	ck_assert_uint_eq(t.dev.vqs[0].desc_gpa, 0);
	ck_assert_uint_eq(rd32(R_DEV_FEATURES), (uint32_t)t.dev.features);
	/* A kick after reset reaches nobody. */
	wr32(R_QUEUE_NOTIFY, 0);
	settle();
	ck_assert_int_eq(kicks(0), 0);
	/* Reset with the line already low reports nothing. */
	wr32(R_STATUS, 0);
	ck_assert_int_eq(t.irq.lowers, 1);
	/* And the device works again from scratch. */
	negotiate();
	setup_queue(0, 16, 0x1000);
	driver_ok();
	wr32(R_QUEUE_NOTIFY, 0);
	wait_kicks(0, 1);
}
END_TEST

START_TEST(create_rejects_overlap)
{
	struct virtio_dev other;
	struct virtio_mmio *mm2 = NULL;
	struct kv_err e = { 0 };

	virtio_dev_init(&other, "virtio-test1", 42, 0, 1, 16, 0, &fake_ops, NULL, &t.gm, t.loop);
	ck_assert_int_lt(virtio_mmio_create(&t.host, BASE + 0x800, 6, &other, &mm2, &e), 0);
	ck_assert_ptr_null(mm2);
	ck_assert_ptr_null(other.transport);
	ck_assert_str_ne(e.msg, "");
	virtio_dev_fini(&other);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_mmio");
	TCase *tc = tcase_create("registers");
	TCase *tk = tcase_create("ioeventfd");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, identification);
	tcase_add_test(tc, queue_num_max);
	tcase_add_test(tc, features);
	tcase_add_test(tc, features_not_offered_refused);
	tcase_add_test(tc, queue_config_and_ready);
	tcase_add_test(tc, high_address_halves);
	tcase_add_test(tc, bad_queue_size_needs_reset);
	tcase_add_test(tc, queue_num_too_large);
	tcase_add_test(tc, writes_while_ready_ignored);
	tcase_add_test(tc, notify_through_handler);
	tcase_add_test(tc, notify_before_live_dropped);
	tcase_add_test(tc, interrupt_status_and_ack);
	tcase_add_test(tc, config_space);
	tcase_add_test(tc, odd_register_accesses);
	tcase_add_test(tc, reset_clears_everything);
	tcase_add_test(tc, create_rejects_overlap);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tk, setup_ioeventfd, teardown);
	tcase_add_test(tk, notify_through_ioeventfd);
	suite_add_tcase(s, tk);
	return check_run_suite(s);
}
