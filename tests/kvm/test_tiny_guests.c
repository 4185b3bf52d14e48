/* Tiny guests on the host's /dev/kvm, through the same vm/vcpu/bus code
 * kvmini runs Linux with. They need only a working /dev/kvm, not VT-x. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "kvmini/boot.h"
#include "kvmini/bus.h"
#include "kvmini/layout.h"
#include "kvmini/vm.h"
#include "../unit/check_main.h"

extern const uint8_t guest_real_start[], guest_real_end[];
extern const uint8_t guest_triple_start[], guest_triple_end[];
extern const uint8_t guest_spin_start[], guest_spin_end[];
extern const uint8_t guest_long_start[], guest_long_end[];

#define TEST_PORT 0xe0
#define TEST_MMIO 0xd0000000ULL
#define MAX_RECORDS 32

struct record {
	uint64_t off;
	unsigned len;
	uint64_t value;
	bool mmio;
};

/* The test device: records every write; reads return fixed patterns;
 * a write to port 0xef asks the VM to stop. */
struct testdev {
	struct vm *vm;
	pthread_mutex_t lock;
	struct record rec[MAX_RECORDS];
	unsigned nr;
};

static void record(struct testdev *d, uint64_t off, const void *data, unsigned len, bool mmio)
{
	uint64_t v = 0;

	memcpy(&v, data, len);
	pthread_mutex_lock(&d->lock);
	if (d->nr < MAX_RECORDS)
		d->rec[d->nr++] = (struct record){ off, len, v, mmio };
	pthread_mutex_unlock(&d->lock);
}

static void pio_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	memset(data, 0x5a, len);
}

static void pio_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct testdev *d = opaque;

	if (off == 0xf)
		vm_request_stop(d->vm, STOP_POWEROFF);
	record(d, off, data, len, false);
}

static void mmio_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	uint64_t v = 0xcafef00d00000000ULL | off;

	memcpy(data, &v, len);
}

static void mmio_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	record(opaque, off, data, len, true);
}

static const struct bus_ops pio_ops = { pio_read, pio_write };
static const struct bus_ops mmio_ops = { mmio_read, mmio_write };

static struct vm *make_vm_with(struct testdev *d, unsigned cpus, bool irqchip,
				struct report *rep)
{
	struct vm_config cfg = {
		.memory = 16 * MiB, .cpus = cpus, .irqchip = irqchip,
		.pc_devices = false, .console_out_fd = -1,
		.report = rep, .kvm_stats = rep != NULL,
	};
	struct kv_err e = { 0 };
	struct vm *vm = NULL;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	if (vm_create(&vm, &cfg, &e))
		ck_abort_msg("vm_create failed (is /dev/kvm usable here?): %s", e.msg);
	d->vm = vm;
	ck_assert_int_eq(bus_register(&vm->pio, TEST_PORT, 16, &pio_ops, d, "testdev", &e), 0);
	ck_assert_int_eq(bus_register(&vm->mmio, TEST_MMIO, 0x1000, &mmio_ops, d, "testdev", &e), 0);
	return vm;
}

static struct vm *make_vm(struct testdev *d, unsigned cpus, bool irqchip)
{
	return make_vm_with(d, cpus, irqchip, NULL);
}

static void load(struct vm *vm, uint64_t gpa, const uint8_t *start, const uint8_t *end)
{
	ck_assert_int_eq(gm_write(&vm->mem, gpa, start, (size_t)(end - start)), 0);
}

static enum vm_stop_cause run_vm(struct vm *vm, const struct boot_entry *entry)
{
	struct kv_err e = { 0 };

	ck_assert_msg(vm_set_entry(vm, entry, &e) == 0, "vm_set_entry: %s", e.msg);
	ck_assert_msg(vm_start(vm, &e) == 0, "vm_start: %s", e.msg);
	return vm_wait(vm);
}

