/* The kernel command-line entries that tell Linux's virtio_mmio driver
 * where the virtio-mmio devices are (an x86 guest has no device tree):
 * "virtio_mmio.device=<size>@<base>:<irq>", one per device, parsed by the
 * kernel with memparse (size), then "@%lli:%u". */
#include <errno.h>
#include <stdio.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"

/* Writes @size the way memparse reads it back: the largest K/M/G suffix
 * that divides it exactly, plain bytes otherwise. */
static int format_size(char *buf, size_t len, uint64_t size)
{
	static const struct { uint64_t unit; char suffix; } units[] = {
		{ GiB, 'G' }, { MiB, 'M' }, { KiB, 'K' },
	};

	for (unsigned i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (size && size % units[i].unit == 0)
			return snprintf(buf, len, "%llu%c",
					(unsigned long long)(size / units[i].unit), units[i].suffix);
	return snprintf(buf, len, "%llu", (unsigned long long)size);
}

int boot_virtio_mmio_cmdline(unsigned nr, char *buf, size_t len)
{
	static const unsigned gsis[] = LAYOUT_VIRTIO_MMIO_GSIS;
	char size[32];
	size_t used = 0;

	_Static_assert(sizeof(gsis) / sizeof(gsis[0]) == LAYOUT_VIRTIO_MMIO_MAX,
		       "one GSI per virtio-mmio slot");
	if (nr > LAYOUT_VIRTIO_MMIO_MAX)
		return -EINVAL;
	if (!buf || len == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	format_size(size, sizeof(size), LAYOUT_VIRTIO_MMIO_SIZE);
	for (unsigned i = 0; i < nr; i++) {
		int n = snprintf(buf + used, len - used, "%svirtio_mmio.device=%s@0x%llx:%u",
				 i ? " " : "", size,
				 (unsigned long long)LAYOUT_VIRTIO_MMIO(i), gsis[i]);

		if (n < 0 || (size_t)n >= len - used) {
			buf[used] = '\0'; /* no half entry left behind */
			return -ENAMETOOLONG;
		}
		used += (size_t)n;
	}
	return (int)used;
}
