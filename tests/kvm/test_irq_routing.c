/* irq_routing on the host's /dev/kvm: MSI routes get GSIs from 24 up and
 * are freed for reuse, the default irqchip routes survive every
 * KVM_SET_GSI_ROUTING, irqfds and ioeventfds bind and unbind. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmini/irq_routing.h"
#include "../unit/check_main.h"

static int kvm_fd = -1, vm_fd = -1;
static struct irq_routing *r;

static void setup(void)
{
	struct kv_err e = { 0 };

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(kvm_fd, 0);
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	ck_assert_int_ge(vm_fd, 0);
	ck_assert_int_eq(ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0), 0);
	ck_assert_int_eq(irq_routing_create(vm_fd, &r, &e), 0);
}

static void teardown(void)
{
	irq_routing_destroy(r);
	close(vm_fd);
	close(kvm_fd);
}

/* KVM_IRQ_LINE_STATUS reports -1 when no route to @gsi delivered (none
 * exists, or every target is masked). */
static int line_status(unsigned gsi)
{
	struct kvm_irq_level l = { .irq = gsi, .level = 1 };

	ck_assert_int_eq(ioctl(vm_fd, KVM_IRQ_LINE_STATUS, &l), 0);
	l.level = 0;
	int status = l.status;
	ck_assert_int_eq(ioctl(vm_fd, KVM_IRQ_LINE_STATUS, &l), 0);
	return status;
}

START_TEST(msi_routes_and_defaults)
{
	int fds[IRQ_ROUTING_MAX_MSI + 1], gsis[IRQ_ROUTING_MAX_MSI + 1];

	for (unsigned i = 0; i <= IRQ_ROUTING_MAX_MSI; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC);
		ck_assert_int_ge(fds[i], 0);
		gsis[i] = -1;
	}
	ck_assert_int_eq(irq_routing_msi_route(r, &gsis[0], 0xfee00000, 0x4041, fds[0]), 0);
	ck_assert_int_eq(gsis[0], IRQ_ROUTING_MSI_GSI_BASE);
	ck_assert_int_eq(irq_routing_msi_route(r, &gsis[1], 0xfee00000, 0x4042, fds[1]), 0);
	ck_assert_int_eq(gsis[1], IRQ_ROUTING_MSI_GSI_BASE + 1);
	/* The defaults are still there: ISA lines route (through the PIC;
	 * an IOAPIC-only pin reports -1 while its entry is masked, so GSI
	 * 16-23 cannot be told apart from unrouted ones this way). */
	ck_assert_int_ne(line_status(4), -1);
	ck_assert_int_ne(line_status(0), -1);
	ck_assert_int_ne(line_status(15), -1);
	/* Update in place, then with another fd. */
	ck_assert_int_eq(irq_routing_msi_route(r, &gsis[0], 0xfee01000, 0x4043, fds[0]), 0);
	ck_assert_int_eq(gsis[0], IRQ_ROUTING_MSI_GSI_BASE);
	ck_assert_int_eq(irq_routing_msi_route(r, &gsis[0], 0xfee01000, 0x4043, fds[2]), 0);
	/* An unknown GSI cannot be updated. */
	int bogus = 5;
	ck_assert_int_eq(irq_routing_msi_route(r, &bogus, 0xfee00000, 0, fds[3]), -EINVAL);
	/* Freed GSIs are reused. */
	irq_routing_msi_unroute(r, gsis[0], fds[2]);
	gsis[0] = -1;
	ck_assert_int_eq(irq_routing_msi_route(r, &gsis[0], 0xfee00000, 0x4041, fds[0]), 0);
	ck_assert_int_eq(gsis[0], IRQ_ROUTING_MSI_GSI_BASE);
	/* Fill the table: then -ENOSPC. */
	for (unsigned i = 2; i < IRQ_ROUTING_MAX_MSI; i++)
		ck_assert_int_eq(irq_routing_msi_route(r, &gsis[i], 0xfee00000, 0x4000 + i, fds[i]), 0);
	ck_assert_int_eq(irq_routing_msi_route(r, &gsis[IRQ_ROUTING_MAX_MSI], 0xfee00000, 0,
					       fds[IRQ_ROUTING_MAX_MSI]), -ENOSPC);
	ck_assert_int_ne(line_status(9), -1);
	for (unsigned i = 0; i <= IRQ_ROUTING_MAX_MSI; i++)
		close(fds[i]);
}
END_TEST

START_TEST(irqfd_and_ioeventfd)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	ck_assert_int_eq(irq_routing_irqfd(r, 16, fd, true), 0);
	ck_assert_int_eq(irq_routing_irqfd(r, 16, fd, true), -EBUSY);
	ck_assert_int_eq(irq_routing_irqfd(r, 16, fd, false), 0);
	ck_assert_int_eq(irq_routing_ioeventfd(r, 0xc0003000, 0, -1, fd, true), 0);
	ck_assert_int_eq(irq_routing_ioeventfd(r, 0xc0003000, 0, -1, fd, true), -EEXIST);
	ck_assert_int_eq(irq_routing_ioeventfd(r, 0xc0003000, 0, -1, fd, false), 0);
	ck_assert_int_eq(irq_routing_ioeventfd(r, 0xc0003004, 2, -1, fd, true), 0);
	ck_assert_int_eq(irq_routing_ioeventfd(r, 0xc0003004, 3, -1, fd, true), -EINVAL);
	/* virtio-mmio: one eventfd per queue on the same register, told apart by value. */
	ck_assert_int_eq(irq_routing_ioeventfd(r, 0xd0000050, 4, 0, fd, true), 0);
	ck_assert_int_eq(irq_routing_ioeventfd(r, 0xd0000050, 4, 1, fd, true), 0);
	ck_assert_int_eq(irq_routing_ioeventfd(r, 0xd0000050, 4, 1, fd, true), -EEXIST);
	ck_assert_int_eq(irq_routing_ioeventfd(r, 0xd0000050, 4, 0, fd, false), 0);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("irq_routing");
	TCase *tc = tcase_create("kvm");

	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("SKIP: /dev/kvm is not usable here\n");
		return 77;
	}
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, msi_routes_and_defaults);
	tcase_add_test(tc, irqfd_and_ioeventfd);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