static void expect(const struct testdev *d, unsigned i, uint64_t off, unsigned len,
		   uint64_t value, bool mmio)
{
	ck_assert_msg(i < d->nr, "only %u accesses recorded, wanted #%u", d->nr, i);
	ck_assert_msg(d->rec[i].off == off && d->rec[i].len == len &&
		      d->rec[i].value == value && d->rec[i].mmio == mmio,
		      "access #%u: got %s off 0x%llx len %u value 0x%llx; want %s off 0x%llx len %u value 0x%llx",
		      i, d->rec[i].mmio ? "mmio" : "pio", (unsigned long long)d->rec[i].off,
		      d->rec[i].len, (unsigned long long)d->rec[i].value, mmio ? "mmio" : "pio",
		      (unsigned long long)off, len, (unsigned long long)value);
}

START_TEST(real_mode_pio_and_hlt)
{
	struct testdev d;
	struct vm *vm = make_vm(&d, 1, false);
	struct boot_entry entry = { .kind = ENTRY_REAL16, .rip = 0x1000 };

	load(vm, 0x1000, guest_real_start, guest_real_end);
	ck_assert_int_eq(run_vm(vm, &entry), STOP_HALTED);
	ck_assert_uint_eq(d.nr, 7);
	expect(&d, 0, 0, 1, 'K', false);
	expect(&d, 1, 2, 2, 0x1234, false);
	expect(&d, 2, 1, 1, 0x5a, false);   /* IN from the device, echoed */
	expect(&d, 3, 6, 1, 0xff, false);   /* unclaimed port reads all-ones */
	expect(&d, 4, 8, 1, 'a', false);    /* rep outsb: one dispatch per byte */
	expect(&d, 5, 8, 1, 'b', false);
	expect(&d, 6, 8, 1, 'c', false);
	ck_assert_uint_ge(vm->pio.unclaimed, 1);
	vm_destroy(vm);
}
END_TEST

START_TEST(long_mode_mmio)
{
	struct testdev d;
	struct vm *vm = make_vm(&d, 1, false);
	struct boot_entry entry = { .kind = ENTRY_LINUX64, .rip = 0x100000, .boot_info = 0x7000 };

	ck_assert_int_eq(boot_write_x86_tables(&vm->mem, ENTRY_LINUX64), 0);
	load(vm, 0x100000, guest_long_start, guest_long_end);
	ck_assert_int_eq(run_vm(vm, &entry), STOP_HALTED);
	ck_assert_uint_eq(d.nr, 3);
	expect(&d, 0, 0, 8, 0x1122334455667788ULL, true);
	expect(&d, 1, 4, 4, 0x00000008, false); /* low half of the MMIO read at +8 */
	expect(&d, 2, 8, 4, 0x7000, false);     /* RSI carried the boot info */
	vm_destroy(vm);
}
END_TEST

START_TEST(triple_fault_is_a_crash)
{
	struct testdev d;
	struct vm *vm = make_vm(&d, 1, false);
	struct boot_entry entry = { .kind = ENTRY_LINUX64, .rip = 0x100000 };

	ck_assert_int_eq(boot_write_x86_tables(&vm->mem, ENTRY_LINUX64), 0);
	load(vm, 0x100000, guest_triple_start, guest_triple_end);
	ck_assert_int_eq(run_vm(vm, &entry), STOP_GUEST_CRASH);
	ck_assert_int_eq(vm_exit_status(vm), 122);
	vm_destroy(vm);
}
END_TEST

/* With the in-kernel irqchip the second vCPU sits in KVM_RUN waiting for
 * a SIPI and the first spins: only the stop request's kick ends them. */
