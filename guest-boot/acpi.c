/* ACPI tables for a hardware-reduced PC: RSDP -> XSDT -> FADT (-> DSDT:
 * \_S5 for poweroff, COM1, the PCI host bridge \_SB.PCI0 with its _PRT,
 * the virtio-mmio devices) and MADT (local APICs, one I/O APIC, the SCI
 * override). Both boot paths share them: Linux finds the RSDP by
 * scanning the BIOS area (bzImage) or through hvm_start_info (PVH). */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/layout.h"
#include "acpi.h"

#define ACPI_OEM_ID       "KVMINI"
#define ACPI_OEM_TABLE_ID "KVMINIVM"
#define ACPI_CREATOR_ID   "KVMI"
#define ACPI_ALIGN        16

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;             /* over the first 20 bytes (ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum;    /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

/* Generic Address Structure. */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));

#define GAS_SYSTEM_IO   1
#define GAS_ACCESS_BYTE 1

struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;             /* 46 */
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
	uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;      /* 109 */
	uint8_t reserved1;
	uint32_t flags;               /* 112 */
	struct acpi_gas reset_reg;    /* 116 */
	uint8_t reset_value;          /* 128 */
	uint16_t arm_boot_arch;
	uint8_t minor_version;        /* 131 */
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;              /* 140 */
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg; /* 244 */
	struct acpi_gas sleep_status_reg;  /* 256 */
	uint64_t hypervisor_vendor_id;     /* 268 */
} __attribute__((packed));

#define FADT_PWR_BUTTON      (1u << 4)  /* power button is not a fixed feature */
#define FADT_SLP_BUTTON      (1u << 5)  /* neither is the sleep button */
#define FADT_RESET_REG_SUP   (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)
#define BOOT_ARCH_8042       (1u << 1)  /* an i8042 exists: Linux probes it */
#define BOOT_ARCH_NO_VGA     (1u << 2)
/* Bit 3, "MSI not supported", stays clear: virtio-pci uses MSI-X. */

struct madt_header {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

struct madt_lapic {
	uint8_t type, length, processor_uid, apic_id;
	uint32_t flags;
} __attribute__((packed));

struct madt_ioapic {
	uint8_t type, length, ioapic_id, reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct madt_iso {
	uint8_t type, length, bus, source;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));

#define MADT_PCAT_COMPAT  1
#define MADT_LAPIC        0
#define MADT_IOAPIC       1
#define MADT_ISO          2
#define MADT_ENABLED      1
#define ISO_LEVEL_HIGH    0x000d /* active high (01), level triggered (11) */

_Static_assert(sizeof(struct acpi_header) == 36, "ACPI header layout");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP layout");
_Static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT layout");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT layout");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT layout");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT layout");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT layout");
_Static_assert(sizeof(struct madt_header) == 44, "MADT layout");
_Static_assert(sizeof(struct madt_lapic) == 8 && sizeof(struct madt_ioapic) == 12 &&
	       sizeof(struct madt_iso) == 10, "MADT entry layout");

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

/* ---- AML for the parts of the DSDT that depend on the VM ----
 * A tiny encoder for the few terms needed (ACPI 6.x §20.2). Each block is
 * built into its own buffer, then wrapped with its PkgLength, which
 * counts itself and everything after it up to the block's end. */

#define AML_MAX 4096 /* the whole generated part fits easily */

struct aml {
	uint8_t b[AML_MAX];
	size_t len;
	bool overflow;  /* a bug in this file, reported as -ENOSPC */
};

#define AML_NAME     0x08
#define AML_BYTE     0x0a
#define AML_WORD     0x0b
#define AML_DWORD    0x0c
#define AML_STRING   0x0d
#define AML_QWORD    0x0e
#define AML_SCOPE    0x10
#define AML_BUFFER   0x11
#define AML_PACKAGE  0x12
#define AML_EXT      0x5b
#define AML_DEVICE   0x82

