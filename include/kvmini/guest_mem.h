/* Guest physical memory. The only module that turns a guest-physical
 * address into a host pointer; every other piece of code goes through
 * gm_ptr / gm_read / gm_write, which check start and end of the range. */
#ifndef KVMINI_GUEST_MEM_H
#define KVMINI_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kvmini/err.h"

#define GM_MAX_REGIONS 4
/* KVM maps guest memory with 2 MiB pages only where the host mapping is
 * backed by 2 MiB pages and a slot's guest and host addresses agree
 * modulo 2 MiB; 1 GiB pages need the same modulo 1 GiB. */
#define GM_HUGE_2M (2ULL << 20)
#define GM_HUGE_1G (1ULL << 30)

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
	bool hugetlb;          /* mapping is hugetlbfs memory (not counted in RSS) */
};

/* How gm_create backs guest RAM (--memory SIZE[,hugetlb][,prefault]). */
struct gm_opts {
	bool hugetlb;   /* 2 MiB hugetlbfs pages, reserved up front (MAP_HUGETLB) */
	bool prefault;  /* every page allocated now, not at the guest's first touch */
};

/* Maps @ram_size bytes of anonymous memory and lays it out around the
 * 32-bit PCI hole (see layout.h): [0, min(ram, hole)) and, when RAM
 * reaches the hole, the rest from 4 GiB up. The mapping starts on a
 * gm_host_align(@ram_size) boundary and asks for transparent huge pages,
 * so each region's host and guest addresses are congruent modulo that
 * alignment and KVM can map the guest with 2 MiB pages. @opts may be NULL
 * (defaults). With hugetlb, too few free huge pages is an error that says
 * how to reserve them. */
int gm_create(struct guest_mem *gm, uint64_t ram_size, const struct gm_opts *opts,
	      struct kv_err *e) KV_MUST_CHECK;
void gm_destroy(struct guest_mem *gm);

/* The host alignment gm_create uses for @ram_size bytes of guest RAM:
 * 1 GiB when the guest has at least 1 GiB (a 1 GiB host page could then
 * back it), else 2 MiB. */
uint64_t gm_host_align(uint64_t ram_size);

/* True when KVM can map @r with pages of @page bytes: the region's host
 * and guest addresses are congruent modulo @page (a power of two). */
bool gm_region_congruent(const struct gm_region *r, uint64_t page);

/* Bytes of guest RAM resident in host memory now (mincore over the
 * mapping; 0 for test memory). Makes no allocation. */
uint64_t gm_resident_bytes(const struct guest_mem *gm);

/* For tests and fuzzers: describe a region backed by caller memory. */
int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host) KV_MUST_CHECK;

/* Host pointer for [gpa, gpa+len) when the whole range lies in one RAM
 * region, NULL otherwise (including on overflow and len == 0 past the end). */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy in/out; return 0 or -EFAULT when the range is not guest RAM. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len) KV_MUST_CHECK;
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len) KV_MUST_CHECK;

/* Highest RAM address + 1 below 4 GiB (end of the low region). */
uint64_t gm_low_top(const struct guest_mem *gm);

#endif
