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
#include "aml.h"

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