static void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->len + n > sizeof(a->b)) {
		a->overflow = true;
		return;
	}
	memcpy(a->b + a->len, p, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t v)
{
	aml_bytes(a, &v, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

/* PkgLength for a body of @body bytes: one byte up to 63 in all, else a
 * lead byte (count of following bytes in bits 7:6, low nibble) and the
 * rest of the length 8 bits at a time. */
static void aml_pkglen(struct aml *a, size_t body)
{
	size_t total;

	if (body + 1 <= 0x3f) {
		aml_byte(a, (uint8_t)(body + 1));
		return;
	}
	for (unsigned n = 2; n <= 4; n++) {
		total = body + n;
		if (total < (1ULL << (4 + 8 * (n - 1)))) {
			aml_byte(a, (uint8_t)((n - 1) << 6 | (total & 0xf)));
			aml_le(a, total >> 4, n - 1);
			return;
		}
	}
	a->overflow = true;
}

/* @op (1 or 2 bytes), PkgLength, then @body. */
static void aml_wrap(struct aml *a, const uint8_t *op, size_t oplen, const struct aml *body)
{
	aml_bytes(a, op, oplen);
	aml_pkglen(a, body->len);
	aml_bytes(a, body->b, body->len);
	a->overflow |= body->overflow;
}

static void aml_int(struct aml *a, uint64_t v)
{
	if (v <= 1) {
		aml_byte(a, (uint8_t)v); /* ZeroOp, OneOp */
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE);
		aml_le(a, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD);
		aml_le(a, v, 2);
	} else if (v <= 0xffffffff) {
		aml_byte(a, AML_DWORD);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD);
		aml_le(a, v, 8);
	}
}

static void aml_nameseg(struct aml *a, const char *seg)
{
	assert(strlen(seg) == 4);
	aml_bytes(a, seg, 4);
}

/* Name (@seg, ...): the caller appends the value. */
static void aml_name(struct aml *a, const char *seg)
{
	aml_byte(a, AML_NAME);
	aml_nameseg(a, seg);
}

static void aml_name_int(struct aml *a, const char *seg, uint64_t v)
{
	aml_name(a, seg);
	aml_int(a, v);
}

static void aml_name_string(struct aml *a, const char *seg, const char *str)
{
	aml_name(a, seg);
	aml_byte(a, AML_STRING);
	aml_bytes(a, str, strlen(str) + 1);
}

/* EISAID ("PNP0A08"): three letters in 5 bits each, four hex digits,
 * stored big-endian as a DWord. */
static void aml_name_eisaid(struct aml *a, const char *seg, const char *id)
{
	uint16_t vendor = (uint16_t)((id[0] - 0x40) << 10 | (id[1] - 0x40) << 5 | (id[2] - 0x40));
	unsigned long product = strtoul(id + 3, NULL, 16);

	aml_name(a, seg);
	aml_byte(a, AML_DWORD);
	aml_byte(a, (uint8_t)(vendor >> 8));
	aml_byte(a, (uint8_t)vendor);
	aml_byte(a, (uint8_t)(product >> 8));
	aml_byte(a, (uint8_t)product);
}

/* Name (@seg, ResourceTemplate () { @res }): a Buffer holding the
 * descriptors and the end tag (checksum 0: "treat as valid"). */
static void aml_name_crs(struct aml *a, const char *seg, const struct aml *res)
{
	static const uint8_t op = AML_BUFFER;
	struct aml body = { .len = 0 };

	aml_int(&body, res->len + 2);
	aml_bytes(&body, res->b, res->len);
	aml_byte(&body, 0x79);
	aml_byte(&body, 0x00);
	body.overflow |= res->overflow;
	aml_name(a, seg);
	aml_wrap(a, &op, 1, &body);
}

static void aml_device(struct aml *a, const char *seg, const struct aml *body)
{
	static const uint8_t op[] = { AML_EXT, AML_DEVICE };
	struct aml named = { .len = 0 };

	aml_nameseg(&named, seg);
	aml_bytes(&named, body->b, body->len);
	named.overflow |= body->overflow;
	aml_wrap(a, op, 2, &named);
}

