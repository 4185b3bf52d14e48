/* virtio-pci's common configuration structure (virtio 1.x §4.1.4.3):
 * feature selectors, the device status, and the selected queue's
 * registers. Reads see an image built from the live state; writes go
 * register by register. Lock held (pci_transport.h).
 *
 * Choices the spec leaves open: an access of the wrong size or at a
 * misaligned offset reads the bytes it covers and is ignored as a write;
 * an out-of-range queue_select reads zeros in every queue register and
 * ignores writes to them; the ring addresses take two 32-bit halves or one
 * 64-bit write and are frozen while the queue is enabled; queue_enable = 0
 * (forbidden to drivers, §4.1.4.3.2) is ignored. */
#include <string.h>
#include <linux/virtio_pci.h>

#include "kvmini/le.h"
#include "pci_transport.h"

static struct virtq *selected(struct virtio_pci *vp)
{
	return vp->queue_select < vp->dev->nr_queues ? &vp->dev->vqs[vp->queue_select] : NULL;
}

/* The register file as the driver sees it now. */
static void common_image(struct virtio_pci *vp, uint8_t img[VP_COMMON_LEN])
{
	struct virtio_dev *d = vp->dev;
	struct virtq *vq = selected(vp);

	memset(img, 0, VP_COMMON_LEN);
	le32_store(img + VIRTIO_PCI_COMMON_DFSELECT, vp->dfselect);
	if (vp->dfselect < 2)
		le32_store(img + VIRTIO_PCI_COMMON_DF, (uint32_t)(d->features >> (32 * vp->dfselect)));
	le32_store(img + VIRTIO_PCI_COMMON_GFSELECT, vp->gfselect);
	if (vp->gfselect < 2)
		le32_store(img + VIRTIO_PCI_COMMON_GF,
			   (uint32_t)(d->driver_features >> (32 * vp->gfselect)));
	le16_store(img + VIRTIO_PCI_COMMON_MSIX, vp->msix_config);
	le16_store(img + VIRTIO_PCI_COMMON_NUMQ, (uint16_t)d->nr_queues);
	img[VIRTIO_PCI_COMMON_STATUS] = d->status;
	img[VIRTIO_PCI_COMMON_CFGGENERATION] = d->config_generation;
	le16_store(img + VIRTIO_PCI_COMMON_Q_SELECT, vp->queue_select);
	if (!vq)
		return;
	le16_store(img + VIRTIO_PCI_COMMON_Q_SIZE, vq->size);
	le16_store(img + VIRTIO_PCI_COMMON_Q_MSIX, vq->msix_vector);
	le16_store(img + VIRTIO_PCI_COMMON_Q_ENABLE, vq->enabled);
	le16_store(img + VIRTIO_PCI_COMMON_Q_NOFF, vp->queue_select);
	le64_store(img + VIRTIO_PCI_COMMON_Q_DESCLO, vq->desc_gpa);
	le64_store(img + VIRTIO_PCI_COMMON_Q_AVAILLO, vq->avail_gpa);
	le64_store(img + VIRTIO_PCI_COMMON_Q_USEDLO, vq->used_gpa);
}

void vp_common_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	uint8_t img[VP_COMMON_LEN];

	common_image(vp, img);
	memcpy(data, img + off, len);
}

