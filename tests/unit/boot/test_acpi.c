/* ACPI tables: walks RSDP -> XSDT -> FADT/DSDT, MADT the way a guest
 * would, checking signatures, checksums and the fields Linux relies on. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "kvmini/layout.h"
#include "../../../guest-boot/boot_internal.h"
#include "../check_main.h"
#include "test_util.h"

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	for (size_t i = 0; i < len; i++)
		s += p[i];
	return s;
}

/* Returns the table at @gpa after checking its signature and checksum. */
static const uint8_t *table_at(const struct test_vm *vm, uint64_t gpa, const char *sig)
{
	const uint8_t *t;
	uint32_t len;

	ck_assert_uint_ge(gpa, LAYOUT_ACPI_TABLES);
	ck_assert_uint_lt(gpa, LAYOUT_BIOS_END);
	t = vm->mem + gpa;
	ck_assert_mem_eq(t, sig, 4);
	len = test_get32(t + 4);
	ck_assert_uint_ge(len, 36);
	ck_assert_uint_le(gpa + len, LAYOUT_BIOS_END);
	ck_assert_uint_eq(sum(t, len), 0);
	return t;
}

struct tables {
	const uint8_t *xsdt, *fadt, *dsdt, *madt;
};

static struct tables walk(const struct test_vm *vm)
{
	const uint8_t *rsdp = vm->mem + LAYOUT_ACPI_RSDP;
	struct tables t;

	ck_assert_mem_eq(rsdp, "RSD PTR ", 8);
	ck_assert_uint_eq(sum(rsdp, 20), 0);
	ck_assert_uint_eq(rsdp[15], 2);                /* revision */
	ck_assert_uint_eq(test_get32(rsdp + 20), 36);  /* length */
	ck_assert_uint_eq(sum(rsdp, 36), 0);
	t.xsdt = table_at(vm, test_get64(rsdp + 24), "XSDT");
	ck_assert_uint_eq(test_get32(t.xsdt + 4), 36 + 16);
	t.fadt = table_at(vm, test_get64(t.xsdt + 36), "FACP");
	t.madt = table_at(vm, test_get64(t.xsdt + 44), "APIC");
	t.dsdt = table_at(vm, test_get64(t.fadt + 140), "DSDT");
	return t;
}

START_TEST(fadt_and_dsdt)
{
	static const uint8_t aml[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04,
				       0x0a, 0x05, 0x00, 0x00, 0x00 };
	struct test_vm vm;
	struct tables t;

	test_vm_init(&vm, 16 * MiB);
	ck_assert_int_eq(acpi_write_tables(&vm.gm, 1, NULL), 0);
	t = walk(&vm);

	ck_assert_uint_eq(test_get32(t.fadt + 4), 276);
	ck_assert_uint_eq(t.fadt[8], 6);
	ck_assert_uint_eq(test_get16(t.fadt + 46), GSI_ACPI_SCI);
	ck_assert_uint_eq(test_get16(t.fadt + 109), 1 << 2); /* no VGA; no 8042 flag (see acpi.c) */
	ck_assert_uint_eq(test_get32(t.fadt + 112), (1u << 20) | (1u << 10) | (1u << 4) | (1u << 5));
	/* RESET_REG: System I/O, 8 bit, byte access, PORT_ACPI_RESET. */
	ck_assert_uint_eq(t.fadt[116], 1);
	ck_assert_uint_eq(t.fadt[117], 8);
	ck_assert_uint_eq(t.fadt[119], 1);
	ck_assert_uint_eq(test_get64(t.fadt + 120), PORT_ACPI_RESET);
	ck_assert_uint_eq(t.fadt[128], ACPI_RESET_VALUE);
	/* SLEEP_CONTROL_REG and SLEEP_STATUS_REG. */
	ck_assert_uint_eq(t.fadt[244], 1);
	ck_assert_uint_eq(t.fadt[245], 8);
	ck_assert_uint_eq(test_get64(t.fadt + 248), PORT_ACPI_SLEEP);
	ck_assert_uint_eq(t.fadt[256], 1);
	ck_assert_uint_eq(test_get64(t.fadt + 260), PORT_ACPI_SLEEP + 1);

	/* _S5_ first, then \_SB.COM1 (PNP0501) with I/O 0x3f8 and IRQ 4,
	 * then a second \_SB scope (140 bytes) with COM2, COM3 and pvpanic. */
	ck_assert_uint_eq(test_get32(t.dsdt + 4), 36 + sizeof(aml) + 52 + 140);
	ck_assert_mem_eq(t.dsdt + 36, aml, sizeof(aml));
	/* Also keeps GCC 12 with -fsanitize=undefined from seeing a NULL
	 * haystack for memmem below (-Wnonnull breaks the ASan build). */
	ck_assert_ptr_nonnull(t.dsdt);
	ck_assert(memmem(t.dsdt, 36 + sizeof(aml) + 52, "COM1\x08_HID\x0c\x41\xd0\x05\x01", 10));
	ck_assert(memmem(t.dsdt, 36 + sizeof(aml) + 52, "\x47\x01\xf8\x03\xf8\x03\x01\x08\x22\x10\x00", 11));
	ck_assert(memmem(t.dsdt, 36 + sizeof(aml) + 52 + 140,
			 "\x47\x01\xf8\x02\xf8\x02\x01\x08\x22\x08\x00", 11));
	ck_assert(memmem(t.dsdt, 36 + sizeof(aml) + 52 + 140,
			 "\x47\x01\xe8\x03\xe8\x03\x01\x08\x22\x00\x10", 11));
	test_vm_free(&vm);
}
END_TEST

