/* The guest's memory map (e820 for the bzImage path, the PVH memmap for
 * PVH): what guest RAM exists, minus the PC conventions below 1 MiB. */
#include <errno.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"

struct e820_builder {
	struct e820_entry *map;
	unsigned max;
	unsigned n;
	int err;
};

/* Appends [start, end) of @type, merging with the previous entry when
 * they touch and agree, so adjacent regions become one entry. */
static void e820_add(struct e820_builder *b, uint64_t start, uint64_t end, uint32_t type)
{
	struct e820_entry *last = b->n ? &b->map[b->n - 1] : NULL;

	if (end <= start || b->err)
		return;
	if (last && last->type == type && last->addr + last->size == start) {
		last->size += end - start;
		return;
	}
	if (b->n >= b->max) {
		b->err = -ENOSPC;
		return;
	}
	b->map[b->n++] = (struct e820_entry){ .addr = start, .size = end - start, .type = type };
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Adds the part of RAM [start, end) that lies inside window [lo, hi). */
static void e820_add_clipped(struct e820_builder *b, uint64_t start, uint64_t end,
			     uint64_t lo, uint64_t hi)
{
	e820_add(b, max_u64(start, lo), min_u64(end, hi), E820_RAM);
}

/* Region indexes by ascending gpa: the map must be sorted. */
static void sort_regions(const struct guest_mem *gm, unsigned *idx)
{
	for (unsigned i = 0; i < gm->nr_regions; i++)
		idx[i] = i;
	for (unsigned i = 1; i < gm->nr_regions; i++) {
		for (unsigned j = i; j > 0; j--) {
			unsigned a = idx[j - 1], c = idx[j];

			if (gm->regions[a].gpa <= gm->regions[c].gpa)
				break;
			idx[j - 1] = c;
			idx[j] = a;
		}
	}
}

int boot_build_e820(const struct guest_mem *gm, struct e820_entry *map, unsigned max)
{
	struct e820_builder b = { .map = map, .max = max };
	unsigned idx[GM_MAX_REGIONS];
	bool reserved_done = false;

	sort_regions(gm, idx);
	for (unsigned i = 0; i < gm->nr_regions && !b.err; i++) {
		const struct gm_region *r = &gm->regions[idx[i]];
		uint64_t end = r->gpa + r->size;

		/* Conventional memory below the EBDA. */
		e820_add_clipped(&b, r->gpa, end, 0, LAYOUT_EBDA);
		/* EBDA, VGA hole, BIOS area with the ACPI tables: never RAM
		 * to Linux, whether or not RAM backs it. Emitted once, in
		 * order, before anything above 1 MiB. */
		if (!reserved_done && end > LAYOUT_EBDA) {
			e820_add(&b, LAYOUT_EBDA, LAYOUT_HIGHMEM_START, E820_RESERVED);
			reserved_done = true;
		}
		e820_add_clipped(&b, r->gpa, end, LAYOUT_HIGHMEM_START, LAYOUT_MMIO_HOLE_START);
		e820_add_clipped(&b, r->gpa, end, LAYOUT_MMIO_HOLE_END, UINT64_MAX);
	}
	if (b.err)
		return b.err;
	/* A guest with no RAM is a VMM bug, not a user error; still no crash. */
	return b.n ? (int)b.n : -EINVAL;
}