static uint16_t checked_vector(const struct virtio_pci *vp, uint64_t v)
{
	/* §4.1.5.1.2: a vector the device cannot use reads back NO_VECTOR. */
	return v < vp->msix.nr ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

/* queue_desc/driver/device: two 32-bit halves or one 64-bit write. */
static void ring_address_write(struct virtio_pci *vp, unsigned off, unsigned len, uint64_t v)
{
	struct virtq *vq = selected(vp);
	unsigned base = off & ~7u;
	uint64_t *gpa;

	if (!vq || vq->enabled)
		return; /* no such queue, or reconfiguring a live queue */
	gpa = off < VIRTIO_PCI_COMMON_Q_AVAILLO ? &vq->desc_gpa
	    : off < VIRTIO_PCI_COMMON_Q_USEDLO ? &vq->avail_gpa : &vq->used_gpa;
	if (len == 8)
		*gpa = v;
	else if (off == base)
		*gpa = (*gpa & 0xffffffff00000000ULL) | (uint32_t)v;
	else
		*gpa = (*gpa & 0xffffffffULL) | v << 32;
}

static bool is_ring_address(unsigned off, unsigned len)
{
	return off >= VIRTIO_PCI_COMMON_Q_DESCLO && off < VP_COMMON_LEN && off % 4 == 0 &&
	       (len == 4 || (len == 8 && off % 8 == 0));
}

/* The transport's part of a device reset (status 0). */
static void common_reset(struct virtio_pci *vp)
{
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	vp->queue_select = 0;
	vp->dfselect = vp->gfselect = 0;
	for (unsigned q = 0; q < vp->dev->nr_queues; q++)
		vp->dev->vqs[q].msix_vector = VIRTIO_MSI_NO_VECTOR;
	vp->isr = 0;
	vp_intx_update(vp);
}

static void driver_feature_write(struct virtio_pci *vp, uint32_t v)
{
	struct virtio_dev *d = vp->dev;

	/* Frozen from FEATURES_OK to the next reset (§3.1.1). */
	if (vp->gfselect >= 2 || (d->status & VIRTIO_CONFIG_S_FEATURES_OK))
		return;
	d->driver_features &= ~(0xffffffffULL << (32 * vp->gfselect));
	d->driver_features |= (uint64_t)v << (32 * vp->gfselect);
}

static void queue_size_write(struct virtio_pci *vp, uint64_t v)
{
	struct virtq *vq = selected(vp);

	if (vq && !vq->enabled && v <= vq->max_size)
		vq->size = (uint16_t)v; /* vq_enable checks the power of two */
}

void vp_common_write(struct virtio_pci *vp, unsigned off, const void *data, unsigned len)
{
	struct virtio_dev *d = vp->dev;
	struct virtq *vq = selected(vp);
	uint64_t v = le_load(data, len);

	if (is_ring_address(off, len)) {
		ring_address_write(vp, off, len, v);
		return;
	}
	switch (off | len << 8) {
	case VIRTIO_PCI_COMMON_DFSELECT | 4 << 8:
		vp->dfselect = (uint32_t)v;
		return;
	case VIRTIO_PCI_COMMON_GFSELECT | 4 << 8:
		vp->gfselect = (uint32_t)v;
		return;
	case VIRTIO_PCI_COMMON_GF | 4 << 8:
		driver_feature_write(vp, (uint32_t)v);
		return;
	case VIRTIO_PCI_COMMON_MSIX | 2 << 8:
		vp->msix_config = checked_vector(vp, v);
		return;
	case VIRTIO_PCI_COMMON_STATUS | 1 << 8:
		virtio_dev_set_status(d, (uint8_t)v);
		if (v == 0)
			common_reset(vp);
		return;
	case VIRTIO_PCI_COMMON_Q_SELECT | 2 << 8:
		vp->queue_select = (uint16_t)v;
		return;
	case VIRTIO_PCI_COMMON_Q_SIZE | 2 << 8:
		queue_size_write(vp, v);
		return;
	case VIRTIO_PCI_COMMON_Q_MSIX | 2 << 8:
		if (vq)
			vq->msix_vector = checked_vector(vp, v);
		return;
	case VIRTIO_PCI_COMMON_Q_ENABLE | 2 << 8:
		if (vq && v == 1 && !vq->enabled)
			virtio_dev_enable_queue(d, vp->queue_select);
		return;
	}
	/* Read-only registers (device_feature, num_queues, config_generation,
	 * queue_notify_off) and accesses of the wrong size. */
	LOG_GUEST(&vp->rl, "%s: ignored %u-byte write at common config 0x%x", d->name, len, off);
}
