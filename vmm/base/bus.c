/* PIO/MMIO range table: sorted, non-overlapping, binary-searched. It
 * changes only while the bus is unsealed (no vCPU dispatching). */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/bus.h"

void bus_init(struct bus *bus, enum bus_kind kind)
{
	memset(bus, 0, sizeof(*bus));
	bus->kind = kind;
}

void bus_destroy(struct bus *bus)
{
	assert(!bus->sealed);
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nr_ranges = bus->cap = 0;
}

static const char *bus_name(const struct bus *bus)
{
	return bus->kind == BUS_PIO ? "port I/O" : "MMIO";
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name,
		 struct kv_err *e)
{
	uint64_t last;
	unsigned pos;

	assert(!bus->sealed); /* vCPUs read the table without a lock */
	if (len == 0)
		return kv_err_set(e, -EINVAL, "%s: empty %s range at 0x%llx", name,
				  bus_name(bus), (unsigned long long)base);
	if (__builtin_add_overflow(base, len - 1, &last) ||
	    (bus->kind == BUS_PIO && last > 0xffff))
		return kv_err_set(e, -EINVAL, "%s: %s range 0x%llx+0x%llx wraps around",
				  name, bus_name(bus), (unsigned long long)base,
				  (unsigned long long)len);
	if (!ops || (!ops->read && !ops->write))
		return kv_err_set(e, -EINVAL, "%s: no handlers", name);

	for (pos = 0; pos < bus->nr_ranges; pos++) {
		const struct bus_range *r = &bus->ranges[pos];

		if (base <= r->base + (r->len - 1) && r->base <= last)
			return kv_err_set(e, -EEXIST,
					  "%s: %s range 0x%llx-0x%llx overlaps %s at 0x%llx-0x%llx",
					  name, bus_name(bus), (unsigned long long)base,
					  (unsigned long long)last, r->name,
					  (unsigned long long)r->base,
					  (unsigned long long)(r->base + r->len - 1));
		if (r->base > base)
			break;
	}
	if (bus->nr_ranges == bus->cap) {
		unsigned cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_range *n = realloc(bus->ranges, cap * sizeof(*n));

		if (!n)
			return kv_err_set(e, -ENOMEM, "%s: out of memory", name);
		bus->ranges = n;
		bus->cap = cap;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
		(bus->nr_ranges - pos) * sizeof(bus->ranges[0]));
	bus->ranges[pos] = (struct bus_range){ base, len, ops, opaque, name };
	bus->nr_ranges++;
	return 0;
}

int bus_register_ranges(struct bus *bus, const struct bus_range *r, unsigned n,
			struct kv_err *e)
{
	for (unsigned i = 0; i < n; i++) {
		int ret = bus_register(bus, r[i].base, r[i].len, r[i].ops, r[i].opaque, r[i].name, e);

		if (ret) {
			while (i-- > 0)
				bus_unregister(bus, r[i].base, r[i].opaque);
			return ret;
		}
	}
	return 0;
}

static void remove_at(struct bus *bus, unsigned pos)
{
	memmove(&bus->ranges[pos], &bus->ranges[pos + 1],
		(bus->nr_ranges - pos - 1) * sizeof(bus->ranges[0]));
	bus->nr_ranges--;
}

int bus_unregister(struct bus *bus, uint64_t base, const void *opaque)
{
	assert(!bus->sealed); /* vCPUs read the table without a lock */
	for (unsigned pos = 0; pos < bus->nr_ranges; pos++) {
		if (bus->ranges[pos].base == base && bus->ranges[pos].opaque == opaque) {
			remove_at(bus, pos);
			return 0;
		}
	}
	return -ENOENT;
}

unsigned bus_unregister_all(struct bus *bus, const void *opaque)
{
	unsigned n = 0;

	assert(!bus->sealed);
	for (unsigned pos = bus->nr_ranges; pos-- > 0;) {
		if (bus->ranges[pos].opaque == opaque) {
			remove_at(bus, pos);
			n++;
		}
	}
	return n;
}

void bus_seal(struct bus *bus)
{
	bus->sealed = true;
}

void bus_unseal(struct bus *bus)
{
	bus->sealed = false;
}

static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nr_ranges;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

int bus_dispatch(struct bus *bus, uint64_t addr, void *data, unsigned len, bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr);
	uint64_t off;

	if (len == 0 || len > 8 || !r || len > r->len - (off = addr - r->base) ||
	    (is_write ? !r->ops->write : !r->ops->read)) {
		/* Counted, not fatal; the increment may race between vCPUs,
		 * which only makes the statistic approximate. */
		__atomic_add_fetch(&bus->unclaimed, 1, __ATOMIC_RELAXED);
		if (!is_write && len <= 8)
			memset(data, bus->kind == BUS_PIO ? 0xff : 0x00, len);
		return -ENOENT;
	}
	if (is_write)
		r->ops->write(r->opaque, off, data, len);
	else
		r->ops->read(r->opaque, off, data, len);
	return 0;
}
