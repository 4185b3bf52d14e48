/* PIO and MMIO buses. Devices register address ranges before the vCPUs
 * start; the vCPU loop calls bus_dispatch and knows no device. After the
 * VM starts the range table is read-only, so dispatch takes no lock:
 * each device serialises its own state. */
#ifndef KVMINI_BUS_H
#define KVMINI_BUS_H

#include <stdbool.h>
#include <stdint.h>
#include "kvmini/err.h"

struct bus_ops {
	/* @off is relative to the registered base; @len is 1, 2, 4 or 8. */
	void (*read)(void *opaque, uint64_t off, void *data, unsigned len);
	void (*write)(void *opaque, uint64_t off, const void *data, unsigned len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

enum bus_kind { BUS_PIO, BUS_MMIO };

struct bus {
	enum bus_kind kind;
	struct bus_range *ranges; /* sorted by base, non-overlapping */
	unsigned nr_ranges;
	unsigned cap;
	unsigned long unclaimed;  /* accesses nobody claimed (counted, not fatal) */
};

void bus_init(struct bus *bus, enum bus_kind kind);
void bus_destroy(struct bus *bus);

/* Rejects len 0, wraparound and overlap with -EINVAL / -EEXIST. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name,
		 struct kv_err *e) KV_MUST_CHECK;

/* Returns 0 when a device handled it, -ENOENT when nobody claims it: then
 * a read is filled with all-ones (PIO) or zeros (MMIO). An access that
 * straddles the end of a range is treated as unclaimed. */
int bus_dispatch(struct bus *bus, uint64_t addr, void *data, unsigned len, bool is_write);

#endif
