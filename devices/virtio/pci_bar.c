/* virtio-pci's BAR0 (layout in pci_transport.h): which region an access
 * falls in, then the region's read or write. Reads and writes are two
 * paths over one region map, so a write never needs a writable pointer to
 * the guest's data.
 *
 * Choices the spec leaves open: with memory decoding off in the command
 * register, BAR0 reads zeros and ignores writes (what kvmini's bus gives
 * for unclaimed MMIO; the notify ioeventfds are deassigned meanwhile, see
 * pci.c); accesses outside every region, or straddling a region's end,
 * read zeros and are ignored; ISR, PBA and notify reads are side-effect
 * free except ISR's read-to-acknowledge. */
#include <string.h>
#include <sys/eventfd.h>

#include "pci_transport.h"

enum vp_region { R_NONE, R_COMMON, R_ISR, R_DEVICE, R_NOTIFY, R_MSIX_TABLE, R_MSIX_PBA };

/* Which region [@off, @off + @len) lies in, and the offset inside it. */
static enum vp_region region_of(const struct virtio_pci *vp, uint64_t off, unsigned len,
				unsigned *rel)
{
	static const struct { enum vp_region r; uint32_t at, len; } map[] = {
		{ R_COMMON, VP_BAR_COMMON, VP_COMMON_LEN },
		{ R_ISR, VP_BAR_ISR, VP_ISR_LEN },
		{ R_DEVICE, VP_BAR_DEVICE, VP_DEVICE_MAX },
		{ R_NOTIFY, VP_BAR_NOTIFY, VP_NOTIFY_MULT * VIRTIO_MAX_QUEUES },
		{ R_MSIX_TABLE, VP_BAR_MSIX_TABLE, 0 },   /* length: the table's */
		{ R_MSIX_PBA, VP_BAR_MSIX_PBA, PCI_MSIX_PBA_LEN },
	};

	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		uint32_t n = map[i].r == R_MSIX_TABLE ? pci_msix_table_len(&vp->msix) : map[i].len;

		if (off >= map[i].at && off - map[i].at + len <= n) {
			*rel = (unsigned)(off - map[i].at);
			return map[i].r;
		}
	}
	return R_NONE;
}

static bool decoding(const struct virtio_pci *vp)
{
	return pci_config_command(&vp->pc) & PCI_COMMAND_MEMORY;
}

/* Device configuration: inside config_len and with a handler, or nothing. */
static bool device_config_ok(const struct virtio_dev *d, unsigned off, unsigned len,
			     bool is_write)
{
	return off + len <= d->config_len &&
	       (is_write ? d->ops->config_write != NULL : d->ops->config_read != NULL);
}

void vp_bar_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned len)
{
	struct virtio_dev *d = vp->dev;
	uint8_t *out = data;
	unsigned rel;

	memset(data, 0, len);
	if (!decoding(vp))
		return;
	switch (region_of(vp, off, len, &rel)) {
	case R_COMMON:
		vp_common_read(vp, rel, data, len);
		break;
	case R_ISR:
		if (rel != 0)
			break;
		/* Reading ISR acknowledges it and lowers INTx (§4.1.4.5). */
		out[0] = vp->isr;
		vp->isr = 0;
		vp_intx_update(vp);
		break;
	case R_DEVICE:
		if (device_config_ok(d, rel, len, false))
			d->ops->config_read(d, rel, data, len);
		break;
	case R_MSIX_TABLE:
		pci_msix_table_read(&vp->msix, rel, data, len);
		break;
	case R_MSIX_PBA:
		pci_msix_pba_read(&vp->msix, rel, data, len);
		break;
	case R_NOTIFY: /* write-only */
	case R_NONE:
		break;
	}
}

/* A kick the ioeventfd did not take (none assigned, or a write of a
 * length KVM does not match): the loop thread does the work either way. */
static void notify_write(struct virtio_pci *vp, unsigned rel)
{
	unsigned q = rel / VP_NOTIFY_MULT;

	if (rel % VP_NOTIFY_MULT || q >= vp->dev->nr_queues)
		return;
	if (eventfd_write(vp->queues[q].fd, 1))
		LOG_GUEST(&vp->rl, "%s: queue %u kick lost", vp->dev->name, q);
}

void vp_bar_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len)
{
	struct virtio_dev *d = vp->dev;
	unsigned rel;

	if (!decoding(vp))
		return;
	switch (region_of(vp, off, len, &rel)) {
	case R_COMMON:
		vp_common_write(vp, rel, data, len);
		break;
	case R_DEVICE:
		if (device_config_ok(d, rel, len, true))
			d->ops->config_write(d, rel, data, len);
		break;
	case R_NOTIFY:
		notify_write(vp, rel);
		break;
	case R_MSIX_TABLE:
		pci_msix_table_write(&vp->msix, rel, data, len);
		break;
	case R_ISR: /* read-only */
	case R_MSIX_PBA:
	case R_NONE:
		break;
	}
}

static void bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->dev->lock);
	vp_bar_read(vp, off, data, len);
	pthread_mutex_unlock(&vp->dev->lock);
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->dev->lock);
	vp_bar_write(vp, off, data, len);
	pthread_mutex_unlock(&vp->dev->lock);
}

const struct bus_ops vp_bar_ops = { .read = bar_read, .write = bar_write };
