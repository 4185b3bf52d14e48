/* ACPI tables: walks RSDP -> XSDT -> FADT/DSDT, MADT the way a guest
 * would, checking signatures, checksums and the fields Linux relies on. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kvmini/layout.h"
#include "../../../guest-boot/acpi.h"
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
	ck_assert_int_eq(acpi_write_tables(&vm.gm, 1, 0, NULL), 0);
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
	 * then a second \\_SB scope (140 bytes) with COM2, COM3 and pvpanic. */
	ck_assert_uint_gt(test_get32(t.dsdt + 4), 36 + sizeof(aml) + 52 + 140);
	ck_assert_mem_eq(t.dsdt + 36, aml, sizeof(aml));
	/* IAPC_BOOT_ARCH bit 3 ("MSI not supported") is clear. */
	ck_assert_uint_eq(test_get16(t.fadt + 109) & (1 << 3), 0);
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
		ck_assert_int_eq(acpi_write_tables(&vm.gm, counts[i], 0, NULL), 0);
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
	ck_assert_int_eq(acpi_write_tables(&vm.gm, 0, 0, &err), -EINVAL);
	test_assert_msg(err.msg, "0 CPUs", NULL);
	ck_assert_int_eq(acpi_write_tables(&vm.gm, ACPI_MAX_CPUS + 1, 0, &err), -EINVAL);
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
	ck_assert_int_eq(acpi_write_tables(&gm, 1, 0, &err), -EFAULT);
	test_assert_msg(err.msg, "ACPI", NULL);
}
END_TEST

/* Decodes a PkgLength at @p: returns the length (which counts the
 * PkgLength bytes themselves) and their number in *@n. */
static size_t pkglen(const uint8_t *p, unsigned *n)
{
	unsigned follow = p[0] >> 6;
	size_t len;

	*n = follow + 1;
	if (!follow)
		return p[0] & 0x3f;
	ck_assert_uint_eq(p[0] & 0x30, 0); /* bits 5:4 reserved when multi-byte */
	len = p[0] & 0x0f;
	for (unsigned i = 0; i < follow; i++)
		len |= (size_t)p[1 + i] << (4 + 8 * i);
	return len;
}

/* Walks the DSDT body: Name (_S5_), then Scope (\_SB) blocks whose
 * PkgLengths tile the table exactly; inside each scope, Device terms tile
 * the body. Returns the device names found, 4 chars each. */
static unsigned dsdt_devices(const uint8_t *dsdt, char names[][5], unsigned max)
{
	uint32_t len = test_get32(dsdt + 4);
	size_t off = 36 + 13;
	unsigned found = 0, n;

	ck_assert_mem_eq(dsdt + 36, "\x08_S5_", 5);
	while (off < len) {
		size_t scope_len, end;

		ck_assert_uint_eq(dsdt[off], 0x10);
		scope_len = pkglen(dsdt + off + 1, &n);
		end = off + 1 + scope_len;
		ck_assert_uint_le(end, len);
		ck_assert_mem_eq(dsdt + off + 1 + n, "\\_SB_", 5);
		off += 1 + n + 5;
		while (off < end) {
			size_t dev_len;

			ck_assert_uint_eq(dsdt[off], 0x5b);
			ck_assert_uint_eq(dsdt[off + 1], 0x82);
			dev_len = pkglen(dsdt + off + 2, &n);
			ck_assert_uint_lt(found, max);
			memcpy(names[found], dsdt + off + 2 + n, 4);
			names[found++][4] = 0;
			off += 2 + dev_len;
			ck_assert_uint_le(off, end);
		}
	}
	ck_assert_uint_eq(off, len);
	return found;
}

static const uint8_t *find(const uint8_t *hay, size_t len, const void *needle, size_t nlen)
{
	const uint8_t *p;

	ck_assert_ptr_nonnull(hay);
	p = memmem(hay, len, needle, nlen);
	ck_assert_msg(p != NULL, "AML pattern not found");
	return p;
}

