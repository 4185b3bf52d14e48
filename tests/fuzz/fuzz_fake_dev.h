/* A fake virtio device and host for the transport fuzz targets
 * (fuzz_virtio_pci.c, fuzz_virtio_mmio.c): the device has an 8-byte config
 * space and checks that the transport keeps every access inside it and
 * every notify on an existing queue; the host records MSI routes and can
 * be told to fail its calls. */
#ifndef KVMINI_TESTS_FUZZ_FAKE_DEV_H
#define KVMINI_TESTS_FUZZ_FAKE_DEV_H

#include <stdbool.h>

#include "kvmini/virtio.h"

#define FAKE_NQ 2
#define FAKE_QSIZE 16
#define FAKE_CFG_LEN 8

extern bool fake_host_fails;   /* host calls fail while set */
extern int fake_routes;        /* MSI routes currently held */
extern const struct virtio_dev_ops fake_dev_ops;
extern const struct irq_sink fake_sink;

/* Per input: config bytes back to their start, host working, no routes. */
void fake_reset(void);
/* Fills in the host calls @hostcfg asks for: bit 0 MSI routing, bit 1
 * ioeventfds. */
void fake_host_calls(struct virtio_host *host, uint8_t hostcfg);
/* Device-side events for op 0xf0..0xff: a used buffer on queue op & 1
 * (0xf0-0xf7), a device failure (0xf8-0xfb), or host failure toggled. */
void fake_device_event(struct virtio_dev *dev, uint8_t op);

#endif