/* Resource descriptors (ACPI 6.x §6.4). */
#define RES_PRODUCER_FIXED 0x0c /* ResourceProducer, MinFixed, MaxFixed, PosDecode */
#define RES_TYPE_MEM   0
#define RES_TYPE_IO    1
#define RES_TYPE_BUS   2

/* Word Address Space Descriptor (WordBusNumber, WordIO). */
static void res_word(struct aml *r, uint8_t type, uint8_t type_flags, uint16_t min, uint16_t max)
{
	aml_byte(r, 0x88);
	aml_le(r, 13, 2);
	aml_byte(r, type);
	aml_byte(r, RES_PRODUCER_FIXED);
	aml_byte(r, type_flags);
	aml_le(r, 0, 2);                          /* granularity */
	aml_le(r, min, 2);
	aml_le(r, max, 2);
	aml_le(r, 0, 2);                          /* translation */
	aml_le(r, (uint32_t)max - min + 1, 2);    /* length */
}

/* DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
 * NonCacheable, ReadWrite). */
static void res_dword_mem(struct aml *r, uint32_t min, uint32_t max)
{
	aml_byte(r, 0x87);
	aml_le(r, 23, 2);
	aml_byte(r, RES_TYPE_MEM);
	aml_byte(r, RES_PRODUCER_FIXED);
	aml_byte(r, 0x01);                        /* ReadWrite, NonCacheable */
	aml_le(r, 0, 4);
	aml_le(r, min, 4);
	aml_le(r, max, 4);
	aml_le(r, 0, 4);
	aml_le(r, (uint64_t)max - min + 1, 4);
}

/* IO (Decode16, @base, @base, 1, @len): a consumer range. */
static void res_io(struct aml *r, uint16_t base, uint8_t len)
{
	aml_byte(r, 0x47);
	aml_byte(r, 0x01);
	aml_le(r, base, 2);
	aml_le(r, base, 2);
	aml_byte(r, 1);
	aml_byte(r, len);
}

static void res_mem32_fixed(struct aml *r, uint32_t base, uint32_t len)
{
	aml_byte(r, 0x86);
	aml_le(r, 9, 2);
	aml_byte(r, 0x01);                        /* ReadWrite */
	aml_le(r, base, 4);
	aml_le(r, len, 4);
}

/* Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) { @gsi } */
static void res_ext_irq(struct aml *r, uint32_t gsi)
{
	aml_byte(r, 0x89);
	aml_le(r, 6, 2);
	aml_byte(r, 0x01);                        /* consumer; level, high, exclusive: 0 */
	aml_byte(r, 1);
	aml_le(r, gsi, 4);
}

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

/* The whole DSDT body: the fixed part, then Scope (\_SB) { PCI0, VRnn }. */
static int dsdt_build(struct aml *out, unsigned nr_virtio_mmio)
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
	for (unsigned i = 0; i < nr_virtio_mmio; i++)
		dsdt_virtio_mmio(sb, i);
	aml_wrap(out, &scope, 1, sb);
	free(sb);
	return out->overflow ? -ENOSPC : 0;
}

/* Where each table goes, as offsets from LAYOUT_ACPI_TABLES. */
struct acpi_layout {
	size_t xsdt, fadt, dsdt, madt, madt_len, total;
};

static size_t align_up(size_t x)
{
	return (x + ACPI_ALIGN - 1) & ~(size_t)(ACPI_ALIGN - 1);
}

static uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return (uint8_t)(0 - sum);
}

static void header_init(struct acpi_header *h, const char *sig, size_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = (uint32_t)len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = 1;
}

/* Last step for every table: the whole table then sums to zero. */
static void header_seal(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = acpi_checksum(h, h->length);
}

