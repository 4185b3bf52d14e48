/* PIO and MMIO buses. Devices register address ranges before the vCPUs
 * start and unregister them on setup failure or at teardown, once the
 * vCPUs have stopped; the vCPU loop calls bus_dispatch and knows no
 * device. While vCPUs run the range table is read-only, so dispatch takes
 * no lock (each device serialises its own state): the VM seals the bus
 * around the vCPUs' lifetime (bus_seal/bus_unseal) and registering or
 * unregistering a sealed bus is a bug (asserted). */
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
	bool sealed;              /* vCPUs may dispatch: the table must not change */
};

void bus_init(struct bus *bus, enum bus_kind kind);
void bus_destroy(struct bus *bus);

/* Rejects len 0, wraparound and overlap with -EINVAL / -EEXIST. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name,
		 struct kv_err *e) KV_MUST_CHECK;

/* Registers the @n ranges of @r (a device with several ports) all or
 * none: on failure the ones already registered are removed again. */
int bus_register_ranges(struct bus *bus, const struct bus_range *r, unsigned n,
			struct kv_err *e) KV_MUST_CHECK;

/* Removes the range at @base registered with @opaque (Firecracker's
 * Bus::remove): 0, or -ENOENT when there is none. When it returns no
 * dispatch reaches that range again. Not on a sealed bus. */
int bus_unregister(struct bus *bus, uint64_t base, const void *opaque);
/* Removes every range registered with @opaque and returns how many: a
 * device's destroy and its failed create undo all their registrations
 * with one call. Not on a sealed bus. */
unsigned bus_unregister_all(struct bus *bus, const void *opaque);

/* The vCPUs start (seal) / have all stopped (unseal): in between
 * bus_dispatch runs on vCPU threads without a lock, so the table is
 * frozen. */
void bus_seal(struct bus *bus);
void bus_unseal(struct bus *bus);

/* Returns 0 when a device handled it, -ENOENT when nobody claims it: then
 * a read is filled with all-ones (PIO) or zeros (MMIO). An access that
 * straddles the end of a range is treated as unclaimed. */
int bus_dispatch(struct bus *bus, uint64_t addr, void *data, unsigned len, bool is_write);

#endif
