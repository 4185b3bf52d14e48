/* Direct kernel boot: what the loaders (guest-boot/) produce and what
 * the vCPU setup (vmm/cpu_x86.c) consumes. */
#ifndef KVMINI_BOOT_H
#define KVMINI_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kvmini/err.h"
#include "kvmini/guest_mem.h"

enum boot_mode {
	BOOT_AUTO,    /* by content: ELF -> PVH, bzImage -> 64-bit boot protocol */
	BOOT_BZIMAGE, /* the Linux x86 boot protocol, 64-bit entry */
	BOOT_PVH,     /* PVH entry; a bzImage is unpacked in the host first */
};

struct boot_cfg {
	const char *kernel_path;
	const char *initrd_path;  /* NULL: none */
	const char *cmdline;      /* final command line, already with defaults */
	enum boot_mode mode;
	unsigned ncpus;
	const char *cache_dir;    /* where unpacked vmlinux files are cached; NULL: no cache */
	unsigned nr_virtio_mmio;  /* virtio-mmio devices 0..n-1 (layout.h) the DSDT describes */
	/* An archive appended to the initrd in guest memory (the kernel
	 * unpacks concatenated cpio archives): --exec's command. The initrd is
	 * zero-padded to 4 bytes before it. NULL: none. Without initrd_path
	 * it is the whole initrd (kvmini's own initramfs). */
	const void *initrd_extra;
	size_t initrd_extra_len;
};

/* The CPU state the guest starts in. */
enum boot_entry_kind {
	ENTRY_LINUX64, /* long mode, paging on, RSI = zero page */
	ENTRY_PVH32,   /* 32-bit protected mode, paging off, EBX = hvm_start_info */
	ENTRY_REAL16,  /* real mode, CS:IP = 0:rip (tiny test guests only) */
};

struct boot_entry {
	enum boot_entry_kind kind;
	uint64_t rip;
	uint64_t boot_info; /* zero page (RSI) or hvm_start_info (EBX) */
};

/* One e820 / PVH memory map entry. */
#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};
#define E820_MAX 16

/* Builds the guest's memory map from guest RAM: RAM below the EBDA,
 * reserved EBDA..1 MiB, RAM from 1 MiB to the hole, RAM above 4 GiB.
 * Returns the number of entries (> 0) or -ENOSPC. */
int boot_build_e820(const struct guest_mem *gm, struct e820_entry *map, unsigned max);

/* Loads kernel (+ initrd, command line) into guest memory according to
 * cfg->mode, writes the boot data structures (zero page or PVH start
 * info, ACPI tables for cfg->ncpus CPUs) and describes the entry. Every
 * malformed input fails before the VM starts, with a message naming the
 * file and the problem. @gm must be zero-filled, as gm_create leaves it:
 * the zeros of a kernel image are not copied. */
int boot_load(const struct guest_mem *gm, const struct boot_cfg *cfg,
	      struct boot_entry *entry, struct kv_err *e) KV_MUST_CHECK;

/* Writes the command-line entries that describe virtio-mmio devices
 * 0..@nr-1 (layout.h) to Linux, "virtio_mmio.device=4K@0xd0000000:5
 * virtio_mmio.device=4K@0xd0001000:6 ...", NUL-terminated into @buf.
 * Returns the length without the NUL, -ENAMETOOLONG when @len is too
 * small (@buf then holds the whole entries that fit), -EINVAL when @nr
 * exceeds LAYOUT_VIRTIO_MMIO_MAX. */
int boot_virtio_mmio_cmdline(unsigned nr, char *buf, size_t len) KV_MUST_CHECK;

/* The kernel's release ("6.1.0-57-amd64"), which names its module tree:
 * from a bzImage's kernel_version header field or an ELF vmlinux's
 * "Linux version" banner. */
int boot_kernel_release(const char *kernel_path, char *out, size_t len,
			struct kv_err *e) KV_MUST_CHECK;

#endif

/* The boot GDT that guest-boot/ writes at LAYOUT_GDT and vmm/cpu_x86.c
 * loads: selectors follow Linux's boot protocol (__BOOT_CS 0x10, __BOOT_DS 0x18). */
#define GDT_SEL_CODE64 0x10
#define GDT_SEL_DATA   0x18
#define GDT_SEL_TSS    0x20
#define GDT_SEL_CODE32 0x28
#define GDT_ENTRIES    6

/* Writes the GDT, an empty IDT and (for ENTRY_LINUX64) identity-mapping
 * page tables for the first 4 GiB (2 MiB pages) at the LAYOUT_* addresses. */
int boot_write_x86_tables(const struct guest_mem *gm, enum boot_entry_kind kind) KV_MUST_CHECK;