/* Counts MADT entries by type; checks each entry's length field. */
static void madt_check(const uint8_t *madt, unsigned ncpus)
{
	uint32_t len = test_get32(madt + 4);
	unsigned lapics = 0, ioapics = 0, isos = 0;

	ck_assert_uint_eq(test_get32(madt + 36), LAYOUT_LAPIC);
	ck_assert_uint_eq(test_get32(madt + 40), 1); /* PCAT_COMPAT */
	for (uint32_t off = 44; off < len; off += madt[off + 1]) {
		const uint8_t *e = madt + off;

		ck_assert_uint_ge(e[1], 2);
		ck_assert_uint_le(off + e[1], len);
		switch (e[0]) {
		case 0:
			ck_assert_uint_eq(e[1], 8);
			ck_assert_uint_eq(e[2], lapics);            /* processor uid */
			ck_assert_uint_eq(e[3], lapics);            /* APIC id */
			ck_assert_uint_eq(test_get32(e + 4), 1);    /* enabled */
			lapics++;
			break;
		case 1:
			ck_assert_uint_eq(e[1], 12);
			ck_assert_uint_eq(e[2], ncpus);
			ck_assert_uint_eq(test_get32(e + 4), LAYOUT_IOAPIC);
			ck_assert_uint_eq(test_get32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			ck_assert_uint_eq(e[1], 10);
			ck_assert_uint_eq(e[2], 0);                 /* ISA */
			ck_assert_uint_eq(e[3], GSI_ACPI_SCI);      /* never IRQ0 */
			ck_assert_uint_eq(test_get32(e + 4), GSI_ACPI_SCI);
			ck_assert_uint_eq(test_get16(e + 8), 0x000d);
			isos++;
			break;
		default:
			ck_abort_msg("unexpected MADT entry type %u", e[0]);
		}
	}
	ck_assert_uint_eq(lapics, ncpus);
	ck_assert_uint_eq(ioapics, 1);
	ck_assert_uint_eq(isos, 1);
}

START_TEST(madt_cpus)
{
	static const unsigned counts[] = { 1, 4, ACPI_MAX_CPUS };
	struct test_vm vm;

	test_vm_init(&vm, 16 * MiB);
	for (unsigned i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		memset(vm.mem + LAYOUT_BIOS_START, 0, LAYOUT_BIOS_END - LAYOUT_BIOS_START);
		ck_assert_int_eq(acpi_write_tables(&vm.gm, counts[i], NULL), 0);
		madt_check(walk(&vm).madt, counts[i]);
	}
	test_vm_free(&vm);
}
END_TEST

START_TEST(bad_cpu_counts)
{
	struct test_vm vm;
	struct kv_err err = { 0 };

	test_vm_init(&vm, 16 * MiB);
	ck_assert_int_eq(acpi_write_tables(&vm.gm, 0, &err), -EINVAL);
	test_assert_msg(err.msg, "0 CPUs", NULL);
	ck_assert_int_eq(acpi_write_tables(&vm.gm, ACPI_MAX_CPUS + 1, &err), -EINVAL);
	test_assert_msg(err.msg, "255 CPUs", "1 to 254", NULL);
	test_vm_free(&vm);
}
END_TEST

START_TEST(memory_without_bios_area)
{
	static uint8_t low[0x1000];
	struct guest_mem gm = { 0 };
	struct kv_err err = { 0 };

	ck_assert_int_eq(gm_add_region(&gm, 0, sizeof(low), low), 0);
	ck_assert_int_eq(acpi_write_tables(&gm, 1, &err), -EFAULT);
	test_assert_msg(err.msg, "ACPI", NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("acpi");
	TCase *tc = tcase_create("tables");

	tcase_add_test(tc, fadt_and_dsdt);
	tcase_add_test(tc, madt_cpus);
	tcase_add_test(tc, bad_cpu_counts);
	tcase_add_test(tc, memory_without_bios_area);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
