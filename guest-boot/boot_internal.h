/* Private interface between the guest-boot/ files (and their unit
 * tests). Nothing outside guest-boot/ and tests/unit/boot includes it. */
#ifndef KVMINI_GUEST_BOOT_INTERNAL_H
#define KVMINI_GUEST_BOOT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/boot.h"
#include "kvmini/err.h"
#include "kvmini/guest_mem.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "boot structures are written as little-endian host structs");

#define BOOT_PAGE 4096ULL

/* A whole file in host memory: mapped read-only from disk (then @fd stays
 * open so segments can be mapped into the guest without copying), or a
 * malloc'd buffer (unpacked kernels). @path is borrowed, not owned. */
struct boot_file {
	const char *path;
	uint8_t *data;
	size_t size;
	bool mapped;  /* data is an mmap of @fd, else malloc'd */
	int fd;       /* valid only when mapped */
};

/* boot.c: reads a regular, non-empty file; errors name @path. */
int boot_file_read(const char *path, struct boot_file *f, struct kv_err *e) KV_MUST_CHECK;
void boot_file_free(struct boot_file *f);

/* A guest-physical range [start, end) already in use. */
struct boot_range {
	uint64_t start;
	uint64_t end;
};

/* boot.c: the highest page-aligned address a with floor <= a and
 * a + size <= ceil that overlaps none of @busy. -ENOSPC when none. */
int boot_place_high(uint64_t size, uint64_t floor, uint64_t ceil,
		    const struct boot_range *busy, unsigned nbusy, uint64_t *addr) KV_MUST_CHECK;

/* boot.c: opens the initrd, places it with boot_place_high below @ceil
 * avoiding @busy, and reads it straight into guest memory, followed
 * (4-aligned) by @extra_len bytes of @extra; out->size covers both.
 * @path NULL: @extra alone is the initrd. */
struct boot_initrd {
	uint64_t addr;
	uint64_t size;
};
int boot_initrd_load(const struct guest_mem *gm, const char *path,
		     const void *extra, size_t extra_len, uint64_t ceil,
		     const struct boot_range *busy, unsigned nbusy,
		     struct boot_initrd *out, struct kv_err *e) KV_MUST_CHECK;

/* boot.c: copies the NUL-terminated command line to LAYOUT_CMDLINE;
 * @max_len is the kernel's limit without the NUL. */
int boot_cmdline_write(const struct guest_mem *gm, const char *cmdline,
		       uint64_t max_len, const char *kernel_path, struct kv_err *e) KV_MUST_CHECK;

/* bzimage.c ------------------------------------------------------------ */

#define BZ_MIN_VERSION   0x020c /* 2.12: xloadflags */
#define XLF_KERNEL_64    (1u << 0)

/* The setup header fields the loaders use, copied out of the file. */
struct bz_info {
	unsigned setup_sects;     /* after "0 means 4" */
	uint16_t version;
	uint8_t loadflags;
	uint8_t relocatable;
	uint16_t xloadflags;
	uint32_t syssize;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint32_t cmdline_size;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t pref_address;
	uint32_t init_size;
	size_t pm_offset;         /* file offset of the protected-mode kernel */
	size_t pm_size;           /* syssize * 16 bytes */
};

/* Content test: "HdrS" at 0x202 or the 0xaa55 boot flag at 0x1fe. */
bool bz_looks_like(const struct boot_file *f);
/* Validates the header common to both boot paths (size, boot flag,
 * "HdrS", protocol version, protected-mode part present). */
int bz_parse(const struct boot_file *f, struct bz_info *bz, struct kv_err *e) KV_MUST_CHECK;
/* Loads a bzImage with the 64-bit boot protocol. */
int bz_load(const struct guest_mem *gm, const struct boot_cfg *cfg,
	    const struct boot_file *f, struct boot_entry *entry, struct kv_err *e) KV_MUST_CHECK;

/* elf_pvh.c ------------------------------------------------------------ */

bool pvh_looks_like(const struct boot_file *f);
/* Loads an ELF vmlinux through its PVH note. @what names the kernel in
 * errors (the file, or "FILE (unpacked vmlinux)"); @cmdline_max is the
 * command-line limit to enforce (0: only the VMM's own limit). */
int pvh_load(const struct guest_mem *gm, const struct boot_cfg *cfg,
	     const struct boot_file *f, const char *what, uint64_t cmdline_max,
	     struct boot_entry *entry, struct kv_err *e) KV_MUST_CHECK;
/* The PVH entry point of an in-memory ELF image, without loading it. */
int pvh_find_entry(const struct boot_file *f, const char *what, uint32_t *entry,
		   struct kv_err *e) KV_MUST_CHECK;

/* unpack_xz.c ---------------------------------------------------------- */

#define UNPACK_MAX_SIZE (1ULL << 30) /* refuse to inflate beyond 1 GiB */

/* Extracts the XZ-compressed ELF vmlinux from a parsed bzImage into
 * @out (malloc'd; free with boot_file_free), through the cache in
 * @cache_dir when non-NULL. */
int unpack_bzimage(const struct boot_file *bz_file, const struct bz_info *bz,
		   const char *cache_dir, struct boot_file *out, struct kv_err *e) KV_MUST_CHECK;

/* acpi.c --------------------------------------------------------------- */

#define ACPI_MAX_CPUS 254 /* 8-bit APIC IDs, and the I/O APIC takes id ncpus */

/* RSDP at LAYOUT_ACPI_RSDP, then XSDT, FADT, DSDT, MADT from
 * LAYOUT_ACPI_TABLES. The DSDT describes the PCI host bridge and
 * virtio-mmio devices 0..@nr_virtio_mmio-1 (at most
 * LAYOUT_VIRTIO_MMIO_MAX). */
int acpi_write_tables(const struct guest_mem *gm, unsigned ncpus, unsigned nr_virtio_mmio,
		      struct kv_err *e) KV_MUST_CHECK;

#endif
