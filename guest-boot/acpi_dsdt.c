/* The DSDT's body: a fixed part (\\_S5 for poweroff, the UARTs, pvpanic)
 * and the part that depends on the VM (the PCI host bridge \\_SB.PCI0
 * with its _PRT, the virtio-mmio devices), built with guest-boot/aml.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "kvmini/layout.h"
#include "acpi.h"
#include "aml.h"

/* DefinitionBlock body: Name (_S5_, Package () { 5, 0, 0, 0 }).
 * PkgLength 0x07 counts itself, NumElements and the four elements
 * (BytePrefix 0x0a 0x05, then three ZeroOp): 1 + 1 + 2 + 3. */
static const uint8_t dsdt_aml[] = {
	0x08, '_', 'S', '5', '_',  /* NameOp, NameSeg */
	0x12, 0x07, 0x04,          /* PackageOp, PkgLength, NumElements */
	0x0a, 0x05,                /* SLP_TYPa = 5 */
	0x00, 0x00, 0x00,          /* SLP_TYPb, reserved, reserved */
	/* Scope (\_SB) { Device (COM1) { _HID PNP0501, _UID 0, _CRS: I/O
	 * 0x3f8-0x3ff, IRQ 4 } }. In hardware-reduced mode Linux has no legacy
	 * PIC, so ISA IRQ 4 is not mapped to an I/O APIC pin until a device
	 * asks for it: without this, opening ttyS0 fails. 8250_pnp takes the
	 * port over from the legacy probe with the IRQ mapped. (Checked with
	 * iasl -d.) */
	0x10, 0x33, '\\', '_', 'S', 'B', '_',       /* ScopeOp, PkgLength, \_SB_ */
	0x5b, 0x82, 0x2b, 'C', 'O', 'M', '1',       /* DeviceOp, PkgLength, COM1 */
	0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01, /* EisaId("PNP0501") */
	0x08, '_', 'U', 'I', 'D', 0x00,             /* Zero */
	0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d, /* Buffer(13) */
	0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, /* IO(Decode16, 0x3f8, 0x3f8, 1, 8) */
	0x22, 0x10, 0x00,                           /* IRQNoFlags() {4} */
	0x79, 0x00,                                 /* EndTag */
	/* Scope (\_SB) { Device (COM2) {...} Device (COM3) {...} Device (PEVT)
	 * {...} }: the --exec stdout/stderr UARTs at 0x2f8/IRQ 3 and
	 * 0x3e8/IRQ 12, laid out like COM1 (COM3's _UID 2 needs a BytePrefix:
	 * PkgLength 0x2c), and QEMU's pvpanic device (_HID "QEMU0001", I/O
	 * 0x505, 1 byte) for Linux's pvpanic-mmio driver. The scope's
	 * PkgLength is 139 bytes, two-byte encoding 0x4b 0x08. */
	0x10, 0x4b, 0x08, '\\', '_', 'S', 'B', '_', /* ScopeOp, PkgLength, \_SB_ */
	0x5b, 0x82, 0x2b, 'C', 'O', 'M', '2',       /* DeviceOp, PkgLength, COM2 */
	0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01, /* EisaId("PNP0501") */
	0x08, '_', 'U', 'I', 'D', 0x01,             /* One */
	0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d, /* Buffer(13) */
	0x47, 0x01, 0xf8, 0x02, 0xf8, 0x02, 0x01, 0x08, /* IO(Decode16, 0x2f8, 0x2f8, 1, 8) */
	0x22, 0x08, 0x00,                           /* IRQNoFlags() {3} */
	0x79, 0x00,                                 /* EndTag */
	0x5b, 0x82, 0x2c, 'C', 'O', 'M', '3',       /* DeviceOp, PkgLength, COM3 */
	0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01, /* EisaId("PNP0501") */
	0x08, '_', 'U', 'I', 'D', 0x0a, 0x02,       /* BytePrefix 2 */
	0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d, /* Buffer(13) */
	0x47, 0x01, 0xe8, 0x03, 0xe8, 0x03, 0x01, 0x08, /* IO(Decode16, 0x3e8, 0x3e8, 1, 8) */
	0x22, 0x00, 0x10,                           /* IRQNoFlags() {12} */
	0x79, 0x00,                                 /* EndTag */
	0x5b, 0x82, 0x27, 'P', 'E', 'V', 'T',       /* DeviceOp, PkgLength, PEVT */
	0x08, '_', 'H', 'I', 'D', 0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0x00, /* "QEMU0001" */
	0x08, '_', 'C', 'R', 'S', 0x11, 0x0d, 0x0a, 0x0a, /* Buffer(10) */
	0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, /* IO(Decode16, 0x505, 0x505, 1, 1) */
	0x79, 0x00,                                 /* EndTag */
};

/* Package () { (slot << 16) | 0xffff, 0 (INTA), 0, GSI }: a GSI-form
 * entry, which Linux takes as level-triggered, active low. */