START_TEST(dsdt_pci_host_bridge)
{
	/* The resource template of \_SB.PCI0, as iasl encodes it. */
	static const uint8_t crs[] = {
		0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, /* bus 0-0 */
		0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08,                   /* 0xcf8-0xcff */
		0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0, 0x00, 0x00, 0xf7, 0x0c, 0, 0, 0xf8, 0x0c,
		0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0, 0x00, 0x0d, 0xff, 0xff, 0, 0, 0x00, 0xf3,
		0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xc0,
		0xff, 0xff, 0xff, 0xcf, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x10,
		0x79, 0x00,
	};
	struct test_vm vm;
	struct tables t;
	char names[16][5];
	uint32_t len;

	test_vm_init(&vm, 16 * MiB);
	ck_assert_int_eq(acpi_write_tables(&vm.gm, 2, 0, NULL), 0);
	t = walk(&vm);
	len = test_get32(t.dsdt + 4);
	/* COM1; COM2, COM3 and the pvpanic device (PEVT) for --exec; PCI0;
	 * the CMOS clock. */
	ck_assert_uint_eq(dsdt_devices(t.dsdt, names, 16), 6);
	ck_assert_str_eq(names[0], "COM1");
	ck_assert_str_eq(names[1], "COM2");
	ck_assert_str_eq(names[2], "COM3");
	ck_assert_str_eq(names[3], "PEVT");
	ck_assert_str_eq(names[4], "PCI0");
	ck_assert_str_eq(names[5], "RTC_");
	/* The RTC as Linux's rtc_cmos PNP driver wants it: PNP0B00, I/O
	 * 0x70-0x71, ISA IRQ 8 (IRQNoFlags bit 8). */
	find(t.dsdt, len, "RTC_\x08_HID\x0c\x41\xd0\x0b\x00", 12);
	find(t.dsdt, len, "\x47\x01\x70\x00\x70\x00\x01\x02\x22\x00\x01\x79\x00", 13);
	find(t.dsdt, len, "PCI0\x08_HID\x0c\x41\xd0\x0a\x08\x08_CID\x0c\x41\xd0\x0a\x03", 20);
	find(t.dsdt, len, "\x08_SEG\x00\x08_BBN\x00\x08_UID\x00", 18);
	/* Name (_CRS, Buffer (PkgLength 2 bytes, ByteConst size)) */
	const uint8_t *c = find(t.dsdt, len, crs, sizeof(crs));
	ck_assert_uint_eq(c[-1], sizeof(crs));
	ck_assert_uint_eq(c[-2], 0x0a);
	/* _PRT: one GSI-form entry per slot, pin A. */
	const uint8_t *prt = find(t.dsdt, len, "\x08_PRT\x12", 6);
	for (unsigned slot = 1; slot <= LAYOUT_PCI_MAX_SLOTS; slot++) {
		const uint8_t e[] = { 0x12, 0x0b, 0x04, 0x0c, 0xff, 0xff, (uint8_t)slot, 0x00,
				      0x00, 0x00, 0x0a, (uint8_t)LAYOUT_PCI_GSI(slot) };

		find(prt, len - (size_t)(prt - t.dsdt), e, sizeof(e));
	}
	test_vm_free(&vm);
}
END_TEST

START_TEST(dsdt_virtio_mmio_devices)
{
	static const unsigned gsis[] = LAYOUT_VIRTIO_MMIO_GSIS;
	struct test_vm vm;
	struct tables t;
	char names[16][5];
	struct kv_err err = { 0 };

	test_vm_init(&vm, 16 * MiB);
	for (unsigned n = 0; n <= LAYOUT_VIRTIO_MMIO_MAX; n++) {
		memset(vm.mem + LAYOUT_BIOS_START, 0, LAYOUT_BIOS_END - LAYOUT_BIOS_START);
		ck_assert_int_eq(acpi_write_tables(&vm.gm, 1, n, NULL), 0);
		t = walk(&vm);
		ck_assert_uint_eq(dsdt_devices(t.dsdt, names, 16), 6 + n);
		for (unsigned i = 0; i < n; i++) {
			uint32_t len = test_get32(t.dsdt + 4);
			char want[5];
			uint8_t res[] = {
				0x86, 0x09, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x00,
				0x89, 0x06, 0x00, 0x01, 0x01, (uint8_t)gsis[i], 0, 0, 0,
				0x79, 0x00,
			};
			uint32_t base = (uint32_t)LAYOUT_VIRTIO_MMIO(i);

			snprintf(want, sizeof(want), "VR%02X", i);
			ck_assert_str_eq(names[6 + i], want);
			memcpy(res + 4, &base, 4);
			const uint8_t *d = find(t.dsdt, len, want, 4);
			find(d, len - (size_t)(d - t.dsdt), "\x08_HID\x0dLNRO0005\x00", 15);
			find(d, len - (size_t)(d - t.dsdt), res, sizeof(res));
		}
	}
	ck_assert_int_eq(acpi_write_tables(&vm.gm, 1, LAYOUT_VIRTIO_MMIO_MAX + 1, &err), -EINVAL);
	test_assert_msg(err.msg, "virtio-mmio", NULL);
	test_vm_free(&vm);
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
	tcase_add_test(tc, dsdt_pci_host_bridge);
	tcase_add_test(tc, dsdt_virtio_mmio_devices);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
