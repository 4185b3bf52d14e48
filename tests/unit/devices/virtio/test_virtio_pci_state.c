/* virtio-pci's state rules: memory decoding off keeps every kick (also
 * KVM's ioeventfds) from the device; MSI routes change only on register
 * writes, never from the interrupt path the I/O thread runs; the status
 * register refuses cleared bits (virtio 1.x §2.1.1). Fixture:
 * pci_fixture.h. */
#include <check.h>
#include <pthread.h>
#include <unistd.h>

#include "../../check_main.h"
#include "pci_fixture.h"

/* Memory decoding off: no BAR0 write reaches the device, not even the
 * kicks KVM would take through its ioeventfds, which are deassigned
 * until decoding comes back. */
START_TEST(decoding_off_stops_kicks)
{
	struct evloop *loop = recreate_with_loop(true);

	ck_assert_int_eq(fhost.nr_ioev, 0); /* the command register starts at 0 */
	driver_features_ok();               /* turns decoding on */
	ck_assert_int_eq(fhost.nr_ioev, NQ);
	for (int i = 0; i < NQ; i++)
		ck_assert_uint_eq(fhost.ioev[i].addr & ~4ULL, BAR + 0x3000);
	driver_setup_queue(0, QSIZE);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
	kvm_write(0x3000, 2, 0);
	wait_notified(0, 1);

	cfg_write(0x04, 2, PCI_COMMAND_MASTER); /* decoding off */
	ck_assert_int_eq(fhost.nr_ioev, 0);
	kvm_write(0x3000, 2, 0);
	kvm_write(0x3000, 4, 0);
	usleep(30000);
	ck_assert_uint_eq(notified(0), 1);
	cfg_write(0x04, 2, PCI_COMMAND_MASTER); /* unchanged: nothing to do */
	ck_assert_int_eq(fhost.nr_ioev, 0);

	cfg_write(0x04, 2, PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY);
	ck_assert_int_eq(fhost.nr_ioev, NQ);
	kvm_write(0x3000, 2, 0);
	wait_notified(0, 2);
	virtio_pci_destroy(vp);
	vp = NULL;
	ck_assert_int_eq(fhost.nr_ioev, 0);
	evloop_destroy(loop);
}
END_TEST

static void *notify_queue0_thread(void *arg)
{
	pthread_mutex_lock(&dev.lock);
	dev.tops->notify_queue(dev.transport, 0);
	pthread_mutex_unlock(&dev.lock);
	return NULL;
}

/* The I/O thread raises interrupts; its seccomp filter refuses
 * KVM_SET_GSI_ROUTING. A vector whose route failed stays pending until a
 * register write (a vCPU thread) retries the route. */
START_TEST(msix_route_retried_only_by_register_writes)
{
	unsigned at = msix_cap();
	uint32_t table = cfg_read(at + 4, 4), pba = cfg_read(at + 8, 4);
	pthread_t io;

	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	cfg_write(at + 2, 2, 0x8000);
	bar_write(table + 16, 8, 0xfee00000u);
	bar_write(table + 24, 4, 0x4041);
	fhost.fail_routes = true;
	bar_write(table + 28, 4, 0); /* unmask: the route fails */
	ck_assert_int_eq(fhost.route_failures, 1);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pthread_create(&io, NULL, notify_queue0_thread, NULL), 0);
		ck_assert_int_eq(pthread_join(io, NULL), 0);
		if (i == 1)
			fhost.fail_routes = false;
	}
	/* No route call from the interrupt path, failed or not. */
	ck_assert_int_eq(fhost.route_failures, 1);
	ck_assert_int_eq(fhost.routes, 0);
	ck_assert_uint_eq(bar_read(pba, 8), 1u << 1);
	/* The driver touches the vector again: routed, delivered once. */
	bar_write(table + 28, 4, 0);
	ck_assert_int_eq(fhost.routes, 1);
	ck_assert_uint_eq(bar_read(pba, 8), 0);
	ck_assert_uint_eq(eventfd_count(fhost.last_fd), 1);
	/* A routed vector goes out from the I/O thread without a route call. */
	ck_assert_int_eq(pthread_create(&io, NULL, notify_queue0_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(io, NULL), 0);
	ck_assert_int_eq(fhost.routes, 1);
	ck_assert_uint_eq(eventfd_count(fhost.last_fd), 1);
}
END_TEST

/* §2.1.1 through the common configuration: clearing FEATURES_OK is
 * refused (NEEDS_RESET) and negotiation does not reopen. */
START_TEST(status_bits_cleared_without_reset)
{
	driver_features_ok();
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0x0b);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x03);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0x0b | VIRTIO_CONFIG_S_NEEDS_RESET);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1u << 5);
	ck_assert_uint_eq(dev.driver_features, 1ULL << 32);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_pci_state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, decoding_off_stops_kicks);
	tcase_add_test(tc, msix_route_retried_only_by_register_writes);
	tcase_add_test(tc, status_bits_cleared_without_reset);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
