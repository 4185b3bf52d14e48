/* Register offsets of struct virtio_pci_common_cfg (virtio 1.x §4.1.4.3),
 * shared by the transport (pci.c) and its unit test. */
#ifndef KVMINI_DEVICES_VIRTIO_PCI_REGS_H
#define KVMINI_DEVICES_VIRTIO_PCI_REGS_H

#define CC_DFSELECT    0x00
#define CC_DF          0x04
#define CC_GFSELECT    0x08
#define CC_GF          0x0c
#define CC_MSIX        0x10
#define CC_NUMQ        0x12
#define CC_STATUS      0x14
#define CC_CFGGEN      0x15
#define CC_Q_SELECT    0x16
#define CC_Q_SIZE      0x18
#define CC_Q_MSIX      0x1a
#define CC_Q_ENABLE    0x1c
#define CC_Q_NOFF      0x1e
#define CC_Q_DESC      0x20
#define CC_Q_DRIVER    0x28
#define CC_Q_DEVICE    0x30

#endif