static void prt_entry(struct aml *a, unsigned slot)
{
	static const uint8_t op = AML_PACKAGE;
	struct aml e = { .len = 0 };

	aml_byte(&e, 4);
	aml_int(&e, (uint64_t)slot << 16 | 0xffff);
	aml_int(&e, 0);
	aml_int(&e, 0);
	aml_int(&e, LAYOUT_PCI_GSI(slot));
	aml_wrap(a, &op, 1, &e);
}

/* Device (PCI0): the host bridge at 0xcf8 with bus 0, all I/O ports but
 * the config ones, the BAR window, and INTA of each slot on its GSI. */
static void dsdt_pci0(struct aml *a)
{
	static const uint8_t pkg = AML_PACKAGE;
	struct aml dev = { .len = 0 }, res = { .len = 0 }, prt = { .len = 0 };

	aml_name_eisaid(&dev, "_HID", "PNP0A08");
	aml_name_eisaid(&dev, "_CID", "PNP0A03");
	aml_name_int(&dev, "_SEG", 0);
	aml_name_int(&dev, "_BBN", 0);
	aml_name_int(&dev, "_UID", 0);
	res_word(&res, RES_TYPE_BUS, 0, 0, 0);
	res_io(&res, PORT_PCI_CONFIG, 8);
	res_word(&res, RES_TYPE_IO, 0x03 /* EntireRange */, 0x0000, PORT_PCI_CONFIG - 1);
	res_word(&res, RES_TYPE_IO, 0x03, 0x0d00, 0xffff);
	res_dword_mem(&res, (uint32_t)LAYOUT_PCI_MMIO_START,
		      (uint32_t)(LAYOUT_PCI_MMIO_START + LAYOUT_PCI_MMIO_SIZE - 1));
	aml_name_crs(&dev, "_CRS", &res);
	aml_byte(&prt, LAYOUT_PCI_MAX_SLOTS);
	for (unsigned slot = 1; slot <= LAYOUT_PCI_MAX_SLOTS; slot++)
		prt_entry(&prt, slot);
	aml_name(&dev, "_PRT");
	aml_wrap(&dev, &pkg, 1, &prt);
	aml_device(a, "PCI0", &dev);
}

/* Device (VRnn): virtio-mmio device @i as Linux's virtio_mmio ACPI
 * binding (LNRO0005) expects it. */
static void dsdt_virtio_mmio(struct aml *a, unsigned i)
{
	static const unsigned gsis[LAYOUT_VIRTIO_MMIO_MAX] = LAYOUT_VIRTIO_MMIO_GSIS;
	struct aml dev = { .len = 0 }, res = { .len = 0 };
	char seg[5];

	snprintf(seg, sizeof(seg), "VR%02X", i);
	aml_name_string(&dev, "_HID", "LNRO0005");
	aml_name_int(&dev, "_UID", i);
	res_mem32_fixed(&res, (uint32_t)LAYOUT_VIRTIO_MMIO(i), (uint32_t)LAYOUT_VIRTIO_MMIO_SIZE);
	res_ext_irq(&res, gsis[i]);
	aml_name_crs(&dev, "_CRS", &res);
	aml_device(a, seg, &dev);
}

/* Device (RTC): the CMOS clock at 0x70 with ISA IRQ 8 (devices/cmos_rtc.c).
 * In hardware-reduced ACPI Linux's rtc_cmos binds only to a PNP0B00
 * device: without one it probes the legacy platform device, cannot get
 * IRQ 8 and fails, and the guest's clock is not set from it at boot. */
static void dsdt_rtc(struct aml *a)
{
	struct aml dev = { .len = 0 }, res = { .len = 0 };

	aml_name_eisaid(&dev, "_HID", "PNP0B00");
	res_io(&res, 0x70, 2);
	res_irq_noflags(&res, 8);
	aml_name_crs(&dev, "_CRS", &res);
	aml_device(a, "RTC_", &dev);
}

/* The whole DSDT body: the fixed part, then Scope (\_SB) { PCI0, VRnn }. */
int dsdt_build(struct aml *out, unsigned nr_virtio_mmio)
{
	static const uint8_t scope = AML_SCOPE;
	struct aml *sb = calloc(1, sizeof(*sb));

	if (!sb)
		return -ENOMEM;
	out->len = 0;
	out->overflow = false;
	aml_bytes(out, dsdt_aml, sizeof(dsdt_aml));
	aml_bytes(sb, "\\_SB_", 5);
	dsdt_pci0(sb);
	dsdt_rtc(sb);
	for (unsigned i = 0; i < nr_virtio_mmio; i++)
		dsdt_virtio_mmio(sb, i);
	aml_wrap(out, &scope, 1, sb);
	free(sb);
	return out->overflow ? -ENOSPC : 0;
}