START_TEST(stop_kicks_all_vcpus)
{
	struct testdev d;
	struct vm *vm = make_vm(&d, 2, true);
	struct boot_entry entry = { .kind = ENTRY_REAL16, .rip = 0x1000 };
	struct timespec t0, t1;

	load(vm, 0x1000, guest_spin_start, guest_spin_end);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(run_vm(vm, &entry), STOP_POWEROFF);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_uint_eq(d.nr, 2);
	expect(&d, 0, 0, 1, 'S', false);
	ck_assert_msg(t1.tv_sec - t0.tv_sec < 10, "stop took %ld s", (long)(t1.tv_sec - t0.tv_sec));
	vm_destroy(vm);
}
END_TEST

static uint64_t stat_of(const struct report *r, const char *name)
{
	for (unsigned i = 0; i < r->nr_kvm_stats; i++)
		if (!strcmp(r->kvm_stats[i].name, name))
			return r->kvm_stats[i].value;
	ck_abort_msg("KVM reports no statistic '%s'", name);
	return 0;
}

/* True when this host backs anonymous memory with transparent huge
 * pages (always, or on MADV_HUGEPAGE request as kvmini makes). */
static bool thp_on(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strstr(buf, "[always]") || strstr(buf, "[madvise]");
}

/* The --report profile through the real KVM_GET_STATS_FD: the guest's
 * seven port writes are seven of KVM's io_exits, and, where the host has
 * transparent huge pages, the guest page it ran from is one 2 MiB
 * mapping (guest RAM is aligned for it). */
START_TEST(kvm_stats_and_huge_pages)
{
	struct testdev d;
	struct report rep;
	struct vm *vm;
	struct boot_entry entry = { .kind = ENTRY_REAL16, .rip = 0x1000 };

	report_init(&rep);
	vm = make_vm_with(&d, 1, false, &rep);
	for (unsigned i = 0; i < vm->mem.nr_regions; i++)
		ck_assert(gm_region_congruent(&vm->mem.regions[i], GM_HUGE_2M));
	load(vm, 0x1000, guest_real_start, guest_real_end);
	ck_assert_int_eq(run_vm(vm, &entry), STOP_HALTED);
	ck_assert_msg(vm_stats_collect(vm, &rep) == 0, "no KVM statistics (KVM_GET_STATS_FD)");
	ck_assert_uint_ge(stat_of(&rep, "exits"), 8);     /* 7 port accesses and the HLT */
	/* kvm_pvm (a paravirtual KVM with no VT-x/AMD-V, as on some of our
	 * CI machines) emulates the guest: it counts exits but leaves
	 * io_exits and pages_2m at 0. Hardware KVM (the nested L1, where
	 * this test runs when the host has no /dev/kvm) counts both. */
	if (access("/sys/module/kvm_pvm", F_OK) == 0) {
		printf("tiny guest: this host's KVM is kvm_pvm, which counts neither io_exits "
		       "nor pages_2m: only 'exits' and 'halt_exits' are checked here\n");
	} else {
		ck_assert_uint_ge(stat_of(&rep, "io_exits"), 7);
		if (thp_on())
			ck_assert_uint_ge(stat_of(&rep, "pages_2m"), 1);
	}
	ck_assert_uint_ge(stat_of(&rep, "halt_exits"), 1);
	printf("tiny guest: %llu exits, %llu io_exits, %llu 2 MiB mappings (THP %s)\n",
	       (unsigned long long)stat_of(&rep, "exits"),
	       (unsigned long long)stat_of(&rep, "io_exits"),
	       (unsigned long long)stat_of(&rep, "pages_2m"), thp_on() ? "on" : "off");
	vm_destroy(vm);
	report_fini(&rep);
}
END_TEST

static Suite *tiny_suite(void)
{
	Suite *s = suite_create("tiny-guests");
	TCase *tc = tcase_create("kvm");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, real_mode_pio_and_hlt);
	tcase_add_test(tc, long_mode_mmio);
	tcase_add_test(tc, triple_fault_is_a_crash);
	tcase_add_test(tc, stop_kicks_all_vcpus);
	tcase_add_test(tc, kvm_stats_and_huge_pages);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(tiny_suite());
}