static struct acpi_gas gas_io8(uint64_t port)
{
	return (struct acpi_gas){ .space_id = GAS_SYSTEM_IO, .bit_width = 8,
				  .access_size = GAS_ACCESS_BYTE, .address = port };
}

static void build_fadt(uint8_t *buf, const struct acpi_layout *l)
{
	struct acpi_fadt *f = (struct acpi_fadt *)(buf + l->fadt);

	header_init(&f->h, "FACP", sizeof(*f), 6);
	f->minor_version = 0;
	f->sci_int = GSI_ACPI_SCI;
	/* No BOOT_ARCH_8042: Linux would then probe the i8042's AUX port and
	 * wait 250 ms for an IRQ 12 that never comes. Reset through port 0x64
	 * works without the driver, and the FADT reset register is there too. */
	f->iapc_boot_arch = BOOT_ARCH_NO_VGA;
	f->flags = FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP | FADT_HW_REDUCED_ACPI;
	f->reset_reg = gas_io8(PORT_ACPI_RESET);
	f->reset_value = ACPI_RESET_VALUE;
	/* Only the 64-bit pointer: ACPICA prefers it and warns on a mismatch. */
	f->x_dsdt = LAYOUT_ACPI_TABLES + l->dsdt;
	f->sleep_control_reg = gas_io8(PORT_ACPI_SLEEP);
	f->sleep_status_reg = gas_io8(PORT_ACPI_SLEEP + 1);
	memcpy(&f->hypervisor_vendor_id, "KVMINI\0\0", 8);
	header_seal(&f->h);
}

static void build_dsdt(uint8_t *buf, const struct acpi_layout *l, const struct aml *body)
{
	struct acpi_header *h = (struct acpi_header *)(buf + l->dsdt);

	/* Revision 2: 64-bit AML integers. */
	header_init(h, "DSDT", sizeof(*h) + body->len, 2);
	memcpy(buf + l->dsdt + sizeof(*h), body->b, body->len);
	header_seal(h);
}

static void build_madt(uint8_t *buf, const struct acpi_layout *l, unsigned ncpus)
{
	struct madt_header *m = (struct madt_header *)(buf + l->madt);
	uint8_t *p = buf + l->madt + sizeof(*m);

	header_init(&m->h, "APIC", l->madt_len, 4);
	m->lapic_address = (uint32_t)LAYOUT_LAPIC;
	m->flags = MADT_PCAT_COMPAT;
	for (unsigned i = 0; i < ncpus; i++, p += sizeof(struct madt_lapic))
		*(struct madt_lapic *)p = (struct madt_lapic){
			.type = MADT_LAPIC, .length = sizeof(struct madt_lapic),
			.processor_uid = (uint8_t)i, .apic_id = (uint8_t)i, .flags = MADT_ENABLED,
		};
	/* The I/O APIC id must differ from every local APIC id. */
	*(struct madt_ioapic *)p = (struct madt_ioapic){
		.type = MADT_IOAPIC, .length = sizeof(struct madt_ioapic),
		.ioapic_id = (uint8_t)ncpus, .address = (uint32_t)LAYOUT_IOAPIC, .gsi_base = 0,
	};
	p += sizeof(struct madt_ioapic);
	/* No IRQ0 -> GSI2 override: KVM wires ISA IRQ n to pin n. The SCI is
	 * level-triggered, active high, which ISA defaults do not say. */
	*(struct madt_iso *)p = (struct madt_iso){
		.type = MADT_ISO, .length = sizeof(struct madt_iso), .bus = 0,
		.source = GSI_ACPI_SCI, .gsi = GSI_ACPI_SCI, .flags = ISO_LEVEL_HIGH,
	};
	header_seal(&m->h);
}

static void build_xsdt(uint8_t *buf, const struct acpi_layout *l)
{
	struct acpi_header *h = (struct acpi_header *)(buf + l->xsdt);
	uint64_t entries[2] = { LAYOUT_ACPI_TABLES + l->fadt, LAYOUT_ACPI_TABLES + l->madt };

	header_init(h, "XSDT", sizeof(*h) + sizeof(entries), 1);
	memcpy(buf + l->xsdt + sizeof(*h), entries, sizeof(entries));
	header_seal(h);
}

