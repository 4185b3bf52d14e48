/* boot_write_x86_tables: GDT descriptors, empty IDT, identity map. */
#include <check.h>
#include <string.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"
#include "../check_main.h"
#include "test_util.h"

static uint64_t gdt_entry(const struct test_vm *vm, unsigned sel)
{
	return test_get64(vm->mem + LAYOUT_GDT + sel);
}

START_TEST(gdt_and_idt)
{
	struct test_vm vm;

	test_vm_init(&vm, 16 * MiB);
	memset(vm.mem, 0xcc, MiB);
	ck_assert_int_eq(boot_write_x86_tables(&vm.gm, ENTRY_PVH32), 0);
	ck_assert_uint_eq(gdt_entry(&vm, 0), 0);
	ck_assert_uint_eq(gdt_entry(&vm, 8), 0);
	ck_assert_uint_eq(gdt_entry(&vm, GDT_SEL_CODE64), 0x00af9b000000ffffULL);
	ck_assert_uint_eq(gdt_entry(&vm, GDT_SEL_DATA), 0x00cf93000000ffffULL);
	ck_assert_uint_eq(gdt_entry(&vm, GDT_SEL_CODE32), 0x00cf9b000000ffffULL);
	/* TSS: type 0xb (busy 32-bit), present, base 0, limit 0x67. */
	ck_assert_uint_eq((gdt_entry(&vm, GDT_SEL_TSS) >> 40) & 0xff, 0x8b);
	ck_assert_uint_eq(gdt_entry(&vm, GDT_SEL_TSS) & 0xffff, 0x67);
	ck_assert_uint_eq(test_get64(vm.mem + LAYOUT_IDT), 0);
	/* No page tables for the 32-bit PVH entry. */
	ck_assert_uint_eq(vm.mem[LAYOUT_PML4], 0xcc);
	test_vm_free(&vm);
}
END_TEST

START_TEST(identity_map)
{
	struct test_vm vm;
	uint64_t pde;

	test_vm_init(&vm, 16 * MiB);
	ck_assert_int_eq(boot_write_x86_tables(&vm.gm, ENTRY_LINUX64), 0);
	ck_assert_uint_eq(test_get64(vm.mem + LAYOUT_PML4), LAYOUT_PDPT | 3);
	ck_assert_uint_eq(test_get64(vm.mem + LAYOUT_PML4 + 8), 0);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_uint_eq(test_get64(vm.mem + LAYOUT_PDPT + 8 * i),
				  (LAYOUT_PD + 4096 * i) | 3);
	ck_assert_uint_eq(test_get64(vm.mem + LAYOUT_PDPT + 32), 0);
	ck_assert_uint_eq(test_get64(vm.mem + LAYOUT_PD), 0x83);
	ck_assert_uint_eq(test_get64(vm.mem + LAYOUT_PD + 8), 2 * MiB | 0x83);
	/* The last 2 MiB page below 4 GiB. */
	pde = test_get64(vm.mem + LAYOUT_PD + 4 * 4096 - 8);
	ck_assert_uint_eq(pde, (4 * GiB - 2 * MiB) | 0x83);
	test_vm_free(&vm);
}
END_TEST

START_TEST(no_low_memory)
{
	struct guest_mem gm = { 0 };
	static uint8_t buf[4096];

	/* Guest memory without the low pages: an error, not a crash. */
	ck_assert_int_eq(gm_add_region(&gm, MiB, sizeof(buf), buf), 0);
	ck_assert_int_ne(boot_write_x86_tables(&gm, ENTRY_LINUX64), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("x86_tables");
	TCase *tc = tcase_create("tables");

	tcase_add_test(tc, gdt_and_idt);
	tcase_add_test(tc, identity_map);
	tcase_add_test(tc, no_low_memory);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
