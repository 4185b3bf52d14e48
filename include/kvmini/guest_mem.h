/* Guest physical memory. The only module that turns a guest-physical
 * address into a host pointer; every other piece of code goes through
 * gm_ptr / gm_read / gm_write, which check start and end of the range. */
#ifndef KVMINI_GUEST_MEM_H
#define KVMINI_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>
#include "kvmini/err.h"

#define GM_MAX_REGIONS 4

struct gm_region {
	uint64_t gpa;   /* guest-physical start */
	uint64_t size;  /* bytes */
	uint8_t *host;  /* host mapping of the first byte */
};

struct guest_mem {
	struct gm_region regions[GM_MAX_REGIONS];
	unsigned nr_regions;
	uint64_t ram_size;     /* total bytes of RAM across regions */
	void *mapping;         /* what gm_create mmap'ed (NULL for test memory) */
	size_t mapping_len;
};

/* Maps @ram_size bytes of anonymous memory and lays it out around the
 * 32-bit PCI hole (see layout.h): [0, min(ram, hole)) and, when RAM
 * reaches the hole, the rest from 4 GiB up. */
int gm_create(struct guest_mem *gm, uint64_t ram_size, struct kv_err *e) KV_MUST_CHECK;
void gm_destroy(struct guest_mem *gm);

/* For tests and fuzzers: describe a region backed by caller memory. */
int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host) KV_MUST_CHECK;

/* Host pointer for [gpa, gpa+len) when the whole range lies in one RAM
 * region, NULL otherwise (including on overflow and len == 0 past the end). */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy in/out; return 0 or -EFAULT when the range is not guest RAM. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len) KV_MUST_CHECK;
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len) KV_MUST_CHECK;

/* Maps @len bytes of @fd from @offset copy-on-write over guest RAM at
 * @gpa (all page-aligned, inside one region of memory from gm_create).
 * The guest then reads the file's pages without a copy; its writes stay
 * private. Returns -ENOTSUP for test memory, -EINVAL for a bad range. */
int gm_map_file(const struct guest_mem *gm, uint64_t gpa, int fd, uint64_t offset,
		uint64_t len) KV_MUST_CHECK;

/* Highest RAM address + 1 below 4 GiB (end of the low region). */
uint64_t gm_low_top(const struct guest_mem *gm);

#endif