static struct acpi_rsdp build_rsdp(void)
{
	struct acpi_rsdp r;

	memset(&r, 0, sizeof(r));
	memcpy(r.signature, "RSD PTR ", 8);
	memcpy(r.oem_id, ACPI_OEM_ID, 6);
	r.revision = 2;
	r.length = sizeof(r);
	r.xsdt_address = LAYOUT_ACPI_TABLES; /* the XSDT comes first */
	r.checksum = acpi_checksum(&r, 20);
	r.extended_checksum = acpi_checksum(&r, sizeof(r));
	return r;
}

static struct acpi_layout acpi_plan(unsigned ncpus, size_t dsdt_body)
{
	struct acpi_layout l;

	l.xsdt = 0;
	l.fadt = align_up(l.xsdt + sizeof(struct acpi_header) + 2 * sizeof(uint64_t));
	l.dsdt = align_up(l.fadt + sizeof(struct acpi_fadt));
	l.madt = align_up(l.dsdt + sizeof(struct acpi_header) + dsdt_body);
	l.madt_len = sizeof(struct madt_header) + (size_t)ncpus * sizeof(struct madt_lapic) +
		     sizeof(struct madt_ioapic) + sizeof(struct madt_iso);
	l.total = l.madt + l.madt_len;
	return l;
}

int acpi_write_tables(const struct guest_mem *gm, unsigned ncpus, unsigned nr_virtio_mmio,
		      struct kv_err *e)
{
	const size_t room = LAYOUT_BIOS_END - LAYOUT_ACPI_TABLES;
	struct acpi_layout l;
	struct acpi_rsdp rsdp;
	struct aml *dsdt;
	uint8_t *buf;
	int r = 0;

	if (ncpus == 0 || ncpus > ACPI_MAX_CPUS)
		return kv_err_set(e, -EINVAL, "%u CPUs: kvmini supports 1 to %u (8-bit APIC IDs)",
				  ncpus, ACPI_MAX_CPUS);
	if (nr_virtio_mmio > LAYOUT_VIRTIO_MMIO_MAX)
		return kv_err_set(e, -EINVAL, "%u virtio-mmio devices: kvmini supports up to %u",
				  nr_virtio_mmio, LAYOUT_VIRTIO_MMIO_MAX);
	dsdt = calloc(1, sizeof(*dsdt));
	if (!dsdt)
		return kv_err_set(e, -ENOMEM, "no memory for the ACPI tables");
	r = dsdt_build(dsdt, nr_virtio_mmio);
	if (r) {
		free(dsdt);
		return kv_err_set(e, r, "building the DSDT: %s", strerror(-r));
	}
	l = acpi_plan(ncpus, dsdt->len);
	if (l.total > room) {
		free(dsdt);
		return kv_err_set(e, -ENOSPC, "ACPI tables for %u CPUs need %zu bytes, only %zu fit "
				  "below 1 MiB", ncpus, l.total, room);
	}
	buf = calloc(1, l.total);
	if (!buf) {
		free(dsdt);
		return kv_err_set(e, -ENOMEM, "no memory for the ACPI tables");
	}
	build_fadt(buf, &l);
	build_dsdt(buf, &l, dsdt);
	free(dsdt);
	build_madt(buf, &l, ncpus);
	build_xsdt(buf, &l);
	rsdp = build_rsdp();
	if (gm_write(gm, LAYOUT_ACPI_TABLES, buf, l.total) ||
	    gm_write(gm, LAYOUT_ACPI_RSDP, &rsdp, sizeof(rsdp)))
		r = kv_err_set(e, -EFAULT, "guest memory does not cover the ACPI tables at 0x%llx",
			       LAYOUT_ACPI_RSDP);
	free(buf);
	return r;
}
