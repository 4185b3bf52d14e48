/* guest-boot/acpi.c: the ACPI tables (private to guest-boot/ and its
 * unit tests). */
#ifndef KVMINI_GUEST_BOOT_ACPI_H
#define KVMINI_GUEST_BOOT_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/boot.h"
#include "kvmini/err.h"
#include "kvmini/guest_mem.h"

#define ACPI_MAX_CPUS 254 /* 8-bit APIC IDs, and the I/O APIC takes id ncpus */

/* RSDP at LAYOUT_ACPI_RSDP, then XSDT, FADT, DSDT, MADT from
 * LAYOUT_ACPI_TABLES. The DSDT describes the PCI host bridge and
 * virtio-mmio devices 0..@nr_virtio_mmio-1 (at most
 * LAYOUT_VIRTIO_MMIO_MAX). */
int acpi_write_tables(const struct guest_mem *gm, unsigned ncpus, unsigned nr_virtio_mmio,
		      struct kv_err *e) KV_MUST_CHECK;

struct aml;
/* The DSDT body into @out (guest-boot/acpi_dsdt.c): 0, -ENOMEM, or
 * -ENOSPC when it does not fit. */
int dsdt_build(struct aml *out, unsigned nr_virtio_mmio);

#endif
