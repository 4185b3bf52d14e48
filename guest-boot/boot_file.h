/* guest-boot/boot_file.c: the helpers every boot path shares (private
 * to guest-boot/ and its unit tests). */
#ifndef KVMINI_GUEST_BOOT_BOOT_FILE_H
#define KVMINI_GUEST_BOOT_BOOT_FILE_H

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

/* reads a regular, non-empty file; errors name @path. */
int boot_file_read(const char *path, struct boot_file *f, struct kv_err *e) KV_MUST_CHECK;
void boot_file_free(struct boot_file *f);

/* A guest-physical range [start, end) already in use. */
struct boot_range {
	uint64_t start;
	uint64_t end;
};

/* the highest page-aligned address a with floor <= a and
 * a + size <= ceil that overlaps none of @busy. -ENOSPC when none. */
int boot_place_high(uint64_t size, uint64_t floor, uint64_t ceil,
		    const struct boot_range *busy, unsigned nbusy, uint64_t *addr) KV_MUST_CHECK;

/* opens the initrd, places it with boot_place_high below @ceil
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

/* copies the NUL-terminated command line to LAYOUT_CMDLINE;
 * @max_len is the kernel's limit without the NUL. */
int boot_cmdline_write(const struct guest_mem *gm, const char *cmdline,
		       uint64_t max_len, const char *kernel_path, struct kv_err *e) KV_MUST_CHECK;

#endif
