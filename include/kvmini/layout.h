/* Every guest-physical address and interrupt number kvmini uses, in one
 * place. Low memory below 1 MiB follows the PC conventions a Linux guest
 * expects (EBDA below 640 KiB, BIOS area at 0xe0000-0xfffff). */
#ifndef KVMINI_LAYOUT_H
#define KVMINI_LAYOUT_H

#include <stdint.h>

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* Boot data structures, all below 1 MiB. */
#define LAYOUT_GDT            0x500ULL     /* boot GDT, 5 entries */
#define LAYOUT_IDT            0x580ULL     /* empty IDT (limit 0) */
#define LAYOUT_PVH_START_INFO 0x6000ULL    /* struct hvm_start_info */
#define LAYOUT_PVH_MODLIST    0x6040ULL    /* hvm_modlist_entry[1] */
#define LAYOUT_PVH_MEMMAP     0x6080ULL    /* hvm_memmap_table_entry[], up to 0x6fff */
#define LAYOUT_ZERO_PAGE      0x7000ULL    /* struct boot_params (4 KiB) */
#define LAYOUT_PML4           0x9000ULL    /* identity map of the first 4 GiB */
#define LAYOUT_PDPT           0xa000ULL
#define LAYOUT_PD             0xb000ULL    /* 4 pages: 0xb000-0xefff */
#define LAYOUT_CMDLINE        0x20000ULL
#define LAYOUT_CMDLINE_MAX    0x10000ULL   /* bytes reserved; the kernel's own limit is smaller */
#define LAYOUT_EBDA           0x9fc00ULL   /* start of reserved low memory */
#define LAYOUT_LOWMEM_TOP     0xa0000ULL   /* 640 KiB */
#define LAYOUT_BIOS_START     0xe0000ULL   /* reserved up to 1 MiB; ACPI tables live here */
#define LAYOUT_ACPI_RSDP      0xe0000ULL   /* Linux scans 0xe0000-0xfffff for "RSD PTR " */
#define LAYOUT_ACPI_TABLES    0xe1000ULL   /* XSDT, FADT, DSDT, MADT follow, up to 1 MiB */
#define LAYOUT_BIOS_END       0x100000ULL
#define LAYOUT_HIGHMEM_START  0x100000ULL  /* 1 MiB */
#define LAYOUT_KERNEL_LOAD    0x1000000ULL /* 16 MiB, Linux's usual pref_address */

/* The 32-bit PCI/MMIO hole: RAM stops at 3 GiB and resumes at 4 GiB. */
#define LAYOUT_MMIO_HOLE_START 0xc0000000ULL
#define LAYOUT_MMIO_HOLE_END   0x100000000ULL
#define LAYOUT_PCI_MMIO_START  0xc0000000ULL /* BARs of PCI devices */
#define LAYOUT_PCI_MMIO_SIZE   0x10000000ULL
/* PCI slots 1..LAYOUT_PCI_MAX_SLOTS on bus 0 (slot 0: host bridge). Each
 * device's BAR0 is fixed at LAYOUT_PCI_BAR(slot); its INTx pin A is
 * LAYOUT_PCI_GSI(slot) (the DSDT's _PRT says so; level, active low). */
#define LAYOUT_PCI_MAX_SLOTS   8
#define LAYOUT_PCI_BAR_SIZE    0x10000ULL
#define LAYOUT_PCI_BAR(slot)   (LAYOUT_PCI_MMIO_START + ((uint64_t)(slot) - 1) * LAYOUT_PCI_BAR_SIZE)
#define LAYOUT_PCI_GSI(slot)   (16u + (unsigned)(slot) - 1u)
/* virtio-mmio devices i = 0..LAYOUT_VIRTIO_MMIO_MAX-1, described in the
 * DSDT (LNRO0005) and by virtio_mmio.device= on the command line. */
#define LAYOUT_VIRTIO_MMIO_BASE 0xd0000000ULL
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ULL
#define LAYOUT_VIRTIO_MMIO_MAX  8
#define LAYOUT_VIRTIO_MMIO(i)   (LAYOUT_VIRTIO_MMIO_BASE + (uint64_t)(i) * LAYOUT_VIRTIO_MMIO_SIZE)
/* Their interrupts: ISA lines no PC device here uses (level, active high). */
#define LAYOUT_VIRTIO_MMIO_GSIS { 5, 6, 7, 10, 11, 13, 14, 15 }
#define LAYOUT_IOAPIC          0xfec00000ULL
#define LAYOUT_LAPIC           0xfee00000ULL
#define LAYOUT_KVM_IDENTITY_MAP 0xfeffc000ULL /* KVM_SET_IDENTITY_MAP_ADDR, 1 page */
#define LAYOUT_KVM_TSS         0xfeffd000ULL  /* KVM_SET_TSS_ADDR, 3 pages */

/* I/O ports. */
#define PORT_COM1        0x3f8
#define PORT_COM_LEN     8
#define PORT_I8042_DATA  0x60
#define PORT_I8042_CMD   0x64
#define PORT_RTC         0x70
#define PORT_POST        0x80
#define PORT_PCI_CONFIG  0xcf8 /* 8 ports: address at 0xcf8, data at 0xcfc */
#define PORT_ACPI_SLEEP  0x600 /* FADT sleep control (1 byte) and status (1 byte) */
#define PORT_ACPI_RESET  0x604 /* FADT reset register */
#define ACPI_RESET_VALUE 0x01
#define PORT_COM2        0x2f8 /* --exec: the command's stdout */
#define PORT_COM3        0x3e8 /* --exec: the command's stderr */
/* kvmini's control port (devices/control_port.c); not QEMU's fw_cfg at
 * 0x510, so the same initramfs's writes are harmless under QEMU. */
#define PORT_CONTROL     0x5a0
#define PORT_CONTROL_LEN 16
#define PORT_PVPANIC     0x505 /* QEMU's pvpanic ISA port: ACPI QEMU0001, 1 byte */

/* Interrupt lines (GSIs of the in-kernel IOAPIC; ISA IRQs map 1:1). */
#define GSI_COM1  4
#define GSI_COM2  3
#define GSI_COM3  12
#define GSI_ACPI_SCI 9

#endif
